/* test_dp.c: the DP (pd_plan_dp) against an exhaustive search written independently: every
 * sequence of downward-closed sets (found by testing all 2^n node subsets) and every replica
 * assignment, priced from node sums computed directly, on random small chains and DAGs with
 * random levels, counts, bandwidths and memory limits, under both cost models, with and without
 * --straight. Also checks the plan's own consistency and a performance smoke test. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planner/cost/cost.h"
#include "planner/dp/dp.h"
#include "test.h"
#include "xorshift.h"

static uint64_t rng_state = 88172645463325252ull;
static double urand(void) { return xorshift_uniform(&rng_state); }
static int irand(int lo, int hi) { return xorshift_int(&rng_state, lo, hi); }

static int uneven; /* random_graph: many free layers and a few 100x heavier ones */

static pd_costgraph *random_graph(int n, int chain) {
    pd_costgraph *g = pd_costgraph_new(n, n * n);
    for (int v = 0; v < n; v++) {
        g->fwd_ms[v] = 0.5 + 10 * urand();
        g->bwd_ms[v] = 2 * g->fwd_ms[v] * urand();
        if (uneven) {
            double u = urand();
            if (u < 0.35) g->fwd_ms[v] = g->bwd_ms[v] = 0;
            else if (u < 0.5) g->fwd_ms[v] *= 100;
        }
        g->act_bytes[v] = urand() < 0.2 ? 0 : 1e6 * (1 + 20 * urand());
        g->param_bytes[v] = urand() < 0.3 ? 0 : 1e6 * (1 + 50 * urand());
    }
    g->n_edges = 0;
    for (int j = 1; j < n; j++)
        for (int i = 0; i < j; i++) {
            int e = chain ? i == j - 1 : (i == j - 1 ? urand() < 0.7 : urand() < 0.3);
            if (e) {
                g->src[g->n_edges] = i;
                g->dst[g->n_edges] = j;
                g->n_edges++;
            }
        }
    return g;
}

/* ---- the exhaustive search ---- */
typedef struct {
    const pd_costgraph *g;
    const pd_cluster *c;
    pd_cost_model cm;
    int straight;
    unsigned full;
    unsigned char *ideal; /* [1<<n] */
    double *memo[PD_MAX_LEVELS]; /* [a<<n | b] best of level l on range a..b; NAN = unknown */
    const pd_cluster *hier; /* the default model on several levels: the search runs on one level
                               of every worker (c) and prices a stage by its ranks on hier */
} bf;

/* the level of hier at which ranks a and b meet, by brute force over the unit sizes */
static int meet_level(const pd_cluster *h, int a, int b) {
    long unit = 1;
    for (int l = 0; l < h->n_levels; l++) {
        unit *= h->count[l];
        if (a / unit == b / unit) return l;
    }
    return h->n_levels - 1;
}

static int is_ideal(const pd_costgraph *g, unsigned s) {
    for (int e = 0; e < g->n_edges; e++)
        if (((s >> g->dst[e]) & 1u) && !((s >> g->src[e]) & 1u)) return 0;
    return 1;
}

static double cut_of(const pd_costgraph *g, unsigned s) {
    double b = 0;
    for (int u = 0; u < g->n; u++) {
        if (!((s >> u) & 1u)) continue;
        for (int e = 0; e < g->n_edges; e++)
            if (g->src[e] == u && !((s >> g->dst[e]) & 1u)) {
                b += g->act_bytes[u];
                break;
            }
    }
    return b;
}

static double bf_range(bf *b, int l, unsigned a, unsigned e);

/* price of the stage a..j at level l with r units and `after` units later */
static int bf_stage(bf *b, int l, unsigned a, unsigned j, unsigned start, unsigned end, int r,
                    int after, int used, double *time, int *fits_deep) {
    const pd_costgraph *g = b->g;
    pd_stage_sums s = {0};
    unsigned st = j & ~a;
    for (int v = 0; v < g->n; v++)
        if ((st >> v) & 1u) {
            s.compute_ms += g->fwd_ms[v] + g->bwd_ms[v];
            s.param_bytes += g->param_bytes[v];
            s.act_bytes += g->act_bytes[v];
        }
    if (l > 0) s.compute_ms = bf_range(b, l - 1, a, j);
    if (!(s.compute_ms < INFINITY)) return 0;
    s.in_bytes = cut_of(g, a);
    s.out_bytes = cut_of(g, j);
    s.first = a == start;
    s.last = b->cm == PD_COST_PIPEDREAM ? j == b->full : j == end;
    pd_cost_level lv;
    pd_cost_level_of(&lv, b->c, b->g, l);
    pd_stage_cost c, cd;
    pd_stage_cost_eval(&c, &s, &lv, b->cm, r, after);
    *time = c.time_ms;
    /* the default model: whether it fits at the warm-up of a pipeline with a replicated stage */
    lv.replicated_warmup = 1;
    pd_stage_cost_eval(&cd, &s, &lv, b->cm, r, after);
    *fits_deep = cd.fits;
    if (b->hier) { /* ranks [used, used + r): the ring over the units they span, the transfers
                      at the level that holds the neighbour rank and the stage */
        int members[64];
        for (int k = 0; k < r; k++) members[k] = used + k;
        double bytes, R = r;
        double t = s.compute_ms / R + pd_ring_ms_members(b->hier, members, r, s.param_bytes,
                                                          &bytes) / R;
        if (!s.first) {
            double in = 2000.0 * s.in_bytes /
                        (b->hier->bandwidth[meet_level(b->hier, used - 1, used + r - 1)] * R);
            if (in > t) t = in;
        }
        if (!s.last) {
            double out = 2000.0 * s.out_bytes /
                         (b->hier->bandwidth[meet_level(b->hier, used, used + r)] * R);
            if (out > t) t = out;
        }
        *time = t;
    }
    return c.fits;
}

