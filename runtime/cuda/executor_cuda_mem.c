/* executor_cuda_mem.c: the CUDA executor's static device memory plan, every buffer carved from
 * one arena allocated once before training for the full epoch's schedule (weight versions by the
 * schedule's rule, one activation buffer per minibatch in flight or one under recompute, layer
 * gradients kept per minibatch between a split backward's two parts, input and output slots),
 * printed as a plan; and the plan of the links between ranks and their transports. */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor_cuda.h"
#include "runtime/cuda/transport/transport_internal.h"

/* The static device memory plan: every buffer carved from one arena, allocated once. */
typedef struct {
    size_t off;
} carve_t;
static size_t carve(carve_t *c, size_t bytes) {
    size_t at = c->off;
    c->off += (bytes + 255) & ~(size_t)255;
    return at;
}

/* The schedules this executor runs; the others (the interleaved schedule) run on the CPU. */
static int runs_here(const char *schedule) {
    static const char *const ok[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(schedule, ok[i])) return 1;
    return 0;
}

void pdrt_cx_alloc(cx_t *e, const pd_schedule *full) {
    const pdrt_stage *st = e->st;
    if (!runs_here(full->name))
        PDRT_FAIL("the %s schedule runs on the CPU executor only: the CUDA executor runs 1f1b, "
                  "flush, gpipe, zb-h1, zb-h2 and 2bw", full->name);
    if (e->ru.recompute == 2)
        PDRT_FAIL("selective recomputation runs on the CPU executor only: the CUDA stages have no "
                  "forward_recompute");
    if (e->ru.split && e->ru.recompute) /* the CPU executor recomputes again before W; here W
                                          * would read the one activation buffer as it is */
        PDRT_FAIL("--recompute with the %s schedule does not run on the CUDA executor: its "
                  "backward_weight would read activations another minibatch's forward has "
                  "overwritten", full->name);
    if (e->ru.split && (!e->cst->backward_input || !e->cst->backward_weight))
        PDRT_FAIL("stage %d has no backward_input/backward_weight for %s: regenerate it with "
                  "this pdplan", st->index, full->name);
    e->D = pdrt_in_flight(&full->ranks[e->rank]);
    int nv = pdrt_rules_versions(&e->ru, st, e->D);
    e->nv = nv;
    e->n_acts_bufs = pdrt_rules_act_buffers(&e->ru, e->D);
    int n_dacts = e->ru.split ? e->D : 1; /* B to W: each minibatch in flight keeps its own */
    e->S = full->send_slots > 0 ? full->send_slots : 1;
    if (2 * e->S > PD_LINK_SLOTS)
        PDRT_FAIL("the schedule needs %d send slots; the CUDA transports keep %d",
                e->S, PD_LINK_SLOTS / 2);
    pdrt_stash_init(&e->stash, nv, 1, e->D);
    size_t f = sizeof(float), np = (size_t)(st->n_params ? st->n_params : 1);
    size_t nacts = (size_t)(st->n_acts ? st->n_acts : 1);
    size_t nin = (size_t)(st->in_floats + e->NL), nout = (size_t)(st->out_floats + e->NL);
    size_t nos = pd_optim_state_floats(&e->opt, (size_t)st->n_params);
    size_t nbuf = (size_t)(st->n_buffers + 1);
    carve_t c = {0};
    size_t o_w = carve(&c, (size_t)nv * np * f), o_acc = carve(&c, np * f);
    size_t o_opt = carve(&c, (nos ? nos : 1) * f), o_buf = carve(&c, nbuf * f);
    size_t o_dacts = carve(&c, (size_t)n_dacts * nacts * f);
    size_t o_logits = carve(&c, (size_t)(st->out_floats + 1) * f);
    size_t o_lab = carve(&c, (size_t)e->NL * sizeof(int));
    size_t o_acts = carve(&c, (size_t)e->n_acts_bufs * nacts * f), o_in = carve(&c, (size_t)e->D * nin * f);
    size_t o_dout = carve(&c, (size_t)e->D * (size_t)(st->out_floats + 1) * f);
    size_t o_as = carve(&c, (size_t)e->S * nout * f);
    size_t o_gs = carve(&c, (size_t)e->S * (size_t)(st->in_floats + 1) * f);
    size_t o_btmp = e->ru.recompute ? carve(&c, nbuf * f) : 0;
    size_t o_rout = e->ru.recompute ? carve(&c, (size_t)(st->out_floats + 1) * f) : 0;
    e->arena_bytes = c.off;
    e->arena = pd_cuda_alloc(e->arena_bytes);
    if (!e->arena) PDRT_FAIL("cannot allocate the %.1f MiB device arena", e->arena_bytes / 1048576.0);
    pd_cuda_zero(e->ctx, e->arena, e->arena_bytes);
    e->wblob = (float *)(e->arena + o_w);
    e->acc = (float *)(e->arena + o_acc);
    e->opt_state = (float *)(e->arena + o_opt);
    e->buffers = (float *)(e->arena + o_buf);
    e->logits = (float *)(e->arena + o_logits);
    e->labels_dev = (int *)(e->arena + o_lab);
    if (e->ru.recompute) {
        e->buffers_tmp = (float *)(e->arena + o_btmp);
        e->recompute_out = (float *)(e->arena + o_rout);
    }
    e->acts = calloc((size_t)e->D, sizeof(float *));
    e->in = calloc((size_t)e->D, sizeof(float *));
    e->dout = calloc((size_t)e->D, sizeof(float *));
    e->dacts_of = calloc((size_t)n_dacts, sizeof(float *));
    e->act_send = calloc((size_t)e->S, sizeof(float *));
    e->grad_send = calloc((size_t)e->S, sizeof(float *));
    PDRT_CHECK(e->acts && e->in && e->dout && e->dacts_of && e->act_send && e->grad_send);
    for (int i = 0; i < n_dacts; i++) e->dacts_of[i] = (float *)(e->arena + o_dacts) + (size_t)i * nacts;
    e->dacts = e->dacts_of[0];
    for (int i = 0; i < e->D; i++) { /* minibatch l's buffers: index l % D (acts: % n_acts_bufs) */
        e->acts[i] = (float *)(e->arena + o_acts) + (size_t)(i % e->n_acts_bufs) * nacts;
        e->in[i] = (float *)(e->arena + o_in) + (size_t)i * nin;
        e->dout[i] = (float *)(e->arena + o_dout) + (size_t)i * (size_t)(st->out_floats + 1);
    }
    for (int i = 0; i < e->S; i++) {
        e->act_send[i] = (float *)(e->arena + o_as) + (size_t)i * nout;
        e->grad_send[i] = (float *)(e->arena + o_gs) + (size_t)i * (size_t)(st->in_floats + 1);
    }
    e->in_host = pdrt_alloc(nin);
    e->labels_host = calloc((size_t)e->NL, sizeof(int));
    e->host_acc = pdrt_alloc(np);
    e->host_gather = e->j == 0 ? pdrt_alloc(np * (size_t)e->R) : NULL;
    PDRT_CHECK(e->labels_host);
    double mib = 1.0 / 1048576.0;
    printf("stage %d rank %d: device memory plan %.1f MiB, allocated once: weights %d x %.1f, "
           "gradient %.1f, optimizer %.1f, activations %d x %.1f%s, layer gradients %d x %.1f, "
           "inputs %d x %.1f, send slots %d x %.1f + %.1f\n", st->index, e->rank,
           e->arena_bytes * mib, nv, np * f * mib, np * f * mib, nos * f * mib, e->n_acts_bufs,
           nacts * f * mib, e->ru.recompute ? " (recomputed)" : "", n_dacts, nacts * f * mib, e->D,
           nin * f * mib, e->S, nout * f * mib, (double)(st->in_floats + 1) * f * mib);
    fflush(stdout);
}

