/* transport_mpi.c: the CPU executor's transport: host floats straight through MPI (MPI_Isend from
 * the executor's send slot, one request per slot; MPI_Irecv, then a wait that naps instead of
 * spinning a core, pdrt_wait_req). */
#include <stdlib.h>

#include "transport.h"

typedef struct {
    int slots;
    MPI_Request *req;         /* per slot: its pending send, or MPI_REQUEST_NULL */
} mpi_state;

static void mpi_setup(pdrt_link *l, const pdrt_link_env *env) {
    mpi_state *s = calloc(1, sizeof *s);
    PDRT_CHECK(s != NULL);
    s->slots = env->slots > 0 ? env->slots : 1;
    s->req = malloc((size_t)s->slots * sizeof *s->req);
    PDRT_CHECK(s->req != NULL);
    for (int i = 0; i < s->slots; i++) s->req[i] = MPI_REQUEST_NULL;
    l->state = s;
}

static void mpi_send_wait(pdrt_link *l, int slot) {
    mpi_state *s = l->state;
    if (s->req[slot] != MPI_REQUEST_NULL) pdrt_wait_req(&s->req[slot]);
}

static void mpi_send(pdrt_link *l, int slot, const float *src, int64_t n, int tag) {
    mpi_state *s = l->state;
    PDRT_CHECK(slot >= 0 && slot < s->slots);
    mpi_send_wait(l, slot);
    MPI_Isend(src, pdrt_mpi_count(n), MPI_FLOAT, l->peer, tag, l->comm, &s->req[slot]);
}

static void mpi_recv(pdrt_link *l, float *dst, int64_t n, int tag) {
    MPI_Request r;
    MPI_Irecv(dst, pdrt_mpi_count(n), MPI_FLOAT, l->peer, tag, l->comm, &r);
    pdrt_wait_req(&r);
}

static void mpi_close(pdrt_link *l) {
    mpi_state *s = l->state;
    if (!s) return;
    for (int i = 0; i < s->slots; i++) mpi_send_wait(l, i);
    free(s->req);
    free(s);
    l->state = NULL;
}

const pdrt_transport pdrt_transport_mpi = {"mpi", mpi_setup, mpi_send, mpi_send_wait, mpi_recv,
                                           mpi_close};
