/* test_simulate.c: the pipeline simulator against hand-worked timelines: the steady state of a
 * pipeline is its bottleneck, 1F1B and GPipe bubbles are (S-1) stage times, transfers serialise
 * on a link and run in parallel on distinct links at the bandwidth of the level between the
 * ranks, data parallelism pays a ring all-reduce, a deadlocking schedule is reported, and the
 * simulation agrees with the DP's prediction on straight plans. */
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"
#include "planner/cost/memory.h"
#include "planner/dp/dp.h"
#include "planner/sim/simulate.h"
#include "test.h"

/* A chain of n nodes. */
static pd_costgraph *chain(int n, const double *fwd, const double *bwd, double act,
                           double param) {
    pd_costgraph *g = pd_costgraph_new(n, n);
    for (int v = 0; v < n; v++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", v);
        g->name[v] = strdup(nm);
        g->fwd_ms[v] = fwd[v];
        g->bwd_ms[v] = bwd[v];
        g->act_bytes[v] = act;
        g->param_bytes[v] = param;
        if (v > 0) {
            g->src[g->n_edges] = v - 1;
            g->dst[g->n_edges++] = v;
        }
    }
    return g;
}

/* A plan whose stage s holds nodes first[s] .. first[s+1]-1 with reps[s] replicas. */
static pd_plan *plan_of(int n_stages, const int *first, const int *reps) {
    pd_plan *p = calloc(1, sizeof *p);
    p->n_stages = n_stages;
    p->stages = calloc((size_t)n_stages, sizeof *p->stages);
    for (int s = 0; s < n_stages; s++) {
        pd_stage *st = &p->stages[s];
        st->n_nodes = first[s + 1] - first[s];
        st->nodes = malloc(sizeof(int) * (size_t)st->n_nodes);
        for (int i = 0; i < st->n_nodes; i++) st->nodes[i] = first[s] + i;
        st->replicas = reps ? reps[s] : 1;
    }
    pd_plan_assign_ranks(p);
    snprintf(p->schedule, sizeof p->schedule, "1f1b");
    return p;
}

static pd_cluster flat(int workers, double bandwidth) {
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 1;
    c.count[0] = workers;
    c.bandwidth[0] = bandwidth;
    return c;
}

TEST(balanced_two_stage_steady_state_is_the_bottleneck) {
    double f[2] = {1, 1}, b[2] = {2, 2};
    pd_costgraph *g = chain(2, f, b, 0, 0);
    int first[3] = {0, 1, 2};
    pd_plan *p = plan_of(2, first, NULL);
    pd_cluster c = flat(2, 1e9);
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 40, NULL, why, sizeof why), 0);
    CHECK_CLOSE(r.steady_ms, 3.0, 1e-9, 1e-9);
    /* warm-up and drain: one stage time, (S-1) * (f + b) */
    CHECK_CLOSE(r.bubble_ms, 3.0, 1e-9, 1e-9);
    CHECK_CLOSE(r.makespan_ms, 40 * 3.0 + 3.0, 1e-9, 1e-9);
    CHECK_CLOSE(r.stage_util[0], 1.0, 1e-9, 0);
    CHECK_CLOSE(r.stage_util[1], 1.0, 1e-9, 0);
    CHECK_EQ_INT(r.rank_peak_inflight[0], 2); /* warm-up 1, then 1F1B */
    CHECK_EQ_INT(r.rank_peak_inflight[1], 1);
    pd_sim_result_free(&r);
    pd_plan_free(p);
    pd_costgraph_free(g);
}

TEST(unbalanced_pipeline_runs_at_its_slowest_stage) {
    double f[3] = {1, 2, 1}, b[3] = {1, 4, 1};
    pd_costgraph *g = chain(3, f, b, 0, 0);
    int first[4] = {0, 1, 2, 3};
    pd_plan *p = plan_of(3, first, NULL);
    pd_cluster c = flat(3, 1e9);
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, NULL, 0, NULL, why, sizeof why), 0);
    CHECK_CLOSE(r.steady_ms, 6.0, 1e-9, 1e-9);
    CHECK_CLOSE(r.stage_util[1], 1.0, 1e-9, 0);
    CHECK_CLOSE(r.stage_util[0], 2.0 / 6.0, 1e-9, 0);
    pd_sim_result_free(&r);
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* One GPipe round of M minibatches on S balanced stages takes (M + S - 1)(f + b): the bubble is
 * (S - 1)(f + b); with several rounds every flush pays it again. */
