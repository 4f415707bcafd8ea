/* executor_chunks_step.c: what an interleaved rank's chunks (executor_chunks.c; stage s on rank
 * s mod p as chunk s / p) do together at a batch's end, where every chunk steps (the schedule's
 * STEPs, chunk 0 first), and the tied weights between them (docs/runtime.md, "Tied weights"):
 *  - the owner's initial values into the tied copy, after init and --init;
 *  - before the first chunk's step: the two copies' gradient sums and counts exchanged and added
 *    (the owner's plus the tied layer's, pdrt_tie_sum: the floats and the order of --single and
 *    of the one-stage-per-rank executor), over MPI between ranks, in memory between two chunks of
 *    one rank; every send and receive of every chunk posted before any is waited for, so ties
 *    cannot wait on each other in a circle; then, with clipping, each chunk's mean gradient and
 *    its squared norm, gathered from every rank and summed from zero in stage order (as --single
 *    sums them) into the one coefficient every chunk's step applies;
 *  - with --check-replicas, after the last chunk's step: each copy compared bitwise with its
 *    owner's weight.
 * Tie messages go over the ranks' tie communicator, tagged by the owner's stage and tensor. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"

/* The chunk of stage s on this rank, or NULL when another rank holds it. */
static ex_t *local_chunk(ex_t *e0, int s) {
    return s % e0->n == e0->rank ? &e0[s / e0->n] : NULL;
}

/* The tag of tie t of stage st: the owner's tensor and stage, unique since a weight has one
 * tie. */
static int tie_tag(const ex_t *e, const pdrt_tie *t) {
    int owner_stage = t->owner ? e->st->index : t->peer_stage;
    int owner_tensor = t->owner ? t->tensor : t->peer_tensor;
    int64_t tag = (int64_t)owner_tensor * e->st->n_stages + owner_stage;
    int *ub = NULL, flag = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
    if (flag && ub && tag > *ub)
        PDRT_FAIL("tied weight of layer %s: message tag %lld over MPI's limit %d",
                  e->st->tensors[t->tensor].layer, (long long)tag, *ub);
    return (int)tag;
}

/* Posts the messages of tie t of chunk e with the other rank: mine (NULL: none) sent, other
 * (NULL: none) received, n floats each. */
static void post(pdrt_reqs *q, const ex_t *e, const pdrt_tie *t, const float *mine, float *other,
                 int64_t n) {
    int peer = t->peer_stage % e->n, tag = tie_tag(e, t);
    PDRT_CHECK(n < (int64_t)1 << 31);
    if (mine) MPI_Isend(mine, (int)n, MPI_FLOAT, peer, tag, e->tie_comm, pdrt_reqs_add(q));
    if (other) MPI_Irecv(other, (int)n, MPI_FLOAT, peer, tag, e->tie_comm, pdrt_reqs_add(q));
}

/* Tie t of a chunk on this rank: the peer's chunk when it is on this rank too. */
static ex_t *peer_here(ex_t *e0, const pdrt_tie *t) { return local_chunk(e0, t->peer_stage); }

void pdrt_ex_chunks_ties_init(ex_t *e0, int v) {
    pdrt_reqs q = {0};
    for (int c = 0; c < v; c++) {
        const pdrt_stage *st = e0[c].st;
        float *w = pdrt_stash_newest(&e0[c].stash);
        pdrt_ties_init_local(st, w);
        for (int i = 0; i < st->n_ties; i++) {
            const pdrt_tie *t = &st->ties[i];
            if (t->peer_stage == st->index || peer_here(e0, t)) continue;
            const pdrt_tensor *x = &st->tensors[t->tensor];
            post(&q, &e0[c], t, t->owner ? w + x->offset : NULL, t->owner ? NULL : w + x->offset,
                 x->numel);
        }
    }
    pdrt_reqs_wait(&q, "the tied weights' initial values");
    for (int c = 0; c < v; c++) { /* a copy whose owner is another chunk of this rank */
        const pdrt_stage *st = e0[c].st;
        for (int i = 0; i < st->n_ties; i++) {
            const pdrt_tie *t = &st->ties[i];
            ex_t *o = peer_here(e0, t);
            if (t->owner || t->peer_stage == st->index || !o) continue;
            memcpy(pdrt_stash_newest(&e0[c].stash) + st->tensors[t->tensor].offset,
                   pdrt_stash_newest(&o->stash) + o->st->tensors[t->peer_tensor].offset,
                   (size_t)st->tensors[t->tensor].numel * sizeof(float));
        }
    }
}

/* Fails unless the two copies' updates hold the same number of minibatches. */
static void same_count(const ex_t *e, const pdrt_tie *t, float mine, float other) {
    if (mine != other)
        PDRT_FAIL("tied weight of layer %s: stage %d's update holds %g minibatches, stage %d's %g "
                  "(a dropped minibatch?)", e->st->tensors[t->tensor].layer, e->st->index,
                  (double)mine, t->peer_stage, (double)other);
}

