/* ops_conv.c: 2-D convolution (cross-correlation with zero padding): oneDNN's where the build has
 * it (ops_conv_dnnl.c, tried first), else by im2col + sgemm, over cache-sized blocks of samples.
 *
 * The batch goes in blocks of G samples (G from the shapes only). Scratch layout per block:
 * col [C*KH*KW][G*OH*OW] (the unfolded input, one column per output position of each sample)
 * followed by tmp [OC][G*OH*OW] (the output, channel-major across the block, which is then
 * scattered to NCHW). The backward recomputes col, forms dweight from it, then reuses it
 * for dcol = weight^T * dout, which col2im adds into dinp.
 */
#include <cblas.h>
#include <string.h>

#include "ops.h"
#include "ops_conv_dnnl.h"

#ifndef PD_CONV_BLOCK_FLOATS
#define PD_CONV_BLOCK_FLOATS (1u << 20) /* 4 MiB of columns: measured best of 2^15..2^30 */
#endif

/* the range [*lo, *hi) of output positions o whose input o*S - P + k lies in [0, n) */
static void valid_range(int *lo, int *hi, int n_out, int n, int k, int S, int P) {
    int a = P - k; /* need o*S >= a */
    int l = a <= 0 ? 0 : (a + S - 1) / S;
    int b = n + P - k; /* need o*S < b */
    int h = b <= 0 ? 0 : (b + S - 1) / S;
    if (h > n_out) h = n_out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* col[(c*KH + kh)*KW + kw][b*OHW + oh*OW + ow] = inp[b][c][oh*SH - PH + kh][ow*SW - PW + kw] */
static void im2col(float *col, const float *inp, int B, int C, int H, int W, int KH, int KW,
                   int SH, int SW, int PH, int PW, int OH, int OW) {
    size_t OHW = (size_t)OH * OW, N = (size_t)B * OHW;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                float *row = col + ((size_t)(c * KH + kh) * KW + kw) * N;
                int oh_lo, oh_hi, ow_lo, ow_hi;
                valid_range(&oh_lo, &oh_hi, OH, H, kh, SH, PH);
                valid_range(&ow_lo, &ow_hi, OW, W, kw, SW, PW);
                for (int b = 0; b < B; b++) {
                    const float *x = inp + ((size_t)b * C + c) * H * W;
                    float *r = row + b * OHW;
                    for (int oh = 0; oh < OH; oh++) {
                        float *ro = r + (size_t)oh * OW;
                        if (oh < oh_lo || oh >= oh_hi) {
                            memset(ro, 0, (size_t)OW * sizeof(float));
                            continue;
                        }
                        const float *xr = x + (size_t)(oh * SH - PH + kh) * W - PW + kw;
                        for (int ow = 0; ow < ow_lo; ow++) ro[ow] = 0.0f;
                        if (SW == 1)
                            memcpy(ro + ow_lo, xr + ow_lo, (size_t)(ow_hi - ow_lo) * sizeof(float));
                        else
                            for (int ow = ow_lo; ow < ow_hi; ow++) ro[ow] = xr[ow * SW];
                        for (int ow = ow_hi; ow < OW; ow++) ro[ow] = 0.0f;
                    }
                }
            }
}

/* the adjoint of im2col: dinp[b][c][ih][iw] += every col entry that was copied from it */
static void col2im_add(float *dinp, const float *col, int B, int C, int H, int W, int KH, int KW,
                       int SH, int SW, int PH, int PW, int OH, int OW) {
    size_t OHW = (size_t)OH * OW, N = (size_t)B * OHW;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const float *row = col + ((size_t)(c * KH + kh) * KW + kw) * N;
                int oh_lo, oh_hi, ow_lo, ow_hi;
                valid_range(&oh_lo, &oh_hi, OH, H, kh, SH, PH);
                valid_range(&ow_lo, &ow_hi, OW, W, kw, SW, PW);
                for (int b = 0; b < B; b++) {
                    float *x = dinp + ((size_t)b * C + c) * H * W;
                    const float *r = row + b * OHW;
                    for (int oh = oh_lo; oh < oh_hi; oh++) {
                        const float *ro = r + (size_t)oh * OW;
                        float *xr = x + (size_t)(oh * SH - PH + kh) * W - PW + kw;
                        for (int ow = ow_lo; ow < ow_hi; ow++) xr[ow * SW] += ro[ow];
                    }
                }
            }
}

