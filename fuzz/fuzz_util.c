/* fuzz_util.c: memfd-backed input files, a quiet diagnostics sink and invariant checks for the
 * fuzz harnesses (see fuzz_util.h). */
#include "fuzz_util.h"

#include "planner/read/frontend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

const char *pd_fuzz_file(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("pd_fuzz_input", 0);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        FUZZ_CHECK(w > 0);
        done += (size_t)w;
    }
    return path;
}

pd_diag pd_fuzz_diag(void) {
    static FILE *sink;
    if (!sink) {
        sink = getenv("PD_FUZZ_VERBOSE") ? stderr : fopen("/dev/null", "w");
        FUZZ_CHECK(sink != NULL);
    }
    pd_diag d = {0};
    d.out = sink;
    return d;
}

static int finite_nonneg(double x) { return isfinite(x) && x >= 0; }
static int time_ok(double ms) { return ms >= 0 && ms <= PD_INPUT_MAX_MS; }
static int bytes_ok(double b) { return b >= 0 && b <= PD_INPUT_MAX_BYTES; }

void pd_fuzz_check_model(const pd_model *m) {
    FUZZ_CHECK(m->n_layers >= 2 && m->layers != NULL);
    FUZZ_CHECK(m->layers[0].op == PD_OP_INPUT);
    FUZZ_CHECK(m->batch >= 1 && m->classes >= 1);
    for (int i = 0; i < m->n_layers; i++) {
        const pd_layer *L = &m->layers[i];
        FUZZ_CHECK((int)L->op >= 0 && L->op < PD_OP_COUNT);
        FUZZ_CHECK(i == 0 || L->op != PD_OP_INPUT);
        FUZZ_CHECK(L->n_inputs >= 0 && L->n_inputs <= PD_MAX_INPUTS);
        FUZZ_CHECK(i == 0 || L->n_inputs >= 1);
        for (int k = 0; k < L->n_inputs; k++)
            FUZZ_CHECK(L->inputs[k] >= 0 && L->inputs[k] < i);
        FUZZ_CHECK(L->out.rank >= 1 && L->out.rank <= 3);
        for (int k = 0; k < L->out.rank; k++) FUZZ_CHECK(L->out.dim[k] >= 1);
        FUZZ_CHECK(pd_shape_numel(&L->out) >= 1);
        FUZZ_CHECK(L->n_weight >= 0 && L->n_bias >= 0 && L->n_buffer >= 0);
        FUZZ_CHECK(finite_nonneg(L->flops_fwd) && finite_nonneg(L->flops_bwd));
        FUZZ_CHECK(time_ok(L->fwd_ms) && time_ok(L->bwd_ms));
    }
    /* the last layer produces the class scores (per token for a sequence) */
    const pd_shape *last = &m->layers[m->n_layers - 1].out;
    FUZZ_CHECK(last->rank <= 2 && last->dim[last->rank - 1] == m->classes);
}

void pd_fuzz_check_costgraph(const pd_costgraph *g) {
    FUZZ_CHECK(g->n >= 1 && g->n_edges >= 0);
    for (int i = 0; i < g->n; i++) {
        FUZZ_CHECK(g->name[i] != NULL);
        FUZZ_CHECK(time_ok(g->fwd_ms[i]) && time_ok(g->bwd_ms[i]));
        FUZZ_CHECK(bytes_ok(g->act_bytes[i]) && bytes_ok(g->param_bytes[i]));
    }
    for (int e = 0; e < g->n_edges; e++)
        FUZZ_CHECK(g->src[e] >= 0 && g->src[e] < g->dst[e] && g->dst[e] < g->n);
    FUZZ_CHECK(bytes_ok(g->input_bytes) && time_ok(g->input_ms));
}

void pd_fuzz_check_cluster(const pd_cluster *c) {
    FUZZ_CHECK(c->n_levels >= 1 && c->n_levels <= PD_MAX_LEVELS);
    for (int l = 0; l < c->n_levels; l++) {
        FUZZ_CHECK(c->count[l] >= 1);
        FUZZ_CHECK(isfinite(c->bandwidth[l]) && c->bandwidth[l] >= PD_INPUT_MIN_BANDWIDTH);
    }
    FUZZ_CHECK(pd_cluster_workers(c) >= 1);
    FUZZ_CHECK(finite_nonneg(c->memory_bytes));
}
