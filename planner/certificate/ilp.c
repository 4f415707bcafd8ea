/* ilp.c: the GLPK certificate. Builds the integer program's candidate stages (every difference
 * J \ I of two ideals I subset J, with every replica count) priced by planner/cost/cost.h, solves
 * it (ilp_glpk.c) and turns the optimum back into a plan, to compare with the DP's.
 *
 * Scope: one level of workers, and several levels under the default model without a memory
 * limit, where the program plans the flattened pipeline as the DP does: vertices are (ideal,
 * ranks before it) and a stage is priced by its ranks (build_arcs_positional). When a memory
 * limit is set (one level), a
 * stage's memory depends on how many workers run later stages (the 1F1B warm-up), so vertices
 * are (ideal, workers after it): the layered graph encodes the position exactly. Without a
 * memory limit, vertices are ideals and a budget row bounds the workers. docs/certificate.md
 * says what is modelled and what is not. */
#include "ilp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planner/cost/cost.h"
#include "ilp_glpk.h"
#include "ilp_ideals.h"

#define PD_ILP_MAX_IDEALS 6000
#define PD_ILP_MAX_ARCS 1500000L
/* Stage-to-layer entries kept for the per-layer rows (memory) */
#define PD_ILP_MAX_COVER 40000000L

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Arrays that grow while arcs are generated. */
typedef struct {
    pd_ilp_paths p;
    int *from, *to, *after; /* per arc: ideal indices, workers after the stage */
    long cap_arcs, cap_cover;
    int oom;
    unsigned char *fw; /* positional graph: vertices a path from the source reaches so far */
} arcs_builder;

static int grow(arcs_builder *b, long need_cover) {
    if (b->p.n_arcs + 1 >= b->cap_arcs) {
        long cap = b->cap_arcs ? b->cap_arcs * 2 : 1024;
        int *t = realloc(b->p.tail, (size_t)cap * sizeof(int));
        if (t) b->p.tail = t;
        int *h = realloc(b->p.head, (size_t)cap * sizeof(int));
        if (h) b->p.head = h;
        int *r = realloc(b->p.replicas, (size_t)cap * sizeof(int));
        if (r) b->p.replicas = r;
        double *tm = realloc(b->p.time_ms, (size_t)cap * sizeof(double));
        if (tm) b->p.time_ms = tm;
        long *cs = realloc(b->p.cover_start, (size_t)(cap + 1) * sizeof(long));
        if (cs) b->p.cover_start = cs;
        int *f = realloc(b->from, (size_t)cap * sizeof(int));
        if (f) b->from = f;
        int *to = realloc(b->to, (size_t)cap * sizeof(int));
        if (to) b->to = to;
        int *af = realloc(b->after, (size_t)cap * sizeof(int));
        if (af) b->after = af;
        if (!t || !h || !r || !tm || !cs || !f || !to || !af) return -1;
        b->cap_arcs = cap;
    }
    long have = b->p.cover_start[b->p.n_arcs];
    if (have + need_cover > b->cap_cover) {
        long cap = b->cap_cover ? b->cap_cover * 2 : 4096;
        while (cap < have + need_cover) cap *= 2;
        int *c = realloc(b->p.cover, (size_t)cap * sizeof(int));
        if (!c) return -1;
        b->p.cover = c;
        b->cap_cover = cap;
    }
    return 0;
}

static void add_arc(arcs_builder *b, int tail, int head, int from, int to, int r, int after,
                    double t, const int *stage_nodes, int n_stage) {
    if (b->oom || grow(b, n_stage)) { b->oom = 1; return; }
    int a = b->p.n_arcs++;
    b->p.tail[a] = tail;
    b->p.head[a] = head;
    b->p.replicas[a] = r;
    b->p.time_ms[a] = t;
    b->from[a] = from;
    b->to[a] = to;
    b->after[a] = after;
    long s = b->p.cover_start[a];
    memcpy(b->p.cover + s, stage_nodes, (size_t)n_stage * sizeof(int));
    b->p.cover_start[a + 1] = s + n_stage;
}

static void builder_free(arcs_builder *b) {
    free(b->p.tail); free(b->p.head); free(b->p.replicas); free(b->p.time_ms);
    free(b->p.cover_start); free(b->p.cover);
    free(b->from); free(b->to); free(b->after); free(b->fw);
    memset(b, 0, sizeof *b);
}

