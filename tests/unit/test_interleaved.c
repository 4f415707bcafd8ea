/* test_interleaved.c: the interleaved 1F1B schedule (runtime/schedule/interleaved.c) and its
 * simulation (planner/sim): over random p, v and M the deadlock checker passes it; every rank
 * runs, on each of its chunks r, r + p, ..., each minibatch's forward once and later its
 * backward once; its warm-up is Megatron's (p - r - 1) 2 + (v - 1) p chunk-forwards (then the
 * steady state's first forward comes before the first backward); one STEP
 * per chunk and a FLUSH per batch; the checker catches a message sent to the wrong chunk; and
 * the simulated time per minibatch on p ranks of v equal chunks matches the formula of
 * docs/runtime.md within 2%: (vM + p - 1)(T_F + T_B) / M per minibatch, a bubble of
 * (p - 1) / (vM) of the work. */
#include <stdlib.h>
#include <string.h>

#include "planner/sim/simulate.h"
#include "runtime/schedule/schedule.h"
#include "test.h"

/* Checks rank r's actions: only its own chunks; per chunk and minibatch one forward, then one
 * backward; the forwards before the first backward of each full batch number the warm-up + 1; one
 * STEP per chunk and one FLUSH per batch. */
static int rank_is_well_formed(const pd_schedule *s, int r, int M) {
    const pd_rank_schedule *rs = &s->ranks[r];
    int p = s->n_ranks, v = s->chunks, steps = s->steps, ok = 1;
    int *at = calloc((size_t)steps * (size_t)v * 2, sizeof(int));
    if (!at) return 0;
    for (int i = 0; i < steps * v * 2; i++) at[i] = -1;
    int steps_seen = 0, flushes = 0, fwd_run = 0, in_warmup = 1, batch = 0;
    for (int i = 0; ok && i < rs->n; i++) {
        const pd_action *a = &rs->a[i];
        if (a->stage % p != r || a->stage < 0 || a->stage >= p * v) ok = 0;
        int c = a->stage / p;
        if (a->kind == PD_A_FORWARD || a->kind == PD_A_BACKWARD) {
            int k = a->kind == PD_A_BACKWARD;
            if (a->mb < 0 || a->mb >= steps || at[(a->mb * v + c) * 2 + k] >= 0) ok = 0;
            else at[(a->mb * v + c) * 2 + k] = i;
            if (!k && in_warmup) fwd_run++;
            if (k && in_warmup) {
                int n = steps - batch * M < M ? steps - batch * M : M;
                int w = pd_schedule_interleaved_warmup(p, v, r, M); /* then 1F1B: F, B */
                if (n == M && fwd_run != (w < v * M ? w + 1 : w)) ok = 0;
                in_warmup = 0;
            }
        }
        if (a->kind == PD_A_STEP) steps_seen++;
        if (a->kind == PD_A_FLUSH) {
            flushes++, batch++;
            if (steps_seen != v * flushes) ok = 0;
            in_warmup = 1, fwd_run = 0;
        }
    }
    for (int m = 0; ok && m < steps; m++)
        for (int c = 0; c < v; c++) {
            int f = at[(m * v + c) * 2], b = at[(m * v + c) * 2 + 1];
            if (!(f >= 0 && f < b)) ok = 0;
        }
    if (flushes != (steps + M - 1) / M) ok = 0;
    free(at);
    return ok;
}

TEST(interleaved_is_well_formed_and_deadlock_free) {
    char why[512];
    unsigned seed = 20;
    int runs = 0;
    for (int t = 0; t < 150; t++) {
        seed = seed * 1103515245u + 12345u;
        int p = 2 + (int)(seed >> 16) % 7;        /* 2 .. 8 */
        seed = seed * 1103515245u + 12345u;
        int v = 1 + (int)(seed >> 16) % 4;        /* 1 .. 4 */
        seed = seed * 1103515245u + 12345u;
        int M = p * (1 + (int)(seed >> 16) % 4);  /* p .. 4p */
        seed = seed * 1103515245u + 12345u;
        int steps = 1 + (int)(seed >> 16) % (3 * M); /* partial batches included */
        pd_schedule *s = pd_schedule_interleaved(p, v, steps, M);
        CHECK(s != NULL);
        if (!s) continue;
        CHECK_EQ_INT(s->n_stages, p * v);
        CHECK_EQ_INT(s->chunks, v);
        if (pd_schedule_check(s, why, sizeof why)) {
            fprintf(stderr, "interleaved p=%d v=%d M=%d steps=%d: %s\n", p, v, M, steps, why);
            CHECK(0);
        }
        if (pd_schedule_check_in_order(s, why, sizeof why)) { /* the CUDA executor's NCCL */
            fprintf(stderr, "interleaved p=%d v=%d M=%d steps=%d: %s\n", p, v, M, steps, why);
            CHECK(0);
        }
        for (int r = 0; r < p; r++)
            if (!rank_is_well_formed(s, r, M)) {
                fprintf(stderr, "interleaved p=%d v=%d M=%d steps=%d: rank %d\n", p, v, M,
                        steps, r);
                CHECK(0);
            }
        pd_schedule_free(s);
        runs++;
    }
    CHECK_EQ_INT(runs, 150);
    /* Megatron's warm-up: rank 0 of 4 with 2 chunks, 8 microbatches: 2 * 3 + 4 = 10 */
    CHECK_EQ_INT(pd_schedule_interleaved_warmup(4, 2, 0, 8), 10);
    CHECK_EQ_INT(pd_schedule_interleaved_warmup(4, 2, 3, 8), 4);
    CHECK_EQ_INT(pd_schedule_interleaved_warmup(4, 2, 0, 4), 8); /* M == p: all forwards */
    /* bad arguments */
    CHECK(pd_schedule_interleaved(4, 2, 16, 6) == NULL);  /* M not a multiple of p */
    CHECK(pd_schedule_interleaved(1, 2, 16, 4) == NULL);  /* one rank */
    CHECK(pd_schedule_interleaved(4, 0, 16, 4) == NULL);
    CHECK(pd_schedule_known("interleaved") && pd_schedule_is_sync("interleaved"));
}

