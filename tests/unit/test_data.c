/* test_data.c: keyed randomness (rng.h), the keyed shuffle, Fashion-MNIST loading (the real files
 * when present; small good and bad IDX fixtures written to a temp dir), and synthetic data that a
 * linear model trained with the runtime's own ops and SGD actually learns. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef PD_HAVE_ZLIB
#include <zlib.h>
#endif

#include "runtime/data.h"
#include "runtime/cpu/ops.h"
#include "runtime/optim.h"
#include "runtime/base/rng.h"
#include "test.h"

TEST(rng_is_keyed_and_well_distributed) {
    uint64_t k = pd_rng_key(7, PD_RNG_USER, 1, 2, 3);
    CHECK(k == pd_rng_key(7, PD_RNG_USER, 1, 2, 3));
    CHECK(k != pd_rng_key(7, PD_RNG_USER, 2, 1, 3));
    CHECK(k != pd_rng_key(8, PD_RNG_USER, 1, 2, 3));
    CHECK(k != pd_rng_key(7, PD_RNG_USER + 1, 1, 2, 3));
    CHECK(pd_rng_u64(k, 5) == pd_rng_u64(k, 5) && pd_rng_u64(k, 5) != pd_rng_u64(k, 6));
    int n = 200000, inrange = 1, bins[10] = {0};
    double su = 0, sn = 0, sn2 = 0;
    for (int i = 0; i < n; i++) {
        float u = pd_rng_uniform(k, (uint64_t)i);
        if (!(u >= 0.0f && u < 1.0f)) inrange = 0;
        su += u;
        double z = pd_rng_normal(k, (uint64_t)i);
        sn += z;
        sn2 += z * z;
        uint64_t r = pd_rng_below(k, (uint64_t)i, 10);
        if (r >= 10) inrange = 0;
        else bins[r]++;
    }
    CHECK(inrange);
    CHECK_CLOSE(su / n, 0.5, 0.005, 0);
    CHECK_CLOSE(sn / n, 0.0, 0.01, 0);
    CHECK_CLOSE(sn2 / n, 1.0, 0.02, 0);
    for (int b = 0; b < 10; b++) CHECK(bins[b] > 19000 && bins[b] < 21000);
    /* a bound just above 2^63 forces rejections: still in range */
    uint64_t big = (1ull << 63) + 12345;
    for (int i = 0; i < 1000; i++) CHECK(pd_rng_below(k, (uint64_t)i, big) < big);
}

TEST(shuffle_is_a_deterministic_permutation_per_epoch) {
    int64_t n = 1000;
    int32_t *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4);
    char *seen = calloc(n, 1);
    pd_shuffle_order(a, n, 11, 3);
    pd_shuffle_order(b, n, 11, 3);
    pd_shuffle_order(c, n, 11, 4);
    CHECK(memcmp(a, b, n * 4) == 0);
    CHECK(memcmp(a, c, n * 4) != 0);
    int perm = 1, fixed = 0;
    for (int64_t i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] >= n || seen[a[i]]) perm = 0;
        else seen[a[i]] = 1;
        fixed += a[i] == i;
    }
    CHECK(perm);
    CHECK(fixed < 10); /* a random permutation has ~1 fixed point */
    pd_shuffle_order(b, n, 12, 3);
    CHECK(memcmp(a, b, n * 4) != 0);
    free(a); free(b); free(c); free(seen);
}

