/* graphtxt.c: reads PipeDream's profiler output (graph.txt) into a cost graph, for planning only.
 *
 * Grammar (see docs/formats.md): node lines
 *   <id> -- <desc> -- forward_compute_time=<ms>, backward_compute_time=<ms>,
 *         activation_size=<bytes | [a; b; ...]>, parameter_size=<bytes>[ -- stage_id=<k>]
 * then edge lines "\t<src> -- <dst>". Blank lines are ignored. Input* nodes are removed (their
 * activation size becomes input_bytes, their forward time input_ms) and __getitem__ sinks are
 * dropped, as the original optimizer does; the rest is ordered topologically by Kahn's algorithm,
 * ties broken by file order. Every malformed line is a diagnostic with its line and column.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "yaml_util.h"


typedef struct {
    char *id;        /* points into the file buffer */
    const char *desc;
    int line;
    double fwd, bwd, act, param;
    int removed;     /* Input* or __getitem__ sink */
    int bad;         /* its line had an error: known id, so edges to it do not cascade */
    int is_input;
    int n_out;
} gnode;

typedef struct {
    int src, dst, line;
} gedge;

/* String -> node index, open addressing. */
typedef struct {
    int *slot; /* -1 empty, else node index */
    size_t cap;
} name_table;

static uint64_t hash_str(const char *s) { return pd_fnv1a_str(s); }

static int table_find(const name_table *t, const gnode *nodes, const char *s) {
    size_t i = hash_str(s) & (t->cap - 1);
    while (t->slot[i] >= 0) {
        if (strcmp(nodes[t->slot[i]].id, s) == 0) return t->slot[i];
        i = (i + 1) & (t->cap - 1);
    }
    return -1;
}

static void table_put(name_table *t, const gnode *nodes, int idx) {
    size_t i = hash_str(nodes[idx].id) & (t->cap - 1);
    while (t->slot[i] >= 0) i = (i + 1) & (t->cap - 1);
    t->slot[i] = idx;
}

/* Parses "key=" then a number at *p; advances *p. Returns 0 or 1 (with a message). list allows
 * "[a; b; ...]", which is summed. */
static int parse_field(const char **p, const char *key, int list, double max, double *out,
                       const char *file, int line, const char *line_start, pd_diag *d) {
    size_t kl = strlen(key);
    if (strncmp(*p, key, kl) != 0 || (*p)[kl] != '=') {
        pd_diag_error(d, file, line, (int)(*p - line_start) + 1,
                      "expected '%s=' (node line truncated or malformed)", key);
        return 1;
    }
    const char *s = *p + kl + 1;
    char *end;
    double v = 0;
    if (list && *s == '[') {
        s++;
        for (;;) {
            while (*s == ' ') s++;
            errno = 0;
            double x = strtod(s, &end);
            if (end == s || errno == ERANGE) {
                pd_diag_error(d, file, line, (int)(s - line_start) + 1,
                              "'%s' list needs numbers separated by ';'", key);
                return 1;
            }
            if (!(x >= 0) || !isfinite(x)) {
                pd_diag_error(d, file, line, (int)(s - line_start) + 1,
                              "'%s' must be a finite number >= 0", key);
                return 1;
            }
            v += x;
            if (!(v <= max)) {
                pd_diag_error(d, file, line, (int)(s - line_start) + 1,
                              "'%s' list sums to more than %g", key, max);
                return 1;
            }
            s = end;
            while (*s == ' ') s++;
            if (*s == ';') {
                s++;
                continue;
            }
            if (*s == ']') {
                s++;
                break;
            }
            pd_diag_error(d, file, line, (int)(s - line_start) + 1,
                          "'%s' list is not closed with ']'", key);
            return 1;
        }
    } else {
        errno = 0;
        v = strtod(s, &end);
        if (end == s || errno == ERANGE) {
            pd_diag_error(d, file, line, (int)(s - line_start) + 1, "'%s' needs a number", key);
            return 1;
        }
        if (!(v >= 0) || !isfinite(v)) {
            pd_diag_error(d, file, line, (int)(s - line_start) + 1,
                          "'%s' must be a finite number >= 0, not %.*s", key, (int)(end - s), s);
            return 1;
        }
        if (v > max) {
            pd_diag_error(d, file, line, (int)(s - line_start) + 1,
                          "'%s' must be at most %g, not %.*s", key, max, (int)(end - s), s);
            return 1;
        }
        s = end;
    }
    *out = v;
    *p = s;
    return 0;
}

static int id_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\r') return 0;
    return 1;
}

/* Parses one node line (NUL-terminated, modified in place). Returns 0 or 1; on error n->id is
 * still set when the line starts with a word, so that edges naming it do not cascade. */
