/* lstm.c: the lstm op, planning only (no kernels yet: codegen and pdprof refuse it). (T, F) ->
 * (T, H), H = hidden_size. Parameters (PyTorch's): weight_ih [4H][F], weight_hh [4H][H], bias_ih
 * [4H], bias_hh [4H]: n_weight 4H(F+H), n_bias 8H. FLOPs per sample: forward
 * T*(8H(F+H) + 8H + 12H) (the gate matrix products, biases, gate nonlinearities and cell
 * update), backward T*(16H(F+H) + 8H + 24H). */

#include "op.h"

static const char *const attrs[] = {"hidden_size", "bias", NULL};

static int read(pd_attr_reader *r, pd_layer *L) {
    int e = r->integer(r, "hidden_size", PD_ATTR_REQUIRED, 1, 1 << 20, &L->out_features);
    return e + r->flag(r, "bias", 1, &L->has_bias);
}

static int infer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    const pd_shape *x = in[0];
    if (pd_input_rank(x->rank == 2, x, "lstm needs a rank-2 input (tokens, features)", "", err,
                      cap))
        return 1;
    double T = x->dim[0], F = x->dim[1], H = L->out_features;
    L->out = (pd_shape){2, {x->dim[0], L->out_features, 0}};
    L->n_weight = 4 * (int64_t)L->out_features * (x->dim[1] + (int64_t)L->out_features);
    L->n_bias = L->has_bias ? 8 * (int64_t)L->out_features : 0;
    L->flops_fwd = T * (8.0 * H * (F + H) + 8.0 * H + 12.0 * H);
    L->flops_bwd = T * (16.0 * H * (F + H) + 8.0 * H + 24.0 * H);
    return 0;
}

const pd_op_desc pd_op_lstm = {
    .name = "lstm", .attrs = attrs, .min_inputs = 1, .max_inputs = 1,
    .planning_only = 1, .read = read, .infer = infer,
};
