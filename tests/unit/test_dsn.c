/*
 * test_dsn - RFC 3463 status classification and the RFC 3464 DSN writer
 *
 * The status functions (core/dsn_status.c) and dsn_write() (core/
 * dsn_writer.c) are pure, so each case states its input and the exact
 * text it must give.  The writer's output is also checked structurally:
 * CRLF everywhere, lines within RFC 5322's limit, the MIME parts and one
 * per-recipient field group per recipient, in order.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dsn_status.h"
#include "dsn_writer.h"

static const char *of_reply(int code, int c, int s, int d, enum dsn_class cls)
{
    static char out[DSN_STATUS_MAX];
    dsn_status_of_reply(code, c, s, d, cls, out);
    return out;
}

static const char *for_class(const char *st, enum dsn_class cls)
{
    static char out[DSN_STATUS_MAX];
    dsn_status_for_class(st, cls, out);
    return out;
}

START_TEST(test_status_valid)
{
    ck_assert(dsn_status_valid("5.1.10"));
    ck_assert(dsn_status_valid("2.0.0"));
    ck_assert(dsn_status_valid("4.999.999"));
    ck_assert(!dsn_status_valid(NULL));
    ck_assert(!dsn_status_valid(""));
    ck_assert(!dsn_status_valid("3.1.1"));         /* class 2, 4 or 5 only */
    ck_assert(!dsn_status_valid("5.1"));
    ck_assert(!dsn_status_valid("5..1"));
    ck_assert(!dsn_status_valid("5.1.1000"));      /* at most three digits */
    ck_assert(!dsn_status_valid("5.1.1 "));
    ck_assert(!dsn_status_valid("55.1.1"));
}
END_TEST

START_TEST(test_status_of_reply)
{
    /* The reply's own code when it has one of its class. */
    ck_assert_str_eq(of_reply(550, 5, 1, 1, DSN_CLASS_PERMANENT), "5.1.1");
    ck_assert_str_eq(of_reply(421, 4, 3, 2, DSN_CLASS_TRANSIENT), "4.3.2");
    /* None: the reply's class with .0.0, as Postfix writes it. */
    ck_assert_str_eq(of_reply(250, -1, -1, -1, DSN_CLASS_SUCCESS), "2.0.0");
    ck_assert_str_eq(of_reply(451, -1, -1, -1, DSN_CLASS_TRANSIENT), "4.0.0");
    /* One of another class than the reply is ignored. */
    ck_assert_str_eq(of_reply(451, 5, 1, 1, DSN_CLASS_TRANSIENT), "4.0.0");
    /* The class follows the outcome: 552 read as transient, a 4xx made permanent. */
    ck_assert_str_eq(of_reply(552, 5, 5, 3, DSN_CLASS_TRANSIENT), "4.5.3");
    ck_assert_str_eq(of_reply(451, 4, 7, 1, DSN_CLASS_PERMANENT), "5.7.1");
    /* No reply at all. */
    ck_assert_str_eq(of_reply(0, -1, -1, -1, DSN_CLASS_TRANSIENT), "4.0.0");
    ck_assert_str_eq(of_reply(0, 5, 1, 1, DSN_CLASS_PERMANENT), "5.0.0");
}
END_TEST

START_TEST(test_status_for_class)
{
    ck_assert_str_eq(for_class(DSN_STATUS_NULL_MX, DSN_CLASS_PERMANENT), "5.1.10");
    ck_assert_str_eq(for_class(DSN_STATUS_UNROUTABLE, DSN_CLASS_PERMANENT), "5.4.4");
    ck_assert_str_eq(for_class(DSN_STATUS_EXPIRED, DSN_CLASS_PERMANENT), "5.4.7");
    ck_assert_str_eq(for_class(DSN_STATUS_NO_ANSWER, DSN_CLASS_TRANSIENT), "4.4.1");
    ck_assert_str_eq(for_class(DSN_STATUS_BAD_CONNECTION, DSN_CLASS_TRANSIENT), "4.4.2");
    ck_assert_str_eq(for_class(NULL, DSN_CLASS_TRANSIENT), "4.0.0");
    ck_assert_str_eq(for_class("bogus", DSN_CLASS_PERMANENT), "5.0.0");
    ck_assert_str_eq(for_class("2.1.5", DSN_CLASS_SUCCESS), "2.1.5");

    char out[DSN_STATUS_MAX];
    dsn_status_format(5, 1, 10, out);
    ck_assert_str_eq(out, "5.1.10");
    dsn_status_format(4, 999, 0, out);
    ck_assert_str_eq(out, "4.999.0");
    dsn_status_format(3, 1, 1, out);
    ck_assert_str_eq(out, "");
    dsn_status_format(5, 1000, 1, out);
    ck_assert_str_eq(out, "");
    dsn_status_format(-1, -1, -1, out);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_date)
{
    char d[40];
    dsn_date(0, d);
    ck_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 +0000");
    dsn_date(1585180800 + 3 * 3600 + 4 * 60 + 5, d);
    ck_assert_str_eq(d, "Thu, 26 Mar 2020 03:04:05 +0000");
    dsn_date(951782400, d);         /* a leap day */
    ck_assert_str_eq(d, "Tue, 29 Feb 2000 00:00:00 +0000");
}
END_TEST

