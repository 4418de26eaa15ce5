/*
 * mailerq_io - the plugins' event loop on virtual time: timers, IO watches, MQ_ev
 *
 * SYNOPSIS
 *   See mailerq.h (MQ_TimerStart, MQ_TimerStop, MQ_TimerReset, MQ_IOWatch,
 *   MQ_IOUnwatch, MQ_ev) and mtasim_plugin.h (mtasim_timer_after).
 *
 * DESCRIPTION
 *   MailerQ 3.0 (eventloop.md): a plugin that took control does its work
 *   without blocking, on the event loop MQ_Context gives access to: it
 *   "register[s] file descriptors and set[s] timers", and its callback
 *   runs "as soon as the filedescriptor becomes active".  mtasim's loop is
 *   the environment's virtual clock: a timer is an environment timer, and
 *   its function runs as the plugin that set it (mq_active, and the hook
 *   registry's watch under the pseudo-hook "mtasim_timer", so notes and a
 *   crash name that plugin).
 *
 *   A timer is freed when it fired or was stopped; stopping or resetting
 *   it after that is a misbehaviour (MQ_TimerStop: "not legal").
 *
 *   mq_io_timers_cancel() cancels every timer (the run is over);
 *   mq_io_reset() also forgets every IO watch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "mq_internal.h"
#include "mta_internal.h"
#include "mtasim_plugin.h"
#include "trace.h"

/* A plugin's timer (mtasim_timer_after, MQ_TimerStart: MQ_Timer). */
struct MQ_Timer {
    struct MQ_Timer *next, *prev;
    mta_timer_id id;
    int plugin;                         /* the MailerQ plugin that set it; -1 none */
    char owner[HOOK_WATCH_PLUGIN_MAX];  /* the plugin that set it, by name; "" unknown */
    void (*fn)(void *);
    void *arg;
};

/* An MQ_IOWatch registration (see "IO watches" below). */
struct MQ_IOWatcher {
    struct MQ_IOWatcher *next;
    int plugin;                         /* the MailerQ plugin that set it; -1 none */
    char owner[HOOK_WATCH_PLUGIN_MAX];  /* by name, for the watch; "" unknown */
    int fd, events;                     /* events: MQ_READ | MQ_WRITE */
    int ready;                          /* events seen, not yet reported */
    mta_timer_id timer;                 /* the report's, 0 when none is due */
    void (*fn)(MQ_IOWatcher *, int, int, void *);
    void *data;
};

/* A timer runs as the plugin that set it, under this pseudo-hook: its
 * notes, warnings and a crash name that plugin (mtasim_plugin.h). */
static struct hook_list timer_list = { .name = "mtasim_timer" };
static char timer_owner[HOOK_WATCH_PLUGIN_MAX];  /* the running timer's, for the watch */
/* An IO watch's callback likewise, under "mq_iowatch". */
static struct hook_list io_list = { .name = "mq_iowatch" };

static struct MQ_Timer *timers;
static struct MQ_IOWatcher *watchers;

static void timer_unlink(struct MQ_Timer *t);

/* ---- timers -------------------------------------------------------------- */


/* timer_fire - a plugin's timer: run its function as that plugin */
static void timer_fire(void *arg)
{
    struct MQ_Timer *t = arg;
    timer_unlink(t);
    void (*fn)(void *) = t->fn;
    void *fnarg = t->arg;
    int saved = mq_active;
    mq_active = t->plugin;
    int known = t->owner[0] != '\0';
    memcpy(timer_owner, t->owner, sizeof timer_owner);
    free(t);
    struct hook_provider wp = { NULL, NULL, timer_owner };
    if (known)
        hook_enter(&timer_list, &wp);
    fn(fnarg);
    if (known)
        hook_leave(&timer_list, &wp, 0, 0);
    mq_active = saved;
}

/* timer_new - fn(arg) usec of virtual time from now, as the calling plugin */
static struct MQ_Timer *timer_new(long usec, void (*fn)(void *), void *arg)
{
    struct mta *m = mta_current;
    if (m == NULL || fn == NULL)
        return NULL;
    struct MQ_Timer *t = mq_xmalloc0(sizeof *t);
    t->plugin = mq_active;
    /* Whose code calls: a MailerQ callback's plugin, else the provider (or
     * the init, or another timer) the hook registry's watch shows. */
    const struct hook_watch *w = hook_watch_get();
    if (mq_active >= 0)
        snprintf(t->owner, sizeof t->owner, "%s", mq_plugin_name(mq_active));
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
        mq_misbehave(NULL, mq_active, "MQ_TimerStop on a timer that fired or was stopped already "
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
        mq_misbehave(NULL, mq_active, "MQ_TimerReset on a timer that fired or was stopped already");
        return;
    }
    m->env->timer_cancel(m->env, timer->id);
    timer->id = m->env->timer_start(m->env, mta_now(m) + seconds_usec(timeout), timer_fire, timer);
}