/* Every chunk's tied gradients: exchanged, checked and summed. */
static void ties_grads(ex_t *e0, int v) {
    int64_t total = 0;
    for (int c = 0; c < v; c++)
        for (int i = 0; i < e0[c].st->n_ties; i++) {
            const pdrt_tie *t = &e0[c].st->ties[i];
            if (t->peer_stage != e0[c].st->index && !peer_here(e0, t))
                total += e0[c].st->tensors[t->tensor].numel + 1;
        }
    float *mine = pdrt_alloc((size_t)total + 1), *other = pdrt_alloc((size_t)total + 1);
    pdrt_reqs q = {0};
    int64_t at = 0;
    for (int c = 0; c < v; c++) { /* each: the copy's gradient sum and the count */
        const pdrt_stage *st = e0[c].st;
        for (int i = 0; i < st->n_ties; i++) {
            const pdrt_tie *t = &st->ties[i];
            if (t->peer_stage == st->index || peer_here(e0, t)) continue;
            const pdrt_tensor *x = &st->tensors[t->tensor];
            memcpy(mine + at, e0[c].acc + x->offset, (size_t)x->numel * sizeof(float));
            mine[at + x->numel] = e0[c].acc[st->n_params];
            post(&q, &e0[c], t, mine + at, other + at, x->numel + 1);
            at += x->numel + 1;
        }
    }
    pdrt_reqs_wait(&q, "the exchange of tied weights' gradients");
    at = 0;
    for (int c = 0; c < v; c++) {
        const pdrt_stage *st = e0[c].st;
        float *acc = e0[c].acc, count = acc[st->n_params];
        for (int i = 0; i < st->n_ties; i++) {
            const pdrt_tie *t = &st->ties[i];
            if (t->peer_stage == st->index) continue; /* pdrt_ties_local below */
            const pdrt_tensor *x = &st->tensors[t->tensor];
            float *g = acc + x->offset;
            ex_t *o = peer_here(e0, t);
            if (o) { /* both chunks here: added once, from the owner's side */
                if (!t->owner) continue;
                same_count(&e0[c], t, count, o->acc[o->st->n_params]);
                pdrt_tie_sum(g, o->acc + o->st->tensors[t->peer_tensor].offset, x->numel);
                continue;
            }
            same_count(&e0[c], t, count, other[at + x->numel]);
            if (t->owner) pdrt_tie_sum(g, other + at, x->numel); /* the owner's plus the tied */
            else pdrt_tie_sum(other + at, g, x->numel);
            at += x->numel + 1;
        }
        pdrt_ties_local(st, acc);
    }
    free(mine);
    free(other);
}

void pdrt_ex_chunks_before_steps(ex_t *e0, int v) {
    int ties = 0, p = e0->n;
    for (int c = 0; c < v; c++) ties |= e0[c].st->n_ties > 0;
    if (ties) ties_grads(e0, v);
    if (e0->opt.clip_grad_norm <= 0) return;
    double *mine = calloc((size_t)v, sizeof(double)), *all = calloc((size_t)(p * v), sizeof(double));
    PDRT_CHECK(mine && all);
    for (int c = 0; c < v; c++) mine[c] = pdrt_ex_clip_prepare(&e0[c]);
    double t = pdrt_now();
    pdrt_watch("the gradients' global norm (clipping)", -1, -1);
    MPI_Allgather(mine, v, MPI_DOUBLE, all, v, MPI_DOUBLE, MPI_COMM_WORLD);
    pdrt_unwatch();
    e0->stats.wait_ms += 1e3 * (pdrt_now() - t);
    double sq = 0;
    for (int s = 0; s < p * v; s++) sq += all[(s % p) * v + s / p]; /* stage s: rank s % p's chunk s / p */
    float coef = pd_clip_coef(sq, e0->opt.clip_grad_norm);
    for (int c = 0; c < v; c++) e0[c].clip_coef = coef;
    free(mine);
    free(all);
}

void pdrt_ex_chunks_ties_check(ex_t *e0, int v) {
    int64_t total = 0;
    for (int c = 0; c < v; c++)
        for (int i = 0; i < e0[c].st->n_ties; i++) {
            const pdrt_tie *t = &e0[c].st->ties[i];
            if (!t->owner && t->peer_stage != e0[c].st->index && !peer_here(e0, t))
                total += e0[c].st->tensors[t->tensor].numel;
        }
    float *ref = pdrt_alloc((size_t)total + 1);
    pdrt_reqs q = {0};
    int64_t at = 0;
    for (int c = 0; c < v; c++) { /* the owners send their weights, the copies receive them */
        const pdrt_stage *st = e0[c].st;
        float *w = pdrt_stash_newest(&e0[c].stash);
        for (int i = 0; i < st->n_ties; i++) {
            const pdrt_tie *t = &st->ties[i];
            if (t->peer_stage == st->index || peer_here(e0, t)) continue;
            const pdrt_tensor *x = &st->tensors[t->tensor];
            post(&q, &e0[c], t, t->owner ? w + x->offset : NULL, t->owner ? NULL : ref + at, x->numel);
            if (!t->owner) at += x->numel;
        }
    }
    pdrt_reqs_wait(&q, "the tied weights' comparison (--check-replicas)");
    at = 0;
    for (int c = 0; c < v; c++) {
        const pdrt_stage *st = e0[c].st;
        const float *w = pdrt_stash_newest(&e0[c].stash);
        int compared = 0;
        for (int i = 0; i < st->n_ties; i++) {
            const pdrt_tie *t = &st->ties[i];
            if (t->owner) continue;
            const pdrt_tensor *x = &st->tensors[t->tensor];
            ex_t *o = peer_here(e0, t);
            const float *ow = t->peer_stage == st->index ? w + st->tensors[t->peer_tensor].offset
                              : o ? pdrt_stash_newest(&o->stash) + o->st->tensors[t->peer_tensor].offset
                                  : ref + at;
            if (memcmp(ow, w + x->offset, (size_t)x->numel * sizeof(float)))
                PDRT_FAIL("the tied copy of layer %s's weight on stage %d differs from its owner's "
                          "on stage %d after update %lld", x->layer, st->index, t->peer_stage,
                          (long long)e0[c].updates);
            compared++;
            if (t->peer_stage != st->index && !o) at += x->numel;
        }
        if (compared) e0[c].tie_checks++; /* the tied layers' chunks report it */
    }
    free(ref);
}
