/*
 * test_text - unit tests for the generic utilities of core/util/: strtab.c
 * (interned strings), textbuf.h (printf-free line building) and panic.c
 * (how they stop on a broken invariant)
 */
#include <check.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "panic.h"
#include "strtab.h"
#include "textbuf.h"
#include "trace_store.h"

START_TEST(same_text_same_copy)
{
    struct strtab *t = strtab_create();
    char a[] = "250 2.0.0 Ok: queued", b[] = "250 2.0.0 Ok: queued";
    const char *pa = strtab_intern(t, a, strlen(a));
    const char *pb = strtab_intern(t, b, strlen(b));

    ck_assert_ptr_eq(pa, pb);
    ck_assert_ptr_ne(pa, a);                /* a copy, not the caller's buffer */
    a[0] = 'X';                             /* the caller's buffer may change */
    ck_assert_str_eq(pa, "250 2.0.0 Ok: queued");
    ck_assert_ptr_ne(strtab_intern(t, "250 2.0.0 Ok: queue", 19), pa);
    ck_assert_ptr_ne(strtab_intern(t, "250 2.0.0 Ok: queued!", 21), pa);
    ck_assert_str_eq(strtab_intern(t, "", 0), "");
    ck_assert_uint_eq(strtab_count(t), 3);
    strtab_destroy(t);
}
END_TEST

/* A length, not a terminator: prefixes and embedded NULs are their own texts. */
START_TEST(length_decides)
{
    struct strtab *t = strtab_create();
    const char *ab = strtab_intern(t, "abc", 2);
    const char *nul = strtab_intern(t, "a\0b", 3);

    ck_assert_str_eq(ab, "ab");
    ck_assert_ptr_ne(ab, nul);
    ck_assert_int_eq(memcmp(nul, "a\0b", 4), 0);    /* terminated after the text */
    ck_assert_ptr_eq(strtab_intern(t, "ab", 2), ab);
    strtab_destroy(t);
}
END_TEST

/* Many texts (table growth, many blocks) and long ones (their own block):
 * every pointer stays valid and unique per text. */
START_TEST(growth_keeps_every_copy)
{
    enum { N = 50000 };
    struct strtab *t = strtab_create();
    static const char *p[N];
    char buf[64];
    char *long_text = malloc(100000);

    ck_assert_ptr_nonnull(long_text);
    memset(long_text, 'x', 99999);
    long_text[99999] = '\0';
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "note %d", i);
        p[i] = strtab_intern(t, buf, (size_t) n);
        if (i == N / 2)
            ck_assert_ptr_eq(strtab_intern(t, long_text, 99999),
                             strtab_intern(t, long_text, 99999));
    }
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "note %d", i);
        ck_assert_str_eq(p[i], buf);
        ck_assert_ptr_eq(strtab_intern(t, buf, (size_t) n), p[i]);
    }
    ck_assert_uint_eq(strtab_count(t), N + 1);
    ck_assert_uint_eq(strlen(strtab_intern(t, long_text, 99999)), 99999);
    free(long_text);
    strtab_destroy(t);
}
END_TEST

/* textbuf behaves like the snprintf chain it replaces, truncation included. */
START_TEST(textbuf_matches_snprintf)
{
    static const int64_t nums[] = { 0, 7, 9, -1, 10, 11, 99, 100, 101, 1000, 1009, 12345,
                                    1585180800123456, INT64_MAX, INT64_MIN, -4096, -100 };
    static const char *const strs[] = { "", "MAIL FROM:<", "a@b.example", ">" };

    for (size_t cap = 1; cap < 48; cap++) {
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
            char got[64], want[64], tmp[128];
            struct textbuf tb = textbuf_on(got, cap);
            textbuf_str(&tb, strs[1]);
            textbuf_strn(&tb, strs[2], 5);
            textbuf_str(&tb, strs[3]);
            textbuf_i64(&tb, nums[k]);
            textbuf_str(&tb, " SIZE=");
            textbuf_u64(&tb, (uint64_t) nums[k]);
            int n = snprintf(tmp, sizeof tmp, "%s%.5s%s%" PRId64 " SIZE=%" PRIu64, strs[1],
                             strs[2], strs[3], nums[k], (uint64_t) nums[k]);
            ck_assert_int_gt(n, 0);
            size_t keep = (size_t) n < cap - 1 ? (size_t) n : cap - 1;   /* snprintf's cut */
            memcpy(want, tmp, keep);
            want[keep] = '\0';
            ck_assert_str_eq(got, want);
            ck_assert_uint_eq(tb.len, strlen(want));
        }
    }
}
END_TEST

