/*
 * install_dirs - where the running mtasim finds its installed files
 *
 * SYNOPSIS
 *   char dir[PATH_MAX];
 *   if (install_dir(INSTALL_PLUGINS, dir, sizeof dir) == 0) ...
 *   if (install_dir(INSTALL_REPORTS, dir, sizeof dir) == 0) ...
 *
 * DESCRIPTION
 *   mtasim is relocatable: nothing of the build tree and no absolute
 *   installation path decides where it looks.  The directories meson
 *   installs into are compiled in relative to the prefix (MTASIM_BINDIR,
 *   MTASIM_PLUGINDIR, MTASIM_REPORTSDIR, e.g. "bin",
 *   "lib/x86_64-linux-gnu/mtasim/plugins", "share/mtasim/reports"), and
 *   the prefix is found at run time from the executable's own path
 *   (/proc/self/exe): when the binary is PREFIX/BINDIR/mtasim, the plugin
 *   folder is PREFIX/PLUGINDIR.  So "meson install --destdir D", a moved
 *   prefix and the Debian package all work with the same binary.
 *
 *   In a build tree the binary is BUILD/sim/mtasim (a unit test:
 *   BUILD/tests/unit/NAME); its installed-file directories are then
 *   BUILD/fixtures/plugins (the example plugins built there) and
 *   BUILD/reports (reports/meson.build copies the generators).  The build
 *   tree is recognised by BUILD/meson-private, which meson creates there
 *   and never installs, up to three folders above the binary.
 *
 *   An absolute directory option (meson -Dlibdir=/opt/x) is taken as is.
 *
 * DIAGNOSTICS
 *   install_dir() returns -1 when the executable's path cannot be read or
 *   it is neither in a build tree nor at PREFIX/BINDIR, or the result does
 *   not fit; 0 otherwise (the directory need not exist).
 */
#ifndef MTASIM_SIM_INSTALL_DIRS_H
#define MTASIM_SIM_INSTALL_DIRS_H

#include <stddef.h>

enum install_what {
    INSTALL_PLUGINS,        /* the example plugins: "plugin NAME.so" falls back here */
    INSTALL_REPORTS,        /* the report generators behind "mtasim report" */
};

/* The directory into buf; 0, or -1 when it cannot be told. */
int install_dir(enum install_what what, char *buf, size_t size);

#endif
