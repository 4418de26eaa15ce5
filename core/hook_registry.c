/*
 * hook_registry - provider lists behind the generated hook functions
 *
 * See hook_registry.h for the contract.
 */
#include "hook_registry.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *registering_plugin = "core";
static const struct hook_list *current_list;
static const struct hook_provider *current_provider;

/* hook_list_register - add a provider at the front or the back */
void hook_list_register(struct hook_list *l, hook_fn fn, void *closure, int first)
{
    if (fn == NULL) {
        fprintf(stderr, "hook_list_register: NULL provider for hook %s (plugin %s)\n",
                l->name, registering_plugin);
        abort();
    }
    if (l->n >= HOOK_MAX_PROVIDERS) {
        fprintf(stderr, "hook_list_register: more than %d providers for hook %s\n",
                HOOK_MAX_PROVIDERS, l->name);
        abort();
    }
    struct hook_provider p = { fn, closure, registering_plugin };
    if (first) {
        memmove(&l->v[1], &l->v[0], (size_t)l->n * sizeof l->v[0]);
        l->v[0] = p;
    } else {
        l->v[l->n] = p;
    }
    l->n++;
}

/* hooks_reset_all - forget every provider of every hook */
void hooks_reset_all(void)
{
    for (int i = 0; hook_lists[i] != NULL; i++)
        hook_lists[i]->n = 0;
    registering_plugin = "core";
}

/* hook_set_registering_plugin - name the plugin whose init is running */
void hook_set_registering_plugin(const char *name)
{
    registering_plugin = name ? name : "core";
}

void hook_enter(const struct hook_list *l, const struct hook_provider *p)
{
    current_list = l;
    current_provider = p;
}

void hook_leave(const struct hook_list *l, const struct hook_provider *p, int has_ret, int64_t ret)
{
    (void)l; (void)p; (void)has_ret; (void)ret;
    current_list = NULL;
    current_provider = NULL;
}

const char *hook_current(const char **plugin)
{
    if (plugin)
        *plugin = current_provider ? current_provider->plugin : NULL;
    return current_list ? current_list->name : NULL;
}
