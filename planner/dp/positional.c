/* positional.c: the parametric search on the bottleneck for the flattened hierarchy (the default
 * model on several levels, at most N workers, no memory limit; dpctx.hc): a probe per bottleneck
 * T decides whether some plan has every stage time <= T, bisection between the probes, as
 * search.c does on one level.
 *
 * A stage's price depends on its ranks [a, a + r) (cost.h, pd_stage_time_at), but only through
 * a mod U, U = the workers of one unit of the level below the top (the product of every count
 * but the top one): the spans of its rings and the levels of its transfers are the same for a
 * and a + U (the top level's unit is the whole cluster). So of two prefixes that end at the same
 * ideal on positions p < p' with p = p' (mod U), the earlier one dominates: every continuation of
 * the later one, shifted down by p' - p, runs on the earlier one with the same stage times and
 * ends earlier. A probe keeps, for each ideal J, the earliest reachable end position in each
 * residue class mod U (at most U live positions, in increasing order): E(J, rho).
 *
 * Each candidate last stage I..J (C compute, P parameters) is tried against the live positions
 * a of I. Tables over (a mod U, r) hold the ring's ms per byte and the transfers' 2000 / B
 * (pd_stage_time_at's terms), and per r their least and largest over the residues. Per
 * candidate: r >= r_lo = ceil((C + P x the least ring over r' >= C / T) / T); r_s = the first r
 * good at some residue (none before pmax: the candidate is dropped); r_g = the least r from which
 * every r is good at every residue (the largest ring of all, then downwards by the per-r
 * largest terms). The positions [min_a + r_g, N] are then all reachable (the "interval", G = the
 * least min_a + r_g over the candidates), and only the positions below G are tried one by one,
 * r in [r_s, r_g). A position p of J is useful only when the compute after J fits on the N - p
 * workers left: p <= pmax = N - (C(full) - C(J)) / T. Candidates are scanned shortest stage
 * first, so that G falls early and every candidate with min_a + r_lo >= G is skipped unpriced.
 *
 * The probe is exact for T (up to the 1e-9 margins, which only widen what is tried); the search
 * returns the least T a probe accepts, within 1e-12 (relative), as the bottleneck of the plan
 * that probe found, with the fewest workers (the least end position of the full ideal) among
 * the plans <= that T: the plain DP's tie rule on units (dp_pick_units). Among plans with as few
 * workers it may pick another one than the plain DP (the stages can differ, the bottleneck and
 * the workers cannot). */
#include "dp_internal.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>

typedef struct {
    int p, I, a; /* end position; the stage before ends at ideal I on position a */
} pos_entry;

typedef struct {
    int U, N;
    pos_entry *e;        /* S x U: the live positions of each ideal, increasing */
    int *nl;             /* live positions per ideal */
    unsigned *stamp;     /* per position (N + 1): reached in the current ideal's pass */
    int *predI, *predA;  /* per position: the stage found for it */
    unsigned *rstamp;    /* per residue (U): taken */
    unsigned cur;
    double ringw, bmin;  /* max over positions and r of the ring's ms per byte; the least
                            bandwidth */
    /* per residue rho < U and replica count r <= N (index rho * (N + 1) + r): the ring's ms per
     * byte of parameters (pd_ring_ms_span / P) and 2000 / B of the input's and the output's
     * level (pd_stage_time_at's terms) */
    double *ring, *tin, *tout;
    double *mring, *mtin, *mtout; /* per r: the largest of each over the residues */
    double *lring, *ltin, *ltout; /* per r: the least of each over the residues */
    double *sring; /* per r: the least ring over the residues and every r' >= r */
    int *ks, *kg;  /* per candidate of the ideal being solved: see probe */
} pos_ws;

/* pd_stage_time_at's test time <= T from the tables (the same terms, multiplied out) */
static inline int good_at(const pos_ws *w, double C, double P, double in, double out, int first,
                          int last, int a, int r, double T) {
    size_t k = (size_t)(a % w->U) * (size_t)(w->N + 1) + (size_t)r;
    double Tr = T * r;
    if (C + w->ring[k] * P > Tr) return 0;
    if (!first && in * w->tin[k] > Tr) return 0;
    return last || out * w->tout[k] <= Tr;
}

