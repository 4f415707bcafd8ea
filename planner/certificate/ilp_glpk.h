/* ilp_glpk.h: the integer programs in GLPK (ilp_glpk.c, the one file that builds a GLPK model):
 * the path program of one level (ilp.c builds its arcs) and the two-level program (ilp_hier.c
 * builds its arcs and reads the chosen path back). */
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

/* The two-level program's arcs (ilp_hier.c builds them): outer arcs (I, J, r1), each with a
 * contiguous run of inner arcs (I', J', r0). */
typedef struct {
    int n_out, cap_out;
    int *o_from, *o_to, *o_r; /* ideals, replicas */
    double *o_time;           /* the transfers alone */
    int *o_first_in, *o_n_in; /* its inner arcs: a contiguous run */
    int n_in, cap_in;
    int *i_out, *i_from, *i_to, *i_r;
    double *i_time; /* as a part of the outer stage: (t0 + ring) / r1 */
    int oom;
} pd_ilp_hier_arcs;

/* Solves the two-level program over the arcs of h (count ideals, N0 inner and N1 outer units)
 * within time_limit_s. Returns 0 with *status (PD_ILP_*) and, when a plan was found (OPTIMAL or
 * GAP), the chosen arcs flagged in x (h->n_out) and y (h->n_in); 1 when the program is too large
 * to index; -1 on an error (err). */
int pd_ilp_hier_glpk_solve(const pd_ilp_hier_arcs *h, int count, int N0, int N1,
                           double time_limit_s, unsigned char *x, unsigned char *y, int *status,
                           char *err, int err_size);

#endif
