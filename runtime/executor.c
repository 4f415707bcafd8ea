/* executor.c: one pipeline stage replica per MPI rank. Runs the schedule IR (schedule.c) action
 * by action, epoch by epoch: forwards with the newest weights (or, under vertical sync, the
 * version stage 0 used; under 2bw, batch b's the one after update b - 2), backwards with the stashed version the forward used (stash.c), gradients
 * accumulated until the update's step, the replicas' all-reduce in a fixed order (gathered to the
 * stage's first replica, summed in rank order, broadcast), optimizer steps on the newest version
 * with the mean gradient of the update's minibatches, nonblocking sends through rings of send
 * buffers whose size the deadlock checker assumed (over runtime/transport's MPI transport); under
 * zb-h1 and zb-h2 each backward in two parts, B (input gradient, sent at once) and W (weight
 * gradients, later), with the layers' gradients kept per minibatch in between; with --recompute
 * one activation buffer, each backward running its minibatch's forward (full) or its cheap
 * layers' forward (selective) again first (executor_recompute.c); then a
 * forward-only pass over the test set (first replicas only) at epoch ends and every --eval-every
 * steps, progress lines, the summary, curves.svg and trace.json (written by the last stage's
 * first replica).
 * Labels travel with the activations: an activation message is the output pack followed by the
 * minibatch's labels as floats (B of them, or B * T next-token targets for a token stream); a gradient message is the input pack's gradient followed by one
 * float, 1 when the minibatch is dropped (--skip-nonfinite: a non-finite loss or gradient here or
 * downstream). With checkpoints or --eval-every, an epoch runs as segments that end at their
 * multiples, each a whole schedule (so the pipeline drains at every checkpoint and evaluation), and every rank writes its own
 * checkpoint file after each segment ends on a multiple of N or an epoch end (checkpoint.c). */
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/ops.h"
#include "optim.h"
#include "rt.h"
#include "runtime/schedule/schedule.h"
#include "runtime/transport/transport.h"

#include "executor.h"

/* 1 when x[0..n) holds a NaN or an infinity: x * 0 is 0 for finite x and NaN otherwise. Sixteen
 * independent sums, so that the loop vectorises (one running sum is a chain of dependent adds,
 * about 4x slower on a 458,000-float stage). */
static int any_nonfinite(const float *x, int64_t n) {
    float z[16] = {0};
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        for (int j = 0; j < 16; j++) z[j] += x[k + j] * 0.0f;
    float s = 0;
    for (int j = 0; j < 16; j++) s += z[j];
    for (; k < n; k++) s += x[k] * 0.0f;
    return s != 0.0f;
}

/* The MPI tag of a message of minibatch mb over link `edge` (pdrt_chunk_tag). */
int pdrt_ex_tag(const ex_t *e, int kind, int64_t mb, int edge) {
    return pdrt_chunk_tag(kind, mb, edge, e->chunks);
}

/* This replica's own running count of minibatch mb (its minibatches are j, j+R, ...): indexes
 * the in-flight buffers, the stash and the send rings. */
static int64_t lidx(const ex_t *e, int64_t mb) { return mb / e->R; }

/* The link to peer, opened on first use (the MPI transport's setup involves no other rank). */
static pdrt_link *link_to(ex_t *e, int peer) {
    pdrt_link *k = &e->links[peer];
    if (!k->t) {
        pdrt_link_env env = {.me = e->rank, .lo = e->rank < peer ? e->rank : peer,
                             .hi = e->rank < peer ? peer : e->rank, .comm = MPI_COMM_WORLD,
                             .ctl = MPI_COMM_NULL, .slots = 2 * e->S};
        pdrt_link_open(k, &pdrt_transport_mpi, peer, &env);
    }
    return k;
}

pdrt_link *pdrt_ex_link(ex_t *e, int peer) { return link_to(e, peer); }

/* Waits until the links' send slot q no longer holds a pending send (watched: the op names the
 * peer whose receive it waits for). */
static void slot_wait(ex_t *e, int q) {
    for (int p = 0; p < e->n; p++)
        if (e->links[p].t) {
            pdrt_watch(q % 2 ? "a send of gradients to complete" : "a send of activations to complete", p, -1);
            e->links[p].t->send_wait(&e->links[p], q);
            pdrt_unwatch();
        }
}

/* Send slot l % S of kind (0 activations, 1 gradients), free: the buffer to fill. */
static float *send_slot(ex_t *e, int kind, int64_t l, double *wait_ms) {
    int i = (int)(l % e->S);
    double t = pdrt_now();
    slot_wait(e, 2 * i + kind);
    *wait_ms += 1e3 * (pdrt_now() - t);
    return kind ? e->grad_send[i] : e->act_send[i];
}

/* Receives what (watched) of minibatch mb (< 0: none) from peer. */
static void recv_into(ex_t *e, float *buf, int64_t n, int peer, int tag, const char *what,
                      int64_t mb, double *wait_ms) {
    double t = pdrt_now();
    pdrt_link *k = link_to(e, peer);
    pdrt_watch(what, peer, mb);
    k->t->recv(k, buf, n, tag);
    pdrt_unwatch();
    *wait_ms += 1e3 * (pdrt_now() - t);
}

