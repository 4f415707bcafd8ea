/* test_ops_cuda.c: every GPU op of runtime/cuda/ops_cuda.h, forward and backward, against the
 * CPU op of ops.h / optim.h on fresh random inputs (the seed is printed; PD_TEST_SEED repeats a
 * run), with normwise relative error bounds per precision (fp32 without TF32: 1e-4 for GEMM and
 * convolution, 1e-5 for the rest; bf16 operands: 2e-2). Gradients start from random values on
 * both sides, so the accumulate (+=) contract is checked too; the split backward of zb-h1 and
 * zb-h2 gives the whole backward's bits. Without a GPU every test but the detection test SKIPs. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cpu/ops.h"
#include "runtime/cuda/ops_cuda.h"
#include "runtime/optim.h"
#include "runtime/base/rng.h"
#include "test.h"

static pd_cuda_ctx *g_ctx;
static uint64_t g_seed;
static uint64_t g_draw; /* a fresh stream per buffer */

static void ctx_done(void) { pd_cuda_ctx_destroy(g_ctx); }

/* the shared context, or NULL without a GPU */
static pd_cuda_ctx *ctx(pd_cuda_precision prec) {
    if (pd_gpu_count() <= 0) return NULL;
    if (!g_ctx) {
        g_ctx = pd_cuda_ctx_create(0, PD_CUDA_FP32, (size_t)256 << 20, 0);
        if (g_ctx) atexit(ctx_done);
    }
    if (g_ctx) pd_cuda_ctx_set_precision(g_ctx, prec);
    return g_ctx;
}
#define NEED_GPU(c)                                                     \
    do {                                                                \
        if (!(c)) SKIP("no CUDA GPU (cudaGetDeviceCount failed or 0)"); \
    } while (0)

static void seed_once(void) {
    if (g_seed) return;
    const char *s = getenv("PD_TEST_SEED");
    g_seed = s ? strtoull(s, NULL, 10) : ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20));
    if (!g_seed) g_seed = 1;
    printf("# test_ops_cuda seed %llu (PD_TEST_SEED to repeat)\n", (unsigned long long)g_seed);
}

/* host buffer of n uniform floats in [lo, hi) */
static float *rnd(size_t n, float lo, float hi) {
    seed_once();
    uint64_t key = pd_rng_key(g_seed, PD_RNG_USER, g_draw++, 0, 0);
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * pd_rng_uniform(key, i);
    return h;
}
static float *dup_h(const float *h, size_t n) {
    float *d = malloc((n ? n : 1) * sizeof(float));
    memcpy(d, h, n * sizeof(float));
    return d;
}
static float *to_dev(pd_cuda_ctx *c, const float *h, size_t n) {
    float *d = pd_cuda_alloc(n * sizeof(float));
    pd_cuda_upload(c, d, h, n * sizeof(float));
    return d;
}
static float *from_dev(pd_cuda_ctx *c, const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    pd_cuda_download(c, h, d, n * sizeof(float));
    return h;
}

/* normwise relative error ||got - want|| / max(||want||, 1e-30) */
static double rel_err(const float *got, const float *want, size_t n) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        if (!isfinite(got[i])) return INFINITY;
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return sqrt(num) / (den > 1e-60 ? sqrt(den) : 1e-30);
}
/* compares the device buffer d with the host reference want; frees nothing */
#define CHECK_DEV(c, d, want, n, bound)                                                      \
    do {                                                                                     \
        float *got_ = from_dev((c), (d), (n));                                               \
        double e_ = rel_err(got_, (want), (n));                                              \
        if (!(e_ <= (bound)))                                                                \
            test_fail(__FILE__, __LINE__, "%s: relative error %.3g above %.3g", #d, e_,      \
                      (double)(bound));                                                      \
        free(got_);                                                                          \
    } while (0)

static const double GEMM_BOUND[2] = {1e-4, 2e-2};
static const double EXACT_BOUND = 1e-5;

TEST(gpu_detect_and_context) {
    int n = pd_gpu_count();
    CHECK(n >= 0);
    if (n == 0) {
        /* no GPU: creating a context must fail cleanly, not crash */
        CHECK(pd_cuda_ctx_create(0, PD_CUDA_FP32, 1 << 20, 0) == NULL);
        return;
    }
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    CHECK(c != NULL);
    CHECK(pd_cuda_ctx_stream(c) != NULL);
}

static void linear_case(pd_cuda_precision prec, int B, int C, int OC, int with_bias, int relu) {
    pd_cuda_ctx *c = ctx(prec);
    size_t nx = (size_t)B * C, nw = (size_t)OC * C, ny = (size_t)B * OC;
    float *x = rnd(nx, -1, 1), *w = rnd(nw, -0.5f, 0.5f), *b = with_bias ? rnd(OC, -1, 1) : NULL;
    float *dy = rnd(ny, -1, 1), *dx0 = rnd(nx, -1, 1), *dw0 = rnd(nw, -1, 1), *db0 = rnd(OC, -1, 1);
    float *y = malloc(ny * sizeof(float)), *dx = dup_h(dx0, nx), *dw = dup_h(dw0, nw),
          *db = dup_h(db0, OC);
    pdrt_linear_forward(y, x, w, b, B, C, OC);
    if (relu) pdrt_relu_forward(y, y, ny);
    float *gx = to_dev(c, x, nx), *gw = to_dev(c, w, nw), *gb = b ? to_dev(c, b, OC) : NULL;
    float *gdy = to_dev(c, dy, ny), *gdx = to_dev(c, dx0, nx), *gdw = to_dev(c, dw0, nw),
          *gdb = to_dev(c, db0, OC), *gy = pd_cuda_alloc(ny * sizeof(float));
    float *dpre = dy;
    if (relu) {
        pdrt_linear_relu_forward_cuda(c, gy, gx, gw, gb, B, C, OC);
        /* the reference backward masks with the GPU's output: an output rounded across zero
         * (bf16) must not count against the backward */
        float *yg = from_dev(c, gy, ny);
        dpre = calloc(ny, sizeof(float));
        pdrt_relu_backward(dpre, dy, yg, ny);
        free(yg);
        pdrt_linear_relu_backward_cuda(c, gdx, gdw, b ? gdb : NULL, gdy, gy, gx, gw, B, C, OC);
    } else {
        pdrt_linear_forward_cuda(c, gy, gx, gw, gb, B, C, OC);
        pdrt_linear_backward_cuda(c, gdx, gdw, b ? gdb : NULL, gdy, gx, gw, B, C, OC);
    }
    pdrt_linear_backward(dx, dw, with_bias ? db : NULL, dpre, x, w, B, C, OC);
    CHECK_DEV(c, gy, y, ny, GEMM_BOUND[prec]);
    CHECK_DEV(c, gdx, dx, nx, GEMM_BOUND[prec]);
    CHECK_DEV(c, gdw, dw, nw, GEMM_BOUND[prec]);
    CHECK_DEV(c, gdb, db, OC, EXACT_BOUND);
    pd_cuda_free(gx), pd_cuda_free(gw), pd_cuda_free(gb), pd_cuda_free(gdy), pd_cuda_free(gdx);
    pd_cuda_free(gdw), pd_cuda_free(gdb), pd_cuda_free(gy);
    if (relu) free(dpre);
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0), free(y), free(dx),
        free(dw), free(db);
}

