/*
 * smtp_client - the outbound SMTP session, as an explicit state machine
 *
 * SYNOPSIS
 *   c = smtp_conn_create(m, d, slot, addr, host);    before the connect
 *   smtp_conn_start(c, fd, finish, timeout, ud);     after it was started
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
 *     RSET     2xx: MAIL -> MAIL          other: QUIT
 *     MAIL     2xx: RCPT -> RCPT          4xx/5xx: message fails, next transaction
 *     RCPT     per recipient: 2xx accepted, 4xx transient, 5xx permanent;
 *              after the last: DATA -> DATA if any was accepted, else next
 *     DATA     354: body, "." -> DOT      4xx/5xx: accepted recipients fail
 *     DOT      2xx: delivered  4xx: transient  5xx: permanent; next transaction
 *     QUIT     any reply or EOF: close
 *
 *   "Next transaction" takes the next message of the pair's active queue
 *   (RSET first when the connection already carried one) or, with none
 *   left or Max_Deliveries_Per_Connection reached, sends QUIT.
 *
 *   At any stage: a 421 reply means the server is closing; EOF, a reset,
 *   a malformed reply or a phase timeout end the session too.  The message
 *   in flight then gets a transient failure for every recipient not yet
 *   decided in this attempt, and goes back to the delayed queue: never
 *   lost.  One case is unavoidable in SMTP (RFC 1047): when the connection
 *   is lost after the final "." but before the reply, the remote may have
 *   accepted the message; it is retried and may arrive twice.  The trace
 *   marks it with note "connection lost after end of data".
 *
 *   Every line sent and received is traced (kind "smtp": send / recv,
 *   conn=FD, line=...); the message body is traced as one "send" record
 *   with its size.  The body goes out with bare LF turned into CRLF and
 *   leading dots doubled (RFC 5321 4.5.2).
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
#include "mta_internal.h"
#include "smtp_reply.h"
#include "trace.h"

#define SMTP_INBUF_MAX (1024 * 1024)    /* more unparsed input is a protocol error */

enum sc_state { SC_CONNECTING, SC_BANNER, SC_EHLO, SC_HELO, SC_RSET, SC_MAIL, SC_RCPT,
                SC_DATA, SC_DOT, SC_QUIT, SC_CLOSED };
static const char *const state_names[] = { "connect", "banner", "EHLO", "HELO", "RSET",
                                           "MAIL", "RCPT", "DATA", "end of data", "QUIT",
                                           "closed" };

/* What this attempt decided for each recipient of the message in flight. */
enum { RC_UNSENT, RC_ACCEPTED, RC_DECIDED };

enum { EXT_PIPELINING = 1, EXT_8BITMIME = 2, EXT_SIZE = 4, EXT_ENHANCEDSTATUSCODES = 8,
       EXT_DSN = 16, EXT_CHUNKING = 32 };

struct mta_conn {
    connection_handle pub;              /* must stay first */
    struct mta *m;
    struct mta_domain *d;
    struct mta_conn *next, *prev;       /* m->conns */
    enum sc_state state;
    int fd_open;                        /* tcp_close not yet called */
    int established;                    /* inc_outbound_connections was called */
    mta_timer_id timer;
    connection_finish_cb finish;
    connection_timeout_cb timeout;
    char *host;
    char *in;
    size_t inlen, incap;
    unsigned ext;
    struct mta_msg *msg;                /* in flight */
    unsigned char *rc;                  /* per recipient: RC_* */
    int rcpt_at;                        /* the recipient whose RCPT reply is awaited */
    int accepted;
    int transactions;                   /* messages started on this connection */
    int in_input;                       /* take_input is on the stack: defer the free */
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
    free(c);
}

static void timer_stop(struct mta_conn *c)
{
    if (c->timer) {
        c->m->env->timer_cancel(c->m->env, c->timer);
        c->timer = 0;
    }
}

static void connect_timed_out(void *arg);

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
    c->timer = m->env->timer_start(m->env, mta_now(m) + m->cfg.connect_timeout,
                                   connect_timed_out, c);
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
    case SC_DOT: return cfg->timeout_dot;
    case SC_QUIT: return cfg->timeout_quit;
    default: return cfg->timeout_quit;
    }
}

static void phase_timed_out(void *arg);

