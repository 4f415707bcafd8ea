/* onnx.c: reads an ONNX model into the model IR (onnx.h): decodes the protobuf (protobuf-c),
 * takes the graph's one input as the model's input, walks the nodes in their (topological)
 * order mapping each onto our ops (onnx_nodes.c), names the layers after the initializers and
 * nodes, infers shapes, and checks every weight against its layer. Also writes what pdplan keeps
 * of an import: the --init folder and the map back to the initializers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "onnx_internal.h"
#include "planner/ops/op.h"
#include "planner/ops/shapes.h"
#include "planner/util/fs.h"
#include "planner/util/hash.h"

#define MAX_NODES 1000000

/* ---- the table of values, by name ---- */

static size_t slot_of(const char *s, size_t cap) { return (size_t)pd_fnv1a_str(s) & (cap - 1); }

onnx_value *onnx_find(onnx_ctx *c, const char *name) {
    size_t i = slot_of(name, c->cap);
    while (c->vals[i].name && strcmp(c->vals[i].name, name)) i = (i + 1) & (c->cap - 1);
    return &c->vals[i];
}

onnx_value *onnx_add(onnx_ctx *c, const char *name) {
    onnx_value *v = onnx_find(c, name);
    if (!v->name) v->name = name;
    return v;
}

void onnx_node_error(onnx_ctx *c, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *nm = c->nd && c->nd->name && c->nd->name[0] ? c->nd->name : "(unnamed)";
    pd_diag_error(c->d, c->path, 0, 0, "node %d '%.200s' (%.64s): %s", c->node, nm,
                  c->nd && c->nd->op_type ? c->nd->op_type : "?", msg);
    c->errors++;
}

const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *nd, const char *name) {
    for (size_t i = 0; i < nd->n_attribute; i++)
        if (nd->attribute[i] && nd->attribute[i]->name && !strcmp(nd->attribute[i]->name, name))
            return nd->attribute[i];
    return NULL;
}

/* ---- constant tensors ---- */

static int64_t dims_count(const Onnx__TensorProto *t) {
    int64_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0 || t->dims[i] > ((int64_t)1 << 34)) return -1;
        n *= t->dims[i];
        if (n > ((int64_t)1 << 34)) return -1;
    }
    return n;
}

