/*
 * smtp_client - the outbound SMTP session, as an explicit state machine
 *
 * SYNOPSIS
 *   c = smtp_conn_create(m, d, slot, addr, host);    before the connect
 *   smtp_conn_start(c, fd, finish, timeout, ud);     after it was started
 *   smtp_conn_wake_idle(d, slot);                    reuse idle sessions
 *
 * DESCRIPTION
 *   One session per connection, for one (domain, binding) pair.  States
 *   and the replies that move them (RFC 5321 4.3.2):
 *
 *     CONNECTING --connected--> BANNER
 *     BANNER   2xx: EHLO -> EHLO          other: QUIT (transient, next MX)
 *     EHLO     2xx: -> next transaction   500/501/502/504/550: HELO -> HELO
 *              other: QUIT
 *     HELO     2xx: -> next transaction   other: QUIT
 *     RSET     2xx: -> transaction        other: QUIT
 *     MAIL, RCPT, DATA: the transaction (below)
 *     BODY     the data, as the socket takes it; no byte left for
 *              timeout_data_transfer: lost; the last byte left -> DOT
 *     DOT      2xx delivered, 4xx transient, 5xx permanent -> next transaction
 *     IDLE     new mail for the pair: -> transaction; idle_timeout: QUIT
 *     QUIT     any reply or EOF: close
 *
 *   A transaction sends MAIL FROM (with SIZE= when the server has SIZE,
 *   BODY=8BITMIME for an 8-bit body when it has 8BITMIME), one RCPT TO per
 *   pending recipient, then DATA if any recipient was accepted.  Without
 *   PIPELINING each command waits for its reply.  With PIPELINING (RFC
 *   2920) MAIL, every RCPT and DATA go out in one write and the replies are
 *   taken in order from a queue of expected replies; after a failed MAIL,
 *   or with no recipient accepted, the remaining replies are consumed, and
 *   a 354 to DATA is answered with an empty message (".") whose reply is
 *   ignored (RFC 2920 3.1).  A message larger than the server's SIZE limit
 *   fails permanently without a MAIL (RFC 1870 6.1).
 *
 *   "Next transaction": stop with QUIT when Max_Deliveries_Per_Connection
 *   is reached or a smtp_should_session_shutdown provider says so; wait
 *   (QUIT, and the maintainer comes back) while throttle_messages is
 *   exhausted; otherwise take a message (a mail_queue_get_next_active
 *   provider may choose it from the pair's active queue; else the first)
 *   with RSET first when the connection already carried one.  With no
 *   message, wait idle_timeout for one (0: QUIT at once).
 *
 *   How a failure reply counts: by its code (4xx transient, 5xx
 *   permanent) unless a smtp_error_classify provider overrides it.
 *
 *   At any stage: a 421 reply means the server is closing; EOF, a reset,
 *   a malformed reply or a phase timeout end the session too.  The message
 *   in flight then gets a transient failure for every recipient not yet
 *   decided in this attempt, and goes back to the delayed queue: never
 *   lost.  One case is unavoidable in SMTP (RFC 1047): when the connection
 *   is lost after the final "." but before the reply, the remote may have
 *   accepted the message; it is retried and may arrive twice.  The note
 *   says "connection lost after end of data".
 *
 *   Every line sent and received is traced (kind "smtp": send / recv,
 *   conn=FD, line=...); the message body (smtp_data.h) is one "send"
 *   record with its size, and a "sent" record when its last byte left.
 */
#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/core/dec_outbound_connections.h"
#include "hooks/core/inc_outbound_connections.h"
#include "hooks/core/log_client_connection_failure.h"
#include "hooks/core/log_attempt_v1.h"
#include "hooks/core/log_client_connection_success.h"
#include "hooks/core/post_read_smtp.h"
#include "hooks/core/pre_read_smtp.h"
#include "hooks/core/smtp_client_mailfrom_args.h"
#include "hooks/core/smtp_client_rcptto_args.h"
#include "hooks/core/mail_queue_get_next_active.h"
#include "hooks/core/smtp_error_classify.h"
#include "hooks/core/smtp_should_session_shutdown.h"
#include "mta_internal.h"
#include "outq.h"
#include "smtp_data.h"
#include "smtp_reply.h"
#include "test_faults.h"
#include "textbuf.h"
#include "trace.h"

#define SMTP_INBUF_MAX (1024 * 1024)    /* more unparsed input is a protocol error */
#define SMTP_LINE_MAX 1024              /* a command line we build */

enum sc_state { SC_CONNECTING, SC_BANNER, SC_EHLO, SC_HELO, SC_RSET, SC_MAIL, SC_RCPT,
                SC_DATA, SC_BODY, SC_DOT, SC_IDLE, SC_QUIT, SC_CLOSED };
static const char *const state_names[] = { "connect", "banner", "EHLO", "HELO", "RSET",
                                           "MAIL", "RCPT", "DATA", "data transfer",
                                           "end of data", "idle", "QUIT", "closed" };

/* What this attempt decided for each recipient of the message in flight. */
enum { RC_UNSENT, RC_SENT, RC_ACCEPTED, RC_DECIDED };

enum { EXT_PIPELINING = 1, EXT_8BITMIME = 2, EXT_SIZE = 4, EXT_ENHANCEDSTATUSCODES = 8,
       EXT_DSN = 16, EXT_CHUNKING = 32, EXT_DELIVERBY = 64 };

/* Commands the socket has not taken yet (a pipelined group of many RCPTs
 * can be larger than the send buffer): beyond this the peer is not
 * reading, and the session ends. */
#define SMTP_OUTQ_MAX ((size_t)8 << 20)

/* One reply the session waits for, in the order the commands went out. */
struct pending {
    enum sc_state kind;                 /* SC_MAIL, SC_RCPT or SC_DATA */
    int rcpt;                           /* for SC_RCPT: the recipient index */
};

struct mta_conn {
    connection_handle pub;              /* must stay first */
    struct mta *m;
    struct mta_domain *d;
    struct mta_conn *next, *prev;       /* m->conns */
    enum sc_state state;
    int fd_open;                        /* tcp_close not yet called */
    int established;                    /* inc_outbound_connections was called */
    mta_timer_id timer;                 /* armed at timer_at, or 0 */
    mta_usec_t timer_at;
    mta_usec_t deadline;                /* when the awaited reply is late; 0 = none */
    connection_finish_cb finish;
    connection_timeout_cb timeout;
    char *host;
    char *in;
    size_t inlen, incap;
    unsigned ext;
    long size_limit;                    /* the server's SIZE, 0 = none given */
    long deliverby_min;                 /* the server's DELIVERBY minimum, seconds */
    int use_bdat;                       /* this transaction sends BDAT, not DATA */
    struct mta_msg *msg;                /* in flight */
    unsigned char *rc;                  /* per recipient: RC_* */
    size_t rc_cap;                      /* rc's size: it is reused message after message */
    struct pending *pend;               /* replies awaited, oldest first */
    int npend, pend_head, pend_cap;
    int accepted;
    int txn_failed;                     /* MAIL failed: consume the rest */
    int empty_data;                     /* a "." was sent only to close DATA */
    int rcpt_next;                      /* unpipelined: the next recipient to try */
    int transactions;                   /* messages started on this connection */
    int in_input;                       /* take_input is on the stack: defer the free */
    struct outq out;                    /* commands the socket did not take yet */
    struct smtp_data *data;             /* the message data being written (SC_BODY) */
};

