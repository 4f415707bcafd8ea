/* window.c: the windowed recurrence (windowed_recurrence): for each unit count m and replica
 * count r of the last stage, the window of candidate prefixes I that can still beat the entry,
 * found from the candidates sorted by compute (galloping searches; on chains a bucket table of the
 * compute axis, cidx), and the top level's bound on what may follow (suffix_ok); relax tries one
 * last stage I..J after the best prefix and keeps the better entry (in this file, beside its one
 * caller, so that the compiler can inline it into the inner loop). */
#include "dp_internal.h"

#include <math.h>
#include <stdlib.h>

/* Entry e (of J, m units) from the prefix value prev and the last stage's times to (open: it
 * sends its output on) and tf (final): each table takes the candidate when strictly better (the
 * open entry only below cap, dp_windowed_recurrence's dominance bound). */
static inline void improve(dptable *t, size_t e, double prev, double to, double tf, long I, int r,
                           double cap, int same) {
    double v = prev > to ? prev : to;
    if (v < t->open[e] && v < cap) {
        t->open[e] = v;
        t->oI[e] = (int)I;
        t->oR[e] = r;
    }
    if (!same) {
        double vf = prev > tf ? prev : tf;
        if (vf < t->fin[e]) {
            t->fin[e] = vf;
            t->fI[e] = (int)I;
            t->fR[e] = r;
        }
    }
}

/* Tries the last stage I..J on r units after the best prefix s..I, for m in [mlo, mhi]. */
static void relax(dptable *t, const dpctx *x, int l, long I, long J, int r, int mlo, int mhi,
                  int open_last, int fin_last, double cap) {
    const pd_cost_level *lv = &x->lv[l];
    int N = lv->workers, W = N + 1, same = t->fin == t->open;
    const double *oI = t->open + (size_t)I * (size_t)W;
    size_t base = (size_t)J * (size_t)W;
    /* v = max(prefix, stage) >= prefix: when no prefix is below the entries it would replace,
     * nothing can improve, and the stage need not be priced (exact) */
    int any = 0;
    for (int m = mlo; m <= mhi && !any; m++) {
        double prev = oI[m - r];
        any = (prev < t->open[base + m] && prev < cap) || (!same && prev < t->fin[base + m]);
    }
    if (!any) return;
    if (times_only(x, l)) { /* priced inline (cheaper than the memo); tf drops the output
                                transfer (the range ends at J) */
        double T = stage_T(x, l, I, J), P = x->id.params[J] - x->id.params[I], to, tf;
        if (x->hc) { /* the flattened hierarchy: the stage on the ranks [m - r, m) (mlo = mhi) */
            long a = mlo - r;
            to = pd_stage_time_at(x->hc, T, P, x->id.cut[I], x->id.cut[J], 0, open_last, a, r);
            tf = same || fin_last == open_last
                     ? to
                     : pd_stage_time_at(x->hc, T, P, x->id.cut[I], x->id.cut[J], 0, fin_last, a,
                                        r);
        } else {
            to = pd_stage_time_default(T, P, x->id.cut[I], x->id.cut[J], 0, open_last,
                                       lv->bandwidth, r);
            tf = same || fin_last == open_last
                     ? to
                     : pd_stage_time_default(T, P, x->id.cut[I], x->id.cut[J], 0, fin_last,
                                             lv->bandwidth, r);
        }
        if (!(tf < INFINITY)) return; /* tf <= to */
        for (int m = mlo; m <= mhi; m++) improve(t, base + m, oI[m - r], to, tf, I, r, cap, same);
        return;
    }
    struct stage_memo *sm = x->memo && N <= x->memo->nmax ? x->memo : NULL;
    size_t key = sm ? (size_t)I * (size_t)(sm->nmax + 1) + (size_t)r : 0;
    double to, tf, m0, slope, mcap;
    if (sm && sm->stamp[key] == sm->cur) {
        const stage_memo_entry *e = &sm->e[key];
        if (!e->ok) return;
        to = e->to;
        tf = e->tf;
        m0 = e->m0;
        slope = e->slope;
        mcap = e->cap;
    } else {
        pd_stage_sums ss;
        stage_sums(&ss, x, l, I, J, 0, open_last);
        int ok = isfinite(ss.compute_ms) != 0;
        to = tf = m0 = slope = 0;
        mcap = INFINITY;
        if (ok) {
            pd_stage_cost c0, c1;
            dp_stage_eval(&c0, x, l, &ss, r, 0, mlo - r); /* x->hc: no memo, mlo = mhi */
            m0 = c0.memory_bytes;
            slope = 0;
            if (lv->memory_bytes > 0) { /* without a limit fits_after ignores memory */
                int zb = lv->mem.schedule == PD_MEM_ZB_H1 || lv->mem.schedule == PD_MEM_ZB_H2;
                dp_stage_eval(&c1, x, l, &ss, r, r, mlo - r); /* a warm-up of 1, 4 or 5 */
                /* zb: constant up to the bound, which fits_after checks */
                slope = zb ? 0 : (c1.memory_bytes - c0.memory_bytes) / c1.warmup;
                if (lv->mem.schedule == PD_MEM_FLUSH) {
                    /* in flight min(w + 1, n): the memory stops growing */
                    dp_stage_eval(&c1, x, l, &ss, r, DP_DEEP_AFTER, mlo - r);
                    mcap = c1.memory_bytes;
                }
            }
            to = tf = c0.time_ms;
            if (!same && fin_last != open_last) tf = time_as_last(&c0);
        }
        if (sm) {
            sm->e[key] = (stage_memo_entry){to, tf, m0, slope, mcap, ok};
            sm->stamp[key] = sm->cur;
        }
        if (!ok) return;
    }
    for (int m = mlo; m <= mhi; m++) {
        double prev = oI[m - r];
        if (!(prev < INFINITY)) continue;
        if (!fits_after(lv, m0, slope, mcap, r, N - m)) continue;
        improve(t, base + m, prev, to, tf, I, r, cap, same);
    }
}


