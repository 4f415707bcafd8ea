/* ops_norm.c: 2-D batch normalisation (training and eval forwards, training backward) and
 * layer normalisation over the last dimension. Sums are taken in double, in a fixed order, so
 * results are deterministic. */
#include <math.h>

#include "ops.h"

void pdrt_batchnorm2d_forward(float *out, float *save_mean, float *save_rstd, float *running_mean,
                         float *running_var, const float *inp, const float *gamma,
                         const float *beta, float momentum, float eps, int B, int C, int H,
                         int W) {
    size_t HW = (size_t)H * W;
    double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            for (size_t p = 0; p < HW; p++) s += x[p];
        }
        double mean = s / n, ss = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            for (size_t p = 0; p < HW; p++) {
                double d = x[p] - mean;
                ss += d * d;
            }
        }
        double var = ss / n;
        float rstd = (float)(1.0 / sqrt(var + eps));
        float m = (float)mean;
        save_mean[c] = m;
        save_rstd[c] = rstd;
        if (running_mean)
            running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * m;
        if (running_var) {
            double unbiased = n > 1 ? ss / (n - 1) : var;
            running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)unbiased;
        }
        float g = gamma ? gamma[c] : 1.0f, bt = beta ? beta[c] : 0.0f;
        float scale = g * rstd, shift = bt - m * scale;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            float *y = out + ((size_t)b * C + c) * HW;
            for (size_t p = 0; p < HW; p++) y[p] = x[p] * scale + shift;
        }
    }
}

void pdrt_batchnorm2d_forward_eval(float *out, const float *inp, const float *gamma, const float *beta,
                              const float *running_mean, const float *running_var, float eps,
                              int B, int C, int H, int W) {
    size_t HW = (size_t)H * W;
    for (int c = 0; c < C; c++) {
        float rstd = (float)(1.0 / sqrt((double)running_var[c] + eps));
        float g = gamma ? gamma[c] : 1.0f, bt = beta ? beta[c] : 0.0f;
        float scale = g * rstd, shift = bt - running_mean[c] * scale;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            float *y = out + ((size_t)b * C + c) * HW;
            for (size_t p = 0; p < HW; p++) y[p] = x[p] * scale + shift;
        }
    }
}

void pdrt_batchnorm2d_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                          const float *inp, const float *gamma, const float *save_mean,
                          const float *save_rstd, int B, int C, int H, int W) {
    size_t HW = (size_t)H * W;
    double n = (double)B * HW;
    for (int c = 0; c < C; c++) {
        float m = save_mean[c], rstd = save_rstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            const float *dy = dout + ((size_t)b * C + c) * HW;
            for (size_t p = 0; p < HW; p++) {
                sum_dy += dy[p];
                sum_dy_xhat += (double)dy[p] * ((x[p] - m) * rstd);
            }
        }
        if (dgamma) dgamma[c] += (float)sum_dy_xhat;
        if (dbeta) dbeta[c] += (float)sum_dy;
        if (!dinp) continue;
        /* dx = g*rstd * (dy - mean(dy) - xhat * mean(dy*xhat)) */
        float g = gamma ? gamma[c] : 1.0f;
        float k = g * rstd;
        float mean_dy = (float)(sum_dy / n), mean_dy_xhat = (float)(sum_dy_xhat / n);
        for (int b = 0; b < B; b++) {
            const float *x = inp + ((size_t)b * C + c) * HW;
            const float *dy = dout + ((size_t)b * C + c) * HW;
            float *dx = dinp + ((size_t)b * C + c) * HW;
            for (size_t p = 0; p < HW; p++) {
                float xhat = (x[p] - m) * rstd;
                dx[p] += k * (dy[p] - mean_dy - xhat * mean_dy_xhat);
            }
        }
    }
}

/* ---- layernorm over the last dimension: N rows of C; sums in double, two passes ---- */

void pdrt_layernorm_forward(float *out, float *save_mean, float *save_rstd, const float *inp,
                            const float *weight, const float *bias, float eps, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double m = 0.0, v = 0.0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += ((double)x[c] - m) * ((double)x[c] - m);
        double r = 1.0 / sqrt(v / C + (double)eps);
        for (int c = 0; c < C; c++) {
            double h = ((double)x[c] - m) * r;
            y[c] = (float)((weight ? weight[c] : 1.0) * h + (bias ? bias[c] : 0.0));
        }
        if (save_mean) save_mean[n] = (float)m;
        if (save_rstd) save_rstd[n] = (float)r;
    }
}

void pdrt_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *save_mean,
                             const float *save_rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double m = save_mean[n], r = save_rstd[n], mg = 0.0, mgx = 0.0;
        for (int c = 0; c < C; c++) {
            double h = ((double)x[c] - m) * r, g = (weight ? weight[c] : 1.0) * dy[c];
            mg += g;
            mgx += g * h;
            if (dweight) dweight[c] += (float)(dy[c] * h);
            if (dbias) dbias[c] += dy[c];
        }
        mg /= C;
        mgx /= C;
        if (!dinp) continue;
        float *dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            double h = ((double)x[c] - m) * r, g = (weight ? weight[c] : 1.0) * dy[c];
            dx[c] += (float)(r * (g - mg - h * mgx));
        }
    }
}
