/* template.c: reading and filling the text templates of templates/ (template.h). */
#include "template.h"

#include <stdlib.h>
#include <string.h>

char *cg_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (n + 2 > cap) {
            cap = cap ? 2 * cap : 4096;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
        }
        buf[n++] = (char)c;
    }
    fclose(f);
    if (!buf) buf = calloc(1, 1);
    else buf[n] = 0;
    return buf;
}

/* The length of the @KEY@ name starting at p (after the '@'), or 0 when none ends there. */
static size_t key_len(const char *p) {
    size_t k = 0;
    while ((p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= '0' && p[k] <= '9') || p[k] == '_') k++;
    return k > 0 && p[k] == '@' && p[0] >= 'A' && p[0] <= 'Z' ? k : 0;
}

int cg_fill(FILE *o, const char *tpl, const cg_subst *s, int n, char *unknown, size_t un) {
    int missing = 0;
    if (unknown && un) unknown[0] = 0;
    for (const char *p = tpl; *p; p++) {
        size_t k = *p == '@' ? key_len(p + 1) : 0;
        if (!k) {
            fputc(*p, o);
            continue;
        }
        int i = 0;
        while (i < n && !(strlen(s[i].key) == k && !strncmp(p + 1, s[i].key, k))) i++;
        if (i < n) {
            fputs(s[i].value, o);
        } else {
            if (!missing++ && unknown && un) snprintf(unknown, un, "%.*s", (int)k, p + 1);
            fwrite(p, 1, k + 2, o);
        }
        p += k + 1;
    }
    return missing;
}

char *cg_fill_str(const char *tpl, const cg_subst *s, int n, char *unknown, size_t un) {
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    if (!o) return NULL;
    int missing = cg_fill(o, tpl, s, n, unknown, un);
    if (fclose(o) || missing) {
        free(buf);
        return NULL;
    }
    return buf;
}