/* every sequence start = I0 < I1 < ... < Ik = end with replicas adding to exactly N; under the
 * default model a plan fits when every stage fits at its warm-up (plan.h, pd_warmup_depth):
 * PipeDream's without a replicated stage (ok_pd so far), the deeper one with (ok_deep; rep: a
 * stage so far is replicated) */
static void bf_seq(bf *b, int l, int N, unsigned start, unsigned end, unsigned cur, int used,
                   double worst, double *best, int rep, int ok_pd, int ok_deep) {
    for (unsigned j = 1; j <= b->full; j++) {
        if (!b->ideal[j] || (j & cur) != cur || j == cur || (j & end) != j) continue;
        int rmax = b->straight ? 1 : N - used;
        for (int r = 1; r <= rmax; r++) {
            if (j == end && used + r != N) continue;
            if (j != end && used + r >= N) continue;
            double t;
            int fd, fp = bf_stage(b, l, cur, j, start, end, r, N - used - r, used, &t, &fd);
            int rp = rep || r > 1, op = ok_pd && fp, od = ok_deep && fd;
            if (b->cm != PD_COST_DEFAULT) od = op; /* compat: PipeDream's depth */
            if (!(rp ? od : op || od)) continue; /* a later replicated stage needs od */
            double w = worst > t ? worst : t;
            if (j == end) {
                int pipeline = !(cur == start && j == end);
                if ((rp && pipeline ? od : op) && w < *best) *best = w;
            } else {
                bf_seq(b, l, N, start, end, j, used + r, w, best, rp, op, od);
            }
        }
    }
}

static double bf_range(bf *b, int l, unsigned a, unsigned e) {
    size_t k = ((size_t)a << b->g->n) | e;
    if (!isnan(b->memo[l][k])) return b->memo[l][k];
    /* the default model without --straight may leave units idle: the best over every total
     * M <= N, each searched as "exactly M" (the units after a stage are counted within M) */
    double best = INFINITY;
    int N = b->c->count[l], atmost = b->cm == PD_COST_DEFAULT && !b->straight;
    for (int M = atmost ? 1 : N; M <= N; M++) bf_seq(b, l, M, a, e, a, 0, 0, &best, 0, 1, 1);
    b->memo[l][k] = best;
    return best;
}

/* the set of v and all its ancestors, by iterating the edges to a fixed point */
static unsigned down_closure(const pd_costgraph *g, int v) {
    unsigned s = 1u << v, prev = 0;
    while (s != prev) {
        prev = s;
        for (int e = 0; e < g->n_edges; e++)
            if ((s >> g->dst[e]) & 1u) s |= 1u << g->src[e];
    }
    return s;
}

/* principal = 1: only the empty set, the full set and each node's down-closure are states (what
 * the DP falls back to when the state cap is hit) */
static double brute_force_on(const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm,
                             int straight, int principal) {
    bf b = {.g = g, .c = c, .cm = cm, .straight = straight};
    pd_cluster flat;
    if (cm == PD_COST_DEFAULT && c->n_levels > 1) {
        flat = *c;
        flat.n_levels = 1;
        flat.count[0] = pd_cluster_workers(c);
        b.c = &flat;
        b.hier = c;
    }
    unsigned n = 1u << g->n;
    b.full = n - 1;
    b.ideal = malloc(n);
    for (unsigned s = 0; s < n; s++)
        b.ideal[s] = (unsigned char)(principal ? s == 0 || s == b.full : is_ideal(g, s));
    if (principal)
        for (int v = 0; v < g->n; v++) b.ideal[down_closure(g, v)] = 1;
    for (int l = 0; l < b.c->n_levels; l++) {
        b.memo[l] = malloc(sizeof(double) * n * n);
        for (size_t i = 0; i < (size_t)n * n; i++) b.memo[l][i] = NAN;
    }
    double r = bf_range(&b, b.c->n_levels - 1, 0, b.full);
    free(b.ideal);
    for (int l = 0; l < b.c->n_levels; l++) free(b.memo[l]);
    return r;
}

