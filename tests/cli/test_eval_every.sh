#!/usr/bin/env bash
# test_eval_every.sh: --eval-every N evaluates every N steps in every mode, and an evaluation
# drains the pipeline the same way in each, so that the equalities hold with it too:
#  - --single lists its evaluations (steps 5, 10 and the end, 14) in summary.json, their times
#    rising, and writes run/curves.svg (well-formed XML, four panels, the loss drawn);
#  - a 2-stage 1f1b pipeline equals --emulate bit for bit, evaluations included, and differs from
#    the same pipeline without --eval-every (the drains change 1F1B's weight versions, as a
#    checkpoint's do); so does 2-way data parallelism, whose replicas share the test set;
#  - flush on 3 stages, stage 0 on 2 replicas, equals --single (1e-5, as test_schedules.sh);
#  - --target-accuracy with --eval-every stops at the first evaluation that meets it and records
#    its step and time; one that is never met gives target_step null;
#  - a token model's evaluations carry the validation loss, --target-loss stops on it and
#    --eval-batches shortens the evaluation;
#  - bad values are diagnostics.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

plan() { # folder, pdplan options
    local g=$TMP/$1; shift
    "$PDPLAN" "$ROOT/tests/data/models/tiny.yaml" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 &&
        make -s -C "$g" >"$TMP/make.log" 2>&1
}
common=(--data synthetic --synthetic-n 512 --steps 14 --seed 5 --log-every 2 --no-trace)
# summary.json's evaluations are at these steps, their times rising and within the wall time
evals_at() { # summary, steps...
    python3 - "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["evaluations"]
assert [e["step"] for e in ev] == [int(s) for s in sys.argv[2:]], ev
assert all(0 < a["time_s"] < b["time_s"] for a, b in zip(ev, ev[1:])), ev
assert ev[-1]["time_s"] <= d["wall_s"] + 1e-6 and all(0 <= e["test_accuracy"] <= 1 for e in ev), d
assert d["test_accuracy"] == ev[-1]["test_accuracy"], d
EOF
}
same_evals() { # summary A, summary B, tolerance of val_loss: the same accuracy at the same steps
    python3 - "$@" <<'EOF'
import json, sys
a, b = (json.load(open(f))["evaluations"] for f in sys.argv[1:3])
assert [e["step"] for e in a] == [e["step"] for e in b] and len(a) > 1, (a, b)
assert all(x["test_accuracy"] == y["test_accuracy"] for x, y in zip(a, b)), (a, b)
assert all(abs(x["val_loss"] - y["val_loss"]) <= float(sys.argv[3]) * y["val_loss"] for x, y in zip(a, b)), (a, b)
EOF
}
svg_ok() { # curves.svg: well-formed, four panels, a drawn training loss and evaluation
    python3 - "$1" <<'EOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg"
lines = [p.get("points").split() for p in root.iter(ns + "polyline")]
assert len(lines) == 4 and all(len(l) >= 2 for l in lines), [len(l) for l in lines]
texts = " ".join(t.text or "" for t in root.iter(ns + "text"))
assert "training loss" in texts and "steps" in texts and "seconds" in texts, texts
EOF
}

