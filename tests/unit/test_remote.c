/*
 * test_remote - unit tests for sim/world/remote.c and remote_smtp.c:
 * banners, reply choice, exact reply bytes, DATA handling and the message
 * trace record, pipelining, reply delays, closing rules, bounds
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "parse.h"
#include "remote.h"

#define LOCAL mta_ip_v4(0xC0000201u)     /* 192.0.2.1 */
#define RADDR mta_ip_v4(0xC6336407u)     /* 198.51.100.7 */
#define L 1000                  /* 1 ms one-way */
#define MAX_SEGS 64
#define MAX_RECS 16

/* ---- the client side -------------------------------------------------- */

struct client {
    struct sim_sched *s;
    sim_ep *ep;
    int connected;
    int fin, rst;
    sim_usec fin_at;
    int timedout;                   /* its TCP gave up retransmitting */
    char in[65536];                 /* everything received, in order */
    size_t in_len;
    int nsegs;
    sim_usec seg_at[MAX_SEGS];
    size_t seg_off[MAX_SEGS];
    size_t seg_len[MAX_SEGS];
};

static void client_ev(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    struct client *c = arg;

    ck_assert_ptr_eq(ep, c->ep);
    switch (ev) {
    case SIM_EP_CONNECTED:
        c->connected = 1;
        break;
    case SIM_EP_DATA:
        ck_assert_int_lt(c->nsegs, MAX_SEGS);
        ck_assert_uint_le(c->in_len + len, sizeof c->in);
        c->seg_at[c->nsegs] = sim_sched_now(c->s);
        c->seg_off[c->nsegs] = c->in_len;
        c->seg_len[c->nsegs] = len;
        c->nsegs++;
        memcpy(c->in + c->in_len, data, len);
        c->in_len += len;
        break;
    case SIM_EP_FIN:
        c->fin = 1;
        c->fin_at = sim_sched_now(c->s);
        break;
    case SIM_EP_RST:
        c->rst = 1;
        break;
    case SIM_EP_TIMEDOUT:
        c->timedout = 1;
        break;
    default:
        ck_abort_msg("unexpected client event %d", ev);
    }
}

/* seg_is - segment i is exactly the given bytes */
static int seg_is(const struct client *c, int i, const char *want)
{
    return i < c->nsegs && c->seg_len[i] == strlen(want)
        && memcmp(c->in + c->seg_off[i], want, c->seg_len[i]) == 0;
}

#define ck_seg(c, i, want) \
    ck_assert_msg(seg_is((c), (i), (want)), "segment %d is not \"%s\" (have %d segments)", \
                  (i), (want), (c)->nsegs)

/* ---- trace capture ---------------------------------------------------- */

struct rec_copy {
    char name[32];
    int nfields;
    char key[MTA_TRACE_MAX_FIELDS][32];
    char val[MTA_TRACE_MAX_FIELDS][256];
    int has_num[MTA_TRACE_MAX_FIELDS];
    int64_t num[MTA_TRACE_MAX_FIELDS];
};

struct traces {
    int n;
    struct rec_copy rec[MAX_RECS];
};

static void on_trace(void *arg, const struct mta_trace_rec *rec)
{
    struct traces *t = arg;
    struct rec_copy *r;
    int i;

    ck_assert_str_eq(rec->kind, "remote");
    ck_assert_int_lt(t->n, MAX_RECS);
    r = &t->rec[t->n++];
    snprintf(r->name, sizeof r->name, "%s", rec->name);
    r->nfields = rec->nfields;
    for (i = 0; i < rec->nfields; i++) {
        snprintf(r->key[i], sizeof r->key[i], "%s", rec->field[i].key);
        snprintf(r->val[i], sizeof r->val[i], "%.*s", (int) rec->field[i].len,
                 rec->field[i].str);
        r->has_num[i] = rec->field[i].has_num;
        r->num[i] = rec->field[i].num;
    }
}

/* field - the value of key in record r, or NULL */
static const char *field(const struct rec_copy *r, const char *key)
{
    int i;

    for (i = 0; i < r->nfields; i++)
        if (strcmp(r->key[i], key) == 0)
            return r->val[i];
    return NULL;
}

/* ---- the world -------------------------------------------------------- */

struct world {
    struct sim_sched *s;
    struct sim_net *n;
    struct sim_remote *r;
    struct scn_remote script;
    struct traces tr;
};

