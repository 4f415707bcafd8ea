/* embedding.c: the embedding op, planning only (no kernels yet: codegen and pdprof refuse it).
 * (T) token ids -> (T, dim); weight [num_embeddings][embedding_dim]. FLOPs per sample: forward
 * T*dim (a gather), backward 2*T*dim (a scatter-add). */

#include "op.h"

static const char *const attrs[] = {"num_embeddings", "embedding_dim", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    int e = r->integer(r, "num_embeddings", PD_ATTR_REQUIRED, 1, 1 << 26, &L->num_embeddings);
    return e + r->integer(r, "embedding_dim", PD_ATTR_REQUIRED, 1, 1 << 20, &L->out_features);
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_shape *x = in[0];
    if (pd_input_rank(x->rank == 1, x, "embedding needs a rank-1 input (token ids)", "", err, cap))
        return 1;
    L->out = (pd_shape){2, {x->dim[0], L->out_features, 0}};
    L->n_weight = (int64_t)L->num_embeddings * L->out_features;
    L->flops_fwd = (double)x->dim[0] * L->out_features;
    L->flops_bwd = 2.0 * (double)x->dim[0] * L->out_features;
    return 0;
}

const pd_op_desc pd_op_embedding = {
    .name = "embedding", .attrs = attrs, .min_inputs = 1, .max_inputs = 1,
    .planning_only = 1, .read = read, .infer = infer,
};
