// embedding.cu: the embedding gather and its backward (ops.h's semantics). The backward is a
// scatter-add, deterministic without atomics or a sort: one block per token position i; the
// block goes on only if i is the first position of its id v (its threads look at the positions
// before i together), and then it alone owns row v of the weight gradient: its threads (columns)
// walk the positions j >= i in order and add dout[j] where ids[j] == v, starting from the row's
// old value, so the sum runs in the CPU kernel's order and gives its bits. Work O(B*T*C) for the
// additions and O(distinct ids * B*T) comparisons (each block reads the ids as one broadcast
// stream), independent of V: GPT-2's 50257 rows cost no more than 88. One thread per (position
// t, column c) sums the position gradient over the samples in order, from its old value too. An
// id outside [0, V) makes its output row NaN (the loss then stops the run; the CPU kernel aborts)
// and adds nothing.
#include "cuda_internal.h"

#define PD_THREADS 256
#define GRID_STRIDE(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (size_t)gridDim.x * blockDim.x)

static __device__ int id_at(const float *ids, size_t i, int V) {
    float f = ids[i];
    return (f >= 0.0f && f < (float)V && f == (float)(int)f) ? (int)f : -1;
}

static __global__ void emb_fwd_kernel(float *out, const float *ids, const float *w,
                                      const float *pos, size_t rows, int T, int V, int C) {
    GRID_STRIDE(k, rows * (size_t)C) {
        size_t i = k / (size_t)C;
        int c = (int)(k % (size_t)C), id = id_at(ids, i, V);
        float y = id < 0 ? __int_as_float(0x7fc00000) : w[(size_t)id * C + c];
        if (pos) y += pos[(i % (size_t)T) * C + c];
        out[k] = y;
    }
}
static __global__ void emb_dw_kernel(float *dw, const float *dout, const float *ids, size_t rows,
                                     int V, int C) {
    size_t i = blockIdx.x;
    int v = id_at(ids, i, V);
    if (v < 0) return; /* the whole block: v is the same for every thread */
    int earlier = 0;   /* does a position before i hold v? */
    for (size_t j = threadIdx.x; j < i && !earlier; j += blockDim.x)
        earlier = id_at(ids, j, V) == v;
    if (__syncthreads_or(earlier)) return;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float s = dw[(size_t)v * C + c];
        for (size_t j = i; j < rows; j++)
            if (id_at(ids, j, V) == v) s += dout[j * C + c];
        dw[(size_t)v * C + c] = s;
    }
}
static __global__ void emb_dpos_kernel(float *dpos, const float *dout, int B, int T, int C) {
    GRID_STRIDE(k, (size_t)T * C) {
        size_t t = k / (size_t)C, c = k % (size_t)C;
        float s = dpos[k];
        for (int b = 0; b < B; b++) s += dout[((size_t)b * T + t) * C + c];
        dpos[k] = s;
    }
}

extern "C" void pdrt_embedding_forward_cuda(pd_cuda_ctx *ctx, float *out, const float *ids,
                                            const float *weight, const float *pos, int B, int T,
                                            int V, int C) {
    size_t n = (size_t)B * T * C;
    if (!n) return;
    emb_fwd_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
        out, ids, weight, pos, (size_t)B * T, T, V, C);
    PD_CUDA_LAUNCHED();
}

extern "C" void pdrt_embedding_backward_cuda(pd_cuda_ctx *ctx, float *dweight, float *dpos,
                                             const float *dout, const float *ids, int B, int T,
                                             int V, int C) {
    size_t rows = (size_t)B * T;
    if (dweight && V && C && rows) { /* one block per position (rows < 2^31: a grid's x) */
        emb_dw_kernel<<<(unsigned)rows, PD_THREADS, 0, ctx->stream>>>(dweight, dout, ids, rows,
                                                                      V, C);
        PD_CUDA_LAUNCHED();
    }
    if (dpos && T && C) {
        size_t n = (size_t)T * C;
        emb_dpos_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(dpos, dout, B,
                                                                                  T, C);
        PD_CUDA_LAUNCHED();
    }
}
