/*
 * remote - a scripted remote MTA: the SMTP server side of the simulation
 *
 * SYNOPSIS
 *   See remote.h.
 *
 * DESCRIPTION
 *   One struct sim_session per accepted connection runs the state machine
 *   of remote.h (cf. OpenSMTPD's smtp_session.c):
 *
 *     GREETING  the banner is chosen at accept time; 2xx -> COMMAND,
 *               421 -> CLOSING, other 4xx/5xx -> REJECTED
 *     COMMAND   commands are answered from the script or the defaults
 *     REJECTED  after a 4xx/5xx banner: QUIT works, all else gets 503
 *     DATA      body lines until ".", then the "dot" reply -> COMMAND
 *     CLOSING   a QUIT or 421 reply is queued; further input is ignored
 *
 *   Input is handled as it arrives and the reply to each command is
 *   chosen at once (the choice depends only on the command, the script
 *   and the session number, never on time), then queued.  The queue is
 *   what models time: a reply waits its delay once it reaches the head,
 *   i.e. once the replies before it went out, the way a server that reads
 *   pipelined commands one at a time answers them.  Each reply is one
 *   write.  After a QUIT reply or any 421 reply has been written, the
 *   session closes its side.  A FIN or RST from the client ends the
 *   session at once; replies still queued are dropped (the client can no
 *   longer read them: see -EPIPE in net.h).
 *
 *   Beyond the script, the transaction order is enforced as a real server
 *   does, so a pipelining client sees realistic answers: RCPT or DATA
 *   without MAIL get "503 5.5.1 Error: need MAIL command", a second MAIL
 *   "503 5.5.1 Error: nested MAIL command", DATA without an accepted RCPT
 *   "554 5.5.1 Error: no valid recipients" (unless a scripted DATA reply
 *   applies: a lax server, RFC 2920 3.1).  EHLO, HELO, a 2xx RSET and the
 *   end of the data end the transaction.
 *
 *   Bounds: a command line longer than SIM_REMOTE_MAX_LINE is answered
 *   "500 5.5.2 Line too long" and the session goes on; body lines may be
 *   longer (they are streamed); a body over SIM_REMOTE_MAX_BODY is
 *   answered "552 5.3.4 Message size exceeds fixed limit"; a client that
 *   piles up SIM_REMOTE_MAX_REPLIES unanswered commands gets a 421 and is
 *   disconnected.
 *
 *   Scripted actions (reset, drop, close instead of a reply) and raw
 *   replies travel through the reply queue like replies, so they keep
 *   their place behind the replies to earlier pipelined commands; once an
 *   action is queued the session reads nothing more.  With "flush
 *   together" the replies that are due at one instant go out as one write
 *   (what a server that flushes when its input is drained does); by
 *   default each reply is its own write.  A slow close ("close delay")
 *   holds the remote's FIN for that long after it decided to close.
 *
 *   Network faults of a session (reset|drop at DUR / after N bytes) are
 *   armed at accept time from the script's fault lines whose session
 *   conditions hold: the earliest time and the smallest byte count win.
 *   "after N bytes" lets exactly N bytes reach the state machine, then
 *   acts; anything queued but not yet written is lost with the connection.
 *
 *   Attempts: the remote remembers every (MAIL FROM, first RCPT TO) pair
 *   it saw, over all its sessions; a transaction's attempt number is
 *   fixed when its first RCPT arrives: 1 + the transactions before it
 *   with the same pair.
 *
 *   Randomness: a scripted line with a probability draws once each time
 *   it is considered (its other conditions hold), from its own stream
 *   (seed, "remote ADDR CMD", k), k counting the probabilistic lines for
 *   CMD of this remote from 0.  Other remotes, other commands and the
 *   network never share it.
 *
 *   Entry points (accept, data, timer) may end and free the session; they
 *   do so only as their last step (session_pump or session_finish), so no
 *   code touches a session after it was freed.
 *
 *   Two files, sharing the structures of remote_internal.h: this one has
 *   the remote and its sessions' life (create and destroy, accept, the
 *   reply queue and its writes, faults, closing, trace records);
 *   remote_smtp.c has the dialogue (the script and its prepared replies,
 *   commands, transactions, attempts).
 *
 * DIAGNOSTICS
 *   Broken invariants print "sim_remote_<fn>: ..." and abort.
 *   sim_remote_create() returns NULL when a host with the script's
 *   address is already on the network.
 */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_internal.h"
