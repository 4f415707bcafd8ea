/* fuzz_profile_yaml.c: libFuzzer harness for the profile YAML reader (pd_profile_apply).
 *
 * A profile is applied to a model. The bundled models are loaded once (PD_FUZZ_ROOT, set at
 * build time, is the checkout); an input whose first line is "# model: NAME" is applied to that
 * model, any other input to fmnist_cnn. The first line is a YAML comment, so seeds stay valid
 * profiles. Accepted profiles must leave finite, non-negative layer times.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner/read/frontend.h"
#include "fuzz_util.h"

#ifndef PD_FUZZ_ROOT
#define PD_FUZZ_ROOT "."
#endif

static const char *const model_names[] = {"fmnist_cnn", "alexnet", "vgg16", "resnet50", "gnmt8",
                                          "gnmt16"};
#define N_MODELS (sizeof model_names / sizeof model_names[0])
static pd_model models[N_MODELS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *root = getenv("PD_FUZZ_ROOT") ? getenv("PD_FUZZ_ROOT") : PD_FUZZ_ROOT;
    for (size_t i = 0; i < N_MODELS; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/models/%s.yaml", root, model_names[i]);
        pd_diag d = {0};
        if (pd_model_load(path, &models[i], &d)) {
            fprintf(stderr, "fuzz_profile_yaml: cannot load %s\n", path);
            exit(1);
        }
    }
    return 0;
}

static pd_model *pick_model(const uint8_t *data, size_t size) {
    static const char tag[] = "# model: ";
    size_t tl = sizeof tag - 1;
    if (size > tl && memcmp(data, tag, tl) == 0) {
        for (size_t i = 0; i < N_MODELS; i++) {
            size_t nl = strlen(model_names[i]);
            if (size >= tl + nl + 1 && memcmp(data + tl, model_names[i], nl) == 0 &&
                data[tl + nl] == '\n')
                return &models[i];
        }
    }
    return &models[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pd_model *m = pick_model(data, size);
    for (int i = 0; i < m->n_layers; i++) m->layers[i].fwd_ms = m->layers[i].bwd_ms = 0;
    pd_diag d = pd_fuzz_diag();
    if (pd_profile_apply(pd_fuzz_file(data, size), m, &d) == 0) {
        if (pd_diag_errors(&d) != 0) __builtin_trap();
        pd_fuzz_check_model(m);
        pd_costgraph *g = pd_model_costgraph(m);
        if (g) {
            pd_fuzz_check_costgraph(g);
            pd_costgraph_free(g);
        }
    } else if (pd_diag_errors(&d) == 0) {
        __builtin_trap();
    }
    return 0;
}
