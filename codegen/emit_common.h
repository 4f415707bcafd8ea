/* emit_common.h: what the CPU (emit.c) and CUDA (emit_cuda.c) stage printers share: string and
 * location helpers, and the parts of a stage source both print identically (#defines, the pack
 * comment, the tensor, warmup and replica tables, the host init function, the calls of the ops
 * that need no backend-specific arguments). */
#ifndef PD_EMIT_COMMON_H
#define PD_EMIT_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "planner/model/model.h"
#include "planner/plan/plan.h"
#include "resolve.h"

typedef struct {
    FILE *o;
    const pd_model *m;
    const cg_stage *cs;
    int s;        /* stage index: the prefix is S<s>_ */
    const char *conv_scratch; /* "scratch, " where conv2d takes the im2col buffer (CPU), else "" */
    char a[8][96];
} cg_em;

/* A C string literal body: escapes quotes, backslashes and control bytes. */
void cg_put_cstr(FILE *o, const char *s);
/* A name safe inside a C comment (written to buf, n bytes). */
const char *cg_safe(const char *s, char *buf, size_t n);

/* "in + off" / "acts + off" in e->a[slot]. */
const char *cg_em_loc(cg_em *e, int slot, cg_loc l);
/* The gradient of a location: NULL for stage 0's input pack (the data needs none). */
const char *cg_em_gloc(cg_em *e, int slot, cg_loc l);
/* "blob + off", or NULL when off < 0. */
const char *cg_em_prm(cg_em *e, int slot, const char *blob, int64_t off);

const pd_shape *cg_in_shape(const pd_model *m, const pd_layer *ly, int i);
/* C, H, W of a shape (rank 1: features, 1, 1) */
void cg_chw(const pd_shape *s, int *C, int *H, int *W);
/* A pooling layer's kernel, stride and padding (global average pooling: the whole input). */
void cg_window(const pd_layer *ly, const pd_shape *in, int k[2], int st[2], int pad[2]);
/* Where the output pack's tensor of `layer` lives in this stage. */
cg_loc cg_pack_src(const cg_stage *cs, int layer);

/* The size #defines (P_B is the stage's prefix) and the input/output pack comment. */
void cg_emit_sizes(cg_em *e);
/* The tensor table (returns its number of entries), then the warmup and replica tables. */
int cg_emit_tables(cg_em *e, const pd_plan *p);
/* S<s>_init: the host initialisation of parameters and buffers. */
void cg_emit_init(cg_em *e);
/* An add or concat op's call: ctx is the leading argument text ("" or "ctx, "), sfx the function
 * name's suffix ("" or "_cuda"); backward: the gradient call. */
void cg_emit_join(cg_em *e, const cg_op *op, int backward, const char *ctx, const char *sfx);
/* The pdrt_stage descriptor's fields both backends fill, one part at a time so that each backend
 * can put its own fields between them: each printed as <pre>name = value<end>, pre "    ." and end
 * "," for a designated initializer, "    b->" and ";" for assignments. */
enum {
    CG_DESC_SHAPE,    /* abi, model, index, n_stages, batch, classes, input, dataset, sizes */
    CG_DESC_TABLES,   /* n_tensors (nt), tensors, init */
    CG_DESC_TRAINING, /* warmup, weight versions, schedule, predictions, optimizer, replicas */
};
void cg_emit_desc(cg_em *e, const pd_plan *p, int nt, int part, const char *pre, const char *end);
/* The "name: op" comment above an op's call. */
void cg_emit_op_comment(cg_em *e, const cg_op *op);
/* The forward (backward) call of an op both backends print alike: ReLU, pooling, flatten,
 * dropout, batch norm, add, concat (#error for any other op). ctx and sfx as cg_emit_join. */
void cg_emit_op_forward(cg_em *e, const cg_op *op, const char *ctx, const char *sfx);
void cg_emit_op_backward(cg_em *e, const cg_op *op, const char *ctx, const char *sfx);

#endif
