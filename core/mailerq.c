/*
 * mailerq - MailerQ-style plugins: registry, callback chains, accessors, timers
 *
 * SYNOPSIS
 *   See mq.h (the core's side) and mailerq.h (the plugins' side).
 *
 * DESCRIPTION
 *   The registry is process-global, like the hook lists: a plugin's
 *   callbacks are plain functions, and one core runs at a time.
 *   mq_reset() empties it when the core is destroyed.
 *
 *   A chain (one MQ_Context) moves through three states:
 *
 *     CALLING  a plugin's callback is on the stack; a continuation it
 *              calls now is only noted (pending) and applied when the
 *              callback has returned true
 *     HELD     the callback returned true without a continuation; the
 *              next continuation from the holding plugin moves the chain
 *     DONE     the chain is over and done() was called; any continuation
 *              now is a misbehaviour
 *
 *   Which plugin is "calling" an accessor or a continuation is known
 *   while its callback runs and while one of its timers runs (active):
 *   MQ_SmtpData is per plugin, and a plugin continuing a chain another
 *   plugin holds is a misbehaviour.  Outside both (a plugin calling from
 *   its own threads, which mtasim does not support) nothing is known and
 *   the continuation is taken as the holder's.
 *
 *   A misbehaviour never stops the simulation abruptly: it is traced and
 *   remembered (mq_fault), the chain goes on as if MQ_Continue had been
 *   called where that is possible, and the runner ends the run with exit
 *   code 4.
 *
 * DIAGNOSTICS
 *   Out of memory and more than MQ_MAX_CONTEXTS chains call mta_panic().
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "mq.h"
#include "mta_internal.h"
#include "mtasim_plugin.h"
#include "trace.h"

#define MQ_FAULT_MAX 512

const char *const mq_callback_names[MQ_CB__COUNT] = {
    [MQ_CB_CONNECT] = "mq_smtp_in_connect", [MQ_CB_SECURE] = "mq_smtp_in_secure",
    [MQ_CB_AUTHENTICATE] = "mq_smtp_in_authenticate", [MQ_CB_MAILFROM] = "mq_smtp_in_mailfrom",
    [MQ_CB_RCPTTO] = "mq_smtp_in_rcptto", [MQ_CB_DATA] = "mq_smtp_in_data",
    [MQ_CB_MESSAGE] = "mq_smtp_in_message", [MQ_CB_CLOSE] = "mq_smtp_in_close",
    [MQ_CB_OUT_DATA] = "mq_smtp_out_data", [MQ_CB_OUT_SENT] = "mq_smtp_out_sent",
    [MQ_CB_CTX_INIT] = "mq_context_initialize", [MQ_CB_CTX_CLEANUP] = "mq_context_cleanup",
};

/* The callbacks' signatures, one per argument list. */
typedef bool (*cb_plain_fn)(MQ_Context *, MQ_SmtpConnection *);
typedef bool (*cb_ctx_fn)(MQ_Context *);
typedef bool (*cb_str_fn)(MQ_Context *, MQ_SmtpConnection *, const char *, size_t);
typedef bool (*cb_auth_fn)(MQ_Context *, MQ_SmtpConnection *, const char *, size_t,
                           const char *, size_t);
typedef bool (*cb_msg_fn)(MQ_Context *, MQ_SmtpConnection *, MQ_Message *);
typedef bool (*cb_sent_fn)(MQ_Context *, MQ_SmtpConnection *, MQ_Message *, int,
                           const char *, size_t);

struct mq_plugin {
    char *name;                         /* as configured: the trace shows it */
    const char *base;                   /* the file's last component: the order */
    char *file;
    void *fn[MQ_CB__COUNT];
};

enum ctx_state { CTX_CALLING, CTX_HELD, CTX_DONE };
enum continuation { K_NONE, K_CONTINUE, K_COMPLETE, K_RETRY };
static const char *const k_names[] = { "none", "continue", "complete", "retry" };
static const char *const k_funcs[] = { "none", "MQ_Continue", "MQ_Complete", "MQ_Retry" };

