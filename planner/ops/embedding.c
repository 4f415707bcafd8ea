/* embedding.c: the embedding op. (T) token ids (floats in the input pack, exact below 2^24) ->
 * (T, dim): y[b][t] = weight[id[b][t]] (+ pos[t] with `positions: T`, GPT-2's wte + wpe in one
 * layer); weight [num_embeddings][embedding_dim] (PyTorch's nn.Embedding layout), pos [T][dim],
 * both ~ N(0, init_std^2) (default 1, nn.Embedding's; GPT-2 0.02) and both decayed by AdamW (2-D
 * tensors, as torch_gpt_char.py groups them). The ids have no gradient. FLOPs per sample:
 * forward T*dim (a gather, +T*dim with positions), backward 2*T*dim (a scatter-add).
 * Kernels: pdrt_embedding_forward/_backward (runtime/cpu/ops_embedding.c,
 * runtime/cuda/embedding.cu); an id outside [0, num_embeddings) stops the run. */

#include "op.h"

static const char *const attrs[] = {"num_embeddings", "embedding_dim", "positions", "init_std",
                                    NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    int e = r->integer(r, "num_embeddings", PD_ATTR_REQUIRED, 1, 1 << 24, &L->num_embeddings);
    e += r->integer(r, "embedding_dim", PD_ATTR_REQUIRED, 1, 1 << 20, &L->out_features);
    e += r->integer(r, "positions", 0, 0, 1 << 20, &L->positions);
    return e + r->number(r, "init_std", 1.0, 0.0, 1e6, &L->init_std);
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_shape *x = in[0];
    if (pd_input_rank(x->rank == 1, x, "embedding needs a rank-1 input (token ids)", "", err, cap))
        return 1;
    if (L->positions && L->positions != x->dim[0])
        return pd_input_rank(0, x, "'positions' must be the context T of the input", "", err,
                             cap);
    L->out = (pd_shape){2, {x->dim[0], L->out_features, 0}};
    L->n_weight = (int64_t)L->num_embeddings * L->out_features;
    L->n_bias = (int64_t)L->positions * L->out_features; /* the position rows, second */
    L->flops_fwd = (double)x->dim[0] * L->out_features * (L->positions ? 2 : 1);
    L->flops_bwd = 2.0 * (double)x->dim[0] * L->out_features;
    return 0;
}

static int tensors(const pd_layer *L, pd_tensor *t) {
    t[0] = (pd_tensor){"weight", L->n_weight, 0, 1};
    t[1] = (pd_tensor){"pos", L->n_bias, 0, 1};
    return 2;
}

static void calls(const pd_layer *L, const pd_shape *const *in, pd_calls *cs) {
    int T = in[0]->dim[0], V = L->num_embeddings, C = L->out_features;
    switch (cs->phase) {
    case PD_PHASE_INIT:
        PD_ARGS(pd_host(cs, "pd_init_embedding"), PD_PARAM(0), PD_PARAM(1), PD_SEED, PD_LAYER,
                PD_INT(V), PD_INT(C), PD_INT(T), PD_FLOAT(L->init_std));
        break;
    case PD_PHASE_FORWARD:
    case PD_PHASE_FORWARD_EVAL:
        PD_ARGS(pd_kernel(cs, "pdrt_embedding_forward"), PD_OUT, PD_IN(0), PD_PARAM(0),
                PD_PARAM(1), PD_BATCH, PD_INT(T), PD_INT(V), PD_INT(C));
        break;
    case PD_PHASE_BACKWARD:
        PD_ARGS(pd_kernel(cs, "pdrt_embedding_backward"), PD_DPARAM(0), PD_DPARAM(1), PD_DOUT,
                PD_IN(0), PD_BATCH, PD_INT(T), PD_INT(V), PD_INT(C));
        break;
    default: break;
    }
}

const pd_op_desc pd_op_embedding = {
    .name = "embedding", .attrs = attrs, .min_inputs = 1, .max_inputs = 1, .read = read,
    .infer = infer, .tensors = tensors, .calls = calls,
    .backward_splits = 1, /* weight gradients only: all of it runs in backward_weight */
};