static double brute_force(const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm,
                          int straight) {
    return brute_force_on(g, c, cm, straight, 0);
}

/* the plan's stages are a partition into differences of ideals, in order, with time <= bottleneck */
static void check_plan_shape(const pd_costgraph *g, const pd_cluster *c, const pd_plan *p) {
    unsigned seen = 0;
    int workers = 0;
    double worst = 0;
    /* the default model deepens the warm-up of pipelines with a replicated stage (plan.h) */
    int deep = p->cost_model == PD_COST_DEFAULT && pd_plan_replicated(p);
    for (int s = 0; s < p->n_stages; s++) {
        const pd_stage *st = &p->stages[s];
        CHECK(st->n_nodes > 0);
        for (int k = 0; k < st->n_nodes; k++) {
            CHECK(!((seen >> st->nodes[k]) & 1u));
            seen |= 1u << st->nodes[k];
        }
        CHECK(is_ideal(g, seen));
        for (int q = 0; q < st->replicas; q++) CHECK_EQ_INT(st->ranks[q], workers + q);
        /* PipeDream's (workers after) / replicas, rounded up, or with a replicated stage
         * 4 x that, + 1 on a replicated stage with workers after it; minibatches in flight
         * strictly decreasing along a replicated pipeline */
        int after = p->workers - workers - st->replicas;
        CHECK_EQ_INT(st->warmup, ((deep ? 4 : 1) * after + st->replicas - 1) / st->replicas +
                                     (deep && st->replicas > 1 && after > 0));
        CHECK_EQ_INT(st->warmup, pd_warmup_depth(after, st->replicas, deep));
        if (deep && s > 0)
            CHECK(st->warmup * st->replicas <
                  p->stages[s - 1].warmup * p->stages[s - 1].replicas);
        CHECK_EQ_INT(st->weight_versions, st->warmup + 1);
        workers += st->replicas;
        if (st->time_ms > worst) worst = st->time_ms;
    }
    CHECK_EQ_INT(seen, (1u << g->n) - 1);
    if (p->cost_model == PD_COST_PIPEDREAM || p->straight)
        CHECK_EQ_INT(workers, pd_cluster_workers(c));
    else
        CHECK(workers >= 1 && workers <= pd_cluster_workers(c));
    CHECK_EQ_INT(p->workers, workers);
    CHECK_CLOSE(worst, p->bottleneck_ms, 1e-9, 1e-9);
}

static void random_cluster(pd_cluster *c, int n_nodes) {
    memset(c, 0, sizeof *c);
    c->n_levels = urand() < 0.5 ? 1 : 2;
    for (int l = 0; l < c->n_levels; l++) {
        c->count[l] = irand(1, c->n_levels == 1 ? 5 : 3);
        c->bandwidth[l] = (l == 0 ? 1e10 : 1e9) * (0.2 + urand());
    }
    (void)n_nodes;
    c->memory_bytes = urand() < 0.4 ? 0 : 2e7 + 3e8 * urand();
}

static int fewer_workers; /* plans that left workers idle (default model) */

static void run_random(int chain, int iters, int *compared, int *infeasible) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    for (int it = 0; it < iters; it++) {
        int n = irand(3, chain ? 8 : 7);
        pd_costgraph *g = random_graph(n, chain);
        pd_cluster c;
        random_cluster(&c, n);
        for (int cm = 0; cm < 2; cm++)
            for (int straight = 0; straight < 2; straight++) {
                pd_plan_opts o = {.cost_model = (pd_cost_model)cm, .straight = straight};
                double want = brute_force(g, &c, o.cost_model, straight);
                pd_plan *p = pd_plan_dp(g, &c, &o, &d);
                if (!(want < INFINITY)) {
                    CHECK(p == NULL);
                    (*infeasible)++;
                } else {
                    CHECK(p != NULL);
                    if (p) {
                        CHECK_CLOSE(p->bottleneck_ms, want, 1e-9, 1e-9);
                        CHECK(p->exact == 1);
                        check_plan_shape(g, &c, p);
                        if (p->workers < pd_cluster_workers(&c)) fewer_workers++;
                        /* the parametric search (where it applies) equals the plain DP */
                        pd_plan_opts po = o;
                        po.method = cm == PD_COST_DEFAULT && !straight ? PD_METHOD_PARAMETRIC
                                                                        : PD_METHOD_PLAIN;
                        pd_plan *q = pd_plan_dp(g, &c, &po, &d);
                        CHECK(q != NULL);
                        if (q) {
                            CHECK_CLOSE(q->bottleneck_ms, want, 1e-9, 1e-9);
                            CHECK_EQ_INT(q->workers, p->workers);
                            check_plan_shape(g, &c, q);
                        }
                        pd_plan_free(q);
                    }
                    (*compared)++;
                }
                if (test_failed_now()) {
                    fprintf(stderr, "iteration %d: n=%d levels=%d counts=%d,%d mem=%g cm=%d "
                            "straight=%d\n", it, n, c.n_levels, c.count[0], c.count[1],
                            c.memory_bytes, cm, straight);
                    pd_plan_free(p);
                    pd_costgraph_free(g);
                    fclose(d.out);
                    return;
                }
                pd_plan_free(p);
            }
        pd_costgraph_free(g);
    }
    fclose(d.out);
}

