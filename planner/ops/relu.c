/* relu.c: the relu op. y = max(x, 0), any shape; its backward reads the forward's output
 * (dx += dy * (y > 0)), so the forward may run in place. FLOPs per sample: one per element each
 * way. Kernels: pdrt_relu_forward/_backward (runtime/cpu/ops_elementwise.c,
 * runtime/cuda/elementwise.cu). On CUDA a linear followed by its only reader, a relu, runs as one
 * call (codegen/resolve.c's fusion rule). */
#include "op.h"

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    (void)err;
    (void)cap;
    return pd_infer_same(L, in, 1, 1);
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    (void)in;
    int64_t n = pd_shape_numel(&L->out);
    if (cs->phase == PD_PHASE_FORWARD || cs->phase == PD_PHASE_FORWARD_EVAL)
        PD_ARGS(pd_kernel(cs, "pdrt_relu_forward"), PD_OUT, PD_IN(0), PD_BATCH_TIMES(n));
    if (cs->phase != PD_PHASE_BACKWARD) return;
    pd_call *c = pd_kernel(cs, "pdrt_relu_backward");
    PD_ARGS(c, PD_DIN(0), PD_DOUT, PD_OUT, PD_BATCH_TIMES(n));
    if (c) c->needs_din = 1;
}

const pd_op_desc pd_op_relu = {
    .name = "relu", .min_inputs = 1, .max_inputs = 1, .infer = infer, .calls = calls,
    .backward_sets_din = 1, /* pdrt_relu_backward_set */
};
