/* test_lstm.c: the lstm op's CPU kernels (runtime/cpu/ops_lstm.c) against a naive double
 * reference written here (the equations of docs/ops.md step by step, no BLAS, no saved state):
 * the forward value by value and every gradient (input, weight_ih, weight_hh, bias_ih, bias_hh)
 * against central differences of the reference (ref_check.h), gradients pre-filled so that
 * accumulation is checked; one and two directions, with and without biases; and the
 * descriptor's shapes, parameter counts, FLOPs and calls; models/lstm_lm.yaml's parameters by
 * hand (docs/formats.md's table). PD_TEST_VERBOSE=1 prints the errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/ops/op.h"
#include "planner/read/frontend.h"
#include "runtime/cpu/ops.h"
#include "ref_check.h"
#include "test.h"

typedef struct {
    int B, T, F, H, D;
    double *other_bias; /* the bias the refcase does not vary (ref_check.h takes 4 tensors) */
    int vary_hh;        /* tensor 3 is bias_hh (else bias_ih) */
} lstm_dims;

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* t[0] x [B][T][F], t[1] w_ih [D][4H][F], t[2] w_hh [D][4H][H], t[3] one bias [D][4H] */
static void ref_lstm(double *y, double *const *t, const void *vctx) {
    const lstm_dims *d = vctx;
    int H = d->H, F = d->F, T = d->T, G = 4 * H;
    const double *bi = d->vary_hh ? d->other_bias : t[3], *bh = d->vary_hh ? t[3] : d->other_bias;
    double *h = calloc((size_t)H, sizeof(double)), *c = calloc((size_t)H, sizeof(double)),
           *a = malloc((size_t)G * sizeof(double));
    for (int dir = 0; dir < d->D; dir++)
        for (int b = 0; b < d->B; b++) {
            memset(h, 0, (size_t)H * sizeof(double));
            memset(c, 0, (size_t)H * sizeof(double));
            for (int s = 0; s < T; s++) {
                int tt = dir ? T - 1 - s : s;
                const double *x = t[0] + ((size_t)b * T + tt) * F;
                for (int k = 0; k < G; k++) {
                    double acc = 0;
                    if (bi) acc += bi[dir * G + k];
                    if (bh) acc += bh[dir * G + k];
                    for (int f = 0; f < F; f++) acc += t[1][((size_t)dir * G + k) * F + f] * x[f];
                    for (int j = 0; j < H; j++) acc += t[2][((size_t)dir * G + k) * H + j] * h[j];
                    a[k] = acc;
                }
                for (int j = 0; j < H; j++) {
                    double i = sig(a[j]), f = sig(a[H + j]), g = tanh(a[2 * H + j]),
                           o = sig(a[3 * H + j]);
                    c[j] = f * c[j] + i * g;
                    h[j] = o * tanh(c[j]);
                    y[((size_t)b * T + tt) * d->D * H + (size_t)dir * H + j] = h[j];
                }
            }
        }
    free(h); free(c); free(a);
}