TEST(linear_fp32) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    linear_case(PD_CUDA_FP32, 32, 100, 48, 1, 0);
    linear_case(PD_CUDA_FP32, 7, 33, 10, 0, 0);
}
TEST(linear_bf16) {
    NEED_GPU(ctx(PD_CUDA_BF16));
    linear_case(PD_CUDA_BF16, 64, 256, 128, 1, 0);
}
TEST(linear_relu_fused) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    linear_case(PD_CUDA_FP32, 32, 64, 40, 1, 1);
    linear_case(PD_CUDA_FP32, 16, 64, 32, 0, 1);
    linear_case(PD_CUDA_BF16, 64, 128, 64, 1, 1);
}

static void conv_case(pd_cuda_precision prec, int B, int C, int H, int W, int OC, int KH, int KW,
                      int S, int P, int with_bias, int want_dx) {
    pd_cuda_ctx *c = ctx(prec);
    int OH = pdrt_pool_out_size(H, KH, S, P), OW = pdrt_pool_out_size(W, KW, S, P);
    size_t nx = (size_t)B * C * H * W, nw = (size_t)OC * C * KH * KW, ny = (size_t)B * OC * OH * OW;
    float *x = rnd(nx, -1, 1), *w = rnd(nw, -0.3f, 0.3f), *b = with_bias ? rnd(OC, -1, 1) : NULL;
    float *dy = rnd(ny, -1, 1), *dx0 = rnd(nx, -1, 1), *dw0 = rnd(nw, -1, 1), *db0 = rnd(OC, -1, 1);
    float *y = malloc(ny * sizeof(float)), *dx = dup_h(dx0, nx), *dw = dup_h(dw0, nw),
          *db = dup_h(db0, OC);
    float *scratch = malloc(pdrt_conv2d_scratch_floats(B, C, H, W, OC, KH, KW, S, S, P, P) *
                            sizeof(float));
    pdrt_conv2d_forward(y, scratch, x, w, b, B, C, H, W, OC, KH, KW, S, S, P, P);
    pdrt_conv2d_backward(want_dx ? dx : NULL, dw, b ? db : NULL, scratch, dy, x, w, B, C, H, W, OC, KH,
                    KW, S, S, P, P);
    float *gx = to_dev(c, x, nx), *gw = to_dev(c, w, nw), *gb = b ? to_dev(c, b, OC) : NULL;
    float *gdy = to_dev(c, dy, ny), *gdx = to_dev(c, dx0, nx), *gdw = to_dev(c, dw0, nw),
          *gdb = to_dev(c, db0, OC), *gy = pd_cuda_alloc(ny * sizeof(float));
    pdrt_conv2d_forward_cuda(c, gy, gx, gw, gb, B, C, H, W, OC, KH, KW, S, S, P, P);
    pdrt_conv2d_backward_cuda(c, want_dx ? gdx : NULL, gdw, b ? gdb : NULL, gdy, gx, gw, B, C, H, W,
                         OC, KH, KW, S, S, P, P);
    CHECK_DEV(c, gy, y, ny, GEMM_BOUND[prec]);
    CHECK_DEV(c, gdx, dx, nx, want_dx ? GEMM_BOUND[prec] : 0.0); /* untouched when NULL */
    CHECK_DEV(c, gdw, dw, nw, GEMM_BOUND[prec]);
    CHECK_DEV(c, gdb, db, OC, EXACT_BOUND);
    pd_cuda_free(gx), pd_cuda_free(gw), pd_cuda_free(gb), pd_cuda_free(gdy), pd_cuda_free(gdx);
    pd_cuda_free(gdw), pd_cuda_free(gdb), pd_cuda_free(gy);
    free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(db0), free(y), free(dx),
        free(dw), free(db), free(scratch);
}

TEST(conv2d_fp32) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    conv_case(PD_CUDA_FP32, 4, 8, 16, 16, 16, 3, 3, 1, 1, 1, 1);  /* VGG-like */
    conv_case(PD_CUDA_FP32, 2, 3, 35, 35, 8, 11, 11, 4, 2, 1, 0); /* AlexNet conv1, no dx */
    conv_case(PD_CUDA_FP32, 3, 16, 9, 9, 24, 1, 1, 2, 0, 0, 1);   /* ResNet downsample */
    conv_case(PD_CUDA_FP32, 2, 3, 20, 20, 8, 7, 7, 2, 3, 0, 1);   /* ResNet stem */
}
TEST(conv2d_bf16) {
    NEED_GPU(ctx(PD_CUDA_BF16));
    conv_case(PD_CUDA_BF16, 4, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1);
    conv_case(PD_CUDA_BF16, 2, 32, 9, 9, 16, 1, 1, 2, 0, 0, 1);
}

TEST(relu_identity) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    size_t n = 10007;
    float *x = rnd(n, -1, 1), *dy = rnd(n, -1, 1), *dx0 = rnd(n, -1, 1);
    float *y = malloc(n * sizeof(float)), *dx = dup_h(dx0, n), *dxi = dup_h(dx0, n);
    pdrt_relu_forward(y, x, n);
    pdrt_relu_backward(dx, dy, y, n);
    pdrt_identity_backward(dxi, dy, n);
    float *gx = to_dev(c, x, n), *gdy = to_dev(c, dy, n), *gdx = to_dev(c, dx0, n),
          *gdxi = to_dev(c, dx0, n), *gy = pd_cuda_alloc(n * 4), *gid = pd_cuda_alloc(n * 4);
    pdrt_relu_forward_cuda(c, gy, gx, n);
    pdrt_relu_backward_cuda(c, gdx, gdy, gy, n);
    pdrt_identity_forward_cuda(c, gid, gx, n);
    pdrt_identity_backward_cuda(c, gdxi, gdy, n);
    CHECK_DEV(c, gy, y, n, 0.0);
    CHECK_DEV(c, gdx, dx, n, 0.0);
    CHECK_DEV(c, gid, x, n, 0.0);
    CHECK_DEV(c, gdxi, dxi, n, 0.0);
    pdrt_relu_forward_cuda(c, gx, gx, n); /* in place */
    CHECK_DEV(c, gx, y, n, 0.0);
    pd_cuda_free(gx), pd_cuda_free(gdy), pd_cuda_free(gdx), pd_cuda_free(gdxi), pd_cuda_free(gy),
        pd_cuda_free(gid);
    free(x), free(dy), free(dx0), free(y), free(dx), free(dxi);
}

