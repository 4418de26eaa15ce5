/*
 * test_inbound - the inbound SMTP server's state machine, in process
 *
 * Each test runs a small scenario (a client script against the core's
 * server) with runner_run() in this process, so AddressSanitizer's leak
 * check sees every session, body and plugin context the run allocated.
 * The scenario's own expectations say what the server must have done;
 * the test requires them met (exit code 0) and checks the odd cases the
 * scenario language cannot express directly.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "runner.h"

static const char world[] =
    "epoch 2020-03-26T00:00:00Z\n"
    "dns example.com MX 10 mx1.example.com\n"
    "dns mx1.example.com A 198.51.100.10\n"
    "remote 198.51.100.10\n";

/* run_text - world + body as one scenario; returns the exit code */
static int run_text(const char *body, struct run_result *r)
{
    size_t n = strlen(world) + strlen(body) + 1;
    char *text = malloc(n);
    ck_assert_ptr_nonnull(text);
    snprintf(text, n, "%s%s", world, body);
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_string("inbound.scn", text, &err);
    free(text);
    ck_assert_msg(sc != NULL, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    struct run_opts o;
    memset(&o, 0, sizeof o);
    int code = runner_run(sc, &o, r);
    scn_free(sc);
    return code;
}

/* expect_pass - the scenario's expectations all hold */
static void expect_pass(const char *body)
{
    struct run_result r;
    int code = run_text(body, &r);
    for (int i = 0; i < r.nviolations; i++)
        fprintf(stderr, "violation: %s\n", r.violations[i]);
    for (int i = 0; i < r.nexp; i++)
        if (r.exp[i].diff)
            fprintf(stderr, "line %d: %s\n%s", r.exp[i].line, r.exp[i].what, r.exp[i].diff);
    if (r.error)
        fprintf(stderr, "error: %s\n", r.error);
    ck_assert_int_eq(code, 0);
    run_result_free(&r);
}

/* Pipelined commands in one write are answered one by one, in order. */
START_TEST(pipelined_commands_in_order)
{
    expect_pass(
        "client 203.0.113.50\n"
        "  expect 220\n"
        "  send-raw \"EHLO c.test\\r\\nMAIL FROM:<a@c.test>\\r\\nRCPT TO:<b@example.com>\\r\\nDATA\\r\\n\"\n"
        "  expect 250\n  expect 250\n  expect 250\n  expect 354\n"
        "  send-data \"x\"\n  expect 250\n  quit\n"
        "expect trace in order\n"
        "  inbound command line=\"EHLO c.test\"\n"
        "  inbound reply line=\"250 AUTH PLAIN LOGIN\"\n"
        "  inbound command line=\"MAIL FROM:<a@c.test>\"\n"
        "  inbound reply line=\"250 2.1.0 Ok\"\n"
        "  inbound command line=\"RCPT TO:<b@example.com>\"\n"
        "  inbound reply line=\"250 2.1.5 Ok\"\n"
        "  inbound command line=DATA\n"
        "expect never trace client unexpected\n"
        "expect message 1001 delivered\n"
        "expect message 1001 intact\n");
}
END_TEST

/* Bare LF line ends, a data line longer than the streaming chunk, and a
 * dot-only line inside the data: the body arrives intact. */
START_TEST(long_lines_and_dots_intact)
{
    /* Two writes of 3000 bytes without a line end: more than the
     * server's 4096-byte chunk, so the line is streamed into the body. */
    char body[12000];
    int n = snprintf(body, sizeof body,
                     "client 203.0.113.50\n"
                     "  expect 220\n  send HELO c.test\n  expect 250\n"
                     "  send MAIL FROM:<>\n  expect 250\n"
                     "  send RCPT TO:<b@example.com>\n  expect 250\n"
                     "  send DATA\n  expect 354\n  send-raw \"Subject: long\\n\\n..\\n.x\\n\"\n");
    for (int k = 0; k < 2; k++) {
        n += snprintf(body + n, sizeof body - (size_t)n, "  send-raw \"");
        for (int i = 0; i < 3000; i++)
            body[n++] = 'y';
        n += snprintf(body + n, sizeof body - (size_t)n, "\"\n");
    }
    snprintf(body + n, sizeof body - (size_t)n,
             "  send-raw \"\\r\\n.\\r\\n\"\n  expect 250\n  quit\n"
             "expect trace in order\n  inbound message msg=1001 from=\"\"\n"
             "expect message 1001 delivered\nexpect message 1001 intact\n");
    expect_pass(body);
}
END_TEST

/* AUTH PLAIN with the 334 continuation, a cancelled AUTH and a response
 * that is not base64. */
START_TEST(auth_continuations)
{
    expect_pass(
        "user u p\n"
        "client 203.0.113.50\n"
        "  expect 220\n  send EHLO c.test\n  expect 250\n"
        "  send AUTH PLAIN\n  expect 334\n  send *\n  expect 501\n"
        "  send AUTH PLAIN !!!!\n  expect 501\n"
        "  send AUTH LOGIN\n  expect 334\n  send %%%\n  expect 501\n"
        "  send AUTH PLAIN\n  expect 334\n  send AHUAcA==\n  expect 235\n  quit\n"
        "expect trace in order\n"
        "  inbound reply line=\"501 5.7.0 Error: authentication cancelled\"\n"
        "  inbound reply line=\"501 5.5.2 Error: cannot decode the AUTH PLAIN response\"\n"
        "  inbound reply line=\"501 5.5.2 Error: cannot decode the AUTH LOGIN response\"\n"
        "  inbound auth user=u result=accepted\n"
        "expect never trace client unexpected\n");
}
END_TEST

/* A client that resets mid-session, one that connects after the run's
 * work is done and one that never ends: every session is closed once and
 * nothing leaks. */
START_TEST(resets_and_shutdown)
{
    expect_pass(
        "run for 20s\n"
        "client 203.0.113.50\n  expect 220\n  send EHLO c.test\n  reset\n"
        "client 203.0.113.51 at 1s\n  expect 220\n  send NOOP\n  expect 250\n"
        "expect trace in order\n"
        "  inbound close conn=4 reason=reset\n"
        "  inbound close conn=4 reason=shutdown\n"
        "expect count trace inbound close = 2\n");
}
END_TEST

/* MailerQ-style plugins in process: chains held by timers, a retry, a
 * rewritten MIME, and a client that leaves while a plugin holds its
 * session (the close waits for the plugin, then mq_smtp_in_close runs). */
START_TEST(plugins_hold_and_client_leaves)
{
    expect_pass(
        "plugin mq_logger.so\nplugin mq_hold.so:500\nplugin mq_retry.so\nplugin mq_rewrite.so\n"
        "client 203.0.113.50\n"
        "  expect 220\n  send EHLO c.test\n  expect 250\n"
        "  send MAIL FROM:<a@c.test>\n  expect 250\n"
        "  send RCPT TO:<b@example.com>\n  expect 250\n"
        "  send DATA\n  expect 354\n  send-data \"x\"\n  expect 250\n"
        "  send MAIL FROM:<a@c.test>\n  expect 250\n"
        "  send RCPT TO:<c@example.com>\n  delay 100ms\n  reset\n"
        "expect trace in order\n"
        "  inbound message msg=1001 size=22\n"
        "  inbound command line=\"RCPT TO:<c@example.com>\"\n"
        "  inbound close conn=4 reason=reset\n"
        "  mq continue plugin=mq_hold.so\n"
        "  mq mq_smtp_in_close plugin=mq_logger.so conn=4\n"
        "expect never trace mq misbehaviour\n"
        "expect message 1001 delivered\n"
        "expect message 1001 intact\n");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("inbound");
    TCase *tc = tcase_create("server");
    tcase_add_test(tc, pipelined_commands_in_order);
    tcase_add_test(tc, long_lines_and_dots_intact);
    tcase_add_test(tc, auth_continuations);
    tcase_add_test(tc, resets_and_shutdown);
    tcase_add_test(tc, plugins_hold_and_client_leaves);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