static void conn_close(struct mta_conn *c);
static void next_transaction(struct mta_conn *c);

/* set_last_error - remember why the domain's last connection failed (truncating) */
static void set_last_error(struct mta_domain *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_last_error(struct mta_domain *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->last_error, sizeof d->last_error, fmt, ap);
    va_end(ap);
}

/* ---- creation and teardown ------------------------------------------- */

/* smtp_conn_create - a session object for a connect about to be started */
struct mta_conn *smtp_conn_create(struct mta *m, struct mta_domain *d, int slot,
                                  uint32_t addr, const char *host)
{
    struct mta_conn *c = calloc(1, sizeof *c);
    if (c == NULL || (c->host = strdup(host)) == NULL)
        mta_panic("smtp_conn_create", "out of memory");
    c->m = m;
    c->d = d;
    c->pub.host = c->host;
    c->pub.addr = addr;
    c->pub.binding_slot = slot;
    c->pub.dr = &d->pub;
    c->pub.fd = -1;
    c->state = SC_CONNECTING;
    outq_init(&c->out, SMTP_OUTQ_MAX);
    return c;
}

connection_handle *smtp_conn_handle(struct mta_conn *c) { return &c->pub; }

/* smtp_conn_destroy - free a session that never got a descriptor */
void smtp_conn_destroy(struct mta_conn *c)
{
    assert(!c->fd_open);
    free(c->host);
    free(c->in);
    free(c->rc);
    free(c->pend);
    outq_free(&c->out);
    free(c->data);
    free(c);
}

/*
 * The session's one timer.  A deadline moves with every command (each
 * reply has its own timeout), but re-arming a scheduler event per reply
 * would cost a cancel and a schedule each time; instead the armed timer
 * stays, and when it fires before the current deadline it re-arms itself
 * there.  Sessions normally end long before any deadline, so a session
 * costs one schedule and one cancel.
 */
static void session_timer(void *arg);
static void phase_timed_out(struct mta_conn *c);

/* deadline_set - the awaited event is late at when */
static void deadline_set(struct mta_conn *c, mta_usec_t when)
{
    c->deadline = when;
    if (c->timer && c->timer_at <= when)
        return;             /* it fires first and moves itself to the deadline */
    if (c->timer)
        c->m->env->timer_cancel(c->m->env, c->timer);
    c->timer = c->m->env->timer_start(c->m->env, when, session_timer, c);
    c->timer_at = when;
}

/* deadline_clear - nothing is awaited; an armed timer will find nothing to do */
static void deadline_clear(struct mta_conn *c)
{
    c->deadline = 0;
}

/* timer_stop - the session ends: no timer may fire for it again */
static void timer_stop(struct mta_conn *c)
{
    c->deadline = 0;
    if (c->timer) {
        c->m->env->timer_cancel(c->m->env, c->timer);
        c->timer = 0;
    }
}

/* smtp_conn_start - the connect is under way on fd: watch it */
void smtp_conn_start(struct mta_conn *c, int fd, connection_finish_cb finish,
                     connection_timeout_cb timeout, void *user_data)
{
    struct mta *m = c->m;
    c->pub.fd = fd;
    c->pub.user_data = user_data;
    c->fd_open = 1;
    c->finish = finish;
    c->timeout = timeout;
    c->next = m->conns;
    if (m->conns)
        m->conns->prev = c;
    m->conns = c;
    deadline_set(c, mta_now(m) + m->cfg.connect_timeout);
}

/* ---- tracing ----------------------------------------------------------- */

static void trace_line(struct mta_conn *c, const char *dir, const char *line, size_t len)
{
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "smtp", dir);
    mta_tb_int(&tb, "conn", c->pub.fd);
    mta_tb_strn(&tb, "line", line, len);
    mta_tb_emit(&tb);
}

/* ---- the message in flight ---------------------------------------------- */

/* fail_in_flight - recipients not yet decided get outcome o; attempt over */
static void fail_in_flight(struct mta_conn *c, enum rcpt_outcome o, int code, const char *note)
{
    struct mta_msg *msg = c->msg;
    if (msg == NULL)
        return;
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        if (c->rc[i] != RC_DECIDED && msg->pub.rcpts[i].state == RCPT_PENDING) {
            queue_rcpt_outcome(msg, i, o, code, note);
            c->rc[i] = RC_DECIDED;
        }
    c->msg = NULL;
    c->npend = 0;       /* the replies still expected are about this message */
    queue_attempt_done(msg);
}

/* decide_accepted - the recipients the remote accepted get outcome o */
static void decide_accepted(struct mta_conn *c, enum rcpt_outcome o, int code, const char *note)
{
    struct mta_msg *msg = c->msg;
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        if (c->rc[i] == RC_ACCEPTED) {
            queue_rcpt_outcome(msg, i, o, code, note);
            c->rc[i] = RC_DECIDED;
        }
}

/* ---- sending ---------------------------------------------------------- */

static mta_usec_t phase_timeout(const struct mta_config *cfg, enum sc_state s)
{
    switch (s) {
    case SC_BANNER: return cfg->timeout_banner;
    case SC_EHLO: case SC_HELO: return cfg->timeout_ehlo;
    case SC_MAIL: case SC_RSET: return cfg->timeout_mail;
    case SC_RCPT: return cfg->timeout_rcpt;
    case SC_DATA: return cfg->timeout_data;
    case SC_BODY: return cfg->timeout_data_transfer;
    case SC_DOT: return cfg->timeout_dot;
    case SC_IDLE: return cfg->idle_timeout;
    default: return cfg->timeout_quit;
    }
}

/* expect - wait for the reply of state s (or, idle, for mail), within its timeout */
static void expect(struct mta_conn *c, enum sc_state s)
{
    struct mta *m = c->m;
    c->state = s;
    deadline_set(c, mta_now(m) + phase_timeout(&m->cfg, s));
}

/* put_line - append "LINE\r\n" to out (at most SMTP_LINE_MAX) and trace it */
static void put_line(struct mta_conn *c, char *out, size_t *len, const char *line)
{
    size_t n = strlen(line);
    assert(n + 2 <= SMTP_LINE_MAX);
    trace_line(c, "send", line, n);
    memcpy(out + *len, line, n);
    memcpy(out + *len + n, "\r\n", 2);
    *len += n + 2;
}

/* conn_put - the socket write the output queue and the data go through */
static int conn_put(void *arg, const void *buf, size_t len)
{
    struct mta_conn *c = arg;
    return c->m->env->tcp_write(c->m->env, c->pub.fd, buf, len);
}

/* conn_write - bytes to the server, whole and in order (what the socket
 * does not take now waits in c->out); 0 or a negative errno */
static int conn_write(struct mta_conn *c, const void *buf, size_t len)
{
    return outq_write(&c->out, buf, len, conn_put, c);
}

/* send_line - one command line, "VERB" or "VERB ARG" (arg NULL: none), CRLF
 * added; returns 0 or a negative errno if the peer is gone */
static int send_line(struct mta_conn *c, const char *verb, const char *arg)
{
    char line[SMTP_LINE_MAX], out[SMTP_LINE_MAX + 2];
    struct textbuf tb = textbuf_on(line, sizeof line - 1);
    textbuf_str(&tb, verb);
    if (arg != NULL) {
        textbuf_str(&tb, " ");
        textbuf_str(&tb, arg);
    }
    if (tb.len >= sizeof line - 2)
        mta_panic("send_line", "command too long");
    size_t len = 0;
    put_line(c, out, &len, line);
    return conn_write(c, out, len);
}

