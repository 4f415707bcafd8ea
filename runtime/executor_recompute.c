/* executor_recompute.c: activation recomputation in the CPU executor (pdrt_stage.recompute,
 * docs/runtime.md "Activation recomputation"). Full: one activation buffer, each backward first
 * runs its minibatch's forward again from the stage input it kept. Selective: per minibatch in
 * flight only the kept part of the activations (acts[0, n_acts_kept): the outputs and saved
 * state of linear, conv2d, lstm), copied out of the one working buffer after each forward and
 * back into it before the backward, whose forward_recompute then refills the rest (the cheap
 * layers) from them; with one minibatch in flight (the last stage under 1f1b) no copy: its
 * backward always finds its activations in the working buffer. Either way the recomputation uses the weights the forward used and its step
 * number (so the same dropout masks), and batch norm's running statistics go to a copy, so that
 * they are updated once per minibatch. The working buffer remembers whose activations it holds:
 * a backward right after its own forward (the last stage under 1f1b), or zb-h1's and zb-h2's W
 * right after its B, recompute nothing; a W whose activations a later forward or B replaced
 * recomputes them again (the memory stays one buffer; docs/runtime.md measures the cost). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

void pdrt_ex_recompute_alloc(ex_t *e) {
    const pdrt_stage *st = e->st;
    e->acts_mb = -1;
    if (!e->ru.recompute) {
        for (int i = 0; i < e->D; i++) e->acts[i] = pdrt_alloc((size_t)st->n_acts);
        return;
    }
    float *work = pdrt_alloc((size_t)st->n_acts);
    for (int i = 0; i < e->D; i++) e->acts[i] = work; /* the forwards' and evaluation's buffer */
    e->buffers_tmp = pdrt_alloc((size_t)st->n_buffers);
    e->recompute_out = pdrt_alloc((size_t)st->out_floats);
    if (e->ru.recompute == 2 && e->D > 1) { /* one in flight: the working buffer always holds it */
        e->kept = calloc((size_t)e->D, sizeof(float *));
        PDRT_CHECK(e->kept != NULL);
        for (int i = 0; i < e->D; i++) e->kept[i] = pdrt_alloc((size_t)st->n_acts_kept);
    }
}

void pdrt_ex_recompute_free(ex_t *e) {
    for (int i = 0; e->acts && i < e->D; i++)
        if (!e->ru.recompute || !i) free(e->acts[i]);
    for (int i = 0; e->kept && i < e->D; i++) free(e->kept[i]);
    free(e->kept);
    free(e->buffers_tmp);
    free(e->recompute_out);
}

int64_t pdrt_ex_activation_floats(const ex_t *e) {
    const pdrt_stage *st = e->st;
    if (e->ru.recompute == 1) return st->n_acts;
    if (e->ru.recompute == 2) return st->n_acts + (e->kept ? (int64_t)e->D * st->n_acts_kept : 0);
    return (int64_t)e->D * st->n_acts;
}

void pdrt_ex_after_forward(ex_t *e, int64_t mb, int d) {
    if (!e->ru.recompute) return;
    e->acts_mb = mb;
    if (e->kept) memcpy(e->kept[d], e->acts[d], (size_t)e->st->n_acts_kept * sizeof(float));
}

float *pdrt_ex_acts_for_backward(ex_t *e, int64_t mb, int d, const float *w, int64_t base,
                                 double *again_ms) {
    const pdrt_stage *st = e->st;
    *again_ms = 0;
    if (!e->ru.recompute || e->acts_mb == mb) return e->acts[d];
    double t = pdrt_now();
    float *work = e->acts[d];
    if (e->ru.recompute == 2) { /* the kept part back: the recomputed layers read it */
        if (!e->kept)
            PDRT_FAIL("stage %d: minibatch %lld's activations left the working buffer with one "
                      "minibatch in flight", st->index, (long long)mb);
        memcpy(work, e->kept[d], (size_t)st->n_acts_kept * sizeof(float));
    }
    if (e->ru.inj_recompute == 1) return work; /* test-only: skipped */
    float *bufs = e->ru.inj_recompute == 2 ? e->buffers : e->buffers_tmp; /* test-only: twice */
    if (bufs == e->buffers_tmp) memcpy(bufs, e->buffers, (size_t)st->n_buffers * sizeof(float));
    pdrt_forward_fn fw = e->ru.recompute == 2 ? st->forward_recompute : st->forward;
    fw(e->last ? e->logits : e->recompute_out, work, e->scratch, bufs, w, e->in[d], 1,
       e->a->seed, base + mb);
    e->acts_mb = mb;
    e->recomputed++;
    *again_ms = 1e3 * (pdrt_now() - t);
    return work;
}

void pdrt_ex_recompute_report(const ex_t *e) {
    if (!e->ru.recompute || e->j != 0) return;
    int64_t D = e->D, zb = e->dacts_of ? 4 * D * e->st->n_acts : 0; /* gradients kept until W */
    printf("stage %d: recompute %s: %lld of %lld backwards recomputed their activations; "
           "activations %lld bytes, stage inputs %lld bytes, layer gradients kept until W %lld "
           "bytes (%d minibatches in flight)\n", e->st->index,
           e->ru.recompute == 2 ? "selective" : "full", (long long)e->recomputed,
           (long long)e->backwards, (long long)(4 * pdrt_ex_activation_floats(e)),
           (long long)(4 * D * e->st->in_floats), (long long)zb, e->D);
}
