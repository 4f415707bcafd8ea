/* choose.c: pdplan --schedule auto. Picks the schedule, the minibatches per batch and activation
 * recomputation together with the partition, around the DP (which it does not change): the DP
 * plans one partition under the memory limit (its memory model is 1f1b's) and one without it
 * (often faster, but only a leaner schedule may fit); every candidate (partition x schedule x
 * microbatches x recomputation) is simulated (planner/sim: time per minibatch, peak memory per
 * worker with the schedule's weight versions, stashed activations and deferred W buffers;
 * recomputation none, full or selective on every stage);
 * those over the limit are dropped and the fastest left wins, the simpler one on a tie (in the
 * order tried). Prints why, and with --explain every candidate. */
#include "choose.h"

#include <stdlib.h>
#include <string.h>

#include "planner/sim/simulate.h"
#include "runtime/schedule/schedule.h"

typedef struct {
    int plan;          /* 0: planned under the limit, 1: without */
    const char *schedule;
    int microbatches;  /* 0: none (1f1b) */
    int recompute;
    double ms, bytes;  /* simulated time per minibatch and peak memory per worker */
    int fits;
} candidate;

static int default_m(const pd_plan *p) {
    int reps[256], n = p->n_stages < 256 ? p->n_stages : 256;
    for (int s = 0; s < n; s++) reps[s] = p->stages[s].replicas;
    return pd_schedule_default_microbatches(n, reps);
}

/* 2bw's two versions need each stage's warm-up <= M / replicas. */
static int two_bw_fits(const pd_plan *p, int M) {
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].warmup > M / p->stages[s].replicas) return 0;
    return 1;
}

static int same_partition(const pd_plan *a, const pd_plan *b) {
    if (a->n_stages != b->n_stages) return 0;
    for (int s = 0; s < a->n_stages; s++) {
        const pd_stage *x = &a->stages[s], *y = &b->stages[s];
        if (x->n_nodes != y->n_nodes || x->replicas != y->replicas ||
            memcmp(x->nodes, y->nodes, sizeof(int) * (size_t)x->n_nodes))
            return 0;
    }
    return 1;
}

static void gb(char *buf, size_t n, double bytes) { snprintf(buf, n, "%.2f GB", bytes / 1e9); }

static void describe(FILE *out, const candidate *k, const char *const *plan_name) {
    char m[16] = "-";
    if (k->microbatches) snprintf(m, sizeof m, "%d", k->microbatches);
    fprintf(out, "%s partition, %s, M %s, %s", plan_name[k->plan], k->schedule, m,
            k->recompute ? (k->recompute == PD_RECOMPUTE_FULL ? "full recompute"
                                                              : "selective recompute")
                         : "no recompute");
}

