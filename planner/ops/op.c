/* op.c: the table of op descriptors (one per line of planner/model/op_list.h), finding an op by
 * name, the defaults a descriptor may leave out, the call builders, and the helpers several
 * descriptors share. */
#include "op.h"

#include <stdio.h>
#include <string.h>

#include "shapes.h"

#define PD_OP(NAME, name) extern const pd_op_desc pd_op_##name;
#include "planner/model/op_list.h"
#undef PD_OP

static const pd_op_desc input_desc = {.name = "input"};

static const pd_op_desc *const table[PD_OP_COUNT] = {
    [PD_OP_INPUT] = &input_desc,
#define PD_OP(NAME, name) [PD_OP_##NAME] = &pd_op_##name,
#include "planner/model/op_list.h"
#undef PD_OP
};

const pd_op_desc *pd_op(pd_op_kind op) {
    return (int)op > 0 && op < PD_OP_COUNT ? table[op] : &input_desc;
}

const char *pd_op_name(pd_op_kind op) {
    return (int)op >= 0 && op < PD_OP_COUNT ? table[op]->name : "?";
}

int pd_op_planning_only(pd_op_kind op) { return pd_op(op)->planning_only; }

pd_op_kind pd_op_find(const char *name) {
    for (int k = 1; k < PD_OP_COUNT; k++)
        if (!strcmp(name, table[k]->name)) return (pd_op_kind)k;
    return PD_OP_INPUT;
}

const char *pd_op_names(char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int planning = 0; planning < 2; planning++)
        for (int k = 1, first = 1; k < PD_OP_COUNT; k++) {
            if (table[k]->planning_only != planning) continue;
            const char *sep = first ? (planning ? "; planning only: " : "") : ", ";
            first = 0;
            int w = snprintf(buf + n, cap - n, "%s%s", sep, table[k]->name);
            if (w < 0 || (size_t)w >= cap - n) return buf;
            n += (size_t)w;
        }
    return buf;
}

int pd_op_tensors(const pd_layer *L, pd_tensor *t) {
    const pd_op_desc *d = pd_op(L->op);
    if (d->tensors) return d->tensors(L, t);
    if (!L->n_weight && !L->n_bias) return 0;
    t[0] = (pd_tensor){"weight", L->n_weight, 0, 1}; /* a matrix: linear, conv2d, embedding */
    t[1] = (pd_tensor){"bias", L->n_bias, 0, 0};
    return 2;
}

int pd_op_saved(const pd_layer *L, int64_t batch, pd_tensor *t) {
    const pd_op_desc *d = pd_op(L->op);
    return d->saved ? d->saved(L, batch, t) : 0;
}

int pd_op_calls(const pd_layer *L, const pd_shape *const *in, pd_backend backend,
                pd_phase phase, pd_call *call, int max) {
    const pd_op_desc *d = pd_op(L->op);
    pd_calls cs = {backend, phase, 0, max, call};
    if (d->calls && !d->planning_only) d->calls(L, in, &cs);
    return cs.n;
}

/* ---- building calls ---- */

static pd_call *new_call(pd_calls *cs, const char *fn, const char *suffix) {
    if (cs->n >= cs->max) return NULL;
    pd_call *c = &cs->call[cs->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->fn, sizeof c->fn, "%s%s", fn, suffix);
    return c;
}

pd_call *pd_kernel(pd_calls *cs, const char *fn) {
    int cuda = cs->backend == PD_BACKEND_CUDA;
    pd_call *c = new_call(cs, fn, cuda ? "_cuda" : "");
    if (c && cuda) c->args[c->n_args++] = (pd_arg){.kind = PD_ARG_CTX};
    return c;
}

pd_call *pd_host(pd_calls *cs, const char *fn) { return new_call(cs, fn, ""); }

void pd_args(pd_call *c, const pd_arg *args, int n) {
    for (int i = 0; c && i < n && c->n_args < PD_CALL_MAX_ARGS; i++) c->args[c->n_args++] = args[i];
}

/* ---- shared helpers ---- */

int pd_window_out(int in, int k, int s, int p) {
    if (k <= 0 || s <= 0 || in + 2 * p < k) return 0;
    return (in + 2 * p - k) / s + 1;
}

void pd_chw(const pd_shape *s, int *C, int *H, int *W) {
    *C = s->dim[0];
    *H = s->rank >= 2 ? s->dim[1] : 1;
    *W = s->rank == 3 ? s->dim[2] : 1;
}

void pd_rows(const pd_shape *s, int *rows, int *width) {
    *width = s->dim[s->rank > 0 ? s->rank - 1 : 0];
    *rows = *width > 0 ? (int)(pd_shape_numel(s) / *width) : 0;
}

int pd_input_rank(int ok, const pd_shape *x, const char *need, const char *hint, char *err,
                  int cap) {
    char b[64];
    if (ok) return 0;
    snprintf(err, cap, "%s, got %s%s", need, pd_shape_str(b, sizeof b, x), hint);
    return 1;
}

int pd_need_rank3(const pd_layer *L, const pd_shape *x, char *err, int cap) {
    char need[96];
    snprintf(need, sizeof need, "%s needs a rank-3 input (C, H, W)", pd_op_name(L->op));
    return pd_input_rank(x->rank == 3, x, need, "", err, cap);
}

int pd_window_shape(pd_layer *L, const pd_shape *x, int channels, char *err, int cap) {
    char b[64];
    if (pd_need_rank3(L, x, err, cap)) return 1;
    int oh = pd_window_out(x->dim[1], L->kernel[0], L->stride[0], L->padding[0]);
    int ow = pd_window_out(x->dim[2], L->kernel[1], L->stride[1], L->padding[1]);
    if (oh <= 0 || ow <= 0) {
        snprintf(err, cap, "%s: kernel %dx%d (padding %dx%d) does not fit the input %s",
                 pd_op_name(L->op), L->kernel[0], L->kernel[1], L->padding[0], L->padding[1],
                 pd_shape_str(b, sizeof b, x));
        return 1;
    }
    L->out.rank = 3;
    L->out.dim[0] = channels;
    L->out.dim[1] = oh;
    L->out.dim[2] = ow;
    return 0;
}

int pd_infer_same(pd_layer *L, const pd_shape *const *in, double fwd, double bwd) {
    double n = (double)pd_shape_numel(in[0]);
    L->out = *in[0];
    L->flops_fwd = fwd * n;
    L->flops_bwd = bwd * n;
    return 0;
}
