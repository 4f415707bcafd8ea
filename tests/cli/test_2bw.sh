#!/usr/bin/env bash
# test_2bw.sh: PipeDream-2BW (W(t+1) = W(t) - lr grad f(W(t-1)): 1F1B without flushes, one
# update per batch of M minibatches, two weight versions) through pdplan, the generated stages
# and scripts/pdlaunch, against --emulate (runtime/local.c: every minibatch of batch b uses, at
# every stage, the weights after max(0, b - 1) updates; written independently of the executor
# and the stash):
#  - tiny (conv, batch norm, dropout; 3 stages) with M = 3 and with M = 2 (stage 0's warm-up:
#    the fewest two versions allow), 22 steps (a last, partial batch), and tiny_dag (3 stages):
#    the pipeline equals the emulation bit for bit;
#  - a replicated plan (stage 0 twice, M = 8): bit for bit too (the emulation sums each
#    replica's minibatches, then the replicas in rank order, as the all-reduce does), replicas
#    identical after every update;
#  - it is neither flush's sequential SGD nor 1f1b's weight stashing (the comparisons have
#    teeth); plan.yaml says two weight versions;
#  - too few microbatches for two versions are refused with a diagnostic (the CUDA stages of 2bw:
#    tests/cli/test_codegen_cuda.sh; on a GPU, bench/gpu_check.sh).
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

plan() { # name model args...: plan and build into $TMP/name
    local g=$TMP/$1 m=$2; shift 2
    "$PDPLAN" "$m" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1
}
syn=(--data synthetic --synthetic-n 512 --seed 3 --no-eval --no-trace --steps 22)

# against_emulation NAME GEN ARGS...
against_emulation() {
    local name=$1 g=$2; shift 2
    expect_status 0 "${name}_runs" "$LAUNCH" "$TMP/$g" "$@" "${syn[@]}" --save "$TMP/${name}_p" || return
    if [[ " $* " == *" --check-replicas "* ]]; then
        grep -q 'replicas identical after 3 updates' <<<"$OUTPUT" && pass "${name}_replicas_identical" || fail "${name}_replicas_identical" "$OUTPUT"
    fi
    expect_status 0 "${name}_emulate_runs" "$LAUNCH" "$TMP/$g" --emulate "${@/--check-replicas/--no-trace}" "${syn[@]}" --save "$TMP/${name}_e" || return
    if same_dirs "$TMP/${name}_p" "$TMP/${name}_e"; then pass "${name}_equals_emulation_bitwise"
    else fail "${name}_equals_emulation_bitwise" "$(close_dirs "$TMP/${name}_p" "$TMP/${name}_e" 0 '^$')"; fi
}

if plan t3 tests/data/models/tiny.yaml -n 3 --straight --schedule 2bw --microbatches 3; then
    [ "$(grep -c '^    weight_versions: 2$' "$TMP/t3/plan.yaml")" = 3 ] && pass plan_keeps_two_versions ||
        fail plan_keeps_two_versions "$(grep weight_versions "$TMP/t3/plan.yaml")"
    against_emulation tiny_m3 t3
    against_emulation tiny_m2 t3 --microbatches 2
    expect_status 0 flush_single_runs "$LAUNCH" "$TMP/t3" --single --schedule flush --microbatches 3 "${syn[@]}" --save "$TMP/sync" &&
        { ! same_dirs "$TMP/tiny_m3_p" "$TMP/sync" && pass differs_from_flush || fail differs_from_flush; }
    expect_status 0 1f1b_emulate_runs "$LAUNCH" "$TMP/t3" --emulate --schedule 1f1b "${syn[@]}" --save "$TMP/stash" &&
        { ! same_dirs "$TMP/tiny_m3_p" "$TMP/stash" && pass differs_from_1f1b || fail differs_from_1f1b; }
    OUTPUT=$("$LAUNCH" "$TMP/t3" --microbatches 1 "${syn[@]}" 2>&1) && fail too_few_microbatches_at_run_time "exit 0" ||
        { grep -q 'needs at least 2 minibatches per replica' <<<"$OUTPUT" && pass too_few_microbatches_at_run_time || fail too_few_microbatches_at_run_time "$OUTPUT"; }
else
    fail t3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi
if plan d3 tests/data/models/tiny_dag.yaml -n 3 --straight --schedule 2bw --microbatches 4; then against_emulation dag d3
else fail d3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"; fi
if plan r4 tests/data/models/tiny.yaml -n 4 --schedule 2bw --microbatches 8 && grep -q 'stage 0 binary stage_0 replicas 2' "$TMP/r4/launch.conf"; then
    against_emulation replicated r4 --check-replicas
else
    fail r4_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

expect_status 2 too_few_microbatches_planned "$PDPLAN" tests/data/models/tiny.yaml -n 3 --straight --schedule 2bw --microbatches 1 -q -o "$TMP/x" &&
    { grep -q 'raise --microbatches' <<<"$OUTPUT" && pass too_few_microbatches_says_why || fail too_few_microbatches_says_why "$OUTPUT"; }
finish
