/* rt.h: libpdrt's internal pieces shared by the pipeline executors (CPU and CUDA) and the local
 * (--single, --emulate) runner: options, errors, the weight stash, checkpoints, data, weights
 * files, the summary, per-layer laps and the trace. Generated code uses pdrt.h only; tensors move
 * between ranks through runtime/transport/transport.h. */
#ifndef PDRT_RT_H
#define PDRT_RT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mpi.h>

#include "data.h"
#include "runtime/base/base.h"
#include "runtime/schedule/fnv1a.h"
#include "optim.h"
#include "pdrt.h"
#include "runtime/schedule/schedule.h"

/* ---- options (args.c) ---- */
typedef enum { RT_PIPELINE = 0, RT_SINGLE, RT_EMULATE } pdrt_mode;
typedef struct {
    pdrt_mode mode;
    int64_t steps;            /* > 0: train this many minibatches (ignores epochs) */
    int epochs;               /* > 0: overrides the model's */
    double lr;                /* >= 0: overrides the model's */
    uint64_t seed;
    char data[1024];          /* "" = the model's dataset; "synthetic"; or a directory */
    int shuffle;
    double target_accuracy;   /* < 0: none */
    double target_loss;       /* < 0: none; stop once the validation loss is at most this */
    int eval;                 /* evaluate on the test set after each epoch (and at the end) */
    int64_t eval_every;       /* > 0: also every N steps (the pipeline drains there) */
    int64_t eval_batches;     /* > 0: evaluate on the test set's first N minibatches only */
    int log_every;            /* progress line every N steps */
    int64_t synthetic_n;      /* synthetic train samples */
    char init_dir[1024], save_dir[1024], run_dir[1024];
    char logits_path[1024];   /* --save-logits (--single): the first test minibatch's logits */
    char schedule[16];        /* "" = the plan's; else 1f1b | flush | gpipe */
    int microbatches;         /* > 0: overrides the plan's minibatches per batch */
    int check_replicas;       /* after every step, replicas compare their weights bitwise */
    int trace;                /* write run/trace.json (default on) */
    int64_t checkpoint_every; /* > 0: checkpoint (draining the pipeline) every N minibatches */
    char checkpoint_dir[1024];/* "" = no checkpoints; also at epoch ends and at the end */
    int resume;               /* continue from checkpoint_dir's last complete set */
    int skip_nonfinite;       /* drop a minibatch whose loss or gradient is NaN/Inf */
    int recompute;            /* -1: the plan's; 0, 1: --no-recompute, --recompute */
    int64_t warmup, lr_decay_iters; /* < 0: the model's (the learning-rate schedule) */
    double min_lr, clip_grad_norm;  /* < 0: the model's */
    double hang_timeout;      /* seconds a rank may wait without progress (0: no limit) */
} pdrt_args;
/* --hang-timeout's default, seconds: far above any wait of a healthy run of the bundled models
 * (docs/reliability.md). */
#define PDRT_HANG_TIMEOUT_DEFAULT 600

/* Parses argv (argv[0] skipped). Returns 0, 1 after --help, or -1 with a message on stderr. */
int pdrt_args_parse(pdrt_args *a, int argc, char **argv, pdrt_mode default_mode);
/* Prints the help of the stage's options (cuda_only 0) or of the CUDA stage's own (1), from
 * options.def, one "  --name VALUE  help" entry each. */
void pdrt_print_options(FILE *f, int cuda_only);

/* ---- errors, allocation, the clock and MPI waits: runtime/base/base.h ---- */
int64_t pdrt_scratch_floats(const pdrt_stage *st); /* what a stage's scratch must hold */

