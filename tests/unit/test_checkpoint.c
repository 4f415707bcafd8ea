/* test_checkpoint.c: checkpoint files (runtime/checkpoint.c): what is written reads back
 * exactly; every single flipped byte and every truncation is refused with a reason; another
 * plan's file is refused; the newest complete set is found and older sets are pruned; the
 * stash restarts at the checkpoint's version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/rt.h"
#include "test.h"

static void tmpdir(char *out, size_t cap) {
    snprintf(out, cap, "/tmp/pd_ckpt_test.XXXXXX");
    if (!mkdtemp(out)) out[0] = 0;
}

static void rm_rf(const char *dir) {
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) { /* best effort */ }
}

static pdrt_ckpt_meta sample_meta(int rank, int64_t step) {
    pdrt_ckpt_meta m;
    memset(&m, 0, sizeof m);
    m.fingerprint = 0x1234567890abcdefULL;
    m.seed = 7;
    m.stage = 1;
    m.replica = 0;
    m.rank = rank;
    m.n_ranks = 2;
    m.done = step;
    m.epoch = 3;
    m.updates = 41;
    m.every = 4;
    m.loss_sum = 1.25;
    m.last_loss = 0.5;
    m.loss_n = 2;
    m.skipped = 1;
    m.lr = 0.02;
    m.shuffle = 1;
    m.per_epoch = 2; /* step 8 ends the 4th epoch (epoch 3 begun: 6..8) */
    return m;
}

static const float P[5] = {1, -2, 3.5f, 1e-30f, -0.0f}, O[5] = {9, 8, 7, 6, 5}, Bf[2] = {0.25f, 4};

static int read_back(const char *path, const char *plan, char *why, size_t wcap, pdrt_ckpt_meta *m,
                     float *p, float *o, float *b) {
    return pdrt_ckpt_read(m, p, 5, o, 5, b, 2, path, plan, why, wcap);
}

TEST(checkpoint_round_trip) {
    char dir[256], path[4200], why[512];
    tmpdir(dir, sizeof dir);
    CHECK(dir[0]);
    pdrt_ckpt_meta m = sample_meta(1, 8), r;
    pdrt_ckpt_write(dir, &m, "00c0ffee00c0ffee", P, 5, O, 5, Bf, 2);
    pdrt_ckpt_path(path, sizeof path, dir, 8, 1);
    float p[5], o[5], b[2];
    CHECK_EQ_INT(read_back(path, "00c0ffee00c0ffee", why, sizeof why, &r, p, o, b), 0);
    CHECK(!memcmp(p, P, sizeof p) && !memcmp(o, O, sizeof o) && !memcmp(b, Bf, sizeof b));
    CHECK(r.fingerprint == m.fingerprint && r.seed == 7 && r.done == 8 && r.epoch == 3);
    CHECK(r.updates == 41 && r.every == 4 && r.loss_sum == 1.25 && r.loss_n == 2 && r.skipped == 1);
    CHECK(r.rank == 1 && r.stage == 1 && r.n_ranks == 2);
    CHECK(r.lr == 0.02 && r.shuffle == 1 && r.per_epoch == 2);
    /* it fits a run like its own; not one whose data set has another size (issue 16) */
    CHECK_EQ_INT(pdrt_ckpt_fits(&r, &m, 100, why, sizeof why), 0);
    pdrt_ckpt_meta other = m;
    other.per_epoch = 5;
    CHECK_EQ_INT(pdrt_ckpt_fits(&r, &other, 100, why, sizeof why), -1);
    CHECK(strstr(why, "written for 2 minibatches per epoch") && strstr(why, "this run's data has 5"));
    other = m;
    other.seed = 8;
    CHECK_EQ_INT(pdrt_ckpt_fits(&r, &other, 100, why, sizeof why), -1);
    CHECK(strstr(why, "--seed 7") != NULL);
    CHECK_EQ_INT(pdrt_ckpt_fits(&r, &m, 7, why, sizeof why), -1); /* past a 7-step run */
    /* another plan */
    CHECK_EQ_INT(read_back(path, "1111111111111111", why, sizeof why, &r, p, o, b), -1);
    CHECK(strstr(why, "another plan") != NULL);
    /* another stage's sizes */
    CHECK_EQ_INT(pdrt_ckpt_read(&r, p, 4, o, 5, b, 2, path, "00c0ffee00c0ffee", why, sizeof why), -1);
    CHECK(strstr(why, "this stage needs") != NULL);
    rm_rf(dir);
}