static void lstm_case(int B, int T, int F, int H, int D, int bias, int line) {
    int G = 4 * H;
    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * D * H, nwi = (size_t)D * G * F,
           nwh = (size_t)D * G * H, nb = (size_t)D * G;
    float *x = falloc(nx), *wi = falloc(nwi), *wh = falloc(nwh), *bi = falloc(nb),
          *bh = falloc(nb), *y = falloc(ny), *dy = falloc(ny), *gates = falloc(D * B * T * G),
          *cell = falloc((size_t)D * B * T * 2 * H), *scr = falloc(pdrt_lstm_scratch_floats(B, T, H));
    float *grad[5], *pre[5];
    size_t len[5] = {nx, nwi, nwh, nb, nb};
    for (int k = 0; k < 5; k++) grad[k] = falloc(len[k]), pre[k] = falloc(len[k]);
    fill(x, nx, -1.5, 1.5); fill(wi, nwi, -0.6, 0.6); fill(wh, nwh, -0.6, 0.6);
    fill(bi, nb, -0.5, 0.5); fill(bh, nb, -0.5, 0.5); fill(dy, ny, -1, 1);
    for (int k = 0; k < 5; k++) {
        fill(pre[k], len[k], -1, 1);
        memcpy(grad[k], pre[k], len[k] * 4);
    }
    const float *pbi = bias ? bi : NULL, *pbh = bias ? bh : NULL;
    pdrt_lstm_forward(y, gates, cell, x, wi, wh, pbi, pbh, B, T, F, H, D);
    pdrt_lstm_backward(grad[0], grad[1], grad[2], bias ? grad[3] : NULL, bias ? grad[4] : NULL,
                       scr, dy, y, x, wi, wh, gates, cell, B, T, F, H, D);
    lstm_dims dm = {B, T, F, H, D, bias ? to_double(bh, nb) : NULL, 0};
    refcase rc = {bias ? 4 : 3, {to_double(x, nx), to_double(wi, nwi), to_double(wh, nwh),
                                 bias ? to_double(bi, nb) : NULL},
                  {nx, nwi, nwh, nb}, ny, ref_lstm, &dm, to_double(dy, ny)};
    char what[96];
    snprintf(what, sizeof what, "lstm B=%d T=%d F=%d H=%d D=%d bias=%d", B, T, F, H, D, bias);
    double rel[5] = {0}, fwd = check_forward(what, y, &rc, line);
    for (int k = 0; k < rc.n; k++)
        if (k == 2 && T == 1) /* one step: h_prev is 0, W_hh has no gradient */
            CHECK(memcmp(grad[2], pre[2], nwh * 4) == 0);
        else
            rel[k] = check_grad(what, k, grad[k], pre[k], &rc, line);
    if (bias) { /* bias_hh: the same case with the other bias varied */
        lstm_dims dh = {B, T, F, H, D, to_double(bi, nb), 1};
        refcase rh = {4, {to_double(x, nx), to_double(wi, nwi), to_double(wh, nwh),
                          to_double(bh, nb)}, {nx, nwi, nwh, nb}, ny, ref_lstm, &dh,
                      to_double(dy, ny)};
        rel[4] = check_grad(what, 3, grad[4], pre[4], &rh, line);
        refcase_free(&rh);
        free(dh.other_bias);
    } else { /* no biases: their gradients untouched */
        CHECK(memcmp(grad[3], pre[3], nb * 4) == 0 && memcmp(grad[4], pre[4], nb * 4) == 0);
    }
    if (getenv("PD_TEST_VERBOSE")) {
        printf("  %s: forward max abs error %.3g; FD relative errors", what, fwd);
        for (int k = 0; k < 5; k++) printf(" %.3g", rel[k]);
        printf("\n");
    }
    /* deterministic, and NULL gradients leave the others as they were */
    float *y2 = falloc(ny), *g2 = falloc(nwh);
    pdrt_lstm_forward(y2, gates, cell, x, wi, wh, pbi, pbh, B, T, F, H, D);
    if (memcmp(y, y2, ny * 4)) test_fail(__FILE__, line, "lstm forward not deterministic");
    memcpy(g2, pre[2], nwh * 4);
    pdrt_lstm_backward(NULL, NULL, g2, NULL, NULL, scr, dy, y, x, wi, wh, gates, cell, B, T, F, H,
                       D);
    if (memcmp(g2, grad[2], nwh * 4)) test_fail(__FILE__, line, "dw_hh alone differs");
    refcase_free(&rc);
    free(dm.other_bias);
    for (int k = 0; k < 5; k++) free(grad[k]), free(pre[k]);
    free(x); free(wi); free(wh); free(bi); free(bh); free(y); free(dy); free(gates); free(cell);
    free(scr); free(y2); free(g2);
}

TEST(lstm_forward_backward_match_reference) {
    lstm_case(2, 5, 3, 4, 1, 1, __LINE__);
    lstm_case(3, 4, 5, 3, 2, 1, __LINE__); /* bidirectional */
    lstm_case(2, 3, 4, 2, 1, 0, __LINE__); /* no biases */
    lstm_case(1, 1, 2, 3, 2, 1, __LINE__); /* one step: no recurrence */
}

