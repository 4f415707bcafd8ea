/* recurrence.c: the DP's core recurrence for one level and one start ideal (level_dp): its
 * tables (dptable), the cache of stage costs (stage_memo) and the base case (s..J as one
 * stage); the recurrence over the last stage I..J
 * runs in window.c (windowed_recurrence). */
#include "dp_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void dp_memo_free(struct stage_memo *m) {
    if (!m) return;
    free(m->e);
    free(m->stamp);
    free(m);
}

void dp_table_free(dptable *t) {
    free(t->open);
    if (t->fin != t->open) free(t->fin);
    free(t->oI);
    free(t->oR);
    if (t->fI != t->oI) free(t->fI);
    if (t->fR != t->oR) free(t->fR);
    memset(t, 0, sizeof *t);
}

int dp_table_alloc(dptable *t, long S, int N, int same) {
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


/* relax's cache of stage costs (window.c), S x (largest count + 1) entries; NULL (and *err = 0)
 * when that is too large (relax then prices every call), NULL with *err = 1 when out of memory. */
struct stage_memo *dp_memo_new(const dpctx *x, int *err) {
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
        dp_memo_free(m);
        *err = 1;
        return NULL;
    }
    return m;
}


/* Fills t for level l from start ideal s. */
void dp_level_dp(dptable *t, const dpctx *x, int l, long s) {
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
        if (isfinite(ss.compute_ms) && !(x->pipelined && J == full && l == x->L - 1)) {
            for (int r = 1; r <= rmax; r++) {
                if (!dp_suffix_ok(x, l, s, J, r)) continue;
                pd_stage_cost c;
                dp_stage_eval(&c, x, l, &ss, r, N - r, 0);
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
        dp_windowed_recurrence(t, x, l, s, J, open_last, fin_last);
    }
}
