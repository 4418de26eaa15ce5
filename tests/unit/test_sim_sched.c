/*
 * test_sched - unit tests for sim/world/sim_sched.c: ordering, cancellation, clock, stops,
 *   far events (the ring), lanes of events in time order
 */
#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim_sched.h"

#define LOG_MAX 4096

/* A log of which events ran, and when. */
struct run_log {
    struct sim_sched *s;
    int n;
    int tag[LOG_MAX];
    sim_usec at[LOG_MAX];
};

struct tagged {
    struct run_log *log;
    int tag;
};

/* log_event - record the tag and the clock */
static void log_event(void *arg)
{
    struct tagged *t = arg;

    ck_assert_int_lt(t->log->n, LOG_MAX);
    t->log->tag[t->log->n] = t->tag;
    t->log->at[t->log->n] = sim_sched_now(t->log->s);
    t->log->n++;
}

/* ran_in_order - exactly n events ran, tagged want[0], want[1], ... in that order */
static void ran_in_order(const struct run_log *log, const int *want, int n)
{
    ck_assert_int_eq(log->n, n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(log->tag[i] == want[i], "event %d: tag %d, want %d", i, log->tag[i],
                      want[i]);
}

START_TEST(same_time_runs_in_scheduling_order)
{
    struct run_log log = { 0 };
    struct tagged t[5];
    int i;

    log.s = sim_sched_create(1000);
    for (i = 0; i < 5; i++) {
        t[i].log = &log;
        t[i].tag = i;
    }
    /* Interleave times so heap layout differs from insertion order. */
    sim_sched_at(log.s, 2000, log_event, &t[0]);
    sim_sched_at(log.s, 1500, log_event, &t[1]);
    sim_sched_at(log.s, 2000, log_event, &t[2]);
    sim_sched_at(log.s, 1500, log_event, &t[3]);
    sim_sched_at(log.s, 2000, log_event, &t[4]);
    ck_assert_int_eq(sim_sched_run(log.s, -1, 0), SIM_RUN_QUIET);
    ran_in_order(&log, (const int[]) { 1, 3, 0, 2, 4 }, 5);
    ck_assert_int_eq(log.at[0], 1500);
    ck_assert_int_eq(log.at[4], 2000);
    ck_assert_int_eq(sim_sched_events_run(log.s), 5);
    sim_sched_destroy(log.s);
}
END_TEST

/* Many events at pseudo-random times: the clock must never go backwards and
 * ties must keep insertion order. */
START_TEST(clock_never_goes_backwards)
{
    static struct run_log log;
    static struct tagged t[2000];
    uint32_t x = 12345;
    int i;

    log.n = 0;
    log.s = sim_sched_create(0);
    for (i = 0; i < 2000; i++) {
        x = x * 1103515245u + 12345u;       /* a fixed LCG: the test is deterministic */
        t[i].log = &log;
        t[i].tag = i;
        sim_sched_at(log.s, (sim_usec) ((x >> 16) % 50), log_event, &t[i]);
    }
    ck_assert_uint_eq(sim_sched_pending(log.s), 2000);
    sim_sched_run(log.s, -1, 0);
    ck_assert_int_eq(log.n, 2000);
    for (i = 1; i < 2000; i++) {
        ck_assert_int_ge(log.at[i], log.at[i - 1]);
        if (log.at[i] == log.at[i - 1])
            ck_assert_int_gt(log.tag[i], log.tag[i - 1]);
    }
    ck_assert_uint_eq(sim_sched_pending(log.s), 0);
    sim_sched_destroy(log.s);
}
END_TEST

START_TEST(cancel_skips_event)
{
    struct run_log log = { 0 };
    struct tagged a = { &log, 1 }, b = { &log, 2 }, c = { &log, 3 };
    sim_event_id ia, ib;

    log.s = sim_sched_create(0);
    ia = sim_sched_at(log.s, 10, log_event, &a);
    ib = sim_sched_at(log.s, 20, log_event, &b);
    sim_sched_at(log.s, 30, log_event, &c);
    ck_assert_uint_ne(ia, 0);
    ck_assert_uint_ne(ia, ib);
    ck_assert_uint_eq(sim_sched_pending(log.s), 3);
    ck_assert_int_eq(sim_sched_cancel(log.s, ib), 1);
    ck_assert_int_eq(sim_sched_cancel(log.s, ib), 0);       /* twice is harmless */
    ck_assert_uint_eq(sim_sched_pending(log.s), 2);
    ck_assert_int_eq(sim_sched_step(log.s), 1);
    ck_assert_int_eq(sim_sched_cancel(log.s, ia), 0);       /* already ran */
    ck_assert_int_eq(sim_sched_cancel(log.s, 0), 0);
    ck_assert_int_eq(sim_sched_cancel(log.s, 999999), 0);   /* never existed */
    sim_sched_run(log.s, -1, 0);
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.tag[0], 1);
    ck_assert_int_eq(log.tag[1], 3);
    ck_assert_int_eq(sim_sched_events_run(log.s), 2);
    ck_assert_int_eq(sim_sched_step(log.s), 0);
    sim_sched_destroy(log.s);
}
END_TEST

