/* args.c: parsing the options every stage binary understands (listed, with their help, in
 * options.def, which pdlaunch reads too). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "runtime/schedule/schedule.h"

/* the options, from the one list pdlaunch reads too */
typedef struct {
    const char *name, *value, *how, *help;
} opt_t;
static const opt_t opts[] = {
#define PDRT_OPTION(name, value, how, help) {name, value, how, help},
#include "options.def"
#undef PDRT_OPTION
};

void pdrt_print_options(FILE *f, int cuda_only) {
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        const opt_t *o = &opts[i];
        int cuda = !strcmp(o->how, "cuda"), launch = !strcmp(o->how, "launch");
        if (launch || cuda != !!cuda_only) continue;
        char head[64];
        snprintf(head, sizeof head, "%s%s%s", o->name, o->value[0] ? " " : "", o->value);
        int col = fprintf(f, "  %-20s", head);
        /* the help, wrapped at 100 columns under its first word */
        const char *w = o->help;
        int start = col;
        while (*w) {
            const char *e = strchr(w, ' ');
            int len = e ? (int)(e - w) : (int)strlen(w);
            if (col > start && col + 1 + len > 100) col = fprintf(f, "\n%*s", start, "") - 1;
            col += fprintf(f, " %.*s", len, w);
            w += len;
            while (*w == ' ') w++;
        }
        fputc('\n', f);
    }
}

static void usage(FILE *f) {
    fputs("options:\n", f);
    pdrt_print_options(f, 0);
}

static int need(int i, int argc, char **argv) {
    if (i + 1 >= argc) {
        fprintf(stderr, "pdrt: error: %s needs a value\n", argv[i]);
        return 0;
    }
    return 1;
}

/* A number: the whole string, finite. */
static int num(const char *opt, const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end) {
        fprintf(stderr, "pdrt: error: %s: '%s' is not a number\n", opt, s);
        return 0;
    }
    if (!isfinite(*out)) {
        fprintf(stderr, "pdrt: error: %s: '%s' is not a finite number\n", opt, s);
        return 0;
    }
    return 1;
}

/* A value in [lo, hi]; whole when integer (hi <= 2^53, so that every whole double in range is
 * exact). */
static int in_range(const char *opt, const char *s, double v, int integer, double lo, double hi,
                    int lo_open) {
    if (integer && v != floor(v)) {
        fprintf(stderr, "pdrt: error: %s: '%s' is not a whole number\n", opt, s);
        return 0;
    }
    if (v < lo || (lo_open && v == lo) || v > hi) {
        fprintf(stderr, "pdrt: error: %s: '%s' is out of range (%s%.17g .. %.17g)\n", opt, s,
                lo_open ? "above " : "", lo, hi);
        return 0;
    }
    return 1;
}

/* The numeric options: integer or not, range. */
typedef struct {
    const char *name;
    int integer, lo_open;
    double lo, hi;
} num_opt;
static const num_opt num_opts[] = {
    {"--steps", 1, 0, 1, 1e15},
    {"--epochs", 1, 0, 1, 1e6},
    {"--lr", 0, 1, 0, 1e6},
    {"--seed", 1, 0, 0, 9007199254740992.0},      /* 2^53 */
    {"--target-accuracy", 0, 1, 0, 1},
    {"--target-loss", 0, 0, 0, 1e30},
    {"--eval-every", 1, 0, 1, 1e15},
    {"--eval-batches", 1, 0, 1, 1e15},
    {"--log-every", 1, 0, 1, 1e9},
    {"--synthetic-n", 1, 0, 1, 2147483647.0},     /* the shuffle order's 32-bit indices */
    {"--microbatches", 1, 0, 1, 1e6},
    {"--checkpoint-every", 1, 0, 1, 1e15},
    {"--hang-timeout", 0, 0, 0, 1e6},
    {"--warmup", 1, 0, 0, 1e15},
    {"--lr-decay-iters", 1, 0, 0, 1e15},
    {"--min-lr", 0, 0, 0, 1e6},
    {"--clip-grad-norm", 0, 0, 0, 1e30},
};

static const num_opt *find_num(const char *o) {
    for (size_t k = 0; k < sizeof num_opts / sizeof num_opts[0]; k++)
        if (!strcmp(o, num_opts[k].name)) return &num_opts[k];
    return NULL;
}