#include "textbuf.h"

/* remote_die - report a broken contract and stop loudly */
void remote_die(const char *fn, const char *what)
{
    fprintf(stderr, "%s: %s\n", fn, what);
    abort();
}

/* tb_str - add a string field (referenced, not copied) */
void tb_str(struct remote_tb *tb, const char *key, const char *str, size_t len)
{
    struct mta_trace_field *f;

    if (tb->off)
        return;
    assert(tb->rec.nfields < MTA_TRACE_MAX_FIELDS);
    f = &tb->rec.field[tb->rec.nfields++];
    memset(f, 0, sizeof *f);
    f->key = key;
    f->str = str;
    f->len = len;
}

/* tb_num - add a numeric field */
void tb_num(struct remote_tb *tb, const char *key, int64_t num)
{
    int i = tb->rec.nfields;

    if (tb->off)
        return;
    assert(i < MTA_TRACE_MAX_FIELDS);
    struct textbuf t = textbuf_on(tb->nums[i], sizeof tb->nums[i]);
    textbuf_i64(&t, num);
    assert(t.len > 0 && t.len < sizeof tb->nums[i]);
    tb_str(tb, key, tb->nums[i], t.len);
    tb->rec.field[i].num = num;
    tb->rec.field[i].has_num = 1;
}

/* tb_begin - start a "remote NAME" record with remote= and session= */
void tb_begin(struct remote_tb *tb, const struct sim_session *s, const char *name)
{
    /* Without a sink nothing is built: tracing off costs nothing. */
    tb->off = s->remote->trace == NULL;
    if (tb->off)
        return;
    tb->rec.kind = "remote";
    tb->rec.name = name;
    tb->rec.kind_len = tb->rec.name_len = 0;    /* not given: the sink measures */
    tb->rec.nfields = 0;
    tb_str(tb, "remote", s->remote->addr, strlen(s->remote->addr));
    tb_num(tb, "session", s->number);
}

/* tb_emit - hand the record to the trace sink, if there is one */
void tb_emit(struct remote_tb *tb, const struct sim_remote *r)
{
    if (!tb->off && r->trace != NULL)
        r->trace(r->trace_arg, &tb->rec);
}

/* ---- the reply queue ---------------------------------------------------- */

static void session_finish(struct sim_session *s);
static void session_pump(struct sim_session *s);
static void session_act(struct sim_session *s, enum scn_action action);
static void session_close(struct sim_session *s);

/* reply_new - a queued reply; bytes are copied unless borrowed (the
 * remote's prepared text, which lives as long as the remote) */
static struct sim_reply *reply_new(struct sim_remote *r, const char *bytes, size_t len,
                                   sim_usec delay, int borrowed)
{
    struct sim_reply *rp = r->spare;

    if (rp != NULL) {
        r->spare = rp->next;
    } else if ((rp = malloc(sizeof *rp)) == NULL) {
        remote_die("reply_new", "out of memory");
    }
    rp->next = NULL;
    rp->delay = delay;
    rp->phase = R_WAITING;
    rp->close_after = 0;
    rp->action = SCN_ACTION_REPLY;
    rp->len = len;
    rp->owned = NULL;
    if (borrowed) {
        rp->bytes = bytes;
    } else if (len <= sizeof rp->small) {
        memcpy(rp->small, bytes, len);
        rp->bytes = rp->small;
    } else {
        rp->owned = malloc(len);
        if (rp->owned == NULL)
            remote_die("reply_new", "out of memory");
        memcpy(rp->owned, bytes, len);
        rp->bytes = rp->owned;
    }
    return rp;
}

/* reply_recycle - done with rp: keep it for the next reply */
static void reply_recycle(struct sim_remote *r, struct sim_reply *rp)
{
    free(rp->owned);
    rp->owned = NULL;
    rp->next = r->spare;
    r->spare = rp;
}