TEST(gelu) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    size_t n = 10007;
    float *x = rnd(n, -5, 5), *dy = rnd(n, -1, 1), *dx0 = rnd(n, -1, 1);
    float *y = malloc(n * sizeof(float)), *dx = dup_h(dx0, n);
    pdrt_gelu_forward(y, x, n);
    pdrt_gelu_backward(dx, dy, x, n);
    float *gx = to_dev(c, x, n), *gdy = to_dev(c, dy, n), *gdx = to_dev(c, dx0, n),
          *gy = pd_cuda_alloc(n * 4);
    pdrt_gelu_forward_cuda(c, gy, gx, n);
    pdrt_gelu_backward_cuda(c, gdx, gdy, gx, n);
    CHECK_DEV(c, gy, y, n, 1e-5);
    CHECK_DEV(c, gdx, dx, n, 1e-5);
    pd_cuda_free(gx), pd_cuda_free(gdy), pd_cuda_free(gdx), pd_cuda_free(gy);
    free(x), free(dy), free(dx0), free(y), free(dx);
}

/* embedding: the gather and the deterministic scatter-add against the CPU kernels, with
 * repeated ids (rows hit several times) and positions; twice the same bits on the GPU */
TEST(embedding) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    int B = 4, T = 16, V = 11, C = 24;
    size_t nt = (size_t)B * T, ny = nt * (size_t)C, nw = (size_t)V * C, np = (size_t)T * C;
    float *ids = malloc(nt * sizeof(float));
    for (size_t i = 0; i < nt; i++) ids[i] = (float)((i * 7) % (size_t)V);
    float *w = rnd(nw, -1, 1), *pos = rnd(np, -1, 1), *dy = rnd(ny, -1, 1);
    float *dw0 = rnd(nw, -1, 1), *dp0 = rnd(np, -1, 1);
    float *y = malloc(ny * sizeof(float)), *dw = dup_h(dw0, nw), *dp = dup_h(dp0, np);
    pdrt_embedding_forward(y, ids, w, pos, B, T, V, C);
    pdrt_embedding_backward(dw, dp, dy, ids, B, T, V, C);
    float *gids = to_dev(c, ids, nt), *gw = to_dev(c, w, nw), *gp = to_dev(c, pos, np),
          *gdy = to_dev(c, dy, ny), *gdw = to_dev(c, dw0, nw), *gdp = to_dev(c, dp0, np),
          *gy = pd_cuda_alloc(ny * 4);
    pdrt_embedding_forward_cuda(c, gy, gids, gw, gp, B, T, V, C);
    pdrt_embedding_backward_cuda(c, gdw, gdp, gdy, gids, B, T, V, C);
    CHECK_DEV(c, gy, y, ny, 1e-6);
    CHECK_DEV(c, gdw, dw, nw, 1e-5);
    CHECK_DEV(c, gdp, dp, np, 1e-5);
    { /* the scatter-add sums in the CPU kernel's order: the same bits */
        float *hw = from_dev(c, gdw, nw), *hp = from_dev(c, gdp, np);
        CHECK(!memcmp(hw, dw, nw * 4) && !memcmp(hp, dp, np * 4));
        free(hw), free(hp);
    }
    float *h1 = malloc(nw * 4), *h2 = malloc(nw * 4);
    pd_cuda_download(c, h1, gdw, nw * 4);
    pd_cuda_upload(c, gdw, dw0, nw * 4);
    pdrt_embedding_backward_cuda(c, gdw, NULL, gdy, gids, B, T, V, C);
    pd_cuda_download(c, h2, gdw, nw * 4);
    CHECK(!memcmp(h1, h2, nw * 4));
    pd_cuda_free(gids), pd_cuda_free(gw), pd_cuda_free(gp), pd_cuda_free(gdy);
    pd_cuda_free(gdw), pd_cuda_free(gdp), pd_cuda_free(gy);
    free(ids), free(w), free(pos), free(dy), free(dw0), free(dp0), free(y), free(dw), free(dp);
    free(h1), free(h2);
}

/* embedding backward on GPT-2's vocabulary: a few rows hit many times, most never; the same
 * bits as the CPU's scatter-add (its cost follows the tokens, not V * tokens) */
TEST(embedding_large_vocabulary) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    int B = 4, T = 256, V = 50257, C = 64;
    size_t nt = (size_t)B * T, ny = nt * (size_t)C, nw = (size_t)V * C;
    float *ids = malloc(nt * sizeof(float)), *u = rnd(nt, 0, 1);
    for (size_t i = 0; i < nt; i++) /* half the tokens among 5 ids, the rest anywhere */
        ids[i] = (float)(u[i] < 0.5f ? (int)(u[i] * 10.0f) * 9973 % V : (int)(u[i] * (V - 1)));
    float *dy = rnd(ny, -1, 1), *dw0 = rnd(nw, -1, 1), *dw = dup_h(dw0, nw);
    pdrt_embedding_backward(dw, NULL, dy, ids, B, T, V, C);
    float *gids = to_dev(c, ids, nt), *gdy = to_dev(c, dy, ny), *gdw = to_dev(c, dw0, nw);
    pdrt_embedding_backward_cuda(c, gdw, NULL, gdy, gids, B, T, V, C);
    float *h = from_dev(c, gdw, nw);
    CHECK(!memcmp(h, dw, nw * 4));
    pd_cuda_free(gids), pd_cuda_free(gdy), pd_cuda_free(gdw);
    free(ids), free(u), free(dy), free(dw0), free(dw), free(h);
}

