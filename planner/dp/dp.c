/* dp.c: PipeDream's dynamic program over downward-closed sets (ideals), with data-parallel
 * replication, hierarchical levels (innermost first; an inner level's best time for a range on
 * all its units becomes the outer level's compute cost), the memory limit and --straight.
 *
 * One level, one start ideal s: best[J][m] = the best bottleneck for the stages covering J \ s on
 * exactly m units, the last stage being J \ I replicated r times:
 *     best[J][m] = min( stage(s, J, m)                               (one stage, the base case)
 *                       min_{s < I < J, 1 <= r < m} max(best[I][m-r], stage(I, J, r)) )
 * Two tables are kept: "open" (the last stage also sends its output on, the prefix of a longer
 * range) and "final" (the range ends at J). Stage costs come from cost.h only.
 *
 * Under the default cost model (without --straight) a level may leave units idle: the answer is
 * the best over at most N units, with the fewest units on ties (level_solve, solve_top). On one
 * level it is found by a parametric search on the bottleneck (fast_solve) from 128 workers on or
 * with a memory limit; the plain DP stays as the reference (pd_plan_opts.method). */
#include "dp.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "planner/cost/cost.h"
#include "ideals.h"

#define DEFAULT_MAX_STATES 10000L /* a DAG DP over 10,000 ideals takes about 5 s on one core */
#define MAX_INNER_STATES 6000L /* hierarchy keeps an S x S table per inner level */
#define MAX_MEMO_ENTRIES (1u << 20) /* relax's cache of stage costs: S x (largest count + 1) */
#define MAX_THREADS 16           /* inner levels' rows run on at most this many threads */
#define MIN_ROWS_PER_THREAD 64   /* below 128 ideals the inner levels stay on one thread */

typedef struct {
    const pd_costgraph *g;
    const pd_cluster *c;
    pd_cost_model cm;
    int straight;
    int L;
    pd_cost_level lv[PD_MAX_LEVELS];
    double wbelow[PD_MAX_LEVELS]; /* workers in one unit of level l (product of inner counts) */
    pd_ideals id;
    long S;
    long *sub_off; /* CSR of strict sub-ideals of each ideal (NULL on a chain) */
    int *sub;
    double *inner[PD_MAX_LEVELS]; /* inner[l][I*S+J]: level l's best for I..J on all its units */
    unsigned char *inrange;       /* workspace: ideal contains the start */
    long forbid;                  /* an ideal no stage may end at (--explain), -1 = none */
    int atmost;   /* default model without --straight: a level may leave units idle (the best
                     over at most N units; docs/planner.md, "At most N workers") */
    int method;   /* pd_plan_opts.method */
    int probes;   /* the parametric search's probes (last solve) */
    int top_M, top_m; /* the top level's solve: units the DP ran with, and units of the plan */
    double bound; /* top level only: states and splits that cannot give a plan <= bound are
                     skipped (INFINITY = none); see solve_top */
    struct stage_memo *memo; /* relax's stage costs for the J being solved (NULL = none) */
    int *cidx;    /* chains: cidx[b] = the first ideal k with compute[k] >= c0 + b * cw (c_first) */
    long nb;      /* buckets of cidx */
    double c0, cw, cinv;
    double prune; /* inner levels skip the ranges no top-level stage of time <= prune can hold
                     (range_kept; INFINITY = none) */
} dpctx;

/* The recurrence tries the same last stage (I..J, r replicas) once per unit count m; its cost
 * does not depend on m, so relax prices it once per J (level_dp bumps the stamp at every J).
 * Entry I * (nmax + 1) + r. */
typedef struct {
    double to, tf, m0, slope;
    int ok; /* the stage's compute is finite */
} stage_memo_entry;

struct stage_memo {
    stage_memo_entry *e;
    unsigned *stamp;
    unsigned cur;
    int nmax;
};

static void memo_free(struct stage_memo *m) {
    if (!m) return;
    free(m->e);
    free(m->stamp);
    free(m);
}

typedef struct {
    int N;
    double *open, *fin;
    int *oI, *oR, *fI, *fR;
} dptable;

static void table_free(dptable *t) {
    free(t->open);
    if (t->fin != t->open) free(t->fin);
    free(t->oI);
    free(t->oR);
    if (t->fI != t->oI) free(t->fI);
    if (t->fR != t->oR) free(t->fR);
    memset(t, 0, sizeof *t);
}

static int table_alloc(dptable *t, long S, int N, int same) {
    size_t n = (size_t)S * (size_t)(N + 1);
    t->N = N;
    t->open = malloc(n * sizeof(double));
    t->oI = malloc(n * sizeof(int));
    t->oR = malloc(n * sizeof(int));
    if (same) {
        t->fin = t->open;
        t->fI = t->oI;
        t->fR = t->oR;
    } else {
        t->fin = malloc(n * sizeof(double));
        t->fI = malloc(n * sizeof(int));
        t->fR = malloc(n * sizeof(int));
    }
    if (!t->open || !t->oI || !t->oR || !t->fin || !t->fI || !t->fR) return -1;
    return 0;
}

/* compute cost of stage I..J at level l */
static double stage_T(const dpctx *x, int l, long I, long J) {
    if (l == 0) return x->id.compute[J] - x->id.compute[I];
    return x->inner[l - 1][(size_t)I * (size_t)x->S + (size_t)J];
}

static void stage_sums(pd_stage_sums *s, const dpctx *x, int l, long I, long J, int first,
                       int last) {
    s->compute_ms = stage_T(x, l, I, J);
    s->param_bytes = x->id.params[J] - x->id.params[I];
    s->act_bytes = x->id.acts[J] - x->id.acts[I];
    s->in_bytes = x->id.cut[I];
    s->out_bytes = x->id.cut[J];
    s->first = first;
    s->last = last;
}

/* memory grows linearly with the warm-up: mem(after) = m0 + ceil(after/r) * slope */
static int fits_after(const pd_cost_level *lv, double m0, double slope, int r, int after) {
    if (!(lv->memory_bytes > 0)) return 1;
    int w = after <= 0 ? 0 : (after + r - 1) / r;
    return m0 + w * slope <= lv->memory_bytes;
}

