/*
 * plugin - loading Momentum-style hook plugins into a running core
 *
 * See plugin.h for the contract.
 */
#include <assert.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "mq.h"
#include "plugin.h"

#define PLUGIN_INIT_SYMBOL "mtasim_module_init"

typedef int (*plugin_init_fn)(const char *args);

struct plugin {
    char *name;         /* as the user wrote it; providers point at it */
    const char *base;   /* the file's last component: MailerQ's load order */
    void *handle;
    int mq;             /* a MailerQ-style plugin (mq_version) */
};

struct plugin_set {
    int n;
    int initialized;    /* plugin_set_initialize ran */
    int cleaned;        /* plugin_set_cleanup ran */
    struct plugin v[PLUGIN_MAX];
};

/* The pseudo-hooks mq_initialize and mq_cleanup run under: the watch (a
 * crash report) and mtasim_plugin_note() name the plugin and the call. */
static struct hook_list mq_init_list = { .name = "mq_initialize" };
static struct hook_list mq_cleanup_list = { .name = "mq_cleanup" };

/* plugin_set_create - an empty set */
struct plugin_set *plugin_set_create(void)
{
    struct plugin_set *ps = calloc(1, sizeof *ps);
    if (ps == NULL) {
        fprintf(stderr, "plugin_set_create: out of memory\n");
        abort();
    }
    return ps;
}

/* mq_symbols - the MailerQ-style exports of a plugin: 1 with fns filled
 * when it has mq_version() of this API, 0 when it is not one, -1 (err
 * set) when it exports callbacks without a matching mq_version() */
static int mq_symbols(void *handle, const char *file, void *fns[MQ_CB__COUNT], char *err,
                      size_t errsz)
{
    const char *first = NULL;
    for (int i = 0; i < MQ_CB__COUNT; i++) {
        fns[i] = dlsym(handle, mq_callback_names[i]);
        if (fns[i] != NULL && first == NULL)
            first = mq_callback_names[i];
    }
    void *ver = dlsym(handle, "mq_version");
    if (ver == NULL) {
        if (first == NULL)
            return 0;
        snprintf(err, errsz, "%s exports %s but no mq_version(): a MailerQ-style plugin must "
                 "export int mq_version(void)", file, first);
        return -1;
    }
    int (*version)(void);
    memcpy(&version, &ver, sizeof version);
    int v = version();
    if (v != MQ_API_VERSION) {
        snprintf(err, errsz, "%s: mq_version() returned %d, this mtasim has MQ_API_VERSION %d",
                 file, v, MQ_API_VERSION);
        return -1;
    }
    return 1;
}

/* plugin_load - dlopen file, run its init; 0 or an exit code (see plugin.h) */
int plugin_load(struct plugin_set *ps, const char *name, const char *file, const char *args,
                char *err, size_t errsz)
{
    assert(ps != NULL && name != NULL && file != NULL && args != NULL);
    if (ps->n >= PLUGIN_MAX) {
        snprintf(err, errsz, "more than %d plugins", PLUGIN_MAX);
        return PLUGIN_BAD_INPUT;
    }
    dlerror();
    void *handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        snprintf(err, errsz, "cannot load: %s", why ? why : "dlopen failed");
        return PLUGIN_BAD_INPUT;
    }
    /* POSIX: a function pointer travels through dlsym's void *. */
    dlerror();
    void *sym = dlsym(handle, PLUGIN_INIT_SYMBOL);
    void *mq_fns[MQ_CB__COUNT];
    int mq = mq_symbols(handle, file, mq_fns, err, errsz);
    if (mq < 0) {
        dlclose(handle);
        return PLUGIN_BAD_INPUT;
    }
    if (sym == NULL && mq == 0) {
        snprintf(err, errsz, "%s exports no %s(const char *args) and no mq_version(): not an "
                 "mtasim plugin", file, PLUGIN_INIT_SYMBOL);
        dlclose(handle);
        return PLUGIN_BAD_INPUT;
    }
    struct plugin *p = &ps->v[ps->n++];
    p->name = strdup(name);
    if (p->name == NULL) {
        fprintf(stderr, "plugin: out of memory\n");
        abort();
    }
    p->handle = handle;
    p->mq = mq;
    const char *slash = strrchr(file, '/');
    p->base = slash ? slash + 1 : file;
    /* The MailerQ style: its callbacks join the registry in file-name
     * order; mq_initialize waits until every plugin is loaded
     * (plugin_set_initialize). */
    if (mq)
        mq_register_plugin(p->name, file, mq_fns);
    if (sym == NULL)
        return 0;
    plugin_init_fn init;
    memcpy(&init, &sym, sizeof init);
    /* Kept open even when init fails: it may have registered providers
     * before failing, and those stay until the core is destroyed. */
    hook_set_registering_plugin(p->name);
    int rc = init(args);
    hook_set_registering_plugin(NULL);
    if (rc != 0) {
        snprintf(err, errsz, "%s(\"%s\") returned %d (0 means ready)", PLUGIN_INIT_SYMBOL,
                 args, rc);
        return PLUGIN_MISBEHAVED;
    }
    return 0;
}