static void pool_case(int maxpool, int B, int C, int H, int W, int K, int S, int P) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    int OH = pdrt_pool_out_size(H, K, S, P), OW = pdrt_pool_out_size(W, K, S, P);
    size_t nx = (size_t)B * C * H * W, ny = (size_t)B * C * OH * OW;
    float *x = rnd(nx, -1, 1), *dy = rnd(ny, -1, 1), *dx0 = rnd(nx, -1, 1);
    /* ties: round a quarter of the inputs to a coarse grid */
    for (size_t i = 0; i < nx; i += 4) x[i] = roundf(x[i] * 2.0f) * 0.5f;
    float *y = malloc(ny * sizeof(float)), *dx = dup_h(dx0, nx);
    int *am = malloc(ny * sizeof(int));
    float *gx = to_dev(c, x, nx), *gdy = to_dev(c, dy, ny), *gdx = to_dev(c, dx0, nx),
          *gy = pd_cuda_alloc(ny * 4);
    int *gam = pd_cuda_alloc(ny * sizeof(int));
    if (maxpool) {
        pdrt_maxpool2d_forward(y, am, x, B, C, H, W, K, K, S, S, P, P);
        pdrt_maxpool2d_backward(dx, dy, am, B, C, H, W, K, K, S, S, P, P);
        pdrt_maxpool2d_forward_cuda(c, gy, gam, gx, B, C, H, W, K, K, S, S, P, P);
        pdrt_maxpool2d_backward_cuda(c, gdx, gdy, gam, B, C, H, W, K, K, S, S, P, P);
        int *ham = malloc(ny * sizeof(int));
        pd_cuda_download(c, ham, gam, ny * sizeof(int));
        CHECK(memcmp(ham, am, ny * sizeof(int)) == 0);
        free(ham);
    } else {
        pdrt_avgpool2d_forward(y, x, B, C, H, W, K, K, S, S, P, P);
        pdrt_avgpool2d_backward(dx, dy, B, C, H, W, K, K, S, S, P, P);
        pdrt_avgpool2d_forward_cuda(c, gy, gx, B, C, H, W, K, K, S, S, P, P);
        pdrt_avgpool2d_backward_cuda(c, gdx, gdy, B, C, H, W, K, K, S, S, P, P);
    }
    CHECK_DEV(c, gy, y, ny, EXACT_BOUND);
    CHECK_DEV(c, gdx, dx, nx, EXACT_BOUND);
    pd_cuda_free(gx), pd_cuda_free(gdy), pd_cuda_free(gdx), pd_cuda_free(gy), pd_cuda_free(gam);
    free(x), free(dy), free(dx0), free(y), free(dx), free(am);
}
TEST(maxpool2d) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    pool_case(1, 2, 3, 13, 13, 3, 2, 0); /* AlexNet: overlapping windows */
    pool_case(1, 2, 4, 8, 8, 2, 2, 0);   /* VGG */
    pool_case(1, 2, 3, 11, 11, 3, 2, 1); /* ResNet stem: padded */
}
TEST(avgpool2d) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    pool_case(0, 2, 5, 7, 7, 7, 1, 0); /* global */
    pool_case(0, 2, 3, 10, 10, 3, 2, 1);
}

TEST(dropout_same_mask_as_cpu) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    int B = 5;
    size_t N = 3001, n = (size_t)B * N;
    float *x = rnd(n, -1, 1), *dy = rnd(n, -1, 1), *dx0 = rnd(n, -1, 1);
    float *y = malloc(n * 4), *mask = malloc(n * 4), *dx = dup_h(dx0, n);
    pdrt_dropout_forward(y, mask, x, 0.3f, g_seed, 17, 4, 64, B, N);
    pdrt_dropout_backward(dx, dy, mask, n);
    float *gx = to_dev(c, x, n), *gdy = to_dev(c, dy, n), *gdx = to_dev(c, dx0, n),
          *gy = pd_cuda_alloc(n * 4), *gm = pd_cuda_alloc(n * 4);
    pdrt_dropout_forward_cuda(c, gy, gm, gx, 0.3f, g_seed, 17, 4, 64, B, N);
    pdrt_dropout_backward_cuda(c, gdx, gdy, gm, n);
    CHECK_DEV(c, gm, mask, n, 0.0);
    CHECK_DEV(c, gy, y, n, 0.0);
    CHECK_DEV(c, gdx, dx, n, 0.0);
    pd_cuda_free(gx), pd_cuda_free(gdy), pd_cuda_free(gdx), pd_cuda_free(gy), pd_cuda_free(gm);
    free(x), free(dy), free(dx0), free(y), free(mask), free(dx);
}

TEST(batchnorm2d) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    int B = 4, C = 6, H = 7, W = 5;
    size_t n = (size_t)B * C * H * W;
    float *x = rnd(n, -2, 3), *g = rnd(C, 0.5f, 1.5f), *be = rnd(C, -1, 1), *dy = rnd(n, -1, 1);
    float *rm0 = rnd(C, -1, 1), *rv0 = rnd(C, 0.5f, 2), *dx0 = rnd(n, -1, 1), *dg0 = rnd(C, -1, 1),
          *db0 = rnd(C, -1, 1);
    float *y = malloc(n * 4), *sm = malloc(C * 4), *sr = malloc(C * 4), *rm = dup_h(rm0, C),
          *rv = dup_h(rv0, C), *dx = dup_h(dx0, n), *dg = dup_h(dg0, C), *db = dup_h(db0, C),
          *ye = malloc(n * 4);
    pdrt_batchnorm2d_forward(y, sm, sr, rm, rv, x, g, be, 0.1f, 1e-5f, B, C, H, W);
    pdrt_batchnorm2d_backward(dx, dg, db, dy, x, g, sm, sr, B, C, H, W);
    pdrt_batchnorm2d_forward_eval(ye, x, g, be, rm, rv, 1e-5f, B, C, H, W);
    float *gx = to_dev(c, x, n), *gg = to_dev(c, g, C), *gbe = to_dev(c, be, C),
          *gdy = to_dev(c, dy, n), *grm = to_dev(c, rm0, C), *grv = to_dev(c, rv0, C),
          *gdx = to_dev(c, dx0, n), *gdg = to_dev(c, dg0, C), *gdb = to_dev(c, db0, C),
          *gy = pd_cuda_alloc(n * 4), *gsm = pd_cuda_alloc(C * 4), *gsr = pd_cuda_alloc(C * 4),
          *gye = pd_cuda_alloc(n * 4);
    pdrt_batchnorm2d_forward_cuda(c, gy, gsm, gsr, grm, grv, gx, gg, gbe, 0.1f, 1e-5f, B, C, H, W);
    pdrt_batchnorm2d_backward_cuda(c, gdx, gdg, gdb, gdy, gx, gg, gsm, gsr, B, C, H, W);
    pdrt_batchnorm2d_forward_eval_cuda(c, gye, gx, gg, gbe, grm, grv, 1e-5f, B, C, H, W);
    CHECK_DEV(c, gy, y, n, 1e-5);
    CHECK_DEV(c, gsm, sm, C, 1e-5);
    CHECK_DEV(c, gsr, sr, C, 1e-5);
    CHECK_DEV(c, grm, rm, C, 1e-5);
    CHECK_DEV(c, grv, rv, C, 1e-5);
    CHECK_DEV(c, gdx, dx, n, 1e-4);
    CHECK_DEV(c, gdg, dg, C, 1e-5);
    CHECK_DEV(c, gdb, db, C, 1e-5);
    CHECK_DEV(c, gye, ye, n, 1e-5);
    /* NULL input gradient: parameter gradients still accumulate */
    pdrt_batchnorm2d_backward(NULL, dg, db, dy, x, g, sm, sr, B, C, H, W);
    pdrt_batchnorm2d_backward_cuda(c, NULL, gdg, gdb, gdy, gx, gg, gsm, gsr, B, C, H, W);
    CHECK_DEV(c, gdg, dg, C, 1e-5);
    CHECK_DEV(c, gdb, db, C, 1e-5);
    float *ptrs[] = {gx, gg, gbe, gdy, grm, grv, gdx, gdg, gdb, gy, gsm, gsr, gye};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) pd_cuda_free(ptrs[i]);
    float *hp[] = {x, g, be, dy, rm0, rv0, dx0, dg0, db0, y, sm, sr, rm, rv, dx, dg, db, ye};
    for (size_t i = 0; i < sizeof hp / sizeof *hp; i++) free(hp[i]);
}

