/* ops_elementwise.c: relu, gelu, identity (flatten), dropout, add and channel concat, forward
 * and backward. */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "runtime/base/rng.h"

/* Four lanes at a time with GCC/Clang vector extensions and a bit mask: the build's -O2 neither
 * vectorises the scalar loop nor uses maxss (signed zeros, NaN), and a branch on random signs
 * mispredicts half the time. Lanes and the scalar tail give the same bits. */
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

static inline float keep_if_positive(float v, float test) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    bits &= (uint32_t)0 - (uint32_t)(test > 0.0f);
    memcpy(&v, &bits, sizeof bits);
    return v;
}

void pdrt_relu_forward(float *out, const float *inp, size_t N) {
    size_t i = 0;
    const f32x4 zero = {0, 0, 0, 0};
    for (; i + 4 <= N; i += 4) {
        f32x4 v;
        memcpy(&v, inp + i, sizeof v);
        i32x4 r = (i32x4)v & (v > zero);
        memcpy(out + i, &r, sizeof r);
    }
    for (; i < N; i++) out[i] = keep_if_positive(inp[i], inp[i]);
}

void pdrt_relu_backward(float *dinp, const float *dout, const float *out, size_t N) {
    if (!dinp) return;
    size_t i = 0;
    const f32x4 zero = {0, 0, 0, 0};
    for (; i + 4 <= N; i += 4) {
        f32x4 y, g, d;
        memcpy(&y, out + i, sizeof y);
        memcpy(&g, dout + i, sizeof g);
        memcpy(&d, dinp + i, sizeof d);
        d += (f32x4)((i32x4)g & (y > zero));
        memcpy(dinp + i, &d, sizeof d);
    }
    for (; i < N; i++) dinp[i] += keep_if_positive(dout[i], out[i]);
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

void pdrt_gelu_forward(float *out, const float *inp, size_t N) {
    for (size_t i = 0; i < N; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + GELU_C * x * x * x)));
    }
}

void pdrt_gelu_backward(float *dinp, const float *dout, const float *inp, size_t N) {
    if (!dinp) return;
    for (size_t i = 0; i < N; i++) {
        float x = inp[i], t = tanhf(GELU_K * (x + GELU_C * x * x * x));
        float du = GELU_K * (1.0f + 3.0f * GELU_C * x * x); /* du/dx */
        dinp[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
    }
}

void pdrt_identity_forward(float *out, const float *inp, size_t N) {
    if (out != inp) memmove(out, inp, N * sizeof(float));
}

void pdrt_identity_backward(float *dinp, const float *dout, size_t N) {
    if (!dinp) return;
    for (size_t i = 0; i < N; i++) dinp[i] += dout[i];
}

void pdrt_dropout_forward(float *out, float *mask, const float *inp, float p, uint64_t seed,
                     int64_t step, int layer, int64_t sample0, int B, size_t N) {
    float scale = 1.0f / (1.0f - p);
    for (int b = 0; b < B; b++) {
        uint64_t key = pd_rng_key(seed, PD_RNG_DROPOUT, (uint64_t)step, (uint64_t)layer,
                                  (uint64_t)(sample0 + b));
        const float *x = inp + (size_t)b * N;
        float *y = out + (size_t)b * N, *mk = mask + (size_t)b * N;
        for (size_t i = 0; i < N; i++) {
            mk[i] = (p > 0.0f && pd_rng_uniform(key, i) < p) ? 0.0f : scale;
            y[i] = x[i] * mk[i];
        }
    }
}

void pdrt_dropout_backward(float *dinp, const float *dout, const float *mask, size_t BN) {
    if (!dinp) return;
    for (size_t i = 0; i < BN; i++) dinp[i] += dout[i] * mask[i];
}

void pdrt_add_forward(float *out, const float *const *inps, int n, size_t N) {
    for (size_t i = 0; i < N; i++) {
        float s = inps[0][i];
        for (int k = 1; k < n; k++) s += inps[k][i];
        out[i] = s;
    }
}

void pdrt_add_backward(float *const *dinps, const float *dout, int n, size_t N) {
    for (int k = 0; k < n; k++)
        if (dinps[k])
            for (size_t i = 0; i < N; i++) dinps[k][i] += dout[i];
}

void pdrt_concat_forward(float *out, const float *const *inps, const int *channels, int n, int B,
                    int HW) {
    int total = 0;
    for (int k = 0; k < n; k++) total += channels[k];
    for (int b = 0; b < B; b++) {
        float *y = out + (size_t)b * total * HW;
        for (int k = 0; k < n; k++) {
            size_t len = (size_t)channels[k] * HW;
            memcpy(y, inps[k] + (size_t)b * len, len * sizeof(float));
            y += len;
        }
    }
}

void pdrt_concat_backward(float *const *dinps, const float *dout, const int *channels, int n, int B,
                     int HW) {
    int total = 0;
    for (int k = 0; k < n; k++) total += channels[k];
    for (int b = 0; b < B; b++) {
        const float *dy = dout + (size_t)b * total * HW;
        for (int k = 0; k < n; k++) {
            size_t len = (size_t)channels[k] * HW;
            if (dinps[k]) {
                float *dx = dinps[k] + (size_t)b * len;
                for (size_t i = 0; i < len; i++) dx[i] += dy[i];
            }
            dy += len;
        }
    }
}
