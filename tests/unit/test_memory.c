/* test_memory.c: one memory model for the DP and the simulator (planner/cost/memory.h). On random
 * chains, plans (stages, replicas) and schedules (1f1b, 2bw, flush, gpipe, zb-h1, zb-h2, with and
 * without recomputation, several microbatch counts): the simulator's peak memory per stage
 * equals pd_plan_stage_memory (zb-h2: at most, its greedy order may keep fewer in flight than the
 * limit its generator keeps to), and the DP's figure (pd_stage_cost_eval under the cluster's
 * memory model, zb's largest warm-up bounded by the workers - 1) is at least that, equal where
 * the schedule's in-flight count depends on the stage alone. Then the DP under a limit: every
 * stage of its plan fits under the schedule's memory, and a leaner model (flush's) never plans a
 * slower pipeline than 1f1b's under the same limit; and the certificate's integer program finds
 * the DP's optimum under each schedule's memory (or, like the DP, no plan). */
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"
#include "planner/cost/memory.h"
#include "planner/certificate/ilp.h"
#include "planner/dp/dp.h"
#include "planner/sim/simulate.h"
#include "test.h"
#include "xorshift.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { return xorshift_uniform(&rng_state); }
static int irand(int lo, int hi) { return xorshift_int(&rng_state, lo, hi); }

static pd_costgraph *random_chain(int n) {
    pd_costgraph *g = pd_costgraph_new(n, n);
    for (int v = 0; v < n; v++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", v);
        g->name[v] = strdup(nm);
        g->fwd_ms[v] = 0.5 + 5 * urand();
        g->bwd_ms[v] = 2 * g->fwd_ms[v] * urand();
        g->act_bytes[v] = 1e6 * (1 + 20 * urand());
        g->param_bytes[v] = urand() < 0.3 ? 0 : 1e6 * (1 + 50 * urand());
        if (v > 0) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
        }
    }
    g->optim_buffers = irand(0, 2);
    return g;
}

/* A random plan of g: n_stages contiguous stages, random replica counts. */
static pd_plan *random_plan(const pd_costgraph *g, int n_stages) {
    pd_plan *p = calloc(1, sizeof *p);
    p->n_stages = n_stages;
    p->stages = calloc((size_t)n_stages, sizeof *p->stages);
    int first = 0;
    unsigned char *upto = calloc((size_t)g->n, 1);
    for (int s = 0; s < n_stages; s++) {
        pd_stage *st = &p->stages[s];
        int left = g->n - first - (n_stages - 1 - s);
        st->n_nodes = s == n_stages - 1 ? g->n - first : irand(1, left);
        st->nodes = malloc(sizeof(int) * (size_t)st->n_nodes);
        for (int i = 0; i < st->n_nodes; i++) st->nodes[i] = first + i;
        st->replicas = urand() < 0.6 ? 1 : irand(2, 3);
        st->act_in_bytes = s ? pd_cut_bytes(g, upto) : 0;
        for (int i = 0; i < st->n_nodes; i++) upto[first + i] = 1;
        first += st->n_nodes;
    }
    free(upto);
    pd_plan_assign_ranks(p);
    return p;
}

static pd_cluster flat(int workers) {
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 1;
    c.count[0] = workers;
    c.bandwidth[0] = 1e10;
    return c;
}