/* ---- the weight stash, a ring of parameter blobs (stash.c) ---- */
typedef struct {
    int nv;                   /* versions kept */
    int64_t n;                /* floats per version */
    float *blob;              /* nv * n */
    int64_t newest;           /* version number of the newest weights (updates applied) */
    int64_t *slot_version;    /* nv: which version each slot holds (-1 none) */
    int depth;                /* minibatches in flight tracked */
    int64_t *mb_id, *mb_version; /* depth: minibatch -> version its forward used */
} pdrt_stash;
void pdrt_stash_init(pdrt_stash *s, int nv, int64_t n, int depth);
void pdrt_stash_free(pdrt_stash *s);
float *pdrt_stash_newest(pdrt_stash *s);
/* the newest version, recorded as the one minibatch mb's forward uses */
float *pdrt_stash_for_forward(pdrt_stash *s, int64_t mb);
/* the version mb's forward used; fails the run if it is no longer stashed */
float *pdrt_stash_for_backward(pdrt_stash *s, int64_t mb);
/* the same, but mb stays recorded (zb-h1, zb-h2: backward_input, before backward_weight's
 * pdrt_stash_for_backward) */
float *pdrt_stash_for_backward_input(pdrt_stash *s, int64_t mb);
/* the version number mb's forward used */
int64_t pdrt_stash_version_of(const pdrt_stash *s, int64_t mb);
/* version `version` (which must be stashed), recorded as the one mb's forward uses (vertical
 * sync) */
float *pdrt_stash_for_forward_at(pdrt_stash *s, int64_t mb, int64_t version);
/* copies the newest version into the next slot and makes it the newest; returns it for the
 * optimizer to update in place */
float *pdrt_stash_begin_update(pdrt_stash *s);

/* Empties the stash and makes `version` the newest, in slot version % nv; returns it. */
float *pdrt_stash_reset(pdrt_stash *s, int64_t version);

/* ---- the schedule's rules both pipeline executors follow (rt_rules.c) ---- */
typedef struct {
    const char *schedule;     /* pdrt_schedule_name's */
    int vsync, w0;            /* vertical sync (1f1b only), and stage 0's warm-up */
    int two_bw, M;            /* 2bw, and the minibatches per batch */
    int split;                /* zb-h1, zb-h2: each backward in two parts, B then W */
    int recompute;            /* pd_recompute_mode: 0 none, 1 full, 2 selective (the CPU's
                                 executor_recompute.c; the CUDA executor runs full only) */
    int inj_recompute;        /* test-only PDRT_INJECT_RECOMPUTE: 1 skip, 2 batch norm twice */
} pdrt_rules;
/* The rules of the run of stage st (R replicas) under options a; fails the run (PDRT_FAIL) where
 * they cannot hold: 2bw with fewer minibatches per replica in a batch than the stage's warm-up,
 * vertical sync on a replicated pipeline. (Each executor refuses what only it cannot run.) */
void pdrt_rules_init(pdrt_rules *r, const pdrt_stage *st, const pdrt_args *a, int R);
/* The weight versions the stash keeps with in_flight minibatches in flight: 1f1b's (at least
 * the plan's), 2bw's two, the synchronous schedules' one; back to stage 0's under vertical sync. */
int pdrt_rules_versions(const pdrt_rules *r, const pdrt_stage *st, int in_flight);
/* The weights the forward of minibatch mb (this replica's l-th) uses, recorded in the stash for
 * its backward: the newest; under vertical sync the version stage 0 used; under 2bw batch b's,
 * the one after update b - 2. epoch_base_updates: the updates before this schedule began. */
float *pdrt_rules_forward_weights(const pdrt_rules *r, pdrt_stash *s, int64_t l, int64_t mb,
                                  int64_t epoch_base_updates);
/* The activation buffers a rank keeps: one per minibatch in flight, or one under recompute
 * (minibatch l's is l % that; each keeps its stage input instead). */
int pdrt_rules_act_buffers(const pdrt_rules *r, int in_flight);

