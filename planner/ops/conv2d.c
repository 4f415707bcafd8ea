/* conv2d.c: the conv2d op, PyTorch's Conv2d (cross-correlation, zero padding). Weight
 * [out_channels][in_channels][kh][kw], bias [out_channels]. Shape (C, H, W) -> (oc, OH, OW),
 * O = floor((I + 2p - k) / s) + 1. FLOPs per sample: forward 2*C*kh*kw*oc*OH*OW (+oc*OH*OW for
 * the bias), backward twice the convolution part (+bias). Kernels: pdrt_conv2d_forward/_backward
 * (runtime/cpu/ops_conv.c: im2col + sgemm over a scratch buffer; runtime/cuda/conv.cu: cuDNN). */
#include <stdio.h>

#include "op.h"

static const char *const attrs[] = {"out_channels", "kernel", "stride", "padding", "bias", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    int e = r->integer(r, "out_channels", PD_ATTR_REQUIRED, 1, 1 << 24, &L->out_channels);
    e += r->pair(r, "kernel", -1, 1, L->kernel); /* default -1: required */
    e += r->pair(r, "stride", 1, 1, L->stride);
    e += r->pair(r, "padding", 0, 0, L->padding);
    return e + r->flag(r, "bias", 1, &L->has_bias);
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    if (pd_window_shape(L, in[0], L->out_channels, err, cap)) return 1;
    double nout = (double)pd_shape_numel(&L->out);
    double window = (double)L->kernel[0] * L->kernel[1];
    /* counted in double first: the int64 product of the attribute limits can overflow */
    double nw = (double)L->out_channels * in[0]->dim[0] * window;
    if (nw > (double)((int64_t)1 << 34)) {
        snprintf(err, cap, "conv2d has too many weights (%.4g)", nw);
        return 1;
    }
    L->n_weight = (int64_t)nw;
    L->n_bias = L->has_bias ? L->out_channels : 0;
    double macs = nout * in[0]->dim[0] * window;
    L->flops_fwd = 2.0 * macs + (L->has_bias ? nout : 0);
    L->flops_bwd = 4.0 * macs + (L->has_bias ? nout : 0);
    return 0;
}

/* C, H, W, OC, KH, KW, SH, SW, PH, PW */
static void shape_args(pd_call *c, const pd_layer *L, const pd_shape *x) {
    PD_ARGS(c, PD_INT(x->dim[0]), PD_INT(x->dim[1]), PD_INT(x->dim[2]), PD_INT(L->out_channels),
            PD_INT(L->kernel[0]), PD_INT(L->kernel[1]), PD_INT(L->stride[0]),
            PD_INT(L->stride[1]), PD_INT(L->padding[0]), PD_INT(L->padding[1]));
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    int cpu = cs->backend == PD_BACKEND_CPU;
    pd_call *c = NULL;
    switch (cs->phase) {
    case PD_PHASE_INIT:
        PD_ARGS(pd_host(cs, "pd_init_conv2d"), PD_PARAM(0), PD_PARAM(1), PD_SEED, PD_LAYER,
                PD_INT(in[0]->dim[0]), PD_INT(L->out_channels), PD_INT(L->kernel[0]),
                PD_INT(L->kernel[1]));
        return;
    case PD_PHASE_FORWARD:
    case PD_PHASE_FORWARD_EVAL: /* CPU: out, scratch, in, ...; CUDA: its workspace is ctx's */
        c = pd_kernel(cs, "pdrt_conv2d_forward");
        PD_ARGS(c, PD_OUT);
        if (cpu) PD_ARGS(c, PD_SCRATCH);
        PD_ARGS(c, PD_IN(0), PD_PARAM(0), PD_PARAM(1), PD_BATCH);
        break;
    case PD_PHASE_BACKWARD:
        c = pd_kernel(cs, "pdrt_conv2d_backward");
        PD_ARGS(c, PD_DIN(0), PD_DPARAM(0), PD_DPARAM(1));
        if (cpu) PD_ARGS(c, PD_SCRATCH);
        PD_ARGS(c, PD_DOUT, PD_IN(0), PD_PARAM(0), PD_BATCH);
        break;
    case PD_PHASE_SCRATCH:
        c = pd_host(cs, cpu ? "pdrt_conv2d_scratch_floats" : "pdrt_conv2d_cuda_scratch_bytes");
        if (!cpu) PD_ARGS(c, PD_PREC);
        PD_ARGS(c, PD_BATCH);
        break;
    default: return;
    }
    shape_args(c, L, in[0]);
}

const pd_op_desc pd_op_conv2d = {
    .name = "conv2d", .attrs = attrs, .min_inputs = 1, .max_inputs = 1,
    .read = read, .infer = infer, .calls = calls,
    .backward_splits = 1, /* its kernel computes each gradient it is given on its own */
    .selective_keeps = 1, /* GEMMs: selective recomputation keeps its output */
};
