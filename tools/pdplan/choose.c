/* choose.c: planning under a schedule's memory model, and pdplan --schedule auto. The DP checks
 * each stage's memory under the schedule it is told (the cluster's pd_mem_model: weight versions,
 * the activations of the minibatches in flight, recomputation, zb's deferred W buffers;
 * planner/cost/memory.h), so --schedule S --memory L plans the best partition that S fits in.
 * --schedule auto runs the DP once per candidate (schedule x microbatches x recomputation), and
 * with a limit also without it (and with recomputation also pricing it without the recomputed
 * forward): the DP's steady-state price sees neither the bubble nor the CPU runtime's gather
 * all-reduce, so a partition it prices higher can simulate faster and still fit. It simulates
 * each plan (time per minibatch with the warm-up, drain and flush bubbles; peak memory per
 * worker, the same function of the in-flight count the DP checked), and under a limit also each
 * plan's per-stage recomputation mix (each stage the cheapest mode that fits), and keeps the
 * fastest that fits, the simpler one on a tie (in the order tried). Prints why, and with
 * --explain every candidate. pd_backend_runs: what each backend's executor runs. */
#include "choose.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"
#include "planner/cost/memory.h"
#include "planner/sim/simulate.h"
#include "runtime/schedule/fnv1a.h"
#include "runtime/schedule/schedule.h"

pd_costgraph *pd_recompute_graph(const pd_costgraph *g, int mode) {
    pd_costgraph *r = malloc(sizeof *r);
    double *b = malloc(sizeof(double) * (size_t)(g->n > 0 ? g->n : 1));
    if (!r || !b) {
        free(r);
        free(b);
        return NULL;
    }
    *r = *g;
    for (int v = 0; v < g->n; v++) /* selective: only the layers it does not keep run again */
        b[v] = g->bwd_ms[v] + (pd_node_recomputed(g, v, mode) ? g->fwd_ms[v] : 0);
    r->bwd_ms = b;
    return r;
}

pd_costgraph *pd_recompute_graph_of(const pd_costgraph *g, const pd_plan *p) {
    pd_costgraph *r = pd_recompute_graph(g, PD_RECOMPUTE_NONE);
    for (int s = 0; r && s < p->n_stages; s++) {
        const pd_stage *st = &p->stages[s];
        for (int i = 0; i < st->n_nodes; i++)
            if (pd_node_recomputed(g, st->nodes[i], st->recompute))
                r->bwd_ms[st->nodes[i]] += g->fwd_ms[st->nodes[i]];
    }
    return r;
}

void pd_recompute_graph_free(pd_costgraph *r) {
    if (!r) return;
    free(r->bwd_ms);
    free(r);
}

static int plan_lcm(const pd_plan *p) {
    int reps[256], n = p->n_stages < 256 ? p->n_stages : 256;
    for (int s = 0; s < n; s++) reps[s] = p->stages[s].replicas;
    return pd_schedule_replica_lcm(n, reps);
}

static int default_m(const pd_plan *p) {
    int reps[256], n = p->n_stages < 256 ? p->n_stages : 256;
    for (int s = 0; s < n; s++) reps[s] = p->stages[s].replicas;
    return pd_schedule_default_microbatches(n, reps);
}

/* The microbatches plan p runs with: m_fixed rounded up to a multiple of every replica count
 * (as the simulator and the runtime take it), else m_times x the default. */
static int plan_m(const pd_plan *p, int m_fixed, int m_times) {
    if (m_fixed > 0) {
        int l = plan_lcm(p);
        return (m_fixed + l - 1) / l * l;
    }
    return m_times * default_m(p);
}

/* Whether every stage of p fits c's limit under schedule name's memory with M microbatches
 * (compat: the original's check, which the DP made, as the plan's figures below keep it). */
static int fits_with_m(const pd_plan *p, const pd_costgraph *g, const pd_cluster *c,
                       const pd_plan_opts *o, const char *name, int rc, int M) {
    if (!(c->memory_bytes > 0) || o->cost_model == PD_COST_PIPEDREAM) return 1;
    pd_mem_model mm = pd_mem_model_of(name, M, rc, 0);
    for (int s = 0; s < p->n_stages; s++)
        if (pd_plan_stage_memory(p, s, g, &mm) > c->memory_bytes) return 0;
    return 1;
}

