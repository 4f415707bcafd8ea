/* simulate.c: the simulator's engine (pd_sim_run): a conservative discrete-event simulation of a
 * schedule IR. Each rank executes its actions in order; the rank whose next action can start
 * earliest goes next, so transfers reach their link in the order they are posted. See
 * simulate.h for the model. */
#include "simulate.h"
#include "planner/cost/cost.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- messages: (src, dst, kind, mb) -> transfer state, open addressing ---- */

typedef struct {
    uint64_t key;     /* 0 = empty */
    double t_send;    /* send posted (-1: not yet) */
    double t_recv;    /* receive posted (-1: not yet) */
    double end;       /* transfer end (-1: not scheduled) */
    double bytes;
    int used;
} sim_msg;

typedef struct {
    sim_msg *m;
    size_t cap;
} msg_table;

/* chunk: msg_chunk's, -1 outside interleaved (the key of the other schedules as it was) */
static uint64_t msg_key(int src, int dst, int kind, int mb, int chunk) {
    uint64_t k = ((uint64_t)(unsigned)src * 1000003u + (unsigned)dst) * 2u + (unsigned)kind;
    if (chunk >= 0) k = k * 1031u + (unsigned)chunk;
    return (k << 32 | (uint64_t)(unsigned)mb) + 1u;
}

static sim_msg *msg_get(msg_table *t, uint64_t key) {
    /* the product's high half folded in: its low bits alone depend only on the key's low bits
     * (the minibatch), so every pair of ranks would probe from the same slot for a minibatch */
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h ^ h >> 32) & (t->cap - 1);
    while (t->m[i].used && t->m[i].key != key) i = (i + 1) & (t->cap - 1);
    if (!t->m[i].used) {
        t->m[i] = (sim_msg){key, -1, -1, -1, 0, 1};
    }
    return &t->m[i];
}

/* ---- per-rank and per-group state ---- */

typedef struct {
    int pc, done;
    double clock, busy;
    int inflight, peak_inflight;
    double live, peak_live; /* interleaved: activation bytes in flight over its chunks */
    int64_t acts_mb;   /* 1 + the minibatch whose activations the working buffer holds (0: none) */
    int n_allreduce;   /* allreduce actions completed */
    int arrived;       /* arrived at its current allreduce */
    sim_msg **q[2];    /* outstanding sends per kind, oldest first */
    int qh[2], qn[2];
} rank_state;

typedef struct {
    int members;
    int cap;
    int *count;     /* per occurrence: arrivals */
    double *t_max;  /* per occurrence: latest arrival */
} group_state;

typedef struct {
    const pd_schedule *s;
    const pd_sim_rank_cost *rc;
    const pd_cluster *c;
    int rendezvous;
    int allreduce; /* pd_sim_opts.allreduce */
    int R;
    rank_state *st;
    group_state *g;     /* by stage */
    double *link_free;  /* R*R, index min*R+max */
    double *ar_ms, *ar_bytes; /* per rank: one allreduce */
    msg_table msgs;
    FILE *trace;
    int trace_n;
    pd_sim_timeline *tl; /* pd_sim_opts.timeline */
    double p2p_bytes, ar_total_bytes;
} sim;

static int is_send(int k) { return k == PD_A_SEND_ACT || k == PD_A_SEND_GRAD; }
static int is_recv(int k) { return k == PD_A_RECV_ACT || k == PD_A_RECV_GRAD; }
static int kind_of(int k) { return (k == PD_A_SEND_GRAD || k == PD_A_RECV_GRAD) ? 1 : 0; }

/* The chunk of the stage that receives a's message: under interleaved a minibatch crosses the
 * same two ranks once per chunk (schedule.h); -1 otherwise. */
static int msg_chunk(const pd_schedule *s, const pd_action *a) {
    if (s->chunks <= 1) return -1;
    int st = a->kind == PD_A_SEND_ACT ? a->stage + 1 : a->kind == PD_A_SEND_GRAD ? a->stage - 1
                                                                                 : a->stage;
    return st / s->n_ranks;
}

