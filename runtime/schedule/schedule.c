/* schedule.c: the schedule IR's generators (1f1b, flush, gpipe, zb-h1, zb-h2; replicated
 * stages; interleaved is in interleaved.c), its text form and the deadlock checker that simulates every rank with rendezvous
 * sends. See schedule.h for the semantics. */
#include "schedule.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *action_names[PD_A_COUNT] = {
    "forward", "backward", "send_act", "recv_act", "send_grad", "recv_grad",
    "step", "allreduce", "flush", "backward_input", "backward_weight",
};

static const char *const known[] = {"1f1b", "flush", "gpipe", "zb-h1", "zb-h2", "2bw",
                                     "interleaved", NULL};

int pd_schedule_known(const char *name) {
    for (int i = 0; name && known[i]; i++)
        if (!strcmp(name, known[i])) return 1;
    return 0;
}

int pd_schedule_is_sync(const char *name) {
    return pd_schedule_known(name) && strcmp(name, "1f1b") && strcmp(name, "2bw");
}

int pd_schedule_splits_backward(const char *name) {
    return name && (!strcmp(name, "zb-h1") || !strcmp(name, "zb-h2"));
}

const char *pd_schedule_names(void) { return "1f1b, flush, gpipe, zb-h1, zb-h2, 2bw, interleaved"; }

const char *pd_action_name(int kind) {
    return (kind >= 0 && kind < PD_A_COUNT) ? action_names[kind] : "?";
}

pd_schedule *pd_schedule_new(const char *name, int n_ranks, int steps) {
    pd_schedule *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_ranks = n_ranks;
    s->n_stages = n_ranks;
    s->steps = steps;
    s->send_slots = 1;
    s->chunks = 1;
    s->ranks = calloc((size_t)n_ranks, sizeof *s->ranks);
    if (!s->ranks) { free(s); return NULL; }
    for (int r = 0; r < n_ranks; r++) s->ranks[r].rank = s->ranks[r].stage = r;
    return s;
}

void pd_schedule_free(pd_schedule *s) {
    if (!s) return;
    for (int r = 0; r < s->n_ranks; r++) free(s->ranks[r].a);
    free(s->ranks);
    free(s);
}

int pd_schedule_push(pd_schedule *s, int r, int kind, int mb, int peer) {
    return pd_schedule_push_at(s, r, kind, mb, peer, s->ranks[r].stage);
}

int pd_schedule_push_at(pd_schedule *s, int r, int kind, int mb, int peer, int stage) {
    pd_rank_schedule *rs = &s->ranks[r];
    if (rs->n == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 16;
        pd_action *a = realloc(rs->a, (size_t)cap * sizeof *a);
        if (!a) return -1;
        rs->a = a;
        rs->cap = cap;
    }
    rs->a[rs->n++] = (pd_action){kind, mb, peer, stage};
    return 0;
}

/* The layout of a schedule being built: where each stage's replicas run. */
typedef struct {
    const pd_schedule_spec *sp;
    pd_schedule *s;
    int *first;  /* contiguous layout: stage s's first rank */
} layout;

static int reps(const layout *L, int st) { return L->sp->replicas ? L->sp->replicas[st] : 1; }

static int rank_at(const layout *L, int st, int j) {
    return L->sp->ranks ? L->sp->ranks[st][j] : L->first[st] + j;
}

/* The rank of stage st that runs minibatch mb. */
static int rank_of(const layout *L, int st, int mb) { return rank_at(L, st, mb % reps(L, st)); }

/* One forward of mb on rank r of stage st: receive, compute, send on. */
static int push_fwd(layout *L, int r, int st, int mb) {
    int e = 0, n = L->sp->n_stages;
    if (st > 0) e |= pd_schedule_push(L->s, r, PD_A_RECV_ACT, mb, rank_of(L, st - 1, mb));
    e |= pd_schedule_push(L->s, r, PD_A_FORWARD, mb, -1);
    if (st < n - 1) e |= pd_schedule_push(L->s, r, PD_A_SEND_ACT, mb, rank_of(L, st + 1, mb));
    return e;
}

