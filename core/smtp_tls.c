/*
 * smtp_tls - STARTTLS and the client's TLS policy
 *
 * SYNOPSIS
 *   if (!sc_tls_after_ehlo(c)) sc_next_transaction(c);   the EHLO reply is in
 *   sc_tls_reply(c, r, note);                             the reply to STARTTLS
 *   sc_tls_up(c);  sc_tls_failed(c, err, why, len);        the handshake's end
 *
 * DESCRIPTION
 *   After the first EHLO (or HELO) reply the session's TLS level is the
 *   domain's (config tls_policy), which tls_policy providers may change.
 *   The levels are Postfix's smtp_tls_security_level (mta_tls.h):
 *
 *     none           no STARTTLS; nothing is traced (the default, as
 *                    Postfix's built-in one).
 *     opportunistic  STARTTLS when the server offers it (RFC 3207 4).
 *                    Not offered, or refused (454, 501, any other reply;
 *                    RFC 3207 4: the client decides whether to go on):
 *                    the session goes on in cleartext.  A failed
 *                    handshake: the connection is closed (the session
 *                    state is gone); as Postfix 3.x (smtp.h,
 *                    PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE: "may"
 *                    and the queue file at least minimal_backoff_time
 *                    old), a message queued for less than its
 *                    retry_interval is deferred with 4.7.5 and the host
 *                    is not marked failed; an older one makes the next
 *                    session with the same host skip STARTTLS (Postfix
 *                    reconnects to the same address with TLS disabled,
 *                    smtp_connect.c).  The certificate is not judged (Postfix
 *                    may: delivery goes on with an untrusted certificate
 *                    or the wrong name).
 *     required       TLS or nothing (Postfix encrypt): not offered
 *                    (SMTP_EV_EXTNA_STARTTLS, as libESMTP's
 *                    Starttls_REQUIRED raises it), refused, or a failed
 *                    handshake end the session; the certificate is not
 *                    judged.
 *     verify         required, and the certificate must be in date,
 *                    chain to a trusted CA and name the MX host (exactly,
 *                    or a wildcard for the leftmost label, RFC 6125
 *                    6.4.3) - Postfix verify.  A failure raises libESMTP's
 *                    SMTP_EV_INVALID_PEER_CERTIFICATE (X509_V_ERR_* 10
 *                    expired, 9 not yet valid, 18 self-signed),
 *                    SMTP_EV_NO_PEER_CERTIFICATE or
 *                    SMTP_EV_WRONG_PEER_CERTIFICATE with *ok 0; a callback
 *                    setting *ok accepts the certificate.  Otherwise QUIT
 *                    (the TLS session itself is sound).
 *
 *   A policy failure (required, verify) is the host's: its status is RFC
 *   3463 X.7.4 "security features not supported" (not offered, refused)
 *   or X.7.5 "cryptographic failure" (handshake, certificate).  With
 *   tls_required_failure defer the host is marked failed (the next MX, or
 *   the next message in line waits with this note, as after a failed
 *   connect); with bounce the first message waiting for the pair fails
 *   for good (5.7.x) and the next one gets its own attempt.
 *
 *   After the 220 the client sends nothing in the clear and ignores what
 *   followed the 220 (smtp_client.c, take_input; RFC 3207 5); after the
 *   handshake it forgets the server's extensions and says EHLO again
 *   (RFC 3207 4.2), and does not offer STARTTLS twice.
 *
 *   The tls_policy hook runs when the level is not none or a provider is
 *   registered.  Every decision (level other than none) is a trace record "tls policy"
 *   (conn, domain, host, level, outcome, note) and a log_tls_outcome call;
 *   "tls start" marks the handshake's beginning.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hooks/core/log_tls_outcome.h"
#include "hooks/core/tls_policy.h"
#include "mta_tls.h"
#include "smtp_client_int.h"
#include "smtp_reply.h"
#include "trace.h"

static const char *const level_names[] = { "none", "opportunistic", "required", "verify" };
static const char *const outcome_names[] = { "plain", "secure", "unverified", "not_offered",
                                             "refused", "handshake", "certificate", "fallback" };

/* X509_V_ERR_* values OpenSSL reports (x509_vfy.h), for libESMTP's vfy_result */
#define VFY_CERT_NOT_YET_VALID 9
#define VFY_CERT_HAS_EXPIRED 10
#define VFY_SELF_SIGNED 18

