/* resolve.h: the code generator's resolve pass. For every stage of a plan it decides which
 * tensors cross each cut (the input and output packs), where every layer's output, gradient and
 * saved state live (a named offset into one blob each), the parameter and buffer offsets, and
 * what the backend's backward does beyond the layers' calls (which gradient region to zero right
 * before its first write; which linear+ReLU pairs run as one fused call). The printers (emit.c,
 * emit_cuda.c, emit_common.c) only print what this computes. */
#ifndef PD_RESOLVE_H
#define PD_RESOLVE_H

#include <stdint.h>

#include "planner/util/diag.h"
#include "planner/model/model.h"
#include "planner/ops/op.h"
#include "planner/plan/plan.h"

/* The most stages a generated program may have: the runtime's limit (runtime/rt_schedule.c
 * checks n_stages <= 256). A plan with more is refused, not truncated. */
#define CG_MAX_STAGES 256

typedef enum {
    CG_BACKEND_CPU,  /* runtime/cpu/ops.h: backward fills dparams and din whole, zeroes lazily */
    CG_BACKEND_CUDA, /* runtime/cuda/ops_cuda.h: backward accumulates; linear+ReLU fused */
} cg_backend;

/* The pointers a generated stage function sees (pdrt.h, pdrt_cuda.h), and NULL. The gradient
 * blobs have the layout of the blob they are the gradient of. */
typedef enum {
    CG_NULL,
    CG_IN, CG_ACTS, CG_PARAMS, CG_BUFFERS, CG_OUT, /* values */
    CG_DIN, CG_DACTS, CG_DPARAMS, CG_DOUT,         /* gradients */
    CG_N_PTRS
} cg_ptr;

/* A named offset: the stage prints `#define <name> <value>` and writes every use by name. */
typedef struct {
    char *name;    /* S<k>_<BLOB>_<LAYER>[_<TENSOR>], e.g. S0_ACT_CONV1_OUT */
    cg_ptr blob;   /* CG_IN, CG_OUT, CG_ACTS, CG_PARAMS or CG_BUFFERS */
    int64_t value; /* floats from the blob's start */
    int layer;     /* the model layer it belongs to */
    int64_t numel; /* floats it spans (per minibatch) */
} cg_sym;

/* A typed operand: pointer + named offset (cg_stage.syms[sym]), or NULL (ptr CG_NULL). */
typedef struct {
    cg_ptr ptr;
    int sym;
} cg_operand;

/* One gradient region to zero: `memset(at, 0, floats * sizeof(float))`. */
typedef struct {
    cg_operand at;
    int64_t floats;
} cg_zero;

enum {
    CG_FUSE_NONE = 0,
    CG_FUSE_LINEAR_RELU, /* this linear and the next op, its ReLU, are one call (CUDA) */
    CG_FUSED_INTO_PREV,  /* this ReLU runs inside the linear before it */
    CG_RELU_INTO_POOL,   /* CPU: this ReLU's only reader is the next op, a maxpool2d: no forward
                            of its own, and its backward is the pool's backward into its input */
    CG_POOL_OF_RELU,     /* CPU: this maxpool2d runs on the ReLU before it, fused (its forward
                            pdrt_relu_maxpool2d_forward on the ReLU's input; no backward here) */
};

