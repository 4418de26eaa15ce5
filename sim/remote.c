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
 *   "554 5.5.1 Error: no valid recipients".  EHLO, HELO, a 2xx RSET and the
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
 * DIAGNOSTICS
 *   Broken invariants print "sim_remote_<fn>: ..." and abort.
 *   sim_remote_create() returns NULL when a host with the script's
 *   address is already on the network.
 */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <regex.h>

#include <openssl/evp.h>

#include "prng.h"
#include "remote.h"

#define SIM_REMOTE_MAX_LINE 4096
#define SIM_REMOTE_MAX_BODY ((size_t) 64 << 20)
#define SIM_REMOTE_MAX_REPLIES 1024
#define SIM_REMOTE_MAX_FROM 512
#define SIM_REMOTE_MAX_MSGID 998
#define SIM_REMOTE_MAX_NAME 256
#define SIM_REMOTE_MAX_ATTEMPT_KEYS (16L << 20)    /* distinct (sender, recipient) pairs */
#define SIM_REMOTE_PURPOSE_MAX 64

enum session_state { S_GREETING, S_COMMAND, S_REJECTED, S_DATA, S_BDAT, S_CLOSING };

enum reply_phase { R_WAITING, R_TIMING, R_READY };

/* Replies this short are copied into the reply itself. */
#define SIM_REPLY_INLINE 96

/* One reply on its way out.  Replies are recycled through the remote's
 * spare list: a large run queues one per command. */
struct sim_reply {
    struct sim_reply *next;
    sim_usec delay;
    enum reply_phase phase;
    int close_after;            /* QUIT reply or 421: close once written */
    enum scn_action action;     /* REPLY (bytes), or RESET DROP CLOSE instead */
    const char *bytes;          /* the remote's prepared wire text, small[] or owned */
    size_t len;
    char *owned;                /* a long transient reply's copy, else NULL */
    char small[SIM_REPLY_INLINE];
};

/* A reply's wire text prepared once per remote: lines joined with CRLF. */
struct wire_text {
    char *bytes;
    size_t len;
};

struct sim_session {
    struct sim_remote *remote;
    struct sim_session *prev, *next;    /* the remote's live list */
    sim_ep *ep;
    int number;                         /* 1, 2, ... per remote */
    enum session_state state;
    /* line assembly (the buffer itself is the last member) */
    size_t line_len;
    int line_overflow;                  /* command too long: skipping to LF */
    int line_continued;                 /* DATA: this line continues a flushed chunk */
    int last_was_cr;                    /* the byte before this one was CR */
    int bare_lf_reported;
    /* transaction */
    int has_mail;
    char *mail_from;                    /* kept only when something reads it */
    long rcpts;
    char *body;
    size_t body_len, body_cap;
    int body_overflow;
    /* BDAT (RFC 3030): raw octets still to read for the current chunk */
    size_t bdat_left;
    int bdat_last;
    const char *bdat_refusal;           /* the reply once the chunk is read, NULL if taken */
    /* replies */
    struct sim_reply *rq_head, *rq_tail;
    size_t rq_len;
    sim_event_id reply_timer;
    /* script conditions */
    long nth[SCN_CMD__COUNT];           /* commands of each kind received so far */
    long attempt;                       /* this transaction's; 0 = no RCPT yet */
    const char *rcpt_addr;              /* RCPT being answered (valid during the choice) */
    /* faults and closing */
    unsigned long long bytes_in;        /* received from the client */
    unsigned long long fault_bytes;     /* act once this many arrived; 0 = never */
    enum scn_action fault_bytes_action;
    sim_event_id fault_timer;
    enum scn_action fault_timer_action;
    sim_event_id close_timer;           /* slow close: the FIN is due */
    int ep_gone;                        /* reset: the endpoint is released already */
    /* Last, and never zeroed: only line[0 .. line_len) is ever read. */
    char line[SIM_REMOTE_MAX_LINE];
};

/* Transactions seen per (MAIL FROM, first RCPT TO): the attempt counter.
 * Kept in an open-addressing table (a remote may see millions of pairs in
 * a benchmark), and only when something reads it: a "when attempt"
 * condition, or the trace. */
struct attempt_key {
    char *key;              /* FROM '\0' RCPT, NULL = empty slot */
    size_t keylen;
    uint64_t hash;
    long count;
};

struct sim_remote {
    struct sim_sched *sched;
    struct sim_net *net;
    const struct scn_remote *script;
    sim_trace_fn trace;
    void *trace_arg;
    char name[SIM_REMOTE_MAX_NAME];     /* for the default replies */
    char addr[16];                      /* dotted quad */
    int sessions;
    struct sim_session *first, *last;
    size_t nlive;
    struct sim_prng *reply_rng;         /* one per scripted line, used if it has a probability */
    struct attempt_key *attempts;       /* the table: attempts_cap slots, a power of two */
    size_t nattempts, attempts_cap;
    int counts_attempts;                /* the script or the trace reads attempts */
    int reads_rcpt;                     /* a "when rcpt" condition reads the address */
    struct wire_text default_wire[SCN_CMD__COUNT];  /* default replies with the name in */
    struct wire_text *reply_wire;       /* per scripted line: its wire text, or none */
    regex_t *cond_re;                   /* per scripted line: SCN_MAX_CONDS compiled "when rcpt" */
    struct sim_reply *spare;            /* recycled replies */
};

