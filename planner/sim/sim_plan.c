/* sim_plan.c: the simulator applied to a plan: builds the schedule IR for the plan's stages and
 * replicas (1f1b, flush, gpipe, data parallelism; interleaved's chunks), prices each rank from the cost graph, runs the
 * engine twice (N and 2N minibatches) to separate the steady state from warm-up and drain, and
 * prints the result. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "planner/cost/cost.h"
#include "simulate.h"

static int round_up(int x, int m) { return m > 0 ? (x + m - 1) / m * m : x; }

/* The plan's replica counts as an array (NULL when out of memory). */
static int *plan_replicas(const pd_plan *p) {
    int *reps = malloc(sizeof(int) * (size_t)(p->n_stages > 0 ? p->n_stages : 1));
    for (int s = 0; reps && s < p->n_stages; s++) reps[s] = p->stages[s].replicas;
    return reps;
}

/* The schedule IR's default (runtime/schedule/schedule.c), which the runtime and the generated
 * stages use too. (Out of memory, it counts every stage as one replica.) */
static int default_microbatches(const pd_plan *p) {
    if (p->chunks > 1) return 4 * (p->n_stages / p->chunks); /* interleaved: 4 per rank */
    int *reps = plan_replicas(p);
    int M = pd_schedule_default_microbatches(p->n_stages, reps);
    free(reps);
    return M;
}

pd_schedule *pd_sim_schedule(const pd_plan *p, const char *name, int steps, int microbatches) {
    if (!p || p->n_stages < 1 || !name || steps < 1) return NULL;
    int is_1f1b = !strcmp(name, "1f1b") || !strcmp(name, "dp");
    if (!is_1f1b && !pd_schedule_known(name)) return NULL;
    if (!strcmp(name, "interleaved")) { /* p ranks, v chunks each; whole batches */
        int v = p->chunks > 1 ? p->chunks : 1, ranks = p->n_stages / v;
        int M = microbatches > 0 ? microbatches : default_microbatches(p);
        if (ranks < 2 || ranks * v != p->n_stages) return NULL;
        return pd_schedule_interleaved(ranks, v, round_up(steps, M), M);
    }
    /* the runtime's own generator (runtime/schedule/schedule.c), with the plan's ranks */
    int n = p->n_stages;
    int *reps = plan_replicas(p), *warm = malloc(sizeof(int) * (size_t)n);
    const int **ranks = malloc(sizeof(int *) * (size_t)n);
    pd_schedule *x = NULL;
    if (reps && warm && ranks) {
        int L = pd_schedule_replica_lcm(n, reps), M = 0;
        if (is_1f1b) steps = round_up(steps, L);
        else {
            M = microbatches > 0 ? round_up(microbatches, L)
                                 : pd_schedule_default_microbatches(n, reps);
            steps = round_up(steps, M);
        }
        for (int s = 0; s < n; s++) {
            warm[s] = p->stages[s].warmup;
            ranks[s] = p->stages[s].ranks;
        }
        pd_schedule_spec sp = {is_1f1b ? "1f1b" : name, n, reps, ranks, warm, steps, M};
        x = pd_schedule_build(&sp);
        if (x && !strcmp(name, "dp")) snprintf(x->name, sizeof x->name, "dp");
    }
    free(reps);
    free(warm);
    free(ranks);
    return x;
}

void pd_sim_costs(pd_sim_rank_cost *rc, const pd_costgraph *g, const pd_plan *p,
                  const char *schedule) {
    unsigned char *upto = calloc((size_t)g->n + 1, 1);
    double in_bytes = 0;
    for (int s = 0; s < p->n_stages; s++) {
        const pd_stage *st = &p->stages[s];
        pd_sim_rank_cost c = {0};
        for (int i = 0; i < st->n_nodes; i++) {
            int v = st->nodes[i];
            c.fwd_ms += g->fwd_ms[v];
            c.bwd_ms += g->bwd_ms[v];
            /* the backward's two GEMMs (input and weight gradient) cost alike: a layer with
             * weights splits its backward in halves, one without has no weight part */
            double w = g->param_bytes[v] > 0 ? 0.5 * g->bwd_ms[v] : 0.0;
            c.bwd_weight_ms += w;
            c.bwd_input_ms += g->bwd_ms[v] - w;
            c.param_bytes += g->param_bytes[v];
            if (upto) upto[v] = 1;
        }
        double out_bytes = (s + 1 < p->n_stages && upto) ? pd_cut_bytes(g, upto) : 0;
        c.act_bytes = out_bytes;
        c.grad_bytes = s > 0 ? in_bytes : 0;
        /* what it holds (planner/cost/memory.h, the DP's count too) under its schedule's memory
         * model; the in-flight count is the run's own (pd_sim_run). A recomputing stage runs the
         * forward again, where the CPU runtime does, for recompute_ms. */
        c.held = pd_mem_stage_of(p, s, g);
        c.held.in_bytes = s > 0 ? in_bytes : 0;
        c.mem = pd_mem_model_of(schedule, 0, st->recompute, 0);
        c.recompute_ms = pd_stage_recompute_ms(g, st->nodes, st->n_nodes, st->recompute);
        c.act_keep_bytes = c.held.act_bytes + c.held.in_bytes;
        for (int j = 0; j < st->replicas; j++) rc[p->chunks > 1 ? s : st->ranks[j]] = c;
        in_bytes = out_bytes;
    }
    free(upto);
}

