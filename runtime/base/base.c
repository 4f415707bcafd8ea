/* base.c: the runtime's error exit (names rank and stage, then takes the MPI job down), aligned
 * zeroed allocation, the clock, the MPI wait and the watchdog thread (base.h). */
#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

static int id_rank = -1, id_stage = -1, id_mpi = 0;

void pdrt_set_identity(int rank, int stage, int use_mpi) {
    id_rank = rank;
    id_stage = stage;
    id_mpi = use_mpi;
}

/* "pdrt: rank R (stage S): KIND: MESSAGE (file:line)\n" (no place without a file) written with
 * one write(2): two ranks sharing a terminal or a pipe never mix their lines. */
static void write_line(const char *kind, const char *file, int line, const char *fmt, va_list ap) {
    char buf[2048];
    int n = id_stage >= 0 ? snprintf(buf, sizeof buf, "pdrt: rank %d (stage %d): %s: ", id_rank, id_stage, kind)
                          : snprintf(buf, sizeof buf, "pdrt: %s: ", kind);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    if (n > (int)sizeof buf - 80) n = (int)sizeof buf - 80; /* room for the place */
    n += file ? snprintf(buf + n, sizeof buf - (size_t)n, " (%s:%d)\n", file, line)
              : snprintf(buf + n, sizeof buf - (size_t)n, "\n");
    if (n > (int)sizeof buf - 1) n = (int)sizeof buf - 1;
    for (ssize_t k = 0, at = 0; at < n; at += k) {
        k = write(2, buf + at, (size_t)(n - at));
        if (k < 0 && errno == EINTR) k = 0;
        else if (k <= 0) break;
    }
}

void pdrt_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fflush(stderr);
    va_start(ap, fmt);
    write_line("error", file, line, fmt, ap);
    va_end(ap);
    if (id_mpi) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void pdrt_warn(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    write_line("warning", NULL, 0, fmt, ap);
    va_end(ap);
}

/* The watchdog's exit: the message, then the process ends at once (MPI_Abort belongs to the
 * main thread; mpirun stops the job when a rank exits without MPI_Finalize). */
static void watchdog_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
static void watchdog_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    write_line("error", file, line, fmt, ap);
    va_end(ap);
    _exit(1);
}

void *pdrt_alloc(size_t floats) {
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) PDRT_FAIL("out of memory allocating %zu bytes", bytes);
    memset(p, 0, bytes);
    return p;
}

double pdrt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void pdrt_backoff(long spins, double t0) {
    if (spins <= 64) return;
    struct timespec nap = {0, pdrt_now() - t0 < 0.01 ? 20000 : 1000000}; /* 20 us, then 1 ms */
    nanosleep(&nap, NULL);
}

/* Waits for a request without spinning a core: a rank waiting for its neighbour must leave the
 * CPU to the ranks that compute (there may be more ranks than cores). Polls, then naps. */
void pdrt_wait_req(MPI_Request *r) {
    int done = 0;
    double t0 = pdrt_now();
    for (long spins = 0;; spins++) {
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (done) return;
        pdrt_backoff(spins, t0);
    }
}

/* ---- the watchdog ---- */

/* The open wait, written by the main thread and read by the watchdog's: its start (ns of the
 * monotonic clock, 0: not waiting), what, which minibatch and peer. seq changes with every
 * pdrt_watch, so that the watchdog can tell one long wait from a run of short ones. */
static _Atomic int64_t w_start;
static _Atomic(const char *) w_op;
static _Atomic int w_peer;
static _Atomic int64_t w_mb;
static _Atomic uint64_t w_seq;
static double w_limit;        /* seconds, 0: none */
static pid_t w_parent, w_launcher;
static pthread_t w_thread;
static int w_started;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

void pdrt_watch(const char *op, int peer, int64_t mb) {
    atomic_store(&w_op, op);
    atomic_store(&w_peer, peer);
    atomic_store(&w_mb, mb);
    atomic_fetch_add(&w_seq, 1);
    atomic_store(&w_start, now_ns());
}

void pdrt_unwatch(void) { atomic_store(&w_start, 0); }

void pdrt_barrier(const char *what) {
    MPI_Request r;
    pdrt_watch(what, -1, -1);
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    pdrt_wait_req(&r);
    pdrt_unwatch();
}

static void check_hang(void) {
    uint64_t seq = atomic_load(&w_seq);
    int64_t start = atomic_load(&w_start);
    if (!start || w_limit <= 0) return;
    double waited = 1e-9 * (double)(now_ns() - start);
    if (waited < w_limit) return;
    const char *op = atomic_load(&w_op);
    int peer = atomic_load(&w_peer);
    long long mb = (long long)atomic_load(&w_mb);
    if (atomic_load(&w_seq) != seq || atomic_load(&w_start) != start) return; /* it moved on */
    char who[64] = "", which[48] = "";
    if (peer >= 0) snprintf(who, sizeof who, " (peer: rank %d)", peer);
    if (mb >= 0) snprintf(which, sizeof which, " of minibatch %lld", mb);
    watchdog_fail(__FILE__, __LINE__, "hang: no progress for %.1f s while waiting for %s%s%s; "
                  "--hang-timeout %g ends a wait that long", waited, op ? op : "?", which, who,
                  w_limit);
}

static void check_launcher(void) {
    pid_t pp = getppid();
    if (pp != w_parent)
        watchdog_fail(__FILE__, __LINE__, "the launching process (pid %d, mpirun or pdlaunch) "
                      "is gone: stopping", (int)w_parent);
    if (w_launcher > 0 && kill(w_launcher, 0) != 0 && errno == ESRCH)
        watchdog_fail(__FILE__, __LINE__, "the launcher (pdlaunch, pid %d) is gone: stopping",
                      (int)w_launcher);
}

static void *watchdog(void *arg) {
    (void)arg;
    int64_t last = now_ns();
    for (;;) {
        struct timespec nap = {0, 200000000}; /* 0.2 s */
        nanosleep(&nap, NULL);
        int64_t t = now_ns();
        /* a tick over 2 s late: this process itself was stopped (SIGSTOP, a debugger) or starved;
         * the peers may have waited for it, not it for them: its open wait starts again */
        int64_t start = atomic_load(&w_start);
        if (t - last > 2000000000 && start) atomic_compare_exchange_strong(&w_start, &start, t);
        last = t;
        check_launcher();
        check_hang();
    }
    return NULL;
}

/* $PDRT_LAUNCHER is "HOST:PID"; the pid counts on HOST only. */
static pid_t launcher_pid(void) {
    const char *v = getenv("PDRT_LAUNCHER");
    char host[256] = "";
    if (!v || gethostname(host, sizeof host)) return 0;
    host[sizeof host - 1] = 0;
    const char *colon = strrchr(v, ':');
    if (!colon || (size_t)(colon - v) != strlen(host) || strncmp(v, host, strlen(host))) return 0;
    char *end;
    long pid = strtol(colon + 1, &end, 10);
    return *end || pid <= 1 ? 0 : (pid_t)pid;
}

void pdrt_watchdog_start(double hang_timeout_s) {
    if (w_started) return;
    w_limit = hang_timeout_s > 0 ? hang_timeout_s : 0;
    w_parent = getppid();
    w_launcher = launcher_pid();
    check_launcher(); /* gone already */
    /* the thread takes no signal meant for the process */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w_thread, NULL, watchdog, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) PDRT_FAIL("cannot start the watchdog thread: %s", strerror(rc));
    pthread_detach(w_thread);
    w_started = 1;
}
