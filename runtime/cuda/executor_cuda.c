/* executor_cuda.c: pdrt_cuda_main, one pipeline stage replica per MPI rank on one GPU. Runs the
 * schedule IR (schedule.c, pdrt_schedule_for: the very schedules the CPU executor runs) action by
 * action, with the CPU executor's rules (rt_rules.c, which both call): forwards with the newest
 * weights (or, under vertical sync, the version stage 0 used; under 2bw, batch b's the one after
 * update b - 2), backwards with the stashed version (pdrt_stash keeps the
 * bookkeeping; the versions are device blobs); under zb-h1 and zb-h2 each backward in two parts,
 * B (input gradients, sent at once) and W (weight gradients, later), the minibatch's layer
 * gradients kept on the device in between; with --recompute one activation buffer, each
 * backward running its minibatch's forward again first from the stage input it kept (the same
 * weights and step, so the same dropout masks; batch norm's statistics into a copy). Gradients
 * are accumulated until the update's step and
 * averaged over its minibatches, replicas' all-reduce (NCCL between distinct GPUs, else a
 * fixed-order sum through host memory and MPI), optimizer steps on the device, sends through
 * rings of device slots and the link's transport (transport.h). Labels travel as floats behind
 * the output pack, as on the CPU.
 * Memory: every device buffer is carved from one arena allocated once before training (its plan
 * is printed); nothing is allocated in the loop. Evaluation, --save/--init, summary.json and
 * trace.json work as in the CPU executor (evaluation and traces through host memory and MPI). */
#include <cuda_runtime.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor_cuda.h"
#include "runtime/cuda/transport/transport_internal.h"

static pdrt_link *link_to(cx_t *e, int peer) {
    for (int i = 0; i < e->n_links; i++)
        if ((e->la[i] == e->rank && e->lb[i] == peer) || (e->lb[i] == e->rank && e->la[i] == peer))
            return &e->links[i];
    PDRT_FAIL("no link from rank %d to rank %d", e->rank, peer);
}

static void progress(cx_t *e, int epoch, int64_t local, int force) {
    pdrt_progress(&e->lg, epoch, local, e->per_epoch, e->B, e->a->log_every, force);
}

/* waits for send slot k of kind (0 activations, 1 gradients; 2 r + kind of ring position r) to
 * be free on every link (the chunk's own slots: e->slot0 + k) */
static void slot_free(cx_t *e, int k, double *wait_ms) {
    double t = pdrt_now();
    for (int i = 0; i < e->n_links; i++)
        if (e->la[i] == e->rank || e->lb[i] == e->rank) {
            pdrt_watch(k % 2 ? "a send of gradients to complete (transport or GPU)"
                             : "a send of activations to complete (transport or GPU)",
                       e->la[i] == e->rank ? e->lb[i] : e->la[i], -1);
            e->links[i].t->send_wait(&e->links[i], e->slot0 + k);
            pdrt_unwatch();
        }
    *wait_ms += 1e3 * (pdrt_now() - t);
}

static void forward(cx_t *e, int64_t mb, int epoch, int64_t base, int64_t off) {
    const pdrt_stage *st = e->st;
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    float *in = e->in[d];
    double t = pdrt_now(), wait0 = e->stats.wait_ms;
    if (e->first) {
        int got = pd_data_batch(e->in_host, e->labels_host, &e->train, epoch, off + mb, e->B, e->a->shuffle,
                                e->a->seed);
        PDRT_CHECK(got == e->B);
        for (int b = 0; b < e->NL; b++) e->in_host[st->in_floats + b] = (float)e->labels_host[b];
        pd_cuda_upload(e->ctx, in, e->in_host, (size_t)(st->in_floats + e->NL) * sizeof(float));
    }
    float *w = dev_w(e, pdrt_rules_forward_weights(&e->ru, &e->stash, l, mb, e->epoch_base_updates));
    float *out = e->logits;
    if (!e->last) {
        int k = (int)(l % e->S);
        slot_free(e, 2 * k, &e->stats.wait_ms);
        out = e->act_send[k];
    }
    t += 1e-3 * (e->stats.wait_ms - wait0);
    e->cst->forward(e->ctx, out, e->acts[d], e->buffers, w, in, 1, e->a->seed, base + mb);
    if (e->last) {
        pd_labels_from_floats_cuda(e->ctx, e->labels_dev, in + st->in_floats, e->NL);
        float loss = pdrt_softmax_cross_entropy_cuda(e->ctx, e->dout[d], e->logits, e->labels_dev, e->NL,
                                                st->classes);
        if (loss != loss) PDRT_FAIL("loss is NaN at step %lld", (long long)(base + mb));
        e->lg.loss_sum += loss;
        e->lg.loss_n++;
    } else {
        pdrt_identity_forward_cuda(e->ctx, out + st->out_floats, in + st->in_floats, (size_t)e->NL);
    }
    e->stats.fwd_ms += 1e3 * (pdrt_now() - t);
}

