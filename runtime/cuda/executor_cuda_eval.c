/* executor_cuda_eval.c: the CUDA executor's forward-only pass over the test set, at epoch ends
 * and every --eval-every steps, through the first replica of every stage; activations travel
 * through host memory and MPI (not the training path's transports), the last stage counts the
 * correct predictions and sums the loss on the GPU. */
#include <stdlib.h>
#include <string.h>

#include "executor_cuda.h"

/* The first stage's input pack of test minibatch t into hin: the samples, then their labels
 * (-1 past the test set's end, which the last stage counts to). */
static void eval_input(cx_t *x, pd_data *test, float *hin, int64_t t) {
    const pdrt_stage *st = x->st;
    memset(hin, 0, (size_t)(st->in_floats + x->NL) * sizeof(float));
    int got = pd_data_batch(hin, x->labels_host, test, 0, t, x->B, 0, x->a->seed) * x->tg;
    for (int b = 0; b < x->NL; b++) hin[st->in_floats + b] = b < got ? (float)x->labels_host[b] : -1;
}

/* x's forward of a test minibatch whose input pack is hin, with its newest weights. The last
 * stage adds its correct predictions and its summed loss; another stage leaves its output pack
 * (the labels copied behind) in hout for the next. */
static void eval_forward(cx_t *x, const float *hin, float *hout, int64_t *correct,
                         double *loss_sum) {
    const pdrt_stage *st = x->st;
    float *in = x->in[0], *out = x->last ? x->logits : x->act_send[0];
    pd_cuda_upload(x->ctx, in, hin, (size_t)(st->in_floats + x->NL) * sizeof(float));
    x->cst->forward(x->ctx, out, x->acts[0], x->buffers, dev_w(x, pdrt_stash_newest(&x->stash)),
                    in, 0, x->a->seed, -1);
    if (x->last) {
        int got = 0;
        while (got < x->NL && hin[st->in_floats + got] >= 0) got++; /* targets */
        for (int b = 0; b < got; b++) x->labels_host[b] = (int)hin[st->in_floats + b];
        pd_cuda_upload(x->ctx, x->labels_dev, x->labels_host, (size_t)x->NL * sizeof(int));
        *correct += pdrt_count_correct_cuda(x->ctx, x->logits, x->labels_dev, got, st->classes);
        if (got) /* dout[0] is free while the pipeline is drained */
            *loss_sum += (double)got * pdrt_softmax_cross_entropy_cuda(
                                           x->ctx, x->dout[0], x->logits, x->labels_dev, got,
                                           st->classes);
    } else {
        pd_cuda_download(x->ctx, hout, out, (size_t)st->out_floats * sizeof(float));
        memcpy(hout + st->out_floats, hin + st->in_floats, (size_t)x->NL * sizeof(float));
    }
}

/* Forward-only pass over the test set through the first replica of every stage (through host
 * memory and MPI: not on the training path). Returns the accuracy on every rank; e->val_loss
 * gets the mean loss per target. */
double pdrt_cx_evaluate(cx_t *e) {
    const pdrt_stage *st = e->st;
    int64_t nb, n_test;
    pdrt_eval_size(&nb, &n_test, e->a, &e->test, e->B, e->first);
    if (e->j != 0) nb = 0;
    int64_t nin = st->in_floats + e->NL, nout = st->out_floats + e->NL;
    float *hin = malloc((size_t)nin * sizeof(float)), *hout = malloc((size_t)nout * sizeof(float));
    PDRT_CHECK(hin && hout && nin < (int64_t)1 << 31 && nout < (int64_t)1 << 31);
    int64_t correct = 0;
    double loss_sum = 0;
    for (int64_t t = 0; t < nb; t++) {
        if (e->first) {
            eval_input(e, &e->test, hin, t);
        } else {
            MPI_Request r;
            MPI_Irecv(hin, (int)nin, MPI_FLOAT, e->first_rank[st->index - 1], 0, MPI_COMM_WORLD, &r);
            pdrt_watch("a receive of test-set activations", e->first_rank[st->index - 1], t);
            pdrt_wait_req(&r);
            pdrt_unwatch();
        }
        eval_forward(e, hin, hout, &correct, &loss_sum);
        if (!e->last) {
            MPI_Request r;
            MPI_Isend(hout, (int)nout, MPI_FLOAT, e->first_rank[st->index + 1], 0, MPI_COMM_WORLD, &r);
            pdrt_watch("a send of test-set activations to complete", e->first_rank[st->index + 1], t);
            pdrt_wait_req(&r);
            pdrt_unwatch();
        }
    }
    free(hin);
    free(hout);
    return pdrt_eval_result(correct, loss_sum, n_test, e->tg, e->last, e->out_rank, &e->val_loss);
}

/* Interleaved: the test set through every chunk in stage order, one minibatch at a time, each
 * message a blocking MPI send tagged by its chunk (each rank's order of (minibatch, stage) is
 * increasing, so no two ranks wait for each other). The last stage's chunk counts and sums the
 * loss on the GPU. Returns the accuracy on every rank; e[0].val_loss the mean loss per target. */
double pdrt_cx_evaluate_chunks(cx_t *e, int v) {
    int p = e[0].n;
    int64_t nb, n_test;
    pdrt_eval_size(&nb, &n_test, e[0].a, &e[0].test, e[0].B, e[0].first);
    int64_t most = 0;
    for (int c = 0; c < v; c++) {
        int64_t in = e[c].st->in_floats + e[c].NL, out = e[c].st->out_floats + e[c].NL;
        most = in > most ? in : most;
        most = out > most ? out : most;
    }
    float *hin = malloc((size_t)most * sizeof(float)), *hout = malloc((size_t)most * sizeof(float));
    PDRT_CHECK(hin && hout && most < (int64_t)1 << 31);
    int64_t correct = 0;
    double loss_sum = 0;
    for (int64_t t = 0; t < nb; t++)
        for (int c = 0; c < v; c++) {
            cx_t *x = &e[c];
            const pdrt_stage *st = x->st;
            if (x->first) {
                eval_input(x, &e[0].test, hin, t);
            } else {
                int from = (st->index - 1) % p;
                pdrt_watch("a receive of test-set activations", from, t);
                MPI_Recv(hin, (int)(st->in_floats + x->NL), MPI_FLOAT, from, c, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                pdrt_unwatch();
            }
            eval_forward(x, hin, hout, &correct, &loss_sum);
            if (!x->last) {
                int to = (st->index + 1) % p, chunk_there = (st->index + 1) / p;
                pdrt_watch("a send of test-set activations to complete", to, t);
                MPI_Send(hout, (int)(st->out_floats + x->NL), MPI_FLOAT, to, chunk_there,
                         MPI_COMM_WORLD);
                pdrt_unwatch();
            }
        }
    free(hin);
    free(hout);
    return pdrt_eval_result(correct, loss_sum, n_test, e[0].tg, e[0].rank == p - 1, p - 1,
                            &e[0].val_loss);
}
