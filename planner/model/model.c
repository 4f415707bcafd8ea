/* model.c: small helpers of the model IR (op names, element counts, freeing). */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static const char *const op_names[PD_OP_COUNT] = {
    "input", "linear", "conv2d", "relu", "maxpool2d", "avgpool2d",
    "flatten", "dropout", "batchnorm2d", "add", "concat", "embedding", "lstm",
};

int pd_op_planning_only(pd_op_kind op) { return op == PD_OP_EMBEDDING || op == PD_OP_LSTM; }

const char *pd_op_name(pd_op_kind op) {
    if ((int)op < 0 || op >= PD_OP_COUNT) return "?";
    return op_names[op];
}

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
