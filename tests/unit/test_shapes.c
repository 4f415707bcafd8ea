/* test_shapes.c: shape inference, parameter counts and FLOP counts of every op, against values
 * worked out by hand from the formulas in docs/formats.md. */
#include <stdlib.h>
#include <string.h>

#include "planner/ops/shapes.h"
#include "test.h"

/* A model with an input of the given shape and room for n layers after it. */
static pd_model make(int rank, int a, int b, int c, int n) {
    pd_model m;
    memset(&m, 0, sizeof m);
    m.input.rank = rank;
    m.input.dim[0] = a;
    m.input.dim[1] = b;
    m.input.dim[2] = c;
    m.batch = 2;
    m.n_layers = 1;
    m.layers = calloc((size_t)n + 1, sizeof(pd_layer));
    strcpy(m.layers[0].name, "input");
    return m;
}

/* Appends a layer fed by the given inputs (-1 terminated; none: the previous layer). */
static pd_layer *add(pd_model *m, pd_op_kind op, const char *name, int in0, int in1) {
    pd_layer *L = &m->layers[m->n_layers];
    snprintf(L->name, sizeof L->name, "%s", name);
    L->op = op;
    L->line = m->n_layers + 10;
    L->col = 3;
    L->has_bias = 1;
    L->stride[0] = L->stride[1] = 1;
    if (in0 < 0) {
        L->n_inputs = 1;
        L->inputs[0] = m->n_layers - 1;
    } else {
        L->inputs[0] = in0;
        L->n_inputs = 1;
        if (in1 >= 0) {
            L->inputs[1] = in1;
            L->n_inputs = 2;
        }
    }
    m->n_layers++;
    return L;
}

static int infer(pd_model *m, int classes, int *errors_out, char *text, int cap) {
    pd_diag d;
    memset(&d, 0, sizeof d);
    FILE *f = tmpfile();
    d.out = f;
    m->classes = classes;
    int e = pd_infer_shapes(m, "t.yaml", &d);
    rewind(f);
    size_t n = fread(text, 1, (size_t)cap - 1, f);
    text[n] = 0;
    fclose(f);
    *errors_out = d.errors;
    return e;
}

static int shape_is(const pd_shape *s, int rank, int a, int b, int c) {
    if (s->rank != rank || s->dim[0] != a) return 0;
    return rank == 1 || (s->dim[1] == b && s->dim[2] == c);
}

TEST(conv_pool_flatten_linear_chain) {
    pd_model m = make(3, 3, 32, 30, 8);
    pd_layer *c = add(&m, PD_OP_CONV2D, "c", -1, -1);
    c->out_channels = 8;
    c->kernel[0] = 5; c->kernel[1] = 3;
    c->stride[0] = 2; c->stride[1] = 1;
    c->padding[0] = 2; c->padding[1] = 0;
    pd_layer *p = add(&m, PD_OP_MAXPOOL2D, "p", -1, -1);
    p->kernel[0] = p->kernel[1] = 2;
    p->stride[0] = p->stride[1] = 2;
    pd_layer *a = add(&m, PD_OP_AVGPOOL2D, "a", -1, -1);
    a->kernel[0] = a->kernel[1] = 3;
    a->stride[0] = a->stride[1] = 1;
    a->padding[0] = a->padding[1] = 1;
    add(&m, PD_OP_FLATTEN, "f", -1, -1);
    pd_layer *l = add(&m, PD_OP_LINEAR, "l", -1, -1);
    l->out_features = 10;
    char text[2048];
    int errors;
    CHECK_EQ_INT(infer(&m, 10, &errors, text, sizeof text), 0);
    c = &m.layers[1]; p = &m.layers[2]; a = &m.layers[3]; l = &m.layers[5];
    /* conv: H (32 + 4 - 5)/2 + 1 = 16, W (30 - 3)/1 + 1 = 28 */
    CHECK(shape_is(&c->out, 3, 8, 16, 28));
    CHECK_EQ_INT(c->n_weight, 8 * 3 * 5 * 3);
    CHECK_EQ_INT(c->n_bias, 8);
    double macs = 8.0 * 16 * 28 * 3 * 5 * 3;
    CHECK_CLOSE(c->flops_fwd, 2 * macs + 8 * 16 * 28, 0, 1e-12);
    CHECK_CLOSE(c->flops_bwd, 4 * macs + 8 * 16 * 28, 0, 1e-12);
    CHECK(shape_is(&p->out, 3, 8, 8, 14));
    CHECK_CLOSE(p->flops_fwd, 8.0 * 8 * 14 * 4, 0, 1e-12);
    CHECK_CLOSE(p->flops_bwd, 8.0 * 16 * 28, 0, 1e-12);
    CHECK(shape_is(&a->out, 3, 8, 8, 14)); /* 3x3, stride 1, padding 1 keeps the size */
    CHECK(shape_is(&m.layers[4].out, 1, 8 * 8 * 14, 0, 0));
    CHECK(shape_is(&l->out, 1, 10, 0, 0));
    CHECK_EQ_INT(l->n_weight, 10 * 8 * 8 * 14);
    CHECK_EQ_INT(l->n_bias, 10);
    CHECK_CLOSE(l->flops_fwd, 2.0 * 10 * 896 + 10, 0, 1e-12);
    CHECK_CLOSE(l->flops_bwd, 4.0 * 10 * 896 + 10, 0, 1e-12);
    pd_model_free(&m);
}

