/*
 * smtp_transaction - the outbound SMTP transaction, and what comes next
 *
 * SYNOPSIS
 *   sc_next_transaction(c);     the session is ready: a message, idle or QUIT
 *   sc_transaction_reply(c, r, note);   a reply to MAIL, RCPT or DATA
 *   sc_end_transaction(c);      after the end of data: more, or the next
 *
 * DESCRIPTION
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
 *   Recipient limits (RFC 5321 4.5.3.1.10; docs/queue.md): recipients
 *   refused with 452, or 552 read as transient (config rcpt_552), are
 *   leftovers; after a transaction that delivered something they go
 *   again in a new transaction on the same connection (RSET first), or,
 *   when the session must end, back to the active queue at once.  At
 *   most max_recipients_per_transaction RCPTs go per MAIL.  The message
 *   stays in flight across its transactions: one attempt.
 *
 *   Every outcome carries a struct rcpt_why: the reply (code, enhanced
 *   status, text) or, with no reply, an RFC 3463 status of the core's
 *   own (dsn_status.h).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hooks/core/log_attempt_v1.h"
#include "hooks/core/mail_queue_get_next_active.h"
#include "hooks/core/smtp_client_mailfrom_args.h"
#include "hooks/core/smtp_client_rcptto_args.h"
#include "hooks/core/smtp_error_classify.h"
#include "hooks/core/smtp_should_session_shutdown.h"
#include "smtp_client_int.h"
#include "smtp_reply.h"
#include "textbuf.h"
#include "trace.h"

/* reply_why - the reason a reply gives: its code, its enhanced code when it
 * has one (else the queue derives "class.0.0"), its text as note */
struct rcpt_why sc_reply_why(const struct smtp_reply *r, const char *note,
                                 char status[DSN_STATUS_MAX])
{
    dsn_status_format(r->enh_class, r->enh_subject, r->enh_detail, status);
    return (struct rcpt_why){ r->code, status[0] ? status : NULL, note, NULL };
}


/* ---- the message in flight ---------------------------------------------- */

/* fail_in_flight - recipients not yet decided get outcome o; attempt over */
void sc_fail_in_flight(struct mta_conn *c, enum rcpt_outcome o, const struct rcpt_why *why)
{
    struct mta_msg *msg = c->msg;
    if (msg == NULL)
        return;
    if (c->state == SC_PLUGIN)
        mq_out_closed(&c->pub);     /* the held mq_smtp_out_data resumes nothing now */
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        if (c->rc[i] != RC_DECIDED && msg->pub.rcpts[i].state == RCPT_PENDING) {
            queue_rcpt_outcome(msg, i, o, why);
            c->rc[i] = RC_DECIDED;
        }
    sc_set_msg(c, NULL);
    c->npend = 0;       /* the replies still expected are about this message */
    queue_attempt_done(msg);
}

/* decide_accepted - the recipients the remote accepted get outcome o */
void sc_decide_accepted(struct mta_conn *c, enum rcpt_outcome o, const struct rcpt_why *why)
{
    struct mta_msg *msg = c->msg;
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        if (c->rc[i] == RC_ACCEPTED) {
            queue_rcpt_outcome(msg, i, o, why);
            c->rc[i] = RC_DECIDED;
            if (o == OUTCOME_DELIVERED && !c->txn_delivered) {
                c->txn_delivered = 1;
                c->delivered_txns++;
            }
        }
}


/* data_taken - the socket took n bytes of the message data */
static void data_taken(void *arg, size_t n)
{
    struct mta_conn *c = arg;
    ev_messagedata(&c->pub, &c->msg->pub, (int)n);
}

/* sc_data_pump - write what the socket takes; once it has it all, ask to be
 * told when it has left (the end-of-data timer starts then) */
int sc_data_pump(struct mta_conn *c)
{
    if (outq_len(&c->out) > 0)
        return 0;           /* the BDAT line first */
    assert(c->state == SC_BODY && c->data != NULL);
    int rc = smtp_data_pump(c->data, sc_put, c, data_taken, c);
    if (rc == 0 && c->data != NULL && smtp_data_all_taken(c->data))
        rc = c->m->env->tcp_notify_sent(c->m->env, c->pub.fd);
    return rc;
}

