/* executor_cuda_chunks.c: pdrt_cuda_main_chunks, the CUDA executor's entry for interleaved plans
 * (pdplan --schedule interleaved --chunks V --backend cuda): MPI rank r of p runs V stages on one
 * GPU, its chunks r, r + p, ..., each with its own weights (one version: the schedule is
 * synchronous), optimizer state, gradient sum and in-flight buffers (one cx_t each, as
 * executor_cuda.c keeps them for one stage), through the interleaved schedule IR
 * (runtime/schedule/interleaved.c) and the shared pdrt_cx_run_epoch: every action on the chunk of
 * its stage, one update per batch of M minibatches (M a multiple of p). The chunks share the
 * rank's CUDA context, one device arena (the IPC transport exports one per rank) and the links
 * to the two neighbouring ranks: each chunk sends through its own slots of a link, its messages
 * tagged by the link's edge (pdrt_chunk_tag), and every link delivers in order
 * (pd_schedule_check_in_order, which NCCL's matching needs). Evaluation runs through host memory
 * and MPI. Tied weights across stages, clipping by the global norm and --check-replicas's
 * comparison of tied copies run the CPU executor's own code (executor_chunks_step.c) on a host
 * mirror of the chunks' accumulators and weights, so their sums, order and messages are the
 * CPU's, at the price of a gradient download and upload per update where a rank has ties or
 * clipping. Not yet, as for every CUDA stage: checkpoints and --skip-nonfinite. */
#include <cuda_runtime.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor_cuda.h"
#include "runtime/cuda/transport/transport_internal.h"
#include "runtime/executor.h"

/* Refuses what this entry does not run, naming it. */
static void refuse_unsupported(const pdrt_cuda_stage *chunks, int v) {
    for (int c = 0; c < v; c++)
        if (chunks[c].precision != chunks[0].precision)
            PDRT_FAIL("the chunks of an interleaved rank have different precisions (stage %d's and "
                      "stage %d's): regenerate the plan with one --precision",
                      chunks[0].base.index, chunks[c].base.index);
}

/* ---- the host mirror: ties and clipping through the CPU executor's code ---- */

/* The mirror of e's v chunks (NULL when no chunk has ties and there is no clipping): an ex_t
 * per chunk with what executor_chunks_step.c reads (stage, options, rank, accumulator with its
 * count in the last float, the clipping threshold, a one-version host weight stash). */
static ex_t *mirror_new(cx_t *e, int v, MPI_Comm tie_comm) {
    int ties = 0;
    for (int c = 0; c < v; c++) ties |= e[c].st->n_ties > 0;
    if (!ties && !(e[0].opt.clip_grad_norm > 0)) return NULL;
    ex_t *m = calloc((size_t)v, sizeof *m);
    PDRT_CHECK(m != NULL);
    for (int c = 0; c < v; c++) {
        m[c].st = e[c].st;
        m[c].a = e[c].a;
        m[c].rank = e[c].rank;
        m[c].n = e[c].n;
        m[c].R = 1;
        m[c].chunks = v;
        m[c].tie_comm = tie_comm;
        m[c].opt.clip_grad_norm = e[c].opt.clip_grad_norm;
        m[c].acc = pdrt_alloc((size_t)e[c].st->n_params + 1);
        pdrt_stash_init(&m[c].stash, 1, e[c].st->n_params ? e[c].st->n_params : 1, 1);
    }
    return m;
}

static void mirror_free(ex_t *m, int v) {
    for (int c = 0; m && c < v; c++) {
        free(m[c].acc);
        pdrt_stash_free(&m[c].stash);
    }
    free(m);
}

void pdrt_cx_chunks_before_steps(cx_t *e0, int v) {
    ex_t *m = e0->mirror;
    if (!m) return;
    for (int c = 0; c < v; c++) {
        int64_t np = e0[c].st->n_params;
        pd_cuda_download(e0[c].ctx, m[c].acc, e0[c].acc, (size_t)np * sizeof(float));
        m[c].acc[np] = (float)e0[c].acc_count;
    }
    double wait0 = m[0].stats.wait_ms;
    pdrt_ex_chunks_before_steps(m, v);
    e0->stats.wait_ms += m[0].stats.wait_ms - wait0;
    for (int c = 0; c < v; c++) {
        int64_t np = e0[c].st->n_params;
        pd_cuda_upload(e0[c].ctx, e0[c].acc, m[c].acc, (size_t)np * sizeof(float));
        e0[c].acc_count = (int64_t)m[c].acc[np]; /* 1 after clipping's mean */
        e0[c].clip_coef = m[c].clip_coef;
    }
}

