/* executor_chunks.c: the CPU executor's entry for interleaved plans (pdplan --schedule
 * interleaved --chunks V): one MPI rank r of p runs V stages, its chunks r, r + p, ..., each
 * with its own weights (one version: the schedule is synchronous), optimizer state, gradient
 * sum, in-flight buffers, send rings and links (one ex_t each, as executor.c keeps them for one
 * stage), through the interleaved schedule IR (runtime/schedule/interleaved.c): every action on
 * the chunk of its stage, one update per batch of M minibatches (M a multiple of p), the chunks'
 * tied weights and clipping norm settled together before their steps (executor_chunks_step.c).
 * With checkpoints or --eval-every the run goes in segments, the pipeline drained at their ends;
 * each chunk writes its stage's checkpoint file (executor_ckpt.c). A forward-only pass over the
 * test set at epoch ends and every --eval-every steps. The summary's rows are the ranks (each its
 * chunks' sums); trace.json draws each chunk's work on its own rows; run/profile.yaml lists the
 * layers of every stage in stage order. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/ops.h"
#include "executor.h"
#include "rt.h"
#include "runtime/schedule/schedule.h"

/* The test set through every chunk in stage order, one minibatch at a time (a blocking send per
 * message: each rank's order of (minibatch, stage) is increasing, so no two ranks wait for each
 * other). Returns the accuracy on every rank; *val_loss the mean loss per target. */
static double evaluate(ex_t *e, int v, double *val_loss) {
    int p = e[0].n;
    int64_t nb, n_test, correct = 0;
    double loss_sum = 0;
    pdrt_eval_size(&nb, &n_test, e[0].a, &e[0].test, e[0].B, e[0].first);
    for (int64_t t = 0; t < nb; t++)
        for (int c = 0; c < v; c++) {
            ex_t *x = &e[c];
            const pdrt_stage *st = x->st;
            float *in = x->in[0], *out = x->last ? x->logits : x->act_send[0];
            if (x->first) {
                memset(in, 0, (size_t)(st->in_floats + x->NL) * sizeof(float));
                int got = pd_data_batch(in, x->labels, &e[0].test, 0, t, x->B, 0, x->a->seed) * x->tg;
                for (int b = 0; b < x->NL; b++) in[st->in_floats + b] = b < got ? (float)x->labels[b] : -1;
            } else {
                pdrt_link *k = pdrt_ex_link(x, (st->index - 1) % p);
                pdrt_watch("a receive of test-set activations", k->peer, t);
                k->t->recv(k, in, st->in_floats + x->NL, pdrt_ex_tag(x, 0, t, x->edge_up));
                pdrt_unwatch();
            }
            st->forward(out, x->acts[0], x->scratch, x->buffers, pdrt_stash_newest(&x->stash), in,
                        0, x->a->seed, -1);
            if (x->last) {
                int got = 0;
                while (got < x->NL && in[st->in_floats + got] >= 0) got++; /* targets */
                for (int b = 0; b < got; b++) x->labels[b] = (int)in[st->in_floats + b];
                correct += pdrt_count_correct(x->logits, x->labels, got, st->classes);
                if (got) loss_sum += (double)got * pdrt_softmax_cross_entropy(x->dout[0], x->logits,
                                                                               x->labels, got, st->classes);
            } else {
                memcpy(out + st->out_floats, in + st->in_floats, (size_t)x->NL * sizeof(float));
                pdrt_link *k = pdrt_ex_link(x, (st->index + 1) % p);
                pdrt_watch("a send of test-set activations to complete", k->peer, t);
                k->t->send(k, 0, out, st->out_floats + x->NL, pdrt_ex_tag(x, 0, t, x->edge_down));
                k->t->send_wait(k, 0);
                pdrt_unwatch();
            }
        }
    return pdrt_eval_result(correct, loss_sum, n_test, e[0].tg, e[0].rank == p - 1, p - 1, val_loss);
}

/* Chunk c's executor state on this rank (stage chunks[c]->index). */
static void chunk_init(ex_t *x, const pdrt_stage *st, const pdrt_args *a, int rank, int p, int v) {
    memset(x, 0, sizeof *x);
    x->st = st;
    x->a = a;
    x->rank = rank;
    x->n = p;
    x->B = st->batch;
    x->tg = pdrt_targets(a, st);
    x->NL = x->B * x->tg;
    x->first = st->index == 0;
    x->last = st->index == st->n_stages - 1;
    x->R = 1;
    x->out_rank = x->last ? rank : -1; /* the last stage's chunk logs progress */
    x->stage_comm = MPI_COMM_NULL;
    x->tie_comm = MPI_COMM_NULL;
    pdrt_rules_init(&x->ru, st, a, 1); /* interleaved: M, recomputation */
    x->chunks = v;
    x->edge_up = st->index > 0 ? (st->index - 1) / p : 0;
    x->edge_down = st->index / p;
    pdrt_optim_from(&x->opt, st, a);
}