static int run_plan(pd_sim_result *out, FILE *trace, const pd_costgraph *g, const pd_cluster *c,
                    const pd_plan *p, const char *name, int steps, const pd_sim_opts *opts,
                    int check, char *why, int why_size) {
    pd_schedule *s = pd_sim_schedule(p, name, steps, opts ? opts->microbatches : 0);
    if (!s) {
        snprintf(why, (size_t)why_size, "cannot build schedule '%s' for this plan (known: %s, "
                 "dp)", name, pd_schedule_names());
        return 1;
    }
    if (check) {
        char cw[512];
        if (pd_schedule_check(s, cw, sizeof cw)) {
            snprintf(why, (size_t)why_size, "schedule '%s' fails the deadlock check: %s", name,
                     cw);
            pd_schedule_free(s);
            return 1;
        }
    }
    /* interleaved prices by stage (pd_sim_run) */
    pd_sim_rank_cost *rc = calloc((size_t)(s->n_stages > s->n_ranks ? s->n_stages : s->n_ranks),
                                  sizeof *rc);
    if (!rc) {
        pd_schedule_free(s);
        snprintf(why, (size_t)why_size, "out of memory");
        return 1;
    }
    pd_sim_costs(rc, g, p, name);
    int e = pd_sim_run(out, trace, s, rc, c, opts, why, why_size);
    free(rc);
    pd_schedule_free(s);
    return e;
}

int pd_simulate(pd_sim_result *out, FILE *trace, const pd_costgraph *g, const pd_cluster *c,
                const pd_plan *p, const char *schedule, int steps, const pd_sim_opts *opts,
                char *why, int why_size) {
    char dummy[8];
    if (!why || why_size <= 0) why = dummy, why_size = (int)sizeof dummy;
    memset(out, 0, sizeof *out);
    if (!schedule) schedule = p->schedule[0] ? p->schedule : "1f1b";
    if (steps <= 0) {
        /* 8 x the workers, or 16 x the most minibatches in flight at a stage where the
         * warm-up is deeper (plan.h, pd_warmup_depth): with 8 x the workers there,
         * makespan(2N) - makespan(N) still holds part of the ramp and read up to 3% below the
         * steady state on test_price's plans (2.4% with 8 x the most in flight) */
        int w = p->workers > 0 ? p->workers : 1, deep = 0;
        for (int s = 0; s < p->n_stages; s++)
            if (p->stages[s].warmup * p->stages[s].replicas > deep)
                deep = p->stages[s].warmup * p->stages[s].replicas;
        steps = deep > w ? 16 * deep : 8 * w;
        if (strcmp(schedule, "1f1b") && strcmp(schedule, "dp")) {
            int M = opts && opts->microbatches > 0 ? opts->microbatches
                                                   : default_microbatches(p);
            if (steps < 4 * M) steps = 4 * M;
        }
        if (steps < 32) steps = 32;
    }
    pd_sim_result twice;
    if (run_plan(out, trace, g, c, p, schedule, steps, opts, 1, why, why_size)) return 1;
    pd_sim_opts quiet = {0}; /* the second run records no timeline */
    if (opts) quiet = *opts;
    quiet.timeline = NULL;
    if (run_plan(&twice, NULL, g, c, p, schedule, 2 * out->steps, &quiet, 0, why, why_size)) {
        pd_sim_result_free(out);
        return 1;
    }
    double dt = twice.makespan_ms - out->makespan_ms;
    int dn = twice.steps - out->steps;
    out->steady_ms = dn > 0 ? dt / dn : out->makespan_ms / out->steps;
    for (int s = 0; s < out->n_stages; s++) out->stage_util[s] = 0;
    int *members = calloc((size_t)out->n_stages, sizeof(int));
    for (int r = 0; r < out->n_ranks; r++) {
        out->rank_util[r] = dt > 0 ? (twice.rank_busy_ms[r] - out->rank_busy_ms[r]) / dt : 0;
        if (members) members[out->rank_stage[r]]++;
    }
    for (int r = 0; r < out->n_ranks && members; r++)
        out->stage_util[out->rank_stage[r]] += out->rank_util[r] / members[out->rank_stage[r]];
    for (int k = out->n_ranks; p->chunks > 1 && k < out->n_stages; k++) /* its rank's */
        out->stage_util[k] = out->stage_util[k % out->n_ranks];
    free(members);
    pd_sim_result_free(&twice);
    return 0;
}

