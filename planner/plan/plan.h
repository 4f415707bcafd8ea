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
    double lower_bound_ms; /* proven lower bound when not exact */
    pd_certificate certificate;
} pd_plan;

void pd_plan_free(pd_plan *p);

/* Numbers the ranks stage by stage (stage 0's replicas first), sets workers, and each stage's
 * warmup = (workers - 1 - ranks of earlier stages) / replicas (integer division, PipeDream's
 * formula) and weight_versions = warmup + 1. Returns 0, or -1 on OOM. */
int pd_plan_assign_ranks(pd_plan *p);

/* Deepens the 1F1B warm-up of a pipeline with a replicated stage (the default model's plans;
 * docs/simulator.md, "Replicated pipelines and the warm-up"): PipeDream's depth covers the
 * compute of a minibatch's round trip only, and a replica sees every r-th minibatch and waits at
 * every all-reduce, so the stages fall behind their price. Counted in minibatches in flight
 * (D_s = warmup x replicas), each stage gets D_s = D_{s+1} + ceil(3 x (the next stage's compute,
 * its all-reduce per round and the transfer both ways, of one minibatch) / bottleneck), rounded
 * up to a multiple of its replicas, never below PipeDream's; D is then non-increasing along the
 * pipeline, which keeps the replicated 1F1B order deadlock-free (every rank's order follows one
 * global order of the actions). No gap is below PipeDream's. With a memory limit (limit > 0)
 * the factor 3 becomes the largest of 3, 2, 1.5, 1 with which every stage fits (extra_bytes[s]:
 * the bytes one more warm-up step costs stage s); when none does, PipeDream's depth stays on
 * every stage (capping one stage alone can leave two neighbours with the same D, which stalls
 * the pipeline worse than PipeDream's depth).
 * Plans without replicated stages or with one stage are left as they are. Updates warmup,
 * weight_versions and memory_bytes; reads compute_ms, allreduce_ms, comm_out_ms, time_ms. */
void pd_plan_deepen_warmup(pd_plan *p, const double *extra_bytes, double limit);

#endif
