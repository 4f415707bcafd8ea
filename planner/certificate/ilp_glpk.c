/* ilp_glpk.c: the integer program itself, in GLPK's C API: the path program (ilp.c builds its
 * arcs; on several levels their vertices carry the ranks before a stage). The only file that
 * builds a GLPK model.
 *
 * Variables: x[a] binary for every arc a (a candidate stage with its replica count), and T >= 0
 * continuous, the bottleneck. Rows:
 *   flow:   for every vertex v, sum of x leaving v - sum of x entering v = 1 at the source,
 *           -1 at the sink, 0 elsewhere, so the chosen arcs form one path (no cyclic stage
 *           orders: every arc goes from an ideal to a strictly larger one);
 *   budget: sum of replicas[a] * x[a] <= workers (== workers when the budget must be used up);
 *   bottleneck (vertex_rows, the default): for every vertex v, T - sum of time[a] * x[a] over
 *           the arcs leaving v >= 0, and the same over the arcs entering v. On a path at most
 *           one chosen arc leaves (enters) a vertex, and every chosen arc leaves one, so T is at
 *           least every chosen stage's time, with two matrix entries per arc. Otherwise one row
 *           per graph node l over the arcs whose stage holds l (as tight, far denser);
 *   load:   workers * T - sum of replicas[a] * time[a] * x[a] >= 0, valid because every chosen
 *           stage has time <= T and the replicas sum to at most the workers; in the linear
 *           relaxation it is the load-balancing bound that the per-node rows lack.
 * Objective: minimise T.
 * Every index is validated before GLPK sees it (GLPK aborts the process on a bad index), and
 * glp_check_dup runs before glp_load_matrix. GLPK's terminal output is switched off. */
#include "ilp_glpk.h"

#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR(...) (snprintf(err, (size_t)err_size, __VA_ARGS__), -1)

typedef struct {
    double gap;
} cb_info;

static void callback(glp_tree *tree, void *info) {
    cb_info *ci = info;
    int r = glp_ios_reason(tree);
    if (r == GLP_IBINGO || r == GLP_ISELECT) ci->gap = glp_ios_mip_gap(tree);
}

/* Checks the arrays describing the problem; returns 0 or -1 with err. */
static int validate(const pd_ilp_paths *p, char *err, int err_size) {
    if (p->n_vertices < 2 || p->source < 0 || p->source >= p->n_vertices || p->sink < 0 ||
        p->sink >= p->n_vertices || p->source == p->sink)
        return ERR("ilp: bad vertices (n=%d source=%d sink=%d) at %s:%d", p->n_vertices,
                   p->source, p->sink, __FILE__, __LINE__);
    if (p->n_arcs < 0 || p->n_arcs > INT_MAX - 2 || p->n_nodes < 1 || p->budget < 1)
        return ERR("ilp: bad sizes (arcs=%d nodes=%d budget=%d) at %s:%d", p->n_arcs, p->n_nodes,
                   p->budget, __FILE__, __LINE__);
    if (p->cover_start[0] != 0)
        return ERR("ilp: cover_start[0] != 0 at %s:%d", __FILE__, __LINE__);
    for (int a = 0; a < p->n_arcs; a++) {
        if (p->tail[a] < 0 || p->tail[a] >= p->n_vertices || p->head[a] < 0 ||
            p->head[a] >= p->n_vertices || p->tail[a] == p->head[a])
            return ERR("ilp: arc %d has bad ends %d -> %d at %s:%d", a, p->tail[a], p->head[a],
                       __FILE__, __LINE__);
        if (p->replicas[a] < 1 || !(p->time_ms[a] >= 0) || !isfinite(p->time_ms[a]))
            return ERR("ilp: arc %d has bad replicas %d or time %g at %s:%d", a, p->replicas[a],
                       p->time_ms[a], __FILE__, __LINE__);
        if (p->cover_start[a + 1] <= p->cover_start[a])
            return ERR("ilp: arc %d covers no node at %s:%d", a, __FILE__, __LINE__);
        for (long k = p->cover_start[a]; k < p->cover_start[a + 1]; k++)
            if (p->cover[k] < 0 || p->cover[k] >= p->n_nodes ||
                (k > p->cover_start[a] && p->cover[k] <= p->cover[k - 1]))
                return ERR("ilp: arc %d covers bad node %d at %s:%d", a, p->cover[k], __FILE__,
                           __LINE__);
    }
    return 0;
}