/* pd_plan_schedule with the largest warm-up bounded by B (memory.h; only zb's memory reads it). */
static pd_plan *plan_bound(const pd_costgraph *g, const pd_costgraph *g_dp, const pd_cluster *c,
                           const pd_plan_opts *o, const char *name, int rc, int m_fixed,
                           int m_times, int B, pd_cluster *planned, pd_diag *d) {
    int is_1f1b = !strcmp(name, "1f1b"), N = pd_cluster_workers(c);
    int M = is_1f1b ? 0 : m_fixed > 0 ? m_fixed : m_times * 4 * (N < 4 ? N : 4);
    pd_cluster cc = *c, best_cc = *c;
    pd_plan *p = NULL, *best = NULL; /* best: of the plans the DP made for another M, the
                                        fastest that fits with its own M */
    int best_M = 0;
    for (int it = 0; it < 4; it++) {
        cc.mem = pd_mem_model_of(name, M, rc, B);
        pd_diag quiet = {.out = it ? tmpfile() : NULL}; /* the first try's diagnostics only */
        p = pd_plan_dp(g_dp, &cc, o, it && quiet.out ? &quiet : d);
        if (quiet.out) fclose(quiet.out);
        if (!p || is_1f1b) break;
        int Mp = plan_m(p, m_fixed, m_times);
        if (Mp == M || it == 3) { /* the last: its own M below, checked against the limit */
            M = Mp;
            break;
        }
        if (fits_with_m(p, g, c, o, name, rc, Mp) &&
            (!best || p->bottleneck_ms < best->bottleneck_ms * (1 - 1e-12))) {
            pd_plan_free(best);
            best = p, best_M = Mp, best_cc = cc;
        } else {
            pd_plan_free(p);
        }
        p = NULL;
        M = Mp;
    }
    /* the M the DP planned for and the plan's own disagree (its replica counts round M to
     * another value) after four tries: the best plan seen that fits with its own M */
    if (best && (!p || (!is_1f1b && !fits_with_m(p, g, c, o, name, rc, M)) ||
                 best->bottleneck_ms < p->bottleneck_ms * (1 - 1e-12))) {
        pd_plan_free(p);
        p = best, M = best_M, cc = best_cc;
    } else {
        pd_plan_free(best);
    }
    if (!p) {
        if (!pd_diag_errors(d))
            pd_diag_error(d, "pdplan", 0, 0, "--schedule %s: no plan fits the memory limit with "
                          "its own microbatches per batch (the DP's guesses did not settle): "
                          "pass --microbatches", name);
        return NULL;
    }
    *planned = cc;
    snprintf(p->schedule, sizeof p->schedule, "%s", name);
    if (is_1f1b) M = m_fixed > 0 ? plan_m(p, m_fixed, 1) : 0;
    /* plan.yaml names the microbatches unless they are the default */
    p->microbatches = m_fixed > 0 || m_times != 1 ? M : 0;
    pd_mem_model mm = pd_mem_model_of(name, M, rc, 0);
    int over = -1;
    for (int s = 0; s < p->n_stages; s++) {
        pd_stage *st = &p->stages[s];
        st->recompute = rc;
        if (!strcmp(name, "2bw")) st->weight_versions = 2;
        if (o->cost_model == PD_COST_PIPEDREAM) continue; /* the original's check, 1f1b's */
        st->memory_bytes = pd_plan_stage_memory(p, s, g, &mm);
        if (c->memory_bytes > 0 && st->memory_bytes > c->memory_bytes && over < 0) over = s;
    }
    if (!strcmp(name, "2bw")) { /* a replicated pipeline's deeper warm-up (plan.h,
                                   pd_warmup_depth) where the batch holds it, else PipeDream's */
        int deep_fits = 1;
        for (int s = 0; s < p->n_stages; s++)
            deep_fits &= p->stages[s].warmup <= M / p->stages[s].replicas;
        if (!deep_fits) {
            pd_plan_set_warmup(p, 0);
            for (int s = 0; s < p->n_stages; s++) {
                p->stages[s].weight_versions = 2;
                if (o->cost_model != PD_COST_PIPEDREAM)
                    p->stages[s].memory_bytes = pd_plan_stage_memory(p, s, g, &mm);
            }
        }
    }
    if (!strcmp(name, "2bw"))
        for (int s = 0; s < p->n_stages; s++)
            if (p->stages[s].warmup > M / p->stages[s].replicas) {
                pd_diag_error(d, "pdplan", 0, 0, "--schedule 2bw: stage %d has a warm-up of %d "
                              "on %d replica%s, more than the %d microbatches per batch allow "
                              "with two weight versions; raise --microbatches", s,
                              p->stages[s].warmup, p->stages[s].replicas,
                              p->stages[s].replicas > 1 ? "s" : "", M);
                pd_plan_free(p);
                return NULL;
            }
    if (g_dp != g) { /* the baseline: data parallelism keeps its activations, no recompute */
        p->data_parallel_ms = pd_data_parallel_ms(g, c, o->cost_model);
        p->speedup_vs_data_parallel =
            p->bottleneck_ms > 0 ? p->data_parallel_ms / p->bottleneck_ms : 0;
    }
    if (over >= 0) { /* the DP planned for another M than the plan's replica counts give */
        pd_diag_error(d, "pdplan", 0, 0, "--schedule %s: stage %d needs %.4g bytes per worker "
                      "with %d microbatches per batch (a multiple of every replica count), over "
                      "the limit of %.4g; the DP planned for its memory with %d: pass "
                      "--microbatches", name, over, p->stages[over].memory_bytes, M,
                      c->memory_bytes, cc.mem.microbatches);
        pd_plan_free(p);
        return NULL;
    }
    return p;
}

