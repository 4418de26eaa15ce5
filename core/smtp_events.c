/*
 * smtp_events - libESMTP-style event callbacks and reply statuses
 *
 * SYNOPSIS
 *   See core/include/smtp_events.h for the plugin's side.  The SMTP
 *   client raises events through the ev_* functions (mta_internal.h).
 *
 * DESCRIPTION
 *   Callbacks live in one process-wide table, like hook providers, and are
 *   forgotten with them when a core is destroyed.  An event first runs
 *   every callback whose session matches (NULL matches all), in
 *   registration order, then leaves one trace record with the event's
 *   arguments and the final *quit or *adjust, so a scenario can assert the
 *   sequence of events whether or not a plugin listens.
 *
 * BOUNDS
 *   SMTP_EVENTCB_MAX callbacks; more registrations are refused (0).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "mta_internal.h"
#include "strtab.h"
#include "smtp_events.h"
#include "smtp_reply.h"
#include "trace.h"

struct eventcb {
    smtp_session_t session;     /* NULL: every session */
    smtp_eventcb_t cb;
    struct hook_provider provider;  /* for crash reports and plugin notes */
};

/* Callbacks run as providers of this pseudo-hook. */
static struct hook_list eventcb_list = { .name = "smtp_eventcb" };

static struct eventcb callbacks[SMTP_EVENTCB_MAX];
static int ncallbacks;

/* smtp_set_eventcb - register cb for one session or for all */
int smtp_set_eventcb(smtp_session_t session, smtp_eventcb_t cb, void *arg)
{
    if (cb == NULL || ncallbacks == SMTP_EVENTCB_MAX)
        return 0;
    /* Registered from a plugin's init, or from inside one of its callbacks. */
    const char *plugin = NULL;
    if (hook_current(&plugin) == NULL)
        plugin = hook_registering_plugin();
    callbacks[ncallbacks++] = (struct eventcb){ session, cb, { (hook_fn)cb, arg, plugin } };
    return 1;
}

/* ev_reset - forget every callback (the core is going away) */
void ev_reset(void)
{
    ncallbacks = 0;
}

static const char *event_name(int ev)
{
    switch (ev) {
    case SMTP_EV_CONNECT: return "SMTP_EV_CONNECT";
    case SMTP_EV_MAILSTATUS: return "SMTP_EV_MAILSTATUS";
    case SMTP_EV_RCPTSTATUS: return "SMTP_EV_RCPTSTATUS";
    case SMTP_EV_MESSAGEDATA: return "SMTP_EV_MESSAGEDATA";
    case SMTP_EV_MESSAGESENT: return "SMTP_EV_MESSAGESENT";
    case SMTP_EV_DISCONNECT: return "SMTP_EV_DISCONNECT";
    case SMTP_EV_SYNTAXWARNING: return "SMTP_EV_SYNTAXWARNING";
    case SMTP_EV_EXTNA_DSN: return "SMTP_EV_EXTNA_DSN";
    case SMTP_EV_EXTNA_8BITMIME: return "SMTP_EV_EXTNA_8BITMIME";
    case SMTP_EV_EXTNA_CHUNKING: return "SMTP_EV_EXTNA_CHUNKING";
    case SMTP_EV_DELIVERBY_EXPIRED: return "SMTP_EV_DELIVERBY_EXPIRED";
    case SMTP_EV_EXTNA_STARTTLS: return "SMTP_EV_EXTNA_STARTTLS";
    case SMTP_EV_STARTTLS_OK: return "SMTP_EV_STARTTLS_OK";
    case SMTP_EV_INVALID_PEER_CERTIFICATE: return "SMTP_EV_INVALID_PEER_CERTIFICATE";
    case SMTP_EV_NO_PEER_CERTIFICATE: return "SMTP_EV_NO_PEER_CERTIFICATE";
    case SMTP_EV_WRONG_PEER_CERTIFICATE: return "SMTP_EV_WRONG_PEER_CERTIFICATE";
    }
    return "SMTP_EV_UNKNOWN";
}

