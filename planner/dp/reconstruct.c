/* reconstruct.c: from the solved tables back to a plan: reconstruct walks each level's table
 * back from the end and expands every stage through the inner levels into flat stages, and
 * build_plan turns the flat stages into a pd_plan (nodes, times, ranks, memory). */
#include "dp_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


int dp_flat_push(flat_list *fl, const flat_stage *s) {
    if (fl->n == fl->cap) {
        int cap = fl->cap ? fl->cap * 2 : 16;
        flat_stage *nv = realloc(fl->v, sizeof *nv * (size_t)cap);
        if (!nv) return -1;
        fl->v = nv;
        fl->cap = cap;
    }
    fl->v[fl->n++] = *s;
    return 0;
}

/* Re-solves level l for the range s..e on all its units and appends its stages (expanded
 * through the inner levels); enc describes the enclosing outer stages. */
int dp_reconstruct(flat_list *fl, dpctx *x, int l, long s, long e, const dp_enclosing *enc) {
    int mult = enc->mult;
    double encl_time = enc->time_ms, encl_ar = enc->allreduce_ms;
    double in_ms = enc->in_ms, out_ms = enc->out_ms;
    const int *encl_r = enc->replicas;
    int rc = 0, N, m0;
    dptable t = {0};
    if (dp_table_alloc(&t, x->S, x->c->count[l], x->cm == PD_COST_PIPEDREAM)) {
        dp_table_free(&t);
        return -1;
    }
    if (l == x->L - 1 && s == 0 && e == x->S - 1) { /* the top level: the run dp_solve_top chose */
        x->lv[l].workers = N = x->top_M;
        m0 = x->top_m;
        dp_level_dp(&t, x, l, s);
    } else if (!(dp_level_solve(&t, x, l, s, e, &N, &m0) < INFINITY)) {
        x->lv[l].workers = x->c->count[l];
        dp_table_free(&t);
        return -1;
    }
    int W = N + 1;
    /* walk back: (I, J, r) from the end */
    int cap = 16, n = 0;
    long *sI = malloc(sizeof(long) * (size_t)cap), *sJ = malloc(sizeof(long) * (size_t)cap);
    int *sR = malloc(sizeof(int) * (size_t)cap), *sM = malloc(sizeof(int) * (size_t)cap);
    if (!sI || !sJ || !sR || !sM) rc = -1;
    long J = e;
    int m = m0, fin = 1;
    while (!rc) {
        size_t k = (size_t)J * (size_t)W + (size_t)m;
        long I = fin ? t.fI[k] : t.oI[k];
        int r = fin ? t.fR[k] : t.oR[k];
        if (I < 0 || r <= 0) {
            rc = -1;
            break;
        }
        if (n == cap) {
            cap *= 2;
            long *a = realloc(sI, sizeof(long) * (size_t)cap);
            if (a) sI = a;
            long *b = realloc(sJ, sizeof(long) * (size_t)cap);
            if (b) sJ = b;
            int *c = realloc(sR, sizeof(int) * (size_t)cap);
            if (c) sR = c;
            int *d = realloc(sM, sizeof(int) * (size_t)cap);
            if (d) sM = d;
            if (!a || !b || !c || !d) {
                rc = -1;
                break;
            }
        }
        sI[n] = I;
        sJ[n] = J;
        sR[n] = r;
        sM[n] = m;
        n++;
        if (I == s) break;
        J = I;
        m -= r;
        fin = 0;
    }
    for (int q = n - 1; q >= 0 && !rc; q--) {
        long I = sI[q], Jq = sJ[q];
        int r = sR[q], first = q == n - 1, lastr = q == 0;
        int last = x->cm == PD_COST_PIPEDREAM ? Jq == x->S - 1 : lastr;
        pd_stage_sums ss;
        stage_sums(&ss, x, l, I, Jq, first, last);
        pd_stage_cost c;
        dp_stage_eval(&c, x, l, &ss, r, N - sM[q], sM[q] - r);
        double tglob = c.time_ms / mult;
        double et = encl_time > tglob ? encl_time : tglob;
        double sin = first ? in_ms : c.comm_in_ms / mult;
        double sout = lastr ? out_ms : c.comm_out_ms / mult;
        if (l == 0) {
            flat_stage f = {.I = I, .J = Jq, .replicas = r * mult, .c0 = c, .mult = mult,
                            .time_ms = et, .outer_ar_ms = encl_ar, .in_ms = sin, .out_ms = sout};
            for (int k = 1; k < x->L; k++) f.rl[k] = encl_r[k];
            f.rl[0] = r;
            if (dp_flat_push(fl, &f)) rc = -1;
        } else {
            int rl[PD_MAX_LEVELS];
            for (int k = 0; k < PD_MAX_LEVELS; k++) rl[k] = encl_r[k];
            rl[l] = r;
            dp_enclosing inner = {.mult = mult * r, .time_ms = et,
                                  .allreduce_ms = encl_ar + c.allreduce_ms / mult,
                                  .in_ms = sin, .out_ms = sout, .replicas = rl};
            rc = dp_reconstruct(fl, x, l - 1, I, Jq, &inner);
        }
    }
    free(sI);
    free(sJ);
    free(sR);
    free(sM);
    dp_table_free(&t);
    x->lv[l].workers = x->c->count[l];
    return rc;
}

