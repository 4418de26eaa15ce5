/*
 * sim_sched - discrete-event scheduler and virtual clock
 *
 * SYNOPSIS
 *   See sim_sched.h.
 *
 * DESCRIPTION
 *   A 4-ary min-heap of events ordered by (when, seq).  seq is a counter
 *   that only grows, so two events at the same instant run in the order
 *   they were scheduled and the heap's shape never shows through.
 *
 *   An event's function and argument live in a slot of a table; the heap
 *   holds 16-byte entries, the time and "seq << SLOT_BITS | slot", which
 *   compare as one 128-bit number.  Four entries fill a cache line, so a
 *   node's children are one line and choosing the smallest is branch-free:
 *   the heap was the largest single cost of a large run, mostly in
 *   mispredicted branches.  Past the last entry four sentinels with the
 *   largest key stand in for missing children.
 *
 *   The event id is that low word: the slot says where the event is and
 *   the seq says whether the slot still holds it.  Cancelling frees the
 *   slot at once; the heap entry stays and is skipped when it reaches the
 *   top (its slot no longer holds its seq).  When cancelled entries
 *   outnumber live ones the heap is compacted.  Free slots are reused last
 *   in, first out: which slot an event gets depends only on the order of
 *   calls, and slots never order anything.  More than
 *   SIM_SCHED_MAX_EVENTS pending events is a runaway simulation and aborts.
 *
 *   Far events wait outside the heap.  An event due at least RING_MIN
 *   ahead and within the ring's horizon goes into a bucket of a ring (one
 *   bucket per RING_WIDTH microseconds, a list of slots and a bit in a
 *   bitmap); the bucket's events enter the heap, with the keys they were
 *   given when scheduled, before anything at or after the bucket's start
 *   runs.  Most far events are timers that are cancelled before they are
 *   due (a TCP's retransmission timer, re-armed or cleared at every ACK):
 *   cancelling one in the ring unlinks it, so it never costs a heap
 *   insertion or a sift when it would have surfaced, and the heap holds
 *   only what is near.  The order of events is still (when, seq) alone:
 *   which events sit in the ring never shows through.
 *
 *   Lanes hold near events that come in time order.  Most near events are
 *   segments arriving a link's fixed latency after they left, so the
 *   segments of one link and direction are scheduled with times that never
 *   decrease; a lane keeps them as a list in that order and only its first
 *   is in the heap.  An event given to a lane joins it only if it is due
 *   no earlier than the lane's last; otherwise (jitter, a link that
 *   changed, a transmission time) it waits in the heap alone.  A
 *   lane's events were scheduled in increasing seq, so the list is in
 *   (when, seq) order and its first has the smallest key of the lane: the
 *   heap's top is still the smallest key of all, and every event keeps
 *   the key it was given.  When the first runs, the next takes its place
 *   at the top of the heap (one sift instead of a pop and a push);
 *   cancelling the first puts the next in the heap at once, cancelling
 *   one behind it unlinks it.
 *
 * DIAGNOSTICS
 *   Scheduling in the past, a NULL function or exceeding a bound prints
 *   "sim_sched_<fn>: ..." and aborts: these are bugs, not inputs.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_sched.h"

/* Slots are numbered in the low SLOT_BITS of an id, seq above them. */
#define SLOT_BITS 24
#define SLOT_MASK ((UINT64_C(1) << SLOT_BITS) - 1)
/* A run with this many events pending at once has lost control. */
#define SIM_SCHED_MAX_EVENTS (1u << SLOT_BITS)
/* ids are seq << SLOT_BITS: seq must fit the other 40 bits (10^12 events). */
#define SIM_SCHED_MAX_SEQ (UINT64_C(1) << (64 - SLOT_BITS))
/* Compact only past this many cancelled entries: small heaps are cheap. */
#define SIM_SCHED_COMPACT_MIN 64
/* Children of node i are HEAP_ARITY * i + 1 .. HEAP_ARITY * i + HEAP_ARITY. */
#define HEAP_ARITY 4
/* The ring: buckets of 2^RING_SHIFT us (8.2 ms), RING_BUCKETS of them (a
 * horizon of 67 s); only events due RING_MIN (65 ms) or more ahead: the
 * near ones (segments in flight, a few ms) are rarely cancelled and would
 * only pass through it. */
