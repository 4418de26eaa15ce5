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

#include "mtasim_plugin.h"

static const char *registering_plugin = "core";

/* The running core's virtual clock (hook_registry_set_clock). */
static hook_clock_fn clock_now;
static void *clock_arg;

/* The providers running now, innermost last. */
static struct hook_frame {
    const struct hook_list *list;
    const struct hook_provider *provider;
} stack[HOOK_MAX_DEPTH];
static int depth;
/* The provider that returned last (hook_last_left). */
static const struct hook_list *left_list;
static const char *left_plugin;

/* Private until a supervisor attaches a shared page. */
static struct hook_watch private_watch;
static struct hook_watch *watch = &private_watch;

struct closure_label {
    const void *closure;
    char label[HOOK_LABEL_MAX];
};
static struct closure_label labels[HOOK_MAX_LABELS];
static int nlabels;

static void watch_show_top(void);

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

/* hooks_reset_all - forget every provider of every hook, and every label */
void hooks_reset_all(void)
{
    for (int i = 0; hook_lists[i] != NULL; i++)
        hook_lists[i]->n = 0;
    left_list = NULL;
    left_plugin = NULL;
    registering_plugin = "core";
    nlabels = 0;
    watch_show_top();
}

/* hook_set_registering_plugin - name the plugin whose init is running
 *
 * While a plugin's init runs, the watch shows it as the pseudo-hook
 * "mtasim_module_init": a crash there is the plugin's, not the core's. */
void hook_set_registering_plugin(const char *name)
{
    registering_plugin = name ? name : "core";
    watch_show_top();
}

/* bounded_copy - copy at most size - 1 bytes, always terminated */
static void bounded_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* watch_show_top - mirror the innermost frame (or none) into the watch */
static void watch_show_top(void)
{
    if (depth == 0 && strcmp(registering_plugin, "core") != 0) {
        bounded_copy(watch->hook, sizeof watch->hook, "mtasim_module_init");
        bounded_copy(watch->plugin, sizeof watch->plugin, registering_plugin);
        watch->depth = 1;
        return;
    }
    if (depth == 0) {
        watch->hook[0] = '\0';
        watch->plugin[0] = '\0';
    } else {
        const struct hook_frame *f = &stack[depth - 1];
        bounded_copy(watch->hook, sizeof watch->hook, f->list->name);
        bounded_copy(watch->plugin, sizeof watch->plugin, f->provider->plugin);
    }
    /* depth last: a reader that sees depth > 0 sees the names too. */
    watch->depth = depth;
}

/* hook_enter - a provider is about to run */
void hook_enter(const struct hook_list *l, const struct hook_provider *p)
{
    if (depth >= HOOK_MAX_DEPTH) {
        fprintf(stderr, "hook_enter: hooks nested more than %d deep (hook %s, plugin %s)\n",
                HOOK_MAX_DEPTH, l->name, p->plugin);
        abort();
    }
    stack[depth].list = l;
    stack[depth].provider = p;
    depth++;
    if (clock_now != NULL)
        watch->vtime = clock_now(clock_arg);
    watch_show_top();
}

/* hook_leave - the provider entered last returned */
void hook_leave(const struct hook_list *l, const struct hook_provider *p, int has_ret, int64_t ret)
{
    (void)has_ret; (void)ret;
    if (depth == 0 || stack[depth - 1].list != l || stack[depth - 1].provider != p) {
        fprintf(stderr, "hook_leave: hook %s left out of order\n", l->name);
        abort();
    }
    depth--;
    left_list = l;
    left_plugin = p->plugin;
    watch_show_top();
}

/* hook_last_left - the hook and plugin of the provider that returned last */
const char *hook_last_left(const char **plugin)
{
    if (plugin)
        *plugin = left_list ? left_plugin : NULL;
    return left_list ? left_list->name : NULL;
}

/* hook_registering_plugin - the plugin whose init is running */
const char *hook_registering_plugin(void)
{
    return registering_plugin;
}

/* hook_current - the hook running now (NULL if none) and its plugin */
const char *hook_current(const char **plugin)
{
    const struct hook_frame *f = depth > 0 ? &stack[depth - 1] : NULL;
    if (plugin)
        *plugin = f ? f->provider->plugin : NULL;
    return f ? f->list->name : NULL;
}

/* hook_watch_attach - mirror the provider stack into w from now on */
void hook_watch_attach(struct hook_watch *w)
{
    watch = w ? w : &private_watch;
    watch_show_top();
}

/* hook_registry_set_clock - the clock the watch's vtime follows; NULL: none */
void hook_registry_set_clock(hook_clock_fn now, void *arg)
{
    clock_now = now;
    clock_arg = arg;
}

/* hook_watch_get - where the provider stack is mirrored */
struct hook_watch *hook_watch_get(void)
{
    return watch;
}

/* mtasim_closure_label - name a closure for the trace (public plugin API) */
void mtasim_closure_label(void *closure, const char *label)
{
    if (label == NULL)
        label = "";
    for (int i = 0; i < nlabels; i++)
        if (labels[i].closure == closure) {
            bounded_copy(labels[i].label, sizeof labels[i].label, label);
            return;
        }
    if (nlabels >= HOOK_MAX_LABELS) {
        fprintf(stderr, "mtasim_closure_label: more than %d labelled closures (plugin %s)\n",
                HOOK_MAX_LABELS, registering_plugin);
        abort();
    }
    labels[nlabels].closure = closure;
    bounded_copy(labels[nlabels].label, sizeof labels[nlabels].label, label);
    nlabels++;
}

/* hook_closure_label - the label of closure, or NULL */
const char *hook_closure_label(const void *closure)
{
    /* Linear: a run has a handful of labelled closures. */
    for (int i = 0; i < nlabels; i++)
        if (labels[i].closure == closure)
            return labels[i].label;
    return NULL;
}
