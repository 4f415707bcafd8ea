/* gpt_kernels.c: CPU time of the GPT ops' kernels (attention, gelu, layernorm, forward then
 * backward) at gpt_char's shapes, this checkout's against an earlier commit's (bench/gpt_kernels.sh
 * builds that commit's kernels with their names prefixed old_), interleaved in one run so that
 * both see the same machine load. Prints ms per call pair and the ratio old / new. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/cpu/ops.h"

void old_attention_forward(float *out, float *att, const float *inp, int B, int T, int C, int NH);
void old_attention_backward(float *dinp, float *scratch, const float *dout, const float *inp,
                            const float *att, int B, int T, int C, int NH);
size_t old_attention_scratch_floats(int T);
void old_gelu_forward(float *out, const float *inp, size_t N);
void old_gelu_backward(float *dinp, const float *dout, const float *inp, size_t N);
void old_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                           const float *w, const float *b, float eps, int N, int C);
void old_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, const float *mean,
                            const float *rstd, int N, int C);

static double cpu_s(void) { /* this process's CPU time: less sensitive to other load */
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *rnd(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) exit(1);
    for (size_t i = 0; i < n; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    int B = 32, T = 128, C = 128, NH = 4, H = 4 * C; /* gpt_char: batch, context, width */
    size_t nx = (size_t)B * T * 3 * C, ny = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    size_t ng = (size_t)B * T * H, rows = (size_t)B * T;
    size_t nscr = old_attention_scratch_floats(T) > pdrt_attention_scratch_floats(T)
                      ? old_attention_scratch_floats(T)
                      : pdrt_attention_scratch_floats(T);
    float *x = rnd(nx), *y = rnd(ny), *att = rnd(na), *dy = rnd(ny), *dx = rnd(nx);
    float *scr = rnd(nscr), *g = rnd(ng), *gy = rnd(ng), *gdx = rnd(ng), *gdy = rnd(ng);
    float *lx = rnd(ny), *ly = rnd(ny), *lw = rnd((size_t)C), *lb = rnd((size_t)C);
    float *m = rnd(rows), *r = rnd(rows), *ldx = rnd(ny), *ldw = rnd((size_t)C),
          *ldb = rnd((size_t)C);
    double t[2][3] = {{0}};
    for (int k = 0; k < reps; k++) {
        double a = cpu_s();
        old_attention_forward(y, att, x, B, T, C, NH);
        old_attention_backward(dx, scr, dy, x, att, B, T, C, NH);
        t[0][0] += cpu_s() - a, a = cpu_s();
        pdrt_attention_forward(y, att, x, B, T, C, NH);
        pdrt_attention_backward(dx, scr, dy, x, att, B, T, C, NH);
        t[1][0] += cpu_s() - a, a = cpu_s();
        old_gelu_forward(gy, g, ng);
        old_gelu_backward(gdx, gdy, g, ng);
        t[0][1] += cpu_s() - a, a = cpu_s();
        pdrt_gelu_forward(gy, g, ng);
        pdrt_gelu_backward(gdx, gdy, g, ng);
        t[1][1] += cpu_s() - a, a = cpu_s();
        old_layernorm_forward(ly, m, r, lx, lw, lb, 1e-5f, (int)rows, C);
        old_layernorm_backward(ldx, ldw, ldb, ly, lx, lw, m, r, (int)rows, C);
        t[0][2] += cpu_s() - a, a = cpu_s();
        pdrt_layernorm_forward(ly, m, r, lx, lw, lb, 1e-5f, (int)rows, C);
        pdrt_layernorm_backward(ldx, ldw, ldb, ly, lx, lw, m, r, (int)rows, C);
        t[1][2] += cpu_s() - a;
    }
    const char *what[3] = {"attention (B 32, T 128, C 128, 4 heads)", "gelu (32 x 128 x 512)",
                           "layernorm (4096 rows of 128)"};
    printf("%-42s %10s %10s %8s\n", "forward + backward, CPU ms per call", "base", "this",
           "base/this");
    for (int k = 0; k < 3; k++)
        printf("%-42s %10.2f %10.2f %7.2fx\n", what[k], 1e3 * t[0][k] / reps,
               1e3 * t[1][k] / reps, t[0][k] / t[1][k]);
    free(x), free(y), free(att), free(dy), free(dx), free(scr), free(g), free(gy), free(gdx);
    free(gdy), free(lx), free(ly), free(lw), free(lb), free(m), free(r), free(ldx), free(ldw);
    free(ldb);
    return 0;
}