TEST(dp_equals_brute_force_on_chains) {
    int compared = 0, infeasible = 0;
    run_random(1, 150, &compared, &infeasible);
    printf("chains: %d plans compared, %d infeasible agreed, %d left workers idle\n", compared,
           infeasible, fewer_workers);
    CHECK(compared > 300);
    CHECK(fewer_workers > 3); /* the at-most-N semantics is exercised */
}

/* Chains whose cumulative compute has long flat runs and big jumps: the window ends of a chain
 * are looked up in a bucket table of the compute axis (dp.c, c_first), whose walks and fallback
 * these exercise. */
TEST(dp_equals_brute_force_on_uneven_chains) {
    int compared = 0, infeasible = 0;
    uint64_t saved = rng_state; /* the later tests keep their instances */
    rng_state = 0x9e3779b97f4a7c15ull;
    uneven = 1;
    run_random(1, 80, &compared, &infeasible);
    uneven = 0;
    rng_state = saved;
    printf("uneven chains: %d plans compared, %d infeasible agreed\n", compared, infeasible);
    CHECK(compared > 150);
}

TEST(dp_equals_brute_force_on_dags) {
    int compared = 0, infeasible = 0;
    run_random(0, 150, &compared, &infeasible);
    printf("dags: %d plans compared, %d infeasible agreed\n", compared, infeasible);
    CHECK(compared > 300);
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* q is p's plan: the same stages (replicas, node counts), their times within (atol, rtol). */
static void check_same_stages(const pd_plan *p, const pd_plan *q, double atol, double rtol) {
    CHECK_EQ_INT(p->n_stages, q->n_stages);
    for (int k = 0; k < p->n_stages && k < q->n_stages; k++) {
        CHECK_EQ_INT(p->stages[k].replicas, q->stages[k].replicas);
        CHECK_EQ_INT(p->stages[k].n_nodes, q->stages[k].n_nodes);
        CHECK_CLOSE(p->stages[k].time_ms, q->stages[k].time_ms, atol, rtol);
    }
}

/* The parametric search (pd_plan_dp's default for one level under the default model) against
 * the plain DP on instances too large for the exhaustive search: chains of 20-40 layers and
 * DAGs of 9-12 nodes on up to 24 workers, with and without a memory limit. */
TEST(parametric_equals_plain_dp) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int compared = 0, idle = 0, infeasible = 0;
    for (int it = 0; it < 120 && !test_failed_now(); it++) {
        int chain = it % 3 != 0;
        int n = chain ? irand(20, 40) : irand(9, 12);
        pd_costgraph *g = random_graph(n, chain);
        pd_cluster c;
        memset(&c, 0, sizeof c);
        c.n_levels = 1;
        c.count[0] = irand(2, 24);
        c.bandwidth[0] = 1e10 * (0.01 + urand());
        c.memory_bytes = urand() < 0.5 ? 0 : 1e8 + 2e9 * urand();
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT, .method = PD_METHOD_PARAMETRIC}, po = o;
        po.method = PD_METHOD_PLAIN;
        pd_plan *p = pd_plan_dp(g, &c, &o, &d), *q = pd_plan_dp(g, &c, &po, &d);
        CHECK((p == NULL) == (q == NULL));
        if (p && q) {
            CHECK_CLOSE(p->bottleneck_ms, q->bottleneck_ms, 1e-9, 1e-12);
            CHECK_EQ_INT(p->workers, q->workers);
            double worst = 0;
            for (int k = 0; k < p->n_stages; k++)
                if (p->stages[k].time_ms > worst) worst = p->stages[k].time_ms;
            CHECK_CLOSE(worst, p->bottleneck_ms, 1e-9, 1e-12);
            if (c.memory_bytes > 0)
                for (int k = 0; k < p->n_stages; k++)
                    CHECK(p->stages[k].memory_bytes <= c.memory_bytes);
            compared++;
            idle += p->workers < c.count[0];
        } else if (!p && !q) {
            infeasible++;
        }
        if (test_failed_now())
            fprintf(stderr, "iteration %d: n=%d chain=%d N=%d mem=%g\n", it, n, chain,
                    c.count[0], c.memory_bytes);
        pd_plan_free(p);
        pd_plan_free(q);
        pd_costgraph_free(g);
    }
    printf("parametric vs plain DP: %d compared (%d with idle workers), %d infeasible agreed\n",
           compared, idle, infeasible);
    CHECK(compared > 80);
    CHECK(idle > 5);
    fclose(d.out);
}

