/* explain.c: --explain (pd_explain): for each cut of a plan, the bytes that cross it and the
 * best bottleneck of the plans that do not cut there (best_without re-plans with that ideal
 * forbidden). */
#include "dp_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The best bottleneck when no stage may end at the ideal `cut` (byte flags); INFINITY if none.
 * Under the default model with a memory limit, as pd_plan_dp (dp.c): the better of every plan at
 * the replicated pipeline's warm-up (plan.h, pd_warmup_depth) and of the plans without
 * replicated stages at PipeDream's. */
static double best_without(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                           const unsigned char *cut) {
    int deep = o->cost_model == PD_COST_DEFAULT && !o->straight;
    int passes = deep && c->memory_bytes > 0 ? 2 : 1;
    double best = INFINITY;
    for (int pass = 0; pass < passes; pass++) {
        dpctx x;
        double b = NAN;
        if (dp_ctx_init(&x, g, c, o->cost_model, o->straight, o->max_states, cut, o->method,
                        dp_plan_threads(o)) == 0) {
            if (pass == 1) { /* one replica per stage, at most N workers */
                x.straight = 1;
                x.atmost = 1;
            }
            for (int l = 0; l < x.L; l++) x.lv[l].replicated_warmup = deep && pass == 0;
            dptable t = {0};
            b = dp_fast_applies(&x) ? dp_fast_solve(NULL, &x) : dp_solve_top(&x, &t);
            dp_table_free(&t);
        }
        dp_ctx_free(&x);
        if (isnan(b)) return NAN;
        if (b < best) best = b;
    }
    return best;
}

static void print_range(FILE *out, const pd_costgraph *g, const pd_stage *st) {
    if (st->n_nodes == 1) fprintf(out, "%s", g->name ? g->name[st->nodes[0]] : "?");
    else fprintf(out, "%s..%s (%d layers)", g->name ? g->name[st->nodes[0]] : "?",
                 g->name ? g->name[st->nodes[st->n_nodes - 1]] : "?", st->n_nodes);
}

/* The terms of a stage's time: "compute C + all-reduce A, transfers in I / out O ms". */
static void print_terms(FILE *out, const pd_stage *st) {
    fprintf(out, "compute %.4g + all-reduce %.4g ms, transfers in %.4g / out %.4g ms",
            st->compute_ms / st->replicas, st->allreduce_ms, st->comm_in_ms, st->comm_out_ms);
}

static int bottleneck_stage(const pd_plan *p) {
    int b = 0;
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].time_ms > p->stages[b].time_ms) b = s;
    return b;
}

/* Pipelining or not, when the two are close (a speedup within 10% of 1, or data parallelism
 * chosen): data parallelism's time is its compute over the workers plus its all-reduce (every
 * parameter, over every level's ring); a pipeline trades that all-reduce for its stages' own
 * (smaller rings over fewer parameters), transfers between stages and an uneven split. */
static void explain_pipelining(FILE *out, const pd_costgraph *g, const pd_cluster *c,
                               const pd_plan_opts *o, const pd_plan *p) {
    pd_plan *dp = NULL, *pipe = NULL;
    dp = calloc(1, sizeof *dp);
    if (!dp) return;
    dp->stages = calloc(1, sizeof *dp->stages);
    int N = pd_cluster_workers(c);
    if (dp->stages) {
        dp->n_stages = 1;
        dp->stages[0].replicas = N;
        dp->stages[0].n_nodes = g->n;
        dp->stages[0].nodes = malloc(sizeof(int) * (size_t)(g->n > 0 ? g->n : 1));
        for (int v = 0; dp->stages[0].nodes && v < g->n; v++) dp->stages[0].nodes[v] = v;
    }
    if (!dp->stages || !dp->stages[0].nodes || pd_plan_assign_ranks(dp) ||
        !(pd_plan_price(dp, g, c) >= 0)) {
        pd_plan_free(dp);
        return;
    }
    fprintf(out, "explain: pipelining or not: data parallelism on %d workers takes %.6g ms per "
                 "minibatch (",
            N, dp->stages[0].time_ms);
    print_terms(out, &dp->stages[0]);
    fprintf(out, ")\n");
    if (p->n_stages == 1) {
        pd_plan_opts po = *o;
        po.pipelined = 1;
        pd_diag quiet = {.out = fopen("/dev/null", "w")};
        if (quiet.out) pipe = pd_plan_dp(g, c, &po, &quiet);
        if (quiet.out) fclose(quiet.out);
    }
    const pd_plan *q = pipe ? pipe : p;
    if (q->n_stages > 1) {
        int b = bottleneck_stage(q);
        double saved = dp->stages[0].allreduce_ms - q->stages[b].allreduce_ms;
        fprintf(out, "explain: %s pipeline: %d stages, %.6g ms per minibatch, its bottleneck "
                     "stage %d on %d worker%s: ",
                pipe ? "the best" : "this", q->n_stages, q->bottleneck_ms, b,
                q->stages[b].replicas, q->stages[b].replicas == 1 ? "" : "s");
        print_terms(out, &q->stages[b]);
        fprintf(out, "\nexplain: %s: the pipeline's bottleneck stage %s %.4g ms of all-reduce "
                     "per minibatch against data parallelism's, and its compute share is "
                     "%.4g ms against %.4g ms (%s)\n",
                q->bottleneck_ms < dp->stages[0].time_ms ? "pipelined" : "data parallel",
                saved >= 0 ? "saves" : "adds", fabs(saved),
                q->stages[b].compute_ms / q->stages[b].replicas,
                dp->stages[0].compute_ms / N,
                q->stages[b].comm_in_ms > q->stages[b].compute_ms / q->stages[b].replicas +
                            q->stages[b].allreduce_ms ||
                        q->stages[b].comm_out_ms > q->stages[b].compute_ms / q->stages[b].replicas +
                            q->stages[b].allreduce_ms
                    ? "its transfers set its time"
                    : "an uneven split or idle workers cost the difference");
    } else if (p->n_stages == 1) {
        fprintf(out, "explain: no pipeline fits (one stage is the only plan)\n");
    }
    pd_plan_free(pipe);
    pd_plan_free(dp);
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
    int near = p->speedup_vs_data_parallel < 1.1 && p->cost_model == PD_COST_DEFAULT &&
               !p->straight;
    if (p->n_stages == 1) {
        fprintf(out, "explain: no cut: one stage replicated %d times (data parallel) is best; "
                     "data-parallel time %.6g ms\n",
                p->stages[0].replicas, p->data_parallel_ms);
        if (p->cost_model == PD_COST_DEFAULT) explain_pipelining(out, g, c, o, p);
        return;
    }
    if (near) explain_pipelining(out, g, c, o, p);
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
