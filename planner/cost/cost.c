/* cost.c: stage time and memory under the default and the PipeDream (compat) cost models.
 * Times are ms per minibatch; bandwidths bytes/s, so every bytes/bandwidth term is scaled by 1000.
 * The formulas, and why the default model differs from the original, are in docs/planner.md. */
#include "cost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void pd_stage_cost_eval(pd_stage_cost *out, const pd_stage_sums *s, const pd_cost_level *lv,
                        pd_cost_model cm, int replicas, int workers_after) {
    double r = replicas, B = lv->bandwidth, P = s->param_bytes;
    pd_stage_cost c = {0};
    c.warmup = pd_warmup_depth(workers_after, replicas,
                               cm == PD_COST_DEFAULT && lv->replicated_warmup);
    c.weight_versions = c.warmup + 1;
    c.compute_ms = s->compute_ms / r;
    if (cm == PD_COST_PIPEDREAM) {
        /* base case: (T + 4(M-1)P/(B M)/K)/M; recurrence's last stage: (T + 4(m'-1)P/(B m'))/m'
         * with the transfers 2a/(B m') beside it. */
        double sync = 1000.0 * 4.0 * (r - 1.0) * P / (B * r);
        if (s->first) sync /= lv->k;
        c.allreduce_ms = sync / r;
        if (!s->first) {
            c.comm_in_ms = 2000.0 * s->in_bytes / (B * r);
            if (!s->last) c.comm_out_ms = 2000.0 * s->out_bytes / (B * r);
        }
        c.memory_bytes = (double)c.warmup * (s->act_bytes + P);
    } else {
        /* ring all-reduce 2(r-1)P/(rB) once per round of r minibatches, added to compute */
        double ring = 1000.0 * 2.0 * (r - 1.0) * P / (r * B);
        c.allreduce_ms = ring / r;
        if (!s->first) c.comm_in_ms = 2000.0 * s->in_bytes / (B * r);
        if (!s->last) c.comm_out_ms = 2000.0 * s->out_bytes / (B * r);
        /* weight versions + gradients + the optimizer's buffers (momentum's velocity, Adam's
         * two moments), and what every minibatch in flight keeps, under the schedule's model
         * (memory.h; 1f1b: warm-up + 1 versions and minibatches in flight) */
        if (lv->innermost) {
            pd_mem_stage ms = {.param_bytes = P, .act_bytes = s->act_bytes, .kept_bytes = -1,
                               .in_bytes = s->in_bytes, .optim_buffers = lv->optim_buffers};
            c.memory_bytes =
                pd_mem_bytes(&lv->mem, &ms, pd_mem_in_flight(&lv->mem, c.warmup, replicas));
        }
    }
    if (cm == PD_COST_PIPEDREAM) {
        double t = c.compute_ms + c.allreduce_ms;
        if (c.comm_in_ms > t) t = c.comm_in_ms;
        if (c.comm_out_ms > t) t = c.comm_out_ms;
        c.time_ms = t;
    } else { /* the same terms as above, in one place for the DP's inner loop (cost.h) */
        c.time_ms = pd_stage_time_default(s->compute_ms, P, s->in_bytes, s->out_bytes, s->first,
                                          s->last, B, replicas);
    }
    c.fits = !(lv->memory_bytes > 0) || c.memory_bytes <= lv->memory_bytes;
    *out = c;
}

double pd_cut_bytes(const pd_costgraph *g, const unsigned char *in) {
    unsigned char *counted = calloc((size_t)g->n + 1, 1);
    double bytes = 0;
    for (int e = 0; e < g->n_edges; e++) {
        int u = g->src[e], v = g->dst[e];
        if (in[u] && !in[v] && !(counted ? counted[u] : 0)) {
            if (counted) counted[u] = 1;
            bytes += g->act_bytes[u];
        }
    }
    free(counted);
    return bytes;
}

