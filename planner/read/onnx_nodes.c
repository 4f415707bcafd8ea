/* onnx_nodes.c: one ONNX node onto our ops (docs/formats.md, "ONNX" lists the subset and how
 * every attribute maps). Constant, Identity and Pad make no layer: they give a tensor a value
 * (a constant, another tensor, a padded tensor that the next Conv or AveragePool takes as its
 * padding); MatMul then Add of a constant is one linear layer. onnx_seq.c sees each node first
 * (the transformer patterns, shapes). Everything else is refused with the node's index, name
 * and op type. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

static const char SUPPORTED[] =
    "Conv, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, "
    "Reshape (to [N, -1]), Gemm, MatMul (+ Add), Add, Concat, Dropout, Pad (before Conv or "
    "AveragePool), Identity, Constant; Gather (embedding), LayerNormalization, and the "
    "LayerNorm, GELU and attention subgraphs of torch.onnx.export";

static int64_t attr_int(const Onnx__NodeProto *nd, const char *name, int64_t def) {
    const Onnx__AttributeProto *a = onnx_attr(nd, name);
    return a && a->has_i ? a->i : def;
}

/* A float32 as the shortest decimal that reads back as it (1e-05, not 9.99999975e-06). */
static double decimal_of(float f) {
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        double v = strtod(buf, NULL);
        if ((float)v == f) return v;
    }
    return f;
}

static double attr_float(const Onnx__NodeProto *nd, const char *name, double def) {
    const Onnx__AttributeProto *a = onnx_attr(nd, name);
    return a && a->has_f ? decimal_of(a->f) : def;
}

/* An ints attribute of exactly n values (n 0: any up to 8) into out; 0 when absent (out kept),
 * -1 when malformed. */
static int attr_ints(onnx_ctx *c, const char *name, int64_t *out, int n) {
    const Onnx__AttributeProto *a = onnx_attr(c->nd, name);
    if (!a) return 0;
    if ((n && a->n_ints != (size_t)n) || a->n_ints > 8) {
        onnx_node_error(c, "attribute '%s' must hold %d integers", name, n);
        return -1;
    }
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    return (int)a->n_ints;
}

/* Input k, which must be a layer's output (or, with pad, a padded one); -1 after a diagnostic. */
static int in_layer(onnx_ctx *c, size_t k, int pad[2]) {
    const char *nm = k < c->nd->n_input ? c->nd->input[k] : NULL;
    onnx_value *v = nm && nm[0] ? onnx_find(c, nm) : NULL;
    if (pad) pad[0] = pad[1] = 0;
    if (v && v->name && v->kind == OV_LAYER) return v->layer;
    if (v && v->name && v->kind == OV_PAD && pad) {
        pad[0] = v->pad[0];
        pad[1] = v->pad[1];
        return v->layer;
    }
    if (v && v->name && v->kind == OV_FAILED) {
        c->errors++; /* said at the node that made it */
        return -1;
    }
    if (v && v->name && v->kind == OV_PAT)
        onnx_node_error(c, "input %zu '%.200s' is an intermediate of a %s pattern that this "
                        "node does not continue (docs/formats.md lists the patterns)", k, nm,
                        onnx_seq_pat_name(v->pat));
    else if (v && v->name && (v->kind == OV_TCONST || v->kind == OV_INTS || v->kind == OV_FOLD))
        onnx_node_error(c, "input %zu '%.200s' is a constant: PipeDream-C takes it only as a "
                        "weight, a shape or an attention mask", k, nm);
    else if (v && v->name && v->kind == OV_PAD)
        onnx_node_error(c, "reads the output of a Pad: PipeDream-C folds a Pad only into the "
                        "Conv or AveragePool after it");
    else if (v && v->name && v->kind == OV_CONST)
        onnx_node_error(c, "input %zu '%.200s' is a constant: PipeDream-C takes it only as a "
                        "weight (Conv, Gemm, MatMul) or a bias (Add after MatMul)", k, nm);
    else
        onnx_node_error(c, "input %zu '%.200s' is not computed by an earlier node", k,
                        nm ? nm : "");
    return -1;
}

