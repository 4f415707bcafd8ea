/* ops_norm.c: 2-D batch normalisation (training and eval forwards, training backward; sums in
 * double) and layer normalisation over the last dimension (float lanes). Every sum runs in a
 * fixed order, so results are deterministic. */
#include <math.h>

#include "ops.h"
#include "vec_math.h"

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

/* ---- layernorm over the last dimension: N rows of C; two passes per row, in float, four lanes
 * at a time (vec_math.h's types) with the lanes summed in one fixed order, so a row's result
 * depends on that row alone: deterministic, and at C = 128 within 1e-6 of a double reference.
 * Double sums cost as much as the rest of the layer and bought nothing at these widths. ---- */

static inline float lanes_sum(pd_f32x4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }

void pdrt_layernorm_forward(float *out, float *save_mean, float *save_rstd, const float *inp,
                            const float *weight, const float *bias, float eps, int N, int C) {
    int C4 = C & ~3;
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        pd_f32x4 acc = pd_splat4(0.0f);
        for (int c = 0; c < C4; c += 4) acc += pd_load4(x + c);
        float m = lanes_sum(acc);
        for (int c = C4; c < C; c++) m += x[c];
        m /= (float)C;
        pd_f32x4 m4 = pd_splat4(m);
        acc = pd_splat4(0.0f);
        for (int c = 0; c < C4; c += 4) {
            pd_f32x4 d = pd_load4(x + c) - m4;
            acc += d * d;
        }
        float v = lanes_sum(acc);
        for (int c = C4; c < C; c++) v += (x[c] - m) * (x[c] - m);
        float r = 1.0f / sqrtf(v / (float)C + eps);
        pd_f32x4 r4 = pd_splat4(r);
        for (int c = 0; c < C4; c += 4) {
            pd_f32x4 h = (pd_load4(x + c) - m4) * r4;
            if (weight) h *= pd_load4(weight + c);
            if (bias) h += pd_load4(bias + c);
            pd_store4(y + c, h);
        }
        for (int c = C4; c < C; c++) {
            float h = (x[c] - m) * r;
            if (weight) h *= weight[c];
            if (bias) h += bias[c];
            y[c] = h;
        }
        if (save_mean) save_mean[n] = m;
        if (save_rstd) save_rstd[n] = r;
    }
}

void pdrt_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *save_mean,
                             const float *save_rstd, int N, int C) {
    int C4 = C & ~3;
    const pd_f32x4 one = pd_splat4(1.0f);
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float m = save_mean[n], r = save_rstd[n];
        pd_f32x4 m4 = pd_splat4(m), r4 = pd_splat4(r), sg = pd_splat4(0.0f), sgh = sg;
        for (int c = 0; c < C4; c += 4) {
            pd_f32x4 h = (pd_load4(x + c) - m4) * r4, d = pd_load4(dy + c);
            pd_f32x4 g = (weight ? pd_load4(weight + c) : one) * d;
            sg += g;
            sgh += g * h;
            if (dweight) pd_store4(dweight + c, pd_load4(dweight + c) + d * h);
            if (dbias) pd_store4(dbias + c, pd_load4(dbias + c) + d);
        }
        float mg = lanes_sum(sg), mgx = lanes_sum(sgh);
        for (int c = C4; c < C; c++) {
            float h = (x[c] - m) * r, g = (weight ? weight[c] : 1.0f) * dy[c];
            mg += g;
            mgx += g * h;
            if (dweight) dweight[c] += dy[c] * h;
            if (dbias) dbias[c] += dy[c];
        }
        mg /= (float)C;
        mgx /= (float)C;
        if (!dinp) continue;
        float *dx = dinp + (size_t)n * C;
        pd_f32x4 mg4 = pd_splat4(mg), mgx4 = pd_splat4(mgx);
        for (int c = 0; c < C4; c += 4) {
            pd_f32x4 h = (pd_load4(x + c) - m4) * r4;
            pd_f32x4 g = (weight ? pd_load4(weight + c) : one) * pd_load4(dy + c);
            pd_store4(dx + c, pd_load4(dx + c) + r4 * (g - mg4 - h * mgx4));
        }
        for (int c = C4; c < C; c++) {
            float h = (x[c] - m) * r, g = (weight ? weight[c] : 1.0f) * dy[c];
            dx[c] += r * (g - mg - h * mgx);
        }
    }
}
