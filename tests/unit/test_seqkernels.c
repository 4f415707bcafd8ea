/* test_seqkernels.c: the CPU kernels of the sequence ops (layernorm, attention; runtime/cpu/ops.h)
 * against naive double-precision references written here, forwards value by value and every
 * backward against central differences of the reference (ref_check.h), gradients pre-filled so
 * that accumulation is checked; and the descriptors' rank-2 calls: a linear or concat over a
 * (T, C) sequence runs on B*T rows (PD_ROWS(T)). PD_TEST_VERBOSE=1 prints the errors measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/ops/op.h"
#include "runtime/cpu/ops.h"
#include "ref_check.h"
#include "test.h"

static void report(const char *what, double fwd, const double *rel, int n) {
    if (!getenv("PD_TEST_VERBOSE")) return;
    printf("  %s: forward max abs error %.3g vs the double reference; FD relative errors", what,
           fwd);
    for (int k = 0; k < n; k++) printf(" %.3g", rel[k]);
    printf("\n");
}

/* ---- layernorm ---- */
typedef struct { int N, C; double eps; } ln_dims;

static void ref_layernorm(double *y, double *const *t, const void *vctx) {
    const ln_dims *d = vctx;
    for (int n = 0; n < d->N; n++) {
        const double *x = t[0] + (size_t)n * d->C;
        double m = 0, v = 0;
        for (int c = 0; c < d->C; c++) m += x[c] / d->C;
        for (int c = 0; c < d->C; c++) v += (x[c] - m) * (x[c] - m) / d->C;
        for (int c = 0; c < d->C; c++)
            y[(size_t)n * d->C + c] = t[1][c] * (x[c] - m) / sqrt(v + d->eps) + t[2][c];
    }
}

TEST(layernorm_forward_backward_match_reference) {
    ln_dims d = {6, 10, 1e-5}; /* e.g. B = 2 samples of T = 3 tokens */
    size_t nx = (size_t)d.N * d.C;
    float *x = falloc(nx), *w = falloc(d.C), *b = falloc(d.C), *y = falloc(nx), *dy = falloc(nx),
          *dx = falloc(nx), *dw = falloc(d.C), *db = falloc(d.C), *px = falloc(nx),
          *pw = falloc(d.C), *pb = falloc(d.C), *mean = falloc(d.N), *rstd = falloc(d.N);
    fill(x, nx, -2, 3); fill(w, d.C, 0.5, 1.5); fill(b, d.C, -1, 1); fill(dy, nx, -1, 1);
    fill(px, nx, -1, 1); fill(pw, d.C, -1, 1); fill(pb, d.C, -1, 1);
    memcpy(dx, px, nx * 4); memcpy(dw, pw, d.C * 4); memcpy(db, pb, d.C * 4);
    pdrt_layernorm_forward(y, mean, rstd, x, w, b, (float)d.eps, d.N, d.C);
    pdrt_layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, d.N, d.C);
    refcase rc = {3, {to_double(x, nx), to_double(w, d.C), to_double(b, d.C)},
                  {nx, (size_t)d.C, (size_t)d.C}, nx, ref_layernorm, &d, to_double(dy, nx)};
    double rel[3], fwd = check_forward("layernorm", y, &rc, __LINE__);
    for (int k = 0; k < 3; k++)
        rel[k] = check_grad("layernorm", k, k == 0 ? dx : k == 1 ? dw : db,
                            k == 0 ? px : k == 1 ? pw : pb, &rc, __LINE__);
    report("layernorm (input, weight, bias)", fwd, rel, 3);
    /* each row: mean 0 and variance 1 before the affine part */
    pdrt_layernorm_forward(y, NULL, NULL, x, NULL, NULL, (float)d.eps, d.N, d.C);
    for (int n = 0; n < d.N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < d.C; c++) m += y[n * d.C + c] / d.C;
        for (int c = 0; c < d.C; c++) v += (y[n * d.C + c] - m) * (y[n * d.C + c] - m) / d.C;
        CHECK_CLOSE(m, 0.0, 1e-6, 0);
        CHECK_CLOSE(v, 1.0, 1e-4, 0);
    }
    /* dinp NULL: the parameter gradients are the same */
    float *dw2 = falloc(d.C), *db2 = falloc(d.C);
    memcpy(dw2, pw, d.C * 4); memcpy(db2, pb, d.C * 4);
    pdrt_layernorm_backward(NULL, dw2, db2, dy, x, w, mean, rstd, d.N, d.C);
    for (int c = 0; c < d.C; c++) CHECK(dw2[c] == dw[c] && db2[c] == db[c]);
    refcase_free(&rc);
    free(x); free(w); free(b); free(y); free(dy); free(dx); free(dw); free(db); free(px);
    free(pw); free(pb); free(mean); free(rstd); free(dw2); free(db2);
}

/* ---- attention ---- */
typedef struct { int B, T, C, NH; } att_dims;

