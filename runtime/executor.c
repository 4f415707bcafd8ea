/* executor.c: one pipeline stage per MPI rank. Runs the schedule IR (schedule.c) action by
 * action, epoch by epoch: forwards with the newest weights, backwards with the stashed version
 * the forward used (stash.c), optimizer steps on the newest version, nonblocking sends through
 * rings of send buffers whose size the deadlock checker assumed, then a forward-only pass over
 * the test set, progress lines and the summary (written by the last stage).
 * Labels travel with the activations: an activation message is the output pack followed by the
 * minibatch's labels as floats. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ops.h"
#include "optim.h"
#include "rt.h"
#include "schedule.h"

typedef struct {
    const pdrt_stage *st;
    const rt_args *a;
    int rank, n, first, last, B;
    int D, S;                     /* minibatches in flight here; send slots per kind */
    rt_stash stash;
    pd_optim opt;
    float *grads, *opt_state, *buffers, *scratch, *dacts, *logits;
    float **acts, **in, **dout;   /* D each */
    float **act_send, **grad_send;/* S each */
    MPI_Request *act_req, *grad_req;
    int *labels;
    pd_data train, test;
    int64_t updates;
    rt_stage_stats stats;
    /* last stage: loss bookkeeping */
    double loss_sum, last_loss;
    int64_t loss_n, done_steps;
    double t_log, t0;
    int64_t per_epoch, total;
} ex_t;

static int tag_of(int kind, int64_t mb) { return kind + 2 * (int)(mb % 16384); }

/* Waits for a request without spinning a core: a rank waiting for its neighbour must leave the
 * CPU to the ranks that compute (there may be more ranks than cores). Polls, then naps. */
static void wait_req(MPI_Request *r) {
    int done = 0;
    for (long spins = 0;; spins++) {
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (done) return;
        if (spins > 64) {
            struct timespec nap = {0, 20000}; /* 20 us */
            nanosleep(&nap, NULL);
        }
    }
}

static float *send_slot(float **bufs, MPI_Request *req, int S, int64_t mb, double *wait_ms) {
    int i = (int)(mb % S);
    if (req[i] != MPI_REQUEST_NULL) {
        double t = rt_now();
        wait_req(&req[i]);
        *wait_ms += 1e3 * (rt_now() - t);
    }
    return bufs[i];
}

static void recv_into(float *buf, int64_t n, int peer, int tag, double *wait_ms) {
    double t = rt_now();
    MPI_Request r;
    MPI_Irecv(buf, (int)n, MPI_FLOAT, peer, tag, MPI_COMM_WORLD, &r);
    wait_req(&r);
    *wait_ms += 1e3 * (rt_now() - t);
}

static void labels_from_tail(int *labels, const float *tail, int B) {
    for (int b = 0; b < B; b++) labels[b] = (int)tail[b];
}

static void progress(ex_t *e, int epoch, int64_t local, int force) {
    int64_t since = e->loss_n;
    if (!since || (!force && since < e->a->log_every)) return;
    double now = rt_now();
    e->last_loss = e->loss_sum / (double)since;
    printf("epoch %d step %lld/%lld loss %.4f samples/s %.1f\n", epoch + 1, (long long)local,
           (long long)e->per_epoch, e->last_loss,
           (double)since * e->B / (now - e->t_log > 1e-9 ? now - e->t_log : 1e-9));
    fflush(stdout);
    e->loss_sum = 0;
    e->loss_n = 0;
    e->t_log = now;
}

static void forward(ex_t *e, int64_t mb, int epoch, int64_t base) {
    const pdrt_stage *st = e->st;
    int d = (int)(mb % e->D);
    float *in = e->in[d];
    double t = rt_now(), wait0 = e->stats.wait_ms; /* data loading counts as forward */
    if (e->first) {
        int got = pd_data_batch(in, e->labels, &e->train, epoch, mb, e->B, e->a->shuffle, e->a->seed);
        RT_CHECK(got == e->B);
        for (int b = 0; b < e->B; b++) in[st->in_floats + b] = (float)e->labels[b];
    }
    float *w = rt_stash_for_forward(&e->stash, mb);
    float *out = e->last ? e->logits
                         : send_slot(e->act_send, e->act_req, e->S, mb, &e->stats.wait_ms);
    t += 1e-3 * (e->stats.wait_ms - wait0); /* waiting for a send slot is not compute */
    st->forward(out, e->acts[d], e->scratch, e->buffers, w, in, 1, e->a->seed, base + mb);
    if (e->last) {
        labels_from_tail(e->labels, in + st->in_floats, e->B);
        float loss = softmax_cross_entropy(e->dout[d], e->logits, e->labels, e->B, st->classes);
        if (loss != loss) rt_fail(__FILE__, __LINE__, "loss is NaN at step %lld", (long long)(base + mb));
        e->loss_sum += loss;
        e->loss_n++;
    } else {
        memcpy(out + st->out_floats, in + st->in_floats, (size_t)e->B * sizeof(float));
    }
    e->stats.fwd_ms += 1e3 * (rt_now() - t);
}

