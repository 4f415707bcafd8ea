#!/usr/bin/env bash
# test_onnx.sh: ONNX in, trained ONNX out (issue 17). Without torch: a file that is no ONNX and a
# model using Softplus (tests/data/onnx/softplus.onnx) are refused with diagnostics naming the
# problem and the node, nothing written; pdexport refuses a model YAML's lstm and cross attention
# naming the layers; a tiny GPT in YAML (gpt_char's structure, 2 blocks, a dropout) trained 40
# steps exports as ONNX whose logits under onnxruntime are ours (<= 1e-4), which the sanitized
# pdexport writes byte for byte, and which pdplan reads back as the same layers, parameter count
# and weights. With Debian's python3-torch (make deps):
# tests/onnx/make_fixtures.py exports a small CNN, a ResNet-style block with batch norm and
# torchvision's resnet18 in training mode; pdplan plans and generates each (resnet18's
# parameter count is PyTorch's), names stay (conv1.weight), pdimport's YAML plans to the same
# model and weights; the CNN without dropout trains 20 steps (--single --no-shuffle) from the
# file's weights to PyTorch's weights (max relative difference <= 1e-4, PyTorch's side computed
# here, tests/onnx/torch_train.py); the exported trained ONNX, and the ONNX of a model YAML, give
# our evaluation's logits under onnxruntime (data/onnx-venv, make deps; <= 1e-4).
# The transformer patterns: a tiny GPT (make_fixtures.py: gpt_char's structure, nanoGPT's
# modules) exported at opset 13 (LayerNorm decomposed), at opset 17 (LayerNormalization), with
# the GELU written out, with an additive mask and with a dynamic batch (Shape arithmetic)
# imports as the same layers (embedding with positions, layernorm, attention with its heads,
# gelu) with PyTorch's parameter count; trained 10 steps on a small u8 token corpus (--single
# --no-shuffle) it ends with PyTorch's float64 weights (<= 1e-4, tests/onnx/torch_gpt_train.py),
# its trained ONNX gives our logits under onnxruntime, and an
# anti-causal mask (torch.triu) is refused naming the Where node.
source "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1
FM=/usr/share/datasets/fashion-mnist

# ---- refusals (no torch needed) ----
head -c 300 tests/data/onnx/softplus.onnx >"$TMP/truncated.onnx"
if expect_status 2 onnx_truncated "$PDPLAN" "$TMP/truncated.onnx" -o "$TMP/g_trunc"; then
    if grep -q "not an ONNX model" <<<"$OUTPUT" && [ ! -e "$TMP/g_trunc" ]; then pass onnx_truncated
    else fail onnx_truncated "no 'not an ONNX model' diagnostic, or something written: $OUTPUT"; fi
fi
if expect_status 2 onnx_softplus "$PDPLAN" tests/data/onnx/softplus.onnx -o "$TMP/g_sp"; then
    if grep -q "node 1 '/Softplus' (Softplus): unsupported op" <<<"$OUTPUT" &&
        [ "$(grep -c error: <<<"$OUTPUT")" = 1 ] && [ ! -e "$TMP/g_sp" ]; then pass onnx_softplus
    else fail onnx_softplus "wanted one diagnostic naming node 1 '/Softplus': $OUTPUT"; fi
fi
printf 'batch: 0\n' >"$TMP/bad.train.yaml"
if expect_status 2 onnx_bad_settings "$PDPLAN" tests/data/onnx/softplus.onnx \
    --settings "$TMP/bad.train.yaml" -o "$TMP/g_bs"; then pass onnx_bad_settings; fi

# the commands' help, and pdexport without what it needs
if bin/pdexport --help | grep -q '^usage: pdexport GENDIR WEIGHTS_DIR -o OUT.onnx' &&
    scripts/pdimport --help | grep -q '^usage: pdimport MODEL.onnx -o OUT.yaml'; then pass onnx_help