/* The problem shared by every solve of one certificate: ideals and their sums. */
typedef struct {
    const pd_costgraph *g;
    pd_cost_level lv;
    int levels;
    pd_cost_model cm;
    int N, straight, exact_budget, layered;
    const pd_cluster *hc; /* several levels (default model): one level of every worker, a stage
                             priced by its ranks (pd_stage_time_at), vertices (ideal, ranks
                             before it); NULL otherwise */
    pd_ilp_ideals id;
    double *cut;          /* per ideal: bytes leaving it */
    double *compute;      /* per ideal: its fwd + bwd ms */
} ilp_problem;

static void stage_sums(pd_stage_sums *s, const ilp_problem *q, int i, int j, int *nodes,
                       int *n_nodes) {
    *n_nodes = pd_ilp_stage_sums(s, q->g, &q->id, i, j, nodes);
    s->first = i == 0;
    s->last = j == q->id.count - 1;
    s->in_bytes = s->first ? 0 : q->cut[i];
    s->out_bytes = s->last ? 0 : q->cut[j];
}

/* Vertex of (ideal i, workers after it); the empty ideal is the source, the full one the sink. */
static int vertex(const ilp_problem *q, int i, int after) {
    if (i == 0) return 0;
    if (i == q->id.count - 1) return 1;
    return q->layered ? 2 + (i - 1) * q->N + after : 1 + i;
}

/* Several levels: the candidate stage J \\ I (ideals i, j; sums s) on every ranks [a, a + r),
 * priced by its ranks (cost.h, pd_stage_time_at), as an arc from (I, a) to (J, a + r); the
 * budget row is the last stage's end. No memory limit (problem_init). */
static void positional_arcs(arcs_builder *b, const ilp_problem *q, int i, int j,
                            const pd_stage_sums *s, double cap_ms, int strict, const int *nodes,
                            int n_stage) {
    int N = q->N, full = q->id.count - 1, rmax = q->straight ? 1 : N;
    for (int a = i == 0 ? 0 : 1; a <= (i == 0 ? 0 : N - 1); a++)
        for (int r = 1; r <= rmax && a + r <= N && !b->oom; r++) {
            /* every arc into (i, a) comes from a smaller ideal, generated before: an arc out of
             * a vertex no path reaches is on no path */
            if (b->fw && !b->fw[vertex(q, i, a)]) break;
            /* every later stage runs its compute C' on r' ranks in at least C' / r', so the
             * compute after j needs at least that over the cap of ranks after a + r */
            if (j != full && isfinite(cap_ms) &&
                a + r > N - (q->compute[full] - q->compute[j]) * (1 - 1e-9) / cap_ms)
                break;
            if (j != full && a + r >= N) continue;
            double t = pd_stage_time_at(q->hc, s->compute_ms, s->param_bytes, s->in_bytes,
                                        s->out_bytes, s->first, s->last, a, r);
            if (strict ? !(t < cap_ms) : !(t <= cap_ms)) continue;
            add_arc(b, vertex(q, i, a), vertex(q, j, a + r), i, j, r, a, t, nodes, n_stage);
            if (b->fw) b->fw[vertex(q, j, a + r)] = 1;
        }
}

