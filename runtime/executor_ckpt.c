/* executor_ckpt.c: the CPU executor's checkpoints (executor.h): the metadata a file carries, a
 * checkpoint set written by every rank after the pipeline drains, and --resume from the newest
 * complete set whose every file is intact and fits this run (checkpoint.c reads and writes the
 * files). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

static void ckpt_meta(pdrt_ckpt_meta *m, const ex_t *e, int64_t done, int epoch, int64_t every) {
    memset(m, 0, sizeof *m);
    m->fingerprint = pdrt_stage_fingerprint(e->st, pdrt_schedule_name(e->st, e->a), pdrt_microbatches(e->st, e->a));
    m->seed = e->a->seed;
    m->stage = e->st->index;
    m->replica = e->j;
    m->rank = e->rank;
    m->n_ranks = e->n;
    m->done = done;
    m->epoch = epoch;
    m->updates = e->updates;
    m->every = every;
    m->loss_sum = e->lg.loss_sum;
    m->last_loss = e->lg.last_loss;
    m->loss_n = e->lg.loss_n;
    m->skipped = e->skipped;
    m->lr = (double)e->opt.lr;
    m->shuffle = e->a->shuffle;
    m->per_epoch = e->per_epoch;
}

/* Every rank writes its own file (replicas' batch-norm statistics differ); the barrier makes the
 * set complete before any rank removes its older files (the last two sets are kept). Test-only:
 * PDRT_TEST_KILL_AFTER_CKPT=STEP:RANK makes that rank SIGKILL itself after the set of STEP. */
void pdrt_ex_checkpoint(ex_t *e, int64_t done, int epoch, int64_t every, int64_t *prev) {
    int64_t np = e->st->n_params;
    double t0 = pdrt_now();
    PDRT_CHECK(e->acc[np] == 0.0f); /* drained: no gradient waits for a step */
    pdrt_ckpt_meta m;
    ckpt_meta(&m, e, done, epoch, every);
    pdrt_ckpt_write(e->a->checkpoint_dir, &m, e->st->plan_hash, pdrt_stash_newest(&e->stash), np,
                  e->opt_state, (int64_t)pd_optim_state_floats(&e->opt, (size_t)np), e->buffers,
                  e->st->n_buffers);
    pdrt_barrier("every rank's checkpoint file");
    if (*prev >= 0) pdrt_ckpt_prune(e->a->checkpoint_dir, e->rank, *prev);
    *prev = done;
    e->n_ckpt++;
    e->ckpt_s += pdrt_now() - t0;
    const char *k = getenv("PDRT_TEST_KILL_AFTER_CKPT");
    long long ks;
    int kr;
    if (k && sscanf(k, "%lld:%d", &ks, &kr) == 2 && ks == done && kr == e->rank) {
        fprintf(stderr, "pdrt: rank %d: PDRT_TEST_KILL_AFTER_CKPT: killing myself after step %lld\n",
                e->rank, ks);
        fflush(stderr);
        raise(SIGKILL);
    }
}

/* Reads this rank's file of the set at step and checks it against this run; 0, or -1 with why. */
static int ckpt_load(ex_t *e, int64_t step, float *w, pdrt_ckpt_meta *m, char *path, size_t pcap,
                     char *why, size_t wcap) {
    int64_t np = e->st->n_params;
    pdrt_ckpt_meta want;
    pdrt_ckpt_path(path, pcap, e->a->checkpoint_dir, step, e->rank);
    if (pdrt_ckpt_read(m, w, np, e->opt_state, (int64_t)pd_optim_state_floats(&e->opt, (size_t)np),
                       e->buffers, e->st->n_buffers, path, e->st->plan_hash, why, wcap))
        return -1;
    ckpt_meta(&want, e, step, 0, 0);
    return pdrt_ckpt_fits(m, &want, e->total, why, wcap);
}

/* --resume: the newest complete set whose every file is intact and fits this run (rank 0 finds
 * the complete sets, every rank checks its own file, all agree); a set refused is named, with
 * the reason, and the next older one is tried. */
void pdrt_ex_resume(ex_t *e, int64_t *done, int *epoch, int64_t *every) {
    const char *dir = e->a->checkpoint_dir;
    int64_t np = e->st->n_params, below = INT64_MAX, step = -1;
    float *w = pdrt_alloc((size_t)np + 1);
    pdrt_ckpt_meta m;
    char path[4200], why[512];
    int refused = 0;
    for (;;) {
        step = e->rank == 0 ? pdrt_ckpt_latest(dir, e->n, below) : 0;
        pdrt_watch("the checkpoint step to resume from", 0, -1);
        MPI_Bcast(&step, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
        pdrt_unwatch();
        if (step < 0) {
            if (refused)
                PDRT_FAIL("--resume: no intact checkpoint set in %s (%d refused, reasons above)", dir, refused);
            PDRT_FAIL("--resume: no complete checkpoint set (a file for each of %d ranks) in %s", e->n, dir);
        }
        int ok = ckpt_load(e, step, w, &m, path, sizeof path, why, sizeof why) == 0, all = 0;
        if (!ok) pdrt_warn("checkpoint %s refused: %s", path, why);
        pdrt_watch("the ranks' verdict on a checkpoint set", -1, -1);
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        pdrt_unwatch();
        if (all) break;
        refused++;
        if (e->rank == e->out_rank) {
            printf("--resume: skipping the checkpoint set %s/step-%010lld (a file was refused); "
                   "trying an older one\n", dir, (long long)step);
            fflush(stdout);
        }
        below = step;
    }
    if (e->rank == e->out_rank) {
        pdrt_ckpt_meta now;
        ckpt_meta(&now, e, step, 0, *every);
        pdrt_ckpt_warn_changes(&m, &now);
    }
    e->updates = m.updates;
    memcpy(pdrt_stash_reset(&e->stash, m.updates), w, (size_t)np * sizeof(float));
    free(w);
    e->lg.loss_sum = m.loss_sum;
    e->lg.loss_n = m.loss_n;
    e->lg.last_loss = m.last_loss;
    e->skipped = m.skipped;
    *done = m.done;
    *epoch = (int)m.epoch;
    if (*every <= 0) *every = m.every;
    if (e->rank == e->out_rank) {
        printf("resumed from %s/step-%010lld (step %lld, epoch %lld)\n", dir, (long long)step,
               (long long)step, (long long)m.epoch + 1);
        fflush(stdout);
    }
}
