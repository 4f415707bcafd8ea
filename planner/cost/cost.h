/* cost.h: the time and memory of one pipeline stage at one level of the cluster, under both cost
 * models (PD_COST_DEFAULT, ours, and PD_COST_PIPEDREAM, the original optimizer's formulas as
 * coded). The DP (dp.c) and the integer program (ilp.c) both price stages only through these
 * functions, so they agree on every number. docs/planner.md gives the formulas.
 *
 * A stage is J \ I for two downward-closed sets (ideals) I subset J of the cost graph. Its input
 * cut is cut(I), its output cut is cut(J), where cut(X) = sum of act_bytes of the nodes in X that
 * have at least one consumer outside X (each tensor counted once).
 *
 * "workers_after" is the number of workers of this level that run later stages (N minus the
 * workers of this stage and of every earlier stage); it sets the number of minibatches in flight
 * (1F1B warm-up: plan.h, pd_warmup_depth) and therefore the memory.
 */
#ifndef PD_COST_H
#define PD_COST_H

#include <math.h>

#include "planner/model/costgraph.h"
#include "planner/model/model.h"
#include "planner/plan/plan.h"
#include "memory.h"

/* One level of the cluster, as a stage sees it. */
typedef struct {
    double bandwidth;    /* B, bytes/s between units of this level */
    int workers;         /* N: units at this level (cluster count[l]) */
    int k;               /* K: count of the level below (count[l-1]), 1 at level 0, as the
                            original passes it; used only by the compat base case */
    double memory_bytes; /* per worker; 0 = no limit */
    int innermost;       /* 1 at level 0: the default model checks memory only there, where one
                            stage replica is one worker */
    double optim_buffers; /* the optimizer's parameter-sized buffers (pd_costgraph's) */
    pd_mem_model mem;     /* the schedule's memory model (the cluster's; memory.h) */
    int replicated_warmup; /* the default model: 1 when the warm-up is that of a pipeline with a
                              replicated stage (plan.h, pd_warmup_depth); 0 (PipeDream's depth)
                              from pd_cost_level_of */
} pd_cost_level;

/* The sums that price a stage (what the DP precomputes per pair of ideals). */
typedef struct {
    double compute_ms;  /* T: fwd+bwd of the stage's nodes per minibatch, or at an outer level
                           the inner level's best time for the range */
    double param_bytes; /* P: sum of param_bytes of the stage's nodes */
    double act_bytes;   /* Aact: sum of act_bytes of the stage's nodes (stored activations) */
    double in_bytes;    /* cut(I): 0 when the stage is first (I empty) */
    double out_bytes;   /* cut(J): 0 when the stage is last (J = every node) */
    int first;          /* I is empty (PipeDream's base case) */
    int last;           /* J is every node */
} pd_stage_sums;

/* What a stage costs. Times in ms per minibatch. */
typedef struct {
    double compute_ms;    /* T / replicas */
    double allreduce_ms;  /* weight sync per minibatch (already divided by replicas) */
    double comm_in_ms;    /* activation + gradient over the input cut, per minibatch */
    double comm_out_ms;   /* the same over the output cut */
    double time_ms;       /* the stage's time: what the bottleneck is the max of */
    double memory_bytes;  /* per worker, as the cost model counts it (the default model: under
                             the level's memory model, memory.h, with that warm-up) */
    int warmup;           /* pd_warmup_depth(workers_after, replicas, replicated_warmup) */
    int weight_versions;  /* warmup + 1 */
    int fits;             /* 1 when memory_bytes <= memory limit (or no limit) */
} pd_stage_cost;

/* The default model's stage time, the number pd_stage_cost_eval gives as time_ms under
 * PD_COST_DEFAULT (which calls this): compute / r plus the ring all-reduce of the parameters
 * 2 (r-1) P / (r B) once per round of r minibatches, or the input or output transfer (2 a / (B r):
 * activations forward, gradients back) when larger. Inline for the DP's inner loop. */
static inline double pd_stage_time_default(double compute_ms, double param_bytes,
                                           double in_bytes, double out_bytes, int first,
                                           int last, double bandwidth, int replicas) {
    double r = replicas, B = bandwidth;
    double ring = 1000.0 * 2.0 * (r - 1.0) * param_bytes / (r * B);
    double t = compute_ms / r + ring / r;
    double in = first ? 0 : 2000.0 * in_bytes / (B * r);
    double out = last ? 0 : 2000.0 * out_bytes / (B * r);
    if (in > t) t = in;
    if (out > t) t = out;
    return t;
}