/* The default model on 2-3 levels plans the flattened pipeline with every stage priced by its
 * ranks (docs/planner.md, "One price"); the windowed recurrence (its compute windows and the
 * top level's bound rounds) against the plain DP (method plain: every candidate), on instances
 * too large for the exhaustive search, with and without a memory limit. */
TEST(flattened_hierarchy_equals_plain_dp) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int compared = 0;
    for (int it = 0; it < 40 && !test_failed_now(); it++) {
        int chain = it % 4 != 0;
        int n = chain ? irand(15, 40) : irand(8, 11);
        pd_costgraph *g = random_graph(n, chain);
        pd_cluster c;
        memset(&c, 0, sizeof c);
        c.n_levels = irand(2, 3);
        for (int l = 0; l < c.n_levels; l++) {
            c.count[l] = irand(1, c.n_levels == 2 ? 5 : 3);
            c.bandwidth[l] = 1e11 * pow(10, -3 * urand()) / (l + 1);
        }
        c.memory_bytes = urand() < 0.25 ? 2e8 + 2e9 * urand() : 0;
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT}, po = o;
        po.method = PD_METHOD_PLAIN;
        pd_plan *p = pd_plan_dp(g, &c, &o, &d), *q = pd_plan_dp(g, &c, &po, &d);
        CHECK((p == NULL) == (q == NULL));
        if (p && q) {
            CHECK_CLOSE(p->bottleneck_ms, q->bottleneck_ms, 1e-9, 1e-12);
            CHECK_EQ_INT(p->workers, q->workers);
            check_same_stages(p, q, 1e-9, 1e-12);
            compared++;
        }
        if (test_failed_now())
            fprintf(stderr, "iteration %d: n=%d chain=%d levels=%d counts=%d,%d,%d mem=%g\n", it,
                    n, chain, c.n_levels, c.count[0], c.count[1], c.count[2], c.memory_bytes);
        pd_plan_free(p);
        pd_plan_free(q);
        pd_costgraph_free(g);
    }
    printf("flattened hierarchy vs plain DP: %d compared\n", compared);
    CHECK(compared > 25);
    fclose(d.out);
}

/* GNMT-like: an encoder chain and a decoder chain (two sources), the decoder reading the
 * encoder's output at 4 points; 2 levels of 4. Exact, and within a generous time bound (the
 * sanitizer build is several times slower than -O2, where this takes about 2 s). */
TEST(perf_gnmt_like_dag_4x4_compat) {
    int half = 48, n = 2 * half;
    pd_costgraph *g = pd_costgraph_new(n, 4 * n);
    for (int v = 0; v < n; v++) {
        g->fwd_ms[v] = 1 + irand(0, 4);
        g->bwd_ms[v] = 2 * g->fwd_ms[v];
        g->act_bytes[v] = 1e6 * irand(1, 4);
        g->param_bytes[v] = 4e6 * irand(0, 2);
    }
    int e = 0;
    for (int v = 1; v < half; v++, e++) g->src[e] = v - 1, g->dst[e] = v;
    for (int v = half + 1; v < n; v++, e++) g->src[e] = v - 1, g->dst[e] = v;
    for (int k = 0; k < 4; k++, e++) g->src[e] = half - 1, g->dst[e] = half + half / 2 + 4 * k;
    g->n_edges = e;
    pd_cluster c = {.n_levels = 2, .count = {4, 4}, .bandwidth = {1e10, 1e9}};
    pd_plan_opts o = {.cost_model = PD_COST_PIPEDREAM};
    pd_diag d = {0};
    double t0 = seconds_now();
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    double dt = seconds_now() - t0;
    printf("gnmt-like 96 nodes, 4x4, compat: %.2f s (sanitizer build)\n", dt);
    CHECK(p != NULL);
    if (p) {
        CHECK(p->exact == 1);
        CHECK_EQ_INT(p->workers, 16);
        CHECK(p->bottleneck_ms <= p->data_parallel_ms);
    }
    CHECK(dt < 60);
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* A 300-layer chain on 4x4x4 workers (3 levels): plans, uses all 64 workers. */
TEST(perf_chain_300_three_levels) {
    pd_costgraph *g = random_graph(300, 1);
    pd_cluster c = {.n_levels = 3, .count = {4, 4, 4}, .bandwidth = {1e11, 1e10, 1e9}};
    pd_plan_opts o = {.cost_model = PD_COST_DEFAULT};
    pd_diag d = {0};
    double t0 = seconds_now();
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    double dt = seconds_now() - t0;
    printf("300-layer chain, 4x4x4: %.2f s (sanitizer build)\n", dt);
    CHECK(p != NULL);
    if (p) CHECK_EQ_INT(p->workers, 64);
    CHECK(dt < 60);
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* The inner levels' rows run on several threads (dp.c, inner_level): the plan must be the
 * same, bit for bit, on 1, 2 and 3 threads, with and without a memory limit, under the compat
 * model (chains and DAGs with at least 128 downward-closed sets, so that threads start). */
TEST(threads_do_not_change_the_plan) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int compared = 0;
    for (int it = 0; it < 12 && !test_failed_now(); it++) {
        int chain = it % 3 != 2;
        pd_costgraph *g = random_graph(chain ? irand(130, 200) : 14, chain);
        pd_cluster c;
        memset(&c, 0, sizeof c);
        c.n_levels = irand(2, 3);
        for (int l = 0; l < c.n_levels; l++) {
            c.count[l] = irand(2, 5);
            c.bandwidth[l] = 1e11 * pow(10, -2 * urand()) / (l + 1);
        }
        c.memory_bytes = it % 4 == 1 ? 2e9 : 0;
        pd_plan *p[3] = {0};
        for (int k = 0; k < 3; k++) {
            /* the inner levels exist under --compat pipedream (the default model flattens) */
            pd_plan_opts o = {.cost_model = PD_COST_PIPEDREAM, .threads = k + 1};
            p[k] = pd_plan_dp(g, &c, &o, &d);
        }
        for (int k = 1; k < 3; k++) {
            CHECK((p[0] == NULL) == (p[k] == NULL));
            if (!p[0] || !p[k]) continue;
            CHECK(p[0]->bottleneck_ms == p[k]->bottleneck_ms);
            check_same_stages(p[0], p[k], 0, 0); /* bit for bit */
            compared++;
        }
        for (int k = 0; k < 3; k++) pd_plan_free(p[k]);
        pd_costgraph_free(g);
    }
    printf("threads: %d plans compared with the single-threaded one\n", compared);
    CHECK(compared >= 16);
    fclose(d.out);
}

/* A graph without compute on 128 workers (the parametric search): one stage, bottleneck 0, as
 * the plain DP (at T = 0 min_replicas used to skip one replica: "no plan fits"). */
TEST(zero_compute_plans_with_the_parametric_search) {
    pd_costgraph *g = random_graph(3, 1);
    for (int v = 0; v < g->n; v++) g->fwd_ms[v] = g->bwd_ms[v] = 0;
    pd_cluster c = {.n_levels = 1, .count = {128}, .bandwidth = {1e10}};
    pd_diag d = {.out = fopen("/dev/null", "w")};
    for (int method = PD_METHOD_PLAIN; method <= PD_METHOD_PARAMETRIC; method++) {
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT, .method = method};
        pd_plan *p = pd_plan_dp(g, &c, &o, &d);
        CHECK(p != NULL);
        if (p) CHECK(p->bottleneck_ms == 0);
        pd_plan_free(p);
    }
    fclose(d.out);
    pd_costgraph_free(g);
}

