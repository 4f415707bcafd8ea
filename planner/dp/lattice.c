/* lattice.c: the exact search over every ideal of a DAG too large for the DP's tables (one level,
 * no memory limit, no --straight; both cost models), by bisection on the bottleneck with a probe
 * that is linear in the lattice's edges instead of quadratic in its ideals.
 *
 * A probe at T computes need[I], the fewest workers that run the stages after ideal I (to the
 * full set) with every stage time at most T, from the full set down. On one level a stage (I, J)
 * on r replicas takes at most T exactly when
 *     (C_J + k_r P_J) - (C_I + k_r P_I) <= r T,  in(I) / r <= T,  out(J) / r <= T
 * (C, P the ideals' cumulative compute and parameter bytes, k_r = 2000 (r - 1) / (r B), doubled
 * under --compat pipedream, whose all-reduce is 4 (r - 1) P / (r B); in, out the transfers of the
 * cut bytes, none into the first stage or out of the last, and under compat none out of the
 * first): a condition on J alone, one on I alone, and one on the difference of a value of J and
 * one of I. So for each ideal I and each pair (r, q) the search keeps
 *     M_I[r][q] = min over J containing I (J = I included) with need[J] <= q and out(J) / r <= T
 *                 of C_J + k_r P_J,
 * which is the least over I's covers (the ideals one node larger: every strict superset is
 * reached through one) and I's own value. need[I] = min r + q over the (r, q) with
 * M_K[r][q] - (C_I + k_r P_I) <= r T for a cover K and in(I) / r <= T: one pass over the
 * lattice's edges, N (N + 1) / 2 entries each. The first stage (I = the empty set, whose out term
 * differs under compat) is checked against every J directly. Feasible when need[empty] <= N.
 * Under compat, which uses exactly N workers, q counts the workers after J exactly: F[I], a mask
 * of the counts the stages after I can take, replaces need[I], and M_I[r][q] takes the J whose
 * mask has q (the same work per probe). A feasible probe gives a plan (each stage's end found again
 * by a scan for the first J that passes the test with need[J] <= q), priced by the cost model
 * (pd_stage_cost_eval): a new incumbent. Only two levels of the lattice (ideals of sizes s and
 * s + 1) keep their M at a time. docs/planner.md, "The lattice search"; test_dp checks it
 * against the exhaustive search. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_internal.h"

typedef struct {
    const pd_costgraph *g;
    const pd_cluster *c;
    pd_cost_model cm;
    int pipelined;   /* no plan of one stage (pd_plan_opts.pipelined) */
    int N, nv;       /* workers; entries per ideal, N (N + 1) / 2 rounded up to a multiple of 8 */
    double B, kmul;  /* bandwidth; 1, or 2 under compat */
    pd_ideals id;
    long *off;       /* covers (ideals.h) */
    int *cov;
    long *lstart;    /* first ideal of each size, size n + 1 the end */
    long wmax;       /* the widest level */
    int base[65];    /* entries of r start at base[r] */
    double *up, *cur; /* M of the level above and of the level being done */
    int *need;
    unsigned char *rep; /* the r that gives need[I] */
    uint64_t *F;     /* compat (exactly N workers): F[I] bit w = the stages after I can take
                        exactly w workers (w < N: the first stage takes one or more) */
    long first_j;    /* the first stage's end in the last probe */
    double T;        /* the last probe's bottleneck */
} lattice;

static double kappa(const lattice *L, int r) {
    return L->kmul * 2000.0 * (r - 1) / ((double)r * L->B);
}

/* 1 when stage (I, J) on r replicas passes the probe's test at T (I not the empty set) */
static int stage_ok(const lattice *L, long I, long J, int r, double T) {
    const pd_ideals *id = &L->id;
    double k = kappa(L, r);
    if (2000.0 * id->cut[I] / L->B > r * T) return 0;
    if (J != id->count - 1 && 2000.0 * id->cut[J] / L->B > r * T) return 0;
    return id->compute[J] + k * id->params[J] - (id->compute[I] + k * id->params[I]) <= r * T;
}