/* reply_code - the three-digit code of a wire reply, or 0 */
static int reply_code(const char *bytes, size_t len)
{
    if (len < 3 || !isdigit((unsigned char) bytes[0]) || !isdigit((unsigned char) bytes[1])
        || !isdigit((unsigned char) bytes[2]))
        return 0;
    return (bytes[0] - '0') * 100 + (bytes[1] - '0') * 10 + (bytes[2] - '0');
}

/* session_append - put a reply or action at the end of the queue */
static void session_append(struct sim_session *s, struct sim_reply *rp)
{
    if (s->rq_tail)
        s->rq_tail->next = rp;
    else
        s->rq_head = rp;
    s->rq_tail = rp;
    s->rq_len++;
    assert(s->rq_len <= SIM_REMOTE_MAX_REPLIES);
}

/* session_queue - queue a reply; a 421 or QUIT reply puts the session in CLOSING
 *
 * borrowed: bytes are the remote's prepared text and need no copy. */
void session_queue(struct sim_session *s, const char *bytes, size_t len,
                   sim_usec delay, int is_quit, int borrowed)
{
    struct sim_reply *rp;
    char text[128];

    assert(s->state != S_CLOSING);
    if (s->rq_len + 1 >= SIM_REMOTE_MAX_REPLIES) {
        /* The last free slot goes to a 421: the client is not reading. */
        int n = snprintf(text, sizeof text,
                         "421 4.7.0 %s Error: too many pipelined commands\r\n", s->remote->name);

        assert(n > 0);
        bytes = text;
        len = (size_t) n < sizeof text ? (size_t) n : sizeof text - 1;
        delay = 0;
        borrowed = 0;
    }
    rp = reply_new(s->remote, bytes, len, delay, borrowed);
    if (is_quit || reply_code(bytes, len) == 421) {
        rp->close_after = 1;
        s->state = S_CLOSING;
    }
    session_append(s, rp);
}

/* session_queue_action - queue reset/drop/close in place of a reply; reads stop */
void session_queue_action(struct sim_session *s, enum scn_action action, sim_usec delay)
{
    struct sim_reply *rp = reply_new(s->remote, "", 0, delay, 1);

    assert(action == SCN_ACTION_RESET || action == SCN_ACTION_DROP
           || action == SCN_ACTION_CLOSE);
    assert(s->state != S_CLOSING);
    rp->action = action;
    s->state = S_CLOSING;
    session_append(s, rp);
}

/* session_queue_str - queue a reply given as a C string (copied) */
void session_queue_str(struct sim_session *s, const char *reply)
{
    session_queue(s, reply, strlen(reply), 0, 0, 0);
}

/* session_reply_timer - the head reply's delay has passed */
static void session_reply_timer(void *arg)
{
    struct sim_session *s = arg;

    assert(s->reply_timer != 0);
    assert(s->rq_head != NULL && s->rq_head->phase == R_TIMING);
    s->reply_timer = 0;
    s->rq_head->phase = R_READY;
    session_pump(s);
}

/* session_pop - take the head reply off the queue */
static struct sim_reply *session_pop(struct sim_session *s)
{
    struct sim_reply *rp = s->rq_head;

    assert(rp != NULL && s->rq_len > 0);
    s->rq_head = rp->next;
    if (s->rq_head == NULL)
        s->rq_tail = NULL;
    s->rq_len--;
    return rp;
}

/* session_send - reply bytes to the client: TLS records once TLS is up */
static int session_send(struct sim_session *s, const char *bytes, size_t len)
{
    if (s->tls == NULL || s->tls->state != SIMTLS_UP)
        return sim_ep_send(s->ep, bytes, len);
    struct simtls_buf w = { 0 };
    simtls_wrap(&w, bytes, len);
    int rc = sim_ep_send(s->ep, w.p, w.len);
    simtls_buf_free(&w);
    return rc;
}

/* session_write_group - with "flush together", the head reply and every
 * reply due with it as one write; else the head alone.  0, or -1 when
 * the write failed; *close_after says a reply in it ends the session */
