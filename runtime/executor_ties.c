/* executor_ties.c: tied weights between the ranks of the pipeline (docs/formats.md, "Tied
 * weights"; docs/runtime.md): the owner's initial values to the tied layer's stage, the two
 * copies' gradients exchanged and summed at every update (after each stage's replica all-reduce,
 * so every replica holds the same accumulated gradient), and with --check-replicas a bitwise
 * comparison of the copies after every step.
 * Pairing with replicas: replica j of a stage receives from replica j mod R' of the other stage
 * (R' its replicas) and sends to every replica q of it with q mod R == j; every replica of both
 * stages thus gets the other stage's sum once. The sum is the owner's plus the tied layer's
 * (pdrt_tie_sum), the same floats in the same order on both sides and in --single/--emulate.
 * Every receive and send of an update is posted before any is waited for, so ties between any
 * stages cannot wait on each other in a circle. Messages go over a communicator of their own,
 * tagged by the owner's tensor index. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

static int cross(const ex_t *e, const pdrt_tie *t) { return t->peer_stage != e->st->index; }

void pdrt_ex_ties_init(ex_t *e) {
    const pdrt_stage *st = e->st;
    float *w = pdrt_stash_newest(&e->stash);
    pdrt_ties_init_local(st, w);
    pdrt_reqs q = {0};
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        if (!cross(e, t)) continue;
        const pdrt_tensor *x = &st->tensors[t->tensor];
        pdrt_tie_post(&q, t, e->first_rank, e->R, e->j, e->tie_comm,
                      t->owner ? w + x->offset : NULL, t->owner ? NULL : w + x->offset, x->numel);
    }
    pdrt_reqs_wait(&q, "the tied weights' initial values");
}

void pdrt_ex_ties_grads(ex_t *e) {
    const pdrt_stage *st = e->st;
    int64_t np = st->n_params, total = 0;
    for (int i = 0; i < st->n_ties; i++)
        if (cross(e, &st->ties[i])) total += st->tensors[st->ties[i].tensor].numel + 1;
    float *mine = pdrt_alloc((size_t)total + 1), *other = pdrt_alloc((size_t)total + 1);
    pdrt_reqs q = {0};
    int64_t at = 0;
    for (int i = 0; i < st->n_ties; i++) { /* each: the copy's gradient sum and the count */
        const pdrt_tie *t = &st->ties[i];
        if (!cross(e, t)) continue;
        const pdrt_tensor *x = &st->tensors[t->tensor];
        memcpy(mine + at, e->acc + x->offset, (size_t)x->numel * sizeof(float));
        mine[at + x->numel] = e->acc[np];
        pdrt_tie_post(&q, t, e->first_rank, e->R, e->j, e->tie_comm, mine + at, other + at,
                      x->numel + 1);
        at += x->numel + 1;
    }
    pdrt_reqs_wait(&q, "the exchange of tied weights' gradients");
    at = 0;
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        if (!cross(e, t)) continue;
        const pdrt_tensor *x = &st->tensors[t->tensor];
        if (other[at + x->numel] != e->acc[np])
            PDRT_FAIL("tied weight of layer %s: stage %d's update holds %g minibatches, stage "
                      "%d's %g (a dropped minibatch?)", x->layer, st->index,
                      (double)e->acc[np], t->peer_stage, (double)other[at + x->numel]);
        float *g = e->acc + x->offset, *o = other + at;
        if (t->owner) pdrt_tie_sum(g, o, x->numel); /* the owner's plus the tied layer's */
        else pdrt_tie_sum(o, g, x->numel);
        at += x->numel + 1;
    }
    pdrt_ties_local(st, e->acc);
    free(mine);
    free(other);
}

void pdrt_ex_ties_check(ex_t *e) {
    const pdrt_stage *st = e->st;
    float *w = pdrt_stash_newest(&e->stash);
    int64_t total = 0;
    for (int i = 0; i < st->n_ties; i++)
        if (cross(e, &st->ties[i]) && !st->ties[i].owner)
            total += st->tensors[st->ties[i].tensor].numel;
    float *ref = pdrt_alloc((size_t)total + 1);
    pdrt_reqs q = {0};
    int64_t at = 0;
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        if (!cross(e, t)) continue;
        const pdrt_tensor *x = &st->tensors[t->tensor];
        pdrt_tie_post(&q, t, e->first_rank, e->R, e->j, e->tie_comm,
                      t->owner ? w + x->offset : NULL, t->owner ? NULL : ref + at, x->numel);
        if (!t->owner) at += x->numel;
    }
    pdrt_reqs_wait(&q, "the tied weights' comparison (--check-replicas)");
    at = 0;
    int compared = 0;
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        const pdrt_tensor *x = &st->tensors[t->tensor];
        if (t->owner) continue;
        const float *o = cross(e, t) ? ref + at : w + st->tensors[t->peer_tensor].offset;
        compared++;
        if (memcmp(o, w + x->offset, (size_t)x->numel * sizeof(float)))
            PDRT_FAIL("the tied copy of layer %s's weight on stage %d differs from its owner's "
                      "on stage %d after update %lld", x->layer, st->index, t->peer_stage,
                      (long long)e->updates);
        if (cross(e, t)) at += x->numel;
    }
    if (compared) e->tie_checks++; /* the tied layers' stages report it */
    free(ref);
}