/* body_go - the message data, written as the socket takes it (smtp_data.h)
 *
 * With DATA: dot-stuffed, CRLF line ends, then ".".  With BDAT (RFC 3030):
 * one "BDAT n LAST" command followed by the message with CRLF line ends
 * and no stuffing.  After each write SMTP_EV_MESSAGEDATA reports the
 * octets of that write, as libESMTP 1.1.0 does (protocol.c, cmd_data2:
 * the length of each piece, not a running total; its users add them up).
 * The BDAT command line is not message data; the final "." is.  The
 * session is in SC_BODY until the last byte has left the host, with the
 * data-block timer (RFC 5321 4.5.3.2.5) running. */
static int body_go(struct mta_conn *c, const char *b, size_t n)
{
    size_t o = smtp_data_size(b, n, c->use_bdat);
    if (c->use_bdat) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "BDAT %zu LAST", o);
        if (sc_send_line(c, cmd, NULL) < 0)
            return -1;
    }
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "smtp", "send");
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "data_bytes", (int64_t)o);
        mta_tb_emit(&tb);
    }
    if (c->data == NULL)
        c->data = c->m->nspare_data > 0 ? c->m->spare_data[--c->m->nspare_data]
                                        : malloc(sizeof *c->data);
    if (c->data == NULL)
        mta_panic("send_body", "out of memory");
    smtp_data_begin(c->data, b, n, c->use_bdat);
    sc_expect(c, SC_BODY);
    return sc_data_pump(c) < 0 ? -1 : 0;
}

/* body_resume - the plugin that held mq_smtp_out_data gave control back:
 * the data goes out now, with the MIME the plugins left */
static void body_resume(connection_handle *ch, const char *body, size_t len)
{
    struct mta_conn *c = (struct mta_conn *)ch;
    /* Only a session still waiting is resumed: sc_fail_in_flight and
     * sc_conn_close detach the chain otherwise (mq_out_closed). */
    assert(c->state == SC_PLUGIN && c->msg != NULL);
    if (body_go(c, body, len) < 0) {
        sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_BAD_CONNECTION, "connection lost during the data"));
        sc_conn_close(c);
    }
}

/* send_body - the MailerQ plugins' mq_smtp_out_data first (they may replace
 * the MIME), then the data.  MailerQ 3.0 (mq_smtp_out_data.md): a plugin
 * that returns true holds the message "until either the MQ_Complete,
 * MQ_Continue or MQ_Retry function is called"; meanwhile the session is
 * in SC_PLUGIN, awaiting nothing and with no timer of its own ("if none
 * of the functions is called, MailerQ will wait for the remote server to
 * close the connection and mark it as an error": lost() then fails the
 * message for now, mq_out_closed() detaches the chain). */
static int send_body(struct mta_conn *c)
{
    message *msg = &c->msg->pub;
    const char *b = msg->body ? msg->body : "";
    size_t n = msg->body_len;
    if (!mq_out_data(&c->pub, msg, &b, &n, body_resume)) {
        c->state = SC_PLUGIN;
        c->state_at = mta_now(c->m);
        sc_deadline_clear(c);
        return 0;
    }
    return body_go(c, b, n);
}

/* sc_data_sent - the last byte of the data left the host: the wait for the
 * end-of-data reply starts now, not when the data was handed over (RFC
 * 5321 4.5.3.2.6: the 10 minutes are for the server's processing) */
void sc_data_sent(struct mta_conn *c)
{
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "smtp", "sent");
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "data_bytes", (int64_t)c->data->taken);
        mta_tb_emit(&tb);
    }
    sc_data_release(c);
    sc_expect(c, SC_DOT);
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
    sc_expect(c, c->pend[c->pend_head].kind);
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

/* message_size - the message's size as RFC 1870 section 3 defines it for
 * SIZE= and compares with the server's limit: "the number of octets,
 * including CR-LF pairs, but not the SMTP DATA command's terminating dot or
 * doubled quoting dots", i.e. what BDAT would carry (bare LFs made CRLF, a
 * missing last line end added), not the stored length.  Counted on each
 * use: a plugin may have replaced the body since injection. */
