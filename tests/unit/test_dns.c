/*
 * test_dns - unit tests for sim/world/dns.c: answers, failures, timing, CNAME,
 * null MX, counting, name normalisation
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

#define LAT 2000            /* 2 ms */
#define TMO 5000000         /* 5 s */

struct got {
    int calls;
    sim_usec at;
    char name[MTA_DNS_NAME_MAX];
    enum mta_dns_type type;
    struct mta_dns_answer a;
    struct sim_sched *s;
};

static void on_answer(void *arg, const char *name, enum mta_dns_type type,
                      const struct mta_dns_answer *a)
{
    struct got *g = arg;

    g->calls++;
    g->at = sim_sched_now(g->s);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->type = type;
    g->a = *a;
}

static struct sim_sched *sched;
static struct sim_dns *dns;

static void setup(void)
{
    struct sim_dns_record r;

    sched = sim_sched_create(1000);
    dns = sim_dns_create(sched, LAT, TMO);
    memset(&r, 0, sizeof r);
    r.ttl = 300;

    r.name = "example.com"; r.type = MTA_DNS_MX;
    r.pref = 20; r.target = "mx2.example.com"; sim_dns_add(dns, &r);
    r.pref = 10; r.target = "mx1.example.com."; sim_dns_add(dns, &r);
    r.name = "mx1.example.com"; r.type = MTA_DNS_A; r.target = NULL;
    r.addr = 0xC6336401; sim_dns_add(dns, &r);
    r.addr = 0xC6336402; sim_dns_add(dns, &r);
    r.name = "alias.example.com"; r.type = MTA_DNS_CNAME; r.target = "mx1.example.com";
    sim_dns_add(dns, &r);
    r.name = "null.test"; r.type = MTA_DNS_MX; r.pref = 0; r.target = ".";
    sim_dns_add(dns, &r);
    r.name = "loop1.test"; r.type = MTA_DNS_CNAME; r.target = "loop2.test";
    sim_dns_add(dns, &r);
    r.name = "loop2.test"; r.target = "loop1.test";
    sim_dns_add(dns, &r);
    r.name = "dangling.test"; r.target = "nowhere.test";
    sim_dns_add(dns, &r);
}

static void teardown(void)
{
    sim_dns_destroy(dns);
    sim_sched_destroy(sched);
}

/* ask - query and run to quiet; the answer lands in g */
static void ask(struct got *g, const char *name, enum mta_dns_type type)
{
    memset(g, 0, sizeof *g);
    g->s = sched;
    sim_dns_query(dns, name, type, on_answer, g);
    ck_assert_int_eq(g->calls, 0);          /* never synchronous */
    sim_sched_run(sched, -1, 0);
    ck_assert_int_eq(g->calls, 1);
}

START_TEST(mx_in_added_order_after_latency)
{
    struct got g;
    sim_usec t0 = sim_sched_now(sched);

    ask(&g, "example.com", MTA_DNS_MX);
    ck_assert_int_eq(g.at, t0 + LAT);
    ck_assert_str_eq(g.name, "example.com");
    ck_assert_int_eq(g.type, MTA_DNS_MX);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 2);
    ck_assert_int_eq(g.a.rr[0].pref, 20);
    ck_assert_str_eq(g.a.rr[0].name, "mx2.example.com");
    ck_assert_int_eq(g.a.rr[1].pref, 10);
    ck_assert_str_eq(g.a.rr[1].name, "mx1.example.com.");
    ck_assert_int_eq(g.a.rr[1].ttl, 300);
}
END_TEST

START_TEST(names_case_insensitive_trailing_dot)
{
    struct got g;

    ask(&g, "MX1.Example.COM.", MTA_DNS_A);
    ck_assert_str_eq(g.name, "MX1.Example.COM.");   /* the name as asked */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 2);
    ck_assert_uint_eq(g.a.rr[0].addr, 0xC6336401);
    ck_assert_uint_eq(g.a.rr[1].addr, 0xC6336402);
    ck_assert_int_eq(g.a.rr[0].type, MTA_DNS_A);
}
END_TEST

