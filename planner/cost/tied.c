/* tied.c: the planner's count of tied weights (docs/formats.md, "Tied weights"). A tie whose two
 * layers land on different stages costs each of the two stages an exchange of the weight's
 * gradient at every update (runtime/executor_ties.c): its floats are the stage's tied_params, and
 * pd_tied_ms of its bytes at the bandwidth between the two stages is added to the stage's time
 * (and so to the bottleneck). The DP and the certificate price stages without it: ties are
 * counted on the plan they chose. */
#include <math.h>

#include "cost.h"
#include "planner/model/model.h"

static int stage_of(const pd_plan *p, int layer) {
    for (int s = 0; s < p->n_stages; s++)
        for (int k = 0; k < p->stages[s].n_nodes; k++)
            if (p->stages[s].nodes[k] + 1 == layer) return s; /* node v is layer v + 1 */
    return -1;
}

void pd_plan_count_ties(pd_plan *p, const pd_model *m, const pd_cluster *c) {
    int any = 0;
    for (int l = 1; l < m->n_layers; l++) {
        const pd_layer *L = &m->layers[l];
        if (!L->tied_to) continue;
        int a = stage_of(p, L->tied_to), b = stage_of(p, l);
        if (a < 0 || b < 0 || a == b) continue; /* one stage: summed there, no transfer */
        pd_stage *sa = &p->stages[a], *sb = &p->stages[b];
        /* the bandwidth of the innermost level that holds both stages' first ranks */
        double bw = c->bandwidth[pd_rank_level(c, sa->ranks ? sa->ranks[0] : 0,
                                               sb->ranks ? sb->ranks[0] : 0)];
        pd_stage *both[2] = {sa, sb};
        for (int k = 0; k < 2; k++) {
            pd_stage *st = both[k];
            double ms = pd_tied_ms(4.0 * (double)L->n_weight, bw, st->replicas);
            st->tied_params += L->n_weight;
            st->tied_ms += ms;
            st->time_ms += ms;
        }
        any = 1;
    }
    if (!any) return;
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].time_ms > p->bottleneck_ms) p->bottleneck_ms = p->stages[s].time_ms;
    /* the speedup the table and plan.yaml print is the tied plan's, not the DP's untied one */
    p->speedup_vs_data_parallel = p->bottleneck_ms > 0 ? p->data_parallel_ms / p->bottleneck_ms
                                                       : 0;
}

void pd_plan_count_params(pd_plan *p, const pd_model *m) {
    for (int s = 0; s < p->n_stages; s++) {
        pd_stage *st = &p->stages[s];
        if (!m) {
            st->params = llround(st->param_bytes / 4.0);
            continue;
        }
        st->params = 0;
        for (int k = 0; k < st->n_nodes; k++) {
            const pd_layer *L = &m->layers[st->nodes[k] + 1]; /* node v is layer v + 1 */
            st->params += L->n_bias + (L->tied_to ? 0 : L->n_weight);
        }
    }
}
