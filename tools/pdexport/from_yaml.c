/* from_yaml.c: a model of our ops as an ONNX inference graph (opset 17), for pdexport of a folder
 * planned from a model YAML, and the graph builder (nodes, attributes, initializers) that
 * from_yaml_seq.c shares. Each layer becomes the node(s) docs/formats.md ("ONNX") lists, reading
 * its input's tensor and writing one named after the layer; its parameters and buffers become
 * initializers <layer>.<param> holding the trained values (a tied weight: its owner's). linear
 * is Gemm (transB 1), conv2d Conv, batchnorm2d BatchNormalization (ONNX's momentum is 1 -
 * ours), avgpool2d AveragePool (count_include_pad 1) or GlobalAveragePool, flatten Flatten,
 * dropout Identity (an inference graph), add Add (Sum of more than two), concat Concat on
 * axis 1. A token model's input is int64 ids [N, T]. The sequence ops are from_yaml_seq.c's;
 * lstm and two-input attention have no ONNX form here: refused with the layer's name. */
#include <stdio.h>
#include <string.h>

#include "pdexport.h"
#include "planner/ops/op.h"

static Onnx__AttributeProto *new_attr(const char *name, Onnx__AttributeProto__AttributeType t) {
    Onnx__AttributeProto *a = pd_arena(sizeof *a);
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = pd_arena_str(name);
    a->has_type = 1;
    a->type = t;
    return a;
}

static void add_attr(Onnx__NodeProto *nd, Onnx__AttributeProto *a) {
    nd->attribute[nd->n_attribute++] = a;
}

void pdx_attr_ints(Onnx__NodeProto *nd, const char *name, const int64_t *v, int n) {
    Onnx__AttributeProto *a = new_attr(name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = pd_arena(sizeof(int64_t) * (size_t)(n ? n : 1));
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
    add_attr(nd, a);
}

void pdx_attr_int(Onnx__NodeProto *nd, const char *name, int64_t v) {
    Onnx__AttributeProto *a = new_attr(name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
    add_attr(nd, a);
}

void pdx_attr_float(Onnx__NodeProto *nd, const char *name, double v) {
    Onnx__AttributeProto *a = new_attr(name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = (float)v;
    add_attr(nd, a);
}

/* arr (n of elem bytes each, room for *cap) with room for one more: full, a copy twice as large
 * (at least 64) in the arena */
static void *arena_grow(void *arr, size_t n, size_t *cap, size_t elem) {
    if (n < *cap) return arr;
    size_t c = *cap ? 2 * *cap : 64;
    void *grown = pd_arena(c * elem);
    if (n) memcpy(grown, arr, n * elem);
    *cap = c;
    return grown;
}

Onnx__NodeProto *pdx_node(pdx_graph *b, const char *op, const char *name, const char *out) {
    Onnx__GraphProto *g = b->g;
    g->node = arena_grow(g->node, g->n_node, &b->cap_node, sizeof *g->node);
    Onnx__NodeProto *nd = pd_arena(sizeof *nd);
    *nd = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    nd->op_type = pd_arena_str(op);
    nd->name = pd_arena_str(name);
    nd->input = pd_arena(sizeof(char *) * (PD_MAX_INPUTS + 8));
    nd->output = pd_arena(sizeof(char *) * 3);
    nd->output[0] = pd_arena_str(out);
    nd->n_output = 1;
    nd->attribute = pd_arena(sizeof(Onnx__AttributeProto *) * 8);
    g->node[g->n_node++] = nd;
    return nd;
}

void pdx_input(Onnx__NodeProto *nd, const char *name) {
    nd->input[nd->n_input++] = pd_arena_str(name);
}

static Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name)) return g->initializer[i];
    return NULL;
}

/* A new initializer named name holding bytes (not copied) of the given type and dims. */
static void add_tensor(pdx_graph *b, const char *name, int type, const int64_t *dims, int rank,
                       void *bytes, size_t len) {
    Onnx__GraphProto *g = b->g;
    g->initializer = arena_grow(g->initializer, g->n_initializer, &b->cap_init,
                                sizeof *g->initializer);
    Onnx__TensorProto *t = pd_arena(sizeof *t);
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = pd_arena_str(name);
    t->has_data_type = 1;
    t->data_type = type;
    t->n_dims = (size_t)rank;
    t->dims = pd_arena(sizeof(int64_t) * (size_t)(rank ? rank : 1));
    if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->has_raw_data = 1;
    t->raw_data.data = bytes;
    t->raw_data.len = len;
    g->initializer[g->n_initializer++] = t;
}

