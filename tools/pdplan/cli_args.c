/* cli_args.c: parses and validates pdplan's command line into a pd_cli (see cli_args.h). */
#include "cli_args.h"
#include "choose.h"
#include "planner/certificate/ilp.h"
#include "runtime/schedule/schedule.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PD_STR2(x) #x
#define PD_STR(x) PD_STR2(x)

void pd_cli_usage(FILE *out) {
    fputs(
        "usage: pdplan MODEL.yaml|MODEL.onnx|graph.txt [options]\n"
        "\n"
        "Plans PipeDream pipeline stages (with data-parallel replicas) for a model and writes\n"
        "DIR/plan.yaml, then (model YAML or ONNX) the generated stage sources.\n"
        "\n"
        "inputs:\n"
        "      --settings FILE      an ONNX model's training settings (name, batch, dataset,\n"
        "                           loss, optimizer, epochs; default: MODEL.train.yaml beside\n"
        "                           it when there is one; docs/formats.md, \"ONNX\")\n"
        "  -p, --profile FILE       profile YAML (pd_profile: 1); without one, costs are\n"
        "                           estimated for --device and the plan says \"estimated\"\n"
        "      --device NAME        device for estimates: cpu, h200, v100\n"
        "                           (default: the cluster's device, else cpu)\n"
        "  -c, --cluster FILE       cluster YAML (pd_cluster: 1)\n"
        "  -n N1 [N2 ...]           workers per level, innermost first (PipeDream's flag);\n"
        "                           at most 1000000 workers in all (-n or -c)\n"
        "  -b B1 [B2 ...]           bandwidth per level in bytes/s (default 1e9); as many\n"
        "                           values as -n\n"
        "      --memory BYTES       memory limit per worker, in bytes (e.g. 16e9)\n"
        "                           without -n/-c the cluster is this machine's cores\n"
        "planning:\n"
        "      --straight           no replication: every stage one worker, all workers used\n"
        "      --compat pipedream   the original optimizer's cost model and memory check\n"
        "      --schedule S         1f1b (default), flush, gpipe, zb-h1, zb-h2, 2bw: the DP plans\n"
        "                           under S's memory (--memory); interleaved (--chunks); or\n"
        "                           auto: the DP plans each schedule, microbatch count and\n"
        "                           recomputation the backend runs, under --memory also each\n"
        "                           plan's per-stage mix (each stage the cheapest mode that\n"
        "                           fits), and the fastest simulated plan that fits wins,\n"
        "                           interleaved considered too (--explain lists them)\n"
        "      --microbatches M     flush, gpipe, zb-h1, zb-h2, 2bw: minibatches per batch (default\n"
        "                           4 x stages; rounded up to a multiple of every replica count)\n"
        "      --chunks V           interleaved: V stages per worker (default 2), stage s on\n"
        "                           worker s mod workers; microbatches a multiple of workers\n"
        "      --vertical-sync      1f1b: every stage uses the weights stage 0 used (straight plans)\n"
        "      --recompute [MODE]   activation recomputation: full (the default\n"
        "                           when MODE is left out) keeps only each stage's input per\n"
        "                           minibatch in flight and recomputes its forward before the\n"
        "                           backward; selective keeps the outputs of linear, conv2d and\n"
        "                           lstm and recomputes the cheap layers (docs/ops.md); none;\n"
        "                           or per stage, e.g. 0:full,2:selective (the others none)\n"
        "      --max-states N       cap on the downward-closed sets the DP enumerates\n"
        "                           (default 20000; above it, on one level without a memory\n"
        "                           limit, the lattice search covers them all)\n"
        "      --memory-budget B    bytes the DP's tables may take (default 2 GiB); above it\n"
        "                           the DP plans over fewer states (not exact, says so)\n"
        "      --threads N          threads for a hierarchy's inner levels (default: the\n"
        "                           processors it may run on, at most 16; the plan is the same)\n"
        "      --verify             run the GLPK certificate whatever the graph's size (by\n"
        "                           default it runs on cost graphs of at most "
        PD_STR(PD_ILP_DEFAULT_MAX_NODES) " nodes)\n"
        "      --time-limit S       the certificate's time limit in seconds (default 60)\n"
        "output:\n"
        "  -o, --output DIR         output folder (default generated/<model>/)\n"
        "      --backend B          code generation backend: cpu (default) or cuda\n"
        "      --precision P        cuda stages' default precision: fp32 (default) or bf16 (fp32\n"
        "                           master weights; the stages' --precision overrides it)\n"
        "      --no-codegen         write plan.yaml only\n"
        "      --emit-yaml FILE     write the model as a pd: 1 YAML to FILE (an ONNX model's\n"
        "                           initial weights go to FILE's name without .yaml + \"_init/\")\n"
        "      --explain            after the table, say why each cut is where it is\n"
        "      --simulate           simulate the plan and data parallelism (docs/simulator.md)\n"
        "                           beside the DP's prediction; trace in DIR/sim_trace.json\n"
        "                           and draw its first minibatches in DIR/timeline.svg\n"
        "      --draw               the plan as a picture: DIR/plan.dot (stages as coloured\n"
        "                           clusters, cut edges with their bytes), DIR/plan.svg when\n"
        "                           Graphviz's dot is installed\n"
        "  -q, --quiet              no table\n"
        "  -v, --verbose            verbose planning\n"
        "  -h, --help               this text\n"
        "      --version            the version\n"
        "\n"
        "exit status: 0 planned, 1 internal error, 2 input error (nothing written),\n"
        "3 the integer program found a better plan than the DP (both are printed).\n"
        "See docs/pdplan.md.\n",
        out);
}