int onnx_in_layer(onnx_ctx *c, size_t k) { return in_layer(c, k, NULL); }

/* Input k as a constant (NULL: absent when optional, else a diagnostic). */
static const Onnx__TensorProto *in_const(onnx_ctx *c, size_t k, int optional) {
    const char *nm = k < c->nd->n_input ? c->nd->input[k] : NULL;
    onnx_value *v = nm && nm[0] ? onnx_find(c, nm) : NULL;
    if (v && v->name && v->kind == OV_CONST) return v->t;
    if (!optional || (nm && nm[0]))
        onnx_node_error(c, "input %zu '%.200s' must be a constant (an initializer)", k,
                        nm ? nm : "");
    return NULL;
}

/* The name an initializer gives its layer: "conv1.weight" -> "conv1". */
void onnx_prefix_of(const Onnx__TensorProto *t, const char *param, char *out, size_t cap) {
    out[0] = '\0';
    if (!t || !t->name) return;
    size_t n = strlen(t->name), p = strlen(param);
    if (n > p + 1 && !strcmp(t->name + n - p, param) && t->name[n - p - 1] == '.' &&
        n - p - 1 < cap)
        snprintf(out, cap, "%.*s", (int)(n - p - 1), t->name);
}

/* kernel, stride and padding of a window node (Conv, MaxPool, AveragePool) plus the padding
 * of a Pad before it; 1 after a diagnostic. */
static int window(onnx_ctx *c, const int64_t *kernel_default, const int pre[2], onnx_kv *kv) {
    int64_t k[8] = {0, 0}, s[8] = {1, 1}, p[8] = {0, 0, 0, 0}, dil[8] = {1, 1};
    if (kernel_default) memcpy(k, kernel_default, 2 * sizeof *k);
    if (attr_ints(c, "kernel_shape", k, 2) < 0 || attr_ints(c, "strides", s, 2) < 0 ||
        attr_ints(c, "pads", p, 4) < 0 || attr_ints(c, "dilations", dil, 2) < 0)
        return 1;
    const Onnx__AttributeProto *ap = onnx_attr(c->nd, "auto_pad");
    if (ap && ap->has_s && ap->s.len && !(ap->s.len == 6 && !memcmp(ap->s.data, "NOTSET", 6))) {
        onnx_node_error(c, "auto_pad is not supported: give explicit pads");
        return 1;
    }
    if (dil[0] != 1 || dil[1] != 1 || attr_int(c->nd, "ceil_mode", 0) != 0 ||
        attr_int(c->nd, "storage_order", 0) != 0) {
        onnx_node_error(c, "dilations other than 1, ceil_mode and storage_order are not "
                        "supported");
        return 1;
    }
    if (p[0] != p[2] || p[1] != p[3]) {
        onnx_node_error(c, "pads [%lld, %lld, %lld, %lld] are not symmetric", (long long)p[0],
                        (long long)p[1], (long long)p[2], (long long)p[3]);
        return 1;
    }
    if (k[0] < 1 || k[1] < 1) {
        onnx_node_error(c, "needs kernel_shape");
        return 1;
    }
    kv[0] = (onnx_kv){"kernel", KV_PAIR, {k[0], k[1]}, 0};
    kv[1] = (onnx_kv){"stride", KV_PAIR, {s[0], s[1]}, 0};
    kv[2] = (onnx_kv){"padding", KV_PAIR, {p[0] + pre[0], p[1] + pre[1]}, 0};
    return 0;
}

