/*
 * panic - how the generic utilities stop on a broken invariant
 *
 * SYNOPSIS
 *   #include "panic.h"
 *
 *   util_panic_set(report);            (once, at start; NULL = the default)
 *   util_panic("strtab", "more than %u distinct strings", max);
 *   util_vpanic(func, fmt, ap);        (for a caller's own variadic wrapper)
 *
 * DESCRIPTION
 *   The utilities of core/util/ (idxmap, strtab, textbuf) sit below the
 *   core and everything else: when one of their invariants breaks (memory
 *   is exhausted, a bound is exceeded) they do not call the core's error
 *   reporting up a layer.  They call util_panic(), which formats the
 *   message and passes it to the reporter the program set with
 *   util_panic_set().  The default reporter writes
 *       mtasim: internal error in FUNC: MESSAGE
 *   on standard error.  Whatever the reporter does, the program aborts
 *   when it returns: a broken invariant must never turn into a quietly
 *   wrong trace.
 *
 *   The core's own mta_panic() reports through util_vpanic(), so every
 *   broken invariant reads the same, wherever it was found.
 *
 * BOUNDS
 *   A message is cut at UTIL_PANIC_MAX bytes.
 */
#ifndef MTASIM_UTIL_PANIC_H
#define MTASIM_UTIL_PANIC_H

#include <stdarg.h>

#define UTIL_PANIC_MAX 1024

/* Receives the name of the function that found the broken invariant and
 * the formatted message. */
typedef void (*util_panic_fn)(const char *func, const char *msg);

void util_panic_set(util_panic_fn report);
void util_panic(const char *func, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));
void util_vpanic(const char *func, const char *fmt, va_list ap)
    __attribute__((noreturn, format(printf, 2, 0)));

#endif
