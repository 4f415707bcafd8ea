/* fuzz_onnx.c: libFuzzer harness for the ONNX reader (pd_onnx_load_bytes, planner/read/onnx.c):
 * an accepted model must pass the model invariants, and every weight it took must belong to a
 * layer of the model and hold data; a refused one must have said why. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "planner/read/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_diag d = pd_fuzz_diag();
    pd_model m;
    pd_onnx_weights w;
    if (pd_onnx_load_bytes("fuzz.onnx", data, size, &m, &w, &d) == 0) {
        if (pd_diag_errors(&d) != 0) __builtin_trap();
        pd_fuzz_check_model(&m);
        for (int i = 0; i < w.n; i++) {
            int found = 0;
            for (int k = 1; k < m.n_layers && !found; k++)
                found = !strcmp(m.layers[k].name, w.t[i].layer);
            if (!found || !w.t[i].data) __builtin_trap();
        }
        pd_model_free(&m);
        pd_onnx_weights_free(&w);
    } else if (pd_diag_errors(&d) == 0) {
        __builtin_trap();
    }
    return 0;
}
