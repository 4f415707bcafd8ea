/* ilp_hier.h: the integer program for two levels of workers (ilp_hier.c): the problem and the
 * flattened plan of its optimum. */
#ifndef PD_ILP_HIER_H
#define PD_ILP_HIER_H

#include "ilp_ideals.h"
#include "planner/cost/cost.h"
#include "planner/model/costgraph.h"

typedef struct {
    const pd_costgraph *g;
    const pd_ilp_ideals *id;
    const double *cut;     /* per ideal: bytes leaving it */
    pd_cost_level lv[2];   /* inner (0) and outer (1); workers = units of each */
    pd_cost_model cm;      /* PD_COST_DEFAULT (the scope) */
} pd_ilp_hier_problem;

typedef struct {
    int status;        /* PD_ILP_OPTIMAL, PD_ILP_GAP, PD_ILP_TIMEOUT, PD_ILP_INFEASIBLE (ilp_glpk.h) */
    double objective;  /* the largest time among the chosen stages */
    double gap;
    int n_stages;      /* inner stages in pipeline order */
    int *from, *to;    /* ideals: the stage is to \ from */
    int *replicas;     /* inner units x outer units */
    int *outer;        /* index of the enclosing outer stage */
    double *time_ms;   /* the outer stage's time as far as this stage sets it */
} pd_ilp_hier_result;

/* Solves the two-level program over the stages no slower than cap (strictly below with
 * strict) within time_limit_s. Returns 0 (res filled; free with pd_ilp_hier_result_free), 1 when
 * it would have more than max_arcs inner candidate stages, -1 on an error (err). *n_arcs gets
 * the inner candidate stages. */
int pd_ilp_hier_solve(pd_ilp_hier_result *res, const pd_ilp_hier_problem *q, double cap,
                      int strict, double time_limit_s, long max_arcs, int *n_arcs, char *err,
                      int err_size);
void pd_ilp_hier_result_free(pd_ilp_hier_result *r);

#endif