/* Default replies (remote.h); "%s" is the remote's name. */
static const char *const default_reply[SCN_CMD__COUNT] = {
    [SCN_CMD_GREET] = "220 %s ESMTP mtasim\r\n",
    [SCN_CMD_EHLO] = "250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n",
    [SCN_CMD_HELO] = "250 %s\r\n",
    [SCN_CMD_MAIL] = "250 2.1.0 Ok\r\n",
    [SCN_CMD_RCPT] = "250 2.1.5 Ok\r\n",
    [SCN_CMD_DATA] = "354 End data with <CR><LF>.<CR><LF>\r\n",
    [SCN_CMD_DOT] = "250 2.0.0 Ok: queued\r\n",
    [SCN_CMD_RSET] = "250 2.0.0 Ok\r\n",
    [SCN_CMD_NOOP] = "250 2.0.0 Ok\r\n",
    [SCN_CMD_QUIT] = "221 2.0.0 Bye\r\n",
    [SCN_CMD_UNKNOWN] = "502 5.5.2 Error: command not recognized\r\n",
};
static const int default_code[SCN_CMD__COUNT] = {
    [SCN_CMD_GREET] = 220, [SCN_CMD_EHLO] = 250, [SCN_CMD_HELO] = 250,
    [SCN_CMD_MAIL] = 250, [SCN_CMD_RCPT] = 250, [SCN_CMD_DATA] = 354,
    [SCN_CMD_DOT] = 250, [SCN_CMD_RSET] = 250, [SCN_CMD_NOOP] = 250,
    [SCN_CMD_QUIT] = 221, [SCN_CMD_UNKNOWN] = 502,
};

/* Verbs, matched case-insensitively on the first word of a line. */
static const struct { const char *verb; enum scn_cmd cmd; } verbs[] = {
    { "EHLO", SCN_CMD_EHLO }, { "HELO", SCN_CMD_HELO }, { "MAIL", SCN_CMD_MAIL },
    { "RCPT", SCN_CMD_RCPT }, { "DATA", SCN_CMD_DATA }, { "RSET", SCN_CMD_RSET },
    { "NOOP", SCN_CMD_NOOP }, { "QUIT", SCN_CMD_QUIT },
};

/* remote_die - report a broken contract and stop loudly */
static void remote_die(const char *fn, const char *what)
{
    fprintf(stderr, "%s: %s\n", fn, what);
    abort();
}

/* ---- trace records ------------------------------------------------------ */

/* A record under construction, with room for its number strings. */
struct remote_tb {
    int off;                    /* no trace sink: build nothing */
    struct mta_trace_rec rec;
    char nums[MTA_TRACE_MAX_FIELDS][24];
};

/* tb_str - add a string field (referenced, not copied) */
static void tb_str(struct remote_tb *tb, const char *key, const char *str, size_t len)
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
static void tb_num(struct remote_tb *tb, const char *key, int64_t num)
{
    int i = tb->rec.nfields;
    int n;

    if (tb->off)
        return;
    assert(i < MTA_TRACE_MAX_FIELDS);
    n = snprintf(tb->nums[i], sizeof tb->nums[i], "%" PRId64, num);
    assert(n > 0 && (size_t) n < sizeof tb->nums[i]);
    tb_str(tb, key, tb->nums[i], (size_t) n);
    tb->rec.field[i].num = num;
    tb->rec.field[i].has_num = 1;
}

/* tb_begin - start a "remote NAME" record with remote= and session= */
static void tb_begin(struct remote_tb *tb, const struct sim_session *s, const char *name)
{
    /* Without a sink nothing is built: tracing off costs nothing. */
    tb->off = s->remote->trace == NULL;
    if (tb->off)
        return;
    memset(&tb->rec, 0, sizeof tb->rec);
    tb->rec.kind = "remote";
    tb->rec.name = name;
    tb_str(tb, "remote", s->remote->addr, strlen(s->remote->addr));
    tb_num(tb, "session", s->number);
}