/* ---- checkpoints (checkpoint.c): DIR/step-<N>/rank-<R>.ckpt ---- */
typedef struct {
    uint64_t fingerprint;     /* pdrt_stage_fingerprint of the writer */
    uint64_t seed;
    int stage, replica, rank, n_ranks;
    int64_t done;             /* minibatches trained (the step the set is named by) */
    int64_t epoch;            /* epochs begun before `done`'s epoch (the data's shuffle key) */
    int64_t updates;          /* optimizer steps taken (the weights' version, Adam's t) */
    int64_t every;            /* the --checkpoint-every that wrote it */
    double loss_sum, last_loss;
    int64_t loss_n, skipped;
    /* the run's settings a resume compares (per_epoch 0: not recorded, a file from before they
     * were): the learning rate, shuffling, and minibatches per epoch (the data set's size) */
    double lr;
    int shuffle;
    int64_t per_epoch;
} pdrt_ckpt_meta;
/* A hash of what a checkpoint's blobs mean: the stage's sizes, tensor table, warm-ups,
 * replicas, the schedule run and its minibatches per batch. */
uint64_t pdrt_stage_fingerprint(const pdrt_stage *st, const char *schedule, int microbatches);
void pdrt_ckpt_path(char *out, size_t cap, const char *dir, int64_t step, int rank);
/* Writes DIR/step-<m->done>/rank-<m->rank>.ckpt atomically (tmp, fsync, rename, fsync dir). */
void pdrt_ckpt_write(const char *dir, const pdrt_ckpt_meta *m, const char *plan_hash,
                   const float *params, int64_t n_params, const float *opt, int64_t n_opt,
                   const float *buffers, int64_t n_buffers);
/* Reads and validates one file (magic, size, checksum, plan hash, blob sizes). Returns 0, or -1
 * with the reason in why. */
int pdrt_ckpt_read(pdrt_ckpt_meta *m, float *params, int64_t n_params, float *opt, int64_t n_opt,
                 float *buffers, int64_t n_buffers, const char *path, const char *plan_hash,
                 char *why, size_t wcap);
/* Whether checkpoint m (read for step want->done) fits this run, whose own meta is want, of
 * `total` steps: fingerprint, rank, step, seed, steps and the data set's size. 0, or -1 with the
 * reason in why. */
int pdrt_ckpt_fits(const pdrt_ckpt_meta *m, const pdrt_ckpt_meta *want, int64_t total, char *why,
                   size_t wcap);
/* Warns (pdrt_warn) of what this run (now; now->every 0: the checkpoint's) changes against the
 * checkpoint's run m: the learning rate, shuffling, --checkpoint-every. Nothing for files that
 * did not record them. */
void pdrt_ckpt_warn_changes(const pdrt_ckpt_meta *m, const pdrt_ckpt_meta *now);
/* The largest step below `below` whose set holds a file for every one of n_ranks ranks; -1 if
 * none. */
int64_t pdrt_ckpt_latest(const char *dir, int n_ranks, int64_t below);
/* Removes this rank's files of steps before keep_from, its temporary files of any step (a write
 * that was interrupted), and folders left empty. */
void pdrt_ckpt_prune(const char *dir, int rank, int64_t keep_from);

/* ---- data (rt_data.c) ---- */
/* Opens the train and test splits the options ask for, shaped for the stage (token streams: the
 * train and validation files, checked against the model's context and vocabulary). */
void pdrt_data_open(pd_data *train, pd_data *test, const pdrt_args *a, const pdrt_stage *st);
/* Token streams: when dataset names one (shakespeare_char, tokens:FORMAT:TRAIN:VAL) fills the
 * train and validation paths and the format and returns 1; data, a folder (the --data option),
 * replaces the folder: data/train.bin, data/val.bin. Returns 0 for other datasets, -1 for a bad
 * tokens: spelling. */
int pdrt_token_spec(char *train, char *val, size_t cap, pd_token_format *fmt, const char *dataset,
                    const char *data);
/* Targets per sample of the run's data: T (the model input [T]) for a token stream, 1 (a label)
 * otherwise. Every rank computes it from its options, so all agree without a message. Labels
 * travel as B * targets floats after the activations (docs/runtime.md). */
int pdrt_targets(const pdrt_args *a, const pdrt_stage *st);
/* Fails unless the last stage's output pack is batch x targets x classes logits. */
void pdrt_check_logits(const pdrt_stage *last, int targets);

/* ---- sampling text (generate.c) ---- */
/* `--generate N` of the local binary: prints N characters sampled from the model (the stages'
 * forwards in one process) with the --init weights; returns the exit status. */
