/*
 * faketime - the libfaketime bridge: plugins that read the wall clock see virtual time
 *
 * SYNOPSIS
 *   (mtasim run, before it prints anything)
 *   faketime_setup(argv, disabled, faketime_wanted(files, nfiles, ncli_plugins));
 *       may re-execute the program with the preload and not return
 *
 *   (the runner, per run that loads plugins)
 *   if (faketime_on()) {
 *       faketime_set(epoch);
 *       sim_sched_on_advance(sched, faketime_clock_moved, NULL);
 *   }
 *
 *   enum faketime_state st = faketime_state();
 *   const char *why = faketime_why_off();     one line, for "requires faketime"
 *
 * DESCRIPTION
 *   The core never reads a clock, but a plugin may: time(), gettimeofday(),
 *   clock_gettime(CLOCK_REALTIME), localtime()/strftime() of those.  To make
 *   those calls see the run's virtual time, mtasim runs under Debian's
 *   libfaketime (LD_PRELOAD) in its "absolute date" mode with the cache off
 *   (FAKETIME_NO_CACHE=1): libfaketime then parses $FAKETIME on every call,
 *   and the simulator rewrites $FAKETIME each time the virtual clock moves.
 *   The monotonic clock is not faked (FAKETIME_DONT_FAKE_MONOTONIC=1): the
 *   isolation watchdog and the wall-time measurements use it.  TZ=UTC,
 *   because virtual time is UTC and libfaketime reads the date as local time.
 *
 *   LD_PRELOAD only acts when a process starts, so faketime_setup() re-executes
 *   /proc/self/exe once with the preload and MTASIM_FAKETIME_EXEC=1 (the
 *   guard: the second process never re-executes).  Under AddressSanitizer the
 *   sanitizer's runtime must be the first library loaded: the one this
 *   process was linked with (found with dl_iterate_phdr) goes first in
 *   LD_PRELOAD, libfaketime second.
 *
 *   Precision: libfaketime reads the fraction of "YYYY-MM-DD HH:MM:SS.F" as
 *   a double and truncates it to nanoseconds, which turns .999999 into
 *   999998999 ns.  Half a nanosecond is added (".9999990005"), which makes
 *   gettimeofday()'s microseconds and clock_gettime()'s nanoseconds exact for
 *   every microsecond of a second (tests/drivers/test_faketime.py checks it).
 *
 *   faketime_set() is cheap: nothing when the time did not change; the date
 *   is formatted only when the second changes, else only the fraction is
 *   rewritten in place.  The string lives in a static buffer handed to
 *   putenv() once, so no update allocates.
 *
 * ENVIRONMENT
 *   MTASIM_LIBFAKETIME=PATH   use this library instead of searching for it
 *                             (a path that does not exist means "not
 *                             installed"; the tests use that)
 *   MTASIM_FAKETIME_EXEC      the re-execution guard; set by mtasim itself
 *
 * DIAGNOSTICS
 *   A run that wants the bridge while libfaketime is missing, or did not
 *   load, says so once on stderr ("mtasim: warning: ...") and continues:
 *   plugins then read the real wall clock.  A scenario that says "requires
 *   faketime" fails with exit code 2 and faketime_why_off().
 *
 * LIMITS
 *   Only code that calls the libc functions through the dynamic linker is
 *   reached: static binaries, raw syscalls and code that reads the vDSO
 *   itself see the real clock.  One thread: $FAKETIME is rewritten by the
 *   simulation thread without locking.  CLOCK_MONOTONIC (and _RAW, _BOOTTIME)
 *   is real time on purpose.  See docs/faketime.md.
 */
#ifndef MTASIM_SIM_FAKETIME_H
#define MTASIM_SIM_FAKETIME_H

#include "sim_sched.h"

enum faketime_state {
    FAKETIME_UNUSED,        /* no run of this command loads a plugin */
    FAKETIME_ON,            /* libfaketime is loaded and driven */
    FAKETIME_DISABLED,      /* --no-faketime */
    FAKETIME_MISSING,       /* the library was not found */
    FAKETIME_FAILED,        /* re-executed with the preload, but it is not loaded */
};

/* The guard variable of the re-execution. */
#define FAKETIME_EXEC_GUARD "MTASIM_FAKETIME_EXEC"

int faketime_wanted(char *const *files, int nfiles, int ncli_plugins);
void faketime_setup(char **argv, int disabled, int wanted);
enum faketime_state faketime_state(void);
int faketime_on(void);
const char *faketime_why_off(void);
const char *faketime_library(void);
void faketime_set(sim_usec abs_usec);
void faketime_clock_moved(void *arg, sim_usec now);

#endif