static size_t message_size(const message *msg)
{
    return smtp_data_size(msg->body ? msg->body : "", msg->body_len, 1);
}

/* next_pending_rcpt - the first recipient from i on still worth a RCPT in
 * this transaction, or -1 (also when max_recipients_per_transaction RCPTs
 * went out: the rest wait for the next transaction) */
static int next_pending_rcpt(const struct mta_conn *c, int i)
{
    int limit = c->m->cfg.max_recipients_per_transaction;
    if (limit > 0 && c->txn_rcpts >= limit)
        return -1;
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
    struct mta_args a;
    smtp_args_init(&a, tb.len);
    if ((c->ext & EXT_DSN) && msg->dsn_notify) {
        char orcpt[400];
        xtext(msg->rcpts[i].address, orcpt + 7, sizeof orcpt - 7);
        memcpy(orcpt, "rfc822;", 7);
        smtp_client_args_add(&a.pub, "NOTIFY", msg->dsn_notify);
        smtp_client_args_add(&a.pub, "ORCPT", orcpt);
    }
    int rc = HOOK_LIVE(smtp_client_rcptto_args)
             ? call_core_smtp_client_rcptto_args_hook(sc_dc(c, c->msg, i), &a.pub) : 0;
    smtp_args_render(&a.pub, line + tb.len, SMTP_LINE_MAX - 2 - tb.len);
    return rc;
}

/* refuse_rcpt - a provider refused recipient i: it fails for now, unsent */
static void refuse_rcpt(struct mta_conn *c, int i)
{
    queue_rcpt_outcome(c->msg, i, OUTCOME_TRANSIENT,
                       WHY(DSN_STATUS_LOCAL, "a smtp_client_rcptto_args provider refused this recipient"));
    c->rc[i] = RC_DECIDED;
}

/* quit_for_event - an event callback asked to quit: the message waits */
void sc_quit_for_event(struct mta_conn *c, const char *event)
{
    char note[MTA_NOTE_MAX];
    snprintf(note, sizeof note, "the application quit the session at %s", event);
    sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_LOCAL, note));
    sc_send_quit(c);
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
        sc_quit_for_event(c, "SMTP_EV_EXTNA_DSN");
        return -1;
    }
    if (has_8bit(c->msg) && !(c->ext & EXT_8BITMIME))
        ev_simple(&c->pub, SMTP_EV_EXTNA_8BITMIME, msg);   /* informational: sent as is */
    if (msg->chunking) {
        if (c->ext & EXT_CHUNKING)
            c->use_bdat = 1;
        else if (ev_quit(&c->pub, SMTP_EV_EXTNA_CHUNKING, msg)) {
            sc_quit_for_event(c, "SMTP_EV_EXTNA_CHUNKING");
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
                /* RFC 3463 3.5 X.4.7: the sender's time limit cannot be met. */
                sc_fail_in_flight(c, OUTCOME_PERMANENT, WHY(DSN_STATUS_EXPIRED, note));
                sc_next_transaction(c);
                return -1;
            }
            *by = c->deliverby_min + adjust;
        }
    }
    return 0;
}

