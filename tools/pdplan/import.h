/* import.h: pdplan's side of ONNX (import.c): reading a .onnx with its training settings, what a
 * generated folder keeps of its source (so that pdlaunch trains from the file's weights and
 * pdexport can write the trained model back), and --emit-yaml. */
#ifndef PD_IMPORT_H
#define PD_IMPORT_H

#include <stddef.h>

#include "planner/read/onnx.h"

/* The ONNX model in bytes, then its settings: `settings` when given, else PATH's
 * <name>.train.yaml when it exists. 0, or 1 after diagnostics. */
int pd_import_load(const char *path, const char *bytes, size_t len, const char *settings,
                   pd_model *m, pd_onnx_weights *w, pd_diag *d);

/* Into outdir: the source as source.onnx (with init/, the initial weights, and onnx_map.txt)
 * or source.yaml. 0, or -1 after a diagnostic. */
int pd_import_keep(const char *outdir, const char *bytes, size_t len, int is_onnx,
                   const pd_onnx_weights *w, pd_diag *d);

/* --emit-yaml FILE: the model as pd: 1 YAML, and (w non-empty) its weights in FILE less .yaml
 * plus "_init/". 0, or -1 after a diagnostic. */
int pd_import_emit_yaml(const char *file, const pd_model *m, const pd_onnx_weights *w,
                        pd_diag *d);

#endif