/* The candidates I of a J, sorted by compute (on a chain: 0..J-1, already sorted). */
typedef struct {
    const int *list; /* NULL on a chain: element k is ideal k */
    long n;
    const double *compute;
} cand;

static long cand_at(const cand *c, long k) { return c->list ? c->list[k] : k; }

/* first k in [lo, hi] with compute[cand k] >= v (hi + 1 if none) */
static long first_at_least(const cand *c, long lo, long hi, double v) {
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (c->compute[cand_at(c, mid)] >= v) hi = mid - 1;
        else lo = mid + 1;
    }
    return lo;
}

/* the same as first_at_least, searched outwards from a guess g (a nearby earlier answer):
 * a gallop, then a binary search; the answer does not depend on g */
static long first_near(const cand *c, long lo, long hi, double v, long g) {
    if (lo > hi) return lo;
    if (g < lo) g = lo;
    if (g > hi) g = hi;
    long step = 1;
    if (c->compute[cand_at(c, g)] >= v) { /* the answer is in [lo, g] */
        long b = g;
        while (b - step >= lo && c->compute[cand_at(c, b - step)] >= v) {
            b -= step;
            step *= 2;
        }
        long a = b - step < lo ? lo : b - step;
        return first_at_least(c, a, b, v);
    }
    long a = g; /* compute[a] < v: the answer is in (g, hi + 1] */
    while (a + step <= hi && c->compute[cand_at(c, a + step)] < v) {
        a += step;
        step *= 2;
    }
    long b = a + step > hi ? hi : a + step;
    return first_at_least(c, a + 1, b, v);
}

/* Chains: the first ideal k in [0, S-1] with compute[k] >= v (S if none), the same answer as
 * first_at_least over every ideal, found from a bucket table of the compute axis: the bucket's
 * first ideal, then a short walk (both ways, so a rounding of the bucket number cannot matter);
 * a long walk (many ideals in one bucket) ends in the binary search. */
static inline __attribute__((always_inline)) long c_first(const dpctx *x, double v) {
    const double *C = x->id.compute;
    long S = x->S;
    if (!(v > C[0])) return 0;
    if (v > C[S - 1]) return S;
    double f = (v - x->c0) * x->cinv;
    long b = f < (double)x->nb ? (long)f : x->nb - 1;
    if (b < 0) b = 0;
    long k = x->cidx[b];
    k += k < S && C[k] < v; /* usually the answer (a bucket is a fraction of a layer) */
    for (int step = 0; k > 0 && C[k - 1] >= v; step++) {
        if (step == 8) {
            cand cd = {.compute = C, .n = S};
            return first_at_least(&cd, 0, k - 1, v);
        }
        k--;
    }
    for (int step = 0; k < S && C[k] < v; step++) {
        if (step == 8) {
            cand cd = {.compute = C, .n = S};
            return first_at_least(&cd, k, S - 1, v);
        }
        k++;
    }
    return k;
}

int dp_cidx_build(dpctx *x) {
    if (!x->id.chain || x->S < 2) return 0;
    const double *C = x->id.compute;
    long S = x->S;
    x->c0 = C[0];
    x->nb = 8 * S;
    x->cw = (C[S - 1] - C[0]) / (double)x->nb;
    if (!(x->cw > 0) || !isfinite(x->cw)) return 0; /* no table: the gallops run */
    x->cinv = 1 / x->cw;
    x->cidx = malloc(sizeof(int) * (size_t)x->nb);
    if (!x->cidx) return -1;
    long k = 0;
    for (long b = 0; b < x->nb; b++) {
        double v = x->c0 + (double)b * x->cw;
        while (k < S && C[k] < v) k++;
        x->cidx[b] = (int)k;
    }
    return 0;
}

