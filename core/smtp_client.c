/*
 * smtp_client - the outbound SMTP session, as an explicit state machine
 *
 * SYNOPSIS
 *   c = smtp_conn_create(m, d, slot, h, i);          before the connect to h->addrs[i]
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
 *     BODY     the data, as the socket takes it (smtp_data.h); no byte left
 *              for timeout_data_transfer: lost; the last byte left -> DOT
 *     DOT      2xx delivered, 4xx transient, 5xx permanent -> next transaction
 *     IDLE     new mail for the pair: -> transaction; idle_timeout: QUIT
 *     QUIT     any reply or EOF: close
 *
 *   The transaction itself (MAIL, RCPT, DATA, recipient limits, the next
 *   message) is smtp_transaction.c; both share smtp_client_int.h.
 *
 *   At any stage: a 421 reply means the server is closing (RFC 5321 3.8,
 *   4.2.1): the host is marked failed for host_failure_retry (4.5.4.1: a
 *   client MUST delay retrying), the client says QUIT, as Postfix does,
 *   and closes; with no message in flight the maintainer's next pass
 *   defers the next one in line, or tries another MX.  EOF, a reset, a
 *   malformed reply or a phase timeout end the session too.  The message
 *   in flight then gets a transient failure for every recipient not yet
 *   decided in this attempt, with the reply as its note, or status 4.4.2
 *   (lost or timed out) or 4.5.0 (malformed), and goes back to the
 *   delayed queue: never lost.  One case is unavoidable in SMTP (RFC 1047): when the connection
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
#include "hooks/core/log_client_connection_success.h"
#include "hooks/core/post_read_smtp.h"
#include "hooks/core/pre_read_smtp.h"
#include "mq.h"
#include "smtp_client_int.h"
#include "smtp_reply.h"
#include "test_faults.h"
#include "textbuf.h"
#include "trace.h"

const char *const sc_state_names[] = { "connect", "banner", "EHLO", "HELO", "RSET", "MAIL",
                                       "RCPT", "DATA", "plugin", "data transfer", "end of data", "idle",
                                       "QUIT", "STARTTLS", "TLS handshake", "closed" };

/* reply_error - the domain's last connection error is reply r, from this host */
static void reply_error(struct mta_conn *c, const struct smtp_reply *r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(struct mta_conn *c, const struct smtp_reply *r, const char *fmt, ...)
{
    char text[MTA_NOTE_MAX], status[DSN_STATUS_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    struct rcpt_why why = sc_reply_why(r, text, status);
    domain_set_error(c->d, r->code, why.status, c->host, "%s", text);
}

/* ---- creation and teardown ------------------------------------------- */

/* smtp_conn_create - a session object for a connect about to be started to
 * address addr_index of MX host h (copied: the domain's MX list may change) */
struct mta_conn *smtp_conn_create(struct mta *m, struct mta_domain *d, int slot,
                                  const struct mx_host *h, int addr_index)
{
    struct mta_conn *c = calloc(1, sizeof *c);
    if (c == NULL || (c->host = strdup(h->name)) == NULL)
        mta_panic("smtp_conn_create", "out of memory");
    assert(addr_index >= 0 && addr_index < h->naddrs);
    c->m = m;
    c->d = d;
    c->host_copy = *h;
    c->host_copy.name = c->host;
    c->pub.host = &c->host_copy;
    c->pub.offset = addr_index;
    c->pub.conn = &c->conn_view;
    c->pub.addr = h->addrs[addr_index];
    c->pub.binding_slot = slot;
    c->pub.dr = &d->pub;
    c->pub.fd = -1;
    c->state = SC_CONNECTING;
    outq_init(&c->out, SMTP_OUTQ_MAX);
    c->state_at = mta_now(m);
    return c;
}

connection_handle *smtp_conn_handle(struct mta_conn *c) { return sc_handle(c); }

/* sc_handle - the handle, its connection view made current (connection.h) */
connection_handle *sc_handle(struct mta_conn *c)
{
    connection *v = &c->conn_view;
    v->fd = c->pub.fd;
    v->in_use = c->state == SC_CONNECTING ? -1 : c->msg != NULL ? 1 : 0;
    v->statetime = mta_tv(c->state_at);
    v->startdelivery = c->msg != NULL ? mta_tv(c->taken_at) : (struct timeval){ 0, 0 };
    v->deliveries = c->delivered_txns;
    v->esmtp = c->esmtp;
    v->addr_offset = c->pub.offset;
    v->domain = &c->d->pub;
    v->mx = &c->host_copy;
    v->curr_message = c->msg != NULL ? msg_ec(c->msg, -1) : NULL;
    v->recipients = c->rcpts_total;
    return &c->pub;
}

/* seconds - a configured duration as the whole seconds delivery_construct shows */
static int seconds(mta_usec_t t)
{
    return (int)(t / MTA_USEC_PER_SEC);
}

/* sc_dc - the session's delivery_construct, current (smtp.h), its message msg */
delivery_construct *sc_dc(struct mta_conn *c, struct mta_msg *msg, int rcpt)
{
    const struct mta_config *cfg = &c->m->cfg;
    delivery_construct *dc = &c->dc;
    dc->conn_handle = sc_handle(c);
    dc->message = msg != NULL ? msg_ec(msg, rcpt) : NULL;
    dc->buffer = c->reply_buf;
    dc->binding_domain_idle_timeout = seconds(cfg->idle_timeout);
    dc->binding_domain_rset_timeout = seconds(cfg->timeout_mail);
    dc->binding_domain_ehlo_timeout = seconds(cfg->timeout_ehlo);
    dc->binding_domain_mailfrom_timeout = seconds(cfg->timeout_mail);
    dc->binding_domain_rcptto_timeout = seconds(cfg->timeout_rcpt);
    dc->binding_domain_body_timeout = seconds(cfg->timeout_dot);
    dc->binding_domain_max_deliveries = cfg->max_deliveries_per_connection;
    dc->binding_domain_max_recipients_per_batch = cfg->max_recipients_per_transaction;
    dc->binding_domain_send_8bitmime = 1;
    dc->binding_domain_use_tls = c->tls_level;
    return dc;
}

/* smtp_conn_destroy - free a session that never got a descriptor */
void smtp_conn_destroy(struct mta_conn *c)
{
    assert(!c->fd_open);
    free(c->host);
    free(c->reply_buf);
    free(c->in);
    free(c->rc);
    free(c->pend);
    outq_free(&c->out);
    sc_data_release(c);
    free(c);
}

/* sc_data_release - the body has left (or will not): its data pump goes
 * back to the core's spares, so that an idle session holds none (a run
 * with 90,000 sessions open at once held 16 KiB in each) */
void sc_data_release(struct mta_conn *c)
{
    if (c->data != NULL && c->m->nspare_data < MTA_SPARE_DATA)
        c->m->spare_data[c->m->nspare_data++] = c->data;    /* smtp_data_begin resets it */
    else
        free(c->data);
    c->data = NULL;
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
void sc_deadline_clear(struct mta_conn *c)
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
    /* Also at the head of its domain's list, so both lists keep one order. */
    c->dnext = c->d->conn_list;
    if (c->d->conn_list)
        c->d->conn_list->dprev = c;
    c->d->conn_list = c;
    deadline_set(c, mta_now(m) + m->cfg.connect_timeout);
}

/* ---- tracing ----------------------------------------------------------- */

void sc_trace_line(struct mta_conn *c, const char *dir, const char *line, size_t len)
{
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "smtp", dir);
    mta_tb_int(&tb, "conn", c->pub.fd);
    mta_tb_strn(&tb, "line", line, len);
    mta_tb_emit(&tb);
}

/* ---- sending ---------------------------------------------------------- */

static mta_usec_t phase_timeout(const struct mta_config *cfg, enum sc_state s)
{
    switch (s) {
    case SC_BANNER: return cfg->timeout_banner;
    /* STARTTLS and the handshake: Postfix's smtp_starttls_timeout is
     * 300 s, as its EHLO timeout. */
    case SC_EHLO: case SC_HELO: case SC_STARTTLS: case SC_TLS: return cfg->timeout_ehlo;
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
void sc_expect(struct mta_conn *c, enum sc_state s)
{
    struct mta *m = c->m;
    c->state = s;
    c->state_at = mta_now(m);
    deadline_set(c, mta_now(m) + phase_timeout(&m->cfg, s));
}

/* put_line - append "LINE\r\n" to out (at most SMTP_LINE_MAX) and trace it */
void sc_put_line(struct mta_conn *c, char *out, size_t *len, const char *line)
{
    size_t n = strlen(line);
    assert(n + 2 <= SMTP_LINE_MAX);
    sc_trace_line(c, "send", line, n);
    memcpy(out + *len, line, n);
    memcpy(out + *len + n, "\r\n", 2);
    *len += n + 2;
}

/* sc_put - the socket write the output queue and the data go through */
int sc_put(void *arg, const void *buf, size_t len)
{
    struct mta_conn *c = arg;
    return c->m->env->tcp_write(c->m->env, c->pub.fd, buf, len);
}

/* sc_write - bytes to the server, whole and in order (mtasim_env.h,
 * "Back-pressure": what the socket does not take now waits in c->out) */
int sc_write(struct mta_conn *c, const void *buf, size_t len)
{
    return outq_write(&c->out, buf, len, sc_put, c);
}

/* send_line - one command line, "VERB" or "VERB ARG" (arg NULL: none), CRLF
 * added; returns 0 or a negative errno if the peer is gone */
int sc_send_line(struct mta_conn *c, const char *verb, const char *arg)
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
    sc_put_line(c, out, &len, line);
    return sc_write(c, out, len);
}

void sc_send_quit(struct mta_conn *c)
{
    if (sc_send_line(c, "QUIT", NULL) < 0) {
        sc_conn_close(c);
        return;
    }
    sc_expect(c, SC_QUIT);
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
        { "CHUNKING", EXT_CHUNKING }, { "STARTTLS", EXT_STARTTLS },
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
    sc_deadline_clear(c);
    if (c->state == SC_BODY) {
        c->state = SC_DOT;      /* answered before its end was seen leaving */
        sc_data_release(c);
    }

    if (r->code == 421 && c->state != SC_QUIT) {
        /* The server is closing the channel, whatever the command (RFC 5321
         * 3.8, 4.2.1: 421 may answer any command).  The host is not tried
         * again for host_failure_retry - RFC 5321 4.5.4.1: a client MUST
         * delay retrying a host that failed - so the maintainer's next pass
         * takes another MX or, with none, defers the next message in line
         * with this reply (CONN_ACTION_REQUEUE1).  The message in flight
         * fails for now with the reply as its note.  Then, like Postfix
         * 3.7 (tests/fidelity): QUIT before closing when this reply was
         * the last one awaited (banner, EHLO, the end of data); none when
         * pipelined commands are still unanswered - the server has
         * closed, their replies will never come - just close. */
        int unanswered = c->npend > 1;
        reply_error(c, r, "%s", note);
        host_failure_mark(c->m, c->pub.addr);
        if (c->msg != NULL) {
            char status[DSN_STATUS_MAX];
            struct rcpt_why why = sc_reply_why(r, note, status);
            sc_fail_in_flight(c, OUTCOME_TRANSIENT, &why);
        }
        if (unanswered)
            sc_conn_close(c);
        else
            sc_send_quit(c);
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
            char status[DSN_STATUS_MAX];
            struct rcpt_why why = sc_reply_why(r, note, status);
            sc_decide_accepted(c, sc_outcome_of(c, r->code, note, 0), &why);
        }
        sc_quit_for_event(c, "SMTP_EV_SYNTAXWARNING");
        return;
    }
    switch (c->state) {
    case SC_BANNER:
        if (!ok) {
            reply_error(c, r, "banner: %s", note);
            host_failure_mark(c->m, c->pub.addr);
            sc_send_quit(c);
            return;
        }
        if (sc_send_line(c, "EHLO", c->m->bindings[c->pub.binding_slot].ehlo_name) < 0) {
            sc_conn_close(c);
            return;
        }
        sc_expect(c, SC_EHLO);
        return;
    case SC_EHLO:
        if (ok) {
            c->esmtp = 1;
            parse_extensions(c, r);
            if (!sc_tls_after_ehlo(c))
                sc_next_transaction(c);
            return;
        }
        if (r->code == 500 || r->code == 501 || r->code == 502 || r->code == 504 ||
            r->code == 550) {
            /* RFC 5321 3.2: a server that does not do EHLO; fall back to HELO. */
            if (sc_send_line(c, "HELO", c->m->bindings[c->pub.binding_slot].ehlo_name) < 0) {
                sc_conn_close(c);
                return;
            }
            sc_expect(c, SC_HELO);
            return;
        }
        reply_error(c, r, "EHLO: %s", note);
        host_failure_mark(c->m, c->pub.addr);     /* not this host, for now */
        sc_send_quit(c);
        return;
    case SC_HELO:
        if (ok) {
            c->ext = 0;
            if (!sc_tls_after_ehlo(c))
                sc_next_transaction(c);
            return;
        }
        reply_error(c, r, "HELO: %s", note);
        host_failure_mark(c->m, c->pub.addr);     /* not this host, for now */
        sc_send_quit(c);
        return;
    case SC_RSET:
        if (!ok) {
            char status[DSN_STATUS_MAX];
            struct rcpt_why why = sc_reply_why(r, note, status);
            sc_fail_in_flight(c, OUTCOME_TRANSIENT, &why);
            sc_send_quit(c);
            return;
        }
        sc_start_transaction(c);
        return;
    case SC_MAIL:
    case SC_RCPT:
    case SC_DATA:
        sc_transaction_reply(c, r, note);
        return;
    case SC_DOT:
        if (!c->empty_data) {
            status_set(c->m, &c->msg->data_status, r);
            ev_messagesent(&c->pub, &c->msg->pub);
            mq_out_sent(&c->pub, &c->msg->pub, r->code, note);
            char status[DSN_STATUS_MAX];
            struct rcpt_why why = sc_reply_why(r, note, status);
            sc_decide_accepted(c, sc_outcome_of(c, r->code, note, 0), &why);
        } else if (!c->txn_failed) {
            /* The "." that closed a DATA with no recipient: libESMTP 1.1.0
             * (rsp_data2) reports its reply as the message's end too. */
            status_set(c->m, &c->msg->data_status, r);
            ev_messagesent(&c->pub, &c->msg->pub);
        }
        sc_end_transaction(c);
        return;
    case SC_QUIT:
        sc_conn_close(c);
        return;
    case SC_STARTTLS:
        sc_tls_reply(c, r, note);
        return;
    case SC_IDLE:
        /* A reply nobody asked for: the server is confused; leave. */
        reply_error(c, r, "unexpected reply while idle: %s", note);
        sc_send_quit(c);
        return;
    case SC_PLUGIN: {
        /* Likewise while mq_smtp_out_data holds control: no command is
         * unanswered, so the message in flight fails for now. */
        reply_error(c, r, "unexpected reply while a plugin held the message: %s", note);
        char status[DSN_STATUS_MAX];
        struct rcpt_why why = sc_reply_why(r, note, status);
        sc_fail_in_flight(c, OUTCOME_TRANSIENT, &why);
        sc_send_quit(c);
        return;
    }
    case SC_CONNECTING:
    case SC_BODY:           /* made SC_DOT above */
    case SC_TLS:            /* take_input stops reading at SC_TLS */
    case SC_CLOSED:
        break;
    }
    mta_panic("handle_reply", "reply in state %s", sc_state_names[c->state]);
}

/* read_expect - what a read in the current state waits for, as pre_ and
 * post_read_smtp tell it: the reply code expected and the stage
 * (SMTP_STAGE_*, connection.h) a matching reply leads to.  With
 * PIPELINING the state is the oldest command awaiting its reply. */
static void read_expect(const struct mta_conn *c, int *expected, int *newstate)
{
    switch (c->state) {
    case SC_BANNER: *expected = 220; *newstate = SMTP_STAGE_EHLO; return;
    case SC_EHLO: case SC_HELO: case SC_RSET:
        *expected = 250; *newstate = SMTP_STAGE_MAIL; return;
    case SC_MAIL: *expected = 250; *newstate = SMTP_STAGE_RCPT; return;
    case SC_RCPT: *expected = 250; *newstate = SMTP_STAGE_DATA; return;
    case SC_DATA: *expected = 354; *newstate = SMTP_STAGE_BODY; return;
    /* While the body is still going out, the reply a read can bring is
     * the one to the whole message (an early one ends it: handle_reply). */
    case SC_BODY: case SC_DOT: *expected = 250; *newstate = SMTP_STAGE_IDLE; return;
    case SC_QUIT: *expected = 221; *newstate = SMTP_STAGE_NOT_CONNECTED; return;
    case SC_IDLE: *expected = 0; *newstate = SMTP_STAGE_IDLE; return;
    case SC_PLUGIN: *expected = 0; *newstate = SMTP_STAGE_BODY; return;
    case SC_STARTTLS: *expected = 220; *newstate = SMTP_STAGE_TLS; return;
    case SC_CONNECTING: case SC_TLS: case SC_CLOSED: break;
    }
    *expected = 0;
    *newstate = SMTP_STAGE_NOT_CONNECTED;
}

/* keep_reply - the reply just read, for dc.buffer (post_read_smtp) */
static void keep_reply(struct mta_conn *c, const char *in, size_t len)
{
    if (len + 1 > c->reply_cap) {
        c->reply_cap = len + 1 > 256 ? len + 1 : 256;
        c->reply_buf = realloc(c->reply_buf, c->reply_cap);
        if (c->reply_buf == NULL)
            mta_panic("keep_reply", "out of memory");
    }
    memcpy(c->reply_buf, in, len);
    c->reply_buf[len] = '\0';
    c->dc.bytes = (int)len;
}

/* lost - the session ended abnormally: the message in flight is retried
 *
 * The status is RFC 3463's X.4.2 "bad connection" (lost or timed out once
 * connected), X.5.0 for a reply that broke the protocol. */
static void lost(struct mta_conn *c, const char *what)
{
    const char *status = strncmp(what, "malformed", 9) == 0 || strncmp(what, "reply too", 9) == 0
                         ? DSN_STATUS_PROTOCOL : DSN_STATUS_BAD_CONNECTION;
    char note[MTA_NOTE_MAX];
    if (c->state == SC_DOT)
        snprintf(note, sizeof note, "connection lost after end of data (%s); the remote may have the message", what);
    else
        snprintf(note, sizeof note, "%s at %s stage", what, sc_state_names[c->state]);
    if (c->state != SC_QUIT) {
        domain_set_error(c->d, 0, status, NULL, "%s", note);
        /* Lost before any message was taken (banner, EHLO): the host is at
         * fault, like a failed connect; the next pass tries another MX or
         * requeues, instead of reconnecting at once. */
        if (c->msg == NULL && c->transactions == 0)
            host_failure_mark(c->m, c->pub.addr);
        sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(status, note));
    }
    sc_conn_close(c);
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
    int expected, newstate, mask = 1;   /* mask: mtasim's, "readable" (not used) */
    read_expect(c, &expected, &newstate);
    c->dc.last_nread = (int)len;
    if (HOOK_LIVE(pre_read_smtp)
        && call_core_pre_read_smtp_hook(sc_dc(c, c->msg, -1), expected, newstate, &now, &mask)) {
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
            sc_trace_line(c, "recv", in, bad);
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
            sc_trace_line(c, "recv", in + at, end - at);
            at = eol + 1;
        }
        off += used;
        if (c->state == SC_CONNECTING || c->state == SC_CLOSED)
            break;
        if (has_core_post_read_smtp_hook())
            keep_reply(c, in, used);
        read_expect(c, &expected, &newstate);
        mask = 1;
        if (HOOK_LIVE(post_read_smtp)
            && call_core_post_read_smtp_hook(sc_dc(c, c->msg, -1), (int)used, expected, newstate,
                                             &now, &mask)) {
            lost(c, "a post_read_smtp provider ended the session");
            break;
        }
        handle_reply(c, &r);
        if (c->state == SC_TLS) {
            /* What came after the 220 came in the clear: it is not
             * taken as sent over TLS (RFC 3207 5, the response
             * injection twin of the command injection). */
            if (off < n && mta_tracing()) {
                struct mta_tb tb;
                mta_tb_begin(&tb, "tls", "discarded");
                mta_tb_int(&tb, "conn", c->pub.fd);
                mta_tb_int(&tb, "bytes", (int64_t)(n - off));
                mta_tb_emit(&tb);
            }
            off = n;
            break;
        }
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
    mq_io_tcp_event(fd, ev);       /* a MailerQ plugin's MQ_IOWatch on fd */
    switch (ev) {
    case MTA_TCP_CONNECTED:
        assert(c->state == SC_CONNECTING);
        sc_deadline_clear(c);
        c->finish(&c->pub, 0, c->pub.user_data);
        return;
    case MTA_TCP_CONNECT_FAILED:
        assert(c->state == SC_CONNECTING);
        sc_deadline_clear(c);
        /* ETIMEDOUT: the stack gave up on the SYN (Linux: tcp_syn_retries). */
        c->finish(&c->pub, err == ECONNREFUSED ? CONN_ERR_CONNECT
                           : err == ETIMEDOUT ? CONN_ERR_CONNECT_TIMEOUT : CONN_ERR_CONNECT_NETWORK,
                  c->pub.user_data);
        return;
    case MTA_TCP_DATA:
        if (c->state == SC_CONNECTING)
            mta_panic("smtp_conn_tcp_event", "data before connect on fd %d", fd);
        if (c->state == SC_TLS)
            mta_panic("smtp_conn_tcp_event", "data during the TLS handshake on fd %d", fd);
        take_input(c, data, len);
        return;
    case MTA_TCP_TLS_UP:
        assert(c->state == SC_TLS);
        sc_tls_up(c);
        return;
    case MTA_TCP_TLS_FAILED:
        assert(c->state == SC_TLS);
        sc_tls_failed(c, err, data, len);
        return;
    case MTA_TCP_EOF:
        lost(c, "connection closed by the remote");
        return;
    case MTA_TCP_RESET:
        lost(c, err == ETIMEDOUT ? "connection timed out (no acknowledgement)"
                                 : "connection reset by the remote");
        return;
    case MTA_TCP_WRITABLE:     /* the commands waiting, then the data */
        if (outq_flush(&c->out, sc_put, c) < 0 || (c->state == SC_BODY && sc_data_pump(c) < 0))
            lost(c, "connection lost while writing");
        return;
    case MTA_TCP_SENT:
        if (c->state == SC_BODY && smtp_data_all_taken(c->data))
            sc_data_sent(c);
        return;
    }
}

