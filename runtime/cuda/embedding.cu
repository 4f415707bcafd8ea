// embedding.cu: the embedding gather and its backward (ops.h's semantics). The backward is
// deterministic without atomics: one thread per (row v, column c) of the weight gradient walks
// the minibatch's ids in order and sums the rows whose id is v (O(V * B*T * C) work: meant for
// small vocabularies, character-level models; a large vocabulary wants llm.c's sort by id), one
// thread per (position t, column c) sums the position gradient over the samples in order. An id
// outside [0, V) makes its output row NaN (the loss then stops the run; the CPU kernel aborts).
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
    GRID_STRIDE(k, (size_t)V * C) {
        int v = (int)(k / (size_t)C), c = (int)(k % (size_t)C);
        float s = 0.0f;
        for (size_t i = 0; i < rows; i++)
            if (id_at(ids, i, V) == v) s += dout[i * C + c];
        dw[k] += s;
    }
}
static __global__ void emb_dpos_kernel(float *dpos, const float *dout, int B, int T, int C) {
    GRID_STRIDE(k, (size_t)T * C) {
        size_t t = k / (size_t)C, c = k % (size_t)C;
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += dout[((size_t)b * T + t) * C + c];
        dpos[k] += s;
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
    if (dweight && V && C) {
        size_t n = (size_t)V * C;
        emb_dw_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(
            dweight, dout, ids, (size_t)B * T, V, C);
        PD_CUDA_LAUNCHED();
    }
    if (dpos && T && C) {
        size_t n = (size_t)T * C;
        emb_dpos_kernel<<<pd_blocks(n, PD_THREADS), PD_THREADS, 0, ctx->stream>>>(dpos, dout, B,
                                                                                  T, C);
        PD_CUDA_LAUNCHED();
    }
}
