/* lstm.c: the lstm op, one LSTM layer over a sequence (PyTorch's nn.LSTM, one layer,
 * batch_first): (T, F) -> (T, H), or (T, 2H) with `bidirectional` (the forward direction's h in
 * columns 0..H-1, the time-reversed direction's in H..2H-1, as nn.LSTM concatenates them).
 * Gates in PyTorch's order i, f, g, o: a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh (4H rows);
 * i, f, o = sigmoid, g = tanh; c_t = f c_{t-1} + i g; h_t = o tanh(c_t); h_{-1} = c_{-1} = 0
 * (every sequence starts from a zero state: docs/ops.md says why). Parameters, D directions
 * stacked (D = 1 or 2): weight_ih [D][4H][F], weight_hh [D][4H][H], bias_ih [D][4H], bias_hh
 * [D][4H], all U(-1/sqrt(H), 1/sqrt(H)) (nn.LSTM's init); direction 0 is nn.LSTM's weight_ih_l0,
 * direction 1 its weight_ih_l0_reverse. The training forward saves the gates after their
 * nonlinearities [D][B][T][4H] and the cells with their tanh [D][B][T][2H] for backpropagation
 * through time; the backward reads the output (h) too. FLOPs per sample: forward T*D*(8H(F+H) + 8H + 12H) (the
 * input and recurrent products, the biases, the gates and cell update), backward
 * T*D*(16H(F+H) + 8H + 24H). Kernels: pdrt_lstm_forward/_backward (runtime/cpu/ops_lstm.c,
 * runtime/cuda/lstm.cu). */

#include "op.h"

static const char *const attrs[] = {"hidden_size", "bias", "bidirectional", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    int e = r->integer(r, "hidden_size", PD_ATTR_REQUIRED, 1, 1 << 20, &L->out_features);
    e += r->flag(r, "bidirectional", 0, &L->bidirectional);
    return e + r->flag(r, "bias", 1, &L->has_bias);
}

static int dirs(const pd_layer *L) { return L->bidirectional ? 2 : 1; }

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_shape *x = in[0];
    if (pd_input_rank(x->rank == 2, x, "lstm needs a rank-2 input (tokens, features)", "", err,
                      cap))
        return 1;
    int D = dirs(L);
    double T = x->dim[0], F = x->dim[1], H = L->out_features;
    L->out = (pd_shape){2, {x->dim[0], D * L->out_features, 0}};
    L->n_weight = D * 4 * (int64_t)L->out_features * (x->dim[1] + (int64_t)L->out_features);
    L->n_bias = L->has_bias ? D * 8 * (int64_t)L->out_features : 0;
    L->flops_fwd = D * T * (8.0 * H * (F + H) + 8.0 * H + 12.0 * H);
    L->flops_bwd = D * T * (16.0 * H * (F + H) + 8.0 * H + 24.0 * H);
    return 0;
}

static int tensors(const pd_layer *L, pd_tensor *t) {
    int64_t D = dirs(L), H = L->out_features, F = L->n_weight / (D * 4 * H) - H;
    int64_t nb = L->has_bias ? D * 4 * H : 0;
    t[0] = (pd_tensor){"weight_ih", D * 4 * H * F, 0, 1};
    t[1] = (pd_tensor){"weight_hh", D * 4 * H * H, 0, 1};
    t[2] = (pd_tensor){"bias_ih", nb, 0, 0};
    t[3] = (pd_tensor){"bias_hh", nb, 0, 0};
    return 4;
}

static int saved(const pd_layer *L, int64_t batch, pd_tensor *t) {
    int64_t D = dirs(L), T = L->out.dim[0], H = L->out_features;
    t[0] = (pd_tensor){"gates", D * batch * T * 4 * H, 0, 0};
    t[1] = (pd_tensor){"cell", D * batch * T * 2 * H, 0, 0}; /* c and tanh(c) */
    return 2;
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    int T = in[0]->dim[0], F = in[0]->dim[1], H = L->out_features, D = dirs(L);
    pd_call *c;
    switch (cs->phase) {
    case PD_PHASE_INIT:
        PD_ARGS(pd_host(cs, "pd_init_lstm"), PD_PARAM(0), PD_PARAM(1), PD_PARAM(2), PD_PARAM(3),
                PD_SEED, PD_LAYER, PD_INT(F), PD_INT(H), PD_INT(D));
        break;
    case PD_PHASE_FORWARD:
    case PD_PHASE_FORWARD_EVAL:
        PD_ARGS(pd_kernel(cs, "pdrt_lstm_forward"), PD_OUT, PD_SAVED(0), PD_SAVED(1), PD_IN(0),
                PD_PARAM(0), PD_PARAM(1), PD_PARAM(2), PD_PARAM(3), PD_BATCH, PD_INT(T),
                PD_INT(F), PD_INT(H), PD_INT(D));
        break;
    case PD_PHASE_BACKWARD:
        c = pd_kernel(cs, "pdrt_lstm_backward"); /* CUDA: its scratch is the context's */
        PD_ARGS(c, PD_DIN(0), PD_DPARAM(0), PD_DPARAM(1), PD_DPARAM(2), PD_DPARAM(3));
        if (cs->backend == PD_BACKEND_CPU) PD_ARGS(c, PD_SCRATCH);
        PD_ARGS(c, PD_DOUT, PD_OUT, PD_IN(0), PD_PARAM(0), PD_PARAM(1), PD_SAVED(0), PD_SAVED(1),
                PD_BATCH, PD_INT(T), PD_INT(F), PD_INT(H), PD_INT(D));
        break;
    case PD_PHASE_SCRATCH:
        PD_ARGS(pd_host(cs, cs->backend == PD_BACKEND_CPU ? "pdrt_lstm_scratch_floats"
                                                          : "pdrt_lstm_cuda_scratch_bytes"),
                PD_BATCH, PD_INT(T), PD_INT(H));
        break;
    default: break;
    }
}

const pd_op_desc pd_op_lstm = {
    .name = "lstm", .attrs = attrs, .min_inputs = 1, .max_inputs = 1, .read = read,
    .infer = infer, .tensors = tensors, .saved = saved, .calls = calls,
    .selective_keeps = 1, /* GEMMs: selective recomputation keeps its output */
};
