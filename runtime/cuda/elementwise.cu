// elementwise.cu: our own kernels for relu, gelu, identity, dropout (keyed RNG of rng.h), add,
// concat, and the small helpers other files share (bf16 casts, bias add and bias gradient).
#include "cuda_internal.h"

#define PD_THREADS 256
#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

// ---- relu ----
static __global__ void relu_fwd_kernel(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) { float x = inp[i]; out[i] = x > 0.0f ? x : 0.0f; }
}
static __global__ void relu_bwd_kernel(float *dinp, const float *dout, const float *out, size_t n) {
    GRID_STRIDE(i, n) { if (out[i] > 0.0f) dinp[i] += dout[i]; }
}
static __global__ void relu_mask_kernel(float *o, const float *dout, const float *y, size_t n) {
    GRID_STRIDE(i, n) { o[i] = y[i] > 0.0f ? dout[i] : 0.0f; }
}
extern "C" void pdrt_relu_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, size_t N) {
    if (!N) return;
    relu_fwd_kernel<<<pd_blocks(N, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, inp, N);
    PD_CUDA_LAUNCHED();
}
extern "C" void pdrt_relu_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout,
                                   const float *out, size_t N) {
    if (!dinp || !N) return;
    relu_bwd_kernel<<<pd_blocks(N, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(dinp, dout, out, N);
    PD_CUDA_LAUNCHED();
}
void pd_cuda_relu_mask(pd_cuda_ctx *ctx, float *out, const float *dout, const float *y,
                       size_t N) {
    if (!N) return;
    relu_mask_kernel<<<pd_blocks(N, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, dout, y, N);
    PD_CUDA_LAUNCHED();
}

// ---- gelu (tanh form; ops.h) ----
#define GELU_K 0.7978845608028654f // sqrt(2/pi)
#define GELU_C 0.044715f
static __global__ void gelu_fwd_kernel(float *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x)));
    }
}
static __global__ void gelu_bwd_kernel(float *dinp, const float *dout, const float *inp,
                                       size_t n) {
    GRID_STRIDE(i, n) {
        float x = inp[i], t = tanhf(GELU_K * (x + GELU_C * x * x * x));
        float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x); // du/dx
        dinp[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
}
extern "C" void pdrt_gelu_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, size_t N) {
    if (!N) return;
    gelu_fwd_kernel<<<pd_blocks(N, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, inp, N);
    PD_CUDA_LAUNCHED();
}
extern "C" void pdrt_gelu_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout,
                                        const float *inp, size_t N) {
    if (!dinp || !N) return;
    gelu_bwd_kernel<<<pd_blocks(N, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(dinp, dout, inp, N);
    PD_CUDA_LAUNCHED();
}

// ---- identity ----
static __global__ void acc_kernel(float *dst, const float *src, size_t n) {
    GRID_STRIDE(i, n) dst[i] += src[i];
}
extern "C" void pdrt_identity_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp,
                                      size_t N) {
    if (!N || out == inp) return;
    PD_CUDA_CHECK(cudaMemcpyAsync(out, inp, N * sizeof(float), cudaMemcpyDeviceToDevice,
                                  ctx->stream));
}
extern "C" void pdrt_identity_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout,
                                       size_t N) {
    if (!dinp || !N) return;
    acc_kernel<<<pd_blocks(N, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(dinp, dout, N);
    PD_CUDA_LAUNCHED();
}

// ---- dropout: rng.c's splitmix64 keyed draws, reproduced bit for bit ----
__device__ static uint64_t rng_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
__device__ static uint64_t rng_key(uint64_t seed, uint64_t domain, uint64_t k1, uint64_t k2,
                                   uint64_t k3) {
    uint64_t h = rng_mix(seed);
    h = rng_mix(h ^ domain);
    h = rng_mix(h ^ k1);
    h = rng_mix(h ^ k2);
    return rng_mix(h ^ k3);
}
__device__ static float rng_uniform(uint64_t key, uint64_t counter) {
    uint64_t u = rng_mix(key ^ rng_mix(counter ^ 0x5851f42d4c957f2dull));
    return (float)(u >> 40) * (1.0f / 16777216.0f);
}
// grid: (blocks over N, B); one key per row
static __global__ void dropout_fwd_kernel(float *out, float *mask, const float *inp, float p,
                                   float scale, uint64_t seed, int64_t step, int layer,
                                   int64_t sample0, size_t N) {
    int b = blockIdx.y;
    uint64_t key = rng_key(seed, 2 /* PD_RNG_DROPOUT */, (uint64_t)step, (uint64_t)layer,
                           (uint64_t)(sample0 + b));
    size_t base = (size_t)b * N;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < N;
         i += (size_t)gridDim.x * blockDim.x) {
        float m = (p > 0.0f && rng_uniform(key, i) < p) ? 0.0f : scale;
        mask[base + i] = m;
        out[base + i] = inp[base + i] * m;
    }
}
static __global__ void mul_acc_kernel(float *dinp, const float *dout, const float *mask, size_t n) {
    GRID_STRIDE(i, n) dinp[i] += dout[i] * mask[i];
}
extern "C" void pdrt_dropout_forward_cuda(pd_cuda_ctx *ctx, float *out, float *mask, const float *inp,
                                     float p, uint64_t seed, int64_t step, int layer,
                                     int64_t sample0, int B, size_t N) {
    if (!N || B <= 0) return;
    PD_CUDA_REQUIRE(p >= 0.0f && p < 1.0f, "dropout probability must be in [0, 1)");
    PD_CUDA_REQUIRE(B <= 65535, "dropout: batch above 65535");
    float scale = 1.0f / (1.0f - p);
    unsigned bx = pd_blocks(N, PD_THREADS);
    if (bx > 1024) bx = 1024;
    dim3 grid(bx, (unsigned)B);
    dropout_fwd_kernel<<<grid, PD_THREADS, 0, ctx->stream>>>(out, mask, inp, p, scale, seed, step,
                                                            layer, sample0, N);
    PD_CUDA_LAUNCHED();
}
extern "C" void pdrt_dropout_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout,
                                      const float *mask, size_t BN) {
    if (!dinp || !BN) return;
    mul_acc_kernel<<<pd_blocks(BN, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(dinp, dout, mask,
                                                                            BN);
    PD_CUDA_LAUNCHED();
}

// ---- add: up to 8 inputs per launch, summed in input order like the CPU ----
#define PD_ADD_MAX 8
struct add_args { const float *p[PD_ADD_MAX]; };
static __global__ void add_kernel(float *out, add_args a, int n, int accumulate, size_t N) {
    GRID_STRIDE(i, N) {
        float s = accumulate ? out[i] : a.p[0][i];
        for (int k = accumulate ? 0 : 1; k < n; k++) s += a.p[k][i];
        out[i] = s;
    }
}
extern "C" void pdrt_add_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *const *inps, int n,
                                 size_t N) {
    if (!N || n <= 0) return;
    for (int k0 = 0; k0 < n; k0 += PD_ADD_MAX) {
        int m = n - k0 < PD_ADD_MAX ? n - k0 : PD_ADD_MAX;
        add_args a;
        for (int k = 0; k < m; k++) a.p[k] = inps[k0 + k];
        for (int k = m; k < PD_ADD_MAX; k++) a.p[k] = NULL;
        add_kernel<<<pd_blocks(N, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, a, m, k0 > 0,
                                                                           N);
        PD_CUDA_LAUNCHED();
    }
}
extern "C" void pdrt_add_backward_cuda(pd_cuda_ctx *ctx, float *const *dinps, const float *dout, int n,
                                  size_t N) {
    for (int k = 0; k < n; k++) pdrt_identity_backward_cuda(ctx, dinps[k], dout, N);
}