static int parse_node(char *ln, int line, gnode *n, const char *file, pd_diag *d) {
    char *sep = strstr(ln, " -- ");
    n->line = line;
    if (!sep) {
        pd_diag_error(d, file, line, 1, "expected '<node> -- <description> -- <costs>' or a "
                      "TAB-indented edge");
        char *sp = strchr(ln, ' ');
        if (sp && sp > ln) {
            *sp = 0;
            n->id = ln;
        }
        return 1;
    }
    *sep = 0;
    if (!id_ok(ln)) {
        pd_diag_error(d, file, line, 1, "node id '%s' must be one word", ln);
        return 1;
    }
    n->id = ln;
    n->line = line;
    char *desc = sep + 4;
    /* The costs start at the last " -- forward_compute_time=" (a description may hold " -- "). */
    char *costs = NULL, *q = desc;
    while ((q = strstr(q, " -- forward_compute_time=")) != NULL) costs = q++;
    if (!costs) {
        if (strncmp(desc, "forward_compute_time=", 21) == 0) costs = desc - 4;
        else {
            pd_diag_error(d, file, line, (int)(desc - ln) + 1,
                          "node '%s': missing ' -- forward_compute_time=...' (truncated line?)",
                          n->id);
            return 1;
        }
    }
    if (costs >= desc) *costs = 0;
    n->desc = costs >= desc ? desc : "";
    const char *p = costs + 4;
    static const char *const keys[4] = {"forward_compute_time", "backward_compute_time",
                                        "activation_size", "parameter_size"};
    double *vals[4] = {&n->fwd, &n->bwd, &n->act, &n->param};
    for (int k = 0; k < 4; k++) {
        if (k > 0) {
            if (strncmp(p, ", ", 2) != 0) {
                pd_diag_error(d, file, line, (int)(p - ln) + 1,
                              "node '%s': expected ', %s=' (truncated line?)", n->id, keys[k]);
                return 1;
            }
            p += 2;
        }
        double max = k < 2 ? PD_INPUT_MAX_MS : PD_INPUT_MAX_BYTES;
        if (parse_field(&p, keys[k], k == 2, max, vals[k], file, line, ln, d)) return 1;
    }
    while (*p == ' ' || *p == '\r') {
        if (strncmp(p, " -- stage_id=", 13) == 0) {
            char *end;
            errno = 0;
            long st = strtol(p + 13, &end, 10);
            if (end == p + 13 || st < 0 || errno) {
                pd_diag_error(d, file, line, (int)(p - ln) + 14, "node '%s': bad stage_id", n->id);
                return 1;
            }
            p = end;
            continue;
        }
        p++;
    }
    if (*p) {
        pd_diag_error(d, file, line, (int)(p - ln) + 1, "node '%s': unexpected text '%s'",
                      n->id, p);
        return 1;
    }
    return 0;
}