int pdrt_args_parse(pdrt_args *a, int argc, char **argv, pdrt_mode default_mode) {
    memset(a, 0, sizeof *a);
    a->mode = default_mode;
    a->lr = -1;
    a->seed = 1;
    a->shuffle = 1;
    a->target_accuracy = -1;
    a->target_loss = -1;
    a->eval = 1;
    a->log_every = 100;
    a->synthetic_n = 8192;
    snprintf(a->run_dir, sizeof a->run_dir, "run");
    a->trace = 1;
    a->recompute = -1;
    a->warmup = a->lr_decay_iters = -1;
    a->min_lr = a->clip_grad_norm = -1;
    a->hang_timeout = PDRT_HANG_TIMEOUT_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const num_opt *no;
        double v;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(o, "--no-shuffle")) {
            a->shuffle = 0;
        } else if (!strcmp(o, "--no-eval")) {
            a->eval = 0;
        } else if (!strcmp(o, "--check-replicas")) {
            a->check_replicas = 1;
        } else if (!strcmp(o, "--no-trace")) {
            a->trace = 0;
        } else if (!strcmp(o, "--resume")) {
            a->resume = 1;
        } else if (!strcmp(o, "--skip-nonfinite")) {
            a->skip_nonfinite = 1;
        } else if (!strcmp(o, "--recompute") || !strcmp(o, "--no-recompute")) {
            a->recompute = o[2] == 'r';
        } else if (!strcmp(o, "--schedule")) {
            if (!need(i, argc, argv)) return -1;
            const char *v2 = argv[++i];
            if (!pd_schedule_known(v2)) {
                fprintf(stderr, "pdrt: error: --schedule: unknown schedule '%s' (%s)\n", v2,
                        pd_schedule_names());
                return -1;
            }
            snprintf(a->schedule, sizeof a->schedule, "%s", v2);
        } else if (!strcmp(o, "--single")) {
            a->mode = RT_SINGLE;
        } else if (!strcmp(o, "--emulate")) {
            a->mode = RT_EMULATE;
        } else if (!strcmp(o, "--data") || !strcmp(o, "--init") || !strcmp(o, "--save") ||
                   !strcmp(o, "--run-dir") || !strcmp(o, "--checkpoint-dir") ||
                   !strcmp(o, "--save-logits")) {
            if (!need(i, argc, argv)) return -1;
            char *dst = !strcmp(o, "--data") ? a->data : !strcmp(o, "--init") ? a->init_dir
                        : !strcmp(o, "--save") ? a->save_dir
                        : !strcmp(o, "--save-logits") ? a->logits_path
                        : !strcmp(o, "--checkpoint-dir") ? a->checkpoint_dir : a->run_dir;
            if (strlen(argv[i + 1]) >= sizeof a->data) {
                fprintf(stderr, "pdrt: error: %s: path too long\n", o);
                return -1;
            }
            snprintf(dst, sizeof a->data, "%s", argv[++i]);
        } else if ((no = find_num(o))) {
            if (!need(i, argc, argv) || !num(o, argv[i + 1], &v) ||
                !in_range(o, argv[i + 1], v, no->integer, no->lo, no->hi, no->lo_open))
                return -1;
            i++;
            if (!strcmp(o, "--steps")) a->steps = (int64_t)v;
            else if (!strcmp(o, "--epochs")) a->epochs = (int)v;
            else if (!strcmp(o, "--lr")) a->lr = v;
            else if (!strcmp(o, "--seed")) a->seed = (uint64_t)v;
            else if (!strcmp(o, "--target-accuracy")) a->target_accuracy = v;
            else if (!strcmp(o, "--target-loss")) a->target_loss = v;
            else if (!strcmp(o, "--eval-every")) a->eval_every = (int64_t)v;
            else if (!strcmp(o, "--eval-batches")) a->eval_batches = (int64_t)v;
            else if (!strcmp(o, "--log-every")) a->log_every = (int)v;
            else if (!strcmp(o, "--checkpoint-every")) a->checkpoint_every = (int64_t)v;
            else if (!strcmp(o, "--microbatches")) a->microbatches = (int)v;
            else if (!strcmp(o, "--hang-timeout")) a->hang_timeout = v;
            else if (!strcmp(o, "--warmup")) a->warmup = (int64_t)v;
            else if (!strcmp(o, "--lr-decay-iters")) a->lr_decay_iters = (int64_t)v;
            else if (!strcmp(o, "--min-lr")) a->min_lr = v;
            else if (!strcmp(o, "--clip-grad-norm")) a->clip_grad_norm = v;
            else a->synthetic_n = (int64_t)v;
        } else {
            fprintf(stderr, "pdrt: error: unknown option '%s'\n", o);
            usage(stderr);
            return -1;
        }
    }
    if ((a->checkpoint_every > 0 || a->resume) && !a->checkpoint_dir[0]) {
        fprintf(stderr, "pdrt: error: --checkpoint-every and --resume need --checkpoint-dir\n");
        return -1;
    }
    if (!a->eval && (a->target_accuracy >= 0 || a->target_loss >= 0 || a->eval_every > 0)) {
        fprintf(stderr, "pdrt: error: --no-eval with --target-accuracy, --target-loss or "
                "--eval-every: they need the evaluation\n");
        return -1;
    }
    return 0;
}