#define RING_SHIFT 13
#define RING_BUCKETS 8192u
#define RING_MASK (RING_BUCKETS - 1)
#define RING_MIN ((sim_usec) 65536)
#define RING_NIL UINT32_MAX

/* Where a pending event waits. */
enum slot_where { IN_HEAP, IN_RING, IN_LANE /* behind its lane's first */ };

/* (when, id) as one unsigned number: when's sign bit flipped so that
 * signed order becomes unsigned order; the id below it. */
typedef unsigned __int128 sim_key;
#define KEY_MAX (~(sim_key) 0)

struct heap_entry {
    sim_key key;
};

struct sim_slot {
    sim_event_fn fn;
    void *arg;
    uint64_t seq;           /* of the pending event here; 0 = free */
    sim_usec when;          /* its time, while it waits in the ring */
    uint32_t next;          /* free list link when free; bucket or lane list otherwise */
    uint32_t prev;          /* bucket or lane list */
    uint32_t lane;          /* the lane it is in (its first or behind it); 0 = none */
    uint8_t kind;           /* enum sim_ev_kind */
    uint8_t where;          /* enum slot_where */
};

/* A lane: its events in (when, seq) order, the first in the heap. */
struct sched_lane {
    uint32_t head, tail;    /* slots; RING_NIL = empty */
};

struct sim_sched {
    sim_usec now;
    uint64_t next_seq;
    uint64_t events_run;
    struct heap_entry *heap;    /* heap_len entries, then HEAP_ARITY sentinels */
    size_t heap_len;            /* entries, cancelled ones included */
    size_t heap_cap;            /* entries, sentinels excluded */
    size_t cancelled;           /* cancelled entries still in the heap */
    size_t pending;             /* live events */
    struct sim_slot *slots;
    uint32_t nslots, slots_cap;
    uint32_t free_slot;         /* head of the free list; UINT32_MAX = empty */
    uint32_t *ring;             /* RING_BUCKETS bucket lists of slots; RING_NIL = empty */
    uint64_t ring_bits[RING_BUCKETS / 64];  /* bucket i has events */
    uint64_t ring_base;         /* every bucket in the ring is in [base, base + RING_BUCKETS) */
    uint64_t ring_next;         /* no event in the ring is in a bucket before it */
    size_t ring_count;          /* events in the ring */
    struct sched_lane *lanes;   /* [1 .. nlanes]; [0] unused (0 = no lane) */
    uint32_t nlanes, lanes_cap;
    size_t lane_count;          /* events behind the first of their lane */
    sim_advance_fn on_advance;  /* told when now moves forward; NULL = nobody */
    void *advance_arg;
    int stop;                   /* sim_sched_stop() was called */
    struct sim_sched_stats own; /* the figures, unless published elsewhere */
    struct sim_sched_stats *stats;
};

/* Where schedulers created from now on publish (sim_sched_publish_to). */
static struct sim_sched_stats *publish_to;

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

static sim_key key_of(sim_usec when, sim_event_id id)
{
    return ((sim_key) ((uint64_t) when ^ (UINT64_C(1) << 63)) << 64) | id;
}

static sim_usec key_when(sim_key k)
{
    return (sim_usec) ((uint64_t) (k >> 64) ^ (UINT64_C(1) << 63));
}

static sim_event_id key_id(sim_key k)
{
    return (sim_event_id) k;
}

/* id_live - the slot of a pending event with this id, or NULL */
static struct sim_slot *id_live(const struct sim_sched *s, sim_event_id id)
{
    uint64_t slot = id & SLOT_MASK, seq = id >> SLOT_BITS;

    if (seq == 0 || slot >= s->nslots || s->slots[slot].seq != seq)
        return NULL;
    return &s->slots[slot];
}

