/* test_ops.c: every CPU kernel of runtime/cpu/ops.h against a naive double-precision reference
 * written here: forwards compared value by value, backwards (input and weight gradients) against
 * central finite differences of the reference on the scalar L = sum(w * y), w random. Every
 * gradient buffer is pre-filled with random values first, so the checks also prove that
 * backwards accumulate (+=) rather than overwrite. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/init.h"
#include "runtime/cpu/ops.h"
#include "ref_check.h"
#include "test.h"

/* ---- helpers of this file (ref_check.h has the shared ones) ---- */

/* values with |v| >= 0.1: away from relu kinks */
static void fill_away_from_zero(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = 0.1 + 0.9 * urand();
        a[i] = (float)(urand() < 0.5 ? -v : v);
    }
}
/* distinct values spaced >= 0.05 apart in random order: no maxpool ties */
static void fill_distinct(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(0.05 * (double)i - 0.025 * (double)n);
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(urand() * (double)(i + 1));
        float t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ---- linear ---- */
typedef struct { int B, C, OC; } lin_dims;
static void ref_linear(double *y, double *const *t, const void *vctx) {
    const lin_dims *d = vctx;
    for (int b = 0; b < d->B; b++)
        for (int o = 0; o < d->OC; o++) {
            double s = t[2][o];
            for (int c = 0; c < d->C; c++) s += t[0][b * d->C + c] * t[1][o * d->C + c];
            y[b * d->OC + o] = s;
        }
}

TEST(linear_forward_backward_match_reference) {
    lin_dims d = {3, 7, 5};
    size_t nx = d.B * d.C, nw = d.OC * d.C, ny = d.B * d.OC;
    float *x = falloc(nx), *w = falloc(nw), *bias = falloc(d.OC), *y = falloc(ny),
          *dy = falloc(ny), *dx = falloc(nx), *dw = falloc(nw), *db = falloc(d.OC),
          *px = falloc(nx), *pw = falloc(nw), *pb = falloc(d.OC);
    fill(x, nx, -1, 1); fill(w, nw, -1, 1); fill(bias, d.OC, -1, 1); fill(dy, ny, -1, 1);
    fill(px, nx, -1, 1); fill(pw, nw, -1, 1); fill(pb, d.OC, -1, 1);
    memcpy(dx, px, nx * 4); memcpy(dw, pw, nw * 4); memcpy(db, pb, d.OC * 4);
    pdrt_linear_forward(y, x, w, bias, d.B, d.C, d.OC);
    pdrt_linear_backward(dx, dw, db, dy, x, w, d.B, d.C, d.OC);
    refcase rc = {3, {to_double(x, nx), to_double(w, nw), to_double(bias, d.OC)},
                  {nx, nw, (size_t)d.OC}, ny, ref_linear, &d, to_double(dy, ny)};
    check_forward("linear", y, &rc, __LINE__);
    check_grad("linear", 0, dx, px, &rc, __LINE__);
    check_grad("linear", 1, dw, pw, &rc, __LINE__);
    check_grad("linear", 2, db, pb, &rc, __LINE__);
    /* without bias, and with dinp NULL: the weight gradient is unchanged */
    float *dw2 = falloc(nw);
    memcpy(dw2, pw, nw * 4);
    pdrt_linear_backward(NULL, dw2, NULL, dy, x, w, d.B, d.C, d.OC);
    for (size_t i = 0; i < nw; i++) CHECK(dw2[i] == dw[i]);
    pdrt_linear_forward(y, x, w, NULL, d.B, d.C, d.OC);
    for (int b = 0; b < d.B; b++)
        for (int o = 0; o < d.OC; o++) {
            double s = 0;
            for (int c = 0; c < d.C; c++) s += (double)x[b * d.C + c] * w[o * d.C + c];
            CHECK_CLOSE(y[b * d.OC + o], s, 1e-5, 1e-5);
        }
    refcase_free(&rc);
    free(x); free(w); free(bias); free(y); free(dy); free(dx); free(dw); free(db);
    free(px); free(pw); free(pb); free(dw2);
}

/* ---- conv2d ---- */
typedef struct { int B, C, H, W, OC, KH, KW, SH, SW, PH, PW, OH, OW; } conv_dims;
static void ref_conv(double *y, double *const *t, const void *vctx) {
    const conv_dims *d = vctx;
    for (int b = 0; b < d->B; b++)
        for (int o = 0; o < d->OC; o++)
            for (int oh = 0; oh < d->OH; oh++)
                for (int ow = 0; ow < d->OW; ow++) {
                    double s = t[2][o];
                    for (int c = 0; c < d->C; c++)
                        for (int kh = 0; kh < d->KH; kh++)
                            for (int kw = 0; kw < d->KW; kw++) {
                                int ih = oh * d->SH - d->PH + kh, iw = ow * d->SW - d->PW + kw;
                                if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                                s += t[0][((b * d->C + c) * d->H + ih) * d->W + iw] *
                                     t[1][((o * d->C + c) * d->KH + kh) * d->KW + kw];
                            }
                    y[((b * d->OC + o) * d->OH + oh) * d->OW + ow] = s;
                }
}

static void conv_case(conv_dims d, int line) {
    d.OH = (d.H + 2 * d.PH - d.KH) / d.SH + 1;
    d.OW = (d.W + 2 * d.PW - d.KW) / d.SW + 1;
    CHECK_EQ_INT(pdrt_pool_out_size(d.H, d.KH, d.SH, d.PH), d.OH);
    size_t nx = (size_t)d.B * d.C * d.H * d.W, nw = (size_t)d.OC * d.C * d.KH * d.KW,
           ny = (size_t)d.B * d.OC * d.OH * d.OW;
    size_t ns = pdrt_conv2d_scratch_floats(d.B, d.C, d.H, d.W, d.OC, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW);
    float *x = falloc(nx), *w = falloc(nw), *bias = falloc(d.OC), *y = falloc(ny),
          *dy = falloc(ny), *dx = falloc(nx), *dw = falloc(nw), *db = falloc(d.OC),
          *px = falloc(nx), *pw = falloc(nw), *pb = falloc(d.OC), *scratch = falloc(ns);
    fill(x, nx, -1, 1); fill(w, nw, -1, 1); fill(bias, d.OC, -1, 1); fill(dy, ny, -1, 1);
    fill(px, nx, -1, 1); fill(pw, nw, -1, 1); fill(pb, d.OC, -1, 1);
    fill(scratch, ns, -100, 100); /* garbage: the kernels must not depend on it */
    memcpy(dx, px, nx * 4); memcpy(dw, pw, nw * 4); memcpy(db, pb, d.OC * 4);
    pdrt_conv2d_forward(y, scratch, x, w, bias, d.B, d.C, d.H, d.W, d.OC, d.KH, d.KW, d.SH, d.SW, d.PH,
                   d.PW);
    fill(scratch, ns, -100, 100);
    pdrt_conv2d_backward(dx, dw, db, scratch, dy, x, w, d.B, d.C, d.H, d.W, d.OC, d.KH, d.KW, d.SH,
                    d.SW, d.PH, d.PW);
    refcase rc = {3, {to_double(x, nx), to_double(w, nw), to_double(bias, d.OC)},
                  {nx, nw, (size_t)d.OC}, ny, ref_conv, &d, to_double(dy, ny)};
    char what[128];
    snprintf(what, sizeof what, "conv2d B%d C%d %dx%d OC%d k%dx%d s%dx%d p%dx%d", d.B, d.C, d.H,
             d.W, d.OC, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW);
    check_forward(what, y, &rc, line);
    check_grad(what, 0, dx, px, &rc, line);
    check_grad(what, 1, dw, pw, &rc, line);
    check_grad(what, 2, db, pb, &rc, line);
    /* NULL input gradient and NULL bias gradient leave dweight identical */
    float *dw2 = falloc(nw);
    memcpy(dw2, pw, nw * 4);
    pdrt_conv2d_backward(NULL, dw2, NULL, scratch, dy, x, w, d.B, d.C, d.H, d.W, d.OC, d.KH, d.KW,
                    d.SH, d.SW, d.PH, d.PW);
    for (size_t i = 0; i < nw; i++)
        if (dw2[i] != dw[i]) {
            test_fail(__FILE__, line, "%s: dweight differs when dinp is NULL", what);
            break;
        }
    refcase_free(&rc);
    free(x); free(w); free(bias); free(y); free(dy); free(dx); free(dw); free(db);
    free(px); free(pw); free(pb); free(scratch); free(dw2);
}

/* every geometry through both paths: oneDNN (where the build has it) and im2col + sgemm */
TEST(conv2d_matches_reference_in_many_geometries) {
    for (int dnnl = 1; dnnl >= 0; dnnl--) {
        pdrt_conv2d_use_dnnl(dnnl);
        conv_case((conv_dims){2, 3, 6, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0}, __LINE__);  /* same padding */
        conv_case((conv_dims){2, 2, 7, 7, 3, 3, 3, 2, 2, 1, 1, 0, 0}, __LINE__);  /* stride 2, odd */
        conv_case((conv_dims){1, 3, 7, 6, 2, 3, 2, 2, 1, 1, 0, 0, 0}, __LINE__);  /* non-square */
        conv_case((conv_dims){2, 2, 9, 8, 3, 5, 3, 1, 2, 2, 1, 0, 0}, __LINE__);  /* 5x3, s(1,2) */
        conv_case((conv_dims){3, 4, 5, 5, 2, 1, 1, 1, 1, 0, 0, 0, 0}, __LINE__);  /* 1x1 */
        conv_case((conv_dims){2, 1, 8, 8, 3, 4, 4, 3, 3, 2, 2, 0, 0}, __LINE__);  /* pad 2, stride 3 */
        conv_case((conv_dims){1, 2, 4, 3, 2, 4, 3, 1, 1, 0, 0, 0, 0}, __LINE__);  /* kernel = input */
    }
    pdrt_conv2d_use_dnnl(1);
#ifdef PD_HAVE_DNNL
    CHECK(pdrt_conv2d_dnnl_shapes() >= 7); /* oneDNN really ran them (with and without bias) */
#else
    CHECK(pdrt_conv2d_dnnl_shapes() == 0);
#endif
}

/* ---- relu ---- */
static void ref_relu(double *y, double *const *t, const void *ctx) {
    size_t n = *(const size_t *)ctx;
    for (size_t i = 0; i < n; i++) y[i] = t[0][i] > 0 ? t[0][i] : 0;
}

TEST(relu_forward_backward_and_in_place) {
    size_t n = 57;
    float *x = falloc(n), *y = falloc(n), *dy = falloc(n), *dx = falloc(n), *px = falloc(n);
    fill_away_from_zero(x, n); fill(dy, n, -1, 1); fill(px, n, -1, 1);
    memcpy(dx, px, n * 4);
    pdrt_relu_forward(y, x, n);
    pdrt_relu_backward(dx, dy, y, n);
    refcase rc = {1, {to_double(x, n)}, {n}, n, ref_relu, &n, to_double(dy, n)};
    check_forward("relu", y, &rc, __LINE__);
    check_grad("relu", 0, dx, px, &rc, __LINE__);
    /* in place: same output, and the backward from the output gives the same gradient */
    float *z = falloc(n), *dz = falloc(n);
    memcpy(z, x, n * 4);
    memcpy(dz, px, n * 4);
    pdrt_relu_forward(z, z, n);
    pdrt_relu_backward(dz, dy, z, n);
    for (size_t i = 0; i < n; i++) CHECK(z[i] == y[i] && dz[i] == dx[i]);
    refcase_free(&rc);
    free(x); free(y); free(dy); free(dx); free(px); free(z); free(dz);
}

/* ---- gelu (tanh form) ---- */
static void ref_gelu(double *y, double *const *t, const void *ctx) {
    size_t n = *(const size_t *)ctx;
    for (size_t i = 0; i < n; i++) {
        double x = t[0][i];
        y[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    }
}

TEST(gelu_forward_backward_match_reference) {
    size_t n = 203;
    float *x = falloc(n), *y = falloc(n), *dy = falloc(n), *dx = falloc(n), *px = falloc(n);
    fill(x, n, -4, 4); fill(dy, n, -1, 1); fill(px, n, -1, 1);
    x[0] = 0.0f; x[1] = -12.0f; x[2] = 12.0f; /* the origin and both saturated tails */
    memcpy(dx, px, n * 4);
    pdrt_gelu_forward(y, x, n);
    pdrt_gelu_backward(dx, dy, x, n);
    refcase rc = {1, {to_double(x, n)}, {n}, n, ref_gelu, &n, to_double(dy, n)};
    check_forward("gelu", y, &rc, __LINE__);
    check_grad("gelu", 0, dx, px, &rc, __LINE__);
    CHECK(y[0] == 0.0f && fabsf(y[1]) < 1e-6f && y[2] == 12.0f);
    pdrt_gelu_backward(NULL, dy, x, n); /* no input gradient wanted */
    refcase_free(&rc);
    free(x); free(y); free(dy); free(dx); free(px);
}

/* ---- pooling ---- */
typedef struct { int B, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW; } pool_dims;
static void ref_pool(double *y, double *const *t, const pool_dims *d, int is_max) {
    for (int bc = 0; bc < d->B * d->C; bc++)
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++) {
                double best = -INFINITY, s = 0;
                for (int kh = 0; kh < d->KH; kh++)
                    for (int kw = 0; kw < d->KW; kw++) {
                        int ih = oh * d->SH - d->PH + kh, iw = ow * d->SW - d->PW + kw;
                        if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                        double v = t[0][(bc * d->H + ih) * d->W + iw];
                        if (v > best) best = v;
                        s += v;
                    }
                y[(bc * d->OH + oh) * d->OW + ow] = is_max ? best : s / (d->KH * d->KW);
            }
}
static void ref_maxpool(double *y, double *const *t, const void *ctx) { ref_pool(y, t, ctx, 1); }
static void ref_avgpool(double *y, double *const *t, const void *ctx) { ref_pool(y, t, ctx, 0); }

static void pool_case(pool_dims d, int is_max, int line) {
    d.OH = (d.H + 2 * d.PH - d.KH) / d.SH + 1;
    d.OW = (d.W + 2 * d.PW - d.KW) / d.SW + 1;
    size_t nx = (size_t)d.B * d.C * d.H * d.W, ny = (size_t)d.B * d.C * d.OH * d.OW;
    float *x = falloc(nx), *y = falloc(ny), *dy = falloc(ny), *dx = falloc(nx), *px = falloc(nx);
    int *am = calloc(ny, sizeof(int));
    fill_distinct(x, nx); fill(dy, ny, -1, 1); fill(px, nx, -1, 1);
    memcpy(dx, px, nx * 4);
    if (is_max) {
        pdrt_maxpool2d_forward(y, am, x, d.B, d.C, d.H, d.W, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW);
        pdrt_maxpool2d_backward(dx, dy, am, d.B, d.C, d.H, d.W, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW);
    } else {
        pdrt_avgpool2d_forward(y, x, d.B, d.C, d.H, d.W, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW);
        pdrt_avgpool2d_backward(dx, dy, d.B, d.C, d.H, d.W, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW);
    }
    refcase rc = {1, {to_double(x, nx)}, {nx}, ny, is_max ? ref_maxpool : ref_avgpool, &d,
                  to_double(dy, ny)};
    char what[128];
    snprintf(what, sizeof what, "%s %dx%d k%dx%d s%dx%d p%dx%d", is_max ? "maxpool" : "avgpool",
             d.H, d.W, d.KH, d.KW, d.SH, d.SW, d.PH, d.PW);
    check_forward(what, y, &rc, line);
    check_grad(what, 0, dx, px, &rc, line);
    refcase_free(&rc);
    free(x); free(y); free(dy); free(dx); free(px); free(am);
}

TEST(maxpool2d_matches_reference) {
    pool_case((pool_dims){2, 3, 6, 6, 2, 2, 2, 2, 0, 0, 0, 0}, 1, __LINE__);
    pool_case((pool_dims){2, 2, 7, 5, 3, 3, 2, 2, 1, 1, 0, 0}, 1, __LINE__);
    pool_case((pool_dims){1, 2, 5, 7, 3, 2, 1, 2, 1, 0, 0, 0}, 1, __LINE__);
    pool_case((pool_dims){1, 3, 7, 7, 2, 2, 2, 2, 0, 0, 0, 0}, 1, __LINE__); /* odd: drops edge */
}

TEST(maxpool2d_ties_pick_first_in_window) {
    float x[4] = {1, 1, 1, 1}, y[1], dx[4] = {0, 0, 0, 0}, dy[1] = {1};
    int am[1];
    pdrt_maxpool2d_forward(y, am, x, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0);
    pdrt_maxpool2d_backward(dx, dy, am, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0);
    CHECK(am[0] == 0 && dx[0] == 1 && dx[1] == 0 && dx[2] == 0 && dx[3] == 0);
    /* padding is -infinity, not zero: all-negative inputs keep their maximum */
    float xn[4] = {-3, -2, -5, -4}, yn[4];
    int amn[4];
    pdrt_maxpool2d_forward(yn, amn, xn, 1, 1, 2, 2, 2, 2, 2, 2, 1, 1); /* out 2x2, one input each */
    CHECK(yn[0] == -3 && yn[1] == -2 && yn[2] == -5 && yn[3] == -4);
}

/* The overwriting backwards codegen calls where a gradient is first written: the bits of zeroing
 * it and then the accumulating backward (signed zeros included), on shapes the fast path takes
 * (2x2 tiles, and widths off the 4-lane step) and ones it leaves to zeroing (odd, padded). */
TEST(relu_and_maxpool_backward_set_and_fused_pool_equal_the_separate_ops) {
    size_t n = 61;
    float *y = falloc(n), *dy = falloc(n), *a = falloc(n), *b = falloc(n);
    fill(y, n, -1, 1); fill(dy, n, -1, 1);
    dy[3] = -0.0f; y[3] = 1; dy[5] = -0.0f; y[5] = -1;
    memset(a, 0, n * 4);
    pdrt_relu_backward(a, dy, y, n);
    fill(b, n, -5, 5); /* garbage the set must overwrite */
    pdrt_relu_backward_set(b, dy, y, n);
    CHECK(!memcmp(a, b, n * 4));
    free(y); free(dy); free(a); free(b);
    const int dims[][7] = {{2, 3, 6, 6, 2, 2, 0}, {1, 2, 6, 10, 2, 2, 0}, {1, 3, 7, 7, 2, 2, 0},
                           {2, 2, 7, 5, 3, 2, 1}};
    for (size_t t = 0; t < sizeof dims / sizeof dims[0]; t++) {
        int B = dims[t][0], C = dims[t][1], H = dims[t][2], W = dims[t][3], K = dims[t][4],
            S = dims[t][5], P = dims[t][6];
        int OH = pdrt_pool_out_size(H, K, S, P), OW = pdrt_pool_out_size(W, K, S, P);
        size_t nx = (size_t)B * C * H * W, ny = (size_t)B * C * OH * OW;
        float *x = falloc(nx), *o = falloc(ny), *g = falloc(ny), *za = falloc(nx), *zb = falloc(nx);
        int *am = malloc(ny * sizeof *am);
        fill(x, nx, -1, 1); fill(g, ny, -1, 1);
        g[0] = -0.0f;
        pdrt_maxpool2d_forward(o, am, x, B, C, H, W, K, K, S, S, P, P);
        memset(za, 0, nx * 4);
        pdrt_maxpool2d_backward(za, g, am, B, C, H, W, K, K, S, S, P, P);
        fill(zb, nx, -5, 5);
        pdrt_maxpool2d_backward_set(zb, g, am, B, C, H, W, K, K, S, S, P, P);
        CHECK(!memcmp(za, zb, nx * 4));
        /* relu then maxpool as one call, and its backward into relu's input gradient: the bits
         * of the two ops (relu's output and its gradient never written) */
        float *r = falloc(nx), *dr = falloc(nx), *o2 = falloc(ny);
        int *am2 = malloc(ny * sizeof *am2);
        x[1] = -0.0f;
        pdrt_relu_forward(r, x, nx);
        pdrt_maxpool2d_forward(o, am, r, B, C, H, W, K, K, S, S, P, P);
        pdrt_relu_maxpool2d_forward(o2, am2, x, B, C, H, W, K, K, S, S, P, P);
        CHECK(!memcmp(o, o2, ny * 4));
        memset(dr, 0, nx * 4);
        pdrt_maxpool2d_backward(dr, g, am, B, C, H, W, K, K, S, S, P, P);
        memset(za, 0, nx * 4);
        pdrt_relu_backward(za, dr, r, nx);
        fill(zb, nx, -5, 5);
        pdrt_maxpool2d_backward_set(zb, g, am2, B, C, H, W, K, K, S, S, P, P);
        CHECK(!memcmp(za, zb, nx * 4));
        free(r); free(dr); free(o2); free(am2);
        free(x); free(o); free(g); free(za); free(zb); free(am);
    }
}

TEST(avgpool2d_matches_reference_including_global) {
    pool_case((pool_dims){2, 3, 6, 6, 2, 2, 2, 2, 0, 0, 0, 0}, 0, __LINE__);
    pool_case((pool_dims){2, 2, 7, 5, 3, 3, 2, 2, 1, 1, 0, 0}, 0, __LINE__); /* pad counts */
    pool_case((pool_dims){1, 2, 5, 7, 3, 2, 1, 2, 1, 0, 0, 0}, 0, __LINE__);
    pool_case((pool_dims){3, 4, 7, 5, 7, 5, 1, 1, 0, 0, 0, 0}, 0, __LINE__); /* global */
}

/* ---- identity (flatten) ---- */
TEST(identity_copies_and_accumulates) {
    float x[5] = {1, 2, 3, 4, 5}, y[5], dx[5] = {1, 1, 1, 1, 1}, dy[5] = {5, 4, 3, 2, 1};
    pdrt_identity_forward(y, x, 5);
    pdrt_identity_backward(dx, dy, 5);
    for (int i = 0; i < 5; i++) CHECK(y[i] == x[i] && dx[i] == 1 + dy[i]);
}

/* ---- dropout ---- */
static void ref_mask_mul(double *y, double *const *t, const void *ctx) {
    size_t n = *(const size_t *)ctx;
    for (size_t i = 0; i < n; i++) y[i] = t[0][i] * t[1][i];
}

TEST(dropout_is_inverted_keyed_and_differentiable) {
    int B = 8;
    size_t N = 500, n = B * N;
    float p = 0.3f;
    float *x = falloc(n), *y = falloc(n), *mask = falloc(n), *dy = falloc(n), *dx = falloc(n),
          *px = falloc(n), *y2 = falloc(n), *mask2 = falloc(n);
    fill(x, n, -1, 1); fill(dy, n, -1, 1); fill(px, n, -1, 1);
    memcpy(dx, px, n * 4);
    pdrt_dropout_forward(y, mask, x, p, 42, 7, 3, 0, B, N);
    pdrt_dropout_backward(dx, dy, mask, n);
    size_t dropped = 0;
    int values_ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (mask[i] == 0) dropped++;
        else if (fabsf(mask[i] - 1 / (1 - p)) > 1e-6f) values_ok = 0;
        if (y[i] != x[i] * mask[i]) values_ok = 0;
    }
    CHECK(values_ok);
    double frac = (double)dropped / n; /* 4000 draws: sd ~ 0.007 */
    CHECK(frac > p - 0.04 && frac < p + 0.04);
    /* gradient: y = x * mask elementwise (mask fixed) */
    refcase rc = {2, {to_double(x, n), to_double(mask, n)}, {n, n}, n, ref_mask_mul, &n,
                  to_double(dy, n)};
    check_grad("dropout", 0, dx, px, &rc, __LINE__);
    refcase_free(&rc);
    /* same keys: same mask; row b with sample0 = 0 is row b-1 with sample0 = 1 */
    pdrt_dropout_forward(y2, mask2, x, p, 42, 7, 3, 0, B, N);
    CHECK(memcmp(mask, mask2, n * 4) == 0);
    pdrt_dropout_forward(y2, mask2, x + N, p, 42, 7, 3, 1, B - 1, N);
    CHECK(memcmp(mask + N, mask2, (n - N) * 4) == 0);
    /* another step, layer or seed: another mask */
    pdrt_dropout_forward(y2, mask2, x, p, 42, 8, 3, 0, B, N);
    CHECK(memcmp(mask, mask2, n * 4) != 0);
    pdrt_dropout_forward(y2, mask2, x, p, 42, 7, 4, 0, B, N);
    CHECK(memcmp(mask, mask2, n * 4) != 0);
    pdrt_dropout_forward(y2, mask2, x, p, 43, 7, 3, 0, B, N);
    CHECK(memcmp(mask, mask2, n * 4) != 0);
    /* p = 0 is the identity */
    pdrt_dropout_forward(y2, mask2, x, 0.0f, 42, 7, 3, 0, B, N);
    CHECK(memcmp(y2, x, n * 4) == 0);
    free(x); free(y); free(mask); free(dy); free(dx); free(px); free(y2); free(mask2);
}

