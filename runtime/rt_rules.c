/* rt_rules.c: the rules of a schedule that both pipeline executors (executor.c on the CPU,
 * cuda/executor_cuda.c on the GPU) follow, so that they cannot drift apart: which of vertical
 * sync, 2bw's two versions, the split backward and recomputation a run uses and what it refuses;
 * how many weight versions the stash keeps; which version a minibatch's forward uses; and how
 * many activation buffers recomputation keeps. The device-specific parts (copies, kernels) stay
 * in the executors. */
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "runtime/schedule/schedule.h"

void pdrt_rules_init(pdrt_rules *r, const pdrt_stage *st, const pdrt_args *a, int R) {
    memset(r, 0, sizeof *r);
    const char *s = pdrt_schedule_name(st, a);
    r->schedule = s;
    r->vsync = st->vertical_sync && !strcmp(s, "1f1b");
    r->w0 = st->warmup[0];
    r->two_bw = !strcmp(s, "2bw");
    r->M = pdrt_microbatches(st, a);
    r->split = pd_schedule_splits_backward(s);
    r->recompute = a->recompute >= 0 ? a->recompute : st->recompute;
    if (r->two_bw && r->M / R < st->warmup[st->index])
        PDRT_FAIL("2bw keeps two weight versions, which needs at least %d minibatches per "
                  "replica in a batch on stage %d (its warm-up); %d microbatches on %d "
                  "replica%s give %d: raise --microbatches", st->warmup[st->index], st->index,
                  r->M, R, R > 1 ? "s" : "", r->M / R);
    if (r->vsync)
        for (int k = 0; k < st->n_stages; k++)
            if (pdrt_replicas(st, k) != 1)
                PDRT_FAIL("vertical sync needs a straight pipeline (stage %d has %d "
                          "replicas)", k, pdrt_replicas(st, k));
    /* test-only: PDRT_INJECT_RECOMPUTE=skip (no recomputation) or bn-twice (the running
     * statistics updated by the recomputation too), to show that the tests can tell */
    const char *ir = getenv("PDRT_INJECT_RECOMPUTE");
    if (ir) r->inj_recompute = !strcmp(ir, "skip") ? 1 : !strcmp(ir, "bn-twice") ? 2 : -1;
    if (r->inj_recompute < 0) PDRT_FAIL("PDRT_INJECT_RECOMPUTE='%s': not skip or bn-twice", ir);
}

int pdrt_rules_versions(const pdrt_rules *r, const pdrt_stage *st, int in_flight) {
    int nv = st->weight_versions > in_flight ? st->weight_versions : in_flight;
    if (strcmp(r->schedule, "1f1b")) nv = r->two_bw ? 2 : 1; /* 2bw: two; synchronous: one */
    if (r->vsync && nv < r->w0 + 1) nv = r->w0 + 1;         /* back to the version stage 0 used */
    return nv;
}

float *pdrt_rules_forward_weights(const pdrt_rules *r, pdrt_stash *s, int64_t l, int64_t mb,
                                  int64_t epoch_base_updates) {
    if (r->vsync) { /* the version stage 0 uses for mb: after max(0, mb - w0) updates */
        int64_t v = epoch_base_updates + (mb > r->w0 ? mb - r->w0 : 0);
        return pdrt_stash_for_forward_at(s, l, v);
    }
    if (r->two_bw) { /* batch b of this schedule: the weights after update b - 2 */
        int64_t b = mb / r->M;
        return pdrt_stash_for_forward_at(s, l, epoch_base_updates + (b > 0 ? b - 1 : 0));
    }
    return pdrt_stash_for_forward(s, l);
}

int pdrt_rules_act_buffers(const pdrt_rules *r, int in_flight) {
    return r->recompute ? 1 : in_flight;
}
