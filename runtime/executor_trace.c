/* executor_trace.c: the CPU executor's run/trace.json: every rank's trace events (trace.c records
 * them) gathered over MPI to the rank that writes the file, each rank named by stage and replica. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "executor.h"

/* Gathers every rank's trace events to out_rank, which writes run/trace.json. */
void pdrt_ex_write_trace(ex_t *e) {
    size_t len = 0;
    char *mine = pdrt_trace_events_json(e->rank, &len);
    PDRT_CHECK(len < (size_t)1 << 31);
    int n = (int)len, root = e->out_rank;
    int *lens = NULL, *offs = NULL;
    char *all = NULL;
    if (e->rank == root) {
        lens = calloc((size_t)e->n, sizeof(int));
        offs = calloc((size_t)e->n, sizeof(int));
        PDRT_CHECK(lens && offs);
    }
    pdrt_watch("the gathering of trace events", root, -1);
    MPI_Gather(&n, 1, MPI_INT, lens, 1, MPI_INT, root, MPI_COMM_WORLD);
    size_t total = 0;
    if (e->rank == root) {
        for (int r = 0; r < e->n; r++) {
            PDRT_CHECK(total + (size_t)lens[r] < (size_t)1 << 31);
            offs[r] = (int)total;
            total += (size_t)lens[r];
        }
        all = malloc(total + 1);
        PDRT_CHECK(all != NULL);
    }
    MPI_Gatherv(mine, n, MPI_CHAR, all, lens, offs, MPI_CHAR, root, MPI_COMM_WORLD);
    pdrt_unwatch();
    if (e->rank == root) {
        /* join the ranks' texts with commas */
        char *joined = malloc(total + 2 * (size_t)e->n + 1);
        char (*names)[96] = calloc((size_t)e->n, sizeof *names);
        const char **np = calloc((size_t)e->n, sizeof *np);
        PDRT_CHECK(joined && names && np);
        size_t off = 0;
        for (int r = 0; r < e->n; r++) {
            if (!lens[r]) continue;
            if (off) { joined[off++] = ','; joined[off++] = '\n'; }
            memcpy(joined + off, all + offs[r], (size_t)lens[r]);
            off += (size_t)lens[r];
        }
        joined[off] = 0;
        for (int r = 0, k = 0; r < e->n; r++) {
            if (e->chunks > 1) { /* interleaved: compute and messages, two rows per chunk */
                snprintf(names[r], sizeof names[r], "rank %d: stages %d, %d, ... (%d chunks)", r,
                         r, r + e->n, e->chunks);
                np[r] = names[r];
                continue;
            }
            while (k + 1 < e->st->n_stages && e->first_rank[k + 1] <= r) k++;
            snprintf(names[r], sizeof names[r], "rank %d: stage %d replica %d", r, k, r - e->first_rank[k]);
            np[r] = names[r];
        }
        pdrt_trace_write(e->a->run_dir, joined, e->n, np);
        free(joined); free(names); free(np);
    }
    free(mine); free(all); free(lens); free(offs);
}
