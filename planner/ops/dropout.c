/* dropout.c: the dropout op (inverted): in training y = x * mask, the mask 0 with probability p
 * and 1/(1-p) otherwise, drawn by (seed, step, layer, sample, element) so that every process
 * draws the same (docs/ops.md); in evaluation the identity. Any shape; FLOPs one per element
 * each way. Saves the mask for its backward. Kernels: pdrt_dropout_forward/_backward and
 * pdrt_identity_forward (runtime/cpu/ops_elementwise.c, runtime/cuda/elementwise.cu). */
#include <math.h>
#include <stdio.h>

#include "op.h"

static const char *const attrs[] = {"p", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    if (r->number(r, "p", 0.5, -HUGE_VAL, HUGE_VAL, &L->p)) return 1;
    if (L->p >= 0 && L->p < 1) return 0;
    r->error(r, "p", "'p' must be in [0, 1)");
    return 1;
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    (void)err;
    (void)cap;
    return pd_infer_same(L, in, 1, 1);
}

static int saved(const pd_layer *L, int64_t batch, pd_tensor *t) {
    t[0] = (pd_tensor){"mask", batch * pd_shape_numel(&L->out), 0, 0};
    return 1;
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    (void)in;
    int64_t n = pd_shape_numel(&L->out);
    pd_call *c;
    switch (cs->phase) {
    case PD_PHASE_FORWARD:
        PD_ARGS(pd_kernel(cs, "pdrt_dropout_forward"), PD_OUT, PD_SAVED(0), PD_IN(0),
                PD_FLOAT(L->p), PD_SEED, PD_STEP, PD_LAYER, PD_I64(0), PD_BATCH, PD_SIZE(n));
        break;
    case PD_PHASE_FORWARD_EVAL:
        PD_ARGS(pd_kernel(cs, "pdrt_identity_forward"), PD_OUT, PD_IN(0), PD_BATCH_TIMES(n));
        break;
    case PD_PHASE_BACKWARD:
        c = pd_kernel(cs, "pdrt_dropout_backward");
        PD_ARGS(c, PD_DIN(0), PD_DOUT, PD_SAVED(0), PD_BATCH_TIMES(n));
        if (c) c->needs_din = 1;
        break;
    default: break;
    }
}

static int check(const pd_layer *L, pd_backend backend, int64_t batch, char *why, size_t cap) {
    (void)L;
    if (backend != PD_BACKEND_CUDA || batch <= 65535) return 0;
    snprintf(why, cap, "the GPU dropout takes at most 65535 samples per minibatch, not %lld",
             (long long)batch);
    return 1;
}

const pd_op_desc pd_op_dropout = {
    .name = "dropout", .attrs = attrs, .min_inputs = 1, .max_inputs = 1, .read = read,
    .infer = infer, .saved = saved, .calls = calls, .check = check,
};