static void world_init(struct world *w, const char *name, struct scn_reply *replies, int nreplies)
{
    memset(w, 0, sizeof *w);
    w->s = sim_sched_create(0);
    w->n = sim_net_create(w->s);
    sim_net_add_local(w->n, LOCAL);
    w->script.addr = RADDR;
    w->script.name = (char *) name;
    w->script.connect = SCN_CONNECT_ACCEPT;
    w->script.latency = L;
    w->script.nreplies = nreplies;
    w->script.replies = replies;
    w->r = sim_remote_create(w->s, w->n, &w->script, on_trace, &w->tr);
    ck_assert_ptr_nonnull(w->r);
}

static void world_free(struct world *w)
{
    sim_remote_destroy(w->r);
    sim_net_destroy(w->n);
    sim_sched_destroy(w->s);
}

/* client_open - connect and run until the banner (and anything else) arrived */
static void client_open(struct world *w, struct client *c)
{
    int err;

    memset(c, 0, sizeof *c);
    c->s = w->s;
    c->ep = sim_net_connect(w->n, LOCAL, RADDR, 25, client_ev, c, &err);
    ck_assert_ptr_nonnull(c->ep);
    sim_sched_run(w->s, -1, 0);
    ck_assert(c->connected);
}

/* say - one write from the client, then run to quiet */
static void say(struct world *w, struct client *c, const char *text)
{
    ck_assert_int_eq(sim_ep_send(c->ep, text, strlen(text)), 0);
    sim_sched_run(w->s, -1, 0);
}

/* client_close - close the client and check nothing is left behind */
static void client_close(struct world *w, struct client *c)
{
    sim_ep_close(c->ep);
    c->ep = NULL;
    sim_sched_run(w->s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w->n), 0);
}

/* reply - a scripted reply with up to three lines */
static struct scn_reply reply(enum scn_cmd cmd, int code, char **lines, int nlines)
{
    struct scn_reply r;

    memset(&r, 0, sizeof r);
    r.cmd = cmd;
    r.code = code;
    r.lines = lines;
    r.nlines = nlines;
    return r;
}

/* ---- tests ------------------------------------------------------------ */

