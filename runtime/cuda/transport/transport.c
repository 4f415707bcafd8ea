/* transport.c (CUDA): choosing a transport per link (same host and same GPU UUID: CUDA IPC;
 * distinct GPUs: NCCL; or what --transport forces) and setting every link up, through its
 * table's setup, in one fixed order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"
#include "transport_internal.h"

static MPI_Comm ack_comm = MPI_COMM_NULL;

int pd_transport_parse(const char *s) {
    static const char *const names[] = {"auto", "ipc", "nccl", "host"};
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i])) return i;
    return -1;
}

pd_transport_kind pd_transport_choose(pd_transport_kind forced, const pd_rank_info *a,
                                      const pd_rank_info *b) {
    int same_host = !strncmp(a->host, b->host, sizeof a->host);
    int same_gpu = same_host && !memcmp(a->uuid, b->uuid, sizeof a->uuid);
    if (forced == PD_TR_IPC && !same_host)
        PDRT_FAIL("--transport ipc: ranks on hosts %s and %s cannot share device "
                "memory", a->host, b->host);
    if (forced == PD_TR_NCCL && same_gpu)
        PDRT_FAIL("--transport nccl: two ranks on GPU %d of %s (NCCL refuses two "
                "ranks on one device; use ipc or host)", a->device, a->host);
    if (forced != PD_TR_AUTO) return forced;
    return same_gpu ? PD_TR_IPC : PD_TR_NCCL;
}

void pd_links_setup(pdrt_link *links, const int *a, const int *b, const pd_transport_kind *kinds,
                    int n, int me, MPI_Comm comm, void *stream, void *arena, int64_t max_floats) {
    if (ack_comm == MPI_COMM_NULL) MPI_Comm_dup(comm, &ack_comm);
    for (int i = 0; i < n; i++) {
        if (a[i] != me && b[i] != me) continue;
        int lo = a[i] < b[i] ? a[i] : b[i], hi = a[i] < b[i] ? b[i] : a[i];
        pdrt_link_env env = {.me = me, .lo = lo, .hi = hi, .comm = comm, .ctl = ack_comm,
                             .slots = PD_LINK_SLOTS, .max_floats = max_floats, .stream = stream,
                             .arena = arena};
        const pdrt_transport *t = kinds[i] == PD_TR_IPC    ? &pd_transport_ipc
                                  : kinds[i] == PD_TR_NCCL ? &pd_transport_nccl
                                                           : &pd_transport_host;
        pdrt_link_open(&links[i], t, me == lo ? hi : lo, &env);
    }
}

void pd_links_close(pdrt_link *links, const int *a, const int *b, int n, int me) {
    for (int i = 0; i < n; i++)
        if ((a[i] == me || b[i] == me) && links[i].t) links[i].t->close(&links[i]);
    if (ack_comm != MPI_COMM_NULL) MPI_Comm_free(&ack_comm);
}
