/* onnx.h: the ONNX reader (onnx.c, onnx_nodes.c) and what the tools do with what it read.
 *
 * pd_onnx_load_bytes decodes an ONNX model (protobuf-c over Debian libonnx-dev's onnx.proto,
 * compiled at build time into build/gen/onnx.pb-c.[ch]) and maps its nodes onto our ops
 * (docs/formats.md, "ONNX"): the model IR as the YAML reader makes it (shapes inferred), and the
 * initial weights from the initializers, each kept under its layer and parameter name with the
 * initializer it came from. Anything outside the supported subset is a diagnostic naming the
 * node, its index and its op type; nothing is half-read.
 */
#ifndef PD_ONNX_H
#define PD_ONNX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "planner/model/model.h"
#include "planner/util/diag.h"

#define PD_ONNX_MAX_BYTES (2048L * 1024 * 1024 - 1) /* protobuf's limit on one message */

/* One parameter or buffer of a layer, as the initializer `init` gave it. */
typedef struct {
    char layer[PD_NAME_MAX];
    char param[32];   /* weight, bias, running_mean, running_var: the --init file's name */
    char init[256];   /* the ONNX initializer's name */
    int transpose;    /* stored [in][out] in the file (Gemm transB=0, MatMul): data is ours,
                         [out][in] */
    int rows, cols;   /* with transpose: the file's [rows][cols] */
    int64_t n;
    float *data;      /* n floats in our layout */
} pd_onnx_tensor;

typedef struct {
    int n, cap;
    pd_onnx_tensor *t;
} pd_onnx_weights;

/* Reads len bytes of an ONNX model (path names it in diagnostics) into *m (free with
 * pd_model_free) and *w (free with pd_onnx_weights_free). The training settings ONNX does not
 * carry get the defaults of docs/formats.md: softmax cross-entropy, batch from the input's first
 * dimension, Fashion-MNIST for a 1x28x28 input (else synthetic), SGD with lr 0.01 and momentum
 * 0.9. Returns 0, or 1 after diagnostics (then *m and *w are empty). */
int pd_onnx_load_bytes(const char *path, const void *bytes, size_t len, pd_model *m,
                       pd_onnx_weights *w, pd_diag *d);
void pd_onnx_weights_free(pd_onnx_weights *w);

/* The weights as a --init folder: DIR/<layer>.<param>.f32 (made if missing). 0 or -1 (with a
 * diagnostic). */
int pd_onnx_write_weights(const char *dir, const pd_onnx_weights *w, pd_diag *d);
/* The map back from our tensors to the initializers, one line each:
 *   <layer>.<param> <transpose 0|1> <rows> <cols> <initializer, to the line's end>
 * (onnx_map.txt beside a generated folder's source.onnx, which pdexport reads). */
int pd_onnx_write_map(const char *path, const pd_onnx_weights *w, pd_diag *d);

/* The model as a pd: 1 YAML (pdplan --emit-yaml): the header, then every layer with the
 * attributes that differ from their defaults (read back through the op descriptors). */
int pd_model_write_yaml(FILE *f, const pd_model *m);

#endif
