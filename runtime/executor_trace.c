/* executor_trace.c: the executors' run/trace.json (the CPU's and the CUDA's): every rank's trace
 * events (trace.c records them) gathered over MPI to the rank that writes the file, each rank
 * named by stage and replica, or under interleaved by its chunks. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "executor.h"

void pdrt_trace_gather_write(const char *run_dir, int rank, int n_ranks, int root,
                             const int *first_rank, int n_stages, int chunks) {
    size_t len = 0;
    char *mine = pdrt_trace_events_json(rank, &len);
    PDRT_CHECK(len < (size_t)1 << 31);
    int n = (int)len;
    int *lens = NULL, *offs = NULL;
    char *all = NULL;
    if (rank == root) {
        lens = calloc((size_t)n_ranks, sizeof(int));
        offs = calloc((size_t)n_ranks, sizeof(int));
        PDRT_CHECK(lens && offs);
    }
    pdrt_watch("the gathering of trace events", root, -1);
    MPI_Gather(&n, 1, MPI_INT, lens, 1, MPI_INT, root, MPI_COMM_WORLD);
    size_t total = 0;
    if (rank == root) {
        for (int r = 0; r < n_ranks; r++) {
            PDRT_CHECK(total + (size_t)lens[r] < (size_t)1 << 31);
            offs[r] = (int)total;
            total += (size_t)lens[r];
        }
        all = malloc(total + 1);
        PDRT_CHECK(all != NULL);
    }
    MPI_Gatherv(mine, n, MPI_CHAR, all, lens, offs, MPI_CHAR, root, MPI_COMM_WORLD);
    pdrt_unwatch();
    if (rank == root) {
        /* join the ranks' texts with commas */
        char *joined = malloc(total + 2 * (size_t)n_ranks + 1);
        char (*names)[96] = calloc((size_t)n_ranks, sizeof *names);
        const char **np = calloc((size_t)n_ranks, sizeof *np);
        PDRT_CHECK(joined && names && np);
        size_t off = 0;
        for (int r = 0; r < n_ranks; r++) {
            if (!lens[r]) continue;
            if (off) { joined[off++] = ','; joined[off++] = '\n'; }
            memcpy(joined + off, all + offs[r], (size_t)lens[r]);
            off += (size_t)lens[r];
        }
        joined[off] = 0;
        for (int r = 0, k = 0; r < n_ranks; r++) {
            if (chunks > 1) { /* interleaved: compute and messages, two rows per chunk */
                snprintf(names[r], sizeof names[r], "rank %d: stages %d, %d, ... (%d chunks)", r,
                         r, r + n_ranks, chunks);
                np[r] = names[r];
                continue;
            }
            while (k + 1 < n_stages && first_rank[k + 1] <= r) k++;
            snprintf(names[r], sizeof names[r], "rank %d: stage %d replica %d", r, k, r - first_rank[k]);
            np[r] = names[r];
        }
        pdrt_trace_write(run_dir, joined, n_ranks, np);
        free(joined); free(names); free(np);
    }
    free(mine); free(all); free(lens); free(offs);
}

/* Gathers every rank's trace events to out_rank, which writes run/trace.json. */
void pdrt_ex_write_trace(ex_t *e) {
    pdrt_trace_gather_write(e->a->run_dir, e->rank, e->n, e->out_rank, e->first_rank,
                            e->st->n_stages, e->chunks);
}