/* slot_take - a free slot for seq */
static uint32_t slot_take(struct sim_sched *s, uint64_t seq)
{
    uint32_t i;

    if (s->free_slot != UINT32_MAX) {
        i = s->free_slot;
        s->free_slot = s->slots[i].next;
    } else {
        if (s->nslots == s->slots_cap) {
            s->slots_cap *= 2;
            s->slots = sched_xrealloc(s->slots, s->slots_cap, sizeof *s->slots);
        }
        i = s->nslots++;
    }
    s->slots[i].seq = seq;
    return i;
}

/* slot_release - the slot's event ran or was cancelled */
static void slot_release(struct sim_sched *s, struct sim_slot *sl)
{
    sl->seq = 0;
    sl->next = s->free_slot;
    s->free_slot = (uint32_t) (sl - s->slots);
}

/* heap_sift_up - restore the heap property above pos */
static void heap_sift_up(struct sim_sched *s, size_t pos)
{
    struct heap_entry ev = s->heap[pos];

    while (pos > 0) {
        size_t parent = (pos - 1) / HEAP_ARITY;

        if (ev.key >= s->heap[parent].key)
            break;
        s->heap[pos] = s->heap[parent];
        pos = parent;
    }
    s->heap[pos] = ev;
}

/* heap_sift_down - restore the heap property below pos */
static void heap_sift_down(struct sim_sched *s, size_t pos)
{
    struct heap_entry *h = s->heap;
    struct heap_entry ev = h[pos];

    for (;;) {
        size_t c = HEAP_ARITY * pos + 1;

        if (c >= s->heap_len)
            break;
        /* Missing children are sentinels (KEY_MAX): never chosen.  The
         * choice is arithmetic, not branches: which child is smallest is a
         * coin toss the branch predictor loses. */
        size_t b01 = c + (size_t) (h[c + 1].key < h[c].key);
        size_t b23 = c + 2 + (size_t) (h[c + 3].key < h[c + 2].key);
        size_t best = b01 ^ ((b01 ^ b23) & -(size_t) (h[b23].key < h[b01].key));

        if (h[best].key >= ev.key)
            break;
        h[pos] = h[best];
        pos = best;
    }
    h[pos] = ev;
}

/* heap_shrink - a shorter heap: every entry past the end is a sentinel */
static void heap_shrink(struct sim_sched *s, size_t len)
{
    assert(len <= s->heap_len);
    for (size_t i = len; i < s->heap_len; i++)
        s->heap[i].key = KEY_MAX;
    s->heap_len = len;
}

/* heap_resize - room for cap entries and the sentinels after them */
static void heap_resize(struct sim_sched *s, size_t cap)
{
    size_t old = s->heap == NULL ? 0 : s->heap_cap + HEAP_ARITY;

    assert(cap >= s->heap_len);
    s->heap = sched_xrealloc(s->heap, cap + HEAP_ARITY, sizeof *s->heap);
    for (size_t i = old; i < cap + HEAP_ARITY; i++)
        s->heap[i].key = KEY_MAX;
    s->heap_cap = cap;
}

/* heap_pop_top - remove the top entry (caller has copied it) */
static void heap_pop_top(struct sim_sched *s)
{
    size_t last;

    assert(s->heap_len > 0);
    last = s->heap_len - 1;
    s->heap[0] = s->heap[last];
    s->heap[last].key = KEY_MAX;
    s->heap_len = last;
    if (last > 0)
        heap_sift_down(s, 0);
}

/* heap_push - a new entry with key, in its place */
static inline __attribute__((always_inline)) void heap_push(struct sim_sched *s, sim_key key)
{
    if (s->heap_len == s->heap_cap)
        heap_resize(s, s->heap_cap * 2);
    s->heap[s->heap_len].key = key;
    s->heap_len++;
    heap_sift_up(s, s->heap_len - 1);
}

/* heap_compact - drop cancelled entries and rebuild, bounding memory */
static void heap_compact(struct sim_sched *s)
{
    size_t i, kept = 0, len = s->heap_len;

    for (i = 0; i < len; i++)
        if (id_live(s, key_id(s->heap[i].key)))
            s->heap[kept++] = s->heap[i];
    heap_shrink(s, kept);
    s->cancelled = 0;
    /* Floyd's bottom-up build; the result depends only on the keys. */
    for (i = kept / HEAP_ARITY + 1; i-- > 0;)
        if (i < kept)
            heap_sift_down(s, i);
    assert(s->heap_len + s->ring_count + s->lane_count == s->pending);
}

