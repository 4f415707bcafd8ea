/* host_stage.c: the main of a CUDA stage (or interleaved rank) binary built from the CPU
 * backend's generated stages for the host stand-in (host_cuda.c): each CPU stage becomes a
 * pdrt_cuda_stage whose forward and backward run the CPU kernels on the stand-in's host
 * "device" memory, and the binary runs the CUDA executor (pdrt_cuda_main, or
 * pdrt_cuda_main_chunks with more than one stage). Compiled with -DHOST_STAGES='&S0_stage,...'
 * (the binary's stages, at most 8 of stages 0 .. 15, from the CPU stage sources compiled with
 * -DPDRT_NO_MAIN). Test-only:
 * tests/cli/test_cuda_executor_host.sh. */
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/pdrt_cuda.h"
#include "runtime/rt.h"

#ifndef HOST_STAGES
#error "compile with -DHOST_STAGES='&S<k>_stage[,&S<j>_stage...]'"
#endif

#define MAX_STAGES 8

/* the generated stages' descriptors (only the binary's are referenced, and linked) */
extern const pdrt_stage S0_stage, S1_stage, S2_stage, S3_stage, S4_stage, S5_stage, S6_stage,
    S7_stage, S8_stage, S9_stage, S10_stage, S11_stage, S12_stage, S13_stage, S14_stage, S15_stage;

static const pdrt_stage *cpu[MAX_STAGES];
static float *scratch[MAX_STAGES], *grads[MAX_STAGES];

static void forward_of(int k, float *out, float *acts, float *buffers, const float *params,
                       const float *in, int training, uint64_t seed, int64_t step) {
    cpu[k]->forward(out, acts, scratch[k], buffers, params, in, training, seed, step);
}

/* which: 0 backward, 1 backward_input, 2 backward_weight. A CPU stage's backward writes its
 * gradients (zeroing them first), a CUDA stage's accumulates them into dparams: the CPU one
 * writes into zeros here, which are then added, as the CPU executor adds each minibatch's. */
static void backward_of(int k, int which, float *din, float *dparams, float *dacts,
                        const float *dout, const float *acts, const float *params, const float *in) {
    pdrt_backward_fn f = which == 0 ? cpu[k]->backward
                         : which == 1 ? cpu[k]->backward_input : cpu[k]->backward_weight;
    int64_t np = cpu[k]->n_params;
    memset(grads[k], 0, (size_t)(np ? np : 1) * sizeof(float));
    f(din, grads[k], dacts, scratch[k], dout, acts, params, in);
    for (int64_t i = 0; i < np; i++) dparams[i] += grads[k][i];
}

#define TRAMPOLINES(k)                                                                         \
    static void fwd##k(pd_cuda_ctx *c, float *o, float *a, float *b, const float *p,           \
                       const float *i, int t, uint64_t s, int64_t st) {                        \
        (void)c;                                                                               \
        forward_of(k, o, a, b, p, i, t, s, st);                                                \
    }                                                                                          \
    static void bwd##k(pd_cuda_ctx *c, float *di, float *dp, float *da, const float *d,        \
                       const float *a, const float *p, const float *i) {                       \
        (void)c;                                                                               \
        backward_of(k, 0, di, dp, da, d, a, p, i);                                             \
    }                                                                                          \
    static void bwi##k(pd_cuda_ctx *c, float *di, float *dp, float *da, const float *d,        \
                       const float *a, const float *p, const float *i) {                       \
        (void)c;                                                                               \
        backward_of(k, 1, di, dp, da, d, a, p, i);                                             \
    }                                                                                          \
    static void bww##k(pd_cuda_ctx *c, float *di, float *dp, float *da, const float *d,        \
                       const float *a, const float *p, const float *i) {                       \
        (void)c;                                                                               \
        backward_of(k, 2, di, dp, da, d, a, p, i);                                             \
    }
TRAMPOLINES(0)
TRAMPOLINES(1)
TRAMPOLINES(2)
TRAMPOLINES(3)
TRAMPOLINES(4)
TRAMPOLINES(5)
TRAMPOLINES(6)
TRAMPOLINES(7)

static const pdrt_cuda_forward_fn fwds[MAX_STAGES] = {fwd0, fwd1, fwd2, fwd3, fwd4, fwd5, fwd6, fwd7};
static const pdrt_cuda_backward_fn bwds[MAX_STAGES] = {bwd0, bwd1, bwd2, bwd3, bwd4, bwd5, bwd6, bwd7};
static const pdrt_cuda_backward_fn bwis[MAX_STAGES] = {bwi0, bwi1, bwi2, bwi3, bwi4, bwi5, bwi6, bwi7};
static const pdrt_cuda_backward_fn bwws[MAX_STAGES] = {bww0, bww1, bww2, bww3, bww4, bww5, bww6, bww7};

/* CPU stage k as a CUDA stage descriptor (the CUDA stages' base holds no CPU functions). */
static pdrt_cuda_stage wrap(int k, const pdrt_stage *st) {
    pdrt_cuda_stage c = {0};
    cpu[k] = st;
    int64_t n = pdrt_scratch_floats(st);
    scratch[k] = pdrt_alloc((size_t)(n > 0 ? n : 1));
    grads[k] = pdrt_alloc((size_t)(st->n_params ? st->n_params : 1));
    c.abi = PDRT_CUDA_ABI;
    c.base = *st;
    c.base.forward = NULL;
    c.base.backward = c.base.backward_input = c.base.backward_weight = NULL;
    c.forward = fwds[k];
    c.backward = bwds[k];
    c.backward_input = st->backward_input ? bwis[k] : NULL;
    c.backward_weight = st->backward_weight ? bwws[k] : NULL;
    c.precision = PD_CUDA_FP32;
    return c;
}

int main(int argc, char **argv) {
    const pdrt_stage *const stages[] = {HOST_STAGES};
    int n = (int)(sizeof stages / sizeof stages[0]);
    PDRT_CHECK(n <= MAX_STAGES);
    pdrt_cuda_stage c[MAX_STAGES];
    for (int k = 0; k < n; k++) c[k] = wrap(k, stages[k]);
    return n == 1 ? pdrt_cuda_main(argc, argv, &c[0]) : pdrt_cuda_main_chunks(argc, argv, c, n);
}
