/*
 * dns - the simulated resolver and its zone data
 *
 * SYNOPSIS
 *   See dns.h.
 *
 * DESCRIPTION
 *   Zone data is a list of records in the order they were added; names are
 *   stored normalised (lower case, one trailing dot removed) so every
 *   comparison is a plain strcmp.  Each distinct name has an entry that
 *   chains its records and failures in the order they were added and holds
 *   its query counters and latency; a hash index finds the entry (a world
 *   of a thousand domains used to spend a third of its time scanning).
 *   The index is only probed, and chains keep file order, so answers never
 *   depend on hashing.
 *
 *   The answer is computed when the query is made (a snapshot of the zone
 *   at that instant) and delivered by a scheduler event after the
 *   resolver latency, or after the resolver timeout for TIMEOUT.
 *
 *   CNAME chasing for A and AAAA queries (RFC 1034 3.6.2: the resolver
 *   restarts the query at the canonical name) follows at most SIM_DNS_MAX_CNAME_HOPS
 *   aliases; a longer chain or a loop answers SERVFAIL, as a recursive
 *   resolver does.  A failure set on a name along the chain applies to
 *   the whole answer.  MX targets and CNAME targets are returned as they
 *   were written (a null MX keeps its ".").
 *
 * DIAGNOSTICS
 *   A record whose name or target does not fit MTA_DNS_NAME_MAX, or
 *   exceeding a table bound, prints "sim_dns_<fn>: ..." and aborts.
 */
#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "idxmap.h"
#include "prng.h"

#define SIM_DNS_MAX_RECORDS 65536
#define SIM_DNS_MAX_FAILURES 65536
#define SIM_DNS_MAX_COUNTERS 65536
#define SIM_DNS_MAX_PENDING 65536
#define SIM_DNS_MAX_SPARE 256     /* answered queries kept for reuse */
#define SIM_DNS_MAX_CNAME_HOPS 8
#define SIM_DNS_MAX_LATENCIES 65536
#define SIM_DNS_MAX_NAMES (4 * 65536)

/* Chains link entries by index; NO_ENTRY ends one. */
#define NO_ENTRY (-1)

/* Records, failures and counters belong to a struct dns_name: the name is
 * kept there once. */
struct dns_record {
    int32_t next;                       /* the name's next record */
    enum mta_dns_type type;
    uint16_t pref;
    char target[MTA_DNS_NAME_MAX];      /* as written */
    uint32_t addr;
    uint8_t addr6[16];
    uint32_t ttl;
    int has_window;
    struct sim_dns_window window;
};

struct dns_failure {
    int32_t next;                       /* the name's next failure */
    int type;                           /* 0 = every type */
    enum mta_dns_rcode rcode;
    int has_window;
    struct sim_dns_window window;
};

struct dns_counter {
    unsigned long count;
    struct sim_prng jitter_rng;         /* (seed, "dns NAME TYPE", 0) */
};

/* Everything known about one normalised name. */
struct dns_name {
    char name[MTA_DNS_NAME_MAX];
    int32_t first_record, last_record;  /* records[] chain, in the order added */
    int32_t first_failure, last_failure;/* failures[] chain, in the order added */
    int32_t counter[4];                 /* counters[] for A, CNAME, MX, AAAA; NO_ENTRY */
    int has_latency;
    sim_usec latency;
};

struct dns_pending {
    struct sim_dns *dns;
    struct dns_pending *prev, *next;
    sim_event_id event;
    mta_dns_cb cb;
    void *arg;
    enum mta_dns_type type;
    char *name;                         /* as the caller asked */
    struct mta_dns_answer answer;
};

struct sim_dns {
    struct sim_sched *sched;
    sim_usec latency;
    sim_usec timeout;
    sim_usec jitter;
    uint64_t seed;
    size_t nlatencies;
    struct dns_record *records;
    size_t nrecords;
    struct dns_failure *failures;
    size_t nfailures;
    struct dns_counter *counters;
    size_t ncounters;
    struct dns_name *names;
    size_t nnames;
    struct idxmap name_index;           /* text_hash(name) -> names[] */
    struct dns_pending *first, *last;   /* in query order */
    size_t npending;
    /* Answered queries kept for the next one (linked by next): a pending
     * query is about 4.6 KiB with its answer, too large to malloc per query. */
    struct dns_pending *spare;
    size_t nspare;
};