/* What a's work costs: its rank's, or under interleaved its stage's (rc by stage). */
static const pd_sim_rank_cost *cost_of(const sim *x, int r, const pd_action *a) {
    return x->s->chunks > 1 ? &x->rc[a->stage] : &x->rc[r];
}

static double bandwidth_between(const pd_cluster *c, int a, int b) {
    if (c->n_levels < 1) return 1e30;
    return c->bandwidth[pd_rank_level(c, a, b)];
}

/* ---- trace ---- */

static void record(sim *x, int rank, int kind, int mb, int peer, double t0, double dur) {
    pd_sim_timeline *tl = x->tl;
    if (!tl || tl->oom) return;
    if (tl->n == tl->cap) {
        int cap = tl->cap ? 2 * tl->cap : 1024;
        pd_sim_event *ev = realloc(tl->ev, sizeof *ev * (size_t)cap);
        if (!ev) {
            tl->oom = 1;
            return;
        }
        tl->ev = ev;
        tl->cap = cap;
    }
    tl->ev[tl->n++] = (pd_sim_event){t0, dur, rank, kind, mb, peer};
}

/* stage >= 0 (interleaved: the chunk an action works on) goes into the event's args */
static void trace_event(sim *x, const char *name, int mb, int pid, int tid, double t0,
                        double dur, const char *cat, int stage) {
    if (!x->trace) return;
    fprintf(x->trace, "%s{\"name\":\"%s %d\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,"
            "\"ts\":%.3f,\"dur\":%.3f", x->trace_n++ ? ",\n" : "", name, mb, cat, pid, tid,
            t0 * 1e3, dur * 1e3);
    if (stage >= 0) fprintf(x->trace, ",\"args\":{\"stage\":%d}", stage);
    fputc('}', x->trace);
}

static void trace_begin(sim *x) {
    if (!x->trace) return;
    fprintf(x->trace, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    fprintf(x->trace, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"args\":{\"name\":"
            "\"ranks\"}},\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":"
            "\"links\"}}");
    for (int r = 0; r < x->R; r++)
        fprintf(x->trace, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":%d,"
                "\"args\":{\"name\":\"rank %d (stage %d)\"}}", r, r, x->s->ranks[r].stage);
    x->trace_n = 1;
}

static void trace_end(sim *x) {
    if (x->trace) fprintf(x->trace, "\n]}\n");
}

/* ---- the engine ---- */

/* Schedules msg's transfer from src to dst once both of its conditions hold; now is the time
 * the last condition became true. */
static void schedule_transfer(sim *x, sim_msg *m, int src, int dst, int kind, int mb) {
    if (m->end >= 0 || m->t_send < 0) return;
    if (x->rendezvous && m->t_recv < 0) return;
    double t = m->t_send;
    if (x->rendezvous && m->t_recv > t) t = m->t_recv;
    int a = src < dst ? src : dst, b = src < dst ? dst : src;
    double *lf = &x->link_free[(size_t)a * (size_t)x->R + (size_t)b];
    double start = t > *lf ? t : *lf;
    double dur = m->bytes > 0 ? 1e3 * m->bytes / bandwidth_between(x->c, src, dst) : 0;
    m->end = start + dur;
    *lf = m->end;
    x->p2p_bytes += m->bytes;
    if (dur > 0) record(x, src, PD_SIM_EV_TRANSFER, mb, dst, start, dur);
    if (x->trace && dur > 0) {
        char nm[48];
        snprintf(nm, sizeof nm, "%s %d->%d", kind ? "grad" : "act", src, dst);
        trace_event(x, nm, mb, 1, a * x->R + b, start, dur, "transfer", -1);
    }
}

#define NEVER INFINITY

/* When every send the rank has posted has completed (NEVER while one is not scheduled yet). */
static double sends_done(const rank_state *rs) {
    double t = rs->clock;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < rs->qn[k]; i++) {
            const sim_msg *m = rs->q[k][rs->qh[k] + i];
            if (m->end < 0) return NEVER;
            if (m->end > t) t = m->end;
        }
    return t;
}