else fail onnx_help "pdexport or pdimport --help"; fi
if expect_status 2 pdexport_no_args bin/pdexport; then pass pdexport_no_args; fi
mkdir -p "$TMP/empty"
if expect_status 2 pdexport_no_source bin/pdexport "$TMP/empty" "$TMP/empty" -o "$TMP/x.onnx"; then
    if grep -q "has neither source.onnx nor a readable source.yaml" <<<"$OUTPUT" &&
        [ ! -e "$TMP/x.onnx" ]; then pass pdexport_no_source
    else fail pdexport_no_source "$OUTPUT"; fi
fi

# ---- a model YAML's GPT as ONNX (no torch needed) ----
ORT="$ROOT/data/onnx-venv/bin/python"
"$ORT" -c 'import onnxruntime' 2>/dev/null || ORT=""
PDEXPORT="$ROOT/build/san/pdexport" # sanitized (make test builds it)
[ -x "$PDEXPORT" ] || PDEXPORT="$ROOT/bin/pdexport"
# what has no ONNX form is refused before any weight is read, every such layer named
cat >"$TMP/cross.yaml" <<'EOF'
pd: 1
name: cross
input: [8]
classes: 16
batch: 4
dataset: reverse
layers:
  - {name: wte, op: embedding, num_embeddings: 16, embedding_dim: 8}
  - {name: q, op: linear, out_features: 8}
  - {name: kv, op: linear, out_features: 16, inputs: [wte]}
  - {name: att, op: attention, heads: 2, inputs: [q, kv]}
  - {name: head, op: linear, out_features: 16}
EOF
mkdir -p "$TMP/now"
if expect_status 0 pdexport_refuse_plan "$PDPLAN" "$TMP/cross.yaml" -n 1 -o "$TMP/cr" -q &&
    expect_status 0 pdexport_refuse_plan "$PDPLAN" tests/data/models/tiny_seq2seq.yaml -n 1 \
        -o "$TMP/s2s" -q &&
    expect_status 2 pdexport_refuse_cross "$PDEXPORT" "$TMP/cr" "$TMP/now" -o "$TMP/cr.onnx"; then
    if grep -q "layer 'att': attention with two inputs (cross attention" <<<"$OUTPUT" &&
        [ "$(wc -l <<<"$OUTPUT")" = 1 ] && [ ! -e "$TMP/cr.onnx" ] &&
        expect_status 2 pdexport_refuse_lstm "$PDEXPORT" "$TMP/s2s" "$TMP/now" -o "$TMP/cr.onnx" &&
        grep -q "layer 'enc': lstm has no ONNX form" <<<"$OUTPUT" &&
        grep -q "layer 'dec': lstm has no ONNX form" <<<"$OUTPUT" &&
        grep -q "layer 'att': attention with two inputs" <<<"$OUTPUT" &&
        [ "$(wc -l <<<"$OUTPUT")" = 3 ] && [ ! -e "$TMP/cr.onnx" ]; then pass pdexport_refuse
    else fail pdexport_refuse "wanted one line per refused layer (att; enc, dec, att): $OUTPUT"; fi
fi
# a tiny GPT in YAML (gpt_char's structure, vocabulary 16, context 8, width 16, 2 heads, 2 blocks,
# a dropout) trained 40 steps on a u8 corpus of ids below 16: its ONNX (Gather, LayerNormalization,
# the attention and GELU subgraphs, MatMul + Add) gives our evaluation's logits under
# onnxruntime, and pdplan reads it back as the same layers (the dropout gone) and weights
if [ -z "$ORT" ]; then
    skip onnx_yaml_gpt "no onnxruntime in data/onnx-venv (make deps)"
else
    mkdir -p "$TMP/ycorp"
    "$ORT" - "$TMP/ycorp" <<'PY'
import sys
import numpy as np
r = np.random.RandomState(0)
t = np.zeros(4096, np.uint8)
for i in range(1, 4096):
    t[i] = (t[i - 1] * 5 + 3 + r.randint(3)) % 16