/* Binary min-heap of node indices (file order). */
static void heap_push(int *h, int *n, int v) {
    int i = (*n)++;
    h[i] = v;
    while (i > 0 && h[(i - 1) / 2] > h[i]) {
        int t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int heap_pop(int *h, int *n) {
    int top = h[0], i = 0;
    h[0] = h[--(*n)];
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && h[l] < h[m]) m = l;
        if (r < *n && h[r] < h[m]) m = r;
        if (m == i) break;
        int t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
    return top;
}

static int cmp_edge(const void *a, const void *b) {
    const gedge *x = a, *y = b;
    if (x->src != y->src) return x->src < y->src ? -1 : 1;
    if (x->dst != y->dst) return x->dst < y->dst ? -1 : 1;
    return 0;
}

pd_costgraph *pd_graphtxt_load(const char *path, pd_diag *d) {
    pd_text t = pd_read_text(path, PD_GRAPHTXT_MAX_BYTES, d);
    pd_costgraph *g = t.text ? pd_graphtxt_load_text(path, t.text, t.len, d) : NULL;
    free(t.text);
    return g;
}

pd_costgraph *pd_graphtxt_load_text(const char *path, const char *text, size_t len, pd_diag *d) {
    int before = d->errors;
    char *buf = malloc(len + 1); /* parsed in place */
    if (!buf) {
        pd_diag_error(d, path, 0, 0, "out of memory");
        return NULL;
    }
    memcpy(buf, text, len);
    buf[len] = 0;
    if (memchr(buf, 0, len)) {
        size_t off = (size_t)((char *)memchr(buf, 0, len) - buf);
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            col = buf[i] == '\n' ? 1 : col + 1;
            line += buf[i] == '\n';
        }
        pd_diag_error(d, path, line, col, "binary file (NUL byte at offset %zu), expected a "
                      "PipeDream graph.txt", off);
        free(buf);
        return NULL;
    }
    size_t n_lines = 1;
    for (size_t i = 0; i < len; i++) n_lines += buf[i] == '\n';
    gnode *nodes = calloc(n_lines, sizeof *nodes);
    gedge *edges = calloc(n_lines, sizeof *edges);
    char **edge_txt = calloc(n_lines * 2, sizeof *edge_txt);
    name_table t = {0};
    pd_costgraph *g = NULL;
    int *map = NULL, *indeg = NULL, *heap = NULL, *order = NULL, *estart = NULL;
    if (!nodes || !edges || !edge_txt) goto oom;
    int nn = 0, ne = 0, line = 0;
    for (char *ln = buf; ln < buf + len || (ln == buf && len == 0);) {
        char *nl = memchr(ln, '\n', (size_t)(buf + len - ln));
        if (nl) *nl = 0;
        line++;
        size_t l = strlen(ln);
        if (l && ln[l - 1] == '\r') ln[--l] = 0;
        int blank = 1;
        for (char *c = ln; *c; c++)
            if (*c != ' ' && *c != '\t') blank = 0;
        if (blank) {
            /* nothing */
        } else if (ln[0] == '\t') {
            char *a = ln + 1, *sep = strstr(a, " -- ");
            if (!sep) {
                pd_diag_error(d, path, line, 2, "edge line must be '<node> -- <node>'");
            } else {
                *sep = 0;
                char *b = sep + 4;
                if (!id_ok(a) || !id_ok(b)) {
                    pd_diag_error(d, path, line, 2, "edge line must be '<node> -- <node>' with "
                                  "one-word node ids");
                } else {
                    edges[ne].line = line;
                    edge_txt[2 * ne] = a;
                    edge_txt[2 * ne + 1] = b;
                    ne++;
                }
            }
        } else if (parse_node(ln, line, &nodes[nn], path, d) == 0) {
            nn++;
        } else if (nodes[nn].id) {
            nodes[nn].bad = 1;
            nodes[nn].desc = "";
            nn++;
        }
        if (!nl) break;
        ln = nl + 1;
    }
    if (nn == 0 && d->errors == before) {
        pd_diag_error(d, path, 1, 1, "no nodes: not a PipeDream graph.txt");
    }
    t.cap = 16;
    while (t.cap < 2 * (size_t)nn + 2) t.cap *= 2;
    t.slot = malloc(t.cap * sizeof(int));
    if (!t.slot) goto oom;
    for (size_t i = 0; i < t.cap; i++) t.slot[i] = -1;
    for (int i = 0; i < nn; i++) {
        int j = table_find(&t, nodes, nodes[i].id);
        if (j >= 0 && !nodes[i].bad && !nodes[j].bad) {
            pd_diag_error(d, path, nodes[i].line, 1, "duplicate node id '%s' (first at line %d)",
                          nodes[i].id, nodes[j].line);
            continue;
        }
        if (j >= 0) continue;
        table_put(&t, nodes, i);
        nodes[i].is_input = strncmp(nodes[i].desc, "Input", 5) == 0;
    }
    for (int e = 0; e < ne; e++) {
        edges[e].src = table_find(&t, nodes, edge_txt[2 * e]);
        edges[e].dst = table_find(&t, nodes, edge_txt[2 * e + 1]);
        if (edges[e].src < 0)
            pd_diag_error(d, path, edges[e].line, 2, "edge from unknown node '%s'",
                          edge_txt[2 * e]);
        if (edges[e].dst < 0)
            pd_diag_error(d, path, edges[e].line,
                          (int)(edge_txt[2 * e + 1] - edge_txt[2 * e]) + 2,
                          "edge to unknown node '%s'", edge_txt[2 * e + 1]);
        if (edges[e].src >= 0 && edges[e].src == edges[e].dst)
            pd_diag_error(d, path, edges[e].line, 2, "edge from '%s' to itself (a cycle)",
                          edge_txt[2 * e]);
        if (edges[e].src >= 0 && nodes[edges[e].src].is_input == 0 && edges[e].dst >= 0 &&
            nodes[edges[e].dst].is_input)
            pd_diag_error(d, path, edges[e].line, 2, "edge into input node '%s'",
                          edge_txt[2 * e + 1]);
    }
    if (d->errors > before) goto fail;
    /* Remove Input* nodes and __getitem__ sinks. */
    for (int e = 0; e < ne; e++) nodes[edges[e].src].n_out++;
    double input_bytes = 0, input_ms = 0;
    for (int i = 0; i < nn; i++) {
        if (nodes[i].is_input) {
            nodes[i].removed = 1;
            input_bytes += nodes[i].act;
            input_ms += nodes[i].fwd;
        } else if (strncmp(nodes[i].desc, "__getitem__", 11) == 0 && nodes[i].n_out == 0) {
            nodes[i].removed = 1;
        }
    }
    if (!(input_bytes <= PD_INPUT_MAX_BYTES) || !(input_ms <= PD_INPUT_MAX_MS)) {
        pd_diag_error(d, path, 1, 1, "the Input nodes' sizes or times sum to more than %g bytes "
                      "or %g ms", PD_INPUT_MAX_BYTES, PD_INPUT_MAX_MS);
        goto fail;
    }
    /* Kahn's algorithm over the kept nodes, ties by file order. */
    qsort(edges, (size_t)ne, sizeof *edges, cmp_edge);
    map = malloc(sizeof(int) * (size_t)(nn + 1));
    indeg = calloc((size_t)nn + 1, sizeof(int));
    heap = malloc(sizeof(int) * (size_t)(nn + 1));
    order = malloc(sizeof(int) * (size_t)(nn + 1));
    estart = calloc((size_t)nn + 2, sizeof(int));
    if (!map || !indeg || !heap || !order || !estart) goto oom;
    int kept_edges = 0;
    for (int e = 0; e < ne; e++) {
        if (e > 0 && edges[e].src == edges[e - 1].src && edges[e].dst == edges[e - 1].dst)
            continue;
        if (nodes[edges[e].src].removed || nodes[edges[e].dst].removed) continue;
        edges[kept_edges++] = edges[e];
    }
    ne = kept_edges;
    for (int e = 0; e < ne; e++) {
        indeg[edges[e].dst]++;
        estart[edges[e].src + 1]++;
    }
    for (int i = 0; i < nn; i++) estart[i + 1] += estart[i];
    int hn = 0, kept = 0, done = 0;
    for (int i = 0; i < nn; i++) {
        map[i] = -1;
        if (!nodes[i].removed) {
            kept++;
            if (indeg[i] == 0) heap_push(heap, &hn, i);
        }
    }
    while (hn > 0) {
        int v = heap_pop(heap, &hn);
        map[v] = done;
        order[done++] = v;
        for (int e = estart[v]; e < estart[v + 1]; e++)
            if (--indeg[edges[e].dst] == 0) heap_push(heap, &hn, edges[e].dst);
    }
    if (done < kept) {
        char names[512] = "";
        int shown = 0, first = -1;
        for (int i = 0; i < nn; i++)
            if (!nodes[i].removed && map[i] < 0) {
                if (first < 0) first = i;
                if (shown < 8) {
                    size_t ul = strlen(names);
                    snprintf(names + ul, sizeof names - ul, "%s%s", shown ? ", " : "",
                             nodes[i].id);
                }
                shown++;
            }
        pd_diag_error(d, path, nodes[first].line, 1, "the graph has a cycle through %d nodes "
                      "(%s%s)", shown, names, shown > 8 ? ", ..." : "");
        goto fail;
    }
    if (kept == 0) {
        pd_diag_error(d, path, 1, 1, "no nodes left after removing the inputs");
        goto fail;
    }
    g = pd_costgraph_new(kept, ne);
    if (!g) goto oom;
    g->input_bytes = input_bytes;
    g->input_ms = input_ms;
    for (int k = 0; k < kept; k++) {
        gnode *n = &nodes[order[k]];
        g->name[k] = strdup(n->id);
        if (!g->name[k]) goto oom;
        g->fwd_ms[k] = n->fwd;
        g->bwd_ms[k] = n->bwd;
        g->act_bytes[k] = n->act;
        g->param_bytes[k] = n->param;
    }
    for (int e = 0; e < ne; e++) {
        g->src[e] = map[edges[e].src];
        g->dst[e] = map[edges[e].dst];
    }
    g->n_edges = ne;
    /* Edges sorted by (src, dst) in the new numbering, for determinism. */
    for (int e = 0; e < ne; e++) {
        edges[e].src = g->src[e];
        edges[e].dst = g->dst[e];
    }
    qsort(edges, (size_t)ne, sizeof *edges, cmp_edge);
    for (int e = 0; e < ne; e++) {
        g->src[e] = edges[e].src;
        g->dst[e] = edges[e].dst;
    }
    goto done_ok;
oom:
    pd_diag_error(d, path, 0, 0, "out of memory");
fail:
    pd_costgraph_free(g);
    g = NULL;
done_ok:
    free(nodes);
    free(edges);
    free(edge_txt);
    free(t.slot);
    free(map);
    free(indeg);
    free(heap);
    free(order);
    free(estart);
    free(buf);
    return g;
}
