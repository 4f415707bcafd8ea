/* init.c: PyTorch's default initialisation, keyed by (seed, layer, param, element) (see init.h). */
#include "init.h"

#include <math.h>

#include "runtime/base/rng.h"

void pd_init_uniform(float *w, float bound, uint64_t seed, int layer, int param, size_t n) {
    uint64_t key = pd_rng_key(seed, PD_RNG_INIT, (uint64_t)layer, (uint64_t)param, 0);
    for (size_t i = 0; i < n; i++) w[i] = bound * (2.0f * pd_rng_uniform(key, i) - 1.0f);
}

void pd_init_linear(float *weight, float *bias, uint64_t seed, int layer, int C, int OC) {
    float bound = 1.0f / sqrtf((float)C);
    pd_init_uniform(weight, bound, seed, layer, 0, (size_t)OC * C);
    if (bias) pd_init_uniform(bias, bound, seed, layer, 1, (size_t)OC);
}

void pd_init_lstm(float *w_ih, float *w_hh, float *b_ih, float *b_hh, uint64_t seed, int layer,
                  int F, int H, int D) {
    float bound = 1.0f / sqrtf((float)H);
    size_t g = (size_t)D * 4 * H;
    pd_init_uniform(w_ih, bound, seed, layer, 0, g * F);
    pd_init_uniform(w_hh, bound, seed, layer, 1, g * H);
    if (b_ih) pd_init_uniform(b_ih, bound, seed, layer, 2, g);
    if (b_hh) pd_init_uniform(b_hh, bound, seed, layer, 3, g);
}

void pd_init_conv2d(float *weight, float *bias, uint64_t seed, int layer, int C, int OC, int KH,
                    int KW) {
    int fan_in = C * KH * KW;
    float bound = 1.0f / sqrtf((float)fan_in);
    pd_init_uniform(weight, bound, seed, layer, 0, (size_t)OC * fan_in);
    if (bias) pd_init_uniform(bias, bound, seed, layer, 1, (size_t)OC);
}

void pd_init_batchnorm2d(float *gamma, float *beta, float *running_mean, float *running_var,
                         int C) {
    for (int c = 0; c < C; c++) {
        if (gamma) gamma[c] = 1.0f;
        if (beta) beta[c] = 0.0f;
        if (running_mean) running_mean[c] = 0.0f;
        if (running_var) running_var[c] = 1.0f;
    }
}

void pd_init_embedding(float *weight, float *pos, uint64_t seed, int layer, int V, int C, int T,
                       float std) {
    uint64_t kw = pd_rng_key(seed, PD_RNG_INIT, (uint64_t)layer, 0, 0);
    for (size_t i = 0; i < (size_t)V * C; i++) weight[i] = std * pd_rng_normal(kw, i);
    if (!pos) return;
    uint64_t kp = pd_rng_key(seed, PD_RNG_INIT, (uint64_t)layer, 1, 0);
    for (size_t i = 0; i < (size_t)T * C; i++) pos[i] = std * pd_rng_normal(kp, i);
}

void pd_init_layernorm(float *weight, float *bias, int C) {
    pd_init_batchnorm2d(weight, bias, NULL, NULL, C);
}
