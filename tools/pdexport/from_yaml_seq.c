/* from_yaml_seq.c: the sequence ops of a model YAML as ONNX nodes (opset 17), for pdexport's
 * graph of our ops (from_yaml.c; docs/formats.md, "The trained model as ONNX"). A tensor of
 * ours (T, C) per sample is [N, T, C] in the graph, the token ids int64 [N, T]:
 *   embedding   Gather(weight, ids); with positions, + Gather(pos, 0..T-1)
 *   layernorm   LayerNormalization(x, weight, bias), axis -1, epsilon eps
 *   gelu        0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in Pow, Mul, Add, Tanh
 *   attention   Split of the fused qkv (T, 3C) into q, k, v; Reshape to [N, T, heads, hs];
 *               Transpose to [N, heads, T, hs] (k to [N, heads, hs, T]); q @ k^T; Mul by
 *               1/sqrt(hs); Add of a [T, T] mask (0, -inf above the diagonal); Softmax over the
 *               last axis; @ v; Transpose back; Reshape to [N, T, C]
 *   linear      on (T, C): MatMul by Transpose(weight) (+ Add bias)
 *   concat      on (T, C): Concat over the features (axis -1)
 * These are the patterns planner/read/onnx_seq.c reads (torch.onnx.export's), named so that
 * pdplan reads the file back as the same layers: parameters <layer>.<param>, the nodes of a
 * layer without parameters "/<layer>/<Op>". lstm and two-input (cross) attention have no ONNX
 * form here: refused naming the layer. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pdexport.h"

/* "/<layer>/<op>" and its k-th repeat "/<layer>/<op>_k", as torch names a module's nodes */
static const char *node_name(const pd_layer *L, const char *op, int k) {
    char s[PD_NAME_MAX + 48];
    if (k) snprintf(s, sizeof s, "/%s/%s_%d", L->name, op, k);
    else snprintf(s, sizeof s, "/%s/%s", L->name, op);
    return pd_arena_str(s);
}

/* an intermediate tensor of layer L: "<layer>/<what>" */
static const char *tensor(const pd_layer *L, const char *what) {
    char s[PD_NAME_MAX + 48];
    snprintf(s, sizeof s, "%s/%s", L->name, what);
    return pd_arena_str(s);
}

/* a float scalar constant */
static const char *scalar(pdx_graph *b, const char *name, float v) {
    return pdx_const_f(b, name, NULL, 0, &v);
}

/* a node of two inputs */
static Onnx__NodeProto *node2(pdx_graph *b, const char *op, const char *name, const char *out,
                              const char *x, const char *y) {
    Onnx__NodeProto *nd = pdx_node(b, op, name, out);
    pdx_input(nd, x);
    if (y) pdx_input(nd, y);
    return nd;
}

static int refuse(const pd_layer *L, const char *why) {
    fprintf(stderr, "pdexport: layer '%s': %s\n", L->name, why);
    return 1;
}

static int embedding(pdx_graph *b, const pd_model *m, const pd_layer *L) {
    if (L->inputs[0] != 0 || m->input.rank != 1)
        return refuse(L, "an embedding that does not read the model's token ids has no ONNX "
                      "form here");
    int64_t T = L->out.dim[0], C = L->out_features, dw[2] = {L->num_embeddings, C};
    const char *tok = L->positions ? tensor(L, "tokens") : L->name;
    Onnx__NodeProto *nd = pdx_node(b, "Gather", node_name(L, "Gather", 0), tok);
    if (pdx_trained(b, nd, m, L, "weight", dw, 2, L->n_weight)) return 1;
    pdx_input(nd, "input");
    pdx_attr_int(nd, "axis", 0);
    if (!L->positions) return 0;
    int64_t ids[1 << 12], dp[2] = {T, C};
    if (T > (int64_t)(sizeof ids / sizeof *ids))
        return refuse(L, "a context over 4096 positions has no ONNX form here");
    for (int64_t t = 0; t < T; t++) ids[t] = t;
    char name[48];
    snprintf(name, sizeof name, "const.positions_%lld", (long long)T);
    const char *pos = tensor(L, "positions");
    nd = pdx_node(b, "Gather", node_name(L, "Gather", 1), pos);
    if (pdx_trained(b, nd, m, L, "pos", dp, 2, L->n_bias)) return 1;
    pdx_input(nd, pdx_const_i(b, name, &T, 1, ids));
    pdx_attr_int(nd, "axis", 0);
    node2(b, "Add", node_name(L, "Add", 0), L->name, tok, pos);
    return 0;
}

