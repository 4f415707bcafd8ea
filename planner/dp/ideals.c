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

/* Adds the set x unless present. Returns 1 if added, 0 if present, -1 on OOM; *at (when not
 * NULL) = its index. */
static int add_ideal_at(builder *b, const uint64_t *x, int size, long *at) {
    pd_ideals *id = b->id;
    if (2 * (id->count + 1) > b->slots && grow_table(b)) return -1;
    uint64_t h = hash_bits(x, id->words);
    long s = (long)(h & (uint64_t)(b->slots - 1));
    while (b->table[s]) {
        if (!memcmp(pd_ideal_bits(id, b->table[s] - 1), x, sizeof(uint64_t) * (size_t)id->words)) {
            if (at) *at = b->table[s] - 1;
            return 0;
        }
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
    if (at) *at = id->count;
    b->table[s] = ++id->count;
    return 1;
}

static int add_ideal(builder *b, const uint64_t *x, int size) {
    return add_ideal_at(b, x, size, NULL);
}

static int popcount_bits(const uint64_t *x, int W) {
    int c = 0;
    for (int w = 0; w < W; w++) c += __builtin_popcountll(x[w]);
    return c;
}

static const uint64_t *sort_bits; /* for by_size (enumeration is single-threaded) */
static int sort_words;
static int by_size(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    int si = popcount_bits(sort_bits + (size_t)i * (size_t)sort_words, sort_words);
    int sj = popcount_bits(sort_bits + (size_t)j * (size_t)sort_words, sort_words);
    if (si != sj) return si < sj ? -1 : 1;
    return (i > j) - (i < j);
}

/* The cap was hit: replaces what was enumerated by the principal ideals, the set of every node's
 * producers, transitively, and the node itself (one per node), plus the empty and the full set,
 * in order of size. Every cut that leaves one node's output (or a set's) crossing is among
 * them, so chains of modules are planned whole; cuts through several parallel branches at once
 * are not (the plan says exact: false). The closure is iterated to a fixed point (one pass when
 * the nodes are in topological order). */
static int principal_family(builder *b, const pd_costgraph *g, const uint64_t *preds,
                            uint64_t *x) {
    pd_ideals *id = b->id;
    int W = id->words, n = g->n;
    uint64_t *down = calloc((size_t)n * (size_t)W + 1, sizeof *down);
    int *order = malloc(sizeof(int) * (size_t)(n + 1));
    if (!down || !order) {
        free(down);
        free(order);
        return -1;
    }
    for (int changed = 1; changed;) { /* down[v] = v and every ancestor of v */
        changed = 0;
        for (int v = 0; v < n; v++) {
            uint64_t *d = down + (size_t)v * (size_t)W;
            int before = popcount_bits(d, W);
            d[v >> 6] |= 1ull << (v & 63);
            const uint64_t *p = preds + (size_t)v * (size_t)W;
            for (int u = 0; u < n; u++)
                if ((p[u >> 6] >> (u & 63)) & 1u)
                    for (int w = 0; w < W; w++) d[w] |= down[(size_t)u * (size_t)W + (size_t)w];
            if (popcount_bits(d, W) != before) changed = 1; /* sets only grow */
        }
    }
    for (int v = 0; v < n; v++) order[v] = v;
    sort_bits = down;
    sort_words = W;
    qsort(order, (size_t)n, sizeof(int), by_size);
    id->count = 0;
    memset(b->table, 0, sizeof(long) * (size_t)b->slots);
    memset(x, 0, sizeof(uint64_t) * (size_t)W);
    int rc = add_ideal(b, x, 0) < 0 ? -1 : 0;
    for (int k = 0; k < n && !rc; k++) {
        const uint64_t *d = down + (size_t)order[k] * (size_t)W;
        int sz = popcount_bits(d, W);
        if (sz < n && add_ideal(b, d, sz) < 0) rc = -1;
    }
    memset(x, 0, sizeof(uint64_t) * (size_t)W);
    for (int v = 0; v < n; v++) x[v >> 6] |= 1ull << (v & 63);
    if (!rc && add_ideal(b, x, n) < 0) rc = -1;
    free(down);
    free(order);
    return rc;
}

/* The covers of each ideal (the ideals one node larger), recorded while enumerating: CSR over
 * the ideals in index order, at most max edges. */
typedef struct {
    long *off, off_cap;
    int *to;
    long n, cap, max;
    int over; /* max was reached */
} cover_rec;

/* Opens ideal k's list of covers (off[k] = edges so far). */
static int cover_start(cover_rec *r, long k) {
    if (k + 2 > r->off_cap) {
        long cap = r->off_cap ? r->off_cap * 2 : 1024;
        while (cap < k + 2) cap *= 2;
        long *o = realloc(r->off, sizeof(long) * (size_t)cap);
        if (!o) return -1;
        r->off = o;
        r->off_cap = cap;
    }
    r->off[k] = r->n;
    r->off[k + 1] = r->n;
    return 0;
}

/* Adds a cover to the list opened last; sets r->over at the most edges. */
static int cover_add(cover_rec *r, long k, long child) {
    if (r->n == r->max) {
        r->over = 1;
        return 0;
    }
    if (r->n == r->cap) {
        long cap = r->cap ? r->cap * 2 : 4096;
        if (cap > r->max) cap = r->max;
        int *t = realloc(r->to, sizeof(int) * (size_t)cap);
        if (!t) return -1;
        r->to = t;
        r->cap = cap;
    }
    r->to[r->n++] = (int)child;
    r->off[k + 1] = r->n;
    return 0;
}

/* pd_ideals_enumerate, and with rec the covers too (then the cap leaves id->complete = 0 and
 * no principal family). */
static int enumerate(pd_ideals *id, const pd_costgraph *g, long max_states, cover_rec *rec) {
    memset(id, 0, sizeof *id);
    id->n = g->n;
    id->words = (g->n + 63) / 64;
    if (id->words == 0) id->words = 1;
    id->complete = 1;
    builder b = {.id = id};
    int W = id->words, rc = -1;
    /* producers of each node as a bitset */
    uint64_t *preds = calloc((size_t)g->n * (size_t)W + 1, sizeof *preds);
    uint64_t *x = calloc((size_t)W, sizeof *x);
    if (!preds || !x) goto done;
    for (int e = 0; e < g->n_edges; e++)
        preds[(size_t)g->dst[e] * (size_t)W + (size_t)(g->src[e] >> 6)] |= 1ull << (g->src[e] & 63);
    if (add_ideal(&b, x, 0) < 0) goto done;
    long level_start = 0;
    for (int sz = 0; sz < g->n && id->complete; sz++) {
        long level_end = id->count;
        for (long k = level_start; k < level_end && id->complete; k++) {
            if (rec && cover_start(rec, k) < 0) goto done;
            for (int v = 0; v < g->n; v++) {
                const uint64_t *cur = pd_ideal_bits(id, k);
                if ((cur[v >> 6] >> (v & 63)) & 1u) continue;
                const uint64_t *p = preds + (size_t)v * (size_t)W;
                int ok = 1;
                for (int w = 0; w < W && ok; w++)
                    if (p[w] & ~cur[w]) ok = 0;
                if (!ok) continue;
                memcpy(x, cur, sizeof(uint64_t) * (size_t)W);
                x[v >> 6] |= 1ull << (v & 63);
                long at = -1;
                if (max_states > 0 && id->count >= max_states - 1) {
                    id->complete = 0;
                    break;
                }
                if (add_ideal_at(&b, x, sz + 1, &at) < 0) goto done;
                if (rec && cover_add(rec, k, at) < 0) goto done;
                if (rec && rec->over) {
                    id->complete = 0;
                    break;
                }
            }
        }
        level_start = level_end;
    }
    if (!id->complete && !rec && principal_family(&b, g, preds, x) < 0) goto done;
    if (rec && id->complete && cover_start(rec, id->count - 1) < 0) goto done; /* the full set */
    id->chain = id->complete && id->count == g->n + 1;
    if (pd_ideals_sums(id, g)) goto done;
    rc = 0;
done:
    free(preds);
    free(x);
    free(b.table);
    if (rc) pd_ideals_free(id);
    return rc;
}

int pd_ideals_enumerate(pd_ideals *id, const pd_costgraph *g, long max_states) {
    return enumerate(id, g, max_states, NULL);
}

int pd_ideals_enumerate_covers(pd_ideals *id, const pd_costgraph *g, long max_states,
                               long max_covers, long **cover_off, int **covers) {
    cover_rec r = {.max = max_covers > 0 ? max_covers : 1};
    *cover_off = NULL;
    *covers = NULL;
    int rc = enumerate(id, g, max_states, &r);
    if (rc || !id->complete) {
        free(r.off);
        free(r.to);
        return rc;
    }
    *cover_off = r.off;
    *covers = r.to;
    return 0;
}

int pd_ideals_sums(pd_ideals *id, const pd_costgraph *g) {
    size_t c = (size_t)id->count;
    int W = id->words;
    free(id->compute);
    free(id->params);
    free(id->acts);
    free(id->cut);
    id->compute = calloc(c + 1, sizeof(double));
    id->params = calloc(c + 1, sizeof(double));
    id->acts = calloc(c + 1, sizeof(double));
    id->cut = calloc(c + 1, sizeof(double));
    uint64_t *succs = calloc((size_t)g->n * (size_t)W + 1, sizeof *succs);
    if (!id->compute || !id->params || !id->acts || !id->cut || !succs) {
        free(succs);
        return -1;
    }
    for (int e = 0; e < g->n_edges; e++)
        succs[(size_t)g->src[e] * (size_t)W + (size_t)(g->dst[e] >> 6)] |= 1ull << (g->dst[e] & 63);
    for (long k = 0; k < id->count; k++) {
        for (int v = 0; v < g->n; v++) {
            if (!pd_ideal_has(id, k, v)) continue;
            id->compute[k] += g->fwd_ms[v] + g->bwd_ms[v];
            id->params[k] += g->param_bytes[v];
            id->acts[k] += pd_node_stored_bytes(g, v);
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
    free(succs);
    return 0;
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
