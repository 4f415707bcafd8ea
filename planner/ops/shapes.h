/* shapes.h: shape inference and per-layer parameter and FLOP counts (shapes.c). */
#ifndef PD_SHAPES_H
#define PD_SHAPES_H

#include "planner/util/diag.h"
#include "planner/model/model.h"

/* Infers out, n_weight, n_bias, n_buffer, flops_fwd, flops_bwd of every layer of m (layers[0]
 * is the input, whose shape is m->input) and checks that the last layer's output is (classes).
 * Reports each inconsistent layer at its line:col in file; layers fed by a failed layer are
 * skipped silently. Returns the number of errors. */
int pd_infer_shapes(pd_model *m, const char *file, pd_diag *d);

/* Formats a shape as "(C, H, W)" or "(F)" into buf. */
const char *pd_shape_str(char *buf, int cap, const pd_shape *s);

#endif