void pdrt_cx_chunks_ties_check(cx_t *e0, int v) {
    ex_t *m = e0->mirror;
    if (!m) return;
    for (int c = 0; c < v; c++)
        pd_cuda_download(e0[c].ctx, pdrt_stash_newest(&m[c].stash),
                         dev_w(&e0[c], pdrt_stash_newest(&e0[c].stash)),
                         (size_t)e0[c].st->n_params * sizeof(float));
    pdrt_ex_chunks_ties_check(m, v);
}

/* Chunk c's state on this rank (stage cst->base.index), on the rank's context. */
static void chunk_init(cx_t *x, const pdrt_cuda_stage *cst, const pdrt_args *a, int rank, int p,
                       int v, pd_cuda_ctx *ctx) {
    const pdrt_stage *st = &cst->base;
    memset(x, 0, sizeof *x);
    x->cst = cst;
    x->st = st;
    x->a = a;
    x->rank = rank;
    x->n = p;
    x->B = st->batch;
    x->tg = pdrt_targets(a, st);
    x->NL = x->B * x->tg;
    x->first = st->index == 0;
    x->last = st->index == st->n_stages - 1;
    x->R = 1;
    x->out_rank = x->last ? rank : -1; /* the last stage's chunk logs progress */
    x->stage_comm = MPI_COMM_NULL;
    pdrt_rules_init(&x->ru, st, a, 1); /* interleaved: M, recomputation */
    x->ctx = ctx;
    x->stream = pd_cuda_ctx_stream(ctx);
    x->chunks = v;
    x->edge_up = st->index > 0 ? (st->index - 1) / p : 0;
    x->edge_down = st->index / p;
    pdrt_optim_from(&x->opt, st, a);
}

/* The chunks' device memory, the links (chunk 0's, shared) and the initial weights. */
static void chunks_setup(cx_t *e, int v, int M, pd_transport_kind forced, int device) {
    int p = e[0].n, rank = e[0].rank;
    int64_t n0 = e[0].total < e[0].per_epoch ? e[0].total : e[0].per_epoch;
    PDRT_CHECK(n0 < (int64_t)1 << 30);
    pd_schedule *full = pd_schedule_interleaved(p, v, (int)n0, M);
    PDRT_CHECK(full != NULL);
    char why[256];
    if (pd_schedule_check_in_order(full, why, sizeof why)) /* NCCL matches by order */
        PDRT_FAIL("the interleaved schedule does not deliver in order: %s", why);
    for (int c = 0; c < v; c++) e[c].D = pdrt_chunks_in_flight(p, v, rank, M, c);
    pdrt_cx_alloc_chunks(e, v, full);
    pdrt_cx_links_plan(&e[0], full, forced, device);
    for (int c = 1; c < v; c++) { /* the rank's links, through each chunk's own slots */
        e[c].n_links = e[0].n_links, e[c].la = e[0].la, e[c].lb = e[0].lb;
        e[c].lk = e[0].lk, e[c].links = e[0].links;
    }
    for (int c = 0; c < v; c++) e[c].slot0 = 2 * e[0].S * c;
    int64_t floats = pdrt_cx_most_floats(e, v);
    pdrt_watch("the links' setup (MPI, CUDA IPC or NCCL)", -1, -1);
    pd_links_setup(e[0].links, e[0].la, e[0].lb, e[0].lk, e[0].n_links, rank, MPI_COMM_WORLD,
                   e[0].stream, e[0].arena, floats);
    pdrt_unwatch();
    pd_schedule_free(full);
    /* initial weights: the CPU stage's init on the host (the mirror's stash where there is one,
     * whose tied copies then take their owners' values as on the CPU), uploaded */
    ex_t *m = e[0].mirror;
    float **hp = calloc((size_t)v, sizeof *hp);
    PDRT_CHECK(hp != NULL);
    for (int c = 0; c < v; c++) {
        const pdrt_stage *st = e[c].st;
        float *hb = pdrt_alloc((size_t)st->n_buffers);
        hp[c] = m ? pdrt_stash_newest(&m[c].stash) : pdrt_alloc((size_t)st->n_params);
        st->init(hp[c], hb, e[c].a->seed);
        if (e[c].a->init_dir[0]) pdrt_weights_load(e[c].a->init_dir, st, hp[c], hb);
        pd_cuda_upload(e[c].ctx, e[c].buffers, hb, (size_t)st->n_buffers * sizeof(float));
        free(hb);
    }
    if (m) pdrt_ex_chunks_ties_init(m, v);
    for (int c = 0; c < v; c++) {
        pd_cuda_upload(e[c].ctx, dev_w(&e[c], pdrt_stash_newest(&e[c].stash)), hp[c],
                       (size_t)e[c].st->n_params * sizeof(float));
        if (!m) free(hp[c]);
    }
    free(hp);
}

