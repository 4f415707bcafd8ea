/* batchnorm2d.c: the batchnorm2d op (PyTorch's BatchNorm2d: biased variance to normalise,
 * unbiased for the running variance, momentum 0.1 and eps 1e-5 by default). (C, H, W) keeps its
 * shape. Parameters gamma ("weight") and beta ("bias") [C]; buffers running_mean and running_var
 * [C], never stashed; the training forward saves the batch mean and 1/sqrt(var + eps) [C] for the
 * backward. FLOPs per sample: forward 4, backward 8 per element. Kernels: pdrt_batchnorm2d_*
 * (runtime/cpu/ops_norm.c, runtime/cuda/norm.cu: cuDNN). */
#include "op.h"

static const char *const attrs[] = {"eps", "momentum", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    int e = r->number(r, "eps", 1e-5, 1e-30, 1.0, &L->eps);
    return e + r->number(r, "momentum", 0.1, 0.0, 1.0, &L->momentum);
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    if (pd_need_rank3(L, in[0], err, cap)) return 1;
    pd_infer_same(L, in, 4, 8);
    L->n_weight = L->n_bias = in[0]->dim[0];
    L->n_buffer = 2 * (int64_t)in[0]->dim[0];
    return 0;
}

static int tensors(const pd_layer *L, pd_tensor *t) {
    int64_t C = L->out.dim[0];
    t[0] = (pd_tensor){"weight", C, 0, 0};
    t[1] = (pd_tensor){"bias", C, 0, 0};
    t[2] = (pd_tensor){"running_mean", C, 1, 0};
    t[3] = (pd_tensor){"running_var", C, 1, 0};
    return 4;
}

static int saved(const pd_layer *L, int64_t batch, pd_tensor *t) {
    (void)batch;
    t[0] = (pd_tensor){"save_mean", L->out.dim[0], 0, 0};
    t[1] = (pd_tensor){"save_rstd", L->out.dim[0], 0, 0};
    return 2;
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    int C, H, W;
    pd_chw(in[0], &C, &H, &W);
    pd_call *c = NULL;
    switch (cs->phase) {
    case PD_PHASE_INIT: /* BUFFER(k): the k-th tensor marked buffer above */
        PD_ARGS(pd_host(cs, "pd_init_batchnorm2d"), PD_PARAM(0), PD_PARAM(1), PD_BUFFER(0),
                PD_BUFFER(1), PD_INT(C));
        return;
    case PD_PHASE_FORWARD:
        c = pd_kernel(cs, "pdrt_batchnorm2d_forward");
        PD_ARGS(c, PD_OUT, PD_SAVED(0), PD_SAVED(1), PD_BUFFER(0), PD_BUFFER(1), PD_IN(0),
                PD_PARAM(0), PD_PARAM(1), PD_FLOAT(L->momentum), PD_FLOAT(L->eps));
        break;
    case PD_PHASE_FORWARD_EVAL:
        c = pd_kernel(cs, "pdrt_batchnorm2d_forward_eval");
        PD_ARGS(c, PD_OUT, PD_IN(0), PD_PARAM(0), PD_PARAM(1), PD_BUFFER(0), PD_BUFFER(1),
                PD_FLOAT(L->eps));
        break;
    case PD_PHASE_BACKWARD:
        c = pd_kernel(cs, "pdrt_batchnorm2d_backward");
        PD_ARGS(c, PD_DIN(0), PD_DPARAM(0), PD_DPARAM(1), PD_DOUT, PD_IN(0), PD_PARAM(0),
                PD_SAVED(0), PD_SAVED(1));
        break;
    case PD_PHASE_SCRATCH:
        if (cs->backend != PD_BACKEND_CUDA) return;
        c = pd_host(cs, "pdrt_batchnorm2d_cuda_scratch_bytes");
        break;
    default: return;
    }
    PD_ARGS(c, PD_BATCH, PD_INT(C), PD_INT(H), PD_INT(W));
}

const pd_op_desc pd_op_batchnorm2d = {
    .name = "batchnorm2d", .attrs = attrs, .min_inputs = 1, .max_inputs = 1, .read = read,
    .infer = infer, .tensors = tensors, .saved = saved, .calls = calls,
    .backward_splits = 1, /* its kernel computes each gradient it is given on its own */
};
