/*
 * expect - checking a scenario's expectations against what happened
 *
 * SYNOPSIS
 *   struct exp_result r;
 *   expect_check(&sc->expects[i], trace, msgs, nmsgs, &r);
 *   ... r.passed, r.what, r.diff ...
 *   expect_result_free(&r);
 *
 * DESCRIPTION
 *   "expect hooks in order" holds when its patterns match a subsequence of
 *   the trace's hook records (kind "hook"), in order, gaps allowed.  Each
 *   pattern is matched at the earliest possible record after the previous
 *   match; greedy earliest matching finds a subsequence whenever one
 *   exists.  A pattern matches a record with its name when every matcher
 *   holds (see docs/scenario-language.md for the operators).
 *
 *   "expect message ID FATE [within D]" holds when the injection's
 *   aggregated fate is FATE (and, for delivered and bounced, was reached
 *   no later than epoch + D).
 *
 *   On failure, diff is a multi-line, human-readable account: what
 *   matched with its virtual time, the first pattern that did not, the
 *   closest candidate and why it failed, and what happened next.
 */
#ifndef MTASIM_SIM_EXPECT_H
#define MTASIM_SIM_EXPECT_H

#include "scenario.h"
#include "trace_store.h"

/* The outcome of one injection, aggregated over its per-domain messages. */
struct msg_summary {
    unsigned long id;
    const char *fate;       /* "delivered", "bounced", "deferred", "partial" */
    mta_usec_t done_at;     /* absolute; -1 while anything is pending */
    int attempts;           /* the most of any part */
    int nrcpts, delivered, failed, pending;
    char last_note[256];    /* the last failure reason seen, if any */
    /* For the result JSON (docs/results.md), owned: "rcpts", each
     * recipient's address, state, RFC 3463 status, note and remote MTA;
     * for a DSN, "dsn_of" and "dsn_text".  NULL in lean runs. */
    struct json_t *detail;
};

struct exp_result {
    int passed;
    int line;
    char *what;             /* "expect hooks in order", "expect message 1 delivered within 10m" */
    char *diff;             /* NULL when passed */
};

int expect_check(const struct scn_expect *e, const struct trace_store *ts,
                 const struct msg_summary *msgs, int nmsgs, struct exp_result *out);
void expect_result_free(struct exp_result *r);
/* "expect hooks in order", "expect message 1 delivered within 10m" (malloc'd). */
char *expect_what(const struct scn_expect *e);
/* "10m", "1h30m", "40ms": the shortest exact spelling of a duration. */
const char *expect_duration_str(mta_usec_t d, char buf[32]);
/* A pattern as it would be written in a scenario (malloc'd). */
char *expect_pattern_text(const struct scn_pattern *p);

#endif
