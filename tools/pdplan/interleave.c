/* interleave.c: pdplan --schedule interleaved (Megatron-LM's interleaved 1F1B): the DP partitions
 * the model into p * v one-worker stages on a virtual cluster, and the plan maps them onto the p
 * workers, stage s on worker s mod p (docs/planner.md, "Interleaved"); code generation writes
 * the schedule (codegen/codegen.c). */
#include "interleave.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The price of stage_of (node -> stage, K stages in order, one worker each on cluster cv):
 * each stage's time as pd_plan_price gives it, summed per worker (stage s on worker s mod
 * ranks) into worker_ms; returns the slowest worker's. A node's output crosses the cuts from its
 * stage to its last consumer's, counted once per cut as pd_cut_bytes does. */
static double price_workers(double *stage_ms, double *worker_ms, const int *stage_of, int K,
                            int ranks, const pd_costgraph *g, const pd_cluster *cv,
                            pd_stage_sums *sums, int *last_use) {
    for (int q = 0; q < K; q++) sums[q] = (pd_stage_sums){.first = q == 0, .last = q == K - 1};
    for (int v = 0; v < g->n; v++) {
        pd_stage_sums *s = &sums[stage_of[v]];
        s->compute_ms += g->fwd_ms[v] + g->bwd_ms[v];
        s->param_bytes += g->param_bytes[v];
        s->act_bytes += g->act_bytes[v];
        last_use[v] = stage_of[v];
    }
    for (int e = 0; e < g->n_edges; e++)
        if (stage_of[g->dst[e]] > last_use[g->src[e]]) last_use[g->src[e]] = stage_of[g->dst[e]];
    for (int v = 0; v < g->n; v++)
        for (int q = stage_of[v]; q < last_use[v]; q++) sums[q].out_bytes += g->act_bytes[v];
    for (int q = 1; q < K; q++) sums[q].in_bytes = sums[q - 1].out_bytes;
    double worst = 0;
    for (int r = 0; r < ranks; r++) worker_ms[r] = 0;
    for (int q = 0; q < K; q++) {
        pd_stage_cost sc;
        pd_stage_cost_at(&sc, &sums[q], cv, g, q, 1, 0, 0);
        stage_ms[q] = sc.time_ms;
        worker_ms[q % ranks] += sc.time_ms;
    }
    for (int r = 0; r < ranks; r++)
        if (worker_ms[r] > worst) worst = worker_ms[r];
    return worst;
}

/* How balanced the workers are beyond the slowest: the sum of squares of their times (the
 * tie-break between moves that leave the slowest worker's time unchanged). */
static double spread(const double *worker_ms, int ranks) {
    double s = 0;
    for (int r = 0; r < ranks; r++) s += worker_ms[r] * worker_ms[r];
    return s;
}

/* A search state: node -> stage, the stages' sizes, and the scratch the pricing needs. */
typedef struct {
    const pd_costgraph *g;
    const pd_cluster *cv;
    int K, ranks;
    int *stage_of, *count, *last_use;
    double *stage_ms, *worker_ms;
    pd_stage_sums *sums;
    long evaluations, budget; /* prices computed, and the most allowed */
} balance;

/* (slowest worker, spread) of the current assignment. */
static void evaluate(balance *b, double *worst, double *sp) {
    *worst = price_workers(b->stage_ms, b->worker_ms, b->stage_of, b->K, b->ranks, b->g, b->cv,
                           b->sums, b->last_use);
    *sp = spread(b->worker_ms, b->ranks);
    b->evaluations++;
}

static int better(double t, double sp, double best, double best_sp) {
    return t < best * (1 - 1e-12) || (t <= best * (1 + 1e-12) && sp < best_sp * (1 - 1e-9));
}

/* The node boundary q | q + 1 would hand over next when it shifts by one: dir = +1, stage q's
 * highest-numbered node to q + 1 (nodes are topologically numbered, so none of its consumers
 * is in q); dir = -1, stage q + 1's lowest-numbered node to q. -1 when q's donor would be left
 * empty. Every stage stays the difference of two ideals, in order. */
static int next_to_move(const balance *b, int q, int dir) {
    int from = dir > 0 ? q : q + 1;
    if (b->count[from] < 2) return -1;
    if (dir > 0) {
        for (int u = b->g->n - 1; u >= 0; u--)
            if (b->stage_of[u] == from) return u;
    } else {
        for (int u = 0; u < b->g->n; u++)
            if (b->stage_of[u] == from) return u;
    }
    return -1;
}

/* Steepest descent over boundary shifts: a boundary moves by any number of nodes (each step as
 * next_to_move says), the best shift of all boundaries taken while it lowers the slowest
 * worker's time, or at equal time the spread. */
static void descend(balance *b, double *best, double *best_sp) {
    int K = b->K, *moved = malloc(sizeof(int) * (size_t)b->g->n);
    if (!moved) return;
    evaluate(b, best, best_sp);
    while (b->evaluations < b->budget) {
        int bq = -1, bdir = 0, bk = 0;
        double m_best = *best, m_sp = *best_sp;
        for (int q = 0; q + 1 < K; q++)
            for (int dir = -1; dir <= 1; dir += 2) {
                int k = 0, u;
                while ((u = next_to_move(b, q, dir)) >= 0 && b->evaluations < b->budget) {
                    int from = b->stage_of[u];
                    b->count[from]--, b->stage_of[u] = dir > 0 ? q + 1 : q, b->count[b->stage_of[u]]++;
                    moved[k++] = u;
                    double t, sp;
                    evaluate(b, &t, &sp);
                    if (better(t, sp, m_best, m_sp)) bq = q, bdir = dir, bk = k, m_best = t, m_sp = sp;
                }
                while (k > 0) { /* undo */
                    u = moved[--k];
                    b->count[b->stage_of[u]]--, b->stage_of[u] = dir > 0 ? q : q + 1, b->count[b->stage_of[u]]++;
                }
            }
        if (bq < 0) break;
        for (int k = 0; k < bk; k++) {
            int u = next_to_move(b, bq, bdir);
            b->count[b->stage_of[u]]--, b->stage_of[u] = bdir > 0 ? bq + 1 : bq, b->count[b->stage_of[u]]++;
        }
        *best = m_best, *best_sp = m_sp;
    }
    free(moved);
}

