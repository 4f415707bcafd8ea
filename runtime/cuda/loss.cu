// loss.cu: softmax cross-entropy (one block per row, log-sum-exp in double like the CPU) and
// pdrt_count_correct; the mean over rows is a fixed-order sum, so results are deterministic.
#include "cuda_internal.h"

#define PD_THREADS 256

// per-row loss into row_loss[b]; dlogits written when non-NULL
static __global__ void xent_kernel(float *row_loss, float *dlogits, const float *logits,
                            const int *labels, int B, int K) {
    __shared__ double red[PD_THREADS];
    __shared__ float fred[PD_THREADS];
    int b = blockIdx.x;
    const float *z = logits + (size_t)b * K;
    float mx = -3.402823466e38f;
    for (int k = threadIdx.x; k < K; k += blockDim.x) mx = fmaxf(mx, z[k]);
    fred[threadIdx.x] = mx;
    __syncthreads();
    for (int w = PD_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) fred[threadIdx.x] = fmaxf(fred[threadIdx.x], fred[threadIdx.x + w]);
        __syncthreads();
    }
    mx = fred[0];
    double s = 0.0;
    for (int k = threadIdx.x; k < K; k += blockDim.x) s += exp((double)z[k] - mx);
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = PD_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    double lse = mx + log(red[0]);
    int label = labels[b];
    if (threadIdx.x == 0) row_loss[b] = (float)(lse - (double)z[label]);
    if (dlogits) {
        float *dz = dlogits + (size_t)b * K;
        for (int k = threadIdx.x; k < K; k += blockDim.x) {
            double p = exp((double)z[k] - lse);
            dz[k] = (float)((p - (k == label ? 1.0 : 0.0)) / B);
        }
    }
}
static __global__ void mean_kernel(float *loss, const float *row_loss, int B) {
    if (threadIdx.x == 0 && blockIdx.x == 0) {
        double t = 0.0;
        for (int b = 0; b < B; b++) t += row_loss[b];
        *loss = (float)(t / B);
    }
}
static __global__ void correct_kernel(int *count, const float *logits, const int *labels, int B, int K) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    int c = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        c += best == labels[b];
    }
    *count = c;
}

extern "C" void pdrt_softmax_cross_entropy_async_cuda(pd_cuda_ctx *ctx, float *loss, float *dlogits,
                                                 const float *logits, const int *labels, int B,
                                                 int K) {
    pd_scratch_reset(ctx);
    float *rows = (float *)PD_SCRATCH(ctx, (size_t)B * sizeof(float));
    xent_kernel<<<(unsigned)B, PD_THREADS, 0, ctx->stream>>>(rows, dlogits, logits, labels, B, K);
    PD_CUDA_LAUNCHED();
    mean_kernel<<<1, 32, 0, ctx->stream>>>(loss, rows, B);
    PD_CUDA_LAUNCHED();
}
extern "C" float pdrt_softmax_cross_entropy_cuda(pd_cuda_ctx *ctx, float *dlogits, const float *logits,
                                            const int *labels, int B, int K) {
    pdrt_softmax_cross_entropy_async_cuda(ctx, ctx->loss_dev, dlogits, logits, labels, B, K);
    float l = 0.0f;
    pd_cuda_download(ctx, &l, ctx->loss_dev, sizeof l);
    return l;
}
extern "C" int pdrt_count_correct_cuda(pd_cuda_ctx *ctx, const float *logits, const int *labels,
                                  int B, int K) {
    correct_kernel<<<1, 32, 0, ctx->stream>>>(ctx->count_dev, logits, labels, B, K);
    PD_CUDA_LAUNCHED();
    int c = 0;
    pd_cuda_download(ctx, &c, ctx->count_dev, sizeof c);
    return c;
}
