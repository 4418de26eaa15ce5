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
    void *handle;
};

struct plugin_set {
    int n;
    struct plugin v[PLUGIN_MAX];
};

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
    if (mq) {
        /* The MailerQ style: mq_initialize first, then its callbacks join
         * the registry in file-name order. */
        void *mqinit = dlsym(handle, "mq_initialize");
        if (mqinit != NULL) {
            void (*fn)(void);
            memcpy(&fn, &mqinit, sizeof fn);
            hook_set_registering_plugin(p->name);
            fn();
            hook_set_registering_plugin(NULL);
        }
        mq_register_plugin(p->name, file, mq_fns);
    }
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
    for (int i = ps->n - 1; i >= 0; i--) {
        void *cleanup = dlsym(ps->v[i].handle, "mq_cleanup");
        if (cleanup != NULL && dlsym(ps->v[i].handle, "mq_version") != NULL) {
            void (*fn)(void);
            memcpy(&fn, &cleanup, sizeof fn);
            fn();
        }
        dlclose(ps->v[i].handle);
        free(ps->v[i].name);
    }
    free(ps);
}