/* data_taken - the socket took n bytes of the message data */
static void data_taken(void *arg, size_t n)
{
    struct mta_conn *c = arg;
    ev_messagedata(&c->pub, &c->msg->pub, (int)n);
}

/* data_pump - write what the socket takes; once it has it all, ask to be
 * told when it has left (the end-of-data timer starts then).  0, or a
 * negative errno when the peer is gone. */
static int data_pump(struct mta_conn *c)
{
    if (outq_len(&c->out) > 0)
        return 0;           /* the BDAT line first */
    int rc = smtp_data_pump(c->data, conn_put, c, data_taken, c);
    if (rc == 0 && smtp_data_all_taken(c->data))
        rc = c->m->env->tcp_notify_sent(c->m->env, c->pub.fd);
    return rc;
}

/* send_body - the message data, written as the socket takes it (smtp_data.h)
 *
 * With DATA: dot-stuffed, CRLF line ends, then ".".  With BDAT (RFC 3030):
 * one "BDAT n LAST" command followed by the message with CRLF line ends
 * and no stuffing.  After each write SMTP_EV_MESSAGEDATA reports the
 * octets of that write, as libESMTP 1.1.0 does (protocol.c, cmd_data2:
 * the length of each piece, not a running total; its users add them up).
 * The BDAT command line is not message data; the final "." is.  The
 * session is in SC_BODY until the last byte has left the host. */
static int send_body(struct mta_conn *c)
{
    message *msg = &c->msg->pub;
    const char *b = msg->body ? msg->body : "";
    size_t n = msg->body_len;
    mq_out_data(&c->pub, msg, &b, &n);      /* a MailerQ-style plugin may replace the MIME */
    size_t o = smtp_data_size(b, n, c->use_bdat);
    if (c->use_bdat) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "BDAT %zu LAST", o);
        if (send_line(c, cmd, NULL) < 0)
            return -1;
    }
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "smtp", "send");
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "data_bytes", (int64_t)o);
        mta_tb_emit(&tb);
    }
    if (c->data == NULL && (c->data = malloc(sizeof *c->data)) == NULL)
        mta_panic("send_body", "out of memory");
    smtp_data_begin(c->data, b, n, c->use_bdat);
    /* The data-block timer runs from here (RFC 5321 4.5.3.2.5). */
    expect(c, SC_BODY);
    return data_pump(c) < 0 ? -1 : 0;
}

/* data_sent - the last byte of the data left the host: the wait for the
 * end-of-data reply starts now, not when the data was handed over (RFC
 * 5321 4.5.3.2.6: the 10 minutes are for the server's processing) */
static void data_sent(struct mta_conn *c)
{
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "smtp", "sent");
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "data_bytes", (int64_t)c->data->taken);
        mta_tb_emit(&tb);
    }
    expect(c, SC_DOT);
}

static void send_quit(struct mta_conn *c)
{
    if (send_line(c, "QUIT", NULL) < 0) {
        conn_close(c);
        return;
    }
    expect(c, SC_QUIT);
}

/* ---- the reply queue ---------------------------------------------------- */

static void pend_push(struct mta_conn *c, enum sc_state kind, int rcpt)
{
    if (c->npend == c->pend_cap) {
        int cap = c->pend_cap ? c->pend_cap * 2 : 8;
        struct pending *p = malloc((size_t)cap * sizeof *p);
        if (p == NULL)
            mta_panic("pend_push", "out of memory");
        for (int i = 0; i < c->npend; i++)
            p[i] = c->pend[(c->pend_head + i) % c->pend_cap];
        free(c->pend);
        c->pend = p;
        c->pend_cap = cap;
        c->pend_head = 0;
    }
    c->pend[(c->pend_head + c->npend) % c->pend_cap] = (struct pending){ kind, rcpt };
    c->npend++;
}

static struct pending pend_pop(struct mta_conn *c)
{
    assert(c->npend > 0);
    struct pending p = c->pend[c->pend_head];
    c->pend_head = (c->pend_head + 1) % c->pend_cap;
    c->npend--;
    return p;
}

/* await_front - wait for the oldest reply still expected */
static void await_front(struct mta_conn *c)
{
    assert(c->npend > 0);
    expect(c, c->pend[c->pend_head].kind);
}

/* ---- the transaction ---------------------------------------------------- */

/* has_8bit - does the body hold an octet above 127?  Scanned once per
 * message, not per attempt: the body never changes after injection. */
static int has_8bit(struct mta_msg *msg)
{
    if (msg->eightbit < 0) {
        const unsigned char *b = (const unsigned char *)msg->pub.body;
        size_t n = msg->pub.body_len, i = 0;
        uint64_t high = 0;
        for (; i + 8 <= n; i += 8) {        /* eight octets per step */
            uint64_t w;
            memcpy(&w, b + i, 8);
            high |= w & UINT64_C(0x8080808080808080);
        }
        for (; i < n; i++)
            high |= b[i] & 0x80;
        msg->eightbit = high != 0;
    }
    return msg->eightbit;
}

/* next_pending_rcpt - the first recipient from i on still worth a RCPT, or -1 */
static int next_pending_rcpt(const struct mta_conn *c, int i)
{
    for (; i < c->msg->pub.rcpt_count; i++)
        if (c->msg->pub.rcpts[i].state == RCPT_PENDING && c->rc[i] == RC_UNSENT)
            return i;
    return -1;
}

/* xtext - RFC 3461 4: "+" followed by two hex digits for '+', '=' and
 * anything outside '!'..'~'; into out (size bytes, truncating) */
static void xtext(const char *s, char *out, size_t size)
{
    size_t o = 0;
    for (; *s && o + 4 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < '!' || ch > '~' || ch == '+' || ch == '=')
            o += (size_t)snprintf(out + o, size - o, "+%02X", ch);
        else
            out[o++] = (char)ch;
    }
    out[o] = '\0';
}

/* rcpt_line - "RCPT TO:<addr>" with DSN and provider parameters; 0, or
 * non-zero when a smtp_client_rcptto_args provider refused the recipient */
static int rcpt_line(struct mta_conn *c, int i, char *line)
{
    const message *msg = &c->msg->pub;
    struct textbuf tb = textbuf_on(line, SMTP_LINE_MAX - 2);
    textbuf_str(&tb, "RCPT TO:<");
    textbuf_strn(&tb, msg->rcpts[i].address, 400);
    textbuf_str(&tb, ">");
    if ((c->ext & EXT_DSN) && msg->dsn_notify) {
        char orcpt[400];
        xtext(msg->rcpts[i].address, orcpt, sizeof orcpt);
        textbuf_str(&tb, " NOTIFY=");
        textbuf_str(&tb, msg->dsn_notify);
        textbuf_str(&tb, " ORCPT=rfc822;");
        textbuf_str(&tb, orcpt);
    }
    return call_core_smtp_client_rcptto_args_hook(&c->pub, &c->msg->pub, i, line + tb.len,
                                                  (int)(SMTP_LINE_MAX - 2 - tb.len));
}

/* refuse_rcpt - a provider refused recipient i: it fails for now, unsent */
static void refuse_rcpt(struct mta_conn *c, int i)
{
    queue_rcpt_outcome(c->msg, i, OUTCOME_TRANSIENT, 0,
                       "a smtp_client_rcptto_args provider refused this recipient");
    c->rc[i] = RC_DECIDED;
}

