#!/usr/bin/env bash
# test_choose.sh: pdplan --schedule auto (tools/pdplan/choose.c) on VGG-16 and GPT-2 124M (their
# H200 profiles) on 16 workers with 16 GB and 8 GB per worker: the chosen plan's simulated peak
# memory fits the limit, the --simulate report of the written plan agrees with the choice, and
# its simulated time per minibatch is at most that of the plan pdplan makes with each schedule
# forced (--schedule 1f1b, flush, gpipe, zb-h1, zb-h2, 2bw), among those whose simulated memory
# fits, and each forced schedule's plan fits the limit under its own memory model (the DP plans
# --schedule S --memory L with S's memory). --explain lists the candidates; bad combinations are
# diagnostics.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1

# sim FILE: "STEADY_MS PEAK_BYTES" of the plan's simulation in pdplan --simulate's output
sim() { awk '/^simulated/ && !k++ { on = 1 } on && /steady state/ { s = $3 } on && /peak memory/ { print s, $3; exit }' "$1"; }

check_model() { # tag model profile
    local tag=$1 model=$2 prof=$3 mem
    for mem in 16e9 8e9; do
        local out=$TMP/${tag}_$mem
        if ! "$PDPLAN" "$model" -p "$prof" -n 16 --memory "$mem" --schedule auto --simulate --explain \
            --no-codegen -q -o "$out" >"$out.log" 2>"$out.err"; then # progress apart
            fail "${tag}_${mem}_auto_plans" "$(tail -n 5 "$out.log" "$out.err")"
            continue
        fi
        local chosen bytes
        chosen=$(awk '/^schedule: / { for (i = 1; i <= NF; i++) if ($(i + 1) == "ms" && $(i + 2) == "per") { print $i; exit } }' "$out.log")
        read -r s_ms s_bytes < <(sim "$out.log")
        grep -q '<- chosen' "$out.log" && pass "${tag}_${mem}_explain_lists_candidates" || fail "${tag}_${mem}_explain_lists_candidates"
        if awk -v a="$chosen" -v b="$s_ms" -v m="$s_bytes" -v l="$mem" 'BEGIN { exit !(a > 0 && (a - b) ^ 2 <= (1e-4 * b) ^ 2 && m <= l) }'; then
            pass "${tag}_${mem}_choice_fits_and_matches_its_simulation"
        else
            fail "${tag}_${mem}_choice_fits_and_matches_its_simulation" "chosen $chosen ms, simulated $s_ms ms, $s_bytes bytes"
        fi
        # plan.yaml's stages carry the chosen schedule's memory, within the limit
        if awk -v l="$mem" '/^  - / || /^    / { if ($1 == "memory_bytes:") { n++; if ($2 > l) bad = 1 } } END { exit !(n > 0 && !bad) }' "$out/plan.yaml"; then
            pass "${tag}_${mem}_plan_stage_memory_fits"
        else
            fail "${tag}_${mem}_plan_stage_memory_fits" "$(grep memory_bytes "$out/plan.yaml" | tr '\n' ' ')"
        fi
        local s worse="" over="" planned=0
        for s in 1f1b flush gpipe zb-h1 zb-h2 2bw; do
            "$PDPLAN" "$model" -p "$prof" -n 16 --memory "$mem" --schedule "$s" --simulate --no-codegen -q \
                -o "$TMP/f" >"$TMP/f.log" 2>"$TMP/f.err" || continue # none under the limit, or 2bw's M too small
            planned=$((planned + 1))
            read -r f_ms f_bytes < <(sim "$TMP/f.log")
            # the forced schedule's plan is planned under its own memory model: it fits
            awk -v m="$f_bytes" -v l="$mem" 'BEGIN { exit !(m <= l) }' || over="$over $s($f_bytes bytes)"
            awk -v a="$chosen" -v f="$f_ms" -v m="$f_bytes" -v l="$mem" 'BEGIN { exit !(m > l || a <= f * (1 + 1e-6)) }' ||
                worse="$worse $s($f_ms ms, $f_bytes bytes)"
        done
        [ -z "$worse" ] && pass "${tag}_${mem}_choice_at_least_every_forced_schedule" ||
            fail "${tag}_${mem}_choice_at_least_every_forced_schedule" "chosen $chosen ms; faster and fitting:$worse"
        [ -z "$over" ] && [ "$planned" -ge 3 ] && pass "${tag}_${mem}_forced_schedules_fit_their_memory" ||
            fail "${tag}_${mem}_forced_schedules_fit_their_memory" "$planned planned; over the limit:$over"
    done
}
check_model vgg16 models/vgg16.yaml profiles/vgg16.h200.yaml
check_model gpt2 models/gpt2_124m.yaml profiles/gpt2_124m.h200.yaml

# with --recompute the DP prices the recomputed forward: on a straight compute-bound pipeline its
# bottleneck bounds the simulated time per minibatch from above, within the forward the last
# stage does not run again (the simulator, as the runtime, skips it when the working buffer still
# holds the minibatch): 33.72 against 30.26 ms (without pricing it, 25.22 against 33.72 before)
"$PDPLAN" models/fmnist_cnn.yaml -n 2 --straight --recompute --simulate --no-codegen -q -o "$TMP/rc" >"$TMP/rc.log" 2>&1
if awk '/plan, ms\/minibatch/ { d = $3; s = $4 } END { exit !(d > 0 && s <= d * (1 + 1e-6) && s >= 0.85 * d) }' "$TMP/rc.log"; then
    pass recompute_priced_by_the_dp_as_simulated
else
    fail recompute_priced_by_the_dp_as_simulated "$(grep 'plan, ms' "$TMP/rc.log")"
fi

expect_status 2 auto_with_recompute_refused "$PDPLAN" models/vgg16.yaml -n 4 --schedule auto --recompute -q --no-codegen -o "$TMP/x" &&
    { grep -q 'chooses the microbatches and recomputation itself' <<<"$OUTPUT" && pass auto_says_why || fail auto_says_why "$OUTPUT"; }
finish
