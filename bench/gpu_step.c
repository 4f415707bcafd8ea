/* gpu_step.c: times full training steps (zero gradients, forward, softmax cross-entropy,
 * backward, SGD with momentum) of VGG-16, AlexNet and ResNet-50 on synthetic ImageNet-shaped
 * data with the CUDA library (runtime/cuda/ops_cuda.h), in fp32 (no TF32) or bf16 operands.
 * The layer sequences are torchvision's, hard-coded below; every buffer (parameters, gradients,
 * momentum, activations and their gradients, scratch) is allocated once before the timed loop.
 * Usage: gpu_step MODEL fp32|bf16 [batch] [warmup] [iters]; prints one line
 *   "step MODEL PREC batch B median_ms X min_ms Y loss0 L0 lossN LN". */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/ops_cuda.h"

typedef enum { N_INPUT, N_CONV, N_BN, N_RELU, N_MAXPOOL, N_AVGPOOL, N_LINEAR, N_LINEAR_RELU,
               N_DROPOUT, N_ADD } node_op;
typedef struct {
    node_op op;
    int in, in2;            /* producer nodes (in2: second addend) */
    int C, H, W;            /* output shape (linear: C features, H = W = 1) */
    int k, s, p, bias;      /* conv / pool geometry; conv bias */
    float drop;
    size_t w_off, b_off, n_w; /* parameter offsets in the blob (linear/conv: weight, bias;
                                 bn: gamma at w_off, beta at b_off) */
    float *y, *dy;          /* activation and its gradient */
    int *argmax;
    float *sm, *sr, *rm, *rv; /* batchnorm state */
} node;

#define MAXN 400
static node net[MAXN];
static int nn;
static size_t n_params;

static int add_node(node_op op, int in, int C, int H, int W) {
    if (nn == MAXN) { fprintf(stderr, "gpu_step: too many nodes\n"); exit(1); }
    node *n = &net[nn];
    memset(n, 0, sizeof *n);
    n->op = op, n->in = in, n->in2 = -1, n->C = C, n->H = H, n->W = W;
    return nn++;
}
static int osz(int in, int k, int s, int p) { return (in + 2 * p - k) / s + 1; }
static int conv(int in, int oc, int k, int s, int p, int bias) {
    node *x = &net[in];
    int id = add_node(N_CONV, in, oc, osz(x->H, k, s, p), osz(x->W, k, s, p));
    node *n = &net[id];
    n->k = k, n->s = s, n->p = p, n->bias = bias;
    n->n_w = (size_t)oc * x->C * k * k;
    n->w_off = n_params, n_params += n->n_w;
    n->b_off = n_params, n_params += bias ? (size_t)oc : 0;
    return id;
}
static int bn(int in) {
    node *x = &net[in];
    int id = add_node(N_BN, in, x->C, x->H, x->W);
    net[id].w_off = n_params, n_params += x->C;
    net[id].b_off = n_params, n_params += x->C;
    return id;
}
static int relu(int in) { return add_node(N_RELU, in, net[in].C, net[in].H, net[in].W); }
static int maxpool(int in, int k, int s, int p) {
    node *x = &net[in];
    int id = add_node(N_MAXPOOL, in, x->C, osz(x->H, k, s, p), osz(x->W, k, s, p));
    net[id].k = k, net[id].s = s, net[id].p = p;
    return id;
}
static int gap(int in) { return add_node(N_AVGPOOL, in, net[in].C, 1, 1); }
static int linear(int in, int oc, int fuse_relu) {
    node *x = &net[in];
    int c = x->C * x->H * x->W; /* flatten: NCHW memory is already [B][C*H*W] */
    int id = add_node(fuse_relu ? N_LINEAR_RELU : N_LINEAR, in, oc, 1, 1);
    net[id].n_w = (size_t)oc * c;
    net[id].w_off = n_params, n_params += net[id].n_w;
    net[id].b_off = n_params, n_params += oc;
    net[id].bias = 1;
    return id;
}
static int dropout(int in, float p) {
    int id = add_node(N_DROPOUT, in, net[in].C, net[in].H, net[in].W);
    net[id].drop = p;
    return id;
}
static int add2(int a, int b) {
    int id = add_node(N_ADD, a, net[a].C, net[a].H, net[a].W);
    net[id].in2 = b;
    return id;
}