TEST(gpipe_and_flush_bubbles_are_s_minus_one_stage_times) {
    enum { S = 4, M = 8 };
    double f[S] = {1, 1, 1, 1}, b[S] = {2, 2, 2, 2};
    pd_costgraph *g = chain(S, f, b, 0, 0);
    int first[S + 1] = {0, 1, 2, 3, 4};
    pd_plan *p = plan_of(S, first, NULL);
    pd_cluster c = flat(S, 1e9);
    char why[256];
    const char *names[2] = {"gpipe", "flush"};
    for (int k = 0; k < 2; k++) {
        pd_schedule *s = pd_sim_schedule(p, names[k], M, M);
        CHECK(s != NULL);
        if (!s) continue;
        CHECK_EQ_INT(pd_schedule_check(s, why, sizeof why), 0);
        pd_sim_rank_cost rc[S];
        pd_sim_costs(rc, g, p, names[k]);
        pd_sim_result r;
        CHECK_EQ_INT(pd_sim_run(&r, NULL, s, rc, &c, NULL, why, sizeof why), 0);
        CHECK_CLOSE(r.makespan_ms, (M + S - 1) * 3.0, 1e-9, 1e-9);
        CHECK_CLOSE(r.bubble_ms, (S - 1) * 3.0, 1e-9, 1e-9);
        pd_sim_result_free(&r);
        pd_schedule_free(s);
        /* steady state over many rounds: (M + S - 1)(f + b) / M per minibatch */
        pd_sim_opts o = {.microbatches = M};
        CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, names[k], 4 * M, &o, why, sizeof why), 0);
        CHECK_CLOSE(r.steady_ms, (M + S - 1) * 3.0 / M, 1e-9, 1e-9);
        CHECK_CLOSE(r.bubble_ms, 4 * (S - 1) * 3.0, 1e-9, 1e-9);
        pd_sim_result_free(&r);
    }
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* Rank 0 posts two 5 ms messages to rank 1 at time 0 and one to rank 2: the two on link 0-1 go
 * one after the other, the one on link 0-2 runs beside them. */
