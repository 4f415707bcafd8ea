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

/* The schedules this executor runs (interleaved: through pdrt_cuda_main_chunks). */
static int runs_here(const char *schedule) {
    static const char *const ok[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw", "interleaved"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(schedule, ok[i])) return 1;
    return 0;
}

/* Where each buffer starts in a chunk's part of the arena. */
enum { O_W, O_ACC, O_OPT, O_BUF, O_DACTS, O_LOGITS, O_LAB, O_ACTS, O_IN, O_DOUT, O_AS, O_GS,
       O_BTMP, O_ROUT, O_COUNT };

/* A chunk's (or the one stage's) part of the arena: where each buffer starts, and the floats
 * of one parameter blob, activation set, input and output pack and optimizer state. */
typedef struct {
    size_t at[O_COUNT];
    size_t np, nacts, nin, nout, nos;
    int n_dacts; /* layer-gradient sets: D under a split backward (B to W), else 1 */
} cx_layout;

/* The refusals, the counts (D unless the caller set it, weight versions, activation buffers,
 * send slots) and e's layout; returns the bytes it takes. */
static size_t layout(cx_t *e, const pd_schedule *full, cx_layout *L) {
    const pdrt_stage *st = e->st;
    if (!runs_here(full->name))
        PDRT_FAIL("the %s schedule runs on the CPU executor only: the CUDA executor runs 1f1b, "
                  "flush, gpipe, zb-h1, zb-h2, 2bw and interleaved", full->name);
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
    if (e->D <= 0) e->D = pdrt_in_flight(&full->ranks[e->rank]);
    e->nv = pdrt_rules_versions(&e->ru, st, e->D);
    e->n_acts_bufs = pdrt_rules_act_buffers(&e->ru, e->D);
    e->S = full->send_slots > 0 ? full->send_slots : 1;
    int chunks = e->chunks > 1 ? e->chunks : 1;
    if (2 * e->S * chunks > PD_LINK_SLOTS)
        PDRT_FAIL("the schedule needs %d send slots%s; the CUDA transports keep %d", 2 * e->S * chunks,
                  chunks > 1 ? " over the rank's chunks" : "", PD_LINK_SLOTS);
    L->n_dacts = e->ru.split ? e->D : 1; /* B to W: each minibatch in flight keeps its own */
    size_t f = sizeof(float), np = L->np = (size_t)(st->n_params ? st->n_params : 1);
    size_t nacts = L->nacts = (size_t)(st->n_acts ? st->n_acts : 1);
    size_t nin = L->nin = (size_t)(st->in_floats + e->NL);
    size_t nout = L->nout = (size_t)(st->out_floats + e->NL);
    size_t nos = L->nos = pd_optim_state_floats(&e->opt, (size_t)st->n_params);
    size_t nbuf = (size_t)(st->n_buffers + 1), *o = L->at;
    carve_t c = {0};
    o[O_W] = carve(&c, (size_t)e->nv * np * f), o[O_ACC] = carve(&c, np * f);
    o[O_OPT] = carve(&c, (nos ? nos : 1) * f), o[O_BUF] = carve(&c, nbuf * f);
    o[O_DACTS] = carve(&c, (size_t)L->n_dacts * nacts * f);
    o[O_LOGITS] = carve(&c, (size_t)(st->out_floats + 1) * f);
    o[O_LAB] = carve(&c, (size_t)e->NL * sizeof(int));
    o[O_ACTS] = carve(&c, (size_t)e->n_acts_bufs * nacts * f);
    o[O_IN] = carve(&c, (size_t)e->D * nin * f);
    o[O_DOUT] = carve(&c, (size_t)e->D * (size_t)(st->out_floats + 1) * f);
    o[O_AS] = carve(&c, (size_t)e->S * nout * f);
    o[O_GS] = carve(&c, (size_t)e->S * (size_t)(st->in_floats + 1) * f);
    o[O_BTMP] = e->ru.recompute ? carve(&c, nbuf * f) : 0;
    o[O_ROUT] = e->ru.recompute ? carve(&c, (size_t)(st->out_floats + 1) * f) : 0;
    return c.off;
}

/* e's buffers at arena + L->at[...] (arena: e's part, e->arena_bytes long, zeroed), the host
 * buffers and the stash's bookkeeping; the plan printed. */
static void bind(cx_t *e, char *arena, const cx_layout *L) {
    const pdrt_stage *st = e->st;
    e->arena = arena;
    int n_dacts = L->n_dacts;
    pdrt_stash_init(&e->stash, e->nv, 1, e->D);
    size_t f = sizeof(float), np = L->np, nacts = L->nacts, nin = L->nin, nout = L->nout;
    size_t nos = L->nos;
    const size_t *o = L->at;
    e->wblob = (float *)(arena + o[O_W]);
    e->acc = (float *)(arena + o[O_ACC]);
    e->opt_state = (float *)(arena + o[O_OPT]);
    e->buffers = (float *)(arena + o[O_BUF]);
    e->logits = (float *)(arena + o[O_LOGITS]);
    e->labels_dev = (int *)(arena + o[O_LAB]);
    if (e->ru.recompute) {
        e->buffers_tmp = (float *)(arena + o[O_BTMP]);
        e->recompute_out = (float *)(arena + o[O_ROUT]);
    }
    e->acts = calloc((size_t)e->D, sizeof(float *));
    e->in = calloc((size_t)e->D, sizeof(float *));
    e->dout = calloc((size_t)e->D, sizeof(float *));
    e->dacts_of = calloc((size_t)n_dacts, sizeof(float *));
    e->act_send = calloc((size_t)e->S, sizeof(float *));
    e->grad_send = calloc((size_t)e->S, sizeof(float *));
    PDRT_CHECK(e->acts && e->in && e->dout && e->dacts_of && e->act_send && e->grad_send);
    for (int i = 0; i < n_dacts; i++) e->dacts_of[i] = (float *)(arena + o[O_DACTS]) + (size_t)i * nacts;
    e->dacts = e->dacts_of[0];
    for (int i = 0; i < e->D; i++) { /* minibatch l's buffers: index l % D (acts: % n_acts_bufs) */
        e->acts[i] = (float *)(arena + o[O_ACTS]) + (size_t)(i % e->n_acts_bufs) * nacts;
        e->in[i] = (float *)(arena + o[O_IN]) + (size_t)i * nin;
        e->dout[i] = (float *)(arena + o[O_DOUT]) + (size_t)i * (size_t)(st->out_floats + 1);
    }
    for (int i = 0; i < e->S; i++) {
        e->act_send[i] = (float *)(arena + o[O_AS]) + (size_t)i * nout;
        e->grad_send[i] = (float *)(arena + o[O_GS]) + (size_t)i * (size_t)(st->in_floats + 1);
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
           e->arena_bytes * mib, e->nv, np * f * mib, np * f * mib, nos * f * mib, e->n_acts_bufs,
           nacts * f * mib, e->ru.recompute ? " (recomputed)" : "", n_dacts, nacts * f * mib, e->D,
           nin * f * mib, e->S, nout * f * mib, (double)(st->in_floats + 1) * f * mib);
    fflush(stdout);
}

void pdrt_cx_alloc(cx_t *e, const pd_schedule *full) {
    pdrt_cx_alloc_chunks(e, 1, full);
}

void pdrt_cx_alloc_chunks(cx_t *e, int v, const pd_schedule *full) {
    cx_layout *L = calloc((size_t)v, sizeof *L);
    size_t total = 0;
    PDRT_CHECK(L != NULL);
    for (int c = 0; c < v; c++) {
        e[c].arena_bytes = layout(&e[c], full, &L[c]);
        total += e[c].arena_bytes;
    }
    char *arena = pd_cuda_alloc(total);
    if (!arena) PDRT_FAIL("cannot allocate the %.1f MiB device arena", total / 1048576.0);
    pd_cuda_zero(e[0].ctx, arena, total);
    for (size_t c = 0, at = 0; c < (size_t)v; at += e[c].arena_bytes, c++) {
        e[c].shares = c > 0; /* chunk 0 frees the arena */
        bind(&e[c], arena + at, &L[c]);
    }
    free(L);
}

void pdrt_cx_free(cx_t *e) {
    free(e->acts); free(e->in); free(e->dout); free(e->dacts_of); free(e->act_send); free(e->grad_send);
    free(e->in_host); free(e->labels_host); free(e->host_acc); free(e->host_gather);
    if (!e->shares) { /* interleaved: chunk 0's, freed once */
        free(e->first_rank); free(e->la); free(e->lb); free(e->lk); free(e->links);
        pd_cuda_free(e->arena);
    }
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