static int map_conv(onnx_ctx *c) {
    int pad[2], x = in_layer(c, 0, pad);
    const Onnx__TensorProto *W = in_const(c, 1, 0), *B = in_const(c, 2, 1);
    if (x < 0 || !W || (!B && c->nd->n_input > 2 && c->nd->input[2][0])) return 1;
    if (W->n_dims != 4 || attr_int(c->nd, "group", 1) != 1) {
        onnx_node_error(c, "needs a weight [out][in][kh][kw] and group 1");
        return 1;
    }
    onnx_kv kv[5];
    if (window(c, W->dims + 2, pad, kv)) return 1;
    kv[3] = (onnx_kv){"out_channels", KV_INT, {W->dims[0], 0}, 0};
    kv[4] = (onnx_kv){"bias", KV_FLAG, {B != NULL, 0}, 0};
    char name[PD_NAME_MAX];
    onnx_prefix_of(W, "weight", name, sizeof name);
    int L = onnx_new_layer(c, PD_OP_CONV2D, name, &x, 1, kv, 5);
    if (L < 0) return 1;
    return onnx_take_weight(c, L, "weight", W, 0) + (B ? onnx_take_weight(c, L, "bias", B, 0) : 0);
}

static int map_batchnorm(onnx_ctx *c) {
    int x = in_layer(c, 0, NULL);
    const Onnx__TensorProto *t[4];
    for (int k = 0; k < 4; k++) t[k] = in_const(c, (size_t)k + 1, 0);
    if (x < 0 || !t[0] || !t[1] || !t[2] || !t[3]) return 1;
    /* ONNX: running = running * momentum + batch * (1 - momentum); PyTorch's is the complement */
    onnx_kv kv[2] = {{"eps", KV_NUM, {0, 0}, attr_float(c->nd, "epsilon", 1e-5)},
                     {"momentum", KV_NUM, {0, 0}, 1.0 - attr_float(c->nd, "momentum", 0.9)}};
    kv[1].f = decimal_of((float)kv[1].f); /* 1 - 0.9 in float32 */
    char name[PD_NAME_MAX];
    onnx_prefix_of(t[0], "weight", name, sizeof name);
    int L = onnx_new_layer(c, PD_OP_BATCHNORM2D, name, &x, 1, kv, 2);
    if (L < 0) return 1;
    static const char *const param[4] = {"weight", "bias", "running_mean", "running_var"};
    int e = 0;
    for (int k = 0; k < 4; k++) e += onnx_take_weight(c, L, param[k], t[k], 0);
    return e;
}

static int map_pool(onnx_ctx *c, int avg) {
    int pad[2], x = in_layer(c, 0, avg ? pad : NULL);
    if (x < 0) return 1;
    onnx_kv kv[3];
    if (window(c, NULL, avg ? pad : (int[2]){0, 0}, kv)) return 1;
    if (avg && !attr_int(c->nd, "count_include_pad", 0)) {
        int64_t p[4] = {0, 0, 0, 0};
        attr_ints(c, "pads", p, 4);
        if (p[0] || p[1]) {
            onnx_node_error(c, "count_include_pad 0 with pads: PipeDream-C's avgpool2d counts "
                            "the padding (PyTorch's default)");
            return 1;
        }
    }
    return onnx_new_layer(c, avg ? PD_OP_AVGPOOL2D : PD_OP_MAXPOOL2D, NULL, &x, 1, kv, 3) < 0;
}