static int external(const Onnx__TensorProto *t) {
    return t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

int64_t onnx_float_count(const Onnx__TensorProto *t) {
    int64_t n = dims_count(t);
    if (n < 0 || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || external(t)) return -1;
    if (t->has_raw_data ? t->raw_data.len != (size_t)n * 4 : t->n_float_data != (size_t)n)
        return -1;
    return n;
}

static float float_at(const Onnx__TensorProto *t, int64_t i) {
    if (!t->has_raw_data) return t->float_data[i];
    float v;
    memcpy(&v, t->raw_data.data + 4 * i, 4); /* little-endian, as this machine */
    return v;
}

int onnx_const_floats(const Onnx__TensorProto *t, float *out, int max) {
    int64_t n = onnx_float_count(t);
    if (n < 0 || n > max) return -1;
    for (int64_t i = 0; i < n; i++) out[i] = float_at(t, i);
    return (int)n;
}

int onnx_const_ints(const Onnx__TensorProto *t, int64_t *out, int max) {
    int64_t n = dims_count(t);
    if (n < 0 || n > max || external(t)) return -1;
    int w = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64   ? 8
            : t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? 4 : 0;
    if (!w) return -1;
    if (t->has_raw_data) {
        if (t->raw_data.len != (size_t)n * w) return -1;
        for (int64_t i = 0; i < n; i++) {
            if (w == 8) {
                memcpy(&out[i], t->raw_data.data + 8 * i, 8);
            } else {
                int32_t v;
                memcpy(&v, t->raw_data.data + 4 * i, 4);
                out[i] = v;
            }
        }
        return (int)n;
    }
    if ((w == 8 ? t->n_int64_data : t->n_int32_data) != (size_t)n) return -1;
    for (int64_t i = 0; i < n; i++) out[i] = w == 8 ? t->int64_data[i] : t->int32_data[i];
    return (int)n;
}

/* ---- layers ---- */

static int name_taken(onnx_ctx *c, const char *s) {
    size_t i = slot_of(s, c->names_cap);
    while (c->names[i]) {
        if (!strcmp(c->names[i], s)) return 1;
        i = (i + 1) & (c->names_cap - 1);
    }
    return 0;
}

static void name_put(onnx_ctx *c, char *s) {
    size_t i = slot_of(s, c->names_cap);
    while (c->names[i]) i = (i + 1) & (c->names_cap - 1);
    c->names[i] = s;
}

/* Our name for a layer: the hint (an initializer's prefix such as "layer1.0.conv1") or, for a
 * node without parameters, its node name without the scopes torch repeats and without a last
 * part that only names the op ("/layer1/layer1.0/relu_1/Relu" -> "layer1.0.relu_1"); characters
 * outside [A-Za-z0-9_.-] become '_'; a taken name gets "_2", "_3", ... */
static void layer_name(onnx_ctx *c, const char *hint, char *out) {
    char buf[PD_NAME_MAX];
    const char *nm = c->nd->name;
    if (hint && hint[0]) {
        snprintf(buf, sizeof buf, "%s", hint);
    } else if (nm && nm[0] && strlen(nm) < 256) {
        char parts[256], *comp[64];
        int n = 0;
        snprintf(parts, sizeof parts, "%s", nm);
        for (char *s = strtok(parts, "/"); s && n < 64; s = strtok(NULL, "/")) comp[n++] = s;
        if (n > 1 && !strcmp(comp[n - 1], c->nd->op_type)) n--; /* ".../relu/Relu" */
        buf[0] = '\0';
        for (int i = 0; i < n; i++) {
            size_t L = strlen(comp[i]);
            if (i + 1 < n && !strncmp(comp[i + 1], comp[i], L) && comp[i + 1][L] == '.')
                continue; /* "layer1" before "layer1.0" */
            size_t used = strlen(buf);
            snprintf(buf + used, sizeof buf - used, "%s%s", used ? "." : "", comp[i]);
        }
    } else {
        buf[0] = '\0';
    }
    if (!buf[0] || strlen(buf) >= PD_NAME_MAX - 8)
        snprintf(buf, sizeof buf, "%.32s_%d", c->nd->op_type, c->node);
    for (char *s = buf; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            *s = '_';
    if (!strcmp(buf, "input")) snprintf(buf, sizeof buf, "input_node");
    snprintf(out, PD_NAME_MAX, "%s", buf);
    for (int k = 2; name_taken(c, out); k++) snprintf(out, PD_NAME_MAX, "%.48s_%d", buf, k);
}

/* The descriptors read their attributes from a node's onnx_kv list through this. */
typedef struct {
    pd_attr_reader r;
    onnx_ctx *c;
    const onnx_kv *kv;
    int n;
} kv_reader;

static const onnx_kv *kv_get(pd_attr_reader *r, const char *key) {
    kv_reader *k = (kv_reader *)r;
    for (int i = 0; i < k->n; i++)
        if (!strcmp(k->kv[i].key, key)) return &k->kv[i];
    return NULL;
}

static int kv_range(pd_attr_reader *r, const char *key, int64_t v, int64_t lo, int64_t hi) {
    if (v >= lo && v <= hi) return 0;
    r->error(r, key, "'%s' is %lld, out of range [%lld, %lld]", key, (long long)v,
             (long long)lo, (long long)hi);
    return 1;
}

static int kv_integer(pd_attr_reader *r, const char *key, int64_t def, int64_t lo, int64_t hi,
                      int *out) {
    const onnx_kv *v = kv_get(r, key);
    if (!v && def == PD_ATTR_REQUIRED) {
        r->error(r, key, "the attribute '%s' is required", key);
        return 1;
    }
    int64_t x = v ? v->i[0] : def;
    if (kv_range(r, key, x, lo, hi)) return 1;
    *out = (int)x;
    return 0;
}

static int kv_pair(pd_attr_reader *r, const char *key, int def, int lo, int out[2]) {
    const onnx_kv *v = kv_get(r, key);
    if (!v && def < 0) {
        r->error(r, key, "the attribute '%s' is required", key);
        return 1;
    }
    for (int j = 0; j < 2; j++) {
        int64_t x = v ? v->i[v->kind == KV_PAIR ? j : 0] : def;
        if (kv_range(r, key, x, lo, 100000)) return 1;
        out[j] = (int)x;
    }
    return 0;
}

static int kv_flag(pd_attr_reader *r, const char *key, int def, int *out) {
    const onnx_kv *v = kv_get(r, key);
    *out = v ? v->i[0] != 0 : def;
    return 0;
}

static int kv_number(pd_attr_reader *r, const char *key, double def, double lo, double hi,
                     double *out) {
    const onnx_kv *v = kv_get(r, key);
    *out = v ? v->f : def;
    if (*out >= lo && *out <= hi) return 0;
    r->error(r, key, "'%s' is %g, out of range [%g, %g]", key, *out, lo, hi);
    return 1;
}

static int kv_has(pd_attr_reader *r, const char *key) { return kv_get(r, key) != NULL; }

static void kv_error(pd_attr_reader *r, const char *key, const char *fmt, ...) {
    kv_reader *k = (kv_reader *)r;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)key;
    onnx_node_error(k->c, "as layer '%s': %s", r->layer, msg);
}

int onnx_new_layer(onnx_ctx *c, pd_op_kind op, const char *name, const int *inputs,
                   int n_inputs, const onnx_kv *kv, int n_kv) {
    pd_model *m = c->m;
    if (n_inputs < 1 || n_inputs > PD_MAX_INPUTS) {
        onnx_node_error(c, "takes 1 to %d inputs here, not %d", PD_MAX_INPUTS, n_inputs);
        return -1;
    }
    int reindex = 0; /* the names point into m->layers: index afresh when it moves */
    if (m->n_layers == c->layers_cap) {
        int cap = c->layers_cap ? 2 * c->layers_cap : 64;
        reindex = 1;
        pd_layer *l = realloc(m->layers, (size_t)cap * sizeof *l);
        if (!l) {
            onnx_node_error(c, "out of memory");
            return -1;
        }
        m->layers = l;
        c->layers_cap = cap;
    }
    if ((size_t)m->n_layers * 2 + 2 > c->names_cap) {
        size_t cap = c->names_cap * 4;
        char **nn = calloc(cap, sizeof *nn);
        if (!nn) {
            onnx_node_error(c, "out of memory");
            return -1;
        }
        free(c->names);
        c->names = nn;
        c->names_cap = cap;
        reindex = 1;
    }
    if (reindex) {
        memset(c->names, 0, c->names_cap * sizeof *c->names);
        for (int i = 0; i < m->n_layers; i++) name_put(c, m->layers[i].name);
    }
    int idx = m->n_layers;
    pd_layer *L = &m->layers[idx];
    memset(L, 0, sizeof *L);
    layer_name(c, name, L->name);
    L->op = op;
    L->n_inputs = n_inputs;
    memcpy(L->inputs, inputs, sizeof(int) * (size_t)n_inputs);
    L->has_bias = 1;
    const pd_op_desc *d = pd_op(op);
    kv_reader r = {{L->name, kv_integer, kv_pair, kv_flag, kv_number, kv_has, kv_error}, c, kv,
                   n_kv};
    if (d->read && d->read(&r.r, L)) return -1;
    name_put(c, L->name);
    m->n_layers++;
    onnx_value *v = onnx_add(c, c->nd->output[0]);
    v->kind = OV_LAYER;
    v->layer = idx;
    return idx;
}

int onnx_take_weight(onnx_ctx *c, int layer, const char *param, const Onnx__TensorProto *t,
                     int transpose) {
    int64_t n = onnx_float_count(t);
    if (n < 0 || (transpose && t->n_dims != 2)) {
        onnx_node_error(c, "its %s '%.200s' must be a float32 tensor held in the file%s", param,
                        t->name ? t->name : "", transpose ? " of rank 2" : "");
        return 1;
    }
    pd_onnx_weights *w = c->w;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 32;
        pd_onnx_tensor *x = realloc(w->t, (size_t)cap * sizeof *x);
        if (!x) {
            onnx_node_error(c, "out of memory");
            return 1;
        }
        w->t = x;
        w->cap = cap;
    }
    pd_onnx_tensor *o = &w->t[w->n];
    memset(o, 0, sizeof *o);
    o->data = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!o->data) {
        onnx_node_error(c, "out of memory");
        return 1;
    }
    w->n++;
    snprintf(o->layer, sizeof o->layer, "%s", c->m->layers[layer].name);
    snprintf(o->param, sizeof o->param, "%s", param);
    snprintf(o->init, sizeof o->init, "%s", t->name ? t->name : "");
    o->n = n;
    o->transpose = transpose;
    if (transpose) {
        o->rows = (int)t->dims[0];
        o->cols = (int)t->dims[1];
        for (int64_t i = 0; i < o->rows; i++) /* file [rows=in][cols=out] -> ours [out][in] */
            for (int64_t j = 0; j < o->cols; j++) o->data[j * o->rows + i] = float_at(t, i * o->cols + j);
    } else {
        for (int64_t i = 0; i < n; i++) o->data[i] = float_at(t, i);
    }
    return 0;
}

