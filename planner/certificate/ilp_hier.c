/* ilp_hier.c: the integer program for two levels of workers (the default cost model, no memory
 * limit, not --straight), in GLPK's C API. It shares no code with the DP's recurrence: only the
 * stage prices of planner/cost.h and the integer program's own ideals (ilp_ideals.c).
 *
 * The problem, as the DP defines it (docs/planner.md, "Hierarchy"; docs/certificate.md):
 *   - a plan is a path of outer stages J \ I (I subset J ideals) from the empty set to the full
 *     one, stage a on r1(a) outer units, at most N1 units in all;
 *   - each outer stage runs an inner pipeline on at most N0 inner units of each of its outer
 *     units: a path of inner stages J' \ I' from I to J, inner stage b on r0(b) units; an inner
 *     stage's time t0(b) is its price at the inner level with its input transfer unless I' = I
 *     and its output transfer unless J' = J;
 *   - the outer stage's time is its price at the outer level with the inner pipeline's
 *     bottleneck max_b t0(b) as its compute: max((max_b t0(b) + ring)/r1, in/r1, out/r1), i.e.
 *     the largest of, per inner stage, its price with compute t0(b) and no transfers, and the
 *     price of the transfers alone (cost.c's time is a max of monotone terms, so this is the same
 *     number in floating point);
 *   - the objective is the largest outer stage time.
 *
 * Variables: x[a] binary per outer arc (I, J, r1) whose transfers alone fit the cap; y[b] binary
 * per inner arc (a, I', J', r0), one copy of the inner arcs per outer arc (its time depends on
 * r1 and on the outer stage's parameters); T >= 0. Rows:
 *   outer flow per ideal: sum x(out) - sum x(in) = 1 at the empty set, -1 at the full one, 0 else;
 *   outer budget: sum r1 x <= N1;
 *   inner flow per outer arc a and ideal v between I and J: sum y(out of v) - sum y(into v)
 *     - [v = I] x[a] + [v = J] x[a] = 0 (the inner arcs of a chosen a form one path I -> J, those
 *     of an unchosen a none);
 *   inner budget per outer arc: sum r0 y - N0 x[a] <= 0;
 *   bottleneck: per outer arc a and ideal v, T - sum time(b) y[b] over a's inner arcs leaving v
 *     >= 0 (at most one of them is on a's inner path), and per ideal v, T - sum time(a) x[a] over
 *     the outer arcs leaving v >= 0: every chosen stage leaves one ideal, so T is at least every
 *     chosen time, and the sums make the relaxation tighter than one row per arc;
 *   load: N0 N1 T - sum r0 r1 time(b) y[b] >= 0 (every chosen inner stage's time is at most T
 *     and their workers r0 r1 add up to at most N0 N1: the relaxation's load-balancing bound).
 * Objective: minimise T. Arcs slower than the cap are left out, and so are inner arcs that no
 * inner path of their outer arc can use, and outer arcs without an inner path. */
#include "ilp_internal.h"

#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"

#define ERR(...) (snprintf(err, (size_t)err_size, __VA_ARGS__), -1)

typedef struct {
    int n_out, cap_out;
    int *o_from, *o_to, *o_r; /* ideals, replicas */
    double *o_time;           /* the transfers alone */
    int *o_first_in, *o_n_in; /* its inner arcs: a contiguous run */
    int n_in, cap_in;
    int *i_out, *i_from, *i_to, *i_r;
    double *i_time; /* as a part of the outer stage: (t0 + ring) / r1 */
    int oom;
} hier_arcs;

static void arcs_free(hier_arcs *h) {
    free(h->o_from); free(h->o_to); free(h->o_r); free(h->o_time); free(h->o_first_in);
    free(h->o_n_in); free(h->i_out); free(h->i_from); free(h->i_to); free(h->i_r);
    free(h->i_time);
    memset(h, 0, sizeof *h);
}

#define GROW(arr, cap) \
    do { void *t_ = realloc((arr), (size_t)(cap) * sizeof *(arr)); if (!t_) h->oom = 1; else (arr) = t_; } while (0)