/* ---- IO watches ------------------------------------------------------------ *
 *
 * MailerQ's loop is libev (4.0, mq_context.md); a watch reports a
 * descriptor that "becomes active" (3.0, eventloop.md) with the events
 * that occurred (4.0, mq_iowatch.md: "one (or more) of these events").
 * mtasim's descriptors are the simulated connections' (3 .. 1023, never a
 * real file), and their readiness is the environment's events, so a watch
 * on one reports, at the virtual instant the core got the event and after
 * the core handled it:
 *
 *   MQ_READ   data arrived, or the peer closed or reset the connection
 *             (a real socket reads 0 or fails then: "readable")
 *   MQ_WRITE  the connection was established, room was made in the send
 *             buffer after the core filled it, or everything written has
 *             left the host; and once at the watch's start when nothing
 *             written waits to leave
 *
 * Each change is reported once (as epoll's edge-triggered mode does):
 * libev's level-triggered loop would call a watch on a writable socket on
 * every iteration, and on a virtual clock, where an iteration takes no
 * time, that never ends.  Events of one instant are merged into one call.
 * A watch on any other descriptor (a real pipe or socket of the plugin)
 * cannot be observed on virtual time: it is kept and never fires, and an
 * "mq warning" record says so when it is set.
 */

/* io_report - a watch's events of this instant: its callback, as its plugin */
static void io_report(void *arg)
{
    struct MQ_IOWatcher *w = arg;
    w->timer = 0;
    int ev = w->ready;
    w->ready = 0;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "mq", "ioready");
        mta_tb_str(&tb, "plugin", w->owner[0] ? w->owner : "(unknown plugin)");
        mta_tb_int(&tb, "fd", w->fd);
        mta_tb_int(&tb, "events", ev);
        mta_tb_emit(&tb);
    }
    int saved = mq_active;
    mq_active = w->plugin;
    int known = w->owner[0] != '\0';
    memcpy(timer_owner, w->owner, sizeof timer_owner);
    struct hook_provider wp = { NULL, NULL, timer_owner };
    if (known)
        hook_enter(&io_list, &wp);
    w->fn(w, w->fd, ev, w->data);       /* may unwatch (free) w */
    if (known)
        hook_leave(&io_list, &wp, 0, 0);
    mq_active = saved;
}

/* io_ready - w saw events ev: report them at this instant */
static void io_ready(struct mta *m, struct MQ_IOWatcher *w, int ev)
{
    ev &= w->events;
    if (ev == 0 || m->shutting_down)
        return;             /* after mq_shutdown nothing more is reported */
    w->ready |= ev;
    if (w->timer == 0)
        w->timer = m->env->timer_start(m->env, mta_now(m), io_report, w);
}

/* mq_io_tcp_event - the environment's event ev on simulated descriptor fd */
void mq_io_tcp_event(int fd, enum mta_tcp_event ev)
{
    struct mta *m = mta_current;
    if (watchers == NULL || m == NULL)
        return;
    int what = 0;
    switch (ev) {
    case MTA_TCP_DATA: case MTA_TCP_EOF: case MTA_TCP_RESET:
    case MTA_TCP_TLS_UP: case MTA_TCP_TLS_FAILED:
        /* The handshake's end is the peer's records (or alert, or reset)
         * arriving: on the socket, that is readability. */
        what = MQ_READ;
        break;
    case MTA_TCP_CONNECTED: case MTA_TCP_WRITABLE: case MTA_TCP_SENT:
        what = MQ_WRITE;
        break;
    case MTA_TCP_CONNECT_FAILED:
        what = MQ_READ | MQ_WRITE;  /* a failed non-blocking connect: both (and an error) */
        break;
    }
    for (struct MQ_IOWatcher *w = watchers; w != NULL; w = w->next)
        if (w->fd == fd)
            io_ready(m, w, what);
}

/* io_warning - "mq warning plugin= call= fd= what=": an API call mtasim
 * cannot honour as MailerQ would, said instead of a silent difference */