int pdrt_generate(int argc, char **argv, const pdrt_stage *const *stages, int n);

/* ---- weights files, DIR/<layer>.<param>.f32 (weights.c) ---- */
void pdrt_weights_save(const char *dir, const pdrt_stage *st, const float *params,
                     const float *buffers);
void pdrt_weights_load(const char *dir, const pdrt_stage *st, float *params, float *buffers);

/* ---- optimizer configuration from the stage and options (rt_data.c) ---- */
/* AdamW's spans come from the stage's tensor table and decay mask (malloc'd: pdrt_optim_free) */
void pdrt_optim_from(pd_optim *out, const pdrt_stage *st, const pdrt_args *a);
void pdrt_optim_free(pd_optim *o);
/* Fails the run when clipping is asked under 1f1b with stages of different replica counts (their
 * updates do not pair up, so no update has one global norm). */
void pdrt_clip_check(const pd_optim *o, const pdrt_stage *st, const pdrt_args *a);

/* ---- tied weights (ties.c; the exchange between ranks: executor_ties.c) ---- */
/* 1 when tensor (an index into st->tensors) is a tied layer's copy: --save does not write it,
 * --init does not read it (both go by the owner's name) */
int pdrt_tie_copy(const pdrt_stage *st, int tensor);
/* owner[i] = tied[i] = owner[i] + tied[i]: the one sum every mode computes */
void pdrt_tie_sum(float *owner, float *tied, int64_t n);
/* Ties within one stage: sums the two copies' gradients in g (pdrt_tie_sum); and, at the start,
 * copies the owner's values into the tied layer's copy in params. */
void pdrt_ties_local(const pdrt_stage *st, float *g);
void pdrt_ties_init_local(const pdrt_stage *st, float *params);
/* The squared norm of the stage's gradient g for clipping, a tied weight counted once (on its
 * owner's stage); pd_sq_norm of the blob when the stage has no ties. */
double pdrt_ties_sq_norm(const pdrt_stage *st, const float *g);
/* Fails the run when, under 1f1b, a tied weight's two stages have different replica counts. */
void pdrt_ties_check(const pdrt_stage *st, const pdrt_args *a);

/* ---- summary.json (summary.c) ---- */
typedef struct {
    double fwd_ms, bwd_ms, step_ms, wait_ms; /* totals */
    int64_t steps;
    double predicted_ms, predicted_compute_ms;
    int64_t skipped;          /* minibatches dropped for a non-finite loss or gradient */
    double slowest_compute_ms; /* per minibatch, the replica with the most compute (a replicated
                                  stage waits for it at every all-reduce); 0: the stage's own */
} pdrt_stage_stats;
/* Gathers every rank's stats (this rank's in mine, with its stage's predicted times and its
 * skipped minibatches) to out_rank over MPI_COMM_WORLD. There it returns one entry per stage
 * (free it): the stage's first replica's times, its slowest replica's compute per minibatch and
 * the minibatches all its replicas skipped; elsewhere NULL. first_rank[k] is stage k's first
 * rank, first_rank[n_stages] the number of ranks. Collective. */
pdrt_stage_stats *pdrt_stage_stats_gather(const pdrt_stage_stats *mine, const int *first_rank,
                                      int n_stages, int out_rank);
/* An interleaved rank's row: adds chunk st's measured times (s) and predicted ones to sum. */
void pdrt_stage_stats_add_chunk(pdrt_stage_stats *sum, const pdrt_stage_stats *s,
                                const pdrt_stage *st);
