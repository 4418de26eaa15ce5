/*
 * smtp_server - the inbound SMTP server, as an explicit state machine
 *
 * SYNOPSIS
 *   mta_listen(m, addr, 25, &opts);          listen through env->tcp_listen
 *   mta_add_user(m, "alice", "secret");      what AUTH accepts by itself
 *   mta_on_inbound_message(m, fn, arg);      see each accepted message
 *   ... the environment's event loop runs; clients connect ...
 *   mta_shutdown(m) -> smtp_server_shutdown   sessions and listener closed
 *   mta_destroy(m)  -> smtp_server_free
 *
 * DESCRIPTION
 *   One session per accepted connection (cf. OpenSMTPD's smtp_session.c).
 *   States and what moves them (RFC 5321 4.1, 3.1; RFC 3207; RFC 4954):
 *
 *     CONNECT   inc_inbound_connections, validate_connect, the
 *               mq_smtp_in_connect chain; then the banner: 220 -> COMMAND,
 *               554 5.7.1 (refused by a provider, or a plugin's own 4xx/5xx
 *               banner) -> REFUSED
 *     COMMAND   EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT;
 *               DATA 354 -> DATA; AUTH without an initial response -> AUTH
 *     REFUSED   QUIT 221 and close; anything else 503 5.5.1
 *     DATA      lines up to "." (dot-unstuffed) -> the end of data -> COMMAND
 *     AUTH      the 334 continuation lines of AUTH PLAIN / LOGIN -> COMMAND
 *     CLOSED    the descriptor is closed; mq_smtp_in_close runs, then free
 *
 *   Sequence rules (503 5.5.1): MAIL needs EHLO/HELO first (again after
 *   STARTTLS, RFC 3207 4.2), no nested MAIL, RCPT needs MAIL, DATA needs
 *   an accepted RCPT (554 5.5.1 otherwise), AUTH needs EHLO and no
 *   transaction, at most once per session; STARTTLS once.  EHLO, HELO,
 *   RSET, STARTTLS and the end of data end the transaction.
 *
 *   Addresses: what the queue could not take (mta_address_check) is
 *   refused at its command - a sender other than <> with an '@' but no
 *   local part or domain, 501 5.1.7; a recipient without either, 501
 *   5.1.3; either over RFC 5321 4.5.3.1's limits, likewise.
 *
 *   STARTTLS is simulated: after "220 2.0.0 Ready to start TLS" the
 *   session is secure, no byte changes.  The server forgets the EHLO and
 *   the authentication, and discards input that arrived with the
 *   STARTTLS command (RFC 3207 5, the command injection attack).
 *
 *   AUTH PLAIN and LOGIN (smtp_server_auth.c; what the server's files
 *   share is smtp_server_int.h): the user table (mta_add_user) decides first;
 *   then mq_smtp_in_authenticate may grant or revoke with
 *   MQ_SetSmtpAuthenticated; then a validate_auth provider may refuse.
 *   (MailerQ 3.0: MQ_SmtpAuthenticated "will initially always return
 *   false" for the first plugin; mtasim's user table is its own addition
 *   and decides first: docs/inbound.md.)
 *   235 2.7.0 or 535 5.7.8.
 *
 *   Plugins.  Before the reply to EHLO-less events the matching MailerQ
 *   chain runs: connect (before the banner), secure (after the 220 to
 *   STARTTLS), authenticate, mailfrom, rcptto, data (at the end of data,
 *   with the MIME), message (once per recipient), close.  While a plugin
 *   holds a chain the session is busy: input waits, the reply is delayed
 *   and the command timeout does not run.  A reply a plugin sent with
 *   MQ_SmtpSend while the chain ran replaces the server's own; a 4xx or
 *   5xx one refuses the command.
 *
 *   The end of data: beyond max_size 552 5.3.4; then the data chain, the
 *   final_validation2 hook (EC_HOOK_DONE refuses with 550 5.7.1 or the
 *   provider's 5xx code, EC_HOOK_RETRY with 451 4.7.1 or its 4xx code),
 *   then final_validation (a 4xx/5xx code set in the validate_context
 *   refuses with it: validate.c), the message chain per recipient; then the message is
 *   queued with mta_inject() as id 1000 + n (n counts accepted messages
 *   from 1, in acceptance order) through the default binding, and
 *   answered "250 2.0.0 Ok: queued as ID".
 *
 *   Limits: a command line longer than 512 bytes (RFC 5321 4.5.3.1.4)
 *   gets 500 5.5.2 and is skipped; max_recipients (452 4.5.3); max_size
 *   (SIZE= in MAIL and the data; 552 5.3.4); max_errors client errors
 *   (4xx/5xx answers to the client's mistakes) end the session with 421
 *   4.7.0; timeout without a command ends it with 421 4.4.2; more than
 *   SRV_INBUF_MAX bytes of unprocessed input (pipelining into a busy
 *   session) with 421 4.7.0.
 *
 *   Trace (kind "inbound"): connect conn= client= port=; command conn=
 *   line=; reply conn= line= [plugin=]; data conn= bytes=; secure conn=;
 *   auth conn= user= result=accepted|refused; message conn= msg= from=
 *   rcpts= size=; discarded conn= bytes=; close conn= reason=
 *   quit|eof|reset|timeout|errors|overflow|shutdown|refused|plugin.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "hooks/core/dec_inbound_connections.h"
#include "hooks/core/final_validation.h"
#include "hooks/core/final_validation2.h"
#include "hooks/core/inc_inbound_connections.h"
#include "hooks/core/validate_auth.h"
#include "hooks/core/validate_connect.h"
#include "mq.h"
#include "mta_internal.h"
#include "outq.h"
#include "smtp_server.h"
#include "trace.h"

#include "smtp_server_int.h"

/* The conntype the inbound hooks get (Momentum 3: "e.g. SMTP"). */
static char conntype_smtp[] = "SMTP";

