/* concat.c: the concat op, along channels: input k is [B][C_k][H*W] (rank 1: features, H*W = 1;
 * rank 2: along features with equal tokens, as B*T rows), y[b] = [x_0[b]; x_1[b]; ...]; backward
 * dx_k += its slice of dy. No FLOPs. Kernels: pdrt_concat_forward/_backward
 * (runtime/cpu/ops_elementwise.c, runtime/cuda/elementwise.cu) over an array of the inputs and
 * their channel counts. */
#include <stdio.h>

#include "op.h"
#include "shapes.h"

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    char b0[64], b1[64];
    const pd_shape *x = in[0];
    L->out = *x;
    int64_t total = x->rank == 2 ? x->dim[1] : x->dim[0];
    for (int i = 1; i < L->n_inputs; i++) {
        const pd_shape *y = in[i];
        if (y->rank != x->rank ||
            (x->rank == 3 && (y->dim[1] != x->dim[1] || y->dim[2] != x->dim[2])) ||
            (x->rank == 2 && y->dim[0] != x->dim[0])) {
            snprintf(err, cap, "concat needs inputs of the same rank%s: input 1 is %s, input %d "
                     "is %s", x->rank == 3 ? " and equal H, W" : "",
                     pd_shape_str(b0, sizeof b0, x), i + 1, pd_shape_str(b1, sizeof b1, y));
            return 1;
        }
        total += y->rank == 2 ? y->dim[1] : y->dim[0];
    }
    if (total > 1000000000) {
        snprintf(err, cap, "concat output is too large");
        return 1;
    }
    L->out.dim[x->rank == 2 ? 1 : 0] = (int)total;
    return 0;
}

/* A sequence (T, C_k) concatenates along features as B*T rows of [C_k][1] (PD_ROWS(T)). */
static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    int C, H, W, seq = L->out.rank == 2;
    pd_chw(&L->out, &C, &H, &W);
    int hw = seq ? 1 : H * W;
    pd_arg rows = seq ? PD_ROWS(L->out.dim[0]) : PD_BATCH;
    pd_arg channels = {.kind = PD_ARG_INTS, .n = L->n_inputs};
    for (int k = 0; k < L->n_inputs; k++) channels.ints[k] = in[k]->dim[seq];
    if (cs->phase == PD_PHASE_FORWARD || cs->phase == PD_PHASE_FORWARD_EVAL)
        PD_ARGS(pd_kernel(cs, "pdrt_concat_forward"), PD_OUT, PD_INS, channels,
                PD_INT(L->n_inputs), rows, PD_INT(hw));
    else if (cs->phase == PD_PHASE_BACKWARD)
        PD_ARGS(pd_kernel(cs, "pdrt_concat_backward"), PD_DINS, PD_DOUT, channels,
                PD_INT(L->n_inputs), rows, PD_INT(hw));
}

const pd_op_desc pd_op_concat = {
    .name = "concat", .min_inputs = 2, .max_inputs = PD_MAX_INPUTS, .infer = infer,
    .calls = calls,
};
