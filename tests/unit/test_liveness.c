/*
 * test_liveness - the storm and duplicate checks of sim/liveness.c
 *
 * The storm check is fed connects and writes by hand on a scheduler whose
 * clock the test moves; the duplicate check reads traces written here
 * record by record, the way the core and simenv write them.  Each case
 * states the dialogue and whether it is a duplicate, so a check that
 * stopped matching replies to commands, or stopped ignoring a lost
 * end-of-data reply, fails here.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "liveness.h"
#include "sim_sched.h"
#include "trace_store.h"

#define SEC 1000000LL

static void tick(void *arg) { (void)arg; }

/* advance - move s's clock to t */
static void advance(struct sim_sched *s, mta_usec_t t)
{
    sim_sched_at(s, t, tick, NULL);
    sim_sched_run(s, -1, 0);
}

START_TEST(test_storm_counts_attempts_in_the_window)
{
    struct sim_sched *s = sim_sched_create(0);
    struct liveness *lv = liveness_create(s, 3, 10 * SEC);
    /* Three attempts within 10 s: the limit, not over it. */
    for (int i = 0; i < 3; i++) {
        advance(s, (i + 1) * SEC);
        liveness_connect(lv, 3, 0xCB007105);
    }
    ck_assert_ptr_null(liveness_storm(lv));
    /* The first left the window (it is 10 s old at 11 s): still fine. */
    advance(s, 11 * SEC);
    liveness_connect(lv, 3, 0xCB007105);
    ck_assert_ptr_null(liveness_storm(lv));
    /* Another host does not count against this one. */
    liveness_connect(lv, 4, 0xCB007106);
    ck_assert_ptr_null(liveness_storm(lv));
    /* At 12 s the window holds 3, 11 and 12: the limit again; one more
     * at the same instant is a fourth: a storm, named. */
    advance(s, 12 * SEC);
    liveness_connect(lv, 3, 0xCB007105);
    ck_assert_ptr_null(liveness_storm(lv));
    liveness_connect(lv, 3, 0xCB007105);
    ck_assert_ptr_nonnull(liveness_storm(lv));
    ck_assert_msg(strstr(liveness_storm(lv), "storm: 4 connection attempts to 203.0.113.5 "
                         "within 10s") != NULL, "%s", liveness_storm(lv));
    liveness_destroy(lv);
    sim_sched_destroy(s);
}
END_TEST

START_TEST(test_storm_reset_by_a_transaction)
{
    struct sim_sched *s = sim_sched_create(0);
    struct liveness *lv = liveness_create(s, 2, 60 * SEC);
    for (int round = 0; round < 10; round++) {
        advance(s, (round + 1) * SEC);
        liveness_connect(lv, 3, 0xC6336410);
        liveness_write(lv, 3, "EHLO mtasim.test\r\n", 18);        /* no progress */
        liveness_connect(lv, 4, 0xC6336410);
        liveness_write(lv, 4, "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\n", 42);
    }
    ck_assert_ptr_null(liveness_storm(lv));
    /* Off: no limit at all. */
    struct liveness *off = liveness_create(s, 0, 60 * SEC);
    for (int i = 0; i < 1000; i++)
        liveness_connect(off, -1, 0xC6336410);
    ck_assert_ptr_null(liveness_storm(off));
    liveness_destroy(off);
    liveness_destroy(lv);
    sim_sched_destroy(s);
}
END_TEST

/* A trace written record by record. */
struct tb {
    struct trace_store *ts;
    mta_usec_t t;
};

static void rec(struct tb *b, const char *kind, const char *name, const char *k1, const char *v1,
                const char *k2, const char *v2)
{
    struct mta_trace_rec r;
    memset(&r, 0, sizeof r);
    r.kind = kind;
    r.name = name;
    const char *keys[2] = { k1, k2 }, *vals[2] = { v1, v2 };
    for (int i = 0; i < 2 && keys[i]; i++) {
        struct mta_trace_field *f = &r.field[r.nfields++];
        f->key = keys[i];
        f->str = vals[i];
        f->len = strlen(vals[i]);
        char *end;
        long long n = strtoll(vals[i], &end, 10);
        f->has_num = *vals[i] && *end == '\0';
        f->num = n;
    }
    trace_store_add(b->ts, b->t, &r);
    b->t += 1000;
}

