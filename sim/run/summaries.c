/*
 * summaries - the runner's per-message bookkeeping
 *
 * See summaries.h.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "expect.h"
#include "summaries.h"
#include "trace_summary.h"

/* A set of ids, or an index from id to a summary: open addressing, at most
 * half full, so that a million messages stay linear. */
struct id_table {
    unsigned long *id;
    int *slot;              /* index into r->msgs; -1 = empty */
    size_t cap, n;          /* cap: a power of two */
};

struct summaries {
    struct run_result *r;
    const struct scn_scenario *sc;
    enum summaries_mode mode;
    int detail;             /* the summaries carry their JSON detail */
    struct id_table ix;     /* id -> r->msgs (ALL, NAMED) */
    size_t msgs_cap;
    unsigned long *named;   /* NAMED: the ids "expect message" names, sorted */
    size_t nnamed;
    struct id_table seen;   /* NAMED: every id the core had */
};

void run_violation(struct run_result *r, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **v = realloc(r->violations, (size_t)(r->nviolations + 1) * sizeof *v);
    if (v == NULL)
        abort();
    r->violations = v;
    r->violations[r->nviolations++] = strdup(buf);
}

static size_t id_hash(unsigned long id, size_t cap)
{
    uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 20) & (cap - 1);
}

static void table_init(struct id_table *t, size_t entries)
{
    t->cap = 16;
    while (t->cap < 2 * entries)
        t->cap *= 2;
    t->n = 0;
    t->id = malloc(t->cap * sizeof *t->id);
    t->slot = malloc(t->cap * sizeof *t->slot);
    if (t->id == NULL || t->slot == NULL)
        abort();
    for (size_t i = 0; i < t->cap; i++)
        t->slot[i] = -1;
}

static void table_free(struct id_table *t)
{
    free(t->id);
    free(t->slot);
    memset(t, 0, sizeof *t);
}

/* table_find - where id is, or where it would go */
static size_t table_find(const struct id_table *t, unsigned long id)
{
    size_t h = id_hash(id, t->cap);
    while (t->slot[h] >= 0 && t->id[h] != id)
        h = (h + 1) & (t->cap - 1);
    return h;
}

/* table_put - id with slot at h (from table_find), growing when half full */
static void table_put(struct id_table *t, size_t h, unsigned long id, int slot)
{
    t->id[h] = id;
    t->slot[h] = slot;
    if (2 * ++t->n <= t->cap)
        return;
    struct id_table g;
    table_init(&g, t->n);
    for (size_t i = 0; i < t->cap; i++)
        if (t->slot[i] >= 0) {
            size_t k = table_find(&g, t->id[i]);
            g.id[k] = t->id[i];
            g.slot[k] = t->slot[i];
        }
    g.n = t->n;
    table_free(t);
    *t = g;
}

static int cmp_id(const void *a, const void *b)
{
    unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;
    return (x > y) - (x < y);
}

struct summaries *summaries_create(const struct scn_scenario *sc, struct run_result *r,
                                   enum summaries_mode mode, int detail, size_t expected)
{
    struct summaries *s = calloc(1, sizeof *s);
    if (s == NULL)
        abort();
    s->r = r;
    s->sc = sc;
    s->mode = mode;
    s->detail = detail;
    if (mode == SUMMARIES_LEAN)
        return s;
    if (mode == SUMMARIES_NAMED) {
        s->named = malloc((size_t)(sc->nexpects ? sc->nexpects : 1) * sizeof *s->named);
        if (s->named == NULL)
            abort();
        for (int i = 0; i < sc->nexpects; i++)
            if (sc->expects[i].kind == SCN_EXPECT_MESSAGE)
                s->named[s->nnamed++] = sc->expects[i].msg_id;
        qsort(s->named, s->nnamed, sizeof *s->named, cmp_id);
        expected = s->nnamed;
        table_init(&s->seen, 1024);
    }
    s->msgs_cap = expected ? expected : 1;
    r->msgs = calloc(s->msgs_cap, sizeof *r->msgs);
    if (r->msgs == NULL)
        abort();
    table_init(&s->ix, expected);
    return s;
}

/* summary_of - the summary of id, made on first use */
static struct msg_summary *summary_of(struct summaries *s, unsigned long id)
{
    struct run_result *r = s->r;
    size_t h = table_find(&s->ix, id);
    if (s->ix.slot[h] >= 0)
        return &r->msgs[s->ix.slot[h]];
    assert((size_t)r->nmsgs < s->msgs_cap);     /* sized by the caller, or the named ids */
    table_put(&s->ix, h, id, r->nmsgs);
    struct msg_summary *m = &r->msgs[r->nmsgs++];
    memset(m, 0, sizeof *m);
    m->id = id;
    m->done_at = -1;
    return m;
}

/* add_detail - msg's recipients (and, for a DSN, what it reports on and its
 * text) into the summary's JSON detail */