/* Every candidate stage whose time is at most cap_ms (and that fits in memory). */
static int build_arcs(arcs_builder *b, const ilp_problem *q, double cap_ms, int strict) {
    memset(b, 0, sizeof *b);
    int count = q->id.count, N = q->N, full = count - 1;
    b->p.n_vertices = q->layered ? 2 + (count - 2 > 0 ? count - 2 : 0) * N : count;
    b->p.source = 0;
    b->p.sink = 1;
    b->p.n_nodes = q->g->n;
    b->p.budget = N;
    b->p.exact_budget = q->exact_budget;
    b->p.lp_presolve = q->layered;
    b->p.vertex_rows = 1; /* measured 4-7x faster than per-layer rows (docs/certificate.md) */
    b->p.cover_start = malloc(sizeof(long));
    int *nodes = malloc(((size_t)q->g->n + 1) * sizeof(int));
    if (q->hc) {
        b->fw = calloc((size_t)b->p.n_vertices, 1);
        if (b->fw) b->fw[b->p.source] = 1;
    }
    if (!b->p.cover_start || !nodes || (q->hc && !b->fw)) { free(nodes); return -1; }
    b->p.cover_start[0] = 0;
    int rmax = q->straight || q->hc ? 1 : N; /* q->hc: positional_arcs */
    for (int i = 0; i < count && !b->oom; i++) {
        for (int j = i + 1; j < count && !b->oom; j++) {
            if (!pd_ilp_ideal_below(&q->id, i, j)) continue;
            pd_stage_sums s;
            int n_stage;
            stage_sums(&s, q, i, j, nodes, &n_stage);
            if (q->hc) positional_arcs(b, q, i, j, &s, cap_ms, strict, nodes, n_stage);
            double best_fewer = INFINITY; /* best time with fewer replicas (dominance) */
            for (int r = 1; r <= rmax && !b->oom && !q->hc; r++) {
                if (!q->layered) {
                    pd_stage_cost sc;
                    pd_stage_cost_eval(&sc, &s, &q->lv, q->cm, r, 0);
                    double t = sc.time_ms;
                    if (strict ? !(t < cap_ms) : !(t <= cap_ms)) continue;
                    /* With a budget that need not be used up, more replicas that are no faster
                     * can never help. */
                    if (!q->exact_budget && t >= best_fewer) continue;
                    if (t < best_fewer) best_fewer = t;
                    add_arc(b, vertex(q, i, 0), vertex(q, j, 0), i, j, r, 0, t, nodes, n_stage);
                    continue;
                }
                /* layered: d = workers after the stage */
                int dmin = j == full ? 0 : 1;
                int dmax = j == full ? 0 : (i == 0 ? N - r : N - 1 - r);
                if (i == 0 && q->exact_budget) {
                    if (N - r < dmin || N - r > dmax) continue;
                    dmin = dmax = N - r;
                }
                if (i != 0 && r > N - 1) continue;
                for (int d = dmin; d <= dmax; d++) {
                    pd_stage_cost sc;
                    pd_stage_cost_eval(&sc, &s, &q->lv, q->cm, r, d);
                    double t = sc.time_ms;
                    if (strict ? !(t < cap_ms) : !(t <= cap_ms)) break;
                    if (!sc.fits) break; /* memory grows with d */
                    add_arc(b, vertex(q, i, d + r), vertex(q, j, d), i, j, r, d, t, nodes,
                            n_stage);
                }
            }
            if (b->p.n_arcs > PD_ILP_MAX_ARCS || (b->p.n_arcs && b->p.cover_start[b->p.n_arcs] > PD_ILP_MAX_COVER)) {
                free(nodes);
                return 1;
            }
        }
    }
    free(nodes);
    return b->oom ? -1 : 0;
}

/* Drops arcs that no source-to-sink path can use (graph search both ways). */
static void prune_unreachable(arcs_builder *b) {
    pd_ilp_paths *p = &b->p;
    int V = p->n_vertices, A = p->n_arcs;
    unsigned char *fw = calloc((size_t)V, 1), *bw = calloc((size_t)V, 1);
    if (!fw || !bw) { free(fw); free(bw); return; }
    fw[p->source] = 1;
    bw[p->sink] = 1;
    /* arcs go from smaller to larger ideals, and ideal order is by size, so arcs sorted by
     * tail ideal are in a topological order: one sweep each way suffices for the unlayered
     * graph; repeat until stable to be safe for the layered one. */
    for (int changed = 1; changed;) {
        changed = 0;
        for (int a = 0; a < A; a++)
            if (fw[p->tail[a]] && !fw[p->head[a]]) { fw[p->head[a]] = 1; changed = 1; }
        for (int a = A - 1; a >= 0; a--)
            if (bw[p->head[a]] && !bw[p->tail[a]]) { bw[p->tail[a]] = 1; changed = 1; }
    }
    int k = 0;
    long c = 0;
    for (int a = 0; a < A; a++) {
        if (!fw[p->tail[a]] || !bw[p->head[a]]) continue;
        long s = p->cover_start[a], e = p->cover_start[a + 1];
        p->tail[k] = p->tail[a]; p->head[k] = p->head[a]; p->replicas[k] = p->replicas[a];
        p->time_ms[k] = p->time_ms[a];
        b->from[k] = b->from[a]; b->to[k] = b->to[a]; b->after[k] = b->after[a];
        p->cover_start[k] = c;
        memmove(p->cover + c, p->cover + s, (size_t)(e - s) * sizeof(int));
        c += e - s;
        k++;
    }
    p->n_arcs = k;
    p->cover_start[k] = c;
    free(fw);
    free(bw);
}

static void free_plan(pd_plan *pl) {
    if (!pl) return;
    for (int s = 0; s < pl->n_stages; s++) {
        free(pl->stages[s].nodes);
        free(pl->stages[s].ranks);
    }
    free(pl->stages);
    free(pl);
}

