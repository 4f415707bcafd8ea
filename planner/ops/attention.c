/* attention.c: the attention op, GPT-2's causal multi-head self-attention core. Input the fused
 * q, k, v of a sequence, (T, 3C) (GPT-2's c_attn output: q = [:, 0:C], k = [:, C:2C], v =
 * [:, 2C:3C]; head h uses columns h*hs..(h+1)*hs-1 of each, hs = C/heads); output (T, C), head h
 * at columns h*hs... For each head: s_ij = q_i . k_j / sqrt(hs) for j <= i only (causal by
 * construction: no j > i is computed or summed), p_ij = softmax_j(s_ij), y_i = sum_{j<=i} p_ij v_j.
 * Attribute heads (required, divides C). No parameters; the training forward saves the
 * probabilities p, B*heads*T*T floats (the upper triangle zero), for the backward
 * (O(T^2 hs) per head, the softmax's backward row by row). No attention dropout.
 * FLOPs per sample (T(T+1)/2 pairs per head): forward 2 T(T+1) C for the two products and
 * 2.5 heads T(T+1) for the softmax; backward 4 T(T+1) C and 2 heads T(T+1).
 * Kernels: pdrt_attention_forward/_backward (runtime/cpu/ops_attention.c,
 * runtime/cuda/sequence.cu); docs/ops.md has the math.
 * With TWO inputs it is non-causal cross attention (GNMT's decoder over the encoder's outputs):
 * input 0 the queries (Tq, C), input 1 the fused keys and values of another sequence (Tk, 2C)
 * (k = [:, 0:C], v = [:, C:2C]); output (Tq, C); every query sees every key; saved p
 * B*heads*Tq*Tk floats. FLOPs per sample: forward 4 Tq Tk C for the two products and
 * 5 heads Tq Tk for the softmax; backward 8 Tq Tk C and 4 heads Tq Tk. Kernels
 * pdrt_cross_attention_forward/_backward (runtime/cpu/ops_cross_attention.c,
 * runtime/cuda/cross_attention.cu). */
#include <stdio.h>

#include "op.h"

static const char *const attrs[] = {"heads", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    return r->integer(r, "heads", PD_ATTR_REQUIRED, 1, 1 << 16, &L->heads);
}

/* the two-input form: queries (Tq, C) over keys and values (Tk, 2C) */
static int infer_cross(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_shape *q = in[0], *kv = in[1];
    if (pd_input_rank(q->rank == 2, q, "attention's queries (input 0) must be a sequence (Tq, C)",
                      "", err, cap) ||
        pd_input_rank(kv->rank == 2 && kv->dim[1] == 2 * q->dim[1], kv,
                      "attention's keys and values (input 1) must be a sequence (Tk, 2C) of fused "
                      "k, v, C the queries' width",
                      ": a linear of out_features 2C first", err, cap))
        return 1;
    int Tq = q->dim[0], Tk = kv->dim[0], C = q->dim[1];
    if (C % L->heads) {
        snprintf(err, cap, "attention: heads (%d) must divide C = %d (the queries' width)",
                 L->heads, C);
        return 1;
    }
    L->out = (pd_shape){2, {Tq, C, 0}};
    L->keys = Tk;
    double pairs = (double)Tq * Tk;
    L->flops_fwd = 4.0 * pairs * C + 5.0 * L->heads * pairs;
    L->flops_bwd = 8.0 * pairs * C + 4.0 * L->heads * pairs;
    return 0;
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    if (L->n_inputs == 2) return infer_cross(L, in, err, cap);
    const pd_shape *x = in[0];
    if (pd_input_rank(x->rank == 2 && x->dim[1] % 3 == 0, x,
                      "attention needs a sequence (T, 3C) of fused q, k, v",
                      ": a linear of out_features 3C first", err, cap))
        return 1;
    int T = x->dim[0], C = x->dim[1] / 3;
    if (C % L->heads) {
        snprintf(err, cap, "attention: heads (%d) must divide C = %d (the input's %d / 3)",
                 L->heads, C, x->dim[1]);
        return 1;
    }
    L->out = (pd_shape){2, {T, C, 0}};
    double pairs = (double)T * (T + 1);
    L->flops_fwd = 2.0 * pairs * C + 2.5 * L->heads * pairs;
    L->flops_bwd = 4.0 * pairs * C + 2.0 * L->heads * pairs;
    return 0;
}

