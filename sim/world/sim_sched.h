/*
 * sim_sched - discrete-event scheduler and virtual clock
 *
 * SYNOPSIS
 *   struct sim_sched *s = sim_sched_create(epoch_us);
 *   sim_event_id id = sim_sched_at(s, when, fn, arg);
 *   sim_sched_cancel(s, id);
 *   enum sim_run_stop why = sim_sched_run(s, deadline, max_events);
 *   sim_sched_destroy(s);
 *
 * DESCRIPTION
 *   Events are ordered by (virtual time, sequence number): two events at
 *   the same instant run in the order they were scheduled, so a run never
 *   depends on heap layout or pointer values.  The clock only moves when an
 *   event runs, to that event's time; it never goes backwards.
 *
 *   sim_sched_at() with a time before now is a bug and aborts.
 *   sim_sched_cancel() of an event that already ran or was cancelled is
 *   harmless and returns 0.  Cancelled events are skipped lazily.
 *
 *   sim_sched_run() runs events until none is left (SIM_RUN_QUIET), the
 *   next one is after deadline (SIM_RUN_DEADLINE; the clock is then set
 *   to the deadline), or max_events have run (SIM_RUN_EVENT_LIMIT).
 *   deadline < 0 means no deadline; max_events 0 means no limit.
 *
 *   sim_sched_on_advance() names one function called with the new time
 *   each time the clock moves forward (an event at a later time, or the
 *   jump to the deadline), before anything runs at that time; NULL
 *   removes it.  The libfaketime bridge (faketime.h) follows the clock so.
 *
 *   sim_sched_stop() ends sim_sched_run() after the event that called it
 *   (SIM_RUN_STOPPED): a liveness check that found a storm stops the run.
 *
 *   Every event has a kind (sim_sched_at_kind; sim_sched_at is
 *   SIM_EV_OTHER), and the scheduler counts the events run per kind and
 *   publishes them with the clock in a struct sim_sched_stats: its own,
 *   or - set with sim_sched_publish_to() before sim_sched_create() - one
 *   in memory shared with a supervisor, which can then say where a run
 *   it had to kill was and what it was busy with (isolate.c, the "hung"
 *   report).
 *
 *   sim_sched_lane() makes a lane, and sim_sched_at_lane() schedules as
 *   sim_sched_at_kind() with a hint: events of one lane usually come in
 *   time order (the segments of one link and direction, due a fixed
 *   latency after they left), and the scheduler keeps those in a list with
 *   only the first in its heap.  The hint changes no order: events run by
 *   (time, sequence number) whichever lane they were given, and one due
 *   before the lane's last is simply scheduled alone.  Lane 0 is none.
 */
#ifndef MTASIM_SIM_SCHED_H
#define MTASIM_SIM_SCHED_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t sim_usec;
typedef uint64_t sim_event_id;      /* never 0; unique for the scheduler's life */
typedef void (*sim_event_fn)(void *arg);
typedef void (*sim_advance_fn)(void *arg, sim_usec now);
typedef uint32_t sim_lane;          /* 0 = no lane */

enum sim_run_stop { SIM_RUN_QUIET, SIM_RUN_DEADLINE, SIM_RUN_EVENT_LIMIT, SIM_RUN_STOPPED };

/* What an event is, for the counts of a run that never ends. */
enum sim_ev_kind {
    SIM_EV_OTHER,
    SIM_EV_CORE_TIMER,      /* a timer of the core (session, maintainer, queue scan) */
    SIM_EV_SEGMENT,         /* a TCP segment or connection event arrives */
    SIM_EV_DNS,             /* a DNS answer */
    SIM_EV_REMOTE,          /* a scripted remote's delayed reply, close or fault */
    SIM_EV_CLIENT,          /* a scripted client's step */
    SIM_EV_INJECT,          /* a message injection */
    SIM_EV_KINDS
};
/* "core timer", "network segment", ... for a kind. */
const char *sim_ev_kind_name(enum sim_ev_kind k);

/* The live figures of a scheduler; volatile: a supervisor may read them
 * from shared memory after the process was killed. */
struct sim_sched_stats {
    volatile int64_t now;                   /* the virtual clock */
    volatile uint64_t events;               /* events run */
    volatile uint64_t count[SIM_EV_KINDS];  /* events run per kind */
};

struct sim_sched;

struct sim_sched *sim_sched_create(sim_usec start);
void sim_sched_destroy(struct sim_sched *s);
sim_usec sim_sched_now(const struct sim_sched *s);
sim_event_id sim_sched_at(struct sim_sched *s, sim_usec when, sim_event_fn fn, void *arg);
sim_event_id sim_sched_at_kind(struct sim_sched *s, sim_usec when, sim_event_fn fn, void *arg,
                               enum sim_ev_kind kind);
sim_lane sim_sched_lane(struct sim_sched *s);
sim_event_id sim_sched_at_lane(struct sim_sched *s, sim_lane lane, sim_usec when,
                               sim_event_fn fn, void *arg, enum sim_ev_kind kind);
sim_event_id sim_sched_after(struct sim_sched *s, sim_usec delay, sim_event_fn fn, void *arg);
int sim_sched_cancel(struct sim_sched *s, sim_event_id id);
/* Run the next pending event; returns 0 if there was none. */
int sim_sched_step(struct sim_sched *s);
enum sim_run_stop sim_sched_run(struct sim_sched *s, sim_usec deadline, uint64_t max_events);
size_t sim_sched_pending(const struct sim_sched *s);     /* not counting cancelled */
uint64_t sim_sched_events_run(const struct sim_sched *s);
void sim_sched_on_advance(struct sim_sched *s, sim_advance_fn fn, void *arg);
/* End the current sim_sched_run() after the running event (SIM_RUN_STOPPED). */
void sim_sched_stop(struct sim_sched *s);
const struct sim_sched_stats *sim_sched_stats(const struct sim_sched *s);
/* Schedulers created from now on publish their figures at st (NULL: their own). */
void sim_sched_publish_to(struct sim_sched_stats *st);
/* "network segment 1200345, core timer 400112, ..." - the n busiest kinds
 * with at least one event, most first, into buf. */
void sim_sched_busiest(const struct sim_sched_stats *st, int n, char *buf, size_t size);

#endif