/* tb_emit - hand the record to the trace sink, if there is one */
static void tb_emit(struct remote_tb *tb, const struct sim_remote *r)
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
static void session_queue(struct sim_session *s, const char *bytes, size_t len,
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
static void session_queue_action(struct sim_session *s, enum scn_action action, sim_usec delay)
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
static void session_queue_str(struct sim_session *s, const char *reply)
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
        rc = sim_ep_send(s->ep, rp->bytes, rp->len);
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
    rc = sim_ep_send(s->ep, buf, len);
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

/* ---- script ------------------------------------------------------------- */

/* cond_compare - v OP value */
static int cond_compare(enum scn_op op, long v, long value)
{
    switch (op) {
    case SCN_OP_EQ: return v == value;
    case SCN_OP_NE: return v != value;
    case SCN_OP_LT: return v < value;
    case SCN_OP_LE: return v <= value;
    case SCN_OP_GT: return v > value;
    case SCN_OP_GE: return v >= value;
    case SCN_OP_RE: return 0;   /* not meaningful for a number */
    }
    return 0;
}

/* cond_holds - does one "when" condition hold for this session and command?
 * re is its compiled regex (a "when rcpt"), else NULL */
static int cond_holds(const struct scn_cond *c, const regex_t *re, const struct sim_session *s,
                      enum scn_cmd cmd)
{
    switch (c->kind) {
    case SCN_COND_SESSION: return cond_compare(c->op, s->number, c->value);
    case SCN_COND_ATTEMPT: return cond_compare(c->op, s->attempt, c->value);
    case SCN_COND_NTH: return cond_compare(c->op, s->nth[cmd], c->value);
    case SCN_COND_RCPT:
        assert(re != NULL);
        return s->rcpt_addr != NULL && regexec(re, s->rcpt_addr, 0, NULL, 0) == 0;
    }
    remote_die("cond_holds", "unknown condition");
    return 0;
}

/* script_choose - the first scripted reply for cmd whose conditions hold; its
 * index in *index */
static const struct scn_reply *script_choose(const struct sim_session *s, enum scn_cmd cmd,
                                             int *index)
{
    const struct scn_remote *script = s->remote->script;
    int i, j;

    for (i = 0; i < script->nreplies; i++) {
        const struct scn_reply *rep = &script->replies[i];
        int ok = 1;

        if (rep->cmd != cmd)
            continue;
        assert(rep->nconds >= 0 && rep->nconds <= SCN_MAX_CONDS);
        for (j = 0; j < rep->nconds && ok; j++)
            ok = cond_holds(&rep->conds[j], &s->remote->cond_re[i * SCN_MAX_CONDS + j], s, cmd);
        /* The draw comes last: only a line otherwise chosen consumes one. */
        if (ok && rep->has_ppm)
            ok = sim_prng_chance(&s->remote->reply_rng[i], rep->ppm);
        if (ok) {
            *index = i;
            return rep;
        }
    }
    return NULL;
}

/* session_answer - queue the reply to cmd (script or default); its code */
static int session_answer(struct sim_session *s, enum scn_cmd cmd)
{
    const struct sim_remote *r = s->remote;
    const struct scn_reply *rep;
    int index = -1;

    assert(cmd >= 0 && cmd < SCN_CMD__COUNT);
    rep = script_choose(s, cmd, &index);
    if (rep == NULL) {
        const struct wire_text *w = &r->default_wire[cmd];

        session_queue(s, w->bytes, w->len, 0, cmd == SCN_CMD_QUIT, 1);
        return default_code[cmd];
    } else if (rep->action == SCN_ACTION_RAW) {
        /* Byte for byte: the point is to send what no RFC allows. */
        assert(rep->nlines == 1 && rep->raw_len > 0);
        session_queue(s, rep->lines[0], rep->raw_len, rep->delay, cmd == SCN_CMD_QUIT, 1);
        return rep->code;
    } else if (rep->action != SCN_ACTION_REPLY) {
        session_queue_action(s, rep->action, rep->delay);
        return 0;
    } else {
        const struct wire_text *w = &r->reply_wire[index];

        session_queue(s, w->bytes, w->len, rep->delay, cmd == SCN_CMD_QUIT, 1);
        return rep->code;
    }
}

/* ---- transaction -------------------------------------------------------- */

/* session_reset_transaction - forget MAIL, RCPTs and body */
static void session_reset_transaction(struct sim_session *s)
{
    s->has_mail = 0;
    free(s->mail_from);
    s->mail_from = NULL;
    s->rcpts = 0;
    s->attempt = 0;
    s->body_len = 0;
    s->body_overflow = 0;
}

/* parse_path - the address of "MAIL FROM:<addr>" or "RCPT TO:<addr>", brackets removed */
static char *parse_path(const char *line, size_t len, const char *prefix)
{
    const char *p = line, *end = line + len, *start;
    size_t plen = strlen(prefix);
    size_t n;
    char *out;

    if (len < plen || strncasecmp(line, prefix, plen) != 0) {
        out = strdup("");
        if (out == NULL)
            remote_die("parse_path", "out of memory");
        return out;
    }
    p += plen;
    while (p < end && *p == ' ')
        p++;
    if (p < end && *p == '<') {
        start = ++p;
        while (p < end && *p != '>')
            p++;
    } else {
        start = p;
        while (p < end && *p != ' ')
            p++;
    }
    n = (size_t) (p - start);
    if (n > SIM_REMOTE_MAX_FROM)
        n = SIM_REMOTE_MAX_FROM;
    out = strndup(start, n);
    if (out == NULL)
        remote_die("parse_path", "out of memory");
    return out;
}

/* body_append - add bytes to the body, stopping at the size cap */
static void body_append(struct sim_session *s, const char *data, size_t len)
{
    if (s->body_overflow)
        return;
    if (len > SIM_REMOTE_MAX_BODY - s->body_len) {
        s->body_overflow = 1;
        return;
    }
    if (s->remote->trace == NULL) {
        s->body_len += len;     /* only the trace reads the body itself */
        return;
    }
    if (s->body_len + len > s->body_cap) {
        size_t cap = s->body_cap ? s->body_cap : 4096;

        while (cap < s->body_len + len)
            cap *= 2;
        if (cap > SIM_REMOTE_MAX_BODY)
            cap = SIM_REMOTE_MAX_BODY;
        s->body = realloc(s->body, cap);
        if (s->body == NULL)
            remote_die("body_append", "out of memory");
        s->body_cap = cap;
    }
    memcpy(s->body + s->body_len, data, len);
    s->body_len += len;
}

/* find_message_id - the Message-ID header value as written, or "" */
static size_t find_message_id(const char *body, size_t len, const char **value)
{
    size_t pos = 0;
    size_t bound = len + 1;

    *value = "";
    /* Header lines, up to the empty line that ends them. */
    while (pos < len && bound-- > 0) {
        const char *line = body + pos;
        const char *eol = memchr(line, '\n', len - pos);
        size_t llen = eol ? (size_t) (eol - line) : len - pos;
        size_t next = pos + llen + (eol ? 1 : 0);

        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (llen == 0)
            break;
        if (llen >= 11 && strncasecmp(line, "Message-ID:", 11) == 0) {
            const char *v = line + 11, *e = line + llen;

            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (v == e && next < len && (body[next] == ' ' || body[next] == '\t')) {
                /* Folded: "Message-ID:" CRLF " <id>" - take the next line. */
                const char *l2 = body + next;
                const char *eol2 = memchr(l2, '\n', len - next);

                v = l2;
                e = eol2 ? eol2 : body + len;
                if (e > v && e[-1] == '\r')
                    e--;
                while (v < e && (*v == ' ' || *v == '\t'))
                    v++;
                while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                    e--;
            }
            *value = v;
            return (size_t) (e - v) > SIM_REMOTE_MAX_MSGID ? SIM_REMOTE_MAX_MSGID
                                                            : (size_t) (e - v);
        }
        pos = next;
    }
    return 0;
}

/* sha256_hex - lowercase hex SHA-256 of data into out[65] */
static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    unsigned int i;
    static const char hex[] = "0123456789abcdef";

    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        remote_die("sha256_hex", "EVP_Digest failed");
    for (i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[64] = '\0';
}

/* session_trace_message - "remote message ..." for an accepted message */
static void session_trace_message(struct sim_session *s)
{
    struct remote_tb tb;
    const char *msgid;
    size_t msgid_len;
    char sha[65];
    const char *from = s->mail_from ? s->mail_from : "";

    if (s->remote->trace == NULL)
        return;
    msgid_len = find_message_id(s->body ? s->body : "", s->body_len, &msgid);
    sha256_hex(s->body ? s->body : "", s->body_len, sha);
    tb_begin(&tb, s, "message");
    tb_str(&tb, "from", from, strlen(from));
    tb_num(&tb, "rcpts", s->rcpts);
    tb_num(&tb, "size", (int64_t) s->body_len);
    tb_str(&tb, "message_id", msgid, msgid_len);
    tb_str(&tb, "body_sha256", sha, 64);
    tb_emit(&tb, s->remote);
}

/* session_end_of_data - the line "." arrived */
static void session_end_of_data(struct sim_session *s)
{
    int code;

    assert(s->state == S_DATA);
    s->state = S_COMMAND;
    s->nth[SCN_CMD_DOT]++;
    if (s->body_overflow) {
        session_queue_str(s, "552 5.3.4 Message size exceeds fixed limit\r\n");
    } else {
        code = session_answer(s, SCN_CMD_DOT);
        if (code >= 200 && code < 300)
            session_trace_message(s);
    }
    session_reset_transaction(s);
}

/* session_bdat_done - the chunk's octets are all in: answer it */
static void session_bdat_done(struct sim_session *s)
{
    assert(s->state == S_BDAT && s->bdat_left == 0);
    s->state = S_COMMAND;
    if (s->bdat_refusal) {
        session_queue_str(s, s->bdat_refusal);
        return;
    }
    if (!s->bdat_last) {
        char reply[80];
        snprintf(reply, sizeof reply, "250 2.0.0 %zu octets received\r\n", s->body_len);
        session_queue_str(s, reply);
        return;
    }
    /* The last chunk ends the message like the "." of DATA. */
    s->state = S_DATA;
    session_end_of_data(s);
}

/* session_data_line - one body line (or a chunk of a long one) */
static void session_data_line(struct sim_session *s, const char *text, size_t len, int complete)
{
    if (!s->line_continued) {
        if (complete && len == 1 && text[0] == '.') {
            session_end_of_data(s);
            return;
        }
        /* RFC 5321 4.5.2: remove the stuffed leading dot. */
        if (len > 0 && text[0] == '.') {
            text++;
            len--;
        }
    }
    body_append(s, text, len);
    if (complete) {
        body_append(s, "\r\n", 2);
        s->line_continued = 0;
    } else {
        s->line_continued = 1;
    }
}

/* command_of - the command a line's first word names */
static enum scn_cmd command_of(const char *line, size_t len)
{
    char verb[4];
    size_t i;

    /* Every verb is four letters: compare upper-cased copies, not strncasecmp
     * per verb (it runs for every command of a large run). */
    if (len < 4 || (len > 4 && line[4] != ' '))
        return SCN_CMD_UNKNOWN;
    for (i = 0; i < 4; i++)
        verb[i] = (char) toupper((unsigned char) line[i]);
    for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (memcmp(verb, verbs[i].verb, 4) == 0)
            return verbs[i].cmd;
    return SCN_CMD_UNKNOWN;
}

/* script_uses_attempts - does a reply depend on "when attempt"? */
static int script_uses_attempts(const struct scn_remote *script)
{
    for (int i = 0; i < script->nreplies; i++)
        for (int k = 0; k < script->replies[i].nconds; k++)
            if (script->replies[i].conds[k].kind == SCN_COND_ATTEMPT)
                return 1;
    return 0;
}

/* attempt_slot - where key (hash h) is in the table, or the empty slot for it */
static struct attempt_key *attempt_slot(struct attempt_key *t, size_t cap, const char *key,
                                        size_t keylen, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (t[i].key != NULL &&
           !(t[i].hash == h && t[i].keylen == keylen && memcmp(t[i].key, key, keylen) == 0))
        i = (i + 1) & (cap - 1);
    return &t[i];
}

/* attempt_grow - double the table (keys keep their hashes) */
static void attempt_grow(struct sim_remote *r)
{
    size_t cap = r->attempts_cap ? r->attempts_cap * 2 : 64;
    struct attempt_key *t = calloc(cap, sizeof *t);
    if (t == NULL)
        remote_die("attempt_grow", "out of memory");
    for (size_t i = 0; i < r->attempts_cap; i++)
        if (r->attempts[i].key != NULL)
            *attempt_slot(t, cap, r->attempts[i].key, r->attempts[i].keylen,
                          r->attempts[i].hash) = r->attempts[i];
    free(r->attempts);
    r->attempts = t;
    r->attempts_cap = cap;
}

/* attempt_next - count one more transaction for (from, rcpt); its number */
static long attempt_next(struct sim_remote *r, const char *from, const char *rcpt)
{
    size_t fl = strlen(from), rl = strlen(rcpt), keylen = fl + 1 + rl;
    char *key = malloc(keylen + 1);
    if (key == NULL)
        remote_die("attempt_next", "out of memory");
    memcpy(key, from, fl + 1);
    memcpy(key + fl + 1, rcpt, rl + 1);
    uint64_t h = 1469598103934665603ULL;           /* FNV-1a */
    for (size_t i = 0; i < keylen; i++)
        h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
    if (2 * (r->nattempts + 1) > r->attempts_cap)
        attempt_grow(r);
    struct attempt_key *k = attempt_slot(r->attempts, r->attempts_cap, key, keylen, h);
    if (k->key != NULL) {
        free(key);
        return ++k->count;
    }
    if (r->nattempts >= (size_t)SIM_REMOTE_MAX_ATTEMPT_KEYS)
        remote_die("attempt_next", "too many distinct transactions");
    *k = (struct attempt_key){ key, keylen, h, 1 };
    r->nattempts++;
    return 1;
}

/* session_rcpt - a RCPT inside a transaction: fix the attempt, answer it */
static void session_rcpt(struct sim_session *s, const char *line, size_t len)
{
    /* The address matters only to a condition or the attempt counter. */
    char *addr = s->remote->counts_attempts || s->remote->reads_rcpt
               ? parse_path(line, len, "RCPT TO:") : NULL;
    int code;

    if (s->attempt == 0 && s->remote->counts_attempts) {
        /* The first RCPT completes the transaction's key. */
        struct remote_tb tb;

        s->attempt = attempt_next(s->remote, s->mail_from ? s->mail_from : "", addr);
        tb_begin(&tb, s, "attempt");
        tb_str(&tb, "from", s->mail_from ? s->mail_from : "",
               s->mail_from ? strlen(s->mail_from) : 0);
        tb_str(&tb, "rcpt", addr, strlen(addr));
        tb_num(&tb, "attempt", s->attempt);
        tb_emit(&tb, s->remote);
    }
    s->rcpt_addr = addr;
    code = session_answer(s, SCN_CMD_RCPT);
    s->rcpt_addr = NULL;
    free(addr);
    if (code >= 200 && code < 300)
        s->rcpts++;
}

/* session_command - one complete command line (CRLF removed) */
static void session_command(struct sim_session *s, const char *line, size_t len)
{
    enum scn_cmd cmd = command_of(line, len);
    int code;

    assert(s->state == S_COMMAND || s->state == S_REJECTED);
    assert(cmd >= 0 && cmd < SCN_CMD__COUNT);
    s->nth[cmd]++;
    if (s->state == S_REJECTED && cmd != SCN_CMD_QUIT) {
        /* RFC 5321 4.3.1: after a failure greeting only QUIT succeeds. */
        session_queue_str(s, "503 5.5.1 Error: bad sequence of commands\r\n");
        return;
    }
    switch (cmd) {
    case SCN_CMD_EHLO:
    case SCN_CMD_HELO:
        session_reset_transaction(s);
        session_answer(s, cmd);
        break;
    case SCN_CMD_MAIL:
        if (s->has_mail) {
            session_queue_str(s, "503 5.5.1 Error: nested MAIL command\r\n");
            break;
        }
        code = session_answer(s, cmd);
        if (code >= 200 && code < 300) {
            s->has_mail = 1;
            /* Read by the attempt counter and the trace only. */
            if (s->remote->counts_attempts)
                s->mail_from = parse_path(line, len, "MAIL FROM:");
        }
        break;
    case SCN_CMD_RCPT:
        if (!s->has_mail) {
            session_queue_str(s, "503 5.5.1 Error: need MAIL command\r\n");
            break;
        }
        session_rcpt(s, line, len);
        break;
    case SCN_CMD_DATA:
        if (!s->has_mail) {
            session_queue_str(s, "503 5.5.1 Error: need MAIL command\r\n");
            break;
        }
        if (s->rcpts == 0) {
            session_queue_str(s, "554 5.5.1 Error: no valid recipients\r\n");
            break;
        }
        code = session_answer(s, cmd);
        if (code >= 300 && code < 400 && s->state != S_CLOSING) {
            s->state = S_DATA;
            s->body_len = 0;
            s->body_overflow = 0;
            s->line_continued = 0;
        }
        break;
    case SCN_CMD_RSET:
        code = session_answer(s, cmd);
        if (code >= 200 && code < 300)
            session_reset_transaction(s);
        break;
    case SCN_CMD_NOOP:
    case SCN_CMD_QUIT:
    case SCN_CMD_UNKNOWN:
        session_answer(s, cmd);
        break;
    case SCN_CMD_GREET:
    case SCN_CMD_DOT:
    case SCN_CMD__COUNT:
        remote_die("session_command", "impossible command");
    }
}

/* session_bare_lf - note a line ended by LF alone (once per session) */
static void session_bare_lf(struct sim_session *s)
{
    struct remote_tb tb;

    if (s->bare_lf_reported)
        return;
    s->bare_lf_reported = 1;
    tb_begin(&tb, s, "bare_lf");
    tb_emit(&tb, s->remote);
}

/* session_bdat_command - "BDAT SIZE [LAST]": read SIZE raw octets next
 *
 * The chunk is always read, even when it is refused (no MAIL, no valid
 * recipient, a bad size), so the session stays in step with the client. */
static void session_bdat_command(struct sim_session *s, const char *line, size_t len)
{
    char buf[64];
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    unsigned long long size = 0;
    char last[8] = "";
    memcpy(buf, line, n);
    buf[n] = '\0';
    int k = sscanf(buf + 4, " %llu %7s", &size, last);
    if (k < 1 || size > SIM_REMOTE_MAX_BODY || (k == 2 && strcasecmp(last, "LAST") != 0)) {
        session_queue_str(s, "501 5.5.4 Syntax: BDAT size [LAST]\r\n");
        return;
    }
    s->bdat_left = (size_t)size;
    s->bdat_last = k == 2;
    s->bdat_refusal = !s->has_mail ? "503 5.5.1 Error: need MAIL command\r\n"
                    : s->rcpts == 0 ? "554 5.5.1 Error: no valid recipients\r\n" : NULL;
    s->state = S_BDAT;
    if (s->bdat_left == 0)
        session_bdat_done(s);
}

/* session_line - a LF arrived: act on line[0..len), the LF excluded */
static void session_line(struct sim_session *s, const char *line, size_t len)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    else if (!(s->line_overflow && s->last_was_cr))
        session_bare_lf(s);
    if (s->state == S_DATA) {
        session_data_line(s, line, len, 1);
        return;
    }
    if (s->line_overflow) {
        s->line_overflow = 0;
        session_queue_str(s, "500 5.5.2 Line too long\r\n");
        return;
    }
    if (len >= 4 && (line[0] == 'B' || line[0] == 'b') && strncasecmp(line, "BDAT", 4) == 0
        && (len == 4 || line[4] == ' ') && s->state == S_COMMAND) {
        session_bdat_command(s, line, len);
        return;
    }
    session_command(s, line, len);
}

