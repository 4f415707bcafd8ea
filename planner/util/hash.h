/* hash.h: 64-bit FNV-1a, the one hash pdplan uses: input and plan hashes in plan.yaml and the
 * generated banners, and the name tables of the readers. pd_fnv1a is the runtime's
 * (runtime/fnv1a.h, shared with the checkpoints). */
#ifndef PD_HASH_H
#define PD_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/schedule/fnv1a.h"

/* FNV-1a of a NUL-terminated string. */
uint64_t pd_fnv1a_str(const char *s);

#endif
