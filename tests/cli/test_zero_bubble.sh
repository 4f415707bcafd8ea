#!/usr/bin/env bash
# test_zero_bubble.sh: the zb-h1 and zb-h2 schedules end to end (pdplan, the generated stages'
# backward_input and backward_weight, the CPU executor, scripts/pdlaunch):
#  - on fmnist_cnn (2 stages, Fashion-MNIST, 40 steps), tiny_dag (3 stages: add, concat, a skip
#    over two cuts), tiny (batchnorm, dropout) and a tiny GPT (embedding, layernorm, attention,
#    gelu), the schedules train to --single's weights bit for bit (tiny and the GPT under one
#    schedule each) (the split backward computes
#    the whole backward's bits, and W accumulates in minibatch order as flush does), and differ
#    from per-minibatch SGD (1f1b's --single; checked on tiny_dag), so the
#    comparison has teeth;
#  - on a replicated plan of tiny (stage 0 twice) within 1e-5 relative, the replicas identical
#    after every step;
#  - run/trace.json holds every rank's backward_input and backward_weight;
#  - pdplan --microbatches is recorded in plan.yaml and the stages (rounded up to a multiple of
#    the replica counts) and a bad value is a diagnostic;
#  - an unknown schedule name is refused with a diagnostic (the CUDA stages' split backward:
#    tests/cli/test_codegen_cuda.sh; on a GPU, bench/gpu_check.sh).
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

plan() { # name model args...: plan and build into $TMP/name
    local g=$TMP/$1 m=$2; shift 2
    "$PDPLAN" "$m" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1
}

# the schedules $ZB (default both) against --single on plan $1 with run options $2...
against_single() {
    local g=$1; shift
    expect_status 0 "${g}_single_runs" "$LAUNCH" "$TMP/$g" --single --schedule flush "$@" --save "$TMP/${g}_s" || return
    for s in ${ZB:-zb-h1 zb-h2}; do
        expect_status 0 "${g}_${s}_runs" "$LAUNCH" "$TMP/$g" --schedule $s "$@" --save "$TMP/${g}_$s" || continue
        cp "$TMP/$g/run/trace.json" "$TMP/${g}_$s.trace.json" 2>/dev/null
        if same_dirs "$TMP/${g}_$s" "$TMP/${g}_s"; then pass "${g}_${s}_equals_single_bitwise"
        else fail "${g}_${s}_equals_single_bitwise" "$(close_dirs "$TMP/${g}_$s" "$TMP/${g}_s" 1e-5)"; fi
    done
    [ "$g" = dag3 ] || return # one cheap model shows the teeth
    expect_status 0 "${g}_single_1f1b_runs" "$LAUNCH" "$TMP/$g" --single --schedule 1f1b "$@" --save "$TMP/${g}_1" &&
        { ! same_dirs "$TMP/${g}_zb-h1" "$TMP/${g}_1" && pass "${g}_comparison_has_teeth" || fail "${g}_comparison_has_teeth"; }
}

if plan cnn models/fmnist_cnn.yaml -n 2 --straight --schedule zb-h1; then
    grep -q 'backward_input 0' "$TMP/cnn/schedule" && grep -q '\.backward_weight = S1_backward_weight' "$TMP/cnn/stage_1.c" &&
        pass zb_plan_writes_split_schedule_and_stages || fail zb_plan_writes_split_schedule_and_stages
    against_single cnn --steps 40 --microbatches 8 --seed 3 --no-eval
    # the trace of the zb-h2 run: both parts on both ranks
    if python3 - "$TMP/cnn_zb-h2.trace.json" <<'EOF'
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
for pid in (0, 1):
    cats = {e.get("cat") for e in ev if e.get("pid") == pid}
    assert {"backward_input", "backward_weight", "forward"} <= cats and "backward" not in cats, (pid, cats)
EOF
    then pass trace_has_backward_input_and_weight; else fail trace_has_backward_input_and_weight; fi
else
    fail cnn_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