/* One backward of mb on rank r of stage st (kind: PD_A_BACKWARD, or PD_A_BACKWARD_INPUT). */
static int push_bwd_as(layout *L, int r, int st, int mb, int kind) {
    int e = 0, n = L->sp->n_stages;
    if (st < n - 1) e |= pd_schedule_push(L->s, r, PD_A_RECV_GRAD, mb, rank_of(L, st + 1, mb));
    e |= pd_schedule_push(L->s, r, kind, mb, -1);
    if (st > 0) e |= pd_schedule_push(L->s, r, PD_A_SEND_GRAD, mb, rank_of(L, st - 1, mb));
    return e;
}

static int push_bwd(layout *L, int r, int st, int mb) { return push_bwd_as(L, r, st, mb, PD_A_BACKWARD); }

/* Update u (the all-reduce when replicated), the optimizer step, and a flush if asked. */
static int push_update(layout *L, int r, int st, int u, int last_mb, int flush) {
    int e = 0;
    if (reps(L, st) > 1) e |= pd_schedule_push(L->s, r, PD_A_ALLREDUCE, u, -1);
    e |= pd_schedule_push(L->s, r, PD_A_STEP, last_mb, -1);
    if (flush) e |= pd_schedule_push(L->s, r, PD_A_FLUSH, -1, -1);
    return e;
}

static int lo(int a, int b) { return a < b ? a : b; }

/* Replica j of stage st (rank r) under 1f1b: its minibatches j, j+R, ... with warm-up w. */
static int replica_1f1b(layout *L, int r, int st, int j, int w) {
    int R = reps(L, st), steps = L->sp->steps, e = 0;
    int n = steps > j ? (steps - j + R - 1) / R : 0;       /* my minibatches */
    int updates = (steps + R - 1) / R;                      /* the stage's updates */
    if (w > n) w = n;
    for (int i = 0; i < w; i++) e |= push_fwd(L, r, st, j + i * R);
    for (int i = 0; i < n; i++) {
        if (i + w < n) e |= push_fwd(L, r, st, j + (i + w) * R);
        e |= push_bwd(L, r, st, j + i * R);
        e |= push_update(L, r, st, i, lo(i * R + R, steps) - 1, 0);
    }
    for (int i = n; i < updates; i++) e |= push_update(L, r, st, i, steps - 1, 0);
    return e;
}

/* Replica j of stage st (rank r) under 2bw: 1F1B over its minibatches j, j+R, ... with warm-up w
 * and no flush; it joins update u (ALLREDUCE u when replicated, then STEP) after its last
 * backward of batch u (minibatches u*M .. u*M+M-1), and a batch none of its minibatches is in
 * where its next backward's batch is (or at the end). */
static int replica_2bw(layout *L, int r, int st, int j, int w, int M) {
    int R = reps(L, st), steps = L->sp->steps, e = 0;
    int n = steps > j ? (steps - j + R - 1) / R : 0;       /* my minibatches */
    int updates = (steps + M - 1) / M, u = 0;               /* u: the next update to join */
    if (w > n) w = n;
    for (int i = 0; i < w; i++) e |= push_fwd(L, r, st, j + i * R);
    for (int i = 0; i < n; i++) {
        int m = j + i * R, b = m / M;
        if (i + w < n) e |= push_fwd(L, r, st, j + (i + w) * R);
        for (; u < b; u++) e |= push_update(L, r, st, u, lo(u * M + M, steps) - 1, 0);
        e |= push_bwd(L, r, st, m);
        if (i + 1 == n || (m + R) / M != b) {
            e |= push_update(L, r, st, b, lo(b * M + M, steps) - 1, 0);
            u = b + 1;
        }
    }
    for (; u < updates; u++) e |= push_update(L, r, st, u, lo(u * M + M, steps) - 1, 0);
    return e;
}

