#!/usr/bin/env bash
# test_tied.sh: tied weights across stages (docs/formats.md, "Tied weights"; the semantics in
# docs/design-decisions.md) on tests/data/models/tiny_tied.yaml (fc_out's weight is fc_in's):
#  - diagnostics at the tie (file:line:col): unknown layer, itself, a later layer, a chain, two
#    ties to one weight, a layer without a weight matrix, a size mismatch; CUDA stages list the CPU's ties;
#  - plan.yaml counts the exchange (tied_params, tied_ms) on the two stages only;
#  - flush and gpipe on 2 and 3 stages equal --single bit for bit, and a 1-stage plan (both
#    copies on one stage, summed there) equals the 2-stage --single bit for bit;
#  - 1f1b equals --emulate bit for bit on 2 and 3 stages, with vertical sync and with every stage
#    replicated twice; a run resumed from a checkpoint equals the uninterrupted one;
#  - a replicated plan with different replica counts (4 and 3): flush within 1e-5 of --single,
#    1f1b refused;
#  - --check-replicas finds the two copies bitwise identical after every update, also after
#    --init from another seed's weights (the owner's file fills both copies);
#  - --save writes the weight once, under the owner's name; clipping counts it once (flush equals
#    --single bit for bit with clipping on); the untied model trains to other weights.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }
M="$ROOT/tests/data/models/tiny_tied.yaml"

# ---- diagnostics ----
diag() { # name sed-expression expected-message
    sed -e "$2" "$M" >"$TMP/bad.yaml"
    if "$PDPLAN" "$TMP/bad.yaml" -q -o "$TMP/bad" >"$TMP/bad.log" 2>&1; then
        fail "$1" "planned"
    elif grep -qE "bad.yaml:[0-9]+:[0-9]+: error: .*$3" "$TMP/bad.log"; then pass "$1"
    else fail "$1" "$(head -2 "$TMP/bad.log")"; fi
}
diag tie_unknown_layer 's/tie: fc_in/tie: nope/' "tie to unknown layer 'nope'"
diag tie_to_itself 's/tie: fc_in/tie: fc_out/' "ties its weight to itself"
diag tie_to_later_layer 's/tie: fc_in/tie: head/' "which comes later"
diag tie_size_mismatch 's/{name: head, op: linear, out_features: 5}/{name: head, op: linear, out_features: 5, tie: fc_in}/' "their weights differ: \[5\]\[16\] against \[16\]\[16\]"
diag tie_chain 's/fc_mid2, op: linear, out_features: 16}/fc_mid2, op: linear, out_features: 16, tie: fc_in}/; /fc_out/s/tie: fc_in/tie: fc_mid2/' "is itself tied to 'fc_in': no chains"
diag tie_twice 's/fc_mid2, op: linear, out_features: 16}/fc_mid2, op: linear, out_features: 16, tie: fc_in}/' "already ties to: one tie per weight"
diag tie_no_weight 's/{name: act4, op: gelu}/{name: act4, op: gelu, tie: fc_in}/' "has no weight matrix"
# CUDA stages list the same copies as the CPU stages (executor_cuda_ties.c exchanges them)
if "$PDPLAN" "$M" -n 2 --straight --backend cuda -q -o "$TMP/cuda" >"$TMP/cuda.log" 2>&1 &&
    "$PDPLAN" "$M" -n 2 --straight -q -o "$TMP/cudacpu" >/dev/null 2>&1; then
    same=1
    for k in 0 1; do
        c=$(grep -o 'pdrt_tie\[\]){.*}' "$TMP/cudacpu/stage_$k.c" | sed 's/.*){//')
        u=$(grep -o 'static const pdrt_tie ties\[\] = {.*}' "$TMP/cuda/stage_$k.cu" | sed 's/.*= {//')
        [ -n "$c" ] && [ "$c" = "$u" ] && grep -q 'b->ties = ties;' "$TMP/cuda/stage_$k.cu" || same=0
    done
    [ $same = 1 ] && pass cuda_lists_ties || fail cuda_lists_ties "the CUDA stages' ties differ from the CPU's"
else
    fail cuda_lists_ties "$(head -2 "$TMP/cuda.log")"
fi

common=(--data synthetic --synthetic-n 256 --seed 3 --no-eval)
plan() { # name args...: plan and build into $TMP/name
    local g=$TMP/$1; shift
    "$PDPLAN" "$M" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1 ||
        { fail "plan_$1" "$(tail -3 "$TMP/plan.log" "$TMP/make.log")"; return 1; }
}
run() { expect_status 0 "$1" "$LAUNCH" "${@:2}" "${common[@]}"; }
sync=(--microbatches 4 --steps 11)