int pdx_trained(pdx_graph *b, Onnx__NodeProto *nd, const pd_model *m, const pd_layer *L,
                const char *param, const int64_t *dims, int rank, int64_t n) {
    const char *owner = L->tied_to > 0 && !strcmp(param, "weight") ? m->layers[L->tied_to].name
                                                                   : L->name;
    char name[PD_NAME_MAX + 40];
    snprintf(name, sizeof name, "%s.%s", owner, param);
    if (b->dir && !find_init(b->g, name)) {
        float *x = pd_read_trained(b->dir, owner, param, n);
        if (!x) return 1;
        add_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, rank, x, (size_t)n * 4);
    }
    pdx_input(nd, name);
    return 0;
}

static const char *add_const(pdx_graph *b, const char *name, int type, size_t w,
                             const int64_t *dims, int rank, const void *v) {
    if (find_init(b->g, name)) return name;
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    void *x = pd_arena(n * w);
    memcpy(x, v, n * w);
    add_tensor(b, name, type, dims, rank, x, n * w);
    return name;
}

const char *pdx_const_f(pdx_graph *b, const char *name, const int64_t *dims, int rank,
                        const float *v) {
    return add_const(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, dims, rank, v);
}

const char *pdx_const_i(pdx_graph *b, const char *name, const int64_t *dims, int rank,
                        const int64_t *v) {
    return add_const(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 8, dims, rank, v);
}