/* outcome - the decision, in the trace and to log_tls_outcome providers */
static void outcome(struct mta_conn *c, int out, const char *note)
{
    assert(out >= 0 && out < (int)(sizeof outcome_names / sizeof outcome_names[0]));
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "tls", "policy");
        mta_tb_int(&tb, "conn", c->pub.fd);
        mta_tb_str(&tb, "domain", c->d->pub.domain);
        mta_tb_str(&tb, "host", c->host);
        mta_tb_str(&tb, "level", level_names[c->tls_level]);
        mta_tb_str(&tb, "outcome", outcome_names[out]);
        mta_tb_str(&tb, "note", note);
        mta_tb_emit(&tb);
    }
    call_core_log_tls_outcome_hook(sc_handle(c), c->tls_level, out, note);
}

/* policy_failed - TLS was required and is not to be had with this host;
 * status "7.4" or "7.5" (RFC 3463 3.8); quit: QUIT can still be sent */
static void policy_failed(struct mta_conn *c, int out, const char *detail, const char *note,
                          int quit)
{
    struct mta *m = c->m;
    char status[DSN_STATUS_MAX];
    outcome(c, out, note);
    snprintf(status, sizeof status, "4.%s", detail);
    domain_set_error(c->d, 0, status, c->host, "%s", note);
    if (m->cfg.tls_required_failure == MTA_TLS_FAIL_BOUNCE) {
        struct mta_msg *msg = queue_active_head(c->d, c->pub.binding_slot);
        if (msg != NULL) {
            snprintf(status, sizeof status, "5.%s", detail);
            queue_remove_active(msg);
            struct rcpt_why why = { 0, status, note, c->host };
            queue_fail_message(msg, OUTCOME_PERMANENT, &why);
        }
    } else {
        host_failure_mark(m, c->pub.addr);
    }
    if (quit)
        sc_send_quit(c);
    else
        sc_conn_close(c);
}

/* sc_tls_after_ehlo - apply the policy to the server's EHLO (or HELO) reply */
int sc_tls_after_ehlo(struct mta_conn *c)
{
    struct mta *m = c->m;
    struct mta_domain *d = c->d;
    char note[MTA_NOTE_MAX];
    if (c->tls_active)
        return 0;           /* the EHLO after the handshake: no second STARTTLS */
    int level = mta_config_tls_level(&m->cfg, d->pub.domain);
    /* Level none with no provider: nothing to decide, nothing traced (the
     * sessions of TLS-less scenarios stay as they were). */
    if (level != MTA_TLS_NONE || has_core_tls_policy_hook())
        call_core_tls_policy_hook(&d->pub, c->pub.binding_slot, c->host, &level);
    if (level < MTA_TLS_NONE || level > MTA_TLS_VERIFY)
        level = MTA_TLS_VERIFY;     /* a provider's nonsense: the strictest */
    c->tls_level = level;
    if (level == MTA_TLS_NONE)
        return 0;
    if (level == MTA_TLS_OPPORTUNISTIC && d->tls_plain && mta_ip_eq(d->tls_plain_addr, c->pub.addr)) {
        d->tls_plain = 0;
        outcome(c, MTA_TLS_OUT_FALLBACK, "cleartext: the TLS handshake with this host failed");
        return 0;
    }
    if (!(c->ext & EXT_STARTTLS) || m->env->tls_start == NULL) {
        const char *why = !(c->ext & EXT_STARTTLS) ? "STARTTLS not offered"
                                                   : "no TLS in this environment";
        if (level == MTA_TLS_OPPORTUNISTIC) {
            snprintf(note, sizeof note, "%s: cleartext", why);
            outcome(c, MTA_TLS_OUT_NOT_OFFERED, note);
            return 0;
        }
        ev_simple(&c->pub, SMTP_EV_EXTNA_STARTTLS, NULL);
        snprintf(note, sizeof note, "TLS is required, but %s by host %s",
                 !(c->ext & EXT_STARTTLS) ? "was not offered" : "this environment has none",
                 c->host);
        policy_failed(c, MTA_TLS_OUT_NOT_OFFERED, "7.4", note, 1);
        return 1;
    }
    if (sc_send_line(c, "STARTTLS", NULL) < 0) {
        sc_conn_close(c);
        return 1;
    }
    sc_expect(c, SC_STARTTLS);
    return 1;
}

