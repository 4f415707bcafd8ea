/* gpu_detect.c: how many CUDA GPUs this process can use. Any non-success from
 * cudaGetDeviceCount (35 insufficient driver, 100 no device, ...) means none. */
#include <cuda_runtime_api.h>

#include "ops_cuda.h"

int pd_gpu_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky error for later callers */
        return 0;
    }
    return n < 0 ? 0 : n;
}
