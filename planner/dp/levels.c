/* levels.c: the DP's context (dpctx: the ideals, their subsets, the inner levels' tables) and
 * the solve of one level: level_solve for a range on at most or exactly N units with the tie rule
 * (pick_units), and solve_top for the top level with its bound rounds (solve_rounds). */
#include "dp_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The tie rule: among v[lo..hi] (stride apart), the fewest units whose value is within 1e-12
 * (relative) of the least. -1 when every one is infinite. */
int dp_pick_units(const double *v, size_t stride, int lo, int hi) {
    double best = INFINITY;
    for (int m = lo; m <= hi; m++)
        if (v[(size_t)m * stride] < best) best = v[(size_t)m * stride];
    if (!(best < INFINITY)) return -1;
    for (int m = lo; m <= hi; m++)
        if (v[(size_t)m * stride] <= best + fabs(best) * 1e-12) return m;
    return -1;
}

/* Solves level l from start s for the range s..e and leaves t filled by the run the plan comes
 * from, with x->lv[l].workers = *M, the units that run used (the caller restores it); *m = the
 * plan's units (its entry is fin[e][*m]). Exactly N units unless x->atmost; then the fewest units
 * within 1e-12 of the best: one run on N units when the units after a stage change nothing (no
 * memory check at this level: entry m is the best on exactly m units), else one run per M <= N
 * (the memory of a stage depends on the units after it, counted within the run). Returns the
 * value, INFINITY when nothing fits. */
double dp_level_solve(dptable *t, dpctx *x, int l, long s, long e, int *M, int *m) {
    int N = x->c->count[l];
    x->lv[l].workers = N;
    *M = N;
    if (!x->atmost || !after_matters(x, l)) {
        dp_level_dp(t, x, l, s);
        const double *row = t->fin + (size_t)e * (size_t)(N + 1);
        *m = dp_pick_units(row, 1, x->atmost ? 1 : N, N);
        return *m < 0 ? INFINITY : row[*m];
    }
    double *v = malloc(sizeof(double) * ((size_t)N + 1));
    if (!v) return NAN;
    int top = N;
    for (int k = 1; k <= top; k++) {
        x->lv[l].workers = k;
        dp_level_dp(t, x, l, s);
        v[k] = t->fin[(size_t)e * (size_t)(k + 1) + (size_t)k];
    }
    v[0] = INFINITY;
    *m = dp_pick_units(v, 1, 1, top);
    double best = *m < 0 ? INFINITY : v[*m];
    free(v);
    if (*m < 0) return INFINITY;
    *M = *m;
    x->lv[l].workers = *m;
    if (*m != top) dp_level_dp(t, x, l, s);
    return best;
}

static const double *sort_compute; /* for by_compute (planning is single-threaded) */
static int by_compute(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_compute[i] != sort_compute[j]) return sort_compute[i] < sort_compute[j] ? -1 : 1;
    return (i > j) - (i < j);
}

static int build_subsets(dpctx *x) {
    if (x->id.chain) return 0;
    long S = x->S;
    x->sub_off = calloc((size_t)S + 1, sizeof(long));
    if (!x->sub_off) return -1;
    long total = 0, cap = 1024;
    x->sub = malloc((size_t)cap * sizeof(int));
    if (!x->sub) return -1;
    for (long J = 0; J < S; J++) {
        x->sub_off[J] = total;
        for (long I = 0; I < J; I++) {
            if (x->id.size[I] >= x->id.size[J] || !pd_ideal_subset(&x->id, I, J)) continue;
            if (total == cap) {
                cap *= 2;
                int *ns = realloc(x->sub, (size_t)cap * sizeof(int));
                if (!ns) return -1;
                x->sub = ns;
            }
            x->sub[total++] = (int)I;
        }
    }
    x->sub_off[S] = total;
    sort_compute = x->id.compute;
    for (long J = 0; J < S; J++)
        qsort(x->sub + x->sub_off[J], (size_t)(x->sub_off[J + 1] - x->sub_off[J]), sizeof(int),
              by_compute);
    return 0;
}

void dp_ctx_free(dpctx *x) {
    pd_ideals_free(&x->id);
    free(x->sub_off);
    free(x->sub);
    for (int l = 0; l < PD_MAX_LEVELS; l++) free(x->inner[l]);
    free(x->inrange);
    free(x->cidx);
    dp_memo_free(x->memo);
    memset(x, 0, sizeof *x);
}


/* Enumerates ideals and solves every inner level for all ranges. Returns 0, -1 on OOM,
 * -2 when the hierarchy's tables would be too large. */
