/* checkpoint.c: one rank's checkpoint file, written atomically and validated on reading.
 * Layout (native little-endian): the magic "PDCKPT01", the plan hash (24 bytes, NUL padded),
 * RT_CKPT_WORDS 64-bit words (pdrt_ckpt_meta: stage layout fingerprint, seed, position, loss
 * bookkeeping), the float counts of the three blobs, the blobs (newest weights, optimizer state,
 * batch-norm buffers), then the FNV-1a 64 hash of every byte before it. Written to a temporary
 * file in the same folder, fsync'd, renamed into place, and the folder fsync'd: a file under its
 * final name is always complete. Sets live in DIR/step-<N>/rank-<R>.ckpt. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt.h"

#define CKPT_MAGIC "PDCKPT01"
#define RT_CKPT_WORDS 16
#define CKPT_HEAD (8 + 24 + 8 * RT_CKPT_WORDS + 8 * 3)


uint64_t pdrt_stage_fingerprint(const pdrt_stage *st, const char *schedule, int microbatches) {
    uint64_t h = PD_FNV1A_BASIS;
    int64_t v[8] = {st->index, st->n_stages, st->batch, st->n_params, st->n_buffers,
                    st->in_floats, st->out_floats, microbatches};
    h = pd_fnv1a(v, sizeof v, h);
    h = pd_fnv1a(schedule, strlen(schedule) + 1, h);
    h = pd_fnv1a(st->model, strlen(st->model) + 1, h);
    for (int k = 0; k < st->n_stages; k++) {
        int w[2] = {st->warmup ? st->warmup[k] : 0, pdrt_replicas(st, k)};
        h = pd_fnv1a(w, sizeof w, h);
    }
    for (int i = 0; i < st->n_tensors; i++) {
        const pdrt_tensor *t = &st->tensors[i];
        h = pd_fnv1a(t->layer, strlen(t->layer) + 1, h);
        h = pd_fnv1a(t->param, strlen(t->param) + 1, h);
        int64_t o[3] = {t->offset, t->numel, t->is_buffer};
        h = pd_fnv1a(o, sizeof o, h);
    }
    return h;
}

void pdrt_ckpt_path(char *out, size_t cap, const char *dir, int64_t step, int rank) {
    snprintf(out, cap, "%s/step-%010lld/rank-%d.ckpt", dir, (long long)step, rank);
}

static void put64(unsigned char **p, uint64_t v) { memcpy(*p, &v, 8); *p += 8; }
static uint64_t get64(const unsigned char **p) { uint64_t v; memcpy(&v, *p, 8); *p += 8; return v; }
static uint64_t dbits(double d) { uint64_t v; memcpy(&v, &d, 8); return v; }
static double bitsd(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }

static void meta_words(uint64_t w[RT_CKPT_WORDS], const pdrt_ckpt_meta *m) {
    memset(w, 0, 8 * RT_CKPT_WORDS);
    uint64_t v[] = {m->fingerprint, m->seed, (uint64_t)m->stage, (uint64_t)m->replica,
                    (uint64_t)m->rank, (uint64_t)m->n_ranks, (uint64_t)m->done, (uint64_t)m->epoch,
                    (uint64_t)m->updates, (uint64_t)m->every, dbits(m->loss_sum),
                    (uint64_t)m->loss_n, dbits(m->last_loss), (uint64_t)m->skipped,
                    dbits(m->lr),
                    /* bit 63: recorded; bit 62: shuffle; below: minibatches per epoch */
                    ((uint64_t)1 << 63) | ((uint64_t)(m->shuffle != 0) << 62) |
                        ((uint64_t)m->per_epoch & (((uint64_t)1 << 62) - 1))};
    memcpy(w, v, sizeof v);
}

