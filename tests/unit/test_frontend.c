/* test_frontend.c: the input readers: bundled models, profiles, clusters and graph.txt files
 * load as documented, and every bad-input fixture in tests/data/bad/ gives the right number of
 * file:line:col diagnostics at the right place, without crashing, hanging or leaking. */
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "planner/read/frontend.h"
#include "test.h"

/* ---- helpers: paths under the repository and captured diagnostics ---- */

static char path_buf[8][4096];
static int path_next;

static const char *repo(const char *rel) {
    const char *root = getenv("ROOT");
    char *p = path_buf[path_next++ % 8];
    snprintf(p, 4096, "%s/%s", root && *root ? root : ".", rel);
    return p;
}

static const char *bad(const char *name) {
    char rel[512];
    snprintf(rel, sizeof rel, "tests/data/bad/%s", name);
    return repo(rel);
}

typedef struct {
    pd_diag d;
    FILE *f;
    char text[32768];
} capture;

static void cap_begin(capture *c) {
    memset(c, 0, sizeof *c);
    c->f = tmpfile();
    c->d.out = c->f;
    c->d.max_errors = 200;
}

static const char *cap_end(capture *c) {
    size_t n = 0;
    if (c->f) {
        fflush(c->f);
        rewind(c->f);
        n = fread(c->text, 1, sizeof c->text - 1, c->f);
        fclose(c->f);
        c->f = NULL;
    }
    c->text[n] = 0;
    return c->text;
}

/* Does text hold "path:line:col: error:"? */
static int has_error_at(const char *text, const char *path, int line, int col) {
    char want[4200];
    snprintf(want, sizeof want, "%s:%d:%d: error:", path, line, col);
    return strstr(text, want) != NULL;
}

/* Loads a bad model fixture; checks the error count and one position (and a message word). */
static void expect_model_error(const char *name, int errors, int line, int col,
                               const char *word) {
    capture c;
    pd_model m;
    const char *p = bad(name);
    cap_begin(&c);
    int rc = pd_model_load(p, &m, &c.d);
    const char *t = cap_end(&c);
    CHECK(rc != 0);
    CHECK_EQ_INT(c.d.errors, errors);
    CHECK(has_error_at(t, p, line, col));
    CHECK(strstr(t, word) != NULL);
    if (test_failed_now()) printf("  diagnostics for %s:\n%s", name, t);
}

/* ---- bundled models ---- */

static int64_t params_of(const pd_model *m) {
    int64_t p = 0;
    for (int i = 1; i < m->n_layers; i++) p += m->layers[i].n_weight + m->layers[i].n_bias;
    return p;
}

static int load_ok(const char *rel, pd_model *m) {
    capture c;
    cap_begin(&c);
    int rc = pd_model_load(repo(rel), m, &c.d);
    const char *t = cap_end(&c);
    if (rc || c.d.errors || c.d.warnings) printf("  %s:\n%s", rel, t);
    return rc == 0 && c.d.errors == 0 && c.d.warnings == 0;
}

TEST(bundled_models_match_torchvision_parameter_counts) {
    static const struct {
        const char *file;
        int64_t params;
        int batch;
    } want[] = {
        {"models/vgg16.yaml", 138357544, 64},
        {"models/alexnet.yaml", 61100840, 256},
        {"models/resnet50.yaml", 25557032, 128},
    };
    for (int k = 0; k < 3; k++) {
        pd_model m;
        if (!load_ok(want[k].file, &m)) {
            CHECK(0);
            continue;
        }
        CHECK_EQ_INT(params_of(&m), want[k].params);
        CHECK_EQ_INT(m.batch, want[k].batch);
        CHECK_EQ_INT(m.classes, 1000);
        CHECK(m.input.rank == 3 && m.input.dim[0] == 3 && m.input.dim[1] == 224 &&
              m.input.dim[2] == 224);
        pd_model_free(&m);
    }
}

