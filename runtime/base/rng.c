/* rng.c: counter-based keyed random numbers (see rng.h): splitmix64 mixing of (key, counter). */
#include "rng.h"

#include <math.h>

uint64_t pd_rng_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t pd_rng_key(uint64_t seed, uint64_t domain, uint64_t k1, uint64_t k2, uint64_t k3) {
    uint64_t h = pd_rng_mix(seed);
    h = pd_rng_mix(h ^ domain);
    h = pd_rng_mix(h ^ k1);
    h = pd_rng_mix(h ^ k2);
    return pd_rng_mix(h ^ k3);
}

uint64_t pd_rng_u64(uint64_t key, uint64_t counter) {
    return pd_rng_mix(key ^ pd_rng_mix(counter ^ 0x5851f42d4c957f2dull));
}

float pd_rng_uniform(uint64_t key, uint64_t counter) {
    return (float)(pd_rng_u64(key, counter) >> 40) * (1.0f / 16777216.0f);
}

double pd_rng_uniform_double(uint64_t key, uint64_t counter) {
    return (double)(pd_rng_u64(key, counter) >> 11) * (1.0 / 9007199254740992.0);
}

float pd_rng_normal(uint64_t key, uint64_t counter) {
    double u1 = pd_rng_uniform_double(key, 2 * counter);
    double u2 = pd_rng_uniform_double(key, 2 * counter + 1);
    double r = sqrt(-2.0 * log(1.0 - u1)); /* 1 - u1 is in (0, 1] */
    return (float)(r * cos(6.283185307179586 * u2));
}

uint64_t pd_rng_below(uint64_t key, uint64_t counter, uint64_t n) {
    uint64_t x = pd_rng_u64(key, counter);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n;
        uint64_t retry_key = pd_rng_mix(key ^ pd_rng_mix(counter));
        for (uint64_t attempt = 0; low < threshold; attempt++) {
            x = pd_rng_u64(retry_key, attempt);
            m = (__uint128_t)x * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}