pd_plan *dp_build_plan(const dpctx *x, const flat_list *fl, double bottleneck) {
    pd_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->stages = calloc((size_t)fl->n, sizeof(pd_stage));
    if (!p->stages) {
        free(p);
        return NULL;
    }
    p->n_stages = fl->n;
    for (int q = 0; q < fl->n; q++) {
        const flat_stage *f = &fl->v[q];
        pd_stage *st = &p->stages[q];
        st->replicas = f->replicas;
        int cnt = x->id.size[f->J] - x->id.size[f->I];
        st->nodes = malloc(sizeof(int) * (size_t)(cnt > 0 ? cnt : 1));
        if (!st->nodes) {
            pd_plan_free(p);
            return NULL;
        }
        for (int v = 0; v < x->g->n; v++)
            if (pd_ideal_has(&x->id, f->J, v) && !pd_ideal_has(&x->id, f->I, v))
                st->nodes[st->n_nodes++] = v;
        st->compute_ms = x->id.compute[f->J] - x->id.compute[f->I];
        st->allreduce_ms = f->c0.allreduce_ms / f->mult + f->outer_ar_ms;
        st->comm_in_ms = f->in_ms;
        st->comm_out_ms = f->out_ms;
        st->time_ms = f->time_ms;
        st->param_bytes = x->id.params[f->J] - x->id.params[f->I];
        st->act_in_bytes = x->id.cut[f->I];
        st->act_out_bytes = f->J == x->S - 1 ? 0 : x->id.cut[f->J];
    }
    if (pd_plan_assign_ranks(p)) {
        pd_plan_free(p);
        return NULL;
    }
    const pd_cluster *cl = x->hc ? x->hc : x->c;
    /* the default model on several levels: every stage's figures from the one price of a plan
     * (cost.h), which the DP's objective is (test_price: pd_plan_price = bottleneck_ms). On one
     * level the figures above are the same formulas over the ideals' cumulative sums (kept: the
     * golden plans print them to the last digit) */
    if (x->hc && !(pd_plan_price(p, x->g, cl) >= 0)) {
        pd_plan_free(p);
        return NULL;
    }
    /* the warm-up (plan.h, pd_warmup_depth: deeper for the default model's pipelines with a
     * replicated stage) and the memory per worker it needs, under the plan's cost model */
    int replicated = x->cm == PD_COST_DEFAULT && pd_plan_replicated(p) && !x->shallow_warmup;
    pd_plan_set_warmup(p, replicated);
    pd_cost_level lv0 = x->lv[0];
    lv0.innermost = 1;
    lv0.replicated_warmup = replicated;
    int before = 0;
    for (int q = 0; q < p->n_stages; q++) {
        const flat_stage *f = &fl->v[q];
        pd_stage *st = &p->stages[q];
        pd_stage_sums ss;
        ss.compute_ms = st->compute_ms;
        ss.param_bytes = st->param_bytes;
        ss.act_bytes = x->id.acts[f->J] - x->id.acts[f->I];
        ss.in_bytes = st->act_in_bytes;
        ss.out_bytes = st->act_out_bytes;
        ss.first = q == 0;
        ss.last = q == p->n_stages - 1;
        pd_stage_cost c;
        before += st->replicas;
        pd_stage_cost_eval(&c, &ss, &lv0, x->cm, st->replicas, p->workers - before);
        st->memory_bytes = c.memory_bytes;
    }
    /* zb: the DP counted every stage at its bound on the largest warm-up; the plan's own */
    if (x->cm == PD_COST_DEFAULT &&
        (lv0.mem.schedule == PD_MEM_ZB_H1 || lv0.mem.schedule == PD_MEM_ZB_H2))
        for (int q = 0; q < p->n_stages; q++)
            p->stages[q].memory_bytes = pd_plan_stage_memory(p, q, x->g, &lv0.mem);
    p->cost_model = x->cm;
    p->straight = x->straight;
    p->bottleneck_ms = bottleneck;
    p->throughput = bottleneck > 0 ? 1000.0 / bottleneck : 0; /* minibatches/s; CLI x batch */
    p->data_parallel_ms = pd_data_parallel_ms(x->g, cl, x->cm);
    p->speedup_vs_data_parallel = bottleneck > 0 ? p->data_parallel_ms / bottleneck : 0;
    p->exact = x->id.complete;
    strcpy(p->certificate.solver, "glpk");
    strcpy(p->certificate.status, "skipped");
    return p;
}