/* A graph input or output: elem_type of [batch, dims[1..rank-1]] */
static Onnx__ValueInfoProto *value_info(const char *name, int elem_type, int rank,
                                        const int64_t *dims) {
    Onnx__ValueInfoProto *v = pd_arena(sizeof *v);
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = pd_arena_str(name);
    Onnx__TypeProto *t = pd_arena(sizeof *t);
    *t = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    Onnx__TypeProto__Tensor *tt = pd_arena(sizeof *tt);
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = 1;
    tt->elem_type = elem_type;
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
static int layer_nodes(pdx_graph *b, const pd_model *m, int i) {
    const pd_layer *L = &m->layers[i];
    const pd_shape *x = &m->layers[L->inputs[0]].out;
    const char *in0 = m->layers[L->inputs[0]].name;
    int64_t k[2] = {L->kernel[0], L->kernel[1]}, s[2] = {L->stride[0], L->stride[1]};
    int64_t p[4] = {L->padding[0], L->padding[1], L->padding[0], L->padding[1]};
    Onnx__NodeProto *nd;
    int e = pdx_seq_layer(b, m, i);
    if (e >= 0) return e;
    switch (L->op) {
    case PD_OP_LINEAR: {
        if (x->rank != 1) break;
        nd = pdx_node(b, "Gemm", L->name, L->name);
        pdx_input(nd, in0);
        int64_t dw[2] = {L->out_features, x->dim[0]}, db[1] = {L->out_features};
        pdx_attr_int(nd, "transB", 1);
        return pdx_trained(b, nd, m, L, "weight", dw, 2, L->n_weight) ||
               (L->has_bias && pdx_trained(b, nd, m, L, "bias", db, 1, L->n_bias));
    }
    case PD_OP_CONV2D: {
        nd = pdx_node(b, "Conv", L->name, L->name);
        pdx_input(nd, in0);
        int64_t dw[4] = {L->out_channels, x->dim[0], k[0], k[1]}, db[1] = {L->out_channels};
        pdx_attr_ints(nd, "kernel_shape", k, 2);
        pdx_attr_ints(nd, "strides", s, 2);
        pdx_attr_ints(nd, "pads", p, 4);
        return pdx_trained(b, nd, m, L, "weight", dw, 4, L->n_weight) ||
               (L->has_bias && pdx_trained(b, nd, m, L, "bias", db, 1, L->n_bias));
    }
    case PD_OP_BATCHNORM2D: {
        nd = pdx_node(b, "BatchNormalization", L->name, L->name);
        pdx_input(nd, in0);
        pdx_attr_float(nd, "epsilon", L->eps);
        pdx_attr_float(nd, "momentum", 1.0 - L->momentum);
        int64_t C[1] = {x->dim[0]};
        static const char *const param[4] = {"weight", "bias", "running_mean", "running_var"};
        for (int j = 0; j < 4; j++)
            if (pdx_trained(b, nd, m, L, param[j], C, 1, C[0])) return 1;
        return 0;
    }
    case PD_OP_RELU:
        pdx_input(pdx_node(b, "Relu", L->name, L->name), in0);
        return 0;
    case PD_OP_MAXPOOL2D:
    case PD_OP_AVGPOOL2D:
        if (L->global) {
            pdx_input(pdx_node(b, "GlobalAveragePool", L->name, L->name), in0);
            return 0;
        }
        nd = pdx_node(b, L->op == PD_OP_MAXPOOL2D ? "MaxPool" : "AveragePool", L->name, L->name);
        pdx_input(nd, in0);
        pdx_attr_ints(nd, "kernel_shape", k, 2);
        pdx_attr_ints(nd, "strides", s, 2);
        pdx_attr_ints(nd, "pads", p, 4);
        if (L->op == PD_OP_AVGPOOL2D) pdx_attr_int(nd, "count_include_pad", 1);
        return 0;
    case PD_OP_FLATTEN:
        nd = pdx_node(b, "Flatten", L->name, L->name);
        pdx_input(nd, in0);
        pdx_attr_int(nd, "axis", 1);
        return 0;
    case PD_OP_DROPOUT:
        pdx_input(pdx_node(b, "Identity", L->name, L->name), in0);
        return 0;
    case PD_OP_ADD:
    case PD_OP_CONCAT:
        nd = pdx_node(b, L->op == PD_OP_CONCAT ? "Concat" : L->n_inputs == 2 ? "Add" : "Sum",
                      L->name, L->name);
        for (int j = 0; j < L->n_inputs; j++) pdx_input(nd, m->layers[L->inputs[j]].name);
        if (L->op == PD_OP_CONCAT) pdx_attr_int(nd, "axis", 1);
        return 0;
    default: break;
    }
    fprintf(stderr, "pdexport: layer '%s': op %s%s has no ONNX form in pdexport yet\n", L->name,
            pd_op_name(L->op), x->rank == 2 ? " on a sequence" : "");
    return 1;
}

/* A token model: a rank-1 input (T) read by embeddings. 1 when it is, 0 when not, -1 after a
 * message (token ids read by something else as well). */
static int token_input(const pd_model *m) {
    int emb = 0, other = -1;
    for (int i = 1; i < m->n_layers; i++)
        for (int j = 0; j < m->layers[i].n_inputs; j++)
            if (m->layers[i].inputs[j] == 0) {
                if (m->layers[i].op == PD_OP_EMBEDDING) emb = 1;
                else if (other < 0) other = i;
            }
    if (!emb || m->input.rank != 1) return 0;
    if (other < 0) return 1;
    fprintf(stderr, "pdexport: layer '%s': reads the token ids as floats, which an ONNX graph of "
            "int64 ids cannot express; only embeddings may read them\n", m->layers[other].name);
    return -1;
}

/* The graph of m; with dir NULL a dry run that reads no weights and reports every layer
 * without an ONNX form (NULL then, after the messages), else the graph with the trained
 * tensors. */
static Onnx__GraphProto *build(const pd_model *m, const char *dir) {
    pdx_graph b = {0};
    Onnx__GraphProto *g = pd_arena(sizeof *g);
    *g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    b.g = g;
    b.dir = dir;
    g->name = pd_arena_str(m->name);
    int tokens = token_input(m);
    if (tokens < 0) return NULL;
    int64_t dims[4] = {0, m->input.dim[0], m->input.dim[1], m->input.dim[2]};
    if (m->input.rank < 1 || m->input.rank > 3) {
        fprintf(stderr, "pdexport: a %d-dimensional input has no ONNX form here\n",
                m->input.rank);
        return NULL;
    }
    g->n_input = 1;
    g->input = pd_arena(sizeof *g->input);
    g->input[0] = value_info("input", tokens ? ONNX__TENSOR_PROTO__DATA_TYPE__INT64
                                             : ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                             m->input.rank + 1, dims);
    int e = 0;
    for (int i = 1; i < m->n_layers && (!dir || !e); i++) e += layer_nodes(&b, m, i);
    if (e) return NULL;
    const pd_layer *last = &m->layers[m->n_layers - 1];
    int64_t od[4] = {0, last->out.dim[0], last->out.dim[1], last->out.dim[2]};
    g->n_output = 1;
    g->output = pd_arena(sizeof *g->output);
    g->output[0] = value_info(last->name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
                              last->out.rank + 1, od);
    return g;
}

Onnx__ModelProto *pd_onnx_from_model(const pd_model *m, const char *dir) {
    Onnx__GraphProto *g = build(m, NULL) ? build(m, dir) : NULL;
    if (!g) return NULL;
    Onnx__ModelProto *mp = pd_arena(sizeof *mp);
    *mp = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    mp->has_ir_version = 1;
    mp->ir_version = 8; /* opset 17's */
    mp->producer_name = pd_arena_str("pdexport (PipeDream-C)");
    Onnx__OperatorSetIdProto *op = pd_arena(sizeof *op);
    *op = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    op->domain = pd_arena_str("");
    op->has_version = 1;
    op->version = 17;
    mp->n_opset_import = 1;
    mp->opset_import = pd_arena(sizeof *mp->opset_import);
    mp->opset_import[0] = op;
    mp->graph = g;
    return mp;
}
