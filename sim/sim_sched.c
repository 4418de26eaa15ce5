/*
 * sched - discrete-event scheduler and virtual clock
 *
 * SYNOPSIS
 *   See sim_sched.h.
 *
 * DESCRIPTION
 *   A binary min-heap of events keyed by (when, seq).  seq is the event id:
 *   a counter that only grows, so two events at the same instant run in
 *   the order they were scheduled and the heap's shape never shows through.
 *
 *   Cancellation is lazy: an open-addressing set holds the seq of every
 *   pending event; sim_sched_cancel() removes the id from it, and a heap
 *   entry whose id is no longer in the set is dropped when it reaches the
 *   top.  Heap moves never touch the set (an earlier version kept each
 *   entry's heap position there, updated on every move: a quarter of a
 *   large run's time).  The set is only ever probed, never iterated, so its
 *   layout cannot leak into a run.  Growth is bounded twice: when cancelled entries
 *   outnumber live ones the heap is compacted, and more than
 *   SIM_SCHED_MAX_EVENTS pending events is a runaway simulation and aborts.
 *
 * DIAGNOSTICS
 *   Scheduling in the past, a NULL function or exceeding the bound prints
 *   "sim_sched_<fn>: ..." and aborts: these are bugs, not inputs.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_sched.h"

/* A run with this many events pending at once has lost control. */
#define SIM_SCHED_MAX_EVENTS (1u << 24)
/* Compact only past this many cancelled entries: small heaps are cheap. */
#define SIM_SCHED_COMPACT_MIN 64

struct sim_event {
    sim_usec when;
    sim_event_id seq;
    sim_event_fn fn;
    void *arg;
};

/* Index slot: seq 0 marks an empty slot (ids are never 0). */
struct sim_index_slot {
    sim_event_id seq;       /* 0 = empty */
};

struct sim_sched {
    sim_usec now;
    sim_event_id next_seq;
    uint64_t events_run;
    struct sim_event *heap;
    size_t heap_len;            /* entries, cancelled ones included */
    size_t heap_cap;
    size_t cancelled;           /* cancelled entries still in the heap */
    struct sim_index_slot *index;
    size_t index_cap;           /* a power of two, > 2 * pending */
    size_t index_len;           /* pending (not cancelled) events */
    sim_advance_fn on_advance;  /* told when now moves forward; NULL = nobody */
    void *advance_arg;
};

/* sched_die - report a broken contract and stop loudly */
static void sched_die(const char *fn, const char *what)
{
    fprintf(stderr, "%s: %s\n", fn, what);
    abort();
}

/* sched_xrealloc - realloc that treats exhaustion as fatal */
static void *sched_xrealloc(void *p, size_t n, size_t size)
{
    void *q;

    if (n != 0 && size > SIZE_MAX / n)
        sched_die("sim_sched", "allocation overflow");
    q = realloc(p, n * size);
    if (q == NULL && n * size != 0)
        sched_die("sim_sched", "out of memory");
    return q;
}

/* index_hash - spread sequential ids over the table (Fibonacci hashing) */
static size_t index_hash(const struct sim_sched *s, sim_event_id seq)
{
    return (size_t) ((seq * 0x9E3779B97F4A7C15ull) >> 17) & (s->index_cap - 1);
}

/* index_find - slot holding seq, or the empty slot where it would go */
static size_t index_find(const struct sim_sched *s, sim_event_id seq)
{
    size_t i = index_hash(s, seq);
    size_t probes;

    /* The table is never more than half full, so an empty slot exists. */
    for (probes = 0; probes < s->index_cap; probes++) {
        if (s->index[i].seq == seq || s->index[i].seq == 0)
            return i;
        i = (i + 1) & (s->index_cap - 1);
    }
    sched_die("index_find", "index full");
    return 0;
}

/* index_has - is seq pending? */
static int index_has(const struct sim_sched *s, sim_event_id seq)
{
    return s->index[index_find(s, seq)].seq == seq;
}

/* index_insert_raw - add seq without resizing */
static void index_insert_raw(struct sim_sched *s, sim_event_id seq)
{
    size_t i = index_find(s, seq);

    assert(s->index[i].seq == 0);
    s->index[i].seq = seq;
}

/* index_grow - double the table and re-insert every pending id */
static void index_grow(struct sim_sched *s)
{
    struct sim_index_slot *old = s->index;
    size_t oldcap = s->index_cap, i;

    s->index_cap *= 2;
    s->index = calloc(s->index_cap, sizeof *s->index);
    if (s->index == NULL)
        sched_die("index_grow", "out of memory");
    for (i = 0; i < oldcap; i++)
        if (old[i].seq != 0)
            index_insert_raw(s, old[i].seq);
    free(old);
}

