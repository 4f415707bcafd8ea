/* interleave.c: pdplan --schedule interleaved (Megatron-LM's interleaved 1F1B): the DP partitions
 * the model into p * v one-worker stages on a virtual cluster, and the plan maps them onto the p
 * workers, stage s on worker s mod p (docs/planner.md, "Interleaved"). */
#include "interleave.h"

#include <stdio.h>
#include <stdlib.h>

#include "planner/cost/cost.h"
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
    out->memory_bytes = c->memory_bytes / v;
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

int pd_interleave_write_schedule(const char *outdir, const pd_plan *p, pd_diag *d) {
    int v = p->chunks, ranks = p->workers, M = p->microbatches;
    char why[512], path[4200];
    /* every run the runtime may make is whole batches and one shorter last batch */
    for (int steps = 0; steps <= 2 * M; steps++) {
        pd_schedule *t = pd_schedule_interleaved(ranks, v, steps, M);
        int built = t != NULL, bad = !t || pd_schedule_check(t, why, sizeof why);
        pd_schedule_free(t);
        if (bad) {
            pd_diag_error(d, "pdplan", 0, 0, "the interleaved schedule is unsafe for %d steps: "
                          "%s", steps, built ? why : "cannot build it");
            return 1;
        }
    }
    pd_schedule *s = pd_schedule_interleaved(ranks, v, 2 * M, M);
    snprintf(path, sizeof path, "%s/schedule", outdir);
    FILE *f = s ? fopen(path, "w") : NULL;
    if (f) pd_schedule_write(f, s);
    int bad = !f || ferror(f);
    if (f && fclose(f)) bad = 1;
    pd_schedule_free(s);
    if (bad) pd_diag_error(d, path, 0, 0, "cannot write the schedule");
    return bad;
}
