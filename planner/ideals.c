/* ideals.c: enumerates the downward-closed sets of a cost graph breadth-first by size (ideals of
 * size k+1 are ideals of size k plus one node whose producers are all inside), deduplicated by a
 * hash set of bitsets, and precomputes their cumulative sums and cut bytes. */
#include "ideals.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    pd_ideals *id;
    long cap;          /* allocated ideals */
    long *table;       /* hash slots: ideal index + 1, 0 = empty */
    long slots;
} builder;

static uint64_t hash_bits(const uint64_t *b, int words) {
    uint64_t h = 1469598103934665603ull;
    for (int w = 0; w < words; w++) {
        h ^= b[w];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static int grow_table(builder *b) {
    long slots = b->slots ? b->slots * 2 : 1024;
    long *t = calloc((size_t)slots, sizeof *t);
    if (!t) return -1;
    for (long k = 0; k < b->id->count; k++) {
        uint64_t h = hash_bits(pd_ideal_bits(b->id, k), b->id->words);
        long s = (long)(h & (uint64_t)(slots - 1));
        while (t[s]) s = (s + 1) & (slots - 1);
        t[s] = k + 1;
    }
    free(b->table);
    b->table = t;
    b->slots = slots;
    return 0;
}

/* Adds the set x unless present. Returns 1 if added, 0 if present, -1 on OOM. */
static int add_ideal(builder *b, const uint64_t *x, int size) {
    pd_ideals *id = b->id;
    if (2 * (id->count + 1) > b->slots && grow_table(b)) return -1;
    uint64_t h = hash_bits(x, id->words);
    long s = (long)(h & (uint64_t)(b->slots - 1));
    while (b->table[s]) {
        if (!memcmp(pd_ideal_bits(id, b->table[s] - 1), x, sizeof(uint64_t) * (size_t)id->words))
            return 0;
        s = (s + 1) & (b->slots - 1);
    }
    if (id->count == b->cap) {
        long cap = b->cap ? b->cap * 2 : 256;
        uint64_t *bits = realloc(id->bits, sizeof(uint64_t) * (size_t)id->words * (size_t)cap);
        if (!bits) return -1;
        id->bits = bits;
        int *sz = realloc(id->size, sizeof(int) * (size_t)cap);
        if (!sz) return -1;
        id->size = sz;
        b->cap = cap;
    }
    memcpy(id->bits + (size_t)id->count * (size_t)id->words, x,
           sizeof(uint64_t) * (size_t)id->words);
    id->size[id->count] = size;
    b->table[s] = ++id->count;
    return 1;
}

int pd_ideals_enumerate(pd_ideals *id, const pd_costgraph *g, long max_states) {
    memset(id, 0, sizeof *id);
    id->n = g->n;
    id->words = (g->n + 63) / 64;
    if (id->words == 0) id->words = 1;
    id->complete = 1;
    builder b = {.id = id};
    int W = id->words, rc = -1;
    /* producers of each node as a bitset */
    uint64_t *preds = calloc((size_t)g->n * (size_t)W + 1, sizeof *preds);
    uint64_t *succs = calloc((size_t)g->n * (size_t)W + 1, sizeof *succs);
    uint64_t *x = calloc((size_t)W, sizeof *x);
    if (!preds || !succs || !x) goto done;
    for (int e = 0; e < g->n_edges; e++)
        {
        preds[(size_t)g->dst[e] * (size_t)W + (size_t)(g->src[e] >> 6)] |= 1ull << (g->src[e] & 63);
        succs[(size_t)g->src[e] * (size_t)W + (size_t)(g->dst[e] >> 6)] |= 1ull << (g->dst[e] & 63);
    }
    if (add_ideal(&b, x, 0) < 0) goto done;
    long level_start = 0;
    for (int sz = 0; sz < g->n && id->complete; sz++) {
        long level_end = id->count;
        for (long k = level_start; k < level_end && id->complete; k++) {
            for (int v = 0; v < g->n; v++) {
                const uint64_t *cur = pd_ideal_bits(id, k);
                if ((cur[v >> 6] >> (v & 63)) & 1u) continue;
                const uint64_t *p = preds + (size_t)v * (size_t)W;
                int ok = 1;
                for (int w = 0; w < W && ok; w++)
                    if (p[w] & ~cur[w]) ok = 0;
                if (!ok) continue;
                if (max_states > 0 && id->count >= max_states - 1) {
                    id->complete = 0;
                    break;
                }
                memcpy(x, cur, sizeof(uint64_t) * (size_t)W);
                x[v >> 6] |= 1ull << (v & 63);
                if (add_ideal(&b, x, sz + 1) < 0) goto done;
            }
        }
        level_start = level_end;
    }
    if (!id->complete) { /* keep the full set so that a plan exists */
        memset(x, 0, sizeof(uint64_t) * (size_t)W);
        for (int v = 0; v < g->n; v++) x[v >> 6] |= 1ull << (v & 63);
        if (add_ideal(&b, x, g->n) < 0) goto done;
    }
    id->chain = id->complete && id->count == g->n + 1;
    size_t c = (size_t)id->count;
    id->compute = calloc(c, sizeof(double));
    id->params = calloc(c, sizeof(double));
    id->acts = calloc(c, sizeof(double));
    id->cut = calloc(c, sizeof(double));
    if (!id->compute || !id->params || !id->acts || !id->cut) goto done;
    for (long k = 0; k < id->count; k++) {
        for (int v = 0; v < g->n; v++) {
            if (!pd_ideal_has(id, k, v)) continue;
            id->compute[k] += g->fwd_ms[v] + g->bwd_ms[v];
            id->params[k] += g->param_bytes[v];
            id->acts[k] += g->act_bytes[v];
        }
        /* each producer inside with a consumer outside counts its tensor once */
        const uint64_t *cur = pd_ideal_bits(id, k);
        for (int u = 0; u < g->n; u++) {
            if (!pd_ideal_has(id, k, u)) continue;
            const uint64_t *s = succs + (size_t)u * (size_t)W;
            for (int w = 0; w < W; w++)
                if (s[w] & ~cur[w]) {
                    id->cut[k] += g->act_bytes[u];
                    break;
                }
        }
    }
    rc = 0;
done:
    free(preds);
    free(succs);
    free(x);
    free(b.table);
    if (rc) pd_ideals_free(id);
    return rc;
}

void pd_ideals_free(pd_ideals *id) {
    free(id->bits);
    free(id->size);
    free(id->compute);
    free(id->params);
    free(id->acts);
    free(id->cut);
    memset(id, 0, sizeof *id);
}
