/* emit.c: the CPU printer. Prints one stage_<k>.c from what resolve.c computed, into
 * templates/stage.c.in: the named offsets as #defines, init/forward/backward as straight-line
 * calls to runtime/cpu/ops.h with constant shapes (the backward zeroing each gradient where resolve
 * placed it), the tables and the pdrt_stage descriptor. */
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

int cg_emit_stage(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                  const char *banner, const char *tmpl, pd_diag *d) {
    cg_backend_printer b = {print_scratch, print_forward, print_backward, NULL, forward_params,
                            backward_params, NULL};
    return cg_emit_file(o, pr, s, m, p, banner, tmpl, &b, d);
}