/* Fills the tables (ring, tin, tout, ringw); -1 when out of memory. */
static int pos_tables(pos_ws *w, const pd_cluster *hc) {
    size_t n = (size_t)w->U * (size_t)(w->N + 1);
    w->ring = malloc(sizeof(double) * n);
    w->tin = malloc(sizeof(double) * n);
    w->tout = malloc(sizeof(double) * n);
    w->mring = calloc((size_t)w->N + 1, sizeof(double));
    w->mtin = calloc((size_t)w->N + 1, sizeof(double));
    w->mtout = calloc((size_t)w->N + 1, sizeof(double));
    w->lring = malloc(sizeof(double) * ((size_t)w->N + 1));
    w->ltin = malloc(sizeof(double) * ((size_t)w->N + 1));
    w->ltout = malloc(sizeof(double) * ((size_t)w->N + 1));
    if (!w->lring || !w->ltin || !w->ltout) return -1;
    for (int r = 0; r <= w->N; r++) w->lring[r] = w->ltin[r] = w->ltout[r] = INFINITY;
    w->sring = malloc(sizeof(double) * ((size_t)w->N + 2));
    if (!w->sring) return -1;
    if (!w->ring || !w->tin || !w->tout || !w->mring || !w->mtin || !w->mtout) return -1;
    /* each residue at a representative a = rho + U (a - 1 exists) on the cluster with a top
     * level three times as wide, so that a + r stays inside its one top unit: the terms at any
     * position a' = rho (mod U) of the real cluster with a' + r <= N (the position 0 starts the
     * first stage, which has no input) */
    pd_cluster wide = *hc;
    wide.count[hc->n_levels - 1] *= 3;
    w->ringw = 0;
    for (int rho = 0; rho < w->U; rho++)
        for (int r = 1; r <= w->N; r++) {
            long a = rho + w->U;
            size_t k = (size_t)rho * (size_t)(w->N + 1) + (size_t)r;
            w->ring[k] = pd_ring_ms_span(&wide, a, r, 1.0);
            if (w->ring[k] > w->ringw) w->ringw = w->ring[k];
            w->tin[k] = 2000.0 / wide.bandwidth[pd_rank_level(&wide, a - 1, a + r - 1)];
            w->tout[k] = 2000.0 / wide.bandwidth[pd_rank_level(&wide, a, a + r)];
            if (w->ring[k] > w->mring[r]) w->mring[r] = w->ring[k];
            if (w->tin[k] > w->mtin[r]) w->mtin[r] = w->tin[k];
            if (w->tout[k] > w->mtout[r]) w->mtout[r] = w->tout[k];
            if (w->ring[k] < w->lring[r]) w->lring[r] = w->ring[k];
            if (w->tin[k] < w->ltin[r]) w->ltin[r] = w->tin[k];
            if (w->tout[k] < w->ltout[r]) w->ltout[r] = w->tout[k];
        }
    w->lring[0] = 0;
    w->sring[w->N + 1] = INFINITY;
    for (int r = w->N; r >= 0; r--)
        w->sring[r] = w->lring[r] < w->sring[r + 1] ? w->lring[r] : w->sring[r + 1];
    return 0;
}

/* the guaranteed replica count: every r >= it gives a time <= T at any position */
static inline int r_guaranteed(const pos_ws *w, double C, double P, double in, double out,
                               double T) {
    double need = C + w->ringw * P * (1 + 1e-9), tr = 2000.0 * (in > out ? in : out) / w->bmin;
    if (tr > need) need = tr;
    double r = ceil(need * (1 + 1e-9) / T);
    if (!(r < INT_MAX / 2)) return INT_MAX / 2;
    return r < 1 ? 1 : (int)r;
}

/* From r_guaranteed down: the least r0 such that every r in [r0, rg) is good at every position
 * (by the largest terms over the residues, with the margin), so every r >= r0 is. */
static inline int r_good_from(const pos_ws *w, double C, double P, double in, double out,
                              int first, int last, int rlo, int rg, double T) {
    int r = rg;
    while (r - 1 >= rlo && r - 1 >= 1) {
        int q = r - 1;
        double Tr = T * q * (1 - 1e-9);
        if (C + w->mring[q] * P > Tr || (!first && in * w->mtin[q] > Tr) ||
            (!last && out * w->mtout[q] > Tr))
            break;
        r = q;
    }
    return r;
}

