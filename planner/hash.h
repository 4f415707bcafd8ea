/* hash.h: 64-bit FNV-1a, the one hash pdplan uses: input and plan hashes in plan.yaml and the
 * generated banners, and the name tables of the readers. */
#ifndef PD_HASH_H
#define PD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PD_FNV1A_BASIS 14695981039346656037ULL

/* Continues the FNV-1a hash h (start with PD_FNV1A_BASIS) over n bytes. */
uint64_t pd_fnv1a(const void *data, size_t n, uint64_t h);

/* FNV-1a of a NUL-terminated string. */
uint64_t pd_fnv1a_str(const char *s);

#endif
