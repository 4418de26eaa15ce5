/*
 * test_scenario - the scenario parser and the configuration it fills
 *
 * SYNOPSIS
 *   test_scenario            (exit status 0 when every test passes)
 *
 * DESCRIPTION
 *   libcheck suites for the parser (sim/lang/parse*.c) and core/config.c:
 *     parse    every directive lands in the right structure, with defaults
 *     replies  multi-line replies, delay/when clauses, quoted text
 *     include  includes, body files, positions inside included files
 *     errors   each class of error: exact line:col and a message substring
 *     hostile  long lines, cycles, deep nesting, binary garbage: errors,
 *              never crashes
 *     config   mta_config_defaults, mta_config_set, mta_parse_duration
 *   Files are written under a fresh mkdtemp() directory per test.
 *
 *   Hook names used here (post_initiate_connection_smtp, log_delivery_v1,
 *   log_transient_failure_v1) exist in core/hooks/hooks.table, so the test
 *   runs against the generated registry as well as against a stub.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"

#define SEC 1000000LL
#define MS 1000LL

/* ---- helpers ------------------------------------------------------------ */

/* parse_ok - parse text that must be valid; show the error if it is not */
static struct scn_scenario *parse_ok(const char *text)
{
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_string("t.scn", text, &err);
    ck_assert_msg(sc != NULL, "unexpected error %s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    return sc;
}

/* expect_error - text must fail at line:col with a message containing what */
static void expect_error_at(const char *text, int line, int col, const char *what, int src_line)
{
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_string("t.scn", text, &err);
    if (sc != NULL)
        scn_free(sc);
    ck_assert_msg(sc == NULL, "(test line %d) parsed, expected an error '%s'", src_line, what);
    ck_assert_msg(strcmp(err.file, "t.scn") == 0 && err.line == line && err.col == col
                  && strstr(err.msg, what) != NULL,
                  "(test line %d) got %s:%d:%d: %s\n  want t.scn:%d:%d: ...%s...",
                  src_line, err.file, err.line, err.col, err.msg, line, col, what);
}
#define expect_error(text, line, col, what) expect_error_at((text), (line), (col), (what), __LINE__)

static char tmpdir[64];

/* rm_entry - nftw callback removing one entry */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

/* make_tmpdir - a fresh directory for this test's files */
static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test_scenario.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* remove_tmpdir - delete the test's files */
static void remove_tmpdir(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* write_file - tmpdir/rel with the given bytes, creating one parent level */
static void write_file_n(const char *rel, const char *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    mkdir(path, 0700);
    *slash = '/';
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}
static void write_file(const char *rel, const char *text)
{
    write_file_n(rel, text, strlen(text));
}

/* in_tmp - tmpdir/rel, in a static buffer */
static const char *in_tmp(const char *rel)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    return path;
}

/* ---- parse: every directive ----------------------------------------------- */

static const char full_scenario[] =
    "# a complete world\n"                                                       /*  1 */
    "scenario greylist/retry-1.x\n"                                             /*  2 */
    "description \"greylisting, then \\\"accept\\\"\"   # comment\n"            /*  3 */
    "seed 18446744073709551615\n"                                               /*  4 */
    "epoch 2020-03-26T01:02:03Z\n"                                              /*  5 */
    "run for 2h\n"                                                              /*  6 */
    "config retry_interval 300s\n"                                              /*  7 */
    "config Max_Retries auto\n"                                                 /*  8 */
    "config max_outbound_connections 4\n"                                       /*  9 */
    "dns latency 40ms\n"                                                        /* 10 */
    "dns timeout 2s\n"                                                          /* 11 */
    "binding default 192.0.2.1\n"                                               /* 12 */
    "binding out2 192.0.2.2 ehlo mta2.sender.test\n"                            /* 13 */
    "dns example.com MX 10 mx1.example.com\n"                                   /* 14 */
    "dns example.com MX 20 mx2.example.com ttl 60\n"                            /* 15 */
    "dns mx1.example.com A 198.51.100.10\n"                                     /* 16 */
    "dns alias.example.com CNAME mx1.example.com ttl 0\n"                       /* 17 */
    "dns null.test MX 0 .\n"                                                    /* 18 */
    "dns gone.test NXDOMAIN\n"                                                  /* 19 */
    "dns broken.test SERVFAIL\n"                                                /* 20 */
    "dns slow.test TIMEOUT ttl 30\n"                                            /* 21 */
    "\n"                                                                        /* 22 */
    "remote 198.51.100.10 name mx1.example.com\n"                               /* 23 */
    "  connect accept latency 40ms\n"                                           /* 24 */
    "  greet 220 mx1.example.com ESMTP\n"                                       /* 25 */
    "  # comments and blank lines do not end a block\n"                         /* 26 */
    "\n"                                                                        /* 27 */
    "  ehlo 250-mx1.example.com\n"                                              /* 28 */
    "  ehlo 250-PIPELINING\n"                                                   /* 29 */
    "  ehlo 250 SIZE 10485760\n"                                                /* 30 */
    "  rcpt 451 4.7.1 greylisted, try later   when session 1\n"                 /* 31 */
    "  rcpt 250 2.1.5 ok\n"                                                     /* 32 */
    "  data 354 go ahead\n"                                                     /* 33 */
    "  dot 250 2.0.0 queued delay 2s\n"                                         /* 34 */
    "remote 198.51.100.11\n"                                                    /* 35 */
    "\tconnect refuse\n"                                                        /* 36 */
    "\tlatency 5ms\n"                                                           /* 37 */
    "inject 1 from <a@sender.test> to <bob@example.com> at 0s\n"                /* 38 */
    "inject 2 from <> to <x@example.com>,<y@example.com> at 1m binding out2 "
    "body \"Subject: hi\\r\\n\\r\\nhello\\r\\n\"\n"                             /* 39 */
    "inject 3 from <a@sender.test> to <z@example.com>, <w@example.com> size 5000\n" /* 40 */
    "expect hooks in order\n"                                                   /* 41 */
    "  post_initiate_connection_smtp domain=example.com conn_fd>=0\n"           /* 42 */
    "  log_transient_failure_v1 note~\"451 (4\\\\.7\\\\.1)?\"\n"                /* 43 */
    "  post_initiate_connection_smtp conn_fd=CONN_ERR_MX_LOOKUP_FAILED conn_fd!=-3\n" /* 44 */
    "  log_delivery_v1\n"                                                       /* 45 */
    "expect message 1 delivered within 10m\n"                                   /* 46 */
    "expect message 2 bounced\n"                                                /* 47 */
    "expect message 3 deferred\n";                                              /* 48 */

START_TEST(test_full_scenario)
{
    struct scn_scenario *sc = parse_ok(full_scenario);
    ck_assert_str_eq(sc->name, "greylist/retry-1.x");
    ck_assert_str_eq(sc->file, "t.scn");
    ck_assert_str_eq(sc->description, "greylisting, then \"accept\"");
    ck_assert(sc->seed == UINT64_MAX && sc->seed_set);
    ck_assert_int_eq(sc->epoch, (1585180800LL + 3723) * SEC);
    ck_assert_int_eq(sc->run_for, 7200 * SEC);
    ck_assert_int_eq(sc->config.retry_interval, 300 * SEC);
    ck_assert_int_eq(sc->config.max_retries, 0);
    ck_assert_int_eq(sc->config.max_outbound_connections, 4);
    ck_assert_int_eq(sc->config.message_expiration, 86400 * SEC);   /* untouched default */
    ck_assert_int_eq(sc->dns_latency, 40 * MS);
    ck_assert_int_eq(sc->dns_timeout, 2 * SEC);

    ck_assert_int_eq(sc->nbindings, 2);
    ck_assert_str_eq(sc->bindings[0].name, "default");
    ck_assert(mta_ip_eq(sc->bindings[0].addr, mta_ip_v4(0xC0000201u)));
    ck_assert_ptr_null(sc->bindings[0].ehlo);
    ck_assert_str_eq(sc->bindings[1].name, "out2");
    ck_assert_str_eq(sc->bindings[1].ehlo, "mta2.sender.test");
    ck_assert_int_eq(sc->bindings[1].pos.line, 13);

    ck_assert_int_eq(sc->ndns, 8);
    ck_assert_int_eq(sc->dns[0].kind, SCN_DNS_MX);
    ck_assert_str_eq(sc->dns[0].name, "example.com");
    ck_assert_int_eq(sc->dns[0].pref, 10);
    ck_assert_str_eq(sc->dns[0].target, "mx1.example.com");
    ck_assert_uint_eq(sc->dns[0].ttl, 3600);
    ck_assert_uint_eq(sc->dns[1].ttl, 60);
    ck_assert_int_eq(sc->dns[2].kind, SCN_DNS_A);
    ck_assert_uint_eq(sc->dns[2].addr, (198u << 24) | (51u << 16) | (100u << 8) | 10u);
    ck_assert_int_eq(sc->dns[3].kind, SCN_DNS_CNAME);
    ck_assert_str_eq(sc->dns[3].target, "mx1.example.com");
    ck_assert_uint_eq(sc->dns[3].ttl, 0);
    ck_assert_int_eq(sc->dns[4].kind, SCN_DNS_MX);
    ck_assert_int_eq(sc->dns[4].pref, 0);
    ck_assert_str_eq(sc->dns[4].target, ".");
    ck_assert_int_eq(sc->dns[5].kind, SCN_DNS_NXDOMAIN);
    ck_assert_int_eq(sc->dns[6].kind, SCN_DNS_SERVFAIL);
    ck_assert_int_eq(sc->dns[7].kind, SCN_DNS_TIMEOUT);
    ck_assert_uint_eq(sc->dns[7].ttl, 30);
    ck_assert_int_eq(sc->dns[7].pos.line, 21);
    ck_assert_int_eq(sc->dns[7].pos.col, 1);

    ck_assert_int_eq(sc->nremotes, 2);
    const struct scn_remote *r = &sc->remotes[0];
    ck_assert_str_eq(r->name, "mx1.example.com");
    ck_assert_int_eq(r->connect, SCN_CONNECT_ACCEPT);
    ck_assert_int_eq(r->latency, 40 * MS);
    ck_assert_int_eq(r->pos.line, 23);
    ck_assert_int_eq(r->nreplies, 6);
    ck_assert_int_eq(r->replies[0].cmd, SCN_CMD_GREET);
    ck_assert_int_eq(r->replies[0].nlines, 1);
    ck_assert_str_eq(r->replies[0].lines[0], "220 mx1.example.com ESMTP");
    ck_assert_int_eq(r->replies[1].cmd, SCN_CMD_EHLO);
    ck_assert_int_eq(r->replies[1].code, 250);
    ck_assert_int_eq(r->replies[1].nlines, 3);
    ck_assert_str_eq(r->replies[1].lines[0], "250-mx1.example.com");
    ck_assert_str_eq(r->replies[1].lines[1], "250-PIPELINING");
    ck_assert_str_eq(r->replies[1].lines[2], "250 SIZE 10485760");
    ck_assert_int_eq(r->replies[1].pos.line, 28);
    ck_assert_int_eq(r->replies[1].pos.col, 3);
    ck_assert_int_eq(r->replies[2].cmd, SCN_CMD_RCPT);
    ck_assert_str_eq(r->replies[2].lines[0], "451 4.7.1 greylisted, try later");
    ck_assert_int_eq(r->replies[2].nconds, 1);
    ck_assert_int_eq(r->replies[2].conds[0].kind, SCN_COND_SESSION);
    ck_assert_int_eq(r->replies[2].conds[0].op, SCN_OP_EQ);
    ck_assert_int_eq(r->replies[2].conds[0].value, 1);
    ck_assert_int_eq(r->replies[2].delay, 0);
    ck_assert_int_eq(r->replies[3].nconds, 0);
    ck_assert_int_eq(r->replies[4].cmd, SCN_CMD_DATA);
    ck_assert_int_eq(r->replies[5].cmd, SCN_CMD_DOT);
    ck_assert_str_eq(r->replies[5].lines[0], "250 2.0.0 queued");
    ck_assert_int_eq(r->replies[5].delay, 2 * SEC);
    ck_assert_ptr_null(sc->remotes[1].name);
    ck_assert_int_eq(sc->remotes[1].connect, SCN_CONNECT_REFUSE);
    ck_assert_int_eq(sc->remotes[1].latency, 5 * MS);
    ck_assert_int_eq(sc->remotes[1].nreplies, 0);

    ck_assert_int_eq(sc->ninjects, 3);
    const struct scn_inject *in = &sc->injects[0];
    ck_assert_uint_eq(in->id, 1);
    ck_assert_str_eq(in->from, "a@sender.test");
    ck_assert_int_eq(in->nrcpts, 1);
    ck_assert_str_eq(in->rcpts[0], "bob@example.com");
    ck_assert_int_eq(in->at, 0);
    ck_assert_ptr_null(in->binding);
    ck_assert_ptr_null(in->body);
    ck_assert_int_eq(in->size, -1);
    in = &sc->injects[1];
    ck_assert_str_eq(in->from, "");
    ck_assert_int_eq(in->nrcpts, 2);
    ck_assert_str_eq(in->rcpts[1], "y@example.com");
    ck_assert_int_eq(in->at, 60 * SEC);
    ck_assert_str_eq(in->binding, "out2");
    ck_assert_str_eq(in->body, "Subject: hi\r\n\r\nhello\r\n");
    ck_assert_uint_eq(in->body_len, 22);
    in = &sc->injects[2];
    ck_assert_int_eq(in->nrcpts, 2);
    ck_assert_str_eq(in->rcpts[0], "z@example.com");
    ck_assert_str_eq(in->rcpts[1], "w@example.com");
    ck_assert_int_eq(in->size, 5000);

    ck_assert_int_eq(sc->nexpects, 4);
    const struct scn_expect *ex = &sc->expects[0];
    ck_assert_int_eq(ex->kind, SCN_EXPECT_HOOKS_IN_ORDER);
    ck_assert_int_eq(ex->pos.line, 41);
    ck_assert_int_eq(ex->npatterns, 4);
    const struct scn_pattern *pt = &ex->patterns[0];
    ck_assert_str_eq(pt->name, "post_initiate_connection_smtp");
    ck_assert_int_eq(pt->pos.line, 42);
    ck_assert_int_eq(pt->pos.col, 3);
    ck_assert_int_eq(pt->nmatchers, 2);
    ck_assert_str_eq(pt->matchers[0].key, "domain");
    ck_assert_int_eq(pt->matchers[0].op, SCN_OP_EQ);
    ck_assert_str_eq(pt->matchers[0].value, "example.com");
    ck_assert_int_eq(pt->matchers[0].is_num, 0);
    ck_assert_str_eq(pt->matchers[1].key, "conn_fd");
    ck_assert_int_eq(pt->matchers[1].op, SCN_OP_GE);
    ck_assert(pt->matchers[1].is_num && pt->matchers[1].num == 0);
    ck_assert_int_eq(pt->matchers[1].pos.col, 52);
    pt = &ex->patterns[1];
    ck_assert_int_eq(pt->matchers[0].op, SCN_OP_RE);
    ck_assert_str_eq(pt->matchers[0].value, "451 (4\\.7\\.1)?");
    pt = &ex->patterns[2];
    ck_assert_str_eq(pt->matchers[0].value, "CONN_ERR_MX_LOOKUP_FAILED");
    ck_assert_int_eq(pt->matchers[1].op, SCN_OP_NE);
    ck_assert(pt->matchers[1].is_num && pt->matchers[1].num == -3);
    ck_assert_int_eq(ex->patterns[3].nmatchers, 0);
    ex = &sc->expects[1];
    ck_assert_int_eq(ex->kind, SCN_EXPECT_MESSAGE);
    ck_assert_uint_eq(ex->msg_id, 1);
    ck_assert_int_eq(ex->fate, SCN_FATE_DELIVERED);
    ck_assert_int_eq(ex->within, 600 * SEC);
    ck_assert_int_eq(sc->expects[2].fate, SCN_FATE_BOUNCED);
    ck_assert_int_eq(sc->expects[2].within, -1);
    ck_assert_int_eq(sc->expects[3].fate, SCN_FATE_DEFERRED);

    ck_assert_int_eq(sc->nfiles, 1);
    ck_assert_ptr_eq(sc->dns[0].pos.file, sc->files[0]);
    ck_assert_ptr_eq(ex->pos.file, sc->files[0]);
    scn_free(sc);
}
END_TEST

START_TEST(test_defaults)
{
    struct scn_scenario *sc;
    struct scn_error err;
    sc = scn_parse_string("suite/dir/greylisting.scn", "# nothing but a comment\n\n", &err);
    ck_assert_ptr_nonnull(sc);
    ck_assert_str_eq(sc->name, "greylisting");
    ck_assert(sc->seed == 1 && !sc->seed_set);
    ck_assert_int_eq(sc->epoch, 1577836800LL * SEC);
    ck_assert_int_eq(sc->run_for, -1);
    ck_assert_int_eq(sc->dns_latency, 1 * MS);
    ck_assert_int_eq(sc->dns_timeout, 5 * SEC);
    struct mta_config def;
    mta_config_defaults(&def);
    ck_assert(memcmp(&def, &sc->config, sizeof def) == 0);
    ck_assert_ptr_null(sc->description);
    ck_assert_int_eq(sc->nbindings + sc->ndns + sc->nremotes + sc->ninjects + sc->nexpects, 0);
    scn_free(sc);

    sc = parse_ok("epoch 2021-06-01\nremote 10.0.0.1\ninject 7 from <a@b.c> to <d@e.f>\n"
                  "expect message 7 deferred\n");
    ck_assert_int_eq(sc->epoch, 1622505600LL * SEC);
    ck_assert_int_eq(sc->remotes[0].connect, SCN_CONNECT_ACCEPT);
    ck_assert_int_eq(sc->remotes[0].latency, 1 * MS);
    ck_assert_int_eq(sc->remotes[0].nreplies, 0);
    ck_assert_int_eq(sc->injects[0].at, 0);
    ck_assert_int_eq(sc->injects[0].size, -1);
    ck_assert_int_eq(sc->expects[0].within, -1);
    scn_free(sc);

    /* Keywords are case-insensitive; "default" may be redefined; a
     * binding may be declared after the inject that names it. */
    sc = parse_ok("SEED 5\nBinding default 10.0.0.1\nbinding default 10.0.0.2\n"
                  "inject 1 from <a@b.c> to <d@e.f> binding late\n"
                  "inject 2 from <a@b.c> to <d@e.f> binding default\n"
                  "binding late 10.0.0.3\nDNS x.test mx 5 y.test\n");
    ck_assert_int_eq(sc->nbindings, 2);
    ck_assert(mta_ip_eq(sc->bindings[0].addr, mta_ip_v4(0x0A000002u)));
    ck_assert_int_eq(sc->bindings[0].pos.line, 3);
    ck_assert_int_eq(sc->dns[0].kind, SCN_DNS_MX);
    scn_free(sc);

    ck_assert_str_eq(scn_op_str(SCN_OP_LE), "<=");
    ck_assert_str_eq(scn_op_str(SCN_OP_RE), "~");
    ck_assert_str_eq(scn_fate_str(SCN_FATE_BOUNCED), "bounced");
    ck_assert_str_eq(scn_cmd_names[SCN_CMD_DOT], "dot");
    ck_assert_str_eq(scn_cmd_names[SCN_CMD_UNKNOWN], "unknown");
    ck_assert_str_eq(scn_cmd_names[SCN_CMD_STARTTLS], "starttls");
}
END_TEST

/* ---- replies -------------------------------------------------------------- */

START_TEST(test_multiline_replies)
{
    struct scn_scenario *sc = parse_ok(
        "remote 10.0.0.1\n"
        "  ehlo 250-first\n"
        "  # a comment inside the reply is fine\n"
        "  ehlo 250-\"second # not a comment\"\n"
        "  ehlo 250-\n"
        "  ehlo 250 last   delay 3s when session >= 2\n"
        "  greet 220-only\n"
        "  greet 220\n"
        "  ehlo 250-A\n"
        "  EHLO 250 B when session 1\n");
    const struct scn_remote *r = &sc->remotes[0];
    ck_assert_int_eq(r->nreplies, 3);
    ck_assert_int_eq(r->replies[0].nlines, 4);
    ck_assert_str_eq(r->replies[0].lines[0], "250-first");
    ck_assert_str_eq(r->replies[0].lines[1], "250-second # not a comment");
    ck_assert_str_eq(r->replies[0].lines[2], "250-");
    ck_assert_str_eq(r->replies[0].lines[3], "250 last");
    ck_assert_int_eq(r->replies[0].delay, 3 * SEC);
    ck_assert_int_eq(r->replies[0].nconds, 1);
    ck_assert_int_eq(r->replies[0].conds[0].op, SCN_OP_GE);
    ck_assert_int_eq(r->replies[0].conds[0].value, 2);
    ck_assert_int_eq(r->replies[0].pos.line, 2);
    ck_assert_int_eq(r->replies[1].cmd, SCN_CMD_GREET);
    ck_assert_int_eq(r->replies[1].nlines, 2);
    ck_assert_str_eq(r->replies[1].lines[1], "220");
    ck_assert_int_eq(r->replies[2].nconds, 1);
    scn_free(sc);

    /* The longest reply that fits. */
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "remote 10.0.0.1\n");
    for (int i = 0; i < SCN_MAX_REPLY_LINES - 1; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "  ehlo 250-L%d\n", i);
    snprintf(text + n, sizeof text - n, "  ehlo 250 end\n");
    sc = parse_ok(text);
    ck_assert_int_eq(sc->remotes[0].replies[0].nlines, SCN_MAX_REPLY_LINES);
    scn_free(sc);
}
END_TEST