/* From rlo up (below rhi): the first r good at some position (by the least terms over the
 * residues, with the margin); every r before it is bad at every position. */
static inline int r_some_from(const pos_ws *w, double C, double P, double in, double out,
                              int first, int last, int rlo, int rhi, double T) {
    int r = rlo;
    for (; r < rhi; r++) {
        double Tr = T * r * (1 + 1e-9);
        if (C + w->lring[r] * P <= Tr && (first || in * w->ltin[r] <= Tr) &&
            (last || out * w->ltout[r] <= Tr))
            break;
    }
    return r;
}

static inline int r_least(double C, double T) {
    double r = ceil(C * (1 - 1e-9) / T);
    if (!(r < INT_MAX / 2)) return INT_MAX / 2;
    return r < 1 ? 1 : (int)r;
}

/* The candidates I of J: on a chain every I < J, else the strict sub-ideals. */
static inline long n_cand(const dpctx *x, long J) {
    return x->id.chain ? J : x->sub_off[J + 1] - x->sub_off[J];
}
static inline long cand(const dpctx *x, long J, long k) {
    return x->id.chain ? k : x->sub[x->sub_off[J] + k];
}

/* One probe: fills the live positions; returns the least end position of the full ideal
 * (INT_MAX when no plan has every stage <= T). */
static int probe(pos_ws *w, const dpctx *x, double T) {
    long S = x->S, full = S - 1;
    int N = w->N, U = w->U;
    const double *Cc = x->id.compute, *Pc = x->id.params, *cut = x->id.cut;
    double Cfull = Cc[full];
    for (long J = 0; J < S; J++) w->nl[J] = 0;
    w->e[0] = (pos_entry){0, -1, 0};
    w->nl[0] = 1;
    for (long J = 1; J < S; J++) {
        if (J == x->forbid) continue;
        int last = J == full;
        double pm = last ? N : N - (Cfull - Cc[J]) * (1 - 1e-9) / T;
        if (!(pm >= 0)) continue;
        int pmax = pm >= N ? N : (int)floor(pm);
        double outb = last ? 0 : cut[J];
        long nc = n_cand(x, J);
        /* per candidate (w->ks, w->kg): the first r good at some position (-1: none can
         * give a useful position) and the r from which every r is good at every position */
        int G = INT_MAX; /* the interval: every position from G on */
        long gI = -1;
        for (long k = nc - 1; k >= 0; k--) { /* the shortest stages first: G falls early */
            long I = cand(x, J, k);
            w->ks[k] = -1;
            if (!w->nl[I] || (x->pipelined && I == 0 && last)) continue;
            double C = Cc[J] - Cc[I];
            int a0 = w->e[(size_t)I * (size_t)U].p, rl = r_least(C, T);
            if (rl > pmax - a0 || a0 + rl >= G) continue; /* a0 + r >= a0 + r_lo */
            double P = Pc[J] - Pc[I], inb = I == 0 ? 0 : cut[I];
            /* every good r has T r >= C + P x (the least ring over r' >= r_lo) */
            double rl2 = ceil((C + w->sring[rl] * P) * (1 - 1e-9) / T);
            if (rl2 > rl) rl = rl2 > pmax - a0 + 1 ? pmax - a0 + 1 : (int)rl2;
            int rg = r_guaranteed(w, C, P, inb, outb, T);
            int top = pmax - a0 + 1 < rg ? pmax - a0 + 1 : rg, rs = rl;
            if (rs < top) rs = r_some_from(w, C, P, inb, outb, I == 0, last, rl, top, T);
            if (rs >= top && top < rg) continue; /* nothing good up to pmax */
            if (a0 + rs >= G) continue;
            if (rg <= N) rg = r_good_from(w, C, P, inb, outb, I == 0, last, rs, rg, T);
            w->ks[k] = rs;
            w->kg[k] = rg;
            if (a0 + rg < G) {
                G = a0 + rg;
                gI = I;
            }
        }
        int lim = G < pmax + 1 ? G : pmax + 1; /* positions below lim: one by one */
        int plo = INT_MAX;
        if (++w->cur == 0) { /* wrapped: forget every stamp */
            for (int p = 0; p <= N; p++) w->stamp[p] = 0;
            for (int q = 0; q < U; q++) w->rstamp[q] = 0;
            w->cur = 1;
        }
        for (long k = 0; k < nc; k++) {
            int rlo = w->ks[k], rhi = w->kg[k];
            if (rlo < 0) continue;
            long I = cand(x, J, k);
            const pos_entry *li = w->e + (size_t)I * (size_t)U;
            if (li[0].p + rlo >= lim) continue;
            double C = Cc[J] - Cc[I], P = Pc[J] - Pc[I], inb = I == 0 ? 0 : cut[I];
            for (int q = 0; q < w->nl[I] && li[q].p + rlo < lim; q++) {
                int a = li[q].p;
                for (int r = rlo; r < rhi && a + r < lim; r++) {
                    int p = a + r;
                    if (w->stamp[p] == w->cur) continue;
                    if (good_at(w, C, P, inb, outb, I == 0, last, a, r, T)) {
                        w->stamp[p] = w->cur;
                        w->predI[p] = (int)I;
                        w->predA[p] = a;
                        if (p < plo) plo = p;
                    }
                }
            }
        }
        /* the live positions: the earliest in each residue, increasing */
        pos_entry *lj = w->e + (size_t)J * (size_t)U;
        int n = 0;
        for (int p = plo; p < lim && n < U; p++) {
            if (w->stamp[p] != w->cur || w->rstamp[p % U] == w->cur) continue;
            w->rstamp[p % U] = w->cur;
            lj[n++] = (pos_entry){p, w->predI[p], w->predA[p]};
        }
        if (gI >= 0)
            for (int p = G; p <= pmax && n < U; p++) {
                if (w->rstamp[p % U] == w->cur) continue;
                w->rstamp[p % U] = w->cur;
                lj[n++] = (pos_entry){p, (int)gI, w->e[(size_t)gI * (size_t)U].p};
            }
        w->nl[J] = n;
    }
    return w->nl[full] ? w->e[(size_t)full * (size_t)U].p : INT_MAX;
}

