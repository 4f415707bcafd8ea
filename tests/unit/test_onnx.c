/* test_onnx.c: the ONNX reader (planner/read/onnx.c, onnx_nodes.c) on models built here with
 * protobuf-c, for the mappings torch's CNN exports do not exercise: MatMul then Add of a
 * constant as one linear (weight transposed), Gemm with transB 0, a Pad folded into the Conv
 * after it, Concat, Reshape to [N, -1], Identity; and the refusals, each naming the node by
 * index, name and op type (asymmetric pads, grouped convolution, Gemm with alpha, a Pad before a
 * MaxPool, two inputs, another domain); of the transformer patterns (onnx_seq.c), token ids
 * into an embedding with positions, LayerNormalization, the GELU formula with its factors in
 * another order than torch's nn.GELU, a linear as MatMul by a transposed weight, and their
 * refusals. tests/cli/test_onnx.sh covers torch's exports (the attention subgraph among them). */
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "planner/read/onnx.h"
#include "test.h"

/* ---- building a model ---- */

typedef struct {
    Onnx__ModelProto m;
    Onnx__GraphProto g;
    Onnx__OperatorSetIdProto op;
    Onnx__OperatorSetIdProto *ops[1];
    Onnx__NodeProto node[16], *nodes[16];
    Onnx__TensorProto init[16], *inits[16];
    Onnx__AttributeProto attr[32];
    int n_attr;
    Onnx__ValueInfoProto in[2], out, *ins[2], *outs[1];
    Onnx__TypeProto type[3];
    Onnx__TypeProto__Tensor tt[3];
    Onnx__TensorShapeProto shape[3];
    Onnx__TensorShapeProto__Dimension dim[3][4], *dims[3][4];
    char *node_in[16][6], *node_out[16][1];
    Onnx__AttributeProto *node_attr[16][4];
    int64_t int_store[16][8], dim_store[16][4];
} builder;

