/* ops_attention.c: causal multi-head self-attention (GPT-2's core) row by row through BLAS level 2:
 * for query i of head h only keys j <= i are ever touched (sgemv over the first i+1 rows of K and
 * V, sger into their gradients), so the mask is by construction and a row costs O(i * hs); the
 * softmax's backward is the O(T) per-row form. Single-threaded, fixed order: deterministic. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ops.h"

size_t pdrt_attention_scratch_floats(int T) { return (size_t)T; }

void pdrt_attention_forward(float *out, float *att, const float *inp, int B, int T, int C,
                            int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *base = inp + (size_t)b * T * C3 + (size_t)h * hs;
            const float *K = base + C, *V = base + 2 * C;
            for (int i = 0; i < T; i++) {
                const float *q = base + (size_t)i * C3;
                float *p = att + (((size_t)b * NH + h) * T + i) * T;
                /* p[j] = scale * k_j . q, j <= i */
                cblas_sgemv(CblasRowMajor, CblasNoTrans, i + 1, hs, scale, K, C3, q, 1, 0.0f, p,
                            1);
                float mx = p[0];
                for (int j = 1; j <= i; j++) mx = p[j] > mx ? p[j] : mx;
                double sum = 0.0;
                for (int j = 0; j <= i; j++) {
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                float inv = (float)(1.0 / sum);
                for (int j = 0; j <= i; j++) p[j] *= inv;
                if (i + 1 < T) memset(p + i + 1, 0, (size_t)(T - i - 1) * sizeof(float));
                /* y_i = sum_{j<=i} p[j] v_j */
                float *y = out + ((size_t)b * T + i) * C + (size_t)h * hs;
                cblas_sgemv(CblasRowMajor, CblasTrans, i + 1, hs, 1.0f, V, C3, p, 1, 0.0f, y, 1);
            }
        }
}

void pdrt_attention_backward(float *dinp, float *scratch, const float *dout, const float *inp,
                             const float *att, int B, int T, int C, int NH) {
    if (!dinp) return;
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    float *ds = scratch; /* T floats: dp, then ds in place */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t off = (size_t)b * T * C3 + (size_t)h * hs;
            const float *base = inp + off, *K = base + C, *V = base + 2 * C;
            float *dbase = dinp + off, *dK = dbase + C, *dV = dbase + 2 * C;
            for (int i = 0; i < T; i++) {
                const float *q = base + (size_t)i * C3;
                const float *p = att + (((size_t)b * NH + h) * T + i) * T;
                const float *dy = dout + ((size_t)b * T + i) * C + (size_t)h * hs;
                /* dv_j += p[j] dy; dp[j] = v_j . dy */
                cblas_sger(CblasRowMajor, i + 1, hs, 1.0f, p, 1, dy, 1, dV, C3);
                cblas_sgemv(CblasRowMajor, CblasNoTrans, i + 1, hs, 1.0f, V, C3, dy, 1, 0.0f, ds,
                            1);
                /* ds[j] = p[j] (dp[j] - sum_j' p[j'] dp[j']) */
                double dot = 0.0;
                for (int j = 0; j <= i; j++) dot += (double)p[j] * ds[j];
                for (int j = 0; j <= i; j++) ds[j] = p[j] * (ds[j] - (float)dot);
                /* dq_i += scale sum_j ds[j] k_j; dk_j += scale ds[j] q_i */
                cblas_sgemv(CblasRowMajor, CblasTrans, i + 1, hs, scale, K, C3, ds, 1, 1.0f,
                            dbase + (size_t)i * C3, 1);
                cblas_sger(CblasRowMajor, i + 1, hs, scale, ds, 1, q, 1, dK, C3);
            }
        }
}