/* Replica j of stage st under flush or gpipe. */
static int replica_sync(layout *L, int r, int st, int j, int w, int M, int gpipe) {
    int R = reps(L, st), steps = L->sp->steps, e = 0;
    int *mbs = malloc(sizeof(int) * (size_t)(M > 0 ? M : 1));
    if (!mbs) return -1;
    for (int base = 0, b = 0; base < steps; base += M, b++) {
        int end = lo(base + M, steps), n = 0;
        for (int m = base; m < end; m++)
            if (m % R == j) mbs[n++] = m;
        if (gpipe) {
            for (int i = 0; i < n; i++) e |= push_fwd(L, r, st, mbs[i]);
            for (int i = 0; i < n; i++) e |= push_bwd(L, r, st, mbs[i]);
        } else {
            int ww = w < n ? w : n;
            for (int i = 0; i < ww; i++) e |= push_fwd(L, r, st, mbs[i]);
            for (int i = 0; i < n; i++) {
                if (i + ww < n) e |= push_fwd(L, r, st, mbs[i + ww]);
                e |= push_bwd(L, r, st, mbs[i]);
            }
        }
        e |= push_update(L, r, st, b, end - 1, 1);
    }
    free(mbs);
    return e;
}

/* zb-h1 on replica j of stage st (rank r): per batch, its n minibatches as F, B (the input
 * gradient, sent upstream at once) and W (the weight gradient). Warm-up: w + 1 forwards (as
 * flush); then d times B, F with the W deferred; then B, W, F while forwards remain; then B, W;
 * then the d deferred W. W runs in minibatch order, d behind B; d = (stage 0's warm-up) - w, so
 * that every rank keeps at most stage 0's in-flight count (1F1B's peak) and the idle time before
 * the last stages' first B and after their last is filled with W. */
static int replica_zb_h1(layout *L, int r, int st, int j, int w, int d, int M) {
    int R = reps(L, st), steps = L->sp->steps, e = 0;
    int *mbs = malloc(sizeof(int) * (size_t)(M > 0 ? M : 1));
    if (!mbs) return -1;
    for (int base = 0, b = 0; base < steps; base += M, b++) {
        int end = lo(base + M, steps), n = 0, nf = 0, nb = 0, nw = 0;
        for (int m = base; m < end; m++)
            if (m % R == j) mbs[n++] = m;
        for (; nf < lo(w + 1, n); nf++) e |= push_fwd(L, r, st, mbs[nf]);
        for (int i = 0; i < d && nb < n; i++) {
            e |= push_bwd_as(L, r, st, mbs[nb++], PD_A_BACKWARD_INPUT);
            if (nf < n) e |= push_fwd(L, r, st, mbs[nf++]);
        }
        while (nb < n) {
            e |= push_bwd_as(L, r, st, mbs[nb++], PD_A_BACKWARD_INPUT);
            e |= pd_schedule_push(L->s, r, PD_A_BACKWARD_WEIGHT, mbs[nw++], -1);
            if (nf < n) e |= push_fwd(L, r, st, mbs[nf++]);
        }
        while (nw < n) e |= pd_schedule_push(L->s, r, PD_A_BACKWARD_WEIGHT, mbs[nw++], -1);
        e |= push_update(L, r, st, b, end - 1, 1);
    }
    free(mbs);
    return e;
}

/* zb-h2: one rank's state in the greedy list scheduler of a batch. */
typedef struct {
    int st, n;          /* its stage, and its minibatches in this batch */
    int *mbs;           /* those minibatches, ascending */
    int nf, nb, nw;     /* how many F, B and W it has scheduled */
    long free_at;       /* the tick from which it is idle */
} zb_rank;

/* One zb-h2 batch, minibatches base .. end - 1, on every rank: ticks of unit time; at each tick
 * every idle rank, in rank order, takes B if the gradient of its oldest backward is there, else
 * F if the activation is there and it has fewer than `limit` in flight, else its oldest
 * deferred W. done[0] (forwards) and done[1] (input gradients) hold per stage and minibatch the
 * tick at which it finished (LONG_MAX: not yet). */
