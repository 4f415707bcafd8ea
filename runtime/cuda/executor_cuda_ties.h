/* executor_cuda_ties.h: tied weights between the ranks of a CUDA pipeline (executor_cuda_ties.c),
 * the CUDA executor's counterpart of runtime/executor_ties.c. */
#ifndef PDRT_EXECUTOR_CUDA_TIES_H
#define PDRT_EXECUTOR_CUDA_TIES_H

#include <mpi.h>
#include <stdint.h>

#include "ops_cuda.h"
#include "runtime/rt.h"

typedef struct {
    const pdrt_stage *st;
    const int *first_rank; /* pdrt_rank_table's: stage k's ranks are [first_rank[k], [k + 1]) */
    int R, j;              /* this stage's replicas and this rank's replica index */
    MPI_Comm comm;         /* a communicator of the ties' own (a dup of MPI_COMM_WORLD) */
} pdrt_cuda_ties;

/* The owner's initial values on both copies: host params (the stage's blob before upload). */
void pdrt_cuda_ties_init(const pdrt_cuda_ties *x, float *params);

/* After the replicas' all-reduce, before the optimizer step: the device accumulator acc's tied
 * copies become the sum of both copies' gradients (count: the update's minibatches, which both
 * sides must agree on). */
void pdrt_cuda_ties_grads(const pdrt_cuda_ties *x, pd_cuda_ctx *ctx, float *acc, int64_t count);

#endif