START_TEST(default_banner_uses_address)
{
    struct world w;
    struct client c;

    world_init(&w, NULL, NULL, 0);
    client_open(&w, &c);
    ck_assert_int_eq(c.nsegs, 1);
    ck_seg(&c, 0, "220 198.51.100.7 ESMTP mtasim\r\n");
    /* SYN, SYN-ACK, the client's ACK, then the banner (net.h, "Handshake"). */
    ck_assert_int_eq(c.seg_at[0], 4 * L);
    ck_assert_int_eq(sim_remote_sessions(w.r), 1);
    ck_assert_int_eq(w.tr.n, 1);
    ck_assert_str_eq(w.tr.rec[0].name, "accept");
    ck_assert_str_eq(field(&w.tr.rec[0], "remote"), "198.51.100.7");
    ck_assert_str_eq(field(&w.tr.rec[0], "session"), "1");
    say(&w, &c, "EHLO client.test\r\n");
    ck_seg(&c, 1, "250-198.51.100.7\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                  "250 ENHANCEDSTATUSCODES\r\n");
    say(&w, &c, "HELO client.test\r\nNOOP\r\nRSET\r\nVRFY x\r\n");
    ck_seg(&c, 2, "250 198.51.100.7\r\n");
    ck_seg(&c, 3, "250 2.0.0 Ok\r\n");
    ck_seg(&c, 4, "250 2.0.0 Ok\r\n");
    ck_seg(&c, 5, "502 5.5.1 Error: command not implemented\r\n");
    /* RFC 5321 4.2.4: a command not recognized is 500, not 502. */
    say(&w, &c, "FROB x\r\n");
    ck_seg(&c, 6, "500 5.5.2 Error: command not recognized\r\n");
    /* RFC 5321 4.1.2: no NUL in a domain or a path: 501, nothing taken. */
    static const char nul_ehlo[] = "EHLO a\0b\r\nMAIL FROM:<a\0@b.test>\r\n";
    ck_assert_int_eq(sim_ep_send(c.ep, nul_ehlo, sizeof nul_ehlo - 1), 0);
    sim_sched_run(w.s, -1, 0);
    ck_seg(&c, 7, "501 5.5.2 Error: NUL character in the command's argument\r\n");
    ck_seg(&c, 8, "501 5.5.2 Error: NUL character in the command's argument\r\n");
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(scripted_banner_and_multiline_bytes)
{
    static char *greet[] = { "220 mx.example.com ESMTP scripted" };
    static char *ehlo[] = { "250-mx.example.com", "250-SIZE 1000", "250 PIPELINING" };
    struct scn_reply rs[2];
    struct world w;
    struct client c;

    rs[0] = reply(SCN_CMD_GREET, 220, greet, 1);
    rs[1] = reply(SCN_CMD_EHLO, 250, ehlo, 3);
    world_init(&w, "mx.example.com", rs, 2);
    client_open(&w, &c);
    ck_seg(&c, 0, "220 mx.example.com ESMTP scripted\r\n");
    say(&w, &c, "ehlo client.test\r\n");        /* verbs are case-insensitive */
    ck_assert_int_eq(c.nsegs, 2);
    ck_seg(&c, 1, "250-mx.example.com\r\n250-SIZE 1000\r\n250 PIPELINING\r\n");
    say(&w, &c, "HELO x\r\n");                   /* default uses the name */
    ck_seg(&c, 2, "250 mx.example.com\r\n");
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(when_session_picks_per_connection)
{
    static char *grey[] = { "451 4.7.1 greylisted, try later" };
    static char *ok[] = { "250 2.1.5 fine" };
    struct scn_reply rs[2];
    struct world w;
    struct client c;

    rs[0] = reply(SCN_CMD_RCPT, 451, grey, 1);
    rs[0].nconds = 1;
    rs[0].conds[0].kind = SCN_COND_SESSION;
    rs[0].conds[0].op = SCN_OP_EQ;
    rs[0].conds[0].value = 1;
    rs[1] = reply(SCN_CMD_RCPT, 250, ok, 1);
    world_init(&w, "mx", rs, 2);

    client_open(&w, &c);
    say(&w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    ck_seg(&c, 2, "451 4.7.1 greylisted, try later\r\n");
    client_close(&w, &c);

    client_open(&w, &c);
    say(&w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    ck_seg(&c, 2, "250 2.1.5 fine\r\n");
    ck_assert_int_eq(sim_remote_sessions(w.r), 2);
    /* accept, attempt (session 1), then the second accept */
    ck_assert_str_eq(w.tr.rec[2].name, "accept");
    ck_assert_str_eq(field(&w.tr.rec[2], "session"), "2");
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(data_unstuffing_sha_and_message_id)
{
    struct world w;
    struct client c;
    const struct rec_copy *m;
    const char *body = "From: a@b\r\nMessage-ID: <id.1@sender.test>\r\nSubject: x\r\n\r\n"
                       "..leading dot\r\n.\r\n";    /* not the end: one stuffed line, then "." */
    const char *want_body = "From: a@b\r\nMessage-ID: <id.1@sender.test>\r\nSubject: x\r\n\r\n"
                            ".leading dot\r\n";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen, i;
    char hex[65];
    char size[24];

    world_init(&w, "mx", NULL, 0);
    client_open(&w, &c);
    say(&w, &c, "EHLO c\r\n");
    say(&w, &c, "MAIL FROM:<a@sender.test> SIZE=100\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n");
    ck_seg(&c, 5, "354 End data with <CR><LF>.<CR><LF>\r\n");
    say(&w, &c, body);
    ck_assert_int_eq(c.nsegs, 7);
    ck_seg(&c, 6, "250 2.0.0 Ok: queued\r\n");
    ck_assert_int_eq(w.tr.n, 3);                 /* accept, attempt, message */
    ck_assert_str_eq(w.tr.rec[1].name, "attempt");
    ck_assert_str_eq(field(&w.tr.rec[1], "rcpt"), "x@y");
    ck_assert_str_eq(field(&w.tr.rec[1], "attempt"), "1");
    m = &w.tr.rec[2];
    ck_assert_str_eq(m->name, "message");
    ck_assert_str_eq(field(m, "remote"), "198.51.100.7");
    ck_assert_str_eq(field(m, "from"), "a@sender.test");
    ck_assert_str_eq(field(m, "rcpts"), "2");
    snprintf(size, sizeof size, "%zu", strlen(want_body));
    ck_assert_str_eq(field(m, "size"), size);
    ck_assert_str_eq(field(m, "message_id"), "<id.1@sender.test>");
    EVP_Digest(want_body, strlen(want_body), md, &mdlen, EVP_sha256(), NULL);
    for (i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    ck_assert_str_eq(field(m, "body_sha256"), hex);
    /* The numbers are numbers too. */
    ck_assert_int_eq(m->has_num[3], 1);
    ck_assert_str_eq(m->key[3], "rcpts");
    ck_assert_int_eq(m->num[3], 2);

    /* The transaction is over: a new one starts cleanly, without Message-ID. */
    say(&w, &c, "MAIL FROM:<>\r\nRCPT TO:<x@y>\r\nDATA\r\n");
    say(&w, &c, "no headers here\r\n.\r\n");
    ck_assert_int_eq(w.tr.n, 5);
    ck_assert_str_eq(field(&w.tr.rec[4], "from"), "");
    ck_assert_str_eq(field(&w.tr.rec[4], "message_id"), "");
    ck_assert_str_eq(field(&w.tr.rec[4], "rcpts"), "1");
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(body_split_across_segments)
{
    struct world w;
    struct client c;

    world_init(&w, "mx", NULL, 0);
    client_open(&w, &c);
    say(&w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n");
    say(&w, &c, "Message-ID: <s");
    say(&w, &c, "plit@x>\r\n\r\nbody\r");
    ck_assert_int_eq(w.tr.n, 2);                 /* accept, attempt */
    say(&w, &c, "\n.");
    ck_assert_int_eq(w.tr.n, 2);                 /* "." alone is not the end yet */
    say(&w, &c, "\r\n");
    ck_assert_int_eq(w.tr.n, 3);
    ck_assert_str_eq(field(&w.tr.rec[2], "message_id"), "<split@x>");
    ck_assert_str_eq(field(&w.tr.rec[2], "size"), "31");
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(pipelined_commands_answered_in_order)
{
    static char *rcpt_bad[] = { "550 5.1.1 no such user" };
    struct scn_reply rs[1];
    struct world w;
    struct client c;
    int i;

    rs[0] = reply(SCN_CMD_RCPT, 550, rcpt_bad, 1);
    world_init(&w, "mx", rs, 1);
    client_open(&w, &c);
    say(&w, &c, "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\nNOOP\r\n");
    ck_assert_int_eq(c.nsegs, 6);               /* banner + five replies, one write each */
    ck_seg(&c, 2, "250 2.1.0 Ok\r\n");
    ck_seg(&c, 3, "550 5.1.1 no such user\r\n");
    /* No recipient accepted: DATA is refused and NOOP is a command, not body. */
    ck_seg(&c, 4, "554 5.5.1 Error: no valid recipients\r\n");
    ck_seg(&c, 5, "250 2.0.0 Ok\r\n");
    for (i = 1; i < 6; i++)
        ck_assert_int_eq(c.seg_at[i], c.seg_at[1]);
    say(&w, &c, "RCPT TO:<x@y>\r\nRSET\r\nRCPT TO:<x@y>\r\nDATA\r\n");
    ck_seg(&c, 6, "550 5.1.1 no such user\r\n");
    ck_seg(&c, 7, "250 2.0.0 Ok\r\n");
    /* The script answers every RCPT, in a transaction or not: a scripted
     * line is always the reply; "need MAIL" only where it is silent. */
    ck_seg(&c, 8, "550 5.1.1 no such user\r\n");
    ck_seg(&c, 9, "503 5.5.1 Error: need MAIL command\r\n");
    say(&w, &c, "MAIL FROM:<a@b>\r\nMAIL FROM:<a@b>\r\n");
    ck_seg(&c, 11, "503 5.5.1 Error: nested MAIL command\r\n");
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(reply_delay_holds_back_later_replies)
{
    static char *slow[] = { "250 2.1.5 slowly" };
    struct scn_reply rs[1];
    struct world w;
    struct client c;
    sim_usec t0;

    rs[0] = reply(SCN_CMD_RCPT, 250, slow, 1);
    rs[0].delay = 5000000;                      /* 5 s */
    world_init(&w, "mx", rs, 1);
    client_open(&w, &c);
    t0 = sim_sched_now(w.s);
    say(&w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nNOOP\r\n");
    ck_assert_int_eq(c.nsegs, 5);
    ck_seg(&c, 1, "250 2.1.0 Ok\r\n");
    ck_assert_int_eq(c.seg_at[1], t0 + 2 * L);
    ck_seg(&c, 2, "250 2.1.5 slowly\r\n");
    ck_assert_int_eq(c.seg_at[2], t0 + 2 * L + 5000000);
    /* The second delayed reply waits its own delay after the first. */
    ck_seg(&c, 3, "250 2.1.5 slowly\r\n");
    ck_assert_int_eq(c.seg_at[3], t0 + 2 * L + 10000000);
    ck_seg(&c, 4, "250 2.0.0 Ok\r\n");
    ck_assert_int_eq(c.seg_at[4], t0 + 2 * L + 10000000);
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(reply_421_closes)
{
    static char *busy[] = { "421 4.7.0 too busy" };
    struct scn_reply rs[1];
    struct world w;
    struct client c;

    rs[0] = reply(SCN_CMD_MAIL, 421, busy, 1);
    rs[0].delay = 1000;
    world_init(&w, "mx", rs, 1);
    client_open(&w, &c);
    say(&w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nQUIT\r\n");
    ck_assert_int_eq(c.nsegs, 2);               /* nothing after the 421 */
    ck_seg(&c, 1, "421 4.7.0 too busy\r\n");
    ck_assert(c.fin);
    ck_assert_int_eq(c.fin_at, c.seg_at[1]);
    ck_assert_int_eq(sim_ep_send(c.ep, "QUIT\r\n", 6), -EPIPE);
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(banner_421_closes_and_rejected_banner_allows_only_quit)
{
    static char *g421[] = { "421 4.3.2 go away" };
    static char *g554[] = { "554 5.7.1 no thanks" };
    struct scn_reply rs[2];
    struct world w;
    struct client c;

    rs[0] = reply(SCN_CMD_GREET, 421, g421, 1);
    rs[0].nconds = 1;
    rs[0].conds[0].kind = SCN_COND_SESSION;
    rs[0].conds[0].op = SCN_OP_LE;
    rs[0].conds[0].value = 1;
    rs[1] = reply(SCN_CMD_GREET, 554, g554, 1);
    world_init(&w, "mx", rs, 2);

    client_open(&w, &c);
    ck_seg(&c, 0, "421 4.3.2 go away\r\n");
    ck_assert(c.fin);
    client_close(&w, &c);

    client_open(&w, &c);
    ck_seg(&c, 0, "554 5.7.1 no thanks\r\n");
    ck_assert(!c.fin);
    say(&w, &c, "EHLO c\r\nMAIL FROM:<a@b>\r\nQUIT\r\n");
    ck_seg(&c, 1, "503 5.5.1 Error: bad sequence of commands\r\n");
    ck_seg(&c, 2, "503 5.5.1 Error: bad sequence of commands\r\n");
    ck_seg(&c, 3, "221 2.0.0 Bye\r\n");
    ck_assert(c.fin);
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(quit_closes)
{
    struct world w;
    struct client c;

    world_init(&w, "mx", NULL, 0);
    client_open(&w, &c);
    say(&w, &c, "QUIT\r\nNOOP\r\n");
    ck_assert_int_eq(c.nsegs, 2);
    ck_seg(&c, 1, "221 2.0.0 Bye\r\n");
    ck_assert(c.fin);
    ck_assert_int_eq(c.fin_at, c.seg_at[1]);
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(long_line_and_bare_lf)
{
    static char line[5000 + 3];
    struct world w;
    struct client c;

    world_init(&w, "mx", NULL, 0);
    client_open(&w, &c);
    memset(line, 'A', 5000);
    memcpy(line + 5000, "\r\n", 3);
    say(&w, &c, line);
    say(&w, &c, "NOOP\r\n");
    ck_assert_int_eq(c.nsegs, 3);
    ck_seg(&c, 1, "500 5.5.2 Line too long\r\n");
    ck_seg(&c, 2, "250 2.0.0 Ok\r\n");
    ck_assert_int_eq(w.tr.n, 1);                /* no bare LF so far */
    say(&w, &c, "NOOP\nNOOP\n");
    ck_seg(&c, 4, "250 2.0.0 Ok\r\n");
    ck_assert_int_eq(w.tr.n, 2);                /* reported once per session */
    ck_assert_str_eq(w.tr.rec[1].name, "bare_lf");
    ck_assert_str_eq(field(&w.tr.rec[1], "session"), "1");

    /* Long body lines are fine: streamed, not rejected. */
    say(&w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n");
    say(&w, &c, line);
    say(&w, &c, ".\r\n");
    ck_seg(&c, 8, "250 2.0.0 Ok: queued\r\n");
    ck_assert_str_eq(field(&w.tr.rec[3], "size"), "5002");   /* after the attempt */
    client_close(&w, &c);
    world_free(&w);
}
END_TEST

START_TEST(client_fin_and_rst_end_the_session)
{
    static char *slow[] = { "250 2.0.0 later" };
    struct scn_reply rs[1];
    struct world w;
    struct client c;

    rs[0] = reply(SCN_CMD_NOOP, 250, slow, 1);
    rs[0].delay = 1000000;
    world_init(&w, "mx", rs, 1);
    client_open(&w, &c);
    ck_assert_int_eq(sim_ep_send(c.ep, "NOOP\r\n", 6), 0);
    sim_ep_close(c.ep);                         /* FIN while a reply is pending */
    c.ep = NULL;
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);

    client_open(&w, &c);
    ck_assert_int_eq(sim_ep_send(c.ep, "NOOP\r\n", 6), 0);
    sim_sched_run(w.s, sim_sched_now(w.s) + 2 * L, 0);
    sim_ep_reset(c.ep);
    c.ep = NULL;
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    ck_assert_int_eq(sim_remote_sessions(w.r), 2);
    world_free(&w);
}
END_TEST

/* Destroying a remote with sessions open releases them (ASan checks). */
START_TEST(destroy_with_open_sessions)
{
    static char *slow[] = { "250 2.0.0 later" };
    struct scn_reply rs[1];
    struct world w;
    struct client c;

    rs[0] = reply(SCN_CMD_NOOP, 250, slow, 1);
    rs[0].delay = 1000000;
    world_init(&w, "mx", rs, 1);
    client_open(&w, &c);
    ck_assert_int_eq(sim_ep_send(c.ep, "NOOP\r\n", 6), 0);
    sim_sched_run(w.s, sim_sched_now(w.s) + 2 * L, 0);
    world_free(&w);
}
END_TEST

START_TEST(duplicate_address_is_refused)
{
    struct world w;

    world_init(&w, "mx", NULL, 0);
    ck_assert_ptr_null(sim_remote_create(w.s, w.n, &w.script, NULL, NULL));
    world_free(&w);
}
END_TEST

/* ---- scripted behaviour beyond replies ---------------------------------- */

/* A world whose remote is the first "remote" of a scenario text. */
struct sworld {
    struct world w;
    struct scn_scenario *sc;
};

static void sworld_init(struct sworld *sw, const char *text, uint64_t seed)
{
    struct scn_error err;

    sw->sc = scn_parse_string("t.scn", text, &err);
    ck_assert_msg(sw->sc != NULL, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
    ck_assert_int_ge(sw->sc->nremotes, 1);
    memset(&sw->w, 0, sizeof sw->w);
    sw->w.s = sim_sched_create(0);
    sw->w.n = sim_net_create(sw->w.s);
    sim_net_set_seed(sw->w.n, seed);
    sim_net_add_local(sw->w.n, LOCAL);
    sw->w.r = sim_remote_create(sw->w.s, sw->w.n, &sw->sc->remotes[0], on_trace, &sw->w.tr);
    ck_assert_ptr_nonnull(sw->w.r);
}

static void sworld_free(struct sworld *sw)
{
    world_free(&sw->w);
    scn_free(sw->sc);
}

/* last_rec - the latest trace record named name, or NULL */
static const struct rec_copy *last_rec(const struct world *w, const char *name)
{
    int i;

    for (i = w->tr.n - 1; i >= 0; i--)
        if (strcmp(w->tr.rec[i].name, name) == 0)
            return &w->tr.rec[i];
    return NULL;
}

/* raw sends bytes as written; the code it starts with drives the state. */
START_TEST(raw_reply_byte_exact)
{
    struct sworld sw;
    struct client c;

    sworld_init(&sw, "remote 198.51.100.7\n"
                     "  ehlo raw \"2x0 odd\\n250 more\"\n"
                     "  mail raw \"250 ok\\r\\n\"\n", 1);
    client_open(&sw.w, &c);
    say(&sw.w, &c, "EHLO x\r\n");
    ck_seg(&c, 1, "2x0 odd\n250 more");
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    ck_seg(&c, 2, "250 ok\r\n");
    ck_seg(&c, 3, "250 2.1.5 Ok\r\n");       /* the raw 250 opened the transaction */
    client_close(&sw.w, &c);
    sworld_free(&sw);
}
END_TEST

/* after rcpt 2 reset: the replies to MAIL and the first RCPT are written
 * before the RST - and, still in flight, discarded by it, as TCP does. */
START_TEST(after_nth_command_reset)
{
    struct sworld sw;
    struct client c;
    const struct rec_copy *f;

    sworld_init(&sw, "remote 198.51.100.7\n  after rcpt 2 reset\n", 1);
    client_open(&sw.w, &c);
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<e@d>\r\nDATA\r\n");
    ck_assert_int_eq(c.nsegs, 1);                /* the banner only */
    ck_assert(c.rst);
    f = last_rec(&sw.w, "fault");
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(field(f, "action"), "reset");
    sim_ep_close(c.ep);
    sim_sched_run(sw.w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(sw.w.n), 0);
    sworld_free(&sw);
}
END_TEST

/* dot drop: no reply, no FIN, no RST - the client only has its timer. */
START_TEST(dot_drop_never_answers)
{
    struct sworld sw;
    struct client c;

    sworld_init(&sw, "remote 198.51.100.7\n  dot drop\n", 1);
    client_open(&sw.w, &c);
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    ck_assert_int_eq(c.nsegs, 4);
    say(&sw.w, &c, "body\r\n.\r\nQUIT\r\n");
    ck_assert_int_eq(c.nsegs, 4);
    ck_assert(!c.fin && !c.rst);
    /* Nothing acknowledged the data: the client's TCP gave up (tcp_retries2). */
    ck_assert(c.timedout);
    ck_assert_ptr_null(last_rec(&sw.w, "message"));
    client_close(&sw.w, &c);
    sworld_free(&sw);
}
END_TEST

/* close after mail with a slow close: the FIN comes "close delay" later. */
START_TEST(close_action_and_slow_close)
{
    struct sworld sw;
    struct client c;
    sim_usec sent;

    sworld_init(&sw, "remote 198.51.100.7\n  close delay 3s\n  after mail close\n", 1);
    client_open(&sw.w, &c);
    sent = sim_sched_now(sw.w.s);
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\n");
    ck_assert_int_eq(c.nsegs, 1);                /* the banner only */
    ck_assert(c.fin);
    ck_assert_int_eq(c.fin_at, sent + L + 3000000 + L);
    client_close(&sw.w, &c);
    sworld_free(&sw);
}
END_TEST

/* attempt: counted per (sender, first recipient) over sessions. */
START_TEST(attempt_counts_across_sessions)
{
    struct sworld sw;
    struct client c;
    int i;

    sworld_init(&sw, "remote 198.51.100.7\n  rcpt 451 4.7.1 wait when attempt < 3\n", 1);
    for (i = 1; i <= 3; i++) {
        client_open(&sw.w, &c);
        say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nRCPT TO:<x@d>\r\n");
        ck_seg(&c, 2, i < 3 ? "451 4.7.1 wait\r\n" : "250 2.1.5 Ok\r\n");
        /* The second RCPT belongs to the same transaction and attempt. */
        ck_seg(&c, 3, i < 3 ? "451 4.7.1 wait\r\n" : "250 2.1.5 Ok\r\n");
        client_close(&sw.w, &c);
    }
    /* Another first recipient is a new key: attempt 1 again. */
    client_open(&sw.w, &c);
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<other@d>\r\n");
    ck_seg(&c, 2, "451 4.7.1 wait\r\n");
    ck_assert_str_eq(field(last_rec(&sw.w, "attempt"), "attempt"), "1");
    client_close(&sw.w, &c);
    sworld_free(&sw);
}
END_TEST

/* rcpt ~ REGEX: per-recipient replies by address pattern. */
START_TEST(rcpt_pattern_replies)
{
    struct sworld sw;
    struct client c;

    sworld_init(&sw, "remote 198.51.100.7\n"
                     "  rcpt 550 5.1.1 no such user when rcpt ~ \"^nobody@\"\n", 1);
    client_open(&sw.w, &c);
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<nobody@d>\r\nRCPT TO:<Nobody@d>\r\n");
    ck_seg(&c, 2, "550 5.1.1 no such user\r\n");
    ck_seg(&c, 3, "250 2.1.5 Ok\r\n");           /* case-sensitive, as written */
    client_close(&sw.w, &c);
    sworld_free(&sw);
}
END_TEST

/* flush together: the replies to one pipelined segment are one write. */
START_TEST(flush_together_one_segment)
{
    struct sworld sw;
    struct client c;

    sworld_init(&sw, "remote 198.51.100.7\n  flush together\n", 1);
    client_open(&sw.w, &c);
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n");
    ck_assert_int_eq(c.nsegs, 2);
    ck_seg(&c, 1, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
    client_close(&sw.w, &c);
    sworld_free(&sw);
}
END_TEST

/* reset after N bytes: exactly N bytes reach the state machine. */
START_TEST(reset_after_bytes)
{
    struct sworld sw;
    struct client c;

    /* "MAIL FROM:<a@b>\r\n" is 17 bytes: the MAIL is answered, the RCPT
     * (which would complete at byte 32) never arrives whole. */
    sworld_init(&sw, "remote 198.51.100.7\n  reset after 20 bytes\n", 1);
    client_open(&sw.w, &c);
    say(&sw.w, &c, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    ck_assert(c.rst);
    ck_assert_int_eq(c.nsegs, 1);                /* the MAIL reply was lost too */
    ck_assert_ptr_null(last_rec(&sw.w, "attempt"));
    sim_ep_close(c.ep);
    sim_sched_run(sw.w.s, -1, 0);
    sworld_free(&sw);
}
END_TEST

/* probability: about the given share, the same for the same seed. */
START_TEST(probability_replies_follow_the_seed)
{
    int counts[2] = { 0, 0 }, run, i;
    char first[2][64];

    for (run = 0; run < 2; run++) {
        struct sworld sw;
        struct client c;

        sworld_init(&sw, "remote 198.51.100.7\n  rcpt 451 4.7.1 later probability 0.3\n", 42);
        client_open(&sw.w, &c);
        say(&sw.w, &c, "MAIL FROM:<a@b>\r\n");
        for (i = 0; i < 60; i++) {
            say(&sw.w, &c, "RCPT TO:<c@d>\r\n");
            ck_assert_int_eq(c.nsegs, i + 3);
            if (memcmp(c.in + c.seg_off[i + 2], "451", 3) == 0)
                counts[run]++;
            first[run][i] = c.in[c.seg_off[i + 2]];
        }
        client_close(&sw.w, &c);
        sworld_free(&sw);
    }
    ck_assert_int_eq(counts[0], counts[1]);
    ck_assert_int_eq(memcmp(first[0], first[1], 60), 0);
    ck_assert_int_gt(counts[0], 8);
    ck_assert_int_lt(counts[0], 30);
}
END_TEST

static Suite *remote_suite(void)
{
    Suite *su = suite_create("remote");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, default_banner_uses_address);
    tcase_add_test(tc, scripted_banner_and_multiline_bytes);
    tcase_add_test(tc, when_session_picks_per_connection);
    tcase_add_test(tc, data_unstuffing_sha_and_message_id);
    tcase_add_test(tc, body_split_across_segments);
    tcase_add_test(tc, pipelined_commands_answered_in_order);
    tcase_add_test(tc, reply_delay_holds_back_later_replies);
    tcase_add_test(tc, reply_421_closes);
    tcase_add_test(tc, banner_421_closes_and_rejected_banner_allows_only_quit);
    tcase_add_test(tc, quit_closes);
    tcase_add_test(tc, long_line_and_bare_lf);
    tcase_add_test(tc, raw_reply_byte_exact);
    tcase_add_test(tc, after_nth_command_reset);
    tcase_add_test(tc, dot_drop_never_answers);
    tcase_add_test(tc, close_action_and_slow_close);
    tcase_add_test(tc, attempt_counts_across_sessions);
    tcase_add_test(tc, rcpt_pattern_replies);
    tcase_add_test(tc, flush_together_one_segment);
    tcase_add_test(tc, reset_after_bytes);
    tcase_add_test(tc, probability_replies_follow_the_seed);
    tcase_add_test(tc, client_fin_and_rst_end_the_session);
    tcase_add_test(tc, destroy_with_open_sessions);
    tcase_add_test(tc, duplicate_address_is_refused);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(remote_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
