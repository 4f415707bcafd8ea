/* ops_cuda.h: the GPU mirror of ops.h and optim.h (cuBLASLt, cuDNN and our own CUDA kernels).
 *
 * Every CPU function `f(args...)` of ops.h / optim.h has a GPU twin `f_cuda(ctx, args...)`: the
 * same arguments in the same order (outputs, then inputs, then sizes), with DEVICE pointers, and
 * the same semantics: backward functions ACCUMULATE into gradients, gradient pointers may be
 * NULL, bias pointers may be NULL. The context comes first; it holds the stream, the cuBLASLt and
 * cuDNN handles, the precision, and two device buffers sized once at creation (the static memory
 * plan): a scratch arena for temporaries (bf16 copies of operands, masked gradients) and an
 * algorithm workspace for cuBLASLt/cuDNN. No function allocates device memory after
 * pd_cuda_ctx_create except on the first call for a new shape (descriptor and algorithm caches
 * are host memory only). All work is queued on the context's stream; only functions returning a
 * host value (pdrt_softmax_cross_entropy_cuda, pdrt_count_correct_cuda) synchronise.
 *
 * Differences from ops.h, by design:
 *  - conv2d takes no scratch argument: its workspace lives in the context;
 *  - pointer arrays (add, concat) are HOST arrays of device pointers;
 *  - labels are device int arrays; the loss has a non-synchronising variant;
 *  - extra fused op linear_relu_{forward,backward}_cuda (cuBLASLt RELU_BIAS epilogue).
 * Precision PD_CUDA_BF16: linear and conv2d cast their operands to bf16 (scratch), multiply on
 * tensor cores with fp32 accumulation, and write fp32; all stored tensors, master weights and
 * optimizer state stay fp32. PD_CUDA_FP32 never uses TF32 (cuBLASLt COMPUTE_32F, cuDNN FMA math).
 * Errors (CUDA, cuBLAS, cuDNN, scratch too small) print the failing expression, file and line,
 * and exit(1). See docs/cuda.md.
 */
#ifndef PD_OPS_CUDA_H
#define PD_OPS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* number of usable GPUs; 0 when cudaGetDeviceCount reports anything but success (gpu_detect.c) */
int pd_gpu_count(void);

typedef enum { PD_CUDA_FP32 = 0, PD_CUDA_BF16 = 1 } pd_cuda_precision;
typedef struct pd_cuda_ctx pd_cuda_ctx;

/* Selects `device`, creates a stream and the handles, allocates scratch_bytes of scratch and
 * algo_ws_bytes of algorithm workspace (0: 64 MiB). Returns NULL (with a message) on failure. */
pd_cuda_ctx *pd_cuda_ctx_create(int device, pd_cuda_precision prec, size_t scratch_bytes,
                                size_t algo_ws_bytes);
void pd_cuda_ctx_destroy(pd_cuda_ctx *ctx);
void pd_cuda_ctx_set_precision(pd_cuda_ctx *ctx, pd_cuda_precision prec);
pd_cuda_precision pd_cuda_ctx_precision(const pd_cuda_ctx *ctx);
void *pd_cuda_ctx_stream(pd_cuda_ctx *ctx); /* the cudaStream_t */
void pd_cuda_sync(pd_cuda_ctx *ctx);

/* setup-time memory helpers (the static plan allocates everything through these, once) */
void *pd_cuda_alloc(size_t bytes);
void pd_cuda_free(void *p);
void pd_cuda_upload(pd_cuda_ctx *ctx, void *dst, const void *src, size_t bytes);   /* sync */
void pd_cuda_download(pd_cuda_ctx *ctx, void *dst, const void *src, size_t bytes); /* sync */
void pd_cuda_zero(pd_cuda_ctx *ctx, void *p, size_t bytes);                       /* async */

/* scratch bytes each op needs from the context at a given precision (size the context to the
 * maximum over a stage's layers); ops not listed need none */
size_t pdrt_linear_cuda_scratch_bytes(pd_cuda_precision prec, int B, int C, int OC);
size_t pdrt_conv2d_cuda_scratch_bytes(pd_cuda_precision prec, int B, int C, int H, int W, int OC,
                                 int KH, int KW, int SH, int SW, int PH, int PW);
size_t pdrt_batchnorm2d_cuda_scratch_bytes(int B, int C, int H, int W);

/* ---- linear ---- */
void pdrt_linear_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, const float *weight,
                         const float *bias, int B, int C, int OC);
void pdrt_linear_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight, int B, int C,
                          int OC);
