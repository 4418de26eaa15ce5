/*
 * remote_smtp - a scripted remote MTA's side of the SMTP dialogue
 *
 * DESCRIPTION
 *   What a session of a scripted remote (remote.c) says to each command:
 *   input cut into lines, commands recognised by their verb, the
 *   transaction order enforced as a real server does, message bodies
 *   collected (DATA and BDAT), the reply chosen from the script - the
 *   first line whose conditions hold, with its probability drawn from its
 *   own stream - or the defaults of remote.h, and queued through remote.c.
 *   Also the attempt counter per (MAIL FROM, first RCPT TO), and each
 *   scripted line's wire text, prepared once per remote.
 *
 *   Part of the scripted remote: remote.c describes the state machine,
 *   remote_internal.h what the two files share.
 */
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <regex.h>

#include <openssl/evp.h>

#include "prng.h"
#include "remote_internal.h"

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
    /* A command it recognizes but does not implement (VRFY, EXPN, HELP,
     * ...); one it does not recognize gets UNRECOGNIZED_REPLY instead. */
    [SCN_CMD_UNKNOWN] = "502 5.5.1 Error: command not implemented\r\n",
    /* Only with a "tls" line; without one STARTTLS is a known verb the
     * remote does not implement (SCN_CMD_UNKNOWN). */
    [SCN_CMD_STARTTLS] = "220 2.0.0 Ready to start TLS\r\n",
};
/* The default EHLO of a remote with a "tls" line, before TLS: RFC 3207
 * 4.2 - after the handshake the server MUST NOT offer STARTTLS again, so
 * the plain default answers then. */
#define EHLO_STARTTLS "250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n" \
                      "250 STARTTLS\r\n"
/* RFC 5321 4.2.4: 502 SHOULD be used for a command recognized but not
 * implemented; a command not recognized gets 500.  (Postfix answers 502 to
 * both; the RFC decides here.) */
#define UNRECOGNIZED_REPLY "500 5.5.2 Error: command not recognized\r\n"
/* Commands of RFC 5321 4.1 and common extensions this remote knows of but
 * does not implement: 502. */
static const char *const known_verbs[] = { "VRFY", "EXPN", "HELP", "TURN", "ETRN", "STARTTLS",
                                           "AUTH", "SEND", "SOML", "SAML", "BDAT" };
static const int default_code[SCN_CMD__COUNT] = {
    [SCN_CMD_GREET] = 220, [SCN_CMD_EHLO] = 250, [SCN_CMD_HELO] = 250,
    [SCN_CMD_MAIL] = 250, [SCN_CMD_RCPT] = 250, [SCN_CMD_DATA] = 354,
    [SCN_CMD_DOT] = 250, [SCN_CMD_RSET] = 250, [SCN_CMD_NOOP] = 250,
    [SCN_CMD_QUIT] = 221, [SCN_CMD_UNKNOWN] = 502, [SCN_CMD_STARTTLS] = 220,
};