TEST(add_and_concat) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    enum { NI = 10 };
    size_t N = 4099;
    float *in[NI], *gin[NI], *din[NI], *gdin[NI];
    for (int i = 0; i < NI; i++) {
        in[i] = rnd(N, -1, 1);
        gin[i] = to_dev(c, in[i], N);
        din[i] = rnd(N, -1, 1);
        gdin[i] = to_dev(c, din[i], N);
    }
    float *dy = rnd(N, -1, 1), *gdy = to_dev(c, dy, N), *y = malloc(N * 4),
          *gy = pd_cuda_alloc(N * 4);
    for (int n = 3; n <= NI; n += NI - 3) { /* 3 inputs, then 10 (more than one launch) */
        pdrt_add_forward(y, (const float *const *)in, n, N);
        pdrt_add_forward_cuda(c, gy, (const float *const *)gin, n, N);
        CHECK_DEV(c, gy, y, N, 1e-6);
    }
    float *dsel[NI], *gdsel[NI];
    for (int i = 0; i < NI; i++) dsel[i] = i == 1 ? NULL : din[i], gdsel[i] = i == 1 ? NULL : gdin[i];
    pdrt_add_backward(dsel, dy, 3, N);
    pdrt_add_backward_cuda(c, gdsel, gdy, 3, N);
    CHECK_DEV(c, gdin[0], din[0], N, 0.0);
    CHECK_DEV(c, gdin[2], din[2], N, 0.0);
    /* concat of 3 inputs with 2, 5, 3 channels, HW = 7, B = 4 (sizes fit inside N) */
    int ch[3] = {2, 5, 3}, B = 4, HW = 7;
    size_t total = (size_t)B * 10 * HW;
    float *cy = malloc(total * 4), *gcy = pd_cuda_alloc(total * 4), *cdy = rnd(total, -1, 1),
          *gcdy = to_dev(c, cdy, total);
    pdrt_concat_forward(cy, (const float *const *)in, ch, 3, B, HW);
    pdrt_concat_forward_cuda(c, gcy, (const float *const *)gin, ch, 3, B, HW);
    CHECK_DEV(c, gcy, cy, total, 0.0);
    pdrt_concat_backward(dsel, cdy, ch, 3, B, HW);
    pdrt_concat_backward_cuda(c, gdsel, gcdy, ch, 3, B, HW);
    CHECK_DEV(c, gdin[0], din[0], N, 0.0);
    CHECK_DEV(c, gdin[2], din[2], N, 0.0);
    CHECK_DEV(c, gdin[1], din[1], N, 0.0); /* NULL entry: untouched */
    for (int i = 0; i < NI; i++) free(in[i]), free(din[i]), pd_cuda_free(gin[i]), pd_cuda_free(gdin[i]);
    free(dy), free(y), free(cy), free(cdy);
    pd_cuda_free(gdy), pd_cuda_free(gy), pd_cuda_free(gcy), pd_cuda_free(gcdy);
}

TEST(softmax_cross_entropy_and_correct) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    int B = 37, K = 1000;
    size_t n = (size_t)B * K;
    float *z = rnd(n, -8, 8), *dz = malloc(n * 4);
    int *lab = malloc(B * sizeof(int));
    float *u = rnd(B, 0, 1);
    for (int b = 0; b < B; b++) lab[b] = (int)(u[b] * K) % K;
    lab[0] = 0;
    for (int k = 0; k < K; k++) z[k] = k == 0 ? 50.0f : z[k]; /* row 0 predicted right */
    float loss = pdrt_softmax_cross_entropy(dz, z, lab, B, K);
    int right = pdrt_count_correct(z, lab, B, K);
    float *gz = to_dev(c, z, n), *gdz = pd_cuda_alloc(n * 4);
    int *glab = pd_cuda_alloc(B * sizeof(int));
    pd_cuda_upload(c, glab, lab, B * sizeof(int));
    float gloss = pdrt_softmax_cross_entropy_cuda(c, gdz, gz, glab, B, K);
    CHECK_CLOSE(gloss, loss, 1e-6, 1e-5);
    CHECK_DEV(c, gdz, dz, n, 1e-5);
    CHECK_EQ_INT(pdrt_count_correct_cuda(c, gz, glab, B, K), right);
    CHECK(right >= 1);
    pd_cuda_free(gz), pd_cuda_free(gdz), pd_cuda_free(glab);
    free(z), free(dz), free(lab), free(u);
}

TEST(optimizers) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    size_t n = 5003;
    pd_optim opts[3] = {{.kind = PD_OPTIM_SGD, .lr = 0.1f, .weight_decay = 1e-4f},
                        {.kind = PD_OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .weight_decay = 5e-4f},
                        {.kind = PD_OPTIM_ADAM, .lr = 1e-3f, .weight_decay = 1e-2f, .beta1 = 0.9f,
                         .beta2 = 0.999f, .eps = 1e-8f}};
    for (int o = 0; o < 3; o++) {
        size_t ns = pd_optim_state_floats(&opts[o], n);
        float *w = rnd(n, -1, 1), *st = calloc(ns ? ns : 1, 4), *gw = to_dev(c, w, n);
        float *gst = pd_cuda_alloc((ns ? ns : 1) * 4);
        pd_cuda_zero(c, gst, (ns ? ns : 1) * 4);
        for (int t = 1; t <= 3; t++) {
            float *g = rnd(n, -1, 1), *gg = to_dev(c, g, n);
            pd_optim_step(w, st, g, &opts[o], t, n);
            pd_optim_step_cuda(c, gw, gst, gg, &opts[o], t, n);
            pd_cuda_free(gg);
            free(g);
        }
        CHECK_DEV(c, gw, w, n, 1e-6);
        if (ns) CHECK_DEV(c, gst, st, ns, 1e-6);
        pd_cuda_free(gw), pd_cuda_free(gst);
        free(w), free(st);
    }
}

