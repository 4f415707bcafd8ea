/* template.h: the text templates of templates/ (banner.in, stage.c.in, stage.cu.in, single.c.in,
 * Makefile*.in): read one, and print it with every @KEY@ replaced by its value. */
#ifndef PD_TEMPLATE_H
#define PD_TEMPLATE_H

#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *key, *value;
} cg_subst;

/* The whole file, NUL-terminated (malloc'd), or NULL with errno set. */
char *cg_read_text(const char *path);
/* Prints tpl to o with every @KEY@ of s replaced. Returns how many @KEY@-shaped names (upper
 * case, digits, _) it met that s does not have, the first of them in unknown (n bytes). */
int cg_fill(FILE *o, const char *tpl, const cg_subst *s, int n, char *unknown, size_t un);
/* The same into a malloc'd string (NULL when out of memory or on an unknown key). */
char *cg_fill_str(const char *tpl, const cg_subst *s, int n, char *unknown, size_t un);

#endif