/* ---- batchnorm2d ---- */
typedef struct { int B, C, H, W; double eps; } bn_dims;
static void ref_bn(double *y, double *const *t, const void *vctx) {
    const bn_dims *d = vctx;
    int HW = d->H * d->W;
    double n = (double)d->B * HW;
    for (int c = 0; c < d->C; c++) {
        double s = 0, ss = 0;
        for (int b = 0; b < d->B; b++)
            for (int p = 0; p < HW; p++) s += t[0][(b * d->C + c) * HW + p];
        double mean = s / n;
        for (int b = 0; b < d->B; b++)
            for (int p = 0; p < HW; p++) {
                double v = t[0][(b * d->C + c) * HW + p] - mean;
                ss += v * v;
            }
        double rstd = 1 / sqrt(ss / n + d->eps);
        for (int b = 0; b < d->B; b++)
            for (int p = 0; p < HW; p++) {
                int i = (b * d->C + c) * HW + p;
                y[i] = t[1][c] * (t[0][i] - mean) * rstd + t[2][c];
            }
    }
}

TEST(batchnorm2d_training_forward_backward_and_running_stats) {
    bn_dims d = {3, 4, 3, 5, 1e-5};
    size_t nx = (size_t)d.B * d.C * d.H * d.W;
    float *x = falloc(nx), *y = falloc(nx), *dy = falloc(nx), *dx = falloc(nx), *px = falloc(nx);
    float g[4], bt[4], dg[4], dbt[4], pg[4], pbt[4], mean[4], rstd[4], rm[4], rv[4];
    fill(x, nx, -2, 3); fill(dy, nx, -1, 1); fill(px, nx, -1, 1);
    fill(g, 4, 0.5, 1.5); fill(bt, 4, -1, 1); fill(pg, 4, -1, 1); fill(pbt, 4, -1, 1);
    fill(rm, 4, -1, 1); fill(rv, 4, 0.5, 2);
    float rm0[4], rv0[4];
    memcpy(rm0, rm, sizeof rm); memcpy(rv0, rv, sizeof rv);
    memcpy(dx, px, nx * 4); memcpy(dg, pg, sizeof dg); memcpy(dbt, pbt, sizeof dbt);
    float momentum = 0.1f;
    pdrt_batchnorm2d_forward(y, mean, rstd, rm, rv, x, g, bt, momentum, (float)d.eps, d.B, d.C, d.H,
                        d.W);
    pdrt_batchnorm2d_backward(dx, dg, dbt, dy, x, g, mean, rstd, d.B, d.C, d.H, d.W);
    refcase rc = {3, {to_double(x, nx), to_double(g, 4), to_double(bt, 4)}, {nx, 4, 4}, nx,
                  ref_bn, &d, to_double(dy, nx)};
    check_forward("batchnorm2d", y, &rc, __LINE__);
    check_grad("batchnorm2d", 0, dx, px, &rc, __LINE__);
    check_grad("batchnorm2d", 1, dg, pg, &rc, __LINE__);
    check_grad("batchnorm2d", 2, dbt, pbt, &rc, __LINE__);
    refcase_free(&rc);
    /* running stats: PyTorch's momentum with the unbiased batch variance */
    int HW = d.H * d.W, n = d.B * HW;
    for (int c = 0; c < d.C; c++) {
        double s = 0, ss = 0;
        for (int b = 0; b < d.B; b++)
            for (int p = 0; p < HW; p++) s += x[(b * d.C + c) * HW + p];
        double m = s / n;
        for (int b = 0; b < d.B; b++)
            for (int p = 0; p < HW; p++) ss += pow(x[(b * d.C + c) * HW + p] - m, 2);
        CHECK_CLOSE(rm[c], 0.9 * rm0[c] + 0.1 * m, 1e-5, 1e-5);
        CHECK_CLOSE(rv[c], 0.9 * rv0[c] + 0.1 * ss / (n - 1), 1e-5, 1e-5);
        CHECK_CLOSE(mean[c], m, 1e-5, 1e-5);
        CHECK_CLOSE(rstd[c], 1 / sqrt(ss / n + d.eps), 1e-5, 1e-5);
    }
    /* eval mode uses the running statistics */
    pdrt_batchnorm2d_forward_eval(y, x, g, bt, rm, rv, (float)d.eps, d.B, d.C, d.H, d.W);
    for (size_t i = 0; i < nx; i++) {
        int c = (int)(i / HW) % d.C;
        double want = g[c] * (x[i] - rm[c]) / sqrt(rv[c] + d.eps) + bt[c];
        if (fabs(y[i] - want) > 1e-5 * (1 + fabs(want))) {
            test_fail(__FILE__, __LINE__, "batchnorm eval element %zu: %g vs %g", i, y[i], want);
            break;
        }
    }
    free(x); free(y); free(dy); free(dx); free(px);
}