TEST(transfers_serialise_on_a_link_and_overlap_across_links) {
    pd_schedule s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "hand");
    s.n_ranks = s.n_stages = 3;
    s.steps = 2;
    s.send_slots = 4;
    pd_rank_schedule rk[3];
    memset(rk, 0, sizeof rk);
    s.ranks = rk;
    for (int r = 0; r < 3; r++) rk[r].rank = rk[r].stage = r;
    pd_schedule_push(&s, 0, PD_A_SEND_ACT, 0, 1);
    pd_schedule_push(&s, 0, PD_A_SEND_ACT, 1, 1);
    pd_schedule_push(&s, 0, PD_A_SEND_ACT, 0, 2);
    pd_schedule_push(&s, 1, PD_A_RECV_ACT, 0, 0);
    pd_schedule_push(&s, 1, PD_A_FORWARD, 0, -1);
    pd_schedule_push(&s, 1, PD_A_RECV_ACT, 1, 0);
    pd_schedule_push(&s, 1, PD_A_FORWARD, 1, -1);
    pd_schedule_push(&s, 2, PD_A_RECV_ACT, 0, 0);
    pd_schedule_push(&s, 2, PD_A_FORWARD, 0, -1);
    pd_sim_rank_cost rc[3];
    memset(rc, 0, sizeof rc);
    rc[0].act_bytes = 5e6; /* 5 ms at 1e9 bytes/s */
    rc[1].fwd_ms = rc[2].fwd_ms = 1;
    pd_cluster c = flat(3, 1e9);
    pd_sim_result r;
    char why[256];
    FILE *tr = tmpfile();
    CHECK_EQ_INT(pd_sim_run(&r, tr, &s, rc, &c, NULL, why, sizeof why), 0);
    CHECK_CLOSE(r.makespan_ms, 11.0, 1e-9, 1e-9); /* second message ends at 10, forward 1 */
    CHECK_CLOSE(r.rank_busy_ms[1], 2.0, 1e-12, 0);
    CHECK_CLOSE(r.p2p_bytes_per_minibatch, 15e6 / 2, 1e-3, 0);
    pd_sim_result_free(&r);
    /* the trace is a JSON object with one event per transfer and per compute action */
    long n = ftell(tr);
    CHECK(n > 0);
    rewind(tr);
    char *buf = calloc((size_t)n + 1, 1);
    CHECK(fread(buf, 1, (size_t)n, tr) == (size_t)n);
    CHECK(strncmp(buf, "{\"displayTimeUnit\"", 18) == 0);
    int transfers = 0, forwards = 0;
    for (char *q = buf; (q = strstr(q, "\"cat\":\"transfer\"")); q++) transfers++;
    for (char *q = buf; (q = strstr(q, "\"name\":\"forward")); q++) forwards++;
    CHECK_EQ_INT(transfers, 3);
    CHECK_EQ_INT(forwards, 3);
    CHECK(strstr(buf, "\n]}\n") != NULL);
    free(buf);
    fclose(tr);
    /* rendezvous: rank 1 posts its second receive only after its first forward (at 6), so the
     * second transfer runs 6..11 and the run ends at 12 */
    pd_sim_opts o = {.rendezvous = 1};
    CHECK_EQ_INT(pd_sim_run(&r, NULL, &s, rc, &c, &o, why, sizeof why), 0);
    CHECK_CLOSE(r.makespan_ms, 12.0, 1e-9, 1e-9);
    pd_sim_result_free(&r);
    for (int k = 0; k < 3; k++) free(rk[k].a);
}

/* On two servers of two workers, rank 1 -> 2 crosses servers (1e8 bytes/s), rank 0 -> 1 does not
 * (1e9): the same 1e6 bytes take 10 ms and 1 ms. */
TEST(bandwidth_is_that_of_the_level_between_the_ranks) {
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 2;
    c.count[0] = 2, c.count[1] = 2;
    c.bandwidth[0] = 1e9, c.bandwidth[1] = 1e8;
    for (int cross = 0; cross < 2; cross++) {
        pd_schedule s;
        memset(&s, 0, sizeof s);
        s.n_ranks = 4, s.n_stages = 4, s.steps = 1, s.send_slots = 1;
        pd_rank_schedule rk[4];
        memset(rk, 0, sizeof rk);
        s.ranks = rk;
        for (int r = 0; r < 4; r++) rk[r].rank = rk[r].stage = r;
        int a = cross ? 1 : 0, b = a + 1;
        pd_schedule_push(&s, a, PD_A_SEND_ACT, 0, b);
        pd_schedule_push(&s, b, PD_A_RECV_ACT, 0, a);
        pd_sim_rank_cost rc[4];
        memset(rc, 0, sizeof rc);
        rc[a].act_bytes = 1e6;
        pd_sim_result r;
        char why[256];
        CHECK_EQ_INT(pd_sim_run(&r, NULL, &s, rc, &c, NULL, why, sizeof why), 0);
        CHECK_CLOSE(r.makespan_ms, cross ? 10.0 : 1.0, 1e-9, 1e-9);
        pd_sim_result_free(&r);
        for (int k = 0; k < 4; k++) free(rk[k].a);
    }
}

/* Two stages of 1 ms compute whose cut takes 5 ms each way: activations and gradients share the
 * link, so the pipeline runs at 10 ms per minibatch, as the DP's 2 * bytes / bandwidth. */
