/* laps.c: per-layer times measured inside training, PipeDream's way of profiling. A generated
 * CPU stage marks the end of every layer in its forward and backward (pdrt_lap); while the
 * executor has a recorder open, the time between marks is that layer's. At the end of a run the
 * stages' first replicas turn their means into profile lines, and the last stage writes them as
 * run/profile.yaml (pd_profile: 1, the format pdplan -p reads), which pdprof --train returns.
 * Outside a recorder (evaluation, the local runner, CUDA stages) the marks cost one test. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

static pdrt_laps *current;

void pdrt_lap_start(void) {
    if (current) current->last = pdrt_now();
}

void pdrt_lap(int op) {
    if (!current) return;
    double t = pdrt_now();
    if (op >= 0 && op < current->n) current->cur[op] += 1e3 * (t - current->last);
    current->last = t;
}

void pdrt_laps_init(pdrt_laps *l, int n_layers, int64_t skip) {
    memset(l, 0, sizeof *l);
    l->n = n_layers > 0 ? n_layers : 0;
    l->skip = skip;
    for (int d = 0; d < 2; d++) {
        l->ms[d] = calloc((size_t)l->n + 1, sizeof(double));
        PDRT_CHECK(l->ms[d] != NULL);
    }
    l->cur = calloc((size_t)l->n + 1, sizeof(double));
    PDRT_CHECK(l->cur != NULL);
}

void pdrt_laps_free(pdrt_laps *l) {
    if (current == l) current = NULL;
    free(l->ms[0]);
    free(l->ms[1]);
    free(l->cur);
    memset(l, 0, sizeof *l);
}

void pdrt_laps_begin(pdrt_laps *l, int dir) {
    if (!l->n) return;
    memset(l->cur, 0, (size_t)l->n * sizeof(double));
    l->dir = dir;
    l->last = pdrt_now();
    current = l;
}

void pdrt_laps_end(pdrt_laps *l, double total_ms, double data_ms) {
    if (!l->n) return;
    current = NULL;
    int d = l->dir;
    if (l->calls[d]++ < l->skip) return;
    l->counted[d]++;
    for (int i = 0; i < l->n; i++) l->ms[d][i] += l->cur[i];
    l->total[d] += total_ms;
    l->data_ms += data_ms;
}

/* Appends to a growing string. */
static void put(char **s, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void put(char **s, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(*s ? *s + *len : NULL, *s ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        PDRT_CHECK(k >= 0);
        if (*s && *len + (size_t)k < *cap) { *len += (size_t)k; return; }
        *cap = (*cap + (size_t)k + 1) * 2;
        *s = realloc(*s, *cap);
        PDRT_CHECK(*s != NULL);
    }
}

char *pdrt_laps_profile_lines(const pdrt_laps *l, const pdrt_stage *st, double step_ms_per_mb) {
    char *s = NULL;
    size_t len = 0, cap = 0;
    put(&s, &len, &cap, "%s", "");
    if (!l->n || !l->counted[0] || !l->counted[1] || st->n_layers != l->n) return s;
    int n = l->n;
    double *f = calloc((size_t)n, sizeof *f), *b = calloc((size_t)n, sizeof *b);
    PDRT_CHECK(f && b);
    double fsum = 0, bsum = 0;
    for (int i = 0; i < n; i++) {
        f[i] = l->ms[0][i] / (double)l->counted[0];
        b[i] = l->ms[1][i] / (double)l->counted[1];
        fsum += f[i];
        bsum += b[i];
    }
    /* the executor's work outside the layers: loading the minibatch (stage 0) goes to the first
     * layer; the rest of the forward (the loss on the last stage, the output pack, the labels) to
     * the last layer; the rest of the backward (non-finite check, gradient accumulation) and the
     * optimizer step, both linear in the parameters, to the layers by their parameter bytes */
    double data = l->data_ms / (double)l->counted[0];
    double f_rest = l->total[0] / (double)l->counted[0] - fsum - data;
    double b_rest = l->total[1] / (double)l->counted[1] - bsum + step_ms_per_mb;
    f[0] += data;
    if (f_rest > 0) f[n - 1] += f_rest;
    int64_t pbytes = 0;
    for (int i = 0; i < n; i++) pbytes += st->layers[i].parameter_bytes;
    if (b_rest > 0)
        for (int i = 0; i < n; i++)
            b[i] += pbytes > 0 ? b_rest * (double)st->layers[i].parameter_bytes / (double)pbytes
                               : (i == n - 1 ? b_rest : 0);
    for (int i = 0; i < n; i++)
        put(&s, &len, &cap, "  - {name: %s, forward_ms: %.6g, backward_ms: %.6g, activation_bytes: %lld, "
            "parameter_bytes: %lld}\n", st->layers[i].name, f[i], b[i],
            (long long)st->layers[i].activation_bytes, (long long)st->layers[i].parameter_bytes);
    free(f);
    free(b);
    return s;
}

/* Gathers every rank's mine (lengths, then the bytes, in rank order) onto *all at out_rank. */
static void gather_lines(const char *mine, int out_rank, int rank, int nranks, char **all,
                         size_t *all_len) {
    int len = (int)strlen(mine), out = rank == out_rank, total = 0;
    int *lens = out ? calloc((size_t)nranks, sizeof *lens) : NULL, *displs = NULL;
    char *got = NULL;
    pdrt_watch("the gathering of the layers' times", out_rank, -1);
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, out_rank, MPI_COMM_WORLD);
    if (out) {
        PDRT_CHECK(lens != NULL);
        displs = calloc((size_t)nranks, sizeof *displs);
        PDRT_CHECK(displs != NULL);
        for (int r = 0; r < nranks; r++) { displs[r] = total; total += lens[r]; }
        got = calloc((size_t)total + 1, 1);
        PDRT_CHECK(got != NULL);
    }
    MPI_Gatherv(mine, len, MPI_CHAR, got, lens, displs, MPI_CHAR, out_rank, MPI_COMM_WORLD);
    pdrt_unwatch();
    if (out) {
        *all = realloc(*all, *all_len + (size_t)total + 1);
        PDRT_CHECK(*all != NULL);
        memcpy(*all + *all_len, got, (size_t)total + 1);
        *all_len += (size_t)total;
    }
    free(got);
    free(lens);
    free(displs);
}