/* quit_for_event - an event callback asked to quit: the message waits */
static void quit_for_event(struct mta_conn *c, const char *event)
{
    char note[MTA_NOTE_MAX];
    snprintf(note, sizeof note, "the application quit the session at %s", event);
    fail_in_flight(c, OUTCOME_TRANSIENT, 0, note);
    send_quit(c);
}

/* negotiate - what the message asks of the server against what it offers
 *
 * Raises SMTP_EV_EXTNA_* for what is missing and SMTP_EV_DELIVERBY_EXPIRED
 * when the time left is below the server's minimum; sets c->use_bdat and
 * *by (the BY= seconds, 0 for none).  Returns 0 to go on, -1 when the
 * message was failed and the session moved on. */
static int negotiate(struct mta_conn *c, long *by)
{
    message *msg = &c->msg->pub;
    *by = 0;
    c->use_bdat = 0;
    if ((msg->dsn_notify || msg->dsn_ret || msg->dsn_envid) && !(c->ext & EXT_DSN) &&
        ev_quit(&c->pub, SMTP_EV_EXTNA_DSN, msg)) {
        quit_for_event(c, "SMTP_EV_EXTNA_DSN");
        return -1;
    }
    if (has_8bit(c->msg) && !(c->ext & EXT_8BITMIME))
        ev_simple(&c->pub, SMTP_EV_EXTNA_8BITMIME, msg);   /* informational: sent as is */
    if (msg->chunking) {
        if (c->ext & EXT_CHUNKING)
            c->use_bdat = 1;
        else if (ev_quit(&c->pub, SMTP_EV_EXTNA_CHUNKING, msg)) {
            quit_for_event(c, "SMTP_EV_EXTNA_CHUNKING");
            return -1;
        }
    }
    if (msg->deliver_by > 0 && (c->ext & EXT_DELIVERBY)) {
        /* RFC 2852 4: the by-time shrinks while the message waits. */
        mta_usec_t waited = mta_now(c->m) - ((mta_usec_t)msg->injected.tv_sec * MTA_USEC_PER_SEC +
                                              msg->injected.tv_usec);
        long left = msg->deliver_by - (long)(waited / MTA_USEC_PER_SEC);
        *by = left;
        if (c->deliverby_min > 0 && left < c->deliverby_min) {
            int adjust = ev_deliverby_expired(&c->pub, msg, c->deliverby_min - left);
            if (adjust <= 0) {
                char note[MTA_NOTE_MAX];
                snprintf(note, sizeof note, "DELIVERBY: %lds left, below the server's minimum of %lds",
                         left, c->deliverby_min);
                fail_in_flight(c, OUTCOME_PERMANENT, 0, note);
                next_transaction(c);
                return -1;
            }
            *by = c->deliverby_min + adjust;
        }
    }
    return 0;
}

/* start_transaction - MAIL, and with PIPELINING every RCPT (and DATA), in one write */
static void start_transaction(struct mta_conn *c)
{
    const message *msg = &c->msg->pub;
    long by;
    if (negotiate(c, &by) < 0)
        return;
    char line[SMTP_LINE_MAX];
    struct textbuf tb = textbuf_on(line, sizeof line - 2);
    textbuf_str(&tb, "MAIL FROM:<");
    textbuf_strn(&tb, msg->mail_from, 400);
    textbuf_str(&tb, ">");
    if (by > 0) {
        textbuf_str(&tb, " BY=");
        textbuf_i64(&tb, by);
        textbuf_str(&tb, ";R");
    }
    if (c->ext & EXT_SIZE) {
        textbuf_str(&tb, " SIZE=");
        textbuf_u64(&tb, msg->body_len);
    }
    if ((c->ext & EXT_8BITMIME) && has_8bit(c->msg))
        textbuf_str(&tb, " BODY=8BITMIME");
    if ((c->ext & EXT_DSN) && msg->dsn_ret) {
        textbuf_str(&tb, " RET=");
        textbuf_str(&tb, msg->dsn_ret);
    }
    if ((c->ext & EXT_DSN) && msg->dsn_envid) {
        char envid[320];
        xtext(msg->dsn_envid, envid, sizeof envid);
        textbuf_str(&tb, " ENVID=");
        textbuf_str(&tb, envid);
    }
    if (call_core_smtp_client_mailfrom_args_hook(&c->pub, &c->msg->pub, line + tb.len,
                                                 (int)(sizeof line - 2 - tb.len))) {
        fail_in_flight(c, OUTCOME_TRANSIENT, 0,
                       "a smtp_client_mailfrom_args provider refused the message");
        next_transaction(c);
        return;
    }
    line[sizeof line - 3] = '\0';  /* a provider must not have run past the end */
    int nrcpt = msg->rcpt_count;
    size_t cap = (size_t)(nrcpt + 2) * (SMTP_LINE_MAX + 2);
    char small[4 * (SMTP_LINE_MAX + 2)];    /* most messages: no allocation */
    char *out = cap <= sizeof small ? small : malloc(cap);
    if (out == NULL)
        mta_panic("start_transaction", "out of memory");
    size_t len = 0;
    put_line(c, out, &len, line);
    pend_push(c, SC_MAIL, -1);
    c->rcpt_next = 0;
    if (c->ext & EXT_PIPELINING) {
        for (int i = next_pending_rcpt(c, 0); i >= 0; i = next_pending_rcpt(c, i + 1)) {
            if (rcpt_line(c, i, line)) {
                refuse_rcpt(c, i);
                continue;
            }
            line[sizeof line - 3] = '\0';
            put_line(c, out, &len, line);
            c->rc[i] = RC_SENT;
            pend_push(c, SC_RCPT, i);
        }
        if (!c->use_bdat) {     /* BDAT waits for the RCPT replies: its size is final */
            put_line(c, out, &len, "DATA");
            pend_push(c, SC_DATA, -1);
        }
    }
    assert(len <= cap);
    int rc = conn_write(c, out, len);
    if (out != small)
        free(out);
    if (rc < 0) {
        fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost before MAIL");
        conn_close(c);
        return;
    }
    await_front(c);
}

/* send_bdat - the whole message as one BDAT LAST chunk; its reply ends the transaction */
static void send_bdat(struct mta_conn *c)
{
    if (send_body(c) < 0) {
        fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost during the data");
        conn_close(c);
    }
}

/* send_next_step - unpipelined: the next RCPT, or DATA, or the end */
static void send_next_step(struct mta_conn *c)
{
    int i = next_pending_rcpt(c, c->rcpt_next);
    while (i >= 0) {
        char line[SMTP_LINE_MAX];
        if (rcpt_line(c, i, line)) {
            refuse_rcpt(c, i);
            i = next_pending_rcpt(c, i + 1);
            continue;
        }
        line[sizeof line - 3] = '\0';
        c->rc[i] = RC_SENT;
        c->rcpt_next = i + 1;
        pend_push(c, SC_RCPT, i);
        if (send_line(c, line, NULL) < 0) {
            fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost during RCPT");
            conn_close(c);
            return;
        }
        await_front(c);
        return;
    }
    if (c->accepted == 0) {
        /* No recipient accepted: the attempt is over without DATA. */
        fail_in_flight(c, OUTCOME_TRANSIENT, 0, "no recipient accepted");
        next_transaction(c);
        return;
    }
    if (c->use_bdat) {
        send_bdat(c);
        return;
    }
    pend_push(c, SC_DATA, -1);
    if (send_line(c, "DATA", NULL) < 0) {
        fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost before DATA");
        conn_close(c);
        return;
    }
    await_front(c);
}

