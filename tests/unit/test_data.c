/* test_data.c: keyed randomness (rng.h), the keyed shuffle, Fashion-MNIST loading (the real files
 * when present; small good and bad IDX fixtures written to a temp dir), and synthetic data that a
 * linear model trained with the runtime's own ops and SGD actually learns; token streams: the u8,
 * u16 and llm.c files and their errors, windows at keyed offsets, the dataset spellings, and the
 * Shakespeare corpus as a run opens it (skipped without it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef PD_HAVE_ZLIB
#include <zlib.h>
#endif

#include "runtime/data.h"
#include "runtime/rt.h"
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

/* ---- token streams ---- */

static char tok_dir[64];

static void tok_write(const char *name, const void *bytes, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tok_dir, name);
    FILE *f = fopen(path, "wb");
    if (n) fwrite(bytes, 1, n, f);
    fclose(f);
}
static const char *tok_path(const char *name) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tok_dir, name);
    return path;
}
/* an llm.c header: magic, version, count */
static void llmc_header(uint8_t *h, int32_t magic, int32_t version, int32_t count) {
    memset(h, 0, 1024);
    int32_t v[3] = {magic, version, count};
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 4; b++) h[4 * i + b] = (uint8_t)((uint32_t)v[i] >> (8 * b));
}
/* reads name in fmt and expects an error whose text holds the file and `why` */
static void tok_expect_error(const char *name, pd_token_format fmt, const char *why, int line) {
    uint16_t *t = NULL;
    int64_t n = 0;
    char err[512] = "";
    int rc = pd_tokens_read(&t, &n, tok_path(name), fmt, err, sizeof err);
    if (rc == 0 || !strstr(err, why) || !strstr(err, name))
        test_fail(__FILE__, line, "%s: rc %d, error '%s' (wanted '%s')", name, rc, err, why);
    free(t);
}

TEST(token_files_u8_u16_llmc_and_their_errors) {
    snprintf(tok_dir, sizeof tok_dir, "/tmp/pd_test_tokens_XXXXXX");
    if (!mkdtemp(tok_dir)) SKIP("cannot make a temp dir");
    /* the same 5 ids in each format: u16 and llm.c little-endian */
    const uint16_t ids[5] = {7, 0, 300, 65535, 42};
    uint8_t u8[5] = {7, 0, 44, 255, 42}, u16[10], llmc[1024 + 10];
    for (int i = 0; i < 5; i++) { u16[2 * i] = ids[i] & 255; u16[2 * i + 1] = ids[i] >> 8; }
    llmc_header(llmc, PD_LLMC_MAGIC, 1, 5);
    memcpy(llmc + 1024, u16, 10);
    tok_write("a.u8", u8, 5);
    tok_write("a.u16", u16, 10);
    tok_write("a.llmc", llmc, sizeof llmc);
    const char *names[3] = {"a.u8", "a.u16", "a.llmc"};
    for (int f = 0; f < 3; f++) {
        uint16_t *t = NULL;
        int64_t n = 0;
        char err[512] = "";
        CHECK(pd_tokens_read(&t, &n, tok_path(names[f]), (pd_token_format)f, err, sizeof err) == 0);
        CHECK_EQ_INT(n, 5);
        for (int i = 0; t && i < 5; i++) CHECK_EQ_INT(t[i], f == 0 ? u8[i] : ids[i]);
        free(t);
    }
    pd_token_format fmt;
    CHECK(pd_token_format_parse("llmc", &fmt) == 0 && fmt == PD_TOKENS_LLMC);
    CHECK(pd_token_format_parse("u32", &fmt) == -1);
    /* errors name the file and the reason */
    tok_expect_error("missing.bin", PD_TOKENS_U16, "cannot open", __LINE__);
    tok_write("odd.u16", u16, 9);
    tok_expect_error("odd.u16", PD_TOKENS_U16, "not a whole number", __LINE__);
    tok_write("empty.u8", u8, 0);
    tok_expect_error("empty.u8", PD_TOKENS_U8, "holds no tokens", __LINE__);
    tok_write("short_header.llmc", llmc, 100);
    tok_expect_error("short_header.llmc", PD_TOKENS_LLMC, "truncated llm.c header", __LINE__);
    llmc_header(llmc, 20240521, 1, 5);
    tok_write("magic.llmc", llmc, sizeof llmc);
    tok_expect_error("magic.llmc", PD_TOKENS_LLMC, "bad magic 20240521", __LINE__);
    llmc_header(llmc, PD_LLMC_MAGIC, 2, 5);
    tok_write("version.llmc", llmc, sizeof llmc);
    tok_expect_error("version.llmc", PD_TOKENS_LLMC, "version 2", __LINE__);
    llmc_header(llmc, PD_LLMC_MAGIC, 1, 6);
    tok_write("short.llmc", llmc, sizeof llmc);
    tok_expect_error("short.llmc", PD_TOKENS_LLMC, "truncated: the header declares 6 tokens",
                     __LINE__);
    llmc_header(llmc, PD_LLMC_MAGIC, 1, 4);
    tok_write("long.llmc", llmc, sizeof llmc);
    tok_expect_error("long.llmc", PD_TOKENS_LLMC, "trailing bytes", __LINE__);
    tok_write("a.u8.as.llmc", u8, 5); /* a u8 file read as llm.c: too short for the header */
    tok_expect_error("a.u8.as.llmc", PD_TOKENS_LLMC, "truncated llm.c header", __LINE__);
    /* loading checks the vocabulary and that one window fits */
    pd_data d;
    char err[512] = "";
    CHECK(pd_tokens_load(&d, tok_path("a.u16"), PD_TOKENS_U16, 2, 1000, 0, err, sizeof err) == -1);
    CHECK(strstr(err, "token 3 is id 65535, outside the model's vocabulary of 1000"));
    CHECK(pd_tokens_load(&d, tok_path("a.u8"), PD_TOKENS_U8, 5, 256, 0, err, sizeof err) == -1);
    CHECK(strstr(err, "fewer than one window of 5 + 1"));
    CHECK(pd_tokens_load(&d, tok_path("a.u8"), PD_TOKENS_U8, 4, 256, 0, err, sizeof err) == 0);
    CHECK(d.n == 1 && d.C == 4 && pd_data_targets(&d) == 4 && d.classes == 256);
    pd_data_free(&d);
    const char *all[] = {"a.u8", "a.u16", "a.llmc", "odd.u16", "empty.u8", "short_header.llmc",
                         "magic.llmc", "version.llmc", "short.llmc", "long.llmc", "a.u8.as.llmc"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) unlink(tok_path(all[i]));
    rmdir(tok_dir);
}