/* Waits for every pending send of the links. */
static void sends_wait(ex_t *e) {
    for (int q = 0; q < 2 * e->S; q++) slot_wait(e, q);
}

static void labels_from_tail(int *labels, const float *tail, int B) {
    for (int b = 0; b < B; b++) labels[b] = (int)tail[b];
}

static void progress(ex_t *e, int epoch, int64_t local, int force) {
    pdrt_progress(&e->lg, epoch, local, e->per_epoch, e->B, e->a->log_every, force);
}

static void forward(ex_t *e, int64_t mb, int epoch, int64_t base, int64_t off) {
    const pdrt_stage *st = e->st;
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    float *in = e->in[d];
    double t = pdrt_now(), wait0 = e->stats.wait_ms, data_ms = 0; /* data loading counts as forward */
    if (e->first) {
        double td = pdrt_now();
        int got = pd_data_batch(in, e->labels, &e->train, epoch, off + mb, e->B, e->a->shuffle, e->a->seed);
        PDRT_CHECK(got == e->B);
        if (e->inj_kind == 1 && base + mb == e->inj_step) in[0] = INFINITY; /* test-only */
        for (int b = 0; b < e->NL; b++) in[st->in_floats + b] = (float)e->labels[b];
        data_ms = 1e3 * (pdrt_now() - td);
    }
    float *w = pdrt_rules_forward_weights(&e->ru, &e->stash, l, mb, e->epoch_base_updates);
    float *out = e->last ? e->logits
                         : send_slot(e, 0, l, &e->stats.wait_ms);
    t += 1e-3 * (e->stats.wait_ms - wait0); /* waiting for a send slot is not compute */
    if (e->buffers_before) memcpy(e->buffers_before, e->buffers, (size_t)st->n_buffers * sizeof(float));
    pdrt_laps_begin(&e->laps, 0);
    st->forward(out, e->acts[d], e->scratch, e->buffers, w, in, 1, e->a->seed, base + mb);
    pdrt_ex_after_forward(e, mb, d);
    /* a non-finite minibatch must not poison the running statistics */
    if (e->buffers_before && any_nonfinite(e->buffers, st->n_buffers))
        memcpy(e->buffers, e->buffers_before, (size_t)st->n_buffers * sizeof(float));
    if (e->last) {
        labels_from_tail(e->labels, in + st->in_floats, e->NL);
        if (e->inj_kind == 3 && base + mb == e->inj_step) e->logits[0] = NAN; /* test-only */
        float loss = pdrt_softmax_cross_entropy(e->dout[d], e->logits, e->labels, e->NL, st->classes);
        e->dout[d][st->out_floats] = 0; /* the drop flag */
        if (!isfinite(loss)) {
            if (!e->a->skip_nonfinite)
                PDRT_FAIL("stage %d: the loss is %s at step %lld (after layer %s); "
                        "--skip-nonfinite drops such minibatches", st->index, isnan(loss) ? "NaN" : "Inf",
                        (long long)(base + mb), st->n_tensors ? st->tensors[st->n_tensors - 1].layer : "?");
            e->dout[d][st->out_floats] = 1;
        } else {
            e->lg.loss_sum += loss;
            e->lg.loss_n++;
        }
    } else {
        memcpy(out + st->out_floats, in + st->in_floats, (size_t)e->NL * sizeof(float));
    }
    double ms = 1e3 * (pdrt_now() - t);
    e->stats.fwd_ms += ms;
    pdrt_laps_end(&e->laps, ms, data_ms);
}

/* The first parameter tensor of st whose gradient holds a NaN or Inf, or -1. Cheap: x * 0 is 0
 * for every finite x and NaN otherwise, so one vectorisable sum per tensor. */
static int nonfinite_tensor(const pdrt_stage *st, const float *g) {
    for (int i = 0; i < st->n_tensors; i++) {
        const pdrt_tensor *t = &st->tensors[i];
        if (t->is_buffer) continue;
        if (any_nonfinite(g + t->offset, t->numel)) return i;
    }
    return -1;
}

/* Adds this minibatch's parameter gradient g to the update's sum unless it is dropped (drop:
 * flagged downstream; or a non-finite gradient, which fails the run without --skip-nonfinite).
 * Returns whether it was dropped. */
static int accumulate(ex_t *e, float *g, int64_t mb, int64_t base, int drop) {
    const pdrt_stage *st = e->st;
    if (e->inj_kind == 2 && e->inj_stage == st->index && base + mb == e->inj_step && st->n_params)
        g[0] = NAN;
    int bad = nonfinite_tensor(st, g);
    if (bad >= 0 && !e->a->skip_nonfinite)
        PDRT_FAIL("stage %d: the gradient of layer %s (%s) is not finite at step %lld; "
                "--skip-nonfinite drops such minibatches", st->index, st->tensors[bad].layer,
                st->tensors[bad].param, (long long)(base + mb));
    drop = drop || bad >= 0;
    /* accumulate until the update's step; the count rides in the blob's last float */
    int64_t np = st->n_params;
    if (drop) {
        e->skipped++;
    } else {
        for (int64_t i = 0; i < np; i++) e->acc[i] += g[i];
        e->acc[np] += 1.0f;
    }
    return drop;
}

