/* init.h: PyTorch's default parameter initialisation, keyed so that any process can initialise
 * any layer identically.
 *
 * linear and conv2d: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
 * kaiming_uniform_(a=sqrt(5)) for the weight, and its bias rule), fan_in = C (linear) or
 * C*KH*KW (conv2d). Element i of parameter `param` (0 = weight, 1 = bias) of layer `layer` is
 * bound * (2u - 1), u = pd_rng_uniform(pd_rng_key(seed, PD_RNG_INIT, layer, param, 0), i).
 * batchnorm2d: gamma = 1, beta = 0, running_mean = 0, running_var = 1. layernorm: weight = 1,
 * bias = 0.
 * embedding: weight [V][C] (param 0) and position rows [T][C] (param 1) ~ N(0, std^2) (PyTorch's
 * nn.Embedding has std 1; GPT-2 and the anchor 0.02), element i = std * pd_rng_normal(key, i).
 * lstm: weight_ih, weight_hh, bias_ih, bias_hh (params 0..3) all ~ U(-1/sqrt(H), 1/sqrt(H)), as
 * nn.LSTM initialises them.
 * The numbers differ from PyTorch's (different generator); the distributions are the same.
 */
#ifndef PD_INIT_H
#define PD_INIT_H

#include <stddef.h>
#include <stdint.h>

/* w[i] = bound * (2u_i - 1), keyed by (seed, layer, param) and element i */
void pd_init_uniform(float *w, float bound, uint64_t seed, int layer, int param, size_t n);
/* weight [OC][C], bias [OC] (bias may be NULL) */
void pd_init_linear(float *weight, float *bias, uint64_t seed, int layer, int C, int OC);
/* weight [OC][C][KH][KW], bias [OC] (bias may be NULL) */
void pd_init_conv2d(float *weight, float *bias, uint64_t seed, int layer, int C, int OC, int KH,
                    int KW);
/* gamma = 1, beta = 0, running_mean = 0, running_var = 1, each [C]; any pointer may be NULL */
void pd_init_batchnorm2d(float *gamma, float *beta, float *running_mean, float *running_var,
                         int C);
/* weight [V][C], pos [T][C] (pos may be NULL) */
void pd_init_embedding(float *weight, float *pos, uint64_t seed, int layer, int V, int C, int T,
                       float std);
/* weight = 1, bias = 0, each [C] (PyTorch's LayerNorm); either may be NULL */
void pd_init_layernorm(float *weight, float *bias, int C);
/* weight_ih [D][4H][F], weight_hh [D][4H][H], bias_ih and bias_hh [D][4H] (either may be NULL) */
void pd_init_lstm(float *w_ih, float *w_hh, float *b_ih, float *b_hh, uint64_t seed, int layer,
                  int F, int H, int D);

#endif
