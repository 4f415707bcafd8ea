/* local.c: every stage in one process, one minibatch at a time.
 *   --single:  plain sequential training (each forward uses the newest weights): the reference.
 *              Under flush and gpipe it runs the pipeline's batches: the gradients of a batch's
 *              minibatches (of `microbatches`, the last batch of an epoch may be shorter) are
 *              summed in minibatch order and their mean is one optimizer step.
 *   --emulate: PipeDream's 1F1B semantics replayed sequentially, written independently of the
 *              executor and the stash: within an epoch (the pipeline drains at each epoch end),
 *              stage s with r replicas makes update u from the minibatches u*r .. u*r+r-1 (the
 *              mean of their gradients, summed in minibatch order from zero, which is the
 *              replicas' rank order); the forward of local minibatch j at stage s uses the
 *              weights after base + max(0, floor(j / r) - warmup[s]) updates (base: updates of
 *              earlier epochs), or under vertical sync base + max(0, j - warmup[0]) at every
 *              stage, and its backward uses that same version. Every version is kept in a
 *              plain array indexed by version number. Under 2bw (PipeDream-2BW: W(t+1) =
 *              W(t) - lr grad f(W(t-1))): one update per batch of M minibatches of the epoch,
 *              every minibatch of batch b using, at every stage, the weights after
 *              base + max(0, b - 1) updates. Under flush, gpipe, zb-h1 and zb-h2 it runs as
 *              --single.
 * Both run the same stage functions, optimizer and data as the pipeline, so --emulate must give
 * the pipeline's weights bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/cpu/ops.h"
#include "optim.h"
#include "rt.h"

typedef struct {
    const pdrt_stage *st;
    float **version;        /* version[v]: weights after v updates (NULL once dropped) */
    float *grads, *opt_state, *buffers, *acts, *dacts, *scratch, *in, *din;
    float *acc;             /* gradients of the update being accumulated */
    pd_optim opt;           /* the stage's (AdamW's spans are per stage) */
    float *racc;            /* emulate 2bw with replicas: each replica's sum of its minibatches'
                               gradients in the batch (nrep x n_params), added into acc in rank
                               order at the batch's end, as the replicas' all-reduce does */
    float *rbuf;            /* emulate: buffers (batch-norm statistics) of replicas 1.. r-1,
                               which see only their own minibatches; replica 0's are `buffers` */
    int nrep;
    int count;              /* minibatches in acc */
    int64_t newest;
} local_stage;

/* the test set's accuracy; *val_loss gets its mean loss per target */
static double eval_local(local_stage *ls, int n, pd_data *test, float *x, int *labels, int tg,
                         const pdrt_args *a, double *val_loss) {
    int B = ls[0].st->batch, K = ls[n - 1].st->classes;
    int64_t nb = pdrt_eval_batches(a, pd_data_batches(test, B, 0)), correct = 0;
    float *logits = pdrt_alloc((size_t)ls[n - 1].st->out_floats);
    float *dlogits = pdrt_alloc((size_t)ls[n - 1].st->out_floats);
    double loss_sum = 0;
    for (int64_t t = 0; t < nb; t++) {
        memset(x, 0, (size_t)ls[0].st->in_floats * sizeof(float));
        int got = pd_data_batch(x, labels, test, 0, t, B, 0, a->seed) * tg; /* targets */
        const float *in = x;
        for (int k = 0; k < n; k++) {
            float *out = k + 1 < n ? ls[k + 1].in : logits;
            ls[k].st->forward(out, ls[k].acts, ls[k].scratch, ls[k].buffers,
                              ls[k].version[ls[k].newest], in, 0, a->seed, -1);
            in = out;
        }
        if (t == 0 && a->logits_path[0]) { /* --save-logits: what an exported model must give */
            pdrt_out o;
            fwrite(logits, sizeof(float), (size_t)got * (size_t)K, pdrt_out_open(&o, a->logits_path));
            pdrt_out_commit(&o);
        }
        correct += pdrt_count_correct(logits, labels, got, K);
        if (got) loss_sum += (double)got * pdrt_softmax_cross_entropy(dlogits, logits, labels, got, K);
    }
    free(logits);
    free(dlogits);
    int64_t nt = (nb * B < test->n ? nb * B : test->n) * tg;
    *val_loss = nt ? loss_sum / (double)nt : 0;
    return nt ? (double)correct / (double)nt : 0;
}

