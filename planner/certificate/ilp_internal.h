/* ilp_internal.h: the pieces of the GLPK certificate (ilp.c), shared between its files only.
 *
 * ilp_ideals.c enumerates the downward-closed sets (ideals) of a cost graph as bitsets, on its own
 * (it shares no code with the DP's enumeration). ilp_glpk.c solves the integer program: a path
 * of arcs from a source vertex to a sink vertex (each arc one candidate stage with its replica
 * count) that minimises the largest arc time, under a worker budget. ilp.c builds the arcs from
 * the cost model (planner/cost.h) and turns the chosen path back into a plan.
 */
#ifndef PD_ILP_INTERNAL_H
#define PD_ILP_INTERNAL_H

#include <stdint.h>

#include "planner/cost/cost.h"
#include "planner/model/costgraph.h"

/* Every ideal of a graph, sorted by size (the empty set first, the full set last). */
typedef struct {
    int n;          /* nodes of the graph */
    int words;      /* 64-bit words per set */
    int count;      /* ideals */
    uint64_t *bits; /* count * words */
    int *size;      /* nodes in each ideal */
} pd_ilp_ideals;

/* Enumerates the ideals of g. Returns 0, 1 when there are more than max_ideals (out is then
 * empty), -1 when out of memory. */
int pd_ilp_ideals_enum(pd_ilp_ideals *out, const pd_costgraph *g, long max_ideals);
void pd_ilp_ideals_free(pd_ilp_ideals *s);
/* 1 when ideal a is a proper subset of ideal b. */
int pd_ilp_ideal_below(const pd_ilp_ideals *s, int a, int b);
/* The sums of the stage j \ i (ideals, i below j): compute (fwd + bwd ms), parameter and
 * activation bytes, the rest of *s zero; its nodes in order into nodes (when not NULL). Returns
 * how many nodes the stage has. */
int pd_ilp_stage_sums(pd_stage_sums *s, const pd_costgraph *g, const pd_ilp_ideals *id, int i,
                      int j, int *nodes);
/* 1 when node v is in ideal i. */
static inline int pd_ilp_ideal_has(const pd_ilp_ideals *s, int i, int v) {
    return (int)((s->bits[(long)i * s->words + v / 64] >> (v % 64)) & 1u);
}

/* The path problem. Vertices are 0..n_vertices-1; arc a goes tail[a] -> head[a] and covers the
 * graph nodes cover[cover_start[a] .. cover_start[a+1]-1] (its stage). */
typedef struct {
    int n_vertices, source, sink;
    int n_arcs;
    int *tail, *head, *replicas;
    double *time_ms;
    long *cover_start; /* n_arcs + 1 */
    int *cover;
    int n_nodes;       /* graph nodes (rows bounding the bottleneck) */
    int budget;        /* workers */
    int exact_budget;  /* 1: the replicas of the chosen arcs sum to budget exactly */
    int lp_presolve;   /* 1: run GLPK's LP presolver on the root relaxation */
    int vertex_rows;   /* 1: bound the bottleneck per vertex (the arc leaving it, the arc
                          entering it) instead of per graph node: 2 entries per arc, not one per
                          node of its stage */
} pd_ilp_paths;

typedef struct {
    int status;        /* PD_ILP_OPTIMAL, PD_ILP_GAP, PD_ILP_TIMEOUT, PD_ILP_INFEASIBLE */
    double objective;  /* the largest time among the chosen arcs (recomputed exactly) */
    double gap;        /* relative MIP gap at the end (0 when optimal) */
    int n_chosen;
    int *chosen;       /* arcs of the path in order from the source (n_chosen) */
} pd_ilp_result;

enum { PD_ILP_OPTIMAL = 0, PD_ILP_GAP, PD_ILP_TIMEOUT, PD_ILP_INFEASIBLE };

/* Solves the path problem with GLPK within time_limit_s. Returns 0 (result filled; free
 * res->chosen), or -1 on an internal error with a message in err. */
int pd_ilp_paths_solve(pd_ilp_result *res, const pd_ilp_paths *p, double time_limit_s,
                       char *err, int err_size);

/* Two levels of workers (ilp_hier.c): the problem and the flattened plan of its optimum. */
typedef struct {
    const pd_costgraph *g;
    const pd_ilp_ideals *id;
    const double *cut;     /* per ideal: bytes leaving it */
    pd_cost_level lv[2];   /* inner (0) and outer (1); workers = units of each */
    pd_cost_model cm;      /* PD_COST_DEFAULT (the scope) */
} pd_ilp_hier_problem;

typedef struct {
    int status;        /* PD_ILP_OPTIMAL, PD_ILP_GAP, PD_ILP_TIMEOUT, PD_ILP_INFEASIBLE */
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
