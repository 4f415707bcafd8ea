#!/usr/bin/env bash
# test_recompute.sh: activation recomputation, full and selective (pdplan --recompute
# [full|selective|none|STAGE:MODE,...], the stages' --recompute and --no-recompute):
#  - plans say so per stage in plan.yaml and in the stages (a selective stage has
#    forward_recompute and its kept part of acts); a per-stage mix plans and runs;
#  - on tests/data/models/tiny.yaml (conv, batch norm, dropout, linear) under 1f1b (three
#    minibatches in flight on stage 0, one working buffer), flush, gpipe, zb-h1, zb-h2 and 2bw,
#    on models/fmnist_cnn.yaml and on a tiny GPT (embedding, layernorm, attention, gelu,
#    dropout) under 1f1b, flush, zb-h1, zb-h2 and 2bw, on a replicated plan and with vertical
#    sync, the weights and the batch-norm running statistics are bit for bit those of the same
#    run without recomputation (the same weight version, the same dropout masks, the statistics
#    updated once);
#  - the comparison has teeth: skipping the recomputation (test-only PDRT_INJECT_RECOMPUTE=skip)
#    changes the weights, full and selective, and letting it update the statistics (bn-twice)
#    changes them;
#  - bad --recompute values, and recomputation on the CUDA backend, are diagnostics.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
LAUNCH="$ROOT/scripts/pdlaunch"
make -s build/libpdrt.a >/dev/null 2>&1 || { fail build_runtime "make build/libpdrt.a failed"; finish; exit 1; }

plan() { # name model args...: plan the model and build into $TMP/name
    local g=$TMP/$1 model=$2; shift 2
    "$PDPLAN" "$model" "$@" -q -o "$g" >"$TMP/plan.log" 2>&1 && make -s -C "$g" >"$TMP/make.log" 2>&1
}
syn=(--data synthetic --synthetic-n 512 --seed 3 --no-eval --no-trace --steps 22 --microbatches 6)

# same_run NAME GEN MODES ARGS...: the run with each of MODES (plan: the plan's own; full:
# --recompute) and the run with --no-recompute give the same bits; CHECK (a file the runs write)
# must exist
CHECK=bn.running_mean.f32
same_run() {
    local name=$1 g=$2 modes=$3; shift 3
    expect_status 0 "${name}_plain_runs" "$LAUNCH" "$TMP/$g" --no-recompute "$@" --save "$TMP/${name}_n" || return
    for mode in $modes; do
        local flag=() out=$TMP/${name}_$mode
        [ "$mode" = full ] && flag=(--recompute)
        expect_status 0 "${name}_${mode}_runs" "$LAUNCH" "$TMP/$g" "${flag[@]}" "$@" --save "$out" || continue
        if same_dirs "$out" "$TMP/${name}_n" && [ -f "$out/$CHECK" ]; then
            pass "${name}_${mode}_bitwise_equal"
        else
            fail "${name}_${mode}_bitwise_equal" "$(close_dirs "$out" "$TMP/${name}_n" 0 '^$')"
        fi
    done
}

# ---- plan.yaml and the stages say which mode
if "$PDPLAN" tests/data/models/tiny.yaml -n 3 --straight --recompute -q --no-codegen -o "$TMP/f3" 2>"$TMP/plan.log"; then
    [ "$(grep -c '^    recompute: full$' "$TMP/f3/plan.yaml")" = 3 ] && pass plan_records_full ||
        fail plan_records_full "$(grep recompute "$TMP/f3/plan.yaml")"
else
    fail f3_plans "$(cat "$TMP/plan.log")"
fi