/* session_line_end - a LF arrived: act on the assembled line */
static void session_line_end(struct sim_session *s)
{
    size_t len = s->line_len;

    s->line_len = 0;
    session_line(s, s->line, len);
}

/* session_line_full - the line buffer is full and no LF yet */
static void session_line_full(struct sim_session *s)
{
    assert(s->line_len == SIM_REMOTE_MAX_LINE);
    if (s->state == S_DATA) {
        /* Stream long body lines; keep a trailing CR, it may start CRLF. */
        size_t keep = s->line[s->line_len - 1] == '\r' ? 1 : 0;

        session_data_line(s, s->line, s->line_len - keep, 0);
        if (keep)
            s->line[0] = '\r';
        s->line_len = keep;
        return;
    }
    /* A command this long is garbage: skip to its end, then say so. */
    s->line_overflow = 1;
    s->line_len = 0;
}

/* session_feed - bytes from the client, handled line by line */
static void session_feed(struct sim_session *s, const char *data, size_t len)
{
    size_t i = 0;

    /* A run of bytes up to the next LF at a time (memchr), not byte by
     * byte: the message body passes through here.  Every iteration
     * consumes at least one byte, so the loop ends. */
    while (i < len) {
        /* After QUIT or a 421 nothing more is read (pipelined leftovers). */
        if (s->state == S_CLOSING)
            return;
        if (s->state == S_BDAT) {
            /* Raw octets: no lines, no dot-stuffing (RFC 3030 2). */
            size_t take = len - i < s->bdat_left ? len - i : s->bdat_left;
            assert(take > 0);
            if (s->bdat_refusal == NULL)
                body_append(s, data + i, take);
            s->bdat_left -= take;
            i += take;
            if (s->bdat_left == 0)
                session_bdat_done(s);
            continue;
        }
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;   /* the run is data[i .. end) */
        if (nl != NULL && s->line_len == 0 && !s->line_overflow
            && end - i < SIM_REMOTE_MAX_LINE) {
            /* A whole line, shorter than the buffer: act on it where it is
             * (what assembling it would do, without the copy). */
            session_line(s, data + i, end - i);
            s->last_was_cr = 0;
            i = end + 1;
            continue;
        }
        if (end > i) {
            s->last_was_cr = data[end - 1] == '\r';
            if (!s->line_overflow) {
                /* Fill the line buffer; a full buffer is flushed (DATA) or
                 * turns into an overflow (a command), as byte by byte. */
                size_t at = i;
                while (at < end && !s->line_overflow) {
                    size_t room = SIM_REMOTE_MAX_LINE - s->line_len;
                    size_t n = end - at < room ? end - at : room;
                    memcpy(s->line + s->line_len, data + at, n);
                    s->line_len += n;
                    at += n;
                    if (s->line_len == SIM_REMOTE_MAX_LINE)
                        session_line_full(s);
                }
            }
        }
        i = end;
        if (nl) {
            session_line_end(s);
            s->last_was_cr = 0;
            i++;
        }
    }
}