static int zb_h2_batch(layout *L, zb_rank *z, int n_ranks, int base, int end, int limit,
                       long *done[2]) {
    int n = L->sp->n_stages, M = end - base, e = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < n * M; i++) done[k][i] = LONG_MAX;
    long left = 0;
    for (int r = 0; r < n_ranks; r++) {
        z[r].n = z[r].nf = z[r].nb = z[r].nw = 0;
        z[r].free_at = 0;
    }
    for (int st = 0; st < n; st++)
        for (int m = base; m < end; m++) {
            zb_rank *q = &z[rank_of(L, st, m)];
            q->mbs[q->n++] = m;
            left += 3;
        }
    long guard = 4 * left + 16;
    for (long t = 0; left > 0 && !e; t++) {
        if (t > guard) return -1; /* cannot happen: some rank always moves on */
        for (int r = 0; r < n_ranks; r++) {
            zb_rank *q = &z[r];
            if (q->free_at > t) continue;
            int st = q->st, kind = -1, mb = -1;
            if (q->nb < q->nf) {
                mb = q->mbs[q->nb];
                long ready = st == n - 1 ? done[0][st * M + mb - base]
                                         : done[1][(st + 1) * M + mb - base];
                if (ready <= t) kind = PD_A_BACKWARD_INPUT;
            }
            if (kind < 0 && q->nf < q->n && q->nf - q->nw < limit) {
                mb = q->mbs[q->nf];
                if (st == 0 || done[0][(st - 1) * M + mb - base] <= t) kind = PD_A_FORWARD;
            }
            if (kind < 0 && q->nw < q->nb) {
                mb = q->mbs[q->nw];
                kind = PD_A_BACKWARD_WEIGHT;
            }
            if (kind < 0) continue;
            if (kind == PD_A_FORWARD) {
                e |= push_fwd(L, r, st, mb);
                done[0][st * M + mb - base] = t + 1;
                q->nf++;
            } else if (kind == PD_A_BACKWARD_INPUT) {
                e |= push_bwd_as(L, r, st, mb, PD_A_BACKWARD_INPUT);
                done[1][st * M + mb - base] = t + 1;
                q->nb++;
            } else {
                e |= pd_schedule_push(L->s, r, PD_A_BACKWARD_WEIGHT, mb, -1);
                q->nw++;
            }
            q->free_at = t + 1;
            left--;
        }
    }
    return e;
}

/* zb-h2 over every batch of M minibatches, at most `limit` minibatches in flight per rank.
 * Returns nonzero on out of memory. */
static int build_zb_h2(layout *L, int n_ranks, int M, int limit) {
    int n = L->sp->n_stages, steps = L->sp->steps, e = 0;
    zb_rank *z = calloc((size_t)n_ranks, sizeof *z);
    long *done[2] = {malloc(sizeof(long) * (size_t)n * (size_t)M),
                     malloc(sizeof(long) * (size_t)n * (size_t)M)};
    e = !z || !done[0] || !done[1];
    for (int st = 0; st < n && !e; st++)
        for (int j = 0; j < reps(L, st) && !e; j++) {
            zb_rank *q = &z[rank_at(L, st, j)];
            q->st = st;
            q->mbs = malloc(sizeof(int) * (size_t)M);
            e = !q->mbs;
        }
    for (int base = 0, b = 0; base < steps && !e; base += M, b++) {
        int end = lo(base + M, steps);
        e |= zb_h2_batch(L, z, n_ranks, base, end, limit, done);
        for (int r = 0; r < n_ranks && !e; r++) e |= push_update(L, r, z[r].st, b, end - 1, 1);
    }
    for (int r = 0; z && r < n_ranks; r++) free(z[r].mbs);
    free(z);
    free(done[0]);
    free(done[1]);
    return e;
}

static int round_up(int x, int m) { return m > 0 ? (x + m - 1) / m * m : x; }
static int gcd(int a, int b) { return b ? gcd(b, a % b) : a; }

int pd_schedule_replica_lcm(int n_stages, const int *replicas) {
    int l = 1;
    for (int s = 0; replicas && s < n_stages; s++) {
        int r = replicas[s] > 0 ? replicas[s] : 1;
        l = l / gcd(l, r) * r;
        if (l > 100000) { l = 100000; break; }
    }
    return l;
}

