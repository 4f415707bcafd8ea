/* schedule.c: the schedule IR's generators (1F1B), its text form and the deadlock checker that
 * simulates every rank with rendezvous sends. See schedule.h for the semantics. */
#include "schedule.h"

#include <stdlib.h>
#include <string.h>

static const char *action_names[PD_A_COUNT] = {
    "forward", "backward", "send_act", "recv_act", "send_grad", "recv_grad",
    "step", "allreduce", "flush",
};

const char *pd_action_name(int kind) {
    return (kind >= 0 && kind < PD_A_COUNT) ? action_names[kind] : "?";
}

static pd_schedule *schedule_new(const char *name, int n_ranks, int steps) {
    pd_schedule *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->name, sizeof s->name, "%s", name);
    s->n_ranks = n_ranks;
    s->n_stages = n_ranks;
    s->steps = steps;
    s->send_slots = 1;
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
    pd_rank_schedule *rs = &s->ranks[r];
    if (rs->n == rs->cap) {
        int cap = rs->cap ? 2 * rs->cap : 16;
        pd_action *a = realloc(rs->a, (size_t)cap * sizeof *a);
        if (!a) return -1;
        rs->a = a;
        rs->cap = cap;
    }
    rs->a[rs->n++] = (pd_action){kind, mb, peer};
    return 0;
}

/* One forward of mb on stage st of n: receive, compute, send on. */
static int push_forward(pd_schedule *s, int st, int n, int mb) {
    int e = 0;
    if (st > 0) e |= pd_schedule_push(s, st, PD_A_RECV_ACT, mb, st - 1);
    e |= pd_schedule_push(s, st, PD_A_FORWARD, mb, -1);
    if (st < n - 1) e |= pd_schedule_push(s, st, PD_A_SEND_ACT, mb, st + 1);
    return e;
}

/* One backward of mb on stage st of n, then the optimizer step. */
static int push_backward(pd_schedule *s, int st, int n, int mb) {
    int e = 0;
    if (st < n - 1) e |= pd_schedule_push(s, st, PD_A_RECV_GRAD, mb, st + 1);
    e |= pd_schedule_push(s, st, PD_A_BACKWARD, mb, -1);
    if (st > 0) e |= pd_schedule_push(s, st, PD_A_SEND_GRAD, mb, st - 1);
    e |= pd_schedule_push(s, st, PD_A_STEP, mb, -1);
    return e;
}

pd_schedule *pd_schedule_1f1b(int n_stages, const int *warmup, int steps) {
    if (n_stages < 1 || steps < 0) return NULL;
    pd_schedule *s = schedule_new("1f1b", n_stages, steps);
    if (!s) return NULL;
    int max_w = 0;
    for (int st = 0; st < n_stages; st++) {
        int w = warmup ? warmup[st] : n_stages - 1 - st;
        if (w < 0) w = 0;
        if (w > max_w) max_w = w;
        if (w > steps) w = steps;
        int e = 0;
        for (int m = 0; m < w; m++) e |= push_forward(s, st, n_stages, m);
        for (int i = 0; i + w < steps; i++) {
            e |= push_forward(s, st, n_stages, w + i);
            e |= push_backward(s, st, n_stages, i);
        }
        for (int m = steps - w; m < steps; m++) e |= push_backward(s, st, n_stages, m);
        if (e) { pd_schedule_free(s); return NULL; }
    }
    s->send_slots = max_w + 1;
    return s;
}

void pd_schedule_write(FILE *out, const pd_schedule *s) {
    fprintf(out, "# pd_schedule 1: %s, %d stages, %d ranks, %d steps, send_slots %d\n", s->name,
            s->n_stages, s->n_ranks, s->steps, s->send_slots);
    for (int r = 0; r < s->n_ranks; r++) {
        const pd_rank_schedule *rs = &s->ranks[r];
        fprintf(out, "rank %d stage %d: %d actions\n", rs->rank, rs->stage, rs->n);
        for (int i = 0; i < rs->n; i++) {
            const pd_action *a = &rs->a[i];
            fprintf(out, "  %s", pd_action_name(a->kind));
            if (a->mb >= 0) fprintf(out, " %d", a->mb);
            if (a->kind == PD_A_SEND_ACT || a->kind == PD_A_SEND_GRAD) fprintf(out, " -> %d", a->peer);
            if (a->kind == PD_A_RECV_ACT || a->kind == PD_A_RECV_GRAD) fprintf(out, " <- %d", a->peer);
            fputc('\n', out);
        }
    }
}

/* ---- the checker ---- */

typedef struct {
    int n_ranks, steps;
    unsigned char *sent, *recvd; /* per message key: posted */
} msgs;

/* A message is (src, dst, kind 0=activation 1=gradient, mb). */
static size_t msg_key(const msgs *g, int src, int dst, int k, int mb) {
    return (((size_t)src * (size_t)g->n_ranks + (size_t)dst) * 2 + (size_t)k) * (size_t)g->steps
           + (size_t)mb;
}

typedef struct {
    int pc;
    size_t *keys[2]; /* outstanding sends per kind, as message keys, oldest first */
    int qn[2];
    int done;
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
        off += snprintf(why + off, (size_t)(n - off), " rank %d stuck at action %d (%s %d %s %d);", r,
                        st[r].pc, pd_action_name(a->kind), a->mb,
                        is_recv(a->kind) ? "<-" : "->", a->peer);
    }
}

int pd_schedule_check(const pd_schedule *s, char *why, int why_size) {
    char dummy[8];
    if (!why || why_size <= 0) { why = dummy; why_size = (int)sizeof dummy; }
    why[0] = 0;
    int R = s->n_ranks, steps = s->steps > 0 ? s->steps : 1;
    if (R < 1 || R > 1 << 20) {
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
        }
    }
    msgs g = {R, steps, NULL, NULL};
    size_t nk = (size_t)R * (size_t)R * 2 * (size_t)steps;
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
                    size_t key = msg_key(&g, r, a->peer, k, a->mb);
                    if (g.sent[key]) {
                        snprintf(why, (size_t)why_size, "rank %d sends %s %d to rank %d twice", r,
                                 pd_action_name(a->kind), a->mb, a->peer);
                        result = 1;
                        goto out;
                    }
                    g.sent[key] = 1;
                    rs->keys[k][rs->qn[k]++] = key;
                } else if (is_recv(a->kind)) {
                    size_t key = msg_key(&g, a->peer, r, msg_kind(a->kind), a->mb);
                    g.recvd[key] = 1;              /* posted: a waiting sender may complete */
                    if (!g.sent[key]) break;       /* blocks until the data is there */
                } else if (a->kind == PD_A_FLUSH) {
                    if (rs->qn[0] || rs->qn[1]) break;
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