static void words_meta(pdrt_ckpt_meta *m, const uint64_t w[RT_CKPT_WORDS]) {
    m->fingerprint = w[0]; m->seed = w[1];
    m->stage = (int)w[2]; m->replica = (int)w[3]; m->rank = (int)w[4]; m->n_ranks = (int)w[5];
    m->done = (int64_t)w[6]; m->epoch = (int64_t)w[7]; m->updates = (int64_t)w[8];
    m->every = (int64_t)w[9]; m->loss_sum = bitsd(w[10]); m->loss_n = (int64_t)w[11];
    m->last_loss = bitsd(w[12]); m->skipped = (int64_t)w[13];
    if (w[15] >> 63) {
        m->lr = bitsd(w[14]);
        m->shuffle = (int)((w[15] >> 62) & 1);
        m->per_epoch = (int64_t)(w[15] & (((uint64_t)1 << 62) - 1));
    } else {
        m->lr = 0; m->shuffle = 0; m->per_epoch = 0; /* not recorded */
    }
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) PDRT_FAIL("cannot open %s: %s", dir, strerror(errno));
    if (fsync(fd)) PDRT_FAIL("cannot fsync %s: %s", dir, strerror(errno));
    close(fd);
}

void pdrt_ckpt_write(const char *dir, const pdrt_ckpt_meta *m, const char *plan_hash,
                   const float *params, int64_t n_params, const float *opt, int64_t n_opt,
                   const float *buffers, int64_t n_buffers) {
    char path[4200], tmp[4300], sdir[4200];
    pdrt_ckpt_path(path, sizeof path, dir, m->done, m->rank);
    snprintf(sdir, sizeof sdir, "%s/step-%010lld", dir, (long long)m->done);
    if (pdrt_mkdir_p(sdir)) PDRT_FAIL("cannot create %s: %s", sdir, strerror(errno));
    size_t payload = 4 * (size_t)(n_params + n_opt + n_buffers);
    size_t total = CKPT_HEAD + payload + 8;
    unsigned char *buf = malloc(total), *p = buf;
    PDRT_CHECK(buf != NULL);
    memcpy(p, CKPT_MAGIC, 8); p += 8;
    memset(p, 0, 24);
    if (plan_hash) memcpy(p, plan_hash, strlen(plan_hash) < 23 ? strlen(plan_hash) : 23);
    p += 24;
    uint64_t w[RT_CKPT_WORDS];
    meta_words(w, m);
    for (int i = 0; i < RT_CKPT_WORDS; i++) put64(&p, w[i]);
    put64(&p, (uint64_t)n_params); put64(&p, (uint64_t)n_opt); put64(&p, (uint64_t)n_buffers);
    if (n_params) memcpy(p, params, 4 * (size_t)n_params);
    p += 4 * (size_t)n_params;
    if (n_opt) memcpy(p, opt, 4 * (size_t)n_opt);
    p += 4 * (size_t)n_opt;
    if (n_buffers) memcpy(p, buffers, 4 * (size_t)n_buffers);
    p += 4 * (size_t)n_buffers;
    put64(&p, pd_fnv1a(buf, (size_t)(p - buf), PD_FNV1A_BASIS));
    PDRT_CHECK((size_t)(p - buf) == total);
    snprintf(tmp, sizeof tmp, "%s/.rank-%d.ckpt.%d.tmp", sdir, m->rank, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) PDRT_FAIL("cannot write %s: %s", tmp, strerror(errno));
    if (write_all(fd, buf, total) || fsync(fd)) {
        int err = errno;
        close(fd);
        unlink(tmp); /* no debris: the set stays incomplete, and older sets are kept */
        PDRT_FAIL("cannot write %s: %s", tmp, strerror(err ? err : EIO));
    }
    if (close(fd)) {
        int err = errno;
        unlink(tmp);
        PDRT_FAIL("cannot write %s: %s", tmp, strerror(err));
    }
    free(buf);
    if (rename(tmp, path)) {
        int err = errno;
        unlink(tmp);
        PDRT_FAIL("cannot rename %s: %s", tmp, strerror(err));
    }
    fsync_dir(sdir);
}

/* Reads and validates; returns NULL and fills why on any problem. */
static unsigned char *slurp(const char *path, size_t *n, char *why, size_t wcap) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(why, wcap, "cannot open: %s", strerror(errno)); return NULL; }
    if (fseek(f, 0, SEEK_END)) { fclose(f); snprintf(why, wcap, "cannot seek"); return NULL; }
    long len = ftell(f);
    rewind(f);
    if (len < 0) { fclose(f); snprintf(why, wcap, "cannot size"); return NULL; }
    unsigned char *b = malloc((size_t)len + 1);
    PDRT_CHECK(b != NULL);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) {
        fclose(f); free(b); snprintf(why, wcap, "read error"); return NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return b;
}

