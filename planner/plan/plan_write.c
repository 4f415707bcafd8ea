/* plan_write.c: plan.yaml (pd_plan: 1) and the human table (see plan_write.h). */
#include "plan_write.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest exchange of tied weights a stage pays (0: no tie crosses a cut). */
const char *pd_recompute_name(int mode) {
    return mode == PD_RECOMPUTE_FULL ? "full" : mode == PD_RECOMPUTE_SELECTIVE ? "selective" : "none";
}

static double tied_ms(const pd_plan *p) {
    double t = 0;
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].tied_ms > t) t = p->stages[s].tied_ms;
    return t;
}

double pd_plan_throughput(const pd_plan *p, int batch) {
    if (!(p->bottleneck_ms > 0)) return 0;
    return (batch > 0 ? batch : 1) * 1000.0 / p->bottleneck_ms;
}

/* ---- YAML scalars ---- */

static void put_num(FILE *out, double v) {
    if (v != v) fputs(".nan", out);
    else if (isinf(v)) fputs(v > 0 ? ".inf" : "-.inf", out);
    else fprintf(out, "%.17g", v == 0 ? 0.0 : v); /* no "-0" */
}

/* Plain when unambiguous, else a double-quoted string with escapes. */
static void put_str(FILE *out, const char *s) {
    static const char *const reserved[] = {"true", "false", "yes", "no", "on", "off", "null",
                                           "y", "n", "~", NULL};
    int plain = s[0] != '\0' && (isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == '/' ||
                                 s[0] == '.');
    for (const char *c = s; plain && *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_.-/+", *c)) plain = 0;
    for (int i = 0; plain && reserved[i]; i++)
        if (strcasecmp(s, reserved[i]) == 0) plain = 0;
    if (plain && (s[0] == '.' || s[0] == '-')) plain = 0; /* .inf, .nan, -x */
    if (plain) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(out, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", out);
        else if (*c == '\t') fputs("\\t", out);
        else if (*c < 0x20 || *c == 0x7f) fprintf(out, "\\x%02x", *c);
        else fputc(*c, out);
    }
    fputc('"', out);
}

static void put_key_str(FILE *out, const char *indent, const char *key, const char *v) {
    fprintf(out, "%s%s: ", indent, key);
    if (v) put_str(out, v);
    else fputs("null", out);
    fputc('\n', out);
}

static void put_key_num(FILE *out, const char *indent, const char *key, double v) {
    fprintf(out, "%s%s: ", indent, key);
    put_num(out, v);
    fputc('\n', out);
}

static void put_source(FILE *out, const char *key, const char *path, const char *hash) {
    if (!path) {
        fprintf(out, "  %s: null\n", key);
        return;
    }
    fprintf(out, "  %s: {path: ", key);
    put_str(out, path);
    fputs(", fnv1a: ", out);
    put_str(out, hash && hash[0] ? hash : "unreadable");
    fputs("}\n", out);
}

static int cluster_workers(const pd_cluster *c) {
    long w = 1;
    for (int l = 0; l < c->n_levels; l++) w *= c->count[l];
    return (int)w;
}

int pd_plan_write_yaml(FILE *out, const pd_plan *p, const pd_costgraph *g, const pd_cluster *c,
                       const pd_plan_info *info) {
    int batch = info->batch;
    fputs("# plan.yaml: a PipeDream-C pipeline plan, written by pdplan (see docs/pdplan.md).\n",
          out);
    fputs("pd_plan: 1\n", out);
    fputs("tool: pdplan " PDPLAN_VERSION "\n", out);
    put_key_str(out, "", "model", info->model_name);
    fputs("inputs:\n", out);
    put_key_str(out, "  ", "kind", info->input_kind);
    put_source(out, info->input_kind && !strcmp(info->input_kind, "graph.txt") ? "graph" : "model",
               info->input_path, info->input_hash);
    put_source(out, "profile", info->profile_path, info->profile_hash);
    if (info->cluster_kind && !strcmp(info->cluster_kind, "file"))
        put_source(out, "cluster", info->cluster_path, info->cluster_hash);
    else put_key_str(out, "  ", "cluster", info->cluster_kind ? info->cluster_kind : "default");
    put_key_str(out, "", "cost_model", p->cost_model == PD_COST_PIPEDREAM ? "pipedream" : "default");
    put_key_str(out, "", "cost_source", info->cost_source);
    fprintf(out, "estimated: %s\n", info->estimated ? "true" : "false");
    fputs("cluster:\n", out);
    if (c->name[0]) put_key_str(out, "  ", "name", c->name);
    if (c->device[0]) put_key_str(out, "  ", "device", c->device);
    fputs("  levels:\n", out);
    for (int l = 0; l < c->n_levels; l++) {
        fprintf(out, "    - {count: %d, bandwidth: ", c->count[l]);
        put_num(out, c->bandwidth[l]);
        fputs("}\n", out);
    }
    put_key_num(out, "  ", "memory_bytes", c->memory_bytes);
    fprintf(out, "  workers: %d\n", cluster_workers(c));
    put_key_str(out, "", "schedule", p->schedule[0] ? p->schedule : "1f1b");
    if (p->microbatches > 0) fprintf(out, "microbatches: %d\n", p->microbatches);
    if (p->chunks > 1) fprintf(out, "chunks: %d\n", p->chunks); /* interleaved */
    fprintf(out, "straight: %s\n", p->straight ? "true" : "false");
    if (batch > 0) fprintf(out, "batch: %d\n", batch);
    else fputs("batch: null\n", out);
    fprintf(out, "workers: %d\n", p->workers);
    fprintf(out, "nodes: %d\n", g->n);
    put_key_num(out, "", "bottleneck_ms", p->bottleneck_ms);
    put_key_num(out, "", "throughput", pd_plan_throughput(p, batch));
    put_key_str(out, "", "throughput_unit", batch > 0 ? "samples/s" : "minibatches/s");
    put_key_num(out, "", "data_parallel_ms", p->data_parallel_ms);
    put_key_num(out, "", "speedup_vs_data_parallel", p->speedup_vs_data_parallel);
    fprintf(out, "exact: %s\n", p->exact ? "true" : "false");
    if (!p->exact) put_key_num(out, "", "lower_bound_ms", p->lower_bound_ms);
    if (!p->exact && p->lower_bound_ms > 0) /* relative: (bottleneck - bound) / bound */
        put_key_num(out, "", "lower_bound_gap",
                    (p->bottleneck_ms - p->lower_bound_ms) / p->lower_bound_ms);
    fputs("certificate:\n", out);
    put_key_str(out, "  ", "solver", p->certificate.solver[0] ? p->certificate.solver : "glpk");
    put_key_str(out, "  ", "status",
                p->certificate.status[0] ? p->certificate.status : "skipped");
    put_key_num(out, "  ", "objective", p->certificate.objective);
    put_key_num(out, "  ", "gap", p->certificate.gap);
    put_key_num(out, "  ", "seconds", p->certificate.seconds);
    fputs("stages:\n", out);
    for (int s = 0; s < p->n_stages; s++) {
        const pd_stage *st = &p->stages[s];
        fprintf(out, "  - id: %d\n", s);
        fputs("    layers: [", out);
        for (int k = 0; k < st->n_nodes; k++) {
            if (k) fputs(", ", out);
            int v = st->nodes[k];
            if (v >= 0 && v < g->n && g->name && g->name[v]) put_str(out, g->name[v]);
            else fprintf(out, "\"node %d\"", v);
        }
        fputs("]\n    nodes: [", out);
        for (int k = 0; k < st->n_nodes; k++) fprintf(out, "%s%d", k ? ", " : "", st->nodes[k]);
        fprintf(out, "]\n    replicas: %d\n    ranks: [", st->replicas);
        for (int k = 0; k < st->replicas; k++) fprintf(out, "%s%d", k ? ", " : "", st->ranks[k]);
        fprintf(out, "]\n    warmup: %d\n    weight_versions: %d\n", st->warmup,
                st->weight_versions);
        if (st->recompute) fprintf(out, "    recompute: %s\n", pd_recompute_name(st->recompute));
        put_key_num(out, "    ", "compute_ms", st->compute_ms);
        put_key_num(out, "    ", "allreduce_ms", st->allreduce_ms);
        put_key_num(out, "    ", "comm_ms", st->comm_in_ms + st->comm_out_ms);
        put_key_num(out, "    ", "comm_in_ms", st->comm_in_ms);
        put_key_num(out, "    ", "comm_out_ms", st->comm_out_ms);
        put_key_num(out, "    ", "time_ms", st->time_ms);
        put_key_num(out, "    ", "memory_bytes", st->memory_bytes);
        put_key_num(out, "    ", "param_bytes", st->param_bytes);
        fprintf(out, "    params: %lld\n", (long long)st->params);
        if (st->tied_params) { /* tied weights: only where there are some */
            fprintf(out, "    tied_params: %lld\n", (long long)st->tied_params);
            put_key_num(out, "    ", "tied_ms", st->tied_ms);
        }
        put_key_num(out, "    ", "act_in_bytes", st->act_in_bytes);
        put_key_num(out, "    ", "act_out_bytes", st->act_out_bytes);
    }
    return ferror(out) ? -1 : 0;
}

int pd_plan_save(const char *dir, const pd_plan *p, const pd_costgraph *g, const pd_cluster *c,
                 const pd_plan_info *info, pd_diag *d) {
    size_t n = strlen(dir) + 64;
    char *tmp = malloc(n), *final = malloc(n);
    int rc = 1, fd = -1;
    FILE *f = NULL;
    if (!tmp || !final) {
        pd_diag_error(d, dir, 0, 0, "out of memory writing plan.yaml");
        goto done;
    }
    snprintf(tmp, n, "%s/.plan.yaml.XXXXXX", dir);
    snprintf(final, n, "%s/plan.yaml", dir);
    fd = mkstemp(tmp);
    if (fd < 0) {
        pd_diag_error(d, dir, 0, 0, "cannot create a temporary file: %s", strerror(errno));
        goto done;
    }
    f = fdopen(fd, "w");
    if (!f) {
        pd_diag_error(d, tmp, 0, 0, "fdopen: %s", strerror(errno));
        close(fd);
        unlink(tmp);
        goto done;
    }
    mode_t mask = umask(022); /* mkstemp makes 0600; give plan.yaml the usual 0666 & ~umask */
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) { /* not fatal */ }
    int bad = pd_plan_write_yaml(f, p, g, c, info) != 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0 && errno != EINVAL;
    bad |= fclose(f) != 0;
    if (bad) {
        pd_diag_error(d, final, 0, 0, "writing failed: %s", strerror(errno));
        unlink(tmp);
        goto done;
    }
    if (rename(tmp, final) != 0) {
        pd_diag_error(d, final, 0, 0, "rename from %s failed: %s", tmp, strerror(errno));
        unlink(tmp);
        goto done;
    }
    rc = 0;
done:
    free(tmp);
    free(final);
    return rc;
}

