/* emit.h: prints a generated stage source from a resolved program (resolve.h). */
#ifndef PD_EMIT_H
#define PD_EMIT_H

#include <stdio.h>

#include "model.h"
#include "plan.h"
#include "resolve.h"

/* Writes stage s's C source to o, starting with banner (already filled in). */
void cg_emit_stage(FILE *o, const cg_program *pr, int s, const pd_model *m, const pd_plan *p,
                   const char *banner);

#endif
