/* interleave.h: pdplan --schedule interleaved (interleave.c): the cluster the DP partitions on,
 * the mapping of its p * v stages onto p ranks, and the price. */
#ifndef PDPLAN_INTERLEAVE_H
#define PDPLAN_INTERLEAVE_H

#include <stdio.h>

#include "planner/dp/dp.h"
#include "planner/model/costgraph.h"
#include "planner/plan/plan.h"
#include "planner/read/cluster.h"
#include "planner/util/diag.h"

/* The cluster the DP plans interleaved's p * v stages on: one level of p * v workers at the
 * slowest bandwidth of c (a chunk's neighbours may sit across any level), without a memory
 * limit (the DP's memory model is 1f1b's, with weight stashing; pd_interleave_memory checks). Diagnoses fewer than 2 workers, fewer layers than
 * p * v and microbatches (0: the default, 4 p) that are not a multiple of p; *M gets the
 * microbatches. Returns 0, or 1 after diagnostics. */
int pd_interleave_cluster(pd_cluster *out, int *M, const pd_cluster *c, int v, int microbatches,
                          const pd_costgraph *g, pd_diag *d);

/* The DP balances interleaved's chunks (its slowest stage); a worker runs v of them, so the
 * price is the slowest worker's sum. Searches for the partition that lowers it: steepest descent
 * over shifts of one boundary between consecutive chunks by any number of layers (each chunk
 * stays the difference of two ideals), from the DP's chunks and then from random cuts of the
 * topological order while an evaluation budget lasts; under the default cost model (compat keeps
 * the DP's chunks). Sets p->lower_bound_ms to a bound on any K-stage plan's slowest worker: the
 * larger of the DP's optimum (or bound) for the slowest chunk and the average worker's compute.
 * Call on the DP's plan, on the cluster it was planned on (cv), before pd_interleave_apply.
 * Returns the number of layers that changed chunk. */
int pd_interleave_rebalance(pd_plan *p, const pd_costgraph *g, const pd_cluster *cv, int v);

/* Maps the DP's straight plan of p * v stages onto the p ranks of cluster c: stage s on rank
 * s mod p with Megatron's warm-up of that rank, one weight version; the bottleneck is the
 * slowest rank's time, the sum of its chunks' times (exact when it meets the bound
 * pd_interleave_rebalance set); the data-parallel time and the speedup
 * are recomputed on c. */
void pd_interleave_apply(pd_plan *p, const pd_costgraph *g, const pd_cluster *c, int v, int M);

/* Each stage's memory_bytes becomes its worker's simulated peak (its chunks' weights, gradients
 * and optimizer state, and the most activations they hold at once); returns 1 after a
 * diagnostic when that is over c's memory limit (or the simulation fails), else 0. */
int pd_interleave_memory(pd_plan *p, const pd_costgraph *g, const pd_cluster *c, pd_diag *d);

/* --schedule auto, after choose.c chose `chosen` among the other schedules: plans interleaved
 * with 2 and 4 chunks per worker where the model has the layers (the DP as for --schedule
 * interleaved), each with M = 4p and 8p, simulates them and prints a line on out (with explain,
 * one per candidate). Returns the chunks (2 or 4) of the fastest that fits the memory limit
 * when it is faster than `chosen` (simulated under its schedule), with its M in *M_out; else 0.
 * The caller plans it again the way --schedule interleaved does. */
int pd_interleave_consider(FILE *out, const pd_costgraph *g, const pd_cluster *c,
                           const pd_plan_opts *o, const pd_plan *chosen, int explain, int *M_out);

#endif
