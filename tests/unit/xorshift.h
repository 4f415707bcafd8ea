/* xorshift.h: the deterministic xorshift64 generator of the planner's randomised tests (random
 * graphs, clusters and limits). Each test file keeps its own state and seed, so its cases do
 * not change when another file draws more numbers. */
#ifndef PD_TEST_XORSHIFT_H
#define PD_TEST_XORSHIFT_H

#include <stdint.h>

/* Uniform in [0, 1), 53 bits. */
static inline double xorshift_uniform(uint64_t *state) {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (double)(*state >> 11) / 9007199254740992.0;
}

/* Uniform integer in [lo, hi]. */
static inline int xorshift_int(uint64_t *state, int lo, int hi) {
    return lo + (int)(xorshift_uniform(state) * (hi - lo + 1));
}

#endif