/* ---- add and concat ---- */
typedef struct { int n; size_t N; } add_dims;
static void ref_add(double *y, double *const *t, const void *vctx) {
    const add_dims *d = vctx;
    for (size_t i = 0; i < d->N; i++) {
        y[i] = 0;
        for (int k = 0; k < d->n; k++) y[i] += t[k][i];
    }
}

TEST(add_of_three_inputs) {
    add_dims d = {3, 40};
    float *x[3], *dx[3], *px[3], *y = falloc(d.N), *dy = falloc(d.N);
    for (int k = 0; k < 3; k++) {
        x[k] = falloc(d.N); dx[k] = falloc(d.N); px[k] = falloc(d.N);
        fill(x[k], d.N, -1, 1); fill(px[k], d.N, -1, 1);
        memcpy(dx[k], px[k], d.N * 4);
    }
    fill(dy, d.N, -1, 1);
    pdrt_add_forward(y, (const float *const *)x, 3, d.N);
    float *dsome[3] = {dx[0], NULL, dx[2]};
    pdrt_add_backward(dsome, dy, 3, d.N);
    pdrt_add_backward((float *const[]){NULL, dx[1], NULL}, dy, 3, d.N);
    refcase rc = {3, {to_double(x[0], d.N), to_double(x[1], d.N), to_double(x[2], d.N)},
                  {d.N, d.N, d.N}, d.N, ref_add, &d, to_double(dy, d.N)};
    check_forward("add", y, &rc, __LINE__);
    for (int k = 0; k < 3; k++) check_grad("add", k, dx[k], px[k], &rc, __LINE__);
    refcase_free(&rc);
    for (int k = 0; k < 3; k++) { free(x[k]); free(dx[k]); free(px[k]); }
    free(y); free(dy);
}

