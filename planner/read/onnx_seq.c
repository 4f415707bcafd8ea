/* onnx_seq.c: the transformer patterns of torch.onnx.export (docs/formats.md, "ONNX"). A node of
 * a pattern gives its output a value of kind OV_PAT that says how far the pattern has come; the
 * node that completes it makes the layer:
 *   Gather(W [V][C], token ids)                       -> embedding (W: weight)
 *   + Gather(P [T][C], arange(T)) added to it          -> the embedding's positions (P: pos)
 *   LayerNormalization, or ReduceMean/Sub/Pow/ReduceMean/Add eps/Sqrt/Div/Mul w/Add b
 *                                                     -> layernorm (eps read from the graph)
 *   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) in Mul/Pow/Add/Tanh, any order of factors
 *                                                     -> gelu
 *   Split of a linear's (T, 3C) into q, k, v; Reshape to heads, Transpose; q @ k^T; a scale by
 *   1/sqrt(hs); Where(causal mask, -inf, .) or Add of a -inf mask; Softmax; @ v; Transpose back;
 *   Reshape to (T, C)                                 -> attention (heads from the Reshape)
 * Transpose of a rank-2 constant makes a transposed constant (MatMul by it is torch's Linear over
 * (B, T, C), onnx_nodes.c); Unsqueeze, Concat, Cast, Gather and arithmetic of integers, and
 * the Shape of a sequence layer (a dynamic batch's export), fold into integer vectors (shapes),
 * Range(0, T, 1) into the positions; Slice, Equal and Cast of float constants fold into tensors
 * (the mask). Anything that leaves a pattern half done is refused at the node that reads it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_internal.h"

enum {
    P_QKV = 1, /* part `part` of the Split of linear x's output */
    P_HEADS,   /* part reshaped to (B, T, heads, hs) */
    P_HEADS_T, /* transposed to (B, heads, T, hs) */
    P_KT,      /* k as (B, heads, hs, T) */
    P_SCORES,  /* q k^T; flags: 1 scaled, 2 masked */
    P_PROBS,   /* softmax of the scores */
    P_Y,       /* probs @ v: (B, heads, T, hs) */
    P_Y_T,     /* (B, T, heads, hs) */
    P_POS,     /* the rows 0..T-1 of a position table t */
    P_ARANGE,  /* Range(0, part, 1): the position indices of a dynamic export */
    P_LN_MEAN, P_LN_CENT, P_LN_SQ, P_LN_VAR, P_LN_VEPS, P_LN_STD, P_LN_NORM, P_LN_W,
    P_G_X1,    /* coef x (GELU) */
    P_G_X2,    /* coef x^2 */
    P_G_X3,    /* coef x^3 */
    P_G_IN,    /* coef (x + 0.044715 x^3) */
    P_G_TH,    /* coef tanh(sqrt(2/pi) (x + 0.044715 x^3)) */
    P_G_1PT,   /* coef (1 + tanh(...)) */
    P_G_X1PT   /* coef x (1 + tanh(...)) */
};

const char *onnx_seq_pat_name(int pat) {
    if (pat <= P_Y_T) return "attention";
    if (pat == P_POS || pat == P_ARANGE) return "position embedding";
    if (pat <= P_LN_W) return "LayerNorm";
    return "GELU";
}

void onnx_seq_free(onnx_ctx *c) {
    for (int i = 0; i < c->n_folds; i++) {
        free(c->folds[i]->v);
        free(c->folds[i]);
    }
    free(c->folds);
    c->folds = NULL;
    c->n_folds = c->folds_cap = 0;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-6 * fabs(b) + 1e-12; }

/* ---- values ---- */

static onnx_value *in_val(onnx_ctx *c, size_t k) {
    const char *nm = k < c->nd->n_input ? c->nd->input[k] : NULL;
    onnx_value *v = nm && nm[0] ? onnx_find(c, nm) : NULL;
    return v && v->name && v->kind != OV_NONE ? v : NULL;
}

static onnx_value *out_val(onnx_ctx *c, size_t k) {
    onnx_value *v = onnx_add(c, c->nd->output[k]);
    int uses = v->uses;
    const char *nm = v->name;
    memset(v, 0, sizeof *v);
    v->name = nm;
    v->uses = uses;
    return v;
}

static onnx_value *out_pat(onnx_ctx *c, int pat, int layer) {
    onnx_value *v = out_val(c, 0);
    v->kind = OV_PAT;
    v->pat = pat;
    v->layer = layer;
    v->coef = 1;
    return v;
}

static int is_pat(const onnx_value *v, int pat) { return v && v->kind == OV_PAT && v->pat == pat; }

/* A float constant of one element (a scalar or [1]): 1 and *f, else 0. */
static int scalar_of(const onnx_value *v, double *f) {
    float x;
    if (!v || v->kind != OV_CONST || onnx_const_floats(v->t, &x, 1) != 1) return 0;
    *f = x;
    return 1;
}