static pd_plan *plan_depth(const pd_costgraph *g, const pd_costgraph *g_dp, const pd_cluster *c,
                           const pd_plan_opts *o, const char *name, int rc, int m_fixed,
                           int m_times, pd_cluster *planned, pd_diag *d) {
    int N = pd_cluster_workers(c);
    if (!pd_schedule_splits_backward(name) || !(c->memory_bytes > 0) ||
        o->cost_model == PD_COST_PIPEDREAM)
        return plan_bound(g, g_dp, c, o, name, rc, m_fixed, m_times, N - 1, planned, d);
    /* zb: every stage keeps the pipeline's largest warm-up + 1 minibatches in flight, which no
     * one stage knows. The DP under a bound B plans over the plans whose warm-ups are all at most
     * B, each stage's memory counted at B; the best over B = N - 1, (N - 1) / 2, ..., 0 wins
     * (each plan's memory is then recounted with its own largest warm-up). */
    pd_diag quiet = {.out = tmpfile()};
    if (!quiet.out) return plan_bound(g, g_dp, c, o, name, rc, m_fixed, m_times, N - 1, planned, d);
    pd_plan *best = NULL;
    for (int B = N - 1;; B /= 2) {
        pd_cluster cp;
        pd_plan *p = plan_bound(g, g_dp, c, o, name, rc, m_fixed, m_times, B, &cp, &quiet);
        if (p && (!best || p->bottleneck_ms < best->bottleneck_ms * (1 - 1e-12))) {
            pd_plan_free(best);
            best = p;
            *planned = cp;
        } else {
            pd_plan_free(p);
        }
        if (B == 0) break;
    }
    fclose(quiet.out);
    if (!best) /* the DP's own diagnostic, under the loosest bound */
        return plan_bound(g, g_dp, c, o, name, rc, m_fixed, m_times, N - 1, planned, d);
    return best;
}

/* The simulated time per minibatch of plan p under its schedule, with the all-reduce the price
 * assumes (the ring); INFINITY when the simulation fails. */
static double simulated_ms(const pd_costgraph *g, const pd_cluster *c, const pd_plan *p,
                           const char *name) {
    pd_sim_opts so = {.allreduce = PD_SIM_AR_RING, .microbatches = p->microbatches};
    pd_sim_result r;
    char why[256];
    if (pd_simulate(&r, NULL, g, c, p, name, 0, &so, why, sizeof why)) return INFINITY;
    double ms = r.steady_ms;
    pd_sim_result_free(&r);
    return ms;
}

