/* pdprof.c: the profiler. Times every layer of a model YAML, forward and backward, with the
 * runtime's CPU kernels (runtime/cpu/ops.h; --backend cuda: the GPU kernels, pdprof_cuda.c) on
 * random inputs at the model's (or --batch) minibatch size, in passes over all the layers (warm-up,
 * then timed runs), and the median of every pass's runs. Writes profiles/<model>.<device>.yaml
 * (pd_profile: 1), which pdplan -p reads. One thread (OpenBLAS too), as the stages run.
 * A layer runs the calls its op's descriptor lists (planner/ops/; pdprof_layer.c makes them by
 * name through libffi). An op whose output aliases its input (flatten) costs 0; the loss is
 * timed with the last layer's forward.
 * Usage: pdprof MODEL.yaml [--backend cpu|cuda] [--precision fp32|bf16] [--batch N] [--rounds N]
 *        [--repeats N] [--warmup N] [-o FILE]
 * --train [--steps N] [--jobs N] [--data D] [--keep] profiles inside training instead
 * (pdprof_train.c): the generated stage's per-layer marks, PipeDream's way.
 * --estimate DEVICE writes the planner's analytic estimate (estimate.c) as a profile instead,
 * without timing anything (bench/anchor_profile.py spreads measured block times over it).
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "planner/read/frontend.h"
#include "pdprof_layer.h"
#include "pdprof_train.h"

void openblas_set_num_threads(int n);

enum { EXIT_OK = 0, EXIT_INTERNAL = 1, EXIT_INPUT = 2 };

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* `repeats` timings after `warmup` untimed runs, stored at t[0..repeats-1]. */
static void time_runs(layer_run *r, int backward, int warmup, int repeats, double *t) {
    for (int k = 0; k < warmup; k++) pdprof_layer_run(r, backward);
    for (int k = 0; k < repeats; k++) {
        double t0 = now_ms();
        pdprof_layer_run(r, backward);
        t[k] = now_ms() - t0;
    }
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void usage(FILE *o) {
    fputs("usage: pdprof MODEL.yaml [options]\n"
          "Times every layer's forward and backward with the runtime's kernels on random\n"
          "inputs (or, with --train, inside training) and writes a profile (pd_profile: 1)\n"
          "for pdplan -p.\n"
          "  --backend B     cpu (default) or cuda: the GPU kernels (runtime/cuda) on device\n"
          "                  0, each run between two stream synchronisations (exit 2 without\n"
          "                  a GPU or when pdprof was built without nvcc and cuDNN)\n"
          "  --precision P   cuda: fp32 (default) or bf16 (tensor-core matrix products)\n"
          "  --batch N       minibatch size (default: the model's batch)\n"
          "  --rounds N      passes over every layer (default 5); the timed runs of a layer\n"
          "                  are spread over the passes, so that a machine whose speed drifts\n"
          "                  (other load, a shared host) gives every layer the same mix\n"
          "  --repeats N     timed runs per layer, direction and pass (default 3); the median\n"
          "                  of all rounds x repeats runs is taken\n"
          "  --warmup N      untimed runs before timing, per pass (default 1)\n"
          "  -o FILE         output (default profiles/<model>.<device>.yaml)\n"
          "  --estimate DEV  write the analytic estimate for DEV (cpu, h200, v100) instead of\n"
          "                  measuring (planning-only ops allowed)\n"
          "  --train         profile inside training instead, as PipeDream does: plan the model\n"
          "                  as one stage (bin/pdplan -n 1), build it, train it with\n"
          "                  scripts/pdlaunch and keep the time between the runtime's per-layer\n"
          "                  marks, which includes gradient zeroing, accumulation and the\n"
          "                  optimizer (attributed by parameter bytes); at the model's batch\n"
          "    --steps N     minibatches to train (default 200; the first tenth, at most 20,\n"
          "                  warm up)\n"
          "    --jobs N      train N copies at once and average them (default 1): as many as\n"
          "                  the run will have ranks per host, which share its caches and\n"
          "                  memory bandwidth\n"
          "    --data D      synthetic (default) or a Fashion-MNIST folder\n"
          "    --keep        keep the temporary folder (generated stage, run, log)\n"
          "  -q              no progress on stderr\n"
          "  -h, --help      this text\n"
          "exit status: 0 written, 1 internal error, 2 input error (nothing written)\n",
          o);
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "pdprof: error: %s needs a whole number from %d to %d, not '%s'\n", opt,
                lo, hi, v ? v : "(nothing)");
        return 1;
    }
    *out = (int)x;
    return 0;
}