static void send_(struct tb *b, const char *line) { rec(b, "smtp", "send", "conn", "3", "line", line); }
static void recv_(struct tb *b, const char *line) { rec(b, "smtp", "recv", "conn", "3", "line", line); }

/* session - one pipelined session delivering msg to bob (and, with two,
 * carol); lose_dot: the connection closes before the end-of-data reply */
static void session(struct tb *b, const char *msg, int two, int lose_dot)
{
    rec(b, "conn", "open", "fd", "3", NULL, NULL);
    recv_(b, "220 mx ESMTP");
    send_(b, "EHLO mtasim.test");
    recv_(b, "250-mx");
    recv_(b, "250 PIPELINING");
    rec(b, "queue", "attempt", "msg", msg, "conn", "3");
    send_(b, "MAIL FROM:<a@sender.test>");
    send_(b, "RCPT TO:<bob@example.com>");
    if (two)
        send_(b, "RCPT TO:<carol@example.com>");
    send_(b, "DATA");
    recv_(b, "250 2.1.0 Ok");
    recv_(b, "250 2.1.5 Ok");
    if (two)
        recv_(b, "550 5.1.1 no");       /* carol is refused: not delivered */
    recv_(b, "354 go ahead");
    rec(b, "smtp", "send", "conn", "3", "data_bytes", "120");
    if (!lose_dot)
        recv_(b, "250 2.0.0 queued");
    rec(b, "conn", "close", "fd", "3", NULL, NULL);
}

static int nreports;
static char last_report[800];
static void on_report(void *arg, const char *text)
{
    (void)arg;
    nreports++;
    snprintf(last_report, sizeof last_report, "%s", text);
}

static int duplicates(struct tb *b)
{
    nreports = 0;
    last_report[0] = '\0';
    liveness_duplicates(b->ts, on_report, NULL);
    return nreports;
}

START_TEST(test_duplicate_found)
{
    struct tb b = { trace_store_create(0, 1), 0 };
    session(&b, "1", 1, 0);
    session(&b, "1", 1, 0);
    ck_assert_int_eq(duplicates(&b), 1);
    ck_assert_msg(strstr(last_report, "duplicate: message 1 to <bob@example.com> was delivered "
                         "twice") != NULL, "%s", last_report);
    trace_store_destroy(b.ts);
}
END_TEST

START_TEST(test_no_duplicate_after_a_lost_reply)
{
    /* RFC 1047: the first end-of-data reply never arrived; the retry is right. */
    struct tb b = { trace_store_create(0, 1), 0 };
    session(&b, "1", 0, 1);
    session(&b, "1", 0, 0);
    ck_assert_int_eq(duplicates(&b), 0);
    trace_store_destroy(b.ts);
}
END_TEST

START_TEST(test_no_duplicate_across_messages_or_refusals)
{
    /* Two messages to the same address are two deliveries; a refused
     * recipient is never delivered, whatever the end of data says. */
    struct tb b = { trace_store_create(0, 1), 0 };
    session(&b, "1", 1, 0);
    session(&b, "2", 1, 0);
    ck_assert_int_eq(duplicates(&b), 0);
    trace_store_destroy(b.ts);
}
END_TEST

static Suite *liveness_suite(void)
{
    Suite *s = suite_create("liveness");
    TCase *tc = tcase_create("storm");
    tcase_add_test(tc, test_storm_counts_attempts_in_the_window);
    tcase_add_test(tc, test_storm_reset_by_a_transaction);
    suite_add_tcase(s, tc);
    tc = tcase_create("duplicate");
    tcase_add_test(tc, test_duplicate_found);
    tcase_add_test(tc, test_no_duplicate_after_a_lost_reply);
    tcase_add_test(tc, test_no_duplicate_across_messages_or_refusals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(liveness_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
