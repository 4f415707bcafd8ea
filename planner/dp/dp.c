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
 * the best over at most N units, with the fewest units on ties (dp_level_solve, dp_solve_top).
 * On one level it is found by a parametric search on the bottleneck (dp_fast_solve) from 128
 * workers on or with a memory limit; the plain DP stays as the reference (pd_plan_opts.method).
 *
 * This file holds the entry point (pd_plan_dp: the passes and the diagnostics when nothing
 * fits); dp_internal.h lists the files that hold the rest. */
#include "dp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp_internal.h"

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

/* The bytes the DP's tables take over S ideals (sized before they are built): the ideals
 * (bitsets and sums), the strict sub-ideals of every ideal on a DAG (at most S^2/2 indices),
 * the top level's tables and reconstruction's (and one per thread on inner levels), the cache of
 * stage costs, and an S x S table per inner level of a hierarchy under --compat pipedream. */
static double table_bytes(double S, const pd_costgraph *g, const pd_cluster *c,
                          const pd_plan_opts *o) {
    int flat = o->cost_model == PD_COST_DEFAULT || c->n_levels == 1;
    double N = flat ? pd_cluster_workers(c) : 1;
    if (!flat)
        for (int l = 0; l < c->n_levels; l++)
            if (c->count[l] > N) N = c->count[l];
    double ideals = S * ((g->n + 63) / 64 * 8.0 + 64), subs = S * (S - 1) / 2 * 4;
    double tables = (flat ? 2 : 2 + 16) * S * (N + 1) * 32, inner = 0;
    double memo = S * (N + 1) <= 1048576 ? S * (N + 1) * 44 : 0;
    if (!flat) inner = (c->n_levels - 1) * S * S * 8;
    return ideals + subs + tables + memo + inner;
}