/* dns_die - report a broken contract and stop loudly */
static void dns_die(const char *fn, const char *what)
{
    fprintf(stderr, "%s: %s\n", fn, what);
    abort();
}

/* dns_xrealloc - realloc that treats exhaustion as fatal */
static void *dns_xrealloc(void *p, size_t n, size_t size)
{
    void *q;

    if (n != 0 && size > SIZE_MAX / n)
        dns_die("sim_dns", "allocation overflow");
    q = realloc(p, n * size);
    if (q == NULL && n * size != 0)
        dns_die("sim_dns", "out of memory");
    return q;
}

/* dns_normalise - lower-case name into out, one trailing dot dropped; -1 if too long */
static int dns_normalise(const char *name, char out[MTA_DNS_NAME_MAX])
{
    size_t len = strnlen(name, MTA_DNS_NAME_MAX);
    size_t i;

    if (len >= MTA_DNS_NAME_MAX)
        return -1;
    /* "." stays the root; "example.com." is "example.com". */
    if (len > 1 && name[len - 1] == '.')
        len--;
    for (i = 0; i < len; i++)
        out[i] = (char) tolower((unsigned char) name[i]);
    out[len] = '\0';
    return 0;
}

/* dns_room - make room for one more entry in an array grown by doubling */
static void *dns_room(void *p, size_t n, size_t size)
{
    if ((n & (n - 1)) != 0)
        return p;           /* not a power of two: there is room */
    return dns_xrealloc(p, n ? 2 * n : 1, size);
}

/* dns_name_find - the entry of a normalised name, or NULL */
static struct dns_name *dns_name_find(const struct sim_dns *d, const char *norm)
{
    uint64_t h = text_hash(norm, strlen(norm));
    size_t pos;

    for (uint32_t i = idxmap_first(&d->name_index, h, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&d->name_index, h, &pos))
        if (strcmp(d->names[i].name, norm) == 0)
            return &d->names[i];
    return NULL;
}

/* dns_name_get - the entry of a normalised name, created on first use */
static struct dns_name *dns_name_get(struct sim_dns *d, const char *norm)
{
    struct dns_name *e = dns_name_find(d, norm);

    if (e != NULL)
        return e;
    if (d->nnames >= SIM_DNS_MAX_NAMES)
        dns_die("sim_dns", "too many distinct names");
    d->names = dns_room(d->names, d->nnames, sizeof *d->names);
    e = &d->names[d->nnames];
    strcpy(e->name, norm);
    e->first_record = e->last_record = NO_ENTRY;
    e->first_failure = e->last_failure = NO_ENTRY;
    e->counter[0] = e->counter[1] = e->counter[2] = e->counter[3] = NO_ENTRY;
    e->has_latency = 0;
    e->latency = 0;
    idxmap_put(&d->name_index, text_hash(norm, strlen(norm)), (uint32_t) d->nnames);
    d->nnames++;
    return e;
}

/* dns_type_slot - a query type's counter slot in a name entry */
static int dns_type_slot(enum mta_dns_type type)
{
    assert(type == MTA_DNS_A || type == MTA_DNS_CNAME || type == MTA_DNS_MX
           || type == MTA_DNS_AAAA);
    return type == MTA_DNS_A ? 0 : type == MTA_DNS_CNAME ? 1 : type == MTA_DNS_MX ? 2 : 3;
}

/* dns_in_window - is a zone line with this window in the zone for a query
 * asked now whose number is n? */
static int dns_in_window(int has_window, const struct sim_dns_window *w, sim_usec now,
                         unsigned long n)
{
    if (!has_window)
        return 1;
    if (now < w->from || (w->until >= 0 && now >= w->until))
        return 0;
    return scn_qset_holds(&w->queries, n);
}

