/*
 * pcap_import_tls - mtasim import: what a capture shows of a STARTTLS
 *
 * DESCRIPTION
 *   After the 220 to STARTTLS nothing is cleartext SMTP (RFC 3207 4): the
 *   reader (pcap_import_read.c) counts what follows as TLS records, by
 *   their headers (RFC 8446 5.1), and keeps the first plaintext alert.
 *   From that and how the session ended this file infers what the
 *   scenario language can script (docs/tls.md):
 *
 *   - the handshake's outcome, the remote's "tls" line: a plaintext fatal
 *     alert from the server (RFC 8446 6.2) is protocol-version (70) or
 *     handshake-failure (any other description); records both ways and no
 *     fatal alert is ok; no record from the server and then its RST or
 *     FIN is reset or close; anything else (the capture ends, the client
 *     gave up, a client's alert) is not in the capture: scripted as ok and
 *     said to be unknown;
 *   - the client's policy (config tls_policy): a client that issued
 *     STARTTLS is at least opportunistic (Postfix "may", the least claim);
 *     one that did not go on in cleartext is scripted as required
 *     (Postfix "encrypt"): its STARTTLS was refused (454, 501, ...) and it
 *     sent no MAIL after it in that session (RFC 3207 4 leaves going on to
 *     the client), or its handshake failed and it never opened another
 *     session to that server without STARTTLS (an opportunistic client
 *     retries without TLS, on the same attempt or a later one: docs/tls.md).
 *
 *   What happened inside TLS (the certificate in TLS 1.3, the envelope,
 *   the fate) is never guessed here.
 *
 *   Part of mtasim import: pcap_import.c describes it, and
 *   pcap_import_internal.h is what its files share.
 */
#include <stddef.h>

#include "pcap_import_internal.h"

/* pi_tls_outcome - how the session's handshake ended, as the capture shows */
enum pi_tls_out pi_tls_outcome(const struct pi_session *s)
{
    const struct pi_tls_dir *c = &s->tlsd[0], *v = &s->tlsd[1];
    int e;

    if (!s->tls)
        return PI_TLS_NONE;
    if (v->alert >= 0 && v->alert_level == 2)
        return v->alert == 70 ? PI_TLS_PROTOCOL_VERSION : PI_TLS_HANDSHAKE_FAILURE;
    if (c->records > 0 && v->records > 0 && !c->not_tls && !v->not_tls
        && !(c->alert >= 0 && c->alert_level == 2))
        return PI_TLS_OK;
    if (v->records == 0 && !v->not_tls)
        for (e = 0; e < s->nev; e++)
            if (s->ev[e].t >= s->tls_t && (s->ev[e].kind == EV_RST || s->ev[e].kind == EV_FIN))
                return s->ev[e].from_client ? PI_TLS_UNKNOWN
                       : s->ev[e].kind == EV_RST ? PI_TLS_RESET : PI_TLS_CLOSE;
    return PI_TLS_UNKNOWN;
}

/* pi_tls_word - the remote's "tls" outcome word for o (unknown: ok) */
const char *pi_tls_word(enum pi_tls_out o)
{
    switch (o) {
    case PI_TLS_HANDSHAKE_FAILURE:
        return "handshake-failure";
    case PI_TLS_PROTOCOL_VERSION:
        return "protocol-version";
    case PI_TLS_RESET:
        return "reset";
    case PI_TLS_CLOSE:
        return "close";
    default:
        return "ok";
    }
}

/* pi_tls_failed - o is a failed handshake */
int pi_tls_failed(enum pi_tls_out o)
{
    return o == PI_TLS_HANDSHAKE_FAILURE || o == PI_TLS_PROTOCOL_VERSION || o == PI_TLS_RESET
           || o == PI_TLS_CLOSE;
}

/* asked_starttls - the client issued STARTTLS in s */
static int asked_starttls(const struct pi_session *s)
{
    for (int e = 0; e < s->nev; e++)
        if (s->ev[e].kind == EV_CMD && pi_verb_is(s->ev[e].lines[0], "STARTTLS"))
            return 1;
    return 0;
}

/* pi_tls_level - the client's policy the capture shows: NULL (it never
 * issued STARTTLS), "opportunistic" or "required" (see above) */
const char *pi_tls_level(const struct pi_import *im)
{
    const char *level = NULL;
    int i, j, later;

    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        int e, asked = 0, refused = 0, mail_after = 0;

        if (pi_session_role(s) != 'A')
            continue;
        for (e = 0; e < s->nev; e++) {
            if (s->ev[e].kind != EV_CMD)
                continue;
            if (pi_verb_is(s->ev[e].lines[0], "STARTTLS")) {
                int a = pi_answer_of(s, e);

                asked = 1;
                refused |= a >= 0 && pi_reply_code(&s->ev[a]) != 220;
            } else if (asked && pi_verb_is(s->ev[e].lines[0], "MAIL")) {
                mail_after = 1;
            }
        }
        if (!asked)
            continue;
        if (level == NULL)
            level = "opportunistic";
        if (refused && !mail_after)
            level = "required";     /* refused, and it did not go on in cleartext */
        if (!s->tls || !pi_tls_failed(pi_tls_outcome(s)))
            continue;
        for (j = i + 1, later = 0; j < im->ns && !later; j++)
            later = pi_session_role(im->s[j]) == 'A' && mta_ip_eq(im->s[j]->srv, s->srv) &&
                    !asked_starttls(im->s[j]);
        if (!later)
            level = "required";
    }
    return level;
}