if plan s2 -n 2 --straight; then
    if expect_status 0 single_eval_every_runs "$LAUNCH" "$TMP/s2" --single --eval-every 5 "${common[@]}"; then
        grep -q "epoch 1 step 5/32 test_accuracy" <<<"$OUTPUT" && evals_at "$TMP/s2/run/summary.json" 5 10 14 &&
            pass single_evaluates_every_5_steps || fail single_evaluates_every_5_steps "$OUTPUT"
        svg_ok "$TMP/s2/run/curves.svg" && pass single_writes_curves_svg ||
            fail single_writes_curves_svg "$(head -c 600 "$TMP/s2/run/curves.svg")"
    fi
    if expect_status 0 pipeline_eval_every_runs "$LAUNCH" "$TMP/s2" --eval-every 5 "${common[@]}" --save "$TMP/p"; then
        evals_at "$TMP/s2/run/summary.json" 5 10 14 && svg_ok "$TMP/s2/run/curves.svg" &&
            pass pipeline_evaluates_every_5_steps || fail pipeline_evaluates_every_5_steps "$OUTPUT"
    fi
    cp "$TMP/s2/run/summary.json" "$TMP/p.json"
    expect_status 0 emulate_eval_every_runs "$LAUNCH" "$TMP/s2" --emulate --eval-every 5 "${common[@]}" --save "$TMP/e"
    same_dirs "$TMP/p" "$TMP/e" && pass pipeline_with_evaluations_equals_emulation ||
        fail pipeline_with_evaluations_equals_emulation
    # the pipeline's evaluations (stages overlapped) score what one process scores
    same_evals "$TMP/p.json" "$TMP/s2/run/summary.json" 0 && pass pipeline_evaluations_equal_emulation ||
        fail pipeline_evaluations_equal_emulation
    expect_status 0 pipeline_runs "$LAUNCH" "$TMP/s2" "${common[@]}" --save "$TMP/p0"
    ! same_dirs "$TMP/p" "$TMP/p0" && pass evaluations_drain_the_pipeline ||
        fail evaluations_drain_the_pipeline "the same weights with and without the drains"
    # the target: met at the first evaluation (any accuracy >= 0.01 on 5 classes), not later
    if expect_status 0 target_runs "$LAUNCH" "$TMP/s2" --eval-every 5 --target-accuracy 0.01 "${common[@]}"; then
        python3 - "$TMP/s2/run/summary.json" <<'EOF' && grep -q "reached target accuracy 0.0100 in .* (step 5)" <<<"$OUTPUT" &&
import json, sys
d = json.load(open(sys.argv[1]))
assert d["steps"] == 5 and d["target_step"] == 5 and 0 < d["time_to_target_s"] <= d["wall_s"], d
assert d["time_to_target_s"] == d["evaluations"][0]["time_s"], d
EOF
            pass target_met_at_first_evaluation || fail target_met_at_first_evaluation "$OUTPUT"
    fi
    if expect_status 0 target_unmet_runs "$LAUNCH" "$TMP/s2" --single --eval-every 7 --target-accuracy 1 "${common[@]}"; then
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["steps"] == 14 and d["target_step"] is None and d["time_to_target_s"] is None, d' \
            "$TMP/s2/run/summary.json" && grep -q "did not reach target accuracy" <<<"$OUTPUT" &&
            pass target_unmet_is_null || fail target_unmet_is_null "$(cat "$TMP/s2/run/summary.json")"
    fi
    expect_status 2 eval_every_zero_refused "$LAUNCH" "$TMP/s2" --single --eval-every 0 "${common[@]}" &&
        grep -q -- "--eval-every: '0' is out of range" <<<"$OUTPUT" && pass eval_every_zero_refused ||
        fail eval_every_zero_refused "$OUTPUT"
    expect_status 2 no_eval_with_eval_every_refused "$LAUNCH" "$TMP/s2" --eval-every 5 --no-eval "${common[@]}" &&
        grep -q "need the evaluation" <<<"$OUTPUT" && pass no_eval_with_eval_every_refused ||
        fail no_eval_with_eval_every_refused "$OUTPUT"
    "$LAUNCH" --help | grep -q -- "--eval-every N" && pass pdlaunch_help_lists_eval_every ||
        fail pdlaunch_help_lists_eval_every
else
    fail straight_2_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# plain data parallelism (one stage, 2 replicas) of a model without batch norm (whose running
# statistics are per replica): the replicas share the test set; the accuracy is the one
# process's exactly (--emulate: the same weights), the loss up to the summing order
sed '/op: batchnorm2d/d' "$ROOT/tests/data/models/tiny.yaml" >"$TMP/tiny_nobn.yaml"
if "$PDPLAN" "$TMP/tiny_nobn.yaml" -n 2 -b 1e12 -q -o "$TMP/dp2" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$TMP/dp2" >"$TMP/make.log" 2>&1 && grep -q 'stage 0 binary stage_0 replicas 2' "$TMP/dp2/launch.conf"; then
    expect_status 0 data_parallel_eval_runs "$LAUNCH" "$TMP/dp2" --eval-every 4 "${common[@]}" --save "$TMP/dp" &&
        cp "$TMP/dp2/run/summary.json" "$TMP/dp.json" &&
        expect_status 0 data_parallel_emulate_runs "$LAUNCH" "$TMP/dp2" --emulate --eval-every 4 "${common[@]}" --save "$TMP/de" &&
        same_dirs "$TMP/dp" "$TMP/de" && same_evals "$TMP/dp.json" "$TMP/dp2/run/summary.json" 1e-6 &&
        pass data_parallel_evaluations_equal_emulation || fail data_parallel_evaluations_equal_emulation
