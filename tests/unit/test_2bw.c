/* test_2bw.c: the 2bw schedule (runtime/schedule/schedule.c) and its simulation: 1F1B without
 * flushes, every replica joining update u right after its last backward of batch u (and every
 * update once, in order, also for batches it has no minibatch of), deadlock-free on straight
 * and replicated pipelines for any step count; in the simulator it keeps 1F1B's steady state
 * (no bubble per batch, unlike flush) with two weight versions per stage. */
#include <stdlib.h>
#include <string.h>

#include "planner/sim/simulate.h"
#include "runtime/schedule/schedule.h"
#include "test.h"

/* Checks rank rs: no flush; steps in update order 0, 1, ...; update u's STEP after the rank's
 * backwards of batch u and before its backwards of later batches. Returns the updates joined. */
static int check_rank(const pd_rank_schedule *rs, int M, int *ok) {
    int u = 0;
    for (int i = 0; i < rs->n; i++) {
        const pd_action *a = &rs->a[i];
        if (a->kind == PD_A_FLUSH) *ok = 0;
        if (a->kind == PD_A_BACKWARD && a->mb / M < u) *ok = 0;  /* its update is behind */
        if (a->kind == PD_A_BACKWARD && a->mb / M > u) {          /* earlier updates joined? */
            *ok = 0;
        }
        if (a->kind == PD_A_STEP) {
            if (a->mb / M != u) *ok = 0; /* STEP's mb: the last minibatch of its update */
            u++;
        }
        if (a->kind == PD_A_ALLREDUCE && a->mb != u) *ok = 0;
    }
    return u;
}

TEST(two_bw_steps_once_per_batch_and_is_deadlock_free) {
    char why[512];
    int reps_a[3] = {1, 1, 1}, reps_b[3] = {2, 1, 3};
    const int *reps[2] = {reps_a, reps_b};
    for (int k = 0; k < 2; k++)
        for (int M = 3; M <= 7; M += 2)
            for (int steps = 1; steps <= 23; steps += 2) {
                pd_schedule_spec sp = {"2bw", 3, reps[k], NULL, NULL, steps, M};
                pd_schedule *s = pd_schedule_build(&sp);
                CHECK(s != NULL);
                if (!s) continue;
                if (pd_schedule_check(s, why, sizeof why)) {
                    fprintf(stderr, "2bw reps %d M %d steps %d: %s\n", k, M, steps, why);
                    CHECK(0);
                }
                for (int r = 0; r < s->n_ranks; r++) {
                    int ok = 1;
                    /* a replicated rank joins a batch it has no minibatch of before its next
                     * backward: check_rank's strict order only holds for one replica */
                    int u = check_rank(&s->ranks[r], M, &ok);
                    CHECK_EQ_INT(u, (steps + M - 1) / M);
                    if (!k) CHECK(ok);
                }
                pd_schedule_free(s);
            }
    CHECK(pd_schedule_known("2bw") && !pd_schedule_is_sync("2bw"));
}

/* 3 equal stages (forward 1, backward 2): 2bw runs at 1F1B's pace, 3 ms per minibatch with no
 * bubble per batch, where flush pays (S - 1) stage times per batch; it keeps two weight versions
 * where 1f1b keeps up to three. */
TEST(two_bw_keeps_the_steady_state_with_two_versions) {
    enum { S = 3, M = 6 };
    pd_costgraph *g = pd_costgraph_new(S, S);
    for (int v = 0; v < S; v++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", v);
        g->name[v] = strdup(nm);
        g->fwd_ms[v] = 1;
        g->bwd_ms[v] = 2;
        g->param_bytes[v] = 1000;
        if (v > 0) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
        }
    }
    pd_plan *p = calloc(1, sizeof *p);
    p->n_stages = S;
    p->stages = calloc(S, sizeof *p->stages);
    for (int s = 0; s < S; s++) {
        p->stages[s].n_nodes = 1;
        p->stages[s].nodes = malloc(sizeof(int));
        p->stages[s].nodes[0] = s;
        p->stages[s].replicas = 1;
    }
    pd_plan_assign_ranks(p);
    for (int s = 0; s < S; s++) p->stages[s].warmup = S - 1 - s;
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 1;
    c.count[0] = S;
    c.bandwidth[0] = 1e12;
    pd_sim_opts o = {.microbatches = M};
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "2bw", 8 * M, &o, why, sizeof why), 0);
    CHECK_CLOSE(r.steady_ms, 3.0, 0, 1e-6);
    CHECK_CLOSE(r.rank_peak_memory[0], (2 + 2) * 1000.0, 0, 1e-9); /* no activation bytes */
    pd_sim_result_free(&r);
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "flush", 8 * M, &o, why, sizeof why), 0);
    CHECK_CLOSE(r.steady_ms, (M + S - 1) * 3.0 / M, 0, 1e-6);
    pd_sim_result_free(&r);
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 8 * M, &o, why, sizeof why), 0);
    CHECK_CLOSE(r.rank_peak_memory[0], (3 + 2) * 1000.0, 0, 1e-9);
    pd_sim_result_free(&r);
    pd_plan_free(p);
    pd_costgraph_free(g);
}