static void value(builder *b, int k, Onnx__ValueInfoProto *v, const char *name, int rank,
                  const int64_t *d) {
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = (char *)name;
    b->type[k] = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    b->tt[k] = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    b->shape[k] = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    for (int i = 0; i < rank; i++) {
        b->dim[k][i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        b->dim[k][i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        b->dim[k][i].dim_value = d[i];
        b->dims[k][i] = &b->dim[k][i];
    }
    b->shape[k].n_dim = (size_t)rank;
    b->shape[k].dim = b->dims[k];
    b->tt[k].has_elem_type = 1;
    b->tt[k].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    b->tt[k].shape = &b->shape[k];
    b->type[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->type[k].tensor_type = &b->tt[k];
    v->type = &b->type[k];
}

static void begin(builder *b, int rank, const int64_t *in_dims, const char *out, int k) {
    memset(b, 0, sizeof *b);
    b->m = (Onnx__ModelProto)ONNX__MODEL_PROTO__INIT;
    b->g = (Onnx__GraphProto)ONNX__GRAPH_PROTO__INIT;
    b->op = (Onnx__OperatorSetIdProto)ONNX__OPERATOR_SET_ID_PROTO__INIT;
    b->op.domain = "";
    b->op.has_version = 1;
    b->op.version = 13;
    b->ops[0] = &b->op;
    b->m.n_opset_import = 1;
    b->m.opset_import = b->ops;
    b->m.graph = &b->g;
    value(b, 0, &b->in[0], "x", rank, in_dims);
    b->ins[0] = &b->in[0];
    b->g.n_input = 1;
    b->g.input = b->ins;
    int64_t od[2] = {in_dims[0], k};
    value(b, 2, &b->out, out, 2, od);
    b->outs[0] = &b->out;
    b->g.n_output = 1;
    b->g.output = b->outs;
    b->g.node = b->nodes;
    b->g.initializer = b->inits;
}

/* A float initializer of the given dims, element i = base + i / 8. */
static void init(builder *b, const char *name, int rank, const int64_t *d, float base) {
    int k = (int)b->g.n_initializer++;
    Onnx__TensorProto *t = &b->init[k];
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= d[i];
    memcpy(b->dim_store[k], d, sizeof(int64_t) * (size_t)rank);
    t->n_dims = (size_t)rank;
    t->dims = b->dim_store[k];
    t->n_float_data = (size_t)n;
    t->float_data = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) t->float_data[i] = base + (float)i / 8;
    b->inits[k] = t;
}

/* An int64 initializer (Pad's pads, Reshape's shape). */
static void init_ints(builder *b, const char *name, int n, const int64_t *v) {
    int k = (int)b->g.n_initializer++;
    Onnx__TensorProto *t = &b->init[k];
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    b->dim_store[k][0] = n;
    t->n_dims = 1;
    t->dims = b->dim_store[k];
    t->n_int64_data = (size_t)n;
    t->int64_data = b->int_store[k];
    memcpy(b->int_store[k], v, sizeof(int64_t) * (size_t)n);
    b->inits[k] = t;
}

/* A node: inputs NULL-terminated; attributes added with ints()/num() after. */
static Onnx__NodeProto *node(builder *b, const char *op, const char *name, const char *out,
                             const char *const *in) {
    int k = (int)b->g.n_node++;
    Onnx__NodeProto *nd = &b->node[k];
    *nd = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    nd->op_type = (char *)op;
    nd->name = (char *)name;
    while (in[nd->n_input]) {
        b->node_in[k][nd->n_input] = (char *)in[nd->n_input];
        nd->n_input++;
    }
    nd->input = b->node_in[k];
    b->node_out[k][0] = (char *)out;
    nd->output = b->node_out[k];
    nd->n_output = 1;
    nd->attribute = b->node_attr[k];
    b->nodes[k] = nd;
    return nd;
}

static void ints(builder *b, Onnx__NodeProto *nd, const char *name, int n, const int64_t *v) {
    Onnx__AttributeProto *a = &b->attr[b->n_attr];
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = 1;
    a->type = n == 1 ? ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
                     : ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    if (n == 1) {
        a->has_i = 1;
        a->i = v[0];
    } else {
        a->n_ints = (size_t)n;
        a->ints = b->int_store[8 + b->n_attr % 8];
        memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
    }
    b->n_attr++;
    nd->attribute[nd->n_attribute++] = a;
}

static void num(builder *b, Onnx__NodeProto *nd, const char *name, float v) {
    Onnx__AttributeProto *a = &b->attr[b->n_attr++];
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = (char *)name;
    a->has_type = a->has_f = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
    a->f = v;
    nd->attribute[nd->n_attribute++] = a;
}

/* Packs the model and reads it; diagnostics into text. Returns pd_onnx_load_bytes's status. */
static int load(builder *b, pd_model *m, pd_onnx_weights *w, char *text, size_t cap) {
    size_t n = onnx__model_proto__get_packed_size(&b->m);
    uint8_t *buf = malloc(n + 1);
    onnx__model_proto__pack(&b->m, buf);
    for (size_t i = 0; i < b->g.n_initializer; i++) free(b->init[i].float_data);
    FILE *f = tmpfile();
    pd_diag d = {.out = f};
    int rc = pd_onnx_load_bytes("t.onnx", buf, n, m, w, &d);
    fflush(f);
    rewind(f);
    size_t got = fread(text, 1, cap - 1, f);
    text[got] = '\0';
    fclose(f);
    free(buf);
    return rc;
}

static const pd_onnx_tensor *weight(const pd_onnx_weights *w, const char *layer, const char *p) {
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].layer, layer) && !strcmp(w->t[i].param, p)) return &w->t[i];
    return NULL;
}

#define IN(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- what maps ---- */

