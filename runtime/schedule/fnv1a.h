/* fnv1a.h: 64-bit FNV-1a, the one byte hash of the project: checkpoint checksums and layouts
 * (runtime/checkpoint.c), and in pdplan the input and plan hashes and the readers' name tables
 * (planner/util/hash.h). fnv1a.c is compiled into both libpdrt and pdplan. */
#ifndef PD_FNV1A_H
#define PD_FNV1A_H

#include <stddef.h>
#include <stdint.h>

#define PD_FNV1A_BASIS 14695981039346656037ULL

/* Continues the FNV-1a hash h (start with PD_FNV1A_BASIS) over n bytes. */
uint64_t pd_fnv1a(const void *data, size_t n, uint64_t h);

#endif
