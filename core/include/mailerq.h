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
 *   callbacks it exports are called.  mq_initialize() runs once all
 *   plugins are loaded, in file-name order, then mq_context_initialize();
 *   when the run is over mq_context_cleanup(), then mq_cleanup() in the
 *   reverse order - each when exported.  One
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
typedef struct MQ_Timer MQ_Timer;                     /* MQ_TimerStart */
typedef struct MQ_IOWatcher MQ_IOWatcher;             /* MQ_IOWatch */

/* MQ_IOWatch events. */
#define MQ_READ 1
#define MQ_WRITE 2

struct json_object;                                   /* json-c's, for MQ_Json */
struct ev_loop;                                       /* libev's, for MQ_ev */

/* ---- what a plugin may export ---------------------------------------- */
int mq_version(void);
void mq_initialize(void);
void mq_cleanup(void);
/* Per worker thread (mtasim has one): after every mq_initialize, and
 * before the mq_cleanups.  true = took control, as the other callbacks. */
bool mq_context_initialize(MQ_Context *ctx);
bool mq_context_cleanup(MQ_Context *ctx);

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

/* The message (MailerQ 3.0, MQ_Message): the envelope sender, the one
 * recipient a callback is about (mq_smtp_in_message: each in turn;
 * outbound: the first) and the MIME, NUL-terminated; the setters copy.
 * Inbound (mq_smtp_in_message) a new envelope or recipient is what is
 * queued; outbound (mq_smtp_out_data) MAIL FROM and RCPT TO have gone
 * out already, so only the MIME still changes what is sent. */
const char *MQ_Envelope(MQ_Message *message);
void MQ_SetEnvelope(MQ_Message *message, const char *envelope, size_t size);
const char *MQ_Recipient(MQ_Message *message);
void MQ_SetRecipient(MQ_Message *message, const char *recipient, size_t size);
const char *MQ_Mime(MQ_Message *message);
void MQ_SetMime(MQ_Message *message, const char *mime, size_t size);
/* The message's JSON (MailerQ 3.0, mq_json.md): a json-c object with the
 * "envelope", "recipient" and "mime" of the message as it is now; what a
 * plugin changes in it changes the message, as the setters do.  It is
 * the message's, valid until the callback chain is over; link json-c
 * (-ljson-c) to work on it.  NULL when json-c is not installed. */
struct json_object *MQ_Json(MQ_Message *message);
/* mtasim's own: with lengths, and the queue id (0 before it is queued). */
const char *MQ_MessageEnvelope(const MQ_Message *message, size_t *len);
const char *MQ_MessageRecipient(const MQ_Message *message, size_t *len);
unsigned long MQ_MessageId(const MQ_Message *message);

/* The calling plugin's own pointer in the worker context (MailerQ 3.0,
 * MQ_Context: not shared between plugins); NULL at first. */
void *MQ_ContextData(MQ_Context *ctx);
void MQ_SetContextData(MQ_Context *ctx, void *data);

/* The event loop, on virtual time.  A timer calls callback(data) timeout
 * seconds from now, as the plugin that started it; it is freed when it
 * fired or was stopped (stopping it after that is a misbehaviour). */
MQ_Timer *MQ_TimerStart(MQ_Context *ctx, float timeout, void (*callback)(void *data), void *data);
void MQ_TimerStop(MQ_Timer *timer);
void MQ_TimerReset(MQ_Timer *timer, float timeout);
/* A watch on a descriptor (docs/inbound.md, "IO watches"): on a simulated
 * connection's descriptor (MQ_SmtpFileDescriptor) callback(watcher, fd,
 * events, data) runs, as the plugin that set the watch, at the virtual
 * instant the connection became readable (MQ_READ: data, or the peer
 * closed or reset it) or writable (MQ_WRITE: connected, room made in the
 * send buffer, everything sent; and once at the start when nothing
 * waits to leave) - each change once, as edge-triggered epoll reports
 * it.  A watch on any other descriptor never fires ("mq warning" in the
 * trace).  MQ_IOUnwatch frees it, also from inside its callback; unwatch
 * before the descriptor closes (mq_smtp_in_close).  MQ_ev: mtasim has no
 * libev loop (its loop is virtual time): NULL, with an "mq warning". */
MQ_IOWatcher *MQ_IOWatch(MQ_Context *ctx, int fd, int events,
                         void (*callback)(MQ_IOWatcher *watcher, int fd, int events, void *data),
                         void *data);
void MQ_IOUnwatch(MQ_IOWatcher *watcher);
struct ev_loop *MQ_ev(MQ_Context *ctx);

#ifdef __cplusplus
}
#endif

#endif
