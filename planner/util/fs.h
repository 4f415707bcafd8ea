/* fs.h: folders: mkdir -p, and the PipeDream-C checkout (the folder holding templates/ and
 * runtime/pdrt.h) that pdplan and the code generator point generated Makefiles at. */
#ifndef PD_FS_H
#define PD_FS_H

#include <stddef.h>

/* mkdir -p; returns 0 or -1 with errno set. */
int pd_mkdir_p(const char *dir);

/* The checkout at or above start: start or the nearest of its next `levels` - 1 parent folders
 * that holds templates/Makefile.in and runtime/pdrt.h (regular, readable files) into out;
 * returns 0, or -1 with out = start when none does. */
int pd_find_checkout(char *out, size_t n, const char *start, int levels);

#endif
