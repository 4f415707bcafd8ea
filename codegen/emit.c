/* emit.c: the CPU printer. Prints one stage_<k>.c from what resolve.c computed, into
 * templates/stage.c.in: the named offsets as #defines, init/forward/backward as straight-line
 * calls to runtime/cpu/ops.h with constant shapes (the backward zeroing each gradient where resolve
 * placed it), the backward again in its two parts for zb-h1 and zb-h2 (backward_input,
 * backward_weight), a selective stage's forward_recompute, the tables and the pdrt_stage
 * descriptor. */
#include "emit.h"
#include "emit_common.h"

#include <inttypes.h>

static const char *const forward_params[] = {"out", "acts", "scratch", "buffers", "params", "in",
                                             "training", "seed", "step", NULL};
static const char *const backward_params[] = {"din", "dparams", "dacts", "scratch", "dout",
                                              "acts", "params", "in", NULL};

/* The scratch buffer: the most any layer of the stage needs (convolutions: im2col). */
static void print_scratch(cg_em *e) { cg_emit_scratch(e, "int64_t", "(int64_t)"); }

static void print_forward(cg_em *e) {
    const cg_stage *cs = e->cs;
    char a[192], b[192];
    cg_printf(e, "    pdrt_lap_start();\n");
    for (int i = 0; i < cs->n_ops; i++) {
        cg_emit_op_comment(e, &cs->ops[i]);
        cg_emit_op_forward(e, &cs->ops[i]);
        cg_printf(e, "    pdrt_lap(%d);\n", i);
    }
    cg_printf(e, "    /* output pack */\n");
    for (int i = 0; i < cs->n_out; i++)
        cg_printf(e, "    memcpy(%s, %s, %" PRId64 " * sizeof(float));\n",
                  cg_opnd(e, cs->out[i].slot, a, sizeof a), cg_opnd(e, cs->out[i].src, b, sizeof b),
                  cs->out[i].numel);
}

/* selective recomputation: the forward calls of the recomputed layers, in order (their inputs
 * are kept outputs, the stage input or recomputed outputs before them); no output pack */
static void print_forward_recompute(cg_em *e) {
    const cg_stage *cs = e->cs;
    for (int i = 0; i < cs->n_ops; i++) {
        if (!cs->ops[i].recomputed) continue;
        cg_emit_op_comment(e, &cs->ops[i]);
        cg_emit_op_forward_training(e, &cs->ops[i]);
    }
}

static void print_zero(cg_em *e, const cg_zero *z) {
    char a[192];
    cg_printf(e, "    memset(%s, 0, %" PRId64 " * sizeof(float));\n",
              cg_opnd(e, z->at, a, sizeof a), z->floats);
}

static void print_backward(cg_em *e) {
    const cg_stage *cs = e->cs;
    char a[192], b[192];
    cg_printf(e, "    pdrt_lap_start();\n    /* output pack gradients */\n");
    for (int i = 0; i < cs->n_out; i++) {
        const cg_pack *pk = &cs->out[i];
        if (pk->grad == CG_GRAD_COPY)
            cg_printf(e, "    memcpy(%s, %s, %" PRId64 " * sizeof(float));\n",
                      cg_opnd(e, pk->dsrc, a, sizeof a), cg_opnd(e, pk->dslot, b, sizeof b),
                      pk->numel);
        else if (pk->grad == CG_GRAD_ACCUMULATE)
            cg_printf(e, "    pdrt_identity_backward(%s, %s, %" PRId64 ");\n",
                      cg_opnd(e, pk->dsrc, a, sizeof a), cg_opnd(e, pk->dslot, b, sizeof b),
                      pk->numel);
    }
    for (int i = cs->n_ops - 1; i >= 0; i--) {
        const cg_op *op = &cs->ops[i];
        cg_emit_op_comment(e, op);
        for (int k = 0; k < op->n_zero; k++) print_zero(e, &op->zero[k]);
        cg_emit_op_backward(e, op);
        cg_printf(e, "    pdrt_lap(%d);\n", i);
    }
    if (cs->n_tail_zero)
        cg_printf(e, "    /* input pack gradients no layer wrote (the previous stage reads "
                  "all) */\n");
    for (int k = 0; k < cs->n_tail_zero; k++) print_zero(e, &cs->tail_zero[k]);
}

/* zb-h1, zb-h2's backward_input: backward's output pack gradients, zeroing and calls, less the
 * weight gradients of the ops whose backward splits. */
static void print_backward_input(cg_em *e) {
    const cg_stage *cs = e->cs;
    char a[192], b[192];
    cg_printf(e, "    /* output pack gradients */\n");
    for (int i = 0; i < cs->n_out; i++) {
        const cg_pack *pk = &cs->out[i];
        if (pk->grad == CG_GRAD_COPY || pk->grad == CG_GRAD_ACCUMULATE)
            cg_printf(e, pk->grad == CG_GRAD_COPY ? "    memcpy(%s, %s, %" PRId64 " * sizeof(float));\n"
                                                 : "    pdrt_identity_backward(%s, %s, %" PRId64 ");\n",
                      cg_opnd(e, pk->dsrc, a, sizeof a), cg_opnd(e, pk->dslot, b, sizeof b),
                      pk->numel);
    }
    for (int i = cs->n_ops - 1; i >= 0; i--) {
        const cg_op *op = &cs->ops[i];
        int splits = pd_op(e->m->layers[op->layer].op)->backward_splits;
        if (!cg_op_in_input_part(e, op)) continue; /* a split op with no input gradient: all W */
        cg_emit_op_comment(e, op);
        for (int k = 0; k < op->n_zero; k++)
            if (!splits || op->zero[k].at.ptr != CG_DPARAMS) print_zero(e, &op->zero[k]);
        cg_emit_op_backward_part(e, op, 0);
    }
    if (cs->n_tail_zero)
        cg_printf(e, "    /* input pack gradients no layer wrote (the previous stage reads "
                  "all) */\n");
    for (int k = 0; k < cs->n_tail_zero; k++) print_zero(e, &cs->tail_zero[k]);
}

/* zb-h1, zb-h2's backward_weight: the weight gradients of the layers with parameters, from the
 * layers' output gradients backward_input left in dacts. */
static void print_backward_weight(cg_em *e) {
    const cg_stage *cs = e->cs;
    for (int i = cs->n_ops - 1; i >= 0; i--) {
        const cg_op *op = &cs->ops[i];
        if (!(op->n_tensors > 0 && op->param_floats > 0)) continue;
        int splits = pd_op(e->m->layers[op->layer].op)->backward_splits;
        cg_emit_op_comment(e, op);
        for (int k = 0; k < op->n_zero && splits; k++)
            if (op->zero[k].at.ptr == CG_DPARAMS) print_zero(e, &op->zero[k]);
        cg_emit_op_backward_part(e, op, 1);
    }
}

int cg_emit_stage(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                  const char *banner, const char *tmpl, pd_diag *d) {
    cg_backend_printer b = {print_scratch, print_forward, print_backward, NULL, forward_params,
                            backward_params, NULL, print_backward_input, print_backward_weight,
                            print_forward_recompute};
    return cg_emit_file(o, pr, s, m, p, banner, tmpl, &b, d);
}
