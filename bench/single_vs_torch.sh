#!/usr/bin/env bash
# single_vs_torch.sh: one core against one thread: models/fmnist_cnn.yaml trained for STEPS
# (default 300) steps of Fashion-MNIST by ours in one process (pdlaunch --single: every stage,
# one minibatch at a time, oneDNN convolutions where built in) and by PyTorch with one thread
# (bench/torch_fmnist_cnn.py, the same model, optimizer and batch), alternated REPS (default 3)
# times; prints every run's training samples/s, the best of each, and ours over PyTorch's (the
# issue's target: at least 1.3x). Back to back, so that other load on the machine falls on both.
# Needs Fashion-MNIST (make deps) and PyTorch (apt-get install python3-torch; else it stops with
# a note).
# Usage: bench/single_vs_torch.sh [STEPS] [REPS]
set -eu
cd "$(dirname "$0")/.."
steps=${1:-300}
reps=${2:-3}
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
    { echo "bench: no Fashion-MNIST (make deps installs dataset-fashion-mnist)" >&2; exit 1; }
/usr/bin/python3 -c 'import torch' 2>/dev/null ||
    { echo "note: no PyTorch (apt-get install python3-torch): nothing to compare against" >&2; exit 0; }
make -s -j2
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
bin/pdplan models/fmnist_cnn.yaml -n 2 -b 1e10 --straight -q -o "$gen/g"
make -s -C "$gen/g"
best_ours=0 best_torch=0
for r in $(seq 1 "$reps"); do
    scripts/pdlaunch "$gen/g" --single --steps "$steps" --no-eval --no-trace --log-every 100000 >"$gen/ours.log" 2>&1 ||
        { cat "$gen/ours.log" >&2; exit 1; }
    o=$(python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["samples_per_s"])' "$gen/g/run/summary.json")
    t=$(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/torch_fmnist_cnn.py 1 0 1 1 "$steps" | awk -F= '/samples\/s=/ { print $3 }')
    echo "run $r: ours --single $o samples/s, PyTorch 1 thread $t samples/s"
    best_ours=$(awk -v a="$best_ours" -v b="$o" 'BEGIN { print (b > a ? b : a) }')
    best_torch=$(awk -v a="$best_torch" -v b="$t" 'BEGIN { print (b > a ? b : a) }')
done
awk -v o="$best_ours" -v t="$best_torch" -v n="$reps" 'BEGIN {
    printf "best of %d: ours %.1f, PyTorch %.1f samples/s: ours %.2fx PyTorch (target: at least 1.3x)\n", n, o, t, o / t }'
