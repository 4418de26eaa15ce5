/*
 * mailerq_access - the MailerQ-style accessors on connections and messages
 *
 * SYNOPSIS
 *   See mailerq.h: MQ_SmtpFileDescriptor ... MQ_SmtpData, MQ_Envelope ...
 *   MQ_SetMime, and mtasim's MQ_Message* with lengths (MQ_Json is in
 *   mailerq_json.c).
 *
 * DESCRIPTION
 *   Every accessor takes the core's MQ_SmtpConnection / MQ_Message as the
 *   server (smtp_server.c) or mailerq_out.c filled them in.  A NULL
 *   argument is answered with the "nothing" value (-1, false, NULL, ""),
 *   never a crash.  The setters copy: what the plugin passed stays its
 *   own.  A copy lives in the message (mime_own, envelope_own,
 *   recipient_own) until mq_message_release().
 *
 *   MQ_SmtpData is one pointer per plugin and connection: which plugin is
 *   asking is mq_active (mq_internal.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mq_internal.h"
#include "mta_internal.h"
#include "trace.h"


int MQ_SmtpFileDescriptor(const MQ_SmtpConnection *conn)
{
    return conn ? conn->fd : -1;
}

/* MQ_SmtpSend - write to the peer of an inbound connection */
long MQ_SmtpSend(MQ_SmtpConnection *conn, const char *buf, size_t len)
{
    if (conn == NULL || !conn->inbound || conn->fd < 0 || conn->send == NULL ||
        (buf == NULL && len > 0))
        return -1;
    return conn->send(conn->owner, mq_plugin_name(mq_active), buf, len);
}

bool MQ_SmtpAuthenticated(const MQ_SmtpConnection *conn)
{
    return conn && conn->authenticated;
}

/* MQ_SetSmtpAuthenticated - grant or revoke; traced, since it decides AUTH */
void MQ_SetSmtpAuthenticated(MQ_SmtpConnection *conn, bool authenticated)
{
    if (conn == NULL)
        return;
    conn->authenticated = authenticated;
    conn->auth_set = 1;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "mq", "authenticated");
        mta_tb_str(&tb, "plugin", mq_plugin_name(mq_active));
        mta_tb_int(&tb, "conn", conn->fd);
        mta_tb_int(&tb, "value", authenticated ? 1 : 0);
        mta_tb_emit(&tb);
    }
}

bool MQ_SmtpSecure(const MQ_SmtpConnection *conn)
{
    return conn && conn->secure;
}

void *MQ_SmtpData(const MQ_SmtpConnection *conn)
{
    return conn && mq_active >= 0 ? conn->data[mq_active] : NULL;
}

void MQ_SetSmtpData(MQ_SmtpConnection *conn, void *data)
{
    if (conn != NULL && mq_active >= 0)
        conn->data[mq_active] = data;
}

/* The getters read a JSON a plugin may have edited first (mailerq_json.c);
 * the setters write into it. */

const char *MQ_MessageEnvelope(const MQ_Message *message, size_t *len)
{
    if (message != NULL)
        mq_json_pull((MQ_Message *)message);
    const char *s = message && message->envelope ? message->envelope : "";
    if (len)
        *len = strlen(s);
    return s;
}

const char *MQ_MessageRecipient(const MQ_Message *message, size_t *len)
{
    if (message != NULL)
        mq_json_pull((MQ_Message *)message);
    const char *s = message && message->recipient ? message->recipient : "";
    if (len)
        *len = strlen(s);
    return s;
}

unsigned long MQ_MessageId(const MQ_Message *message)
{
    return message ? message->id : 0;
}

/* own_copy - a NUL-terminated copy of s[0..len) */
static char *own_copy(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        mta_panic("mailerq", "out of memory");
    if (len > 0)
        memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

const char *MQ_Envelope(MQ_Message *message)
{
    if (message == NULL)
        return NULL;
    mq_json_pull(message);
    return message->envelope;
}

const char *MQ_Recipient(MQ_Message *message)
{
    if (message == NULL)
        return NULL;
    mq_json_pull(message);
    return message->recipient;
}

/* mq_set_own - *field becomes a copy of s[0..size), kept in *own (the
 * previous copy freed); a NULL s with a size is ignored */
void mq_set_own(char **own, const char **field, const char *s, size_t size)
{
    if (s == NULL && size > 0)
        return;
    char *copy = own_copy(s, size);
    free(*own);
    *own = copy;
    *field = copy;
}

/* MQ_SetEnvelope - a new envelope sender (copied; see mailerq.h) */
void MQ_SetEnvelope(MQ_Message *message, const char *envelope, size_t size)
{
    if (message == NULL)
        return;
    mq_set_own(&message->envelope_own, &message->envelope, envelope, size);
    mq_json_push(message);
}

/* MQ_SetRecipient - a new recipient for this message (copied) */
void MQ_SetRecipient(MQ_Message *message, const char *recipient, size_t size)
{
    if (message == NULL)
        return;
    mq_set_own(&message->recipient_own, &message->recipient, recipient, size);
    mq_json_push(message);
}

/* MQ_Mime - the MIME, NUL-terminated (the owner's bytes need not be:
 * they are copied once, as MQ_SetMime would) */
const char *MQ_Mime(MQ_Message *message)
{
    if (message != NULL)
        mq_json_pull(message);
    if (message == NULL || message->mime == NULL)
        return NULL;
    if (message->mime != message->mime_own)
        mq_set_own(&message->mime_own, &message->mime, message->mime, message->mime_len);
    return message->mime;
}

/* MQ_SetMime - replace the message's MIME with a copy of mime */
void MQ_SetMime(MQ_Message *message, const char *mime, size_t len)
{
    if (message == NULL || (mime == NULL && len > 0))
        return;
    mq_set_own(&message->mime_own, &message->mime, mime, len);
    message->mime_len = len;
    mq_json_push(message);
}

void mq_message_release(MQ_Message *msg)
{
    mq_json_free(msg);
    free(msg->mime_own);
    free(msg->envelope_own);
    free(msg->recipient_own);
    msg->mime_own = msg->envelope_own = msg->recipient_own = NULL;
}

