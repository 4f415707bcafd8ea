#!/usr/bin/env bash
# test_choose.sh: pdplan --schedule auto (tools/pdplan/choose.c) on VGG-16 and GPT-2 124M (their
# H200 profiles) on 16 workers with 16 GB and 8 GB per worker, and on tiny_dag on 4 workers with
# 7612 bytes: the chosen plan's simulated peak memory fits the limit, the --simulate report of
# the written plan agrees with the choice, and its simulated time per minibatch is at most that
# of the plan pdplan makes with each schedule forced (--schedule 1f1b, flush, gpipe, zb-h1,
# zb-h2, 2bw; tiny_dag's also with each --recompute mode), among those whose simulated memory
# fits, and each forced schedule's plan fits the limit under its own memory model (the DP plans
# --schedule S --memory L with S's memory). On tiny_dag a per-stage recomputation mix wins,
# strictly faster than every plan with one mode that fits, and trains to the bits of the same
# plan without recomputation. With --backend cuda auto's candidates are exactly what the CUDA
# executor runs. --explain lists the candidates; bad combinations are diagnostics.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1

# sim FILE: "STEADY_MS PEAK_BYTES" of the plan's simulation in pdplan --simulate's output
sim() { awk '/^simulated/ && !k++ { on = 1 } on && /steady state/ { s = $3 } on && /peak memory/ { print s, $3; exit }' "$1"; }

check_model() { # tag "memories" "forced recomputation modes" pdplan-args...
    local tag=$1 mems=$2 rcs=$3 mem
    shift 3
    for mem in $mems; do
        local out=$TMP/${tag}_$mem
        if ! "$PDPLAN" "$@" --memory "$mem" --schedule auto --simulate --explain \
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
        local s rc worse="" over="" planned=0
        for s in 1f1b flush gpipe zb-h1 zb-h2 2bw; do
          for rc in $rcs; do
            "$PDPLAN" "$@" --memory "$mem" --schedule "$s" --recompute "$rc" --simulate --no-codegen -q \
                -o "$TMP/f" >"$TMP/f.log" 2>"$TMP/f.err" || continue # none under the limit, or 2bw's M too small
            planned=$((planned + 1))
            read -r f_ms f_bytes < <(sim "$TMP/f.log")
            # the forced schedule's plan is planned under its own memory model: it fits
            awk -v m="$f_bytes" -v l="$mem" 'BEGIN { exit !(m <= l) }' || over="$over $s($f_bytes bytes)"
            awk -v a="$chosen" -v f="$f_ms" -v m="$f_bytes" -v l="$mem" 'BEGIN { exit !(m > l || a <= f * (1 + 1e-6)) }' ||
                worse="$worse $s/$rc($f_ms ms, $f_bytes bytes)"
          done
        done
        [ -z "$worse" ] && pass "${tag}_${mem}_choice_at_least_every_forced_schedule" ||
            fail "${tag}_${mem}_choice_at_least_every_forced_schedule" "chosen $chosen ms; faster and fitting:$worse"
        [ -z "$over" ] && [ "$planned" -ge "${MIN_FORCED:-3}" ] && pass "${tag}_${mem}_forced_schedules_fit_their_memory" ||
            fail "${tag}_${mem}_forced_schedules_fit_their_memory" "$planned planned; over the limit:$over"
    done
}
check_model vgg16 "16e9 8e9" none models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 16
check_model gpt2 "16e9 8e9" none models/gpt2_124m.yaml -p profiles/gpt2_124m.h200.yaml -n 16
# tiny_dag on 4 workers at 7612 bytes, where a per-stage mix wins (below) and only recomputing
# plans fit: against each schedule forced with each recomputation mode too (one of which, flush
# with full recomputation, fits)
MIN_FORCED=1 check_model tiny_dag 7612 "none full selective" tests/data/models/tiny_dag.yaml -n 4

# ---- per-stage recomputation mixes. tiny_dag on 4 workers with 7612 bytes per worker: the
# fastest plan that fits recomputes selectively on stage 0, fully on stages 1 and 2, and not on
# stage 3, strictly faster than every plan with one mode on every stage that fits; plan.yaml
# records the modes, its stages' memory is the simulator's peak per stage (the one memory
# function, with each stage's mode) within the limit; and the generated stages train to the bits
# of the same plan without recomputation (skipping the recomputation, which the runtime can be
# told to for tests, changes them: the comparison has teeth)
mixlog=$TMP/tiny_dag_7612.log
row=$(grep '<- chosen' "$mixlog")
modes=$(awk '/<- chosen/ { for (i = 1; i < NF; i++) if ($i == "modes") print $(i + 1) }' "$mixlog")
if [ "$(awk '{ print $3 }' <<<"$row")" = mix ] && [ "$(tr -cd 'nsf' <<<"$modes" | fold -w1 | sort -u | wc -l)" -ge 2 ]; then
    pass mix_chosen