/* heap_drop_cancelled_top - discard cancelled entries at the top */
static void heap_drop_cancelled_top(struct sim_sched *s)
{
    while (s->heap_len > 0 && id_live(s, key_id(s->heap[0].key)) == NULL) {
        assert(s->cancelled > 0);
        s->cancelled--;
        heap_pop_top(s);
    }
}

/* ---- the ring of far events ----------------------------------------------- */

/* ring_bucket - the (absolute) bucket of a time; order-preserving */
static uint64_t ring_bucket(sim_usec when)
{
    return ((uint64_t) when ^ (UINT64_C(1) << 63)) >> RING_SHIFT;
}

/* ring_start - the first time of bucket b */
static sim_usec ring_start(uint64_t b)
{
    return (sim_usec) ((b << RING_SHIFT) ^ (UINT64_C(1) << 63));
}

/* ring_find_next - the first bucket from ring_base that has events */
static uint64_t ring_find_next(const struct sim_sched *s)
{
    uint64_t b = s->ring_base;

    /* One pass over the bitmap from the base's bit, then that word again
     * for the buckets a whole turn ahead that share it. */
    for (unsigned n = 0; n < RING_BUCKETS + 64;) {
        unsigned i = (unsigned) (b & RING_MASK);
        uint64_t w = s->ring_bits[i / 64] >> (i % 64);

        if (w != 0)
            return b + (uint64_t) __builtin_ctzll(w);
        b += 64 - i % 64;
        n += 64 - i % 64;
    }
    sched_die("sim_sched", "ring holds events but no bucket has any");
    return 0;
}

/* ring_put - keep the event in slot i, due at when, in the ring; 0 if it
 * belongs in the heap (near, or past the horizon) */
static int ring_put(struct sim_sched *s, uint32_t i, sim_usec when)
{
    uint64_t b;
    unsigned k;
    struct sim_slot *sl = &s->slots[i];

    if (when - s->now < RING_MIN)
        return 0;
    b = ring_bucket(when);
    if (s->ring_count == 0)
        s->ring_base = s->ring_next = ring_bucket(s->now);
    if (b < s->ring_base || b - s->ring_base >= RING_BUCKETS)
        return 0;
    k = (unsigned) (b & RING_MASK);
    sl->when = when;
    sl->where = IN_RING;
    sl->prev = RING_NIL;
    sl->next = s->ring[k];
    if (sl->next != RING_NIL)
        s->slots[sl->next].prev = i;
    s->ring[k] = i;
    s->ring_bits[k / 64] |= UINT64_C(1) << (k % 64);
    if (s->ring_count == 0 || b < s->ring_next)
        s->ring_next = b;
    s->ring_count++;
    return 1;
}

/* ring_unlink - the event in slot sl leaves its bucket (cancelled) */
static void ring_unlink(struct sim_sched *s, struct sim_slot *sl)
{
    unsigned k = (unsigned) (ring_bucket(sl->when) & RING_MASK);

    if (sl->prev != RING_NIL)
        s->slots[sl->prev].next = sl->next;
    else
        s->ring[k] = sl->next;
    if (sl->next != RING_NIL)
        s->slots[sl->next].prev = sl->prev;
    if (s->ring[k] == RING_NIL)
        s->ring_bits[k / 64] &= ~(UINT64_C(1) << (k % 64));
    sl->where = IN_HEAP;
    s->ring_count--;
}

/* ring_flush - every event of bucket b enters the heap with its own key */
static void ring_flush(struct sim_sched *s, uint64_t b)
{
    unsigned k = (unsigned) (b & RING_MASK);
    uint32_t i = s->ring[k];

    while (i != RING_NIL) {
        struct sim_slot *sl = &s->slots[i];
        uint32_t next = sl->next;

        heap_push(s, key_of(sl->when, sl->seq << SLOT_BITS | i));
        sl->where = IN_HEAP;
        s->ring_count--;
        i = next;
    }
    s->ring[k] = RING_NIL;
    s->ring_bits[k / 64] &= ~(UINT64_C(1) << (k % 64));
    s->ring_base = b + 1;
    if (s->ring_count > 0)
        s->ring_next = ring_find_next(s);
}