TEST(lstm_descriptor_shapes_counts_and_calls) {
    char err[256] = "";
    pd_shape x = {2, {7, 6, 0}}, x1 = {1, {6, 0, 0}};
    const pd_shape *in[1] = {&x};
    pd_layer L = {.op = PD_OP_LSTM, .n_inputs = 1, .out_features = 5, .has_bias = 1};
    CHECK_EQ_INT(pd_op(PD_OP_LSTM)->infer(&L, in, err, sizeof err), 0);
    CHECK(L.out.rank == 2 && L.out.dim[0] == 7 && L.out.dim[1] == 5);
    CHECK_EQ_INT(L.n_weight, 4 * 5 * (6 + 5));
    CHECK_EQ_INT(L.n_bias, 8 * 5);
    CHECK_CLOSE(L.flops_fwd, 7.0 * (8.0 * 5 * 11 + 20.0 * 5), 0, 1e-12);
    pd_tensor t[PD_MAX_OP_TENSORS];
    CHECK_EQ_INT(pd_op_tensors(&L, t), 4);
    CHECK(!strcmp(t[0].name, "weight_ih") && t[0].floats == 120 && t[0].decays);
    CHECK(!strcmp(t[1].name, "weight_hh") && t[1].floats == 100 && t[1].decays);
    CHECK(!strcmp(t[3].name, "bias_hh") && t[3].floats == 20 && !t[3].decays);
    CHECK_EQ_INT(pd_op_saved(&L, 3, t), 2);
    CHECK(t[0].floats == 3 * 7 * 20 && t[1].floats == 3 * 7 * 10); /* c and tanh c */
    L.bidirectional = 1;
    CHECK_EQ_INT(pd_op(PD_OP_LSTM)->infer(&L, in, err, sizeof err), 0);
    CHECK(L.out.dim[1] == 10 && L.n_weight == 2 * 4 * 5 * 11 && L.n_bias == 80);
    CHECK_EQ_INT(pd_op_tensors(&L, t), 4);
    CHECK(t[0].floats == 240 && t[1].floats == 200 && t[2].floats == 40);
    pd_call c[4];
    CHECK_EQ_INT(pd_op_calls(&L, in, PD_BACKEND_CPU, PD_PHASE_BACKWARD, c, 4), 1);
    CHECK(!strcmp(c[0].fn, "pdrt_lstm_backward") && c[0].n_args == 18);
    CHECK(c[0].args[5].kind == PD_ARG_SCRATCH && c[0].args[17].i == 2); /* D */
    CHECK_EQ_INT(pd_op_calls(&L, in, PD_BACKEND_CUDA, PD_PHASE_BACKWARD, c, 4), 1);
    CHECK(!strcmp(c[0].fn, "pdrt_lstm_backward_cuda") && c[0].n_args == 18); /* ctx, no scratch */
    L.has_bias = 0;
    CHECK_EQ_INT(pd_op(PD_OP_LSTM)->infer(&L, in, err, sizeof err), 0);
    CHECK_EQ_INT(pd_op_tensors(&L, t), 4);
    CHECK(t[2].floats == 0 && t[3].floats == 0 && t[0].floats == 240);
    const pd_shape *in1[1] = {&x1};
    CHECK_EQ_INT(pd_op(PD_OP_LSTM)->infer(&L, in1, err, sizeof err), 1);
    CHECK(strstr(err, "rank-2") != NULL);
}

/* models/lstm_lm.yaml: the embedding, three lstm layers (4H(F+H) weights and 8H biases each) and
 * the decoder's own bias (its weight is the embedding's), the tied weight counted once */
TEST(lstm_lm_parameter_count) {
    pd_model m;
    pd_diag d = {.out = stderr};
    CHECK_EQ_INT(pd_model_load("models/lstm_lm.yaml", &m, &d), 0);
    if (d.errors) return;
    int64_t p = 0;
    for (int i = 1; i < m.n_layers; i++)
        p += m.layers[i].n_bias + (m.layers[i].tied_to ? 0 : m.layers[i].n_weight);
    int64_t lstm = (4 * 256 * (128 + 256) + 8 * 256) + (4 * 192 * (256 + 192) + 8 * 192) +
                   (4 * 128 * (192 + 128) + 8 * 128);
    CHECK_EQ_INT(p, 88 * 128 + lstm + 88);
    CHECK_EQ_INT(p, 917080);
    const pd_layer *dec = &m.layers[m.n_layers - 1];
    CHECK(dec->tied_to == 1 && dec->out.rank == 2 && dec->out.dim[0] == 128 && dec->out.dim[1] == 88);
    pd_model_free(&m);
}
