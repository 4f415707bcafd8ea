/* pdprof_layer.h: one layer set up for timing (pdprof.c), with random host buffers of the sizes
 * its kernels need, and the CUDA backend that times it on a GPU (pdprof_cuda.c). */
#ifndef PDPROF_LAYER_H
#define PDPROF_LAYER_H

#include <stddef.h>

#include "planner/read/frontend.h"

/* One layer's buffers (host, random) and sizes. dropout's mask lives in scratch. */
typedef struct {
    const pd_layer *L;
    int B, n_in;
    const pd_shape *in[PD_MAX_INPUTS];
    float *x[PD_MAX_INPUTS], *dx[PD_MAX_INPUTS];
    float *y, *dy, *w, *b, *dw, *db, *scratch, *save_mean, *save_rstd, *rm, *rv;
    size_t scratch_floats;
    int *argmax, *labels;
    int channels[PD_MAX_INPUTS];
    int last, classes;
} layer_run;

/* Layer i of m at batch B (the loss rides with the last layer). */
void pdprof_layer_setup(layer_run *r, const pd_model *m, int i, int B);
void pdprof_layer_teardown(layer_run *r);

/* The CUDA backend. begin: device 0, the precision ("fp32" or "bf16"), scratch for m's layers
 * at batch B; returns 0, or -1 with the reason in why (no GPU, built without CUDA). time: like
 * the CPU's, `repeats` timings (ms) after `warmup` untimed runs of the layer's forward
 * (backward 0) or backward, each between two stream synchronisations, on device copies of r's
 * buffers. */
int pdprof_cuda_begin(const pd_model *m, int B, const char *precision, char *why, size_t why_cap);
void pdprof_cuda_time(const layer_run *r, int backward, int warmup, int repeats, double *t);
void pdprof_cuda_end(void);

#endif