static void backward(ex_t *e, int64_t mb, int64_t base) {
    const pdrt_stage *st = e->st;
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    float *din = e->first ? NULL
                          : send_slot(e, 1, l, &e->stats.wait_ms);
    double t = pdrt_now();
    float *w = pdrt_stash_for_backward(&e->stash, l);
    double again_ms;
    float *acts = pdrt_ex_acts_for_backward(e, mb, d, w, base, &again_ms);
    e->backwards++;
    pdrt_laps_begin(&e->laps, 1);
    st->backward(din, e->grads, e->dacts, e->scratch, e->dout[d], acts, w, e->in[d]);
    int drop = accumulate(e, e->grads, mb, base, e->dout[d][st->out_floats] != 0);
    if (din) din[st->in_floats] = drop ? 1.0f : 0.0f;
    double ms = 1e3 * (pdrt_now() - t);
    e->stats.bwd_ms += ms;
    pdrt_laps_end(&e->laps, ms - again_ms, 0);
}

/* zb-h1, zb-h2: the input-gradient part of mb's backward (B), sent upstream at once with the
 * drop flag from downstream; the layers' gradients stay in the minibatch's dacts, and the
 * gradients of weights whose ops do not split in its gradient blob, for its W. */
static void backward_input(ex_t *e, int64_t mb, int64_t base) {
    const pdrt_stage *st = e->st;
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    float *din = e->first ? NULL : send_slot(e, 1, l, &e->stats.wait_ms);
    double t = pdrt_now(), again_ms;
    float *w = pdrt_stash_for_backward_input(&e->stash, l);
    float *acts = pdrt_ex_acts_for_backward(e, mb, d, w, base, &again_ms);
    e->backwards++;
    st->backward_input(din, e->grads_of[d], e->dacts_of[d], e->scratch, e->dout[d], acts, w,
                       e->in[d]);
    if (din) din[st->in_floats] = e->dout[d][st->out_floats];
    e->stats.bwd_ms += 1e3 * (pdrt_now() - t);
}

/* zb-h1, zb-h2: the weight-gradient part of mb's backward (W), then the accumulation. A
 * non-finite weight gradient here drops the minibatch on this stage only: its input gradient
 * has gone upstream already. */
static void backward_weight(ex_t *e, int64_t mb, int64_t base) {
    const pdrt_stage *st = e->st;
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    double t = pdrt_now(), again_ms;
    float *w = pdrt_stash_for_backward(&e->stash, l);
    float *acts = pdrt_ex_acts_for_backward(e, mb, d, w, base, &again_ms);
    e->backwards++;
    st->backward_weight(NULL, e->grads_of[d], e->dacts_of[d], e->scratch, e->dout[d], acts, w,
                        e->in[d]);
    accumulate(e, e->grads_of[d], mb, base, e->dout[d][st->out_floats] != 0);
    e->stats.bwd_ms += 1e3 * (pdrt_now() - t);
}

/* The replicas' sum of their accumulated gradients (and counts), in a fixed order: gathered to
 * the stage's first replica, summed from zero in rank order, broadcast. Bitwise the same on every
 * replica and for every run. */
static void allreduce(ex_t *e) {
    double t = pdrt_now();
    int64_t n1 = e->st->n_params + 1;
    PDRT_CHECK(n1 < (int64_t)1 << 31);
    MPI_Request r;
    pdrt_watch("the gradient all-reduce with the stage's replicas", -1, -1);
    MPI_Igather(e->acc, (int)n1, MPI_FLOAT, e->gather, (int)n1, MPI_FLOAT, 0, e->stage_comm, &r);
    pdrt_wait_req(&r);
    if (e->j == 0) {
        memset(e->acc, 0, (size_t)n1 * sizeof(float));
        for (int q = 0; q < e->R; q++) {
            const float *b = e->gather + (size_t)q * (size_t)n1;
            for (int64_t i = 0; i < n1; i++) e->acc[i] += b[i];
        }
    }
    MPI_Ibcast(e->acc, (int)n1, MPI_FLOAT, 0, e->stage_comm, &r);
    pdrt_wait_req(&r);
    pdrt_unwatch();
    e->stats.wait_ms += 1e3 * (pdrt_now() - t); /* communication, not compute */
}

/* Replicas compare their newest weights with the first replica's, bitwise. */
static void check_replicas(ex_t *e) {
    int64_t np = e->st->n_params;
    float *w = pdrt_stash_newest(&e->stash);
    float *ref = e->gather; /* R * (np + 1) floats: room for np */
    if (e->j == 0) memcpy(ref, w, (size_t)np * sizeof(float));
    pdrt_watch("the replicas' weight comparison (--check-replicas)", -1, -1);
    MPI_Bcast(ref, (int)np, MPI_FLOAT, 0, e->stage_comm);
    pdrt_unwatch();
    if (memcmp(ref, w, (size_t)np * sizeof(float)))
        PDRT_FAIL("replica %d of stage %d holds different weights than replica 0 "
                "after update %lld", e->j, e->st->index, (long long)e->updates);
    e->replica_checks++;
}

