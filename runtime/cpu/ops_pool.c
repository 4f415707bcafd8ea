/* ops_pool.c: max and average pooling over NCHW planes, forward and backward. */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "ops.h"

int pdrt_pool_out_size(int in, int k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

static inline float relu1(float v) { /* pdrt_relu_forward's bits: v where v > 0, else +0 */
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= (uint32_t)0 - (uint32_t)(v > 0.0f);
    memcpy(&v, &bits, sizeof bits);
    return v;
}

/* keeps (v, i) where v > best: the scalar loop's strict test in the same window order, so ties
 * and NaNs pick what it picks */
static inline void take_if_greater(f32x4 *best, i32x4 *bi, f32x4 v, i32x4 i) {
    i32x4 m = v > *best;
    *best = (f32x4)(((i32x4)v & m) | ((i32x4)*best & ~m));
    *bi = (i & m) | (*bi & ~m);
}

/* 2x2 windows, stride 2, no padding (the usual halving pool): four outputs at a time, branch-free
 * (the generic loop's compares on random data mispredicted and it cost about as much as a
 * convolution's reorders) */
static inline f32x4 relu4(f32x4 v) { return (f32x4)((i32x4)v & (v > (f32x4){0, 0, 0, 0})); }

/* (relu: of relu(inp), the argmax -1 where that maximum is 0: see pdrt_relu_maxpool2d_forward) */
static void maxpool_2x2(float *out, int *argmax, const float *inp, size_t BC, int H, int W, int OH,
                        int OW, int relu) {
    for (size_t bc = 0; bc < BC; bc++) {
        const float *x = inp + bc * H * W;
        float *y = out + bc * OH * OW;
        int *am = argmax + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
            int ow = 0;
            for (; ow + 4 <= OW; ow += 4) {
                f32x4 a0, a1, b0, b1;
                memcpy(&a0, r0 + 2 * ow, sizeof a0);
                memcpy(&a1, r0 + 2 * ow + 4, sizeof a1);
                memcpy(&b0, r1 + 2 * ow, sizeof b0);
                memcpy(&b1, r1 + 2 * ow + 4, sizeof b1);
                if (relu) a0 = relu4(a0), a1 = relu4(a1), b0 = relu4(b0), b1 = relu4(b1);
                int i0 = 2 * oh * W + 2 * ow;
                i32x4 idx = {i0, i0 + 2, i0 + 4, i0 + 6};
                f32x4 best = __builtin_shufflevector(a0, a1, 0, 2, 4, 6);
                i32x4 bi = idx;
                take_if_greater(&best, &bi, __builtin_shufflevector(a0, a1, 1, 3, 5, 7), idx + 1);
                take_if_greater(&best, &bi, __builtin_shufflevector(b0, b1, 0, 2, 4, 6), idx + W);
                take_if_greater(&best, &bi, __builtin_shufflevector(b0, b1, 1, 3, 5, 7), idx + W + 1);
                if (relu) { /* -1 (all bits) where the maximum is 0 */
                    i32x4 pos = best > (f32x4){0, 0, 0, 0};
                    bi = (bi & pos) | ~pos;
                }
                memcpy(y + oh * OW + ow, &best, sizeof best);
                memcpy(am + oh * OW + ow, &bi, sizeof bi);
            }
            for (; ow < OW; ow++) {
                int i0 = 2 * oh * W + 2 * ow, c[3] = {i0 + 1, i0 + W, i0 + W + 1}, best_i = i0;
                float best = relu ? relu1(x[i0]) : x[i0];
                for (int k = 0; k < 3; k++) {
                    float v = relu ? relu1(x[c[k]]) : x[c[k]];
                    if (v > best) best = v, best_i = c[k];
                }
                if (relu && !(best > 0.0f)) best_i = -1;
                y[oh * OW + ow] = best;
                am[oh * OW + ow] = best_i;
            }
        }
    }
}

/* Any window, with bounds checks (padding: a window's cells outside the plane are skipped; the
 * first cell inside is taken, then any greater one). relu: as maxpool_2x2's. */
static void maxpool_windows(float *out, int *argmax, const float *inp, size_t BC, int H, int W,
                            int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW,
                            int relu) {
    for (size_t bc = 0; bc < BC; bc++) {
        const float *x = inp + bc * H * W;
        float *y = out + bc * OH * OW;
        int *am = argmax + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float best = relu ? 0.0f : -FLT_MAX;
                int best_i = -1;
                for (int kh = 0; kh < KH; kh++) {
                    int ih = oh * SH - PH + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = ow * SW - PW + kw;
                        if (iw < 0 || iw >= W) continue;
                        float v = relu ? relu1(x[ih * W + iw]) : x[ih * W + iw];
                        if (best_i < 0 || v > best) {
                            best = v;
                            best_i = ih * W + iw;
                        }
                    }
                }
                y[oh * OW + ow] = best;
                am[oh * OW + ow] = relu && !(best > 0.0f) ? -1 : best_i;
            }
    }
}

