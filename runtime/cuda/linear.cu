// linear.cu: linear layers through cuBLASLt (column-major view of row-major tensors, as llm.c):
// forward with the bias (and optionally ReLU) fused into the epilogue, backward as two GEMMs
// accumulating (beta = 1) into dinp and dweight, dbias by a deterministic reduction.
// Matmul descriptors and the heuristic's algorithm are cached per shape in the context.
#include "cuda_internal.h"

#include <string.h>

// lowest set bit of the address, capped at 256: the alignment the heuristic may assume
static int align_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    int al = 256;
    while (al > 4 && (a % (uintptr_t)al) != 0) al >>= 1;
    return al;
}

static pd_lt_plan *lt_plan(pd_cuda_ctx *ctx, int m, int n, int k, int ta, int tb, int lda,
                           int ldb, int bf16, cublasLtEpilogue_t epi, int align) {
    int key[9] = {m, n, k, ta | (tb << 1) | (bf16 << 2), lda, ldb, (int)epi, align, 0};
    for (int i = 0; i < ctx->n_lt_plans; i++)
        if (!memcmp(ctx->lt_plans[i].key, key, sizeof key)) return &ctx->lt_plans[i];
    PD_CUDA_REQUIRE(ctx->n_lt_plans < PD_MAX_LT_PLANS, "too many distinct matmul shapes");
    pd_lt_plan *p = &ctx->lt_plans[ctx->n_lt_plans];
    memcpy(p->key, key, sizeof key);
    cudaDataType_t ab = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    // fp32 without TF32: plain 32F compute
    PD_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    PD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa,
                                                   sizeof opa));
    PD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb,
                                                   sizeof opb));
    PD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                                   sizeof epi));
    if (epi == CUBLASLT_EPILOGUE_BIAS || epi == CUBLASLT_EPILOGUE_RELU_BIAS) {
        cudaDataType_t bt = CUDA_R_32F;
        PD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
            p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    }
    // stored shapes: A is (ta ? k x m : m x k), B is (tb ? n x k : k x n), column-major
    PD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, ab, ta ? k : m, ta ? m : k, lda));
    PD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, ab, tb ? n : k, tb ? k : n, ldb));
    PD_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, m, n, m));
    cublasLtMatmulPreference_t pref;
    PD_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = ctx->algo_ws_bytes;
    PD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    uint32_t al = (uint32_t)align;
    PD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al, sizeof al));
    PD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al, sizeof al));
    PD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al, sizeof al));
    PD_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al, sizeof al));
    cublasLtMatmulHeuristicResult_t res;
    int nres = 0;
    PD_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx->lt, p->desc, p->a, p->b, p->c, p->c,
                                                   pref, 1, &res, &nres));
    cublasLtMatmulPreferenceDestroy(pref);
    if (nres == 0) {
        fprintf(stderr, "%s:%d: cuBLASLt: no heuristic result for m=%d n=%d k=%d epilogue=%d\n",
                __FILE__, __LINE__, m, n, k, (int)epi);
        exit(1);
    }
    p->algo = res.algo;
    ctx->n_lt_plans++;
    return p;
}

// D[m x n] = beta*D + op(A) op(B) (+ epilogue), column-major; A, B fp32 or bf16
static void lt_matmul(pd_cuda_ctx *ctx, float *D, const void *A, const void *B, int m, int n,
                      int k, int ta, int tb, int lda, int ldb, int bf16, cublasLtEpilogue_t epi,
                      const float *bias, float beta) {
    int align = align_of(A);
    int a2 = align_of(B), a3 = align_of(D);
    if (a2 < align) align = a2;
    if (a3 < align) align = a3;
    PD_CUDA_REQUIRE(align >= 16, "cuBLASLt needs 16-byte aligned operands");
    pd_lt_plan *p = lt_plan(ctx, m, n, k, ta, tb, lda, ldb, bf16, epi, align);
    if (bias)
        PD_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                       &bias, sizeof bias));
    float alpha = 1.0f;
    PD_CUBLAS_CHECK(cublasLtMatmul(ctx->lt, p->desc, &alpha, A, p->a, B, p->b, &beta, D, p->c, D,
                                   p->c, &p->algo, ctx->algo_ws, ctx->algo_ws_bytes,
                                   ctx->stream));
}

extern "C" size_t pdrt_linear_cuda_scratch_bytes(pd_cuda_precision prec, int B, int C, int OC) {
    size_t relu = pd_scratch_round((size_t)B * OC * sizeof(float));
    if (prec != PD_CUDA_BF16) return relu;
    size_t h = sizeof(__nv_bfloat16);
    size_t fwd = pd_scratch_round((size_t)B * C * h) + pd_scratch_round((size_t)OC * C * h);
    size_t bwd = fwd + pd_scratch_round((size_t)B * OC * h);
    return relu + (fwd > bwd ? fwd : bwd);
}