/* The gradient send slot of this replica's l-th minibatch, free (NULL on stage 0: no din). */
static float *grad_slot(cx_t *e, int64_t l) {
    if (e->first) return NULL;
    int k = (int)(l % e->S);
    slot_free(e, 2 * k + 1, &e->stats.wait_ms);
    return e->grad_send[k];
}

/* Waits for the GPU: the stage's compute time is the GPU's. */
static void gpu_done(cx_t *e, const char *what, int64_t mb, double t) {
    pdrt_watch(what, -1, mb);
    pd_cuda_sync(e->ctx);
    pdrt_unwatch();
    e->stats.bwd_ms += 1e3 * (pdrt_now() - t);
}

/* --recompute: mb's forward again, from its stage input, with the weights its forward used and
 * the same step number (so the same dropout masks), into the one activation buffer; batch norm's
 * running statistics go to a device copy, so that they are updated once per minibatch; the
 * output to a buffer of its own (the send slot of mb may still be in flight). All on the
 * context's stream, so after any kernel still reading the buffer for another minibatch. */
static void recompute(cx_t *e, int64_t mb, int d, const float *w, int64_t base) {
    const pdrt_stage *st = e->st;
    if (e->ru.inj_recompute == 1) return; /* test-only: skipped */
    float *bufs = e->ru.inj_recompute == 2 ? e->buffers : e->buffers_tmp; /* test-only: twice */
    if (bufs == e->buffers_tmp && st->n_buffers)
        TR_CUDA(cudaMemcpyAsync(bufs, e->buffers, (size_t)st->n_buffers * sizeof(float),
                                cudaMemcpyDeviceToDevice, (cudaStream_t)e->stream));
    e->cst->forward(e->ctx, e->last ? e->logits : e->recompute_out, e->acts[d], bufs, w, e->in[d],
                    1, e->a->seed, base + mb);
}

static void backward(cx_t *e, int64_t mb, int64_t base) {
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    float *din = grad_slot(e, l);
    double t = pdrt_now();
    float *w = dev_w(e, pdrt_stash_for_backward(&e->stash, l));
    if (e->ru.recompute) recompute(e, mb, d, w, base);
    e->cst->backward(e->ctx, din, e->acc, e->dacts, e->dout[d], e->acts[d], w, e->in[d]);
    e->acc_count++;
    gpu_done(e, "the GPU to finish a backward's kernels", mb, t);
}

/* zb-h1, zb-h2: the input-gradient part of mb's backward (B), into the gradient send slot that
 * the schedule's next action sends; the layers' gradients stay in the minibatch's dacts_of for
 * its W, and the weight gradients of the ops that do not split go to the accumulator now. */
static void backward_input(cx_t *e, int64_t mb) {
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    float *din = grad_slot(e, l);
    double t = pdrt_now();
    float *w = dev_w(e, pdrt_stash_for_backward_input(&e->stash, l));
    e->cst->backward_input(e->ctx, din, e->acc, e->dacts_of[d], e->dout[d], e->acts[d], w, e->in[d]);
    gpu_done(e, "the GPU to finish a backward_input's kernels", mb, t);
}

/* zb-h1, zb-h2: the weight-gradient part of mb's backward (W), accumulated; the minibatch counts
 * towards the update here, as the CPU executor's accumulation does. */
