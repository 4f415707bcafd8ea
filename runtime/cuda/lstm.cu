// lstm.cu: one LSTM layer on the GPU (ops.h has the math and the layouts; the same arguments
// as the CPU kernels, with the backward's scratch in the context). The CPU kernel's plan, on the
// stream: the input projection of all B*T tokens as one matrix product, then per time step a
// [B][H] x [H][4H] product into that step's gate rows and one pointwise kernel for the gates, the
// cell and h; the backward walks the steps from the last (pointwise gate gradients, then
// dh_prev = da W_hh) and takes the weight and input gradients as whole-sequence products. The
// products are our own tiled kernel over strided operands (the per-step operands are rows
// strided by T, which cuBLASLt's cached layouts here do not take); every output element is
// summed by one thread in a fixed order, so results are deterministic.
#include "cuda_internal.h"

#define TILE 16

// C[i][j] = beta C[i][j] + sum_k A(i, k) B(k, j), A(i, k) = A[i*ar + k*ac], B(k, j) =
// B[k*br + j*bc], C row stride ldc: any transposition and row stride through the strides.
static __global__ void gemm_kernel(float *C, const float *A, const float *B, int m, int n, int k,
                                   long ar, long ac, long br, long bc, long ldc, float beta) {
    __shared__ float as[TILE][TILE + 1], bs[TILE][TILE + 1];
    int i = blockIdx.y * TILE + threadIdx.y, j = blockIdx.x * TILE + threadIdx.x;
    float acc = 0.0f;
    for (int k0 = 0; k0 < k; k0 += TILE) {
        int ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
        as[threadIdx.y][threadIdx.x] = i < m && ka < k ? A[i * ar + ka * ac] : 0.0f;
        bs[threadIdx.y][threadIdx.x] = kb < k && j < n ? B[kb * br + j * bc] : 0.0f;
        __syncthreads();
        for (int q = 0; q < TILE; q++) acc += as[threadIdx.y][q] * bs[q][threadIdx.x];
        __syncthreads();
    }
    if (i < m && j < n) {
        float *c = C + i * ldc + j;
        *c = beta == 0.0f ? acc : beta * *c + acc;
    }
}

static void gemm(pd_cuda_ctx *ctx, float *C, const float *A, const float *B, int m, int n, int k,
                 long ar, long ac, long br, long bc, long ldc, float beta) {
    if (m <= 0 || n <= 0) return;
    dim3 th(TILE, TILE), bl((unsigned)((n + TILE - 1) / TILE), (unsigned)((m + TILE - 1) / TILE));
    gemm_kernel<<<bl, th, 0, ctx->stream>>>(C, A, B, m, n, k, ar, ac, br, bc, ldc, beta);
    PD_CUDA_LAUNCHED();
}

static __device__ float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

// g[r][k] = b_ih[k] + b_hh[k] for every token row r (either bias may be NULL)
static __global__ void bias_rows_kernel(float *g, const float *bi, const float *bh, size_t rows,
                                        int G) {
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < rows * G;
         e += (size_t)gridDim.x * blockDim.x) {
        int k = (int)(e % G);
        g[e] = (bi ? bi[k] : 0.0f) + (bh ? bh[k] : 0.0f);
    }
}

// step t of one direction: gates a (pre-activations in, activations out), c and tanh c, and h
static __global__ void step_fwd_kernel(float *gd, float *cd, float *out, int B, int T, int H,
                                       int DH, int d, int t, int tp) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < B * H; e += gridDim.x * blockDim.x) {
        int b = e / H, j = e % H;
        float *a = gd + ((size_t)b * T + t) * 4 * H;
        float i = sigm(a[j]), f = sigm(a[H + j]), g = tanhf(a[2 * H + j]), o = sigm(a[3 * H + j]);
        a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
        float c = i * g;
        if (tp >= 0) c += f * cd[((size_t)b * T + tp) * 2 * H + j];
        float *cr = cd + ((size_t)b * T + t) * 2 * H; // c, then tanh(c)
        cr[j] = c;
        cr[H + j] = tanhf(c);
        out[((size_t)b * T + t) * DH + (size_t)d * H + j] = o * cr[H + j];
    }
}

// step t backward: da at t from dout, dh (from step t+1) and dc (carried, updated in place)
static __global__ void step_bwd_kernel(float *dg, float *dc, const float *dh, const float *dout,
                                       const float *gd, const float *cd, int B, int T, int H,
                                       int DH, int d, int t, int tp) {
    for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < B * H; e += gridDim.x * blockDim.x) {
        int b = e / H, j = e % H;
        size_t r = (size_t)b * T + t;
        const float *a = gd + r * 4 * H;
        float *da = dg + r * 4 * H;
        float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        float tc = cd[r * 2 * H + H + j];
        float dhj = dout[r * DH + (size_t)d * H + j] + dh[e];
        float dcj = dc[e] + dhj * o * (1.0f - tc * tc);
        da[j] = dcj * g * i * (1.0f - i);
        da[H + j] = tp >= 0 ? dcj * cd[((size_t)b * T + tp) * 2 * H + j] * f * (1.0f - f) : 0.0f;
        da[2 * H + j] = dcj * i * (1.0f - g * g);
        da[3 * H + j] = dhj * tc * o * (1.0f - o);
        dc[e] = dcj * f;
    }
}

// db[k] += sum over rows of dg[r][k], each column by one thread in row order
static __global__ void col_sum_kernel(float *db, const float *dg, size_t rows, int G) {
    for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < G; k += gridDim.x * blockDim.x) {
        float s = 0.0f;
        for (size_t r = 0; r < rows; r++) s += dg[r * G + k];
        db[k] += s;
    }
}

