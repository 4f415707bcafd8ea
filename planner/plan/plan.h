/* plan.h: the result of planning, as plan.yaml (pd_plan: 1) records it.
 *
 * Stages are listed in pipeline order. Each holds the cost-graph nodes it runs (ascending), the
 * number of data-parallel replicas and the MPI ranks that run them. Ranks are numbered stage by
 * stage: stage 0's replicas first. Times are milliseconds per minibatch.
 */
#ifndef PD_PLAN_H
#define PD_PLAN_H

#include <stdint.h>

#include "planner/model/costgraph.h"
#include "planner/read/cluster.h"

typedef enum { PD_COST_DEFAULT = 0, PD_COST_PIPEDREAM } pd_cost_model;

/* pd_recompute_mode (planner/model/costgraph.h) by name: "none", "full", "selective" */
const char *pd_recompute_name(int mode);

typedef struct {
    int n_nodes;
    int *nodes;            /* cost-graph node indices, ascending */
    int replicas;
    int *ranks;            /* replicas entries */
    int warmup;            /* forwards in flight before the first backward (1F1B) */
    int weight_versions;   /* stashed versions kept (warmup + 1 for 1f1b) */
    int recompute;         /* pd_recompute_mode: PD_RECOMPUTE_FULL keeps only its input per
                              minibatch in flight and recomputes the forward before each
                              backward; PD_RECOMPUTE_SELECTIVE keeps the outputs of the ops
                              that are expensive to recompute and recomputes the others
                              (pdplan --recompute; docs/runtime.md) */
    double compute_ms;     /* unreplicated fwd+bwd of the stage */
    double allreduce_ms;   /* weight sync among replicas */
    double comm_in_ms, comm_out_ms; /* activation+gradient transfer across its cuts */
    double time_ms;        /* the stage's predicted time per minibatch */
    double memory_bytes;   /* predicted peak per worker */
    double param_bytes, act_in_bytes, act_out_bytes;
    int64_t params;        /* parameter floats the stage owns, a tied weight counted at its owner
                              only (pd_plan_count_params): the stages sum to the model's count */
    int64_t tied_params;   /* floats of tied weights whose other copy is on another stage
                              (pd_plan_count_ties; 0: none), exchanged at every update */
    double tied_ms;        /* their exchange per minibatch, included in time_ms */
} pd_stage;

typedef struct {
    char solver[16];       /* "glpk" */
    char status[16];       /* optimal | gap | timeout | infeasible | skipped */
    double objective;      /* ms, comparable to bottleneck_ms */
    double gap;            /* relative */
    double seconds;
} pd_certificate;

typedef struct {
    int n_stages;
    pd_stage *stages;
    int workers;           /* ranks used */
    pd_cost_model cost_model;
    int straight;
    char schedule[16];     /* "1f1b", "flush", "gpipe", "zb-h1", "zb-h2" */
    int vertical_sync;     /* 1f1b with PipeDream's vertical sync (pdplan --vertical-sync) */
    int microbatches;      /* synchronous schedules: minibatches per batch (pdplan
                              --microbatches; 0: pd_schedule_default_microbatches) */
    int chunks;            /* interleaved: stages per rank (v; pdplan --chunks), stage s on
                              rank s mod workers; 0 or 1 otherwise */
    double bottleneck_ms;
    double throughput;     /* samples/s at the bottleneck (batch / bottleneck) */
    double data_parallel_ms;
    double speedup_vs_data_parallel;
    int exact;             /* 1 when the DP searched every candidate */
    double simulated_ms;   /* > 0: bottleneck_ms is this simulated time, not the stages' steady
                              state stages_ms (a replicated pipeline held at PipeDream's warm-up
                              by the memory limit; tools/pdplan/choose.c, pd_plan_schedule) */
    double stages_ms;
    double lower_bound_ms; /* proven lower bound when not exact */
    pd_certificate certificate;
} pd_plan;

void pd_plan_free(pd_plan *p);

/* Numbers the ranks stage by stage (stage 0's replicas first), sets workers, and each stage's
 * warmup and weight_versions as pd_plan_set_warmup(p, 0) does (PipeDream's depth). Returns 0,
 * or -1 on OOM. */
int pd_plan_assign_ranks(pd_plan *p);

/* The factor by which a pipeline with a replicated stage deepens 1F1B's warm-up (below). */
#define PD_WARMUP_REPLICATED 4

/* THE 1F1B warm-up depth (and 2bw's): the forwards a replica of a stage runs before its first
 * backward, with workers_after workers on the stages after it. PipeDream's depth,
 * ceil(workers_after / replicas), when replicated = 0; ceil(4 workers_after / replicas), plus 1
 * on a replicated stage, when replicated = 1, for the default model's pipelines with a
 * replicated stage (pd_plan_replicated): a replica sees every r-th minibatch and waits at every
 * all-reduce, and PipeDream's depth, which covers the compute of a minibatch's round trip, leaves
 * such pipelines slower than their price (docs/simulator.md, "One warm-up
 * depth": on test_price's 194 replicated plans, 4 x without the + 1 left 4 of them 3-46% slow,
 * all with a stage of 6-9 replicas beside a one-replica stage; with it all 194 are within 2%).
 * Counted in minibatches in flight, D_s = warmup x replicas is a multiple of the replicas and
 * strictly decreasing along the pipeline (D_s >= 4 W_s and D_{s+1} < 4 W_{s+1} + 2 r_{s+1} <=
 * 4 W_s), which keeps the replicated 1F1B order deadlock-free. One function for the plan's
 * warmup (hence the runtime and the simulator, which read it) and for the DP's and the integer
 * program's memory check (pd_stage_cost_eval, fits_after), so that a plan accepted under a
 * memory limit runs at the depth its memory was checked with. */
static inline int pd_warmup_depth(int workers_after, int replicas, int replicated) {
    long w = (long)workers_after * (replicated ? PD_WARMUP_REPLICATED : 1);
    if (w <= 0 || replicas < 1) return 0;
    return (int)((w + replicas - 1) / replicas) + (replicated && replicas > 1);
}

/* 1 when p is a pipeline (two stages or more) with a replicated stage. */
int pd_plan_replicated(const pd_plan *p);

/* Sets every stage's warmup to pd_warmup_depth(workers after it, its replicas, replicated) and
 * weight_versions to warmup + 1 (ranks must be assigned). */
void pd_plan_set_warmup(pd_plan *p, int replicated);

#endif
