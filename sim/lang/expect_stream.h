/*
 * expect_stream - a scenario's expectations judged as the trace streams
 *
 * SYNOPSIS
 *   if (expect_stream_covers(sc)) {
 *       struct expect_stream *es = expect_stream_create(sc, epoch);
 *       expect_stream_feed(es, rec);          every record, in trace order
 *       int v = expect_stream_verdict(es, i); 1 held, 0 failed, -1 not streamed
 *       expect_stream_destroy(es);
 *   }
 *
 * DESCRIPTION
 *   Each block expectation is a small matcher fed every record as it is
 *   produced, so a run need not keep its trace to judge them:
 *
 *     hooks/trace in order  the index of the next pattern; a record that
 *                           matches it (in scope) advances it: the same
 *                           greedy earliest matching as expect_check
 *     hooks/trace exactly   how many mentioned records so far, and whether
 *                           each matched the pattern of its position
 *     never, count          the number of matching records (in scope)
 *     client N: expect CODE the "client reply" record of that step came
 *
 *   "for" scopes and "at" time bounds are tested exactly as expect_check
 *   tests them (the same functions, the same epoch).
 *
 *   "expect message ID FATE" reads the message summaries, not the trace:
 *   it is left to expect_check (verdict -1), which needs no records for it.
 *   "expect message ID intact" and "expect dsn" compare records with each
 *   other; expect_stream_covers() is false for a scenario with either, and
 *   its run keeps the trace.
 *
 *   The verdict is exactly expect_check's; a failure's account (what did
 *   match, the closest candidate, what happened instead) needs the records
 *   and is not made here: the runner replays the run with the trace kept
 *   (runner.c), which determinism makes the same run.
 */
#ifndef MTASIM_SIM_EXPECT_STREAM_H
#define MTASIM_SIM_EXPECT_STREAM_H

#include "scenario.h"
#include "trace_store.h"

struct expect_stream;

/* Every expectation of sc is either streamed or judged without records. */
int expect_stream_covers(const struct scn_scenario *sc);
/* epoch: the trace's (trace_store_create), which "at" matchers count from. */
struct expect_stream *expect_stream_create(const struct scn_scenario *sc, mta_usec_t epoch);
void expect_stream_feed(struct expect_stream *es, const struct trace_rec *r);
int expect_stream_verdict(const struct expect_stream *es, int i);
void expect_stream_destroy(struct expect_stream *es);

#endif
