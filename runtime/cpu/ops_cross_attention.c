/* ops_cross_attention.c: the two-input attention op (non-causal, multi-head): queries of one
 * sequence over the keys and values of another, as GNMT's decoder attends to the encoder's
 * outputs (ops.h has the math and layouts). Per sample and head, through cblas_sgemm over the
 * strided head columns: S = Q K^T / sqrt(hs), P = softmax over every key (rows max-shifted),
 * Y = P V; the backward forms dP = dY V^T and dS = P (dP - rowsum(P dP)) in scratch, then
 * dQ, dK, dV as products. The causal self-attention (ops_attention.c) is a separate kernel.
 * Single-threaded, fixed order: deterministic. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ops.h"

size_t pdrt_cross_attention_scratch_floats(int Tq, int Tk) { return (size_t)Tq * Tk; }

void pdrt_cross_attention_forward(float *out, float *att, const float *q, const float *kv,
                                  int B, int Tq, int Tk, int C, int NH) {
    int hs = C / NH, C2 = 2 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *Q = q + (size_t)b * Tq * C + (size_t)h * hs;
            const float *K = kv + (size_t)b * Tk * C2 + (size_t)h * hs, *V = K + C;
            float *P = att + ((size_t)b * NH + h) * Tq * Tk;
            /* P[Tq][Tk] = scale Q K^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hs, scale, Q, C, K, C2,
                        0.0f, P, Tk);
            for (int i = 0; i < Tq; i++) {
                float *p = P + (size_t)i * Tk, mx = p[0];
                for (int j = 1; j < Tk; j++) mx = p[j] > mx ? p[j] : mx;
                double sum = 0.0;
                for (int j = 0; j < Tk; j++) {
                    p[j] = expf(p[j] - mx);
                    sum += p[j];
                }
                float inv = (float)(1.0 / sum);
                for (int j = 0; j < Tk; j++) p[j] *= inv;
            }
            /* Y[Tq][hs] = P V */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hs, Tk, 1.0f, P, Tk, V, C2,
                        0.0f, out + (size_t)b * Tq * C + (size_t)h * hs, C);
        }
}

void pdrt_cross_attention_backward(float *dq, float *dkv, float *scratch, const float *dout,
                                   const float *q, const float *kv, const float *att, int B,
                                   int Tq, int Tk, int C, int NH) {
    int hs = C / NH, C2 = 2 * C;
    float scale = 1.0f / sqrtf((float)hs);
    float *dS = scratch; /* [Tq][Tk]: dP, then dS in place */
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t qo = (size_t)b * Tq * C + (size_t)h * hs, ko = (size_t)b * Tk * C2 + (size_t)h * hs;
            const float *Q = q + qo, *K = kv + ko, *V = K + C, *dY = dout + qo;
            const float *P = att + ((size_t)b * NH + h) * Tq * Tk;
            if (dkv) /* dV[Tk][hs] += P^T dY */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hs, Tq, 1.0f, P, Tk, dY,
                            C, 1.0f, dkv + ko + C, C2);
            /* dP[Tq][Tk] = dY V^T; dS = P (dP - rowsum(P dP)) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Tq, Tk, hs, 1.0f, dY, C, V, C2,
                        0.0f, dS, Tk);
            for (int i = 0; i < Tq; i++) {
                const float *p = P + (size_t)i * Tk;
                float *ds = dS + (size_t)i * Tk;
                double dot = 0.0;
                for (int j = 0; j < Tk; j++) dot += (double)p[j] * ds[j];
                for (int j = 0; j < Tk; j++) ds[j] = p[j] * (ds[j] - (float)dot);
            }
            if (dq) /* dQ[Tq][hs] += scale dS K */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Tq, hs, Tk, scale, dS, Tk,
                            K, C2, 1.0f, dq + qo, C);
            if (dkv) /* dK[Tk][hs] += scale dS^T Q */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Tk, hs, Tq, scale, dS, Tk, Q,
                            C, 1.0f, dkv + ko, C2);
        }
}