/* The most ideals the budget allows (at least the principal family's n + 2). */
static long states_for(double budget, const pd_costgraph *g, const pd_cluster *c,
                       const pd_plan_opts *o) {
    long lo = g->n + 2, hi = lo;
    if (table_bytes((double)lo, g, c, o) > budget) return lo;
    while (hi < (1L << 40) && table_bytes((double)hi * 2, g, c, o) <= budget) hi *= 2;
    hi *= 2;
    while (hi - lo > 1) {
        long mid = lo + (hi - lo) / 2;
        if (table_bytes((double)mid, g, c, o) <= budget) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* pd_plan_flat_bound: a lower bound on the optimum of a hierarchy from one level. Every plan
 * of a cluster of several levels, flattened (each stage replicated over the product of its
 * enclosing replicas), is a plan of one level of all N workers at the bandwidth
 * B* = max_l B_l K_l (compat, K_l the count of the level below, by which the original divides a
 * base case's all-reduce; the default model: max_l B_l) that costs no more: a transfer over a
 * slower link costs more, and the all-reduces of replicas r_0 .. r_L-1 nested level in level
 * cost at least sum_l (1 - 1/r_l) >= 1 - 1/prod r_l of one all-reduce over all R = prod r_l
 * replicas (docs/planner.md, "Lower bounds"). Memory is not checked (more plans, a lower
 * optimum). So the one-level optimum, or its own lower bound where it is not exact, bounds the
 * hierarchy's optimum from below. */
static pd_plan *plan_with(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                          pd_diag *d, double *bottleneck_out, int quiet, int pass);

/* The passes of pd_plan_dp (plan.h, pd_warmup_depth): PASS_ALL plans over every plan, and under
 * the default model checks memory at the warm-up of a pipeline with a replicated stage;
 * PASS_UNREPLICATED plans over pipelines of one-replica stages (at most N workers) at
 * PipeDream's warm-up. A plan's warm-up is the replicated one exactly when it has a replicated
 * stage, so under a memory limit the better of the two passes is the optimum: a plan without
 * replicated stages that fits at the deeper warm-up fits at its own. */
enum { PASS_ALL = 0, PASS_UNREPLICATED };

double pd_plan_flat_bound(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o) {
    if (c->n_levels < 2) return 0;
    pd_cluster flat = *c;
    double bstar = 0;
    for (int l = 0; l < c->n_levels; l++) {
        double b = c->bandwidth[l];
        if (o->cost_model == PD_COST_PIPEDREAM && l > 0) b *= c->count[l - 1];
        if (b > bstar) bstar = b;
    }
    flat.n_levels = 1;
    flat.count[0] = pd_cluster_workers(c);
    flat.bandwidth[0] = bstar;
    flat.memory_bytes = 0;
    pd_diag quiet = {0};
    double b = INFINITY;
    pd_plan *q = plan_with(g, &flat, o, &quiet, &b, 1, PASS_ALL);
    double bound = 0;
    if (q) bound = q->exact ? b : q->lower_bound_ms;
    pd_plan_free(q);
    return isfinite(bound) ? bound : 0;
}

static pd_plan *plan_with(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                          pd_diag *d, double *bottleneck_out, int quiet, int pass) {
    dpctx x;
    int rc;
    double b = NAN;
    int fast = 0;
    dptable t = {0};
    flat_list fl = {0};
    clock_t started = clock();
    double budget = o->memory_budget > 0 ? o->memory_budget : DEFAULT_MEMORY_BUDGET;
    long cap = o->max_states > 0 ? o->max_states : DEFAULT_MAX_STATES;
    long fits = states_for(budget, g, c, o);
    int by_budget = fits < cap;
    if (by_budget) cap = fits;
    rc = dp_ctx_init(&x, g, c, o->cost_model, o->straight, cap, NULL, o->method,
                     dp_plan_threads(o));
    if (!rc) {
        x.pipelined = o->pipelined;
        x.shallow_warmup = o->shallow_warmup;
        if (pass == PASS_UNREPLICATED) { /* one replica per stage, at most N workers */
            x.straight = 1;
            x.atmost = 1;
        }
        for (int l = 0; l < x.L; l++)
            x.lv[l].replicated_warmup =
                pass == PASS_ALL && !o->straight && o->cost_model == PD_COST_DEFAULT &&
                !o->shallow_warmup;
        fast = dp_fast_applies(&x);
        b = fast ? dp_fast_solve(&fl, &x) : dp_solve_top(&x, &t);
    }
    if (rc) {
        pd_diag_error(d, NULL, 0, 0, "out of memory while planning (%ld states)", x.S);
        dp_ctx_free(&x);
        return NULL;
    }
    dp_table_free(&t);
    if (bottleneck_out) *bottleneck_out = b;
    pd_plan *p = NULL;
    if (isfinite(b)) {
        int L = x.L;
        int rl[PD_MAX_LEVELS] = {0};
        dp_enclosing top = {.mult = 1, .replicas = rl};
        if (fast || dp_reconstruct(&fl, &x, L - 1, 0, x.S - 1, &top) == 0)
            p = dp_build_plan(&x, &fl, b);
        if (p) p->straight = o->straight;
        if (!p) pd_diag_error(d, NULL, 0, 0, "internal error: plan reconstruction failed");
        if (p && !x.id.complete) {
            p->exact = 0;
            p->lower_bound_ms = lower_bound(g, c, o->straight);
        }
        if (p && !quiet && c->memory_bytes > 0 && x.L > 1) {
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
    }
    long S = x.S;
    int complete = x.id.complete;
    free(fl.v);
    dp_ctx_free(&x); /* before the relaxation plans: its tables replace these */
    if (p && !complete) {
        double relaxed = pd_plan_flat_bound(g, c, o);
        if (relaxed > p->lower_bound_ms) p->lower_bound_ms = relaxed;
        if (c->n_levels == 1 && !o->straight)
            p->lower_bound_ms =
                dp_chain_relaxation_bound(g, c->count[0], c->bandwidth[0],
                                          o->cost_model == PD_COST_PIPEDREAM, p->lower_bound_ms,
                                          b, RELAX_STATES);
        /* 1e-9: the bound and the plan are the same sums, added in different orders */
        int proven = b <= p->lower_bound_ms * (1 + 1e-9);
        /* not proven: the lattice search over every ideal, where it applies and fits */
        long lstates = 0;
        int lprobes = -1;
        if (!proven && !o->straight && o->lattice >= 0) {
            double lo = p->lower_bound_ms, hi = b;
            pd_plan *q = NULL;
            /* what is left of LATTICE_SECONDS after the DP and the bounds, at least 1 s */
            double secs = LATTICE_SECONDS - (double)(clock() - started) / CLOCKS_PER_SEC;
            if (dp_lattice_search(g, c, o, budget, secs > 1 ? secs : 1, &lo, &hi, &q,
                                  &lstates, &lprobes) == 0) {
                if (q) {
                    pd_plan_free(p);
                    p = q;
                    b = hi;
                    if (bottleneck_out) *bottleneck_out = b;
                }
                p->lower_bound_ms = lo;
                proven = b <= lo * (1 + 1e-9);
            } else {
                lprobes = -1;
            }
        }
        p->exact = proven;
        const char *why = by_budget ? "as many as the tables' memory budget allows, "
                                      "--memory-budget"
                                    : "the state cap, --max-states";
        FILE *out = d->out ? d->out : stderr;
        if (quiet) {
        } else if (lprobes >= 0) {
            fprintf(out,
                    "pdplan: note: the graph has more than %ld downward-closed sets (%s): the "
                    "DP planned over %ld of them, then the lattice search over all %ld (%d "
                    "probes, docs/planner.md, \"The lattice search\") ",
                    cap, why, S, lstates, lprobes);
            if (proven)
                fprintf(out, "proved the plan (%.6g ms) optimal\n", b);
            else
                fprintf(out, "ran out of time: plan %.6g ms, proven lower bound %.6g ms\n", b,
                        p->lower_bound_ms);
            if (!proven)
                pd_diag_warning(d, NULL, 0, 0,
                                "the plan is not proven optimal (not exact; gap %.3g%% to the "
                                "proven lower bound)",
                                100.0 * (b - p->lower_bound_ms) / p->lower_bound_ms);
        } else if (proven) {
            fprintf(out,
                    "pdplan: note: the graph has more than %ld downward-closed sets (%s): "
                    "planned over %ld of them (the principal ones, ancestors of one node, and sets of whole "
                    "chain segments), and the plan (%.6g ms) equals a proven lower bound "
                    "(%.6g ms): optimal (docs/planner.md, \"Lower bounds\")\n",
                    cap, why, S, b, p->lower_bound_ms);
        } else {
            pd_diag_warning(d, NULL, 0, 0,
                            "the graph has more than %ld downward-closed sets (%s): planned over "
                            "%ld of them (the principal ones, ancestors of one node, and sets of whole chain "
                            "segments) only (not exact; proven lower bound %.6g ms, plan %.6g ms, "
                            "gap %.3g%%)",
                            cap, why, S, p->lower_bound_ms, b,
                            p->lower_bound_ms > 0 ? 100.0 * (b - p->lower_bound_ms) / p->lower_bound_ms
                                                  : 0.0);
        }
    }
    return p;
}

double pd_plan_chain_bound(const pd_costgraph *g, const pd_cluster *c, pd_cost_model cm,
                           double hi, long max_states) {
    if (c->n_levels != 1) return 0;
    return dp_chain_relaxation_bound(g, c->count[0], c->bandwidth[0], cm == PD_COST_PIPEDREAM,
                                     lower_bound(g, c, 0), hi, max_states);
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
    pd_plan *p = plan_with(g, c, o, d, &b, 0, PASS_ALL);
    if (o->cost_model == PD_COST_DEFAULT && !o->straight && !o->shallow_warmup &&
        c->memory_bytes > 0 && d->errors == errors) {
        /* under a memory limit, pipelines without replicated stages at their own (PipeDream's)
         * warm-up too; the better plan, on a tie the one with fewer workers, then PASS_ALL's
         * (with shallow_warmup PASS_ALL checks every plan at PipeDream's warm-up already) */
        double bu = INFINITY;
        pd_diag quiet = {.out = d->out};
        pd_plan *u = plan_with(g, c, o, &quiet, &bu, 1, PASS_UNREPLICATED);
        if (u && (!p || bu < b || (bu == b && u->workers < p->workers))) {
            if (p && !p->exact) { /* the bound holds for both */
                u->exact = bu <= p->lower_bound_ms * (1 + 1e-9);
                u->lower_bound_ms = p->lower_bound_ms;
            }
            pd_plan_free(p);
            p = u;
            b = bu;
        } else {
            pd_plan_free(u);
        }
    }
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
        pd_plan *q = plan_with(g, &nc, o, &quiet, NULL, 1, PASS_ALL);
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
                pd_cost_level_of(&lv, c, g, 0);
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
