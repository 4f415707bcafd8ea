/* weights.c: --save and --init: one raw little-endian float32 file per tensor,
 * DIR/<layer>.<param>.f32, row-major in the op's documented layout. --save writes each file
 * atomically; --init refuses non-finite values. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

static void path_of(char *out, size_t n, const char *dir, const pdrt_tensor *t) {
    if ((size_t)snprintf(out, n, "%s/%s.%s.f32", dir, t->layer, t->param) >= n)
        PDRT_FAIL("path too long under %s", dir);
}

/* Each file is written to a temporary name beside it and renamed into place: a file under its
 * final name is always whole (a kill or a full disk leaves the older file, or none, never a
 * truncated one), and a failed write removes its temporary file and names the reason. */
void pdrt_weights_save(const char *dir, const pdrt_stage *st, const float *params,
                     const float *buffers) {
    if (pdrt_mkdir_p(dir)) PDRT_FAIL("cannot create %s: %s", dir, strerror(errno));
    for (int i = 0; i < st->n_tensors; i++) {
        const pdrt_tensor *t = &st->tensors[i];
        if (pdrt_tie_copy(st, i)) continue; /* written once, under the owner's name */
        char path[4200];
        path_of(path, sizeof path, dir, t);
        const float *src = (t->is_buffer ? buffers : params) + t->offset;
        pdrt_out o;
        fwrite(src, sizeof(float), (size_t)t->numel, pdrt_out_open(&o, path));
        pdrt_out_commit(&o); /* a short write leaves the stream's error flag set */
    }
}

void pdrt_weights_load(const char *dir, const pdrt_stage *st, float *params, float *buffers) {
    for (int i = 0; i < st->n_tensors; i++) {
        const pdrt_tensor *t = &st->tensors[i];
        if (pdrt_tie_copy(st, i)) continue; /* the owner's file; the runtime copies it over */
        char path[4200];
        path_of(path, sizeof path, dir, t);
        FILE *f = fopen(path, "rb");
        if (!f) {
            if (t->is_buffer) continue; /* running statistics are optional */
            PDRT_FAIL("--init: cannot read %s: %s", path, strerror(errno));
        }
        float *dst = (t->is_buffer ? buffers : params) + t->offset;
        size_t r = fread(dst, sizeof(float), (size_t)t->numel, f);
        int extra = fgetc(f) != EOF;
        fclose(f);
        if (r != (size_t)t->numel || extra)
            PDRT_FAIL("--init: %s must hold exactly %lld floats", path,
                    (long long)t->numel);
        for (int64_t k = 0; k < t->numel; k++)
            if (!isfinite(dst[k]))
                PDRT_FAIL("--init: %s holds a non-finite value (%s) at index %lld: refused (a NaN "
                          "or Inf weight would train to NaN)", path, isnan(dst[k]) ? "NaN" : "Inf",
                          (long long)k);
    }
}
