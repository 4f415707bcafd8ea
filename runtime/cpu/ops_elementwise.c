/* ops_elementwise.c: relu, gelu, identity (flatten), dropout, add and channel concat, forward
 * and backward. */
#include <math.h>
#include <string.h>

#include "ops.h"
#include "runtime/base/rng.h"
#include "vec_math.h"

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

void pdrt_relu_backward_set(float *dinp, const float *dout, const float *out, size_t N) {
    if (!dinp) return;
    size_t i = 0;
    const f32x4 zero = {0, 0, 0, 0};
    for (; i + 4 <= N; i += 4) {
        f32x4 y, g;
        memcpy(&y, out + i, sizeof y);
        memcpy(&g, dout + i, sizeof g);
        f32x4 d = zero + (f32x4)((i32x4)g & (y > zero)); /* 0 + g: -0 becomes +0, as before */
        memcpy(dinp + i, &d, sizeof d);
    }
    for (; i < N; i++) dinp[i] = 0.0f + keep_if_positive(dout[i], out[i]);
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* Four lanes at a time through vec_math.h's tanh (libm's tanhf cost about 13 ns an element and
 * does not vectorise); the tail goes through the same lanes, so the bits do not depend on N. */
static inline pd_f32x4 gelu4(pd_f32x4 x) {
    pd_f32x4 u = pd_splat4(GELU_K) * (x + pd_splat4(GELU_C) * x * x * x);
    return pd_splat4(0.5f) * x * (pd_splat4(1.0f) + pd_tanh4(u));
}

static inline pd_f32x4 gelu_grad4(pd_f32x4 x) { /* d gelu / dx */
    pd_f32x4 u = pd_splat4(GELU_K) * (x + pd_splat4(GELU_C) * x * x * x);
    pd_f32x4 t = pd_tanh4(u), one = pd_splat4(1.0f), half = pd_splat4(0.5f);
    pd_f32x4 du = pd_splat4(GELU_K) * (one + pd_splat4(3.0f * GELU_C) * x * x);
    return half * (one + t) + half * x * (one - t * t) * du;
}

void pdrt_gelu_forward(float *out, const float *inp, size_t N) {
    size_t i = 0;
    for (; i + 4 <= N; i += 4) pd_store4(out + i, gelu4(pd_load4(inp + i)));
    for (; i < N; i++) out[i] = gelu4(pd_splat4(inp[i]))[0];
}

void pdrt_gelu_backward(float *dinp, const float *dout, const float *inp, size_t N) {
    if (!dinp) return;
    size_t i = 0;
    for (; i + 4 <= N; i += 4)
        pd_store4(dinp + i,
                  pd_load4(dinp + i) + pd_load4(dout + i) * gelu_grad4(pd_load4(inp + i)));
    for (; i < N; i++) dinp[i] += dout[i] * gelu_grad4(pd_splat4(inp[i]))[0];
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

/* add: four lanes at a time (-O2 does not vectorise these loops); each element is summed in
 * input order either way, so lanes and tail give the same bits */
void pdrt_add_forward(float *out, const float *const *inps, int n, size_t N) {
    size_t i = 0;
    for (; i + 4 <= N; i += 4) {
        pd_f32x4 s = pd_load4(inps[0] + i);
        for (int k = 1; k < n; k++) s += pd_load4(inps[k] + i);
        pd_store4(out + i, s);
    }
    for (; i < N; i++) {
        float s = inps[0][i];
        for (int k = 1; k < n; k++) s += inps[k][i];
        out[i] = s;
    }
}

void pdrt_add_backward(float *const *dinps, const float *dout, int n, size_t N) {
    for (int k = 0; k < n; k++) {
        float *d = dinps[k];
        if (!d) continue;
        size_t i = 0;
        for (; i + 4 <= N; i += 4) pd_store4(d + i, pd_load4(d + i) + pd_load4(dout + i));
        for (; i < N; i++) d[i] += dout[i];
    }
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