/* The time of a priced stage had it been the last of its range (pd_stage_sums.last = 1): the
 * flag only drops the output transfer, and the time is the largest of compute + all-reduce and
 * the transfers (cost.h), so this is the same number pd_stage_cost_eval gives with last = 1
 * (one pricing instead of two per stage). */
static double time_as_last(const pd_stage_cost *c) {
    double t = c->compute_ms + c->allreduce_ms;
    return c->comm_in_ms > t ? c->comm_in_ms : t;
}

/* 1 when a stage's cost at level l depends on the units after it (only its memory does, and only
 * where the cost model checks memory). */
static int after_matters(const dpctx *x, int l) {
    return x->lv[l].memory_bytes > 0 && (x->cm == PD_COST_PIPEDREAM || x->lv[l].innermost);
}

/* 1 when a stage's cost at level l is its time alone under the default model (no memory check
 * there): priced inline with pd_stage_time_default (cost.h), the number pd_stage_cost_eval gives. */
static int times_only(const dpctx *x, int l) {
    return x->cm == PD_COST_DEFAULT && !after_matters(x, l);
}

/* Entry e (of J, m units) from the prefix value prev and the last stage's times to (open: it
 * sends its output on) and tf (final): each table takes the candidate when strictly better (the
 * open entry only below cap, windowed_recurrence's dominance bound). */
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
        double T = stage_T(x, l, I, J), P = x->id.params[J] - x->id.params[I];
        double to = pd_stage_time_default(T, P, x->id.cut[I], x->id.cut[J], 0, open_last,
                                          lv->bandwidth, r);
        double tf = same || fin_last == open_last
                        ? to
                        : pd_stage_time_default(T, P, x->id.cut[I], x->id.cut[J], 0, fin_last,
                                                lv->bandwidth, r);
        if (!(tf < INFINITY)) return; /* tf <= to */
        for (int m = mlo; m <= mhi; m++) improve(t, base + m, oI[m - r], to, tf, I, r, cap, same);
        return;
    }
    struct stage_memo *sm = x->memo && N <= x->memo->nmax ? x->memo : NULL;
    size_t key = sm ? (size_t)I * (size_t)(sm->nmax + 1) + (size_t)r : 0;
    double to, tf, m0, slope;
    if (sm && sm->stamp[key] == sm->cur) {
        const stage_memo_entry *e = &sm->e[key];
        if (!e->ok) return;
        to = e->to;
        tf = e->tf;
        m0 = e->m0;
        slope = e->slope;
    } else {
        pd_stage_sums ss;
        stage_sums(&ss, x, l, I, J, 0, open_last);
        int ok = isfinite(ss.compute_ms) != 0;
        to = tf = m0 = slope = 0;
        if (ok) {
            pd_stage_cost c0, c1;
            pd_stage_cost_eval(&c0, &ss, lv, x->cm, r, 0);
            m0 = c0.memory_bytes;
            slope = 0;
            if (lv->memory_bytes > 0) { /* without a limit fits_after ignores memory */
                pd_stage_cost_eval(&c1, &ss, lv, x->cm, r, r);
                slope = c1.memory_bytes - c0.memory_bytes;
            }
            to = tf = c0.time_ms;
            if (!same && fin_last != open_last) tf = time_as_last(&c0);
        }
        if (sm) {
            sm->e[key] = (stage_memo_entry){to, tf, m0, slope, ok};
            sm->stamp[key] = sm->cur;
        }
        if (!ok) return;
    }
    for (int m = mlo; m <= mhi; m++) {
        double prev = oI[m - r];
        if (!(prev < INFINITY)) continue;
        if (!fits_after(lv, m0, slope, r, N - m)) continue;
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

static int cidx_build(dpctx *x) {
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
static int suffix_ok(const dpctx *x, int l, long s, long J, int m) {
    if (!(x->bound < INFINITY) || l != x->L - 1 || s != 0) return 1;
    int N = x->lv[l].workers;
    long full = x->S - 1;
    double rest = x->id.compute[full] - x->id.compute[J];
    if (J == full) return x->atmost || m == N;
    if (m >= N) return 0;
    return rest <= x->bound * x->wbelow[l] * (N - m) * (1 + 1e-9);
}

/* the first k in [lo, hi] with col[k * stride] <= v, for col non-increasing (hi + 1 if none) */
static long first_inner_at_most(const double *col, size_t stride, long lo, long hi, double v) {
    while (lo <= hi) {
        long mid = lo + (hi - lo) / 2;
        if (col[(size_t)mid * stride] <= v) hi = mid - 1;
        else lo = mid + 1;
    }
    return lo;
}

static void windowed_recurrence(dptable *t, const dpctx *x, int l, long s, long J, int open_last,
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
     * matters (pick_units), and a prefix on m units is never better than one on fewer units with
     * a value as low (the stage after it costs the same). So an entry that does not beat every
     * entry with fewer units (cap: the least of them) is dropped (INFINITY), and only candidates
     * below cap are tried: the window shrinks to cap. The least value over m' <= m of each J is
     * unchanged, and so is every kept entry and its choice (docs/planner.md, "Dominated unit
     * counts"). */
    int fast = x->method != PD_METHOD_PLAIN; /* the plain DP, the tests' reference, tries all */
    int dominate = fast && x->atmost && !after_matters(x, l);
    /* Above level 0 on a chain, at most N units: the inner level's best for I..J does not grow as
     * I moves right (the best plan of a longer range, cut at I, is a plan of the shorter one), and
     * a stage on r units takes at least its inner value / r: the window starts at the first I
     * with inner(I, J) <= U r, found by bisection (the compute bound alone is loose where the
     * inner levels' values are mostly transfers and all-reduce). */
    const double *inner_col =
        fast && l > 0 && x->atmost && x->id.chain ? x->inner[l - 1] + (size_t)J : NULL;
    double cap = dominate ? t->open[base + 1] : INFINITY;
    for (int m = 2; m <= N; m++) {
        if (!suffix_ok(x, l, s, J, m)) continue;
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
                if (inner_col && lo <= hi) /* the first I with inner(I, J) <= U r */
                    lo = first_inner_at_most(inner_col, (size_t)x->S, lo, hi, U * r * slack);
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

/* A range I..J (I subset J) is kept for the inner levels when some top-level stage holding it
 * could take at most x->prune: a top stage's time on r units is at least (C/w + its ring
 * all-reduce) / r, with C the range's level-0 compute and w the workers of one top unit (the
 * inner levels' best time is at least C/w), priced through cost.h with no transfer terms. Both
 * C and the parameter bytes shrink with the range, so every sub-range of a kept range is kept:
 * a kept range's inner value is exact, and a plan whose bottleneck is at most x->prune uses
 * kept ranges only (plan_with). Default model only. */
static int range_kept(const dpctx *x, long I, long J) {
    if (!(x->prune < INFINITY)) return 1;
    int l = x->L - 1;
    pd_stage_sums ss = {.compute_ms = (x->id.compute[J] - x->id.compute[I]) / x->wbelow[l],
                        .param_bytes = x->id.params[J] - x->id.params[I],
                        .first = 1,
                        .last = 1};
    pd_cost_level lv = x->lv[l];
    lv.memory_bytes = 0;
    for (int r = 1; r <= x->c->count[l]; r++) {
        pd_stage_cost c;
        pd_stage_cost_eval(&c, &ss, &lv, x->cm, r, 0);
        if (c.time_ms <= x->prune * (1 + 1e-9)) return 1;
    }
    return 0;
}

/* Fills t for level l from start ideal s. */
static void level_dp(dptable *t, const dpctx *x, int l, long s) {
    const pd_cost_level *lv = &x->lv[l];
    int N = lv->workers, W = N + 1;
    long S = x->S, full = S - 1;
    size_t n = (size_t)S * (size_t)W;
    int same = t->fin == t->open;
    for (size_t i = 0; i < n; i++) {
        t->open[i] = INFINITY;
        t->oI[i] = -1;
        t->oR[i] = 0;
    }
    if (!same)
        for (size_t i = 0; i < n; i++) {
            t->fin[i] = INFINITY;
            t->fI[i] = -1;
            t->fR[i] = 0;
        }
    unsigned char *inr = x->inrange;
    for (long I = 0; I < S; I++)
        inr[I] = (unsigned char)(I >= s && (x->id.chain || pd_ideal_subset(&x->id, s, I)));
    int rmax = x->straight ? 1 : N;
    for (long J = s + 1; J < S; J++) {
        if (!inr[J] || J == x->forbid) continue;
        if (l < x->L - 1 && !range_kept(x, s, J)) {
            if (x->id.chain) break; /* every longer range contains this one */
            continue;
        }
        if (x->memo && ++x->memo->cur == 0) { /* the stamp wrapped: forget every entry */
            memset(x->memo->stamp, 0,
                   sizeof(unsigned) * (size_t)x->S * (size_t)(x->memo->nmax + 1));
            x->memo->cur = 1;
        }
        int open_last = J == full;
        int fin_last = x->cm == PD_COST_PIPEDREAM ? J == full : 1;
        double *oJ = t->open + (size_t)J * (size_t)W, *fJ = t->fin + (size_t)J * (size_t)W;
        int *oIJ = t->oI + (size_t)J * (size_t)W, *oRJ = t->oR + (size_t)J * (size_t)W;
        int *fIJ = t->fI + (size_t)J * (size_t)W, *fRJ = t->fR + (size_t)J * (size_t)W;
        /* base case: s..J as one stage on m units */
        pd_stage_sums ss;
        stage_sums(&ss, x, l, s, J, 1, open_last);
        if (isfinite(ss.compute_ms)) {
            for (int r = 1; r <= rmax; r++) {
                if (!suffix_ok(x, l, s, J, r)) continue;
                pd_stage_cost c;
                pd_stage_cost_eval(&c, &ss, lv, x->cm, r, N - r);
                if (!c.fits) continue;
                oJ[r] = c.time_ms;
                oIJ[r] = (int)s;
                oRJ[r] = r;
                if (!same) {
                    fJ[r] = fin_last != open_last ? time_as_last(&c) : c.time_ms;
                    fIJ[r] = (int)s;
                    fRJ[r] = r;
                }
            }
        }
        /* recurrence: a last stage I..J after the best prefix s..I */
        windowed_recurrence(t, x, l, s, J, open_last, fin_last);
    }
}

/* The tie rule: among v[lo..hi] (stride apart), the fewest units whose value is within 1e-12
 * (relative) of the least. -1 when every one is infinite. */
static int pick_units(const double *v, size_t stride, int lo, int hi) {
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
static double level_solve(dptable *t, dpctx *x, int l, long s, long e, int *M, int *m) {
    int N = x->c->count[l];
    x->lv[l].workers = N;
    *M = N;
    if (!x->atmost || !after_matters(x, l)) {
        level_dp(t, x, l, s);
        const double *row = t->fin + (size_t)e * (size_t)(N + 1);
        *m = pick_units(row, 1, x->atmost ? 1 : N, N);
        return *m < 0 ? INFINITY : row[*m];
    }
    double *v = malloc(sizeof(double) * ((size_t)N + 1));
    if (!v) return NAN;
    int top = N;
    for (int k = 1; k <= top; k++) {
        x->lv[l].workers = k;
        level_dp(t, x, l, s);
        v[k] = t->fin[(size_t)e * (size_t)(k + 1) + (size_t)k];
    }
    v[0] = INFINITY;
    *m = pick_units(v, 1, 1, top);
    double best = *m < 0 ? INFINITY : v[*m];
    free(v);
    if (*m < 0) return INFINITY;
    *M = *m;
    x->lv[l].workers = *m;
    if (*m != top) level_dp(t, x, l, s);
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

static void ctx_free(dpctx *x) {
    pd_ideals_free(&x->id);
    free(x->sub_off);
    free(x->sub);
    for (int l = 0; l < PD_MAX_LEVELS; l++) free(x->inner[l]);
    free(x->inrange);
    free(x->cidx);
    memo_free(x->memo);
    memset(x, 0, sizeof *x);
}

/* relax's cache of stage costs, S x (largest count + 1) entries; NULL (and *err = 0) when that
 * is too large (relax then prices every call), NULL with *err = 1 when out of memory. */
static struct stage_memo *memo_new(const dpctx *x, int *err) {
    int nmax = 1;
    for (int l = 0; l < x->L; l++)
        if (x->c->count[l] > nmax) nmax = x->c->count[l];
    size_t ne = (size_t)x->S * (size_t)(nmax + 1);
    *err = 0;
    if (ne > MAX_MEMO_ENTRIES) return NULL;
    struct stage_memo *m = calloc(1, sizeof *m);
    if (m) {
        m->nmax = nmax;
        m->e = malloc(sizeof(stage_memo_entry) * ne);
        m->stamp = calloc(ne, sizeof(unsigned));
    }
    if (!m || !m->e || !m->stamp) {
        memo_free(m);
        *err = 1;
        return NULL;
    }
    return m;
}

/* Row s of inner level l: x->inner[l][s S + J] = level l's best for s..J on its units, for
 * every J. t and acc (the memory loop's per-count results, NULL without it) are workspaces. */
static void inner_row(dpctx *x, int l, long s, dptable *t, double *acc) {
    long S = x->S;
    int N = x->c->count[l];
    double *dst = x->inner[l] + (size_t)s * (size_t)S;
    if (!acc) {
        level_dp(t, x, l, s);
        for (long J = s + 1; J < S; J++) {
            const double *row = t->fin + (size_t)J * (size_t)(N + 1);
            int m = pick_units(row, 1, x->atmost ? 1 : N, N);
            dst[J] = m < 0 ? INFINITY : row[m];
        }
        return;
    }
    for (int M = 1; M <= N; M++) {
        x->lv[l].workers = M;
        level_dp(t, x, l, s);
        for (long J = s + 1; J < S; J++)
            acc[(size_t)J * (size_t)(N + 1) + (size_t)M] =
                t->fin[(size_t)J * (size_t)(M + 1) + (size_t)M];
    }
    x->lv[l].workers = N;
    for (long J = s + 1; J < S; J++) {
        const double *row = acc + (size_t)J * (size_t)(N + 1);
        int m = pick_units(row, 1, 1, N);
        dst[J] = m < 0 ? INFINITY : row[m];
    }
}

/* The rows of one inner level are independent (each reads only the level below), so several
 * threads take rows in turn; each has its own copy of the context's workspaces (inrange, memo,
 * the unit count the memory loop sets). Every row's values are the same whichever thread
 * computes it, so the plan does not depend on the thread count. */
typedef struct {
    const dpctx *x;
    int l;
    atomic_long next;
    atomic_int failed;
} inner_pool;

static void *inner_worker(void *arg) {
    inner_pool *p = arg;
    dpctx w = *p->x;
    int l = p->l, N = w.c->count[l], err = 0;
    int loop = w.atmost && after_matters(&w, l);
    dptable t = {0};
    double *acc = NULL;
    w.inrange = malloc((size_t)w.S);
    w.memo = memo_new(&w, &err);
    if (!w.inrange || err || table_alloc(&t, w.S, N, w.cm == PD_COST_PIPEDREAM) ||
        (loop && !(acc = malloc(sizeof(double) * (size_t)w.S * (size_t)(N + 1))))) {
        atomic_store(&p->failed, 1);
    } else {
        for (;;) {
            long s = atomic_fetch_add(&p->next, 1);
            if (s >= w.S || atomic_load(&p->failed)) break;
            inner_row(&w, l, s, &t, acc);
        }
    }
    free(acc);
    table_free(&t);
    free(w.inrange);
    memo_free(w.memo);
    return NULL;
}

/* Fills x->inner[l] (every entry INFINITY on entry) on up to `threads` threads; -1 when out of
 * memory. Small graphs stay on the calling thread. */
static int inner_level(dpctx *x, int l, int threads) {
    inner_pool p = {.x = x, .l = l};
    atomic_init(&p.next, 0);
    atomic_init(&p.failed, 0);
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (x->S < MIN_ROWS_PER_THREAD * 2 || threads < 1) threads = 1;
    pthread_t tid[MAX_THREADS];
    int started = 0;
    for (int k = 1; k < threads; k++)
        if (pthread_create(&tid[started], NULL, inner_worker, &p) == 0) started++;
    inner_worker(&p); /* the calling thread takes rows too (alone when no thread started) */
    for (int k = 0; k < started; k++) pthread_join(tid[k], NULL);
    return atomic_load(&p.failed) ? -1 : 0;
}

/* the threads for the inner levels: --threads, or the processors this process may run on (its
 * affinity mask, else the processors online) */
static int plan_threads(const pd_plan_opts *o) {
    if (o->threads > 0) return o->threads;
    long n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < MAX_THREADS ? n : MAX_THREADS) : 1;
}

/* Enumerates ideals and solves every inner level for all ranges. Returns 0, -1 on OOM,
 * -2 when the hierarchy's tables would be too large. */
static int ctx_init(dpctx *x, const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm,
                    int straight, long max_states, const unsigned char *forbid, double prune,
                    int method, int threads) {
    memset(x, 0, sizeof *x);
    x->method = method;
    x->forbid = -1;
    x->prune = prune;
    x->bound = INFINITY;
    x->g = g;
    x->c = c;
    x->cm = cm;
    x->straight = straight;
    x->atmost = cm == PD_COST_DEFAULT && !straight;
    x->L = c->n_levels;
    for (int l = 0; l < x->L; l++) {
        pd_cost_level_of(&x->lv[l], c, l);
        x->wbelow[l] = l ? x->wbelow[l - 1] * c->count[l - 1] : 1;
    }
    if (pd_ideals_enumerate(&x->id, g, max_states > 0 ? max_states : DEFAULT_MAX_STATES))
        return -1;
    x->S = x->id.count;
    if (forbid)
        for (long k = 0; k < x->S && x->forbid < 0; k++) {
            int eq = 1;
            for (int v = 0; v < g->n && eq; v++)
                if (pd_ideal_has(&x->id, k, v) != (forbid[v] != 0)) eq = 0;
            if (eq) x->forbid = k;
        }
    x->inrange = malloc((size_t)x->S);
    if (!x->inrange || build_subsets(x) || cidx_build(x)) return -1;
    int err = 0;
    x->memo = memo_new(x, &err);
    if (err) return -1;
    if (x->L > 1 && x->S > MAX_INNER_STATES) return -2;
    for (int l = 0; l + 1 < x->L; l++) {
        size_t n = (size_t)x->S * (size_t)x->S;
        x->inner[l] = malloc(n * sizeof(double));
        if (!x->inner[l]) return -1;
        for (size_t i = 0; i < n; i++) x->inner[l][i] = INFINITY;
        if (inner_level(x, l, threads)) return -1;
    }
    return 0;
}

/* ---- reconstruction ---- */

typedef struct {
    long I, J;
    int replicas;       /* product over levels */
    pd_stage_cost c0;   /* the level-0 stage's cost (per its unit) */
    int mult;           /* product of the replicas of enclosing outer stages */
    double time_ms;     /* max over enclosing levels of the stage time per global minibatch */
    double outer_ar_ms; /* enclosing stages' all-reduce per global minibatch */
    int rl[PD_MAX_LEVELS]; /* replicas at each level: its own (level 0) and its enclosing stages' */
    double in_ms, out_ms;
} flat_stage;

typedef struct {
    flat_stage *v;
    int n, cap;
} flat_list;

static int flat_push(flat_list *fl, const flat_stage *s) {
    if (fl->n == fl->cap) {
        int cap = fl->cap ? fl->cap * 2 : 16;
        flat_stage *nv = realloc(fl->v, sizeof *nv * (size_t)cap);
        if (!nv) return -1;
        fl->v = nv;
        fl->cap = cap;
    }
    fl->v[fl->n++] = *s;
    return 0;
}

/* Re-solves level l for the range s..e on all its units and appends its stages (expanded
 * through the inner levels). */
static int reconstruct(flat_list *fl, dpctx *x, int l, long s, long e, int mult,
                       double encl_time, double encl_ar, double in_ms, double out_ms,
                       const int *encl_r) {
    const pd_cost_level *lv = &x->lv[l];
    int rc = 0, N, m0;
    dptable t = {0};
    if (table_alloc(&t, x->S, x->c->count[l], x->cm == PD_COST_PIPEDREAM)) {
        table_free(&t);
        return -1;
    }
    if (l == x->L - 1 && s == 0 && e == x->S - 1) { /* the top level: the run solve_top chose */
        x->lv[l].workers = N = x->top_M;
        m0 = x->top_m;
        level_dp(&t, x, l, s);
    } else if (!(level_solve(&t, x, l, s, e, &N, &m0) < INFINITY)) {
        x->lv[l].workers = x->c->count[l];
        table_free(&t);
        return -1;
    }
    int W = N + 1;
    /* walk back: (I, J, r) from the end */
    int cap = 16, n = 0;
    long *sI = malloc(sizeof(long) * (size_t)cap), *sJ = malloc(sizeof(long) * (size_t)cap);
    int *sR = malloc(sizeof(int) * (size_t)cap), *sM = malloc(sizeof(int) * (size_t)cap);
    if (!sI || !sJ || !sR || !sM) rc = -1;
    long J = e;
    int m = m0, fin = 1;
    while (!rc) {
        size_t k = (size_t)J * (size_t)W + (size_t)m;
        long I = fin ? t.fI[k] : t.oI[k];
        int r = fin ? t.fR[k] : t.oR[k];
        if (I < 0 || r <= 0) {
            rc = -1;
            break;
        }
        if (n == cap) {
            cap *= 2;
            long *a = realloc(sI, sizeof(long) * (size_t)cap);
            if (a) sI = a;
            long *b = realloc(sJ, sizeof(long) * (size_t)cap);
            if (b) sJ = b;
            int *c = realloc(sR, sizeof(int) * (size_t)cap);
            if (c) sR = c;
            int *d = realloc(sM, sizeof(int) * (size_t)cap);
            if (d) sM = d;
            if (!a || !b || !c || !d) {
                rc = -1;
                break;
            }
        }
        sI[n] = I;
        sJ[n] = J;
        sR[n] = r;
        sM[n] = m;
        n++;
        if (I == s) break;
        J = I;
        m -= r;
        fin = 0;
    }
    for (int q = n - 1; q >= 0 && !rc; q--) {
        long I = sI[q], Jq = sJ[q];
        int r = sR[q], first = q == n - 1, lastr = q == 0;
        int last = x->cm == PD_COST_PIPEDREAM ? Jq == x->S - 1 : lastr;
        pd_stage_sums ss;
        stage_sums(&ss, x, l, I, Jq, first, last);
        pd_stage_cost c;
        pd_stage_cost_eval(&c, &ss, lv, x->cm, r, N - sM[q]);
        double tglob = c.time_ms / mult;
        double et = encl_time > tglob ? encl_time : tglob;
        double sin = first ? in_ms : c.comm_in_ms / mult;
        double sout = lastr ? out_ms : c.comm_out_ms / mult;
        if (l == 0) {
            flat_stage f = {.I = I, .J = Jq, .replicas = r * mult, .c0 = c, .mult = mult,
                            .time_ms = et, .outer_ar_ms = encl_ar, .in_ms = sin, .out_ms = sout};
            for (int k = 1; k < x->L; k++) f.rl[k] = encl_r[k];
            f.rl[0] = r;
            if (flat_push(fl, &f)) rc = -1;
        } else {
            int rl[PD_MAX_LEVELS];
            for (int k = 0; k < PD_MAX_LEVELS; k++) rl[k] = encl_r[k];
            rl[l] = r;
            rc = reconstruct(fl, x, l - 1, I, Jq, mult * r, et, encl_ar + c.allreduce_ms / mult,
                             sin, sout, rl);
        }
    }
    free(sI);
    free(sJ);
    free(sR);
    free(sM);
    table_free(&t);
    x->lv[l].workers = x->c->count[l];
    return rc;
}

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
            if (flat_push(fl, &f)) return NAN;
        }
    }
    return worst;
}

/* 1 when the parametric search is used: the default model (at most N), one level; by default
 * only where it is faster than the plain DP with its bound (measured on chains of 1,000 layers
 * and Inception-like DAGs: from about 128 workers on, and wherever a memory limit makes the
 * plain DP run once per unit count). */
static int fast_applies(const dpctx *x) {
    if (!x->atmost || x->L != 1 || x->method == PD_METHOD_PLAIN) return 0;
    return x->method == PD_METHOD_PARAMETRIC || after_matters(x, 0) || x->c->count[0] >= 128;
}

/* The parametric search; fills fl (when not NULL) with the plan. INFINITY when nothing fits,
 * NAN when out of memory. */
static double fast_solve(flat_list *fl, dpctx *x) {
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
        /* the last probe is just below hi: infeasible there, hi is the best within 1e-12 */
        double eps = fabs(hi) * 1e-12, mid = lo + (hi - lo) / 2;
        if (hi - lo <= 4 * eps) {
            mid = hi - eps;
            last = 1;
        }
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

/* Default model, several levels: the stage's own time and all-reduce, not its enclosing outer
 * stage's. The stage runs on R = r_0 r_1 ... workers; one round is R minibatches, one per worker,
 * and each level's ring all-reduce of the stage's own parameters runs once per round:
 *     allreduce = sum_l 2 (r_l - 1) P / (r_l B_l) / R,   time = max(T / R + allreduce, in, out).
 * The DP's objective charges an outer level's all-reduce of the whole outer stage once per outer
 * round, so it is at least every stage's own time (docs/planner.md). */
static void own_figures(pd_stage *st, const dpctx *x, const flat_stage *f) {
    double R = f->replicas, ar = 0;
    for (int l = 0; l < x->L; l++) {
        double r = f->rl[l] > 0 ? f->rl[l] : 1;
        ar += 1000.0 * 2.0 * (r - 1.0) * st->param_bytes / (r * x->lv[l].bandwidth);
    }
    st->allreduce_ms = ar / R;
    double t = st->compute_ms / R + st->allreduce_ms;
    if (st->comm_in_ms > t) t = st->comm_in_ms;
    if (st->comm_out_ms > t) t = st->comm_out_ms;
    st->time_ms = t;
}

static pd_plan *build_plan(const dpctx *x, const flat_list *fl, double bottleneck) {
    pd_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->stages = calloc((size_t)fl->n, sizeof(pd_stage));
    if (!p->stages) {
        free(p);
        return NULL;
    }
    p->n_stages = fl->n;
    for (int q = 0; q < fl->n; q++) {
        const flat_stage *f = &fl->v[q];
        pd_stage *st = &p->stages[q];
        st->replicas = f->replicas;
        int cnt = x->id.size[f->J] - x->id.size[f->I];
        st->nodes = malloc(sizeof(int) * (size_t)(cnt > 0 ? cnt : 1));
        if (!st->nodes) {
            pd_plan_free(p);
            return NULL;
        }
        for (int v = 0; v < x->g->n; v++)
            if (pd_ideal_has(&x->id, f->J, v) && !pd_ideal_has(&x->id, f->I, v))
                st->nodes[st->n_nodes++] = v;
        st->compute_ms = x->id.compute[f->J] - x->id.compute[f->I];
        st->allreduce_ms = f->c0.allreduce_ms / f->mult + f->outer_ar_ms;
        st->comm_in_ms = f->in_ms;
        st->comm_out_ms = f->out_ms;
        st->time_ms = f->time_ms;
        st->param_bytes = x->id.params[f->J] - x->id.params[f->I];
        st->act_in_bytes = x->id.cut[f->I];
        st->act_out_bytes = f->J == x->S - 1 ? 0 : x->id.cut[f->J];
        if (x->cm == PD_COST_DEFAULT && x->L > 1) own_figures(st, x, f);
    }
    if (pd_plan_assign_ranks(p)) {
        pd_plan_free(p);
        return NULL;
    }
    /* memory per worker from the flattened warm-up, under the plan's cost model */
    pd_cost_level lv0 = x->lv[0];
    lv0.innermost = 1;
    int before = 0;
    for (int q = 0; q < p->n_stages; q++) {
        const flat_stage *f = &fl->v[q];
        pd_stage *st = &p->stages[q];
        pd_stage_sums ss;
        ss.compute_ms = st->compute_ms;
        ss.param_bytes = st->param_bytes;
        ss.act_bytes = x->id.acts[f->J] - x->id.acts[f->I];
        ss.in_bytes = st->act_in_bytes;
        ss.out_bytes = st->act_out_bytes;
        ss.first = q == 0;
        ss.last = q == p->n_stages - 1;
        pd_stage_cost c;
        before += st->replicas;
        pd_stage_cost_eval(&c, &ss, &lv0, x->cm, st->replicas, p->workers - before);
        st->memory_bytes = c.memory_bytes;
    }
    p->cost_model = x->cm;
    p->straight = x->straight;
    p->bottleneck_ms = bottleneck;
    p->throughput = bottleneck > 0 ? 1000.0 / bottleneck : 0; /* minibatches/s; CLI x batch */
    p->data_parallel_ms = pd_data_parallel_ms(x->g, x->c, x->cm);
    p->speedup_vs_data_parallel = bottleneck > 0 ? p->data_parallel_ms / bottleneck : 0;
    p->exact = x->id.complete;
    strcpy(p->certificate.solver, "glpk");
    strcpy(p->certificate.status, "skipped");
    return p;
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
        level_dp(t, x, l, 0);
        int m = pick_units(row, 1, lo, N);
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
    level_dp(t, x, l, 0);
    *m_out = pick_units(row, 1, lo, N);
    return *m_out < 0 ? INFINITY : row[*m_out];
}

/* The top level: exactly N units, or at most N (x->atmost; the tie rule of pick_units), one run
 * per unit count when a stage's memory depends on the units after it. Sets x->top_M (units of the
 * run), x->top_m (units of the plan) and x->bound (the bound of the run), which reconstruction
 * re-solves. */
static double solve_top(dpctx *x, dptable *t) {
    int l = x->L - 1, N = x->c->count[l];
    if (table_alloc(t, x->S, N, x->cm == PD_COST_PIPEDREAM)) return NAN;
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
    int M = pick_units(v, 1, 1, N);
    double best = M < 0 ? INFINITY : v[M];
    if (M > 0) {
        x->top_M = x->top_m = M;
        x->bound = bnd[M];
    }
    free(v);
    return best;
}

/* A proven lower bound on any plan's bottleneck: every stage time is at least its compute over
 * its replicas, and the replicas add up to the workers. */
static double lower_bound(const pd_costgraph *g, const pd_cluster *c, int straight) {
    double total = 0, maxv = 0;
    for (int v = 0; v < g->n; v++) {
        double t = g->fwd_ms[v] + g->bwd_ms[v];
        total += t;
        if (t > maxv) maxv = t;
    }
    int N = pd_cluster_workers(c);
    double lb = N > 0 ? total / N : total;
    if (straight && maxv > lb) lb = maxv;
    return lb;
}

static pd_plan *plan_with(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                          pd_diag *d, double *bottleneck_out) {
    dpctx x;
    /* Hierarchies under the default model: the inner levels first skip the ranges that no top
     * stage of time <= 1.25 x the lower bound can hold (range_kept). A plan found <= that guess
     * is the optimum (every plan <= the guess uses kept ranges only, whose values are exact);
     * otherwise the plan found is an upper bound, and one more pass pruned with it is exact. */
    double prune = INFINITY;
    if (c->n_levels > 1 && o->cost_model == PD_COST_DEFAULT && !o->straight &&
        o->method != PD_METHOD_PLAIN)
        prune = 1.25 * lower_bound(g, c, 0);
    int rc;
    double b = NAN;
    int fast = 0;
    dptable t = {0};
    flat_list fl = {0};
    for (int pass = 0;; pass++) {
        rc = ctx_init(&x, g, c, o->cost_model, o->straight, o->max_states, NULL, prune,
                      o->method, plan_threads(o));
        if (rc) break;
        fast = fast_applies(&x);
        b = fast ? fast_solve(&fl, &x) : solve_top(&x, &t);
        if (fast || !(prune < INFINITY) || b <= prune || pass > 0) break;
        table_free(&t);
        ctx_free(&x);
        prune = isfinite(b) ? b * (1 + 1e-9) : INFINITY;
    }
    if (rc) {
        if (rc == -2)
            pd_diag_error(d, NULL, 0, 0,
                          "the graph has %ld downward-closed sets; hierarchical planning keeps "
                          "a table of every pair and is limited to %ld (plan on one level, or "
                          "lower --max-states)",
                          x.S, MAX_INNER_STATES);
        else
            pd_diag_error(d, NULL, 0, 0, "out of memory while planning (%ld states)", x.S);
        ctx_free(&x);
        return NULL;
    }
    table_free(&t);
    if (bottleneck_out) *bottleneck_out = b;
    pd_plan *p = NULL;
    if (isfinite(b)) {
        int L = x.L;
        int rl[PD_MAX_LEVELS] = {0};
        if (fast || reconstruct(&fl, &x, L - 1, 0, x.S - 1, 1, 0, 0, 0, 0, rl) == 0)
            p = build_plan(&x, &fl, b);
        if (!p) pd_diag_error(d, NULL, 0, 0, "internal error: plan reconstruction failed");
        if (p && !x.id.complete) {
            p->exact = 0;
            p->lower_bound_ms = lower_bound(g, c, o->straight);
        }
        if (p && c->memory_bytes > 0 && x.L > 1) {
            /* the DP checks memory level by level; the flattened plan's warm-up can be deeper */
            int worst = -1;
            for (int q = 0; q < p->n_stages; q++)
                if (p->stages[q].memory_bytes > c->memory_bytes &&
                    (worst < 0 || p->stages[q].memory_bytes > p->stages[worst].memory_bytes))
                    worst = q;
            if (worst >= 0)
                pd_diag_warning(d, NULL, 0, 0,
                                "stage %d needs %.6g bytes per worker with the warm-up of the "
                                "flattened pipeline, over the limit of %.6g: the hierarchical DP "
                                "checks memory within each level only (docs/planner.md)",
                                worst, p->stages[worst].memory_bytes, c->memory_bytes);
        }
        if (p && !x.id.complete)
            pd_diag_warning(d, NULL, 0, 0,
                            "the graph has more than %ld downward-closed sets: planned over the "
                            "%ld principal ones (the ancestors of one node) only (not exact; "
                            "proven lower bound %.6g ms, plan %.6g ms, gap %.3g%%)",
                            o->max_states > 0 ? o->max_states : DEFAULT_MAX_STATES, x.S,
                            p->lower_bound_ms, b,
                            p->lower_bound_ms > 0 ? 100.0 * (b - p->lower_bound_ms) / p->lower_bound_ms
                                                  : 0.0);
    }
    free(fl.v);
    ctx_free(&x);
    return p;
}

pd_plan *pd_plan_dp(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                    pd_diag *d) {
    if (g->n <= 0 || c->n_levels <= 0) {
        pd_diag_error(d, NULL, 0, 0, "nothing to plan: %d layers, %d levels", g->n, c->n_levels);
        return NULL;
    }
    int N = pd_cluster_workers(c);
    if (o->straight) {
        if (N > g->n) {
            pd_diag_error(d, NULL, 0, 0,
                          "no plan fits: --straight gives every one of the %d workers its own "
                          "stage, but the graph has only %d layers",
                          N, g->n);
            return NULL;
        }
    }
    int errors = d->errors;
    double b = INFINITY;
    pd_plan *p = plan_with(g, c, o, d, &b);
    if (p || d->errors > errors) {
        if (p && o->schedule) snprintf(p->schedule, sizeof p->schedule, "%s", o->schedule);
        else if (p) strcpy(p->schedule, "1f1b");
        return p;
    }
    /* nothing fits: say which constraint failed */
    if (c->memory_bytes > 0) {
        pd_cluster nc = *c;
        nc.memory_bytes = 0;
        pd_diag quiet = {.out = d->out};
        pd_plan *q = plan_with(g, &nc, o, &quiet, NULL);
        if (q) {
            double mx = 0;
            for (int s = 0; s < q->n_stages; s++)
                if (q->stages[s].memory_bytes > mx) mx = q->stages[s].memory_bytes;
            /* the smallest a stage can be: one layer, alone, at the end of the pipeline */
            double least = INFINITY;
            for (int v = 0; v < g->n; v++) {
                unsigned char *one = calloc((size_t)g->n, 1);
                if (!one) break;
                one[v] = 1;
                pd_cost_level lv;
                pd_cost_level_of(&lv, c, 0);
                lv.innermost = 1;
                pd_stage_cost sc;
                pd_stage_cost_nodes(&sc, g, &lv, o->cost_model, NULL, one, 1, 0);
                free(one);
                if (sc.memory_bytes < least) least = sc.memory_bytes;
            }
            pd_diag_error(d, NULL, 0, 0,
                          "no plan fits: the memory limit of %.4g bytes per worker is too small "
                          "(the best plan without the limit needs %.4g bytes on its largest "
                          "stage; the smallest layer alone, last in the pipeline, needs %.4g)",
                          c->memory_bytes, mx, least);
            pd_plan_free(q);
            return NULL;
        }
    }
    if (o->straight)
        pd_diag_error(d, NULL, 0, 0,
                      "no plan fits: --straight needs a pipeline of exactly %d one-worker "
                      "stages at every level and none exists for this graph",
                      N);
    else
        pd_diag_error(d, NULL, 0, 0, "no plan fits on %d workers", N);
    return NULL;
}

/* The best bottleneck when no stage may end at the ideal `cut` (byte flags); INFINITY if none. */
static double best_without(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                           const unsigned char *cut) {
    dpctx x;
    double b = NAN;
    if (ctx_init(&x, g, c, o->cost_model, o->straight, o->max_states, cut, INFINITY,
                 o->method, plan_threads(o)) == 0) {
        dptable t = {0};
        b = fast_applies(&x) ? fast_solve(NULL, &x) : solve_top(&x, &t);
        table_free(&t);
    }
    ctx_free(&x);
    return b;
}

static void print_range(FILE *out, const pd_costgraph *g, const pd_stage *st) {
    if (st->n_nodes == 1) fprintf(out, "%s", g->name ? g->name[st->nodes[0]] : "?");
    else fprintf(out, "%s..%s (%d layers)", g->name ? g->name[st->nodes[0]] : "?",
                 g->name ? g->name[st->nodes[st->n_nodes - 1]] : "?", st->n_nodes);
}

void pd_explain(FILE *out, const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                const pd_plan *p) {
    int bott = 0;
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].time_ms > p->stages[bott].time_ms) bott = s;
    fprintf(out, "explain: %d stage%s on %d workers; bottleneck %.6g ms (stage %d: ",
            p->n_stages, p->n_stages == 1 ? "" : "s", p->workers, p->bottleneck_ms, bott);
    print_range(out, g, &p->stages[bott]);
    fprintf(out, ", %d replica%s)\n", p->stages[bott].replicas,
            p->stages[bott].replicas == 1 ? "" : "s");
    fprintf(out, "explain: objective: DP %.6g ms; integer program %s", p->bottleneck_ms,
            p->certificate.status);
    if (strcmp(p->certificate.status, "skipped") && strcmp(p->certificate.status, "infeasible"))
        fprintf(out, " %.6g ms (gap %.3g, %.3g s)", p->certificate.objective, p->certificate.gap,
                p->certificate.seconds);
    fprintf(out, "\n");
    if (p->n_stages == 1) {
        fprintf(out, "explain: no cut: one stage replicated %d times (data parallel) is best; "
                     "data-parallel time %.6g ms\n",
                p->stages[0].replicas, p->data_parallel_ms);
        return;
    }
    unsigned char *upto = calloc((size_t)g->n + 1, 1);
    if (!upto) return;
    for (int s = 0; s + 1 < p->n_stages; s++) {
        const pd_stage *a = &p->stages[s], *b = &p->stages[s + 1];
        for (int k = 0; k < a->n_nodes; k++) upto[a->nodes[k]] = 1;
        fprintf(out, "cut %d: after ", s);
        print_range(out, g, a);
        fprintf(out, " | before ");
        print_range(out, g, b);
        fprintf(out, "\n  crosses %.6g bytes per minibatch (in %.6g ms, both ways); stage %d "
                     "takes %.6g ms on %d, stage %d takes %.6g ms on %d\n",
                a->act_out_bytes, b->comm_in_ms, s, a->time_ms, a->replicas, s + 1, b->time_ms,
                b->replicas);
        double alt = best_without(g, c, o, upto);
        if (isnan(alt))
            fprintf(out, "  alternative: not computed (out of memory)\n");
        else if (!(alt < INFINITY))
            fprintf(out, "  alternative: none: every plan that fits cuts here\n");
        else {
            /* equal within rounding (1e-12): the same bottleneck by another sum order */
            double diff = alt - p->bottleneck_ms;
            if (fabs(diff) <= 1e-12 * fabs(p->bottleneck_ms)) diff = 0;
            fprintf(out, "  why: the best plan that does not cut here has bottleneck %.6g ms "
                         "(%+.6g ms, %+.2f%%)\n",
                    alt, diff, p->bottleneck_ms > 0 ? 100.0 * diff / p->bottleneck_ms : 0);
        }
    }
    free(upto);
}