TEST(fashion_mnist_real_files) {
    char err[512];
    if (access(PD_FMNIST_DEFAULT_DIR "/train-labels-idx1-ubyte.gz", R_OK) != 0 &&
        access(PD_FMNIST_DEFAULT_DIR "/train-labels-idx1-ubyte", R_OK) != 0)
        SKIP("Fashion-MNIST not installed in " PD_FMNIST_DEFAULT_DIR);
#ifndef PD_HAVE_ZLIB
    if (access(PD_FMNIST_DEFAULT_DIR "/train-labels-idx1-ubyte", R_OK) != 0)
        SKIP("built without zlib and only gzip files are installed");
#endif
    pd_data tr, te;
    int rc = pd_fmnist_load(&tr, NULL, 1, err, sizeof err);
    if (rc != 0) printf("  %s\n", err);
    CHECK(rc == 0);
    if (rc != 0) return;
    rc = pd_fmnist_load(&te, NULL, 0, err, sizeof err);
    CHECK(rc == 0);
    if (rc != 0) { pd_data_free(&tr); return; }
    CHECK_EQ_INT(tr.n, 60000);
    CHECK_EQ_INT(te.n, 10000);
    CHECK(tr.C == 1 && tr.H == 28 && tr.W == 28 && tr.classes == 10);
    int count[10] = {0}, tcount[10] = {0};
    for (int64_t i = 0; i < tr.n; i++) count[tr.labels[i]]++;
    for (int64_t i = 0; i < te.n; i++) tcount[te.labels[i]]++;
    for (int k = 0; k < 10; k++) CHECK(count[k] == 6000 && tcount[k] == 1000);
    /* normalised pixels over the whole training set: mean ~0, std ~1 */
    int B = 64;
    CHECK_EQ_INT(pd_data_batches(&tr, B, 1), 937);
    CHECK_EQ_INT(pd_data_batches(&te, B, 0), 157);
    float *x = malloc((size_t)B * 784 * sizeof(float));
    int lab[64];
    double s = 0, s2 = 0, lo = 1e9, hi = -1e9;
    for (int64_t t = 0; t < pd_data_batches(&tr, B, 1); t++) {
        CHECK_EQ_INT(pd_data_batch(x, lab, &tr, 0, t, B, 0, 0), B);
        for (int i = 0; i < B * 784; i++) {
            s += x[i];
            s2 += (double)x[i] * x[i];
            if (x[i] < lo) lo = x[i];
            if (x[i] > hi) hi = x[i];
        }
    }
    double nn = 937.0 * B * 784, mean = s / nn;
    CHECK_CLOSE(mean, 0.0, 0.01, 0);
    CHECK_CLOSE(sqrt(s2 / nn - mean * mean), 1.0, 0.01, 0);
    CHECK_CLOSE(lo, -0.2860 / 0.3530, 1e-5, 0);
    CHECK_CLOSE(hi, (1 - 0.2860) / 0.3530, 1e-5, 0);
    /* the last test batch is partial, past the end is empty */
    CHECK_EQ_INT(pd_data_batch(x, lab, &te, 0, 156, B, 0, 0), 10000 - 156 * 64);
    CHECK_EQ_INT(pd_data_batch(x, lab, &te, 0, 157, B, 0, 0), 0);
    /* shuffled batches follow the keyed order */
    int32_t *order = malloc(60000 * 4);
    pd_shuffle_order(order, 60000, 5, 2);
    CHECK_EQ_INT(pd_data_batch(x, lab, &tr, 2, 10, B, 1, 5), B);
    int follows = 1;
    for (int j = 0; j < B; j++) {
        int64_t idx = order[10 * B + j];
        if (lab[j] != tr.labels[idx]) follows = 0;
        if (fabs(x[j * 784 + 400] - (tr.pixels[idx * 784 + 400] / 255.0 - 0.2860) / 0.3530) > 1e-5)
            follows = 0;
    }
    CHECK(follows);
    free(order);
    free(x);
    pd_data_free(&tr);
    pd_data_free(&te);
}

/* ---- fixtures ---- */
static char fixture_dir[64];

static void write_file(const char *name, const void *bytes, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    FILE *f = fopen(path, "wb");
    fwrite(bytes, 1, n, f);
    fclose(f);
}
static void remove_file(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    unlink(path);
}
static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
/* 3 images of 2x3 and 3 labels */
static size_t good_images(uint8_t *buf) {
    put_be32(buf, 0x803); put_be32(buf + 4, 3); put_be32(buf + 8, 2); put_be32(buf + 12, 3);
    for (int i = 0; i < 18; i++) buf[16 + i] = (uint8_t)(i * 14);
    return 34;
}
static size_t good_labels(uint8_t *buf) {
    put_be32(buf, 0x801); put_be32(buf + 4, 3);
    buf[8] = 2; buf[9] = 9; buf[10] = 0;
    return 11;
}
/* loads the fixture dir's train split; returns rc and leaves the message in err */
static int load_fixture(char *err, size_t n) {
    pd_data d;
    int rc = pd_fmnist_load(&d, fixture_dir, 1, err, n);
    if (rc == 0) pd_data_free(&d);
    return rc;
}
static void expect_error(const char *what, const char *fragment, int line) {
    char err[512] = "";
    int rc = load_fixture(err, sizeof err);
    if (rc == 0 || !strstr(err, fragment))
        test_fail(__FILE__, line, "%s: rc %d, message '%s' (want '%s')", what, rc, err, fragment);
}

