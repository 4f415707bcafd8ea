/* hash.c: 64-bit FNV-1a (see hash.h). */
#include "hash.h"

uint64_t pd_fnv1a(const void *data, size_t n, uint64_t h) {
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t pd_fnv1a_str(const char *s) {
    uint64_t h = PD_FNV1A_BASIS;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}
