/*
 * pcap_import_emit - mtasim import, writing: the scenario from the sessions
 *
 * DESCRIPTION
 *   The last stage of pcap_import.c's three: the sessions' events become
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

#include "pcap_import_internal.h"

/* ---- the scenario ------------------------------------------------------ */

/* One captured transaction: MAIL FROM, its RCPTs and what became of them. */
struct pi_tx {
    int session;                /* index into im->s */
    char *from;                 /* without brackets; NULL = unusable */
    char *rcpts[PI_MAX_RCPTS];
    int rcpt_code[PI_MAX_RCPTS];
    size_t rcpt_bytes;          /* the inject line must stay under the scenario's limit */
    int nrcpts;
    int mail_code, data_code, dot_code;     /* 0 = none */
    long body;                  /* -1 = no message data */
    int msg;                    /* the injection it belongs to, from 1 */
};

/* reply_code - the code of a reply event's first line, 0 if none */
static int reply_code(const struct pi_event *e)
{
    const char *l = e->lines[0];

    if (strlen(l) < 3 || !isdigit((unsigned char) l[0]) || !isdigit((unsigned char) l[1])
        || !isdigit((unsigned char) l[2]))
        return 0;
    return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/* cmd_kind - the scenario's name for what an event is answered as */
static const char *cmd_kind(const struct pi_event *e)
{
    static const char *const verbs[] = { "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP",
                                         "QUIT" };
    static const char *const kinds[] = { "ehlo", "helo", "mail", "rcpt", "data", "rset", "noop",
                                         "quit" };
    size_t i;

    if (e == NULL)
        return "greet";
    if (e->kind == EV_BODY)
        return "dot";
    for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (pi_verb_is(e->lines[0], verbs[i]))
            return kinds[i];
    return "unknown";
}

/* path_arg - the address of "MAIL FROM:<a>" / "RCPT TO:<a>", if it is one a
 * scenario can name (<local@domain>, or <> for MAIL); malloc'd or NULL */
static char *path_arg(const char *line, const char *prefix)
{
    size_t n = strlen(prefix), i;
    const char *lt, *gt, *at;

    if (strncasecmp(line, prefix, n) != 0)
        return NULL;
    lt = line + n;
    while (*lt == ' ')
        lt++;
    if (*lt != '<' || (gt = strchr(lt, '>')) == NULL)
        return NULL;
    if (gt == lt + 1)
        return strcmp(prefix, "MAIL FROM:") == 0 ? pi_xstrndup("", 0) : NULL;
    if (gt - lt - 1 > PI_MAX_PATH)
        return NULL;
    at = memchr(lt, '@', (size_t) (gt - lt));
    if (at == NULL || at == lt + 1 || at + 1 == gt || memchr(at + 1, '@', (size_t) (gt - at - 1)))
        return NULL;
    for (i = 1; lt + i < gt; i++) {
        unsigned char c = (unsigned char) lt[i];

        if (c <= ' ' || c >= 127 || c == '"' || c == '<' || c == '\\' || c == ',')
            return NULL;
        if (lt + i > at && !(isalnum(c) || c == '-' || c == '.' || c == '_'))
            return NULL;
    }
    return pi_xstrndup(lt + 1, (size_t) (gt - lt - 1));
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
    int code = reply_code(r), i;

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

/* session_role - 'A' accepted and used, 'P' a probe (nothing sent), 'R', 'U', 'T' */
static char session_role(const struct pi_session *s)
{
    int i;

    if (s->refused)
        return 'R';
    if (s->unreachable)
        return 'U';
    if (!s->synack && !s->no_syn && s->nev == 0)
        return 'T';
    for (i = 0; i < s->nev; i++)
        if (s->ev[i].kind == EV_CMD || s->ev[i].kind == EV_BODY)
            return 'A';
    return 'P';
}

/* answer_of - index of the reply event answering event i of s, -1 if none */
static int answer_of(const struct pi_session *s, int i)
{
    int k;

    for (k = i + 1; k < s->nev; k++)
        if (s->ev[k].kind == EV_REPLY && s->ev[k].answers == i)
            return k;
    return -1;
}

/* ip_str - an address as a scenario writes it (a dotted quad, RFC 5952 text) */
static const char *ip_str(mta_ip a, char buf[MTA_IP_TEXT])
{
    return mta_ip_format(a, buf);
}

/* emit_reply - one scripted reply (or action) of the remote for session sn */
static void emit_reply(FILE *o, const struct pi_event *cmd,
                       const struct pi_event *r, int sn, int nth, int64_t delay, int *replaced)
{
    const char *kind = cmd_kind(cmd);
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

/* collect_txs - the transactions of session si, appended to *txs */
static void collect_txs(const struct pi_session *s, int si, struct pi_tx **txs, int *ntx, int *cap)
{
    struct pi_tx *tx = NULL;
    int i;

    for (i = 0; i < s->nev; i++) {
        const struct pi_event *e = &s->ev[i];
        int a = answer_of(s, i);
        int code = a >= 0 ? reply_code(&s->ev[a]) : 0;

        if (e->kind == EV_BODY && tx) {
            tx->body = (long) e->body_bytes;
            tx->dot_code = code;
            continue;
        }
        if (e->kind != EV_CMD)
            continue;
        if (pi_verb_is(e->lines[0], "MAIL")) {
            if (*ntx == *cap) {
                *cap = *cap ? 2 * *cap : 16;
                *txs = pi_xrealloc(*txs, (size_t) *cap, sizeof **txs);
            }
            tx = &(*txs)[(*ntx)++];
            memset(tx, 0, sizeof *tx);
            tx->session = si;
            tx->from = path_arg(e->lines[0], "MAIL FROM:");
            tx->mail_code = code;
            tx->body = -1;
        } else if (pi_verb_is(e->lines[0], "RCPT") && tx) {
            char *r = path_arg(e->lines[0], "RCPT TO:");

            if (r && (tx->nrcpts == PI_MAX_RCPTS || tx->rcpt_bytes + strlen(r) > PI_MAX_RCPT_BYTES)) {
                free(r);
                r = NULL;       /* too many to inject on one line */
            }
            if (r == NULL) {
                free(tx->from);
                tx->from = NULL;        /* an address a scenario cannot name */
            } else {
                tx->rcpt_bytes += strlen(r) + 3;
                tx->rcpt_code[tx->nrcpts] = code;
                tx->rcpts[tx->nrcpts++] = r;
            }
        } else if (pi_verb_is(e->lines[0], "DATA") && tx) {
            tx->data_code = code;
        } else if (pi_verb_is(e->lines[0], "RSET") || pi_verb_is(e->lines[0], "QUIT")) {
            tx = NULL;
        }
    }
}

/* tx_fate - what mtasim's core makes of the transaction: "delivered",
 * "bounced", "deferred", or NULL when recipients end differently */
static const char *tx_fate(const struct pi_tx *tx)
{
    int i, ok = 0, failed = 0, later = 0;

    if (tx->mail_code / 100 == 5)
        return "bounced";
    if (tx->mail_code / 100 != 2)
        return "deferred";
    for (i = 0; i < tx->nrcpts; i++) {
        int c = tx->rcpt_code[i];

        if (c / 100 == 5)
            failed++;
        else if (c / 100 != 2)
            later++;
        else if (tx->data_code / 100 == 5 || tx->dot_code / 100 == 5)
            failed++;
        else if (tx->data_code == 354 && tx->dot_code / 100 == 2)
            ok++;
        else
            later++;
    }
    if (later)
        return failed || ok ? NULL : "deferred";
    return failed && ok ? NULL : ok ? "delivered" : "bounced";
}

/* same_message - two transactions carry the same envelope (a retry) */
static int same_message(const struct pi_tx *a, const struct pi_tx *b)
{
    int i;

    if (strcmp(a->from, b->from) != 0 || a->nrcpts != b->nrcpts)
        return 0;
    for (i = 0; i < a->nrcpts; i++)
        if (strcasecmp(a->rcpts[i], b->rcpts[i]) != 0)
            return 0;
    return 1;
}

/* The scenario's reply kinds, for counting "nth" per kind in a session. */
static const char *const kind_names[] = { "greet", "ehlo", "helo", "mail", "rcpt", "data", "dot",
                                          "rset", "noop", "quit", "unknown" };
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
    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        int nth[KIND_COUNT] = { 0 }, e, w;
        int64_t base, adjust = sv->client_side && sv->rtt > 0 ? sv->rtt : 0;

        if (!mta_ip_eq(s->srv, sv->addr) || session_role(s) != 'A')
            continue;
        sn++;
        fprintf(o, "  # session %d: from %s port %u\n", sn, ip_str(s->cli, a), s->cport);
        base = s->ack_t >= 0 ? s->ack_t : s->synack_t >= 0 ? s->synack_t : s->nev ? s->ev[0].t : 0;
        for (e = 0; e < s->nev; e++) {
            const struct pi_event *r = &s->ev[e];
            const struct pi_event *cmd;
            int64_t delay;
            int kk;

            if (r->kind != EV_REPLY || r->answers < -1)
                continue;
            cmd = r->answers >= 0 ? &s->ev[r->answers] : NULL;
            kk = kind_index(cmd_kind(cmd));
            nth[kk]++;
            delay = r->t - (cmd ? cmd->t : base) - (cmd ? adjust : adjust / 2);
            emit_reply(o, cmd, r, sn, nth[kk], delay, replaced);
        }
        /* The first command never answered: what the server did instead. */
        for (w = s->waiting_head; w < s->nwaiting; w++) {
            const struct pi_event *cmd = s->waiting[w] >= 0 ? &s->ev[s->waiting[w]] : NULL;
            const char *kind = cmd_kind(cmd), *action = end_action(s);
            int kk = kind_index(kind);

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

/* emit_expect_lines - the trace patterns of session s: its commands (want_cmds)
 * or its replies, those mtasim's core will send or receive as well */
static void emit_expect_lines(FILE *o, const struct pi_session *s, int want_cmds, int *replaced)
{
    int i, accepted = 0, ehlo_refused = 0, ended = 0, reset = 0, last_client = -1;

    for (i = 0; i < s->nev; i++) {
        if (!s->ev[i].from_client && (s->ev[i].kind == EV_RST || s->ev[i].kind == EV_FIN))
            ended = 1;
        reset |= !s->ev[i].from_client && s->ev[i].kind == EV_RST;
        if (s->ev[i].kind == EV_CMD || s->ev[i].kind == EV_BODY)
            last_client = i;
    }
    for (i = 0; i < s->nev; i++) {
        const struct pi_event *e = &s->ev[i];
        int a = answer_of(s, i), include = 0, k;
        char *addr = NULL;

        if (e->kind == EV_REPLY && e->answers == -1 && !want_cmds) {
            include = 1;        /* the banner */
            a = i;
        } else if (e->kind == EV_BODY) {
            include = !want_cmds && a >= 0;
        } else if (e->kind == EV_CMD) {
            const char *l = e->lines[0];
            int code = a >= 0 ? reply_code(&s->ev[a]) : 0;

            if (pi_verb_is(l, "EHLO")) {
                include = !want_cmds;
                ehlo_refused = code == 500 || code == 501 || code == 502 || code == 504 || code == 550;
            } else if (pi_verb_is(l, "HELO")) {
                include = !want_cmds && ehlo_refused;
            } else if (pi_verb_is(l, "MAIL") || pi_verb_is(l, "RCPT")) {
                const char *prefix = pi_verb_is(l, "MAIL") ? "MAIL FROM:" : "RCPT TO:";

                include = 1;
                /* A new transaction; DATA is expected once a recipient is accepted. */
                accepted = prefix[0] == 'M' ? 0 : accepted | (code / 100 == 2);
                addr = path_arg(l, prefix);
                if (want_cmds && addr) {
                    fputs("  smtp send line~", o);
                    put_regex_quoted(o, prefix, addr);
                    fputc('\n', o);
                }
            } else if (pi_verb_is(l, "DATA")) {
                include = accepted;
                if (want_cmds && include)
                    fputs("  smtp send line=DATA\n", o);
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
            fputs("  smtp recv line=", o);
            *replaced |= put_quoted(o, s->ev[a].lines[k], strlen(s->ev[a].lines[k]));
            fputc('\n', o);
        }
    }
}

/* pi_emit_scenario - the whole scenario for what the capture holds */
int pi_emit_scenario(FILE *o, struct pi_import *im, const char *name)
{
    struct pi_server sv[PI_MAX_SERVERS];
    struct pi_tx *txs = NULL;
    int txcap = 0, nsv = 0, ntx = 0, nmsg = 0, i, j, k, replaced = 0, loopback = 0, deferred = 0;
    int skipped_tx = 0;
    char a[MTA_IP_TEXT], b[32], date[32];
    int nv6 = 0, v6_client = -1;
    time_t epoch = (time_t) (im->first_t / 1000000);
    struct tm tm;
    int64_t span = im->last_t - im->first_t, retry_gap = -1;

    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        char role = session_role(s);
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
            collect_txs(s, i, &txs, &ntx, &txcap);
    }
    /* Envelopes: a transaction with the same envelope as an earlier one is its retry. */
    for (i = 0; i < ntx; i++) {
        if (txs[i].from == NULL || txs[i].nrcpts == 0) {
            skipped_tx++;
            continue;
        }
        for (j = 0; j < i && !txs[i].msg; j++)
            if (txs[j].msg && same_message(&txs[i], &txs[j])) {
                txs[i].msg = txs[j].msg;
                if (im->s[txs[i].session]->nev && im->s[txs[j].session]->nev) {
                    int64_t gap = im->s[txs[i].session]->ev[0].t
                                  - im->s[txs[j].session]->ev[im->s[txs[j].session]->nev - 1].t;
                    if (gap > 0 && (retry_gap < 0 || gap < retry_gap))
                        retry_gap = gap;
                }
            }
        if (!txs[i].msg)
            txs[i].msg = ++nmsg;
    }

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
        char role = session_role(s), c[MTA_IP_TEXT];
        int v6 = !mta_ip_is_v4(s->cli);     /* [addr]:port, RFC 3986 3.2.2 */

        fprintf(o, "#   session %d  %s%s%s:%u -> %s%s%s:%u  %s\n", i + 1, v6 ? "[" : "",
                ip_str(s->cli, a), v6 ? "]" : "", s->cport, v6 ? "[" : "", ip_str(s->srv, c),
                v6 ? "]" : "", s->sport,
                role == 'A' ? (s->no_syn ? "SMTP (capture starts after the handshake)" : "SMTP")
                : role == 'R' ? "refused (RST)" : role == 'U' ? "unreachable (ICMP)"
                : role == 'T' ? "no answer to the SYN (timeout)"
                : "a probe: connected, read the banner, sent nothing (not scripted)");
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
        fputs("# IPv4 and IPv6 servers: the default binding (IPv4) reaches the IPv4 ones only\n",
              o);

    /* Fates first: a deferred message needs the run to stop before the retry. */
    for (k = 1; k <= nmsg; k++)
        for (i = ntx - 1; i >= 0; i--)
            if (txs[i].msg == k) {
                deferred |= tx_fate(&txs[i]) && strcmp(tx_fate(&txs[i]), "deferred") == 0;
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
                if (txs[i].body >= 0)
                    fprintf(o, " size %ld", txs[i].body);
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
                const char *fate = tx_fate(&txs[i]);

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
            if (session_role(im->s[i]) == 'A')
                emit_expect_lines(m, im->s[i], k, &replaced);
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
