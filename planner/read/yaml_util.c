/* yaml_util.c: safe loading of YAML files into libyaml documents, and typed getters with
 * positions (see yaml_util.h). */
#include "yaml_util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pd_fnv1a_hex(char out[17], const void *bytes, size_t n) {
    snprintf(out, 17, "%016llx", (unsigned long long)pd_fnv1a(bytes, n, PD_FNV1A_BASIS));
}

pd_text pd_read_text(const char *path, size_t max_bytes, pd_diag *d) {
    pd_text t = {NULL, 0};
    t.text = pd_read_file(path, max_bytes, &t.len, d);
    return t;
}

char *pd_read_file(const char *path, size_t max_bytes, size_t *n, pd_diag *d) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        pd_diag_error(d, path, 0, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        pd_diag_error(d, path, 0, 0, "out of memory");
        return NULL;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max_bytes) {
                pd_diag_error(d, path, 0, 0, "file is larger than %zu bytes", max_bytes);
                free(buf);
                fclose(f);
                return NULL;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                pd_diag_error(d, path, 0, 0, "out of memory");
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        pd_diag_error(d, path, 0, 0, "read error: %s", strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    if (len > max_bytes) {
        pd_diag_error(d, path, 0, 0, "file is larger than %zu bytes", max_bytes);
        free(buf);
        return NULL;
    }
    buf[len] = 0;
    *n = len;
    return buf;
}

/* 1-based line and column of byte offset off in buf. */
static void offset_position(const char *buf, size_t len, size_t off, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void parser_error(pd_yaml *y, yaml_parser_t *p, const char *buf, size_t len) {
    int line, col;
    if (p->error == YAML_READER_ERROR) {
        offset_position(buf, len, p->problem_offset, &line, &col);
        pd_diag_error(y->d, y->file, line, col, "not valid YAML text: %s",
                      p->problem ? p->problem : "reader error");
        return;
    }
    line = (int)p->problem_mark.line + 1;
    col = (int)p->problem_mark.column + 1;
    if (p->context)
        pd_diag_error(y->d, y->file, line, col, "YAML syntax error: %s (%s, from line %d)",
                      p->problem ? p->problem : "?", p->context, (int)p->context_mark.line + 1);
    else
        pd_diag_error(y->d, y->file, line, col, "YAML syntax error: %s",
                      p->problem ? p->problem : "?");
}

/* Streams the events once: rejects anchors, aliases, excessive depth and extra documents before
 * any tree is built. Returns the number of errors. */
static int prescan(pd_yaml *y, const char *buf, size_t len) {
    yaml_parser_t p;
    yaml_event_t ev;
    int errors = 0, depth = 0, docs = 0, done = 0;
    if (!yaml_parser_initialize(&p)) {
        pd_diag_error(y->d, y->file, 0, 0, "out of memory");
        return 1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&p, &ev)) {
            parser_error(y, &p, buf, len);
            errors++;
            break;
        }
        int line = (int)ev.start_mark.line + 1, col = (int)ev.start_mark.column + 1;
        const yaml_char_t *anchor = NULL;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs == 2) {
                pd_diag_error(y->d, y->file, line, col,
                              "more than one YAML document in the file");
                errors++;
                done = 1;
            }
            break;
        case YAML_ALIAS_EVENT:
            pd_diag_error(y->d, y->file, line, col,
                          "YAML aliases (*%s) are not supported: write the value out",
                          (const char *)ev.data.alias.anchor);
            errors++;
            if (errors >= 5) done = 1; /* an alias bomb repeats itself: 5 are enough */
            break;
        case YAML_SCALAR_EVENT: anchor = ev.data.scalar.anchor; break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            anchor = ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                          : ev.data.mapping_start.anchor;
            if (++depth > PD_YAML_MAX_DEPTH) {
                pd_diag_error(y->d, y->file, line, col, "nesting deeper than %d levels",
                              PD_YAML_MAX_DEPTH);
                errors++;
                done = 1;
            }
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: depth--; break;
        default: break;
        }
        if (anchor) {
            pd_diag_error(y->d, y->file, line, col,
                          "YAML anchors (&%s) are not supported: write the value out",
                          (const char *)anchor);
            if (++errors >= 5) done = 1;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return errors;
}

typedef struct {
    const yaml_node_t *key;
    int order; /* position in the mapping */
} key_ref;

static int cmp_key(const void *a, const void *b) {
    const key_ref *x = a, *y = b;
    size_t lx = x->key->data.scalar.length, ly = y->key->data.scalar.length;
    int c = memcmp(x->key->data.scalar.value, y->key->data.scalar.value, lx < ly ? lx : ly);
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1;
    return x->order - y->order;
}

/* Reports duplicate keys in every mapping (the tree is alias-free, so a plain walk ends). Keys
 * are sorted, so that a mapping with very many keys is still checked quickly. */
