/* pdprof_layer.h: one layer set up for timing, from its op's descriptor (planner/ops/op.h): the
 * random host buffers its kernels need (pdprof_layer.c), its calls made ready with libffi, and the
 * CUDA backend that times it on a GPU (pdprof_cuda.c). pdprof knows no op: it makes the calls the
 * descriptor lists, on buffers of the sizes the descriptor gives. */
#ifndef PDPROF_LAYER_H
#define PDPROF_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "planner/ops/op.h"
#include "planner/read/frontend.h"

/* The memory a layer's calls run on: host buffers (CPU) or device ones (CUDA), and the values
 * the calls take at run time. Absent tensors are NULL. */
typedef struct {
    float *x[PD_MAX_INPUTS], *dx[PD_MAX_INPUTS], *y, *dy;
    float *param[PD_MAX_OP_TENSORS], *dparam[PD_MAX_OP_TENSORS], *buffer[PD_MAX_OP_TENSORS];
    float *saved[PD_MAX_OP_TENSORS], *scratch;
    void *ctx;       /* CUDA: the pd_cuda_ctx */
    int batch, layer, prec;
} pdprof_bufs;

/* One call made ready: the function found by name (dlsym), its libffi description and its
 * argument values. Holds pointers into itself: bind it where it stays. */
typedef struct {
    void (*fn)(void);
    int returns_size;      /* scratch sizes return a size_t */
    int n;
    void *ffi;             /* ffi_cif, allocated */
    void *types[PD_CALL_MAX_ARGS];
    union { void *p; int i; int64_t l; uint64_t u; float f; } v[PD_CALL_MAX_ARGS];
    void *argp[PD_CALL_MAX_ARGS];
    int ints[PD_MAX_INPUTS];
} pdprof_call;

/* Makes c ready to run on b (returns_size: it returns a size_t, as the scratch phase's calls
 * do). Returns 0, or -1 with the reason in why (the function is not in this pdprof). */
int pdprof_call_bind(pdprof_call *pc, const pd_call *c, int returns_size, const pdprof_bufs *b,
                     char *why, size_t cap);
/* Makes the call; returns what it returns when that is a size_t (0 otherwise). */
size_t pdprof_call_run(pdprof_call *pc);
void pdprof_call_free(pdprof_call *pc);

/* Each call of a phase of L, on a backend, bound to b (at most max): the count, or -1 with a
 * message on stderr. in: L's input shapes. */
int pdprof_bind_phase(pdprof_call *calls, int max, const pd_layer *L, const pd_shape *const *in,
                      pd_backend backend, pd_phase phase, const pdprof_bufs *b);

#define PDPROF_MAX_CALLS 4

/* One layer at batch B: sizes (floats) and random host buffers, and its CPU calls. */
typedef struct {
    const pd_layer *L;
    int B, n_in, index;
    const pd_shape *in[PD_MAX_INPUTS];
    size_t x_floats[PD_MAX_INPUTS], y_floats, scratch_floats;
    size_t param_floats[PD_MAX_OP_TENSORS], buffer_floats[PD_MAX_OP_TENSORS];
    size_t saved_floats[PD_MAX_OP_TENSORS];
    pdprof_bufs host;
    int n_fwd, n_bwd;
    pdprof_call fwd[PDPROF_MAX_CALLS], bwd[PDPROF_MAX_CALLS]; /* CPU */
    int *labels;
    int last, classes; /* the loss rides with the last layer's forward */
} layer_run;

/* Layer i of m at batch B: its buffers (parameters initialised by the op's init calls), its CPU
 * calls bound to them. Exits with a message when a kernel is missing or memory runs out. */
void pdprof_layer_setup(layer_run *r, const pd_model *m, int i, int B);
void pdprof_layer_teardown(layer_run *r);
/* The layer's CPU forward (with the loss on the last layer) or backward. */
void pdprof_layer_run(layer_run *r, int backward);

/* The CUDA backend. begin: device 0, the precision ("fp32" or "bf16"), scratch for m's layers
 * at batch B; returns 0, or -1 with the reason in why (no GPU, built without CUDA, a layer the
 * GPU kernels cannot run). time: like the CPU's, `repeats` timings (ms) after `warmup` untimed
 * runs of the layer's forward (backward 0) or backward, each between two stream
 * synchronisations, on device copies of r's buffers. */
int pdprof_cuda_begin(const pd_model *m, int B, const char *precision, char *why, size_t why_cap);
void pdprof_cuda_time(const layer_run *r, int backward, int warmup, int repeats, double *t);
void pdprof_cuda_end(void);

#endif