/* --save: every chunk's newest weights and buffers, one file per stage as on the CPU. */
static void save_chunks(cx_t *e, int v, const char *dir) {
    for (int c = 0; c < v; c++) {
        const pdrt_stage *st = e[c].st;
        float *hp = pdrt_alloc((size_t)st->n_params), *hb = pdrt_alloc((size_t)st->n_buffers);
        pd_cuda_download(e[c].ctx, hp, dev_w(&e[c], pdrt_stash_newest(&e[c].stash)),
                         (size_t)st->n_params * sizeof(float));
        pd_cuda_download(e[c].ctx, hb, e[c].buffers, (size_t)st->n_buffers * sizeof(float));
        pdrt_weights_save(dir, st, hp, hb);
        free(hp);
        free(hb);
    }
}

/* The summary (one row per rank, its chunks' times and predictions summed), its curves and the
 * trace. Collective. */
static void finish(cx_t *e, int v, int64_t done, int epochs, double acc, double train_s,
                   double wall, double time_to_target, int64_t target_step, pdrt_curves *curves) {
    int p = e[0].n;
    const pdrt_args *a = e[0].a;
    const pdrt_stage *s0 = e[0].st;
    cx_t *lastc = &e[v - 1];
    pdrt_stage_stats mine = {0};
    int *first_rank = calloc((size_t)p + 1, sizeof(int));
    PDRT_CHECK(first_rank != NULL);
    for (int r = 0; r <= p; r++) first_rank[r] = r;
    for (int c = 0; c < v; c++) pdrt_stage_stats_add_chunk(&mine, &e[c].stats, e[c].st);
    mine.steps = done; /* measured per minibatch, as predicted */
    pdrt_stage_stats *ss = pdrt_stage_stats_gather(&mine, first_rank, p, p - 1);
    if (ss) {
        pdrt_summary sum;
        memset(&sum, 0, sizeof sum);
        sum.model = s0->model;
        sum.mode = "pipeline-cuda";
        sum.schedule = "interleaved";
        sum.n_stages = p;
        sum.batch = e[0].B;
        sum.steps = done;
        sum.epochs_done = epochs;
        sum.final_loss = lastc->lg.last_loss;
        sum.test_accuracy = a->eval ? acc : -1;
        sum.samples_per_s = (double)done * e[0].B / train_s;
        sum.targets = e[0].tg;
        sum.has_val_loss = a->eval && acc >= 0;
        sum.val_loss = e[0].val_loss;
        sum.wall_s = wall;
        sum.train_s = train_s;
        sum.target_accuracy = a->target_accuracy;
        sum.time_to_target_s = time_to_target;
        sum.target_loss = a->target_loss;
        sum.target_step = target_step;
        sum.curves = curves;
        sum.stages = ss;
        pdrt_summary_print(&sum);
        pdrt_summary_write(a->run_dir, &sum);
        char title[256];
        snprintf(title, sizeof title, "%s: %d ranks x %d chunks on GPUs, interleaved", s0->model,
                 p, v);
        pdrt_curves_write_svg(a->run_dir, curves, title);
        free(ss);
    }
    const ex_t *m = e[0].mirror;
    for (int c = 0; m && c < v; c++)
        if (a->check_replicas && m[c].tie_checks)
            printf("stage %d: tied weights identical to their owners' after %lld updates\n",
                   e[c].st->index, (long long)m[c].tie_checks);
    if (a->trace)
        pdrt_trace_gather_write(a->run_dir, e[0].rank, p, p - 1, first_rank, s0->n_stages, v);
    free(first_rank);
}

