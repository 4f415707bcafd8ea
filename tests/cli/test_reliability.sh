#!/usr/bin/env bash
# test_reliability.sh: issue 8's runtime guarantees on a small synthetic model (2 straight
# stages, and 3 stages with stage 0 on 2 replicas), under 1f1b and flush:
#  - determinism: two runs with the same seed save bitwise-identical weights;
#  - exact resume: a run whose last rank SIGKILLs itself right after the checkpoint at step 8
#    (PDRT_TEST_KILL_AFTER_CKPT), then --resume, saves the bytes of an uninterrupted run with the
#    same --checkpoint-every;
#  - bad checkpoints (a flipped byte, a truncated file, another plan's files, an incomplete set)
#    are refused naming the file and the reason, non-zero exit;
#  - a rank killed at a random moment (3 times, random rank) stops the job within 10 s, naming
#    that rank and its stage;
#  - a NaN/Inf in the loss or a gradient (PDRT_INJECT_NONFINITE) stops training naming the stage
#    and the layer; --skip-nonfinite drops the minibatch instead and counts it in summary.json.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

cp "$ROOT/tests/data/models/tiny.yaml" "$TMP/tiny.yaml"

# same_dirs (tests/lib.sh) compares every weight file, batch-norm statistics included
plan() { # name args...: plan and build into $TMP/name
    local g=$TMP/$1; shift
    "$PDPLAN" "$TMP/tiny.yaml" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1
}
common=(--data synthetic --synthetic-n 512 --seed 5 --no-eval --no-trace)

