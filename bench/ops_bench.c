/* ops_bench.c: single-core throughput of the CPU kernels on the fmnist_cnn network
 * (conv 1->32, pool, conv 32->32, pool, conv 32->64, conv 64->64 on 7x7, linear 3136->128,
 * linear 128->10, batch 64), forward + backward + SGD step, with a per-layer breakdown; with
 * --layers FILE, each listed convolution or linear alone (bench/ops_bench.sh --vs-torch puts
 * them beside PyTorch's; --im2col: conv2d without oneDNN).
 * With --train EPOCHS it also trains the network on Fashion-MNIST with the same kernels and
 * prints the test accuracy and the wall time (a check that the demo's target is reachable).
 * Build and run: bash bench/ops_bench.sh [--steps N] [--train EPOCHS] */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/data.h"
#include "runtime/init.h"
#include "runtime/cpu/ops.h"
#include "runtime/optim.h"

#define B 64

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}
/* CPU time of this process: less disturbed than wall time when other jobs share the cores */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct { int C, H, W, OC; float *w, *b, *dw, *db; } conv_layer;
typedef struct { int C, OC; float *w, *b, *dw, *db; } fc_layer;

static float *params, *grads, *mom;
static size_t n_params;
static float *carve(float **base, size_t n) { float *p = *base; *base += n; return p; }

static conv_layer convs[4] = {{1, 28, 28, 32, 0, 0, 0, 0}, {32, 14, 14, 32, 0, 0, 0, 0},
                              {32, 7, 7, 64, 0, 0, 0, 0}, {64, 7, 7, 64, 0, 0, 0, 0}};
static fc_layer fcs[2] = {{3136, 128, 0, 0, 0, 0}, {128, 10, 0, 0, 0, 0}};
/* activations: a[i] inputs/outputs, d[i] their gradients */
static float *x0, *c1, *p1, *c2, *p2, *c3, *c4, *f1, *f2, *scratch;
static float *dc1, *dp1, *dc2, *dp2, *dc3, *dc4, *df1, *df2;
static int *am1, *am2;
static double t_layer[8][2]; /* conv1..4, fc1, fc2, pools+relu, loss+sgd */

static void setup(void) {
    n_params = 0;
    for (int i = 0; i < 4; i++) n_params += (size_t)convs[i].OC * convs[i].C * 9 + convs[i].OC;
    for (int i = 0; i < 2; i++) n_params += (size_t)fcs[i].OC * fcs[i].C + fcs[i].OC;
    params = calloc(n_params, 4); grads = calloc(n_params, 4); mom = calloc(n_params, 4);
    float *pp = params, *gp = grads;
    for (int i = 0; i < 4; i++) {
        conv_layer *l = &convs[i];
        size_t nw = (size_t)l->OC * l->C * 9;
        l->w = carve(&pp, nw); l->b = carve(&pp, l->OC);
        l->dw = carve(&gp, nw); l->db = carve(&gp, l->OC);
        pd_init_conv2d(l->w, l->b, 1, i + 1, l->C, l->OC, 3, 3);
    }
    for (int i = 0; i < 2; i++) {
        fc_layer *l = &fcs[i];
        l->w = carve(&pp, (size_t)l->OC * l->C); l->b = carve(&pp, l->OC);
        l->dw = carve(&gp, (size_t)l->OC * l->C); l->db = carve(&gp, l->OC);
        pd_init_linear(l->w, l->b, 1, 11 + i, l->C, l->OC);
    }
    size_t ns = 0;
    for (int i = 0; i < 4; i++) {
        size_t s = pdrt_conv2d_scratch_floats(B, convs[i].C, convs[i].H, convs[i].W, convs[i].OC, 3, 3,
                                         1, 1, 1, 1);
        if (s > ns) ns = s;
    }
    scratch = malloc(ns * 4);
    x0 = malloc(B * 784 * 4);
    c1 = malloc(B * 32 * 784 * 4); dc1 = malloc(B * 32 * 784 * 4);
    p1 = malloc(B * 32 * 196 * 4); dp1 = malloc(B * 32 * 196 * 4);
    c2 = malloc(B * 32 * 196 * 4); dc2 = malloc(B * 32 * 196 * 4);
    p2 = malloc(B * 32 * 49 * 4); dp2 = malloc(B * 32 * 49 * 4);
    c3 = malloc(B * 64 * 49 * 4); dc3 = malloc(B * 64 * 49 * 4);
    c4 = malloc(B * 64 * 49 * 4); dc4 = malloc(B * 64 * 49 * 4);
    f1 = malloc(B * 128 * 4); df1 = malloc(B * 128 * 4);
    f2 = malloc(B * 10 * 4); df2 = malloc(B * 10 * 4);
    am1 = malloc(B * 32 * 196 * sizeof(int)); am2 = malloc(B * 32 * 49 * sizeof(int));
}

