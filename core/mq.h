/*
 * mq - MailerQ-style plugins: registry, callback chains, accessors, timers
 *
 * SYNOPSIS
 *   (the loader, sim/run/plugin.c)
 *   const void *fns[MQ_CB__COUNT];   ... dlsym each of mq_callback_names ...
 *   mq_register_plugin("b.so", "/path/b.so", fns);
 *
 *   (the inbound server, smtp_server.c)
 *   if (mq_has(MQ_CB_RCPTTO)) {
 *       struct mq_call call = { .cb = MQ_CB_RCPTTO, .conn = conn, .str = addr, .len = n };
 *       mq_run(&call, resume, session);      resume(session, &call) runs later, or now
 *   }
 *
 *   (the outbound client, via mq_out_data / mq_out_sent in mta_internal.h)
 *
 * DESCRIPTION
 *   The registry keeps, per callback, the plugins that export it in the
 *   alphabetical order of their file names (mailerq.h says why).  mq_run()
 *   calls them one by one under the continuation protocol: a callback
 *   returning true holds the chain until its plugin calls MQ_Continue,
 *   MQ_Complete or MQ_Retry.  When the chain is over, done(arg, call) is
 *   called - from inside mq_run() when no plugin held it, otherwise from
 *   inside the continuation - and the caller must not touch the call
 *   after that before it was re-initialised.
 *
 *   Every callback is one trace record "mq NAME plugin=P conn=FD ... ret=0|1",
 *   every continuation one "mq continue|complete|retry plugin=P conn=FD
 *   callback=NAME", a misbehaviour one "mq misbehaviour plugin=P ...
 *   what=..."; the first misbehaviour is also kept for mq_fault(), which
 *   the runner turns into exit code 4.
 *
 *   Contexts (MQ_Context) live until mq_reset(): a late or second
 *   continuation on a finished chain is detected, never a use after free.
 *   mtasim_timer_after() timers are cancelled by mq_shutdown().
 *
 * BOUNDS
 *   MQ_MAX_PLUGINS plugins; MQ_MAX_RETRIES restarts of one chain;
 *   MQ_MAX_CONTEXTS chains per run.
 */
#ifndef MTASIM_MQ_H
#define MTASIM_MQ_H

#include <stddef.h>

#include "mailerq.h"
#include "mtasim_env.h"

#define MQ_MAX_PLUGINS 64
#define MQ_MAX_CONTEXTS (1 << 20)

enum mq_cb {
    MQ_CB_CONNECT, MQ_CB_SECURE, MQ_CB_AUTHENTICATE, MQ_CB_MAILFROM, MQ_CB_RCPTTO,
    MQ_CB_DATA, MQ_CB_MESSAGE, MQ_CB_CLOSE, MQ_CB_OUT_DATA, MQ_CB_OUT_SENT,
    MQ_CB_CTX_INIT, MQ_CB_CTX_CLEANUP,   /* the worker context's, no connection */
    MQ_CB__COUNT
};
/* "mq_smtp_in_connect", ...: the exported symbol of each callback. */
extern const char *const mq_callback_names[MQ_CB__COUNT];

/* What the server or client knows about one connection (the plugins see
 * it as MQ_SmtpConnection; its members are private to the core). */
struct MQ_SmtpConnection {
    int fd;                         /* -1 once closed */
    int inbound;                    /* MQ_SmtpSend works only inbound */
    int authenticated;
    int auth_set;                   /* MQ_SetSmtpAuthenticated ran in this AUTH's chain */
    int secure;
    void *data[MQ_MAX_PLUGINS];     /* MQ_SetSmtpData, per registered plugin */
    /* MQ_SmtpSend: write to the peer; the owner sets it. */
    long (*send)(void *owner, const char *plugin, const char *buf, size_t len);
    void *owner;
};

struct MQ_Message {
    const char *envelope;           /* MAIL FROM, no brackets */
    const char *recipient;          /* the one a callback is about */
    unsigned long id;               /* 0 until queued */
    const char *mime;               /* the current MIME: the owner's or mime_own */
    size_t mime_len;
    char *mime_own;                 /* MQ_SetMime's copy, freed by mq_message_release */
    char *envelope_own;             /* MQ_SetEnvelope's copy, likewise */
    char *recipient_own;            /* MQ_SetRecipient's copy, likewise */
    struct json_object *json;       /* MQ_Json's, until the chain is over */
};

/* One callback chain to run: which callback and its arguments. */
struct mq_call {
    enum mq_cb cb;
    int fd;                         /* the connection's descriptor, for the trace */
    MQ_SmtpConnection *conn;
    const char *str, *str2;         /* address / login / mime; password */
    size_t len, len2;
    MQ_Message *msg;                /* MESSAGE, OUT_DATA, OUT_SENT */
    int code;                       /* OUT_SENT: the reply code */
};

typedef void (*mq_done_fn)(void *arg, struct mq_call *call);

/* Registration by the loader: fns[i] is the plugin's mq_callback_names[i]
 * or NULL.  file decides the order; name is what the trace shows. */
void mq_register_plugin(const char *name, const char *file, void *const fns[MQ_CB__COUNT]);
/* Some plugin exports cb. */
int mq_has(enum mq_cb cb);
/* Run the chain of call->cb; done(arg, call) when it is over (see above).
 * Returns 1 when done already ran, 0 when a plugin holds the chain. */
int mq_run(struct mq_call *call, mq_done_fn done, void *arg);
/* The first plugin misbehaviour of the run, one line, and when (*at,
 * absolute virtual time; at may be NULL); NULL if none. */
const char *mq_fault(mta_usec_t *at);
/* The environment's event ev on simulated descriptor fd: report it to
 * the MQ_IOWatch watches on fd (mailerq_io.c).  Both the server and the
 * client call it first thing for every event of their descriptors. */
void mq_io_tcp_event(int fd, enum mta_tcp_event ev);
/* Some plugin timer (mtasim_timer_after) is still due. */
int mq_timers_pending(void);
/* Report every chain still held as a misbehaviour, unless timers of
 * plugins are still pending (the run was cut short); cancel the timers. */
void mq_shutdown(void);
/* Forget plugins, contexts and the fault: the core is being destroyed. */
void mq_reset(void);
/* Free what MQ_SetMime, MQ_SetEnvelope, MQ_SetRecipient and MQ_Mime
 * left in msg. */
void mq_message_release(MQ_Message *msg);
/* The worker context: mq_context_initialize of every plugin (after the
 * mq_initialize calls), and mq_context_cleanup (before mq_cleanup). */
void mq_context_start(void);
void mq_context_stop(void);

#endif