/* start_transaction - MAIL, and with PIPELINING every RCPT (and DATA), in one write */
void sc_start_transaction(struct mta_conn *c)
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
    /* The core's own parameters first, then the providers' (smtp_args.c). */
    struct mta_args a;
    smtp_args_init(&a, tb.len);
    char num[32];
    if (by > 0) {
        snprintf(num, sizeof num, "%ld;R", by);
        smtp_client_args_add(&a.pub, "BY", num);
    }
    if (c->ext & EXT_SIZE) {
        snprintf(num, sizeof num, "%zu", message_size(msg));
        smtp_client_args_add(&a.pub, "SIZE", num);
    }
    if ((c->ext & EXT_8BITMIME) && has_8bit(c->msg))
        smtp_client_args_add(&a.pub, "BODY", "8BITMIME");
    if ((c->ext & EXT_DSN) && msg->dsn_ret)
        smtp_client_args_add(&a.pub, "RET", msg->dsn_ret);
    if ((c->ext & EXT_DSN) && msg->dsn_envid) {
        char envid[320];
        xtext(msg->dsn_envid, envid, sizeof envid);
        smtp_client_args_add(&a.pub, "ENVID", envid);
    }
    if (HOOK_LIVE(smtp_client_mailfrom_args)
        && call_core_smtp_client_mailfrom_args_hook(sc_dc(c, c->msg, -1), &a.pub)) {
        sc_fail_in_flight(c, OUTCOME_TRANSIENT,
                       WHY(DSN_STATUS_LOCAL, "a smtp_client_mailfrom_args provider refused the message"));
        sc_next_transaction(c);
        return;
    }
    smtp_args_render(&a.pub, line + tb.len, sizeof line - 2 - tb.len);
    int nrcpt = msg->rcpt_count;
    size_t cap = (size_t)(nrcpt + 2) * (SMTP_LINE_MAX + 2);
    char small[4 * (SMTP_LINE_MAX + 2)];    /* most messages: no allocation */
    char *out = cap <= sizeof small ? small : malloc(cap);
    if (out == NULL)
        mta_panic("start_transaction", "out of memory");
    size_t len = 0;
    sc_put_line(c, out, &len, line);
    pend_push(c, SC_MAIL, -1);
    c->rcpt_next = 0;
    if (c->ext & EXT_PIPELINING) {
        for (int i = next_pending_rcpt(c, 0); i >= 0; i = next_pending_rcpt(c, i + 1)) {
            if (rcpt_line(c, i, line)) {
                refuse_rcpt(c, i);
                continue;
            }
            sc_put_line(c, out, &len, line);
            c->rc[i] = RC_SENT;
            c->txn_rcpts++;
            c->rcpts_total++;
            pend_push(c, SC_RCPT, i);
        }
        if (!c->use_bdat) {     /* BDAT waits for the RCPT replies: its size is final */
            sc_put_line(c, out, &len, "DATA");
            pend_push(c, SC_DATA, -1);
        }
    }
    assert(len <= cap);
    int rc = sc_write(c, out, len);
    if (out != small)
        free(out);
    if (rc < 0) {
        sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_BAD_CONNECTION, "connection lost before MAIL"));
        sc_conn_close(c);
        return;
    }
    await_front(c);
}

/* send_bdat - the whole message as one BDAT LAST chunk; its reply ends the transaction */
static void send_bdat(struct mta_conn *c)
{
    if (send_body(c) < 0) {
        sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_BAD_CONNECTION, "connection lost during the data"));
        sc_conn_close(c);
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
        c->rc[i] = RC_SENT;
        c->txn_rcpts++;
        c->rcpts_total++;
        c->rcpt_next = i + 1;
        pend_push(c, SC_RCPT, i);
        if (sc_send_line(c, line, NULL) < 0) {
            sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_BAD_CONNECTION, "connection lost during RCPT"));
            sc_conn_close(c);
            return;
        }
        await_front(c);
        return;
    }
    if (c->accepted == 0) {
        /* No recipient accepted: the transaction is over without DATA. */
        sc_end_transaction(c);
        return;
    }
    if (c->use_bdat) {
        send_bdat(c);
        return;
    }
    pend_push(c, SC_DATA, -1);
    if (sc_send_line(c, "DATA", NULL) < 0) {
        sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_BAD_CONNECTION, "connection lost before DATA"));
        sc_conn_close(c);
        return;
    }
    await_front(c);
}

static void begin_transaction(struct mta_conn *c);

/* leftover_outcome - recipient i, refused by a recipient limit, waits for
 * the retry after all: a transient failure with the reply it got */
static void leftover_outcome(struct mta_conn *c, int i)
{
    const smtp_status_t *st = &c->msg->rcpt_ext[i].status;
    char note[MTA_NOTE_MAX], status[DSN_STATUS_MAX];
    snprintf(note, sizeof note, "%d %s", st->code, st->text ? st->text : "");
    dsn_status_format(st->enh_class, st->enh_subject, st->enh_detail, status);
    struct rcpt_why why = { st->code, status[0] ? status : NULL, note, NULL };
    queue_rcpt_outcome(c->msg, i, OUTCOME_TRANSIENT, &why);
    c->rc[i] = RC_DECIDED;
}