double pdrt_ex_clip_prepare(ex_t *e) {
    int64_t np = e->st->n_params;
    float count = e->acc[np];
    if (count > 1.0f) {
        float inv = 1.0f / count;
        for (int64_t i = 0; i < np; i++) e->acc[i] *= inv;
        e->acc[np] = 1.0f;
    }
    return count > 0.0f ? pdrt_ties_sq_norm(e->st, e->acc) : 0.0;
}

/* The optimizer step with the mean gradient of the update's minibatches. */
static void step(ex_t *e) {
    double t = pdrt_now();
    int64_t np = e->st->n_params;
    float count = e->acc[np];
    PDRT_CHECK(count >= 1.0f || (e->a->skip_nonfinite && count == 0.0f));
    /* the tied copies' summed gradients (interleaved: every chunk's, before its first step) */
    if (e->st->n_ties && e->chunks <= 1) pdrt_ex_ties_grads(e);
    if (e->opt.clip_grad_norm > 0) { /* by the global norm over every stage */
        float c = e->chunks > 1 ? e->clip_coef /* pdrt_ex_chunks_before_steps */
                                : pdrt_global_clip_coef(pdrt_ex_clip_prepare(e), e->j == 0, e->n,
                                                        e->opt.clip_grad_norm);
        for (int64_t i = 0; i < np; i++) e->acc[i] *= c;
        count = e->acc[np]; /* the mean's: 1 (or 0) */
    }
    if (count == 0.0f) { /* every minibatch of this update was dropped: the weights stay */
        pdrt_stash_begin_update(&e->stash);
        e->updates++;
        e->stats.step_ms += 1e3 * (pdrt_now() - t);
        return;
    }
    if (count != 1.0f) {
        float inv = 1.0f / count;
        for (int64_t i = 0; i < np; i++) e->acc[i] *= inv;
    }
    float *w = pdrt_stash_begin_update(&e->stash);
    e->updates++;
    pd_optim_step(w, e->opt_state, e->acc, &e->opt, e->updates, (size_t)np);
    memset(e->acc, 0, (size_t)(np + 1) * sizeof(float));
    e->stats.step_ms += 1e3 * (pdrt_now() - t);
    if (e->a->check_replicas && e->R > 1) check_replicas(e);
}

/* Runs one schedule: minibatches off .. off + steps - 1 of the epoch, base + mb being their
 * global step numbers. */
void pdrt_ex_run_epoch(ex_t *e0, const pd_schedule *s, int epoch, int64_t base, int64_t off) {
    const pd_rank_schedule *rs = &s->ranks[e0->rank];
    int V = s->chunks > 1 ? s->chunks : 1; /* interleaved: e0[c] is chunk c (stage c p + rank) */
    PDRT_CHECK(V > 1 || rs->stage == e0->st->index);
    ex_t *out = e0; /* the chunk that logs progress: the last stage's, where there is one */
    for (int c = 0; c < V; c++) {
        e0[c].epoch_base_updates = e0[c].updates;
        e0[c].acts_mb = -1; /* minibatch numbers start again; evaluation used the working buffer */
        if (e0[c].last) out = &e0[c];
    }
    for (int i = 0; i < rs->n; i++) {
        const pd_action *a = &rs->a[i];
        ex_t *e = V > 1 ? &e0[a->stage / s->n_ranks] : e0;
        const pdrt_stage *st = e->st;
        int64_t l = a->mb >= 0 ? lidx(e, a->mb) : 0;
        int d = (int)(l % e->D);
        double t0 = pdrt_now();
        int tid = 0;
        switch (a->kind) {
        case PD_A_RECV_ACT:
            recv_into(e, e->in[d], st->in_floats + e->NL, a->peer, pdrt_ex_tag(e, 0, a->mb, e->edge_up), "a receive of activations",
                      a->mb, &e->stats.wait_ms);
            tid = 1;
            break;
        case PD_A_FORWARD: forward(e, a->mb, epoch, base, off); break;
        case PD_A_SEND_ACT: {
            int k = (int)(l % e->S);
            pdrt_link *lk = link_to(e, a->peer);
            lk->t->send(lk, 2 * k, e->act_send[k], st->out_floats + e->NL, pdrt_ex_tag(e, 0, a->mb, e->edge_down));
            tid = 1;
            break;
        }
        case PD_A_RECV_GRAD:
            recv_into(e, e->dout[d], st->out_floats + 1, a->peer, pdrt_ex_tag(e, 1, a->mb, e->edge_down), "a receive of gradients",
                      a->mb, &e->stats.wait_ms);
            tid = 1;
            break;
        case PD_A_BACKWARD: backward(e, a->mb, base); break;
        case PD_A_BACKWARD_INPUT: backward_input(e, a->mb, base); break;
        case PD_A_BACKWARD_WEIGHT: backward_weight(e, a->mb, base); break;
        case PD_A_SEND_GRAD: {
            int k = (int)(l % e->S);
            pdrt_link *lk = link_to(e, a->peer);
            lk->t->send(lk, 2 * k + 1, e->grad_send[k], st->in_floats + 1, pdrt_ex_tag(e, 1, a->mb, e->edge_up));
            tid = 1;
            break;
        }
        case PD_A_ALLREDUCE: allreduce(e); break;
        case PD_A_STEP: /* interleaved: every chunk's STEP in chunk order, after its batch */
            if (V > 1 && e == e0) pdrt_ex_chunks_before_steps(e0, V); /* ties, clipping */
            step(e);
            if (e->a->check_replicas && V == 1 && st->n_ties) pdrt_ex_ties_check(e);
            if (e->a->check_replicas && V > 1 && e == &e0[V - 1]) pdrt_ex_chunks_ties_check(e0, V);
            e->stats.steps++;
            if (e->rank == e->out_rank) {
                e->done_steps++;
                progress(e, epoch, off + a->mb + 1, 0);
            }
            break;
        case PD_A_FLUSH: {
            for (int c = 0; c < V; c++) sends_wait(&e0[c]);
            e->stats.wait_ms += 1e3 * (pdrt_now() - t0);
            tid = 1;
            break;
        }
        default:
            PDRT_FAIL("schedule action %s is not supported by this runtime",
                    pd_action_name(a->kind));
        }
        pdrt_trace_add(a->kind, a->mb, a->peer, tid + 2 * (V > 1 ? a->stage / s->n_ranks : 0),
                       t0, pdrt_now()); /* interleaved: two rows per chunk */
    }
    for (int c = 0; c < V; c++) {
        double t = pdrt_now();
        sends_wait(&e0[c]);
        e0[c].stats.wait_ms += 1e3 * (pdrt_now() - t);
    }
    if (out->rank == out->out_rank) progress(out, epoch, off + s->steps, 1);
}