/* Gemm: y = x B^T + C (transB 1, PyTorch's Linear) or x B + C (transB 0). */
static int map_gemm(onnx_ctx *c) {
    int x = in_layer(c, 0, NULL);
    const Onnx__TensorProto *W = in_const(c, 1, 0), *B = in_const(c, 2, 1);
    if (x < 0 || !W || (!B && c->nd->n_input > 2 && c->nd->input[2][0])) return 1;
    int tb = attr_int(c->nd, "transB", 0) != 0;
    if (attr_int(c->nd, "transA", 0) || attr_float(c->nd, "alpha", 1) != 1 ||
        attr_float(c->nd, "beta", 1) != 1 || W->n_dims != 2) {
        onnx_node_error(c, "only y = x W^T + b or x W + b (transA 0, alpha and beta 1, a "
                        "rank-2 weight) maps to linear");
        return 1;
    }
    onnx_kv kv[2] = {{"out_features", KV_INT, {W->dims[tb ? 0 : 1], 0}, 0},
                     {"bias", KV_FLAG, {B != NULL, 0}, 0}};
    char name[PD_NAME_MAX];
    onnx_prefix_of(W, "weight", name, sizeof name);
    int L = onnx_new_layer(c, PD_OP_LINEAR, name, &x, 1, kv, 2);
    if (L < 0) return 1;
    if (B && (onnx_float_count(B) != W->dims[tb ? 0 : 1])) {
        onnx_node_error(c, "its bias must hold one value per output (%lld)",
                        (long long)W->dims[tb ? 0 : 1]);
        return 1;
    }
    return onnx_take_weight(c, L, "weight", W, !tb) +
           (B ? onnx_take_weight(c, L, "bias", B, 0) : 0);
}

/* MatMul by a constant [in][out], or by the Transpose of a constant [out][in] (torch's
 * nn.Linear over (B, T, C)): a linear layer without bias (yet: see map_add). */
static int map_matmul(onnx_ctx *c) {
    int x = in_layer(c, 0, NULL);
    onnx_value *tv = c->nd->n_input > 1 ? onnx_find(c, c->nd->input[1]) : NULL;
    int tr = !(tv && tv->name && tv->kind == OV_TCONST);
    const Onnx__TensorProto *W = tr ? in_const(c, 1, 0) : tv->t;
    if (x < 0 || !W) return 1;
    if (W->n_dims != 2) {
        onnx_node_error(c, "only a product by a rank-2 constant maps to linear");
        return 1;
    }
    onnx_kv kv[2] = {{"out_features", KV_INT, {W->dims[tr ? 1 : 0], 0}, 0},
                     {"bias", KV_FLAG, {0, 0}, 0}};
    char name[PD_NAME_MAX];
    onnx_prefix_of(W, "weight", name, sizeof name);
    int L = onnx_new_layer(c, PD_OP_LINEAR, name, &x, 1, kv, 2);
    if (L < 0) return 1;
    onnx_find(c, c->nd->output[0])->bias_free = 1;
    return onnx_take_weight(c, L, "weight", W, tr);
}

/* Add: of two computed tensors (add), or of a constant to a MatMul's product (its bias). */
static int map_add(onnx_ctx *c) {
    if (c->nd->n_input != 2) {
        onnx_node_error(c, "needs two inputs");
        return 1;
    }
    for (int k = 0; k < 2; k++) {
        onnx_value *v = onnx_find(c, c->nd->input[k]), *b = onnx_find(c, c->nd->input[1 - k]);
        if (v->name && v->kind == OV_LAYER && v->bias_free && v->uses == 1 && b->name &&
            b->kind == OV_CONST) {
            pd_layer *L = &c->m->layers[v->layer];
            if (onnx_float_count(b->t) != L->out_features) {
                onnx_node_error(c, "a bias after MatMul must hold %d values",
                                L->out_features);
                return 1;
            }
            L->has_bias = 1;
            onnx_value *o = onnx_add(c, c->nd->output[0]);
            o->kind = OV_LAYER;
            o->layer = v->layer;
            return onnx_take_weight(c, v->layer, "bias", b->t, 0);
        }
    }
    int in[2] = {in_layer(c, 0, NULL), in_layer(c, 1, NULL)};
    if (in[0] < 0 || in[1] < 0) return 1;
    return onnx_new_layer(c, PD_OP_ADD, NULL, in, 2, NULL, 0) < 0;
}