int pd_schedule_default_microbatches(int n_stages, const int *replicas) {
    int l = pd_schedule_replica_lcm(n_stages, replicas);
    return round_up(4 * (n_stages > 0 ? n_stages : 1), l);
}

pd_schedule *pd_schedule_build(const pd_schedule_spec *sp) {
    if (!sp || !sp->name || sp->n_stages < 1 || sp->steps < 0) return NULL;
    int is_1f1b = !strcmp(sp->name, "1f1b");
    int is_gpipe = !strcmp(sp->name, "gpipe");
    if (!pd_schedule_known(sp->name) || !strcmp(sp->name, "interleaved")) return NULL;
    int n = sp->n_stages, total = 0;
    for (int st = 0; st < n; st++) {
        int r = sp->replicas ? sp->replicas[st] : 1;
        if (r < 1 || r > (1 << 20) || total > (1 << 20)) return NULL;
        total += r;
    }
    layout L = {sp, NULL, calloc((size_t)n, sizeof(int))};
    if (!L.first) return NULL;
    for (int st = 1; st < n; st++) L.first[st] = L.first[st - 1] + reps(&L, st - 1);
    pd_schedule *s = pd_schedule_new(sp->name, total, sp->steps);
    if (!s) { free(L.first); return NULL; }
    s->n_stages = n;
    L.s = s;
    int M = sp->microbatches > 0 ? sp->microbatches : pd_schedule_default_microbatches(n, sp->replicas);
    int max_w = 0, e = 0, is_h1 = !strcmp(sp->name, "zb-h1"), is_h2 = !strcmp(sp->name, "zb-h2");
    int is_2bw = !strcmp(sp->name, "2bw");
    for (int st = 0; st < n; st++) {
        int w = sp->warmup ? sp->warmup[st] : (total - 1 - L.first[st]) / reps(&L, st);
        if (w > max_w) max_w = w;
    }
    for (int st = 0; st < n && !e; st++) {
        int R = reps(&L, st);
        int w = sp->warmup ? sp->warmup[st] : (total - 1 - L.first[st]) / R;
        if (w < 0) w = 0;
        for (int j = 0; j < R && !e; j++) {
            int r = rank_at(&L, st, j);
            if (r < 0 || r >= total) { e = 1; break; }
            s->ranks[r].rank = r;
            s->ranks[r].stage = st;
            if (is_h2) continue; /* every rank at once, below */
            e |= is_1f1b ? replica_1f1b(&L, r, st, j, w)
                 : is_h1 ? replica_zb_h1(&L, r, st, j, w, max_w - w, M)
                 : is_2bw ? replica_2bw(&L, r, st, j, w, M)
                         : replica_sync(&L, r, st, j, w, M, is_gpipe);
        }
    }
    if (is_h2 && !e) e = build_zb_h2(&L, total, M, 2 * max_w + 1);
    free(L.first);
    if (e) { pd_schedule_free(s); return NULL; }
    s->send_slots = is_gpipe ? M + 1 : is_h1 ? max_w + 2 : is_h2 ? 2 * max_w + 2 : max_w + 1;
    return s;
}

pd_schedule *pd_schedule_1f1b(int n_stages, const int *warmup, int steps) {
    pd_schedule_spec sp = {"1f1b", n_stages, NULL, NULL, warmup, steps, 0};
    return pd_schedule_build(&sp);
}

void pd_schedule_write(FILE *out, const pd_schedule *s) {
    fprintf(out, "# pd_schedule 1: %s, %d stages, %d ranks, %d steps, send_slots %d", s->name,
            s->n_stages, s->n_ranks, s->steps, s->send_slots);
    if (s->chunks > 1) fprintf(out, ", %d chunks per rank", s->chunks);
    fputc('\n', out);
    for (int r = 0; r < s->n_ranks; r++) {
        const pd_rank_schedule *rs = &s->ranks[r];
        fprintf(out, "rank %d stage %d: %d actions\n", rs->rank, rs->stage, rs->n);
        for (int i = 0; i < rs->n; i++) {
            const pd_action *a = &rs->a[i];
            fprintf(out, "  %s", pd_action_name(a->kind));
            if (a->mb >= 0) fprintf(out, " %d", a->mb);
            if (a->kind == PD_A_SEND_ACT || a->kind == PD_A_SEND_GRAD) fprintf(out, " -> %d", a->peer);
            if (a->kind == PD_A_RECV_ACT || a->kind == PD_A_RECV_GRAD) fprintf(out, " <- %d", a->peer);
            if (s->chunks > 1 && a->kind != PD_A_FLUSH) fprintf(out, " @ %d", a->stage);
            fputc('\n', out);
        }
    }
}

