/* frontend.h: readers that turn user files into the planner's inputs.
 *
 * Every reader reports problems through pd_diag as file:line:col diagnostics, as many as it can
 * find, and returns nonzero (or NULL) when it found any error. None of them crashes, hangs or
 * leaks on any input: YAML aliases, deep nesting, duplicate keys, binary or empty files are all
 * diagnostics.
 */
#ifndef PD_FRONTEND_H
#define PD_FRONTEND_H

#include "cluster.h"
#include "planner/model/costgraph.h"
#include "planner/model/costs.h" /* the limits, the estimate and the cost graph */
#include "planner/model/model.h"
#include "planner/util/diag.h"

/* Model YAML (pd: 1): parses, validates, infers shapes, counts parameters and FLOPs.
 * On success *m is filled (free with pd_model_free) and 0 is returned. */
int pd_model_load(const char *path, pd_model *m, pd_diag *d);
/* The training settings of a model whose file has none (ONNX): name, batch, dataset, loss,
 * optimizer (SGD's momentum defaulting to 0.9) and epochs, each optional, from the YAML at path
 * over *m. Returns 0, or 1 after diagnostics. */
int pd_model_apply_settings(const char *path, pd_model *m, pd_diag *d);
/* `tie:` (model_ties.c): sets every tied layer's tied_to, after shape inference; returns the
 * number of errors (diagnostics at the tie). */
int pd_resolve_ties(pd_model *m, const char *file, pd_diag *d);

/* The readers on text already in memory (len bytes; path names it in diagnostics): pdplan reads
 * each input once, bounded (pd_read_file with the limit below, so that /dev/zero or a pipe ends
 * in a diagnostic), hashes that text for plan.yaml and parses it. The path-taking readers read
 * the file the same way and call these. */
#define PD_GRAPHTXT_MAX_BYTES (256L * 1024 * 1024) /* YAML's limit: PD_YAML_MAX_BYTES */
int pd_model_load_text(const char *path, const char *text, size_t len, pd_model *m, pd_diag *d);
int pd_profile_apply_text(const char *path, const char *text, size_t len, pd_model *m, pd_diag *d);
pd_costgraph *pd_graphtxt_load_text(const char *path, const char *text, size_t len, pd_diag *d);
int pd_cluster_load_text(const char *path, const char *text, size_t len, pd_cluster *c, pd_diag *d);

/* Profile YAML (pd_profile: 1): sets every layer's fwd_ms/bwd_ms from the profile. A profile
 * measured at another batch size is scaled linearly (with a warning). Layers missing from the
 * profile are an error. */
int pd_profile_apply(const char *path, pd_model *m, pd_diag *d);

/* PipeDream's graph.txt, as the original profiler writes it (see docs/formats.md). Input* nodes
 * are removed (their activation size becomes input_bytes) and __getitem__ sinks dropped, as the
 * original optimizer does; nodes are renumbered in a topological order. */
pd_costgraph *pd_graphtxt_load(const char *path, pd_diag *d);

/* Cluster YAML (pd_cluster: 1). */
int pd_cluster_load(const char *path, pd_cluster *c, pd_diag *d);

/* PipeDream-style flags: counts[n] workers per level (innermost first) and bandwidths[nb] in
 * bytes/s (nb == 0 means 1e9 for every level; otherwise nb must equal n). */
int pd_cluster_from_flags(pd_cluster *c, const int *counts, int n, const double *bandwidths,
                          int nb, double memory_bytes, pd_diag *d);

/* The default cluster: this machine's online cores as one level (bandwidth: shared memory,
 * 10 GB/s), no memory limit, device "cpu". */
void pd_cluster_default(pd_cluster *c);

#endif