static void connect_failed(struct mta_conn *c, int code, const char *what)
{
    struct mta *m = c->m;
    char a[MTA_IP_TEXT];
    mta_ip_format(c->pub.addr, a);
    /* RFC 3463 3.5 X.4.1: "no answer from host". */
    domain_set_error(c->d, 0, DSN_STATUS_NO_ANSWER, NULL, "connect to %s (%s): %s", a, c->host, what);
    host_failure_mark(m, c->pub.addr);
    struct timeval now = mta_tv(mta_now(m));
    struct mta_sockaddr sa;
    mta_sockaddr_set(&sa, c->pub.addr, (uint16_t)m->cfg.smtp_port);
    call_core_log_client_connection_failure_hook(&sa.u.sa, code, &c->d->pub,
                                                 c->pub.binding_slot, &now);
    struct mta_domain *d = c->d;
    sc_conn_close(c);
    /* MX_Failures_To_Delay: so many failures in a row delay the whole domain. */
    if (++d->mx_failures >= m->cfg.mx_failures_to_delay) {
        char note[MTA_NOTE_MAX];
        snprintf(note, sizeof note, "%d connection failures in a row (MX_Failures_To_Delay); last: %.400s",
                 d->mx_failures, d->last_error);
        d->mx_failures = 0;
        for (int slot = 0; slot < m->nbindings; slot++) {
            struct mta_msg *msg;
            while ((msg = queue_active_head(d, slot)) != NULL) {
                queue_remove_active(msg);
                struct rcpt_why why = { d->last_code, d->last_status, note, NULL };
                queue_fail_message(msg, OUTCOME_TRANSIENT, &why);
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
                               : err == CONN_ERR_CONNECT_TIMEOUT ? "connection timed out"
                               : "host unreachable");
        return;
    }
    struct timeval now = mta_tv(mta_now(m));
    c->d->mx_failures = 0;
    m->stats.connections_established++;
    struct mta_sockaddr sa;
    mta_sockaddr_set(&sa, c->pub.addr, (uint16_t)m->cfg.smtp_port);
    call_core_log_client_connection_success_hook(&sa.u.sa, &c->d->pub, c->pub.binding_slot, &now);
    c->established = 1;
    m->stats.inc_outbound++;
    if (HOOK_LIVE(inc_outbound_connections))
        call_core_inc_outbound_connections_hook(sc_handle(c));
    ev_simple(&c->pub, SMTP_EV_CONNECT, NULL);
    sc_expect(c, SC_BANNER);
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
        sc_send_quit(c);       /* idle_timeout: nothing more to send */
        return;
    }
    if (c->state == SC_QUIT) {
        sc_conn_close(c);
        return;
    }
    if (c->state == SC_TLS) {
        static const char slow[] = "no answer within the STARTTLS timeout";
        sc_tls_failed(c, MTA_TLS_ERR_HANDSHAKE, slow, sizeof slow - 1);
        return;
    }
    char what[128];
    if (c->state == SC_BODY)
        snprintf(what, sizeof what, "timeout sending the message data (no byte left for %llds)",
                 (long long)(c->m->cfg.timeout_data_transfer / MTA_USEC_PER_SEC));
    else
        snprintf(what, sizeof what, "timeout waiting for the %s reply", sc_state_names[c->state]);
    lost(c, what);
}