/* the character models (docs/formats.md): parameters by hand, the anchor's shape */
TEST(character_models_parameter_counts) {
    pd_model m;
    if (load_ok("models/bigram_char.yaml", &m)) {
        CHECK_EQ_INT(params_of(&m), 88 * 64 + (64 * 88 + 88));
        CHECK(m.input.rank == 1 && m.input.dim[0] == 128 && m.classes == 88 && m.batch == 32);
        pd_model_free(&m);
    } else {
        CHECK(0);
    }
    if (load_ok("models/gpt_char.yaml", &m)) {
        /* wte + wpe; per block ln1, qkv, proj, ln2, fc, out; lnf; the head (the anchor ties it
         * to wte: 820,992 there) */
        int64_t block = 2 * 128 + (128 * 384 + 384) + (128 * 128 + 128) + 2 * 128 +
                        (128 * 512 + 512) + (512 * 128 + 128);
        CHECK_EQ_INT(params_of(&m), 88 * 128 + 128 * 128 + 4 * block + 2 * 128 + (128 * 88 + 88));
        CHECK_EQ_INT(params_of(&m), 832344);
        pd_model_free(&m);
    } else {
        CHECK(0);
    }
}

/* GPT-2 (scripts/gen_gpt.py): the parameters counted once, a tied weight at its owner only, as
 * pdplan's per-stage params sum them; GPT-2 small is 124,439,808 (Hugging Face's gpt2) */
static int64_t logical_params_of(const pd_model *m) {
    int64_t p = 0;
    for (int i = 1; i < m->n_layers; i++)
        p += m->layers[i].n_bias + (m->layers[i].tied_to ? 0 : m->layers[i].n_weight);
    return p;
}

TEST(gpt2_parameter_counts) {
    static const struct { const char *path; int64_t L, C, params; } want[] = {
        {"models/gpt2_124m.yaml", 12, 768, 124439808},
        {"models/gpt2_1558m.yaml", 48, 1600, 1557611200},
    };
    for (int k = 0; k < 2; k++) {
        pd_model m;
        if (!load_ok(want[k].path, &m)) {
            CHECK(0);
            continue;
        }
        int64_t C = want[k].C;
        int64_t block = 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C + (C * 4 * C + 4 * C) +
                        (4 * C * C + C);
        CHECK_EQ_INT(logical_params_of(&m), 50257 * C + 1024 * C + want[k].L * block + 2 * C);
        CHECK_EQ_INT(logical_params_of(&m), want[k].params);
        /* the head is the tied copy of wte: bias-free, its weight wte's */
        const pd_layer *head = &m.layers[m.n_layers - 1];
        CHECK(head->tied_to == 1 && head->n_bias == 0 && head->n_weight == 50257 * C);
        CHECK(m.input.rank == 1 && m.input.dim[0] == 1024 && m.classes == 50257 && m.batch == 8);
        pd_model_free(&m);
    }
}

TEST(fmnist_cnn_is_balanced_and_small) {
    pd_model m;
    if (!load_ok("models/fmnist_cnn.yaml", &m)) {
        CHECK(0);
        return;
    }
    /* parameters by hand: conv (out*in*9 + out) x4, then 3136*128+128 and 128*10+10 */
    int64_t want = (32 * 1 * 9 + 32) + (32 * 32 * 9 + 32) + (64 * 32 * 9 + 64) +
                   (64 * 64 * 9 + 64) + (3136 * 128 + 128) + (128 * 10 + 10);
    CHECK_EQ_INT(params_of(&m), want);
    double total = 0, biggest = 0;
    for (int i = 1; i < m.n_layers; i++) {
        total += m.layers[i].flops_fwd;
        if (m.layers[i].flops_fwd > biggest) biggest = m.layers[i].flops_fwd;
    }
    CHECK(biggest / total <= 0.40);
    CHECK(total / 2 >= 4e6 && total / 2 <= 6e6); /* multiply-adds per sample */
    CHECK_EQ_INT(m.batch, 64);
    CHECK_EQ_INT(m.classes, 10);
    CHECK(strcmp(m.dataset, "fashion-mnist") == 0);
    CHECK(m.optimizer == PD_OPT_SGD);
    CHECK_CLOSE(m.lr, 0.02, 0, 1e-12);
    CHECK_CLOSE(m.momentum, 0.9, 0, 1e-12);
    pd_model_free(&m);
}