/* The plan-wide fields of an integer-program plan whose stages, workers and bottleneck are set. */
static void plan_finish(pd_plan *pl, const ilp_problem *q, const pd_cluster *c,
                        const pd_plan_opts *o) {
    pl->cost_model = q->cm;
    pl->straight = q->straight;
    snprintf(pl->schedule, sizeof pl->schedule, "%s", o && o->schedule ? o->schedule : "1f1b");
    pl->throughput = pl->bottleneck_ms > 0 ? 1000.0 / pl->bottleneck_ms : 0;
    pl->data_parallel_ms = pd_data_parallel_ms(q->g, c, q->cm);
    pl->speedup_vs_data_parallel =
        pl->bottleneck_ms > 0 ? pl->data_parallel_ms / pl->bottleneck_ms : 0;
    pl->exact = 1;
    pl->lower_bound_ms = pl->bottleneck_ms;
}

/* The plan of a chosen path. */
static pd_plan *plan_of(const ilp_problem *q, const arcs_builder *b, const pd_ilp_result *res,
                        const pd_cluster *c, const pd_plan_opts *o) {
    pd_plan *pl = calloc(1, sizeof *pl);
    if (!pl) return NULL;
    pl->stages = calloc((size_t)res->n_chosen + 1, sizeof(pd_stage));
    int *nodes = malloc(((size_t)q->g->n + 1) * sizeof(int));
    if (!pl->stages || !nodes) { free(nodes); free_plan(pl); return NULL; }
    int total = 0, replicated = 0;
    for (int s = 0; s < res->n_chosen; s++) {
        total += b->p.replicas[res->chosen[s]];
        replicated |= b->p.replicas[res->chosen[s]] > 1;
    }
    /* the plan's own warm-up (plan.h): the deeper one with a replicated stage */
    pd_cost_level lv = q->lv;
    lv.replicated_warmup = q->cm == PD_COST_DEFAULT && replicated && res->n_chosen > 1;
    int rank = 0;
    for (int s = 0; s < res->n_chosen; s++) {
        int a = res->chosen[s], r = b->p.replicas[a];
        int after = total - rank - r;
        pd_stage_sums sums;
        int n_stage;
        stage_sums(&sums, q, b->from[a], b->to[a], nodes, &n_stage);
        pd_stage_cost sc;
        if (q->hc)
            pd_stage_cost_at(&sc, &sums, q->hc, q->g, rank, r, after, lv.replicated_warmup);
        else pd_stage_cost_eval(&sc, &sums, &lv, q->cm, r, after);
        pd_stage *st = &pl->stages[pl->n_stages++];
        st->nodes = malloc((size_t)n_stage * sizeof(int));
        st->ranks = malloc((size_t)r * sizeof(int));
        if (!st->nodes || !st->ranks) { free(nodes); free_plan(pl); return NULL; }
        memcpy(st->nodes, nodes, (size_t)n_stage * sizeof(int));
        st->n_nodes = n_stage;
        st->replicas = r;
        for (int k = 0; k < r; k++) st->ranks[k] = rank + k;
        rank += r;
        st->warmup = sc.warmup;
        st->weight_versions = sc.weight_versions;
        st->compute_ms = sums.compute_ms;
        st->allreduce_ms = sc.allreduce_ms;
        st->comm_in_ms = sc.comm_in_ms;
        st->comm_out_ms = sc.comm_out_ms;
        st->time_ms = sc.time_ms;
        st->memory_bytes = sc.memory_bytes;
        st->param_bytes = sums.param_bytes;
        st->act_in_bytes = sums.in_bytes;
        st->act_out_bytes = sums.out_bytes;
        if (sc.time_ms > pl->bottleneck_ms) pl->bottleneck_ms = sc.time_ms;
    }
    free(nodes);
    pl->workers = total;
    plan_finish(pl, q, c, o);
    return pl;
}

static const char *status_name(int s) {
    switch (s) {
    case PD_ILP_OPTIMAL: return "optimal";
    case PD_ILP_GAP: return "gap";
    case PD_ILP_TIMEOUT: return "timeout";
    default: return "infeasible";
    }
}

/* One solve over the stages of time <= cap (< cap when strict). Returns 0 (res filled, *plan
 * set when a path was found), 1 when too large, -1 on error. */