void pd_onnx_weights_free(pd_onnx_weights *w) {
    for (int i = 0; i < w->n; i++) free(w->t[i].data);
    free(w->t);
    memset(w, 0, sizeof *w);
}

/* ---- the graph ---- */

/* The model's input: the one graph input that is no initializer, [N, C, H, W] or [N, F]. */
static int read_input(onnx_ctx *c, int *batch) {
    const Onnx__ValueInfoProto *in = NULL;
    int n = 0;
    for (size_t i = 0; i < c->g->n_input; i++) {
        const Onnx__ValueInfoProto *v = c->g->input[i];
        if (!v->name || onnx_find(c, v->name)->kind == OV_CONST) continue; /* an initializer */
        if (!n++) in = v;
    }
    if (n != 1) {
        pd_diag_error(c->d, c->path, 0, 0, "the graph has %d inputs besides its initializers; "
                      "PipeDream-C takes one (the samples)", n);
        return 1;
    }
    const Onnx__TypeProto *t = in->type;
    const Onnx__TensorShapeProto *s = t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
                                              t->tensor_type ? t->tensor_type->shape : NULL;
    int64_t dim[4] = {0, 0, 0, 0};
    int elem = s ? t->tensor_type->elem_type : 0;
    c->tokens = s && s->n_dim == 2 && (elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
                                       elem == ONNX__TENSOR_PROTO__DATA_TYPE__INT32);
    int rank = s ? (int)s->n_dim : 0, ok = s && (rank == 2 || rank == 4) &&
                                             (elem == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
                                              c->tokens);
    for (int i = 0; ok && i < rank; i++) {
        const Onnx__TensorShapeProto__Dimension *dm = s->dim[i];
        if (dm && dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            dim[i] = dm->dim_value;
        if ((i > 0 && (dim[i] < 1 || dim[i] > (1 << 20))) || dim[0] < 0 || dim[0] > (1 << 20))
            ok = 0;
    }
    if (!ok) {
        pd_diag_error(c->d, c->path, 0, 0, "the graph's input '%.200s' must be a float tensor "
                      "[N, C, H, W] or [N, F] with known C, H, W or F, or int64 token ids "
                      "[N, T] with a known T", in->name);
        return 1;
    }
    c->m->input = rank == 4 ? (pd_shape){3, {(int)dim[1], (int)dim[2], (int)dim[3]}}
                            : (pd_shape){1, {(int)dim[1], 0, 0}};
    *batch = dim[0] > 0 ? (int)dim[0] : 32; /* a symbolic batch: 32 */
    c->batch = *batch;
    c->m->layers[0] = (pd_layer){.name = "input", .op = PD_OP_INPUT};
    c->m->n_layers = 1;
    name_put(c, c->m->layers[0].name);
    onnx_value *v = onnx_add(c, in->name);
    v->kind = OV_LAYER;
    v->layer = 0;
    return 0;
}

/* Every layer's parameters and buffers, as shape inference sized them, come from one
 * initializer of that size. */
static int check_weights(onnx_ctx *c) {
    int e = 0;
    for (int i = 1; i < c->m->n_layers; i++) {
        const pd_layer *L = &c->m->layers[i];
        pd_tensor t[PD_MAX_OP_TENSORS];
        int nt = pd_op_tensors(L, t);
        for (int k = 0; k < nt; k++) {
            if (!t[k].floats) continue;
            const pd_onnx_tensor *o = NULL;
            for (int j = 0; j < c->w->n && !o; j++)
                if (!strcmp(c->w->t[j].layer, L->name) && !strcmp(c->w->t[j].param, t[k].name))
                    o = &c->w->t[j];
            if (!o) {
                pd_diag_error(c->d, c->path, 0, 0, "layer '%s': no initializer gives its %s",
                              L->name, t[k].name);
                e++;
            } else if (o->n != t[k].floats) {
                pd_diag_error(c->d, c->path, 0, 0, "layer '%s': initializer '%s' holds %lld "
                              "floats, but its %s has %lld", L->name, o->init, (long long)o->n,
                              t[k].name, (long long)t[k].floats);
                e++;
            }
        }
    }
    return e;
}

static void defaults(pd_model *m, const char *path, int batch, int tokens) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".onnx")) n -= 5;
    if (n >= sizeof m->name) n = sizeof m->name - 1;
    for (size_t i = 0; i < n; i++) {
        char ch = base[i];
        m->name[i] = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                             (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-'
                         ? ch : '_';
    }
    m->name[n] = '\0';
    if (!m->name[0]) snprintf(m->name, sizeof m->name, "onnx_model");
    snprintf(m->path, sizeof m->path, "%s", path);
    m->batch = batch;
    m->epochs = 1;
    snprintf(m->loss, sizeof m->loss, "softmax_cross_entropy");
    int fmnist = m->input.rank == 3 && m->input.dim[0] == 1 && m->input.dim[1] == 28 &&
                 m->input.dim[2] == 28;
    snprintf(m->dataset, sizeof m->dataset, fmnist ? "fashion-mnist" : "synthetic");
    /* a language model: the Shakespeare corpus for its 88 characters, else the synthetic token
     * task (reverse: ids below the vocabulary); a corpus of its own comes from the settings */
    if (tokens)
        snprintf(m->dataset, sizeof m->dataset, m->classes == 88 ? "shakespeare_char" : "reverse");
    m->optimizer = PD_OPT_SGD;
    m->lr = 0.01;
    m->momentum = 0.9;
    m->weight_decay = 0;
    m->beta1 = 0.9;
    m->beta2 = 0.999;
    m->adam_eps = 1e-8;
    snprintf(m->cost_source, sizeof m->cost_source, "none");
}

