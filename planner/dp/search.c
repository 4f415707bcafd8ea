/* search.c: the parametric search on the bottleneck (fast_solve): the default model, at most N
 * workers, one level; a probe per bottleneck T, bisection between the probes. */
#include "dp_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

/* ---- the parametric search (default model, at most N workers, one level) ----
 * For a bottleneck T, need[I] = the fewest workers that run the stages after ideal I (a suffix
 * from I to the full set) with every stage time <= T and every stage within memory, and nst[I]
 * the fewest stages among those; computed from the full set down, each stage I..J taking the
 * smallest r with stage_time(I, J, r) <= T that fits with need[J] workers after it. Fewer workers
 * after a stage never hurt (its memory grows with them, its time ignores them, and the budget
 * only gains), so the suffix that minimises workers is exact. The plan is feasible when
 * need[empty] <= N. The best T is found by bisection: a feasible probe returns its plan's actual
 * bottleneck (a new upper end), an infeasible one raises the lower end; it stops when the ends
 * are within 1e-12 (relative), the lower end having been proved infeasible. */
typedef struct {
    int *need, *nst, *rep;
    long *nxt;
} probe_ws;

/* A level-0 stage's time on r replicas with `after` workers later, and whether it fits (*fits):
 * inline where times_only, else through pd_stage_cost_eval. */
static inline double level0_time(const dpctx *x, const pd_stage_sums *ss, int r, int after,
                                 int *fits) {
    if (times_only(x, 0)) {
        *fits = 1;
        return pd_stage_time_default(ss->compute_ms, ss->param_bytes, ss->in_bytes,
                                     ss->out_bytes, ss->first, ss->last, x->lv[0].bandwidth, r);
    }
    pd_stage_cost c;
    pd_stage_cost_eval(&c, ss, &x->lv[0], x->cm, r, after);
    *fits = c.fits;
    return c.time_ms;
}

/* the smallest r in [1, N] with time <= T and fits with `after` workers later; 0 when none. For
 * r >= 2 both the time ((T_c + 2(r-1)P/(rB))/r, transfers / r) and the memory (warm-up
 * ceil(after/r)) are non-increasing in r, so the set of good r >= 2 is an interval up to N. */
static int min_replicas(const dpctx *x, const pd_stage_sums *ss, double T, int after, int N) {
    int fits;
#define GOOD(r) (level0_time(x, ss, (r), after, &fits) <= T && fits)
    if (x->straight) return GOOD(1) ? 1 : 0; /* pd_plan_dp's pass without replicated stages */
    /* (T = 0: only a stage without compute can be good, from one replica on) */
    int r0 = T > 0 ? (int)fmin((double)N + 1, floor(ss->compute_ms / T))
                   : ss->compute_ms > 0 ? N + 1 : 1;
    if (r0 <= 1 && GOOD(1)) return 1;
    int lo = r0 < 2 ? 2 : r0; /* every r < r0 has compute / r > T */
    if (lo > N) return 0;
    if (GOOD(lo)) return lo;
    int step = 1, hi = lo;
    if (times_only(x, 0) && T > 0) {
        /* A guess from the closed form (cost.h), then checked: a good guess k with k - 1 bad is
         * the answer; otherwise the search below runs from the bracket the checks left. */
        double g = pd_stage_replicas_default(ss->compute_ms, ss->param_bytes, ss->in_bytes,
                                             ss->out_bytes, ss->first, ss->last,
                                             x->lv[0].bandwidth, T);
        if (g <= N) {
            int k = (int)ceil(g);
            if (k <= lo) k = lo + 1;
            if (k > N) k = N;
            if (GOOD(k)) {
                if (k == lo + 1 || !GOOD(k - 1)) return k;
                hi = k - 1;
                goto bisect;
            }
            lo = k;
            if (lo >= N) return 0;
        }
    }
    while (1) { /* gallop: lo is bad; find a good hi */
        hi = lo + step;
        if (hi >= N) {
            hi = N;
            if (!GOOD(N)) return 0;
            break;
        }
        if (GOOD(hi)) break;
        lo = hi;
        step *= 2;
    }
bisect:
    while (hi - lo > 1) { /* lo bad, hi good */
        int mid = lo + (hi - lo) / 2;
        if (GOOD(mid)) hi = mid;
        else lo = mid;
    }
#undef GOOD
    return hi;
}

