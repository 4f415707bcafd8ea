/* test_compat.c: --compat pipedream (and the default model) against numbers worked out by hand
 * from the formulas in notes/pipedream-reference.md ("DP, exactly as coded") on small graphs.
 * Times in ms; B in bytes/s, so x bytes over B take 1000*x/B ms. */
#include <string.h>

#include "planner/cost/cost.h"
#include "planner/dp/dp.h"
#include "test.h"

static void set_node(pd_costgraph *g, int v, double f, double b, double act, double par) {
    g->fwd_ms[v] = f;
    g->bwd_ms[v] = b;
    g->act_bytes[v] = act;
    g->param_bytes[v] = par;
}
static void edge(pd_costgraph *g, int u, int v) {
    g->src[g->n_edges] = u;
    g->dst[g->n_edges] = v;
    g->n_edges++;
}

/* chain n0 -> n1 -> n2: T = 3, 6, 2 ms; act 1e6, 2e6, 5e5 B; params 1e6, 0, 2e6 B */
static pd_costgraph *chain3(void) {
    pd_costgraph *g = pd_costgraph_new(3, 2);
    set_node(g, 0, 1, 2, 1e6, 1e6);
    set_node(g, 1, 2, 4, 2e6, 0);
    set_node(g, 2, 1, 1, 5e5, 2e6);
    edge(g, 0, 1);
    edge(g, 1, 2);
    return g;
}

static pd_cluster one_level(int n, double bw, double mem) {
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 1;
    c.count[0] = n;
    c.bandwidth[0] = bw;
    c.memory_bytes = mem;
    return c;
}

TEST(compat_chain_two_workers) {
    /* N = 2, B = 1e9, K = 1.
     * one stage on 2: (T + 4(M-1)P/(B M)/K)/M = (11 + 1000*4*1*3e6/(1e9*2))/2 = (11 + 6)/2 = 8.5
     * split after n0: stage {n0} on 1: 3; stage {n1,n2} on 1: compute 8, input
     *   2*a_out(n0)/(B*1) = 1000*2e6/1e9 = 2 ms, last state: no output term -> max(3,8,2) = 8
     * split after n1: {n0,n1} = 9; {n2} = 2; input 1000*2*2e6/1e9 = 4 -> 9
     * best: 8, two stages of one replica each. */
    pd_costgraph *g = chain3();
    pd_cluster c = one_level(2, 1e9, 0);
    pd_plan_opts o = {.cost_model = PD_COST_PIPEDREAM};
    pd_diag d = {0};
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    CHECK(p != NULL);
    if (p) {
        CHECK_CLOSE(p->bottleneck_ms, 8.0, 1e-12, 1e-12);
        CHECK_EQ_INT(p->n_stages, 2);
        CHECK_EQ_INT(p->stages[0].n_nodes, 1);
        CHECK_EQ_INT(p->stages[0].replicas, 1);
        /* data-parallel baseline: the one-stage number above */
        CHECK_CLOSE(p->data_parallel_ms, 8.5, 1e-12, 1e-12);
        CHECK_CLOSE(p->speedup_vs_data_parallel, 8.5 / 8.0, 1e-12, 1e-12);
        /* 1F1B: warmup (2 - 1 - 0)/1 = 1 and (2 - 1 - 1)/1 = 0 */
        CHECK_EQ_INT(p->stages[0].warmup, 1);
        CHECK_EQ_INT(p->stages[1].warmup, 0);
        CHECK_EQ_INT(p->stages[1].ranks[0], 1);
        CHECK_EQ_INT(strcmp(p->certificate.status, "skipped"), 0);
    }
    pd_plan_free(p);
    pd_costgraph_free(g);
}

TEST(compat_chain_memory_check) {
    /* memory 1.5e6 per worker, the original's check:
     * {n0} first on M=1: ceil((N-M)/M)*(Aact+P) = ceil(1/1)*(1e6 + 1e6) = 2e6 > 1.5e6: refused
     * {n0,n1} first on M=1: 1*(3e6 + 1e6) = 4e6: refused
     * one stage on 2: ceil(0/2)*(...) = 0: fits -> 8.5 */
    pd_costgraph *g = chain3();
    pd_cluster c = one_level(2, 1e9, 1.5e6);
    pd_plan_opts o = {.cost_model = PD_COST_PIPEDREAM};
    pd_diag d = {0};
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    CHECK(p != NULL);
    if (p) {
        CHECK_CLOSE(p->bottleneck_ms, 8.5, 1e-12, 1e-12);
        CHECK_EQ_INT(p->n_stages, 1);
        CHECK_EQ_INT(p->stages[0].replicas, 2);
    }
    pd_plan_free(p);
    /* --straight must use two one-worker stages, and neither split fits: no plan, an error */
    o.straight = 1;
    d.out = fopen("/dev/null", "w");
    p = pd_plan_dp(g, &c, &o, &d);
    CHECK(p == NULL);
    CHECK(d.errors > 0);
    fclose(d.out);
    pd_costgraph_free(g);
}