int pdrt_ckpt_read(pdrt_ckpt_meta *m, float *params, int64_t n_params, float *opt, int64_t n_opt,
                 float *buffers, int64_t n_buffers, const char *path, const char *plan_hash,
                 char *why, size_t wcap) {
    size_t len = 0;
    unsigned char *b = slurp(path, &len, why, wcap);
    if (!b) return -1;
    int rc = -1;
    const unsigned char *p = b;
    if (len < 8 || memcmp(b, CKPT_MAGIC, 8)) {
        snprintf(why, wcap, "not a PipeDream-C checkpoint (bad magic)");
        goto out;
    }
    if (len < CKPT_HEAD + 8) {
        snprintf(why, wcap, "truncated: %zu bytes, shorter than the %d-byte header", len, CKPT_HEAD + 8);
        goto out;
    }
    p = b + 8 + 24 + 8 * RT_CKPT_WORDS;
    uint64_t np = get64(&p), no = get64(&p), nb = get64(&p);
    if (np > ((uint64_t)1 << 40) || no > ((uint64_t)1 << 40) || nb > ((uint64_t)1 << 40)) {
        snprintf(why, wcap, "corrupted header (blob sizes %llu, %llu, %llu)",
                 (unsigned long long)np, (unsigned long long)no, (unsigned long long)nb);
        goto out;
    }
    size_t want = CKPT_HEAD + 4 * (size_t)(np + no + nb) + 8;
    if (len < want) {
        snprintf(why, wcap, "truncated: %zu bytes, expected %zu", len, want);
        goto out;
    }
    if (len > want) {
        snprintf(why, wcap, "%zu bytes, expected %zu (trailing garbage)", len, want);
        goto out;
    }
    const unsigned char *tail = b + want - 8;
    uint64_t stored = get64(&tail);
    uint64_t h = pd_fnv1a(b, want - 8, PD_FNV1A_BASIS);
    if (h != stored) {
        snprintf(why, wcap, "checksum mismatch (stored %016llx, computed %016llx): the file is corrupted",
                 (unsigned long long)stored, (unsigned long long)h);
        goto out;
    }
    char ph[25];
    memcpy(ph, b + 8, 24);
    ph[24] = 0;
    if (strcmp(ph, plan_hash ? plan_hash : "")) {
        snprintf(why, wcap, "written for another plan (plan hash %s; this plan's is %s)",
                 ph[0] ? ph : "none", plan_hash && plan_hash[0] ? plan_hash : "none");
        goto out;
    }
    p = b + 8 + 24;
    uint64_t w[RT_CKPT_WORDS];
    for (int i = 0; i < RT_CKPT_WORDS; i++) w[i] = get64(&p);
    words_meta(m, w);
    if ((int64_t)np != n_params || (int64_t)no != n_opt || (int64_t)nb != n_buffers) {
        snprintf(why, wcap, "holds %llu weights, %llu optimizer and %llu buffer floats; this stage "
                 "needs %lld, %lld, %lld", (unsigned long long)np, (unsigned long long)no,
                 (unsigned long long)nb, (long long)n_params, (long long)n_opt, (long long)n_buffers);
        goto out;
    }
    p += 24;
    memcpy(params, p, 4 * (size_t)np); p += 4 * np;
    memcpy(opt, p, 4 * (size_t)no); p += 4 * no;
    memcpy(buffers, p, 4 * (size_t)nb);
    rc = 0;
out:
    free(b);
    return rc;
}