static void backward_weight(cx_t *e, int64_t mb) {
    int64_t l = lidx(e, mb);
    int d = (int)(l % e->D);
    double t = pdrt_now();
    float *w = dev_w(e, pdrt_stash_for_backward(&e->stash, l));
    e->cst->backward_weight(e->ctx, NULL, e->acc, e->dacts_of[d], e->dout[d], e->acts[d], w,
                            e->in[d]);
    e->acc_count++;
    gpu_done(e, "the GPU to finish a backward_weight's kernels", mb, t);
}

/* the replicas' sum of accumulated gradients and counts */
static void allreduce(cx_t *e) {
    double t = pdrt_now();
    int64_t np = np_of(e);
    int64_t count = e->acc_count, all = 0;
    pdrt_watch("the gradient all-reduce with the stage's replicas (MPI, NCCL or the GPU)", -1, -1);
    MPI_Allreduce(&count, &all, 1, MPI_INT64_T, MPI_SUM, e->stage_comm);
    e->acc_count = all;
    if (e->nccl_stage) {
        if (pd_nccl_allreduce_sum(e->nccl_stage, e->acc, np, e->stream))
            PDRT_FAIL("ncclAllReduce of %lld floats failed", (long long)np);
        pd_cuda_sync(e->ctx);
    } else { /* fixed order through the first replica, as the CPU executor does */
        PDRT_CHECK(np < (int64_t)1 << 31);
        pd_cuda_download(e->ctx, e->host_acc, e->acc, (size_t)np * sizeof(float));
        MPI_Gather(e->host_acc, (int)np, MPI_FLOAT, e->host_gather, (int)np, MPI_FLOAT, 0, e->stage_comm);
        if (e->j == 0) {
            memset(e->host_acc, 0, (size_t)np * sizeof(float));
            for (int q = 0; q < e->R; q++) {
                const float *b = e->host_gather + (size_t)q * (size_t)np;
                for (int64_t i = 0; i < np; i++) e->host_acc[i] += b[i];
            }
        }
        MPI_Bcast(e->host_acc, (int)np, MPI_FLOAT, 0, e->stage_comm);
        pd_cuda_upload(e->ctx, e->acc, e->host_acc, (size_t)np * sizeof(float));
    }
    pdrt_unwatch();
    e->stats.wait_ms += 1e3 * (pdrt_now() - t);
}

/* the squared norm of the device gradient g, the tied layers' copies left out (their owner
 * counts them), as pdrt_ties_sq_norm does on the host */
static double sq_norm_dev(cx_t *e, const float *g) {
    const pdrt_stage *st = e->st;
    double sq = 0;
    int64_t at = 0;
    for (int i = 0; i < st->n_tensors && st->n_ties; i++) {
        const pdrt_tensor *t = &st->tensors[i];
        if (t->is_buffer || !pdrt_tie_copy(st, i)) continue;
        PDRT_CHECK(t->offset >= at);
        sq += pd_sq_norm_cuda(e->ctx, g + at, (size_t)(t->offset - at));
        at = t->offset + t->numel;
    }
    return sq + pd_sq_norm_cuda(e->ctx, g + at, (size_t)(np_of(e) - at));
}

/* Clipping by the global norm, as the CPU executor's (pdrt_global_clip_coef): only the first
 * replica's squared norm counts, but every rank joins at every update. */
static void clip_global(cx_t *e) {
    float c = pdrt_global_clip_coef(e->j == 0 ? sq_norm_dev(e, e->acc) : 0.0, e->j == 0, e->n,
                                    e->opt.clip_grad_norm);
    if (c != 1.0f) pd_scale_cuda(e->ctx, e->acc, c, (size_t)np_of(e));
}