START_TEST(nxdomain_versus_nodata)
{
    struct got g;

    ask(&g, "nosuch.example.com", MTA_DNS_MX);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NXDOMAIN);
    ck_assert_int_eq(g.a.count, 0);
    ask(&g, "mx1.example.com", MTA_DNS_MX);          /* has only A */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
    ask(&g, "example.com", MTA_DNS_A);               /* has only MX */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
}
END_TEST

START_TEST(failures_and_their_timing)
{
    struct got g;
    sim_usec t0;

    sim_dns_fail(dns, "example.com", MTA_DNS_MX, MTA_DNS_SERVFAIL);
    t0 = sim_sched_now(sched);
    ask(&g, "example.com", MTA_DNS_MX);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_SERVFAIL);
    ck_assert_int_eq(g.a.count, 0);
    ck_assert_int_eq(g.at, t0 + LAT);
    /* The failure is for MX only. */
    ask(&g, "example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);

    /* Any-type TIMEOUT: answered only after the resolver timeout. */
    sim_dns_fail(dns, "mx1.example.com", 0, MTA_DNS_TIMEOUT);
    t0 = sim_sched_now(sched);
    ask(&g, "mx1.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_TIMEOUT);
    ck_assert_int_eq(g.at, t0 + TMO);

    /* An exact-type failure beats the any-type one; setting again replaces. */
    sim_dns_fail(dns, "mx1.example.com", MTA_DNS_A, MTA_DNS_NXDOMAIN);
    ask(&g, "MX1.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NXDOMAIN);
    ck_assert_int_eq(g.at, sim_sched_now(sched));
    sim_dns_fail(dns, "mx1.example.com", MTA_DNS_A, MTA_DNS_SERVFAIL);
    ask(&g, "mx1.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_SERVFAIL);
}
END_TEST

/* tick - an event that only moves the clock */
static void tick(void *arg)
{
    (void)arg;
}

START_TEST(windows_in_time_and_query_number)
{
    struct got g;
    struct sim_dns_window w;
    struct sim_dns_record r;
    sim_usec t0 = sim_sched_now(sched);
    struct scn_cond first = { .kind = SCN_COND_QUERY, .op = SCN_OP_EQ, .value = 1 };

    /* win.test: SERVFAIL for the first MX query only, then an MX record
     * that exists from t0 + 10 s on; the A queries never fail. */
    memset(&r, 0, sizeof r);
    scn_qset_of(&first, 1, &w.queries);
    w.from = 0;
    w.until = -1;
    sim_dns_fail_when(dns, "win.test", MTA_DNS_MX, MTA_DNS_SERVFAIL, &w);
    scn_qset_of(NULL, 0, &w.queries);
    w.from = t0 + 10 * 1000000;
    r.name = "win.test"; r.type = MTA_DNS_MX; r.pref = 5; r.target = "mx.win.test"; r.ttl = 60;
    r.when = &w;
    sim_dns_add(dns, &r);
    r.name = "win.test"; r.type = MTA_DNS_A; r.addr = 0x0A000001; r.target = NULL; r.when = NULL;
    sim_dns_add(dns, &r);

    ask(&g, "win.test", MTA_DNS_MX);                 /* query 1: the failure */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_SERVFAIL);
    ask(&g, "win.test", MTA_DNS_A);                  /* per type: A still works */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 1);
    ask(&g, "win.test", MTA_DNS_MX);                 /* query 2, before 10 s: no MX yet */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
    sim_sched_at(sched, t0 + 10 * 1000000, tick, NULL);
    sim_sched_run(sched, -1, 0);
    ck_assert_int_eq(sim_sched_now(sched), t0 + 10 * 1000000);
    ask(&g, "win.test", MTA_DNS_MX);                 /* query 3, from 10 s: the record */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 1);
    ck_assert_str_eq(g.a.rr[0].name, "mx.win.test");
}
END_TEST

