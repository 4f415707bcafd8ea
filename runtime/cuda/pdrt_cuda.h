/* pdrt_cuda.h: the API a generated stage_<k>.cu calls (pdplan --backend cuda). The stage fills
 * one pdrt_cuda_stage: the CPU descriptor (pdrt.h: sizes, tensor table, schedule, training
 * defaults; its init runs on the host and the runtime uploads the result) plus device forward
 * and backward functions calling ops_cuda.h, and hands it to pdrt_cuda_main, which runs the same
 * schedule IR as the CPU executor on one GPU per rank: a static device memory plan allocated
 * once, the weight stash as a ring of device blobs, and a transport per link (transport.h:
 * CUDA IPC between ranks sharing a GPU, NCCL between distinct GPUs, host staging through MPI as
 * the fallback).
 *
 * Device buffers the stage functions see have the layout pdrt.h describes (params, buffers,
 * acts, in, out, all float32). Differences from the CPU contract:
 *   - backward ACCUMULATES into dparams (the runtime passes the update's gradient accumulator
 *     and zeroes it after each optimizer step); it zeroes dacts and din itself;
 *   - there is no scratch argument: the context's scratch arena (sized from scratch_bytes) is
 *     used by the ops.
 */
#ifndef PDRT_CUDA_H
#define PDRT_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "ops_cuda.h"
#include "runtime/pdrt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PDRT_CUDA_ABI 2

typedef void (*pdrt_cuda_forward_fn)(pd_cuda_ctx *ctx, float *out, float *acts, float *buffers,
                                     const float *params, const float *in, int training,
                                     uint64_t seed, int64_t step);
typedef void (*pdrt_cuda_backward_fn)(pd_cuda_ctx *ctx, float *din, float *dparams, float *dacts,
                                      const float *dout, const float *acts, const float *params,
                                      const float *in);

typedef struct {
    int abi;                      /* PDRT_CUDA_ABI */
    pdrt_stage base;              /* forward, backward, scratch_floats unused (NULL) */
    pdrt_cuda_forward_fn forward;
    pdrt_cuda_backward_fn backward;
    /* zb-h1, zb-h2: the backward in two parts with backward's arguments (pdrt.h's contract, but
     * accumulating into dparams as backward does): backward_input zeroes dacts and din, fills
     * din and leaves the layers' gradients in dacts; backward_weight, with dacts untouched in
     * between, accumulates the gradients of the weights whose ops split (planner/ops/op.h);
     * backward_input accumulates the others'. */
    pdrt_cuda_backward_fn backward_input;
    pdrt_cuda_backward_fn backward_weight;
    size_t (*scratch_bytes)(pd_cuda_precision prec); /* the context's scratch arena */
    pd_cuda_precision precision;  /* the default (pdplan --precision); --precision overrides */
} pdrt_cuda_stage;

/* One stage replica per MPI rank on one GPU. Options: those of pdrt_main, plus
 *   --precision fp32|bf16      (default: the stage's)
 *   --transport auto|ipc|nccl|host   (default auto: ipc when both ranks use the same GPU, nccl
 *                              between distinct GPUs; PDRT_TRANSPORT in the environment too)
 *   --device N                 (default: the node-local rank modulo the GPUs)
 * Without a usable GPU it prints why and returns 1 (no crash). Returns the exit status. */
int pdrt_cuda_main(int argc, char **argv, const pdrt_cuda_stage *st);

/* An interleaved plan's rank (pdplan --schedule interleaved --chunks v --backend cuda):
 * chunks[c] is stage c * p + rank of the plan's p * v, p the MPI world's size, all on the rank's
 * GPU (runtime/cuda/executor_cuda_chunks.c). Options and return as pdrt_cuda_main's. */
int pdrt_cuda_main_chunks(int argc, char **argv, const pdrt_cuda_stage *chunks, int v);

#ifdef __cplusplus
}
#endif

#endif