/* end_transaction - the message's attempt on this connection is over */
static void end_transaction(struct mta_conn *c)
{
    struct mta_msg *msg = c->msg;
    assert(c->npend == 0);
    fail_in_flight(c, OUTCOME_TRANSIENT, 0, "no reply for this recipient");
    if (call_core_smtp_should_session_shutdown_hook(&c->pub, &msg->pub)) {
        send_quit(c);
        return;
    }
    next_transaction(c);
}

/* take_message - the next message for this session, or NULL */
static struct mta_msg *take_message(struct mta_conn *c)
{
    struct mta_domain *d = c->d;
    int slot = c->pub.binding_slot;
    message *chosen = call_core_mail_queue_get_next_active_hook(&d->pub, slot, &c->pub);
    if (chosen != NULL) {
        struct mta_msg *msg = mta_msg_of(chosen);
        /* Only a message waiting in this pair's active queue can be taken. */
        if (msg->where == MSG_ACTIVE && msg->dom == d && msg->pub.binding_slot == slot) {
            queue_remove_active(msg);
            msg->where = MSG_INFLIGHT;
            return msg;
        }
    }
    return queue_pop_active(d, slot);
}

/* next_transaction - start the next message, wait idle, or QUIT */
static void next_transaction(struct mta_conn *c)
{
    struct mta *m = c->m;
    assert(c->msg == NULL);
    if (m->cfg.max_deliveries_per_connection > 0 &&
        c->transactions >= m->cfg.max_deliveries_per_connection) {
        send_quit(c);
        return;
    }
    mta_usec_t later;
    if (c->d->active[c->pub.binding_slot].count > 0 &&
        !window_allows(&c->d->msg_window, &m->cfg.throttle_messages, mta_now(m), &later)) {
        maintain_at(c->d, later);
        send_quit(c);
        return;
    }
    struct mta_msg *msg = take_message(c);
    if (msg == NULL) {
        if (m->cfg.idle_timeout > 0)
            expect(c, SC_IDLE);
        else
            send_quit(c);
        return;
    }
    window_note(&c->d->msg_window, &m->cfg.throttle_messages, mta_now(m));
    m->stats.transactions++;
    c->msg = msg;
    if ((size_t)msg->pub.rcpt_count > c->rc_cap) {
        free(c->rc);
        c->rc_cap = (size_t)msg->pub.rcpt_count;
        c->rc = malloc(c->rc_cap);
        if (c->rc == NULL)
            mta_panic("next_transaction", "out of memory");
    }
    if (msg->pub.rcpt_count > 0)
        memset(c->rc, RC_UNSENT, (size_t)msg->pub.rcpt_count);
    c->accepted = 0;
    c->txn_failed = 0;
    c->empty_data = 0;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", "attempt");
        mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
        mta_tb_str(&tb, "domain", c->d->pub.domain);
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "attempt", msg->pub.attempts + 1);
        mta_tb_emit(&tb);
    }
    if (has_core_log_attempt_v1_hook() || mta_tracing()) {
        char note[MTA_DNS_NAME_MAX + 32];
        struct textbuf tb = textbuf_on(note, sizeof note);
        textbuf_str(&tb, c->host);
        textbuf_str(&tb, " [");
        textbuf_ipv4(&tb, c->pub.addr);
        textbuf_str(&tb, "]");
        struct timeval now = mta_tv(mta_now(m));
        call_core_log_attempt_v1_hook(&msg->pub, &c->d->pub, &now, note, (int)tb.len);
    }
    if (c->size_limit > 0 && (long)msg->pub.body_len > c->size_limit) {
        char note[MTA_NOTE_MAX];
        snprintf(note, sizeof note, "message size %zu exceeds the remote limit SIZE=%ld",
                 msg->pub.body_len, c->size_limit);
        fail_in_flight(c, OUTCOME_PERMANENT, 552, note);
        next_transaction(c);
        return;
    }
    if (c->transactions++ > 0) {
        if (send_line(c, "RSET", NULL) < 0) {
            fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost before RSET");
            conn_close(c);
            return;
        }
        expect(c, SC_RSET);
        return;
    }
    start_transaction(c);
}

/* smtp_conn_wake_idle - idle sessions of (d, slot) take the new mail */
int smtp_conn_wake_idle(struct mta_domain *d, int slot)
{
    int woken = 0;
    struct mta_conn *c = d->m->conns;
    while (c != NULL && d->active[slot].count > 0) {
        struct mta_conn *next = c->next;
        if (c->d == d && c->pub.binding_slot == slot && c->state == SC_IDLE) {
            deadline_clear(c);
            next_transaction(c);
            woken++;
        }
        c = next;
    }
    return woken;
}

/* ---- replies ---------------------------------------------------------- */

/* note_of - "CODE text" of a reply, lines joined by spaces */
static void note_of(const struct smtp_reply *r, char *note, size_t size)
{
    /* Built by hand: this runs for every reply.  Long replies are cut: a
     * note is for logs, and the full reply is in the trace. */
    assert(size > 8 && r->code >= 100 && r->code <= 999);
    note[0] = (char)('0' + r->code / 100);
    note[1] = (char)('0' + r->code / 10 % 10);
    note[2] = (char)('0' + r->code % 10);
    note[3] = ' ';
    size_t n = r->text_len < size - 5 ? r->text_len : size - 5;
    memcpy(note + 4, r->text, n);
    note[4 + n] = '\0';
    for (char *lf = memchr(note + 4, '\n', n); lf != NULL;
         lf = memchr(lf + 1, '\n', (size_t)(note + 4 + n - lf - 1)))
        *lf = ' ';
}

static void parse_extensions(struct mta_conn *c, const struct smtp_reply *r)
{
    static const struct { const char *name; unsigned bit; } known[] = {
        { "PIPELINING", EXT_PIPELINING }, { "8BITMIME", EXT_8BITMIME }, { "SIZE", EXT_SIZE },
        { "ENHANCEDSTATUSCODES", EXT_ENHANCEDSTATUSCODES }, { "DSN", EXT_DSN },
        { "CHUNKING", EXT_CHUNKING },
    };
    c->ext = 0;
    c->size_limit = 0;
    const char *line = strchr(r->text, '\n');   /* the first line is the greeting */
    while (line) {
        line++;
        size_t len = strcspn(line, " \n");
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strlen(known[k].name) == len && strncasecmp(line, known[k].name, len) == 0)
                c->ext |= known[k].bit;
        if (len == 4 && strncasecmp(line, "SIZE", 4) == 0 && line[4] == ' ')
            c->size_limit = strtol(line + 5, NULL, 10);
        if (len == 9 && strncasecmp(line, "DELIVERBY", 9) == 0) {
            c->ext |= EXT_DELIVERBY;
            c->deliverby_min = line[9] == ' ' ? strtol(line + 10, NULL, 10) : 0;
        }
        line = strchr(line, '\n');
    }
}

/* outcome_of - how a reply counts for a recipient: by code, or as a provider says */
static enum rcpt_outcome outcome_of(struct mta_conn *c, int code, const char *note)
{
    if (code >= 200 && code < 400)
        return OUTCOME_DELIVERED;
    switch (call_core_smtp_error_classify_hook(note, c->d->pub.domain)) {
    case SMTP_CLASSIFY_TRANSIENT:
        return OUTCOME_TRANSIENT;
    case SMTP_CLASSIFY_PERMANENT:
        return OUTCOME_PERMANENT;
    default:
        return code >= 500 ? OUTCOME_PERMANENT : OUTCOME_TRANSIENT;
    }
}