/* One probe; fills need and rep; returns need[0] (N + 1 when more than N). */
static int probe(lattice *L, double T) {
    const pd_ideals *id = &L->id;
    long S = id->count, full = S - 1;
    int N = L->N, nv = L->nv, none = N + 1;
    double B = L->B;
    L->T = T;
    for (int sz = id->n; sz >= 1; sz--) {
        long a = L->lstart[sz], b = L->lstart[sz + 1];
        long ua = L->lstart[sz + 1]; /* the level above, which holds the covers */
        for (long I = a; I < b; I++) {
            double *restrict m = L->cur + (size_t)(I - a) * (size_t)nv;
            long k0 = L->off[I], k1 = L->off[I + 1];
            if (k0 == k1) {
                for (int e = 0; e < nv; e++) m[e] = INFINITY;
            } else {
                memcpy(m, L->up + (size_t)(L->cov[k0] - ua) * (size_t)nv, sizeof(double) * (size_t)nv);
                for (long k = k0 + 1; k < k1; k++) {
                    const double *restrict mk = L->up + (size_t)(L->cov[k] - ua) * (size_t)nv;
                    for (int e = 0; e < nv; e++) m[e] = mk[e] < m[e] ? mk[e] : m[e];
                }
            }
            int best = none, br = 0;
            uint64_t mask = 0;
            if (I == full) {
                best = 0;
                mask = 1;
            } else if (L->F) { /* exact counts: every (r, q) that passes, q + r < N */
                double in = 2000.0 * id->cut[I] / B;
                for (int r = 1; r < N; r++) {
                    if (in > r * T) continue;
                    double gI = id->compute[I] + kappa(L, r) * id->params[I];
                    const double *mr = m + L->base[r];
                    for (int q = 0; q + r < N; q++)
                        if (mr[q] - gI <= r * T) mask |= 1ull << (q + r);
                }
                if (mask) best = __builtin_ctzll(mask);
            } else {
                double in = 2000.0 * id->cut[I] / B;
                for (int r = 1; r < best; r++) {
                    if (in > r * T) continue;
                    double gI = id->compute[I] + kappa(L, r) * id->params[I];
                    const double *mr = m + L->base[r];
                    for (int q = 0; q <= N - r && q + r < best; q++)
                        if (mr[q] - gI <= r * T) {
                            best = q + r;
                            br = r;
                            break;
                        }
                }
            }
            L->need[I] = best;
            L->rep[I] = (unsigned char)br;
            if (L->F) L->F[I] = mask;
            if (best > N) continue;
            double out = I == full ? 0 : 2000.0 * id->cut[I] / B;
            for (int r = 1; r <= N - best; r++) {
                if (out > r * T) continue;
                double h = id->compute[I] + kappa(L, r) * id->params[I];
                double *mr = m + L->base[r];
                for (int q = best; q <= N - r; q++)
                    if (h < mr[q] && (!L->F || (q < 64 && (mask >> q) & 1u))) mr[q] = h;
            }
        }
        double *t = L->up;
        L->up = L->cur;
        L->cur = t;
    }
    /* the first stage: in = 0, and under compat no out either; under compat the stages after
     * it take exactly N - r workers */
    int best = L->need[0] = none;
    int compat = L->cm == PD_COST_PIPEDREAM;
    for (long J = 1; J < S && !(L->F && best <= N); J++) {
        int nj = L->need[J];
        if (nj >= best - 1 || (L->pipelined && J == full)) continue;
        double out = J == full || compat ? 0 : 2000.0 * id->cut[J] / B;
        for (int r = 1; r + nj < best; r++) {
            if (out > r * T) continue;
            if (L->F && !((L->F[J] >> (N - r)) & 1u)) continue;
            double k = kappa(L, r);
            if (id->compute[J] + k * id->params[J] - (id->compute[0] + k * id->params[0]) <= r * T) {
                best = L->F ? N : r + nj;
                L->first_j = J;
                L->rep[0] = (unsigned char)r;
                break;
            }
        }
    }
    L->need[0] = best;
    return best;
}