/* --explain's alternative for each cut is a plan that does not cut there, so never better than
 * the optimum; on the diamond-free chain it is exactly the brute force with that cut removed. */
TEST(explain_alternatives_not_better) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int checked = 0;
    for (int it = 0; it < 30; it++) {
        pd_costgraph *g = random_graph(irand(3, 6), it % 2);
        for (int v = 0; v < g->n; v++) {
            g->name[v] = malloc(16);
            snprintf(g->name[v], 16, "l%d", v);
        }
        pd_cluster c = {.n_levels = 1, .count = {irand(2, 4)}, .bandwidth = {1e10 * urand()}};
        pd_plan_opts o = {.cost_model = (pd_cost_model)(it % 2)};
        pd_plan *p = pd_plan_dp(g, &c, &o, &d);
        if (p) {
            char *buf = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&buf, &len);
            pd_explain(f, g, &c, &o, p);
            fclose(f);
            /* every "bottleneck X ms (+D" line has D >= 0 */
            for (char *q = strstr(buf, "(+"); q; q = strstr(q + 1, "(+")) checked++;
            CHECK(strstr(buf, "(-") == NULL);
            if (strstr(buf, "(-")) fputs(buf, stderr);
            CHECK(strstr(buf, "explain: objective: DP") != NULL);
            free(buf);
        }
        pd_plan_free(p);
        pd_costgraph_free(g);
    }
    fclose(d.out);
    CHECK(checked > 5);
}

/* Over the state cap, the DP plans over the principal ideals only: it must equal an exhaustive
 * search over those, say exact: false, and give a lower bound that no plan beats (checked against
 * the exhaustive search over every ideal). */