/* One probe: fills ws; returns need[0] (INT_MAX when no plan). *next (when not NULL) = a value
 * above T below which nothing changes: the least time at which a stage could take fewer
 * replicas than at T, or a skipped candidate become possible (the memory of a stage does not
 * depend on T). So when the probe fails, every T' < *next fails too. */
static double stage_time_r(const dpctx *x, const pd_stage_sums *ss, int r) {
    int fits;
    return level0_time(x, ss, r, 0, &fits);
}

static int probe(probe_ws *ws, const dpctx *x, double T, double *next) {
    double nx = INFINITY;
    long S = x->S, full = S - 1;
    int N = x->c->count[0];
    const double *C = x->id.compute;
    for (long I = 0; I < S; I++) {
        ws->need[I] = INT_MAX;
        ws->nst[I] = INT_MAX;
        ws->nxt[I] = -1;
    }
    ws->need[full] = 0;
    ws->nst[full] = 0;
    for (long J = full; J >= 1; J--) {
        int nj = ws->need[J];
        if (nj == INT_MAX || J == x->forbid) continue;
        /* a plan through J uses at least nj workers after J and C(J) / T before it */
        if (T > 0 && nj + C[J] / T > N * (1 + 1e-9) + 1) {
            double room = N * (1 + 1e-9) + 1 - nj;
            if (room > 0 && C[J] / room < nx) nx = C[J] / room;
            continue;
        }
        long n = x->id.chain ? J : x->sub_off[J + 1] - x->sub_off[J];
        const int *list = x->id.chain ? NULL : x->sub + x->sub_off[J];
        for (long k = n - 1; k >= 0; k--) { /* candidates by decreasing compute */
            long I = list ? list[k] : k;
            pd_stage_sums ss;
            stage_sums(&ss, x, 0, I, J, I == 0, J == full);
            if (T > 0 && floor(ss.compute_ms / T) > N - nj) { /* and every later I */
                double t = ss.compute_ms / (N - nj + 1);
                if (t < nx) nx = t;
                break;
            }
            int r = min_replicas(x, &ss, T, nj, N - nj);
            if (next && r != 1) {
                /* fewer replicas r' < r become possible at their time (which decreases in r'
                   from 2 on), or with 1; r = 0: any r' <= N - nj. A time is at least
                   compute / r', so it is priced only when that could lower nx. */
                double c1 = ss.compute_ms;
                if (c1 < nx) {
                    double t = stage_time_r(x, &ss, 1);
                    if (t < nx) nx = t;
                }
                int rr = r > 2 ? r - 1 : N - nj;
                if (r != 2 && rr >= 2 && c1 / rr < nx) {
                    double u = stage_time_r(x, &ss, rr);
                    if (u < nx) nx = u;
                }
            }
            if (r <= 0) continue;
            int w = r + nj, st = ws->nst[J] + 1;
            if (w < ws->need[I] || (w == ws->need[I] && st < ws->nst[I])) {
                ws->need[I] = w;
                ws->nst[I] = st;
                ws->nxt[I] = J;
                ws->rep[I] = r;
            }
        }
    }
    if (next) *next = nx;
    return ws->need[0];
}

