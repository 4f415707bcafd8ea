/* codegen.c: placeholder until code generation lands. */
#include "codegen.h"

int pd_codegen(const pd_model *m, const pd_costgraph *g, const pd_plan *p, const char *outdir,
               const pd_codegen_opts *o, pd_diag *d) {
    (void)m; (void)g; (void)p; (void)o;
    pd_diag_error(d, outdir, 0, 0, "code generation is not implemented yet");
    return 1;
}