static int solve_capped(pd_ilp_result *res, pd_plan **plan, const ilp_problem *q, double cap,
                        int strict, double limit_s, const pd_cluster *c, const pd_plan_opts *o,
                        pd_diag *d) {
    *plan = NULL;
    arcs_builder b;
    int rc = build_arcs(&b, q, cap, strict);
    if (rc) {
        builder_free(&b);
        if (rc < 0) pd_diag_error(d, "ilp", 0, 0, "out of memory building the integer program");
        return rc;
    }
    /* the positional graph (q->hc) too: its only other rows are each layer once (which every
     * path meets) and the budget (which every arc meets: a + r <= N) */
    if (!q->layered || q->hc) prune_unreachable(&b);
    char err[256] = "";
    double t0 = now_s();
    int solve_rc = pd_ilp_paths_solve(res, &b.p, limit_s, err, sizeof err);
    if (o && o->verbose)
        fprintf(d && d->out ? d->out : stderr,
                "ilp: %s %.17g: %d vertices, %d candidate stages, %ld cover entries: %s in "
                "%.3f s\n", strict ? "below" : "up to", cap, b.p.n_vertices, b.p.n_arcs,
                b.p.cover_start[b.p.n_arcs], solve_rc ? "error" : status_name(res->status),
                now_s() - t0);
    if (solve_rc) {
        pd_diag_error(d, "ilp", 0, 0, "%s", err);
        builder_free(&b);
        return -1;
    }
    if (res->n_chosen > 0) {
        *plan = plan_of(q, &b, res, c, o);
        if (!*plan) {
            pd_diag_error(d, "ilp", 0, 0, "out of memory building the plan");
            free(res->chosen);
            builder_free(&b);
            return -1;
        }
    }
    free(res->chosen);
    res->chosen = NULL;
    builder_free(&b);
    return 0;
}

static void skip(pd_plan *p, const char *why, pd_diag *d, const pd_plan_opts *o) {
    snprintf(p->certificate.status, sizeof p->certificate.status, "skipped");
    if (o && o->verbose && d) fprintf(d->out ? d->out : stderr, "certificate skipped: %s\n", why);
}

/* Sets up the problem shared by every solve. Returns 0, 1 when out of scope (why), -1 on error. */
static int problem_init(ilp_problem *q, const pd_costgraph *g, const pd_cluster *c,
                        const pd_plan_opts *o, char *why, int why_size, pd_diag *d) {
    memset(q, 0, sizeof *q);
    int cm = o ? o->cost_model : PD_COST_DEFAULT, straight = o && o->straight;
    (void)straight;
    if (c->n_levels > 1 && (cm != PD_COST_DEFAULT || c->memory_bytes > 0)) {
        snprintf(why, (size_t)why_size, "on several levels the integer program models the "
                 "default cost model without a memory limit");
        return 1;
    }
    if (g->n < 1 || c->count[0] < 1) {
        snprintf(why, (size_t)why_size, "empty graph or cluster");
        return 1;
    }
    q->g = g;
    q->levels = 1;
    pd_cost_level_of(&q->lv, c, g, 0);
    q->cm = o ? o->cost_model : PD_COST_DEFAULT;
    q->N = c->count[0];
    q->straight = o && o->straight;
    /* the memory of the warm-up of a pipeline with a replicated stage (plan.h); see passes */
    q->lv.replicated_warmup = q->cm == PD_COST_DEFAULT && !q->straight;
    q->exact_budget = pd_ilp_uses_every_worker(o);
    q->layered = c->memory_bytes > 0;
    if (c->n_levels > 1) { /* the flattened pipeline, positions as vertices */
        q->hc = c;
        q->N = pd_cluster_workers(c);
        q->layered = 1;
    }
    int rc = pd_ilp_ideals_enum(&q->id, g, PD_ILP_MAX_IDEALS);
    if (rc) {
        if (rc < 0) { pd_diag_error(d, "ilp", 0, 0, "out of memory enumerating ideals"); return -1; }
        snprintf(why, (size_t)why_size, "more than %d downward-closed sets", PD_ILP_MAX_IDEALS);
        return 1;
    }
    q->cut = malloc((size_t)q->id.count * sizeof(double));
    q->compute = calloc((size_t)q->id.count, sizeof(double));
    unsigned char *flags = malloc((size_t)g->n + 1);
    if (!q->cut || !q->compute || !flags) {
        free(q->cut); free(q->compute); free(flags); pd_ilp_ideals_free(&q->id);
        pd_diag_error(d, "ilp", 0, 0, "out of memory");
        return -1;
    }
    for (int i = 0; i < q->id.count; i++) {
        for (int v = 0; v < g->n; v++) {
            flags[v] = (unsigned char)pd_ilp_ideal_has(&q->id, i, v);
            if (flags[v]) q->compute[i] += g->fwd_ms[v] + g->bwd_ms[v];
        }
        q->cut[i] = pd_cut_bytes(g, flags);
    }
    free(flags);
    return 0;
}

