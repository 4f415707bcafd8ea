/* emit_calls.c: the layers' calls, printed from their ops' descriptors (planner/ops/op.h): each
 * pd_call's arguments become the layer's operands by name (resolve.c placed them), values as C
 * literals, and the run-time values as the stage function's parameters (P_B, seed, step, ctx,
 * prec). Nothing here knows an op: a new op prints through its descriptor. The one rule about two
 * ops, the CUDA linear+ReLU fusion that resolve.c marks, is printed here from the linear's call. */
#include "emit_common.h"

#include <inttypes.h>
#include <string.h>

/* The calls of one phase of op's layer on the program's backend. */
static int op_calls(const cg_em *e, const cg_op *op, pd_phase phase, pd_call *call, int max) {
    const pd_model *m = e->m;
    const pd_layer *ly = &m->layers[op->layer];
    const pd_shape *in[PD_MAX_INPUTS];
    for (int j = 0; j < ly->n_inputs; j++) in[j] = &m->layers[ly->inputs[j]].out;
    if (ly->n_inputs > 0 && ly->inputs[0] == 0) in[0] = &m->input;
    pd_backend be = e->pr->backend == CG_BACKEND_CUDA ? PD_BACKEND_CUDA : PD_BACKEND_CPU;
    return pd_op_calls(ly, in, be, phase, call, max);
}

/* A tensor argument's operand. */
static cg_operand operand(const cg_op *op, const pd_arg *a) {
    switch (a->kind) {
    case PD_ARG_OUT: return op->y;
    case PD_ARG_IN: return op->x[a->k];
    case PD_ARG_DOUT: return op->dy;
    case PD_ARG_DIN: return op->dx[a->k];
    case PD_ARG_PARAM: return op->param[a->k];
    case PD_ARG_DPARAM: return op->dparam[a->k];
    case PD_ARG_BUFFER: return op->buffer[a->k];
    case PD_ARG_SAVED: return op->saved[a->k];
    default: return (cg_operand){CG_NULL, -1};
    }
}

static void print_arg(cg_em *e, const cg_op *op, const pd_arg *a) {
    char b[192], f[40];
    switch (a->kind) {
    case PD_ARG_INS: cg_printf(e, "ins_"); break;
    case PD_ARG_DINS: cg_printf(e, "dins_"); break;
    case PD_ARG_INTS: cg_printf(e, "ch_"); break;
    case PD_ARG_SCRATCH: cg_use(e, "scratch"); cg_printf(e, "scratch"); break;
    case PD_ARG_INT: cg_printf(e, "%d", (int)a->i); break;
    case PD_ARG_I64:
    case PD_ARG_SIZE: cg_printf(e, "%" PRId64, a->i); break;
    case PD_ARG_FLOAT: cg_printf(e, "%s", cg_float_literal(f, sizeof f, a->f)); break;
    case PD_ARG_BATCH: cg_printf(e, "P_B"); break;
    case PD_ARG_BATCH_TIMES: cg_printf(e, "(size_t)P_B * %" PRId64, a->i); break;
    case PD_ARG_ROWS: cg_printf(e, "P_B * %d", (int)a->i); break;
    case PD_ARG_SEED: cg_use(e, "seed"); cg_printf(e, "seed"); break;
    case PD_ARG_STEP: cg_use(e, "step"); cg_printf(e, "step"); break;
    case PD_ARG_LAYER: cg_printf(e, "%d", op->layer); break;
    case PD_ARG_PREC: cg_use(e, "prec"); cg_printf(e, "prec"); break;
    case PD_ARG_CTX: cg_use(e, "ctx"); cg_printf(e, "ctx"); break;
    default: {
        const char *x = cg_opnd(e, operand(op, a), b, sizeof b);
        if (a->as == PD_AS_INT) cg_printf(e, "(int *)(%s)", x);
        else if (a->as == PD_AS_CONST_INT) cg_printf(e, "(const int *)(%s)", x);
        else cg_printf(e, "%s", x);
    }
    }
}

/* fn(arg, arg, ...) */
static void print_expr(cg_em *e, const cg_op *op, const pd_call *c) {
    cg_printf(e, "%s(", c->fn);
    for (int i = 0; i < c->n_args; i++) {
        if (i) cg_printf(e, ", ");
        print_arg(e, op, &c->args[i]);
    }
    cg_printf(e, ")");
}

/* A statement at `indent`; arrays of inputs (add, concat) and ints (concat's channels) are
 * declared in a block around it. */
