/* pdprof_train.h: pdprof --train (pdprof_train.c), a profile measured inside training. */
#ifndef PDPROF_TRAIN_H
#define PDPROF_TRAIN_H

#include <stddef.h>

#include "planner/read/frontend.h"

typedef struct {
    const char *model_path; /* the model YAML */
    const char *data;       /* "synthetic" or a Fashion-MNIST folder */
    int steps;              /* minibatches to train (the first tenth, at most 20, warm up) */
    int jobs;               /* trainings at once (as many as the run will have ranks per host) */
    int keep;               /* keep the temporary folder (generated stage, run, log) */
    int quiet;              /* no progress on stderr */
} pdprof_train_opts;

/* Plans m (loaded from o->model_path) as one stage, builds it, trains it o->jobs times at once
 * for o->steps minibatches, and sets fwd[i], bwd[i] (m->n_layers entries; layer 0 the input) to
 * the mean over the jobs of the runtime's per-layer times, and header to a comment line for
 * the profile. Returns 0, or 1 with the reason on stderr. */
int pdprof_train(const pdprof_train_opts *o, const pd_model *m, double *fwd, double *bwd,
                 char *header, size_t header_cap);

#endif
