/* model_yaml.c: reads a model YAML (pd: 1) into the model IR: top-level keys, layers and their
 * attributes, name resolution of inputs (unknown, duplicate, forward references, cycles), then
 * shape inference (shapes.c). Every problem is a file:line:col diagnostic. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "planner/ops/op.h"
#include "planner/ops/shapes.h"
#include "yaml_util.h"

#define MAX_LAYERS 100000

static const char *const model_keys[] = {"pd", "name", "input", "classes", "batch", "dataset",
                                         "loss", "optimizer", "epochs", "layers", NULL};
static const char *const optimizer_keys[] = {"kind", "lr", "momentum", "weight_decay",
                                             "beta1", "beta2", "eps", "warmup_iters",
                                             "lr_decay_iters", "min_lr", "clip_grad_norm", NULL};
static const char *const dataset_keys[] = {"kind", "train", "val", "format", NULL};

static int name_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return 0;
    return 1;
}

/* An int attribute, or an [h, w] pair; missing -> def (def < 0: required). */
static int get_pair(pd_yaml *y, yaml_node_t *layer, const char *key, int def, int lo, int out[2],
                    const char *lname) {
    yaml_node_t *k = NULL, *v = pd_yaml_get(y, layer, key, &k);
    int64_t a, b;
    if (!v) {
        if (def < 0) {
            pd_yaml_error(y, layer, "layer '%s' is missing the required attribute '%s'", lname,
                          key);
            return 1;
        }
        out[0] = out[1] = def;
        return 0;
    }
    if (v->type == YAML_SEQUENCE_NODE) {
        if (pd_yaml_seq_len(v) != 2) {
            pd_yaml_error(y, v, "'%s' must be an integer or a list [h, w]", key);
            return 1;
        }
        if (pd_yaml_int(y, pd_yaml_seq_item(y, v, 0), key, lo, 100000, &a) |
            pd_yaml_int(y, pd_yaml_seq_item(y, v, 1), key, lo, 100000, &b))
            return 1;
        out[0] = (int)a;
        out[1] = (int)b;
        return 0;
    }
    if (pd_yaml_int(y, v, key, lo, 100000, &a)) return 1;
    out[0] = out[1] = (int)a;
    return 0;
}

static int get_int(pd_yaml *y, yaml_node_t *map, const char *key, int64_t def, int64_t lo,
                   int64_t hi, int *out, const char *what) {
    yaml_node_t *v = pd_yaml_get(y, map, key, NULL);
    int64_t x;
    if (!v) {
        if (def == INT64_MIN) {
            pd_yaml_error(y, map, "%s is missing the required %s '%s'", what,
                          strncmp(what, "layer", 5) == 0 ? "attribute" : "key", key);
            return 1;
        }
        *out = (int)def;
        return 0;
    }
    if (pd_yaml_int(y, v, key, lo, hi, &x)) return 1;
    *out = (int)x;
    return 0;
}