/* Cancelling most of a large heap (compaction) keeps order and pending exact. */
START_TEST(mass_cancel_compacts_and_keeps_order)
{
    static struct run_log log;
    static struct tagged t[3000];
    static sim_event_id id[3000];
    int i, kept = 0;

    log.n = 0;
    log.s = sim_sched_create(0);
    for (i = 0; i < 3000; i++) {
        t[i].log = &log;
        t[i].tag = i;
        id[i] = sim_sched_at(log.s, 3000 - i / 3, log_event, &t[i]);
    }
    for (i = 0; i < 3000; i++)
        if (i % 10 != 0)
            ck_assert_int_eq(sim_sched_cancel(log.s, id[i]), 1);
        else
            kept++;
    ck_assert_uint_eq(sim_sched_pending(log.s), (size_t) kept);
    /* Cancelling again after compaction still finds nothing. */
    ck_assert_int_eq(sim_sched_cancel(log.s, id[1]), 0);
    sim_sched_run(log.s, -1, 0);
    ck_assert_int_eq(log.n, kept);
    for (i = 0; i < log.n; i++)
        ck_assert_int_eq(log.tag[i] % 10, 0);
    for (i = 1; i < log.n; i++)
        ck_assert_int_ge(log.at[i], log.at[i - 1]);
    sim_sched_destroy(log.s);
}
END_TEST

/* A slot freed by an event that ran is reused; the old id must not reach
 * the new event. */
START_TEST(stale_id_does_not_cancel_a_reused_slot)
{
    struct run_log log = { 0 };
    struct tagged a = { &log, 1 }, b = { &log, 2 };
    sim_event_id ia, ib;

    log.s = sim_sched_create(0);
    ia = sim_sched_at(log.s, 10, log_event, &a);
    ck_assert_int_eq(sim_sched_step(log.s), 1);
    ib = sim_sched_at(log.s, 20, log_event, &b);
    ck_assert_uint_ne(ia, ib);
    ck_assert_int_eq(sim_sched_cancel(log.s, ia), 0);
    ck_assert_uint_eq(sim_sched_pending(log.s), 1);
    sim_sched_run(log.s, -1, 0);
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(log.tag[1], 2);
    /* ...and a cancelled event's id stays dead once its slot is reused. */
    ib = sim_sched_at(log.s, 30, log_event, &b);
    ck_assert_int_eq(sim_sched_cancel(log.s, ib), 1);
    ia = sim_sched_at(log.s, 40, log_event, &a);
    ck_assert_int_eq(sim_sched_cancel(log.s, ib), 0);
    sim_sched_run(log.s, -1, 0);
    ck_assert_int_eq(log.n, 3);
    ck_assert_int_eq(log.tag[2], 1);
    sim_sched_destroy(log.s);
}
END_TEST

