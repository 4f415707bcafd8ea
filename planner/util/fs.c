/* fs.c: mkdir -p and the checkout finder of fs.h. */
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pd_mkdir_p(const char *dir) {
    char *p = strdup(dir);
    if (!p) return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0777);
    free(p);
    if (rc != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(dir, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static int readable_file(const char *dir, const char *name) {
    char path[4400];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

int pd_find_checkout(char *out, size_t n, const char *start, int levels) {
    snprintf(out, n, "%s", start);
    /* the checkout, not a build folder that mirrors its source folders: both files */
    for (int up = 0; up < levels; up++) {
        if (readable_file(out, "templates/Makefile.in") && readable_file(out, "runtime/pdrt.h"))
            return 0;
        char *slash = strrchr(out, '/');
        if (!slash || slash == out) break;
        *slash = '\0';
    }
    snprintf(out, n, "%s", start);
    return -1;
}