static int check_duplicates(pd_yaml *y, yaml_node_t *n, int depth) {
    int errors = 0;
    if (!n || depth > PD_YAML_MAX_DEPTH + 1) return 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++)
            errors += check_duplicates(y, pd_yaml_node(y, *it), depth + 1);
    } else if (n->type == YAML_MAPPING_NODE) {
        yaml_node_pair_t *a0 = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
        size_t np = (size_t)(top - a0), nk = 0;
        key_ref *keys = malloc((np ? np : 1) * sizeof *keys);
        if (!keys) {
            pd_yaml_error(y, n, "out of memory");
            return 1;
        }
        for (yaml_node_pair_t *a = a0; a < top; a++) {
            yaml_node_t *k = pd_yaml_node(y, a->key);
            if (k && k->type == YAML_SCALAR_NODE) {
                keys[nk].key = k;
                keys[nk].order = (int)(a - a0);
                nk++;
            }
        }
        qsort(keys, nk, sizeof *keys, cmp_key);
        size_t run = 0; /* first key of the current run of equal keys (the earliest) */
        for (size_t i = 1; i < nk; i++) {
            const yaml_node_t *prev = keys[i - 1].key, *k = keys[i].key;
            if (prev->data.scalar.length == k->data.scalar.length &&
                memcmp(prev->data.scalar.value, k->data.scalar.value, k->data.scalar.length) ==
                    0) {
                pd_yaml_error(y, k, "duplicate key '%s' (first at line %d)",
                              (const char *)k->data.scalar.value, pd_yaml_line(keys[run].key));
                errors++;
            } else {
                run = i;
            }
        }
        free(keys);
        for (yaml_node_pair_t *a = a0; a < top; a++)
            errors += check_duplicates(y, pd_yaml_node(y, a->value), depth + 1);
    }
    return errors;
}

int pd_yaml_load(pd_yaml *y, const char *path, pd_diag *d) {
    pd_text t = pd_read_text(path, PD_YAML_MAX_BYTES, d);
    int rc = t.text ? pd_yaml_load_text(y, path, t.text, t.len, d) : (memset(y, 0, sizeof *y), 1);
    free(t.text);
    return rc;
}

int pd_yaml_load_text(pd_yaml *y, const char *path, const char *buf, size_t len, pd_diag *d) {
    memset(y, 0, sizeof *y);
    y->file = path;
    y->d = d;
    if (len > PD_YAML_MAX_BYTES) {
        pd_diag_error(d, path, 0, 0, "file is larger than %zu bytes", (size_t)PD_YAML_MAX_BYTES);
        return 1;
    }
    pd_fnv1a_hex(y->hash, buf, len);
    const char *nul = memchr(buf, 0, len);
    if (nul) {
        int line, col;
        offset_position(buf, len, (size_t)(nul - buf), &line, &col);
        pd_diag_error(d, path, line, col, "binary file (NUL byte at offset %zu), expected YAML",
                      (size_t)(nul - buf));
        return 1;
    }
    if (prescan(y, buf, len)) {
        return 1;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        pd_diag_error(d, path, 0, 0, "out of memory");
        return 1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, &y->doc)) {
        parser_error(y, &p, buf, len);
        yaml_parser_delete(&p);
        return 1;
    }
    y->loaded = 1;
    yaml_parser_delete(&p);
    yaml_node_t *root = yaml_document_get_root_node(&y->doc);
    if (!root) {
        pd_diag_error(d, path, 1, 1, "empty file, expected a YAML mapping");
        return 1;
    }
    if (root->type != YAML_MAPPING_NODE) {
        pd_yaml_error(y, root, "the document must be a mapping (key: value lines)");
        return 1;
    }
    return check_duplicates(y, root, 0) ? 1 : 0;
}

void pd_yaml_free(pd_yaml *y) {
    if (y->loaded) yaml_document_delete(&y->doc);
    y->loaded = 0;
}

yaml_node_t *pd_yaml_root(pd_yaml *y) {
    return y->loaded ? yaml_document_get_root_node(&y->doc) : NULL;
}

yaml_node_t *pd_yaml_node(pd_yaml *y, int id) {
    return y->loaded && id > 0 ? yaml_document_get_node(&y->doc, id) : NULL;
}

int pd_yaml_line(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }
int pd_yaml_col(const yaml_node_t *n) { return n ? (int)n->start_mark.column + 1 : 0; }

void pd_yaml_error(pd_yaml *y, const yaml_node_t *n, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pd_diag_error(y->d, y->file, pd_yaml_line(n), pd_yaml_col(n), "%s", msg);
}

static int scalar_is(const yaml_node_t *n, const char *s) {
    size_t len = strlen(s);
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
           memcmp(n->data.scalar.value, s, len) == 0;
}

