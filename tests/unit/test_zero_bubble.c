/* test_zero_bubble.c: the zb-h1 and zb-h2 schedules (runtime/schedule/schedule.c) and their
 * simulation (planner/sim): every rank runs each minibatch's forward, backward_input and
 * backward_weight once, in that order, W after B; the deadlock checker passes them on straight
 * and replicated pipelines; zb-h1 keeps 1F1B's in-flight count and zb-h2 about twice; and the
 * simulated time per minibatch on S equal stages with T_F = T_B = T_W matches the formulas of
 * docs/runtime.md within 2% (flush: (M + S - 1) 3T / M, zb-h1: (3M + S - 1) T / M, zb-h2:
 * (3M + max(0, 2S - 1 - M)) T / M, no bubble once M >= 2S - 1). */
#include <stdlib.h>
#include <string.h>

#include "planner/sim/simulate.h"
#include "runtime/schedule/schedule.h"
#include "test.h"

/* Checks one rank's actions: each of its minibatches has F, B and W once, F < B < W. */
static int rank_is_well_formed(const pd_rank_schedule *rs, int steps) {
    int *at = calloc((size_t)steps * 3, sizeof(int));
    int ok = at != NULL;
    for (int i = 0; ok && i < steps * 3; i++) at[i] = -1;
    for (int i = 0; ok && i < rs->n; i++) {
        const pd_action *a = &rs->a[i];
        int k = a->kind == PD_A_FORWARD           ? 0
                : a->kind == PD_A_BACKWARD_INPUT  ? 1
                : a->kind == PD_A_BACKWARD_WEIGHT ? 2
                                                  : -1;
        if (a->kind == PD_A_BACKWARD) ok = 0;
        if (k < 0) continue;
        if (a->mb < 0 || a->mb >= steps || at[a->mb * 3 + k] >= 0) ok = 0;
        else at[a->mb * 3 + k] = i;
    }
    for (int m = 0; ok && m < steps; m++) {
        int f = at[m * 3], b = at[m * 3 + 1], w = at[m * 3 + 2];
        if (f < 0 && b < 0 && w < 0) continue; /* another replica's */
        if (!(f >= 0 && f < b && b < w)) ok = 0;
    }
    free(at);
    return ok;
}

static int peak_in_flight(const pd_rank_schedule *rs) {
    int cur = 0, most = 0;
    for (int i = 0; i < rs->n; i++) {
        if (rs->a[i].kind == PD_A_FORWARD && ++cur > most) most = cur;
        if (rs->a[i].kind == PD_A_BACKWARD_WEIGHT) cur--;
    }
    return most;
}

TEST(zb_schedules_are_well_formed_and_deadlock_free) {
    const char *names[2] = {"zb-h1", "zb-h2"};
    char why[512];
    for (int k = 0; k < 2; k++)
        for (int S = 1; S <= 6; S++)
            for (int steps = 1; steps <= 19; steps += 3) {
                pd_schedule_spec sp = {names[k], S, NULL, NULL, NULL, steps, 2 * S};
                pd_schedule *s = pd_schedule_build(&sp);
                CHECK(s != NULL);
                if (!s) continue;
                if (pd_schedule_check(s, why, sizeof why)) {
                    fprintf(stderr, "%s S=%d steps=%d: %s\n", names[k], S, steps, why);
                    CHECK(0);
                }
                for (int r = 0; r < s->n_ranks; r++) {
                    CHECK(rank_is_well_formed(&s->ranks[r], steps));
                    int limit = k ? 2 * S - 1 : S; /* h1: 1F1B's peak (stage 0's), h2: about twice */
                    CHECK(peak_in_flight(&s->ranks[r]) <= limit);
                }
                pd_schedule_free(s);
            }
    /* replicated stages: 2, 1, 3 replicas; odd steps */
    int reps[3] = {2, 1, 3};
    for (int k = 0; k < 2; k++) {
        pd_schedule_spec sp = {names[k], 3, reps, NULL, NULL, 13, 6};
        pd_schedule *s = pd_schedule_build(&sp);
        CHECK(s != NULL && s->n_ranks == 6);
        if (!s) continue;
        CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 0);
        for (int r = 0; r < s->n_ranks; r++) CHECK(rank_is_well_formed(&s->ranks[r], 13));
        pd_schedule_free(s);
    }
    CHECK(pd_schedule_known("zb-h1") && pd_schedule_is_sync("zb-h2") && !pd_schedule_is_sync("1f1b"));
    CHECK(pd_schedule_splits_backward("zb-h1") && !pd_schedule_splits_backward("flush"));
    CHECK(!pd_schedule_known("zb-h3"));
}

/* S equal stages of one node each: forward 1 ms, backward 2 ms (the simulator's B and W are
 * 1 ms each: the node has weights), no communication. */
static pd_costgraph *equal_chain(int S) {
    pd_costgraph *g = pd_costgraph_new(S, S);
    for (int v = 0; v < S; v++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", v);
        g->name[v] = strdup(nm);
        g->fwd_ms[v] = 1;
        g->bwd_ms[v] = 2;
        g->param_bytes[v] = 4;
        if (v > 0) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
        }
    }
    return g;
}

static pd_plan *straight(int S) {
    pd_plan *p = calloc(1, sizeof *p);
    p->n_stages = S;
    p->stages = calloc(S > 0 ? (size_t)S : 1, sizeof *p->stages);
    for (int s = 0; s < S; s++) {
        p->stages[s].n_nodes = 1;
        p->stages[s].nodes = malloc(sizeof(int));
        p->stages[s].nodes[0] = s;
        p->stages[s].replicas = 1;
    }
    pd_plan_assign_ranks(p);
    for (int s = 0; s < S; s++) p->stages[s].warmup = S - 1 - s;
    snprintf(p->schedule, sizeof p->schedule, "flush");
    return p;
}

TEST(zb_bubbles_match_their_formulas) {
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 1;
    c.bandwidth[0] = 1e12;
    char why[512];
    int stages[2] = {4, 8}, mbs[3] = {8, 16, 32};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) {
            int S = stages[i], M = mbs[j];
            c.count[0] = S;
            pd_costgraph *g = equal_chain(S);
            pd_plan *p = straight(S);
            pd_sim_opts o = {.microbatches = M};
            const char *names[3] = {"flush", "zb-h1", "zb-h2"};
            /* zb-h2 fills the wait for the first B with forwards only when M >= 2S - 1 */
            int idle = 2 * S - 1 - M > 0 ? 2 * S - 1 - M : 0;
            double want[3] = {(M + S - 1) * 3.0 / M, (3.0 * M + S - 1) / M, (3.0 * M + idle) / M};
            for (int k = 0; k < 3; k++) {
                pd_sim_result r;
                int rc = pd_simulate(&r, NULL, g, &c, p, names[k], 4 * M, &o, why, sizeof why);
                CHECK_EQ_INT(rc, 0);
                if (rc) { fprintf(stderr, "%s\n", why); continue; }
                printf("  %-5s S=%d M=%2d: %.4f ms per minibatch (formula %.4f)\n", names[k], S,
                       M, r.steady_ms, want[k]);
                CHECK_CLOSE(r.steady_ms, want[k], 0, 0.02);
                pd_sim_result_free(&r);
            }
            pd_plan_free(p);
            pd_costgraph_free(g);
        }
}
