/* plan.c: freeing a plan, and the rank and 1F1B bookkeeping that depends only on the stages'
 * replica counts: contiguous ranks (stage 0's replicas first), and each stage's warm-up depth and
 * stashed weight versions from the one depth function (plan.h, pd_warmup_depth). */
#include "plan.h"

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
    for (int s = 0; s < p->n_stages; s++) {
        pd_stage *st = &p->stages[s];
        free(st->ranks);
        st->ranks = malloc(sizeof(int) * (size_t)(st->replicas > 0 ? st->replicas : 1));
        if (!st->ranks) return -1;
        for (int r = 0; r < st->replicas; r++) st->ranks[r] = total + r;
        total += st->replicas;
    }
    p->workers = total;
    pd_plan_set_warmup(p, 0);
    return 0;
}

int pd_plan_replicated(const pd_plan *p) {
    int any = 0;
    for (int s = 0; s < p->n_stages; s++) any |= p->stages[s].replicas > 1;
    return any && p->n_stages > 1;
}

void pd_plan_set_warmup(pd_plan *p, int replicated) {
    int total = 0, before = 0;
    for (int s = 0; s < p->n_stages; s++) total += p->stages[s].replicas;
    for (int s = 0; s < p->n_stages; s++) {
        pd_stage *st = &p->stages[s];
        before += st->replicas;
        /* PipeDream: (num_ranks - 1 - ranks in earlier stages) / ranks in this stage, which is
         * ceil(ranks after / ranks in this stage) */
        st->warmup = pd_warmup_depth(total - before, st->replicas, replicated);
        st->weight_versions = st->warmup + 1;
    }
}