static void linear_fwd(pd_cuda_ctx *ctx, float *out, const float *inp, const float *weight,
                       const float *bias, int B, int C, int OC, int relu) {
    if (B <= 0 || OC <= 0) return;
    cublasLtEpilogue_t epi = relu ? (bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU)
                                  : (bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT);
    const void *a = weight, *b = inp;
    int bf16 = ctx->prec == PD_CUDA_BF16;
    if (bf16) {
        __nv_bfloat16 *wb = (__nv_bfloat16 *)PD_SCRATCH(ctx, (size_t)OC * C * 2);
        __nv_bfloat16 *xb = (__nv_bfloat16 *)PD_SCRATCH(ctx, (size_t)B * C * 2);
        pd_cuda_to_bf16(ctx, wb, weight, (size_t)OC * C);
        pd_cuda_to_bf16(ctx, xb, inp, (size_t)B * C);
        a = wb;
        b = xb;
    }
    // out^T [OC x B] = W^T-view... : m = OC, n = B, k = C; A = W stored C x OC (op T)
    lt_matmul(ctx, out, a, b, OC, B, C, 1, 0, C, C, bf16, epi, bias, 0.0f);
}

static void linear_bwd(pd_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                       const float *dout, const float *inp, const float *weight, int B, int C,
                       int OC) {
    if (B <= 0 || OC <= 0 || C <= 0) return;
    int bf16 = ctx->prec == PD_CUDA_BF16;
    const void *w = weight, *x = inp, *dy = dout;
    if (bf16) {
        __nv_bfloat16 *dyb = (__nv_bfloat16 *)PD_SCRATCH(ctx, (size_t)B * OC * 2);
        pd_cuda_to_bf16(ctx, dyb, dout, (size_t)B * OC);
        dy = dyb;
        if (dinp) {
            __nv_bfloat16 *wb = (__nv_bfloat16 *)PD_SCRATCH(ctx, (size_t)OC * C * 2);
            pd_cuda_to_bf16(ctx, wb, weight, (size_t)OC * C);
            w = wb;
        }
        if (dweight) {
            __nv_bfloat16 *xb = (__nv_bfloat16 *)PD_SCRATCH(ctx, (size_t)B * C * 2);
            pd_cuda_to_bf16(ctx, xb, inp, (size_t)B * C);
            x = xb;
        }
    }
    // dinp (C x B) += W (C x OC) * dout (OC x B)
    if (dinp)
        lt_matmul(ctx, dinp, w, dy, C, B, OC, 0, 0, C, OC, bf16, CUBLASLT_EPILOGUE_DEFAULT, NULL,
                  1.0f);
    // dweight (C x OC) += inp (C x B) * dout^T (B x OC)
    if (dweight)
        lt_matmul(ctx, dweight, x, dy, C, OC, B, 0, 1, C, OC, bf16, CUBLASLT_EPILOGUE_DEFAULT,
                  NULL, 1.0f);
    pd_cuda_bias_grad(ctx, dbias, dout, B, OC, 1);
}

extern "C" void pdrt_linear_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp,
                                    const float *weight, const float *bias, int B, int C,
                                    int OC) {
    pd_scratch_reset(ctx);
    linear_fwd(ctx, out, inp, weight, bias, B, C, OC, 0);
}
extern "C" void pdrt_linear_relu_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp,
                                         const float *weight, const float *bias, int B, int C,
                                         int OC) {
    pd_scratch_reset(ctx);
    linear_fwd(ctx, out, inp, weight, bias, B, C, OC, 1);
}
extern "C" void pdrt_linear_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                     const float *dout, const float *inp, const float *weight,
                                     int B, int C, int OC) {
    pd_scratch_reset(ctx);
    linear_bwd(ctx, dinp, dweight, dbias, dout, inp, weight, B, C, OC);
}
extern "C" void pdrt_linear_relu_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight,
                                          float *dbias, const float *dout, const float *out,
                                          const float *inp, const float *weight, int B, int C,
                                          int OC) {
    pd_scratch_reset(ctx);
    float *dpre = (float *)PD_SCRATCH(ctx, (size_t)B * OC * sizeof(float));
    pd_cuda_relu_mask(ctx, dpre, dout, out, (size_t)B * OC);
    linear_bwd(ctx, dinp, dweight, dbias, dpre, inp, weight, B, C, OC);
}