TEST(communication_bound_pipeline_runs_at_link_time) {
    double f[2] = {0.5, 0.5}, b[2] = {0.5, 0.5};
    pd_costgraph *g = chain(2, f, b, 5e6, 0);
    int first[3] = {0, 1, 2};
    pd_plan *p = plan_of(2, first, NULL);
    pd_cluster c = flat(2, 1e9);
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 20, NULL, why, sizeof why), 0);
    CHECK_CLOSE(r.steady_ms, 10.0, 1e-9, 1e-9);
    CHECK_CLOSE(r.p2p_bytes_per_minibatch, 10e6, 1e-3, 0);
    CHECK_CLOSE(r.stage_util[0], 0.1, 1e-9, 0);
    pd_sim_result_free(&r);
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* Data parallelism on 4 workers: each minibatch costs (T + 2 (r-1)/r P / B) / r, exactly the
 * default cost model's data-parallel time on one level; bytes are 2 (r-1) P per r minibatches. */
TEST(data_parallel_pays_a_ring_allreduce) {
    double f[3] = {1, 2, 1}, b[3] = {2, 4, 2};
    pd_costgraph *g = chain(3, f, b, 1e6, 4e6);
    pd_cluster c = flat(4, 1e9);
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate_data_parallel(&r, NULL, g, &c, 0, NULL, why, sizeof why), 0);
    double P = 12e6, ring = 1e3 * 2.0 * 3 / 4 * P / 1e9;
    CHECK_CLOSE(r.steady_ms, (12.0 + ring) / 4, 1e-9, 1e-9);
    CHECK_CLOSE(r.steady_ms, pd_data_parallel_ms(g, &c, PD_COST_DEFAULT), 1e-9, 1e-9);
    CHECK_CLOSE(r.allreduce_bytes_per_minibatch, 2.0 * 3 * P / 4, 1e-3, 1e-12);
    CHECK_CLOSE(r.p2p_bytes_per_minibatch, 0, 0, 0);
    CHECK_CLOSE(r.stage_util[0], 1.0, 1e-9, 0); /* the all-reduce counts as busy */
    CHECK_CLOSE(r.bubble_ms, 0, 1e-9, 0);
    pd_sim_result_free(&r);
    pd_costgraph_free(g);
}

/* The CPU runtime's all-reduce (PD_SIM_AR_GATHER): the first replica's link carries every copy
 * to and from it, 2 P / B per other replica, in turn; on 2 servers of 2 workers the copies to the
 * other server cross the slow level. Bytes per minibatch are those of a ring (2 (n-1) P in all
 * per round of n minibatches). */
TEST(data_parallel_gather_broadcast_allreduce) {
    double f[3] = {1, 2, 1}, b[3] = {2, 4, 2};
    pd_costgraph *g = chain(3, f, b, 1e6, 4e6);
    pd_cluster c = flat(4, 1e9);
    pd_sim_opts o = {.allreduce = PD_SIM_AR_GATHER};
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate_data_parallel(&r, NULL, g, &c, 0, &o, why, sizeof why), 0);
    double P = 12e6, gather = 1e3 * 2.0 * 3 * P / 1e9;
    CHECK_CLOSE(r.steady_ms, (12.0 + gather) / 4, 1e-9, 1e-9);
    CHECK_CLOSE(r.allreduce_bytes_per_minibatch, 2.0 * 3 * P / 4, 1e-3, 1e-12);
    pd_sim_result_free(&r);
    pd_cluster h;
    memset(&h, 0, sizeof h);
    h.n_levels = 2;
    h.count[0] = 2, h.count[1] = 2;
    h.bandwidth[0] = 1e9, h.bandwidth[1] = 1e8;
    CHECK_EQ_INT(pd_simulate_data_parallel(&r, NULL, g, &h, 0, &o, why, sizeof why), 0);
    gather = 1e3 * 2.0 * P * (1 / 1e9 + 2 / 1e8);
    CHECK_CLOSE(r.steady_ms, (12.0 + gather) / 4, 1e-9, 1e-9);
    pd_sim_result_free(&r);
    pd_costgraph_free(g);
}

/* A 2-1 plan: stage 0 (6 ms) on two replicas, stage 1 (3 ms) on one: 3 ms per minibatch; the
 * replicated schedule passes the deadlock check and all-reduces stage 0's weights. */