/* The report every writer test starts from: two recipients, one refused
 * by a remote, one failed with no reply (a null MX). */
static const char original[] = "From: <a@sender.test>\nSubject: hi\n\nbody line\n.dot line\n";
static struct dsn_rcpt rcpts[2] = {
    { "bob@example.com", NULL, "5.1.1", "mx1.example.com", "550 5.1.1 no such user", NULL },
    { "frank@nomail.test", NULL, "5.1.10", NULL, NULL, "nomail.test has a null MX" },
};

static struct dsn_report base_report(void)
{
    struct dsn_report r = {
        .reporting_mta = "mta.example", .envid = NULL, .sender = "a@sender.test",
        .message_id = "dsn.1000000001@mta.example", .boundary = "b-1000000001",
        .arrival = 1585180800, .date = 1585180800 + 60, .nrcpts = 2, .rcpts = rcpts,
        .original = original, .original_len = sizeof original - 1, .return_full = 0,
    };
    return r;
}

/* status_part - the message/delivery-status part of text (malloc'd) */
static char *status_part(const char *text)
{
    const char *start = strstr(text, "Content-Type: message/delivery-status\r\n\r\n");
    ck_assert_ptr_nonnull(start);
    start += strlen("Content-Type: message/delivery-status\r\n\r\n");
    const char *end = strstr(start, "--b-1000000001");
    ck_assert_ptr_nonnull(end);
    return strndup(start, (size_t)(end - start));
}

START_TEST(test_writer_fields)
{
    struct dsn_report rep = base_report();
    size_t len;
    char *text = dsn_write(&rep, &len);
    ck_assert_uint_eq(len, strlen(text));
    /* The header. */
    ck_assert_ptr_nonnull(strstr(text, "From: MAILER-DAEMON@mta.example"));
    ck_assert_ptr_nonnull(strstr(text, "\r\nTo: <a@sender.test>\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "\r\nDate: Thu, 26 Mar 2020 00:01:00 +0000\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "\r\nMessage-ID: <dsn.1000000001@mta.example>\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "\r\nAuto-Submitted: auto-replied\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "\r\nMIME-Version: 1.0\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                                       " boundary=\"b-1000000001\"\r\n"));
    /* Three parts and the closing boundary. */
    ck_assert_ptr_nonnull(strstr(text, "--b-1000000001\r\nContent-Type: text/plain; charset=us-ascii\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "--b-1000000001\r\nContent-Type: message/delivery-status\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "--b-1000000001\r\nContent-Type: text/rfc822-headers\r\n"));
    ck_assert_str_eq(text + len - strlen("\r\n--b-1000000001--\r\n"), "\r\n--b-1000000001--\r\n");

    /* The machine part: per-message fields, then one group per recipient. */
    char *st = status_part(text);
    ck_assert_str_eq(st,
        "Reporting-MTA: dns; mta.example\r\n"
        "Arrival-Date: Thu, 26 Mar 2020 00:00:00 +0000\r\n"
        "\r\n"
        "Final-Recipient: rfc822; bob@example.com\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; mx1.example.com\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
        "Last-Attempt-Date: Thu, 26 Mar 2020 00:01:00 +0000\r\n"
        "\r\n"
        "Final-Recipient: rfc822; frank@nomail.test\r\n"
        "Action: failed\r\n"
        "Status: 5.1.10\r\n"
        "Last-Attempt-Date: Thu, 26 Mar 2020 00:01:00 +0000\r\n"
        "\r\n");
    free(st);
    /* The person's part names each recipient and why. */
    ck_assert_ptr_nonnull(strstr(text, "<bob@example.com>: host mx1.example.com said: 550 5.1.1 no such user"));
    ck_assert_ptr_nonnull(strstr(text, "<frank@nomail.test>: nomail.test has a null MX"));
    /* The header of the original, with CRLF, and not its body. */
    ck_assert_ptr_nonnull(strstr(text, "From: <a@sender.test>\r\nSubject: hi\r\n\r\n"));
    ck_assert_ptr_null(strstr(text, "body line"));
    free(text);
}
END_TEST