static void build_vgg16(void) {
    int x = add_node(N_INPUT, -1, 3, 224, 224);
    int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
    for (size_t i = 0; i < sizeof cfg / sizeof *cfg; i++)
        x = cfg[i] ? relu(conv(x, cfg[i], 3, 1, 1, 1)) : maxpool(x, 2, 2, 0);
    x = dropout(linear(x, 4096, 1), 0.5f);
    x = dropout(linear(x, 4096, 1), 0.5f);
    linear(x, 1000, 0);
}
static void build_alexnet(void) {
    int x = add_node(N_INPUT, -1, 3, 224, 224);
    x = maxpool(relu(conv(x, 64, 11, 4, 2, 1)), 3, 2, 0);
    x = maxpool(relu(conv(x, 192, 5, 1, 2, 1)), 3, 2, 0);
    x = relu(conv(x, 384, 3, 1, 1, 1));
    x = relu(conv(x, 256, 3, 1, 1, 1));
    x = maxpool(relu(conv(x, 256, 3, 1, 1, 1)), 3, 2, 0); /* 256 x 6 x 6 */
    x = linear(dropout(x, 0.5f), 4096, 1);
    x = linear(dropout(x, 0.5f), 4096, 1);
    linear(x, 1000, 0);
}
static int bottleneck(int x, int width, int stride, int downsample) {
    int y = relu(bn(conv(x, width, 1, 1, 0, 0)));
    y = relu(bn(conv(y, width, 3, stride, 1, 0)));
    y = bn(conv(y, width * 4, 1, 1, 0, 0));
    int sc = downsample ? bn(conv(x, width * 4, 1, stride, 0, 0)) : x;
    return relu(add2(y, sc));
}
static void build_resnet50(void) {
    int x = add_node(N_INPUT, -1, 3, 224, 224);
    x = maxpool(relu(bn(conv(x, 64, 7, 2, 3, 0))), 3, 2, 1);
    int blocks[4] = {3, 4, 6, 3}, widths[4] = {64, 128, 256, 512};
    for (int l = 0; l < 4; l++)
        for (int b = 0; b < blocks[l]; b++)
            x = bottleneck(x, widths[l], (b == 0 && l > 0) ? 2 : 1, b == 0);
    linear(gap(x), 1000, 0);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float urand(void) { /* xorshift64*, uniform [0, 1) */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) * (1.0f / 16777216.0f);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gpu_step vgg16|alexnet|resnet50 fp32|bf16 [batch] [warmup] [iters]\n");
        return 2;
    }
    const char *model = argv[1];
    pd_cuda_precision prec = strcmp(argv[2], "bf16") == 0 ? PD_CUDA_BF16 : PD_CUDA_FP32;
    int B;
    if (!strcmp(model, "vgg16")) build_vgg16(), B = 64;
    else if (!strcmp(model, "alexnet")) build_alexnet(), B = 256;
    else if (!strcmp(model, "resnet50")) build_resnet50(), B = 128;
    else { fprintf(stderr, "gpu_step: unknown model %s\n", model); return 2; }
    if (argc > 3) B = atoi(argv[3]);
    int warmup = argc > 4 ? atoi(argv[4]) : 3, iters = argc > 5 ? atoi(argv[5]) : 10;
    size_t act_floats = 0;
    for (int i = 0; i < nn; i++) act_floats += (size_t)B * net[i].C * net[i].H * net[i].W;
    fprintf(stderr, "# %s batch %d: %d nodes, %zu parameters, %.2f GB of activations (x2 with "
            "gradients)\n", model, B, nn, n_params, act_floats * 4e-9);
    if (pd_gpu_count() <= 0) { printf("SKIP gpu_step %s: no CUDA GPU\n", model); return 0; }

    /* the static memory plan: sizes first, then one allocation per buffer, all before the loop */
    size_t scratch = (size_t)B * sizeof(float) + 4096;
    for (int i = 1; i < nn; i++) {
        node *n = &net[i], *x = &net[n->in];
        size_t s = 0;
        if (n->op == N_CONV)
            s = pdrt_conv2d_cuda_scratch_bytes(prec, B, x->C, x->H, x->W, n->C, n->k, n->k, n->s, n->s,
                                          n->p, n->p);
        else if (n->op == N_LINEAR || n->op == N_LINEAR_RELU)
            s = pdrt_linear_cuda_scratch_bytes(prec, B, x->C * x->H * x->W, n->C);
        else if (n->op == N_BN)
            s = pdrt_batchnorm2d_cuda_scratch_bytes(B, n->C, n->H, n->W);
        if (s > scratch) scratch = s;
    }
    pd_cuda_ctx *ctx = pd_cuda_ctx_create(0, prec, scratch, (size_t)256 << 20);
    if (!ctx) return 1;
    float *params = pd_cuda_alloc(n_params * 4), *grads = pd_cuda_alloc(n_params * 4),
          *mom = pd_cuda_alloc(n_params * 4);
    {   /* host init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), batchnorm gamma 1 beta 0 */
        float *h = malloc(n_params * 4);
        for (int i = 0; i < nn; i++) {
            node *n = &net[i];
            if (n->op == N_BN) {
                for (int c = 0; c < n->C; c++) h[n->w_off + c] = 1.0f, h[n->b_off + c] = 0.0f;
            } else if (n->n_w) {
                size_t fan_in = n->n_w / (size_t)n->C;
                float a = 1.0f / sqrtf((float)fan_in);
                for (size_t j = 0; j < n->n_w; j++) h[n->w_off + j] = a * (2.0f * urand() - 1.0f);
                if (n->bias)
                    for (int c = 0; c < n->C; c++) h[n->b_off + c] = a * (2.0f * urand() - 1.0f);
            }
        }
        pd_cuda_upload(ctx, params, h, n_params * 4);
        free(h);
    }
    pd_cuda_zero(ctx, mom, n_params * 4);
    float *acts = pd_cuda_alloc(act_floats * 4), *dacts = pd_cuda_alloc(act_floats * 4);
    size_t off = 0;
    for (int i = 0; i < nn; i++) {
        node *n = &net[i];
        size_t sz = (size_t)B * n->C * n->H * n->W;
        n->y = acts + off, n->dy = dacts + off, off += sz;
        if (n->op == N_MAXPOOL) n->argmax = pd_cuda_alloc(sz * sizeof(int));
        if (n->op == N_DROPOUT) n->argmax = pd_cuda_alloc(sz * 4); /* the mask */
        if (n->op == N_BN) {
            n->sm = pd_cuda_alloc(n->C * 4), n->sr = pd_cuda_alloc(n->C * 4);
            n->rm = pd_cuda_alloc(n->C * 4), n->rv = pd_cuda_alloc(n->C * 4);
            float *ones = malloc(n->C * 4);
            for (int c = 0; c < n->C; c++) ones[c] = 1.0f;
            pd_cuda_zero(ctx, n->rm, n->C * 4);
            pd_cuda_upload(ctx, n->rv, ones, n->C * 4);
            free(ones);
        }
    }
    {   /* synthetic data: one random batch, labels in [0, 1000) */
        size_t nx = (size_t)B * 3 * 224 * 224;
        float *h = malloc(nx * 4);
        for (size_t j = 0; j < nx; j++) h[j] = 2.0f * urand() - 1.0f;
        pd_cuda_upload(ctx, net[0].y, h, nx * 4);
        free(h);
    }
    int *labels = pd_cuda_alloc(B * sizeof(int));
    {
        int *h = malloc(B * sizeof(int));
        for (int b = 0; b < B; b++) h[b] = (int)(urand() * 1000.0f) % 1000;
        pd_cuda_upload(ctx, labels, h, B * sizeof(int));
        free(h);
    }
    float *loss = pd_cuda_alloc(4);
    node *last = &net[nn - 1];
    int K = last->C;

    cudaStream_t st = (cudaStream_t)pd_cuda_ctx_stream(ctx);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    float *times = malloc((iters > 0 ? iters : 1) * sizeof(float)), loss0 = 0, lossN = 0;
    for (int it = 0; it < warmup + iters; it++) {
        cudaEventRecord(e0, st);
        pd_cuda_zero(ctx, grads, n_params * 4);
        pd_cuda_zero(ctx, dacts, act_floats * 4);
        for (int i = 1; i < nn; i++) { /* forward */
            node *n = &net[i], *x = &net[n->in];
            float *W = params + n->w_off, *bb = n->bias ? params + n->b_off : NULL;
            switch (n->op) {
            case N_CONV:
                pdrt_conv2d_forward_cuda(ctx, n->y, x->y, W, bb, B, x->C, x->H, x->W, n->C, n->k, n->k,
                                    n->s, n->s, n->p, n->p);
                break;
            case N_BN:
                pdrt_batchnorm2d_forward_cuda(ctx, n->y, n->sm, n->sr, n->rm, n->rv, x->y, W,
                                         params + n->b_off, 0.1f, 1e-5f, B, n->C, n->H, n->W);
                break;
            case N_RELU: pdrt_relu_forward_cuda(ctx, n->y, x->y, (size_t)B * n->C * n->H * n->W); break;
            case N_MAXPOOL:
                pdrt_maxpool2d_forward_cuda(ctx, n->y, n->argmax, x->y, B, x->C, x->H, x->W, n->k, n->k,
                                       n->s, n->s, n->p, n->p);
                break;
            case N_AVGPOOL:
                pdrt_avgpool2d_forward_cuda(ctx, n->y, x->y, B, x->C, x->H, x->W, x->H, x->W, 1, 1, 0, 0);
                break;
            case N_LINEAR:
                pdrt_linear_forward_cuda(ctx, n->y, x->y, W, bb, B, x->C * x->H * x->W, n->C);
                break;
            case N_LINEAR_RELU:
                pdrt_linear_relu_forward_cuda(ctx, n->y, x->y, W, bb, B, x->C * x->H * x->W, n->C);
                break;
            case N_DROPOUT:
                pdrt_dropout_forward_cuda(ctx, n->y, (float *)n->argmax, x->y, n->drop, 1234, it, i, 0, B,
                                     (size_t)n->C * n->H * n->W);
                break;
            case N_ADD: {
                const float *ins[2] = {x->y, net[n->in2].y};
                pdrt_add_forward_cuda(ctx, n->y, ins, 2, (size_t)B * n->C * n->H * n->W);
                break;
            }
            case N_INPUT: break;
            }
        }
        pdrt_softmax_cross_entropy_async_cuda(ctx, loss, last->dy, last->y, labels, B, K);
        for (int i = nn - 1; i >= 1; i--) { /* backward */
            node *n = &net[i], *x = &net[n->in];
            float *W = params + n->w_off, *dW = grads + n->w_off;
            float *db = n->bias ? grads + n->b_off : NULL;
            float *dx = n->in == 0 ? NULL : x->dy;
            switch (n->op) {
            case N_CONV:
                pdrt_conv2d_backward_cuda(ctx, dx, dW, db, n->dy, x->y, W, B, x->C, x->H, x->W, n->C,
                                     n->k, n->k, n->s, n->s, n->p, n->p);
                break;
            case N_BN:
                pdrt_batchnorm2d_backward_cuda(ctx, dx, dW, grads + n->b_off, n->dy, x->y, W, n->sm,
                                          n->sr, B, n->C, n->H, n->W);
                break;
            case N_RELU:
                pdrt_relu_backward_cuda(ctx, dx, n->dy, n->y, (size_t)B * n->C * n->H * n->W);
                break;
            case N_MAXPOOL:
                pdrt_maxpool2d_backward_cuda(ctx, dx, n->dy, n->argmax, B, x->C, x->H, x->W, n->k, n->k,
                                        n->s, n->s, n->p, n->p);
                break;
            case N_AVGPOOL:
                pdrt_avgpool2d_backward_cuda(ctx, dx, n->dy, B, x->C, x->H, x->W, x->H, x->W, 1, 1, 0, 0);
                break;
            case N_LINEAR:
                pdrt_linear_backward_cuda(ctx, dx, dW, db, n->dy, x->y, W, B, x->C * x->H * x->W, n->C);
                break;
            case N_LINEAR_RELU:
                pdrt_linear_relu_backward_cuda(ctx, dx, dW, db, n->dy, n->y, x->y, W, B,
                                          x->C * x->H * x->W, n->C);
                break;
            case N_DROPOUT:
                pdrt_dropout_backward_cuda(ctx, dx, n->dy, (const float *)n->argmax,
                                      (size_t)B * n->C * n->H * n->W);
                break;
            case N_ADD: {
                float *dins[2] = {dx, net[n->in2].dy};
                pdrt_add_backward_cuda(ctx, dins, n->dy, 2, (size_t)B * n->C * n->H * n->W);
                break;
            }
            case N_INPUT: break;
            }
        }
        pd_sgd_step_cuda(ctx, params, mom, grads, 0.01f, 0.9f, 0.0f, n_params);
        cudaEventRecord(e1, st);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (it >= warmup) times[it - warmup] = ms;
        float l = 0;
        if (it == 0 || it == warmup + iters - 1) {
            pd_cuda_download(ctx, &l, loss, 4);
            if (it == 0) loss0 = l; else lossN = l;
        }
    }
    cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) { fprintf(stderr, "gpu_step: CUDA error %d\n", (int)err); return 1; }
    qsort(times, iters, sizeof *times, cmp_float);
    printf("step %s %s batch %d params %zu median_ms %.2f min_ms %.2f loss0 %.4f lossN %.4f\n",
           model, prec == PD_CUDA_BF16 ? "bf16" : "fp32", B, n_params,
           iters ? times[iters / 2] : 0.0f, iters ? times[0] : 0.0f, loss0, lossN);
    free(times);
    pd_cuda_ctx_destroy(ctx);
    return 0;
}
