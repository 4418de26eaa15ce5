/*
 * isolate - run a scenario in a child process that a plugin cannot take down
 *
 * SYNOPSIS
 *   struct isolate_outcome out;
 *   isolate_call(fn, arg, timeout_s, &out);      fn runs in a child
 *   ... out.how, out.payload, out.watch ...
 *   isolate_outcome_free(&out);
 *
 *   struct run_result r;
 *   runner_run_isolated(sc, &opts, timeout_s, &r);
 *   run_result_explain(epoch, timeout_s, &out, &r);   (what the above uses)
 *   run_result_free(&r);
 *
 * DESCRIPTION
 *   isolate_call() forks.  The child attaches a shared anonymous page as
 *   the hook registry's watch (hook_registry.h: the hook, plugin and
 *   virtual time of the innermost provider call), catches fatal signals
 *   (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) just long enough to note
 *   them in the page before the previous disposition (default, or a
 *   sanitizer's report) takes over, and notes exit() calls the same way.
 *   It then runs fn, writes the payload fn returns to a pipe and exits.
 *   The parent reads the pipe with a wall-clock watchdog: after timeout_s
 *   seconds the child is killed with SIGKILL.  The wall clock only decides
 *   whether to kill; it never reaches a trace or a result.
 *
 *   Stdio is flushed before the fork so the child does not write the
 *   parent's pending output a second time.
 *
 *   runner_run_isolated() is runner_run() in such a child, its struct
 *   run_result carried back as JSON.  When the child does not report, the
 *   result says why, naming the plugin, the hook and the virtual time:
 *     a fatal signal, a hang, or exit()/_exit() while a plugin's provider
 *     (or its mtasim_module_init) runs  -> RUN_PLUGIN, exit code 4;
 *     the same with no plugin on the stack (the core itself) -> RUN_ERROR,
 *     exit code 3 (internal error);
 *     a complete result but a non-zero exit status (a sanitizer's error
 *     report at exit)                -> RUN_ERROR, exit code 3;
 *     under LeakSanitizer, a leak found once the run is over (checked in
 *     the child before it reports) -> RUN_PLUGIN, exit code 4, when
 *     plugins were loaded (the core is leak-free on every bundled
 *     scenario, which CI runs under it), else RUN_ERROR, exit code 3.
 *   A run killed with no plugin on the stack ("hung") is reported with the
 *   virtual time its scheduler had reached, the events it had run and the
 *   busiest kinds of event, which the child publishes in the shared page
 *   (sim_sched_publish_to): a loop shows as one kind by the million.
 *
 * BOUNDS
 *   A payload larger than ISOLATE_MAX_PAYLOAD is cut off and reported as an
 *   internal error.
 */
#ifndef MTASIM_SIM_ISOLATE_H
#define MTASIM_SIM_ISOLATE_H

#include <stddef.h>

#include "hook_registry.h"
#include "runner.h"
#include "sim_sched.h"

#define ISOLATE_MAX_PAYLOAD (256UL * 1024 * 1024)
#define ISOLATE_DEFAULT_TIMEOUT 10.0        /* seconds of wall-clock time */

enum isolate_how {
    ISOLATE_REPORTED,       /* the child sent its payload and exited 0 */
    ISOLATE_SIGNALED,       /* a fatal signal (out.signal) */
    ISOLATE_EXITED,         /* exited (out.exit_status) without reporting, or non-zero after */
    ISOLATE_TIMED_OUT,      /* killed by the watchdog */
    ISOLATE_FORK_FAILED,
};

struct isolate_outcome {
    enum isolate_how how;
    char *payload;          /* NUL-terminated; NULL unless the child finished sending */
    size_t len;
    int signal;             /* ISOLATE_SIGNALED */
    int exit_status;        /* ISOLATE_EXITED, and REPORTED (0) */
    int exit_called;        /* exit() (rather than _exit() or returning) ended the child */
    struct hook_watch watch;    /* the page as the child left it */
    struct sim_sched_stats sched;   /* the child's clock and event counts (sim_sched.h) */
};

/* Runs in the child: return a malloc'd payload (its length in *len). */
typedef char *(*isolate_fn)(void *arg, size_t *len);

void isolate_call(isolate_fn fn, void *arg, double timeout_s, struct isolate_outcome *out);
void isolate_outcome_free(struct isolate_outcome *out);

int runner_run_isolated(const struct scn_scenario *sc, const struct run_opts *o,
                        double timeout_s, struct run_result *r);
/* Fill r's verdict, exit code, why and error for an outcome other than
 * ISOLATE_REPORTED; epoch turns the watch's virtual time into a relative one. */
void run_result_explain(mta_usec_t epoch, double timeout_s, const struct isolate_outcome *out,
                        struct run_result *r);

#endif