TEST(resnet50_is_a_dag_and_its_cost_graph_goes_forward) {
    pd_model m;
    if (!load_ok("models/resnet50.yaml", &m)) {
        CHECK(0);
        return;
    }
    int adds = 0, edges = 0;
    for (int i = 1; i < m.n_layers; i++) {
        if (m.layers[i].op == PD_OP_ADD) {
            adds++;
            CHECK_EQ_INT(m.layers[i].n_inputs, 2);
        }
        for (int k = 0; k < m.layers[i].n_inputs; k++) {
            CHECK(m.layers[i].inputs[k] < i);
            edges += m.layers[i].inputs[k] != 0;
        }
    }
    CHECK_EQ_INT(adds, 16); /* 3 + 4 + 6 + 3 bottlenecks */
    pd_costgraph *g = pd_model_costgraph(&m);
    CHECK(g != NULL);
    if (g) {
        CHECK_EQ_INT(g->n, m.n_layers - 1);
        CHECK_EQ_INT(g->n_edges, edges);
        CHECK(g->n_edges > g->n - 1); /* more edges than a chain */
        for (int e = 0; e < g->n_edges; e++) CHECK(g->src[e] < g->dst[e]);
        CHECK_CLOSE(g->input_bytes, 4.0 * 128 * 3 * 224 * 224, 0, 1e-12);
        for (int v = 0; v < g->n; v++) {
            const pd_layer *L = &m.layers[v + 1];
            CHECK(strcmp(g->name[v], L->name) == 0);
            CHECK_CLOSE(g->act_bytes[v], 4.0 * 128 * (double)pd_shape_numel(&L->out), 0, 1e-12);
            CHECK_CLOSE(g->param_bytes[v], 4.0 * (double)(L->n_weight + L->n_bias), 0, 1e-12);
        }
        pd_costgraph_free(g);
    }
    pd_model_free(&m);
}

/* ---- profiles and estimates ---- */

TEST(h200_profiles_cover_vgg16_and_alexnet) {
    static const char *const pairs[2][2] = {{"models/vgg16.yaml", "profiles/vgg16.h200.yaml"},
                                            {"models/alexnet.yaml", "profiles/alexnet.h200.yaml"}};
    for (int k = 0; k < 2; k++) {
        pd_model m;
        if (!load_ok(pairs[k][0], &m)) {
            CHECK(0);
            continue;
        }
        capture c;
        cap_begin(&c);
        int rc = pd_profile_apply(repo(pairs[k][1]), &m, &c.d);
        const char *t = cap_end(&c);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(c.d.errors, 0);
        CHECK_EQ_INT(c.d.warnings, 0); /* activation and parameter bytes agree with shapes */
        if (c.d.errors || c.d.warnings) printf("%s", t);
        CHECK_EQ_INT(m.costs_estimated, 0);
        for (int i = 1; i < m.n_layers; i++) CHECK(m.layers[i].fwd_ms > 0);
        if (k == 0) {
            CHECK(strcmp(m.layers[1].name, "features.0") == 0);
            CHECK_CLOSE(m.layers[1].fwd_ms, 1.33114, 0, 1e-12);
            CHECK_CLOSE(m.layers[1].bwd_ms, 2.24723, 0, 1e-12);
        }
        pd_model_free(&m);
    }
}

TEST(profile_at_another_batch_is_scaled_with_a_warning) {
    /* the fmnist model is batch 64; a profile measured at batch 32 doubles */
    char path[] = "/tmp/pd_profile_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    static const char *const names[] = {"conv1", "relu1", "pool1", "conv2", "relu2",
                                        "pool2", "conv3", "relu3", "conv4", "relu4",
                                        "flatten", "fc1", "relu5", "fc2"};
    fprintf(f, "pd_profile: 1\ndevice: cpu\nbatch: 32\nlayers:\n");
    for (int i = 0; i < 14; i++)
        fprintf(f, "  - {name: %s, forward_ms: %d.25, backward_ms: %d.5}\n", names[i], i, i);
    fclose(f);
    pd_model m;
    if (load_ok("models/fmnist_cnn.yaml", &m)) {
        capture c;
        cap_begin(&c);
        int rc = pd_profile_apply(path, &m, &c.d);
        cap_end(&c);
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(c.d.warnings, 1);
        for (int i = 1; i < m.n_layers; i++) {
            CHECK_CLOSE(m.layers[i].fwd_ms, 2 * ((i - 1) + 0.25), 0, 1e-12);
            CHECK_CLOSE(m.layers[i].bwd_ms, 2 * ((i - 1) + 0.5), 0, 1e-12);
        }
        CHECK(strcmp(m.cost_source, path) == 0);
        pd_model_free(&m);
    } else {
        CHECK(0);
    }
    remove(path);
}