TEST(idx_fixtures_good_and_bad) {
    snprintf(fixture_dir, sizeof fixture_dir, "/tmp/pd_test_data_XXXXXX");
    if (!mkdtemp(fixture_dir)) SKIP("cannot make a temp dir");
    uint8_t img[64], lab[32];
    size_t ni = good_images(img), nl = good_labels(lab);
    write_file("train-images-idx3-ubyte", img, ni);
    write_file("train-labels-idx1-ubyte", lab, nl);
    pd_data d;
    char err[512] = "";
    int rc = pd_fmnist_load(&d, fixture_dir, 1, err, sizeof err);
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(d.n == 3 && d.H == 2 && d.W == 3 && d.C == 1);
        float x[18];
        int l[3];
        CHECK_EQ_INT(pd_data_batch(x, l, &d, 0, 0, 3, 0, 0), 3);
        CHECK(l[0] == 2 && l[1] == 9 && l[2] == 0);
        CHECK_CLOSE(x[7], (7 * 14 / 255.0 - 0.2860) / 0.3530, 1e-5, 0);
        pd_data_free(&d);
    }
    /* missing test split */
    CHECK(pd_fmnist_load(&d, fixture_dir, 0, err, sizeof err) != 0 && strstr(err, "t10k"));
    /* bad magic */
    put_be32(img, 0x802);
    write_file("train-images-idx3-ubyte", img, ni);
    expect_error("bad magic", "magic", __LINE__);
    put_be32(img, 0x803);
    /* truncated header, truncated data, trailing bytes */
    write_file("train-images-idx3-ubyte", img, 10);
    expect_error("short header", "truncated IDX header", __LINE__);
    write_file("train-images-idx3-ubyte", img, ni - 5);
    expect_error("short data", "truncated", __LINE__);
    img[ni] = 1;
    write_file("train-images-idx3-ubyte", img, ni + 1);
    expect_error("trailing", "trailing bytes", __LINE__);
    /* zero count */
    put_be32(img + 4, 0);
    write_file("train-images-idx3-ubyte", img, ni);
    expect_error("zero count", "implausible", __LINE__);
    put_be32(img + 4, 3);
    write_file("train-images-idx3-ubyte", img, ni);
    /* labels: count mismatch, out of range */
    put_be32(lab + 4, 2);
    write_file("train-labels-idx1-ubyte", lab, nl - 1);
    expect_error("count mismatch", "2 labels for 3 images", __LINE__);
    put_be32(lab + 4, 3);
    lab[9] = 10;
    write_file("train-labels-idx1-ubyte", lab, nl);
    expect_error("label range", "outside 0..9", __LINE__);
    lab[9] = 9;
    write_file("train-labels-idx1-ubyte", lab, nl);
    CHECK(load_fixture(err, sizeof err) == 0);
#ifdef PD_HAVE_ZLIB
    /* gzip files are preferred over plain ones; a truncated gzip is an error, not a crash */
    char path[256];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", fixture_dir);
    gzFile gz = gzopen(path, "wb");
    img[16] = 77;
    gzwrite(gz, img, (unsigned)ni);
    gzclose(gz);
    rc = pd_fmnist_load(&d, fixture_dir, 1, err, sizeof err);
    CHECK(rc == 0);
    if (rc == 0) {
        CHECK(d.pixels[0] == 77);
        pd_data_free(&d);
    }
    FILE *f = fopen(path, "rb");
    uint8_t gzbytes[256];
    size_t gzn = fread(gzbytes, 1, sizeof gzbytes, f);
    fclose(f);
    write_file("train-images-idx3-ubyte.gz", gzbytes, gzn / 2);
    rc = load_fixture(err, sizeof err);
    CHECK(rc != 0 && strstr(err, "train-images-idx3-ubyte.gz"));
    remove_file("train-images-idx3-ubyte.gz");