/* heap_settle - make the heap's top the next event to run, if there is
 * one: cancelled entries dropped, and every ring bucket that starts no
 * later than the top moved into the heap first */
static void heap_settle(struct sim_sched *s)
{
    for (;;) {
        heap_drop_cancelled_top(s);
        if (s->ring_count == 0)
            return;
        if (s->heap_len > 0 && ring_start(s->ring_next) > key_when(s->heap[0].key))
            return;
        ring_flush(s, s->ring_next);
    }
}

/* ---- lanes of events in time order ----------------------------------------- */

/* lane_join - slot i, due at when, joins the lane behind its last event;
 * 0 if the lane is empty (i will be its first, in the heap) or i is due
 * before its last (i waits alone) */
static int lane_join(struct sim_sched *s, uint32_t lane, uint32_t i, sim_usec when)
{
    struct sched_lane *l = &s->lanes[lane];
    struct sim_slot *sl = &s->slots[i];

    if (l->head == RING_NIL) {
        l->head = l->tail = i;
        sl->lane = lane;
        sl->prev = sl->next = RING_NIL;
        return 0;
    }
    if (when < s->slots[l->tail].when)
        return 0;
    sl->lane = lane;
    sl->where = IN_LANE;
    sl->prev = l->tail;
    sl->next = RING_NIL;
    s->slots[l->tail].next = i;
    l->tail = i;
    s->lane_count++;
    return 1;
}

/* lane_behind - the first event of sl's lane (sl) leaves it: the one
 * behind it becomes the first; its key, or KEY_MAX if the lane is empty */
static sim_key lane_behind(struct sim_sched *s, struct sim_slot *sl)
{
    struct sched_lane *l = &s->lanes[sl->lane];
    uint32_t i = sl->next;
    struct sim_slot *nx;

    assert(l->head == (uint32_t) (sl - s->slots));
    sl->lane = 0;
    if (i == RING_NIL) {
        l->head = l->tail = RING_NIL;
        return KEY_MAX;
    }
    nx = &s->slots[i];
    l->head = i;
    nx->prev = RING_NIL;
    nx->where = IN_HEAP;
    s->lane_count--;
    return key_of(nx->when, nx->seq << SLOT_BITS | i);
}

/* lane_unlink - an event behind its lane's first leaves the lane (cancelled) */
static void lane_unlink(struct sim_sched *s, struct sim_slot *sl)
{
    struct sched_lane *l = &s->lanes[sl->lane];

    assert(sl->prev != RING_NIL);
    s->slots[sl->prev].next = sl->next;
    if (sl->next != RING_NIL)
        s->slots[sl->next].prev = sl->prev;
    else
        l->tail = sl->prev;
    sl->lane = 0;
    sl->where = IN_HEAP;
    s->lane_count--;
}

/* sim_sched_lane - a new, empty lane */
sim_lane sim_sched_lane(struct sim_sched *s)
{
    if (s->nlanes + 1 >= s->lanes_cap) {
        s->lanes_cap = s->lanes_cap ? 2 * s->lanes_cap : 16;
        s->lanes = sched_xrealloc(s->lanes, s->lanes_cap, sizeof *s->lanes);
    }
    s->nlanes++;
    s->lanes[s->nlanes].head = s->lanes[s->nlanes].tail = RING_NIL;
    return s->nlanes;
}

/* clock_set - move the clock to when (>= now) and tell the observer if it moved */
static void clock_set(struct sim_sched *s, sim_usec when)
{
    assert(when >= s->now);
    if (when == s->now)
        return;
    s->now = when;
    s->stats->now = when;
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
    s->stats = publish_to ? publish_to : &s->own;
    memset((void *)s->stats, 0, sizeof *s->stats);
    s->stats->now = start;
    heap_resize(s, 64);
    s->ring = malloc(RING_BUCKETS * sizeof *s->ring);
    if (s->ring == NULL)
        sched_die("sim_sched_create", "out of memory");
    memset(s->ring, 0xff, RING_BUCKETS * sizeof *s->ring);     /* RING_NIL */
    s->slots_cap = 64;
    s->slots = sched_xrealloc(NULL, s->slots_cap, sizeof *s->slots);
    s->free_slot = UINT32_MAX;
    return s;
}