static void io_warning(const char *call, int fd, const char *what)
{
    if (!mta_tracing())
        return;
    char owner[HOOK_WATCH_PLUGIN_MAX] = "";
    const struct hook_watch *hw = hook_watch_get();
    if (mq_active >= 0)
        snprintf(owner, sizeof owner, "%s", mq_plugin_name(mq_active));
    else if (hw->depth > 0)
        snprintf(owner, sizeof owner, "%s", hw->plugin);
    struct mta_tb tb;
    mta_tb_begin(&tb, "mq", "warning");
    mta_tb_str(&tb, "plugin", owner[0] ? owner : "(unknown plugin)");
    mta_tb_str(&tb, "call", call);
    if (fd >= -1)
        mta_tb_int(&tb, "fd", fd);
    mta_tb_str(&tb, "what", what);
    mta_tb_emit(&tb);
}

/* MQ_IOWatch - watch fd for events; see "IO watches" above */
MQ_IOWatcher *MQ_IOWatch(MQ_Context *ctx, int fd, int events,
                         void (*callback)(MQ_IOWatcher *watcher, int fd, int events, void *data),
                         void *data)
{
    (void)ctx;
    struct mta *m = mta_current;
    if (m == NULL || callback == NULL || (events & (MQ_READ | MQ_WRITE)) == 0) {
        mq_misbehave(NULL, mq_active, "MQ_IOWatch(fd %d, events %d) without a callback or "
                     "with neither MQ_READ nor MQ_WRITE", fd, events);
        return NULL;
    }
    struct MQ_IOWatcher *w = mq_xmalloc0(sizeof *w);
    w->plugin = mq_active;
    const struct hook_watch *hw = hook_watch_get();
    if (mq_active >= 0)
        snprintf(w->owner, sizeof w->owner, "%s", mq_plugin_name(mq_active));
    else if (hw->depth > 0)
        snprintf(w->owner, sizeof w->owner, "%s", hw->plugin);
    w->fd = fd;
    w->events = events & (MQ_READ | MQ_WRITE);
    w->fn = callback;
    w->data = data;
    w->next = watchers;
    watchers = w;
    long unsent = mta_fd_is_conn(m, fd) ? m->env->tcp_unsent(m->env, fd) : -1;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "mq", "iowatch");
        mta_tb_str(&tb, "plugin", w->owner[0] ? w->owner : "(unknown plugin)");
        mta_tb_int(&tb, "fd", fd);
        mta_tb_int(&tb, "events", w->events);
        mta_tb_int(&tb, "simulated", unsent >= 0);
        mta_tb_emit(&tb);
    }
    if (unsent < 0)
        io_warning("MQ_IOWatch", fd, "not a simulated connection's descriptor: its activity "
                   "is not on virtual time, the watch never fires");
    else if (unsent == 0)
        io_ready(m, w, MQ_WRITE);
    return w;
}

/* MQ_IOUnwatch - stop and free a watch (also from inside its callback) */
void MQ_IOUnwatch(MQ_IOWatcher *watcher)
{
    for (struct MQ_IOWatcher **pp = &watchers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == watcher) {
            *pp = watcher->next;
            if (watcher->timer != 0 && mta_current != NULL)
                mta_current->env->timer_cancel(mta_current->env, watcher->timer);
            free(watcher);
            return;
        }
    mq_misbehave(NULL, mq_active, "MQ_IOUnwatch on a watcher that is not watching");
}

/* MQ_ev - MailerQ's libev loop (4.0, mq_context.md: "Internally, MailerQ
 * uses a libev event loop, and you can also get access to this loop
 * pointer").  mtasim's loop is the virtual clock, not libev: a libev loop
 * would run on the wall clock and real descriptors, which no simulation
 * replays.  NULL, said in an "mq warning" record (docs/inbound.md). */
struct ev_loop *MQ_ev(MQ_Context *ctx)
{
    (void)ctx;
    io_warning("MQ_ev", -2, "no libev loop under mtasim (virtual time): NULL; use "
               "MQ_TimerStart and MQ_IOWatch");
    return NULL;
}

int mq_timers_pending(void)
{
    return timers != NULL;
}

/* mq_io_timers_cancel - every plugin timer cancelled and freed, and no
 * watch report due any more (the run is over) */
void mq_io_timers_cancel(void)
{
    struct mta *m = mta_current;
    while (timers != NULL) {
        struct MQ_Timer *t = timers;
        timers = t->next;
        if (m != NULL)
            m->env->timer_cancel(m->env, t->id);
        free(t);
    }
    for (struct MQ_IOWatcher *w = watchers; w != NULL; w = w->next) {
        if (w->timer != 0 && m != NULL)
            m->env->timer_cancel(m->env, w->timer);
        w->timer = 0;
        w->ready = 0;
    }
}

/* mq_io_reset - no timer and no watch left */
void mq_io_reset(void)
{
    mq_io_timers_cancel();
    while (watchers != NULL) {
        struct MQ_IOWatcher *w = watchers;
        watchers = w->next;
        free(w);
    }
}
