/*
 * mq_internal - what the MailerQ-style plugin modules share
 *
 * DESCRIPTION
 *   Private to mailerq.c (registry, callback chains, continuations,
 *   shutdown), mailerq_access.c (the accessors on connections, messages
 *   and the worker context), mailerq_io.c (the event loop: timers, IO
 *   watches, MQ_ev) and mailerq_out.c (the outbound callbacks).  The rest
 *   of the core sees them through mq.h and mta_internal.h only.
 *
 *   mq_active is the plugin whose code runs now (a callback, a timer or
 *   an IO watch callback of it), -1 none: MQ_SmtpData is per plugin, and
 *   a misbehaviour names that plugin.
 */
#ifndef MTASIM_MQ_INTERNAL_H
#define MTASIM_MQ_INTERNAL_H

#include <stddef.h>

#include "mq.h"

struct mq_plugin {
    char *name;                         /* as configured: the trace shows it */
    const char *base;                   /* the file's last component: the order */
    char *file;
    void *fn[MQ_CB__COUNT];
};

extern struct mq_plugin mq_plugins[MQ_MAX_PLUGINS];   /* in callback order */
extern int mq_nplugins;
extern int mq_active;

/* The name of plugin i for traces and notes; "(unknown plugin)" for -1. */
const char *mq_plugin_name(int i);
/* Trace a plugin's breach of the protocol and keep the first (mq_fault);
 * ctx may be NULL (no chain concerned), plugin -1 (unknown). */
void mq_misbehave(const MQ_Context *ctx, int plugin, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The chain mq_run() started last. */
MQ_Context *mq_newest_context(void);
/* The plugin that holds or was last called for ctx. */
int mq_context_plugin(const MQ_Context *ctx);
/* Zeroed memory or mta_panic. */
void *mq_xmalloc0(size_t n);
/* *field becomes a NUL-terminated copy of s[0..size) kept in *own (the
 * previous copy freed); a NULL s with a size is ignored. */
void mq_set_own(char **own, const char **field, const char *s, size_t size);

/* mailerq_json.c: the message's JSON (MQ_Json), when it has one:
 * push writes the message's envelope, recipient and MIME into it, pull
 * reads what a plugin changed there back into the message, end pulls and
 * releases it (the chain is over), free releases it unread. */
void mq_json_push(MQ_Message *m);
void mq_json_pull(MQ_Message *m);
void mq_json_end(MQ_Message *m);
void mq_json_free(MQ_Message *m);

/* mailerq_io.c: cancel and free every plugin timer and IO watch. */
void mq_io_timers_cancel(void);
void mq_io_reset(void);
/* mailerq_out.c: free every outbound record. */
void mq_out_reset(void);

#endif