t[:3600].tofile(sys.argv[1] + "/train.bin")
t[3600:].tofile(sys.argv[1] + "/val.bin")
PY
    {
        printf 'pd: 1\nname: ygpt\ninput: [8]\nclasses: 16\nbatch: 4\n'
        printf 'dataset: {kind: tokens, train: %s, val: %s, format: u8}\n' \
            "$TMP/ycorp/train.bin" "$TMP/ycorp/val.bin"
        printf 'optimizer: {kind: adamw, lr: 0.01}\nlayers:\n'
        printf '  - {name: wte, op: embedding, num_embeddings: 16, embedding_dim: 16, positions: 8, init_std: 0.02}\n'
        printf '  - {name: drop, op: dropout, p: 0.1}\n'
        prev=drop
        for h in 0 1; do
            printf '  - {name: h%s.ln1, op: layernorm, eps: 1.0e-5, inputs: [%s]}\n' $h $prev
            printf '  - {name: h%s.qkv, op: linear, out_features: 48}\n' $h
            printf '  - {name: h%s.attn, op: attention, heads: 2}\n' $h
            printf '  - {name: h%s.proj, op: linear, out_features: 16}\n' $h
            printf '  - {name: h%s.add1, op: add, inputs: [h%s.proj, %s]}\n' $h $h $prev
            printf '  - {name: h%s.ln2, op: layernorm, eps: 1.0e-5}\n' $h
            printf '  - {name: h%s.fc, op: linear, out_features: 64}\n' $h
            printf '  - {name: h%s.gelu, op: gelu}\n' $h
            printf '  - {name: h%s.out, op: linear, out_features: 16}\n' $h
            printf '  - {name: h%s.add2, op: add, inputs: [h%s.out, h%s.add1]}\n' $h $h $h
            prev=h$h.add2
        done
        printf '  - {name: lnf, op: layernorm, eps: 1.0e-5, inputs: [%s]}\n' $prev
        printf '  - {name: head, op: linear, out_features: 16}\n'
    } >"$TMP/ygpt.yaml"
    if expect_status 0 onnx_yaml_gpt_plan "$PDPLAN" "$TMP/ygpt.yaml" -n 2 -o "$TMP/yg" -q &&
        expect_status 0 onnx_yaml_gpt scripts/pdlaunch "$TMP/yg" --single --steps 40 --no-trace \
            --save "$TMP/yg_w" --save-logits "$TMP/yg_logits.f32" --save-onnx "$TMP/yg.onnx" &&
        expect_status 0 onnx_yaml_gpt_ort "$ORT" tests/onnx/ort_check.py "$TMP/yg.onnx" \
            "$TMP/yg_logits.f32" "$TMP/ycorp/val.bin" 4 1e-4; then
        pass "onnx_yaml_gpt ($OUTPUT)"
    fi
    # the head tied to the embedding (tie: wte): one initializer wte.weight, read by both
    sed -e 's/name: ygpt/name: ytied/' \
        -e 's/{name: head, op: linear, out_features: 16}/{name: head, op: linear, out_features: 16, bias: false, tie: wte}/' \
        "$TMP/ygpt.yaml" >"$TMP/ytied.yaml"
    if grep -q 'tie: wte' "$TMP/ytied.yaml" &&
        expect_status 0 onnx_yaml_gpt_tied_plan "$PDPLAN" "$TMP/ytied.yaml" -n 2 -o "$TMP/yt" -q &&
        expect_status 0 onnx_yaml_gpt_tied scripts/pdlaunch "$TMP/yt" --single --steps 20 --no-trace \
            --save-logits "$TMP/yt_logits.f32" --save-onnx "$TMP/yt.onnx" &&
        expect_status 0 onnx_yaml_gpt_tied_ort "$ORT" tests/onnx/ort_check.py "$TMP/yt.onnx" \
            "$TMP/yt_logits.f32" "$TMP/ycorp/val.bin" 4 1e-4; then
        pass "onnx_yaml_gpt_tied ($OUTPUT)"
    fi
    # the sanitized pdexport writes the same bytes; pdplan reads the file back
    if [ -s "$TMP/yg.onnx" ] &&
        expect_status 0 onnx_yaml_gpt_san "$PDEXPORT" "$TMP/yg" "$TMP/yg_w" -o "$TMP/yg2.onnx"; then
        if cmp -s "$TMP/yg.onnx" "$TMP/yg2.onnx"; then pass onnx_yaml_gpt_san
        else fail onnx_yaml_gpt_san "$PDEXPORT wrote other bytes than pdlaunch's bin/pdexport"; fi
    fi
    if [ -s "$TMP/yg.onnx" ] &&
        expect_status 0 onnx_yaml_gpt_back "$PDPLAN" "$TMP/yg.onnx" --emit-yaml "$TMP/yg_back.yaml" &&
        expect_status 0 onnx_yaml_gpt_back "$PDPLAN" "$TMP/ygpt.yaml" --emit-yaml "$TMP/yg_orig.yaml" &&
        expect_status 0 onnx_yaml_gpt_back "$PDPLAN" "$TMP/yg.onnx" -n 2 -o "$TMP/ygb" -q; then
        # the layers without the dropout (an inference graph has none), init_std (ONNX holds the
        # weights, not how they were drawn) and inputs (which name the dropout)
        strip() { sed -E '/op: dropout/d; s/, init_std: [^,}]*//; s/, inputs: \[[^]]*\]//' "$1" | grep '^  - '; }
        ours=$(awk '$1 == "params:" { s += $2 } END { print s }' "$TMP/yg/plan.yaml")
        back=$(awk '$1 == "params:" { s += $2 } END { print s }' "$TMP/ygb/plan.yaml")
        if [ "$ours" = "$back" ] && [ "$(strip "$TMP/yg_back.yaml" | wc -l)" = 23 ] &&
            diff <(strip "$TMP/yg_orig.yaml") <(strip "$TMP/yg_back.yaml") >/dev/null &&
            same_dirs "$TMP/yg_w" "$TMP/yg_back_init" && same_dirs "$TMP/yg_back_init" "$TMP/yg_w"; then
            pass "onnx_yaml_gpt_back (the same 23 layers and names, $ours parameters, the trained weights bit for bit)"
        else fail onnx_yaml_gpt_back "$back parameters (ours $ours), or other layers or weights: $(diff <(strip "$TMP/yg_orig.yaml") <(strip "$TMP/yg_back.yaml"))"; fi
    fi