pd_plan *pd_data_parallel_plan(const pd_costgraph *g, const pd_cluster *c) {
    pd_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->stages = calloc(1, sizeof *p->stages);
    if (!p->stages) { free(p); return NULL; }
    p->n_stages = 1;
    pd_stage *st = &p->stages[0];
    st->nodes = malloc(sizeof(int) * (size_t)(g->n > 0 ? g->n : 1));
    st->replicas = pd_cluster_workers(c);
    if (!st->nodes || st->replicas < 1 || pd_plan_assign_ranks(p)) {
        pd_plan_free(p);
        return NULL;
    }
    st->n_nodes = g->n;
    for (int v = 0; v < g->n; v++) st->nodes[v] = v;
    snprintf(p->schedule, sizeof p->schedule, "dp");
    return p;
}

int pd_simulate_data_parallel(pd_sim_result *out, FILE *trace, const pd_costgraph *g,
                              const pd_cluster *c, int steps, const pd_sim_opts *opts, char *why,
                              int why_size) {
    pd_plan *p = pd_data_parallel_plan(g, c);
    if (!p) {
        memset(out, 0, sizeof *out);
        snprintf(why, (size_t)why_size, "out of memory");
        return 1;
    }
    int e = pd_simulate(out, trace, g, c, p, "dp", steps, opts, why, why_size);
    pd_plan_free(p);
    return e;
}

void pd_sim_print(FILE *o, const pd_sim_result *r) {
    fprintf(o, "simulated %s: %d ranks, %d stages, %d minibatches in %.3f ms\n", r->schedule,
            r->n_ranks, r->n_stages, r->steps, r->makespan_ms);
    fprintf(o, "  steady state     %.4f ms per minibatch\n", r->steady_ms);
    fprintf(o, "  bubble           %.4f ms (warm-up, drain and flushes; %.1f%% of the run)\n",
            r->bubble_ms, r->makespan_ms > 0 ? 100.0 * r->bubble_ms / r->makespan_ms : 0.0);
    fprintf(o, "  communication    %.4g bytes per minibatch (%.4g point-to-point, %.4g "
            "all-reduce)\n", r->bytes_per_minibatch, r->p2p_bytes_per_minibatch,
            r->allreduce_bytes_per_minibatch);
    fprintf(o, "  peak memory      %.4g bytes per worker (most loaded)\n", r->peak_memory_bytes);
    fprintf(o, "  stage  utilisation  peak memory  activations\n");
    for (int s = 0; s < r->n_stages; s++)
        fprintf(o, "  %5d  %10.1f%%  %11.4g  %11.4g\n", s, 100.0 * r->stage_util[s],
                r->stage_peak_memory[s], r->stage_act_memory[s]);
}

