/* rt_data.c: what a run reads from its options: the data splits and the optimizer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* where named corpora live (make deps puts them there): $PD_DATA_DIR, else the checkout's
 * data/ folder, which the Makefile compiles in */
#ifndef PDRT_DATA_ROOT
#define PDRT_DATA_ROOT "data"
#endif

int pdrt_token_spec(char *train, char *val, size_t cap, pd_token_format *fmt, const char *dataset,
                    const char *data) {
    const char *named = "shakespeare_char";
    char f[8] = "";
    if (!strcmp(dataset, named)) {
        const char *root = getenv("PD_DATA_DIR");
        snprintf(train, cap, "%s/%s/train.bin", root && root[0] ? root : PDRT_DATA_ROOT, named);
        snprintf(val, cap, "%s/%s/val.bin", root && root[0] ? root : PDRT_DATA_ROOT, named);
        *fmt = PD_TOKENS_U8;
    } else if (!strncmp(dataset, "tokens:", 7)) {
        const char *p = dataset + 7, *c1 = strchr(p, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c1 - p >= (long)sizeof f || strchr(c2 + 1, ':')) return -1;
        memcpy(f, p, (size_t)(c1 - p));
        f[c1 - p] = 0;
        if (pd_token_format_parse(f, fmt)) return -1;
        snprintf(train, cap, "%.*s", (int)(c2 - c1 - 1), c1 + 1);
        snprintf(val, cap, "%s", c2 + 1);
    } else {
        return 0;
    }
    if (data && data[0] && strcmp(data, "synthetic")) { /* --data DIR: DIR/train.bin, val.bin */
        snprintf(train, cap, "%s/train.bin", data);
        snprintf(val, cap, "%s/val.bin", data);
    }
    return 1;
}

/* a token stream: --data tokens:..., or the model's with --data DIR naming its folder */
static int token_paths(char *tpath, char *vpath, size_t cap, pd_token_format *fmt,
                       const pdrt_args *a, const pdrt_stage *st) {
    const char *want = a->data[0] ? a->data : st->dataset;
    int tok = pdrt_token_spec(tpath, vpath, cap, fmt, a->data, NULL);
    if (!tok && strcmp(want, "synthetic"))
        tok = pdrt_token_spec(tpath, vpath, cap, fmt, st->dataset, a->data);
    if (tok < 0) PDRT_FAIL("data: '%s' is not tokens:u8|u16|llmc:TRAIN:VAL", want);
    return tok;
}

/* the synthetic sequence-to-sequence task (pd_reverse_init), the model's or --data's */
static int is_reverse(const pdrt_args *a, const pdrt_stage *st) {
    return !strcmp(a->data[0] ? a->data : st->dataset, "reverse");
}

int pdrt_targets(const pdrt_args *a, const pdrt_stage *st) {
    char tpath[2048], vpath[2048];
    pd_token_format fmt;
    if (is_reverse(a, st)) return st->in_c;
    return token_paths(tpath, vpath, sizeof tpath, &fmt, a, st) ? st->in_c : 1;
}

void pdrt_check_logits(const pdrt_stage *last, int targets) {
    int64_t want = (int64_t)last->batch * targets * last->classes;
    if (last->out_floats != want)
        PDRT_FAIL("data: the model's output is %lld floats a minibatch, but %s wants %d x %d x "
                  "%d (batch x targets x classes): %s", (long long)last->out_floats,
                  targets > 1 ? "a token stream" : "this dataset", last->batch, targets,
                  last->classes, targets > 1 ? "a token stream needs an output (T, classes)"
                                             : "a classifier needs an output (classes)");
}

void pdrt_data_open(pd_data *train, pd_data *test, const pdrt_args *a, const pdrt_stage *st) {
    const char *want = a->data[0] ? a->data : st->dataset;
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    char tpath[2048], vpath[2048], err[2600];
    pd_token_format fmt;
    if (is_reverse(a, st)) {
        if (st->in_h != 1 || st->in_w != 1)
            PDRT_FAIL("data: reverse needs the model input [T], not %dx%dx%d", st->in_c,
                      st->in_h, st->in_w);
        int64_t nt = a->synthetic_n / 4 > st->batch ? a->synthetic_n / 4 : st->batch;
        pd_reverse_init(train, a->synthetic_n, st->in_c, st->classes, a->seed, 1);
        pd_reverse_init(test, nt, st->in_c, st->classes, a->seed, 0);
        return;
    }
    int tok = token_paths(tpath, vpath, sizeof tpath, &fmt, a, st);
    if (tok) {
        if (st->in_h != 1 || st->in_w != 1)
            PDRT_FAIL("data: a token stream needs the model input [T], not %dx%dx%d", st->in_c,
                      st->in_h, st->in_w);
        if (pd_tokens_load(train, tpath, fmt, st->in_c, st->classes, 0, err, sizeof err) ||
            pd_tokens_load(test, vpath, fmt, st->in_c, st->classes, 1, err, sizeof err))
            PDRT_FAIL("data: %s", err);
        return;
    }
    if (!strcmp(want, "synthetic")) {
        int64_t nt = a->synthetic_n / 4 > st->batch ? a->synthetic_n / 4 : st->batch;
        pd_synthetic_init(train, a->synthetic_n, st->in_c, st->in_h, st->in_w, st->classes,
                          a->seed, 1);
        pd_synthetic_init(test, nt, st->in_c, st->in_h, st->in_w, st->classes, a->seed, 0);
        return;
    }
    const char *dir = !strcmp(want, "fashion-mnist") ? PD_FMNIST_DEFAULT_DIR : want;
    if (pd_fmnist_load(train, dir, 1, err, sizeof err) ||
        pd_fmnist_load(test, dir, 0, err, sizeof err))
        PDRT_FAIL("data: %s", err);
    if (train->C != st->in_c || train->H != st->in_h || train->W != st->in_w ||
        train->classes > st->classes)
        PDRT_FAIL("data: %s holds %dx%dx%d samples with %d classes; the model "
                "wants %dx%dx%d and %d", dir, train->C, train->H, train->W, train->classes,
                st->in_c, st->in_h, st->in_w, st->classes);
}

