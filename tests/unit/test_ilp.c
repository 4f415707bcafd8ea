/* test_ilp.c: the GLPK certificate. Its optimum equals an exhaustive search (every sequence of
 * stages and every replica assignment, priced stage by stage with pd_stage_cost_nodes, written
 * here without the integer program's machinery) and the DP on hundreds of random small chains and
 * DAGs under both cost models, with and without --straight and memory limits; a worse plan is
 * caught; problems outside the integer program's scope are skipped, not answered wrongly. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"
#include "planner/dp/dp.h"
#include "planner/certificate/ilp.h"
#include "test.h"
#include "xorshift.h"

/* ---- random instances ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { return xorshift_uniform(&rng_state); }
static int irand(int lo, int hi) { return xorshift_int(&rng_state, lo, hi); }

/* A chain (dag = 0) or a random DAG of n nodes: every node but the first gets one or two
 * predecessors among earlier nodes. */
static pd_costgraph *random_graph(int n, int dag) {
    pd_costgraph *g = pd_costgraph_new(n, 2 * n);
    if (!g) return NULL;
    for (int v = 0; v < n; v++) {
        g->fwd_ms[v] = 0.2 + 5 * urand();
        g->bwd_ms[v] = 0.2 + 10 * urand();
        g->act_bytes[v] = 1e5 + 2e7 * urand();
        g->param_bytes[v] = urand() < 0.3 ? 0 : 4e7 * urand();
    }
    g->n_edges = 0;
    for (int v = 1; v < n; v++) {
        if (!dag) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
            continue;
        }
        int a = irand(0, v - 1);
        g->src[g->n_edges] = a;
        g->dst[g->n_edges++] = v;
        int b = irand(0, v - 1);
        if (b != a && urand() < 0.4) {
            g->src[g->n_edges] = b;
            g->dst[g->n_edges++] = v;
        }
    }
    g->input_bytes = 1e6;
    return g;
}

static void random_cluster(pd_cluster *c, const pd_costgraph *g, int max_workers, int memory) {
    memset(c, 0, sizeof *c);
    c->n_levels = 1;
    c->count[0] = irand(1, max_workers);
    c->bandwidth[0] = pow(10, 9 + 2 * urand());
    if (memory) {
        double total = 0;
        for (int v = 0; v < g->n; v++) total += g->param_bytes[v] + g->act_bytes[v];
        c->memory_bytes = total * (0.3 + 1.5 * urand());
    }
}

/* ---- exhaustive search ---- */

typedef struct {
    const pd_costgraph *g;
    const pd_cluster *c;
    pd_cost_level lv;
    pd_cost_model cm;
    int straight, exact, N, n;
    unsigned pred[16];   /* predecessor masks */
    unsigned stage[16];  /* node masks of the stages so far */
    int reps[16];
    double best;
} brute;

static int closed(const brute *b, unsigned set) {
    for (int v = 0; v < b->n; v++)
        if ((set >> v & 1u) && (b->pred[v] & ~set)) return 0;
    return 1;
}

static double price(const brute *b, int k) {
    int total = 0;
    for (int s = 0; s < k; s++) total += b->reps[s];
    unsigned char before[16], st[16];
    double worst = 0;
    unsigned so_far = 0;
    int used = 0, replicated = 0;
    for (int s = 0; s < k; s++) replicated |= b->reps[s] > 1;
    /* the plan's warm-up (plan.h): the deeper one for a default-model pipeline with a
     * replicated stage */
    pd_cost_level lv = b->lv;
    lv.replicated_warmup = b->cm == PD_COST_DEFAULT && replicated && k > 1;
    for (int s = 0; s < k; s++) {
        for (int v = 0; v < b->n; v++) {
            before[v] = (unsigned char)(so_far >> v & 1u);
            st[v] = (unsigned char)(b->stage[s] >> v & 1u);
        }
        used += b->reps[s];
        pd_stage_cost sc;
        pd_stage_cost_nodes(&sc, b->g, &lv, b->cm, s ? before : NULL, st, b->reps[s],
                            total - used);
        if (!sc.fits) return INFINITY;
        if (sc.time_ms > worst) worst = sc.time_ms;
        so_far |= b->stage[s];
    }
    return worst;
}