/* conn_close - the end of a connection: close once, free, wake the maintainer */
void sc_conn_close(struct mta_conn *c)
{
    struct mta *m = c->m;
    struct mta_domain *d = c->d;
    assert(c->state != SC_CLOSED);
    assert(c->msg == NULL);
    timer_stop(c);
    mq_out_closed(&c->pub);     /* a held mq_smtp_out_data no longer resumes it */
    if (c->established)
        ev_simple(&c->pub, SMTP_EV_DISCONNECT, NULL);
    if (c->established && !MTA_FAULT(FAULT_SKIP_DEC_OUTBOUND)) {
        m->stats.dec_outbound++;
        if (HOOK_LIVE(dec_outbound_connections))
            call_core_dec_outbound_connections_hook(sc_handle(c));
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
    if (c->dprev)
        c->dprev->dnext = c->dnext;
    else
        d->conn_list = c->dnext;
    if (c->dnext)
        c->dnext->dprev = c->dprev;
    c->pub.fd = -1;
    if (!c->in_input)
        smtp_conn_destroy(c);
    maintain_soon(d);
    maintain_wake_slot_waiters(m);
}

/* smtp_client_has_fd - fd is an open outbound connection's */
int smtp_client_has_fd(const struct mta *m, int fd)
{
    for (const struct mta_conn *c = m->conns; c != NULL; c = c->next)
        if (c->fd_open && c->pub.fd == fd)
            return 1;
    return 0;
}

/* smtp_conn_abort_all - the run is over: close every connection */
void smtp_conn_abort_all(struct mta *m)
{
    while (m->conns) {
        struct mta_conn *c = m->conns;
        if (c->msg) {
            struct mta_msg *msg = c->msg;
            int pending = 0;
            for (int i = 0; i < msg->pub.rcpt_count; i++)
                pending += msg->pub.rcpts[i].state == RCPT_PENDING;
            sc_set_msg(c, NULL);
            if (pending == 0) {
                /* Every recipient has its outcome (a 5xx to MAIL, say) and
                 * the session was only reading the replies still due to its
                 * pipelined commands (RFC 2920 3.1): the attempt is over and
                 * the message done, its failures reported (RFC 5321 6.1), as
                 * at the end of the session.  Found by mtasim explore:
                 * scenarios/network/cutoff-after-mail-5xx.scn. */
                queue_attempt_done(msg);
            } else {
                /* Hand it back untouched: it is still queued, with no outcome. */
                msg->where = MSG_NEW;
                queue_append_active(msg);
            }
        }
        sc_conn_close(c);
    }
}
