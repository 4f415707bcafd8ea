/* fuzz_graphtxt.c: libFuzzer harness for PipeDream's graph.txt reader (pd_graphtxt_load); an
 * accepted graph must be topologically ordered with finite, non-negative costs. */
#include <stddef.h>
#include <stdint.h>

#include "planner/read/frontend.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_diag d = pd_fuzz_diag();
    pd_costgraph *g = pd_graphtxt_load(pd_fuzz_file(data, size), &d);
    if (g) {
        if (pd_diag_errors(&d) != 0) __builtin_trap();
        pd_fuzz_check_costgraph(g);
        pd_costgraph_free(g);
    } else if (pd_diag_errors(&d) == 0) {
        __builtin_trap();
    }
    return 0;
}