static void search(brute *b, unsigned done, int k, int used) {
    unsigned full = (1u << b->n) - 1;
    if (done == full) {
        if (b->exact && used != b->N) return;
        double t = price(b, k);
        if (t < b->best) b->best = t;
        return;
    }
    unsigned rest = full & ~done;
    for (unsigned x = rest; x; x = (x - 1) & rest) {
        if (!closed(b, done | x)) continue;
        for (int r = 1; r <= (b->straight ? 1 : b->N - used); r++) {
            b->stage[k] = x;
            b->reps[k] = r;
            search(b, done | x, k + 1, used + r);
        }
    }
}

static double brute_force(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o) {
    brute b = {0};
    b.g = g;
    b.c = c;
    pd_cost_level_of(&b.lv, c, g, 0);
    b.cm = o->cost_model;
    b.straight = o->straight;
    b.exact = pd_ilp_uses_every_worker(o);
    b.N = c->count[0];
    b.n = g->n;
    for (int e = 0; e < g->n_edges; e++) b.pred[g->dst[e]] |= 1u << g->src[e];
    b.best = INFINITY;
    search(&b, 0, 0, 0);
    return b.best;
}

/* Checks that a plan is what it says: stages partition the nodes in an order that respects
 * every edge, replicas sum within the workers, and its bottleneck re-prices to itself. */
static int plan_consistent(const pd_plan *p, const pd_costgraph *g, const pd_cluster *c) {
    int *stage_of = malloc(sizeof(int) * (size_t)g->n);
    for (int v = 0; v < g->n; v++) stage_of[v] = -1;
    int ok = 1, used = 0;
    double worst = 0;
    for (int s = 0; s < p->n_stages; s++) {
        for (int k = 0; k < p->stages[s].n_nodes; k++) {
            int v = p->stages[s].nodes[k];
            if (stage_of[v] != -1) ok = 0;
            stage_of[v] = s;
        }
        used += p->stages[s].replicas;
        if (p->stages[s].time_ms > worst) worst = p->stages[s].time_ms;
    }
    for (int v = 0; v < g->n; v++)
        if (stage_of[v] < 0) ok = 0;
    for (int e = 0; ok && e < g->n_edges; e++)
        if (stage_of[g->src[e]] > stage_of[g->dst[e]]) ok = 0;
    if (used > c->count[0] || used != p->workers) ok = 0;
    if (fabs(worst - p->bottleneck_ms) > 1e-12 * worst) ok = 0;
    free(stage_of);
    return ok;
}

static int close_rel(double a, double b) {
    if (isinf(a) || isinf(b)) return isinf(a) && isinf(b);
    return fabs(a - b) <= 1e-9 * fabs(b) + 1e-12;
}

