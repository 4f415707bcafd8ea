// cross_attention.cu: the two-input attention op on the GPU (ops.h has the math and layouts):
// queries (Tq, C) over fused keys and values (Tk, 2C), non-causal, multi-head. Our own kernels,
// each output element written by one thread summing in a fixed order (block reductions in a
// fixed tree), so results are deterministic: the probabilities one block per query row (scores,
// max, exponentials, sum); y, dq, dk and dv one thread per element; the backward's ds
// (B*heads*Tq*Tk floats) lives in the context's scratch. The causal self-attention is
// sequence.cu's.
#include "cuda_internal.h"

#define XA_THREADS 128

static __device__ float xa_block_reduce(float v, float *sh, int is_max) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = XA_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            sh[threadIdx.x] = is_max ? fmaxf(sh[threadIdx.x], sh[threadIdx.x + s])
                                     : sh[threadIdx.x] + sh[threadIdx.x + s];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

// one block per (b, h, i): p_ij = softmax_j(q_i . k_j * scale)
static __global__ void xa_probs_kernel(float *att, const float *q, const float *kv, int Tq,
                                       int Tk, int C, int NH, float scale) {
    __shared__ float sh[XA_THREADS];
    int row = blockIdx.x, i = row % Tq, h = (row / Tq) % NH, b = row / (Tq * NH), hs = C / NH;
    const float *qi = q + ((size_t)b * Tq + i) * C + (size_t)h * hs;
    const float *K = kv + (size_t)b * Tk * 2 * C + (size_t)h * hs;
    float *p = att + (size_t)row * Tk;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < Tk; j += XA_THREADS) {
        const float *kj = K + (size_t)j * 2 * C;
        float s = 0.0f;
        for (int e = 0; e < hs; e++) s += qi[e] * kj[e];
        p[j] = s * scale;
        mx = fmaxf(mx, p[j]);
    }
    mx = xa_block_reduce(mx, sh, 1);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < Tk; j += XA_THREADS) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    float inv = 1.0f / xa_block_reduce(sum, sh, 0);
    for (int j = threadIdx.x; j < Tk; j += XA_THREADS) p[j] *= inv;
}

// y[b][i][h*hs + e] = sum_j p_ij v_j[e]
static __global__ void xa_out_kernel(float *out, const float *att, const float *kv, int B, int Tq,
                                     int Tk, int C, int NH) {
    size_t n = (size_t)B * Tq * C;
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < n;
         x += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(x % C), i = (int)((x / C) % Tq), b = (int)(x / ((size_t)C * Tq));
        int hs = C / NH, h = c / hs;
        const float *p = att + (((size_t)b * NH + h) * Tq + i) * Tk;
        const float *V = kv + (size_t)b * Tk * 2 * C + C + c;
        float s = 0.0f;
        for (int j = 0; j < Tk; j++) s += p[j] * V[(size_t)j * 2 * C];
        out[x] = s;
    }
}

// one block per (b, h, i): ds_ij = p_ij (dy_i . v_j - sum_j' p_ij' dy_i . v_j')
static __global__ void xa_ds_kernel(float *ds, const float *att, const float *dout,
                                    const float *kv, int Tq, int Tk, int C, int NH) {
    __shared__ float sh[XA_THREADS];
    int row = blockIdx.x, i = row % Tq, h = (row / Tq) % NH, b = row / (Tq * NH), hs = C / NH;
    const float *dy = dout + ((size_t)b * Tq + i) * C + (size_t)h * hs;
    const float *V = kv + (size_t)b * Tk * 2 * C + C + (size_t)h * hs;
    const float *p = att + (size_t)row * Tk;
    float *d = ds + (size_t)row * Tk, dot = 0.0f;
    for (int j = threadIdx.x; j < Tk; j += XA_THREADS) {
        const float *vj = V + (size_t)j * 2 * C;
        float s = 0.0f;
        for (int e = 0; e < hs; e++) s += dy[e] * vj[e];
        d[j] = s;
        dot += p[j] * s;
    }
    dot = xa_block_reduce(dot, sh, 0);
    for (int j = threadIdx.x; j < Tk; j += XA_THREADS) d[j] = p[j] * (d[j] - dot);
}

