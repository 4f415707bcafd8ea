/* executor_cuda.h: the CUDA executor's state (one stage replica on one MPI rank and one GPU),
 * shared by its files: executor_cuda.c (the schedule's actions, steps and the run),
 * executor_cuda_mem.c (the static device memory plan and the links' plan) and
 * executor_cuda_eval.c (the forward-only pass over the test set). Internal to libpdrt_cuda. */
#ifndef PDRT_EXECUTOR_CUDA_H
#define PDRT_EXECUTOR_CUDA_H

#include <mpi.h>
#include <stdint.h>

#include "executor_cuda_ties.h"
#include "ops_cuda.h"
#include "pdrt_cuda.h"
#include "runtime/rt.h"
#include "runtime/schedule/schedule.h"
#include "runtime/cuda/transport/transport.h"

typedef struct {
    const pdrt_cuda_stage *cst;
    const pdrt_stage *st;
    const pdrt_args *a;
    int rank, n, first, last, B, R, j, out_rank;
    pdrt_rules ru;                  /* vertical sync, 2bw, split backward, recompute (rt_rules.c) */
    int tg, NL;                     /* targets per sample (token streams: T); per minibatch */
    double val_loss;                /* the last evaluation's mean loss per target (nats) */
    int *first_rank;
    MPI_Comm stage_comm;
    pd_cuda_ctx *ctx;
    void *stream;
    int D, S, nv;
    pdrt_stash stash;               /* bookkeeping only: 1 float per version, its slot index */
    char *arena;
    size_t arena_bytes;
    float *wblob, *acc, *opt_state, *buffers, *dacts, *logits;
    float **acts, **in, **dout, **act_send, **grad_send; /* D, D, D, S, S */
    int n_acts_bufs;                /* activation buffers behind acts: D, or 1 under recompute */
    float **dacts_of;               /* zb-h1, zb-h2: D, a minibatch's layer gradients from its
                                       backward_input to its backward_weight (dacts: the first) */
    float *buffers_tmp, *recompute_out; /* recompute: the forward again's running statistics and
                                       output (never the send slot, which may be in flight) */
    int *labels_dev;
    float *in_host, *host_acc, *host_gather;
    int *labels_host;
    int64_t acc_count, updates, epoch_base_updates;
    pd_optim opt;
    pd_data train, test;
    int n_links;
    int *la, *lb;
    pd_transport_kind *lk;
    pdrt_link *links;
    void *nccl_stage;             /* the replicas' NCCL communicator, or NULL */
    pdrt_stage_stats stats;
    pdrt_loss_log lg;           /* the last stage's loss since the last progress line */
    double t0;
    int64_t per_epoch, total;
    pdrt_cuda_ties ties;        /* tied weights' exchange (executor_cuda_ties.c) */
    int chunks;                 /* interleaved: chunks per rank, e0[c] chunk c (0, 1: not) */
    int edge_up, edge_down;     /* interleaved: the edges of the links to the previous and next
                                   stage, which tell the chunks' messages apart (pdrt_chunk_tag) */
    int slot0;                  /* the first of this chunk's link slots (interleaved: 2 S c) */
    int shares;                 /* 1: the arena, links and context are chunk 0's (interleaved) */
    float clip_coef;            /* interleaved: the batch's clipping coefficient (below) */
    void *mirror;               /* interleaved, chunk 0: the host mirror of the chunks for ties and
                                   clipping (executor_cuda_chunks.c), or NULL when neither */
} cx_t;

/* This replica's own running count of minibatch mb (its minibatches are j, j+R, ...). */
static inline int64_t lidx(const cx_t *e, int64_t mb) { return mb / e->R; }
static inline int64_t np_of(const cx_t *e) { return e->st->n_params; }
/* the device weights of a stash pointer (the stash's 1-float slots index the device blobs) */
static inline float *dev_w(cx_t *e, const float *slot) {
    return e->wblob + (size_t)(slot - e->stash.blob) * (size_t)(np_of(e) ? np_of(e) : 1);
}

/* executor_cuda_mem.c: the device arena carved for the full epoch's schedule (and the refusals
 * of what the CUDA executor does not run), printed as a plan; its release. */
void pdrt_cx_alloc(cx_t *e, const pd_schedule *full);
/* Interleaved: the v chunks' plans carved from one arena (chunk 0's; the IPC transport exports
 * one arena per rank), each chunk's D set by the caller. */
void pdrt_cx_alloc_chunks(cx_t *e, int v, const pd_schedule *full);
void pdrt_cx_free(cx_t *e);
/* Every pair of ranks that exchange tensors, and the transport of each (forced, or chosen from
 * the ranks' hosts and GPUs); whether the replicas all-reduce with NCCL. */
void pdrt_cx_links_plan(cx_t *e, const pd_schedule *full, pd_transport_kind forced, int device);
/* executor_cuda_eval.c: the test set's accuracy on every rank; e->val_loss its mean loss.
 * _chunks: an interleaved rank's v chunks, every chunk in stage order, the loss into e[0]. */
double pdrt_cx_evaluate(cx_t *e);
double pdrt_cx_evaluate_chunks(cx_t *e, int v);

/* executor_cuda.c: one schedule, minibatches off .. off + steps - 1 of the epoch (base + mb their
 * global step numbers), on e0, or under interleaved on e0[0 .. chunks), each action on the chunk
 * of its stage. */
void pdrt_cx_run_epoch(cx_t *e0, const pd_schedule *s, int epoch, int64_t base, int64_t off);
/* executor_cuda_chunks.c, interleaved: before chunk 0's step of a batch, the tied weights'
 * gradient sums and the clipping coefficient over every stage (each chunk's clip_coef, its
 * accumulator then the mean); after the last chunk's step, with --check-replicas, the tied copies
 * compared with their owners. Nothing without ties or clipping. */
void pdrt_cx_chunks_before_steps(cx_t *e0, int v);
void pdrt_cx_chunks_ties_check(cx_t *e0, int v);
/* The options both entries share: --help, the CUDA options (stripped from argv), the runtime's;
 * the stage's ABI and what the CUDA backend does not run (refused with a message); the GPU
 * count. Returns -1 to go on, else the exit status. */
int pdrt_cx_parse(int *argc, char **argv, const pdrt_cuda_stage *cst, pdrt_args *a,
                  pd_cuda_precision *prec, pd_transport_kind *forced, int *device, int *ngpu);
/* The GPU of this rank: --device, else its node-local rank modulo the GPUs. */
int pdrt_cx_device(int device, int ngpu, int rank);
/* The largest message of a link (floats), over every rank's stages: the host transport's
 * buffers. Collective. */
int64_t pdrt_cx_most_floats(const cx_t *e, int v);

#endif