struct MQ_Context {
    struct MQ_Context *all_next;        /* every context, freed by mq_reset */
    struct mq_call *call;               /* the caller's, valid until done */
    mq_done_fn done;
    void *arg;
    enum mq_cb cb;
    int fd;                             /* for records after the call is gone */
    enum ctx_state state;
    int next;                           /* the next plugin index to consider */
    int current;                        /* the plugin called or holding */
    enum continuation pending;          /* noted while CALLING */
    int retries;
};

/* A plugin's timer (mtasim_timer_after, MQ_TimerStart: MQ_Timer). */
struct MQ_Timer {
    struct MQ_Timer *next, *prev;
    mta_timer_id id;
    int plugin;                         /* the MailerQ plugin that set it; -1 none */
    char owner[HOOK_WATCH_PLUGIN_MAX];  /* the plugin that set it, by name; "" unknown */
    void (*fn)(void *);
    void *arg;
};

/* An MQ_IOWatch registration: kept, never fires (mailerq.h). */
struct MQ_IOWatcher {
    struct MQ_IOWatcher *next;
    int plugin;
    int fd, events;
};

/* A timer runs as the plugin that set it, under this pseudo-hook: its
 * notes, warnings and a crash name that plugin (mtasim_plugin.h). */
static struct hook_list timer_list = { .name = "mtasim_timer" };
static char timer_owner[HOOK_WATCH_PLUGIN_MAX];  /* the running timer's, for the watch */

static struct mq_plugin plugins[MQ_MAX_PLUGINS];
static int nplugins;
static struct MQ_Context *contexts;
static long ncontexts;
static struct MQ_Timer *timers;
static struct MQ_IOWatcher *watchers;
static void *ctx_data[MQ_MAX_PLUGINS];  /* MQ_SetContextData: the worker's, per plugin */
static struct mq_call worker_call;      /* the worker context's chains */
static int active = -1;                 /* the plugin whose code runs, -1 none */
static int shut;                        /* mq_shutdown ran: the trace may be closed */
static char fault[MQ_FAULT_MAX];
static mta_usec_t fault_at;             /* when it happened, absolute virtual time */

/* The hook registry's watch names the callback and plugin of a crash. */
static struct hook_list watch_lists[MQ_CB__COUNT];

static void chain_step(MQ_Context *ctx);
static void outs_free(void);
static void timer_unlink(struct MQ_Timer *t);
static void timers_cancel_all(void);

/* xmalloc0 - zeroed memory or a loud stop */
static void *xmalloc0(size_t n)
{
    void *p = calloc(1, n);
    if (p == NULL)
        mta_panic("mailerq", "out of memory");
    return p;
}

/* base_of - the last path component of file */
static const char *base_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    return slash ? slash + 1 : file;
}

/* mq_register_plugin - add a plugin, keeping the alphabetical order */
void mq_register_plugin(const char *name, const char *file, void *const fns[MQ_CB__COUNT])
{
    if (nplugins >= MQ_MAX_PLUGINS)
        mta_panic("mq_register_plugin", "more than %d MailerQ plugins", MQ_MAX_PLUGINS);
    struct mq_plugin p;
    p.name = strdup(name);
    p.file = strdup(file);
    if (p.name == NULL || p.file == NULL)
        mta_panic("mq_register_plugin", "out of memory");
    p.base = base_of(p.file);
    memcpy(p.fn, fns, sizeof p.fn);
    /* Insertion after every plugin whose base name sorts before or equal:
     * stable, so equal names keep their load order. */
    int at = nplugins;
    while (at > 0 && strcmp(plugins[at - 1].base, p.base) > 0) {
        plugins[at] = plugins[at - 1];
        at--;
    }
    plugins[at] = p;
    nplugins++;
}

/* mq_has - some plugin exports cb */
int mq_has(enum mq_cb cb)
{
    assert(cb >= 0 && cb < MQ_CB__COUNT);
    for (int i = 0; i < nplugins; i++)
        if (plugins[i].fn[cb] != NULL)
            return 1;
    return 0;
}

const char *mq_fault(mta_usec_t *at)
{
    if (at)
        *at = fault_at;
    return fault[0] ? fault : NULL;
}

/* ---- trace ------------------------------------------------------------- */