/* Naive: every (b, h, i) over j = 0..i, exp and sum in double, no BLAS, no saved state. */
static void ref_attention(double *y, double *const *t, const void *vctx) {
    const att_dims *d = vctx;
    int hs = d->C / d->NH, C3 = 3 * d->C;
    double *s = malloc((size_t)d->T * sizeof(double));
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < d->NH; h++)
            for (int i = 0; i < d->T; i++) {
                const double *q = t[0] + ((size_t)b * d->T + i) * C3 + h * hs;
                double mx = -INFINITY, z = 0;
                for (int j = 0; j <= i; j++) {
                    const double *k = t[0] + ((size_t)b * d->T + j) * C3 + d->C + h * hs;
                    s[j] = 0;
                    for (int e = 0; e < hs; e++) s[j] += q[e] * k[e] / sqrt((double)hs);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= i; j++) z += exp(s[j] - mx);
                for (int e = 0; e < hs; e++) {
                    double acc = 0;
                    for (int j = 0; j <= i; j++)
                        acc += exp(s[j] - mx) / z *
                               t[0][((size_t)b * d->T + j) * C3 + 2 * d->C + h * hs + e];
                    y[((size_t)b * d->T + i) * d->C + h * hs + e] = acc;
                }
            }
    free(s);
}

static void attention_case(att_dims d, int line) {
    size_t nx = (size_t)d.B * d.T * 3 * d.C, ny = (size_t)d.B * d.T * d.C;
    size_t na = (size_t)d.B * d.NH * d.T * d.T;
    float *x = falloc(nx), *y = falloc(ny), *att = falloc(na), *dy = falloc(ny), *dx = falloc(nx),
          *px = falloc(nx), *scr = falloc(pdrt_attention_scratch_floats(d.T));
    fill(x, nx, -1.5, 1.5); fill(dy, ny, -1, 1); fill(px, nx, -1, 1);
    fill(att, na, 5, 6); /* the forward must write every entry, the masked ones as 0 */
    memcpy(dx, px, nx * 4);
    pdrt_attention_forward(y, att, x, d.B, d.T, d.C, d.NH);
    pdrt_attention_backward(dx, scr, dy, x, att, d.B, d.T, d.C, d.NH);
    refcase rc = {1, {to_double(x, nx)}, {nx}, ny, ref_attention, &d, to_double(dy, ny)};
    double rel[1], fwd = check_forward("attention", y, &rc, line);
    rel[0] = check_grad("attention", 0, dx, px, &rc, line);
    char what[96];
    snprintf(what, sizeof what, "attention B=%d T=%d C=%d heads=%d (input)", d.B, d.T, d.C, d.NH);
    report(what, fwd, rel, 1);
    for (size_t r = 0; r < (size_t)d.B * d.NH * d.T; r++) { /* causal rows of probabilities */
        int i = (int)(r % (size_t)d.T);
        double sum = 0;
        for (int j = 0; j < d.T; j++) {
            float p = att[r * d.T + j];
            if (j > i && p != 0.0f) test_fail(__FILE__, line, "att[%zu][%d] = %g", r, j, p);
            sum += p;
        }
        if (fabs(sum - 1) > 1e-5) test_fail(__FILE__, line, "att row %zu sums to %.9g", r, sum);
    }
    /* the same bits again (deterministic), and dinp NULL is a no-op */
    float *y2 = falloc(ny);
    pdrt_attention_forward(y2, att, x, d.B, d.T, d.C, d.NH);
    if (memcmp(y, y2, ny * 4)) test_fail(__FILE__, line, "attention forward not deterministic");
    pdrt_attention_backward(NULL, scr, dy, x, att, d.B, d.T, d.C, d.NH);
    refcase_free(&rc);
    free(x); free(y); free(y2); free(att); free(dy); free(dx); free(px); free(scr);
}

TEST(attention_forward_backward_match_reference) {
    attention_case((att_dims){2, 5, 8, 2}, __LINE__);
    attention_case((att_dims){1, 7, 12, 3}, __LINE__);
    attention_case((att_dims){2, 1, 4, 4}, __LINE__); /* one token, head size 1 */
    attention_case((att_dims){1, 45, 6, 2}, __LINE__); /* row blocks: 32 + 13 */
    attention_case((att_dims){1, 64, 4, 1}, __LINE__); /* two full row blocks */
}

/* ---- the descriptors on sequences ---- */

static const pd_arg *find_arg(const pd_call *c, pd_arg_kind kind) {
    for (int i = 0; i < c->n_args; i++)
        if (c->args[i].kind == kind) return &c->args[i];
    return NULL;
}

