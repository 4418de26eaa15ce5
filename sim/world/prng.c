/*
 * prng - seeded pseudo-random streams, one per purpose
 *
 * SYNOPSIS
 *   See prng.h.
 *
 * DESCRIPTION
 *   xoshiro256** seeded through splitmix64; the stream key is a hash of
 *   (seed, purpose, index) as prng.h spells out.  The state is a plain
 *   value: copying a struct sim_prng forks the stream.
 *
 * DIAGNOSTICS
 *   sim_prng_below(p, 0) is a contract breach and asserts.
 */
#include <assert.h>
#include <stddef.h>

#include "prng.h"

#define PRNG_GOLDEN 0x9e3779b97f4a7c15ULL
#define PRNG_FNV_OFFSET 0xcbf29ce484222325ULL
#define PRNG_FNV_PRIME 0x100000001b3ULL
/* Purposes are short labels; the bound only stops a missing NUL. */
#define PRNG_MAX_PURPOSE 4096

/* prng_mix - the splitmix64 output function: a bijective 64-bit mixer */
static uint64_t prng_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* prng_fnv1a - FNV-1a 64 of a purpose string */
static uint64_t prng_fnv1a(const char *s)
{
    uint64_t h = PRNG_FNV_OFFSET;
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        assert(i < PRNG_MAX_PURPOSE);
        h ^= (unsigned char) s[i];
        h *= PRNG_FNV_PRIME;
    }
    return h;
}

/* prng_rotl - rotate left by k (0 < k < 64) */
static uint64_t prng_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* sim_prng_init - the stream for (seed, purpose, index) */
void sim_prng_init(struct sim_prng *p, uint64_t seed, const char *purpose, uint64_t index)
{
    uint64_t key;
    int i;

    assert(p != NULL && purpose != NULL);
    key = prng_mix(prng_mix(seed + PRNG_GOLDEN) ^ prng_fnv1a(purpose));
    key = prng_mix(key ^ prng_mix(index + PRNG_GOLDEN));
    for (i = 0; i < 4; i++) {
        key += PRNG_GOLDEN;
        p->s[i] = prng_mix(key);
    }
    /* The all-zero state is xoshiro's one fixed point; splitmix64 cannot
     * produce four zeros in a row, but say so rather than trust it. */
    if ((p->s[0] | p->s[1] | p->s[2] | p->s[3]) == 0)
        p->s[0] = PRNG_GOLDEN;
}

/* sim_prng_next - the next 64 bits of the stream (xoshiro256**) */
uint64_t sim_prng_next(struct sim_prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = prng_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = prng_rotl(s[3], 45);
    return result;
}

/* sim_prng_below - uniform in [0, n), by rejection of the biased low range */
uint64_t sim_prng_below(struct sim_prng *p, uint64_t n)
{
    /* 2^64 mod n: values below it would make the low results likelier. */
    uint64_t threshold;
    uint64_t x;
    int bound;

    assert(n > 0);
    threshold = (0 - n) % n;
    /* Each draw is rejected with probability < 1/2: 128 draws all
     * rejected would mean a broken generator. */
    for (bound = 0; bound < 128; bound++) {
        x = sim_prng_next(p);
        if (x >= threshold)
            return x % n;
    }
    assert(!"sim_prng_below: generator stuck");
    return 0;
}

/* sim_prng_chance - one draw; true with probability ppm / 1000000 */
int sim_prng_chance(struct sim_prng *p, uint32_t ppm)
{
    assert(ppm <= SIM_PRNG_PPM);
    return sim_prng_below(p, SIM_PRNG_PPM) < ppm;
}
