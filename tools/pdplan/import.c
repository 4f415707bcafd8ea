/* import.c: pdplan's side of ONNX (import.h): the settings file beside a .onnx, the files a
 * generated folder keeps of its source, and --emit-yaml. */
#include "import.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "planner/read/frontend.h"

int pd_import_load(const char *path, const char *bytes, size_t len, const char *settings,
                   pd_model *m, pd_onnx_weights *w, pd_diag *d) {
    if (pd_onnx_load_bytes(path, bytes, len, m, w, d)) return 1;
    char beside[PATH_MAX];
    size_t n = strlen(path);
    if (!settings && n > 5 && n < sizeof beside - 16) {
        snprintf(beside, sizeof beside, "%.*s.train.yaml", (int)(n - 5), path);
        if (access(beside, F_OK) == 0) settings = beside;
    }
    if (settings && pd_model_apply_settings(settings, m, d)) {
        pd_model_free(m);
        pd_onnx_weights_free(w);
        return 1;
    }
    return 0;
}

static int write_bytes(const char *path, const char *bytes, size_t len, pd_diag *d) {
    FILE *f = fopen(path, "wb");
    size_t put = f ? fwrite(bytes, 1, len, f) : 0;
    if (!f || fclose(f) != 0 || put != len) {
        pd_diag_error(d, path, 0, 0, "cannot write: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int pd_import_keep(const char *outdir, const char *bytes, size_t len, int is_onnx,
                   const pd_onnx_weights *w, pd_diag *d) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/source.%s", outdir, is_onnx ? "onnx" : "yaml");
    if (write_bytes(path, bytes, len, d)) return -1;
    if (!is_onnx) return 0;
    snprintf(path, sizeof path, "%s/onnx_map.txt", outdir);
    if (pd_onnx_write_map(path, w, d)) return -1;
    snprintf(path, sizeof path, "%s/init", outdir);
    return pd_onnx_write_weights(path, w, d);
}

int pd_import_emit_yaml(const char *file, const pd_model *m, const pd_onnx_weights *w,
                        pd_diag *d) {
    FILE *f = fopen(file, "w");
    if (!f) {
        pd_diag_error(d, file, 0, 0, "cannot write: %s", strerror(errno));
        return -1;
    }
    fprintf(f, "# %s as a pd: 1 model, written by pdplan --emit-yaml from %s\n", m->name, m->path);
    int rc = pd_model_write_yaml(f, m);
    if (fclose(f) != 0 || rc) {
        pd_diag_error(d, file, 0, 0, "cannot write: %s", strerror(errno));
        return -1;
    }
    if (!w || !w->n) return 0;
    char dir[PATH_MAX];
    size_t n = strlen(file);
    if (n > 5 && !strcmp(file + n - 5, ".yaml")) n -= 5;
    snprintf(dir, sizeof dir, "%.*s_init", (int)n, file);
    return pd_onnx_write_weights(dir, w, d);
}