/* Verbs, matched case-insensitively on the first word of a line. */
static const struct { const char *verb; enum scn_cmd cmd; } verbs[] = {
    { "EHLO", SCN_CMD_EHLO }, { "HELO", SCN_CMD_HELO }, { "MAIL", SCN_CMD_MAIL },
    { "RCPT", SCN_CMD_RCPT }, { "DATA", SCN_CMD_DATA }, { "RSET", SCN_CMD_RSET },
    { "NOOP", SCN_CMD_NOOP }, { "QUIT", SCN_CMD_QUIT },
};

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
int cond_holds(const struct scn_cond *c, const regex_t *re, const struct sim_session *s,
               enum scn_cmd cmd)
{
    switch (c->kind) {
    case SCN_COND_SESSION: return cond_compare(c->op, s->number, c->value);
    case SCN_COND_ATTEMPT: return cond_compare(c->op, s->attempt, c->value);
    case SCN_COND_NTH: return cond_compare(c->op, s->nth[cmd], c->value);
    case SCN_COND_TRANSACTION: return cond_compare(c->op, s->nth[SCN_CMD_MAIL], c->value);
    case SCN_COND_RCPT_NUM: return cond_compare(c->op, s->txn_rcpts, c->value);
    case SCN_COND_QUERY: break;     /* dns lines only: the parser keeps it out */
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

/* session_answer_or - queue the reply to cmd: the script's, else own (the
 * remote's protocol check, "CODE TEXT\r\n") when not NULL, else the default;
 * its code (0 for an action) */
static int session_answer_or(struct sim_session *s, enum scn_cmd cmd, const char *own)
{
    const struct sim_remote *r = s->remote;
    const struct scn_reply *rep;
    int index = -1;

    assert(cmd >= 0 && cmd < SCN_CMD__COUNT);
    rep = script_choose(s, cmd, &index);
    if (rep == NULL && own != NULL) {
        assert(strlen(own) > 3);
        session_queue_str(s, own);
        return (own[0] - '0') * 100 + (own[1] - '0') * 10 + (own[2] - '0');
    } else if (rep == NULL) {
        const struct wire_text *w = &r->default_wire[cmd];
        if (cmd == SCN_CMD_EHLO && r->script->ntls > 0 && s->tls == NULL)
            w = &r->ehlo_starttls_wire;

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

/* session_answer - queue the reply to cmd (script or default); its code */
int session_answer(struct sim_session *s, enum scn_cmd cmd)
{
    return session_answer_or(s, cmd, NULL);
}

/* verb_known - the line's first word is a command this remote knows of */
static int verb_known(const char *line, size_t len)
{
    size_t n = 0;

    while (n < len && line[n] != ' ' && line[n] != '\r')
        n++;
    for (size_t i = 0; i < sizeof known_verbs / sizeof known_verbs[0]; i++)
        if (n == strlen(known_verbs[i]) && strncasecmp(line, known_verbs[i], n) == 0)
            return 1;
    return 0;
}

/* ---- transaction -------------------------------------------------------- */

/* session_reset_transaction - forget MAIL, RCPTs and body */
static void session_reset_transaction(struct sim_session *s)
{
    s->has_mail = 0;
    free(s->mail_from);
    s->mail_from = NULL;
    s->rcpts = 0;
    s->txn_rcpts = 0;
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
    /* The script decides; where it is silent, a body over the size cap or
     * a transaction with no valid recipient (a scripted 354 let the data
     * in) is refused, as a real server would never accept it. */
    code = session_answer_or(s, SCN_CMD_DOT,
                             s->body_overflow ? "552 5.3.4 Message size exceeds fixed limit\r\n"
                             : s->rcpts == 0 ? "554 5.5.1 Error: no valid recipients\r\n" : NULL);
    if (code >= 200 && code < 300)
        session_trace_message(s);
    session_reset_transaction(s);
}

/* session_bdat_done - the chunk's octets are all in: answer it */
static void session_bdat_done(struct sim_session *s)
{
    assert(s->state == S_BDAT && s->bdat_left == 0);
    s->state = S_COMMAND;
    if (s->bdat_refusal && !(s->bdat_last && s->has_mail)) {
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
    if (len >= 8 && strncasecmp(line, "STARTTLS", 8) == 0 && (len == 8 || line[8] == ' '))
        return SCN_CMD_STARTTLS;
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
int script_uses_attempts(const struct scn_remote *script)
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

    if (s->attempt == 0 && s->has_mail && s->remote->counts_attempts) {
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
    code = session_answer_or(s, SCN_CMD_RCPT,
                             s->has_mail ? NULL : "503 5.5.1 Error: need MAIL command\r\n");
    s->rcpt_addr = NULL;
    free(addr);
    if (code >= 200 && code < 300)
        s->rcpts++;
}

/* script_answers - does the script have a reply line for cmd? */
static int script_answers(const struct scn_remote *script, enum scn_cmd cmd)
{
    for (int i = 0; i < script->nreplies; i++)
        if (script->replies[i].cmd == cmd)
            return 1;
    return 0;
}

/* session_starttls - RFC 3207 4: 220 and the handshake, or a refusal
 *
 * Without a "tls" line or a scripted "starttls" reply the remote does not
 * implement it: the reply of any unknown command.  A 220 turns the
 * session to TLS at once: the rest of what arrived with the command came
 * in the clear and is discarded (RFC 3207 5; session_feed), the
 * transaction is forgotten (4.2), and the next bytes are the handshake
 * (remote.c, session_tls_input). */
static void session_starttls(struct sim_session *s, size_t len)
{
    const struct scn_remote *script = s->remote->script;
    if (script->ntls == 0 && !script_answers(script, SCN_CMD_STARTTLS)) {
        session_answer(s, SCN_CMD_UNKNOWN);
        return;
    }
    const char *own = s->tls != NULL ? "554 5.5.1 Error: TLS already active\r\n"
                      : len > 8 ? "501 5.5.4 Syntax: STARTTLS\r\n" : NULL;
    int code = session_answer_or(s, SCN_CMD_STARTTLS, own);
    if (code != 220 || s->state == S_CLOSING || s->tls != NULL)
        return;
    s->tls = calloc(1, sizeof *s->tls);
    if (s->tls == NULL)
        remote_die("session_starttls", "out of memory");
    simtls_init(s->tls, SIMTLS_SERVER);
    session_reset_transaction(s);
}

/* session_command - one complete command line (CRLF removed) */
static void session_command(struct sim_session *s, const char *line, size_t len)
{
    enum scn_cmd cmd = command_of(line, len);
    int code;

    assert(s->state == S_COMMAND || s->state == S_REJECTED);
    assert(cmd >= 0 && cmd < SCN_CMD__COUNT);
    if (s->state == S_COMMAND && memchr(line, '\0', len) != NULL
        && (cmd == SCN_CMD_EHLO || cmd == SCN_CMD_HELO || cmd == SCN_CMD_MAIL
            || cmd == SCN_CMD_RCPT)) {
        /* RFC 5321 4.1.2: a domain or path holds no NUL; a syntax error in
         * the arguments is 501 (4.2.2).  The command is not taken: it does
         * not count for "nth" and reaches no scripted reply. */
        session_queue_str(s, "501 5.5.2 Error: NUL character in the command's argument\r\n");
        return;
    }
    s->nth[cmd]++;
    /* Each protocol check below is the remote's own reply only where the
     * script is silent: a scripted line that holds is always the reply
     * (docs/scenario-language.md, "Choosing a reply"). */
    if (s->state == S_REJECTED && cmd != SCN_CMD_QUIT) {
        /* RFC 5321 4.3.1: after a failure greeting only QUIT succeeds. */
        session_answer_or(s, cmd, "503 5.5.1 Error: bad sequence of commands\r\n");
        return;
    }
    switch (cmd) {
    case SCN_CMD_EHLO:
    case SCN_CMD_HELO:
        session_reset_transaction(s);
        session_answer(s, cmd);
        break;
    case SCN_CMD_MAIL:
        /* RFC 5321 4.1.4: MAIL inside a transaction is out of sequence. */
        code = session_answer_or(s, cmd, s->has_mail ? "503 5.5.1 Error: nested MAIL command\r\n"
                                                     : NULL);
        if (code >= 200 && code < 300) {
            s->has_mail = 1;
            s->rcpts = 0;
            s->txn_rcpts = 0;
            /* Read by the attempt counter and the trace only. */
            free(s->mail_from);
            s->mail_from = s->remote->counts_attempts ? parse_path(line, len, "MAIL FROM:") : NULL;
        }
        break;
    case SCN_CMD_RCPT:
        s->txn_rcpts++;
        session_rcpt(s, line, len);
        break;
    case SCN_CMD_DATA:
        /* RFC 5321 3.3: DATA needs a transaction with a valid recipient. */
        code = session_answer_or(s, cmd, !s->has_mail ? "503 5.5.1 Error: need MAIL command\r\n"
                                         : s->rcpts == 0 ? "554 5.5.1 Error: no valid recipients\r\n"
                                         : NULL);
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
        session_answer(s, cmd);
        break;
    case SCN_CMD_STARTTLS:
        session_starttls(s, len);
        break;
    case SCN_CMD_UNKNOWN:
        if (verb_known(line, len))
            session_answer(s, cmd);
        else
            session_answer_or(s, cmd, UNRECOGNIZED_REPLY);
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
    session_line(s, s->line ? s->line : "", len);     /* NULL until a line came split */
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
void session_feed(struct sim_session *s, const char *data, size_t len, int from_tls)
{
    size_t i = 0;

    /* A run of bytes up to the next LF at a time (memchr), not byte by
     * byte: the message body passes through here.  Every iteration
     * consumes at least one byte, so the loop ends. */
    while (i < len) {
        /* After QUIT or a 421 nothing more is read (pipelined leftovers);
         * after STARTTLS the rest came in the clear (RFC 3207 5). */
        if (s->state == S_CLOSING || (s->tls != NULL && !from_tls))
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
                if (s->line == NULL && (s->line = malloc(SIM_REMOTE_MAX_LINE)) == NULL)
                    remote_die("session_input", "out of memory");
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

/* remote_seed_replies - one stream per scripted line with a probability */
void remote_seed_replies(struct sim_remote *r, uint64_t seed)
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
void remote_prepare_replies(struct sim_remote *r)
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
    char ehlo[512];
    int elen = snprintf(ehlo, sizeof ehlo, EHLO_STARTTLS, r->name);
    assert(elen > 0 && (size_t)elen < sizeof ehlo);
    r->ehlo_starttls_wire.bytes = strdup(ehlo);
    if (r->ehlo_starttls_wire.bytes == NULL)
        remote_die("sim_remote_create", "out of memory");
    r->ehlo_starttls_wire.len = (size_t)elen;
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
void remote_free_replies(struct sim_remote *r)
{
    const struct scn_remote *script = r->script;
    int i, k;

    for (i = 0; i < SCN_CMD__COUNT; i++)
        free(r->default_wire[i].bytes);
    free(r->ehlo_starttls_wire.bytes);
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