int pdrt_ckpt_fits(const pdrt_ckpt_meta *m, const pdrt_ckpt_meta *want, int64_t total, char *why,
                   size_t wcap) {
    int64_t pe = want->per_epoch;
    if (m->fingerprint != want->fingerprint)
        snprintf(why, wcap, "written for another stage layout or schedule (fingerprint %016llx; "
                 "this run's is %016llx)", (unsigned long long)m->fingerprint,
                 (unsigned long long)want->fingerprint);
    else if (m->stage != want->stage || m->rank != want->rank || m->n_ranks != want->n_ranks ||
             m->done != want->done)
        snprintf(why, wcap, "written by rank %d of %d (stage %d) at step %lld", m->rank, m->n_ranks,
                 m->stage, (long long)m->done);
    else if (m->seed != want->seed)
        snprintf(why, wcap, "written with --seed %llu, this run has %llu",
                 (unsigned long long)m->seed, (unsigned long long)want->seed);
    else if (m->done > total)
        snprintf(why, wcap, "at step %lld, past this run's %lld steps", (long long)m->done,
                 (long long)total);
    else if ((m->per_epoch && m->per_epoch != pe) || m->epoch * pe > m->done ||
             m->done - m->epoch * pe > pe)
        snprintf(why, wcap, "written for %lld minibatches per epoch (step %lld, epoch %lld); this "
                 "run's data has %lld: --data or --synthetic-n changed",
                 (long long)(m->per_epoch ? m->per_epoch : m->done / (m->epoch > 0 ? m->epoch : 1)),
                 (long long)m->done, (long long)m->epoch + 1, (long long)pe);
    else
        return 0;
    return -1;
}

void pdrt_ckpt_warn_changes(const pdrt_ckpt_meta *m, const pdrt_ckpt_meta *now) {
    if (!m->per_epoch) return; /* not recorded */
    char changed[512] = "";
    size_t at = 0;
    if (m->lr != now->lr)
        at += (size_t)snprintf(changed + at, sizeof changed - at, "%s learning rate %g -> %g",
                               at ? ";" : "", m->lr, now->lr);
    if (m->shuffle != now->shuffle && at < sizeof changed)
        at += (size_t)snprintf(changed + at, sizeof changed - at, "%s shuffling %s -> %s",
                               at ? ";" : "", m->shuffle ? "on" : "off (--no-shuffle)",
                               now->shuffle ? "on" : "off (--no-shuffle)");
    if (now->every > 0 && m->every != now->every && at < sizeof changed)
        at += (size_t)snprintf(changed + at, sizeof changed - at, "%s --checkpoint-every %lld -> %lld",
                               at ? ";" : "", (long long)m->every, (long long)now->every);
    if (at)
        pdrt_warn("--resume: this run differs from the checkpoint's:%s (the result is not the "
                  "uninterrupted run's)", changed);
}

int64_t pdrt_ckpt_latest(const char *dir, int n_ranks, int64_t below) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int64_t best = -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        long long step;
        char extra;
        if (sscanf(de->d_name, "step-%lld%c", &step, &extra) != 1 || step < 0 || step <= best ||
            step >= below)
            continue;
        int complete = 1;
        for (int r = 0; r < n_ranks && complete; r++) {
            char path[4200];
            struct stat sb;
            pdrt_ckpt_path(path, sizeof path, dir, step, r);
            complete = !stat(path, &sb) && S_ISREG(sb.st_mode);
        }
        if (complete) best = step;
    }
    closedir(d);
    return best;
}

/* Removes rank's temporary files (".rank-R.ckpt.PID.tmp") in sdir: writes that a kill or a full
 * disk interrupted. */
static int remove_tmp(const char *sdir, int rank) {
    DIR *d = opendir(sdir);
    int removed = 0;
    if (!d) return 0;
    char pre[32], path[4600];
    int n = snprintf(pre, sizeof pre, ".rank-%d.ckpt.", rank);
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, pre, (size_t)n) || len < 4 || strcmp(de->d_name + len - 4, ".tmp")) continue;
        snprintf(path, sizeof path, "%s/%s", sdir, de->d_name);
        removed += unlink(path) == 0;
    }
    closedir(d);
    return removed;
}

void pdrt_ckpt_prune(const char *dir, int rank, int64_t keep_from) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        long long step;
        char extra;
        if (sscanf(de->d_name, "step-%lld%c", &step, &extra) != 1) continue;
        char path[4200], sdir[4200];
        snprintf(sdir, sizeof sdir, "%s/%s", dir, de->d_name);
        int debris = remove_tmp(sdir, rank);
        if (step < keep_from) {
            pdrt_ckpt_path(path, sizeof path, dir, step, rank);
            unlink(path);
        }
        /* succeeds for the last rank to leave it, or a folder an interrupted write left empty */
        if (step < keep_from || debris) rmdir(sdir);
    }
    closedir(d);
}