pd_plan *pd_plan_schedule(const pd_costgraph *g, const pd_costgraph *g_dp, const pd_cluster *c,
                          const pd_plan_opts *o, const char *name, int rc, int m_fixed,
                          int m_times, pd_cluster *planned, pd_diag *d) {
    pd_plan *p = plan_depth(g, g_dp, c, o, name, rc, m_fixed, m_times, planned, d);
    /* Under a memory limit a replicated pipeline may fit only at PipeDream's warm-up depth, at
     * which its replicas wait on their round trips and it runs slower than its steady-state
     * price (plan.h, pd_warmup_depth); the DP's plan at the deeper depth reaches its price but
     * may be far slower (VGG-16 on 16 H200s at 8 GB: 411 ms against about 60). The DP plans
     * again at PipeDream's depth, both are simulated (1f1b and 2bw, whose time is the steady
     * state), and the faster wins; a shallow plan's bottleneck is then its simulated time. */
    int async = !strcmp(name, "1f1b") || !strcmp(name, "2bw");
    if (!async || !(c->memory_bytes > 0) || o->cost_model != PD_COST_DEFAULT || o->straight ||
        o->shallow_warmup)
        return p;
    pd_plan_opts os = *o;
    os.shallow_warmup = 1;
    pd_cluster cs;
    pd_diag quiet = {.out = tmpfile()};
    pd_plan *s = quiet.out ? plan_depth(g, g_dp, c, &os, name, rc, m_fixed, m_times, &cs, &quiet)
                           : NULL;
    if (quiet.out) fclose(quiet.out);
    if (!s || !pd_plan_replicated(s)) {
        pd_plan_free(s);
        return p;
    }
    double s_ms = simulated_ms(g, c, s, name), p_ms = p ? simulated_ms(g, c, p, name) : INFINITY;
    if (!(s_ms < p_ms * (1 - 1e-9))) {
        pd_plan_free(s);
        return p;
    }
    pd_plan_free(p);
    s->lower_bound_ms = 0; /* the simulated time is no DP objective: no bound to state */
    s->simulated_ms = s_ms;
    s->stages_ms = s->bottleneck_ms;
    s->bottleneck_ms = s_ms;
    s->exact = 0;
    s->speedup_vs_data_parallel = s_ms > 0 ? s->data_parallel_ms / s_ms : 0;
    *planned = cs;
    return s;
}

int pd_backend_runs(const char *backend, const char *schedule, int recompute) {
    static const char *const cuda_ok[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw",
                                          "interleaved"};
    if (recompute < PD_RECOMPUTE_NONE || recompute > PD_RECOMPUTE_SELECTIVE) return 0;
    if (!backend || strcmp(backend, "cuda")) return 1; /* the CPU executors run them all */
    int known = 0;
    for (size_t i = 0; i < sizeof cuda_ok / sizeof *cuda_ok; i++) known |= !strcmp(schedule, cuda_ok[i]);
    if (!known || recompute == PD_RECOMPUTE_SELECTIVE) return 0; /* no forward_recompute */
    return !(recompute && pd_schedule_splits_backward(schedule)); /* W would read overwritten
                                                                     activations */
}

typedef struct {
    const char *schedule;
    int m_times;       /* 0: 1f1b (no batches) */
    int recompute;     /* the parent's mode, for a mix */
    int unlimited;     /* 1: the partition the DP plans without the memory limit */
    int priced_rc;     /* recompute: 1 the DP priced the recomputed forward, 0 it did not */
    int microbatches;  /* the plan's */
    double ms, bytes;  /* simulated time per minibatch and peak memory per worker */
    double dp_ms;      /* the DP's bottleneck (steady state, no bubble); a mix's: its price with
                          each stage's mode */
    int stages, fits;  /* fits: 0 when the DP found no plan under the model */
    int mix;           /* 1: the per-stage mix derived from the candidate before it (derive_mix) */
    char modes[96];    /* a mix's modes in stage order, run-length: "3f,2s,11n" */
    uint64_t key;      /* the plan's schedule, M, partition and modes (plan_key) */
} candidate;

static void gb(char *buf, size_t n, double bytes) { snprintf(buf, n, "%.2f GB", bytes / 1e9); }

static void describe(FILE *out, const candidate *k) {
    char m[16] = "-";
    if (k->microbatches) snprintf(m, sizeof m, "%d", k->microbatches);
    if (k->mix) {
        fprintf(out, "%s, M %s, recomputation per stage (%s: each stage the cheapest mode that "
                "fits), the partition of %s recomputation planned %s%s", k->schedule, m,
                k->modes, k->recompute ? pd_recompute_name(k->recompute) : "no",
                k->unlimited ? "without the limit" : "under its memory model",
                k->recompute && !k->priced_rc ? " and priced without recomputation" : "");
        return;
    }
    fprintf(out, "%s, M %s, %s recomputation, the partition planned %s%s", k->schedule, m,
            k->recompute ? pd_recompute_name(k->recompute) : "no",
            k->unlimited ? "without the limit" : "under its memory model",
            k->recompute && !k->priced_rc ? " and priced without recomputation" : "");
}

