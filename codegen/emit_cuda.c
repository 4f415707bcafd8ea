/* emit_cuda.c: the CUDA printer (pdplan --backend cuda). Prints one stage_<k>.cu from the same
 * resolve pass as emit.c, into templates/stage.cu.in: the same sizes, named offsets, packs and
 * tables, forward and backward as straight-line calls to runtime/cuda/ops_cuda.h on device
 * pointers (cuBLASLt with a fused bias+ReLU epilogue where resolve paired a linear with its ReLU,
 * cuDNN convolution and batch norm, own kernels for the rest), the backward again in its two
 * parts for zb-h1 and zb-h2 (backward_input, backward_weight), the host init of the CPU backend
 * (the runtime uploads it, so both backends start from the same weights), the scratch size the
 * context needs at each precision, and a pdrt_cuda_stage descriptor for pdrt_cuda_main. */
#include "emit.h"
#include "emit_common.h"

#include <inttypes.h>

static const char *const scratch_params[] = {"prec", NULL};
static const char *const forward_params[] = {"ctx", "out", "acts", "buffers", "params", "in",
                                             "training", "seed", "step", NULL};
static const char *const backward_params[] = {"ctx", "din", "dparams", "dacts", "dout", "acts",
                                              "params", "in", NULL};

/* The context's scratch arena: the most any op of this stage needs at that precision. */
static void print_scratch(cg_em *e) { cg_emit_scratch(e, "size_t", ""); }

static void print_forward(cg_em *e) {
    const cg_stage *cs = e->cs;
    char a[192], b[192];
    for (int i = 0; i < cs->n_ops; i++) {
        cg_emit_op_comment(e, &cs->ops[i]);
        cg_emit_op_forward(e, &cs->ops[i]);
    }
    cg_printf(e, "    /* output pack */\n");
    for (int i = 0; i < cs->n_out; i++) {
        cg_use(e, "ctx");
        cg_printf(e, "    pdrt_identity_forward_cuda(ctx, %s, %s, %" PRId64 ");\n",
                  cg_opnd(e, cs->out[i].slot, a, sizeof a), cg_opnd(e, cs->out[i].src, b, sizeof b),
                  cs->out[i].numel);
    }
}

/* dacts and din zeroed, then the output pack's gradients into dacts: how backward and
 * backward_input begin. */
static void print_backward_entry(cg_em *e) {
    const cg_stage *cs = e->cs;
    char a[192], b[192];
    int s = e->s;
    cg_use(e, "ctx");
    cg_use(e, "dacts");
    cg_use(e, "din");
    cg_printf(e, "    pd_cuda_zero(ctx, dacts, (S%d_N_ACTS ? S%d_N_ACTS : 1) * sizeof(float));\n"
              "    if (din) pd_cuda_zero(ctx, din, (S%d_IN_FLOATS ? S%d_IN_FLOATS : 1) * "
              "sizeof(float));\n    /* output pack gradients */\n", s, s, s, s);
    for (int i = 0; i < cs->n_out; i++) {
        const cg_pack *pk = &cs->out[i];
        if (pk->grad != CG_GRAD_NONE)
            cg_printf(e, "    pdrt_identity_backward_cuda(ctx, %s, %s, %" PRId64 ");\n",
                      cg_opnd(e, pk->dsrc, a, sizeof a), cg_opnd(e, pk->dslot, b, sizeof b),
                      pk->numel);
    }
}

/* Accumulates into dparams (the runtime's accumulator); zeroes dacts and din on entry. */
static void print_backward(cg_em *e) {
    const cg_stage *cs = e->cs;
    print_backward_entry(e);
    for (int i = cs->n_ops - 1; i >= 0; i--) {
        cg_emit_op_comment(e, &cs->ops[i]);
        cg_emit_op_backward(e, &cs->ops[i]);
    }
}

/* zb-h1, zb-h2's backward_input: backward's entry and calls, less the weight gradients of the
 * ops whose backward splits (a split op without an input gradient is all in backward_weight). */
static void print_backward_input(cg_em *e) {
    const cg_stage *cs = e->cs;
    print_backward_entry(e);
    for (int i = cs->n_ops - 1; i >= 0; i--) {
        const cg_op *op = &cs->ops[i];
        if (!cg_op_in_input_part(e, op)) continue;
        cg_emit_op_comment(e, op);
        cg_emit_op_backward_part(e, op, 0);
    }
}

/* zb-h1, zb-h2's backward_weight: the weight gradients of the layers with parameters,
 * accumulated into dparams from the layers' output gradients backward_input left in dacts
 * (nothing zeroed). */
static void print_backward_weight(cg_em *e) {
    const cg_stage *cs = e->cs;
    for (int i = cs->n_ops - 1; i >= 0; i--) {
        const cg_op *op = &cs->ops[i];
        if (!(op->n_tensors > 0 && op->param_floats > 0)) continue;
        cg_emit_op_comment(e, op);
        cg_emit_op_backward_part(e, op, 1);
    }
}

int cg_emit_stage_cuda(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                       const char *banner, const char *tmpl, int precision, pd_diag *d) {
    cg_backend_printer b = {print_scratch, print_forward, print_backward, scratch_params,
                            forward_params, backward_params,
                            precision ? "PD_CUDA_BF16" : "PD_CUDA_FP32", print_backward_input,
                            print_backward_weight, NULL};
    return cg_emit_file(o, pr, s, m, p, banner, tmpl, &b, d);
}
