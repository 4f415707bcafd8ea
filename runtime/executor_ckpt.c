/* executor_ckpt.c: the CPU executor's checkpoints (executor.h): the metadata a file carries, a
 * checkpoint set written by every rank after the pipeline drains, and --resume from the newest
 * complete set whose every file is intact and fits this run (checkpoint.c reads and writes the
 * files). A file holds one stage replica: under interleaved each chunk writes its stage's own,
 * DIR/step-N/rank-S.ckpt for stage S (the name one stage per rank gives it), so a set is a file
 * per stage whichever ranks hold them. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

/* The chunks from e that this rank holds (interleaved: e is its first chunk), the number of
 * e's file (its rank, or under interleaved its stage) and of the files of a set. */
static int n_chunks(const ex_t *e) { return e->chunks > 1 ? e->chunks : 1; }
static int file_of(const ex_t *e) { return e->chunks > 1 ? e->st->index : e->rank; }
static int n_files(const ex_t *e) { return e->chunks > 1 ? e->st->n_stages : e->n; }

static void ckpt_meta(pdrt_ckpt_meta *m, const ex_t *e, int64_t done, int epoch, int64_t every) {
    memset(m, 0, sizeof *m);
    m->fingerprint = pdrt_stage_fingerprint(e->st, pdrt_schedule_name(e->st, e->a), pdrt_microbatches(e->st, e->a));
    m->seed = e->a->seed;
    m->stage = e->st->index;
    m->replica = e->j;
    m->rank = file_of(e);
    m->n_ranks = n_files(e);
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

/* Every rank writes its own file (replicas' batch-norm statistics differ; interleaved: one per
 * chunk, named by its stage); the barrier makes the set complete before any rank removes its
 * older files (the last two sets are kept). Test-only: PDRT_TEST_KILL_AFTER_CKPT=STEP:RANK makes
 * that (MPI) rank SIGKILL itself after the set of STEP. */
void pdrt_ex_checkpoint(ex_t *e, int64_t done, int epoch, int64_t every, int64_t *prev) {
    double t0 = pdrt_now();
    for (int c = 0; c < n_chunks(e); c++) {
        ex_t *x = &e[c];
        int64_t np = x->st->n_params;
        PDRT_CHECK(x->acc[np] == 0.0f); /* drained: no gradient waits for a step */
        pdrt_ckpt_meta m;
        ckpt_meta(&m, x, done, epoch, every);
        pdrt_ckpt_write(x->a->checkpoint_dir, &m, x->st->plan_hash, pdrt_stash_newest(&x->stash),
                        np, x->opt_state, (int64_t)pd_optim_state_floats(&x->opt, (size_t)np),
                        x->buffers, x->st->n_buffers);
    }
    pdrt_barrier("every rank's checkpoint file");
    for (int c = 0; c < n_chunks(e) && *prev >= 0; c++)
        pdrt_ckpt_prune(e->a->checkpoint_dir, file_of(&e[c]), *prev);
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

/* Reads e's file of the set at step and checks it against this run; 0, or -1 with why. */
static int ckpt_load(ex_t *e, int64_t step, float *w, pdrt_ckpt_meta *m, char *path, size_t pcap,
                     char *why, size_t wcap) {
    int64_t np = e->st->n_params;
    pdrt_ckpt_meta want;
    pdrt_ckpt_path(path, pcap, e->a->checkpoint_dir, step, file_of(e));
    if (pdrt_ckpt_read(m, w, np, e->opt_state, (int64_t)pd_optim_state_floats(&e->opt, (size_t)np),
                       e->buffers, e->st->n_buffers, path, e->st->plan_hash, why, wcap))
        return -1;
    ckpt_meta(&want, e, step, 0, 0);
    return pdrt_ckpt_fits(m, &want, e->total, why, wcap);
}

/* --resume: the newest complete set whose every file is intact and fits this run (rank 0 finds
 * the complete sets, every rank checks its own files, all agree); a set refused is named, with
 * the reason, and the next older one is tried. */
void pdrt_ex_resume(ex_t *e, int64_t *done, int *epoch, int64_t *every) {
    const char *dir = e->a->checkpoint_dir;
    int v = n_chunks(e), out = -1, refused = 0;
    int64_t below = INT64_MAX, step = -1;
    float **w = calloc((size_t)v, sizeof *w);
    pdrt_ckpt_meta *m = calloc((size_t)v, sizeof *m);
    PDRT_CHECK(w && m);
    for (int c = 0; c < v; c++) {
        w[c] = pdrt_alloc((size_t)e[c].st->n_params + 1);
        if (e[c].rank == e[c].out_rank) out = c; /* prints */
    }
    char path[4200], why[512];
    for (;;) {
        step = e->rank == 0 ? pdrt_ckpt_latest(dir, n_files(e), below) : 0;
        pdrt_watch("the checkpoint step to resume from", 0, -1);
        MPI_Bcast(&step, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
        pdrt_unwatch();
        if (step < 0) {
            if (refused)
                PDRT_FAIL("--resume: no intact checkpoint set in %s (%d refused, reasons above)", dir, refused);
            PDRT_FAIL("--resume: no complete checkpoint set (a file for each of %d %s) in %s",
                      n_files(e), v > 1 ? "stages" : "ranks", dir);
        }
        int ok = 1, all = 0;
        for (int c = 0; c < v; c++)
            if (ckpt_load(&e[c], step, w[c], &m[c], path, sizeof path, why, sizeof why)) {
                pdrt_warn("checkpoint %s refused: %s", path, why);
                ok = 0;
            }
        pdrt_watch("the ranks' verdict on a checkpoint set", -1, -1);
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        pdrt_unwatch();
        if (all) break;
        refused++;
        if (out >= 0) {
            printf("--resume: skipping the checkpoint set %s/step-%010lld (a file was refused); "
                   "trying an older one\n", dir, (long long)step);
            fflush(stdout);
        }
        below = step;
    }
    if (out >= 0) {
        pdrt_ckpt_meta now;
        ckpt_meta(&now, &e[out], step, 0, *every);
        pdrt_ckpt_warn_changes(&m[out], &now);
    }
    for (int c = 0; c < v; c++) {
        ex_t *x = &e[c];
        x->updates = m[c].updates;
        memcpy(pdrt_stash_reset(&x->stash, m[c].updates), w[c], (size_t)x->st->n_params * sizeof(float));
        free(w[c]);
        x->lg.loss_sum = m[c].loss_sum;
        x->lg.loss_n = m[c].loss_n;
        x->lg.last_loss = m[c].last_loss;
        x->skipped = m[c].skipped;
    }
    *done = m[0].done;
    *epoch = (int)m[0].epoch;
    if (*every <= 0) *every = m[0].every;
    if (out >= 0) {
        printf("resumed from %s/step-%010lld (step %lld, epoch %lld)\n", dir, (long long)step,
               (long long)step, (long long)m[0].epoch + 1);
        fflush(stdout);
    }
    free(w);
    free(m);
}