/* mq_order - the MailerQ-style plugins of ps in the order MailerQ loads
 * them: alphabetical by file name, byte by byte, equal names in load
 * order (as mq_register_plugin orders the callbacks); returns how many */
static int mq_order(const struct plugin_set *ps, int order[PLUGIN_MAX])
{
    int n = 0;
    for (int i = 0; i < ps->n; i++) {
        if (!ps->v[i].mq)
            continue;
        int at = n++;
        while (at > 0 && strcmp(ps->v[order[at - 1]].base, ps->v[i].base) > 0) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = i;
    }
    return n;
}

/* mq_call_each - the exported function sym of every MailerQ-style plugin,
 * in MailerQ's order (backwards when reverse), each as its plugin */
static void mq_call_each(const struct plugin_set *ps, const char *sym, struct hook_list *l,
                         int reverse)
{
    int order[PLUGIN_MAX];
    int n = mq_order(ps, order);
    for (int k = 0; k < n; k++) {
        const struct plugin *p = &ps->v[order[reverse ? n - 1 - k : k]];
        void *f = dlsym(p->handle, sym);
        if (f == NULL)
            continue;
        void (*fn)(void);
        memcpy(&fn, &f, sizeof fn);
        struct hook_provider wp = { NULL, NULL, p->name };
        hook_set_registering_plugin(p->name);     /* providers it registers are its own */
        hook_enter(l, &wp);
        fn();
        hook_leave(l, &wp, 0, 0);
        hook_set_registering_plugin(NULL);
    }
}

/* plugin_set_initialize - mq_initialize of each MailerQ-style plugin, once
 * all are loaded, in file-name order (MailerQ 3.0, mq_initialize: "When
 * MailerQ starts and has loaded all the plugins, it will check every plugin
 * ... and if it is, it will call it"; plugins.md: loaded alphabetically) */
void plugin_set_initialize(struct plugin_set *ps)
{
    if (ps == NULL || ps->initialized)
        return;
    ps->initialized = 1;
    mq_call_each(ps, "mq_initialize", &mq_init_list, 0);
    mq_context_start();         /* the one worker thread: mq_context_initialize */
}

/* plugin_set_cleanup - mq_cleanup of each initialised MailerQ-style plugin,
 * once, in the reverse of the initialisation order; call it while the core
 * and its trace still exist, so what the plugins do there is recorded */
void plugin_set_cleanup(struct plugin_set *ps)
{
    if (ps == NULL || ps->cleaned || !ps->initialized)
        return;
    ps->cleaned = 1;
    mq_context_stop();          /* the worker ends first: mq_context_cleanup */
    mq_call_each(ps, "mq_cleanup", &mq_cleanup_list, 1);
}

/* plugin_set_count - how many plugins are loaded */
int plugin_set_count(const struct plugin_set *ps)
{
    return ps ? ps->n : 0;
}

/* plugin_set_destroy - unload every plugin, the last loaded first */
void plugin_set_destroy(struct plugin_set *ps)
{
    if (ps == NULL)
        return;
    plugin_set_cleanup(ps);     /* if the run did not (no core: nothing is traced) */
    for (int i = ps->n - 1; i >= 0; i--) {
        dlclose(ps->v[i].handle);
        free(ps->v[i].name);
    }
    free(ps);
}
