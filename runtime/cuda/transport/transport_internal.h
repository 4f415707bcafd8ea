/* transport_internal.h: the CUDA error check shared by the transport files and the CUDA executor. */
#ifndef PD_TRANSPORT_INTERNAL_H
#define PD_TRANSPORT_INTERNAL_H

#include <cuda_runtime.h>

#include "runtime/rt.h"

#define TR_CUDA(x)                                                                           \
    do {                                                                                     \
        cudaError_t e_ = (x);                                                                \
        if (e_ != cudaSuccess) PDRT_FAIL("%s: %s", #x, cudaGetErrorString(e_));             \
    } while (0)

#endif