static void problem_free(ilp_problem *q) {
    pd_ilp_ideals_free(&q->id);
    free(q->cut);
    free(q->compute);
}

/* Solves from a first cap (inclusive, or strict), then, while optimal, proves that no plan is
 * faster than the optimum found by a solve over strictly faster stages only (GLPK's tolerances
 * are relative, about 1e-7; this makes the answer exact to the arithmetic of the stage times).
 * incumbent_ms, when finite, is a plan already checked against the model (the DP's): if nothing
 * beats the first strict cap, it is the optimum. Returns 0, 1 when too large, -1 on error. */
static int optimum_core(pd_plan **out, pd_certificate *cert, const ilp_problem *q,
                        const pd_cluster *c, const pd_plan_opts *o, double cap, int strict,
                        double incumbent_ms, double t0, double time_limit_s, char *why,
                        int why_size, pd_diag *d) {
    pd_ilp_result res;
    pd_plan *best = NULL;
    int ret = 0, final_status = PD_ILP_INFEASIBLE;
    double gap = 0, objective = NAN;
    for (int round = 0; round < 8; round++) {
        double left = time_limit_s - (now_s() - t0);
        if (left <= 0) {
            final_status = best || isfinite(incumbent_ms) ? PD_ILP_GAP : PD_ILP_TIMEOUT;
            gap = NAN;
            break;
        }
        pd_plan *pl = NULL;
        int rc = solve_capped(&res, &pl, q, cap, strict, left, c, o, d);
        if (rc) {
            ret = rc;
            if (rc > 0)
                snprintf(why, (size_t)why_size, "too large: more than %ld candidate stages or %ld "
                         "stage-layer entries", PD_ILP_MAX_ARCS, PD_ILP_MAX_COVER);
            break;
        }
        if (pl) {
            free_plan(best);
            best = pl;
            final_status = res.status;
            gap = res.gap;
            if (res.status != PD_ILP_OPTIMAL) break;
            cap = pl->bottleneck_ms * (1 - 1e-10);
            strict = 1;
            continue;
        }
        /* no path below the cap */
        if (best || (round == 0 && isfinite(incumbent_ms))) {
            if (res.status == PD_ILP_INFEASIBLE) { final_status = PD_ILP_OPTIMAL; gap = 0; }
            else { final_status = PD_ILP_GAP; gap = NAN; }
            if (!best) objective = incumbent_ms;
            break;
        }
        if (res.status == PD_ILP_INFEASIBLE && isfinite(cap)) {
            /* nothing as good as the bound: solve the whole problem to say what is optimal */
            cap = INFINITY;
            strict = 0;
            continue;
        }
        final_status = res.status;
        break;
    }
    if (ret) { free_plan(best); return ret; }
    snprintf(cert->status, sizeof cert->status, "%s", status_name(final_status));
    cert->objective = best ? best->bottleneck_ms : objective;
    cert->gap = final_status == PD_ILP_OPTIMAL ? 0 : gap;
    cert->seconds = now_s() - t0;
    if (best) best->certificate = *cert;
    *out = best;
    return 0;
}

/* Under the default model with a memory limit (one level, without --straight) a plan's warm-up
 * is the deeper one exactly when it has a replicated stage (plan.h, pd_warmup_depth), so the
 * program is solved as the DP plans (dp.c): over every plan with the deeper warm-up's memory
 * (q), and over plans of one-replica stages, at most N, with PipeDream's (unreplicated_of); the
 * better optimum is the optimum. */
static void cert_init(pd_certificate *cert);

static int two_passes(const ilp_problem *q) {
    return q->cm == PD_COST_DEFAULT && !q->straight && q->layered && !q->hc;
}

static ilp_problem unreplicated_of(const ilp_problem *q) {
    ilp_problem u = *q; /* shares q's arrays: free q only */
    u.straight = 1;
    u.exact_budget = 0;
    u.lv.replicated_warmup = 0;
    return u;
}

