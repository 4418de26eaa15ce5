/*
 * mailerq - MailerQ-style plugins: registry, callback chains, the worker context
 *
 * SYNOPSIS
 *   See mq.h (the core's side) and mailerq.h (the plugins' side).
 *   The accessors are in mailerq_access.c, the event loop (timers, IO
 *   watches) in mailerq_io.c, the outbound callbacks in mailerq_out.c;
 *   mq_internal.h is what they share.
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
#include "mq_internal.h"
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

struct mq_plugin mq_plugins[MQ_MAX_PLUGINS];
int mq_nplugins;
int mq_active = -1;                     /* the plugin whose code runs, -1 none */
static struct MQ_Context *contexts;
static long ncontexts;
static void *ctx_data[MQ_MAX_PLUGINS];  /* MQ_SetContextData: the worker's, per plugin */
static struct mq_call worker_call;      /* the worker context's chains */
static int shut;                        /* mq_shutdown ran: the trace may be closed */
static char fault[MQ_FAULT_MAX];
static mta_usec_t fault_at;             /* when it happened, absolute virtual time */

/* The hook registry's watch names the callback and plugin of a crash. */
static struct hook_list watch_lists[MQ_CB__COUNT];

static void chain_step(MQ_Context *ctx);

/* mq_xmalloc0 - zeroed memory or a loud stop */
void *mq_xmalloc0(size_t n)
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
    if (mq_nplugins >= MQ_MAX_PLUGINS)
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
    int at = mq_nplugins;
    while (at > 0 && strcmp(mq_plugins[at - 1].base, p.base) > 0) {
        mq_plugins[at] = mq_plugins[at - 1];
        at--;
    }
    mq_plugins[at] = p;
    mq_nplugins++;
}

/* mq_has - some plugin exports cb */
int mq_has(enum mq_cb cb)
{
    assert(cb >= 0 && cb < MQ_CB__COUNT);
    for (int i = 0; i < mq_nplugins; i++)
        if (mq_plugins[i].fn[cb] != NULL)
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
    mta_tb_str(&tb, "plugin", mq_plugins[plugin].name);
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
        mq_json_pull(c->msg);       /* what the callback left, JSON edits too */
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
    mta_tb_str(&tb, "plugin", mq_plugins[ctx->current].name);
    mta_tb_int(&tb, "conn", ctx->fd);
    mta_tb_str(&tb, "callback", mq_callback_names[ctx->cb]);
    mta_tb_emit(&tb);
}

/* mq_plugin_name - plugin i's name, or "(unknown plugin)" */
const char *mq_plugin_name(int i)
{
    return i >= 0 && i < mq_nplugins ? mq_plugins[i].name : "(unknown plugin)";
}

/* mq_newest_context - the chain started last */
MQ_Context *mq_newest_context(void)
{
    return contexts;
}

/* mq_context_plugin - the plugin ctx was last handed to */
int mq_context_plugin(const MQ_Context *ctx)
{
    return ctx->current;
}

/* mq_misbehave - trace a plugin's breach of the protocol, keep the first */
void mq_misbehave(const MQ_Context *ctx, int plugin, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *name = mq_plugin_name(plugin);
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
    void *fn = mq_plugins[i].fn[ctx->cb];
    struct hook_list *wl = &watch_lists[ctx->cb];
    struct hook_provider wp = { NULL, NULL, mq_plugins[i].name };
    wl->name = mq_callback_names[ctx->cb];
    int saved = mq_active;
    mq_active = i;
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
    mq_active = saved;
    return ret;
}

/* finish - the chain is over: hand back to the caller */
static void finish(MQ_Context *ctx)
{
    ctx->state = CTX_DONE;
    mq_done_fn done = ctx->done;
    struct mq_call *call = ctx->call;
    if (call->msg != NULL)
        mq_json_end(call->msg);     /* what the plugins wrote into MQ_Json counts */
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
            mq_misbehave(ctx, ctx->current, "MQ_Retry restarted the chain more than %d times",
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
        while (ctx->next < mq_nplugins && mq_plugins[ctx->next].fn[ctx->cb] == NULL)
            ctx->next++;
        if (ctx->next >= mq_nplugins) {
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
                mq_misbehave(ctx, i, "called %s but returned false: only a callback that returns "
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
    MQ_Context *ctx = mq_xmalloc0(sizeof *ctx);
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
        mq_misbehave(NULL, mq_active, "called %s with a NULL context", k_funcs[k]);
        return;
    }
    switch (ctx->state) {
    case CTX_CALLING:
        if (mq_active >= 0 && mq_active != ctx->current) {
            mq_misbehave(ctx, mq_active, "called %s for a callback of plugin %s", k_funcs[k],
                      mq_plugins[ctx->current].name);
            return;
        }
        if (ctx->pending != K_NONE) {
            mq_misbehave(ctx, ctx->current, "called %s after %s: exactly one gives control back",
                      k_funcs[k], k_funcs[ctx->pending]);
            return;
        }
        ctx->pending = k;
        return;
    case CTX_HELD:
        if (mq_active >= 0 && mq_active != ctx->current) {
            mq_misbehave(ctx, mq_active, "called %s for a chain plugin %s holds", k_funcs[k],
                      mq_plugins[ctx->current].name);
            return;
        }
        if (apply(ctx, k))
            chain_step(ctx);
        return;
    case CTX_DONE:
        mq_misbehave(ctx, mq_active >= 0 ? mq_active : ctx->current,
                  "called %s for a callback that had already given control back (or never took it)",
                  k_funcs[k]);
        return;
    }
}

void MQ_Continue(MQ_Context *ctx) { continuation(ctx, K_CONTINUE); }
void MQ_Complete(MQ_Context *ctx) { continuation(ctx, K_COMPLETE); }
void MQ_Retry(MQ_Context *ctx) { continuation(ctx, K_RETRY); }

/* ---- the worker context ---------------------------------------------------- */

void *MQ_ContextData(MQ_Context *ctx)
{
    (void)ctx;
    return mq_active >= 0 ? ctx_data[mq_active] : NULL;
}

void MQ_SetContextData(MQ_Context *ctx, void *data)
{
    (void)ctx;
    if (mq_active >= 0)
        ctx_data[mq_active] = data;
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
    if (!mq_timers_pending()) {
        /* Oldest first, so the first fault is the earliest chain. */
        MQ_Context *held[64];
        int n = 0;
        for (MQ_Context *c = contexts; c != NULL && n < 64; c = c->all_next)
            if (c->state == CTX_HELD)
                held[n++] = c;
        for (int i = n - 1; i >= 0; i--) {
            mq_misbehave(held[i], held[i]->current, "took control (returned true) and never called "
                      "MQ_Continue, MQ_Complete or MQ_Retry");
            held[i]->state = CTX_DONE;
        }
    }
    mq_io_timers_cancel();
}

/* mq_reset - forget everything: the core is being destroyed */
void mq_reset(void)
{
    mq_shutdown();
    mq_io_reset();              /* any timer a worker cleanup chain started after it */
    memset(ctx_data, 0, sizeof ctx_data);
    while (contexts != NULL) {
        MQ_Context *c = contexts;
        contexts = c->all_next;
        free(c);
    }
    ncontexts = 0;
    mq_out_reset();
    for (int i = 0; i < mq_nplugins; i++) {
        free(mq_plugins[i].name);
        free(mq_plugins[i].file);
    }
    memset(mq_plugins, 0, sizeof mq_plugins);
    mq_nplugins = 0;
    mq_active = -1;
    fault[0] = '\0';
    shut = 0;
}

