/* transport.h: how a CUDA stage moves device tensors to and from another rank (ggml style: a
 * small table of functions per transport). Three transports, chosen per link:
 *   ipc   ranks on one GPU (NCCL refuses two ranks on one device): the peer's device arena is
 *         opened once with cudaIpcOpenMemHandle; a send is a small MPI message naming the slot,
 *         the receiver copies device to device and acknowledges (2.1 TB/s on the H200);
 *   nccl  distinct GPUs: ncclSend/ncclRecv on a two-rank communicator per link and direction,
 *         on their own streams, so a send never blocks compute;
 *   host  the fallback: device -> pinned host -> MPI -> host -> device (5.4 GB/s on the H200).
 * Semantics are the schedule IR's (schedule.h): send posts and returns; the data at src must not
 * change until send_wait says the slot is free; recv blocks until the data is in dst (and
 * ordered before later work on the compute stream). Messages on one link arrive in order.
 * Communicators and IPC handles are set up once, in one fixed order on every rank (link_setup).
 */
#ifndef PD_TRANSPORT_H
#define PD_TRANSPORT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define PD_LINK_SLOTS 64

typedef enum { PD_TR_AUTO = 0, PD_TR_IPC, PD_TR_NCCL, PD_TR_HOST } pd_transport_kind;

typedef struct pd_link pd_link;

typedef struct {
    const char *name;
    /* posts a send of n floats at src (device, inside this rank's arena); slot < PD_LINK_SLOTS */
    void (*send)(pd_link *l, int slot, const float *src, int64_t n, int tag);
    /* waits until the send posted on slot (if any) no longer needs its source */
    void (*send_wait)(pd_link *l, int slot);
    /* receives n floats into dst (device); returns when they are there */
    void (*recv)(pd_link *l, float *dst, int64_t n, int tag);
    void (*close)(pd_link *l);
} pd_transport;

/* What a rank tells every other rank about itself, to choose transports. */
typedef struct {
    char host[64];
    unsigned char uuid[16]; /* cudaDeviceProp.uuid */
    int device;
} pd_rank_info;

struct pd_link {
    const pd_transport *t;
    int peer;                 /* MPI rank */
    void *stream;             /* the compute stream (cudaStream_t) */
    MPI_Comm comm;            /* the executor's data communicator */
    /* host */
    float *host_buf[PD_LINK_SLOTS];
    int64_t host_cap;         /* floats per host buffer */
    float *host_rbuf;
    MPI_Request req[PD_LINK_SLOTS], ack[PD_LINK_SLOTS];
    /* ipc */
    char *my_base, *peer_base;
    int64_t hdr[PD_LINK_SLOTS][2];
    int ack_byte[PD_LINK_SLOTS];
    MPI_Comm ack_comm;
    /* nccl */
    void *nccl_send, *nccl_recv; /* ncclComm_t: this rank -> peer, peer -> this rank */
    void *send_stream, *recv_stream;
    void *ready[PD_LINK_SLOTS], *done[PD_LINK_SLOTS], *ready_recv; /* cudaEvent_t */
    int posted[PD_LINK_SLOTS];
    int nccl_peer;            /* the peer's rank in the 2-rank communicators */
};

extern const pd_transport pd_transport_ipc, pd_transport_nccl, pd_transport_host;

/* Parses "auto" | "ipc" | "nccl" | "host"; -1 when none of them. */
int pd_transport_parse(const char *s);

/* The transport for a link between ranks a and b: forced (unless AUTO), else ipc on the same
 * host and GPU, nccl on distinct GPUs. Fails the run (pdrt_fail) when a forced choice cannot work
 * (ipc across hosts, nccl on one GPU). */
pd_transport_kind pd_transport_choose(pd_transport_kind forced, const pd_rank_info *a,
                                      const pd_rank_info *b);

/* Sets up this rank's links, collectively over comm (every rank calls it with the whole link
 * list, in the same order; each pair (lo, hi) is set up in ascending order, so that the blocking
 * ncclCommInitRank calls and IPC handle exchanges cannot deadlock). links[i] is valid when
 * a[i] or b[i] is this rank. kinds[i]: the transport of pair i. arena: this rank's device arena
 * (IPC exports it); max_floats: the largest message. */
void pd_links_setup(pd_link *links, const int *a, const int *b, const pd_transport_kind *kinds,
                    int n, int me, MPI_Comm comm, void *stream, void *arena, int64_t max_floats);
void pd_links_close(pd_link *links, const int *a, const int *b, int n, int me);

/* transport_nccl.c: the link's two communicators and streams (called by pd_links_setup) */
void pd_nccl_link_setup(pd_link *l, int me, int lo, int hi);
/* transport_nccl.c: a communicator over the ranks of comm (the ncclUniqueId broadcast over MPI
 * from comm's rank 0); NULL when NCCL fails (the caller falls back). */
void *pd_nccl_comm_create(MPI_Comm comm);
void pd_nccl_comm_destroy(void *nc);
/* in-place sum of n floats over the communicator, on stream; 0 on success */
int pd_nccl_allreduce_sum(void *nc, float *buf, int64_t n, void *stream);


#endif
