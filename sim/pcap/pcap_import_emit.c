/*
 * pcap_import_emit - mtasim import, writing: the scenario from the sessions
 *
 * DESCRIPTION
 *   The last stage of pcap_import.c's: the sessions' events and their
 *   transactions (pcap_import_tx.c) become
 *   a scenario - one remote per server address, its banner, replies with
 *   their delays and conditions, its connect outcomes and resets; the
 *   captured transactions as injections; expectations that reproduce the
 *   dialogue and each message's outcome.  Nothing here reads the capture.
 *
 *   Part of mtasim import: pcap_import.c describes it, and
 *   pcap_import_internal.h is what its files share.
 */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mta.h"
#include "pcap_import_internal.h"

/* ---- the scenario ------------------------------------------------------ */

/* cmd_kind - the scenario's name for what an event is answered as; "bdat"
 * for a BDAT chunk but the last (mtasim's remote answers those itself),
 * "dot" for the last one, whose reply ends the transaction as the reply
 * to DATA's final dot does (RFC 3030 2) */
static const char *cmd_kind(const struct pi_event *e)
{
    static const char *const verbs[] = { "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP",
                                         "QUIT", "STARTTLS" };
    static const char *const kinds[] = { "ehlo", "helo", "mail", "rcpt", "data", "rset", "noop",
                                         "quit", "starttls" };
    size_t i;

    if (e == NULL)
        return "greet";
    if (e->kind == EV_BODY)
        return "dot";
    if (pi_verb_is(e->lines[0], "BDAT"))
        return pi_bdat_is_last(e->lines[0]) ? "dot" : "bdat";
    for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (pi_verb_is(e->lines[0], verbs[i]))
            return kinds[i];
    return "unknown";
}

/* put_escaped - s inside a scenario "quoted string"; bytes a scenario cannot
 * hold (control characters but tab, bytes >= 0x80) become '?'; 1 if any did */
static int put_escaped(FILE *o, const char *s, size_t n)
{
    size_t i;
    int replaced = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c == '\t')
            fputs("\\t", o);
        else if (c < ' ' || c >= 127) {
            fputc('?', o);
            replaced = 1;
        } else
            fputc(c, o);
    }
    return replaced;
}

/* put_quoted - s as a scenario "quoted string" (see put_escaped) */
static int put_quoted(FILE *o, const char *s, size_t n)
{
    int replaced;

    fputc('"', o);
    replaced = put_escaped(o, s, n);
    fputc('"', o);
    return replaced;
}

/* put_regex_quoted - "^PREFIX<addr>" as a quoted POSIX ERE matching it literally */
static void put_regex_quoted(FILE *o, const char *prefix, const char *addr)
{
    const char *p;

    fprintf(o, "\"^%s<", prefix);
    for (p = addr; *p; p++) {
        if (strchr(".[]()*+?{}|^$\\", *p))
            fputs(*p == '\\' ? "\\\\\\\\" : "\\", o);
        fputc(*p, o);
    }
    fputs(">\"", o);
}

/* reply_is_clean - every line "CODE-TEXT" but the last "CODE TEXT" or "CODE",
 * one code 100-599, text a scenario can hold */
static int reply_is_clean(const struct pi_event *r)
{
    int code = pi_reply_code(r), i;

    if (code < 100 || code > 599)
        return 0;
    for (i = 0; i < r->nlines; i++) {
        const char *l = r->lines[i];
        size_t n = strlen(l), k;

        if (n < 3 || strncmp(l, r->lines[0], 3) != 0)
            return 0;
        if (i < r->nlines - 1 ? (n < 4 || l[3] != '-') : (n > 3 && l[3] != ' '))
            return 0;
        for (k = 0; k < n; k++)
            if ((unsigned char) l[k] < ' ' && l[k] != '\t')
                return 0;
    }
    return 1;
}

/* usec_str - a duration in the scenario's units, whole milliseconds when it is */
static const char *usec_str(int64_t us, char buf[32])
{
    if (us % 1000 == 0)
        snprintf(buf, 32, "%" PRId64 "ms", us / 1000);
    else
        snprintf(buf, 32, "%" PRId64 "us", us);
    return buf;
}

/* struct pi_server - one captured server: its sessions as the remote sees them */
struct pi_server {
    mta_ip addr;
    int accepted, refused, unreachable, timeout;
    int64_t rtt;                /* -1 = unknown */
    int client_side;            /* the capture was taken at the client */
};

