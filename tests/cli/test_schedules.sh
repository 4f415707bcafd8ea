#!/usr/bin/env bash
# test_schedules.sh: synchronous schedules, replicated stages, vertical sync and traces, through
# pdplan, the generated stages and scripts/pdlaunch on a tiny synthetic model:
#  - flush and gpipe on a straight 3-stage pipeline give --single's weights bit for bit, and on a
#    replicated plan (stage 0 twice, 3 stages, 4 ranks) within 1e-5 relative; all differ from
#    plain 1f1b's sequential SGD, so the comparisons have teeth;
#  - replicas hold identical weights after every step (--check-replicas), also when the steps
#    are not a multiple of the replicas (PipeDream issue #59: no hang);
#  - 1f1b with a replicated stage equals the independent emulation (--emulate) bit for bit;
#  - 1f1b --vertical-sync equals the emulation of its definition and differs from plain 1f1b;
#  - run/trace.json is valid trace-event JSON with every rank and action kind, non-negative
#    durations and no overlap per rank and thread.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

cp "$ROOT/tests/data/models/tiny.yaml" "$TMP/tiny.yaml"

common=(--data synthetic --synthetic-n 512 --seed 3 --no-eval)
plan() { # name args...: plan and build into $TMP/name
    local g=$TMP/$1; shift
    "$PDPLAN" "$TMP/tiny.yaml" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1
}

# ---- straight 3 stages: flush and gpipe equal --single bit for bit ----
if plan s3 -n 3 --straight; then
    for s in flush gpipe; do
        expect_status 0 "${s}_3_stages_runs" "$LAUNCH" "$TMP/s3" --schedule $s --microbatches 4 --steps 11 "${common[@]}" --save "$TMP/p_$s" || continue
        expect_status 0 "${s}_3_single_runs" "$LAUNCH" "$TMP/s3" --single --schedule $s --microbatches 4 --steps 11 "${common[@]}" --save "$TMP/s_$s" || continue
        same_dirs "$TMP/p_$s" "$TMP/s_$s" && pass "${s}_3_stages_equals_single_bitwise" || fail "${s}_3_stages_equals_single_bitwise"
    done
    expect_status 0 single_1f1b_runs "$LAUNCH" "$TMP/s3" --single --steps 11 "${common[@]}" --save "$TMP/s_1f1b"
    ! same_dirs "$TMP/p_flush" "$TMP/s_1f1b" && pass flush_differs_from_per_minibatch_sgd || fail flush_differs_from_per_minibatch_sgd
    # vertical sync, planned
    if plan v3 -n 3 --straight --vertical-sync && grep -q 'vertical_sync = 1' "$TMP/v3/stage_1.c"; then
        expect_status 0 vsync_runs "$LAUNCH" "$TMP/v3" --steps 13 "${common[@]}" --save "$TMP/p_vs" &&
        expect_status 0 vsync_emulate_runs "$LAUNCH" "$TMP/v3" --emulate --steps 13 "${common[@]}" --save "$TMP/e_vs" &&
        expect_status 0 plain_1f1b_runs "$LAUNCH" "$TMP/s3" --steps 13 "${common[@]}" --save "$TMP/p_1f1b" && {
            same_dirs "$TMP/p_vs" "$TMP/e_vs" && pass vertical_sync_equals_its_definition || fail vertical_sync_equals_its_definition
            ! same_dirs "$TMP/p_vs" "$TMP/p_1f1b" && pass vertical_sync_differs_from_plain_1f1b || fail vertical_sync_differs_from_plain_1f1b
        }
    else
        fail vertical_sync_plans "$(tail -3 "$TMP/plan.log")"
    fi
else
    fail straight_3_builds "$(tail -5 "$TMP/plan.log" "$TMP/make.log")"
fi