/* AdamW with a decay mask (spans), warm-up and cosine schedule, against optim.c over 6 steps */
TEST(adamw_spans_and_schedule) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    size_t n = 4099;
    pd_optim_span spans[3] = {{0, 2000, 1}, {2000, 99, 0}, {2099, 2000, 1}};
    pd_optim o = {.kind = PD_OPTIM_ADAMW, .lr = 3e-3f, .weight_decay = 0.1f, .beta1 = 0.9f,
                  .beta2 = 0.99f, .eps = 1e-8f, .warmup_iters = 2, .lr_decay_iters = 5,
                  .min_lr = 1e-4f, .spans = spans, .n_spans = 3};
    size_t ns = pd_optim_state_floats(&o, n);
    float *w = rnd(n, -1, 1), *st = calloc(ns, 4), *gw = to_dev(c, w, n);
    float *gst = pd_cuda_alloc(ns * 4);
    pd_cuda_zero(c, gst, ns * 4);
    for (int t = 1; t <= 6; t++) {
        float *g = rnd(n, -1, 1), *gg = to_dev(c, g, n);
        pd_optim_step(w, st, g, &o, t, n);
        pd_optim_step_cuda(c, gw, gst, gg, &o, t, n);
        pd_cuda_free(gg);
        free(g);
    }
    CHECK_DEV(c, gw, w, n, 1e-6);
    CHECK_DEV(c, gst, st, ns, 1e-6);
    pd_cuda_free(gw), pd_cuda_free(gst);
    free(w), free(st);
}

/* clipping's squared norm: the CPU's value (to double rounding), and the same bits twice */
TEST(sq_norm) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    size_t sizes[4] = {1, 255, 5003, ((size_t)1 << 20) + 3};
    for (int k = 0; k < 4; k++) {
        size_t n = sizes[k];
        float *g = rnd(n, -2, 2), *gg = to_dev(c, g, n);
        double want = pd_sq_norm(g, n), got = pd_sq_norm_cuda(c, gg, n);
        double again = pd_sq_norm_cuda(c, gg, n);
        if (!(fabs(got - want) <= 1e-12 * want))
            test_fail(__FILE__, __LINE__, "n %zu: %.17g, the CPU %.17g", n, got, want);
        CHECK(memcmp(&got, &again, sizeof got) == 0);
        pd_cuda_free(gg);
        free(g);
    }
    CHECK(pd_sq_norm_cuda(c, NULL, 0) == 0.0);
}

TEST(layernorm) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    NEED_GPU(c);
    int N = 37, C = 200; /* rows of B*T tokens; C > the block's 128 threads */
    size_t n = (size_t)N * C;
    float *x = rnd(n, -2, 3), *w = rnd(C, 0.5f, 1.5f), *b = rnd(C, -1, 1), *dy = rnd(n, -1, 1);
    float *dx0 = rnd(n, -1, 1), *dw0 = rnd(C, -1, 1), *db0 = rnd(C, -1, 1);
    float *y = malloc(n * 4), *m = malloc(N * 4), *r = malloc(N * 4), *dx = dup_h(dx0, n),
          *dw = dup_h(dw0, C), *db = dup_h(db0, C);
    pdrt_layernorm_forward(y, m, r, x, w, b, 1e-5f, N, C);
    pdrt_layernorm_backward(dx, dw, db, dy, x, w, m, r, N, C);
    float *gx = to_dev(c, x, n), *gw = to_dev(c, w, C), *gb = to_dev(c, b, C),
          *gdy = to_dev(c, dy, n), *gdx = to_dev(c, dx0, n), *gdw = to_dev(c, dw0, C),
          *gdb = to_dev(c, db0, C), *gy = pd_cuda_alloc(n * 4), *gm = pd_cuda_alloc(N * 4),
          *gr = pd_cuda_alloc(N * 4);
    pdrt_layernorm_forward_cuda(c, gy, gm, gr, gx, gw, gb, 1e-5f, N, C);
    pdrt_layernorm_backward_cuda(c, gdx, gdw, gdb, gdy, gx, gw, gm, gr, N, C);
    CHECK_DEV(c, gy, y, n, 1e-5);
    CHECK_DEV(c, gm, m, N, 1e-5);
    CHECK_DEV(c, gr, r, N, 1e-5);
    CHECK_DEV(c, gdx, dx, n, 1e-4);
    CHECK_DEV(c, gdw, dw, C, 1e-5);
    CHECK_DEV(c, gdb, db, C, 1e-5);
    /* NULL input gradient: parameter gradients still accumulate */
    pdrt_layernorm_backward(NULL, dw, db, dy, x, w, m, r, N, C);
    pdrt_layernorm_backward_cuda(c, NULL, gdw, gdb, gdy, gx, gw, gm, gr, N, C);
    CHECK_DEV(c, gdw, dw, C, 1e-5);
    CHECK_DEV(c, gdb, db, C, 1e-5);
    float *ptrs[] = {gx, gw, gb, gdy, gdx, gdw, gdb, gy, gm, gr};
    for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) pd_cuda_free(ptrs[i]);
    float *hp[] = {x, w, b, dy, dx0, dw0, db0, y, m, r, dx, dw, db};
    for (size_t i = 0; i < sizeof hp / sizeof *hp; i++) free(hp[i]);
}

static void attention_case(int B, int T, int C, int NH) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    size_t nx = (size_t)B * T * 3 * C, ny = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    CHECK(pdrt_attention_cuda_scratch_bytes(B, T, NH) <= (size_t)256 << 20);
    float *x = rnd(nx, -1.5f, 1.5f), *dy = rnd(ny, -1, 1), *dx0 = rnd(nx, -1, 1);
    float *y = malloc(ny * 4), *att = malloc(na * 4), *dx = dup_h(dx0, nx),
          *scr = malloc(pdrt_attention_scratch_floats(T) * 4);
    pdrt_attention_forward(y, att, x, B, T, C, NH);
    pdrt_attention_backward(dx, scr, dy, x, att, B, T, C, NH);
    float *gx = to_dev(c, x, nx), *gdy = to_dev(c, dy, ny), *gdx = to_dev(c, dx0, nx),
          *gy = pd_cuda_alloc(ny * 4), *gatt = pd_cuda_alloc(na * 4);
    pd_cuda_zero(c, gatt, na * 4);
    pdrt_attention_forward_cuda(c, gy, gatt, gx, B, T, C, NH);
    pdrt_attention_backward_cuda(c, gdx, gdy, gx, gatt, B, T, C, NH);
    CHECK_DEV(c, gy, y, ny, 1e-5);
    CHECK_DEV(c, gatt, att, na, 1e-5);
    CHECK_DEV(c, gdx, dx, nx, 1e-4);
    pd_cuda_free(gx), pd_cuda_free(gdy), pd_cuda_free(gdx), pd_cuda_free(gy), pd_cuda_free(gatt);
    free(x), free(dy), free(dx0), free(y), free(att), free(dx), free(scr);
}

