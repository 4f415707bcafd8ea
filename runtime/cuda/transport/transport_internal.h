/* transport_internal.h: error checks shared by the transport files and the CUDA executor. */
#ifndef PD_TRANSPORT_INTERNAL_H
#define PD_TRANSPORT_INTERNAL_H

#include <cuda_runtime.h>

#include "runtime/rt.h"

#define TR_CUDA(x)                                                                           \
    do {                                                                                     \
        cudaError_t e_ = (x);                                                                \
        if (e_ != cudaSuccess) PDRT_FAIL("%s: %s", #x, cudaGetErrorString(e_)); \
    } while (0)

/* an MPI count: n floats must fit an int */
static inline int tr_count(int64_t n) {
    if (n < 0 || n >= ((int64_t)1 << 31)) PDRT_FAIL("message of %lld floats too large for MPI", (long long)n);
    return (int)n;
}
#define TR_COUNT(n) tr_count(n)

#endif
