/* emit_common.h: what the CPU (emit.c) and CUDA (emit_cuda.c) stage printers share: literals
 * (C strings, floats a person would write), the line printer that wraps at 100 columns, typed
 * operands printed by name, and the parts of a stage both print alike (the #defines, the tables,
 * the descriptor's fields; emit_calls.c: the host init, the scratch size, the layers' calls).
 * Every decision is resolve.c's or the op descriptors': these functions only print. */
#ifndef PD_EMIT_COMMON_H
#define PD_EMIT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "planner/util/diag.h"
#include "planner/model/model.h"
#include "planner/plan/plan.h"
#include "resolve.h"
#include "template.h"

#define CG_COLUMNS 100 /* generated lines wrap at this width */

typedef struct {
    FILE *o;               /* the part being printed */
    const pd_model *m;
    const cg_program *pr;
    const cg_stage *cs;
    const pd_plan *p;
    int s;                 /* stage index: every name's prefix is S<s>_ */
    char *line;            /* the line being assembled (printed, wrapped, at its '\n') */
    size_t line_len, line_cap;
    const char *used[24];  /* the names the function being printed uses (parameters) */
    int n_used;
    int n_tensors;         /* the tensor table's entries (cg_emit_tables) */
} cg_em;

/* A C string literal body: escapes quotes, backslashes and control bytes. */
void cg_put_cstr(FILE *o, const char *s);
/* s as a C string literal, in buf (n bytes). */
const char *cg_cstr(const char *s, char *buf, size_t n);
/* A name safe inside a C comment (written to buf, n bytes). */
const char *cg_safe(const char *s, char *buf, size_t n);
/* The shortest C literal that gives the same value: cg_float_literal for (float)v ("0.1f",
 * "1e-5f", "2.0f"), cg_double_literal for v ("0.9", "1e-8", "0.0"). buf: at least 40 bytes. */
const char *cg_float_literal(char *buf, size_t n, double v);
const char *cg_double_literal(char *buf, size_t n, double v);

/* Prints into e->o like fprintf; each finished line longer than CG_COLUMNS is wrapped after a
 * comma of its outermost argument or initializer list, continuing under the list's first item. */
void cg_printf(cg_em *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Wraps one line (no '\n' in it) the way cg_printf does, to o. */
void cg_wrap_line(FILE *o, const char *line, size_t n);

/* Notes that the function being printed uses the parameter `name`. */
void cg_use(cg_em *e, const char *name);
/* "(void)x;" for each of the function's parameters (NULL-terminated) that it did not use. */
void cg_print_unused(FILE *o, const cg_em *e, const char *const *params);
/* A part (a function's body, the tables) that print prints, as a string (malloc'd; NULL when
 * out of memory), led by "(void)x;" for each of the function's
 * parameters (NULL-terminated; params NULL: not a function) that the part did not use. */
char *cg_part(cg_em *e, void (*print)(cg_em *e), const char *const *params);
/* What a backend prints itself (emit.c, emit_cuda.c): its functions' bodies and their
 * parameters (for the (void) lines), and its template keys beyond the common ones. */
typedef struct {
    void (*scratch)(cg_em *e);
    void (*forward)(cg_em *e);
    void (*backward)(cg_em *e);
    const char *const *scratch_params, *const *forward_params, *const *backward_params;
    const char *precision; /* the CUDA template's @PRECISION@ (NULL: none) */
    /* the backward in two parts (zb-h1, zb-h2), with backward's parameters (NULL: the backend
     * has none; its template names neither) */
    void (*backward_input)(cg_em *e);
    void (*backward_weight)(cg_em *e);
    /* selective recomputation: the body of forward_recompute, with forward's parameters (NULL:
     * the backend has none; its template names no @RECOMPUTE_FORWARD@) */
    void (*forward_recompute)(cg_em *e);
} cg_backend_printer;
/* Prints stage s into tmpl (templates/stage.*.in) to o: the banner, the #defines, the tables,
 * init, the backend's parts and the descriptor's values. Returns 0, or nonzero with a
 * diagnostic (out of memory, a key the template names that nothing fills). */
int cg_emit_file(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                 const char *banner, const char *tmpl, const cg_backend_printer *b, pd_diag *d);

/* An operand as C: "acts + S0_ACT_CONV1_OUT", "NULL"; in buf (n bytes). Notes the use. */
const char *cg_opnd(cg_em *e, cg_operand x, char *buf, size_t n);
const char *cg_sym_name(const cg_em *e, cg_operand x);

/* The #defines: sizes, then the named offsets of every blob. */
void cg_emit_defines(cg_em *e);
/* The tensor, warmup, replica and layer tables (sets e->n_tensors). */
void cg_emit_tables(cg_em *e);
/* The layers' calls, from their ops' descriptors (emit_calls.c): */
/* The host initialisation of parameters and buffers (S<s>_init's body). */
void cg_emit_init(cg_em *e);
/* The scratch function's body: the most any layer's scratch call gives, as `type`, each call's
 * value converted with `cast` ("(int64_t)" or ""). */
void cg_emit_scratch(cg_em *e, const char *type, const char *cast);
/* The comment above a layer's call (the caller prints it, then the call). */
void cg_emit_op_comment(cg_em *e, const cg_op *op);
/* A layer's forward (backward) calls: the CPU kernels of runtime/cpu/ops.h or the CUDA ones of
 * ops_cuda.h, as the program's backend says; `if (training)` where the training and evaluation
 * forwards differ; fused pairs as resolve marked them. */
void cg_emit_op_forward(cg_em *e, const cg_op *op);
/* Its training forward alone (selective recomputation's forward_recompute). */
void cg_emit_op_forward_training(cg_em *e, const cg_op *op);
void cg_emit_op_backward(cg_em *e, const cg_op *op);
/* One part of op's split backward (zb-h1, zb-h2): the input gradients (weight_part 0) or the
 * weight gradients (1); see emit_calls.c. */
void cg_emit_op_backward_part(cg_em *e, const cg_op *op, int weight_part);
/* Whether op has anything in the input part: an op that does not split, an input gradient, or a
 * gradient to zero that is not its parameters' (a split op with none of them is all in W). */
int cg_op_in_input_part(const cg_em *e, const cg_op *op);

/* The descriptor's values, the same for both backends (templates/stage.*.in name them):
 * fills keys (at least CG_DESC_KEYS entries, strings in store) and returns how many. */
#define CG_DESC_KEYS 32
#define CG_KEY_BYTES 272
int cg_desc_keys(cg_em *e, cg_subst *keys, char store[][CG_KEY_BYTES]);

#endif
