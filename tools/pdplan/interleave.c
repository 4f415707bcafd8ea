/* interleave.c: pdplan --schedule interleaved (Megatron-LM's interleaved 1F1B): the DP partitions
 * the model into p * v one-worker stages on a virtual cluster, and the plan maps them onto the p
 * workers, stage s on worker s mod p (docs/planner.md, "Interleaved"); code generation writes
 * the schedule (codegen/codegen.c). */
#include "interleave.h"

#include <stdio.h>

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

/* The simulated time per minibatch and peak memory per worker of plan p under its schedule. */
static int simulate_plan(double *ms, double *bytes, const pd_costgraph *g, const pd_cluster *c,
                         const pd_plan *p) {
    pd_sim_opts o = {.allreduce = PD_SIM_AR_GATHER, .microbatches = p->microbatches};
    pd_sim_result r;
    char why[512];
    if (pd_simulate(&r, NULL, g, c, p, p->schedule[0] ? p->schedule : "1f1b", 0, &o, why,
                    sizeof why))
        return 1;
    *ms = r.steady_ms;
    *bytes = r.peak_memory_bytes;
    pd_sim_result_free(&r);
    return 0;
}

int pd_interleave_consider(FILE *out, const pd_costgraph *g, const pd_cluster *c,
                           const pd_plan_opts *o, const pd_plan *chosen, int explain, int *M_out) {
    int P = pd_cluster_workers(c), best_v = 0, best_M = 0, tried = 0;
    double chosen_ms, chosen_bytes, best_ms = 0, best_bytes = 0, limit = c->memory_bytes;
    if (P < 2 || simulate_plan(&chosen_ms, &chosen_bytes, g, c, chosen)) return 0;
    pd_diag quiet = {.out = tmpfile()};
    if (!quiet.out) return 0;
    for (int v = 2; v <= 4; v += 2) {
        pd_cluster cv;
        int M;
        pd_plan_opts ov = *o;
        ov.straight = 1;
        ov.schedule = "interleaved";
        pd_plan *pv = pd_interleave_cluster(&cv, &M, c, v, 0, g, &quiet) ? NULL
                                                                          : pd_plan_dp(g, &cv, &ov, &quiet);
        for (int mi = 0; pv && mi < 2; mi++) {
            double ms, bytes;
            pd_interleave_apply(pv, g, c, v, M << mi);
            snprintf(pv->schedule, sizeof pv->schedule, "interleaved");
            if (simulate_plan(&ms, &bytes, g, c, pv)) continue;
            int fits = !(limit > 0) || bytes <= limit;
            tried++;
            if (explain)
                fprintf(out, "  interleaved, %d chunks per worker, M %d: %.4f ms per minibatch, "
                        "%.2f GB per worker%s\n", v, M << mi, ms, bytes / 1e9,
                        fits ? "" : " (over the limit)");
            if (fits && (!best_v || ms < best_ms * (1 - 1e-9)))
                best_v = v, best_M = M << mi, best_ms = ms, best_bytes = bytes;
        }
        pd_plan_free(pv);
    }
    fclose(quiet.out);
    if (!tried) {
        fprintf(out, "schedule: interleaved not considered (%d workers, %d layers: 2 chunks per "
                "worker need %d)\n", P, g->n, 2 * P);
        return 0;
    }
    if (best_v && best_ms < chosen_ms * (1 - 1e-9)) {
        fprintf(out, "schedule: interleaved, %d chunks per worker, M %d: %.4f ms per minibatch "
                "simulated, %.2f GB per worker: faster than %s at %.4f ms\n", best_v, best_M,
                best_ms, best_bytes / 1e9, chosen->schedule, chosen_ms);
        *M_out = best_M;
        return best_v;
    }
    if (best_v)
        fprintf(out, "schedule: interleaved at best %.4f ms per minibatch (%d chunks, M %d): "
                "slower than %s\n", best_ms, best_v, best_M, chosen->schedule);
    else
        fprintf(out, "schedule: interleaved does not fit the memory limit\n");
    return 0;
}
