/* from_yaml.c: a model of our ops as an ONNX inference graph (opset 13), for pdexport of a folder
 * planned from a model YAML. Each layer becomes the node(s) docs/formats.md ("ONNX") lists,
 * reading its input's tensor and writing one named after the layer; its parameters and buffers
 * become initializers <layer>.<param> holding the trained values. linear is Gemm (transB 1),
 * conv2d Conv, batchnorm2d BatchNormalization (ONNX's momentum is 1 - ours), avgpool2d
 * AveragePool (count_include_pad 1) or GlobalAveragePool, flatten Flatten, dropout Identity (an
 * inference graph), add Sum, concat Concat on axis 1. The sequence ops (embedding, layernorm,
 * attention, gelu, lstm) have no ONNX form here yet: refused with the layer's name. */
#include <stdio.h>
#include <string.h>

#include "pdexport.h"
#include "planner/ops/op.h"

typedef struct {
    Onnx__GraphProto *g;
    size_t cap_node, cap_init;
} graph_b;

static Onnx__AttributeProto *attr_ints(const char *name, const int64_t *v, int n) {
    Onnx__AttributeProto *a = pd_arena(sizeof *a);
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = pd_arena_str(name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    a->n_ints = (size_t)n;
    a->ints = pd_arena(sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
    return a;
}

static Onnx__AttributeProto *attr_int(const char *name, int64_t v) {
    Onnx__AttributeProto *a = pd_arena(sizeof *a);
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = pd_arena_str(name);
    a->has_type = a->has_i = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->i = v;
    return a;
}

static Onnx__AttributeProto *attr_float(const char *name, double v) {
    Onnx__AttributeProto *a = pd_arena(sizeof *a);
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = pd_arena_str(name);
    a->has_type = a->has_f = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->f = (float)v;
    return a;
}

static Onnx__NodeProto *add_node(graph_b *b, const char *op, const char *name, const char *out) {
    Onnx__GraphProto *g = b->g;
    if (g->n_node == b->cap_node) {
        size_t cap = b->cap_node ? 2 * b->cap_node : 64;
        Onnx__NodeProto **n = pd_arena(cap * sizeof *n);
        if (g->n_node) memcpy(n, g->node, g->n_node * sizeof *n);
        g->node = n;
        b->cap_node = cap;
    }
    Onnx__NodeProto *nd = pd_arena(sizeof *nd);
    *nd = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    nd->op_type = pd_arena_str(op);
    nd->name = pd_arena_str(name);
    nd->input = pd_arena(sizeof(char *) * (PD_MAX_INPUTS + 8));
    nd->output = pd_arena(sizeof(char *));
    nd->output[0] = pd_arena_str(out);
    nd->n_output = 1;
    nd->attribute = pd_arena(sizeof(Onnx__AttributeProto *) * 8);
    g->node[g->n_node++] = nd;
    return nd;
}

static void add_input(Onnx__NodeProto *nd, const char *name) {
    nd->input[nd->n_input++] = pd_arena_str(name);
}

static void add_attr(Onnx__NodeProto *nd, Onnx__AttributeProto *a) {
    nd->attribute[nd->n_attribute++] = a;
}

/* An initializer <layer>.<param> of the given dims from the trained folder; its name is added
 * to nd's inputs. 1 after a message. */
static int add_init(graph_b *b, Onnx__NodeProto *nd, const char *dir, const pd_layer *L,
                    const char *param, const int64_t *dims, int nd_dims, int64_t n) {
    float *x = pd_read_trained(dir, L->name, param, n);
    if (!x) return 1;
    Onnx__GraphProto *g = b->g;
    if (g->n_initializer == b->cap_init) {
        size_t cap = b->cap_init ? 2 * b->cap_init : 64;
        Onnx__TensorProto **t = pd_arena(cap * sizeof *t);
        if (g->n_initializer) memcpy(t, g->initializer, g->n_initializer * sizeof *t);
        g->initializer = t;
        b->cap_init = cap;
    }
    Onnx__TensorProto *t = pd_arena(sizeof *t);
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    char name[PD_NAME_MAX + 40];
    snprintf(name, sizeof name, "%s.%s", L->name, param);
    t->name = pd_arena_str(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)nd_dims;
    t->dims = pd_arena(sizeof(int64_t) * (size_t)nd_dims);
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)nd_dims);
    t->has_raw_data = 1;
    t->raw_data.data = (uint8_t *)x;
    t->raw_data.len = (size_t)n * 4;
    g->initializer[g->n_initializer++] = t;
    add_input(nd, name);
    return 0;
}

static Onnx__ValueInfoProto *value_info(const char *name, int rank, const int64_t *dims) {
    Onnx__ValueInfoProto *v = pd_arena(sizeof *v);
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = pd_arena_str(name);
    Onnx__TypeProto *t = pd_arena(sizeof *t);
    *t = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor *tt = pd_arena(sizeof *tt);
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    Onnx__TensorShapeProto *s = pd_arena(sizeof *s);
    *s = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    s->n_dim = (size_t)rank;
    s->dim = pd_arena(sizeof *s->dim * (size_t)rank);
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = pd_arena(sizeof *d);
        *d = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (i == 0) { /* any batch */
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = pd_arena_str("batch");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        s->dim[i] = d;
    }
    tt->shape = s;
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    return v;
}

