/* diag.h: user-input diagnostics, "file:line:col: error: message", collected several at a time.
 *
 * Readers report every problem they can find, then the caller checks pd_diag_errors() and exits
 * with status 2 without writing anything. Lines and columns are 1-based; 0 means unknown and is
 * left out of the message.
 */
#ifndef PD_DIAG_H
#define PD_DIAG_H

#include <stdio.h>

typedef struct {
    FILE *out;      /* where messages go (stderr by default when NULL) */
    int errors;
    int warnings;
    int max_errors; /* stop printing after this many (0 = 50) */
} pd_diag;

#if defined(__GNUC__)
#define PD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PD_PRINTF(a, b)
#endif

void pd_diag_error(pd_diag *d, const char *file, int line, int col, const char *fmt, ...)
    PD_PRINTF(5, 6);
void pd_diag_warning(pd_diag *d, const char *file, int line, int col, const char *fmt, ...)
    PD_PRINTF(5, 6);
int pd_diag_errors(const pd_diag *d);

#endif