/* The plan of the last probe (ending on its least position): its stages (into fl when not NULL)
 * and its actual bottleneck; NAN when out of memory or the walk fails. */
static double probe_plan(flat_list *fl, const pos_ws *w, const dpctx *x) {
    long full = x->S - 1;
    int U = w->U, n = 0;
    /* walk back from the end, then emit in order */
    int cap = 64;
    int *sI = malloc(sizeof(int) * (size_t)cap * 3);
    if (!sI) return NAN;
    long J = full;
    pos_entry cur = w->e[(size_t)full * (size_t)U];
    while (J != 0) {
        if (n == cap) {
            int *t = realloc(sI, sizeof(int) * (size_t)cap * 6);
            if (!t) {
                free(sI);
                return NAN;
            }
            sI = t;
            cap *= 2;
        }
        sI[3 * n] = cur.I;
        sI[3 * n + 1] = (int)J;
        sI[3 * n + 2] = cur.p;
        n++;
        long I = cur.I;
        if (I < 0) {
            free(sI);
            return NAN;
        }
        const pos_entry *li = w->e + (size_t)I * (size_t)U;
        int q = 0;
        while (q < w->nl[I] && li[q].p != cur.a) q++;
        if (q == w->nl[I]) {
            free(sI);
            return NAN;
        }
        J = I;
        cur = li[q];
    }
    double worst = 0;
    int N = w->N;
    for (int q = n - 1; q >= 0; q--) {
        long I = sI[3 * q], Jq = sI[3 * q + 1];
        int p = sI[3 * q + 2];
        int a = q == n - 1 ? 0 : sI[3 * (q + 1) + 2], r = p - a;
        pd_stage_sums ss;
        stage_sums(&ss, x, 0, I, Jq, I == 0, Jq == full);
        pd_stage_cost c;
        dp_stage_eval(&c, x, 0, &ss, r, N - p, a);
        if (c.time_ms > worst) worst = c.time_ms;
        if (fl) {
            flat_stage f = {.I = I, .J = Jq, .replicas = r, .c0 = c, .mult = 1,
                            .time_ms = c.time_ms, .in_ms = c.comm_in_ms, .out_ms = c.comm_out_ms};
            f.rl[0] = r;
            if (dp_flat_push(fl, &f)) {
                free(sI);
                return NAN;
            }
        }
    }
    free(sI);
    return worst;
}