#endif
    remove_file("train-images-idx3-ubyte");
    remove_file("train-labels-idx1-ubyte");
    expect_error("missing", "cannot open", __LINE__);
    rmdir(fixture_dir);
}

TEST(synthetic_data_is_keyed_and_learnable) {
    int C = 1, H = 6, W = 6, K = 4, F = C * H * W, B = 32;
    pd_data tr, tr2, te;
    pd_synthetic_init(&tr, 4096, C, H, W, K, 9, 1);
    pd_synthetic_init(&tr2, 4096, C, H, W, K, 9, 1);
    pd_synthetic_init(&te, 512, C, H, W, K, 9, 0);
    float *x = malloc((size_t)B * F * 4), *x2 = malloc((size_t)B * F * 4);
    int l[32], l2[32], count[4] = {0};
    CHECK_EQ_INT(pd_data_batch(x, l, &tr, 1, 3, B, 1, 4), B);
    CHECK_EQ_INT(pd_data_batch(x2, l2, &tr2, 1, 3, B, 1, 4), B);
    CHECK(memcmp(x, x2, (size_t)B * F * 4) == 0 && memcmp(l, l2, sizeof l) == 0);
    pd_data_batch(x2, l2, &te, 0, 0, B, 0, 0);
    CHECK(memcmp(x, x2, (size_t)B * F * 4) != 0);
    int only_labels[32];
    pd_data_batch(NULL, only_labels, &tr, 1, 3, B, 1, 4);
    CHECK(memcmp(l, only_labels, sizeof l) == 0);
    for (int t = 0; t < 16; t++) {
        pd_data_batch(NULL, l, &tr, 0, t, B, 0, 0);
        for (int j = 0; j < B; j++) {
            CHECK(l[j] >= 0 && l[j] < K);
            count[l[j]]++;
        }
    }
    for (int k = 0; k < K; k++) CHECK(count[k] > 512 / K / 3);
    /* a linear classifier trained with the runtime's kernels and SGD learns it */
    float *w = calloc((size_t)K * F, 4), *b = calloc(K, 4), *dw = malloc((size_t)K * F * 4),
          *db = malloc(K * 4), *logits = malloc((size_t)B * K * 4), *dl = malloc((size_t)B * K * 4),
          *buf = calloc((size_t)K * F + K, 4);
    float first_loss = 0, last_loss = 0;
    for (int step = 0; step < 600; step++) {
        int64_t nb = pd_data_batches(&tr, B, 1);
        pd_data_batch(x, l, &tr, step / nb, step % nb, B, 1, 4);
        pdrt_linear_forward(logits, x, w, b, B, F, K);
        float loss = pdrt_softmax_cross_entropy(dl, logits, l, B, K);
        if (step < 20) first_loss += loss / 20;
        if (step >= 580) last_loss += loss / 20;
        memset(dw, 0, (size_t)K * F * 4);
        memset(db, 0, K * 4);
        pdrt_linear_backward(NULL, dw, db, dl, x, w, B, F, K);
        pd_sgd_step(w, buf, dw, 0.05f, 0.9f, 0.0f, (size_t)K * F);
        pd_sgd_step(b, buf + K * F, db, 0.05f, 0.9f, 0.0f, K);
    }
    int correct = 0;
    for (int t = 0; t < 16; t++) {
        pd_data_batch(x, l, &te, 0, t, B, 0, 0);
        pdrt_linear_forward(logits, x, w, b, B, F, K);
        correct += pdrt_count_correct(logits, l, B, K);
    }
    CHECK(last_loss < 0.5f * first_loss);
    CHECK(correct > 512 * 0.8); /* chance is 25% */
    free(w); free(b); free(dw); free(db); free(logits); free(dl); free(buf); free(x); free(x2);
    pd_data_free(&tr);
    pd_data_free(&tr2);
    pd_data_free(&te);
}