static void step(cx_t *e) {
    double t = pdrt_now();
    int64_t np = np_of(e);
    PDRT_CHECK(e->acc_count >= 1);
    if (e->st->n_ties && e->chunks <= 1) /* the tied copies' summed gradients, as the CPU
                                            executor's step (interleaved: before the steps) */
        pdrt_cuda_ties_grads(&e->ties, e->ctx, e->acc, e->acc_count);
    if (e->acc_count != 1) pd_scale_cuda(e->ctx, e->acc, 1.0f / (float)e->acc_count, (size_t)np);
    if (e->opt.clip_grad_norm > 0 && e->chunks > 1) /* pdrt_cx_chunks_before_steps */
        pd_scale_cuda(e->ctx, e->acc, e->clip_coef, (size_t)np);
    else if (e->opt.clip_grad_norm > 0)
        clip_global(e);
    float *old = dev_w(e, pdrt_stash_newest(&e->stash));
    float *w = dev_w(e, pdrt_stash_begin_update(&e->stash));
    if (w != old)
        TR_CUDA(cudaMemcpyAsync(w, old, (size_t)np * sizeof(float), cudaMemcpyDeviceToDevice,
                                (cudaStream_t)e->stream));
    e->updates++;
    pd_optim_step_cuda(e->ctx, w, e->opt_state, e->acc, &e->opt, e->updates, (size_t)np);
    pd_cuda_zero(e->ctx, e->acc, (size_t)(np ? np : 1) * sizeof(float));
    e->acc_count = 0;
    pdrt_watch("the GPU to finish the optimizer step", -1, -1);
    pd_cuda_sync(e->ctx);
    pdrt_unwatch();
    e->stats.step_ms += 1e3 * (pdrt_now() - t);
}

/* The waits of every send this chunk has in flight (its slots on every link). */
static void sends_wait(cx_t *e) {
    for (int q = 0; q < 2 * e->S; q++) slot_free(e, q, &e->stats.wait_ms);
}

void pdrt_cx_run_epoch(cx_t *e0, const pd_schedule *s, int epoch, int64_t base, int64_t off) {
    const pd_rank_schedule *rs = &s->ranks[e0->rank];
    int V = s->chunks > 1 ? s->chunks : 1; /* interleaved: e0[c] is chunk c (stage c p + rank) */
    PDRT_CHECK(V > 1 || rs->stage == e0->st->index);
    PDRT_CHECK(V == 1 || V == e0->chunks);
    cx_t *out = e0; /* the chunk that logs progress: the last stage's, where there is one */
    for (int c = 0; c < V; c++) {
        e0[c].epoch_base_updates = e0[c].updates;
        if (e0[c].last) out = &e0[c];
    }
    for (int i = 0; i < rs->n; i++) {
        const pd_action *a = &rs->a[i];
        cx_t *e = V > 1 ? &e0[a->stage / s->n_ranks] : e0;
        const pdrt_stage *st = e->st;
        int64_t l = a->mb >= 0 ? lidx(e, a->mb) : 0;
        int d = (int)(l % e->D), k = (int)(l % e->S);
        double t0 = pdrt_now();
        int tid = 0;
        int moves = a->kind == PD_A_RECV_ACT || a->kind == PD_A_SEND_ACT ||
                    a->kind == PD_A_RECV_GRAD || a->kind == PD_A_SEND_GRAD;
        pdrt_link *lk = moves ? link_to(e, a->peer) : NULL;
        switch (a->kind) {
        case PD_A_RECV_ACT:
            pdrt_watch("a receive of activations (transport or GPU)", a->peer, a->mb);
            lk->t->recv(lk, e->in[d], st->in_floats + e->NL,
                        pdrt_chunk_tag(0, a->mb, e->edge_up, e->chunks));
            pdrt_unwatch();
            e->stats.wait_ms += 1e3 * (pdrt_now() - t0);
            tid = 1;
            break;
        case PD_A_FORWARD: forward(e, a->mb, epoch, base, off); break;
        case PD_A_SEND_ACT:
            pdrt_watch("a send of activations (transport or GPU)", a->peer, a->mb);
            lk->t->send(lk, e->slot0 + 2 * k, e->act_send[k], st->out_floats + e->NL,
                        pdrt_chunk_tag(0, a->mb, e->edge_down, e->chunks));
            pdrt_unwatch();
            tid = 1;
            break;
        case PD_A_RECV_GRAD:
            pdrt_watch("a receive of gradients (transport or GPU)", a->peer, a->mb);
            lk->t->recv(lk, e->dout[d], st->out_floats,
                        pdrt_chunk_tag(1, a->mb, e->edge_down, e->chunks));
            pdrt_unwatch();
            e->stats.wait_ms += 1e3 * (pdrt_now() - t0);
            tid = 1;
            break;
        case PD_A_BACKWARD: backward(e, a->mb, base); break;
        case PD_A_BACKWARD_INPUT: backward_input(e, a->mb); break;
        case PD_A_BACKWARD_WEIGHT: backward_weight(e, a->mb); break;
        case PD_A_SEND_GRAD:
            pdrt_watch("a send of gradients (transport or GPU)", a->peer, a->mb);
            lk->t->send(lk, e->slot0 + 2 * k + 1, e->grad_send[k], st->in_floats,
                        pdrt_chunk_tag(1, a->mb, e->edge_up, e->chunks));
            pdrt_unwatch();
            tid = 1;
            break;
        case PD_A_ALLREDUCE: allreduce(e); break;
        case PD_A_STEP:
            if (V > 1 && e == e0) pdrt_cx_chunks_before_steps(e0, V); /* ties, clipping */
            step(e);
            if (V > 1 && e == &e0[V - 1] && e->a->check_replicas) pdrt_cx_chunks_ties_check(e0, V);
            e->stats.steps++;
            if (e->rank == e->out_rank) progress(e, epoch, off + a->mb + 1, 0);
            break;
        case PD_A_FLUSH:
            for (int c = 0; c < V; c++) sends_wait(&e0[c]);
            tid = 1;
            break;
        default:
            PDRT_FAIL("schedule action %s is not supported by the CUDA runtime",
                    pd_action_name(a->kind));
        }
        pdrt_trace_add(a->kind, a->mb, a->peer, tid + 2 * (V > 1 ? a->stage / s->n_ranks : 0),
                       t0, pdrt_now()); /* interleaved: two rows per chunk */
    }
    for (int c = 0; c < V; c++) sends_wait(&e0[c]);
    if (out->rank == out->out_rank) progress(out, epoch, off + s->steps, 1);
}

