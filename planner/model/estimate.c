/* estimate.c: analytic per-layer costs (ms per minibatch) from FLOPs and bytes, for a named device,
 * when no measured profile is given. A roofline: time = max(FLOPs / rate, bytes / bandwidth) plus
 * a fixed per-layer overhead. Rates, and where they come from (also in docs/formats.md):
 *   cpu   50 GFLOP/s, 10 GB/s, 0.005 ms: one core of this machine; OpenBLAS sgemm 512^3 ran at
 *         75 GFLOP/s single-threaded (probe, 2026), im2col convolutions reach about 2/3 of that;
 *         10 GB/s for elementwise passes over cache-resident activations (a naive triad over
 *         256 MiB measured 2.2 GB/s, the fmnist_cnn activations fit in cache).
 *   h200  37 TFLOP/s, 4.0 TB/s, 0.005 ms: fitted to ../shared/anchors/h200/vgg16.json (features.2
 *         conv: 237 GFLOP in 6.41 ms; features.1 relu: 1.64 GB moved in 0.414 ms); fp32, no TF32.
 *   v100  12 TFLOP/s, 0.8 TB/s, 0.01 ms: about 80% of the V100's 15.7 TFLOP/s fp32 and 900 GB/s.
 * Bytes per minibatch: forward reads every input tensor and the parameters and writes the output
 * (4 bytes per float); backward moves 1.5 times the forward bytes (it reads the output gradient and
 * a saved tensor, writes the input gradient, and the weight gradient for layers with weights).
 * Backward FLOPs come from shapes.c (twice the forward matrix products for linear and conv2d).
 */
#include <stdio.h>
#include <string.h>

#include "costs.h"

typedef struct {
    const char *name;
    double flops_per_s, bytes_per_s, overhead_ms;
} device_rates;

static const device_rates devices[] = {
    {"cpu", 50e9, 10e9, 0.005},
    {"h200", 37e12, 4.0e12, 0.005},
    {"v100", 12e12, 0.8e12, 0.01},
};

static double roof_ms(double flops, double bytes, const device_rates *r) {
    double tf = flops / r->flops_per_s, tb = bytes / r->bytes_per_s;
    return 1e3 * (tf > tb ? tf : tb) + r->overhead_ms;
}

int pd_estimate_costs(pd_model *m, const char *device, pd_diag *d) {
    const device_rates *r = NULL;
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        if (device && strcmp(device, devices[i].name) == 0) r = &devices[i];
    if (!r) {
        pd_diag_error(d, "pdplan", 0, 0, "unknown device '%s' for cost estimates (known: cpu, "
                      "h200, v100)", device ? device : "(none)");
        return 1;
    }
    double batch = (double)m->batch;
    int errors = 0;
    for (int i = 1; i < m->n_layers; i++) {
        pd_layer *L = &m->layers[i];
        double elems = (double)pd_shape_numel(&L->out);
        for (int k = 0; k < L->n_inputs; k++)
            elems += (double)pd_shape_numel(&m->layers[L->inputs[k]].out);
        double params = (double)(L->n_weight + L->n_bias);
        double bytes = 4.0 * (batch * elems + params);
        L->fwd_ms = roof_ms(batch * L->flops_fwd, bytes, r);
        L->bwd_ms = roof_ms(batch * L->flops_bwd, 1.5 * bytes, r);
        if (!(L->fwd_ms <= PD_INPUT_MAX_MS && L->bwd_ms <= PD_INPUT_MAX_MS)) {
            pd_diag_error(d, m->path, L->line, L->col, "layer '%s': estimated at %g ms per "
                          "minibatch on %s, more than %g ms", L->name,
                          L->fwd_ms > L->bwd_ms ? L->fwd_ms : L->bwd_ms, r->name,
                          PD_INPUT_MAX_MS);
            errors++;
        }
    }
    if (errors) return 1;
    m->costs_estimated = 1;
    snprintf(m->cost_source, sizeof m->cost_source, "estimate:%s", r->name);
    return 0;
}