/* transaction_reply - a reply to MAIL, RCPT or DATA, oldest first */
static void transaction_reply(struct mta_conn *c, const struct smtp_reply *r, const char *note)
{
    int ok = r->code >= 200 && r->code < 300;
    int pipelined = (c->ext & EXT_PIPELINING) != 0;
    struct pending p = pend_pop(c);
    switch (p.kind) {
    case SC_MAIL:
        status_set(c->m, &c->msg->mail_status, r);
        ev_mailstatus(&c->pub, &c->msg->pub);
        if (!ok) {
            enum rcpt_outcome o = outcome_of(c, r->code, note);
            for (int i = 0; i < c->msg->pub.rcpt_count; i++)
                if (c->msg->pub.rcpts[i].state == RCPT_PENDING && c->rc[i] != RC_DECIDED) {
                    queue_rcpt_outcome(c->msg, i, o, r->code, note);
                    c->rc[i] = RC_DECIDED;
                }
            c->txn_failed = 1;
            if (!pipelined) {
                end_transaction(c);
                return;
            }
        } else if (!pipelined) {
            send_next_step(c);
            return;
        }
        break;
    case SC_RCPT:
        status_set(c->m, &c->msg->rcpt_ext[p.rcpt].status, r);
        /* After a refused MAIL the pipelined RCPTs are answered (503)
         * but raise no SMTP_EV_RCPTSTATUS: libESMTP 1.1.0 waits for the
         * MAIL reply (protocol.c, cmd_mail) and sends no RCPT then. */
        if (!c->txn_failed)
            ev_rcptstatus(&c->pub, &c->msg->pub, p.rcpt);
        if (!c->txn_failed) {
            if (ok) {
                c->rc[p.rcpt] = RC_ACCEPTED;
                c->accepted++;
            } else {
                queue_rcpt_outcome(c->msg, p.rcpt, outcome_of(c, r->code, note), r->code, note);
                c->rc[p.rcpt] = RC_DECIDED;
            }
        }
        if (!pipelined) {
            send_next_step(c);
            return;
        }
        if (c->npend == 0) {
            /* Pipelined BDAT: every RCPT reply is in, the data can go. */
            assert(c->use_bdat);
            if (c->accepted > 0 && !c->txn_failed)
                send_bdat(c);
            else
                end_transaction(c);
            return;
        }
        break;
    case SC_DATA:
        assert(c->npend == 0);
        if (r->code == 354) {
            if (c->accepted > 0 && !c->txn_failed) {
                if (send_body(c) < 0) {
                    fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost during the data");
                    conn_close(c);
                }
                return;
            } else {
                /* RFC 2920 3.1: DATA was accepted with nothing to send; end it empty. */
                c->empty_data = 1;
                if (send_line(c, ".", NULL) < 0) {
                    conn_close(c);
                    return;
                }
            }
            expect(c, SC_DOT);
            return;
        }
        status_set(c->m, &c->msg->data_status, r);
        /* libESMTP 1.1.0 (protocol.c, rsp_data) ends the message here
         * with SMTP_EV_MESSAGESENT when DATA is refused, recipients
         * accepted or not; after a refused MAIL it sends no DATA, so
         * raises none. */
        if (!c->txn_failed)
            ev_messagesent(&c->pub, &c->msg->pub);
        if (c->accepted > 0 && !c->txn_failed) {
            enum rcpt_outcome o = outcome_of(c, r->code, note);
            decide_accepted(c, o == OUTCOME_DELIVERED ? OUTCOME_TRANSIENT : o, r->code, note);
        }
        end_transaction(c);
        return;
    default:
        mta_panic("transaction_reply", "unexpected pending reply %s", state_names[p.kind]);
    }
    await_front(c);
}

/* missing_enhanced_code - the server promised ENHANCEDSTATUSCODES (RFC 2034)
 * and this 2xx/4xx/5xx reply in a transaction has none */
static int missing_enhanced_code(const struct mta_conn *c, const struct smtp_reply *r)
{
    if (!(c->ext & EXT_ENHANCEDSTATUSCODES) || r->enh_class >= 0 || r->code / 100 == 3)
        return 0;
    switch (c->state) {
    case SC_RSET: case SC_MAIL: case SC_RCPT: case SC_DATA: case SC_DOT:
        return 1;
    default:
        return 0;
    }
}

/* handle_reply - one complete reply in the current state */
static void handle_reply(struct mta_conn *c, const struct smtp_reply *r)
{
    char note[MTA_NOTE_MAX];
    note_of(r, note, sizeof note);
    int ok = r->code >= 200 && r->code < 300;
    deadline_clear(c);
    if (c->state == SC_BODY)
        c->state = SC_DOT;      /* answered before its end was seen leaving */

    if (r->code == 421 && c->state != SC_QUIT) {
        /* The server is shutting the channel (RFC 5321 3.8). */
        set_last_error(c->d, "%s", note);
        if (c->state == SC_BANNER)
            host_failure_mark(c->m, c->pub.addr);
        fail_in_flight(c, OUTCOME_TRANSIENT, r->code, note);
        conn_close(c);
        return;
    }
    if (missing_enhanced_code(c, r) && c->msg != NULL &&
        ev_quit(&c->pub, SMTP_EV_SYNTAXWARNING, &c->msg->pub)) {
        /* The application quits; but what the end of data said still
         * counts, or an accepted message would be sent again. */
        if (c->state == SC_DOT && !c->empty_data) {
            status_set(c->m, &c->msg->data_status, r);
            ev_messagesent(&c->pub, &c->msg->pub);
            mq_out_sent(&c->pub, &c->msg->pub, r->code, note);
            decide_accepted(c, outcome_of(c, r->code, note), r->code, note);
        }
        quit_for_event(c, "SMTP_EV_SYNTAXWARNING");
        return;
    }
    switch (c->state) {
    case SC_BANNER:
        if (!ok) {
            set_last_error(c->d, "banner: %s", note);
            host_failure_mark(c->m, c->pub.addr);
            send_quit(c);
            return;
        }
        if (send_line(c, "EHLO", c->m->bindings[c->pub.binding_slot].ehlo_name) < 0) {
            conn_close(c);
            return;
        }
        expect(c, SC_EHLO);
        return;
    case SC_EHLO:
        if (ok) {
            parse_extensions(c, r);
            next_transaction(c);
            return;
        }
        if (r->code == 500 || r->code == 501 || r->code == 502 || r->code == 504 ||
            r->code == 550) {
            /* RFC 5321 3.2: a server that does not do EHLO; fall back to HELO. */
            if (send_line(c, "HELO", c->m->bindings[c->pub.binding_slot].ehlo_name) < 0) {
                conn_close(c);
                return;
            }
            expect(c, SC_HELO);
            return;
        }
        set_last_error(c->d, "EHLO: %s", note);
        host_failure_mark(c->m, c->pub.addr);     /* not this host, for now */
        send_quit(c);
        return;
    case SC_HELO:
        if (ok) {
            c->ext = 0;
            next_transaction(c);
            return;
        }
        set_last_error(c->d, "HELO: %s", note);
        host_failure_mark(c->m, c->pub.addr);     /* not this host, for now */
        send_quit(c);
        return;
    case SC_RSET:
        if (!ok) {
            fail_in_flight(c, OUTCOME_TRANSIENT, r->code, note);
            send_quit(c);
            return;
        }
        start_transaction(c);
        return;
    case SC_MAIL:
    case SC_RCPT:
    case SC_DATA:
        transaction_reply(c, r, note);
        return;
    case SC_DOT:
        if (!c->empty_data) {
            status_set(c->m, &c->msg->data_status, r);
            ev_messagesent(&c->pub, &c->msg->pub);
            mq_out_sent(&c->pub, &c->msg->pub, r->code, note);
            decide_accepted(c, outcome_of(c, r->code, note), r->code, note);
        } else if (!c->txn_failed) {
            /* The "." that closed a DATA with no recipient: libESMTP 1.1.0
             * (rsp_data2) reports its reply as the message's end too. */
            status_set(c->m, &c->msg->data_status, r);
            ev_messagesent(&c->pub, &c->msg->pub);
        }
        end_transaction(c);
        return;
    case SC_QUIT:
        conn_close(c);
        return;
    case SC_IDLE:
        /* A reply nobody asked for: the server is confused; leave. */
        set_last_error(c->d, "unexpected reply while idle: %s", note);
        send_quit(c);
        return;
    case SC_CONNECTING:
    case SC_BODY:           /* made SC_DOT above */
    case SC_CLOSED:
        break;
    }
    mta_panic("handle_reply", "reply in state %s", state_names[c->state]);
}