static void process(struct srv_session *s);
static void session_close(struct srv_session *s, const char *reason);
static void session_free(struct srv_session *s);

/* ---- the server object ------------------------------------------------- */

/* server_get - the core's server, created on first use */
static struct smtp_server *server_get(struct mta *m)
{
    if (m->inbound == NULL) {
        struct smtp_server *srv = calloc(1, sizeof *srv);
        if (srv == NULL)
            mta_panic("server_get", "out of memory");
        srv->m = m;
        srv->listen_fd = -1;
        m->inbound = srv;
    }
    return m->inbound;
}

char *srv_strdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (p == NULL)
        mta_panic("smtp_server", "out of memory");
    return p;
}

char *srv_strndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (p == NULL)
        mta_panic("smtp_server", "out of memory");
    return p;
}

/* mta_add_user - a user AUTH accepts */
int mta_add_user(struct mta *m, const char *name, const char *password)
{
    struct smtp_server *srv = server_get(m);
    if (srv->nusers >= SRV_MAX_USERS)
        return -1;
    srv->users[srv->nusers].name = srv_strdup(name);
    srv->users[srv->nusers].password = srv_strdup(password);
    srv->nusers++;
    return 0;
}

void mta_on_inbound_message(struct mta *m, mta_inbound_fn fn, void *arg)
{
    struct smtp_server *srv = server_get(m);
    srv->observer = fn;
    srv->observer_arg = arg;
}

const char *mta_plugin_fault(const struct mta *m, mta_usec_t *at)
{
    (void)m;
    return mq_fault(at);
}

/* server_name - the name in the banner and EHLO: the default binding's */
static const char *server_name(const struct smtp_server *srv)
{
    return srv->m->binding_ehlo[0];
}

/* ---- tracing ------------------------------------------------------------- */

/* trace_line - "inbound command|reply conn= line=" */
static void trace_line(const struct srv_session *s, const char *what, const char *line,
                       size_t len, const char *plugin)
{
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "inbound", what);
    mta_tb_int(&tb, "conn", s->fd);
    mta_tb_strn(&tb, "line", line, len);
    if (plugin)
        mta_tb_str(&tb, "plugin", plugin);
    mta_tb_emit(&tb);
}

/* trace_simple - "inbound NAME conn=" with one optional extra field */
static void trace_simple(const struct srv_session *s, const char *name, const char *key,
                         const char *str, int64_t num, int is_num)
{
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "inbound", name);
    mta_tb_int(&tb, "conn", s->fd);
    if (key && is_num)
        mta_tb_int(&tb, key, num);
    else if (key)
        mta_tb_str(&tb, key, str);
    mta_tb_emit(&tb);
}

/* ---- output -------------------------------------------------------------- */

/* session_put - the socket write replies go through (outq.h) */
static int session_put(void *arg, const void *buf, size_t len)
{
    const struct srv_session *s = arg;
    return s->srv->m->env->tcp_write(s->srv->m->env, s->fd, buf, len);
}

/* write_traced - bytes to the client, each complete line traced */
static void write_traced(struct srv_session *s, const char *buf, size_t len, const char *plugin)
{
    size_t at = 0;
    while (at < len) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) : len;
        size_t n = end - at;
        if (n > 0 && buf[at + n - 1] == '\r')
            n--;
        trace_line(s, "reply", buf + at, n, plugin);
        at = nl ? end + 1 : len;
    }
    /* -EPIPE: the client is gone (its EOF or reset ends the session);
     * -ENOBUFS: a client that reads no replies gets no more of them. */
    (void)outq_write(&s->out, buf, len, session_put, s);
}

/* srv_reply - one reply line, CRLF added */
void srv_reply(struct srv_session *s, const char *fmt, ...)
{
    char line[SRV_REPLY_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        mta_panic("reply", "formatting failed");
    if ((size_t)n > sizeof line - 3)
        n = (int)(sizeof line - 3);
    memcpy(line + n, "\r\n", 2);
    write_traced(s, line, (size_t)n + 2, NULL);
}

/* plugin_send - MQ_SmtpSend: a plugin writes to the client; a reply code at
 * the start of a line is remembered (it replaces the server's reply) */
static long plugin_send(void *owner, const char *plugin, const char *buf, size_t len)
{
    struct srv_session *s = owner;
    if (s->state == SS_CLOSED)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s->plugin_bol && i + 3 <= len && isdigit((unsigned char)buf[i]) &&
            isdigit((unsigned char)buf[i + 1]) && isdigit((unsigned char)buf[i + 2]))
            s->plugin_code = (buf[i] - '0') * 100 + (buf[i + 1] - '0') * 10 + (buf[i + 2] - '0');
        s->plugin_bol = buf[i] == '\n';
    }
    write_traced(s, buf, len, plugin);
    return (long)len;
}

/* ---- timers -------------------------------------------------------------- */

static void timed_out(void *arg);

static void timer_stop(struct srv_session *s)
{
    if (s->timer) {
        s->srv->m->env->timer_cancel(s->srv->m->env, s->timer);
        s->timer = 0;
    }
}

/* timer_restart - the client has opts.timeout for its next command */
static void timer_restart(struct srv_session *s)
{
    struct mta *m = s->srv->m;
    timer_stop(s);
    s->timer = m->env->timer_start(m->env, mta_now(m) + s->srv->opts.timeout, timed_out, s);
}

