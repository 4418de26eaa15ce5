/*
 * hook_registry - provider lists behind the generated hook functions
 *
 * SYNOPSIS
 *   void hook_list_register(struct hook_list *l, hook_fn fn, void *closure, int first);
 *   void hooks_reset_all(void);
 *   void hook_set_registering_plugin(const char *name);
 *   void hook_enter(const struct hook_list *l, const struct hook_provider *p);
 *   void hook_leave(const struct hook_list *l, const struct hook_provider *p,
 *                   int has_ret, int64_t ret);
 *   const char *hook_current(const char **plugin);
 *   const char *hook_last_left(const char **plugin);
 *   const char *hook_closure_label(const void *closure);
 *   void hook_watch_attach(struct hook_watch *w);
 *   struct hook_watch *hook_watch_get(void);
 *   void hook_registry_set_clock(hook_clock_fn now, void *arg);
 *
 *   (public, core/include/mtasim_plugin.h)
 *   void mtasim_closure_label(void *closure, const char *label);
 *
 * DESCRIPTION
 *   Each hook has one list of providers (function, closure, the plugin that
 *   registered it).  register_..._first prepends, register_..._last appends;
 *   providers run in list order.  The lists are process-global because the
 *   hook API is (register_core_X_hook_first takes no core handle); one core
 *   runs at a time and hooks_reset_all() empties every list, and forgets
 *   every closure label, between runs.
 *
 *   hook_enter()/hook_leave() bracket each provider call.  They keep a
 *   stack of the providers running (a provider may make the core call
 *   another hook) and mirror its innermost frame - hook name, plugin,
 *   virtual time - into a struct hook_watch.  By default that is private
 *   memory; the crash-isolation supervisor attaches a page shared with its
 *   parent (hook_watch_attach), so that after the child died from a plugin
 *   crash, a hang or an exit() the parent can still say where it was.
 *   The watch holds copies, never pointers: the reader is another process.
 *   The virtual time comes from the clock the running core passed in with
 *   hook_registry_set_clock() (mta_create sets it, mta_destroy clears it):
 *   the registry sits below the core and never asks the core for the time.
 *
 *   mtasim_closure_label() names a closure for the trace: provider records
 *   show closure=LABEL instead of nothing (a pointer value would break
 *   determinism).
 *
 * BOUNDS
 *   At most HOOK_MAX_PROVIDERS providers per hook, HOOK_MAX_DEPTH nested
 *   provider calls and HOOK_MAX_LABELS labelled closures; exceeding one is a
 *   plugin bug and stops the program loudly.  Names in the watch are
 *   truncated to fit.
 */
#ifndef MTASIM_HOOK_REGISTRY_H
#define MTASIM_HOOK_REGISTRY_H

#include <signal.h>
#include <stdint.h>

#define HOOK_MAX_PROVIDERS 64
#define HOOK_MAX_DEPTH 32
#define HOOK_MAX_LABELS 1024
#define HOOK_LABEL_MAX 128
#define HOOK_WATCH_HOOK_MAX 64
#define HOOK_WATCH_PLUGIN_MAX 512

typedef void (*hook_fn)(void);

struct hook_provider {
    hook_fn fn;
    void *closure;
    const char *plugin;     /* "core" for the core's own providers */
};

struct hook_list {
    const char *name;
    const char *fields;     /* the trace fields its records may carry, space-separated */
    int n;
    struct hook_provider v[HOOK_MAX_PROVIDERS];
};

/*
 * What a supervisor reads after its child stopped.  Written by the child
 * only; volatile so every store reaches the (shared) page before a crash.
 */
struct hook_watch {
    volatile int depth;             /* providers on the stack; 0 = the core itself runs */
    volatile int64_t vtime;         /* absolute virtual time of the latest hook_enter */
    volatile sig_atomic_t signal;   /* a fatal signal the child caught, 0 = none */
    volatile int exit_called;       /* exit() ran in the child ... */
    volatile int exit_status;       /* ... with this status */
    volatile int result_sent;       /* the child handed its result over */
    char hook[HOOK_WATCH_HOOK_MAX];         /* innermost hook, "" if none */
    char plugin[HOOK_WATCH_PLUGIN_MAX];     /* its provider's plugin */
};

/* NULL-terminated, in table order (generated). */
extern struct hook_list *const hook_lists[];

void hook_list_register(struct hook_list *l, hook_fn fn, void *closure, int first);
void hooks_reset_all(void);
void hook_set_registering_plugin(const char *name);

void hook_enter(const struct hook_list *l, const struct hook_provider *p);
void hook_leave(const struct hook_list *l, const struct hook_provider *p, int has_ret, int64_t ret);
/* The hook being run right now (NULL if none) and its provider's plugin. */
const char *hook_current(const char **plugin);
/* The hook whose provider returned last (NULL before any) and that
 * provider's plugin: after a chain stopped, the provider that stopped it. */
const char *hook_last_left(const char **plugin);
/* The plugin whose init is running ("core" outside of one). */
const char *hook_registering_plugin(void);
/* The label a plugin gave closure with mtasim_closure_label(), or NULL. */
const char *hook_closure_label(const void *closure);

/* Mirror the provider stack into w (NULL: back to private memory). */
void hook_watch_attach(struct hook_watch *w);
struct hook_watch *hook_watch_get(void);

/* The clock hook_enter() stamps the watch with: now(arg), absolute
 * virtual microseconds.  NULL (the start): no clock, vtime keeps its
 * last value. */
typedef int64_t (*hook_clock_fn)(void *arg);
void hook_registry_set_clock(hook_clock_fn now, void *arg);

#endif