static int by_offset(const void *x, const void *y) {
    const pd_optim_span *a = x, *b = y;
    return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* AdamW's spans: the stage's parameter tensors in offset order, each decaying as the stage's
 * decay mask says, and whatever no tensor names not decaying */
static void decay_spans(pd_optim *o, const pdrt_stage *st) {
    if ((int)strlen(st->decay) != st->n_tensors)
        PDRT_FAIL("stage %d: its decay mask has %zu entries for %d tensors", st->index,
                  strlen(st->decay), st->n_tensors);
    pd_optim_span *sp = calloc(2 * (size_t)st->n_tensors + 1, sizeof *sp);
    PDRT_CHECK(sp != NULL);
    int n = 0;
    for (int i = 0; i < st->n_tensors; i++)
        if (!st->tensors[i].is_buffer)
            sp[n++] = (pd_optim_span){st->tensors[i].offset, st->tensors[i].numel,
                                      st->decay[i] == '1'};
    qsort(sp, (size_t)n, sizeof *sp, by_offset);
    int m = n;
    int64_t at = 0;
    for (int i = 0; i < n; i++) { /* the gaps, if any, as spans that do not decay */
        PDRT_CHECK(sp[i].offset >= at);
        if (sp[i].offset > at) sp[m++] = (pd_optim_span){at, sp[i].offset - at, 0};
        at = sp[i].offset + sp[i].n;
    }
    PDRT_CHECK(at <= st->n_params);
    if (at < st->n_params) sp[m++] = (pd_optim_span){at, st->n_params - at, 0};
    qsort(sp, (size_t)m, sizeof *sp, by_offset);
    o->spans = sp;
    o->n_spans = m;
}

void pdrt_optim_from(pd_optim *o, const pdrt_stage *st, const pdrt_args *a) {
    memset(o, 0, sizeof *o);
    o->kind = st->optimizer == 2 ? PD_OPTIM_ADAMW
              : st->optimizer == 1 ? PD_OPTIM_ADAM : PD_OPTIM_SGD;
    o->lr = (float)(a->lr >= 0 ? a->lr : st->lr);
    o->momentum = (float)st->momentum;
    o->weight_decay = (float)st->weight_decay;
    o->beta1 = (float)st->beta1;
    o->beta2 = (float)st->beta2;
    o->eps = (float)st->adam_eps;
    o->warmup_iters = a->warmup >= 0 ? a->warmup : st->warmup_iters;
    o->lr_decay_iters = a->lr_decay_iters >= 0 ? a->lr_decay_iters : st->lr_decay_iters;
    o->min_lr = (float)(a->min_lr >= 0 ? a->min_lr : st->min_lr);
    o->clip_grad_norm = (float)(a->clip_grad_norm >= 0 ? a->clip_grad_norm : st->clip_grad_norm);
    if (o->kind == PD_OPTIM_ADAMW && st->decay) decay_spans(o, st);
}

void pdrt_optim_free(pd_optim *o) {
    free((void *)o->spans);
    o->spans = NULL;
    o->n_spans = 0;
}

void pdrt_clip_check(const pd_optim *o, const pdrt_stage *st, const pdrt_args *a) {
    if (o->clip_grad_norm <= 0 || strcmp(pdrt_schedule_name(st, a), "1f1b")) return;
    for (int k = 1; k < st->n_stages; k++)
        if (pdrt_replicas(st, k) != pdrt_replicas(st, 0))
            PDRT_FAIL("clipping by the global norm under 1f1b needs every stage to have the same "
                      "replicas (stage 0 has %d, stage %d %d): use flush or gpipe",
                      pdrt_replicas(st, 0), k, pdrt_replicas(st, k));
}