/* The heap against a plain reference: a long random mix of schedules,
 * cancels and runs (growth, shrinking to empty, compaction) must run the
 * same events in the same order as "the smallest (time, order) first". */
#define REF_MAX 20000
struct ref_event {
    sim_usec when;
    long order;         /* scheduling order */
    sim_event_id id;
    int live;
};
static struct ref_event ref[REF_MAX];
static long ran_order[REF_MAX];
static int nran;

static void ref_event_run(void *arg)
{
    ran_order[nran++] = ((struct ref_event *) arg)->order;
}

/* lcg - a fixed generator: the test is the same on every machine */
static uint64_t lcg(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 33;
}

/* near_ahead - how far ahead a random event falls: a few microseconds */
static sim_usec near_ahead(uint64_t *x, sim_usec now)
{
    (void) now;
    return (sim_usec) (lcg(x) % 50);
}

/* mixed_ahead - near, far (the ring's range: 65 ms to 1 s, on whole
 * milliseconds so that far and near events often fall at the same
 * instant), or past the ring's 67 s horizon */
static sim_usec mixed_ahead(uint64_t *x, sim_usec now)
{
    unsigned kind = (unsigned) (lcg(x) % 10);
    sim_usec ms = now - (now % 1000 + 1000) % 1000;     /* the whole ms at or before now */

    if (kind < 5)       /* the next few whole milliseconds */
        return ms + 1000 * (sim_usec) (1 + lcg(x) % 4) - now;
    if (kind < 9)       /* 70 ms to 1 s ahead */
        return ms + 70000 + 1000 * (sim_usec) (lcg(x) % 1000) - now;
    return ms + 67000000 + 1000 * (sim_usec) (lcg(x) % 5000) - now;
}

#define TEST_LANES 6

/* random_operations - schedules, cancels and steps at random against the
 * reference, events falling `ahead' of the clock; with lanes, most events
 * go to one of TEST_LANES lanes, four in five of them due at or a little
 * after that lane's latest (they join it), the others at random (due
 * before it: they wait alone) */
static void random_operations(sim_usec (*ahead)(uint64_t *, sim_usec), int lanes)
{
    struct sim_sched *s = sim_sched_create(-5000);     /* negative times too */
    uint64_t x = 12345;
    long nref = 0;
    int expect_n = 0;
    static long expect[REF_MAX];
    sim_lane lane[TEST_LANES + 1] = { 0 };
    sim_usec latest[TEST_LANES + 1];

    for (int i = 1; lanes && i <= TEST_LANES; i++) {
        lane[i] = sim_sched_lane(s);
        latest[i] = sim_sched_now(s);
    }

    nran = 0;
    for (int step = 0; step < 60000 && nref < REF_MAX; step++) {
        unsigned op = (unsigned) (lcg(&x) % 100);
        /* Phases, a few times over: mostly growing; mostly draining; mostly
         * cancelling (the dead outnumber the living: compaction). */
        static const unsigned sched_below[3] = { 60, 25, 40 }, cancel_below[3] = { 75, 40, 95 };
        int phase = (step / 4000) % 3;
        if (op < sched_below[phase]) {
            struct ref_event *e = &ref[nref];
            /* Few distinct times, so ties (broken by order) are common. */
            unsigned l = lanes ? (unsigned) (lcg(&x) % (TEST_LANES + 1)) : 0;

            e->when = sim_sched_now(s) + ahead(&x, sim_sched_now(s));
            if (l != 0 && lcg(&x) % 5 != 0 && latest[l] >= sim_sched_now(s))
                e->when = latest[l] + (sim_usec) (lcg(&x) % 3);
            if (l != 0 && e->when > latest[l])
                latest[l] = e->when;
            e->order = nref;
            e->live = 1;
            e->id = sim_sched_at_lane(s, lane[l], e->when, ref_event_run, e, SIM_EV_SEGMENT);
            nref++;
        } else if (op < cancel_below[phase] && nref > 0) {
            /* Mostly recent events: those are the ones still pending. */
            uint64_t back = lcg(&x) % (uint64_t) (nref < 300 ? nref : 300);
            struct ref_event *e = &ref[nref - 1 - (long) back];
            int was = e->live;
            ck_assert_int_eq(sim_sched_cancel(s, e->id), was);
            e->live = 0;
        } else {
            /* The reference: the smallest live (when, order). */
            long best = -1;
            for (long i = 0; i < nref; i++)
                if (ref[i].live && (best < 0 || ref[i].when < ref[best].when))
                    best = i;       /* equal times: the earlier order, found first */
            ck_assert_int_eq(sim_sched_step(s), best >= 0);
            if (best >= 0) {
                ref[best].live = 0;
                expect[expect_n++] = best;
                ck_assert_int_eq(sim_sched_now(s), ref[best].when);
            }
        }
        size_t live = 0;
        if (step % 997 == 0) {
            for (long i = 0; i < nref; i++)
                live += (size_t) ref[i].live;
            ck_assert_uint_eq(sim_sched_pending(s), live);
        }
    }
    ck_assert_int_eq(nran, expect_n);
    for (int i = 0; i < nran; i++)
        ck_assert_int_eq(ran_order[i], expect[i]);
    ck_assert_int_gt(nran, 1000);
    sim_sched_destroy(s);
}

