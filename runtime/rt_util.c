/* rt_util.c: a stage's scratch size, the gather of the ranks' stats (and an interleaved rank's
 * row of them) and files written atomically
 * (the error exit, allocation, the clock and the MPI wait are runtime/base/base.c). */
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt.h"

FILE *pdrt_out_open(pdrt_out *o, const char *path) {
    if ((size_t)snprintf(o->path, sizeof o->path, "%s", path) >= sizeof o->path)
        PDRT_FAIL("path too long: %s", path);
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : path;
    if (slash) *slash = 0;
    if (slash && dir[0] && pdrt_mkdir_p(dir)) PDRT_FAIL("cannot create %s: %s", dir, strerror(errno));
    snprintf(o->tmp, sizeof o->tmp, "%s%s.%s.%d.tmp", slash ? dir : "", slash ? "/" : "", name,
             (int)getpid());
    o->f = fopen(o->tmp, "wb");
    if (!o->f) PDRT_FAIL("cannot write %s: %s", o->tmp, strerror(errno));
    return o->f;
}

void pdrt_out_commit(pdrt_out *o) {
    errno = 0;
    int err = fflush(o->f) || ferror(o->f) ? (errno ? errno : EIO) : 0;
    if (fclose(o->f) && !err) err = errno ? errno : EIO;
    o->f = NULL;
    if (!err && rename(o->tmp, o->path)) err = errno;
    if (err) {
        unlink(o->tmp);
        PDRT_FAIL("cannot write %s: %s", o->path, strerror(err));
    }
}

int64_t pdrt_scratch_floats(const pdrt_stage *st) {
    int64_t k = st->scratch_floats ? st->scratch_floats() : 0;
    return k > st->n_scratch ? k : st->n_scratch;
}

void pdrt_stage_stats_add_chunk(pdrt_stage_stats *sum, const pdrt_stage_stats *s,
                                const pdrt_stage *st) {
    sum->fwd_ms += s->fwd_ms, sum->bwd_ms += s->bwd_ms;
    sum->step_ms += s->step_ms, sum->wait_ms += s->wait_ms;
    sum->predicted_ms += st->predicted_ms;
    sum->predicted_compute_ms += st->predicted_compute_ms;
}

pdrt_stage_stats *pdrt_stage_stats_gather(const pdrt_stage_stats *mine, const int *first_rank,
                                      int n_stages, int out_rank) {
    int rank = 0, n = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    double v[8] = {mine->fwd_ms, mine->bwd_ms, mine->step_ms, mine->wait_ms, (double)mine->steps,
                   mine->predicted_ms, mine->predicted_compute_ms, (double)mine->skipped};
    int out = rank == out_rank;
    double *all = out ? calloc((size_t)n * 8, sizeof(double)) : NULL;
    if (out) PDRT_CHECK(all != NULL);
    pdrt_watch("the gathering of the stages' times", out_rank, -1);
    MPI_Gather(v, 8, MPI_DOUBLE, all, 8, MPI_DOUBLE, out_rank, MPI_COMM_WORLD);
    pdrt_unwatch();
    if (!out) return NULL;
    pdrt_stage_stats *ss = calloc((size_t)n_stages, sizeof *ss);
    PDRT_CHECK(ss != NULL);
    for (int k = 0; k < n_stages; k++) { /* the first replica's; skipped: all its replicas' */
        const double *f = all + 8 * first_rank[k];
        ss[k] = (pdrt_stage_stats){f[0], f[1], f[2], f[3], (int64_t)f[4], f[5], f[6], 0, 0};
        for (int r = first_rank[k]; r < first_rank[k + 1]; r++) {
            const double *u = all + 8 * r;
            double c = u[4] > 0 ? (u[0] + u[1] + u[2]) / u[4] : 0;
            if (c > ss[k].slowest_compute_ms) ss[k].slowest_compute_ms = c;
            ss[k].skipped += (int64_t)u[7];
        }
    }
    free(all);
    return ss;
}