/* ip_str - an address as a scenario writes it (a dotted quad, RFC 5952 text) */
static const char *ip_str(mta_ip a, char buf[MTA_IP_TEXT])
{
    return mta_ip_format(a, buf);
}

/* emit_reply - one scripted reply (or action) of the remote for session sn */
static void emit_reply(FILE *o, const char *kind, const struct pi_event *cmd,
                       const struct pi_event *r, int sn, int nth, int64_t delay, int *replaced)
{
    char when[64], d[64];
    int i;

    if (cmd == NULL)
        snprintf(when, sizeof when, "when session = %d", sn);
    else
        snprintf(when, sizeof when, "when session = %d and nth = %d", sn, nth);
    d[0] = '\0';
    if (delay >= 1000) {
        char b[32];

        snprintf(d, sizeof d, " delay %s", usec_str(delay / 1000 * 1000, b));
    }
    if (reply_is_clean(r)) {
        for (i = 0; i < r->nlines; i++) {
            const char *l = r->lines[i];
            int last = i == r->nlines - 1;

            fprintf(o, "  %s %.3s%c", kind, l, last ? ' ' : '-');
            if (strlen(l) > 4)
                *replaced |= put_quoted(o, l + 4, strlen(l + 4));
            if (last)
                fprintf(o, "%s %s", d, when);
            fputc('\n', o);
        }
        return;
    }
    /* Not a well-formed reply: the bytes as they were, CRLF after each line. */
    fprintf(o, "  %s raw \"", kind);
    for (i = 0; i < r->nlines; i++) {
        *replaced |= put_escaped(o, r->lines[i], strlen(r->lines[i]));
        fputs("\\r\\n", o);
    }
    fprintf(o, "\"%s %s\n", d, when);
}

/* server_of - index of the server with addr in sv, added if new; -1 when
 * sv (PI_MAX_SERVERS) is full */
static int server_of(struct pi_server *sv, int *nsv, mta_ip addr)
{
    int i;

    for (i = 0; i < *nsv; i++)
        if (mta_ip_eq(sv[i].addr, addr))
            return i;
    if (*nsv >= PI_MAX_SERVERS)
        return -1;
    memset(&sv[*nsv], 0, sizeof sv[*nsv]);
    sv[*nsv].addr = addr;
    sv[*nsv].rtt = -1;
    return (*nsv)++;
}

/* The scenario's reply kinds, for counting "nth" per kind in a session. */
static const char *const kind_names[] = { "greet", "ehlo", "helo", "mail", "rcpt", "data", "dot",
                                          "rset", "noop", "quit", "unknown", "bdat", "starttls" };
#define KIND_COUNT ((int) (sizeof kind_names / sizeof kind_names[0]))

/* kind_index - the position of a cmd_kind() name in kind_names */
static int kind_index(const char *kind)
{
    int i;

    for (i = 0; i < KIND_COUNT; i++)
        if (strcmp(kind_names[i], kind) == 0)
            return i;
    assert(!"kind_index: not a reply kind");
    return KIND_COUNT - 1;
}

/* end_action - how the server ended a session it did not finish: "reset"
 * (RST), "close" (FIN) or "drop" (it went silent) */
static const char *end_action(const struct pi_session *s)
{
    const char *action = "drop";
    int e;

    for (e = 0; e < s->nev; e++)
        if (!s->ev[e].from_client && (s->ev[e].kind == EV_RST || s->ev[e].kind == EV_FIN))
            action = s->ev[e].kind == EV_RST ? "reset" : "close";
    return action;
}

