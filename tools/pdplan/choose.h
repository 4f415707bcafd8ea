/* choose.h: pdplan --schedule auto (choose.c): the schedule, microbatches and recomputation
 * chosen with the partition under the memory limit, by simulating every candidate. */
#ifndef PD_CHOOSE_H
#define PD_CHOOSE_H

#include <stdio.h>

#include "planner/model/costgraph.h"
#include "planner/plan/plan.h"
#include "planner/read/cluster.h"
#include "planner/util/diag.h"

/* a: the DP's plan under c's memory limit (NULL: none fits its model); b: its plan without the
 * limit (NULL: not planned). cpu: the CPU backend (zb-h1, zb-h2, 2bw and recomputation are CPU
 * only). Prints the choice and its reason to out (with explain, every candidate). Returns a or
 * b with its schedule, microbatches, recomputation and weight versions set, or NULL with a
 * diagnostic when no candidate fits. */
pd_plan *pd_choose_schedule(FILE *out, const pd_costgraph *g, const pd_cluster *c, pd_plan *a,
                            pd_plan *b, int cpu, int explain, pd_diag *d);

#endif
