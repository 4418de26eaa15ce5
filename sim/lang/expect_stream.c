/*
 * expect_stream - a scenario's expectations judged as the trace streams
 *
 * See expect_stream.h.  The tests of a record against a pattern are
 * expect.c's own (expect_internal.h), so a streamed verdict and a checked
 * one cannot drift apart.
 */
#include <assert.h>
#include <stdlib.h>

#include "expect_internal.h"
#include "expect_stream.h"

struct matcher {
    const struct scn_expect *e;
    int streamed;           /* 0: judged by expect_check without records */
    struct compiled *c;
    int next;               /* in order: the next pattern to match */
    size_t mentioned;       /* exactly: mentioned records so far */
    int ok;                 /* exactly: each matched its position's pattern */
    int64_t hits;           /* never, count */
    int replied;            /* client: its step's "client reply" came */
};

struct expect_stream {
    int n;
    struct matcher *m;
};

static int streamed_kind(enum scn_expect_kind k)
{
    switch (k) {
    case SCN_EXPECT_HOOKS_IN_ORDER:
    case SCN_EXPECT_TRACE_IN_ORDER:
    case SCN_EXPECT_HOOKS_EXACTLY:
    case SCN_EXPECT_TRACE_EXACTLY:
    case SCN_EXPECT_NEVER:
    case SCN_EXPECT_COUNT:
    case SCN_EXPECT_CLIENT:
        return 1;
    case SCN_EXPECT_MESSAGE:
    case SCN_EXPECT_INTACT:
    case SCN_EXPECT_DSN:
        break;
    }
    return 0;
}

int expect_stream_covers(const struct scn_scenario *sc)
{
    for (int i = 0; i < sc->nexpects; i++) {
        enum scn_expect_kind k = sc->expects[i].kind;
        if (!streamed_kind(k) && k != SCN_EXPECT_MESSAGE)
            return 0;
    }
    return 1;
}

struct expect_stream *expect_stream_create(const struct scn_scenario *sc, mta_usec_t epoch)
{
    struct expect_stream *es = calloc(1, sizeof *es);
    if (es == NULL)
        abort();
    es->n = sc->nexpects;
    es->m = calloc((size_t)(es->n ? es->n : 1), sizeof *es->m);
    if (es->m == NULL)
        abort();
    for (int i = 0; i < es->n; i++) {
        struct matcher *m = &es->m[i];
        m->e = &sc->expects[i];
        m->streamed = streamed_kind(m->e->kind);
        m->ok = 1;
        if (m->streamed && m->e->npatterns > 0)
            m->c = compile_patterns(m->e, epoch);
    }
    return es;
}

/* feed_one - r, the next record, to one matcher */
static void feed_one(struct matcher *m, const struct trace_rec *r)
{
    const struct scn_expect *e = m->e;
    switch (e->kind) {
    case SCN_EXPECT_HOOKS_IN_ORDER:
    case SCN_EXPECT_TRACE_IN_ORDER: {
        if (m->next == e->npatterns)
            return;
        const struct compiled *c = &m->c[m->next];
        if (same_event(r, c->p) && in_scope_of(e, r) && first_failing(c, r) < 0)
            m->next++;
        return;
    }
    case SCN_EXPECT_HOOKS_EXACTLY:
    case SCN_EXPECT_TRACE_EXACTLY:
        if (!mentioned(e, r))
            return;
        if (m->ok) {
            const struct compiled *c = m->mentioned < (size_t)e->npatterns ? &m->c[m->mentioned] : NULL;
            m->ok = c != NULL && same_event(r, c->p) && first_failing(c, r) < 0;
        }
        m->mentioned++;
        return;
    case SCN_EXPECT_NEVER:
    case SCN_EXPECT_COUNT:
        /* As check_never_or_count: the pattern, in scope. */
        m->hits += same_event(r, m->c->p) && in_scope_of(e, r) && first_failing(m->c, r) < 0;
        return;
    case SCN_EXPECT_CLIENT:
        /* As check_client: the reply record of the client's step (its line). */
        if (!m->replied)
            m->replied = is_client_rec(r, "reply", e->client_n, e->pos.line);
        return;
    case SCN_EXPECT_MESSAGE:
    case SCN_EXPECT_INTACT:
    case SCN_EXPECT_DSN:
        break;
    }
    assert(0 && "not a streamed expectation");
}

void expect_stream_feed(struct expect_stream *es, const struct trace_rec *r)
{
    for (int i = 0; i < es->n; i++)
        if (es->m[i].streamed)
            feed_one(&es->m[i], r);
}

int expect_stream_verdict(const struct expect_stream *es, int i)
{
    assert(i >= 0 && i < es->n);
    const struct matcher *m = &es->m[i];
    if (!m->streamed)
        return -1;
    switch (m->e->kind) {
    case SCN_EXPECT_HOOKS_IN_ORDER:
    case SCN_EXPECT_TRACE_IN_ORDER:
        return m->next == m->e->npatterns;
    case SCN_EXPECT_HOOKS_EXACTLY:
    case SCN_EXPECT_TRACE_EXACTLY:
        return m->ok && m->mentioned == (size_t)m->e->npatterns;
    case SCN_EXPECT_CLIENT:
        return m->replied;
    default:
        return count_holds(m->e, m->hits);
    }
}

void expect_stream_destroy(struct expect_stream *es)
{
    if (es == NULL)
        return;
    for (int i = 0; i < es->n; i++)
        if (es->m[i].c)
            free_compiled(es->m[i].c, es->m[i].e->npatterns);
    free(es->m);
    free(es);
}