# ---- tiny (batch norm, dropout), selective on every stage: the plan's selective, full
# (--recompute) and none give the same bits under every schedule
if plan s3 tests/data/models/tiny.yaml -n 3 --straight --recompute selective; then
    [ "$(grep -c '^    recompute: selective$' "$TMP/s3/plan.yaml")" = 3 ] && grep -q '\.recompute = 2,' "$TMP/s3/stage_0.c" &&
        grep -q 'forward_recompute = S0_forward_recompute' "$TMP/s3/stage_0.c" &&
        grep -q '^#define S0_N_ACTS_KEPT ' "$TMP/s3/stage_0.c" &&
        pass plan_records_selective || fail plan_records_selective "$(grep recompute "$TMP/s3/plan.yaml")"
    # stage 0 keeps the convolution's output and recomputes batch norm and the ReLU from it
    sed -n '/S0_forward_recompute(float/,/^}/p' "$TMP/s3/stage_0.c" >"$TMP/rf.c"
    grep -q pdrt_batchnorm2d_forward "$TMP/rf.c" && ! grep -q pdrt_conv2d "$TMP/rf.c" &&
        pass selective_recomputes_cheap_layers_only || fail selective_recomputes_cheap_layers_only "$(cat "$TMP/rf.c")"
    for s in 1f1b flush gpipe zb-h1 zb-h2 2bw; do same_run "tiny_$s" s3 "full plan" --schedule "$s" "${syn[@]}"; done
    grep -q 'stage 0: recompute selective: .* of .* backwards recomputed' <<<"$OUTPUT" &&
        pass selective_run_reports || fail selective_run_reports "$OUTPUT"
    # teeth: without the recomputation the backward reads another minibatch's activations;
    # with the statistics updated twice they differ
    for mode in plan full; do
        flag=(); [ "$mode" = full ] && flag=(--recompute)
        expect_status 0 "skip_${mode}_runs" env PDRT_INJECT_RECOMPUTE=skip "$LAUNCH" "$TMP/s3" "${flag[@]}" --schedule zb-h1 "${syn[@]}" --save "$TMP/skip_$mode" &&
            { ! same_dirs "$TMP/skip_$mode" "$TMP/tiny_zb-h1_n" && pass "skipped_${mode}_recompute_is_caught" || fail "skipped_${mode}_recompute_is_caught"; }
    done
    expect_status 0 bn_twice_runs env PDRT_INJECT_RECOMPUTE=bn-twice "$LAUNCH" "$TMP/s3" --schedule 1f1b "${syn[@]}" --save "$TMP/bn2" &&
        { ! cmp -s "$TMP/bn2/bn.running_mean.f32" "$TMP/tiny_1f1b_n/bn.running_mean.f32" && pass bn_updated_twice_is_caught || fail bn_updated_twice_is_caught; }
else
    fail s3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# ---- a per-stage mix: stage 0 selective, stage 1 none, stage 2 full
if plan mix tests/data/models/tiny.yaml -n 3 --straight --recompute 0:selective,2:full; then
    [ "$(grep '^    recompute: ' "$TMP/mix/plan.yaml" | tr -d ' \n')" = "recompute:selectiverecompute:full" ] &&
        grep -q '\.recompute = 2,' "$TMP/mix/stage_0.c" && ! grep -q '\.recompute' "$TMP/mix/stage_1.c" &&
        grep -q '\.recompute = 1,' "$TMP/mix/stage_2.c" && ! grep -q forward_recompute "$TMP/mix/stage_2.c" &&
        pass per_stage_mix_planned || fail per_stage_mix_planned "$(grep -n recompute "$TMP/mix/plan.yaml")"
    expect_status 0 mix_runs "$LAUNCH" "$TMP/mix" --schedule 1f1b "${syn[@]}" --save "$TMP/mix_r" &&
        { same_dirs "$TMP/mix_r" "$TMP/tiny_1f1b_n" && pass per_stage_mix_bitwise_equal || fail per_stage_mix_bitwise_equal; }
else
    fail mix_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# ---- fmnist_cnn (conv, ReLU into max pool, linear) and a tiny GPT, selective
CHECK=fc1.weight.f32
if plan fm models/fmnist_cnn.yaml -n 2 --straight --recompute selective; then
    for s in 1f1b flush zb-h1 zb-h2 2bw; do
        same_run "fmnist_$s" fm plan --schedule "$s" --data synthetic --synthetic-n 256 --seed 3 --no-eval --no-trace --steps 8 --microbatches 4
    done
else
    fail fm_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi
tiny_corpus "$TMP/corp" || fail tiny_corpus "prepare_shakespeare.py --text failed"
cat >"$TMP/gpt.yaml" <<'YAML'
pd: 1
name: tiny_gpt
input: [8]
classes: 24
batch: 4
dataset: {kind: tokens, train: corp/train.bin, val: corp/val.bin, format: u8}
optimizer: {kind: adamw, lr: 0.01, weight_decay: 0.1}
layers:
  - {name: wte, op: embedding, num_embeddings: 24, embedding_dim: 8, positions: 8, init_std: 0.02}
  - {name: ln1, op: layernorm, eps: 1.0e-5}
  - {name: qkv, op: linear, out_features: 24}
  - {name: attn, op: attention, heads: 2}
  - {name: proj, op: linear, out_features: 8}
  - {name: drop1, op: dropout, p: 0.1}
  - {name: add1, op: add, inputs: [drop1, wte]}
  - {name: ln2, op: layernorm, eps: 1.0e-5}
  - {name: fc, op: linear, out_features: 32}
  - {name: gelu, op: gelu}
  - {name: out, op: linear, out_features: 8}
  - {name: drop2, op: dropout, p: 0.1}
  - {name: add2, op: add, inputs: [drop2, add1]}
  - {name: lnf, op: layernorm, eps: 1.0e-5}
  - {name: head, op: linear, out_features: 24}
YAML
CHECK=qkv.weight.f32
if plan gpt "$TMP/gpt.yaml" -n 3 --straight --recompute selective; then
    sed -n '/S0_forward_recompute(float/,/^}/p' "$TMP/gpt/stage_0.c" >"$TMP/rf.c"
    grep -q pdrt_attention_forward "$TMP/rf.c" && ! grep -q pdrt_linear "$TMP/rf.c" &&
        pass gpt_selective_recomputes_attention_not_qkv || fail gpt_selective_recomputes_attention_not_qkv "$(cat "$TMP/rf.c")"
    for s in 1f1b flush zb-h1 zb-h2 2bw; do
        same_run "gpt_$s" gpt plan --schedule "$s" --data "$TMP/corp" --seed 3 --no-eval --no-trace --steps 24 --microbatches 6
    done
else
    fail gpt_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi

# ---- a plan without recomputation, recomputing (full) at run time: replicated, vertical sync
CHECK=bn.running_mean.f32
if plan r4 tests/data/models/tiny.yaml -n 4 && grep -q 'stage 0 binary stage_0 replicas 2' "$TMP/r4/launch.conf"; then
    same_run replicated r4 full --schedule 1f1b --check-replicas "${syn[@]}"
else
    fail r4_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"
fi
if plan v3 tests/data/models/tiny.yaml -n 3 --straight --vertical-sync; then same_run vsync v3 full "${syn[@]}"
else fail v3_builds "$(cat "$TMP/plan.log" "$TMP/make.log" | tail -n 5)"; fi

# ---- bad values and refusals
bad() { # name expected-text args...
    local name=$1 want=$2; shift 2
    expect_status 2 "$name" "$PDPLAN" tests/data/models/tiny.yaml -n 3 --straight "$@" -q --no-codegen -o "$TMP/x" &&
        { grep -q -- "$want" <<<"$OUTPUT" && pass "${name}_says_why" || fail "${name}_says_why" "$OUTPUT"; }
}
bad recompute_unknown_mode "not STAGE:MODE" --recompute=partial
bad recompute_bad_stage_mode "'0:partial' is not STAGE:MODE" --recompute 0:partial,1:full
bad recompute_stage_twice "stage 1 given twice" --recompute 1:full,1:selective
bad recompute_stage_out_of_range "the plan has 3 stages" --recompute 0:full,7:selective
bad recompute_empty "empty value" --recompute=
bad recompute_given_twice "given twice" --recompute full --recompute selective
bad recompute_cuda_refused "CPU backend only" --recompute selective --backend cuda
expect_status 0 recompute_alone_before_the_model "$PDPLAN" --recompute tests/data/models/tiny.yaml -n 2 -q --no-codegen -o "$TMP/y" &&
    { grep -q '^    recompute: full$' "$TMP/y/plan.yaml" && pass recompute_alone_means_full || fail recompute_alone_means_full; }
finish
