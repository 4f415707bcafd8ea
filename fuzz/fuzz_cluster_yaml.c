/* fuzz_cluster_yaml.c: libFuzzer harness for the cluster YAML reader (pd_cluster_load); an
 * accepted cluster must have at least one worker and finite positive bandwidths. */
#include <stddef.h>
#include <stdint.h>

#include "planner/read/frontend.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_diag d = pd_fuzz_diag();
    pd_cluster c;
    if (pd_cluster_load(pd_fuzz_file(data, size), &c, &d) == 0) {
        if (pd_diag_errors(&d) != 0) __builtin_trap();
        pd_fuzz_check_cluster(&c);
    } else if (pd_diag_errors(&d) == 0) {
        __builtin_trap();
    }
    return 0;
}
