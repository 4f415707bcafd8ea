/* pdprof_cuda.c: pdprof --backend cuda. Times a layer with the GPU kernels the CUDA stages call
 * (runtime/cuda/ops_cuda.h), as the layer's op descriptor lists them (pdprof_layer.c makes the
 * calls through libffi, with the context first), on device copies of the host layer's random
 * buffers: `warmup` untimed runs, then each timed run between two synchronisations of the
 * context's stream (so a
 * time is the layer's kernels plus one launch-and-sync round trip, a few microseconds). Built
 * with PDPROF_HAVE_CUDA where nvcc and cuDNN's header exist at build time (Makefile); without,
 * begin says so. */
#define _POSIX_C_SOURCE 200809L
#include "pdprof_layer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef PDPROF_HAVE_CUDA
int pdprof_cuda_begin(const pd_model *m, int B, const char *precision, char *why, size_t why_cap) {
    (void)m;
    (void)B;
    (void)precision;
    snprintf(why, why_cap, "this pdprof was built without CUDA (no nvcc or cuDNN header when it was built)");
    return -1;
}
void pdprof_cuda_time(const layer_run *r, int backward, int warmup, int repeats, double *t) {
    (void)r;
    (void)backward;
    (void)warmup;
    for (int k = 0; k < repeats; k++) t[k] = 0;
}
void pdprof_cuda_end(void) {}
#else
#include "runtime/cuda/ops_cuda.h"

static pd_cuda_ctx *ctx;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static pd_cuda_precision prec;

int pdprof_cuda_begin(const pd_model *m, int B, const char *precision, char *why, size_t why_cap) {
    if (pd_gpu_count() < 1) {
        snprintf(why, why_cap, "no CUDA GPU here (cudaGetDeviceCount failed or found none)");
        return -1;
    }
    char limit[256];
    for (int i = 1; i < m->n_layers; i++) { /* the kernels' own limits (the descriptors') */
        const pd_layer *L = &m->layers[i];
        const pd_op_desc *op = pd_op(L->op);
        if (op->check && op->check(L, PD_BACKEND_CUDA, B, limit, sizeof limit)) {
            snprintf(why, why_cap, "%s (layer '%s')", limit, L->name);
            return -1;
        }
    }
    prec = precision && !strcmp(precision, "bf16") ? PD_CUDA_BF16 : PD_CUDA_FP32;
    /* the loss's B floats (loss.cu), rounded as the arena rounds, and at least 1 MiB */
    size_t scratch = ((size_t)B * 4 + 255) & ~(size_t)255;
    if (scratch < (1 << 20)) scratch = 1 << 20;
    pdprof_bufs none = {.batch = B, .prec = (int)prec};
    for (int i = 1; i < m->n_layers; i++) { /* the context's arena: the largest layer's need */
        const pd_layer *L = &m->layers[i];
        const pd_shape *in[PD_MAX_INPUTS];
        for (int k = 0; k < L->n_inputs; k++) in[k] = &m->layers[L->inputs[k]].out;
        pdprof_call c[PDPROF_MAX_CALLS];
        int n = pdprof_bind_phase(c, PDPROF_MAX_CALLS, L, in, PD_BACKEND_CUDA, PD_PHASE_SCRATCH,
                                  &none);
        if (n < 0) {
            snprintf(why, why_cap, "a kernel of layer '%s' is missing (see above)", L->name);
            return -1;
        }
        for (int k = 0; k < n; k++) {
            size_t need = pdprof_call_run(&c[k]);
            if (need > scratch) scratch = need;
            pdprof_call_free(&c[k]);
        }
    }
    ctx = pd_cuda_ctx_create(0, prec, scratch, 0);
    if (!ctx) {
        snprintf(why, why_cap, "cannot create a CUDA context on GPU 0 (see above)");
        return -1;
    }
    return 0;
}

void pdprof_cuda_end(void) {
    if (ctx) pd_cuda_ctx_destroy(ctx);
    ctx = NULL;
}