syn=(--data synthetic --synthetic-n 512 --seed 3 --no-eval --no-trace --steps 22 --microbatches 6)
if plan dag3 tests/data/models/tiny_dag.yaml -n 3 --straight; then against_single dag3 "${syn[@]}"
else fail dag3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"; fi
# the other ops' split (batch norm, dropout; below embedding, layernorm, attention): one schedule
# each, both schedules running the same backward_input and backward_weight
if plan tiny3 tests/data/models/tiny.yaml -n 3 --straight; then ZB=zb-h2 against_single tiny3 "${syn[@]}"
else fail tiny3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"; fi

# replicated: 4 workers, 3 stages, stage 0 twice; the replicas' sum is in rank order
if plan rep4 tests/data/models/tiny.yaml -n 4 && grep -q 'stage 0 binary stage_0 replicas 2' "$TMP/rep4/launch.conf"; then
    expect_status 0 rep4_single_runs "$LAUNCH" "$TMP/rep4" --single --schedule flush "${syn[@]}" --save "$TMP/rep4_s"
    for s in zb-h2; do
        expect_status 0 "rep4_${s}_runs" "$LAUNCH" "$TMP/rep4" --schedule $s --check-replicas "${syn[@]}" --save "$TMP/rep4_$s" || continue
        grep -q 'replicas identical after 4 updates' <<<"$OUTPUT" && pass "rep4_${s}_replicas_identical" || fail "rep4_${s}_replicas_identical" "$OUTPUT"
        if out=$(close_dirs "$TMP/rep4_$s" "$TMP/rep4_s" 1e-5); then pass "rep4_${s}_equals_single"; echo "  $out"
        else fail "rep4_${s}_equals_single" "$out"; fi
    done
else
    fail rep4_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# a tiny GPT on a character corpus: embedding (weights only), layernorm, attention, gelu
if tiny_corpus "$TMP/corp"; then
    tiny_gpt_model "$TMP/gpt.yaml"
    if plan gpt "$TMP/gpt.yaml" -n 2 --straight; then ZB=zb-h1 against_single gpt --data "$TMP/corp" --seed 3 --no-trace --no-eval --steps 16 --microbatches 4
    else fail gpt_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"; fi
else
    fail tiny_corpus "prepare_shakespeare.py --text failed"
fi

# --microbatches: recorded in plan.yaml and the stages, rounded up to the replica counts' multiple
if plan mb tests/data/models/tiny.yaml -n 4 --schedule zb-h1 --microbatches 5 &&
    grep -q '^microbatches: 6$' "$TMP/mb/plan.yaml" && grep -q '\.microbatches = 6,' "$TMP/mb/stage_0.c" &&
    grep -q 'allreduce 1$' "$TMP/mb/schedule"; then pass microbatches_option_recorded_and_rounded
else fail microbatches_option_recorded_and_rounded "$(grep microbatches "$TMP/mb/plan.yaml" "$TMP/mb/stage_0.c" 2>&1)"; fi
expect_status 2 microbatches_bad_value "$PDPLAN" models/fmnist_cnn.yaml -n 2 --microbatches 2.5 -q -o "$TMP/x" &&
    { grep -q "not a whole number of minibatches" <<<"$OUTPUT" && pass microbatches_says_why || fail microbatches_says_why "$OUTPUT"; }

# refusals
expect_status 2 pdplan_unknown_schedule "$PDPLAN" models/fmnist_cnn.yaml -n 2 --schedule zb-h3 -q -o "$TMP/x" &&
    { grep -q "unknown schedule 'zb-h3' (1f1b, flush, gpipe, zb-h1, zb-h2, 2bw, interleaved, auto)" <<<"$OUTPUT" && pass pdplan_lists_schedules || fail pdplan_lists_schedules "$OUTPUT"; }
if [ -d "$TMP/cnn" ]; then
    OUTPUT=$("$LAUNCH" "$TMP/cnn" --schedule zb-h3 --steps 1 2>&1) && fail pdlaunch_unknown_schedule "exit 0" ||
        { grep -q "unknown schedule 'zb-h3'" <<<"$OUTPUT" && pass pdlaunch_unknown_schedule || fail pdlaunch_unknown_schedule "$OUTPUT"; }
fi
finish
