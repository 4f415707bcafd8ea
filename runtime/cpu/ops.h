/* ops.h: the CPU compute kernels of the runtime (runtime/cpu/ops_*.c): every op's forward and
 * backward, and the loss.
 *
 * Conventions (llm.c): a layer is a pair of plain functions; arguments are outputs, then inputs,
 * then sizes. Activations are NCHW (batch first), row-major float32; rank-1 activations are
 * [B][features]. Gradients are named d...; every backward ACCUMULATES (+=) into its input
 * gradients and weight gradients, so that a tensor consumed by several layers sums its gradients;
 * the caller zeroes a gradient before its first write (the generated backward zeroes each one
 * lazily, right before the first kernel that writes it; see docs/runtime.md). An input-gradient
 * pointer may be NULL when nobody needs it (for instance the gradient of the model's input); weight-gradient pointers
 * may be NULL too (then that gradient is not computed). Bias pointers may be NULL (no bias).
 * Kernels are deterministic (same inputs, same bits) and never start threads; matrix products go
 * through cblas_sgemm, whose thread count the executable sets once (OPENBLAS_NUM_THREADS=1).
 * Spatial output size of conv2d/maxpool2d/avgpool2d: floor((in + 2*pad - k) / stride) + 1.
 * Parameter layouts: linear weight [OC][C], bias [OC]; conv2d weight [OC][C][KH][KW], bias [OC];
 * batchnorm2d gamma [C], beta [C], running_mean [C], running_var [C]. See docs/ops.md.
 */
#ifndef PD_OPS_H
#define PD_OPS_H

#include <stddef.h>
#include <stdint.h>

/* floor((in + 2*pad - k) / stride) + 1: the output extent of a window op along one axis */
int pdrt_pool_out_size(int in, int k, int stride, int pad);

/* ---- linear: out[b][o] = bias[o] + sum_c inp[b][c] * weight[o][c] ---- */
void pdrt_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int B, int C, int OC);
/* dinp[b][c] += sum_o dout[b][o] w[o][c]; dweight[o][c] += sum_b dout[b][o] inp[b][c];
 * dbias[o] += sum_b dout[b][o] */
void pdrt_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int B, int C, int OC);

/* ---- conv2d (cross-correlation, zero padding): oneDNN's convolutions (one thread) where the build
 * has libdnnl (PD_HAVE_DNNL), else im2col + sgemm (ops_conv.c) ----
 * inp [B][C][H][W], weight [OC][C][KH][KW], bias [OC], out [B][OC][OH][OW].
 * scratch: pdrt_conv2d_scratch_floats(...) floats, owned by the caller, used by forward and backward
 * alike; its contents are not preserved between calls (one buffer may serve every conv layer of a
 * stage: size it to the maximum). */
size_t pdrt_conv2d_scratch_floats(int B, int C, int H, int W, int OC, int KH, int KW, int SH, int SW,
                             int PH, int PW);
void pdrt_conv2d_forward(float *out, float *scratch, const float *inp, const float *weight,
                    const float *bias, int B, int C, int H, int W, int OC, int KH, int KW,
                    int SH, int SW, int PH, int PW);
/* accumulates dinp (may be NULL), dweight, dbias (may be NULL) */
void pdrt_conv2d_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                     const float *dout, const float *inp, const float *weight, int B, int C,
                     int H, int W, int OC, int KH, int KW, int SH, int SW, int PH, int PW);

/* Whether conv2d may use oneDNN (1, the default) or always im2col + sgemm (0): for tests and
 * benchmarks that compare the two. Without oneDNN in the build it changes nothing. */
void pdrt_conv2d_use_dnnl(int on);
/* How many convolution shapes oneDNN has run so far in this process (0 without it). */
int pdrt_conv2d_dnnl_shapes(void);

/* ---- relu: out = max(inp, 0). May run in place (out == inp). ----
 * The backward reads the forward's OUTPUT (out > 0 exactly where inp > 0), so it works after an
 * in-place forward: dinp += dout * (out > 0). */
void pdrt_relu_forward(float *out, const float *inp, size_t N);
void pdrt_relu_backward(float *dinp, const float *dout, const float *out, size_t N);
/* the same, overwriting: dinp = 0 + dout * (out > 0), the bits of zeroing dinp and then
 * pdrt_relu_backward without the pass that zeroes (codegen calls it where dinp is first written) */