fi

# ---- exported by PyTorch ----
PYT=""
for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch, torchvision' 2>/dev/null; then PYT=$p; break; fi
done
if [ -z "$PYT" ]; then
    skip onnx_torch "no python3 with torch and torchvision (make deps installs python3-torch)"
    finish
    exit
fi
if ! "$PYT" tests/onnx/make_fixtures.py "$TMP/fx" cnn cnn_nodrop resblock resnet18 gpt gpt17 gpt_addmask gpt_dynamic \
        gpt_formula gpt_triu >"$TMP/fx.log" 2>&1; then
    fail onnx_fixtures "$(tail -3 "$TMP/fx.log")"
    finish
    exit
fi

# the small CNN: planned and generated, names kept, weights from the initializers
if expect_status 0 onnx_cnn "$PDPLAN" "$TMP/fx/cnn.onnx" -n 2 --straight -o "$TMP/cnn" -q; then
    if [ -s "$TMP/cnn/stage_1.c" ] && grep -q 'conv1' "$TMP/cnn/plan.yaml" &&
        [ "$(stat -c %s "$TMP/cnn/init/conv1.weight.f32")" = 288 ] &&
        grep -q '^conv1.weight 0 0 0 conv1.weight$' "$TMP/cnn/onnx_map.txt"; then pass onnx_cnn
    else fail onnx_cnn "no stage_1.c, conv1 in the plan, or init/conv1.weight.f32 of 72 floats"; fi
