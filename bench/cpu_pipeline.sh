#!/usr/bin/env bash
# cpu_pipeline.sh: times the same training steps on the same data, through scripts/pdlaunch, in
# wall-clock time, and prints each parallel run's ratio against the single process:
#   - one process (pdlaunch --single: every stage, one minibatch at a time);
#   - a 2-stage 1F1B pipeline (one rank per stage, --straight);
#   - 2-way data parallelism: one stage on 2 replicas (1f1b-RR: even minibatches on rank 0, odd
#     on rank 1, all-reduce per pair), i.e. the default plan for fmnist_cnn on 2 workers;
#   - a replicated hybrid (stage 0 on 2 replicas + a second stage: 3 ranks on the cores), when
#     the planner makes one for 3 workers (it does not replicate when it does not pay);
#   - the same 2 stages under flush, zb-h1, zb-h2 and 2bw (8 minibatches per
#     batch), and interleaved on the same 2 ranks with 2 chunks each (4 stages), each beside the
#     simulator's time per minibatch for it from the same profile.
# Target: the pipeline at least 1.6x as fast as the single process on 2 cores.
# The pipeline is planned from a profile pdprof --train measures first, and the simulator's time
# per minibatch for it and for data parallelism (pdplan --simulate, that profile) is printed
# beside each run's measured one (issue 7: within 10%).
# Usage: bench/cpu_pipeline.sh [STEPS (default 300)] [MODEL (default models/fmnist_cnn.yaml)]
# The data is Fashion-MNIST when installed, else synthetic. Test-set evaluation is off.
set -eu
cd "$(dirname "$0")/.."
steps=${1:-300}
model=${2:-models/fmnist_cnn.yaml}
source bench/lib.sh # sim_run_ms, run_ms
make -s -j2
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
tdata=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && tdata=(--data /usr/share/datasets/fashion-mnist)
bin/pdplan "$model" -n 2 -b 1e10 --straight -q -o "$gen/single"
bin/pdplan "$model" -n 2 -b 1e10 -q -o "$gen/dp"
bin/pdplan "$model" -n 3 -b 1e10 -q -o "$gen/hybrid" || true
for g in single dp hybrid; do [ -f "$gen/$g/launch.conf" ] && make -s -C "$gen/$g"; done
data=()
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || data=(--data synthetic)
run() { # label, folder, extra pdlaunch args
    local label=$1 dir=$2; shift 2
    local t0 t1
    t0=$(date +%s.%N)
    scripts/pdlaunch "$gen/$dir" --steps "$steps" --no-eval --no-trace --log-every "$steps" "${data[@]}" "$@" >"$gen/$label.log" 2>&1 ||
        { cat "$gen/$label.log"; echo "bench: $label run failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}
layout() { awk '$1 == "stage" { printf "%s%s", sep, $6; sep = "+" }' "$gen/$1/launch.conf"; }
single=$(run single single --single)
# the profile right before the runs it predicts (this machine's speed drifts within a minute)
PDC_ROOT=$PWD bin/pdprof "$model" --train --jobs 2 --steps 150 "${tdata[@]}" -q -o "$gen/train.yaml" >"$gen/prof.log" 2>&1 ||
    { cat "$gen/prof.log"; echo "bench: pdprof --train failed" >&2; exit 1; }
bin/pdplan "$model" -p "$gen/train.yaml" -n 2 -b 1e10 --straight --simulate -o "$gen/straight" >"$gen/straight.sim"
make -s -C "$gen/straight"
read -r sim_pipe sim_dp < <(sim_run_ms "$gen/straight.sim" "$steps")
pipe=$(run pipeline straight)
echo "bench cpu_pipeline: $model, $steps steps, batch $(awk '/^batch:/ {print $2}' "$model"), $(nproc) cores"
echo "  single process (--single):      ${single} s wall"
awk -v s="$single" -v p="$pipe" 'BEGIN { printf "  2-stage pipeline (1f1b):        %s s wall, %.2fx (target >= 1.6x)\n", p, s / p }'
awk -v m="$(run_ms "$gen/straight" "$steps")" -v p="$sim_pipe" 'BEGIN { printf "    per minibatch: measured %.2f ms, simulated %.2f ms from the pdprof --train profile: %+.1f%%\n", m, p, (p / m - 1) * 100 }'
for s in flush zb-h1 zb-h2 2bw interleaved; do
    chunks=()
    [ "$s" = interleaved ] && chunks=(--chunks 2) # 2 ranks x 2 chunks
    bin/pdplan "$model" -p "$gen/train.yaml" -n 2 -b 1e10 --straight --schedule "$s" --microbatches 8 \
        "${chunks[@]}" --simulate -o "$gen/$s" >"$gen/$s.sim"
    make -s -C "$gen/$s"
    read -r sim_s _ < <(sim_run_ms "$gen/$s.sim" "$steps")
    t=$(run "$s" "$s")
    label="2-stage pipeline ($s, M 8):"
    [ "$s" = interleaved ] && label="2 ranks x 2 chunks (interleaved, M 8):"
    awk -v s="$single" -v p="$t" -v n="$label" -v m="$(run_ms "$gen/$s" "$steps")" -v q="$sim_s" 'BEGIN {
        printf "  %-34s %s s wall, %.2fx; per minibatch measured %.2f ms, simulated %.2f ms: %+.1f%%\n",
               n, p, s / p, m, q, (q / m - 1) * 100 }'
done
if [ "$(layout dp)" = 2 ]; then
    dp=$(run dp dp)
    awk -v s="$single" -v p="$dp" 'BEGIN { printf "  2-way data parallel (1 stage x 2 replicas): %s s wall, %.2fx\n", p, s / p }'
    awk -v m="$(run_ms "$gen/dp" "$steps")" -v p="$sim_dp" 'BEGIN { printf "    per minibatch: measured %.2f ms, simulated %.2f ms from the same profile: %+.1f%%\n", m, p, (p / m - 1) * 100 }'
else
    echo "  2-way data parallel: the planner's 2-worker plan is $(layout dp) replicas per stage, not one stage on 2"
fi
if [ -f "$gen/hybrid/launch.conf" ] && layout hybrid | grep -q '[2-9]' && [ "$(layout hybrid)" != 3 ]; then
    hy=$(run hybrid hybrid)
    awk -v s="$single" -v p="$hy" -v l="$(layout hybrid)" 'BEGIN { printf "  replicated hybrid (replicas %s):  %s s wall, %.2fx\n", l, p, s / p }'
else
    echo "  replicated hybrid: the planner's 3-worker plan is replicas $(layout hybrid 2>/dev/null), no hybrid to run"
fi
grep -h 'samples/s' "$gen"/*.log | grep '^steps' | sed 's/^/  /'
