/* model_write.c: a model IR back out as a pd: 1 YAML (pdplan --emit-yaml, which pdimport runs):
 * the header, then the layers. Each layer's attributes are printed by running its op's
 * descriptor `read` over a copy of the layer with a reader that writes instead of reading: the
 * descriptor asks for each of its attributes with a pointer to the layer's field, and the writer
 * prints the field (unless it holds the default), so that no op is described here. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "onnx.h"
#include "planner/ops/op.h"

typedef struct {
    pd_attr_reader r;
    FILE *f;
} writer;

static int w_integer(pd_attr_reader *r, const char *key, int64_t def, int64_t lo, int64_t hi,
                     int *out) {
    (void)lo;
    (void)hi;
    if (def == PD_ATTR_REQUIRED || *out != def) fprintf(((writer *)r)->f, ", %s: %d", key, *out);
    return 0;
}

static int w_pair(pd_attr_reader *r, const char *key, int def, int lo, int out[2]) {
    (void)def;
    (void)lo;
    if (out[0] == out[1]) fprintf(((writer *)r)->f, ", %s: %d", key, out[0]);
    else fprintf(((writer *)r)->f, ", %s: [%d, %d]", key, out[0], out[1]);
    return 0;
}

static int w_flag(pd_attr_reader *r, const char *key, int def, int *out) {
    if (!!*out != !!def) fprintf(((writer *)r)->f, ", %s: %s", key, *out ? "true" : "false");
    return 0;
}

static int w_number(pd_attr_reader *r, const char *key, double def, double lo, double hi,
                    double *out) {
    (void)lo;
    (void)hi;
    if (*out != def) fprintf(((writer *)r)->f, ", %s: %.9g", key, *out);
    return 0;
}

static int w_has(pd_attr_reader *r, const char *key) {
    (void)r;
    (void)key;
    return 1;
}

static void w_error(pd_attr_reader *r, const char *key, const char *fmt, ...) {
    (void)r;
    (void)key;
    (void)fmt;
}

static void write_dataset(FILE *f, const char *ds) {
    char fmt[16], train[256], val[256];
    if (strncmp(ds, "tokens:", 7) || sscanf(ds + 7, "%15[^:]:%255[^:]:%255s", fmt, train, val) != 3) {
        fprintf(f, "dataset: %s\n", ds);
        return;
    }
    fprintf(f, "dataset: {kind: tokens, format: %s, train: %s, val: %s}\n", fmt, train, val);
}

int pd_model_write_yaml(FILE *f, const pd_model *m) {
    static const char *const kinds[] = {"sgd", "adam", "adamw"};
    fprintf(f, "pd: 1\nname: %s\ninput: [", m->name);
    for (int i = 0; i < m->input.rank; i++) fprintf(f, "%s%d", i ? ", " : "", m->input.dim[i]);
    fprintf(f, "]\nclasses: %d\nbatch: %d\n", m->classes, m->batch);
    write_dataset(f, m->dataset);
    fprintf(f, "loss: %s\nepochs: %d\n", m->loss, m->epochs);
    fprintf(f, "optimizer: {kind: %s, lr: %.9g", kinds[m->optimizer], m->lr);
    if (m->optimizer == PD_OPT_SGD) fprintf(f, ", momentum: %.9g", m->momentum);
    else fprintf(f, ", beta1: %.9g, beta2: %.9g, eps: %.9g", m->beta1, m->beta2, m->adam_eps);
    fprintf(f, ", weight_decay: %.9g", m->weight_decay);
    if (m->warmup_iters) fprintf(f, ", warmup_iters: %d", m->warmup_iters);
    if (m->lr_decay_iters)
        fprintf(f, ", lr_decay_iters: %d, min_lr: %.9g", m->lr_decay_iters, m->min_lr);
    if (m->clip_grad_norm > 0) fprintf(f, ", clip_grad_norm: %.9g", m->clip_grad_norm);
    fprintf(f, "}\nlayers:\n");
    for (int i = 1; i < m->n_layers; i++) {
        pd_layer L = m->layers[i];
        const pd_op_desc *op = pd_op(L.op);
        fprintf(f, "  - {name: %s, op: %s", L.name, op->name);
        if (!(L.n_inputs == 1 && L.inputs[0] == i - 1)) {
            fprintf(f, ", inputs: [");
            for (int k = 0; k < L.n_inputs; k++)
                fprintf(f, "%s%s", k ? ", " : "", m->layers[L.inputs[k]].name);
            fprintf(f, "]");
        }
        writer w = {{L.name, w_integer, w_pair, w_flag, w_number, w_has, w_error}, f};
        if (op->read) op->read(&w.r, &L);
        if (L.tie[0]) fprintf(f, ", tie: %s", L.tie);
        fprintf(f, "}\n");
    }
    return ferror(f) ? -1 : 0;
}
