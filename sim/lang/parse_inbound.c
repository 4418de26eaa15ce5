/*
 * parse_inbound - the scenario parser's inbound side: listen, user, client
 *
 * DESCRIPTION
 *   The MTA's own SMTP server: "listen", "user" credentials, and "client"
 *   blocks, whose script lines become steps (bytes to send, replies to
 *   wait for, delays, disconnects); resolve_inbound() settles, once the
 *   whole input is read, where the server listens and what inbound message
 *   ids mean (docs/inbound.md).
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_internal.h"

/* do_listen - listen ADDR[:PORT] [max-recipients N] [max-size N] [max-errors N]
 * [timeout DUR] [require-auth]: the MTA's inbound SMTP server */
int do_listen(struct parser *p)
{
    const char *usage = "listen ADDR[:PORT] [max-recipients N] [max-size N] [max-errors N] "
                        "[timeout DURATION] [require-auth]";
    struct scn_listen *l = &p->sc->listen;
    if (need_args(p, 2, -1, usage) < 0)
        return -1;
    if (l->set)
        return fail_tok(p, &p->tok[0], "listen already given at %s:%d", l->pos.file, l->pos.line);
    const struct token *t = &p->tok[1];
    char addr[64];
    const char *colon = strchr(t->text, ':');
    size_t alen = colon ? (size_t)(colon - t->text) : strlen(t->text);
    struct in_addr in;
    if (t->quoted || alen >= sizeof addr)
        return fail_tok(p, t, "bad listen address '%s': expected ADDR or ADDR:PORT", t->text);
    memcpy(addr, t->text, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, &in) != 1)
        return fail_tok(p, t, "bad IPv4 address '%s'", addr);
    l->addr = ntohl(in.s_addr);
    l->port = 25;
    if (colon) {
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (!isdigit((unsigned char)colon[1]) || *end != '\0' || port < 1 || port > 65535)
            return fail_at(p, t->col + (int)alen + 1, "bad port '%s': expected 1 to 65535",
                           colon + 1);
        l->port = (uint16_t)port;
    }
    for (int i = 2; i < p->ntok; i++) {
        const struct token *k = &p->tok[i];
        unsigned long long n;
        if (is_word(k, "require-auth")) {
            l->opts.require_auth = 1;
            continue;
        }
        int known = is_word(k, "max-recipients") || is_word(k, "max-size") ||
                    is_word(k, "max-errors") || is_word(k, "timeout");
        if (!known)
            return fail_tok(p, k, "unexpected '%s': expected '%s'", k->text, usage);
        if (i + 1 >= p->ntok)
            return fail_at(p, after_last(p), "missing value after '%s'", k->text);
        const struct token *v = &p->tok[++i];
        if (is_word(k, "timeout")) {
            if (parse_duration(p, v, &l->opts.timeout) < 0)
                return -1;
            if (l->opts.timeout < 1000)
                return fail_tok(p, v, "timeout %s is too short: at least 1ms", v->text);
        } else if (is_word(k, "max-recipients")) {
            if (parse_unsigned(p, v, "recipient count", 1, 100000, &n) < 0)
                return -1;
            l->opts.max_recipients = (int)n;
        } else if (is_word(k, "max-size")) {
            if (parse_unsigned(p, v, "size", 1, 1ULL << 30, &n) < 0)
                return -1;
            l->opts.max_size = (long)n;
        } else {
            if (parse_unsigned(p, v, "error count", 1, 1000, &n) < 0)
                return -1;
            l->opts.max_errors = (int)n;
        }
    }
    l->set = 1;
    l->pos = here(p, p->tok[0].col);
    return 0;
}