static void backward(ex_t *e, int64_t mb) {
    const pdrt_stage *st = e->st;
    int d = (int)(mb % e->D);
    float *din = e->first ? NULL
                          : send_slot(e->grad_send, e->grad_req, e->S, mb, &e->stats.wait_ms);
    double t = rt_now();
    float *w = rt_stash_for_backward(&e->stash, mb);
    st->backward(din, e->grads, e->dacts, e->scratch, e->dout[d], e->acts[d], w, e->in[d]);
    e->stats.bwd_ms += 1e3 * (rt_now() - t);
}

static void step(ex_t *e) {
    double t = rt_now();
    float *w = rt_stash_begin_update(&e->stash);
    e->updates++;
    pd_optim_step(w, e->opt_state, e->grads, &e->opt, e->updates, (size_t)e->st->n_params);
    e->stats.step_ms += 1e3 * (rt_now() - t);
}

static void run_epoch(ex_t *e, const pd_schedule *s, int epoch, int64_t base) {
    const pd_rank_schedule *rs = &s->ranks[e->rank];
    const pdrt_stage *st = e->st;
    for (int i = 0; i < rs->n; i++) {
        const pd_action *a = &rs->a[i];
        int d = a->mb >= 0 ? (int)(a->mb % e->D) : 0;
        switch (a->kind) {
        case PD_A_RECV_ACT:
            recv_into(e->in[d], st->in_floats + e->B, a->peer, tag_of(0, a->mb), &e->stats.wait_ms);
            break;
        case PD_A_FORWARD: forward(e, a->mb, epoch, base); break;
        case PD_A_SEND_ACT: {
            int j = (int)(a->mb % e->S);
            MPI_Isend(e->act_send[j], (int)(st->out_floats + e->B), MPI_FLOAT, a->peer,
                      tag_of(0, a->mb), MPI_COMM_WORLD, &e->act_req[j]);
            break;
        }
        case PD_A_RECV_GRAD:
            recv_into(e->dout[d], st->out_floats, a->peer, tag_of(1, a->mb), &e->stats.wait_ms);
            break;
        case PD_A_BACKWARD: backward(e, a->mb); break;
        case PD_A_SEND_GRAD: {
            int j = (int)(a->mb % e->S);
            MPI_Isend(e->grad_send[j], (int)st->in_floats, MPI_FLOAT, a->peer, tag_of(1, a->mb),
                      MPI_COMM_WORLD, &e->grad_req[j]);
            break;
        }
        case PD_A_STEP:
            step(e);
            e->stats.steps++;
            if (e->last) {
                e->done_steps++;
                progress(e, epoch, a->mb + 1, 0);
            }
            break;
        case PD_A_FLUSH:
        case PD_A_ALLREDUCE:
        default:
            rt_fail(__FILE__, __LINE__, "schedule action %s is not supported by this runtime",
                    pd_action_name(a->kind));
        }
    }
    double t = rt_now();
    for (int i = 0; i < e->S; i++) {
        if (e->act_req[i] != MPI_REQUEST_NULL) wait_req(&e->act_req[i]);
        if (e->grad_req[i] != MPI_REQUEST_NULL) wait_req(&e->grad_req[i]);
    }
    e->stats.wait_ms += 1e3 * (rt_now() - t);
    if (e->last) progress(e, epoch, s->steps, 1);
}

/* Forward-only pass over the test set through the pipeline; the last stage counts. Returns the
 * accuracy on every rank. */
