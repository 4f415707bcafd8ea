/* rt_util.c: the runtime's error exit (names rank and stage, then takes the MPI job down),
 * aligned zeroed allocation, the clock, the MPI wait and the gather of the ranks' stats. */
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"

static int id_rank = -1, id_stage = -1, id_mpi = 0;

void pdrt_set_identity(int rank, int stage, int use_mpi) {
    id_rank = rank;
    id_stage = stage;
    id_mpi = use_mpi;
}

void pdrt_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    if (id_stage >= 0)
        fprintf(stderr, "pdrt: rank %d (stage %d): error: ", id_rank, id_stage);
    else
        fprintf(stderr, "pdrt: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s:%d)\n", file, line);
    fflush(stderr);
    if (id_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void *pdrt_alloc(size_t floats) {
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) PDRT_FAIL("out of memory allocating %zu bytes", bytes);
    memset(p, 0, bytes);
    return p;
}

double pdrt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int64_t pdrt_scratch_floats(const pdrt_stage *st) {
    int64_t k = st->scratch_floats ? st->scratch_floats() : 0;
    return k > st->n_scratch ? k : st->n_scratch;
}

/* Waits for a request without spinning a core: a rank waiting for its neighbour must leave the
 * CPU to the ranks that compute (there may be more ranks than cores). Polls, then naps. */
void pdrt_wait_req(MPI_Request *r) {
    int done = 0;
    for (long spins = 0;; spins++) {
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (done) return;
        if (spins > 64) {
            struct timespec nap = {0, 20000}; /* 20 us */
            nanosleep(&nap, NULL);
        }
    }
}

pdrt_stage_stats *pdrt_stage_stats_gather(const pdrt_stage_stats *mine, const int *first_rank,
                                      int n_stages, int out_rank) {
    int rank = 0, n = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    double v[8] = {mine->fwd_ms, mine->bwd_ms, mine->step_ms, mine->wait_ms, (double)mine->steps,
                   mine->predicted_ms, mine->predicted_compute_ms, (double)mine->skipped};
    int out = rank == out_rank;
    double *all = out ? calloc((size_t)n * 8, sizeof(double)) : NULL;
    if (out) PDRT_CHECK(all != NULL);
    MPI_Gather(v, 8, MPI_DOUBLE, all, 8, MPI_DOUBLE, out_rank, MPI_COMM_WORLD);
    if (!out) return NULL;
    pdrt_stage_stats *ss = calloc((size_t)n_stages, sizeof *ss);
    PDRT_CHECK(ss != NULL);
    for (int k = 0; k < n_stages; k++) { /* the first replica's; skipped: all its replicas' */
        const double *f = all + 8 * first_rank[k];
        ss[k] = (pdrt_stage_stats){f[0], f[1], f[2], f[3], (int64_t)f[4], f[5], f[6], 0, 0};
        for (int r = first_rank[k]; r < first_rank[k + 1]; r++) {
            const double *u = all + 8 * r;
            double c = u[4] > 0 ? (u[0] + u[1] + u[2]) / u[4] : 0;
            if (c > ss[k].slowest_compute_ms) ss[k].slowest_compute_ms = c;
            ss[k].skipped += (int64_t)u[7];
        }
    }
    free(all);
    return ss;
}
