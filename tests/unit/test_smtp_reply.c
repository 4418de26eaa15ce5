/*
 * test_smtp_reply - libcheck suite for core/smtp_reply.c
 *
 * SYNOPSIS
 *   test_smtp_reply        (exit status 0 when every test passes)
 *
 * DESCRIPTION
 *   Covers single and multi-line replies, replies arriving one byte at a
 *   time, pipelined replies in one buffer, enhanced status codes, and the
 *   malformed cases: mixed codes, garbage, 1xx, over-long lines, too many
 *   lines.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

static struct smtp_reply r;
static char err[256];

/* parse - run the parser over a NUL-terminated string */
static int parse(const char *s, size_t *used)
{
    return smtp_reply_parse(s, strlen(s), &r, used, err, sizeof err);
}

START_TEST(test_single_line)
{
    size_t used;
    const char *s = "250 2.0.0 queued as 1234\r\n";
    ck_assert_int_eq(parse(s, &used), 1);
    ck_assert_uint_eq(used, strlen(s));
    ck_assert_int_eq(r.code, 250);
    ck_assert_int_eq(r.nlines, 1);
    ck_assert_str_eq(r.text, "2.0.0 queued as 1234");
    ck_assert_str_eq(r.first_line, "250 2.0.0 queued as 1234");
    ck_assert_int_eq(r.enh_class, 2);
    ck_assert_int_eq(r.enh_subject, 0);
    ck_assert_int_eq(r.enh_detail, 0);
    ck_assert_int_eq(r.bare_lf, 0);
    ck_assert_int_eq(r.truncated, 0);
}
END_TEST

START_TEST(test_multiline_ehlo)
{
    size_t used;
    const char *s = "250-mx1.example.com Hello\r\n"
                    "250-PIPELINING\r\n"
                    "250-8BITMIME\r\n"
                    "250 SIZE 10485760\r\n";
    ck_assert_int_eq(parse(s, &used), 1);
    ck_assert_uint_eq(used, strlen(s));
    ck_assert_int_eq(r.code, 250);
    ck_assert_int_eq(r.nlines, 4);
    ck_assert_str_eq(r.text, "mx1.example.com Hello\nPIPELINING\n8BITMIME\nSIZE 10485760");
    ck_assert_str_eq(r.first_line, "250-mx1.example.com Hello");
    ck_assert_int_eq(r.enh_class, -1);
}
END_TEST

START_TEST(test_incomplete)
{
    size_t used = 99;
    ck_assert_int_eq(parse("", &used), 0);
    ck_assert_uint_eq(used, 0);
    ck_assert_int_eq(parse("25", &used), 0);
    ck_assert_int_eq(parse("250-first\r\n", &used), 0);
    ck_assert_int_eq(parse("250-first\r\n250 last\r", &used), 0);
    ck_assert_uint_eq(used, 0);
}
END_TEST

START_TEST(test_one_byte_at_a_time)
{
    const char *s = "220-mx.example.com ESMTP\r\n220-no UCE\r\n220 ready\r\n";
    size_t n = strlen(s), used = 0;
    char buf[128];

    /* Copy into a buffer that grows by one byte per call, as a socket would fill it. */
    for (size_t k = 0; k < n; k++) {
        buf[k] = s[k];
        int rc = smtp_reply_parse(buf, k + 1, &r, &used, err, sizeof err);
        if (k + 1 < n) {
            ck_assert_msg(rc == 0, "complete after %zu of %zu bytes", k + 1, n);
            ck_assert_uint_eq(used, 0);
        } else {
            ck_assert_int_eq(rc, 1);
            ck_assert_uint_eq(used, n);
        }
    }
    ck_assert_int_eq(r.code, 220);
    ck_assert_int_eq(r.nlines, 3);
    ck_assert_str_eq(r.text, "mx.example.com ESMTP\nno UCE\nready");
}
END_TEST

START_TEST(test_pipelined)
{
    const char *s = "250 2.1.0 sender ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n";
    size_t used, off = 0;

    ck_assert_int_eq(smtp_reply_parse(s, strlen(s), &r, &used, err, sizeof err), 1);
    ck_assert_int_eq(r.code, 250);
    ck_assert_int_eq(r.enh_subject, 1);
    off += used;
    ck_assert_int_eq(smtp_reply_parse(s + off, strlen(s) - off, &r, &used, err, sizeof err), 1);
    ck_assert_int_eq(r.code, 550);
    ck_assert_int_eq(r.enh_class, 5);
    ck_assert_int_eq(r.enh_subject, 1);
    ck_assert_int_eq(r.enh_detail, 1);
    ck_assert_str_eq(r.text, "5.1.1 no such user");
    off += used;
    ck_assert_int_eq(smtp_reply_parse(s + off, strlen(s) - off, &r, &used, err, sizeof err), 1);
    ck_assert_int_eq(r.code, 354);
    ck_assert_int_eq(r.enh_class, -1);
    off += used;
    ck_assert_uint_eq(off, strlen(s));
    ck_assert_int_eq(smtp_reply_parse(s + off, 0, &r, &used, err, sizeof err), 0);
}
END_TEST