/* The next boundary after ideal I (not empty) in the last probe's plan, the stages after I
 * taking w workers: the first J containing I and r with w - r workers possible after J (at most,
 * or under compat exactly) that pass the stage's test (one exists: the probe found it through
 * I's covers); *r its replicas. -1 when none (cannot happen). */
static long successor(const lattice *L, long I, int w, int *rr) {
    const pd_ideals *id = &L->id;
    for (int r = L->F ? 1 : L->rep[I]; r <= (L->F ? w : L->rep[I]); r++) {
        int q = w - r;
        for (long J = I + 1; J < id->count; J++) {
            int ok = L->F ? (int)((L->F[J] >> q) & 1u) : L->need[J] <= q;
            if (ok && pd_ideal_subset(id, I, J) && stage_ok(L, I, J, r, L->T)) {
                *rr = r;
                return J;
            }
        }
    }
    return -1;
}

/* The plan of the last (feasible) probe, priced by the cost model (NULL on OOM). */
static pd_plan *probe_plan(lattice *L, double *bottleneck) {
    long full = L->id.count - 1;
    flat_list fl = {0};
    dpctx x;
    memset(&x, 0, sizeof x);
    x.g = L->g;
    x.c = L->c;
    x.cm = L->cm;
    x.L = 1;
    x.forbid = -1;
    x.bound = INFINITY;
    pd_cost_level_of(&x.lv[0], L->c, L->g, 0);
    x.id = L->id;
    x.S = L->id.count;
    int n = 0, used = 0;
    long I[66]; /* the boundaries: at most N <= 64 stages, of one replica or more each */
    int R[66];
    /* w: the workers of the stages from `at` on (under compat exactly, else need[at]) */
    int w = L->F ? L->N : L->need[0];
    for (long at = 0; at != full;) {
        int r = L->rep[0];
        long next = at ? successor(L, at, w, &r) : L->first_j;
        if (next < 0 || n == 64) return NULL; /* cannot happen: at most N <= 64 stages */
        I[n] = at;
        R[n] = r;
        used += r;
        n++;
        at = next;
        w = L->F ? w - r : L->need[at];
    }
    I[n] = full;
    double worst = 0;
    int after = used;
    pd_plan *p = NULL;
    for (int s = 0; s < n; s++) {
        pd_stage_sums ss;
        stage_sums(&ss, &x, 0, I[s], I[s + 1], s == 0, s == n - 1);
        after -= R[s];
        pd_stage_cost c;
        pd_stage_cost_eval(&c, &ss, &x.lv[0], x.cm, R[s], after);
        if (c.time_ms > worst) worst = c.time_ms;
        flat_stage f = {.I = I[s], .J = I[s + 1], .replicas = R[s], .c0 = c, .mult = 1,
                        .time_ms = c.time_ms, .in_ms = c.comm_in_ms, .out_ms = c.comm_out_ms};
        f.rl[0] = R[s];
        if (dp_flat_push(&fl, &f)) goto done;
    }
    p = dp_build_plan(&x, &fl, worst);
    *bottleneck = worst;
done:
    free(fl.v);
    return p;
}

static void lattice_free(lattice *L) {
    pd_ideals_free(&L->id);
    free(L->off);
    free(L->cov);
    free(L->lstart);
    free(L->up);
    free(L->cur);
    free(L->need);
    free(L->rep);
    free(L->F);
}

/* The bytes one ideal takes here besides its covers and M: its bitset and size (grown by
 * doubling), its four sums, the hash slots (at most 4 per ideal, 8 bytes each), its cover
 * offset (grown by doubling), need, rep and F. */
static long bytes_per_ideal(const pd_costgraph *g) {
    long W = (g->n + 63) / 64;
    return 2 * (W * 8 + 4) + 4 * 8 + 4 * 8 + 2 * 8 + 5 + 8;
}