/* Every stage time is at least its level-0 compute over the workers it spans (r units of
 * wbelow[l] workers), and so is the prefix's bottleneck over its m - r units. With U = the best
 * value found so far for (J, m), only I with compute[J] - compute[I] <= U*w*r and
 * compute[I] - compute[s] <= U*w*(m-r) can improve it: a window of the candidates sorted by
 * compute, found by galloping from the previous r's window; U starts at the base case (one
 * stage on m units) and tightens as candidates are tried. Exact: nothing outside the window can
 * be strictly better. The entry keeps the first candidate reaching its value in the order
 * (r ascending, I by compute ascending): every such candidate is in its window whatever U was,
 * so the choice does not depend on the bounds. (A seed pass over the compute-balanced splits
 * used to run first; it cost three quarters of the stage pricings and is gone.) */
/* Top level, with a bound U: the units after (J, m) must carry the compute after J, so a plan
 * through (J, m) has a bottleneck of at least (C(full) - C(J)) / (w (N - m)) (every stage time is
 * at least its compute over the workers it spans). 1 when (J, m) can still lead to a plan <= U. */
int dp_suffix_ok(const dpctx *x, int l, long s, long J, int m) {
    if (!(x->bound < INFINITY) || l != x->L - 1 || s != 0) return 1;
    int N = x->lv[l].workers;
    long full = x->S - 1;
    double rest = x->id.compute[full] - x->id.compute[J];
    if (J == full) return x->atmost || m == N;
    if (m >= N) return 0;
    return rest <= x->bound * x->wbelow[l] * (N - m) * (1 + 1e-9);
}

void dp_windowed_recurrence(dptable *t, const dpctx *x, int l, long s, long J, int open_last,
                            int fin_last) {
    int N = x->lv[l].workers, W = N + 1, same = t->fin == t->open;
    const double *C = x->id.compute;
    const unsigned char *inr = x->inrange;
    cand cd = {.compute = C};
    if (x->id.chain) {
        cd.n = J;
    } else {
        cd.list = x->sub + x->sub_off[J];
        cd.n = x->sub_off[J + 1] - x->sub_off[J];
    }
    double w = x->wbelow[l], slack = 1 + 1e-9;
    size_t base = (size_t)J * (size_t)W;
    int topb = l == x->L - 1 && s == 0 && x->bound < INFINITY;
    /* At most N units with no memory check at this level: only the best over every unit count
     * matters (dp_pick_units), and a prefix on m units is never better than one on fewer units with
     * a value as low (the stage after it costs the same). So an entry that does not beat every
     * entry with fewer units (cap: the least of them) is dropped (INFINITY), and only candidates
     * below cap are tried: the window shrinks to cap. The least value over m' <= m of each J is
     * unchanged, and so is every kept entry and its choice (docs/planner.md, "Dominated unit
     * counts"). */
    int fast = x->method != PD_METHOD_PLAIN; /* the plain DP, the tests' reference, tries all */
    int dominate = fast && x->atmost && !after_matters(x, l) && !x->hc; /* x->hc: the stage
        after a prefix costs what its ranks make it, so fewer units can be worse */
    double cap = dominate ? t->open[base + 1] : INFINITY;
    for (int m = 2; m <= N; m++) {
        if (!dp_suffix_ok(x, l, s, J, m)) continue;
        int rtop = x->straight ? 1 : m - 1;
        long glo = cd.n - 1, ghi = cd.n - 1; /* the last window's ends, where the next starts */
        for (int r = 1; r <= rtop; r++) {
            double U = t->open[base + m];
            if (!same && t->fin[base + m] > U) U = t->fin[base + m];
            if (cap < U) U = cap;
            if (topb && x->bound < U) U = x->bound;
            long lo = 0, hi = cd.n - 1;
            if (U < INFINITY) {
                double top = C[s] + U * w * (m - r) * slack;
                long h;
                if (x->cidx) {
                    lo = c_first(x, C[J] - U * w * r * slack);
                    if (lo > cd.n) lo = cd.n;
                    h = c_first(x, top);
                    if (h < lo) h = lo;
                    if (h > cd.n) h = cd.n;
                } else {
                    lo = first_near(&cd, lo, hi, C[J] - U * w * r * slack, glo);
                    h = first_near(&cd, lo, hi, top, ghi);
                }
                while (h <= hi && C[cand_at(&cd, h)] <= top) h++;
                hi = h - 1;
                glo = lo;
                ghi = h;
            }
            for (long k = lo; k <= hi; k++) {
                long I = cand_at(&cd, k);
                if (I != s && inr[I]) relax(t, x, l, I, J, r, m, m, open_last, fin_last, cap);
            }
        }
        if (dominate) { /* entry m is kept only when it beats every entry with fewer units */
            if (t->open[base + m] >= cap) {
                t->open[base + m] = INFINITY;
                t->oI[base + m] = -1;
                t->oR[base + m] = 0;
            } else {
                cap = t->open[base + m];
            }
        }
    }
}