else
    fail mix_chosen "chosen: $row"
fi
# every candidate with one mode that fits simulates strictly slower than the chosen mix
if awk '/^  (1f1b|2bw|flush|gpipe|zb-h1|zb-h2) / { g = 0; for (i = 1; i <= NF; i++) if ($i == "GB") g = i
            if (!g) next; if (/<- chosen/) c = $(g - 2); else if ($3 != "mix" && !/over the limit/) u[++n] = $(g - 2) }
        END { if (!(c > 0) || !n) exit 1; for (i = 1; i <= n; i++) if (!(u[i] > c * (1 + 1e-6))) exit 1 }' "$mixlog"; then
    pass mix_strictly_faster_than_every_uniform_plan_that_fits
else
    fail mix_strictly_faster_than_every_uniform_plan_that_fits "$(grep -v 'over the limit\|no plan' "$mixlog" | grep -E '^  (1f1b|2bw|flush|gpipe|zb)')"
fi
# plan.yaml: the modes in stage order, and each stage's memory the simulator's peak, within the limit
yaml_modes=$(awk '/^  - / { if (n++) printf "%s", m; m = "n" } /^    recompute:/ { m = substr($2, 1, 1) } END { if (n) printf "%s", m }' "$TMP/tiny_dag_7612/plan.yaml")
run_modes=$(awk -F, '{ for (i = 1; i <= NF; i++) { k = $i + 0; m = substr($i, length($i)); for (j = 0; j < k; j++) printf "%s", m } }' <<<"$modes")
yaml_mem=$(awk '/^  - / { s = 1 } s && /^    memory_bytes:/ { printf "%s ", $2 }' "$TMP/tiny_dag_7612/plan.yaml")
sim_mem=$(awk '/^  stage  utilisation/ { on = 1; next } on && NF == 4 { printf "%s ", $3 } on && NF != 4 { exit }' "$mixlog")
if [ -n "$yaml_modes" ] && [ "$yaml_modes" = "$run_modes" ] && [ -n "$sim_mem" ] && [ "$yaml_mem" = "$sim_mem" ] &&
    awk -v l=7612 '{ for (i = 1; i <= NF; i++) if ($i > l) exit 1 }' <<<"$yaml_mem"; then
    pass mix_plan_records_modes_and_simulated_memory
else
    fail mix_plan_records_modes_and_simulated_memory "modes $yaml_modes (table $run_modes), memory $yaml_mem (simulated $sim_mem)"
fi
make -s build/libpdrt.a >/dev/null 2>&1 || fail build_runtime "make build/libpdrt.a failed"
mg=$TMP/mixgen
syn=(--data synthetic --synthetic-n 512 --seed 3 --no-eval --no-trace --steps 40)
if "$PDPLAN" tests/data/models/tiny_dag.yaml -n 4 --memory 7612 --schedule auto -q -o "$mg" >"$TMP/mg.log" 2>&1 &&
    make -s -C "$mg" >"$TMP/mg_make.log" 2>&1; then
    if expect_status 0 mix_trains "$ROOT/scripts/pdlaunch" "$mg" "${syn[@]}" --save "$TMP/mix_rc"; then
        # each stage ran its own mode, every backward recomputing where it does
        ran=$(awk '/^stage [0-9]+: recompute [a-z]+: 40 of 40 backwards recomputed/ { m[$2 + 0] = substr($4, 1, 1) }
                   END { for (k = 0; k < 4; k++) printf "%s", (k in m) ? m[k] : "n" }' <<<"$OUTPUT")
        [ "$ran" = "$yaml_modes" ] && pass mix_stages_run_their_modes || fail mix_stages_run_their_modes "ran $ran, plan $yaml_modes"
    fi
    if expect_status 0 mix_trains_without_recomputation "$ROOT/scripts/pdlaunch" "$mg" --no-recompute "${syn[@]}" --save "$TMP/mix_n"; then
        same_dirs "$TMP/mix_rc" "$TMP/mix_n" && pass mix_weights_bitwise_equal_without_recomputation ||
            fail mix_weights_bitwise_equal_without_recomputation "$(close_dirs "$TMP/mix_rc" "$TMP/mix_n" 0 '^$')"
        PDRT_INJECT_RECOMPUTE=skip "$ROOT/scripts/pdlaunch" "$mg" "${syn[@]}" --save "$TMP/mix_skip" >/dev/null 2>&1
        [ -d "$TMP/mix_skip" ] && ! same_dirs "$TMP/mix_skip" "$TMP/mix_n" && pass mix_comparison_has_teeth ||
            fail mix_comparison_has_teeth "skipping the recomputation left the weights unchanged"
    fi
else
    fail mix_generates_and_builds "$(tail -n 5 "$TMP/mg.log" "$TMP/mg_make.log")"
fi

# ---- --backend cuda: auto considers every schedule and recomputation mode the CUDA executor runs
# and nothing it refuses. The refusals are read from the executor (pdrt_cx_alloc in
# runtime/cuda/executor_cuda_mem.c: the schedules of runs_here; selective recomputation;
# recomputation under a split backward, zb-h1 and zb-h2), not from pdplan's predicate
# (pd_backend_runs), and compared with: pdplan --backend cuda accepting exactly those combinations,
# and every candidate of auto's table (a mix's every stage), on tiny_dag and VGG-16, being one of them
ex=runtime/cuda/executor_cuda_mem.c
cuda_ok=" $(sed -n '/^static int runs_here/,/^}/p' "$ex" | grep -o '"[a-z0-9-]*"' | tr -d '"' | tr '\n' ' ')"
if [ "$cuda_ok" = " " ] || ! grep -q 'e->ru.recompute == 2)' "$ex" || ! grep -q 'e->ru.split && e->ru.recompute)' "$ex"; then
    fail cuda_refusals_read "the CUDA executor's refusals changed ($ex): update pd_backend_runs (tools/pdplan/choose.c) and this test"
fi
cuda_runs() { # schedule none|full|selective: status 0 when the CUDA executor runs it
    case "$cuda_ok " in *" $1 "*) ;; *) return 1 ;; esac
    [ "$2" = selective ] && return 1
    [ "$2" = none ] || { [ "$1" != zb-h1 ] && [ "$1" != zb-h2 ]; }
}
bad=""
for s in 1f1b flush gpipe zb-h1 zb-h2 2bw interleaved; do
    for rc in none full selective; do
        "$PDPLAN" tests/data/models/tiny_dag.yaml -n 2 --backend cuda --schedule "$s" --recompute "$rc" \
            --no-codegen -q -o "$TMP/cu" >"$TMP/cu.log" 2>&1
        st=$?
        if cuda_runs "$s" "$rc"; then
            [ $st = 0 ] || bad="$bad $s/$rc(refused: $(tail -n 1 "$TMP/cu.log"))"
        else
            [ $st = 2 ] && grep -q 'backend' "$TMP/cu.log" || bad="$bad $s/$rc(accepted, status $st)"
        fi
    done