START_TEST(test_reply_clauses_and_quoting)
{
    struct scn_scenario *sc = parse_ok(
        "remote 10.0.0.1\n"
        "  rcpt 550 \"5.7.1 # no, when delay\" delay 1s when session > 2 and session <= 4\n"
        "  rcpt 451 two  spaces   kept when session 1 delay 5ms   # comment\n"
        "  rcpt 452 4.3.2 delay expected, try later when session != 3\n"
        "  banner 554 go away\n"
        "  mail 250\n"
        "  helo 250 ok when session 2\n"
        "  quit 221 bye\n  rset 250 ok\n  noop 250 ok\n  unknown 500 what\n"
        "  greet 220 \"quoted\" and not\n");
    const struct scn_remote *r = &sc->remotes[0];
    ck_assert_int_eq(r->nreplies, 11);
    ck_assert_str_eq(r->replies[0].lines[0], "550 5.7.1 # no, when delay");
    ck_assert_int_eq(r->replies[0].delay, 1 * SEC);
    ck_assert_int_eq(r->replies[0].nconds, 2);
    ck_assert_int_eq(r->replies[0].conds[0].op, SCN_OP_GT);
    ck_assert_int_eq(r->replies[0].conds[1].op, SCN_OP_LE);
    ck_assert_int_eq(r->replies[0].conds[1].value, 4);
    ck_assert_str_eq(r->replies[1].lines[0], "451 two  spaces   kept");
    ck_assert_int_eq(r->replies[1].delay, 5 * MS);
    ck_assert_int_eq(r->replies[1].conds[0].value, 1);
    /* "delay" is a clause only as the second word from the end. */
    ck_assert_str_eq(r->replies[2].lines[0], "452 4.3.2 delay expected, try later");
    ck_assert_int_eq(r->replies[2].conds[0].op, SCN_OP_NE);
    ck_assert_int_eq(r->replies[3].cmd, SCN_CMD_GREET);
    ck_assert_str_eq(r->replies[3].lines[0], "554 go away");
    ck_assert_str_eq(r->replies[4].lines[0], "250");
    ck_assert_int_eq(r->replies[5].cmd, SCN_CMD_HELO);
    ck_assert_int_eq(r->replies[6].cmd, SCN_CMD_QUIT);
    ck_assert_int_eq(r->replies[7].cmd, SCN_CMD_RSET);
    ck_assert_int_eq(r->replies[8].cmd, SCN_CMD_NOOP);
    ck_assert_int_eq(r->replies[9].cmd, SCN_CMD_UNKNOWN);
    /* Text that is not one quoted string is kept as written. */
    ck_assert_str_eq(r->replies[10].lines[0], "220 \"quoted\" and not");
    scn_free(sc);
}
END_TEST