static void timed_out(void *arg)
{
    struct srv_session *s = arg;
    s->timer = 0;
    assert(!s->busy && s->state != SS_CLOSED);
    srv_reply(s, "421 4.4.2 %s Error: timeout exceeded", server_name(s->srv));
    session_close(s, "timeout");
}

/* ---- plugin chains ----------------------------------------------------- */

static void chain_done(void *arg, struct mq_call *call);

/* srv_run_chain - the MailerQ chain of cb, then after(s); the session is busy
 * meanwhile.  Without a plugin exporting cb, after(s) runs at once. */
void srv_run_chain(struct srv_session *s, enum mq_cb cb, after_fn after)
{
    assert(!s->busy);
    s->plugin_code = 0;
    s->plugin_bol = 1;
    if (!mq_has(cb)) {
        after(s);
        return;
    }
    s->busy = 1;
    s->after = after;
    timer_stop(s);
    s->call.cb = cb;
    s->call.fd = s->fd;
    s->call.conn = &s->conn;
    s->call.msg = &s->msg;
    mq_run(&s->call, chain_done, s);
}

/* chain_done - the plugins gave control back: go on where the session was */
static void chain_done(void *arg, struct mq_call *call)
{
    struct srv_session *s = arg;
    (void)call;
    assert(s->busy);
    s->busy = 0;
    if (s->closing_chain) {
        s->closing_chain = 0;
        session_free(s);
        return;
    }
    if (s->state == SS_CLOSED) {
        /* The client left while a plugin held the session: close now. */
        session_close(s, NULL);
        return;
    }
    /* Called from a plugin's continuation (outer) or from inside mq_run
     * under process(): only the outer frame may free the session. */
    int outer = !s->in_process;
    s->in_process = 1;
    s->after(s);
    if (!outer) {
        if (s->state != SS_CLOSED && !s->busy)
            timer_restart(s);
        return;
    }
    s->in_process = 0;
    if (s->closing_chain == -1) {
        s->closing_chain = 0;
        session_free(s);
        return;
    }
    if (s->state != SS_CLOSED && !s->busy) {
        timer_restart(s);
        process(s);
    }
}

/* plugin_refused - a plugin answered the command with 4xx or 5xx */
static int plugin_refused(const struct srv_session *s)
{
    return s->plugin_code >= 400;
}

/* ---- errors and the transaction ---------------------------------------- */

/* srv_client_error - count a client mistake (its reply went out); too many end it */
void srv_client_error(struct srv_session *s)
{
    if (++s->errors >= s->srv->opts.max_errors) {
        srv_reply(s, "421 4.7.0 %s Error: too many errors", server_name(s->srv));
        session_close(s, "errors");
    }
}

/* reset_transaction - forget MAIL, RCPT and data */
static void reset_transaction(struct srv_session *s)
{
    s->has_mail = 0;
    free(s->mail_from);
    s->mail_from = NULL;
    for (int i = 0; i < s->nrcpts; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    s->rcpts = NULL;
    s->nrcpts = 0;
    free(s->data);
    s->data = NULL;
    s->data_len = s->data_cap = s->data_total = 0;
    mq_message_release(&s->msg);
    memset(&s->msg, 0, sizeof s->msg);
    vs_message_reset(&s->v);
}

/* ---- the session's life ------------------------------------------------ */

static void tcp_event(void *arg, int fd, enum mta_tcp_event ev, const char *data, size_t len,
                      int err);
static void after_connect(struct srv_session *s);

/* srv_accept - a client connected: the session starts */
static void srv_accept(void *arg, int fd, uint32_t peer, uint16_t peer_port, mta_tcp_cb *cb,
                       void **cb_arg)
{
    struct smtp_server *srv = arg;
    if (srv->nsessions >= SRV_MAX_SESSIONS)
        mta_panic("srv_accept", "more than %d inbound sessions", SRV_MAX_SESSIONS);
    struct srv_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        mta_panic("srv_accept", "out of memory");
    s->srv = srv;
    s->fd = fd;
    outq_init(&s->out, SRV_OUT_MAX);
    s->peer = peer;
    s->peer_port = peer_port;
    s->state = SS_CONNECT;
    s->conn.fd = fd;
    s->conn.inbound = 1;
    s->conn.send = plugin_send;
    s->conn.owner = s;
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    *cb = tcp_event;
    *cb_arg = s;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "inbound", "connect");
        mta_tb_int(&tb, "conn", fd);
        mta_tb_ipv4(&tb, "client", peer);
        mta_tb_int(&tb, "port", peer_port);
        mta_tb_emit(&tb);
    }
    vs_init(&s->v, fd, peer, peer_port, mta_now(srv->m));
    call_core_inc_inbound_connections_hook(conntype_smtp, fd, &s->v.ac);
    call_core_validate_connect_hook(&s->v.ac, &s->v.vc);
    char dflt[SRV_REPLY_MAX];
    snprintf(dflt, sizeof dflt, "5.7.1 %s Error: connection refused", server_name(srv));
    s->refused = vs_refusal(&s->v, dflt, s->refusal, sizeof s->refusal) != 0;
    /* The banner may close the session (a plugin's 421): free it only here. */
    s->in_process = 1;
    srv_run_chain(s, MQ_CB_CONNECT, after_connect);
    s->in_process = 0;
    if (s->closing_chain == -1) {
        s->closing_chain = 0;
        session_free(s);
        return;
    }
    if (s->state != SS_CLOSED && !s->busy)
        timer_restart(s);
}

