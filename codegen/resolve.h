/* resolve.h: the code generator's resolve pass. For every stage of a plan it decides which
 * tensors cross each cut (the input and output packs), where every layer's output, gradient and
 * saved state live (offsets into one blob each), and the parameter and buffer offsets. The
 * emitter (emit.c) only prints what this computes. */
#ifndef PD_RESOLVE_H
#define PD_RESOLVE_H

#include <stdint.h>

#include "planner/util/diag.h"
#include "planner/model/model.h"
#include "planner/plan/plan.h"

enum { CG_IN = 0, CG_ACT = 1 };

typedef struct {
    int base;          /* CG_IN (the stage's input pack) or CG_ACT (the activation blob) */
    int64_t off;       /* floats */
} cg_loc;

typedef struct {
    int layer;                      /* model layer index */
    int n_in;
    cg_loc in[PD_MAX_INPUTS];       /* where each input lives */
    cg_loc out;                     /* where the output lives (flatten: its input's place) */
    int64_t out_numel;              /* per sample */
    int64_t w_off, b_off;           /* params offsets, -1 when absent */
    int64_t buf_off;                /* batch norm: running_mean here, running_var at + C */
    int64_t aux_off;                /* acts: dropout mask, maxpool argmax, bn save_mean/rstd */
} cg_op;

typedef struct {
    int layer;
    int64_t off, numel;             /* in the pack, floats per minibatch */
} cg_pack;

typedef struct {
    int index;
    int n_ops;
    cg_op *ops;
    int n_in, n_out;
    cg_pack *in, *out;              /* ascending layer order */
    int64_t in_floats, out_floats, n_params, n_buffers, n_acts;
    int first_node, last_node;      /* for the banner */
} cg_stage;

typedef struct {
    int n_stages;
    cg_stage *stages;
    char plan_hash[17];             /* plan.yaml's FNV-1a (hex), emitted into each descriptor */
} cg_program;

/* Resolves every stage of p. Returns 0, or nonzero with diagnostics (unsupported plan: replicated
 * stages, non-contiguous cuts the runtime cannot route, a model whose last layer is not the
 * logits). */
int cg_resolve(cg_program *out, const pd_model *m, const pd_plan *p, pd_diag *d);
void cg_program_free(cg_program *pr);

#endif
