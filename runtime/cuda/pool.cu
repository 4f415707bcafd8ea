// pool.cu: max and average pooling, our own kernels with the CPU's exact semantics (maxpool's
// argmax scratch, first maximum on ties, padding as -inf; avgpool counting padding as zero).
// The backward kernels gather (one thread per input element, windows in output order), so they
// need no atomics and are deterministic.
#include "cuda_internal.h"

#define PD_THREADS 256

static int out_size(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }

static __global__ void maxpool_fwd_kernel(float *out, int *argmax, const float *inp, int H, int W,
                                   int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW,
                                   size_t n) {
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t bc = t / ((size_t)OH * OW);
        int r = (int)(t % ((size_t)OH * OW)), oh = r / OW, ow = r % OW;
        const float *x = inp + bc * H * W;
        float best = -3.402823466e38f;
        int best_i = -1;
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH - PH + kh;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
                int iw = ow * SW - PW + kw;
                if (iw < 0 || iw >= W) continue;
                float v = x[ih * W + iw];
                if (best_i < 0 || v > best) {
                    best = v;
                    best_i = ih * W + iw;
                }
            }
        }
        out[t] = best;
        argmax[t] = best_i;
    }
}

// the output rows whose windows cover input row h: oh in [lo, hi]
__device__ static void cover(int h, int K, int S, int P, int O, int *lo, int *hi) {
    int a = h + P - K + 1; // smallest oh*S that still covers h
    int l = a <= 0 ? 0 : (a + S - 1) / S;
    int u = (h + P) / S;
    if (u > O - 1) u = O - 1;
    *lo = l;
    *hi = u;
}

static __global__ void maxpool_bwd_kernel(float *dinp, const float *dout, const int *argmax, int H,
                                   int W, int OH, int OW, int KH, int KW, int SH, int SW, int PH,
                                   int PW, size_t n) {
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t bc = t / ((size_t)H * W);
        int r = (int)(t % ((size_t)H * W)), h = r / W, w = r % W;
        int oh0, oh1, ow0, ow1;
        cover(h, KH, SH, PH, OH, &oh0, &oh1);
        cover(w, KW, SW, PW, OW, &ow0, &ow1);
        const float *dy = dout + bc * OH * OW;
        const int *am = argmax + bc * OH * OW;
        float s = dinp[t];
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++)
                if (am[oh * OW + ow] == r) s += dy[oh * OW + ow];
        dinp[t] = s;
    }
}

static __global__ void avgpool_fwd_kernel(float *out, const float *inp, int H, int W, int OH, int OW,
                                   int KH, int KW, int SH, int SW, int PH, int PW, float scale,
                                   size_t n) {
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t bc = t / ((size_t)OH * OW);
        int r = (int)(t % ((size_t)OH * OW)), oh = r / OW, ow = r % OW;
        const float *x = inp + bc * H * W;
        float s = 0.0f;
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH - PH + kh;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
                int iw = ow * SW - PW + kw;
                if (iw >= 0 && iw < W) s += x[ih * W + iw];
            }
        }
        out[t] = s * scale;
    }
}

static __global__ void avgpool_bwd_kernel(float *dinp, const float *dout, int H, int W, int OH, int OW,
                                   int KH, int KW, int SH, int SW, int PH, int PW, float scale,
                                   size_t n) {
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < n;
         t += (size_t)gridDim.x * blockDim.x) {
        size_t bc = t / ((size_t)H * W);
        int r = (int)(t % ((size_t)H * W)), h = r / W, w = r % W;
        int oh0, oh1, ow0, ow1;
        cover(h, KH, SH, PH, OH, &oh0, &oh1);
        cover(w, KW, SW, PW, OW, &ow0, &ow1);
        const float *dy = dout + bc * OH * OW;
        float s = dinp[t];
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) s += dy[oh * OW + ow] * scale;
        dinp[t] = s;
    }
}

extern "C" void pdrt_maxpool2d_forward_cuda(pd_cuda_ctx *ctx, float *out, int *argmax,
                                       const float *inp, int B, int C, int H, int W, int KH,
                                       int KW, int SH, int SW, int PH, int PW) {
    int OH = out_size(H, KH, SH, PH), OW = out_size(W, KW, SW, PW);
    size_t n = (size_t)B * C * OH * OW;
    if (!n) return;
    maxpool_fwd_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        out, argmax, inp, H, W, OH, OW, KH, KW, SH, SW, PH, PW, n);
    PD_CUDA_LAUNCHED();
}
extern "C" void pdrt_maxpool2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout,
                                        const int *argmax, int B, int C, int H, int W, int KH,
                                        int KW, int SH, int SW, int PH, int PW) {
    int OH = out_size(H, KH, SH, PH), OW = out_size(W, KW, SW, PW);
    size_t n = (size_t)B * C * H * W;
    if (!dinp || !n) return;
    maxpool_bwd_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        dinp, dout, argmax, H, W, OH, OW, KH, KW, SH, SW, PH, PW, n);
    PD_CUDA_LAUNCHED();
}
extern "C" void pdrt_avgpool2d_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, int B,
                                       int C, int H, int W, int KH, int KW, int SH, int SW,
                                       int PH, int PW) {
    int OH = out_size(H, KH, SH, PH), OW = out_size(W, KW, SW, PW);
    size_t n = (size_t)B * C * OH * OW;
    if (!n) return;
    avgpool_fwd_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        out, inp, H, W, OH, OW, KH, KW, SH, SW, PH, PW, 1.0f / (float)(KH * KW), n);
    PD_CUDA_LAUNCHED();
}
extern "C" void pdrt_avgpool2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout, int B,
                                        int C, int H, int W, int KH, int KW, int SH, int SW,
                                        int PH, int PW) {
    int OH = out_size(H, KH, SH, PH), OW = out_size(W, KW, SW, PW);
    size_t n = (size_t)B * C * H * W;
    if (!dinp || !n) return;
    avgpool_bwd_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        dinp, dout, H, W, OH, OW, KH, KW, SH, SW, PH, PW, 1.0f / (float)(KH * KW), n);
    PD_CUDA_LAUNCHED();
}
