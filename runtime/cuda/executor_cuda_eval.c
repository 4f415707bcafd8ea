/* executor_cuda_eval.c: the CUDA executor's forward-only pass over the test set, at epoch ends
 * and every --eval-every steps, through the first replica of every stage; activations travel
 * through host memory and MPI (not the training path's transports), the last stage counts the
 * correct predictions and sums the loss on the GPU. */
#include <stdlib.h>
#include <string.h>

#include "executor_cuda.h"

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
    float *in = e->in[0], *out = e->last ? e->logits : e->act_send[0];
    float *w = dev_w(e, pdrt_stash_newest(&e->stash));
    int64_t correct = 0;
    double loss_sum = 0;
    for (int64_t t = 0; t < nb; t++) {
        if (e->first) {
            memset(hin, 0, (size_t)nin * sizeof(float));
            int got = pd_data_batch(hin, e->labels_host, &e->test, 0, t, e->B, 0, e->a->seed) * e->tg;
            for (int b = 0; b < e->NL; b++) hin[st->in_floats + b] = b < got ? (float)e->labels_host[b] : -1;
        } else {
            MPI_Request r;
            MPI_Irecv(hin, (int)nin, MPI_FLOAT, e->first_rank[st->index - 1], 0, MPI_COMM_WORLD, &r);
            pdrt_watch("a receive of test-set activations", e->first_rank[st->index - 1], t);
            pdrt_wait_req(&r);
            pdrt_unwatch();
        }
        pd_cuda_upload(e->ctx, in, hin, (size_t)nin * sizeof(float));
        e->cst->forward(e->ctx, out, e->acts[0], e->buffers, w, in, 0, e->a->seed, -1);
        if (e->last) {
            int got = 0;
            while (got < e->NL && hin[st->in_floats + got] >= 0) got++; /* targets */
            for (int b = 0; b < got; b++) e->labels_host[b] = (int)hin[st->in_floats + b];
            pd_cuda_upload(e->ctx, e->labels_dev, e->labels_host, (size_t)e->NL * sizeof(int));
            correct += pdrt_count_correct_cuda(e->ctx, e->logits, e->labels_dev, got, st->classes);
            if (got) /* dout[0] is free while the pipeline is drained */
                loss_sum += (double)got * pdrt_softmax_cross_entropy_cuda(
                                              e->ctx, e->dout[0], e->logits, e->labels_dev, got,
                                              st->classes);
        } else {
            pd_cuda_download(e->ctx, hout, out, (size_t)st->out_floats * sizeof(float));
            memcpy(hout + st->out_floats, hin + st->in_floats, (size_t)e->NL * sizeof(float));
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
