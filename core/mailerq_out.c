/*
 * mailerq_out - the outbound MailerQ callbacks: mq_smtp_out_data, mq_smtp_out_sent
 *
 * SYNOPSIS
 *   See mta_internal.h (mq_out_data, mq_out_sent: the outbound client's
 *   side) and mailerq.h (the plugins').
 *
 * DESCRIPTION
 *   One record per message attempt and connection, kept until mq_reset:
 *   a plugin that (wrongly) continues an outbound chain late still finds
 *   its context and message, never freed memory.
 */
#include <stdlib.h>
#include <string.h>

#include "mq_internal.h"
#include "mta_internal.h"


/* One outbound message attempt as the plugins see it.  Kept until
 * mq_reset: a plugin that (wrongly) continues an outbound chain late
 * still finds it. */
struct mq_out {
    struct mq_out *next;
    const connection_handle *ch;
    int live;                           /* between mq_out_data and mq_out_sent */
    MQ_SmtpConnection conn;
    MQ_Message msg;
    struct mq_call call;
};
static struct mq_out *outs;

/* out_done - an outbound chain is over; the client does not wait for it */
static void out_done(void *arg, struct mq_call *call)
{
    (void)arg;
    (void)call;
}

/* out_record - the live record of ch, or a new one */
static struct mq_out *out_record(const connection_handle *ch)
{
    for (struct mq_out *o = outs; o != NULL; o = o->next)
        if (o->ch == ch && o->live)
            return o;
    struct mq_out *o = mq_xmalloc0(sizeof *o);
    o->next = outs;
    outs = o;
    o->ch = ch;
    o->live = 1;
    return o;
}

/* out_run - one outbound chain, synchronously: holding it is not supported */
static void out_run(struct mq_out *o, enum mq_cb cb)
{
    o->call.cb = cb;
    o->call.fd = o->conn.fd;
    o->call.conn = &o->conn;
    o->call.msg = &o->msg;
    if (!mq_run(&o->call, out_done, o)) {
        MQ_Context *held = mq_newest_context();
        mq_misbehave(held, mq_context_plugin(held), "took control in an outbound callback; the outbound "
                  "client does not wait: call MQ_Continue before returning true");
    }
}

/* mq_out_data - mq_smtp_out_data of every plugin, before the body goes out */
void mq_out_data(connection_handle *ch, message *msg, const char **body, size_t *len)
{
    if (!mq_has(MQ_CB_OUT_DATA))
        return;
    struct mq_out *o = out_record(ch);
    o->conn.fd = ch->fd;
    o->conn.inbound = 0;
    o->msg.envelope = msg->mail_from;
    o->msg.recipient = msg->rcpt_count > 0 ? msg->rcpts[0].address : "";
    o->msg.id = msg->id;
    mq_message_release(&o->msg);
    o->msg.mime = *body;
    o->msg.mime_len = *len;
    out_run(o, MQ_CB_OUT_DATA);
    *body = o->msg.mime;
    *len = o->msg.mime_len;
}

/* mq_out_sent - mq_smtp_out_sent of every plugin, after the final reply */
void mq_out_sent(connection_handle *ch, message *msg, int code, const char *reply)
{
    struct mq_out *o = NULL;
    if (mq_has(MQ_CB_OUT_SENT)) {
        o = out_record(ch);
        o->conn.fd = ch->fd;
        o->msg.envelope = msg->mail_from;
        o->msg.recipient = msg->rcpt_count > 0 ? msg->rcpts[0].address : "";
        o->msg.id = msg->id;
        if (o->msg.mime == NULL) {
            o->msg.mime = msg->body;
            o->msg.mime_len = msg->body_len;
        }
        o->call.code = code;
        o->call.str = reply ? reply : "";
        o->call.len = strlen(o->call.str);
        out_run(o, MQ_CB_OUT_SENT);
    } else {
        for (struct mq_out *p = outs; p != NULL && o == NULL; p = p->next)
            if (p->ch == ch && p->live)
                o = p;
    }
    if (o != NULL)
        o->live = 0;        /* its MIME stays until mq_reset: the client may still read it */
}

/* mq_out_reset - every outbound record freed, at mq_reset */
void mq_out_reset(void)
{
    while (outs != NULL) {
        struct mq_out *o = outs;
        outs = o->next;
        mq_message_release(&o->msg);
        free(o);
    }
}

