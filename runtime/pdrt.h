/* pdrt.h: the API that generated stage code calls (libpdrt). A generated stage_<k>.c fills one
 * pdrt_stage descriptor (sizes, the tensor table for --save/--init, and its init/forward/backward
 * functions with every shape and offset a constant) and hands it to pdrt_main, which runs the
 * schedule, the weight stash, MPI, the optimizer, the data and the summary.
 *
 * Buffers a stage function sees (all float32, carved by offsets from one blob each):
 *   params   the stage's trainable parameters (one stashed version)
 *   buffers  non-trained state: batch-norm running statistics (never stashed)
 *   acts     one minibatch's saved activations (layer outputs, dropout masks, pool argmax, ...)
 *   scratch  per-stage temporary space (im2col), not preserved between calls
 *   in       the stage's input pack: every tensor that crosses the cut into this stage,
 *            concatenated in ascending layer order (stage 0: the minibatch of model input)
 *   out      the output pack, the same way (last stage: the logits [batch][classes])
 * Backward: dout is the gradient of the output pack; the function fills dparams (the parameter
 * gradients) and din (may be NULL on stage 0) whole, whatever they held, and uses dacts (same
 * layout as acts) for the layers' gradients, each zeroed right before its first write.
 */
#ifndef PDRT_H
#define PDRT_H

#include <stdint.h>

#define PDRT_ABI 3

typedef struct {
    const char *layer;  /* model layer name */
    const char *param;  /* weight | bias | running_mean | running_var */
    int64_t offset;     /* floats, into params (is_buffer 0) or buffers (is_buffer 1) */
    int64_t numel;
    int is_buffer;
} pdrt_tensor;

/* One layer of a stage, for the profile the runtime measures inside training (laps.c). */
typedef struct {
    const char *name;         /* model layer name */
    int64_t activation_bytes; /* its output per minibatch */
    int64_t parameter_bytes;
} pdrt_layer;

/* A copy of a tied weight on this stage (docs/formats.md, "Tied weights"): one logical tensor
 * stored on the owner's stage and on the tied layer's; their gradients are summed before every
 * optimizer step, so the copies stay bitwise equal. */
typedef struct {
    int tensor;       /* this copy: an index into the stage's `tensors` */
    int peer_stage;   /* the stage holding the other copy (this stage's index: both here) */
    int peer_tensor;  /* the other copy: an index into that stage's `tensors` */
    int owner;        /* 1: this copy is the owner's (the earlier layer; --save writes it under
                         its name), 0: the tied layer's */
} pdrt_tie;

typedef void (*pdrt_init_fn)(float *params, float *buffers, uint64_t seed);
typedef void (*pdrt_forward_fn)(float *out, float *acts, float *scratch, float *buffers,
                                const float *params, const float *in, int training,
                                uint64_t seed, int64_t step);
typedef void (*pdrt_backward_fn)(float *din, float *dparams, float *dacts, float *scratch,
                                 const float *dout, const float *acts, const float *params,
                                 const float *in);