int main(int argc, char **argv) {
    const char *input = NULL, *backend = "cpu", *outpath = NULL, *estimate = NULL;
    const char *data = "synthetic", *precision = NULL;
    int batch = 0, repeats = 3, rounds = 5, warmup = 1, quiet = 0, bad = 0, train = 0, steps = 0,
        timing_given = 0, data_given = 0,
        keep = 0, jobs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return EXIT_OK; }
        else if (!strcmp(a, "-q")) quiet = 1;
        else if (!strcmp(a, "--backend")) { backend = v ? v : ""; i++; }
        else if (!strcmp(a, "--estimate")) { estimate = v ? v : ""; i++; }
        else if (!strcmp(a, "--batch")) { bad |= parse_int(a, v, 1, 1 << 20, &batch); i++; }
        else if (!strcmp(a, "--repeats")) { bad |= parse_int(a, v, 1, 100000, &repeats); i++; timing_given = 1; }
        else if (!strcmp(a, "--rounds")) { bad |= parse_int(a, v, 1, 10000, &rounds); i++; timing_given = 1; }
        else if (!strcmp(a, "--warmup")) { bad |= parse_int(a, v, 0, 100000, &warmup); i++; timing_given = 1; }
        else if (!strcmp(a, "--train")) train = 1;
        else if (!strcmp(a, "--precision")) {
            precision = v ? v : "";
            if (strcmp(precision, "fp32") && strcmp(precision, "bf16")) {
                fprintf(stderr, "pdprof: error: --precision needs fp32 or bf16, not '%s'\n", precision);
                bad = 1;
            }
            i++;
        }
        else if (!strcmp(a, "--keep")) keep = 1;
        else if (!strcmp(a, "--jobs")) { bad |= parse_int(a, v, 1, 16, &jobs); i++; }
        else if (!strcmp(a, "--steps")) { bad |= parse_int(a, v, 2, 1 << 30, &steps); i++; }
        else if (!strcmp(a, "--data")) {
            if (!v || !*v) { fprintf(stderr, "pdprof: error: --data needs synthetic or a folder\n"); bad = 1; }
            data = v ? v : "";
            data_given = 1;
            i++;
        }
        else if (!strcmp(a, "-o")) {
            if (!v || !*v) { fprintf(stderr, "pdprof: error: -o needs a file\n"); bad = 1; }
            outpath = v;
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "pdprof: error: unknown option '%s' (pdprof --help)\n", a);
            bad = 1;
        } else if (input) {
            fprintf(stderr, "pdprof: error: two inputs given: '%s' and '%s'\n", input, a);
            bad = 1;
        } else input = a;
    }
    if (strcmp(backend, "cpu") && strcmp(backend, "cuda")) {
        fprintf(stderr, "pdprof: error: unknown backend '%s' (cpu, cuda)\n", backend);
        bad = 1;
    }
    if (!input && !bad) {
        fprintf(stderr, "usage: pdprof MODEL.yaml [options]   (pdprof --help)\n");
        return EXIT_INPUT;
    }
    if ((steps || keep || jobs || data_given) && !train) {
        fprintf(stderr, "pdprof: error: --steps, --jobs, --data and --keep go with --train\n");
        bad = 1;
    }
    if (timing_given && train) {
        fprintf(stderr, "pdprof: error: --rounds, --repeats and --warmup time the kernels alone; --train "
                "times --steps minibatches of training\n");
        bad = 1;
    }
    if (train && strcmp(data, "synthetic") && *data) { /* the runtime's files (runtime/data.c) */
        char f1[4200], f2[4200];
        snprintf(f1, sizeof f1, "%s/train-images-idx3-ubyte.gz", data);
        snprintf(f2, sizeof f2, "%s/train-images-idx3-ubyte", data);
        struct stat sb;
        if (stat(f1, &sb) && stat(f2, &sb)) {
            fprintf(stderr, "pdprof: error: --data %s: no Fashion-MNIST there (train-images-idx3-ubyte[.gz]); "
                    "use a folder that has it, or synthetic\n", data);
            bad = 1;
        }
    }
    if (precision && strcmp(backend, "cuda")) {
        fprintf(stderr, "pdprof: error: --precision goes with --backend cuda\n");
        bad = 1;
    }
    if (train && estimate) {
        fprintf(stderr, "pdprof: error: --train measures; --estimate does not: choose one\n");
        bad = 1;
    }
    if (train && strcmp(backend, "cpu")) {
        fprintf(stderr, "pdprof: error: --train profiles the CPU runtime only (the CUDA stages have "
                "no per-layer marks)\n");
        bad = 1;
    }
    if (bad) return EXIT_INPUT;

    pd_diag d = {.out = stderr};
    pd_model m;
    if (pd_model_load(input, &m, &d)) {
        fprintf(stderr, "pdprof: %d error%s; nothing written\n", d.errors, d.errors == 1 ? "" : "s");
        return EXIT_INPUT;
    }
    for (int i = 1; i < m.n_layers; i++)
        if (!estimate && pd_op_planning_only(m.layers[i].op)) {
            pd_diag_error(&d, input, m.layers[i].line, m.layers[i].col,
                          "layer '%s': op %s is planning-only: the runtime has no kernel to "
                          "time it with (plan with pdplan --device, or a measured profile)",
                          m.layers[i].name, pd_op_name(m.layers[i].op));
        }
    if (pd_diag_errors(&d)) {
        fprintf(stderr, "pdprof: %d error%s; nothing written\n", d.errors, d.errors == 1 ? "" : "s");
        pd_model_free(&m);
        return EXIT_INPUT;
    }
    if (train && batch > 0 && batch != m.batch) {
        fprintf(stderr, "pdprof: error: --train profiles at the model's batch (%d), not %d: set batch "
                "in %s\n", m.batch, batch, input);
        pd_model_free(&m);
        return EXIT_INPUT;
    }
    if (batch <= 0) batch = m.batch;
    if (estimate) {
        m.batch = batch;
        if (pd_estimate_costs(&m, estimate, &d)) {
            pd_model_free(&m);
            return EXIT_INPUT;
        }
        backend = estimate;
    }
    char defpath[PD_NAME_MAX + 64];
    if (!outpath) {
        snprintf(defpath, sizeof defpath, "profiles/%s.%s.yaml", m.name, backend);
        mkdir("profiles", 0777);
        outpath = defpath;
    }
    { /* before minutes of measuring: can the profile be written at all? */
        char probe[PD_NAME_MAX + 4200];
        snprintf(probe, sizeof probe, "%s.tmp", outpath);
        FILE *pf = fopen(probe, "w");
        if (!pf) {
            fprintf(stderr, "pdprof: error: cannot write %s: %s\n", probe, strerror(errno));
            pd_model_free(&m);
            return EXIT_INPUT;
        }
        fclose(pf);
        remove(probe);
    }
    int cuda = !strcmp(backend, "cuda") && !estimate && !train;
    if (cuda) {
        char why[512];
        if (pdprof_cuda_begin(&m, batch, precision, why, sizeof why)) {
            fprintf(stderr, "pdprof: error: --backend cuda: %s; profile on cpu, or plan with an "
                    "estimate (pdplan --device v100|h200) or the H200 anchors (profiles/*.h200.yaml)\n", why);
            pd_model_free(&m);
            return EXIT_INPUT;
        }
    }
    openblas_set_num_threads(1);
    double *fwd = calloc((size_t)m.n_layers, sizeof(double));
    double *bwd = calloc((size_t)m.n_layers, sizeof(double));
    /* every timed run: tf/tb[(i * rounds + k) * repeats + j], layer i, pass k, run j */
    size_t per_layer = (size_t)rounds * (size_t)repeats;
    double *tf = calloc((size_t)m.n_layers * per_layer, sizeof(double));
    double *tb = calloc((size_t)m.n_layers * per_layer, sizeof(double));
    if (!fwd || !bwd || !tf || !tb) {
        fprintf(stderr, "pdprof: error: out of memory\n");
        return EXIT_INTERNAL;
    }
    double t_start = now_ms();
    int status = EXIT_INTERNAL;
    char train_header[1024] = "";
    if (train) {
        pdprof_train_opts to = {input, data, steps ? steps : 200, jobs ? jobs : 1, keep, quiet};
        if (pdprof_train(&to, &m, fwd, bwd, train_header, sizeof train_header)) goto out;
    }
    for (int i = 1; i < m.n_layers && estimate; i++) {
        fwd[i] = m.layers[i].fwd_ms;
        bwd[i] = m.layers[i].bwd_ms;
    }
    for (int k = 0; k < rounds && !estimate && !train; k++) {
        for (int i = 1; i < m.n_layers; i++) {
            layer_run r;
            pdprof_layer_setup(&r, &m, i, batch);
            size_t at = ((size_t)i * (size_t)rounds + (size_t)k) * (size_t)repeats;
            if (cuda) {
                pdprof_cuda_time(&r, 0, warmup, repeats, tf + at);
                pdprof_cuda_time(&r, 1, warmup, repeats, tb + at);
            } else {
                time_runs(&r, 0, warmup, repeats, tf + at);
                time_runs(&r, 1, warmup, repeats, tb + at);
            }
            pdprof_layer_teardown(&r);
        }
        if (!quiet)
            fprintf(stderr, "pdprof: pass %d/%d over %d layers done (%.1f s)\n", k + 1, rounds,
                    m.n_layers - 1, (now_ms() - t_start) / 1e3);
    }
    for (int i = 1; i < m.n_layers && !estimate && !train; i++) {
        fwd[i] = median(tf + (size_t)i * per_layer, (int)per_layer);
        bwd[i] = median(tb + (size_t)i * per_layer, (int)per_layer);
        if (pd_op(m.layers[i].op)->aliases_input) fwd[i] = bwd[i] = 0; /* no call: free */
        if (!quiet)
            fprintf(stderr, "pdprof: [%d/%d] %-20s %-11s forward %9.4f ms  backward %9.4f ms\n",
                    i, m.n_layers - 1, m.layers[i].name, pd_op_name(m.layers[i].op), fwd[i],
                    bwd[i]);
    }
    /* write to a temporary file, then rename: nothing half-written on failure */
    char tmp[PD_NAME_MAX + 4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", outpath);
    FILE *o = fopen(tmp, "w");
    if (!o) {
        fprintf(stderr, "pdprof: error: cannot write %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    if (train)
        fputs(train_header, o);
    else if (estimate)
        fprintf(o, "# The analytic estimate for %s (planner/model/estimate.c), written by pdprof "
                "--estimate; nothing measured.\n", estimate);
    else
        fprintf(o, "# Measured by pdprof on %s (%s): median of %d "
                "runs per layer and direction (%d passes over the layers x %d, each after %d "
                "warm-up), per minibatch of %d.\n", backend,
                cuda ? (precision && !strcmp(precision, "bf16") ? "runtime CUDA kernels, bf16 matrix products, GPU 0"
                                                                : "runtime CUDA kernels, fp32, GPU 0")
                     : "runtime CPU kernels, one thread",
                rounds * repeats, rounds, repeats, warmup, batch);
    fprintf(o, "pd_profile: 1\ndevice: %s\nmodel: %s\nbatch: %d\nlayers:\n", backend, m.name,
            batch);
    for (int i = 1; i < m.n_layers; i++) {
        const pd_layer *L = &m.layers[i];
        fprintf(o, "  - {name: %s, forward_ms: %.6g, backward_ms: %.6g, activation_bytes: %.17g, "
                "parameter_bytes: %.17g}\n", L->name, fwd[i], bwd[i],
                4.0 * batch * (double)pd_shape_numel(&L->out),
                4.0 * (double)(L->n_weight + L->n_bias));
    }
    if (fclose(o) != 0 || rename(tmp, outpath) != 0) {
        fprintf(stderr, "pdprof: error: cannot write %s: %s\n", outpath, strerror(errno));
        remove(tmp);
        goto out;
    }
    if (!quiet && !estimate && !train)
        fprintf(stderr, "pdprof: profiled %d layers in %.1f s\n", m.n_layers - 1,
                (now_ms() - t_start) / 1e3);
    printf("wrote %s\n", outpath);
    status = EXIT_OK;
out:
    if (cuda) pdprof_cuda_end();
    free(fwd);
    free(bwd);
    free(tf);
    free(tb);
    pd_model_free(&m);
    return status;
}