/* Follows the chosen arcs from the source; fills res->chosen. */
static int extract_path(pd_ilp_result *res, const pd_ilp_paths *p, const unsigned char *on,
                        char *err, int err_size) {
    res->chosen = malloc(((size_t)p->n_arcs + 1) * sizeof(int));
    if (!res->chosen) return ERR("ilp: out of memory at %s:%d", __FILE__, __LINE__);
    res->n_chosen = 0;
    res->objective = 0;
    int v = p->source, used = 0;
    while (v != p->sink) {
        int next = -1;
        for (int a = 0; a < p->n_arcs; a++)
            if (on[a] && p->tail[a] == v) { next = a; break; }
        if (next < 0 || res->n_chosen >= p->n_arcs)
            return ERR("ilp: the solution is not a path (stuck at vertex %d) at %s:%d", v,
                       __FILE__, __LINE__);
        res->chosen[res->n_chosen++] = next;
        used += p->replicas[next];
        if (p->time_ms[next] > res->objective) res->objective = p->time_ms[next];
        v = p->head[next];
    }
    int chosen_total = 0;
    for (int a = 0; a < p->n_arcs; a++) chosen_total += on[a];
    if (chosen_total != res->n_chosen || used > p->budget || (p->exact_budget && used != p->budget))
        return ERR("ilp: the solution breaks the path or the budget (%d arcs on, %d on the path, "
                   "%d workers of %d) at %s:%d", chosen_total, res->n_chosen, used, p->budget,
                   __FILE__, __LINE__);
    return 0;
}