/* Tied weights (docs/formats.md): a stage whose tied weight has its other copy on another stage
 * exchanges the copy's gradient, tied_bytes each way, once per update, at the bandwidth between
 * the two stages: per minibatch tied_bytes / (B r) (1f1b: an update per r minibatches), added to
 * the stage's time because both stages wait for it. 0 without ties. */
static inline double pd_tied_ms(double tied_bytes, double bandwidth, int replicas) {
    return tied_bytes > 0 ? 1000.0 * tied_bytes / (bandwidth * replicas) : 0.0;
}

/* The inverse of pd_stage_time_default, in closed form: about the least replica count r >= 2
 * whose time is at most T (T > 0), as a real number. The time is (T_c + a (r-1)/r) / r beside
 * the transfers b / r (a = 2000 P / B, b = 2000 bytes / B): at most T from r >= b / T and from
 * r >= the larger root of T r^2 - (T_c + a) r + a. Rounding can put the answer a step either
 * way: callers check it with pd_stage_time_default. */
static inline double pd_stage_replicas_default(double compute_ms, double param_bytes,
                                               double in_bytes, double out_bytes, int first,
                                               int last, double bandwidth, double T) {
    double B = bandwidth, a = 2000.0 * param_bytes / B, q = compute_ms + a;
    double bin = first ? 0 : 2000.0 * in_bytes / B, bout = last ? 0 : 2000.0 * out_bytes / B;
    double disc = q * q - 4 * T * a, b = bin > bout ? bin : bout;
    double root = disc > 0 ? (q + sqrt(disc)) / (2 * T) : 0;
    return b / T > root ? b / T : root;
}

/* ---- The price of a plan on a hierarchical cluster (default model) ----
 * Ranks are numbered stage by stage, contiguously (pd_plan_assign_ranks), and rank k runs on
 * worker k: level 0's units are blocks of count[0] workers, level 1's blocks of
 * count[0] count[1], and so on. A stage on the ranks [a, a + r) all-reduces its weights once per
 * round of r minibatches by a hierarchical ring: at each level l a ring over the units of level
 * l - 1 (single workers at level 0) that it spans inside one unit of level l, at bandwidth[l]
 * (the simulator's model, planner/sim/simulate.c). Its time per minibatch is
 *     max((T + sum_l 2 (n_l - 1) P / (n_l B_l)) / r,  2 in / (B_in r),  2 out / (B_out r))
 * with n_l the units it spans at level l, B_in the bandwidth of the level that holds rank a - 1
 * and the stage, B_out that of the level that holds the stage and rank a + r. A plan's bottleneck
 * is the largest stage time (pd_plan_price); the DP minimises exactly this (docs/planner.md,
 * "One price"). On one level it is pd_stage_time_default. */

/* The innermost level whose units hold both ranks a and b (n_levels - 1 when only the whole
 * cluster does). */
static inline int pd_rank_level(const pd_cluster *c, long a, long b) {
    long unit = 1;
    for (int l = 0; l < c->n_levels; l++) {
        unit *= c->count[l];
        if (a / unit == b / unit) return l;
    }
    return c->n_levels - 1;
}

/* The most units of level l - 1 (workers at level 0) that the ranks [a, a + r) occupy inside
 * one unit of level l (the ring's length at level l). */
static inline int pd_span_units(const pd_cluster *c, int l, long a, long r) {
    long u = 1;
    for (int k = 0; k < l; k++) u *= c->count[k];
    long U = u * c->count[l], e = a + r - 1;
    if (r <= 0) return 0;
    long fb = a / U, lb = e / U;
    if (fb == lb) return (int)(e / u - a / u + 1);
    if (lb - fb >= 2) return c->count[l];
    long n1 = ((fb + 1) * U - 1) / u - a / u + 1, n2 = e / u - (lb * U) / u + 1;
    return (int)(n1 > n2 ? n1 : n2);
}

/* The hierarchical ring all-reduce of P bytes among the ranks [a, a + r), in ms. */
static inline double pd_ring_ms_span(const pd_cluster *c, long a, int r, double P) {
    double ms = 0;
    for (int l = 0; l < c->n_levels; l++) {
        double n = pd_span_units(c, l, a, r);
        if (n > 1) ms += 1000.0 * 2.0 * (n - 1.0) * P / (n * c->bandwidth[l]);
    }
    return ms;
}

