/* pdexport.h: what pdexport's two files share: an arena for the messages they build (freed at
 * once), reading a trained tensor from a --save folder, and the graph built from a model YAML
 * (from_yaml.c). */
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

/* A model of our ops as an ONNX inference graph (opset 13) whose initializers are the trained
 * tensors in dir, named <layer>.<param>. NULL after a message (an op without an ONNX form). */
Onnx__ModelProto *pd_onnx_from_model(const pd_model *m, const char *dir);

#endif