/* index_insert - remember a new pending event */
static void index_insert(struct sim_sched *s, sim_event_id seq)
{
    if (2 * (s->index_len + 1) > s->index_cap)
        index_grow(s);
    index_insert_raw(s, seq);
    s->index_len++;
}

/* index_remove - forget seq (backward-shift deletion keeps probes short) */
static void index_remove(struct sim_sched *s, sim_event_id seq)
{
    size_t i = index_find(s, seq);
    size_t j, k, probes;

    assert(s->index[i].seq == seq);
    s->index[i].seq = 0;
    s->index_len--;
    j = i;
    for (probes = 0; probes < s->index_cap; probes++) {
        j = (j + 1) & (s->index_cap - 1);
        if (s->index[j].seq == 0)
            return;
        k = index_hash(s, s->index[j].seq);
        /* Move j into the hole at i unless its home k lies in (i, j]. */
        if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        s->index[i] = s->index[j];
        s->index[j].seq = 0;
        i = j;
    }
    sched_die("index_remove", "probe bound exceeded");
}

/* event_before - the heap order: time first, then scheduling order */
static int event_before(const struct sim_event *a, const struct sim_event *b)
{
    if (a->when != b->when)
        return a->when < b->when;
    return a->seq < b->seq;
}

/* heap_place - store ev at pos */
static void heap_place(struct sim_sched *s, size_t pos, const struct sim_event *ev)
{
    s->heap[pos] = *ev;
}

/* heap_sift_up - restore the heap property above pos */
static void heap_sift_up(struct sim_sched *s, size_t pos)
{
    struct sim_event ev = s->heap[pos];

    while (pos > 0) {
        size_t parent = (pos - 1) / 2;

        if (!event_before(&ev, &s->heap[parent]))
            break;
        heap_place(s, pos, &s->heap[parent]);
        pos = parent;
    }
    heap_place(s, pos, &ev);
}

/* heap_sift_down - restore the heap property below pos */
static void heap_sift_down(struct sim_sched *s, size_t pos)
{
    struct sim_event ev = s->heap[pos];

    for (;;) {
        size_t child = 2 * pos + 1;

        if (child >= s->heap_len)
            break;
        if (child + 1 < s->heap_len && event_before(&s->heap[child + 1], &s->heap[child]))
            child++;
        if (!event_before(&s->heap[child], &ev))
            break;
        heap_place(s, pos, &s->heap[child]);
        pos = child;
    }
    heap_place(s, pos, &ev);
}

/* heap_pop_top - remove the top entry (caller has copied it) */
static void heap_pop_top(struct sim_sched *s)
{
    assert(s->heap_len > 0);
    s->heap_len--;
    if (s->heap_len > 0) {
        s->heap[0] = s->heap[s->heap_len];
        heap_sift_down(s, 0);
    }
}

/* heap_compact - drop cancelled entries and rebuild, bounding memory */
static void heap_compact(struct sim_sched *s)
{
    size_t i, kept = 0;

    for (i = 0; i < s->heap_len; i++)
        if (index_has(s, s->heap[i].seq))
            s->heap[kept++] = s->heap[i];
    s->heap_len = kept;
    s->cancelled = 0;
    /* Floyd's bottom-up build; the result depends only on (when, seq). */
    for (i = kept / 2; i-- > 0;)
        heap_sift_down(s, i);
    assert(s->heap_len == s->index_len);
}

/* heap_drop_cancelled_top - discard cancelled entries at the top */
static void heap_drop_cancelled_top(struct sim_sched *s)
{
    while (s->heap_len > 0 && !index_has(s, s->heap[0].seq)) {
        assert(s->cancelled > 0);
        s->cancelled--;
        heap_pop_top(s);
    }
}

/* clock_set - move the clock to when (>= now) and tell the observer if it moved */
static void clock_set(struct sim_sched *s, sim_usec when)
{
    assert(when >= s->now);
    if (when == s->now)
        return;
    s->now = when;
    if (s->on_advance != NULL)
        s->on_advance(s->advance_arg, when);
}

/* sim_sched_create - a scheduler whose clock starts at start */
struct sim_sched *sim_sched_create(sim_usec start)
{
    struct sim_sched *s = calloc(1, sizeof *s);

    if (s == NULL)
        sched_die("sim_sched_create", "out of memory");
    s->now = start;
    s->next_seq = 1;
    s->heap_cap = 64;
    s->heap = sched_xrealloc(NULL, s->heap_cap, sizeof *s->heap);
    s->index_cap = 128;
    s->index = calloc(s->index_cap, sizeof *s->index);
    if (s->index == NULL)
        sched_die("sim_sched_create", "out of memory");
    return s;
}