/* after_connect - the banner: a plugin's, the refusal, or 220 */
static void after_connect(struct srv_session *s)
{
    const char *name = server_name(s->srv);
    if (s->plugin_code) {
        if (s->plugin_code == 421) {
            session_close(s, "plugin");
            return;
        }
        s->state = s->plugin_code < 400 ? SS_COMMAND : SS_REFUSED;
        return;
    }
    if (s->refused) {
        srv_reply(s, "%s", s->refusal);
        s->state = SS_REFUSED;
        if (s->v.vc.disconnect)
            session_close(s, "refused");
        return;
    }
    srv_reply(s, "220 %s ESMTP mtasim", name);
    s->state = SS_COMMAND;
}

static void after_close(struct srv_session *s)
{
    (void)s;
}

/* smtp_server_has_fd - fd is an open inbound session's */
int smtp_server_has_fd(struct mta *m, int fd)
{
    if (m->inbound == NULL)
        return 0;
    for (const struct srv_session *s = m->inbound->sessions; s != NULL; s = s->next)
        if (s->state != SS_CLOSED && s->fd == fd)
            return 1;
    return 0;
}

/* session_close - the end of a session: the descriptor now, the plugins'
 * close chain next, the memory when that is over.  reason NULL: the
 * reason recorded when the close was first asked for. */
static void session_close(struct srv_session *s, const char *reason)
{
    struct mta *m = s->srv->m;
    if (s->state != SS_CLOSED) {
        s->close_reason = reason ? reason : "shutdown";
        timer_stop(s);
        trace_simple(s, "close", "reason", s->close_reason, 0, 0);
        call_core_dec_inbound_connections_hook(conntype_smtp, s->fd, &s->v.ac);
        m->env->tcp_close(m->env, s->fd);
        s->conn.fd = -1;
        s->state = SS_CLOSED;
    }
    if (s->busy)
        return;             /* chain_done comes back here when the plugin is done */
    if (mq_has(MQ_CB_CLOSE)) {
        s->closing_chain = 1;
        s->plugin_code = 0;
        srv_run_chain(s, MQ_CB_CLOSE, after_close);
        return;
    }
    session_free(s);
}

/* session_free - unlink and free, or leave it to process() on the stack */
static void session_free(struct srv_session *s)
{
    assert(s->state == SS_CLOSED && !s->busy);
    if (s->in_process) {
        s->closing_chain = -1;      /* process() frees it when it unwinds */
        return;
    }
    struct smtp_server *srv = s->srv;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
    reset_transaction(s);
    vs_free(&s->v);
    free(s->login);
    free(s->password);
    free(s->in);
    outq_free(&s->out);
    free(s);
}

/* ---- commands ------------------------------------------------------------ */

/* verb_is - the line starts with verb (any case), then the end or a blank */
static int verb_is(const char *line, size_t len, const char *verb)
{
    size_t n = strlen(verb);
    return len >= n && strncasecmp(line, verb, n) == 0 && (len == n || line[n] == ' ');
}

/* arg_of - what follows the verb and one or more blanks ("" if nothing) */
static const char *arg_of(const char *line, size_t verb_len)
{
    const char *a = line + verb_len;
    while (*a == ' ')
        a++;
    return a;
}

/* parse_path - "<addr>" at p's start, addr into out; rest after it; 0: bad */
static int parse_path(const char *p, char **out, const char **rest)
{
    while (*p == ' ')
        p++;
    if (*p != '<')
        return 0;
    const char *close = strchr(p, '>');
    if (close == NULL)
        return 0;
    for (const char *q = p + 1; q < close; q++)
        if ((unsigned char)*q <= ' ' || *q == '<')
            return 0;
    *out = srv_strndup(p + 1, (size_t)(close - p - 1));
    *rest = close + 1;
    return 1;
}

static void cmd_ehlo(struct srv_session *s, const char *arg, int extended)
{
    struct smtp_server *srv = s->srv;
    if (*arg == '\0') {
        srv_reply(s, "501 5.5.4 Syntax: %s hostname", extended ? "EHLO" : "HELO");
        srv_client_error(s);
        return;
    }
    reset_transaction(s);
    s->helo = extended ? 2 : 1;
    if (!extended) {
        srv_reply(s, "250 %s", server_name(srv));
        return;
    }
    const char *ext[8];
    char size[32];
    int n = 0;
    snprintf(size, sizeof size, "SIZE %ld", srv->opts.max_size);
    ext[n++] = "PIPELINING";
    ext[n++] = size;
    ext[n++] = "8BITMIME";
    ext[n++] = "ENHANCEDSTATUSCODES";
    if (!s->conn.secure)
        ext[n++] = "STARTTLS";
    if (!s->auth_done)
        ext[n++] = "AUTH PLAIN LOGIN";
    char out[SRV_REPLY_MAX];
    size_t len = (size_t)snprintf(out, sizeof out, "250-%s\r\n", server_name(srv));
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, sizeof out - len, "250%c%s\r\n",
                                i == n - 1 ? ' ' : '-', ext[i]);
    assert(len < sizeof out);
    write_traced(s, out, len, NULL);
}

static void after_secure(struct srv_session *s)
{
    (void)s;
}

/* went_secure - TLS is up: MQ_SmtpSecure and the mq_smtp_in_secure chain */
static void went_secure(struct srv_session *s)
{
    s->tls_handshake = 0;
    s->conn.secure = 1;
    trace_simple(s, "secure", NULL, NULL, 0, 0);
    srv_run_chain(s, MQ_CB_SECURE, after_secure);
}

