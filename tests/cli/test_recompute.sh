#!/usr/bin/env bash
# test_recompute.sh: activation recomputation (pdplan --recompute, the stages' --recompute and
# --no-recompute) on tests/data/models/tiny.yaml (conv, batch norm, dropout, linear):
#  - a plan made with --recompute says so per stage in plan.yaml and in the stages;
#  - under 1f1b (three minibatches in flight on stage 0, one activation buffer), flush and
#    gpipe, and on a replicated plan and with vertical sync, the weights and the batch-norm
#    running statistics are bit for bit those of the same run without recomputation (the same
#    weight version, the same dropout masks, the statistics updated once);
#  - the comparison has teeth: skipping the recomputation (test-only PDRT_INJECT_RECOMPUTE=skip)
#    changes the weights, and letting it update the statistics (bn-twice) changes them;
#  - recomputation with zb-h1/zb-h2 is refused with a diagnostic (CUDA stages with recompute:
#    tests/cli/test_codegen_cuda.sh; on a GPU, bench/gpu_check.sh).
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

plan() { # name args...: plan tiny and build into $TMP/name
    local g=$TMP/$1; shift
    "$PDPLAN" tests/data/models/tiny.yaml "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1
}
syn=(--data synthetic --synthetic-n 512 --seed 3 --no-eval --no-trace --steps 22 --microbatches 6)

# same_run NAME GEN ARGS...: the run with and without --recompute give the same bits
same_run() {
    local name=$1 g=$2; shift 2
    expect_status 0 "${name}_recompute_runs" "$LAUNCH" "$TMP/$g" --recompute "$@" "${syn[@]}" --save "$TMP/${name}_r" &&
        expect_status 0 "${name}_plain_runs" "$LAUNCH" "$TMP/$g" --no-recompute "$@" "${syn[@]}" --save "$TMP/${name}_n" || return
    if same_dirs "$TMP/${name}_r" "$TMP/${name}_n" && [ -f "$TMP/${name}_r/bn.running_mean.f32" ]; then
        pass "${name}_recompute_bitwise_equal"
    else
        fail "${name}_recompute_bitwise_equal" "$(close_dirs "$TMP/${name}_r" "$TMP/${name}_n" 0 '^$')"
    fi
}

if plan s3 -n 3 --straight --recompute; then
    [ "$(grep -c '^    recompute: true$' "$TMP/s3/plan.yaml")" = 3 ] && grep -q '\.recompute = 1,' "$TMP/s3/stage_0.c" &&
        pass plan_records_recompute || fail plan_records_recompute "$(grep recompute "$TMP/s3/plan.yaml")"
    for s in 1f1b flush gpipe; do same_run "$s" s3 --schedule "$s"; done
    # teeth: without the recomputation the backward reads another minibatch's activations;
    # with the statistics updated twice they differ
    expect_status 0 skip_runs env PDRT_INJECT_RECOMPUTE=skip "$LAUNCH" "$TMP/s3" --schedule 1f1b "${syn[@]}" --save "$TMP/skip" &&
        { ! cmp -s "$TMP/skip/fc1.weight.f32" "$TMP/1f1b_n/fc1.weight.f32" && pass skipped_recompute_is_caught || fail skipped_recompute_is_caught; }
    expect_status 0 bn_twice_runs env PDRT_INJECT_RECOMPUTE=bn-twice "$LAUNCH" "$TMP/s3" --schedule 1f1b "${syn[@]}" --save "$TMP/bn2" &&
        { ! cmp -s "$TMP/bn2/bn.running_mean.f32" "$TMP/1f1b_n/bn.running_mean.f32" && pass bn_updated_twice_is_caught || fail bn_updated_twice_is_caught; }
else
    fail s3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# a plan without recomputation, recomputing at run time: replicated (stage 0 twice), vertical sync
if plan r4 -n 4 && grep -q 'stage 0 binary stage_0 replicas 2' "$TMP/r4/launch.conf"; then
    same_run replicated r4 --schedule 1f1b --check-replicas
else
    fail r4_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi
if plan v3 -n 3 --straight --vertical-sync; then same_run vsync v3
else fail v3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"; fi

# refusals
expect_status 2 recompute_zb_refused "$PDPLAN" tests/data/models/tiny.yaml -n 2 --recompute --schedule zb-h1 -q -o "$TMP/x" &&
    { grep -q 'not supported yet' <<<"$OUTPUT" && pass recompute_zb_says_why || fail recompute_zb_says_why "$OUTPUT"; }
if [ -d "$TMP/s3" ]; then
    OUTPUT=$("$LAUNCH" "$TMP/s3" --schedule zb-h1 "${syn[@]}" 2>&1) && fail recompute_zb_run_refused "exit 0" ||
        { grep -q 'not supported yet' <<<"$OUTPUT" && pass recompute_zb_run_refused || fail recompute_zb_run_refused "$OUTPUT"; }
fi
finish
