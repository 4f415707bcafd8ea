/* test_cross_attention.c: the two-input attention (runtime/cpu/ops_cross_attention.c: queries of
 * one sequence over the keys and values of another, non-causal) against a naive double reference
 * written here, the forward value by value and both input gradients against central differences
 * of the reference (ref_check.h), gradients pre-filled so that accumulation is checked, with
 * Tq != Tk; and the attention descriptor's two-input form: shapes, saved state, FLOPs, calls and
 * its shape errors. PD_TEST_VERBOSE=1 prints the errors measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/ops/op.h"
#include "runtime/cpu/ops.h"
#include "ref_check.h"
#include "test.h"

typedef struct { int B, Tq, Tk, C, NH; } xa_dims;

/* t[0] q [B][Tq][C], t[1] kv [B][Tk][2C]: exp and sums in double, no BLAS */
static void ref_cross(double *y, double *const *t, const void *vctx) {
    const xa_dims *d = vctx;
    int hs = d->C / d->NH, C2 = 2 * d->C;
    double *s = malloc((size_t)d->Tk * sizeof(double));
    for (int b = 0; b < d->B; b++)
        for (int h = 0; h < d->NH; h++)
            for (int i = 0; i < d->Tq; i++) {
                const double *q = t[0] + ((size_t)b * d->Tq + i) * d->C + h * hs;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j < d->Tk; j++) {
                    const double *k = t[1] + ((size_t)b * d->Tk + j) * C2 + h * hs;
                    double acc = 0;
                    for (int e = 0; e < hs; e++) acc += q[e] * k[e];
                    s[j] = acc / sqrt((double)hs);
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (int j = 0; j < d->Tk; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < hs; e++) {
                    double acc = 0;
                    for (int j = 0; j < d->Tk; j++)
                        acc += s[j] / sum * t[1][((size_t)b * d->Tk + j) * C2 + d->C + h * hs + e];
                    y[((size_t)b * d->Tq + i) * d->C + h * hs + e] = acc;
                }
            }
    free(s);
}

static void cross_case(xa_dims d, int line) {
    size_t nq = (size_t)d.B * d.Tq * d.C, nkv = (size_t)d.B * d.Tk * 2 * d.C, ny = nq;
    size_t na = (size_t)d.B * d.NH * d.Tq * d.Tk;
    float *q = falloc(nq), *kv = falloc(nkv), *y = falloc(ny), *att = falloc(na),
          *dy = falloc(ny), *dq = falloc(nq), *dkv = falloc(nkv), *pq = falloc(nq),
          *pkv = falloc(nkv), *scr = falloc(pdrt_cross_attention_scratch_floats(d.Tq, d.Tk));
    fill(q, nq, -1.5, 1.5); fill(kv, nkv, -1.5, 1.5); fill(dy, ny, -1, 1);
    fill(pq, nq, -1, 1); fill(pkv, nkv, -1, 1);
    memcpy(dq, pq, nq * 4); memcpy(dkv, pkv, nkv * 4);
    pdrt_cross_attention_forward(y, att, q, kv, d.B, d.Tq, d.Tk, d.C, d.NH);
    pdrt_cross_attention_backward(dq, dkv, scr, dy, q, kv, att, d.B, d.Tq, d.Tk, d.C, d.NH);
    refcase rc = {2, {to_double(q, nq), to_double(kv, nkv)}, {nq, nkv}, ny, ref_cross, &d,
                  to_double(dy, ny)};
    char what[96];
    snprintf(what, sizeof what, "cross attention B=%d Tq=%d Tk=%d C=%d heads=%d", d.B, d.Tq, d.Tk,
             d.C, d.NH);
    double fwd = check_forward(what, y, &rc, line);
    double r0 = check_grad(what, 0, dq, pq, &rc, line), r1 = check_grad(what, 1, dkv, pkv, &rc, line);
    if (getenv("PD_TEST_VERBOSE"))
        printf("  %s: forward max abs error %.3g; FD relative errors %.3g %.3g\n", what, fwd, r0, r1);
    for (size_t r = 0; r < (size_t)d.B * d.NH * d.Tq; r++) { /* every row a distribution */
        double sum = 0;
        for (int j = 0; j < d.Tk; j++) sum += att[r * d.Tk + j];
        if (fabs(sum - 1) > 1e-5) test_fail(__FILE__, line, "att row %zu sums to %.9g", r, sum);
    }
    /* dq NULL: dkv the same; deterministic */
    float *dkv2 = falloc(nkv);
    memcpy(dkv2, pkv, nkv * 4);
    pdrt_cross_attention_backward(NULL, dkv2, scr, dy, q, kv, att, d.B, d.Tq, d.Tk, d.C, d.NH);
    if (memcmp(dkv2, dkv, nkv * 4)) test_fail(__FILE__, line, "dkv alone differs");
    refcase_free(&rc);
    free(q); free(kv); free(y); free(att); free(dy); free(dq); free(dkv); free(pq); free(pkv);
    free(scr); free(dkv2);
}