/* out = relu(linear(inp)) in one GEMM (epilogue); backward = pdrt_relu_backward then pdrt_linear_backward
 * (reads the forward's output, like pdrt_relu_backward) */
void pdrt_linear_relu_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp,
                              const float *weight, const float *bias, int B, int C, int OC);
void pdrt_linear_relu_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                               const float *dout, const float *out, const float *inp,
                               const float *weight, int B, int C, int OC);

/* ---- conv2d (cuDNN) ---- */
void pdrt_conv2d_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, const float *weight,
                         const float *bias, int B, int C, int H, int W, int OC, int KH, int KW,
                         int SH, int SW, int PH, int PW);
void pdrt_conv2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight, int B, int C,
                          int H, int W, int OC, int KH, int KW, int SH, int SW, int PH, int PW);

/* ---- relu, identity ---- */
void pdrt_relu_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, size_t N);
void pdrt_relu_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout, const float *out,
                        size_t N);
void pdrt_gelu_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, size_t N);
void pdrt_gelu_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout, const float *inp,
                             size_t N);
void pdrt_identity_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, size_t N);
void pdrt_identity_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout, size_t N);

/* ---- pooling (own kernels: same argmax semantics as the CPU, deterministic gathers) ---- */
void pdrt_maxpool2d_forward_cuda(pd_cuda_ctx *ctx, float *out, int *argmax, const float *inp, int B,
                            int C, int H, int W, int KH, int KW, int SH, int SW, int PH, int PW);
void pdrt_maxpool2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout, const int *argmax,
                             int B, int C, int H, int W, int KH, int KW, int SH, int SW, int PH,
                             int PW);
void pdrt_avgpool2d_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, int B, int C, int H,
                            int W, int KH, int KW, int SH, int SW, int PH, int PW);
void pdrt_avgpool2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout, int B, int C,
                             int H, int W, int KH, int KW, int SH, int SW, int PH, int PW);

/* ---- dropout: the same keyed draws as the CPU (rng.h), so masks match bit for bit ---- */
void pdrt_dropout_forward_cuda(pd_cuda_ctx *ctx, float *out, float *mask, const float *inp, float p,
                          uint64_t seed, int64_t step, int layer, int64_t sample0, int B,
                          size_t N);
void pdrt_dropout_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout, const float *mask,
                           size_t BN);

/* ---- batchnorm2d (cuDNN spatial batch norm; eps >= 1e-5, cuDNN's minimum) ---- */
void pdrt_batchnorm2d_forward_cuda(pd_cuda_ctx *ctx, float *out, float *save_mean, float *save_rstd,
                              float *running_mean, float *running_var, const float *inp,
                              const float *gamma, const float *beta, float momentum, float eps,
                              int B, int C, int H, int W);
void pdrt_batchnorm2d_forward_eval_cuda(pd_cuda_ctx *ctx, float *out, const float *inp,
                                   const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var,
                                   float eps, int B, int C, int H, int W);
void pdrt_batchnorm2d_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dgamma, float *dbeta,
                               const float *dout, const float *inp, const float *gamma,
                               const float *save_mean, const float *save_rstd, int B, int C,
                               int H, int W);

/* ---- add, concat (inps / dinps: host arrays of n device pointers) ---- */
void pdrt_add_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *const *inps, int n, size_t N);
void pdrt_add_backward_cuda(pd_cuda_ctx *ctx, float *const *dinps, const float *dout, int n,
                       size_t N);
void pdrt_concat_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *const *inps,
                         const int *channels, int n, int B, int HW);
void pdrt_concat_backward_cuda(pd_cuda_ctx *ctx, float *const *dinps, const float *dout,
                          const int *channels, int n, int B, int HW);

/* ---- softmax cross-entropy (labels: device ints) ----
 * The _async form writes the mean loss to the device float *loss and does not synchronise; the
 * plain form synchronises and returns it. dlogits is WRITTEN (may be NULL). */
void pdrt_softmax_cross_entropy_async_cuda(pd_cuda_ctx *ctx, float *loss, float *dlogits,
                                      const float *logits, const int *labels, int B, int K);
float pdrt_softmax_cross_entropy_cuda(pd_cuda_ctx *ctx, float *dlogits, const float *logits,
                                 const int *labels, int B, int K);
int pdrt_count_correct_cuda(pd_cuda_ctx *ctx, const float *logits, const int *labels, int B, int K);