/* sim_dns_create - a resolver answering after latency, giving up after timeout */
struct sim_dns *sim_dns_create(struct sim_sched *s, sim_usec latency, sim_usec timeout)
{
    struct sim_dns *d = calloc(1, sizeof *d);

    assert(s != NULL);
    assert(latency >= 0 && timeout >= 0);
    if (d == NULL)
        dns_die("sim_dns_create", "out of memory");
    d->sched = s;
    d->latency = latency;
    d->timeout = timeout;
    return d;
}

/* sim_dns_destroy - free the resolver; unanswered queries are dropped */
void sim_dns_destroy(struct sim_dns *d)
{
    size_t bound;

    if (d == NULL)
        return;
    bound = d->npending;
    while (d->first != NULL) {
        struct dns_pending *p = d->first;

        assert(bound-- > 0);
        d->first = p->next;
        sim_sched_cancel(d->sched, p->event);
        free(p->name);
        free(p);
    }
    while (d->spare != NULL) {
        struct dns_pending *p = d->spare;

        d->spare = p->next;
        free(p);
    }
    free(d->records);
    free(d->failures);
    free(d->counters);
    free(d->names);
    idxmap_free(&d->name_index);
    free(d);
}

/* sim_dns_add - add one record (copied) */
void sim_dns_add(struct sim_dns *d, const struct sim_dns_record *rec)
{
    struct dns_record *r;
    struct dns_name *e;
    char norm[MTA_DNS_NAME_MAX];

    assert(rec != NULL && rec->name != NULL);
    assert(rec->type == MTA_DNS_A || rec->type == MTA_DNS_MX || rec->type == MTA_DNS_CNAME
           || rec->type == MTA_DNS_AAAA);
    if (d->nrecords >= SIM_DNS_MAX_RECORDS)
        dns_die("sim_dns_add", "too many records");
    d->records = dns_room(d->records, d->nrecords, sizeof *d->records);
    r = &d->records[d->nrecords];
    memset(r, 0, sizeof *r);
    if (dns_normalise(rec->name, norm) < 0)
        dns_die("sim_dns_add", "name too long");
    r->next = NO_ENTRY;
    e = dns_name_get(d, norm);
    if (e->last_record == NO_ENTRY)
        e->first_record = (int32_t) d->nrecords;
    else
        d->records[e->last_record].next = (int32_t) d->nrecords;
    e->last_record = (int32_t) d->nrecords;
    r->type = rec->type;
    r->pref = rec->pref;
    if (rec->type == MTA_DNS_MX || rec->type == MTA_DNS_CNAME) {
        if (rec->target == NULL || strnlen(rec->target, MTA_DNS_NAME_MAX) >= MTA_DNS_NAME_MAX)
            dns_die("sim_dns_add", "missing or too long target");
        strcpy(r->target, rec->target);
    }
    r->addr = rec->addr;
    memcpy(r->addr6, rec->addr6, sizeof r->addr6);
    r->ttl = rec->ttl;
    r->has_window = rec->when != NULL;
    if (rec->when != NULL)
        r->window = *rec->when;
    d->nrecords++;
}

/* dns_fail - add a failure of (name, type), or replace the one for ever */
static void dns_fail(struct sim_dns *d, const char *name, int type, enum mta_dns_rcode rcode,
                     const struct sim_dns_window *when)
{
    char norm[MTA_DNS_NAME_MAX];
    struct dns_name *e;
    struct dns_failure *f;
    int32_t i;

    assert(name != NULL);
    assert(rcode == MTA_DNS_NXDOMAIN || rcode == MTA_DNS_SERVFAIL || rcode == MTA_DNS_TIMEOUT
           || rcode == MTA_DNS_NOERROR);
    if (dns_normalise(name, norm) < 0)
        dns_die("sim_dns_fail", "name too long");
    e = dns_name_get(d, norm);
    for (i = e->first_failure; i != NO_ENTRY && when == NULL; i = d->failures[i].next) {
        if (d->failures[i].type == type && !d->failures[i].has_window) {
            d->failures[i].rcode = rcode;
            return;
        }
    }
    if (d->nfailures >= SIM_DNS_MAX_FAILURES)
        dns_die("sim_dns_fail", "too many failures");
    d->failures = dns_room(d->failures, d->nfailures, sizeof *d->failures);
    f = &d->failures[d->nfailures];
    memset(f, 0, sizeof *f);
    f->next = NO_ENTRY;
    f->type = type;
    f->rcode = rcode;
    f->has_window = when != NULL;
    if (when != NULL)
        f->window = *when;
    if (e->last_failure == NO_ENTRY)
        e->first_failure = (int32_t) d->nfailures;
    else
        d->failures[e->last_failure].next = (int32_t) d->nfailures;
    e->last_failure = (int32_t) d->nfailures;
    d->nfailures++;
}

