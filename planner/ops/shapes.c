/* shapes.c: shape inference over a model: every layer's output shape, parameter and FLOP counts
 * by its op's rule (the descriptor's infer, planner/ops/<op>.c), then the checks that hold for
 * every op: sizes within the limits, and the last layer gives the class logits. Shapes are per
 * sample: rank 1 (features), rank 2 (tokens, features) or rank 3 (C, H, W); FLOPs are per sample,
 * a multiply-add counting 2. The rules are also in docs/ops.md.
 */
#include "shapes.h"
#include "op.h"

#include <stdio.h>
#include <string.h>

const char *pd_shape_str(char *buf, int cap, const pd_shape *s) {
    if (s->rank == 1) snprintf(buf, cap, "(%d)", s->dim[0]);
    else if (s->rank == 2) snprintf(buf, cap, "(%d, %d)", s->dim[0], s->dim[1]);
    else if (s->rank == 3) snprintf(buf, cap, "(%d, %d, %d)", s->dim[0], s->dim[1], s->dim[2]);
    else snprintf(buf, cap, "(?)");
    return buf;
}

/* Fills L->out and counts from its inputs' shapes by its op's rule; returns 0 or writes a
 * message to err. */
static int infer_layer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_op_desc *d = pd_op(L->op);
    L->n_weight = L->n_bias = L->n_buffer = 0;
    L->flops_fwd = L->flops_bwd = 0;
    if (!d->infer) {
        snprintf(err, cap, "op %s has no shape rule", pd_op_name(L->op));
        return 1;
    }
    return d->infer(L, in, err, cap);
}

int pd_infer_shapes(pd_model *m, const char *file, pd_diag *d) {
    int errors = 0;
    char err[512], b0[64];
    if (m->n_layers < 1) return 0;
    m->layers[0].out = m->input;
    for (int i = 1; i < m->n_layers; i++) {
        pd_layer *L = &m->layers[i];
        const pd_shape *in[PD_MAX_INPUTS];
        int skip = 0;
        for (int k = 0; k < L->n_inputs; k++) {
            in[k] = &m->layers[L->inputs[k]].out;
            if (in[k]->rank == 0) skip = 1;
        }
        memset(&L->out, 0, sizeof L->out);
        if (skip || L->n_inputs < 1) continue;
        if (infer_layer(L, in, err, sizeof err)) {
            memset(&L->out, 0, sizeof L->out);
            pd_diag_error(d, file, L->line, L->col, "layer '%s': %s", L->name, err);
            errors++;
            continue;
        }
        pd_tensor saved[PD_MAX_OP_TENSORS];
        int n_saved = pd_op_saved(L, m->batch, saved);
        L->saved_floats = 0;
        for (int t = 0; t < n_saved; t++) L->saved_floats += saved[t].floats;
        L->aliases_input = pd_op(L->op)->aliases_input;
        L->selective_keeps = pd_op(L->op)->selective_keeps;
        int64_t n = pd_shape_numel(&L->out);
        if (n <= 0 || n > ((int64_t)1 << 31) || L->n_weight > ((int64_t)1 << 34)) {
            pd_diag_error(d, file, L->line, L->col, "layer '%s': output %s is empty or too large",
                          L->name, pd_shape_str(b0, sizeof b0, &L->out));
            memset(&L->out, 0, sizeof L->out);
            errors++;
        }
    }
    pd_layer *last = &m->layers[m->n_layers - 1];
    if (!errors && m->n_layers > 1 &&
        !(last->out.rank == 1 && last->out.dim[0] == m->classes) &&
        !(last->out.rank == 2 && last->out.dim[1] == m->classes)) {
        pd_diag_error(d, file, last->line, last->col,
                      "the model's output (last layer '%s') has shape %s, but classes is %d: "
                      "it must be (%d), or (tokens, %d) for a sequence model", last->name,
                      pd_shape_str(b0, sizeof b0, &last->out), m->classes, m->classes,
                      m->classes);
        errors++;
    }
    return errors;
}
