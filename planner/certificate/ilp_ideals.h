/* ilp_ideals.h: the integer program's own downward-closed sets (ideals) of a cost graph, as
 * bitsets (ilp_ideals.c). It shares no code with the DP's enumeration (planner/dp/ideals.h). */
#ifndef PD_ILP_IDEALS_H
#define PD_ILP_IDEALS_H

#include <stdint.h>

#include "planner/cost/cost.h"
#include "planner/model/costgraph.h"

/* Every ideal of a graph, sorted by size (the empty set first, the full set last). */
typedef struct {
    int n;          /* nodes of the graph */
    int words;      /* 64-bit words per set */
    int count;      /* ideals */
    uint64_t *bits; /* count * words */
    int *size;      /* nodes in each ideal */
} pd_ilp_ideals;

/* Enumerates the ideals of g. Returns 0, 1 when there are more than max_ideals (out is then
 * empty), -1 when out of memory. */
int pd_ilp_ideals_enum(pd_ilp_ideals *out, const pd_costgraph *g, long max_ideals);
void pd_ilp_ideals_free(pd_ilp_ideals *s);
/* 1 when ideal a is a proper subset of ideal b. */
int pd_ilp_ideal_below(const pd_ilp_ideals *s, int a, int b);
/* The sums of the stage j \ i (ideals, i below j): compute (fwd + bwd ms), parameter and
 * activation bytes, the rest of *s zero; its nodes in order into nodes (when not NULL). Returns
 * how many nodes the stage has. */
int pd_ilp_stage_sums(pd_stage_sums *s, const pd_costgraph *g, const pd_ilp_ideals *id, int i,
                      int j, int *nodes);
/* 1 when node v is in ideal i. */
static inline int pd_ilp_ideal_has(const pd_ilp_ideals *s, int i, int v) {
    return (int)((s->bits[(long)i * s->words + v / 64] >> (v % 64)) & 1u);
}

#endif