else
    fail data_parallel_plan "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# flush with replicas: stage 0 on 2 ranks; evaluations every 4 steps = every batch of 4
if plan r4 -n 4 && grep -q 'replicas 2' "$TMP/r4/launch.conf"; then
    f=(--schedule flush --microbatches 4 --eval-every 4)
    expect_status 0 replicated_flush_eval_runs "$LAUNCH" "$TMP/r4" "${f[@]}" "${common[@]}" --save "$TMP/rp" &&
        evals_at "$TMP/r4/run/summary.json" 4 8 12 14 && pass replicated_flush_evaluates ||
        fail replicated_flush_evaluates "$OUTPUT"
    expect_status 0 replicated_flush_single_runs "$LAUNCH" "$TMP/r4" --single "${f[@]}" "${common[@]}" --save "$TMP/rs"
    # 1e-5 relative, as test_schedules.sh: the replicas' gradients are summed in another order
    # and batch norm's running statistics are per replica (close_dirs skips them)
    out=$(close_dirs "$TMP/rp" "$TMP/rs" 1e-5) && pass replicated_flush_with_evaluations_equals_single ||
        fail replicated_flush_with_evaluations_equals_single "$out"
else
    fail replicated_plan "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# a token model: the validation loss every 10 steps, --target-loss, --eval-batches
tiny_corpus "$TMP/corp"
tiny_tokens_model "$TMP/tok.yaml"
tok=(--data "$TMP/corp" --seed 3 --no-trace --steps 40 --eval-every 10 --log-every 5)
if "$PDPLAN" "$TMP/tok.yaml" -n 2 --straight -q -o "$TMP/g" >"$TMP/plan.log" 2>&1 && make -s -C "$TMP/g" >"$TMP/make.log" 2>&1; then
    if expect_status 0 token_eval_every_runs "$LAUNCH" "$TMP/g" "${tok[@]}"; then
        python3 - "$TMP/g/run/summary.json" <<'EOF' && grep -q "step 10/[0-9]* test_accuracy .* val_loss" <<<"$OUTPUT" &&
import json, math, sys
d = json.load(open(sys.argv[1]))
ev = d["evaluations"]
assert [e["step"] for e in ev] == [10, 20, 30, 40], ev
assert all(0 < e["val_loss"] < 2 * math.log(24) for e in ev) and ev[-1]["val_loss"] < ev[0]["val_loss"], ev
assert d["val_loss"] == ev[-1]["val_loss"], d
EOF
            pass token_model_validation_loss_every_10_steps || fail token_model_validation_loss_every_10_steps "$OUTPUT"
        grep -q "validation loss (nats per token)" "$TMP/g/run/curves.svg" && svg_ok "$TMP/g/run/curves.svg" &&
            pass token_curves_show_validation_loss || fail token_curves_show_validation_loss
        # the loss after 20 steps, as a target: met there
        want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["evaluations"][1]["val_loss"])' "$TMP/g/run/summary.json")
        expect_status 0 target_loss_runs "$LAUNCH" "$TMP/g" "${tok[@]}" --target-loss "$want" &&
            python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["target_step"] == 20 and d["steps"] == 20 and d["target_loss"] > 0, d' \
                "$TMP/g/run/summary.json" && pass target_loss_stops_at_its_evaluation ||
            fail target_loss_stops_at_its_evaluation "$(cat "$TMP/g/run/summary.json")"
        expect_status 0 eval_batches_runs "$LAUNCH" "$TMP/g" --single "${tok[@]}" --eval-batches 1 &&
            python3 - "$TMP/g/run/summary.json" "$want" <<'EOF' && pass eval_batches_evaluates_fewer || fail eval_batches_evaluates_fewer "$OUTPUT"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["evaluations"][1]["val_loss"] != float(sys.argv[2]), d  # one minibatch of the set, not all
assert len(d["evaluations"]) == 4, d
EOF
    fi
else
    fail token_model_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi
finish