/* The summary (one row per rank: its chunks' times and predictions summed, the most any of them
 * dropped), curves.svg, run/profile.yaml (every stage's layers) and trace.json. */
static void report(ex_t *e, int v, const pdrt_args *a, int64_t done, int64_t start, int epoch,
                   double wall, double train_s, double acc, double val_loss, double time_to_target,
                   int64_t target_step, pdrt_curves *curves) {
    const pdrt_stage *s0 = e[0].st;
    int p = e[0].n;
    pdrt_stage_stats mine = {0};
    int *first_rank = calloc((size_t)p + 1, sizeof(int));
    pdrt_laps *laps = calloc((size_t)v, sizeof *laps);
    const pdrt_stage **sts = calloc((size_t)v, sizeof *sts);
    double *step_ms = calloc((size_t)v, sizeof *step_ms);
    PDRT_CHECK(first_rank && laps && sts && step_ms);
    for (int r = 0; r <= p; r++) first_rank[r] = r;
    for (int c = 0; c < v; c++) {
        pdrt_stage_stats_add_chunk(&mine, &e[c].stats, e[c].st);
        if (e[c].skipped > mine.skipped) mine.skipped = e[c].skipped;
        laps[c] = e[c].laps;
        sts[c] = e[c].st;
        step_ms[c] = e[c].laps.calls[1] ? e[c].stats.step_ms / (double)e[c].laps.calls[1] : 0;
    }
    mine.steps = done - start; /* measured per minibatch, as predicted */
    pdrt_stage_stats *ss = pdrt_stage_stats_gather(&mine, first_rank, p, p - 1);
    if (ss) {
        pdrt_summary sum = {s0->model, "pipeline", "interleaved", p, e[0].B, done,
                            done > (int64_t)epoch * e[0].per_epoch ? epoch + 1 : epoch,
                            e[v - 1].lg.last_loss, a->eval ? acc : -1,
                            (double)(done - start) * e[0].B / train_s, wall, train_s,
                            a->target_accuracy, time_to_target, ss, start, a->skip_nonfinite,
                            e[0].n_ckpt, e[0].ckpt_s, a->eval && acc >= 0, val_loss, e[0].tg,
                            a->target_loss, target_step, curves};
        pdrt_summary_print(&sum);
        pdrt_summary_write(a->run_dir, &sum);
        char title[256];
        snprintf(title, sizeof title, "%s: %d ranks x %d chunks, interleaved", s0->model, p, v);
        pdrt_curves_write_svg(a->run_dir, curves, title);
        free(ss);
    }
    for (int c = 0; c < v; c++)
        if (a->check_replicas && e[c].tie_checks)
            printf("stage %d: tied weights identical to their owners' after %lld updates\n",
                   e[c].st->index, (long long)e[c].tie_checks);
    char how[200];
    snprintf(how, sizeof how, "%d ranks x %d chunks, interleaved, %lld minibatches", p, v,
             (long long)(done - start));
    pdrt_laps_write_profile(laps, sts, step_ms, v, 1, p - 1, a->run_dir, how);
    if (a->trace) {
        e[0].first_rank = first_rank; /* pdrt_ex_write_trace names the ranks by it */
        e[0].out_rank = p - 1;
        pdrt_ex_write_trace(&e[0]);
        e[0].first_rank = NULL;
    }
    free(first_rank);
    free(laps);
    free(sts);
    free(step_ms);
}