/* unsent_left - recipients still pending that this attempt has not sent */
static int unsent_left(const struct mta_conn *c)
{
    int n = 0;
    for (int i = 0; i < c->msg->pub.rcpt_count; i++)
        n += c->msg->pub.rcpts[i].state == RCPT_PENDING && c->rc[i] == RC_UNSENT;
    return n;
}

/*
 * end_transaction - the transaction is over: more of the message, or the next
 *
 * Recipients refused by a recipient limit (RFC 5321 4.5.3.1.10: 452, and
 * 552 read as transient) are sent again in a new transaction at once when
 * this one delivered something: each round disposes of at least one
 * recipient, so the rounds end.  Without progress they wait for the retry
 * like any transient failure.  Recipients not sent because of
 * max_recipients_per_transaction go in the next transaction too.  The
 * message stays in flight: its attempt is counted once, for the whole
 * session.  When the session must end (smtp_should_session_shutdown), the
 * rest goes back to the active queue, to go out on a new connection at once
 * (as KumoMTA's max_recipients_per_batch documents).
 */
void sc_end_transaction(struct mta_conn *c)
{
    struct mta_msg *msg = c->msg;
    assert(c->npend == 0);
    for (int i = 0; i < msg->pub.rcpt_count && c->leftovers > 0; i++)
        if (c->rc[i] == RC_LEFTOVER) {
            c->leftovers--;
            if (c->txn_delivered)
                c->rc[i] = RC_UNSENT;
            else
                leftover_outcome(c, i);
        }
    assert(c->leftovers == 0);
    int left = unsent_left(c);
    if (left == 0) {
        sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_PROTOCOL, "no reply for this recipient"));
        if (HOOK_LIVE(smtp_should_session_shutdown)
            && call_core_smtp_should_session_shutdown_hook(sc_dc(c, msg, -1))) {
            sc_send_quit(c);
            return;
        }
        sc_next_transaction(c);
        return;
    }
    int shutdown = HOOK_LIVE(smtp_should_session_shutdown)
                   && call_core_smtp_should_session_shutdown_hook(sc_dc(c, msg, -1));
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", "more_rcpts");
        mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "rcpts", left);
        mta_tb_str(&tb, "on", shutdown ? "new connection" : "this connection");
        mta_tb_emit(&tb);
    }
    if (shutdown) {
        sc_set_msg(c, NULL);
        queue_requeue_now(msg);
        sc_send_quit(c);
        return;
    }
    c->m->stats.transactions++;
    begin_transaction(c);
}

/* begin_transaction - RSET when the connection carried a transaction, then MAIL */
static void begin_transaction(struct mta_conn *c)
{
    c->accepted = 0;
    c->txn_failed = 0;
    c->empty_data = 0;
    c->txn_rcpts = 0;
    c->txn_delivered = 0;
    c->leftovers = 0;
    if (c->rsets++ > 0) {
        if (sc_send_line(c, "RSET", NULL) < 0) {
            sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_BAD_CONNECTION, "connection lost before RSET"));
            sc_conn_close(c);
            return;
        }
        sc_expect(c, SC_RSET);
        return;
    }
    sc_start_transaction(c);
}

/* take_message - the next message for this session, or NULL */
static struct mta_msg *take_message(struct mta_conn *c)
{
    struct mta_domain *d = c->d;
    int slot = c->pub.binding_slot;
    abstract_message *chosen = call_core_mail_queue_get_next_active_hook(&d->pub, slot,
                                                                         sc_handle(c));
    if (chosen != NULL) {
        /* Only a message waiting in this pair's active queue can be taken;
         * anything else (compared, never read) is the provider's mistake. */
        if (queue_active_holds(d, slot, chosen)) {
            struct mta_msg *msg = mta_msg_of_ec(chosen);
            queue_remove_active(msg);
            msg->where = MSG_INFLIGHT;
            return msg;
        }
        mta_plugin_warning("mail_queue_get_next_active",
                           "returned a message that is not in the active queue of %s "
                           "binding %d: ignored, the queue's first message (if any) is taken",
                           d->pub.domain, slot);
    }
    return queue_pop_active(d, slot);
}