void pdrt_maxpool2d_forward(float *out, int *argmax, const float *inp, int B, int C, int H, int W,
                       int KH, int KW, int SH, int SW, int PH, int PW) {
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
    if (KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0) {
        maxpool_2x2(out, argmax, inp, (size_t)B * C, H, W, OH, OW, 0);
        return;
    }
    if (PH == 0 && PW == 0) { /* every window lies inside the plane: no bounds checks */
        for (size_t bc = 0; bc < (size_t)B * C; bc++) {
            const float *x = inp + bc * H * W;
            float *y = out + bc * OH * OW;
            int *am = argmax + bc * OH * OW;
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    int i0 = oh * SH * W + ow * SW, best_i = i0;
                    float best = x[i0];
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++) {
                            int i = i0 + kh * W + kw;
                            if (x[i] > best) best = x[i], best_i = i;
                        }
                    y[oh * OW + ow] = best;
                    am[oh * OW + ow] = best_i;
                }
        }
        return;
    }
    maxpool_windows(out, argmax, inp, (size_t)B * C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, 0);
}

void pdrt_relu_maxpool2d_forward(float *out, int *argmax, const float *inp, int B, int C, int H,
                                 int W, int KH, int KW, int SH, int SW, int PH, int PW) {
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
    if (KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0) {
        maxpool_2x2(out, argmax, inp, (size_t)B * C, H, W, OH, OW, 1);
        return;
    }
    maxpool_windows(out, argmax, inp, (size_t)B * C, H, W, OH, OW, KH, KW, SH, SW, PH, PW, 1);
}

void pdrt_maxpool2d_backward(float *dinp, const float *dout, const int *argmax, int B, int C, int H,
                        int W, int KH, int KW, int SH, int SW, int PH, int PW) {
    if (!dinp) return;
    size_t OHW = (size_t)pdrt_pool_out_size(H, KH, SH, PH) * pdrt_pool_out_size(W, KW, SW, PW);
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        float *dx = dinp + bc * H * W;
        const float *dy = dout + bc * OHW;
        const int *am = argmax + bc * OHW;
        for (size_t p = 0; p < OHW; p++)
            if (am[p] >= 0) dx[am[p]] += dy[p];
    }
}

void pdrt_maxpool2d_backward_set(float *dinp, const float *dout, const int *argmax, int B, int C,
                                 int H, int W, int KH, int KW, int SH, int SW, int PH, int PW) {
    if (!dinp) return;
    if (!(KH == 2 && KW == 2 && SH == 2 && SW == 2 && PH == 0 && PW == 0 && H % 2 == 0 &&
          W % 2 == 0)) {
        memset(dinp, 0, (size_t)B * C * H * W * sizeof(float));
        pdrt_maxpool2d_backward(dinp, dout, argmax, B, C, H, W, KH, KW, SH, SW, PH, PW);
        return;
    }
    int OH = H / 2, OW = W / 2;
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        float *dx = dinp + bc * H * W;
        const float *dy = dout + bc * OH * OW;
        const int *am = argmax + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            memset(dx + 2 * oh * W, 0, 2 * (size_t)W * sizeof(float)); /* this row of windows */
            for (int ow = 0; ow < OW; ow++) { /* 0 + dy: the bits of adding into zeros */
                int a = am[oh * OW + ow];
                if (a >= 0) dx[a] = 0.0f + dy[oh * OW + ow];
            }
        }
    }
}

void pdrt_avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int KH, int KW,
                       int SH, int SW, int PH, int PW) {
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
    float scale = 1.0f / (float)(KH * KW);
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        const float *x = inp + bc * H * W;
        float *y = out + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float s = 0.0f;
                for (int kh = 0; kh < KH; kh++) {
                    int ih = oh * SH - PH + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = ow * SW - PW + kw;
                        if (iw >= 0 && iw < W) s += x[ih * W + iw];
                    }
                }
                y[oh * OW + ow] = s * scale;
            }
    }
}

void pdrt_avgpool2d_backward(float *dinp, const float *dout, int B, int C, int H, int W, int KH,
                        int KW, int SH, int SW, int PH, int PW) {
    if (!dinp) return;
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
    float scale = 1.0f / (float)(KH * KW);
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        float *dx = dinp + bc * H * W;
        const float *dy = dout + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float g = dy[oh * OW + ow] * scale;
                for (int kh = 0; kh < KH; kh++) {
                    int ih = oh * SH - PH + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = ow * SW - PW + kw;
                        if (iw >= 0 && iw < W) dx[ih * W + iw] += g;
                    }
                }
            }
    }
}