int dp_lattice_search(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                      double budget, double seconds, double *lo, double *hi, pd_plan **best,
                      long *states, int *probes) {
    *best = NULL;
    *states = 0;
    *probes = 0;
    int N = c->count[0];
    if (c->n_levels != 1 || N < 1 || N > 64 || c->memory_bytes > 0 || o->straight || !(*hi > *lo))
        return -1;
    clock_t t0 = clock();
    lattice L;
    memset(&L, 0, sizeof L);
    L.g = g;
    L.c = c;
    L.cm = o->cost_model;
    L.pipelined = o->pipelined;
    L.N = N;
    L.nv = (N * (N + 1) / 2 + 7) / 8 * 8;
    L.B = c->bandwidth[0];
    L.kmul = L.cm == PD_COST_PIPEDREAM ? 2 : 1;
    for (int r = 1, e = 0; r <= N; r++) {
        L.base[r] = e;
        e += N - r + 1;
    }
    /* sized before it is built: half the budget for the ideals, a quarter for the covers (each
     * an int, grown by doubling), the rest for the two levels of M (checked once the widest
     * level is known) */
    long per = bytes_per_ideal(g);
    long max_states = (long)(budget / 2 / per), max_covers = (long)(budget / 4 / 8);
    int rc = -1;
    if (max_states < 2 || max_covers < 1 ||
        pd_ideals_enumerate_covers(&L.id, g, max_states, max_covers, &L.off, &L.cov) ||
        !L.id.complete)
        goto done;
    long S = L.id.count;
    int n = g->n;
    L.lstart = calloc((size_t)n + 2, sizeof(long));
    if (!L.lstart) goto done;
    for (int sz = 0, k = 0; sz <= n + 1; sz++) {
        while (k < S && L.id.size[k] < sz) k++;
        L.lstart[sz] = k;
    }
    L.lstart[n + 1] = S;
    for (int sz = 0; sz <= n; sz++)
        if (L.lstart[sz + 1] - L.lstart[sz] > L.wmax) L.wmax = L.lstart[sz + 1] - L.lstart[sz];
    double mbytes = 2.0 * (double)L.wmax * L.nv * sizeof(double);
    if (mbytes > budget / 4) goto done;
    L.up = malloc((size_t)L.wmax * (size_t)L.nv * sizeof(double));
    L.cur = malloc((size_t)L.wmax * (size_t)L.nv * sizeof(double));
    L.need = malloc(sizeof(int) * (size_t)S);
    L.rep = malloc((size_t)S);
    if (L.cm == PD_COST_PIPEDREAM && !(L.F = malloc(sizeof(uint64_t) * (size_t)S))) goto done;
    if (!L.up || !L.cur || !L.need || !L.rep) goto done;
    *states = S;
    rc = 0;
    /* Alternating probes: just below the incumbent (infeasible there proves it optimal), then
     * the middle of what is left; every probe either raises lo or lowers hi. */
    double last = 0; /* CPU seconds of the last probe: no probe starts that would pass `seconds` */
    for (int just_below = 1; *hi > *lo * (1 + 1e-9); just_below = !just_below) {
        clock_t t1 = clock();
        if ((double)(t1 - t0) / CLOCKS_PER_SEC + last > seconds) break;
        double T = just_below ? *hi * (1 - 1e-10) : 0.5 * (*lo + *hi);
        (*probes)++;
        int need = probe(&L, T);
        last = (double)(clock() - t1) / CLOCKS_PER_SEC;
        if (need > N) {
            if (T > *lo) *lo = T;
            continue;
        }
        double b = INFINITY;
        pd_plan *p = probe_plan(&L, &b);
        if (!p || !(b < *hi)) { /* no plan of exactly N (compat), or the price disagrees */
            pd_plan_free(p);
            break;
        }
        pd_plan_free(*best);
        *best = p;
        *hi = b;
    }
done:
    lattice_free(&L);
    return rc;
}
