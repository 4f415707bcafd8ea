/* fuzz_model_yaml.c: libFuzzer harness for the model YAML reader (pd_model_load), followed on
 * success by the analytic cost estimate and the cost graph, whose invariants are checked. */
#include <stddef.h>
#include <stdint.h>

#include "planner/read/frontend.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_diag d = pd_fuzz_diag();
    pd_model m = {0};
    if (pd_model_load(pd_fuzz_file(data, size), &m, &d) == 0) {
        if (pd_diag_errors(&d) != 0) __builtin_trap(); /* success must mean no errors */
        if (pd_estimate_costs(&m, "cpu", &d) == 0) { /* as pdplan: a cost graph only then */
            pd_fuzz_check_model(&m);
            pd_costgraph *g = pd_model_costgraph(&m);
            if (g) {
                pd_fuzz_check_costgraph(g);
                pd_costgraph_free(g);
            }
        } else if (pd_diag_errors(&d) == 0) {
            __builtin_trap();
        }
    } else if (pd_diag_errors(&d) == 0) {
        __builtin_trap(); /* a rejection must say why */
    }
    pd_model_free(&m);
    return 0;
}
