/* executor_cuda_ties.c: tied weights between the ranks of a CUDA pipeline (docs/formats.md,
 * "Tied weights"; docs/cuda.md), as the CPU executor exchanges them (runtime/executor_ties.c):
 * the owner's initial values to the tied layer's stage, and at every update, after the stage's
 * replica all-reduce, the two copies' accumulated gradients summed (pdrt_tie_sum: the owner's plus
 * the tied layer's, the same floats in the same order on both sides). The gradients are staged
 * through host memory: each tied copy's range of the device accumulator is downloaded, sent with
 * the update's minibatch count over MPI, summed on the host and uploaded back. Pairing with
 * replicas as on the CPU: replica j of a stage receives from replica j mod R' of the other stage
 * (R' its replicas) and sends to every replica q of it with q mod R == j. Every receive and send
 * of an update is posted before any is waited for. Messages go over a communicator of their own,
 * tagged by the owner's tensor index. Compiled, not yet run on a GPU. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "executor_cuda_ties.h"

static int cross(const pdrt_cuda_ties *x, const pdrt_tie *t) {
    return t->peer_stage != x->st->index;
}

void pdrt_cuda_ties_init(const pdrt_cuda_ties *x, float *params) {
    const pdrt_stage *st = x->st;
    pdrt_ties_init_local(st, params);
    pdrt_reqs q = {0};
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        if (!cross(x, t)) continue;
        const pdrt_tensor *w = &st->tensors[t->tensor];
        pdrt_tie_post(&q, t, x->first_rank, x->R, x->j, x->comm,
                      t->owner ? params + w->offset : NULL, t->owner ? NULL : params + w->offset,
                      w->numel);
    }
    pdrt_reqs_wait(&q, "the tied weights' initial values");
}

void pdrt_cuda_ties_grads(const pdrt_cuda_ties *x, pd_cuda_ctx *ctx, float *acc, int64_t count) {
    const pdrt_stage *st = x->st;
    int64_t total = 0;
    for (int i = 0; i < st->n_ties; i++) total += st->tensors[st->ties[i].tensor].numel + 1;
    float *mine = pdrt_alloc((size_t)total + 1), *other = pdrt_alloc((size_t)total + 1);
    pdrt_reqs q = {0};
    int64_t at = 0;
    for (int i = 0; i < st->n_ties; i++) { /* each copy: its gradient sum and the count */
        const pdrt_tie *t = &st->ties[i];
        const pdrt_tensor *w = &st->tensors[t->tensor];
        pd_cuda_download(ctx, mine + at, acc + w->offset, (size_t)w->numel * sizeof(float));
        mine[at + w->numel] = (float)count;
        at += w->numel + 1;
    }
    at = 0;
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        int64_t n = st->tensors[t->tensor].numel;
        if (cross(x, t))
            pdrt_tie_post(&q, t, x->first_rank, x->R, x->j, x->comm, mine + at, other + at, n + 1);
        at += n + 1;
    }
    pdrt_reqs_wait(&q, "the exchange of tied weights' gradients");
    at = 0;
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        const pdrt_tensor *w = &st->tensors[t->tensor];
        float *g = mine + at;
        if (cross(x, t)) {
            float *o = other + at;
            if (o[w->numel] != g[w->numel])
                PDRT_FAIL("tied weight of layer %s: stage %d's update holds %g minibatches, "
                          "stage %d's %g (a dropped minibatch?)", w->layer, st->index,
                          (double)g[w->numel], t->peer_stage, (double)o[w->numel]);
            if (t->owner) pdrt_tie_sum(g, o, w->numel); /* the owner's plus the tied layer's */
            else pdrt_tie_sum(o, g, w->numel);
        } else if (t->owner) { /* both copies here: the tied layer's is listed next */
            PDRT_CHECK(i + 1 < st->n_ties && st->ties[i + 1].tensor == t->peer_tensor);
            pdrt_tie_sum(g, mine + at + w->numel + 1, w->numel);
        }
        at += w->numel + 1;
    }
    at = 0;
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tensor *w = &st->tensors[st->ties[i].tensor];
        pd_cuda_upload(ctx, acc + w->offset, mine + at, (size_t)w->numel * sizeof(float));
        at += w->numel + 1;
    }
    free(mine);
    free(other);
}