static int session_write_group(struct sim_session *s, int *close_after)
{
    struct sim_reply *rp = session_pop(s);
    char *buf;
    size_t len, cap;
    int rc;

    *close_after = rp->close_after;
    if (!s->remote->script->flush_together || rp->close_after) {
        rc = session_send(s, rp->bytes, rp->len);
        reply_recycle(s->remote, rp);
        return rc < 0 ? -1 : 0;
    }
    len = rp->len;
    cap = rp->len;
    buf = malloc(cap > 0 ? cap : 1);
    if (buf == NULL)
        remote_die("session_write_group", "out of memory");
    memcpy(buf, rp->bytes, rp->len);
    reply_recycle(s->remote, rp);
    /* Replies without a delay of their own are due now too. */
    while (s->rq_head != NULL && s->rq_head->action == SCN_ACTION_REPLY
           && s->rq_head->delay == 0 && !*close_after) {
        rp = session_pop(s);
        if (len + rp->len > cap) {
            cap = (len + rp->len) * 2;
            buf = realloc(buf, cap);
            if (buf == NULL)
                remote_die("session_write_group", "out of memory");
        }
        memcpy(buf + len, rp->bytes, rp->len);
        len += rp->len;
        *close_after = rp->close_after;
        reply_recycle(s->remote, rp);
    }
    rc = session_send(s, buf, len);
    free(buf);
    return rc < 0 ? -1 : 0;
}

/* session_pump - write the replies that are due, in order; may free s */
static void session_pump(struct sim_session *s)
{
    size_t bound = s->rq_len;

    /* Each iteration writes at least one reply or returns: rq_len bounds it. */
    while (s->rq_head != NULL) {
        struct sim_reply *rp = s->rq_head;
        int close_after;

        assert(bound-- > 0);
        if (rp->phase == R_TIMING)
            return;
        if (rp->phase == R_WAITING && rp->delay > 0) {
            rp->phase = R_TIMING;
            s->reply_timer = sim_sched_at_kind(s->remote->sched,
                                               sim_sched_now(s->remote->sched) + rp->delay,
                                               session_reply_timer, s, SIM_EV_REMOTE);
            return;
        }
        if (rp->action != SCN_ACTION_REPLY) {
            enum scn_action action = rp->action;

            reply_recycle(s->remote, session_pop(s));
            session_act(s, action);
            return;
        }
        if (session_write_group(s, &close_after) < 0) {
            /* A failed write means the client is gone. */
            session_finish(s);
            return;
        }
        if (close_after) {
            session_close(s);
            return;
        }
    }
}

/* ---- session life ------------------------------------------------------- */

/* session_trace_fault - "remote fault action=..." when the remote breaks the connection */
static void session_trace_fault(struct sim_session *s, enum scn_action action)
{
    static const char *const names[] = {
        [SCN_ACTION_RESET] = "reset", [SCN_ACTION_DROP] = "drop", [SCN_ACTION_CLOSE] = "close",
        [SCN_ACTION_STALL] = "stall",
    };
    struct remote_tb tb;

    assert(action == SCN_ACTION_RESET || action == SCN_ACTION_DROP
           || action == SCN_ACTION_CLOSE || action == SCN_ACTION_STALL);
    tb_begin(&tb, s, "fault");
    tb_str(&tb, "action", names[action], strlen(names[action]));
    tb_emit(&tb, s->remote);
}

/* session_close_timer - a slow close is over: send the FIN now */
static void session_close_timer(void *arg)
{
    struct sim_session *s = arg;

    assert(s->close_timer != 0);
    s->close_timer = 0;
    session_finish(s);
}

/* session_close - the remote closes its side, after "close delay" if set; may free s */
static void session_close(struct sim_session *s)
{
    sim_usec delay = s->remote->script->close_delay;

    if (delay <= 0) {
        session_finish(s);
        return;
    }
    /* Hold the FIN; input is ignored meanwhile, a FIN or RST ends it. */
    s->state = S_CLOSING;
    if (s->close_timer == 0)
        s->close_timer = sim_sched_at_kind(s->remote->sched, sim_sched_now(s->remote->sched) + delay,
                                           session_close_timer, s, SIM_EV_REMOTE);
}

static void session_receive(struct sim_session *s, const char *data, size_t len);