/* The classes: the graph output's declared [N, K], else the last layer's features. */
static int read_output(onnx_ctx *c) {
    const Onnx__GraphProto *g = c->g;
    if (g->n_output != 1 || !g->output[0]->name) {
        pd_diag_error(c->d, c->path, 0, 0, "the graph has %zu outputs; PipeDream-C trains a "
                      "model with one (the class logits)", g->n_output);
        return 1;
    }
    onnx_value *v = onnx_find(c, g->output[0]->name);
    if (!v->name || v->kind != OV_LAYER || v->layer != c->m->n_layers - 1 || v->layer == 0) {
        pd_diag_error(c->d, c->path, 0, 0, "the graph's output '%.200s' must be computed by its "
                      "last mapped node", g->output[0]->name);
        return 1;
    }
    const Onnx__TypeProto *t = g->output[0]->type;
    const Onnx__TensorShapeProto *s = t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
                                              t->tensor_type ? t->tensor_type->shape : NULL;
    size_t k = c->tokens ? 2 : 1; /* [N, K], or a language model's [N, T, V] */
    if (s && s->n_dim == k + 1 && s->dim[k] &&
        s->dim[k]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
        s->dim[k]->dim_value > 0 && s->dim[k]->dim_value <= (1 << 24))
        c->m->classes = (int)s->dim[k]->dim_value;
    else if (c->m->layers[v->layer].op == PD_OP_LINEAR)
        c->m->classes = c->m->layers[v->layer].out_features;
    else {
        pd_diag_error(c->d, c->path, 0, 0, "cannot tell the number of classes: declare the "
                      "output's shape [N, K] (a language model's [N, T, V])");
        return 1;
    }
    return 0;
}

