/* op.h: the op descriptor. Everything the tools know about one op is in its descriptor
 * (planner/ops/<op>.c): its YAML attributes and how to read them, its shape rule with its
 * parameter and FLOP counts, its parameter layout, the state its forward saves for its backward,
 * and its kernel calls AS DATA, per backend and phase. The readers (model_yaml.c), shape
 * inference (shapes.c), the code generator (codegen/) and the profiler (tools/pdprof/) read the
 * descriptors and never switch on an op. docs/architecture.md ("Ops") says how to add an op.
 *
 * A kernel call is a pd_call: the function's name and its arguments, each typed: one of the
 * layer's tensors (output, input k, all inputs as an array, their gradients, parameter k, buffer
 * k, saved tensor k, the stage's scratch), a value known when the code is generated (int, int64,
 * size_t, float, an int array), or a value known only when it runs (the batch, the batch times a
 * constant, the seed, the step, the layer's index, the CUDA precision and context). codegen prints
 * a call with named offsets; pdprof binds the same call to its buffers and makes it (libffi). */
#ifndef PD_OP_H
#define PD_OP_H

#include <stddef.h>
#include <stdint.h>

#include "planner/model/model.h"

/* ---- reading attributes: the reader (model_yaml.c) passes itself as this table ---- */

#define PD_ATTR_REQUIRED INT64_MIN /* the default of an attribute that must be given */