/* Integers of a constant or a folded vector: the count, or -1. */
static int ints_of(const onnx_value *v, int64_t *out, int max) {
    if (!v) return -1;
    if (v->kind == OV_INTS) {
        if (v->n_iv > max) return -1;
        memcpy(out, v->iv, sizeof *out * (size_t)v->n_iv);
        return v->n_iv;
    }
    return v->kind == OV_CONST ? onnx_const_ints(v->t, out, max) : -1;
}

static onnx_value *out_ints(onnx_ctx *c, const int64_t *iv, int n) {
    onnx_value *o = out_val(c, 0);
    o->kind = OV_INTS;
    o->n_iv = n;
    memcpy(o->iv, iv, sizeof *iv * (size_t)n);
    return o;
}

/* A float tensor, folded or constant, as a fold (constants are copied); NULL if neither. */
static onnx_fold *new_fold(onnx_ctx *c, int rank, const int64_t *dim) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dim[i];
    if (rank > 4 || n < 0 || n > (1 << 24)) return NULL;
    if (c->n_folds == c->folds_cap) {
        int cap = c->folds_cap ? 2 * c->folds_cap : 16;
        onnx_fold **f = realloc(c->folds, (size_t)cap * sizeof *f);
        if (!f) return NULL;
        c->folds = f;
        c->folds_cap = cap;
    }
    onnx_fold *f = calloc(1, sizeof *f);
    if (!f || !(f->v = calloc((size_t)(n ? n : 1), sizeof(float)))) {
        free(f);
        return NULL;
    }
    f->rank = rank;
    memcpy(f->dim, dim, sizeof *dim * (size_t)rank);
    c->folds[c->n_folds++] = f;
    return f;
}

static onnx_fold *fold_of(onnx_ctx *c, const onnx_value *v) {
    if (!v) return NULL;
    if (v->kind == OV_FOLD) return v->fold;
    if (v->kind != OV_CONST || v->t->n_dims > 4) return NULL;
    int64_t n = onnx_float_count(v->t);
    if (n < 0 || n > (1 << 24)) return NULL;
    onnx_fold *f = new_fold(c, (int)v->t->n_dims, v->t->dims);
    if (f && onnx_const_floats(v->t, f->v, (int)n) != n) return NULL;
    return f;
}

static int64_t fold_count(const onnx_fold *f) {
    int64_t n = 1;
    for (int i = 0; i < f->rank; i++) n *= f->dim[i];
    return n;
}

static int fail(onnx_ctx *c, const char *what) {
    onnx_node_error(c, "%s", what);
    return 1;
}

/* ---- folding of constants ---- */

static int map_unsqueeze(onnx_ctx *c) {
    int64_t v[8], ax[8];
    int n = ints_of(in_val(c, 0), v, 8), na;
    const Onnx__AttributeProto *a = onnx_attr(c->nd, "axes");
    na = a ? (int)a->n_ints : ints_of(in_val(c, 1), ax, 8);
    if (a && na == 1) ax[0] = a->ints[0];
    if (n != 1 || na != 1 || ax[0] != 0)
        return fail(c, "only the Unsqueeze of one integer at axis 0 (a shape's element) is read");
    out_ints(c, v, 1);
    return 0;
}

static int map_concat_ints(onnx_ctx *c) {
    int64_t all[8], v[8];
    int n = 0;
    for (size_t k = 0; k < c->nd->n_input; k++) {
        int m = ints_of(in_val(c, k), v, 8);
        if (m < 0 || n + m > 8) return fail(c, "a Concat of shapes must join at most 8 integers");
        memcpy(all + n, v, sizeof *v * (size_t)m);
        n += m;
    }
    out_ints(c, all, n);
    return 0;
}