static int map_concat(onnx_ctx *c) {
    int in[PD_MAX_INPUTS];
    if (c->nd->n_input < 2 || c->nd->n_input > PD_MAX_INPUTS) {
        onnx_node_error(c, "takes 2 to %d inputs here", PD_MAX_INPUTS);
        return 1;
    }
    if (attr_int(c->nd, "axis", 0) != 1) {
        onnx_node_error(c, "only axis 1 (channels, or features) is supported");
        return 1;
    }
    for (size_t k = 0; k < c->nd->n_input; k++)
        if ((in[k] = in_layer(c, k, NULL)) < 0) return 1;
    return onnx_new_layer(c, PD_OP_CONCAT, NULL, in, (int)c->nd->n_input, NULL, 0) < 0;
}

static int map_flatten(onnx_ctx *c, int reshape) {
    int x = in_layer(c, 0, NULL);
    if (x < 0) return 1;
    if (reshape) { /* [N or 0 or -1, -1 or the features] */
        const Onnx__TensorProto *s = in_const(c, 1, 0);
        int64_t v[2];
        if (!s) return 1;
        if (onnx_const_ints(s, v, 2) != 2 || v[0] < 0 || v[1] != -1) {
            onnx_node_error(c, "only a Reshape to [N, -1] (a flatten) is supported");
            return 1;
        }
    } else if (attr_int(c->nd, "axis", 1) != 1) {
        onnx_node_error(c, "only axis 1 is supported");
        return 1;
    }
    return onnx_new_layer(c, PD_OP_FLATTEN, NULL, &x, 1, NULL, 0) < 0;
}

static int map_dropout(onnx_ctx *c) {
    int x = in_layer(c, 0, NULL);
    if (x < 0) return 1;
    float p = (float)attr_float(c->nd, "ratio", 0.5);
    if (c->nd->n_input > 1 && c->nd->input[1][0]) {
        const Onnx__TensorProto *r = in_const(c, 1, 0);
        if (!r || onnx_const_floats(r, &p, 1) != 1) {
            if (r) onnx_node_error(c, "its ratio must be one float");
            return 1;
        }
    }
    onnx_kv kv[1] = {{"p", KV_NUM, {0, 0}, decimal_of(p)}};
    return onnx_new_layer(c, PD_OP_DROPOUT, NULL, &x, 1, kv, 1) < 0;
}

/* Pad: constant zero padding of H and W, the same on both sides, before a Conv or AveragePool. */
static int map_pad(onnx_ctx *c) {
    int x = in_layer(c, 0, NULL);
    if (x < 0) return 1;
    int64_t p[8] = {0};
    int n;
    const Onnx__AttributeProto *mode = onnx_attr(c->nd, "mode");
    if (mode && mode->has_s && !(mode->s.len == 8 && !memcmp(mode->s.data, "constant", 8))) {
        onnx_node_error(c, "only constant (zero) padding is supported");
        return 1;
    }
    if (c->nd->n_input > 1) {
        const Onnx__TensorProto *t = in_const(c, 1, 0);
        if (!t) return 1;
        n = onnx_const_ints(t, p, 8);
    } else {
        n = attr_ints(c, "pads", p, 8);
    }
    float value = 0;
    if (c->nd->n_input > 2 && c->nd->input[2][0]) {
        const Onnx__TensorProto *t = in_const(c, 2, 0);
        if (!t || onnx_const_floats(t, &value, 1) != 1) value = NAN;
    }
    if (n != 8 || p[0] || p[1] || p[4] || p[5] || p[2] != p[6] || p[3] != p[7] || p[2] < 0 ||
        p[3] < 0 || p[2] > 1000 || p[3] > 1000 || value != 0) {
        onnx_node_error(c, "only zero padding of H and W, equal on both sides, is supported");
        return 1;
    }
    onnx_value *v = onnx_add(c, c->nd->output[0]);
    v->kind = OV_PAD;
    v->layer = x;
    v->pad[0] = (int)p[2];
    v->pad[1] = (int)p[3];
    return 0;
}

