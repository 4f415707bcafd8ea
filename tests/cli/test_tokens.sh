#!/usr/bin/env bash
# test_tokens.sh: training on a token stream end to end, on a tiny corpus built here (a few
# repeated sentences through scripts/prepare_shakespeare.py --text: its vocab.txt and u8 files)
# and a tiny embedding (with positions) -> linear model, context 8:
#  - a 2-stage flush pipeline ends with --single's weights after 40 steps (B*T targets travel
#    after the activations; 1e-5 relative at most, bit for bit in practice);
#  - 1f1b equals --emulate bit for bit;
#  - summary.json has val_loss (nats per token) and tokens_per_s = samples_per_s * T;
#  - pdlaunch --generate prints the same characters for the same seed, all from vocab.txt, and
#    other characters for another seed;
#  - with nvcc, the CUDA stages of the same model build;
#  - models/gpt_char.yaml's wiring plans (stand-ins for layernorm and attention until they are
#    in the tree); with them, a one-block GPT of its layout trains on 2 stages as --single does.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

tiny_corpus "$TMP/corp" || { fail tiny_corpus "prepare_shakespeare.py --text failed"; finish; exit 1; }
tiny_tokens_model "$TMP/tok.yaml" tiny_tokens ", warmup_iters: 5, lr_decay_iters: 40, min_lr: 0.001"
common=(--data "$TMP/corp" --seed 3 --no-trace --steps 40)
if "$PDPLAN" "$TMP/tok.yaml" -n 2 --straight -q -o "$TMP/g" >"$TMP/plan.log" 2>&1 &&
    make -s -C "$TMP/g" >"$TMP/make.log" 2>&1; then
    pass plan_and_build_token_model
    expect_status 0 flush_runs "$LAUNCH" "$TMP/g" --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/pf" &&
        expect_status 0 flush_single_runs "$LAUNCH" "$TMP/g" --single --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/sf" &&
        { same_dirs "$TMP/pf" "$TMP/sf" && pass flush_2_stages_equals_single ||
              fail flush_2_stages_equals_single; }
    grep -q '"val_loss": [0-9]' "$TMP/g/run/summary.json" &&
        python3 - "$TMP/g/run/summary.json" <<'PY' && pass summary_val_loss_and_tokens_per_s || fail summary_val_loss_and_tokens_per_s "$(cat "$TMP/g/run/summary.json")"
import json, math, sys
s = json.load(open(sys.argv[1]))
assert 0 < s["val_loss"] < math.log(24), s["val_loss"]
assert abs(s["tokens_per_s"] - 8 * s["samples_per_s"]) <= 1e-3 * s["tokens_per_s"] + 1
PY
    expect_status 0 1f1b_runs "$LAUNCH" "$TMP/g" --schedule 1f1b "${common[@]}" --save "$TMP/p1" &&
        expect_status 0 1f1b_emulate_runs "$LAUNCH" "$TMP/g" --emulate --schedule 1f1b "${common[@]}" --save "$TMP/e1" &&
        { same_dirs "$TMP/p1" "$TMP/e1" && pass 1f1b_equals_emulate || fail 1f1b_equals_emulate; }
    gen() { "$LAUNCH" "$TMP/g" --generate 60 --init "$TMP/pf" --data "$TMP/corp" --prompt "the " "$@" 2>&1; }
    a=$(gen --seed 7) && b=$(gen --seed 7) && c=$(gen --seed 8 --temperature 0.7) &&
        [ "$a" = "$b" ] && [ "$a" != "$c" ] && pass generate_is_deterministic ||
        fail generate_is_deterministic "$a | $b | $c"
    python3 - "$TMP/corp/vocab.txt" "$a" <<'PY' && pass generate_prints_vocabulary_characters || fail generate_prints_vocabulary_characters "$a"
import sys
vocab = open(sys.argv[1], encoding="utf-8").read()
text = sys.argv[2]
assert len(text) == 60 and all(ch in vocab for ch in text), repr(text)
PY
    OUTPUT=$("$LAUNCH" "$TMP/g" --generate 5 --init "$TMP/pf" --data "$TMP/corp" --prompt "XYZ" 2>&1) &&
        fail generate_refuses_unknown_characters "exit status 0" ||
        { grep -q "the character 'X' is not in" <<<"$OUTPUT" && pass generate_refuses_unknown_characters ||
              fail generate_refuses_unknown_characters "$OUTPUT"; }
