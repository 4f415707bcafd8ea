/* dp_internal.h: what the files of the DP (planner/dp/) share and nothing else includes: the
 * context (dpctx), the tables one level is solved into (dptable), the cache of stage costs, the
 * flat stages a plan is reconstructed into, the small stage-pricing helpers every part uses
 * (inline: they sit in the inner loops), and each file's entry points.
 *
 *   recurrence.c     level_dp: the recurrence for one level and start ideal; the tables
 *   window.c         the windowed recurrence: the candidate windows of each (J, m, r); relax
 *   levels.c         the context; one level's solve (level_solve) and the top level's (solve_top)
 *   inner_threads.c  the inner levels of a hierarchy on a pool of threads
 *   search.c         the parametric search on the bottleneck (one level, default model)
 *   positional.c     the same for the flattened hierarchy (positions modulo a unit)
 *   reconstruct.c    the plan from the tables (reconstruct, build_plan)
 *   explain.c        --explain
 *   dp.c             pd_plan_dp: the passes, the diagnostics when nothing fits */
#ifndef PD_DP_INTERNAL_H
#define PD_DP_INTERNAL_H

#include "dp.h"

#include <limits.h>
#include <math.h>

#include "ideals.h"
#include "planner/cost/cost.h"

#define DEFAULT_MAX_STATES 20000L /* GNMT-16's 16,886 ideals: 1.7 s on 16 workers, 4.7 s on 4x4 */
#define DEFAULT_MEMORY_BUDGET 2147483648.0 /* bytes (2 GiB) the DP's tables may take */
#define LATTICE_SECONDS 8.0 /* CPU seconds a plan over the cap may take with the lattice search
                               (lattice.c; at least 1 s of them for its probes) */
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
    /* The default model on several levels plans the flattened pipeline directly (docs/planner.md,
     * "One price"): one level of every worker (flatc, which c points to), a stage's price
     * depending on its ranks, [m - r, m) for the stage that ends on m units (pd_stage_time_at
     * over the real cluster hc). NULL otherwise. */
    const pd_cluster *hc;
    pd_cluster flatc;
    int pipelined; /* pd_plan_opts.pipelined: the top level has no one-stage base case */
    int shallow_warmup; /* pd_plan_opts.shallow_warmup: PipeDream's warm-up for every plan */
} dpctx;

/* The recurrence tries the same last stage (I..J, r replicas) once per unit count m; its cost
 * does not depend on m, so relax prices it once per J (level_dp bumps the stamp at every J).
 * Entry I * (nmax + 1) + r. */
typedef struct {
    double to, tf, m0, slope, cap;
    int ok; /* the stage's compute is finite */
} stage_memo_entry;

struct stage_memo {
    stage_memo_entry *e;
    unsigned *stamp;
    unsigned cur;
    int nmax;
};

typedef struct {
    int N;
    double *open, *fin;
    int *oI, *oR, *fI, *fR;
} dptable;

/* compute cost of stage I..J at level l */
static inline double stage_T(const dpctx *x, int l, long I, long J) {
    if (l == 0) return x->id.compute[J] - x->id.compute[I];
    return x->inner[l - 1][(size_t)I * (size_t)x->S + (size_t)J];
}

static inline void stage_sums(pd_stage_sums *s, const dpctx *x, int l, long I, long J, int first,
                       int last) {
    s->compute_ms = stage_T(x, l, I, J);
    s->param_bytes = x->id.params[J] - x->id.params[I];
    s->act_bytes = x->id.acts[J] - x->id.acts[I];
    s->in_bytes = x->id.cut[I];
    s->out_bytes = x->id.cut[J];
    s->first = first;
    s->last = last;
}

/* Prices the stage of sums ss on r replicas with `after` units later at level l; under the
 * flattened hierarchy (x->hc) on the ranks [a, a + r). */
static inline void dp_stage_eval(pd_stage_cost *c, const dpctx *x, int l, const pd_stage_sums *ss,
                                 int r, int after, long a) {
    if (x->hc) pd_stage_cost_at(c, ss, x->hc, x->g, a, r, after, x->lv[0].replicated_warmup);
    else pd_stage_cost_eval(c, ss, &x->lv[l], x->cm, r, after);
}

/* memory grows linearly with the warm-up up to a cap (memory.h: the minibatches in flight are
 * w + 1, min(w + 1, n) or a constant; zb's a constant up to its bound on the warm-up, then no
 * plan): mem(after) = min(m0 + w * slope, cap), the warm-up w = pd_warmup_depth(after, r, ...)
 * (plan.h) and slope the bytes of one warm-up step */
static inline int fits_after(const pd_cost_level *lv, double m0, double slope, double cap, int r,
                             int after) {
    if (!(lv->memory_bytes > 0)) return 1;
    int w = pd_warmup_depth(after, r, lv->replicated_warmup);
    if ((lv->mem.schedule == PD_MEM_ZB_H1 || lv->mem.schedule == PD_MEM_ZB_H2) &&
        w > lv->mem.max_warmup)
        return 0; /* zb: the plans under this bound on the largest warm-up (memory.h) */
    double m = m0 + w * slope;
    return (m < cap ? m : cap) <= lv->memory_bytes;
}

/* Workers after a stage that put its warm-up past every schedule's cap (pd_mem_in_flight). */
#define DP_DEEP_AFTER (INT_MAX / 2)

/* The time of a priced stage had it been the last of its range (pd_stage_sums.last = 1): the
 * flag only drops the output transfer, and the time is the largest of compute + all-reduce and
 * the transfers (cost.h), so this is the same number pd_stage_cost_eval gives with last = 1
 * (one pricing instead of two per stage). */