void pdrt_relu_backward_set(float *dinp, const float *dout, const float *out, size_t N);

/* ---- gelu, GPT-2's tanh form: out = 0.5 inp (1 + tanh(u)), u = sqrt(2/pi) (inp + 0.044715
 * inp^3). Not in place: the backward reads the forward's INPUT:
 * dinp += dout * (0.5 (1 + tanh u) + 0.5 inp (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 inp^2)).
 * dinp may be NULL. ---- */
void pdrt_gelu_forward(float *out, const float *inp, size_t N);
void pdrt_gelu_backward(float *dinp, const float *dout, const float *inp, size_t N);

/* ---- maxpool2d: padding counts as -infinity (PyTorch); ties go to the first maximum in
 * row-major window order. argmax [B][C][OH][OW] (caller scratch, one int per output element)
 * receives the index h*W + w of the chosen input within its (b, c) plane (the backward skips
 * -1). ---- */
void pdrt_maxpool2d_forward(float *out, int *argmax, const float *inp, int B, int C, int H, int W,
                       int KH, int KW, int SH, int SW, int PH, int PW);
void pdrt_maxpool2d_backward(float *dinp, const float *dout, const int *argmax, int B, int C, int H,
                        int W, int KH, int KW, int SH, int SW, int PH, int PW);
/* the same, overwriting dinp: the bits of zeroing it and then pdrt_maxpool2d_backward; windows
 * that tile the plane (2x2, stride 2, no padding, even sides) write each input once, no zeroing */
/* maxpool2d of relu(inp), without relu's output: out is the bits of pdrt_relu_forward then
 * pdrt_maxpool2d_forward; argmax is -1 where the window's maximum is 0 (no gradient: relu's mask),
 * so pdrt_maxpool2d_backward(_set) with relu's input gradient as dinp is the pair's backward
 * (codegen fuses a relu whose only reader is a maxpool2d) */
void pdrt_relu_maxpool2d_forward(float *out, int *argmax, const float *inp, int B, int C, int H,
                                 int W, int KH, int KW, int SH, int SW, int PH, int PW);
void pdrt_maxpool2d_backward_set(float *dinp, const float *dout, const int *argmax, int B, int C,
                                 int H, int W, int KH, int KW, int SH, int SW, int PH, int PW);

/* ---- avgpool2d: PyTorch's AvgPool2d with count_include_pad=True: every window sums KH*KW
 * positions (padding counts as zero) and divides by KH*KW. Global average pooling is
 * KH=H, KW=W, SH=SW=1, PH=PW=0 (output 1x1). ---- */
void pdrt_avgpool2d_forward(float *out, const float *inp, int B, int C, int H, int W, int KH, int KW,
                       int SH, int SW, int PH, int PW);
void pdrt_avgpool2d_backward(float *dinp, const float *dout, int B, int C, int H, int W, int KH,
                        int KW, int SH, int SW, int PH, int PW);

/* ---- identity / flatten ----
 * flatten [B][C][H][W] -> [B][C*H*W] is a no-op on NCHW memory: generated code should alias the
 * output to the input (and the output gradient to the input gradient). Where a copy is wanted:
 * pdrt_identity_forward copies N floats, pdrt_identity_backward accumulates dinp += dout. Dropout in eval
 * mode is the identity too. */
void pdrt_identity_forward(float *out, const float *inp, size_t N);
void pdrt_identity_backward(float *dinp, const float *dout, size_t N);

/* ---- dropout (training; inverted): out = inp * mask, mask = 0 with probability p, else
 * 1/(1-p). mask [B][N] is caller scratch kept for the backward. The keep/drop draw of element i
 * of row b is pd_rng_uniform(pd_rng_key(seed, PD_RNG_DROPOUT, step, layer, sample0 + b), i) >= p:
 * it depends on (seed, step = the minibatch number, layer index, sample index within the
 * minibatch, element), never on which process computes it. sample0 is 0 unless a caller splits a
 * minibatch. p == 0 copies; p must be < 1. ---- */
void pdrt_dropout_forward(float *out, float *mask, const float *inp, float p, uint64_t seed,
                     int64_t step, int layer, int64_t sample0, int B, size_t N);
/* dinp += dout * mask, over B*N floats */
void pdrt_dropout_backward(float *dinp, const float *dout, const float *mask, size_t BN);

