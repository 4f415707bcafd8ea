/* inner_threads.c: the inner levels of a hierarchy, row by row (inner_row), on a pool of
 * threads (inner_level); --threads or the processors this process may run on (plan_threads). */
#include "dp_internal.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* Row s of inner level l: x->inner[l][s S + J] = level l's best for s..J on its units, for
 * every J. t and acc (the memory loop's per-count results, NULL without it) are workspaces. */
static void inner_row(dpctx *x, int l, long s, dptable *t, double *acc) {
    long S = x->S;
    int N = x->c->count[l];
    double *dst = x->inner[l] + (size_t)s * (size_t)S;
    if (!acc) {
        dp_level_dp(t, x, l, s);
        for (long J = s + 1; J < S; J++) {
            const double *row = t->fin + (size_t)J * (size_t)(N + 1);
            int m = dp_pick_units(row, 1, x->atmost ? 1 : N, N);
            dst[J] = m < 0 ? INFINITY : row[m];
        }
        return;
    }
    for (int M = 1; M <= N; M++) {
        x->lv[l].workers = M;
        dp_level_dp(t, x, l, s);
        for (long J = s + 1; J < S; J++)
            acc[(size_t)J * (size_t)(N + 1) + (size_t)M] =
                t->fin[(size_t)J * (size_t)(M + 1) + (size_t)M];
    }
    x->lv[l].workers = N;
    for (long J = s + 1; J < S; J++) {
        const double *row = acc + (size_t)J * (size_t)(N + 1);
        int m = dp_pick_units(row, 1, 1, N);
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
    w.memo = dp_memo_new(&w, &err);
    if (!w.inrange || err || dp_table_alloc(&t, w.S, N, w.cm == PD_COST_PIPEDREAM) ||
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
    dp_table_free(&t);
    free(w.inrange);
    dp_memo_free(w.memo);
    return NULL;
}

/* Fills x->inner[l] (every entry INFINITY on entry) on up to `threads` threads; -1 when out of
 * memory. Small graphs stay on the calling thread. */
int dp_inner_level(dpctx *x, int l, int threads) {
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
int dp_plan_threads(const pd_plan_opts *o) {
    if (o->threads > 0) return o->threads;
    long n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
    if (n <= 0) n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < MAX_THREADS ? n : MAX_THREADS) : 1;
}
