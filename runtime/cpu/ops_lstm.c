/* ops_lstm.c: one LSTM layer over a batch of sequences (ops.h has the math and the layouts),
 * through cblas_sgemm: the input projection of all B*T tokens as one product, then the recurrence
 * one time step at a time (a [B][H] x [H][4H] product into that step's gate rows, then the gates
 * and the cell elementwise); the backward runs backpropagation through time the same way, step
 * by step from the last, and then takes the weight and input gradients as whole-sequence
 * products. The state starts at zero for every sequence. Single-threaded, fixed order. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "ops.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }
/* tanh through expf (glibc's tanhf goes through the slower expm1f): 2 sigmoid(2x) - 1, within a
 * few 1e-8 of tanhf absolutely, exact limits at both ends */
static inline float tanh_fast(float x) { return 2.0f / (1.0f + expf(-2.0f * x)) - 1.0f; }

size_t pdrt_lstm_scratch_floats(int B, int T, int H) {
    return (size_t)B * T * 4 * H + 2 * (size_t)B * H; /* dgates, dh, dc */
}

/* One step's gate gradients da [4H] (pre-activation) of one sample, from its output gradient dy,
 * the dh carried from the step after, and the dc carried in place; a = i, f, g, o; c = c, tanh c;
 * cp the previous step's (NULL at the first step: c_prev = 0, so no forget-gate gradient). No
 * calls in the loops, so they vectorize; GCC's -O2 ("very cheap" cost model) vectorizes only
 * loops of a known trip count, and these run H times, so the function asks for its dynamic one. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("vect-cost-model=dynamic")))
#endif
static void step_backward(float *restrict da, float *restrict dc, const float *restrict dh,
                          const float *restrict dy, const float *restrict a,
                          const float *restrict c, const float *restrict cp, int H) {
    const float *ig = a, *fg = a + H, *gg = a + 2 * H, *og = a + 3 * H, *tc = c + H;
    for (int j = 0; j < H; j++) {
        float dhj = dy[j] + dh[j];
        float dcj = dc[j] + dhj * og[j] * (1.0f - tc[j] * tc[j]);
        da[j] = dcj * gg[j] * ig[j] * (1.0f - ig[j]);
        da[2 * H + j] = dcj * ig[j] * (1.0f - gg[j] * gg[j]);
        da[3 * H + j] = dhj * tc[j] * og[j] * (1.0f - og[j]);
        dc[j] = dcj; /* times f below, once df has used it */
    }
    if (cp)
        for (int j = 0; j < H; j++) da[H + j] = dc[j] * cp[j] * fg[j] * (1.0f - fg[j]);
    else
        for (int j = 0; j < H; j++) da[H + j] = 0.0f;
    for (int j = 0; j < H; j++) dc[j] *= fg[j];
}

/* The time index of step s of direction d (1 runs backwards in time). */
static inline int step_time(int d, int s, int T) { return d ? T - 1 - s : s; }