/* What one event carries, for the callbacks and the trace record. */
struct event {
    int ev;
    const char *mailbox;
    message *msg;
    struct smtp_recipient *rcpt;
    const smtp_status_t *status;
    int octets;
    long expiry_difference;
    int *quit;
    int *adjust;
    const char *cipher;     /* SMTP_EV_STARTTLS_OK */
    int bits;
    long vfy_result;        /* SMTP_EV_INVALID_PEER_CERTIFICATE */
    int *ok;                /* the certificate events */
};

/* raise_event - run the callbacks for ch, then trace the event */
static void raise_event(connection_handle *ch, const struct event *e)
{
    for (int i = 0; i < ncallbacks; i++) {
        const struct eventcb *k = &callbacks[i];
        if (k->session != NULL && k->session != ch)
            continue;
        void *arg = k->provider.closure;
        hook_enter(&eventcb_list, &k->provider);
        switch (e->ev) {
        case SMTP_EV_MAILSTATUS:
            k->cb(ch, e->ev, arg, e->mailbox, e->msg);
            break;
        case SMTP_EV_RCPTSTATUS:
            k->cb(ch, e->ev, arg, e->mailbox, e->rcpt);
            break;
        case SMTP_EV_MESSAGEDATA:
            k->cb(ch, e->ev, arg, e->msg, e->octets);
            break;
        case SMTP_EV_MESSAGESENT:
            k->cb(ch, e->ev, arg, e->msg);
            break;
        case SMTP_EV_SYNTAXWARNING:
        case SMTP_EV_EXTNA_DSN:
        case SMTP_EV_EXTNA_CHUNKING:
            k->cb(ch, e->ev, arg, e->quit);
            break;
        case SMTP_EV_DELIVERBY_EXPIRED:
            k->cb(ch, e->ev, arg, e->expiry_difference, e->adjust);
            break;
        case SMTP_EV_STARTTLS_OK:
            k->cb(ch, e->ev, arg, (void *)NULL, e->cipher, e->bits);
            break;
        case SMTP_EV_INVALID_PEER_CERTIFICATE:
            k->cb(ch, e->ev, arg, e->vfy_result, e->ok);
            break;
        case SMTP_EV_NO_PEER_CERTIFICATE:
        case SMTP_EV_WRONG_PEER_CERTIFICATE:
            k->cb(ch, e->ev, arg, e->ok);
            break;
        default:
            k->cb(ch, e->ev, arg);
            break;
        }
        hook_leave(&eventcb_list, &k->provider, 0, 0);
    }
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "event", event_name(e->ev));
    mta_tb_int(&tb, "conn", ch->fd);
    mta_tb_int(&tb, "event_no", e->ev);
    if (e->msg)
        mta_tb_int(&tb, "msg", (int64_t)e->msg->id);
    if (e->mailbox)
        mta_tb_str(&tb, "mailbox", e->mailbox);
    if (e->status && e->status->code)
        mta_tb_int(&tb, "code", e->status->code);
    if (e->ev == SMTP_EV_MESSAGEDATA)
        mta_tb_int(&tb, "octets", e->octets);
    if (e->ev == SMTP_EV_DELIVERBY_EXPIRED)
        mta_tb_int(&tb, "expiry_difference", e->expiry_difference);
    if (e->quit)
        mta_tb_int(&tb, "quit", *e->quit);
    if (e->adjust)
        mta_tb_int(&tb, "adjust", *e->adjust);
    if (e->cipher) {
        mta_tb_str(&tb, "cipher", e->cipher);
        mta_tb_int(&tb, "bits", e->bits);
    }
    if (e->ev == SMTP_EV_INVALID_PEER_CERTIFICATE)
        mta_tb_int(&tb, "vfy_result", e->vfy_result);
    if (e->ok)
        mta_tb_int(&tb, "ok", *e->ok);
    mta_tb_emit(&tb);
}

/* ev_simple - SMTP_EV_CONNECT, SMTP_EV_DISCONNECT, SMTP_EV_EXTNA_8BITMIME */
void ev_simple(connection_handle *ch, int ev, message *msg)
{
    struct event e = { .ev = ev, .msg = msg };
    raise_event(ch, &e);
}

