/* ilp_ideals.c: the integer program's own enumeration of downward-closed sets (ideals).
 *
 * Nodes are visited in topological order; each is either left out, or taken when all of its
 * predecessors are taken. Every leaf of that decision tree is a distinct ideal, so the tree has at
 * most n * ideals nodes. Independent of the DP's enumeration on purpose: the certificate must not
 * share the DP's code paths. */
#include "ilp_ideals.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const pd_costgraph *g;
    int words;
    int *pred_start, *pred; /* CSR predecessor lists */
    uint64_t *cur;
    uint64_t *bits;
    long count, cap, max;
    int overflow, oom;
} enum_state;

static int has(const uint64_t *set, int v) { return (int)((set[v / 64] >> (v % 64)) & 1u); }

static void emit(enum_state *st) {
    if (st->count >= st->max) { st->overflow = 1; return; }
    if (st->count == st->cap) {
        long cap = st->cap ? st->cap * 2 : 64;
        uint64_t *b = realloc(st->bits, (size_t)cap * st->words * sizeof(uint64_t));
        if (!b) { st->oom = 1; return; }
        st->bits = b;
        st->cap = cap;
    }
    memcpy(st->bits + st->count * st->words, st->cur, (size_t)st->words * sizeof(uint64_t));
    st->count++;
}

static void visit(enum_state *st, int v) {
    if (st->overflow || st->oom) return;
    if (v == st->g->n) { emit(st); return; }
    visit(st, v + 1); /* v left out */
    for (int k = st->pred_start[v]; k < st->pred_start[v + 1]; k++)
        if (!has(st->cur, st->pred[k])) return;
    st->cur[v / 64] |= (uint64_t)1 << (v % 64);
    visit(st, v + 1); /* v taken */
    st->cur[v / 64] &= ~((uint64_t)1 << (v % 64));
}

static int popcount_set(const uint64_t *s, int words) {
    int c = 0;
    for (int w = 0; w < words; w++) c += __builtin_popcountll(s[w]);
    return c;
}

static const pd_ilp_ideals *sort_ctx;
static int by_size(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_ctx->size[i] != sort_ctx->size[j]) return sort_ctx->size[i] - sort_ctx->size[j];
    return i - j;
}

int pd_ilp_ideals_enum(pd_ilp_ideals *out, const pd_costgraph *g, long max_ideals) {
    memset(out, 0, sizeof *out);
    int n = g->n, words = (n + 63) / 64;
    if (words == 0) words = 1;
    enum_state st = {0};
    st.g = g;
    st.words = words;
    st.max = max_ideals;
    st.pred_start = calloc((size_t)n + 2, sizeof(int));
    st.pred = malloc(((size_t)g->n_edges + 1) * sizeof(int));
    st.cur = calloc((size_t)words, sizeof(uint64_t));
    if (!st.pred_start || !st.pred || !st.cur) { st.oom = 1; goto done; }
    for (int e = 0; e < g->n_edges; e++) st.pred_start[g->dst[e] + 1]++;
    for (int v = 0; v < n; v++) st.pred_start[v + 1] += st.pred_start[v];
    {
        int *fill = calloc((size_t)n + 1, sizeof(int));
        if (!fill) { st.oom = 1; goto done; }
        for (int e = 0; e < g->n_edges; e++) {
            int v = g->dst[e];
            st.pred[st.pred_start[v] + fill[v]++] = g->src[e];
        }
        free(fill);
    }
    visit(&st, 0);
done:
    free(st.pred_start);
    free(st.pred);
    free(st.cur);
    if (st.oom || st.overflow) {
        free(st.bits);
        return st.oom ? -1 : 1;
    }
    /* sort by size: permute through an index array */
    int count = (int)st.count;
    int *idx = malloc((size_t)count * sizeof(int));
    int *size = malloc((size_t)count * sizeof(int));
    uint64_t *bits = malloc((size_t)count * words * sizeof(uint64_t));
    int *sorted_size = malloc((size_t)count * sizeof(int));
    if (!idx || !size || !bits || !sorted_size) {
        free(idx); free(size); free(bits); free(sorted_size); free(st.bits);
        return -1;
    }
    out->n = n;
    out->words = words;
    out->size = size;
    for (int i = 0; i < count; i++) {
        idx[i] = i;
        size[i] = popcount_set(st.bits + (long)i * words, words);
    }
    sort_ctx = out;
    qsort(idx, (size_t)count, sizeof(int), by_size);
    sort_ctx = NULL;
    for (int i = 0; i < count; i++) {
        memcpy(bits + (long)i * words, st.bits + (long)idx[i] * words,
               (size_t)words * sizeof(uint64_t));
        sorted_size[i] = size[idx[i]];
    }
    free(st.bits);
    free(idx);
    free(size);
    out->bits = bits;
    out->size = sorted_size;
    out->count = count;
    return 0;
}

void pd_ilp_ideals_free(pd_ilp_ideals *s) {
    free(s->bits);
    free(s->size);
    memset(s, 0, sizeof *s);
}

int pd_ilp_ideal_below(const pd_ilp_ideals *s, int a, int b) {
    if (s->size[a] >= s->size[b]) return 0;
    const uint64_t *x = s->bits + (long)a * s->words, *y = s->bits + (long)b * s->words;
    for (int w = 0; w < s->words; w++)
        if (x[w] & ~y[w]) return 0;
    return 1;
}

int pd_ilp_stage_sums(pd_stage_sums *s, const pd_costgraph *g, const pd_ilp_ideals *id, int i,
                      int j, int *nodes) {
    memset(s, 0, sizeof *s);
    int k = 0;
    for (int v = 0; v < g->n; v++)
        if (pd_ilp_ideal_has(id, j, v) && !pd_ilp_ideal_has(id, i, v)) {
            s->compute_ms += g->fwd_ms[v] + g->bwd_ms[v];
            s->param_bytes += g->param_bytes[v];
            s->act_bytes += pd_node_stored_bytes(g, v);
            if (nodes) nodes[k] = v;
            k++;
        }
    return k;
}
