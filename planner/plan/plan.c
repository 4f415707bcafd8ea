/* plan.c: freeing a plan, and the rank and 1F1B bookkeeping that depends only on the stages'
 * replica counts: contiguous ranks (stage 0's replicas first), warm-up depth and stashed weight
 * versions as PipeDream computes them, and the deeper warm-up of replicated pipelines
 * (pd_plan_deepen_warmup). */
#include "plan.h"

#include <math.h>
#include <stdlib.h>

void pd_plan_free(pd_plan *p) {
    if (!p) return;
    for (int s = 0; s < p->n_stages; s++) {
        free(p->stages[s].nodes);
        free(p->stages[s].ranks);
    }
    free(p->stages);
    free(p);
}

int pd_plan_assign_ranks(pd_plan *p) {
    int total = 0;
    for (int s = 0; s < p->n_stages; s++) total += p->stages[s].replicas;
    int before = 0;
    for (int s = 0; s < p->n_stages; s++) {
        pd_stage *st = &p->stages[s];
        free(st->ranks);
        st->ranks = malloc(sizeof(int) * (size_t)(st->replicas > 0 ? st->replicas : 1));
        if (!st->ranks) return -1;
        for (int r = 0; r < st->replicas; r++) st->ranks[r] = before + r;
        /* PipeDream: (num_ranks - 1 - ranks in earlier stages) / ranks in this stage */
        st->warmup = (total - 1 - before) / st->replicas;
        st->weight_versions = st->warmup + 1;
        before += st->replicas;
    }
    p->workers = total;
    return 0;
}

void pd_plan_deepen_warmup(pd_plan *p, const double *extra_bytes, double limit) {
    int n = p->n_stages, any = 0;
    double T = 0;
    for (int s = 0; s < n; s++) {
        any |= p->stages[s].replicas > 1;
        if (p->stages[s].time_ms > T) T = p->stages[s].time_ms;
    }
    if (n < 2 || !any || !(T > 0) || !isfinite(T)) return;
    int *w = malloc(sizeof(int) * (size_t)n);
    if (!w) return; /* PipeDream's depth stays */
    /* the gap's factor: 3, or with a memory limit the largest of 3, 2, 1.5, 1 that fits */
    static const double factors[] = {3.0, 2.0, 1.5, 1.0};
    int fits = 0;
    for (int k = 0; k < 4 && !fits; k++) {
        fits = 1;
        w[n - 1] = p->stages[n - 1].warmup;
        for (int s = n - 2; s >= 0 && fits; s--) { /* from the end: D_s = D_{s+1} + the gap */
            const pd_stage *st = &p->stages[s], *nx = &p->stages[s + 1];
            int R = st->replicas;
            double lat = nx->compute_ms + nx->allreduce_ms * nx->replicas +
                         st->comm_out_ms * st->replicas;
            double gap = ceil(factors[k] * lat / T);
            /* never a smaller gap than PipeDream's (the pipeline's slack between s and s + 1) */
            double pgap = (double)st->warmup * R - (double)nx->warmup * nx->replicas;
            if (pgap > gap) gap = pgap;
            double D = (double)w[s + 1] * nx->replicas + gap;
            double ws = ceil(D / R);
            if (!(ws < 1e6)) ws = 1e6;
            w[s] = ws > st->warmup ? (int)ws : st->warmup;
            /* a stage capped alone can leave two stages with the same D, which stalls the
             * pipeline worse than PipeDream's depth: the whole plan takes a smaller factor */
            if (limit > 0 && extra_bytes &&
                st->memory_bytes + (w[s] - st->warmup) * extra_bytes[s] > limit)
                fits = 0;
        }
    }
    if (!fits) { /* PipeDream's depth everywhere */
        free(w);
        return;
    }
    for (int s = 0; s < n; s++) {
        pd_stage *st = &p->stages[s];
        if (extra_bytes) st->memory_bytes += (w[s] - st->warmup) * extra_bytes[s];
        st->warmup = w[s];
        st->weight_versions = w[s] + 1;
    }
    free(w);
}
