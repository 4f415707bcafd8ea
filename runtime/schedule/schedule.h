/* schedule.h: the schedule IR (per rank, an ordered list of actions), its generators and the
 * deadlock checker. Compiled into both pdplan (which writes GENDIR/schedule and checks it at
 * generation time) and libpdrt (whose executor runs it), so there is one generator.
 *
 * Communication semantics, which the checker proves and the executor implements:
 *  - SEND_* posts a nonblocking send (MPI_Isend). It completes only when the peer has posted the
 *    matching RECV (no buffering is assumed). A rank keeps at most `send_slots` uncompleted sends
 *    per kind (activation, gradient); posting one more first waits for the oldest of that kind,
 *    since its buffer is about to be reused.
 *  - RECV_* blocks until the matching send has been posted (the data has arrived).
 *  - Messages are matched by (source, kind, stage, minibatch), so two messages never overtake
 *    each other; a message's stage is the one that receives it (interleaved: a rank holds
 *    several stages, its chunks, and one minibatch crosses the same pair of ranks once per
 *    chunk).
 *  - At the end of the schedule a rank waits for all its sends.
 * Minibatch indices are global within the schedule (0 .. steps-1).
 */
#ifndef PD_SCHEDULE_H
#define PD_SCHEDULE_H

#include <stdio.h>

typedef enum {
    PD_A_FORWARD = 0,   /* forward of minibatch mb (with the weights version of this mb) */
    PD_A_BACKWARD,      /* backward of mb, with the version its forward used */
    PD_A_SEND_ACT,      /* activations (and labels) of mb to rank peer */
    PD_A_RECV_ACT,      /* activations of mb from rank peer */
    PD_A_SEND_GRAD,     /* gradient of mb's stage input to rank peer */
    PD_A_RECV_GRAD,     /* gradient of mb's stage output from rank peer */
    PD_A_STEP,          /* optimizer step with mb's gradient, on the newest version */
    PD_A_ALLREDUCE,     /* sum of the accumulated gradients over a stage's replicas, in rank order
                           (mb: the update's index; a collective of every replica of the stage) */
    PD_A_FLUSH,         /* wait until every send has completed (synchronous schedules) */
    PD_A_BACKWARD_INPUT,  /* zb-h1, zb-h2: the input-gradient part of mb's backward (B): what
                             the previous stage waits for; the weight gradients wait */
    PD_A_BACKWARD_WEIGHT, /* zb-h1, zb-h2: the weight-gradient part of mb's backward (W),
                             after its B; mb leaves the stage's in-flight set here */
    PD_A_COUNT
} pd_action_kind;

typedef struct {
    int kind;  /* pd_action_kind */
    int mb;    /* minibatch, -1 when none */
    int peer;  /* rank, -1 when none */
    int stage; /* the stage (chunk) it acts on: the rank's own, except under interleaved */
} pd_action;

typedef struct {
    int rank, stage;   /* stage: the rank's (interleaved: its first chunk's, stage == rank) */
    int n, cap;
    pd_action *a;
} pd_rank_schedule;

typedef struct {
    char name[16];     /* "1f1b" */
    int n_ranks;
    int n_stages;
    int steps;
    int send_slots;    /* outstanding sends per kind a rank may hold (the executor's ring size) */
    int chunks;        /* stages per rank: 1, or interleaved's v (rank r holds r, r+p, ...) */
    pd_rank_schedule *ranks;
} pd_schedule;

const char *pd_action_name(int kind); /* "forward", "send_act", ... */

/* PipeDream's 1F1B on a straight pipeline of n_stages (rank s runs stage s): stage s runs
 * warmup[s] forwards (fewer when steps is smaller), then alternates one forward and one backward
 * plus optimizer step, then drains. warmup may be NULL: PipeDream's n_stages - 1 - s.
 * send_slots is set to max(warmup) + 1. Returns NULL on out-of-memory or bad arguments. */
pd_schedule *pd_schedule_1f1b(int n_stages, const int *warmup, int steps);