/* A device copy of n host floats (NULL for none). */
static float *mirror(const float *host, size_t n) {
    if (!host) return NULL;
    float *d = pd_cuda_alloc((n ? n : 1) * sizeof(float));
    pd_cuda_upload(ctx, d, host, (n ? n : 1) * sizeof(float));
    return d;
}

typedef struct {
    pdprof_bufs b;
    int n_fwd, n_bwd;
    pdprof_call fwd[PDPROF_MAX_CALLS], bwd[PDPROF_MAX_CALLS];
    float *loss;
    int *labels;
} dev_layer;

static void run(const layer_run *r, dev_layer *d, int backward) {
    int n = backward ? d->n_bwd : d->n_fwd;
    for (int k = 0; k < n; k++) pdprof_call_run(backward ? &d->bwd[k] : &d->fwd[k]);
    if (!backward && r->last)
        pdrt_softmax_cross_entropy_async_cuda(ctx, d->loss, d->b.dy, d->b.y, d->labels, r->B,
                                              r->classes);
}

void pdprof_cuda_time(const layer_run *r, int backward, int warmup, int repeats, double *t) {
    const pdprof_bufs *h = &r->host;
    dev_layer d;
    memset(&d, 0, sizeof d);
    d.b = (pdprof_bufs){.ctx = ctx, .batch = r->B, .layer = r->index, .prec = (int)prec};
    for (int k = 0; k < r->n_in; k++) {
        d.b.x[k] = mirror(h->x[k], r->x_floats[k]);
        d.b.dx[k] = mirror(h->dx[k], r->x_floats[k]);
    }
    d.b.y = mirror(h->y, r->y_floats);
    d.b.dy = mirror(h->dy, r->y_floats);
    for (int k = 0; k < PD_MAX_OP_TENSORS; k++) {
        d.b.param[k] = mirror(h->param[k], r->param_floats[k]);
        d.b.dparam[k] = mirror(h->dparam[k], r->param_floats[k]);
        d.b.buffer[k] = mirror(h->buffer[k], r->buffer_floats[k]);
        d.b.saved[k] = mirror(h->saved[k], r->saved_floats[k]);
    }
    if (r->labels) {
        d.labels = pd_cuda_alloc((size_t)r->B * sizeof(int));
        pd_cuda_upload(ctx, d.labels, r->labels, (size_t)r->B * sizeof(int));
    }
    if (r->last) d.loss = pd_cuda_alloc(sizeof(float));
    d.n_fwd = pdprof_bind_phase(d.fwd, PDPROF_MAX_CALLS, r->L, r->in, PD_BACKEND_CUDA,
                                PD_PHASE_FORWARD, &d.b);
    d.n_bwd = pdprof_bind_phase(d.bwd, PDPROF_MAX_CALLS, r->L, r->in, PD_BACKEND_CUDA,
                                PD_PHASE_BACKWARD, &d.b);
    if (d.n_fwd < 0 || d.n_bwd < 0) exit(1);
    if (backward) run(r, &d, 0); /* the forward's saved state (argmax, mask, statistics) */
    for (int k = 0; k < warmup; k++) run(r, &d, backward);
    pd_cuda_sync(ctx);
    for (int k = 0; k < repeats; k++) {
        double t0 = now_ms();
        run(r, &d, backward);
        pd_cuda_sync(ctx);
        t[k] = now_ms() - t0;
    }
    for (int k = 0; k < d.n_fwd; k++) pdprof_call_free(&d.fwd[k]);
    for (int k = 0; k < d.n_bwd; k++) pdprof_call_free(&d.bwd[k]);
    for (int k = 0; k < r->n_in; k++) pd_cuda_free(d.b.x[k]), pd_cuda_free(d.b.dx[k]);
    for (int k = 0; k < PD_MAX_OP_TENSORS; k++) {
        pd_cuda_free(d.b.param[k]), pd_cuda_free(d.b.dparam[k]);
        pd_cuda_free(d.b.buffer[k]), pd_cuda_free(d.b.saved[k]);
    }
    pd_cuda_free(d.b.y), pd_cuda_free(d.b.dy), pd_cuda_free(d.loss), pd_cuda_free(d.labels);
}
#endif
