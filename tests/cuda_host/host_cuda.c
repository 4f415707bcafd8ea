/* host_cuda.c: a stand-in for the CUDA runtime and for the few device functions the CUDA
 * executor calls itself (not the stages' kernels), so that the executor's host logic (the
 * schedules action by action, the stash of device weight blobs, the arena's plan, the links'
 * slots and tags, the replicas' all-reduce through MPI, tied weights, evaluation, --save,
 * trace.json) runs and is tested on a machine without a GPU. "Device" memory is host memory, a
 * copy is memcpy, the stream is synchronous, and the optimizer, scaling, norm, loss and count
 * are the CPU runtime's, so that a run equals the CPU executor's bit for bit where the executor
 * logic does. Links use the host transport only (PDRT_TRANSPORT=host): the IPC and NCCL tables
 * fail at setup, and the replicas' NCCL communicator is never made. Test-only
 * (tests/cli/test_cuda_executor_host.sh); it is linked instead of libcudart, never into a GPU
 * build. */
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/ops.h"
#include "runtime/cuda/ops_cuda.h"
#include "runtime/cuda/transport/transport.h"
#include "runtime/optim.h"
#include "runtime/rt.h"

/* ---- the CUDA runtime calls of the executor and the host transport ---- */

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    memset(prop, 0, sizeof *prop);
    prop->uuid.bytes[0] = (char)device;
    strcpy(prop->name, "host stand-in (tests/cuda_host)");
    return cudaSuccess;
}

const char *cudaGetErrorString(cudaError_t error) {
    return error == cudaSuccess ? "no error" : "error (host stand-in)";
}

cudaError_t cudaMallocHost(void **ptr, size_t size) {
    *ptr = malloc(size ? size : 1);
    return *ptr ? cudaSuccess : cudaErrorMemoryAllocation;
}

cudaError_t cudaFreeHost(void *ptr) {
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    (void)kind, (void)stream;
    if (count) memmove(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    (void)stream;
    return cudaSuccess;
}

/* ---- ops_cuda.h: the context and memory ---- */

struct pd_cuda_ctx {
    pd_cuda_precision prec;
    char stream[8]; /* a distinct non-NULL "stream" */
};

int pd_gpu_count(void) { return 1; }

pd_cuda_ctx *pd_cuda_ctx_create(int device, pd_cuda_precision prec, size_t scratch_bytes,
                                size_t algo_ws_bytes) {
    (void)device, (void)scratch_bytes, (void)algo_ws_bytes;
    pd_cuda_ctx *c = calloc(1, sizeof *c);
    if (c) c->prec = prec;
    return c;
}
void pd_cuda_ctx_destroy(pd_cuda_ctx *ctx) { free(ctx); }
void pd_cuda_ctx_set_precision(pd_cuda_ctx *ctx, pd_cuda_precision prec) { ctx->prec = prec; }
pd_cuda_precision pd_cuda_ctx_precision(const pd_cuda_ctx *ctx) { return ctx->prec; }
void *pd_cuda_ctx_stream(pd_cuda_ctx *ctx) { return ctx->stream; }
void pd_cuda_sync(pd_cuda_ctx *ctx) { (void)ctx; }

void *pd_cuda_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 256, bytes ? bytes : 1)) return NULL;
    return p;
}
void pd_cuda_free(void *p) { free(p); }
void pd_cuda_upload(pd_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes) memcpy(dst, src, bytes);
}
void pd_cuda_download(pd_cuda_ctx *ctx, void *dst, const void *src, size_t bytes) {
    (void)ctx;
    if (bytes) memcpy(dst, src, bytes);
}
void pd_cuda_zero(pd_cuda_ctx *ctx, void *p, size_t bytes) {
    (void)ctx;
    memset(p, 0, bytes);
}

/* ---- the device functions the executor calls: the CPU runtime's ---- */

void pd_optim_step_cuda(pd_cuda_ctx *ctx, float *params, float *state, const float *grads,
                        const pd_optim *opt, int64_t t, size_t n) {
    (void)ctx;
    pd_optim_step(params, state, grads, opt, t, n);
}

double pd_sq_norm_cuda(pd_cuda_ctx *ctx, const float *g, size_t n) {
    (void)ctx;
    return pd_sq_norm(g, n);
}

void pd_scale_cuda(pd_cuda_ctx *ctx, float *x, float a, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) x[i] *= a;
}

void pd_labels_from_floats_cuda(pd_cuda_ctx *ctx, int *labels, const float *tail, int n) {
    (void)ctx;
    for (int i = 0; i < n; i++) labels[i] = (int)tail[i];
}

void pdrt_identity_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *inp, size_t N) {
    (void)ctx;
    if (N) memmove(out, inp, N * sizeof(float));
}

float pdrt_softmax_cross_entropy_cuda(pd_cuda_ctx *ctx, float *dlogits, const float *logits,
                                      const int *labels, int B, int K) {
    (void)ctx;
    return pdrt_softmax_cross_entropy(dlogits, logits, labels, B, K);
}

int pdrt_count_correct_cuda(pd_cuda_ctx *ctx, const float *logits, const int *labels, int B, int K) {
    (void)ctx;
    return pdrt_count_correct(logits, labels, B, K);
}

/* ---- NCCL and the GPU transports: not here ---- */

void *pd_nccl_comm_create(MPI_Comm comm) {
    (void)comm;
    return NULL;
}
void pd_nccl_comm_destroy(void *nc) { (void)nc; }
int pd_nccl_allreduce_sum(void *nc, float *buf, int64_t n, void *stream) {
    (void)nc, (void)buf, (void)n, (void)stream;
    return 1;
}

static void refuse(pdrt_link *l, const pdrt_link_env *env) {
    (void)l, (void)env;
    PDRT_FAIL("the host stand-in of the CUDA runtime has only the host transport: run with "
              "PDRT_TRANSPORT=host");
}
const pdrt_transport pd_transport_ipc = {"ipc", refuse, NULL, NULL, NULL, NULL};
const pdrt_transport pd_transport_nccl = {"nccl", refuse, NULL, NULL, NULL, NULL};