/* The general generator (pd_schedule_1f1b is its straight 1f1b case). Stage s has replicas[s]
 * ranks, numbered contiguously in stage order (stage 0's replicas first), or ranks[s][j] where
 * given. Minibatch m (0 .. steps-1) runs on replica m mod replicas[s] of every stage s, and its
 * backward on the replica that ran its forward.
 *  - "1f1b": each replica runs 1F1B over its own minibatches with warm-up warmup[s]; after its
 *    i-th backward it joins update i: ALLREDUCE i (when replicated), then STEP. Update i of a
 *    stage with r replicas sums minibatches i*r .. i*r+r-1; a replica without a minibatch in the
 *    last, partial update still joins it (with a zero gradient), so any step count works.
 *  - "flush" (PipeDream-Flush): minibatches are grouped in batches of `microbatches`
 *    (the last one may be shorter); within a batch each replica runs 1F1B over its minibatches
 *    without stepping, then ALLREDUCE b (when replicated), STEP, FLUSH: one update per batch.
 *  - "gpipe": the same batches, but each replica runs all its forwards, then all its backwards
 *    (in minibatch order), then ALLREDUCE, STEP, FLUSH.
 * A STEP's mb is the last minibatch of its update. send_slots: max warm-up + 1 (1f1b, flush),
 * microbatches + 1 (gpipe). Returns NULL on a bad name or argument, or out of memory. */
/*  - "zb-h1", "zb-h2" (Zero Bubble, Qi et al., ICLR 2024): the same batches and one update per
 *    batch as flush, but each backward is split into backward_input (B, sent upstream at once)
 *    and backward_weight (W, which nobody waits for, deferred to fill idle time). zb-h1: each
 *    replica runs warm-up + 1 forwards, then d times (B, F) with the W deferred, then (B, W, F)
 *    while forwards remain, then (B, W), then the d deferred W, with d = (the largest warm-up)
 *    - (its warm-up): every rank keeps at most 1F1B's peak in flight (stage 0's), the same
 *    activation memory, and with F = B = W the bubble is a third of flush's. zb-h2: the order a
 *    greedy list scheduler picks with unit costs (F = B = W), every rank at once: B first when
 *    its gradient is there, else the next F while fewer than 2 (largest warm-up) + 1
 *    minibatches are in flight (forward to W), else the oldest deferred W; about twice the
 *    activation memory, and no bubble in the steady state. W runs in minibatch order on every
 *    rank. send_slots: the in-flight limit + 1. (docs/runtime.md draws both.)
 *  - "2bw" (PipeDream-2BW): each replica runs 1F1B over its minibatches as under 1f1b, without
 *    flushes, but joins update u only after its last backward of batch u (minibatches u*M ..
 *    u*M+M-1): one update per batch of `microbatches`, the weight version of batch b being the
 *    one after update b-2 (the runtime's business; two versions suffice when each replica has at
 *    least its warm-up's count of minibatches per batch). send_slots: max warm-up + 1. */
typedef struct {
    const char *name;          /* "1f1b" | "flush" | "gpipe" | "zb-h1" | "zb-h2" | "2bw" */
    int n_stages;
    const int *replicas;       /* n_stages entries; NULL: one each */
    const int *const *ranks;   /* ranks[s][j]: replica j of stage s; NULL: contiguous */
    const int *warmup;         /* n_stages entries; NULL: PipeDream's (ranks after s) / r_s */
    int steps;
    int microbatches;          /* flush, gpipe: minibatches per batch; <= 0: the default */
} pd_schedule_spec;
pd_schedule *pd_schedule_build(const pd_schedule_spec *sp);