# ---- straight 2 and 3 stages ----
for n in 2 3; do
    plan s$n -n $n --straight || continue
    last=$((n - 1))
    [ "$(grep -c 'tied_params: 256' "$TMP/s$n/plan.yaml")" = 2 ] && grep -q "ties = (const pdrt_tie\[\]){{0, $last, " "$TMP/s$n/stage_0.c" &&
        pass "plan_counts_ties_$n" || fail "plan_counts_ties_$n" "$(grep tied "$TMP/s$n/plan.yaml")"
    for s in flush gpipe; do
        run "${s}_${n}_runs" "$TMP/s$n" --schedule $s "${sync[@]}" --check-replicas --save "$TMP/p$n$s" || continue
        grep -q "stage $last: tied weights identical to their owners' after 3 updates" <<<"$OUTPUT" &&
            pass "${s}_${n}_copies_identical" || fail "${s}_${n}_copies_identical" "$OUTPUT"
        run "${s}_${n}_single_runs" "$TMP/s$n" --single --schedule $s "${sync[@]}" --save "$TMP/s$n$s" || continue
        same_dirs "$TMP/p$n$s" "$TMP/s$n$s" && pass "${s}_${n}_stages_equals_single_bitwise" || fail "${s}_${n}_stages_equals_single_bitwise"
    done
    run "1f1b_${n}_runs" "$TMP/s$n" --steps 13 --check-replicas --save "$TMP/p${n}1" &&
        grep -q "stage $last: tied weights identical to their owners' after 13 updates" <<<"$OUTPUT" &&
        run "1f1b_${n}_emulate_runs" "$TMP/s$n" --emulate --steps 13 --save "$TMP/e${n}1" &&
        { same_dirs "$TMP/p${n}1" "$TMP/e${n}1" && pass "1f1b_${n}_equals_emulate_bitwise" || fail "1f1b_${n}_equals_emulate_bitwise"; }
done
if [ -d "$TMP/p2flush" ]; then
    [ -f "$TMP/p2flush/fc_in.weight.f32" ] && [ ! -e "$TMP/p2flush/fc_out.weight.f32" ] &&
        pass save_writes_the_owner_only || fail save_writes_the_owner_only "$(ls "$TMP/p2flush")"
    ! same_dirs "$TMP/p2flush" "$TMP/p21" && pass flush_differs_from_1f1b || fail flush_differs_from_1f1b
    # and the tie matters: the same model untied trains to other weights (and saves fc_out's)
    sed 's/, tie: fc_in//' "$M" >"$TMP/untied.yaml"
    "$PDPLAN" "$TMP/untied.yaml" -n 2 --straight -q -o "$TMP/untied" >/dev/null 2>&1 && make -s -C "$TMP/untied" >/dev/null 2>&1 &&
        run untied_runs "$TMP/untied" --single --schedule flush "${sync[@]}" --save "$TMP/untied_s" &&
        { [ -f "$TMP/untied_s/fc_out.weight.f32" ] && ! cmp -s "$TMP/untied_s/fc_in.weight.f32" "$TMP/s2flush/fc_in.weight.f32" &&
              pass untied_differs || fail untied_differs; }
fi
# one stage: both copies there, summed in the stage (no exchange), the same numbers; and on one
# stage of 4 replicas, 1f1b equals its emulation
if plan one -n 1 && [ -d "$TMP/s2flush" ]; then
    run one_stage_runs "$TMP/one" --schedule flush "${sync[@]}" --check-replicas --save "$TMP/one_p" &&
        grep -q "stage 0: tied weights identical to their owners' after 3 updates" <<<"$OUTPUT" &&
        { same_dirs "$TMP/one_p" "$TMP/s2flush" && pass one_stage_equals_two_stage_single_bitwise || fail one_stage_equals_two_stage_single_bitwise; }
    run one_stage_1f1b_runs "$TMP/one" --steps 5 --save "$TMP/one_1" &&
        run one_stage_single_runs "$TMP/one" --single --steps 5 --save "$TMP/one_s" &&
        run two_stage_single_runs "$TMP/s2" --single --steps 5 --save "$TMP/two_s" &&
        { same_dirs "$TMP/one_1" "$TMP/one_s" && same_dirs "$TMP/one_s" "$TMP/two_s" && pass one_stage_1f1b_equals_single_bitwise || fail one_stage_1f1b_equals_single_bitwise; }
fi
if plan r4 -n 4 && grep -q 'stage 0 binary stage_0 replicas 4' "$TMP/r4/launch.conf"; then
    run r4_1f1b_runs "$TMP/r4" --steps 13 --save "$TMP/r4p" &&
        run r4_emulate_runs "$TMP/r4" --emulate --steps 13 --save "$TMP/r4e" &&
        { same_dirs "$TMP/r4p" "$TMP/r4e" && pass one_replicated_stage_1f1b_equals_emulate_bitwise || fail one_replicated_stage_1f1b_equals_emulate_bitwise; }
