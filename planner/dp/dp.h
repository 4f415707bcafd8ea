/* dp.h: PipeDream's dynamic program over pipeline stages, with data-parallel replication and
 * hierarchical levels, over every downward-closed set of the layer graph. */
#ifndef PD_DP_H
#define PD_DP_H

#include <stdio.h>

#include "planner/read/cluster.h"
#include "planner/model/costgraph.h"
#include "planner/util/diag.h"
#include "planner/plan/plan.h"

enum { PD_METHOD_AUTO = 0, PD_METHOD_PLAIN, PD_METHOD_PARAMETRIC };

typedef struct {
    pd_cost_model cost_model; /* PD_COST_DEFAULT or PD_COST_PIPEDREAM (--compat pipedream) */
    int straight;             /* --straight: every stage has one worker, all workers used */
    const char *schedule;     /* "1f1b" (default), "flush", "gpipe" */
    long max_states;          /* cap on enumerated downward-closed sets (0 = built-in default) */
    int verbose;
    int method;               /* PD_METHOD_AUTO (0), _PLAIN (the plain DP, the tests' reference)
                                 or _PARAMETRIC (where it applies: the default model, one level;
                                 dp.c, docs/planner.md) */
    int threads;              /* --threads: threads for the hierarchy's inner levels (0 = the
                                 processors it may run on, at most 16); the plan is the same for any */
    int pipelined;            /* 1: no plan of one stage (--explain's best pipeline) */
    double memory_budget;     /* --memory-budget: bytes the DP's tables may take (0: 2 GiB); the
                                 states are capped so that the tables fit (dp.c, states_for) */
    int lattice;              /* -1: no lattice search over the cap (the tests of the family's
                                 plan); 0: where it applies (planner/dp/lattice.c) */
    int shallow_warmup;       /* 1: every plan at PipeDream's warm-up depth, replicated or not
                                 (its price then leaves out the round trips a replicated
                                 pipeline waits on; pd_plan_schedule simulates it instead) */
} pd_plan_opts;

/* Plans g on c. Returns NULL, with a diagnostic naming the constraint that failed (memory,
 * workers, ...), when no plan fits. The plan's stages, replicas, ranks, warmup, weight versions,
 * times and memory are all filled; certificate.status is "skipped". */
pd_plan *pd_plan_dp(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                    pd_diag *d);

/* A proven lower bound on the best bottleneck of g on a cluster of several levels: the optimum
 * (or, where that DP is not exact, its own lower bound) of one level of every worker at the
 * fastest bandwidth, without the memory limit (dp.c; docs/planner.md, "Lower bounds"). 0 for one
 * level or when nothing fits. pd_plan_dp uses it when the hierarchy's DP plans over a subset of
 * the states: a plan that reaches it is optimal (exact: true). */
double pd_plan_flat_bound(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o);

/* A proven lower bound on the best bottleneck of g on one level under cost model cm without
 * --straight (any memory limit): bisection between the compute bound and hi (a plan's
 * bottleneck) over a graph whose chains are contracted to at most max_states ideals
 * (planner/dp/relax.c; docs/planner.md, "Lower bounds"). pd_plan_dp uses it, with 6000, when it
 * plans over a subset of the states. */
double pd_plan_chain_bound(const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm,
                           double hi, long max_states);

/* --explain: for each cut of plan p, why it is there and what the next best alternative costs. */
void pd_explain(FILE *out, const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                const pd_plan *p);

#endif