/* next_transaction - start the next message, wait idle, or QUIT */
void sc_next_transaction(struct mta_conn *c)
{
    struct mta *m = c->m;
    assert(c->msg == NULL);
    if (m->cfg.max_deliveries_per_connection > 0 &&
        c->transactions >= m->cfg.max_deliveries_per_connection) {
        sc_send_quit(c);
        return;
    }
    mta_usec_t later;
    if (queue_active_count(c->d, c->pub.binding_slot) > 0 &&
        !window_allows(&c->d->msg_window, &m->cfg.throttle_messages, mta_now(m), &later)) {
        maintain_at(c->d, later);
        sc_send_quit(c);
        return;
    }
    struct mta_msg *msg = take_message(c);
    if (msg == NULL) {
        if (m->cfg.idle_timeout > 0)
            sc_expect(c, SC_IDLE);
        else
            sc_send_quit(c);
        return;
    }
    window_note(&c->d->msg_window, &m->cfg.throttle_messages, mta_now(m));
    m->stats.transactions++;
    sc_set_msg(c, msg);
    if ((size_t)msg->pub.rcpt_count > c->rc_cap) {
        free(c->rc);
        c->rc_cap = (size_t)msg->pub.rcpt_count;
        c->rc = malloc(c->rc_cap);
        if (c->rc == NULL)
            mta_panic("next_transaction", "out of memory");
    }
    if (msg->pub.rcpt_count > 0)
        memset(c->rc, RC_UNSENT, (size_t)msg->pub.rcpt_count);
    msg->attempt_mta = c->host;
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
        char a[MTA_IP_TEXT];
        textbuf_str(&tb, mta_ip_format(c->pub.addr, a));
        textbuf_str(&tb, "]");
        struct timeval now = mta_tv(mta_now(m));
        call_core_log_attempt_v1_hook(msg_ec(msg, -1), &c->d->pub, &now, note, (int)tb.len);
    }
    if (c->size_limit > 0 && (long)message_size(&msg->pub) > c->size_limit) {
        char note[MTA_NOTE_MAX];
        snprintf(note, sizeof note, "message size %zu exceeds the remote limit SIZE=%ld",
                 message_size(&msg->pub), c->size_limit);
        sc_fail_in_flight(c, OUTCOME_PERMANENT, WHY(DSN_STATUS_TOO_BIG, note));
        sc_next_transaction(c);
        return;
    }
    c->transactions++;
    begin_transaction(c);
}

/* smtp_conn_wake_idle - idle sessions of (d, slot) take the new mail
 *
 * Walks d's own connections (at most its connection limit), not every
 * connection of the MTA, in the same order as m->conns. */
int smtp_conn_wake_idle(struct mta_domain *d, int slot)
{
    int woken = 0;
    struct mta_conn *c = d->conn_list;
    while (c != NULL && queue_active_count(d, slot) > 0) {
        struct mta_conn *next = c->dnext;
        if (c->pub.binding_slot == slot && c->state == SC_IDLE) {
            sc_deadline_clear(c);
            sc_next_transaction(c);
            woken++;
        }
        c = next;
    }
    return woken;
}


/* outcome_of - how a reply counts for a recipient: by code, or as a provider says
 *
 * A 552 to RCPT is transient unless "config rcpt_552 permanent": RFC 5321
 * 4.5.3.1.10 says clients SHOULD read it as the "too many recipients" 452
 * that RFC 821 misnumbered; Postfix 3.7 bounces it (dsn 5.5.3, observed). */