TEST(cross_attention_forward_backward_match_reference) {
    cross_case((xa_dims){2, 5, 7, 8, 2}, __LINE__);
    cross_case((xa_dims){1, 9, 3, 12, 3}, __LINE__);
    cross_case((xa_dims){2, 1, 2, 4, 4}, __LINE__); /* one query, two keys, head size 1 */
}

TEST(attention_descriptor_two_inputs) {
    char err[256] = "";
    pd_shape q = {2, {6, 16, 0}}, kv = {2, {9, 32, 0}}, bad = {2, {9, 48, 0}}, r1 = {1, {16, 0, 0}};
    const pd_shape *in[2] = {&q, &kv};
    pd_layer L = {.op = PD_OP_ATTENTION, .n_inputs = 2, .heads = 4};
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->max_inputs, 2);
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->infer(&L, in, err, sizeof err), 0);
    CHECK(L.out.rank == 2 && L.out.dim[0] == 6 && L.out.dim[1] == 16 && L.keys == 9);
    CHECK_CLOSE(L.flops_fwd, 4.0 * 54 * 16 + 5.0 * 4 * 54, 0, 1e-12);
    pd_tensor t[PD_MAX_OP_TENSORS];
    CHECK_EQ_INT(pd_op_saved(&L, 3, t), 1);
    CHECK_EQ_INT(t[0].floats, 3LL * 4 * 6 * 9);
    pd_call c[4];
    CHECK_EQ_INT(pd_op_calls(&L, in, PD_BACKEND_CPU, PD_PHASE_BACKWARD, c, 4), 1);
    CHECK(!strcmp(c[0].fn, "pdrt_cross_attention_backward") && !c[0].needs_din);
    CHECK(c[0].args[0].kind == PD_ARG_DIN && c[0].args[0].k == 0);
    CHECK(c[0].args[1].kind == PD_ARG_DIN && c[0].args[1].k == 1);
    CHECK_EQ_INT(pd_op_calls(&L, in, PD_BACKEND_CUDA, PD_PHASE_FORWARD, c, 4), 1);
    CHECK(!strcmp(c[0].fn, "pdrt_cross_attention_forward_cuda"));
    in[1] = &bad; /* kv not 2C wide */
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->infer(&L, in, err, sizeof err), 1);
    CHECK(strstr(err, "(Tk, 2C)") != NULL);
    in[1] = &kv;
    in[0] = &r1; /* queries not a sequence */
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->infer(&L, in, err, sizeof err), 1);
    CHECK(strstr(err, "queries") != NULL);
    in[0] = &q;
    L.heads = 3; /* does not divide 16 */
    CHECK_EQ_INT(pd_op(PD_OP_ATTENTION)->infer(&L, in, err, sizeof err), 1);
    CHECK(strstr(err, "must divide") != NULL);
}