/* trace_call - one callback's record: what it was given and what it said */
static void trace_call(const MQ_Context *ctx, int plugin, int ret)
{
    if (!mta_tracing())
        return;
    const struct mq_call *c = ctx->call;
    struct mta_tb tb;
    mta_tb_begin(&tb, "mq", mq_callback_names[ctx->cb]);
    mta_tb_str(&tb, "plugin", plugins[plugin].name);
    mta_tb_int(&tb, "conn", ctx->fd);
    switch (ctx->cb) {
    case MQ_CB_AUTHENTICATE:
        mta_tb_strn(&tb, "login", c->str, c->len);
        break;
    case MQ_CB_MAILFROM:
    case MQ_CB_RCPTTO:
        mta_tb_strn(&tb, "address", c->str, c->len);
        break;
    case MQ_CB_DATA:
        mta_tb_int(&tb, "size", (int64_t)c->len);
        break;
    case MQ_CB_MESSAGE:
    case MQ_CB_OUT_DATA:
    case MQ_CB_OUT_SENT:
        if (c->msg->id)
            mta_tb_int(&tb, "msg", (int64_t)c->msg->id);
        mta_tb_str(&tb, "rcpt", c->msg->recipient);
        mta_tb_int(&tb, "size", (int64_t)c->msg->mime_len);
        if (ctx->cb == MQ_CB_OUT_SENT)
            mta_tb_int(&tb, "code", c->code);
        break;
    default:
        break;
    }
    mta_tb_int(&tb, "ret", ret);
    mta_tb_emit(&tb);
}

/* trace_continuation - "mq continue|complete|retry plugin= conn= callback=" */
static void trace_continuation(const MQ_Context *ctx, enum continuation k)
{
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "mq", k_names[k]);
    mta_tb_str(&tb, "plugin", plugins[ctx->current].name);
    mta_tb_int(&tb, "conn", ctx->fd);
    mta_tb_str(&tb, "callback", mq_callback_names[ctx->cb]);
    mta_tb_emit(&tb);
}

/* misbehave - trace a plugin's breach of the protocol, keep the first */
static void misbehave(const MQ_Context *ctx, int plugin, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void misbehave(const MQ_Context *ctx, int plugin, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *name = plugin >= 0 ? plugins[plugin].name : "(unknown plugin)";
    const char *cb = ctx ? mq_callback_names[ctx->cb] : "none";
    if (fault[0] == '\0') {
        snprintf(fault, sizeof fault, "plugin %s misbehaved in %s (conn %d): %s", name, cb,
                 ctx ? ctx->fd : -1, what);
        fault_at = mta_current != NULL ? mta_now(mta_current) : 0;
    }
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "mq", "misbehaviour");
        mta_tb_str(&tb, "plugin", name);
        mta_tb_int(&tb, "conn", ctx ? ctx->fd : -1);
        mta_tb_str(&tb, "callback", cb);
        mta_tb_str(&tb, "what", what);
        mta_tb_emit(&tb);
    }
}

/* ---- chains ------------------------------------------------------------ */

/* invoke - call plugin i's callback for ctx, attributed to it */
static bool invoke(MQ_Context *ctx, int i)
{
    struct mq_call *c = ctx->call;
    void *fn = plugins[i].fn[ctx->cb];
    struct hook_list *wl = &watch_lists[ctx->cb];
    struct hook_provider wp = { NULL, NULL, plugins[i].name };
    wl->name = mq_callback_names[ctx->cb];
    int saved = active;
    active = i;
    hook_enter(wl, &wp);
    bool ret;
    switch (ctx->cb) {
    case MQ_CB_CONNECT:
    case MQ_CB_SECURE:
    case MQ_CB_CLOSE: {
        cb_plain_fn f;
        memcpy(&f, &fn, sizeof f);
        ret = f(ctx, c->conn);
        break;
    }
    case MQ_CB_CTX_INIT:
    case MQ_CB_CTX_CLEANUP: {
        cb_ctx_fn f;
        memcpy(&f, &fn, sizeof f);
        ret = f(ctx);
        break;
    }
    case MQ_CB_MAILFROM:
    case MQ_CB_RCPTTO:
    case MQ_CB_DATA: {
        cb_str_fn f;
        memcpy(&f, &fn, sizeof f);
        ret = f(ctx, c->conn, c->str, c->len);
        break;
    }
    case MQ_CB_AUTHENTICATE: {
        cb_auth_fn f;
        memcpy(&f, &fn, sizeof f);
        ret = f(ctx, c->conn, c->str, c->len, c->str2, c->len2);
        break;
    }
    case MQ_CB_MESSAGE:
    case MQ_CB_OUT_DATA: {
        cb_msg_fn f;
        memcpy(&f, &fn, sizeof f);
        ret = f(ctx, c->conn, c->msg);
        break;
    }
    case MQ_CB_OUT_SENT: {
        cb_sent_fn f;
        memcpy(&f, &fn, sizeof f);
        ret = f(ctx, c->conn, c->msg, c->code, c->str, c->len);
        break;
    }
    default:
        mta_panic("invoke", "unknown callback %d", (int)ctx->cb);
    }
    hook_leave(wl, &wp, 1, ret);
    active = saved;
    return ret;
}