TEST(dp_memory_equals_or_bounds_the_simulated_peak) {
    static const char *const names[] = {"1f1b", "2bw", "flush", "gpipe", "zb-h1", "zb-h2"};
    int checked = 0;
    for (int trial = 0; trial < 40 && !test_failed_now(); trial++) {
        pd_costgraph *g = random_chain(irand(2, 8));
        pd_plan *p = random_plan(g, irand(1, g->n < 4 ? g->n : 4));
        int reps[8];
        for (int s = 0; s < p->n_stages; s++) reps[s] = p->stages[s].replicas;
        int L = pd_schedule_replica_lcm(p->n_stages, reps);
        pd_cluster c = flat(p->workers);
        for (int si = 0; si < 6; si++) {
            const char *name = names[si];
            int zb = pd_schedule_splits_backward(name);
            int M = L * irand(1, 4);
            if (!strcmp(name, "2bw")) /* two versions need warm-up <= M / replicas */
                while (1) {
                    int ok = 1;
                    for (int s = 0; s < p->n_stages; s++)
                        if (p->stages[s].warmup > M / p->stages[s].replicas) ok = 0;
                    if (ok) break;
                    M += L;
                }
            for (int rc = 0; rc <= !zb; rc++) {
                for (int s = 0; s < p->n_stages; s++) p->stages[s].recompute = rc;
                pd_sim_opts o = {.microbatches = M};
                pd_sim_result r;
                char why[256];
                int e = pd_simulate(&r, NULL, g, &c, p, name, 0, &o, why, sizeof why);
                if (e) fprintf(stderr, "%s: %s\n", name, why);
                CHECK_EQ_INT(e, 0);
                if (e) continue;
                pd_mem_model exact = pd_mem_model_of(name, M, rc, 0);
                pd_cost_level lv;
                c.mem = pd_mem_model_of(name, M, rc, p->workers - 1);
                pd_cost_level_of(&lv, &c, g, 0);
                int before = 0;
                for (int s = 0; s < p->n_stages; s++) {
                    const pd_stage *st = &p->stages[s];
                    before += st->replicas;
                    double sim = r.stage_peak_memory[s];
                    double plan = pd_plan_stage_memory(p, s, g, &exact);
                    pd_mem_stage held = pd_mem_stage_of(p, s, g);
                    pd_stage_sums ss = {0, held.param_bytes, held.act_bytes, held.in_bytes, 0,
                                        s == 0, s == p->n_stages - 1};
                    pd_stage_cost dc;
                    pd_stage_cost_eval(&dc, &ss, &lv, PD_COST_DEFAULT, st->replicas,
                                       p->workers - before);
                    if (!strcmp(name, "zb-h2")) CHECK(sim <= plan * (1 + 1e-12));
                    else CHECK_CLOSE(sim, plan, 0, 1e-12);
                    if (zb) CHECK(plan <= dc.memory_bytes * (1 + 1e-12));
                    else CHECK_CLOSE(dc.memory_bytes, plan, 0, 1e-12);
                    if (test_failed_now()) {
                        fprintf(stderr, "trial %d %s M %d rc %d stage %d of %d (replicas %d, "
                                "warm-up %d): simulated %.17g, plan %.17g, DP %.17g\n", trial,
                                name, M, rc, s, p->n_stages, st->replicas, st->warmup, sim,
                                plan, dc.memory_bytes);
                        break;
                    }
                    checked++;
                }
                pd_sim_result_free(&r);
            }
        }
        pd_plan_free(p);
        pd_costgraph_free(g);
    }
    CHECK(checked > 500);
}

/* The most memory any stage of p needs. */
static double max_stage_memory(const pd_plan *p) {
    double m = 0;
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].memory_bytes > m) m = p->stages[s].memory_bytes;
    return m;
}

TEST(dp_plans_within_each_schedules_memory) {
    static const char *const names[] = {"1f1b", "2bw", "flush", "gpipe", "zb-h1", "zb-h2"};
    int planned = 0, tighter = 0;
    for (int trial = 0; trial < 12 && !test_failed_now(); trial++) {
        pd_costgraph *g = random_chain(irand(6, 12));
        pd_cluster c = flat(irand(3, 6));
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT};
        /* a limit between the leanest one-stage-per-worker need and the unlimited plan's */
        pd_diag d0 = {.out = tmpfile()};
        pd_plan *free_plan = pd_plan_dp(g, &c, &o, &d0);
        if (d0.out) fclose(d0.out);
        CHECK(free_plan != NULL);
        if (!free_plan) continue;
        c.memory_bytes = max_stage_memory(free_plan) * (0.3 + 0.5 * urand());
        pd_plan_free(free_plan);
        double bottleneck[6];
        for (int si = 0; si < 6; si++) {
            int M = 4 * c.count[0];
            pd_diag quiet = {.out = tmpfile()};
            c.mem = pd_mem_model_of(names[si], M, 0, c.count[0] - 1);
            pd_plan *p = pd_plan_dp(g, &c, &o, &quiet);
            if (quiet.out) fclose(quiet.out);
            bottleneck[si] = p ? p->bottleneck_ms : INFINITY;
            if (!p) continue;
            planned++;
            pd_mem_model exact = pd_mem_model_of(names[si], M, 0, 0);
            for (int s = 0; s < p->n_stages; s++) {
                double need = pd_plan_stage_memory(p, s, g, &exact);
                CHECK(need <= c.memory_bytes * (1 + 1e-12));
                CHECK_CLOSE(p->stages[s].memory_bytes, need, 0, 1e-9);
            }
            pd_plan_free(p);
        }
        /* flush keeps one weight version and at most 1f1b's minibatches in flight */
        CHECK(bottleneck[2] <= bottleneck[0] * (1 + 1e-12));
        tighter += bottleneck[2] < bottleneck[0] * (1 - 1e-9);
        pd_costgraph_free(g);
    }
    CHECK(planned > 20);
    CHECK(tighter > 0); /* the model matters: some limit lets flush plan a faster pipeline */
}