/* Samples per im2col block: enough columns for an efficient sgemm, few enough that the block
 * stays in cache. Depends only on the shapes, so results are deterministic. */
static int block_samples(int B, size_t K, size_t OHW) {
    size_t want = PD_CONV_BLOCK_FLOATS / (K * OHW + 1);
    if (want < 1) want = 1;
    if (want > (size_t)B) want = (size_t)B;
    return (int)want;
}

size_t pdrt_conv2d_scratch_floats(int B, int C, int H, int W, int OC, int KH, int KW, int SH, int SW,
                             int PH, int PW) {
    size_t OHW = (size_t)pdrt_pool_out_size(H, KH, SH, PH) * pdrt_pool_out_size(W, KW, SW, PW);
    size_t K = (size_t)C * KH * KW;
    return (K + OC) * (size_t)block_samples(B, K, OHW) * OHW;
}

void pdrt_conv2d_forward(float *out, float *scratch, const float *inp, const float *weight,
                    const float *bias, int B, int C, int H, int W, int OC, int KH, int KW,
                    int SH, int SW, int PH, int PW) {
    if (pdrt_conv2d_forward_dnnl(out, inp, weight, bias, B, C, H, W, OC, KH, KW, SH, SW, PH, PW))
        return;
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
    size_t OHW = (size_t)OH * OW, CHW = (size_t)C * H * W;
    int K = C * KH * KW, G = block_samples(B, (size_t)K, OHW);
    for (int b0 = 0; b0 < B; b0 += G) {
        int g = B - b0 < G ? B - b0 : G;
        size_t N = (size_t)g * OHW;
        float *col = scratch, *tmp = scratch + (size_t)K * N;
        im2col(col, inp + b0 * CHW, g, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
        /* tmp[OC][N] = weight[OC][K] * col[K][N] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, (int)N, K, 1.0f, weight, K,
                    col, (int)N, 0.0f, tmp, (int)N);
        for (int b = 0; b < g; b++)
            for (int o = 0; o < OC; o++) {
                float *dst = out + ((size_t)(b0 + b) * OC + o) * OHW;
                const float *src = tmp + (size_t)o * N + b * OHW;
                float bo = bias ? bias[o] : 0.0f;
                for (size_t p = 0; p < OHW; p++) dst[p] = src[p] + bo;
            }
    }
}

void pdrt_conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                     const float *dout, const float *inp, const float *weight, int B, int C,
                     int H, int W, int OC, int KH, int KW, int SH, int SW, int PH, int PW) {
    if (pdrt_conv2d_backward_dnnl(dinp, dweight, dbias, dout, inp, weight, B, C, H, W, OC, KH, KW,
                                  SH, SW, PH, PW))
        return;
    int OH = pdrt_pool_out_size(H, KH, SH, PH), OW = pdrt_pool_out_size(W, KW, SW, PW);
    size_t OHW = (size_t)OH * OW, CHW = (size_t)C * H * W;
    int K = C * KH * KW, G = block_samples(B, (size_t)K, OHW);
    if (dbias)
        for (int o = 0; o < OC; o++) {
            float s = 0.0f;
            for (int b = 0; b < B; b++) {
                const float *d = dout + ((size_t)b * OC + o) * OHW;
                for (size_t p = 0; p < OHW; p++) s += d[p];
            }
            dbias[o] += s;
        }
    for (int b0 = 0; b0 < B; b0 += G) {
        int g = B - b0 < G ? B - b0 : G;
        size_t N = (size_t)g * OHW;
        float *col = scratch, *tmp = scratch + (size_t)K * N;
        /* tmp[OC][N]: this block's dout, channel-major */
        for (int b = 0; b < g; b++)
            for (int o = 0; o < OC; o++)
                memcpy(tmp + (size_t)o * N + b * OHW, dout + ((size_t)(b0 + b) * OC + o) * OHW,
                       OHW * sizeof(float));
        if (dweight) {
            im2col(col, inp + b0 * CHW, g, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
            /* dweight[OC][K] += tmp[OC][N] * col[K][N]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, K, (int)N, 1.0f, tmp,
                        (int)N, col, (int)N, 1.0f, dweight, K);
        }
        if (dinp) {
            /* col[K][N] = weight[OC][K]^T * tmp[OC][N] */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)N, OC, 1.0f, weight, K,
                        tmp, (int)N, 0.0f, col, (int)N);
            col2im_add(dinp + b0 * CHW, col, g, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW);
        }
    }
}
