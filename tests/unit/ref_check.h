/* ref_check.h: what the kernel tests share (test_ops.c, test_seqkernels.c): a seeded generator,
 * float/double buffers, and the check of a kernel against a naive double-precision reference:
 * forwards value by value, backwards against central finite differences of the reference on
 * L = sum(w * y), the gradient buffers pre-filled so that accumulation (+=) is checked too.
 * check_forward returns the largest absolute error, check_grad the relative L2 error. */
#ifndef PD_TEST_REF_CHECK_H
#define PD_TEST_REF_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "test.h"

static uint64_t rng_state = 88172645463325252ull;
static inline double urand(void) { /* xorshift64*, uniform [0,1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static inline void fill(float *a, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * urand());
}
static inline double *to_double(const float *a, size_t n) {
    double *d = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}
static inline float *falloc(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* A reference forward over up to 4 double tensors, with a dimension context. */
typedef void (*ref_fn)(double *y, double *const *t, const void *ctx);

typedef struct {
    int n;
    double *t[4];
    size_t len[4];
    size_t ylen;
    ref_fn ref;
    const void *ctx;
    double *w; /* upstream weights of L = sum(w*y) */
} refcase;

static inline double ref_L(refcase *rc) {
    double *y = malloc(rc->ylen * sizeof(double));
    rc->ref(y, rc->t, rc->ctx);
    double L = 0;
    for (size_t i = 0; i < rc->ylen; i++) L += rc->w[i] * y[i];
    free(y);
    return L;
}

/* compares float forward output with the reference */
static inline double check_forward_at(const char *file, const char *what, const float *y,
                                      refcase *rc, int line) {
    double *yr = malloc(rc->ylen * sizeof(double));
    rc->ref(yr, rc->t, rc->ctx);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < rc->ylen; i++) {
        if (fabs(yr[i]) > scale) scale = fabs(yr[i]);
        if (fabs(y[i] - yr[i]) > worst) worst = fabs(y[i] - yr[i]);
    }
    if (!(worst <= 1e-5 * (1 + scale)))
        test_fail(file, line, "%s forward: max error %.3g (scale %.3g)", what, worst, scale);
    free(yr);
    return worst;
}

/* compares the float gradient (g - prefill) of tensor k with central differences */
static inline double check_grad_at(const char *file, const char *what, int k, const float *g,
                                   const float *prefill, refcase *rc, int line) {
    size_t n = rc->len[k];
    double h = 1e-4, num = 0, den = 0, worst = 0, gmax = 0;
    for (size_t i = 0; i < n; i++) {
        double keep = rc->t[k][i];
        rc->t[k][i] = keep + h;
        double Lp = ref_L(rc);
        rc->t[k][i] = keep - h;
        double Lm = ref_L(rc);
        rc->t[k][i] = keep;
        double fd = (Lp - Lm) / (2 * h);
        double got = (double)g[i] - (prefill ? (double)prefill[i] : 0.0);
        num += (got - fd) * (got - fd);
        den += fd * fd;
        if (fabs(got - fd) > worst) worst = fabs(got - fd);
        if (fabs(fd) > gmax) gmax = fabs(fd);
    }
    double rel = sqrt(num) / (sqrt(den) + 1e-12);
    if (!(den > 0 && rel < 1e-3 && worst <= 2e-3 * gmax + 1e-5))
        test_fail(file, line, "%s gradient of input %d: relative error %.3g, max %.3g of %.3g",
                  what, k, rel, worst, gmax);
    return rel;
}

static inline void refcase_free(refcase *rc) {
    for (int k = 0; k < rc->n; k++) free(rc->t[k]);
    free(rc->w);
}

#define check_forward(what, y, rc, line) check_forward_at(__FILE__, what, y, rc, line)
#define check_grad(what, k, g, prefill, rc, line) \
    check_grad_at(__FILE__, what, k, g, prefill, rc, line)

#endif
