/* gelu.c: the gelu op, GPT-2's tanh form: y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715
 * x^3); backward dx += dy (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715
 * x^2)), from the forward's input (docs/ops.md). Any shape, elementwise. FLOPs per element: 9
 * forward, 15 backward (the tanh counted as one). Kernels: pdrt_gelu_forward/_backward
 * (runtime/cpu/ops_elementwise.c, runtime/cuda/elementwise.cu). */
#include "op.h"

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    (void)err;
    (void)cap;
    return pd_infer_same(L, in, 9, 15);
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    (void)in;
    int64_t n = pd_shape_numel(&L->out);
    if (cs->phase == PD_PHASE_FORWARD || cs->phase == PD_PHASE_FORWARD_EVAL)
        PD_ARGS(pd_kernel(cs, "pdrt_gelu_forward"), PD_OUT, PD_IN(0), PD_BATCH_TIMES(n));
    if (cs->phase != PD_PHASE_BACKWARD) return;
    pd_call *c = pd_kernel(cs, "pdrt_gelu_backward");
    PD_ARGS(c, PD_DIN(0), PD_DOUT, PD_IN(0), PD_BATCH_TIMES(n));
    if (c) c->needs_din = 1;
}

const pd_op_desc pd_op_gelu = {
    .name = "gelu", .min_inputs = 1, .max_inputs = 1, .infer = infer, .calls = calls,
};
