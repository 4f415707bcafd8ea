/* optim.c: SGD (momentum, weight decay) and Adam over flat blobs, as PyTorch defines them
 * (see optim.h). */
#include "optim.h"

#include <math.h>

void pd_sgd_step(float *params, float *buf, const float *grads, float lr, float momentum,
                 float weight_decay, size_t n) {
    if (momentum == 0.0f || !buf) {
        for (size_t i = 0; i < n; i++) params[i] -= lr * (grads[i] + weight_decay * params[i]);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] + weight_decay * params[i];
        buf[i] = momentum * buf[i] + g;
        params[i] -= lr * buf[i];
    }
}

void pd_adam_step(float *params, float *m, float *v, const float *grads, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t t, size_t n) {
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    for (size_t i = 0; i < n; i++) {
        float g = grads[i] + weight_decay * params[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        params[i] -= step_size * m[i] / denom;
    }
}

size_t pd_optim_state_floats(const pd_optim *opt, size_t n) {
    if (opt->kind == PD_OPTIM_ADAM) return 2 * n;
    return opt->momentum != 0.0f ? n : 0;
}

void pd_optim_step(float *params, float *state, const float *grads, const pd_optim *opt,
                   int64_t t, size_t n) {
    if (opt->kind == PD_OPTIM_ADAM)
        pd_adam_step(params, state, state + n, grads, opt->lr, opt->beta1, opt->beta2, opt->eps,
                     opt->weight_decay, t, n);
    else
        pd_sgd_step(params, opt->momentum != 0.0f ? state : NULL, grads, opt->lr, opt->momentum,
                    opt->weight_decay, n);
}
