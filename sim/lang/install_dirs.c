/*
 * install_dirs - where the running mtasim finds its installed files
 *
 * See install_dirs.h for the contract.
 */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "install_dirs.h"

/* Relative to the prefix, from the top-level meson.build. */
#ifndef MTASIM_BINDIR
#define MTASIM_BINDIR "bin"
#endif
#ifndef MTASIM_PLUGINDIR
#define MTASIM_PLUGINDIR "lib/mtasim/plugins"
#endif
#ifndef MTASIM_REPORTSDIR
#define MTASIM_REPORTSDIR "share/mtasim/reports"
#endif

#define BUILD_TREE_DEPTH 3     /* BUILD/tests/unit/test_x is the deepest */

/* exe_dir - the directory of the running executable into buf; 0 or -1 */
static int exe_dir(char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    int m = snprintf(buf, size, "%s", exe);
    return m >= 0 && (size_t)m < size ? 0 : -1;
}

/* strip_suffix - cut "/" + suffix (a relative path) off dir; 1 when it was there */
static int strip_suffix(char *dir, const char *suffix)
{
    size_t dl = strlen(dir), sl = strlen(suffix);
    while (sl > 0 && suffix[sl - 1] == '/')
        sl--;
    if (sl == 0 || sl + 1 > dl || strncmp(dir + dl - sl, suffix, sl) != 0 || dir[dl - sl - 1] != '/')
        return 0;
    dir[dl - sl - 1] = '\0';
    return 1;
}

/* install_dir - see install_dirs.h */
int install_dir(enum install_what what, char *buf, size_t size)
{
    assert(what == INSTALL_PLUGINS || what == INSTALL_REPORTS);
    const char *rel = what == INSTALL_PLUGINS ? MTASIM_PLUGINDIR : MTASIM_REPORTSDIR;
    char dir[PATH_MAX], probe[PATH_MAX + 32];
    int n;
    if (exe_dir(dir, sizeof dir) < 0)
        return -1;
    /* A build tree: BUILD/sim/mtasim (or a unit test, BUILD/tests/unit/X),
     * with BUILD/meson-private at most BUILD_TREE_DEPTH folders up. */
    char top[PATH_MAX];
    snprintf(top, sizeof top, "%s", dir);
    for (int up = 0; up < BUILD_TREE_DEPTH; up++) {
        char *slash = strrchr(top, '/');
        if (slash == NULL || slash == top)
            break;
        *slash = '\0';
        snprintf(probe, sizeof probe, "%s/meson-private", top);
        if (access(probe, F_OK) == 0) {
            n = snprintf(buf, size, "%s/%s", top,
                         what == INSTALL_PLUGINS ? "fixtures/plugins" : "reports");
            return n >= 0 && (size_t)n < size ? 0 : -1;
        }
    }
    if (rel[0] == '/') {
        n = snprintf(buf, size, "%s", rel);
        return n >= 0 && (size_t)n < size ? 0 : -1;
    }
    /* Installed: PREFIX/BINDIR/mtasim. */
    if (MTASIM_BINDIR[0] == '/' || !strip_suffix(dir, MTASIM_BINDIR))
        return -1;  /* an absolute bindir tells no prefix; rel is relative to one */
    n = snprintf(buf, size, "%s/%s", dir, rel);
    return n >= 0 && (size_t)n < size ? 0 : -1;
}