START_TEST(null_mx)
{
    struct got g;

    ask(&g, "null.test", MTA_DNS_MX);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 1);
    ck_assert_int_eq(g.a.rr[0].pref, 0);
    ck_assert_str_eq(g.a.rr[0].name, ".");
}
END_TEST

START_TEST(cname_chasing)
{
    struct got g;

    ask(&g, "alias.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 3);
    ck_assert_int_eq(g.a.rr[0].type, MTA_DNS_CNAME);
    ck_assert_str_eq(g.a.rr[0].name, "mx1.example.com");
    ck_assert_int_eq(g.a.rr[1].type, MTA_DNS_A);
    ck_assert_uint_eq(g.a.rr[1].addr, 0xC6336401);
    ck_assert_uint_eq(g.a.rr[2].addr, 0xC6336402);
    /* An MX query does not chase. */
    ask(&g, "alias.example.com", MTA_DNS_MX);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
    /* A CNAME query returns the CNAME itself. */
    ask(&g, "alias.example.com", MTA_DNS_CNAME);
    ck_assert_int_eq(g.a.count, 1);
    ck_assert_int_eq(g.a.rr[0].type, MTA_DNS_CNAME);
    /* A loop is bounded and fails; a dangling alias is NXDOMAIN. */
    ask(&g, "loop1.test", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_SERVFAIL);
    ask(&g, "dangling.test", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NXDOMAIN);
    /* A failure on the target applies to the chase. */
    sim_dns_fail(dns, "mx1.example.com", MTA_DNS_A, MTA_DNS_SERVFAIL);
    ask(&g, "alias.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_SERVFAIL);
}
END_TEST

/* AAAA records (RFC 3596): their own type, with its own failures,
 * counter and CNAME chasing; an A query for an AAAA-only name is NODATA. */
START_TEST(aaaa_records)
{
    static const uint8_t v6a[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x25 };
    static const uint8_t v6b[16] = { 0x20, 0x01, 0x0d, 0xb8, [14] = 0x01, [15] = 0x02 };
    struct sim_dns_record r;
    struct got g;

    memset(&r, 0, sizeof r);
    r.ttl = 60;
    r.name = "v6.test"; r.type = MTA_DNS_AAAA;
    memcpy(r.addr6, v6a, 16); sim_dns_add(dns, &r);
    memcpy(r.addr6, v6b, 16); r.ttl = 30; sim_dns_add(dns, &r);
    r.name = "v6alias.test"; r.type = MTA_DNS_CNAME; r.target = "v6.test";
    sim_dns_add(dns, &r);

    ask(&g, "v6.test", MTA_DNS_AAAA);
    ck_assert_int_eq(g.type, MTA_DNS_AAAA);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 2);
    ck_assert_int_eq(g.a.rr[0].type, MTA_DNS_AAAA);
    ck_assert_mem_eq(g.a.rr[0].addr6, v6a, 16);
    ck_assert_mem_eq(g.a.rr[1].addr6, v6b, 16);
    ck_assert_int_eq(g.a.rr[0].ttl, 60);
    ck_assert_int_eq(g.a.rr[1].ttl, 30);

    ask(&g, "v6.test", MTA_DNS_A);                 /* NODATA, not NXDOMAIN */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
    ask(&g, "mx1.example.com", MTA_DNS_AAAA);      /* and the reverse */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);

    ask(&g, "v6alias.test", MTA_DNS_AAAA);         /* CNAME, then the target's */
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 3);
    ck_assert_int_eq(g.a.rr[0].type, MTA_DNS_CNAME);
    ck_assert_int_eq(g.a.rr[1].type, MTA_DNS_AAAA);
    ck_assert_mem_eq(g.a.rr[2].addr6, v6b, 16);

    /* A failure of the AAAA queries leaves A alone, and the counters are
     * per type. */
    sim_dns_fail(dns, "mx1.example.com", MTA_DNS_AAAA, MTA_DNS_SERVFAIL);
    ask(&g, "mx1.example.com", MTA_DNS_AAAA);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_SERVFAIL);
    ask(&g, "mx1.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 2);
    ck_assert_uint_eq(sim_dns_query_count(dns, "mx1.example.com", MTA_DNS_AAAA), 2);
    ck_assert_uint_eq(sim_dns_query_count(dns, "mx1.example.com", MTA_DNS_A), 1);
    ck_assert_uint_eq(sim_dns_query_count(dns, "v6.test", MTA_DNS_AAAA), 1);
}
END_TEST