// ---- concat along channels: one strided copy per input ----
static __global__ void slice_kernel(float *dst, const float *src, size_t len, size_t dst_stride,
                             size_t src_stride, int accumulate, int B) {
    size_t n = len * (size_t)B;
    GRID_STRIDE(i, n) {
        size_t b = i / len, j = i % len;
        float v = src[b * src_stride + j];
        float *d = dst + b * dst_stride + j;
        *d = accumulate ? *d + v : v;
    }
}
extern "C" void pdrt_concat_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *const *inps,
                                    const int *channels, int n, int B, int HW) {
    size_t total = 0, off = 0;
    for (int k = 0; k < n; k++) total += (size_t)channels[k] * HW;
    for (int k = 0; k < n; k++) {
        size_t len = (size_t)channels[k] * HW;
        if (len && B > 0)
            slice_kernel<<<pd_blocks(len * B, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
                out + off, inps[k], len, total, len, 0, B);
        PD_CUDA_LAUNCHED();
        off += len;
    }
}
extern "C" void pdrt_concat_backward_cuda(pd_cuda_ctx *ctx, float *const *dinps, const float *dout,
                                     const int *channels, int n, int B, int HW) {
    size_t total = 0, off = 0;
    for (int k = 0; k < n; k++) total += (size_t)channels[k] * HW;
    for (int k = 0; k < n; k++) {
        size_t len = (size_t)channels[k] * HW;
        if (dinps[k] && len && B > 0)
            slice_kernel<<<pd_blocks(len * B, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
                dinps[k], dout + off, len, len, total, 1, B);
        PD_CUDA_LAUNCHED();
        off += len;
    }
}