/* ---- includes ------------------------------------------------------------- */

START_TEST(test_includes)
{
    make_tmpdir();
    write_file("world/shared.scn",
               "dns example.com MX 10 mx.example.com\n"
               "remote 10.1.1.1\n"
               "  greet 220 shared\n"
               "include more.scn\n");
    write_file("world/more.scn", "binding default 10.9.9.9\n");
    write_file("bodies/m1.eml", "Subject: x\r\n\r\nbody\r\n");
    write_file_n("bodies/nul.bin", "a\0b", 3);
    write_file("main.scn",
               "include world/shared.scn\n"
               "inject 1 from <a@b.c> to <c@example.com> body-file bodies/m1.eml\n"
               "inject 2 from <a@b.c> to <c@example.com> body-file bodies/nul.bin\n"
               "expect message 1 delivered\n");
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_file(in_tmp("main.scn"), &err);
    ck_assert_msg(sc != NULL, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    ck_assert_str_eq(sc->name, "main");
    ck_assert_int_eq(sc->nfiles, 3);
    ck_assert_str_eq(sc->files[0], in_tmp("main.scn"));
    ck_assert_str_eq(sc->files[1], in_tmp("world/shared.scn"));
    ck_assert_str_eq(sc->files[2], in_tmp("world/more.scn"));
    ck_assert_ptr_eq(sc->dns[0].pos.file, sc->files[1]);
    ck_assert_int_eq(sc->remotes[0].replies[0].pos.line, 3);
    ck_assert_ptr_eq(sc->bindings[0].pos.file, sc->files[2]);
    ck_assert_ptr_eq(sc->injects[0].pos.file, sc->files[0]);
    ck_assert_int_eq(sc->injects[0].pos.line, 2);
    ck_assert_uint_eq(sc->injects[0].body_len, 20);
    ck_assert(memcmp(sc->injects[0].body, "Subject: x\r\n\r\nbody\r\n", 20) == 0);
    ck_assert_uint_eq(sc->injects[1].body_len, 3);
    ck_assert(memcmp(sc->injects[1].body, "a\0b", 3) == 0);
    scn_free(sc);

    /* An error inside an included file is reported there. */
    write_file("world/bad.scn", "# line 1\nseed x\n");
    write_file("bad-main.scn", "scenario x\ninclude world/bad.scn\n");
    sc = scn_parse_file(in_tmp("bad-main.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_str_eq(err.file, in_tmp("world/bad.scn"));
    ck_assert_int_eq(err.line, 2);
    ck_assert_int_eq(err.col, 6);
    ck_assert_ptr_nonnull(strstr(err.msg, "bad seed 'x'"));

    /* A block does not continue past the end of the included file. */
    write_file("cont.scn", "include world/shared.scn\n  greet 220 x\n");
    sc = scn_parse_file(in_tmp("cont.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_str_eq(err.file, in_tmp("cont.scn"));
    ck_assert(err.line == 2 && err.col == 3);
    ck_assert_ptr_nonnull(strstr(err.msg, "indented line outside a block"));

    /* An unfinished multi-line reply at the end of an included file. */
    write_file("open.scn", "remote 10.2.2.2\n  ehlo 250-x\n");
    write_file("open-main.scn", "include open.scn\n");
    sc = scn_parse_file(in_tmp("open-main.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_str_eq(err.file, in_tmp("open.scn"));
    ck_assert(err.line == 2 && err.col == 8);
    ck_assert_ptr_nonnull(strstr(err.msg, "multi-line reply not finished"));

    /* Missing include and missing body file, at the path token. */
    write_file("missing.scn", "include nowhere.scn\n");
    sc = scn_parse_file(in_tmp("missing.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert(err.line == 1 && err.col == 9);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot include"));
    write_file("nobody.scn", "inject 1 from <a@b.c> to <d@e.f> body-file none.eml\n");
    sc = scn_parse_file(in_tmp("nobody.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert(err.line == 1 && err.col == 44);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot read body file"));

    /* A scenario file that does not exist: at 1:1, which every
     * file:line:col reader takes (0:0 is not a position). */
    sc = scn_parse_file(in_tmp("absent.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_int_eq(err.line, 1);
    ck_assert_int_eq(err.col, 1);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open scenario: No such file"));
    remove_tmpdir();
}
END_TEST

/* ---- errors --------------------------------------------------------------- */

START_TEST(test_errors_directives)
{
    expect_error("sed 5\n", 1, 1, "unknown directive 'sed'; did you mean 'seed'?");
    expect_error("frobnicate\n", 1, 1, "unknown directive 'frobnicate'");
    expect_error("seed\n", 1, 5, "missing argument: expected 'seed N'");
    expect_error("seed 1 2\n", 1, 8, "unexpected '2'");
    expect_error("seed -1\n", 1, 6, "bad seed '-1'");
    expect_error("seed 18446744073709551616\n", 1, 6, "bad seed");
    expect_error("seed 1\nseed 2\n", 2, 1, "'seed' given twice (first at t.scn:1)");
    expect_error("scenario a\nscenario b\n", 2, 1, "given twice");
    expect_error("scenario a b\n", 1, 12, "unexpected 'b'");
    expect_error("scenario a:b\n", 1, 10, "bad scenario name");
    expect_error("epoch 2020-02-30\n", 1, 7, "bad epoch '2020-02-30'");
    expect_error("epoch 2020-03-26T00:00:00+01:00\n", 1, 7, "bad epoch");
    expect_error("run 5s\n", 1, 5, "expected 'run for DURATION'");
    expect_error("run for 5x\n", 1, 9,
                 "bad duration '5x': expected a number with a unit us, ms, s, m, h or d");
    expect_error("dns latency 5x\n", 1, 13, "bad duration '5x'");
    expect_error("dns timeout\n", 1, 12, "missing argument");
    expect_error("config retry_intervl 5s\n", 1, 8,
                 "unknown config key 'retry_intervl'; did you mean 'retry_interval'?");
    expect_error("config retry_interval -5s\n", 1, 23, "bad duration '-5s'");
    expect_error("config max_retries -1\n", 1, 20, "bad value '-1' for max_retries");
    expect_error("config smtp_port 99999\n", 1, 18, "from 1 to 65535");
    expect_error("config retry_interval\n", 1, 22, "missing argument");
    expect_error("binding b 1.2.3.256\n", 1, 11, "bad IPv4 address '1.2.3.256'");
    expect_error("binding b 1.2.3.4 helo x\n", 1, 19, "unexpected 'helo'");
    expect_error("binding b 1.2.3.4\nbinding b 1.2.3.5\n", 2, 9, "binding 'b' already declared at t.scn:1");
    expect_error("dns a.test MXX 10 b.test\n", 1, 12, "NODATA or latency; did you mean 'MX'?");
    expect_error("dns a.test MX 10 .\n", 1, 15, "null MX");
    expect_error("dns a.test MX 70000 b.test\n", 1, 15, "bad MX preference");
    expect_error("dns a.test A 300.1.1.1\n", 1, 14, "bad IPv4 address");
    expect_error("dns a.test A 1.1.1.1 ttl\n", 1, 25, "missing value after 'ttl'");
    expect_error("dns a.test A 1.1.1.1 ttl 4294967296\n", 1, 26, "bad ttl");
    expect_error("dns a..test NXDOMAIN\n", 1, 5, "bad name 'a..test'");
    expect_error("dns a.test NXDOMAIN extra\n", 1, 21, "unexpected 'extra'");
    /* Answers that change: windows, query numbers, contradictions. */
    expect_error("dns a.test SERVFAIL from 10m until 5m\n", 1, 36, "'until' must be later than 'from'");
    expect_error("dns a.test SERVFAIL until 5m from 10m\n", 1, 35, "'from' must be earlier than 'until'");
    expect_error("dns a.test SERVFAIL from 1m from 2m\n", 1, 29, "'from' given twice");
    expect_error("dns a.test SERVFAIL when session 1\n", 1, 26, "unknown condition 'session'");
    expect_error("dns a.test SERVFAIL when query < 1\n", 1, 26, "hold for no query at all");
    expect_error("dns a.test SERVFAIL\ndns a.test MX 10 b.test\n", 2, 1,
                 "contradicts t.scn:1: a.test answers MX queries with SERVFAIL and with records");
    expect_error("dns a.test MX SERVFAIL until 10m\ndns A.test. MX 10 b.test from 9m\n", 2, 1,
                 "contradicts t.scn:1");
    expect_error("dns a.test MX TIMEOUT when query 1\ndns a.test SERVFAIL when query <= 2\n", 2, 1,
                 "with TIMEOUT and with SERVFAIL");
    expect_error("dns a.test A SERVFAIL\ndns a.test CNAME b.test\n", 2, 1, "answers A queries");
    scn_free(parse_ok("dns a.test MX SERVFAIL until 10m\ndns a.test MX 10 b.test from 10m\n"));
    scn_free(parse_ok("dns a.test MX SERVFAIL\ndns a.test A 1.2.3.4\n"));
    scn_free(parse_ok("dns a.test SERVFAIL when query 1\ndns a.test MX 10 b.test when query != 1\n"));
    scn_free(parse_ok("dns a.test MX SERVFAIL\ndns a.test CNAME b.test\n"));
    /* AAAA (RFC 3596): an IPv6 address, its own type for failures and
     * contradictions. */
    expect_error("dns a.test AAAA 1.2.3.4\n", 1, 17, "an AAAA record holds an IPv6 address, not '1.2.3.4'");
    expect_error("dns a.test AAAA 2001:db8::1::2\n", 1, 17, "bad IPv6 address");
    expect_error("dns a.test AAAA\n", 1, 16, "expected 'dns NAME AAAA ADDR6");
    expect_error("dns a.test AAAA SERVFAIL\ndns a.test AAAA ::1\n", 2, 1, "answers AAAA queries");
    expect_error("dns a.test AAAA ::1\ndns a.test SERVFAIL\n", 2, 1, "with SERVFAIL and with records");
    expect_error("dns a.test AAAA SERVFAIL\ndns a.test CNAME b.test\n", 2, 1, "answers AAAA queries");
    scn_free(parse_ok("dns a.test AAAA SERVFAIL\ndns a.test A 1.2.3.4\n"));
    scn_free(parse_ok("dns a.test A SERVFAIL\ndns a.test AAAA ::1\n"));
    {
        static const uint8_t want[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x25 };
        struct scn_scenario *sc = parse_ok("dns a.test AAAA 2001:DB8::25 ttl 60\n"
                                           "dns b.test AAAA NODATA until 5m\n");
        ck_assert_int_eq(sc->dns[0].kind, SCN_DNS_AAAA);
        ck_assert_mem_eq(sc->dns[0].addr6, want, 16);
        ck_assert_uint_eq(sc->dns[0].ttl, 60);
        ck_assert_int_eq(sc->dns[1].kind, SCN_DNS_NODATA);
        ck_assert(sc->dns[1].has_qtype);
        ck_assert_int_eq(sc->dns[1].qtype, SCN_DNS_AAAA);
        scn_free(sc);
    }
    expect_error("remote 10.0.0.1\nremote 10.0.0.1\n", 2, 8, "remote 10.0.0.1 already declared at t.scn:1");
    expect_error("remote 10.0.0\n", 1, 8, "bad IPv4 address");
    expect_error("include\n", 1, 8, "missing argument");
}
END_TEST

START_TEST(test_errors_remote)
{
    expect_error("remote 10.0.0.1\n  greet 600 no\n", 2, 9, "reply code 600 outside 100-599");
    expect_error("remote 10.0.0.1\n  greet 099 no\n", 2, 9, "outside 100-599");
    expect_error("remote 10.0.0.1\n  helo 25 hi\n", 2, 8, "bad reply code '25'");
    expect_error("remote 10.0.0.1\n  helo 250x hi\n", 2, 8, "bad reply code '250x'");
    expect_error("remote 10.0.0.1\n  helo\n", 2, 7, "missing argument");
    expect_error("remote 10.0.0.1\n  ehlp 250 ok\n", 2, 3,
                 "unknown remote line 'ehlp': expected connect, latency, jitter, bandwidth, segment, sndbuf, rcvbuf, loss, backlog, flush, close, reset, drop, stall, after, tls or a command");
    expect_error("remote 10.0.0.1\n  ehlp 250 ok\n", 2, 3, "did you mean 'ehlo'?");
    expect_error("remote 10.0.0.1\n  connect maybe\n", 2, 11, "unknown connect mode 'maybe'");
    expect_error("remote 10.0.0.1\n  connect accept latency\n", 2, 25, "missing argument");
    expect_error("remote 10.0.0.1\n  latency 4y\n", 2, 11, "bad duration '4y'");
    expect_error("remote 10.0.0.1\n  ehlo 250-a\n  rcpt 250 ok\n", 3, 3,
                 "multi-line reply not finished: the ehlo reply from line 2");
    expect_error("remote 10.0.0.1\n  ehlo 250-a\n  connect refuse\n", 3, 3, "multi-line reply not finished");
    expect_error("remote 10.0.0.1\n  ehlo 250-a\nseed 1\n", 3, 1, "multi-line reply not finished");
    expect_error("remote 10.0.0.1\n  ehlo 250-a\n", 2, 8, "multi-line reply not finished");
    expect_error("remote 10.0.0.1\n  ehlo 250-a\n  ehlo 251 b\n", 3, 8,
                 "reply code 251 does not continue the 250 reply from line 2");
    expect_error("remote 10.0.0.1\n  ehlo 250-a delay 1s\n", 2, 14, "'delay' belongs on the last line");
    expect_error("remote 10.0.0.1\n  ehlo 250-a when session 1\n", 2, 14, "'when' belongs on the last line");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when sessoin 1\n", 2, 20, "unknown condition 'sessoin'");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when\n", 2, 19, "missing condition");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when session\n", 2, 27, "missing number: expected 'when session|attempt|nth|transaction OP N");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when session -1\n", 2, 28, "bad condition number '-1'");
    expect_error("remote 10.0.0.1\n  ehlo 250 ok when transaction 1\n", 2, 20,
                 "'transaction' applies to mail, rcpt, data and dot replies");
    expect_error("remote 10.0.0.1\n  data 250 ok when rcpt > 1\n", 2, 20,
                 "'rcpt' conditions apply to rcpt replies only");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when query 1\n", 2, 20,
                 "'query' conditions apply to dns lines only");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when session 1 or session 2\n", 2, 30,
                 "conditions are joined with 'and'");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when session 1 and\n", 2, 33, "missing condition after 'and'");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok when session 1 and session 2 and session 3 and "
                 "session 4 and session 5\n", 2, 76, "too many conditions");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok delay 5x\n", 2, 21, "bad duration '5x'");
    expect_error("remote 10.0.0.1\n  rcpt 250 ok delay 1s delay 2s\n", 2, 15, "'delay' given twice");
    expect_error("remote 10.0.0.1\n  rcpt 250 \"a\\nb\"\n", 2, 12, "may not contain CR or LF");
    expect_error("  greet 220 x\n", 1, 3, "indented line outside a block");
    expect_error("remote 10.0.0.1\nseed 2\n  greet 220 x\n", 3, 3, "indented line outside a block");

    /* One line more than a reply may have. */
    char text[8192];
    size_t n = (size_t)snprintf(text, sizeof text, "remote 10.0.0.1\n");
    for (int i = 0; i < SCN_MAX_REPLY_LINES; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "  ehlo 250-L%d\n", i);
    snprintf(text + n, sizeof text - n, "  ehlo 250 end\n");
    expect_error(text, SCN_MAX_REPLY_LINES + 2, 8, "reply longer than 64 lines");
}
END_TEST

START_TEST(test_errors_inject_expect)
{
    expect_error("inject 1 from <a@b> to <c@d>\ninject 1 from <a@b> to <c@d>\n", 2, 8,
                 "message 1 already injected at t.scn:1");
    expect_error("inject 0 from <a@b> to <c@d>\n", 1, 8, "bad message id '0'");
    expect_error("inject 1 form <a@b> to <c@d>\n", 1, 10, "expected 'from <ADDR>'");
    expect_error("inject 1 from a@b to <c@d>\n", 1, 15, "bad sender 'a@b'");
    expect_error("inject 1 from <a@b> to <cd>\n", 1, 24, "bad recipient '<cd>'");
    expect_error("inject 1 from <a@b> to <c@d>,<@e>\n", 1, 30, "bad recipient '<@e>'");
    expect_error("inject 1 from <a@b> to <c@d>,,<e@f>\n", 1, 30, "empty recipient");
    expect_error("inject 1 from <a@b> to <c@d>,<e@>\n", 1, 30, "bad recipient '<e@>'");
    expect_error("inject 1 from <a@b> to\n", 1, 23, "missing argument");
    expect_error("inject 1 from <a@b> to ,\n", 1, 23, "missing recipient");
    expect_error("inject 1 from <a@b> to <c@d>, at 1s\n", 1, 31, "bad recipient 'at'");
    expect_error("inject 1 from <a@b> to <c@d> at\n", 1, 32, "missing value after 'at'");
    expect_error("inject 1 from <a@b> to <c@d> at 5q\n", 1, 33, "bad duration '5q'");
    expect_error("inject 1 from <a@b> to <c@d> size 5 body x\n", 1, 37,
                 "'size' and 'body' exclude each other");
    expect_error("inject 1 from <a@b> to <c@d> at 1s at 2s\n", 1, 36, "'at' given twice");
    expect_error("inject 1 from <a@b> to <c@d> sise 5\n", 1, 30, "did you mean 'size'?");
    expect_error("inject 1 from <a@b> to <c@d> size 99999999999\n", 1, 35, "bad size");
    expect_error("inject 1 from <a@b> to <c@d> binding nope\nbinding other 1.2.3.4\n", 1, 38,
                 "unknown binding 'nope'");
    expect_error("inject 1 from <a@b> to <c@d> binding othr\nbinding other 1.2.3.4\n", 1, 38,
                 "did you mean 'other'?");
    expect_error("expect message 4 delivered\n", 1, 16,
                 "expectation about message 4, but no 'inject 4' line");
    expect_error("inject 4 from <a@b> to <c@d>\nexpect message 4 delivred\n", 2, 18,
                 "partial or intact; did you mean 'delivered'?");
    expect_error("inject 4 from <a@b> to <c@d>\nexpect message 4 delivered within\n", 2, 34,
                 "missing argument");
    expect_error("inject 4 from <a@b> to <c@d>\nexpect message 4 delivered by 5m\n", 2, 28,
                 "unexpected 'by'");
    expect_error("expect hook in order\n", 1, 8, "did you mean 'hooks'?");
    /* A matcher or scope on a field the record never carries is an error. */
    expect_error("expect never trace dns query rcode=SERVFAIL\n", 1, 30,
                 "'dns query' records never carry 'rcode'");
    expect_error("expect never log_delivery_v1 conn_fd>=0\n", 1, 30,
                 "'hook log_delivery_v1' records never carry 'conn_fd'");
    expect_error("expect count trace smtp send for message 1 = 2\n", 1, 34,
                 "the scope 'for message' needs a field that 'smtp send' records never carry");
    expect_error("expect trace in order for conn 3\n  queue delivered msg=1\n", 2, 3,
                 "the scope 'for conn' needs");
    expect_error("expect never trace queue delivered at~1m\n", 1, 38, "not '~'");
    expect_error("expect never trace queue delivered at<5x\n", 1, 39, "bad duration '5x'");
    expect_error("expect never trace queue delivered for planet 3\n", 1, 40, "unknown scope 'planet'");
    scn_free(parse_ok("expect never trace plugin note anything=1\n"
                      "expect count trace queue attempt at>=10m for message 1 = 2\n"
                      "inject 1 from <a@b> to <c@d>\n"));
    expect_error("expect hooks in disorder\n", 1, 17, "unexpected 'disorder'");
    expect_error("expect hooks in order\nseed 1\n", 1, 1, "has no hook lines");
    expect_error("expect hooks in order\n", 1, 1, "has no hook lines");

    /* Hook lines and matchers. */
    const char *h = "expect hooks in order\n";
    char text[1024];
#define HOOKS(line) (snprintf(text, sizeof text, "%s%s", h, (line)), text)
    expect_error(HOOKS("  log_delivry_v1\n"), 2, 3,
                 "unknown hook 'log_delivry_v1'; did you mean 'log_delivery_v1'?");
    expect_error(HOOKS("  post_initiate_connection_smtp conn_fd=CONN_ERR_NOPE\n"), 2, 41,
                 "unknown name 'CONN_ERR_NOPE'");
    expect_error(HOOKS("  post_initiate_connection_smtp conn_fd=CONN_ERR_CONECT\n"), 2, 41,
                 "did you mean 'CONN_ERR_CONNECT'?");
    expect_error(HOOKS("  post_initiate_connection_smtp conn_fd!=CONN_ERROR_CONECT\n"), 2, 42,
                 "did you mean 'CONN_ERROR_CONNECT'?");
    expect_error(HOOKS("  post_initiate_connection_smtp err=CONN_ERR_CONNECT|CONN_ACTION_REQUEU\n"), 2, 54,
                 "unknown name 'CONN_ACTION_REQUEU'");
    expect_error(HOOKS("  log_delivery_v1 note~\"(\"\n"), 2, 24, "bad regular expression '('");
    expect_error(HOOKS("  log_delivery_v1 note<abc\n"), 2, 24, "'<' compares numbers");
    expect_error(HOOKS("  log_delivery_v1 note\n"), 2, 19, "bad matcher 'note'");
    expect_error(HOOKS("  log_delivery_v1 =x\n"), 2, 19, "bad matcher '=x'");
    expect_error(HOOKS("  log_delivery_v1 note=\n"), 2, 24, "missing value after 'note='");
    expect_error(HOOKS("  log_delivery_v1 note^x\n"), 2, 23, "expected an operator");
    expect_error(HOOKS("  log_delivery_v1 msg=1 msg=2 msg=3 msg=4 msg=5 msg=6 msg=7 msg=8 msg=9 "
                       "msg=10 msg=11 msg=12 msg=13 msg=14 msg=15 msg=16 msg=17\n"), 2, 122,
                 "too many matchers (at most 16");
    /* Sixteen is fine, and values that merely look like names are strings. */
    struct scn_scenario *sc = parse_ok(HOOKS("  log_delivery_v1 msg=1 msg=2 msg=3 msg=4 msg=5 "
                                             "msg=6 msg=7 msg=8 msg=9 msg=10 msg=11 msg=12 "
                                             "msg=13 msg=14 msg=15 msg=16\n"
                                             "  log_delivery_v1 note=\"CONN_ERR_NOPE\" "
                                             "note~CONN_ERR_.* msg=\"5\"\n"));
    ck_assert_int_eq(sc->expects[0].patterns[0].nmatchers, SCN_MAX_MATCHERS);
    ck_assert_int_eq(sc->expects[0].patterns[1].matchers[2].is_num, 0);
    scn_free(sc);
#undef HOOKS
}
END_TEST

START_TEST(test_errors_lexical)
{
    /* An unknown escape stays as written, so regular expressions read naturally. */
    struct scn_scenario *sc = parse_ok("description \"a\\qb \\\"c\\\\d\\.\"\n"
                                       "expect hooks in order\n"
                                       "  log_delivery_v1 note~\"^451 4\\.7\\.1\"\n");
    ck_assert_str_eq(sc->description, "a\\qb \"c\\d\\.");
    ck_assert_str_eq(sc->expects[0].patterns[0].matchers[0].value, "^451 4\\.7\\.1");
    scn_free(sc);
    expect_error("description \"abc\n", 1, 13, "unterminated quoted string");
    expect_error("description \"abc\\\n", 1, 13, "unterminated quoted string");
    expect_error("seed 1\n\n  \n# ok\nseed\x01 2\n", 5, 5, "unexpected control character 0x01");
    expect_error("seed 1\r\nseed 2\r\n", 2, 1, "given twice");   /* CRLF lines count */
}
END_TEST

/* ---- hostile input ---------------------------------------------------------- */

/* Stacked repetitions ("a++", POSIX XBD 9.4.6: undefined) are refused
 * before regcomp() sees them: glibc copies the subtree for each one, and
 * 75 of them took more than 3 GB (the parse campaign's out-of-memory,
 * tests/fuzz/regress/parse/).  Inside brackets or escaped they are
 * characters; one repetition after a group or an interval is fine. */
START_TEST(test_stacked_repetitions)
{
    const char *h = "expect hooks in order\n  log_delivery_v1 note~";
    char text[256];
#define NOTE(re) (snprintf(text, sizeof text, "%s\"%s\"\n", h, (re)), text)
    expect_error(NOTE("x++"), 2, 24, "a repetition ('+') right after another");
    expect_error(NOTE("a*{2}"), 2, 24, "('{') right after another");
    expect_error(NOTE("ab{1,2}+"), 2, 24, "('+') right after another");
    expect_error(NOTE("a?*"), 2, 24, "('*') right after another");
    scn_free(parse_ok(NOTE("[+*]+\\\\++(a+)+b{2}c?")));
    scn_free(parse_ok(NOTE("[]+]+x[[:alpha:]*]+")));
#undef NOTE
    expect_error("remote 192.0.2.1\n  rcpt 550 no when rcpt ~ \"^a++\"\n", 2, 27,
                 "('+') right after another");
}
END_TEST

/* A reply code that ends the buffer (a last line without its newline) is
 * judged on its own bytes, not on the byte after the buffer: here a '-'
 * that would make it the first line of an unfinished multi-line reply.
 * (The parse fuzz campaign's heap-buffer-overflow in remote_reply,
 * tests/fuzz/regress/parse/.) */
START_TEST(test_code_at_buffer_end)
{
    static const char mem[] = "remote 192.0.2.1\n  greet 220-more";
    size_t len = strlen("remote 192.0.2.1\n  greet 220");
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_buffer("t.scn", mem, len, &err);
    ck_assert_msg(sc != NULL, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    ck_assert_int_eq(sc->nremotes, 1);
    scn_free(sc);
}
END_TEST

START_TEST(test_hostile)
{
    /* A line one byte too long, and one that just fits. */
    size_t big = SCN_MAX_LINE + 1;
    char *text = malloc(big + 16);
    memset(text, 'a', big);
    strcpy(text + big, "\n");
    expect_error(text, 1, SCN_MAX_LINE + 1, "line longer than 4096 bytes");
    text[0] = '#';
    text[SCN_MAX_LINE] = '\n';
    text[SCN_MAX_LINE + 1] = '\0';
    struct scn_scenario *sc = parse_ok(text);
    scn_free(sc);

    /* The most tokens a line can hold. */
    memset(text, ' ', SCN_MAX_LINE);
    memcpy(text, "seed", 4);
    for (int i = 5; i + 1 < SCN_MAX_LINE; i += 2)
        text[i] = '1';
    text[SCN_MAX_LINE] = '\0';
    expect_error(text, 1, 8, "unexpected '1'");
    free(text);

    /* Garbage: random bytes, no NUL (a C string cannot hold one).  Any
     * outcome but a crash, a hang or a leak is fine. */
    unsigned long long state = 12345;
    char junk[600];
    for (int round = 0; round < 2000; round++) {
        size_t n = 0;
        size_t len = (size_t)(state >> 33) % (sizeof junk - 1);
        const char *alphabet = round % 2 ? "\"\\# \t\n-<>@,=~remotehlo 250 when delay session"
                                         : NULL;
        for (; n < len; n++) {
            state = state * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned char c = (unsigned char)(state >> 56);
            if (alphabet)
                c = (unsigned char)alphabet[c % strlen(alphabet)];
            junk[n] = c ? (char)c : '\n';
        }
        junk[n] = '\0';
        struct scn_error err;
        sc = scn_parse_string("junk.scn", junk, &err);
        scn_free(sc);
    }

    /* Structured garbage inside blocks. */
    const char *blocks[] = {
        "remote 1.2.3.4\n  ehlo 250-\"\n", "remote 1.2.3.4\n  ehlo \"250\" x\n",
        "remote 1.2.3.4\n  when when when\n", "remote 1.2.3.4\n  rcpt 250 delay 5q\n",
        "remote 1.2.3.4\n  rcpt 250 when\n", "expect hooks in order\n  \"log_delivery_v1\"\n",
        "expect hooks in order\n  log_delivery_v1 \"a\"=b\n", "inject\n", "dns\n", "dns x\n",
        "remote\n", "expect\n", "expect message\n", "binding\n", "config\n",
        "inject 1 from <> to <<a@b>>\n", "inject 1 from <> to <a@b> body\n",
    };
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        struct scn_error err;
        sc = scn_parse_string("t.scn", blocks[i], &err);
        ck_assert_msg(sc == NULL, "'%s' parsed", blocks[i]);
        ck_assert_msg(err.line >= 1 && err.col >= 1 && err.msg[0] != '\0', "'%s': %d:%d %s",
                      blocks[i], err.line, err.col, err.msg);
    }
}
END_TEST

START_TEST(test_hostile_files)
{
    make_tmpdir();
    struct scn_error err;
    struct scn_scenario *sc;

    /* A cycle through two files, and a file that includes itself. */
    write_file("a.scn", "seed 1\ninclude b.scn\n");
    write_file("b.scn", "# b\ninclude a.scn\n");
    sc = scn_parse_file(in_tmp("a.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_str_eq(err.file, in_tmp("b.scn"));
    ck_assert(err.line == 2 && err.col == 9);
    ck_assert_ptr_nonnull(strstr(err.msg, "include cycle"));
    write_file("self.scn", "include ./self.scn\n");
    sc = scn_parse_file(in_tmp("self.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_ptr_nonnull(strstr(err.msg, "include cycle"));

    /* A chain deeper than allowed, and one that just fits. */
    for (int i = 0; i <= SCN_MAX_INCLUDE_DEPTH + 1; i++) {
        char name[32], body[64];
        snprintf(name, sizeof name, "d%d.scn", i);
        snprintf(body, sizeof body, "include d%d.scn\n", i + 1);
        write_file(name, body);
    }
    char last[32];
    snprintf(last, sizeof last, "d%d.scn", SCN_MAX_INCLUDE_DEPTH + 2);
    write_file(last, "seed 9\n");
    sc = scn_parse_file(in_tmp("d0.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_ptr_nonnull(strstr(err.msg, "includes nested more than 8 deep"));
    ck_assert_int_eq(err.col, 9);
    sc = scn_parse_file(in_tmp("d2.scn"), &err);  /* d2 .. d10: depth 8 */
    ck_assert_msg(sc != NULL, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    ck_assert(sc->seed == 9);
    scn_free(sc);

    /* Binary files: a NUL byte, and an included binary. */
    write_file_n("nul.scn", "seed 1\nseed\0 2\n", 15);
    sc = scn_parse_file(in_tmp("nul.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert(err.line == 2 && err.col == 5);
    ck_assert_ptr_nonnull(strstr(err.msg, "control character 0x00"));
    write_file_n("bin.dat", "\x7f" "ELF\x02\x01\x01\0\0\0", 10);
    write_file("inc-bin.scn", "include bin.dat\n");
    sc = scn_parse_file(in_tmp("inc-bin.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_str_eq(err.file, in_tmp("bin.dat"));
    ck_assert(err.line == 1 && err.col == 1);

    /* Including a directory. */
    write_file("dir/x.scn", "seed 1\n");
    write_file("inc-dir.scn", "include dir\n");
    sc = scn_parse_file(in_tmp("inc-dir.scn"), &err);
    ck_assert_ptr_null(sc);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot include"));
    remove_tmpdir();
}
END_TEST

/* ---- config ------------------------------------------------------------- */

START_TEST(test_config)
{
    struct mta_config c;
    mta_config_defaults(&c);
    ck_assert_int_eq(c.max_recipients_per_transaction, 0);
    ck_assert_int_eq(c.rcpt_552, MTA_552_TRANSIENT);
    ck_assert_int_eq(c.recipient_limit_leftovers, MTA_LEFTOVERS_RESEND);
    ck_assert_int_eq(c.dsn_generation, 1);
    ck_assert_int_eq(c.max_outbound_connections, 32);
    ck_assert_int_eq(c.retry_interval, 1200 * SEC);
    ck_assert_int_eq(c.max_retry_interval, 43200 * SEC);
    ck_assert_int_eq(c.message_expiration, 86400 * SEC);
    ck_assert_int_eq(c.max_retries, 0);
    ck_assert_int_eq(c.mx_failures_to_delay, 50);
    ck_assert_int_eq(c.host_failure_retry, 120 * SEC);
    ck_assert_int_eq(c.connect_timeout, 300 * SEC);
    ck_assert_int_eq(c.idle_timeout, 5 * SEC);
    ck_assert_int_eq(c.max_deliveries_per_connection, 0);
    ck_assert_int_eq(c.delayed_queue_scan_interval, 15 * SEC);
    ck_assert_int_eq(c.dns_cache_ttl_max, 86400 * SEC);
    ck_assert_int_eq(c.timeout_banner, 300 * SEC);
    ck_assert_int_eq(c.timeout_data, 120 * SEC);
    ck_assert_int_eq(c.timeout_data_transfer, 180 * SEC);
    ck_assert_int_eq(c.timeout_dot, 600 * SEC);
    ck_assert_int_eq(c.timeout_quit, 300 * SEC);
    ck_assert_int_eq(c.smtp_port, 25);

    char err[256];
    ck_assert_int_eq(mta_config_set(&c, "Retry_Interval", "5m", err, sizeof err), 0);
    ck_assert_int_eq(c.retry_interval, 300 * SEC);
    ck_assert_int_eq(mta_config_set(&c, "max_retries", "7", err, sizeof err), 0);
    ck_assert_int_eq(c.max_retries, 7);
    ck_assert_int_eq(mta_config_set(&c, "MAX_RETRIES", "AUTO", err, sizeof err), 0);
    ck_assert_int_eq(c.max_retries, 0);
    ck_assert_int_eq(mta_config_set(&c, "idle_timeout", "0", err, sizeof err), 0);
    ck_assert_int_eq(c.idle_timeout, 0);
    ck_assert_int_eq(mta_config_set(&c, "connect_timeout", "1.5s", err, sizeof err), 0);
    ck_assert_int_eq(c.connect_timeout, 1500 * MS);

    ck_assert_int_eq(mta_config_set(&c, "retry_intervall", "5m", err, sizeof err), -1);
    ck_assert_str_eq(err, "unknown config key 'retry_intervall'; did you mean 'retry_interval'?");
    ck_assert_int_eq(mta_config_set(&c, "colour", "5", err, sizeof err), -1);
    ck_assert_str_eq(err, "unknown config key 'colour'");
    ck_assert_int_eq(mta_config_set(&c, "retry_interval", "0", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "at least 1us"));
    ck_assert_int_eq(mta_config_set(&c, "smtp_port", "0", err, sizeof err), -1);
    ck_assert_int_eq(mta_config_set(&c, "max_outbound_connections", "2147483648", err, sizeof err), -1);
    ck_assert_int_eq(mta_config_set(&c, "max_outbound_connections", "12abc", err, sizeof err), -1);
    ck_assert_int_eq(mta_config_set(&c, "max_outbound_connections", "", err, sizeof err), -1);
    ck_assert_int_eq(mta_config_set(&c, "max_deliveries_per_connection", "auto", err, sizeof err), -1);
    ck_assert_int_eq(c.max_outbound_connections, 32);   /* rejected values change nothing */
    ck_assert_ptr_null(strchr(err, '\n'));

    /* Every key takes a value of its kind: counts and durations "1", rates
     * "1/1s", address ranges "10.0.0.0/8". */
    int nkeys = 0;
    for (; mta_config_keys[nkeys] != NULL; nkeys++) {
        const char *key = mta_config_keys[nkeys];
        const char *v = strncmp(key, "throttle_", 9) == 0 ? "1/1s"
                      : strcmp(key, "prohibited_ips") == 0 ? "10.0.0.0/8"
                      : strcmp(key, "rcpt_552") == 0 ? "permanent"
                      : strcmp(key, "recipient_limit_leftovers") == 0 ? "defer"
                      : strcmp(key, "dsn_generation") == 0 ? "off"
                      : strcmp(key, "tls_policy") == 0 ? "x.test=verify"
                      : strcmp(key, "tls_required_failure") == 0 ? "bounce" : "1";
        ck_assert_msg(mta_config_set(&c, key, v, err, sizeof err) == 0, "%s %s: %s", key, v, err);
    }
    ck_assert_int_eq(nkeys, 32);

    /* tls_policy: a default level, or DOMAIN=LEVEL; Postfix's names too. */
    ck_assert_int_eq(mta_config_tls_level(&c, "X.test"), 3);
    ck_assert_int_eq(mta_config_tls_level(&c, "y.test"), 0);
    ck_assert_int_eq(mta_config_set(&c, "tls_policy", "may", err, sizeof err), 0);
    ck_assert_int_eq(mta_config_set(&c, "tls_policy", "x.test=encrypt", err, sizeof err), 0);
    ck_assert_int_eq(c.ntls_domains, 1);
    ck_assert_int_eq(mta_config_tls_level(&c, "x.test"), 2);
    ck_assert_int_eq(mta_config_tls_level(&c, "y.test"), 1);
    ck_assert_int_eq(mta_config_set(&c, "tls_policy", "x.test=sometimes", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad TLS level 'sometimes'"));
    ck_assert_int_eq(mta_config_set(&c, "tls_policy", "=verify", err, sizeof err), -1);

    /* Choices: one of the option's words, any case; anything else names them. */
    ck_assert_int_eq(c.rcpt_552, MTA_552_PERMANENT);
    ck_assert_int_eq(mta_config_set(&c, "rcpt_552", "Transient", err, sizeof err), 0);
    ck_assert_int_eq(c.rcpt_552, MTA_552_TRANSIENT);
    ck_assert_int_eq(mta_config_set(&c, "recipient_limit_leftovers", "later", err, sizeof err), -1);
    ck_assert_str_eq(err, "bad value 'later' for recipient_limit_leftovers: expected 'resend' or 'defer'");
    ck_assert_int_eq(c.recipient_limit_leftovers, MTA_LEFTOVERS_DEFER);
    ck_assert_int_eq(c.dsn_generation, 0);

    /* Rates and ranges. */
    ck_assert_int_eq(mta_config_set(&c, "throttle_messages", "10/1m", err, sizeof err), 0);
    ck_assert_int_eq(c.throttle_messages.count, 10);
    ck_assert_int_eq(c.throttle_messages.per, 60 * SEC);
    ck_assert_int_eq(mta_config_set(&c, "throttle_messages", "none", err, sizeof err), 0);
    ck_assert_int_eq(c.throttle_messages.count, 0);
    ck_assert_int_eq(mta_config_set(&c, "throttle_messages", "10", err, sizeof err), -1);
    ck_assert_int_eq(mta_config_set(&c, "throttle_messages", "0/1m", err, sizeof err), -1);
    ck_assert_int_eq(mta_config_set(&c, "throttle_messages", "5/0s", err, sizeof err), -1);
    ck_assert_int_eq(mta_config_set(&c, "prohibited_ips", "127.0.0.0/8,192.168.1.7", err, sizeof err), 0);
    ck_assert_int_eq(c.nprohibited, 2);
    ck_assert_uint_eq(c.prohibited[1].mask, 0xffffffffu);
    ck_assert_int_eq(mta_config_set(&c, "prohibited_ips", "10.0.0.0/33", err, sizeof err), -1);
    ck_assert_int_eq(c.nprohibited, 2);     /* unchanged after a rejected value */
    ck_assert_int_eq(mta_config_set(&c, "prohibited_ips", "none", err, sizeof err), 0);
    ck_assert_int_eq(c.nprohibited, 0);

    static const struct { const char *text; mta_usec_t usec; } d[] = {
        { "40ms", 40 * MS }, { "5m", 300 * SEC }, { "300", 300 * SEC }, { "7us", 7 },
        { "2h", 7200 * SEC }, { "1d", 86400 * SEC }, { "1.5s", 1500 * MS }, { "0.25ms", 250 },
        { "0", 0 }, { "1.000001s", SEC + 1 }, { "36500d", MTA_DURATION_MAX },
        { "3153600000000000us", MTA_DURATION_MAX }, { "3153600000000001us", MTA_DURATION_TOO_LONG },
        { "36500.000001d", MTA_DURATION_TOO_LONG }, { "36501d", MTA_DURATION_TOO_LONG },
        { "9223372036854775807us", MTA_DURATION_TOO_LONG },
        { "", -1 }, { "-1s", -1 }, { "+1s", -1 }, { "5x", -1 }, { "1.s", -1 }, { ".5s", -1 },
        { "0.5us", -1 }, { "1.0000001s", -1 }, { "5 s", -1 }, { "5S", -1 }, { "9223372036854776s", MTA_DURATION_TOO_LONG },
        { "99999999999999999999", -1 }, { "1ms5", -1 },
    };
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        ck_assert_msg(mta_parse_duration(d[i].text) == d[i].usec, "'%s' gave %lld", d[i].text,
                      (long long)mta_parse_duration(d[i].text));
    ck_assert_int_eq(mta_parse_duration(NULL), -1);
}
END_TEST

/* The "did you mean" distance: exact up to its bound, bound + 1 beyond it
 * (however far), case-insensitive, and bound + 1 past 64 characters. */
START_TEST(test_edit_distance)
{
    ck_assert_int_eq(mta_edit_distance("seed", "seed", 2), 0);
    ck_assert_int_eq(mta_edit_distance("SEED", "seed", 2), 0);
    ck_assert_int_eq(mta_edit_distance("sed", "seed", 2), 1);
    ck_assert_int_eq(mta_edit_distance("retry_intervall", "retry_interval", 2), 1);
    ck_assert_int_eq(mta_edit_distance("ehlp", "ehlo", 2), 1);
    ck_assert_int_eq(mta_edit_distance("MXX", "MX", 2), 1);
    ck_assert_int_eq(mta_edit_distance("kitten", "sitting", 2), 3);     /* 3 is beyond 2 */
    ck_assert_int_eq(mta_edit_distance("kitten", "sitting", 3), 3);     /* exact at the bound */
    ck_assert_int_eq(mta_edit_distance("kitten", "sitting", 9), 3);
    ck_assert_int_eq(mta_edit_distance("abcdef", "ghijkl", 2), 3);      /* rows past the bound */
    ck_assert_int_eq(mta_edit_distance("abcdef", "ghijkl", 9), 6);
    ck_assert_int_eq(mta_edit_distance("abc", "xyz", 3), 3);           /* a last row at the bound */
    ck_assert_int_eq(mta_edit_distance("a", "abcdefgh", 2), 3);         /* lengths alone */
    ck_assert_int_eq(mta_edit_distance("a", "abcdefgh", 9), 7);
    ck_assert_int_eq(mta_edit_distance("", "ab", 2), 2);
    ck_assert_int_eq(mta_edit_distance("ab", "ba", 2), 2);             /* a transposition */
    char longer[80];
    memset(longer, 'a', 65);
    longer[65] = '\0';
    ck_assert_int_eq(mta_edit_distance(longer, longer, 2), 3);
    longer[64] = '\0';
    ck_assert_int_eq(mta_edit_distance(longer, longer, 2), 0);
}
END_TEST

/* scenario_suite - every test above */
static Suite *scenario_suite(void)
{
    Suite *s = suite_create("scenario");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_full_scenario);
    tcase_add_test(tc, test_defaults);
    suite_add_tcase(s, tc);
    tc = tcase_create("replies");
    tcase_add_test(tc, test_multiline_replies);
    tcase_add_test(tc, test_reply_clauses_and_quoting);
    suite_add_tcase(s, tc);
    tc = tcase_create("include");
    tcase_add_test(tc, test_includes);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors_directives);
    tcase_add_test(tc, test_errors_remote);
    tcase_add_test(tc, test_errors_inject_expect);
    tcase_add_test(tc, test_errors_lexical);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hostile);
    tcase_add_test(tc, test_code_at_buffer_end);
    tcase_add_test(tc, test_stacked_repetitions);
    tcase_add_test(tc, test_hostile_files);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_add_test(tc, test_config);
    tcase_add_test(tc, test_edit_distance);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(scenario_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