static int check_used(onnx_ctx *c) {
    pd_model *m = c->m;
    char *used = calloc((size_t)m->n_layers, 1);
    int e = 0;
    if (!used) return 1;
    for (int i = 1; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i].n_inputs; k++) used[m->layers[i].inputs[k]] = 1;
    for (int i = 1; i + 1 < m->n_layers && e < 10; i++)
        if (!used[i]) {
            pd_diag_error(c->d, c->path, 0, 0, "layer '%s' does not lead to the graph's output: "
                          "PipeDream-C trains one output", m->layers[i].name);
            e++;
        }
    free(used);
    return e;
}

/* ---- the nesting of messages, before protobuf-c unpacks them ---- */

#define MAX_NESTING 64 /* a model is about 6 deep; subgraphs (If, Loop) add a few each */

static int read_varint(const uint8_t *p, size_t end, size_t *at, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *at < end; shift += 7) {
        uint8_t b = p[(*at)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* protobuf-c unpacks nested messages by recursion, with no depth limit: a file of a few MB
 * nesting graphs in attributes in nodes in graphs ... overflows the stack. This walks the wire
 * format with an explicit stack, entering exactly the fields the schema says are messages, and
 * returns the deepest nesting (a malformed encoding stops the walk: unpack reports it). */
static int nesting_depth(const uint8_t *p, size_t len) {
    struct {
        const ProtobufCMessageDescriptor *desc;
        size_t end;
    } st[MAX_NESTING + 2];
    int top = 0, deepest = 1;
    size_t at = 0;
    st[0].desc = &onnx__model_proto__descriptor;
    st[0].end = len;
    while (top >= 0) {
        if (at >= st[top].end) {
            top--;
            continue;
        }
        uint64_t key, v;
        if (read_varint(p, st[top].end, &at, &key)) return deepest;
        unsigned wire = (unsigned)(key & 7), field = (unsigned)(key >> 3);
        if (wire == 0) {
            if (read_varint(p, st[top].end, &at, &v)) return deepest;
        } else if (wire == 1 || wire == 5) {
            at += wire == 1 ? 8 : 4;
        } else if (wire == 2) {
            if (read_varint(p, st[top].end, &at, &v) || v > st[top].end - at) return deepest;
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(st[top].desc, field);
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                if (top + 1 >= MAX_NESTING) return MAX_NESTING + 1;
                st[top + 1].desc = f->descriptor;
                st[top + 1].end = at + v;
                top++;
                if (top + 1 > deepest) deepest = top + 1;
            } else {
                at += v;
            }
        } else {
            return deepest; /* groups (3, 4) and unknown wire types: unpack refuses them */
        }
    }
    return deepest;
}

int pd_onnx_load_bytes(const char *path, const void *bytes, size_t len, pd_model *m,
                       pd_onnx_weights *w, pd_diag *d) {
    memset(m, 0, sizeof *m);
    memset(w, 0, sizeof *w);
    int before = d->errors;
    if (nesting_depth(bytes, len) > MAX_NESTING) {
        pd_diag_error(d, path, 0, 0, "not an ONNX model PipeDream-C reads: its messages nest "
                      "more than %d deep", MAX_NESTING);
        return 1;
    }
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, bytes);
    if (!mp || !mp->graph) {
        pd_diag_error(d, path, 0, 0, "not an ONNX model: %s", mp ? "it has no graph"
                      : "the protobuf message does not decode (a truncated or other file?)");
        if (mp) onnx__model_proto__free_unpacked(mp, NULL);
        return 1;
    }
    const Onnx__GraphProto *g = mp->graph;
    onnx_ctx c = {.path = path, .d = d, .m = m, .w = w, .g = g};
    size_t nv = g->n_initializer + g->n_input + g->n_node * 4 + 16;
    for (size_t i = 0; i < g->n_node; i++) nv += g->n_node < MAX_NODES ? g->node[i]->n_output : 0;
    c.cap = 64;
    while (c.cap < 2 * nv) c.cap *= 2;
    c.names_cap = 64;
    c.vals = calloc(c.cap, sizeof *c.vals);
    c.names = calloc(c.names_cap, sizeof *c.names);
    m->layers = calloc(64, sizeof *m->layers);
    c.layers_cap = 64;
    int batch = 0;
    if (!c.vals || !c.names || !m->layers) {
        pd_diag_error(d, path, 0, 0, "out of memory");
        goto out;
    }
    if (g->n_node > MAX_NODES || g->n_node == 0) {
        pd_diag_error(d, path, 0, 0, "the graph has %zu nodes (1 to %d)", g->n_node, MAX_NODES);
        goto out;
    }
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (o && (!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) &&
            (o->version < 9 || o->version > 17))
            pd_diag_warning(d, path, 0, 0, "opset %lld: read as the ops of opsets 9 to 17",
                            (long long)o->version);
    }
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        if (!t->name || !t->name[0]) continue;
        onnx_value *v = onnx_add(&c, t->name);
        v->kind = OV_CONST;
        v->t = t;
    }
    for (size_t i = 0; i < g->n_node; i++)
        for (size_t k = 0; k < g->node[i]->n_input; k++)
            if (g->node[i]->input[k] && g->node[i]->input[k][0])
                onnx_add(&c, g->node[i]->input[k])->uses++;
    if (read_input(&c, &batch)) goto out;
    for (size_t i = 0; i < g->n_node && c.errors < 20; i++) {
        c.node = (int)i;
        c.nd = g->node[i];
        if (!c.nd->op_type || c.nd->n_output < 1 || !c.nd->output[0]) {
            onnx_node_error(&c, "a node needs an op type and an output");
            continue;
        }
        onnx_map_node(&c);
    }
    c.nd = NULL;
    if (c.errors || read_output(&c) || check_used(&c)) goto out;
    defaults(m, path, batch, c.tokens);
    if (pd_infer_shapes(m, path, d) || check_weights(&c)) goto out;
