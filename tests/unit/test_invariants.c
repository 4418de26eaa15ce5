/*
 * test_invariants - every invariant the runner checks, broken on purpose
 *
 * Built with -DMTASIM_TEST_FAULTS: mta_test_fault makes the core (or the
 * trace) commit one specific bug.  Each test runs a small scenario with
 * one fault and requires exit code 3 and the violation that names it; the
 * control run without a fault must pass.  If a check in runner.c stopped
 * working, its test here would fail.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "runner.h"
#include "test_faults.h"

/* Three messages to one MX that accepts, one of them after a 4xx. */
static const char world[] =
    "scenario invariants\n"
    "epoch 2020-03-26T00:00:00Z\n"
    "config max_outbound_connections 1\n"
    "config retry_interval 1m\n"
    "run for 10m\n"
    "dns example.com MX 10 mx1.example.com\n"
    "dns mx1.example.com A 198.51.100.10\n"
    "remote 198.51.100.10\n"
    "  rcpt 451 4.7.1 later   when session 1\n"
    "inject 1 from <a@sender.test> to <b@example.com>\n"
    "inject 2 from <a@sender.test> to <c@example.com>\n"
    "inject 3 from <a@sender.test> to <d@example.com>\n";

/* run_with_fault - run the world with fault f; the result's violations */
static struct run_result run_with_fault(int fault)
{
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_string("invariants.scn", world, &err);
    ck_assert_msg(sc != NULL, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    /* End while the last session is still idle, so shutdown has one to close. */
    if (fault == FAULT_SKIP_CLOSE)
        sc->run_for = 77 * 1000000LL;   /* the retry runs at the 75 s scan tick */
    struct run_opts o;
    memset(&o, 0, sizeof o);
    struct run_result r;
    mta_test_fault = fault;
    runner_run(sc, &o, &r);
    mta_test_fault = FAULT_NONE;
    scn_free(sc);
    return r;
}

static int has_violation(const struct run_result *r, const char *needle)
{
    for (int i = 0; i < r->nviolations; i++)
        if (strstr(r->violations[i], needle))
            return 1;
    return 0;
}

static void expect_violation(int fault, const char *needle)
{
    struct run_result r = run_with_fault(fault);
    ck_assert_int_eq(r.exit_code, 3);
    ck_assert_msg(has_violation(&r, needle), "no violation mentioning '%s' (got %d violations%s%s)",
                  needle, r.nviolations, r.nviolations ? ": " : "",
                  r.nviolations ? r.violations[0] : "");
    run_result_free(&r);
}

START_TEST(test_control_run_is_clean)
{
    struct run_result r = run_with_fault(FAULT_NONE);
    ck_assert_int_eq(r.nviolations, 0);
    ck_assert_int_eq(r.exit_code, 0);
    run_result_free(&r);
}
END_TEST

START_TEST(test_connection_never_closed)
{
    expect_violation(FAULT_SKIP_CLOSE, "never closed");
}
END_TEST

START_TEST(test_connection_closed_twice)
{
    expect_violation(FAULT_DOUBLE_CLOSE, "close(s) of a descriptor that was not open");
}
END_TEST

START_TEST(test_inc_dec_unbalanced)
{
    expect_violation(FAULT_SKIP_DEC_OUTBOUND, "dec_outbound_connections");
}
END_TEST

START_TEST(test_message_lost)
{
    expect_violation(FAULT_LOSE_MESSAGE, "no longer holds it");
}
END_TEST

START_TEST(test_delivered_twice)
{
    expect_violation(FAULT_DELIVER_TWICE, "already final");
}
END_TEST

START_TEST(test_connection_limit_exceeded)
{
    expect_violation(FAULT_IGNORE_CONN_LIMIT, "concurrent connections to one domain, limit 1");
}
END_TEST

START_TEST(test_time_went_backwards)
{
    expect_violation(FAULT_TIME_BACKWARDS, "virtual time went backwards");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("invariants");
    TCase *tc = tcase_create("broken on purpose");
    tcase_add_test(tc, test_control_run_is_clean);
    tcase_add_test(tc, test_connection_never_closed);
    tcase_add_test(tc, test_connection_closed_twice);
    tcase_add_test(tc, test_inc_dec_unbalanced);
    tcase_add_test(tc, test_message_lost);
    tcase_add_test(tc, test_delivered_twice);
    tcase_add_test(tc, test_connection_limit_exceeded);
    tcase_add_test(tc, test_time_went_backwards);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