/* A whole-string strtod; 0 on success. */
static int parse_double(const char *s, double *v) {
    char *end;
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    *v = strtod(s, &end);
    if (*end != '\0') return -1;
    return 0;
}

/* Does the argument look like the start of a number (so that -n/-b keep consuming it)? */
static int looks_numeric(const char *s) {
    if (*s == '-' || *s == '+') s++;
    if (*s == '.') s++;
    return isdigit((unsigned char)*s) || strncasecmp(s, "nan", 3) == 0 ||
           strncasecmp(s, "inf", 3) == 0;
}

_Static_assert(PD_MAX_WORKERS == 1000000, "pd_cli_usage's -n line names the worker limit");

static void parse_count(pd_cli *cli, const char *s, pd_diag *d) {
    double v;
    if (parse_double(s, &v) != 0 || v != v) {
        pd_diag_error(d, "pdplan", 0, 0, "-n: '%s' is not a number of workers", s);
    } else if (v <= 0) {
        pd_diag_error(d, "pdplan", 0, 0, "-n: %s workers: a level needs at least one worker", s);
    } else if (v != floor(v)) {
        pd_diag_error(d, "pdplan", 0, 0, "-n: '%s' is not a whole number of workers", s);
    } else if (v > PD_MAX_WORKERS) {
        pd_diag_error(d, "pdplan", 0, 0, "-n: %s workers: at most %d workers in all", s,
                      PD_MAX_WORKERS);
    } else if (cli->n_counts == PD_MAX_LEVELS) {
        pd_diag_error(d, "pdplan", 0, 0, "-n: more than %d levels", PD_MAX_LEVELS);
    } else {
        cli->counts[cli->n_counts++] = (int)v;
        return;
    }
}

static void parse_bandwidth(pd_cli *cli, const char *s, pd_diag *d) {
    double v;
    if (parse_double(s, &v) != 0 || v != v || isinf(v)) {
        pd_diag_error(d, "pdplan", 0, 0, "-b: '%s' is not a bandwidth in bytes/s", s);
    } else if (v <= 0) {
        pd_diag_error(d, "pdplan", 0, 0, "-b: bandwidth %s must be > 0 bytes/s", s);
    } else if (cli->n_bandwidths == PD_MAX_LEVELS) {
        pd_diag_error(d, "pdplan", 0, 0, "-b: more than %d levels", PD_MAX_LEVELS);
    } else {
        cli->bandwidths[cli->n_bandwidths++] = v;
    }
}