TEST(matmul_then_add_is_one_linear_with_its_weight_transposed) {
    builder b;
    pd_model m;
    pd_onnx_weights w;
    char text[4096];
    begin(&b, 2, (int64_t[]){4, 3}, "y", 2);
    init(&b, "fc.weight_t", 2, (int64_t[]){3, 2}, 1); /* [in][out] */
    init(&b, "fc.bias", 1, (int64_t[]){2}, -1);
    node(&b, "MatMul", "/fc/MatMul", "h", IN("x", "fc.weight_t"));
    node(&b, "Add", "/fc/Add", "y", IN("h", "fc.bias"));
    CHECK_EQ_INT(load(&b, &m, &w, text, sizeof text), 0);
    if (test_failed_now()) return (void)printf("%s", text);
    CHECK_EQ_INT(m.n_layers, 2);
    CHECK(m.layers[1].op == PD_OP_LINEAR && m.layers[1].has_bias);
    CHECK_EQ_INT(m.layers[1].out_features, 2);
    CHECK_EQ_INT(m.batch, 4);
    CHECK_EQ_INT(m.classes, 2);
    CHECK(!strcmp(m.dataset, "synthetic") && m.momentum == 0.9 && m.lr == 0.01);
    const pd_onnx_tensor *W = weight(&w, m.layers[1].name, "weight");
    CHECK(W && W->transpose && W->rows == 3 && W->cols == 2 && W->n == 6);
    for (int o = 0; W && o < 2; o++) /* ours [out][in] = file [in][out] transposed */
        for (int i = 0; i < 3; i++) CHECK(W->data[o * 3 + i] == 1 + (float)(i * 2 + o) / 8);
    CHECK(weight(&w, m.layers[1].name, "bias") != NULL);
    pd_model_free(&m);
    pd_onnx_weights_free(&w);
}

TEST(pad_folds_into_conv_concat_reshape_and_gemm_transb0) {
    builder b;
    pd_model m;
    pd_onnx_weights w;
    char text[4096];
    begin(&b, 4, (int64_t[]){2, 1, 5, 5}, "y", 3);
    init_ints(&b, "pads", 8, (int64_t[]){0, 0, 1, 1, 0, 0, 1, 1});
    init(&b, "a.weight", 4, (int64_t[]){2, 1, 3, 3}, 0);
    init(&b, "c.weight", 4, (int64_t[]){2, 1, 3, 3}, 0);
    init_ints(&b, "shape", 2, (int64_t[]){0, -1});
    init(&b, "fc.weight", 2, (int64_t[]){100, 3}, 0);
    node(&b, "Pad", "/a/Pad", "p", IN("x", "pads"));
    ints(&b, node(&b, "Conv", "/a/Conv", "a", IN("p", "a.weight")), "kernel_shape", 2,
         (int64_t[]){3, 3});
    node(&b, "Relu", "/r/Relu", "r", IN("a"));
    Onnx__NodeProto *c = node(&b, "Conv", "/c/Conv", "c", IN("x", "c.weight"));
    ints(&b, c, "pads", 4, (int64_t[]){1, 1, 1, 1});
    node(&b, "Identity", "/id", "ci", IN("c"));
    ints(&b, node(&b, "Concat", "/cat/Concat", "cat", IN("r", "ci")), "axis", 1, (int64_t[]){1});
    node(&b, "Reshape", "/Reshape", "flat", IN("cat", "shape"));
    node(&b, "Gemm", "/fc/Gemm", "y", IN("flat", "fc.weight"));
    CHECK_EQ_INT(load(&b, &m, &w, text, sizeof text), 0);
    if (test_failed_now()) return (void)printf("%s", text);
    CHECK_EQ_INT(m.n_layers, 7); /* input a r c cat flat fc */
    CHECK(!strcmp(m.layers[1].name, "a") && m.layers[1].padding[0] == 1 &&
          m.layers[1].padding[1] == 1 && !m.layers[1].has_bias);
    CHECK(m.layers[3].op == PD_OP_CONV2D && m.layers[3].inputs[0] == 0);
    CHECK(m.layers[4].op == PD_OP_CONCAT && m.layers[4].n_inputs == 2 &&
          m.layers[4].inputs[0] == 2 && m.layers[4].inputs[1] == 3);
    CHECK(m.layers[5].op == PD_OP_FLATTEN && m.layers[5].out.dim[0] == 100);
    CHECK(m.layers[6].op == PD_OP_LINEAR && !m.layers[6].has_bias);
    const pd_onnx_tensor *W = weight(&w, "fc", "weight");
    CHECK(W && W->transpose && W->rows == 100 && W->cols == 3);
    pd_model_free(&m);
    pd_onnx_weights_free(&w);
}

static void refused(builder *b, const char *want);

/* A language model's start: int64 ids [4, 3] -> embedding (V 5, C 2) + positions; then the
 * nodes the test adds. */