/* The plan of the last probe: its stages in order, and its actual bottleneck. */
static double probe_plan(flat_list *fl, const probe_ws *ws, const dpctx *x) {
    long full = x->S - 1;
    double worst = 0;
    for (long I = 0; I != full; I = ws->nxt[I]) {
        long J = ws->nxt[I];
        pd_stage_sums ss;
        stage_sums(&ss, x, 0, I, J, I == 0, J == full);
        pd_stage_cost c;
        pd_stage_cost_eval(&c, &ss, &x->lv[0], x->cm, ws->rep[I], ws->need[J]);
        if (c.time_ms > worst) worst = c.time_ms;
        if (fl) {
            flat_stage f = {.I = I, .J = J, .replicas = ws->rep[I], .c0 = c, .mult = 1,
                            .time_ms = c.time_ms, .in_ms = c.comm_in_ms, .out_ms = c.comm_out_ms};
            f.rl[0] = ws->rep[I];
            if (dp_flat_push(fl, &f)) return NAN;
        }
    }
    return worst;
}

/* 1 when the parametric search is used: the default model (at most N), one level; by default
 * only where it is faster than the plain DP with its bound (measured on chains of 1,000 layers
 * and Inception-like DAGs: from about 128 workers on, and wherever a memory limit makes the
 * plain DP run once per unit count). */
int dp_fast_applies(const dpctx *x) {
    if (x->hc) return dp_pos_applies(x); /* the flattened hierarchy: positional.c */
    if (!x->atmost || x->L != 1 || x->hc || x->pipelined || x->method == PD_METHOD_PLAIN)
        return 0;
    return x->method == PD_METHOD_PARAMETRIC || after_matters(x, 0) || x->c->count[0] >= 128;
}

/* The parametric search; fills fl (when not NULL) with the plan. INFINITY when nothing fits,
 * NAN when out of memory. */
double dp_fast_solve(flat_list *fl, dpctx *x) {
    if (x->hc) return dp_pos_solve(fl, x);
    long S = x->S;
    int N = x->c->count[0];
    probe_ws ws;
    ws.need = malloc(sizeof(int) * (size_t)S);
    ws.nst = malloc(sizeof(int) * (size_t)S);
    ws.rep = malloc(sizeof(int) * (size_t)S);
    ws.nxt = malloc(sizeof(long) * (size_t)S);
    double res = NAN;
    if (!ws.need || !ws.nst || !ws.rep || !ws.nxt) goto done;
    /* the upper end: any plan (no time limit), then bisect down */
    res = INFINITY;
    /* nothing is below total compute / N: every stage takes at least its compute / replicas */
    double lo = x->id.compute[S - 1] / N, hi = INFINITY, T = lo, nx;
    x->probes = 0;
    while (!(hi < INFINITY)) { /* the upper end: the first feasible of lo, 2 lo, 4 lo, ... */
        x->probes++;
        if (probe(&ws, x, T, &nx) <= N) hi = probe_plan(NULL, &ws, x);
        else if (!(T < INFINITY)) goto done; /* nothing fits at all */
        else {
            lo = nx > T ? nx : T;
            T = T > 0 && T * 2 < INFINITY && x->probes < 64 ? T * 2 : INFINITY;
            if (lo > T) T = lo;
        }
    }
    /* invariant: every T < lo is infeasible, hi is a plan's bottleneck */
    for (int last = 0; lo < hi && !last;) {
        double mid = dp_bisect_mid(lo, hi, &last);
        x->probes++;
        if (probe(&ws, x, mid, &nx) <= N) {
            double a = probe_plan(NULL, &ws, x);
            hi = a < hi ? a : hi;
            last = 0;
        } else {
            lo = nx > mid ? nx : mid;
        }
    }
    /* the tie rule: the fewest workers, then the fewest stages, within 1e-12 of the best */
    x->probes++;
    if (probe(&ws, x, hi + fabs(hi) * 1e-12, NULL) > N) goto done; /* cannot happen */
    res = probe_plan(fl, &ws, x);
done:
    free(ws.need);
    free(ws.nst);
    free(ws.rep);
    free(ws.nxt);
    return res;
}