/* session_stall_over - "stall ... for D" is over: read again, what was held first */
static void session_stall_over(void *arg)
{
    struct sim_session *s = arg;
    char *held = s->held;
    size_t n = s->held_len;

    assert(s->stall_timer != 0 && s->stalled);
    s->stall_timer = 0;
    s->stalled = 0;
    s->held = NULL;
    s->held_len = 0;
    sim_ep_pause(s->ep, 0);
    if (n > 0)
        session_receive(s, held, n);    /* may free s */
    free(held);
}

/* session_stall - stop reading: the remote's receive window closes, the
 * client's send buffer fills (net.h); for `len' then read again */
static void session_stall(struct sim_session *s, mta_usec_t len)
{
    /* A session's "at" fault and its "after N bytes" fault both act
     * (session_arm_faults): a second stall finds the remote already not
     * reading, and the first one's end stands (found by mtasim explore:
     * scenarios/faults/stall-twice.scn; it was an assertion failure). */
    if (s->stalled)
        return;
    s->stalled = 1;
    sim_ep_pause(s->ep, 1);
    if (len > 0)
        s->stall_timer = sim_sched_after(s->remote->sched, len, session_stall_over, s);
}

/* session_act - reset, drop or close instead of replying, or stall; may free s */
static void session_act(struct sim_session *s, enum scn_action action)
{
    session_trace_fault(s, action);
    switch (action) {

    case SCN_ACTION_RESET:
        sim_ep_reset(s->ep);
        s->ep_gone = 1;
        session_finish(s);
        return;
    case SCN_ACTION_DROP:
        /* The path dies; the host forgets the connection without a word. */
        sim_ep_drop(s->ep);
        session_finish(s);
        return;
    case SCN_ACTION_CLOSE:
        session_close(s);
        return;
    case SCN_ACTION_REPLY:
    case SCN_ACTION_RAW:
    case SCN_ACTION_STALL:      /* a fault only: session_fault_timer, session_receive */
        break;
    }
    remote_die("session_act", "not an action");
}

/* session_fault_timer - "reset|drop at DUR" is due */
static void session_fault_timer(void *arg)
{
    struct sim_session *s = arg;

    assert(s->fault_timer != 0);
    s->fault_timer = 0;
    if (s->fault_timer_action == SCN_ACTION_STALL) {
        session_trace_fault(s, SCN_ACTION_STALL);
        session_stall(s, s->fault_timer_for);
        return;
    }
    session_act(s, s->fault_timer_action);
}

/* session_arm_faults - the script's network faults that apply to this session */
static void session_arm_faults(struct sim_session *s)
{
    const struct scn_remote *script = s->remote->script;
    sim_usec at = -1;
    int i, j;

    for (i = 0; i < script->nfaults; i++) {
        const struct scn_fault *f = &script->faults[i];
        int ok = 1;

        for (j = 0; j < f->nconds && ok; j++)
            ok = cond_holds(&f->conds[j], NULL, s, SCN_CMD_GREET);
        if (!ok)
            continue;
        /* The earliest time and the smallest count win; file order breaks ties. */
        if (f->trigger == SCN_FAULT_AT && (at < 0 || f->at < at)) {
            at = f->at;
            s->fault_timer_action = f->action;
            s->fault_timer_for = f->stall_for;
        } else if (f->trigger == SCN_FAULT_AFTER_BYTES
                   && (s->fault_bytes == 0 || f->bytes < s->fault_bytes)) {
            s->fault_bytes = f->bytes;
            s->fault_bytes_action = f->action;
            s->fault_bytes_for = f->stall_for;
        }
    }
    if (at >= 0)
        s->fault_timer = sim_sched_at_kind(s->remote->sched, sim_sched_now(s->remote->sched) + at,
                                           session_fault_timer, s, SIM_EV_REMOTE);
}

/* session_tls_line - the script's handshake for this session: the first
 * "tls" line whose conditions hold, else "tls ok" (scenario.h) */
