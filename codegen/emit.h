/* emit.h: prints a generated stage source from a resolved program (resolve.h) and its template
 * (templates/stage.c.in, templates/stage.cu.in). */
#ifndef PD_EMIT_H
#define PD_EMIT_H

#include <stdio.h>

#include "planner/util/diag.h"
#include "planner/model/model.h"
#include "planner/plan/plan.h"
#include "resolve.h"

/* Writes stage s's C source (stage_<k>.c) to o: tmpl filled with banner (already filled in) and
 * the stage's parts. Returns 0, or nonzero with a diagnostic. */
int cg_emit_stage(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                  const char *banner, const char *tmpl, pd_diag *d);

/* Writes stage s's CUDA source (stage_<k>.cu, pdplan --backend cuda; emit_cuda.c) to o: the
 * same layout as the C stage, device calls to ops_cuda.h, a pdrt_cuda_stage descriptor.
 * precision: the default the stage runs at, 0 fp32, 1 bf16. */
int cg_emit_stage_cuda(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                       const char *banner, const char *tmpl, int precision, pd_diag *d);

#endif