static void cmd_starttls(struct srv_session *s, const char *arg)
{
    if (*arg != '\0') {
        srv_reply(s, "501 5.5.4 Syntax: STARTTLS");
        srv_client_error(s);
    } else if (s->conn.secure) {
        srv_reply(s, "554 5.5.1 Error: TLS already active");
        srv_client_error(s);
    } else if (s->helo != 2) {
        srv_reply(s, "503 5.5.1 Error: send EHLO first");
        srv_client_error(s);
    } else {
        srv_reply(s, "220 2.0.0 Ready to start TLS");
        /* RFC 3207 5: what the client pipelined after STARTTLS came in the
         * clear and must not be taken as sent over TLS. */
        if (s->inlen > s->in_at) {
            trace_simple(s, "discarded", "bytes", NULL, (int64_t)(s->inlen - s->in_at), 1);
            s->inlen = s->in_at;
        }
        s->helo = 0;
        s->auth_done = 0;
        s->conn.authenticated = 0;
        reset_transaction(s);
        /* The handshake where the environment has server TLS (docs/tls.md):
         * secure once it completes, never if it fails; else secure at once. */
        struct mta_env *env = s->srv->m->env;
        if (env->tls_start != NULL && outq_len(&s->out) == 0 &&
            env->tls_start(env, s->fd, 1, server_name(s->srv)) == 0) {
            s->tls_handshake = 1;
            return;
        }
        went_secure(s);
    }
}

static void after_mailfrom(struct srv_session *s)
{
    if (plugin_refused(s)) {
        reset_transaction(s);
        return;
    }
    if (!s->plugin_code)
        srv_reply(s, "250 2.1.0 Ok");
}

static void cmd_mail(struct srv_session *s, const char *arg)
{
    struct smtp_server *srv = s->srv;
    char *addr = NULL;
    const char *rest = NULL;
    if (s->helo == 0) {
        srv_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        srv_client_error(s);
        return;
    }
    if (s->has_mail) {
        srv_reply(s, "503 5.5.1 Error: nested MAIL command");
        srv_client_error(s);
        return;
    }
    if (strncasecmp(arg, "FROM:", 5) != 0 || !parse_path(arg + 5, &addr, &rest)) {
        srv_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        srv_client_error(s);
        return;
    }
    /* RFC 5321 4.1.2: a reverse-path is <> or a Mailbox, Local-part "@"
     * Domain; 4.5.3.1: "501 Path too long".  What the queue could not take
     * (mta_address_check) is refused here, not after the data: "<@b.test>"
     * used to be queued, and its bounce ended the run in an internal error. */
    if (addr[0] != '\0' && mta_address_check(addr, strchr(addr, '@') != NULL) != NULL) {
        free(addr);
        srv_reply(s, "501 5.1.7 Error: bad sender address syntax");
        srv_client_error(s);
        return;
    }
    if (srv->opts.require_auth && !s->conn.authenticated) {
        free(addr);
        srv_reply(s, "530 5.7.0 Authentication required");
        srv_client_error(s);
        return;
    }
    /* ESMTP parameters: SIZE (RFC 1870), BODY (RFC 6152); others are refused. */
    while (*rest == ' ')
        rest++;
    while (*rest) {
        size_t n = strcspn(rest, " ");
        if (n > 5 && strncasecmp(rest, "SIZE=", 5) == 0) {
            long size = strtol(rest + 5, NULL, 10);
            if (size > srv->opts.max_size) {
                free(addr);
                srv_reply(s, "552 5.3.4 Error: message size exceeds fixed limit");
                return;
            }
        } else if (!(n > 5 && strncasecmp(rest, "BODY=", 5) == 0)) {
            free(addr);
            srv_reply(s, "555 5.5.4 Error: unsupported MAIL parameter %.*s", (int)(n < 64 ? n : 64),
                  rest);
            srv_client_error(s);
            return;
        }
        rest += n;
        while (*rest == ' ')
            rest++;
    }
    s->has_mail = 1;
    s->mail_from = addr;
    s->call.str = s->mail_from;
    s->call.len = strlen(addr);
    srv_run_chain(s, MQ_CB_MAILFROM, after_mailfrom);
}

static void after_rcptto(struct srv_session *s)
{
    if (plugin_refused(s)) {
        free(s->rcpts[--s->nrcpts]);
        return;
    }
    if (!s->plugin_code)
        srv_reply(s, "250 2.1.5 Ok");
}

