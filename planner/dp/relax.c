/* relax.c: a lower bound on the best bottleneck of a DAG on one level under the default cost
 * model, from a smaller graph, for when the DP plans over the principal ideals only (dp.c).
 *
 * A *segment* is a run v1 -> ... -> vk of a chain: each v(i+1) has v(i) as its only producer and
 * is v(i)'s only consumer. Contracting every segment to one node x (compute and parameters the
 * sums, output bytes the least of its nodes') gives a graph with far fewer ideals (an Inception
 * branch of conv, batchnorm, relu triples becomes a few nodes). Map an ideal I of g to the set
 * I' of segments whose head v1 is in I: I' is an ideal, cut'(I') <= cut(I) (a segment counted in
 * cut'(I') has its last node in I, or a node inside it, crossing with bytes at least the least),
 * and the stage (I, J, r) maps to (I', J', r) with a price no higher when the stage's compute
 * (and parameters) are counted as sum over J' \ I' minus the tail (all but v1) of every segment
 * of J' \ I' with no consumer in J' (those the stage may hold only the head of; the others it
 * holds whole). A stage that maps to nothing is dropped (at most N workers: fewer is allowed).
 * So the contracted problem's optimum is at most g's: a lower bound, which bisection between the
 * compute bound and the plan's bottleneck finds with a feasibility test per probe (the fewest
 * workers covering each ideal with stages of at most T each, over every pair I' subset J'). The
 * segments are cut so that a tail costs at most tau (compute plus its all-reduce's bytes at the
 * bandwidth), tau the smallest of a doubling sequence whose graph has at most max_states ideals:
 * a smaller tau, a tighter bound. docs/planner.md, "Lower bounds"; test_dp checks it against
 * the exhaustive search. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp_internal.h"
#include "planner/cost/cost.h"

typedef struct {
    pd_costgraph *g;  /* the contracted graph (fwd_ms holds compute, bwd_ms 0) */
    double *tail_ms;  /* per segment: compute of all but its head */
    double *tail_p;   /* per segment: parameter bytes of all but its head */
    int *seg;         /* per node of g: its segment */
} contracted;

static void contracted_free(contracted *c) {
    pd_costgraph_free(c->g);
    free(c->tail_ms);
    free(c->tail_p);
    free(c->seg);
    memset(c, 0, sizeof *c);
}

/* Contracts the segments of g whose tails cost at most tau (ms), numbered in the order of their
 * heads (so the contracted graph stays topologically ordered: an edge between two segments ends
 * at a head). */
static int contract(contracted *out, const pd_costgraph *g, double B, double tau) {
    int n = g->n, rc = -1;
    int *np = calloc((size_t)n, sizeof(int)), *nc = calloc((size_t)n, sizeof(int));
    int *prod = malloc(sizeof(int) * (size_t)n), *seg = malloc(sizeof(int) * (size_t)n);
    memset(out, 0, sizeof *out);
    if (!np || !nc || !prod || !seg) goto done;
    for (int e = 0; e < g->n_edges; e++) {
        np[g->dst[e]]++;
        nc[g->src[e]]++;
        prod[g->dst[e]] = g->src[e];
    }
    double *tail = calloc((size_t)n, sizeof(double)); /* per segment so far */
    if (!tail) goto done;
    int S = 0;
    for (int v = 0; v < n; v++) {
        double t = g->fwd_ms[v] + g->bwd_ms[v] + 2000.0 * g->param_bytes[v] / B;
        /* v joins its producer's segment when the two are a chain link (then the producer is
         * that segment's last node so far: v is its only consumer) and the tail stays within
         * tau; segments are numbered by their heads, in node order */
        int joins = np[v] == 1 && nc[prod[v]] == 1 && tail[seg[prod[v]]] + t <= tau;
        if (joins) {
            seg[v] = seg[prod[v]];
            tail[seg[v]] += t;
        } else {
            seg[v] = S++;
        }
    }
    free(tail);
    out->g = pd_costgraph_new(S, g->n_edges);
    out->tail_ms = calloc((size_t)S, sizeof(double));
    out->tail_p = calloc((size_t)S, sizeof(double));
    if (!out->g || !out->tail_ms || !out->tail_p) goto done;
    /* a segment's bytes: its cheapest member's, for its cuts (act_bytes) and for its memory
     * (stored_bytes: what pd_node_stored_bytes sums; never above the segment's own) */
    out->g->stored_bytes = g->stored_bytes ? malloc(sizeof(double) * (size_t)S) : NULL;
    if (g->stored_bytes && !out->g->stored_bytes) goto done;
    for (int x = 0; x < S; x++) {
        out->g->act_bytes[x] = INFINITY;
        if (out->g->stored_bytes) out->g->stored_bytes[x] = INFINITY;
    }
    int *head = malloc(sizeof(int) * (size_t)S);
    if (!head) goto done;
    for (int x = 0; x < S; x++) head[x] = -1;
    for (int v = 0; v < n; v++) {
        int x = seg[v];
        double t = g->fwd_ms[v] + g->bwd_ms[v];
        out->g->fwd_ms[x] += t;
        out->g->param_bytes[x] += g->param_bytes[v];
        if (g->act_bytes[v] < out->g->act_bytes[x]) out->g->act_bytes[x] = g->act_bytes[v];
        if (out->g->stored_bytes && g->stored_bytes[v] < out->g->stored_bytes[x])
            out->g->stored_bytes[x] = g->stored_bytes[v];
        if (head[x] < 0) head[x] = v;
        else {
            out->tail_ms[x] += t;
            out->tail_p[x] += g->param_bytes[v];
        }
    }
    free(head);
    out->g->n_edges = 0;
    for (int e = 0; e < g->n_edges; e++) {
        int a = seg[g->src[e]], b = seg[g->dst[e]];
        if (a == b) continue;
        out->g->src[out->g->n_edges] = a;
        out->g->dst[out->g->n_edges] = b;
        out->g->n_edges++;
    }
    rc = 0;
done:
    free(np);
    free(nc);
    free(prod);
    if (rc) {
        free(seg);
        contracted_free(out);
    } else {
        out->seg = seg;
    }
    return rc;
}