fi

# the ResNet-style block: pdimport's YAML plans, and its weights are the generated folder's
if expect_status 0 onnx_resblock "$PDPLAN" "$TMP/fx/resblock.onnx" -n 2 -o "$TMP/rb" -q &&
    expect_status 0 onnx_pdimport scripts/pdimport "$TMP/fx/resblock.onnx" -o "$TMP/rb.yaml" &&
    expect_status 0 onnx_pdimport_plans "$PDPLAN" "$TMP/rb.yaml" -n 2 -o "$TMP/rby" -q; then
    if grep -q 'name: down, op: conv2d, inputs: \[Relu\]' "$TMP/rb.yaml" &&
        grep -q 'op: add, inputs: \[bn2, bn_down\]' "$TMP/rb.yaml" &&
        same_dirs "$TMP/rb/init" "$TMP/rb_init" && same_dirs "$TMP/rb_init" "$TMP/rb/init"; then
        pass onnx_pdimport
    else fail onnx_pdimport "the YAML lacks the block's branches, or its weights differ"; fi
fi

# training settings beside the model (NAME.train.yaml) override the defaults (batch, dataset,
# optimizer, name)
cp "$TMP/fx/cnn.onnx" "$TMP/block.onnx"
printf 'name: block\nbatch: 4\ndataset: synthetic\noptimizer: {kind: adamw, lr: 0.002}\n' \
    >"$TMP/block.train.yaml"
if expect_status 0 onnx_settings "$PDPLAN" "$TMP/block.onnx" -n 1 -o "$TMP/blk" -q; then
    st="$TMP/blk/stage_0.c"
    if grep -q '#define S0_BATCH 4$' "$st" && grep -q '.dataset = "synthetic"' "$st" &&
        grep -q '.optimizer = 2,' "$st" && grep -q '.lr = 0.002,' "$st" &&
        grep -q 'model: block' "$TMP/blk/plan.yaml"; then pass onnx_settings
    else fail onnx_settings "block.train.yaml not applied (batch 4, synthetic, adamw 0.002)"; fi
fi

# torchvision's resnet18: plans and generates; parameters as PyTorch counts them
if expect_status 0 onnx_resnet18 "$PDPLAN" "$TMP/fx/resnet18.onnx" -n 4 -o "$TMP/r18" -q; then
    ours=$(awk '$1 == "params:" { s += $2 } END { print s }' "$TMP/r18/plan.yaml")
    torch=$(cat "$TMP/fx/resnet18.params")
    if [ "$ours" = "$torch" ] && [ -s "$TMP/r18/stage_0.c" ]; then pass onnx_resnet18_params
    else fail onnx_resnet18_params "plan.yaml counts $ours parameters, PyTorch $torch"; fi
fi

# 20 steps against PyTorch, then the trained ONNX under onnxruntime
if [ ! -d "$FM" ]; then
    skip onnx_train "no Fashion-MNIST at $FM (make deps)"
elif expect_status 0 onnx_train_plan "$PDPLAN" "$TMP/fx/cnn_nodrop.onnx" -n 2 -o "$TMP/nd" -q &&
    expect_status 0 onnx_train scripts/pdlaunch "$TMP/nd" --single --steps 20 --no-shuffle \
        --no-trace --save "$TMP/nd_w" --save-logits "$TMP/nd_logits.f32" \
        --save-onnx "$TMP/nd_trained.onnx"; then
    if expect_status 0 onnx_train_vs_torch "$PYT" tests/onnx/torch_train.py cnn_nodrop \
        "$TMP/nd/init" "$TMP/nd_w" "$FM" 20 32 1e-4; then
        pass "onnx_train_vs_torch ($(tail -1 <<<"$OUTPUT"))"
    fi
    if [ -z "$ORT" ]; then
        skip onnx_ort "no onnxruntime in data/onnx-venv (make deps)"
    elif expect_status 0 onnx_ort "$ORT" tests/onnx/ort_check.py "$TMP/nd_trained.onnx" \
        "$TMP/nd_logits.f32" "$FM" 32 1e-4; then
        pass "onnx_ort ($OUTPUT)"
    fi
    rm "$TMP/nd_w/fc1.bias.f32"
    if expect_status 2 pdexport_missing_weight bin/pdexport "$TMP/nd" "$TMP/nd_w" -o "$TMP/m.onnx"; then
        if grep -q 'fc1.bias.f32: No such file' <<<"$OUTPUT" && [ ! -e "$TMP/m.onnx" ]; then
            pass pdexport_missing_weight
        else fail pdexport_missing_weight "$OUTPUT"; fi
    fi
