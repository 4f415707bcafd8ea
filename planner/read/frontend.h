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
#include "diag.h"
#include "planner/model/model.h"

/* Largest values the readers accept, so that the planner's sums and quotients of them stay
 * finite: a time per minibatch (1e12 ms is 31 years), a tensor or parameter size in bytes, and
 * the smallest bandwidth in bytes/s. Larger (or smaller) values are diagnostics. */
#define PD_INPUT_MAX_MS 1e12
#define PD_INPUT_MAX_BYTES 1e18
#define PD_INPUT_MIN_BANDWIDTH 1.0

/* Model YAML (pd: 1): parses, validates, infers shapes, counts parameters and FLOPs.
 * On success *m is filled (free with pd_model_free) and 0 is returned. */
int pd_model_load(const char *path, pd_model *m, pd_diag *d);

/* Profile YAML (pd_profile: 1): sets every layer's fwd_ms/bwd_ms from the profile. A profile
 * measured at another batch size is scaled linearly (with a warning). Layers missing from the
 * profile are an error. */
int pd_profile_apply(const char *path, pd_model *m, pd_diag *d);

/* Analytic costs from FLOPs and bytes for a named device ("cpu", "h200", "v100"); marks the model
 * costs_estimated. Unknown device names are an error. */
int pd_estimate_costs(pd_model *m, const char *device, pd_diag *d);

/* The cost graph of a model: node i is layer i+1 (the input layer is not a node; its bytes go to
 * input_bytes), act_bytes = 4 * batch * numel(out), param_bytes = 4 * (n_weight + n_bias). */
pd_costgraph *pd_model_costgraph(const pd_model *m);

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