/* emit_remote - the remote block of server k: path, connect mode, every reply */
static void emit_remote(FILE *o, struct pi_import *im, const struct pi_server *sv, int k,
                        int *replaced)
{
    char a[MTA_IP_TEXT], b[32];
    int i, sn = 0;

    fprintf(o, "remote %s name mx%d.import.test\n", ip_str(sv->addr, a), k + 1);
    if (sv->accepted == 0)
        fprintf(o, "  connect %s\n", sv->refused ? "refuse" : sv->unreachable ? "unreachable"
                                                                              : "timeout");
    if (sv->rtt >= 0)
        fprintf(o, "  latency %s\n", usec_str(sv->rtt / 2 > 0 ? sv->rtt / 2 : 1, b));
    /* The handshake of each of this server's STARTTLS sessions: one "tls"
     * line, or with several one per session ("when session = N": the
     * first line that holds wins; pcap_import_tls.c). */
    int ntls = 0;
    for (i = 0; i < im->ns; i++)
        ntls += mta_ip_eq(im->s[i]->srv, sv->addr) && pi_session_role(im->s[i]) == 'A' &&
                pi_tls_outcome(im->s[i]) != PI_TLS_NONE;
    for (i = 0, sn = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        enum pi_tls_out out;

        if (!mta_ip_eq(s->srv, sv->addr) || pi_session_role(s) != 'A')
            continue;
        sn++;
        if ((out = pi_tls_outcome(s)) == PI_TLS_NONE)
            continue;
        if (out == PI_TLS_UNKNOWN)
            fprintf(o, "  # session %d: how its TLS handshake ended is not in the capture (no "
                    "records both ways,\n  # no alert, no reset or close by the server): "
                    "scripted as completing, an assumption\n", sn);
        else
            fprintf(o, "  # session %d: TLS handshake %s, as the capture shows after the 220 "
                    "(%u record(s) from the\n  # client, %u from the server)%s\n", sn,
                    out == PI_TLS_OK ? "completed" : "failed", s->tlsd[0].records,
                    s->tlsd[1].records,
                    out == PI_TLS_HANDSHAKE_FAILURE || out == PI_TLS_PROTOCOL_VERSION
                        ? ": the server's fatal alert" : out == PI_TLS_RESET
                        ? ": the server reset the connection" : out == PI_TLS_CLOSE
                        ? ": the server closed the connection" : "");
        if (s->tlsd[1].alert >= 0 && s->tlsd[1].alert_level == 2)
            fprintf(o, "  # (alert description %d; RFC 8446 6)\n", s->tlsd[1].alert);
        if (ntls == 1) {
            fprintf(o, "  tls %s\n", pi_tls_word(out));
            break;
        }
        fprintf(o, "  tls %s when session = %d\n", pi_tls_word(out), sn);
    }
    sn = 0;
    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        int nth[KIND_COUNT] = { 0 }, e, w, saw_ehlo = 0;
        int64_t base, adjust = sv->client_side && sv->rtt > 0 ? sv->rtt : 0;

        if (!mta_ip_eq(s->srv, sv->addr) || pi_session_role(s) != 'A')
            continue;
        sn++;
        fprintf(o, "  # session %d (the capture's session %d): from %s port %u\n", sn, i + 1,
                ip_str(s->cli, a), s->cport);
        base = s->ack_t >= 0 ? s->ack_t : s->synack_t >= 0 ? s->synack_t : s->nev ? s->ev[0].t : 0;
        for (e = 0; e < s->nev; e++) {
            const struct pi_event *r = &s->ev[e];
            const struct pi_event *cmd;
            const char *kind;
            int64_t delay;
            int kk;

            if (r->kind == EV_CMD && pi_verb_is(r->lines[0], "EHLO"))
                saw_ehlo = 1;
            if (r->kind != EV_REPLY || r->answers < -1)
                continue;
            cmd = r->answers >= 0 ? &s->ev[r->answers] : NULL;
            kind = cmd_kind(cmd);
            if (strcmp(kind, "bdat") == 0)
                continue;       /* a chunk but the last: the remote answers it itself */
            kk = kind_index(kind);
            nth[kk]++;
            delay = r->t - (cmd ? cmd->t : base) - (cmd ? adjust : adjust / 2);
            if (strcmp(kind, "helo") == 0 && !saw_ehlo && pi_reply_code(r) / 100 == 2) {
                /* The client said HELO: the capture never shows what the server
                 * would offer to EHLO, so mtasim's core (which says EHLO) is
                 * offered nothing - no PIPELINING, no SIZE: the least the
                 * capture shows (RFC 5321 4.1.1.1: a 250 to EHLO may list no
                 * extension). */
                fputs("  # the client said HELO: EHLO is answered with the HELO reply, "
                      "offering no extension\n", o);
                nth[kind_index("ehlo")]++;
                emit_reply(o, "ehlo", cmd, r, sn, nth[kind_index("ehlo")], delay, replaced);
            }
            emit_reply(o, kind, cmd, r, sn, nth[kk], delay, replaced);
            if (cmd && cmd->kind == EV_CMD && pi_verb_is(cmd->lines[0], "STARTTLS") && s->tls) {
                char t[32];

                fprintf(o, "  # STARTTLS was answered 220 at +%s: the rest of this session is "
                        "TLS (RFC 3207 4)\n"
                        "  # and not imported. The handshake is scripted by the tls line above",
                        usec_str((s->tls_t - base) / 1000 * 1000, t));
                if (pi_tls_failed(pi_tls_outcome(s)))
                    fputs(": it failed,\n  # so nothing was sent inside TLS.\n", o);
                else
                    fputs("; what happened\n"
                          "  # inside TLS (the certificate, the second EHLO, the envelope, the "
                          "fate) is unknown,\n"
                          "  # so the remote answers the core's commands there with its default "
                          "replies.\n", o);
            }
        }
        /* The first command never answered: what the server did instead. */
        for (w = s->waiting_head; w < s->nwaiting; w++) {
            const struct pi_event *cmd = s->waiting[w] >= 0 ? &s->ev[s->waiting[w]] : NULL;
            const char *kind = cmd_kind(cmd), *action = end_action(s);
            int kk;

            if (strcmp(kind, "bdat") == 0)
                kind = "dot";   /* mtasim's remote acts at the end of the message */
            kk = kind_index(kind);

            if (cmd == NULL)
                fprintf(o, "  greet %s when session = %d\n", action, sn);
            else
                fprintf(o, "  %s %s when session = %d and nth = %d\n", kind, action, sn, nth[kk] + 1);
            break;
        }
        if (s->in_body) {
            /* Cut off in the middle of the message data: mtasim's remote acts
             * at the final dot, after the whole message. */
            const char *action = end_action(s);

            fprintf(o, "  # the capture's %s came during the message data, after %zu bytes of "
                    "it; mtasim's remote acts at the final dot\n",
                    strcmp(action, "drop") ? action : "silence", s->body_bytes);
            fprintf(o, "  dot %s when session = %d and nth = %d\n", action, sn,
                    nth[kind_index("dot")] + 1);
        }
    }
}

