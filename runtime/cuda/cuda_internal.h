/* cuda_internal.h: what the runtime/cuda sources share: the context's layout, error-checking
 * macros, launch geometry and the per-call scratch allocator. Not for generated code. */
#ifndef PD_CUDA_INTERNAL_H
#define PD_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops_cuda.h"

#define PD_CUDA_CHECK(expr)                                                                  \
    do {                                                                                      \
        cudaError_t e_ = (expr);                                                              \
        if (e_ != cudaSuccess) {                                                              \
            fprintf(stderr, "%s:%d: CUDA error %d (%s) in %s\n", __FILE__, __LINE__, (int)e_, \
                    cudaGetErrorString(e_), #expr);                                           \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)
#define PD_CUBLAS_CHECK(expr)                                                                 \
    do {                                                                                      \
        cublasStatus_t s_ = (expr);                                                           \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                                    \
            fprintf(stderr, "%s:%d: cuBLAS status %d in %s\n", __FILE__, __LINE__, (int)s_,  \
                    #expr);                                                                   \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)
#define PD_CUDNN_CHECK(expr)                                                                  \
    do {                                                                                      \
        cudnnStatus_t s_ = (expr);                                                            \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                                     \
            fprintf(stderr, "%s:%d: cuDNN error %d (%s) in %s\n", __FILE__, __LINE__, (int)s_,\
                    cudnnGetErrorString(s_), #expr);                                          \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)
#define PD_CUDA_REQUIRE(cond, msg)                                                            \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: %s (%s)\n", __FILE__, __LINE__, msg, #cond);              \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)
/* after a kernel launch */
#define PD_CUDA_LAUNCHED() PD_CUDA_CHECK(cudaGetLastError())

#define PD_MAX_LT_PLANS 256
#define PD_MAX_CONV_PLANS 256

/* one cached cuBLASLt matmul: descriptors and the heuristic's algorithm for one shape */
typedef struct {
    int key[9]; /* m, n, k, transa, transb, epilogue, a/b type, lda-ish flags */
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
} pd_lt_plan;

/* one cached convolution: descriptors and algorithms for one shape and precision */
typedef struct {
    int key[14];
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgo_t fwd;
    cudnnConvolutionBwdDataAlgo_t bwd_data;
    cudnnConvolutionBwdFilterAlgo_t bwd_filter;
    size_t fwd_ws, bwd_data_ws, bwd_filter_ws;
    int have_bwd;
} pd_conv_plan;

struct pd_cuda_ctx {
    int device;
    pd_cuda_precision prec;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    cudnnHandle_t dnn;
    char *scratch;        /* per-call temporaries */
    size_t scratch_bytes;
    size_t scratch_used;  /* bump pointer, reset at the start of every op */
    void *algo_ws;        /* cuBLASLt / cuDNN workspace */
    size_t algo_ws_bytes;
    float *loss_dev;      /* one float for the synchronous loss */
    int *count_dev;       /* one int for pdrt_count_correct */
    double *norm_dev;     /* PD_NORM_BLOCKS doubles: pd_sq_norm_cuda's partial sums */
    pd_lt_plan lt_plans[PD_MAX_LT_PLANS];
    int n_lt_plans;
    pd_conv_plan conv_plans[PD_MAX_CONV_PLANS];
    int n_conv_plans;
};

#define PD_NORM_BLOCKS 128 /* pd_sq_norm_cuda's fixed grid (optim.cu) */

/* scratch: reset at the start of an op, then take 256-byte-aligned pieces */
static inline void pd_scratch_reset(pd_cuda_ctx *ctx) { ctx->scratch_used = 0; }
static inline void *pd_scratch_take(pd_cuda_ctx *ctx, size_t bytes, const char *file, int line) {
    size_t off = (ctx->scratch_used + 255) & ~(size_t)255;
    if (off + bytes > ctx->scratch_bytes) {
        fprintf(stderr, "%s:%d: CUDA scratch too small: need %zu bytes more, have %zu of %zu "
                        "(size the context with the *_cuda_scratch_bytes functions)\n",
                file, line, bytes, ctx->scratch_bytes - ctx->scratch_used, ctx->scratch_bytes);
        exit(1);
    }
    ctx->scratch_used = off + bytes;
    return ctx->scratch + off;
}
#define PD_SCRATCH(ctx, bytes) pd_scratch_take((ctx), (bytes), __FILE__, __LINE__)
/* round a piece up the way pd_scratch_take does (for the *_scratch_bytes functions) */
static inline size_t pd_scratch_round(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

static inline unsigned pd_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 16u ? 65535u * 16u : (b ? b : 1)); /* grid-stride beyond */
}

/* shared helpers (elementwise.cu) */
void pd_cuda_to_bf16(pd_cuda_ctx *ctx, __nv_bfloat16 *out, const float *inp, size_t n);
void pd_cuda_acc_from_bf16(pd_cuda_ctx *ctx, float *out, const __nv_bfloat16 *inp, size_t n);
/* out[b][c][hw] (+)= inp (bf16 or fp32) + bias[c]: used after bf16 convolution */
void pd_cuda_bf16_to_f32_bias(pd_cuda_ctx *ctx, float *out, const __nv_bfloat16 *inp,
                              const float *bias, int B, int C, size_t HW);
/* dbias[c] += sum over b, hw of dout[b][c][hw] (deterministic) */
void pd_cuda_bias_grad(pd_cuda_ctx *ctx, float *dbias, const float *dout, int B, int C,
                       size_t HW);
/* out[b][c][hw] += bias[c] */
void pd_cuda_add_bias(pd_cuda_ctx *ctx, float *out, const float *bias, int B, int C, size_t HW);
/* out = dout * (y > 0) (writes) */
void pd_cuda_relu_mask(pd_cuda_ctx *ctx, float *out, const float *dout, const float *y,
                       size_t N);

#endif