fi
# --init fills both copies from the owner's file; clipping counts the weight once
if [ -d "$TMP/s3" ]; then
    run init_runs "$TMP/s3" --init "$TMP/p21" --seed 9 --steps 5 --check-replicas &&
        { grep -q "stage 2: tied weights identical to their owners' after 5 updates" <<<"$OUTPUT" && pass init_fills_both_copies || fail init_fills_both_copies "$OUTPUT"; }
    run clip_runs "$TMP/s3" --schedule flush "${sync[@]}" --clip-grad-norm 0.05 --save "$TMP/clip_p" &&
        run clip_single_runs "$TMP/s3" --single --schedule flush "${sync[@]}" --clip-grad-norm 0.05 --save "$TMP/clip_s" &&
        { same_dirs "$TMP/clip_p" "$TMP/clip_s" && ! same_dirs "$TMP/clip_p" "$TMP/p3flush" && pass clip_flush_equals_single_bitwise || fail clip_flush_equals_single_bitwise; }
fi

# vertical sync (every stage reads the version stage 0 read) equals its emulation; a checkpoint
# holds both copies, and a resumed run equals the uninterrupted one
if plan v3 -n 3 --straight --vertical-sync; then
    run vsync_runs "$TMP/v3" --steps 13 --check-replicas --save "$TMP/vp" &&
        grep -q "stage 2: tied weights identical to their owners' after 13 updates" <<<"$OUTPUT" &&
        run vsync_emulate_runs "$TMP/v3" --emulate --steps 13 --save "$TMP/ve" &&
        { same_dirs "$TMP/vp" "$TMP/ve" && pass vsync_equals_emulate_bitwise || fail vsync_equals_emulate_bitwise; }
fi
if [ -d "$TMP/s3" ]; then
    ck=(--steps 12 --checkpoint-every 4)
    run ckpt_runs "$TMP/s3" "${ck[@]}" --checkpoint-dir "$TMP/ck1" --save "$TMP/ck_full"
    PDRT_TEST_KILL_AFTER_CKPT=4:0 "$LAUNCH" "$TMP/s3" "${ck[@]}" --checkpoint-dir "$TMP/ck2" "${common[@]}" >/dev/null 2>&1
    run resume_runs "$TMP/s3" "${ck[@]}" --checkpoint-dir "$TMP/ck2" --resume --check-replicas --save "$TMP/ck_res" &&
        grep -q "stage 2: tied weights identical to their owners' after 8 updates" <<<"$OUTPUT" &&
        { same_dirs "$TMP/ck_full" "$TMP/ck_res" && pass resume_equals_uninterrupted || fail resume_equals_uninterrupted; }
fi

# ---- replicated: 3 stages x 2 replicas (1f1b pairs up), and 4 + 3 replicas (flush only) ----
if plan r6 -n 6 && grep -q 'stage 2 binary stage_2 replicas 2 ranks 4 5' "$TMP/r6/launch.conf"; then
    run r6_1f1b_runs "$TMP/r6" --steps 13 --check-replicas --save "$TMP/r6p" &&
        grep -q "stage 2: tied weights identical to their owners' after 7 updates" <<<"$OUTPUT" &&
        run r6_emulate_runs "$TMP/r6" --emulate --steps 13 --save "$TMP/r6e" &&
        { same_dirs "$TMP/r6p" "$TMP/r6e" && pass replicated_1f1b_equals_emulate_bitwise || fail replicated_1f1b_equals_emulate_bitwise; }
fi
if plan r7 -n 7 && grep -q 'stage 1 binary stage_1 replicas 3' "$TMP/r7/launch.conf"; then
    expect_status 1 r7_1f1b_refused "$LAUNCH" "$TMP/r7" --steps 5 "${common[@]}" &&
        { grep -q "tied weights under 1f1b need the two stages to have the same replicas" <<<"$OUTPUT" && pass uneven_replicas_1f1b_refused || fail uneven_replicas_1f1b_refused "$OUTPUT"; }
    run r7_flush_runs "$TMP/r7" --schedule flush "${sync[@]}" --check-replicas --save "$TMP/r7p" &&
        grep -q "stage 1: tied weights identical to their owners' after 3 updates" <<<"$OUTPUT" &&
        run r7_single_runs "$TMP/r7" --single --schedule flush "${sync[@]}" --save "$TMP/r7s" &&
        if out=$(close_dirs "$TMP/r7p" "$TMP/r7s" 1e-5); then pass replicated_flush_equals_single; echo "  $out"; else fail replicated_flush_equals_single "$out"; fi
fi
finish