static void push_out(hier_arcs *h, int from, int to, int r, double t) {
    if (h->n_out == h->cap_out) {
        int cap = h->cap_out ? 2 * h->cap_out : 256;
        GROW(h->o_from, cap); GROW(h->o_to, cap); GROW(h->o_r, cap); GROW(h->o_time, cap);
        GROW(h->o_first_in, cap); GROW(h->o_n_in, cap);
        if (h->oom) return;
        h->cap_out = cap;
    }
    int a = h->n_out++;
    h->o_from[a] = from, h->o_to[a] = to, h->o_r[a] = r, h->o_time[a] = t;
    h->o_first_in[a] = h->n_in, h->o_n_in[a] = 0;
}

static void push_in(hier_arcs *h, int out, int from, int to, int r, double t) {
    if (h->n_in == h->cap_in) {
        int cap = h->cap_in ? 2 * h->cap_in : 1024;
        GROW(h->i_out, cap); GROW(h->i_from, cap); GROW(h->i_to, cap); GROW(h->i_r, cap);
        GROW(h->i_time, cap);
        if (h->oom) return;
        h->cap_in = cap;
    }
    int b = h->n_in++;
    h->i_out[b] = out, h->i_from[b] = from, h->i_to[b] = to, h->i_r[b] = r, h->i_time[b] = t;
    h->o_n_in[out]++;
}

static int fits(double t, double cap, int strict) { return strict ? t < cap : t <= cap; }

/* Keeps the inner arcs of outer arc a that lie on a path from its I to its J (one sweep each
 * way: inner arcs are generated by increasing tail ideal, and ideals are sorted by size), and
 * compacts them to the front of its run; returns 1 when a path remains. */
static int prune_inner(hier_arcs *h, int a, int count, unsigned char *fw, unsigned char *bw) {
    int s = h->o_first_in[a], n = h->o_n_in[a];
    memset(fw, 0, (size_t)count);
    memset(bw, 0, (size_t)count);
    fw[h->o_from[a]] = 1;
    bw[h->o_to[a]] = 1;
    for (int b = s; b < s + n; b++)
        if (fw[h->i_from[b]]) fw[h->i_to[b]] = 1;
    for (int b = s + n - 1; b >= s; b--)
        if (bw[h->i_to[b]]) bw[h->i_from[b]] = 1;
    if (!fw[h->o_to[a]]) {
        h->o_n_in[a] = 0;
        return 0;
    }
    int k = s;
    for (int b = s; b < s + n; b++) {
        if (!fw[h->i_from[b]] || !bw[h->i_to[b]]) continue;
        h->i_out[k] = a, h->i_from[k] = h->i_from[b], h->i_to[k] = h->i_to[b];
        h->i_r[k] = h->i_r[b], h->i_time[k] = h->i_time[b];
        k++;
    }
    h->o_n_in[a] = k - s;
    return 1;
}

/* Every outer and inner arc no slower than cap (strictly below with strict). Returns 0, 1 when
 * larger than max_arcs inner arcs, -1 when out of memory. */
