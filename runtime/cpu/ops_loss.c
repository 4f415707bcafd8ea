/* ops_loss.c: softmax cross-entropy (mean over the batch) and the accuracy helper. */
#include <math.h>

#include "ops.h"

float pdrt_softmax_cross_entropy(float *dlogits, const float *logits, const int *labels, int B, int K) {
    double total = 0.0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float mx = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > mx) mx = z[k];
        double sum = 0.0;
        for (int k = 0; k < K; k++) sum += exp((double)z[k] - mx);
        double lse = mx + log(sum);
        total += lse - z[labels[b]];
        if (dlogits) {
            float *dz = dlogits + (size_t)b * K;
            for (int k = 0; k < K; k++) {
                double p = exp((double)z[k] - lse);
                dz[k] = (float)((p - (k == labels[b] ? 1.0 : 0.0)) / B);
            }
        }
    }
    return (float)(total / B);
}

int pdrt_count_correct(const float *logits, const int *labels, int B, int K) {
    int correct = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        correct += best == labels[b];
    }
    return correct;
}
