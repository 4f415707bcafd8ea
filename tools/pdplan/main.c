/* main.c: pdplan, the command. Reads a model YAML or an ONNX model (with a profile or an
 * estimate) or a PipeDream graph.txt and a cluster, plans the pipeline (pd_plan_dp), certifies it with GLPK when small
 * or asked (pd_certify), writes DIR/plan.yaml atomically, prints the table and, for model YAML,
 * generates the stage sources (pd_codegen). Options and exit statuses: docs/pdplan.md.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "choose.h"
#include "cli_args.h"
#include "import.h"
#include "interleave.h"
#include "codegen/codegen.h"
#include "planner/dp/dp.h"
#include "planner/read/frontend.h"
#include "planner/read/yaml_util.h"
#include "planner/certificate/ilp.h"
#include "planner/cost/cost.h"
#include "planner/plan/plan_draw.h"
#include "planner/plan/plan_write.h"
#include "planner/sim/simulate.h"
#include "runtime/schedule/schedule.h"
#include "planner/util/fs.h"
#include "planner/util/progress.h"
#include "planner/util/shell.h"

enum { EXIT_OK = 0, EXIT_INTERNAL = 1, EXIT_INPUT = 2, EXIT_BETTER = 3 };

/* ---- progress on stderr for phases that take more than a second (planner/util/progress.h) ---- */

static const char *const phase_names[] = {"", "loading inputs", "planning",
                                          "certifying with GLPK", "generating code"};
enum { PH_NONE, PH_LOAD, PH_PLAN, PH_CERTIFY, PH_CODEGEN };

/* ---- helpers ---- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* A graph.txt's model name: its folder's name for ".../vgg16/graph.txt", else the file's name
 * without ".txt". Only [A-Za-z0-9_.-] are kept, so that it is a safe folder name. */
static void safe_name(char *out, size_t n, const char *s, size_t len) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
        out[k++] = ok ? ch : '_';
    }
    out[k] = '\0';
    if (k == 0 || !strcmp(out, ".") || !strcmp(out, "..")) snprintf(out, n, "model");
}

static void graphtxt_name(char *out, size_t n, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!strcasecmp(base, "graph.txt") && base > path) {
        const char *end = base - 1; /* the '/' */
        while (end > path && end[-1] == '/') end--;
        const char *start = end;
        while (start > path && start[-1] != '/') start--;
        if (end > start && !(end - start == 1 && *start == '.')) {
            safe_name(out, n, start, (size_t)(end - start));
            return;
        }
    }
    size_t len = strlen(base);
    if (ends_with(base, ".txt")) len -= 4;
    safe_name(out, n, base, len);
}

/* The checkout the generated Makefile points at: $PDC_ROOT, else the nearest folder above the
 * executable that holds runtime/ and templates/ (planner/util/fs.h), else the current folder. */
static void find_root(char *out, size_t n) {
    const char *env = getenv("PDC_ROOT");
    char buf[PATH_MAX];
    if (env && *env && realpath(env, buf)) {
        snprintf(out, n, "%s", buf);
        return;
    }
    ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (len > 0) {
        buf[len] = '\0';
        char *slash = strrchr(buf, '/');
        if (slash && slash != buf) {
            *slash = '\0'; /* the executable's folder */
            if (pd_find_checkout(out, n, buf, 4) == 0) return;
        }
    }
    if (!getcwd(out, n)) snprintf(out, n, ".");
}

/* --draw: DIR/plan.dot, and DIR/plan.svg rendered by Graphviz's dot when it is on the PATH
 * (without it, the DOT file alone, said so). Returns 0, or -1 with a diagnostic. */