typedef struct {
    const char *model, *mode, *schedule;
    int n_stages, batch;
    int64_t steps;
    int epochs_done;
    double final_loss, test_accuracy; /* test_accuracy < 0: not evaluated */
    double samples_per_s, wall_s, train_s;
    double target_accuracy, time_to_target_s; /* < 0: not asked / not reached */
    const pdrt_stage_stats *stages;
    int64_t resumed_from;     /* > 0: the checkpoint step this run resumed from */
    int skip_nonfinite;       /* report skipped minibatches */
    int64_t checkpoints;      /* checkpoints written, and their seconds (the writing rank's) */
    double checkpoint_s;
    int has_val_loss;         /* evaluated: val_loss is the test set's mean loss per target */
    double val_loss;          /* (nats per token; a classifier's sample is one token) */
    int targets;              /* targets per sample (token streams: the context; 0 or 1: one) */
    double target_loss;       /* < 0: not asked (--target-loss) */
    int64_t target_step;      /* the step at which the target was first met (time_to_target_s) */
    const struct pdrt_curves *curves; /* NULL: none; else its evaluations are listed */
} pdrt_summary;
/* Writes dir/summary.json atomically (a temporary file renamed into place); creates dir. */
void pdrt_summary_write(const char *dir, const pdrt_summary *s);
/* Prints the per-stage predicted against measured table and the final figures. */
void pdrt_summary_print(const pdrt_summary *s);

int pdrt_mkdir_p(const char *dir);

/* ---- files written atomically (rt_util.c) ----
 * pdrt_out_open opens a temporary file beside path (".NAME.PID.tmp"; creates the folder);
 * pdrt_out_commit flushes, closes and renames it into place. Any error on the way (a full disk,
 * a closed folder) removes the temporary file and fails the run naming path and the reason, so
 * a file under its final name is always whole and nothing is left behind. */
typedef struct {
    FILE *f;
    char path[4200], tmp[4400];
} pdrt_out;
FILE *pdrt_out_open(pdrt_out *o, const char *path);
void pdrt_out_commit(pdrt_out *o);

/* ---- per-layer times inside training, run/profile.yaml (laps.c) ---- */
typedef struct {
    int n;                    /* the stage's layers */
    double *ms[2];            /* forward, backward: per layer, summed over the counted calls */
    double *cur;              /* the open call's laps */
    double total[2];          /* the executor's whole forward / backward, summed likewise */
    double data_ms;           /* stage 0's minibatch loading in the counted forwards */
    int64_t calls[2], counted[2], skip; /* the first `skip` calls of each direction: warm-up */
    int dir;
    double last;
} pdrt_laps;
void pdrt_laps_init(pdrt_laps *l, int n_layers, int64_t skip);
void pdrt_laps_free(pdrt_laps *l);
/* Opens a forward (dir 0) or backward (1): the stage's marks now time into l. */
void pdrt_laps_begin(pdrt_laps *l, int dir);
/* Closes it: total_ms is the executor's whole call (what stats count as compute), data_ms the
 * minibatch loading in it. */
void pdrt_laps_end(pdrt_laps *l, double total_ms, double data_ms);
/* The stage's profile lines (malloc'd; "" without counted calls), the work outside the layers
 * and step_ms_per_mb of optimizer attributed to them as the profile's header says. */
char *pdrt_laps_profile_lines(const pdrt_laps *l, const pdrt_stage *st, double step_ms_per_mb);
/* Gathers the lines of the ranks that contribute (each stage's first replica) to out_rank,
 * which writes dir/profile.yaml when they cover the model (else removes a stale one); `how`
 * describes the run in its header. l, st and step_ms_per_mb hold a rank's v stages: 1, or an
 * interleaved rank's chunks (rank r's chunk c is stage c p + r: gathered chunk by chunk, the
 * lines come in stage order). Collective on MPI_COMM_WORLD. */
void pdrt_laps_write_profile(const pdrt_laps *l, const pdrt_stage *const *st,
                             const double *step_ms_per_mb, int v, int contribute, int out_rank,
                             const char *dir, const char *how);

/* ---- trace.json, Chrome/Perfetto trace events (trace.c) ---- */
/* Starts recording (clears earlier events); times are seconds of pdrt_now() from origin. */
void pdrt_trace_start(int enabled, double origin);
/* One complete event "kind mb[ -> peer| <- peer]" on thread tid (0 compute, 1 communication). */
void pdrt_trace_add(int kind, int mb, int peer, int tid, double t0, double t1);
/* This process's events as JSON objects separated by ",\n" with pid; malloc'd, *len set. */
char *pdrt_trace_events_json(int pid, size_t *len);
/* Writes dir/trace.json: the process-name metadata (names[i] for pid i) and the events text. */
void pdrt_trace_write(const char *dir, const char *events, int n_pids, const char *const *names);
void pdrt_trace_free(void);
/* Gathers every rank's events to root, which writes run_dir/trace.json with each rank named by
 * its stage and replica (first_rank: stage k's first rank), or under interleaved (chunks > 1)
 * by its chunks (executor_trace.c). Collective over MPI_COMM_WORLD. */
