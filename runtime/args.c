/* args.c: the options every stage binary (and so pdlaunch) understands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

static const char *usage =
    "options:\n"
    "  --steps N            train N minibatches (instead of epochs)\n"
    "  --epochs N           train N epochs (default: the model's)\n"
    "  --lr X               learning rate (default: the model's)\n"
    "  --seed N             seed of every keyed random draw (default 1)\n"
    "  --data DIR|synthetic Fashion-MNIST directory, or keyed synthetic data\n"
    "  --no-shuffle         keep the training set in file order\n"
    "  --target-accuracy X  stop once the test accuracy reaches X (a fraction)\n"
    "  --no-eval            skip test-set evaluation\n"
    "  --log-every N        progress line every N steps (default 100)\n"
    "  --synthetic-n N      synthetic training samples (default 8192)\n"
    "  --init DIR           read weights from DIR/<layer>.<param>.f32\n"
    "  --save DIR           write weights there at the end\n"
    "  --run-dir DIR        where summary.json goes (default: run)\n"
    "  --single | --emulate all stages in one process (local binary only)\n"
    "  --schedule S         1f1b | flush | gpipe (default: the plan's)\n"
    "  --microbatches N     flush, gpipe: minibatches per batch (default: the plan's)\n"
    "  --check-replicas     replicas compare their weights bitwise after every step\n"
    "  --no-trace           do not write run/trace.json\n"
    "  --checkpoint-every N checkpoint every N minibatches (the pipeline drains there)\n"
    "  --checkpoint-dir DIR write checkpoints there (also at epoch ends and the end)\n"
    "  --resume             continue from DIR's last complete checkpoint set\n"
    "  --skip-nonfinite     drop a minibatch whose loss or gradient is NaN/Inf (default: stop)\n";

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
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        double v;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(usage, stdout);
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
                   !strcmp(o, "--microbatches") || !strcmp(o, "--checkpoint-every")) {
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
            else if (!strcmp(o, "--microbatches")) { a->microbatches = (int)v; bad = v < 1 || v > 1e6 || v != a->microbatches; }
            else { a->synthetic_n = (int64_t)v; bad = v < 1; }
            if (bad) {
                fprintf(stderr, "pdrt: error: %s: bad value '%s'\n", o, argv[i]);
                return -1;
            }
        } else {
            fprintf(stderr, "pdrt: error: unknown option '%s'\n%s", o, usage);
            return -1;
        }
    }
    if ((a->checkpoint_every > 0 || a->resume) && !a->checkpoint_dir[0]) {
        fprintf(stderr, "pdrt: error: --checkpoint-every and --resume need --checkpoint-dir\n");
        return -1;
    }
    return 0;
}