/* finish - the chain is over: hand back to the caller */
static void finish(MQ_Context *ctx)
{
    ctx->state = CTX_DONE;
    mq_done_fn done = ctx->done;
    struct mq_call *call = ctx->call;
    ctx->call = NULL;           /* the caller may reuse or free it from now on */
    done(ctx->arg, call);
}

/* apply - a continuation of the plugin ctx->current takes effect; 1 when
 * the chain goes on, 0 when it finished */
static int apply(MQ_Context *ctx, enum continuation k)
{
    trace_continuation(ctx, k);
    switch (k) {
    case K_COMPLETE:
        finish(ctx);
        return 0;
    case K_RETRY:
        if (++ctx->retries > MQ_MAX_RETRIES) {
            misbehave(ctx, ctx->current, "MQ_Retry restarted the chain more than %d times",
                      MQ_MAX_RETRIES);
            finish(ctx);
            return 0;
        }
        ctx->next = 0;
        return 1;
    case K_CONTINUE:
    case K_NONE:
        return 1;
    }
    return 1;
}

/* chain_step - call plugins from ctx->next on until one holds the chain or
 * none is left */
static void chain_step(MQ_Context *ctx)
{
    /* Each pass calls one plugin; retries are bounded by MQ_MAX_RETRIES. */
    for (;;) {
        while (ctx->next < nplugins && plugins[ctx->next].fn[ctx->cb] == NULL)
            ctx->next++;
        if (ctx->next >= nplugins) {
            finish(ctx);
            return;
        }
        int i = ctx->next++;
        ctx->current = i;
        ctx->state = CTX_CALLING;
        ctx->pending = K_NONE;
        bool ret = invoke(ctx, i);
        trace_call(ctx, i, ret);
        enum continuation k = ctx->pending;
        ctx->pending = K_NONE;
        if (!ret) {
            if (k != K_NONE)
                misbehave(ctx, i, "called %s but returned false: only a callback that returns "
                          "true (takes control) gives control back", k_funcs[k]);
            continue;
        }
        if (k == K_NONE) {
            ctx->state = CTX_HELD;
            return;
        }
        if (!apply(ctx, k))
            return;
    }
}

/* mq_run - run call->cb's chain; see mq.h */
int mq_run(struct mq_call *call, mq_done_fn done, void *arg)
{
    if (ncontexts >= MQ_MAX_CONTEXTS)
        mta_panic("mq_run", "more than %d plugin chains in one run", MQ_MAX_CONTEXTS);
    MQ_Context *ctx = xmalloc0(sizeof *ctx);
    ctx->all_next = contexts;
    contexts = ctx;
    ncontexts++;
    ctx->call = call;
    ctx->done = done;
    ctx->arg = arg;
    ctx->cb = call->cb;
    ctx->fd = call->fd;
    ctx->current = -1;
    chain_step(ctx);
    return ctx->state == CTX_DONE;
}