/* sim_dns_fail - make (name, type) fail for ever; type 0 = every type; last call wins */
void sim_dns_fail(struct sim_dns *d, const char *name, int type, enum mta_dns_rcode rcode)
{
    dns_fail(d, name, type, rcode, NULL);
}

/* sim_dns_fail_when - make (name, type) fail in a window; type 0 = every type */
void sim_dns_fail_when(struct sim_dns *d, const char *name, int type, enum mta_dns_rcode rcode,
                       const struct sim_dns_window *when)
{
    assert(when != NULL);
    dns_fail(d, name, type, rcode, when);
}

/* dns_failure_for - the failure in the zone for (name, type), query n now:
 * exact type first, then any */
static int dns_failure_for(const struct sim_dns *d, const char *norm, enum mta_dns_type type,
                           unsigned long n, enum mta_dns_rcode *rcode)
{
    const struct dns_failure *any = NULL;
    const struct dns_name *e = dns_name_find(d, norm);
    int32_t i;

    for (i = e ? e->first_failure : NO_ENTRY; i != NO_ENTRY; i = d->failures[i].next) {
        const struct dns_failure *f = &d->failures[i];

        if (!dns_in_window(f->has_window, &f->window, sim_sched_now(d->sched), n))
            continue;
        if (f->type == (int) type) {
            *rcode = f->rcode;
            return 1;
        }
        if (f->type == 0 && any == NULL)
            any = f;
    }
    if (any != NULL) {
        *rcode = any->rcode;
        return 1;
    }
    return 0;
}

/* dns_rr_from - an answer record from zone data */
static void dns_rr_from(struct mta_dns_rr *rr, const struct dns_record *r)
{
    memset(rr, 0, sizeof *rr);
    rr->type = r->type;
    rr->pref = r->pref;
    rr->addr = r->addr;
    memcpy(rr->addr6, r->addr6, sizeof rr->addr6);
    rr->ttl = r->ttl;
    /* Both buffers are MTA_DNS_NAME_MAX and target is NUL-terminated. */
    memcpy(rr->name, r->target, sizeof rr->name);
}

/* dns_collect - append the records of (name, type) in the zone for query n
 * to the answer; the count of those of any type */
static size_t dns_collect(const struct sim_dns *d, const char *norm, enum mta_dns_type type,
                          unsigned long n, struct mta_dns_answer *a,
                          const struct dns_record **cname)
{
    const struct dns_name *e = dns_name_find(d, norm);
    size_t any = 0;
    int32_t i;

    *cname = NULL;
    for (i = e ? e->first_record : NO_ENTRY; i != NO_ENTRY; i = d->records[i].next) {
        const struct dns_record *r = &d->records[i];

        if (!dns_in_window(r->has_window, &r->window, sim_sched_now(d->sched), n))
            continue;
        any++;
        if (r->type == MTA_DNS_CNAME && *cname == NULL)
            *cname = r;
        if (r->type != type)
            continue;
        if (a->count < MTA_DNS_MAX_RR)
            dns_rr_from(&a->rr[a->count++], r);
    }
    return any;
}