typedef struct { int n, B, HW; int ch[3]; } cat_dims;
static void ref_concat(double *y, double *const *t, const void *vctx) {
    const cat_dims *d = vctx;
    int total = 0;
    for (int k = 0; k < d->n; k++) total += d->ch[k];
    for (int b = 0; b < d->B; b++) {
        int c0 = 0;
        for (int k = 0; k < d->n; k++) {
            for (int c = 0; c < d->ch[k]; c++)
                for (int p = 0; p < d->HW; p++)
                    y[(b * total + c0 + c) * d->HW + p] = t[k][(b * d->ch[k] + c) * d->HW + p];
            c0 += d->ch[k];
        }
    }
}

TEST(concat_along_channels) {
    cat_dims d = {3, 2, 6, {2, 1, 3}};
    size_t len[3], ny = 0;
    float *x[3], *dx[3], *px[3];
    for (int k = 0; k < 3; k++) {
        len[k] = (size_t)d.B * d.ch[k] * d.HW;
        ny += len[k];
        x[k] = falloc(len[k]); dx[k] = falloc(len[k]); px[k] = falloc(len[k]);
        fill(x[k], len[k], -1, 1); fill(px[k], len[k], -1, 1);
        memcpy(dx[k], px[k], len[k] * 4);
    }
    float *y = falloc(ny), *dy = falloc(ny);
    fill(dy, ny, -1, 1);
    pdrt_concat_forward(y, (const float *const *)x, d.ch, 3, d.B, d.HW);
    pdrt_concat_backward(dx, dy, d.ch, 3, d.B, d.HW);
    refcase rc = {3, {to_double(x[0], len[0]), to_double(x[1], len[1]), to_double(x[2], len[2])},
                  {len[0], len[1], len[2]}, ny, ref_concat, &d, to_double(dy, ny)};
    check_forward("concat", y, &rc, __LINE__);
    for (int k = 0; k < 3; k++) check_grad("concat", k, dx[k], px[k], &rc, __LINE__);
    refcase_free(&rc);
    for (int k = 0; k < 3; k++) { free(x[k]); free(dx[k]); free(px[k]); }
    free(y); free(dy);
}

