/* resolve.c: the resolve pass (see resolve.h): checks that the runtime can run the plan, then per
 * stage the packs across cuts (a tensor crosses every cut between its producer and its last
 * consumer), the named offsets into each blob, every layer's typed operands, and the backend's
 * decisions: lazy gradient zeroing (CPU) and linear+ReLU fusion (CUDA). */
#include "resolve.h"
#include "runtime/schedule/schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cg_free_idents(char **ids, int n) {
    if (!ids) return;
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

char **cg_layer_idents(const pd_model *m) {
    char **ids = calloc((size_t)m->n_layers, sizeof *ids);
    if (!ids) return NULL;
    for (int l = 0; l < m->n_layers; l++) {
        const char *name = l == 0 ? "input" : m->layers[l].name;
        size_t n = strlen(name);
        char *id = malloc(n + 16);
        if (!id) { cg_free_idents(ids, l); return NULL; }
        for (size_t i = 0; i < n; i++) {
            char c = name[i];
            if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
            id[i] = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ? c : '_';
        }
        id[n] = 0;
        /* FLOATS and INPUT would read as the pack sizes S<k>_IN_FLOATS or the model input */
        int clash = !strcmp(id, "FLOATS") || (l > 0 && !strcmp(id, "INPUT")) || n == 0;
        for (int k = 0; k < l && !clash; k++) clash = !strcmp(ids[k], id);
        if (clash) snprintf(id + n, 16, "%s%d", n ? "_" : "L", l);
        ids[l] = id;
    }
    return ids;
}

void cg_program_free(cg_program *pr) {
    if (!pr->stages) return;
    for (int s = 0; s < pr->n_stages; s++) {
        cg_stage *cs = &pr->stages[s];
        for (int i = 0; i < cs->n_syms; i++) free(cs->syms[i].name);
        free(cs->syms);
        free(cs->ops);
        free(cs->in);
        free(cs->out);
        free(cs->tail_zero);
    }
    free(pr->stages);
    pr->stages = NULL;
}

static int64_t numel_of(const pd_model *m, int layer) {
    return layer == 0 ? pd_shape_numel(&m->input) : pd_shape_numel(&m->layers[layer].out);
}

/* The tensors crossing into stage s: produced before s, consumed at s or later. */
static int make_pack(cg_pack **out, int64_t *floats, const pd_model *m, const int *stage_of,
                     const int *last_use, int s) {
    int n = 0;
    *out = calloc((size_t)m->n_layers, sizeof **out);
    if (!*out) return -1;
    int64_t off = 0;
    for (int l = 0; l < m->n_layers; l++)
        if (stage_of[l] < s && last_use[l] >= s) {
            (*out)[n].layer = l;
            (*out)[n].numel = (int64_t)m->batch * numel_of(m, l);
            off += (*out)[n].numel;
            n++;
        }
    *floats = off;
    return n;
}

/* Checks what the runtime needs of the plan and places every layer in its stage (stage_of[l];
 * the model input, layer 0, at -1) and the last stage that reads it (last_use[l]). */
