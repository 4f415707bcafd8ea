/* cli_args.h: pdplan's command line, parsed and validated into a pd_cli (no file is touched).
 *
 * Every problem (unknown option, missing value, non-number, negative, NaN, two inputs, no input,
 * -n/-b count mismatch, ...) is reported through pd_diag as "pdplan: error: ..." and parsing
 * goes on, so that one run reports all of them. --help and --version only set flags.
 */
#ifndef PD_CLI_ARGS_H
#define PD_CLI_ARGS_H

#include "planner/read/cluster.h"
#include "planner/util/diag.h"
#include "planner/plan/plan.h"

#define PD_MAX_RECOMPUTE_LIST 256

typedef struct {
    const char *input;        /* MODEL.yaml, MODEL.onnx or graph.txt (argv storage) */
    const char *profile;      /* -p, --profile */
    const char *device;       /* --device (NULL: the cluster's, else "cpu") */
    const char *cluster;      /* -c, --cluster */
    int n_counts;             /* -n values, innermost first */
    int counts[PD_MAX_LEVELS];
    int n_bandwidths;         /* -b values */
    double bandwidths[PD_MAX_LEVELS];
    double memory_bytes;      /* --memory (0: not given) */
    int straight;             /* --straight */
    int vertical_sync;        /* --vertical-sync (1f1b only) */
    int recompute;            /* --recompute [full|selective|none]: every stage's mode
                                 (pd_recompute_mode; --recompute alone: full), or with a
                                 per-stage list, nonzero when any stage recomputes (CPU) */
    int n_recompute_stages;   /* --recompute 0:full,2:selective: the listed stages' modes (the */
    int recompute_stage[PD_MAX_RECOMPUTE_LIST]; /* others none); stages checked against the */
    int recompute_mode[PD_MAX_RECOMPUTE_LIST];  /* plan by pd_cli_apply_recompute */
    pd_cost_model cost_model; /* --compat pipedream */
    const char *schedule;     /* --schedule: "1f1b" (default), "flush", "gpipe", "zb-h1", "zb-h2" */
    const char *backend;      /* --backend: "cpu" (default), "cuda" */
    const char *precision;    /* --precision (cuda): "fp32" (default), "bf16" */
    const char *outdir;       /* -o (NULL: generated/<model>/) */
    int no_codegen;           /* --no-codegen */
    const char *emit_yaml;    /* --emit-yaml FILE: the model as a pd: 1 YAML */
    const char *settings;     /* --settings FILE: an ONNX model's training settings */
    int verify;               /* --verify */
    double time_limit_s;      /* --time-limit: the certificate's limit (default 60) */
    long max_states;          /* --max-states (0: the DP's default) */
    double memory_budget;     /* --memory-budget: bytes the DP's tables may take (0: default) */
    int threads;              /* --threads (0: the processors pdplan may run on) */
    int microbatches;         /* --microbatches (0: the schedule IR's default) */
    int chunks;               /* --chunks (interleaved: stages per rank; 0: not given) */
    int explain;              /* --explain */
    int simulate;             /* --simulate: simulate the plan and data parallelism */
    int draw;                 /* --draw: DIR/plan.dot (and plan.svg where Graphviz is) */
    int quiet;                /* -q */
    int verbose;              /* -v */
    int help, version;        /* -h/--help, --version */
} pd_cli;

/* Fills *cli from argv (argv[0] is the program name). Returns the number of errors reported. */
int pd_cli_parse(pd_cli *cli, int argc, char **argv, pd_diag *d);

/* Sets every stage's recompute mode of p from --recompute; a listed stage the plan does not
 * have is a diagnostic (returns 1). */
int pd_cli_apply_recompute(const pd_cli *cli, pd_plan *p, pd_diag *d);

/* The --help text. */
void pd_cli_usage(FILE *out);

#endif
