/* ops_pool.c: max and average pooling over NCHW planes, forward and backward. */
#include <float.h>

#include "ops.h"

int pdrt_pool_out_size(int in, int k, int stride, int pad) {
    return (in + 2 * pad - k) / stride + 1;
}

void pdrt_maxpool2d_forward(float *out, int *argmax, const float *inp, int B, int C, int H, int W,
                       int KH, int KW, int SH, int SW, int PH, int PW) {
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
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
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        const float *x = inp + bc * H * W;
        float *y = out + bc * OH * OW;
        int *am = argmax + bc * OH * OW;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float best = -FLT_MAX;
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
                y[oh * OW + ow] = best;
                am[oh * OW + ow] = best_i;
            }
    }
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