static void print_call(cg_em *e, const cg_op *op, const pd_call *c, int indent) {
    char b[192];
    int block = 0;
    for (int i = 0; i < c->n_args; i++)
        block |= c->args[i].kind == PD_ARG_INS || c->args[i].kind == PD_ARG_DINS ||
                 c->args[i].kind == PD_ARG_INTS;
    if (block) cg_printf(e, "%*s{\n", indent, "");
    indent += block ? 4 : 0;
    for (int i = 0; i < c->n_args; i++) {
        const pd_arg *a = &c->args[i];
        if (a->kind == PD_ARG_INS || a->kind == PD_ARG_DINS) {
            int d = a->kind == PD_ARG_DINS;
            cg_printf(e, "%*s%s", indent, "", d ? "float *dins_[] = {" : "const float *ins_[] = {");
            for (int j = 0; j < op->n_in; j++) {
                cg_operand x = d ? op->dx[j] : op->x[j];
                cg_printf(e, "%s%s", j ? ", " : "", cg_opnd(e, x, b, sizeof b));
            }
            cg_printf(e, "};\n");
        } else if (a->kind == PD_ARG_INTS) {
            cg_printf(e, "%*sstatic const int ch_[] = {", indent, "");
            for (int j = 0; j < a->n; j++) cg_printf(e, "%s%d", j ? ", " : "", a->ints[j]);
            cg_printf(e, "};\n");
        }
    }
    cg_printf(e, "%*s", indent, "");
    print_expr(e, op, c);
    cg_printf(e, ";\n");
    if (block) cg_printf(e, "%*s}\n", indent - 4, "");
}

static int same_call(const pd_call *a, const pd_call *b) {
    if (strcmp(a->fn, b->fn) || a->n_args != b->n_args) return 0;
    for (int i = 0; i < a->n_args; i++) {
        const pd_arg *x = &a->args[i], *y = &b->args[i];
        if (x->kind != y->kind || x->k != y->k || x->as != y->as || x->i != y->i ||
            x->f != y->f || x->n != y->n || memcmp(x->ints, y->ints, sizeof(int) * x->n))
            return 0;
    }
    return 1;
}

/* ---- the CUDA linear+ReLU fusion (resolve.c marks the pairs) ----
 * pdrt_linear_relu_forward_cuda takes the linear's arguments with the ReLU's output as its
 * output; pdrt_linear_relu_backward_cuda takes the ReLU's output gradient as its output gradient
 * and the ReLU's output right after it (its backward reads it, as pdrt_relu_backward does). */
static void print_fused(cg_em *e, const cg_op *op, const cg_op *relu, pd_phase phase) {
    pd_call c;
    if (op_calls(e, op, phase, &c, 1) != 1) return;
    cg_op f = *op;
    f.y = relu->y;
    f.dy = relu->dy;
    const char *fn = phase == PD_PHASE_BACKWARD ? "pdrt_linear_relu_backward_cuda"
                                                : "pdrt_linear_relu_forward_cuda";
    snprintf(c.fn, sizeof c.fn, "%s", fn);
    for (int i = 0; phase == PD_PHASE_BACKWARD && i < c.n_args; i++)
        if (c.args[i].kind == PD_ARG_DOUT && c.n_args < PD_CALL_MAX_ARGS) {
            memmove(&c.args[i + 2], &c.args[i + 1], sizeof c.args[0] * (size_t)(c.n_args - i - 1));
            c.args[i + 1] = PD_OUT;
            c.n_args++;
            break;
        }
    print_call(e, &f, &c, 4);
}

/* ---- the CPU ReLU + maxpool2d fusion (resolve.c marks the pairs) ----
 * Forward, at the pool: pdrt_relu_maxpool2d_forward with the pool's arguments on the ReLU's input.
 * Backward, at the ReLU (where its input gradient is zeroed or first written): the pool's backward
 * (or its _set twin) into the ReLU's input gradient; the argmax says -1 where relu's mask is 0. */
static void print_relu_pool(cg_em *e, const cg_op *pool, const cg_op *relu, pd_phase phase) {
    pd_call c;
    if (op_calls(e, pool, phase, &c, 1) != 1) return;
    cg_op f = *pool;
    if (phase == PD_PHASE_BACKWARD) {
        if (relu->dx[0].ptr == CG_NULL) return;
        f.dx[0] = relu->dx[0];
        if (relu->set_din) snprintf(c.fn, sizeof c.fn, "%s", "pdrt_maxpool2d_backward_set");
    } else {
        f.x[0] = relu->x[0];
        snprintf(c.fn, sizeof c.fn, "%s", "pdrt_relu_maxpool2d_forward");
    }
    print_call(e, &f, &c, 4);
}

