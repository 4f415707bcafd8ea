/* rt_schedule.c: which schedule a stage runs, from its generated descriptor (the plan's schedule,
 * replicas, warm-up and minibatches per batch) and the run's options (--schedule,
 * --microbatches). The executor and the local runner both ask here, so they agree. */
#include <string.h>

#include "rt.h"
#include "runtime/schedule/schedule.h"

const char *pdrt_schedule_name(const pdrt_stage *st, const pdrt_args *a) {
    if (a->schedule[0]) return a->schedule;
    return st->schedule && st->schedule[0] ? st->schedule : "1f1b";
}

int pdrt_replicas(const pdrt_stage *st, int stage) {
    return st->replicas && st->replicas[stage] > 0 ? st->replicas[stage] : 1;
}

int pdrt_microbatches(const pdrt_stage *st, const pdrt_args *a) {
    if (a->microbatches > 0) return a->microbatches;
    if (st->microbatches > 0) return st->microbatches;
    int reps[256];
    int n = st->n_stages < 256 ? st->n_stages : 256;
    for (int k = 0; k < n; k++) reps[k] = pdrt_replicas(st, k);
    return pd_schedule_default_microbatches(n, reps);
}

pd_schedule *pdrt_schedule_for(const pdrt_stage *st, const pdrt_args *a, int steps) {
    int reps[256];
    PDRT_CHECK(st->n_stages <= 256);
    for (int k = 0; k < st->n_stages; k++) reps[k] = pdrt_replicas(st, k);
    pd_schedule_spec sp = {pdrt_schedule_name(st, a), st->n_stages, reps, NULL, st->warmup, steps,
                           pdrt_microbatches(st, a)};
    if (!strcmp(sp.name, "interleaved"))
        PDRT_FAIL("--schedule interleaved runs the ranks of a plan made with pdplan --schedule "
                  "interleaved --chunks V (its rank_R binaries), not one stage per rank");
    pd_schedule *s = pd_schedule_build(&sp);
    if (!s) PDRT_FAIL("cannot build the %s schedule for %d steps", sp.name, steps);
    return s;
}
