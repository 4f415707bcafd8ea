#!/usr/bin/env bash
# test_interleaved_state.sh: what the interleaved executor (runtime/executor_chunks.c,
# executor_chunks_step.c) does beyond training, each against a reference:
#  - tied weights (tiny_tied: fc_out's weight is fc_in's) between chunks on two ranks (2 ranks x 2
#    chunks: stages 0 and 3) and between two chunks of one rank (3 x 2: stages 0 and 3 on rank 0)
#    train to --single's weights bit for bit, --check-replicas finding the copies identical after
#    every update; an --init from another seed's weights fills both copies;
#  - clipping by the global norm (the chunks' norms summed over every stage in stage order)
#    equals --single bit for bit, with a tie (whose copy counts once) and on tiny (batch norm,
#    3 ranks), where clipping changes the weights;
#  - a one-block GPT whose head is tied to its token embedding across ranks, clipped by its
#    optimizer's clip_grad_norm, equals --single bit for bit;
#  - --skip-nonfinite (PDRT_INJECT_NONFINITE): without it a NaN loss or gradient stops the run
#    naming the stage; with it a NaN loss's minibatch is dropped on every stage, bit for bit as a
#    2-stage flush plan (the one-stage-per-rank executor) drops it, a NaN gradient on stage 3
#    there and upstream, summary.json counting it; a clean run with it equals one without;
#  - checkpoints: a file per stage (rank-S.ckpt); a run whose last rank kills itself after the
#    checkpoint at step 8, resumed, equals the uninterrupted run bit for bit (whose drains change
#    the weights); an incomplete set is refused;
#  - run/profile.yaml lists every layer of the model in stage order.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