/* ---- what the printers call ---- */

#define MAX_CALLS 8

void cg_emit_init(cg_em *e) {
    pd_call c[MAX_CALLS];
    for (int i = 0; i < e->cs->n_ops; i++) {
        const cg_op *op = &e->cs->ops[i];
        int n = op_calls(e, op, PD_PHASE_INIT, c, MAX_CALLS);
        for (int k = 0; k < n; k++) print_call(e, op, &c[k], 4);
    }
}

void cg_emit_scratch(cg_em *e, const char *type, const char *cast) {
    pd_call c[MAX_CALLS];
    int any = 0;
    for (int i = 0; i < e->cs->n_ops; i++) {
        const cg_op *op = &e->cs->ops[i];
        int n = op_calls(e, op, PD_PHASE_SCRATCH, c, MAX_CALLS);
        for (int k = 0; k < n; k++) {
            if (!any++) cg_printf(e, "    %s most = 0, t;\n", type);
            cg_printf(e, "    t = %s", cast);
            print_expr(e, op, &c[k]);
            cg_printf(e, ";\n    if (t > most) most = t;\n");
        }
    }
    cg_printf(e, "    return %s;\n", any ? "most" : "0");
}

void cg_emit_op_comment(cg_em *e, const cg_op *op) {
    char nb[96], nb2[96];
    const pd_layer *ly = &e->m->layers[op->layer];
    if (op->fuse == CG_FUSE_LINEAR_RELU)
        cg_printf(e, "    /* %s: linear, and %s: relu, as one call */\n",
                  cg_safe(ly->name, nb, sizeof nb),
                  cg_safe(e->m->layers[(op + 1)->layer].name, nb2, sizeof nb2));
    else if (op->fuse == CG_FUSED_INTO_PREV)
        cg_printf(e, "    /* %s: relu, in the linear's call */\n",
                  cg_safe(ly->name, nb, sizeof nb));
    else if (op->fuse == CG_RELU_INTO_POOL)
        cg_printf(e, "    /* %s: relu, fused with %s: maxpool2d (forward there, backward here) */\n",
                  cg_safe(ly->name, nb, sizeof nb),
                  cg_safe(e->m->layers[(op + 1)->layer].name, nb2, sizeof nb2));
    else if (op->fuse == CG_POOL_OF_RELU)
        cg_printf(e, "    /* %s: maxpool2d, one call with %s (its backward runs there) */\n",
                  cg_safe(ly->name, nb, sizeof nb),
                  cg_safe(e->m->layers[(op - 1)->layer].name, nb2, sizeof nb2));
    else if (pd_op(ly->op)->aliases_input)
        cg_printf(e, "    /* %s: %s, a no-op: it shares its input's memory and gradient */\n",
                  cg_safe(ly->name, nb, sizeof nb), pd_op_name(ly->op));
    else
        cg_printf(e, "    /* %s: %s */\n", cg_safe(ly->name, nb, sizeof nb), pd_op_name(ly->op));
}

/* The forward calls; both phases, under `if (training)` where they differ, unless
 * training_only. */
static void forward(cg_em *e, const cg_op *op, int training_only) {
    pd_call tr[MAX_CALLS], ev[MAX_CALLS];
    if (op->fuse == CG_FUSED_INTO_PREV || op->fuse == CG_RELU_INTO_POOL) return;
    if (op->fuse == CG_FUSE_LINEAR_RELU) {
        print_fused(e, op, op + 1, PD_PHASE_FORWARD);
        return;
    }
    if (op->fuse == CG_POOL_OF_RELU) {
        print_relu_pool(e, op, op - 1, PD_PHASE_FORWARD);
        return;
    }
    int nt = op_calls(e, op, PD_PHASE_FORWARD, tr, MAX_CALLS);
    int ne = training_only ? 0 : op_calls(e, op, PD_PHASE_FORWARD_EVAL, ev, MAX_CALLS);
    int same = nt == ne;
    for (int k = 0; k < nt && same && !training_only; k++) same = same_call(&tr[k], &ev[k]);
    if (same || training_only) {
        for (int k = 0; k < nt; k++) print_call(e, op, &tr[k], 4);
        return;
    }
    /* training and evaluation differ (dropout, batch norm) */
    int braces = nt != 1 || ne != 1;
    cg_use(e, "training");
    cg_printf(e, "    if (training)%s\n", braces ? " {" : "");
    for (int k = 0; k < nt; k++) print_call(e, op, &tr[k], 8);
    cg_printf(e, "    %selse%s\n", braces ? "} " : "", braces ? " {" : "");
    for (int k = 0; k < ne; k++) print_call(e, op, &ev[k], 8);
    if (braces) cg_printf(e, "    }\n");
}