/* ---- session life ------------------------------------------------------- */

/* session_trace_fault - "remote fault action=..." when the remote breaks the connection */
static void session_trace_fault(struct sim_session *s, enum scn_action action)
{
    static const char *const names[] = {
        [SCN_ACTION_RESET] = "reset", [SCN_ACTION_DROP] = "drop", [SCN_ACTION_CLOSE] = "close",
    };
    struct remote_tb tb;

    assert(action == SCN_ACTION_RESET || action == SCN_ACTION_DROP
           || action == SCN_ACTION_CLOSE);
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

/* session_act - reset, drop or close instead of replying; may free s */
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
        } else if (f->trigger == SCN_FAULT_AFTER_BYTES
                   && (s->fault_bytes == 0 || f->bytes < s->fault_bytes)) {
            s->fault_bytes = f->bytes;
            s->fault_bytes_action = f->action;
        }
    }
    if (at >= 0)
        s->fault_timer = sim_sched_at_kind(s->remote->sched, sim_sched_now(s->remote->sched) + at,
                                           session_fault_timer, s, SIM_EV_REMOTE);
}

/* session_receive - client bytes, up to an "after N bytes" fault; may free s */
static void session_receive(struct sim_session *s, const char *data, size_t len)
{
    if (s->fault_bytes > 0 && len >= s->fault_bytes - s->bytes_in) {
        /* Exactly N bytes reach the server, then its stack acts. */
        size_t take = (size_t) (s->fault_bytes - s->bytes_in);

        s->bytes_in += take;
        session_feed(s, data, take);
        session_act(s, s->fault_bytes_action);
        return;
    }
    s->bytes_in += len;
    session_feed(s, data, len);
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
        session_finish(s);
        break;
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
    /* Zero everything but the 4 KiB line buffer: one session per
     * connection, so this is on the hot path of a large run. */
    struct sim_session *s = malloc(sizeof *s);
    struct remote_tb tb;
    int code;

    if (s == NULL)
        remote_die("remote_accept", "out of memory");
    memset(s, 0, offsetof(struct sim_session, line));
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
    host->backlog = script->backlog;
    host->backlog_mode = script->backlog_refuse ? SIM_BACKLOG_REFUSE : SIM_BACKLOG_TIMEOUT;
    host->nchoices = script->nchoices;
    for (i = 0; i < script->nchoices; i++) {
        assert(script->choices[i].mode >= 0 && script->choices[i].mode <= SCN_CONNECT_NO_ROUTE);
        host->choices[i].mode = modes[script->choices[i].mode];
        host->choices[i].ppm = script->choices[i].ppm;
    }
}

