// optim.cu: SGD (momentum, weight decay) and Adam over flat device blobs, optim.h's formulas
// element for element (bias corrections computed on the host in double, as optim.c does).
#include "cuda_internal.h"

#include <math.h>

#define PD_THREADS 256

static __global__ void sgd_kernel(float *w, float *buf, const float *g, float lr, float mom, float wd,
                           size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i] + wd * w[i];
        if (buf) {
            float b = mom * buf[i] + gi;
            buf[i] = b;
            w[i] -= lr * b;
        } else {
            w[i] -= lr * gi;
        }
    }
}
static __global__ void adam_kernel(float *w, float *m, float *v, const float *g, float b1, float b2,
                            float eps, float wd, float step_size, float bc2_sqrt, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i] + wd * w[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        w[i] -= step_size * mi / denom;
    }
}

extern "C" void pd_sgd_step_cuda(pd_cuda_ctx *ctx, float *params, float *buf, const float *grads,
                                 float lr, float momentum, float weight_decay, size_t n) {
    if (!n) return;
    if (momentum == 0.0f) buf = NULL;
    sgd_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        params, buf, grads, lr, momentum, weight_decay, n);
    PD_CUDA_LAUNCHED();
}
extern "C" void pd_adam_step_cuda(pd_cuda_ctx *ctx, float *params, float *m, float *v,
                                  const float *grads, float lr, float beta1, float beta2,
                                  float eps, float weight_decay, int64_t t, size_t n) {
    if (!n) return;
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    adam_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        params, m, v, grads, beta1, beta2, eps, weight_decay, step_size, bc2_sqrt, n);
    PD_CUDA_LAUNCHED();
}
extern "C" void pd_optim_step_cuda(pd_cuda_ctx *ctx, float *params, float *state,
                                   const float *grads, const pd_optim *opt, int64_t t, size_t n) {
    if (opt->kind == PD_OPTIM_ADAM)
        pd_adam_step_cuda(ctx, params, state, state + n, grads, opt->lr, opt->beta1, opt->beta2,
                          opt->eps, opt->weight_decay, t, n);
    else
        pd_sgd_step_cuda(ctx, params, opt->momentum != 0.0f ? state : NULL, grads, opt->lr,
                         opt->momentum, opt->weight_decay, n);
}