/* strips the CUDA options from argv; returns -1 on a bad value */
static int cuda_args(int *argc, char **argv, pd_cuda_precision *prec, pd_transport_kind *tr,
                     int *device) {
    int w = 1;
    for (int i = 1; i < *argc; i++) {
        const char *o = argv[i];
        if ((!strcmp(o, "--precision") || !strcmp(o, "--transport") || !strcmp(o, "--device")) &&
            i + 1 < *argc) {
            const char *v = argv[++i];
            if (!strcmp(o, "--precision")) {
                if (!strcmp(v, "fp32")) *prec = PD_CUDA_FP32;
                else if (!strcmp(v, "bf16")) *prec = PD_CUDA_BF16;
                else { fprintf(stderr, "pdrt: --precision %s: fp32 or bf16\n", v); return -1; }
            } else if (!strcmp(o, "--transport")) {
                int k = pd_transport_parse(v);
                if (k < 0) { fprintf(stderr, "pdrt: --transport %s: auto, ipc, nccl or host\n", v); return -1; }
                *tr = (pd_transport_kind)k;
            } else {
                char *end;
                long d = strtol(v, &end, 10);
                if (*end || d < 0) { fprintf(stderr, "pdrt: --device %s: a GPU index\n", v); return -1; }
                *device = (int)d;
            }
            continue;
        }
        argv[w++] = argv[i];
    }
    *argc = w;
    argv[w] = NULL;
    return 0;
}

static void print_help(void) {
    printf("CUDA stage options (besides the runtime's, below):\n");
    pdrt_print_options(stdout, 1);
}

