/* hash.c: FNV-1a of a string (see hash.h). */
#include "hash.h"

uint64_t pd_fnv1a_str(const char *s) {
    uint64_t h = PD_FNV1A_BASIS;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}