/* When rank r's next step can happen (NEVER while it is blocked on another rank). */
static double ready_time(sim *x, int r) {
    rank_state *rs = &x->st[r];
    const pd_rank_schedule *sch = &x->s->ranks[r];
    if (rs->pc == sch->n) return sends_done(rs); /* the end: every send must complete */
    const pd_action *a = &sch->a[rs->pc];
    if (is_send(a->kind)) {
        int k = kind_of(a->kind);
        if (rs->qn[k] >= x->s->send_slots) {
            sim_msg *m = rs->q[k][rs->qh[k]];
            if (m->end < 0) return NEVER;
            return m->end > rs->clock ? m->end : rs->clock;
        }
        return rs->clock;
    }
    if (is_recv(a->kind)) {
        sim_msg *m = msg_get(&x->msgs, msg_key(a->peer, r, kind_of(a->kind), a->mb,
                                               msg_chunk(x->s, a)));
        if (m->t_recv < 0) return rs->clock; /* post the receive first */
        if (m->end < 0) return NEVER;
        return m->end > rs->clock ? m->end : rs->clock;
    }
    if (a->kind == PD_A_FLUSH) return sends_done(rs);
    if (a->kind == PD_A_ALLREDUCE) {
        if (!rs->arrived) return rs->clock;
        group_state *g = &x->g[sch->stage];
        int k = rs->n_allreduce;
        if (g->count[k] < g->members) return NEVER;
        return g->t_max[k] > rs->clock ? g->t_max[k] : rs->clock;
    }
    return rs->clock;
}

static int grow_group(group_state *g, int k) {
    if (k < g->cap) return 0;
    int cap = g->cap ? 2 * g->cap : 64;
    while (cap <= k) cap *= 2;
    int *c = realloc(g->count, sizeof(int) * (size_t)cap);
    if (!c) return -1;
    g->count = c;
    double *t = realloc(g->t_max, sizeof(double) * (size_t)cap);
    if (!t) return -1;
    g->t_max = t;
    for (int i = g->cap; i < cap; i++) g->count[i] = 0, g->t_max[i] = 0;
    g->cap = cap;
    return 0;
}

/* The recomputation a backward of mb pays first: none unless the stage recomputes and its
 * working buffer holds another minibatch's activations (runtime/executor_recompute.c). */
static double recompute(rank_state *rs, const pd_sim_rank_cost *c, int64_t mb) {
    if (c->recompute_ms <= 0 || rs->acts_mb == mb + 1) return 0;
    rs->acts_mb = mb + 1;
    return c->recompute_ms;
}

