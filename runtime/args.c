/* args.c: parsing the options every stage binary understands (listed, with their help, in
 * options.def, which pdlaunch reads too). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

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

static int num(const char *opt, const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    if (end == s || *end) {
        fprintf(stderr, "pdrt: error: %s: '%s' is not a number\n", opt, s);
        return 0;
    }
    return 1;
}

int pdrt_args_parse(pdrt_args *a, int argc, char **argv, pdrt_mode default_mode) {
    memset(a, 0, sizeof *a);
    a->mode = default_mode;
    a->lr = -1;
    a->seed = 1;
    a->shuffle = 1;
    a->target_accuracy = -1;
    a->eval = 1;
    a->log_every = 100;
    a->synthetic_n = 8192;
    snprintf(a->run_dir, sizeof a->run_dir, "run");
    a->trace = 1;
    a->warmup = a->lr_decay_iters = -1;
    a->min_lr = a->clip_grad_norm = -1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
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
        } else if (!strcmp(o, "--schedule")) {
            if (!need(i, argc, argv)) return -1;
            const char *v2 = argv[++i];
            if (strcmp(v2, "1f1b") && strcmp(v2, "flush") && strcmp(v2, "gpipe")) {
                fprintf(stderr, "pdrt: error: --schedule: unknown schedule '%s' (1f1b, flush, gpipe)\n", v2);
                return -1;
            }
            snprintf(a->schedule, sizeof a->schedule, "%s", v2);
        } else if (!strcmp(o, "--single")) {
            a->mode = RT_SINGLE;
        } else if (!strcmp(o, "--emulate")) {
            a->mode = RT_EMULATE;
        } else if (!strcmp(o, "--data") || !strcmp(o, "--init") || !strcmp(o, "--save") ||
                   !strcmp(o, "--run-dir") || !strcmp(o, "--checkpoint-dir")) {
            if (!need(i, argc, argv)) return -1;
            char *dst = !strcmp(o, "--data") ? a->data : !strcmp(o, "--init") ? a->init_dir
                        : !strcmp(o, "--save") ? a->save_dir
                        : !strcmp(o, "--checkpoint-dir") ? a->checkpoint_dir : a->run_dir;
            if (strlen(argv[i + 1]) >= sizeof a->data) {
                fprintf(stderr, "pdrt: error: %s: path too long\n", o);
                return -1;
            }
            snprintf(dst, sizeof a->data, "%s", argv[++i]);
        } else if (!strcmp(o, "--steps") || !strcmp(o, "--epochs") || !strcmp(o, "--lr") ||
                   !strcmp(o, "--seed") || !strcmp(o, "--target-accuracy") ||
                   !strcmp(o, "--log-every") || !strcmp(o, "--synthetic-n") ||
                   !strcmp(o, "--microbatches") || !strcmp(o, "--checkpoint-every") ||
                   !strcmp(o, "--warmup") || !strcmp(o, "--lr-decay-iters") ||
                   !strcmp(o, "--min-lr") || !strcmp(o, "--clip-grad-norm")) {
            if (!need(i, argc, argv) || !num(o, argv[i + 1], &v)) return -1;
            i++;
            int bad = 0;
            if (!strcmp(o, "--steps")) { a->steps = (int64_t)v; bad = v < 1 || v != (double)a->steps; }
            else if (!strcmp(o, "--epochs")) { a->epochs = (int)v; bad = v < 1 || v != a->epochs; }
            else if (!strcmp(o, "--lr")) { a->lr = v; bad = !(v > 0); }
            else if (!strcmp(o, "--seed")) { a->seed = (uint64_t)v; bad = v < 0; }
            else if (!strcmp(o, "--target-accuracy")) { a->target_accuracy = v; bad = !(v > 0 && v <= 1); }
            else if (!strcmp(o, "--log-every")) { a->log_every = (int)v; bad = v < 1; }
            else if (!strcmp(o, "--checkpoint-every")) { a->checkpoint_every = (int64_t)v; bad = v < 1 || v > 1e15 || v != (double)a->checkpoint_every; }
            else if (!strcmp(o, "--warmup")) { a->warmup = (int64_t)v; bad = v < 0 || v > 1e15 || v != (double)a->warmup; }
            else if (!strcmp(o, "--lr-decay-iters")) { a->lr_decay_iters = (int64_t)v; bad = v < 0 || v > 1e15 || v != (double)a->lr_decay_iters; }
            else if (!strcmp(o, "--min-lr")) { a->min_lr = v; bad = !(v >= 0 && v < 1e6); }
            else if (!strcmp(o, "--clip-grad-norm")) { a->clip_grad_norm = v; bad = !(v >= 0 && v < 1e30); }
            else if (!strcmp(o, "--microbatches")) { a->microbatches = (int)v; bad = v < 1 || v > 1e6 || v != a->microbatches; }
            else { a->synthetic_n = (int64_t)v; bad = v < 1; }
            if (bad) {
                fprintf(stderr, "pdrt: error: %s: bad value '%s'\n", o, argv[i]);
                return -1;
            }
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
    return 0;
}