pd_plan *pd_choose_schedule(FILE *out, const pd_costgraph *g, const pd_cluster *c, pd_plan *a,
                            pd_plan *b, int cpu, int explain, pd_diag *d) {
    static const char *const names[] = {"1f1b", "2bw", "flush", "gpipe", "zb-h1", "zb-h2"};
    static const char *const plan_name[2] = {"limited", "unlimited"};
    pd_plan *plans[2] = {a, b && (!a || !same_partition(a, b)) ? b : NULL};
    candidate *k = calloc(2 * 6 * 3 * 2, sizeof *k);
    if (!k) {
        pd_diag_error(d, "pdplan", 0, 0, "out of memory choosing the schedule");
        return NULL;
    }
    int n = 0, best = -1;
    double limit = c->memory_bytes;
    for (int pi = 0; pi < 2; pi++) {
        pd_plan *p = plans[pi];
        if (!p) continue;
        int M0 = default_m(p);
        for (int si = 0; si < 6; si++) {
            const char *s = names[si];
            int is_1f1b = !strcmp(s, "1f1b");
            if (!cpu && strcmp(s, "flush") && strcmp(s, "gpipe") && !is_1f1b) continue;
            for (int rc = 0; rc <= (cpu ? PD_RECOMPUTE_SELECTIVE : 0); rc++)
                for (int mi = 0; mi < (is_1f1b ? 1 : 2); mi++) {
                    int M = is_1f1b ? 0 : M0 << mi;
                    if (!strcmp(s, "2bw") && !two_bw_fits(p, M)) continue;
                    for (int st = 0; st < p->n_stages; st++) p->stages[st].recompute = rc;
                    pd_sim_opts o = {.allreduce = cpu ? PD_SIM_AR_GATHER : PD_SIM_AR_RING,
                                     .microbatches = M};
                    pd_sim_result r;
                    char why[512];
                    if (pd_simulate(&r, NULL, g, c, p, s, 0, &o, why, sizeof why)) {
                        pd_diag_error(d, "pdplan", 0, 0, "--schedule auto: simulating %s: %s", s,
                                      why);
                        free(k);
                        return NULL;
                    }
                    candidate *x = &k[n++];
                    *x = (candidate){pi, s, M, rc, r.steady_ms, r.peak_memory_bytes, 1};
                    x->fits = !(limit > 0) || r.peak_memory_bytes <= limit;
                    pd_sim_result_free(&r);
                    if (x->fits && (best < 0 || x->ms < k[best].ms * (1 - 1e-9))) best = n - 1;
                }
        }
    }
    char lb[32], mb[32];
    gb(lb, sizeof lb, limit);
    if (explain) {
        fprintf(out, "\nschedule choice (--schedule auto): %d candidates simulated, memory limit %s "
                     "per worker\n  %-10s %-7s %5s %-10s %14s %14s\n", n,
                limit > 0 ? lb : "none", "partition", "schedule", "M", "recompute",
                "ms/minibatch", "peak memory");
        for (int i = 0; i < n; i++) {
            char m[16] = "-";
            if (k[i].microbatches) snprintf(m, sizeof m, "%d", k[i].microbatches);
            gb(mb, sizeof mb, k[i].bytes);
            fprintf(out, "  %-10s %-7s %5s %-10s %14.4f %14s%s%s\n", plan_name[k[i].plan],
                    k[i].schedule, m, pd_recompute_name(k[i].recompute), k[i].ms, mb,
                    k[i].fits ? "" : "  over the limit", i == best ? "  <- chosen" : "");
        }
    }
    if (best < 0) {
        pd_diag_error(d, "pdplan", 0, 0, "--schedule auto: no schedule, microbatch count or "
                      "recomputation fits %s per worker on the DP's partitions", lb);
        free(k);
        return NULL;
    }
    const candidate *w = &k[best];
    int fastest = 0;
    for (int i = 1; i < n; i++)
        if (k[i].ms < k[fastest].ms * (1 - 1e-9)) fastest = i;
    gb(mb, sizeof mb, w->bytes);
    fprintf(out, "schedule: ");
    describe(out, w, plan_name);
    fprintf(out, ": %.4f ms per minibatch simulated, %s per worker", w->ms, mb);
    if (limit > 0) fprintf(out, " (limit %s)", lb);
    if (fastest != best) {
        gb(mb, sizeof mb, k[fastest].bytes);
        fprintf(out, "; the fastest of the %d candidates, ", n);
        describe(out, &k[fastest], plan_name);
        fprintf(out, " at %.4f ms, needs %s", k[fastest].ms, mb);
    } else {
        fprintf(out, ": the fastest of the %d candidates", n);
    }
    fprintf(out, "\n");
    pd_plan *p = plans[w->plan];
    snprintf(p->schedule, sizeof p->schedule, "%s", w->schedule);
    p->microbatches = w->microbatches;
    for (int st = 0; st < p->n_stages; st++) {
        p->stages[st].recompute = w->recompute;
        if (!strcmp(w->schedule, "2bw")) p->stages[st].weight_versions = 2;
    }
    /* the table and plan.yaml give each stage's memory under the chosen schedule (the DP's
     * figures are 1f1b's without recomputation) */
    pd_sim_opts o = {.allreduce = cpu ? PD_SIM_AR_GATHER : PD_SIM_AR_RING,
                     .microbatches = w->microbatches};
    pd_sim_result r;
    char why[512];
    if (!pd_simulate(&r, NULL, g, c, p, w->schedule, 0, &o, why, sizeof why)) {
        for (int st = 0; st < p->n_stages && st < r.n_stages; st++)
            p->stages[st].memory_bytes = r.stage_peak_memory[st];
        pd_sim_result_free(&r);
    }
    free(k);
    return p;
}
