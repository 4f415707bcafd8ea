/* explain.c: --explain (pd_explain): for each cut of a plan, the bytes that cross it and the
 * best bottleneck of the plans that do not cut there (best_without re-plans with that ideal
 * forbidden). */
#include "dp_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The best bottleneck when no stage may end at the ideal `cut` (byte flags); INFINITY if none. */
static double best_without(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o,
                           const unsigned char *cut) {
    dpctx x;
    double b = NAN;
    if (dp_ctx_init(&x, g, c, o->cost_model, o->straight, o->max_states, cut, o->method,
                    dp_plan_threads(o)) == 0) {
        dptable t = {0};
        b = dp_fast_applies(&x) ? dp_fast_solve(NULL, &x) : dp_solve_top(&x, &t);
        dp_table_free(&t);
    }
    dp_ctx_free(&x);
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