TEST(attention) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    attention_case(2, 5, 8, 2);
    attention_case(3, 130, 48, 4); /* rows longer than the block's 128 threads */
    attention_case(1, 64, 768, 12); /* GPT-2 small's heads */
}

/* lstm: the GPU forward (h, gates, cells) and every gradient against the CPU kernels, one and
 * two directions, with and without biases */
static void lstm_case(int B, int T, int F, int H, int D, int bias) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    int G = 4 * H;
    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * D * H, nwi = (size_t)D * G * F,
           nwh = (size_t)D * G * H, nb = (size_t)D * G, ng = (size_t)D * B * T * G,
           nc = (size_t)D * B * T * 2 * H; /* c and tanh(c) */
    CHECK(pdrt_lstm_cuda_scratch_bytes(B, T, H) <= (size_t)256 << 20);
    float *x = rnd(nx, -1.5f, 1.5f), *wi = rnd(nwi, -0.5f, 0.5f), *wh = rnd(nwh, -0.5f, 0.5f),
          *bi = rnd(nb, -0.5f, 0.5f), *bh = rnd(nb, -0.5f, 0.5f), *dy = rnd(ny, -1, 1);
    float *g0[5] = {rnd(nx, -1, 1), rnd(nwi, -1, 1), rnd(nwh, -1, 1), rnd(nb, -1, 1),
                    rnd(nb, -1, 1)};
    size_t len[5] = {nx, nwi, nwh, nb, nb};
    float *y = malloc(ny * 4), *gates = malloc(ng * 4), *cell = malloc(nc * 4),
          *scr = malloc(pdrt_lstm_scratch_floats(B, T, H) * 4), *g[5], *dg[5];
    for (int k = 0; k < 5; k++) g[k] = dup_h(g0[k], len[k]), dg[k] = to_dev(c, g0[k], len[k]);
    pdrt_lstm_forward(y, gates, cell, x, wi, wh, bias ? bi : NULL, bias ? bh : NULL, B, T, F, H,
                      D);
    pdrt_lstm_backward(g[0], g[1], g[2], bias ? g[3] : NULL, bias ? g[4] : NULL, scr, dy, y, x,
                       wi, wh, gates, cell, B, T, F, H, D);
    float *gx = to_dev(c, x, nx), *gwi = to_dev(c, wi, nwi), *gwh = to_dev(c, wh, nwh),
          *gbi = to_dev(c, bi, nb), *gbh = to_dev(c, bh, nb), *gdy = to_dev(c, dy, ny),
          *gy = pd_cuda_alloc(ny * 4), *ggates = pd_cuda_alloc(ng * 4),
          *gcell = pd_cuda_alloc(nc * 4);
    pdrt_lstm_forward_cuda(c, gy, ggates, gcell, gx, gwi, gwh, bias ? gbi : NULL,
                           bias ? gbh : NULL, B, T, F, H, D);
    pdrt_lstm_backward_cuda(c, dg[0], dg[1], dg[2], bias ? dg[3] : NULL, bias ? dg[4] : NULL,
                            gdy, gy, gx, gwi, gwh, ggates, gcell, B, T, F, H, D);
    CHECK_DEV(c, gy, y, ny, 1e-5);
    CHECK_DEV(c, ggates, gates, ng, 1e-5);
    CHECK_DEV(c, gcell, cell, nc, 1e-5);
    for (int k = 0; k < 5; k++) CHECK_DEV(c, dg[k], g[k], len[k], 1e-4);
    float *dev[] = {gx, gwi, gwh, gbi, gbh, gdy, gy, ggates, gcell};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) pd_cuda_free(dev[i]);
    for (int k = 0; k < 5; k++) pd_cuda_free(dg[k]), free(g[k]), free(g0[k]);
    free(x), free(wi), free(wh), free(bi), free(bh), free(dy), free(y), free(gates), free(cell);
    free(scr);
}

TEST(lstm) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    lstm_case(2, 5, 3, 4, 1, 1);
    lstm_case(3, 7, 20, 17, 2, 1); /* bidirectional, sizes off the 16-wide tiles */
    lstm_case(2, 3, 4, 2, 1, 0);   /* no biases */
    lstm_case(32, 16, 128, 256, 1, 1); /* the character model's first layer, shorter */
}

/* the two-input attention: GPU probabilities, output and both gradients against the CPU's */
static void cross_attention_case(int B, int Tq, int Tk, int C, int NH) {
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    size_t nq = (size_t)B * Tq * C, nkv = (size_t)B * Tk * 2 * C, na = (size_t)B * NH * Tq * Tk;
    CHECK(pdrt_cross_attention_cuda_scratch_bytes(B, Tq, Tk, NH) <= (size_t)256 << 20);
    float *q = rnd(nq, -1.5f, 1.5f), *kv = rnd(nkv, -1.5f, 1.5f), *dy = rnd(nq, -1, 1),
          *dq0 = rnd(nq, -1, 1), *dkv0 = rnd(nkv, -1, 1);
    float *y = malloc(nq * 4), *att = malloc(na * 4), *dq = dup_h(dq0, nq), *dkv = dup_h(dkv0, nkv),
          *scr = malloc(pdrt_cross_attention_scratch_floats(Tq, Tk) * 4);
    pdrt_cross_attention_forward(y, att, q, kv, B, Tq, Tk, C, NH);
    pdrt_cross_attention_backward(dq, dkv, scr, dy, q, kv, att, B, Tq, Tk, C, NH);
    float *gq = to_dev(c, q, nq), *gkv = to_dev(c, kv, nkv), *gdy = to_dev(c, dy, nq),
          *gdq = to_dev(c, dq0, nq), *gdkv = to_dev(c, dkv0, nkv), *gy = pd_cuda_alloc(nq * 4),
          *gatt = pd_cuda_alloc(na * 4);
    pdrt_cross_attention_forward_cuda(c, gy, gatt, gq, gkv, B, Tq, Tk, C, NH);
    pdrt_cross_attention_backward_cuda(c, gdq, gdkv, gdy, gq, gkv, gatt, B, Tq, Tk, C, NH);
    CHECK_DEV(c, gy, y, nq, 1e-5);
    CHECK_DEV(c, gatt, att, na, 1e-5);
    CHECK_DEV(c, gdq, dq, nq, 1e-4);
    CHECK_DEV(c, gdkv, dkv, nkv, 1e-4);
    float *dev[] = {gq, gkv, gdy, gdq, gdkv, gy, gatt};
    for (size_t i = 0; i < sizeof dev / sizeof *dev; i++) pd_cuda_free(dev[i]);
    free(q), free(kv), free(dy), free(dq0), free(dkv0), free(y), free(att), free(dq), free(dkv);
    free(scr);
}