/* Slice of a float constant (steps 1), e.g. the mask buffer's [:, :, :T, :T]. */
static int map_slice(onnx_ctx *c) {
    onnx_fold *f = fold_of(c, in_val(c, 0));
    int64_t st[4], en[4], ax[4] = {0, 1, 2, 3}, sp[4] = {1, 1, 1, 1};
    int n = ints_of(in_val(c, 1), st, 4), ne = ints_of(in_val(c, 2), en, 4);
    int na = c->nd->n_input > 3 && c->nd->input[3][0] ? ints_of(in_val(c, 3), ax, 4) : n;
    int ns = c->nd->n_input > 4 && c->nd->input[4][0] ? ints_of(in_val(c, 4), sp, 4) : n;
    if (!f || n < 1 || ne != n || na != n || ns != n)
        return fail(c, "only a Slice of a float constant by constant starts, ends, axes and "
                    "steps (a mask buffer's) is read");
    int64_t lo[4] = {0, 0, 0, 0}, hi[4];
    memcpy(hi, f->dim, sizeof hi);
    for (int i = 0; i < n; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + f->rank : ax[i];
        if (a < 0 || a >= f->rank || sp[i] != 1) return fail(c, "a Slice's axes and steps 1");
        int64_t d = f->dim[a], s = st[i] < 0 ? st[i] + d : st[i], e = en[i] < 0 ? en[i] + d : en[i];
        lo[a] = s < 0 ? 0 : s > d ? d : s;
        hi[a] = e < lo[a] ? lo[a] : e > d ? d : e;
    }
    int64_t dim[4] = {1, 1, 1, 1}, src[4] = {1, 1, 1, 1};
    for (int i = 0; i < f->rank; i++) dim[i] = hi[i] - lo[i];
    for (int i = 0; i < f->rank; i++) src[i] = f->dim[i];
    onnx_fold *o = new_fold(c, f->rank, dim);
    if (!o) return fail(c, "out of memory");
    int64_t k = 0;
    for (int64_t a = 0; a < dim[0]; a++)
        for (int64_t b = 0; b < dim[1]; b++)
            for (int64_t e = 0; e < dim[2]; e++)
                for (int64_t g = 0; g < dim[3]; g++)
                    o->v[k++] = f->v[(((lo[0] + a) * src[1] + lo[1] + b) * src[2] + lo[2] + e) *
                                         src[3] + lo[3] + g];
    onnx_value *v = out_val(c, 0);
    v->kind = OV_FOLD;
    v->fold = o;
    return 0;
}

/* Equal of a float constant and a scalar (1 where equal), or Cast of it (bool or float). */
static int map_equal_cast(onnx_ctx *c, int cast) {
    onnx_value *a = in_val(c, 0), *b = cast ? NULL : in_val(c, 1);
    int64_t iv[8];
    int ni;
    if (cast && (ni = ints_of(a, iv, 8)) >= 0) { /* shapes cast to int64 and back */
        out_ints(c, iv, ni);
        return 0;
    }
    double s = 0;
    if (!cast && !scalar_of(b, &s) && scalar_of(a, &s)) {
        onnx_value *t = a;
        a = b;
        b = t;
    }
    onnx_fold *f = fold_of(c, a);
    if (!f || (!cast && !scalar_of(b, &s)))
        return fail(c, cast ? "only the Cast of a constant (a shape or a mask) is read"
                            : "only the Equal of a float constant and a scalar (a mask) is read");
    onnx_fold *o = new_fold(c, f->rank, f->dim);
    if (!o) return fail(c, "out of memory");
    for (int64_t i = 0; i < fold_count(f); i++)
        o->v[i] = cast ? (f->v[i] != 0) : (float)(f->v[i] == (float)s);
    onnx_value *v = out_val(c, 0);
    v->kind = OV_FOLD;
    v->fold = o;
    return 0;
}

/* The width of layer i's (B, T, width) output as far as the patterns tell it (-1: not known),
 * for the Shape nodes of an export with a dynamic batch. */
static int layer_width(onnx_ctx *c, int i) {
    for (int depth = 0; depth < 100000 && i > 0; depth++) {
        const pd_layer *L = &c->m->layers[i];
        switch (L->op) {
        case PD_OP_EMBEDDING:
        case PD_OP_LINEAR: return L->out_features;
        case PD_OP_ATTENTION: return L->heads > 0 ? layer_width(c, L->inputs[0]) / 3 : -1;
        case PD_OP_LAYERNORM:
        case PD_OP_GELU:
        case PD_OP_ADD:
        case PD_OP_RELU:
        case PD_OP_DROPOUT: i = L->inputs[0]; break;
        default: return -1;
        }
    }
    return -1;
}

/* Shape of the ids [N, T] or of a sequence layer [N, T, width] */
static int map_shape(onnx_ctx *c) {
    onnx_value *x = in_val(c, 0);
    int T = c->m->input.dim[0];
    if (onnx_attr(c->nd, "start") || onnx_attr(c->nd, "end"))
        return fail(c, "a Shape with start or end is not read");
    if (x && x->kind == OV_LAYER && x->layer == 0 && c->tokens) {
        out_ints(c, (int64_t[]){c->batch, T}, 2);
        return 0;
    }
    int w = x && x->kind == OV_LAYER && c->tokens ? layer_width(c, x->layer) : -1;
    if (w < 0)
        return fail(c, "only the Shape of the token ids or of a sequence layer (B, T, C) is "
                    "read; better, export with fixed shapes (no dynamic_axes)");
    out_ints(c, (int64_t[]){c->batch, T, w}, 3);
    return 0;
}

/* Add, Sub, Mul, Div of integer vectors (a shape's arithmetic); 0 when folded, 1 after a
 * diagnostic, -1 when the inputs are no integers. */
