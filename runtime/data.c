/* data.c: Fashion-MNIST IDX loading (gzip through optional zlib), keyed synthetic data, token
 * streams (u8, u16, llm.c files) in windows at keyed offsets, and keyed shuffled batching (see
 * data.h). */
#include "data.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef PD_HAVE_ZLIB
#include <zlib.h>
#endif

#include "runtime/base/rng.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- a byte reader over zlib's gzFile (reads gzip and plain files) or stdio ---- */
typedef struct {
#ifdef PD_HAVE_ZLIB
    gzFile gz;
#else
    FILE *fp;
#endif
} reader;

static int reader_open(reader *r, const char *path) {
#ifdef PD_HAVE_ZLIB
    r->gz = gzopen(path, "rb");
    return r->gz ? 0 : -1;
#else
    r->fp = fopen(path, "rb");
    return r->fp ? 0 : -1;
#endif
}

/* reads up to n bytes; returns the count, or -1 on a read/decompression error */
static int64_t reader_read(reader *r, void *buf, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done > (1u << 30) ? (1u << 30) : n - done;
#ifdef PD_HAVE_ZLIB
        int got = gzread(r->gz, (char *)buf + done, (unsigned)chunk);
        if (got < 0) return -1;
#else
        size_t got = fread((char *)buf + done, 1, chunk, r->fp);
        if (ferror(r->fp)) return -1;
#endif
        if (got == 0) break;
        done += (size_t)got;
    }
    return (int64_t)done;
}

static const char *reader_error(reader *r) {
#ifdef PD_HAVE_ZLIB
    int code = 0;
    const char *msg = gzerror(r->gz, &code);
    return code == Z_ERRNO ? strerror(errno) : msg;
#else
    (void)r;
    return strerror(errno);
#endif
}