/* Interleaved 1F1B (Megatron-LM, Narayanan et al., SC'21) on a straight pipeline of p ranks and
 * p * v stages, rank r holding stages r, r + p, ..., r + (v - 1) p (its chunks). Minibatches are
 * grouped in batches of `microbatches` (M, a multiple of p); within a batch the chunk-forwards
 * run in groups of p minibatches per chunk (minibatches 0..p-1 on chunk 0, then on chunk 1, ...,
 * then the next p), the chunk-backwards in the same groups with the chunks in reverse order.
 * Rank r runs min(vM, (p - r - 1) 2 + (v - 1) p) chunk-forwards of warm-up (all vM when M == p),
 * then alternates one forward and one backward (1F1B across chunks), then drains; then STEP and
 * FLUSH: one update per batch (every chunk's STEP, in stage order). A last, shorter batch (the
 * end of an epoch) keeps the groups of p; when its last group is shorter than p, its whole
 * groups run in this order and then the short group forwards first (every link still receives
 * in order), one update all the same. send_slots: the largest
 * warm-up + 1. Returns NULL on bad arguments (p, v < 1, M not a multiple of p) or out of
 * memory. */
pd_schedule *pd_schedule_interleaved(int p, int v, int steps, int microbatches);

/* Megatron's warm-up of rank r of p with v chunks and M minibatches per batch: chunk-forwards
 * before the first chunk-backward. */
int pd_schedule_interleaved_warmup(int p, int v, int r, int M);

/* 1 when name is a schedule pd_schedule_build knows (or "interleaved", which
 * pd_schedule_interleaved builds); 1 when it is synchronous (one update per
 * batch of microbatches, one weight version, sequential SGD's result: flush, gpipe, zb-h1,
 * zb-h2, interleaved); 1 when it splits the backward into backward_input and backward_weight (zb-h1, zb-h2). */
int pd_schedule_known(const char *name);
int pd_schedule_is_sync(const char *name);
int pd_schedule_splits_backward(const char *name);
/* "1f1b, flush, gpipe, zb-h1, zb-h2, 2bw, interleaved": the known names, for messages. */
const char *pd_schedule_names(void);

/* The default minibatches per batch of flush and gpipe: 4 * n_stages rounded up to a multiple
 * of every stage's replica count (so that every replica gets the same share). The one place this
 * is computed: pdplan's simulator and code generator and the runtime all call it. */
int pd_schedule_default_microbatches(int n_stages, const int *replicas);
/* The least common multiple of the replica counts (a count <= 0 counts as 1; replicas NULL: one
 * each), capped at 100000 so that step counts stay sane. */
int pd_schedule_replica_lcm(int n_stages, const int *replicas);
void pd_schedule_free(pd_schedule *s);
/* An empty schedule of n_ranks ranks (rank r on stage r, one chunk each), for the generators.
 * NULL on out of memory. */
pd_schedule *pd_schedule_new(const char *name, int n_ranks, int steps);

/* Appends an action to rank r (used by the generators and by tests that build schedules by
 * hand), acting on the rank's stage; pd_schedule_push_at on stage `stage` (interleaved).
 * Returns 0, or -1 on out-of-memory. */
int pd_schedule_push(pd_schedule *s, int r, int kind, int mb, int peer);
int pd_schedule_push_at(pd_schedule *s, int r, int kind, int mb, int peer, int stage);

/* Simulates all ranks under the semantics above. Returns 0 when every rank runs to its end and
 * every message is matched; otherwise 1, with a one-line explanation in why (naming the ranks
 * and actions where they are stuck, or the unmatched or inconsistent message). */
int pd_schedule_check(const pd_schedule *s, char *why, int why_size);

/* Whether every link delivers in order: for each ordered pair of ranks (a, b), the messages a
 * sends to b, in a's order, are the messages b receives from a, in b's order. Transports that
 * match by order rather than by tag (NCCL's point-to-point on one communicator per direction)
 * need it. Returns 0, or 1 with the first pair and position where the orders differ in why. */
int pd_schedule_check_in_order(const pd_schedule *s, char *why, int why_size);

/* Writes the schedule as text: a header line, then per rank "rank R stage S:" and one action per
 * line ("  forward 3", "  send_act 3 -> 1"); under interleaved the header names the chunks and
 * each action its stage ("  forward 3 @ 5"). Deterministic. */
void pd_schedule_write(FILE *out, const pd_schedule *s);

#endif