static int get_num(pd_yaml *y, yaml_node_t *map, const char *key, double def, double lo,
                   double hi, double *out) {
    yaml_node_t *v = pd_yaml_get(y, map, key, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    if (pd_yaml_double(y, v, key, out)) return 1;
    if (*out < lo || *out > hi) {
        pd_yaml_error(y, v, "'%s' must be between %g and %g", key, lo, hi);
        return 1;
    }
    return 0;
}

/* dataset: a name (fashion-mnist, synthetic, shakespeare_char, reverse: the synthetic
 * sequence-to-sequence task of docs/formats.md) or a token stream
 * {kind: tokens, train: PATH, val: PATH, format: u8|u16|llmc}, kept as
 * "tokens:FORMAT:TRAIN:VAL" (the runtime's spelling, which --data takes too). Token streams
 * need input: [T], the context length. */
static int read_dataset(pd_yaml *y, yaml_node_t *v, pd_model *m) {
    int tokens = 0;
    if (v->type == YAML_SCALAR_NODE) {
        if (pd_yaml_str(y, v, "dataset", m->dataset, sizeof m->dataset)) return 1;
        if (strcmp(m->dataset, "fashion-mnist") && strcmp(m->dataset, "synthetic") &&
            strcmp(m->dataset, "shakespeare_char") && strcmp(m->dataset, "reverse")) {
            pd_yaml_error(y, v, "unknown dataset '%s' (known: fashion-mnist, synthetic, "
                          "shakespeare_char, reverse, or a mapping {kind: tokens, ...})",
                          m->dataset);
            return 1;
        }
        tokens = !strcmp(m->dataset, "shakespeare_char") || !strcmp(m->dataset, "reverse");
    } else {
        if (pd_yaml_expect_map(y, v, "'dataset'")) return 1;
        int e = pd_yaml_check_keys(y, v, dataset_keys, "dataset");
        char kind[16] = "", fmt[8] = "u16", path[2][120] = {"", ""};
        const char *const keys[2] = {"train", "val"};
        yaml_node_t *k = pd_yaml_require(y, v, "kind", "'dataset'");
        if (!k || pd_yaml_str(y, k, "kind", kind, sizeof kind)) e++;
        else if (strcmp(kind, "tokens")) {
            pd_yaml_error(y, k, "unknown dataset kind '%s' (known: tokens)", kind);
            e++;
        }
        k = pd_yaml_get(y, v, "format", NULL);
        if (k && pd_yaml_str(y, k, "format", fmt, sizeof fmt)) e++;
        else if (k && strcmp(fmt, "u8") && strcmp(fmt, "u16") && strcmp(fmt, "llmc")) {
            pd_yaml_error(y, k, "unknown token format '%s' (known: u8, u16, llmc)", fmt);
            e++;
        }
        for (int i = 0; i < 2; i++) {
            k = pd_yaml_require(y, v, keys[i], "'dataset'");
            if (!k || pd_yaml_str(y, k, keys[i], path[i], sizeof path[i])) e++;
            else if (!path[i][0] || strchr(path[i], ':')) {
                pd_yaml_error(y, k, "'%s' must be a path without ':'", keys[i]);
                e++;
            }
        }
        if (e) return e;
        snprintf(m->dataset, sizeof m->dataset, "tokens:%s:%s:%s", fmt, path[0], path[1]);
        tokens = 1;
    }
    if (tokens && m->input.rank != 1) {
        pd_yaml_error(y, v, "a token dataset needs 'input: [T]' (T tokens of context or of the "
                      "sequence)");
        return 1;
    }
    return 0;
}

static int get_bool(pd_yaml *y, yaml_node_t *map, const char *key, int def, int *out) {
    yaml_node_t *v = pd_yaml_get(y, map, key, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    return pd_yaml_bool(y, v, key, out);
}

/* The op descriptors read their attributes through this (planner/ops/op.h). */
typedef struct {
    pd_attr_reader r; /* first: the descriptor sees this */
    pd_yaml *y;
    yaml_node_t *n;
    char what[PD_NAME_MAX + 16]; /* "layer 'name'" */
} yaml_attrs;

static int attr_integer(pd_attr_reader *r, const char *key, int64_t def, int64_t lo, int64_t hi,
                        int *out) {
    yaml_attrs *a = (yaml_attrs *)r;
    return get_int(a->y, a->n, key, def, lo, hi, out, a->what);
}

static int attr_pair(pd_attr_reader *r, const char *key, int def, int lo, int out[2]) {
    yaml_attrs *a = (yaml_attrs *)r;
    return get_pair(a->y, a->n, key, def, lo, out, r->layer);
}

static int attr_flag(pd_attr_reader *r, const char *key, int def, int *out) {
    yaml_attrs *a = (yaml_attrs *)r;
    return get_bool(a->y, a->n, key, def, out);
}

static int attr_number(pd_attr_reader *r, const char *key, double def, double lo, double hi,
                       double *out) {
    yaml_attrs *a = (yaml_attrs *)r;
    return get_num(a->y, a->n, key, def, lo, hi, out);
}

static int attr_has(pd_attr_reader *r, const char *key) {
    yaml_attrs *a = (yaml_attrs *)r;
    return pd_yaml_get(a->y, a->n, key, NULL) != NULL;
}

static void attr_error(pd_attr_reader *r, const char *key, const char *fmt, ...) {
    yaml_attrs *a = (yaml_attrs *)r;
    yaml_node_t *at = key ? pd_yaml_get(a->y, a->n, key, NULL) : NULL;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pd_yaml_error(a->y, at ? at : a->n, "%s", msg);
}

/* Reads a layer's op and attributes into L. Returns the number of errors. */
static int read_layer(pd_yaml *y, yaml_node_t *n, pd_layer *L) {
    int e = 0;
    yaml_node_t *v;
    const char *nm = L->name[0] ? L->name : "?";
    v = pd_yaml_get(y, n, "op", NULL);
    if (!v) {
        pd_yaml_error(y, n, "layer '%s' is missing the required key 'op'", nm);
        return 1;
    }
    char opname[PD_NAME_MAX], known[512];
    if (pd_yaml_str(y, v, "op", opname, sizeof opname)) return 1;
    L->op = pd_op_find(opname);
    if (L->op == PD_OP_INPUT) {
        pd_yaml_error(y, v, "unknown op '%s' (known: %s)", opname, pd_op_names(known, sizeof known));
        return 1;
    }
    const pd_op_desc *op = pd_op(L->op);
    const char *keys[24] = {"name", "op", "inputs", "tie"};
    for (int k = 0; op->attrs && op->attrs[k] && k + 5 < 24; k++) keys[4 + k] = op->attrs[k];
    e += pd_yaml_check_keys(y, n, keys, "layer");
    yaml_attrs a = {{nm, attr_integer, attr_pair, attr_flag, attr_number, attr_has, attr_error},
                    y, n, ""};
    snprintf(a.what, sizeof a.what, "layer '%s'", nm);
    L->has_bias = 1;
    if (op->read) e += op->read(&a.r, L);
    yaml_node_t *tv = pd_yaml_get(y, n, "tie", NULL);
    if (tv) {
        if (pd_yaml_str(y, tv, "tie", L->tie, sizeof L->tie)) return e + 1;
        L->tie_line = pd_yaml_line(tv);
        L->tie_col = pd_yaml_col(tv);
    }
    return e;
}

/* Layer names -> indices: an open-addressing table over m->layers, so that models with very
 * many layers resolve in linear time. */
typedef struct {
    int *slot; /* -1 empty */
    size_t cap;
} name_index;

static size_t name_hash(const char *s) { return (size_t)pd_fnv1a_str(s); }

static int index_init(name_index *x, int n) {
    x->cap = 16;
    while (x->cap < 2 * (size_t)n + 2) x->cap *= 2;
    x->slot = malloc(x->cap * sizeof(int));
    if (!x->slot) return 1;
    for (size_t i = 0; i < x->cap; i++) x->slot[i] = -1;
    return 0;
}

static int index_find(const name_index *x, const pd_model *m, const char *s) {
    size_t i = name_hash(s) & (x->cap - 1);
    while (x->slot[i] >= 0) {
        if (strcmp(m->layers[x->slot[i]].name, s) == 0) return x->slot[i];
        i = (i + 1) & (x->cap - 1);
    }
    return -1;
}

static void index_put(name_index *x, const pd_model *m, int idx) {
    size_t i = name_hash(m->layers[idx].name) & (x->cap - 1);
    while (x->slot[i] >= 0) i = (i + 1) & (x->cap - 1);
    x->slot[i] = idx;
}

/* Does layer `from` depend (through inputs, in any direction) on layer `target`? An explicit
 * stack instead of recursion, so that long chains cannot overflow the C stack. */
static int depends_on(const pd_model *m, const int (*ref)[PD_MAX_INPUTS], int from, int target,
                      char *seen) {
    int *stack = malloc(sizeof(int) * (size_t)m->n_layers * PD_MAX_INPUTS + sizeof(int));
    int top = 0, found = 0;
    if (!stack) return 0;
    stack[top++] = from;
    seen[from] = 1;
    while (top > 0 && !found) {
        int v = stack[--top];
        if (v == target) found = 1;
        for (int k = 0; k < m->layers[v].n_inputs; k++) {
            int u = ref[v][k];
            if (u >= 0 && !seen[u]) {
                seen[u] = 1;
                stack[top++] = u;
            }
        }
    }
    free(stack);
    return found;
}

/* Resolves input names of every layer. raw[i][k] are the input nodes (NULL: implicit previous).
 * Reports unknown names, forward references and cycles. */
static int resolve_inputs(pd_yaml *y, pd_model *m, yaml_node_t **layer_nodes,
                          const name_index *names) {
    int e = 0, n = m->n_layers;
    int (*ref)[PD_MAX_INPUTS] = calloc((size_t)n, sizeof *ref);
    char *seen = calloc((size_t)n, 1);
    yaml_node_t *(*pos)[PD_MAX_INPUTS] = calloc((size_t)n, sizeof *pos);
    if (!ref || !seen || !pos) {
        pd_diag_error(y->d, y->file, 0, 0, "out of memory");
        free(ref);
        free(seen);
        free(pos);
        return 1;
    }
    for (int i = 1; i < n; i++) {
        pd_layer *L = &m->layers[i];
        yaml_node_t *inp = pd_yaml_get(y, layer_nodes[i], "inputs", NULL);
        L->n_inputs = 0;
        if (!inp) {
            L->n_inputs = 1;
            ref[i][0] = i - 1;
        } else {
            int cnt = inp->type == YAML_SEQUENCE_NODE ? pd_yaml_seq_len(inp) : 1;
            if (cnt < 1 || cnt > PD_MAX_INPUTS) {
                pd_yaml_error(y, inp, "'inputs' must list 1 to %d layer names", PD_MAX_INPUTS);
                e++;
                ref[i][0] = -1;
                L->n_inputs = 0;
                continue;
            }
            for (int k = 0; k < cnt; k++) {
                yaml_node_t *it = inp->type == YAML_SEQUENCE_NODE ? pd_yaml_seq_item(y, inp, k)
                                                                  : inp;
                char s[PD_NAME_MAX];
                pos[i][k] = it;
                ref[i][k] = -1;
                if (pd_yaml_str(y, it, "inputs", s, sizeof s)) {
                    e++;
                } else {
                    int j = index_find(names, m, s);
                    if (j < 0) {
                        pd_yaml_error(y, it, "layer '%s': unknown input layer '%s'", L->name, s);
                        e++;
                    }
                    ref[i][k] = j;
                }
            }
            L->n_inputs = cnt;
        }
        const pd_op_desc *op = pd_op(L->op);
        if (L->n_inputs < op->min_inputs) {
            pd_yaml_error(y, inp ? inp : layer_nodes[i], "layer '%s': %s needs at least %d inputs",
                          L->name, op->name, op->min_inputs);
            e++;
        } else if (L->n_inputs > op->max_inputs) {
            pd_yaml_error(y, inp, "layer '%s': %s takes %s %d input%s, got %d", L->name,
                          op->name, op->min_inputs == op->max_inputs ? "exactly" : "at most",
                          op->max_inputs, op->max_inputs == 1 ? "" : "s", L->n_inputs);
            e++;
        }
    }
    for (int i = 1; i < n; i++) {
        pd_layer *L = &m->layers[i];
        for (int k = 0; k < L->n_inputs; k++) {
            int j = ref[i][k];
            if (j < i) continue;
            if (e >= 50) break; /* enough: each check below walks the graph */
            memset(seen, 0, (size_t)n);
            yaml_node_t *at = pos[i][k] ? pos[i][k] : layer_nodes[i];
            if (j == i)
                pd_yaml_error(y, at, "cycle: layer '%s' uses itself as input", L->name);
            else if (depends_on(m, (const int(*)[PD_MAX_INPUTS])ref, j, i, seen))
                pd_yaml_error(y, at, "cycle: layer '%s' uses '%s', which depends on '%s'",
                              L->name, m->layers[j].name, L->name);
            else
                pd_yaml_error(y, at, "layer '%s' uses '%s', which is defined later: list layers "
                              "after their inputs", L->name, m->layers[j].name);
            e++;
        }
        for (int k = 0; k < L->n_inputs; k++) L->inputs[k] = ref[i][k] < 0 ? 0 : ref[i][k];
    }
    free(ref);
    free(seen);
    free(pos);
    return e;
}

/* Every layer but the last must feed some later layer. */
static int check_used(pd_model *m, const char *file, pd_diag *d) {
    int e = 0;
    char *used = calloc((size_t)m->n_layers, 1);
    if (!used) return 1;
    for (int i = 1; i < m->n_layers; i++)
        for (int k = 0; k < m->layers[i].n_inputs; k++) used[m->layers[i].inputs[k]] = 1;
    for (int i = 1; i + 1 < m->n_layers; i++)
        if (!used[i]) {
            pd_diag_error(d, file, m->layers[i].line, m->layers[i].col,
                          "layer '%s' is never used: the model's output is its last layer",
                          m->layers[i].name);
            e++;
        }
    free(used);
    return e;
}

static int read_optimizer(pd_yaml *y, yaml_node_t *v, pd_model *m, double sgd_momentum);

static int read_header(pd_yaml *y, yaml_node_t *root, pd_model *m) {
    int e = 0;
    yaml_node_t *v;
    int64_t x;
    e += pd_yaml_check_keys(y, root, model_keys, "the model");
    v = pd_yaml_require(y, root, "pd", "the model (pd: 1)");
    if (!v) e++;
    else if (pd_yaml_int(y, v, "pd", 1, 1, &x)) e++;
    v = pd_yaml_require(y, root, "name", "the model");
    if (!v) e++;
    else if (pd_yaml_str(y, v, "name", m->name, sizeof m->name)) e++;
    else if (!name_ok(m->name)) {
        pd_yaml_error(y, v, "model name '%s' may only use letters, digits, '_', '.', '-'",
                      m->name);
        e++;
    }
    v = pd_yaml_require(y, root, "input", "the model");
    if (!v) e++;
    else if (v->type != YAML_SEQUENCE_NODE ||
             (pd_yaml_seq_len(v) < 1 || pd_yaml_seq_len(v) > 3)) {
        pd_yaml_error(y, v, "'input' must be a list [features], [tokens, features] or "
                      "[channels, height, width]");
        e++;
    } else {
        m->input.rank = pd_yaml_seq_len(v);
        for (int i = 0; i < m->input.rank; i++) {
            if (pd_yaml_int(y, pd_yaml_seq_item(y, v, i), "input", 1, 1 << 20, &x)) e++;
            else m->input.dim[i] = (int)x;
        }
        if (pd_shape_numel(&m->input) > ((int64_t)1 << 31)) {
            pd_yaml_error(y, v, "'input' is too large");
            e++;
        }
    }
    e += get_int(y, root, "classes", INT64_MIN, 1, 1 << 24, &m->classes, "the model");
    e += get_int(y, root, "batch", INT64_MIN, 1, 1 << 20, &m->batch, "the model");
    e += get_int(y, root, "epochs", 1, 1, 1000000, &m->epochs, "the model");
    snprintf(m->dataset, sizeof m->dataset, "synthetic");
    v = pd_yaml_get(y, root, "dataset", NULL);
    if (v) e += read_dataset(y, v, m);
    snprintf(m->loss, sizeof m->loss, "softmax_cross_entropy");
    v = pd_yaml_get(y, root, "loss", NULL);
    if (v) {
        if (pd_yaml_str(y, v, "loss", m->loss, sizeof m->loss)) e++;
        else if (strcmp(m->loss, "softmax_cross_entropy")) {
            pd_yaml_error(y, v, "unknown loss '%s' (known: softmax_cross_entropy)", m->loss);
            e++;
        }
    }
    m->optimizer = PD_OPT_SGD;
    m->warmup_iters = m->lr_decay_iters = 0;
    m->min_lr = m->clip_grad_norm = 0;
    m->lr = 0.01;
    m->momentum = 0;
    m->weight_decay = 0;
    m->beta1 = 0.9;
    m->beta2 = 0.999;
    m->adam_eps = 1e-8;
    v = pd_yaml_get(y, root, "optimizer", NULL);
    return e + (v ? read_optimizer(y, v, m, 0) : 0);
}

/* optimizer: {kind, lr, momentum, ...}; momentum defaults to sgd_momentum under SGD. */
static int read_optimizer(pd_yaml *y, yaml_node_t *v, pd_model *m, double sgd_momentum) {
    int e = 0;
    if (pd_yaml_expect_map(y, v, "'optimizer'")) return 1;
    e += pd_yaml_check_keys(y, v, optimizer_keys, "optimizer");
    yaml_node_t *k = pd_yaml_get(y, v, "kind", NULL);
    char kind[16] = "sgd";
    m->optimizer = PD_OPT_SGD;
    m->lr = 0.01;
    if (k && pd_yaml_str(y, k, "kind", kind, sizeof kind)) e++;
    else if (!strcmp(kind, "adam") || !strcmp(kind, "adamw")) {
        m->optimizer = kind[4] ? PD_OPT_ADAMW : PD_OPT_ADAM;
        m->lr = 0.001;
        sgd_momentum = 0;
    } else if (strcmp(kind, "sgd")) {
        pd_yaml_error(y, k, "unknown optimizer kind '%s' (known: sgd, adam, adamw)", kind);
        e++;
    }
    e += get_num(y, v, "lr", m->lr, 0, 1e6, &m->lr);
    e += get_num(y, v, "momentum", sgd_momentum, 0, 1, &m->momentum);
    /* torch.optim.AdamW's default decay is 0.01; SGD's and Adam's 0 */
    e += get_num(y, v, "weight_decay", m->optimizer == PD_OPT_ADAMW ? 0.01 : 0, 0, 1e6,
                 &m->weight_decay);
    e += get_int(y, v, "warmup_iters", 0, 0, 1000000000, &m->warmup_iters, "optimizer");
    e += get_int(y, v, "lr_decay_iters", 0, 0, 1000000000, &m->lr_decay_iters, "optimizer");
    e += get_num(y, v, "min_lr", 0, 0, 1e6, &m->min_lr);
    e += get_num(y, v, "clip_grad_norm", 0, 0, 1e30, &m->clip_grad_norm);
    if (m->lr_decay_iters && m->lr_decay_iters <= m->warmup_iters) {
        pd_yaml_error(y, pd_yaml_get(y, v, "lr_decay_iters", NULL),
                      "'lr_decay_iters' (%d) must be past 'warmup_iters' (%d), or 0 (none)",
                      m->lr_decay_iters, m->warmup_iters);
        e++;
    }
    e += get_num(y, v, "beta1", 0.9, 0, 1, &m->beta1);
    e += get_num(y, v, "beta2", 0.999, 0, 1, &m->beta2);
    e += get_num(y, v, "eps", 1e-8, 0, 1, &m->adam_eps);
    return e;
}

int pd_model_load(const char *path, pd_model *m, pd_diag *d) {
    pd_text t = pd_read_text(path, PD_YAML_MAX_BYTES, d);
    int rc = t.text ? pd_model_load_text(path, t.text, t.len, m, d) : (memset(m, 0, sizeof *m), 1);
    free(t.text);
    return rc;
}

int pd_model_load_text(const char *path, const char *text, size_t len, pd_model *m, pd_diag *d) {
    pd_yaml y;
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s", path);
    int before = d->errors;
    if (pd_yaml_load_text(&y, path, text, len, d)) {
        pd_yaml_free(&y);
        return 1;
    }
    memcpy(m->hash, y.hash, sizeof m->hash);
    yaml_node_t *root = pd_yaml_root(&y);
    int e = read_header(&y, root, m);
    yaml_node_t *layers = pd_yaml_require(&y, root, "layers", "the model");
    yaml_node_t **nodes = NULL;
    if (!layers) {
        e++;
    } else if (layers->type != YAML_SEQUENCE_NODE || pd_yaml_seq_len(layers) == 0) {
        pd_yaml_error(&y, layers, "'layers' must be a non-empty list");
        e++;
    } else if (pd_yaml_seq_len(layers) > MAX_LAYERS) {
        pd_yaml_error(&y, layers, "more than %d layers", MAX_LAYERS);
        e++;
    } else {
        int n = pd_yaml_seq_len(layers) + 1;
        m->layers = calloc((size_t)n, sizeof *m->layers);
        nodes = calloc((size_t)n, sizeof *nodes);
        if (!m->layers || !nodes) {
            pd_diag_error(d, path, 0, 0, "out of memory");
            e++;
        } else {
            m->n_layers = n;
            snprintf(m->layers[0].name, PD_NAME_MAX, "input");
            m->layers[0].op = PD_OP_INPUT;
            int layer_errors = 0;
            name_index names = {0};
            if (index_init(&names, n)) {
                pd_diag_error(d, path, 0, 0, "out of memory");
                layer_errors++;
                n = 1;
            } else {
                index_put(&names, m, 0);
            }
            for (int i = 1; i < n; i++) {
                yaml_node_t *ln = pd_yaml_seq_item(&y, layers, i - 1);
                pd_layer *L = &m->layers[i];
                nodes[i] = ln;
                L->line = pd_yaml_line(ln);
                L->col = pd_yaml_col(ln);
                if (pd_yaml_expect_map(&y, ln, "a layer")) {
                    layer_errors++;
                    continue;
                }
                yaml_node_t *nv = pd_yaml_get(&y, ln, "name", NULL);
                if (!nv) {
                    pd_yaml_error(&y, ln, "layer %d is missing the required key 'name'", i);
                    layer_errors++;
                } else if (pd_yaml_str(&y, nv, "name", L->name, sizeof L->name)) {
                    layer_errors++;
                } else if (!name_ok(L->name)) {
                    pd_yaml_error(&y, nv, "layer name '%s' may only use letters, digits, '_', "
                                  "'.', '-'", L->name);
                    layer_errors++;
                } else {
                    int j = index_find(&names, m, L->name);
                    if (j == 0) {
                        pd_yaml_error(&y, nv, "'input' is reserved for the model input");
                        layer_errors++;
                    } else if (j > 0) {
                        pd_yaml_error(&y, nv, "duplicate layer name '%s' (first at line %d)",
                                      L->name, m->layers[j].line);
                        layer_errors++;
                    } else {
                        index_put(&names, m, i);
                    }
                }
                layer_errors += read_layer(&y, ln, L);
            }
            e += layer_errors;
            if (!layer_errors) e += resolve_inputs(&y, m, nodes, &names);
            free(names.slot);
        }
    }
    if (!e) e += check_used(m, path, d);
    if (!e) e += pd_infer_shapes(m, path, d);
    if (!e) e += pd_resolve_ties(m, path, d);
    free(nodes);
    pd_yaml_free(&y);
    snprintf(m->cost_source, sizeof m->cost_source, "none");
    if (e || d->errors > before) {
        pd_model_free(m);
        return 1;
    }
    return 0;
}

/* The training settings of a model that came without them (an ONNX file): name, batch,
 * dataset, loss, optimizer and epochs as in a model YAML, each optional, over *m. */
static const char *const settings_keys[] = {"name", "batch", "dataset", "loss", "optimizer",
                                            "epochs", NULL};

int pd_model_apply_settings(const char *path, pd_model *m, pd_diag *d) {
    pd_text t = pd_read_text(path, PD_YAML_MAX_BYTES, d);
    pd_yaml y;
    if (!t.text) return 1;
    int before = d->errors;
    if (pd_yaml_load_text(&y, path, t.text, t.len, d)) {
        pd_yaml_free(&y);
        free(t.text);
        return 1;
    }
    yaml_node_t *root = pd_yaml_root(&y), *v;
    int e = pd_yaml_expect_map(&y, root, "the settings");
    if (!e) {
        e += pd_yaml_check_keys(&y, root, settings_keys, "the settings");
        if ((v = pd_yaml_get(&y, root, "name", NULL))) {
            if (pd_yaml_str(&y, v, "name", m->name, sizeof m->name)) e++;
            else if (!name_ok(m->name)) {
                pd_yaml_error(&y, v, "model name '%s' may only use letters, digits, '_', '.', "
                              "'-'", m->name);
                e++;
            }
        }
        e += get_int(&y, root, "batch", m->batch, 1, 1 << 20, &m->batch, "the settings");
        e += get_int(&y, root, "epochs", m->epochs, 1, 1000000, &m->epochs, "the settings");
        if ((v = pd_yaml_get(&y, root, "dataset", NULL))) e += read_dataset(&y, v, m);
        if ((v = pd_yaml_get(&y, root, "loss", NULL))) {
            if (pd_yaml_str(&y, v, "loss", m->loss, sizeof m->loss)) e++;
            else if (strcmp(m->loss, "softmax_cross_entropy")) {
                pd_yaml_error(&y, v, "unknown loss '%s' (known: softmax_cross_entropy)", m->loss);
                e++;
            }
        }
        if ((v = pd_yaml_get(&y, root, "optimizer", NULL))) e += read_optimizer(&y, v, m, 0.9);
    }
    pd_yaml_free(&y);
    free(t.text);
    return e || d->errors > before;
}