START_TEST(random_operations_match_a_reference)
{
    random_operations(near_ahead, 0);
}
END_TEST

START_TEST(lanes_match_a_reference)
{
    random_operations(near_ahead, 1);
}
END_TEST

START_TEST(lanes_and_far_events_match_a_reference)
{
    random_operations(mixed_ahead, 1);
}
END_TEST

/* lane_world - a scheduler at 0 with one lane, and n events tagged 0 .. n-1 */
static sim_lane lane_world(struct run_log *log, struct tagged *t, int n)
{
    log->s = sim_sched_create(0);
    for (int i = 0; i < n; i++) {
        t[i].log = log;
        t[i].tag = i;
    }
    return sim_sched_lane(log->s);
}

/* Lanes change no order: ties between a lane's events and others run in
 * scheduling order; an event due before its lane's last runs in time. */
START_TEST(lane_ties_with_the_heap)
{
    struct run_log log = { 0 };
    struct tagged t[7];
    sim_lane l;
    static const int want[] = { 5, 0, 1, 2, 6, 3, 4 };

    l = lane_world(&log, t, 7);
    sim_sched_at_lane(log.s, l, 10, log_event, &t[0], SIM_EV_SEGMENT);
    sim_sched_at(log.s, 10, log_event, &t[1]);
    sim_sched_at_lane(log.s, l, 10, log_event, &t[2], SIM_EV_SEGMENT);
    sim_sched_at(log.s, 20, log_event, &t[3]);
    sim_sched_at_lane(log.s, l, 20, log_event, &t[4], SIM_EV_SEGMENT);
    sim_sched_at_lane(log.s, l, 5, log_event, &t[5], SIM_EV_SEGMENT);    /* before the last */
    sim_sched_at_lane(log.s, l, 15, log_event, &t[6], SIM_EV_SEGMENT);   /* so is this */
    ck_assert_uint_eq(sim_sched_pending(log.s), 7);
    ck_assert_int_eq(sim_sched_run(log.s, -1, 0), SIM_RUN_QUIET);
    ran_in_order(&log, want, 7);
    ck_assert_int_eq(log.at[0], 5);
    ck_assert_int_eq(log.at[6], 20);
    sim_sched_destroy(log.s);
}
END_TEST

/* Cancelling a lane's first puts the next one in its place; cancelling
 * one behind it (the middle, the last) unlinks it, and the lane goes on
 * from what is left. */