TEST(estimates_follow_flops_and_bytes) {
    pd_model m;
    if (!load_ok("models/fmnist_cnn.yaml", &m)) {
        CHECK(0);
        return;
    }
    capture c;
    cap_begin(&c);
    CHECK_EQ_INT(pd_estimate_costs(&m, "cpu", &c.d), 0);
    CHECK_EQ_INT(m.costs_estimated, 1);
    CHECK(strcmp(m.cost_source, "estimate:cpu") == 0);
    /* conv2 (layer 4) is compute bound on the cpu: 64 * flops / 50 GFLOP/s + 0.005 ms */
    const pd_layer *conv2 = &m.layers[4];
    CHECK(strcmp(conv2->name, "conv2") == 0);
    CHECK_CLOSE(conv2->fwd_ms, 1e3 * 64 * conv2->flops_fwd / 50e9 + 0.005, 0, 1e-9);
    CHECK(conv2->bwd_ms > 1.9 * conv2->fwd_ms && conv2->bwd_ms < 2.1 * conv2->fwd_ms);
    /* relu1 (layer 2) is memory bound: reads and writes 64*32*28*28 floats at 10 GB/s */
    const pd_layer *relu = &m.layers[2];
    CHECK_CLOSE(relu->fwd_ms, 1e3 * 4.0 * 64 * 2 * 32 * 28 * 28 / 10e9 + 0.005, 0, 1e-9);
    double cpu_total = 0, h200_total = 0;
    for (int i = 1; i < m.n_layers; i++) cpu_total += m.layers[i].fwd_ms;
    CHECK_EQ_INT(pd_estimate_costs(&m, "h200", &c.d), 0);
    for (int i = 1; i < m.n_layers; i++) h200_total += m.layers[i].fwd_ms;
    CHECK(h200_total < cpu_total / 10);
    CHECK_EQ_INT(pd_estimate_costs(&m, "tpu9", &c.d), 1);
    const char *t = cap_end(&c);
    CHECK_EQ_INT(c.d.errors, 1);
    CHECK(strstr(t, "unknown device 'tpu9'") != NULL);
    pd_model_free(&m);
}

/* ---- clusters ---- */

TEST(bundled_clusters_load) {
    static const struct {
        const char *file;
        int levels, workers;
        double bw0, bw1, memory;
    } want[] = {
        {"clusters/local.yaml", 1, 2, 10e9, 0, 0},
        {"clusters/cluster-a.yaml", 2, 16, 10e9, 1.25e9, 16e9},
        {"clusters/cluster-b.yaml", 2, 16, 25e9, 3.125e9, 16e9},
    };
    for (int k = 0; k < 3; k++) {
        pd_cluster cl;
        capture c;
        cap_begin(&c);
        int rc = pd_cluster_load(repo(want[k].file), &cl, &c.d);
        const char *t = cap_end(&c);
        CHECK_EQ_INT(rc, 0);
        if (rc) printf("%s", t);
        CHECK_EQ_INT(cl.n_levels, want[k].levels);
        CHECK_EQ_INT(pd_cluster_workers(&cl), want[k].workers);
        CHECK_CLOSE(cl.bandwidth[0], want[k].bw0, 0, 1e-15);
        if (want[k].levels > 1) CHECK_CLOSE(cl.bandwidth[1], want[k].bw1, 0, 1e-15);
        CHECK_CLOSE(cl.memory_bytes, want[k].memory, 0, 1e-15);
    }
}