/* ---- the checker ---- */

typedef struct {
    int n_ranks, steps, chunks;
    unsigned char *sent, *recvd; /* per message key: posted */
} msgs;

/* A message is (src, dst, kind 0=activation 1=gradient, mb, the receiving stage's chunk). */
static size_t msg_key(const msgs *g, int src, int dst, int k, int mb, int chunk) {
    return ((((size_t)src * (size_t)g->n_ranks + (size_t)dst) * 2 + (size_t)k) * (size_t)g->steps
            + (size_t)mb) * (size_t)g->chunks + (size_t)chunk;
}

/* The chunk of the stage that receives a's message (interleaved: stage / ranks; else 0). */
static int recv_chunk(const pd_schedule *s, const pd_action *a) {
    if (s->chunks <= 1) return 0;
    int st = a->kind == PD_A_SEND_ACT ? a->stage + 1 : a->kind == PD_A_SEND_GRAD ? a->stage - 1
                                                                                 : a->stage;
    return st / s->n_ranks;
}

typedef struct {
    int pc;
    size_t *keys[2]; /* outstanding sends per kind, as message keys, oldest first */
    int qn[2];
    int done;
    int arrived;  /* all-reduces this rank has arrived at (the current one included) */
} rank_state;

static int is_send(int k) { return k == PD_A_SEND_ACT || k == PD_A_SEND_GRAD; }
static int is_recv(int k) { return k == PD_A_RECV_ACT || k == PD_A_RECV_GRAD; }
static int msg_kind(int k) { return (k == PD_A_SEND_GRAD || k == PD_A_RECV_GRAD) ? 1 : 0; }

/* Drops completed sends (their receive is posted) from a rank's outstanding queues. */
static void reap(rank_state *rs, const msgs *g) {
    for (int k = 0; k < 2; k++) {
        int j = 0;
        for (int i = 0; i < rs->qn[k]; i++)
            if (!g->recvd[rs->keys[k][i]]) rs->keys[k][j++] = rs->keys[k][i];
        rs->qn[k] = j;
    }
}

static void describe(char *why, int n, const pd_schedule *s, const rank_state *st) {
    int off = snprintf(why, (size_t)n, "deadlock:");
    for (int r = 0; r < s->n_ranks && off < n; r++) {
        if (st[r].done) continue;
        const pd_rank_schedule *rs = &s->ranks[r];
        if (st[r].pc >= rs->n) {
            off += snprintf(why + off, (size_t)(n - off), " rank %d waits for its sends at the end;", r);
            continue;
        }
        const pd_action *a = &rs->a[st[r].pc];
        if (is_send(a->kind) || is_recv(a->kind))
            off += snprintf(why + off, (size_t)(n - off), " rank %d stuck at action %d (%s %d %s %d);",
                            r, st[r].pc, pd_action_name(a->kind), a->mb,
                            is_recv(a->kind) ? "<-" : "->", a->peer);
        else
            off += snprintf(why + off, (size_t)(n - off), " rank %d stuck at action %d (%s %d);", r,
                            st[r].pc, pd_action_name(a->kind), a->mb);
    }
}

