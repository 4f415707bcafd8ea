/* plan.c: freeing a plan, and the rank and 1F1B bookkeeping that depends only on the stages'
 * replica counts: contiguous ranks (stage 0's replicas first), warm-up depth and stashed weight
 * versions as PipeDream computes them. */
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