plan() { # name model args...: plan and build into $TMP/name
    local g=$TMP/$1 m=$2; shift 2
    "$PDPLAN" "$m" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1 ||
        { fail "plan_$(basename "$g")" "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; return 1; }
}
equal() { # name A B: bitwise, else the worst difference
    if same_dirs "$2" "$3"; then pass "$1"; else fail "$1" "$(close_dirs "$2" "$3" 0)"; fi
}

# ---- tied weights: across ranks (2 x 2) and within a rank (3 x 2); clipping with a tie ----
TIED=tests/data/models/tiny_tied.yaml
tc=(--data synthetic --synthetic-n 256 --seed 3 --no-eval --steps 11)
for pv in 22 32; do
    p=${pv:0:1}
    plan t$pv "$TIED" -n "$p" --schedule interleaved --chunks 2 --microbatches $((2 * p)) || continue
    g=$TMP/t$pv
    grep -q 'ties = (const pdrt_tie\[\]){{0, 3, 0, 1}}' "$g/stage_0.c" && grep -q 'ties = (const pdrt_tie\[\]){{0, 0, 0, 0}}' "$g/stage_3.c" ||
        { fail "tie_between_stages_0_and_3_$pv" "$(grep -h 'pdrt_tie\[\]' "$g"/stage_*.c)"; continue; }
    ups=$((p == 2 ? 3 : 2)) # batches of 2p in 11 steps
    expect_status 0 "tied_${pv}_runs" "$LAUNCH" "$g" "${tc[@]}" --check-replicas --save "$TMP/ti$pv" &&
        { grep -q "stage 3: tied weights identical to their owners' after $ups updates" <<<"$OUTPUT" &&
            pass "tied_${pv}_copies_identical" || fail "tied_${pv}_copies_identical" "$(tail -4 <<<"$OUTPUT")"; }
    expect_status 0 "tied_${pv}_single_runs" "$LAUNCH" "$g" --single "${tc[@]}" --save "$TMP/ts$pv" &&
        equal "tied_${pv}_equals_single_bitwise" "$TMP/ti$pv" "$TMP/ts$pv"
done
if [ -d "$TMP/ti22" ]; then
    g=$TMP/t22
    [ -f "$TMP/ti22/fc_in.weight.f32" ] && [ ! -e "$TMP/ti22/fc_out.weight.f32" ] &&
        pass tied_save_writes_the_owner_only || fail tied_save_writes_the_owner_only "$(ls "$TMP/ti22")"
    expect_status 0 tied_init_runs "$LAUNCH" "$g" "${tc[@]}" --init "$TMP/ti32" --seed 9 --steps 5 --check-replicas &&
        { grep -q "stage 3: tied weights identical to their owners' after 2 updates" <<<"$OUTPUT" &&
            pass tied_init_fills_both_copies || fail tied_init_fills_both_copies "$OUTPUT"; }
    clip=(--clip-grad-norm 0.05)
    expect_status 0 tied_clip_runs "$LAUNCH" "$g" "${tc[@]}" "${clip[@]}" --save "$TMP/tic" &&
        expect_status 0 tied_clip_single_runs "$LAUNCH" "$g" --single "${tc[@]}" "${clip[@]}" --save "$TMP/tsc" &&
        { equal tied_clip_equals_single_bitwise "$TMP/tic" "$TMP/tsc"
          ! same_dirs "$TMP/tic" "$TMP/ti22" && pass tied_clipping_changes_the_weights || fail tied_clipping_changes_the_weights; }
fi

# ---- a one-block GPT whose head is tied to its token embedding (GPT-2's tie), clipped by its
# optimizer's clip_grad_norm, on 2 ranks x 2 chunks: wte on stage 0 (rank 0), head on stage 3
# (rank 1) ----
if tiny_corpus "$TMP/corp"; then
    tiny_gpt_model "$TMP/gpt.yaml" tiny_gpt_tied ", clip_grad_norm: 0.5" ", bias: false, tie: wte"
    if plan gpt "$TMP/gpt.yaml" -n 2 --schedule interleaved --chunks 2 --microbatches 4; then
        gc=(--data "$TMP/corp" --seed 3 --no-trace --no-eval --steps 20)
        grep -q 'ties = (const pdrt_tie\[\]){{0, 3, 0, 1}}' "$TMP/gpt/stage_0.c" || fail gpt_tie_across_ranks "$(grep -h 'pdrt_tie\[\]' "$TMP/gpt"/stage_*.c)"
        expect_status 0 gpt_runs "$LAUNCH" "$TMP/gpt" "${gc[@]}" --check-replicas --save "$TMP/gpt_i" &&
            { grep -q "stage 3: tied weights identical to their owners' after 5 updates" <<<"$OUTPUT" &&
                pass gpt_tied_copies_identical || fail gpt_tied_copies_identical "$(tail -3 <<<"$OUTPUT")"; }
        expect_status 0 gpt_single_runs "$LAUNCH" "$TMP/gpt" --single "${gc[@]}" --save "$TMP/gpt_s" &&
            equal gpt_tied_clipped_equals_single_bitwise "$TMP/gpt_i" "$TMP/gpt_s"
        expect_status 0 gpt_unclipped_runs "$LAUNCH" "$TMP/gpt" "${gc[@]}" --clip-grad-norm 0 --save "$TMP/gpt_n" &&
            { ! same_dirs "$TMP/gpt_i" "$TMP/gpt_n" && pass gpt_clipping_changes_the_weights || fail gpt_clipping_changes_the_weights; }
    fi
else
    fail tiny_corpus "prepare_shakespeare.py --text failed"
fi

# ---- tiny on 3 ranks x 2 chunks: clipping, --skip-nonfinite, checkpoints, profile ----
T=$TMP/tiny
if plan tiny tests/data/models/tiny.yaml -n 3 --schedule interleaved --microbatches 6; then
    common=(--data synthetic --synthetic-n 512 --seed 5 --no-eval)
    c=("$LAUNCH" "$T" "${common[@]}" --steps 12)
    expect_status 0 tiny_clean_runs "${c[@]}" --save "$TMP/clean" || { finish; exit 1; }
    [ "$(grep -c '^  - {name: ' "$T/run/profile.yaml")" = 11 ] &&
        [ "$(grep -o '^  - {name: [a-z0-9]*' "$T/run/profile.yaml" | cut -d' ' -f5 | tr '\n' ' ')" = \
          "conv bn relu1 pool flat fc1 relu2 drop fc2 relu3 fc3 " ] && grep -q '3 ranks x 2 chunks, interleaved, 12 minibatches' "$T/run/profile.yaml" &&
        pass profile_lists_every_layer_in_stage_order || fail profile_lists_every_layer_in_stage_order "$(cat "$T/run/profile.yaml" 2>&1 | head -20)"
    clip=(--clip-grad-norm 0.05)
    expect_status 0 tiny_clip_runs "${c[@]}" "${clip[@]}" --save "$TMP/clip" &&
        expect_status 0 tiny_clip_single_runs "$LAUNCH" "$T" --single "${common[@]}" --steps 12 "${clip[@]}" --save "$TMP/clip_s" &&
        { equal tiny_clip_equals_single_bitwise "$TMP/clip" "$TMP/clip_s"
          ! same_dirs "$TMP/clip" "$TMP/clean" && pass tiny_clipping_changes_the_weights || fail tiny_clipping_changes_the_weights; }

    # non-finite values: stopped, naming the stage; or dropped
    OUTPUT=$(PDRT_INJECT_NONFINITE=loss:5 "${c[@]}" 2>&1); rc=$?
    [ "$rc" -ne 0 ] && grep -q 'stage 5: the loss is NaN at step 5 (after layer fc3)' <<<"$OUTPUT" &&
        pass nonfinite_loss_stops || fail nonfinite_loss_stops "rc $rc: $(grep -m2 'pdrt\|pdlaunch' <<<"$OUTPUT" | tr '\n' '|')"
    OUTPUT=$(PDRT_INJECT_NONFINITE=grad:6:3 "${c[@]}" 2>&1); rc=$?
    [ "$rc" -ne 0 ] && grep -q 'stage 3: the gradient of layer fc1 (weight) is not finite at step 6' <<<"$OUTPUT" &&
        pass nonfinite_gradient_stops || fail nonfinite_gradient_stops "rc $rc: $(grep -m2 'pdrt\|pdlaunch' <<<"$OUTPUT" | tr '\n' '|')"
    skipped() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["skipped_steps"], *[s["skipped"] for s in d["per_stage"]])' "$T/run/summary.json"; }
    finite() { python3 -c '
import array, glob, math, sys
fs = glob.glob(sys.argv[1] + "/*.f32")
for f in fs:
    a = array.array("f"); a.frombytes(open(f, "rb").read())
    assert all(math.isfinite(x) for x in a), f
sys.exit(0 if fs else 1)' "$1"; }
    # a rank's row counts the most any of its chunks dropped: loss, every stage; gradient on
    # stage 3 (rank 0), stages 0-3 (every rank)
    for inj in loss:5 grad:6:3; do
        if expect_status 0 "skip_${inj}_runs" env PDRT_INJECT_NONFINITE=$inj "${c[@]}" --skip-nonfinite --save "$TMP/skip_$inj"; then
            got=$(skipped)
            [ "$got" = "1 1 1 1" ] && finite "$TMP/skip_$inj" && ! same_dirs "$TMP/skip_$inj" "$TMP/clean" &&
                pass "skip_${inj}_drops_one_minibatch" || fail "skip_${inj}_drops_one_minibatch" "skipped $got"
        fi
    done
    expect_status 0 skip_clean_runs "${c[@]}" --skip-nonfinite --save "$TMP/clean2" &&
        { same_dirs "$TMP/clean" "$TMP/clean2" && [ "$(skipped)" = "0 0 0 0" ] &&
            pass skip_nonfinite_changes_nothing_when_finite || fail skip_nonfinite_changes_nothing_when_finite; }
    # the one-stage-per-rank executor drops the same minibatch to the same weights
    if [ -d "$TMP/skip_loss:5" ] && plan flush2 tests/data/models/tiny.yaml -n 2 --straight --schedule flush --microbatches 6; then
        expect_status 0 flush_skip_runs env PDRT_INJECT_NONFINITE=loss:5 "$LAUNCH" "$TMP/flush2" "${common[@]}" --steps 12 --skip-nonfinite --save "$TMP/flush_skip" &&
            equal skip_loss_equals_per_stage_executor_bitwise "$TMP/skip_loss:5" "$TMP/flush_skip"
    fi

    # checkpoints: every 4 steps of 18; the last rank dies after the set at step 8
    ck=("$LAUNCH" "$T" "${common[@]}" --steps 18 --checkpoint-every 4)
    if expect_status 0 ckpt_uninterrupted_runs "${ck[@]}" --checkpoint-dir "$TMP/cku" --save "$TMP/cku_w"; then
        files=$(cd "$TMP/cku/step-0000000018" 2>/dev/null && ls | tr '\n' ' ')
        [ "$files" = "rank-0.ckpt rank-1.ckpt rank-2.ckpt rank-3.ckpt rank-4.ckpt rank-5.ckpt " ] &&
            [ "$(ls "$TMP/cku")" = "$(printf 'step-0000000016\nstep-0000000018')" ] &&
            pass ckpt_a_file_per_stage || fail ckpt_a_file_per_stage "$(ls -R "$TMP/cku")"
        expect_status 0 ckpt_undrained_runs "$LAUNCH" "$T" "${common[@]}" --steps 18 --save "$TMP/ck_nodrain" &&
            { ! same_dirs "$TMP/cku_w" "$TMP/ck_nodrain" && pass ckpt_drains_change_the_weights || fail ckpt_drains_change_the_weights; }
        OUTPUT=$(PDRT_TEST_KILL_AFTER_CKPT=8:2 "${ck[@]}" --checkpoint-dir "$TMP/ckk" --save "$TMP/ckk_w" 2>&1); rc=$?
        [ "$rc" -ne 0 ] && grep -q 'pdlaunch: rank 2 .*failed' <<<"$OUTPUT" && [ ! -e "$TMP/ckk_w" ] &&
            pass ckpt_killed_after_checkpoint || fail ckpt_killed_after_checkpoint "rc $rc: $(tail -2 <<<"$OUTPUT")"
        if expect_status 0 ckpt_resume_runs "${ck[@]}" --checkpoint-dir "$TMP/ckk" --resume --save "$TMP/ckk_w"; then
            grep -q 'resumed from .*step-0000000008 (step 8' <<<"$OUTPUT" &&
                grep -q '"resumed_from_step": 8' "$T/run/summary.json" || fail ckpt_resume_says_where "$OUTPUT"
            equal ckpt_resume_equals_uninterrupted_bitwise "$TMP/cku_w" "$TMP/ckk_w"
        fi
        rm -f "$TMP/cku/step-0000000018/rank-4.ckpt" "$TMP/cku/step-0000000016/rank-1.ckpt"
        OUTPUT=$("${ck[@]}" --checkpoint-dir "$TMP/cku" --resume 2>&1); rc=$?
        [ "$rc" -ne 0 ] && grep -q -- '--resume: no complete checkpoint set (a file for each of 6 stages)' <<<"$OUTPUT" &&
            pass ckpt_incomplete_set_refused || fail ckpt_incomplete_set_refused "rc $rc: $(tail -3 <<<"$OUTPUT")"
    fi
fi
finish