/* ---- optimizers (optim.h semantics, device blobs) ---- */
void pd_sgd_step_cuda(pd_cuda_ctx *ctx, float *params, float *buf, const float *grads, float lr,
                      float momentum, float weight_decay, size_t n);
void pd_adam_step_cuda(pd_cuda_ctx *ctx, float *params, float *m, float *v, const float *grads,
                       float lr, float beta1, float beta2, float eps, float weight_decay,
                       int64_t t, size_t n);
void pd_adamw_step_cuda(pd_cuda_ctx *ctx, float *params, float *m, float *v, const float *grads,
                        float lr, float beta1, float beta2, float eps, float weight_decay,
                        int64_t t, size_t n);
/* one step at pd_optim_lr(opt, t) (the schedule), AdamW's decay by opt->spans */
void pd_optim_step_cuda(pd_cuda_ctx *ctx, float *params, float *state, const float *grads,
                        const pd_optim *opt, int64_t t, size_t n);
/* sum of g[i]^2 in double over a fixed grid (deterministic; synchronises): clipping's norm */
double pd_sq_norm_cuda(pd_cuda_ctx *ctx, const float *g, size_t n);

/* ---- for the executor (rt_kernels.cu) ---- */
void pd_scale_cuda(pd_cuda_ctx *ctx, float *x, float a, size_t n);          /* x *= a */
void pd_labels_from_floats_cuda(pd_cuda_ctx *ctx, int *labels, const float *tail, int n);

/* embedding (ops.h): the gather, and its deterministic backward (embedding.cu) */
void pdrt_embedding_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *ids,
                                 const float *weight, const float *pos, int B, int T, int V, int C);
void pdrt_embedding_backward_cuda(pd_cuda_ctx *ctx, float *dweight, float *dpos,
                                  const float *dout, const float *ids, int B, int T, int V, int C);

/* ---- layernorm and attention (sequence.cu; ops.h has the math). The attention backward takes
 * no scratch argument: ds lives in the context's scratch, pdrt_attention_cuda_scratch_bytes. ---- */
size_t pdrt_attention_cuda_scratch_bytes(int B, int T, int NH);
void pdrt_layernorm_forward_cuda(pd_cuda_ctx *ctx, float *out, float *save_mean, float *save_rstd,
                                 const float *inp, const float *weight, const float *bias,
                                 float eps, int N, int C);
void pdrt_layernorm_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dweight, float *dbias,
                                  const float *dout, const float *inp, const float *weight,
                                  const float *save_mean, const float *save_rstd, int N, int C);
void pdrt_attention_forward_cuda(pd_cuda_ctx *ctx, float *out, float *att, const float *inp, int B,
                                 int T, int C, int NH);
void pdrt_attention_backward_cuda(pd_cuda_ctx *ctx, float *dinp, const float *dout,
                                  const float *inp, const float *att, int B, int T, int C, int NH);

/* ---- lstm (lstm.cu; ops.h has the math and the layouts). The backward takes no scratch
 * argument: its gate gradients and carried dh, dc live in the context's scratch,
 * pdrt_lstm_cuda_scratch_bytes. ---- */
size_t pdrt_lstm_cuda_scratch_bytes(int B, int T, int H);
void pdrt_lstm_forward_cuda(pd_cuda_ctx *ctx, float *out, float *gates, float *cell,
                            const float *inp, const float *w_ih, const float *w_hh,
                            const float *b_ih, const float *b_hh, int B, int T, int F, int H,
                            int D);
void pdrt_lstm_backward_cuda(pd_cuda_ctx *ctx, float *dinp, float *dw_ih, float *dw_hh,
                             float *db_ih, float *db_hh, const float *dout, const float *out,
                             const float *inp, const float *w_ih, const float *w_hh,
                             const float *gates, const float *cell, int B, int T, int F, int H,
                             int D);

/* ---- the two-input attention (cross_attention.cu; ops.h has the math). The backward's ds lives
 * in the context's scratch, pdrt_cross_attention_cuda_scratch_bytes. ---- */
size_t pdrt_cross_attention_cuda_scratch_bytes(int B, int Tq, int Tk, int NH);
void pdrt_cross_attention_forward_cuda(pd_cuda_ctx *ctx, float *out, float *att, const float *q,
                                       const float *kv, int B, int Tq, int Tk, int C, int NH);
void pdrt_cross_attention_backward_cuda(pd_cuda_ctx *ctx, float *dq, float *dkv,
                                        const float *dout, const float *q, const float *kv,
                                        const float *att, int B, int Tq, int Tk, int C, int NH);

#ifdef __cplusplus
}
#endif

#endif