static void parse_positive(double *out, const char *opt, const char *what, const char *s,
                           pd_diag *d) {
    double v;
    if (parse_double(s, &v) != 0 || v != v || isinf(v))
        pd_diag_error(d, "pdplan", 0, 0, "%s: '%s' is not %s", opt, s, what);
    else if (v <= 0)
        pd_diag_error(d, "pdplan", 0, 0, "%s: %s must be > 0", opt, s);
    else
        *out = v;
}

static int one_of(const char *s, const char *const *allowed) {
    for (int i = 0; allowed[i]; i++)
        if (strcmp(s, allowed[i]) == 0) return 1;
    return 0;
}

/* Options that take one value. */
typedef enum {
    O_PROFILE, O_DEVICE, O_CLUSTER, O_MEMORY, O_COMPAT, O_SCHEDULE, O_BACKEND, O_OUT,
    O_TIME_LIMIT, O_MAX_STATES, O_PRECISION, O_THREADS, O_BUDGET, O_EMIT_YAML, O_SETTINGS,
    O_MICROBATCHES, O_CHUNKS, O_NONE
} value_opt;

static const struct {
    const char *shrt, *lng;
    value_opt id;
} value_opts[] = {
    {"-p", "--profile", O_PROFILE},     {NULL, "--device", O_DEVICE},
    {"-c", "--cluster", O_CLUSTER},     {NULL, "--memory", O_MEMORY},
    {NULL, "--compat", O_COMPAT},       {NULL, "--schedule", O_SCHEDULE},
    {NULL, "--backend", O_BACKEND},     {"-o", "--output", O_OUT},
    {NULL, "--time-limit", O_TIME_LIMIT}, {NULL, "--max-states", O_MAX_STATES},
    {NULL, "--precision", O_PRECISION}, {NULL, "--threads", O_THREADS},
    {NULL, "--memory-budget", O_BUDGET}, {NULL, "--microbatches", O_MICROBATCHES},
    {NULL, "--emit-yaml", O_EMIT_YAML}, {NULL, "--settings", O_SETTINGS},
    {NULL, "--chunks", O_CHUNKS},
};

static void set_once(const char **slot, const char *opt, const char *v, pd_diag *d) {
    if (*slot) pd_diag_error(d, "pdplan", 0, 0, "%s given twice", opt);
    *slot = v;
}