static inline double time_as_last(const pd_stage_cost *c) {
    double t = c->compute_ms + c->allreduce_ms;
    return c->comm_in_ms > t ? c->comm_in_ms : t;
}

/* 1 when a stage's cost at level l depends on the units after it (only its memory does, and only
 * where the cost model checks memory). */
static inline int after_matters(const dpctx *x, int l) {
    return x->lv[l].memory_bytes > 0 && (x->cm == PD_COST_PIPEDREAM || x->lv[l].innermost);
}

/* 1 when a stage's cost at level l is its time alone under the default model (no memory check
 * there): priced inline with pd_stage_time_default (cost.h), the number pd_stage_cost_eval gives. */
static inline int times_only(const dpctx *x, int l) {
    return x->cm == PD_COST_DEFAULT && !after_matters(x, l);
}
/* ---- reconstruction (reconstruct.c; the parametric search fills the same list) ---- */

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

/* The enclosing outer stages of a level being reconstructed (all zero but mult = 1 and replicas
 * at the top level). */
typedef struct {
    int mult;             /* product of the replicas of the enclosing outer stages */
    double time_ms;       /* their largest stage time per global minibatch so far */
    double allreduce_ms;  /* their all-reduce per global minibatch */
    double in_ms, out_ms; /* the enclosing stage's transfers in and out per global minibatch */
    const int *replicas;  /* replicas at each enclosing level (PD_MAX_LEVELS entries) */
} dp_enclosing;

/* recurrence.c */
void dp_table_free(dptable *t);
int dp_table_alloc(dptable *t, long S, int N, int same);
struct stage_memo *dp_memo_new(const dpctx *x, int *err);
void dp_memo_free(struct stage_memo *m);
void dp_level_dp(dptable *t, const dpctx *x, int l, long s);

/* window.c */
int dp_cidx_build(dpctx *x);
int dp_suffix_ok(const dpctx *x, int l, long s, long J, int m);
void dp_windowed_recurrence(dptable *t, const dpctx *x, int l, long s, long J, int open_last,
                            int fin_last);

/* levels.c */
int dp_pick_units(const double *v, size_t stride, int lo, int hi);
double dp_level_solve(dptable *t, dpctx *x, int l, long s, long e, int *M, int *m);
double dp_solve_top(dpctx *x, dptable *t);
int dp_ctx_init(dpctx *x, const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm,
                int straight, long max_states, const unsigned char *forbid, int method,
                int threads);
void dp_ctx_free(dpctx *x);

/* inner_threads.c */
int dp_inner_level(dpctx *x, int l, int threads);
int dp_plan_threads(const pd_plan_opts *o);

/* The next probe of a bisection on the bottleneck between lo (infeasible) and hi (a plan's
 * bottleneck): the middle, or once they are within 4e-12 (relative) just below hi, with
 * *last = 1 (if that probe fails, hi is the best within 1e-12). search.c and positional.c. */
static inline double dp_bisect_mid(double lo, double hi, int *last) {
    double eps = fabs(hi) * 1e-12;
    if (hi - lo <= 4 * eps) {
        *last = 1;
        return hi - eps;
    }
    return lo + (hi - lo) / 2;
}

/* search.c */
int dp_fast_applies(const dpctx *x);
double dp_fast_solve(flat_list *fl, dpctx *x);

/* positional.c */
int dp_pos_applies(const dpctx *x);
double dp_pos_solve(flat_list *fl, dpctx *x);

/* the most ideals of relax.c's contracted graphs (the bound's test per probe is over their
 * pairs; the widened family is planned over by the DP) */
#define RELAX_STATES 6000L

/* relax.c: a proven lower bound on the best bottleneck of g on one level of N workers at
 * bandwidth B (bytes/s) under the default model (compat = 0) or --compat pipedream (compat = 1; a
 * plan there uses exactly N workers, the relaxation at most N), without --straight (any memory
 * limit), at least
 * lo and found between lo and hi (a plan's bottleneck) by bisection over a graph with chains
 * contracted, whose ideals number at most max_states; lo where no such graph exists. */
double dp_chain_relaxation_bound(const pd_costgraph *g, int N, double B, int compat, double lo,
                                 double hi, long max_states);

/* relax.c: adds to id (the principal ideals of g, id->complete = 0) the ideals of g made of
 * whole segments of its chains (relax.c), as many as max_states allows, keeping the family
 * sorted by size. Every plan over the family is a plan of g, so the DP stays a plan's search
 * (not exact; the bound says how far). 0, or -1 on OOM. */
int dp_widen_family(pd_ideals *id, const pd_costgraph *g, double B, long max_states);

/* lattice.c: the exact search over every ideal of g on one level without a memory limit or
 * --straight (either model; o->pipelined: no plan of one stage), by bisection between *lo (a proven lower bound) and *hi (a plan's
 * bottleneck) with probes linear in the lattice's edges, for at most `seconds` of CPU time. Its
 * tables are sized before they are built, within budget bytes. Returns -1 where it does not
 * apply or does not fit (nothing changed); else 0, with *lo raised to what the probes proved,
 * and *hi and *best (a plan, or NULL) the best plan found below the incoming *hi; *states the
 * ideals, *probes the probes. */
int dp_lattice_search(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                      double budget, double seconds, double *lo, double *hi, pd_plan **best,
                      long *states, int *probes);

/* reconstruct.c */
int dp_flat_push(flat_list *fl, const flat_stage *s);
int dp_reconstruct(flat_list *fl, dpctx *x, int l, long s, long e, const dp_enclosing *enc);
pd_plan *dp_build_plan(const dpctx *x, const flat_list *fl, double bottleneck);

#endif
