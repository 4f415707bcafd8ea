/* transport.h: the one interface through which both pipeline executors move a tensor to or from
 * another rank (ggml style: a small table of functions per transport). A link joins this rank
 * and one peer; its transport's own state sits behind link->state, set up by the table's setup
 * and freed by its close, so no transport sees another's fields.
 *   mpi   the CPU executor's: MPI_Isend / MPI_Irecv of host floats (transport_mpi.c);
 *   ipc, nccl, host   the CUDA executor's device tensors (runtime/cuda/transport/).
 * Semantics are the schedule IR's (runtime/schedule/schedule.h): send posts and returns; the data
 * at src must not change until send_wait(slot) says the slot is free (a slot is one send buffer of
 * the executor's rings); recv blocks until the data is in dst. Messages on one link and tag arrive
 * in order. A transport whose setup is collective (ipc, nccl) is set up on both ranks of every
 * link in one fixed order (ascending (low rank, high rank) pairs), so that setups cannot
 * deadlock. */
#ifndef PDRT_TRANSPORT_H
#define PDRT_TRANSPORT_H

#include <mpi.h>
#include <stdint.h>

#include "runtime/base/base.h"

typedef struct pdrt_link pdrt_link;

/* What a transport's setup may use (fields a transport does not need may be zero). */
typedef struct {
    int me, lo, hi;           /* this rank; the link's pair, lo < hi, me one of them */
    MPI_Comm comm;            /* the executor's data communicator (messages and their tags) */
    MPI_Comm ctl;             /* a second communicator for the transports' own messages
                                 (handles, ids, acknowledgements); MPI_COMM_NULL: none */
    int slots;                /* send slots the executor uses (slot < slots) */
    int64_t max_floats;       /* the largest message */
    void *stream;             /* CUDA: the compute stream (cudaStream_t) */
    void *arena;              /* CUDA: this rank's device arena (ipc exports it) */
} pdrt_link_env;

typedef struct {
    const char *name;
    /* makes l->state for the link to l->peer (l->t, l->peer and l->comm are set) */
    void (*setup)(pdrt_link *l, const pdrt_link_env *env);
    /* posts a send of n floats at src; slot < the env's slots */
    void (*send)(pdrt_link *l, int slot, const float *src, int64_t n, int tag);
    /* waits until the send posted on slot (if any) no longer needs its source */
    void (*send_wait)(pdrt_link *l, int slot);
    /* receives n floats into dst; returns when they are there */
    void (*recv)(pdrt_link *l, float *dst, int64_t n, int tag);
    /* waits for the link's sends and frees its state */
    void (*close)(pdrt_link *l);
} pdrt_transport;

struct pdrt_link {
    const pdrt_transport *t;  /* NULL: not set up */
    int peer;                 /* MPI rank */
    MPI_Comm comm;            /* the executor's data communicator */
    void *state;              /* the transport's own */
};

/* Sets l up as a link to peer over transport t (l->t, l->peer, l->comm, then t->setup). */
void pdrt_link_open(pdrt_link *l, const pdrt_transport *t, int peer, const pdrt_link_env *env);
/* t->close, then l is zeroed (not set up). */
void pdrt_link_close(pdrt_link *l);

/* The CPU executor's transport (transport_mpi.c). */
extern const pdrt_transport pdrt_transport_mpi;

/* The MPI tag of a message: kind 0 activations, 1 gradients, of minibatch mb. */
static inline int pdrt_tag_of(int kind, int64_t mb) { return kind + 2 * (int)(mb % 16384); }
/* The tag of such a message over link `edge` of an interleaved plan with `chunks` stages per rank
 * (the link between stages s and s + 1 is edge s / p, so that a rank's chunks talking to one peer
 * stay apart); pdrt_tag_of's outside interleaved (chunks 0 or 1). */
static inline int pdrt_chunk_tag(int kind, int64_t mb, int edge, int chunks) {
    if (chunks <= 1) return pdrt_tag_of(kind, mb);
    return kind + 2 * (edge + chunks * (int)(mb % (16384 / chunks)));
}

/* An MPI count: n floats must fit an int (fails the run otherwise). */
static inline int pdrt_mpi_count(int64_t n) {
    if (n < 0 || n >= ((int64_t)1 << 31))
        PDRT_FAIL("message of %lld floats too large for MPI", (long long)n);
    return (int)n;
}

#endif