static void begin_tokens(builder *b, int64_t V) {
    begin(b, 2, (int64_t[]){4, 3}, "y", 0);
    b->tt[0].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    int64_t od[3] = {4, 3, V};
    value(b, 2, &b->out, "y", 3, od);
    init(b, "wte.weight", 2, (int64_t[]){V, 2}, 0);
    init(b, "wpe.weight", 2, (int64_t[]){3, 2}, 1);
    init_ints(b, "pos", 3, (int64_t[]){0, 1, 2});
    node(b, "Gather", "/wte/Gather", "e", IN("wte.weight", "x"));
    node(b, "Gather", "/wpe/Gather", "p", IN("wpe.weight", "pos"));
    node(b, "Add", "/Add", "h", IN("p", "e"));
}

/* 0.5 x (1 + tanh(0.7978845608 (x + 0.044715 x^3))) of "a" into out, as x 0.5 first */
static void gelu_formula(builder *b, float c3) {
    int64_t none[1] = {0};
    init(b, "three", 0, none, 3);
    init(b, "c3", 0, none, c3);
    init(b, "k", 0, none, 0.7978845608f);
    init(b, "one", 0, none, 1);
    init(b, "half", 0, none, 0.5f);
    node(b, "Mul", "/mlp/Mul", "g0", IN("a", "half"));
    node(b, "Pow", "/mlp/Pow", "g1", IN("a", "three"));
    node(b, "Mul", "/mlp/Mul_1", "g2", IN("g1", "c3"));
    node(b, "Add", "/mlp/Add", "g3", IN("a", "g2"));
    node(b, "Mul", "/mlp/Mul_2", "g4", IN("g3", "k"));
    node(b, "Tanh", "/mlp/Tanh", "g5", IN("g4"));
    node(b, "Add", "/mlp/Add_1", "g6", IN("g5", "one"));
    node(b, "Mul", "/mlp/Mul_3", "g", IN("g0", "g6"));
}

TEST(token_ids_embedding_positions_layernormalization_gelu_and_linear) {
    builder b;
    pd_model m;
    pd_onnx_weights w;
    char text[4096];
    begin_tokens(&b, 5);
    init(&b, "ln.weight", 1, (int64_t[]){2}, 1);
    init(&b, "ln.bias", 1, (int64_t[]){2}, 0);
    init(&b, "head.weight", 2, (int64_t[]){5, 2}, 0);
    num(&b, node(&b, "LayerNormalization", "/ln/LN", "a", IN("h", "ln.weight", "ln.bias")),
        "epsilon", 1e-6f);
    gelu_formula(&b, 0.044715f);
    node(&b, "Transpose", "/head/Transpose", "wt", IN("head.weight"));
    node(&b, "MatMul", "/head/MatMul", "y", IN("g", "wt"));
    CHECK_EQ_INT(load(&b, &m, &w, text, sizeof text), 0);
    if (test_failed_now()) return (void)printf("%s", text);
    CHECK_EQ_INT(m.n_layers, 5); /* input wte ln gelu head */
    CHECK(m.input.rank == 1 && m.input.dim[0] == 3 && m.classes == 5 && m.batch == 4);
    CHECK(!strcmp(m.dataset, "reverse"));
    CHECK(m.layers[1].op == PD_OP_EMBEDDING && !strcmp(m.layers[1].name, "wte") &&
          m.layers[1].positions == 3 && m.layers[1].num_embeddings == 5);
    CHECK(m.layers[2].op == PD_OP_LAYERNORM && m.layers[2].eps == 1e-6);
    CHECK(m.layers[3].op == PD_OP_GELU && m.layers[3].inputs[0] == 2);
    CHECK(m.layers[4].op == PD_OP_LINEAR && m.layers[4].out_features == 5 &&
          !m.layers[4].has_bias);
    const pd_onnx_tensor *P = weight(&w, "wte", "pos"), *H = weight(&w, "head", "weight");
    CHECK(P && !strcmp(P->init, "wpe.weight") && P->n == 6 && P->data[0] == 1);
    CHECK(H && !H->transpose && H->n == 10); /* the initializer is already [out][in] */
    pd_model_free(&m);
    pd_onnx_weights_free(&w);
}