START_TEST(lane_cancel_first_and_behind)
{
    struct run_log log = { 0 };
    struct tagged t[6];
    sim_event_id id[6];
    sim_lane l;
    static const int want[] = { 1, 4, 5 };

    l = lane_world(&log, t, 6);
    for (int i = 0; i < 4; i++)
        id[i] = sim_sched_at_lane(log.s, l, 10 * (i + 1), log_event, &t[i], SIM_EV_SEGMENT);
    ck_assert_int_eq(sim_sched_cancel(log.s, id[0]), 1);       /* the first */
    ck_assert_int_eq(sim_sched_cancel(log.s, id[2]), 1);       /* the middle */
    ck_assert_int_eq(sim_sched_cancel(log.s, id[3]), 1);       /* the last */
    ck_assert_int_eq(sim_sched_cancel(log.s, id[3]), 0);
    ck_assert_uint_eq(sim_sched_pending(log.s), 1);
    /* 25 is after what is left of the lane (20): it joins behind it. */
    id[4] = sim_sched_at_lane(log.s, l, 25, log_event, &t[4], SIM_EV_SEGMENT);
    ck_assert_int_eq(sim_sched_step(log.s), 1);
    ck_assert_int_eq(sim_sched_now(log.s), 20);
    /* The lane's first ran; one behind it is now first, then the lane empties. */
    id[5] = sim_sched_at_lane(log.s, l, 30, log_event, &t[5], SIM_EV_SEGMENT);
    ck_assert_int_eq(sim_sched_run(log.s, -1, 0), SIM_RUN_QUIET);
    ran_in_order(&log, want, 3);
    ck_assert_int_eq(log.at[1], 25);
    ck_assert_int_eq(log.at[2], 30);
    ck_assert_int_eq(sim_sched_cancel(log.s, id[4]), 0);
    ck_assert_uint_eq(sim_sched_pending(log.s), 0);
    sim_sched_destroy(log.s);
}
END_TEST

/* A lane's events due far ahead (past the ring's 65 ms) and far events in
 * the ring at the same instants: still (time, scheduling order). */
START_TEST(lane_beside_the_ring)
{
    struct run_log log = { 0 };
    struct tagged t[6];
    sim_lane l;
    static const int want[] = { 0, 1, 2, 3, 4, 5 };

    l = lane_world(&log, t, 6);
    sim_sched_at_lane(log.s, l, 100000, log_event, &t[0], SIM_EV_SEGMENT);
    sim_sched_at(log.s, 100000, log_event, &t[1]);                          /* in the ring */
    sim_sched_at_lane(log.s, l, 100000, log_event, &t[2], SIM_EV_SEGMENT);
    sim_sched_at(log.s, 200000, log_event, &t[3]);
    sim_sched_at_lane(log.s, l, 200000, log_event, &t[4], SIM_EV_SEGMENT);
    sim_sched_at(log.s, 200000, log_event, &t[5]);
    ck_assert_int_eq(sim_sched_run(log.s, -1, 0), SIM_RUN_QUIET);
    ran_in_order(&log, want, 6);
    sim_sched_destroy(log.s);
}
END_TEST

/* The same with far events, which wait in the ring before the heap: ties
 * between a far event and a near one scheduled later at the same instant,
 * cancels of events still in the ring, buckets emptied by cancels. */
START_TEST(far_events_match_a_reference)
{
    random_operations(mixed_ahead, 0);
}
END_TEST

/* A far event and a deadline before it: the run stops at the deadline, and
 * an event scheduled afterwards at the same instant as the far one runs
 * after it (it was scheduled later). */
