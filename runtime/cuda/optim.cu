// optim.cu: SGD (momentum, weight decay), Adam and AdamW over flat device blobs, optim.h's
// formulas element for element (bias corrections and the learning-rate schedule computed on the
// host, as optim.c does; AdamW's decay mask as optim.c's spans), and the squared norm that
// clipping by the global norm needs: a fixed grid of double partial sums, each block reduced in
// a fixed tree and the blocks summed on the host in order, so the same gradient gives the same
// bits (not the CPU's bits: its sum runs in index order).
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
// Adam's update; l2 adds l2*w to the gradient (Adam), keep != 1 multiplies w by keep = 1 -
// lr*wd first (AdamW's decoupled decay), as optim.c's adam_core
static __global__ void adam_kernel(float *w, float *m, float *v, const float *g, float b1, float b2,
                            float eps, float l2, float keep, float step_size, float bc2_sqrt,
                            size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        if (keep != 1.0f) w[i] *= keep;
        float gi = g[i] + l2 * w[i];
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
static void adam_launch(pd_cuda_ctx *ctx, float *params, float *m, float *v, const float *grads,
                        float lr, float beta1, float beta2, float eps, float l2, float decoupled,
                        int64_t t, size_t n) {
    if (!n) return;
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float keep = decoupled != 0.0f ? (float)(1.0 - (double)lr * (double)decoupled) : 1.0f;
    adam_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        params, m, v, grads, beta1, beta2, eps, l2, keep, step_size, bc2_sqrt, n);
    PD_CUDA_LAUNCHED();
}
extern "C" void pd_adam_step_cuda(pd_cuda_ctx *ctx, float *params, float *m, float *v,
                                  const float *grads, float lr, float beta1, float beta2,
                                  float eps, float weight_decay, int64_t t, size_t n) {
    adam_launch(ctx, params, m, v, grads, lr, beta1, beta2, eps, weight_decay, 0.0f, t, n);
}
extern "C" void pd_adamw_step_cuda(pd_cuda_ctx *ctx, float *params, float *m, float *v,
                                   const float *grads, float lr, float beta1, float beta2,
                                   float eps, float weight_decay, int64_t t, size_t n) {
    adam_launch(ctx, params, m, v, grads, lr, beta1, beta2, eps, 0.0f, weight_decay, t, n);
}
extern "C" void pd_optim_step_cuda(pd_cuda_ctx *ctx, float *params, float *state,
                                   const float *grads, const pd_optim *opt, int64_t t, size_t n) {
    float lr = pd_optim_lr(opt, t);
    if (opt->kind == PD_OPTIM_ADAMW) {
        float *m = state, *v = state + n;
        if (!opt->spans) {
            pd_adamw_step_cuda(ctx, params, m, v, grads, lr, opt->beta1, opt->beta2, opt->eps,
                               opt->weight_decay, t, n);
            return;
        }
        for (int k = 0; k < opt->n_spans; k++) { /* one launch per span: decay or not */
            const pd_optim_span *s = &opt->spans[k];
            size_t o = (size_t)s->offset;
            pd_adamw_step_cuda(ctx, params + o, m + o, v + o, grads + o, lr, opt->beta1,
                               opt->beta2, opt->eps, s->decay ? opt->weight_decay : 0.0f, t,
                               (size_t)s->n);
        }
    } else if (opt->kind == PD_OPTIM_ADAM) {
        pd_adam_step_cuda(ctx, params, state, state + n, grads, lr, opt->beta1, opt->beta2,
                          opt->eps, opt->weight_decay, t, n);
    } else {
        pd_sgd_step_cuda(ctx, params, opt->momentum != 0.0f ? state : NULL, grads, lr,
                         opt->momentum, opt->weight_decay, n);
    }
}

// ---- the squared norm: PD_NORM_BLOCKS x PD_THREADS threads, whatever n (the fixed partition
// that makes the result deterministic); each thread sums its grid-stride elements in double, each
// block its threads in a fixed tree ----
static __global__ void sq_norm_kernel(double *partial, const float *g, size_t n) {
    __shared__ double s[PD_THREADS];
    double acc = 0.0;
    for (size_t i = (size_t)blockIdx.x * PD_THREADS + threadIdx.x; i < n;
         i += (size_t)PD_NORM_BLOCKS * PD_THREADS)
        acc += (double)g[i] * (double)g[i];
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int half = PD_THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half) s[threadIdx.x] += s[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

extern "C" double pd_sq_norm_cuda(pd_cuda_ctx *ctx, const float *g, size_t n) {
    if (!n) return 0.0;
    sq_norm_kernel<<<PD_NORM_BLOCKS, PD_THREADS, 0, ctx->stream>>>(ctx->norm_dev, g, n);
    PD_CUDA_LAUNCHED();
    double host[PD_NORM_BLOCKS], sum = 0.0;
    pd_cuda_download(ctx, host, ctx->norm_dev, sizeof host); /* synchronises */
    for (int b = 0; b < PD_NORM_BLOCKS; b++) sum += host[b];
    return sum;
}