/* dns_resolve - compute the answer to (name, type), query n, from the zone data now */
static void dns_resolve(const struct sim_dns *d, const char *name, enum mta_dns_type type,
                        unsigned long n, struct mta_dns_answer *a)
{
    char norm[MTA_DNS_NAME_MAX];
    const struct dns_record *cname;
    enum mta_dns_rcode rcode;
    int hops;

    /* Not memset: 4 KiB of record slots, of which count are filled. */
    a->rcode = MTA_DNS_NOERROR;
    a->count = 0;
    if (dns_normalise(name, norm) < 0) {
        a->rcode = MTA_DNS_NXDOMAIN;    /* no such name can exist */
        return;
    }
    /* Each hop either answers or moves to a CNAME target; the hop bound
     * ends loops (a -> b -> a) as well as long chains. */
    for (hops = 0; hops <= SIM_DNS_MAX_CNAME_HOPS; hops++) {
        int before = a->count;
        size_t any;

        if (dns_failure_for(d, norm, type, n, &rcode)) {
            a->rcode = rcode;
            a->count = 0;
            return;
        }
        any = dns_collect(d, norm, type, n, a, &cname);
        if (a->count > before)
            return;                             /* records of the type */
        if ((type == MTA_DNS_A || type == MTA_DNS_AAAA) && cname != NULL) {
            char next[MTA_DNS_NAME_MAX];

            if (a->count < MTA_DNS_MAX_RR)
                dns_rr_from(&a->rr[a->count++], cname);
            if (dns_normalise(cname->target, next) < 0) {
                a->rcode = MTA_DNS_SERVFAIL;
                a->count = 0;
                return;
            }
            memcpy(norm, next, sizeof norm);
            continue;
        }
        if (any == 0) {
            /* The first name does not exist: NXDOMAIN.  A CNAME target
             * that does not exist is NXDOMAIN too, as a resolver says. */
            a->rcode = MTA_DNS_NXDOMAIN;
            a->count = 0;
            return;
        }
        a->rcode = MTA_DNS_NOERROR;             /* NODATA */
        return;
    }
    a->rcode = MTA_DNS_SERVFAIL;
    a->count = 0;
}

/* dns_type_text - a query type as the purpose of a stream names it */
static const char *dns_type_text(enum mta_dns_type type)
{
    return type == MTA_DNS_MX ? "MX" : type == MTA_DNS_A ? "A"
           : type == MTA_DNS_AAAA ? "AAAA" : "CNAME";
}

/* dns_count - one more query for (name, type); its counter, NULL if unnamed */
static struct dns_counter *dns_count(struct sim_dns *d, const char *name, enum mta_dns_type type)
{
    char norm[MTA_DNS_NAME_MAX];
    char purpose[MTA_DNS_NAME_MAX + 16];
    struct dns_counter *ct;
    struct dns_name *e;
    int slot = dns_type_slot(type);

    if (dns_normalise(name, norm) < 0)
        return NULL;    /* unanswerable names are not counted by name */
    e = dns_name_get(d, norm);
    if (e->counter[slot] != NO_ENTRY) {
        ct = &d->counters[e->counter[slot]];
        ct->count++;
        return ct;
    }
    if (d->ncounters >= SIM_DNS_MAX_COUNTERS)
        dns_die("sim_dns_query", "too many distinct names queried");
    d->counters = dns_room(d->counters, d->ncounters, sizeof *d->counters);
    e->counter[slot] = (int32_t) d->ncounters;
    ct = &d->counters[d->ncounters++];
    ct->count = 1;
    snprintf(purpose, sizeof purpose, "dns %s %s", norm, dns_type_text(type));
    sim_prng_init(&ct->jitter_rng, d->seed, purpose, 0);
    return ct;
}

/* dns_name_latency - the latency set for exactly this name, or the resolver's */
static sim_usec dns_name_latency(const struct sim_dns *d, const char *name)
{
    char norm[MTA_DNS_NAME_MAX];
    const struct dns_name *e;

    if (dns_normalise(name, norm) < 0)
        return d->latency;
    e = dns_name_find(d, norm);
    return e != NULL && e->has_latency ? e->latency : d->latency;
}