// ---- shared helpers ----
static __global__ void to_bf16_kernel(__nv_bfloat16 *out, const float *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] = __float2bfloat16(inp[i]);
}
static __global__ void acc_from_bf16_kernel(float *out, const __nv_bfloat16 *inp, size_t n) {
    GRID_STRIDE(i, n) out[i] += __bfloat162float(inp[i]);
}
static __global__ void bf16_bias_kernel(float *out, const __nv_bfloat16 *inp, const float *bias, int C,
                                 size_t HW, size_t n) {
    GRID_STRIDE(i, n) {
        float v = __bfloat162float(inp[i]);
        if (bias) v += bias[(i / HW) % (size_t)C];
        out[i] = v;
    }
}
static __global__ void add_bias_kernel(float *out, const float *bias, int C, size_t HW, size_t n) {
    GRID_STRIDE(i, n) out[i] += bias[(i / HW) % (size_t)C];
}
// one block per channel; fixed-order tree reduction: deterministic
static __global__ void bias_grad_kernel(float *dbias, const float *dout, int B, int C, size_t HW) {
    __shared__ float part[PD_THREADS];
    int c = blockIdx.x;
    float s = 0.0f;
    size_t per = (size_t)B * HW;
    for (size_t j = threadIdx.x; j < per; j += blockDim.x) {
        size_t b = j / HW, h = j % HW;
        s += dout[(b * C + c) * HW + h];
    }
    part[threadIdx.x] = s;
    __syncthreads();
    for (int w = PD_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) part[threadIdx.x] += part[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) dbias[c] += part[0];
}
void pd_cuda_to_bf16(pd_cuda_ctx *ctx, __nv_bfloat16 *out, const float *inp, size_t n) {
    if (!n) return;
    to_bf16_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, inp, n);
    PD_CUDA_LAUNCHED();
}
void pd_cuda_acc_from_bf16(pd_cuda_ctx *ctx, float *out, const __nv_bfloat16 *inp, size_t n) {
    if (!n) return;
    acc_from_bf16_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, inp, n);
    PD_CUDA_LAUNCHED();
}
void pd_cuda_bf16_to_f32_bias(pd_cuda_ctx *ctx, float *out, const __nv_bfloat16 *inp,
                              const float *bias, int B, int C, size_t HW) {
    size_t n = (size_t)B * C * HW;
    if (!n) return;
    bf16_bias_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, inp, bias, C,
                                                                             HW, n);
    PD_CUDA_LAUNCHED();
}
void pd_cuda_add_bias(pd_cuda_ctx *ctx, float *out, const float *bias, int B, int C, size_t HW) {
    size_t n = (size_t)B * C * HW;
    if (!n || !bias) return;
    add_bias_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(out, bias, C, HW,
                                                                            n);
    PD_CUDA_LAUNCHED();
}
void pd_cuda_bias_grad(pd_cuda_ctx *ctx, float *dbias, const float *dout, int B, int C,
                       size_t HW) {
    if (!dbias || C <= 0) return;
    bias_grad_kernel<<<(unsigned)C, PD_THREADS, 0, ctx->stream>>>(dbias, dout, B, C, HW);
    PD_CUDA_LAUNCHED();
}
