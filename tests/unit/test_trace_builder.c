/*
 * test_trace_builder - unit tests for the core's trace builder (core/trace.c):
 * the lengths a record carries (kind, name, keys: mtasim_env.h), numbers
 * formatted in place, and the bounds (fields, text) that cut and never
 * overflow
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "mta_internal.h"
#include "trace.h"

static struct mta_trace_rec got;
static int emitted;

static void capture(struct mta_env *env, const struct mta_trace_rec *rec)
{
    (void)env;
    got = *rec;
    emitted++;
}

static struct mta_env env = { .trace = capture };
static struct mta core;

static void setup(void)
{
    memset(&got, 0, sizeof got);
    emitted = 0;
    core.env = &env;
    mta_current = &core;
    mta_trace_on = 1;
}

static void teardown(void)
{
    mta_current = NULL;
    mta_trace_on = 0;
}

/* Every length a sink reads equals the string's: literal or not. */
START_TEST(lengths_come_with_the_record)
{
    char key[] = "runtime_key", name[] = "some_name";
    struct mta_tb tb;
    mta_tb_begin(&tb, "queue", name);
    mta_tb_int(&tb, "msg", 42);
    mta_tb_str(&tb, key, "value");
    mta_tb_strn(&tb, "line", "MAIL FROM:<a@b>\r\n", 15);
    mta_tb_ipv4(&tb, "addr", 0xC0000201u);
    mta_tb_emit(&tb);

    ck_assert_int_eq(emitted, 1);
    ck_assert_uint_eq(got.kind_len, 5);
    ck_assert_uint_eq(got.name_len, strlen(name));
    ck_assert_int_eq(got.nfields, 4);
    for (int i = 0; i < got.nfields; i++)
        ck_assert_uint_eq(got.field[i].klen, strlen(got.field[i].key));
    ck_assert_uint_eq(got.field[1].klen, 11);
    ck_assert_uint_eq(got.field[2].len, 15);
    ck_assert_int_eq(memcmp(got.field[2].str, "MAIL FROM:<a@b>", 15), 0);
}
END_TEST

/* A number's text and its value travel together, however long the text. */
START_TEST(numbers_formatted_in_place)
{
    static const int64_t v[] = { 0, 7, -1, 100, 4294967296LL, INT64_MIN, INT64_MAX };
    static const char *const text[] = { "0", "7", "-1", "100", "4294967296",
                                        "-9223372036854775808", "9223372036854775807" };
    struct mta_tb tb;
    mta_tb_begin(&tb, "test", "numbers");
    for (int i = 0; i < 7; i++)
        mta_tb_int(&tb, "n", v[i]);
    mta_tb_ipv4(&tb, "addr", 0xC6336410u);
    mta_tb_emit(&tb);

    ck_assert_int_eq(got.nfields, 8);
    for (int i = 0; i < 7; i++) {
        ck_assert(got.field[i].has_num);
        ck_assert(got.field[i].num == v[i]);
        ck_assert_uint_eq(got.field[i].len, strlen(text[i]));
        ck_assert_int_eq(memcmp(got.field[i].str, text[i], got.field[i].len), 0);
    }
    ck_assert_uint_eq(got.field[7].len, 13);
    ck_assert_int_eq(memcmp(got.field[7].str, "198.51.100.16", 13), 0);
    ck_assert(got.field[7].num == 0xC6336410u);
}
END_TEST

/* Near the end of the builder's text buffer a number is cut, not written
 * past it; once full, fields are empty; more than MTA_TRACE_MAX_FIELDS
 * fields are dropped. */
START_TEST(bounds_cut_and_never_overflow)
{
    struct mta_tb tb;
    char sym[1011];
    memset(sym, 's', sizeof sym - 1);
    sym[sizeof sym - 1] = '\0';
    mta_tb_begin(&tb, "test", "bounds");
    mta_tb_sym(&tb, "big", 1, sym);                 /* 1010 of the 1024 bytes */
    mta_tb_int(&tb, "cut", -12345678901234567LL);   /* 18 bytes, 14 left */
    mta_tb_int(&tb, "none", 5);
    for (int i = 0; i < 20; i++)
        mta_tb_int(&tb, "more", i);
    mta_tb_emit(&tb);

    ck_assert_int_eq(got.nfields, MTA_TRACE_MAX_FIELDS);
    ck_assert_uint_eq(got.field[0].len, 1010);
    ck_assert_uint_eq(got.field[1].len, 14);
    ck_assert_int_eq(memcmp(got.field[1].str, "-1234567890123", 14), 0);
    ck_assert(got.field[1].num == -12345678901234567LL);
    ck_assert_uint_eq(got.field[2].len, 0);
    ck_assert(got.field[2].num == 5);
    for (int i = 0; i < got.nfields; i++)
        ck_assert(got.field[i].str + got.field[i].len <= tb.buf + sizeof tb.buf);
}
END_TEST

/* Tracing off: a record is built by whoever asks, but never emitted. */
START_TEST(nothing_emitted_when_off)
{
    struct mta_tb tb;
    mta_trace_on = 0;
    mta_tb_begin(&tb, "test", "off");
    mta_tb_int(&tb, "n", 1);
    mta_tb_emit(&tb);
    ck_assert_int_eq(emitted, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace_builder");
    TCase *tc = tcase_create("trace_builder");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lengths_come_with_the_record);
    tcase_add_test(tc, numbers_formatted_in_place);
    tcase_add_test(tc, bounds_cut_and_never_overflow);
    tcase_add_test(tc, nothing_emitted_when_off);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
