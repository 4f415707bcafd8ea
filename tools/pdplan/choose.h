/* choose.h: planning under a schedule's memory model (pd_plan_schedule: --schedule S --memory L
 * [--recompute] [--microbatches M]) and pdplan --schedule auto (pd_choose_schedule: the DP once
 * per schedule, microbatch count and recomputation, each plan simulated, the fastest that fits
 * chosen). choose.c. */
#ifndef PD_CHOOSE_H
#define PD_CHOOSE_H

#include <stdio.h>

#include "planner/dp/dp.h"
#include "planner/model/costgraph.h"
#include "planner/plan/plan.h"
#include "planner/read/cluster.h"
#include "planner/util/diag.h"

/* The cost graph the DP plans over with recomputation `mode` (pd_recompute_mode): each node's
 * backward pays its forward again (full), or only the nodes selective recomputation does not keep
 * (the op's selective_keeps). Shares g's arrays but bwd_ms: free with pd_recompute_graph_free.
 * NULL on OOM. */
pd_costgraph *pd_recompute_graph(const pd_costgraph *g, int mode);
void pd_recompute_graph_free(pd_costgraph *r);

/* The cost graph of plan p's stages each with its own mode (a per-stage mix): node v's backward
 * pays its forward again where its stage's mode recomputes it. As pd_recompute_graph's; NULL on
 * OOM. */
pd_costgraph *pd_recompute_graph_of(const pd_costgraph *g, const pd_plan *p);

/* The DP's best plan of g on c under schedule `name`'s memory model (planner/cost/memory.h):
 * recomputation rc (g_dp: the graph to plan over, pd_recompute_graph's with rc), M microbatches
 * per batch: m_fixed > 0 (--microbatches) rounded up to a multiple of every replica count, else
 * m_times x pd_schedule_default_microbatches of the plan (the DP runs again with the plan's own
 * M until they agree, at most 4 times). Sets the plan's schedule, microbatches, recomputation,
 * 2bw's two weight versions, and every stage's memory under the schedule with the final M.
 * g: the cost graph (the stages' memory). *planned gets the cluster (and memory model) the DP
 * planned on, for the certificate. NULL with a diagnostic in d when no plan fits. */
pd_plan *pd_plan_schedule(const pd_costgraph *g, const pd_costgraph *g_dp, const pd_cluster *c,
                          const pd_plan_opts *o, const char *name, int rc, int m_fixed,
                          int m_times, pd_cluster *planned, pd_diag *d);

/* Whether `backend` ("cpu", "cuda") runs `schedule` (a schedule name) with recomputation mode
 * `recompute` (pd_recompute_mode) on a stage. The CPU executors run every schedule and mode.
 * The CUDA executor (runtime/cuda/executor_cuda_mem.c, pdrt_cx_alloc's refusals) runs 1f1b,
 * flush, gpipe, zb-h1, zb-h2 and 2bw; full recomputation but not selective (its stages have no
 * forward_recompute), and none under a split backward (zb-h1, zb-h2: backward_weight would read
 * activations another minibatch's forward has overwritten). What --schedule auto considers for
 * the backend, and what pdplan --backend cuda refuses (cli_args.c). */
int pd_backend_runs(const char *backend, const char *schedule, int recompute);

/* --schedule auto: pd_plan_schedule for every candidate (1f1b; flush, gpipe, zb-h1, zb-h2 and
 * 2bw with 1x and 2x the default microbatches; each without and with every recomputation mode
 * the backend runs under it, pd_backend_runs), each plan simulated (time per minibatch with the
 * bubble, peak memory per worker); under a limit, after each plan, its per-stage mix: the same
 * partition and M with each stage's cheapest mode in time under which its memory fits
 * (pd_plan_stage_memory with that mode), simulated as a candidate of its own where it differs
 * from the plan and from every candidate before it. The fastest whose memory fits wins, the
 * simpler on a tie (in the order tried). g: the cost graph (simulated); g_rc, g_sel:
 * pd_recompute_graph(g) for full and selective recomputation (g_sel NULL: selective not tried;
 * the CUDA backend). cpu: the CPU backend, else the CUDA backend. Prints the choice and why to
 * out (with explain, every candidate). Returns the chosen plan, its stages' modes set, *planned
 * as pd_plan_schedule's and *planned_rc 1 when the DP planned it over g_rc, 0 over g, -1 when
 * it recomputes but the DP priced it over g (its figures are then repriced over g_rc, and it is
 * not the DP's optimum of either: no certificate), -2 when it is a per-stage mix (priced with
 * each stage's mode; no certificate), or NULL with a diagnostic. */
pd_plan *pd_choose_schedule(FILE *out, const pd_costgraph *g, const pd_costgraph *g_rc,
                            const pd_costgraph *g_sel, const pd_cluster *c, const pd_plan_opts *o, int cpu, int explain,
                            pd_cluster *planned, int *planned_rc, pd_diag *d);

#endif
