/*
 * plugin_path - where the plugin a scenario or the command line names is
 *
 * SYNOPSIS
 *   char *path, *args;
 *   plugin_spec_split("counter.so:example.com", &path, &args);
 *   char *file = plugin_resolve(path, scenario_file, why, sizeof why);
 *
 * DESCRIPTION
 *   plugin_spec_split() cuts "PATH[:ARGS]" at the first ':'.
 *   plugin_resolve() finds the file: a path with a '/' is taken relative to
 *   the directory of base (the scenario file; NULL = the working
 *   directory) and not searched for.  A bare file name is looked up next to
 *   base first, then in the working directory, then in each directory of
 *   $MTASIM_PLUGIN_PATH (':'-separated), then in the installed plugin
 *   folder (install_dirs.h: PREFIX/lib/.../mtasim/plugins, or the build
 *   tree's fixtures/plugins), so bundled scenarios can say "plugin
 *   counter.so" wherever mtasim is built or installed.  The path returned
 *   always holds a '/': dlopen() would search the system library path for
 *   a bare name, not the working directory (dlopen(3)).

 *   It is part of the language because the parser resolves every "plugin"
 *   line while it reads the scenario, so a missing file is an error at its
 *   file:line:col; loading the file is sim/run/plugin.c's.
 *
 * DIAGNOSTICS
 *   plugin_resolve() returns NULL with why = "No such file or directory"
 *   (or the like).  Exhausted memory stops the program.
 *
 * BOUNDS
 *   PLUGIN_MAX plugins per run: the parser's limit on "plugin" lines and
 *   the loader's capacity (sim/run/plugin.c).
 */
#ifndef MTASIM_SIM_PLUGIN_PATH_H
#define MTASIM_SIM_PLUGIN_PATH_H

#include <stddef.h>

#define PLUGIN_MAX 64

/* Cut "PATH[:ARGS]"; both malloc'd, args "" when there is no ':'. */
void plugin_spec_split(const char *spec, char **path, char **args);
/* The file path names (malloc'd), or NULL with why set. */
char *plugin_resolve(const char *path, const char *base, char *why, size_t whysz);

#endif