/* ---- softmax cross-entropy ---- */
typedef struct { int B, K; const int *labels; } ce_dims;
static void ref_ce(double *y, double *const *t, const void *vctx) {
    const ce_dims *d = vctx;
    double total = 0;
    for (int b = 0; b < d->B; b++) {
        double s = 0;
        for (int k = 0; k < d->K; k++) s += exp(t[0][b * d->K + k]);
        total += log(s) - t[0][b * d->K + d->labels[b]];
    }
    y[0] = total / d->B;
}

TEST(softmax_cross_entropy_loss_gradient_and_accuracy) {
    int B = 5, K = 7, labels[5] = {0, 6, 3, 3, 1};
    ce_dims d = {B, K, labels};
    float z[35], dz[35];
    fill(z, 35, -3, 3);
    float loss = pdrt_softmax_cross_entropy(dz, z, labels, B, K);
    double one = 1;
    refcase rc = {1, {to_double(z, 35)}, {35}, 1, ref_ce, &d, to_double(&(float){1}, 1)};
    double yref;
    ref_ce(&yref, rc.t, &d);
    CHECK_CLOSE(loss, yref, 1e-6, 1e-6);
    CHECK(pdrt_softmax_cross_entropy(NULL, z, labels, B, K) == loss);
    check_grad("softmax_cross_entropy", 0, dz, NULL, &rc, __LINE__);
    (void)one;
    refcase_free(&rc);
    /* large logits stay finite */
    float big[3] = {1000, 0, -1000}, dbig[3];
    int l0 = 1;
    float lb = pdrt_softmax_cross_entropy(dbig, big, &l0, 1, 3);
    CHECK_CLOSE(lb, 1000, 1e-3, 1e-6);
    CHECK(isfinite(dbig[0]) && isfinite(dbig[2]));
    /* accuracy: argmax with first-maximum ties */
    float a[9] = {0, 2, 1, 5, 5, 0, -1, -2, -3};
    int la[3] = {1, 0, 0}, lb2[3] = {1, 1, 1};
    CHECK_EQ_INT(pdrt_count_correct(a, la, 3, 3), 3);
    CHECK_EQ_INT(pdrt_count_correct(a, lb2, 3, 3), 1);
}