/* Forward-only pass over the test set through the first replica of every stage; the last stage
 * counts and sums the loss. A stage sends through two activation slots in turn, so that it
 * computes minibatch t + 1 while the next stage computes t. Under plain data parallelism (one
 * stage, no running statistics, which are per replica) the replicas share the test set instead,
 * minibatch t on replica t mod R, and the first replica sums their counts and losses in rank order. Returns the accuracy on every rank;
 * e->val_loss gets the mean loss. */
static double evaluate(ex_t *e) {
    const pdrt_stage *st = e->st;
    int64_t nb, n_test;
    pdrt_eval_size(&nb, &n_test, e->a, &e->test, e->B, e->first);
    /* the replicas hold the same weights; not the same batch-norm statistics (each its own) */
    int share = st->n_stages == 1 && e->R > 1 && st->n_buffers == 0;
    if (e->j != 0 && !share) nb = 0;
    int slots = e->S >= 2 ? 2 : 1;
    float *in = e->in[0], *out = e->logits;
    float *w = pdrt_stash_newest(&e->stash);
    int64_t correct = 0;
    double loss_sum = 0;
    for (int64_t t = share ? e->j : 0; t < nb; t += share ? e->R : 1) {
        int q = (int)(t % slots);
        pdrt_link *k = e->last ? NULL : link_to(e, e->first_rank[st->index + 1]);
        if (k) { /* act_send[q] is the links' slot 2q: free once its last send completed */
            pdrt_watch("a send of test-set activations to complete", k->peer, t);
            k->t->send_wait(k, 2 * q);
            pdrt_unwatch();
            out = e->act_send[q];
        }
        if (e->first) {
            memset(in, 0, (size_t)(st->in_floats + e->NL) * sizeof(float));
            int got = pd_data_batch(in, e->labels, &e->test, 0, t, e->B, 0, e->a->seed) * e->tg;
            for (int b = 0; b < e->NL; b++) in[st->in_floats + b] = b < got ? (float)e->labels[b] : -1;
        } else {
            double ignored = 0;
            recv_into(e, in, st->in_floats + e->NL, e->first_rank[st->index - 1], 0,
                      "a receive of test-set activations", t, &ignored);
        }
        st->forward(out, e->acts[0], e->scratch, e->buffers, w, in, 0, e->a->seed, -1);
        if (e->last) {
            int got = 0;
            while (got < e->NL && in[st->in_floats + got] >= 0) got++; /* targets */
            labels_from_tail(e->labels, in + st->in_floats, got);
            correct += pdrt_count_correct(e->logits, e->labels, got, st->classes);
            if (got) /* dout[0] is free while the pipeline is drained */
                loss_sum += (double)got * pdrt_softmax_cross_entropy(e->dout[0], e->logits,
                                                                     e->labels, got, st->classes);
        } else {
            memcpy(out + st->out_floats, in + st->in_floats, (size_t)e->NL * sizeof(float));
            k->t->send(k, 2 * q, out, st->out_floats + e->NL, 0);
        }
    }
    if (!e->last) {
        pdrt_link *k = link_to(e, e->first_rank[st->index + 1]);
        pdrt_watch("a send of test-set activations to complete", k->peer, -1);
        for (int q = 0; q < slots; q++) k->t->send_wait(k, 2 * q);
        pdrt_unwatch();
    }
    if (share) { /* the replicas' counts and losses, summed in rank order */
        double mine[2] = {(double)correct, loss_sum}, *all = e->j == 0 ? calloc(2 * (size_t)e->R, sizeof(double)) : NULL;
        PDRT_CHECK(e->j != 0 || all != NULL);
        pdrt_watch("the replicas' test-set counts", -1, -1);
        MPI_Gather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, e->stage_comm);
        pdrt_unwatch();
        if (all) {
            correct = 0;
            loss_sum = 0;
            for (int r = 0; r < e->R; r++) {
                correct += (int64_t)all[2 * r];
                loss_sum += all[2 * r + 1];
            }
        }
        free(all);
    }
    return pdrt_eval_result(correct, loss_sum, n_test, e->tg, e->last, e->out_rank, &e->val_loss);
}