TEST(batchnorm_relu_dropout_global_pool_add_concat) {
    pd_model m = make(3, 4, 6, 6, 10);
    add(&m, PD_OP_BATCHNORM2D, "bn", -1, -1);           /* 1 */
    add(&m, PD_OP_RELU, "r", -1, -1);                   /* 2 */
    add(&m, PD_OP_DROPOUT, "d", -1, -1)->p = 0.5;       /* 3 */
    add(&m, PD_OP_ADD, "sum", 1, 3);                    /* 4 */
    add(&m, PD_OP_CONCAT, "cat", 4, 0);                 /* 5: (4+4, 6, 6) */
    add(&m, PD_OP_AVGPOOL2D, "gap", -1, -1)->global = 1; /* 6: (8, 1, 1) */
    add(&m, PD_OP_FLATTEN, "f", -1, -1);                /* 7: (8) */
    add(&m, PD_OP_CONCAT, "cat1", 7, 7);                /* 8: (16) */
    char text[2048];
    int errors;
    CHECK_EQ_INT(infer(&m, 16, &errors, text, sizeof text), 0);
    pd_layer *L = m.layers;
    CHECK(shape_is(&L[1].out, 3, 4, 6, 6));
    CHECK_EQ_INT(L[1].n_weight, 4);
    CHECK_EQ_INT(L[1].n_bias, 4);
    CHECK_EQ_INT(L[1].n_buffer, 8);
    CHECK_CLOSE(L[2].flops_fwd, 144, 0, 0);
    CHECK(shape_is(&L[4].out, 3, 4, 6, 6));
    CHECK_CLOSE(L[4].flops_fwd, 144, 0, 0);
    CHECK(shape_is(&L[5].out, 3, 8, 6, 6));
    CHECK(shape_is(&L[6].out, 3, 8, 1, 1));
    CHECK_CLOSE(L[6].flops_fwd, 288, 0, 0);
    CHECK(shape_is(&L[8].out, 1, 16, 0, 0));
    pd_model_free(&m);
}

TEST(shape_errors_name_the_layer_and_skip_dependents) {
    pd_model m = make(3, 2, 5, 5, 8);
    pd_layer *c = add(&m, PD_OP_CONV2D, "big", -1, -1); /* 7x7 kernel on 5x5: does not fit */
    c->out_channels = 2;
    c->kernel[0] = c->kernel[1] = 7;
    add(&m, PD_OP_RELU, "after", -1, -1);                /* fed by the failed layer: skipped */
    add(&m, PD_OP_LINEAR, "lin", 0, -1)->out_features = 3; /* rank-3 input to linear */
    pd_layer *x = add(&m, PD_OP_CONV2D, "x", 0, -1);
    x->out_channels = 3;
    x->kernel[0] = x->kernel[1] = 1;
    add(&m, PD_OP_ADD, "sum", 0, 4);                     /* (2,5,5) + (3,5,5) */
    char text[4096];
    int errors;
    CHECK_EQ_INT(infer(&m, 10, &errors, text, sizeof text), 3);
    CHECK_EQ_INT(errors, 3);
    CHECK(strstr(text, "t.yaml:11:3: error: layer 'big': conv2d: kernel 7x7") != NULL);
    CHECK(strstr(text, "'after'") == NULL);
    CHECK(strstr(text, "t.yaml:13:3: error: layer 'lin': linear needs a rank-1 input") != NULL);
    CHECK(strstr(text, "t.yaml:15:3: error: layer 'sum': add needs inputs of equal shape") !=
          NULL);
    pd_model_free(&m);
}

TEST(output_must_match_classes) {
    pd_model m = make(1, 20, 0, 0, 2);
    add(&m, PD_OP_LINEAR, "fc", -1, -1)->out_features = 5;
    char text[2048];
    int errors;
    CHECK_EQ_INT(infer(&m, 6, &errors, text, sizeof text), 1);
    CHECK(strstr(text, "t.yaml:11:3: error: the model's output") != NULL);
    CHECK_EQ_INT(infer(&m, 5, &errors, text, sizeof text), 0);
    pd_model_free(&m);
}

TEST(op_names_and_numel) {
    CHECK(strcmp(pd_op_name(PD_OP_CONV2D), "conv2d") == 0);
    CHECK(strcmp(pd_op_name(PD_OP_BATCHNORM2D), "batchnorm2d") == 0);
    CHECK(strcmp(pd_op_name(PD_OP_COUNT), "?") == 0);
    pd_shape s = {3, {3, 224, 224}};
    CHECK_EQ_INT(pd_shape_numel(&s), 3 * 224 * 224);
    s.rank = 1;
    CHECK_EQ_INT(pd_shape_numel(&s), 3);
}
