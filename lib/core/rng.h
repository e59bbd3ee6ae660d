/* A small seeded generator (xoshiro256**, seeded through splitmix64).
 * Each call that needs randomness owns one: same seed, same stream, on
 * any thread. */
#ifndef CVIS_CORE_RNG_H
#define CVIS_CORE_RNG_H

#include <stdint.h>

typedef struct cvis__rng {
    uint64_t s[4];
    int has_spare;
    double spare;
} cvis__rng;

void cvis__rng_seed(cvis__rng *r, uint64_t seed);
uint64_t cvis__rng_u64(cvis__rng *r);
/* Uniform in [0, 1). */
double cvis__rng_uniform(cvis__rng *r);
/* Uniform integer in [lo, hi] inclusive. */
int64_t cvis__rng_int(cvis__rng *r, int64_t lo, int64_t hi);
/* Standard normal (Box-Muller, the spare kept). */
double cvis__rng_normal(cvis__rng *r);

#endif
