/* model.h: the resolved model IR that pdplan builds from a model YAML (pd: 1).
 *
 * A model is an ordered list of layers; layers[0] is always the implicit input layer named
 * "input". A layer's inputs are indices of earlier layers, so the list is in topological order
 * and edges only go forward. Shapes are per sample (the batch dimension is excluded): rank 1 is
 * (features), rank 3 is (channels, height, width); rank 2 is (tokens, features), a sequence
 * (an input [T, C], or what embedding makes; linear, layernorm and attention work on its last
 * dimension). What each op is (its attributes, shape rule, parameter
 * layout, which --save/--init write, and kernel calls) is its descriptor's, planner/ops/<op>.c,
 * listed in op_list.h; docs/ops.md. Ops marked planning-only (pd_op_planning_only) have shape,
 * parameter and FLOP rules for planning, but no runtime kernel: code generation and pdprof refuse
 * them with a diagnostic.
 */
#ifndef PD_MODEL_H
#define PD_MODEL_H

#include <stdint.h>

#define PD_NAME_MAX 64
#define PD_MAX_INPUTS 16

typedef enum {
    PD_OP_INPUT = 0, /* layers[0], the model's input */
#define PD_OP(NAME, name) PD_OP_##NAME,
#include "op_list.h"
#undef PD_OP
    PD_OP_COUNT
} pd_op_kind;

typedef struct {
    int rank;   /* 1, 2 or 3 */
    int dim[3]; /* rank 1: dim[0]=features; rank 2: tokens, features; rank 3: C, H, W */
} pd_shape;

typedef struct {
    char name[PD_NAME_MAX];
    pd_op_kind op;
    int line, col;                 /* 1-based position of the layer in the YAML, 0 if implicit */
    int n_inputs;
    int inputs[PD_MAX_INPUTS];     /* indices of earlier layers */

    /* attributes (only those of the layer's op are meaningful) */
    int out_features;              /* linear */
    int out_channels;              /* conv2d */
    int kernel[2], stride[2], padding[2]; /* conv2d, maxpool2d, avgpool2d: (h, w) */
    int has_bias;                  /* linear, conv2d: default 1 */
    int global;                    /* avgpool2d: global average over H, W */
    int bidirectional;             /* lstm: a second, time-reversed direction (output 2H) */
    double p;                      /* dropout probability */
    double eps, momentum;          /* batchnorm2d: defaults 1e-5, 0.1 (PyTorch's); layernorm: eps */
    int heads;                     /* attention: the number of heads (divides C) */
    int keys;                      /* attention with two inputs: the keys' count Tk (from shapes) */
    int num_embeddings;            /* embedding: vocabulary; its width is out_features, as is
                                      lstm's hidden size */
    int positions;                 /* embedding: learned position rows (0: none, else T) */
    double init_std;               /* embedding: weights ~ N(0, init_std^2) (default 1) */
    /* tie: NAME (docs/formats.md, "Tied weights"): this layer's weight is the weight of the
     * earlier layer tied_to, one logical tensor (0: untied); tie and its position as written */
    char tie[PD_NAME_MAX];
    int tie_line, tie_col;
    int tied_to;

    /* resolved by shape inference */
    pd_shape out;
    int64_t n_weight, n_bias;      /* parameter floats (batchnorm: gamma, beta) */
    int64_t n_buffer;              /* non-trained state floats (batchnorm running stats) */
    double flops_fwd;              /* per sample, forward (multiply-add = 2 flops) */
    double flops_bwd;              /* per sample, backward */
    int64_t saved_floats;          /* what its training forward saves for the backward, per
                                      minibatch (its op's saved state at the model's batch) */
    int aliases_input;             /* its op's (planner/ops/op.h): no memory of its own */
    int selective_keeps;           /* its op's: selective recomputation keeps its output */

    /* costs per minibatch, from the profile or the analytic estimate */
    double fwd_ms, bwd_ms;
} pd_layer;

typedef enum { PD_OPT_SGD = 0, PD_OPT_ADAM, PD_OPT_ADAMW } pd_optimizer_kind;

typedef struct {
    char name[PD_NAME_MAX];        /* model name, e.g. "fmnist_cnn" */
    char path[4096];               /* the YAML it came from */
    char hash[17];                 /* 64-bit FNV-1a of the file bytes, hex */
    pd_shape input;                /* per-sample input shape */
    int classes;
    int batch;                     /* minibatch size */
    char dataset[256];             /* "fashion-mnist", "synthetic", "shakespeare_char" or
                                      "tokens:FORMAT:TRAIN:VAL" (docs/formats.md) */
    char loss[PD_NAME_MAX];        /* "softmax_cross_entropy" */
    /* training defaults (overridable at launch) */
    pd_optimizer_kind optimizer;
    double lr, momentum, weight_decay, beta1, beta2, adam_eps;
    int warmup_iters, lr_decay_iters;  /* the learning-rate schedule (0: none) */
    double min_lr, clip_grad_norm;     /* clip_grad_norm 0: no clipping */
    int epochs;
    /* layers[0] is the input */
    int n_layers;
    pd_layer *layers;
    int costs_estimated;           /* 1 when no profile was given */
    char cost_source[256];         /* profile path, or "estimate:<device>" */
} pd_model;

/* From the op descriptors (implemented in planner/ops/op.c): */
const char *pd_op_name(pd_op_kind op);        /* "linear", ...; "?" out of range */
int pd_op_planning_only(pd_op_kind op);       /* 1: no runtime kernel (lstm) */
int64_t pd_shape_numel(const pd_shape *s);    /* per sample */
void pd_model_free(pd_model *m);

#endif