void pdrt_trace_gather_write(const char *run_dir, int rank, int n_ranks, int root,
                             const int *first_rank, int n_stages, int chunks);

/* The schedule a stage runs for `steps` minibatches, from its descriptor and the options. */
pd_schedule *pdrt_schedule_for(const pdrt_stage *st, const pdrt_args *a, int steps);
const char *pdrt_schedule_name(const pdrt_stage *st, const pdrt_args *a);
int pdrt_microbatches(const pdrt_stage *st, const pdrt_args *a);
int pdrt_replicas(const pdrt_stage *st, int stage);
/* An interleaved rank's checks, shared by the CPU and CUDA entries (fail the run with a message):
 * 2 to 64 chunks, stages[c] is stage c p + rank of p v, the schedule (--schedule) interleaved. */
void pdrt_chunks_check(const pdrt_args *a, const pdrt_stage *const *stages, int v, int rank, int p);
/* M microbatches per batch on p ranks: a multiple of p, or the run fails saying so. */
void pdrt_chunks_check_microbatches(int M, int p);
/* The most minibatches of an interleaved rank's chunk in flight at once, from the receive of
 * a minibatch's input to its backward, over every batch size 1 .. M (a segment's shorter last
 * batch, an epoch's end or --eval-every, may run all its forwards first): the in-flight buffers
 * the chunk keeps (its minibatches run in order, so minibatch mb's are mb mod that). */
int pdrt_chunks_in_flight(int p, int v, int rank, int M, int chunk);

/* ---- learning curves, run/curves.svg (curves.c) ---- */
typedef struct {
    int64_t step;             /* minibatches trained */
    double t;                 /* seconds since training began (evaluations included) */
    double v, v2;             /* training loss; or an evaluation's accuracy and validation loss */
} pdrt_point;
typedef struct pdrt_curves {
    pdrt_point *loss, *eval;
    int n_loss, cap_loss, n_eval, cap_eval;
    int eval_is_loss;         /* draw the evaluations' validation loss (token models), not accuracy */
} pdrt_curves;
/* Both accept c NULL (a rank that does not report): nothing is recorded. */
void pdrt_curves_add_loss(pdrt_curves *c, int64_t step, double t, double loss);
void pdrt_curves_add_eval(pdrt_curves *c, int64_t step, double t, double acc, double val_loss);
/* Writes dir/curves.svg atomically: training loss and evaluations against steps and seconds. */
void pdrt_curves_write_svg(const char *dir, const pdrt_curves *c, const char *title);
void pdrt_curves_free(pdrt_curves *c);

/* ---- what both pipeline executors share (rt_pipeline.c) ---- */
/* Which MPI ranks run which stage: every stage's replicas, contiguous in stage order. Returns
 * first_rank (calloc'd, n_stages + 1 entries: stage k's replicas are first_rank[k] ..
 * first_rank[k + 1] - 1); R: this stage's replicas, j: which one rank is. Fails the run when the
 * world of n ranks does not match the plan. */
int *pdrt_rank_table(int *R, int *j, const pdrt_stage *st, int rank, int n);
/* Stage 0 (first) opens the data; every rank learns the minibatches per epoch (returned) and
 * the total steps (--steps, else the epochs times that). Collective on MPI_COMM_WORLD. */
int64_t pdrt_pipeline_data(int64_t *total, pd_data *train, pd_data *test, const pdrt_args *a,
                         const pdrt_stage *st, int first);
/* Clipping by the global norm: every rank's squared norm of its stage's mean gradient (sq; the
 * first replicas' only, the others' would count their stage again) gathered to every rank and
 * summed in rank order, so that all compute the same coefficient, bitwise as --single does:
 * min(1, max_norm / (norm + 1e-6)) (pd_clip_coef). Collective: every rank at every update. */