/* sim_sched_destroy - free the scheduler; pending events are dropped */
void sim_sched_destroy(struct sim_sched *s)
{
    if (s == NULL)
        return;
    free(s->heap);
    free(s->ring);
    free(s->lanes);
    free(s->slots);
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
    return sim_sched_at_kind(s, when, fn, arg, SIM_EV_OTHER);
}

/* sim_sched_at_kind - the same, counted as an event of that kind */
sim_event_id sim_sched_at_kind(struct sim_sched *s, sim_usec when, sim_event_fn fn, void *arg,
                               enum sim_ev_kind kind)
{
    return sim_sched_at_lane(s, 0, when, fn, arg, kind);
}

/* sim_sched_at_lane - the same, in a lane if it is due no earlier than its last */
sim_event_id sim_sched_at_lane(struct sim_sched *s, sim_lane lane, sim_usec when,
                               sim_event_fn fn, void *arg, enum sim_ev_kind kind)
{
    struct heap_entry ev;
    uint64_t seq;
    uint32_t slot;

    if (when < s->now)
        sched_die("sim_sched_at", "event scheduled in the past");
    if (fn == NULL)
        sched_die("sim_sched_at", "NULL event function");
    if (lane > s->nlanes)
        sched_die("sim_sched_at", "no such lane");
    if (s->heap_len + s->ring_count + s->lane_count >= SIM_SCHED_MAX_EVENTS) {
        if (s->cancelled > 0)
            heap_compact(s);
        if (s->heap_len + s->ring_count + s->lane_count >= SIM_SCHED_MAX_EVENTS)
            sched_die("sim_sched_at", "too many pending events");
    }
    if (s->next_seq >= SIM_SCHED_MAX_SEQ)
        sched_die("sim_sched_at", "event sequence numbers exhausted");
    seq = s->next_seq++;
    slot = slot_take(s, seq);
    s->slots[slot].fn = fn;
    s->slots[slot].arg = arg;
    s->slots[slot].kind = (uint8_t)(kind < SIM_EV_KINDS ? kind : SIM_EV_OTHER);
    s->slots[slot].where = IN_HEAP;
    s->slots[slot].lane = 0;
    s->slots[slot].when = when;
    ev.key = key_of(when, seq << SLOT_BITS | slot);
    s->pending++;
    if (lane != 0) {
        if (!lane_join(s, lane, slot, when))
            heap_push(s, ev.key);
    } else if (!ring_put(s, slot, when)) {
        heap_push(s, ev.key);
    }
    assert(s->heap_len + s->ring_count + s->lane_count == s->pending + s->cancelled);
    return key_id(ev.key);
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
    struct sim_slot *sl = id_live(s, id);

    if (sl == NULL)
        return 0;           /* already ran, already cancelled, or never was */
    if (sl->where != IN_HEAP) {     /* no heap entry yet: gone at once */
        if (sl->where == IN_RING)
            ring_unlink(s, sl);
        else
            lane_unlink(s, sl);
        slot_release(s, sl);
        s->pending--;
        return 1;
    }
    /* The first of a lane: the next one takes its place in the heap. */
    if (sl->lane != 0) {
        sim_key next = lane_behind(s, sl);

        if (next != KEY_MAX)
            heap_push(s, next);
    }
    /* The heap entry stays until it reaches the top or a compaction. */
    slot_release(s, sl);
    s->cancelled++;
    s->pending--;
    /* Lazy removal, but never let the dead outnumber the living for long. */
    if (s->cancelled > SIM_SCHED_COMPACT_MIN && s->cancelled > s->pending)
        heap_compact(s);
    assert(s->heap_len + s->ring_count + s->lane_count == s->pending + s->cancelled);
    return 1;
}

