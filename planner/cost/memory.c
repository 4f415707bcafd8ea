/* memory.c: a stage's memory per worker under each schedule (memory.h), shared by the DP's memory
 * check and the simulator's peak memory. */
#include "memory.h"

#include <limits.h>
#include <math.h>
#include <string.h>

static const char *const names[] = {"1f1b", "2bw", "flush", "gpipe", "zb-h1", "zb-h2"};

int pd_mem_schedule_of(const char *name) {
    for (int i = 0; name && i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

pd_mem_model pd_mem_model_of(const char *name, int microbatches, int rc, int max_warmup) {
    int s = pd_mem_schedule_of(name);
    pd_mem_model m = {s < 0 ? PD_MEM_1F1B : s, microbatches, rc, max_warmup};
    return m;
}

static int lo(int a, int b) { return a < b ? a : b; }

int pd_mem_in_flight(const pd_mem_model *m, int warmup, int replicas) {
    int w = warmup < 0 ? 0 : warmup, R = replicas < 1 ? 1 : replicas;
    int n = m->microbatches > 0 ? (m->microbatches + R - 1) / R : INT_MAX;
    int mw = m->max_warmup < 0 ? 0 : m->max_warmup;
    int zb = m->schedule == PD_MEM_ZB_H1 || m->schedule == PD_MEM_ZB_H2;
    if (zb && w > mw) return -1; /* a deeper warm-up than the bound assumes */
    if (w >= INT_MAX / 2) w = INT_MAX / 2 - 1;
    if (mw >= INT_MAX / 4) mw = INT_MAX / 4 - 1;
    switch (m->schedule) {
    case PD_MEM_FLUSH: return lo(w + 1, n);
    case PD_MEM_GPIPE: return n;
    case PD_MEM_ZB_H1: return lo(mw + 1, n);
    case PD_MEM_ZB_H2: return lo(2 * mw + 1, n);
    default: return w + 1; /* 1f1b, 2bw */
    }
}

int pd_mem_versions(const pd_mem_model *m, int in_flight) {
    if (m->schedule == PD_MEM_1F1B) return in_flight > 1 ? in_flight : 1;
    return m->schedule == PD_MEM_2BW ? 2 : 1;
}

double pd_mem_act_bytes(const pd_mem_model *m, const pd_mem_stage *s, int in_flight) {
    if (in_flight < 0) return INFINITY;
    double n = in_flight, act = s->act_bytes, acts;
    if (m->recompute == 1) /* full */
        acts = n * s->in_bytes + act;
    else if (m->recompute == 2 && s->kept_bytes >= 0) /* selective, its kept part known */
        acts = n * (s->in_bytes + (in_flight > 1 ? s->kept_bytes : 0)) + act;
    else /* none, or selective not known here: counted as none */
        acts = n * (act + s->in_bytes);
    if (m->schedule == PD_MEM_ZB_H1 || m->schedule == PD_MEM_ZB_H2)
        acts += n * act + n * s->param_bytes; /* output gradients and weight gradients until W */
    return acts;
}

double pd_mem_bytes(const pd_mem_model *m, const pd_mem_stage *s, int in_flight) {
    if (in_flight < 0) return INFINITY;
    return (pd_mem_versions(m, in_flight) + 1.0 + s->optim_buffers) * s->param_bytes +
           pd_mem_act_bytes(m, s, in_flight);
}

pd_mem_stage pd_mem_stage_of(const pd_plan *p, int q, const pd_costgraph *g) {
    const pd_stage *st = &p->stages[q];
    pd_mem_stage s = {0, 0, g->selective_keeps ? 0 : -1, q > 0 ? st->act_in_bytes : 0,
                      g->optim_buffers};
    for (int i = 0; i < st->n_nodes; i++) {
        int v = st->nodes[i];
        s.param_bytes += g->param_bytes[v];
        s.act_bytes += pd_node_stored_bytes(g, v);
        if (g->selective_keeps && !pd_node_recomputed(g, v, PD_RECOMPUTE_SELECTIVE))
            s.kept_bytes += pd_node_stored_bytes(g, v);
    }
    return s;
}

double pd_plan_stage_memory(const pd_plan *p, int q, const pd_costgraph *g,
                            const pd_mem_model *m) {
    pd_mem_model x = *m;
    x.max_warmup = 0;
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].warmup > x.max_warmup) x.max_warmup = p->stages[s].warmup;
    pd_mem_stage s = pd_mem_stage_of(p, q, g);
    return pd_mem_bytes(&x, &s, pd_mem_in_flight(&x, p->stages[q].warmup, p->stages[q].replicas));
}