/* The search's state: the inputs, the candidates so far, the best plan. */
typedef struct {
    const pd_costgraph *g, *g_rc, *g_sel; /* g_sel: selective's (NULL: not tried) */
    const pd_cluster *c;
    const pd_plan_opts *o;
    int cpu;
    pd_diag quiet;     /* the DP's diagnostics of candidates that fit no plan */
    candidate k[2 * 6 * 3 * 2 * 3 * 2]; /* each with at most one mix after it */
    int n, best;
    pd_plan *best_plan;
    pd_cluster planned;
    int planned_rc;    /* the best plan's DP priced recomputation (its graph was g_rc) */
} search;

/* A deep copy of p; NULL on OOM. */
static pd_plan *plan_copy(const pd_plan *p) {
    pd_plan *x = malloc(sizeof *x);
    pd_stage *st = calloc((size_t)(p->n_stages > 0 ? p->n_stages : 1), sizeof *st);
    if (!x || !st) {
        free(x);
        free(st);
        return NULL;
    }
    *x = *p;
    x->stages = st;
    for (int s = 0; s < p->n_stages; s++) {
        const pd_stage *a = &p->stages[s];
        st[s] = *a;
        st[s].nodes = malloc(sizeof(int) * (size_t)(a->n_nodes > 0 ? a->n_nodes : 1));
        st[s].ranks = malloc(sizeof(int) * (size_t)(a->replicas > 0 ? a->replicas : 1));
        if (!st[s].nodes || !st[s].ranks) {
            x->n_stages = s + 1;
            pd_plan_free(x);
            return NULL;
        }
        memcpy(st[s].nodes, a->nodes, sizeof(int) * (size_t)a->n_nodes);
        memcpy(st[s].ranks, a->ranks, sizeof(int) * (size_t)a->replicas);
    }
    return x;
}

/* FNV-1a (pd_fnv1a) over what a simulated candidate is: schedule, M, each stage's nodes,
 * replicas, warm-up and mode (a mix that is another candidate's plan is not simulated twice). */
static uint64_t plan_key(const pd_plan *p, const char *schedule, int M) {
    uint64_t h = pd_fnv1a(schedule, strlen(schedule), PD_FNV1A_BASIS);
    h = pd_fnv1a(&M, sizeof M, h);
    for (int s = 0; s < p->n_stages; s++) {
        const pd_stage *st = &p->stages[s];
        int shape[4] = {st->n_nodes, st->replicas, st->warmup, st->recompute};
        h = pd_fnv1a(shape, sizeof shape, h);
        h = pd_fnv1a(st->nodes, sizeof(int) * (size_t)st->n_nodes, h);
    }
    return h;
}

/* The per-stage mix of plan p (schedule s, M microbatches; 0 for 1f1b) under the limit: every
 * stage takes the mode, of those the backend runs under s, that runs the least forward again
 * (pd_stage_recompute_ms: none, then selective, then full) among those under which its memory
 * fits the limit, by the memory function the DP checks and the simulator reports
 * (pd_plan_stage_memory with the stage's mode). A copy of p with those modes, their memory and
 * its price over each stage's mode (pd_plan_price over the graph whose backwards pay what each
 * stage recomputes); NULL when some stage fits under no mode, when every stage takes p's own
 * mode (p itself), or on OOM. */