void pd_stage_cost_nodes(pd_stage_cost *out, const pd_costgraph *g, const pd_cost_level *lv,
                         pd_cost_model cm, const unsigned char *before,
                         const unsigned char *stage, int replicas, int workers_after) {
    pd_stage_sums s = {0};
    unsigned char *upto = malloc((size_t)g->n + 1);
    int any_before = 0, all = 1;
    for (int v = 0; v < g->n; v++) {
        int b = before && before[v];
        any_before |= b;
        upto[v] = (unsigned char)(b || stage[v]);
        if (!upto[v]) all = 0;
        if (stage[v]) {
            s.compute_ms += g->fwd_ms[v] + g->bwd_ms[v];
            s.param_bytes += g->param_bytes[v];
            s.act_bytes += pd_node_stored_bytes(g, v);
        }
    }
    s.first = !any_before;
    s.last = all;
    s.in_bytes = any_before ? pd_cut_bytes(g, before) : 0;
    s.out_bytes = all ? 0 : pd_cut_bytes(g, upto);
    free(upto);
    pd_stage_cost_eval(out, &s, lv, cm, replicas, workers_after);
}

void pd_cost_level_of(pd_cost_level *lv, const pd_cluster *c, const pd_costgraph *g, int l) {
    /* the original passes the previous level's count as K (num_machines_in_machine), not the
     * product of every inner count; only the compat model uses K */
    int k = l > 0 ? c->count[l - 1] : 1;
    lv->bandwidth = c->bandwidth[l];
    lv->workers = c->count[l];
    lv->k = k;
    lv->memory_bytes = c->memory_bytes;
    lv->innermost = l == 0;
    lv->optim_buffers = g ? g->optim_buffers : 1;
    lv->mem = c->mem;
    lv->replicated_warmup = 0;
}

void pd_graph_sums(pd_stage_sums *s, const pd_costgraph *g) {
    memset(s, 0, sizeof *s);
    for (int v = 0; v < g->n; v++) {
        s->compute_ms += g->fwd_ms[v] + g->bwd_ms[v];
        s->param_bytes += g->param_bytes[v];
        s->act_bytes += pd_node_stored_bytes(g, v);
    }
    s->first = s->last = 1;
}

double pd_data_parallel_ms(const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm) {
    pd_stage_sums s;
    pd_graph_sums(&s, g);
    if (cm == PD_COST_DEFAULT) /* the price of the one-stage plan on every worker */
        return pd_stage_time_at(c, s.compute_ms, s.param_bytes, 0, 0, 1, 1, 0,
                                pd_cluster_workers(c));
    for (int l = 0; l < c->n_levels; l++) {
        pd_cost_level lv;
        pd_cost_level_of(&lv, c, g, l);
        pd_stage_cost sc;
        pd_stage_cost_eval(&sc, &s, &lv, cm, lv.workers, 0);
        s.compute_ms = sc.time_ms;
    }
    return s.compute_ms;
}

double pd_ring_ms_members(const pd_cluster *c, const int *members, int n, double P,
                          double *bytes) {
    double ms = 0, sent = 0;
    long inner = 1;
    *bytes = 0;
    if (n <= 1 || P <= 0) return 0;
    for (int l = 0; l < c->n_levels; l++) {
        long outer = inner * c->count[l];
        /* the most distinct inner units (of size `inner`) that share one unit of this level */
        int most = 1;
        for (int i = 0; i < n; i++) {
            int distinct = 0;
            for (int j = 0; j < n; j++) {
                if (members[j] / outer != members[i] / outer) continue;
                int seen = 0;
                for (int k = 0; k < j && !seen; k++)
                    if (members[k] / outer == members[i] / outer &&
                        members[k] / inner == members[j] / inner)
                        seen = 1;
                if (!seen) distinct++;
            }
            if (distinct > most) most = distinct;
        }
        if (most > 1) {
            double m = most;
            ms += 1000.0 * 2.0 * (m - 1.0) * P / (m * c->bandwidth[l]);
            sent += 2.0 * (m - 1.0) / m * P;
        }
        inner = outer;
    }
    *bytes = sent;
    return ms;
}