/* Runs rank r's next step at time t (= ready_time). Returns 0, or -1 on out of memory. */
static int step_rank(sim *x, int r, double t) {
    rank_state *rs = &x->st[r];
    const pd_rank_schedule *sch = &x->s->ranks[r];
    if (rs->pc == sch->n) {
        rs->clock = t;
        rs->done = 1;
        return 0;
    }
    const pd_action *a = &sch->a[rs->pc];
    const pd_sim_rank_cost *c = cost_of(x, r, a);
    double dur = 0;
    const char *cat = "compute";
    switch (a->kind) {
    case PD_A_FORWARD:
        dur = c->fwd_ms;
        rs->acts_mb = a->mb + 1;
        if (++rs->inflight > rs->peak_inflight) rs->peak_inflight = rs->inflight;
        if ((rs->live += c->act_keep_bytes) > rs->peak_live) rs->peak_live = rs->live;
        break;
    case PD_A_BACKWARD:
        dur = c->bwd_ms + recompute(rs, c, a->mb);
        if (rs->inflight > 0) rs->inflight--;
        rs->live -= c->act_keep_bytes;
        break;
    case PD_A_BACKWARD_INPUT: dur = c->bwd_input_ms + recompute(rs, c, a->mb); break;
    case PD_A_BACKWARD_WEIGHT:
        dur = c->bwd_weight_ms + recompute(rs, c, a->mb);
        if (rs->inflight > 0) rs->inflight--;
        break;
    case PD_A_STEP: dur = c->step_ms; cat = "step"; break;
    case PD_A_SEND_ACT:
    case PD_A_SEND_GRAD: {
        int k = kind_of(a->kind);
        if (rs->qn[k] >= x->s->send_slots) { rs->qh[k]++; rs->qn[k]--; }
        sim_msg *m = msg_get(&x->msgs, msg_key(r, a->peer, k, a->mb, msg_chunk(x->s, a)));
        m->t_send = t;
        m->bytes = k ? c->grad_bytes : c->act_bytes;
        rs->q[k][rs->qh[k] + rs->qn[k]++] = m;
        schedule_transfer(x, m, r, a->peer, k, a->mb);
        rs->clock = t;
        rs->pc++;
        return 0;
    }
    case PD_A_RECV_ACT:
    case PD_A_RECV_GRAD: {
        sim_msg *m = msg_get(&x->msgs, msg_key(a->peer, r, kind_of(a->kind), a->mb,
                                               msg_chunk(x->s, a)));
        if (m->t_recv < 0) {
            m->t_recv = t;
            schedule_transfer(x, m, a->peer, r, kind_of(a->kind), a->mb);
            rs->clock = t;
            return 0; /* then wait for the data */
        }
        rs->clock = t;
        rs->pc++;
        return 0;
    }
    case PD_A_FLUSH:
        for (int k = 0; k < 2; k++) rs->qh[k] += rs->qn[k], rs->qn[k] = 0;
        rs->clock = t;
        rs->pc++;
        return 0;
    case PD_A_ALLREDUCE: {
        group_state *g = &x->g[sch->stage];
        int k = rs->n_allreduce;
        if (!rs->arrived) {
            if (grow_group(g, k)) return -1;
            rs->arrived = 1;
            g->count[k]++;
            if (t > g->t_max[k]) g->t_max[k] = t;
            rs->clock = t;
            return 0;
        }
        rs->arrived = 0;
        rs->n_allreduce++;
        dur = x->ar_ms[r];
        x->ar_total_bytes += x->ar_bytes[r];
        cat = "allreduce";
        break;
    }
    default: break;
    }
    if (dur > 0) {
        int ev = a->kind == PD_A_FORWARD    ? PD_SIM_EV_FORWARD
                 : a->kind == PD_A_BACKWARD || a->kind == PD_A_BACKWARD_INPUT ? PD_SIM_EV_BACKWARD
                 : a->kind == PD_A_BACKWARD_WEIGHT ? PD_SIM_EV_WEIGHT
                 : a->kind == PD_A_ALLREDUCE ? PD_SIM_EV_ALLREDUCE
                                             : PD_SIM_EV_OTHER;
        record(x, r, ev, a->mb, -1, t, dur);
        trace_event(x, pd_action_name(a->kind), a->mb, 0, r, t, dur, cat,
                    x->s->chunks > 1 ? a->stage : -1);
    }
    rs->clock = t + dur;
    rs->busy += dur;
    rs->pc++;
    return 0;
}

void pd_sim_result_free(pd_sim_result *r) {
    if (!r) return;
    free(r->rank_stage);
    free(r->rank_busy_ms);
    free(r->rank_util);
    free(r->rank_peak_inflight);
    free(r->rank_peak_memory);
    free(r->stage_util);
    free(r->stage_peak_memory);
    free(r->stage_act_memory);
    memset(r, 0, sizeof *r);
}