int pd_simulate_report(FILE *o, const pd_costgraph *g, const pd_cluster *c, const pd_plan *p,
                       const char *trace_path, const pd_sim_opts *opts, pd_diag *d) {
    pd_sim_result sp, sd;
    char why[512];
    FILE *tr = NULL;
    if (trace_path) {
        tr = fopen(trace_path, "w");
        if (!tr) {
            pd_diag_error(d, trace_path, 0, 0, "cannot write the simulation trace");
            return 1;
        }
    }
    const char *sched = p->schedule[0] ? p->schedule : "1f1b";
    int e = pd_simulate(&sp, tr, g, c, p, sched, 0, opts, why, sizeof why);
    if (tr && fclose(tr) != 0 && !e) {
        pd_diag_error(d, trace_path, 0, 0, "cannot write the simulation trace");
        pd_sim_result_free(&sp);
        return 1;
    }
    if (e) {
        pd_diag_error(d, "pdplan", 0, 0, "simulating the plan: %s", why);
        return 1;
    }
    if (pd_simulate_data_parallel(&sd, NULL, g, c, 0, opts, why, sizeof why)) {
        pd_diag_error(d, "pdplan", 0, 0, "simulating data parallelism: %s", why);
        pd_sim_result_free(&sp);
        return 1;
    }
    pd_sim_print(o, &sp);
    double dp_pred = p->data_parallel_ms;
    fprintf(o, "\n                        DP prediction   simulated\n");
    fprintf(o, "  plan, ms/minibatch    %13.4f   %9.4f\n", p->bottleneck_ms, sp.steady_ms);
    fprintf(o, "  data parallel, ms     %13.4f   %9.4f\n", dp_pred, sd.steady_ms);
    fprintf(o, "  speedup over DP       %12.2fx   %8.2fx\n",
            p->bottleneck_ms > 0 ? dp_pred / p->bottleneck_ms : 0,
            sp.steady_ms > 0 ? sd.steady_ms / sp.steady_ms : 0);
    fprintf(o, "  bytes per minibatch: plan %.4g, data parallel %.4g: communication %s %.1f%%\n",
            sp.bytes_per_minibatch, sd.bytes_per_minibatch,
            sp.bytes_per_minibatch <= sd.bytes_per_minibatch ? "saved" : "added",
            sd.bytes_per_minibatch > 0
                ? 100.0 * fabs(1.0 - sp.bytes_per_minibatch / sd.bytes_per_minibatch) : 0.0);
    fprintf(o, "  all-reduce: %s\n",
            opts && opts->allreduce == PD_SIM_AR_GATHER
                ? "gather to the first replica, sum, broadcast (the cpu runtime's; the DP "
                  "prediction charges a ring)"
                : "ring (NCCL's, the cuda runtime's; as the DP prediction)");
    if (trace_path) fprintf(o, "  trace: %s\n", trace_path);
    pd_sim_result_free(&sp);
    pd_sim_result_free(&sd);
    return 0;
}

int pd_simulate_timeline(const char *svg_path, const pd_costgraph *g, const pd_cluster *c,
                         const pd_plan *p, const pd_sim_opts *opts, pd_diag *d) {
    pd_sim_timeline tl = {0};
    pd_sim_opts so = {0};
    if (opts) so = *opts;
    so.timeline = &tl;
    const char *sched = p->schedule[0] ? p->schedule : "1f1b";
    int steps = 3 * (p->workers > 0 ? p->workers : 1);
    if (steps < 12) steps = 12;
    pd_schedule *s = pd_sim_schedule(p, sched, steps, so.microbatches);
    pd_sim_rank_cost *rc =
        s ? calloc((size_t)(s->n_stages > s->n_ranks ? s->n_stages : s->n_ranks), sizeof *rc)
          : NULL;
    pd_sim_result r = {0};
    char why[512] = "out of memory";
    int e = 1;
    if (rc) {
        pd_sim_costs(rc, g, p, sched);
        e = pd_sim_run(&r, NULL, s, rc, c, &so, why, sizeof why);
    }
    if (!e && tl.oom) {
        e = 1;
        snprintf(why, sizeof why, "out of memory");
    }
    if (!e) {
        FILE *f = fopen(svg_path, "w");
        char title[160];
        snprintf(title, sizeof title, "%s: %d stages on %d ranks, %d minibatches, %.3f ms",
                 sched, p->n_stages, r.n_ranks, r.steps, r.makespan_ms);
        int w = f ? pd_sim_timeline_svg(f, &tl, r.n_ranks, r.rank_stage, title) : -1;
        if (f && fclose(f) != 0) w = -1;
        if (w) pd_diag_error(d, svg_path, 0, 0, "cannot write the timeline");
        e = w ? 1 : 0;
    } else {
        pd_diag_error(d, "pdplan", 0, 0, "simulating the plan's timeline: %s", why);
    }
    if (rc) pd_sim_result_free(&r);
    free(rc);
    pd_schedule_free(s);
    free(tl.ev);
    return e;
}