/* seen[id] counts how often each value option was given. */
static void apply_value(pd_cli *cli, value_opt id, const char *opt, const char *v, int *seen,
                        pd_diag *d) {
    static const char *const backends[] = {"cpu", "cuda", NULL};
    if (seen[id]++ && (id == O_COMPAT || id == O_SCHEDULE || id == O_BACKEND || id == O_MEMORY ||
                       id == O_TIME_LIMIT || id == O_MAX_STATES || id == O_THREADS ||
                       id == O_BUDGET || id == O_MICROBATCHES || id == O_CHUNKS))
        pd_diag_error(d, "pdplan", 0, 0, "%s given twice", opt);
    if (!*v && id != O_OUT) {
        pd_diag_error(d, "pdplan", 0, 0, "%s: empty value", opt);
        return;
    }
    switch (id) {
    case O_PROFILE: set_once(&cli->profile, opt, v, d); break;
    case O_DEVICE: set_once(&cli->device, opt, v, d); break;
    case O_CLUSTER: set_once(&cli->cluster, opt, v, d); break;
    case O_EMIT_YAML: set_once(&cli->emit_yaml, opt, v, d); break;
    case O_SETTINGS: set_once(&cli->settings, opt, v, d); break;
    case O_OUT:
        if (!*v) pd_diag_error(d, "pdplan", 0, 0, "%s: empty folder name", opt);
        set_once(&cli->outdir, opt, v, d);
        break;
    case O_MEMORY: parse_positive(&cli->memory_bytes, opt, "a number of bytes", v, d); break;
    case O_TIME_LIMIT: parse_positive(&cli->time_limit_s, opt, "a number of seconds", v, d); break;
    case O_BUDGET: parse_positive(&cli->memory_budget, opt, "a number of bytes", v, d); break;
    case O_MAX_STATES: {
        double s = 0;
        parse_positive(&s, opt, "a number of states", v, d);
        if (s > 0 && (s != floor(s) || s > 1e15))
            pd_diag_error(d, "pdplan", 0, 0, "%s: '%s' is not a whole number of states", opt, v);
        else if (s > 0) cli->max_states = (long)s;
        break;
    }
    case O_MICROBATCHES: {
        double n = 0;
        parse_positive(&n, opt, "a number of minibatches", v, d);
        if (n > 0 && (n != floor(n) || n > 100000))
            pd_diag_error(d, "pdplan", 0, 0, "%s: '%s' is not a whole number of minibatches up to "
                          "100000", opt, v);
        else if (n > 0) cli->microbatches = (int)n;
        break;
    }
    case O_CHUNKS: {
        double n = 0;
        parse_positive(&n, opt, "a number of chunks", v, d);
        if (n > 0 && (n != floor(n) || n < 2 || n > 64))
            pd_diag_error(d, "pdplan", 0, 0, "%s: '%s' is not a whole number of chunks from 2 "
                          "to 64", opt, v);
        else if (n > 0) cli->chunks = (int)n;
        break;
    }
    case O_THREADS: {
        double n = 0;
        parse_positive(&n, opt, "a number of threads", v, d);
        if (n > 0 && (n != floor(n) || n > 1024))
            pd_diag_error(d, "pdplan", 0, 0, "%s: '%s' is not a whole number of threads (1-1024)",
                          opt, v);
        else if (n > 0) cli->threads = (int)n;
        break;
    }
    case O_COMPAT:
        if (strcmp(v, "pipedream") == 0) cli->cost_model = PD_COST_PIPEDREAM;
        else pd_diag_error(d, "pdplan", 0, 0, "%s: unknown cost model '%s' (known: pipedream)",
                           opt, v);
        break;
    case O_SCHEDULE:
        if (pd_schedule_known(v) || !strcmp(v, "auto")) cli->schedule = v;
        else pd_diag_error(d, "pdplan", 0, 0, "%s: unknown schedule '%s' (%s, auto)", opt, v,
                           pd_schedule_names());
        break;
    case O_BACKEND:
        if (one_of(v, backends)) cli->backend = v;
        else pd_diag_error(d, "pdplan", 0, 0, "%s: unknown backend '%s' (cpu, cuda)", opt, v);
        break;
    case O_PRECISION:
        if (!strcmp(v, "fp32") || !strcmp(v, "bf16")) set_once(&cli->precision, opt, v, d);
        else pd_diag_error(d, "pdplan", 0, 0, "%s: unknown precision '%s' (fp32, bf16)", opt, v);
        break;
    case O_NONE: break;
    }
}

static int recompute_mode_of(const char *v, size_t n) {
    static const char *const modes[] = {"none", "full", "selective"};
    for (int k = 0; k < 3; k++)
        if (strlen(modes[k]) == n && !strncmp(v, modes[k], n)) return k;
    return -1;
}

/* Whether the argument after a bare --recompute is its value: a mode, or a per-stage list. */
static int is_recompute_value(const char *v) {
    return recompute_mode_of(v, strlen(v)) >= 0 || (isdigit((unsigned char)v[0]) && strchr(v, ':'));
}