/* The nodes in topological order cut into K runs (each a valid stage: a run of a topological
 * order is the difference of two prefixes, which are ideals) at K - 1 distinct cut points drawn
 * by *seed: a start for the descent away from the DP's chunks. */
static void random_runs(balance *b, unsigned long long *seed) {
    int n = b->g->n, K = b->K;
    unsigned char *cut = calloc((size_t)n, 1);
    if (!cut) return;
    for (int made = 0; made < K - 1;) {
        *seed ^= *seed << 13, *seed ^= *seed >> 7, *seed ^= *seed << 17;
        int at = 1 + (int)(*seed % (unsigned long long)(n - 1)); /* a cut before node at */
        if (!cut[at]) cut[at] = 1, made++;
    }
    for (int q = 0; q < K; q++) b->count[q] = 0;
    for (int u = 0, q = 0; u < n; u++) {
        if (u && cut[u]) q++;
        b->stage_of[u] = q;
        b->count[q]++;
    }
    free(cut);
}

int pd_interleave_rebalance(pd_plan *p, const pd_costgraph *g, const pd_cluster *cv, int v) {
    int K = p->n_stages, ranks = K / v, n = g->n;
    if (ranks < 1 || K != ranks * v || n < K) return 0;
    /* lower bounds on the slowest worker's time of any K-stage plan: its slowest stage (at
     * least the DP's optimum, or its proven bound), and the average worker's compute */
    double chunk_bound = p->exact ? p->bottleneck_ms : p->lower_bound_ms, total = 0;
    for (int u = 0; u < n; u++) total += g->fwd_ms[u] + g->bwd_ms[u];
    p->lower_bound_ms = chunk_bound > total / ranks ? chunk_bound : total / ranks;
    if (p->cost_model != PD_COST_DEFAULT) return 0; /* compat: the original's chunks as they are */
    balance b = {.g = g, .cv = cv, .K = K, .ranks = ranks,
                 .budget = 1 + (long)(4e7 / (n + g->n_edges + K))}; /* about a second at most */
    b.stage_of = malloc(sizeof(int) * (size_t)n), b.count = calloc((size_t)K, sizeof(int));
    b.last_use = malloc(sizeof(int) * (size_t)n);
    b.stage_ms = malloc(sizeof(double) * (size_t)K), b.worker_ms = malloc(sizeof(double) * (size_t)ranks);
    b.sums = malloc(sizeof *b.sums * (size_t)K);
    int *dp_stage = malloc(sizeof(int) * (size_t)n), *best_stage = malloc(sizeof(int) * (size_t)n);
    int changed = 0;
    if (!b.stage_of || !b.count || !b.last_use || !b.stage_ms || !b.worker_ms || !b.sums ||
        !dp_stage || !best_stage)
        goto out;
    for (int q = 0; q < K; q++)
        for (int k = 0; k < p->stages[q].n_nodes; k++) dp_stage[p->stages[q].nodes[k]] = q;
    /* the descent from the DP's chunks, then from random cuts while the budget lasts (an
     * iterated local search); the best wins, the DP's start on a tie */
    double best_ms, best_sp, ms, sp;
    for (int q = 0; q < K; q++) b.count[q] = p->stages[q].n_nodes;
    memcpy(b.stage_of, dp_stage, sizeof(int) * (size_t)n);
    descend(&b, &best_ms, &best_sp);
    memcpy(best_stage, b.stage_of, sizeof(int) * (size_t)n);
    unsigned long long seed = 0x2545f4914f6cdd1dull;
    for (int start = 0; start < 200 && b.evaluations < b.budget; start++) {
        random_runs(&b, &seed);
        descend(&b, &ms, &sp);
        if (better(ms, sp, best_ms, best_sp)) {
            best_ms = ms, best_sp = sp;
            memcpy(best_stage, b.stage_of, sizeof(int) * (size_t)n);
        }
    }
    memcpy(b.stage_of, best_stage, sizeof(int) * (size_t)n);
    for (int u = 0; u < n; u++) changed += b.stage_of[u] != dp_stage[u];
    if (changed) { /* the stages' node lists, ascending, and their prices */
        for (int q = 0; q < K; q++) b.count[q] = 0;
        for (int u = 0; u < n; u++) b.count[b.stage_of[u]]++;
        for (int q = 0; q < K; q++) {
            pd_stage *st = &p->stages[q];
            int *nodes = realloc(st->nodes, sizeof(int) * (size_t)(b.count[q] ? b.count[q] : 1));
            if (!nodes) { changed = 0; goto out; }
            st->nodes = nodes;
            st->n_nodes = 0;
        }
        for (int u = 0; u < n; u++) {
            pd_stage *st = &p->stages[b.stage_of[u]];
            st->nodes[st->n_nodes++] = u;
        }
        pd_plan_price(p, g, cv);
    }
out:
    free(b.stage_of); free(b.count); free(b.last_use); free(b.stage_ms); free(b.worker_ms);
    free(b.sums); free(dp_stage); free(best_stage);
    return changed;
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
    p->exact = p->lower_bound_ms > 0 && worst <= p->lower_bound_ms * (1 + 1e-9);
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
        if (pv) pd_interleave_rebalance(pv, g, &cv, v);
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
