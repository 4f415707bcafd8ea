/* plan_draw.h: a plan as a Graphviz DOT picture (plan_draw.c; pdplan --draw). */
#ifndef PD_PLAN_DRAW_H
#define PD_PLAN_DRAW_H

#include <stdio.h>

#include "planner/model/costgraph.h"
#include "plan.h"

/* Writes the layer graph of g as DOT: every stage of p a filled cluster labelled "stage s: r
 * replicas, time ms, memory", every edge that crosses a cut in red with the bytes of its tensor
 * (per minibatch). Returns 0, or -1 when out of memory or writing fails. */
int pd_plan_write_dot(FILE *out, const pd_costgraph *g, const pd_plan *p, const char *title);

#endif