TEST(state_cap_principal_ideals) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int compared = 0;
    for (int it = 0; it < 60 && !test_failed_now(); it++) {
        int n = irand(4, 7);
        pd_costgraph *g = random_graph(n, 0);
        pd_cluster c;
        random_cluster(&c, n);
        pd_cost_model cm = (pd_cost_model)irand(0, 1);
        pd_plan_opts o = {.cost_model = cm, .max_states = 2, .lattice = -1};
        double want = brute_force_on(g, &c, cm, 0, 1);
        double best = brute_force(g, &c, cm, 0);
        pd_plan *p = pd_plan_dp(g, &c, &o, &d);
        if (!(want < INFINITY)) {
            CHECK(p == NULL);
        } else {
            CHECK(p != NULL);
            if (p) {
                CHECK_CLOSE(p->bottleneck_ms, want, 1e-9, 1e-9);
                CHECK(p->lower_bound_ms > 0);
                /* exact only where the plan reaches the lower bound (on several levels, the
                 * one-level relaxation's): then it is the optimum over every ideal */
                CHECK_EQ_INT(p->exact, p->bottleneck_ms <= p->lower_bound_ms * (1 + 1e-9));
                if (p->exact) CHECK_CLOSE(p->bottleneck_ms, best, 1e-9, 1e-9);
                CHECK(p->lower_bound_ms <= best * (1 + 1e-12));
                check_plan_shape(g, &c, p);
                compared++;
            }
        }
        pd_plan_free(p);
        pd_costgraph_free(g);
    }
    fclose(d.out);
    printf("state cap: %d plans over principal ideals compared\n", compared);
    CHECK(compared > 20);
}

/* pd_plan_flat_bound (one level of every worker at the fastest bandwidth, no memory limit) never
 * exceeds the optimum of the hierarchy (the plain DP, checked against the exhaustive search
 * above), on random chains and DAGs on 2-3 levels, both models, with and without memory limits
 * and --straight, outer links sometimes faster than inner ones; and it is often tight and often
 * above the compute bound, so the check is not vacuous. */
TEST(flat_bound_below_hierarchy_optimum) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int compared = 0, tight = 0, above_compute = 0;
    for (int it = 0; it < 120 && !test_failed_now(); it++) {
        int n = irand(3, 9);
        pd_costgraph *g = random_graph(n, urand() < 0.4);
        pd_cluster c;
        memset(&c, 0, sizeof c);
        c.n_levels = irand(2, 3);
        for (int l = 0; l < c.n_levels; l++) {
            c.count[l] = irand(1, l == 0 ? 4 : 3);
            c.bandwidth[l] = (urand() < 0.8 ? (l == 0 ? 1e10 : 1e9) : 3e10) * (0.05 + urand());
        }
        c.memory_bytes = urand() < 0.4 ? 0 : 2e7 + 3e8 * urand();
        double total = 0;
        for (int v = 0; v < n; v++) total += g->fwd_ms[v] + g->bwd_ms[v];
        for (int cm = 0; cm < 2; cm++)
            for (int straight = 0; straight < 2; straight++) {
                pd_plan_opts o = {.cost_model = (pd_cost_model)cm, .straight = straight,
                                  .method = PD_METHOD_PLAIN};
                pd_plan *p = pd_plan_dp(g, &c, &o, &d);
                if (!p) continue;
                double lb = pd_plan_flat_bound(g, &c, &o);
                CHECK(lb > 0);
                CHECK(lb <= p->bottleneck_ms * (1 + 1e-9));
                if (test_failed_now())
                    fprintf(stderr, "iteration %d: n=%d levels=%d cm=%d straight=%d: bound %.9g "
                            "above the optimum %.9g\n", it, n, c.n_levels, cm, straight, lb,
                            p->bottleneck_ms);
                compared++;
                if (lb >= p->bottleneck_ms * (1 - 1e-9)) tight++;
                if (lb > total / pd_cluster_workers(&c) * (1 + 1e-6)) above_compute++;
                pd_plan_free(p);
            }
        pd_costgraph_free(g);
    }
    fclose(d.out);
    printf("flat bound: %d hierarchies, bound = optimum on %d, above compute / workers on %d\n",
           compared, tight, above_compute);
    CHECK(compared > 200);
    CHECK(tight > 20);
    CHECK(above_compute > 100);
}

/* The chain relaxation (planner/dp/relax.c), both cost models (under compat a plan uses exactly N
 * workers, the relaxation at most N), with its contracted graph held to a few ideals so
 * that segments with tails are contracted: never above the optimum (the exhaustive search; the
 * relaxation drops the memory limit, so also below the optimum with one), often well above the
 * compute bound, and below the optimum by more than the bisection's 2e-4 on some (the tails
 * were subtracted: the check is not of the exact problem alone). Over the cap, the widened
 * family (principal ideals and whole segments) plans between the optimum and the principal
 * ideals' optimum. */