static const struct scn_tls *session_tls_line(const struct sim_session *s)
{
    static const struct scn_tls ok = { .outcome = SCN_TLS_OK };
    const struct scn_remote *sc = s->remote->script;
    for (int i = 0; i < sc->ntls; i++) {
        int holds = 1;
        for (int j = 0; j < sc->tls[i].nconds && holds; j++)
            holds = cond_holds(&sc->tls[i].conds[j], NULL, s, SCN_CMD_STARTTLS);
        if (holds)
            return &sc->tls[i];
    }
    return &ok;
}

/* session_tls_cert - what the remote shows: its "tls" line, at virtual time now */
static struct simtls_cert session_tls_cert(const struct sim_session *s, const struct scn_tls *t)
{
    const char *name = t->cert[0] ? t->cert : s->remote->name;
    mta_usec_t now = sim_sched_now(s->remote->sched);
    struct simtls_cert c = { .trusted = !t->untrusted };
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.alt, sizeof c.alt, "%s", name);
    /* A 90-day certificate (as ACME issues them) 30 days old, or one that
     * ran out a day ago. */
    c.not_before = now - (t->expired ? 91 : 30) * 86400 * MTA_USEC_PER_SEC;
    c.not_after = t->expired ? now - 86400 * MTA_USEC_PER_SEC
                             : now + 60 * 86400 * MTA_USEC_PER_SEC;
    return c;
}

/* session_tls_input - bytes after the 220 to STARTTLS: the handshake as the
 * script says (scenario.h, enum scn_tls_outcome), then commands in records;
 * may free s */
static void session_tls_input(struct sim_session *s, const char *data, size_t len)
{
    static const char *const outcome_names[] = { "ok", "handshake-failure", "protocol-version",
                                                 "reset", "close" };
    struct simtls_buf wire = { 0 }, plain = { 0 };
    int ev = simtls_input(s->tls, data, len, &wire, &plain);
    enum scn_tls_outcome outcome = SCN_TLS_OK;
    if (ev & SIMTLS_EV_HELLO) {
        const struct scn_tls *t = session_tls_line(s);
        struct remote_tb tb;
        outcome = t->outcome;
        tb_begin(&tb, s, "tls");
        tb_str(&tb, "outcome", outcome_names[outcome], strlen(outcome_names[outcome]));
        tb_emit(&tb, s->remote);
        if (outcome == SCN_TLS_OK) {
            struct simtls_cert cert = session_tls_cert(s, t);
            simtls_server_accept(s->tls, &cert, &wire);
        } else if (outcome == SCN_TLS_HANDSHAKE_FAILURE) {
            simtls_alert(&wire, SIMTLS_ALERT_HANDSHAKE_FAILURE);
        } else if (outcome == SCN_TLS_PROTOCOL_VERSION) {
            simtls_alert(&wire, SIMTLS_ALERT_PROTOCOL_VERSION);
        }
    }
    if (wire.len > 0)
        (void)sim_ep_send(s->ep, wire.p, wire.len);
    simtls_buf_free(&wire);
    if ((ev & SIMTLS_EV_HELLO) && outcome != SCN_TLS_OK) {
        /* A fatal alert ends the connection (RFC 8446 6.2); "reset" and
         * "close" end it without one. */
        simtls_buf_free(&plain);
        session_act(s, outcome == SCN_TLS_RESET ? SCN_ACTION_RESET : SCN_ACTION_CLOSE);
        return;
    }
    if (ev & (SIMTLS_EV_FAILED | SIMTLS_EV_CLOSED)) {
        /* The client gave up on the handshake (or said close_notify). */
        simtls_buf_free(&plain);
        session_finish(s);
        return;
    }
    if (plain.len > 0)
        session_feed(s, (const char *)plain.p, plain.len, 1);
    simtls_buf_free(&plain);
    session_pump(s);
}

