/* codegen.h: emits the generated folder for a planned model: one stage_<k>.c (or .cu) per stage,
 * the per-rank schedule, a Makefile and the launch configuration. Output is byte-identical for
 * identical inputs. */
#ifndef PD_CODEGEN_H
#define PD_CODEGEN_H

#include "planner/model/costgraph.h"
#include "planner/util/diag.h"
#include "planner/model/model.h"
#include "planner/plan/plan.h"

typedef struct {
    const char *backend;      /* "cpu" (default) or "cuda" */
    const char *command_line; /* for the banner */
    const char *root;         /* absolute path of the PipeDream-C checkout (runtime, scripts) */
    const char *precision;    /* cuda: the stages' default precision, "fp32" (NULL) or "bf16" */
} pd_codegen_opts;

/* Whether code generation can emit the plan (cg_resolve's checks: at most CG_MAX_STAGES stages,
 * contiguous replica ranks, ...): 0, or nonzero with diagnostics. pdplan asks before it writes
 * anything, so that a plan the generator refuses leaves no folder behind. */
int pd_codegen_check(const pd_model *m, const pd_plan *p, const pd_codegen_opts *o, pd_diag *d);

/* Writes into outdir (which exists and already holds plan.yaml). Returns 0 on success. */
int pd_codegen(const pd_model *m, const pd_costgraph *g, const pd_plan *p, const char *outdir,
               const pd_codegen_opts *o, pd_diag *d);

#endif