out:
    onnx_seq_free(&c);
    free(c.vals);
    free(c.names);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (d->errors > before) {
        pd_model_free(m);
        pd_onnx_weights_free(w);
        memset(m, 0, sizeof *m);
        return 1;
    }
    return 0;
}

/* ---- what pdplan writes ---- */

int pd_onnx_write_weights(const char *dir, const pd_onnx_weights *w, pd_diag *d) {
    if (pd_mkdir_p(dir)) {
        pd_diag_error(d, dir, 0, 0, "cannot create the folder: %s", strerror(errno));
        return -1;
    }
    for (int i = 0; i < w->n; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s.%s.f32", dir, w->t[i].layer, w->t[i].param);
        FILE *f = fopen(path, "wb");
        size_t put = f ? fwrite(w->t[i].data, sizeof(float), (size_t)w->t[i].n, f) : 0;
        if (!f || (f && fclose(f) != 0) || put != (size_t)w->t[i].n) {
            pd_diag_error(d, path, 0, 0, "cannot write the initial weights: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

int pd_onnx_write_map(const char *path, const pd_onnx_weights *w, pd_diag *d) {
    FILE *f = fopen(path, "w");
    if (!f) {
        pd_diag_error(d, path, 0, 0, "cannot write: %s", strerror(errno));
        return -1;
    }
    fprintf(f, "# our tensor (<layer>.<param>), transposed, its rows and columns in the file, "
            "then the initializer's name to the line's end: read by pdexport\n");
    for (int i = 0; i < w->n; i++)
        fprintf(f, "%s.%s %d %d %d %s\n", w->t[i].layer, w->t[i].param, w->t[i].transpose,
                w->t[i].rows, w->t[i].cols, w->t[i].init);
    if (fclose(f) != 0) {
        pd_diag_error(d, path, 0, 0, "cannot write: %s", strerror(errno));
        return -1;
    }
    return 0;
}
