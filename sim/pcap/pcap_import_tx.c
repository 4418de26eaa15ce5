/*
 * pcap_import_tx - mtasim import: sessions split into transactions, and
 * transactions grouped into messages
 *
 * DESCRIPTION
 *   Between reading (pcap_import_read.c) and writing (pcap_import_emit.c):
 *   the SMTP events of each accepted session become transactions (struct
 *   pi_tx: MAIL FROM, its RCPTs, the replies that decide its fate; a MAIL
 *   starts one, RSET and QUIT end it, BDAT chunks are its data), and the
 *   transactions become messages - each its own, unless it is a retry.
 *   Also what the emitter asks of sessions: their role, which reply
 *   answers which command, and how the captured client used connections.
 *   Writes nothing.
 *
 *   Part of mtasim import: pcap_import.c describes it, and
 *   pcap_import_internal.h is what its files share.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mta.h"
#include "pcap_import_internal.h"

/* pi_reply_code - the code of a reply event's first line, 0 if none */
int pi_reply_code(const struct pi_event *e)
{
    const char *l = e->lines[0];

    if (strlen(l) < 3 || !isdigit((unsigned char) l[0]) || !isdigit((unsigned char) l[1])
        || !isdigit((unsigned char) l[2]))
        return 0;
    return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/* pi_bdat_is_last - "BDAT SIZE LAST": the chunk that ends the message (RFC 3030 2) */
int pi_bdat_is_last(const char *line)
{
    size_t n = strlen(line);

    return pi_verb_is(line, "BDAT") && n >= 10 && strcasecmp(line + n - 5, " LAST") == 0;
}

/* pi_path_arg - the address of "MAIL FROM:<a>" / "RCPT TO:<a>", if it is one a
 * scenario can name (<local@domain>, or <> for MAIL); malloc'd or NULL */
char *pi_path_arg(const char *line, const char *prefix)
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

        /* '#' is atext (RFC 5322 3.2.3) but ends a scenario line outside
         * quotes, and an inject address cannot be quoted (parse.c). */
        if (c <= ' ' || c >= 127 || c == '"' || c == '<' || c == '\\' || c == ',' || c == '#')
            return NULL;
        if (lt + i > at && !(isalnum(c) || c == '-' || c == '.' || c == '_'))
            return NULL;
    }
    {
        /* The core's limits (RFC 5321 4.5.3.1.1-3), which the parser applies. */
        char *addr = pi_xstrndup(lt + 1, (size_t) (gt - lt - 1));

        if (mta_address_check(addr, 1) != NULL) {
            free(addr);
            return NULL;
        }
        return addr;
    }
}

/* pi_session_role - 'A' accepted and used, 'P' a probe (nothing sent), 'R', 'U', 'T' */
char pi_session_role(const struct pi_session *s)
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

/* pi_answer_of - index of the reply event answering event i of s, -1 if none */
int pi_answer_of(const struct pi_session *s, int i)
{
    int k;

    for (k = i + 1; k < s->nev; k++)
        if (s->ev[k].kind == EV_REPLY && s->ev[k].answers == i)
            return k;
    return -1;
}

/* size_param - the SIZE= value of a MAIL command (RFC 1870 6), -1 if none */
static long size_param(const char *line)
{
    const char *p = strchr(line, '>');
    long v = -1;

    while (p != NULL && (p = strchr(p, ' ')) != NULL) {
        p++;
        if (strncasecmp(p, "SIZE=", 5) == 0 && isdigit((unsigned char) p[5])) {
            char *end;
            long long n = strtoll(p + 5, &end, 10);

            if ((*end == '\0' || *end == ' ') && n >= 0 && n <= 1000000000)
                v = (long) n;
        }
    }
    return v;
}

/* pi_collect_txs - the transactions of session si, appended to *txs: a MAIL
 * starts one (a new MAIL after a final reply too: several messages on one
 * connection, RFC 5321 3.3), RSET and QUIT end it */
void pi_collect_txs(const struct pi_session *s, int si, struct pi_tx **txs, int *ntx, int *cap)
{
    struct pi_tx *tx = NULL;
    int i;

    for (i = 0; i < s->nev; i++) {
        const struct pi_event *e = &s->ev[i];
        int a = pi_answer_of(s, i);
        int code = a >= 0 ? pi_reply_code(&s->ev[a]) : 0;

        if (tx && !(e->kind == EV_CMD && (pi_verb_is(e->lines[0], "RSET")
                                          || pi_verb_is(e->lines[0], "QUIT")
                                          || pi_verb_is(e->lines[0], "MAIL"))))
            tx->last_ev = i;
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
            tx->first_ev = tx->last_ev = i;
            tx->from = pi_path_arg(e->lines[0], "MAIL FROM:");
            tx->mail_code = code;
            tx->body = -1;
            tx->size_param = size_param(e->lines[0]);
        } else if (pi_verb_is(e->lines[0], "RCPT") && tx) {
            char *r = pi_path_arg(e->lines[0], "RCPT TO:");

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
        } else if (pi_verb_is(e->lines[0], "BDAT") && tx && tx->dot_code == 0) {
            /* RFC 3030 2: the chunks make the message; the LAST one's reply
             * (or an earlier chunk's refusal) is its fate. */
            tx->bdat = 1;
            /* A chunk's size is the client's word, not bytes seen: bounded. */
            tx->body = (tx->body < 0 ? 0 : tx->body)
                       + (long) (e->body_bytes < PI_MAX_SIZE ? e->body_bytes : PI_MAX_SIZE + 1);
            if (tx->body > PI_MAX_SIZE)
                tx->body = PI_MAX_SIZE + 1;
            if (pi_bdat_is_last(e->lines[0]) || (code != 0 && code / 100 != 2))
                tx->dot_code = code;
        } else if (pi_verb_is(e->lines[0], "RSET") || pi_verb_is(e->lines[0], "QUIT")) {
            tx = NULL;
        }
    }
}

