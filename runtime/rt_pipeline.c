/* rt_pipeline.c: the setup and bookkeeping both pipeline executors (executor.c on the CPU,
 * cuda/executor_cuda.c on GPUs) do alike: the table of which MPI ranks run which stage, the
 * training data and step count, the minibatches a schedule keeps in flight, the progress line;
 * and, with local.c too, where a segment of training ends (epoch ends, checkpoints, --eval-every)
 * and an evaluation's line, curve point and target check. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "rt.h"

int *pdrt_rank_table(int *R, int *j, const pdrt_stage *st, int rank, int n) {
    int *first_rank = calloc((size_t)st->n_stages + 1, sizeof(int));
    PDRT_CHECK(first_rank != NULL);
    for (int k = 0; k < st->n_stages; k++) first_rank[k + 1] = first_rank[k] + pdrt_replicas(st, k);
    *R = pdrt_replicas(st, st->index);
    *j = rank - first_rank[st->index];
    if (n != first_rank[st->n_stages] || *j < 0 || *j >= *R)
        PDRT_FAIL("this binary is stage %d of %d (%d replicas, ranks %d..%d of %d) "
                "but runs as MPI rank %d of %d", st->index, st->n_stages, *R,
                first_rank[st->index], first_rank[st->index] + *R - 1,
                first_rank[st->n_stages], rank, n);
    return first_rank;
}

int64_t pdrt_pipeline_data(int64_t *total, pd_data *train, pd_data *test, const pdrt_args *a,
                         const pdrt_stage *st, int first) {
    int64_t per_epoch = 0;
    if (first) {
        pdrt_data_open(train, test, a, st);
        PDRT_CHECK(pd_data_targets(train) == pdrt_targets(a, st));
        per_epoch = pd_data_batches(train, st->batch, 1);
        if (per_epoch < 1) PDRT_FAIL("the training set holds less than one minibatch");
    }
    /* after the data's own errors (a one-stage run reports a bad file first) */
    if (st->index == st->n_stages - 1) pdrt_check_logits(st, pdrt_targets(a, st));
    pdrt_watch("the data set's size", 0, -1);
    MPI_Bcast(&per_epoch, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    pdrt_unwatch();
    int epochs = a->epochs > 0 ? a->epochs : (st->epochs > 0 ? st->epochs : 1);
    *total = a->steps > 0 ? a->steps : (int64_t)epochs * per_epoch;
    return per_epoch;
}

float pdrt_global_clip_coef(double sq, int first_replica, int n_ranks, float max_norm) {
    double mine = first_replica ? sq : 0.0, total = 0;
    double *all = calloc((size_t)n_ranks, sizeof(double));
    PDRT_CHECK(all != NULL);
    MPI_Allgather(&mine, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, MPI_COMM_WORLD);
    for (int r = 0; r < n_ranks; r++) total += all[r];
    free(all);
    return pd_clip_coef(total, max_norm);
}

int pdrt_in_flight(const pd_rank_schedule *rs) {
    int cur = 0, most = 1;
    for (int i = 0; i < rs->n; i++) {
        if (rs->a[i].kind == PD_A_FORWARD && ++cur > most) most = cur;
        if (rs->a[i].kind == PD_A_BACKWARD || rs->a[i].kind == PD_A_BACKWARD_WEIGHT) cur--;
    }
    return most;
}

void pdrt_progress(pdrt_loss_log *lg, int epoch, int64_t local, int64_t per_epoch, int B, int log_every,
                 int force) {
    int64_t since = lg->loss_n;
    if (!since || (!force && since < log_every)) return;
    double now = pdrt_now();
    lg->last_loss = lg->loss_sum / (double)since;
    printf("epoch %d step %lld/%lld loss %.4f samples/s %.1f\n", epoch + 1, (long long)local,
           (long long)per_epoch, lg->last_loss,
           (double)since * B / (now - lg->t_log > 1e-9 ? now - lg->t_log : 1e-9));
    fflush(stdout);
    pdrt_curves_add_loss(lg->curves, (int64_t)epoch * per_epoch + local, now - lg->t0, lg->last_loss);
    lg->loss_sum = 0;
    lg->loss_n = 0;
    lg->t_log = now;
}

int64_t pdrt_segment_end(const pdrt_args *a, int64_t done, int64_t per_epoch, int64_t total,
                         int64_t every) {
    int64_t end = (done / per_epoch + 1) * per_epoch;
    if (end > total) end = total;
    if (every > 0 && done - done % every + every < end) end = done - done % every + every;
    int64_t ev = a->eval ? a->eval_every : 0;
    if (ev > 0 && done - done % ev + ev < end) end = done - done % ev + ev;
    return end;
}

int pdrt_eval_due(const pdrt_args *a, int64_t done, int end) {
    return a->eval && (end || (a->eval_every > 0 && done % a->eval_every == 0));
}

int64_t pdrt_eval_batches(const pdrt_args *a, int64_t nb) {
    return a->eval_batches > 0 && a->eval_batches < nb ? a->eval_batches : nb;
}

void pdrt_eval_size(int64_t *nb, int64_t *n_test, const pdrt_args *a, const pd_data *test, int B,
                    int first) {
    *nb = *n_test = 0;
    if (first) {
        *nb = pdrt_eval_batches(a, pd_data_batches(test, B, 0));
        *n_test = *nb * B < test->n ? *nb * B : test->n;
    }
    pdrt_watch("the test set's size", 0, -1);
    MPI_Bcast(nb, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(n_test, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    pdrt_unwatch();
}

double pdrt_eval_result(int64_t correct, double loss_sum, int64_t n_test, int tg, int reporter,
                        int out_rank, double *val_loss) {
    n_test *= tg; /* accuracy and loss per target (token) */
    double r[2] = {0, 0};
    if (reporter && n_test) r[0] = (double)correct / (double)n_test, r[1] = loss_sum / (double)n_test;
    pdrt_watch("the test accuracy", out_rank, -1);
    MPI_Bcast(r, 2, MPI_DOUBLE, out_rank, MPI_COMM_WORLD);
    pdrt_unwatch();
    *val_loss = r[1];
    return r[0];
}

int pdrt_eval_record(pdrt_curves *c, const pdrt_args *a, int targets, int64_t done,
                     int64_t per_epoch, int64_t total, double elapsed, double acc,
                     double val_loss, int print, double *t_target, int64_t *step_target) {
    if (print) {
        int64_t into = done % per_epoch;
        if (into && done < total)
            printf("epoch %lld step %lld/%lld", (long long)(done / per_epoch + 1), (long long)into,
                   (long long)per_epoch);
        else
            printf("epoch %lld", (long long)((done + per_epoch - 1) / per_epoch));
        printf(" test_accuracy %.4f", acc);
        if (targets > 1) printf(" val_loss %.4f", val_loss); /* nats per token */
        printf(" elapsed %.1f s\n", elapsed);
        fflush(stdout);
    }
    pdrt_curves_add_eval(c, done, elapsed, acc, val_loss);
    int met = (a->target_accuracy >= 0 && acc >= a->target_accuracy) ||
              (a->target_loss >= 0 && val_loss <= a->target_loss);
    if (met && *t_target < 0) {
        *t_target = elapsed;
        *step_target = done;
    }
    return met;
}