static int build(hier_arcs *h, const pd_ilp_hier_problem *q, double cap, int strict,
                 long max_arcs) {
    memset(h, 0, sizeof *h);
    int count = q->id->count, full = count - 1, N0 = q->lv[0].workers, N1 = q->lv[1].workers;
    unsigned char *fw = malloc((size_t)count), *bw = malloc((size_t)count);
    double *comp = malloc(sizeof(double) * (size_t)count); /* compute of each ideal */
    if (!fw || !bw || !comp) {
        free(fw); free(bw); free(comp);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        pd_stage_sums z;
        pd_ilp_stage_sums(&z, q->g, q->id, 0, i, NULL);
        comp[i] = i ? z.compute_ms : 0;
    }
    /* the unit-count bounds below subtract times (cap - ring / r1): generous against rounding,
     * since a bound that cuts a real plan would make the certificate wrong */
    const double slack = 1 + 1e-6;
    int rc = 0;
    for (int i = 0; i < count && !rc; i++)
        for (int j = i + 1; j < count && !rc; j++) {
            if (!pd_ilp_ideal_below(q->id, i, j)) continue;
            pd_stage_sums outer;
            pd_ilp_stage_sums(&outer, q->g, q->id, i, j, NULL);
            for (int r1 = 1; r1 <= N1 && !rc; r1++) {
                /* the outer stage's transfers alone (compute and parameters apart) */
                pd_stage_sums tr = {.in_bytes = q->cut[i], .out_bytes = q->cut[j],
                                    .first = i == 0, .last = j == full};
                pd_stage_cost c;
                pd_stage_cost_eval(&c, &tr, &q->lv[1], q->cm, r1, 0);
                if (!fits(c.time_ms, cap, strict)) continue;
                /* the inner pipeline's bottleneck is at least the range's compute over the N0
                 * inner units (every inner stage takes at least its compute over its units) */
                pd_stage_sums lb = {.compute_ms = outer.compute_ms / N0,
                                    .param_bytes = outer.param_bytes, .first = 1, .last = 1};
                pd_stage_cost cl;
                pd_stage_cost_eval(&cl, &lb, &q->lv[1], q->cm, r1, 0);
                if (!fits(cl.time_ms * (1 - 1e-12), cap, strict)) continue;
                /* and the outer stages before I and after J need at least their compute over
                 * N0 cap units (each at most cap, at least its compute over N0 r1) */
                if (isfinite(cap) && r1 + (comp[i] + comp[full] - comp[j]) / (N0 * cap) > N1 * slack)
                    continue;
                /* an inner stage of this outer stage must take at most r1 (cap - ring / r1) */
                pd_stage_sums ro = {.param_bytes = outer.param_bytes, .first = 1, .last = 1};
                pd_stage_cost cr;
                pd_stage_cost_eval(&cr, &ro, &q->lv[1], q->cm, r1, 0);
                /* (the slack on the time too: cap - ring / r1 can cancel to a few ulps) */
                double t_in = r1 * (cap * (1 + 1e-9) - cr.time_ms);
                int a = h->n_out;
                push_out(h, i, j, r1, c.time_ms);
                for (int i2 = i; i2 < count && !h->oom; i2++) {
                    if (i2 != i && !(pd_ilp_ideal_below(q->id, i, i2) &&
                                     pd_ilp_ideal_below(q->id, i2, j)))
                        continue;
                    for (int j2 = i2 + 1; j2 <= j && !h->oom; j2++) {
                        if (!pd_ilp_ideal_below(q->id, i2, j2)) continue;
                        if (j2 != j && !pd_ilp_ideal_below(q->id, j2, j)) continue;
                        /* the inner stages before I' and after J' need at least their compute
                         * over t_in units, beside this one's */
                        double rest = comp[i2] - comp[i] + comp[j] - comp[j2];
                        if (isfinite(t_in) && t_in > 0 && 1 + rest / t_in > N0 * slack) continue;
                        pd_stage_sums in;
                        pd_ilp_stage_sums(&in, q->g, q->id, i2, j2, NULL);
                        in.first = i2 == i;
                        in.last = j2 == j;
                        in.in_bytes = in.first ? 0 : q->cut[i2];
                        in.out_bytes = in.last ? 0 : q->cut[j2];
                        double fewer = INFINITY; /* more inner units, no faster: never better */
                        for (int r0 = 1; r0 <= N0; r0++) {
                            if (isfinite(t_in) && t_in > 0 && r0 + rest / t_in > N0 * slack) break;
                            pd_stage_cost ci;
                            pd_stage_cost_eval(&ci, &in, &q->lv[0], q->cm, r0, 0);
                            if (!(ci.time_ms < fewer)) continue;
                            fewer = ci.time_ms;
                            pd_stage_sums part = {.compute_ms = ci.time_ms,
                                                  .param_bytes = outer.param_bytes,
                                                  .first = 1, .last = 1};
                            pd_stage_cost co;
                            pd_stage_cost_eval(&co, &part, &q->lv[1], q->cm, r1, 0);
                            if (fits(co.time_ms, cap, strict))
                                push_in(h, a, i2, j2, r0, co.time_ms);
                        }
                    }
                }
                if (h->oom) rc = -1;
                else if (!prune_inner(h, a, count, fw, bw)) {
                    h->n_in = h->o_first_in[a]; /* no inner path: drop the outer arc */
                    h->n_out--;
                } else {
                    h->n_in = h->o_first_in[a] + h->o_n_in[a];
                    if (h->n_in > max_arcs) rc = 1;
                }
            }
        }
    free(fw);
    free(bw);
    free(comp);
    return rc;
}

