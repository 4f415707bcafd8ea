/* onnx_internal.h: what the ONNX reader's files share: the reader's state (the values the
 * graph's tensors hold so far, the layers made, the weights taken) and its helpers. onnx.c
 * decodes the file and drives; onnx_nodes.c maps one node onto our ops; onnx_seq.c recognises
 * the transformer patterns of torch.onnx.export (embedding, LayerNorm, GELU, attention). */
#ifndef PD_ONNX_INTERNAL_H
#define PD_ONNX_INTERNAL_H

#include "onnx.pb-c.h" /* generated from onnx.proto at build time (Makefile) */
#include "onnx.h"

/* What a tensor of the graph is, as far as the reader is concerned. */
typedef enum {
    OV_NONE = 0,
    OV_LAYER, /* the output of layer `layer` */
    OV_CONST, /* a constant tensor (an initializer or a Constant node's value): `t` */
    OV_PAD,   /* layer `layer`'s output zero-padded by pad[0] rows and pad[1] columns each side */
    OV_FAILED, /* the output of a node already refused (its readers are not refused again) */
    OV_TCONST, /* a rank-2 constant `t` transposed (Transpose perm [1, 0] of a weight) */
    OV_INTS,   /* a small integer vector folded from shape nodes: iv[0 .. n_iv) */
    OV_FOLD,   /* a float tensor folded from constants (the attention mask): fold */
    OV_PAT     /* an intermediate of a pattern (onnx_seq.c): pat says which */
} onnx_vkind;

/* A float tensor onnx_seq.c folded from constants (Slice, Equal, Cast of a mask buffer). */
typedef struct {
    int rank;
    int64_t dim[4];
    float *v;
} onnx_fold;

typedef struct {
    const char *name; /* NULL: an empty slot */
    onnx_vkind kind;
    int layer;
    int pad[2];
    int uses;         /* how many node inputs read it */
    int bias_free;    /* OV_LAYER from a MatMul: a following Add of a constant may be its bias */
    int pos_free;     /* OV_LAYER from a Gather: a following Add of positions may be folded in */
    const Onnx__TensorProto *t;
    /* OV_PAT: which intermediate, of which layer (x), with the pattern's numbers */
    int pat, part, heads, flags;
    double coef;
    const Onnx__TensorProto *t2;
    int n_iv;         /* OV_INTS */
    int64_t iv[8];
    onnx_fold *fold;  /* OV_FOLD (owned by the context) */
} onnx_value;

typedef struct {
    const char *path;
    pd_diag *d;
    pd_model *m;
    pd_onnx_weights *w;
    const Onnx__GraphProto *g;
    onnx_value *vals;   /* open addressing on the name */
    size_t cap;
    char **names;       /* layer names taken, open addressing (strings owned by m->layers) */
    size_t names_cap;
    int layers_cap;
    int errors;
    int tokens;         /* the input is int64 token ids [N, T] (a language model) */
    int batch;          /* the input's N (32 when symbolic), for Shape */
    onnx_fold **folds;  /* the folded tensors, freed with the context */
    int n_folds, folds_cap;
    /* the node being mapped, for diagnostics */
    int node;
    const Onnx__NodeProto *nd;
} onnx_ctx;

/* The value named name (a slot with name NULL when there is none: add sets it). */
onnx_value *onnx_find(onnx_ctx *c, const char *name);
onnx_value *onnx_add(onnx_ctx *c, const char *name);

/* A diagnostic about the current node: "node I 'NAME' (OP): ...". */
void onnx_node_error(onnx_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A node's attribute, or NULL. */
const Onnx__AttributeProto *onnx_attr(const Onnx__NodeProto *nd, const char *name);

/* The elements of a constant tensor: ints (int32/int64) or floats. Return the count, or -1 when
 * the tensor is not of that kind or holds more than max. */
int onnx_const_ints(const Onnx__TensorProto *t, int64_t *out, int max);
int onnx_const_floats(const Onnx__TensorProto *t, float *out, int max);
/* A float tensor's element count (its dims' product), -1 if not float or not whole. */
int64_t onnx_float_count(const Onnx__TensorProto *t);

/* An attribute's value as the op descriptors read it (pd_attr_reader, planner/ops/op.h). */
typedef enum { KV_INT, KV_PAIR, KV_FLAG, KV_NUM } onnx_kv_kind;
typedef struct {
    const char *key;
    onnx_kv_kind kind;
    int64_t i[2];
    double f;
} onnx_kv;

/* A new layer of op `op` fed by `inputs`, its attributes read by the op's descriptor from kv (so
 * that ranges and defaults are the YAML's), named `name` (made unique); the outputs[0] of the
 * node becomes it. Returns its index, or -1 after a diagnostic. */
int onnx_new_layer(onnx_ctx *c, pd_op_kind op, const char *name, const int *inputs,
                   int n_inputs, const onnx_kv *kv, int n_kv);
/* Takes constant t as parameter `param` of layer `layer` (transpose: stored [in][out]).
 * Returns 0, or 1 after a diagnostic. */
int onnx_take_weight(onnx_ctx *c, int layer, const char *param, const Onnx__TensorProto *t,
                     int transpose);

/* Maps the current node (c->nd, c->node); returns the number of errors. */
int onnx_map_node(onnx_ctx *c);

/* onnx_seq.c: maps the current node when it belongs to a transformer pattern or folds shape
 * constants; returns -1 when the node is none of its business (onnx_map_node goes on), else the
 * number of errors. */
int onnx_seq_map(onnx_ctx *c);
/* What pattern an OV_PAT value is part of, in words ("attention", "GELU", ...). */
const char *onnx_seq_pat_name(int pat);
/* Frees the folded tensors. */
void onnx_seq_free(onnx_ctx *c);
/* Input k as a layer's output (onnx_nodes.c), -1 after a diagnostic. */
int onnx_in_layer(onnx_ctx *c, size_t k);
/* The name an initializer gives its layer: "conv1.weight" -> "conv1" (onnx_nodes.c). */
void onnx_prefix_of(const Onnx__TensorProto *t, const char *param, char *out, size_t cap);

#endif
