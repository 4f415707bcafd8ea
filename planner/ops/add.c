/* add.c: the add op. y = sum_k x_k over 2 to 16 inputs of equal shape; backward dx_k += dy.
 * FLOPs per sample: forward (k-1) per element, backward 0. Kernels: pdrt_add_forward/_backward
 * (runtime/cpu/ops_elementwise.c, runtime/cuda/elementwise.cu), over an array of the inputs. */
#include <stdio.h>
#include <string.h>

#include "op.h"
#include "shapes.h"

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    char b0[64], b1[64];
    const pd_shape *x = in[0];
    for (int i = 1; i < L->n_inputs; i++) {
        const pd_shape *y = in[i];
        if (y->rank != x->rank || memcmp(y->dim, x->dim, sizeof(int) * x->rank) != 0) {
            snprintf(err, cap, "add needs inputs of equal shape: input 1 is %s, input %d is %s",
                     pd_shape_str(b0, sizeof b0, x), i + 1, pd_shape_str(b1, sizeof b1, y));
            return 1;
        }
    }
    pd_infer_same(L, in, L->n_inputs - 1, 0);
    return 0;
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    (void)in;
    int64_t n = pd_shape_numel(&L->out);
    if (cs->phase == PD_PHASE_FORWARD || cs->phase == PD_PHASE_FORWARD_EVAL)
        PD_ARGS(pd_kernel(cs, "pdrt_add_forward"), PD_OUT, PD_INS, PD_INT(L->n_inputs),
                PD_BATCH_TIMES(n));
    else if (cs->phase == PD_PHASE_BACKWARD)
        PD_ARGS(pd_kernel(cs, "pdrt_add_backward"), PD_DINS, PD_DOUT, PD_INT(L->n_inputs),
                PD_BATCH_TIMES(n));
}

const pd_op_desc pd_op_add = {
    .name = "add", .min_inputs = 2, .max_inputs = PD_MAX_INPUTS, .infer = infer, .calls = calls,
};
