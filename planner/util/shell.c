/* shell.c: shell quoting (shell.h). */
#include "shell.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *pd_shell_command_line(const char *prog, int argc, char **argv) {
    size_t n = strlen(prog) + 10;
    for (int i = 1; i < argc; i++) n += 4 * strlen(argv[i]) + 3;
    char *s = malloc(n), *w = s;
    if (!s) return NULL;
    w += sprintf(w, "%s", prog);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != '\0';
        for (const char *c = a; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./,:@",
                        *c))
                plain = 0;
        *w++ = ' ';
        if (plain) {
            w += sprintf(w, "%s", a);
            continue;
        }
        *w++ = '\'';
        for (const char *c = a; *c; c++) {
            if (*c == '\'') w += sprintf(w, "'\\''");
            else *w++ = *c;
        }
        *w++ = '\'';
    }
    *w = '\0';
    return s;
}