/* a stream 0, 1, 2, ... (mod 251) in a u16 file of N tokens, loaded with context T */
static int stream_load(pd_data *d, int64_t N, int T, int split) {
    uint16_t *t = malloc((size_t)N * 2);
    for (int64_t i = 0; i < N; i++) t[i] = (uint16_t)(i % 251);
    tok_write("stream.u16", t, (size_t)N * 2); /* little-endian host */
    free(t);
    char err[512] = "";
    int rc = pd_tokens_load(d, tok_path("stream.u16"), PD_TOKENS_U16, T, 251, split, err,
                            sizeof err);
    unlink(tok_path("stream.u16"));
    return rc;
}

TEST(token_windows_are_keyed_and_hold_inputs_and_next_tokens) {
    snprintf(tok_dir, sizeof tok_dir, "/tmp/pd_test_tokens_XXXXXX");
    if (!mkdtemp(tok_dir)) SKIP("cannot make a temp dir");
    enum { N = 1001, T = 8, B = 4 };
    pd_data d, v;
    CHECK(stream_load(&d, N, T, 0) == 0 && stream_load(&v, N, T, 1) == 0);
    rmdir(tok_dir);
    if (test_failed_now()) return;
    CHECK_EQ_INT(d.n, (N - 1) / T); /* 125 disjoint windows: an epoch */
    CHECK_EQ_INT(pd_data_batches(&d, B, 1), 31);
    float x[B * T];
    int y[B * T];
    /* without shuffling: window j starts at j*T; with: keyed offsets in [0, N - T) */
    for (int shuffle = 0; shuffle < 2; shuffle++)
        for (int64_t t = 0; t < 31; t++) {
            CHECK_EQ_INT(pd_data_batch(x, y, &d, 2, t, B, shuffle, 9), B);
            for (int j = 0; j < B; j++) {
                int64_t o = pd_tokens_offset(&d, 2, t * B + j, shuffle, 9);
                CHECK(o >= 0 && o + T < N);
                if (!shuffle) CHECK_EQ_INT(o, (t * B + j) * T);
                for (int k = 0; k < T; k++) {
                    CHECK(x[j * T + k] == (float)((o + k) % 251));
                    CHECK_EQ_INT(y[j * T + k], (o + k + 1) % 251);
                }
            }
        }
    /* deterministic; another epoch, seed or split draws other offsets */
    int64_t same = 0, other_epoch = 0, other_seed = 0, other_split = 0, lo = N, hi = 0;
    for (int64_t j = 0; j < d.n; j++) {
        int64_t o = pd_tokens_offset(&d, 2, j, 1, 9);
        same += o == pd_tokens_offset(&d, 2, j, 1, 9);
        other_epoch += o != pd_tokens_offset(&d, 3, j, 1, 9);
        other_seed += o != pd_tokens_offset(&d, 2, j, 1, 10);
        other_split += o != pd_tokens_offset(&v, 2, j, 1, 9);
        if (o < lo) lo = o;
        if (o > hi) hi = o;
    }
    CHECK(same == d.n && other_epoch > d.n / 2 && other_seed > d.n / 2 && other_split > d.n / 2);
    CHECK(lo < 50 && hi > N - T - 50); /* spread over the stream */
    /* evaluation: disjoint windows, the last batch partial */
    CHECK_EQ_INT(pd_data_batches(&v, 16, 0), 8);
    CHECK_EQ_INT(pd_data_batch(NULL, NULL, &v, 0, 7, 16, 0, 9), 125 - 7 * 16);
    pd_data_free(&d);
    pd_data_free(&v);
}

