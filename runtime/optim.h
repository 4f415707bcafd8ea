/* optim.h: optimizers over one flat blob of parameters, gradients and state, so that a stage
 * updates all of its parameters in one call; the learning-rate schedule and the pieces of
 * gradient clipping by the global norm.
 *
 * SGD is torch.optim.SGD (dampening 0, no Nesterov): g = grad + wd*w; buf = momentum*buf + g
 * (the first step's buf = g, which is what a zero-initialised buf gives); w -= lr*buf. With
 * momentum 0 no buffer is used: w -= lr*g.
 * Adam is torch.optim.Adam (amsgrad off, L2 weight decay added to the gradient):
 * g = grad + wd*w; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 * w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t = 1, 2, ... the step number.
 * AdamW is torch.optim.AdamW (amsgrad off, decoupled weight decay): w *= 1 - lr*wd, then Adam's
 * update with the plain gradient; wd applies only to the spans marked to decay (see pd_optim).
 *
 * Learning rate of update t (1-based; it = t - 1), as torch_gpt_char.py's lr_at and nanoGPT's
 * get_lr: with warmup_iters W > 0 and it < W, lr * (it + 1) / W; then, with lr_decay_iters D > W,
 * min_lr + 0.5 * (lr - min_lr) * (1 + cos(pi * (it - W) / (D - W))) up to it = D and min_lr
 * after; without D (0), lr. Every optimizer follows it (W = D = 0: the constant lr).
 *
 * Clipping (torch.nn.utils.clip_grad_norm_): the norm is sqrt of the sum over every parameter of
 * g^2 (pd_sq_norm per blob, in double, summed by the caller over stages in stage order); every
 * gradient is multiplied by pd_clip_coef = min(1, max_norm / (norm + 1e-6)).
 */
#ifndef PD_OPTIM_H
#define PD_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus /* runtime/cuda/optim.cu calls pd_optim_lr */
extern "C" {
#endif

/* buf: n floats, zero before the first step (may be NULL when momentum == 0) */
void pd_sgd_step(float *params, float *buf, const float *grads, float lr, float momentum,
                 float weight_decay, size_t n);
/* m, v: n floats each, zero before the first step; t >= 1 is this step's number */
void pd_adam_step(float *params, float *m, float *v, const float *grads, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t t, size_t n);
/* AdamW over n floats that all decay by weight_decay (0: none) */
void pd_adamw_step(float *params, float *m, float *v, const float *grads, float lr, float beta1,
                   float beta2, float eps, float weight_decay, int64_t t, size_t n);

/* One entry point for all, with the state in one blob. */
typedef enum { PD_OPTIM_SGD = 0, PD_OPTIM_ADAM = 1, PD_OPTIM_ADAMW = 2 } pd_optim_kind;
/* floats [offset, offset + n) of the blob decay under AdamW when decay != 0 */
typedef struct {
    int64_t offset, n;
    int decay;
} pd_optim_span;
typedef struct {
    pd_optim_kind kind;
    float lr, momentum, weight_decay; /* SGD uses lr, momentum, weight_decay */
    float beta1, beta2, eps;          /* Adam and AdamW use lr, beta1, beta2, eps, weight_decay */
    /* the schedule (0: none) and clipping (0: off; applied by the caller, see above) */
    int64_t warmup_iters, lr_decay_iters;
    float min_lr, clip_grad_norm;
    /* AdamW: the blob as spans in offset order, covering it; NULL: every float decays */
    const pd_optim_span *spans;
    int n_spans;
} pd_optim;

/* floats of optimizer state for n parameters: SGD n (0 if momentum == 0), Adam, AdamW 2n */
size_t pd_optim_state_floats(const pd_optim *opt, size_t n);
/* the learning rate of step t >= 1 (the schedule above) */
float pd_optim_lr(const pd_optim *opt, int64_t t);
/* one step at pd_optim_lr(opt, t): state is pd_optim_state_floats(opt, n) floats, zero before
 * step t = 1 */
void pd_optim_step(float *params, float *state, const float *grads, const pd_optim *opt,
                   int64_t t, size_t n);

/* sum of g[i]^2 in double, in index order */
double pd_sq_norm(const float *g, size_t n);
/* min(1, max_norm / (sqrt(sq_norm) + 1e-6)) */
float pd_clip_coef(double sq_norm, float max_norm);

#ifdef __cplusplus
}
#endif

#endif