int pd_ilp_paths_solve(pd_ilp_result *res, const pd_ilp_paths *p, double time_limit_s,
                       char *err, int err_size) {
    memset(res, 0, sizeof *res);
    res->status = PD_ILP_INFEASIBLE;
    if (validate(p, err, err_size)) return -1;
    if (p->n_arcs == 0) return 0;

    int A = p->n_arcs, colT = A + 1;
    int V = p->n_vertices, nb = p->vertex_rows ? 2 * V : p->n_nodes; /* bottleneck rows */
    int nrows = V + 1 + nb + 1;
    long ne = 4L * A + (p->vertex_rows ? 2L * A : p->cover_start[A]) + nb + 1;
    if (ne > INT_MAX - 1) return ERR("ilp: %ld matrix entries is too many at %s:%d", ne, __FILE__, __LINE__);
    int *ia = malloc((size_t)(ne + 1) * sizeof(int));
    int *ja = malloc((size_t)(ne + 1) * sizeof(int));
    double *ar = malloc((size_t)(ne + 1) * sizeof(double));
    unsigned char *on = calloc((size_t)A + 1, 1);
    if (!ia || !ja || !ar || !on) {
        free(ia); free(ja); free(ar); free(on);
        return ERR("ilp: out of memory at %s:%d", __FILE__, __LINE__);
    }
    /* rows: 1..V flow, V+1 budget, V+2..V+1+n bottleneck, V+n+2 load. Times enter divided by
     * the largest (T is in units of it): with times of 1e-6 ms and thousands of replicas per arc,
     * GLPK's scaled tolerances otherwise let a solution one worker over the budget through. The
     * chosen path's objective is recomputed from the true times (extract_path). */
    double tmax = 0;
    for (int a = 0; a < A; a++)
        if (p->time_ms[a] > tmax) tmax = p->time_ms[a];
    double tu = tmax > 0 ? 1.0 / tmax : 1.0;
    int rowBudget = p->n_vertices + 1, rowLoad = nrows;
    long k = 0;
    for (int a = 0; a < A; a++) {
        int col = a + 1;
        double t = p->time_ms[a] * tu;
        ++k; ia[k] = p->tail[a] + 1; ja[k] = col; ar[k] = 1.0;
        ++k; ia[k] = p->head[a] + 1; ja[k] = col; ar[k] = -1.0;
        ++k; ia[k] = rowBudget; ja[k] = col; ar[k] = p->replicas[a];
        ++k; ia[k] = rowLoad; ja[k] = col; ar[k] = -p->replicas[a] * t;
        if (p->vertex_rows) {
            ++k; ia[k] = rowBudget + 1 + p->tail[a]; ja[k] = col; ar[k] = -t;
            ++k; ia[k] = rowBudget + 1 + V + p->head[a]; ja[k] = col; ar[k] = -t;
        } else {
            for (long c = p->cover_start[a]; c < p->cover_start[a + 1]; c++) {
                ++k; ia[k] = rowBudget + 1 + p->cover[c]; ja[k] = col; ar[k] = -t;
            }
        }
    }
    for (int l = 0; l < nb; l++) {
        ++k; ia[k] = rowBudget + 1 + l; ja[k] = colT; ar[k] = 1.0;
    }
    ++k; ia[k] = rowLoad; ja[k] = colT; ar[k] = p->budget;
    int rc_setup = 0;
    for (long e = 1; e <= k; e++)
        if (ia[e] < 1 || ia[e] > nrows || ja[e] < 1 || ja[e] > colT) { rc_setup = 1; break; }
    if (k != ne || rc_setup || glp_check_dup(nrows, colT, (int)k, ia, ja) != 0) {
        free(ia); free(ja); free(ar); free(on);
        return ERR("ilp: matrix indices out of range or duplicated at %s:%d", __FILE__, __LINE__);
    }

    int term = glp_term_out(GLP_OFF);
    glp_prob *lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MIN);
    glp_add_rows(lp, nrows);
    glp_add_cols(lp, colT);
    for (int v = 0; v < p->n_vertices; v++) {
        double b = v == p->source ? 1.0 : v == p->sink ? -1.0 : 0.0;
        glp_set_row_bnds(lp, v + 1, GLP_FX, b, b);
    }
    if (p->exact_budget) glp_set_row_bnds(lp, rowBudget, GLP_FX, p->budget, p->budget);
    else glp_set_row_bnds(lp, rowBudget, GLP_UP, 0.0, p->budget);
    for (int l = 0; l < nb; l++) glp_set_row_bnds(lp, rowBudget + 1 + l, GLP_LO, 0.0, 0.0);
    glp_set_row_bnds(lp, rowLoad, GLP_LO, 0.0, 0.0);
    for (int a = 0; a < A; a++) glp_set_col_kind(lp, a + 1, GLP_BV);
    glp_set_col_bnds(lp, colT, GLP_LO, 0.0, 0.0);
    glp_set_obj_coef(lp, colT, 1.0);
    glp_load_matrix(lp, (int)k, ia, ja, ar);
    free(ia); free(ja); free(ar);

    /* The root relaxation first, with glp_simplex: unlike glp_intopt's own root solve it
     * honours the time limit, and a relaxation without a solution ends the work early. Then
     * glp_intopt starts from that basis (so its presolver stays off: with it off and no basis it
     * would fail with GLP_EROOT). */
    double t_start = glp_time();
    double ms = time_limit_s * 1000.0;
    glp_smcp sp;
    glp_init_smcp(&sp);
    sp.msg_lev = GLP_MSG_OFF;
    /* measured: the layered graph's relaxation solves far faster after the LP presolver, the
     * plain one faster without it, by the primal simplex */
    sp.meth = p->lp_presolve ? GLP_DUALP : GLP_PRIMAL;
    sp.presolve = p->lp_presolve ? GLP_ON : GLP_OFF;
    sp.tm_lim = ms >= INT_MAX ? INT_MAX : ms < 1 ? 1 : (int)ms;
    glp_scale_prob(lp, GLP_SF_AUTO);
    int rc = glp_simplex(lp, &sp), st = GLP_UNDEF, ret = 0;
    if (rc == GLP_EFAIL || rc == GLP_ESING || rc == GLP_ECOND) {
        /* numerical trouble on a large relaxation: the other method, through the presolver */
        sp.meth = sp.meth == GLP_PRIMAL ? GLP_DUALP : GLP_PRIMAL;
        sp.presolve = GLP_ON;
        double left = ms - glp_difftime(glp_time(), t_start) * 1000.0;
        sp.tm_lim = left >= INT_MAX ? INT_MAX : left < 1 ? 1 : (int)left;
        rc = glp_simplex(lp, &sp);
    }
    if (rc == GLP_ETMLIM) {
        res->status = PD_ILP_TIMEOUT;
        goto done;
    }
    if (rc == GLP_ENOPFS ||
        (rc == 0 && (glp_get_status(lp) == GLP_NOFEAS || glp_get_prim_stat(lp) == GLP_NOFEAS))) {
        res->status = PD_ILP_INFEASIBLE;
        goto done;
    }
    if (rc != 0 || glp_get_status(lp) != GLP_OPT) {
        ret = ERR("ilp: glp_simplex returned %d (status %d) at %s:%d", rc, glp_get_status(lp),
                  __FILE__, __LINE__);
        goto done;
    }
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_OFF;
    ms -= glp_difftime(glp_time(), t_start) * 1000.0;
    parm.tm_lim = ms >= INT_MAX ? INT_MAX : ms < 1 ? 1 : (int)ms;
    cb_info ci = {0};
    parm.cb_func = callback;
    parm.cb_info = &ci;
    rc = glp_intopt(lp, &parm);
    if (rc == GLP_EROOT) { /* no usable basis after all: let glp_intopt presolve and solve it */
        parm.presolve = GLP_ON;
        rc = glp_intopt(lp, &parm);
    }
    st = glp_mip_status(lp);
    if ((rc == 0 || rc == GLP_ETMLIM || rc == GLP_EMIPGAP) && (st == GLP_OPT || st == GLP_FEAS)) {
        for (int a = 0; a < A; a++) on[a] = glp_mip_col_val(lp, a + 1) > 0.5;
        if (extract_path(res, p, on, err, err_size)) ret = -1;
        else if (rc == 0 && st == GLP_OPT) { res->status = PD_ILP_OPTIMAL; res->gap = 0; }
        else { res->status = PD_ILP_GAP; res->gap = ci.gap; }
    } else if (rc == GLP_ENOPFS || st == GLP_NOFEAS || (rc == 0 && st != GLP_OPT)) {
        res->status = PD_ILP_INFEASIBLE;
    } else if (rc == GLP_ETMLIM || rc == GLP_EMIPGAP) {
        res->status = PD_ILP_TIMEOUT;
    } else {
        ret = ERR("ilp: glp_intopt returned %d (status %d) at %s:%d", rc, st, __FILE__, __LINE__);
    }
done:
    glp_delete_prob(lp);
    glp_term_out(term);
    free(on);
    return ret;
}
