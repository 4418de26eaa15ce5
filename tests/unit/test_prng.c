/*
 * test_prng - unit tests for sim/world/prng.c: known outputs, stream
 * independence, distribution sanity
 *
 * The expected values below were computed by sim/world/prng.c and checked
 * against an independent Python implementation of the derivation in
 * prng.h: tests/drivers/test_prng_reference.py reads the KNOWN_* arrays
 * of this file and recomputes every value, so the two cannot drift apart.
 * The raw xoshiro256** vector (state 1,2,3,4 -> 11520, 0, 1509978240,
 * 1215971899390074240) is the one published with the algorithm.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "prng.h"

/* KNOWN_1_test_0: seed 1, purpose "test", index 0 */
static const uint64_t KNOWN_1_test_0[] = {
    0x513412bafbe1a8c1ULL, 0x3fc1b74f35211bcfULL, 0xa2aa700b121f45f0ULL, 0xab17a91079dff09fULL,
};
/* KNOWN_42_remote_3: seed 42, purpose "remote 198.51.100.10 rcpt", index 3 */
static const uint64_t KNOWN_42_remote_3[] = {
    0x3890f567fe7510dcULL, 0x0c1b1dd620aacffbULL, 0xc0a4501531b5dc99ULL, 0x305fc37d0f769feaULL,
};

START_TEST(xoshiro_reference_vector)
{
    struct sim_prng p = { { 1, 2, 3, 4 } };

    ck_assert_uint_eq(sim_prng_next(&p), 11520ULL);
    ck_assert_uint_eq(sim_prng_next(&p), 0ULL);
    ck_assert_uint_eq(sim_prng_next(&p), 1509978240ULL);
    ck_assert_uint_eq(sim_prng_next(&p), 1215971899390074240ULL);
}
END_TEST

START_TEST(known_first_outputs)
{
    struct sim_prng p;
    int i;

    sim_prng_init(&p, 1, "test", 0);
    for (i = 0; i < 4; i++)
        ck_assert_uint_eq(sim_prng_next(&p), KNOWN_1_test_0[i]);
    sim_prng_init(&p, 42, "remote 198.51.100.10 rcpt", 3);
    for (i = 0; i < 4; i++)
        ck_assert_uint_eq(sim_prng_next(&p), KNOWN_42_remote_3[i]);
}
END_TEST

START_TEST(same_key_same_stream)
{
    struct sim_prng a, b;
    int i;

    sim_prng_init(&a, 7, "link", 2);
    sim_prng_init(&b, 7, "link", 2);
    for (i = 0; i < 1000; i++)
        ck_assert_uint_eq(sim_prng_next(&a), sim_prng_next(&b));
}
END_TEST

/* Streams that differ in any one of seed, purpose, index share nothing. */
START_TEST(streams_are_independent)
{
    static const struct { uint64_t seed; const char *purpose; uint64_t index; } keys[] = {
        { 1, "a", 0 }, { 2, "a", 0 }, { 1, "b", 0 }, { 1, "a", 1 }, { 0, "", 0 },
        { 1, "remote 198.51.100.10 rcpt", 0 }, { 1, "remote 198.51.100.10 mail", 0 },
    };
    enum { NKEYS = sizeof keys / sizeof keys[0], DRAWS = 64 };
    uint64_t out[NKEYS][DRAWS];
    struct sim_prng p;
    int i, j, k, l;

    for (i = 0; i < NKEYS; i++) {
        sim_prng_init(&p, keys[i].seed, keys[i].purpose, keys[i].index);
        for (k = 0; k < DRAWS; k++)
            out[i][k] = sim_prng_next(&p);
    }
    /* No 64-bit value shared anywhere: not shifted copies, not equal. */
    for (i = 0; i < NKEYS; i++)
        for (j = i + 1; j < NKEYS; j++)
            for (k = 0; k < DRAWS; k++)
                for (l = 0; l < DRAWS; l++)
                    ck_assert_uint_ne(out[i][k], out[j][l]);
}
END_TEST

/* Drawing from one stream never changes another (they share no state). */
START_TEST(draws_do_not_interfere)
{
    struct sim_prng a, b, b_alone;
    int i;

    sim_prng_init(&a, 9, "x", 0);
    sim_prng_init(&b, 9, "y", 0);
    sim_prng_init(&b_alone, 9, "y", 0);
    for (i = 0; i < 100; i++) {
        (void) sim_prng_next(&a);
        (void) sim_prng_next(&a);
        ck_assert_uint_eq(sim_prng_next(&b), sim_prng_next(&b_alone));
    }
}
END_TEST

/* below(n): in range; each of 10 buckets within 5% of its share. */
START_TEST(below_is_uniformish)
{
    enum { N = 10, DRAWS = 100000 };
    unsigned long bucket[N] = { 0 };
    struct sim_prng p;
    int i;

    sim_prng_init(&p, 1234, "uniform", 0);
    for (i = 0; i < DRAWS; i++) {
        uint64_t v = sim_prng_below(&p, N);

        ck_assert_uint_lt(v, N);
        bucket[v]++;
    }
    for (i = 0; i < N; i++) {
        ck_assert_uint_gt(bucket[i], DRAWS / N * 95 / 100);
        ck_assert_uint_lt(bucket[i], DRAWS / N * 105 / 100);
    }
    ck_assert_uint_eq(sim_prng_below(&p, 1), 0);
}
END_TEST

/* Each bit of next() is set about half the time. */
START_TEST(bits_are_balanced)
{
    enum { DRAWS = 20000 };
    unsigned long ones[64] = { 0 };
    struct sim_prng p;
    int i, b;

    sim_prng_init(&p, 5, "bits", 0);
    for (i = 0; i < DRAWS; i++) {
        uint64_t v = sim_prng_next(&p);

        for (b = 0; b < 64; b++)
            ones[b] += (v >> b) & 1;
    }
    for (b = 0; b < 64; b++) {
        ck_assert_uint_gt(ones[b], DRAWS * 47 / 100);
        ck_assert_uint_lt(ones[b], DRAWS * 53 / 100);
    }
}
END_TEST

/* chance(): 0 never, 1000000 always, 300000 about 30%; one draw each. */
START_TEST(chance_rates_and_draw_count)
{
    enum { DRAWS = 100000 };
    struct sim_prng p, q;
    unsigned long hits = 0;
    int i;

    sim_prng_init(&p, 77, "chance", 0);
    for (i = 0; i < DRAWS; i++)
        hits += (unsigned long) sim_prng_chance(&p, 300000);
    ck_assert_uint_gt(hits, 29000);
    ck_assert_uint_lt(hits, 31000);
    sim_prng_init(&p, 77, "chance", 1);
    q = p;
    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(sim_prng_chance(&p, 0), 0);
        ck_assert_int_eq(sim_prng_chance(&q, SIM_PRNG_PPM), 1);
    }
    /* The same number of draws, whatever the probability: the streams
     * are still in step. */
    ck_assert_uint_eq(sim_prng_next(&p), sim_prng_next(&q));
}
END_TEST

static Suite *prng_suite(void)
{
    Suite *s = suite_create("prng");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, xoshiro_reference_vector);
    tcase_add_test(tc, known_first_outputs);
    tcase_add_test(tc, same_key_same_stream);
    tcase_add_test(tc, streams_are_independent);
    tcase_add_test(tc, draws_do_not_interfere);
    tcase_add_test(tc, below_is_uniformish);
    tcase_add_test(tc, bits_are_balanced);
    tcase_add_test(tc, chance_rates_and_draw_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(prng_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
