/*
 * inject_range - the messages of one "inject FIRST..LAST" line
 *
 * SYNOPSIS
 *   #include "scenario.h"
 *
 *   unsigned long id = in->id + k;                   k < in->count
 *   mta_usec_t at = scn_inject_time(in, k);
 *   size_t n = scn_inject_rcpt(in, i, k, buf, cap);
 *
 * DESCRIPTION
 *   A line written out is one message (count 1).  A range line stands for
 *   count messages, made one by one as they fall due (the runner does not
 *   hold them all): message k (0 <= k < count) has id in->id + k, comes at
 *   in->at + floor(in->spread * k / count), and goes to each recipient of
 *   the line with its "{LO..HI}" part, if any, replaced by the decimal
 *   number LO + k mod (HI - LO + 1): round robin over the numbers, so
 *   "<u@d{1..1000}.test>" spreads the messages evenly over 1000 domains.
 *   Both are pure functions of the line and k: the parser checks the
 *   addresses with them, the runner injects with them, and the same
 *   scenario always makes the same messages.
 *
 * BOUNDS
 *   spread * k is computed without overflow for any count and spread
 *   the parser accepts (count <= 1e9, spread < 2^63 us).
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "scenario.h"

/* scn_inject_time - when message k of in comes, from the epoch */
mta_usec_t scn_inject_time(const struct scn_inject *in, unsigned long k)
{
    assert(k < in->count);
    if (in->spread <= 0 || in->count <= 1)
        return in->at;
    /* spread * k / count as q * k + r * k / count: r < count <= 1e9 and
     * k < 1e9 keep r * k below 2^63. */
    uint64_t n = in->count, q = (uint64_t)in->spread / n, r = (uint64_t)in->spread % n;
    return in->at + (mta_usec_t)(q * k + r * k / n);
}

/* scn_inject_rcpt - recipient i of message k into buf (NUL-terminated when
 * it fits); the length it needs, without the NUL */
size_t scn_inject_rcpt(const struct scn_inject *in, int i, unsigned long k, char *buf, size_t cap)
{
    assert(i >= 0 && i < in->nrcpts && k < in->count);
    const char *t = in->rcpts[i];
    const struct scn_rcpt_range *g = in->ranges ? &in->ranges[i] : NULL;
    if (g == NULL || g->hi < g->lo) {
        int n = snprintf(buf, cap, "%s", t);
        return (size_t)n;
    }
    unsigned long v = g->lo + k % (g->hi - g->lo + 1);
    int n = snprintf(buf, cap, "%.*s%lu%s", (int)g->at, t, v, t + g->end);
    return (size_t)n;
}
