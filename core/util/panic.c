/*
 * panic - how the generic utilities stop on a broken invariant
 *
 * See panic.h for the contract.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "panic.h"

/* report_stderr - the default reporter: one line on standard error */
static void report_stderr(const char *func, const char *msg)
{
    fprintf(stderr, "mtasim: internal error in %s: %s\n", func, msg);
}

static util_panic_fn report = report_stderr;

/* util_panic_set - who reports a broken invariant; NULL = the default */
void util_panic_set(util_panic_fn fn)
{
    report = fn != NULL ? fn : report_stderr;
}

/* util_vpanic - report a broken invariant found in func, then abort */
void util_vpanic(const char *func, const char *fmt, va_list ap)
{
    char msg[UTIL_PANIC_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    report(func, msg);
    abort();
}

/* util_panic - util_vpanic with the arguments in line */
void util_panic(const char *func, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    util_vpanic(func, fmt, ap);     /* does not return: no va_end */
}