/* The stage time above for a stage on the ranks [a, a + r) (first: no input, last: no output). */
static inline double pd_stage_time_at(const pd_cluster *c, double compute_ms, double param_bytes,
                                      double in_bytes, double out_bytes, int first, int last,
                                      long a, int replicas) {
    double r = replicas;
    double t = compute_ms / r + pd_ring_ms_span(c, a, replicas, param_bytes) / r;
    if (!first) {
        double in = 2000.0 * in_bytes / (c->bandwidth[pd_rank_level(c, a - 1, a + r - 1)] * r);
        if (in > t) t = in;
    }
    if (!last) {
        double out = 2000.0 * out_bytes / (c->bandwidth[pd_rank_level(c, a, a + r)] * r);
        if (out > t) t = out;
    }
    return t;
}

/* The hierarchical ring all-reduce of P bytes among any group of ranks (members[n]), in ms;
 * *bytes gets what one member sends. For contiguous ranks it is pd_ring_ms_span. */
double pd_ring_ms_members(const pd_cluster *c, const int *members, int n, double P,
                          double *bytes);

/* A stage on the ranks [a, a + replicas) of cluster c under the default model: the figures of
 * pd_stage_cost_eval, with the all-reduce and transfers of pd_stage_time_at (memory: the default
 * model's, against c->memory_bytes, at the warm-up pd_warmup_depth(workers_after, replicas,
 * replicated)). */
void pd_stage_cost_at(pd_stage_cost *out, const pd_stage_sums *s, const pd_cluster *c,
                      const pd_costgraph *g, long a, int replicas, int workers_after,
                      int replicated);

/* The price of plan p (default model; its stages' nodes, replicas and ranks) on cluster c: fills
 * every stage's compute_ms (unreplicated), allreduce_ms, comm_in_ms, comm_out_ms, time_ms,
 * param_bytes and act_in/out_bytes, and returns the bottleneck, the largest time_ms. The plan's
 * bottleneck_ms, the data-parallel baseline and the DP's objective are this number. */
double pd_plan_price(pd_plan *p, const pd_costgraph *g, const pd_cluster *c);

/* Prices a stage from its sums. replicas >= 1, workers_after >= 0. */
void pd_stage_cost_eval(pd_stage_cost *out, const pd_stage_sums *s, const pd_cost_level *lv,
                        pd_cost_model cm, int replicas, int workers_after);

/* Prices the stage J \ I of g given as byte flags per node: before[v] = 1 when v is in I (NULL
 * means I is empty), stage[v] = 1 when v is in the stage. I must be downward closed and I + stage
 * too (not checked). Compute is the sum of fwd_ms + bwd_ms of the stage's nodes (a flat level).
 * Same numbers as the DP gives the same stage at a flat (single) level. */
void pd_stage_cost_nodes(pd_stage_cost *out, const pd_costgraph *g, const pd_cost_level *lv,
                         pd_cost_model cm, const unsigned char *before,
                         const unsigned char *stage, int replicas, int workers_after);

/* Bytes of the tensors that leave the node set in[] (byte flags): each node in the set with at
 * least one consumer outside it counts its act_bytes once. */
double pd_cut_bytes(const pd_costgraph *g, const unsigned char *in);

/* The sums of the whole graph as one stage (first and last): data parallelism's stage. */
void pd_graph_sums(pd_stage_sums *s, const pd_costgraph *g);

/* The data-parallel baseline: the whole graph as one stage replicated on every worker. Compat:
 * iterated over the levels innermost first as the original does (t <- stage time of t on N_l
 * units). Default: per round of one minibatch per worker, in which each level's ring all-reduce
 * runs once: (T + sum_l 2 (N_l - 1) P / (N_l B_l)) / workers. Ignores memory. */
double pd_data_parallel_ms(const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm);

/* Tied weights (tied.c): each stage holding one copy of a weight whose other copy is on another
 * stage gets its floats in tied_params and pd_tied_ms of its bytes at the bandwidth between the
 * two stages' first ranks in tied_ms and time_ms; the bottleneck follows. Nothing without ties.
 * The DP and the certificate do not see it: it counts the plan they chose. */
void pd_plan_count_ties(pd_plan *p, const pd_model *m, const pd_cluster *c);

/* Each stage's params: its layers' weights and biases, a tied layer's weight left to its owner
 * (one logical tensor), so the stages sum to the model's parameter count. Without a model (m
 * NULL: a graph.txt), the stage's param_bytes / 4. */
void pd_plan_count_params(pd_plan *p, const pd_model *m);

/* Fills lv for level l of c (memory from c->memory_bytes; the optimizer's buffers from g, 1 when
 * g is NULL). */
void pd_cost_level_of(pd_cost_level *lv, const pd_cluster *c, const pd_costgraph *g, int l);

#endif