yaml_node_t *pd_yaml_get(pd_yaml *y, yaml_node_t *map, const char *key, yaml_node_t **key_node) {
    if (!map || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = pd_yaml_node(y, p->key);
        if (scalar_is(k, key)) {
            if (key_node) *key_node = k;
            return pd_yaml_node(y, p->value);
        }
    }
    return NULL;
}

int pd_yaml_check_keys(pd_yaml *y, yaml_node_t *map, const char *const *allowed, const char *what) {
    int errors = 0;
    if (!map || map->type != YAML_MAPPING_NODE) return 0;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = pd_yaml_node(y, p->key);
        if (!k || k->type != YAML_SCALAR_NODE) {
            pd_yaml_error(y, k, "%s keys must be plain words", what);
            errors++;
            continue;
        }
        int ok = 0;
        for (int i = 0; allowed[i]; i++)
            if (scalar_is(k, allowed[i])) ok = 1;
        if (!ok) {
            pd_yaml_error(y, k, "unknown key '%s' in %s", (const char *)k->data.scalar.value,
                          what);
            errors++;
        }
    }
    return errors;
}

int pd_yaml_expect_map(pd_yaml *y, yaml_node_t *n, const char *what) {
    if (n && n->type == YAML_MAPPING_NODE) return 0;
    pd_yaml_error(y, n, "%s must be a mapping", what);
    return 1;
}

int pd_yaml_expect_seq(pd_yaml *y, yaml_node_t *n, const char *what) {
    if (n && n->type == YAML_SEQUENCE_NODE) return 0;
    pd_yaml_error(y, n, "%s must be a list", what);
    return 1;
}

yaml_node_t *pd_yaml_require(pd_yaml *y, yaml_node_t *map, const char *key, const char *what) {
    yaml_node_t *v = pd_yaml_get(y, map, key, NULL);
    if (!v) pd_yaml_error(y, map, "%s is missing the required key '%s'", what, key);
    return v;
}

/* The scalar's text if n is a plain scalar, else NULL. */
static const char *plain_text(const yaml_node_t *n) {
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

int pd_yaml_int(pd_yaml *y, yaml_node_t *n, const char *key, int64_t lo, int64_t hi,
                int64_t *out) {
    const char *s = plain_text(n);
    if (s && *s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (*end == 0 && errno == 0) {
            if (v < lo || v > hi) {
                pd_yaml_error(y, n, "'%s' must be between %lld and %lld, not %lld", key,
                              (long long)lo, (long long)hi, v);
                return 1;
            }
            *out = v;
            return 0;
        }
    }
    pd_yaml_error(y, n, "'%s' must be an integer", key);
    return 1;
}

int pd_yaml_double(pd_yaml *y, yaml_node_t *n, const char *key, double *out) {
    const char *s = plain_text(n);
    if (s && *s) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (*end == 0 && errno != ERANGE) {
            if (!isfinite(v)) {
                pd_yaml_error(y, n, "'%s' must be a finite number, not %s", key, s);
                return 1;
            }
            *out = v;
            return 0;
        }
        if (strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0 || strcmp(s, ".inf") == 0 ||
            strcmp(s, "-.inf") == 0) {
            pd_yaml_error(y, n, "'%s' must be a finite number, not %s", key, s);
            return 1;
        }
    }
    pd_yaml_error(y, n, "'%s' must be a number", key);
    return 1;
}

int pd_yaml_bool(pd_yaml *y, yaml_node_t *n, const char *key, int *out) {
    const char *s = plain_text(n);
    if (s && strcmp(s, "true") == 0) {
        *out = 1;
        return 0;
    }
    if (s && strcmp(s, "false") == 0) {
        *out = 0;
        return 0;
    }
    pd_yaml_error(y, n, "'%s' must be true or false", key);
    return 1;
}

int pd_yaml_str(pd_yaml *y, yaml_node_t *n, const char *key, char *out, int cap) {
    if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.length == 0) {
        pd_yaml_error(y, n, "'%s' must be a non-empty string", key);
        return 1;
    }
    if (n->data.scalar.length >= (size_t)cap) {
        pd_yaml_error(y, n, "'%s' is longer than %d characters", key, cap - 1);
        return 1;
    }
    memcpy(out, n->data.scalar.value, n->data.scalar.length);
    out[n->data.scalar.length] = 0;
    return 0;
}

int pd_yaml_seq_len(const yaml_node_t *n) {
    if (!n || n->type != YAML_SEQUENCE_NODE) return 0;
    return (int)(n->data.sequence.items.top - n->data.sequence.items.start);
}

yaml_node_t *pd_yaml_seq_item(pd_yaml *y, yaml_node_t *n, int i) {
    if (i < 0 || i >= pd_yaml_seq_len(n)) return NULL;
    return pd_yaml_node(y, n->data.sequence.items.start[i]);
}
