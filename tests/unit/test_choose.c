/* test_choose.c: pdplan --schedule auto's per-stage recomputation mixes and its candidates per
 * backend (tools/pdplan/choose.c, pd_choose_schedule, pd_backend_runs). On random chains (with
 * selective recomputation's kept layers) under random memory limits, for the CPU and the CUDA
 * backend: every stage of the chosen plan runs a mode the backend's executor runs (the CUDA
 * executor's refusals, runtime/cuda/executor_cuda_mem.c, written out here: no selective, no
 * recomputation under zb-h1/zb-h2, only its six schedules); where the choice is a mix, each
 * stage's memory is the shared function (pd_plan_stage_memory with its own mode), within the
 * limit, equal to the simulator's peak for the stage, and no mode that runs less forward again
 * fits, and its price is the plan's over each stage's mode; the choice is at least as fast in
 * simulation as the plan under each forced schedule that fits; and mixes are chosen on some
 * cases of both backends. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"
#include "planner/cost/memory.h"
#include "planner/dp/dp.h"
#include "planner/plan/plan.h"
#include "planner/sim/simulate.h"
#include "runtime/schedule/schedule.h"
#include "test.h"
#include "tools/pdplan/choose.h"
#include "xorshift.h"

static uint64_t rng = 0x3c6ef372fe94f82bull;
static double urand(void) { return xorshift_uniform(&rng); }

/* a chain whose layers keep their outputs under selective recomputation or not (linear-like
 * layers with weights keep them) and store what they output */
static pd_costgraph *random_chain(int n) {
    pd_costgraph *g = pd_costgraph_new(n, n);
    g->stored_bytes = calloc((size_t)n, sizeof(double));
    g->selective_keeps = calloc((size_t)n, 1);
    for (int v = 0; v < n; v++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", v);
        g->name[v] = strdup(nm);
        g->fwd_ms[v] = 0.5 + 5 * urand();
        g->bwd_ms[v] = 2 * g->fwd_ms[v] * (0.5 + urand());
        g->act_bytes[v] = 1e6 * (1 + 20 * urand());
        g->stored_bytes[v] = g->act_bytes[v] * (1 + urand());
        g->param_bytes[v] = urand() < 0.3 ? 0 : 1e6 * (1 + 5 * urand());
        g->selective_keeps[v] = g->param_bytes[v] > 0;
        if (v > 0) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
        }
    }
    return g;
}

static int plan_M(const pd_plan *p) {
    if (!strcmp(p->schedule, "1f1b")) return 0;
    if (p->microbatches) return p->microbatches;
    int reps[64], n = p->n_stages < 64 ? p->n_stages : 64;
    for (int s = 0; s < n; s++) reps[s] = p->stages[s].replicas;
    return pd_schedule_default_microbatches(n, reps);
}

static int simulate(pd_sim_result *r, const pd_costgraph *g, const pd_cluster *c, const pd_plan *p,
                    int cpu) {
    pd_sim_opts so = {.allreduce = cpu ? PD_SIM_AR_GATHER : PD_SIM_AR_RING,
                      .microbatches = p->microbatches};
    char why[256];
    return pd_simulate(r, NULL, g, c, p, p->schedule, 0, &so, why, sizeof why);
}

