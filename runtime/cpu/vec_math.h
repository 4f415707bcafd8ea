/* vec_math.h: exp and tanh on four floats at a time (GCC/Clang vector extensions), for the CPU
 * kernels whose time went to libm's scalar expf/tanhf (gelu, the softmaxes). The build's -O2
 * does not vectorise calls into libm; these are plain arithmetic on SSE registers (x86-64's
 * baseline; other targets get their own vector units or scalar code). Cephes' expf: n = round(x
 * log2 e), r = x - n ln 2 in two parts, exp(r) by a degree-6 polynomial, times 2^n through the
 * exponent bits; relative error about 2 ulp on [-87, 88], 0 below -87.3 (as expf underflows),
 * never inf (clamped at 88.37, where n = 128 would overflow the exponent; the callers pass
 * x <= 18).
 * tanh(u) = sign(u) (1 - 2 / (exp(2|u|) + 1)): absolute error below 1e-7, so 0.5 x (1 + tanh)
 * keeps float precision. Each lane's result depends on that lane alone, so a scalar tail run
 * through the same functions (pd_exp1/pd_tanh1) gives the same bits: results do not depend on
 * where an array starts or how long it is. */
#ifndef PDRT_VEC_MATH_H
#define PDRT_VEC_MATH_H

#include <stdint.h>
#include <string.h>

typedef float pd_f32x4 __attribute__((vector_size(16)));
typedef int32_t pd_i32x4 __attribute__((vector_size(16)));

static inline pd_f32x4 pd_splat4(float v) { return (pd_f32x4){v, v, v, v}; }

static inline pd_f32x4 pd_load4(const float *p) {
    pd_f32x4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void pd_store4(float *p, pd_f32x4 v) { memcpy(p, &v, sizeof v); }

/* lane-wise select: m ? a : b, m a comparison's result (all ones or zero) */
static inline pd_f32x4 pd_select4(pd_i32x4 m, pd_f32x4 a, pd_f32x4 b) {
    return (pd_f32x4)(((pd_i32x4)a & m) | ((pd_i32x4)b & ~m));
}

/* exp for x already in [-87.3, 88.37] (no clamping: tanh's 2|u| <= 18) */
static inline pd_f32x4 pd_exp4_in_range(pd_f32x4 x) {
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (round to nearest even, exact here) */
    const pd_f32x4 magic = pd_splat4(12582912.0f);
    pd_f32x4 n = (x * pd_splat4(1.44269504088896341f) + magic) - magic;
    pd_f32x4 r = x - n * pd_splat4(0.693359375f);
    r = r - n * pd_splat4(-2.12194440e-4f);
    pd_f32x4 p = pd_splat4(1.9875691500e-4f);
    p = p * r + pd_splat4(1.3981999507e-3f);
    p = p * r + pd_splat4(8.3334519073e-3f);
    p = p * r + pd_splat4(4.1665795894e-2f);
    p = p * r + pd_splat4(1.6666665459e-1f);
    p = p * r + pd_splat4(5.0000001201e-1f);
    p = p * (r * r) + r + pd_splat4(1.0f);
    pd_i32x4 e = (__builtin_convertvector(n, pd_i32x4) + 127) << 23;
    return p * (pd_f32x4)e;
}

static inline pd_f32x4 pd_exp4(pd_f32x4 x) {
    const pd_f32x4 hi = pd_splat4(88.37f), lo = pd_splat4(-87.3f);
    pd_i32x4 under = x < lo;
    x = pd_select4(x > hi, hi, x);
    x = pd_select4(under, lo, x);
    return pd_select4(under, pd_splat4(0.0f), pd_exp4_in_range(x));
}

static inline pd_f32x4 pd_tanh4(pd_f32x4 u) {
    const pd_i32x4 sign = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
    pd_i32x4 bits = (pd_i32x4)u;
    pd_f32x4 a = (pd_f32x4)(bits & ~sign);           /* |u| */
    a = pd_select4(a > pd_splat4(9.0f), pd_splat4(9.0f), a); /* tanh(9) rounds to 1 */
    pd_f32x4 t = pd_splat4(1.0f) - pd_splat4(2.0f) / (pd_exp4_in_range(a + a) + pd_splat4(1.0f));
    return (pd_f32x4)((pd_i32x4)t | (bits & sign));
}

/* one value through the same lanes (the tails of arrays) */
static inline float pd_exp1(float x) { return pd_exp4(pd_splat4(x))[0]; }
static inline float pd_tanh1(float x) { return pd_tanh4(pd_splat4(x))[0]; }

#endif
