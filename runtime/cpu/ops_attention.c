/* ops_attention.c: causal multi-head self-attention (GPT-2's core) through BLAS level 3, per
 * (sample, head) and per block of ATT_ROWS query rows: rows r0..r1-1 see keys 0..r1-1 only, so
 * the products are sgemms over the lower block-triangle (the one diagonal block's upper half is
 * the only waste: its probabilities are exact zeros) and no key after a row's last block is ever
 * touched; within a block the mask is by construction (the softmax sums j <= i only). The
 * softmax's backward is the O(T) per-row form. q, k and v are read in place (leading dimension
 * 3C): no packing. Single-threaded, fixed order: deterministic. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ops.h"
#include "vec_math.h"

#define ATT_ROWS 32 /* query rows per block: the products' M, the waste's square */

size_t pdrt_attention_scratch_floats(int T) {
    return (size_t)(T < ATT_ROWS ? T : ATT_ROWS) * (size_t)T;
}

/* p[0..n) = softmax(p[0..n)) in place (n >= 1), four lanes at a time with vec_math.h's exp */
static void softmax_row(float *p, int n) {
    float mx = p[0];
    for (int j = 1; j < n; j++) mx = p[j] > mx ? p[j] : mx;
    pd_f32x4 acc = pd_splat4(0.0f), m4 = pd_splat4(mx);
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        pd_f32x4 e = pd_exp4(pd_load4(p + j) - m4);
        pd_store4(p + j, e);
        acc += e;
    }
    float sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (; j < n; j++) {
        p[j] = pd_exp1(p[j] - mx);
        sum += p[j];
    }
    float inv = 1.0f / sum;
    for (j = 0; j < n; j++) p[j] *= inv;
}

void pdrt_attention_forward(float *out, float *att, const float *inp, int B, int T, int C,
                            int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *Q = inp + (size_t)b * T * C3 + (size_t)h * hs;
            const float *K = Q + C, *V = Q + 2 * C;
            float *P = att + ((size_t)b * NH + h) * T * T;
            float *Y = out + (size_t)b * T * C + (size_t)h * hs;
            for (int r0 = 0; r0 < T; r0 += ATT_ROWS) {
                int rows = T - r0 < ATT_ROWS ? T - r0 : ATT_ROWS, r1 = r0 + rows;
                float *Pb = P + (size_t)r0 * T;
                /* S[r0:r1, 0:r1] = scale Q[r0:r1] K[0:r1]^T, into P's rows (leading dim T) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r1, hs, scale,
                            Q + (size_t)r0 * C3, C3, K, C3, 0.0f, Pb, T);
                for (int i = r0; i < r1; i++) {
                    float *p = P + (size_t)i * T;
                    softmax_row(p, i + 1);
                    memset(p + i + 1, 0, (size_t)(T - i - 1) * sizeof(float));
                }
                /* Y[r0:r1] = P[r0:r1, 0:r1] V[0:r1] (the zeros above the diagonal add nothing) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, r1, 1.0f, Pb, T,
                            V, C3, 0.0f, Y + (size_t)r0 * C, C);
            }
        }
}

void pdrt_attention_backward(float *dinp, float *scratch, const float *dout, const float *inp,
                             const float *att, int B, int T, int C, int NH) {
    if (!dinp) return;
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    float *dS = scratch; /* one block of rows: dp, then ds in place (leading dim T) */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t off = (size_t)b * T * C3 + (size_t)h * hs;
            const float *Q = inp + off, *K = Q + C, *V = Q + 2 * C;
            float *dQ = dinp + off, *dK = dQ + C, *dV = dQ + 2 * C;
            const float *P = att + ((size_t)b * NH + h) * T * T;
            const float *dY = dout + (size_t)b * T * C + (size_t)h * hs;
            for (int r0 = 0; r0 < T; r0 += ATT_ROWS) {
                int rows = T - r0 < ATT_ROWS ? T - r0 : ATT_ROWS, r1 = r0 + rows;
                const float *Pb = P + (size_t)r0 * T, *dYb = dY + (size_t)r0 * C;
                /* dV[0:r1] += P[r0:r1, 0:r1]^T dY[r0:r1] */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hs, rows, 1.0f, Pb, T,
                            dYb, C, 1.0f, dV, C3);
                /* dP[r0:r1, 0:r1] = dY[r0:r1] V[0:r1]^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, r1, hs, 1.0f, dYb, C,
                            V, C3, 0.0f, dS, T);
                /* ds_ij = p_ij (dp_ij - sum_{j'<=i} p_ij' dp_ij') for j <= i, 0 after */
                for (int i = r0; i < r1; i++) {
                    const float *p = P + (size_t)i * T;
                    float *ds = dS + (size_t)(i - r0) * T;
                    pd_f32x4 acc = pd_splat4(0.0f);
                    int j = 0;
                    for (; j + 4 <= i + 1; j += 4) acc += pd_load4(p + j) * pd_load4(ds + j);
                    float dot = (acc[0] + acc[1]) + (acc[2] + acc[3]);
                    for (; j <= i; j++) dot += p[j] * ds[j];
                    pd_f32x4 d4 = pd_splat4(dot);
                    for (j = 0; j + 4 <= i + 1; j += 4)
                        pd_store4(ds + j, pd_load4(p + j) * (pd_load4(ds + j) - d4));
                    for (; j <= i; j++) ds[j] = p[j] * (ds[j] - dot);
                    for (; j < r1; j++) ds[j] = 0.0f;
                }
                /* dQ[r0:r1] += scale dS K[0:r1]; dK[0:r1] += scale dS^T Q[r0:r1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, r1, scale, dS,
                            T, K, C3, 1.0f, dQ + (size_t)r0 * C3, C3);
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r1, hs, rows, scale, dS, T,
                            Q + (size_t)r0 * C3, C3, 1.0f, dK, C3);
            }
        }
}