/* continuation - MQ_Continue, MQ_Complete or MQ_Retry from a plugin */
static void continuation(MQ_Context *ctx, enum continuation k)
{
    if (ctx == NULL) {
        misbehave(NULL, active, "called %s with a NULL context", k_funcs[k]);
        return;
    }
    switch (ctx->state) {
    case CTX_CALLING:
        if (active >= 0 && active != ctx->current) {
            misbehave(ctx, active, "called %s for a callback of plugin %s", k_funcs[k],
                      plugins[ctx->current].name);
            return;
        }
        if (ctx->pending != K_NONE) {
            misbehave(ctx, ctx->current, "called %s after %s: exactly one gives control back",
                      k_funcs[k], k_funcs[ctx->pending]);
            return;
        }
        ctx->pending = k;
        return;
    case CTX_HELD:
        if (active >= 0 && active != ctx->current) {
            misbehave(ctx, active, "called %s for a chain plugin %s holds", k_funcs[k],
                      plugins[ctx->current].name);
            return;
        }
        if (apply(ctx, k))
            chain_step(ctx);
        return;
    case CTX_DONE:
        misbehave(ctx, active >= 0 ? active : ctx->current,
                  "called %s for a callback that had already given control back (or never took it)",
                  k_funcs[k]);
        return;
    }
}

void MQ_Continue(MQ_Context *ctx) { continuation(ctx, K_CONTINUE); }
void MQ_Complete(MQ_Context *ctx) { continuation(ctx, K_COMPLETE); }
void MQ_Retry(MQ_Context *ctx) { continuation(ctx, K_RETRY); }

/* ---- accessors ----------------------------------------------------------- */

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
    return conn->send(conn->owner, active >= 0 ? plugins[active].name : "(unknown plugin)", buf,
                      len);
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
        mta_tb_str(&tb, "plugin", active >= 0 ? plugins[active].name : "(unknown plugin)");
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
    return conn && active >= 0 ? conn->data[active] : NULL;
}

void MQ_SetSmtpData(MQ_SmtpConnection *conn, void *data)
{
    if (conn != NULL && active >= 0)
        conn->data[active] = data;
}

const char *MQ_MessageEnvelope(const MQ_Message *message, size_t *len)
{
    const char *s = message && message->envelope ? message->envelope : "";
    if (len)
        *len = strlen(s);
    return s;
}

const char *MQ_MessageRecipient(const MQ_Message *message, size_t *len)
{
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
    return message ? message->envelope : NULL;
}

const char *MQ_Recipient(MQ_Message *message)
{
    return message ? message->recipient : NULL;
}

/* set_own - *field becomes a copy of s[0..size), kept in *own (the
 * previous copy freed); a NULL s with a size is ignored */
static void set_own(char **own, const char **field, const char *s, size_t size)
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
    if (message != NULL)
        set_own(&message->envelope_own, &message->envelope, envelope, size);
}

/* MQ_SetRecipient - a new recipient for this message (copied) */
void MQ_SetRecipient(MQ_Message *message, const char *recipient, size_t size)
{
    if (message != NULL)
        set_own(&message->recipient_own, &message->recipient, recipient, size);
}

/* MQ_Mime - the MIME, NUL-terminated (the owner's bytes need not be:
 * they are copied once, as MQ_SetMime would) */
const char *MQ_Mime(MQ_Message *message)
{
    if (message == NULL || message->mime == NULL)
        return NULL;
    if (message->mime != message->mime_own)
        set_own(&message->mime_own, &message->mime, message->mime, message->mime_len);
    return message->mime;
}

struct json_object *MQ_Json(MQ_Message *message)
{
    (void)message;
    return NULL;
}

/* MQ_SetMime - replace the message's MIME with a copy of mime */
void MQ_SetMime(MQ_Message *message, const char *mime, size_t len)
{
    if (message == NULL || (mime == NULL && len > 0))
        return;
    set_own(&message->mime_own, &message->mime, mime, len);
    message->mime_len = len;
}

void mq_message_release(MQ_Message *msg)
{
    free(msg->mime_own);
    free(msg->envelope_own);
    free(msg->recipient_own);
    msg->mime_own = msg->envelope_own = msg->recipient_own = NULL;
}

/* ---- the worker context ---------------------------------------------------- */

void *MQ_ContextData(MQ_Context *ctx)
{
    (void)ctx;
    return active >= 0 ? ctx_data[active] : NULL;
}