TEST(cluster_flags_and_default) {
    pd_cluster cl;
    capture c;
    cap_begin(&c);
    int counts[2] = {4, 4};
    double bws[2] = {4e+09, 1.25e9};
    CHECK_EQ_INT(pd_cluster_from_flags(&cl, counts, 2, bws, 2, 16e9, &c.d), 0);
    CHECK_EQ_INT(pd_cluster_workers(&cl), 16);
    CHECK_CLOSE(cl.bandwidth[0], 4e9, 0, 0);
    CHECK_CLOSE(cl.bandwidth[1], 1.25e9, 0, 0);
    CHECK_CLOSE(cl.memory_bytes, 16e9, 0, 0);
    CHECK_EQ_INT(pd_cluster_from_flags(&cl, counts, 2, NULL, 0, 0, &c.d), 0);
    CHECK_CLOSE(cl.bandwidth[0], 1e9, 0, 0); /* PipeDream's default */
    CHECK_CLOSE(cl.bandwidth[1], 1e9, 0, 0);
    cap_end(&c);
    CHECK_EQ_INT(c.d.errors, 0);
    pd_cluster_default(&cl);
    CHECK_EQ_INT(cl.n_levels, 1);
    CHECK(cl.count[0] >= 1);
    CHECK(strcmp(cl.device, "cpu") == 0);
    CHECK_CLOSE(cl.bandwidth[0], 10e9, 0, 0);
}

static void expect_flag_errors(const int *counts, int n, const double *bws, int nb, double mem,
                               int errors, const char *word) {
    pd_cluster cl;
    capture c;
    cap_begin(&c);
    int rc = pd_cluster_from_flags(&cl, counts, n, bws, nb, mem, &c.d);
    const char *t = cap_end(&c);
    CHECK(rc != 0);
    CHECK_EQ_INT(c.d.errors, errors);
    CHECK(strncmp(t, "pdplan: error: ", 15) == 0);
    CHECK(strstr(t, word) != NULL);
    if (test_failed_now()) printf("%s", t);
}

TEST(bad_cluster_flags) {
    int zero[2] = {4, 0}, neg[1] = {-3}, ok[2] = {2, 2};
    double bw_zero[2] = {1e9, 0}, bw_nan[2] = {NAN, -1}, one[1] = {1e9};
    expect_flag_errors(zero, 2, NULL, 0, 0, 1, "level 2 has 0 workers");
    expect_flag_errors(neg, 1, NULL, 0, 0, 1, "level 1 has -3 workers");
    expect_flag_errors(ok, 2, bw_zero, 2, 0, 1, "level 2 must be a positive");
    expect_flag_errors(ok, 2, bw_nan, 2, 0, 2, "bandwidth nan of level 1");
    expect_flag_errors(ok, 2, one, 1, 0, 1, "-n gives 2 levels but -b gives 1");
    expect_flag_errors(ok, 0, NULL, 0, 0, 1, "-n needs 1 to");
    expect_flag_errors(ok, 2, NULL, 0, -5, 1, "--memory");
}

/* ---- graph.txt ---- */

TEST(graphtxt_chain_in_file_order_is_sorted_topologically) {
    capture c;
    cap_begin(&c);
    pd_costgraph *g = pd_graphtxt_load(repo("tests/data/graphtxt/chain.txt"), &c.d);
    cap_end(&c);
    CHECK(g != NULL);
    if (!g) return;
    CHECK_EQ_INT(g->n, 3); /* the Input node is removed */
    CHECK(strcmp(g->name[0], "node2") == 0 && strcmp(g->name[1], "node3") == 0 &&
          strcmp(g->name[2], "node4") == 0);
    CHECK_CLOSE(g->input_bytes, 602112.0, 0, 0);
    CHECK_CLOSE(g->input_ms, 0.5, 0, 0);
    CHECK_CLOSE(g->fwd_ms[0], 1.25, 0, 0);
    CHECK_CLOSE(g->bwd_ms[0], 2.5, 0, 0);
    CHECK_CLOSE(g->act_bytes[0], 12845056.0, 0, 0);
    CHECK_CLOSE(g->param_bytes[2], 2600.0, 0, 0);
    CHECK_EQ_INT(g->n_edges, 2);
    CHECK(g->src[0] == 0 && g->dst[0] == 1 && g->src[1] == 1 && g->dst[1] == 2);
    pd_costgraph_free(g);
}

