/*
 * mailerq.h - the MailerQ-style plugin API, as mtasim models it
 *
 * SYNOPSIS
 *   #include <mailerq.h>
 *
 *   int mq_version(void) { return MQ_API_VERSION; }
 *
 *   bool mq_smtp_in_rcptto(MQ_Context *ctx, MQ_SmtpConnection *conn,
 *                          const char *address, size_t len)
 *   {
 *       if (len > 6 && memcmp(address, "spam@", 5) == 0) {
 *           MQ_SmtpSend(conn, "550 5.7.1 not here\r\n", 20);
 *           return false;
 *       }
 *       return false;           // not taking control: the next plugin runs
 *   }
 *
 * DESCRIPTION
 *   This header is mtasim's own.  The documented MailerQ names and
 *   behaviour are public; the product's header is not, so every type and
 *   value here is defined by mtasim (MQ_API_VERSION, the opaque structs,
 *   the argument lists where the documentation differs between versions)
 *   and documented in docs/inbound.md.  A plugin written against it runs
 *   under mtasim; it is not binary compatible with MailerQ.
 *
 *   A plugin is a shared object that exports int mq_version(void)
 *   (returning MQ_API_VERSION) and any of the callbacks below; only the
 *   callbacks it exports are called.  mq_initialize() runs once after
 *   loading and mq_cleanup() once before unloading, when exported.  One
 *   shared object may also export mtasim_module_init() and register
 *   Momentum-style hook providers (mtasim_plugin.h): both styles at once.
 *
 *   Order.  For each callback the plugins that export it are called in
 *   the alphabetical order of their file names (the last path component,
 *   compared byte by byte; "10-a.so" before "20-b.so" before "a.so"),
 *   whatever order they were configured in.  Equal names keep their load
 *   order.
 *
 *   Control.  A callback returns false: done, the next plugin is called.
 *   It returns true: it took control, and must later call exactly one of
 *   MQ_Continue(ctx) (go on with the next plugin), MQ_Complete(ctx) (skip
 *   the plugins after it) or MQ_Retry(ctx) (start again with the first
 *   plugin) - from a timer (mtasim_timer_after() in mtasim_plugin.h), or
 *   before it returns.  Until then the SMTP session waits: the reply to
 *   the command is delayed.  Calling none, calling two, calling one
 *   after returning false, or retrying without end (MQ_MAX_RETRIES) is a
 *   plugin misbehaviour: the run ends with exit code 4 and the report
 *   names the plugin and the callback.
 *
 *   Answering.  A plugin may answer a command itself with MQ_SmtpSend():
 *   when a plugin wrote a reply line while the callbacks for a command
 *   ran, the server sends no reply of its own for it, and a 4xx or 5xx
 *   reply refuses the command (the sender, the recipient, the message).
 *
 *   The MQ_SmtpConnection pointer is valid from mq_smtp_in_connect()
 *   until mq_smtp_in_close() returns (or, when that callback took
 *   control, until it gave control back).  MQ_SmtpData() is one pointer
 *   per plugin and connection; the plugin frees what it points to in its
 *   mq_smtp_in_close().
 */
#ifndef MTASIM_MAILERQ_H
#define MTASIM_MAILERQ_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What mq_version() must return (mtasim's own number). */
#define MQ_API_VERSION 500
/* MQ_Retry() restarts one callback's chain at most this often. */
#define MQ_MAX_RETRIES 100

#define MQ_EXPORT __attribute__((visibility("default")))

typedef struct MQ_Context MQ_Context;                 /* one callback chain in progress */
typedef struct MQ_SmtpConnection MQ_SmtpConnection;   /* an SMTP connection */
typedef struct MQ_Message MQ_Message;                 /* a message being received or sent */

/* ---- what a plugin may export ---------------------------------------- */
int mq_version(void);
void mq_initialize(void);
void mq_cleanup(void);

bool mq_smtp_in_connect(MQ_Context *ctx, MQ_SmtpConnection *conn);
bool mq_smtp_in_secure(MQ_Context *ctx, MQ_SmtpConnection *conn);
bool mq_smtp_in_authenticate(MQ_Context *ctx, MQ_SmtpConnection *conn,
                             const char *login, size_t loginlen,
                             const char *password, size_t passlen);
bool mq_smtp_in_mailfrom(MQ_Context *ctx, MQ_SmtpConnection *conn,
                         const char *address, size_t len);
bool mq_smtp_in_rcptto(MQ_Context *ctx, MQ_SmtpConnection *conn,
                       const char *address, size_t len);
bool mq_smtp_in_data(MQ_Context *ctx, MQ_SmtpConnection *conn,
                     const char *mime, size_t len);
bool mq_smtp_in_message(MQ_Context *ctx, MQ_SmtpConnection *conn, MQ_Message *message);
bool mq_smtp_in_close(MQ_Context *ctx, MQ_SmtpConnection *conn);

/* Outbound: the message is about to be sent after DATA (may replace the
 * MIME with MQ_SetMime), and the remote's reply to the end of data. */
bool mq_smtp_out_data(MQ_Context *ctx, MQ_SmtpConnection *conn, MQ_Message *message);
bool mq_smtp_out_sent(MQ_Context *ctx, MQ_SmtpConnection *conn, MQ_Message *message,
                      int code, const char *reply, size_t len);

/* ---- what a plugin may call --------------------------------------------- */
void MQ_Continue(MQ_Context *ctx);
void MQ_Complete(MQ_Context *ctx);
void MQ_Retry(MQ_Context *ctx);

/* The connection's descriptor; -1 once it is closed. */
int MQ_SmtpFileDescriptor(const MQ_SmtpConnection *conn);
/* Write len bytes to the peer (inbound only); returns len, or -1 when the
 * connection is closed or outbound. */
long MQ_SmtpSend(MQ_SmtpConnection *conn, const char *buf, size_t len);
bool MQ_SmtpAuthenticated(const MQ_SmtpConnection *conn);
void MQ_SetSmtpAuthenticated(MQ_SmtpConnection *conn, bool authenticated);
bool MQ_SmtpSecure(const MQ_SmtpConnection *conn);
/* The calling plugin's own pointer for this connection (NULL at first). */
void *MQ_SmtpData(const MQ_SmtpConnection *conn);
void MQ_SetSmtpData(MQ_SmtpConnection *conn, void *data);

/* The message: envelope sender, the one recipient a callback is about
 * (mq_smtp_in_message: each in turn; outbound: the first), the id once
 * queued (0 before), and the MIME, which MQ_SetMime replaces (copied). */
const char *MQ_MessageEnvelope(const MQ_Message *message, size_t *len);
const char *MQ_MessageRecipient(const MQ_Message *message, size_t *len);
unsigned long MQ_MessageId(const MQ_Message *message);
const char *MQ_Mime(const MQ_Message *message, size_t *len);
void MQ_SetMime(MQ_Message *message, const char *mime, size_t len);

#ifdef __cplusplus
}
#endif

#endif