int pdrt_cx_parse(int *argc, char **argv, const pdrt_cuda_stage *cst, pdrt_args *a,
                  pd_cuda_precision *prec, pd_transport_kind *forced, int *device, int *ngpu) {
    const pdrt_stage *st = &cst->base;
    *prec = cst->precision;
    *forced = PD_TR_AUTO;
    *device = -1;
    const char *env = getenv("PDRT_TRANSPORT");
    if (env && pd_transport_parse(env) >= 0) *forced = (pd_transport_kind)pd_transport_parse(env);
    for (int i = 1; i < *argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) print_help();
    if (cuda_args(argc, argv, prec, forced, device)) return 2;
    int pr = pdrt_args_parse(a, *argc, argv, RT_PIPELINE);
    if (pr) return pr > 0 ? 0 : 2;
    if (cst->abi != PDRT_CUDA_ABI || st->abi != PDRT_ABI) {
        fprintf(stderr, "pdrt: stage built for CUDA runtime ABI %d / %d, not %d / %d\n", cst->abi,
                st->abi, PDRT_CUDA_ABI, PDRT_ABI);
        return 2;
    }
    if (a->mode != RT_PIPELINE) {
        fprintf(stderr, "pdrt: stage %d: --single and --emulate are CPU-only (generate with --backend "
                "cpu for the sequential reference)\n", st->index);
        return 2;
    }
    if (a->logits_path[0]) {
        fprintf(stderr, "pdrt: stage %d: --save-logits is for the CPU local binary (pdlaunch "
                "--single)\n", st->index);
        return 2;
    }
    if (a->checkpoint_every > 0 || a->resume || a->skip_nonfinite) {
        fprintf(stderr, "pdrt: stage %d: --checkpoint-every, --resume and --skip-nonfinite are "
                "not implemented by the CUDA backend yet (they are by --backend cpu)\n", st->index);
        return 2;
    }
    *ngpu = pd_gpu_count();
    if (*ngpu < 1) {
        fprintf(stderr, "pdrt: stage %d: error: no usable CUDA GPU on this machine (%s); this stage "
                "was generated with --backend cuda: run it where a GPU is, or generate with "
                "--backend cpu\n", st->index, cudaGetErrorString(cudaGetDeviceCount(ngpu)));
        return 1;
    }
    return -1;
}

int pdrt_cx_device(int device, int ngpu, int rank) {
    if (device < 0) { /* node-local rank modulo the GPUs */
        MPI_Comm node;
        int local = 0;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
        device = local % ngpu;
    }
    if (device >= ngpu) PDRT_FAIL("--device %d: this machine has %d GPUs", device, ngpu);
    return device;
}

