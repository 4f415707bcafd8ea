/* resolve.c: the resolve pass (see resolve.h): packs across cuts, blob offsets, liveness of
 * cut tensors (a tensor crosses every cut between its producer and its last consumer). */
#include "resolve.h"

#include <stdlib.h>
#include <string.h>

void cg_program_free(cg_program *pr) {
    if (!pr->stages) return;
    for (int s = 0; s < pr->n_stages; s++) {
        free(pr->stages[s].ops);
        free(pr->stages[s].in);
        free(pr->stages[s].out);
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
            (*out)[n].off = off;
            (*out)[n].numel = (int64_t)m->batch * numel_of(m, l);
            off += (*out)[n].numel;
            n++;
        }
    *floats = off;
    return n;
}

int cg_resolve(cg_program *pr, const pd_model *m, const pd_plan *p, pd_diag *d) {
    memset(pr, 0, sizeof *pr);
    const char *f = m->path;
    int L = m->n_layers, S = p->n_stages, B = m->batch;
    if (S < 1 || L < 2) {
        pd_diag_error(d, f, 0, 0, "codegen: the plan has no stages or the model no layers");
        return 1;
    }
    int *stage_of = malloc((size_t)L * sizeof *stage_of);
    int *last_use = malloc((size_t)L * sizeof *last_use);
    if (!stage_of || !last_use) { free(stage_of); free(last_use); return 1; }
    for (int l = 0; l < L; l++) stage_of[l] = -2;
    stage_of[0] = -1;
    int errors = 0;
    for (int s = 0; s < S; s++) {
        const pd_stage *st = &p->stages[s];
        if (st->replicas < 1) {
            pd_diag_error(d, f, 0, 0, "codegen: stage %d has %d replicas", s, st->replicas);
            errors++;
        }
        int before = 0; /* the runtime numbers ranks contiguously in stage order */
        for (int k = 0; k < s; k++) before += p->stages[k].replicas;
        for (int r = 0; r < st->replicas; r++)
            if (st->ranks && st->ranks[r] != before + r) {
                pd_diag_error(d, f, 0, 0, "codegen: stage %d's ranks are not contiguous", s);
                errors++;
                break;
            }
        if (p->vertical_sync && st->replicas != 1) {
            pd_diag_error(d, f, 0, 0, "codegen: vertical sync needs a straight pipeline, but stage %d "
                          "has %d replicas (plan with --straight)", s, st->replicas);
            errors++;
        }
        for (int i = 0; i < st->n_nodes; i++) {
            int l = st->nodes[i] + 1;
            if (l < 1 || l >= L || stage_of[l] != -2) {
                pd_diag_error(d, f, 0, 0, "codegen: stage %d holds node %d twice or out of range", s,
                              st->nodes[i]);
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
                              m->layers[l].name, stage_of[l], m->layers[src].name, stage_of[src]);
                errors++;
            }
            if (stage_of[l] > last_use[src]) last_use[src] = stage_of[l];
        }
    const pd_layer *lastl = &m->layers[L - 1];
    if (!errors && (stage_of[L - 1] != S - 1 || pd_shape_numel(&lastl->out) != m->classes)) {
        pd_diag_error(d, f, lastl->line, lastl->col,
                      "codegen: the last layer '%s' must produce the %d class logits in the last "
                      "stage", lastl->name, m->classes);
        errors++;
    }
    if (errors) { free(stage_of); free(last_use); return 1; }
    last_use[L - 1] = S; /* the logits leave the last stage for the loss */

    pr->n_stages = S;
    pr->stages = calloc((size_t)S, sizeof *pr->stages);
    int64_t *loc_off = malloc((size_t)L * sizeof *loc_off);
    int *loc_base = malloc((size_t)L * sizeof *loc_base);
    if (!pr->stages || !loc_off || !loc_base) errors++;
    for (int s = 0; s < S && !errors; s++) {
        cg_stage *cs = &pr->stages[s];
        cs->index = s;
        cs->n_in = make_pack(&cs->in, &cs->in_floats, m, stage_of, last_use, s);
        cs->n_out = make_pack(&cs->out, &cs->out_floats, m, stage_of, last_use, s + 1);
        cs->ops = calloc((size_t)L, sizeof *cs->ops);
        if (cs->n_in < 0 || cs->n_out < 0 || !cs->ops) { errors++; break; }
        for (int l = 0; l < L; l++) loc_base[l] = -1;
        for (int i = 0; i < cs->n_in; i++) {
            loc_base[cs->in[i].layer] = CG_IN;
            loc_off[cs->in[i].layer] = cs->in[i].off;
        }
        int64_t acts = 0, params = 0, bufs = 0;
        cs->first_node = cs->last_node = -1;
        for (int l = 1; l < L; l++) {
            if (stage_of[l] != s) continue;
            if (cs->first_node < 0) cs->first_node = l - 1;
            cs->last_node = l - 1;
            const pd_layer *ly = &m->layers[l];
            cg_op *op = &cs->ops[cs->n_ops++];
            op->layer = l;
            op->n_in = ly->n_inputs;
            op->w_off = op->b_off = op->buf_off = op->aux_off = -1;
            for (int i = 0; i < ly->n_inputs; i++) {
                int src = ly->inputs[i];
                if (loc_base[src] < 0) {
                    pd_diag_error(d, f, ly->line, ly->col, "codegen: internal: input '%s' of '%s' "
                                  "has no place in stage %d", m->layers[src].name, ly->name, s);
                    errors++;
                    break;
                }
                op->in[i] = (cg_loc){loc_base[src], loc_off[src]};
            }
            op->out_numel = pd_shape_numel(&ly->out);
            if (ly->op == PD_OP_FLATTEN) {
                op->out = op->in[0];
            } else {
                op->out = (cg_loc){CG_ACT, acts};
                acts += (int64_t)B * op->out_numel;
            }
            loc_base[l] = op->out.base;
            loc_off[l] = op->out.off;
            if (ly->n_weight > 0) { op->w_off = params; params += ly->n_weight; }
            if (ly->n_bias > 0) { op->b_off = params; params += ly->n_bias; }
            if (ly->op == PD_OP_BATCHNORM2D) {
                int C = ly->out.dim[0];
                op->buf_off = bufs;
                bufs += 2 * C;
                op->aux_off = acts;
                acts += 2 * C;
            } else if (ly->op == PD_OP_DROPOUT || ly->op == PD_OP_MAXPOOL2D) {
                op->aux_off = acts;
                acts += (int64_t)B * op->out_numel;
            }
        }
        cs->n_params = params;
        cs->n_buffers = bufs;
        cs->n_acts = acts;
        for (int i = 0; i < cs->n_out; i++)
            if (loc_base[cs->out[i].layer] < 0) {
                pd_diag_error(d, f, 0, 0, "codegen: internal: stage %d cannot send '%s'", s,
                              m->layers[cs->out[i].layer].name);
                errors++;
            }
    }
    free(loc_off);
    free(loc_base);
    free(stage_of);
    free(last_use);
    if (errors) {
        cg_program_free(pr);
        return 1;
    }
    return 0;
}
