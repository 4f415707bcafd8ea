/* optim.h: optimizers over one flat blob of parameters, gradients and state, so that a stage
 * updates all of its parameters in one call.
 *
 * SGD is torch.optim.SGD (dampening 0, no Nesterov): g = grad + wd*w; buf = momentum*buf + g
 * (the first step's buf = g, which is what a zero-initialised buf gives); w -= lr*buf. With
 * momentum 0 no buffer is used: w -= lr*g.
 * Adam is torch.optim.Adam (amsgrad off, L2 weight decay added to the gradient):
 * g = grad + wd*w; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 * w -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), t = 1, 2, ... the step number.
 */
#ifndef PD_OPTIM_H
#define PD_OPTIM_H

#include <stddef.h>
#include <stdint.h>

/* buf: n floats, zero before the first step (may be NULL when momentum == 0) */
void pd_sgd_step(float *params, float *buf, const float *grads, float lr, float momentum,
                 float weight_decay, size_t n);
/* m, v: n floats each, zero before the first step; t >= 1 is this step's number */
void pd_adam_step(float *params, float *m, float *v, const float *grads, float lr, float beta1,
                  float beta2, float eps, float weight_decay, int64_t t, size_t n);

/* One entry point for both, with the state in one blob. */
typedef enum { PD_OPTIM_SGD = 0, PD_OPTIM_ADAM = 1 } pd_optim_kind;
typedef struct {
    pd_optim_kind kind;
    float lr, momentum, weight_decay; /* SGD uses lr, momentum, weight_decay */
    float beta1, beta2, eps;          /* Adam uses lr, beta1, beta2, eps, weight_decay */
} pd_optim;

/* floats of optimizer state for n parameters: SGD n (0 if momentum == 0), Adam 2n (m then v) */
size_t pd_optim_state_floats(const pd_optim *opt, size_t n);
/* one step: state is pd_optim_state_floats(opt, n) floats, zero before step t = 1 */
void pd_optim_step(float *params, float *state, const float *grads, const pd_optim *opt,
                   int64_t t, size_t n);

#endif