/* expect - wait for the reply of state s, within its timeout */
static void expect(struct mta_conn *c, enum sc_state s)
{
    struct mta *m = c->m;
    c->state = s;
    timer_stop(c);
    c->timer = m->env->timer_start(m->env, mta_now(m) + phase_timeout(&m->cfg, s),
                                   phase_timed_out, c);
}

/* send_line - one command line, CRLF added; returns 0 or -1 if the peer is gone */
static int send_line(struct mta_conn *c, const char *fmt, const char *arg)
{
    char line[1024];
    int n = snprintf(line, sizeof line - 2, fmt, arg);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        mta_panic("send_line", "command too long");
    trace_line(c, "send", line, (size_t)n);
    memcpy(line + n, "\r\n", 2);
    return c->m->env->tcp_write(c->m->env, c->pub.fd, line, (size_t)n + 2);
}

/* send_body - the message, dot-stuffed, CRLF line ends, then "." */
static int send_body(struct mta_conn *c)
{
    const message *msg = &c->msg->pub;
    const char *b = msg->body ? msg->body : "";
    size_t n = msg->body_len;
    /* Worst case: every byte a LF that becomes CRLF, every line a dot. */
    size_t cap = 2 * n + 8;
    char *out = malloc(cap);
    if (out == NULL)
        mta_panic("send_body", "out of memory");
    size_t o = 0;
    int bol = 1;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        if (bol && ch == '.')
            out[o++] = '.';
        if (ch == '\n' && (i == 0 || b[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = ch;
        bol = ch == '\n';
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    o += 3;
    assert(o <= cap);
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "smtp", "send");
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "data_bytes", (int64_t)o);
        mta_tb_emit(&tb);
    }
    int rc = c->m->env->tcp_write(c->m->env, c->pub.fd, out, o);
    free(out);
    return rc;
}

static void send_quit(struct mta_conn *c)
{
    if (send_line(c, "%s", "QUIT") < 0) {
        conn_close(c);
        return;
    }
    expect(c, SC_QUIT);
}

static void send_mail(struct mta_conn *c)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "MAIL FROM:<%s>", c->msg->pub.mail_from);
    if (send_line(c, "%s", cmd) < 0) {
        fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost before MAIL");
        conn_close(c);
        return;
    }
    expect(c, SC_MAIL);
}

/* send_next_rcpt - RCPT for the next recipient still pending, or DATA/next */
static void send_next_rcpt(struct mta_conn *c)
{
    struct mta_msg *msg = c->msg;
    for (int i = c->rcpt_at + 1; i < msg->pub.rcpt_count; i++) {
        if (msg->pub.rcpts[i].state != RCPT_PENDING)
            continue;
        c->rcpt_at = i;
        char cmd[600];
        snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", msg->pub.rcpts[i].address);
        if (send_line(c, "%s", cmd) < 0) {
            fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost during RCPT");
            conn_close(c);
            return;
        }
        expect(c, SC_RCPT);
        return;
    }
    if (c->accepted > 0) {
        if (send_line(c, "%s", "DATA") < 0) {
            fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost before DATA");
            conn_close(c);
            return;
        }
        expect(c, SC_DATA);
        return;
    }
    /* No recipient accepted: the attempt is over without DATA. */
    fail_in_flight(c, OUTCOME_TRANSIENT, 0, "no recipient accepted");
    next_transaction(c);
}

/* next_transaction - start the next message, or QUIT */
static void next_transaction(struct mta_conn *c)
{
    struct mta *m = c->m;
    assert(c->msg == NULL);
    if (m->cfg.max_deliveries_per_connection > 0 &&
        c->transactions >= m->cfg.max_deliveries_per_connection) {
        send_quit(c);
        return;
    }
    struct mta_msg *msg = queue_pop_active(c->d, c->pub.binding_slot);
    if (msg == NULL) {
        send_quit(c);
        return;
    }
    c->msg = msg;
    free(c->rc);
    c->rc = calloc((size_t)msg->pub.rcpt_count, 1);
    if (c->rc == NULL)
        mta_panic("next_transaction", "out of memory");
    c->rcpt_at = -1;
    c->accepted = 0;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", "attempt");
        mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
        mta_tb_str(&tb, "domain", c->d->pub.domain);
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_int(&tb, "attempt", msg->pub.attempts + 1);
        mta_tb_emit(&tb);
    }
    if (c->transactions++ > 0) {
        if (send_line(c, "%s", "RSET") < 0) {
            fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost before RSET");
            conn_close(c);
            return;
        }
        expect(c, SC_RSET);
        return;
    }
    send_mail(c);
}

