/* pool2d.c: the maxpool2d and avgpool2d ops (PyTorch's MaxPool2d, and AvgPool2d with
 * count_include_pad=True). Shape (C, H, W) -> (C, OH, OW) as conv2d; a global avgpool2d gives
 * (C, 1, 1). stride defaults to the kernel, padding to 0 (at most half the kernel). FLOPs per
 * sample: forward numel(out)*kh*kw (global: numel(in)), backward numel(in). maxpool2d saves the
 * argmax of every output (an int each) for its backward. Kernels: pdrt_maxpool2d_*,
 * pdrt_avgpool2d_* (runtime/cpu/ops_pool.c, runtime/cuda/pool.cu). */
#include "op.h"
#include "shapes.h"

static const char *const max_attrs[] = {"kernel", "stride", "padding", NULL};
static const char *const avg_attrs[] = {"kernel", "stride", "padding", "global", NULL};

static int read_window(pd_attr_reader *r, pd_layer *L) {
    if (r->pair(r, "kernel", -1, 1, L->kernel)) return 1;
    int e = r->pair(r, "stride", L->kernel[0], 1, L->stride);
    if (!r->has(r, "stride")) L->stride[1] = L->kernel[1];
    e += r->pair(r, "padding", 0, 0, L->padding);
    if (L->padding[0] * 2 > L->kernel[0] || L->padding[1] * 2 > L->kernel[1]) {
        r->error(r, "padding", "layer '%s': pooling padding must be at most half the kernel",
                 r->layer);
        e++;
    }
    return e;
}

static int read_avg(pd_attr_reader *r, pd_layer *L) {
    int e = r->flag(r, "global", 0, &L->global);
    if (!L->global) return e + read_window(r, L);
    if (r->has(r, "kernel")) {
        r->error(r, NULL, "layer '%s': a global avgpool2d takes no kernel", r->layer);
        e++;
    }
    return e;
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_shape *x = in[0];
    double nin = (double)pd_shape_numel(x);
    if (L->global) {
        if (pd_need_rank3(L, x, err, cap)) return 1;
        L->out = (pd_shape){3, {x->dim[0], 1, 1}};
        L->flops_fwd = L->flops_bwd = nin;
        return 0;
    }
    if (pd_window_shape(L, x, x->dim[0], err, cap)) return 1;
    L->flops_fwd = (double)pd_shape_numel(&L->out) * L->kernel[0] * L->kernel[1];
    L->flops_bwd = nin;
    return 0;
}

/* B, C, H, W, KH, KW, SH, SW, PH, PW (global average pooling: the whole input, stride 1) */
static void shape_args(pd_call *c, const pd_layer *L, const pd_shape *x) {
    int C, H, W;
    pd_chw(x, &C, &H, &W);
    PD_ARGS(c, PD_BATCH, PD_INT(C), PD_INT(H), PD_INT(W));
    if (L->global)
        PD_ARGS(c, PD_INT(H), PD_INT(W), PD_INT(1), PD_INT(1), PD_INT(0), PD_INT(0));
    else
        PD_ARGS(c, PD_INT(L->kernel[0]), PD_INT(L->kernel[1]), PD_INT(L->stride[0]),
                PD_INT(L->stride[1]), PD_INT(L->padding[0]), PD_INT(L->padding[1]));
}

static int max_saved(const pd_layer *L, int64_t batch, pd_tensor *t) {
    t[0] = (pd_tensor){"argmax", batch * pd_shape_numel(&L->out), 0, 0};
    return 1;
}

static void max_calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    pd_call *c = NULL;
    if (cs->phase == PD_PHASE_FORWARD || cs->phase == PD_PHASE_FORWARD_EVAL) {
        c = pd_kernel(cs, "pdrt_maxpool2d_forward");
        PD_ARGS(c, PD_OUT, PD_SAVED_AS(0, PD_AS_INT), PD_IN(0));
    } else if (cs->phase == PD_PHASE_BACKWARD) {
        c = pd_kernel(cs, "pdrt_maxpool2d_backward");
        PD_ARGS(c, PD_DIN(0), PD_DOUT, PD_SAVED_AS(0, PD_AS_CONST_INT));
        if (c) c->needs_din = 1;
    }
    if (c) shape_args(c, L, in[0]);
}

static void avg_calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    pd_call *c = NULL;
    if (cs->phase == PD_PHASE_FORWARD || cs->phase == PD_PHASE_FORWARD_EVAL) {
        c = pd_kernel(cs, "pdrt_avgpool2d_forward");
        PD_ARGS(c, PD_OUT, PD_IN(0));
    } else if (cs->phase == PD_PHASE_BACKWARD) {
        c = pd_kernel(cs, "pdrt_avgpool2d_backward");
        PD_ARGS(c, PD_DIN(0), PD_DOUT);
        if (c) c->needs_din = 1;
    }
    if (c) shape_args(c, L, in[0]);
}

const pd_op_desc pd_op_maxpool2d = {
    .name = "maxpool2d", .attrs = max_attrs, .min_inputs = 1, .max_inputs = 1,
    .read = read_window, .infer = infer, .saved = max_saved, .calls = max_calls,
    .backward_sets_din = 1, /* pdrt_maxpool2d_backward_set */
};

const pd_op_desc pd_op_avgpool2d = {
    .name = "avgpool2d", .attrs = avg_attrs, .min_inputs = 1, .max_inputs = 1,
    .read = read_avg, .infer = infer, .calls = avg_calls,
};