TEST(replicated_stage_halves_its_time) {
    double f[2] = {2, 1}, b[2] = {4, 2};
    pd_costgraph *g = chain(2, f, b, 0, 1e6);
    int first[3] = {0, 1, 2}, reps[2] = {2, 1};
    pd_plan *p = plan_of(2, first, reps);
    pd_cluster c = flat(3, 1e12);
    pd_sim_result r;
    char why[256];
    int rc = pd_simulate(&r, NULL, g, &c, p, "1f1b", 30, NULL, why, sizeof why);
    if (rc) fprintf(stderr, "%s\n", why);
    CHECK_EQ_INT(rc, 0);
    if (rc) goto out;
    CHECK_CLOSE(r.steady_ms, 3.0 + 1e3 * 1e6 / 1e12 / 2, 1e-6, 1e-6);
    CHECK_EQ_INT(r.n_ranks, 3);
    CHECK(r.allreduce_bytes_per_minibatch > 0);
    pd_sim_result_free(&r);
    /* flush and gpipe on the same plan run to their end too */
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "flush", 0, NULL, why, sizeof why), 0);
    pd_sim_result_free(&r);
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "gpipe", 0, NULL, why, sizeof why), 0);
    pd_sim_result_free(&r);
out:
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* Peak memory per worker: weight versions (one per minibatch in flight under 1f1b), gradient
 * and optimizer state, and the activations of every minibatch in flight: the DP's formula. */
TEST(peak_memory_counts_stashed_versions_and_activations) {
    double f[3] = {1, 1, 1}, b[3] = {1, 1, 1};
    pd_costgraph *g = chain(3, f, b, 100, 1000);
    int first[4] = {0, 1, 2, 3};
    pd_plan *p = plan_of(3, first, NULL);
    pd_cluster c = flat(3, 1e12);
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 20, NULL, why, sizeof why), 0);
    CHECK_EQ_INT(r.rank_peak_inflight[0], 3);
    CHECK_CLOSE(r.rank_peak_memory[0], (3 + 2) * 1000.0 + 3 * 100.0, 1e-9, 0);
    CHECK_CLOSE(r.rank_peak_memory[2], (1 + 2) * 1000.0 + 1 * 200.0, 1e-9, 0);
    pd_sim_result_free(&r);
    /* flush keeps one version */
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "flush", 0, NULL, why, sizeof why), 0);
    CHECK_CLOSE(r.rank_peak_memory[0], 3 * 1000.0 + 3 * 100.0, 1e-9, 0);
    pd_sim_result_free(&r);
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* --recompute keeps a stage's input per minibatch in flight and its layers' outputs once, and its
 * backward pays the forward again; zb-h1 keeps the layers' output gradients and the weight
 * gradient of every minibatch until its backward_weight. */
TEST(peak_memory_under_recompute_and_zero_bubble) {
    double f[3] = {1, 1, 1}, b[3] = {1, 1, 1};
    pd_costgraph *g = chain(3, f, b, 100, 1000);
    int first[4] = {0, 1, 2, 3};
    pd_plan *p = plan_of(3, first, NULL);
    pd_cluster c = flat(3, 1e12);
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 20, NULL, why, sizeof why), 0);
    CHECK_CLOSE(r.steady_ms, 2.0, 1e-6, 0); /* transfers take 100 bytes / 1e12 B/s */
    pd_sim_result_free(&r);
    for (int s = 0; s < 3; s++) p->stages[s].recompute = 1;
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 20, NULL, why, sizeof why), 0);
    CHECK_CLOSE(r.steady_ms, 3.0, 1e-6, 0); /* f + (f + b) */
    CHECK_CLOSE(r.rank_peak_memory[0], (3 + 2) * 1000.0 + 100.0, 1e-9, 0); /* no input */
    CHECK_CLOSE(r.rank_peak_memory[2], (1 + 2) * 1000.0 + 1 * 100.0 + 100.0, 1e-9, 0);
    pd_sim_result_free(&r);
    for (int s = 0; s < 3; s++) p->stages[s].recompute = 0;
    CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "zb-h1", 0, NULL, why, sizeof why), 0);
    CHECK_EQ_INT(r.rank_peak_inflight[2], 3); /* zb-h1: stage 0's in-flight count everywhere */
    CHECK_CLOSE(r.rank_peak_memory[0], 3 * 1000.0 + 3 * (2 * 100.0 + 1000.0), 1e-9, 0);
    pd_sim_result_free(&r);
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* Selective recomputation keeps the nodes selective_keeps marks per minibatch in flight and
 * every node once (the working buffer), and a backward pays the recomputed nodes' forward
 * unless the minibatch's activations are still there (the last stage under 1f1b, which keeps no
 * copy of its kept part either, with one minibatch in flight); full keeps
 * every node once and pays the whole forward. The figures are what runtime/executor_recompute.c
 * allocates (stored_bytes: outputs and saved state). */