/* --recompute's value: full|selective|none, or STAGE:MODE[,STAGE:MODE...]. */
static void parse_recompute(pd_cli *cli, const char *v, pd_diag *d) {
    int mode = recompute_mode_of(v, strlen(v));
    if (!*v) {
        pd_diag_error(d, "pdplan", 0, 0, "--recompute: empty value (full, selective, none, or "
                      "a list such as 0:full,2:selective)");
        return;
    }
    if (mode >= 0) {
        cli->recompute = mode;
        return;
    }
    for (const char *at = v; *at;) {
        const char *comma = strchr(at, ','), *end = comma ? comma : at + strlen(at);
        const char *colon = memchr(at, ':', (size_t)(end - at));
        char *num_end = NULL;
        long stage = colon && isdigit((unsigned char)at[0]) ? strtol(at, &num_end, 10) : -1;
        int m = colon ? recompute_mode_of(colon + 1, (size_t)(end - colon - 1)) : -1;
        if (stage < 0 || num_end != colon || stage >= PD_MAX_RECOMPUTE_LIST || m < 0) {
            pd_diag_error(d, "pdplan", 0, 0, "--recompute: '%.*s' is not STAGE:MODE (a stage "
                          "number below %d, a mode of none, full, selective); give full, "
                          "selective, none or a list such as 0:full,2:selective", (int)(end - at),
                          at, PD_MAX_RECOMPUTE_LIST);
            return;
        }
        for (int k = 0; k < cli->n_recompute_stages; k++)
            if (cli->recompute_stage[k] == (int)stage) {
                pd_diag_error(d, "pdplan", 0, 0, "--recompute: stage %ld given twice", stage);
                return;
            }
        if (cli->n_recompute_stages >= PD_MAX_RECOMPUTE_LIST) return;
        cli->recompute_stage[cli->n_recompute_stages] = (int)stage;
        cli->recompute_mode[cli->n_recompute_stages++] = m;
        if (m) cli->recompute = 1;
        at = comma ? comma + 1 : end;
        if (comma && !*at) {
            pd_diag_error(d, "pdplan", 0, 0, "--recompute: '%s' ends in a comma", v);
            return;
        }
    }
}

/* Whether --recompute makes any stage selective. */
static int any_selective(const pd_cli *cli) {
    if (!cli->n_recompute_stages) return cli->recompute == PD_RECOMPUTE_SELECTIVE;
    for (int k = 0; k < cli->n_recompute_stages; k++)
        if (cli->recompute_mode[k] == PD_RECOMPUTE_SELECTIVE) return 1;
    return 0;
}

int pd_cli_apply_recompute(const pd_cli *cli, pd_plan *p, pd_diag *d) {
    int bad = 0;
    for (int s = 0; s < p->n_stages; s++)
        p->stages[s].recompute = cli->n_recompute_stages ? PD_RECOMPUTE_NONE : cli->recompute;
    for (int k = 0; k < cli->n_recompute_stages; k++) {
        int s = cli->recompute_stage[k];
        if (s < p->n_stages) {
            p->stages[s].recompute = cli->recompute_mode[k];
            continue;
        }
        pd_diag_error(d, "pdplan", 0, 0, "--recompute %d:%s: the plan has %d stage%s (0 to %d)",
                      s, pd_recompute_name(cli->recompute_mode[k]), p->n_stages,
                      p->n_stages == 1 ? "" : "s", p->n_stages - 1);
        bad = 1;
    }
    return bad;
}