/* Follows the chosen outer arcs from the empty set, and within each its chosen inner arcs. */
static int extract(pd_ilp_hier_result *res, const hier_arcs *h, const unsigned char *x,
                   const unsigned char *y, int count, int N1, char *err, int err_size) {
    res->from = malloc(sizeof(int) * ((size_t)h->n_in + 1));
    res->to = malloc(sizeof(int) * ((size_t)h->n_in + 1));
    res->replicas = malloc(sizeof(int) * ((size_t)h->n_in + 1));
    res->outer = malloc(sizeof(int) * ((size_t)h->n_in + 1));
    res->time_ms = malloc(sizeof(double) * ((size_t)h->n_in + 1));
    if (!res->from || !res->to || !res->replicas || !res->outer || !res->time_ms)
        return ERR("ilp: out of memory at %s:%d", __FILE__, __LINE__);
    res->n_stages = 0;
    res->objective = 0;
    int v = 0, used = 0, n_outer = 0;
    while (v != count - 1) {
        int a = -1;
        for (int k = 0; k < h->n_out && a < 0; k++)
            if (x[k] && h->o_from[k] == v) a = k;
        if (a < 0 || n_outer++ > count)
            return ERR("ilp: the outer stages are not a path (stuck at ideal %d) at %s:%d", v,
                       __FILE__, __LINE__);
        used += h->o_r[a];
        if (h->o_time[a] > res->objective) res->objective = h->o_time[a];
        int u = h->o_from[a], steps = 0;
        while (u != h->o_to[a]) {
            int b = -1;
            for (int k = h->o_first_in[a]; k < h->o_first_in[a] + h->o_n_in[a] && b < 0; k++)
                if (y[k] && h->i_from[k] == u) b = k;
            if (b < 0 || steps++ > count || res->n_stages >= h->n_in)
                return ERR("ilp: the inner stages of outer stage %d are not a path (stuck at "
                           "ideal %d) at %s:%d", a, u, __FILE__, __LINE__);
            int s = res->n_stages++;
            res->from[s] = h->i_from[b];
            res->to[s] = h->i_to[b];
            res->replicas[s] = h->i_r[b] * h->o_r[a];
            res->outer[s] = n_outer - 1;
            res->time_ms[s] = h->i_time[b] > h->o_time[a] ? h->i_time[b] : h->o_time[a];
            if (h->i_time[b] > res->objective) res->objective = h->i_time[b];
            u = h->i_to[b];
        }
        v = h->o_to[a];
    }
    if (used > N1)
        return ERR("ilp: %d outer units chosen of %d at %s:%d", used, N1, __FILE__, __LINE__);
    return 0;
}

void pd_ilp_hier_result_free(pd_ilp_hier_result *r) {
    free(r->from); free(r->to); free(r->replicas); free(r->outer); free(r->time_ms);
    memset(r, 0, sizeof *r);
}