static int alloc_result(pd_sim_result *o, int R, int S) {
    memset(o, 0, sizeof *o);
    o->rank_stage = calloc((size_t)R, sizeof(int));
    o->rank_busy_ms = calloc((size_t)R, sizeof(double));
    o->rank_util = calloc((size_t)R, sizeof(double));
    o->rank_peak_inflight = calloc((size_t)R, sizeof(int));
    o->rank_peak_memory = calloc((size_t)R, sizeof(double));
    o->stage_util = calloc((size_t)S, sizeof(double));
    o->stage_peak_memory = calloc((size_t)S, sizeof(double));
    o->stage_act_memory = calloc((size_t)S, sizeof(double));
    if (!o->rank_stage || !o->rank_busy_ms || !o->rank_util || !o->rank_peak_inflight ||
        !o->rank_peak_memory || !o->stage_util || !o->stage_peak_memory || !o->stage_act_memory) {
        pd_sim_result_free(o);
        return -1;
    }
    return 0;
}

static void free_sim(sim *x) {
    if (x->st)
        for (int r = 0; r < x->R; r++) free(x->st[r].q[0]), free(x->st[r].q[1]);
    if (x->g)
        for (int s = 0; s < x->s->n_stages; s++) free(x->g[s].count), free(x->g[s].t_max);
    free(x->st);
    free(x->g);
    free(x->link_free);
    free(x->ar_ms);
    free(x->ar_bytes);
    free(x->msgs.m);
}

/* The CPU runtime's all-reduce of P bytes among a group (runtime/executor.c): every member
 * sends its gradients to the first, which sums them in rank order and sends the sum back; the
 * first member's link carries the 2 (n - 1) copies one after another. Returns ms; *bytes gets
 * what one member sends on average (the group sends 2 (n - 1) P in all, as a ring does). */
static double gather_cost(const pd_cluster *c, const int *members, int n, double P,
                          double *bytes) {
    double ms = 0;
    *bytes = 0;
    if (n <= 1 || P <= 0) return 0;
    for (int i = 1; i < n; i++) ms += 2e3 * P / bandwidth_between(c, members[0], members[i]);
    *bytes = 2.0 * (n - 1) * P / n;
    return ms;
}

/* Fills x's per-stage groups and all-reduce costs. */
static int setup_groups(sim *x, char *why, int why_size) {
    int R = x->R, S = x->s->n_stages;
    int *members = malloc(sizeof(int) * (size_t)R);
    if (!members) return 1;
    for (int st = 0; st < S; st++) {
        int n = 0;
        for (int r = 0; r < R; r++)
            if (x->s->ranks[r].stage == st) members[n++] = r;
        x->g[st].members = n;
        for (int i = 0; i < n; i++)
            x->ar_ms[members[i]] =
                x->allreduce == PD_SIM_AR_GATHER
                    ? gather_cost(x->c, members, n, x->rc[members[i]].param_bytes,
                                  &x->ar_bytes[members[i]])
                    : pd_ring_ms_members(x->c, members, n, x->rc[members[i]].param_bytes,
                                     &x->ar_bytes[members[i]]);
    }
    for (int r = 0; r < R; r++) {
        int st = x->s->ranks[r].stage;
        if (st < 0 || st >= S) {
            snprintf(why, (size_t)why_size, "rank %d has stage %d outside 0..%d", r, st, S - 1);
            free(members);
            return 1;
        }
    }
    free(members);
    return 0;
}

