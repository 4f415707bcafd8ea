/* rt_data.c: what a run reads from its options: the data splits and the optimizer. */
#include <stdio.h>
#include <string.h>

#include "rt.h"

void pdrt_data_open(pd_data *train, pd_data *test, const pdrt_args *a, const pdrt_stage *st) {
    const char *want = a->data[0] ? a->data : st->dataset;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!strcmp(want, "synthetic")) {
        int64_t nt = a->synthetic_n / 4 > st->batch ? a->synthetic_n / 4 : st->batch;
        pd_synthetic_init(train, a->synthetic_n, st->in_c, st->in_h, st->in_w, st->classes,
                          a->seed, 1);
        pd_synthetic_init(test, nt, st->in_c, st->in_h, st->in_w, st->classes, a->seed, 0);
        return;
    }
    const char *dir = !strcmp(want, "fashion-mnist") ? PD_FMNIST_DEFAULT_DIR : want;
    char err[512];
    if (pd_fmnist_load(train, dir, 1, err, sizeof err) ||
        pd_fmnist_load(test, dir, 0, err, sizeof err))
        PDRT_FAIL("data: %s", err);
    if (train->C != st->in_c || train->H != st->in_h || train->W != st->in_w ||
        train->classes > st->classes)
        PDRT_FAIL("data: %s holds %dx%dx%d samples with %d classes; the model "
                "wants %dx%dx%d and %d", dir, train->C, train->H, train->W, train->classes,
                st->in_c, st->in_h, st->in_w, st->classes);
}

void pdrt_optim_from(pd_optim *o, const pdrt_stage *st, const pdrt_args *a) {
    memset(o, 0, sizeof *o);
    o->kind = st->optimizer == 1 ? PD_OPTIM_ADAM : PD_OPTIM_SGD;
    o->lr = (float)(a->lr >= 0 ? a->lr : st->lr);
    o->momentum = (float)st->momentum;
    o->weight_decay = (float)st->weight_decay;
    o->beta1 = (float)st->beta1;
    o->beta2 = (float)st->beta2;
    o->eps = (float)st->adam_eps;
}