START_TEST(test_writer_lines)
{
    /* A long diagnostic with a control character, and the full message back. */
    char diag[600];
    memset(diag, 0, sizeof diag);
    strcpy(diag, "550 5.7.1 ");
    for (int i = 0; i < 40; i++)
        strcat(diag, "policy ");
    strcat(diag, "end\x01mark");
    struct dsn_rcpt one = { "bob@example.com", "bob@example.com", "5.7.1", "mx1.example.com", diag, NULL };
    struct dsn_report rep = base_report();
    rep.nrcpts = 1;
    rep.rcpts = &one;
    rep.envid = "ENV-7";
    rep.return_full = 1;
    size_t len;
    char *text = dsn_write(&rep, &len);
    /* Every line ends in CRLF and stays within 78 characters except
     * unbreakable words; none approaches RFC 5322's 998. */
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            ck_assert_msg(i > 0 && text[i - 1] == '\r', "bare LF at %zu", i);
            col = 0;
            continue;
        }
        if (text[i] != '\r')
            ck_assert_msg(++col <= 78, "line too long at %zu", i);
    }
    ck_assert_ptr_nonnull(strstr(text, "Original-Envelope-Id: ENV-7\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "Original-Recipient: rfc822;bob@example.com\r\n"));
    /* Folded: the continuation starts with a blank; the control byte is '?'. */
    ck_assert_ptr_nonnull(strstr(text, "Diagnostic-Code: smtp; 550 5.7.1 policy policy"));
    ck_assert_ptr_nonnull(strstr(text, "\r\n policy"));
    ck_assert_ptr_nonnull(strstr(text, "end?mark"));
    ck_assert_ptr_null(strchr(text, '\x01'));
    /* RET=FULL: the whole message, dot line included, as message/rfc822. */
    ck_assert_ptr_nonnull(strstr(text, "Content-Type: message/rfc822\r\n\r\nFrom: <a@sender.test>\r\n"));
    ck_assert_ptr_nonnull(strstr(text, "\r\n\r\nbody line\r\n.dot line\r\n"));
    /* The same report, the same bytes. */
    size_t len2;
    char *again = dsn_write(&rep, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert_mem_eq(text, again, len);
    free(again);
    free(text);
}
END_TEST

START_TEST(test_writer_no_header_end)
{
    /* An original with no empty line is all header; an empty one returns nothing. */
    struct dsn_report rep = base_report();
    rep.original = "X-Only: header";
    rep.original_len = strlen(rep.original);
    size_t len;
    char *text = dsn_write(&rep, &len);
    ck_assert_ptr_nonnull(strstr(text, "text/rfc822-headers\r\n\r\nX-Only: header\r\n\r\n--b-1000000001--\r\n"));
    free(text);
    rep.original = NULL;
    rep.original_len = 0;
    text = dsn_write(&rep, &len);
    ck_assert_ptr_nonnull(strstr(text, "text/rfc822-headers\r\n\r\n\r\n--b-1000000001--\r\n"));
    free(text);
}
END_TEST

static Suite *dsn_suite(void)
{
    Suite *s = suite_create("dsn");
    TCase *tc = tcase_create("status");
    tcase_add_test(tc, test_status_valid);
    tcase_add_test(tc, test_status_of_reply);
    tcase_add_test(tc, test_status_for_class);
    suite_add_tcase(s, tc);
    tc = tcase_create("writer");
    tcase_add_test(tc, test_date);
    tcase_add_test(tc, test_writer_fields);
    tcase_add_test(tc, test_writer_lines);
    tcase_add_test(tc, test_writer_no_header_end);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dsn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