/* 1 when the positional search is used: the flattened hierarchy, at most N, no memory limit
 * (the memory of a stage depends on the workers after it); by default from 128 workers on (below,
 * the windowed DP is as fast). */
int dp_pos_applies(const dpctx *x) {
    if (!x->hc || !x->atmost || x->L != 1 || after_matters(x, 0) || x->method == PD_METHOD_PLAIN)
        return 0;
    return x->method == PD_METHOD_PARAMETRIC || x->c->count[0] >= 128;
}

/* The positional search; fills fl (when not NULL) with the plan. INFINITY when nothing fits,
 * NAN when out of memory. */
double dp_pos_solve(flat_list *fl, dpctx *x) {
    const pd_cluster *hc = x->hc;
    long S = x->S;
    pos_ws w = {0};
    w.N = x->c->count[0];
    w.U = w.N / hc->count[hc->n_levels - 1];
    if (w.U < 1) w.U = 1;
    w.bmin = INFINITY;
    for (int l = 0; l < hc->n_levels; l++)
        if (hc->bandwidth[l] < w.bmin) w.bmin = hc->bandwidth[l];
    w.e = malloc(sizeof(pos_entry) * (size_t)S * (size_t)w.U);
    w.nl = malloc(sizeof(int) * (size_t)S);
    w.stamp = calloc((size_t)w.N + 1, sizeof(unsigned));
    w.predI = malloc(sizeof(int) * ((size_t)w.N + 1));
    w.predA = malloc(sizeof(int) * ((size_t)w.N + 1));
    w.rstamp = calloc((size_t)w.U, sizeof(unsigned));
    w.ks = malloc(sizeof(int) * (size_t)S);
    w.kg = malloc(sizeof(int) * (size_t)S);
    double res = NAN;
    if (!w.e || !w.nl || !w.stamp || !w.predI || !w.predA || !w.rstamp || !w.ks || !w.kg ||
        pos_tables(&w, hc))
        goto done;
    res = INFINITY;
    int N = w.N;
    double lo = x->id.compute[S - 1] / N, hi = INFINITY, T = lo;
    x->probes = 0;
    while (!(hi < INFINITY)) { /* the upper end: the first feasible of lo, 2 lo, 4 lo, ... */
        x->probes++;
        if (probe(&w, x, T) <= N) {
            hi = probe_plan(NULL, &w, x);
            if (isnan(hi)) goto oom;
        } else if (!(T < INFINITY)) {
            goto done; /* nothing fits at all */
        } else {
            lo = T;
            T = T > 0 && T * 2 < INFINITY && x->probes < 64 ? T * 2 : INFINITY;
        }
    }
    /* invariant: every T < lo is infeasible (up to the margins), hi is a plan's bottleneck */
    for (int last = 0; lo < hi && !last;) {
        double mid = dp_bisect_mid(lo, hi, &last);
        x->probes++;
        if (probe(&w, x, mid) <= N) {
            double a = probe_plan(NULL, &w, x);
            if (isnan(a)) goto oom;
            hi = a < hi ? a : hi;
            last = 0;
        } else {
            lo = mid;
        }
    }
    /* the tie rule: the fewest workers within 1e-12 of the best */
    x->probes++;
    if (probe(&w, x, hi + fabs(hi) * 1e-12) > N) goto done; /* cannot happen */
    res = probe_plan(fl, &w, x);
    goto done;
oom:
    res = NAN;
done:
    free(w.e);
    free(w.nl);
    free(w.stamp);
    free(w.predI);
    free(w.predA);
    free(w.rstamp);
    free(w.ring);
    free(w.tin);
    free(w.tout);
    free(w.mring);
    free(w.mtin);
    free(w.mtout);
    free(w.lring);
    free(w.sring);
    free(w.ks);
    free(w.kg);
    free(w.ltin);
    free(w.ltout);
    return res;
}