/* do_user - user NAME PASSWORD: credentials AUTH accepts */
int do_user(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 3, 3, "user NAME PASSWORD") < 0)
        return -1;
    const struct token *name = &p->tok[1], *pw = &p->tok[2];
    if (name->text[0] == '\0' || strlen(name->text) > SCN_MAX_NAME)
        return fail_tok(p, name, "bad user name: 1 to %d bytes", SCN_MAX_NAME);
    if (strlen(pw->text) > SCN_MAX_NAME)
        return fail_tok(p, pw, "password longer than %d bytes", SCN_MAX_NAME);
    for (int i = 0; i < sc->nusers; i++)
        if (strcmp(sc->users[i].name, name->text) == 0)
            return fail_tok(p, name, "user '%s' already declared at %s:%d", name->text,
                            sc->users[i].pos.file, sc->users[i].pos.line);
    if (sc->nusers == SCN_MAX_USERS)
        return fail_tok(p, &p->tok[0], "more than %d users", SCN_MAX_USERS);
    grow((void **)&sc->users, sc->nusers, sizeof *sc->users);
    struct scn_user *u = &sc->users[sc->nusers++];
    u->name = xstrdup(name->text);
    u->password = xstrdup(pw->text);
    u->pos = here(p, p->tok[0].col);
    return 0;
}

/* do_client - client ADDR [at DURATION], opening a block of script lines */
int do_client(struct parser *p)
{
    const char *usage = "client ADDR [at DURATION]";
    struct scn_scenario *sc = p->sc;
    uint32_t addr = 0;      /* set by parse_ipv4; -O3 cannot see it */
    mta_usec_t at = 0;
    if (need_args(p, 2, 4, usage) < 0 || parse_ipv4(p, &p->tok[1], &addr) < 0)
        return -1;
    if (p->ntok > 2) {
        if (!is_word(&p->tok[2], "at"))
            return fail_tok(p, &p->tok[2], "unexpected '%s': expected '%s'", p->tok[2].text, usage);
        if (need_args(p, 4, 4, usage) < 0 || parse_duration(p, &p->tok[3], &at) < 0)
            return -1;
    }
    if (sc->nclients == SCN_MAX_CLIENTS)
        return fail_tok(p, &p->tok[0], "more than %d clients", SCN_MAX_CLIENTS);
    grow((void **)&sc->clients, sc->nclients, sizeof *sc->clients);
    struct scn_client *c = &sc->clients[sc->nclients];
    memset(c, 0, sizeof *c);
    c->addr = addr;
    c->at = at;
    c->pos = here(p, p->tok[0].col);
    p->block = BLOCK_CLIENT;
    p->block_index = sc->nclients++;
    return 0;
}

/* step_add - a new step of the open client's script */
static struct scn_step *step_add(struct parser *p, enum scn_step_kind kind)
{
    struct scn_client *c = &p->sc->clients[p->block_index];
    grow((void **)&c->steps, c->nsteps, sizeof *c->steps);
    struct scn_step *st = &c->steps[c->nsteps++];
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->pos = here(p, p->tok[0].col);
    return st;
}

/* step_send - a SEND step of the n bytes at s (copied) */
static void step_send(struct parser *p, const char *s, size_t n)
{
    struct scn_step *st = step_add(p, SCN_STEP_SEND);
    st->bytes = xstrndup(s, n);
    st->len = n;
}

/* step_line - a SEND step of one command line, CRLF added */
static void step_line(struct parser *p, const char *line)
{
    size_t n = strlen(line);
    char *b = xmalloc(n + 3);
    memcpy(b, line, n);
    memcpy(b + n, "\r\n", 3);
    step_send(p, b, n + 2);
    free(b);
}

/* step_expect - an EXPECT step; code 0 takes any reply */
static void step_expect(struct parser *p, int code)
{
    step_add(p, SCN_STEP_EXPECT)->code = code;
}

