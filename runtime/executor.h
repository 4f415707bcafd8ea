/* executor.h: the CPU executor's state (one stage replica on one MPI rank, or one chunk of an
 * interleaved rank), shared by its files: executor.c (the schedule, forwards, backwards, steps,
 * evaluation, the run), executor_ckpt.c (writing a checkpoint set and resuming from the newest
 * intact one), executor_recompute.c (activation recomputation), executor_ties.c (tied weights
 * between ranks), executor_chunks.c and executor_chunks_step.c (the interleaved ranks' run, and
 * what their chunks do together at a batch's steps). Internal to libpdrt; generated code sees
 * pdrt.h only. */
#ifndef PDRT_EXECUTOR_H
#define PDRT_EXECUTOR_H

#include <mpi.h>
#include <stdint.h>

#include "optim.h"
#include "rt.h"
#include "runtime/transport/transport.h"

typedef struct {
    const pdrt_stage *st;
    const pdrt_args *a;
    int rank, n, first, last, B;
    int tg, NL;                   /* targets per sample (token streams: T), per minibatch B*tg */
    int R, j;                     /* replicas of this stage, and which one this rank is */
    int *first_rank;              /* per stage: its first replica's rank */
    int out_rank;                 /* the last stage's first replica: prints and writes files */
    MPI_Comm stage_comm;          /* this stage's replicas, in rank order */
    float *acc, *gather;          /* accumulated gradient + count (n_params + 1); the root's
                                     gathered blobs (R of them) */
    pdrt_rules ru;                /* vertical sync, 2bw, split backward, recompute (rt_rules.c) */
    int64_t epoch_base_updates;   /* updates done before this epoch */
    int64_t replica_checks;
    int D, S;                     /* minibatches in flight here; send slots per kind */
    int chunks;                   /* interleaved: chunks per rank (each its own ex_t; 0, 1: not) */
    int edge_up, edge_down;       /* interleaved: the links to the previous and next stage, as
                                     numbered in their messages' tags (tag_of in executor.c) */
    float clip_coef;              /* interleaved: the batch's clipping coefficient, computed over
                                     every chunk before the first chunk's step */
    pdrt_stash stash;
    pd_optim opt;
    float *grads, *opt_state, *buffers, *scratch, *dacts, *logits;
    float **acts, **in, **dout;   /* D each */
    float **dacts_of, **grads_of; /* zb-h1, zb-h2: D each, a minibatch's layer and parameter
                                     gradients from its backward_input to its backward_weight */
    float **kept;                 /* selective: D, each minibatch's acts[0, n_acts_kept) */
    int64_t acts_mb;              /* the minibatch whose activations the working buffer holds
                                     (-1: none) */
    int64_t recomputed, backwards;/* backwards that recomputed, of all (B and W count apart) */
    float *buffers_tmp, *recompute_out; /* the recomputation's running statistics and output */
    float **act_send, **grad_send;/* S each: send slot k of activations is the links' slot 2k,
                                     of gradients 2k + 1 */
    pdrt_link *links;             /* per peer rank: its link, opened on first use */
    int *labels;
    pd_data train, test;
    int64_t updates;
    pdrt_stage_stats stats;
    pdrt_laps laps;                 /* per-layer times, for run/profile.yaml */
    /* last stage: loss bookkeeping */
    pdrt_loss_log lg;
    int64_t done_steps;
    double t0;
    int64_t per_epoch, total;
    int64_t skipped;              /* minibatches dropped (non-finite) */
    double val_loss;              /* the last evaluation's mean loss per target (nats) */
    float *buffers_before;        /* --skip-nonfinite: batch-norm statistics before a forward */
    int64_t n_ckpt;               /* checkpoints written, and the seconds they took (write, */
    double ckpt_s;                /* fsyncs, rename and the barrier after) */
    /* test-only fault injection (PDRT_INJECT_NONFINITE): 1 input, 2 gradient; at step, stage */
    int inj_kind, inj_stage;
    int64_t inj_step;
    /* tied weights (executor_ties.c): their own communicator; bitwise checks passed */
    MPI_Comm tie_comm;
    int64_t tie_checks;
} ex_t;

