/* ops_linear.c: the fully connected layer, forward and backward, through cblas_sgemm. */
#include <cblas.h>
#include <string.h>

#include "ops.h"
#include "vec_math.h"

void pdrt_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int B, int C, int OC) {
    float beta = 0.0f;
    if (bias) {
        for (int b = 0; b < B; b++) memcpy(out + (size_t)b * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    /* out[B][OC] (+)= inp[B][C] * weight[OC][C]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, C, 1.0f, inp, C, weight, C, beta,
                out, OC);
}

void pdrt_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int B, int C, int OC) {
    if (dinp) /* dinp[B][C] += dout[B][OC] * weight[OC][C] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C, OC, 1.0f, dout, OC, weight,
                    C, 1.0f, dinp, C);
    if (dweight) /* dweight[OC][C] += dout[B][OC]^T * inp[B][C] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, B, 1.0f, dout, OC, inp, C,
                    1.0f, dweight, C);
    if (dbias) /* rows in order, four columns at a time (the same sums as one at a time) */
        for (int b = 0; b < B; b++) {
            const float *row = dout + (size_t)b * OC;
            int o = 0;
            for (; o + 4 <= OC; o += 4)
                pd_store4(dbias + o, pd_load4(dbias + o) + pd_load4(row + o));
            for (; o < OC; o++) dbias[o] += row[o];
        }
}