START_TEST(textbuf_dotted_quad)
{
    char buf[40];
    struct textbuf tb = textbuf_on(buf, sizeof buf);

    textbuf_ipv4(&tb, 0xC0000201u);
    textbuf_str(&tb, " ");
    textbuf_ipv4(&tb, 0);
    textbuf_str(&tb, " ");
    textbuf_ipv4(&tb, 0xFFFFFFFFu);
    ck_assert_str_eq(buf, "192.0.2.1 0.0.0.0 255.255.255.255");
}
END_TEST

/* trace_time_str (built by hand) against the printf format it replaced */
START_TEST(trace_time_matches_printf)
{
    static const int64_t us[] = { 0, 1, 999999, 1000000, 59999999, 60000000, 3599999999LL,
                                  3600000000LL, 86399999999LL, 86400000000LL,
                                  359999999999LL, 360000000000LL, 9000000000000000000LL };
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        for (int neg = 0; neg < 2; neg++) {
            int64_t rel = neg ? -us[i] : us[i];
            int64_t a = rel < 0 ? -rel : rel, s = a / 1000000;
            char want[64], got[32];
            snprintf(want, sizeof want, "%s%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%06" PRId64,
                     rel < 0 ? "-" : "", s / 3600, (s / 60) % 60, s % 60, a % 1000000);
            ck_assert_str_eq(trace_time_str(rel, got), want);
        }
    }
}
END_TEST

/* A reporter that keeps what it was given and jumps back to the test. */
static jmp_buf panic_return;
static char panic_func[64], panic_msg[UTIL_PANIC_MAX + 1];

static void keep_panic(const char *func, const char *msg)
{
    snprintf(panic_func, sizeof panic_func, "%s", func);
    snprintf(panic_msg, sizeof panic_msg, "%s", msg);
    longjmp(panic_return, 1);
}

/* The reporter a program passes in gets the function and the formatted
 * message; a message longer than the bound is cut, never overrun. */
START_TEST(panic_goes_to_the_reporter)
{
    util_panic_set(keep_panic);
    if (setjmp(panic_return) == 0)
        util_panic("strtab", "more than %u distinct strings", 7u);
    ck_assert_str_eq(panic_func, "strtab");
    ck_assert_str_eq(panic_msg, "more than 7 distinct strings");

    static char long_text[3 * UTIL_PANIC_MAX];
    memset(long_text, 'x', sizeof long_text - 1);
    if (setjmp(panic_return) == 0)
        util_panic("idxmap_put", "%s", long_text);
    ck_assert_uint_eq(strlen(panic_msg), UTIL_PANIC_MAX - 1);
    util_panic_set(NULL);
}
END_TEST

/* Without a reporter of its own the program still stops (check runs each
 * test in a child process, so the abort is observed, not suffered). */
START_TEST(panic_aborts_by_default)
{
    util_panic_set(NULL);
    util_panic("test", "stop here");
}
END_TEST

static Suite *text_suite(void)
{
    Suite *su = suite_create("text");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, same_text_same_copy);
    tcase_add_test(tc, length_decides);
    tcase_add_test(tc, growth_keeps_every_copy);
    tcase_add_test(tc, textbuf_matches_snprintf);
    tcase_add_test(tc, textbuf_dotted_quad);
    tcase_add_test(tc, trace_time_matches_printf);
    tcase_add_test(tc, panic_goes_to_the_reporter);
    tcase_add_test_raise_signal(tc, panic_aborts_by_default, SIGABRT);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(text_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