TEST(chain_relaxation_below_optimum) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int compared = 0, above_compute = 0, loose = 0, widened_better = 0;
    for (int it = 0; it < 150 && !test_failed_now(); it++) {
        int n = irand(4, 8);
        pd_costgraph *g = random_graph(n, urand() < 0.3);
        pd_cluster c;
        memset(&c, 0, sizeof c);
        c.n_levels = 1;
        c.count[0] = irand(1, 6);
        c.bandwidth[0] = 1e10 * (0.05 + urand());
        c.memory_bytes = urand() < 0.6 ? 0 : 2e7 + 3e8 * urand();
        pd_cost_model cm = (pd_cost_model)(it % 2);
        double best = brute_force(g, &c, cm, 0);
        if (best < INFINITY) {
            double total = 0;
            for (int v = 0; v < n; v++) total += g->fwd_ms[v] + g->bwd_ms[v];
            /* hi well above the optimum, so that a wrong relaxation could show above it */
            double lb = pd_plan_chain_bound(g, &c, cm, 4 * best, irand(3, 16));
            CHECK(lb <= best * (1 + 1e-12));
            if (test_failed_now())
                fprintf(stderr, "iteration %d: n=%d N=%d cm=%d: bound %.9g above the optimum "
                        "%.9g\n", it, n, c.count[0], cm, lb, best);
            compared++;
            above_compute += lb > total / c.count[0] * (1 + 1e-6);
            loose += lb < best * (1 - 1e-3);
            pd_plan_opts o = {.cost_model = cm, .max_states = n + 2 + irand(2, 8),
                              .lattice = -1};
            pd_plan *p = pd_plan_dp(g, &c, &o, &d);
            double principal = brute_force_on(g, &c, cm, 0, 1);
            CHECK(p != NULL || !(principal < INFINITY)); /* memory: none may fit the family */
            if (p) {
                check_plan_shape(g, &c, p);
                CHECK(p->bottleneck_ms >= best * (1 - 1e-12));
                CHECK(p->bottleneck_ms <= principal * (1 + 1e-12));
                CHECK(p->lower_bound_ms <= best * (1 + 1e-12));
                widened_better += p->bottleneck_ms < principal * (1 - 1e-9);
            }
            pd_plan_free(p);
        }
        pd_costgraph_free(g);
    }
    fclose(d.out);
    printf("chain relaxation: %d compared, above compute / workers on %d, below the optimum by "
           "more than 0.1%% on %d; widened family better than the principal ideals on %d\n",
           compared, above_compute, loose, widened_better);
    CHECK(compared > 100);
    CHECK(above_compute > 30);
    CHECK(loose > 5);
}

/* Over the state cap on one level without a memory limit, the lattice search (lattice.c) runs
 * over every ideal: the plan equals the exhaustive search's optimum and says exact: true, under
 * both models (compat's exactly N workers included), on random DAGs where the family alone was
 * not exact on many. */
TEST(lattice_search_equals_brute_force) {
    pd_diag d = {.out = fopen("/dev/null", "w")};
    int compared = 0, needed = 0, exact = 0;
    for (int it = 0; it < 160 && !test_failed_now(); it++) {
        int n = irand(4, 8);
        uneven = it % 3 == 0;
        pd_costgraph *g = random_graph(n, 0);
        uneven = 0;
        pd_cluster c;
        memset(&c, 0, sizeof c);
        c.n_levels = 1;
        c.count[0] = irand(1, 8);
        c.bandwidth[0] = 1e10 * (0.02 + urand());
        pd_cost_model cm = (pd_cost_model)(it % 2);
        double best = brute_force(g, &c, cm, 0);
        pd_plan_opts o = {.cost_model = cm, .max_states = 2, .lattice = -1};
        pd_plan *f = pd_plan_dp(g, &c, &o, &d);
        o.lattice = 0;
        pd_plan *p = pd_plan_dp(g, &c, &o, &d);
        CHECK(p != NULL && f != NULL);
        if (p && f) {
            check_plan_shape(g, &c, p);
            CHECK(p->bottleneck_ms >= best * (1 - 1e-12));
            CHECK(p->bottleneck_ms <= f->bottleneck_ms * (1 + 1e-12));
            CHECK(p->lower_bound_ms <= best * (1 + 1e-12));
            CHECK(p->exact);
            if (p->exact) CHECK_CLOSE(p->bottleneck_ms, best, 1e-9, 1e-9);
            if (test_failed_now())
                fprintf(stderr, "iteration %d: n=%d N=%d cm=%d: plan %.9g (exact %d, bound "
                        "%.9g), optimum %.9g\n", it, n, c.count[0], cm, p->bottleneck_ms,
                        p->exact, p->lower_bound_ms, best);
            compared++;
            needed += !f->exact;
            exact += p->exact;
        }
        pd_plan_free(f);
        pd_plan_free(p);
        /* --explain's best pipeline (pipelined): at least two stages, no worse than the family's */
        o.pipelined = 1;
        p = pd_plan_dp(g, &c, &o, &d);
        o.lattice = -1;
        f = pd_plan_dp(g, &c, &o, &d);
        CHECK((p == NULL) == (f == NULL));
        if (p && f) CHECK(p->n_stages >= 2 && p->bottleneck_ms <= f->bottleneck_ms * (1 + 1e-12));
        pd_plan_free(f);
        pd_plan_free(p);
        pd_costgraph_free(g);
    }
    fclose(d.out);
    printf("lattice search: %d compared, %d exact, the family alone not exact on %d\n", compared,
           exact, needed);
    CHECK(compared == 160);
    CHECK(needed > 30);
    CHECK(exact == 160);
}