fi

# a model YAML's trained ONNX (a graph of our ops) under onnxruntime
cat >"$TMP/tiny.yaml" <<'EOF'
pd: 1
name: tiny_export
input: [1, 28, 28]
classes: 10
batch: 16
dataset: fashion-mnist
optimizer: {kind: sgd, lr: 0.05, momentum: 0.9}
layers:
  - {name: conv1, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {name: bn1, op: batchnorm2d}
  - {name: relu1, op: relu}
  - {name: pool1, op: maxpool2d, kernel: 2}
  - {name: conv2, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {name: sum, op: add, inputs: [pool1, conv2]}
  - {name: cat, op: concat, inputs: [sum, pool1]}
  - {name: pool2, op: avgpool2d, kernel: 3, stride: 2, padding: 1}
  - {name: flatten, op: flatten}
  - {name: drop, op: dropout, p: 0.2}
  - {name: fc, op: linear, out_features: 10}
EOF
if [ -z "$ORT" ] || [ ! -d "$FM" ]; then
    skip onnx_yaml_export "no onnxruntime in data/onnx-venv or no Fashion-MNIST (make deps)"
elif expect_status 0 onnx_yaml_export_plan "$PDPLAN" "$TMP/tiny.yaml" -n 2 -o "$TMP/ty" -q &&
    expect_status 0 onnx_yaml_export scripts/pdlaunch "$TMP/ty" --single --steps 5 --no-trace \
        --save-logits "$TMP/ty_logits.f32" --save-onnx "$TMP/ty.onnx" &&
    expect_status 0 onnx_yaml_export_ort "$ORT" tests/onnx/ort_check.py "$TMP/ty.onnx" \
        "$TMP/ty_logits.f32" "$FM" 16 1e-4; then
    pass "onnx_yaml_export ($OUTPUT)"
fi

# ---- the transformer patterns: a tiny GPT ----
for g in gpt gpt17 gpt_formula gpt_addmask gpt_dynamic; do
    if expect_status 0 "onnx_$g" "$PDPLAN" "$TMP/fx/$g.onnx" -n 2 -o "$TMP/$g" -q &&
        expect_status 0 "onnx_${g}_yaml" "$PDPLAN" "$TMP/fx/$g.onnx" --emit-yaml "$TMP/$g.yaml"; then
        ours=$(awk '$1 == "params:" { s += $2 } END { print s }' "$TMP/$g/plan.yaml")
        if [ "$ours" = "$(cat "$TMP/fx/$g.params")" ] && [ -s "$TMP/$g/stage_1.c" ] &&
            grep -q 'name: wte, op: embedding, num_embeddings: 16, embedding_dim: 16, positions: 8' \
                "$TMP/$g.yaml" &&
            grep -q 'name: h.1.attn, op: attention, heads: 2' "$TMP/$g.yaml" &&
            [ "$(grep -c 'op: layernorm' "$TMP/$g.yaml")" = 5 ] &&
            [ "$(grep -c 'op: gelu' "$TMP/$g.yaml")" = 2 ] &&
            grep -q '^wte.pos 0 0 0 wpe.weight$' "$TMP/$g/onnx_map.txt"; then pass "onnx_$g"
        else fail "onnx_$g" "$ours parameters (PyTorch $(cat "$TMP/fx/$g.params")), or the layers differ: $(cat "$TMP/$g.yaml")"; fi
    fi
done
for g in gpt17 gpt_formula gpt_addmask gpt_dynamic; do
    if [ -s "$TMP/gpt.yaml" ] && [ -s "$TMP/$g.yaml" ] &&
        diff <(sed -nE 's/name: [^,]*, //; s/, inputs: \[[^]]*\]//p' "$TMP/gpt.yaml" | grep '^  - ') \
            <(sed -nE 's/name: [^,]*, //; s/, inputs: \[[^]]*\]//p' "$TMP/$g.yaml" | grep '^  - ') >/dev/null; then
        pass "onnx_${g}_same_layers"
    else fail "onnx_${g}_same_layers" "$g imports other layers than gpt (opset 13, nn.GELU)"; fi
done
if expect_status 2 onnx_gpt_triu "$PDPLAN" "$TMP/fx/gpt_triu.onnx" -o "$TMP/g_triu"; then
    if grep -q "node [0-9]* '/h.0/Where' (Where): the attention's mask is not exactly causal" \
            <<<"$OUTPUT" && [ "$(grep -c error: <<<"$OUTPUT")" = 1 ] && [ ! -e "$TMP/g_triu" ]; then
        pass onnx_gpt_triu
    else fail onnx_gpt_triu "wanted one diagnostic naming the Where node: $OUTPUT"; fi
fi

# 10 steps on a u8 token corpus of ids below 16, the settings beside the model
mkdir -p "$TMP/corp"
"$PYT" - "$TMP/corp" <<'PY'
import sys
import numpy as np
r = np.random.RandomState(0)
t = np.zeros(4096, np.uint8)
for i in range(1, 4096):
    t[i] = (t[i - 1] * 5 + 3 + r.randint(3)) % 16
t[:3600].tofile(sys.argv[1] + "/train.bin")
t[3600:].tofile(sys.argv[1] + "/val.bin")
PY
cp "$TMP/fx/gpt.onnx" "$TMP/gptt.onnx"
printf 'dataset: {kind: tokens, train: %s, val: %s, format: u8}\noptimizer: {kind: sgd, lr: 0.1, momentum: 0.9}\n' \
    "$TMP/corp/train.bin" "$TMP/corp/val.bin" >"$TMP/gptt.train.yaml"
if expect_status 0 onnx_gpt_train_plan "$PDPLAN" "$TMP/gptt.onnx" -n 2 -o "$TMP/gt" -q &&
    expect_status 0 onnx_gpt_train scripts/pdlaunch "$TMP/gt" --single --steps 10 --no-shuffle \
        --no-trace --save "$TMP/gt_w" --save-logits "$TMP/gt_logits.f32" \
        --save-onnx "$TMP/gt_trained.onnx"; then
    if expect_status 0 onnx_gpt_train_vs_torch "$PYT" tests/onnx/torch_gpt_train.py gpt "$TMP/gt" \
        "$TMP/gt_w" "$TMP/corp/train.bin" 10 0.1 1e-4; then
        pass "onnx_gpt_train_vs_torch ($(tail -1 <<<"$OUTPUT"))"
    fi
    if [ -z "$ORT" ]; then
        skip onnx_gpt_ort "no onnxruntime in data/onnx-venv (make deps)"
    elif cmp -s "$TMP/fx/gpt.onnx" "$TMP/gt_trained.onnx"; then
        fail onnx_gpt_ort "the trained ONNX is the source, byte for byte"
    elif expect_status 0 onnx_gpt_ort "$ORT" tests/onnx/ort_check.py "$TMP/gt_trained.onnx" \
        "$TMP/gt_logits.f32" "$TMP/corp/val.bin" 4 1e-4; then
        pass "onnx_gpt_ort ($OUTPUT)"
    fi
fi
finish
