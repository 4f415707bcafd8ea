/* simulate.h: the event-driven pipeline simulator. It executes a schedule IR
 * (runtime/schedule/schedule.h) rank by rank with per-action costs: compute from the cost graph and the plan, point-to-point
 * transfers serialised per link at the bandwidth of the cluster level that separates the two
 * ranks, and all-reduces among a stage's replicas. It reports the steady-state time per
 * minibatch, the warm-up/drain bubble, utilisation per stage, bytes communicated per minibatch
 * and peak memory per worker, and can write a Chrome trace (chrome://tracing, Perfetto).
 *
 * Model (docs/simulator.md gives the reasons):
 *  - rank r runs on worker r; two ranks are separated by the innermost level l at which they
 *    fall into the same unit, and talk at bandwidth[l] of the cluster;
 *  - a link is an unordered pair of ranks: activations and gradients share it, one transfer at a
 *    time, first posted first served (PipeDream's cost model also charges both directions);
 *  - transfers start when posted (receives pre-posted) or, with opts.rendezvous, when both the
 *    send and the receive are posted; a send completes when its transfer ends, and a rank holds
 *    at most send_slots uncompleted sends per kind, as the executor does;
 *  - an allreduce action is collective among the ranks of the same stage (the k-th allreduce of
 *    each replica meet); it starts when the last arrives and lasts, with opts.allreduce
 *    PD_SIM_AR_RING (NCCL's, and the DP's cost model's), a hierarchical ring: sum over levels l
 *    of 2 (n_l - 1) / n_l * P / bandwidth[l], n_l the units of level l the group spans; with
 *    PD_SIM_AR_GATHER (the CPU runtime's: gather to the first replica, sum in rank order,
 *    broadcast), 2 P / bandwidth(first, i) summed over the other members i, the first replica's
 *    link carrying every copy in turn; it blocks the rank (as the DP's cost model adds it to
 *    compute);
 *  - forward, backward and step cost their rank's fwd_ms, bwd_ms and step_ms, backward_input
 *    and backward_weight its bwd_input_ms and bwd_weight_ms; flush waits for every outstanding
 *    send of the rank; a minibatch is in flight from its forward to its backward (or
 *    backward_weight).
 */
#ifndef PD_SIMULATE_H
#define PD_SIMULATE_H

#include <stdio.h>

#include "planner/read/cluster.h"
#include "planner/model/costgraph.h"
#include "planner/cost/memory.h"
#include "planner/util/diag.h"
#include "planner/plan/plan.h"
#include "runtime/schedule/schedule.h"

/* What one rank's actions cost. */
typedef struct {
    double fwd_ms, bwd_ms, step_ms; /* per action */
    double bwd_input_ms;            /* zb-h1, zb-h2: backward_input (B) and backward_weight (W), */
    double bwd_weight_ms;           /* the two parts of bwd_ms */
    double act_bytes;               /* bytes of every send_act this rank posts */
    double grad_bytes;              /* bytes of every send_grad this rank posts */
    double param_bytes;             /* its weights (all-reduced among replicas) */
    pd_mem_model mem;               /* its schedule's memory model and recomputation */
    pd_mem_stage held;              /* what it holds: its peak memory is pd_mem_bytes(&mem,
                                       &held, its most minibatches in flight), the function the
                                       DP's memory check calls (planner/cost/memory.h) */
    double act_keep_bytes;          /* interleaved: what one minibatch in flight keeps (its
                                       activations and input), summed over a rank's chunks */
    double recompute_ms;            /* the forward a recomputing stage runs again before a
                                       backward (B or W) whose minibatch's activations its
                                       working buffer does not hold, as the CPU runtime does */
} pd_sim_rank_cost;

enum { PD_SIM_AR_RING = 0, PD_SIM_AR_GATHER = 1 };

/* One timed event of a run (pd_sim_opts.timeline): what a rank did from t0 for dur ms. */
enum { PD_SIM_EV_FORWARD = 0, PD_SIM_EV_BACKWARD, PD_SIM_EV_ALLREDUCE, PD_SIM_EV_TRANSFER,
       PD_SIM_EV_OTHER, PD_SIM_EV_WEIGHT /* backward_weight (zb-h1, zb-h2); backward_input
       counts as a backward */, PD_SIM_EV_COUNT };
typedef struct {
    double t0, dur;
    int rank, kind, mb;
    int peer; /* transfers: the other rank (rank is the sender) */
} pd_sim_event;

/* Where a run records its events (the first run of pd_simulate only); the caller frees ev. */
typedef struct {
    pd_sim_event *ev;
    int n, cap;
    int oom;
} pd_sim_timeline;

typedef struct {
    pd_sim_timeline *timeline; /* NULL: none recorded */
    int rendezvous;   /* 1: a transfer starts only when its receive is posted too */
    int allreduce;    /* PD_SIM_AR_RING (0) or PD_SIM_AR_GATHER (above) */
    int microbatches; /* flush/gpipe: minibatches between two flushes (0: 4 x stages, rounded
                         up to a multiple of every stage's replica count) */
} pd_sim_opts;