/* ---- the table ---- */

static void human_bytes(char *buf, size_t n, double b) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (fabs(b) >= 1024 && u < 5) {
        b /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, n, "%.0f B", b);
    else snprintf(buf, n, "%.1f %s", b, unit[u]);
}

static const char *node_name(const pd_costgraph *g, int v, char *buf, size_t n) {
    if (v >= 0 && v < g->n && g->name && g->name[v]) return g->name[v];
    snprintf(buf, n, "node%d", v);
    return buf;
}

/* "a..b": the first and last layers, shortened to fit width. */
static void layer_span(char *buf, size_t n, const pd_costgraph *g, const pd_stage *st) {
    char b1[32], b2[32];
    if (st->n_nodes == 0) {
        snprintf(buf, n, "(none)");
        return;
    }
    const char *first = node_name(g, st->nodes[0], b1, sizeof b1);
    const char *last = node_name(g, st->nodes[st->n_nodes - 1], b2, sizeof b2);
    if (st->n_nodes == 1) snprintf(buf, n, "%.40s", first);
    else snprintf(buf, n, "%.18s..%.18s", first, last);
}

static void rank_span(char *buf, size_t n, const pd_stage *st) {
    int contiguous = 1;
    for (int k = 1; k < st->replicas; k++)
        if (st->ranks[k] != st->ranks[k - 1] + 1) contiguous = 0;
    if (st->replicas == 0) snprintf(buf, n, "-");
    else if (st->replicas == 1) snprintf(buf, n, "%d", st->ranks[0]);
    else if (contiguous) snprintf(buf, n, "%d-%d", st->ranks[0], st->ranks[st->replicas - 1]);
    else {
        size_t used = 0;
        buf[0] = '\0';
        for (int k = 0; k < st->replicas && used + 12 < n; k++)
            used += snprintf(buf + used, n - used, "%s%d", k ? "," : "", st->ranks[k]);
    }
}

