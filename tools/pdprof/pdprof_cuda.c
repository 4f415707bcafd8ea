/* pdprof_cuda.c: pdprof --backend cuda. Times a layer with the GPU kernels the CUDA stages call
 * (runtime/cuda/ops_cuda.h) on device copies of the host layer's random buffers: `warmup`
 * untimed runs, then each timed run between two synchronisations of the context's stream (so a
 * time is the layer's kernels plus one launch-and-sync round trip, a few microseconds). Built
 * with PDPROF_HAVE_CUDA where nvcc and cuDNN's header exist at build time (Makefile); without,
 * begin says so. */
#define _POSIX_C_SOURCE 200809L
#include "pdprof_layer.h"

#include <stdio.h>
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

int pdprof_cuda_begin(const pd_model *m, int B, const char *precision, char *why, size_t why_cap) {
    if (pd_gpu_count() < 1) {
        snprintf(why, why_cap, "no CUDA GPU here (cudaGetDeviceCount failed or found none)");
        return -1;
    }
    for (int i = 1; i < m->n_layers; i++) /* the kernels' own limits (elementwise.cu) */
        if (m->layers[i].op == PD_OP_DROPOUT && B > 65535) {
            snprintf(why, why_cap, "the GPU dropout takes at most 65535 samples per minibatch, not %d "
                     "(layer '%s')", B, m->layers[i].name);
            return -1;
        }
    pd_cuda_precision prec = precision && !strcmp(precision, "bf16") ? PD_CUDA_BF16 : PD_CUDA_FP32;
    /* the loss's B floats (loss.cu), rounded as the arena rounds, and at least 1 MiB */
    size_t scratch = ((size_t)B * 4 + 255) & ~(size_t)255;
    if (scratch < (1 << 20)) scratch = 1 << 20;
    for (int i = 1; i < m->n_layers; i++) { /* the context's arena: the largest layer's need */
        const pd_layer *L = &m->layers[i];
        const pd_shape *s = &m->layers[L->inputs[0]].out;
        int C = s->dim[0], H = s->rank == 3 ? s->dim[1] : 1, W = s->rank == 3 ? s->dim[2] : 1;
        size_t need = 0;
        if (L->op == PD_OP_LINEAR)
            need = pdrt_linear_cuda_scratch_bytes(prec, B, (int)pd_shape_numel(s), L->out_features);
        else if (L->op == PD_OP_CONV2D)
            need = pdrt_conv2d_cuda_scratch_bytes(prec, B, C, H, W, L->out_channels, L->kernel[0], L->kernel[1],
                                             L->stride[0], L->stride[1], L->padding[0], L->padding[1]);
        else if (L->op == PD_OP_BATCHNORM2D)
            need = pdrt_batchnorm2d_cuda_scratch_bytes(B, C, H, W);
        if (need > scratch) scratch = need;
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

/* A device copy of n host elements of size sz (NULL for none). */
static void *mirror(const void *host, size_t n, size_t sz) {
    if (!host) return NULL;
    void *d = pd_cuda_alloc((n ? n : 1) * sz);
    pd_cuda_upload(ctx, d, host, (n ? n : 1) * sz);
    return d;
}

typedef struct {
    float *x[PD_MAX_INPUTS], *dx[PD_MAX_INPUTS];
    float *y, *dy, *w, *b, *dw, *db, *mask, *save_mean, *save_rstd, *rm, *rv, *loss;
    int *argmax, *labels;
} dev_layer;

static void run(const layer_run *r, const dev_layer *d, int backward) {
    const pd_layer *L = r->L;
    int B = r->B;
    const pd_shape *s = r->in[0];
    int C = s->dim[0], H = s->rank == 3 ? s->dim[1] : 1, W = s->rank == 3 ? s->dim[2] : 1;
    size_t nin = (size_t)pd_shape_numel(s), nout = (size_t)pd_shape_numel(&L->out);
    int HW = L->out.rank == 3 ? L->out.dim[1] * L->out.dim[2] : 1;
    int kh = L->kernel[0], kw = L->kernel[1], sh = L->stride[0], sw = L->stride[1];
    int ph = L->padding[0], pw = L->padding[1];
    if (L->op == PD_OP_AVGPOOL2D && L->global) kh = H, kw = W, sh = sw = 1, ph = pw = 0;
    switch (L->op * 2 + backward) {
    case PD_OP_LINEAR * 2: pdrt_linear_forward_cuda(ctx, d->y, d->x[0], d->w, d->b, B, (int)nin, L->out_features); break;
    case PD_OP_LINEAR * 2 + 1:
        pdrt_linear_backward_cuda(ctx, d->dx[0], d->dw, d->db, d->dy, d->x[0], d->w, B, (int)nin, L->out_features);
        break;
    case PD_OP_CONV2D * 2:
        pdrt_conv2d_forward_cuda(ctx, d->y, d->x[0], d->w, d->b, B, C, H, W, L->out_channels, kh, kw, sh, sw, ph, pw);
        break;
    case PD_OP_CONV2D * 2 + 1:
        pdrt_conv2d_backward_cuda(ctx, d->dx[0], d->dw, d->db, d->dy, d->x[0], d->w, B, C, H, W, L->out_channels,
                             kh, kw, sh, sw, ph, pw);
        break;
    case PD_OP_RELU * 2: pdrt_relu_forward_cuda(ctx, d->y, d->x[0], (size_t)B * nin); break;
    case PD_OP_RELU * 2 + 1: pdrt_relu_backward_cuda(ctx, d->dx[0], d->dy, d->y, (size_t)B * nin); break;
    case PD_OP_MAXPOOL2D * 2:
        pdrt_maxpool2d_forward_cuda(ctx, d->y, d->argmax, d->x[0], B, C, H, W, kh, kw, sh, sw, ph, pw);
        break;
    case PD_OP_MAXPOOL2D * 2 + 1:
        pdrt_maxpool2d_backward_cuda(ctx, d->dx[0], d->dy, d->argmax, B, C, H, W, kh, kw, sh, sw, ph, pw);
        break;
    case PD_OP_AVGPOOL2D * 2: pdrt_avgpool2d_forward_cuda(ctx, d->y, d->x[0], B, C, H, W, kh, kw, sh, sw, ph, pw); break;
    case PD_OP_AVGPOOL2D * 2 + 1:
        pdrt_avgpool2d_backward_cuda(ctx, d->dx[0], d->dy, B, C, H, W, kh, kw, sh, sw, ph, pw);
        break;
    case PD_OP_DROPOUT * 2:
        pdrt_dropout_forward_cuda(ctx, d->y, d->mask, d->x[0], (float)L->p, 1, 0, 0, 0, B, nin);
        break;
    case PD_OP_DROPOUT * 2 + 1: pdrt_dropout_backward_cuda(ctx, d->dx[0], d->dy, d->mask, (size_t)B * nin); break;
    case PD_OP_BATCHNORM2D * 2:
        /* cuDNN refuses eps below 1e-5 (norm.cu); eps does not change the time */
        pdrt_batchnorm2d_forward_cuda(ctx, d->y, d->save_mean, d->save_rstd, d->rm, d->rv, d->x[0], d->w, d->b,
                                 (float)L->momentum, (float)(L->eps > 1e-5 ? L->eps : 1e-5), B, C, H, W);
        break;
    case PD_OP_BATCHNORM2D * 2 + 1:
        pdrt_batchnorm2d_backward_cuda(ctx, d->dx[0], d->dw, d->db, d->dy, d->x[0], d->w, d->save_mean, d->save_rstd,
                                  B, C, H, W);
        break;
    case PD_OP_ADD * 2: pdrt_add_forward_cuda(ctx, d->y, (const float *const *)d->x, r->n_in, (size_t)B * nout); break;
    case PD_OP_ADD * 2 + 1: pdrt_add_backward_cuda(ctx, (float *const *)d->dx, d->dy, r->n_in, (size_t)B * nout); break;
    case PD_OP_CONCAT * 2:
        pdrt_concat_forward_cuda(ctx, d->y, (const float *const *)d->x, r->channels, r->n_in, B, HW);
        break;
    case PD_OP_CONCAT * 2 + 1:
        pdrt_concat_backward_cuda(ctx, (float *const *)d->dx, d->dy, r->channels, r->n_in, B, HW);
        break;
    default: break; /* flatten: aliased, free */
    }
    if (!backward && r->last)
        pdrt_softmax_cross_entropy_async_cuda(ctx, d->loss, d->dy, d->y, d->labels, B, r->classes);
}

void pdprof_cuda_time(const layer_run *r, int backward, int warmup, int repeats, double *t) {
    const pd_layer *L = r->L;
    size_t nout = (size_t)r->B * (size_t)pd_shape_numel(&L->out);
    dev_layer d;
    memset(&d, 0, sizeof d);
    for (int k = 0; k < r->n_in; k++) {
        size_t n = (size_t)r->B * (size_t)pd_shape_numel(r->in[k]);
        d.x[k] = mirror(r->x[k], n, sizeof(float));
        d.dx[k] = mirror(r->dx[k], n, sizeof(float));
    }
    d.y = mirror(r->y, nout, sizeof(float));
    d.dy = mirror(r->dy, nout, sizeof(float));
    d.w = mirror(r->w, (size_t)L->n_weight, sizeof(float));
    d.dw = mirror(r->dw, (size_t)L->n_weight, sizeof(float));
    d.b = mirror(r->b, (size_t)L->n_bias, sizeof(float));
    d.db = mirror(r->db, (size_t)L->n_bias, sizeof(float));
    if (L->op == PD_OP_DROPOUT) d.mask = mirror(r->scratch, nout, sizeof(float));
    int C = r->in[0]->dim[0];
    d.save_mean = mirror(r->save_mean, (size_t)C, sizeof(float));
    d.save_rstd = mirror(r->save_rstd, (size_t)C, sizeof(float));
    d.rm = mirror(r->rm, (size_t)C, sizeof(float));
    d.rv = mirror(r->rv, (size_t)C, sizeof(float));
    d.argmax = mirror(r->argmax, nout, sizeof(int));
    d.labels = mirror(r->labels, (size_t)r->B, sizeof(int));
    if (r->last) d.loss = pd_cuda_alloc(sizeof(float));
    if (backward) run(r, &d, 0); /* the forward's saved state (argmax, mask, statistics) */
    for (int k = 0; k < warmup; k++) run(r, &d, backward);
    pd_cuda_sync(ctx);
    for (int k = 0; k < repeats; k++) {
        double t0 = now_ms();
        run(r, &d, backward);
        pd_cuda_sync(ctx);
        t[k] = now_ms() - t0;
    }
    float **all[] = {&d.y, &d.dy, &d.w, &d.dw, &d.b, &d.db, &d.mask, &d.save_mean, &d.save_rstd, &d.rm, &d.rv, &d.loss};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) pd_cuda_free(*all[i]);
    for (int k = 0; k < r->n_in; k++) pd_cuda_free(d.x[k]), pd_cuda_free(d.dx[k]);
    pd_cuda_free(d.argmax);
    pd_cuda_free(d.labels);
}
#endif