/* base64 - RFC 4648 encoding of n bytes (malloc'd) */
static char *base64(const char *s, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* step_data - a SEND step of a message body as DATA sends it: CRLF line
 * ends, a final line end, leading dots doubled, then "." */
static void step_data(struct parser *p, const char *body, size_t n)
{
    char *out = xmalloc(2 * n + 8);
    size_t o = 0;
    int bol = 1;
    for (size_t i = 0; i < n; i++) {
        if (bol && body[i] == '.')
            out[o++] = '.';
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = body[i];
        bol = body[i] == '\n';
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    step_send(p, out, o + 3);
    free(out);
}

/* client_auth - auth plain|login USER PASSWORD: the exchange, replies waited for */
static int client_auth(struct parser *p)
{
    const char *usage = "auth plain|login USER PASSWORD";
    if (need_args(p, 4, 4, usage) < 0)
        return -1;
    const char *user = p->tok[2].text, *pw = p->tok[3].text;
    size_t ulen = strlen(user), plen = strlen(pw);
    if (ulen > SCN_MAX_NAME || plen > SCN_MAX_NAME)
        return fail_tok(p, &p->tok[2], "user or password longer than %d bytes", SCN_MAX_NAME);
    char line[4 * SCN_MAX_NAME + 64];
    if (is_word(&p->tok[1], "plain")) {
        /* RFC 4616: authzid (empty) NUL authcid NUL passwd */
        char raw[2 * SCN_MAX_NAME + 2];
        raw[0] = '\0';
        memcpy(raw + 1, user, ulen);
        raw[1 + ulen] = '\0';
        memcpy(raw + 2 + ulen, pw, plen);
        char *b = base64(raw, ulen + plen + 2);
        snprintf(line, sizeof line, "AUTH PLAIN %s", b);
        free(b);
        step_line(p, line);
        step_expect(p, 0);
        return 0;
    }
    if (!is_word(&p->tok[1], "login"))
        return fail_tok(p, &p->tok[1], "unknown mechanism '%s': expected plain or login",
                        p->tok[1].text);
    step_line(p, "AUTH LOGIN");
    step_expect(p, 334);
    char *b = base64(user, ulen);
    step_line(p, b);
    free(b);
    step_expect(p, 334);
    b = base64(pw, plen);
    step_line(p, b);
    free(b);
    step_expect(p, 0);
    return 0;
}

/* client_line - one indented line of a client's script */
int client_line(struct parser *p)
{
    static const char *const words[] = { "send", "send-raw", "send-data", "send-data-file",
                                         "expect", "delay", "disconnect", "reset", "starttls",
                                         "tls", "auth", "quit" };
    struct scn_client *c = &p->sc->clients[p->block_index];
    const struct token *w = &p->tok[0];
    if (c->nsteps >= SCN_MAX_STEPS)
        return fail_tok(p, w, "more than %d script steps in one client", SCN_MAX_STEPS);
    if (is_word(w, "send")) {
        if (need_args(p, 2, -1, "send TEXT") < 0)
            return -1;
        char *text = extract_text(p, p->tok[1].start, p->tok[p->ntok - 1].end);
        step_line(p, text);
        free(text);
        return 0;
    }
    if (is_word(w, "send-raw")) {
        if (need_args(p, 2, 2, "send-raw \"BYTES\"") < 0)
            return -1;
        if (!p->tok[1].whole_quoted || p->tok[1].text[0] == '\0')
            return fail_tok(p, &p->tok[1], "send-raw needs one non-empty \"quoted string\" "
                            "(\\r \\n \\t escapes)");
        step_send(p, p->tok[1].text, strlen(p->tok[1].text));
        return 0;
    }
    if (is_word(w, "send-data")) {
        if (need_args(p, 2, 2, "send-data \"TEXT\"") < 0)
            return -1;
        step_data(p, p->tok[1].text, strlen(p->tok[1].text));
        return 0;
    }
    if (is_word(w, "send-data-file")) {
        if (need_args(p, 2, 2, "send-data-file PATH") < 0)
            return -1;
        size_t len = 0;
        char *body = read_relative(p, &p->tok[1], "data", &len);
        if (body == NULL)
            return -1;
        step_data(p, body, len);
        free(body);
        return 0;
    }
    if (is_word(w, "expect")) {
        unsigned long long code;
        if (need_args(p, 2, 2, "expect CODE") < 0
            || parse_unsigned(p, &p->tok[1], "reply code", 100, 599, &code) < 0)
            return -1;
        if (p->sc->nexpects == SCN_MAX_EXPECTS)
            return fail_tok(p, w, "more than %d expectations", SCN_MAX_EXPECTS);
        step_expect(p, (int)code);
        /* The line is an expectation of the scenario too: a different
         * reply, or none, fails the run (expect.c, check_client). */
        struct scn_expect ex;
        memset(&ex, 0, sizeof ex);
        ex.kind = SCN_EXPECT_CLIENT;
        ex.pos = here(p, w->col);
        ex.within = -1;
        ex.client_n = p->block_index + 1;
        ex.want_code = (int)code;
        grow((void **)&p->sc->expects, p->sc->nexpects, sizeof *p->sc->expects);
        p->sc->expects[p->sc->nexpects++] = ex;
        return 0;
    }
    if (is_word(w, "delay")) {
        mta_usec_t d = 0;  /* set by parse_duration; -O3 cannot see it */
        if (need_args(p, 2, 2, "delay DURATION") < 0 || parse_duration(p, &p->tok[1], &d) < 0)
            return -1;
        step_add(p, SCN_STEP_DELAY)->delay = d;
        return 0;
    }
    if (is_word(w, "disconnect") || is_word(w, "reset")) {
        if (need_args(p, 1, 1, w->text) < 0)
            return -1;
        step_add(p, is_word(w, "reset") ? SCN_STEP_RESET : SCN_STEP_DISCONNECT);
        return 0;
    }
    if (is_word(w, "starttls") || is_word(w, "tls")) {
        /* starttls [fail]: STARTTLS, expect 220, the handshake; tls [fail]:
         * the handshake alone (after a send-raw STARTTLS).  fail: the
         * client aborts it with a handshake_failure alert (docs/tls.md). */
        if (need_args(p, 1, 2, is_word(w, "tls") ? "tls [fail]" : "starttls [fail]") < 0)
            return -1;
        if (p->ntok == 2 && !is_word(&p->tok[1], "fail"))
            return fail_tok(p, &p->tok[1], "expected 'fail' or nothing after '%s'", w->text);
        if (is_word(w, "starttls")) {
            step_line(p, "STARTTLS");
            step_expect(p, 220);
        }
        step_add(p, SCN_STEP_TLS)->code = p->ntok == 2;
        return 0;
    }
    if (is_word(w, "quit")) {
        if (need_args(p, 1, 1, w->text) < 0)
            return -1;
        step_line(p, "QUIT");
        step_expect(p, 221);
        return 0;
    }
    if (is_word(w, "auth"))
        return client_auth(p);
    struct suggestion sg;
    char hint[128];
    suggest_begin(&sg, w->text);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        suggest_offer(&sg, words[i]);
    return fail_tok(p, w, "unknown client line '%s': expected send, send-raw, send-data, "
                    "send-data-file, expect, delay, disconnect, reset, starttls, tls, auth or quit%s",
                    w->text, suggest_hint(&sg, hint, sizeof hint));
}

/* resolve_inbound - once the file is read: where the server listens, and
 * what inbound message ids mean (1000 + n, docs/inbound.md) */
int resolve_inbound(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    struct scn_listen *l = &sc->listen;
    if (!l->set && sc->nclients == 0)
        return 0;
    if (!l->set) {
        l->addr = 0xC0000201u;      /* the default binding's, as in mta_create */
        for (int i = 0; i < sc->nbindings; i++)
            if (strcmp(sc->bindings[i].name, "default") == 0 && mta_ip_is_v4(sc->bindings[i].addr))
                l->addr = mta_ip_v4_of(sc->bindings[i].addr);   /* the listener is IPv4 only */
        l->port = 25;
    }
    for (int i = 0; i < sc->nremotes; i++)
        if (mta_ip_eq(sc->remotes[i].addr, mta_ip_v4(l->addr)))
            return fail_pos(p, l->set ? l->pos : sc->clients[0].pos,
                            "the MTA listens on %u.%u.%u.%u, where the remote of %s:%d is",
                            l->addr >> 24, (l->addr >> 16) & 255, (l->addr >> 8) & 255,
                            l->addr & 255, sc->remotes[i].pos.file, sc->remotes[i].pos.line);
    for (int i = 0; i < sc->ninjects && sc->nclients > 0; i++)
        if (sc->injects[i].id + sc->injects[i].count - 1 > SCN_INBOUND_ID_BASE)
            return fail_pos(p, sc->injects[i].pos, "inject %lu: with clients, ids above %lu "
                            "belong to the messages the server accepts (%lu + n)",
                            sc->injects[i].id + sc->injects[i].count - 1, SCN_INBOUND_ID_BASE,
                            SCN_INBOUND_ID_BASE);
    return 0;
}