void pd_stage_cost_at(pd_stage_cost *out, const pd_stage_sums *s, const pd_cluster *c,
                      const pd_costgraph *g, long a, int replicas, int workers_after,
                      int replicated) {
    pd_cost_level lv;
    pd_cost_level_of(&lv, c, g, 0);
    lv.replicated_warmup = replicated;
    lv.innermost = 1; /* memory: the default model's, per worker */
    pd_stage_cost_eval(out, s, &lv, PD_COST_DEFAULT, replicas, workers_after);
    double r = replicas;
    out->allreduce_ms = pd_ring_ms_span(c, a, replicas, s->param_bytes) / r;
    out->comm_in_ms = s->first ? 0
                               : 2000.0 * s->in_bytes /
                                     (c->bandwidth[pd_rank_level(c, a - 1, a + r - 1)] * r);
    out->comm_out_ms =
        s->last ? 0 : 2000.0 * s->out_bytes / (c->bandwidth[pd_rank_level(c, a, a + r)] * r);
    out->time_ms = pd_stage_time_at(c, s->compute_ms, s->param_bytes, s->in_bytes, s->out_bytes,
                                    s->first, s->last, a, replicas);
}

/* 1 when the ranks of a stage are a, a + 1, ..., a + n - 1 */
static int contiguous(const pd_stage *st) {
    for (int k = 1; k < st->replicas; k++)
        if (!st->ranks || st->ranks[k] != st->ranks[0] + k) return 0;
    return 1;
}

double pd_plan_price(pd_plan *p, const pd_costgraph *g, const pd_cluster *c) {
    unsigned char *upto = calloc((size_t)g->n + 1, 1);
    if (!upto) return NAN;
    double worst = 0, in_bytes = 0;
    int before = 0;
    for (int q = 0; q < p->n_stages; q++) {
        pd_stage *st = &p->stages[q];
        pd_stage_sums s = {0};
        for (int k = 0; k < st->n_nodes; k++) {
            int v = st->nodes[k];
            s.compute_ms += g->fwd_ms[v] + g->bwd_ms[v];
            s.param_bytes += g->param_bytes[v];
            s.act_bytes += pd_node_stored_bytes(g, v);
            upto[v] = 1;
        }
        s.first = q == 0;
        s.last = q == p->n_stages - 1;
        s.in_bytes = s.first ? 0 : in_bytes;
        s.out_bytes = s.last ? 0 : pd_cut_bytes(g, upto);
        long a = st->ranks ? st->ranks[0] : before;
        pd_stage_cost sc;
        pd_stage_cost_at(&sc, &s, c, g, a, st->replicas, 0, 0);
        if (!contiguous(st)) { /* any placement: the ring over the units it spans */
            double bytes, r = st->replicas;
            sc.allreduce_ms = pd_ring_ms_members(c, st->ranks, st->replicas, s.param_bytes,
                                                 &bytes) / r;
            double t = sc.compute_ms + sc.allreduce_ms;
            if (sc.comm_in_ms > t) t = sc.comm_in_ms;
            if (sc.comm_out_ms > t) t = sc.comm_out_ms;
            sc.time_ms = t;
        }
        st->compute_ms = s.compute_ms;
        st->allreduce_ms = sc.allreduce_ms;
        st->comm_in_ms = sc.comm_in_ms;
        st->comm_out_ms = sc.comm_out_ms;
        st->time_ms = sc.time_ms;
        st->param_bytes = s.param_bytes;
        st->act_in_bytes = s.in_bytes;
        st->act_out_bytes = s.out_bytes;
        if (sc.time_ms > worst) worst = sc.time_ms;
        in_bytes = s.out_bytes;
        before += st->replicas;
    }
    free(upto);
    return worst;
}
