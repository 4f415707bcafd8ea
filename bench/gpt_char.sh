#!/usr/bin/env bash
# gpt_char.sh: tokens/s of models/gpt_char.yaml (4 blocks, width 128, context 128, batch 32)
# trained one way against another, in one run of this script, on the Shakespeare corpus:
#   - ours as one process: pdlaunch --single, one thread (OPENBLAS_NUM_THREADS=1);
#   - PyTorch on the same model, batch and context, one thread: the anchor's script
#     (../shared/anchors/cpu/torch_gpt_char.py --bench STEPS with 1 thread: set_num_threads(1),
#     OPENBLAS_NUM_THREADS=1, timed after 3 untimed steps). Its head is tied to wte, ours is
#     its own linear (11,352 more parameters, 0.2% of the FLOPs: docs/formats.md);
#   - ours as the 2-stage 1F1B pipeline (pdplan -n 2 --straight, one rank per stage, one
#     thread each) against ours as one process;
#   - ours as make demo-gpt trains it: the same pipeline under PipeDream-Flush with minibatches
#     of 16 and 2 per update (scripts/demo_gpt.sh), against ours as one process.
# Ours: tokens/s = steps x 32 x 128 / train_s from run/summary.json (the training loop alone;
# evaluation off), and the whole launch's wall time beside it.
# Usage: bench/gpt_char.sh [STEPS (default 60)]   Needs data/shakespeare_char (make deps) or
# $PD_DATA_DIR; PyTorch (python3-torch, which make deps installs) for its line.
set -eu
cd "$(dirname "$0")/.."
steps=${1:-60}
export OPENBLAS_NUM_THREADS=1
data=${PD_DATA_DIR:-$PWD/data}/shakespeare_char
[ -f "$data/train.bin" ] || { echo "bench gpt_char: no $data (make deps)" >&2; exit 1; }
anchor=${TORCH_GPT_CHAR:-../shared/anchors/cpu/torch_gpt_char.py}
[ -f "$anchor" ] || anchor=/work/shared/anchors/cpu/torch_gpt_char.py
make -s -j2 bin/pdplan runtime
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
bin/pdplan models/gpt_char.yaml -n 2 -b 1e10 --straight -q -o "$gen/pipe"
make -s -C "$gen/pipe"
sed 's/^batch: 32\b/batch: 16/' models/gpt_char.yaml >"$gen/demo.yaml"
bin/pdplan "$gen/demo.yaml" -n 2 -b 1e10 --straight --schedule flush -q -o "$gen/demo"
make -s -C "$gen/demo"
tps() { grep -o '"tokens_per_s": [0-9.]*' "$1/run/summary.json" | grep -o '[0-9.]*$'; }
run() { # label, folder, minibatches, extra pdlaunch args: prints "tokens/s wall_s"
    local label=$1 dir=$gen/$2 n=$3; shift 3
    local t0 t1
    rm -rf "$dir/run"
    t0=$(date +%s.%N)
    scripts/pdlaunch "$dir" --steps "$n" --no-eval --no-trace --log-every "$n" "$@" \
        >"$gen/$label.log" 2>&1 || { cat "$gen/$label.log"; echo "bench: $label failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v t="$(tps "$dir")" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f %.2f\n", t, b - a }'
}
echo "bench gpt_char: $steps steps of 32 x 128 tokens, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
read -r single single_wall < <(run single pipe "$steps" --single)
torch="" py=""
for p in /usr/bin/python3 python3; do # Debian's python3-torch is /usr/bin/python3's
    "$p" -c 'import torch' 2>/dev/null && { py=$p; break; }
done
if [ -n "$py" ]; then
    "$py" "$anchor" 1 --bench "$steps" --data "$data" >"$gen/torch.log" 2>&1 &&
        torch=$(sed -n 's/.*tokens\/s=\([0-9]*\).*/\1/p' "$gen/torch.log")
fi
read -r pipe pipe_wall < <(run pipeline pipe "$steps")
read -r demo demo_wall < <(run demo demo $((2 * steps)) --microbatches 2)
printf "  ours, one process (--single, 1 thread):  %7s tokens/s  (%s s wall)\n" "$single" "$single_wall"
if [ -n "$torch" ]; then
    printf "  PyTorch %s, 1 thread (anchor --bench):  %7s tokens/s\n" \
        "$("$py" -c 'import torch; print(torch.__version__)')" "$torch"
    awk -v o="$single" -v t="$torch" 'BEGIN { printf "  ours / PyTorch (one thread each):        %7.2fx\n", o / t }'
else
    echo "  PyTorch: not measured ($(tail -1 "$gen/torch.log" 2>/dev/null ||
        echo 'no python3 with torch: bash scripts/install-deps.sh --bench installs python3-torch'))"
fi
printf "  ours, 2-stage 1F1B pipeline (2 ranks):   %7s tokens/s  (%s s wall)\n" "$pipe" "$pipe_wall"
awk -v s="$single" -v p="$pipe" 'BEGIN { printf "  pipeline / one process:                  %7.2fx\n", p / s }'
printf "  ours, make demo-gpt's flush pipeline:    %7s tokens/s  (%s s wall)\n" "$demo" "$demo_wall"
awk -v s="$single" -v p="$demo" 'BEGIN { printf "  demo pipeline / one process:             %7.2fx\n", p / s }'