# ---- replicated: 4 workers, stage 0 on 2 replicas (ranks 0-1), 3 stages ----
if plan r4 -n 4 && grep -q 'stage 0 binary stage_0 replicas 2 ranks 0 1' "$TMP/r4/launch.conf"; then
    for s in flush gpipe; do
        expect_status 0 "${s}_replicated_runs" "$LAUNCH" "$TMP/r4" --schedule $s --microbatches 4 --steps 11 --check-replicas "${common[@]}" --save "$TMP/rp_$s" || continue
        grep -q 'stage 0: 2 replicas identical after 3 updates' <<<"$OUTPUT" && pass "${s}_replicas_identical_every_step" || fail "${s}_replicas_identical_every_step" "$OUTPUT"
        expect_status 0 "${s}_replicated_single_runs" "$LAUNCH" "$TMP/r4" --single --schedule $s --microbatches 4 --steps 11 "${common[@]}" --save "$TMP/rs_$s" || continue
        if out=$(close_dirs "$TMP/rp_$s" "$TMP/rs_$s" 1e-5); then pass "${s}_replicated_equals_single"; echo "  $out"
        else fail "${s}_replicated_equals_single" "$out"; fi
    done
    # and the tolerance is tight enough to fail: per-minibatch SGD is far away
    expect_status 0 replicated_single_1f1b_runs "$LAUNCH" "$TMP/r4" --single --steps 11 "${common[@]}" --save "$TMP/rs_1f1b" &&
        { ! close_dirs "$TMP/rp_flush" "$TMP/rs_1f1b" 1e-5 >/dev/null && pass replicated_comparison_has_teeth || fail replicated_comparison_has_teeth; }
    # 1f1b-RR, 13 steps (odd: not a multiple of the 2 replicas) against the emulation
    if expect_status 0 rr_1f1b_runs timeout 60 "$LAUNCH" "$TMP/r4" --steps 13 --check-replicas "${common[@]}" --save "$TMP/rp_1f1b"; then
        grep -q 'stage 0: 2 replicas identical after 7 updates' <<<"$OUTPUT" && pass rr_odd_steps_no_hang_replicas_identical || fail rr_odd_steps_no_hang_replicas_identical "$OUTPUT"
        cp "$TMP/r4/run/trace.json" "$TMP/trace.json"
        # summary.json: the replicated stage reports its slowest replica's compute too
        if python3 - "$TMP/r4/run/summary.json" <<'EOF2'
import json, sys
st = json.load(open(sys.argv[1]))["per_stage"][0]
assert st["slowest_replica_compute_ms"] >= st["measured_compute_ms"] > 0, st
EOF2
        then pass summary_slowest_replica; else fail summary_slowest_replica "$(cat "$TMP/r4/run/summary.json")"; fi
    fi
    expect_status 0 rr_emulate_runs "$LAUNCH" "$TMP/r4" --emulate --steps 13 "${common[@]}" --save "$TMP/re_1f1b"
    same_dirs "$TMP/rp_1f1b" "$TMP/re_1f1b" && pass rr_1f1b_equals_emulation || fail rr_1f1b_equals_emulation
    # replica counts and step counts that do not divide: 3 steps on 2 replicas, every schedule
    for s in 1f1b flush gpipe; do
        expect_status 0 "${s}_3_steps_on_2_replicas" timeout 60 "$LAUNCH" "$TMP/r4" --schedule $s --steps 3 --check-replicas "${common[@]}" && pass "${s}_3_steps_on_2_replicas"
    done
    # vertical sync on a replicated plan is refused at generation
    expect_status 2 vsync_replicated_refused "$PDPLAN" "$TMP/tiny.yaml" -n 4 --vertical-sync -q -o "$TMP/vr" &&
        { grep -q 'vertical sync needs a straight pipeline' <<<"$OUTPUT" && pass vsync_replicated_refused || fail vsync_replicated_refused "$OUTPUT"; }
else
    fail replicated_builds "$(tail -5 "$TMP/plan.log" "$TMP/make.log"; cat "$TMP/r4/launch.conf" 2>/dev/null)"
fi

# ---- trace.json of the 1f1b-RR run: 4 ranks ----
if [ -f "$TMP/trace.json" ] && python3 - "$TMP/trace.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ev = [e for e in d["traceEvents"] if e.get("ph") == "X"]
assert ev, "no events"
pids = {e["pid"] for e in ev}
assert pids == {0, 1, 2, 3}, pids
kinds = {e["cat"] for e in ev}
for k in ["forward", "backward", "send_act", "recv_act", "send_grad", "recv_grad", "allreduce", "step"]:
    assert k in kinds, (k, kinds)
for e in ev:
    assert e["dur"] >= 0 and e["ts"] >= 0, e
    assert e["name"].split()[0] == e["cat"], e
    if e["cat"].startswith("send"): assert " -> " in e["name"], e
    if e["cat"].startswith("recv"): assert " <- " in e["name"], e
# allreduce only on the replicated stage's ranks
assert {e["pid"] for e in ev if e["cat"] == "allreduce"} == {0, 1}
# one thread of control per rank: no two events of a rank overlap
for p in pids:
    xs = sorted((e["ts"], e["ts"] + e["dur"]) for e in ev if e["pid"] == p)
    for (a0, a1), (b0, b1) in zip(xs, xs[1:]):
        assert b0 >= a1 - 1e-3, (p, a0, a1, b0)
# rank 0 (stage 0, replica 0) ran the even minibatches, rank 1 the odd ones
fw = lambda p: {int(e["name"].split()[1]) for e in ev if e["pid"] == p and e["cat"] == "forward"}
assert fw(0) == set(range(0, 13, 2)) and fw(1) == set(range(1, 13, 2)), (fw(0), fw(1))
assert fw(2) == set(range(13))
EOF
then pass trace_json_structure; else fail trace_json_structure; fi
finish