static int layernorm(pdx_graph *b, const pd_model *m, const pd_layer *L, const char *x) {
    int64_t C[1] = {L->out.rank == 2 ? L->out.dim[1] : L->out.dim[0]};
    if (L->out.rank == 3) return refuse(L, "a layernorm of (C, H, W) has no ONNX form here");
    Onnx__NodeProto *nd = pdx_node(b, "LayerNormalization", node_name(L, "LayerNormalization", 0),
                                   L->name);
    pdx_input(nd, x);
    pdx_attr_int(nd, "axis", -1);
    pdx_attr_float(nd, "epsilon", L->eps);
    return pdx_trained(b, nd, m, L, "weight", C, 1, C[0]) ||
           pdx_trained(b, nd, m, L, "bias", C, 1, C[0]);
}

/* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), docs/ops.md's gelu */
static int gelu(pdx_graph *b, const pd_layer *L, const char *x) {
    const char *x3 = tensor(L, "x3"), *cx3 = tensor(L, "cx3"), *in = tensor(L, "in");
    const char *u = tensor(L, "u"), *th = tensor(L, "tanh"), *one = tensor(L, "1ptanh");
    const char *xo = tensor(L, "x1ptanh");
    node2(b, "Pow", node_name(L, "Pow", 0), x3, x, scalar(b, "const.3", 3.0f));
    node2(b, "Mul", node_name(L, "Mul", 0), cx3, x3, scalar(b, "const.0.044715", 0.044715f));
    node2(b, "Add", node_name(L, "Add", 0), in, x, cx3);
    node2(b, "Mul", node_name(L, "Mul", 1), u, in,
          scalar(b, "const.sqrt_2_over_pi", (float)sqrt(2.0 / 3.14159265358979323846)));
    node2(b, "Tanh", node_name(L, "Tanh", 0), th, u, NULL);
    node2(b, "Add", node_name(L, "Add", 1), one, th, scalar(b, "const.1", 1.0f));
    node2(b, "Mul", node_name(L, "Mul", 2), xo, x, one);
    node2(b, "Mul", node_name(L, "Mul", 3), L->name, xo, scalar(b, "const.0.5", 0.5f));
    return 0;
}