TEST(kernels_are_deterministic) {
    conv_dims d = {4, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 9, 9};
    size_t nx = (size_t)d.B * d.C * d.H * d.W, nw = (size_t)d.OC * d.C * 9,
           ny = (size_t)d.B * d.OC * 81;
    size_t ns = pdrt_conv2d_scratch_floats(d.B, d.C, d.H, d.W, d.OC, 3, 3, 1, 1, 1, 1);
    float *x = falloc(nx), *w = falloc(nw), *y1 = falloc(ny), *y2 = falloc(ny),
          *s = falloc(ns), *dx1 = falloc(nx), *dx2 = falloc(nx), *dw1 = falloc(nw),
          *dw2 = falloc(nw);
    fill(x, nx, -1, 1); fill(w, nw, -1, 1);
    pdrt_conv2d_forward(y1, s, x, w, NULL, d.B, d.C, d.H, d.W, d.OC, 3, 3, 1, 1, 1, 1);
    pdrt_conv2d_backward(dx1, dw1, NULL, s, y1, x, w, d.B, d.C, d.H, d.W, d.OC, 3, 3, 1, 1, 1, 1);
    pdrt_conv2d_forward(y2, s, x, w, NULL, d.B, d.C, d.H, d.W, d.OC, 3, 3, 1, 1, 1, 1);
    pdrt_conv2d_backward(dx2, dw2, NULL, s, y2, x, w, d.B, d.C, d.H, d.W, d.OC, 3, 3, 1, 1, 1, 1);
    CHECK(memcmp(y1, y2, ny * 4) == 0);
    CHECK(memcmp(dx1, dx2, nx * 4) == 0);
    CHECK(memcmp(dw1, dw2, nw * 4) == 0);
    free(x); free(w); free(y1); free(y2); free(s); free(dx1); free(dx2); free(dw1); free(dw2);
}

