/* trace.c: the run's timeline as Chrome/Perfetto trace-event JSON (run/trace.json). Each process
 * records complete ("ph":"X") events in memory (forward, backward, send, receive, all-reduce,
 * optimizer step), serialises them with its pid (the MPI rank), and one process writes the file
 * from every rank's text. Times are microseconds from a common origin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "runtime/schedule/schedule.h"

typedef struct {
    int kind, mb, peer, tid;
    double t0, t1;
} ev;

#define TRACE_MAX_EVENTS (1 << 22) /* ~100 MB of events at most; later ones are dropped */

static ev *evs;
static size_t n_ev, cap_ev;
static int on;
static double t_origin;

void pdrt_trace_start(int enabled, double origin) {
    on = enabled;
    t_origin = origin;
    n_ev = 0;
}

void pdrt_trace_add(int kind, int mb, int peer, int tid, double t0, double t1) {
    if (!on || n_ev >= TRACE_MAX_EVENTS) return;
    if (n_ev == cap_ev) {
        size_t cap = cap_ev ? 2 * cap_ev : 4096;
        ev *e = realloc(evs, cap * sizeof *e);
        if (!e) { on = 0; return; }
        evs = e;
        cap_ev = cap;
    }
    evs[n_ev++] = (ev){kind, mb, peer, tid, t0, t1};
}

char *pdrt_trace_events_json(int pid, size_t *len) {
    size_t cap = 160 * n_ev + 1, off = 0;
    char *s = malloc(cap);
    PDRT_CHECK(s != NULL);
    s[0] = 0;
    for (size_t i = 0; i < n_ev; i++) {
        const ev *e = &evs[i];
        char name[64];
        const char *k = pd_action_name(e->kind);
        if (e->kind == PD_A_SEND_ACT || e->kind == PD_A_SEND_GRAD)
            snprintf(name, sizeof name, "%s %d -> %d", k, e->mb, e->peer);
        else if (e->kind == PD_A_RECV_ACT || e->kind == PD_A_RECV_GRAD)
            snprintf(name, sizeof name, "%s %d <- %d", k, e->mb, e->peer);
        else if (e->mb >= 0)
            snprintf(name, sizeof name, "%s %d", k, e->mb);
        else
            snprintf(name, sizeof name, "%s", k);
        double ts = 1e6 * (e->t0 - t_origin), dur = 1e6 * (e->t1 - e->t0);
        if (dur < 0) dur = 0;
        off += (size_t)snprintf(s + off, cap - off,
                                "%s{\"name\":\"%s\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%d,"
                                "\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"mb\":%d}}",
                                i ? ",\n" : "", name, k, pid, e->tid, ts, dur, e->mb);
    }
    *len = off;
    return s;
}

void pdrt_trace_write(const char *dir, const char *events, int n_pids, const char *const *names) {
    char path[4200];
    pdrt_out o;
    snprintf(path, sizeof path, "%s/trace.json", dir);
    FILE *f = pdrt_out_open(&o, path);
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    for (int p = 0; p < n_pids; p++) {
        fprintf(f, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"%s\"}},\n",
                p, names[p]);
        fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"args\":{\"name\":\"compute\"}},\n", p);
        fprintf(f, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":1,\"args\":{\"name\":\"communication\"}}%s\n",
                p, (p + 1 < n_pids || (events && events[0])) ? "," : "");
    }
    if (events) fputs(events, f);
    fprintf(f, "\n]}\n");
    pdrt_out_commit(&o);
}

void pdrt_trace_free(void) {
    free(evs);
    evs = NULL;
    n_ev = cap_ev = 0;
    on = 0;
}