/* session_receive - client bytes, up to an "after N bytes" fault; may free s */
static void session_receive(struct sim_session *s, const char *data, size_t len)
{
    if (s->tls != NULL) {
        s->bytes_in += len;
        session_tls_input(s, data, len);
        return;
    }
    if (s->fault_bytes > 0 && len >= s->fault_bytes - s->bytes_in) {
        /* Exactly N bytes reach the server, then its stack acts. */
        size_t take = (size_t) (s->fault_bytes - s->bytes_in);

        s->bytes_in += take;
        session_feed(s, data, take, 0);
        if (s->fault_bytes_action == SCN_ACTION_STALL) {
            /* The rest of what was read waits with the application. */
            s->fault_bytes = 0;
            if (len > take) {
                s->held = malloc(len - take);
                if (s->held == NULL)
                    remote_die("session_receive", "out of memory");
                memcpy(s->held, data + take, len - take);
                s->held_len = len - take;
            }
            session_trace_fault(s, SCN_ACTION_STALL);
            session_stall(s, s->fault_bytes_for);
            session_pump(s);
            return;
        }
        session_act(s, s->fault_bytes_action);
        return;
    }
    s->bytes_in += len;
    session_feed(s, data, len, 0);
    session_pump(s);
}

/* session_finish - close the connection and free the session */
static void session_finish(struct sim_session *s)
{
    struct sim_remote *r = s->remote;
    size_t bound = s->rq_len;

    if (s->reply_timer != 0)
        sim_sched_cancel(r->sched, s->reply_timer);
    if (s->fault_timer != 0)
        sim_sched_cancel(r->sched, s->fault_timer);
    if (s->close_timer != 0)
        sim_sched_cancel(r->sched, s->close_timer);
    if (s->stall_timer != 0)
        sim_sched_cancel(r->sched, s->stall_timer);
    free(s->held);
    while (s->rq_head != NULL) {
        struct sim_reply *rp = s->rq_head;

        assert(bound-- > 0);
        s->rq_head = rp->next;
        reply_recycle(r, rp);
    }
    /* Orderly after QUIT/421; after a FIN or RST this only releases; after
     * our own reset the endpoint is released already. */
    if (!s->ep_gone)
        sim_ep_close(s->ep);
    if (s->prev)
        s->prev->next = s->next;
    else
        r->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        r->last = s->prev;
    assert(r->nlive > 0);
    r->nlive--;
    free(s->mail_from);
    free(s->body);
    free(s->line);
    if (s->tls != NULL) {
        simtls_free(s->tls);
        free(s->tls);
    }
    free(s);
}

/* session_event - the network has something for this session */
static void session_event(void *arg, sim_ep *ep, enum sim_ep_event ev,
                          const char *data, size_t len)
{
    struct sim_session *s = arg;

    assert(s->ep == ep);
    switch (ev) {
    case SIM_EP_DATA:
        session_receive(s, data, len);
        break;
    case SIM_EP_FIN:
    case SIM_EP_RST:
    case SIM_EP_TIMEDOUT:
        session_finish(s);
        break;
    case SIM_EP_WRITABLE:
    case SIM_EP_SENT:
        break;              /* it writes with sim_ep_send(): never asked for */
    case SIM_EP_CONNECTED:
    case SIM_EP_REFUSED:
    case SIM_EP_UNREACHABLE:
        remote_die("session_event", "client event on a server endpoint");
    }
}

/* remote_accept - a client connected: greet it */
static void remote_accept(void *arg, sim_ep *ep)
{
    struct sim_remote *r = arg;
    struct sim_session *s = calloc(1, sizeof *s);
    struct remote_tb tb;
    int code;

    if (s == NULL)
        remote_die("remote_accept", "out of memory");
    s->remote = r;
    s->ep = ep;
    s->number = ++r->sessions;
    s->state = S_GREETING;
    s->prev = r->last;
    if (r->last)
        r->last->next = s;
    else
        r->first = s;
    r->last = s;
    r->nlive++;
    sim_ep_set_handler(ep, session_event, s);

    tb_begin(&tb, s, "accept");
    tb_emit(&tb, r);
    session_arm_faults(s);

    code = session_answer(s, SCN_CMD_GREET);
    if (s->state != S_CLOSING)
        s->state = (code >= 200 && code < 300) ? S_COMMAND : S_REJECTED;
    session_pump(s);
}

