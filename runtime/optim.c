/* optim.c: SGD (momentum, weight decay), Adam and AdamW over flat blobs, as PyTorch defines them,
 * the warm-up + cosine learning rate and clipping's norm and coefficient (see optim.h). */
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

/* Adam's moments and update; L2 adds l2*w to the gradient, decoupled multiplies w by
 * (1 - lr*decoupled) first (torch.optim.AdamW) */
static void adam_core(float *params, float *m, float *v, const float *grads, float lr,
                      float beta1, float beta2, float eps, float l2, float decoupled, int64_t t,
                      size_t n) {
    double bc1 = 1.0 - pow((double)beta1, (double)t);
    double bc2 = 1.0 - pow((double)beta2, (double)t);
    float step_size = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float keep = (float)(1.0 - (double)lr * (double)decoupled);
    for (size_t i = 0; i < n; i++) {
        if (decoupled != 0.0f) params[i] *= keep;
        float g = grads[i] + l2 * params[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        params[i] -= step_size * m[i] / denom;
    }
}

void pd_adam_step(float *params, float *m, float *v, const float *grads, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t t, size_t n) {
    adam_core(params, m, v, grads, lr, beta1, beta2, eps, weight_decay, 0.0f, t, n);
}

void pd_adamw_step(float *params, float *m, float *v, const float *grads, float lr, float beta1,
                   float beta2, float eps, float weight_decay, int64_t t, size_t n) {
    adam_core(params, m, v, grads, lr, beta1, beta2, eps, 0.0f, weight_decay, t, n);
}

size_t pd_optim_state_floats(const pd_optim *opt, size_t n) {
    if (opt->kind == PD_OPTIM_ADAM || opt->kind == PD_OPTIM_ADAMW) return 2 * n;
    return opt->momentum != 0.0f ? n : 0;
}

float pd_optim_lr(const pd_optim *opt, int64_t t) {
    int64_t it = t - 1, w = opt->warmup_iters, d = opt->lr_decay_iters;
    if (w > 0 && it < w) return (float)((double)opt->lr * (double)(it + 1) / (double)w);
    if (d <= w || d <= 0) return opt->lr;
    if (it > d) return opt->min_lr;
    double ratio = (double)(it - w) / (double)(d - w);
    double coeff = 0.5 * (1.0 + cos(M_PI * ratio));
    return (float)((double)opt->min_lr + coeff * ((double)opt->lr - (double)opt->min_lr));
}

void pd_optim_step(float *params, float *state, const float *grads, const pd_optim *opt,
                   int64_t t, size_t n) {
    float lr = pd_optim_lr(opt, t);
    if (opt->kind == PD_OPTIM_ADAMW) {
        float *m = state, *v = state + n;
        if (!opt->spans) {
            pd_adamw_step(params, m, v, grads, lr, opt->beta1, opt->beta2, opt->eps,
                          opt->weight_decay, t, n);
            return;
        }
        for (int k = 0; k < opt->n_spans; k++) {
            const pd_optim_span *s = &opt->spans[k];
            size_t o = (size_t)s->offset;
            pd_adamw_step(params + o, m + o, v + o, grads + o, lr, opt->beta1, opt->beta2,
                          opt->eps, s->decay ? opt->weight_decay : 0.0f, t, (size_t)s->n);
        }
    } else if (opt->kind == PD_OPTIM_ADAM) {
        pd_adam_step(params, state, state + n, grads, lr, opt->beta1, opt->beta2, opt->eps,
                     opt->weight_decay, t, n);
    } else {
        pd_sgd_step(params, opt->momentum != 0.0f ? state : NULL, grads, lr, opt->momentum,
                    opt->weight_decay, n);
    }
}

double pd_sq_norm(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return s;
}

float pd_clip_coef(double sq_norm, float max_norm) {
    double c = (double)max_norm / (sqrt(sq_norm) + 1e-6);
    return c < 1.0 ? (float)c : 1.0f;
}