plan s2 -n 2 --straight || { fail plan_s2 "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; finish; exit 1; }
plan r4 -n 4 || { fail plan_r4 "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; finish; exit 1; }
grep -q 'stage 0 binary stage_0 replicas 2' "$TMP/r4/launch.conf" || fail plan_r4 "stage 0 is not replicated: $(cat "$TMP/r4/launch.conf")"
last_rank() { awk '$1 == "stage" { for (i = 7; i <= NF; i++) r = $i } END { print r }' "$TMP/$1/launch.conf"; }

# ---- determinism and exact resume: 1 and 2 replicas, 1f1b and flush ----
for g in s2 r4; do
    for sch in 1f1b flush; do
        c=${g}_$sch
        run=("$LAUNCH" "$TMP/$g" --schedule "$sch" --microbatches 4 --steps 18 "${common[@]}")
        expect_status 0 "${c}_run_a" "${run[@]}" --save "$TMP/$c.a" || continue
        expect_status 0 "${c}_run_b" "${run[@]}" --save "$TMP/$c.b" || continue
        if same_dirs "$TMP/$c.a" "$TMP/$c.b"; then pass "${c}_deterministic"
        else fail "${c}_deterministic" "two runs with seed 5 differ"; fi
        ck=(--checkpoint-every 4 --checkpoint-dir "$TMP/$c.ck")
        expect_status 0 "${c}_uninterrupted" "${run[@]}" "${ck[@]}" --checkpoint-dir "$TMP/$c.u" --save "$TMP/$c.u" || continue
        victim=$(last_rank "$g")
        PDRT_TEST_KILL_AFTER_CKPT=8:$victim "${run[@]}" "${ck[@]}" --save "$TMP/$c.k" >"$TMP/$c.kill" 2>&1
        rc=$?
        if [ "$rc" -ne 0 ] && grep -q "pdlaunch: rank $victim (stage [0-9]) failed" "$TMP/$c.kill" &&
           [ ! -e "$TMP/$c.k" ]; then pass "${c}_killed_after_checkpoint"
        else fail "${c}_killed_after_checkpoint" "rc $rc: $(tail -3 "$TMP/$c.kill")"; continue; fi
        if expect_status 0 "${c}_resume_runs" "${run[@]}" "${ck[@]}" --resume --save "$TMP/$c.k"; then
            grep -q 'resumed from .*step-0000000008' <<<"$OUTPUT" || fail "${c}_resume_runs" "no 'resumed from' line"
            if same_dirs "$TMP/$c.u" "$TMP/$c.k"; then pass "${c}_resume_bitwise_equals_uninterrupted"
            else fail "${c}_resume_bitwise_equals_uninterrupted"; fi
        fi
    done
done
# the comparison has teeth: under 1f1b, draining every 4 steps changes the weights
if [ -d "$TMP/s2_1f1b.u" ] && ! same_dirs "$TMP/s2_1f1b.a" "$TMP/s2_1f1b.u"; then pass checkpoint_drain_changes_1f1b
else fail checkpoint_drain_changes_1f1b "1f1b with drains every 4 steps gave the undrained weights"; fi
# and a resume from a different step count would not match: resuming with more steps differs
if [ -d "$TMP/s2_flush.u" ]; then
    cp -r "$TMP/s2_flush.u" "$TMP/ckx"
    expect_status 0 resume_longer_runs "$LAUNCH" "$TMP/s2" --schedule flush --microbatches 4 --steps 22 "${common[@]}" --checkpoint-every 4 --checkpoint-dir "$TMP/ckx" --resume --save "$TMP/ckx.s" &&
        { grep -q 'resumed from .*step-0000000018' <<<"$OUTPUT" && ! same_dirs "$TMP/s2_flush.u" "$TMP/ckx.s" &&
          pass resume_continues_training || fail resume_continues_training "$OUTPUT"; }
    # the layers' profile counts the minibatches this run ran (4), not the whole 22
    if grep -q '1f1b\|flush' "$TMP/s2/run/profile.yaml" 2>/dev/null &&
       grep -q '4 minibatches' "$TMP/s2/run/profile.yaml" && grep -q '^pd_profile: 1$' "$TMP/s2/run/profile.yaml"; then
        pass resume_writes_profile
    else
        fail resume_writes_profile "$(head -3 "$TMP/s2/run/profile.yaml" 2>&1)"
    fi
fi

# ---- bad checkpoints: s2_1f1b.u holds the sets at steps 16 and 18 ----
bad() { # name why-regex: resume from $TMP/bad must fail naming the file and the reason
    local name=$1 want=$2
    OUTPUT=$("$LAUNCH" "$TMP/s2" --schedule 1f1b --microbatches 4 --steps 18 "${common[@]}" --checkpoint-dir "$TMP/bad" --resume 2>&1)
    local rc=$?
    if [ "$rc" -ne 0 ] && grep -qE -- "$want" <<<"$OUTPUT" && grep -q 'pdlaunch: rank' <<<"$OUTPUT"; then
        pass "$name"; echo "  $(grep -m1 -oE 'checkpoint .*|--resume: .*' <<<"$OUTPUT" | cut -c1-160)"
    else fail "$name" "rc $rc: $(tail -4 <<<"$OUTPUT" | tr '\n' '|')"; fi
}
fresh() { rm -rf "$TMP/bad"; cp -r "$TMP/s2_1f1b.u" "$TMP/bad"; rm -f "$TMP/bad"/*.f32; }
if [ -f "$TMP/s2_1f1b.u/step-0000000018/rank-1.ckpt" ]; then
    f=$TMP/bad/step-0000000018/rank-1.ckpt
    # a corrupt newest set: refused, named, and the intact older set is used (issue 16)
    fresh; python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0x10; open(p,'wb').write(b)" "$f"
    expect_status 0 checkpoint_corrupt_newest_falls_back "$LAUNCH" "$TMP/s2" --schedule 1f1b --microbatches 4 --steps 18 "${common[@]}" --checkpoint-every 4 --checkpoint-dir "$TMP/bad" --resume --save "$TMP/fb0" &&
        { grep -q 'checkpoint .*step-0000000018/rank-1.ckpt refused: checksum mismatch' <<<"$OUTPUT" &&
          grep -q 'skipping the checkpoint set .*step-0000000018' <<<"$OUTPUT" &&
          grep -q 'resumed from .*step-0000000016' <<<"$OUTPUT" && same_dirs "$TMP/s2_1f1b.u" "$TMP/fb0" &&
          pass checkpoint_corrupt_newest_falls_back || fail checkpoint_corrupt_newest_falls_back "$OUTPUT"; }
    # every set damaged (a flipped byte in one, a truncated file in the other): refused, naming both
    fresh; python3 -c "import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=0x10; open(p,'wb').write(b)" "$f"
    truncate -s 300 "$TMP/bad/step-0000000016/rank-0.ckpt"
    bad checkpoint_all_sets_damaged_refused "checkpoint .*step-0000000018/rank-1.ckpt refused: checksum mismatch"
    grep -q "checkpoint .*step-0000000016/rank-0.ckpt refused: truncated" <<<"$OUTPUT" &&
        grep -q -- "--resume: no intact checkpoint set" <<<"$OUTPUT" && pass checkpoint_truncated_refused ||
        fail checkpoint_truncated_refused "$(tail -4 <<<"$OUTPUT")"
    fresh; rm -f "$f"; rm -rf "$TMP/bad/step-0000000016"
    bad checkpoint_incomplete_set_refused "--resume: no complete checkpoint set"
    fresh; rm -f "$f"   # the set at 18 is incomplete: the one at 16 is used
    expect_status 0 checkpoint_falls_back_to_complete_set "$LAUNCH" "$TMP/s2" --schedule 1f1b --microbatches 4 --steps 18 "${common[@]}" --checkpoint-every 4 --checkpoint-dir "$TMP/bad" --resume --save "$TMP/fb" &&
        { grep -q 'resumed from .*step-0000000016' <<<"$OUTPUT" && same_dirs "$TMP/s2_1f1b.u" "$TMP/fb" &&
          pass checkpoint_falls_back_to_complete_set || fail checkpoint_falls_back_to_complete_set "$OUTPUT"; }
    # another plan: the same model and layout planned with another schedule recorded
    if plan o2 -n 2 --straight --schedule flush; then
        fresh
        OUTPUT=$("$LAUNCH" "$TMP/o2" --schedule 1f1b --microbatches 4 --steps 18 "${common[@]}" --checkpoint-dir "$TMP/bad" --resume 2>&1)
        rc=$?
        if [ "$rc" -ne 0 ] && grep -qE 'checkpoint .*rank-[01].ckpt refused: written for another plan \(plan hash [0-9a-f]{16}; this plan.s is [0-9a-f]{16}\)' <<<"$OUTPUT"; then
            pass checkpoint_other_plan_refused
        else fail checkpoint_other_plan_refused "rc $rc: $(tail -3 <<<"$OUTPUT" | tr '\n' '|')"; fi
    else fail checkpoint_other_plan_refused "planning o2 failed"; fi
fi

# ---- a rank killed at a random moment: 3 times, a random rank of the replicated plan ----
gen=$TMP/r4
worst=0
for i in 1 2 3; do
    "$LAUNCH" "$gen" --steps 100000 --log-every 1 "${common[@]}" >"$TMP/rk.out" 2>"$TMP/rk.err" &
    lp=$!
    for _ in $(seq 100); do grep -q 'loss' "$TMP/rk.out" && break; sleep 0.1; done
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    want=$((RANDOM % 4)) victim=""
    for p in $(pgrep -f "^$gen/stage_"); do
        r=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
        [ "$r" = "$want" ] && victim=$p
    done
    if [ -z "$victim" ]; then
        fail random_kill_$i "rank $want not found: $(tail -3 "$TMP/rk.err")"; kill "$lp" 2>/dev/null; wait "$lp"; continue
    fi
    st=$(awk -v r="$want" '$1 == "stage" { for (i = 7; i <= NF; i++) if ($i == r) print $2 }' "$gen/launch.conf")
    t0=$(date +%s.%N)
    kill -9 "$victim"
    for _ in $(seq 150); do kill -0 "$lp" 2>/dev/null || break; sleep 0.05; done
    t1=$(date +%s.%N)
    if kill -0 "$lp" 2>/dev/null; then
        fail random_kill_$i "still running 7.5 s after killing rank $want"
        pkill -9 -P "$lp" 2>/dev/null; kill "$lp" 2>/dev/null; wait "$lp"; continue
    fi
    wait "$lp"; rc=$?
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    if [ "$rc" -ne 0 ] && awk -v s="$secs" 'BEGIN { exit !(s < 10) }' &&
       grep -q "pdlaunch: rank $want (stage $st) failed" "$TMP/rk.err"; then
        pass random_kill_$i; echo "  killed rank $want (stage $st) after $(grep -c loss "$TMP/rk.out") steps: job stopped in ${secs}s (exit $rc)"
    else
        fail random_kill_$i "rank $want stage $st: rc $rc after ${secs}s: $(tail -3 "$TMP/rk.err" | tr '\n' '|')"
    fi
done

# ---- numerical faults ----
nf=("$LAUNCH" "$TMP/s2" --steps 12 "${common[@]}")
OUTPUT=$(PDRT_INJECT_NONFINITE=loss:5 "${nf[@]}" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && grep -qE 'pdlaunch: rank 1 \(stage 1\) failed: stage 1: the loss is NaN at step 5 \(after layer fc3\)' <<<"$OUTPUT"; then
    pass nonfinite_loss_stops
else fail nonfinite_loss_stops "rc $rc: $(grep -m2 'pdrt\|pdlaunch' <<<"$OUTPUT" | tr '\n' '|')"; fi
# an Inf in the model input: batch norm turns it into NaN, the ReLUs after it into zeros (the loss
# stays finite), and stage 0's backward finds the NaN in its first layer's gradient
OUTPUT=$(PDRT_INJECT_NONFINITE=input:6 "${nf[@]}" 2>&1); rc=$?
if [ "$rc" -ne 0 ] && grep -qE 'pdlaunch: rank 0 \(stage 0\) failed: stage 0: the gradient of layer conv \(weight\) is not finite at step 6' <<<"$OUTPUT"; then
    pass nonfinite_gradient_stops_naming_layer
else fail nonfinite_gradient_stops_naming_layer "rc $rc: $(grep -m2 'pdrt\|pdlaunch' <<<"$OUTPUT" | tr '\n' '|')"; fi
finite_and_skipped() { # dir summary want_skipped: every weight finite, summary's skipped_steps
    python3 - "$@" <<'EOF'
import array, glob, json, math, sys
n = 0
for f in glob.glob(sys.argv[1] + "/*.f32"):
    a = array.array("f"); a.frombytes(open(f, "rb").read())
    assert all(math.isfinite(x) for x in a), f
    n += 1
d = json.load(open(sys.argv[2]))
assert n > 0 and d["skipped_steps"] == int(sys.argv[3]), d
EOF
}
expect_status 0 clean_run "${nf[@]}" --save "$TMP/nf.clean"
for inj in input:5 loss:3 grad:6:1; do
    if expect_status 0 "skip_nonfinite_$inj" env PDRT_INJECT_NONFINITE=$inj "${nf[@]}" --skip-nonfinite --save "$TMP/nf.$inj"; then
        if finite_and_skipped "$TMP/nf.$inj" "$TMP/s2/run/summary.json" 1 && ! same_dirs "$TMP/nf.clean" "$TMP/nf.$inj"; then
            pass "skip_nonfinite_${inj}_drops_one_minibatch"
        else fail "skip_nonfinite_${inj}_drops_one_minibatch" "$(cat "$TMP/s2/run/summary.json")"; fi
    fi
done
expect_status 0 skip_nonfinite_clean_run "${nf[@]}" --skip-nonfinite --save "$TMP/nf.clean2" &&
    { same_dirs "$TMP/nf.clean" "$TMP/nf.clean2" && finite_and_skipped "$TMP/nf.clean2" "$TMP/s2/run/summary.json" 0 &&
      pass skip_nonfinite_changes_nothing_when_finite || fail skip_nonfinite_changes_nothing_when_finite; }

# the options are the pipeline's: --single/--emulate refuse them before starting anything
expect_status 2 single_refuses_checkpoints "$LAUNCH" "$TMP/s2" --single --steps 2 --checkpoint-every 1 &&
    { grep -q 'are for the pipeline, not --single' <<<"$OUTPUT" && pass single_refuses_checkpoints || fail single_refuses_checkpoints "$OUTPUT"; }
expect_status 2 emulate_refuses_skip_nonfinite "$LAUNCH" "$TMP/s2" --emulate --steps 2 --skip-nonfinite &&
    { grep -q 'is for the pipeline, not --emulate' <<<"$OUTPUT" && pass emulate_refuses_skip_nonfinite || fail emulate_refuses_skip_nonfinite "$OUTPUT"; }
finish