/* remote_network - the script's network settings for its host */
static void remote_network(struct sim_host *host, const struct scn_remote *script)
{
    static const enum sim_connect_mode modes[] = {
        [SCN_CONNECT_ACCEPT] = SIM_CONNECT_ACCEPT, [SCN_CONNECT_REFUSE] = SIM_CONNECT_REFUSE,
        [SCN_CONNECT_TIMEOUT] = SIM_CONNECT_TIMEOUT,
        [SCN_CONNECT_UNREACHABLE] = SIM_CONNECT_UNREACHABLE,
        [SCN_CONNECT_NO_ROUTE] = SIM_CONNECT_NO_ROUTE,
    };
    int i;

    assert(script->nchoices >= 0 && script->nchoices <= SIM_HOST_MAX_CHOICES);
    host->jitter = script->jitter;
    host->bandwidth = script->bandwidth;
    host->segment = script->segment > 0 ? (size_t) script->segment : 0;
    host->loss_ppm = script->loss_ppm;
    host->sndbuf = script->sndbuf > 0 ? (size_t) script->sndbuf : 0;
    host->rcvbuf = script->rcvbuf > 0 ? (size_t) script->rcvbuf : 0;
    host->backlog = script->backlog;
    host->backlog_mode = script->backlog_refuse ? SIM_BACKLOG_REFUSE : SIM_BACKLOG_TIMEOUT;
    host->nchoices = script->nchoices;
    for (i = 0; i < script->nchoices; i++) {
        assert(script->choices[i].mode >= 0 && script->choices[i].mode <= SCN_CONNECT_NO_ROUTE);
        host->choices[i].mode = modes[script->choices[i].mode];
        host->choices[i].ppm = script->choices[i].ppm;
    }
}

/* sim_remote_create - put the scripted host on the network */
struct sim_remote *sim_remote_create(struct sim_sched *sched, struct sim_net *n,
                                     const struct scn_remote *script,
                                     sim_trace_fn trace, void *trace_arg)
{
    struct sim_remote *r;
    struct sim_host host;

    assert(sched != NULL && n != NULL && script != NULL);
    assert(script->nreplies >= 0);
    r = calloc(1, sizeof *r);
    if (r == NULL)
        remote_die("sim_remote_create", "out of memory");
    r->sched = sched;
    r->net = n;
    r->script = script;
    r->trace = trace;
    r->trace_arg = trace_arg;
    r->counts_attempts = trace != NULL || script_uses_attempts(script);
    mta_ip_format(script->addr, r->addr);
    snprintf(r->name, sizeof r->name, "%s", script->name ? script->name : r->addr);

    memset(&host, 0, sizeof host);
    host.addr = script->addr;
    host.port = 25;
    host.latency = script->latency;
    remote_network(&host, script);
    remote_seed_replies(r, sim_net_seed(n));
    remote_prepare_replies(r);
    switch (script->connect) {
    case SCN_CONNECT_ACCEPT: host.mode = SIM_CONNECT_ACCEPT; break;
    case SCN_CONNECT_REFUSE: host.mode = SIM_CONNECT_REFUSE; break;
    case SCN_CONNECT_TIMEOUT: host.mode = SIM_CONNECT_TIMEOUT; break;
    case SCN_CONNECT_UNREACHABLE: host.mode = SIM_CONNECT_UNREACHABLE; break;
    case SCN_CONNECT_NO_ROUTE: host.mode = SIM_CONNECT_NO_ROUTE; break;
    default: remote_die("sim_remote_create", "bad connect mode");
    }
    host.accept = remote_accept;
    host.accept_arg = r;
    if (sim_net_add_host(n, &host) < 0) {
        remote_free_replies(r);
        free(r->reply_rng);
        free(r);
        return NULL;
    }
    return r;
}

/* sim_remote_destroy - close every session still open and free the remote */
void sim_remote_destroy(struct sim_remote *r)
{
    size_t bound, i;

    if (r == NULL)
        return;
    bound = r->nlive;
    while (r->first != NULL) {
        assert(bound-- > 0);
        session_finish(r->first);
    }
    assert(r->nlive == 0);
    for (i = 0; i < r->attempts_cap; i++)
        free(r->attempts[i].key);
    free(r->attempts);
    remote_free_replies(r);
    free(r->reply_rng);
    free(r);
}

/* sim_remote_sessions - connections this remote accepted so far */
int sim_remote_sessions(const struct sim_remote *r)
{
    return r->sessions;
}
