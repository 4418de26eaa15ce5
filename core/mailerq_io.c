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

MQ_IOWatcher *MQ_IOWatch(MQ_Context *ctx, int fd, int events,
                         void (*callback)(MQ_IOWatcher *watcher, int fd, int events, void *data),
                         void *data)
{
    (void)ctx;
    (void)callback;
    (void)data;
    struct MQ_IOWatcher *w = mq_xmalloc0(sizeof *w);
    w->plugin = mq_active;
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
    mq_misbehave(NULL, mq_active, "MQ_IOUnwatch on a watcher that is not watching");
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

/* mq_io_timers_cancel - every plugin timer cancelled and freed */
void mq_io_timers_cancel(void)
{
    while (timers != NULL) {
        struct MQ_Timer *t = timers;
        timers = t->next;
        if (mta_current != NULL)
            mta_current->env->timer_cancel(mta_current->env, t->id);
        free(t);
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