static pd_plan *derive_mix(const search *q, const pd_plan *p, const char *s, int M) {
    int n = p->n_stages, *mode = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)), same = 1;
    double *mem = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    const char *be = q->cpu ? "cpu" : "cuda";
    pd_plan *x = NULL;
    pd_costgraph *gm = NULL;
    if (!mode || !mem) goto out;
    for (int st = 0; st < n; st++) {
        double best_t = INFINITY;
        mode[st] = -1;
        for (int rc = PD_RECOMPUTE_NONE; rc <= PD_RECOMPUTE_SELECTIVE; rc++) {
            if (!pd_backend_runs(be, s, rc) || (rc == PD_RECOMPUTE_SELECTIVE && !q->g_sel)) continue;
            pd_mem_model mm = pd_mem_model_of(s, M, rc, 0);
            double b = pd_plan_stage_memory(p, st, q->g, &mm);
            double t = pd_stage_recompute_ms(q->g, p->stages[st].nodes, p->stages[st].n_nodes, rc);
            if (b <= q->c->memory_bytes && (t < best_t || (t == best_t && b < mem[st])))
                best_t = t, mode[st] = rc, mem[st] = b;
        }
        if (mode[st] < 0) goto out;
        same &= mode[st] == p->stages[st].recompute;
    }
    if (same || !(x = plan_copy(p))) goto out;
    for (int st = 0; st < n; st++) {
        x->stages[st].recompute = mode[st];
        x->stages[st].memory_bytes = mem[st];
    }
    if (!(gm = pd_recompute_graph_of(q->g, x))) {
        pd_plan_free(x);
        x = NULL;
        goto out;
    }
    x->bottleneck_ms = x->stages_ms = pd_plan_price(x, gm, q->c);
    x->lower_bound_ms = 0; /* no DP objective: the bound was the parent's */
    x->speedup_vs_data_parallel = x->bottleneck_ms > 0 ? x->data_parallel_ms / x->bottleneck_ms : 0;
out:
    free(mode);
    free(mem);
    pd_recompute_graph_free(gm);
    return x;
}

/* "3f,2s,11n": p's modes in stage order, run-length. */
static void modes_str(char *buf, size_t size, const pd_plan *p) {
    size_t at = 0;
    buf[0] = 0;
    for (int s = 0; s < p->n_stages;) {
        int e = s;
        while (e < p->n_stages && p->stages[e].recompute == p->stages[s].recompute) e++;
        int w = snprintf(buf + at, size - at, "%s%d%c", at ? "," : "", e - s,
                         pd_recompute_name(p->stages[s].recompute)[0]);
        if (w < 0 || (size_t)w >= size - at) { /* too many runs to show */
            snprintf(buf + (size > 4 ? size - 4 : 0), size > 4 ? 4 : size, "...");
            return;
        }
        at += (size_t)w;
        s = e;
    }
}

/* Simulates plan p (owned) as candidate x; the best so far keeps it. 0, or 1 when the
 * simulation fails (why). */
static int simulate_candidate(search *q, pd_plan *p, candidate *x, const pd_cluster *cp,
                              int planned_rc, char *why, int why_size) {
    pd_sim_opts so = {.allreduce = q->cpu ? PD_SIM_AR_GATHER : PD_SIM_AR_RING,
                      .microbatches = p->microbatches};
    pd_sim_result r;
    if (pd_simulate(&r, NULL, q->g, q->c, p, x->schedule, 0, &so, why, why_size)) {
        pd_plan_free(p);
        return 1;
    }
    x->microbatches = p->microbatches ? p->microbatches : x->m_times ? default_m(p) : 0;
    x->ms = r.steady_ms;
    x->bytes = r.peak_memory_bytes;
    x->dp_ms = p->bottleneck_ms;
    x->stages = p->n_stages;
    x->fits = !(q->c->memory_bytes > 0) || r.peak_memory_bytes <= q->c->memory_bytes;
    pd_sim_result_free(&r);
    if (x->mix && p->simulated_ms > 0) { /* a shallow plan's bottleneck is its simulated time */
        p->simulated_ms = p->bottleneck_ms = x->ms;
        p->speedup_vs_data_parallel = x->ms > 0 ? p->data_parallel_ms / x->ms : 0;
    }
    /* the faster; on a tie the one tried first, but a uniform plan before a mix */
    const candidate *b = q->best >= 0 ? &q->k[q->best] : NULL;
    if (x->fits && (!b || x->ms < b->ms * (1 - 1e-9) ||
                    (b->mix && !x->mix && x->ms <= b->ms * (1 + 1e-9)))) {
        q->best = (int)(x - q->k);
        pd_plan_free(q->best_plan);
        q->best_plan = p;
        q->planned = *cp;
        q->planned_rc = planned_rc;
    } else {
        pd_plan_free(p);
    }
    return 0;
}