TEST(transformer_patterns_refused_name_the_node) {
    builder b;
    begin_tokens(&b, 2); /* the GELU's constant off: tanh of something else */
    node(&b, "Identity", "/id", "a", IN("h"));
    gelu_formula(&b, 0.05f);
    refused(&b, "node 7 '/mlp/Add' (Add): an Add that continues none of the patterns");

    begin_tokens(&b, 2); /* positions 0, 1, 1 */
    b.int_store[2][2] = 1;
    node(&b, "Identity", "/id", "y", IN("h"));
    refused(&b, "node 1 '/wpe/Gather' (Gather): a Gather of position rows must take all the rows");

    begin(&b, 2, (int64_t[]){4, 3}, "y", 2); /* float features are no token ids */
    init(&b, "wte.weight", 2, (int64_t[]){5, 2}, 0);
    node(&b, "Gather", "/g", "y", IN("wte.weight", "x"));
    refused(&b, "node 0 '/g' (Gather): an embedding's Gather must read the model's int64 token ids");

    begin_tokens(&b, 2); /* a half-done pattern read by another node */
    init(&b, "two", 0, (int64_t[]){0}, 2);
    node(&b, "Pow", "/pow", "q", IN("h", "two"));
    node(&b, "Relu", "/relu", "y", IN("q"));
    refused(&b, "node 4 '/relu' (Relu): input 0 'q' is an intermediate of a GELU pattern");
}

/* ---- what is refused ---- */

static void refused(builder *b, const char *want) {
    pd_model m;
    pd_onnx_weights w;
    char text[4096];
    CHECK_EQ_INT(load(b, &m, &w, text, sizeof text), 1);
    if (!strstr(text, want)) test_fail(__FILE__, __LINE__, "wanted '%s' in: %s", want, text);
    CHECK(m.n_layers == 0 && w.n == 0);
}

TEST(unsupported_nodes_are_named_by_index_name_and_op) {
    builder b;
    int64_t x4[4] = {2, 1, 5, 5};
    begin(&b, 4, x4, "y", 2);
    init(&b, "w", 4, (int64_t[]){2, 1, 3, 3}, 0);
    node(&b, "Relu", "/r", "r", IN("x"));
    ints(&b, node(&b, "Conv", "/c/Conv", "y", IN("r", "w")), "pads", 4, (int64_t[]){1, 1, 0, 0});
    refused(&b, "node 1 '/c/Conv' (Conv): pads [1, 1, 0, 0] are not symmetric");

    begin(&b, 4, x4, "y", 2);
    init(&b, "w", 4, (int64_t[]){2, 1, 3, 3}, 0);
    ints(&b, node(&b, "Conv", "/c/Conv", "y", IN("x", "w")), "group", 1, (int64_t[]){2});
    refused(&b, "node 0 '/c/Conv' (Conv): needs a weight [out][in][kh][kw] and group 1");

    begin(&b, 2, (int64_t[]){4, 3}, "y", 2);
    init(&b, "w", 2, (int64_t[]){2, 3}, 0);
    num(&b, node(&b, "Gemm", "/g", "y", IN("x", "w")), "alpha", 2);
    refused(&b, "node 0 '/g' (Gemm): only y = x W^T + b");

    begin(&b, 4, x4, "y", 2);
    init_ints(&b, "pads", 8, (int64_t[]){0, 0, 1, 1, 0, 0, 1, 1});
    node(&b, "Pad", "/p", "p", IN("x", "pads"));
    ints(&b, node(&b, "MaxPool", "/m", "y", IN("p")), "kernel_shape", 2, (int64_t[]){2, 2});
    refused(&b, "node 1 '/m' (MaxPool): reads the output of a Pad");

    begin(&b, 2, (int64_t[]){4, 3}, "y", 2);
    node(&b, "Softplus", "/s", "s", IN("x"))->domain = "com.example";
    refused(&b, "node 0 '/s' (Softplus): ops of domain 'com.example' are not supported");

    begin(&b, 2, (int64_t[]){4, 3}, "y", 3);
    b.ins[1] = &b.in[1];
    value(&b, 1, &b.in[1], "x2", 2, (int64_t[]){4, 3});
    b.g.n_input = 2;
    node(&b, "Add", "/a", "y", IN("x", "x2"));
    refused(&b, "the graph has 2 inputs besides its initializers");
}