/* causal self-attention over the fused qkv x (T, 3C) */
static int attention(pdx_graph *b, const pd_model *m, const pd_layer *L, const char *x) {
    const pd_shape *in = &m->layers[L->inputs[0]].out;
    if (L->n_inputs != 1)
        return refuse(L, "attention with two inputs (cross attention, not causal) has no ONNX "
                      "form in pdexport yet");
    int64_t T = in->dim[0], C = L->out.dim[1], H = L->heads, hs = C / H;
    if (in->rank != 2 || H < 1 || C % H || T > 4096)
        return refuse(L, "an attention outside (T <= 4096, 3C) -> (T, C) has no ONNX form here");
    char name[64];
    /* q, k, v */
    const char *part[3] = {tensor(L, "q"), tensor(L, "k"), tensor(L, "v")};
    Onnx__NodeProto *nd = pdx_node(b, "Split", node_name(L, "Split", 0), part[0]);
    pdx_input(nd, x);
    pdx_attr_int(nd, "axis", -1);
    nd->output[1] = pd_arena_str(part[1]);
    nd->output[2] = pd_arena_str(part[2]);
    nd->n_output = 3;
    int64_t s4[4] = {0, T, H, hs}, four = 4, three = 3, s3[3] = {0, T, C};
    snprintf(name, sizeof name, "const.shape_0_%lld_%lld_%lld", (long long)T, (long long)H,
             (long long)hs);
    const char *heads = pdx_const_i(b, name, &four, 1, s4);
    static const int64_t perm_qv[4] = {0, 2, 1, 3}, perm_k[4] = {0, 2, 3, 1};
    static const char *const what[3] = {"q_heads", "k_heads", "v_heads"};
    static const char *const whatt[3] = {"q_t", "k_t", "v_t"};
    const char *t[3];
    for (int j = 0; j < 3; j++) {
        const char *r = tensor(L, what[j]);
        node2(b, "Reshape", node_name(L, "Reshape", j), r, part[j], heads);
        t[j] = tensor(L, whatt[j]);
        nd = node2(b, "Transpose", node_name(L, "Transpose", j), t[j], r, NULL);
        pdx_attr_ints(nd, "perm", j == 1 ? perm_k : perm_qv, 4);
    }
    /* the scores, scaled and masked, their softmax, times v */
    const char *sc = tensor(L, "scores"), *ss = tensor(L, "scaled"), *sm = tensor(L, "masked");
    const char *p = tensor(L, "probs"), *y = tensor(L, "y"), *yt = tensor(L, "y_t");
    node2(b, "MatMul", node_name(L, "MatMul", 0), sc, t[0], t[1]);
    snprintf(name, sizeof name, "const.attn_scale_%lld", (long long)hs);
    node2(b, "Mul", node_name(L, "Mul", 0), ss, sc, scalar(b, name, (float)(1.0 / sqrt((double)hs))));
    float *mk = pd_arena((size_t)(T * T) * 4);
    for (int64_t i = 0; i < T; i++)
        for (int64_t j = 0; j < T; j++) mk[i * T + j] = j > i ? -INFINITY : 0.0f;
    int64_t dm[2] = {T, T};
    snprintf(name, sizeof name, "const.causal_mask_%lld", (long long)T);
    node2(b, "Add", node_name(L, "Add", 0), sm, ss, pdx_const_f(b, name, dm, 2, mk));
    nd = node2(b, "Softmax", node_name(L, "Softmax", 0), p, sm, NULL);
    pdx_attr_int(nd, "axis", -1);
    node2(b, "MatMul", node_name(L, "MatMul", 1), y, p, t[2]);
    nd = node2(b, "Transpose", node_name(L, "Transpose", 3), yt, y, NULL);
    pdx_attr_ints(nd, "perm", perm_qv, 4);
    snprintf(name, sizeof name, "const.shape_0_%lld_%lld", (long long)T, (long long)C);
    node2(b, "Reshape", node_name(L, "Reshape", 3), L->name, yt, pdx_const_i(b, name, &three, 1, s3));
    return 0;
}

/* linear over the last dimension of (T, C): x @ W^T (+ b), torch's nn.Linear export */
static int linear_seq(pdx_graph *b, const pd_model *m, const pd_layer *L, const char *x) {
    int64_t C = m->layers[L->inputs[0]].out.dim[1], dw[2] = {L->out_features, C};
    int64_t db[1] = {L->out_features};
    const char *wt = tensor(L, "weight_t"), *mm = L->has_bias ? tensor(L, "matmul") : L->name;
    Onnx__NodeProto *nd = pdx_node(b, "Transpose", node_name(L, "Transpose", 0), wt);
    if (pdx_trained(b, nd, m, L, "weight", dw, 2, L->n_weight)) return 1;
    pdx_attr_ints(nd, "perm", (const int64_t[]){1, 0}, 2);
    node2(b, "MatMul", node_name(L, "MatMul", 0), mm, x, wt);
    if (!L->has_bias) return 0;
    nd = node2(b, "Add", node_name(L, "Add", 0), L->name, mm, NULL);
    return pdx_trained(b, nd, m, L, "bias", db, 1, L->n_bias);
}

int pdx_seq_layer(pdx_graph *b, const pd_model *m, int i) {
    const pd_layer *L = &m->layers[i];
    const pd_shape *x = &m->layers[L->inputs[0]].out;
    const char *in0 = m->layers[L->inputs[0]].name;
    switch (L->op) {
    case PD_OP_EMBEDDING: return embedding(b, m, L);
    case PD_OP_LAYERNORM: return layernorm(b, m, L, in0);
    case PD_OP_GELU: return gelu(b, L, in0);
    case PD_OP_ATTENTION: return attention(b, m, L, in0);
    case PD_OP_LINEAR: return x->rank == 2 ? linear_seq(b, m, L, in0) : -1;
    case PD_OP_CONCAT: {
        if (x->rank != 2) return -1;
        Onnx__NodeProto *nd = pdx_node(b, "Concat", L->name, L->name);
        for (int j = 0; j < L->n_inputs; j++) pdx_input(nd, m->layers[L->inputs[j]].name);
        pdx_attr_int(nd, "axis", -1);
        return 0;
    }
    case PD_OP_LSTM:
        return refuse(L, "lstm has no ONNX form in pdexport yet");
    default: return -1;
    }
}