/* ---- replies ---------------------------------------------------------- */

/* note_of - "CODE text" of a reply, lines joined by spaces */
static void note_of(const struct smtp_reply *r, char *note, size_t size)
{
    /* Cut long replies: a note is for logs, and the full reply is in the trace. */
    snprintf(note, size, "%d %.*s", r->code, (int)(size > 8 ? size - 8 : 0), r->text);
    for (char *p = note; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

static void parse_extensions(struct mta_conn *c, const struct smtp_reply *r)
{
    static const struct { const char *name; unsigned bit; } known[] = {
        { "PIPELINING", EXT_PIPELINING }, { "8BITMIME", EXT_8BITMIME }, { "SIZE", EXT_SIZE },
        { "ENHANCEDSTATUSCODES", EXT_ENHANCEDSTATUSCODES }, { "DSN", EXT_DSN },
        { "CHUNKING", EXT_CHUNKING },
    };
    c->ext = 0;
    const char *line = strchr(r->text, '\n');   /* the first line is the greeting */
    while (line) {
        line++;
        size_t len = strcspn(line, " \n");
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
            if (strlen(known[k].name) == len && strncasecmp(line, known[k].name, len) == 0)
                c->ext |= known[k].bit;
        line = strchr(line, '\n');
    }
}

static enum rcpt_outcome outcome_of(int code)
{
    if (code >= 200 && code < 300)
        return OUTCOME_DELIVERED;
    return code >= 500 ? OUTCOME_PERMANENT : OUTCOME_TRANSIENT;
}

/* handle_reply - one complete reply in the current state */
static void handle_reply(struct mta_conn *c, const struct smtp_reply *r)
{
    char note[MTA_NOTE_MAX];
    note_of(r, note, sizeof note);
    int ok = r->code >= 200 && r->code < 300;
    timer_stop(c);

    if (r->code == 421 && c->state != SC_QUIT) {
        /* The server is shutting the channel (RFC 5321 3.8). */
        set_last_error(c->d, "%s", note);
        if (c->state == SC_BANNER)
            host_failure_mark(c->m, c->pub.addr);
        fail_in_flight(c, OUTCOME_TRANSIENT, r->code, note);
        conn_close(c);
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
        if (send_line(c, "EHLO %s", c->m->bindings[c->pub.binding_slot].ehlo_name) < 0) {
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
            if (send_line(c, "HELO %s", c->m->bindings[c->pub.binding_slot].ehlo_name) < 0) {
                conn_close(c);
                return;
            }
            expect(c, SC_HELO);
            return;
        }
        set_last_error(c->d, "EHLO: %s", note);
        send_quit(c);
        return;
    case SC_HELO:
        if (ok) {
            c->ext = 0;
            next_transaction(c);
            return;
        }
        set_last_error(c->d, "HELO: %s", note);
        send_quit(c);
        return;
    case SC_RSET:
        if (!ok) {
            fail_in_flight(c, OUTCOME_TRANSIENT, r->code, note);
            send_quit(c);
            return;
        }
        send_mail(c);
        return;
    case SC_MAIL:
        if (!ok) {
            fail_in_flight(c, outcome_of(r->code), r->code, note);
            next_transaction(c);
            return;
        }
        send_next_rcpt(c);
        return;
    case SC_RCPT: {
        int i = c->rcpt_at;
        assert(i >= 0 && i < c->msg->pub.rcpt_count);
        if (ok) {
            c->rc[i] = RC_ACCEPTED;
            c->accepted++;
        } else {
            queue_rcpt_outcome(c->msg, i, outcome_of(r->code), r->code, note);
            c->rc[i] = RC_DECIDED;
        }
        send_next_rcpt(c);
        return;
    }
    case SC_DATA:
        if (r->code == 354) {
            if (send_body(c) < 0) {
                fail_in_flight(c, OUTCOME_TRANSIENT, 0, "connection lost during the data");
                conn_close(c);
                return;
            }
            expect(c, SC_DOT);
            return;
        }
        decide_accepted(c, outcome_of(r->code) == OUTCOME_DELIVERED ? OUTCOME_TRANSIENT
                                                                     : outcome_of(r->code),
                        r->code, note);
        fail_in_flight(c, OUTCOME_TRANSIENT, r->code, note);
        next_transaction(c);
        return;
    case SC_DOT:
        decide_accepted(c, outcome_of(r->code), r->code, note);
        fail_in_flight(c, OUTCOME_TRANSIENT, r->code, note);
        next_transaction(c);
        return;
    case SC_QUIT:
        conn_close(c);
        return;
    case SC_CONNECTING:
    case SC_CLOSED:
        break;
    }
    mta_panic("handle_reply", "reply in state %s", state_names[c->state]);
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
        fail_in_flight(c, OUTCOME_TRANSIENT, 0, note);
    }
    conn_close(c);
}

static void take_input(struct mta_conn *c, const char *data, size_t len)
{
    if (c->inlen + len > SMTP_INBUF_MAX) {
        lost(c, "reply too long");
        return;
    }
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
    /* A reply may complete several at once (pipelining) or not at all.  A
     * reply may also close the connection: conn_close then leaves the free
     * to us, so the loop can still look at c->state. */
    c->in_input = 1;
    while (c->state != SC_CLOSED && c->inlen > 0) {
        struct smtp_reply r;
        size_t used = 0;
        char err[160];
        int rc = smtp_reply_parse(c->in, c->inlen, &r, &used, err, sizeof err);
        if (rc == 0)
            break;
        if (rc < 0) {
            char what[240];
            snprintf(what, sizeof what, "malformed reply (%s)", err);
            size_t bad = 0;     /* the offending line, bounded: c->in has no terminator */
            while (bad < c->inlen && c->in[bad] != '\r' && c->in[bad] != '\n')
                bad++;
            trace_line(c, "recv", c->in, bad);
            lost(c, what);
            break;
        }
        /* Trace the reply line by line, as it was on the wire. */
        size_t at = 0;
        while (at < used) {
            size_t eol = at;
            while (eol < used && c->in[eol] != '\n')
                eol++;
            size_t end = eol;
            if (end > at && c->in[end - 1] == '\r')
                end--;
            trace_line(c, "recv", c->in + at, end - at);
            at = eol + 1;
        }
        memmove(c->in, c->in + used, c->inlen - used);
        c->inlen -= used;
        if (c->state == SC_CONNECTING || c->state == SC_CLOSED)
            break;
        handle_reply(c, &r);
    }
    c->in_input = 0;
    if (c->state == SC_CLOSED)
        smtp_conn_destroy(c);
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
        timer_stop(c);
        c->finish(&c->pub, 0, c->pub.user_data);
        return;
    case MTA_TCP_CONNECT_FAILED:
        assert(c->state == SC_CONNECTING);
        timer_stop(c);
        c->finish(&c->pub, err == ECONNREFUSED ? CONN_ERR_CONNECT : CONN_ERR_CONNECT_NETWORK,
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
        lost(c, "connection reset by the remote");
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
    conn_close(c);
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
    m->stats.connections_established++;
    call_core_log_client_connection_success_hook(c->pub.addr, &c->d->pub,
                                                 c->pub.binding_slot, &now);
    c->established = 1;
    m->stats.inc_outbound++;
    call_core_inc_outbound_connections_hook(&c->pub);
    expect(c, SC_BANNER);
}

/* smtp_client_timeout_cb - the connect did not complete in time */
void smtp_client_timeout_cb(connection_handle *ch, void *user_data)
{
    (void)user_data;
    connect_failed((struct mta_conn *)ch, CONN_ERR_CONNECT_TIMEOUT, "connection timed out");
}

static void connect_timed_out(void *arg)
{
    struct mta_conn *c = arg;
    c->timer = 0;
    assert(c->state == SC_CONNECTING);
    c->timeout(&c->pub, c->pub.user_data);
}

static void phase_timed_out(void *arg)
{
    struct mta_conn *c = arg;
    c->timer = 0;
    char what[128];
    snprintf(what, sizeof what, "timeout waiting for the %s reply", state_names[c->state]);
    if (c->state == SC_QUIT) {
        conn_close(c);
        return;
    }
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
    if (c->established) {
        m->stats.dec_outbound++;
        call_core_dec_outbound_connections_hook(&c->pub);
    }
    c->state = SC_CLOSED;
    m->env->tcp_close(m->env, c->pub.fd);
    c->fd_open = 0;
    m->stats.connections_closed++;
    assert(d->conns[c->pub.binding_slot] > 0 && d->conns_total > 0);
    d->conns[c->pub.binding_slot]--;
    d->conns_total--;
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
