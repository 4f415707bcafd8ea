/* transport_nccl.c: distinct GPUs. Each link has two 2-rank NCCL communicators, one per
 * direction, so that a rank's sends and receives never share a communicator across streams.
 * Sends run on the link's send stream after an event from the compute stream (a send never
 * blocks compute); a slot is free when the send's completion event has fired. Receives run on
 * the link's receive stream after the compute stream's pending work (the destination may still
 * be read by it), and the host waits for them. Also the stage communicators for the replicas'
 * all-reduce. Every ncclUniqueId travels over MPI. */
#include <nccl.h>
#include <stdlib.h>

#include "transport.h"
#include "transport_internal.h"

#define TR_NCCL(x)                                                                           \
    do {                                                                                     \
        ncclResult_t r_ = (x);                                                               \
        if (r_ != ncclSuccess) PDRT_FAIL("%s: %s", #x, ncclGetErrorString(r_)); \
    } while (0)

/* Waits for an event without spinning a core (the caller's watched wait catches a hang). */
static void wait_event(cudaEvent_t ev) {
    double t0 = pdrt_now();
    for (long spins = 0;; spins++) {
        cudaError_t e = cudaEventQuery(ev);
        if (e == cudaSuccess) return;
        if (e != cudaErrorNotReady) TR_CUDA(e);
        pdrt_backoff(spins, t0);
    }
}

typedef struct {
    void *stream;             /* the compute stream (cudaStream_t) */
    void *nccl_send, *nccl_recv; /* ncclComm_t: this rank -> peer, peer -> this rank */
    void *send_stream, *recv_stream;
    void *ready[PD_LINK_SLOTS], *done[PD_LINK_SLOTS], *ready_recv; /* cudaEvent_t */
    int posted[PD_LINK_SLOTS];
    int nccl_peer;            /* the peer's rank in the 2-rank communicators */
} nccl_state;

static int peer_index(const nccl_state *l) { return l->nccl_peer; }

static void nccl_send(pdrt_link *k, int slot, const float *src, int64_t n, int tag) {
    nccl_state *l = k->state;
    (void)tag; /* NCCL matches in order; the schedule sends in minibatch order on each link */
    PDRT_CHECK(slot >= 0 && slot < PD_LINK_SLOTS);
    if (l->posted[slot]) wait_event((cudaEvent_t)l->done[slot]);
    TR_CUDA(cudaEventRecord((cudaEvent_t)l->ready[slot], (cudaStream_t)l->stream));
    TR_CUDA(cudaStreamWaitEvent((cudaStream_t)l->send_stream, (cudaEvent_t)l->ready[slot], 0));
    TR_NCCL(ncclSend(src, (size_t)n, ncclFloat, peer_index(l), (ncclComm_t)l->nccl_send,
                     (cudaStream_t)l->send_stream));
    TR_CUDA(cudaEventRecord((cudaEvent_t)l->done[slot], (cudaStream_t)l->send_stream));
    l->posted[slot] = 1;
}

static void nccl_send_wait(pdrt_link *k, int slot) {
    nccl_state *l = k->state;
    if (!l->posted[slot]) return;
    wait_event((cudaEvent_t)l->done[slot]);
    l->posted[slot] = 0;
}

static void nccl_recv(pdrt_link *k, float *dst, int64_t n, int tag) {
    nccl_state *l = k->state;
    (void)tag;
    TR_CUDA(cudaEventRecord((cudaEvent_t)l->ready_recv, (cudaStream_t)l->stream));
    TR_CUDA(cudaStreamWaitEvent((cudaStream_t)l->recv_stream, (cudaEvent_t)l->ready_recv, 0));
    TR_NCCL(ncclRecv(dst, (size_t)n, ncclFloat, peer_index(l), (ncclComm_t)l->nccl_recv,
                     (cudaStream_t)l->recv_stream));
    TR_CUDA(cudaEventRecord((cudaEvent_t)l->ready_recv, (cudaStream_t)l->recv_stream));
    wait_event((cudaEvent_t)l->ready_recv);
}

static void nccl_close(pdrt_link *k) {
    nccl_state *l = k->state;
    if (!l) return;
    for (int i = 0; i < PD_LINK_SLOTS; i++) {
        nccl_send_wait(k, i);
        if (l->ready[i]) cudaEventDestroy((cudaEvent_t)l->ready[i]);
        if (l->done[i]) cudaEventDestroy((cudaEvent_t)l->done[i]);
    }
    if (l->ready_recv) cudaEventDestroy((cudaEvent_t)l->ready_recv);
    if (l->nccl_send) ncclCommDestroy((ncclComm_t)l->nccl_send);
    if (l->nccl_recv) ncclCommDestroy((ncclComm_t)l->nccl_recv);
    if (l->send_stream) cudaStreamDestroy((cudaStream_t)l->send_stream);
    if (l->recv_stream) cudaStreamDestroy((cudaStream_t)l->recv_stream);
    free(l);
    k->state = NULL;
}

/* The link's two communicators, streams and events. For the pair (lo, hi), me one of them: the
 * lower rank makes both ids and sends them to the higher one over MPI (the env's ctl
 * communicator); both create the lo->hi communicator first, then hi->lo (the same order on both
 * sides). */
static void nccl_setup(pdrt_link *k, const pdrt_link_env *env) {
    nccl_state *l = calloc(1, sizeof *l);
    PDRT_CHECK(l != NULL);
    k->state = l;
    l->stream = env->stream;
    int me = env->me, lo = env->lo, hi = env->hi;
    ncclUniqueId id[2];
    if (me == lo) {
        TR_NCCL(ncclGetUniqueId(&id[0]));
        TR_NCCL(ncclGetUniqueId(&id[1]));
        MPI_Send(id, (int)sizeof id, MPI_BYTE, hi, 0, env->ctl);
    } else {
        MPI_Recv(id, (int)sizeof id, MPI_BYTE, lo, 0, env->ctl, MPI_STATUS_IGNORE);
    }
    int idx = me == lo ? 0 : 1;
    l->nccl_peer = 1 - idx;
    ncclComm_t c[2];
    for (int k = 0; k < 2; k++) {
        ncclResult_t r = ncclCommInitRank(&c[k], 2, id[k], idx);
        if (r != ncclSuccess)
            PDRT_FAIL("NCCL between ranks %d and %d: ncclCommInitRank: %s (two "
                    "ranks on one GPU need --transport ipc or host)", lo, hi, ncclGetErrorString(r));
    }
    /* c[0] carries lo -> hi, c[1] hi -> lo */
    l->nccl_send = me == lo ? c[0] : c[1];
    l->nccl_recv = me == lo ? c[1] : c[0];
    cudaStream_t s1, s2;
    TR_CUDA(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    TR_CUDA(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    l->send_stream = s1;
    l->recv_stream = s2;
    for (int i = 0; i < PD_LINK_SLOTS; i++) {
        cudaEvent_t a, b;
        TR_CUDA(cudaEventCreateWithFlags(&a, cudaEventDisableTiming));
        TR_CUDA(cudaEventCreateWithFlags(&b, cudaEventDisableTiming));
        l->ready[i] = a;
        l->done[i] = b;
    }
    cudaEvent_t rr;
    TR_CUDA(cudaEventCreateWithFlags(&rr, cudaEventDisableTiming));
    l->ready_recv = rr;
}

const pdrt_transport pd_transport_nccl = {"nccl", nccl_setup, nccl_send, nccl_send_wait, nccl_recv,
                                          nccl_close};

void *pd_nccl_comm_create(MPI_Comm comm) {
    int rank, size;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    ncclUniqueId id;
    int ok = 1;
    if (rank == 0 && ncclGetUniqueId(&id) != ncclSuccess) ok = 0;
    MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
    if (!ok) return NULL;
    MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, comm);
    ncclComm_t c;
    int mine = ncclCommInitRank(&c, size, id, rank) == ncclSuccess, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, comm);
    if (!all) {
        if (mine) ncclCommDestroy(c);
        return NULL;
    }
    return c;
}

void pd_nccl_comm_destroy(void *nc) {
    if (nc) ncclCommDestroy((ncclComm_t)nc);
}

int pd_nccl_allreduce_sum(void *nc, float *buf, int64_t n, void *stream) {
    return ncclAllReduce(buf, buf, (size_t)n, ncclFloat, ncclSum, (ncclComm_t)nc,
                         (cudaStream_t)stream) != ncclSuccess;
}