/* Every batch size, not a sample: p 2..6 ranks, v 1..4 chunks, M p..3p, 1..2M+1 steps (whole
 * and partial batches, ragged last groups), each deadlock-free and delivering in order on every
 * link (the CUDA executor's NCCL links match by order). A ragged last group in Megatron's order
 * would break the latter (its runs forwards first instead). */
TEST(interleaved_every_batch_size_is_safe_and_in_order) {
    char why[512];
    int n = 0;
    for (int p = 2; p <= 6; p++)
        for (int v = 1; v <= 4; v++)
            for (int M = p; M <= 3 * p; M += p)
                for (int steps = 1; steps <= 2 * M + 1; steps++) {
                    pd_schedule *s = pd_schedule_interleaved(p, v, steps, M);
                    CHECK(s != NULL);
                    if (!s) continue;
                    int bad = pd_schedule_check(s, why, sizeof why) ||
                              pd_schedule_check_in_order(s, why, sizeof why);
                    if (bad) fprintf(stderr, "p=%d v=%d M=%d steps=%d: %s\n", p, v, M, steps, why);
                    CHECK_EQ_INT(bad, 0);
                    pd_schedule_free(s);
                    n++;
                }
    CHECK_EQ_INT(n, 1020);
}

/* The checker matches messages by their stage: one send_act retargeted to the wrong chunk of
 * the same peer (and rank) leaves its receive unmatched. */
TEST(interleaved_checker_tells_chunks_apart) {
    pd_schedule *s = pd_schedule_interleaved(2, 2, 4, 2);
    CHECK(s != NULL);
    if (!s) return;
    char why[512];
    CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 0);
    pd_rank_schedule *rs = &s->ranks[0];
    int changed = 0;
    for (int i = 0; i < rs->n && !changed; i++)
        if (rs->a[i].kind == PD_A_SEND_ACT && rs->a[i].stage == 0) {
            rs->a[i].stage = 2; /* stage 2's output goes to stage 3, on rank 1 too */
            changed = 1;
        }
    CHECK(changed);
    CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 1);
    pd_schedule_free(s);
}

/* n equal nodes in a chain: forward 1 ms, backward 2 ms, no communication. */
static pd_costgraph *equal_chain(int n) {
    pd_costgraph *g = pd_costgraph_new(n, n);
    for (int v = 0; v < n; v++) {
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

/* p ranks with v one-node chunks each: stage s on rank s mod p, as pdplan --chunks makes it. */
static pd_plan *interleaved_plan(int p, int v) {
    pd_plan *pl = calloc(1, sizeof *pl);
    pl->n_stages = p * v;
    pl->chunks = v;
    pl->workers = p;
    pl->stages = calloc(p * v > 0 ? (size_t)(p * v) : 1, sizeof *pl->stages);
    for (int s = 0; s < p * v; s++) {
        pl->stages[s].n_nodes = 1;
        pl->stages[s].nodes = malloc(sizeof(int));
        pl->stages[s].nodes[0] = s;
        pl->stages[s].replicas = 1;
        pl->stages[s].ranks = malloc(sizeof(int));
        pl->stages[s].ranks[0] = s % p;
    }
    snprintf(pl->schedule, sizeof pl->schedule, "interleaved");
    return pl;
}

TEST(interleaved_bubble_matches_its_formula) {
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 1;
    c.bandwidth[0] = 1e12;
    char why[512];
    int ranks[2] = {4, 8}, chunks[2] = {2, 4}, mbs[3] = {8, 16, 32};
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < 3; j++) {
                int p = ranks[i], v = chunks[k], M = mbs[j];
                c.count[0] = p;
                pd_costgraph *g = equal_chain(p * v);
                pd_plan *pl = interleaved_plan(p, v);
                pd_sim_opts o = {.microbatches = M};
                pd_sim_result r;
                int rc = pd_simulate(&r, NULL, g, &c, pl, "interleaved", 4 * M, &o, why,
                                     sizeof why);
                CHECK_EQ_INT(rc, 0);
                if (rc) {
                    fprintf(stderr, "%s\n", why);
                } else {
                    /* per rank and batch: vM chunk-forwards and -backwards of 3 ms, and a
                     * bubble of (p - 1) 3 ms: (p - 1) / (vM) of the work */
                    double want = 3.0 * (v * M + p - 1) / M;
                    printf("  interleaved p=%d v=%d M=%2d: %.4f ms per minibatch (formula "
                           "%.4f)\n", p, v, M, r.steady_ms, want);
                    CHECK_CLOSE(r.steady_ms, want, 0, 0.02);
                    pd_sim_result_free(&r);
                }
                pd_plan_free(pl);
                pd_costgraph_free(g);
            }
}