void MQ_SetContextData(MQ_Context *ctx, void *data)
{
    (void)ctx;
    if (active >= 0)
        ctx_data[active] = data;
}

/* worker_done - a worker chain is over: nothing waits for it */
static void worker_done(void *arg, struct mq_call *call)
{
    (void)arg;
    (void)call;
}

/* worker_run - the chain of cb for mtasim's one worker thread */
static void worker_run(enum mq_cb cb)
{
    if (!mq_has(cb))
        return;
    memset(&worker_call, 0, sizeof worker_call);
    worker_call.cb = cb;
    worker_call.fd = -1;
    mq_run(&worker_call, worker_done, NULL);
}

/* MailerQ 3.0, mq_context_initialize: "called ... during startup for each
 * worker thread that is created"; mtasim has one, started after the
 * plugins' mq_initialize and stopped before their mq_cleanup. */
void mq_context_start(void) { worker_run(MQ_CB_CTX_INIT); }
void mq_context_stop(void) { worker_run(MQ_CB_CTX_CLEANUP); }

/* ---- timers -------------------------------------------------------------- */

/* timer_fire - a plugin's timer: run its function as that plugin */
static void timer_fire(void *arg)
{
    struct MQ_Timer *t = arg;
    timer_unlink(t);
    void (*fn)(void *) = t->fn;
    void *fnarg = t->arg;
    int saved = active;
    active = t->plugin;
    int known = t->owner[0] != '\0';
    memcpy(timer_owner, t->owner, sizeof timer_owner);
    free(t);
    struct hook_provider wp = { NULL, NULL, timer_owner };
    if (known)
        hook_enter(&timer_list, &wp);
    fn(fnarg);
    if (known)
        hook_leave(&timer_list, &wp, 0, 0);
    active = saved;
}

/* timer_new - fn(arg) usec of virtual time from now, as the calling plugin */
static struct MQ_Timer *timer_new(long usec, void (*fn)(void *), void *arg)
{
    struct mta *m = mta_current;
    if (m == NULL || fn == NULL)
        return NULL;
    struct MQ_Timer *t = xmalloc0(sizeof *t);
    t->plugin = active;
    /* Whose code calls: a MailerQ callback's plugin, else the provider (or
     * the init, or another timer) the hook registry's watch shows. */
    const struct hook_watch *w = hook_watch_get();
    if (active >= 0)
        snprintf(t->owner, sizeof t->owner, "%s", plugins[active].name);
    else if (w->depth > 0)
        snprintf(t->owner, sizeof t->owner, "%s", w->plugin);
    t->fn = fn;
    t->arg = arg;
    t->next = timers;
    if (timers)
        timers->prev = t;
    timers = t;
    t->id = m->env->timer_start(m->env, mta_now(m) + (usec > 0 ? usec : 0), timer_fire, t);
    return t;
}

/* mtasim_timer_after - run fn(arg) usec of virtual time from now (public) */
void mtasim_timer_after(long usec, void (*fn)(void *), void *arg)
{
    (void)timer_new(usec, fn, arg);
}

/* seconds_usec - MailerQ's float seconds as virtual microseconds */
static long seconds_usec(float timeout)
{
    if (!(timeout > 0))
        return 0;
    double us = (double)timeout * 1e6 + 0.5;
    return us > 9e15 ? (long)9e15 : (long)us;
}

MQ_Timer *MQ_TimerStart(MQ_Context *ctx, float timeout, void (*callback)(void *data), void *data)
{
    (void)ctx;
    return timer_new(seconds_usec(timeout), callback, data);
}

/* timer_live - t is a timer that has neither fired nor been stopped */
static int timer_live(const struct MQ_Timer *t)
{
    for (const struct MQ_Timer *p = timers; p != NULL; p = p->next)
        if (p == t)
            return 1;
    return 0;
}