else
    fail plan_and_build_token_model "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | head -5)"
fi

# ---- the CUDA stages of the token model compile and link (nvcc and libpdrt_cuda.a: make cuda);
# running them needs a GPU (tests/cuda/test_ops_cuda.c checks the kernels there) ----
if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH="$PATH:/usr/local/cuda/bin"
    if make -s build/libpdrt_cuda.a >/dev/null 2>&1 &&
        "$PDPLAN" "$TMP/tok.yaml" -n 2 --straight -q --backend cuda -o "$TMP/gcu" >"$TMP/plan.log" 2>&1 &&
        make -s -C "$TMP/gcu" >"$TMP/make.log" 2>&1; then
        grep -q 'pdrt_embedding_backward_cuda(ctx' "$TMP/gcu/stage_0.cu" && pass cuda_token_stages_build ||
            fail cuda_token_stages_build "no embedding call in stage_0.cu"
    else
        fail cuda_token_stages_build "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | tail -5)"
    fi
else
    skip cuda_token_stages_build "no nvcc"
fi

# ---- models/gpt_char.yaml: its wiring plans (with stand-ins while layernorm and attention are
# not in the tree); with them, a one-block GPT of the same layout trains on 2 stages (flush) to
# --single's weights within 1e-5 relative and 1f1b equals --emulate ----
if "$PDPLAN" models/gpt_char.yaml -n 2 --no-codegen -q -o "$TMP/gc" 2>&1 | grep -q "unknown op"; then
    sed -e 's/op: layernorm, eps: 1.0e-5/op: gelu/' -e 's/op: attention, heads: 4/op: linear, out_features: 128/' \
        models/gpt_char.yaml >"$TMP/gpt_stub.yaml"
    expect_status 0 gpt_char_wiring_plans "$PDPLAN" "$TMP/gpt_stub.yaml" -n 2 --straight --no-codegen -q -o "$TMP/gs" &&
        pass gpt_char_wiring_plans_with_stand_ins
    skip gpt_tiny_pipeline "layernorm and attention are not in this tree yet"
else
    expect_status 0 gpt_char_plans "$PDPLAN" models/gpt_char.yaml -n 2 --straight -q -o "$TMP/gc" &&
        pass gpt_char_plans
    tiny_gpt_model "$TMP/gpt.yaml" tiny_gpt ", warmup_iters: 5, lr_decay_iters: 40, min_lr: 0.001"
    if "$PDPLAN" "$TMP/gpt.yaml" -n 2 --straight -q -o "$TMP/gg" >"$TMP/plan.log" 2>&1 &&
        make -s -C "$TMP/gg" >"$TMP/make.log" 2>&1; then
        expect_status 0 gpt_flush_runs "$LAUNCH" "$TMP/gg" --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/gpf" &&
            expect_status 0 gpt_flush_single_runs "$LAUNCH" "$TMP/gg" --single --schedule flush --microbatches 4 "${common[@]}" --save "$TMP/gsf" &&
            { out=$(close_dirs "$TMP/gpf" "$TMP/gsf" 1e-5) && pass gpt_flush_2_stages_equals_single ||
                  fail gpt_flush_2_stages_equals_single "$out"; }
        expect_status 0 gpt_1f1b_runs "$LAUNCH" "$TMP/gg" --schedule 1f1b "${common[@]}" --save "$TMP/gp1" &&
            expect_status 0 gpt_1f1b_emulate_runs "$LAUNCH" "$TMP/gg" --emulate --schedule 1f1b "${common[@]}" --save "$TMP/ge1" &&
            { same_dirs "$TMP/gp1" "$TMP/ge1" && pass gpt_1f1b_equals_emulate || fail gpt_1f1b_equals_emulate; }
    else
        fail plan_and_build_tiny_gpt "$(cat "$TMP/plan.log" "$TMP/make.log" 2>/dev/null | head -5)"
    fi
fi
finish