/* Buffers sized from the schedule of a full epoch (shorter epochs need no more). */
void pdrt_ex_alloc(ex_t *e, const pd_schedule *full) {
    const pdrt_stage *st = e->st;
    int in_flight = pdrt_in_flight(&full->ranks[e->rank]); /* or more, where the caller says */
    e->D = e->D > in_flight ? e->D : in_flight;
    int nv = pdrt_rules_versions(&e->ru, st, e->D);
    e->S = full->send_slots > 0 ? full->send_slots : 1;
    pdrt_stash_init(&e->stash, nv, st->n_params, e->D);
    e->acc = pdrt_alloc((size_t)st->n_params + 1);
    e->gather = pdrt_alloc(((size_t)st->n_params + 1) * (size_t)(e->j == 0 || e->a->check_replicas ? e->R : 1));
    e->grads = pdrt_alloc((size_t)st->n_params);
    e->opt_state = pdrt_alloc(pd_optim_state_floats(&e->opt, (size_t)st->n_params));
    e->buffers = pdrt_alloc((size_t)st->n_buffers);
    if (e->a->skip_nonfinite && st->n_buffers) e->buffers_before = pdrt_alloc((size_t)st->n_buffers);
    e->scratch = pdrt_alloc((size_t)pdrt_scratch_floats(st));
    e->dacts = pdrt_alloc((size_t)st->n_acts);
    e->logits = pdrt_alloc((size_t)st->out_floats);
    if (e->ru.split) { /* B and W: the gradients between them */
        if (!st->backward_input || !st->backward_weight)
            PDRT_FAIL("stage %d has no backward_input/backward_weight for %s: regenerate it "
                      "with this pdplan", st->index, full->name);
        e->dacts_of = calloc((size_t)e->D, sizeof(float *));
        e->grads_of = calloc((size_t)e->D, sizeof(float *));
        PDRT_CHECK(e->dacts_of && e->grads_of);
        for (int i = 0; i < e->D; i++) {
            e->dacts_of[i] = pdrt_alloc((size_t)st->n_acts);
            e->grads_of[i] = pdrt_alloc((size_t)st->n_params);
        }
    }
    e->labels = calloc((size_t)e->NL, sizeof(int));
    e->acts = calloc((size_t)e->D, sizeof(float *));
    e->in = calloc((size_t)e->D, sizeof(float *));
    e->dout = calloc((size_t)e->D, sizeof(float *));
    e->act_send = calloc((size_t)e->S, sizeof(float *));
    e->grad_send = calloc((size_t)e->S, sizeof(float *));
    e->links = calloc((size_t)e->n, sizeof *e->links);
    PDRT_CHECK(e->labels && e->acts && e->in && e->dout && e->act_send && e->grad_send && e->links);
    pdrt_ex_recompute_alloc(e);
    for (int i = 0; i < e->D; i++) {
        e->in[i] = pdrt_alloc((size_t)(st->in_floats + e->NL));
        e->dout[i] = pdrt_alloc((size_t)st->out_floats + 1); /* + the drop flag */
    }
    for (int i = 0; i < e->S; i++) {
        e->act_send[i] = pdrt_alloc((size_t)(st->out_floats + e->NL));
        e->grad_send[i] = pdrt_alloc((size_t)st->in_floats + 1);
    }
}

void pdrt_ex_free(ex_t *e) {
    pdrt_ex_recompute_free(e);
    for (int i = 0; i < e->D; i++) {
        free(e->in[i]);
        free(e->dout[i]);
    }
    for (int i = 0; e->dacts_of && i < e->D; i++) { free(e->dacts_of[i]); free(e->grads_of[i]); }
    free(e->dacts_of); free(e->grads_of);
    for (int i = 0; i < e->S; i++) { free(e->act_send[i]); free(e->grad_send[i]); }
    free(e->acts); free(e->in); free(e->dout); free(e->act_send); free(e->grad_send);
    for (int p = 0; p < e->n; p++) pdrt_link_close(&e->links[p]);
    free(e->links); free(e->labels);
    free(e->grads); free(e->opt_state); free(e->buffers); free(e->scratch); free(e->dacts);
    free(e->logits); free(e->buffers_before);
    free(e->acc); free(e->gather); free(e->first_rank);
    pdrt_laps_free(&e->laps);
    pdrt_stash_free(&e->stash);
    pd_data_free(&e->train);
    pd_data_free(&e->test);
}