/* timer_unlink - out of the list */
static void timer_unlink(struct MQ_Timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

void MQ_TimerStop(MQ_Timer *timer)
{
    if (!timer_live(timer)) {
        misbehave(NULL, active, "MQ_TimerStop on a timer that fired or was stopped already "
                  "(MailerQ 3.0: \"not legal\")");
        return;
    }
    timer_unlink(timer);
    if (mta_current != NULL)
        mta_current->env->timer_cancel(mta_current->env, timer->id);
    free(timer);
}

void MQ_TimerReset(MQ_Timer *timer, float timeout)
{
    struct mta *m = mta_current;
    if (!timer_live(timer) || m == NULL) {
        misbehave(NULL, active, "MQ_TimerReset on a timer that fired or was stopped already");
        return;
    }
    m->env->timer_cancel(m->env, timer->id);
    timer->id = m->env->timer_start(m->env, mta_now(m) + seconds_usec(timeout), timer_fire, timer);
}

MQ_IOWatcher *MQ_IOWatch(MQ_Context *ctx, int fd, int events,
                         void (*callback)(MQ_IOWatcher *watcher, int fd, int events, void *data),
                         void *data)
{
    (void)ctx;
    (void)callback;
    (void)data;
    struct MQ_IOWatcher *w = xmalloc0(sizeof *w);
    w->plugin = active;
    w->fd = fd;
    w->events = events;
    w->next = watchers;
    watchers = w;
    return w;
}

void MQ_IOUnwatch(MQ_IOWatcher *watcher)
{
    for (struct MQ_IOWatcher **pp = &watchers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == watcher) {
            *pp = watcher->next;
            free(watcher);
            return;
        }
    misbehave(NULL, active, "MQ_IOUnwatch on a watcher that is not watching");
}

struct ev_loop *MQ_ev(MQ_Context *ctx)
{
    (void)ctx;
    return NULL;
}

int mq_timers_pending(void)
{
    return timers != NULL;
}

/* mq_shutdown - the run is over: held chains are misbehaviours unless
 * a plugin timer was still due; cancel the timers */
void mq_shutdown(void)
{
    /* Once only: mta_destroy (mq_reset) comes after the runner closed the
     * trace, and the timers cancelled here must not make a chain that
     * waited for one a misbehaviour then. */
    if (shut)
        return;
    shut = 1;
    if (timers == NULL) {
        /* Oldest first, so the first fault is the earliest chain. */
        MQ_Context *held[64];
        int n = 0;
        for (MQ_Context *c = contexts; c != NULL && n < 64; c = c->all_next)
            if (c->state == CTX_HELD)
                held[n++] = c;
        for (int i = n - 1; i >= 0; i--) {
            misbehave(held[i], held[i]->current, "took control (returned true) and never called "
                      "MQ_Continue, MQ_Complete or MQ_Retry");
            held[i]->state = CTX_DONE;
        }
    }
    timers_cancel_all();
}

/* timers_cancel_all - every plugin timer cancelled and freed */
static void timers_cancel_all(void)
{
    while (timers != NULL) {
        struct MQ_Timer *t = timers;
        timers = t->next;
        if (mta_current != NULL)
            mta_current->env->timer_cancel(mta_current->env, t->id);
        free(t);
    }
}

/* mq_reset - forget everything: the core is being destroyed */
void mq_reset(void)
{
    mq_shutdown();
    timers_cancel_all();        /* any a worker cleanup chain started after it */
    while (watchers != NULL) {
        struct MQ_IOWatcher *w = watchers;
        watchers = w->next;
        free(w);
    }
    memset(ctx_data, 0, sizeof ctx_data);
    while (contexts != NULL) {
        MQ_Context *c = contexts;
        contexts = c->all_next;
        free(c);
    }
    ncontexts = 0;
    outs_free();
    for (int i = 0; i < nplugins; i++) {
        free(plugins[i].name);
        free(plugins[i].file);
    }
    memset(plugins, 0, sizeof plugins);
    nplugins = 0;
    active = -1;
    fault[0] = '\0';
    shut = 0;
}

/* ---- outbound --------------------------------------------------------------- */

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
    struct mq_out *o = xmalloc0(sizeof *o);
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
        MQ_Context *held = contexts;        /* the newest: this chain's */
        misbehave(held, held->current, "took control in an outbound callback; the outbound "
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

/* outs_free - every outbound record, at mq_reset */
static void outs_free(void)
{
    while (outs != NULL) {
        struct mq_out *o = outs;
        outs = o->next;
        mq_message_release(&o->msg);
        free(o);
    }
}