/* The node(s) of layer i; 1 after a message. */
static int layer_nodes(graph_b *b, const pd_model *m, int i, const char *dir) {
    const pd_layer *L = &m->layers[i];
    const pd_shape *x = &m->layers[L->inputs[0]].out;
    const char *in0 = m->layers[L->inputs[0]].name;
    int64_t k[2] = {L->kernel[0], L->kernel[1]}, s[2] = {L->stride[0], L->stride[1]};
    int64_t p[4] = {L->padding[0], L->padding[1], L->padding[0], L->padding[1]};
    Onnx__NodeProto *nd;
    switch (L->op) {
    case PD_OP_LINEAR: {
        if (x->rank != 1) break;
        nd = add_node(b, "Gemm", L->name, L->name);
        add_input(nd, in0);
        int64_t dw[2] = {L->out_features, x->dim[0]}, db[1] = {L->out_features};
        add_attr(nd, attr_int("transB", 1));
        return add_init(b, nd, dir, L, "weight", dw, 2, L->n_weight) ||
               (L->has_bias && add_init(b, nd, dir, L, "bias", db, 1, L->n_bias));
    }
    case PD_OP_CONV2D: {
        nd = add_node(b, "Conv", L->name, L->name);
        add_input(nd, in0);
        int64_t dw[4] = {L->out_channels, x->dim[0], k[0], k[1]}, db[1] = {L->out_channels};
        add_attr(nd, attr_ints("kernel_shape", k, 2));
        add_attr(nd, attr_ints("strides", s, 2));
        add_attr(nd, attr_ints("pads", p, 4));
        return add_init(b, nd, dir, L, "weight", dw, 4, L->n_weight) ||
               (L->has_bias && add_init(b, nd, dir, L, "bias", db, 1, L->n_bias));
    }
    case PD_OP_BATCHNORM2D: {
        nd = add_node(b, "BatchNormalization", L->name, L->name);
        add_input(nd, in0);
        add_attr(nd, attr_float("epsilon", L->eps));
        add_attr(nd, attr_float("momentum", 1.0 - L->momentum));
        int64_t C[1] = {x->dim[0]};
        static const char *const param[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int j = 0; j < 4; j++)
            if (add_init(b, nd, dir, L, param[j], C, 1, C[0])) return 1;
        return 0;
    }
    case PD_OP_RELU:
        add_input(add_node(b, "Relu", L->name, L->name), in0);
        return 0;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        if (L->global) {
            add_input(add_node(b, "GlobalAveragePool", L->name, L->name), in0);
            return 0;
        }
        nd = add_node(b, L->op == PD_OP_MAXPOOL2D ? "MaxPool" : "AveragePool", L->name, L->name);
        add_input(nd, in0);
        add_attr(nd, attr_ints("kernel_shape", k, 2));
        add_attr(nd, attr_ints("strides", s, 2));
        add_attr(nd, attr_ints("pads", p, 4));
        if (L->op == PD_OP_AVGPOOL2D) add_attr(nd, attr_int("count_include_pad", 1));
        return 0;
    case PD_OP_FLATTEN:
        nd = add_node(b, "Flatten", L->name, L->name);
        add_input(nd, in0);
        add_attr(nd, attr_int("axis", 1));
        return 0;
    case PD_OP_DROPOUT:
        add_input(add_node(b, "Identity", L->name, L->name), in0);
        return 0;
    case PD_OP_ADD:
    case PD_OP_CONCAT:
        if (x->rank == 2) break;
        nd = add_node(b, L->op == PD_OP_ADD ? "Sum" : "Concat", L->name, L->name);
        for (int j = 0; j < L->n_inputs; j++) add_input(nd, m->layers[L->inputs[j]].name);
        if (L->op == PD_OP_CONCAT) add_attr(nd, attr_int("axis", 1));
        return 0;
    default: break;
    }
    fprintf(stderr, "pdexport: layer '%s': op %s%s has no ONNX form in pdexport yet\n", L->name,
            pd_op_name(L->op), x->rank == 2 ? " on a sequence" : "");
    return 1;
}

Onnx__ModelProto *pd_onnx_from_model(const pd_model *m, const char *dir) {
    graph_b b = {0};
    Onnx__GraphProto *g = pd_arena(sizeof *g);
    *g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    b.g = g;
    g->name = pd_arena_str(m->name);
    int64_t dims[4] = {0, m->input.dim[0], m->input.dim[1], m->input.dim[2]};
    if (m->input.rank != 1 && m->input.rank != 3) {
        fprintf(stderr, "pdexport: a %d-dimensional input has no ONNX form here yet\n",
                m->input.rank);
        return NULL;
    }
    g->n_input = 1;
    g->input = pd_arena(sizeof *g->input);
    g->input[0] = value_info("input", m->input.rank + 1, dims);
    for (int i = 1; i < m->n_layers; i++)
        if (layer_nodes(&b, m, i, dir)) return NULL;
    int64_t od[2] = {0, m->classes};
    g->n_output = 1;
    g->output = pd_arena(sizeof *g->output);
    g->output[0] = value_info(m->layers[m->n_layers - 1].name, 2, od);
    Onnx__ModelProto *mp = pd_arena(sizeof *mp);
    *mp = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    mp->has_ir_version = 1;
    mp->ir_version = 7;
    mp->producer_name = pd_arena_str("pdexport (PipeDream-C)");
    Onnx__OperatorSetIdProto *op = pd_arena(sizeof *op);
    *op = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    op->domain = pd_arena_str("");
    op->has_version = 1;
    op->version = 13;
    mp->n_opset_import = 1;
    mp->opset_import = pd_arena(sizeof *mp->opset_import);
    mp->opset_import[0] = op;
    mp->graph = g;
    return mp;
}