TEST(selective_and_full_recompute_memory_and_time) {
    double f[6] = {2, 1, 2, 1, 2, 1}, b[6] = {1, 1, 1, 1, 1, 1};
    pd_costgraph *g = chain(6, f, b, 100, 0);
    g->stored_bytes = calloc(6, sizeof(double));
    g->selective_keeps = calloc(6, 1);
    for (int v = 0; v < 6; v++) { /* a "linear" (kept) then a "relu" (recomputed) per stage */
        g->stored_bytes[v] = v % 2 ? 3000 : 1000;
        g->selective_keeps[v] = v % 2 == 0;
    }
    int first[4] = {0, 2, 4, 6};
    /* stage 0 (nodes 0 and 1, no input), activations with one and with two minibatches in
     * flight: the per-minibatch part is the difference, the once part what one holds beyond it */
    int nodes01[2] = {0, 1};
    pd_plan *p01 = plan_of(1, (int[]){0, 2}, NULL);
    pd_mem_stage held = pd_mem_stage_of(p01, 0, g);
    pd_plan_free(p01);
    static const int modes[3] = {PD_RECOMPUTE_SELECTIVE, PD_RECOMPUTE_FULL, PD_RECOMPUTE_NONE};
    double per_mb[3], once[3], again[3];
    for (int k = 0; k < 3; k++) {
        pd_mem_model m = pd_mem_model_of("1f1b", 0, modes[k], 0);
        double a2 = pd_mem_act_bytes(&m, &held, 2), a3 = pd_mem_act_bytes(&m, &held, 3);
        per_mb[k] = a3 - a2;
        once[k] = a2 - 2 * per_mb[k];
        again[k] = pd_stage_recompute_ms(g, nodes01, 2, modes[k]);
    }
    CHECK_CLOSE(per_mb[0], 1000.0, 0, 0);
    CHECK_CLOSE(once[0], 4000.0, 0, 0);
    CHECK_CLOSE(again[0], 1.0, 0, 0);
    CHECK(per_mb[1] == 0 && once[1] == 4000 && again[1] == 3);
    CHECK(per_mb[2] == 4000 && once[2] == 0 && again[2] == 0);
    pd_plan *p = plan_of(3, first, NULL);
    pd_cluster c = flat(3, 1e12);
    pd_sim_result r;
    char why[256];
    /* mode, steady ms (stages 0 and 1: f + b + the recomputation), stage 0's and 2's bytes */
    const double want[3][3] = {{5, 3 * 4000, 4000 + 100},
                               {8, 4000, 100 + 4000},
                               {6, 3 * 1000 + 4000, 100 + 4000}}; /* one in flight: no copy */
    for (int mode = 0; mode < 3; mode++) {
        for (int s = 0; s < 3; s++) p->stages[s].recompute = mode;
        CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 20, NULL, why, sizeof why), 0);
        CHECK_CLOSE(r.steady_ms, want[mode][0], 1e-6, 0);
        CHECK_CLOSE(r.stage_act_memory[0], want[mode][1], 1e-9, 0);
        CHECK_CLOSE(r.stage_act_memory[2], want[mode][2], 1e-9, 0);
        CHECK_CLOSE(r.stage_peak_memory[0], want[mode][1], 1e-9, 0); /* no parameters */
        pd_sim_result_free(&r);
    }
    pd_plan_free(p);
    pd_costgraph_free(g);
}