void pdrt_lstm_forward(float *out, float *gates, float *cell, const float *inp,
                       const float *w_ih, const float *w_hh, const float *b_ih,
                       const float *b_hh, int B, int T, int F, int H, int D) {
    int G = 4 * H, DH = D * H;
    size_t rows = (size_t)B * T;
    for (int d = 0; d < D; d++) {
        float *gd = gates + (size_t)d * rows * G, *cd = cell + (size_t)d * rows * 2 * H;
        const float *wi = w_ih + (size_t)d * G * F, *wh = w_hh + (size_t)d * G * H;
        /* every token's input projection and both biases: gd[B*T][4H] = x W_ih^T + b */
        float beta = 0.0f;
        if (b_ih || b_hh) {
            for (size_t r = 0; r < rows; r++)
                for (int k = 0; k < G; k++)
                    gd[r * G + k] = (b_ih ? b_ih[(size_t)d * G + k] : 0.0f) +
                                    (b_hh ? b_hh[(size_t)d * G + k] : 0.0f);
            beta = 1.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, G, F, 1.0f, inp, F, wi,
                    F, beta, gd, G);
        for (int s = 0; s < T; s++) {
            int t = step_time(d, s, T), tp = step_time(d, s - 1, T);
            if (s > 0) /* gates at t += h_{t-1} W_hh^T, the B rows strided by T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, G, H, 1.0f,
                            out + (size_t)tp * DH + (size_t)d * H, T * DH, wh, H, 1.0f,
                            gd + (size_t)t * G, T * G);
            for (int b = 0; b < B; b++) {
                float *a = gd + ((size_t)b * T + t) * G;
                float *c = cd + ((size_t)b * T + t) * 2 * H; /* c, then tanh(c) */
                const float *cp = s > 0 ? cd + ((size_t)b * T + tp) * 2 * H : NULL;
                float *h = out + ((size_t)b * T + t) * DH + (size_t)d * H;
                for (int j = 0; j < H; j++) {
                    float i = sigmoidf(a[j]), f = sigmoidf(a[H + j]),
                          g = tanh_fast(a[2 * H + j]), o = sigmoidf(a[3 * H + j]);
                    a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
                    c[j] = (cp ? f * cp[j] : 0.0f) + i * g;
                    c[H + j] = tanh_fast(c[j]);
                    h[j] = o * c[H + j];
                }
            }
        }
    }
}

void pdrt_lstm_backward(float *dinp, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        float *scratch, const float *dout, const float *out, const float *inp,
                        const float *w_ih, const float *w_hh, const float *gates,
                        const float *cell, int B, int T, int F, int H, int D) {
    int G = 4 * H, DH = D * H;
    size_t rows = (size_t)B * T;
    float *dg = scratch, *dh = dg + rows * G, *dc = dh + (size_t)B * H;
    for (int d = 0; d < D; d++) {
        const float *gd = gates + (size_t)d * rows * G, *cd = cell + (size_t)d * rows * 2 * H;
        const float *wi = w_ih + (size_t)d * G * F, *wh = w_hh + (size_t)d * G * H;
        memset(dh, 0, (size_t)B * H * sizeof(float)); /* dL/dh_t from step t+1 */
        memset(dc, 0, (size_t)B * H * sizeof(float)); /* dL/dc_t from step t+1 */
        for (int s = T - 1; s >= 0; s--) {
            int t = step_time(d, s, T), tp = step_time(d, s - 1, T);
            for (int b = 0; b < B; b++) {
                size_t r = (size_t)b * T + t;
                const float *cp = s > 0 ? cd + ((size_t)b * T + tp) * 2 * H : NULL;
                step_backward(dg + r * G, dc + (size_t)b * H, dh + (size_t)b * H,
                              dout + r * DH + (size_t)d * H, gd + r * G, cd + r * 2 * H, cp, H);
            }
            if (s > 0) /* dh_{t-1} = da_t W_hh */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, H, G, 1.0f,
                            dg + (size_t)t * G, T * G, wh, H, 0.0f, dh, H);
        }
        if (dw_hh && T > 1) /* dW_hh += sum over steps s >= 1 of da_t^T h_{t-1} */
            for (int b = 0; b < B; b++) {
                size_t r0 = (size_t)b * T;
                const float *da = dg + (r0 + (d ? 0 : 1)) * G;
                const float *hp = out + (r0 + (d ? 1 : 0)) * DH + (size_t)d * H;
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, T - 1, 1.0f, da, G, hp,
                            DH, 1.0f, dw_hh + (size_t)d * G * H, H);
            }
        if (dw_ih) /* dW_ih += da^T x over all tokens */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, F, (int)rows, 1.0f, dg, G,
                        inp, F, 1.0f, dw_ih + (size_t)d * G * F, F);
        if (dinp) /* dx += da W_ih */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, F, G, 1.0f, dg, G,
                        wi, F, 1.0f, dinp, F);
        for (int k = 0; k < 2; k++) {
            float *db = k ? db_hh : db_ih;
            if (!db) continue;
            db += (size_t)d * G;
            for (size_t r = 0; r < rows; r++)
                for (int j = 0; j < G; j++) db[j] += dg[r * G + j];
        }
    }
}
