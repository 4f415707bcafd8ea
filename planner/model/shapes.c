/* shapes.c: shape inference, parameter counts and FLOP counts for every op of the model IR.
 *
 * Shapes are per sample: rank 1 (features) or rank 3 (C, H, W). FLOPs are per sample, a
 * multiply-add counting 2. The rules, also in docs/formats.md:
 *   linear      (F) -> (out); fwd 2*F*out (+out bias); bwd twice the matmul part (+out)
 *   conv2d      (C,H,W) -> (oc, (H+2p-k)/s+1, ...); fwd 2*C*kh*kw*oc*OH*OW (+oc*OH*OW bias);
 *               bwd twice the convolution part (+bias)
 *   maxpool2d/avgpool2d as conv2d without channels change; fwd numel(out)*kh*kw, bwd numel(in);
 *               global avgpool: (C,H,W) -> (C,1,1)
 *   relu, dropout: same shape, fwd and bwd numel; flatten: (C,H,W) -> (C*H*W), 0 FLOPs
 *   batchnorm2d: same shape, params 2C, buffers 2C; fwd 4*numel, bwd 8*numel
 *   add: k equal shapes -> same; fwd (k-1)*numel, bwd 0
 *   concat: rank 3 with equal H, W -> channels summed; rank 1 -> features summed; rank 2 with
 *               equal tokens -> features summed; 0 FLOPs
 * Rank 2 (T, F) sequences, for planning-only models (model.h):
 *   linear      (T, F) -> (T, out), per token: T times the rank-1 FLOPs
 *   embedding   (T) token ids -> (T, dim); params vocab*dim; fwd T*dim, bwd 2*T*dim (gather,
 *               scatter-add)
 *   lstm        (T, F) -> (T, H); params 4H(F+H) + 8H (two biases, PyTorch's); fwd
 *               T*(8H(F+H) + 8H + 12H) (the gate matrix products, biases, gate nonlinearities
 *               and cell update); bwd T*(16H(F+H) + 8H + 24H)
 */
#include "shapes.h"

#include <stdio.h>
#include <string.h>

const char *pd_shape_str(char *buf, int cap, const pd_shape *s) {
    if (s->rank == 1) snprintf(buf, cap, "(%d)", s->dim[0]);
    else if (s->rank == 2) snprintf(buf, cap, "(%d, %d)", s->dim[0], s->dim[1]);
    else if (s->rank == 3) snprintf(buf, cap, "(%d, %d, %d)", s->dim[0], s->dim[1], s->dim[2]);
    else snprintf(buf, cap, "(?)");
    return buf;
}

/* Output size of a sliding window; 0 if the window does not fit. */
static int window_out(int in, int k, int s, int p) {
    if (k <= 0 || s <= 0 || in + 2 * p < k) return 0;
    return (in + 2 * p - k) / s + 1;
}

