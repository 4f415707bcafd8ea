/* rt_schedule.c: which schedule a stage runs, from its generated descriptor (the plan's schedule,
 * replicas, warm-up and minibatches per batch) and the run's options (--schedule,
 * --microbatches). The executor and the local runner both ask here, so they agree; and the
 * checks and buffer count an interleaved rank's entries (CPU and CUDA) share. */
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

void pdrt_chunks_check(const pdrt_args *a, const pdrt_stage *const *stages, int v, int rank, int p) {
    /* v >= 2: with one chunk, the executors would treat the rank as a one-stage-per-rank state */
    if (v < 2 || v > 64) PDRT_FAIL("%d chunks per rank: not 2 to 64", v);
    if (a->schedule[0] && strcmp(a->schedule, "interleaved"))
        PDRT_FAIL("an interleaved plan's ranks run --schedule interleaved only, not %s", a->schedule);
    for (int c = 0; c < v; c++) {
        const pdrt_stage *st = stages[c];
        if (st->n_stages != p * v || st->index != c * p + rank)
            PDRT_FAIL("rank %d of %d holds stage %d of %d as chunk %d: the plan has %d chunks "
                      "per rank, so it runs on %d ranks (pdlaunch starts them)", rank, p,
                      st->index, st->n_stages, c, v, st->n_stages / v);
    }
}

void pdrt_chunks_check_microbatches(int M, int p) {
    if (M < p || M % p)
        PDRT_FAIL("interleaved runs minibatches in groups of the %d ranks: %d microbatches per "
                  "batch is not a multiple of %d (--microbatches)", p, M, p);
}

/* The most minibatches of stage `stage` a rank holds at once: from the receive of a minibatch's
 * input (its forward on the first stage) to its backward (backward_weight). */
static int stage_in_flight(const pd_rank_schedule *rs, int stage) {
    int cur = 0, most = 1, received = 0; /* received: inputs whose forward has not run yet */
    for (int i = 0; i < rs->n; i++) {
        const pd_action *a = &rs->a[i];
        if (a->stage != stage) continue;
        if (a->kind == PD_A_RECV_ACT) {
            received++;
            cur++;
        } else if (a->kind == PD_A_FORWARD) {
            if (received) received--;
            else cur++; /* the first stage: no receive */
        } else if (a->kind == PD_A_BACKWARD || a->kind == PD_A_BACKWARD_WEIGHT) {
            cur--;
        }
        if (cur > most) most = cur;
    }
    return most;
}

int pdrt_chunks_in_flight(int p, int v, int rank, int M, int chunk) {
    int most = 0;
    for (int m = 1; m <= M; m++) {
        pd_schedule *t = pd_schedule_interleaved(p, v, m, M);
        PDRT_CHECK(t != NULL);
        int k = stage_in_flight(&t->ranks[rank], chunk * p + rank);
        if (k > most) most = k;
        pd_schedule_free(t);
    }
    return most;
}
