/* profile.c: applies a measured profile (pd_profile: 1) to a model: every layer's forward and
 * backward milliseconds per minibatch, scaled linearly when the profile's batch differs from the
 * model's. Optional activation_bytes / parameter_bytes are checked against the shapes (a mismatch
 * is a warning: the profile may have been measured on another variant of the model). */
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "yaml_util.h"

static const char *const profile_keys[] = {"pd_profile", "device", "batch", "model", "layers",
                                           NULL};
static const char *const entry_keys[] = {"name", "forward_ms", "backward_ms", "activation_bytes",
                                         "parameter_bytes", NULL};

/* Layer names sorted, so that a profile of a model with very many layers resolves in
 * O(n log n), not O(n^2). */
typedef struct {
    const char *name;
    int index;
} name_ref;

static int cmp_name_ref(const void *a, const void *b) {
    return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

/* Index of layer name in m (>= 1), or -1. */
static int find_layer(const name_ref *sorted, int n_sorted, const char *name) {
    name_ref key = {name, 0};
    const name_ref *r = bsearch(&key, sorted, (size_t)n_sorted, sizeof *sorted, cmp_name_ref);
    return r ? r->index : -1;
}

/* A time in ms: finite and >= 0. */
static int get_time(pd_yaml *y, yaml_node_t *e, const char *key, double *out) {
    yaml_node_t *v = pd_yaml_require(y, e, key, "a profile layer");
    if (!v) return 1;
    if (pd_yaml_double(y, v, key, out)) return 1;
    if (*out < 0) {
        pd_yaml_error(y, v, "'%s' must be >= 0 ms, not %g", key, *out);
        return 1;
    }
    return 0;
}

static void check_bytes(pd_yaml *y, yaml_node_t *e, const char *key, double want,
                        const char *lname, int *errors) {
    yaml_node_t *v = pd_yaml_get(y, e, key, NULL);
    double got;
    if (!v) return;
    if (pd_yaml_double(y, v, key, &got)) {
        (*errors)++;
        return;
    }
    if (got < 0) {
        pd_yaml_error(y, v, "'%s' must be >= 0", key);
        (*errors)++;
        return;
    }
    if (got != want)
        pd_diag_warning(y->d, y->file, pd_yaml_line(v), pd_yaml_col(v),
                        "layer '%s': %s is %.17g in the profile but %.17g from the model's "
                        "shapes; using the model's", lname, key, got, want);
}

int pd_profile_apply(const char *path, pd_model *m, pd_diag *d) {
    pd_text t = pd_read_text(path, PD_YAML_MAX_BYTES, d);
    int rc = t.text ? pd_profile_apply_text(path, t.text, t.len, m, d) : 1;
    free(t.text);
    return rc;
}

int pd_profile_apply_text(const char *path, const char *text, size_t len, pd_model *m, pd_diag *d) {
    pd_yaml y;
    int e = 0;
    int64_t x;
    if (pd_yaml_load_text(&y, path, text, len, d)) {
        pd_yaml_free(&y);
        return 1;
    }
    yaml_node_t *root = pd_yaml_root(&y), *v;
    e += pd_yaml_check_keys(&y, root, profile_keys, "the profile");
    v = pd_yaml_require(&y, root, "pd_profile", "the profile (pd_profile: 1)");
    if (!v) e++;
    else if (pd_yaml_int(&y, v, "pd_profile", 1, 1, &x)) e++;
    char device[64] = "";
    v = pd_yaml_get(&y, root, "device", NULL);
    if (v && pd_yaml_str(&y, v, "device", device, sizeof device)) e++;
    v = pd_yaml_get(&y, root, "model", NULL);
    char pmodel[PD_NAME_MAX];
    if (v && pd_yaml_str(&y, v, "model", pmodel, sizeof pmodel)) e++;
    else if (v && strcmp(pmodel, m->name) != 0)
        pd_diag_warning(d, path, pd_yaml_line(v), pd_yaml_col(v),
                        "profile is for model '%s', not '%s'", pmodel, m->name);
    int batch = 0;
    v = pd_yaml_require(&y, root, "batch", "the profile");
    if (!v) e++;
    else if (pd_yaml_int(&y, v, "batch", 1, 1 << 20, &x)) e++;
    else batch = (int)x;
    yaml_node_t *layers = pd_yaml_require(&y, root, "layers", "the profile");
    int n = m->n_layers;
    int *seen_line = calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    double *fwd = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    double *bwd = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    name_ref *sorted = malloc(sizeof(name_ref) * (size_t)(n > 0 ? n : 1));
    int n_sorted = 0;
    if (sorted) {
        for (int i = 1; i < n; i++) sorted[n_sorted++] = (name_ref){m->layers[i].name, i};
        qsort(sorted, (size_t)n_sorted, sizeof *sorted, cmp_name_ref);
    }
    if (!seen_line || !fwd || !bwd || !sorted) {
        pd_diag_error(d, path, 0, 0, "out of memory");
        e++;
    } else if (!layers) {
        e++;
    } else if (pd_yaml_expect_seq(&y, layers, "'layers'")) {
        e++;
    } else {
        double scale = batch > 0 ? (double)m->batch / batch : 1.0;
        for (int k = 0; k < pd_yaml_seq_len(layers); k++) {
            yaml_node_t *en = pd_yaml_seq_item(&y, layers, k);
            char name[PD_NAME_MAX];
            if (pd_yaml_expect_map(&y, en, "a profile layer")) {
                e++;
                continue;
            }
            e += pd_yaml_check_keys(&y, en, entry_keys, "a profile layer");
            v = pd_yaml_require(&y, en, "name", "a profile layer");
            if (!v || pd_yaml_str(&y, v, "name", name, sizeof name)) {
                e++;
                continue;
            }
            int i = find_layer(sorted, n_sorted, name);
            if (i < 0) i = n;
            double f = 0, b = 0;
            int te = get_time(&y, en, "forward_ms", &f) + get_time(&y, en, "backward_ms", &b);
            e += te;
            if (i >= n) {
                pd_yaml_error(&y, v, "layer '%s' is not in model '%s'", name, m->name);
                e++;
                continue;
            }
            if (seen_line[i]) {
                pd_yaml_error(&y, v, "layer '%s' appears twice (first at line %d)", name,
                              seen_line[i]);
                e++;
                continue;
            }
            seen_line[i] = pd_yaml_line(v);
            fwd[i] = f * scale;
            bwd[i] = b * scale;
            if (!te && (fwd[i] > PD_INPUT_MAX_MS || bwd[i] > PD_INPUT_MAX_MS)) {
                pd_yaml_error(&y, v, "layer '%s': times above %g ms per minibatch (at the "
                              "model's batch of %d)", name, PD_INPUT_MAX_MS, m->batch);
                e++;
                continue;
            }
            if (!te && batch > 0) {
                const pd_layer *L = &m->layers[i];
                check_bytes(&y, en, "activation_bytes",
                            4.0 * batch * (double)pd_shape_numel(&L->out), name, &e);
                check_bytes(&y, en, "parameter_bytes", 4.0 * (double)(L->n_weight + L->n_bias),
                            name, &e);
            }
        }
        if (!e) {
            for (int i = 1; i < n; i++)
                if (!seen_line[i]) {
                    pd_yaml_error(&y, layers, "layer '%s' of model '%s' is missing from the "
                                  "profile", m->layers[i].name, m->name);
                    e++;
                }
        }
        if (!e && batch != m->batch)
            pd_diag_warning(d, path, pd_yaml_line(root), pd_yaml_col(root),
                            "profile measured at batch %d, model batch is %d: times scaled by "
                            "%g", batch, m->batch, scale);
    }
    if (!e) {
        for (int i = 1; i < n; i++) {
            m->layers[i].fwd_ms = fwd[i];
            m->layers[i].bwd_ms = bwd[i];
        }
        m->costs_estimated = 0;
        snprintf(m->cost_source, sizeof m->cost_source, "%s", path);
    }
    free(seen_line);
    free(sorted);
    free(fwd);
    free(bwd);
    pd_yaml_free(&y);
    return e ? 1 : 0;
}