static void add_detail(struct msg_summary *s, const message *msg)
{
    static const char *const states[] = { "pending", "delivered", "bounced", "expired" };
    if (s->detail == NULL) {
        s->detail = json_object();
        json_object_set_new(s->detail, "rcpts", json_array());
    }
    json_t *rcpts = json_object_get(s->detail, "rcpts");
    for (int i = 0; i < msg->rcpt_count; i++) {
        const struct message_rcpt *rc = &msg->rcpts[i];
        json_t *o = json_object();
        json_object_set_new(o, "address", trace_summary_text(rc->address, strlen(rc->address)));
        json_object_set_new(o, "state", json_string(states[rc->state]));
        json_object_set_new(o, "status", rc->last_status ? json_string(rc->last_status) : json_null());
        json_object_set_new(o, "note", rc->last_note && rc->last_note[0]
                                       ? trace_summary_text(rc->last_note, strlen(rc->last_note))
                                       : json_null());
        json_object_set_new(o, "remote_mta", rc->last_mta
                                             ? trace_summary_text(rc->last_mta, strlen(rc->last_mta))
                                             : json_null());
        json_array_append_new(rcpts, o);
    }
    if (msg->dsn_of != 0) {
        json_object_set_new(s->detail, "dsn_of", json_integer((json_int_t)msg->dsn_of));
        json_object_set_new(s->detail, "dsn_text", trace_summary_text(msg->body, msg->body_len));
    }
}

/* kept - whether msg's id has a summary kept (NAMED: noting the id as seen) */
static int kept(struct summaries *s, unsigned long id)
{
    if (s->mode == SUMMARIES_LEAN)
        return 0;
    if (s->mode == SUMMARIES_ALL)
        return 1;
    size_t h = table_find(&s->seen, id);
    if (s->seen.slot[h] < 0)
        table_put(&s->seen, h, id, 0);
    return bsearch(&id, s->named, s->nnamed, sizeof *s->named, cmp_id) != NULL;
}

/* summaries_add - fold one message into its id's summary; check it */
void summaries_add(void *arg, const message *msg)
{
    struct summaries *ctx = arg;
    struct run_result *r = ctx->r;
    struct msg_summary scratch;
    struct msg_summary *s = &scratch;
    if (kept(ctx, msg->id)) {
        s = summary_of(ctx, msg->id);
    } else {
        s->nrcpts = s->delivered = s->pending = s->failed = s->attempts = 0;
        s->done_at = -1;
    }
    struct mta_msg_info info;
    mta_message_info(msg, &info);
    int pending = 0;
    for (int i = 0; i < msg->rcpt_count; i++) {
        const struct message_rcpt *rc = &msg->rcpts[i];
        s->nrcpts++;
        if (rc->state == RCPT_DELIVERED)
            s->delivered++;
        else if (rc->state == RCPT_PENDING)
            s->pending++, pending++;
        else
            s->failed++;
        if (s != &scratch && rc->state != RCPT_DELIVERED && rc->last_note && rc->last_note[0])
            snprintf(s->last_note, sizeof s->last_note, "%s", rc->last_note);
    }
    if (ctx->detail && s != &scratch)
        add_detail(s, msg);
    if (msg->attempts > s->attempts)
        s->attempts = msg->attempts;
    if (pending && !info.held)
        run_violation(r, "message %lu to %s: %d recipient(s) pending but the core no longer "
                      "holds it (%s)", msg->id, msg->domain, pending, info.where);
    if (!pending && info.held)
        run_violation(r, "message %lu to %s: finished but still queued (%s)", msg->id,
                      msg->domain, info.where);
    if (!pending && info.done_at > s->done_at)
        s->done_at = info.done_at;
}

/* had - whether the core had a message of id */
static int had(const struct summaries *s, unsigned long id)
{
    const struct id_table *t = s->mode == SUMMARIES_NAMED ? &s->seen : &s->ix;
    return t->slot[table_find(t, id)] >= 0;
}

void summaries_finish(struct summaries *ctx, mta_usec_t end)
{
    struct run_result *r = ctx->r;
    for (int i = 0; i < r->nmsgs; i++) {
        struct msg_summary *s = &r->msgs[i];
        if (s->pending) {
            s->fate = "deferred";
            s->done_at = -1;
        } else if (s->delivered == s->nrcpts) {
            s->fate = "delivered";
        } else if (s->delivered == 0) {
            s->fate = "bounced";
        } else {
            s->fate = "partial";
        }
    }
    const struct scn_scenario *sc = ctx->sc;
    for (int i = 0; i < sc->ninjects && ctx->mode != SUMMARIES_LEAN; i++) {
        const struct scn_inject *in = &sc->injects[i];
        for (unsigned long k = 0; k < in->count; k++)
            if (!had(ctx, in->id + k) && scn_inject_time(in, k) <= end)
                run_violation(r, "message %lu was injected but the core has no record of it",
                              in->id + k);
    }
    table_free(&ctx->ix);
    table_free(&ctx->seen);
    free(ctx->named);
    free(ctx);
}