static int map_int_arith(onnx_ctx *c, char op) {
    int64_t a[8], b[8], r[8];
    int na = ints_of(in_val(c, 0), a, 8), nb = ints_of(in_val(c, 1), b, 8);
    if (na < 0 || nb < 0) return -1;
    int n = na > nb ? na : nb;
    if ((na != n && na != 1) || (nb != n && nb != 1)) return fail(c, "shapes that do not broadcast");
    for (int i = 0; i < n; i++) {
        int64_t x = a[na == 1 ? 0 : i], y = b[nb == 1 ? 0 : i];
        if (x < -(1 << 30) || x > (1 << 30) || y < -(1 << 30) || y > (1 << 30) ||
            (op == 'D' && y == 0))
            return fail(c, "a shape's arithmetic out of range");
        r[i] = op == 'A' ? x + y : op == 'S' ? x - y : op == 'M' ? x * y : x / y;
    }
    out_ints(c, r, n);
    return 0;
}

/* Range(0, T, 1): the positions of a dynamic export */
static int map_range(onnx_ctx *c) {
    int64_t s[1], l[1], d[1];
    if (ints_of(in_val(c, 0), s, 1) != 1 || ints_of(in_val(c, 1), l, 1) != 1 ||
        ints_of(in_val(c, 2), d, 1) != 1 || s[0] != 0 || d[0] != 1 || l[0] < 1 || l[0] > (1 << 20))
        return fail(c, "only Range(0, T, 1) (positions) is read");
    out_pat(c, P_ARANGE, -1)->part = (int)l[0];
    return 0;
}

/* ---- embedding ---- */

static int map_gather(onnx_ctx *c) {
    onnx_value *w = in_val(c, 0), *ix = in_val(c, 1);
    const Onnx__AttributeProto *axis = onnx_attr(c->nd, "axis");
    int64_t iv[8];
    int n;
    if (ix && ix->kind != OV_LAYER && (n = ints_of(w, iv, 8)) >= 0) { /* a shape's element */
        int64_t k[1];
        if (ints_of(ix, k, 1) != 1 || k[0] < -n || k[0] >= n)
            return fail(c, "a Gather of a shape needs one index within it");
        out_ints(c, &iv[k[0] < 0 ? k[0] + n : k[0]], 1);
        return 0;
    }
    if (!w || w->kind != OV_CONST || w->t->n_dims != 2 || (axis && axis->i != 0))
        return fail(c, "only a Gather of rows of a rank-2 float initializer (an embedding) "
                    "is supported");
    if (ix && ix->kind == OV_LAYER) {
        if (ix->layer != 0 || !c->tokens)
            return fail(c, "an embedding's Gather must read the model's int64 token ids");
        onnx_kv kv[3] = {{"num_embeddings", KV_INT, {w->t->dims[0], 0}, 0},
                         {"embedding_dim", KV_INT, {w->t->dims[1], 0}, 0},
                         {"positions", KV_INT, {0, 0}, 0}};
        char name[PD_NAME_MAX];
        onnx_prefix_of(w->t, "weight", name, sizeof name);
        int x = 0, L = onnx_new_layer(c, PD_OP_EMBEDDING, name, &x, 1, kv, 3);
        if (L < 0) return 1;
        onnx_find(c, c->nd->output[0])->pos_free = 1;
        return onnx_take_weight(c, L, "weight", w->t, 0);
    }
    int64_t T = c->m->input.dim[0], pos[1 << 12];
    n = is_pat(ix, P_ARANGE) ? ix->part : ints_of(ix, pos, 1 << 12);
    for (int64_t i = 0; i < n && !is_pat(ix, P_ARANGE); i++)
        if (pos[i] != i) n = -1;
    if (n != T || w->t->dims[0] != T)
        return fail(c, "a Gather of position rows must take all the rows 0..T-1 of a table of "
                    "exactly T rows (T the input's context)");
    onnx_value *o = out_pat(c, P_POS, -1);
    o->t = w->t;
    return 0;
}

/* ---- LayerNorm ---- */

static int reduce_last(onnx_ctx *c) {
    int64_t ax[8] = {0};
    const Onnx__AttributeProto *a = onnx_attr(c->nd, "axes");
    int n = a ? (int)a->n_ints : ints_of(in_val(c, 1), ax, 8);
    if (a && n == 1) ax[0] = a->ints[0];
    const Onnx__AttributeProto *kd = onnx_attr(c->nd, "keepdims");
    return n == 1 && (ax[0] == -1 || ax[0] == 2) && !(kd && kd->has_i && !kd->i);
}

static int map_reducemean(onnx_ctx *c) {
    onnx_value *x = in_val(c, 0);
    if (!reduce_last(c))
        return fail(c, "only a mean over the last axis with keepdims (a LayerNorm's) is read");
    if (x && x->kind == OV_LAYER) {
        out_pat(c, P_LN_MEAN, x->layer);
        return 0;
    }
    if (is_pat(x, P_LN_SQ)) {
        out_pat(c, P_LN_VAR, x->layer);
        return 0;
    }
    onnx_in_layer(c, 0);
    return 1;
}

