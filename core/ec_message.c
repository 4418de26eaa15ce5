/*
 * ec_message - a message as Momentum-style hooks see it, and its accessors
 *
 * SYNOPSIS
 *   ec_message *ec = msg_ec(msg, -1);     current, about log_rcpt or the first pending
 *   ec_message *ec = msg_ec(msg, i);      current, about recipient i
 *   call_core_log_delivery_v1_hook(ec, ...);
 *
 *   (public, ec_message.h)
 *   ec_message_get_mailfrom, ec_message_get_rcptto, ec_message_get_code,
 *   ec_message_get_message_size, ec_message_get_envelope
 *
 * DESCRIPTION
 *   Every core message embeds an ec_message.  The core's own state is the
 *   truth (message.h, mta_internal.h); msg_ec() copies what the
 *   documented members show from it, right before the structure is handed
 *   to a plugin: each hook call that takes a message, and each append to
 *   an active queue (whose nodes point at it).  The copy is a handful of
 *   assignments, so there is no second state to keep in step.
 *
 *   next_attempt is the one member a plugin may write
 *   (ec_message_set_next_attempt); queue.c reads it back after that hook.
 *
 *   The protocol-decorated strings of ec_message_get_mailfrom() and
 *   ec_message_get_rcptto() are made when first asked for and interned in
 *   the core's string table (strtab.h): valid for the run, one copy per
 *   distinct text.  A message being received (final_validation) has no
 *   core message yet; validate.c fills _from, _rcpt and _size for it, and
 *   the accessors answer from those alone.
 */
#include <stdio.h>
#include <string.h>

#include "mta_internal.h"
#include "mtasim_plugin.h"

/* current_rcpt - the recipient an ec_message without a given one is about */
static int current_rcpt(const message *p, int rcpt)
{
    if (rcpt >= 0 && rcpt < p->rcpt_count)
        return rcpt;
    if (p->log_rcpt >= 0 && p->log_rcpt < p->rcpt_count)
        return p->log_rcpt;
    for (int i = 0; i < p->rcpt_count; i++)
        if (p->rcpts[i].state == RCPT_PENDING)
            return i;
    return 0;
}

static string string_of(const char *s)
{
    string out = { 0, 0, NULL, STRING_TYPE_STATIC, NULL };
    if (s != NULL) {
        out.buffer = (char *)s;     /* read only: the documented accessors return const */
        out.len = (int)strlen(s);
    }
    return out;
}

/* msg_ec - msg's ec_message, made current, about recipient rcpt */
ec_message *msg_ec(struct mta_msg *msg, int rcpt)
{
    const message *p = &msg->pub;
    ec_message *ec = &msg->ec;
    int i = current_rcpt(p, rcpt);
    const struct message_rcpt *r = p->rcpt_count > 0 ? &p->rcpts[i] : NULL;
    ec->id.slot = (uint32_t)p->injected.tv_sec;
    ec->id.pid = 0;
    ec->id.counter = (uint16_t)p->id;
    ec->creation_time = p->injected;
    ec->next_attempt = p->next_attempt;
    ec->final_time = msg->done_at >= 0 ? mta_tv(msg->done_at) : (struct timeval){ 0, 0 };
    ec->domain = &msg->dom->pub;
    ec->conn_handle = msg->on_conn;
    ec->binding_slot = p->binding_slot;
    if (ec->_rcpt != (r ? r->address : NULL))
        ec->_rcptto = string_of(NULL);      /* made again when asked for */
    ec->_code = string_of(r && r->last_code > 0 ? r->last_note : NULL);
    ec->stage = 0;
    ec->priority = 0;
    ec->delivered = !r || r->state == RCPT_PENDING ? EM_TRYING
                    : r->state == RCPT_DELIVERED ? EM_SUCCEEDED : EM_FAILED;
    ec->num_retries = (unsigned)(p->attempts > 0xffff ? 0xffff : p->attempts);
    ec->bounce = p->dsn_of != 0;
    ec->type = EM_EMAIL_MESSAGE;
    ec->version = 3;
    ec->code_len = (uint16_t)ec->_code.len;
    ec->_mtasim = p;
    ec->_from = p->mail_from;
    ec->_rcpt = r ? r->address : NULL;
    ec->_size = p->body_len;
    return ec;
}

/* ---- the accessors (ec_message.h, mtasim_plugin.h) ------------------------ */

/* mtasim_message_of - the core's message behind an ec_message */
const message *mtasim_message_of(const ec_message *msg)
{
    return msg != NULL ? msg->_mtasim : NULL;
}

/* decorated - "VERB:<addr>\r\n" in the core's string table, or NULL */
static const char *decorated(const char *verb, const char *addr)
{
    if (addr == NULL || mta_current == NULL)
        return NULL;
    char line[MTA_DNS_NAME_MAX * 2 + 32];
    snprintf(line, sizeof line, "%s:<%s>\r\n", verb, addr);
    return mta_text(mta_current, line);
}

const char *ec_message_get_mailfrom(ec_message *mess)
{
    if (mess == NULL)
        return NULL;
    if (mess->_mailfrom.buffer == NULL)
        mess->_mailfrom = string_of(decorated("MAIL FROM", mess->_from));
    return mess->_mailfrom.buffer;
}

const char *ec_message_get_rcptto(ec_message *mess)
{
    if (mess == NULL)
        return NULL;
    if (mess->_rcptto.buffer == NULL)
        mess->_rcptto = string_of(decorated("RCPT TO", mess->_rcpt));
    return mess->_rcptto.buffer;
}

const char *ec_message_get_code(ec_message *mess)
{
    return mess != NULL && mess->_code.len > 0 ? mess->_code.buffer : NULL;
}

size_t ec_message_get_message_size(ec_message *mess)
{
    return mess != NULL ? mess->_size : 0;
}

/* put - at most size - 1 bytes of s[0..n), always terminated (size > 0) */
static void put(char *dst, int size, const char *s, size_t n)
{
    if (dst == NULL || size <= 0)
        return;
    if (n > (size_t)size - 1)
        n = (size_t)size - 1;
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* ec_message_get_envelope - the sender or the recipient, split or whole */
int ec_message_get_envelope(ec_message *mess, int flags, char *localpart, int llen,
                            char *domain, int dlen, int *isnull)
{
    int which = flags & (EC_MSG_ENV_FROM | EC_MSG_ENV_TO);
    if (mess == NULL || (which != EC_MSG_ENV_FROM && which != EC_MSG_ENV_TO))
        return 0;
    const char *addr = which == EC_MSG_ENV_FROM ? mess->_from : mess->_rcpt;
    if (addr == NULL)
        addr = "";
    if (isnull)
        *isnull = addr[0] == '\0';
    if (flags & EC_MSG_ENV_COMPLETE) {
        put(localpart, llen, addr, strlen(addr));
        put(domain, dlen, "", 0);
        return 1;
    }
    const char *at = strrchr(addr, '@');
    size_t local_len = at ? (size_t)(at - addr) : strlen(addr);
    put(localpart, llen, addr, local_len);
    const char *dom = at ? at + 1 : "";
    put(domain, dlen, dom, strlen(dom));
    return 1;
}