/* Plans and simulates one candidate, and, under a limit, where the plan recomputes or does not
 * fit, its per-stage mix (derive_mix) after it. 0, or 1 when a simulation fails (why). */
static int try_candidate(search *q, const char *s, int mt, int rc, int unlimited, int priced_rc,
                         char *why, int why_size) {
    pd_cluster cp, cu = *q->c;
    cu.memory_bytes = 0;
    const pd_costgraph *g_dp = !priced_rc ? q->g : rc == PD_RECOMPUTE_SELECTIVE ? q->g_sel : q->g_rc;
    /* a hundred candidates: no lattice search over the state cap (its seconds each); the
     * plans are the DP's over its family, exact or with their gap, as plan.yaml says */
    pd_plan_opts oc = *q->o;
    oc.lattice = -1;
    pd_plan *p = pd_plan_schedule(q->g, g_dp, unlimited ? &cu : q->c, &oc,
                                  s, rc, 0, mt, &cp, &q->quiet);
    candidate *x = &q->k[q->n++];
    *x = (candidate){.schedule = s, .m_times = mt, .recompute = rc, .unlimited = unlimited,
                     .priced_rc = priced_rc};
    if (!p) return 0;
    int M = mt ? (p->microbatches ? p->microbatches : default_m(p)) : 0;
    x->key = plan_key(p, s, M);
    /* the mix before the parent's simulation, which may keep the plan as the best: none where
     * every stage takes p's own mode (a plan without recomputation that fits, or one whose
     * every stage needs its mode) */
    int derive = q->c->memory_bytes > 0 && q->o->cost_model != PD_COST_PIPEDREAM;
    pd_plan *mix = derive ? derive_mix(q, p, s, M) : NULL;
    if (simulate_candidate(q, p, x, &cp, priced_rc, why, why_size)) {
        pd_plan_free(mix);
        return 1;
    }
    if (!mix) return 0;
    uint64_t key = plan_key(mix, s, M);
    for (int i = 0; i < q->n; i++)
        if (q->k[i].stages && q->k[i].key == key) { /* another candidate's plan */
            pd_plan_free(mix);
            return 0;
        }
    candidate *y = &q->k[q->n++];
    *y = *x;
    y->mix = 1, y->key = key;
    modes_str(y->modes, sizeof y->modes, mix);
    return simulate_candidate(q, mix, y, &cp, -2, why, why_size);
}

static void print_candidates(FILE *out, const search *q, const char *lb) {
    char mb[32];
    fprintf(out, "\nschedule choice (--schedule auto): %d candidates, each planned by the DP and "
                 "simulated; memory limit %s per worker\n  %-7s %5s %-10s %-9s %6s %10s %13s "
                 "%12s\n", q->n, q->c->memory_bytes > 0 ? lb : "none", "schedule", "M",
            "recompute", "partition", "stages", "DP ms", "simulated ms", "peak memory");
    for (int i = 0; i < q->n; i++) {
        const candidate *k = &q->k[i];
        char m[16] = "-";
        if (k->microbatches) snprintf(m, sizeof m, "%d", k->microbatches);
        else if (k->m_times) snprintf(m, sizeof m, "%dx", k->m_times);
        int unpriced = k->recompute && !k->priced_rc; /* recomputes, priced without it */
        const char *part = k->unlimited ? (unpriced ? "unlim,-rc" : "unlimited")
                                        : (unpriced ? "model,-rc" : "its model");
        if (!k->stages) {
            fprintf(out, "  %-7s %5s %-10s %-9s %6s %10s %13s %12s  no plan fits its memory "
                    "model%s\n", k->schedule, m, pd_recompute_name(k->recompute), part, "-", "-", "-",
                    "-", strcmp(k->schedule, "2bw") ? "" : " (or M / replicas < a warm-up)");
            continue;
        }
        gb(mb, sizeof mb, k->bytes);
        char mix[112] = "";
        if (k->mix) snprintf(mix, sizeof mix, "  modes %s", k->modes);
        fprintf(out, "  %-7s %5s %-10s %-9s %6d %10.4f %13.4f %12s%s%s%s\n", k->schedule, m,
                k->mix ? "mix" : pd_recompute_name(k->recompute), part, k->stages, k->dp_ms, k->ms,
                mb, k->fits ? "" : "  over the limit", mix, i == q->best ? "  <- chosen" : "");
    }
    fprintf(out, "  (partition: planned by the DP under the candidate's memory model, or without "
                 "the limit; -rc: priced without the recomputed forward; mix: the partition of "
                 "the row above, each stage the mode that runs the least forward again among "
                 "those under which it fits the limit, modes per stage n none, s selective, "
                 "f full)\n");
}