static int new_layernorm(onnx_ctx *c, int x, double eps, const Onnx__TensorProto *w,
                         const Onnx__TensorProto *b) {
    char name[PD_NAME_MAX];
    onnx_prefix_of(w, "weight", name, sizeof name);
    float e = (float)eps;
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", (double)e); /* 1e-05, not 9.99999975e-06 */
    onnx_kv kv[1] = {{"eps", KV_NUM, {0, 0}, (float)strtod(buf, NULL) == e ? strtod(buf, NULL) : eps}};
    int L = onnx_new_layer(c, PD_OP_LAYERNORM, name, &x, 1, kv, 1);
    if (L < 0) return 1;
    return onnx_take_weight(c, L, "weight", w, 0) + onnx_take_weight(c, L, "bias", b, 0);
}

static int map_layernormalization(onnx_ctx *c) {
    int x = onnx_in_layer(c, 0);
    onnx_value *w = in_val(c, 1), *b = in_val(c, 2);
    const Onnx__AttributeProto *ax = onnx_attr(c->nd, "axis"), *ep = onnx_attr(c->nd, "epsilon");
    if (x < 0) return 1;
    if (!w || w->kind != OV_CONST || !b || b->kind != OV_CONST || (ax && ax->i != -1 && ax->i != 2))
        return fail(c, "a LayerNormalization needs a scale and a bias initializer and axis -1");
    return new_layernorm(c, x, ep && ep->has_f ? ep->f : 1e-5, w->t, b->t);
}

/* ---- attention ---- */

static int map_split(onnx_ctx *c) {
    onnx_value *x = in_val(c, 0);
    int64_t sz[8], ax = -1;
    const Onnx__AttributeProto *a = onnx_attr(c->nd, "axis"), *sp = onnx_attr(c->nd, "split");
    if (a && a->has_i) ax = a->i;
    int n = sp ? (int)sp->n_ints : ints_of(in_val(c, 1), sz, 8);
    if (sp)
        for (int i = 0; i < n && i < 8; i++) sz[i] = sp->ints[i];
    if (!x || x->kind != OV_LAYER || c->m->layers[x->layer].op != PD_OP_LINEAR ||
        c->nd->n_output != 3)
        return fail(c, "only the Split of a linear's output into q, k and v (attention) is read");
    int C3 = c->m->layers[x->layer].out_features;
    if ((ax != 2 && ax != -1) || C3 % 3 || (n != 3 && n != -1 && n != 0) ||
        (n == 3 && (sz[0] != C3 / 3 || sz[1] != C3 / 3 || sz[2] != C3 / 3)))
        return fail(c, "an attention's Split must cut the last axis into three equal parts");
    for (size_t k = 0; k < 3; k++) {
        onnx_value *o = out_val(c, k);
        o->kind = OV_PAT;
        o->pat = P_QKV;
        o->layer = x->layer;
        o->part = (int)k;
    }
    return 0;
}

static int map_reshape(onnx_ctx *c) {
    onnx_value *x = in_val(c, 0);
    int64_t s[8];
    int n = ints_of(in_val(c, 1), s, 8), T = c->m->input.dim[0];
    if (!is_pat(x, P_QKV) && !is_pat(x, P_Y_T)) return -1; /* onnx_nodes.c's flatten */
    int C = c->m->layers[x->layer].out_features / 3;
    if (x->pat == P_QKV) {
        if (n != 4 || s[1] != T || s[2] < 1 || C % s[2] || (s[3] != C / s[2] && s[3] != -1))
            return fail(c, "an attention's q, k or v must be reshaped to (B, T, heads, C/heads)");
        onnx_value *o = out_pat(c, P_HEADS, x->layer);
        o->part = x->part;
        o->heads = (int)s[2];
        return 0;
    }
    if (n != 3 || s[1] != T || (s[2] != C && s[2] != -1))
        return fail(c, "an attention's output must be reshaped to (B, T, C)");
    char name[PD_NAME_MAX];
    const char *qkv = c->m->layers[x->layer].name, *dot = strrchr(qkv, '.');
    snprintf(name, sizeof name, "%.*s%sattn", dot ? (int)(dot - qkv) : 0, qkv, dot ? "." : "");
    onnx_kv kv[1] = {{"heads", KV_INT, {x->heads, 0}, 0}};
    int in = x->layer;
    return onnx_new_layer(c, PD_OP_ATTENTION, name, &in, 1, kv, 1) < 0;
}

static int perm_is(const Onnx__AttributeProto *p, int a, int b, int e, int d) {
    return p && p->n_ints == 4 && p->ints[0] == a && p->ints[1] == b && p->ints[2] == e &&
           p->ints[3] == d;
}