static void reader_close(reader *r) {
#ifdef PD_HAVE_ZLIB
    gzclose(r->gz);
#else
    fclose(r->fp);
#endif
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int pd_idx_read(uint8_t **out, int64_t *count, int *rows, int *cols, const char *path,
                int want_images, char *err, size_t errlen) {
    *out = NULL;
    size_t plen = strlen(path);
#ifndef PD_HAVE_ZLIB
    if (plen > 3 && strcmp(path + plen - 3, ".gz") == 0)
        return fail(err, errlen, "%s: built without zlib (PD_HAVE_ZLIB), cannot read gzip; "
                    "gunzip it next to the .gz", path);
#endif
    (void)plen;
    reader r;
    if (reader_open(&r, path) != 0)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    uint8_t head[16];
    int nhead = want_images ? 16 : 8;
    int64_t got = reader_read(&r, head, (size_t)nhead);
    if (got < 0) {
        fail(err, errlen, "%s: read error: %s", path, reader_error(&r));
        reader_close(&r);
        return -1;
    }
    if (got < nhead) {
        reader_close(&r);
        return fail(err, errlen, "%s: truncated IDX header (%lld of %d bytes)", path,
                    (long long)got, nhead);
    }
    uint32_t magic = be32(head), want = want_images ? 0x00000803u : 0x00000801u;
    if (magic != want) {
        reader_close(&r);
        return fail(err, errlen, "%s: bad IDX magic 0x%08x (expected 0x%08x, %s)", path, magic,
                    want, want_images ? "ubyte images, 3 dims" : "ubyte labels, 1 dim");
    }
    uint32_t n = be32(head + 4), h = want_images ? be32(head + 8) : 1,
             w = want_images ? be32(head + 12) : 1;
    if (n == 0 || n > 100000000u || h == 0 || h > 4096 || w == 0 || w > 4096) {
        reader_close(&r);
        return fail(err, errlen, "%s: implausible IDX dimensions %u x %u x %u", path, n, h, w);
    }
    size_t bytes = (size_t)n * h * w;
    uint8_t *data = malloc(bytes);
    if (!data) {
        reader_close(&r);
        return fail(err, errlen, "%s: out of memory for %zu bytes", path, bytes);
    }
    got = reader_read(&r, data, bytes);
    if (got < 0) {
        fail(err, errlen, "%s: read error: %s", path, reader_error(&r));
        goto bad;
    }
    if ((size_t)got < bytes) {
        fail(err, errlen, "%s: truncated: %lld of %zu data bytes for %u items", path,
             (long long)got, bytes, n);
        goto bad;
    }
    uint8_t extra;
    got = reader_read(&r, &extra, 1);
    if (got != 0) {
        fail(err, errlen, "%s: %s after the %u items the header declares", path,
             got < 0 ? "read error" : "trailing bytes", n);
        goto bad;
    }
    reader_close(&r);
    *out = data;
    *count = n;
    *rows = (int)h;
    *cols = (int)w;
    return 0;
bad:
    free(data);
    reader_close(&r);
    return -1;
}

/* dir/name.gz when it exists (and zlib is in), else dir/name */
static void pick_path(char *path, size_t len, const char *dir, const char *name) {
#ifdef PD_HAVE_ZLIB
    snprintf(path, len, "%s/%s.gz", dir, name);
    if (access(path, R_OK) == 0) return;
#endif
    snprintf(path, len, "%s/%s", dir, name);
#ifndef PD_HAVE_ZLIB
    if (access(path, R_OK) != 0) { /* name the .gz so that the error says why */
        char gz[4200];
        snprintf(gz, sizeof gz, "%s/%s.gz", dir, name);
        if (access(gz, R_OK) == 0) snprintf(path, len, "%s", gz);
    }
#endif
}

int pd_fmnist_load(pd_data *d, const char *dir, int train, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    if (!dir) dir = PD_FMNIST_DEFAULT_DIR;
    const char *split = train ? "train" : "t10k";
    char name[64], ipath[4300], lpath[4300];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    pick_path(ipath, sizeof ipath, dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    pick_path(lpath, sizeof lpath, dir, name);
    int64_t ni, nl;
    int h, w, one, one2;
    if (pd_idx_read(&d->pixels, &ni, &h, &w, ipath, 1, err, errlen) != 0) return -1;
    if (pd_idx_read(&d->labels, &nl, &one, &one2, lpath, 0, err, errlen) != 0) {
        pd_data_free(d);
        return -1;
    }
    if (ni != nl) {
        pd_data_free(d);
        return fail(err, errlen, "%s: %lld labels for %lld images in %s", lpath, (long long)nl,
                    (long long)ni, ipath);
    }
    for (int64_t i = 0; i < nl; i++)
        if (d->labels[i] > 9) {
            int bad = d->labels[i];
            pd_data_free(d);
            return fail(err, errlen, "%s: label %d of item %lld is outside 0..9", lpath, bad,
                        (long long)i);
        }
    d->kind = PD_DATA_FMNIST;
    d->n = ni;
    d->C = 1;
    d->H = h;
    d->W = w;
    d->classes = 10;
    return 0;
}

/* ---- token streams ---- */

int pd_token_format_parse(const char *s, pd_token_format *fmt) {
    if (!strcmp(s, "u8")) *fmt = PD_TOKENS_U8;
    else if (!strcmp(s, "u16")) *fmt = PD_TOKENS_U16;
    else if (!strcmp(s, "llmc")) *fmt = PD_TOKENS_LLMC;
    else return -1;
    return 0;
}

static int32_t le32(const uint8_t *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                     (uint32_t)p[3] << 24);
}

int pd_tokens_read(uint16_t **out, int64_t *n, const char *path, pd_token_format fmt, char *err,
                   size_t errlen) {
    *out = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return fail(err, errlen, "%s: cannot seek: %s", path, strerror(errno));
    }
    long size = ftell(f);
    rewind(f);
    uint8_t *raw = size > 0 ? malloc((size_t)size) : NULL;
    if (size > 0 && !raw) {
        fclose(f);
        return fail(err, errlen, "%s: out of memory for %ld bytes", path, size);
    }
    size_t got = size > 0 ? fread(raw, 1, (size_t)size, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (size < 0 || bad || got != (size_t)size) {
        free(raw);
        return fail(err, errlen, "%s: read error", path);
    }
    int64_t header = fmt == PD_TOKENS_LLMC ? 4 * PD_LLMC_HEADER_INTS : 0, count;
    int width = fmt == PD_TOKENS_U8 ? 1 : 2;
    if (fmt == PD_TOKENS_LLMC) {
        if (size < header) {
            free(raw);
            return fail(err, errlen, "%s: truncated llm.c header (%ld of %lld bytes)", path,
                        size, (long long)header);
        }
        int32_t magic = le32(raw), version = le32(raw + 4), declared = le32(raw + 8);
        if (magic != PD_LLMC_MAGIC || version != 1 || declared < 0) {
            free(raw);
            if (magic != PD_LLMC_MAGIC)
                return fail(err, errlen, "%s: bad magic %d (llm.c token files start with %d)",
                            path, (int)magic, PD_LLMC_MAGIC);
            if (version != 1)
                return fail(err, errlen, "%s: llm.c version %d (only version 1, uint16 tokens, "
                            "is read)", path, (int)version);
            return fail(err, errlen, "%s: negative token count %d", path, (int)declared);
        }
        count = declared;
        if (header + 2 * count != size) {
            free(raw);
            return fail(err, errlen, "%s: %s: the header declares %lld tokens (%lld bytes), the "
                        "file holds %ld bytes after it", path,
                        header + 2 * count > size ? "truncated" : "trailing bytes",
                        (long long)count, (long long)(2 * count), size - (long)header);
        }
    } else {
        if (size % width) {
            free(raw);
            return fail(err, errlen, "%s: %ld bytes is not a whole number of uint16 tokens",
                        path, size);
        }
        count = size / width;
    }
    if (count == 0) {
        free(raw);
        return fail(err, errlen, "%s: holds no tokens", path);
    }
    uint16_t *t = malloc((size_t)count * sizeof *t);
    if (!t) {
        free(raw);
        return fail(err, errlen, "%s: out of memory for %lld tokens", path, (long long)count);
    }
    const uint8_t *p = raw + header;
    for (int64_t i = 0; i < count; i++)
        t[i] = width == 1 ? p[i] : (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    free(raw);
    *out = t;
    *n = count;
    return 0;
}

int pd_tokens_load(pd_data *d, const char *path, pd_token_format fmt, int T, int vocab, int split,
                   char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    if (T < 1) return fail(err, errlen, "%s: context %d tokens: needs 1 or more", path, T);
    if (pd_tokens_read(&d->tokens, &d->n_tokens, path, fmt, err, errlen)) return -1;
    for (int64_t i = 0; i < d->n_tokens; i++)
        if (d->tokens[i] >= vocab) {
            int id = d->tokens[i];
            pd_data_free(d);
            return fail(err, errlen, "%s: token %lld is id %d, outside the model's vocabulary "
                        "of %d (classes)", path, (long long)i, id, vocab);
        }
    if (d->n_tokens < (int64_t)T + 1) {
        int64_t have = d->n_tokens;
        pd_data_free(d);
        return fail(err, errlen, "%s: %lld tokens, fewer than one window of %d + 1", path,
                    (long long)have, T);
    }
    d->kind = PD_DATA_TOKENS;
    d->n = (d->n_tokens - 1) / T;
    d->C = T;
    d->H = d->W = 1;
    d->classes = vocab;
    d->split = split;
    return 0;
}

int64_t pd_tokens_offset(const pd_data *d, int64_t epoch, int64_t j, int shuffle, uint64_t seed) {
    if (!shuffle) return j * d->C;
    uint64_t key = pd_rng_key(seed, PD_RNG_WINDOW, (uint64_t)epoch, (uint64_t)d->split, 0);
    return (int64_t)pd_rng_below(key, (uint64_t)j, (uint64_t)(d->n_tokens - d->C));
}

int pd_data_targets(const pd_data *d) {
    return d->kind == PD_DATA_TOKENS || d->kind == PD_DATA_REVERSE ? d->C : 1;
}

void pd_reverse_init(pd_data *d, int64_t n, int T, int vocab, uint64_t seed, int train) {
    memset(d, 0, sizeof *d);
    d->kind = PD_DATA_REVERSE;
    d->n = n;
    d->C = T;
    d->H = d->W = 1;
    d->classes = vocab;
    d->synth_seed = seed;
    d->synth_base = train ? 0 : (int64_t)1 << 40;
}

void pd_synthetic_init(pd_data *d, int64_t n, int C, int H, int W, int classes, uint64_t seed,
                       int train) {
    memset(d, 0, sizeof *d);
    d->kind = PD_DATA_SYNTHETIC;
    d->n = n;
    d->C = C;
    d->H = H;
    d->W = W;
    d->classes = classes;
    d->synth_seed = seed;
    d->synth_base = train ? 0 : (int64_t)1 << 40;
    size_t F = (size_t)C * H * W;
    d->synth_proj = malloc((size_t)classes * F * sizeof(float));
    if (!d->synth_proj) {
        fprintf(stderr, "pd_synthetic_init: out of memory (%s:%d)\n", __FILE__, __LINE__);
        abort();
    }
    for (int k = 0; k < classes; k++) {
        uint64_t key = pd_rng_key(seed, PD_RNG_SYNTH_PROJ, (uint64_t)k, 0, 0);
        for (size_t i = 0; i < F; i++) d->synth_proj[(size_t)k * F + i] = pd_rng_normal(key, i);
    }
}

void pd_data_free(pd_data *d) {
    free(d->pixels);
    free(d->labels);
    free(d->order);
    free(d->synth_proj);
    free(d->tokens);
    memset(d, 0, sizeof *d);
}

int64_t pd_data_sample_floats(const pd_data *d) { return (int64_t)d->C * d->H * d->W; }

int64_t pd_data_batches(const pd_data *d, int batch, int drop_last) {
    return drop_last ? d->n / batch : (d->n + batch - 1) / batch;
}

void pd_shuffle_order(int32_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    uint64_t key = pd_rng_key(seed, PD_RNG_SHUFFLE, (uint64_t)epoch, 0, 0);
    for (int64_t i = 0; i < n; i++) order[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)pd_rng_below(key, (uint64_t)i, (uint64_t)i + 1);
        int32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

int64_t pd_data_index(pd_data *d, int64_t epoch, int64_t j, int shuffle, uint64_t seed) {
    if (!shuffle) return j;
    if (!d->order || !d->order_shuffled || d->order_epoch != epoch || d->order_seed != seed) {
        if (!d->order) {
            d->order = malloc((size_t)d->n * sizeof(int32_t));
            if (!d->order) {
                fprintf(stderr, "pd_data_index: out of memory (%s:%d)\n", __FILE__, __LINE__);
                abort();
            }
        }
        pd_shuffle_order(d->order, d->n, seed, epoch);
        d->order_epoch = epoch;
        d->order_seed = seed;
        d->order_shuffled = 1;
    }
    return d->order[j];
}

static void synthetic_sample(float *x, int *label, const pd_data *d, int64_t index) {
    size_t F = (size_t)pd_data_sample_floats(d);
    uint64_t key = pd_rng_key(d->synth_seed, PD_RNG_SYNTH, (uint64_t)(d->synth_base + index), 0,
                              0);
    float local[4096];
    float *v = x ? x : (F <= 4096 ? local : NULL);
    if (!v) { /* labels only, large sample: draw element by element */
        double best = 0;
        int best_k = 0;
        for (int k = 0; k < d->classes; k++) {
            double s = 0;
            for (size_t i = 0; i < F; i++)
                s += (double)d->synth_proj[(size_t)k * F + i] * pd_rng_normal(key, i);
            if (k == 0 || s > best) best = s, best_k = k;
        }
        *label = best_k;
        return;
    }
    for (size_t i = 0; i < F; i++) v[i] = pd_rng_normal(key, i);
    if (!label) return;
    double best = 0;
    int best_k = 0;
    for (int k = 0; k < d->classes; k++) {
        double s = 0;
        const float *p = d->synth_proj + (size_t)k * F;
        for (size_t i = 0; i < F; i++) s += (double)p[i] * v[i];
        if (k == 0 || s > best) best = s, best_k = k;
    }
    *label = best_k;
}

int pd_data_batch(float *x, int *labels, pd_data *d, int64_t epoch, int64_t batch_index,
                  int batch, int shuffle, uint64_t seed) {
    int64_t first = batch_index * batch;
    if (first >= d->n || first < 0) return 0;
    int count = d->n - first < batch ? (int)(d->n - first) : batch;
    size_t F = (size_t)pd_data_sample_floats(d);
    const float inv255 = 1.0f / 255.0f, inv_std = 1.0f / PD_FMNIST_STD;
    if (d->kind == PD_DATA_TOKENS) { /* windows of T + 1: ids in, the next T as targets */
        int T = d->C;
        for (int j = 0; j < count; j++) {
            const uint16_t *w = d->tokens + pd_tokens_offset(d, epoch, first + j, shuffle, seed);
            for (int t = 0; t < T; t++) {
                if (x) x[(size_t)j * T + t] = (float)w[t];
                if (labels) labels[(size_t)j * T + t] = w[t + 1];
            }
        }
        return count;
    }
    for (int j = 0; j < count; j++) {
        int64_t idx = pd_data_index(d, epoch, first + j, shuffle, seed);
        float *xs = x ? x + (size_t)j * F : NULL;
        if (d->kind == PD_DATA_SYNTHETIC) {
            synthetic_sample(xs, labels ? &labels[j] : NULL, d, idx);
            continue;
        }
        if (d->kind == PD_DATA_REVERSE) { /* T ids, and the same ids reversed as targets */
            int T = d->C;
            uint64_t key = pd_rng_key(d->synth_seed, PD_RNG_SYNTH, (uint64_t)(d->synth_base + idx),
                                      1, 0);
            for (int t = 0; t < T; t++) {
                int id = (int)pd_rng_below(key, (uint64_t)t, (uint64_t)d->classes);
                if (xs) xs[t] = (float)id;
                if (labels) labels[(size_t)j * T + T - 1 - t] = id;
            }
            continue;
        }
        if (xs) {
            const uint8_t *px = d->pixels + (size_t)idx * F;
            for (size_t i = 0; i < F; i++) xs[i] = (px[i] * inv255 - PD_FMNIST_MEAN) * inv_std;
        }
        if (labels) labels[j] = d->labels[idx];
    }
    return count;
}
