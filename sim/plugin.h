/*
 * plugin - loading Momentum-style hook plugins into a running core
 *
 * SYNOPSIS
 *   char *path, *args;
 *   plugin_spec_split("counter.so:example.com", &path, &args);
 *   char *file = plugin_resolve(path, scenario_file, why, sizeof why);
 *
 *   struct plugin_set *ps = plugin_set_create();
 *   int code = plugin_load(ps, "counter.so", file, args, err, sizeof err);
 *   ... the core runs; the plugin's providers are called ...
 *   mta_destroy(m);                      (forgets every provider)
 *   plugin_set_destroy(ps);              (dlclose, in reverse load order)
 *
 * DESCRIPTION
 *   A plugin is a shared object exporting
 *       int mtasim_module_init(const char *args);
 *   (core/include/mtasim_plugin.h), or int mq_version(void) and MailerQ-style
 *   callbacks (core/include/mailerq.h), or both: the loader recognises each
 *   style by its exports.  MailerQ-style callbacks are registered with
 *   mq_register_plugin() (core/mq.h), which orders them by file name;
 *   mq_initialize() runs at load, mq_cleanup() at unload.  plugin_load() opens it with
 *   dlopen(RTLD_NOW | RTLD_LOCAL) - every undefined symbol is resolved at
 *   once, against the mtasim executable (built with export_dynamic) - and
 *   calls its init with hook_set_registering_plugin(name) around it, so
 *   every provider it registers is attributed to it in the trace and in
 *   crash reports.  Load a plugin after mta_create() and destroy the set
 *   after mta_destroy(): providers must not outlive their code.
 *
 *   plugin_spec_split() cuts "PATH[:ARGS]" at the first ':'.
 *   plugin_resolve() finds the file: a path with a '/' is taken relative to
 *   the directory of base (the scenario file; NULL = the working
 *   directory).  A bare file name is looked up next to base first, then in
 *   each directory of $MTASIM_PLUGIN_PATH (':'-separated), then in the
 *   build tree's fixtures/plugins (MTASIM_FIXTURE_PLUGIN_DIR, compiled in),
 *   so bundled scenarios can say "plugin counter.so" whatever the build
 *   directory is called.
 *
 * DIAGNOSTICS
 *   plugin_resolve() returns NULL with why = "No such file or directory"
 *   (or the like).  plugin_load() returns 0, or an mtasim exit code with a
 *   one-line message in err (the caller says which plugin):
 *     PLUGIN_BAD_INPUT (2)  dlopen failed (dlerror's text: not a shared
 *                           object, an undefined symbol, ...), neither
 *                           mtasim_module_init nor mq_version, MailerQ
 *                           callbacks without mq_version, or an
 *                           mq_version() other than MQ_API_VERSION;
 *     PLUGIN_MISBEHAVED (4) mtasim_module_init returned non-zero (the value
 *                           is in the message).
 *
 * BOUNDS
 *   At most PLUGIN_MAX plugins per run.
 */
#ifndef MTASIM_SIM_PLUGIN_H
#define MTASIM_SIM_PLUGIN_H

#include <stddef.h>

#define PLUGIN_MAX 64
#define PLUGIN_BAD_INPUT 2
#define PLUGIN_MISBEHAVED 4

struct plugin_set;

/* Cut "PATH[:ARGS]"; both malloc'd, args "" when there is no ':'. */
void plugin_spec_split(const char *spec, char **path, char **args);
/* The file path names (malloc'd), or NULL with why set. */
char *plugin_resolve(const char *path, const char *base, char *why, size_t whysz);

struct plugin_set *plugin_set_create(void);
int plugin_load(struct plugin_set *ps, const char *name, const char *file, const char *args,
                char *err, size_t errsz);
int plugin_set_count(const struct plugin_set *ps);
void plugin_set_destroy(struct plugin_set *ps);

#endif