enum rcpt_outcome sc_outcome_of(struct mta_conn *c, int code, const char *note, int at_rcpt)
{
    if (code >= 200 && code < 400)
        return OUTCOME_DELIVERED;
    switch (call_core_smtp_error_classify_hook(note, c->d->pub.domain)) {
    case SMTP_CLASSIFY_TRANSIENT:
        return OUTCOME_TRANSIENT;
    case SMTP_CLASSIFY_PERMANENT:
        return OUTCOME_PERMANENT;
    default:
        if (at_rcpt && code == 552 && c->m->cfg.rcpt_552 == MTA_552_TRANSIENT)
            return OUTCOME_TRANSIENT;
        return code >= 500 ? OUTCOME_PERMANENT : OUTCOME_TRANSIENT;
    }
}

/* rcpt_refused - the remote refused recipient i with reply r: its outcome,
 * or a leftover for the next transaction when it is a recipient limit
 * (452, or 552 read as transient; RFC 5321 4.5.3.1.10) and leftovers are
 * resent (recipient_limit_leftovers resend, the default; with "defer",
 * Postfix's way, they wait for the retry like any transient failure) */
static void rcpt_refused(struct mta_conn *c, int i, const struct smtp_reply *r, const char *note)
{
    enum rcpt_outcome o = sc_outcome_of(c, r->code, note, 1);
    if (o == OUTCOME_TRANSIENT && (r->code == 452 || r->code == 552) &&
        c->m->cfg.recipient_limit_leftovers == MTA_LEFTOVERS_RESEND) {
        c->rc[i] = RC_LEFTOVER;
        c->leftovers++;
        return;
    }
    char status[DSN_STATUS_MAX];
    struct rcpt_why why = sc_reply_why(r, note, status);
    queue_rcpt_outcome(c->msg, i, o, &why);
    c->rc[i] = RC_DECIDED;
}

/* transaction_reply - a reply to MAIL, RCPT or DATA, oldest first */
void sc_transaction_reply(struct mta_conn *c, const struct smtp_reply *r, const char *note)
{
    int ok = r->code >= 200 && r->code < 300;
    int pipelined = (c->ext & EXT_PIPELINING) != 0;
    struct pending p = pend_pop(c);
    switch (p.kind) {
    case SC_MAIL:
        status_set(c->m, &c->msg->mail_status, r);
        ev_mailstatus(&c->pub, &c->msg->pub);
        if (!ok) {
            enum rcpt_outcome o = sc_outcome_of(c, r->code, note, 0);
            char status[DSN_STATUS_MAX];
            struct rcpt_why why = sc_reply_why(r, note, status);
            for (int i = 0; i < c->msg->pub.rcpt_count; i++)
                if (c->msg->pub.rcpts[i].state == RCPT_PENDING && c->rc[i] != RC_DECIDED) {
                    queue_rcpt_outcome(c->msg, i, o, &why);
                    c->rc[i] = RC_DECIDED;
                }
            c->txn_failed = 1;
            if (!pipelined) {
                sc_end_transaction(c);
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
                rcpt_refused(c, p.rcpt, r, note);
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
                sc_end_transaction(c);
            return;
        }
        break;
    case SC_DATA:
        assert(c->npend == 0);
        if (r->code == 354) {
            if (c->accepted > 0 && !c->txn_failed) {
                if (send_body(c) < 0) {
                    sc_fail_in_flight(c, OUTCOME_TRANSIENT, WHY(DSN_STATUS_BAD_CONNECTION, "connection lost during the data"));
                    sc_conn_close(c);
                }
                return;
            } else {
                /* RFC 2920 3.1: DATA was accepted with nothing to send; end it empty. */
                c->empty_data = 1;
                if (sc_send_line(c, ".", NULL) < 0) {
                    sc_conn_close(c);
                    return;
                }
            }
            sc_expect(c, SC_DOT);
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
            enum rcpt_outcome o = sc_outcome_of(c, r->code, note, 0);
            char status[DSN_STATUS_MAX];
            struct rcpt_why why = sc_reply_why(r, note, status);
            sc_decide_accepted(c, o == OUTCOME_DELIVERED ? OUTCOME_TRANSIENT : o, &why);
        }
        sc_end_transaction(c);
        return;
    default:
        mta_panic("transaction_reply", "unexpected pending reply %s", sc_state_names[p.kind]);
    }
    await_front(c);
}

