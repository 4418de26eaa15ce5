/*
 * plugin_note - mtasim_plugin_note(): a plugin writes a record into the trace
 *
 * SYNOPSIS
 *   #include <mtasim_plugin.h>
 *
 *   mtasim_plugin_note("gettimeofday_delta_us", "0");
 *
 * DESCRIPTION
 *   Appends one record of kind "plugin", name "note" to the running core's
 *   trace, at the current virtual time:
 *
 *     plugin note plugin=NAME hook=HOOK KEY=VALUE
 *
 *   NAME is the plugin whose provider (or mtasim_module_init) is running,
 *   HOOK the hook it was called for ("mtasim_module_init" during the init,
 *   "none" outside both).  Both come from the hook registry's watch, which
 *   mirrors the innermost provider call.  A VALUE that is a whole decimal
 *   number is also numeric, so scenarios can compare it (delta_us=0,
 *   n>=2); anything else is a string.
 *
 *   It is how a plugin shows what it saw - state, or the wall clock it read
 *   (fixtures/plugins/faketime_stamp.c) - to "expect trace" lines.  With no
 *   core running (a destructor at unload) the note goes nowhere.
 *
 *   mta_plugin_warning() is the core's side: when it does not take a
 *   provider's result as given (a connection_post_bind value that is no
 *   CONN_ERR code, a mail_queue_get_next_active message from elsewhere) it
 *   says so in one record naming the provider's plugin:
 *
 *     plugin warning plugin=NAME hook=HOOK what=TEXT
 *
 *   NAME is the plugin of the provider of HOOK that returned last (the one
 *   whose result ended the chain).  A warning is information, not a
 *   verdict: the run's exit code does not change.
 *
 * BOUNDS
 *   KEY is 1-63 characters of [A-Za-z0-9_.-], starting with a letter or
 *   '_', and neither "plugin" nor "hook"; anything else is a plugin bug and
 *   stops the run loudly (exit code 4, naming the plugin and the hook).
 *   VALUE (NULL = "") is cut at PLUGIN_NOTE_VALUE_MAX bytes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "mta_internal.h"
#include "mtasim_plugin.h"
#include "trace.h"

#define PLUGIN_NOTE_KEY_MAX 63
#define PLUGIN_NOTE_VALUE_MAX 512

/* note_key_ok - a key a matcher can name: [A-Za-z_][A-Za-z0-9_.-]* */
static int note_key_ok(const char *key)
{
    size_t n = strnlen(key, PLUGIN_NOTE_KEY_MAX + 1);
    if (n == 0 || n > PLUGIN_NOTE_KEY_MAX || !(isalpha((unsigned char)key[0]) || key[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)key[i]) && strchr("_.-", key[i]) == NULL)
            return 0;
    /* The record's own fields cannot be overwritten by a note. */
    return strcmp(key, "plugin") != 0 && strcmp(key, "hook") != 0;
}

/* note_number - value as a whole decimal number; 1 when it is one */
static int note_number(const char *value, int64_t *num)
{
    const char *p = value;
    if (*p == '-' || *p == '+')
        p++;
    if (!isdigit((unsigned char)*p))
        return 0;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return 0;
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno != 0 || *end != '\0')
        return 0;
    *num = v;
    return 1;
}

/* mtasim_plugin_note - record KEY=VALUE in the trace (public plugin API) */
void mtasim_plugin_note(const char *key, const char *value)
{
    const struct hook_watch *w = hook_watch_get();
    const char *plugin = w->depth > 0 ? w->plugin : "core";
    const char *hook = w->depth > 0 ? w->hook : "none";
    if (key == NULL || !note_key_ok(key)) {
        fprintf(stderr, "mtasim_plugin_note: bad key '%.80s' from plugin %s in hook %s: "
                "want 1-%d of [A-Za-z0-9_.-], not 'plugin' or 'hook'\n",
                key ? key : "(null)", plugin, hook, PLUGIN_NOTE_KEY_MAX);
        abort();
    }
    if (!mta_tracing())
        return;
    if (value == NULL)
        value = "";
    struct mta_tb tb;
    mta_tb_begin(&tb, "plugin", "note");
    mta_tb_str(&tb, "plugin", plugin);
    mta_tb_str(&tb, "hook", hook);
    int64_t num;
    if (note_number(value, &num))
        mta_tb_sym(&tb, key, num, value);
    else
        mta_tb_strn(&tb, key, value, strnlen(value, PLUGIN_NOTE_VALUE_MAX));
    mta_tb_emit(&tb);
}

/* mta_plugin_warning - the core did not take a provider's result of hook as given */
void mta_plugin_warning(const char *hook, const char *fmt, ...)
{
    if (!mta_tracing())
        return;
    char what[PLUGIN_NOTE_VALUE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *plugin = NULL;
    const char *last = hook_last_left(&plugin);
    if (last == NULL || strcmp(last, hook) != 0)
        plugin = "(unknown plugin)";
    struct mta_tb tb;
    mta_tb_begin(&tb, "plugin", "warning");
    mta_tb_str(&tb, "plugin", plugin);
    mta_tb_str(&tb, "hook", hook);
    mta_tb_str(&tb, "what", what);
    mta_tb_emit(&tb);
}