/* remote_seed_replies - one stream per scripted line with a probability */
static void remote_seed_replies(struct sim_remote *r, uint64_t seed)
{
    const struct scn_remote *script = r->script;
    int k[SCN_CMD__COUNT] = { 0 };
    char purpose[SIM_REMOTE_PURPOSE_MAX];
    int i;

    r->reply_rng = calloc((size_t) (script->nreplies > 0 ? script->nreplies : 1),
                          sizeof *r->reply_rng);
    if (r->reply_rng == NULL)
        remote_die("sim_remote_create", "out of memory");
    for (i = 0; i < script->nreplies; i++) {
        const struct scn_reply *rep = &script->replies[i];

        if (!rep->has_ppm)
            continue;
        snprintf(purpose, sizeof purpose, "remote %s %s", r->addr, scn_cmd_names[rep->cmd]);
        sim_prng_init(&r->reply_rng[i], seed, purpose, (uint64_t) k[rep->cmd]++);
    }
}

/* wire_join - lines joined as they go on the wire, each with CRLF */
static struct wire_text wire_join(char *const *lines, int nlines)
{
    struct wire_text w = { NULL, 0 };
    size_t cap = 0;
    int i;

    for (i = 0; i < nlines; i++)
        cap += strlen(lines[i]) + 2;
    w.bytes = malloc(cap + 1);
    if (w.bytes == NULL)
        remote_die("sim_remote_create", "out of memory");
    for (i = 0; i < nlines; i++) {
        size_t l = strlen(lines[i]);

        memcpy(w.bytes + w.len, lines[i], l);
        w.len += l;
        w.bytes[w.len++] = '\r';
        w.bytes[w.len++] = '\n';
    }
    assert(w.len == cap);
    w.bytes[w.len] = '\0';
    return w;
}

