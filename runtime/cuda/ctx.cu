// ctx.cu: the CUDA context (stream, cuBLASLt and cuDNN handles, scratch and algorithm
// workspace allocated once) and the setup-time memory helpers of ops_cuda.h.
#include "cuda_internal.h"

#include <string.h>

extern "C" pd_cuda_ctx *pd_cuda_ctx_create(int device, pd_cuda_precision prec,
                                           size_t scratch_bytes, size_t algo_ws_bytes) {
    if (pd_gpu_count() <= device) {
        fprintf(stderr, "%s:%d: no CUDA device %d\n", __FILE__, __LINE__, device);
        return NULL;
    }
    pd_cuda_ctx *ctx = (pd_cuda_ctx *)calloc(1, sizeof *ctx);
    PD_CUDA_REQUIRE(ctx != NULL, "out of host memory");
    ctx->device = device;
    ctx->prec = prec;
    PD_CUDA_CHECK(cudaSetDevice(device));
    PD_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    PD_CUBLAS_CHECK(cublasLtCreate(&ctx->lt));
    PD_CUDNN_CHECK(cudnnCreate(&ctx->dnn));
    PD_CUDNN_CHECK(cudnnSetStream(ctx->dnn, ctx->stream));
    ctx->scratch_bytes = scratch_bytes;
    if (scratch_bytes) PD_CUDA_CHECK(cudaMalloc((void **)&ctx->scratch, scratch_bytes));
    ctx->algo_ws_bytes = algo_ws_bytes ? algo_ws_bytes : ((size_t)64 << 20);
    PD_CUDA_CHECK(cudaMalloc(&ctx->algo_ws, ctx->algo_ws_bytes));
    PD_CUDA_CHECK(cudaMalloc((void **)&ctx->loss_dev, sizeof(float)));
    PD_CUDA_CHECK(cudaMalloc((void **)&ctx->count_dev, sizeof(int)));
    PD_CUDA_CHECK(cudaMalloc((void **)&ctx->norm_dev, PD_NORM_BLOCKS * sizeof(double)));
    return ctx;
}

extern "C" void pd_cuda_ctx_destroy(pd_cuda_ctx *ctx) {
    if (!ctx) return;
    PD_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    for (int i = 0; i < ctx->n_lt_plans; i++) {
        pd_lt_plan *p = &ctx->lt_plans[i];
        cublasLtMatrixLayoutDestroy(p->a);
        cublasLtMatrixLayoutDestroy(p->b);
        cublasLtMatrixLayoutDestroy(p->c);
        cublasLtMatmulDescDestroy(p->desc);
    }
    for (int i = 0; i < ctx->n_conv_plans; i++) {
        pd_conv_plan *p = &ctx->conv_plans[i];
        cudnnDestroyTensorDescriptor(p->x);
        cudnnDestroyTensorDescriptor(p->y);
        cudnnDestroyFilterDescriptor(p->w);
        cudnnDestroyConvolutionDescriptor(p->conv);
    }
    cudaFree(ctx->scratch);
    cudaFree(ctx->algo_ws);
    cudaFree(ctx->loss_dev);
    cudaFree(ctx->count_dev);
    cudaFree(ctx->norm_dev);
    cudnnDestroy(ctx->dnn);
    cublasLtDestroy(ctx->lt);
    cudaStreamDestroy(ctx->stream);
    free(ctx);
}

extern "C" void pd_cuda_ctx_set_precision(pd_cuda_ctx *ctx, pd_cuda_precision prec) {
    ctx->prec = prec;
}
extern "C" pd_cuda_precision pd_cuda_ctx_precision(const pd_cuda_ctx *ctx) { return ctx->prec; }
extern "C" void *pd_cuda_ctx_stream(pd_cuda_ctx *ctx) { return (void *)ctx->stream; }
extern "C" void pd_cuda_sync(pd_cuda_ctx *ctx) {
    PD_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}

extern "C" void *pd_cuda_alloc(size_t bytes) {
    void *p = NULL;
    PD_CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    return p;
}
extern "C" void pd_cuda_free(void *p) {
    if (p) PD_CUDA_CHECK(cudaFree(p));
}
extern "C" void pd_cuda_upload(pd_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    PD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx->stream));
    PD_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}
extern "C" void pd_cuda_download(pd_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    PD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    PD_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
}
extern "C" void pd_cuda_zero(pd_cuda_ctx *ctx, void *p, size_t bytes) {
    if (p && bytes) PD_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, ctx->stream));
}