static int map_transpose(onnx_ctx *c) {
    onnx_value *x = in_val(c, 0);
    const Onnx__AttributeProto *p = onnx_attr(c->nd, "perm");
    if (x && x->kind == OV_CONST && x->t->n_dims == 2 &&
        (!p || (p->n_ints == 2 && p->ints[0] == 1 && p->ints[1] == 0))) {
        onnx_value *o = out_val(c, 0);
        o->kind = OV_TCONST;
        o->t = x->t;
        return 0;
    }
    int pat = 0;
    if (is_pat(x, P_HEADS) && perm_is(p, 0, 2, 1, 3)) pat = P_HEADS_T;
    else if (is_pat(x, P_HEADS) && x->part == 1 && perm_is(p, 0, 2, 3, 1)) pat = P_KT;
    else if (is_pat(x, P_HEADS_T) && x->part == 1 && perm_is(p, 0, 1, 3, 2)) pat = P_KT;
    else if (is_pat(x, P_Y) && perm_is(p, 0, 2, 1, 3)) pat = P_Y_T;
    if (!pat)
        return fail(c, "only the Transpose of a weight, or an attention's to and from heads "
                    "(q and v (0, 2, 1, 3), k (0, 2, 3, 1)), is read");
    onnx_value *o = out_pat(c, pat, x->layer);
    o->part = x->part;
    o->heads = x->heads;
    return 0;
}

static int map_matmul_pat(onnx_ctx *c) {
    onnx_value *a = in_val(c, 0), *b = in_val(c, 1);
    if (!(a && a->kind == OV_PAT) && !(b && b->kind == OV_PAT)) return -1; /* a linear */
    if (is_pat(a, P_HEADS_T) && a->part == 0 && is_pat(b, P_KT) && a->layer == b->layer &&
        a->heads == b->heads) {
        out_pat(c, P_SCORES, a->layer)->heads = a->heads;
        return 0;
    }
    if (is_pat(a, P_PROBS) && is_pat(b, P_HEADS_T) && b->part == 2 && a->layer == b->layer &&
        a->heads == b->heads) {
        out_pat(c, P_Y, a->layer)->heads = a->heads;
        return 0;
    }
    return fail(c, "an attention's MatMul must be q @ k^T, or softmax @ v, of the same qkv "
                "linear's heads (q, k, v in that order)");
}

/* The mask at (i, j) of a T x T fold with leading 1s: 1 where the element is above the diagonal
 * (j > i) by `above`, else 0 by `below`; 1 if every element agrees. */
static int causal(const onnx_fold *f, int T, int where) {
    int64_t lead = 1;
    for (int i = 0; i + 2 < f->rank; i++) lead *= f->dim[i];
    if (f->rank < 2 || lead != 1 || f->dim[f->rank - 1] != T || f->dim[f->rank - 2] != T)
        return 0;
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            float v = f->v[i * T + j];
            int masked = where ? v != 0 : (isinf(v) && v < 0) || v <= -1e9f;
            if (masked != (j > i) || (!where && j <= i && v != 0)) return 0;
        }
    return 1;
}

static int mask_error(onnx_ctx *c) {
    return fail(c, "the attention's mask is not exactly causal (key j hidden from query i "
                "exactly when j > i, over the T x T scores): PipeDream-C's attention is causal");
}

static int map_where(onnx_ctx *c) {
    onnx_value *m = in_val(c, 0), *s = in_val(c, 2);
    double ninf = 0;
    if (!is_pat(s, P_SCORES) || !scalar_of(in_val(c, 1), &ninf) || !(isinf(ninf) && ninf < 0))
        return fail(c, "only Where(mask, -inf, scores) of an attention is read");
    onnx_fold *f = fold_of(c, m);
    if (!f || !causal(f, c->m->input.dim[0], 1)) return mask_error(c);
    onnx_value *o = out_pat(c, P_SCORES, s->layer);
    o->heads = s->heads;
    o->flags = s->flags | 2;
    return 0;
}

static int map_softmax(onnx_ctx *c) {
    onnx_value *s = in_val(c, 0);
    const Onnx__AttributeProto *a = onnx_attr(c->nd, "axis");
    if (!is_pat(s, P_SCORES) || (a && a->i != -1 && a->i != 3))
        return fail(c, "only the Softmax over the last axis of an attention's scores is read");
    if ((s->flags & 3) != 3)
        return fail(c, (s->flags & 2) ? "the attention's scores are not scaled by 1/sqrt(head size)"
                                      : "the attention's scores are not masked: PipeDream-C's "
                                        "attention is causal");
    out_pat(c, P_PROBS, s->layer)->heads = s->heads;
    return 0;
}

/* ---- elementwise arithmetic: LayerNorm's, GELU's, the attention's scale and mask ---- */

/* The GELU layer once the product is 0.5 x (1 + tanh(...)); named after the module's scope
 * when the node sits in one called gelu ("/h.0/gelu/Mul_5" -> "h.0.gelu"). */
static int gelu_done(onnx_ctx *c, onnx_value *o) {
    if (o->pat != P_G_X1PT || !close_to(o->coef, 0.5)) return 0;
    int x = o->layer;
    char name[PD_NAME_MAX] = "";
    const char *nm = c->nd->name ? c->nd->name : "", *end = strrchr(nm, '/');
    while (*nm == '/') nm++;
    if (end && end > nm && end - nm < PD_NAME_MAX) {
        snprintf(name, sizeof name, "%.*s", (int)(end - nm), nm);
        const char *last = strrchr(name, '/');
        if (!strstr(last ? last : name, "gelu") && !strstr(last ? last : name, "GELU")) name[0] = 0;
        for (char *s = name; *s; s++)
            if (*s == '/') *s = '.';
    }
    return onnx_new_layer(c, PD_OP_GELU, name, &x, 1, NULL, 0) < 0;
}