void ev_mailstatus(connection_handle *ch, message *msg)
{
    struct mta_msg *m = mta_msg_of(msg);
    struct event e = { .ev = SMTP_EV_MAILSTATUS, .mailbox = msg->mail_from, .msg = msg,
                       .status = &m->mail_status };
    raise_event(ch, &e);
}

void ev_rcptstatus(connection_handle *ch, message *msg, int i)
{
    struct mta_msg *m = mta_msg_of(msg);
    struct event e = { .ev = SMTP_EV_RCPTSTATUS, .mailbox = m->rcpt_ext[i].mailbox, .msg = msg,
                       .rcpt = &m->rcpt_ext[i], .status = &m->rcpt_ext[i].status };
    raise_event(ch, &e);
}

void ev_messagedata(connection_handle *ch, message *msg, int octets)
{
    struct event e = { .ev = SMTP_EV_MESSAGEDATA, .msg = msg, .octets = octets };
    raise_event(ch, &e);
}

void ev_messagesent(connection_handle *ch, message *msg)
{
    struct mta_msg *m = mta_msg_of(msg);
    struct event e = { .ev = SMTP_EV_MESSAGESENT, .msg = msg, .status = &m->data_status };
    raise_event(ch, &e);
}

/* ev_quit - an event whose callbacks may ask to quit; returns *quit */
int ev_quit(connection_handle *ch, int ev, message *msg)
{
    int quit = 0;
    struct event e = { .ev = ev, .msg = msg, .quit = &quit };
    raise_event(ch, &e);
    return quit;
}

/* ev_deliverby_expired - returns *adjust as the callbacks left it */
int ev_deliverby_expired(connection_handle *ch, message *msg, long difference)
{
    int adjust = 0;
    struct event e = { .ev = SMTP_EV_DELIVERBY_EXPIRED, .msg = msg,
                       .expiry_difference = difference, .adjust = &adjust };
    raise_event(ch, &e);
    return adjust;
}

/* ev_starttls_ok - the handshake completed (libESMTP passes its SSL *; no
 * SSL object exists here, so NULL) */
void ev_starttls_ok(connection_handle *ch, const char *cipher, int bits)
{
    struct event e = { .ev = SMTP_EV_STARTTLS_OK, .cipher = cipher, .bits = bits };
    raise_event(ch, &e);
}

/* ev_certificate - a certificate event; returns *ok (0: reject, libESMTP's default) */
int ev_certificate(connection_handle *ch, int ev, long vfy_result)
{
    int ok = 0;
    struct event e = { .ev = ev, .vfy_result = vfy_result, .ok = &ok };
    raise_event(ch, &e);
    return ok;
}

/* status_set - remember reply r as a status (its text interned in m) */
void status_set(struct mta *m, smtp_status_t *st, const struct smtp_reply *r)
{
    char text[sizeof r->text];
    size_t n = r->text_len;
    assert(n < sizeof text);
    memcpy(text, r->text, n);
    for (char *lf = memchr(text, '\n', n); lf != NULL; lf = memchr(lf + 1, '\n', (size_t)(text + n - lf - 1)))
        *lf = ' ';
    st->code = r->code;
    st->text = (char *)strtab_intern(m->texts, text, n);
    st->enh_class = r->enh_class;
    st->enh_subject = r->enh_subject;
    st->enh_detail = r->enh_detail;
}

void status_clear(smtp_status_t *st)
{
    memset(st, 0, sizeof *st);
    st->enh_class = st->enh_subject = st->enh_detail = -1;
}

const smtp_status_t *smtp_reverse_path_status(smtp_message_t message)
{
    return message ? &mta_msg_of(message)->mail_status : NULL;
}

const smtp_status_t *smtp_recipient_status(smtp_recipient_t recipient)
{
    return recipient ? &recipient->status : NULL;
}

const smtp_status_t *smtp_message_transfer_status(smtp_message_t message)
{
    return message ? &mta_msg_of(message)->data_status : NULL;
}