/* the keys' count: the queries' T, or the second input's Tk (infer keeps it for saved, which
 * does not see the inputs) */
static int64_t keys_of(const pd_layer *L) { return L->n_inputs == 2 ? L->keys : L->out.dim[0]; }

static int saved(const pd_layer *L, int64_t batch, pd_tensor *t) {
    int64_t T = L->out.dim[0];
    t[0] = (pd_tensor){"att", batch * L->heads * T * keys_of(L), 0, 0};
    return 1;
}

/* the two-input form's calls: queries PD_IN(0), keys and values PD_IN(1) */
static void calls_cross(const pd_layer *L, pd_calls *cs) {
    int Tq = L->out.dim[0], Tk = L->keys, C = L->out.dim[1], NH = L->heads;
    pd_call *c;
    switch (cs->phase) {
    case PD_PHASE_FORWARD:
    case PD_PHASE_FORWARD_EVAL:
        PD_ARGS(pd_kernel(cs, "pdrt_cross_attention_forward"), PD_OUT, PD_SAVED(0), PD_IN(0),
                PD_IN(1), PD_BATCH, PD_INT(Tq), PD_INT(Tk), PD_INT(C), PD_INT(NH));
        break;
    case PD_PHASE_BACKWARD:
        c = pd_kernel(cs, "pdrt_cross_attention_backward"); /* CUDA: scratch in the context */
        PD_ARGS(c, PD_DIN(0), PD_DIN(1));
        if (cs->backend == PD_BACKEND_CPU) PD_ARGS(c, PD_SCRATCH);
        PD_ARGS(c, PD_DOUT, PD_IN(0), PD_IN(1), PD_SAVED(0), PD_BATCH, PD_INT(Tq), PD_INT(Tk),
                PD_INT(C), PD_INT(NH));
        break;
    case PD_PHASE_SCRATCH:
        if (cs->backend == PD_BACKEND_CPU)
            PD_ARGS(pd_host(cs, "pdrt_cross_attention_scratch_floats"), PD_INT(Tq), PD_INT(Tk));
        else
            PD_ARGS(pd_host(cs, "pdrt_cross_attention_cuda_scratch_bytes"), PD_BATCH, PD_INT(Tq),
                    PD_INT(Tk), PD_INT(NH));
        break;
    default: break;
    }
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    (void)in;
    if (L->n_inputs == 2) {
        calls_cross(L, cs);
        return;
    }
    int T = L->out.dim[0], C = L->out.dim[1], NH = L->heads;
    pd_call *c;
    switch (cs->phase) {
    case PD_PHASE_FORWARD:
    case PD_PHASE_FORWARD_EVAL:
        PD_ARGS(pd_kernel(cs, "pdrt_attention_forward"), PD_OUT, PD_SAVED(0), PD_IN(0), PD_BATCH,
                PD_INT(T), PD_INT(C), PD_INT(NH));
        break;
    case PD_PHASE_BACKWARD:
        c = pd_kernel(cs, "pdrt_attention_backward"); /* CUDA: its scratch is the context's */
        PD_ARGS(c, PD_DIN(0));
        if (cs->backend == PD_BACKEND_CPU) PD_ARGS(c, PD_SCRATCH);
        PD_ARGS(c, PD_DOUT, PD_IN(0), PD_SAVED(0), PD_BATCH, PD_INT(T), PD_INT(C), PD_INT(NH));
        if (c) c->needs_din = 1;
        break;
    case PD_PHASE_SCRATCH:
        if (cs->backend == PD_BACKEND_CPU)
            PD_ARGS(pd_host(cs, "pdrt_attention_scratch_floats"), PD_INT(T));
        else
            PD_ARGS(pd_host(cs, "pdrt_attention_cuda_scratch_bytes"), PD_BATCH, PD_INT(T),
                    PD_INT(NH));
        break;
    default: break;
    }
}

const pd_op_desc pd_op_attention = {
    .name = "attention", .attrs = attrs, .min_inputs = 1, .max_inputs = 2, .read = read,
    .infer = infer, .saved = saved, .calls = calls,
};