START_TEST(far_event_and_deadline)
{
    struct run_log log = { 0 };
    struct tagged a = { &log, 1 }, b = { &log, 2 }, c = { &log, 3 };

    log.s = sim_sched_create(0);
    sim_sched_at(log.s, 5000000, log_event, &a);         /* 5 s: in the ring */
    sim_sched_at(log.s, 90000000, log_event, &c);        /* 90 s: past the horizon */
    ck_assert_int_eq(sim_sched_run(log.s, 4990000, 0), SIM_RUN_DEADLINE);
    ck_assert_int_eq(sim_sched_now(log.s), 4990000);
    ck_assert_int_eq(log.n, 0);
    sim_sched_at(log.s, 5000000, log_event, &b);         /* near now: the heap */
    ck_assert_uint_eq(sim_sched_pending(log.s), 3);
    ck_assert_int_eq(sim_sched_run(log.s, -1, 0), SIM_RUN_QUIET);
    ran_in_order(&log, (const int[]) { 1, 2, 3 }, 3);
    ck_assert_int_eq(log.at[1], 5000000);
    ck_assert_int_eq(log.at[2], 90000000);
    sim_sched_destroy(log.s);
}
END_TEST

/* chain - an event that schedules its successor at the same instant */
struct chain {
    struct sim_sched *s;
    int remaining;
    int ran;
};

static void chain_event(void *arg)
{
    struct chain *c = arg;

    c->ran++;
    if (--c->remaining > 0)
        sim_sched_after(c->s, 0, chain_event, c);
}

START_TEST(event_limit_stops)
{
    struct chain c;
    enum sim_run_stop why;

    c.s = sim_sched_create(0);
    c.remaining = 100;
    c.ran = 0;
    sim_sched_at(c.s, 0, chain_event, &c);
    why = sim_sched_run(c.s, -1, 10);
    ck_assert_int_eq(why, SIM_RUN_EVENT_LIMIT);
    ck_assert_int_eq(c.ran, 10);
    ck_assert_uint_eq(sim_sched_pending(c.s), 1);
    why = sim_sched_run(c.s, -1, 0);
    ck_assert_int_eq(why, SIM_RUN_QUIET);
    ck_assert_int_eq(c.ran, 100);
    sim_sched_destroy(c.s);
}
END_TEST

START_TEST(deadline_stops_and_sets_clock)
{
    struct run_log log = { 0 };
    struct tagged a = { &log, 1 }, b = { &log, 2 };

    log.s = sim_sched_create(100);
    sim_sched_at(log.s, 200, log_event, &a);
    sim_sched_at(log.s, 900, log_event, &b);
    ck_assert_int_eq(sim_sched_run(log.s, 500, 0), SIM_RUN_DEADLINE);
    ck_assert_int_eq(log.n, 1);
    ck_assert_int_eq(sim_sched_now(log.s), 500);
    /* An event exactly at the deadline still runs. */
    ck_assert_int_eq(sim_sched_run(log.s, 900, 0), SIM_RUN_QUIET);
    ck_assert_int_eq(log.n, 2);
    ck_assert_int_eq(sim_sched_now(log.s), 900);
    /* Relative scheduling starts from the moved clock. */
    sim_sched_after(log.s, 50, log_event, &a);
    sim_sched_run(log.s, -1, 0);
    ck_assert_int_eq(log.at[2], 950);
    sim_sched_destroy(log.s);
}
END_TEST

/* A record of the clock moves an advance observer was told about. */
struct advance_log {
    int n;
    sim_usec at[16];
};

/* note_advance - sim_sched_on_advance() observer */
static void note_advance(void *arg, sim_usec now)
{
    struct advance_log *a = arg;

    ck_assert_int_lt(a->n, 16);
    a->at[a->n++] = now;
}