/* The integer program's optimum on random instances against the exhaustive search. */
static void against_brute(int dag, int memory, int count) {
    int mismatches = 0, solved = 0, infeasible = 0;
    for (int it = 0; it < count; it++) {
        int n = dag ? irand(3, 6) : irand(3, 8);
        pd_costgraph *g = random_graph(n, dag);
        pd_cluster c;
        random_cluster(&c, g, dag ? 4 : 5, memory);
        pd_plan_opts o = {0};
        o.cost_model = urand() < 0.5 ? PD_COST_DEFAULT : PD_COST_PIPEDREAM;
        o.straight = urand() < 0.3;
        double want = brute_force(g, &c, &o);
        pd_plan *pl = NULL;
        pd_certificate cert;
        char why[160];
        pd_diag d = {0};
        int rc = pd_ilp_optimum(&pl, &cert, g, &c, &o, INFINITY, 30, why, sizeof why, &d);
        CHECK_EQ_INT(rc, 0);
        double got = pl ? pl->bottleneck_ms : INFINITY;
        if (!close_rel(got, want)) {
            mismatches++;
            if (mismatches < 5)
                test_fail(__FILE__, __LINE__, "instance %d (n=%d N=%d cm=%d straight=%d mem=%g):"
                          " ilp %.17g, brute force %.17g", it, n, c.count[0], o.cost_model,
                          o.straight, c.memory_bytes, got, want);
        }
        if (pl) {
            solved++;
            CHECK(!strcmp(cert.status, "optimal"));
            CHECK(plan_consistent(pl, g, &c));
        } else {
            infeasible++;
            CHECK(!strcmp(cert.status, "infeasible"));
        }
        pd_plan_free(pl);
        pd_costgraph_free(g);
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(solved > count / 3);          /* the instances are not all trivially infeasible */
    if (memory) CHECK(infeasible > 0);  /* and the memory limit does bind sometimes */
}

TEST(ilp_equals_brute_force_on_chains) { against_brute(0, 0, 120); }
TEST(ilp_equals_brute_force_on_dags) { against_brute(1, 0, 80); }
TEST(ilp_equals_brute_force_with_memory_limits) {
    against_brute(0, 1, 60);
    against_brute(1, 1, 40);
}

/* ---- against the DP ---- */

static void against_dp(int dag, int memory, int count, int *compared) {
    int mismatches = 0;
    for (int it = 0; it < count; it++) {
        int n = dag ? irand(3, 8) : irand(3, 8);
        pd_costgraph *g = random_graph(n, dag);
        pd_cluster c;
        random_cluster(&c, g, 8, memory);
        pd_plan_opts o = {0};
        o.cost_model = urand() < 0.5 ? PD_COST_DEFAULT : PD_COST_PIPEDREAM;
        o.straight = urand() < 0.3;
        o.schedule = "1f1b";
        FILE *quiet = fopen("/dev/null", "w");
        pd_diag d = {0};
        d.out = quiet;
        pd_plan *dp = pd_plan_dp(g, &c, &o, &d);
        pd_plan *better = NULL;
        double dp_ms = dp ? dp->bottleneck_ms : INFINITY;
        if (dp) {
            int rc = pd_certify(g, &c, &o, dp, 30, &better, &d);
            CHECK_EQ_INT(rc, 0);
            CHECK(!strcmp(dp->certificate.solver, "glpk"));
            CHECK(!strcmp(dp->certificate.status, "optimal"));
            if (!close_rel(dp->certificate.objective, dp_ms)) {
                mismatches++;
                if (mismatches < 5)
                    test_fail(__FILE__, __LINE__, "instance %d (n=%d N=%d cm=%d straight=%d "
                              "mem=%g): certificate %.17g, DP %.17g", it, n, c.count[0],
                              o.cost_model, o.straight, c.memory_bytes,
                              dp->certificate.objective, dp_ms);
            }
            CHECK(dp->certificate.seconds >= 0);
            (*compared)++;
        } else {
            /* the DP found nothing: the integer program must agree */
            pd_plan *pl = NULL;
            pd_certificate cert;
            char why[160];
            CHECK_EQ_INT(pd_ilp_optimum(&pl, &cert, g, &c, &o, INFINITY, 30, why, sizeof why, &d),
                         0);
            if (pl) {
                mismatches++;
                test_fail(__FILE__, __LINE__, "instance %d: DP found no plan, ILP %.17g", it,
                          pl->bottleneck_ms);
            }
            CHECK(!strcmp(cert.status, "infeasible"));
            pd_plan_free(pl);
        }
        pd_plan_free(better);
        pd_plan_free(dp);
        fclose(quiet);
        pd_costgraph_free(g);
    }
    CHECK_EQ_INT(mismatches, 0);
}

TEST(certificate_equals_dp_on_random_chains_and_dags) {
    int compared = 0;
    against_dp(0, 0, 150, &compared);
    against_dp(1, 0, 150, &compared);
    CHECK(compared >= 200);
}

TEST(certificate_equals_dp_with_memory_limits) {
    int compared = 0;
    against_dp(0, 1, 100, &compared);
    against_dp(1, 1, 100, &compared);
    CHECK(compared >= 60);
}

/* ---- what the certificate catches ---- */

/* Hand-edits the DP's plan into a worse one (everything in one stage on every worker: the
 * data-parallel plan) and checks that the certificate returns the better plan. */
TEST(worse_plan_is_caught) {
    int caught = 0;
    for (int it = 0; it < 40 && caught < 10; it++) {
        pd_costgraph *g = random_graph(irand(4, 8), it % 2);
        pd_cluster c;
        random_cluster(&c, g, 6, 0);
        pd_plan_opts o = {0};
        o.cost_model = it % 4 < 2 ? PD_COST_DEFAULT : PD_COST_PIPEDREAM;
        pd_diag d = {0};
        pd_plan *dp = pd_plan_dp(g, &c, &o, &d);
        CHECK(dp != NULL);
        if (!dp) { pd_costgraph_free(g); continue; }
        double best = dp->bottleneck_ms;
        /* the worse plan's bottleneck, priced independently */
        unsigned char *all = malloc((size_t)g->n);
        memset(all, 1, (size_t)g->n);
        pd_cost_level lv;
        pd_cost_level_of(&lv, &c, g, 0);
        pd_stage_cost sc;
        pd_stage_cost_nodes(&sc, g, &lv, o.cost_model, NULL, all, c.count[0], 0);
        free(all);
        if (sc.time_ms > best * (1 + 1e-6)) {
            /* rewrite the plan's stages: one stage holding every node, on every worker */
            for (int s = 1; s < dp->n_stages; s++) {
                free(dp->stages[s].nodes);
                free(dp->stages[s].ranks);
            }
            pd_stage *st = &dp->stages[0];
            st->nodes = realloc(st->nodes, sizeof(int) * (size_t)g->n);
            st->ranks = realloc(st->ranks, sizeof(int) * (size_t)c.count[0]);
            st->n_nodes = g->n;
            st->replicas = c.count[0];
            for (int v = 0; v < g->n; v++) st->nodes[v] = v;
            for (int r = 0; r < c.count[0]; r++) st->ranks[r] = r;
            st->time_ms = sc.time_ms;
            dp->n_stages = 1;
            dp->bottleneck_ms = sc.time_ms;
            pd_plan *better = NULL;
            int rc = pd_certify(g, &c, &o, dp, 30, &better, &d);
            CHECK_EQ_INT(rc, 1);
            CHECK(better != NULL);
            if (better) {
                CHECK_CLOSE(better->bottleneck_ms, best, 0, 1e-9);
                CHECK(plan_consistent(better, g, &c));
                CHECK(!strcmp(better->certificate.status, "optimal"));
                CHECK_EQ_INT(better->workers, c.count[0]);
            }
            CHECK_CLOSE(dp->certificate.objective, best, 0, 1e-9);
            caught++;
            pd_plan_free(better);
        }
        pd_plan_free(dp);
        pd_costgraph_free(g);
    }
    CHECK(caught >= 5);
}

/* A claimed bottleneck below the optimum (a plan that cannot exist) is not "agreed": the
 * certificate reports the true optimum and warns. */
TEST(impossible_claim_is_reported) {
    pd_costgraph *g = random_graph(6, 0);
    pd_cluster c;
    random_cluster(&c, g, 4, 0);
    c.count[0] = 3;
    pd_plan_opts o = {0};
    FILE *quiet = fopen("/dev/null", "w");
    pd_diag d = {0};
    d.out = quiet;
    pd_plan *dp = pd_plan_dp(g, &c, &o, &d);
    CHECK(dp != NULL);
    if (dp) {
        double best = dp->bottleneck_ms;
        dp->bottleneck_ms = best * 0.9;
        pd_plan *better = NULL;
        CHECK_EQ_INT(pd_certify(g, &c, &o, dp, 30, &better, &d), 0);
        CHECK(better == NULL);
        CHECK(!strcmp(dp->certificate.status, "optimal"));
        CHECK_CLOSE(dp->certificate.objective, best, 0, 1e-9);
        CHECK_EQ_INT(d.warnings, 1);
    }
    pd_plan_free(dp);
    fclose(quiet);
    pd_costgraph_free(g);
}

/* Two levels (the flattened pipeline, positional vertices): the integer program's own optimum equals the DP's bottleneck on random
 * chains and DAGs, 1-4 units per level, random bandwidths (default model, no memory limit: its
 * scope): unbounded on small instances, else capped at the DP's value and at 1.5 times it (the
 * caps prune arcs by different unit-count bounds); and the certificate of the DP's plan is
 * "optimal". */
TEST(two_level_ilp_equals_dp) {
    int compared = 0, mismatches = 0, split_inside = 0;
    for (int it = 0; it < 240 && mismatches < 5; it++) {
        int dag = it % 3 == 2, n = irand(2, dag ? 7 : 9);
        pd_costgraph *g = random_graph(n, dag);
        pd_cluster c = {0};
        c.n_levels = 2;
        c.count[0] = irand(1, 4);
        c.count[1] = irand(1, 4);
        c.bandwidth[0] = pow(10, 9.5 + 2 * urand());
        c.bandwidth[1] = c.bandwidth[0] * pow(10, -2 * urand());
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT, .schedule = "1f1b"};
        FILE *quiet = fopen("/dev/null", "w");
        pd_diag d = {.out = quiet};
        pd_plan *dp = pd_plan_dp(g, &c, &o, &d);
        pd_plan *pl = NULL;
        pd_certificate cert;
        char why[160] = "";
        /* the DP's bottleneck as the bound leaves out only stages slower than it; if no plan
         * within it existed, the integer program would go on over every stage (ilp.c), so a
         * DP value below the true optimum would still show; small instances also unbounded */
        double ub = dp && (n > 5 || c.count[0] * c.count[1] > 6) ? dp->bottleneck_ms : INFINITY;
        CHECK_EQ_INT(pd_ilp_optimum(&pl, &cert, g, &c, &o, ub, 30, why, sizeof why, &d), 0);
        CHECK((dp == NULL) == (pl == NULL));
        if (dp && pl) {
            if (!close_rel(pl->bottleneck_ms, dp->bottleneck_ms)) {
                mismatches++;
                test_fail(__FILE__, __LINE__, "instance %d (n=%d dag=%d %dx%d): integer program "
                          "%.17g, DP %.17g", it, n, dag, c.count[0], c.count[1],
                          pl->bottleneck_ms, dp->bottleneck_ms);
            }
            CHECK(!strcmp(cert.status, "optimal"));
            CHECK(pl->workers <= c.count[0] * c.count[1]);
            if (isfinite(ub)) { /* a looser cap prunes other arcs: the same optimum */
                pd_plan *p2 = NULL;
                pd_certificate c2;
                CHECK_EQ_INT(pd_ilp_optimum(&p2, &c2, g, &c, &o, 1.5 * ub, 30, why, sizeof why, &d),
                             0);
                CHECK(p2 && close_rel(p2->bottleneck_ms, pl->bottleneck_ms));
                pd_plan_free(p2);
            }
            for (int s = 0; s < pl->n_stages; s++)
                if (pl->stages[s].replicas % c.count[1] != 0 && pl->n_stages > 1) split_inside++;
            pd_plan *better = NULL;
            CHECK_EQ_INT(pd_certify(g, &c, &o, dp, 30, &better, &d), 0);
            CHECK(!strcmp(dp->certificate.status, "optimal"));
            CHECK(close_rel(dp->certificate.objective, dp->bottleneck_ms));
            CHECK(better == NULL);
            pd_plan_free(better);
            compared++;
        }
        pd_plan_free(pl);
        pd_plan_free(dp);
        fclose(quiet);
        pd_costgraph_free(g);
    }
    printf("two levels: %d instances, integer program = DP on all (%d stages not a multiple of "
           "the outer units)\n", compared, split_inside);
    CHECK(compared >= 200);
    CHECK_EQ_INT(mismatches, 0);
}