/* sim_sched_destroy - free the scheduler; pending events are dropped */
void sim_sched_destroy(struct sim_sched *s)
{
    if (s == NULL)
        return;
    free(s->heap);
    free(s->index);
    free(s);
}

/* sim_sched_now - the virtual clock */
sim_usec sim_sched_now(const struct sim_sched *s)
{
    return s->now;
}

/* sim_sched_at - run fn(arg) at absolute time when (>= now) */
sim_event_id sim_sched_at(struct sim_sched *s, sim_usec when, sim_event_fn fn, void *arg)
{
    struct sim_event ev;

    if (when < s->now)
        sched_die("sim_sched_at", "event scheduled in the past");
    if (fn == NULL)
        sched_die("sim_sched_at", "NULL event function");
    if (s->heap_len >= SIM_SCHED_MAX_EVENTS) {
        if (s->cancelled > 0)
            heap_compact(s);
        if (s->heap_len >= SIM_SCHED_MAX_EVENTS)
            sched_die("sim_sched_at", "too many pending events");
    }
    if (s->heap_len == s->heap_cap) {
        s->heap_cap *= 2;
        s->heap = sched_xrealloc(s->heap, s->heap_cap, sizeof *s->heap);
    }
    ev.when = when;
    ev.seq = s->next_seq++;
    ev.fn = fn;
    ev.arg = arg;
    s->heap[s->heap_len] = ev;
    index_insert(s, ev.seq);
    s->heap_len++;
    heap_sift_up(s, s->heap_len - 1);
    assert(s->heap_len == s->index_len + s->cancelled);
    return ev.seq;
}

/* sim_sched_after - run fn(arg) delay microseconds from now */
sim_event_id sim_sched_after(struct sim_sched *s, sim_usec delay, sim_event_fn fn, void *arg)
{
    if (delay < 0)
        sched_die("sim_sched_after", "negative delay");
    return sim_sched_at(s, s->now + delay, fn, arg);
}

/* sim_sched_cancel - forget a pending event; 1 if it was pending, else 0 */
int sim_sched_cancel(struct sim_sched *s, sim_event_id id)
{
    if (id == 0 || id >= s->next_seq)
        return 0;
    if (!index_has(s, id))
        return 0;           /* already ran or already cancelled */
    /* The heap entry stays until it reaches the top or a compaction. */
    s->cancelled++;
    index_remove(s, id);
    /* Lazy removal, but never let the dead outnumber the living for long. */
    if (s->cancelled > SIM_SCHED_COMPACT_MIN && s->cancelled > s->index_len)
        heap_compact(s);
    assert(s->heap_len == s->index_len + s->cancelled);
    return 1;
}

/* sim_sched_step - run the next pending event; 0 if there was none */
int sim_sched_step(struct sim_sched *s)
{
    struct sim_event ev;

    heap_drop_cancelled_top(s);
    if (s->heap_len == 0)
        return 0;
    ev = s->heap[0];
    /* The heap order guarantees it; a violation would be a heap bug. */
    assert(ev.when >= s->now);
    index_remove(s, ev.seq);
    heap_pop_top(s);
    clock_set(s, ev.when);
    s->events_run++;
    ev.fn(ev.arg);
    return 1;
}

/* sim_sched_run - run until quiet, past the deadline or max_events ran */
enum sim_run_stop sim_sched_run(struct sim_sched *s, sim_usec deadline, uint64_t max_events)
{
    uint64_t ran = 0;

    /* Each iteration runs one event or returns; max_events bounds it when
     * set, and an unbounded run ends when the simulation falls quiet. */
    for (;;) {
        heap_drop_cancelled_top(s);
        if (s->heap_len == 0)
            return SIM_RUN_QUIET;
        if (deadline >= 0 && s->heap[0].when > deadline) {
            if (deadline > s->now)
                clock_set(s, deadline);
            return SIM_RUN_DEADLINE;
        }
        if (max_events != 0 && ran >= max_events)
            return SIM_RUN_EVENT_LIMIT;
        sim_sched_step(s);
        ran++;
    }
}

/* sim_sched_pending - events that will still run */
size_t sim_sched_pending(const struct sim_sched *s)
{
    return s->index_len;
}

/* sim_sched_events_run - events run since creation */
uint64_t sim_sched_events_run(const struct sim_sched *s)
{
    return s->events_run;
}

/* sim_sched_on_advance - call fn(arg, now) whenever the clock moves forward */
void sim_sched_on_advance(struct sim_sched *s, sim_advance_fn fn, void *arg)
{
    s->on_advance = fn;
    s->advance_arg = arg;
}