TEST(default_model_chain) {
    /* default model, N = 2, B = 1e9:
     * one stage on 2: ring 1000*2(r-1)P/(rB) = 1000*2*1*3e6/(2e9) = 3 ms per round of 2,
     *   (11 + 3)/2 = 7
     * split after n0: {n0}: 3, output 1000*2*1e6/1e9 = 2 -> 3; {n1,n2}: 8, input 2 -> 8
     * best 7. Memory of the one stage: versions = ceil(0/2)+1 = 1,
     *   (1 + 2)*P + 1*(Aact + input) = 3*3e6 + 3.5e6 = 1.25e7 */
    pd_costgraph *g = chain3();
    pd_cluster c = one_level(2, 1e9, 0);
    pd_plan_opts o = {.cost_model = PD_COST_DEFAULT};
    pd_diag d = {0};
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    CHECK(p != NULL);
    if (p) {
        CHECK_CLOSE(p->bottleneck_ms, 7.0, 1e-12, 1e-12);
        CHECK_EQ_INT(p->n_stages, 1);
        CHECK_CLOSE(p->stages[0].memory_bytes, 1.25e7, 0, 1e-12);
        CHECK_CLOSE(p->stages[0].allreduce_ms, 1.5, 1e-12, 1e-12);
    }
    pd_plan_free(p);
    pd_costgraph_free(g);
}

/* diamond n0 -> {n1, n2} -> n3; T = 4, 6, 2, 4; act 1e6, 3e6, 1e6, 1e6; params only n3: 4e6 */
static pd_costgraph *diamond(void) {
    pd_costgraph *g = pd_costgraph_new(4, 4);
    set_node(g, 0, 1, 3, 1e6, 0);
    set_node(g, 1, 2, 4, 3e6, 0);
    set_node(g, 2, 1, 1, 1e6, 0);
    set_node(g, 3, 2, 2, 1e6, 4e6);
    edge(g, 0, 1);
    edge(g, 0, 2);
    edge(g, 1, 3);
    edge(g, 2, 3);
    return g;
}

TEST(compat_diamond_dag) {
    /* N = 2, B = 1e9. Ideals: {}, {0}, {0,1}, {0,2}, {0,1,2}, all.
     * one stage on 2: (16 + 1000*4*1*4e6/(1e9*2))/2 = (16 + 8)/2 = 12
     * I = {0}:     {0} = 4; {1,2,3} = 12; cut {0}: n0 once (two consumers outside) 1e6 -> 2 ms
     *              -> 12
     * I = {0,1}:   10; {2,3} = 6; cut n0 + n1 = 4e6 -> 8 ms -> 10
     * I = {0,2}:   6; {1,3} = 10; cut n0 + n2 = 2e6 -> 4 ms -> 10
     * I = {0,1,2}: 12 -> 12.  Best 10. */
    pd_costgraph *g = diamond();
    pd_cluster c = one_level(2, 1e9, 0);
    pd_plan_opts o = {.cost_model = PD_COST_PIPEDREAM};
    pd_diag d = {0};
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    CHECK(p != NULL);
    if (p) {
        CHECK_CLOSE(p->bottleneck_ms, 10.0, 1e-12, 1e-12);
        CHECK_EQ_INT(p->n_stages, 2);
        CHECK_CLOSE(p->data_parallel_ms, 12.0, 1e-12, 1e-12);
    }
    pd_plan_free(p);
    /* the stage {1,2,3} after {0}, one replica: its input cut counts n0's tensor once */
    unsigned char before[4] = {1, 0, 0, 0}, stage[4] = {0, 1, 1, 1};
    pd_cost_level lv;
    pd_cost_level_of(&lv, &c, g, 0);
    pd_stage_cost sc;
    pd_stage_cost_nodes(&sc, g, &lv, PD_COST_PIPEDREAM, before, stage, 1, 0);
    CHECK_CLOSE(sc.comm_in_ms, 2.0, 1e-12, 1e-12);
    CHECK_CLOSE(sc.time_ms, 12.0, 1e-12, 1e-12);
    CHECK_CLOSE(pd_cut_bytes(g, before), 1e6, 0, 0);
    pd_costgraph_free(g);
}