/* run_top - run the top entry, which the caller found live */
static void run_top(struct sim_sched *s)
{
    sim_key key = s->heap[0].key;
    sim_usec when = key_when(key);
    struct sim_slot *sl = &s->slots[key_id(key) & SLOT_MASK];
    sim_event_fn fn = sl->fn;
    void *arg = sl->arg;
    enum sim_ev_kind kind = (enum sim_ev_kind)sl->kind;

    /* The heap order guarantees it; a violation would be a heap bug. */
    assert(when >= s->now);
    assert(sl->seq == key_id(key) >> SLOT_BITS);
    if (sl->lane != 0) {
        /* The next of its lane replaces it at the top, if there is one. */
        sim_key next = lane_behind(s, sl);

        if (next != KEY_MAX) {
            s->heap[0].key = next;
            heap_sift_down(s, 0);
        } else {
            heap_pop_top(s);
        }
    } else {
        heap_pop_top(s);
    }
    slot_release(s, sl);
    s->pending--;
    clock_set(s, when);
    s->events_run++;
    s->stats->events = s->events_run;
    s->stats->count[kind]++;
    fn(arg);
}

/* sim_sched_step - run the next pending event; 0 if there was none */
int sim_sched_step(struct sim_sched *s)
{
    heap_settle(s);
    if (s->heap_len == 0)
        return 0;
    run_top(s);
    return 1;
}

/* sim_sched_run - run until quiet, past the deadline or max_events ran */
enum sim_run_stop sim_sched_run(struct sim_sched *s, sim_usec deadline, uint64_t max_events)
{
    uint64_t ran = 0;

    /* Each iteration runs one event or returns; max_events bounds it when
     * set, and an unbounded run ends when the simulation falls quiet. */
    for (;;) {
        heap_settle(s);
        if (s->heap_len == 0)
            return SIM_RUN_QUIET;
        if (deadline >= 0 && key_when(s->heap[0].key) > deadline) {
            if (deadline > s->now)
                clock_set(s, deadline);
            return SIM_RUN_DEADLINE;
        }
        if (max_events != 0 && ran >= max_events)
            return SIM_RUN_EVENT_LIMIT;
        run_top(s);
        ran++;
        if (s->stop) {
            s->stop = 0;
            return SIM_RUN_STOPPED;
        }
    }
}

/* sim_sched_stop - the running sim_sched_run returns after this event */
void sim_sched_stop(struct sim_sched *s)
{
    s->stop = 1;
}

const struct sim_sched_stats *sim_sched_stats(const struct sim_sched *s)
{
    return s->stats;
}

void sim_sched_publish_to(struct sim_sched_stats *st)
{
    publish_to = st;
}

const char *sim_ev_kind_name(enum sim_ev_kind k)
{
    static const char *const names[SIM_EV_KINDS] = {
        "other", "core timer", "network segment", "dns answer", "remote reply or fault",
        "client step", "injection",
    };
    return k < SIM_EV_KINDS ? names[k] : "other";
}

/* sim_sched_busiest - the n busiest kinds, most first (ties: kind order) */
void sim_sched_busiest(const struct sim_sched_stats *st, int n, char *buf, size_t size)
{
    int used[SIM_EV_KINDS] = { 0 };
    size_t off = 0;
    buf[0] = '\0';
    for (int shown = 0; shown < n; shown++) {
        int best = -1;
        for (int k = 0; k < SIM_EV_KINDS; k++)
            if (!used[k] && st->count[k] > 0 && (best < 0 || st->count[k] > st->count[best]))
                best = k;
        if (best < 0)
            break;
        used[best] = 1;
        int w = snprintf(buf + off, size - off, "%s%s %llu", shown ? ", " : "",
                         sim_ev_kind_name((enum sim_ev_kind)best),
                         (unsigned long long)st->count[best]);
        if (w < 0 || (size_t)w >= size - off)
            break;
        off += (size_t)w;
    }
}

/* sim_sched_pending - events that will still run */
size_t sim_sched_pending(const struct sim_sched *s)
{
    return s->pending;
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
