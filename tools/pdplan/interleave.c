/* interleave.c: pdplan --schedule interleaved (Megatron-LM's interleaved 1F1B): the DP partitions
 * the model into p * v one-worker stages on a virtual cluster, and the plan maps them onto the p
 * workers, stage s on worker s mod p (docs/planner.md, "Interleaved"); code generation writes
 * the schedule (codegen/codegen.c). */
#include "interleave.h"

#include "planner/cost/cost.h"
#include "planner/sim/simulate.h"
#include "runtime/schedule/schedule.h"

int pd_interleave_cluster(pd_cluster *out, int *M, const pd_cluster *c, int v, int microbatches,
                          const pd_costgraph *g, pd_diag *d) {
    int p = pd_cluster_workers(c), errors = 0;
    if (p < 2) {
        pd_diag_error(d, "pdplan", 0, 0, "--schedule interleaved needs at least 2 workers (the "
                      "cluster has %d)", p);
        return 1;
    }
    if (g->n < p * v) {
        pd_diag_error(d, "pdplan", 0, 0, "--schedule interleaved --chunks %d on %d workers needs "
                      "%d stages of at least one layer each, but the model has %d layers: "
                      "lower --chunks or the workers", v, p, p * v, g->n);
        errors++;
    }
    *M = microbatches > 0 ? microbatches : 4 * p;
    if (*M % p) {
        pd_diag_error(d, "pdplan", 0, 0, "--schedule interleaved: --microbatches %d is not a "
                      "multiple of the %d workers (Megatron's order runs them in groups of %d)",
                      *M, p, p);
        errors++;
    }
    *out = *c;
    out->n_levels = 1;
    out->count[0] = p * v;
    for (int l = 1; l < c->n_levels; l++)
        if (c->bandwidth[l] < out->bandwidth[0]) out->bandwidth[0] = c->bandwidth[l];
    out->memory_bytes = 0; /* the DP's memory model is 1f1b's (pd_interleave_memory checks) */
    return errors ? 1 : 0;
}

void pd_interleave_apply(pd_plan *p, const pd_costgraph *g, const pd_cluster *c, int v, int M) {
    int ranks = p->n_stages / v;
    p->chunks = v;
    p->workers = ranks;
    p->microbatches = M;
    p->straight = 1;
    double worst = 0;
    for (int r = 0; r < ranks; r++) {
        double t = 0;
        for (int s = r; s < p->n_stages; s += ranks) t += p->stages[s].time_ms;
        if (t > worst) worst = t;
    }
    for (int s = 0; s < p->n_stages; s++) {
        pd_stage *st = &p->stages[s];
        st->ranks[0] = s % ranks;
        st->warmup = pd_schedule_interleaved_warmup(ranks, v, s % ranks, M);
        st->weight_versions = 1;
    }
    p->bottleneck_ms = worst;
    p->data_parallel_ms = pd_data_parallel_ms(g, c, p->cost_model);
    p->speedup_vs_data_parallel = worst > 0 ? p->data_parallel_ms / worst : 0;
}

int pd_interleave_memory(pd_plan *p, const pd_costgraph *g, const pd_cluster *c, pd_diag *d) {
    pd_sim_opts o = {.allreduce = PD_SIM_AR_GATHER, .microbatches = p->microbatches};
    pd_sim_result r;
    char why[512];
    if (pd_simulate(&r, NULL, g, c, p, "interleaved", 0, &o, why, sizeof why)) {
        pd_diag_error(d, "pdplan", 0, 0, "simulating the interleaved plan: %s", why);
        return 1;
    }
    for (int s = 0; s < p->n_stages && s < r.n_stages; s++)
        p->stages[s].memory_bytes = r.stage_peak_memory[s];
    int over = c->memory_bytes > 0 && r.peak_memory_bytes > c->memory_bytes;
    if (over)
        pd_diag_error(d, "pdplan", 0, 0, "--schedule interleaved: the plan needs %.4g bytes on "
                      "its most loaded worker (simulated: its chunks' weights and the "
                      "activations they hold at once), over the limit of %.4g per worker",
                      r.peak_memory_bytes, c->memory_bytes);
    pd_sim_result_free(&r);
    return over;
}