/* per-layer times are CPU times of this process (robust when other jobs share the cores) */
#define TIMED(slot, dir, stmt) do { double t0_ = cpu_now(); stmt; t_layer[slot][dir] += cpu_now() - t0_; } while (0)

static float step(const int *labels, float lr, int train) {
    conv_layer *k = convs;
    TIMED(0, 0, pdrt_conv2d_forward(c1, scratch, x0, k[0].w, k[0].b, B, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1));
    TIMED(6, 0, pdrt_relu_forward(c1, c1, B * 32 * 784);
          pdrt_maxpool2d_forward(p1, am1, c1, B, 32, 28, 28, 2, 2, 2, 2, 0, 0));
    TIMED(1, 0, pdrt_conv2d_forward(c2, scratch, p1, k[1].w, k[1].b, B, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1));
    TIMED(6, 0, pdrt_relu_forward(c2, c2, B * 32 * 196);
          pdrt_maxpool2d_forward(p2, am2, c2, B, 32, 14, 14, 2, 2, 2, 2, 0, 0));
    TIMED(2, 0, pdrt_conv2d_forward(c3, scratch, p2, k[2].w, k[2].b, B, 32, 7, 7, 64, 3, 3, 1, 1, 1, 1));
    TIMED(6, 0, pdrt_relu_forward(c3, c3, B * 64 * 49));
    TIMED(3, 0, pdrt_conv2d_forward(c4, scratch, c3, k[3].w, k[3].b, B, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1));
    TIMED(6, 0, pdrt_relu_forward(c4, c4, B * 64 * 49));
    TIMED(4, 0, pdrt_linear_forward(f1, c4, fcs[0].w, fcs[0].b, B, 3136, 128));
    TIMED(6, 0, pdrt_relu_forward(f1, f1, B * 128));
    TIMED(5, 0, pdrt_linear_forward(f2, f1, fcs[1].w, fcs[1].b, B, 128, 10));
    if (!train) return 0;
    float loss;
    TIMED(7, 0, loss = pdrt_softmax_cross_entropy(df2, f2, labels, B, 10);
          memset(grads, 0, n_params * 4);
          memset(df1, 0, B * 128 * 4); memset(dc4, 0, B * 64 * 49 * 4);
          memset(dc3, 0, B * 64 * 49 * 4); memset(dp2, 0, B * 32 * 49 * 4);
          memset(dc2, 0, B * 32 * 196 * 4); memset(dp1, 0, B * 32 * 196 * 4);
          memset(dc1, 0, B * 32 * 784 * 4));
    /* relu backward into a separate buffer is avoided: gradients w.r.t. relu outputs are
     * masked in place (the relu ran in place, so its gradient buffer is shared) */
    TIMED(5, 1, pdrt_linear_backward(df1, fcs[1].dw, fcs[1].db, df2, f1, fcs[1].w, B, 128, 10));
    TIMED(6, 1, for (int i = 0; i < B * 128; i++) if (f1[i] <= 0) df1[i] = 0);
    TIMED(4, 1, pdrt_linear_backward(dc4, fcs[0].dw, fcs[0].db, df1, c4, fcs[0].w, B, 3136, 128));
    TIMED(6, 1, for (int i = 0; i < B * 64 * 49; i++) if (c4[i] <= 0) dc4[i] = 0);
    TIMED(3, 1, pdrt_conv2d_backward(dc3, k[3].dw, k[3].db, scratch, dc4, c3, k[3].w, B, 64, 7, 7, 64, 3, 3, 1, 1, 1, 1));
    TIMED(6, 1, for (int i = 0; i < B * 64 * 49; i++) if (c3[i] <= 0) dc3[i] = 0);
    TIMED(2, 1, pdrt_conv2d_backward(dp2, k[2].dw, k[2].db, scratch, dc3, p2, k[2].w, B, 32, 7, 7, 64, 3, 3, 1, 1, 1, 1));
    TIMED(6, 1, pdrt_maxpool2d_backward(dc2, dp2, am2, B, 32, 14, 14, 2, 2, 2, 2, 0, 0);
          for (int i = 0; i < B * 32 * 196; i++) if (c2[i] <= 0) dc2[i] = 0);
    TIMED(1, 1, pdrt_conv2d_backward(dp1, k[1].dw, k[1].db, scratch, dc2, p1, k[1].w, B, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1));
    TIMED(6, 1, pdrt_maxpool2d_backward(dc1, dp1, am1, B, 32, 28, 28, 2, 2, 2, 2, 0, 0);
          for (int i = 0; i < B * 32 * 784; i++) if (c1[i] <= 0) dc1[i] = 0);
    TIMED(0, 1, pdrt_conv2d_backward(NULL, k[0].dw, k[0].db, scratch, dc1, x0, k[0].w, B, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1));
    TIMED(7, 1, pd_sgd_step(params, mom, grads, lr, 0.9f, 0.0f, n_params));
    return loss;
}