int pdrt_cuda_main_chunks(int argc, char **argv, const pdrt_cuda_stage *chunks, int v) {
    if (v < 2 || v > 64) {
        fprintf(stderr, "pdrt: %d chunks per rank: not 2 to 64\n", v);
        return 2;
    }
    pd_cuda_precision prec;
    pd_transport_kind forced;
    int device, ngpu;
    pdrt_args a;
    for (int c = 1; c < v; c++)
        if (chunks[c].abi != PDRT_CUDA_ABI || chunks[c].base.abi != PDRT_ABI) {
            fprintf(stderr, "pdrt: stage %d built for CUDA runtime ABI %d / %d, not %d / %d\n",
                    chunks[c].base.index, chunks[c].abi, chunks[c].base.abi, PDRT_CUDA_ABI,
                    PDRT_ABI);
            return 2;
        }
    int rc = pdrt_cx_parse(&argc, argv, &chunks[0], &a, &prec, &forced, &device, &ngpu);
    if (rc >= 0) return rc;
    MPI_Init(&argc, &argv);
    int rank, p;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &p);
    const pdrt_stage *s0 = &chunks[0].base;
    pdrt_set_identity(rank, s0->index, 1);
    pdrt_watchdog_start(a.hang_timeout);
    const pdrt_stage *bases[64];
    for (int c = 0; c < v; c++) bases[c] = &chunks[c].base;
    pdrt_chunks_check(&a, bases, v, rank, p);
    refuse_unsupported(chunks, v);
    device = pdrt_cx_device(device, ngpu, rank);
    size_t scratch = 0;
    for (int c = 0; c < v; c++) {
        size_t b = chunks[c].scratch_bytes ? chunks[c].scratch_bytes(prec) : 0;
        if (b > scratch) scratch = b;
    }
    pd_cuda_ctx *ctx = pd_cuda_ctx_create(device, prec, scratch, 0);
    if (!ctx) PDRT_FAIL("cannot create the CUDA context on GPU %d", device);
    cx_t *e = calloc((size_t)v, sizeof *e);
    PDRT_CHECK(e != NULL);
    for (int c = 0; c < v; c++) chunk_init(&e[c], &chunks[c], &a, rank, p, v, ctx);
    int M = e[0].ru.M;
    pdrt_chunks_check_microbatches(M, p);
    int64_t total = 0;
    int64_t per_epoch = pdrt_pipeline_data(&total, &e[0].train, &e[0].test, &a, s0, rank == 0);
    for (int c = 0; c < v; c++) e[c].per_epoch = per_epoch, e[c].total = total;
    MPI_Comm tie_comm; /* the tied weights' messages (the mirror's) */
    MPI_Comm_dup(MPI_COMM_WORLD, &tie_comm);
    e[0].mirror = mirror_new(e, v, tie_comm);
    chunks_setup(e, v, M, forced, device);
    if (rank == 0)
        printf("precision %s (fp32 master weights, gradients and optimizer state)\n",
               pd_cuda_ctx_precision(ctx) == PD_CUDA_BF16 ? "bf16" : "fp32");
    cx_t *lastc = &e[v - 1]; /* the last stage's chunk where this rank holds it */
    pdrt_barrier("every rank to be ready to train");
    double t0 = pdrt_now(), origin = t0;
    MPI_Bcast(&origin, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    pdrt_trace_start(a.trace, origin);
    for (int c = 0; c < v; c++) e[c].t0 = e[c].lg.t_log = e[c].lg.t0 = t0;
    int64_t done = 0, target_step = -1;
    int epoch = 0, stop = 0, me = rank == p - 1;
    double train_s = 0, acc = -1, time_to_target = -1;
    pdrt_curves curves = {.eval_is_loss = e[0].tg > 1};
    if (me) lastc->lg.curves = &curves;
    while (done < total && !stop) {
        int64_t ep_start = (int64_t)epoch * per_epoch;
        int64_t n = pdrt_segment_end(&a, done, per_epoch, total, 0) - done;
        PDRT_CHECK(n >= 1 && n < (int64_t)1 << 30);
        pd_schedule *s = pd_schedule_interleaved(p, v, (int)n, M);
        PDRT_CHECK(s != NULL);
        double t = pdrt_now();
        pdrt_cx_run_epoch(e, s, epoch, done, done - ep_start);
        pdrt_watch("the GPU to finish the epoch's kernels", -1, -1);
        pd_cuda_sync(ctx);
        pdrt_unwatch();
        train_s += pdrt_now() - t;
        pd_schedule_free(s);
        done += n;
        int epoch_end = done == ep_start + per_epoch, end = epoch_end || done == total;
        if (epoch_end) epoch++;
        if (pdrt_eval_due(&a, done, end)) {
            acc = pdrt_cx_evaluate_chunks(e, v);
            stop = pdrt_eval_record(me ? &curves : NULL, &a, e[0].tg, done, per_epoch, total,
                                    pdrt_now() - t0, acc, e[0].val_loss, me, &time_to_target,
                                    &target_step);
        }
    }
    double wall = pdrt_now() - t0;
    if (a.save_dir[0]) save_chunks(e, v, a.save_dir);
    finish(e, v, done, done > (int64_t)epoch * per_epoch ? epoch + 1 : epoch, acc, train_s, wall,
           time_to_target, target_step, &curves);
    pdrt_trace_free();
    pdrt_curves_free(&curves);
    pdrt_barrier("every rank to finish");
    pd_links_close(e[0].links, e[0].la, e[0].lb, e[0].n_links, rank);
    mirror_free(e[0].mirror, v);
    MPI_Comm_free(&tie_comm);
    for (int c = v - 1; c >= 0; c--) { /* chunk 0 last: it frees what the others share */
        pdrt_cx_free(&e[c]);
        pdrt_optim_free(&e[c].opt);
    }
    free(e);
    pd_cuda_ctx_destroy(ctx);
    MPI_Finalize();
    return 0;
}