int pdrt_main_chunks(int argc, char **argv, const pdrt_stage *const *chunks, int v) {
    pdrt_args a;
    int pr = pdrt_args_parse(&a, argc, argv, RT_PIPELINE);
    if (pr) return pr > 0 ? 0 : 2;
    MPI_Init(&argc, &argv);
    int rank, p;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    const pdrt_stage *s0 = chunks[0];
    pdrt_set_identity(rank, s0->index, 1);
    pdrt_watchdog_start(a.hang_timeout);
    if (a.mode != RT_PIPELINE) PDRT_FAIL("--single/--emulate run the local binary (pdlaunch --single)");
    for (int c = 0; c < v && c < 64; c++)
        if (chunks[c]->abi != PDRT_ABI)
            PDRT_FAIL("stage built for runtime ABI %d, not %d", chunks[c]->abi, PDRT_ABI);
    pdrt_chunks_check(&a, chunks, v, rank, p);
    PDRT_CHECK(v >= 2 && v <= 64); /* checked: for the compiler's sake */
    ex_t *e = calloc((size_t)v, sizeof *e);
    PDRT_CHECK(e != NULL);
    MPI_Comm tie_comm; /* the chunks' tied weights' messages */
    MPI_Comm_dup(MPI_COMM_WORLD, &tie_comm);
    for (int c = 0; c < v; c++) {
        chunk_init(&e[c], chunks[c], &a, rank, p, v);
        e[c].tie_comm = tie_comm;
        pdrt_ex_inject_from_env(&e[c]);
    }
    int M = e[0].ru.M;
    pdrt_chunks_check_microbatches(M, p);
    int64_t total = 0;
    int64_t per_epoch = pdrt_pipeline_data(&total, &e[0].train, &e[0].test, &a, s0, rank == 0);
    {
        int64_t n0 = total < per_epoch ? total : per_epoch;
        PDRT_CHECK(n0 < (int64_t)1 << 30);
        pd_schedule *full = pd_schedule_interleaved(p, v, (int)n0, M);
        PDRT_CHECK(full != NULL);
        for (int c = 0; c < v; c++) {
            e[c].per_epoch = per_epoch, e[c].total = total;
            e[c].D = pdrt_chunks_in_flight(p, v, rank, M, c); /* its own minibatches in flight */
            pdrt_ex_alloc(&e[c], full);
            chunks[c]->init(pdrt_stash_newest(&e[c].stash), e[c].buffers, a.seed);
            if (a.init_dir[0])
                pdrt_weights_load(a.init_dir, chunks[c], pdrt_stash_newest(&e[c].stash), e[c].buffers);
        }
        pd_schedule_free(full);
    }
    pdrt_ex_chunks_ties_init(e, v); /* the owners' values on both copies */
    int64_t done = 0, every = a.checkpoint_every, prev_ckpt = -1;
    int epoch = 0, ckpt = a.checkpoint_dir[0] != 0;
    if (a.resume) {
        pdrt_ex_resume(e, &done, &epoch, &every);
        prev_ckpt = done; /* the next checkpoint prunes the sets before the resumed one */
    }
    int64_t start = done;
    {   /* a tenth of the minibatches (at most 20) warm the caches before laps count */
        int64_t skip = (total - start) / 10 < 20 ? (total - start) / 10 : 20;
        for (int c = 0; c < v; c++) pdrt_laps_init(&e[c].laps, chunks[c]->n_layers, skip);
    }
    ex_t *lastc = &e[v - 1]; /* the last stage's chunk where this rank holds it */
    pdrt_barrier("every rank to be ready to train");
    double t0 = pdrt_now(), origin = t0;
    MPI_Bcast(&origin, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    pdrt_trace_start(a.trace, origin);
    for (int c = 0; c < v; c++) e[c].t0 = e[c].lg.t_log = e[c].lg.t0 = t0;
    int64_t target_step = -1;
    int stop = 0, me = rank == p - 1;
    double train_s = 0, acc = -1, val_loss = 0, time_to_target = -1;
    pdrt_curves curves = {.eval_is_loss = e[0].tg > 1};
    if (me) lastc->lg.curves = &curves;
    while (done < total && !stop) {
        /* the rest of this epoch, cut at the next multiple of --checkpoint-every or --eval-every */
        int64_t ep_start = (int64_t)epoch * per_epoch;
        int64_t n = pdrt_segment_end(&a, done, per_epoch, total, ckpt ? every : 0) - done;
        PDRT_CHECK(n >= 1 && n < (int64_t)1 << 30 && done >= ep_start);
        pd_schedule *s = pd_schedule_interleaved(p, v, (int)n, M);
        PDRT_CHECK(s != NULL);
        double t = pdrt_now();
        pdrt_ex_run_epoch(e, s, epoch, done, done - ep_start);
        train_s += pdrt_now() - t;
        pd_schedule_free(s);
        done += n;
        int epoch_end = done == ep_start + per_epoch, end = epoch_end || done == total;
        if (epoch_end) epoch++;
        if (ckpt && (end || (every > 0 && done % every == 0)))
            pdrt_ex_checkpoint(e, done, epoch, every, &prev_ckpt);
        if (pdrt_eval_due(&a, done, end)) {
            acc = evaluate(e, v, &val_loss);
            stop = pdrt_eval_record(me ? &curves : NULL, &a, e[0].tg, done, per_epoch, total,
                                    pdrt_now() - t0, acc, val_loss, me, &time_to_target,
                                    &target_step);
        }
    }
    double wall = pdrt_now() - t0;
    if (a.save_dir[0])
        for (int c = 0; c < v; c++)
            pdrt_weights_save(a.save_dir, chunks[c], pdrt_stash_newest(&e[c].stash), e[c].buffers);
    report(e, v, &a, done, start, epoch, wall, train_s, acc, val_loss, time_to_target, target_step,
           &curves);
    pdrt_trace_free();
    pdrt_curves_free(&curves);
    for (int c = 0; c < v; c++) {
        pdrt_ex_free(&e[c]);
        pdrt_optim_free(&e[c].opt);
    }
    MPI_Comm_free(&tie_comm);
    free(e);
    MPI_Finalize();
    return 0;
}
