/*
 * summaries - the runner's per-message bookkeeping: message summaries and
 * the invariants checked on each message the core held
 *
 * SYNOPSIS
 *   struct summaries *s = summaries_create(sc, r, SUMMARIES_NAMED, 0);
 *   mta_release_done(m, summaries_add, s);     during the run (NAMED only)
 *   mta_foreach_message(m, summaries_add, s);  after it
 *   summaries_finish(s, end);                  fates; frees s
 *   run_violation(r, "format", ...);
 *
 * DESCRIPTION
 *   Every message the core made is folded into the summary of its id
 *   (struct msg_summary, expect.h: an injection's per-domain messages add
 *   up) and checked: recipients pending but the core no longer holds it,
 *   or none pending but still queued, are invariant violations
 *   (run_violation, into r->violations).  summaries_finish() gives each
 *   summary its fate and reports an injected message, due before the run
 *   ended, of which the core had no record.
 *
 *   How much is kept:
 *     SUMMARIES_LEAN   nothing: the checks only (mtasim bench)
 *     SUMMARIES_ALL    a summary per id in r->msgs, in first-seen order,
 *                      with its JSON detail when detail is set (--json)
 *     SUMMARIES_NAMED  summaries only for the ids an "expect message"
 *                      names (all that expect_check reads), and the set of
 *                      ids seen (8 bytes each, for the record check): a
 *                      run without --json, whose finished messages the
 *                      runner hands over as it goes (mta_release_done)
 *   The checks and the summaries kept are the same whichever order the
 *   messages come in, so releasing finished messages early changes
 *   nothing that is reported.
 *
 * BOUNDS
 *   Ids are hashed with open addressing at most half full: linear in the
 *   messages.  Out of memory is fatal.
 */
#ifndef MTASIM_SIM_SUMMARIES_H
#define MTASIM_SIM_SUMMARIES_H

#include "mta.h"
#include "runner.h"
#include "scenario.h"

enum summaries_mode { SUMMARIES_LEAN, SUMMARIES_ALL, SUMMARIES_NAMED };

struct summaries;

/* expected: how many summaries there can be (ALL: the table is sized once). */
struct summaries *summaries_create(const struct scn_scenario *sc, struct run_result *r,
                                   enum summaries_mode mode, int detail, size_t expected);
/* Fold one message in; fits mta_foreach_message() and mta_release_done(). */
void summaries_add(void *s, const message *msg);
/* Fates, and the check that the core knew every due injection (not LEAN);
 * end: when the run stopped, from the epoch.  Frees s. */
void summaries_finish(struct summaries *s, mta_usec_t end);

/* Append a violation to r (at most 511 bytes of text). */
void run_violation(struct run_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
