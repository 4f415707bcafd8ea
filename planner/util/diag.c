/* diag.c: prints and counts user-input diagnostics (see diag.h). */
#include "diag.h"

#include <stdarg.h>

static void diag_vprint(pd_diag *d, const char *kind, const char *file, int line, int col,
                        const char *fmt, va_list ap) {
    FILE *out = d->out ? d->out : stderr;
    int limit = d->max_errors > 0 ? d->max_errors : 50;
    if (d->errors + d->warnings > limit) return;
    if (d->errors + d->warnings == limit) {
        fprintf(out, "%s: note: too many diagnostics, stopping here\n", file ? file : "pdplan");
        return;
    }
    if (file && line > 0 && col > 0) fprintf(out, "%s:%d:%d: %s: ", file, line, col, kind);
    else if (file && line > 0) fprintf(out, "%s:%d: %s: ", file, line, kind);
    else fprintf(out, "%s: %s: ", file ? file : "pdplan", kind);
    vfprintf(out, fmt, ap);
    fputc('\n', out);
}

void pd_diag_error(pd_diag *d, const char *file, int line, int col, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_vprint(d, "error", file, line, col, fmt, ap);
    va_end(ap);
    d->errors++;
}

void pd_diag_warning(pd_diag *d, const char *file, int line, int col, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_vprint(d, "warning", file, line, col, fmt, ap);
    va_end(ap);
    d->warnings++;
}

int pd_diag_errors(const pd_diag *d) { return d->errors; }