void pdrt_cx_free(cx_t *e) {
    free(e->acts); free(e->in); free(e->dout); free(e->dacts_of); free(e->act_send); free(e->grad_send);
    free(e->in_host); free(e->labels_host); free(e->host_acc); free(e->host_gather);
    free(e->first_rank); free(e->la); free(e->lb); free(e->lk); free(e->links);
    pd_cuda_free(e->arena);
    pdrt_stash_free(&e->stash);
    pd_data_free(&e->train);
    pd_data_free(&e->test);
}

/* Every pair of ranks that exchange tensors (from every rank's schedule), sorted, and the
 * transport of each; the ranks' hosts and GPUs come from an all-gather. */
void pdrt_cx_links_plan(cx_t *e, const pd_schedule *full, pd_transport_kind forced, int device) {
    pd_rank_info me, *all = calloc((size_t)e->n, sizeof *all);
    PDRT_CHECK(all != NULL);
    memset(&me, 0, sizeof me);
    gethostname(me.host, sizeof me.host - 1);
    struct cudaDeviceProp prop;
    TR_CUDA(cudaGetDeviceProperties(&prop, device));
    memcpy(me.uuid, &prop.uuid, sizeof me.uuid);
    me.device = device;
    MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, MPI_COMM_WORLD);
    int cap = 16, n = 0;
    int *a = malloc((size_t)cap * sizeof(int)), *b = malloc((size_t)cap * sizeof(int));
    PDRT_CHECK(a && b);
    for (int r = 0; r < full->n_ranks; r++)
        for (int i = 0; i < full->ranks[r].n; i++) {
            const pd_action *x = &full->ranks[r].a[i];
            if (x->kind != PD_A_SEND_ACT && x->kind != PD_A_SEND_GRAD) continue;
            int lo = r < x->peer ? r : x->peer, hi = r < x->peer ? x->peer : r, seen = 0;
            for (int q = 0; q < n && !seen; q++) seen = a[q] == lo && b[q] == hi;
            if (seen) continue;
            if (n == cap) {
                cap *= 2;
                a = realloc(a, (size_t)cap * sizeof(int));
                b = realloc(b, (size_t)cap * sizeof(int));
                PDRT_CHECK(a && b);
            }
            int q = n++;
            while (q > 0 && (a[q - 1] > lo || (a[q - 1] == lo && b[q - 1] > hi))) {
                a[q] = a[q - 1];
                b[q] = b[q - 1];
                q--;
            }
            a[q] = lo;
            b[q] = hi;
        }
    e->n_links = n;
    e->la = a;
    e->lb = b;
    e->lk = calloc((size_t)(n ? n : 1), sizeof *e->lk);
    e->links = calloc((size_t)(n ? n : 1), sizeof *e->links);
    PDRT_CHECK(e->lk && e->links);
    for (int i = 0; i < n; i++) {
        e->lk[i] = pd_transport_choose(forced, &all[a[i]], &all[b[i]]);
        if (a[i] == e->rank || b[i] == e->rank)
            printf("stage %d rank %d: link to rank %d: %s\n", e->st->index, e->rank,
                   a[i] == e->rank ? b[i] : a[i],
                   e->lk[i] == PD_TR_IPC ? "cuda-ipc" : e->lk[i] == PD_TR_NCCL ? "nccl" : "host");
    }
    /* replicas all-reduce with NCCL when every replica has its own GPU */
    int distinct = 1;
    for (int q = 0; q < e->R && distinct; q++)
        for (int r = 0; r < q && distinct; r++) {
            const pd_rank_info *x = &all[e->first_rank[e->st->index] + q], *y = &all[e->first_rank[e->st->index] + r];
            distinct = strcmp(x->host, y->host) || memcmp(x->uuid, y->uuid, sizeof x->uuid);
        }
    if (e->R > 1 && distinct && forced != PD_TR_HOST) e->nccl_stage = (void *)1; /* created later */
    free(all);
    fflush(stdout);
}
