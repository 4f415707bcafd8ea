/* progress.c: the progress ticker of progress.h (pdplan's phases). */
#include "progress.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *prog_name = "";
static const char *const *names;
static volatile sig_atomic_t phase, phase_ticks;
static double phase_start;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Async-signal-safe: write(2) only. */
static void on_tick(int sig) {
    (void)sig;
    if (phase == 0) return;
    int t = ++phase_ticks;
    if (t != 1 && t % 10 != 0) return;
    char buf[96];
    size_t n = 0;
    for (const char *s = prog_name; *s && n < 20; s++) buf[n++] = *s;
    const char *pre = t == 1 ? ": " : ": still ";
    for (const char *s = pre; *s && n < 40; s++) buf[n++] = *s;
    for (const char *s = names[phase]; *s && n < 80; s++) buf[n++] = *s;
    if (t > 1) {
        char num[12];
        int k = 0;
        for (int v = t; v > 0 && k < 11; v /= 10) num[k++] = (char)('0' + v % 10);
        buf[n++] = ' ';
        buf[n++] = '(';
        while (k > 0) buf[n++] = num[--k];
        buf[n++] = ' ';
        buf[n++] = 's';
        buf[n++] = ')';
    } else {
        buf[n++] = '.', buf[n++] = '.', buf[n++] = '.';
    }
    buf[n++] = '\n';
    ssize_t w = write(2, buf, n);
    (void)w;
}

void pd_progress_init(const char *prog, const char *const *phase_names) {
    prog_name = prog;
    names = phase_names;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{1, 0}, {1, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
}

void pd_progress_begin(int ph) {
    phase_ticks = 0;
    phase_start = now_s();
    phase = ph;
    struct itimerval it = {{1, 0}, {1, 0}}; /* restart the second */
    setitimer(ITIMER_REAL, &it, NULL);
}

void pd_progress_end(void) {
    int ph = phase;
    phase = 0;
    if (ph != 0 && phase_ticks > 0) {
        fflush(stdout); /* what was printed before goes first, not split by this line */
        fprintf(stderr, "%s: %s took %.1f s\n", prog_name, names[ph], now_s() - phase_start);
    }
}

void pd_progress_stop(void) {
    struct itimerval it = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    phase = 0;
}