START_TEST(query_counts)
{
    struct got g1, g2, g3;

    memset(&g1, 0, sizeof g1); g1.s = sched;
    memset(&g2, 0, sizeof g2); g2.s = sched;
    memset(&g3, 0, sizeof g3); g3.s = sched;
    ck_assert_uint_eq(sim_dns_query_count(dns, "example.com", MTA_DNS_MX), 0);
    sim_dns_query(dns, "example.com", MTA_DNS_MX, on_answer, &g1);
    sim_dns_query(dns, "EXAMPLE.com.", MTA_DNS_MX, on_answer, &g2);
    sim_dns_query(dns, "example.com", MTA_DNS_A, on_answer, &g3);
    ck_assert_uint_eq(sim_dns_query_count(dns, "example.com", MTA_DNS_MX), 2);
    ck_assert_uint_eq(sim_dns_query_count(dns, "Example.Com", MTA_DNS_MX), 2);
    ck_assert_uint_eq(sim_dns_query_count(dns, "example.com", MTA_DNS_A), 1);
    ck_assert_uint_eq(sim_dns_query_count(dns, "nosuch.test", MTA_DNS_A), 0);
    sim_sched_run(sched, -1, 0);
    ck_assert_int_eq(g1.calls + g2.calls + g3.calls, 3);
}
END_TEST

/* Answers at the same instant come back in query order. */
START_TEST(same_latency_answers_in_query_order)
{
    struct got g[3];
    int i;

    for (i = 0; i < 3; i++) {
        memset(&g[i], 0, sizeof g[i]);
        g[i].s = sched;
    }
    sim_dns_query(dns, "example.com", MTA_DNS_MX, on_answer, &g[0]);
    sim_dns_query(dns, "mx1.example.com", MTA_DNS_A, on_answer, &g[1]);
    sim_dns_query(dns, "nosuch.test", MTA_DNS_A, on_answer, &g[2]);
    ck_assert_int_eq(sim_sched_step(sched), 1);
    ck_assert_int_eq(g[0].calls, 1);
    ck_assert_int_eq(g[1].calls, 0);
    ck_assert_int_eq(sim_sched_step(sched), 1);
    ck_assert_int_eq(g[1].calls, 1);
    ck_assert_int_eq(g[2].calls, 0);
}
END_TEST

/* Destroying the resolver with queries in flight frees them (ASan checks). */
START_TEST(destroy_with_pending)
{
    struct got g;

    memset(&g, 0, sizeof g);
    g.s = sched;
    sim_dns_query(dns, "example.com", MTA_DNS_MX, on_answer, &g);
    sim_dns_fail(dns, "slow.test", 0, MTA_DNS_TIMEOUT);
    sim_dns_query(dns, "slow.test", MTA_DNS_A, on_answer, &g);
    ck_assert_uint_eq(sim_sched_pending(sched), 2);
}
END_TEST

/* NODATA set explicitly: NOERROR, no records, for every type, even
 * when the name has records (the forced answer wins). */
