/* base.h: what every part of the runtime stands on (the kernels, the transports, the executors):
 * the error exit that names rank and stage, aligned zeroed allocation, the clock, a waiting MPI
 * request that does not spin a core, and the watchdog (a rank that waits too long, or whose
 * launcher is gone, ends the job) (base.c). The keyed random numbers are rng.h beside it.
 * Includes nothing else of the project. */
#ifndef PDRT_BASE_H
#define PDRT_BASE_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

/* Who this process is, for the error lines: rank and stage (stage < 0: not yet known); use_mpi:
 * pdrt_fail takes the whole MPI job down (MPI_Abort) instead of exiting alone. */
void pdrt_set_identity(int rank, int stage, int use_mpi);
/* Prints "pdrt: rank R (stage S): error: MESSAGE (file:line)" (one write(2), so that two ranks'
 * lines never interleave) and ends the run. Call it through PDRT_FAIL, which supplies the file
 * and line. */
void pdrt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define PDRT_FAIL(...) pdrt_fail(__FILE__, __LINE__, __VA_ARGS__)
/* Prints "pdrt: rank R (stage S): warning: MESSAGE" with one write(2); the run goes on. */
void pdrt_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Fails the run with "check failed: EXPR", the file and line, rank and stage when expr is false. */
#define PDRT_CHECK(expr)                                                                \
    do {                                                                                \
        if (!(expr)) PDRT_FAIL("check failed: %s", #expr);                              \
    } while (0)
/* Waits for an MPI request without spinning a core: polls, then naps, longer the longer it waits
 * (there may be more ranks than cores, and a waiting rank must leave the CPU to those that
 * compute). Call it inside a watched wait (pdrt_watch) so that a hang is caught. */
void pdrt_wait_req(MPI_Request *r);
/* One nap of a polling wait that began at t0 (pdrt_now) and has polled `spins` times: none for
 * the first polls, then 20 us, and 1 ms once it has waited 10 ms. */
void pdrt_backoff(long spins, double t0);

/* ---- the watchdog (docs/reliability.md, "Hangs and orphans") ----
 * pdrt_watchdog_start starts a thread that checks, a few times a second:
 *  - a watched wait (between pdrt_watch and pdrt_unwatch) older than hang_timeout_s seconds
 *    (0: no limit): prints "no progress for T s: waiting for OP (peer)" and ends the process
 *    with status 1, which makes mpirun stop the job as it does for a dead rank;
 *  - the launcher: the parent process (mpirun, or pdlaunch for a local run) was replaced (it
 *    died), or the pid in $PDRT_LAUNCHER (pdlaunch's "HOST:PID", checked when HOST is this
 *    machine) is gone: prints why and ends with status 1.
 * Every completed wait is progress. */
void pdrt_watchdog_start(double hang_timeout_s);
/* This rank now waits for `op` (a string that outlives the wait, e.g. "the activations"), of
 * minibatch mb (< 0: none) from or with rank peer (< 0: its stage's replicas or every rank; the
 * op says). Not nested: a second pdrt_watch replaces the first. */
void pdrt_watch(const char *op, int peer, int64_t mb);
void pdrt_unwatch(void); /* the wait completed: progress */
/* MPI_Barrier on MPI_COMM_WORLD, watched as a wait for `what`, without spinning a core. */
void pdrt_barrier(const char *what);
void *pdrt_alloc(size_t floats); /* zeroed, 64-byte aligned floats; fails the run on OOM */
double pdrt_now(void);           /* seconds, monotonic */

#endif