/* stage_of - the documented stage number of a state (connection.h) */
static int stage_of(enum sc_state s)
{
    switch (s) {
    case SC_CONNECTING: return SMTP_STAGE_NOT_CONNECTED;
    case SC_BANNER: return SMTP_STAGE_BANNER;
    case SC_EHLO: case SC_HELO: return SMTP_STAGE_EHLO;
    case SC_RSET: return SMTP_STAGE_RSET;
    case SC_MAIL: return SMTP_STAGE_MAIL;
    case SC_RCPT: return SMTP_STAGE_RCPT;
    case SC_DATA: return SMTP_STAGE_DATA;
    case SC_BODY: return SMTP_STAGE_BODY;
    case SC_DOT: return SMTP_STAGE_CONFIRM;
    case SC_IDLE: return SMTP_STAGE_IDLE;
    case SC_QUIT: case SC_CLOSED: return SMTP_STAGE_QUIT;
    }
    return SMTP_STAGE_NOT_CONNECTED;
}

/* lost - the session ended abnormally: the message in flight is retried */
static void lost(struct mta_conn *c, const char *what)
{
    char note[MTA_NOTE_MAX];
    if (c->state == SC_DOT)
        snprintf(note, sizeof note, "connection lost after end of data (%s); the remote may have the message", what);
    else
        snprintf(note, sizeof note, "%s at %s stage", what, state_names[c->state]);
    if (c->state != SC_QUIT) {
        set_last_error(c->d, "%s", note);
        /* Lost before any message was taken (banner, EHLO): the host is at
         * fault, like a failed connect; the next pass tries another MX or
         * requeues, instead of reconnecting at once. */
        if (c->msg == NULL && c->transactions == 0)
            host_failure_mark(c->m, c->pub.addr);
        fail_in_flight(c, OUTCOME_TRANSIENT, 0, note);
    }
    conn_close(c);
}

/* keep_input - append bytes to the connection's input buffer */
static void keep_input(struct mta_conn *c, const char *data, size_t len)
{
    assert(c->inlen + len <= SMTP_INBUF_MAX);
    if (c->inlen + len > c->incap) {
        size_t cap = c->incap ? c->incap : 1024;
        while (cap < c->inlen + len)
            cap *= 2;
        c->in = realloc(c->in, cap);
        if (c->in == NULL)
            mta_panic("take_input", "out of memory");
        c->incap = cap;
    }
    memcpy(c->in + c->inlen, data, len);
    c->inlen += len;
}

/* take_input - bytes from the server: complete replies are handled in order */
static void take_input(struct mta_conn *c, const char *data, size_t len)
{
    if (c->inlen + len > SMTP_INBUF_MAX) {
        lost(c, "reply too long");
        return;
    }
    struct timeval now = mta_tv(mta_now(c->m));
    if (call_core_pre_read_smtp_hook(&c->pub, (int)len, stage_of(c->state), &now)) {
        lost(c, "a pre_read_smtp provider ended the session");
        return;
    }
    /* Nothing buffered (the usual case): parse the bytes where they are and
     * keep only an incomplete tail.  Otherwise append and parse the buffer. */
    const char *buf = data;
    size_t n = len, off = 0;
    if (c->inlen > 0) {
        keep_input(c, data, len);
        buf = c->in;
        n = c->inlen;
    }
    /* A reply may complete several at once (pipelining) or not at all.  A
     * reply may also close the connection: conn_close then leaves the free
     * to us, so the loop can still look at c->state. */
    c->in_input = 1;
    while (c->state != SC_CLOSED && off < n) {
        struct smtp_reply r;
        size_t used = 0;
        char err[160];
        const char *in = buf + off;
        int rc = smtp_reply_parse(in, n - off, &r, &used, err, sizeof err);
        if (rc == 0)
            break;
        if (rc < 0) {
            char what[240];
            snprintf(what, sizeof what, "malformed reply (%s)", err);
            size_t bad = 0;     /* the offending line, bounded: the input has no terminator */
            while (bad < n - off && in[bad] != '\r' && in[bad] != '\n')
                bad++;
            trace_line(c, "recv", in, bad);
            off = n;
            lost(c, what);
            break;
        }
        /* Trace the reply line by line, as it was on the wire. */
        size_t at = mta_tracing() ? 0 : used;
        while (at < used) {
            size_t eol = at;
            while (eol < used && in[eol] != '\n')
                eol++;
            size_t end = eol;
            if (end > at && in[end - 1] == '\r')
                end--;
            trace_line(c, "recv", in + at, end - at);
            at = eol + 1;
        }
        off += used;
        if (c->state == SC_CONNECTING || c->state == SC_CLOSED)
            break;
        if (call_core_post_read_smtp_hook(&c->pub, r.code, stage_of(c->state), &now)) {
            lost(c, "a post_read_smtp provider ended the session");
            break;
        }
        handle_reply(c, &r);
    }
    c->in_input = 0;
    if (c->state == SC_CLOSED) {
        smtp_conn_destroy(c);
        return;
    }
    /* What is left is the start of a reply still on its way. */
    if (buf == c->in) {
        memmove(c->in, c->in + off, c->inlen - off);
        c->inlen -= off;
    } else if (off < n) {
        keep_input(c, buf + off, n - off);
    }
}

/* ---- connection events ------------------------------------------------ */

