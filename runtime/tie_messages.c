/* tie_messages.c: the messages of tied weights between two stages' replicas, which both
 * executors send (runtime/executor_ties.c, runtime/cuda/executor_cuda_ties.c; rt.h): replica j of
 * a stage receives from replica j mod R' of the other stage (R' its replicas) and sends to every
 * replica q of it with q mod R == j, so every replica of both stages gets the other stage's values
 * once. Requests are collected and waited for together, under the watchdog. */
#include <mpi.h>
#include <stdlib.h>

#include "rt.h"

MPI_Request *pdrt_reqs_add(pdrt_reqs *q) {
    if (q->n == q->cap) {
        q->cap = q->cap ? 2 * q->cap : 8;
        q->r = realloc(q->r, (size_t)q->cap * sizeof *q->r);
        PDRT_CHECK(q->r != NULL);
    }
    return &q->r[q->n++];
}

void pdrt_reqs_wait(pdrt_reqs *q, const char *what) {
    pdrt_watch(what, -1, -1);
    for (int i = 0; i < q->n; i++) pdrt_wait_req(&q->r[i]);
    pdrt_unwatch();
    free(q->r);
    q->r = NULL;
    q->n = q->cap = 0;
}

void pdrt_tie_post(pdrt_reqs *q, const pdrt_tie *t, const int *first_rank, int R, int j,
                   MPI_Comm comm, const float *mine, float *other, int64_t n) {
    int p = t->peer_stage, Rp = first_rank[p + 1] - first_rank[p];
    int tag = t->owner ? t->tensor : t->peer_tensor;
    PDRT_CHECK(n < (int64_t)1 << 31);
    if (mine)
        for (int k = 0; k < Rp; k++)
            if (k % R == j)
                MPI_Isend(mine, (int)n, MPI_FLOAT, first_rank[p] + k, tag, comm,
                          pdrt_reqs_add(q));
    if (other)
        MPI_Irecv(other, (int)n, MPI_FLOAT, first_rank[p] + j % Rp, tag, comm, pdrt_reqs_add(q));
}