/* emit_expect_tls - after the 220 to STARTTLS: the handshake as scripted
 * and the core's verdict at the policy level (docs/tls.md, trace records
 * in docs/scenario-language.md).  The certificate is not in the capture
 * (TLS 1.3 encrypts it): a completed handshake is secure or unverified. */
static void emit_expect_tls(FILE *o, const struct pi_session *s, const char *level)
{
    enum pi_tls_out out = pi_tls_outcome(s);

    fprintf(o, "  tls start\n  remote tls outcome=%s\n", pi_tls_word(out));
    if (!pi_tls_failed(out)) {
        fprintf(o, "  conn tls\n  tls policy level=%s outcome~\"^(secure|unverified)$\"\n", level);
        return;
    }
    if (out == PI_TLS_RESET)
        fputs("  conn reset\n", o);
    else if (out == PI_TLS_CLOSE)
        fputs("  conn eof\n", o);
    fprintf(o, "  tls policy level=%s outcome=handshake\n", level);
}

/* emit_expect_lines - the trace patterns of session s: its commands (want_cmds)
 * or its replies, those mtasim's core will send or receive as well */
static void emit_expect_lines(FILE *o, const struct pi_session *s, int want_cmds, int *replaced,
                              const struct pi_tx *txs, int ntx, int si, const char *level)
{
    int i, accepted = 0, ehlo_refused = 0, ended = 0, reset = 0, last_client = -1, saw_ehlo = 0;
    int kept = 0, left_out = 0;

    /* A session that only carried transactions left out never happens in the
     * run: none of its lines are expected. */
    for (i = 0; i < ntx; i++)
        if (txs[i].session == si) {
            kept += txs[i].msg != 0;
            left_out += txs[i].msg == 0;
        }
    if (left_out > 0 && kept == 0)
        return;

    for (i = 0; i < s->nev; i++) {
        if (!s->ev[i].from_client && (s->ev[i].kind == EV_RST || s->ev[i].kind == EV_FIN))
            ended = 1;
        /* (A reset after the 220 to STARTTLS came after the client's
         * ClientHello: it had reacted to the 220.) */
        reset |= !s->ev[i].from_client && s->ev[i].kind == EV_RST && !(s->tls && s->ev[i].t >= s->tls_t);
        if (s->ev[i].kind == EV_CMD || s->ev[i].kind == EV_BODY)
            last_client = i;
    }
    for (i = 0; i < s->nev; i++) {
        const struct pi_event *e = &s->ev[i];
        int a = pi_answer_of(s, i), include = 0, k;
        char *addr = NULL;

        /* A transaction that was left out (not injected) is not expected
         * either: mtasim's core never sends its commands. */
        for (k = 0; k < ntx; k++)
            if (txs[k].session == si && txs[k].msg == 0 && i >= txs[k].first_ev
                && i <= txs[k].last_ev)
                break;
        if (k < ntx)
            continue;

        if (e->kind == EV_REPLY && e->answers == -1 && !want_cmds) {
            include = 1;        /* the banner */
            a = i;
        } else if (e->kind == EV_BODY) {
            include = !want_cmds && a >= 0;
        } else if (e->kind == EV_CMD) {
            const char *l = e->lines[0];
            int code = a >= 0 ? pi_reply_code(&s->ev[a]) : 0;

            if (pi_verb_is(l, "EHLO")) {
                include = !want_cmds;
                saw_ehlo = 1;
                ehlo_refused = code == 500 || code == 501 || code == 502 || code == 504 || code == 550;
            } else if (pi_verb_is(l, "HELO")) {
                /* After a refused EHLO; or the client only said HELO, and the
                 * core gets this reply to its EHLO (emit_remote). */
                include = !want_cmds && (ehlo_refused || (!saw_ehlo && code / 100 == 2));
            } else if (pi_verb_is(l, "MAIL") || pi_verb_is(l, "RCPT")) {
                const char *prefix = pi_verb_is(l, "MAIL") ? "MAIL FROM:" : "RCPT TO:";

                include = 1;
                /* A new transaction; DATA is expected once a recipient is accepted. */
                accepted = prefix[0] == 'M' ? 0 : accepted | (code / 100 == 2);
                addr = pi_path_arg(l, prefix);
                if (want_cmds && addr) {
                    fputs("  smtp send line~", o);
                    put_regex_quoted(o, prefix, addr);
                    fputc('\n', o);
                }
            } else if (pi_verb_is(l, "DATA")) {
                include = accepted;
                if (want_cmds && include)
                    fputs("  smtp send line=DATA\n", o);
            } else if (pi_bdat_is_last(l)) {
                /* The core sends the message as one chunk (inject ... chunking):
                 * the LAST chunk's reply is the one it gets. */
                include = accepted;
                if (want_cmds && include)
                    fputs("  smtp send line~\"^BDAT [0-9]+ LAST$\"\n", o);
            } else if (pi_verb_is(l, "STARTTLS")) {
                /* The policy (config tls_policy) makes the core issue it too. */
                include = !want_cmds;
                if (want_cmds)
                    fputs("  smtp send line=STARTTLS\n", o);
            } else if (pi_verb_is(l, "QUIT")) {
                include = !ended || a >= 0;
                if (want_cmds && include)
                    fputs("  smtp send line=QUIT\n", o);
            }
            if (want_cmds)
                include = 0;
        }
        free(addr);
        if (!include || a < 0 || !reply_is_clean(&s->ev[a]))
            continue;
        /* Replies the server sent just before its RST, that the client never
         * reacted to, may not reach a client at all: TCP drops unread data
         * on a reset (and so does mtasim's network). */
        if (reset && a > last_client)
            continue;
        for (k = 0; k < s->ev[a].nlines; k++) {
            const char *l = s->ev[a].lines[k];
            size_t n = strlen(l);

            /* "CODE " with no text: the remote sends it as "CODE" (smtp-sink
             * ends its EHLO reply with "250 " when it offers nothing more). */
            if (n == 4 && l[3] == ' ')
                n = 3;
            fputs("  smtp recv line=", o);
            *replaced |= put_quoted(o, l, n);
            fputc('\n', o);
        }
        if (e->kind == EV_CMD && pi_verb_is(e->lines[0], "STARTTLS") && s->tls && level)
            emit_expect_tls(o, s, level);
    }
}