/* The runtime's spelling of token datasets (the model's dataset: and --data) */
TEST(token_dataset_specs) {
    char tr[256], va[256];
    pd_token_format f = PD_TOKENS_U8;
    CHECK(pdrt_token_spec(tr, va, sizeof tr, &f, "tokens:llmc:a/train.bin:b/val.bin", NULL) == 1);
    CHECK(!strcmp(tr, "a/train.bin") && !strcmp(va, "b/val.bin") && f == PD_TOKENS_LLMC);
    CHECK(pdrt_token_spec(tr, va, sizeof tr, &f, "tokens:u16:x:y", "/d") == 1);
    CHECK(!strcmp(tr, "/d/train.bin") && !strcmp(va, "/d/val.bin") && f == PD_TOKENS_U16);
    CHECK(pdrt_token_spec(tr, va, sizeof tr, &f, "tokens:u32:x:y", NULL) == -1);
    CHECK(pdrt_token_spec(tr, va, sizeof tr, &f, "tokens:u8:x", NULL) == -1);
    CHECK(pdrt_token_spec(tr, va, sizeof tr, &f, "fashion-mnist", "/d") == 0);
    setenv("PD_DATA_DIR", "/corpora", 1);
    CHECK(pdrt_token_spec(tr, va, sizeof tr, &f, "shakespeare_char", NULL) == 1);
    CHECK(!strcmp(tr, "/corpora/shakespeare_char/train.bin") && f == PD_TOKENS_U8);
    unsetenv("PD_DATA_DIR");
}

/* The corpus make deps builds (data/shakespeare_char), opened as a run opens it: through the
 * model's dataset name and pdrt_data_open; every id decodes through vocab.txt to train.txt,
 * and a batch holds train.bin's bytes. Skips without the corpus. */
TEST(shakespeare_corpus_through_the_runtime) {
    pdrt_stage st = {.dataset = "shakespeare_char", .batch = 32, .classes = 88, .in_c = 128,
                     .in_h = 1, .in_w = 1};
    pdrt_args a;
    memset(&a, 0, sizeof a);
    char tr[4096], va[4096];
    pd_token_format f;
    pdrt_token_spec(tr, va, sizeof tr, &f, st.dataset, NULL);
    if (access(tr, R_OK) || access(va, R_OK)) SKIP("no data/shakespeare_char (make deps builds it)");
    pd_data train, val;
    pdrt_data_open(&train, &val, &a, &st);
    CHECK_EQ_INT(train.n_tokens, 8588862);
    CHECK_EQ_INT(val.n_tokens, 954319);
    CHECK_EQ_INT(train.n, (8588862 - 1) / 128);
    /* vocab.txt: 88 characters, UTF-8 ('\xc3\xa6', æ, last); train.txt is the decoded stream */
    char vpath[4200], tpath[4200];
    snprintf(vpath, sizeof vpath, "%.*s/vocab.txt", (int)(strlen(tr) - 10), tr);
    snprintf(tpath, sizeof tpath, "%.*s/train.txt", (int)(strlen(tr) - 10), tr);
    FILE *fv = fopen(vpath, "rb"), *ft = fopen(tpath, "rb");
    if (fv && ft) {
        char vocab[128];
        size_t nv = fread(vocab, 1, sizeof vocab, fv);
        CHECK_EQ_INT(nv, 89); /* 87 ASCII + a 2-byte æ */
        int ok = 1;
        for (int64_t i = 0; i < train.n_tokens && ok; i++) {
            int id = train.tokens[i], c = fgetc(ft);
            if (id < 87) ok = c == vocab[id];
            else ok = id == 87 && c == 0xc3 && fgetc(ft) == 0xa6;
            if (!ok) test_fail(__FILE__, __LINE__, "token %lld (id %d) is not train.txt's", (long long)i, id);
        }
        CHECK(fgetc(ft) == EOF);
    } else {
        CHECK(!"vocab.txt and train.txt next to train.bin");
    }
    if (fv) fclose(fv);
    if (ft) fclose(ft);
    float *x = malloc(32 * 128 * sizeof(float));
    int *y = malloc(32 * 128 * sizeof(int));
    CHECK_EQ_INT(pd_data_batch(x, y, &train, 0, 5, 32, 1, 1), 32);
    for (int j = 0; j < 32; j++) {
        int64_t o = pd_tokens_offset(&train, 0, 5 * 32 + j, 1, 1);
        for (int t = 0; t < 128; t++) {
            CHECK(x[j * 128 + t] == (float)train.tokens[o + t]);
            CHECK(y[j * 128 + t] == train.tokens[o + t + 1]);
        }
    }
    free(x);
    free(y);
    pd_data_free(&train);
    pd_data_free(&val);
}