/* what the CUDA executor refuses (pdrt_cx_alloc), independently of pd_backend_runs */
static int cuda_refuses(const char *schedule, int rc) {
    static const char *const ok[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw", "interleaved"};
    int known = 0;
    for (int i = 0; i < 7; i++) known |= !strcmp(schedule, ok[i]);
    int split = !strcmp(schedule, "zb-h1") || !strcmp(schedule, "zb-h2");
    return !known || rc == PD_RECOMPUTE_SELECTIVE || (split && rc);
}

TEST(backend_runs_matches_the_cuda_executors_refusals) {
    const char *names[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw", "interleaved"};
    for (int i = 0; i < 7; i++)
        for (int rc = 0; rc <= 2; rc++) {
            CHECK_EQ_INT(pd_backend_runs("cuda", names[i], rc), !cuda_refuses(names[i], rc));
            CHECK(pd_backend_runs("cpu", names[i], rc));
        }
    CHECK(!pd_backend_runs("cpu", "1f1b", 3));
}

TEST(auto_mixes_fit_with_each_stage_cheapest_mode) {
    static const char *const forced[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw"};
    FILE *devnull = fopen("/dev/null", "w");
    int chosen[2] = {0, 0}, mixes[2] = {0, 0}, bad_backend = 0, bad_mem = 0, bad_sim = 0;
    int not_cheapest = 0, bad_price = 0, slower = 0, uniform_mix = 0;
    for (int t = 0; t < 30; t++) {
        pd_costgraph *g = random_chain(5 + (int)(urand() * 6));
        pd_cluster c = {.n_levels = 1, .count = {3 + (int)(urand() * 4)},
                        .bandwidth = {1e9 + 1e10 * urand()}};
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT, .schedule = "auto", .straight = urand() < 0.5};
        pd_diag d = {.out = devnull};
        pd_plan *free_plan = pd_plan_dp(g, &c, &o, &d);
        double most = 0;
        for (int s = 0; free_plan && s < free_plan->n_stages; s++)
            if (free_plan->stages[s].memory_bytes > most) most = free_plan->stages[s].memory_bytes;
        pd_plan_free(free_plan);
        c.memory_bytes = most * (0.3 + 0.6 * urand());
        pd_costgraph *g_rc = pd_recompute_graph(g, PD_RECOMPUTE_FULL);
        pd_costgraph *g_sel = pd_recompute_graph(g, PD_RECOMPUTE_SELECTIVE);
        for (int cpu = 1; cpu >= 0; cpu--) {
            const char *be = cpu ? "cpu" : "cuda";
            pd_cluster planned;
            int prc = 0;
            pd_plan *p = pd_choose_schedule(devnull, g, g_rc, cpu ? g_sel : NULL, &c, &o, cpu, 0,
                                            &planned, &prc, &d);
            if (!p) continue;
            chosen[cpu]++;
            int M = plan_M(p), kinds = 0;
            for (int s = 0; s < p->n_stages; s++) {
                int rc = p->stages[s].recompute;
                if (!cpu && cuda_refuses(p->schedule, rc)) bad_backend++;
                kinds |= 1 << rc;
            }
            pd_sim_result r;
            if (simulate(&r, g, &c, p, cpu)) {
                bad_sim++;
                pd_plan_free(p);
                continue;
            }
            if (prc == -2) {
                mixes[cpu]++;
                uniform_mix += kinds == 1 || kinds == 2 || kinds == 4;
                for (int s = 0; s < p->n_stages; s++) {
                    const pd_stage *st = &p->stages[s];
                    pd_mem_model mm = pd_mem_model_of(p->schedule, M, st->recompute, 0);
                    double b = pd_plan_stage_memory(p, s, g, &mm);
                    if (!(b <= c.memory_bytes) || fabs(b - st->memory_bytes) > 1e-9 * b) bad_mem++;
                    if (fabs(r.stage_peak_memory[s] - b) > 1e-9 * b) bad_sim++;
                    double t = pd_stage_recompute_ms(g, st->nodes, st->n_nodes, st->recompute);
                    for (int m = 0; m <= 2; m++) {
                        if (!pd_backend_runs(be, p->schedule, m)) continue;
                        pd_mem_model mx = pd_mem_model_of(p->schedule, M, m, 0);
                        if (pd_stage_recompute_ms(g, st->nodes, st->n_nodes, m) < t &&
                            pd_plan_stage_memory(p, s, g, &mx) <= c.memory_bytes)
                            not_cheapest++;
                    }
                }
                pd_costgraph *gm = pd_recompute_graph_of(g, p);
                double price = p->simulated_ms > 0 ? p->stages_ms : p->bottleneck_ms;
                if (fabs(pd_plan_price(p, gm, &c) - price) > 1e-9 * price) bad_price++;
                pd_recompute_graph_free(gm);
            }
            if (r.peak_memory_bytes > c.memory_bytes) bad_mem++;
            /* at least as fast as the plan under each forced schedule that fits */
            for (int i = 0; i < 6; i++) {
                if (!pd_backend_runs(be, forced[i], 0)) continue;
                pd_cluster cf;
                pd_plan_opts of = o;
                of.schedule = forced[i];
                pd_plan *f = pd_plan_schedule(g, g, &c, &of, forced[i], 0, 0, 1, &cf, &d);
                pd_sim_result rf;
                if (f && !simulate(&rf, g, &c, f, cpu)) {
                    if (rf.peak_memory_bytes <= c.memory_bytes &&
                        r.steady_ms > rf.steady_ms * (1 + 1e-9))
                        slower++;
                    pd_sim_result_free(&rf);
                }
                pd_plan_free(f);
            }
            pd_sim_result_free(&r);
            pd_plan_free(p);
        }
        pd_recompute_graph_free(g_rc);
        pd_recompute_graph_free(g_sel);
        pd_costgraph_free(g);
    }
    fclose(devnull);
    printf("  %d cpu and %d cuda choices, %d and %d of them mixes (%d of one mode: a partition "
           "priced with recomputation, run without)\n", chosen[1], chosen[0], mixes[1], mixes[0],
           uniform_mix);
    CHECK(chosen[1] >= 20 && chosen[0] >= 20);
    CHECK(mixes[1] > 0 && mixes[0] > 0);
    CHECK_EQ_INT(bad_backend, 0);
    CHECK_EQ_INT(bad_mem, 0);
    CHECK_EQ_INT(bad_sim, 0);
    CHECK_EQ_INT(not_cheapest, 0);
    CHECK_EQ_INT(bad_price, 0);
    CHECK_EQ_INT(slower, 0);
}