typedef struct {
    char schedule[16];
    int n_ranks, n_stages, steps;
    double makespan_ms;          /* the whole run of `steps` minibatches */
    double steady_ms;            /* per minibatch, steady state */
    double bubble_ms;            /* makespan minus the busiest rank's busy time: warm-up, drain
                                    and (for flush/gpipe) every flush's idle time */
    double p2p_bytes_per_minibatch;
    double allreduce_bytes_per_minibatch;
    double bytes_per_minibatch;  /* the two above, over every worker */
    double peak_memory_bytes;    /* max over workers */
    int *rank_stage;             /* n_ranks */
    double *rank_busy_ms;        /* n_ranks: compute + all-reduce time in the run */
    double *rank_util;           /* n_ranks: busy fraction in steady state */
    int *rank_peak_inflight;     /* n_ranks: most minibatches between forward and backward
                                    (zb-h1, zb-h2: and backward_weight) */
    double *rank_peak_memory;    /* n_ranks: bytes */
    double *stage_util;          /* n_stages: mean of its replicas' rank_util */
    double *stage_peak_memory;   /* n_stages: max over its replicas */
    double *stage_act_memory;    /* n_stages: the activations' part of it (stage inputs, layers'
                                    outputs and saved state, zb's output gradients) */
} pd_sim_result;

void pd_sim_result_free(pd_sim_result *r);

/* Runs schedule s once with per-rank costs rc[s->n_ranks] on cluster c (interleaved, s->chunks
 * > 1: rc[s->n_stages], each action priced by its stage's entry, messages told apart by the
 * receiving stage; a rank's memory is three copies of its chunks' weights, as the synchronous
 * schedules keep, plus the most activations its chunks hold at once). Fills every field of
 * *out except steady_ms and rank_util (set to makespan/steps and the whole-run busy fraction).
 * trace (may be NULL) receives a Chrome trace JSON. Returns 0, or 1 with a reason in why when
 * the schedule cannot run to its end (a deadlock, an unmatched message) or on bad input. */
int pd_sim_run(pd_sim_result *out, FILE *trace, const pd_schedule *s,
               const pd_sim_rank_cost *rc, const pd_cluster *c, const pd_sim_opts *opts,
               char *why, int why_size);

/* Builds the schedule `name` ("1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw"; "dp" for a
 * one-stage plan) for plan p
 * over `steps` minibatches. Stage s with r replicas gets minibatch m on its replica m % r; the
 * backward of m returns to the replica that ran its forward. 1f1b on a plan without replicas is
 * the runtime's own pd_schedule_1f1b. Returns NULL on a bad name or out of memory. */
pd_schedule *pd_sim_schedule(const pd_plan *p, const char *name, int steps, int microbatches);

/* Per-rank costs of plan p on cost graph g (rc has p->workers entries; an interleaved plan's,
 * p->chunks > 1, are per stage: p->n_stages entries). */
void pd_sim_costs(pd_sim_rank_cost *rc, const pd_costgraph *g, const pd_plan *p,
                  const char *schedule);

/* Simulates plan p under `schedule` (NULL: p->schedule, else "1f1b"): runs `steps` minibatches
 * (0: a default long enough for the steady state) and twice as many, and takes the steady state
 * from the difference. The trace, if any, is of the first run. Returns 0, or 1 with a message in
 * why. */
int pd_simulate(pd_sim_result *out, FILE *trace, const pd_costgraph *g, const pd_cluster *c,
                const pd_plan *p, const char *schedule, int steps, const pd_sim_opts *opts,
                char *why, int why_size);

/* The data-parallel baseline: every node in one stage replicated on every worker of c. */
int pd_simulate_data_parallel(pd_sim_result *out, FILE *trace, const pd_costgraph *g,
                              const pd_cluster *c, int steps, const pd_sim_opts *opts, char *why,
                              int why_size);

/* The one-stage, every-worker plan that pd_simulate_data_parallel simulates (free with
 * pd_plan_free). NULL on out of memory. */
pd_plan *pd_data_parallel_plan(const pd_costgraph *g, const pd_cluster *c);

/* Writes the timeline of a run as an SVG picture (planner/sim/timeline_svg.c): one row per rank
 * (labelled with its stage), forwards, backwards, all-reduces and transfers in distinct colours,
 * minibatch numbers on the longer bars, a time axis in ms. Returns 0, or -1 when writing fails. */
int pd_sim_timeline_svg(FILE *out, const pd_sim_timeline *tl, int n_ranks, const int *rank_stage,
                        const char *title);

/* Prints a result as a short table. */
void pd_sim_print(FILE *out, const pd_sim_result *r);

/* What pdplan --simulate prints: plan p and the data-parallel baseline simulated, beside the
 * DP's predictions (time per minibatch, speedup, bytes per minibatch and the communication
 * saved). Writes the plan's Chrome trace to trace_path (NULL: none). Returns 0, or 1 with a
 * diagnostic. */
int pd_simulate_report(FILE *out, const pd_costgraph *g, const pd_cluster *c, const pd_plan *p,
                       const char *trace_path, const pd_sim_opts *opts, pd_diag *d);

/* --simulate's picture: simulates plan p over its first minibatches (enough for warm-up, a
 * steady state and the drain: 3 x workers, at least 12) and writes the timeline to svg_path.
 * Returns 0, or 1 with a diagnostic. */
int pd_simulate_timeline(const char *svg_path, const pd_costgraph *g, const pd_cluster *c,
                         const pd_plan *p, const pd_sim_opts *opts, pd_diag *d);

#endif
