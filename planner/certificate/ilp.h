/* ilp.h: the GLPK integer program that certifies the DP's plan. It models the same problem
 * (stages as differences of downward-closed sets, replication, inter-stage traffic, the memory
 * limit) without reusing the DP's recurrence. */
#ifndef PD_ILP_H
#define PD_ILP_H

#include "planner/read/cluster.h"
#include "planner/model/costgraph.h"
#include "planner/dp/dp.h"
#include "planner/plan/plan.h"

/* Problems at or below this size are certified by default (without --verify). */
#define PD_ILP_DEFAULT_MAX_NODES 24

/* Solves the integer program with a time limit (seconds) and fills p->certificate
 * (solver "glpk", status optimal|gap|timeout|infeasible, objective in ms, gap, seconds).
 * If the integer program finds a strictly better plan than p, returns 1 and, when better is not
 * NULL, stores that plan in *better (free with pd_plan_free). Returns 0 when it agrees or is
 * inconclusive, -1 on an internal error (with a diagnostic). */
int pd_certify(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o, pd_plan *p,
               double time_limit_s, pd_plan **better, pd_diag *d);

/* The integer program's optimum on its own, without a DP plan: pruned to stages no slower than
 * upper_bound_ms (INFINITY: none pruned). Returns 0 with *out the optimal plan (NULL when none
 * exists or none was found in time; cert says which), 1 when the problem is outside the integer
 * program's scope (why says so; cert->status "skipped"), -1 on an internal error. */
int pd_ilp_optimum(pd_plan **out, pd_certificate *cert, const pd_costgraph *g,
                   const pd_cluster *c, const pd_plan_opts *o, double upper_bound_ms,
                   double time_limit_s, char *why, int why_size, pd_diag *d);

/* 1 when plans under o must use every worker of the level (as the DP's do). */
int pd_ilp_uses_every_worker(const pd_plan_opts *o);

#endif
