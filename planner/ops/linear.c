/* linear.c: the linear op. y[b][o] = bias[o] + sum_c x[b][c] W[o][c]; weight [out][in], bias
 * [out] (PyTorch's layout). Shape (F) -> (out); a sequence (T, F) -> (T, out), over the last
 * dimension: the same kernels on B*T rows of F (PD_ROWS(T) in place of the batch).
 * FLOPs per sample: forward 2*F*out (+out for the bias), backward twice the matrix part (+out).
 * Kernels: pdrt_linear_forward/_backward (runtime/cpu/ops_linear.c, runtime/cuda/linear.cu). */

#include "op.h"

static const char *const attrs[] = {"out_features", "bias", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    int e = r->integer(r, "out_features", PD_ATTR_REQUIRED, 1, 1 << 28, &L->out_features);
    return e + r->flag(r, "bias", 1, &L->has_bias);
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_shape *x = in[0];
    if (pd_input_rank(x->rank == 1 || x->rank == 2, x, "linear needs a rank-1 input (features)",
                      ": add a flatten layer first", err, cap))
        return 1;
    int seq = x->rank == 2, F = x->dim[seq];
    double T = seq ? x->dim[0] : 1;
    L->out.rank = x->rank;
    L->out.dim[0] = seq ? x->dim[0] : L->out_features;
    L->out.dim[1] = seq ? L->out_features : 0;
    L->n_weight = (int64_t)L->out_features * F;
    L->n_bias = L->has_bias ? L->out_features : 0;
    L->flops_fwd = T * (2.0 * (double)L->n_weight + (double)L->n_bias);
    L->flops_bwd = T * (4.0 * (double)L->n_weight + (double)L->n_bias);
    return 0;
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    int OC = L->out_features, T, C;
    pd_rows(in[0], &T, &C);
    pd_arg rows = in[0]->rank == 2 ? PD_ROWS(T) : PD_BATCH; /* rank 1: the batch, as it was */
    switch (cs->phase) {
    case PD_PHASE_INIT:
        PD_ARGS(pd_host(cs, "pd_init_linear"), PD_PARAM(0), PD_PARAM(1), PD_SEED, PD_LAYER,
                PD_INT(C), PD_INT(OC));
        break;
    case PD_PHASE_FORWARD:
    case PD_PHASE_FORWARD_EVAL:
        PD_ARGS(pd_kernel(cs, "pdrt_linear_forward"), PD_OUT, PD_IN(0), PD_PARAM(0), PD_PARAM(1),
                rows, PD_INT(C), PD_INT(OC));
        break;
    case PD_PHASE_BACKWARD:
        PD_ARGS(pd_kernel(cs, "pdrt_linear_backward"), PD_DIN(0), PD_DPARAM(0), PD_DPARAM(1),
                PD_DOUT, PD_IN(0), PD_PARAM(0), rows, PD_INT(C), PD_INT(OC));
        break;
    case PD_PHASE_SCRATCH:
        if (cs->backend == PD_BACKEND_CUDA)
            PD_ARGS(pd_host(cs, "pdrt_linear_cuda_scratch_bytes"), PD_PREC, rows, PD_INT(C),
                    PD_INT(OC));
        break;
    default: break;
    }
}

const pd_op_desc pd_op_linear = {
    .name = "linear", .attrs = attrs, .min_inputs = 1, .max_inputs = 1,
    .read = read, .infer = infer, .calls = calls,
    .backward_splits = 1, /* its kernel computes each gradient it is given on its own */
    .selective_keeps = 1, /* GEMMs: selective recomputation keeps its output */
};