START_TEST(advance_observer_sees_each_new_time_once)
{
    struct run_log log = { 0 };
    struct advance_log adv = { 0 };
    struct tagged a = { &log, 1 };

    log.s = sim_sched_create(100);
    sim_sched_on_advance(log.s, note_advance, &adv);
    /* At the start time: the clock does not move, nobody is told. */
    sim_sched_at(log.s, 100, log_event, &a);
    sim_sched_at(log.s, 300, log_event, &a);
    sim_sched_at(log.s, 300, log_event, &a);
    sim_sched_at(log.s, 700, log_event, &a);
    ck_assert_int_eq(sim_sched_run(log.s, 500, 0), SIM_RUN_DEADLINE);
    ck_assert_int_eq(log.n, 3);
    /* 300 once for two events, then the jump to the deadline. */
    ck_assert_int_eq(adv.n, 2);
    ck_assert_int_eq(adv.at[0], 300);
    ck_assert_int_eq(adv.at[1], 500);
    /* Removed: the last event runs unobserved. */
    sim_sched_on_advance(log.s, NULL, NULL);
    ck_assert_int_eq(sim_sched_run(log.s, -1, 0), SIM_RUN_QUIET);
    ck_assert_int_eq(sim_sched_now(log.s), 700);
    ck_assert_int_eq(adv.n, 2);
    sim_sched_destroy(log.s);
}
END_TEST

/* canceller - an event that cancels another one at the same instant */
struct canceller {
    struct sim_sched *s;
    sim_event_id victim;
    int result;
};

static void cancel_event(void *arg)
{
    struct canceller *c = arg;

    c->result = sim_sched_cancel(c->s, c->victim);
}

START_TEST(cancel_from_inside_an_event)
{
    struct run_log log = { 0 };
    struct tagged v = { &log, 7 };
    struct canceller c;

    log.s = sim_sched_create(0);
    c.s = log.s;
    sim_sched_at(log.s, 5, cancel_event, &c);
    c.victim = sim_sched_at(log.s, 5, log_event, &v);
    sim_sched_run(log.s, -1, 0);
    ck_assert_int_eq(c.result, 1);
    ck_assert_int_eq(log.n, 0);
    sim_sched_destroy(log.s);
}
END_TEST

START_TEST(destroy_with_pending_events)
{
    struct run_log log = { 0 };
    struct tagged a = { &log, 1 };

    log.s = sim_sched_create(0);
    sim_sched_at(log.s, 10, log_event, &a);
    sim_sched_at(log.s, 20, log_event, &a);
    sim_sched_destroy(log.s);
    ck_assert_int_eq(log.n, 0);
}
END_TEST

START_TEST(scheduling_in_the_past_aborts)
{
    struct sim_sched *s = sim_sched_create(1000);

    sim_sched_at(s, 999, chain_event, NULL);
}
END_TEST

static Suite *sched_suite(void)
{
    Suite *su = suite_create("sched");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, same_time_runs_in_scheduling_order);
    tcase_add_test(tc, clock_never_goes_backwards);
    tcase_add_test(tc, cancel_skips_event);
    tcase_add_test(tc, mass_cancel_compacts_and_keeps_order);
    tcase_add_test(tc, stale_id_does_not_cancel_a_reused_slot);
    tcase_add_test(tc, random_operations_match_a_reference);
    tcase_add_test(tc, far_events_match_a_reference);
    tcase_add_test(tc, far_event_and_deadline);
    tcase_add_test(tc, lanes_match_a_reference);
    tcase_add_test(tc, lanes_and_far_events_match_a_reference);
    tcase_add_test(tc, lane_ties_with_the_heap);
    tcase_add_test(tc, lane_cancel_first_and_behind);
    tcase_add_test(tc, lane_beside_the_ring);
    tcase_add_test(tc, event_limit_stops);
    tcase_add_test(tc, deadline_stops_and_sets_clock);
    tcase_add_test(tc, advance_observer_sees_each_new_time_once);
    tcase_add_test(tc, cancel_from_inside_an_event);
    tcase_add_test(tc, destroy_with_pending_events);
    /* An abort can only be observed from a forked child. */
    if (getenv("CK_FORK") == NULL || strcmp(getenv("CK_FORK"), "no") != 0)
        tcase_add_test_raise_signal(tc, scheduling_in_the_past_aborts, SIGABRT);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(sched_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