void pdrt_laps_write_profile(const pdrt_laps *l, const pdrt_stage *const *st, const double *step_ms,
                             int v, int contribute, int out_rank, const char *dir, const char *how) {
    int rank = 0, nranks = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    int out = rank == out_rank, complete = 1;
    char *all = NULL;
    size_t total = 0;
    for (int c = 0; c < v; c++) { /* chunk c of every rank: stages c p .. c p + p - 1 */
        char *mine = contribute ? pdrt_laps_profile_lines(&l[c], st[c], step_ms[c]) : calloc(1, 1);
        PDRT_CHECK(mine != NULL);
        gather_lines(mine, out_rank, rank, nranks, &all, &total);
        free(mine);
    }
    l = &l[v - 1]; /* out_rank's: the last stage's */
    const pdrt_stage *s = st[v - 1];
    if (out) {
        /* every stage must have sent its layers, else the file would be no profile */
        int lines = 0;
        for (size_t i = 0; i < total; i++) lines += all[i] == '\n';
        complete = total > 0 && lines == s->model_layers;
        char path[4200];
        snprintf(path, sizeof path, "%s/profile.yaml", dir);
        if (!complete) {
            /* a stale profile from an earlier run must not pass for this one's */
            if (!unlink(path) || l->n)
                printf("pdrt: no %s: too few minibatches to time the layers after the warm-up\n", path);
        } else {
            pdrt_out o;
            FILE *fp = pdrt_out_open(&o, path);
            fprintf(fp, "# Measured by the PipeDream-C runtime inside training (%s): per layer, the mean\n"
                        "# over the minibatches its stage's first replica ran after a tenth of them (at most 20) warmed\n"
                        "# up (the last stage's: %lld after %lld), per minibatch of %d. The executor's work outside the\n"
                        "# layers is attributed: minibatch loading to the first layer's forward, the rest of a stage's\n"
                        "# forward (loss, output pack) to its last layer, the rest of its backward (non-finite check,\n"
                        "# gradient accumulation) and the optimizer (its time over the run per minibatch the replica\n"
                        "# ran) to its layers by parameter bytes (docs/simulator.md).\n",
                    how, (long long)l->counted[1], (long long)l->skip, s->batch);
            fprintf(fp, "pd_profile: 1\ndevice: cpu\nmodel: %s\nbatch: %d\nlayers:\n%s", s->model, s->batch, all);
            pdrt_out_commit(&o);
            printf("layer times measured in this run: %s (pdplan -p %s plans from them)\n", path, path);
            fflush(stdout);
        }
    }
    free(all);
}
