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
 */
#ifndef MTASIM_SIM_SCHED_H
#define MTASIM_SIM_SCHED_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t sim_usec;
typedef uint64_t sim_event_id;      /* never 0; unique for the scheduler's life */
typedef void (*sim_event_fn)(void *arg);
typedef void (*sim_advance_fn)(void *arg, sim_usec now);

enum sim_run_stop { SIM_RUN_QUIET, SIM_RUN_DEADLINE, SIM_RUN_EVENT_LIMIT };

struct sim_sched;

struct sim_sched *sim_sched_create(sim_usec start);
void sim_sched_destroy(struct sim_sched *s);
sim_usec sim_sched_now(const struct sim_sched *s);
sim_event_id sim_sched_at(struct sim_sched *s, sim_usec when, sim_event_fn fn, void *arg);
sim_event_id sim_sched_after(struct sim_sched *s, sim_usec delay, sim_event_fn fn, void *arg);
int sim_sched_cancel(struct sim_sched *s, sim_event_id id);
/* Run the next pending event; returns 0 if there was none. */
int sim_sched_step(struct sim_sched *s);
enum sim_run_stop sim_sched_run(struct sim_sched *s, sim_usec deadline, uint64_t max_events);
size_t sim_sched_pending(const struct sim_sched *s);     /* not counting cancelled */
uint64_t sim_sched_events_run(const struct sim_sched *s);
void sim_sched_on_advance(struct sim_sched *s, sim_advance_fn fn, void *arg);

#endif