/* Flags without a value; returns 1 if arg was one. */
static int apply_flag(pd_cli *cli, const char *arg) {
    if (!strcmp(arg, "--straight")) cli->straight = 1;
    else if (!strcmp(arg, "--vertical-sync")) cli->vertical_sync = 1;
    else if (!strcmp(arg, "--no-codegen")) cli->no_codegen = 1;
    else if (!strcmp(arg, "--verify")) cli->verify = 1;
    else if (!strcmp(arg, "--explain")) cli->explain = 1;
    else if (!strcmp(arg, "--simulate")) cli->simulate = 1;
    else if (!strcmp(arg, "--draw")) cli->draw = 1;
    else if (!strcmp(arg, "-q") || !strcmp(arg, "--quiet")) cli->quiet = 1;
    else if (!strcmp(arg, "-v") || !strcmp(arg, "--verbose")) cli->verbose = 1;
    else if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) cli->help = 1;
    else if (!strcmp(arg, "--version")) cli->version = 1;
    else return 0;
    return 1;
}

int pd_cli_parse(pd_cli *cli, int argc, char **argv, pd_diag *d) {
    int errors0 = d->errors, n_seen = 0, b_seen = 0, only_positional = 0, recompute_seen = 0;
    int seen[O_NONE + 1] = {0};
    int n_given = 0, b_given = 0; /* values after -n and -b, valid or not */
    memset(cli, 0, sizeof *cli);
    cli->cost_model = PD_COST_DEFAULT;
    cli->schedule = "1f1b";
    cli->backend = "cpu";
    cli->time_limit_s = 60;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            if (!*arg)
                pd_diag_error(d, "pdplan", 0, 0, "an empty argument is not an input file");
            else if (cli->input)
                pd_diag_error(d, "pdplan", 0, 0, "two inputs given: '%s' and '%s' (pdplan plans "
                              "one model at a time)", cli->input, arg);
            else cli->input = arg;
            continue;
        }
        if (!strcmp(arg, "--")) { only_positional = 1; continue; }
        if (apply_flag(cli, arg)) continue;
        if (!strncmp(arg, "--recompute", 11) && (arg[11] == 0 || arg[11] == '=')) {
            const char *v = arg[11] == '=' ? arg + 12 : NULL;
            if (!v && i + 1 < argc && is_recompute_value(argv[i + 1])) v = argv[++i];
            if (recompute_seen++) pd_diag_error(d, "pdplan", 0, 0, "--recompute given twice");
            else parse_recompute(cli, v ? v : "full", d);
            continue;
        }
        if (!strcmp(arg, "-n") || !strcmp(arg, "-b")) {
            int is_n = arg[1] == 'n', k = 0;
            int *times = is_n ? &n_seen : &b_seen;
            if ((*times)++) pd_diag_error(d, "pdplan", 0, 0, "%s given twice", arg);
            while (i + 1 < argc) {
                const char *next = argv[i + 1];
                /* the first value is taken unless it is another option; later ones only while
                 * they look like numbers (so "-n 4 4 model.yaml" works) */
                if (k > 0 ? !looks_numeric(next) : (next[0] == '-' && !looks_numeric(next)))
                    break;
                if (is_n) parse_count(cli, argv[++i], d);
                else parse_bandwidth(cli, argv[++i], d);
                k++;
                (*(is_n ? &n_given : &b_given))++;
            }
            if (k == 0)
                pd_diag_error(d, "pdplan", 0, 0, "%s needs at least one value (%s)", arg,
                              is_n ? "workers per level" : "bytes/s per level");
            continue;
        }
        /* value options: "-o DIR", "--profile FILE", "--profile=FILE" */
        value_opt id = O_NONE;
        const char *value = NULL, *eq = strchr(arg, '=');
        size_t name_len = (arg[1] == '-' && eq) ? (size_t)(eq - arg) : strlen(arg);
        for (size_t k = 0; k < sizeof value_opts / sizeof value_opts[0]; k++) {
            if ((value_opts[k].shrt && strlen(value_opts[k].shrt) == name_len &&
                 !strncmp(arg, value_opts[k].shrt, name_len)) ||
                (strlen(value_opts[k].lng) == name_len && !strncmp(arg, value_opts[k].lng,
                                                                   name_len))) {
                id = value_opts[k].id;
                break;
            }
        }
        if (id == O_NONE) {
            pd_diag_error(d, "pdplan", 0, 0, "unknown option '%s' (see pdplan --help)", arg);
            continue;
        }
        char opt[32];
        snprintf(opt, sizeof opt, "%.*s", (int)(name_len < 31 ? name_len : 31), arg);
        if (arg[1] == '-' && eq) value = eq + 1;
        else if (i + 1 < argc) value = argv[++i];
        if (!value) {
            pd_diag_error(d, "pdplan", 0, 0, "%s needs a value", opt);
            continue;
        }
        apply_value(cli, id, opt, value, seen, d);
    }
    if (cli->help || cli->version) return d->errors - errors0;
    if (!cli->input) pd_diag_error(d, "pdplan", 0, 0, "no input: give a model YAML or a graph.txt");
    if (b_seen && !n_seen)
        pd_diag_error(d, "pdplan", 0, 0, "-b needs -n (the workers of each level)");
    if (n_given && b_given && n_given != b_given)
        pd_diag_error(d, "pdplan", 0, 0, "-n has %d value%s but -b has %d: give one bandwidth "
                      "per level", n_given, n_given == 1 ? "" : "s", b_given);
    double total = 1;
    for (int l = 0; l < cli->n_counts; l++) total *= cli->counts[l];
    if (total > PD_MAX_WORKERS)
        pd_diag_error(d, "pdplan", 0, 0, "-n: %.0f workers: at most %d workers in all", total,
                      PD_MAX_WORKERS);
    if (cli->cluster && n_seen)
        pd_diag_error(d, "pdplan", 0, 0, "give either -c/--cluster or -n/-b, not both");
    if (cli->precision && strcmp(cli->backend, "cuda"))
        pd_diag_error(d, "pdplan", 0, 0, "--precision applies to --backend cuda");
    if (!strcmp(cli->schedule, "auto") && (cli->recompute || cli->microbatches || cli->vertical_sync))
        pd_diag_error(d, "pdplan", 0, 0, "--schedule auto chooses the microbatches and "
                      "recomputation itself: drop --recompute, --microbatches and "
                      "--vertical-sync, or name a schedule");
    /* what the backend's executor refuses (pd_backend_runs, which --schedule auto's candidates
     * keep to): the CUDA executor runs full recomputation, not selective, and not with a split
     * backward */
    int inter = !strcmp(cli->schedule, "interleaved"), auto_ = !strcmp(cli->schedule, "auto");
    if (!auto_ && !pd_backend_runs(cli->backend, cli->schedule, PD_RECOMPUTE_NONE))
        pd_diag_error(d, "pdplan", 0, 0, "--schedule %s does not run on --backend %s",
                      cli->schedule, cli->backend);
    else if (any_selective(cli) &&
             !pd_backend_runs(cli->backend, auto_ ? "1f1b" : cli->schedule, PD_RECOMPUTE_SELECTIVE))
        pd_diag_error(d, "pdplan", 0, 0, "--recompute selective runs on the CPU backend only: the "
                      "CUDA stages have no forward_recompute");
    else if (!auto_ && cli->recompute &&
             !pd_backend_runs(cli->backend, cli->schedule, PD_RECOMPUTE_FULL))
        pd_diag_error(d, "pdplan", 0, 0, "--recompute with --schedule %s runs on the CPU backend "
                      "only (the CUDA executor does not recompute for backward_weight)",
                      cli->schedule);
    if (seen[O_CHUNKS] && !inter)
        pd_diag_error(d, "pdplan", 0, 0, "--chunks applies to --schedule interleaved");
    if (inter && cli->vertical_sync)
        pd_diag_error(d, "pdplan", 0, 0, "--schedule interleaved with --vertical-sync is not "
                      "supported (one weight version per chunk)");
    if (inter && !cli->chunks) cli->chunks = 2;
    return d->errors - errors0;
}
