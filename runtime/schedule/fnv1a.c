/* fnv1a.c: 64-bit FNV-1a (fnv1a.h). */
#include "fnv1a.h"

uint64_t pd_fnv1a(const void *data, size_t n, uint64_t h) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}
