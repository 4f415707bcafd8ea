/* yaml_util.h: shared libyaml document helpers for pdplan's YAML readers.
 *
 * pd_yaml_load reads a whole file, rejects binary content, anchors/aliases (no alias loops or
 * alias bombs), nesting deeper than PD_YAML_MAX_DEPTH, multiple documents and duplicate mapping
 * keys, each as a file:line:col diagnostic, and only then builds the libyaml document tree. The
 * typed getters report ill-typed scalars at the scalar's own position. Lines and columns passed to
 * pd_diag are 1-based (libyaml marks are 0-based; these helpers add 1).
 */
#ifndef PD_YAML_UTIL_H
#define PD_YAML_UTIL_H

#include <stdint.h>
#include <yaml.h>

#include "planner/util/diag.h"
#include "planner/util/hash.h"

#define PD_YAML_MAX_DEPTH 64
#define PD_YAML_MAX_BYTES (64L * 1024 * 1024)

typedef struct {
    yaml_document_t doc;
    int loaded;         /* doc is valid and must be deleted */
    const char *file;   /* path used in diagnostics (not owned) */
    pd_diag *d;
    char hash[17];      /* FNV-1a 64 of the file bytes, hex */
} pd_yaml;

/* Loads path. Returns 0 with y->doc ready (root non-NULL), or nonzero after reporting every
 * problem found. pd_yaml_free is safe to call in both cases. */
int pd_yaml_load(pd_yaml *y, const char *path, pd_diag *d);
/* The same on text in memory (len bytes, at most PD_YAML_MAX_BYTES); path names it. */
int pd_yaml_load_text(pd_yaml *y, const char *path, const char *text, size_t len, pd_diag *d);
void pd_yaml_free(pd_yaml *y);

yaml_node_t *pd_yaml_root(pd_yaml *y);
yaml_node_t *pd_yaml_node(pd_yaml *y, int id);
int pd_yaml_line(const yaml_node_t *n); /* 1-based */
int pd_yaml_col(const yaml_node_t *n);  /* 1-based */

/* An error at node n (position of n). */
void pd_yaml_error(pd_yaml *y, const yaml_node_t *n, const char *fmt, ...) PD_PRINTF(3, 4);

/* Value of key in mapping map, or NULL (also NULL when map is not a mapping). If key_node is not
 * NULL it receives the key's node. */
yaml_node_t *pd_yaml_get(pd_yaml *y, yaml_node_t *map, const char *key, yaml_node_t **key_node);

/* Reports (as errors) every key of map that is not in the NULL-terminated list allowed, and
 * non-scalar keys. Returns the number of errors. what names the mapping ("layer", "model"). */
int pd_yaml_check_keys(pd_yaml *y, yaml_node_t *map, const char *const *allowed, const char *what);

/* Requires map to be a mapping; else an error "<what> must be a mapping". Returns 0 if it is. */
int pd_yaml_expect_map(pd_yaml *y, yaml_node_t *n, const char *what);
int pd_yaml_expect_seq(pd_yaml *y, yaml_node_t *n, const char *what);

/* Typed scalar getters: each returns 0 and writes *out, or reports "'key' must be ..." at n and
 * returns nonzero. key is the name used in messages. */
int pd_yaml_int(pd_yaml *y, yaml_node_t *n, const char *key, int64_t lo, int64_t hi, int64_t *out);
int pd_yaml_double(pd_yaml *y, yaml_node_t *n, const char *key, double *out); /* finite only */
int pd_yaml_bool(pd_yaml *y, yaml_node_t *n, const char *key, int *out);      /* true|false */
/* A non-empty scalar copied into out (size cap); too long is an error. */
int pd_yaml_str(pd_yaml *y, yaml_node_t *n, const char *key, char *out, int cap);

/* Required-key variants: a missing key is an error at the mapping's position. */
yaml_node_t *pd_yaml_require(pd_yaml *y, yaml_node_t *map, const char *key, const char *what);

/* Number of items of a sequence node and the i-th item (NULL if out of range / not a sequence). */
int pd_yaml_seq_len(const yaml_node_t *n);
yaml_node_t *pd_yaml_seq_item(pd_yaml *y, yaml_node_t *n, int i);

/* 64-bit FNV-1a of bytes, as 16 hex digits. */
void pd_fnv1a_hex(char out[17], const void *bytes, size_t n);

/* Reads a whole file (NUL-terminated copy, *n its length). Reports open/read errors, files
 * larger than max_bytes, and returns NULL then. */
char *pd_read_file(const char *path, size_t max_bytes, size_t *n, pd_diag *d);
/* The same as a pair (text NULL on failure): what the path-taking readers hand their *_text
 * variants. */
typedef struct {
    char *text;
    size_t len;
} pd_text;
pd_text pd_read_text(const char *path, size_t max_bytes, pd_diag *d);

#endif