static void fail_outputs(onnx_ctx *c) {
    for (size_t k = 0; k < c->nd->n_output; k++)
        if (c->nd->output[k] && c->nd->output[k][0]) {
            onnx_value *v = onnx_add(c, c->nd->output[k]);
            if (v->kind == OV_NONE) v->kind = OV_FAILED;
        }
}

int onnx_map_node(onnx_ctx *c) {
    const char *op = c->nd->op_type;
    const char *dom = c->nd->domain;
    if (dom && dom[0] && strcmp(dom, "ai.onnx")) {
        onnx_node_error(c, "ops of domain '%.64s' are not supported", dom);
        return 1;
    }
    for (size_t k = 0; k < c->nd->n_output; k++) /* SSA: each name is made once */
        if (c->nd->output[k] && c->nd->output[k][0]) {
            onnx_value *v = onnx_find(c, c->nd->output[k]);
            if (v->name && v->kind != OV_NONE) {
                onnx_node_error(c, "output '%.200s' is already defined", c->nd->output[k]);
                return 1;
            }
        }
    int before = c->errors, e = onnx_seq_map(c);
    if (e >= 0) {
        if (e && c->errors == before) onnx_node_error(c, "cannot be mapped");
        if (e) fail_outputs(c);
        return e;
    }
    if (!strcmp(op, "Conv")) e = map_conv(c);
    else if (!strcmp(op, "BatchNormalization")) e = map_batchnorm(c);
    else if (!strcmp(op, "Relu")) {
        int x = in_layer(c, 0, NULL);
        e = x < 0 || onnx_new_layer(c, PD_OP_RELU, NULL, &x, 1, NULL, 0) < 0;
    } else if (!strcmp(op, "MaxPool")) e = map_pool(c, 0);
    else if (!strcmp(op, "AveragePool")) e = map_pool(c, 1);
    else if (!strcmp(op, "GlobalAveragePool")) {
        int x = in_layer(c, 0, NULL);
        onnx_kv kv[1] = {{"global", KV_FLAG, {1, 0}, 0}};
        e = x < 0 || onnx_new_layer(c, PD_OP_AVGPOOL2D, NULL, &x, 1, kv, 1) < 0;
    } else if (!strcmp(op, "Flatten")) e = map_flatten(c, 0);
    else if (!strcmp(op, "Reshape")) e = map_flatten(c, 1);
    else if (!strcmp(op, "Gemm")) e = map_gemm(c);
    else if (!strcmp(op, "MatMul")) e = map_matmul(c);
    else if (!strcmp(op, "Add")) e = map_add(c);
    else if (!strcmp(op, "Concat")) e = map_concat(c);
    else if (!strcmp(op, "Dropout")) e = map_dropout(c);
    else if (!strcmp(op, "Pad")) e = map_pad(c);
    else if (!strcmp(op, "Identity")) {
        onnx_value *v = c->nd->n_input == 1 ? onnx_find(c, c->nd->input[0]) : NULL;
        if (!v || !v->name || v->kind == OV_NONE) {
            onnx_node_error(c, "its input is not computed by an earlier node");
            return 1;
        }
        onnx_value *o = onnx_add(c, c->nd->output[0]), copy = *v;
        copy.name = o->name;
        copy.uses = o->uses;
        *o = copy;
        e = 0;
    } else if (!strcmp(op, "Constant")) {
        const Onnx__AttributeProto *a = onnx_attr(c->nd, "value");
        if (!a || !a->t) {
            onnx_node_error(c, "only a Constant with a tensor 'value' is supported");
            return 1;
        }
        onnx_value *v = onnx_add(c, c->nd->output[0]);
        v->kind = OV_CONST;
        v->t = a->t;
        e = 0;
    } else {
        onnx_node_error(c, "unsupported op (PipeDream-C reads %s)", SUPPORTED);
        e = 1;
    }
    if (e && c->errors == before) onnx_node_error(c, "cannot be mapped");
    if (e) fail_outputs(c);
    return e;
}