static int check_plan(const pd_model *m, const pd_plan *p, int *stage_of, int *last_use,
                      pd_diag *d) {
    const char *f = m->path;
    int L = m->n_layers, S = p->n_stages, errors = 0;
    for (int l = 0; l < L; l++) stage_of[l] = -2;
    stage_of[0] = -1;
    for (int s = 0; s < S; s++) {
        const pd_stage *st = &p->stages[s];
        if (st->replicas < 1) {
            pd_diag_error(d, f, 0, 0, "codegen: stage %d has %d replicas", s, st->replicas);
            errors++;
        }
        int before = 0; /* the runtime numbers ranks contiguously in stage order (interleaved
                           plans put stage s on rank s mod p instead) */
        for (int k = 0; k < s; k++) before += p->stages[k].replicas;
        for (int r = 0; r < st->replicas; r++)
            if (st->ranks && st->ranks[r] != before + r && p->chunks <= 1) {
                pd_diag_error(d, f, 0, 0, "codegen: stage %d's ranks are not contiguous", s);
                errors++;
                break;
            }
        if (p->vertical_sync && st->replicas != 1) {
            pd_diag_error(d, f, 0, 0, "codegen: vertical sync needs a straight pipeline, but "
                          "stage %d has %d replicas (plan with --straight)", s, st->replicas);
            errors++;
        }
        for (int i = 0; i < st->n_nodes; i++) {
            int l = st->nodes[i] + 1;
            if (l < 1 || l >= L || stage_of[l] != -2) {
                pd_diag_error(d, f, 0, 0, "codegen: stage %d holds node %d twice or out of "
                              "range", s, st->nodes[i]);
                errors++;
            } else {
                stage_of[l] = s;
            }
        }
    }
    for (int l = 1; l < L && !errors; l++)
        if (stage_of[l] == -2) {
            pd_diag_error(d, f, m->layers[l].line, m->layers[l].col,
                          "codegen: layer '%s' is in no stage", m->layers[l].name);
            errors++;
        }
    for (int l = 0; l < L; l++) last_use[l] = stage_of[l];
    for (int l = 1; l < L && !errors; l++)
        for (int i = 0; i < m->layers[l].n_inputs; i++) {
            int src = m->layers[l].inputs[i];
            if (stage_of[src] > stage_of[l]) {
                pd_diag_error(d, f, m->layers[l].line, m->layers[l].col,
                              "codegen: layer '%s' (stage %d) reads '%s' from a later stage %d",
                              m->layers[l].name, stage_of[l], m->layers[src].name,
                              stage_of[src]);
                errors++;
            }
            if (stage_of[l] > last_use[src]) last_use[src] = stage_of[l];
        }
    const pd_layer *lastl = &m->layers[L - 1];
    int per_token = lastl->out.rank == 2 && lastl->out.dim[1] == m->classes; /* (T, classes) */
    if (!errors && (stage_of[L - 1] != S - 1 ||
                    (pd_shape_numel(&lastl->out) != m->classes && !per_token))) {
        pd_diag_error(d, f, lastl->line, lastl->col,
                      "codegen: the last layer '%s' must produce the %d class logits in the "
                      "last stage", lastl->name, m->classes);
        errors++;
    }
    last_use[L - 1] = S; /* the logits leave the last stage for the loss */
    return errors;
}

/* Building one stage: its symbols and where each layer's output lives. */
typedef struct {
    cg_stage *cs;
    char **ids;
    int cap;
    cg_operand *at; /* per model layer: its output's place in this stage (ptr CG_NULL: none) */
} builder;

static int add_sym(builder *b, cg_ptr blob, int layer, const char *tensor, int64_t value,
                   int64_t numel) {
    static const char *const blob_names[CG_N_PTRS] = {
        [CG_IN] = "IN", [CG_OUT] = "OUT", [CG_ACTS] = "ACT", [CG_PARAMS] = "PARAM",
        [CG_BUFFERS] = "BUF"};
    cg_stage *cs = b->cs;
    if (cs->n_syms >= b->cap) return -1;
    size_t n = strlen(b->ids[layer]) + (tensor ? strlen(tensor) : 0) + 32;
    char *name = malloc(n);
    if (!name) return -1;
    snprintf(name, n, "S%d_%s_%s%s%s", cs->index, blob_names[blob], b->ids[layer],
             tensor ? "_" : "", tensor ? tensor : "");
    cs->syms[cs->n_syms] = (cg_sym){name, blob, value, layer, numel};
    return cs->n_syms++;
}

/* The gradient of a value operand: din/dacts/dparams/dout at the same offset; NULL for stage
 * 0's input pack (the data needs none). */
static cg_operand grad_of(const cg_stage *cs, cg_operand v) {
    cg_operand g = v;
    switch (v.ptr) {
    case CG_IN: g.ptr = cs->index == 0 ? CG_NULL : CG_DIN; break;
    case CG_ACTS: g.ptr = CG_DACTS; break;
    case CG_PARAMS: g.ptr = CG_DPARAMS; break;
    case CG_OUT: g.ptr = CG_DOUT; break;
    default: g.ptr = CG_NULL;
    }
    return g;
}

static cg_operand none(void) { return (cg_operand){CG_NULL, -1}; }

