/*
 * mtasim_plugin.h - what an mtasim plugin exports and may call
 *
 * SYNOPSIS
 *   #include <mtasim_plugin.h>
 *   #include <hooks/core/log_delivery_v1.h>
 *
 *   int mtasim_module_init(const char *args)
 *   {
 *       static struct my_state st;
 *       register_core_log_delivery_v1_hook_last(on_delivery, &st);
 *       mtasim_closure_label(&st, "my-state");
 *       return 0;
 *   }
 *
 * DESCRIPTION
 *   A plugin is a shared object.  mtasim loads it with dlopen() after the
 *   core was created and calls its mtasim_module_init() once, with the text
 *   after the first ':' of "--plugin PATH:ARGS" or "plugin PATH:ARGS" (""
 *   when there is none).  The init registers hook providers with the
 *   generated register_core_<hook>_hook_first/_last functions; the core
 *   attributes each provider to the plugin whose init registered it.
 *   Returning non-zero refuses to run: the scenario ends with exit code 4
 *   and the value is reported.
 *
 *   mtasim_closure_label() gives a closure a name that trace records of
 *   the plugin's providers show as closure=LABEL (pointers never reach the
 *   trace).  Labelling the same closure again replaces the label; labels
 *   are copied, at most 127 bytes are kept.
 *
 *   mtasim_plugin_note() writes one trace record, "plugin note
 *   plugin=NAME hook=HOOK KEY=VALUE", at the current virtual time (the hook
 *   is the one whose provider is running, "mtasim_module_init" during the
 *   init): what the plugin saw becomes something "expect trace" can check.
 *   KEY is 1-63 characters of [A-Za-z0-9_.-] starting with a letter or '_'
 *   (not "plugin" or "hook"; a bad key stops the run); a VALUE that is a
 *   whole decimal number compares as a number; at most 512 bytes are kept.
 *
 *   mtasim_message_of() gives the core's own message (message.h: every
 *   recipient with its state, the whole id, the body) behind an ec_message
 *   a Momentum-style hook handed over; NULL for a message still being
 *   received (final_validation).
 *
 *   Every plugin is unloaded when its scenario ends; each scenario runs in
 *   a fresh process, so static state starts from zero every run.
 *
 *   The wall clock (time(), gettimeofday(), clock_gettime(CLOCK_REALTIME),
 *   localtime()) reads the run's virtual time when mtasim runs under
 *   libfaketime, which "mtasim run" arranges by itself (docs/faketime.md).
 */
#ifndef MTASIM_PLUGIN_H
#define MTASIM_PLUGIN_H

#include "ec_message.h"
#include "message.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The one symbol a plugin must export; 0 = ready. */
int mtasim_module_init(const char *args);

/* Name closure in the trace's provider records. */
void mtasim_closure_label(void *closure, const char *label);

/* The core's message behind msg (NULL while it is being received). */
const message *mtasim_message_of(const ec_message *msg);

/* Write "plugin note plugin=NAME hook=HOOK KEY=VALUE" into the trace. */
void mtasim_plugin_note(const char *key, const char *value);

/* Run fn(arg) once, usec microseconds of virtual time from now, as the
 * calling plugin (a MailerQ-style plugin continues a chain it holds from
 * here: mailerq.h).  Timers still due when the run ends are cancelled. */
void mtasim_timer_after(long usec, void (*fn)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif

#endif
