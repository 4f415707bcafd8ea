/* test_shallow.c: plans under a memory limit that holds a replicated pipeline only at
 * PipeDream's warm-up depth (tools/pdplan/choose.c, pd_plan_schedule). The DP's plan at the
 * deeper depth reaches its price (test_price); a shallow plan may run faster though slower than
 * its own price, so pdplan plans both, simulates both and keeps the faster. On random chains with
 * random limits: the plan kept is never slower in simulation than the deep plan; when it is the
 * shallow one, its bottleneck is its simulated time, every stage fits the limit at the warm-up it
 * runs, and it has a replicated stage at PipeDream's depth; otherwise it is the deep plan. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planner/dp/dp.h"
#include "planner/plan/plan.h"
#include "planner/sim/simulate.h"
#include "test.h"
#include "xorshift.h"
#include "tools/pdplan/choose.h"

static uint64_t rng = 0x51ed2701a3c4f5e9ull;
static double urand(void) { return xorshift_uniform(&rng); }

static pd_costgraph *random_chain(int n) {
    pd_costgraph *g = pd_costgraph_new(n, n);
    for (int v = 0; v < n; v++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", v);
        g->name[v] = strdup(nm);
        g->fwd_ms[v] = 0.5 + 5 * urand();
        g->bwd_ms[v] = 2 * g->fwd_ms[v] * urand();
        g->act_bytes[v] = 1e5 * (1 + 20 * urand());
        g->param_bytes[v] = urand() < 0.3 ? 0 : 1e6 * (1 + 50 * urand());
        if (v > 0) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
        }
    }
    return g;
}

static double ring_ms(const pd_costgraph *g, const pd_cluster *c, const pd_plan *p) {
    pd_sim_opts so = {.allreduce = PD_SIM_AR_RING};
    pd_sim_result r;
    char why[256];
    if (pd_simulate(&r, NULL, g, c, p, "1f1b", 0, &so, why, sizeof why)) return INFINITY;
    double ms = r.steady_ms;
    pd_sim_result_free(&r);
    return ms;
}

TEST(shallow_plans_only_where_they_simulate_faster) {
    int trials = 0, shallow = 0, bad_time = 0, bad_fit = 0, bad_depth = 0, slower = 0;
    FILE *devnull = fopen("/dev/null", "w");
    for (int t = 0; t < 60; t++) {
        pd_costgraph *g = random_chain(4 + (int)(urand() * 6));
        pd_cluster c = {.n_levels = 1, .count = {4 + (int)(urand() * 5)},
                        .bandwidth = {1e9 + 1e10 * urand()}};
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT, .schedule = "1f1b"};
        pd_diag d = {.out = devnull};
        pd_plan *free_plan = pd_plan_dp(g, &c, &o, &d);
        double most = 0;
        for (int s = 0; free_plan && s < free_plan->n_stages; s++)
            if (free_plan->stages[s].memory_bytes > most) most = free_plan->stages[s].memory_bytes;
        pd_plan_free(free_plan);
        c.memory_bytes = most * (0.2 + 0.8 * urand());
        pd_plan *deep = pd_plan_dp(g, &c, &o, &d);
        pd_cluster planned;
        pd_plan *p = pd_plan_schedule(g, g, &c, &o, "1f1b", 0, 0, 1, &planned, &d);
        if (p) {
            trials++;
            double ms = ring_ms(g, &c, p), deep_ms = deep ? ring_ms(g, &c, deep) : INFINITY;
            if (ms > deep_ms * (1 + 1e-9)) slower++;
            if (p->simulated_ms > 0) {
                shallow++;
                if (fabs(p->bottleneck_ms - ms) > 1e-9 * ms) bad_time++;
                int replicated = 0;
                for (int s = 0; s < p->n_stages; s++) {
                    const pd_stage *st = &p->stages[s];
                    if (st->memory_bytes > c.memory_bytes * (1 + 1e-12)) bad_fit++;
                    int after = 0;
                    for (int k = s + 1; k < p->n_stages; k++) after += p->stages[k].replicas;
                    if (st->warmup != pd_warmup_depth(after, st->replicas, 0)) bad_depth++;
                    replicated |= st->replicas > 1;
                }
                if (!replicated) bad_depth++;
            } else if (!deep || fabs(p->bottleneck_ms - deep->bottleneck_ms) > 1e-9 * p->bottleneck_ms) {
                bad_time++;
            }
        }
        pd_plan_free(p);
        pd_plan_free(deep);
        pd_costgraph_free(g);
    }
    fclose(devnull);
    printf("  %d plans under random limits, %d of them shallow\n", trials, shallow);
    CHECK(trials >= 40);
    CHECK(shallow > 0);
    CHECK(slower == 0);
    CHECK(bad_time == 0);
    CHECK(bad_fit == 0);
    CHECK(bad_depth == 0);
}