/* sc_tls_reply - 220: the handshake; anything else: refused */
void sc_tls_reply(struct mta_conn *c, const struct smtp_reply *r, const char *note)
{
    struct mta_env *env = c->m->env;
    char text[MTA_NOTE_MAX];
    if (r->code == 220) {
        sc_expect(c, SC_TLS);
        if (mta_tracing()) {
            struct mta_tb tb;
            mta_tb_begin(&tb, "tls", "start");
            mta_tb_int(&tb, "conn", c->pub.fd);
            mta_tb_str(&tb, "server_name", c->host);
            mta_tb_emit(&tb);
        }
        int rc = env->tls_start(env, c->pub.fd, 0, c->host);
        if (rc < 0) {
            snprintf(text, sizeof text, "cannot start TLS here (error %d)", -rc);
            sc_tls_failed(c, MTA_TLS_ERR_LOCAL, text, strlen(text));
        }
        return;
    }
    if (c->tls_level == MTA_TLS_OPPORTUNISTIC) {
        /* RFC 3207 4: after a 454 the client decides; Postfix (may) goes on. */
        snprintf(text, sizeof text, "STARTTLS refused (%.400s): cleartext", note);
        outcome(c, MTA_TLS_OUT_REFUSED, text);
        sc_next_transaction(c);
        return;
    }
    snprintf(text, sizeof text, "TLS is required, but host %s refused STARTTLS: %.400s", c->host,
             note);
    policy_failed(c, MTA_TLS_OUT_REFUSED, "7.4", text, 1);
}

/* name_matches - RFC 6125 6.4: host equals the name, or the name is
 * "*.rest" and host is one label followed by ".rest" */
static int name_matches(const char *name, size_t len, const char *host)
{
    if (len == strlen(host) && strncasecmp(name, host, len) == 0)
        return 1;
    if (len > 2 && name[0] == '*' && name[1] == '.') {
        const char *dot = strchr(host, '.');
        return dot != NULL && dot != host && strlen(dot) == len - 1 &&
               strncasecmp(dot, name + 1, len - 1) == 0;
    }
    return 0;
}

/* cert_problem - what is wrong with the certificate for this host: 0 none,
 * else the libESMTP event, with *vfy its X509_V_ERR code and why a note */
static int cert_problem(const struct mta_conn *c, const struct mta_tls_peer *p, long *vfy,
                        char *why, size_t size)
{
    mta_usec_t now = mta_now(c->m);
    *vfy = 0;
    if (!p->has_cert) {
        snprintf(why, size, "no certificate");
        return SMTP_EV_NO_PEER_CERTIFICATE;
    }
    /* As OpenSSL's verification, then libESMTP's name check. */
    if (now > p->not_after || now < p->not_before) {
        *vfy = now > p->not_after ? VFY_CERT_HAS_EXPIRED : VFY_CERT_NOT_YET_VALID;
        snprintf(why, size, "certificate %s", now > p->not_after ? "has expired" : "is not yet valid");
        return SMTP_EV_INVALID_PEER_CERTIFICATE;
    }
    if (!p->trusted) {
        *vfy = VFY_SELF_SIGNED;
        snprintf(why, size, "certificate not trusted (self-signed)");
        return SMTP_EV_INVALID_PEER_CERTIFICATE;
    }
    int match = name_matches(p->cert_name, strlen(p->cert_name), c->host);
    for (const char *n = p->cert_names; !match && *n != '\0';) {
        size_t len = strcspn(n, ",");
        match = name_matches(n, len, c->host);
        n += len + (n[len] == ',');
    }
    if (!match) {
        snprintf(why, size, "certificate name %.100s does not match %.100s", p->cert_name, c->host);
        return SMTP_EV_WRONG_PEER_CERTIFICATE;
    }
    return 0;
}