/* smtp_conn_tcp_event - the environment's events for this connection */
void smtp_conn_tcp_event(void *arg, int fd, enum mta_tcp_event ev, const char *data,
                         size_t len, int err)
{
    struct mta_conn *c = arg;
    assert(c->fd_open && c->pub.fd == fd);
    switch (ev) {
    case MTA_TCP_CONNECTED:
        assert(c->state == SC_CONNECTING);
        deadline_clear(c);
        c->finish(&c->pub, 0, c->pub.user_data);
        return;
    case MTA_TCP_CONNECT_FAILED:
        assert(c->state == SC_CONNECTING);
        deadline_clear(c);
        /* ETIMEDOUT: the stack gave up on the SYN (Linux: tcp_syn_retries). */
        c->finish(&c->pub, err == ECONNREFUSED ? CONN_ERR_CONNECT
                           : err == ETIMEDOUT ? CONN_ERR_CONNECT_TIMEOUT : CONN_ERR_CONNECT_NETWORK,
                  c->pub.user_data);
        return;
    case MTA_TCP_DATA:
        if (c->state == SC_CONNECTING)
            mta_panic("smtp_conn_tcp_event", "data before connect on fd %d", fd);
        take_input(c, data, len);
        return;
    case MTA_TCP_EOF:
        lost(c, "connection closed by the remote");
        return;
    case MTA_TCP_RESET:
        lost(c, err == ETIMEDOUT ? "connection timed out (no acknowledgement)"
                                 : "connection reset by the remote");
        return;
    case MTA_TCP_WRITABLE:     /* the commands waiting, then the data */
        if (outq_flush(&c->out, conn_put, c) < 0 ||
            (c->state == SC_BODY && data_pump(c) < 0))
            lost(c, "connection lost while writing");
        return;
    case MTA_TCP_SENT:
        if (c->state == SC_BODY && smtp_data_all_taken(c->data))
            data_sent(c);
        return;
    }
}

static void connect_failed(struct mta_conn *c, int code, const char *what)
{
    struct mta *m = c->m;
    char a[16];
    uint32_t x = c->pub.addr;
    snprintf(a, sizeof a, "%u.%u.%u.%u", x >> 24, (x >> 16) & 255, (x >> 8) & 255, x & 255);
    set_last_error(c->d, "connect to %s (%s): %s", a, c->host, what);
    host_failure_mark(m, c->pub.addr);
    struct timeval now = mta_tv(mta_now(m));
    call_core_log_client_connection_failure_hook(c->pub.addr, code, &c->d->pub,
                                                 c->pub.binding_slot, &now);
    struct mta_domain *d = c->d;
    conn_close(c);
    /* MX_Failures_To_Delay: so many failures in a row delay the whole domain. */
    if (++d->mx_failures >= m->cfg.mx_failures_to_delay) {
        char note[MTA_NOTE_MAX];
        snprintf(note, sizeof note, "%d connection failures in a row (MX_Failures_To_Delay); last: %.400s",
                 d->mx_failures, d->last_error);
        d->mx_failures = 0;
        for (int slot = 0; slot < m->nbindings; slot++) {
            struct mta_msg *msg;
            while ((msg = d->active[slot].head) != NULL) {
                queue_remove_active(msg);
                queue_fail_message(msg, OUTCOME_TRANSIENT, 0, note);
            }
        }
    }
}

/* smtp_client_finish_cb - the connect completed or failed */
void smtp_client_finish_cb(connection_handle *ch, int err, void *user_data)
{
    (void)user_data;
    struct mta_conn *c = (struct mta_conn *)ch;
    struct mta *m = c->m;
    if (err) {
        connect_failed(c, err, err == CONN_ERR_CONNECT ? "connection refused"
                                                       : "host unreachable");
        return;
    }
    struct timeval now = mta_tv(mta_now(m));
    c->d->mx_failures = 0;
    m->stats.connections_established++;
    call_core_log_client_connection_success_hook(c->pub.addr, &c->d->pub,
                                                 c->pub.binding_slot, &now);
    c->established = 1;
    m->stats.inc_outbound++;
    call_core_inc_outbound_connections_hook(&c->pub);
    ev_simple(&c->pub, SMTP_EV_CONNECT, NULL);
    expect(c, SC_BANNER);
}

/* smtp_client_timeout_cb - the connect did not complete in time */
void smtp_client_timeout_cb(connection_handle *ch, void *user_data)
{
    (void)user_data;
    connect_failed((struct mta_conn *)ch, CONN_ERR_CONNECT_TIMEOUT, "connection timed out");
}

/* session_timer - the armed timer fired: re-arm at the deadline, or time out */
static void session_timer(void *arg)
{
    struct mta_conn *c = arg;
    c->timer = 0;
    if (c->deadline == 0)
        return;
    mta_usec_t now = mta_now(c->m);
    if (now < c->deadline) {
        c->timer = c->m->env->timer_start(c->m->env, c->deadline, session_timer, c);
        c->timer_at = c->deadline;
        return;
    }
    if (c->state == SC_BODY &&
        smtp_data_progress(c->data, c->m->env->tcp_unsent(c->m->env, c->pub.fd))) {
        /* Bytes left during the last period: the block timer starts over.
         * A timeout is a whole timeout_data_transfer without one. */
        deadline_set(c, now + c->m->cfg.timeout_data_transfer);
        return;
    }
    c->deadline = 0;
    if (c->state == SC_CONNECTING)
        c->timeout(&c->pub, c->pub.user_data);
    else
        phase_timed_out(c);
}

static void phase_timed_out(struct mta_conn *c)
{
    if (c->state == SC_IDLE) {
        send_quit(c);       /* idle_timeout: nothing more to send */
        return;
    }
    if (c->state == SC_QUIT) {
        conn_close(c);
        return;
    }
    char what[128];
    if (c->state == SC_BODY)
        snprintf(what, sizeof what, "timeout sending the message data (no byte left for %llds)",
                 (long long)(c->m->cfg.timeout_data_transfer / MTA_USEC_PER_SEC));
    else
        snprintf(what, sizeof what, "timeout waiting for the %s reply", state_names[c->state]);
    lost(c, what);
}

/* conn_close - the end of a connection: close once, free, wake the maintainer */
static void conn_close(struct mta_conn *c)
{
    struct mta *m = c->m;
    struct mta_domain *d = c->d;
    assert(c->state != SC_CLOSED);
    assert(c->msg == NULL);
    timer_stop(c);
    if (c->established)
        ev_simple(&c->pub, SMTP_EV_DISCONNECT, NULL);
    if (c->established && !MTA_FAULT(FAULT_SKIP_DEC_OUTBOUND)) {
        m->stats.dec_outbound++;
        call_core_dec_outbound_connections_hook(&c->pub);
    }
    c->state = SC_CLOSED;
    if (!(MTA_FAULT(FAULT_SKIP_CLOSE) && m->shutting_down))
        m->env->tcp_close(m->env, c->pub.fd);
    if (MTA_FAULT(FAULT_DOUBLE_CLOSE))
        m->env->tcp_close(m->env, c->pub.fd);
    c->fd_open = 0;
    m->stats.connections_closed++;
    assert(d->conns[c->pub.binding_slot] > 0 && d->conns_total > 0);
    d->conns[c->pub.binding_slot]--;
    d->conns_total--;
    m->binding_conns[c->pub.binding_slot]--;
    host_conns_add(m, c->pub.addr, -1);
    if (c->prev)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->pub.fd = -1;
    if (!c->in_input)
        smtp_conn_destroy(c);
    maintain_soon(d);
    maintain_wake_slot_waiters(m);
}

/* smtp_conn_abort_all - the run is over: close every connection */
void smtp_conn_abort_all(struct mta *m)
{
    while (m->conns) {
        struct mta_conn *c = m->conns;
        if (c->msg) {
            /* Hand it back untouched: it is still queued, with no outcome. */
            struct mta_msg *msg = c->msg;
            c->msg = NULL;
            msg->where = MSG_NEW;
            queue_append_active(msg);
        }
        conn_close(c);
    }
}