int pd_ilp_hier_solve(pd_ilp_hier_result *res, const pd_ilp_hier_problem *q, double cap,
                      int strict, double time_limit_s, long max_arcs, int *n_arcs, char *err,
                      int err_size) {
    memset(res, 0, sizeof *res);
    res->status = PD_ILP_INFEASIBLE;
    hier_arcs h;
    int rc = build(&h, q, cap, strict, max_arcs);
    if (n_arcs) *n_arcs = h.n_in;
    if (rc) {
        arcs_free(&h);
        if (rc < 0) return ERR("ilp: out of memory building the two-level program at %s:%d",
                               __FILE__, __LINE__);
        return 1;
    }
    int count = q->id->count, N0 = q->lv[0].workers, N1 = q->lv[1].workers;
    int O = h.n_out, I = h.n_in;
    if (O == 0) {
        arcs_free(&h);
        return 0;
    }
    /* inner flow rows: one per (outer arc, ideal its inner arcs touch); row numbers by a map */
    int *row_of = malloc(sizeof(int) * (size_t)count);
    int *mark = malloc(sizeof(int) * (size_t)count);
    if (!row_of || !mark) {
        free(row_of); free(mark); arcs_free(&h);
        return ERR("ilp: out of memory at %s:%d", __FILE__, __LINE__);
    }
    /* columns: x 1..O, y O+1..O+I, T O+I+1. rows: outer flow 1..count, budget count+1, then per
     * outer arc its inner flow rows and its inner budget, then the bottleneck rows (one per
     * inner arc, one per outer arc), then load. */
    long ne = 0;
    int nrows = count + 1;
    for (int v = 0; v < count; v++) mark[v] = -1;
    int *inner_rows = malloc(sizeof(int) * (size_t)O); /* first inner flow row of each outer arc */
    int *inner_n = malloc(sizeof(int) * (size_t)O);
    /* per outer arc 2 outer flow, budget, 2 inner flow, inner budget, bottleneck; per inner arc
     * 2 inner flow, inner budget, bottleneck, load; T in every bottleneck row and in load (set
     * once the rows are counted) */
    long total_entries = 0;
    int *ia = NULL, *ja = NULL;
    double *ar = NULL;
    unsigned char *xv = calloc((size_t)O + 1, 1), *yv = calloc((size_t)I + 1, 1);
    if (!inner_rows || !inner_n || !xv || !yv) goto oom;
    /* count the inner flow rows */
    for (int a = 0; a < O; a++) {
        inner_rows[a] = nrows + 1;
        int n = 0;
        mark[h.o_from[a]] = a, n++;
        if (mark[h.o_to[a]] != a) mark[h.o_to[a]] = a, n++;
        for (int b = h.o_first_in[a]; b < h.o_first_in[a] + h.o_n_in[a]; b++) {
            if (mark[h.i_from[b]] != a) mark[h.i_from[b]] = a, n++;
            if (mark[h.i_to[b]] != a) mark[h.i_to[b]] = a, n++;
        }
        inner_n[a] = n;
        nrows += n + 1; /* and its budget row */
    }
    /* bottleneck rows: per ideal for the outer arcs (count rows), then per (outer arc, ideal it
     * touches) for its inner arcs, at the same offsets as its inner flow rows */
    int row_bott = nrows + 1, row_bott_in = row_bott + count;
    nrows += count + (nrows - count - 1);
    int row_load = ++nrows;
    total_entries = 7L * O + 5L * I + (row_load - row_bott) + 1;
    if ((long)nrows > INT_MAX / 2 || total_entries > INT_MAX / 2) {
        free(row_of); free(mark); free(inner_rows); free(inner_n); free(xv); free(yv);
        arcs_free(&h);
        return 1;
    }
    ia = malloc(sizeof(int) * ((size_t)total_entries + 1));
    ja = malloc(sizeof(int) * ((size_t)total_entries + 1));
    ar = malloc(sizeof(double) * ((size_t)total_entries + 1));
    if (!ia || !ja || !ar) goto oom;
    int colT = O + I + 1;
    int overflow = 0; /* an entry past total_entries is never written (the count is exact) */
#define ENTRY(r, c, v) \
    (ne < total_entries ? (++ne, ia[ne] = (r), ja[ne] = (c), ar[ne] = (v)) : (overflow = 1, 0.0))
    for (int v = 0; v < count; v++) mark[v] = -1;
    for (int a = 0; a < O; a++) {
        int col = a + 1;
        ENTRY(h.o_from[a] + 1, col, 1.0); /* outer flow */
        ENTRY(h.o_to[a] + 1, col, -1.0);
        ENTRY(count + 1, col, h.o_r[a]); /* outer budget */
        /* inner flow rows of a: number the ideals it touches */
        int next = inner_rows[a];
#define ROW(v) (mark[v] == a ? row_of[v] : (mark[v] = a, row_of[v] = next++))
        int rf = ROW(h.o_from[a]), rt = ROW(h.o_to[a]);
        ENTRY(rf, col, -1.0);
        ENTRY(rt, col, 1.0);
        int budget_row = inner_rows[a] + inner_n[a];
        ENTRY(budget_row, col, -(double)N0);
        ENTRY(row_bott + h.o_from[a], col, -h.o_time[a]);
        for (int b = h.o_first_in[a]; b < h.o_first_in[a] + h.o_n_in[a]; b++) {
            int cb = O + b + 1;
            ENTRY(ROW(h.i_from[b]), cb, 1.0);
            ENTRY(ROW(h.i_to[b]), cb, -1.0);
            ENTRY(budget_row, cb, h.i_r[b]);
            /* the bottleneck row of (a, its tail): row_bott_in + (flow row - first flow row) */
            ENTRY(row_bott_in + (row_of[h.i_from[b]] - (count + 2)), cb, -h.i_time[b]);
            ENTRY(row_load, cb, -(double)h.i_r[b] * h.o_r[a] * h.i_time[b]);
        }
#undef ROW
        if (next != budget_row) {
            free(row_of); free(mark); free(inner_rows); free(inner_n); free(xv); free(yv);
            free(ia); free(ja); free(ar); arcs_free(&h);
            return ERR("ilp: inner rows miscounted (%d != %d) at %s:%d", next, budget_row,
                       __FILE__, __LINE__);
        }
    }
    for (int k = row_bott; k < row_load; k++) ENTRY(k, colT, 1.0);
    ENTRY(row_load, colT, (double)N0 * N1);
#undef ENTRY
    int bad = overflow;
    for (long e = 1; e <= ne && !bad; e++)
        if (ia[e] < 1 || ia[e] > nrows || ja[e] < 1 || ja[e] > colT) bad = 1;
    if (bad || glp_check_dup(nrows, colT, (int)ne, ia, ja) != 0) {
        free(row_of); free(mark); free(inner_rows); free(inner_n); free(xv); free(yv);
        free(ia); free(ja); free(ar); arcs_free(&h);
        return ERR("ilp: two-level matrix indices out of range or duplicated at %s:%d", __FILE__,
                   __LINE__);
    }
    int term = glp_term_out(GLP_OFF);
    glp_prob *lp = glp_create_prob();
    glp_set_obj_dir(lp, GLP_MIN);
    glp_add_rows(lp, nrows);
    glp_add_cols(lp, colT);
    for (int v = 0; v < count; v++) {
        double b = v == 0 ? 1.0 : v == count - 1 ? -1.0 : 0.0;
        glp_set_row_bnds(lp, v + 1, GLP_FX, b, b);
    }
    glp_set_row_bnds(lp, count + 1, GLP_UP, 0.0, N1);
    for (int a = 0; a < O; a++) {
        for (int k = 0; k < inner_n[a]; k++)
            glp_set_row_bnds(lp, inner_rows[a] + k, GLP_FX, 0.0, 0.0);
        glp_set_row_bnds(lp, inner_rows[a] + inner_n[a], GLP_UP, 0.0, 0.0);
    }
    for (int k = row_bott; k < row_load; k++) glp_set_row_bnds(lp, k, GLP_LO, 0.0, 0.0);
    glp_set_row_bnds(lp, row_load, GLP_LO, 0.0, 0.0);
    for (int c = 1; c < colT; c++) glp_set_col_kind(lp, c, GLP_BV);
    glp_set_col_bnds(lp, colT, GLP_LO, 0.0, 0.0);
    glp_set_obj_coef(lp, colT, 1.0);
    glp_load_matrix(lp, (int)ne, ia, ja, ar);
    free(ia); free(ja); free(ar);
    ia = ja = NULL;
    ar = NULL;

    int ret = 0;
    double ms = time_limit_s * 1000.0;
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON; /* the root relaxation inside glp_intopt */
    parm.tm_lim = ms >= INT_MAX ? INT_MAX : ms < 1 ? 1 : (int)ms;
    glp_scale_prob(lp, GLP_SF_AUTO);
    int r = glp_intopt(lp, &parm), st = glp_mip_status(lp);
    if ((r == 0 || r == GLP_ETMLIM || r == GLP_EMIPGAP) && (st == GLP_OPT || st == GLP_FEAS)) {
        for (int a = 0; a < O; a++) xv[a] = glp_mip_col_val(lp, a + 1) > 0.5;
        for (int b = 0; b < I; b++) yv[b] = glp_mip_col_val(lp, O + b + 1) > 0.5;
        if (extract(res, &h, xv, yv, count, N1, err, err_size)) ret = -1;
        else if (r == 0 && st == GLP_OPT) res->status = PD_ILP_OPTIMAL;
        else { res->status = PD_ILP_GAP; res->gap = NAN; }
    } else if (r == GLP_ENOPFS || st == GLP_NOFEAS || (r == 0 && st != GLP_OPT)) {
        res->status = PD_ILP_INFEASIBLE;
    } else if (r == GLP_ETMLIM) {
        res->status = PD_ILP_TIMEOUT;
    } else {
        ret = ERR("ilp: glp_intopt returned %d (status %d) on the two-level program at %s:%d", r,
                  st, __FILE__, __LINE__);
    }
    glp_delete_prob(lp);
    glp_term_out(term);
    free(row_of); free(mark); free(inner_rows); free(inner_n); free(xv); free(yv);
    arcs_free(&h);
    return ret;
oom:
    free(row_of); free(mark); free(inner_rows); free(inner_n); free(xv); free(yv);
    free(ia); free(ja); free(ar);
    arcs_free(&h);
    return ERR("ilp: out of memory at %s:%d", __FILE__, __LINE__);
}