/* ---- batchnorm2d over (B, H, W) per channel ----
 * Training: batch mean and biased variance normalise; running stats update PyTorch's way:
 * running_mean = (1-momentum)*running_mean + momentum*mean,
 * running_var  = (1-momentum)*running_var  + momentum*var_unbiased (var * n/(n-1), n = B*H*W).
 * save_mean [C] and save_rstd [C] (= 1/sqrt(var_biased + eps)) are caller scratch kept for the
 * backward. running_mean/var may be NULL (not tracked). */
void pdrt_batchnorm2d_forward(float *out, float *save_mean, float *save_rstd, float *running_mean,
                         float *running_var, const float *inp, const float *gamma,
                         const float *beta, float momentum, float eps, int B, int C, int H,
                         int W);
/* Eval: out = gamma * (inp - running_mean) / sqrt(running_var + eps) + beta */
void pdrt_batchnorm2d_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                              const float *running_mean, const float *running_var, float eps,
                              int B, int C, int H, int W);
/* Backward of the training forward; accumulates dinp, dgamma, dbeta (each may be NULL). */
void pdrt_batchnorm2d_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                          const float *inp, const float *gamma, const float *save_mean,
                          const float *save_rstd, int B, int C, int H, int W);

/* ---- add: out = sum of n inputs, each N floats (the whole batch). Backward: each dinps[i]
 * (NULL entries skipped) += dout. ---- */
void pdrt_add_forward(float *out, const float *const *inps, int n, size_t N);
void pdrt_add_backward(float *const *dinps, const float *dout, int n, size_t N);

/* ---- concat along channels: input i is [B][channels[i]][HW]; out is [B][sum channels][HW].
 * Rank-1 inputs concatenate along features with HW = 1. Backward accumulates each dinps[i]
 * (NULL entries skipped). ---- */
void pdrt_concat_forward(float *out, const float *const *inps, const int *channels, int n, int B,
                    int HW);
void pdrt_concat_backward(float *const *dinps, const float *dout, const int *channels, int n, int B,
                     int HW);

/* ---- softmax cross-entropy, mean over the batch ----
 * logits [B][K], labels [B] in [0, K). Returns the mean loss (computed in double, log-sum-exp
 * stabilised) and WRITES (does not accumulate) dlogits = (softmax(logits) - onehot) / B.
 * dlogits may be NULL (loss only). */
float pdrt_softmax_cross_entropy(float *dlogits, const float *logits, const int *labels, int B, int K);
/* number of rows whose argmax (first maximum on ties) equals the label */
int pdrt_count_correct(const float *logits, const int *labels, int B, int K);

/* ---- embedding: ids [B][T] (token ids as floats, exact below 2^24), weight [V][C], pos [T][C]
 * (NULL: no position rows); out [B][T][C] = weight[ids[b][t]] + pos[t]. An id outside [0, V) is
 * a message on stderr and abort(). Backward: dweight[ids[b][t]] += dout[b][t], dpos[t] +=
 * sum_b dout[b][t] (scatter-add in minibatch order: deterministic); no input gradient. ---- */
void pdrt_embedding_forward(float *out, const float *ids, const float *weight, const float *pos,
                            int B, int T, int V, int C);
void pdrt_embedding_backward(float *dweight, float *dpos, const float *dout, const float *ids,
                             int B, int T, int V, int C);

/* ---- layernorm over the last dimension (PyTorch's LayerNorm): N rows of C (B*T tokens, or B
 * samples), each y = weight * (x - mean) * rstd + bias, mean and biased variance over the row,
 * rstd = 1/sqrt(var + eps). save_mean [N], save_rstd [N] are kept for the backward (may be NULL
 * in the forward); weight and bias may be NULL (1 and 0). Backward, with xh = (x - mean) rstd and
 * g = weight * dout: dinp += rstd (g - mean_c(g) - xh mean_c(g xh)); dweight += sum_rows dout xh;
 * dbias += sum_rows dout (each gradient may be NULL). ---- */
void pdrt_layernorm_forward(float *out, float *save_mean, float *save_rstd, const float *inp,
                            const float *weight, const float *bias, float eps, int N, int C);
void pdrt_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *save_mean,
                             const float *save_rstd, int N, int C);

