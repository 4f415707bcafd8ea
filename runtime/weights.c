/* weights.c: --save and --init: one raw little-endian float32 file per tensor,
 * DIR/<layer>.<param>.f32, row-major in the op's documented layout. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rt.h"

static void path_of(char *out, size_t n, const char *dir, const pdrt_tensor *t) {
    if ((size_t)snprintf(out, n, "%s/%s.%s.f32", dir, t->layer, t->param) >= n)
        PDRT_FAIL("path too long under %s", dir);
}

void pdrt_weights_save(const char *dir, const pdrt_stage *st, const float *params,
                     const float *buffers) {
    if (pdrt_mkdir_p(dir)) PDRT_FAIL("cannot create %s: %s", dir, strerror(errno));
    for (int i = 0; i < st->n_tensors; i++) {
        const pdrt_tensor *t = &st->tensors[i];
        char path[4200];
        path_of(path, sizeof path, dir, t);
        const float *src = (t->is_buffer ? buffers : params) + t->offset;
        FILE *f = fopen(path, "wb");
        if (!f) PDRT_FAIL("cannot write %s: %s", path, strerror(errno));
        size_t w = fwrite(src, sizeof(float), (size_t)t->numel, f);
        if (fclose(f) || w != (size_t)t->numel)
            PDRT_FAIL("cannot write %s", path);
    }
}

void pdrt_weights_load(const char *dir, const pdrt_stage *st, float *params, float *buffers) {
    for (int i = 0; i < st->n_tensors; i++) {
        const pdrt_tensor *t = &st->tensors[i];
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
    }
}