/* pi_tx_fate - what mtasim's core makes of the transaction: "delivered",
 * "bounced", "deferred", or NULL when recipients end differently */
const char *pi_tx_fate(const struct pi_tx *tx)
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
        else if ((tx->data_code == 354 || tx->bdat) && tx->dot_code / 100 == 2)
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

/* session_span - [from, to] capture times of session s */
static void session_span(const struct pi_session *s, int64_t *from, int64_t *to)
{
    *from = s->syn_t >= 0 ? s->syn_t : s->nev ? s->ev[0].t : 0;
    *to = s->nev ? s->ev[s->nev - 1].t : *from;
}

/* pi_several_per_session - some session carried two or more injected messages,
 * and no two sessions to one server were open at once: the replay must use
 * one connection per server at a time */
int pi_several_per_session(const struct pi_import *im, const struct pi_tx *txs, int ntx)
{
    int i, j, several = 0;

    for (i = 0; i < ntx && !several; i++)
        for (j = i + 1; j < ntx && !several; j++)
            several = txs[i].msg && txs[j].msg && txs[i].session == txs[j].session
                      && txs[i].msg != txs[j].msg;
    for (i = 0; i < im->ns && several; i++)
        for (j = i + 1; j < im->ns && several; j++) {
            int64_t f1, t1, f2, t2;

            if (!mta_ip_eq(im->s[i]->srv, im->s[j]->srv) || pi_session_role(im->s[i]) != 'A'
                || pi_session_role(im->s[j]) != 'A')
                continue;
            session_span(im->s[i], &f1, &t1);
            session_span(im->s[j], &f2, &t2);
            several = t1 < f2 || t2 < f1;
        }
    return several;
}

/* pi_most_per_session - the most injected messages one session carried */
int pi_most_per_session(const struct pi_tx *txs, int ntx)
{
    int i, j, most = 0;

    for (i = 0; i < ntx; i++) {
        int n = 0;

        if (!txs[i].msg)
            continue;
        for (j = 0; j < ntx; j++)
            n += txs[j].msg && txs[j].session == txs[i].session;
        most = n > most ? n : most;
    }
    return most;
}

/* pi_assign_messages - each transaction's message (tx->msg, from 1; 0 = left
 * out, counted in *skipped); the number of messages.  *retry_gap: the
 * shortest time from a session to a later one that retried its message
 * (-1 if none). */
int pi_assign_messages(const struct pi_import *im, struct pi_tx *txs, int ntx, int64_t *retry_gap,
                       int *skipped)
{
    int i, j, nmsg = 0;

    /* Messages: each transaction is one, unless it is a retry - the same
     * envelope as an earlier message whose latest transaction failed
     * transiently, in a later session (a client retries a deferred message
     * on a new connection, after its retry interval: Postfix's qmgr(8)
     * defers it to the deferred queue).  The same envelope again on the same
     * connection, or after a delivery, is another message (smtp-source sends
     * one envelope again and again). */
    for (i = 0; i < ntx; i++) {
        if (txs[i].from == NULL || txs[i].nrcpts == 0) {
            (*skipped)++;
            continue;
        }
        for (j = i - 1; j >= 0 && !txs[i].msg; j--) {
            const char *fate;
            int later;

            if (!txs[j].msg || !same_message(&txs[i], &txs[j]))
                continue;
            for (later = j + 1; later < i; later++)
                if (txs[later].msg == txs[j].msg)
                    break;
            if (later < i)
                continue;       /* not the message's latest transaction */
            fate = pi_tx_fate(&txs[j]);
            if (txs[j].session != txs[i].session && fate && strcmp(fate, "deferred") == 0) {
                txs[i].msg = txs[j].msg;
                if (im->s[txs[i].session]->nev && im->s[txs[j].session]->nev) {
                    int64_t gap = im->s[txs[i].session]->ev[0].t
                                  - im->s[txs[j].session]->ev[im->s[txs[j].session]->nev - 1].t;
                    if (gap > 0 && (*retry_gap < 0 || gap < *retry_gap))
                        *retry_gap = gap;
                }
            }
            break;              /* only the latest such message can be retried */
        }
        if (!txs[i].msg)
            txs[i].msg = ++nmsg;
    }
    return nmsg;
}
