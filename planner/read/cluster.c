/* cluster.c: the workers the planner may use: cluster YAML (pd_cluster: 1), PipeDream-style
 * -n/-b flags, and the default cluster (this machine's cores). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend.h"
#include "yaml_util.h"

int pd_cluster_workers(const pd_cluster *c) {
    long long w = 1;
    for (int l = 0; l < c->n_levels; l++) {
        w *= c->count[l];
        if (w > PD_MAX_WORKERS) return -1;
    }
    return c->n_levels > 0 ? (int)w : 0;
}

void pd_cluster_default(pd_cluster *c) {
    memset(c, 0, sizeof *c);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (cores > 4096) cores = 4096;
    snprintf(c->name, sizeof c->name, "local");
    c->n_levels = 1;
    c->count[0] = (int)cores;
    c->bandwidth[0] = 10e9;
    c->memory_bytes = 0;
    snprintf(c->device, sizeof c->device, "cpu");
}

int pd_cluster_from_flags(pd_cluster *c, const int *counts, int n, const double *bandwidths,
                          int nb, double memory_bytes, pd_diag *d) {
    int e = 0;
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "flags");
    snprintf(c->device, sizeof c->device, "cpu");
    if (n < 1 || n > PD_MAX_LEVELS) {
        pd_diag_error(d, "pdplan", 0, 0, "-n needs 1 to %d worker counts, got %d", PD_MAX_LEVELS,
                      n);
        return 1;
    }
    if (nb != 0 && nb != n) {
        pd_diag_error(d, "pdplan", 0, 0,
                      "-n gives %d levels but -b gives %d bandwidths: give one per level", n, nb);
        e++;
    }
    long long total = 1;
    for (int l = 0; l < n; l++) {
        if (counts[l] < 1) {
            pd_diag_error(d, "pdplan", 0, 0, "-n: level %d has %d workers; it needs at least 1",
                          l + 1, counts[l]);
            e++;
        } else {
            total *= counts[l];
            if (total > PD_MAX_WORKERS) {
                pd_diag_error(d, "pdplan", 0, 0, "-n: at most %d workers in all", PD_MAX_WORKERS);
                return 1;
            }
        }
        c->count[l] = counts[l];
    }
    for (int l = 0; l < n; l++) {
        double b = nb == 0 ? 1e9 : l < nb ? bandwidths[l] : 1e9;
        if (nb != 0 && l < nb && !(b >= PD_INPUT_MIN_BANDWIDTH && isfinite(b))) {
            pd_diag_error(d, "pdplan", 0, 0,
                          "-b: bandwidth %g of level %d must be a positive number of bytes/s, "
                          "finite and at least %g", b, l + 1, PD_INPUT_MIN_BANDWIDTH);
            e++;
        }
        c->bandwidth[l] = b;
    }
    if (!(memory_bytes >= 0 && isfinite(memory_bytes))) {
        pd_diag_error(d, "pdplan", 0, 0, "--memory must be a positive number of bytes, not %g",
                      memory_bytes);
        e++;
    }
    c->n_levels = n;
    c->memory_bytes = memory_bytes;
    return e ? 1 : 0;
}

static const char *const cluster_keys[] = {"pd_cluster", "name", "levels", "memory_per_worker",
                                           "device", NULL};
static const char *const level_keys[] = {"count", "bandwidth", NULL};

int pd_cluster_load(const char *path, pd_cluster *c, pd_diag *d) {
    pd_text t = pd_read_text(path, PD_YAML_MAX_BYTES, d);
    int rc = t.text ? pd_cluster_load_text(path, t.text, t.len, c, d) : (memset(c, 0, sizeof *c), 1);
    free(t.text);
    return rc;
}

int pd_cluster_load_text(const char *path, const char *text, size_t len, pd_cluster *c, pd_diag *d) {
    pd_yaml y;
    int e = 0;
    int64_t x;
    memset(c, 0, sizeof *c);
    snprintf(c->device, sizeof c->device, "cpu");
    if (pd_yaml_load_text(&y, path, text, len, d)) {
        pd_yaml_free(&y);
        return 1;
    }
    yaml_node_t *root = pd_yaml_root(&y), *v;
    e += pd_yaml_check_keys(&y, root, cluster_keys, "the cluster");
    v = pd_yaml_require(&y, root, "pd_cluster", "the cluster (pd_cluster: 1)");
    if (!v) e++;
    else if (pd_yaml_int(&y, v, "pd_cluster", 1, 1, &x)) e++;
    v = pd_yaml_get(&y, root, "name", NULL);
    if (v && pd_yaml_str(&y, v, "name", c->name, sizeof c->name)) e++;
    v = pd_yaml_get(&y, root, "device", NULL);
    if (v && pd_yaml_str(&y, v, "device", c->device, sizeof c->device)) e++;
    v = pd_yaml_get(&y, root, "memory_per_worker", NULL);
    if (v) {
        if (pd_yaml_double(&y, v, "memory_per_worker", &c->memory_bytes)) e++;
        else if (c->memory_bytes < 0) {
            pd_yaml_error(&y, v, "'memory_per_worker' must be >= 0 bytes (0: no limit)");
            e++;
        }
    }
    yaml_node_t *levels = pd_yaml_require(&y, root, "levels", "the cluster");
    if (!levels) {
        e++;
    } else if (levels->type != YAML_SEQUENCE_NODE || pd_yaml_seq_len(levels) < 1 ||
               pd_yaml_seq_len(levels) > PD_MAX_LEVELS) {
        pd_yaml_error(&y, levels, "'levels' must be a list of 1 to %d levels, innermost first",
                      PD_MAX_LEVELS);
        e++;
    } else {
        c->n_levels = pd_yaml_seq_len(levels);
        long long total = 1;
        for (int l = 0; l < c->n_levels; l++) {
            yaml_node_t *lv = pd_yaml_seq_item(&y, levels, l);
            if (pd_yaml_expect_map(&y, lv, "a level")) {
                e++;
                continue;
            }
            e += pd_yaml_check_keys(&y, lv, level_keys, "a level");
            v = pd_yaml_require(&y, lv, "count", "a level");
            if (!v) e++;
            else if (pd_yaml_int(&y, v, "count", 1, PD_MAX_WORKERS, &x)) e++;
            else {
                c->count[l] = (int)x;
                total *= x;
                if (total > PD_MAX_WORKERS) {
                    pd_yaml_error(&y, v, "at most %d workers in all", PD_MAX_WORKERS);
                    e++;
                    total = 1;
                }
            }
            v = pd_yaml_require(&y, lv, "bandwidth", "a level");
            if (!v) e++;
            else if (pd_yaml_double(&y, v, "bandwidth", &c->bandwidth[l])) e++;
            else if (!(c->bandwidth[l] > 0)) {
                pd_yaml_error(&y, v, "'bandwidth' must be > 0 bytes/s, not %g", c->bandwidth[l]);
                e++;
            } else if (c->bandwidth[l] < PD_INPUT_MIN_BANDWIDTH) {
                pd_yaml_error(&y, v, "'bandwidth' must be at least %g byte/s, not %g",
                              PD_INPUT_MIN_BANDWIDTH, c->bandwidth[l]);
                e++;
            }
        }
    }
    pd_yaml_free(&y);
    return e ? 1 : 0;
}
