// rt_kernels.cu: the few kernels the CUDA executor needs besides the ops: scaling the update's
// accumulated gradient by 1 / minibatches, and turning the labels that travel as floats (the
// activation message's tail) into the device ints the loss reads.
#include "cuda_internal.h"
#include "ops_cuda.h"

#define PD_THREADS 256

static __global__ void scale_kernel(float *x, float a, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] *= a;
}

static __global__ void labels_kernel(int *labels, const float *tail, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        labels[i] = (int)tail[i];
}

extern "C" void pd_scale_cuda(pd_cuda_ctx *ctx, float *x, float a, size_t n) {
    if (!n) return;
    scale_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(x, a, n);
    PD_CUDA_LAUNCHED();
}

extern "C" void pd_labels_from_floats_cuda(pd_cuda_ctx *ctx, int *labels, const float *tail, int n) {
    if (n <= 0) return;
    labels_kernel<<<pd_blocks((size_t)n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(labels, tail, n);
    PD_CUDA_LAUNCHED();
}