/* optimum_core over q and, where two_passes, the pass without replicated stages below it. */
static int optimum_passes(pd_plan **out, pd_certificate *cert, const ilp_problem *q,
                          const pd_cluster *c, const pd_plan_opts *o, double cap, int strict,
                          double incumbent_ms, double t0, double time_limit_s, char *why,
                          int why_size, pd_diag *d) {
    int rc = optimum_core(out, cert, q, c, o, cap, strict, incumbent_ms, t0, time_limit_s, why,
                          why_size, d);
    if (rc || !two_passes(q)) return rc;
    ilp_problem u = unreplicated_of(q);
    if (*out) { /* only a strictly better plan matters */
        cap = (*out)->bottleneck_ms * (1 - 1e-10);
        strict = 1;
        incumbent_ms = (*out)->bottleneck_ms;
    }
    pd_plan *pu = NULL;
    pd_certificate cu;
    cert_init(&cu);
    rc = optimum_core(&pu, &cu, &u, c, o, cap, strict, incumbent_ms, t0, time_limit_s, why,
                      why_size, d);
    if (rc) {
        free_plan(*out);
        *out = NULL;
        return rc;
    }
    if (pu) {
        free_plan(*out);
        *out = pu;
        *cert = cu;
    } else if (!*out || strcmp(cu.status, "optimal")) {
        double objective = cert->objective;
        *cert = cu; /* nothing better, or not proven: its status */
        if (*out) cert->objective = objective;
    }
    cert->seconds = now_s() - t0;
    return 0;
}

static void cert_init(pd_certificate *cert) {
    memset(cert, 0, sizeof *cert);
    snprintf(cert->solver, sizeof cert->solver, "glpk");
    snprintf(cert->status, sizeof cert->status, "skipped");
    cert->objective = 0; /* as plan.yaml has always shown a skipped certificate */
    cert->gap = 0;
}

int pd_ilp_optimum(pd_plan **out, pd_certificate *cert, const pd_costgraph *g,
                   const pd_cluster *c, const pd_plan_opts *o, double upper_bound_ms,
                   double time_limit_s, char *why, int why_size, pd_diag *d) {
    double t0 = now_s();
    *out = NULL;
    cert_init(cert);
    ilp_problem q;
    int rc = problem_init(&q, g, c, o, why, why_size, d);
    if (rc) return rc;
    /* stages slower than the bound cannot be in a plan that is at least as good */
    double cap = isfinite(upper_bound_ms) && upper_bound_ms > 0
                     ? upper_bound_ms * (1 + 1e-9) + 1e-12 : INFINITY;
    rc = optimum_passes(out, cert, &q, c, o, cap, 0, NAN, t0, time_limit_s, why, why_size, d);
    problem_free(&q);
    return rc;
}

/* Checks plan p against the integer program's constraints (stages partition the nodes in an
 * order that respects every edge, so every prefix is an ideal; replicas within the rules; each
 * stage fits) and re-prices it. Returns its bottleneck, or NAN when it breaks a constraint. */
static double check_plan(const ilp_problem *q, const pd_plan *p) {
    const pd_costgraph *g = q->g;
    if (!p || p->n_stages < 1 || !p->stages) return NAN;
    int *stage_of = malloc((size_t)g->n * sizeof(int));
    unsigned char *before = calloc((size_t)g->n + 1, 1), *st = calloc((size_t)g->n + 1, 1);
    double worst = NAN;
    int used = 0, ok = stage_of && before && st;
    for (int v = 0; ok && v < g->n; v++) stage_of[v] = -1;
    for (int s = 0; ok && s < p->n_stages; s++) {
        const pd_stage *x = &p->stages[s];
        if (x->n_nodes < 1 || !x->nodes || x->replicas < 1 || (q->straight && x->replicas != 1))
            ok = 0;
        for (int k = 0; ok && k < x->n_nodes; k++) {
            int v = x->nodes[k];
            if (v < 0 || v >= g->n || stage_of[v] != -1) ok = 0;
            else stage_of[v] = s;
        }
        used += x->replicas;
    }
    for (int v = 0; ok && v < g->n; v++)
        if (stage_of[v] < 0) ok = 0;
    for (int e = 0; ok && e < g->n_edges; e++)
        if (stage_of[g->src[e]] > stage_of[g->dst[e]]) ok = 0;
    if (ok && (used > q->N || (q->exact_budget && used != q->N))) ok = 0;
    if (ok) {
        worst = 0;
        int done = 0;
        for (int s = 0; s < p->n_stages; s++) {
            const pd_stage *x = &p->stages[s];
            memset(st, 0, (size_t)g->n);
            for (int k = 0; k < x->n_nodes; k++) st[x->nodes[k]] = 1;
            done += x->replicas;
            pd_stage_cost sc;
            pd_stage_cost_nodes(&sc, g, &q->lv, q->cm, s ? before : NULL, st, x->replicas,
                                used - done);
            if (q->hc) { /* the same sums, priced by the stage's ranks */
                pd_stage_sums ss = {.first = s == 0, .last = s == p->n_stages - 1};
                for (int k = 0; k < x->n_nodes; k++) {
                    ss.compute_ms += g->fwd_ms[x->nodes[k]] + g->bwd_ms[x->nodes[k]];
                    ss.param_bytes += g->param_bytes[x->nodes[k]];
                }
                ss.in_bytes = s ? pd_cut_bytes(g, before) : 0;
                for (int k = 0; k < x->n_nodes; k++) before[x->nodes[k]] = 1;
                ss.out_bytes = ss.last ? 0 : pd_cut_bytes(g, before);
                for (int k = 0; k < x->n_nodes; k++) before[x->nodes[k]] = 0;
                sc.time_ms = pd_stage_time_at(q->hc, ss.compute_ms, ss.param_bytes, ss.in_bytes,
                                              ss.out_bytes, ss.first, ss.last, done - x->replicas,
                                              x->replicas);
            }
            if (!sc.fits) { worst = NAN; break; }
            if (sc.time_ms > worst) worst = sc.time_ms;
            for (int k = 0; k < x->n_nodes; k++) before[x->nodes[k]] = 1;
        }
    }
    free(stage_of);
    free(before);
    free(st);
    return worst;
}