TEST(cross_attention) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    cross_attention_case(2, 5, 7, 8, 2);
    cross_attention_case(3, 40, 130, 48, 4); /* key rows longer than the block's 128 threads */
    cross_attention_case(2, 50, 50, 1024, 8); /* GNMT-8's width and sentence length */
}

/* ---- the split backward of zb-h1 and zb-h2 (planner/ops/op.h, backward_splits) ----
 * Each op whose descriptor splits: its backward with every gradient, and the same from the same
 * pre-filled gradients in two calls, the input gradient alone (the weights' NULL) then the
 * weights' alone (the input's NULL), give the same bits. */
typedef struct {
    const float *dy, *x, *w, *aux0, *aux1; /* aux: linear_relu's output; the norms' mean, rstd */
    int B, C, H, W, OC, K;
} split_args;
typedef void (*split_fn)(pd_cuda_ctx *c, float *dx, float *dw, float *db, const split_args *u);
static void split_linear(pd_cuda_ctx *c, float *dx, float *dw, float *db, const split_args *u) {
    pdrt_linear_backward_cuda(c, dx, dw, db, u->dy, u->x, u->w, u->B, u->C, u->OC);
}
static void split_linear_relu(pd_cuda_ctx *c, float *dx, float *dw, float *db, const split_args *u) {
    pdrt_linear_relu_backward_cuda(c, dx, dw, db, u->dy, u->aux0, u->x, u->w, u->B, u->C, u->OC);
}
static void split_conv(pd_cuda_ctx *c, float *dx, float *dw, float *db, const split_args *u) {
    pdrt_conv2d_backward_cuda(c, dx, dw, db, u->dy, u->x, u->w, u->B, u->C, u->H, u->W, u->OC,
                              u->K, u->K, 1, 1, u->K / 2, u->K / 2);
}
static void split_bn(pd_cuda_ctx *c, float *dx, float *dw, float *db, const split_args *u) {
    pdrt_batchnorm2d_backward_cuda(c, dx, dw, db, u->dy, u->x, u->w, u->aux0, u->aux1, u->B, u->C,
                                   u->H, u->W);
}
static void split_ln(pd_cuda_ctx *c, float *dx, float *dw, float *db, const split_args *u) {
    pdrt_layernorm_backward_cuda(c, dx, dw, db, u->dy, u->x, u->w, u->aux0, u->aux1, u->B, u->C);
}

static void split_case(pd_cuda_ctx *c, const char *name, split_fn f, const split_args *u,
                       size_t nx, size_t nw, size_t nb) {
    size_t n[3] = {nx, nw, nb};
    float *h[3], *whole[3], *part[3];
    for (int i = 0; i < 3; i++) {
        h[i] = rnd(n[i], -1, 1);
        whole[i] = to_dev(c, h[i], n[i]);
        part[i] = to_dev(c, h[i], n[i]);
    }
    f(c, whole[0], whole[1], whole[2], u);
    f(c, part[0], NULL, NULL, u); /* backward_input's call */
    f(c, NULL, part[1], part[2], u); /* backward_weight's */
    for (int i = 0; i < 3; i++) {
        float *a = from_dev(c, whole[i], n[i]), *b = from_dev(c, part[i], n[i]);
        if (memcmp(a, b, n[i] * sizeof(float)))
            test_fail(__FILE__, __LINE__, "%s: the split backward's %s gradient differs from the "
                      "whole backward's (relative %.3g)", name, i ? (i == 1 ? "weight" : "bias")
                      : "input", rel_err(b, a, n[i]));
        free(a), free(b), free(h[i]), pd_cuda_free(whole[i]), pd_cuda_free(part[i]);
    }
}

TEST(split_backward_same_bits) {
    NEED_GPU(ctx(PD_CUDA_FP32));
    int B = 8, C = 24, H = 9, W = 7, OC = 16, K = 3, N = 37, LC = 200;
    size_t nx = (size_t)B * C * H * W, ny = (size_t)B * OC * H * W;
    float *x = rnd(nx > (size_t)N * LC ? nx : (size_t)N * LC, -1, 1), *dy = rnd(ny + nx + N * LC, -1, 1);
    float *w = rnd((size_t)OC * C * K * K + LC, -0.5f, 0.5f), *m = rnd(N + C, -0.5f, 0.5f),
          *r = rnd(N + C, 0.5f, 2.0f), *out = rnd((size_t)B * OC, -1, 1);
    float *gx = to_dev(ctx(PD_CUDA_FP32), x, nx > (size_t)N * LC ? nx : (size_t)N * LC);
    float *gdy = to_dev(ctx(PD_CUDA_FP32), dy, ny + nx + N * LC);
    float *gw = to_dev(ctx(PD_CUDA_FP32), w, (size_t)OC * C * K * K + LC);
    float *gm = to_dev(ctx(PD_CUDA_FP32), m, N + C), *gr = to_dev(ctx(PD_CUDA_FP32), r, N + C);
    float *gout = to_dev(ctx(PD_CUDA_FP32), out, (size_t)B * OC);
    for (int p = 0; p < 2; p++) {
        pd_cuda_ctx *c = ctx(p ? PD_CUDA_BF16 : PD_CUDA_FP32);
        split_args lin = {gdy, gx, gw, gout, NULL, B, C, 1, 1, OC, 1};
        split_case(c, p ? "linear bf16" : "linear", split_linear, &lin, (size_t)B * C,
                   (size_t)OC * C, OC);
        split_case(c, p ? "linear+relu bf16" : "linear+relu", split_linear_relu, &lin,
                   (size_t)B * C, (size_t)OC * C, OC);
        split_args conv = {gdy, gx, gw, NULL, NULL, B, C, H, W, OC, K};
        split_case(c, p ? "conv2d bf16" : "conv2d", split_conv, &conv, nx,
                   (size_t)OC * C * K * K, OC);
    }
    pd_cuda_ctx *c = ctx(PD_CUDA_FP32);
    split_args bn = {gdy, gx, gw, gm, gr, B, C, H, W, 0, 0};
    split_case(c, "batchnorm2d", split_bn, &bn, nx, C, C);
    split_args ln = {gdy, gx, gw, gm, gr, N, LC, 1, 1, 0, 0};
    split_case(c, "layernorm", split_ln, &ln, (size_t)N * LC, LC, LC);
    pd_cuda_free(gx), pd_cuda_free(gdy), pd_cuda_free(gw), pd_cuda_free(gm), pd_cuda_free(gr);
    pd_cuda_free(gout);
    free(x), free(dy), free(w), free(m), free(r), free(out);
}