typedef struct pd_attr_reader pd_attr_reader;
struct pd_attr_reader {
    const char *layer; /* the layer's name, for messages ("?" when it has none) */
    /* Each reads `key` into *out (def when absent; PD_ATTR_REQUIRED: a diagnostic when absent)
     * and returns the number of errors it reported (0 or 1). */
    int (*integer)(pd_attr_reader *r, const char *key, int64_t def, int64_t lo, int64_t hi,
                   int *out);
    /* n or [h, w]; def < 0: required */
    int (*pair)(pd_attr_reader *r, const char *key, int def, int lo, int out[2]);
    int (*flag)(pd_attr_reader *r, const char *key, int def, int *out);        /* true | false */
    int (*number)(pd_attr_reader *r, const char *key, double def, double lo, double hi,
                  double *out);                                                  /* finite */
    int (*has)(pd_attr_reader *r, const char *key);
    /* A diagnostic at key's value (key NULL or absent: at the layer). */
    void (*error)(pd_attr_reader *r, const char *key, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
};

/* ---- tensors a layer owns ---- */

#define PD_MAX_OP_TENSORS 4

typedef struct {
    const char *name; /* "weight", "running_mean", "mask": the --save file's, the offset's name */
    int64_t floats;   /* parameters and buffers: in all; saved state: for the whole minibatch;
                         0: absent (passed as NULL), e.g. a linear's bias with bias: false */
    int buffer;       /* parameters only: 1 for state that is not trained (running statistics) */
    int decays;       /* parameters only: 1 for a weight matrix AdamW decays (not biases, norms'
                         scales or buffers), as torch_gpt_char.py decays the tensors of 2+ dims */
} pd_tensor;

/* ---- kernel calls as data ---- */

typedef enum { PD_BACKEND_CPU, PD_BACKEND_CUDA } pd_backend;

typedef enum {
    PD_PHASE_INIT,         /* host initialisation of parameters and buffers (both backends) */
    PD_PHASE_FORWARD,      /* training forward */
    PD_PHASE_FORWARD_EVAL, /* evaluation forward (where it differs: dropout, batch norm) */
    PD_PHASE_BACKWARD,
    PD_PHASE_SCRATCH,      /* a size_t: CPU scratch floats, or CUDA context scratch bytes */
    PD_N_PHASES
} pd_phase;

typedef enum {
    /* the layer's tensors: pointers */
    PD_ARG_OUT, PD_ARG_IN, PD_ARG_INS, PD_ARG_DOUT, PD_ARG_DIN, PD_ARG_DINS,
    PD_ARG_PARAM, PD_ARG_DPARAM, PD_ARG_BUFFER, PD_ARG_SAVED, PD_ARG_SCRATCH,
    /* values known when the code is generated */
    PD_ARG_INT, PD_ARG_I64, PD_ARG_SIZE, PD_ARG_FLOAT, PD_ARG_INTS,
    /* values known when it runs */
    PD_ARG_BATCH,       /* int */
    PD_ARG_BATCH_TIMES, /* size_t: the batch times i (a whole minibatch of i floats a sample) */
    PD_ARG_ROWS,        /* int: the batch times i (the B*T rows of a sequence of T tokens) */
    PD_ARG_SEED,        /* uint64_t */
    PD_ARG_STEP,        /* int64_t: the minibatch's number */
    PD_ARG_LAYER,       /* int: the layer's index in the model */
    PD_ARG_PREC,        /* pd_cuda_precision */
    PD_ARG_CTX,         /* pd_cuda_ctx * */
} pd_arg_kind;

typedef enum { PD_AS_FLOAT, PD_AS_INT, PD_AS_CONST_INT } pd_arg_type; /* a tensor's C type */

typedef struct {
    pd_arg_kind kind;
    int k;            /* IN, DIN, PARAM, DPARAM, BUFFER, SAVED: which */
    pd_arg_type as;   /* a saved tensor that holds ints (maxpool's argmax) */
    int64_t i;        /* INT, I64, SIZE, BATCH_TIMES */
    double f;         /* FLOAT */
    int n, ints[PD_MAX_INPUTS]; /* INTS */
} pd_arg;

#define PD_CALL_MAX_ARGS 20

typedef struct {
    char fn[64];      /* the function */
    int n_args;
    pd_arg args[PD_CALL_MAX_ARGS];
    int needs_din;    /* skipped when input 0 has no gradient (the data of stage 0) */
} pd_call;

/* What a descriptor's calls() fills: the calls of one phase on one backend. */
typedef struct {
    pd_backend backend;
    pd_phase phase;
    int n, max;
    pd_call *call;
} pd_calls;

/* A kernel of the runtime, named as on the CPU (runtime/cpu/ops.h): on CUDA it is
 * <fn>_cuda(ctx, ...) of runtime/cuda/ops_cuda.h. Returns NULL once max calls are taken. */
pd_call *pd_kernel(pd_calls *cs, const char *fn);
/* A function called as named, with no context (init, scratch sizes). */
pd_call *pd_host(pd_calls *cs, const char *fn);
/* Appends n arguments (call may be NULL: nothing). PD_ARGS(call, PD_OUT, PD_IN(0), ...). */
void pd_args(pd_call *call, const pd_arg *args, int n);
#define PD_ARGS(call, ...) \
    pd_args((call), (const pd_arg[]){__VA_ARGS__}, \
            (int)(sizeof((pd_arg[]){__VA_ARGS__}) / sizeof(pd_arg)))

#define PD_OUT ((pd_arg){.kind = PD_ARG_OUT})
#define PD_IN(x) ((pd_arg){.kind = PD_ARG_IN, .k = (x)})
#define PD_INS ((pd_arg){.kind = PD_ARG_INS})
#define PD_DOUT ((pd_arg){.kind = PD_ARG_DOUT})
#define PD_DIN(x) ((pd_arg){.kind = PD_ARG_DIN, .k = (x)})
#define PD_DINS ((pd_arg){.kind = PD_ARG_DINS})
#define PD_PARAM(x) ((pd_arg){.kind = PD_ARG_PARAM, .k = (x)})
#define PD_DPARAM(x) ((pd_arg){.kind = PD_ARG_DPARAM, .k = (x)})
#define PD_BUFFER(x) ((pd_arg){.kind = PD_ARG_BUFFER, .k = (x)})
#define PD_SAVED(x) ((pd_arg){.kind = PD_ARG_SAVED, .k = (x)})
#define PD_SAVED_AS(x, type) ((pd_arg){.kind = PD_ARG_SAVED, .k = (x), .as = (type)})
#define PD_SCRATCH ((pd_arg){.kind = PD_ARG_SCRATCH})
#define PD_INT(v) ((pd_arg){.kind = PD_ARG_INT, .i = (v)})
#define PD_I64(v) ((pd_arg){.kind = PD_ARG_I64, .i = (v)})
#define PD_SIZE(v) ((pd_arg){.kind = PD_ARG_SIZE, .i = (v)})
#define PD_FLOAT(v) ((pd_arg){.kind = PD_ARG_FLOAT, .f = (v)})
#define PD_BATCH ((pd_arg){.kind = PD_ARG_BATCH})
#define PD_BATCH_TIMES(v) ((pd_arg){.kind = PD_ARG_BATCH_TIMES, .i = (v)})
#define PD_ROWS(v) ((pd_arg){.kind = PD_ARG_ROWS, .i = (v)})
#define PD_SEED ((pd_arg){.kind = PD_ARG_SEED})
#define PD_STEP ((pd_arg){.kind = PD_ARG_STEP})
#define PD_LAYER ((pd_arg){.kind = PD_ARG_LAYER})
#define PD_PREC ((pd_arg){.kind = PD_ARG_PREC})
/* INTS: pd_arg a = {.kind = PD_ARG_INTS, .n = ...}; a.ints[...] = ... */

/* ---- the descriptor ---- */

typedef struct pd_op_desc {
    const char *name;           /* the YAML's op: */
    const char *const *attrs;   /* its attribute keys after name, op, inputs (NULL-terminated) */
    int min_inputs, max_inputs; /* add, concat: 2 and PD_MAX_INPUTS; most: 1 and 1 */
    int planning_only;          /* shapes and costs, no kernels: codegen and pdprof refuse it */
    int aliases_input;          /* the output is the input's memory, no call (flatten) */
    int backward_splits;        /* 1: its backward calls also run in two parts, the input
                                   gradient (every PD_DPARAM argument NULL) and later the weight
                                   gradients (every PD_DIN NULL), each computing the bits the
                                   whole call computes (zb-h1, zb-h2's backward_input and
                                   backward_weight); 0 with parameters: the whole backward runs
                                   in backward_input (the generated code says so) */
    int backward_sets_din;      /* 1: its backward call that writes input 0's gradient
                                   (needs_din) has a twin <fn>_set that overwrites it rather
                                   than adding into it; the CPU code calls the twin where that
                                   gradient is first written, in place of zeroing it first */
    int selective_keeps;        /* 1: expensive to recompute (its FLOPs are GEMMs: linear,
                                   conv2d, lstm), so a stage under selective recomputation keeps
                                   its output and saved state per minibatch in flight; 0: cheap
                                   (elementwise, normalisation, pooling, attention's softmax
                                   and products over the kept q, k, v, embedding's gather): one
                                   buffer shared by the minibatches, refilled by the stage's
                                   forward_recompute before each backward (docs/ops.md) */
    /* Reads the attributes into L (after L->has_bias = 1); returns the number of errors. */
    int (*read)(pd_attr_reader *r, pd_layer *L);
    /* The shape rule: fills L->out, n_weight, n_bias, n_buffer, flops_fwd, flops_bwd (zeroed
     * before) from the inputs' shapes; returns 0, or 1 with a message in err. */
    int (*infer)(pd_layer *L, const pd_shape *const *in, char *err, int cap);
    /* The parameters (weight first, then bias), then the buffers, in their blob's order; NULL:
     * weight and bias of n_weight, n_bias floats. Returns the count. */
    int (*tensors)(const pd_layer *L, pd_tensor *t);
    /* What the training forward keeps for the backward, at a minibatch of `batch`; NULL: none. */
    int (*saved)(const pd_layer *L, int64_t batch, pd_tensor *t);
    /* The calls of cs->phase on cs->backend (none: add nothing). */
    void (*calls)(const pd_layer *L, const pd_shape *const *in, pd_calls *cs);
    /* A limit of a backend's kernels: 0, or 1 with the reason in why (NULL: no limits). */
    int (*check)(const pd_layer *L, pd_backend backend, int64_t batch, char *why, size_t cap);
} pd_op_desc;

/* The descriptor of op (the input's for PD_OP_INPUT and out-of-range values). */
const pd_op_desc *pd_op(pd_op_kind op);
/* The op named name (not "input"), or PD_OP_INPUT when there is none. */
pd_op_kind pd_op_find(const char *name);
/* "linear, conv2d, ...; planning only: lstm" into buf, for messages. */
const char *pd_op_names(char *buf, size_t cap);

/* A layer's tensors (the descriptor's, or weight and bias) and saved state; returns the count. */
int pd_op_tensors(const pd_layer *L, pd_tensor *t);
int pd_op_saved(const pd_layer *L, int64_t batch, pd_tensor *t);
/* The calls of a phase on a backend into call[max]; returns how many. */
int pd_op_calls(const pd_layer *L, const pd_shape *const *in, pd_backend backend,
                pd_phase phase, pd_call *call, int max);

/* ---- what several descriptors share ---- */

/* Output extent of a sliding window: floor((in + 2p - k) / s) + 1; 0 if it does not fit. */
int pd_window_out(int in, int k, int s, int p);
/* C, H, W of a shape: dim[0], then dim[1] for ranks 2 and 3 (else 1), dim[2] for rank 3 (else 1):
 * C*H*W is always the shape's size. */
void pd_chw(const pd_shape *s, int *C, int *H, int *W);
/* Unless ok: "<need>, got <x's shape><hint>" into err, and 1. */
int pd_input_rank(int ok, const pd_shape *x, const char *need, const char *hint, char *err,
                  int cap);
/* pd_input_rank for "<op> needs a rank-3 input (C, H, W)". */
int pd_need_rank3(const pd_layer *L, const pd_shape *x, char *err, int cap);
/* A window op's output (channels, OH, OW) from x, or 1 with a message (not rank 3, or the
 * kernel does not fit). */
int pd_window_shape(pd_layer *L, const pd_shape *x, int channels, char *err, int cap);
/* The rows a sequence op runs over per sample and their width: (T, C) -> T and C, (C) -> 1 and C
 * (rank 3: C*H and W). A kernel over the last dimension takes PD_ROWS(rows) rows of width C. */
void pd_rows(const pd_shape *s, int *rows, int *width);
/* Infer for ops that keep their input's shape with `fwd` and `bwd` FLOPs per element. */
int pd_infer_same(pd_layer *L, const pd_shape *const *in, double fwd, double bwd);

#endif
