/* ideals.h: every downward-closed set (ideal) of a cost graph, as bitsets, with the cumulative
 * sums the cost models need and the bytes that really leave each set.
 *
 * Ideals are listed by size (ideal 0 is the empty set, the last one is every node), so I subset
 * of J implies index(I) < index(J). On a chain the ideals are the n+1 prefixes. */
#ifndef PD_IDEALS_H
#define PD_IDEALS_H

#include <stddef.h>
#include <stdint.h>

#include "planner/model/costgraph.h"

typedef struct {
    int n;             /* graph nodes */
    int words;         /* 64-bit words per bitset */
    long count;        /* ideals enumerated */
    int complete;      /* 1 when every ideal is here; 0 when max_states stopped enumeration */
    int chain;         /* 1 when the ideals form a chain (ideal k = first k nodes in order) */
    uint64_t *bits;    /* count * words */
    int *size;         /* nodes per ideal */
    double *compute;   /* sum of fwd_ms + bwd_ms over the ideal */
    double *params;    /* sum of param_bytes */
    double *acts;      /* sum of act_bytes */
    double *cut;       /* bytes of the tensors leaving the ideal (producer inside, a consumer
                          outside; each producer once) */
} pd_ideals;

/* Enumerates the ideals of g, at most max_states (<= 0: no cap). Returns 0, or -1 on OOM.
 * When the cap stops it, id->complete = 0 and only ideals up to some size are present
 * (plus the full set, so a plan always exists). */
int pd_ideals_enumerate(pd_ideals *id, const pd_costgraph *g, long max_states);
/* The same with the covers of each ideal (the ideals one node larger; ideal k's are
 * covers[cover_off[k] .. cover_off[k + 1]), all of a larger index), at most max_states ideals and
 * max_covers covers: over either, id->complete = 0 and nothing else is kept (no principal
 * family). Returns 0, or -1 on OOM. The caller frees *cover_off and *covers. */
int pd_ideals_enumerate_covers(pd_ideals *id, const pd_costgraph *g, long max_states,
                               long max_covers, long **cover_off, int **covers);
void pd_ideals_free(pd_ideals *id);
/* (Re)computes compute, params, acts and cut of every ideal in id from g. 0, or -1 on OOM. */
int pd_ideals_sums(pd_ideals *id, const pd_costgraph *g);

static inline const uint64_t *pd_ideal_bits(const pd_ideals *id, long k) {
    return id->bits + (size_t)k * (size_t)id->words;
}
/* 1 when ideal a is a subset of ideal b */
static inline int pd_ideal_subset(const pd_ideals *id, long a, long b) {
    const uint64_t *x = pd_ideal_bits(id, a), *y = pd_ideal_bits(id, b);
    for (int w = 0; w < id->words; w++)
        if (x[w] & ~y[w]) return 0;
    return 1;
}
static inline int pd_ideal_has(const pd_ideals *id, long k, int v) {
    return (int)((pd_ideal_bits(id, k)[v >> 6] >> (v & 63)) & 1u);
}

#endif