static void cmd_rcpt(struct srv_session *s, const char *arg)
{
    char *addr = NULL;
    const char *rest = NULL;
    if (!s->has_mail) {
        srv_reply(s, "503 5.5.1 Error: need MAIL command");
        srv_client_error(s);
        return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0 || !parse_path(arg + 3, &addr, &rest)) {
        srv_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        srv_client_error(s);
        return;
    }
    while (*rest == ' ')
        rest++;
    if (*rest) {
        free(addr);
        srv_reply(s, "555 5.5.4 Error: unsupported RCPT parameter %.*s", 64, rest);
        srv_client_error(s);
        return;
    }
    const char *at = strrchr(addr, '@');
    if (at == NULL || strlen(at + 1) >= MTA_DNS_NAME_MAX || mta_address_check(addr, 1) != NULL) {
        free(addr);
        srv_reply(s, "501 5.1.3 Error: bad recipient address syntax");
        srv_client_error(s);
        return;
    }
    if (s->nrcpts >= s->srv->opts.max_recipients) {
        free(addr);
        srv_reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    char **r = realloc(s->rcpts, (size_t)(s->nrcpts + 1) * sizeof *r);
    if (r == NULL)
        mta_panic("cmd_rcpt", "out of memory");
    s->rcpts = r;
    s->rcpts[s->nrcpts++] = addr;
    s->call.str = addr;
    s->call.len = strlen(addr);
    srv_run_chain(s, MQ_CB_RCPTTO, after_rcptto);
}

static void cmd_data(struct srv_session *s, const char *arg)
{
    if (!s->has_mail) {
        srv_reply(s, "503 5.5.1 Error: need MAIL command");
        srv_client_error(s);
    } else if (s->nrcpts == 0) {
        srv_reply(s, "554 5.5.1 Error: no valid recipients");
        srv_client_error(s);
    } else if (*arg != '\0') {
        srv_reply(s, "501 5.5.4 Syntax: DATA");
        srv_client_error(s);
    } else {
        srv_reply(s, "354 End data with <CR><LF>.<CR><LF>");
        s->state = SS_DATA;
        s->data_midline = 0;
    }
}

/* command - one complete command line (no CRLF) in state COMMAND or REFUSED */
static void command(struct srv_session *s, char *line, size_t len)
{
    static const char *const unimplemented[] = { "VRFY", "EXPN", "HELP", "ETRN", "TURN",
                                                 "BDAT", "ATRN" };
    trace_line(s, "command", line, len, NULL);
    if (s->state == SS_AUTH_PLAIN || s->state == SS_AUTH_LOGIN_USER ||
        s->state == SS_AUTH_LOGIN_PASS) {
        srv_auth_continuation(s, line);
        return;
    }
    if (verb_is(line, len, "QUIT")) {
        srv_reply(s, "221 2.0.0 Bye");
        session_close(s, "quit");
        return;
    }
    if (s->state == SS_REFUSED) {
        srv_reply(s, "503 5.5.1 Error: no service here, only QUIT");
        srv_client_error(s);
        return;
    }
    if (verb_is(line, len, "EHLO"))
        cmd_ehlo(s, arg_of(line, 4), 1);
    else if (verb_is(line, len, "HELO"))
        cmd_ehlo(s, arg_of(line, 4), 0);
    else if (verb_is(line, len, "STARTTLS"))
        cmd_starttls(s, arg_of(line, 8));
    else if (verb_is(line, len, "AUTH"))
        srv_cmd_auth(s, arg_of(line, 4));
    else if (verb_is(line, len, "MAIL"))
        cmd_mail(s, arg_of(line, 4));
    else if (verb_is(line, len, "RCPT"))
        cmd_rcpt(s, arg_of(line, 4));
    else if (verb_is(line, len, "DATA"))
        cmd_data(s, arg_of(line, 4));
    else if (verb_is(line, len, "RSET")) {
        reset_transaction(s);
        srv_reply(s, "250 2.0.0 Ok");
    } else if (verb_is(line, len, "NOOP"))
        srv_reply(s, "250 2.0.0 Ok");
    else {
        for (size_t i = 0; i < sizeof unimplemented / sizeof unimplemented[0]; i++)
            if (verb_is(line, len, unimplemented[i])) {
                srv_reply(s, "502 5.5.1 Error: command not implemented");
                srv_client_error(s);
                return;
            }
        srv_reply(s, "500 5.5.2 Error: command not recognized");
        srv_client_error(s);
    }
}

/* ---- the end of data ----------------------------------------------------- */

static void after_data_chain(struct srv_session *s);
static void after_message_chain(struct srv_session *s);

/* buf_reserve - room for need bytes in *buf (capacity *cap), doubling;
 * the callers bound need (max_size, SRV_INBUF_MAX) */
static void buf_reserve(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (b == NULL)
        mta_panic("buf_reserve", "out of memory");
    *buf = b;
    *cap = c;
}

/* data_append - message bytes, bounded by max_size (the rest is counted) */
static void data_append(struct srv_session *s, const char *p, size_t n)
{
    s->data_total += n;
    if (s->data_total > (size_t)s->srv->opts.max_size)
        return;
    buf_reserve(&s->data, &s->data_cap, s->data_len + n + 1);
    memcpy(s->data + s->data_len, p, n);
    s->data_len += n;
    s->data[s->data_len] = '\0';
}

/* end_of_data - the "." arrived */
static void end_of_data(struct srv_session *s)
{
    s->state = SS_COMMAND;
    trace_simple(s, "data", "bytes", NULL, (int64_t)s->data_total, 1);
    if (s->data_total > (size_t)s->srv->opts.max_size) {
        reset_transaction(s);
        srv_reply(s, "552 5.3.4 Error: message size exceeds fixed limit");
        return;
    }
    s->msg.envelope = s->mail_from;
    s->msg.mime = s->data ? s->data : "";
    s->msg.mime_len = s->data_len;
    s->reply_final = 0;
    s->call.str = s->msg.mime;
    s->call.len = s->msg.mime_len;
    srv_run_chain(s, MQ_CB_DATA, after_data_chain);
}

/* final_validation - final_validation2, then final_validation (Momentum 3:
 * the int variant first; when it refuses, the void one does not run).
 * 1 with the refusal in reply, or 0 when the message may be queued.
 * The message is not queued yet: its ec_message is one of the moment,
 * from the session (sender, first recipient, size). */
static int final_validation(struct srv_session *s, char *reply_text, size_t size)
{
    ec_message ec;
    memset(&ec, 0, sizeof ec);
    ec.creation_time = mta_tv(mta_now(s->srv->m));
    ec.type = EM_EMAIL_MESSAGE;
    ec.version = 3;
    ec._from = s->mail_from;
    ec._rcpt = s->nrcpts > 0 ? s->rcpts[0] : NULL;
    ec._size = s->msg.mime_len;
    validate_context_set(&s->v.vc, VCTX_MESS, "mailfrom", s->mail_from ? s->mail_from : "");
    s->v.vc.code = 0;
    s->v.vc.note = NULL;
    int rc = call_core_final_validation2_hook(&ec, &s->v.ac, &s->v.vc);
    if (rc != EC_HOOK_CONT) {
        /* DONE (or any other value): for good; RETRY: for now.  A code the
         * provider set is used when its class agrees. */
        int want = rc == EC_HOOK_RETRY ? 4 : 5;
        int code = vs_refusal(&s->v, "5.7.1 Error: message refused", reply_text, size);
        if (code / 100 != want)
            snprintf(reply_text, size, "%s", want == 4
                     ? "451 4.7.1 Error: message refused, try again later"
                     : "550 5.7.1 Error: message refused");
        return 1;
    }
    call_core_final_validation_hook(&ec, &s->v.ac, &s->v.vc);
    return vs_refusal(&s->v, "5.7.1 Error: message refused", reply_text, size) != 0;
}

/* after_data_chain - final_validation, then the per-recipient chains */
static void after_data_chain(struct srv_session *s)
{
    if (s->plugin_code) {
        s->reply_final = 1;
        if (plugin_refused(s)) {
            reset_transaction(s);
            return;
        }
    }
    char refusal[SRV_REPLY_MAX];
    if (final_validation(s, refusal, sizeof refusal)) {
        if (!s->reply_final)
            srv_reply(s, "%s", refusal);
        reset_transaction(s);
        if (s->v.vc.disconnect)
            session_close(s, "refused");
        return;
    }
    s->msg_rcpt = 0;
    after_message_chain(s);
}

/* adopt_message_changes - what the mq_smtp_in_message chain of recipient
 * i set with MQ_SetEnvelope / MQ_SetRecipient is what is queued (MailerQ
 * 3.0: for a message being received they set the JSON's "envelope" and
 * "recipient"); a new envelope applies to every recipient */
static void adopt_message_changes(struct srv_session *s, int i)
{
    if (s->msg.envelope != s->mail_from) {
        char *from = srv_strndup(s->msg.envelope, strlen(s->msg.envelope));
        free(s->mail_from);
        s->mail_from = from;
        s->msg.envelope = s->mail_from;
    }
    if (s->msg.recipient != s->rcpts[i]) {
        char *rcpt = srv_strndup(s->msg.recipient, strlen(s->msg.recipient));
        free(s->rcpts[i]);
        s->rcpts[i] = rcpt;
        s->msg.recipient = rcpt;
    }
}

/* after_message_chain - the next recipient's chain, or the queue */
static void after_message_chain(struct srv_session *s)
{
    if (s->msg_rcpt > 0)
        adopt_message_changes(s, s->msg_rcpt - 1);
    if (s->plugin_code && !s->reply_final) {
        s->reply_final = 1;
        if (plugin_refused(s)) {
            reset_transaction(s);
            return;
        }
    }
    if (s->msg_rcpt < s->nrcpts) {
        s->msg.recipient = s->rcpts[s->msg_rcpt++];
        srv_run_chain(s, MQ_CB_MESSAGE, after_message_chain);
        return;
    }
    /* Queue it: the body is kept for the queue's lifetime. */
    struct smtp_server *srv = s->srv;
    struct srv_body *b = calloc(1, sizeof *b);
    if (b == NULL)
        mta_panic("after_message_chain", "out of memory");
    b->bytes = malloc(s->msg.mime_len + 1);
    if (b->bytes == NULL)
        mta_panic("after_message_chain", "out of memory");
    memcpy(b->bytes, s->msg.mime, s->msg.mime_len);
    b->bytes[s->msg.mime_len] = '\0';
    b->next = srv->bodies;
    srv->bodies = b;
    unsigned long id = SRV_ID_BASE + ++srv->accepted;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "inbound", "message");
        mta_tb_int(&tb, "conn", s->fd);
        mta_tb_int(&tb, "msg", (int64_t)id);
        mta_tb_str(&tb, "from", s->mail_from);
        mta_tb_int(&tb, "rcpts", s->nrcpts);
        mta_tb_int(&tb, "size", (int64_t)s->msg.mime_len);
        mta_tb_emit(&tb);
    }
    if (srv->observer)
        srv->observer(srv->observer_arg, id, b->bytes, s->msg.mime_len);
    int rc = mta_inject(srv->m, id, s->mail_from, (const char *const *)s->rcpts, s->nrcpts,
                        b->bytes, s->msg.mime_len, 0, NULL);
    if (!s->reply_final) {
        if (rc == 0)
            srv_reply(s, "250 2.0.0 Ok: queued as %lu", id);
        else
            srv_reply(s, "451 4.3.0 Error: queue file write error");
    }
    reset_transaction(s);
}