int pd_sim_run(pd_sim_result *out, FILE *trace, const pd_schedule *s,
               const pd_sim_rank_cost *rc, const pd_cluster *c, const pd_sim_opts *opts,
               char *why, int why_size) {
    char dummy[8];
    if (!why || why_size <= 0) why = dummy, why_size = (int)sizeof dummy;
    why[0] = 0;
    memset(out, 0, sizeof *out);
    if (!s || !rc || !c || s->n_ranks < 1 || s->n_ranks > 4096 || s->n_stages < 1 ||
        s->send_slots < 1) {
        snprintf(why, (size_t)why_size, "bad schedule (ranks, stages or send slots)");
        return 1;
    }
    if (pd_cluster_workers(c) < s->n_ranks) {
        snprintf(why, (size_t)why_size, "the schedule has %d ranks, the cluster %d workers",
                 s->n_ranks, pd_cluster_workers(c));
        return 1;
    }
    sim x;
    memset(&x, 0, sizeof x);
    x.s = s, x.rc = rc, x.c = c, x.R = s->n_ranks, x.trace = trace;
    x.rendezvous = opts ? opts->rendezvous : 0;
    x.tl = opts ? opts->timeline : NULL;
    x.allreduce = opts ? opts->allreduce : PD_SIM_AR_RING;
    int R = x.R, S = s->n_stages, rc_status = 1;
    size_t n_sends = 0;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < s->ranks[r].n; i++) {
            int k = s->ranks[r].a[i].kind;
            if (k < 0 || k >= PD_A_COUNT) {
                snprintf(why, (size_t)why_size, "rank %d action %d: unknown kind %d", r, i, k);
                return 1;
            }
            if ((is_send(k) || is_recv(k)) &&
                (s->ranks[r].a[i].peer < 0 || s->ranks[r].a[i].peer >= R ||
                 s->ranks[r].a[i].peer == r || s->ranks[r].a[i].mb < 0)) {
                snprintf(why, (size_t)why_size, "rank %d action %d: %s with bad peer %d or "
                         "minibatch %d", r, i, pd_action_name(k), s->ranks[r].a[i].peer,
                         s->ranks[r].a[i].mb);
                return 1;
            }
            if (is_send(k) || is_recv(k)) n_sends++;
        }
    x.msgs.cap = 64;
    while (x.msgs.cap < 2 * n_sends + 2) x.msgs.cap *= 2;
    x.msgs.m = calloc(x.msgs.cap, sizeof(sim_msg));
    x.st = calloc((size_t)R, sizeof(rank_state));
    x.g = calloc((size_t)S, sizeof(group_state));
    x.link_free = calloc((size_t)R * (size_t)R, sizeof(double));
    x.ar_ms = calloc((size_t)R, sizeof(double));
    x.ar_bytes = calloc((size_t)R, sizeof(double));
    int oom = !x.msgs.m || !x.st || !x.g || !x.link_free || !x.ar_ms || !x.ar_bytes;
    for (int r = 0; !oom && r < R; r++)
        for (int k = 0; k < 2; k++) {
            x.st[r].q[k] = calloc((size_t)s->ranks[r].n + 1, sizeof(sim_msg *));
            if (!x.st[r].q[k]) oom = 1;
        }
    if (oom) {
        snprintf(why, (size_t)why_size, "out of memory");
        goto done;
    }
    if (setup_groups(&x, why, why_size)) {
        if (!why[0]) snprintf(why, (size_t)why_size, "out of memory");
        goto done;
    }
    trace_begin(&x);
    for (;;) {
        int best = -1, all_done = 1;
        double best_t = NEVER;
        for (int r = 0; r < R; r++) {
            if (x.st[r].done) continue;
            all_done = 0;
            double t = ready_time(&x, r);
            if (t < best_t) best_t = t, best = r;
        }
        if (all_done) break;
        if (best < 0) {
            int off = snprintf(why, (size_t)why_size, "the schedule cannot go on:");
            for (int r = 0; r < R && off < why_size; r++) {
                if (x.st[r].done) continue;
                const pd_rank_schedule *rs = &s->ranks[r];
                if (x.st[r].pc >= rs->n) {
                    off += snprintf(why + off, (size_t)(why_size - off),
                                    " rank %d waits for its sends;", r);
                } else {
                    const pd_action *a = &rs->a[x.st[r].pc];
                    off += snprintf(why + off, (size_t)(why_size - off),
                                    " rank %d at action %d (%s %d, peer %d);", r, x.st[r].pc,
                                    pd_action_name(a->kind), a->mb, a->peer);
                }
            }
            trace_end(&x);
            goto done;
        }
        if (step_rank(&x, best, best_t)) {
            snprintf(why, (size_t)why_size, "out of memory");
            goto done;
        }
    }
    trace_end(&x);
    /* every message must have been both sent and received */
    for (size_t i = 0; i < x.msgs.cap; i++)
        if (x.msgs.m[i].used && (x.msgs.m[i].t_send < 0 || x.msgs.m[i].t_recv < 0)) {
            snprintf(why, (size_t)why_size, "a message was %s but never %s",
                     x.msgs.m[i].t_send < 0 ? "received" : "sent",
                     x.msgs.m[i].t_send < 0 ? "sent" : "received");
            goto done;
        }
    if (alloc_result(out, R, S)) {
        snprintf(why, (size_t)why_size, "out of memory");
        goto done;
    }
    snprintf(out->schedule, sizeof out->schedule, "%s", s->name);
    out->n_ranks = R, out->n_stages = S, out->steps = s->steps;
    double busiest = 0;
    for (int r = 0; r < R; r++) {
        const rank_state *rs = &x.st[r];
        if (rs->clock > out->makespan_ms) out->makespan_ms = rs->clock;
        if (rs->busy > busiest) busiest = rs->busy;
        out->rank_stage[r] = s->ranks[r].stage;
        out->rank_busy_ms[r] = rs->busy;
        out->rank_peak_inflight[r] = rs->peak_inflight;
        out->rank_peak_memory[r] = pd_mem_bytes(&rc[r].mem, &rc[r].held, rs->peak_inflight);
        double acts = pd_mem_act_bytes(&rc[r].mem, &rc[r].held, rs->peak_inflight);
        if (s->chunks > 1) { /* interleaved: one version of every chunk's weights (+ gradient and
                                optimizer state) and the activations its chunks hold at once */
            double params = 0;
            for (int k = r; k < S; k += R) params += rc[k].param_bytes;
            out->rank_peak_memory[r] = (2.0 + rc[r].held.optim_buffers) * params + rs->peak_live;
            acts = rs->peak_live;
        }
        /* each stage reports its busiest replica (interleaved: each chunk its rank's figures) */
        int st0 = s->ranks[r].stage;
        for (int k = st0; k < (s->chunks > 1 ? S : st0 + 1); k += R)
            if (out->rank_peak_memory[r] >= out->stage_peak_memory[k]) {
                out->stage_peak_memory[k] = out->rank_peak_memory[r];
                out->stage_act_memory[k] = acts;
            }
        if (out->rank_peak_memory[r] > out->peak_memory_bytes)
            out->peak_memory_bytes = out->rank_peak_memory[r];
    }
    out->bubble_ms = out->makespan_ms - busiest;
    int steps = s->steps > 0 ? s->steps : 1;
    out->steady_ms = out->makespan_ms / steps;
    out->p2p_bytes_per_minibatch = x.p2p_bytes / steps;
    out->allreduce_bytes_per_minibatch = x.ar_total_bytes / steps;
    out->bytes_per_minibatch = out->p2p_bytes_per_minibatch + out->allreduce_bytes_per_minibatch;
    for (int r = 0; r < R; r++) {
        int st = out->rank_stage[r];
        out->rank_util[r] = out->makespan_ms > 0 ? out->rank_busy_ms[r] / out->makespan_ms : 0;
        for (int k = st; k < (s->chunks > 1 ? S : st + 1); k += R) /* interleaved: every chunk */
            out->stage_util[k] += out->rank_util[r] / (s->chunks > 1 ? 1 : x.g[st].members);
    }
    rc_status = 0;
done:
    free_sim(&x);
    return rc_status;
}