static int step_time(int d, int s, int T) { return d ? T - 1 - s : s; }

extern "C" size_t pdrt_lstm_cuda_scratch_bytes(int B, int T, int H) {
    return pd_scratch_round((size_t)B * T * 4 * H * sizeof(float)) +
           2 * pd_scratch_round((size_t)B * H * sizeof(float));
}

extern "C" void pdrt_lstm_forward_cuda(pd_cuda_ctx *ctx, float *out, float *gates, float *cell,
                                       const float *inp, const float *w_ih, const float *w_hh,
                                       const float *b_ih, const float *b_hh, int B, int T, int F,
                                       int H, int D) {
    int G = 4 * H, DH = D * H;
    size_t rows = (size_t)B * T;
    unsigned nb = pd_blocks((size_t)B * H, 256);
    for (int d = 0; d < D; d++) {
        float *gd = gates + (size_t)d * rows * G, *cd = cell + (size_t)d * rows * 2 * H;
        const float *wi = w_ih + (size_t)d * G * F, *wh = w_hh + (size_t)d * G * H;
        float beta = 0.0f;
        if (b_ih || b_hh) {
            bias_rows_kernel<<<pd_blocks(rows * G, 256), 256, 0, ctx->stream>>>(
                gd, b_ih ? b_ih + (size_t)d * G : NULL, b_hh ? b_hh + (size_t)d * G : NULL, rows,
                G);
            PD_CUDA_LAUNCHED();
            beta = 1.0f;
        }
        // gd[B*T][4H] (+)= x[B*T][F] W_ih^T
        gemm(ctx, gd, inp, wi, (int)rows, G, F, F, 1, 1, F, G, beta);
        for (int s = 0; s < T; s++) {
            int t = step_time(d, s, T), tp = s > 0 ? step_time(d, s - 1, T) : -1;
            if (s > 0) // gates at t += h_prev W_hh^T, B rows strided by T
                gemm(ctx, gd + (size_t)t * G, out + (size_t)tp * DH + (size_t)d * H, wh, B, G, H,
                     (long)T * DH, 1, 1, H, (long)T * G, 1.0f);
            step_fwd_kernel<<<nb, 256, 0, ctx->stream>>>(gd, cd, out, B, T, H, DH, d, t, tp);
            PD_CUDA_LAUNCHED();
        }
    }
}

extern "C" void pdrt_lstm_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dw_ih, float *dw_hh,
                                        float *db_ih, float *db_hh, const float *dout,
                                        const float *out, const float *inp, const float *w_ih,
                                        const float *w_hh, const float *gates, const float *cell,
                                        int B, int T, int F, int H, int D) {
    int G = 4 * H, DH = D * H;
    size_t rows = (size_t)B * T;
    unsigned nb = pd_blocks((size_t)B * H, 256);
    pd_scratch_reset(ctx);
    float *dg = (float *)PD_SCRATCH(ctx, rows * G * sizeof(float));
    float *dh = (float *)PD_SCRATCH(ctx, (size_t)B * H * sizeof(float));
    float *dc = (float *)PD_SCRATCH(ctx, (size_t)B * H * sizeof(float));
    for (int d = 0; d < D; d++) {
        const float *gd = gates + (size_t)d * rows * G, *cd = cell + (size_t)d * rows * 2 * H;
        const float *wi = w_ih + (size_t)d * G * F, *wh = w_hh + (size_t)d * G * H;
        PD_CUDA_CHECK(cudaMemsetAsync(dh, 0, (size_t)B * H * sizeof(float), ctx->stream));
        PD_CUDA_CHECK(cudaMemsetAsync(dc, 0, (size_t)B * H * sizeof(float), ctx->stream));
        for (int s = T - 1; s >= 0; s--) {
            int t = step_time(d, s, T), tp = s > 0 ? step_time(d, s - 1, T) : -1;
            step_bwd_kernel<<<nb, 256, 0, ctx->stream>>>(dg, dc, dh, dout, gd, cd, B, T, H, DH, d,
                                                         t, tp);
            PD_CUDA_LAUNCHED();
            if (s > 0) // dh[B][H] = da_t[B][4H] W_hh[4H][H]
                gemm(ctx, dh, dg + (size_t)t * G, wh, B, H, G, (long)T * G, 1, H, 1, H, 0.0f);
        }
        if (dw_hh && T > 1) // dW_hh[4H][H] += sum over steps s >= 1 of da_t^T h_prev
            for (int b = 0; b < B; b++) {
                size_t r0 = (size_t)b * T;
                gemm(ctx, dw_hh + (size_t)d * G * H, dg + (r0 + (d ? 0 : 1)) * G,
                     out + (r0 + (d ? 1 : 0)) * DH + (size_t)d * H, G, H, T - 1, 1, G, DH, 1, H,
                     1.0f);
            }
        if (dw_ih) // dW_ih[4H][F] += da^T x
            gemm(ctx, dw_ih + (size_t)d * G * F, dg, inp, G, F, (int)rows, 1, G, F, 1, F, 1.0f);
        if (dinp) // dx[B*T][F] += da W_ih
            gemm(ctx, dinp, dg, wi, (int)rows, F, G, G, 1, F, 1, F, 1.0f);
        for (int k = 0; k < 2; k++) {
            float *db = k ? db_hh : db_ih;
            if (!db) continue;
            col_sum_kernel<<<pd_blocks((size_t)G, 128), 128, 0, ctx->stream>>>(
                db + (size_t)d * G, dg, rows, G);
            PD_CUDA_LAUNCHED();
        }
    }
}