/* add_sym with the tensor's name in upper case ("running_mean" -> S0_BUF_BN1_RUNNING_MEAN). */
static int add_upper_sym(builder *b, cg_ptr blob, int layer, const char *tensor, int64_t value,
                         int64_t numel) {
    char up[64];
    size_t i = 0;
    for (; tensor[i] && i + 1 < sizeof up; i++)
        up[i] = tensor[i] >= 'a' && tensor[i] <= 'z' ? (char)(tensor[i] - 'a' + 'A') : tensor[i];
    up[i] = 0;
    return add_sym(b, blob, layer, up, value, numel);
}

/* The layer's parameters (into params) and buffers (into bufs), in the descriptor's order. */
static void place_tensors(builder *b, cg_op *op, const pd_layer *ly, int64_t *params,
                          int64_t *bufs) {
    int np = 0, nb = 0;
    op->n_tensors = pd_op_tensors(ly, op->tensor);
    op->param_floats = 0;
    for (int t = 0; t < op->n_tensors; t++) {
        const pd_tensor *tn = &op->tensor[t];
        cg_operand at = none();
        int64_t *off = tn->buffer ? bufs : params;
        cg_ptr blob = tn->buffer ? CG_BUFFERS : CG_PARAMS;
        if (tn->floats > 0) {
            at = (cg_operand){blob, add_upper_sym(b, blob, op->layer, tn->name, *off, tn->floats)};
            *off += tn->floats;
        }
        op->tensor_at[t] = at;
        if (tn->buffer) {
            op->buffer[nb++] = at;
        } else {
            op->param[np] = at;
            op->dparam[np++] = grad_of(b->cs, at);
            op->param_floats += tn->floats;
        }
    }
}

static int place_ops(builder *b, const pd_model *m, const int *stage_of, pd_diag *d) {
    cg_stage *cs = b->cs;
    int s = cs->index, B = m->batch;
    int64_t kept = 0, shared = 0, params = 0, bufs = 0;
    cs->first_node = cs->last_node = -1;
    for (int l = 1; l < m->n_layers; l++) {
        if (stage_of[l] != s) continue;
        if (cs->first_node < 0) cs->first_node = l - 1;
        cs->last_node = l - 1;
        const pd_layer *ly = &m->layers[l];
        cg_op *op = &cs->ops[cs->n_ops++];
        op->layer = l;
        op->n_in = ly->n_inputs;
        for (int t = 0; t < PD_MAX_OP_TENSORS; t++)
            op->tensor_at[t] = op->param[t] = op->dparam[t] = op->buffer[t] = op->saved[t] =
                none();
        for (int i = 0; i < ly->n_inputs; i++) {
            int src = ly->inputs[i];
            if (b->at[src].ptr == CG_NULL) {
                pd_diag_error(d, m->path, ly->line, ly->col, "codegen: internal: input '%s' of "
                              "'%s' has no place in stage %d", m->layers[src].name, ly->name, s);
                return 1;
            }
            op->x[i] = b->at[src];
            op->dx[i] = grad_of(cs, op->x[i]);
        }
        op->out_numel = pd_shape_numel(&ly->out);
        int64_t n = (int64_t)B * op->out_numel;
        /* selective: the cheap ops' outputs and saved state go to the shared part, placed
         * after the kept part once its size is known (below) */
        op->recomputed = cs->selective && !pd_op(ly->op)->selective_keeps;
        int64_t *at_acts = op->recomputed ? &shared : &kept, acts = *at_acts;
        if (pd_op(ly->op)->aliases_input) {
            op->y = op->x[0];
        } else {
            op->y = (cg_operand){CG_ACTS, add_sym(b, CG_ACTS, l, "OUT", acts, n)};
            acts += n;
        }
        op->dy = grad_of(cs, op->y);
        b->at[l] = op->y;
        place_tensors(b, op, ly, &params, &bufs);
        pd_tensor saved[PD_MAX_OP_TENSORS];
        int n_saved = pd_op_saved(ly, B, saved);
        for (int t = 0; t < n_saved; t++) {
            op->saved[t] = (cg_operand){CG_ACTS, add_upper_sym(b, CG_ACTS, l, saved[t].name, acts,
                                                               saved[t].floats)};
            acts += saved[t].floats;
        }
        *at_acts = acts;
    }
    for (int i = 0; i < cs->n_syms; i++)
        if (!cs->syms[i].name) return 1;
    for (int i = 0; i < cs->n_ops; i++) { /* the shared part follows the kept one */
        const cg_op *op = &cs->ops[i];
        if (!op->recomputed) continue;
        if (op->y.ptr == CG_ACTS && !pd_op(m->layers[op->layer].op)->aliases_input)
            cs->syms[op->y.sym].value += kept;
        for (int t = 0; t < PD_MAX_OP_TENSORS; t++)
            if (op->saved[t].ptr == CG_ACTS) cs->syms[op->saved[t].sym].value += kept;
    }
    cs->n_params = params;
    cs->n_buffers = bufs;
    cs->n_acts = kept + shared;
    cs->n_acts_kept = kept;
    return 0;
}