/* The best of `rounds` CPU times of fn's loop of reps calls, per call, in ms. */
static double best_ms(int rounds, int reps, void (*fn)(void *), void *ctx) {
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t = cpu_now();
        for (int i = 0; i < reps; i++) fn(ctx);
        t = (cpu_now() - t) / reps;
        if (t < best) best = t;
    }
    return 1e3 * best;
}

/* one layer of --layers: a convolution (3x3-style KxK, stride 1, padding K/2) or a linear */
typedef struct {
    int conv, n, c, h, w_, oc, k, first;
    float *x, *w, *b, *y, *dy, *dx, *dw, *db, *s;
} one_layer;
static void layer_fwd(void *p) {
    one_layer *l = p;
    if (l->conv)
        pdrt_conv2d_forward(l->y, l->s, l->x, l->w, l->b, l->n, l->c, l->h, l->w_, l->oc, l->k,
                            l->k, 1, 1, l->k / 2, l->k / 2);
    else
        pdrt_linear_forward(l->y, l->x, l->w, l->b, l->n, l->c, l->oc);
}
static void layer_bwd(void *p) { /* the first layer of a network needs no input gradient */
    one_layer *l = p;
    if (l->conv)
        pdrt_conv2d_backward(l->first ? NULL : l->dx, l->dw, l->db, l->s, l->dy, l->x, l->w, l->n,
                             l->c, l->h, l->w_, l->oc, l->k, l->k, 1, 1, l->k / 2, l->k / 2);
    else
        pdrt_linear_backward(l->first ? NULL : l->dx, l->dw, l->db, l->dy, l->x, l->w, l->n, l->c,
                             l->oc);
}
static float *filled(size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    return p;
}

/* --layers FILE: each line "name conv|linear B C H W OC K first" timed alone, forward and
 * backward, CPU ms per call (the best of `rounds`): lines "ours NAME FORWARD BACKWARD", as
 * bench/ops_torch.py prints PyTorch's. */