/* Outside the integer program's scope: skipped, never a wrong answer (several levels with a
 * memory limit or --compat pipedream). Three levels and --straight on two are in its scope (the
 * flattened pipeline, positional vertices): certified optimal. */
TEST(hierarchy_out_of_scope_is_skipped) {
    pd_costgraph *g = random_graph(6, 0);
    for (int k = 0; k < 4; k++) {
        pd_cluster c = {0};
        c.n_levels = k == 0 ? 3 : 2;
        for (int l = 0; l < c.n_levels; l++) {
            c.count[l] = 2;
            c.bandwidth[l] = 1e10 / (l + 1);
        }
        if (k == 1) c.memory_bytes = 1e12;
        pd_plan_opts o = {.cost_model = k == 2 ? PD_COST_PIPEDREAM : PD_COST_DEFAULT,
                          .straight = k == 3};
        pd_diag d = {0};
        pd_plan *dp = pd_plan_dp(g, &c, &o, &d);
        CHECK(dp != NULL);
        if (dp) {
            pd_plan *better = NULL;
            CHECK_EQ_INT(pd_certify(g, &c, &o, dp, 5, &better, &d), 0);
            CHECK(!strcmp(dp->certificate.status, k == 1 || k == 2 ? "skipped" : "optimal"));
            if (k == 0 || k == 3) CHECK(close_rel(dp->certificate.objective, dp->bottleneck_ms));
            CHECK(!strcmp(dp->certificate.solver, "glpk"));
            CHECK(better == NULL);
        }
        pd_plan_free(dp);
    }
    pd_costgraph_free(g);
}

/* A time limit too short to finish is inconclusive (timeout or gap), never a disagreement. */
TEST(time_limit_is_inconclusive) {
    pd_costgraph *g = random_graph(40, 0);
    pd_cluster c = {0};
    c.n_levels = 1;
    c.count[0] = 16;
    c.bandwidth[0] = 1e10;
    pd_plan_opts o = {0};
    pd_plan *pl = NULL;
    pd_certificate cert;
    char why[160];
    pd_diag d = {0};
    CHECK_EQ_INT(pd_ilp_optimum(&pl, &cert, g, &c, &o, INFINITY, 0.05, why, sizeof why, &d), 0);
    CHECK(!strcmp(cert.status, "timeout") || !strcmp(cert.status, "gap"));
    CHECK(cert.seconds < 5);
    pd_plan_free(pl);
    pd_costgraph_free(g);
}