/* Mul or Div (div) of a and b. */
static int map_mul(onnx_ctx *c, int div) {
    onnx_value *a = in_val(c, 0), *b = in_val(c, 1);
    double k = 0;
    if (!div && scalar_of(a, &k)) { /* constant first */
        onnx_value *t = a;
        a = b;
        b = t;
    }
    if (!a || !b) return -1;
    if (!div && b->kind == OV_PAT && a->kind != OV_PAT) {
        onnx_value *t = a;
        a = b;
        b = t;
    }
    int ks = scalar_of(b, &k);
    if (ks && div) k = 1 / k;
    if (a->kind == OV_PAT && a->pat == P_SCORES && ks) {
        int hs = c->m->layers[a->layer].out_features / 3 / a->heads;
        if (!close_to(k, 1 / sqrt(hs)) || (a->flags & 1))
            return fail(c, "an attention's scores must be scaled once by 1/sqrt(head size)");
        onnx_value *o = out_pat(c, P_SCORES, a->layer);
        o->heads = a->heads;
        o->flags = a->flags | 1;
        return 0;
    }
    if (!div && is_pat(a, P_LN_NORM) && b->kind == OV_CONST) {
        onnx_value *o = out_pat(c, P_LN_W, a->layer);
        o->coef = a->coef;
        o->t = b->t;
        return 0;
    }
    if (div && is_pat(a, P_LN_CENT) && is_pat(b, P_LN_STD) && a->layer == b->layer) {
        out_pat(c, P_LN_NORM, a->layer)->coef = b->coef;
        return 0;
    }
    if (!div && is_pat(a, P_LN_CENT) && is_pat(b, P_LN_CENT) && a->layer == b->layer) {
        out_pat(c, P_LN_SQ, a->layer);
        return 0;
    }
    /* GELU: coefficients multiply, powers of x add up */
    if (a->kind == OV_PAT && a->pat >= P_G_X1 && ks) {
        onnx_value *o = out_pat(c, a->pat, a->layer);
        o->coef = a->coef * k;
        return gelu_done(c, o);
    }
    if (a->kind == OV_LAYER && ks) { /* x * k or x / k */
        out_pat(c, P_G_X1, a->layer)->coef = k;
        return 0;
    }
    if (div) return -1;
    int la = a->kind == OV_LAYER ? a->layer : a->kind == OV_PAT && a->pat >= P_G_X1 ? a->layer : -1;
    int lb = b->kind == OV_LAYER ? b->layer : b->kind == OV_PAT && b->pat >= P_G_X1 ? b->layer : -1;
    if (la < 0 || la != lb) return -1;
    /* the power of x in each factor (a layer is x^1), and what else it holds */
    int pa = a->kind == OV_LAYER ? P_G_X1 : a->pat, pb = b->kind == OV_LAYER ? P_G_X1 : b->pat;
    double coef = (a->kind == OV_PAT ? a->coef : 1) * (b->kind == OV_PAT ? b->coef : 1);
    if (pa > pb) {
        int t = pa;
        pa = pb;
        pb = t;
    }
    int pat = pa == P_G_X1 && pb == P_G_X1 ? P_G_X2 : pa == P_G_X1 && pb == P_G_X2 ? P_G_X3
              : pa == P_G_X1 && pb == P_G_1PT ? P_G_X1PT : 0;
    if (!pat) return -1;
    onnx_value *o = out_pat(c, pat, la);
    o->coef = coef;
    return gelu_done(c, o);
}