/* A batch large enough that conv2d works in several im2col blocks (ops_conv.c's
 * PD_CONV_BLOCK_FLOATS) gives what the samples give one at a time. */
TEST(conv2d_blocked_batch_equals_per_sample) {
    int B = 5, C = 64, H = 28, W = 28, OC = 3;
    size_t chw = (size_t)C * H * W, ohw = (size_t)H * W, nw = (size_t)OC * C * 9;
    size_t ns = pdrt_conv2d_scratch_floats(B, C, H, W, OC, 3, 3, 1, 1, 1, 1);
    CHECK(ns < (size_t)(C * 9 + OC) * B * ohw / 2); /* scratch for a block, not the batch */
    float *x = falloc(B * chw), *w = falloc(nw), *bias = falloc(OC), *y = falloc(B * OC * ohw),
          *y1 = falloc(OC * ohw), *s = falloc(ns), *dy = falloc(B * OC * ohw),
          *dx = falloc(B * chw), *dx1 = falloc(chw), *dw = falloc(nw), *dw1 = falloc(nw),
          *db = falloc(OC), *db1 = falloc(OC);
    fill(x, B * chw, -1, 1); fill(w, nw, -1, 1); fill(bias, OC, -1, 1);
    fill(dy, B * OC * ohw, -1, 1);
    pdrt_conv2d_forward(y, s, x, w, bias, B, C, H, W, OC, 3, 3, 1, 1, 1, 1);
    pdrt_conv2d_backward(dx, dw, db, s, dy, x, w, B, C, H, W, OC, 3, 3, 1, 1, 1, 1);
    double worst_y = 0, worst_dx = 0, worst_dw = 0, worst_db = 0;
    double *sum_dw = calloc(nw, sizeof(double)), sum_db[3] = {0, 0, 0};
    for (int b = 0; b < B; b++) {
        memset(dx1, 0, chw * 4);
        memset(dw1, 0, nw * 4);
        memset(db1, 0, OC * 4);
        pdrt_conv2d_forward(y1, s, x + b * chw, w, bias, 1, C, H, W, OC, 3, 3, 1, 1, 1, 1);
        pdrt_conv2d_backward(dx1, dw1, db1, s, dy + b * OC * ohw, x + b * chw, w, 1, C, H, W, OC, 3,
                        3, 1, 1, 1, 1);
        for (size_t i = 0; i < OC * ohw; i++)
            worst_y = fmax(worst_y, fabs(y[b * OC * ohw + i] - y1[i]));
        for (size_t i = 0; i < chw; i++) worst_dx = fmax(worst_dx, fabs(dx[b * chw + i] - dx1[i]));
        for (size_t i = 0; i < nw; i++) sum_dw[i] += dw1[i];
        for (int o = 0; o < OC; o++) sum_db[o] += db1[o];
    }
    for (size_t i = 0; i < nw; i++) worst_dw = fmax(worst_dw, fabs(dw[i] - sum_dw[i]));
    for (int o = 0; o < OC; o++) worst_db = fmax(worst_db, fabs(db[o] - sum_db[o]));
    free(sum_dw);
    CHECK(worst_y < 1e-4 && worst_dx < 1e-4);
    CHECK(worst_dw < 1e-2 && worst_db < 1e-2); /* sums of ~4000 terms of size ~1 */
    /* the weight gradient is really summed over all samples: not just the last block */
    double norm = 0;
    for (size_t i = 0; i < nw; i++) norm += fabs(dw[i]);
    CHECK(norm > 1.0);
    free(x); free(w); free(bias); free(y); free(y1); free(s); free(dy); free(dx); free(dx1);
    free(dw); free(dw1); free(db); free(db1);
}