// dq[b][i][c] += scale sum_j ds_ij k_j[c]
static __global__ void xa_dq_kernel(float *dq, const float *ds, const float *kv, int B, int Tq,
                                    int Tk, int C, int NH, float scale) {
    size_t n = (size_t)B * Tq * C;
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < n;
         x += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(x % C), i = (int)((x / C) % Tq), b = (int)(x / ((size_t)C * Tq));
        int h = c / (C / NH);
        const float *d = ds + (((size_t)b * NH + h) * Tq + i) * Tk;
        const float *K = kv + (size_t)b * Tk * 2 * C + c;
        float s = 0.0f;
        for (int j = 0; j < Tk; j++) s += d[j] * K[(size_t)j * 2 * C];
        dq[x] += scale * s;
    }
}

// dk[b][j][c] += scale sum_i ds_ij q_i[c]; dv[b][j][c] += sum_i p_ij dy_i[c]
static __global__ void xa_dkv_kernel(float *dkv, const float *ds, const float *att,
                                     const float *q, const float *dout, int B, int Tq, int Tk,
                                     int C, int NH, float scale) {
    size_t n = (size_t)B * Tk * 2 * C;
    for (size_t x = blockIdx.x * (size_t)blockDim.x + threadIdx.x; x < n;
         x += (size_t)gridDim.x * blockDim.x) {
        int cc = (int)(x % (2 * C)), j = (int)((x / (2 * C)) % Tk);
        int b = (int)(x / ((size_t)2 * C * Tk)), v = cc >= C, c = cc - v * C;
        int h = c / (C / NH);
        const float *w = (v ? att : ds) + ((size_t)b * NH + h) * Tq * Tk + j;
        const float *src = (v ? dout : q) + (size_t)b * Tq * C + c;
        float s = 0.0f;
        for (int i = 0; i < Tq; i++) s += w[(size_t)i * Tk] * src[(size_t)i * C];
        dkv[x] += v ? s : scale * s;
    }
}

extern "C" size_t pdrt_cross_attention_cuda_scratch_bytes(int B, int Tq, int Tk, int NH) {
    return pd_scratch_round((size_t)B * NH * Tq * Tk * sizeof(float));
}

extern "C" void pdrt_cross_attention_forward_cuda(pd_cuda_ctx *ctx, float *out, float *att,
                                                  const float *q, const float *kv, int B,
                                                  int Tq, int Tk, int C, int NH) {
    if (B <= 0 || Tq <= 0 || Tk <= 0) return;
    float scale = 1.0f / sqrtf((float)(C / NH));
    xa_probs_kernel<<<(unsigned)(B * NH * Tq), XA_THREADS, 0, ctx->stream>>>(att, q, kv, Tq, Tk,
                                                                             C, NH, scale);
    PD_CUDA_LAUNCHED();
    xa_out_kernel<<<pd_blocks((size_t)B * Tq * C, 256), 256, 0, ctx->stream>>>(out, att, kv, B,
                                                                               Tq, Tk, C, NH);
    PD_CUDA_LAUNCHED();
}

extern "C" void pdrt_cross_attention_backward_cuda(pd_cuda_ctx *ctx, float *dq, float *dkv,
                                                   const float *dout, const float *q,
                                                   const float *kv, const float *att, int B,
                                                   int Tq, int Tk, int C, int NH) {
    if (B <= 0 || Tq <= 0 || Tk <= 0 || (!dq && !dkv)) return;
    float scale = 1.0f / sqrtf((float)(C / NH));
    pd_scratch_reset(ctx);
    float *ds = (float *)PD_SCRATCH(ctx, (size_t)B * NH * Tq * Tk * sizeof(float));
    xa_ds_kernel<<<(unsigned)(B * NH * Tq), XA_THREADS, 0, ctx->stream>>>(ds, att, dout, kv, Tq,
                                                                          Tk, C, NH);
    PD_CUDA_LAUNCHED();
    if (dq) {
        xa_dq_kernel<<<pd_blocks((size_t)B * Tq * C, 256), 256, 0, ctx->stream>>>(
            dq, ds, kv, B, Tq, Tk, C, NH, scale);
        PD_CUDA_LAUNCHED();
    }
    if (dkv) {
        xa_dkv_kernel<<<pd_blocks((size_t)B * Tk * 2 * C, 256), 256, 0, ctx->stream>>>(
            dkv, ds, att, q, dout, B, Tq, Tk, C, NH, scale);
        PD_CUDA_LAUNCHED();
    }
}