int dp_ctx_init(dpctx *x, const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm,
                int straight, long max_states, const unsigned char *forbid, int method,
                int threads) {
    memset(x, 0, sizeof *x);
    x->method = method;
    x->forbid = -1;
    x->bound = INFINITY;
    x->g = g;
    x->c = c;
    x->cm = cm;
    x->straight = straight;
    x->atmost = cm == PD_COST_DEFAULT && !straight;
    if (cm == PD_COST_DEFAULT && c->n_levels > 1) { /* the flattened hierarchy (dpctx.hc) */
        x->hc = c;
        x->flatc = *c;
        x->flatc.n_levels = 1;
        x->flatc.count[0] = pd_cluster_workers(c);
        x->c = c = &x->flatc;
    }
    x->L = c->n_levels;
    for (int l = 0; l < x->L; l++) {
        pd_cost_level_of(&x->lv[l], c, g, l);
        x->wbelow[l] = l ? x->wbelow[l - 1] * c->count[l - 1] : 1;
    }
    long cap = max_states > 0 ? max_states : DEFAULT_MAX_STATES;
    if (pd_ideals_enumerate(&x->id, g, cap)) return -1;
    /* over the cap on one level (a flattened hierarchy too): the principal ideals and the ideals
     * of whole chain segments, as many as fit (the compat hierarchy's S x S inner tables stay
     * at the principal ideals') */
    if (!x->id.complete && x->L == 1) {
        /* the DP's work grows with the workers: fewer added ideals on more of them (about
         * 2.3 s for Inception-v3's profile on 16 workers and 64, 2.5 s on 1,024) */
        int units = c->count[0];
        long extra = units > 16 ? RELAX_STATES * 16 / units : RELAX_STATES;
        if (extra < 400) extra = 400;
        if (extra > cap - x->id.count) extra = cap - x->id.count;
        if (dp_widen_family(&x->id, g, c->bandwidth[0], extra)) return -1;
    }
    x->S = x->id.count;
    if (forbid)
        for (long k = 0; k < x->S && x->forbid < 0; k++) {
            int eq = 1;
            for (int v = 0; v < g->n && eq; v++)
                if (pd_ideal_has(&x->id, k, v) != (forbid[v] != 0)) eq = 0;
            if (eq) x->forbid = k;
        }
    x->inrange = malloc((size_t)x->S);
    if (!x->inrange || build_subsets(x) || dp_cidx_build(x)) return -1;
    int err = 0;
    x->memo = x->hc ? NULL : dp_memo_new(x, &err); /* a stage's price depends on its ranks */
    if (err) return -1;
    for (int l = 0; l + 1 < x->L; l++) {
        size_t n = (size_t)x->S * (size_t)x->S;
        x->inner[l] = malloc(n * sizeof(double));
        if (!x->inner[l]) return -1;
        for (size_t i = 0; i < n; i++) x->inner[l][i] = INFINITY;
        if (dp_inner_level(x, l, threads)) return -1;
    }
    return 0;
}


/* Solves the top level; returns the bottleneck (INFINITY when nothing fits). Exact, and fast
 * where the plan is well balanced: the level is solved with a bound U, starting at the lower
 * bound total compute / workers and growing by 1/8 each time (at most to the bottleneck of a
 * plan that a failed round found, which makes the next round the last); with U, a state (J, m) is skipped
 * when the compute after J cannot fit on the N - m units left within U, and splits whose stage or
 * prefix compute exceeds U times their workers are skipped too. Every state and split of a plan
 * with bottleneck <= U survives, so as soon as the bounded solve finds a plan <= U, that plan is
 * optimal; otherwise U grows, and after enough rounds the unbounded DP runs. x->bound keeps the U
 * that succeeded, so reconstruction re-solves the same table. */
static double solve_rounds(dpctx *x, dptable *t, int lo, int *m_out) {
    int l = x->L - 1, N = x->lv[l].workers;
    const double *row = t->fin + (size_t)(x->S - 1) * (size_t)(N + 1);
    double total = x->id.compute[x->S - 1];
    double U = total / (x->wbelow[l] * N);
    for (int round = 0; round < 40 && U > 0 && isfinite(U); round++) {
        x->bound = U;
        dp_level_dp(t, x, l, 0);
        int m = dp_pick_units(row, 1, lo, N);
        double v = m < 0 ? INFINITY : row[m];
        /* with several unit counts, the tie rule needs every entry within 1e-12 of v exact */
        if (v <= U && (lo == N || v + fabs(v) * 1e-12 <= U)) {
            *m_out = m;
            return v;
        }
        /* v, when finite, is a real plan's bottleneck: the optimum is at most v, so a round
         * with U = v succeeds; grow U by 1/8, but not beyond v */
        U = v < U * 1.125 ? (lo == N ? v : v + fabs(v) * 2e-12) : U * 1.125;
    }
    x->bound = INFINITY;
    dp_level_dp(t, x, l, 0);
    *m_out = dp_pick_units(row, 1, lo, N);
    return *m_out < 0 ? INFINITY : row[*m_out];
}

/* The top level: exactly N units, or at most N (x->atmost; the tie rule of dp_pick_units), one run
 * per unit count when a stage's memory depends on the units after it. Sets x->top_M (units of the
 * run), x->top_m (units of the plan) and x->bound (the bound of the run), which reconstruction
 * re-solves. */
double dp_solve_top(dpctx *x, dptable *t) {
    int l = x->L - 1, N = x->c->count[l];
    if (dp_table_alloc(t, x->S, N, x->cm == PD_COST_PIPEDREAM)) return NAN;
    x->lv[l].workers = N;
    x->top_M = N;
    if (!x->atmost || !after_matters(x, l)) {
        double v = solve_rounds(x, t, x->atmost ? 1 : N, &x->top_m);
        return v;
    }
    double *v = malloc(sizeof(double) * 2 * ((size_t)N + 1)), *bnd = v ? v + N + 1 : NULL;
    if (!v) return NAN;
    v[0] = INFINITY;
    for (int M = 1; M <= N; M++) {
        int m;
        x->lv[l].workers = M;
        v[M] = solve_rounds(x, t, M, &m);
        bnd[M] = x->bound;
    }
    x->lv[l].workers = N;
    int M = dp_pick_units(v, 1, 1, N);
    double best = M < 0 ? INFINITY : v[M];
    if (M > 0) {
        x->top_M = x->top_m = M;
        x->bound = bnd[M];
    }
    free(v);
    return best;
}