/* pi_emit_scenario - the whole scenario for what the capture holds */
int pi_emit_scenario(FILE *o, struct pi_import *im, const char *name)
{
    struct pi_server sv[PI_MAX_SERVERS];
    struct pi_tx *txs = NULL;
    int txcap = 0, nsv = 0, ntx = 0, nmsg = 0, i, j, k, replaced = 0, loopback = 0, deferred = 0;
    int skipped_tx = 0, chunking;
    const char *tls_level;
    long size;
    char a[MTA_IP_TEXT], b[32], date[32];
    int nv6 = 0, v6_client = -1, sess_no[PI_MAX_SERVERS] = { 0 }, reuse = 0;
    time_t epoch = (time_t) (im->first_t / 1000000);
    struct tm tm;
    int64_t span = im->last_t - im->first_t, retry_gap = -1;

    /* The epoch must be one a scenario can start at, and every delay a
     * duration it can hold (docs/scenario-language.md). */
    if (im->first_t < 0 || im->first_t / 1000000 > PI_MAX_SECONDS - 1
        || span > (int64_t) MTA_DURATION_MAX / 2) {
        pi_fail(im, "time stamps before 1970, after 9999 or over 50 years apart: a scenario's "
                "epoch and durations cannot name them");
        return -1;
    }
    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        char role = pi_session_role(s);
        int si;

        si = server_of(sv, &nsv, s->srv);
        if (si < 0) {
            free(txs);
            pi_fail(im, "more than %d SMTP servers", PI_MAX_SERVERS);
            return -1;
        }
        loopback |= mta_ip_is_v4(s->srv) ? (mta_ip_v4_of(s->srv) >> 24) == 127
                                         : mta_ip_eq(s->srv, (mta_ip){ .b = { [15] = 1 } });
        if (!mta_ip_is_v4(s->srv) && v6_client < 0)
            v6_client = i;
        sv[si].accepted += role == 'A';
        sv[si].refused += role == 'R';
        sv[si].unreachable += role == 'U';
        sv[si].timeout += role == 'T';
        if (role == 'A' && sv[si].rtt < 0 && s->syn_t >= 0 && s->synack_t >= 0 && s->ack_t >= 0) {
            sv[si].rtt = s->ack_t - s->syn_t;
            sv[si].client_side = s->synack_t - s->syn_t >= s->ack_t - s->synack_t;
        }
        if (role == 'A')
            pi_collect_txs(s, i, &txs, &ntx, &txcap);
    }
    nmsg = pi_assign_messages(im, txs, ntx, &retry_gap, &skipped_tx);

    gmtime_r(&epoch, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(o, "# Imported by mtasim import from %s: %d TCP session(s), %d server(s), "
            "%d transaction(s).\n", im->path, im->ns, nsv, ntx);
    fputs("# The remote replies as the captured server did (code, text, delay), session by\n"
          "# session; mtasim's core is the client, so its EHLO name, its timing and the\n"
          "# commands it chooses (PIPELINING, RSET, SIZE=) may differ from the captured\n"
          "# client's: the expectations compare the command verbs and addresses, the reply\n"
          "# lines and each message's fate (docs/pcap.md).\n", o);
    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        char role = pi_session_role(s), c[MTA_IP_TEXT], as[96] = "";
        int v6 = !mta_ip_is_v4(s->cli);     /* [addr]:port, RFC 3986 3.2.2 */

        if (role == 'A') {
            /* The number its remote's "when session = N" lines use. */
            k = server_of(sv, &nsv, s->srv);
            snprintf(as, sizeof as, ": mx%d.import.test session %d%s", k + 1, ++sess_no[k],
                     s->tls ? ", encrypted after STARTTLS (not imported)" : "");
        }
        fprintf(o, "#   session %d  %s%s%s:%u -> %s%s%s:%u  %s%s\n", i + 1, v6 ? "[" : "",
                ip_str(s->cli, a), v6 ? "]" : "", s->cport, v6 ? "[" : "", ip_str(s->srv, c),
                v6 ? "]" : "", s->sport,
                role == 'A' ? (s->no_syn ? "SMTP (capture starts after the handshake)" : "SMTP")
                : role == 'R' ? "refused (RST)" : role == 'U' ? "unreachable (ICMP)"
                : role == 'T' ? "no answer to the SYN (timeout)"
                : "a probe: connected, read the banner, sent nothing (not scripted)", as);
    }
    if (im->skipped_frag)
        fprintf(o, "# skipped: %lu IP fragment(s)\n", im->skipped_frag);
    if (skipped_tx)
        fprintf(o, "# %d transaction(s) with addresses a scenario cannot name, or no recipient, "
                "were not injected\n", skipped_tx);
    fprintf(o, "scenario %s\nepoch %s\n", name, date);
    if (loopback)
        fputs("config prohibited_ips none            # the captured server is on loopback\n", o);
    for (k = 0; k < nsv; k++)
        nv6 += !mta_ip_is_v4(sv[k].addr);
    /* The core reaches IPv6 servers only from an IPv6 binding (docs/scenario-
     * language.md, binding): the captured client's own address. */
    if (nv6 == nsv && nsv > 0)
        fprintf(o, "binding default %s                   # the captured client's\n",
                ip_str(im->s[v6_client]->cli, a));
    else if (nv6 > 0)
        /* Both families: a binding of each, and each message injected through
         * the one of its session's family. */
        fprintf(o, "binding v6 %s                        # the captured client's IPv6 address: "
                "messages of IPv6 sessions use it\n", ip_str(im->s[v6_client]->cli, a));
    /* Several messages on one connection: the core must not open one per
     * message, as it would for mail queued at once (docs/queue.md), but
     * send them one after the other over one connection, as the captured
     * client did (Postfix reuses a connection for a destination's backlog:
     * smtp_connection_cache_on_demand, postconf(5)). */
    /* The client's TLS policy: the least the capture shows (pcap_import_tls.c). */
    tls_level = pi_tls_level(im);
    if (tls_level)
        fprintf(o, "config tls_policy %s%s\n", tls_level,
                strcmp(tls_level, "required") == 0
                    ? "       # the client issued STARTTLS and, its handshake failed, did not "
                      "go on in cleartext"
                    : "  # the client issued STARTTLS (the least level that does)");
    reuse = pi_several_per_session(im, txs, ntx);
    if (reuse)
        fputs("config max_connections_per_host 1    # the capture sent several messages over one "
              "connection, one connection at a time\n", o);
    /* And the reverse: a client that sent at most N messages per connection
     * (exim delivering each message on its own connection) - Momentum's
     * Max_Deliveries_Per_Connection, so the core does not carry a later
     * message over the earlier one's idle connection. */
    k = pi_most_per_session(txs, ntx);
    if (k > 0 && nmsg > k)
        fprintf(o, "config max_deliveries_per_connection %d   # the most messages one captured "
                "session carried\n", k);

    /* Fates first: a deferred message needs the run to stop before the retry. */
    for (k = 1; k <= nmsg; k++)
        for (i = ntx - 1; i >= 0; i--)
            if (txs[i].msg == k) {
                deferred |= pi_tx_fate(&txs[i]) && strcmp(pi_tx_fate(&txs[i]), "deferred") == 0;
                break;
            }
    if (nmsg == 0)
        deferred = 1;
    if (retry_gap > 0)
        fprintf(o, "config retry_interval %s           # the captured client's retry\n",
                usec_str(retry_gap / 1000000 > 0 ? retry_gap / 1000000 * 1000000 : 1000000, b));
    if (deferred) {
        int64_t run = (span / 1000000 + 60) * 1000000;

        if (retry_gap <= 0)
            fprintf(o, "config retry_interval %s         # no retry within the run\n",
                    usec_str(run + 60000000 > 1200000000 ? run + 60000000 : 1200000000, b));
        fprintf(o, "run for %s                         # the capture's span and a minute\n",
                usec_str(run, b));
    }
    fputc('\n', o);

    /* DNS: every recipient domain has every captured server as an MX, in the
     * order the client first tried them, so that a fallback happens again. */
    for (i = 0; i < ntx; i++) {
        for (j = 0; j < txs[i].nrcpts && txs[i].msg; j++) {
            const char *dom = strchr(txs[i].rcpts[j], '@') + 1;
            int seen = 0, i2, j2;

            for (i2 = 0; i2 <= i && !seen; i2++)
                for (j2 = 0; j2 < txs[i2].nrcpts && txs[i2].msg && !seen; j2++)
                    if ((i2 < i || j2 < j) && strcasecmp(strchr(txs[i2].rcpts[j2], '@') + 1, dom) == 0)
                        seen = 1;
            for (k = 0; k < nsv && !seen; k++)
                fprintf(o, "dns %s MX %d mx%d.import.test\n", dom, 10 * (k + 1), k + 1);
        }
    }
    for (k = 0; k < nsv && nmsg == 0; k++)
        fprintf(o, "dns import.test MX %d mx%d.import.test\n", 10 * (k + 1), k + 1);
    for (k = 0; k < nsv; k++)
        fprintf(o, "dns mx%d.import.test %s %s\n", k + 1, mta_ip_is_v4(sv[k].addr) ? "A" : "AAAA",
                ip_str(sv[k].addr, a));
    fputc('\n', o);
    for (k = 0; k < nsv; k++) {
        emit_remote(o, im, &sv[k], k, &replaced);
        if (sv[k].accepted && (sv[k].refused || sv[k].unreachable || sv[k].timeout))
            fprintf(o, "  # %d failed connect(s) to this server are not scripted: a remote's "
                    "connect mode holds for every session\n",
                    sv[k].refused + sv[k].unreachable + sv[k].timeout);
        fputc('\n', o);
    }

    /* Injections, at the start of the session that first carried them. */
    for (k = 1; k <= nmsg; k++)
        for (i = 0; i < ntx; i++)
            if (txs[i].msg == k) {
                const struct pi_session *s = im->s[txs[i].session];
                int64_t at = s->nev ? s->ev[0].t - im->first_t : 0;

                fprintf(o, "inject %d from <%s> to ", k, txs[i].from);
                for (j = 0; j < txs[i].nrcpts; j++)
                    fprintf(o, "%s<%s>", j ? "," : "", txs[i].rcpts[j]);
                fprintf(o, " at %s", usec_str(at / 1000 * 1000, b));
                if (nv6 > 0 && nv6 < nsv && !mta_ip_is_v4(s->srv))
                    fputs(" binding v6", o);
                size = -1;
                chunking = 0;
                /* The size the capture shows: the message data of any of its
                 * transactions, else the client's SIZE= (RFC 1870). */
                for (j = i; j < ntx; j++)
                    if (txs[j].msg == k) {
                        if (size < 0 && txs[j].body >= 0)
                            size = txs[j].body;
                        chunking |= txs[j].bdat;
                    }
                for (j = i; j < ntx && size < 0; j++)
                    if (txs[j].msg == k && txs[j].size_param >= 0)
                        size = txs[j].size_param;
                if (size >= 0 && size <= PI_MAX_SIZE)
                    fprintf(o, " size %ld", size);
                if (chunking)
                    fputs(" chunking", o);
                fputc('\n', o);
                break;
            }
    if (nmsg == 0)
        fputs("inject 1 from <import@mtasim.test> to <postmaster@import.test>   # no "
              "transaction was captured\n", o);
    fputc('\n', o);
    for (k = 1; k <= nmsg; k++)
        for (i = ntx - 1; i >= 0; i--)
            if (txs[i].msg == k) {
                const char *fate = pi_tx_fate(&txs[i]);

                if (fate)
                    fprintf(o, "expect message %d %s\n", k, fate);
                else
                    fprintf(o, "# message %d: its recipients ended differently (no single "
                            "fate to expect)\n", k);
                break;
            }
    for (i = 0, j = 0; i < nsv; i++)
        j += sv[i].accepted;
    if (nmsg == 0 && j == 0)
        fputs("expect message 1 deferred\n", o);
    else if (nmsg == 0)
        fputs("# no transaction was captured: the placeholder message's fate is not the "
              "capture's\n", o);
    for (k = 1; k >= 0; k--) {
        /* A block needs a line: build it aside, print it when it has one. */
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        if (m == NULL) {
            fputs("mtasim import: out of memory\n", stderr);
            exit(3);
        }
        for (i = 0; i < im->ns; i++)
            if (pi_session_role(im->s[i]) == 'A')
                emit_expect_lines(m, im->s[i], k, &replaced, txs, ntx, i, tls_level);
        fclose(m);
        if (len > 0)
            fprintf(o, "%s\nexpect trace in order\n%s",
                    k ? "# The captured client's commands (verbs and addresses), in order:"
                      : "# The captured server's replies, line by line, in order:", buf);
        else if (k == 0)
            fputs("expect never trace conn established\n", o);
        free(buf);
    }
    if (replaced)
        fputs("# Bytes a scenario cannot hold (control characters, non-ASCII) were replaced "
              "by '?'.\n", o);
    for (i = 0; i < ntx; i++) {
        free(txs[i].from);
        for (j = 0; j < txs[i].nrcpts; j++)
            free(txs[i].rcpts[j]);
    }
    free(txs);
    return 0;
}