/* data_line - one line of message data; len excludes the line end */
static void data_line(struct srv_session *s, const char *line, size_t len, int complete)
{
    if (!s->data_midline && complete && len == 1 && line[0] == '.') {
        end_of_data(s);
        return;
    }
    /* RFC 5321 4.5.2: a leading dot was doubled by the client. */
    if (!s->data_midline && len > 0 && line[0] == '.') {
        line++;
        len--;
    }
    data_append(s, line, len);
    if (complete)
        data_append(s, "\r\n", 2);
    s->data_midline = !complete;
}

/* ---- input ------------------------------------------------------------- */

/* process - handle buffered input line by line while the session may */
static void process(struct srv_session *s)
{
    assert(!s->in_process);
    s->in_process = 1;
    size_t at = 0;
    /* Each pass consumes a line or stops: bounded by the input. */
    while (!s->busy && s->state != SS_CLOSED && at < s->inlen) {
        char *p = s->in + at;
        size_t avail = s->inlen - at;
        char *nl = memchr(p, '\n', avail);
        if (nl == NULL) {
            if (s->state == SS_DATA && avail > SRV_DATA_CHUNK) {
                data_line(s, p, avail, 0);
                at += avail;
            } else if (s->state != SS_DATA && avail > SRV_CMD_LINE_MAX) {
                if (!s->skipping) {
                    srv_reply(s, "500 5.5.2 Error: line too long");
                    srv_client_error(s);
                }
                s->skipping = 1;
                at += avail;
            }
            break;
        }
        size_t len = (size_t)(nl - p);
        at += len + 1;
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (s->skipping) {
            s->skipping = 0;
            continue;
        }
        if (s->state == SS_DATA) {
            data_line(s, p, len, 1);
            continue;
        }
        if (len + 2 > SRV_CMD_LINE_MAX) {
            srv_reply(s, "500 5.5.2 Error: line too long");
            srv_client_error(s);
            continue;
        }
        p[len] = '\0';
        s->in_at = at;
        command(s, p, len);
    }
    if (at > 0 && at <= s->inlen) {
        memmove(s->in, s->in + at, s->inlen - at);
        s->inlen -= at;
    }
    s->in_process = 0;
    if (s->closing_chain == -1) {
        s->closing_chain = 0;
        session_free(s);
    }
}