static int time_layers(const char *path, int rounds) {
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "ops_bench: cannot open %s\n", path); return 1; }
    char name[64], kind[16];
    one_layer l;
    while (fscanf(f, "%63s %15s %d %d %d %d %d %d %d", name, kind, &l.n, &l.c, &l.h, &l.w_, &l.oc,
                  &l.k, &l.first) == 9) {
        l.conv = !strcmp(kind, "conv");
        int OH = l.conv ? l.h : 1, OW = l.conv ? l.w_ : 1; /* padding K/2 keeps the size */
        size_t nx = (size_t)l.n * l.c * (l.conv ? l.h * l.w_ : 1),
               nw = (size_t)l.oc * l.c * (l.conv ? l.k * l.k : 1), ny = (size_t)l.n * l.oc * OH * OW;
        size_t ns = l.conv ? pdrt_conv2d_scratch_floats(l.n, l.c, l.h, l.w_, l.oc, l.k, l.k, 1, 1,
                                                        l.k / 2, l.k / 2) : 1;
        l.x = filled(nx); l.w = filled(nw); l.b = filled(l.oc); l.y = filled(ny); l.dy = filled(ny);
        l.dx = filled(nx); l.dw = filled(nw); l.db = filled(l.oc); l.s = filled(ns);
        layer_fwd(&l); /* warm-up (and oneDNN's primitives made) */
        layer_bwd(&l);
        double t1 = best_ms(1, 1, layer_fwd, &l);
        int reps = t1 > 50 ? 1 : (int)(50 / (t1 > 0.01 ? t1 : 0.01)); /* about 50 ms a round */
        double fwd = best_ms(rounds, reps, layer_fwd, &l), bwd = best_ms(rounds, reps, layer_bwd, &l);
        printf("ours %s %.4f %.4f\n", name, fwd, bwd);
        free(l.x); free(l.w); free(l.b); free(l.y); free(l.dy); free(l.dx); free(l.dw); free(l.db);
        free(l.s);
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv) {
    int steps = 50, epochs = 0, rounds = 5;
    const char *layers = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--train") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = argv[++i];
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--im2col")) pdrt_conv2d_use_dnnl(0);
        else {
            fprintf(stderr, "usage: ops_bench [--steps N] [--train EPOCHS] [--layers FILE "
                            "[--rounds N]] [--im2col]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    openblas_set_num_threads(1);
    if (layers) return time_layers(layers, rounds > 0 ? rounds : 1);
    setup();
    int labels[B];
    for (int i = 0; i < B * 784; i++) x0[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
    for (int i = 0; i < B; i++) labels[i] = i % 10;
    step(labels, 0.0f, 1); /* warm-up */
    memset(t_layer, 0, sizeof t_layer);
    double t0 = now(), c0 = cpu_now();
    for (int s = 0; s < steps; s++) step(labels, 0.0f, 1);
    double dt = now() - t0, dc = cpu_now() - c0;
    const char *names[8] = {"conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "relu+pool", "loss+zero+sgd"};
    printf("%-14s %10s %10s  (CPU ms per minibatch of %d)\n", "layer", "forward", "backward", B);
    for (int i = 0; i < 8; i++)
        printf("%-14s %10.3f %10.3f\n", names[i], 1e3 * t_layer[i][0] / steps,
               1e3 * t_layer[i][1] / steps);
    printf("train step: %.2f ms per minibatch, %.0f samples/s on one core (%d steps); "
           "by CPU time %.2f ms, %.0f samples/s\n",
           1e3 * dt / steps, steps * B / dt, steps, 1e3 * dc / steps, steps * B / dc);
    if (epochs > 0) {
        pd_data tr, te;
        char err[512];
        if (pd_fmnist_load(&tr, NULL, 1, err, sizeof err) || pd_fmnist_load(&te, NULL, 0, err, sizeof err)) {
            fprintf(stderr, "ops_bench: %s\n", err);
            return 1;
        }
        memset(mom, 0, n_params * 4);
        double ts = now();
        int64_t nb = pd_data_batches(&tr, B, 1);
        for (int e = 0; e < epochs; e++) {
            double lsum = 0;
            for (int64_t t = 0; t < nb; t++) {
                pd_data_batch(x0, labels, &tr, e, t, B, 1, 1);
                lsum += step(labels, 0.05f, 1);
                if ((t + 1) % 200 == 0) {
                    printf("epoch %d step %lld loss %.4f (%.0f s)\n", e, (long long)t + 1, lsum / 200, now() - ts);
                    lsum = 0;
                }
            }
            int correct = 0, total = 0;
            for (int64_t t = 0; t < pd_data_batches(&te, B, 0); t++) {
                int got = pd_data_batch(x0, labels, &te, 0, t, B, 0, 0);
                step(labels, 0, 0);
                correct += pdrt_count_correct(f2, labels, got, 10);
                total += got;
            }
            printf("epoch %d: test accuracy %.4f after %.1f s\n", e, (double)correct / total, now() - ts);
        }
        pd_data_free(&tr);
        pd_data_free(&te);
    }
    return 0;
}
