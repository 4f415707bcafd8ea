/* fuzz_util.h: shared helpers of the libFuzzer harnesses for pdplan's readers.
 *
 * The readers take a path, so each input is written to an in-memory file (memfd) and passed as
 * /proc/self/fd/N. Diagnostics go to /dev/null (to stderr when PD_FUZZ_VERBOSE is set). After a
 * reader accepts an input, the check functions verify the invariants the planner relies on and
 * abort() when one is broken, so that a wrong-but-quiet result is a finding too.
 */
#ifndef PD_FUZZ_UTIL_H
#define PD_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "planner/read/cluster.h"
#include "planner/model/costgraph.h"
#include "planner/util/diag.h"
#include "planner/model/model.h"

/* Path of a file holding exactly data[0..size). Valid until the next call. */
const char *pd_fuzz_file(const uint8_t *data, size_t size);

/* A fresh diagnostics sink. */
pd_diag pd_fuzz_diag(void);

/* Invariant checks on accepted inputs (abort on violation). */
void pd_fuzz_check_model(const pd_model *m);
void pd_fuzz_check_costgraph(const pd_costgraph *g);
void pd_fuzz_check_cluster(const pd_cluster *c);

#endif