/* take_input - bytes from the client */
static void take_input(struct srv_session *s, const char *data, size_t len)
{
    if (s->inlen + len > SRV_INBUF_MAX) {
        srv_reply(s, "421 4.7.0 %s Error: too much input", server_name(s->srv));
        session_close(s, "overflow");
        return;
    }
    buf_reserve(&s->in, &s->incap, s->inlen + len);
    memcpy(s->in + s->inlen, data, len);
    s->inlen += len;
    if (s->busy || s->state == SS_CONNECT)
        return;             /* chain_done processes it */
    timer_restart(s);
    process(s);
}

/* tcp_event - the environment's events for an accepted descriptor */
static void tcp_event(void *arg, int fd, enum mta_tcp_event ev, const char *data, size_t len,
                      int err)
{
    struct srv_session *s = arg;
    (void)err;
    assert(s->fd == fd && s->state != SS_CLOSED);
    mq_io_tcp_event(fd, ev);
    switch (ev) {
    case MTA_TCP_DATA:
        take_input(s, data, len);
        return;
    case MTA_TCP_EOF:
        session_close(s, "eof");
        return;
    case MTA_TCP_RESET:
        session_close(s, "reset");
        return;
    case MTA_TCP_WRITABLE:
        (void)outq_flush(&s->out, session_put, s);
        return;
    case MTA_TCP_SENT:
        return;             /* never asked for */
    case MTA_TCP_TLS_UP:
        assert(s->tls_handshake);
        went_secure(s);
        return;
    case MTA_TCP_TLS_FAILED:        /* data: a NUL-terminated reason (mtasim_env.h) */
        trace_simple(s, "tls_failed", "reason", data != NULL ? data : "", 0, 0);
        session_close(s, "tls-failed");
        return;
    case MTA_TCP_CONNECTED:
    case MTA_TCP_CONNECT_FAILED:
        break;
    }
    mta_panic("tcp_event", "connect event on accepted descriptor %d", fd);
}

/* ---- listening and shutdown ---------------------------------------------- */

/* mta_listen - start the server on addr:port */
int mta_listen(struct mta *m, uint32_t addr, uint16_t port, const struct mta_listen_opts *opts)
{
    struct smtp_server *srv = server_get(m);
    if (srv->listen_fd >= 0 || m->env->tcp_listen == NULL)
        return -EINVAL;
    struct mta_listen_opts o = opts ? *opts : (struct mta_listen_opts){ 0 };
    if (o.max_recipients <= 0)
        o.max_recipients = 100;
    if (o.max_size <= 0)
        o.max_size = 10485760;
    if (o.max_errors <= 0)
        o.max_errors = 10;
    if (o.timeout <= 0)
        o.timeout = 300 * MTA_USEC_PER_SEC;
    srv->opts = o;
    srv->addr = addr;
    srv->port = port;
    int fd = m->env->tcp_listen(m->env, addr, port, srv_accept, srv);
    if (fd < 0)
        return fd;
    srv->listen_fd = fd;
    return 0;
}

/* smtp_server_shutdown - the run is over: stop listening, end sessions */
void smtp_server_shutdown(struct mta *m)
{
    struct smtp_server *srv = m->inbound;
    if (srv == NULL)
        return;
    if (srv->listen_fd >= 0) {
        m->env->tcp_close(m->env, srv->listen_fd);
        srv->listen_fd = -1;
    }
    /* Each close may free its session: take the next one first. */
    struct srv_session *s = srv->sessions;
    while (s != NULL) {
        struct srv_session *next = s->next;
        if (s->state != SS_CLOSED)
            session_close(s, "shutdown");
        s = next;
    }
}

/* smtp_server_free - release the server and whatever sessions are left */
void smtp_server_free(struct mta *m)
{
    struct smtp_server *srv = m->inbound;
    if (srv == NULL)
        return;
    while (srv->sessions != NULL) {
        struct srv_session *s = srv->sessions;
        /* A plugin still holds it (reported by mq_shutdown): free anyway. */
        s->busy = 0;
        s->in_process = 0;
        s->state = SS_CLOSED;
        session_free(s);
    }
    while (srv->bodies != NULL) {
        struct srv_body *b = srv->bodies;
        srv->bodies = b->next;
        free(b->bytes);
        free(b);
    }
    for (int i = 0; i < srv->nusers; i++) {
        free(srv->users[i].name);
        free(srv->users[i].password);
    }
    free(srv);
    m->inbound = NULL;
}
