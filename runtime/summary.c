/* summary.c: the end-of-run report: run/summary.json (written atomically) and the printed
 * predicted-against-measured table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <math.h>

#include "rt.h"

int pdrt_mkdir_p(const char *dir) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) return -1;
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(buf, 0777) && errno != EEXIST) return -1;
    return 0;
}

static void num(FILE *f, const char *key, double v, int last) {
    if (v != v) fprintf(f, "  \"%s\": null%s\n", key, last ? "" : ",");
    else fprintf(f, "  \"%s\": %.6g%s\n", key, v, last ? "" : ",");
}

void pdrt_summary_write(const char *dir, const pdrt_summary *s) {
    char path[4200];
    pdrt_out o;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    FILE *f = pdrt_out_open(&o, path);
    fprintf(f, "{\n  \"model\": \"%s\",\n  \"mode\": \"%s\",\n  \"schedule\": \"%s\",\n", s->model,
            s->mode, s->schedule);
    fprintf(f, "  \"stages\": %d,\n  \"batch\": %d,\n  \"steps\": %lld,\n  \"epochs\": %d,\n",
            s->n_stages, s->batch, (long long)s->steps, s->epochs_done);
    num(f, "final_loss", s->final_loss, 0);
    num(f, "test_accuracy", s->test_accuracy >= 0 ? s->test_accuracy : (double)NAN, 0);
    num(f, "samples_per_s", s->samples_per_s, 0);
    num(f, "val_loss", s->has_val_loss ? s->val_loss : (double)NAN, 0);
    num(f, "tokens_per_s", s->samples_per_s * (s->targets > 1 ? s->targets : 1), 0);
    num(f, "wall_s", s->wall_s, 0);
    num(f, "train_s", s->train_s, 0);
    if (s->target_accuracy >= 0) num(f, "target_accuracy", s->target_accuracy, 0);
    if (s->target_loss >= 0) num(f, "target_loss", s->target_loss, 0);
    if (s->target_accuracy >= 0 || s->target_loss >= 0) {
        num(f, "time_to_target_s", s->time_to_target_s >= 0 ? s->time_to_target_s : (double)NAN, 0);
        if (s->time_to_target_s >= 0) fprintf(f, "  \"target_step\": %lld,\n", (long long)s->target_step);
        else fprintf(f, "  \"target_step\": null,\n");
    }
    if (s->curves && s->curves->n_eval) { /* every evaluation: step, seconds, accuracy, loss */
        fprintf(f, "  \"evaluations\": [\n");
        for (int i = 0; i < s->curves->n_eval; i++) {
            const pdrt_point *p = &s->curves->eval[i];
            fprintf(f, "    {\"step\": %lld, \"time_s\": %.6g, \"test_accuracy\": %.6g", (long long)p->step,
                    p->t, p->v);
            if (s->has_val_loss) fprintf(f, ", \"val_loss\": %.6g", p->v2);
            fprintf(f, "}%s\n", i + 1 < s->curves->n_eval ? "," : "");
        }
        fprintf(f, "  ],\n");
    }
    if (s->checkpoints > 0) {
        fprintf(f, "  \"checkpoints\": %lld,\n", (long long)s->checkpoints);
        num(f, "checkpoint_s", s->checkpoint_s, 0);
    }
    if (s->resumed_from > 0) fprintf(f, "  \"resumed_from_step\": %lld,\n", (long long)s->resumed_from);
    if (s->skip_nonfinite) {
        int64_t most = 0;
        for (int k = 0; k < s->n_stages; k++)
            if (s->stages[k].skipped > most) most = s->stages[k].skipped;
        fprintf(f, "  \"skipped_steps\": %lld,\n", (long long)most);
    }
    fprintf(f, "  \"per_stage\": [\n");
    for (int k = 0; k < s->n_stages; k++) {
        const pdrt_stage_stats *t = &s->stages[k];
        double n = t->steps > 0 ? (double)t->steps : 1;
        fprintf(f,
                "    {\"stage\": %d, \"predicted_ms\": %.6g, \"predicted_compute_ms\": %.6g, "
                "\"measured_ms\": %.6g, \"measured_compute_ms\": %.6g, \"forward_ms\": %.6g, "
                "\"backward_ms\": %.6g, \"step_ms\": %.6g, \"wait_ms\": %.6g, "
                "\"slowest_replica_compute_ms\": %.6g, \"skipped\": %lld}%s\n",
                k, t->predicted_ms, t->predicted_compute_ms,
                (t->fwd_ms + t->bwd_ms + t->step_ms + t->wait_ms) / n,
                (t->fwd_ms + t->bwd_ms + t->step_ms) / n, t->fwd_ms / n, t->bwd_ms / n,
                t->step_ms / n, t->wait_ms / n,
                t->slowest_compute_ms > 0 ? t->slowest_compute_ms
                                          : (t->fwd_ms + t->bwd_ms + t->step_ms) / n,
                (long long)t->skipped, k + 1 < s->n_stages ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    pdrt_out_commit(&o);
}

void pdrt_summary_print(const pdrt_summary *s) {
    printf("stage  predicted_ms  measured_ms  (compute  fwd  bwd  step  wait)\n");
    for (int k = 0; k < s->n_stages; k++) {
        const pdrt_stage_stats *t = &s->stages[k];
        double n = t->steps > 0 ? (double)t->steps : 1;
        printf("%5d  %12.3f  %11.3f  (%.3f  %.3f  %.3f  %.3f  %.3f)\n", k, t->predicted_ms,
               (t->fwd_ms + t->bwd_ms + t->step_ms + t->wait_ms) / n,
               (t->fwd_ms + t->bwd_ms + t->step_ms) / n, t->fwd_ms / n, t->bwd_ms / n,
               t->step_ms / n, t->wait_ms / n);
    }
    printf("steps %lld  final_loss %.4f  samples/s %.1f  wall %.2f s\n", (long long)s->steps,
           s->final_loss, s->samples_per_s, s->wall_s);
    if (s->test_accuracy >= 0) printf("final test accuracy %.4f\n", s->test_accuracy);
    if (s->has_val_loss) printf("validation loss %.4f nats per token\n", s->val_loss);
    if (s->target_accuracy >= 0 || s->target_loss >= 0) {
        char what[96];
        if (s->target_accuracy >= 0)
            snprintf(what, sizeof what, "target accuracy %.4f", s->target_accuracy);
        else
            snprintf(what, sizeof what, "target validation loss %.4f", s->target_loss);
        if (s->time_to_target_s >= 0)
            printf("reached %s in %.2f s (step %lld)\n", what, s->time_to_target_s,
                   (long long)s->target_step);
        else
            printf("did not reach %s\n", what);
    }
    fflush(stdout);
}
