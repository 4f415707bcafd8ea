// sequence.cu: our own kernels for the sequence ops (ops.h has the math): layernorm over the last
// dimension and causal multi-head self-attention. One block per row; sums are block reductions
// in a fixed tree order and every output element is written by one thread (no atomics), so the
// results are deterministic. Attention touches only keys j <= i; its backward keeps ds (the
// softmax's input gradient) in the context's scratch, B*NH*T*T floats, then gathers dk and dv per
// key column, so nothing accumulates concurrently.
#include "cuda_internal.h"

#define SEQ_THREADS 128
#define ROWS_STRIDE(i, n) for (int i = (int)threadIdx.x; i < (n); i += SEQ_THREADS)

// the block's sum (max) of v, the same order every time; every thread gets it
static __device__ float block_sum(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = SEQ_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}
static __device__ float block_max(float v, float *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = SEQ_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] = fmaxf(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    float r = sh[0];
    __syncthreads();
    return r;
}

// ---- layernorm ----
static __global__ void ln_fwd_kernel(float *out, float *mean, float *rstd, const float *inp,
                                     const float *w, const float *b, float eps, int C) {
    __shared__ float sh[SEQ_THREADS];
    size_t n = blockIdx.x;
    const float *x = inp + n * C;
    float s = 0.0f;
    ROWS_STRIDE(c, C) s += x[c];
    float m = block_sum(s, sh) / (float)C, v = 0.0f;
    ROWS_STRIDE(c, C) v += (x[c] - m) * (x[c] - m);
    float r = 1.0f / sqrtf(block_sum(v, sh) / (float)C + eps);
    ROWS_STRIDE(c, C) {
        float h = (x[c] - m) * r;
        out[n * C + c] = (w ? w[c] : 1.0f) * h + (b ? b[c] : 0.0f);
    }
    if (threadIdx.x == 0 && mean) mean[n] = m;
    if (threadIdx.x == 0 && rstd) rstd[n] = r;
}
static __global__ void ln_bwd_dx_kernel(float *dinp, const float *dout, const float *inp,
                                        const float *w, const float *mean, const float *rstd,
                                        int C) {
    __shared__ float sh[SEQ_THREADS];
    size_t n = blockIdx.x;
    const float *x = inp + n * C, *dy = dout + n * C;
    float m = mean[n], r = rstd[n], sg = 0.0f, sgh = 0.0f;
    ROWS_STRIDE(c, C) {
        float g = (w ? w[c] : 1.0f) * dy[c];
        sg += g;
        sgh += g * (x[c] - m) * r;
    }
    float mg = block_sum(sg, sh) / (float)C, mgh = block_sum(sgh, sh) / (float)C;
    ROWS_STRIDE(c, C) {
        float h = (x[c] - m) * r, g = (w ? w[c] : 1.0f) * dy[c];
        dinp[n * C + c] += r * (g - mg - h * mgh);
    }
}
// one thread per feature, the rows in order
static __global__ void ln_bwd_dw_kernel(float *dw, float *db, const float *dout, const float *inp,
                                        const float *mean, const float *rstd, int N, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float sw = 0.0f, sb = 0.0f;
    for (int n = 0; n < N; n++) {
        float dy = dout[(size_t)n * C + c];
        sw += dy * (inp[(size_t)n * C + c] - mean[n]) * rstd[n];
        sb += dy;
    }
    if (dw) dw[c] += sw;
    if (db) db[c] += sb;
}

extern "C" void pdrt_layernorm_forward_cuda(pd_cuda_ctx *ctx, float *out, float *save_mean,
                                            float *save_rstd, const float *inp,
                                            const float *weight, const float *bias, float eps,
                                            int N, int C) {
    if (N <= 0) return;
    ln_fwd_kernel<<<N, SEQ_THREADS, 0, ctx->stream>>>(out, save_mean, save_rstd, inp, weight,
                                                      bias, eps, C);
    PD_CUDA_LAUNCHED();
}
extern "C" void pdrt_layernorm_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight,
                                             float *dbias, const float *dout, const float *inp,
                                             const float *weight, const float *save_mean,
                                             const float *save_rstd, int N, int C) {
    if (N <= 0) return;
    if (dinp) {
        ln_bwd_dx_kernel<<<N, SEQ_THREADS, 0, ctx->stream>>>(dinp, dout, inp, weight, save_mean,
                                                             save_rstd, C);
        PD_CUDA_LAUNCHED();
    }
    if (dweight || dbias) {
        ln_bwd_dw_kernel<<<(C + SEQ_THREADS - 1) / SEQ_THREADS, SEQ_THREADS, 0, ctx->stream>>>(
            dweight, dbias, dout, inp, save_mean, save_rstd, N, C);
        PD_CUDA_LAUNCHED();
    }
}

// ---- attention: block r = (b*NH + h)*T + i is query row i of head h of sample b ----
static __device__ float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int e = 0; e < n; e++) s += a[e] * b[e];
    return s;
}

