/*
 * liveness - what no real MTA may do, even when every expectation holds
 *
 * SYNOPSIS
 *   struct liveness *lv = liveness_create(sched, 100, 60 * 1000000);
 *   liveness_connect(lv, fd, dst);        simenv: a connect was attempted
 *   liveness_write(lv, fd, data, len);    simenv: bytes the core wrote
 *   const char *v = liveness_storm(lv);   NULL, or the violation
 *   liveness_destroy(lv);
 *
 *   liveness_duplicates(ts, report, arg); after the run, over its trace
 *   or, as the trace streams (nothing kept):
 *   x = liveness_dups_create(epoch); liveness_dups_feed(x, rec) per record;
 *   liveness_dups_finish(x, report, arg);
 *
 * DESCRIPTION
 *   Storm.  RFC 5321 4.5.4.1: a client MUST delay retrying a host that
 *   failed.  The checker counts the connection attempts to each remote
 *   address since the core last started a transaction there (wrote a MAIL
 *   command on a connection to it); more than count attempts within any
 *   window of that length is a storm.  The first storm stops the run at
 *   once (sim_sched_stop): a storm never ends by itself, and the run is
 *   judged an invariant violation naming the address, the count and the
 *   time.  A host that refuses, times out or answers 421 costs one attempt
 *   per host_failure_retry and retry, far below any sensible limit; a
 *   session that reaches MAIL, whatever the replies, is progress.
 *
 *   Duplicate.  liveness_duplicates() replays the client's SMTP dialogue
 *   from the trace (conn open/close, smtp send/recv, queue attempt): the
 *   replies are matched to the commands in order (RFC 2920 keeps them in
 *   order under PIPELINING), and a recipient counts as delivered when its
 *   RCPT got a 2xx and the end of its data a 2xx that the client received.
 *   A recipient of one message delivered twice so is a duplicate.  When the
 *   reply to the end of data was lost (the connection died first), the
 *   retry is what RFC 1047 describes and is not counted: only replies the
 *   client read count.  report() is called once per duplicate (at most
 *   LIVENESS_MAX_REPORTS times).
 *
 *   (The third liveness check, a message that is neither delivered,
 *   failed, expired nor waiting for a future attempt, is in runner.c: when
 *   the run falls quiet, a message the core still queues will never move.)
 */
#ifndef MTASIM_SIM_LIVENESS_H
#define MTASIM_SIM_LIVENESS_H

#include <stddef.h>
#include <stdint.h>

#include "mtasim_env.h"
#include "sim_sched.h"
#include "trace_store.h"

#define LIVENESS_STORM_COUNT 100                    /* default: attempts ... */
#define LIVENESS_STORM_WINDOW (60LL * 1000000)      /* ... within a minute */
#define LIVENESS_MAX_REPORTS 10

struct liveness;

/* count 0 turns the storm check off. */
struct liveness *liveness_create(struct sim_sched *s, int count, mta_usec_t window);
void liveness_destroy(struct liveness *lv);
/* A connection attempt to dst; fd < 0 when it failed at once. */
void liveness_connect(struct liveness *lv, int fd, mta_ip dst);
void liveness_write(struct liveness *lv, int fd, const void *data, size_t len);
const char *liveness_storm(const struct liveness *lv);

void liveness_duplicates(const struct trace_store *ts,
                         void (*report)(void *arg, const char *text), void *arg);
/* The same check fed record by record; finish reports (in the order found)
 * and frees. */
struct liveness_dups;
struct liveness_dups *liveness_dups_create(mta_usec_t epoch);
void liveness_dups_feed(struct liveness_dups *x, const struct trace_rec *r);
void liveness_dups_finish(struct liveness_dups *x, void (*report)(void *arg, const char *text),
                          void *arg);

#endif