/* Op i is a `first` whose output only op i+1, a `second` reading nothing else, consumes in the
 * whole model, and which does not leave the stage: the pair can run as one fused call. */
static int feeds_only_next(const cg_stage *cs, const pd_model *m, int i, pd_op_kind first,
                           pd_op_kind second) {
    if (i + 1 >= cs->n_ops) return 0;
    const pd_layer *a = &m->layers[cs->ops[i].layer];
    const pd_layer *b = &m->layers[cs->ops[i + 1].layer];
    if (a->op != first || b->op != second) return 0;
    if (b->n_inputs != 1 || b->inputs[0] != cs->ops[i].layer) return 0;
    int users = 0;
    for (int j = 0; j < m->n_layers; j++)
        for (int q = 0; q < m->layers[j].n_inputs; q++)
            users += m->layers[j].inputs[q] == cs->ops[i].layer;
    if (users != 1) return 0;
    for (int j = 0; j < cs->n_out; j++)
        if (cs->out[j].layer == cs->ops[i].layer) return 0;
    return 1;
}

/* A linear then its ReLU: one cuBLASLt GEMM with the RELU_BIAS epilogue. */
static int fuses_with_relu(const cg_stage *cs, const pd_model *m, int i) {
    return feeds_only_next(cs, m, i, PD_OP_LINEAR, PD_OP_RELU);
}

/* A ReLU then a maxpool2d: the CPU runs them as pdrt_relu_maxpool2d_forward and the pool's
 * backward straight into the ReLU's input gradient (the ReLU's output and its gradient are
 * never written). */
static int relu_feeds_maxpool(const cg_stage *cs, const pd_model *m, int i) {
    return feeds_only_next(cs, m, i, PD_OP_RELU, PD_OP_MAXPOOL2D);
}

/* The gradient regions a CPU backward has zeroed so far, by where they start: every gradient
 * is zeroed right before its first writer (in backward order), not all at once on entry, so
 * that a layer's lap includes the zeroing of the gradients it writes and the region is warm. */
typedef struct {
    int n;
    cg_ptr *ptr;
    int64_t *value;
} zeroed_set;

/* Marks the gradient g as zeroed unless it was already; says whether it was (the caller then
 * accumulates). NULL (stage 0's input) counts as zeroed. */
static int mark_zeroed(zeroed_set *z, const cg_stage *cs, cg_operand g) {
    if (g.ptr == CG_NULL) return 1;
    int64_t v = cs->syms[g.sym].value;
    for (int i = 0; i < z->n; i++)
        if (z->ptr[i] == g.ptr && z->value[i] == v) return 1;
    z->ptr[z->n] = g.ptr;
    z->value[z->n++] = v;
    return 0;
}

/* Adds "zero g (floats long)" to list unless g was zeroed before. */
static void zero_once(zeroed_set *z, const cg_stage *cs, cg_operand g, int64_t floats,
                      cg_zero *list, int *n) {
    if (!mark_zeroed(z, cs, g)) list[(*n)++] = (cg_zero){g, floats};
}

static int64_t grad_floats(const pd_model *m, int layer) {
    return (int64_t)m->batch * numel_of(m, layer);
}