/* ---- initialisation (init.h) ---- */

TEST(init_is_pytorch_uniform_and_keyed) {
    int C = 50, OC = 40;
    size_t n = (size_t)C * OC;
    float *w = falloc(n), *w2 = falloc(n), *b = falloc(OC), *cw = falloc(8 * 3 * 5 * 5);
    pd_init_linear(w, b, 3, 7, C, OC);
    pd_init_linear(w2, NULL, 3, 7, C, OC);
    CHECK(memcmp(w, w2, n * 4) == 0); /* same keys, same numbers; bias NULL is fine */
    double bound = 1 / sqrt((double)C), lo = 1, hi = -1, mean = 0;
    for (size_t i = 0; i < n; i++) {
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
        mean += w[i] / (double)n;
    }
    CHECK(lo >= -bound && hi <= bound && lo < -0.95 * bound && hi > 0.95 * bound);
    CHECK(fabs(mean) < 0.05 * bound);
    for (int o = 0; o < OC; o++) CHECK(fabs(b[o]) <= bound);
    CHECK(memcmp(w, b, OC * 4) != 0); /* the bias has its own key */
    pd_init_linear(w2, NULL, 3, 8, C, OC);
    CHECK(memcmp(w, w2, n * 4) != 0); /* another layer, other numbers */
    pd_init_linear(w2, NULL, 4, 7, C, OC);
    CHECK(memcmp(w, w2, n * 4) != 0); /* another seed */
    pd_init_conv2d(cw, NULL, 3, 1, 3, 8, 5, 5);
    double cb = 1 / sqrt(75.0), cmax = 0;
    for (int i = 0; i < 8 * 75; i++) cmax = fmax(cmax, fabs(cw[i]));
    CHECK(cmax <= cb && cmax > 0.9 * cb);
    float g[3], be[3], rm[3], rv[3];
    pd_init_batchnorm2d(g, be, rm, rv, 3);
    for (int c = 0; c < 3; c++) CHECK(g[c] == 1 && be[c] == 0 && rm[c] == 0 && rv[c] == 1);
    free(w); free(w2); free(b); free(cw);
}
