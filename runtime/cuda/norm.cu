// norm.cu: batchnorm2d through cuDNN's spatial batch normalisation (training forward with
// running statistics, inference forward, backward accumulating with beta = 1).
#include "cuda_internal.h"

typedef struct {
    cudnnTensorDescriptor_t x, bn;
} bn_desc;

static bn_desc bn_make(int B, int C, int H, int W) {
    bn_desc d;
    PD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d.x));
    PD_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d.bn));
    PD_CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, B, C, H, W));
    PD_CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(d.bn, d.x, CUDNN_BATCHNORM_SPATIAL));
    return d;
}
static void bn_free(bn_desc d) {
    cudnnDestroyTensorDescriptor(d.x);
    cudnnDestroyTensorDescriptor(d.bn);
}

extern "C" size_t pdrt_batchnorm2d_cuda_scratch_bytes(int B, int C, int H, int W) {
    return pd_scratch_round((size_t)B * C * H * W * sizeof(float)) +
           2 * pd_scratch_round((size_t)C * sizeof(float));
}

extern "C" void pdrt_batchnorm2d_forward_cuda(pd_cuda_ctx *ctx, float *out, float *save_mean,
                                         float *save_rstd, float *running_mean,
                                         float *running_var, const float *inp,
                                         const float *gamma, const float *beta, float momentum,
                                         float eps, int B, int C, int H, int W) {
    PD_CUDA_REQUIRE(eps >= (float)CUDNN_BN_MIN_EPSILON, "batchnorm eps below cuDNN's minimum");
    PD_CUDA_REQUIRE((running_mean == NULL) == (running_var == NULL),
                    "running_mean and running_var must both be given or both NULL");
    bn_desc d = bn_make(B, C, H, W);
    float one = 1.0f, zero = 0.0f;
    PD_CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        ctx->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, inp, d.x, out, d.bn, gamma, beta,
        (double)momentum, running_mean, running_var, (double)eps, save_mean, save_rstd));
    bn_free(d);
}

extern "C" void pdrt_batchnorm2d_forward_eval_cuda(pd_cuda_ctx *ctx, float *out, const float *inp,
                                              const float *gamma, const float *beta,
                                              const float *running_mean,
                                              const float *running_var, float eps, int B, int C,
                                              int H, int W) {
    PD_CUDA_REQUIRE(eps >= (float)CUDNN_BN_MIN_EPSILON, "batchnorm eps below cuDNN's minimum");
    bn_desc d = bn_make(B, C, H, W);
    float one = 1.0f, zero = 0.0f;
    PD_CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        ctx->dnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, inp, d.x, out, d.bn, gamma, beta,
        running_mean, running_var, (double)eps));
    bn_free(d);
}

extern "C" void pdrt_batchnorm2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dgamma,
                                          float *dbeta, const float *dout, const float *inp,
                                          const float *gamma, const float *save_mean,
                                          const float *save_rstd, int B, int C, int H, int W) {
    if (!dinp && !dgamma && !dbeta) return;
    pd_scratch_reset(ctx);
    // cuDNN writes all three: NULL ones go to scratch (beta 0 for dx, discarded)
    float one = 1.0f, zero = 0.0f;
    float *dx = dinp, *dg = dgamma, *db = dbeta;
    const float *beta_data = &one;
    if (!dx) {
        dx = (float *)PD_SCRATCH(ctx, (size_t)B * C * H * W * sizeof(float));
        beta_data = &zero;
    }
    if (!dg || !db) {
        float *tmp = (float *)PD_SCRATCH(ctx, (size_t)C * sizeof(float));
        pd_cuda_zero(ctx, tmp, (size_t)C * sizeof(float));
        if (!dg) dg = tmp;
        if (!db) {
            db = (float *)PD_SCRATCH(ctx, (size_t)C * sizeof(float));
            pd_cuda_zero(ctx, db, (size_t)C * sizeof(float));
        }
    }
    bn_desc d = bn_make(B, C, H, W);
    PD_CUDNN_CHECK(cudnnBatchNormalizationBackward(
        ctx->dnn, CUDNN_BATCHNORM_SPATIAL, &one, beta_data, &one, &one, d.x, inp, d.x, dout, d.x,
        dx, d.bn, gamma, dg, db, CUDNN_BN_MIN_EPSILON, save_mean, save_rstd));
    bn_free(d);
}