done
[ -z "$bad" ] && pass cuda_pdplan_accepts_what_the_executor_runs || fail cuda_pdplan_accepts_what_the_executor_runs "$bad"
check_cuda_auto() { # tag pdplan-args...: every candidate is one the executor runs, every schedule it
    local tag=$1 out=$TMP/cuda_$1 # runs is a candidate, and the choice generates for cuda
    shift
    if ! "$PDPLAN" "$@" --schedule auto --backend cuda --explain -q -o "$out" >"$out.log" 2>&1; then
        fail "cuda_${tag}_auto_generates" "$(tail -n 3 "$out.log")"
        return
    fi
    pass "cuda_${tag}_auto_generates"
    local bad="" seen=" " row s rc m
    while read -r row; do
        s=$(awk '{ print $1 }' <<<"$row")
        rc=$(awk '{ print $3 }' <<<"$row")
        seen="$seen$s "
        if [ "$rc" = mix ]; then
            for m in $(awk '{ for (i = 1; i < NF; i++) if ($i == "modes") print $(i + 1) }' <<<"$row" | tr -d '0-9,' | fold -w1 | sort -u); do
                case $m in n) m=none ;; f) m=full ;; s) m=selective ;; esac
                cuda_runs "$s" "$m" || bad="$bad $s/mix:$m"
            done
        else
            cuda_runs "$s" "$rc" || bad="$bad $s/$rc"
        fi
    done < <(grep -E '^  (1f1b|2bw|flush|gpipe|zb-h1|zb-h2|interleaved) ' "$out.log")
    grep -qE '^  interleaved, [0-9]+ chunks per worker' "$out.log" && seen="${seen}interleaved " # pd_interleave_consider's
    for s in $cuda_ok; do
        case "$seen" in *" $s "*) ;; *) bad="$bad never-considered:$s" ;; esac
    done
    [ -z "$bad" ] && pass "cuda_${tag}_auto_candidates_run_on_the_executor" ||
        fail "cuda_${tag}_auto_candidates_run_on_the_executor" "$bad"
}
check_cuda_auto tiny_dag tests/data/models/tiny_dag.yaml -n 4 --memory 7612
check_cuda_auto vgg16 models/vgg16.yaml -p profiles/vgg16.h200.yaml -n 16 --memory 8e9
# the CUDA candidates' mixes: full or none per stage
grep -qE ' mix .*modes [0-9]+[fn](,[0-9]+[fn])*( |$)' "$TMP/cuda_tiny_dag.log" &&
    ! grep -qE ' mix .*modes .*[0-9]s' "$TMP/cuda_tiny_dag.log" && pass cuda_mixes_full_or_none ||
    fail cuda_mixes_full_or_none "$(grep ' mix ' "$TMP/cuda_tiny_dag.log")"

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
