/*
 * plugin - loading Momentum-style hook plugins into a running core
 *
 * SYNOPSIS
 *   char *file = plugin_resolve(path, scenario_file, why, sizeof why);   (plugin_path.h)
 *
 *   struct plugin_set *ps = plugin_set_create();
 *   int code = plugin_load(ps, "counter.so", file, args, err, sizeof err);
 *   plugin_set_initialize(ps);           (every mq_initialize)
 *   ... the core runs; the plugin's providers are called ...
 *   mta_shutdown(m); plugin_set_cleanup(ps);   (every mq_cleanup)
 *   mta_destroy(m);                      (forgets every provider)
 *   plugin_set_destroy(ps);              (dlclose, in reverse load order)
 *
 * DESCRIPTION
 *   A plugin is a shared object exporting
 *       int mtasim_module_init(const char *args);
 *   (core/include/mtasim_plugin.h), or int mq_version(void) and MailerQ-style
 *   callbacks (core/include/mailerq.h), or both: the loader recognises each
 *   style by its exports.  MailerQ-style callbacks are registered with
 *   mq_register_plugin() (core/mq.h), which orders them by file name.
 *   plugin_set_initialize() calls mq_initialize() of each, once all are
 *   loaded, in that order; plugin_set_cleanup() calls mq_cleanup() in the
 *   reverse order, while the core and its trace still exist (the run's
 *   end; plugin_set_destroy() does it if nobody did).  plugin_load() opens it with
 *   dlopen(RTLD_NOW | RTLD_LOCAL) - every undefined symbol is resolved at
 *   once, against the mtasim executable (built with export_dynamic) - and
 *   calls its init with hook_set_registering_plugin(name) around it, so
 *   every provider it registers is attributed to it in the trace and in
 *   crash reports.  Load a plugin after mta_create() and destroy the set
 *   after mta_destroy(): providers must not outlive their code.
 *
 *   Which file a plugin name means is sim/lang/plugin_path.c's concern
 *   (the parser checks it while it reads the scenario); this module only
 *   loads a file already found.
 *
 * DIAGNOSTICS
 *   plugin_load() returns 0, or an mtasim exit code with a
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

#include "plugin_path.h"        /* PLUGIN_MAX */

#define PLUGIN_BAD_INPUT 2
#define PLUGIN_MISBEHAVED 4

struct plugin_set;

struct plugin_set *plugin_set_create(void);
int plugin_load(struct plugin_set *ps, const char *name, const char *file, const char *args,
                char *err, size_t errsz);
void plugin_set_initialize(struct plugin_set *ps);
void plugin_set_cleanup(struct plugin_set *ps);
int plugin_set_count(const struct plugin_set *ps);
void plugin_set_destroy(struct plugin_set *ps);

#endif