TEST(compat_hierarchy) {
    /* chain n0 -> n1, T = 8 each, act 1e6 each, params 1e6 each; -n 2 2, B = 1e10, 1e9.
     * level 0 (N = 2, K = 1, B = 1e10), every range on both workers:
     *   {n0} alone: (8 + 1000*4*1*1e6/(1e10*2))/2 = (8 + 0.2)/2 = 4.1; likewise {n1}: 4.1
     *   {n0,n1}: one stage (16 + 0.4)/2 = 8.2; split: max(8, 8, 1000*2*1e6/1e10 = 0.2) = 8 -> 8
     * level 1 (N = 2, K = count[0] = 2, B = 1e9), compute = level 0's numbers:
     *   one stage: (8 + 1000*4*1*2e6/(1e9*2)/2)/2 = (8 + 2)/2 = 5
     *   split: {n0} 4.1; {n1} 4.1 with input 1000*2*1e6/1e9 = 2 -> 4.1.  Best 4.1.
     * data parallel, iterated: (16 + 0.4)/2 = 8.2, then (8.2 + 4/2)/2 = 5.1 */
    pd_costgraph *g = pd_costgraph_new(2, 1);
    set_node(g, 0, 4, 4, 1e6, 1e6);
    set_node(g, 1, 4, 4, 1e6, 1e6);
    edge(g, 0, 1);
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 2;
    c.count[0] = 2;
    c.count[1] = 2;
    c.bandwidth[0] = 1e10;
    c.bandwidth[1] = 1e9;
    pd_plan_opts o = {.cost_model = PD_COST_PIPEDREAM};
    pd_diag d = {0};
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    CHECK(p != NULL);
    if (p) {
        CHECK_CLOSE(p->bottleneck_ms, 4.1, 1e-12, 1e-12);
        CHECK_CLOSE(p->data_parallel_ms, 5.1, 1e-12, 1e-12);
        /* flattened: {n0} on one server's 2 workers, {n1} on the other's */
        CHECK_EQ_INT(p->n_stages, 2);
        if (p->n_stages == 2) {
            CHECK_EQ_INT(p->stages[0].replicas, 2);
            CHECK_EQ_INT(p->stages[1].replicas, 2);
            CHECK_EQ_INT(p->stages[1].ranks[0], 2);
            CHECK_EQ_INT(p->stages[0].warmup, 1); /* (4 - 1 - 0)/2 */
            CHECK_EQ_INT(p->stages[1].warmup, 0); /* (4 - 1 - 2)/2 */
        }
        CHECK_EQ_INT(p->workers, 4);
    }
    pd_plan_free(p);
    pd_costgraph_free(g);
}

TEST(default_hierarchy_per_round) {
    /* default model, chain n0 -> n1, T = 8 each, act 1e6 each, params 4e8 each; -n 2 2,
     * B = 1e10, 1e12. Ranks 0, 1 are on server 0, ranks 2, 3 on server 1; a stage holds
     * contiguous ranks and all-reduces by a ring per level over the units it spans:
     * 1000*2*(n-1)*P/(n*B) ms (docs/planner.md, "One price").
     *   {n0} on ranks 0-1 (one server): (8 + 1000*2*4e8/(2*1e10) = 40)/2 = 24
     *   {n1} on ranks 1-2 (one worker on each server): (8 + 1000*2*4e8/(2*1e12) = 0.4)/2 = 4.2,
     *     but the stage before it then has one worker: 8
     *   one worker per stage: max(8, 8, 2000*1e6/1e10 = 0.2) = 8, on 2 workers (the fewest)
     *   data parallel, per round of 4: (16 + 1000*2*8e8/(2*1e10) + 1000*2*8e8/(2*1e12))/4
     *     = 16/4 + 80.8/4 = 24.2 (iterating over the levels would give ((16+80)/2 + 0.8)/2 =
     *     24.4: the outer ring charged once per server minibatch instead of once per round).
     * The hierarchical DP used to claim 4.4 for {n0} and {n1} each on one worker of each server,
     * which contiguous ranks cannot place (flattened as ranks 0-1 and 2-3, 24 ms). */
    pd_costgraph *g = pd_costgraph_new(2, 1);
    set_node(g, 0, 4, 4, 1e6, 4e8);
    set_node(g, 1, 4, 4, 1e6, 4e8);
    edge(g, 0, 1);
    pd_cluster c;
    memset(&c, 0, sizeof c);
    c.n_levels = 2;
    c.count[0] = 2;
    c.count[1] = 2;
    c.bandwidth[0] = 1e10;
    c.bandwidth[1] = 1e12;
    pd_plan_opts o = {.cost_model = PD_COST_DEFAULT};
    pd_diag d = {0};
    pd_plan *p = pd_plan_dp(g, &c, &o, &d);
    CHECK(p != NULL);
    if (p) {
        CHECK_CLOSE(p->bottleneck_ms, 8, 1e-12, 1e-12);
        CHECK_CLOSE(p->data_parallel_ms, 24.2, 1e-12, 1e-12);
        CHECK_EQ_INT(p->n_stages, 2);
        CHECK_EQ_INT(p->workers, 2);
        for (int s = 0; s < p->n_stages; s++) {
            CHECK_EQ_INT(p->stages[s].replicas, 1);
            CHECK_CLOSE(p->stages[s].allreduce_ms, 0, 1e-12, 1e-12);
            CHECK_CLOSE(p->stages[s].time_ms, 8, 1e-12, 1e-12);
        }
        CHECK_CLOSE(p->stages[1].comm_in_ms, 0.2, 1e-12, 1e-12);
    }
    pd_plan_free(p);
    pd_costgraph_free(g);
}