int pdrt_main_local(int argc, char **argv, const pdrt_stage *const *stages, int n) {
    for (int i = 1; i < argc; i++) /* sampling text: its own options (generate.c) */
        if (!strcmp(argv[i], "--generate")) return pdrt_generate(argc, argv, stages, n);
    pdrt_args a;
    int pr = pdrt_args_parse(&a, argc, argv, RT_SINGLE);
    if (pr) return pr > 0 ? 0 : 2;
    if (a.mode == RT_PIPELINE) a.mode = RT_SINGLE;
    if (a.checkpoint_dir[0] || a.skip_nonfinite) {
        fprintf(stderr, "pdrt: error: checkpoints, --resume and --skip-nonfinite are pipeline-only "
                "(not --single/--emulate)\n");
        return 2;
    }
    /* one process, no communication: MPI is not needed (and not initialised, so that a run
     * under valgrind shows only this program's own memory) */
    pdrt_set_identity(0, 0, 0);
    pdrt_watchdog_start(0); /* one process: nothing to wait for, but its launcher may go */
    const pdrt_stage *s0 = stages[0];
    int B = s0->batch;
    for (int k = 0; k < n; k++)
        if (stages[k]->abi != PDRT_ABI || stages[k]->index != k || stages[k]->batch != B ||
            (k > 0 && stages[k]->in_floats != stages[k - 1]->out_floats))
            PDRT_FAIL("stage %d does not fit the others", k);
    pd_optim opt;
    pdrt_optim_from(&opt, s0, &a);
    pdrt_clip_check(&opt, s0, &a);
    pd_data train, test;
    pdrt_data_open(&train, &test, &a, s0);
    int tg = pdrt_targets(&a, s0), NL = B * tg; /* targets per sample, per minibatch */
    PDRT_CHECK(pd_data_targets(&train) == tg);
    pdrt_check_logits(stages[n - 1], tg);
    int64_t per_epoch = pd_data_batches(&train, B, 1);
    if (per_epoch < 1) PDRT_FAIL("the training set holds less than one minibatch");
    int epochs = a.epochs > 0 ? a.epochs : (s0->epochs > 0 ? s0->epochs : 1);
    int64_t total = a.steps > 0 ? a.steps : (int64_t)epochs * per_epoch;
    const char *sched = pdrt_schedule_name(s0, &a);
    int sync = strcmp(sched, "1f1b") != 0;      /* flush, gpipe, zb, 2bw: batches of M */
    int two_bw = !strcmp(sched, "2bw") && a.mode == RT_EMULATE;
    int M = pdrt_microbatches(s0, &a);
    int vsync = !sync && s0->vertical_sync && a.mode == RT_EMULATE;
    pdrt_trace_start(a.trace, pdrt_now());

    local_stage *ls = calloc((size_t)n, sizeof *ls);
    PDRT_CHECK(ls != NULL);
    for (int k = 0; k < n; k++) {
        const pdrt_stage *st = stages[k];
        ls[k].st = st;
        ls[k].version = calloc((size_t)total + 1, sizeof(float *));
        PDRT_CHECK(ls[k].version != NULL);
        ls[k].version[0] = pdrt_alloc((size_t)st->n_params);
        ls[k].grads = pdrt_alloc((size_t)st->n_params);
        ls[k].opt_state = pdrt_alloc(pd_optim_state_floats(&opt, (size_t)st->n_params));
        ls[k].buffers = pdrt_alloc((size_t)st->n_buffers);
        ls[k].acts = pdrt_alloc((size_t)st->n_acts);
        ls[k].dacts = pdrt_alloc((size_t)st->n_acts);
        ls[k].scratch = pdrt_alloc((size_t)pdrt_scratch_floats(st));
        ls[k].in = pdrt_alloc((size_t)st->in_floats);
        ls[k].din = pdrt_alloc((size_t)st->in_floats);
        ls[k].acc = pdrt_alloc((size_t)st->n_params);
        pdrt_optim_from(&ls[k].opt, st, &a);
        st->init(ls[k].version[0], ls[k].buffers, a.seed);
        if (a.init_dir[0]) pdrt_weights_load(a.init_dir, st, ls[k].version[0], ls[k].buffers);
        ls[k].nrep = a.mode == RT_EMULATE ? pdrt_replicas(st, k) : 1;
        ls[k].rbuf = pdrt_alloc((size_t)st->n_buffers * (size_t)(ls[k].nrep > 1 ? ls[k].nrep - 1 : 1));
        if (two_bw && ls[k].nrep > 1)
            ls[k].racc = pdrt_alloc((size_t)st->n_params * (size_t)ls[k].nrep);
        for (int q = 1; q < ls[k].nrep; q++)
            memcpy(ls[k].rbuf + (size_t)(q - 1) * (size_t)st->n_buffers, ls[k].buffers,
                   (size_t)st->n_buffers * sizeof(float));
    }
    for (int k = 0; k < n; k++) { /* tied weights: the owner's values on both copies */
        const pdrt_stage *st = stages[k];
        pdrt_ties_check(st, &a);
        pdrt_ties_init_local(st, ls[k].version[0]);
        for (int i = 0; i < st->n_ties; i++) {
            const pdrt_tie *t = &st->ties[i];
            if (t->owner || t->peer_stage == k) continue;
            PDRT_CHECK(t->peer_stage >= 0 && t->peer_stage < n);
            const pdrt_tensor *x = &st->tensors[t->tensor];
            const pdrt_tensor *o = &stages[t->peer_stage]->tensors[t->peer_tensor];
            memcpy(ls[k].version[0] + x->offset, ls[t->peer_stage].version[0] + o->offset,
                   (size_t)x->numel * sizeof(float));
        }
    }
    float *logits = pdrt_alloc((size_t)stages[n - 1]->out_floats);
    float *dlogits = pdrt_alloc((size_t)stages[n - 1]->out_floats);
    int *labels = calloc((size_t)NL, sizeof(int));
    PDRT_CHECK(labels != NULL);
    pdrt_stage_stats *ss = calloc((size_t)n, sizeof *ss);
    PDRT_CHECK(ss != NULL);

    double t0 = pdrt_now(), t_log = t0, loss_sum = 0, last_loss = 0, acc = -1, ttt = -1,
           train_s = 0, val_loss = 0;
    int64_t loss_n = 0, done = 0, target_step = -1;
    int epoch = 0, stop = 0;
    pdrt_curves curves = {.eval_is_loss = tg > 1};
    while (done < total && !stop) {
        /* a segment: the rest of the epoch, cut at the next multiple of --eval-every (where the
         * pipeline drains: emulate's weight versions and flush's batches restart there too) */
        int64_t off = done - (int64_t)epoch * per_epoch;
        int64_t nsteps = pdrt_segment_end(&a, done, per_epoch, total, 0) - done;
        double te = pdrt_now();
        int64_t ebase[64];
        PDRT_CHECK(n <= 64);
        for (int k = 0; k < n; k++) ebase[k] = ls[k].newest;
        for (int64_t j = 0; j < nsteps; j++) {
            int64_t g = done + j;
            int64_t v[64];
            PDRT_CHECK(n <= 64);
            for (int k = 0; k < n; k++) {
                int r = pdrt_replicas(s0, k), w = stages[k]->warmup[k];
                int64_t lj = j / r;
                if (vsync) { w = stages[0]->warmup[0]; lj = j; }
                v[k] = ls[k].newest;
                if (a.mode == RT_EMULATE && !sync) v[k] = ebase[k] + (lj > w ? lj - w : 0);
                if (two_bw) v[k] = ebase[k] + (j / M > 0 ? j / M - 1 : 0); /* after update b-2 */
                PDRT_CHECK(v[k] <= ls[k].newest && ls[k].version[v[k]] != NULL);
            }
            double t = pdrt_now();
            int got = pd_data_batch(ls[0].in, labels, &train, epoch, off + j, B, a.shuffle, a.seed);
            PDRT_CHECK(got == B);
            for (int k = 0; k < n; k++) {
                float *out = k + 1 < n ? ls[k + 1].in : logits;
                int q = (int)(j % ls[k].nrep);
                float *bufs = q ? ls[k].rbuf + (size_t)(q - 1) * (size_t)ls[k].st->n_buffers
                                : ls[k].buffers;
                ls[k].st->forward(out, ls[k].acts, ls[k].scratch, bufs,
                                  ls[k].version[v[k]], ls[k].in, 1, a.seed, g);
                double t2 = pdrt_now();
                pdrt_trace_add(PD_A_FORWARD, (int)j, -1, 0, t, t2);
                ss[k].fwd_ms += 1e3 * (t2 - t);
                t = t2;
            }
            float loss = pdrt_softmax_cross_entropy(dlogits, logits, labels, NL, stages[n - 1]->classes);
            if (loss != loss) PDRT_FAIL("loss is NaN at step %lld", (long long)g);
            const float *dout = dlogits;
            t = pdrt_now();
            for (int k = n - 1; k >= 0; k--) {
                ls[k].st->backward(k ? ls[k].din : NULL, ls[k].grads, ls[k].dacts, ls[k].scratch,
                                   dout, ls[k].acts, ls[k].version[v[k]], ls[k].in);
                dout = ls[k].din;
                local_stage *l = &ls[k];
                float *into = l->racc ? l->racc + (size_t)(j % l->nrep) * (size_t)l->st->n_params
                                      : l->acc;
                for (int64_t i = 0; i < l->st->n_params; i++) into[i] += l->grads[i];
                l->count++;
                double t2 = pdrt_now();
                pdrt_trace_add(PD_A_BACKWARD, (int)j, -1, 0, t, t2);
                ss[k].bwd_ms += 1e3 * (t2 - t);
                t = t2;
            }
            int ends[64] = {0};
            double sq = 0;
            for (int k = 0; k < n; k++) {
                /* does an update end here? flush/gpipe: at the end of a batch of M (single:
                 * also of 1 under 1f1b); emulate 1f1b: after every r-th minibatch */
                int r = a.mode == RT_EMULATE && !sync ? pdrt_replicas(s0, k) : 1;
                int64_t per = sync ? M : r;
                ends[k] = (j + 1) % per == 0 || j + 1 == nsteps;
            }
            for (int k = 0; k < n; k++) { /* 2bw's replicas: their sums, in rank order from zero */
                local_stage *l = &ls[k];
                if (!ends[k] || !l->racc) continue;
                int64_t np = l->st->n_params;
                for (int q = 0; q < l->nrep; q++) {
                    float *rq = l->racc + (size_t)q * (size_t)np;
                    for (int64_t i = 0; i < np; i++) l->acc[i] += rq[i];
                    memset(rq, 0, (size_t)np * sizeof(float));
                }
            }
            for (int k = 0; k < n; k++) { /* tied weights: the owner's gradient plus the copy's */
                if (ends[k]) pdrt_ties_local(stages[k], ls[k].acc);
                for (int i = 0; i < stages[k]->n_ties; i++) {
                    const pdrt_tie *t = &stages[k]->ties[i];
                    if (t->owner || t->peer_stage == k) continue; /* one stage: summed above */
                    PDRT_CHECK(ends[k] == ends[t->peer_stage]); /* pdrt_ties_check */
                    if (!ends[k]) continue;
                    const pdrt_tensor *x = &stages[k]->tensors[t->tensor];
                    const pdrt_tensor *o = &stages[t->peer_stage]->tensors[t->peer_tensor];
                    pdrt_tie_sum(ls[t->peer_stage].acc + o->offset, ls[k].acc + x->offset,
                                 x->numel);
                }
            }
            for (int k = 0; k < n; k++) {
                local_stage *l = &ls[k];
                if (!ends[k]) continue;
                int64_t np = l->st->n_params;
                if (l->count != 1) {
                    float inv = 1.0f / (float)l->count;
                    for (int64_t i = 0; i < np; i++) l->acc[i] *= inv;
                }
                if (opt.clip_grad_norm > 0) /* summed in stage order, as the ranks' */
                    sq += pdrt_ties_sq_norm(l->st, l->acc);
            }
            if (opt.clip_grad_norm > 0 && ends[0]) { /* so do all stages' (pdrt_clip_check) */
                float c = pd_clip_coef(sq, opt.clip_grad_norm);
                for (int k = 0; k < n; k++) {
                    PDRT_CHECK(ends[k]);
                    for (int64_t i = 0; i < ls[k].st->n_params; i++) ls[k].acc[i] *= c;
                }
            }
            for (int k = 0; k < n; k++) {
                local_stage *l = &ls[k];
                if (!ends[k]) continue;
                int64_t np = l->st->n_params;
                int64_t nv = l->newest + 1;
                l->version[nv] = pdrt_alloc((size_t)np);
                memcpy(l->version[nv], l->version[l->newest], (size_t)np * sizeof(float));
                pd_optim_step(l->version[nv], l->opt_state, l->acc, &l->opt, nv, (size_t)np);
                memset(l->acc, 0, (size_t)np * sizeof(float));
                l->count = 0;
                l->newest = nv;
                pdrt_trace_add(PD_A_STEP, (int)j, -1, 0, t, pdrt_now());
                /* versions older than any later forward can use are dropped */
                int64_t keep = nv - 1 - (int64_t)(vsync ? stages[0]->warmup[0] : stages[k]->warmup[k]);
                for (int64_t old = keep - 1; old >= 0 && l->version[old]; old--) {
                    free(l->version[old]);
                    l->version[old] = NULL;
                }
                double t2 = pdrt_now();
                ss[k].step_ms += 1e3 * (t2 - t);
                ss[k].steps++;
                t = t2;
            }
            loss_sum += loss;
            loss_n++;
            if (loss_n >= a.log_every || j + 1 == nsteps) {
                double now = pdrt_now();
                last_loss = loss_sum / (double)loss_n;
                printf("epoch %d step %lld/%lld loss %.4f samples/s %.1f\n", epoch + 1,
                       (long long)(off + j + 1), (long long)per_epoch, last_loss,
                       (double)loss_n * B / (now - t_log > 1e-9 ? now - t_log : 1e-9));
                fflush(stdout);
                pdrt_curves_add_loss(&curves, g + 1, now - t0, last_loss);
                loss_sum = 0;
                loss_n = 0;
                t_log = now;
            }
        }
        train_s += pdrt_now() - te;
        done += nsteps;
        int epoch_end = off + nsteps == per_epoch;
        if (epoch_end) epoch++;
        if (pdrt_eval_due(&a, done, epoch_end || done == total)) {
            acc = eval_local(ls, n, &test, ls[0].in, labels, tg, &a, &val_loss);
            stop = pdrt_eval_record(&curves, &a, tg, done, per_epoch, total, pdrt_now() - t0, acc,
                                    val_loss, 1, &ttt, &target_step);
        }
    }
    if (done > (int64_t)epoch * per_epoch) epoch++; /* epochs begun */
    double wall = pdrt_now() - t0;
    for (int k = 0; k < n; k++) {
        ss[k].predicted_ms = stages[k]->predicted_ms;
        ss[k].predicted_compute_ms = stages[k]->predicted_compute_ms;
        if (a.save_dir[0])
            pdrt_weights_save(a.save_dir, stages[k], ls[k].version[ls[k].newest], ls[k].buffers);
    }
    pdrt_summary sum = {s0->model, a.mode == RT_EMULATE ? "emulate" : "single", sched, n, B,
                      done, epoch, last_loss, a.eval ? acc : -1, (double)done * B / train_s,
                      wall, train_s, a.target_accuracy, ttt, ss, 0, 0, 0, 0,
                      a.eval && acc >= 0, val_loss, tg, a.target_loss, target_step, &curves};
    pdrt_summary_print(&sum);
    pdrt_summary_write(a.run_dir, &sum);
    {
        char title[256];
        snprintf(title, sizeof title, "%s: %s, %d stage%s in one process, %s", s0->model,
                 a.mode == RT_EMULATE ? "emulate" : "single", n, n > 1 ? "s" : "", sched);
        pdrt_curves_write_svg(a.run_dir, &curves, title);
        pdrt_curves_free(&curves);
    }
    { /* only pipeline runs time the layers: an earlier run's profile must not pass for this one's */
        char path[sizeof a.run_dir + 16];
        snprintf(path, sizeof path, "%s/profile.yaml", a.run_dir);
        unlink(path);
    }
    if (a.trace) {
        size_t len = 0;
        char *ev = pdrt_trace_events_json(0, &len);
        const char *name = a.mode == RT_EMULATE ? "emulate: every stage" : "single: every stage";
        pdrt_trace_write(a.run_dir, ev, 1, &name);
        free(ev);
    }
    pdrt_trace_free();

    for (int k = 0; k < n; k++) {
        for (int64_t v = 0; v <= total; v++) free(ls[k].version[v]);
        free(ls[k].version);
        free(ls[k].grads); free(ls[k].opt_state); free(ls[k].buffers); free(ls[k].acts);
        free(ls[k].dacts); free(ls[k].scratch); free(ls[k].in); free(ls[k].din);
        free(ls[k].acc);
        free(ls[k].rbuf);
        free(ls[k].racc);
        pdrt_optim_free(&ls[k].opt);
    }
    free(ls); free(logits); free(dlogits); free(labels); free(ss);
    pdrt_optim_free(&opt); /* its AdamW spans (the stages have their own) */
    pd_data_free(&train);
    pd_data_free(&test);
    return 0;
}
