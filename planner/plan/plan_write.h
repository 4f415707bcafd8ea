/* plan_write.h: writes a pd_plan as plan.yaml (pd_plan: 1) and as the human table pdplan prints.
 *
 * plan.yaml is deterministic (byte-identical for identical inputs) and prints every number with
 * %.17g so that it round-trips. The one exception is the certificate's `seconds`, which stands
 * alone on a line starting "    seconds: " so that golden comparisons can mask it.
 */
#ifndef PD_PLAN_WRITE_H
#define PD_PLAN_WRITE_H

#include <stdint.h>
#include <stdio.h>

#include "planner/read/cluster.h"
#include "planner/model/costgraph.h"
#include "planner/util/diag.h"
#include "planner/util/hash.h"
#include "plan.h"

#define PDPLAN_VERSION "0.1.0"

/* What the plan does not hold itself: where it came from. Paths and hashes may be NULL. */
typedef struct {
    const char *model_name;
    const char *input_kind;     /* "model" (pd: 1 YAML) or "graph.txt" */
    const char *input_path, *input_hash;
    const char *profile_path, *profile_hash;   /* NULL: no profile */
    const char *cluster_kind;   /* "file", "flags" or "default" */
    const char *cluster_path, *cluster_hash;   /* file clusters only */
    const char *cost_source;    /* profile path, or "estimated for <device>" */
    int estimated;              /* costs from the analytic estimate */
    int batch;                  /* minibatch size; 0 when unknown (graph.txt) */
} pd_plan_info;

/* The plan as YAML text. Returns 0, or -1 if writing failed. */
int pd_plan_write_yaml(FILE *out, const pd_plan *p, const pd_costgraph *g, const pd_cluster *c,
                       const pd_plan_info *info);

/* Writes dir/plan.yaml atomically: into a temporary file in dir, then rename(2). dir must exist.
 * Returns 0, or nonzero with a diagnostic. */
int pd_plan_save(const char *dir, const pd_plan *p, const pd_costgraph *g, const pd_cluster *c,
                 const pd_plan_info *info, pd_diag *d);

/* The table pdplan prints on stdout: one row per stage, then bottleneck, throughput,
 * data-parallel time and speedup, the certificate, and the cost source when estimated. */
void pd_plan_print_table(FILE *out, const pd_plan *p, const pd_costgraph *g,
                         const pd_cluster *c, const pd_plan_info *info);

/* Throughput for info->batch (samples/s), or minibatches/s when the batch is unknown. */
double pd_plan_throughput(const pd_plan *p, int batch);

#endif