TEST(sequence_descriptors_shapes_and_rows) {
    char err[256] = "";
    pd_shape x = {2, {8, 48, 0}}, x1 = {1, {48, 0, 0}};
    const pd_shape *in[2] = {&x, &x};
    pd_layer L = {.op = PD_OP_ATTENTION, .n_inputs = 1, .heads = 4};
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->infer(&L, in, err, sizeof err), 0);
    CHECK(L.out.rank == 2 && L.out.dim[0] == 8 && L.out.dim[1] == 16);
    CHECK_CLOSE(L.flops_fwd, 2.0 * 72 * 16 + 2.5 * 4 * 72, 0, 1e-12);
    pd_tensor t[PD_MAX_OP_TENSORS];
    CHECK_EQ_INT(pd_op_saved(&L, 3, t), 1);
    CHECK_EQ_INT(t[0].floats, 3LL * 4 * 8 * 8);
    L.heads = 5; /* C = 16 */
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->infer(&L, in, err, sizeof err), 1);
    CHECK(strstr(err, "must divide") != NULL);
    const pd_shape *in1[1] = {&x1};
    L.heads = 4;
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->infer(&L, in1, err, sizeof err), 1);
    /* layernorm: parameters [C], saved state per row, not decayed */
    pd_layer N = {.op = PD_OP_LAYERNORM, .n_inputs = 1, .eps = 1e-5};
    CHECK_EQ_INT(pd_op(PD_OP_LAYERNORM)->infer(&N, in, err, sizeof err), 0);
    CHECK_EQ_INT(N.n_weight, 48);
    CHECK_EQ_INT(pd_op_tensors(&N, t), 2);
    CHECK(t[0].decays == 0 && t[1].decays == 0);
    CHECK_EQ_INT(pd_op_saved(&N, 3, t), 2);
    CHECK_EQ_INT(t[0].floats, 24);
    /* linear over (T, F): rows P_B * T of F; over (F): the batch */
    pd_layer Li = {.op = PD_OP_LINEAR, .n_inputs = 1, .out_features = 5, .has_bias = 1};
    pd_call c[4];
    CHECK_EQ_INT(pd_op(PD_OP_LINEAR)->infer(&Li, in, err, sizeof err), 0);
    CHECK_EQ_INT(pd_op_calls(&Li, in, PD_BACKEND_CPU, PD_PHASE_FORWARD, c, 4), 1);
    const pd_arg *r = find_arg(&c[0], PD_ARG_ROWS);
    CHECK(r && r->i == 8 && !find_arg(&c[0], PD_ARG_BATCH));
    CHECK(c[0].args[5].kind == PD_ARG_INT && c[0].args[5].i == 48); /* C */
    CHECK_EQ_INT(pd_op_calls(&Li, in, PD_BACKEND_CUDA, PD_PHASE_SCRATCH, c, 4), 1);
    CHECK(find_arg(&c[0], PD_ARG_ROWS) != NULL);
    CHECK_EQ_INT(pd_op_calls(&Li, in1, PD_BACKEND_CPU, PD_PHASE_BACKWARD, c, 4), 1);
    CHECK(find_arg(&c[0], PD_ARG_BATCH) && !find_arg(&c[0], PD_ARG_ROWS));
    /* concat of (8, 48) and (8, 48): features on B*8 rows */
    pd_layer Ca = {.op = PD_OP_CONCAT, .n_inputs = 2};
    CHECK_EQ_INT(pd_op(PD_OP_CONCAT)->infer(&Ca, in, err, sizeof err), 0);
    CHECK(Ca.out.rank == 2 && Ca.out.dim[0] == 8 && Ca.out.dim[1] == 96);
    CHECK_EQ_INT(pd_op_calls(&Ca, in, PD_BACKEND_CPU, PD_PHASE_FORWARD, c, 4), 1);
    const pd_arg *ch = find_arg(&c[0], PD_ARG_INTS);
    r = find_arg(&c[0], PD_ARG_ROWS);
    CHECK(ch && ch->n == 2 && ch->ints[0] == 48 && ch->ints[1] == 48);
    CHECK(r && r->i == 8 && c[0].args[c[0].n_args - 1].i == 1); /* HW = 1 */
}

/* concat along features on B*T rows, as the descriptor calls it: each token's features joined */
TEST(concat_of_sequences_joins_each_token) {
    int B = 2, T = 3, C0 = 2, C1 = 3;
    float a[12], b[18], y[30], da[12] = {0}, db[18] = {0};
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    for (int i = 0; i < 18; i++) b[i] = 100.0f + (float)i;
    const float *ins[2] = {a, b};
    float *dins[2] = {da, db};
    int ch[2] = {C0, C1};
    pdrt_concat_forward(y, ins, ch, 2, B * T, 1);
    for (int r = 0; r < B * T; r++)
        for (int c = 0; c < C0 + C1; c++)
            CHECK(y[r * 5 + c] == (c < C0 ? a[r * C0 + c] : b[r * C1 + c - C0]));
    pdrt_concat_backward(dins, y, ch, 2, B * T, 1);
    CHECK(memcmp(da, a, sizeof a) == 0 && memcmp(db, b, sizeof b) == 0);
}