int pd_ilp_uses_every_worker(const pd_plan_opts *o) {
    /* As the DP (dp.c, docs/planner.md "At most N workers"): the default cost model may leave
     * workers idle; --compat pipedream (the original without --use_fewer_machines) and
     * --straight (exactly N one-worker stages) use every worker. */
    return o && (o->cost_model == PD_COST_PIPEDREAM || o->straight);
}

int pd_certify(const pd_costgraph *g, const pd_cluster *c, const pd_plan_opts *o, pd_plan *p,
               double time_limit_s, pd_plan **better, pd_diag *d) {
    double t0 = now_s();
    if (better) *better = NULL;
    char why[160] = "";
    pd_certificate cert;
    cert_init(&cert);
    ilp_problem q;
    int rc = problem_init(&q, g, c, o, why, sizeof why, d);
    if (rc < 0) return -1;
    if (rc > 0) {
        if (p) {
            p->certificate = cert;
            skip(p, why, d, o);
        }
        return 0;
    }
    /* When the DP's plan satisfies every constraint of the model and re-prices to its own
     * bottleneck, one solve over strictly faster stages proves it optimal (or finds better).
     * Otherwise the integer program solves for its optimum from the DP's bound. */
    double ub = p ? p->bottleneck_ms : INFINITY;
    ilp_problem u = unreplicated_of(&q); /* where the DP's plan has no replicated stage */
    double mine = check_plan(two_passes(&q) && p && !pd_plan_replicated(p) ? &u : &q, p);
    pd_plan *ilp = NULL;
    if (p && isfinite(mine) && fabs(mine - ub) <= 1e-9 * fabs(ub) + 1e-12)
        rc = optimum_passes(&ilp, &cert, &q, c, o, mine * (1 - 1e-9), 1, mine, t0, time_limit_s,
                            why, sizeof why, d);
    else
        rc = optimum_passes(&ilp, &cert, &q, c, o,
                          isfinite(ub) && ub > 0 ? ub * (1 + 1e-9) + 1e-12 : INFINITY, 0, NAN,
                          t0, time_limit_s, why, sizeof why, d);
    problem_free(&q);
    if (rc < 0) return -1;
    if (rc > 0) {
        if (p) {
            cert_init(&p->certificate);
            skip(p, why, d, o);
        }
        return 0;
    }
    if (p) p->certificate = cert;
    if (!p || !ilp) { free_plan(ilp); return 0; }
    double v = ilp->bottleneck_ms;
    if (v < p->bottleneck_ms * (1 - 1e-9) - 1e-12) {
        if (better) *better = ilp;
        else free_plan(ilp);
        return 1;
    }
    if (v > p->bottleneck_ms * (1 + 1e-9) + 1e-12 && !strcmp(cert.status, "optimal"))
        pd_diag_warning(d, "ilp", 0, 0, "the DP's bottleneck %.17g ms is below the integer "
                        "program's optimum %.17g ms: the DP's plan breaks a constraint the "
                        "integer program models", p->bottleneck_ms, v);
    free_plan(ilp);
    return 0;
}
