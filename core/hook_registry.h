/*
 * hook_registry - provider lists behind the generated hook functions
 *
 * SYNOPSIS
 *   void hook_list_register(struct hook_list *l, hook_fn fn, void *closure, int first);
 *   void hooks_reset_all(void);
 *   void hook_set_registering_plugin(const char *name);
 *   const char *hook_current(const char **plugin);
 *
 * DESCRIPTION
 *   Each hook has one list of providers (function, closure, the plugin that
 *   registered it).  register_..._first prepends, register_..._last appends;
 *   providers run in list order.  The lists are process-global because the
 *   hook API is (register_core_X_hook_first takes no core handle); one core
 *   runs at a time and hooks_reset_all() empties every list between runs.
 *
 *   hook_enter()/hook_leave() bracket each provider call so that a crash
 *   inside a plugin can be reported with the hook and plugin it happened in.
 *
 * BOUNDS
 *   At most HOOK_MAX_PROVIDERS providers per hook; registering more is a
 *   plugin bug and stops the program.
 */
#ifndef MTASIM_HOOK_REGISTRY_H
#define MTASIM_HOOK_REGISTRY_H

#include <stdint.h>

#define HOOK_MAX_PROVIDERS 64

typedef void (*hook_fn)(void);

struct hook_provider {
    hook_fn fn;
    void *closure;
    const char *plugin;     /* "core" for the core's own providers */
};

struct hook_list {
    const char *name;
    int n;
    struct hook_provider v[HOOK_MAX_PROVIDERS];
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

#endif