static double evaluate(ex_t *e) {
    const pdrt_stage *st = e->st;
    int64_t nb = 0, n_test = 0;
    if (e->first) { nb = pd_data_batches(&e->test, e->B, 0); n_test = e->test.n; }
    MPI_Bcast(&nb, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(&n_test, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    float *in = e->in[0], *out = e->last ? e->logits : e->act_send[0];
    float *w = rt_stash_newest(&e->stash);
    int64_t correct = 0;
    for (int64_t t = 0; t < nb; t++) {
        if (e->first) {
            memset(in, 0, (size_t)(st->in_floats + e->B) * sizeof(float));
            int got = pd_data_batch(in, e->labels, &e->test, 0, t, e->B, 0, e->a->seed);
            for (int b = 0; b < e->B; b++) in[st->in_floats + b] = b < got ? (float)e->labels[b] : -1;
        } else {
            double ignored = 0;
            recv_into(in, st->in_floats + e->B, st->index - 1, 0, &ignored);
        }
        st->forward(out, e->acts[0], e->scratch, e->buffers, w, in, 0, e->a->seed, -1);
        if (e->last) {
            int got = 0;
            while (got < e->B && in[st->in_floats + got] >= 0) got++;
            labels_from_tail(e->labels, in + st->in_floats, got);
            correct += count_correct(e->logits, e->labels, got, st->classes);
        } else {
            memcpy(out + st->out_floats, in + st->in_floats, (size_t)e->B * sizeof(float));
            MPI_Request r;
            MPI_Isend(out, (int)(st->out_floats + e->B), MPI_FLOAT, st->index + 1, 0, MPI_COMM_WORLD, &r);
            wait_req(&r);
        }
    }
    double acc = e->last && n_test ? (double)correct / (double)n_test : 0;
    MPI_Bcast(&acc, 1, MPI_DOUBLE, e->n - 1, MPI_COMM_WORLD);
    return acc;
}

static void ex_alloc(ex_t *e) {
    const pdrt_stage *st = e->st;
    int w = st->warmup[st->index];
    e->D = w + 1;
    int nv = st->weight_versions > e->D ? st->weight_versions : e->D;
    int max_w = 0;
    for (int k = 0; k < st->n_stages; k++) max_w = st->warmup[k] > max_w ? st->warmup[k] : max_w;
    e->S = max_w + 1;
    rt_stash_init(&e->stash, nv, st->n_params, e->D);
    e->grads = rt_alloc((size_t)st->n_params);
    e->opt_state = rt_alloc(pd_optim_state_floats(&e->opt, (size_t)st->n_params));
    e->buffers = rt_alloc((size_t)st->n_buffers);
    e->scratch = rt_alloc((size_t)rt_scratch_floats(st));
    e->dacts = rt_alloc((size_t)st->n_acts);
    e->logits = rt_alloc((size_t)st->out_floats);
    e->labels = calloc((size_t)e->B, sizeof(int));
    e->acts = calloc((size_t)e->D, sizeof(float *));
    e->in = calloc((size_t)e->D, sizeof(float *));
    e->dout = calloc((size_t)e->D, sizeof(float *));
    e->act_send = calloc((size_t)e->S, sizeof(float *));
    e->grad_send = calloc((size_t)e->S, sizeof(float *));
    e->act_req = malloc((size_t)e->S * sizeof(MPI_Request));
    e->grad_req = malloc((size_t)e->S * sizeof(MPI_Request));
    RT_CHECK(e->labels && e->acts && e->in && e->dout && e->act_send && e->grad_send &&
             e->act_req && e->grad_req);
    for (int i = 0; i < e->D; i++) {
        e->acts[i] = rt_alloc((size_t)st->n_acts);
        e->in[i] = rt_alloc((size_t)(st->in_floats + e->B));
        e->dout[i] = rt_alloc((size_t)st->out_floats);
    }
    for (int i = 0; i < e->S; i++) {
        e->act_send[i] = rt_alloc((size_t)(st->out_floats + e->B));
        e->grad_send[i] = rt_alloc((size_t)st->in_floats);
        e->act_req[i] = e->grad_req[i] = MPI_REQUEST_NULL;
    }
}

static void ex_free(ex_t *e) {
    for (int i = 0; i < e->D; i++) { free(e->acts[i]); free(e->in[i]); free(e->dout[i]); }
    for (int i = 0; i < e->S; i++) { free(e->act_send[i]); free(e->grad_send[i]); }
    free(e->acts); free(e->in); free(e->dout); free(e->act_send); free(e->grad_send);
    free(e->act_req); free(e->grad_req); free(e->labels);
    free(e->grads); free(e->opt_state); free(e->buffers); free(e->scratch); free(e->dacts);
    free(e->logits);
    rt_stash_free(&e->stash);
    pd_data_free(&e->train);
    pd_data_free(&e->test);
}

int pdrt_main(int argc, char **argv, const pdrt_stage *st) {
    rt_args a;
    int pr = rt_args_parse(&a, argc, argv, RT_PIPELINE);
    if (pr) return pr > 0 ? 0 : 2;
    MPI_Init(&argc, &argv);
    ex_t e;
    memset(&e, 0, sizeof e);
    MPI_Comm_rank(MPI_COMM_WORLD, &e.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &e.n);
    rt_set_identity(e.rank, st->index, 1);
    if (st->abi != PDRT_ABI) rt_fail(__FILE__, __LINE__, "stage built for runtime ABI %d, not %d", st->abi, PDRT_ABI);
    if (a.mode != RT_PIPELINE)
        rt_fail(__FILE__, __LINE__, "--single/--emulate run the local binary (pdlaunch --single)");
    if (e.n != st->n_stages || e.rank != st->index)
        rt_fail(__FILE__, __LINE__, "this binary is stage %d of %d but runs as MPI rank %d of %d",
                st->index, st->n_stages, e.rank, e.n);
    e.st = st;
    e.a = &a;
    e.B = st->batch;
    e.first = st->index == 0;
    e.last = st->index == st->n_stages - 1;
    rt_optim_from(&e.opt, st, &a);
    ex_alloc(&e);
    st->init(rt_stash_newest(&e.stash), e.buffers, a.seed);
    if (a.init_dir[0]) rt_weights_load(a.init_dir, st, rt_stash_newest(&e.stash), e.buffers);
    if (e.first) {
        rt_data_open(&e.train, &e.test, &a, st);
        e.per_epoch = pd_data_batches(&e.train, e.B, 1);
        if (e.per_epoch < 1) rt_fail(__FILE__, __LINE__, "the training set holds less than one minibatch");
    }
    MPI_Bcast(&e.per_epoch, 1, MPI_INT64_T, 0, MPI_COMM_WORLD);
    int epochs = a.epochs > 0 ? a.epochs : (st->epochs > 0 ? st->epochs : 1);
    e.total = a.steps > 0 ? a.steps : (int64_t)epochs * e.per_epoch;

    MPI_Barrier(MPI_COMM_WORLD);
    e.t0 = e.t_log = rt_now();
    double train_s = 0, acc = -1, time_to_target = -1;
    int64_t done = 0;
    int epoch = 0, stop = 0;
    while (done < e.total && !stop) {
        int64_t n = e.total - done < e.per_epoch ? e.total - done : e.per_epoch;
        pd_schedule *s = pd_schedule_1f1b(st->n_stages, st->warmup, (int)n);
        RT_CHECK(s != NULL);
        double t = rt_now();
        run_epoch(&e, s, epoch, done);
        train_s += rt_now() - t;
        pd_schedule_free(s);
        done += n;
        epoch++;
        if (a.eval && (a.target_accuracy >= 0 || done == e.total || n == e.per_epoch)) {
            acc = evaluate(&e);
            if (e.last) {
                printf("epoch %d test_accuracy %.4f elapsed %.1f s\n", epoch, acc, rt_now() - e.t0);
                fflush(stdout);
            }
            if (a.target_accuracy >= 0 && acc >= a.target_accuracy) {
                time_to_target = rt_now() - e.t0;
                stop = 1;
            }
        }
    }
    double wall = rt_now() - e.t0;
    if (a.save_dir[0]) rt_weights_save(a.save_dir, st, rt_stash_newest(&e.stash), e.buffers);

    double mine[7] = {e.stats.fwd_ms, e.stats.bwd_ms, e.stats.step_ms, e.stats.wait_ms,
                      (double)e.stats.steps, st->predicted_ms, st->predicted_compute_ms};
    double *all = e.last ? calloc((size_t)e.n * 7, sizeof(double)) : NULL;
    if (e.last) RT_CHECK(all != NULL);
    MPI_Gather(mine, 7, MPI_DOUBLE, all, 7, MPI_DOUBLE, e.n - 1, MPI_COMM_WORLD);
    if (e.last) {
        rt_stage_stats *ss = calloc((size_t)e.n, sizeof *ss);
        RT_CHECK(ss != NULL);
        for (int k = 0; k < e.n; k++) {
            double *v = all + 7 * k;
            ss[k] = (rt_stage_stats){v[0], v[1], v[2], v[3], (int64_t)v[4], v[5], v[6]};
        }
        rt_summary sum = {st->model, "pipeline", st->schedule, e.n, e.B, done, epoch,
                          e.last_loss, a.eval ? acc : -1, (double)done * e.B / train_s, wall,
                          train_s, a.target_accuracy, time_to_target, ss};
        rt_summary_print(&sum);
        rt_summary_write(a.run_dir, &sum);
        free(ss);
        free(all);
    }
    ex_free(&e);
    MPI_Finalize();
    return 0;
}
