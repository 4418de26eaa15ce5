/*
 * plugin_path - where the plugin a scenario or the command line names is
 *
 * See plugin_path.h for the contract.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "install_dirs.h"
#include "plugin_path.h"

/* xstrdup_or_die - strdup that stops the program when memory is gone */
static char *xstrdup_or_die(const char *s)
{
    char *p = strdup(s);
    if (p == NULL) {
        fprintf(stderr, "plugin: out of memory\n");
        abort();
    }
    return p;
}

/* plugin_spec_split - "PATH[:ARGS]" into its parts */
void plugin_spec_split(const char *spec, char **path, char **args)
{
    const char *colon = strchr(spec, ':');
    *path = colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
    *args = strdup(colon ? colon + 1 : "");
    if (*path == NULL || *args == NULL) {
        fprintf(stderr, "plugin_spec_split: out of memory\n");
        abort();
    }
}

/* joined - dir + "/" + name (malloc'd); dir "" means the working directory,
 * "./name": dlopen() searches the system's library path for a name without
 * a '/' (dlopen(3)), never the working directory. */
static char *joined(const char *dir, size_t dirlen, const char *name)
{
    size_t n = dirlen + 1 + strlen(name) + 1;
    char *p = malloc(n + 2);
    if (p == NULL) {
        fprintf(stderr, "plugin: out of memory\n");
        abort();
    }
    if (dirlen == 0)
        snprintf(p, n + 2, "./%s", name);
    else
        snprintf(p, n, "%.*s/%s", (int)dirlen, dir, name);
    return p;
}

/* readable - the file exists and can be read; else errno-ish why */
static int readable(const char *file, char *why, size_t whysz)
{
    if (access(file, R_OK) == 0)
        return 1;
    snprintf(why, whysz, "%s", strerror(errno));
    return 0;
}

/* search_dirs - the first readable dir/name of a ':'-separated list */
static char *search_dirs(const char *list, const char *name)
{
    char why[128];
    const char *s = list;
    while (s && *s) {
        size_t n = strcspn(s, ":");
        if (n > 0) {
            char *cand = joined(s, n, name);
            if (readable(cand, why, sizeof why))
                return cand;
            free(cand);
        }
        s += n;
        if (*s == ':')
            s++;
    }
    return NULL;
}

/* plugin_resolve - the file a plugin path names; see plugin_path.h for the order */
char *plugin_resolve(const char *path, const char *base, char *why, size_t whysz)
{
    assert(path != NULL);
    if (path[0] == '\0') {
        snprintf(why, whysz, "empty plugin path");
        return NULL;
    }
    const char *slash = base ? strrchr(base, '/') : NULL;
    size_t baselen = slash ? (size_t)(slash - base) : 0;
    char *file = path[0] == '/' ? xstrdup_or_die(path) : joined(base, baselen, path);
    if (readable(file, why, whysz))
        return file;
    free(file);
    if (strchr(path, '/') != NULL)
        return NULL;        /* an explicit path is not searched for */
    char *found = NULL;
    if (base != NULL && baselen > 0) {     /* next to the scenario, then here */
        found = joined("", 0, path);
        if (!readable(found, why, whysz)) {
            free(found);
            found = NULL;
        }
    }
    if (found == NULL)
        found = search_dirs(getenv("MTASIM_PLUGIN_PATH"), path);
    char installed[4096] = "";
    if (found == NULL && install_dir(INSTALL_PLUGINS, installed, sizeof installed) == 0)
        found = search_dirs(installed, path);
    if (found == NULL)
        snprintf(why, whysz, "not found %s, in $MTASIM_PLUGIN_PATH or in %s",
                 base && baselen > 0 ? "next to the scenario, in the working directory"
                                     : "in the working directory",
                 installed[0] ? installed : "(no installed plugin folder)");
    return found;
}
