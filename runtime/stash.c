/* stash.c: PipeDream's weight stash, a ring of parameter blobs. The forward of a minibatch uses
 * the newest version and records it; its backward gets that same version back; an optimizer step
 * copies the newest version into the next slot and updates it there. With nv versions, a
 * minibatch's version survives nv - 1 later updates, which 1F1B guarantees for nv = warmup + 1. */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

void pdrt_stash_init(pdrt_stash *s, int nv, int64_t n, int depth) {
    PDRT_CHECK(nv >= 1 && depth >= 1 && n >= 0);
    memset(s, 0, sizeof *s);
    s->nv = nv;
    s->n = n;
    s->depth = depth;
    s->blob = pdrt_alloc((size_t)nv * (size_t)(n ? n : 1));
    s->slot_version = malloc((size_t)nv * sizeof *s->slot_version);
    s->mb_id = malloc((size_t)depth * sizeof *s->mb_id);
    s->mb_version = malloc((size_t)depth * sizeof *s->mb_version);
    PDRT_CHECK(s->slot_version && s->mb_id && s->mb_version);
    for (int i = 0; i < nv; i++) s->slot_version[i] = -1;
    for (int i = 0; i < depth; i++) s->mb_id[i] = s->mb_version[i] = -1;
    s->newest = 0;
    s->slot_version[0] = 0;
}

void pdrt_stash_free(pdrt_stash *s) {
    free(s->blob);
    free(s->slot_version);
    free(s->mb_id);
    free(s->mb_version);
    memset(s, 0, sizeof *s);
}

static float *slot_of(pdrt_stash *s, int64_t version) {
    int slot = (int)(version % s->nv);
    if (s->slot_version[slot] != version) return NULL;
    return s->blob + (size_t)slot * (size_t)s->n;
}

float *pdrt_stash_newest(pdrt_stash *s) { return slot_of(s, s->newest); }

float *pdrt_stash_for_forward(pdrt_stash *s, int64_t mb) {
    int i = (int)(mb % s->depth);
    if (s->mb_id[i] >= 0 && s->mb_id[i] != mb)
        PDRT_FAIL("weight stash: minibatch %lld still in flight when %lld starts",
                (long long)s->mb_id[i], (long long)mb);
    s->mb_id[i] = mb;
    s->mb_version[i] = s->newest;
    return pdrt_stash_newest(s);
}

float *pdrt_stash_for_forward_at(pdrt_stash *s, int64_t mb, int64_t version) {
    float *w = version >= 0 ? slot_of(s, version) : NULL;
    if (!w)
        PDRT_FAIL("weight stash: version %lld for minibatch %lld is not stashed "
                "(newest %lld, %d versions kept)", (long long)version, (long long)mb,
                (long long)s->newest, s->nv);
    int i = (int)(mb % s->depth);
    if (s->mb_id[i] >= 0 && s->mb_id[i] != mb)
        PDRT_FAIL("weight stash: minibatch %lld still in flight when %lld starts",
                (long long)s->mb_id[i], (long long)mb);
    s->mb_id[i] = mb;
    s->mb_version[i] = version;
    return w;
}

int64_t pdrt_stash_version_of(const pdrt_stash *s, int64_t mb) {
    int i = (int)(mb % s->depth);
    return s->mb_id[i] == mb ? s->mb_version[i] : -1;
}

float *pdrt_stash_for_backward(pdrt_stash *s, int64_t mb) {
    float *w = pdrt_stash_for_backward_input(s, mb);
    s->mb_id[mb % s->depth] = -1;
    return w;
}

float *pdrt_stash_for_backward_input(pdrt_stash *s, int64_t mb) {
    int64_t v = pdrt_stash_version_of(s, mb);
    if (v < 0) PDRT_FAIL("weight stash: no forward recorded for minibatch %lld",
                       (long long)mb);
    float *w = slot_of(s, v);
    if (!w)
        PDRT_FAIL(
                "weight stash: version %lld of minibatch %lld was evicted (%d versions kept)",
                (long long)v, (long long)mb, s->nv);
    return w;
}

float *pdrt_stash_begin_update(pdrt_stash *s) {
    const float *cur = pdrt_stash_newest(s);
    int64_t next = s->newest + 1;
    int slot = (int)(next % s->nv);
    float *dst = s->blob + (size_t)slot * (size_t)s->n;
    if (dst != cur) memcpy(dst, cur, (size_t)s->n * sizeof(float));
    s->slot_version[slot] = next;
    s->newest = next;
    return dst;
}

float *pdrt_stash_reset(pdrt_stash *s, int64_t version) {
    PDRT_CHECK(version >= 0);
    for (int i = 0; i < s->nv; i++) s->slot_version[i] = -1;
    for (int i = 0; i < s->depth; i++) s->mb_id[i] = s->mb_version[i] = -1;
    s->newest = version;
    s->slot_version[version % s->nv] = version;
    return pdrt_stash_newest(s);
}
