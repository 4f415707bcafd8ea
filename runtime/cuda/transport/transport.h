/* transport.h (CUDA): how a CUDA stage moves device tensors to and from another rank, through
 * runtime/transport/transport.h's interface (a table of functions per transport, each
 * transport's state behind link->state). Three transports, chosen per link:
 *   ipc   ranks on one GPU (NCCL refuses two ranks on one device): the peer's device arena is
 *         opened once with cudaIpcOpenMemHandle; a send is a small MPI message naming the slot,
 *         the receiver copies device to device and acknowledges (2.1 TB/s on the H200);
 *   nccl  distinct GPUs: ncclSend/ncclRecv on a two-rank communicator per link and direction,
 *         on their own streams, so a send never blocks compute;
 *   host  the fallback: device -> pinned host -> MPI -> host -> device (5.4 GB/s on the H200).
 * Semantics are the interface's; a recv's data is also ordered before later work on the compute
 * stream. Communicators and IPC handles are set up once, in one fixed order on every rank
 * (pd_links_setup calls each link's table setup).
 */
#ifndef PD_TRANSPORT_H
#define PD_TRANSPORT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/transport/transport.h"

#define PD_LINK_SLOTS 256

typedef enum { PD_TR_AUTO = 0, PD_TR_IPC, PD_TR_NCCL, PD_TR_HOST } pd_transport_kind;

/* What a rank tells every other rank about itself, to choose transports. */
typedef struct {
    char host[64];
    unsigned char uuid[16]; /* cudaDeviceProp.uuid */
    int device;
} pd_rank_info;

/* The tables (transport_ipc.c, transport_nccl.c, transport_host.c). Their setup uses the env's
 * ctl communicator, stream, max_floats (host) and arena (ipc); slots are PD_LINK_SLOTS. */
extern const pdrt_transport pd_transport_ipc, pd_transport_nccl, pd_transport_host;

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
void pd_links_setup(pdrt_link *links, const int *a, const int *b, const pd_transport_kind *kinds,
                    int n, int me, MPI_Comm comm, void *stream, void *arena, int64_t max_floats);
void pd_links_close(pdrt_link *links, const int *a, const int *b, int n, int me);

/* transport_nccl.c: a communicator over the ranks of comm (the ncclUniqueId broadcast over MPI
 * from comm's rank 0); NULL when NCCL fails (the caller falls back). */
void *pd_nccl_comm_create(MPI_Comm comm);
void pd_nccl_comm_destroy(void *nc);
/* in-place sum of n floats over the communicator, on stream; 0 on success */
int pd_nccl_allreduce_sum(void *nc, float *buf, int64_t n, void *stream);

#endif
