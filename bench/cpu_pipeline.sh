#!/usr/bin/env bash
# cpu_pipeline.sh: times the same training steps on the same data as one process (pdlaunch
# --single: every stage, one minibatch at a time) and as a 2-stage 1F1B pipeline (one rank per
# stage), both through scripts/pdlaunch, in wall-clock time, and prints the ratio.
# Target: the pipeline at least 1.6x as fast as the single process on 2 cores.
# Usage: bench/cpu_pipeline.sh [STEPS (default 300)] [MODEL (default models/fmnist_cnn.yaml)]
# The data is Fashion-MNIST when installed, else synthetic. Test-set evaluation is off.
set -eu
cd "$(dirname "$0")/.."
steps=${1:-300}
model=${2:-models/fmnist_cnn.yaml}
make -s -j2
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
bin/pdplan "$model" -n 2 -b 1e10 --straight -q -o "$gen"
make -s -C "$gen"
data=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || data=(--data synthetic)
run() { # label, extra pdlaunch args
    local label=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    scripts/pdlaunch "$gen" --steps "$steps" --no-eval --log-every "$steps" "${data[@]}" "$@" >"$gen/$label.log" 2>&1 ||
        { cat "$gen/$label.log"; echo "bench: $label run failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
single=$(run single --single)
pipe=$(run pipeline)
echo "bench cpu_pipeline: $model, $steps steps, batch $(awk '/^batch:/ {print $2}' "$model"), $(nproc) cores"
echo "  single process (--single): ${single} s wall"
echo "  2-stage pipeline (1f1b):   ${pipe} s wall"
awk -v s="$single" -v p="$pipe" 'BEGIN { printf "  speedup: %.2fx (target >= 1.6x)\n", s / p }'
grep -h 'samples/s' "$gen/single.log" "$gen/pipeline.log" | grep '^steps' | sed 's/^/  /'