/* Fills L->out and counts from its inputs' shapes; returns 0 or writes a message to err. */
static int infer_layer(pd_layer *L, const pd_shape *const *in, char *err, int cap) {
    char b0[64], b1[64];
    const pd_shape *x = in[0];
    int64_t nin = pd_shape_numel(x);
    L->n_weight = L->n_bias = L->n_buffer = 0;
    L->flops_fwd = L->flops_bwd = 0;
    switch (L->op) {
    case PD_OP_LINEAR: {
        if (x->rank != 1 && x->rank != 2) {
            snprintf(err, cap, "linear needs a rank-1 input (features), got %s: add a flatten "
                     "layer first", pd_shape_str(b0, sizeof b0, x));
            return 1;
        }
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
    case PD_OP_EMBEDDING:
        if (x->rank != 1) {
            snprintf(err, cap, "embedding needs a rank-1 input (token ids), got %s",
                     pd_shape_str(b0, sizeof b0, x));
            return 1;
        }
        L->out.rank = 2;
        L->out.dim[0] = x->dim[0];
        L->out.dim[1] = L->out_features;
        L->n_weight = (int64_t)L->num_embeddings * L->out_features;
        L->flops_fwd = (double)x->dim[0] * L->out_features;
        L->flops_bwd = 2.0 * (double)x->dim[0] * L->out_features;
        return 0;
    case PD_OP_LSTM: {
        if (x->rank != 2) {
            snprintf(err, cap, "lstm needs a rank-2 input (tokens, features), got %s",
                     pd_shape_str(b0, sizeof b0, x));
            return 1;
        }
        double T = x->dim[0], F = x->dim[1], H = L->out_features;
        L->out.rank = 2;
        L->out.dim[0] = x->dim[0];
        L->out.dim[1] = L->out_features;
        L->n_weight = 4 * (int64_t)L->out_features * (x->dim[1] + (int64_t)L->out_features);
        L->n_bias = L->has_bias ? 8 * (int64_t)L->out_features : 0;
        L->flops_fwd = T * (8.0 * H * (F + H) + 8.0 * H + 12.0 * H);
        L->flops_bwd = T * (16.0 * H * (F + H) + 8.0 * H + 24.0 * H);
        return 0;
    }
    case PD_OP_CONV2D:
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D: {
        if (x->rank != 3) {
            snprintf(err, cap, "%s needs a rank-3 input (C, H, W), got %s", pd_op_name(L->op),
                     pd_shape_str(b0, sizeof b0, x));
            return 1;
        }
        int C = x->dim[0], H = x->dim[1], W = x->dim[2];
        if (L->op == PD_OP_AVGPOOL2D && L->global) {
            L->out.rank = 3;
            L->out.dim[0] = C;
            L->out.dim[1] = L->out.dim[2] = 1;
            L->flops_fwd = (double)nin;
            L->flops_bwd = (double)nin;
            return 0;
        }
        int oh = window_out(H, L->kernel[0], L->stride[0], L->padding[0]);
        int ow = window_out(W, L->kernel[1], L->stride[1], L->padding[1]);
        if (oh <= 0 || ow <= 0) {
            snprintf(err, cap, "%s: kernel %dx%d (padding %dx%d) does not fit the input %s",
                     pd_op_name(L->op), L->kernel[0], L->kernel[1], L->padding[0],
                     L->padding[1], pd_shape_str(b0, sizeof b0, x));
            return 1;
        }
        L->out.rank = 3;
        L->out.dim[0] = L->op == PD_OP_CONV2D ? L->out_channels : C;
        L->out.dim[1] = oh;
        L->out.dim[2] = ow;
        double nout = (double)pd_shape_numel(&L->out);
        double window = (double)L->kernel[0] * L->kernel[1];
        if (L->op == PD_OP_CONV2D) {
            /* counted in double first: the int64 product of the attribute limits can overflow */
            double nw = (double)L->out_channels * C * window;
            if (nw > (double)((int64_t)1 << 34)) {
                snprintf(err, cap, "conv2d has too many weights (%.4g)", nw);
                return 1;
            }
            L->n_weight = (int64_t)nw;
            L->n_bias = L->has_bias ? L->out_channels : 0;
            double macs = nout * C * window;
            L->flops_fwd = 2.0 * macs + (L->has_bias ? nout : 0);
            L->flops_bwd = 4.0 * macs + (L->has_bias ? nout : 0);
        } else {
            L->flops_fwd = nout * window;
            L->flops_bwd = (double)nin;
        }
        return 0;
    }
    case PD_OP_RELU:
    case PD_OP_DROPOUT:
        L->out = *x;
        L->flops_fwd = L->flops_bwd = (double)nin;
        return 0;
    case PD_OP_FLATTEN:
        L->out.rank = 1;
        L->out.dim[0] = (int)nin;
        L->out.dim[1] = L->out.dim[2] = 0;
        return 0;
    case PD_OP_BATCHNORM2D:
        if (x->rank != 3) {
            snprintf(err, cap, "batchnorm2d needs a rank-3 input (C, H, W), got %s",
                     pd_shape_str(b0, sizeof b0, x));
            return 1;
        }
        L->out = *x;
        L->n_weight = L->n_bias = x->dim[0];
        L->n_buffer = 2 * (int64_t)x->dim[0];
        L->flops_fwd = 4.0 * (double)nin;
        L->flops_bwd = 8.0 * (double)nin;
        return 0;
    case PD_OP_ADD:
        for (int i = 1; i < L->n_inputs; i++) {
            const pd_shape *y = in[i];
            if (y->rank != x->rank || memcmp(y->dim, x->dim, sizeof(int) * x->rank) != 0) {
                snprintf(err, cap, "add needs inputs of equal shape: input 1 is %s, input %d is "
                         "%s", pd_shape_str(b0, sizeof b0, x), i + 1,
                         pd_shape_str(b1, sizeof b1, y));
                return 1;
            }
        }
        L->out = *x;
        L->flops_fwd = (double)(L->n_inputs - 1) * (double)nin;
        return 0;
    case PD_OP_CONCAT: {
        L->out = *x;
        int64_t total = x->rank == 2 ? x->dim[1] : x->dim[0];
        for (int i = 1; i < L->n_inputs; i++) {
            const pd_shape *y = in[i];
            if (y->rank != x->rank || (x->rank == 3 && (y->dim[1] != x->dim[1] ||
                                                         y->dim[2] != x->dim[2])) ||
                (x->rank == 2 && y->dim[0] != x->dim[0])) {
                snprintf(err, cap, "concat needs inputs of the same rank%s: input 1 is %s, "
                         "input %d is %s", x->rank == 3 ? " and equal H, W" : "",
                         pd_shape_str(b0, sizeof b0, x), i + 1, pd_shape_str(b1, sizeof b1, y));
                return 1;
            }
            total += x->rank == 2 ? y->dim[1] : y->dim[0];
        }
        if (total > 1000000000) {
            snprintf(err, cap, "concat output is too large");
            return 1;
        }
        L->out.dim[x->rank == 2 ? 1 : 0] = (int)total;
        return 0;
    }
    default: snprintf(err, cap, "op %s has no shape rule", pd_op_name(L->op)); return 1;
    }
}

int pd_infer_shapes(pd_model *m, const char *file, pd_diag *d) {
    int errors = 0;
    char err[512], b0[64];
    if (m->n_layers < 1) return 0;
    m->layers[0].out = m->input;
    for (int i = 1; i < m->n_layers; i++) {
        pd_layer *L = &m->layers[i];
        const pd_shape *in[PD_MAX_INPUTS];
        int skip = 0;
        for (int k = 0; k < L->n_inputs; k++) {
            in[k] = &m->layers[L->inputs[k]].out;
            if (in[k]->rank == 0) skip = 1;
        }
        memset(&L->out, 0, sizeof L->out);
        if (skip || L->n_inputs < 1) continue;
        if (infer_layer(L, in, err, sizeof err)) {
            memset(&L->out, 0, sizeof L->out);
            pd_diag_error(d, file, L->line, L->col, "layer '%s': %s", L->name, err);
            errors++;
            continue;
        }
        int64_t n = pd_shape_numel(&L->out);
        if (n <= 0 || n > ((int64_t)1 << 31) || L->n_weight > ((int64_t)1 << 34)) {
            pd_diag_error(d, file, L->line, L->col, "layer '%s': output %s is empty or too large",
                          L->name, pd_shape_str(b0, sizeof b0, &L->out));
            memset(&L->out, 0, sizeof L->out);
            errors++;
        }
    }
    pd_layer *last = &m->layers[m->n_layers - 1];
    if (!errors && m->n_layers > 1 &&
        !(last->out.rank == 1 && last->out.dim[0] == m->classes) &&
        !(last->out.rank == 2 && last->out.dim[1] == m->classes)) {
        pd_diag_error(d, file, last->line, last->col,
                      "the model's output (last layer '%s') has shape %s, but classes is %d: "
                      "it must be (%d), or (tokens, %d) for a sequence model", last->name,
                      pd_shape_str(b0, sizeof b0, &last->out), m->classes, m->classes,
                      m->classes);
        errors++;
    }
    return errors;
}