/* The backend's backward: output pack gradients, zeroing (CPU), fusion (CUDA). */
static int plan_backward(cg_stage *cs, const pd_model *m, cg_backend backend) {
    for (int i = 0; i < cs->n_out; i++) {
        cg_pack *pk = &cs->out[i];
        pk->grad = pk->dsrc.ptr == CG_NULL ? CG_GRAD_NONE : CG_GRAD_ACCUMULATE;
    }
    if (backend == CG_BACKEND_CUDA) { /* the CUDA backward zeroes dacts and din on entry */
        for (int i = 0; i < cs->n_ops; i++)
            if (fuses_with_relu(cs, m, i)) {
                cs->ops[i].fuse = CG_FUSE_LINEAR_RELU;
                cs->ops[i + 1].fuse = CG_FUSED_INTO_PREV;
            }
        return 0;
    }
    for (int i = 0; i < cs->n_ops; i++)
        if (relu_feeds_maxpool(cs, m, i)) {
            cs->ops[i].fuse = CG_RELU_INTO_POOL;
            cs->ops[i + 1].fuse = CG_POOL_OF_RELU;
        }
    zeroed_set z = {0, calloc((size_t)cs->n_syms + 1, sizeof(cg_ptr)),
                    calloc((size_t)cs->n_syms + 1, sizeof(int64_t))};
    cs->tail_zero = calloc((size_t)cs->n_in + 1, sizeof *cs->tail_zero);
    int rc = !z.ptr || !z.value || !cs->tail_zero;
    for (int i = 0; i < cs->n_out && !rc; i++)
        if (cs->out[i].grad != CG_GRAD_NONE && !mark_zeroed(&z, cs, cs->out[i].dsrc))
            cs->out[i].grad = CG_GRAD_COPY; /* the first write: a copy, no zeroing */
    for (int i = cs->n_ops - 1; i >= 0 && !rc; i--) {
        cg_op *op = &cs->ops[i];
        const pd_layer *ly = &m->layers[op->layer];
        /* an output no later layer read has a zero gradient (a ReLU fused into its pool: none) */
        if (op->fuse != CG_RELU_INTO_POOL)
            zero_once(&z, cs, op->dy, grad_floats(m, op->layer), op->zero, &op->n_zero);
        if (op->fuse == CG_POOL_OF_RELU) continue; /* its input gradient is never written */
        for (int t = 0; t < PD_MAX_OP_TENSORS; t++) /* the parameters' gradients, adjacent */
            if (op->dparam[t].ptr != CG_NULL) {
                op->zero[op->n_zero++] = (cg_zero){op->dparam[t], op->param_floats};
                break;
            }
        for (int j = 0; j < op->n_in; j++) {
            int before = op->n_zero;
            zero_once(&z, cs, op->dx[j], grad_floats(m, ly->inputs[j]), op->zero, &op->n_zero);
            /* the first write of input 0's gradient: an op that can overwrite it does, unzeroed */
            if (j == 0 && op->n_zero > before && pd_op(ly->op)->backward_sets_din) {
                op->n_zero--;
                op->set_din = 1;
            }
        }
    }
    /* the previous stage reads every gradient of the input pack, written or not */
    for (int i = 0; i < cs->n_in && !rc; i++)
        zero_once(&z, cs, grad_of(cs, cs->in[i].slot), cs->in[i].numel, cs->tail_zero,
                  &cs->n_tail_zero);
    free(z.ptr);
    free(z.value);
    return rc;
}

