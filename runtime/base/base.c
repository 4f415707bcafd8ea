/* base.c: the runtime's error exit (names rank and stage, then takes the MPI job down), aligned
 * zeroed allocation, the clock and the MPI wait (base.h). */
#include <mpi.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base.h"

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