typedef struct {
    int abi;                 /* PDRT_ABI */
    const char *model;       /* model name */
    int index, n_stages;     /* this stage, of how many */
    int batch, classes;
    int in_c, in_h, in_w;    /* per-sample model input shape (rank 1: in_c features, 1, 1) */
    const char *dataset;     /* "fashion-mnist" | "synthetic" (default for --data) */
    int64_t in_floats;       /* input pack floats per minibatch */
    int64_t out_floats;      /* output pack floats per minibatch */
    int64_t n_params, n_buffers, n_acts, n_scratch;
    int n_tensors;
    const pdrt_tensor *tensors;
    pdrt_init_fn init;
    pdrt_forward_fn forward;
    pdrt_backward_fn backward;
    /* zb-h1, zb-h2: the backward in two parts (NULL: not generated; those schedules refuse the
     * stage). backward_input fills din whole and the layers' gradients in dacts; then
     * backward_weight, with the same arguments and dacts untouched in between, fills the
     * gradients of the weights whose ops split (planner/ops/op.h); backward_input fills the
     * others. Together: backward's dparams and din, bit for bit. */
    pdrt_backward_fn backward_input;
    pdrt_backward_fn backward_weight;
    int64_t (*scratch_floats)(void); /* the kernels' scratch need; the runtime allocates
                                        max(n_scratch, scratch_floats()) */
    const int *warmup;       /* n_stages entries: the plan's warm-up depth of every stage */
    int weight_versions;     /* stashed versions this stage keeps (warmup + 1 for 1f1b) */
    const char *schedule;    /* "1f1b" | "flush" | "gpipe" | "zb-h1" | "zb-h2" | "2bw" */
    double predicted_ms;     /* the plan's time per minibatch for this stage */
    double predicted_compute_ms;
    /* training defaults from the model (overridable by options) */
    int optimizer;           /* 0 SGD, 1 Adam, 2 AdamW (pd_optim_kind) */
    double lr, momentum, weight_decay, beta1, beta2, adam_eps;
    int epochs;
    /* replicated stages and synchronous schedules (zero when absent: one replica each, the
     * default batch, no vertical sync) */
    const int *replicas;     /* n_stages entries: replicas of every stage; ranks are contiguous
                                in stage order (stage 0's replicas first), as pdlaunch starts them */
    int microbatches;        /* flush, gpipe: minibatches per batch (<= 0: the default) */
    int vertical_sync;       /* 1f1b: every stage uses the weights stage 0 used (straight only) */
    const char *plan_hash;   /* plan.yaml's FNV-1a hash (hex); checkpoints carry it (NULL: none) */
    /* per-layer timing (CPU stages; 0 and NULL: the stage has no marks) */
    int n_layers;            /* this stage's layers, in model order: forward marks pdrt_lap(i) */
    const pdrt_layer *layers;
    int model_layers;        /* the whole model's layers */
    /* AdamW's decay mask, the learning-rate schedule and clipping (absent, zero: none) */
    const char *decay;       /* AdamW: one char per entry of `tensors`, '1' decays, '0' not */
    int64_t warmup_iters, lr_decay_iters;
    double min_lr, clip_grad_norm;
    /* tied weights (absent: none): the copies on this stage, the owner's listed before the tied
     * layer's when both are here */
    int n_ties;
    const pdrt_tie *ties;
    /* activation recomputation (pdplan --recompute; CPU executor): 1 full, keep only the stage
     * input of each minibatch in flight and run the forward again before its backward; 2
     * selective, keep acts[0, n_acts_kept) (the outputs and saved state of the ops that are
     * expensive to recompute) per minibatch in flight and run forward_recompute (the other
     * layers' forward, with forward's arguments, writing acts[n_acts_kept, n_acts) only) before
     * its backward. --recompute (full) and --no-recompute override it */
    int recompute;
    int64_t n_acts_kept;
    pdrt_forward_fn forward_recompute;
} pdrt_stage;

/* Marks in a generated stage's forward and backward: pdrt_lap_start() on entry, pdrt_lap(i)
 * when layer i (of the stage's n_layers) is done. While the executor profiles, the time since
 * the previous mark is layer i's; otherwise they do nothing (laps.c). */
void pdrt_lap_start(void);
void pdrt_lap(int layer);

/* One stage per MPI rank: the pipeline (pdlaunch runs these MPMD). Returns the exit status. */
int pdrt_main(int argc, char **argv, const pdrt_stage *stage);

/* Every stage in one process: `--single` (sequential SGD, one minibatch at a time, the
 * reference) or `--emulate` (PipeDream's 1F1B weight-version semantics replayed sequentially).
 * stages[k] is stage k. Returns the exit status. */
int pdrt_main_local(int argc, char **argv, const pdrt_stage *const *stages, int n_stages);

/* An interleaved plan's rank (pdplan --schedule interleaved --chunks v): chunks[c] is stage
 * c * p + rank of the plan's p * v, p the MPI world's size (runtime/executor_chunks.c). Returns
 * the exit status. */
int pdrt_main_chunks(int argc, char **argv, const pdrt_stage *const *chunks, int v);

#endif