TEST(graphtxt_dag_sums_lists_drops_getitem_and_breaks_ties_by_file_order) {
    capture c;
    cap_begin(&c);
    pd_costgraph *g = pd_graphtxt_load(repo("tests/data/graphtxt/diamond.txt"), &c.d);
    const char *t = cap_end(&c);
    CHECK(g != NULL);
    if (!g) {
        printf("%s", t);
        return;
    }
    /* file order: node1(Input) node5 node2 node4 node3 node6 node7(__getitem__ sink) */
    static const char *const order[] = {"node2", "node4", "node3", "node5", "node6"};
    CHECK_EQ_INT(g->n, 5);
    for (int i = 0; i < 5 && i < g->n; i++) CHECK(strcmp(g->name[i], order[i]) == 0);
    CHECK_CLOSE(g->act_bytes[4], 128.0, 0, 0); /* [100.0; 28.0] summed */
    CHECK_CLOSE(g->input_bytes, 1000.0, 0, 0);
    /* edges (node2->node3 given twice in the file counts once) */
    static const int want[5][2] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}, {3, 4}};
    CHECK_EQ_INT(g->n_edges, 5);
    for (int e = 0; e < 5 && e < g->n_edges; e++)
        CHECK(g->src[e] == want[e][0] && g->dst[e] == want[e][1]);
    pd_costgraph_free(g);
}

static void expect_graph_error(const char *name, int errors, int line, int col,
                               const char *word) {
    capture c;
    const char *p = bad(name);
    cap_begin(&c);
    pd_costgraph *g = pd_graphtxt_load(p, &c.d);
    const char *t = cap_end(&c);
    CHECK(g == NULL);
    pd_costgraph_free(g);
    CHECK_EQ_INT(c.d.errors, errors);
    CHECK(has_error_at(t, p, line, col));
    CHECK(strstr(t, word) != NULL);
    if (test_failed_now()) printf("  diagnostics for %s:\n%s", name, t);
}

TEST(bad_graphtxt) {
    expect_graph_error("graph_malformed.txt", 2, 3, 1, "expected '<node> -- <description>");
    expect_graph_error("graph_malformed.txt", 2, 8, 2, "edge line must be");
    expect_graph_error("graph_truncated.txt", 1, 3, 84, "expected 'activation_size='");
    expect_graph_error("graph_dangling.txt", 2, 7, 11, "edge to unknown node 'node7'");
    expect_graph_error("graph_dangling.txt", 2, 8, 2, "edge from unknown node 'node9'");
    expect_graph_error("graph_duplicate_node.txt", 1, 4, 1, "duplicate node id 'node3'");
    expect_graph_error("graph_cycle.txt", 1, 2, 1, "cycle through 3 nodes");
    expect_graph_error("graph_negative_nan.txt", 2, 2, 68, "not -1.250");
    expect_graph_error("graph_negative_nan.txt", 2, 3, 77, "not nan");
    expect_graph_error("graph_empty.txt", 1, 1, 1, "no nodes");
    expect_graph_error("graph_binary.txt", 1, 1, 10, "binary file");
    capture c;
    cap_begin(&c);
    CHECK(pd_graphtxt_load(bad("no_such_file.txt"), &c.d) == NULL);
    cap_end(&c);
    CHECK_EQ_INT(c.d.errors, 1);
}

/* ---- bad YAML of every kind ---- */

TEST(bad_yaml_documents) {
    expect_model_error("yaml_syntax.yaml", 1, 9, 1, "YAML syntax error");
    expect_model_error("empty.yaml", 1, 1, 1, "empty file");
    expect_model_error("binary.yaml", 1, 2, 8, "binary file");
    expect_model_error("alias_loop.yaml", 2, 3, 13, "aliases (*x) are not supported");
    expect_model_error("alias_loop.yaml", 2, 3, 9, "anchors (&x) are not supported");
    expect_model_error("alias_bomb.yaml", 5, 3, 4, "anchors (&a) are not supported");
    expect_model_error("deep_nesting.yaml", 1, 3, 72, "nesting deeper than 64");
    expect_model_error("duplicate_key.yaml", 1, 6, 1, "duplicate key 'batch' (first at line 5)");
}