START_TEST(test_enhanced_codes)
{
    size_t used;

    ck_assert_int_eq(parse("451 4.7.1 greylisted, try later\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, 4);
    ck_assert_int_eq(r.enh_subject, 7);
    ck_assert_int_eq(r.enh_detail, 1);

    /* Three-digit subject and detail. */
    ck_assert_int_eq(parse("550 5.123.456\r\n", &used), 1);
    ck_assert_int_eq(r.enh_subject, 123);
    ck_assert_int_eq(r.enh_detail, 456);

    /* On every line of a multi-line reply: the first line's is taken. */
    ck_assert_int_eq(parse("550-5.7.1 blocked\r\n550 5.7.1 see url\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, 5);
    ck_assert_int_eq(r.enh_detail, 1);

    /* Absent. */
    ck_assert_int_eq(parse("250 ok\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, -1);
    ck_assert_int_eq(r.enh_subject, -1);
    ck_assert_int_eq(r.enh_detail, -1);

    /* Class differs from the reply code's first digit: not trusted. */
    ck_assert_int_eq(parse("250 5.0.0 odd server\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, -1);
    ck_assert_int_eq(r.enh_subject, -1);
    ck_assert_str_eq(r.text, "5.0.0 odd server");

    /* Not a code: glued to text, four parts, class 3, four-digit subject. */
    ck_assert_int_eq(parse("250 2.0.0queued\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, -1);
    ck_assert_int_eq(parse("250 2.0.0.1 x\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, -1);
    ck_assert_int_eq(parse("354 3.0.0 go\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, -1);
    ck_assert_int_eq(parse("250 2.1000.0 x\r\n", &used), 1);
    ck_assert_int_eq(r.enh_class, -1);
}
END_TEST

START_TEST(test_code_without_text)
{
    size_t used;

    ck_assert_int_eq(parse("250\r\n", &used), 1);
    ck_assert_uint_eq(used, 5);
    ck_assert_int_eq(r.code, 250);
    ck_assert_str_eq(r.text, "");
    ck_assert_str_eq(r.first_line, "250");
    ck_assert_int_eq(r.enh_class, -1);

    ck_assert_int_eq(parse("250-\r\n250\r\n", &used), 1);
    ck_assert_int_eq(r.nlines, 2);
    ck_assert_str_eq(r.text, "\n");
}
END_TEST

START_TEST(test_mixed_codes)
{
    size_t used;
    const char *s = "250-first\r\n251 second\r\n";

    ck_assert_int_eq(parse(s, &used), -1);
    ck_assert_uint_eq(used, strlen(s));
    ck_assert_ptr_nonnull(strstr(err, "line 2"));
    ck_assert_ptr_nonnull(strstr(err, "251"));
}
END_TEST

START_TEST(test_garbage)
{
    size_t used;

    ck_assert_int_eq(parse("hello world\r\n250 ok\r\n", &used), -1);
    ck_assert_uint_eq(used, strlen("hello world\r\n"));   /* only the bad line */
    ck_assert_ptr_nonnull(strstr(err, "line 1"));
    ck_assert_int_eq(parse("\r\n", &used), -1);
    ck_assert_int_eq(parse("25\r\n", &used), -1);
    ck_assert_int_eq(parse("250x\r\n", &used), -1);
    ck_assert_int_eq(parse("2a0 ok\r\n", &used), -1);
    ck_assert_int_eq(smtp_reply_parse("250 a\0b\r\n", 9, &r, &used, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
    /* 1xx and 0xx/6xx are not replies a client can get. */
    ck_assert_int_eq(parse("150 ok\r\n", &used), -1);
    ck_assert_int_eq(parse("099 ok\r\n", &used), -1);
    ck_assert_int_eq(parse("600 ok\r\n", &used), -1);
    /* A NULL err buffer is allowed. */
    ck_assert_int_eq(smtp_reply_parse("x\r\n", 3, &r, &used, NULL, 0), -1);
    ck_assert_uint_eq(used, 3);
}
END_TEST

START_TEST(test_overlong_line)
{
    size_t n = SMTP_REPLY_LINE_MAX + 16, used;
    char *s = malloc(n + 3);

    ck_assert_ptr_nonnull(s);
    memset(s, 'a', n);
    memcpy(s, "250 ", 4);

    /* Not ended yet, but already too long: rejected without waiting. */
    ck_assert_int_eq(smtp_reply_parse(s, n, &r, &used, err, sizeof err), -1);
    ck_assert_uint_eq(used, n);
    ck_assert_ptr_nonnull(strstr(err, "longer"));

    /* Ended. */
    memcpy(s + n, "\r\n", 3);
    ck_assert_int_eq(smtp_reply_parse(s, n + 2, &r, &used, err, sizeof err), -1);
    ck_assert_uint_eq(used, n + 2);

    /* Exactly at the bound: fine; the text fits. */
    memcpy(s + SMTP_REPLY_LINE_MAX, "\r\n", 3);
    ck_assert_int_eq(smtp_reply_parse(s, SMTP_REPLY_LINE_MAX + 2, &r, &used, err, sizeof err), 1);
    ck_assert_uint_eq(strlen(r.first_line), SMTP_REPLY_LINE_MAX);
    ck_assert_uint_eq(strlen(r.text), SMTP_REPLY_LINE_MAX - 4);
    /* At the bound and waiting for its LF after the CR: still incomplete. */
    ck_assert_int_eq(smtp_reply_parse(s, SMTP_REPLY_LINE_MAX + 1, &r, &used, err, sizeof err), 0);
    free(s);
}
END_TEST

START_TEST(test_bare_lf)
{
    size_t used;

    ck_assert_int_eq(parse("250-a\r\n250 b\n", &used), 1);
    ck_assert_int_eq(r.bare_lf, 1);
    ck_assert_str_eq(r.text, "a\nb");
    ck_assert_int_eq(parse("220 ready\n", &used), 1);
    ck_assert_int_eq(r.bare_lf, 1);
    ck_assert_str_eq(r.first_line, "220 ready");
    ck_assert_int_eq(parse("220 ready\r\n", &used), 1);
    ck_assert_int_eq(r.bare_lf, 0);
}
END_TEST

/* build_lines - nlines lines of "250-line NNN", the last with ' ' when last_final */
static char *build_lines(int nlines, int last_final, size_t *len)
{
    char *s = malloc((size_t)nlines * 20 + 1);
    size_t off = 0;

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < nlines; i++)
        off += (size_t)sprintf(s + off, "250%cline %03d\r\n",
                               (i == nlines - 1 && last_final) ? ' ' : '-', i);
    *len = off;
    return s;
}

START_TEST(test_too_many_lines)
{
    size_t len, used;
    char *s;

    s = build_lines(SMTP_REPLY_MAX_LINES, 1, &len);
    ck_assert_int_eq(smtp_reply_parse(s, len, &r, &used, err, sizeof err), 1);
    ck_assert_int_eq(r.nlines, SMTP_REPLY_MAX_LINES);
    free(s);

    s = build_lines(SMTP_REPLY_MAX_LINES + 1, 1, &len);
    ck_assert_int_eq(smtp_reply_parse(s, len, &r, &used, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "beyond"));
    free(s);

    /* The 128th line promising more is enough to know. */
    s = build_lines(SMTP_REPLY_MAX_LINES, 0, &len);
    ck_assert_int_eq(smtp_reply_parse(s, len, &r, &used, err, sizeof err), -1);
    ck_assert_uint_eq(used, len);
    free(s);
}
END_TEST

START_TEST(test_text_truncated)
{
    /* 8 lines of 2000 bytes do not fit SMTP_REPLY_TEXT_MAX: cut, terminated, flagged. */
    size_t linelen = 2000, nl = 8, len = 0, used;
    char *s = malloc(nl * (linelen + 2));

    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < nl; i++) {
        memset(s + len, 'x', linelen);
        memcpy(s + len, i + 1 < nl ? "421-" : "421 ", 4);
        memcpy(s + len + linelen, "\r\n", 2);
        len += linelen + 2;
    }
    ck_assert_int_eq(smtp_reply_parse(s, len, &r, &used, err, sizeof err), 1);
    ck_assert_uint_eq(used, len);
    ck_assert_int_eq(r.truncated, 1);
    ck_assert_uint_eq(strlen(r.text), SMTP_REPLY_TEXT_MAX - 1);
    free(s);
}
END_TEST

/* smtp_reply_suite - every test case of this file */
static Suite *smtp_reply_suite(void)
{
    Suite *s = suite_create("smtp_reply");
    TCase *tc = tcase_create("parse");

    tcase_add_test(tc, test_single_line);
    tcase_add_test(tc, test_multiline_ehlo);
    tcase_add_test(tc, test_incomplete);
    tcase_add_test(tc, test_one_byte_at_a_time);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_enhanced_codes);
    tcase_add_test(tc, test_code_without_text);
    tcase_add_test(tc, test_mixed_codes);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_overlong_line);
    tcase_add_test(tc, test_bare_lf);
    tcase_add_test(tc, test_too_many_lines);
    tcase_add_test(tc, test_text_truncated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(smtp_reply_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
