/* model.c: small helpers of the model IR (element counts, freeing); op names and properties are
 * the descriptors' (planner/ops/op.c). */
#include "model.h"

#include <stdlib.h>
#include <string.h>

int64_t pd_shape_numel(const pd_shape *s) {
    if (s->rank == 1) return s->dim[0];
    if (s->rank == 2) return (int64_t)s->dim[0] * s->dim[1];
    if (s->rank == 3) return (int64_t)s->dim[0] * s->dim[1] * s->dim[2];
    return 0;
}

void pd_model_free(pd_model *m) {
    if (!m) return;
    free(m->layers);
    m->layers = NULL;
    m->n_layers = 0;
}
