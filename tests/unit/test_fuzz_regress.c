/* test_fuzz_regress.c: past fuzz findings, replayed straight through the readers (no clang
 * needed): every input in tests/data/fuzz_regress/<target>/ is rejected with at least one
 * diagnostic and without a sanitizer report; and a profile of a model with very many layers
 * applies in O(n log n) time (it was O(n^2): 81 s for 100k layers). */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "planner/read/frontend.h"
#include "planner/read/onnx.h"
#include "planner/read/yaml_util.h"
#include "test.h"

#define REG "tests/data/fuzz_regress/"

typedef int (*reader_fn)(const char *path, pd_diag *d);

static int read_model(const char *path, pd_diag *d) {
    pd_model m = {0};
    int r = pd_model_load(path, &m, d);
    if (r == 0) r = pd_estimate_costs(&m, "cpu", d);
    pd_model_free(&m);
    return r;
}

static int read_profile(const char *path, pd_diag *d) {
    /* the model named on the first line ("# model: NAME"), else fmnist_cnn */
    char name[64] = "fmnist_cnn", line[128] = "", mpath[256];
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(line, sizeof line, f) && sscanf(line, "# model: %63[a-z0-9_]", name) != 1)
            strcpy(name, "fmnist_cnn");
        fclose(f);
    }
    snprintf(mpath, sizeof mpath, "models/%s.yaml", name);
    pd_model m = {0};
    pd_diag md = {0};
    if (pd_model_load(mpath, &m, &md)) {
        pd_model_free(&m);
        return -1; /* the model itself did not load: a broken fixture */
    }
    int r = pd_profile_apply(path, &m, d);
    pd_model_free(&m);
    return r;
}

static int read_cluster(const char *path, pd_diag *d) {
    pd_cluster c;
    return pd_cluster_load(path, &c, d);
}

static int read_onnx(const char *path, pd_diag *d) {
    pd_text t = pd_read_text(path, PD_ONNX_MAX_BYTES, d);
    pd_model m;
    pd_onnx_weights w;
    int r = t.text ? pd_onnx_load_bytes(path, t.text, t.len, &m, &w, d) : 1;
    if (r == 0) {
        pd_model_free(&m);
        pd_onnx_weights_free(&w);
    }
    free(t.text);
    return r;
}

static int read_graph(const char *path, pd_diag *d) {
    pd_costgraph *g = pd_graphtxt_load(path, d);
    pd_costgraph_free(g);
    return g ? 0 : 1;
}

/* Every file of dir is rejected with a diagnostic. Returns the number of files. */
static int replay(const char *dir, reader_fn fn) {
    DIR *dp = opendir(dir);
    int n = 0;
    if (!dp) return 0;
    FILE *sink = fopen("/dev/null", "w");
    for (struct dirent *e; (e = readdir(dp)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "%s%s", dir, e->d_name);
        pd_diag d = {0};
        d.out = sink;
        int r = fn(path, &d);
        if (!(r == 1 && pd_diag_errors(&d) > 0))
            test_fail(__FILE__, __LINE__, "%s: status %d with %d errors, want a rejection", path,
                      r, pd_diag_errors(&d));
        n++;
    }
    if (sink) fclose(sink);
    closedir(dp);
    return n;
}

TEST(fuzz_findings_are_diagnostics) {
    int n = replay(REG "fuzz_model_yaml/", read_model) +
            replay(REG "fuzz_profile_yaml/", read_profile) +
            replay(REG "fuzz_cluster_yaml/", read_cluster) +
            replay(REG "fuzz_graphtxt/", read_graph) + replay(REG "fuzz_onnx/", read_onnx);
    if (n == 0) SKIP("no inputs under " REG " (run from the repository root)");
    CHECK(n >= 7);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

TEST(profile_of_many_layers_is_not_quadratic) {
    enum { N = 40000 };
    char mpath[] = "/tmp/pd_many_model_XXXXXX", ppath[] = "/tmp/pd_many_prof_XXXXXX";
    int mfd = mkstemp(mpath), pfd = mkstemp(ppath);
    CHECK(mfd >= 0 && pfd >= 0);
    if (mfd < 0 || pfd < 0) return;
    FILE *mf = fdopen(mfd, "w"), *pf = fdopen(pfd, "w");
    fprintf(mf, "pd: 1\nname: many\ninput: [16]\nclasses: 16\nbatch: 8\ndataset: synthetic\n"
                "layers:\n");
    fprintf(pf, "pd_profile: 1\nbatch: 8\nlayers:\n");
    for (int i = 0; i < N; i++) {
        fprintf(mf, "  - {name: r%d, op: relu}\n", i);
        /* reversed order: the old linear search paid the most for it */
        fprintf(pf, "  - {name: r%d, forward_ms: %d, backward_ms: 1}\n", N - 1 - i, N - 1 - i);
    }
    fclose(mf);
    fclose(pf);
    pd_model m = {0};
    pd_diag d = {0};
    CHECK_EQ_INT(pd_model_load(mpath, &m, &d), 0);
    double t0 = now_s();
    CHECK_EQ_INT(pd_profile_apply(ppath, &m, &d), 0);
    double dt = now_s() - t0;
    /* each layer got its own line's time */
    if (m.n_layers == N + 1) {
        CHECK_CLOSE(m.layers[1].fwd_ms, 0, 0, 0);
        CHECK_CLOSE(m.layers[N].fwd_ms, N - 1, 0, 0);
    }
    /* O(n log n) takes well under a second here even under ASan; the O(n^2) search took ~20 s */
    if (!(dt < 8.0)) test_fail(__FILE__, __LINE__, "profile of %d layers took %.1f s", N, dt);
    pd_model_free(&m);
    remove(mpath);
    remove(ppath);
}