pd_plan *pd_choose_schedule(FILE *out, const pd_costgraph *g, const pd_costgraph *g_rc,
                            const pd_costgraph *g_sel, const pd_cluster *c, const pd_plan_opts *o, int cpu, int explain,
                            pd_cluster *planned, int *planned_rc, pd_diag *d) {
    static const char *const names[] = {"1f1b", "2bw", "flush", "gpipe", "zb-h1", "zb-h2"};
    search *q = calloc(1, sizeof *q);
    FILE *tmp = q ? tmpfile() : NULL;
    if (!tmp) {
        pd_diag_error(d, "pdplan", 0, 0, "--schedule auto: out of memory or no temporary file");
        free(q);
        return NULL;
    }
    q->g = g, q->g_rc = g_rc, q->g_sel = g_sel, q->c = c, q->o = o, q->cpu = cpu, q->best = -1;
    q->quiet.out = tmp;
    double limit = c->memory_bytes;
    char why[512];
    int failed = 0;
    int rc_max = g_sel ? PD_RECOMPUTE_SELECTIVE : PD_RECOMPUTE_FULL; /* g_sel: not for cuda */
    for (int rc = 0; rc <= rc_max && !failed; rc++)
        for (int si = 0; si < 6 && !failed; si++) {
            const char *s = names[si];
            int is_1f1b = !strcmp(s, "1f1b");
            if (!pd_backend_runs(cpu ? "cpu" : "cuda", s, rc)) continue;
            for (int mt = is_1f1b ? 0 : 1; mt <= (is_1f1b ? 0 : 2) && !failed; mt++)
                for (int un = 0; un < (limit > 0 ? 2 : 1) && !failed; un++)
                    for (int pr = rc ? 1 : 0; pr >= 0 && !failed; pr--)
                    if (try_candidate(q, s, mt, rc, un, pr, why, sizeof why)) {
                        pd_diag_error(d, "pdplan", 0, 0, "--schedule auto: simulating %s: %s",
                                      s, why);
                        failed = 1;
                    }
        }
    fclose(q->quiet.out);
    char lb[32], mb[32];
    gb(lb, sizeof lb, limit);
    if (!failed && explain) print_candidates(out, q, lb);
    if (!failed && q->best < 0)
        pd_diag_error(d, "pdplan", 0, 0, "--schedule auto: no schedule, microbatch count or "
                      "recomputation has a plan that fits %s per worker", lb);
    if (failed || q->best < 0) {
        pd_plan_free(q->best_plan);
        free(q);
        return NULL;
    }
    const candidate *w = &q->k[q->best];
    int planned_n = 0, mixes = 0;
    for (int i = 0; i < q->n; i++) planned_n += q->k[i].stages > 0, mixes += q->k[i].mix;
    gb(mb, sizeof mb, w->bytes);
    fprintf(out, "schedule: ");
    describe(out, w);
    fprintf(out, ": %.4f ms per minibatch simulated, %s per worker", w->ms, mb);
    if (limit > 0) fprintf(out, " (limit %s)", lb);
    fprintf(out, "; the fastest that fits of %d plans simulated (%d candidates, %d of them "
            "per-stage recomputation mixes; the others have no plan under their memory model)\n",
            planned_n, q->n, mixes);
    pd_plan *p = q->best_plan;
    *planned = q->planned;
    *planned_rc = q->planned_rc;
    if (w->mix) { /* priced and its memory counted with each stage's mode (derive_mix) */
        *planned_rc = -2;
    } else if (w->recompute && !q->planned_rc) {
        /* the DP priced this partition without the recomputed forward: the table gives its
         * stages as they run (recomputing), and it is no DP optimum to certify */
        p->bottleneck_ms = pd_plan_price(p, w->recompute == PD_RECOMPUTE_SELECTIVE ? g_sel : g_rc, c);
        p->speedup_vs_data_parallel =
            p->bottleneck_ms > 0 ? p->data_parallel_ms / p->bottleneck_ms : 0;
        *planned_rc = -1;
    }
    free(q);
    return p;
}
