/*
 * prng - seeded pseudo-random streams, one per purpose
 *
 * SYNOPSIS
 *   struct sim_prng p;
 *   sim_prng_init(&p, seed, "remote 198.51.100.10 rcpt", 0);
 *   uint64_t x = sim_prng_next(&p);
 *   uint64_t k = sim_prng_below(&p, 6);          0 .. 5, unbiased
 *   int hit = sim_prng_chance(&p, 300000);       true with probability 0.3
 *
 * DESCRIPTION
 *   Every random choice of the simulation (jitter, a reply that applies
 *   with a probability, a random connect outcome) is drawn from a stream
 *   that belongs to exactly one purpose.  A stream is identified by
 *   (seed, purpose string, index) and derived from them by hashing, so
 *   adding a fault in one place - another remote, another command, another
 *   link - never shifts the numbers drawn anywhere else.
 *
 *   Generator: xoshiro256** (Blackman and Vigna, "Scrambled linear
 *   pseudorandom number generators", 2018), 256 bits of state, seeded
 *   through splitmix64 (Steele, Lea and Flood, "Fast splittable
 *   pseudorandom number generators", 2014), as its authors recommend.
 *   Both are written here from their published descriptions.
 *
 *   Derivation, exactly (all arithmetic modulo 2^64; tests/drivers/
 *   test_prng_reference.py recomputes it independently):
 *     mix(z)     = z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
 *                  z ^= z >> 27; z *= 0x94d049bb133111eb; z ^ (z >> 31)
 *     fnv(s)     = FNV-1a 64 of the purpose's bytes
 *                  (offset 0xcbf29ce484222325, prime 0x100000001b3)
 *     key        = mix(mix(seed + G) ^ fnv(purpose))
 *     key        = mix(key ^ mix(index + G))         G = 0x9e3779b97f4a7c15
 *     s[0..3]    = the first four outputs of splitmix64 started at key
 *                  (x += G; return mix(x))
 *
 *   sim_prng_below() rejects the low values that would bias the modulo;
 *   sim_prng_chance() always draws exactly one number, whatever the
 *   probability, so a changed probability does not shift later draws.
 *
 *   No floating point anywhere: the results are the same bytes on every
 *   build, optimised or sanitized.
 */
#ifndef MTASIM_SIM_PRNG_H
#define MTASIM_SIM_PRNG_H

#include <stdint.h>

#define SIM_PRNG_PPM 1000000u   /* probabilities are in parts per million */

struct sim_prng {
    uint64_t s[4];
};

void sim_prng_init(struct sim_prng *p, uint64_t seed, const char *purpose, uint64_t index);
uint64_t sim_prng_next(struct sim_prng *p);
uint64_t sim_prng_below(struct sim_prng *p, uint64_t n);
int sim_prng_chance(struct sim_prng *p, uint32_t ppm);

#endif