/* sc_tls_up - the handshake completed: judge the certificate, EHLO again */
void sc_tls_up(struct mta_conn *c)
{
    struct mta_env *env = c->m->env;
    struct mta_tls_peer p;
    char why[MTA_NOTE_MAX / 2], note[MTA_NOTE_MAX];
    long vfy;
    memset(&p, 0, sizeof p);
    if (env->tls_peer == NULL || env->tls_peer(env, c->pub.fd, &p) < 0)
        p.has_cert = 0;
    c->tls_active = 1;
    ev_starttls_ok(&c->pub, p.cipher, p.bits);
    int problem = cert_problem(c, &p, &vfy, why, sizeof why);
    if (problem && c->tls_level == MTA_TLS_VERIFY &&
        !ev_certificate(&c->pub, problem, vfy)) {
        snprintf(note, sizeof note, "Server certificate not verified: %s (host %s)", why, c->host);
        policy_failed(c, MTA_TLS_OUT_CERTIFICATE, "7.5", note, 1);
        return;
    }
    snprintf(note, sizeof note, "%s %s with %s%s%s", p.version, p.cipher, c->host,
             problem ? ": " : ", certificate verified", problem ? why : "");
    outcome(c, problem ? MTA_TLS_OUT_UNVERIFIED : MTA_TLS_OUT_SECURE, note);
    /* RFC 3207 4.2: the client MUST discard what it learned from the
     * server before TLS and SHOULD send EHLO first. */
    c->ext = 0;
    c->size_limit = 0;
    c->deliverby_min = 0;
    c->esmtp = 0;
    if (sc_send_line(c, "EHLO", c->m->bindings[c->pub.binding_slot].ehlo_name) < 0) {
        sc_conn_close(c);
        return;
    }
    sc_expect(c, SC_EHLO);
}

/* msg_age - how long msg has been queued */
static mta_usec_t msg_age(struct mta *m, const struct mta_msg *msg)
{
    return mta_now(m) - ((mta_usec_t)msg->pub.injected.tv_sec * MTA_USEC_PER_SEC +
                         msg->pub.injected.tv_usec);
}

/* sc_tls_failed - the handshake failed: fall back (opportunistic) or fail */
void sc_tls_failed(struct mta_conn *c, int err, const char *why, size_t len)
{
    static const char *const errs[] = { "", "handshake failure", "protocol version refused",
                                        "reset", "closed", "not TLS", "local failure" };
    char note[MTA_NOTE_MAX];
    const char *kind = err >= 1 && err <= MTA_TLS_ERR_LOCAL ? errs[err] : "failure";
    snprintf(note, sizeof note, "TLS handshake with %s failed (%s: %.*s)", c->host, kind,
             (int)(len < 300 ? len : 300), why != NULL ? why : "");
    if (c->tls_level == MTA_TLS_OPPORTUNISTIC) {
        struct mta_domain *d = c->d;
        struct mta_msg *msg = queue_active_head(d, c->pub.binding_slot);
        if (msg != NULL && msg_age(c->m, msg) < msg->retry_interval) {
            /* Postfix: no cleartext for mail younger than minimal_backoff_time;
             * deferred, and the destination is not throttled. */
            strncat(note, "; deferred: no cleartext retry for a message queued less than "
                    "its retry_interval", sizeof note - strlen(note) - 1);
            outcome(c, MTA_TLS_OUT_HANDSHAKE, note);
            domain_set_error(d, 0, "4.7.5", c->host, "%s", note);
            queue_remove_active(msg);
            struct rcpt_why why = { 0, "4.7.5", note, c->host };
            queue_fail_message(msg, OUTCOME_TRANSIENT, &why);
            sc_conn_close(c);
            return;
        }
        d->tls_plain = 1;
        d->tls_plain_addr = c->pub.addr;
        strncat(note, "; the next session with this host is in cleartext",
                sizeof note - strlen(note) - 1);
        outcome(c, MTA_TLS_OUT_HANDSHAKE, note);
        sc_conn_close(c);   /* nothing can be said any more, not even QUIT */
        return;
    }
    policy_failed(c, MTA_TLS_OUT_HANDSHAKE, "7.5", note, 0);
}