TEST(bad_models) {
    expect_model_error("unknown_op.yaml", 1, 8, 19, "unknown op 'softmax'");
    expect_model_error("missing_attr.yaml", 1, 7, 5, "missing the required attribute "
                       "'out_channels'");
    expect_model_error("ill_typed_attr.yaml", 1, 8, 42, "'out_features' must be an integer");
    expect_model_error("shape_mismatch.yaml", 1, 8, 5, "linear needs a rank-1 input");
    expect_model_error("add_shape_mismatch.yaml", 1, 9, 5, "add needs inputs of equal shape");
    expect_model_error("unknown_layer.yaml", 1, 8, 55, "unknown input layer 'flat'");
    expect_model_error("duplicate_layer.yaml", 1, 8, 12, "duplicate layer name 'f'");
    expect_model_error("cycle.yaml", 1, 8, 34, "cycle: layer 'a' uses 'b'");
    expect_model_error("forward_ref.yaml", 1, 8, 34, "which is defined later");
    expect_model_error("wrong_classes.yaml", 1, 8, 5, "classes is 10");
    expect_model_error("unused_layer.yaml", 1, 8, 5, "layer 'r' is never used");
    expect_model_error("adamw_schedule.yaml", 1, 6, 60, "'lr_decay_iters' (5) must be past "
                       "'warmup_iters' (10)");
}

TEST(adamw_schedule_and_clipping_keys) {
    pd_model m;
    CHECK(load_ok("tests/data/models/tiny_adamw.yaml", &m));
    CHECK(m.optimizer == PD_OPT_ADAMW && m.lr == 0.001 && m.weight_decay == 0.01);
    CHECK(m.warmup_iters == 10 && m.lr_decay_iters == 100 && m.min_lr == 1e-4);
    CHECK(m.clip_grad_norm == 1.0 && m.beta1 == 0.9 && m.beta2 == 0.999);
    pd_model_free(&m);
    CHECK(load_ok("models/fmnist_cnn.yaml", &m));
    CHECK(m.warmup_iters == 0 && m.lr_decay_iters == 0 && m.clip_grad_norm == 0);
    pd_model_free(&m);
}

TEST(several_errors_are_reported_at_once) {
    const char *p = bad("several_errors.yaml");
    expect_model_error("several_errors.yaml", 5, 5, 8, "'batch' must be between 1");
    capture c;
    pd_model m;
    cap_begin(&c);
    CHECK(pd_model_load(p, &m, &c.d) != 0);
    const char *t = cap_end(&c);
    CHECK(has_error_at(t, p, 7, 55)); /* unknown key 'strides' */
    CHECK(has_error_at(t, p, 8, 5));  /* maxpool2d without kernel */
    CHECK(has_error_at(t, p, 9, 19)); /* unknown op 'swish' */
    CHECK(has_error_at(t, p, 10, 42)); /* out_features: 2.5 */
}

static void expect_profile_error(const char *name, int errors, int line, int col,
                                 const char *word) {
    pd_model m;
    if (!load_ok("models/fmnist_cnn.yaml", &m)) {
        CHECK(0);
        return;
    }
    capture c;
    const char *p = bad(name);
    cap_begin(&c);
    CHECK(pd_profile_apply(p, &m, &c.d) != 0);
    const char *t = cap_end(&c);
    CHECK_EQ_INT(c.d.errors, errors);
    CHECK(has_error_at(t, p, line, col));
    CHECK(strstr(t, word) != NULL);
    CHECK_EQ_INT(m.layers[1].fwd_ms, 0); /* nothing applied */
    if (test_failed_now()) printf("  diagnostics for %s:\n%s", name, t);
    pd_model_free(&m);
}

TEST(bad_profiles) {
    expect_profile_error("profile_negative.yaml", 1, 8, 31, "must be >= 0 ms");
    expect_profile_error("profile_nan.yaml", 1, 16, 47, "must be a finite number");
    expect_profile_error("profile_missing_layer.yaml", 1, 5, 3, "'relu3' of model 'fmnist_cnn' "
                         "is missing");
    expect_profile_error("profile_unknown_layer.yaml", 1, 11, 12, "'conv9' is not in model");
}

static void expect_cluster_error(const char *name, int errors, int line, int col,
                                 const char *word) {
    pd_cluster cl;
    capture c;
    const char *p = bad(name);
    cap_begin(&c);
    CHECK(pd_cluster_load(p, &cl, &c.d) != 0);
    const char *t = cap_end(&c);
    CHECK_EQ_INT(c.d.errors, errors);
    CHECK(has_error_at(t, p, line, col));
    CHECK(strstr(t, word) != NULL);
    if (test_failed_now()) printf("  diagnostics for %s:\n%s", name, t);
}