void pdrt_ex_inject_from_env(ex_t *e) {
    const char *inj = getenv("PDRT_INJECT_NONFINITE");
    if (!inj) return;
    long long is;
    int ist = 0;
    if (sscanf(inj, "input:%lld", &is) == 1) e->inj_kind = 1;
    else if (sscanf(inj, "grad:%lld:%d", &is, &ist) == 2) e->inj_kind = 2;
    else if (sscanf(inj, "loss:%lld", &is) == 1) e->inj_kind = 3;
    else PDRT_FAIL("PDRT_INJECT_NONFINITE='%s': not input:STEP, loss:STEP or grad:STEP:STAGE", inj);
    e->inj_step = is;
    e->inj_stage = ist;
}

int pdrt_main(int argc, char **argv, const pdrt_stage *st) {
    pdrt_args a;
    int pr = pdrt_args_parse(&a, argc, argv, RT_PIPELINE);
    if (pr) return pr > 0 ? 0 : 2;
    MPI_Init(&argc, &argv);
    ex_t e;
    memset(&e, 0, sizeof e);
    MPI_Comm_rank(MPI_COMM_WORLD, &e.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &e.n);
    pdrt_set_identity(e.rank, st->index, 1);
    pdrt_watchdog_start(a.hang_timeout);
    if (st->abi != PDRT_ABI) PDRT_FAIL("stage built for runtime ABI %d, not %d", st->abi, PDRT_ABI);
    if (a.mode != RT_PIPELINE)
        PDRT_FAIL("--single/--emulate run the local binary (pdlaunch --single)");
    if (a.logits_path[0]) PDRT_FAIL("--save-logits is for the local binary (pdlaunch --single)");
    /* ranks: every stage's replicas, contiguous in stage order */
    e.first_rank = pdrt_rank_table(&e.R, &e.j, st, e.rank, e.n);
    e.out_rank = e.first_rank[st->n_stages - 1];
    MPI_Comm_split(MPI_COMM_WORLD, st->index, e.rank, &e.stage_comm);
    e.st = st;
    e.a = &a;
    e.B = st->batch;
    e.tg = pdrt_targets(&a, st);
    e.NL = e.B * e.tg;
    e.first = st->index == 0;
    e.last = st->index == st->n_stages - 1;
    pdrt_rules_init(&e.ru, st, &a, e.R); /* and its refusals */
    if (e.ru.recompute == 2 && (!st->forward_recompute || st->n_acts_kept < 0 ||
                                st->n_acts_kept > st->n_acts))
        PDRT_FAIL("stage %d is planned with selective recomputation but has no "
                  "forward_recompute: regenerate it with this pdplan", st->index);
    pdrt_optim_from(&e.opt, st, &a);
    pdrt_clip_check(&e.opt, st, &a);
    pdrt_ties_check(st, &a);
    MPI_Comm_dup(MPI_COMM_WORLD, &e.tie_comm);
    e.per_epoch = pdrt_pipeline_data(&e.total, &e.train, &e.test, &a, st, e.first);
    {
        int64_t n0 = e.total < e.per_epoch ? e.total : e.per_epoch;
        PDRT_CHECK(n0 < (int64_t)1 << 30);
        pd_schedule *full = pdrt_schedule_for(st, &a, (int)n0);
        pdrt_ex_alloc(&e, full);
        pd_schedule_free(full);
    }
    st->init(pdrt_stash_newest(&e.stash), e.buffers, a.seed);
    if (a.init_dir[0]) pdrt_weights_load(a.init_dir, st, pdrt_stash_newest(&e.stash), e.buffers);
    if (st->n_ties) pdrt_ex_ties_init(&e); /* the owner's values on both copies */
    pdrt_ex_inject_from_env(&e);
    int64_t done = 0, every = a.checkpoint_every, prev_ckpt = -1;
    int epoch = 0, ckpt = a.checkpoint_dir[0] != 0;
    if (a.resume) {
        pdrt_ex_resume(&e, &done, &epoch, &every);
        prev_ckpt = done; /* the next checkpoint prunes the sets before the resumed one */
    }
    int64_t start = done;
    {   /* a tenth of the minibatches this rank runs (at most 20) warm the caches before laps count */
        int64_t mine = (e.total - start) / e.R, skip = mine / 10 < 20 ? mine / 10 : 20;
        pdrt_laps_init(&e.laps, st->n_layers, skip);
    }

    pdrt_barrier("every rank to be ready to train");
    e.t0 = e.lg.t_log = pdrt_now();
    double origin = e.t0;
    MPI_Bcast(&origin, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD); /* one clock on one machine */
    pdrt_trace_start(a.trace, origin);
    double train_s = 0, acc = -1, time_to_target = -1;
    int stop = 0;
    pdrt_curves curves = {.eval_is_loss = e.tg > 1};
    int64_t target_step = -1;
    if (e.rank == e.out_rank) {
        e.lg.curves = &curves;
        e.lg.t0 = e.t0;
    }
    while (done < e.total && !stop) {
        /* the rest of this epoch, cut at the next multiple of --checkpoint-every or --eval-every */
        int64_t ep_start = (int64_t)epoch * e.per_epoch;
        int64_t n = pdrt_segment_end(&a, done, e.per_epoch, e.total, ckpt ? every : 0) - done;
        PDRT_CHECK(n >= 1 && done >= ep_start);
        pd_schedule *s = pdrt_schedule_for(st, &a, (int)n);
        double t = pdrt_now();
        pdrt_ex_run_epoch(&e, s, epoch, done, done - ep_start);
        train_s += pdrt_now() - t;
        pd_schedule_free(s);
        done += n;
        int epoch_end = done == ep_start + e.per_epoch, end = epoch_end || done == e.total;
        if (epoch_end) epoch++;
        if (ckpt && (end || (every > 0 && done % every == 0)))
            pdrt_ex_checkpoint(&e, done, epoch, every, &prev_ckpt);
        if (pdrt_eval_due(&a, done, end)) {
            acc = evaluate(&e);
            int me = e.rank == e.out_rank;
            stop = pdrt_eval_record(me ? &curves : NULL, &a, e.tg, done, e.per_epoch, e.total,
                                    pdrt_now() - e.t0, acc, e.val_loss, me, &time_to_target,
                                    &target_step);
        }
    }
    double wall = pdrt_now() - e.t0;
    if (a.save_dir[0] && e.j == 0) pdrt_weights_save(a.save_dir, st, pdrt_stash_newest(&e.stash), e.buffers);
    if (a.check_replicas && e.R > 1 && e.j == 0)
        printf("stage %d: %d replicas identical after %lld updates\n", st->index, e.R,
               (long long)e.replica_checks);
    pdrt_ex_recompute_report(&e);
    if (a.check_replicas && e.tie_checks && e.j == 0)
        printf("stage %d: tied weights identical to their owners' after %lld updates\n",
               st->index, (long long)e.tie_checks);

    pdrt_stage_stats mine = e.stats;
    mine.predicted_ms = st->predicted_ms;
    mine.predicted_compute_ms = st->predicted_compute_ms;
    mine.skipped = e.skipped;
    pdrt_stage_stats *ss = pdrt_stage_stats_gather(&mine, e.first_rank, st->n_stages, e.out_rank);
    if (ss) {
        int ns = st->n_stages;
        int epochs_begun = done > (int64_t)epoch * e.per_epoch ? epoch + 1 : epoch;
        pdrt_summary sum = {st->model, "pipeline", pdrt_schedule_name(st, &a), ns, e.B, done, epochs_begun,
                          e.lg.last_loss, a.eval ? acc : -1, (double)(done - start) * e.B / train_s, wall,
                          train_s, a.target_accuracy, time_to_target, ss, start, a.skip_nonfinite,
                          e.n_ckpt, e.ckpt_s, a.eval && acc >= 0, e.val_loss, e.tg,
                          a.target_loss, target_step, &curves};
        pdrt_summary_print(&sum);
        pdrt_summary_write(a.run_dir, &sum);
        char title[256];
        snprintf(title, sizeof title, "%s: %d stage%s, %s", st->model, ns, ns > 1 ? "s" : "",
                 pdrt_schedule_name(st, &a));
        pdrt_curves_write_svg(a.run_dir, &curves, title);
        free(ss);
    }
    char how[400], reps[200] = "";
    for (int k = 0, at = 0; k < st->n_stages && at < (int)sizeof reps - 12; k++)
        at += snprintf(reps + at, sizeof reps - (size_t)at, "%s%d", k ? ", " : "", pdrt_replicas(st, k));
    snprintf(how, sizeof how, "%d stage%s with %s replica%s, %s, %lld minibatches", st->n_stages,
             st->n_stages > 1 ? "s" : "", reps, st->n_stages > 1 || pdrt_replicas(st, 0) > 1 ? "s" : "",
             pdrt_schedule_name(st, &a), (long long)(done - start));
    double step_ms = e.laps.calls[1] ? e.stats.step_ms / (double)e.laps.calls[1] : 0;
    pdrt_laps_write_profile(&e.laps, &st, &step_ms, 1, e.j == 0, e.out_rank, a.run_dir, how);
    if (a.trace) pdrt_ex_write_trace(&e);
    pdrt_trace_free();
    pdrt_curves_free(&curves);
    MPI_Comm_free(&e.stage_comm);
    MPI_Comm_free(&e.tie_comm);
    pdrt_ex_free(&e);
    pdrt_optim_free(&e.opt);
    MPI_Finalize();
    return 0;
}
