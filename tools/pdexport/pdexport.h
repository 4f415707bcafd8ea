/* pdexport.h: what pdexport's files share: an arena for the messages they build (freed at
 * once), reading a trained tensor from a --save folder, the graph built from a model YAML
 * (from_yaml.c; its sequence ops in from_yaml_seq.c) and the graph builder both use. */
#ifndef PD_PDEXPORT_H
#define PD_PDEXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h" /* generated from onnx.proto at build time (Makefile) */
#include "planner/model/model.h"

/* zeroed memory that pd_arena_free_all releases; exits with a message when memory runs out */
void *pd_arena(size_t bytes);
char *pd_arena_str(const char *s);
void pd_arena_free_all(void);

/* DIR/<layer>.<param>.f32 holding exactly n floats, into a new arena buffer; NULL after a
 * message on stderr. */
float *pd_read_trained(const char *dir, const char *layer, const char *param, int64_t n);

/* A model of our ops as an ONNX inference graph (opset 17) whose initializers are the trained
 * tensors in dir, named <layer>.<param>. NULL after a message (an op without an ONNX form). */
Onnx__ModelProto *pd_onnx_from_model(const pd_model *m, const char *dir);

/* ---- the graph builder (from_yaml.c) ---- */

typedef struct {
    Onnx__GraphProto *g;
    size_t cap_node, cap_init;
    const char *dir; /* the trained weights */
} pdx_graph;

/* A node op_type named name writing the tensor out; inputs and attributes are added after. */
Onnx__NodeProto *pdx_node(pdx_graph *b, const char *op, const char *name, const char *out);
void pdx_input(Onnx__NodeProto *nd, const char *name);
void pdx_attr_int(Onnx__NodeProto *nd, const char *name, int64_t v);
void pdx_attr_ints(Onnx__NodeProto *nd, const char *name, const int64_t *v, int n);
void pdx_attr_float(Onnx__NodeProto *nd, const char *name, double v);
/* The trained initializer <layer>.<param> of the given dims (n floats), added to nd's inputs;
 * a tied layer's weight is its owner's initializer. 1 after a message. */
int pdx_trained(pdx_graph *b, Onnx__NodeProto *nd, const pd_model *m, const pd_layer *L,
                const char *param, const int64_t *dims, int rank, int64_t n);
/* A constant initializer named name (float32 or int64 values; rank 0 is a scalar), added once:
 * a later call with the same name reuses it. Returns the name. */
const char *pdx_const_f(pdx_graph *b, const char *name, const int64_t *dims, int rank,
                        const float *v);
const char *pdx_const_i(pdx_graph *b, const char *name, const int64_t *dims, int rank,
                        const int64_t *v);

/* The nodes of a sequence layer (embedding, layernorm, gelu, attention; linear, add, concat on a
 * (T, C) sequence) of layer i, reading tensors named after the layers (the model's input:
 * "input"): 0 done, 1 after a message naming the layer, -1 not one of these (from_yaml_seq.c). */
int pdx_seq_layer(pdx_graph *b, const pd_model *m, int i);

#endif