/* executor.c: allocates e's buffers for the schedule of a full epoch, frees them; runs one
 * schedule (an epoch or a segment of one: minibatches off .. off + steps - 1, base + mb their
 * global step numbers) on e0[0], or under interleaved on e0[0 .. chunks), each action on the
 * chunk of its stage. */
void pdrt_ex_alloc(ex_t *e, const pd_schedule *full); /* e->D: at least so many in flight */
/* The MPI tag of kind's message (0 activations, 1 gradients) of minibatch mb over link `edge`
 * (e->edge_up or e->edge_down; the plain pdrt_tag_of outside interleaved); e's link to peer,
 * opened on first use. */
int pdrt_ex_tag(const ex_t *e, int kind, int64_t mb, int edge);
pdrt_link *pdrt_ex_link(ex_t *e, int peer);
void pdrt_ex_free(ex_t *e);
void pdrt_ex_run_epoch(ex_t *e0, const pd_schedule *s, int epoch, int64_t base, int64_t off);
/* Every rank writes its checkpoint file of step `done` (the pipeline drained; interleaved: e is
 * the rank's first chunk, and each chunk writes its stage's file); the older set before *prev is
 * pruned once the set is complete. */
void pdrt_ex_checkpoint(ex_t *e, int64_t done, int epoch, int64_t every, int64_t *prev);
/* --resume: loads the newest intact complete set that fits this run into e (interleaved: every
 * chunk from e on), and returns where it left off (done minibatches, epoch, --checkpoint-every
 * when not given). */
void pdrt_ex_resume(ex_t *e, int64_t *done, int *epoch, int64_t *every);
/* The update's mean gradient in place (its count becomes 1) and, for clipping, its squared norm
 * (a tied copy left out); 0 when every minibatch was dropped. */
double pdrt_ex_clip_prepare(ex_t *e);
/* Test-only fault injection from PDRT_INJECT_NONFINITE (input:STEP, loss:STEP, grad:STEP:STAGE:
 * an Inf in stage 0's input, a NaN logit before the loss, a NaN in that stage's first parameter
 * gradient). */
void pdrt_ex_inject_from_env(ex_t *e);

/* executor_recompute.c: the activation buffers (per minibatch, or the working buffer and the
 * kept parts), their release, and their size in floats; after a forward (selective: the kept
 * part copied out); the activations for mb's backward (recomputed unless the working buffer holds
 * them; again_ms: the time that took); the closing line of a recomputing run. */
void pdrt_ex_recompute_alloc(ex_t *e);
void pdrt_ex_recompute_free(ex_t *e);
int64_t pdrt_ex_activation_floats(const ex_t *e);
void pdrt_ex_after_forward(ex_t *e, int64_t mb, int d);
float *pdrt_ex_acts_for_backward(ex_t *e, int64_t mb, int d, const float *w, int64_t base,
                                 double *again_ms);
void pdrt_ex_recompute_report(const ex_t *e);

/* executor_trace.c: gathers every rank's trace events to out_rank, which writes run/trace.json. */
void pdrt_ex_write_trace(ex_t *e);

/* Tied weights (executor_ties.c): the owner's initial values into the tied layer's copy (after
 * init and --init); the copies' gradients exchanged and summed at the start of every step (after
 * the replicas' all-reduce); with --check-replicas, the copies compared bitwise after it. */
void pdrt_ex_ties_init(ex_t *e);
void pdrt_ex_ties_grads(ex_t *e);
void pdrt_ex_ties_check(ex_t *e);

/* executor_chunks_step.c: an interleaved rank's chunks e0[0 .. v) together. Tied weights (stage
 * s on rank s mod p; two chunks of one rank add in memory): the owners' initial values into the
 * copies; before the batch's first step, every chunk's tied gradients exchanged and summed and,
 * with clipping, the mean gradients' global norm over every stage in stage order (each chunk's
 * clip_coef); with --check-replicas, after the last step, the copies compared bitwise. */
void pdrt_ex_chunks_ties_init(ex_t *e0, int v);
void pdrt_ex_chunks_before_steps(ex_t *e0, int v);
void pdrt_ex_chunks_ties_check(ex_t *e0, int v);

#endif