int pd_schedule_check(const pd_schedule *s, char *why, int why_size) {
    char dummy[8];
    if (!why || why_size <= 0) { why = dummy; why_size = (int)sizeof dummy; }
    why[0] = 0;
    int R = s->n_ranks, steps = s->steps > 0 ? s->steps : 1, V = s->chunks > 1 ? s->chunks : 1;
    if (R < 1 || R > 1 << 20 || V > 1 << 10) {
        snprintf(why, (size_t)why_size, "bad rank count %d", R);
        return 1;
    }
    /* validate actions first */
    for (int r = 0; r < R; r++) {
        const pd_rank_schedule *rs = &s->ranks[r];
        for (int i = 0; i < rs->n; i++) {
            const pd_action *a = &rs->a[i];
            if (a->kind < 0 || a->kind >= PD_A_COUNT) {
                snprintf(why, (size_t)why_size, "rank %d action %d: unknown kind %d", r, i, a->kind);
                return 1;
            }
            if ((is_send(a->kind) || is_recv(a->kind)) &&
                (a->peer < 0 || a->peer >= R || a->peer == r || a->mb < 0 || a->mb >= steps)) {
                snprintf(why, (size_t)why_size, "rank %d action %d: %s %d with bad peer %d", r, i,
                         pd_action_name(a->kind), a->mb, a->peer);
                return 1;
            }
            if (V > 1 && (is_send(a->kind) || is_recv(a->kind)) &&
                (recv_chunk(s, a) < 0 || recv_chunk(s, a) >= V || a->stage % R != r)) {
                snprintf(why, (size_t)why_size, "rank %d action %d: %s %d on stage %d, not one "
                         "of its chunks, or to a stage outside the pipeline", r, i,
                         pd_action_name(a->kind), a->mb, a->stage);
                return 1;
            }
        }
    }
    msgs g = {R, steps, V, NULL, NULL};
    size_t nk = (size_t)R * (size_t)R * 2 * (size_t)steps * (size_t)V;
    g.sent = calloc(nk, 1);
    g.recvd = calloc(nk, 1);
    rank_state *st = calloc((size_t)R, sizeof *st);
    int bad = !g.sent || !g.recvd || !st;
    for (int r = 0; !bad && r < R; r++)
        for (int k = 0; k < 2; k++) {
            st[r].keys[k] = calloc((size_t)s->ranks[r].n + 1, sizeof(size_t));
            if (!st[r].keys[k]) bad = 1;
        }
    int result = 0;
    if (bad) {
        snprintf(why, (size_t)why_size, "out of memory");
        result = 1;
        goto out;
    }
    int slots = s->send_slots;
    for (;;) {
        int progress = 0, all_done = 1;
        for (int r = 0; r < R; r++) {
            rank_state *rs = &st[r];
            const pd_rank_schedule *sch = &s->ranks[r];
            while (!rs->done) {
                reap(rs, &g);
                if (rs->pc == sch->n) {
                    if (rs->qn[0] == 0 && rs->qn[1] == 0) { rs->done = 1; progress = 1; }
                    break;
                }
                const pd_action *a = &sch->a[rs->pc];
                if (is_send(a->kind)) {
                    int k = msg_kind(a->kind);
                    if (rs->qn[k] >= slots) break; /* waits for its oldest send of this kind */
                    size_t key = msg_key(&g, r, a->peer, k, a->mb, recv_chunk(s, a));
                    if (g.sent[key]) {
                        snprintf(why, (size_t)why_size, "rank %d sends %s %d to rank %d twice", r,
                                 pd_action_name(a->kind), a->mb, a->peer);
                        result = 1;
                        goto out;
                    }
                    g.sent[key] = 1;
                    rs->keys[k][rs->qn[k]++] = key;
                } else if (is_recv(a->kind)) {
                    size_t key = msg_key(&g, a->peer, r, msg_kind(a->kind), a->mb, recv_chunk(s, a));
                    g.recvd[key] = 1;              /* posted: a waiting sender may complete */
                    if (!g.sent[key]) break;       /* blocks until the data is there */
                } else if (a->kind == PD_A_FLUSH) {
                    if (rs->qn[0] || rs->qn[1]) break;
                } else if (a->kind == PD_A_ALLREDUCE) {
                    /* a collective of every rank of this stage: the c-th all-reduce of each
                     * (numbered c) completes once all of them have arrived at it */
                    int c = a->mb;
                    if (rs->arrived == c) rs->arrived = c + 1;
                    if (rs->arrived != c + 1) {
                        snprintf(why, (size_t)why_size, "rank %d: allreduce %d out of order", r, c);
                        result = 1;
                        goto out;
                    }
                    int all = 1;
                    for (int q = 0; q < R; q++)
                        if (s->ranks[q].stage == sch->stage && st[q].arrived < c + 1) all = 0;
                    if (!all) break;
                }
                rs->pc++;
                progress = 1;
            }
            if (!rs->done) all_done = 0;
        }
        if (all_done) break;
        if (!progress) {
            describe(why, why_size, s, st);
            result = 1;
            goto out;
        }
    }
    /* every posted receive must have had its send */
    for (size_t i = 0; i < nk; i++)
        if (g.recvd[i] != g.sent[i]) {
            snprintf(why, (size_t)why_size, "unmatched message %zu", i);
            result = 1;
            break;
        }
out:
    if (st)
        for (int r = 0; r < R; r++) { free(st[r].keys[0]); free(st[r].keys[1]); }
    free(st);
    free(g.sent);
    free(g.recvd);
    return result;
}