void cg_emit_op_forward(cg_em *e, const cg_op *op) { forward(e, op, 0); }
void cg_emit_op_forward_training(cg_em *e, const cg_op *op) { forward(e, op, 1); }

void cg_emit_op_backward(cg_em *e, const cg_op *op) {
    pd_call c[MAX_CALLS];
    if (op->fuse == CG_FUSED_INTO_PREV || op->fuse == CG_POOL_OF_RELU) return;
    if (op->fuse == CG_FUSE_LINEAR_RELU) {
        print_fused(e, op, op + 1, PD_PHASE_BACKWARD);
        return;
    }
    if (op->fuse == CG_RELU_INTO_POOL) {
        print_relu_pool(e, op + 1, op, PD_PHASE_BACKWARD);
        return;
    }
    int n = op_calls(e, op, PD_PHASE_BACKWARD, c, MAX_CALLS);
    for (int k = 0; k < n; k++) {
        if (c[k].needs_din && op->dx[0].ptr == CG_NULL) continue;
        size_t len = strlen(c[k].fn);
        if (op->set_din && c[k].needs_din && len + 5 <= sizeof c[k].fn)
            memcpy(c[k].fn + len, "_set", 5); /* overwrites the gradient resolve did not zero */
        print_call(e, op, &c[k], 4);
    }
}

/* zb-h1, zb-h2's backward in two parts (planner/ops/op.h, backward_splits): an op that splits
 * prints its calls in the input part with its parameters' gradients NULL and in the weight part
 * with its inputs' gradients NULL, each call only where it still writes a gradient; an op that
 * does not split prints its whole backward in the input part, and in the weight part a comment
 * that says so when it has parameters. A CUDA linear fused with its ReLU prints the fused
 * backward in both parts (each applies the ReLU's mask to the ReLU's output gradient, which the
 * input part leaves in dacts). */
int cg_op_in_input_part(const cg_em *e, const cg_op *op) {
    int any = !pd_op(e->m->layers[op->layer].op)->backward_splits;
    for (int j = 0; j < op->n_in; j++) any |= op->dx[j].ptr != CG_NULL;
    for (int k = 0; k < op->n_zero; k++) any |= op->zero[k].at.ptr != CG_DPARAMS;
    return any;
}

void cg_emit_op_backward_part(cg_em *e, const cg_op *op, int weight_part) {
    const pd_layer *ly = &e->m->layers[op->layer];
    int splits = pd_op(ly->op)->backward_splits, has_params = op->n_tensors > 0 && op->param_floats > 0;
    if (!splits) {
        if (!weight_part) cg_emit_op_backward(e, op);
        else if (has_params)
            cg_printf(e, "    /* %s's backward does not split: backward_input computed its weight "
                         "gradients */\n", pd_op_name(ly->op));
        return;
    }
    cg_op part = *op;
    for (int k = 0; k < PD_MAX_OP_TENSORS && !weight_part; k++) part.dparam[k] = (cg_operand){CG_NULL, -1};
    for (int k = 0; k < PD_MAX_INPUTS && weight_part; k++) part.dx[k] = (cg_operand){CG_NULL, -1};
    if (op->fuse == CG_FUSE_LINEAR_RELU) { /* one call: input gradient, or weight and bias's */
        int writes = weight_part ? has_params : part.dx[0].ptr != CG_NULL;
        if (writes) print_fused(e, &part, op + 1, PD_PHASE_BACKWARD);
        return;
    }
    pd_call c[MAX_CALLS];
    int n = op_calls(e, op, PD_PHASE_BACKWARD, c, MAX_CALLS);
    for (int k = 0; k < n; k++) {
        int writes = 0;
        for (int i = 0; i < c[k].n_args; i++) {
            const pd_arg *a = &c[k].args[i];
            if (a->kind == PD_ARG_DINS) writes |= !weight_part;
            if (a->kind == PD_ARG_DIN || a->kind == PD_ARG_DPARAM)
                writes |= operand(&part, a).ptr != CG_NULL;
        }
        if (writes && (!c[k].needs_din || part.dx[0].ptr != CG_NULL)) print_call(e, &part, &c[k], 4);
    }
}