/* ---- attention: causal multi-head self-attention, GPT-2's core. inp [B][T][3C] holds q, k, v
 * (columns 0..C-1, C..2C-1, 2C..3C-1; head h at h*hs.. of each, hs = C/NH); out [B][T][C] (head
 * h at h*hs..). Per head: p_ij = softmax_{j<=i}(q_i . k_j / sqrt(hs)), out_i = sum_{j<=i} p_ij
 * v_j; only j <= i is ever computed. att [B][NH][T][T] receives p (upper triangle zero), kept
 * for the backward: dv_j += sum_{i>=j} p_ij dout_i; dp_ij = dout_i . v_j; ds_ij = p_ij (dp_ij -
 * sum_j' p_ij' dp_ij'); dq_i += sum_j ds_ij k_j / sqrt(hs); dk_j += sum_i ds_ij q_i / sqrt(hs),
 * all accumulated into dinp (NULL: nothing to do). scratch: pdrt_attention_scratch_floats(T). ---- */
size_t pdrt_attention_scratch_floats(int T);
void pdrt_attention_forward(float *out, float *att, const float *inp, int B, int T, int C, int NH);
void pdrt_attention_backward(float *dinp, float *scratch, const float *dout, const float *inp,
                             const float *att, int B, int T, int C, int NH);

/* ---- lstm: one LSTM layer, PyTorch's nn.LSTM (one layer, batch_first), docs/ops.md. inp
 * [B][T][F]; out [B][T][D*H] (direction d's h_t at columns d*H..); D = 1, or 2 for a
 * bidirectional layer whose direction 1 runs from t = T-1 down to 0. Per direction, gates in
 * PyTorch's order i, f, g, o (rows k*H.. of the 4H): a_t = W_ih x_t + b_ih + W_hh h_prev + b_hh;
 * i, f, o = sigmoid, g = tanh; c_t = f c_prev + i g; h_t = o tanh(c_t); h_prev = c_prev = 0 at
 * each sequence's first step. w_ih [D][4H][F], w_hh [D][4H][H], b_ih and b_hh [D][4H] (either
 * may be NULL). gates [D][B][T][4H] receives i, f, g, o after their nonlinearities and cell
 * [D][B][T][2H] the cells c_t and tanh(c_t) (a row of H each), kept for the backward, which reads out (the h's) too and accumulates
 * dinp, dw_ih, dw_hh, db_ih, db_hh (each may be NULL) by backpropagation through time.
 * scratch: pdrt_lstm_scratch_floats(B, T, H). ---- */
size_t pdrt_lstm_scratch_floats(int B, int T, int H);
void pdrt_lstm_forward(float *out, float *gates, float *cell, const float *inp,
                       const float *w_ih, const float *w_hh, const float *b_ih,
                       const float *b_hh, int B, int T, int F, int H, int D);
void pdrt_lstm_backward(float *dinp, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh,
                        float *scratch, const float *dout, const float *out, const float *inp,
                        const float *w_ih, const float *w_hh, const float *gates,
                        const float *cell, int B, int T, int F, int H, int D);

/* ---- cross attention: the two-input `attention` (non-causal, multi-head; docs/ops.md): queries
 * q [B][Tq][C] of one sequence over keys and values kv [B][Tk][2C] of another (k columns 0..C-1,
 * v columns C..2C-1; head h at h*hs.. of each, hs = C/NH); out [B][Tq][C]. Per head:
 * p_ij = softmax_j(q_i . k_j / sqrt(hs)) over every key j, out_i = sum_j p_ij v_j. att
 * [B][NH][Tq][Tk] receives p for the backward, which accumulates dq and dkv (either may be
 * NULL): dv_j += sum_i p_ij dout_i; ds_ij = p_ij (dout_i . v_j - sum_j' p_ij' dout_i . v_j');
 * dq_i += sum_j ds_ij k_j / sqrt(hs); dk_j += sum_i ds_ij q_i / sqrt(hs).
 * scratch: pdrt_cross_attention_scratch_floats(Tq, Tk). ---- */
size_t pdrt_cross_attention_scratch_floats(int Tq, int Tk);
void pdrt_cross_attention_forward(float *out, float *att, const float *q, const float *kv,
                                  int B, int Tq, int Tk, int C, int NH);
void pdrt_cross_attention_backward(float *dq, float *dkv, float *scratch, const float *dout,
                                   const float *q, const float *kv, const float *att, int B,
                                   int Tq, int Tk, int C, int NH);

#endif