static int draw_plan(const char *outdir, const pd_costgraph *g, const pd_plan *p, int quiet,
                     pd_diag *d) {
    char dotp[PATH_MAX], svgp[PATH_MAX], title[128];
    snprintf(dotp, sizeof dotp, "%s/plan.dot", outdir);
    snprintf(svgp, sizeof svgp, "%s/plan.svg", outdir);
    snprintf(title, sizeof title, "%d stages on %d workers, %.3f ms per minibatch (%.2fx data "
             "parallel)", p->n_stages, p->workers, p->bottleneck_ms, p->speedup_vs_data_parallel);
    FILE *f = fopen(dotp, "w");
    int w = f ? pd_plan_write_dot(f, g, p, title) : -1;
    if (f && fclose(f) != 0) w = -1;
    if (w) {
        pd_diag_error(d, dotp, 0, 0, "cannot write the drawing: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("dot", "dot", "-Tsvg", dotp, "-o", svgp, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) st = -1;
    if (!quiet) {
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) printf("drew %s and %s\n", dotp, svgp);
        else if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
            printf("drew %s (Graphviz's dot is not installed: no SVG; apt-get install "
                   "graphviz)\n", dotp);
        else printf("drew %s (dot failed: no SVG)\n", dotp);
    }
    return 0;
}

static void print_certificate_scope(FILE *out, const pd_cli *cli, const pd_costgraph *g,
                                    int ran) {
    if (cli->verify)
        fprintf(out, "certificate: run because of --verify (%d nodes)\n", g->n);
    else if (ran)
        fprintf(out, "certificate: run by default (%d nodes <= %d; --verify runs it on larger "
                "graphs)\n", g->n, PD_ILP_DEFAULT_MAX_NODES);
    else
        fprintf(out, "certificate: not run (%d nodes > %d, the default threshold; --verify runs "
                "it)\n", g->n, PD_ILP_DEFAULT_MAX_NODES);
}

/* Reads an input file once, at most max bytes (pd_read_file reports what goes wrong), and its
 * FNV-1a as 16 hex digits into hash. The caller frees the text. */
static char *read_input(const char *path, size_t max, size_t *len, char hash[17], pd_diag *d) {
    char *text = pd_read_file(path, max, len, d);
    if (text) pd_fnv1a_hex(hash, text, *len);
    return text;
}

/* ---- the command ---- */

int main(int argc, char **argv) {
    pd_diag d = {.out = stderr};
    pd_cli cli;
    pd_cluster c;
    pd_model m;
    pd_costgraph *g = NULL, *g_rc = NULL, *g_sel = NULL;
    pd_plan *p = NULL, *better = NULL;
    int model_loaded = 0, status = EXIT_INTERNAL;
    char model_name[PD_NAME_MAX + 8] = "", cost_source[320] = "", *outdir_alloc = NULL;
    char input_hash[17] = "", profile_hash[17] = "", cluster_hash[17] = "";
    char *cmdline = NULL, *in_text = NULL;
    memset(&c, 0, sizeof c);
    memset(&m, 0, sizeof m);

    int arg_errors = pd_cli_parse(&cli, argc, argv, &d);
    if (cli.help) {
        pd_cli_usage(stdout);
        return EXIT_OK;
    }
    if (cli.version) {
        printf("pdplan %s\n", PDPLAN_VERSION);
        return EXIT_OK;
    }
    if (!cli.input) {
        fprintf(stderr, "usage: pdplan MODEL.yaml|MODEL.onnx|graph.txt [options]   "
                "(pdplan --help)\n");
        return EXIT_INPUT;
    }
    pd_progress_init("pdplan", phase_names);
    pd_progress_begin(PH_LOAD);
    int is_graphtxt = ends_with(cli.input, ".txt"), is_onnx = ends_with(cli.input, ".onnx");
    pd_onnx_weights onnx_w = {0};
    if (!is_onnx && cli.settings)
        pd_diag_error(&d, "pdplan", 0, 0, "--settings applies to an ONNX model; a model YAML "
                      "carries its own");
    if (is_graphtxt && cli.emit_yaml)
        pd_diag_error(&d, "pdplan", 0, 0, "--emit-yaml applies to a model YAML or ONNX model");
    if (is_graphtxt && cli.profile)
        pd_diag_error(&d, "pdplan", 0, 0, "-p/--profile applies to a model YAML; a graph.txt "
                      "carries its own times");

    /* the cluster */
    const char *cluster_kind = "default";
    if (cli.cluster) {
        cluster_kind = "file";
        size_t len = 0;
        char *text = read_input(cli.cluster, PD_YAML_MAX_BYTES, &len, cluster_hash, &d);
        if (text) pd_cluster_load_text(cli.cluster, text, len, &c, &d);
        free(text);
    } else if (cli.n_counts > 0 && !arg_errors) { /* bad -n/-b values: reported already */
        cluster_kind = "flags";
        pd_cluster_from_flags(&c, cli.counts, cli.n_counts, cli.bandwidths, cli.n_bandwidths,
                              cli.memory_bytes, &d);
    } else {
        pd_cluster_default(&c);
    }
    if (cli.memory_bytes > 0) c.memory_bytes = cli.memory_bytes;
    if (cli.device) snprintf(c.device, sizeof c.device, "%s", cli.device);
    const char *device = c.device[0] ? c.device : "cpu";

    /* the input: read once, bounded (a pipe or /dev/zero ends in a diagnostic), hashed and
     * parsed from memory */
    size_t in_len = 0;
    in_text = read_input(cli.input, is_graphtxt ? PD_GRAPHTXT_MAX_BYTES
                                    : is_onnx   ? PD_ONNX_MAX_BYTES : PD_YAML_MAX_BYTES,
                         &in_len, input_hash, &d);
    if (!in_text) {
        /* the reason is reported */
    } else if (is_graphtxt) {
        g = pd_graphtxt_load_text(cli.input, in_text, in_len, &d);
        graphtxt_name(model_name, sizeof model_name, cli.input);
        snprintf(cost_source, sizeof cost_source, "%s", cli.input);
    } else if (is_onnx ? pd_import_load(cli.input, in_text, in_len, cli.settings, &m, &onnx_w,
                                        &d) == 0
                       : pd_model_load_text(cli.input, in_text, in_len, &m, &d) == 0) {
        model_loaded = 1;
        if (cli.emit_yaml) { /* the model as YAML, and nothing else */
            pd_progress_end();
            status = pd_import_emit_yaml(cli.emit_yaml, &m, &onnx_w, &d) ? EXIT_INPUT : EXIT_OK;
            if (!status && !cli.quiet) printf("wrote %s%s\n", cli.emit_yaml,
                                              onnx_w.n ? " and its initial weights" : "");
            goto done;
        }
        safe_name(model_name, sizeof model_name, m.name, strlen(m.name));
        if (cli.profile) {
            size_t len = 0;
            char *text = read_input(cli.profile, PD_YAML_MAX_BYTES, &len, profile_hash, &d);
            if (text) pd_profile_apply_text(cli.profile, text, len, &m, &d);
            free(text);
            snprintf(cost_source, sizeof cost_source, "%s", cli.profile);
        } else {
            pd_estimate_costs(&m, device, &d);
            snprintf(cost_source, sizeof cost_source, "estimated for %s", device);
        }
        if (!pd_diag_errors(&d)) {
            g = pd_model_costgraph(&m);
            if (!g) pd_diag_error(&d, cli.input, 0, 0, "out of memory building the cost graph");
        }
    }
    pd_progress_end();
    if (pd_diag_errors(&d) || !g) {
        status = EXIT_INPUT;
        fprintf(stderr, "pdplan: %d error%s; nothing written\n", d.errors,
                d.errors == 1 ? "" : "s");
        goto done;
    }

    /* planning */
    pd_plan_opts o = {.cost_model = cli.cost_model, .straight = cli.straight,
                      .schedule = cli.schedule, .max_states = cli.max_states,
                      .verbose = cli.verbose, .threads = cli.threads,
                      .memory_budget = cli.memory_budget};
    pd_progress_begin(PH_PLAN);
    int choose = !strcmp(cli.schedule, "auto");
    int inter = !strcmp(cli.schedule, "interleaved"), inter_M = 0;
    int cpu = strcmp(cli.backend, "cuda") != 0;
    pd_cluster c_planned = c; /* the cluster and memory model the plan's partition was planned on */
    /* with recomputation the DP plans over a graph whose backward runs the forward again (a
     * per-stage list: the partition is planned without, the modes applied after) */
    int rc_all = cli.n_recompute_stages ? 0 : cli.recompute;
    int priced_rc = rc_all; /* the DP priced recomputation (planned over g_rc) */
    if (choose || rc_all) {
        g_rc = pd_recompute_graph(g, choose ? PD_RECOMPUTE_FULL : rc_all);
        g_sel = choose && cpu ? pd_recompute_graph(g, PD_RECOMPUTE_SELECTIVE) : NULL;
        if (!g_rc || (choose && cpu && !g_sel)) {
            pd_diag_error(&d, "pdplan", 0, 0, "out of memory");
            status = EXIT_INTERNAL;
            goto done;
        }
    }
    if (choose) { /* the DP under each candidate's memory model, each plan simulated */
        p = pd_choose_schedule(stdout, g, g_rc, g_sel, &c, &o, cpu, cli.explain, &c_planned,
                               &priced_rc, &d);
        int v = p ? pd_interleave_consider(stdout, g, &c, &o, p, cli.explain, &inter_M) : 0;
        if (v) { /* interleaved wins: plan it as --schedule interleaved --chunks v does */
            pd_plan_free(p);
            cli.schedule = "interleaved";
            cli.chunks = v;
            cli.recompute = 0;
            cli.microbatches = inter_M;
            inter = 1;
            priced_rc = 0;
            o.straight = 1;
            o.schedule = cli.schedule;
            p = pd_interleave_cluster(&c_planned, &inter_M, &c, v, inter_M, g, &d)
                    ? NULL : pd_plan_dp(g, &c_planned, &o, &d);
        } else if (p) { /* what the rest of pdplan reads from the options */
            static char chosen_name[16];
            snprintf(chosen_name, sizeof chosen_name, "%s", p->schedule);
            cli.schedule = chosen_name;
            cli.recompute = 0; /* the stages' own modes, a mix's too (pd_cli_apply_recompute) */
            for (int s = 0; s < p->n_stages; s++)
                if (p->stages[s].recompute) cli.recompute = p->stages[s].recompute;
            cli.microbatches = p->microbatches;
        }
    } else if (inter) { /* p * v one-worker stages, mapped onto the p workers below */
        if (!pd_interleave_cluster(&c_planned, &inter_M, &c, cli.chunks, cli.microbatches, g, &d)) {
            o.straight = 1;
            p = pd_plan_dp(g, &c_planned, &o, &d);
        }
    } else { /* the best partition under the schedule's memory model */
        p = pd_plan_schedule(g, rc_all ? g_rc : g, &c, &o, cli.schedule, rc_all, cli.microbatches,
                             1, &c_planned, &d);
    }
    const pd_costgraph *g_planned = /* the certificate's (a mix's: its stages' modes, --explain's) */
        priced_rc <= 0 ? g : choose && cli.recompute == PD_RECOMPUTE_SELECTIVE ? g_sel : g_rc;
    if (p && priced_rc == -2 && !inter) {
        pd_recompute_graph_free(g_rc); /* not needed after the choice */
        g_planned = g_rc = pd_recompute_graph_of(g, p);
        if (!g_rc) {
            pd_diag_error(&d, "pdplan", 0, 0, "out of memory");
            status = EXIT_INTERNAL;
            goto done;
        }
    }
    pd_progress_end();
    if (!p) {
        status = pd_diag_errors(&d) ? EXIT_INPUT : EXIT_INTERNAL;
        if (!pd_diag_errors(&d)) fprintf(stderr, "pdplan: error: the planner returned no plan\n");
        fprintf(stderr, "pdplan: no plan; nothing written\n");
        goto done;
    }
    p->cost_model = cli.cost_model;
    snprintf(p->schedule, sizeof p->schedule, "%s", cli.schedule);
    p->straight = cli.straight;
    p->vertical_sync = cli.vertical_sync && !strcmp(cli.schedule, "1f1b");
    /* every stage's mode, or the listed ones' (auto's plan has its stages' own) */
    if ((!choose || inter) && pd_cli_apply_recompute(&cli, p, &d)) {
        status = EXIT_INPUT;
        fprintf(stderr, "pdplan: no plan; nothing written\n");
        goto done;
    }
    int batch = model_loaded ? m.batch : 0;
    p->throughput = pd_plan_throughput(p, batch);
    pd_plan_info info = {
        .model_name = model_name,
        .input_kind = is_graphtxt ? "graph.txt" : is_onnx ? "onnx" : "model",
        .input_path = cli.input, .input_hash = input_hash,
        .profile_path = cli.profile, .profile_hash = cli.profile ? profile_hash : NULL,
        .cluster_kind = cluster_kind,
        .cluster_path = cli.cluster, .cluster_hash = cli.cluster ? cluster_hash : NULL,
        .cost_source = cost_source,
        .estimated = !is_graphtxt && !cli.profile,
        .batch = batch,
    };

    /* the certificate */
    /* (a plan auto chose by simulation among partitions priced otherwise has no optimum to
     * certify: choose.h) */
    /* (nor one whose bottleneck is simulated, at PipeDream's warm-up under the memory limit) */
    int certify = (cli.verify || g->n <= PD_ILP_DEFAULT_MAX_NODES) && priced_rc >= 0 &&
                  !(p->simulated_ms > 0);
    if (certify) {
        pd_progress_begin(PH_CERTIFY);
        int rc = pd_certify(g_planned, &c_planned, &o, p, cli.time_limit_s, &better, &d);
        pd_progress_end();
        if (rc < 0) {
            fprintf(stderr, "pdplan: error: the certificate failed; nothing written\n");
            status = EXIT_INTERNAL;
            goto done;
        }
        if (rc == 1) {
            pd_progress_stop();
            printf("The DP's plan:\n");
            pd_plan_print_table(stdout, p, g, &c, &info);
            if (better) {
                better->throughput = pd_plan_throughput(better, batch);
                printf("\nThe integer program's better plan:\n");
                pd_plan_print_table(stdout, better, g, &c, &info);
            }
            fprintf(stderr, "pdplan: error: the integer program found a plan better than the "
                    "DP's (%.17g ms < %.17g ms): a planner bug; nothing written\n",
                    p->certificate.objective, p->bottleneck_ms);
            status = EXIT_BETTER;
            goto done;
        }
    }

    /* interleaved: the workers' sums of chunks balanced, once the certificate has checked the
     * DP's chunks (interleave.c) */
    if (inter) pd_interleave_rebalance(p, g, &c_planned, cli.chunks);

    /* tied weights across stages: their exchange, counted on the chosen plan (cost/tied.c) */
    if (model_loaded) {
        pd_plan_count_ties(p, &m, &c);
        p->throughput = pd_plan_throughput(p, batch);
    }
    pd_plan_count_params(p, model_loaded ? &m : NULL); /* each stage's parameters (cost/tied.c) */
    if (inter) { /* stage s on worker s mod p; a worker's time is its chunks' (interleave.c) */
        pd_interleave_apply(p, g, &c, cli.chunks, inter_M);
        p->throughput = pd_plan_throughput(p, batch);
        if (pd_interleave_memory(p, g, &c, &d)) {
            status = EXIT_INPUT;
            fprintf(stderr, "pdplan: no plan; nothing written\n");
            goto done;
        }
    }

    /* output: the folder only now that planning succeeded */
    const char *outdir = cli.outdir;
    /* refuse what code generation cannot emit before anything is written */
    if (!is_graphtxt && !cli.no_codegen) {
        int n_planning = 0, first = 0; /* ops without a runtime kernel (model.h) */
        for (int i = 1; i < m.n_layers; i++)
            if (pd_op_planning_only(m.layers[i].op) && !n_planning++) first = i;
        if (n_planning) {
            const pd_layer *L = &m.layers[first];
            pd_diag_error(&d, cli.input, L->line, L->col, "layer '%s': op %s is planning-only "
                          "(%d such layer%s): code generation cannot emit it; "
                          "pass --no-codegen to plan only", L->name, pd_op_name(L->op),
                          n_planning, n_planning == 1 ? "" : "s");
            status = EXIT_INPUT;
            goto done;
        }
        pd_codegen_opts check = {.backend = cli.backend};
        if (pd_codegen_check(&m, p, &check, &d)) { /* e.g. more stages than the runtime runs */
            status = EXIT_INPUT;
            goto done;
        }
    }
    if (!outdir) {
        size_t n = strlen(model_name) + 16;
        outdir_alloc = malloc(n);
        if (!outdir_alloc) goto done;
        snprintf(outdir_alloc, n, "generated/%s", model_name);
        outdir = outdir_alloc;
    }
    if (pd_mkdir_p(outdir) != 0) {
        pd_diag_error(&d, outdir, 0, 0, "cannot create the output folder: %s", strerror(errno));
        status = EXIT_INPUT;
        goto done;
    }
    if (pd_plan_save(outdir, p, g, &c, &info, &d) != 0) {
        status = EXIT_INTERNAL;
        goto done;
    }
    if (!cli.quiet) {
        pd_plan_print_table(stdout, p, g, &c, &info);
        if (priced_rc == -2)
            printf("certificate: not run (--schedule auto chose a per-stage recomputation mix, "
                   "which no DP run priced)\n");
        else if (priced_rc < 0)
            printf("certificate: not run (--schedule auto chose a recomputing plan on a "
                   "partition the DP priced without recomputation)\n");
        else
            print_certificate_scope(stdout, &cli, g, certify);
        printf("wrote %s/plan.yaml\n", outdir);
    }
    if (cli.explain) {
        fflush(stdout);
        printf("\n");
        pd_explain(stdout, g_planned, &c_planned, &o, p); /* as planned: its memory model */
    }
    if (cli.simulate) {
        char trace_path[PATH_MAX];
        snprintf(trace_path, sizeof trace_path, "%s/sim_trace.json", outdir);
        printf("\n");
        /* the all-reduce of the runtime --backend generates for */
        pd_sim_opts so = {.allreduce = strcmp(cli.backend, "cuda") == 0 ? PD_SIM_AR_RING
                                                                      : PD_SIM_AR_GATHER,
                          .microbatches = p->microbatches};
        if (pd_simulate_report(stdout, g, &c, p, trace_path, &so, &d) != 0) {
            status = EXIT_INTERNAL;
            goto done;
        }
        char svg[PATH_MAX];
        snprintf(svg, sizeof svg, "%s/timeline.svg", outdir);
        if (pd_simulate_timeline(svg, g, &c, p, &so, &d) != 0) {
            status = EXIT_INTERNAL;
            goto done;
        }
        printf("  timeline: %s\n", svg);
    }
    if (cli.draw && draw_plan(outdir, g, p, cli.quiet, &d) != 0) {
        status = EXIT_INTERNAL;
        goto done;
    }
    fflush(stdout);

    /* code generation (model YAML only) */
    if (!is_graphtxt && !cli.no_codegen) {
        char root[PATH_MAX];
        find_root(root, sizeof root);
        cmdline = pd_shell_command_line("pdplan", argc, argv);
        pd_codegen_opts co = {.backend = cli.backend, .command_line = cmdline, .root = root,
                               .precision = cli.precision};
        pd_progress_begin(PH_CODEGEN);
        int rc = pd_codegen(&m, g, p, outdir, &co, &d);
        pd_progress_end();
        if (rc != 0) {
            fprintf(stderr, "pdplan: code generation failed (%s/plan.yaml was written)\n",
                    outdir);
            status = pd_diag_errors(&d) ? EXIT_INPUT : EXIT_INTERNAL;
            goto done;
        }
        /* the source beside the stages: pdexport writes the trained model from it, and an
         * ONNX model's weights in init/ are where pdlaunch starts training (--init) */
        if (pd_import_keep(outdir, in_text, in_len, is_onnx, &onnx_w, &d)) {
            status = EXIT_INTERNAL;
            goto done;
        }
        if (!cli.quiet) printf("generated %s (backend %s)%s\n", outdir, cli.backend,
                               is_onnx ? ", initial weights from the ONNX file in init/" : "");
    }
    status = EXIT_OK;

done:
    pd_progress_stop();
    if (better) pd_plan_free(better);
    if (p) pd_plan_free(p);
    pd_recompute_graph_free(g_rc);
    pd_recompute_graph_free(g_sel);
    if (g) pd_costgraph_free(g);
    if (model_loaded) pd_model_free(&m);
    pd_onnx_weights_free(&onnx_w);
    free(in_text);
    free(outdir_alloc);
    free(cmdline);
    return status;
}