/* remote_prepare_replies - every reply's wire text and every "when rcpt"
 * regex, once: a large run answers millions of commands */
static void remote_prepare_replies(struct sim_remote *r)
{
    const struct scn_remote *script = r->script;
    size_t n = (size_t) (script->nreplies > 0 ? script->nreplies : 1);
    int i, k;

    for (i = 0; i < SCN_CMD__COUNT; i++) {
        char buf[512];
        int len = snprintf(buf, sizeof buf, default_reply[i], r->name);

        assert(len > 0 && (size_t) len < sizeof buf);
        r->default_wire[i].bytes = strdup(buf);
        if (r->default_wire[i].bytes == NULL)
            remote_die("sim_remote_create", "out of memory");
        r->default_wire[i].len = (size_t) len;
    }
    r->reply_wire = calloc(n, sizeof *r->reply_wire);
    r->cond_re = calloc(n * SCN_MAX_CONDS, sizeof *r->cond_re);
    if (r->reply_wire == NULL || r->cond_re == NULL)
        remote_die("sim_remote_create", "out of memory");
    for (i = 0; i < script->nreplies; i++) {
        const struct scn_reply *rep = &script->replies[i];

        assert(rep->nlines >= 0 && rep->nlines <= SCN_MAX_REPLY_LINES);
        if (rep->action == SCN_ACTION_REPLY) {
            assert(rep->nlines >= 1);
            r->reply_wire[i] = wire_join(rep->lines, rep->nlines);
        }
        for (k = 0; k < rep->nconds; k++) {
            if (rep->conds[k].kind != SCN_COND_RCPT)
                continue;
            r->reads_rcpt = 1;
            /* The parser compiled it once already: failing now is a bug. */
            if (regcomp(&r->cond_re[i * SCN_MAX_CONDS + k], rep->conds[k].regex,
                        REG_EXTENDED | REG_NOSUB) != 0)
                remote_die("sim_remote_create", "regular expression does not compile");
        }
    }
}

/* remote_free_replies - undo remote_prepare_replies and empty the spare list */
static void remote_free_replies(struct sim_remote *r)
{
    const struct scn_remote *script = r->script;
    int i, k;

    for (i = 0; i < SCN_CMD__COUNT; i++)
        free(r->default_wire[i].bytes);
    for (i = 0; i < script->nreplies; i++) {
        if (r->reply_wire != NULL)
            free(r->reply_wire[i].bytes);
        for (k = 0; k < script->replies[i].nconds && r->cond_re != NULL; k++)
            if (script->replies[i].conds[k].kind == SCN_COND_RCPT)
                regfree(&r->cond_re[i * SCN_MAX_CONDS + k]);
    }
    free(r->reply_wire);
    free(r->cond_re);
    while (r->spare != NULL) {
        struct sim_reply *rp = r->spare;

        r->spare = rp->next;
        assert(rp->owned == NULL);
        free(rp);
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
    snprintf(r->addr, sizeof r->addr, "%u.%u.%u.%u",
             (script->addr >> 24) & 0xff, (script->addr >> 16) & 0xff,
             (script->addr >> 8) & 0xff, script->addr & 0xff);
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