/* sim_dns_set_name_latency - answers about name take latency; last call wins */
void sim_dns_set_name_latency(struct sim_dns *d, const char *name, sim_usec latency)
{
    char norm[MTA_DNS_NAME_MAX];
    struct dns_name *e;

    assert(name != NULL && latency >= 0);
    if (dns_normalise(name, norm) < 0)
        dns_die("sim_dns_set_name_latency", "name too long");
    e = dns_name_get(d, norm);
    if (!e->has_latency) {
        if (d->nlatencies >= SIM_DNS_MAX_LATENCIES)
            dns_die("sim_dns_set_name_latency", "too many names");
        d->nlatencies++;
    }
    e->has_latency = 1;
    e->latency = latency;
}

/* sim_dns_set_jitter - every answer takes up to jitter more, drawn per name */
void sim_dns_set_jitter(struct sim_dns *d, sim_usec jitter, uint64_t seed)
{
    assert(jitter >= 0);
    /* Streams are seeded when a name is first counted. */
    assert(d->ncounters == 0);
    d->jitter = jitter;
    d->seed = seed;
}

/* dns_answer_event - deliver one answer and forget the query */
static void dns_answer_event(void *arg)
{
    struct dns_pending *p = arg;
    struct sim_dns *d = p->dns;

    /* Unlink first: the callback may well ask another question. */
    if (p->prev)
        p->prev->next = p->next;
    else
        d->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        d->last = p->prev;
    assert(d->npending > 0);
    d->npending--;
    p->cb(p->arg, p->name, p->type, &p->answer);
    free(p->name);
    if (d->nspare < SIM_DNS_MAX_SPARE) {
        p->next = d->spare;
        d->spare = p;
        d->nspare++;
    } else {
        free(p);
    }
}

/* sim_dns_query - ask; cb runs later from the scheduler */
void sim_dns_query(struct sim_dns *d, const char *name, enum mta_dns_type type,
                   mta_dns_cb cb, void *arg)
{
    struct dns_pending *p;
    struct dns_counter *ct;
    sim_usec delay;

    assert(name != NULL && cb != NULL);
    if (d->npending >= SIM_DNS_MAX_PENDING)
        dns_die("sim_dns_query", "too many queries in flight");
    p = d->spare;               /* every field is set below; the answer by dns_resolve */
    if (p != NULL) {
        d->spare = p->next;
        d->nspare--;
    } else {
        p = malloc(sizeof *p);
    }
    if (p == NULL)
        dns_die("sim_dns_query", "out of memory");
    memset(p, 0, offsetof(struct dns_pending, answer));
    p->name = strdup(name);
    if (p->name == NULL)
        dns_die("sim_dns_query", "out of memory");
    p->dns = d;
    p->cb = cb;
    p->arg = arg;
    p->type = type;
    ct = dns_count(d, name, type);
    dns_resolve(d, name, type, ct != NULL ? ct->count : 0, &p->answer);
    delay = p->answer.rcode == MTA_DNS_TIMEOUT ? d->timeout : dns_name_latency(d, name);
    /* One draw per counted query, timeouts included, so that whether an
     * answer is a timeout never shifts the draws after it. */
    if (d->jitter > 0 && ct != NULL)
        delay += (sim_usec) sim_prng_below(&ct->jitter_rng, (uint64_t) d->jitter + 1);
    p->prev = d->last;
    if (d->last)
        d->last->next = p;
    else
        d->first = p;
    d->last = p;
    d->npending++;
    p->event = sim_sched_at_kind(d->sched, sim_sched_now(d->sched) + delay, dns_answer_event, p,
                                 SIM_EV_DNS);
}

/* sim_dns_query_count - queries made so far for (name, type) */
unsigned long sim_dns_query_count(const struct sim_dns *d, const char *name,
                                  enum mta_dns_type type)
{
    char norm[MTA_DNS_NAME_MAX];
    const struct dns_name *e;
    int32_t i;

    if (dns_normalise(name, norm) < 0)
        return 0;
    e = dns_name_find(d, norm);
    i = e != NULL ? e->counter[dns_type_slot(type)] : NO_ENTRY;
    return i != NO_ENTRY ? d->counters[i].count : 0;
}