static __global__ void att_fwd_kernel(float *out, float *att, const float *inp, int T, int C,
                                      int NH, float scale) {
    __shared__ float sh[SEQ_THREADS];
    size_t r = blockIdx.x;
    int i = (int)(r % T), bh = (int)(r / T), b = bh / NH, h = bh % NH, hs = C / NH, C3 = 3 * C;
    const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs, *q = base + (size_t)i * C3;
    float *p = att + r * T, mx = -INFINITY, z = 0.0f;
    ROWS_STRIDE(j, i + 1) {
        p[j] = scale * dot(q, base + C + (size_t)j * C3, hs);
        mx = fmaxf(mx, p[j]);
    }
    mx = block_max(mx, sh);
    ROWS_STRIDE(j, i + 1) {
        p[j] = expf(p[j] - mx);
        z += p[j];
    }
    float inv = 1.0f / block_sum(z, sh); // its barriers publish p
    ROWS_STRIDE(j, T) p[j] = j <= i ? p[j] * inv : 0.0f;
    __syncthreads();
    ROWS_STRIDE(e, hs) {
        float acc = 0.0f;
        for (int j = 0; j <= i; j++) acc += p[j] * base[2 * C + (size_t)j * C3 + e];
        out[((size_t)b * T + i) * C + (size_t)h * hs + e] = acc;
    }
}

// row i: ds_ij = p_ij (dy_i . v_j - sum_j' p_ij' dy_i . v_j') into scratch; dq_i += scale ds k
static __global__ void att_bwd_rows_kernel(float *dinp, float *ds, const float *dout,
                                           const float *inp, const float *att, int T, int C,
                                           int NH, float scale) {
    __shared__ float sh[SEQ_THREADS];
    size_t r = blockIdx.x;
    int i = (int)(r % T), bh = (int)(r / T), b = bh / NH, h = bh % NH, hs = C / NH, C3 = 3 * C;
    size_t off = (size_t)b * T * C3 + (size_t)h * hs;
    const float *base = inp + off, *p = att + r * T;
    const float *dy = dout + ((size_t)b * T + i) * C + (size_t)h * hs;
    float *d = ds + r * T, s = 0.0f;
    ROWS_STRIDE(j, i + 1) {
        d[j] = dot(dy, base + 2 * C + (size_t)j * C3, hs);
        s += p[j] * d[j];
    }
    s = block_sum(s, sh);
    ROWS_STRIDE(j, T) d[j] = j <= i ? p[j] * (d[j] - s) : 0.0f;
    __syncthreads();
    ROWS_STRIDE(e, hs) {
        float acc = 0.0f;
        for (int j = 0; j <= i; j++) acc += d[j] * base[C + (size_t)j * C3 + e];
        dinp[off + (size_t)i * C3 + e] += scale * acc;
    }
}

// key column j: dk_j += scale sum_{i>=j} ds_ij q_i; dv_j += sum_{i>=j} p_ij dy_i
static __global__ void att_bwd_cols_kernel(float *dinp, const float *ds, const float *dout,
                                           const float *inp, const float *att, int T, int C,
                                           int NH, float scale) {
    size_t r = blockIdx.x;
    int j = (int)(r % T), bh = (int)(r / T), b = bh / NH, h = bh % NH, hs = C / NH, C3 = 3 * C;
    size_t off = (size_t)b * T * C3 + (size_t)h * hs, rows = (size_t)bh * T;
    ROWS_STRIDE(e, hs) {
        float dk = 0.0f, dv = 0.0f;
        for (int i = j; i < T; i++) {
            dk += ds[(rows + i) * T + j] * inp[off + (size_t)i * C3 + e];
            dv += att[(rows + i) * T + j] * dout[((size_t)b * T + i) * C + (size_t)h * hs + e];
        }
        dinp[off + (size_t)j * C3 + C + e] += scale * dk;
        dinp[off + (size_t)j * C3 + 2 * C + e] += dv;
    }
}

extern "C" size_t pdrt_attention_cuda_scratch_bytes(int B, int T, int NH) {
    return pd_scratch_round((size_t)B * NH * T * T * sizeof(float));
}

extern "C" void pdrt_attention_forward_cuda(pd_cuda_ctx *ctx, float *out, float *att,
                                            const float *inp, int B, int T, int C, int NH) {
    size_t rows = (size_t)B * NH * T;
    if (!rows) return;
    float scale = 1.0f / sqrtf((float)(C / NH));
    att_fwd_kernel<<<(unsigned)rows, SEQ_THREADS, 0, ctx->stream>>>(out, att, inp, T, C, NH,
                                                                    scale);
    PD_CUDA_LAUNCHED();
}

extern "C" void pdrt_attention_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout,
                                             const float *inp, const float *att, int B, int T,
                                             int C, int NH) {
    size_t rows = (size_t)B * NH * T;
    if (!dinp || !rows) return;
    float scale = 1.0f / sqrtf((float)(C / NH));
    pd_scratch_reset(ctx);
    float *ds = (float *)PD_SCRATCH(ctx, rows * T * sizeof(float));
    att_bwd_rows_kernel<<<(unsigned)rows, SEQ_THREADS, 0, ctx->stream>>>(dinp, ds, dout, inp,
                                                                         att, T, C, NH, scale);
    PD_CUDA_LAUNCHED();
    att_bwd_cols_kernel<<<(unsigned)rows, SEQ_THREADS, 0, ctx->stream>>>(dinp, ds, dout, inp,
                                                                         att, T, C, NH, scale);
    PD_CUDA_LAUNCHED();
}