TEST(checkpoint_every_flip_and_truncation_refused) {
    char dir[256], path[4200], why[512];
    tmpdir(dir, sizeof dir);
    pdrt_ckpt_meta m = sample_meta(0, 4), r;
    pdrt_ckpt_write(dir, &m, "abc", P, 5, O, 5, Bf, 2);
    pdrt_ckpt_path(path, sizeof path, dir, 4, 0);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    if (!f) return;
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(n > 100 && n < sizeof buf);
    float p[5], o[5], b[2];
    int refused = 0, truncs = 0;
    for (size_t i = 0; i < n; i++) {
        buf[i] ^= 0x01;
        f = fopen(path, "wb");
        fwrite(buf, 1, n, f);
        fclose(f);
        why[0] = 0;
        if (read_back(path, "abc", why, sizeof why, &r, p, o, b) == -1 && why[0]) refused++;
        buf[i] ^= 0x01;
    }
    CHECK_EQ_INT(refused, (long long)n);
    for (size_t len = 0; len < n; len++) {
        f = fopen(path, "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        why[0] = 0;
        if (read_back(path, "abc", why, sizeof why, &r, p, o, b) == -1 && why[0]) truncs++;
    }
    CHECK_EQ_INT(truncs, (long long)n);
    /* the intact bytes still read */
    f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    CHECK_EQ_INT(read_back(path, "abc", why, sizeof why, &r, p, o, b), 0);
    rm_rf(dir);
}

TEST(checkpoint_latest_complete_set_and_prune) {
    char dir[256], path[4200], sdir0[4300];
    tmpdir(dir, sizeof dir);
    CHECK_EQ_INT(pdrt_ckpt_latest(dir, 2, INT64_MAX), -1);
    for (int64_t step = 4; step <= 12; step += 4)
        for (int rank = 0; rank < 2; rank++) {
            if (step == 12 && rank == 1) continue; /* the newest set is incomplete */
            pdrt_ckpt_meta m = sample_meta(rank, step);
            pdrt_ckpt_write(dir, &m, "h", P, 5, O, 5, Bf, 2);
        }
    CHECK_EQ_INT(pdrt_ckpt_latest(dir, 2, INT64_MAX), 8);
    CHECK_EQ_INT(pdrt_ckpt_latest(dir, 1, INT64_MAX), 12);
    CHECK_EQ_INT(pdrt_ckpt_latest(dir, 2, 8), 4); /* the next older set, for a fallback */
    CHECK_EQ_INT(pdrt_ckpt_latest(dir, 2, 4), -1);
    /* an interrupted write's temporary file, alone in its folder: pruning removes both */
    char tmpf[4400];
    snprintf(sdir0, sizeof sdir0, "%s/step-0000000020", dir);
    CHECK(mkdir(sdir0, 0755) == 0);
    snprintf(tmpf, sizeof tmpf, "%s/.rank-1.ckpt.99.tmp", sdir0);
    FILE *tf = fopen(tmpf, "wb");
    CHECK(tf != NULL);
    if (tf) fclose(tf);
    pdrt_ckpt_prune(dir, 0, 8);
    pdrt_ckpt_prune(dir, 1, 8);
    struct stat sb;
    pdrt_ckpt_path(path, sizeof path, dir, 4, 0);
    CHECK(stat(path, &sb) != 0);
    pdrt_ckpt_path(path, sizeof path, dir, 8, 1);
    CHECK(stat(path, &sb) == 0);
    char sdir[4300];
    snprintf(sdir, sizeof sdir, "%s/step-0000000004", dir);
    CHECK(stat(sdir, &sb) != 0); /* emptied folders go */
    CHECK(stat(tmpf, &sb) != 0 && stat(sdir0, &sb) != 0); /* and debris */
    rm_rf(dir);
}

TEST(stash_reset_restarts_at_version) {
    pdrt_stash s;
    pdrt_stash_init(&s, 3, 2, 2);
    float *w = pdrt_stash_reset(&s, 41);
    CHECK(w != NULL && s.newest == 41);
    w[0] = 5;
    CHECK(pdrt_stash_for_forward_at(&s, 0, 41)[0] == 5);
    CHECK(pdrt_stash_for_backward(&s, 0) == w);
    float *w2 = pdrt_stash_begin_update(&s);
    CHECK(s.newest == 42 && w2[0] == 5 && w2 != w);
    pdrt_stash_free(&s);
}

TEST(stage_fingerprint_sees_layout_and_schedule) {
    static const pdrt_tensor t[1] = {{"fc", "weight", 0, 10, 0}};
    static const int warm[2] = {1, 0}, reps[2] = {1, 1};
    pdrt_stage st;
    memset(&st, 0, sizeof st);
    st.model = "m";
    st.n_stages = 2;
    st.batch = 4;
    st.n_params = 10;
    st.n_tensors = 1;
    st.tensors = t;
    st.warmup = warm;
    st.replicas = reps;
    uint64_t a = pdrt_stage_fingerprint(&st, "1f1b", 4);
    CHECK(a == pdrt_stage_fingerprint(&st, "1f1b", 4));
    CHECK(a != pdrt_stage_fingerprint(&st, "flush", 4));
    CHECK(a != pdrt_stage_fingerprint(&st, "1f1b", 8));
    st.n_params = 11;
    CHECK(a != pdrt_stage_fingerprint(&st, "1f1b", 4));
}