/* The fewest workers that run the contracted graph with every stage at most T (relaxed prices),
 * or INT_MAX / 2 when more than N. w is a scratch array of S ints. */
static int fewest_workers(const contracted *c, const pd_ideals *id, const uint64_t *maximal,
                          int N, double B, int compat, double T, int *w) {
    long S = id->count;
    int W = id->words, none = N + 1;
    w[0] = 0;
    for (long j = 1; j < S; j++) {
        const uint64_t *bj = pd_ideal_bits(id, j), *mj = maximal + (size_t)j * (size_t)W;
        int best = none, last = j == S - 1;
        double out_j = last ? 0 : id->cut[j];
        for (long i = 0; i < j; i++) {
            if (w[i] >= best) continue;
            const uint64_t *bi = pd_ideal_bits(id, i);
            int sub = 1;
            for (int k = 0; k < W && sub; k++) sub = !(bi[k] & ~bj[k]);
            if (!sub) continue;
            double tc = id->compute[j] - id->compute[i], tp = id->params[j] - id->params[i];
            for (int k = 0; k < W; k++) { /* tails of the stage's segments that end it */
                uint64_t m = mj[k] & ~bi[k];
                while (m) {
                    int x = k * 64 + __builtin_ctzll(m);
                    m &= m - 1;
                    tc -= c->tail_ms[x];
                    tp -= c->tail_p[x];
                }
            }
            if (tc < 0) tc = 0;
            if (tp < 0) tp = 0;
            double in = i == 0 ? 0 : id->cut[i], out = out_j;
            /* --compat pipedream on one level is the same form: an all-reduce of 4 (r-1) P /
             * (r B), and no transfer out of the first stage (cost.c, K = 1) */
            if (compat) {
                tp *= 2;
                if (i == 0) out = 0;
            }
            double lead = tc > 2000.0 * in / B ? tc : 2000.0 * in / B;
            if (2000.0 * out / B > lead) lead = 2000.0 * out / B;
            /* the least r with a time at most T: 1, or from r = 2 on, where the time does not
             * grow with r, the closed form checked a step either way */
            int room = best - 1 - w[i], r;
            if (room < 1 || lead > T * room) continue;
            if (pd_stage_time_default(tc, tp, in, out, i == 0, last, B, 1) <= T) {
                r = 1;
            } else {
                double x = pd_stage_replicas_default(tc, tp, in, out, i == 0, last, B, T);
                r = x < 2 ? 2 : x > room + 1 ? room + 1 : (int)ceil(x);
                while (r > 2 && pd_stage_time_default(tc, tp, in, out, i == 0, last, B, r - 1) <= T)
                    r--;
                while (r <= room && pd_stage_time_default(tc, tp, in, out, i == 0, last, B, r) > T)
                    r++;
            }
            if (r <= room) best = w[i] + r;
        }
        w[j] = best;
    }
    return w[S - 1];
}

/* The contraction with the smallest tau (0, then a sequence growing by 2^(1/4) from total / 2^20)
 * whose graph has at most max_states ideals, and its ideals. 0, or -1 (none, or OOM). */
static int pick(contracted *c, pd_ideals *id, const pd_costgraph *g, double B, long max_states) {
    double total = 0;
    for (int v = 0; v < g->n; v++)
        total += g->fwd_ms[v] + g->bwd_ms[v] + 2000.0 * g->param_bytes[v] / B;
    for (int k = -1; k <= 96; k++) {
        double tau = k < 0 ? 0 : total * pow(2.0, (k - 80) / 4.0);
        if (contract(c, g, B, tau)) return -1;
        if (pd_ideals_enumerate(id, c->g, max_states)) {
            contracted_free(c);
            return -1;
        }
        if (id->complete) return 0;
        pd_ideals_free(id);
        contracted_free(c);
    }
    return -1;
}