TEST(bad_clusters) {
    expect_cluster_error("cluster_zero_workers.yaml", 1, 4, 13, "'count' must be between 1");
    expect_cluster_error("cluster_bandwidth_zero.yaml", 1, 5, 27, "'bandwidth' must be > 0");
    expect_cluster_error("cluster_bandwidth_negative.yaml", 2, 5, 27, "'bandwidth' must be > 0");
    expect_cluster_error("cluster_bandwidth_negative.yaml", 2, 6, 27, "finite number");
    /* a model file is not a cluster: unknown keys and the missing version are all reported */
    pd_cluster cl;
    capture c;
    cap_begin(&c);
    CHECK(pd_cluster_load(repo("models/fmnist_cnn.yaml"), &cl, &c.d) != 0);
    cap_end(&c);
    CHECK(c.d.errors >= 5);
}

TEST(profile_for_another_model_warns_and_fails) {
    pd_model m;
    if (!load_ok("models/vgg16.yaml", &m)) {
        CHECK(0);
        return;
    }
    capture c;
    cap_begin(&c);
    CHECK(pd_profile_apply(repo("profiles/alexnet.h200.yaml"), &m, &c.d) != 0);
    const char *t = cap_end(&c);
    CHECK(strstr(t, "warning: profile is for model 'alexnet', not 'vgg16'") != NULL);
    CHECK(c.d.errors >= 1); /* alexnet's layers differ from vgg16's */
    pd_model_free(&m);
}

/* Writes bytes to a temporary file; returns its path (static storage). */
static const char *write_temp(const char *bytes, size_t n, const char *suffix) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/pd_fuzz_XXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
    return path;
}

static char *slurp(const char *rel, size_t *n) {
    FILE *f = fopen(repo(rel), "rb");
    if (!f) return NULL;
    char *b = malloc(1 << 16);
    *n = fread(b, 1, (1 << 16) - 1, f);
    fclose(f);
    return b;
}

/* Every truncation and a few hundred random corruptions of good inputs: the readers either
 * succeed or report errors; ASan/UBSan and the leak checker catch the rest. */
TEST(truncated_and_corrupted_inputs_never_crash) {
    static const char *const files[] = {"models/fmnist_cnn.yaml", "clusters/cluster-a.yaml",
                                        "tests/data/graphtxt/diamond.txt"};
    uint64_t seed = 12345;
    for (int k = 0; k < 3; k++) {
        size_t n = 0;
        char *orig = slurp(files[k], &n);
        CHECK(orig != NULL);
        if (!orig) continue;
        char *buf = malloc(n + 1);
        int is_txt = k == 2, failures = 0;
        for (int trial = 0; trial < (int)n + 300; trial++) {
            size_t len = n;
            memcpy(buf, orig, n);
            if (trial < (int)n) {
                len = (size_t)trial; /* every prefix */
            } else {
                for (int j = 0; j < 4; j++) { /* four random byte changes */
                    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                    size_t at = (size_t)(seed >> 33) % n;
                    static const char pool[] = "[]{}:,-&*!|>#\"' \n\t0x9e.";
                    buf[at] = pool[(seed >> 13) % (sizeof pool - 1)];
                }
            }
            const char *p = write_temp(buf, len, is_txt ? ".txt" : ".yaml");
            if (!p) {
                CHECK(0);
                break;
            }
            capture c;
            cap_begin(&c);
            if (k == 0) {
                pd_model m;
                if (pd_model_load(p, &m, &c.d) == 0) pd_model_free(&m);
                else failures++;
            } else if (k == 1) {
                pd_cluster cl;
                failures += pd_cluster_load(p, &cl, &c.d) != 0;
            } else {
                pd_costgraph *g = pd_graphtxt_load(p, &c.d);
                failures += g == NULL;
                pd_costgraph_free(g);
            }
            cap_end(&c);
            remove(p);
        }
        CHECK(failures > (int)n / 2); /* most damaged inputs are rejected */
        free(buf);
        free(orig);
    }
}
