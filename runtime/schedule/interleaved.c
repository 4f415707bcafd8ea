/* interleaved.c: the interleaved 1F1B schedule's generator (Megatron-LM's virtual pipeline
 * stages, Narayanan et al., SC'21): p ranks, v chunks (stages) each, rank r holding stages
 * r, r + p, ..., r + (v - 1) p. See pd_schedule_interleaved in schedule.h for the order. */
#include <stdlib.h>

#include "schedule.h"

int pd_schedule_interleaved_warmup(int p, int v, int r, int M) {
    int total = M * v;
    if (M <= p) return total; /* Megatron: all forwards first when there is one group */
    int w = (p - r - 1) * 2 + (v - 1) * p;
    return w < total ? w : total;
}

/* The k-th chunk-forward (backward: 1) of a batch of n minibatches from `base`: its minibatch
 * and chunk. Groups of p minibatches (the last may be shorter), each run on chunk 0, 1, ...
 * (backward: v - 1, v - 2, ...) before the next group. */
static void virtual_mb(int p, int v, int n, int base, int k, int backward, int *mb, int *chunk) {
    int full = n / p * p;                 /* minibatches in whole groups */
    int g, size, off;
    if (k < full * v) {
        g = k / (p * v), size = p, off = k % (p * v);
    } else {                              /* the last, shorter group */
        g = full / p, size = n - full, off = k - full * v;
    }
    int c = off / size;
    *mb = base + g * p + off % size;
    *chunk = backward ? v - 1 - c : c;
}

/* One chunk-forward or chunk-backward of minibatch mb on stage st (rank st % p) with its
 * messages. */
static int push_chunk(pd_schedule *s, int p, int n_stages, int st, int mb, int backward) {
    int r = st % p, e = 0;
    int prev = (st + p - 1) % p, next = (st + 1) % p;
    if (!backward) {
        if (st > 0) e |= pd_schedule_push_at(s, r, PD_A_RECV_ACT, mb, prev, st);
        e |= pd_schedule_push_at(s, r, PD_A_FORWARD, mb, -1, st);
        if (st < n_stages - 1) e |= pd_schedule_push_at(s, r, PD_A_SEND_ACT, mb, next, st);
    } else {
        if (st < n_stages - 1) e |= pd_schedule_push_at(s, r, PD_A_RECV_GRAD, mb, next, st);
        e |= pd_schedule_push_at(s, r, PD_A_BACKWARD, mb, -1, st);
        if (st > 0) e |= pd_schedule_push_at(s, r, PD_A_SEND_GRAD, mb, prev, st);
    }
    return e;
}

/* Rank r's chunk-forwards and chunk-backwards of n minibatches from base, w chunk-forwards
 * first (the warm-up), then one forward and one backward in turn, then the rest. */
static int rank_part(pd_schedule *s, int p, int v, int r, int base, int n, int w) {
    int total = n * v, e = 0, ns = p * v, mb, c;
    for (int k = 0; k < w; k++) {
        virtual_mb(p, v, n, base, k, 0, &mb, &c);
        e |= push_chunk(s, p, ns, c * p + r, mb, 0);
    }
    for (int k = 0; k < total; k++) {
        if (k + w < total) {
            virtual_mb(p, v, n, base, k + w, 0, &mb, &c);
            e |= push_chunk(s, p, ns, c * p + r, mb, 0);
        }
        virtual_mb(p, v, n, base, k, 1, &mb, &c);
        e |= push_chunk(s, p, ns, c * p + r, mb, 1);
    }
    return e;
}

/* Rank r's batch of n minibatches from base, M the full batch's size: one update. A shorter
 * batch whose last group is ragged (n > p, n not a multiple of p) runs its whole groups in
 * Megatron's order and then the ragged group forwards first (Megatron's order over a ragged
 * group would receive a link's messages out of order), so a chunk holds at most a whole part's
 * warm-up, not n minibatches. */
static int rank_batch(pd_schedule *s, int p, int v, int r, int base, int n, int M) {
    int e = 0, ragged = n < M && n > p && n % p ? n % p : 0, whole = n - ragged;
    int w = pd_schedule_interleaved_warmup(p, v, r, whole < M ? whole : M);
    e |= rank_part(s, p, v, r, base, whole, w);
    if (ragged) e |= rank_part(s, p, v, r, base + whole, ragged, ragged * v);
    for (int c = 0; c < v; c++) e |= pd_schedule_push_at(s, r, PD_A_STEP, base + n - 1, -1, c * p + r);
    e |= pd_schedule_push_at(s, r, PD_A_FLUSH, -1, -1, r);
    return e;
}

pd_schedule *pd_schedule_interleaved(int p, int v, int steps, int microbatches) {
    int M = microbatches;
    if (p < 2 || v < 1 || steps < 0 || M < p || M % p || p > 1 << 12 || v > 1 << 8)
        return NULL;
    pd_schedule *s = pd_schedule_new("interleaved", p, steps);
    if (!s) return NULL;
    s->n_stages = p * v;
    s->chunks = v;
    int e = 0, most = 0;
    for (int r = 0; r < p && !e; r++) {
        for (int base = 0; base < steps && !e; base += M)
            e |= rank_batch(s, p, v, r, base, steps - base < M ? steps - base : M, M);
        int w = pd_schedule_interleaved_warmup(p, v, r, M);
        if (w > most) most = w;
    }
    if (e) {
        pd_schedule_free(s);
        return NULL;
    }
    s->send_slots = most + 1;
    return s;
}