/* The certificate's integer program prices stages through pd_stage_cost_eval too, so under each
 * schedule's memory model (and zb's bound on the warm-up) it finds the DP's optimum, or like
 * the DP no plan at all. */
TEST(certificate_agrees_under_each_schedules_memory) {
    static const char *const names[] = {"2bw", "flush", "gpipe", "zb-h1", "zb-h2"};
    int compared = 0, none = 0, binding = 0;
    FILE *devnull = fopen("/dev/null", "w");
    for (int trial = 0; trial < 45 && !test_failed_now(); trial++) {
        pd_costgraph *g = random_chain(irand(3, 7));
        pd_cluster c = flat(irand(2, 5));
        int N = c.count[0];
        const char *name = names[trial % 5];
        int B = pd_schedule_splits_backward(name) ? irand(0, N - 1) : N - 1;
        c.mem = pd_mem_model_of(name, irand(1, 3) * N, irand(0, 1), B);
        pd_plan_opts o = {.cost_model = PD_COST_DEFAULT, .schedule = name};
        pd_diag d = {.out = devnull};
        c.memory_bytes = 0;
        pd_plan *free_plan = pd_plan_dp(g, &c, &o, &d);
        CHECK(free_plan != NULL);
        if (!free_plan) continue;
        c.memory_bytes = max_stage_memory(free_plan) * (0.3 + 1.2 * urand());
        double free_ms = free_plan->bottleneck_ms;
        pd_plan_free(free_plan);
        pd_plan *p = pd_plan_dp(g, &c, &o, &d);
        if (p) {
            binding += p->bottleneck_ms > free_ms * (1 + 1e-9); /* the limit cost something */
            pd_plan *better = NULL;
            CHECK_EQ_INT(pd_certify(g, &c, &o, p, 30, &better, &d), 0);
            CHECK(!strcmp(p->certificate.status, "optimal"));
            CHECK_CLOSE(p->certificate.objective, p->bottleneck_ms, 0, 1e-9);
            if (test_failed_now())
                fprintf(stderr, "trial %d %s B %d limit %g: DP %.17g, certificate %s %.17g\n",
                        trial, name, B, c.memory_bytes, p->bottleneck_ms,
                        p->certificate.status, p->certificate.objective);
            pd_plan_free(better);
            pd_plan_free(p);
            compared++;
        } else {
            pd_plan *pl = NULL;
            pd_certificate cert;
            char why[160];
            CHECK_EQ_INT(pd_ilp_optimum(&pl, &cert, g, &c, &o, INFINITY, 30, why, sizeof why, &d),
                         0);
            CHECK(pl == NULL);
            pd_plan_free(pl);
            none++;
        }
        pd_costgraph_free(g);
    }
    fclose(devnull);
    if (compared <= 10 || !none || !binding)
        fprintf(stderr, "compared %d (the limit binding in %d), no plan %d\n", compared, binding,
                none);
    CHECK(compared > 10);
    CHECK(binding > 0);
    CHECK(none > 0);
}
