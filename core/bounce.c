/*
 * bounce - bounces as real messages: one RFC 3464 DSN per failure event
 *
 * SYNOPSIS
 *   bounce_flush(msg);      after an attempt, an expiry or a purge
 *
 * DESCRIPTION
 *   When recipients of a message fail for good (a 5xx, a null MX, no such
 *   domain, an expiry), the core tells the envelope sender with a
 *   delivery status notification (RFC 3464; RFC 5321 6.1: a server that
 *   accepted a message MUST report its failure).  bounce_flush() runs at
 *   the end of every event that can fail recipients - an attempt, an
 *   expiry, a purge of the domain's queue - and makes ONE report for
 *   every recipient that failed since the previous report: a message
 *   whose recipients fail in two attempts gets two reports, never one
 *   per recipient.
 *
 *   The report (dsn_writer.c) goes back through the same queue as a new
 *   message: from the null sender <> (RFC 5321 4.5.5), to the original
 *   envelope sender, through the original's binding, whose EHLO name is
 *   the Reporting-MTA.  It is delivered, deferred or bounced like any
 *   message; its own failure makes no report, because its sender is
 *   null.  Its id is MTA_DSN_ID_BASE + k for the k-th report of the run
 *   (deterministic: reports are made in event order), and message.dsn_of
 *   names the message it reports on.
 *
 *   No report is made, and a "queue no_dsn" trace record says why, when
 *   the sender is null (RFC 5321 4.5.5, RFC 3461 6.2: a notification
 *   about a notification would loop), when the message asked for none
 *   (RFC 3461 4.1: NOTIFY=NEVER, or NOTIFY without FAILURE), or when the
 *   sender has no domain or no local part to send to.  With "config dsn_generation off"
 *   no report is made and nothing is traced (the bounce is still logged
 *   with log_permanent_failure_v1).
 *
 *   The returned content (RFC 3461 4.3) is the whole message with
 *   RET=FULL, otherwise the header only, which RFC 3461 leaves to the
 *   MTA when no RET was given.
 *
 *   The trace record "queue dsn" carries msg (the original), dsn (the
 *   report's id), to, rcpts, status (each reported recipient's status,
 *   comma-separated, in recipient order), size and text (the whole
 *   report), so a scenario can assert on any line of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn_writer.h"
#include "mta_internal.h"
#include "trace.h"

/* wants_failure_dsn - RFC 3461 4.1: NOTIFY absent, or naming FAILURE */
static int wants_failure_dsn(const message *msg)
{
    if (msg->dsn_notify == NULL)
        return 1;
    const char *p = msg->dsn_notify;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 7 && strncasecmp(p, "FAILURE", 7) == 0)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

static void trace_no_dsn(const struct mta_msg *msg, const char *reason)
{
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "queue", "no_dsn");
    mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
    mta_tb_str(&tb, "domain", msg->dom->pub.domain);
    mta_tb_str(&tb, "reason", reason);
    mta_tb_emit(&tb);
}

/* bounce_flush - one report for the recipients failed since the last one */
void bounce_flush(struct mta_msg *msg)
{
    struct mta *m = msg->dom->m;
    int n = 0;
    for (int i = 0; i < msg->pub.rcpt_count; i++) {
        enum rcpt_state st = msg->pub.rcpts[i].state;
        n += (st == RCPT_BOUNCED || st == RCPT_EXPIRED) && !msg->rcpt_priv[i].dsn_done;
    }
    if (n == 0)
        return;
    struct dsn_rcpt *rcpts = calloc((size_t)n, sizeof *rcpts);
    if (rcpts == NULL)
        mta_panic("bounce_flush", "out of memory");
    char statuses[MTA_NOTE_MAX] = "";
    int k = 0;
    for (int i = 0; i < msg->pub.rcpt_count; i++) {
        const struct message_rcpt *r = &msg->pub.rcpts[i];
        if ((r->state != RCPT_BOUNCED && r->state != RCPT_EXPIRED) || msg->rcpt_priv[i].dsn_done)
            continue;
        msg->rcpt_priv[i].dsn_done = 1;
        rcpts[k] = (struct dsn_rcpt){ r->address, NULL, r->last_status, r->last_mta,
                                      msg->rcpt_priv[i].diag, r->last_note };
        size_t used = strlen(statuses);
        snprintf(statuses + used, sizeof statuses - used, "%s%s", k ? "," : "",
                 r->last_status ? r->last_status : "");
        k++;
    }
    const char *sender = msg->pub.mail_from;
    const char *skip = NULL;
    if (!m->cfg.dsn_generation)
        skip = "";
    else if (sender[0] == '\0')
        skip = "null sender: a notification is never sent about a notification";
    else if (!wants_failure_dsn(&msg->pub))
        skip = "the message asked for no failure notification (NOTIFY)";
    else if (strchr(sender, '@') == NULL || strrchr(sender, '@')[1] == '\0' ||
             strlen(strrchr(sender, '@') + 1) >= MTA_DNS_NAME_MAX)
        skip = "the sender has no domain to send a notification to";
    else if (mta_address_check(sender, 1) != NULL)
        /* "<@sender.test>": no mailbox (RFC 5321 4.1.2: Local-part "@"
         * Domain), so no recipient the queue takes - it used to end the
         * run in an internal error. */
        skip = "the sender has no local part to send a notification to";
    if (skip != NULL) {
        if (skip[0])
            trace_no_dsn(msg, skip);
        free(rcpts);
        return;
    }
    unsigned long id = MTA_DSN_ID_BASE + ++m->ndsn;
    const char *host = m->bindings[msg->pub.binding_slot].ehlo_name;
    char message_id[MTA_DNS_NAME_MAX + 32], boundary[64];
    snprintf(message_id, sizeof message_id, "dsn.%lu@%s", id, host);
    snprintf(boundary, sizeof boundary, "mtasim-dsn-%lu", id);
    struct dsn_report rep = {
        .reporting_mta = host,
        .envid = msg->pub.dsn_envid,
        .sender = sender,
        .message_id = message_id,
        .boundary = boundary,
        .arrival = msg->pub.injected.tv_sec,
        .date = (int64_t)(mta_now(m) / MTA_USEC_PER_SEC),
        .nrcpts = n,
        .rcpts = rcpts,
        .original = msg->pub.body,
        .original_len = msg->pub.body_len,
        .return_full = msg->pub.dsn_ret != NULL && strcasecmp(msg->pub.dsn_ret, "FULL") == 0,
    };
    size_t len;
    char *text = dsn_write(&rep, &len);
    free(rcpts);
    m->stats.dsns++;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", "dsn");
        mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
        mta_tb_str(&tb, "domain", msg->dom->pub.domain);
        mta_tb_int(&tb, "dsn", (int64_t)id);
        mta_tb_str(&tb, "to", sender);
        mta_tb_int(&tb, "rcpts", n);
        mta_tb_str(&tb, "status", statuses);
        mta_tb_int(&tb, "size", (int64_t)len);
        mta_tb_strn(&tb, "text", text, len);
        mta_tb_emit(&tb);
    }
    struct mta_msg *dsn = mta_inject_internal(m, id, sender, text, len, msg->pub.binding_slot);
    if (dsn == NULL)
        mta_panic("bounce_flush", "cannot queue the DSN to %s", sender);
    dsn->pub.dsn_of = msg->pub.id;
}
