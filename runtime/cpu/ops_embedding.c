/* ops_embedding.c: the embedding gather and its scatter-add backward (docs/ops.md). The backward
 * walks the minibatch in order, so a row that several tokens hit sums their gradients in one
 * fixed order: deterministic. */
#include <stdio.h>
#include <stdlib.h>

#include "ops.h"

/* the id at ids[i] as a row index, or a message and abort (the data loader checks ids against
 * the model's classes; this is the embedding's own vocabulary) */
static size_t row_of(const float *ids, size_t i, int V) {
    float f = ids[i];
    if (!(f >= 0 && f < (float)V) || f != (float)(int)f) {
        fprintf(stderr, "pdrt: error: embedding: token id %g at position %zu is not in [0, %d)\n",
                (double)f, i, V);
        abort();
    }
    return (size_t)f;
}

void pdrt_embedding_forward(float *out, const float *ids, const float *weight, const float *pos,
                            int B, int T, int V, int C) {
    for (size_t i = 0; i < (size_t)B * T; i++) {
        const float *w = weight + row_of(ids, i, V) * C;
        const float *p = pos ? pos + (i % (size_t)T) * C : NULL;
        float *o = out + i * C;
        if (p)
            for (int c = 0; c < C; c++) o[c] = w[c] + p[c];
        else
            for (int c = 0; c < C; c++) o[c] = w[c];
    }
}

void pdrt_embedding_backward(float *dweight, float *dpos, const float *dout, const float *ids,
                             int B, int T, int V, int C) {
    for (size_t i = 0; i < (size_t)B * T; i++) {
        const float *d = dout + i * C;
        if (dweight) {
            float *w = dweight + row_of(ids, i, V) * C;
            for (int c = 0; c < C; c++) w[c] += d[c];
        }
        if (dpos) {
            float *p = dpos + (i % (size_t)T) * C;
            for (int c = 0; c < C; c++) p[c] += d[c];
        }
    }
}