TEST(a_deadlocking_schedule_is_reported) {
    pd_schedule s;
    memset(&s, 0, sizeof s);
    s.n_ranks = s.n_stages = 2;
    s.steps = 1;
    s.send_slots = 1;
    pd_rank_schedule rk[2];
    memset(rk, 0, sizeof rk);
    s.ranks = rk;
    for (int r = 0; r < 2; r++) rk[r].rank = rk[r].stage = r;
    pd_schedule_push(&s, 0, PD_A_RECV_GRAD, 0, 1);
    pd_schedule_push(&s, 0, PD_A_SEND_ACT, 0, 1);
    pd_schedule_push(&s, 1, PD_A_RECV_ACT, 0, 0);
    pd_schedule_push(&s, 1, PD_A_SEND_GRAD, 0, 0);
    pd_sim_rank_cost rc[2];
    memset(rc, 0, sizeof rc);
    pd_cluster c = flat(2, 1e9);
    pd_sim_result r;
    char why[256];
    CHECK_EQ_INT(pd_sim_run(&r, NULL, &s, rc, &c, NULL, why, sizeof why), 1);
    CHECK(strstr(why, "cannot go on") != NULL);
    CHECK(strstr(why, "rank 0") != NULL && strstr(why, "rank 1") != NULL);
    /* a send nobody receives */
    for (int k = 0; k < 2; k++) rk[k].n = 0;
    pd_schedule_push(&s, 0, PD_A_SEND_ACT, 0, 1);
    CHECK_EQ_INT(pd_sim_run(&r, NULL, &s, rc, &c, NULL, why, sizeof why), 1);
    CHECK(strstr(why, "never received") != NULL);
    /* more ranks than workers */
    pd_cluster one = flat(1, 1e9);
    CHECK_EQ_INT(pd_sim_run(&r, NULL, &s, rc, &one, NULL, why, sizeof why), 1);
    for (int k = 0; k < 2; k++) free(rk[k].a);
    CHECK(pd_sim_schedule(NULL, "1f1b", 4, 0) == NULL);
}

/* On random chains the DP's straight plans simulate at the DP's bottleneck when nothing crosses
 * the cuts. With transfers, never faster than the bottleneck, and slower by at most the
 * transfers' latency: 1F1B's warm-up depth (S-1-s) does not cover the time minibatches spend on
 * the wire, which the DP's cost model ignores (docs/simulator.md). */
TEST(simulation_matches_the_dp_on_straight_plans) {
    srand(7);
    for (int trial = 0; trial < 40; trial++) {
        int n = 4 + rand() % 8, S = 2 + rand() % 3, comm = trial % 2;
        double f[16], b[16];
        for (int v = 0; v < n; v++) f[v] = 0.5 + rand() % 40 / 10.0, b[v] = 2 * f[v];
        pd_costgraph *g = chain(n, f, b, 0, 0);
        double wire = 0;
        for (int v = 0; v < n; v++) {
            g->act_bytes[v] = comm ? (rand() % 4) * 1e6 : 0;
            wire += 2 * g->act_bytes[v] / 1e6;
        }
        pd_cluster c = flat(S, 1e9);
        pd_plan_opts o = {.straight = 1, .schedule = "1f1b"};
        pd_diag d = {.out = stderr};
        pd_plan *p = pd_plan_dp(g, &c, &o, &d);
        CHECK(p != NULL);
        if (!p) { pd_costgraph_free(g); continue; }
        pd_sim_result r;
        char why[256];
        CHECK_EQ_INT(pd_simulate(&r, NULL, g, &c, p, "1f1b", 0, NULL, why, sizeof why), 0);
        if (!comm) CHECK_CLOSE(r.steady_ms, p->bottleneck_ms, 1e-6, 1e-6);
        CHECK(r.steady_ms >= p->bottleneck_ms - 1e-6);
        CHECK(r.steady_ms <= p->bottleneck_ms + wire + 1e-6);
        pd_sim_result_free(&r);
        pd_plan_free(p);
        pd_costgraph_free(g);
    }
}
