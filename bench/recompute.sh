#!/usr/bin/env bash
# recompute.sh: what activation recomputation costs and saves on the CPU runtime, beside the
# simulator's figures. One 2-stage straight plan made with --recompute selective runs each
# schedule three ways on the same data (--no-recompute, --recompute (full), the plan's selective),
# ROUNDS times in turn so that the machine's noise hits them alike; it prints each mode's measured
# time per minibatch (the best round) and its ratio to none, and per stage the activation bytes
# the executor allocated (its closing line; none: minibatches in flight x the stage's n_acts)
# beside the simulator's (pdplan --simulate, the stage table's `activations`: the same plan,
# schedule and mode; stage 0's figures leave out its data buffers, the others' include their
# stage inputs; zb-h1's and zb-h2's count the layers' gradients each minibatch keeps until its
# W, n_acts floats whatever the mode).
# Usage: bench/recompute.sh [STEPS (default 60)] [MODEL (default models/fmnist_cnn.yaml)]
#        [ROUNDS (default 2)] [SCHEDULES (default "1f1b zb-h1 zb-h2")]
set -eu
cd "$(dirname "$0")/.."
steps=${1:-60}
model=${2:-models/fmnist_cnn.yaml}
rounds=${3:-2}
schedules=${4:-"1f1b zb-h1 zb-h2"}
source bench/lib.sh # run_ms
make -s -j2
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
bin/pdplan "$model" -n 2 -b 1e10 --straight --recompute selective -q -o "$gen/g"
make -s -C "$gen/g" >/dev/null
data=(--data synthetic --synthetic-n 4096)
case "$model" in *gpt_char*) data=() ;; esac
run=(--seed 1 --no-eval --no-trace --steps "$steps" --microbatches 8)
n_acts() { sed -n "s/^#define S$1_N_ACTS \([0-9]*\).*/\1/p" "$gen/g/stage_$1.c"; }
in_floats() { sed -n "s/^#define S$1_IN_FLOATS \([0-9]*\).*/\1/p" "$gen/g/stage_$1.c"; }
printf '%s, 2 stages, %s minibatches, best of %s rounds (ms per minibatch; x: ratio to none)\n' \
    "$model" "$steps" "$rounds"
for s in $schedules; do
    declare -A best=()
    for r in $(seq 1 "$rounds"); do
        for mode in none full selective; do
            flag=()
            [ "$mode" = none ] && flag=(--no-recompute)
            [ "$mode" = full ] && flag=(--recompute)
            scripts/pdlaunch "$gen/g" --schedule "$s" "${flag[@]}" "${data[@]}" "${run[@]}" >"$gen/$mode.log" 2>&1
            ms=$(run_ms "$gen/g" "$steps")
            if [ -z "${best[$mode]:-}" ] || awk -v a="$ms" -v b="${best[$mode]}" 'BEGIN { exit !(a < b) }'; then
                best[$mode]=$ms
            fi
        done
    done
    printf '%-6s' "$s"
    for mode in none full selective; do
        printf '  %-9s %8.2f ms %5.2fx' "$mode" "${best[$mode]}" "$(awk -v a="${best[$mode]}" -v b="${best[none]}" 'BEGIN { print a / b }')"
    done
    printf '\n'
    for mode in none full selective; do
        bin/pdplan "$model" -n 2 -b 1e10 --straight --schedule "$s" --microbatches 8 \
            --recompute "$mode" --simulate --no-codegen -q -o "$gen/sim" >"$gen/sim.txt"
        for k in 0 1; do
            sim=$(awk -v k="$k" '/stage  utilisation/ { on = 1; next } on && $1 == k { print $4; exit }' "$gen/sim.txt")
            line=$(grep "^stage $k: recompute" "$gen/selective.log" || true)
            d=$(sed -n 's/.*(\([0-9]*\) minibatches in flight).*/\1/p' <<<"$line")
            case $mode in
            none) acts=$((4 * d * $(n_acts "$k"))) ;;
            full) acts=$(grep "^stage $k: recompute" "$gen/full.log" | sed -n 's/.*activations \([0-9]*\) bytes.*/\1/p') ;;
            selective) acts=$(sed -n 's/.*activations \([0-9]*\) bytes.*/\1/p' <<<"$line") ;;
            esac
            [ "$k" -gt 0 ] && acts=$((acts + 4 * d * $(in_floats "$k")))
            case $s in zb-*) acts=$((acts + 4 * d * $(n_acts "$k"))) ;; esac # the gradients kept until W
            printf '        stage %d %-9s activations: runtime %10d bytes, simulator %s\n' "$k" "$mode" "$acts" "$sim"
        done
    done
    unset best
done