float pdrt_global_clip_coef(double sq, int first_replica, int n_ranks, float max_norm);
/* The most minibatches a rank's schedule keeps in flight (forwards not yet followed by their
 * backward, or under zb-h1/zb-h2 by their backward_weight), at least 1. */
int pdrt_in_flight(const pd_rank_schedule *rs);
/* The last stage's loss since the last progress line. */
typedef struct {
    double loss_sum, last_loss, t_log;
    int64_t loss_n;
    pdrt_curves *curves;      /* NULL, or where each line's loss goes too (at t0's seconds) */
    double t0;
} pdrt_loss_log;
/* Prints "epoch E step L/P loss X samples/s Y" when log_every losses (or, with force, any)
 * were added since the last line, and starts the next interval. */
void pdrt_progress(pdrt_loss_log *lg, int epoch, int64_t local, int64_t per_epoch, int B, int log_every,
                 int force);

/* Where the next segment of training ends, from `done` minibatches trained: the end of the epoch
 * or of the run, or the next multiple of every (> 0: checkpoints) or of a->eval_every. */
int64_t pdrt_segment_end(const pdrt_args *a, int64_t done, int64_t per_epoch, int64_t total,
                         int64_t every);
/* Whether to evaluate after `done` minibatches (end: an epoch's or the run's end). */
int pdrt_eval_due(const pdrt_args *a, int64_t done, int end);
/* The test minibatches an evaluation runs: nb of them, or --eval-batches' if fewer. */
int64_t pdrt_eval_batches(const pdrt_args *a, int64_t nb);
/* The pipeline's evaluation size: stage 0 (first) counts its test minibatches (*nb, as
 * pdrt_eval_batches) and samples (*n_test) and every rank receives them. Collective on
 * MPI_COMM_WORLD; both executors' evaluations begin with it. */
void pdrt_eval_size(int64_t *nb, int64_t *n_test, const pdrt_args *a, const pd_data *test, int B,
                    int first);
/* The end of an evaluation: the accuracy and the mean loss per target over n_test samples of tg
 * targets each, from the counts of a rank that has them (reporter), broadcast from out_rank to
 * every rank; returns the accuracy and sets *val_loss. Collective on MPI_COMM_WORLD; every
 * executor's evaluation ends with it. */
double pdrt_eval_result(int64_t correct, double loss_sum, int64_t n_test, int tg, int reporter,
                        int out_rank, double *val_loss);
/* An evaluation's bookkeeping on the reporting rank (print 1; others pass 0 and c NULL and get
 * the same answer): prints "epoch E[ step L/P] test_accuracy A[ val_loss V] elapsed T s" (the
 * step part for evaluations inside an epoch), records the point in c, and returns 1 when the
 * run's target (--target-accuracy, --target-loss) is met, setting *t_target (elapsed) and
 * *step_target (done) the first time. */
int pdrt_eval_record(pdrt_curves *c, const pdrt_args *a, int targets, int64_t done,
                     int64_t per_epoch, int64_t total, double elapsed, double acc,
                     double val_loss, int print, double *t_target, int64_t *step_target);

/* ---- the messages of tied weights between stages (tie_messages.c) ---- */
typedef struct {
    MPI_Request *r;
    int n, cap;
} pdrt_reqs;
MPI_Request *pdrt_reqs_add(pdrt_reqs *q);
/* waits for every request of q under the watchdog (what: the operation it names), then empties q */
void pdrt_reqs_wait(pdrt_reqs *q, const char *what);
/* Posts this replica's (j of R, on MPI comm) sends of mine (NULL: none) to its partners on tie t's
 * other stage and the receive of theirs into other (NULL: none), n floats each; first_rank: each
 * stage's first rank, and the total at [n_stages]. */
void pdrt_tie_post(pdrt_reqs *q, const pdrt_tie *t, const int *first_rank, int R, int j,
                   MPI_Comm comm, const float *mine, float *other, int64_t n);

#endif