double dp_chain_relaxation_bound(const pd_costgraph *g, int N, double B, int compat, double lo,
                                 double hi, long max_states) {
    if (!(hi > lo) || N < 1 || N > 4096) return lo;
    contracted c = {0};
    pd_ideals id = {0};
    if (pick(&c, &id, g, B, max_states)) return lo;
    long S = id.count;
    int W = id.words;
    uint64_t *maximal = calloc((size_t)S * (size_t)W, sizeof(uint64_t));
    int *w = malloc(sizeof(int) * (size_t)S);
    if (maximal && w) {
        /* per ideal: its segments with a tail and no consumer inside */
        for (long j = 0; j < S; j++) {
            uint64_t *m = maximal + (size_t)j * (size_t)W;
            for (int x = 0; x < c.g->n; x++)
                if (pd_ideal_has(&id, j, x) && (c.tail_ms[x] > 0 || c.tail_p[x] > 0))
                    m[x >> 6] |= 1ull << (x & 63);
            for (int e = 0; e < c.g->n_edges; e++)
                if (pd_ideal_has(&id, j, c.g->dst[e]))
                    m[c.g->src[e] >> 6] &= ~(1ull << (c.g->src[e] & 63));
        }
        /* bisection: lo is infeasible (or the compute bound), hi an incumbent's bottleneck */
        double plan = hi;
        for (int probe = 0; probe < 40 && hi > lo * (1 + 2e-4); probe++) {
            double T = 0.5 * (lo + hi);
            if (fewest_workers(&c, &id, maximal, N, B, compat, T, w) <= N) hi = T;
            else lo = T;
        }
        /* nothing below the plan found: one probe just below it, which can prove it optimal */
        if (hi == plan && lo < plan * (1 - 1e-10) &&
            fewest_workers(&c, &id, maximal, N, B, compat, plan * (1 - 1e-10), w) > N)
            lo = plan * (1 - 1e-10);
    }
    free(maximal);
    free(w);
    pd_ideals_free(&id);
    contracted_free(&c);
    return lo;
}

/* for sorting a family by size, then bits (single-threaded, as ideals.c's sort) */
static const uint64_t *fam_bits;
static int fam_words;
static int by_size_then_bits(const void *a, const void *b) {
    const uint64_t *x = fam_bits + *(const long *)a * fam_words;
    const uint64_t *y = fam_bits + *(const long *)b * fam_words;
    int sx = 0, sy = 0;
    for (int w = 0; w < fam_words; w++) {
        sx += __builtin_popcountll(x[w]);
        sy += __builtin_popcountll(y[w]);
    }
    if (sx != sy) return sx < sy ? -1 : 1;
    return memcmp(x, y, sizeof(uint64_t) * (size_t)fam_words);
}

int dp_widen_family(pd_ideals *id, const pd_costgraph *g, double B, long max_states) {
    contracted c = {0};
    pd_ideals cid = {0};
    if (max_states < 2 || pick(&c, &cid, g, B, max_states)) return 0; /* nothing to add */
    int W = id->words;
    long n = id->count + cid.count;
    uint64_t *bits = calloc((size_t)n * (size_t)W, sizeof(uint64_t));
    long *order = malloc(sizeof(long) * (size_t)n);
    int rc = -1;
    if (!bits || !order) goto done;
    memcpy(bits, id->bits, sizeof(uint64_t) * (size_t)id->count * (size_t)W);
    for (long k = 0; k < cid.count; k++) { /* every node of the segments inside */
        uint64_t *b = bits + (size_t)(id->count + k) * (size_t)W;
        for (int v = 0; v < g->n; v++)
            if (pd_ideal_has(&cid, k, c.seg[v])) b[v >> 6] |= 1ull << (v & 63);
    }
    for (long k = 0; k < n; k++) order[k] = k;
    fam_bits = bits;
    fam_words = W;
    qsort(order, (size_t)n, sizeof(long), by_size_then_bits);
    uint64_t *kept = malloc(sizeof(uint64_t) * (size_t)n * (size_t)W);
    int *size = malloc(sizeof(int) * (size_t)n);
    if (!kept || !size) {
        free(kept);
        free(size);
        goto done;
    }
    long m = 0;
    for (long k = 0; k < n; k++) {
        const uint64_t *b = bits + (size_t)order[k] * (size_t)W;
        if (m && !memcmp(kept + (size_t)(m - 1) * (size_t)W, b, sizeof(uint64_t) * (size_t)W))
            continue;
        memcpy(kept + (size_t)m * (size_t)W, b, sizeof(uint64_t) * (size_t)W);
        int sz = 0;
        for (int w = 0; w < W; w++) sz += __builtin_popcountll(b[w]);
        size[m++] = sz;
    }
    free(id->bits);
    free(id->size);
    id->bits = kept;
    id->size = size;
    id->count = m;
    rc = pd_ideals_sums(id, g);
done:
    free(bits);
    free(order);
    pd_ideals_free(&cid);
    contracted_free(&c);
    return rc;
}
