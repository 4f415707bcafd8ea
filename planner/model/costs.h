/* costs.h: what the planner needs of a model's costs: the largest costs any input may carry, the
 * analytic estimate (estimate.c) and the cost graph of a model (model_costgraph.c). The readers
 * (planner/read/) check their inputs against the same limits. */
#ifndef PD_COSTS_H
#define PD_COSTS_H

#include "costgraph.h"
#include "model.h"
#include "planner/util/diag.h"

/* Largest values the readers accept, so that the planner's sums and quotients of them stay
 * finite: a time per minibatch (1e12 ms is 31 years), a tensor or parameter size in bytes, and
 * the smallest bandwidth in bytes/s. Larger (or smaller) values are diagnostics. */
#define PD_INPUT_MAX_MS 1e12
#define PD_INPUT_MAX_BYTES 1e18
#define PD_INPUT_MIN_BANDWIDTH 1.0

/* Analytic costs from FLOPs and bytes for a named device ("cpu", "h200", "v100"); marks the model
 * costs_estimated. Unknown device names are an error. */
int pd_estimate_costs(pd_model *m, const char *device, pd_diag *d);

/* The cost graph of a model: node i is layer i+1 (the input layer is not a node; its bytes go to
 * input_bytes), act_bytes = 4 * batch * numel(out), param_bytes = 4 * (n_weight + n_bias). */
pd_costgraph *pd_model_costgraph(const pd_model *m);

#endif
