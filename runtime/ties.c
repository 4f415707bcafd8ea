/* ties.c: what every mode does alike with tied weights (docs/formats.md, "Tied weights"; the
 * semantics per schedule in docs/design-decisions.md): which tensors are the tied layers' copies
 * (--save skips them, --init fills them from the owner), the sum of two copies' gradients in a
 * fixed order (the owner's plus the tied layer's), the squared norm that counts a tied weight
 * once, and the 1f1b rule that tied stages have the same replica count. The exchange between
 * ranks is executor_ties.c's; --single and --emulate (local.c) call pdrt_tie_sum on the two
 * stages' gradients directly. */
#include <string.h>

#include "rt.h"

int pdrt_tie_copy(const pdrt_stage *st, int tensor) {
    for (int i = 0; i < st->n_ties; i++)
        if (st->ties[i].tensor == tensor && !st->ties[i].owner) return 1;
    return 0;
}

void pdrt_tie_sum(float *owner, float *tied, int64_t n) {
    for (int64_t i = 0; i < n; i++) owner[i] = tied[i] = owner[i] + tied[i];
}

void pdrt_ties_local(const pdrt_stage *st, float *g) {
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        if (t->peer_stage != st->index || !t->owner) continue;
        const pdrt_tensor *a = &st->tensors[t->tensor], *b = &st->tensors[t->peer_tensor];
        pdrt_tie_sum(g + a->offset, g + b->offset, a->numel);
    }
}

void pdrt_ties_init_local(const pdrt_stage *st, float *params) {
    for (int i = 0; i < st->n_ties; i++) {
        const pdrt_tie *t = &st->ties[i];
        if (t->peer_stage != st->index || !t->owner) continue;
        const pdrt_tensor *a = &st->tensors[t->tensor], *b = &st->tensors[t->peer_tensor];
        memcpy(params + b->offset, params + a->offset, (size_t)a->numel * sizeof(float));
    }
}

double pdrt_ties_sq_norm(const pdrt_stage *st, const float *g) {
    if (!st->n_ties) return pd_sq_norm(g, (size_t)st->n_params);
    /* the blob in offset order, leaving out the tied layers' copies (tensors are in blob order) */
    double sq = 0;
    int64_t at = 0;
    for (int i = 0; i < st->n_tensors; i++) {
        const pdrt_tensor *t = &st->tensors[i];
        if (t->is_buffer || !pdrt_tie_copy(st, i)) continue;
        PDRT_CHECK(t->offset >= at);
        sq += pd_sq_norm(g + at, (size_t)(t->offset - at));
        at = t->offset + t->numel;
    }
    return sq + pd_sq_norm(g + at, (size_t)(st->n_params - at));
}

void pdrt_ties_check(const pdrt_stage *st, const pdrt_args *a) {
    if (strcmp(pdrt_schedule_name(st, a), "1f1b")) return;
    for (int i = 0; i < st->n_ties; i++) {
        int p = st->ties[i].peer_stage;
        if (pdrt_replicas(st, p) != pdrt_replicas(st, st->index))
            PDRT_FAIL("tied weights under 1f1b need the two stages to have the same replicas "
                      "(stage %d has %d, stage %d %d): their updates would not pair up; use "
                      "flush or gpipe", st->index, pdrt_replicas(st, st->index), p,
                      pdrt_replicas(st, p));
    }
}