/* ---- in-order delivery per link ---- */

typedef struct {
    int src, dst, pos, kind, mb, chunk;
} link_msg;

static int link_msg_cmp(const void *x, const void *y) {
    const link_msg *a = x, *b = y;
    if (a->src != b->src) return a->src < b->src ? -1 : 1;
    if (a->dst != b->dst) return a->dst < b->dst ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

int pd_schedule_check_in_order(const pd_schedule *s, char *why, int why_size) {
    char dummy[8];
    if (!why || why_size <= 0) { why = dummy; why_size = (int)sizeof dummy; }
    why[0] = 0;
    size_t n_msgs[2] = {0, 0}, total = 0;
    for (int r = 0; r < s->n_ranks; r++) total += (size_t)s->ranks[r].n;
    link_msg *m[2] = {malloc((total ? total : 1) * sizeof(link_msg)),
                      malloc((total ? total : 1) * sizeof(link_msg))}; /* sends, receives */
    if (!m[0] || !m[1]) {
        free(m[0]), free(m[1]);
        snprintf(why, (size_t)why_size, "out of memory");
        return 1;
    }
    for (int r = 0; r < s->n_ranks; r++)
        for (int i = 0; i < s->ranks[r].n; i++) {
            const pd_action *a = &s->ranks[r].a[i];
            if (!is_send(a->kind) && !is_recv(a->kind)) continue;
            int w = is_recv(a->kind);
            m[w][n_msgs[w]++] = (link_msg){w ? a->peer : r, w ? r : a->peer, i,
                                           msg_kind(a->kind), a->mb, recv_chunk(s, a)};
        }
    int bad = n_msgs[0] != n_msgs[1];
    if (bad) snprintf(why, (size_t)why_size, "%zu sends, %zu receives", n_msgs[0], n_msgs[1]);
    qsort(m[0], n_msgs[0], sizeof(link_msg), link_msg_cmp);
    qsort(m[1], n_msgs[1], sizeof(link_msg), link_msg_cmp);
    for (size_t i = 0, k = 0; !bad && i < n_msgs[0]; i++) {
        const link_msg *x = &m[0][i], *y = &m[1][i];
        k = i > 0 && x->src == m[0][i - 1].src && x->dst == m[0][i - 1].dst ? k + 1 : 0;
        if (x->src != y->src || x->dst != y->dst || x->kind != y->kind || x->mb != y->mb ||
            x->chunk != y->chunk) {
            bad = 1;
            snprintf(why, (size_t)why_size, "rank %d -> %d: message %zu is sent as %s %d (to chunk "
                     "%d) but received as %s %d (by chunk %d) from rank %d", x->src, x->dst, k,
                     x->kind ? "gradient" : "activation", x->mb, x->chunk,
                     y->kind ? "gradient" : "activation", y->mb, y->chunk, y->src);
        }
    }
    free(m[0]);
    free(m[1]);
    return bad;
}
