/* test_interleave_balance.c: pdplan --schedule interleaved's partition (tools/pdplan/
 * interleave.c). The DP balances the p * v chunks; pd_interleave_rebalance then moves layers
 * between consecutive chunks to balance the workers' sums. Against an exhaustive search over
 * every partition of random chains into p * v contiguous chunks, priced by pd_plan_price: the
 * lower bound it states is never above the true optimum, the rebalanced plan's bottleneck is the
 * price of its own stages (summed per worker) and never below the optimum, never above the DP's
 * plan mapped as it was, and (a quality figure, printed) usually the optimum itself. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"
#include "planner/dp/dp.h"
#include "test.h"
#include "xorshift.h"


#include "tools/pdplan/interleave.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) { return xorshift_uniform(&rng); }

static pd_costgraph *random_chain(int n) {
    pd_costgraph *g = pd_costgraph_new(n, n);
    for (int v = 0; v < n; v++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", v);
        g->name[v] = strdup(nm);
        g->fwd_ms[v] = 0.2 + 10 * urand() * urand();
        g->bwd_ms[v] = 2 * g->fwd_ms[v] * (0.5 + urand());
        g->act_bytes[v] = urand() < 0.3 ? 1e4 : 1e6 * (1 + 5 * urand());
        g->param_bytes[v] = 1e6 * urand();
        if (v > 0) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
        }
    }
    return g;
}

/* The slowest worker's sum of its stages' prices (pd_plan_price on cluster cv, stage s on
 * worker s mod p). */
static double worker_price(pd_plan *pl, const pd_costgraph *g, const pd_cluster *cv, int p) {
    double w[64] = {0}, worst = 0;
    pd_plan_price(pl, g, cv);
    for (int s = 0; s < pl->n_stages; s++) w[s % p] += pl->stages[s].time_ms;
    for (int r = 0; r < p; r++)
        if (w[r] > worst) worst = w[r];
    return worst;
}

/* A plan of K contiguous chunks of a chain of n nodes, chunk s ending before cut[s]. */
static pd_plan *chain_plan(int n, int K, const int *cut) {
    pd_plan *pl = calloc(1, sizeof *pl);
    pl->n_stages = K;
    pl->cost_model = PD_COST_DEFAULT;
    pl->stages = calloc((size_t)K, sizeof *pl->stages);
    for (int s = 0, a = 0; s < K; s++) {
        int b = s == K - 1 ? n : cut[s];
        pl->stages[s].n_nodes = b - a;
        pl->stages[s].nodes = malloc(sizeof(int) * (size_t)(b - a));
        for (int k = a; k < b; k++) pl->stages[s].nodes[k - a] = k;
        pl->stages[s].replicas = 1;
        pl->stages[s].ranks = malloc(sizeof(int));
        pl->stages[s].ranks[0] = s;
        a = b;
    }
    return pl;
}

/* The optimum over every placement of K - 1 cuts (cut[i] in (cut[i-1], n - (K - 1 - i))). */
static double brute(const pd_costgraph *g, const pd_cluster *cv, int p, int K, int *cut, int i) {
    int n = g->n;
    if (i == K - 1) {
        pd_plan *pl = chain_plan(n, K, cut);
        double t = worker_price(pl, g, cv, p);
        pd_plan_free(pl);
        return t;
    }
    double best = INFINITY;
    for (int c = (i ? cut[i - 1] : 0) + 1; c <= n - (K - 1 - i); c++) {
        cut[i] = c;
        double t = brute(g, cv, p, K, cut, i + 1);
        if (t < best) best = t;
    }
    return best;
}

TEST(rebalanced_interleaved_plans_against_exhaustive_search) {
    static const int shapes[][2] = {{2, 2}, {2, 3}, {3, 2}, {2, 4}};
    int cases = 0, optimal = 0, moved = 0, bad_bound = 0, bad_price = 0, worse = 0;
    double worst_excess = 0;
    for (int t = 0; t < 160; t++) {
        int p = shapes[t % 4][0], v = shapes[t % 4][1], K = p * v;
        int n = K + (int)(urand() * (13 - K));
        pd_costgraph *g = random_chain(n);
        pd_cluster c = {.n_levels = 1, .count = {p}, .bandwidth = {2e8 + 5e9 * urand()}};
        pd_cluster cv = c;
        cv.count[0] = K;
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT, .straight = 1, .schedule = "interleaved"};
        pd_diag d = {.out = stderr};
        pd_plan *pl = pd_plan_dp(g, &cv, &o, &d);
        CHECK(pl && pl->n_stages == K);
        if (!pl || pl->n_stages != K) {
            pd_plan_free(pl);
            pd_costgraph_free(g);
            continue;
        }
        double as_planned = worker_price(pl, g, &cv, p);
        moved += pd_interleave_rebalance(pl, g, &cv, v) > 0;
        double bound = pl->lower_bound_ms;
        pd_interleave_apply(pl, g, &c, v, 4 * p);
        int cut[16];
        double opt = brute(g, &cv, p, K, cut, 0);
        for (int s = 0; s < K; s++) pl->stages[s].ranks[0] = s; /* priced on cv, as planned */
        double own = worker_price(pl, g, &cv, p);
        if (bound > opt * (1 + 1e-9)) bad_bound++;
        if (fabs(own - pl->bottleneck_ms) > 1e-9 * own || own < opt * (1 - 1e-9)) bad_price++;
        if (pl->bottleneck_ms > as_planned * (1 + 1e-9)) worse++;
        if (pl->bottleneck_ms <= opt * (1 + 1e-9)) optimal++;
        if (pl->bottleneck_ms / opt - 1 > worst_excess) worst_excess = pl->bottleneck_ms / opt - 1;
        if (pl->exact && pl->bottleneck_ms > opt * (1 + 1e-9)) bad_bound++; /* "exact" must be */
        cases++;
        pd_plan_free(pl);
        pd_costgraph_free(g);
    }
    printf("  %d random chains (p x v: 2x2, 2x3, 3x2, 2x4; 4-12 layers): rebalancing moved "
           "layers in %d, the optimum in %d, worst %.2f%% above it\n", cases, moved, optimal,
           100 * worst_excess);
    CHECK(cases == 160);
    CHECK(bad_bound == 0);  /* the stated bound is a bound, and "exact" is the optimum */
    CHECK(bad_price == 0);  /* the bottleneck is the stages' own price, never below the optimum */
    CHECK(worse == 0);      /* never worse than the DP's chunks as they were */
    CHECK(moved > 0);
    CHECK(optimal >= cases * 3 / 4); /* local search: most cases reach the optimum */
}