static int resolve_stage(cg_stage *cs, const pd_model *m, const int *stage_of,
                         const int *last_use, char **ids, cg_operand *at, cg_backend backend,
                         pd_diag *d) {
    int L = m->n_layers, s = cs->index;
    cs->n_in = make_pack(&cs->in, &cs->in_floats, m, stage_of, last_use, s);
    cs->n_out = make_pack(&cs->out, &cs->out_floats, m, stage_of, last_use, s + 1);
    cs->ops = calloc((size_t)L, sizeof *cs->ops);
    builder b = {cs, ids, 0, at};
    if (cs->n_in < 0 || cs->n_out < 0 || !cs->ops) return 1;
    b.cap = cs->n_in + cs->n_out + (1 + 2 * PD_MAX_OP_TENSORS) * L;
    cs->syms = calloc((size_t)b.cap, sizeof *cs->syms);
    if (!cs->syms) return 1;
    for (int l = 0; l < L; l++) at[l] = none();
    int64_t off = 0;
    for (int i = 0; i < cs->n_in; i++) {
        cg_pack *pk = &cs->in[i];
        pk->slot = (cg_operand){CG_IN, add_sym(&b, CG_IN, pk->layer, NULL, off, pk->numel)};
        off += pk->numel;
        at[pk->layer] = pk->slot;
    }
    off = 0;
    for (int i = 0; i < cs->n_out; i++) {
        cg_pack *pk = &cs->out[i];
        pk->slot = (cg_operand){CG_OUT, add_sym(&b, CG_OUT, pk->layer, NULL, off, pk->numel)};
        pk->dslot = grad_of(cs, pk->slot);
        off += pk->numel;
    }
    if (place_ops(&b, m, stage_of, d)) return 1;
    for (int i = 0; i < cs->n_out; i++) {
        cg_pack *pk = &cs->out[i];
        if (at[pk->layer].ptr == CG_NULL) {
            pd_diag_error(d, m->path, 0, 0, "codegen: internal: stage %d cannot send '%s'", s,
                          m->layers[pk->layer].name);
            return 1;
        }
        pk->src = at[pk->layer];
        pk->dsrc = grad_of(cs, pk->src);
    }
    return plan_backward(cs, m, backend);
}

/* What the backend's kernels cannot run (the descriptors' check: the GPU dropout's batch). */
static int check_kernels(const pd_model *m, cg_backend backend, pd_diag *d) {
    int errors = 0;
    char why[256];
    pd_backend be = backend == CG_BACKEND_CUDA ? PD_BACKEND_CUDA : PD_BACKEND_CPU;
    for (int l = 1; l < m->n_layers; l++) {
        const pd_layer *ly = &m->layers[l];
        const pd_op_desc *op = pd_op(ly->op);
        if (op->check && op->check(ly, be, m->batch, why, sizeof why)) {
            pd_diag_error(d, m->path, ly->line, ly->col, "codegen: layer '%s': %s", ly->name,
                          why);
            errors++;
        }
    }
    return errors;
}

int cg_resolve(cg_program *pr, const pd_model *m, const pd_plan *p, cg_backend backend,
               pd_diag *d) {
    memset(pr, 0, sizeof *pr);
    pr->backend = backend;
    int L = m->n_layers, S = p->n_stages;
    if (S < 1 || L < 2) {
        pd_diag_error(d, m->path, 0, 0, "codegen: the plan has no stages or the model no layers");
        return 1;
    }
    if (S > CG_MAX_STAGES) {
        pd_diag_error(d, m->path, 0, 0, "codegen: the plan has %d stages; the runtime runs at "
                      "most %d (plan with fewer workers, or --no-codegen)", S, CG_MAX_STAGES);
        return 1;
    }
    int *stage_of = malloc((size_t)L * sizeof *stage_of);
    int *last_use = malloc((size_t)L * sizeof *last_use);
    int *reps = malloc((size_t)S * sizeof *reps);
    cg_operand *at = malloc((size_t)L * sizeof *at);
    char **ids = cg_layer_idents(m);
    int errors = !stage_of || !last_use || !reps || !at || !ids;
    if (!errors) errors = check_plan(m, p, stage_of, last_use, d);
    if (!errors) errors = check_kernels(m, backend, d);
    if (!errors) {
        for (int s = 0; s < S; s++) reps[s] = p->stages[s].replicas;
        pr->microbatches = p->microbatches > 0 ? p->microbatches
                                               : pd_schedule_default_microbatches(S, reps);
        pr->n_stages = S;
        pr->stages = calloc((size_t)S, sizeof *pr->stages);
        errors = !pr->stages;
    }
    for (int s = 0; s < S && !errors; s++) {
        pr->stages[s].index = s;
        pr->stages[s].selective = p->stages[s].recompute == PD_RECOMPUTE_SELECTIVE;
        errors = resolve_stage(&pr->stages[s], m, stage_of, last_use, ids, at, backend, d);
    }
    cg_free_idents(ids, L);
    free(at);
    free(reps);
    free(stage_of);
    free(last_use);
    if (errors) {
        cg_program_free(pr);
        return 1;
    }
    return 0;
}
