/* base.h: what every part of the runtime stands on (the kernels, the transports, the executors):
 * the error exit that names rank and stage, aligned zeroed allocation, the clock and a waiting
 * MPI request that does not spin a core (base.c). The keyed random numbers are rng.h beside it.
 * Includes nothing else of the project. */
#ifndef PDRT_BASE_H
#define PDRT_BASE_H

#include <stddef.h>
#include <stdint.h>

#include <mpi.h>

/* Who this process is, for the error lines: rank and stage (stage < 0: not yet known); use_mpi:
 * pdrt_fail takes the whole MPI job down (MPI_Abort) instead of exiting alone. */
void pdrt_set_identity(int rank, int stage, int use_mpi);
/* Prints "pdrt: rank R (stage S): error: MESSAGE (file:line)" and ends the run. Call it through
 * PDRT_FAIL, which supplies the file and line. */
void pdrt_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define PDRT_FAIL(...) pdrt_fail(__FILE__, __LINE__, __VA_ARGS__)
/* Fails the run with "check failed: EXPR", the file and line, rank and stage when expr is false. */
#define PDRT_CHECK(expr)                                                                \
    do {                                                                                \
        if (!(expr)) PDRT_FAIL("check failed: %s", #expr);                              \
    } while (0)
/* Waits for an MPI request without spinning a core: polls, then naps (there may be more ranks
 * than cores, and a waiting rank must leave the CPU to those that compute). */
void pdrt_wait_req(MPI_Request *r);
void *pdrt_alloc(size_t floats); /* zeroed, 64-byte aligned floats; fails the run on OOM */
double pdrt_now(void);           /* seconds, monotonic */

#endif