void pd_plan_print_table(FILE *out, const pd_plan *p, const pd_costgraph *g,
                         const pd_cluster *c, const pd_plan_info *info) {
    char mem[32], span[48], ranks[64];
    fprintf(out, "%s: %d layers on %d of %d workers (", info->model_name ? info->model_name : "model",
            g->n, p->workers, cluster_workers(c));
    for (int l = 0; l < c->n_levels; l++)
        fprintf(out, "%s%d x %.3g B/s", l ? ", " : "", c->count[l], c->bandwidth[l]);
    fprintf(out, "), cost model %s, schedule %s%s\n",
            p->cost_model == PD_COST_PIPEDREAM ? "pipedream" : "default",
            p->schedule[0] ? p->schedule : "1f1b", p->straight ? ", straight" : "");
    fprintf(out, "%5s  %-40s %6s %8s %-12s %11s %11s %11s %13s\n", "stage", "layers", "count",
            "replicas", "ranks", "compute ms", "time ms", "memory", "params");
    for (int s = 0; s < p->n_stages; s++) {
        const pd_stage *st = &p->stages[s];
        layer_span(span, sizeof span, g, st);
        rank_span(ranks, sizeof ranks, st);
        human_bytes(mem, sizeof mem, st->memory_bytes);
        fprintf(out, "%5d  %-40s %6d %8d %-12s %11.3f %11.3f %11s %13lld\n", s, span, st->n_nodes,
                st->replicas, ranks, st->compute_ms, st->time_ms, mem, (long long)st->params);
    }
    double tp = pd_plan_throughput(p, info->batch);
    fprintf(out, "bottleneck: %.3f ms per minibatch; throughput: %.2f %s\n", p->bottleneck_ms, tp,
            info->batch > 0 ? "samples/s" : "minibatches/s");
    if (p->simulated_ms > 0)
        fprintf(out, "  (simulated: the memory limit holds this replicated pipeline at PipeDream's "
                "warm-up depth,\n   where its replicas wait on their round trips; the stages' "
                "steady state is %.3f ms)\n", p->stages_ms);
    if (!p->exact && p->simulated_ms > 0)
        fprintf(out, "not exact: simulated, not the DP's objective (plans at the deeper warm-up, "
                "which reach their price,\n  do not fit the memory limit or are slower)\n");
    else if (!p->exact && p->chunks > 1)
        fprintf(out, "not exact: the workers' sums of chunks are balanced by moving layers "
                "between chunks (a local search);\n  proven lower bound %.3f ms\n",
                p->lower_bound_ms);
    else if (!p->exact)
        fprintf(out, "not exact: the DP searched a subset of the states; proven lower bound "
                "%.3f ms\n", p->lower_bound_ms);
    fprintf(out, "data parallel: %.3f ms per minibatch on %d workers; speedup %.2fx\n",
            p->data_parallel_ms, cluster_workers(c), p->speedup_vs_data_parallel);
    if (p->speedup_vs_data_parallel < 1 - 1e-12 && p->speedup_vs_data_parallel > 0) {
        if (p->cost_model == PD_COST_PIPEDREAM)
            fprintf(out, "  (below 1x: --compat pipedream prices plans and data parallelism with "
                    "the original's formulas,\n   which do not agree with each other; "
                    "docs/planner.md)\n");
        else if (p->chunks > 1)
            fprintf(out, "  (below 1x: %d chunks of whole layers do not balance the workers "
                    "closer, and interleaving\n   adds transfers; docs/planner.md)\n", p->n_stages);
        else if (tied_ms(p) > 0)
            fprintf(out, "  (below 1x: the exchange of tied weights between stages, %.3f ms, is "
                    "counted after the DP chose\n   the stages; the DP does not price it yet "
                    "(docs/planner.md))\n", tied_ms(p));
        else
            fprintf(out, "  (below 1x: data parallelism does not fit in the memory limit of "
                    "%.4g bytes per worker)\n", c ? c->memory_bytes : 0.0);
    }
    const pd_certificate *ct = &p->certificate;
    if (!ct->status[0] || !strcmp(ct->status, "skipped"))
        fprintf(out, "certificate: skipped\n");
    else
        fprintf(out, "certificate: %s %s, objective %.3f ms, gap %.3g, %.2f s\n",
                ct->solver[0] ? ct->solver : "glpk", ct->status, ct->objective, ct->gap,
                ct->seconds);
    if (ct->status[0] && strcmp(ct->status, "skipped") && p->chunks > 1)
        fprintf(out, "  (of the DP's slowest chunk, before the workers were balanced: a lower "
                "bound on the slowest worker)\n");
    if (info->estimated) fprintf(out, "costs: %s\n", info->cost_source ? info->cost_source
                                                                       : "estimated");
}
