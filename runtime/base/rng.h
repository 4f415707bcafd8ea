/* rng.h: counter-based, keyed random numbers (no streamed state).
 *
 * A draw is a pure function of a 64-bit key and a counter: key = pd_rng_key(seed, domain, k1,
 * k2, k3) mixes the run's seed with a domain tag (what the draw is for) and up to three more keys;
 * pd_rng_u64(key, counter) mixes the key with the counter through the splitmix64 finaliser. Same
 * keys give the same numbers on every process, in any order. Keys used by the runtime:
 *   weights:  (seed, PD_RNG_INIT, layer, param, 0), counter = element index
 *   dropout:  (seed, PD_RNG_DROPOUT, step, layer, sample), counter = element within the sample
 *   shuffle:  (seed, PD_RNG_SHUFFLE, epoch, 0, 0), counter = Fisher-Yates position
 *   synthetic data: (seed, PD_RNG_SYNTH, sample index, 0, 0) and (seed, PD_RNG_SYNTH_PROJ, ...)
 *   token windows: (seed, PD_RNG_WINDOW, epoch, split, 0), counter = sample of the epoch
 */
#ifndef PD_RNG_H
#define PD_RNG_H

#include <stdint.h>

enum {
    PD_RNG_INIT = 1,
    PD_RNG_DROPOUT = 2,
    PD_RNG_SHUFFLE = 3,
    PD_RNG_SYNTH = 4,
    PD_RNG_SYNTH_PROJ = 5,
    PD_RNG_WINDOW = 6,
    PD_RNG_USER = 100 /* first tag free for other uses */
};

/* the splitmix64 finaliser: a bijective 64-bit mix */
uint64_t pd_rng_mix(uint64_t x);
/* a key from the seed, a domain tag and three more keys (order matters) */
uint64_t pd_rng_key(uint64_t seed, uint64_t domain, uint64_t k1, uint64_t k2, uint64_t k3);
/* 64 random bits for (key, counter) */
uint64_t pd_rng_u64(uint64_t key, uint64_t counter);
/* uniform float in [0, 1), 24 random bits */
float pd_rng_uniform(uint64_t key, uint64_t counter);
/* uniform double in [0, 1), 53 random bits */
double pd_rng_uniform_double(uint64_t key, uint64_t counter);
/* standard normal by Box-Muller from the two uniforms (key, 2*counter) and (key, 2*counter+1) */
float pd_rng_normal(uint64_t key, uint64_t counter);
/* uniform integer in [0, n), n > 0 (unbiased: Lemire's multiply with rejection, the rejected
 * draws continuing on counters derived from the same (key, counter)) */
uint64_t pd_rng_below(uint64_t key, uint64_t counter, uint64_t n);

#endif
