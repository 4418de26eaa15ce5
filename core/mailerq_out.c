/*
 * mailerq_out - the outbound MailerQ callbacks: mq_smtp_out_data, mq_smtp_out_sent
 *
 * SYNOPSIS
 *   See mta_internal.h (mq_out_data, mq_out_sent, mq_out_closed: the
 *   outbound client's side) and mailerq.h (the plugins').
 *
 * DESCRIPTION
 *   One record per message attempt and connection, kept until mq_reset:
 *   a plugin that continues an outbound chain late still finds its
 *   context and message, never freed memory.
 *
 *   mq_smtp_out_data may hold control (MailerQ 3.0, mq_smtp_out_data.md:
 *   returning true makes MailerQ "stop processing this message until
 *   either the MQ_Complete, MQ_Continue or MQ_Retry function is called";
 *   the page's own example returns true).  A record then moves through
 *
 *     HELD      the client waits in SC_PLUGIN; when the chain is over,
 *               resume(ch, mime, len) sends the data
 *     DETACHED  the connection closed first (the remote gave up, the run
 *               ended): the record keeps its own copies of the envelope,
 *               recipient and MIME, and the chain's end only traces
 *               "mq out_data_discarded" - the message was failed for now
 *               by the client and goes out again on a later attempt
 *
 *   A plugin that never gives control back is reported by mq_shutdown()
 *   like any other held chain (eventloop.md: it "must" give it back).
 *
 *   mq_smtp_out_sent is called after the final reply; nothing waits for
 *   it, and a plugin holding it is a misbehaviour (the message may be
 *   gone by the time the plugin gives control back).
 */
#include <stdlib.h>
#include <string.h>

#include "mq_internal.h"
#include "mta_internal.h"
#include "trace.h"

/* One outbound message attempt as the plugins see it. */
struct mq_out {
    struct mq_out *next;
    const connection_handle *ch;        /* NULL once detached */
    int live;                           /* between mq_out_data and mq_out_sent */
    int running;                        /* inside mq_run: done() is synchronous */
    mq_out_resume_fn resume;            /* set while mq_smtp_out_data is held */
    MQ_SmtpConnection conn;
    MQ_Message msg;
    struct mq_call call;
};
static struct mq_out *outs;

/* out_done - an outbound chain is over: a held mq_smtp_out_data resumes
 * its connection's data, unless the connection is gone */
static void out_done(void *arg, struct mq_call *call)
{
    struct mq_out *o = arg;
    if (o->running || call->cb != MQ_CB_OUT_DATA)
        return;             /* synchronous: the caller goes on itself */
    mq_out_resume_fn resume = o->resume;
    o->resume = NULL;
    if (o->ch == NULL || resume == NULL) {
        if (mta_tracing()) {
            struct mta_tb tb;
            mta_tb_begin(&tb, "mq", "out_data_discarded");
            mta_tb_int(&tb, "conn", call->fd);
            if (o->msg.id)
                mta_tb_int(&tb, "msg", (int64_t)o->msg.id);
            mta_tb_emit(&tb);
        }
        return;
    }
    resume((connection_handle *)o->ch, o->msg.mime, o->msg.mime_len);
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

/* out_run - one outbound chain; 1 when it is over now, 0 when held */
static int out_run(struct mq_out *o, enum mq_cb cb)
{
    o->call.cb = cb;
    o->call.fd = o->conn.fd;
    o->call.conn = &o->conn;
    o->call.msg = &o->msg;
    o->running = 1;
    int over = mq_run(&o->call, out_done, o);
    o->running = 0;
    return over;
}

/* mq_out_data - mq_smtp_out_data of every plugin, before the body goes out */
int mq_out_data(connection_handle *ch, message *msg, const char **body, size_t *len,
                mq_out_resume_fn resume)
{
    if (!mq_has(MQ_CB_OUT_DATA))
        return 1;
    struct mq_out *o = out_record(ch);
    o->conn.fd = ch->fd;
    o->conn.inbound = 0;
    mq_message_release(&o->msg);
    o->msg.envelope = msg->mail_from;
    o->msg.recipient = msg->rcpt_count > 0 ? msg->rcpts[0].address : "";
    o->msg.id = msg->id;
    o->msg.mime = *body;
    o->msg.mime_len = *len;
    if (!out_run(o, MQ_CB_OUT_DATA)) {
        o->resume = resume;
        return 0;
    }
    *body = o->msg.mime;
    *len = o->msg.mime_len;
    return 1;
}

/* mq_out_closed - ch is closing: detach the record a chain may still hold */
void mq_out_closed(connection_handle *ch)
{
    for (struct mq_out *o = outs; o != NULL; o = o->next) {
        if (o->ch != ch)
            continue;
        if (o->resume != NULL) {
            /* The message and its MIME may be freed before the plugin
             * gives control back: it keeps reading its own copies. */
            MQ_Message *m = &o->msg;
            if (m->envelope != m->envelope_own)
                mq_set_own(&m->envelope_own, &m->envelope, m->envelope, strlen(m->envelope));
            if (m->recipient != m->recipient_own)
                mq_set_own(&m->recipient_own, &m->recipient, m->recipient, strlen(m->recipient));
            if (m->mime != m->mime_own)
                mq_set_own(&m->mime_own, &m->mime, m->mime, m->mime_len);
        }
        o->ch = NULL;
        o->live = 0;
        o->conn.fd = -1;        /* MQ_SmtpFileDescriptor: -1 once closed */
    }
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
        if (!out_run(o, MQ_CB_OUT_SENT)) {
            MQ_Context *held = mq_newest_context();
            mq_misbehave(held, mq_context_plugin(held), "took control in mq_smtp_out_sent; the "
                         "outbound client does not wait for it: call MQ_Continue before "
                         "returning true");
        }
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

