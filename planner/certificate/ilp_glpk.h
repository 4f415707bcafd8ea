/* ilp_glpk.h: the integer program in GLPK (ilp_glpk.c, the one file that builds a GLPK model):
 * the path program (ilp.c builds its arcs). */
#ifndef PD_ILP_GLPK_H
#define PD_ILP_GLPK_H

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

#endif