START_TEST(explicit_nodata)
{
    struct got g;
    sim_usec t0 = sim_sched_now(sched);

    sim_dns_fail(dns, "empty.test", 0, MTA_DNS_NOERROR);
    sim_dns_fail(dns, "mx1.example.com", MTA_DNS_A, MTA_DNS_NOERROR);
    ask(&g, "empty.test", MTA_DNS_MX);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
    ck_assert_int_eq(g.at, t0 + LAT);
    ask(&g, "empty.test", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
    ask(&g, "mx1.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.a.rcode, MTA_DNS_NOERROR);
    ck_assert_int_eq(g.a.count, 0);
}
END_TEST

/* A per-name latency applies to that name only, whatever the type. */
START_TEST(per_name_latency)
{
    struct got g;
    sim_usec t0;

    sim_dns_set_name_latency(dns, "Example.COM.", 700000);
    t0 = sim_sched_now(sched);
    ask(&g, "example.com", MTA_DNS_MX);
    ck_assert_int_eq(g.at, t0 + 700000);
    ck_assert_int_eq(g.a.count, 2);
    t0 = sim_sched_now(sched);
    ask(&g, "mx1.example.com", MTA_DNS_A);
    ck_assert_int_eq(g.at, t0 + LAT);
    sim_dns_set_name_latency(dns, "example.com", 3000);     /* last call wins */
    t0 = sim_sched_now(sched);
    ask(&g, "example.com", MTA_DNS_A);
    ck_assert_int_eq(g.at, t0 + 3000);
}
END_TEST

/* Jitter: within [latency, latency + J], varying, the same for the same
 * seed, and one name's draws do not depend on queries for another. */
START_TEST(jitter_per_name_stream)
{
    sim_usec delays[2][6];
    int run, i, differ = 0;

    for (run = 0; run < 2; run++) {
        struct sim_sched *s = sim_sched_create(0);
        struct sim_dns *d = sim_dns_create(s, LAT, TMO);
        struct got g;

        sim_dns_set_jitter(d, 10000, 99);
        for (i = 0; i < 6; i++) {
            sim_usec t0 = sim_sched_now(s);

            memset(&g, 0, sizeof g);
            g.s = s;
            /* The second run asks about another name in between. */
            if (run == 1)
                sim_dns_query(d, "other.test", MTA_DNS_MX, on_answer, &g);
            sim_sched_run(s, -1, 0);
            t0 = sim_sched_now(s);
            sim_dns_query(d, "example.com", MTA_DNS_MX, on_answer, &g);
            sim_sched_run(s, -1, 0);
            delays[run][i] = g.at - t0;
            ck_assert_int_ge(delays[run][i], LAT);
            ck_assert_int_le(delays[run][i], LAT + 10000);
        }
        sim_dns_destroy(d);
        sim_sched_destroy(s);
    }
    for (i = 0; i < 6; i++) {
        ck_assert_int_eq(delays[0][i], delays[1][i]);
        differ += delays[0][i] != delays[0][0];
    }
    ck_assert_int_gt(differ, 0);
}
END_TEST

static Suite *dns_suite(void)
{
    Suite *su = suite_create("dns");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, mx_in_added_order_after_latency);
    tcase_add_test(tc, names_case_insensitive_trailing_dot);
    tcase_add_test(tc, nxdomain_versus_nodata);
    tcase_add_test(tc, failures_and_their_timing);
    tcase_add_test(tc, windows_in_time_and_query_number);
    tcase_add_test(tc, null_mx);
    tcase_add_test(tc, cname_chasing);
    tcase_add_test(tc, query_counts);
    tcase_add_test(tc, aaaa_records);
    tcase_add_test(tc, same_latency_answers_in_query_order);
    tcase_add_test(tc, destroy_with_pending);
    tcase_add_test(tc, explicit_nodata);
    tcase_add_test(tc, per_name_latency);
    tcase_add_test(tc, jitter_per_name_stream);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(dns_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