int64_t pdrt_cx_most_floats(const cx_t *e, int v) {
    int64_t most = 0; /* a message carries its labels (NL floats) behind the tensor */
    for (int c = 0; c < v; c++) {
        int64_t in = e[c].st->in_floats + e[c].NL, out = e[c].st->out_floats + e[c].NL;
        if (in > most) most = in;
        if (out > most) most = out;
    }
    pdrt_watch("the largest message's size", -1, -1);
    MPI_Allreduce(MPI_IN_PLACE, &most, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    pdrt_unwatch();
    return most;
}

int pdrt_cuda_main(int argc, char **argv, const pdrt_cuda_stage *cst) {
    const pdrt_stage *st = &cst->base;
    pd_cuda_precision prec;
    pd_transport_kind forced;
    int device, ngpu;
    pdrt_args a;
    int rc = pdrt_cx_parse(&argc, argv, cst, &a, &prec, &forced, &device, &ngpu);
    if (rc >= 0) return rc;
    MPI_Init(&argc, &argv);
    cx_t e;
    memset(&e, 0, sizeof e);
    MPI_Comm_rank(MPI_COMM_WORLD, &e.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &e.n);
    pdrt_set_identity(e.rank, st->index, 1);
    pdrt_watchdog_start(a.hang_timeout);
    e.first_rank = pdrt_rank_table(&e.R, &e.j, st, e.rank, e.n);
    device = pdrt_cx_device(device, ngpu, e.rank);
    e.out_rank = e.first_rank[st->n_stages - 1];
    MPI_Comm_split(MPI_COMM_WORLD, st->index, e.rank, &e.stage_comm);
    pdrt_ties_check(st, &a);
    e.ties = (pdrt_cuda_ties){st, e.first_rank, e.R, e.j, MPI_COMM_NULL};
    MPI_Comm_dup(MPI_COMM_WORLD, &e.ties.comm);
    e.cst = cst;
    e.st = st;
    e.a = &a;
    e.B = st->batch;
    e.tg = pdrt_targets(&a, st);
    e.NL = e.B * e.tg;
    e.first = st->index == 0;
    e.last = st->index == st->n_stages - 1;
    pdrt_rules_init(&e.ru, st, &a, e.R); /* and its refusals, the CPU executor's */
    e.ctx = pd_cuda_ctx_create(device, prec, cst->scratch_bytes ? cst->scratch_bytes(prec) : 0, 0);
    if (!e.ctx) PDRT_FAIL("cannot create the CUDA context on GPU %d", device);
    e.stream = pd_cuda_ctx_stream(e.ctx);
    pdrt_optim_from(&e.opt, st, &a);
    pdrt_clip_check(&e.opt, st, &a);
    e.per_epoch = pdrt_pipeline_data(&e.total, &e.train, &e.test, &a, st, e.first);
    {
        int64_t n0 = e.total < e.per_epoch ? e.total : e.per_epoch;
        PDRT_CHECK(n0 < (int64_t)1 << 30);
        pd_schedule *full = pdrt_schedule_for(st, &a, (int)n0);
        pdrt_cx_alloc(&e, full);
        pdrt_cx_links_plan(&e, full, forced, device);
        int64_t most = pdrt_cx_most_floats(&e, 1);
        pdrt_watch("the links' setup (MPI, CUDA IPC or NCCL)", -1, -1);
        pd_links_setup(e.links, e.la, e.lb, e.lk, e.n_links, e.rank, MPI_COMM_WORLD, e.stream,
                       e.arena, most);
        pdrt_unwatch();
        /* the replicas' NCCL communicators, stage by stage (every rank joins its own stage's) */
        int want = e.nccl_stage != NULL, ok = 0;
        e.nccl_stage = NULL;
        for (int k = 0; k < st->n_stages; k++) {
            pdrt_barrier("every rank before the replicas' NCCL communicators");
            pdrt_watch("the replicas' NCCL communicator", -1, -1);
            if (k == st->index && want) e.nccl_stage = pd_nccl_comm_create(e.stage_comm);
            pdrt_unwatch();
        }
        ok = !want || e.nccl_stage;
        if (want && e.j == 0)
            printf("stage %d: replicas all-reduce with %s\n", st->index, ok ? "nccl" : "MPI (host)");
        pd_schedule_free(full);
    }
    pd_cuda_precision p_now = pd_cuda_ctx_precision(e.ctx);
    if (e.rank == 0)
        printf("precision %s (fp32 master weights, gradients and optimizer state)\n",
               p_now == PD_CUDA_BF16 ? "bf16" : "fp32");
    {   /* initial weights: the CPU stage's init on the host, uploaded */
        float *hp = pdrt_alloc((size_t)st->n_params), *hb = pdrt_alloc((size_t)st->n_buffers);
        st->init(hp, hb, a.seed);
        if (a.init_dir[0]) pdrt_weights_load(a.init_dir, st, hp, hb);
        if (st->n_ties) pdrt_cuda_ties_init(&e.ties, hp); /* the owner's values on both copies */
        pd_cuda_upload(e.ctx, dev_w(&e, pdrt_stash_newest(&e.stash)), hp, (size_t)st->n_params * sizeof(float));
        pd_cuda_upload(e.ctx, e.buffers, hb, (size_t)st->n_buffers * sizeof(float));
        free(hp);
        free(hb);
    }

    pdrt_barrier("every rank to be ready to train");
    e.t0 = e.lg.t_log = pdrt_now();
    double origin = e.t0;
    MPI_Bcast(&origin, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    pdrt_trace_start(a.trace, origin);
    double train_s = 0, acc = -1, time_to_target = -1;
    int64_t done = 0;
    int epoch = 0, stop = 0;
    pdrt_curves curves = {.eval_is_loss = e.tg > 1};
    int64_t target_step = -1;
    if (e.rank == e.out_rank) {
        e.lg.curves = &curves;
        e.lg.t0 = e.t0;
    }
    while (done < e.total && !stop) {
        /* the rest of this epoch, cut at the next multiple of --eval-every */
        int64_t ep_start = (int64_t)epoch * e.per_epoch;
        int64_t n = pdrt_segment_end(&a, done, e.per_epoch, e.total, 0) - done;
        pd_schedule *s = pdrt_schedule_for(st, &a, (int)n);
        double t = pdrt_now();
        pdrt_cx_run_epoch(&e, s, epoch, done, done - ep_start);
        pdrt_watch("the GPU to finish the epoch's kernels", -1, -1);
        pd_cuda_sync(e.ctx);
        pdrt_unwatch();
        train_s += pdrt_now() - t;
        pd_schedule_free(s);
        done += n;
        int epoch_end = done == ep_start + e.per_epoch;
        if (epoch_end) epoch++;
        if (pdrt_eval_due(&a, done, epoch_end || done == e.total)) {
            acc = pdrt_cx_evaluate(&e);
            int me = e.rank == e.out_rank;
            stop = pdrt_eval_record(me ? &curves : NULL, &a, e.tg, done, e.per_epoch, e.total,
                                    pdrt_now() - e.t0, acc, e.val_loss, me, &time_to_target,
                                    &target_step);
        }
    }
    if (done > (int64_t)epoch * e.per_epoch) epoch++; /* epochs begun */
    double wall = pdrt_now() - e.t0;
    if (a.save_dir[0] && e.j == 0) {
        float *hp = pdrt_alloc((size_t)st->n_params), *hb = pdrt_alloc((size_t)st->n_buffers);
        pd_cuda_download(e.ctx, hp, dev_w(&e, pdrt_stash_newest(&e.stash)), (size_t)st->n_params * sizeof(float));
        pd_cuda_download(e.ctx, hb, e.buffers, (size_t)st->n_buffers * sizeof(float));
        pdrt_weights_save(a.save_dir, st, hp, hb);
        free(hp);
        free(hb);
    }
    pdrt_stage_stats mine = e.stats;
    mine.predicted_ms = st->predicted_ms;
    mine.predicted_compute_ms = st->predicted_compute_ms;
    pdrt_stage_stats *ss = pdrt_stage_stats_gather(&mine, e.first_rank, st->n_stages, e.out_rank);
    if (ss) {
        int ns = st->n_stages;
        pdrt_summary sum;
        memset(&sum, 0, sizeof sum); /* fields others add stay zero */
        sum.model = st->model;
        sum.mode = "pipeline-cuda";
        sum.schedule = pdrt_schedule_name(st, &a);
        sum.n_stages = ns;
        sum.batch = e.B;
        sum.steps = done;
        sum.epochs_done = epoch;
        sum.final_loss = e.lg.last_loss;
        sum.test_accuracy = a.eval ? acc : -1;
        sum.samples_per_s = (double)done * e.B / train_s;
        sum.targets = e.tg; /* tokens_per_s */
        sum.has_val_loss = a.eval && acc >= 0;
        sum.val_loss = e.val_loss;
        sum.wall_s = wall;
        sum.train_s = train_s;
        sum.target_accuracy = a.target_accuracy;
        sum.time_to_target_s = time_to_target;
        sum.target_loss = a.target_loss;
        sum.target_step = target_step;
        sum.curves = &curves;
        sum.stages = ss;
        pdrt_summary_print(&sum);
        pdrt_summary_write(a.run_dir, &sum);
        char title[256];
        snprintf(title, sizeof title, "%s: %d stage%s on GPUs, %s", st->model, ns, ns > 1 ? "s" : "",
                 pdrt_schedule_name(st, &a));
        pdrt_curves_write_svg(a.run_dir, &curves, title);
        free(ss);
    }
    if (a.trace)
        pdrt_trace_gather_write(a.run_dir, e.rank, e.n, e.out_rank, e.first_rank, st->n_stages, 1);
    pdrt_trace_free();
    pdrt_curves_free(&curves);
    pdrt_barrier("every rank to finish");
    pd_links_close(e.links, e.la, e.lb, e.n_links, e.rank);
    pd_nccl_comm_destroy(e.nccl_stage);
    MPI_Comm_free(&e.stage_comm);
    MPI_Comm_free(&e.ties.comm);
    pdrt_cx_free(&e);
    pd_cuda_ctx_destroy(e.ctx);
    pdrt_optim_free(&e.opt);
    MPI_Finalize();
    return 0;
}