typedef struct {
    int layer;                        /* model layer index */
    int n_in;
    cg_operand x[PD_MAX_INPUTS];      /* the inputs */
    cg_operand dx[PD_MAX_INPUTS];     /* their gradients (NULL: stage 0's model input) */
    cg_operand y, dy;                 /* the output (an aliasing op's: its input's place) and
                                         gradient */
    int64_t out_numel;                /* per sample */
    int n_tensors;                    /* the layer's parameters, then buffers (pd_op_tensors) */
    pd_tensor tensor[PD_MAX_OP_TENSORS];
    cg_operand tensor_at[PD_MAX_OP_TENSORS];  /* each one's place (NULL: absent, 0 floats) */
    cg_operand param[PD_MAX_OP_TENSORS];      /* PD_ARG_PARAM k: the k-th parameter (weight, */
    cg_operand dparam[PD_MAX_OP_TENSORS];     /* bias), and its gradient */
    cg_operand buffer[PD_MAX_OP_TENSORS];     /* PD_ARG_BUFFER k (batch norm's running stats) */
    int64_t param_floats;             /* all its parameters, adjacent from the first present */
    cg_operand saved[PD_MAX_OP_TENSORS]; /* PD_ARG_SAVED k, in acts (pd_op_saved: dropout mask,
                                         maxpool argmax, batch norm mean and rstd) */
    int fuse;                         /* CG_FUSE_*: decided for the backend */
    int n_zero;                       /* backward: regions to zero right before this layer's */
    cg_zero zero[PD_MAX_INPUTS + 2];  /* call (output, parameters, inputs; lazily, CPU) */
    int set_din;                      /* CPU: its backward overwrites input 0's gradient (the
                                         op's <fn>_set twin) instead of zeroing it first */
    int recomputed;                   /* selective stage: its output and saved state lie in
                                         the shared part of acts, and forward_recompute runs it
                                         again (its op's descriptor: selective_keeps 0) */
} cg_op;

enum {
    CG_GRAD_NONE,       /* no gradient to pass back (the model input of stage 0) */
    CG_GRAD_COPY,       /* the first write: memcpy from dout */
    CG_GRAD_ACCUMULATE, /* written before (or always, CUDA): add dout */
};

typedef struct {
    int layer;
    int64_t numel;      /* floats per minibatch */
    cg_operand slot;    /* in the pack: in + S<k>_IN_<LAYER> | out + S<k>_OUT_<LAYER> */
    cg_operand src;     /* output pack: where the tensor lives in this stage */
    cg_operand dsrc;    /* output pack: its gradient there */
    cg_operand dslot;   /* output pack: dout + S<k>_OUT_<LAYER> */
    int grad;           /* output pack: CG_GRAD_* */
} cg_pack;

typedef struct {
    int index;
    int n_ops;
    cg_op *ops;
    int n_in, n_out;
    cg_pack *in, *out;              /* ascending layer order */
    int64_t in_floats, out_floats, n_params, n_buffers, n_acts;
    int selective;                  /* the plan's recompute: selective (PD_RECOMPUTE_SELECTIVE) */
    int64_t n_acts_kept;            /* selective: acts[0, n_acts_kept) are the kept ops' outputs
                                       and saved state (per minibatch in flight), the rest the
                                       recomputed ops' (one buffer); else n_acts */
    int first_node, last_node;      /* for the banner */
    int n_syms;
    cg_sym *syms;                   /* in, out, acts, params, buffers order */
    int n_tail_zero;                /* backward, CPU: input pack gradients no layer wrote, */
    cg_zero *tail_zero;             /* zeroed last (the previous stage reads them all) */
} cg_stage;

typedef struct {
    cg_backend backend;
    int n_stages;
    cg_stage *stages;
    int microbatches;               /* flush, gpipe: the default minibatches per batch */
    char plan_hash[17];             /* plan.yaml's FNV-1a (hex), emitted into each descriptor */
} cg_program;

/* Resolves every stage of p for the backend. Returns 0, or nonzero with diagnostics (a plan the
 * runtime cannot run: more than CG_MAX_STAGES stages, non-contiguous replica ranks, vertical
 * sync with replicated stages, a layer in no stage or reading from a later one, a model whose
 * last layer is not the logits of the last stage, a layer the backend's kernels cannot run). */
int cg_resolve(cg_program *out, const pd_model *m, const pd_plan *p, cg_backend backend,
               pd_diag *d);
void cg_program_free(cg_program *pr);

/* The part of an identifier a layer's name gives (upper case, [A-Z0-9_]), one per model layer,
 * distinct: a name that collides with an earlier one's (or with FLOATS, INPUT) gets _<index>. */
char **cg_layer_idents(const pd_model *m);
void cg_free_idents(char **ids, int n);

#endif