static int map_add_pat(onnx_ctx *c) {
    onnx_value *a = in_val(c, 0), *b = in_val(c, 1);
    double k = 0;
    for (int swap = 0; swap < 2 && a && b; swap++) {
        if (swap) {
            onnx_value *t = a;
            a = b;
            b = t;
        }
        if (a->kind == OV_LAYER && a->pos_free && a->uses == 1 && is_pat(b, P_POS)) {
            pd_layer *L = &c->m->layers[a->layer];
            if (b->t->dims[1] != L->out_features)
                return fail(c, "the position table's width is not the embedding's");
            L->positions = c->m->input.dim[0];
            onnx_value *o = out_val(c, 0);
            o->kind = OV_LAYER;
            o->layer = a->layer;
            return onnx_take_weight(c, a->layer, "pos", b->t, 0);
        }
        if (is_pat(a, P_LN_VAR) && scalar_of(b, &k)) {
            out_pat(c, P_LN_VEPS, a->layer)->coef = k;
            return 0;
        }
        if (is_pat(a, P_LN_W) && b->kind == OV_CONST)
            return new_layernorm(c, a->layer, a->coef, a->t, b->t);
        if (is_pat(a, P_SCORES) && (b->kind == OV_CONST || b->kind == OV_FOLD)) {
            onnx_fold *f = fold_of(c, b);
            if (!f || !causal(f, c->m->input.dim[0], 0)) return mask_error(c);
            onnx_value *o = out_pat(c, P_SCORES, a->layer);
            o->heads = a->heads;
            o->flags = a->flags | 2;
            return 0;
        }
        if (a->kind == OV_LAYER && is_pat(b, P_G_X3) && b->layer == a->layer &&
            close_to(b->coef, 0.044715)) {
            out_pat(c, P_G_IN, a->layer);
            return 0;
        }
        if (is_pat(a, P_G_TH) && close_to(a->coef, 1) && scalar_of(b, &k) && k == 1) {
            out_pat(c, P_G_1PT, a->layer);
            return 0;
        }
    }
    if ((a && a->kind == OV_PAT) || (b && b->kind == OV_PAT))
        return fail(c, "an Add that continues none of the patterns (LayerNorm, GELU, attention "
                    "mask, position embedding)");
    return -1;
}

int onnx_seq_map(onnx_ctx *c) {
    const char *op = c->nd->op_type;
    onnx_value *x = in_val(c, 0);
    for (size_t k = 0; k < c->nd->n_input; k++) { /* said at the node that made it */
        onnx_value *v = in_val(c, k);
        if (v && v->kind == OV_FAILED) {
            c->errors++;
            return 1;
        }
    }
    if (!strcmp(op, "Gather")) return map_gather(c);
    if (!strcmp(op, "LayerNormalization")) return map_layernormalization(c);
    if (!strcmp(op, "ReduceMean")) return map_reducemean(c);
    if (!strcmp(op, "Split")) return map_split(c);
    if (!strcmp(op, "Reshape")) return map_reshape(c);
    if (!strcmp(op, "Transpose")) return map_transpose(c);
    if (!strcmp(op, "MatMul")) return map_matmul_pat(c);
    if (!strcmp(op, "Where")) return map_where(c);
    if (!strcmp(op, "Softmax")) return map_softmax(c);
    if (!strcmp(op, "Unsqueeze")) return map_unsqueeze(c);
    if (!strcmp(op, "Slice")) return map_slice(c);
    if (!strcmp(op, "Equal")) return map_equal_cast(c, 0);
    if (!strcmp(op, "Cast")) return map_equal_cast(c, 1);
    if (!strcmp(op, "Shape")) return map_shape(c);
    if (!strcmp(op, "Range")) return map_range(c);
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        int e = map_int_arith(c, op[0]);
        if (e >= 0) return e;
    }
    if (!strcmp(op, "Concat")) {
        int64_t iv[8];
        return ints_of(x, iv, 8) >= 0 ? map_concat_ints(c) : -1;
    }
    if (!strcmp(op, "Add")) return map_add_pat(c);
    if (!strcmp(op, "Mul") || !strcmp(op, "Div")) {
        int e = map_mul(c, op[0] == 'D');
        if (e < 0) return fail(c, "a product that continues none of the patterns (LayerNorm's "
                               "scale, GELU, the attention's 1/sqrt(head size))");
        return e;
    }
    if (!strcmp(op, "Sub")) {
        onnx_value *m = in_val(c, 1);
        if (!x || x->kind != OV_LAYER || !is_pat(m, P_LN_MEAN) || m->layer != x->layer)
            return fail(c, "only x - mean(x) (a LayerNorm's) is read");
        out_pat(c, P_LN_CENT, x->layer);
        return 0;
    }
    if (!strcmp(op, "Pow")) {
        double k = 0;
        if (!scalar_of(in_val(c, 1), &k)) return fail(c, "only a power by a constant is read");
        if (is_pat(x, P_LN_CENT) && k == 2) {
            out_pat(c, P_LN_SQ, x->layer);
            return 0;
        }
        if (x && x->kind == OV_LAYER && (k == 2 || k == 3)) {
            out_pat(c, k == 2 ? P_G_X2 : P_G_X3, x->layer);
            return 0;
        }
        return fail(c, "only (x - mean)^2 (LayerNorm) and x^3 (GELU) are read");
    }
    if (!strcmp(op, "Sqrt")) {
        if (!is_pat(x, P_LN_VEPS)) return fail(c, "only sqrt(var + eps) (a LayerNorm's) is read");
        out_pat(c, P_LN_STD, x->layer)->coef = x->coef;
        return 0;
    }
    if (!strcmp(op, "Tanh")) {
        if (!is_pat(x, P_G_IN) || !close_to(x->coef, sqrt(2 / 3.14159265358979323846)))
            return fail(c, "only tanh(sqrt(2/pi) (x + 0.044715 x^3)) (the GELU's) is read");
        out_pat(c, P_G_TH, x->layer);
        return 0;
    }
    return -1;
}
