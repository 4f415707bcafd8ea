/* layernorm.c: the layernorm op (PyTorch's LayerNorm over the last dimension, elementwise affine):
 * each row x of the last dimension (C features; a token of a (T, C) sequence, or a rank-1
 * sample) becomes y = weight * (x - mean) * rstd + bias, mean and the biased variance over the
 * row, rstd = 1/sqrt(var + eps) (eps default 1e-5). Any rank, shape kept. Parameters weight [C]
 * (init 1) and bias [C] (init 0), neither decayed by AdamW; the training forward saves mean and
 * rstd per row (2*B*rows floats) for the backward; no running statistics, so evaluation is the
 * same call. FLOPs per element: 8 forward, 14 backward. Kernels: pdrt_layernorm_forward/_backward
 * (runtime/cpu/ops_norm.c, runtime/cuda/layernorm.cu); docs/ops.md has the math. */
#include "op.h"

static const char *const attrs[] = {"eps", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    return r->number(r, "eps", 1e-5, 1e-30, 1.0, &L->eps);
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    (void)err;
    (void)cap;
    int rows, C;
    pd_infer_same(L, in, 8, 14);
    pd_rows(in[0], &rows, &C);
    L->n_weight = L->n_bias = C;
    return 0;
}

static int tensors(const pd_layer *L, pd_tensor *t) {
    t[0] = (pd_tensor){"weight", L->n_weight, 0, 0};
    t[1] = (pd_tensor){"bias", L->n_bias, 0, 0};
    return 2;
}

static int saved(const pd_layer *L, int64_t batch, pd_tensor *t) {
    int rows, C;
    pd_rows(&L->out, &rows, &C);
    t[0] = (pd_tensor){"save_mean", batch * rows, 0, 0};
    t[1] = (pd_tensor){"save_rstd", batch * rows, 0, 0};
    return 2;
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    int rows, C;
    pd_rows(in[0], &rows, &C);
    pd_call *c;
    switch (cs->phase) {
    case PD_PHASE_INIT: /* weight 1, bias 0: batch norm's gamma and beta, no running stats */
        PD_ARGS(pd_host(cs, "pd_init_layernorm"), PD_PARAM(0), PD_PARAM(1), PD_INT(C));
        break;
    case PD_PHASE_FORWARD:
    case PD_PHASE_FORWARD_EVAL:
        PD_ARGS(pd_kernel(cs, "pdrt_layernorm_forward"), PD_OUT, PD_SAVED(0), PD_SAVED(1),
                PD_IN(0), PD_PARAM(0), PD_PARAM(1), PD_FLOAT(L->eps), PD_ROWS(rows), PD_INT(C));
        break;
    case PD_PHASE_BACKWARD:
        c = pd_kernel(cs, "pdrt_layernorm_backward");
        PD_ARGS(c, PD_DIN(0), PD_DPARAM(0), PD_DPARAM(1), PD_DOUT, PD_IN(0), PD_PARAM(0),
                PD_SAVED(0), PD_SAVED(1), PD_ROWS(rows), PD_INT(C));
        break;
    default: break;
    }
}

const pd_op_desc pd_op_layernorm = {
    .name = "layernorm", .attrs = attrs, .min_inputs = 1, .max_inputs = 1, .read = read,
    .infer = infer, .tensors = tensors, .saved = saved, .calls = calls,
    .backward_splits = 1, /* its kernel computes each gradient it is given on its own */
};
