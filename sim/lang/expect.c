/*
 * expect - checking a scenario's expectations against what happened
 *
 * See expect.h.  Matching never allocates per record: regular
 * expressions are compiled once per check.
 */
#include <assert.h>
#include <inttypes.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expect.h"
#include "expect_internal.h"

#define DIFF_CONTEXT 12         /* records shown after the last match */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 512;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL)
            abort();
        b->p = p;
        b->cap = cap;
    }
}

static void scope_text(struct sbuf *w, const struct scn_expect *e);

/* expect_duration_str - the shortest exact spelling of d */
const char *expect_duration_str(mta_usec_t d, char buf[32])
{
    static const struct { const char *unit; int64_t us; } units[] = {
        { "d", 86400000000LL }, { "h", 3600000000LL }, { "m", 60000000LL },
        { "s", 1000000LL }, { "ms", 1000LL }, { "us", 1LL },
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (d % units[i].us == 0) {
            snprintf(buf, 32, "%" PRId64 "%s", d / units[i].us, units[i].unit);
            return buf;
        }
    snprintf(buf, 32, "%" PRId64 "us", d);
    return buf;
}

static int value_needs_quotes(const char *v)
{
    if (*v == '\0')
        return 1;
    for (; *v; v++)
        if (*v == ' ' || *v == '\t' || *v == '"' || *v == '#')
            return 1;
    return 0;
}

/* expect_pattern_text - "name key=value ..." as a scenario would say it */
char *expect_pattern_text(const struct scn_pattern *p)
{
    struct sbuf b = { 0 };
    if (p->kind && strcmp(p->kind, "hook") != 0)
        sb_printf(&b, "%s ", p->kind);
    sb_printf(&b, "%s", p->name);
    for (int i = 0; i < p->nmatchers; i++) {
        const struct scn_matcher *m = &p->matchers[i];
        if (value_needs_quotes(m->value))
            sb_printf(&b, " %s%s\"%s\"", m->key, scn_op_str(m->op), m->value);
        else
            sb_printf(&b, " %s%s%s", m->key, scn_op_str(m->op), m->value);
    }
    return b.p;
}

/* field_of - the field m reads in r: a trace field, or for "at" the
 * record's time from the epoch, built in tmp/buf; NULL if r has none */
static const struct trace_field *field_of(const struct scn_matcher *m, const struct trace_rec *r,
                                          mta_usec_t epoch, struct trace_field *tmp, char buf[32])
{
    if (!m->is_time)
        return trace_rec_field(r, m->key);
    memset(tmp, 0, sizeof *tmp);
    tmp->key = m->key;
    tmp->num = r->time - epoch;
    tmp->has_num = 1;
    tmp->str = trace_time_str(r->time - epoch, buf);
    return tmp;
}

static int holds_with(const struct scn_matcher *m, const regex_t *re, const struct trace_rec *r,
                      mta_usec_t epoch)
{
    struct trace_field tmp;
    char buf[32];
    const struct trace_field *f = field_of(m, r, epoch, &tmp, buf);
    if (f == NULL)
        return 0;
    int numeric = m->is_num && f->has_num;
    switch (m->op) {
    case SCN_OP_EQ:
        return numeric ? f->num == m->num : strcmp(f->str, m->value) == 0;
    case SCN_OP_NE:
        return numeric ? f->num != m->num : strcmp(f->str, m->value) != 0;
    case SCN_OP_LT: return numeric && f->num < m->num;
    case SCN_OP_LE: return numeric && f->num <= m->num;
    case SCN_OP_GT: return numeric && f->num > m->num;
    case SCN_OP_GE: return numeric && f->num >= m->num;
    case SCN_OP_RE:
        return re != NULL && regexec(re, f->str, 0, NULL, 0) == 0;
    }
    return 0;
}

/* why_field - "but KEY=VALUE, wanted KEY OP VALUE" (or "has no KEY") for m on r */
static void why_field(struct sbuf *b, const struct scn_matcher *m, const struct trace_rec *r,
                      mta_usec_t epoch)
{
    struct trace_field tmp;
    char buf[32];
    const struct trace_field *f = field_of(m, r, epoch, &tmp, buf);
    if (f)
        sb_printf(b, "       but %s=%s, wanted %s%s%s\n", m->key, f->str, m->key,
                  scn_op_str(m->op), m->value);
    else
        sb_printf(b, "       but it has no %s argument\n", m->key);
}

/* compile_patterns - e's patterns with their regular expressions compiled once */
struct compiled *compile_patterns(const struct scn_expect *e, mta_usec_t epoch)
{
    int n = e->npatterns;
    struct compiled *c = calloc((size_t)(n ? n : 1), sizeof *c);
    if (c == NULL)
        abort();
    for (int i = 0; i < n; i++) {
        c[i].p = &e->patterns[i];
        c[i].epoch = epoch;
        for (int k = 0; k < c[i].p->nmatchers; k++)
            if (c[i].p->matchers[k].op == SCN_OP_RE)
                c[i].has_re[k] = regcomp(&c[i].re[k], c[i].p->matchers[k].value,
                                         REG_EXTENDED | REG_NOSUB) == 0;
    }
    return c;
}

/* free_compiled - release what compile_patterns made */
void free_compiled(struct compiled *c, int n)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c[i].p->nmatchers; k++)
            if (c[i].has_re[k])
                regfree(&c[i].re[k]);
    free(c);
}

/* first_failing - index of the first matcher of c that fails on r, -1 if all hold */
int first_failing(const struct compiled *c, const struct trace_rec *r)
{
    for (int i = 0; i < c->p->nmatchers; i++)
        if (!holds_with(&c->p->matchers[i], c->has_re[i] ? &c->re[i] : NULL, r, c->epoch))
            return i;
    return -1;
}

/* same_event - r is of the pattern's kind and name */
int same_event(const struct trace_rec *r, const struct scn_pattern *p)
{
    return strcmp(r->kind, p->kind ? p->kind : "hook") == 0 && strcmp(r->name, p->name) == 0;
}

/* in_scope_of - r passes the expectation's "for domain|message|conn" scope */
int in_scope_of(const struct scn_expect *e, const struct trace_rec *r)
{
    if (e->scope.key == NULL)
        return 1;
    const struct trace_field *f = trace_rec_field(r, e->scope.key);
    return f != NULL && strcmp(f->str, e->scope.value) == 0;
}

/* in_scope - r is of a kind the expectation talks about (for "what happened") */
static int in_scope(const struct trace_rec *r, const struct scn_expect *e)
{
    if (!in_scope_of(e, r))
        return 0;
    for (int i = 0; i < e->npatterns; i++)
        if (strcmp(r->kind, e->patterns[i].kind ? e->patterns[i].kind : "hook") == 0)
            return 1;
    return 0;
}

static void show_record(struct sbuf *b, const char *tag, const struct trace_store *ts,
                        const struct trace_rec *r, int with_kind)
{
    char t[32];
    char *text = trace_rec_text(r, with_kind);
    sb_printf(b, "  %-4s %s  %s\n", tag, trace_time_str(r->time - trace_store_epoch(ts), t), text);
    free(text);
}

/* check_in_order - greedy earliest subsequence match over hook or any records */
static int check_in_order(const struct scn_expect *e, const struct trace_store *ts,
                          struct exp_result *out)
{
    int with_kind = e->kind == SCN_EXPECT_TRACE_IN_ORDER;
    int n = e->npatterns;
    struct compiled *c = compile_patterns(e, trace_store_epoch(ts));
    size_t *at = calloc((size_t)(n ? n : 1), sizeof *at);
    if (at == NULL)
        abort();
    size_t count = trace_store_count(ts);
    size_t pos = 0;
    int matched = 0;
    for (; matched < n; matched++) {
        const struct scn_pattern *p = c[matched].p;
        size_t i = pos;
        for (; i < count; i++) {
            const struct trace_rec *r = trace_store_get(ts, i);
            if (same_event(r, p) && in_scope_of(e, r) && first_failing(&c[matched], r) < 0)
                break;
        }
        if (i == count)
            break;
        at[matched] = i;
        pos = i + 1;
    }
    out->passed = matched == n;
    if (!out->passed) {
        struct sbuf b = { 0 };
        char t[32], t_after[32];    /* t is reused below; after must outlive it */
        for (int k = 0; k < matched; k++)
            show_record(&b, "ok", ts, trace_store_get(ts, at[k]), with_kind);
        const struct scn_pattern *miss = c[matched].p;
        char *want = expect_pattern_text(miss);
        const char *after = matched > 0
            ? trace_time_str(trace_store_get(ts, at[matched - 1])->time - trace_store_epoch(ts),
                             t_after)
            : NULL;
        sb_printf(&b, "  MISS %s   (line %d) never happened%s%s\n", want, miss->pos.line,
                  after ? " after " : "", after ? after : "");
        free(want);
        /* The closest candidate: the first later call of the same hook. */
        for (size_t i = pos; i < count; i++) {
            const struct trace_rec *r = trace_store_get(ts, i);
            if (!same_event(r, miss) || !in_scope_of(e, r))
                continue;
            int k = first_failing(&c[matched], r);
            assert(k >= 0);
            char *text = trace_rec_text(r, with_kind);
            sb_printf(&b, "       closest: %s  %s\n",
                      trace_time_str(r->time - trace_store_epoch(ts), t), text);
            why_field(&b, &miss->matchers[k], r, c[matched].epoch);
            free(text);
            break;
        }
        for (int k = matched + 1; k < n; k++) {
            char *rest = expect_pattern_text(c[k].p);
            sb_printf(&b, "  ...  %s   (line %d) not checked\n", rest, c[k].p->pos.line);
            free(rest);
        }
        sb_printf(&b, "  what happened %s%s:\n", after ? "after " : "from the start",
                  after ? after : "");
        int shown = 0, more = 0;
        for (size_t i = pos; i < count; i++) {
            const struct trace_rec *r = trace_store_get(ts, i);
            if (!in_scope(r, e))
                continue;
            if (shown < DIFF_CONTEXT) {
                show_record(&b, "", ts, r, with_kind);
                shown++;
            } else {
                more++;
            }
        }
        if (shown == 0)
            sb_printf(&b, "       (nothing of that kind)\n");
        if (more)
            sb_printf(&b, "       ... and %d more (see --trace)\n", more);
        out->diff = b.p;
    }
    free_compiled(c, n);
    free(at);
    return out->passed;
}

/* why_not - "but KEY=VALUE, wanted KEY OP VALUE" for record r against pattern c */
static void why_not(struct sbuf *b, const struct compiled *c, const struct trace_rec *r)
{
    if (!same_event(r, c->p)) {
        sb_printf(b, "       but that is a different record\n");
        return;
    }
    int k = first_failing(c, r);
    if (k < 0)
        return;
    why_field(b, &c->p->matchers[k], r, c->epoch);
}

/* mentioned - r is in scope and of a kind and name one of the patterns names */
int mentioned(const struct scn_expect *e, const struct trace_rec *r)
{
    if (!in_scope_of(e, r))
        return 0;
    for (int i = 0; i < e->npatterns; i++)
        if (same_event(r, &e->patterns[i]))
            return 1;
    return 0;
}

/* check_exactly - the mentioned records are exactly the patterns, in order
 *
 * Precisely: take the records in scope whose kind and name some pattern
 * names, in trace order; there must be as many as patterns, and the i-th
 * must match the i-th pattern.  The diff walks both lists side by side. */
static int check_exactly(const struct scn_expect *e, const struct trace_store *ts,
                         struct exp_result *out)
{
    int with_kind = e->kind == SCN_EXPECT_TRACE_EXACTLY;
    int n = e->npatterns;
    struct compiled *c = compile_patterns(e, trace_store_epoch(ts));
    size_t count = trace_store_count(ts), m = 0;
    size_t *actual = calloc(count ? count : 1, sizeof *actual);
    if (actual == NULL)
        abort();
    for (size_t i = 0; i < count; i++)
        if (mentioned(e, trace_store_get(ts, i)))
            actual[m++] = i;
    int passed = (size_t)n == m;
    for (int i = 0; passed && i < n; i++) {
        const struct trace_rec *r = trace_store_get(ts, actual[i]);
        passed = same_event(r, c[i].p) && first_failing(&c[i], r) < 0;
    }
    out->passed = passed;
    if (!passed) {
        struct sbuf b = { 0 };
        sb_printf(&b, "  expected exactly %d record%s of the names listed, got %zu:\n", n,
                  n == 1 ? "" : "s", m);
        size_t rows = (size_t)n > m ? (size_t)n : m, shown = 0;
        for (size_t i = 0; i < rows; i++) {
            if (shown == 3 * DIFF_CONTEXT) {
                sb_printf(&b, "       ... and %zu more rows (see --trace)\n", rows - i);
                break;
            }
            const struct trace_rec *r = i < m ? trace_store_get(ts, actual[i]) : NULL;
            const struct compiled *want = i < (size_t)n ? &c[i] : NULL;
            if (r && want && same_event(r, want->p) && first_failing(want, r) < 0) {
                show_record(&b, "ok", ts, r, with_kind);
            } else if (want) {
                char *text = expect_pattern_text(want->p);
                sb_printf(&b, "  %-4s %s   (line %d)\n", r ? "want" : "MISS", text, want->p->pos.line);
                free(text);
                if (r) {
                    show_record(&b, "got", ts, r, with_kind);
                    why_not(&b, want, r);
                } else {
                    sb_printf(&b, "       nothing more of those names happened\n");
                }
            } else {
                show_record(&b, "MORE", ts, r, with_kind);
            }
            shown++;
        }
        out->diff = b.p;
    }
    free(actual);
    free_compiled(c, n);
    return out->passed;
}

/* count_holds - "expect never" / "expect count" holds with hits matching records */
int count_holds(const struct scn_expect *e, int64_t hits)
{
    if (e->kind == SCN_EXPECT_NEVER)
        return hits == 0;
    switch (e->count_op) {
    case SCN_OP_EQ: return hits == e->count_n;
    case SCN_OP_NE: return hits != e->count_n;
    case SCN_OP_LT: return hits < e->count_n;
    case SCN_OP_LE: return hits <= e->count_n;
    case SCN_OP_GT: return hits > e->count_n;
    case SCN_OP_GE: return hits >= e->count_n;
    case SCN_OP_RE: break;
    }
    assert(0 && "a count compares numbers");
    return 0;
}

/* check_never_or_count - count the records matching the one pattern */
static int check_never_or_count(const struct scn_expect *e, const struct trace_store *ts,
                                struct exp_result *out)
{
    assert(e->npatterns == 1);
    int with_kind = strcmp(e->patterns[0].kind ? e->patterns[0].kind : "hook", "hook") != 0;
    struct compiled *c = compile_patterns(e, trace_store_epoch(ts));
    size_t count = trace_store_count(ts);
    int64_t hits = 0;
    for (size_t i = 0; i < count; i++) {
        const struct trace_rec *r = trace_store_get(ts, i);
        hits += same_event(r, c->p) && in_scope_of(e, r) && first_failing(c, r) < 0;
    }
    struct scn_matcher cmp = { .op = e->kind == SCN_EXPECT_NEVER ? SCN_OP_EQ : e->count_op,
                               .num = e->kind == SCN_EXPECT_NEVER ? 0 : e->count_n };
    int ok = count_holds(e, hits);
    out->passed = ok;
    if (!ok) {
        struct sbuf b = { 0 };
        char *text = expect_pattern_text(c->p);
        if (e->kind == SCN_EXPECT_NEVER)
            sb_printf(&b, "  expected never: %s\n  but it happened %" PRId64 " time%s:\n", text,
                      hits, hits == 1 ? "" : "s");
        else
            sb_printf(&b, "  expected %s %s %" PRId64 ", got %" PRId64 "%s\n", text,
                      scn_op_str(cmp.op), cmp.num, hits, hits ? ":" : "");
        free(text);
        int shown = 0, near = 0;
        for (size_t i = 0; i < count; i++) {
            const struct trace_rec *r = trace_store_get(ts, i);
            if (!same_event(r, c->p) || !in_scope_of(e, r))
                continue;
            if (first_failing(c, r) < 0) {
                if (shown++ < DIFF_CONTEXT)
                    show_record(&b, "", ts, r, with_kind);
            } else if (hits == 0 && near++ < 3) {
                /* Nothing matched: the near misses say which matcher was off. */
                show_record(&b, "near", ts, r, with_kind);
                why_not(&b, c, r);
            }
        }
        if (shown > DIFF_CONTEXT)
            sb_printf(&b, "       ... and %d more (see --trace)\n", shown - DIFF_CONTEXT);
        if (hits == 0 && near == 0)
            sb_printf(&b, "       (no %s record at all)\n", c->p->name);
        out->diff = b.p;
    }
    free_compiled(c, 1);
    return ok;
}

/* scope_text - " for domain x" / " for message 1" / "" */
static void scope_text(struct sbuf *w, const struct scn_expect *e)
{
    if (e->scope.key)
        sb_printf(w, " for %s %s", strcmp(e->scope.key, "msg") == 0 ? "message" : e->scope.key,
                  e->scope.value);
}

static int check_message(const struct scn_expect *e, const struct trace_store *ts,
                         const struct msg_summary *msgs, int nmsgs, struct exp_result *out)
{
    const struct msg_summary *s = NULL;
    for (int i = 0; i < nmsgs; i++)
        if (msgs[i].id == e->msg_id)
            s = &msgs[i];
    const char *want = scn_fate_str(e->fate);
    mta_usec_t epoch = trace_store_epoch(ts);
    char t[32], d[32];
    struct sbuf b = { 0 };
    if (s == NULL) {
        sb_printf(&b, "  message %lu was never injected\n", e->msg_id);
        out->passed = 0;
    } else if (strcmp(s->fate, want) != 0) {
        sb_printf(&b, "  message %lu: expected %s, got %s", e->msg_id, want, s->fate);
        if (s->done_at >= 0)
            sb_printf(&b, " at %s", trace_time_str(s->done_at - epoch, t));
        sb_printf(&b, " (%d recipient%s: %d delivered, %d failed, %d pending; %d attempt%s)\n",
                  s->nrcpts, s->nrcpts == 1 ? "" : "s", s->delivered, s->failed, s->pending,
                  s->attempts, s->attempts == 1 ? "" : "s");
        if (s->last_note[0])
            sb_printf(&b, "  last error: %s\n", s->last_note);
        out->passed = 0;
    } else if (e->within >= 0 && e->fate != SCN_FATE_DEFERRED && s->done_at > epoch + e->within) {
        sb_printf(&b, "  message %lu: %s at %s, later than within %s\n", e->msg_id, want,
                  trace_time_str(s->done_at - epoch, t), expect_duration_str(e->within, d));
        out->passed = 0;
    } else {
        out->passed = 1;
    }
    if (!out->passed)
        out->diff = b.p;
    else
        free(b.p);
    return out->passed;
}

/* find_rec - the first record of kind/name whose field key equals value */
static const struct trace_rec *find_rec(const struct trace_store *ts, const char *kind,
                                        const char *name, const char *key, const char *value)
{
    for (size_t i = 0; i < trace_store_count(ts); i++) {
        const struct trace_rec *r = trace_store_get(ts, i);
        if (strcmp(r->kind, kind) != 0 || strcmp(r->name, name) != 0)
            continue;
        const struct trace_field *f = trace_rec_field(r, key);
        if (f && strcmp(f->str, value) == 0)
            return r;
    }
    return NULL;
}

/* check_intact - some remote received exactly the body that was injected */
static int check_intact(const struct scn_expect *e, const struct trace_store *ts,
                        struct exp_result *out)
{
    char id[32];
    snprintf(id, sizeof id, "%lu", e->msg_id);
    const struct trace_rec *inj = find_rec(ts, "inject", "message", "msg", id);
    const struct trace_field *sha = inj ? trace_rec_field(inj, "body_sha256") : NULL;
    struct sbuf b = { 0 };
    if (sha == NULL) {
        sb_printf(&b, "  message %lu was never injected\n", e->msg_id);
        out->passed = 0;
        out->diff = b.p;
        return 0;
    }
    if (find_rec(ts, "remote", "message", "body_sha256", sha->str)) {
        out->passed = 1;
        return 1;
    }
    const struct trace_field *size = trace_rec_field(inj, "size");
    sb_printf(&b, "  message %lu: no remote received its body intact\n", e->msg_id);
    sb_printf(&b, "  injected:  size=%s body_sha256=%.16s...\n", size ? size->str : "?", sha->str);
    int shown = 0;
    char t[32];
    for (size_t i = 0; i < trace_store_count(ts); i++) {
        const struct trace_rec *r = trace_store_get(ts, i);
        if (strcmp(r->kind, "remote") != 0 || strcmp(r->name, "message") != 0)
            continue;
        const struct trace_field *rs = trace_rec_field(r, "size");
        const struct trace_field *rh = trace_rec_field(r, "body_sha256");
        const struct trace_field *ra = trace_rec_field(r, "remote");
        sb_printf(&b, "  received:  size=%s body_sha256=%.16s... by %s at %s\n", rs ? rs->str : "?",
                  rh ? rh->str : "?", ra ? ra->str : "?",
                  trace_time_str(r->time - trace_store_epoch(ts), t));
        shown++;
    }
    if (!shown)
        sb_printf(&b, "  no remote accepted any message\n");
    out->passed = 0;
    out->diff = b.p;
    return 0;
}

/* is_client_rec - r is a "client NAME" record of client n (and line, if > 0) */
int is_client_rec(const struct trace_rec *r, const char *name, int n, int line)
{
    if (strcmp(r->kind, "client") != 0 || strcmp(r->name, name) != 0)
        return 0;
    const struct trace_field *fn = trace_rec_field(r, "n");
    const struct trace_field *fl = trace_rec_field(r, "line");
    return fn && fn->num == n && (line <= 0 || (fl && fl->num == line));
}

/* client_rec - the first "client NAME" record of client n (and line, if > 0) */
static const struct trace_rec *client_rec(const struct trace_store *ts, const char *name, int n,
                                          int line)
{
    for (size_t i = 0; i < trace_store_count(ts); i++) {
        const struct trace_rec *r = trace_store_get(ts, i);
        if (is_client_rec(r, name, n, line))
            return r;
    }
    return NULL;
}

/* check_client - an "expect CODE" line of a client block: the reply its
 * step received (client reply|unexpected with its line) had that code */
static int check_client(const struct scn_expect *e, const struct trace_store *ts,
                        struct exp_result *out)
{
    const struct trace_rec *ok = client_rec(ts, "reply", e->client_n, e->pos.line);
    if (ok != NULL) {
        out->passed = 1;
        return 1;
    }
    struct sbuf b = { 0 };
    char t[32];
    mta_usec_t epoch = trace_store_epoch(ts);
    const struct trace_rec *bad = client_rec(ts, "unexpected", e->client_n, e->pos.line);
    if (bad != NULL) {
        const struct trace_field *got = trace_rec_field(bad, "got");
        sb_printf(&b, "  want %d\n  got  %s  \"%s\"\n", e->want_code,
                  trace_time_str(bad->time - epoch, t), got ? got->str : "?");
    } else {
        const struct trace_rec *end = client_rec(ts, "end", e->client_n, 0);
        const struct trace_field *why = end ? trace_rec_field(end, "reason") : NULL;
        sb_printf(&b, "  want %d\n  got  no reply: ", e->want_code);
        if (end)
            sb_printf(&b, "the client's connection ended first (reason=%s at %s)\n",
                      why ? why->str : "?", trace_time_str(end->time - epoch, t));
        else
            sb_printf(&b, "the run ended while the client waited\n");
    }
    out->passed = 0;
    out->diff = b.p;
    return 0;
}

/* status_listed - the comma-separated list has exactly status */
static int status_listed(const char *list, const char *status)
{
    size_t n = strlen(status);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, status, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

/* dsn_matches - a "queue dsn" record reports what e asks for: the status
 * among its recipients' (with rcpt: that recipient's group has it) */
static int dsn_matches(const struct scn_expect *e, const struct trace_rec *r)
{
    const struct trace_field *st = trace_rec_field(r, "status");
    const struct trace_field *tx = trace_rec_field(r, "text");
    if (e->dsn_rcpt == NULL)
        return e->dsn_status == NULL || (st && status_listed(st->str, e->dsn_status));
    if (tx == NULL)
        return 0;
    /* RFC 3464 2.3: the recipient's group: Final-Recipient, Action, Status. */
    char want[700];
    snprintf(want, sizeof want, "Final-Recipient: rfc822; %.300s\r\nAction: failed\r\n%s%s%s",
             e->dsn_rcpt, e->dsn_status ? "Status: " : "", e->dsn_status ? e->dsn_status : "",
             e->dsn_status ? "\r\n" : "");
    return strstr(tx->str, want) != NULL;
}

/* check_dsn - expect [no] dsn for message ID [status S] [rcpt ADDR] */
static int check_dsn(const struct scn_expect *e, const struct trace_store *ts,
                     struct exp_result *out)
{
    size_t n = trace_store_count(ts);
    int found = 0, matched = 0;
    struct sbuf b = { 0 };
    char t[32];
    for (size_t i = 0; i < n; i++) {
        const struct trace_rec *r = trace_store_get(ts, i);
        if (strcmp(r->kind, "queue") != 0 ||
            (strcmp(r->name, "dsn") != 0 && strcmp(r->name, "no_dsn") != 0))
            continue;
        const struct trace_field *m = trace_rec_field(r, "msg");
        if (m == NULL || !m->has_num || (unsigned long)m->num != e->msg_id)
            continue;
        const char *when = trace_time_str(r->time - trace_store_epoch(ts), t);
        if (strcmp(r->name, "no_dsn") == 0) {
            const struct trace_field *why = trace_rec_field(r, "reason");
            sb_printf(&b, "  %s  no DSN made: %s\n", when, why ? why->str : "?");
            continue;
        }
        found++;
        matched += dsn_matches(e, r);
        const struct trace_field *id = trace_rec_field(r, "dsn");
        const struct trace_field *st = trace_rec_field(r, "status");
        const struct trace_field *to = trace_rec_field(r, "to");
        sb_printf(&b, "  %s  DSN %s to <%s>: status %s\n", when, id ? id->str : "?",
                  to ? to->str : "?", st ? st->str : "?");
        const struct trace_field *tx = trace_rec_field(r, "text");
        for (const char *p = tx ? strstr(tx->str, "Final-Recipient: ") : NULL; p;
             p = strstr(p + 1, "Final-Recipient: ")) {
            size_t len = strcspn(p, "\r\n");
            sb_printf(&b, "       %.*s\n", (int)len, p);
        }
    }
    out->passed = e->dsn_none ? found == 0 : matched > 0;
    if (out->passed) {
        free(b.p);
        return 1;
    }
    struct sbuf d = { 0 };
    if (e->dsn_none)
        sb_printf(&d, "  expected no DSN about message %lu, got %d:\n", e->msg_id, found);
    else if (found == 0)
        sb_printf(&d, "  no DSN about message %lu was made%s\n", e->msg_id, b.p ? ":" : "");
    else
        sb_printf(&d, "  no DSN about message %lu reports that; the %d made:\n", e->msg_id, found);
    if (b.p)
        sb_printf(&d, "%s", b.p);
    free(b.p);
    out->diff = d.p;
    return 0;
}

/* expect_what - the expectation as its failure line names it (malloc'd) */
char *expect_what(const struct scn_expect *e)
{
    struct sbuf w = { 0 };
    char d[32];
    switch (e->kind) {
    case SCN_EXPECT_HOOKS_IN_ORDER:
    case SCN_EXPECT_TRACE_IN_ORDER:
        sb_printf(&w, "expect %s in order", e->kind == SCN_EXPECT_HOOKS_IN_ORDER ? "hooks" : "trace");
        scope_text(&w, e);
        break;
    case SCN_EXPECT_HOOKS_EXACTLY:
    case SCN_EXPECT_TRACE_EXACTLY:
        sb_printf(&w, "expect %s exactly", e->kind == SCN_EXPECT_HOOKS_EXACTLY ? "hooks" : "trace");
        scope_text(&w, e);
        break;
    case SCN_EXPECT_NEVER:
    case SCN_EXPECT_COUNT: {
        char *text = expect_pattern_text(&e->patterns[0]);
        sb_printf(&w, "expect %s %s", e->kind == SCN_EXPECT_NEVER ? "never" : "count", text);
        scope_text(&w, e);
        if (e->kind == SCN_EXPECT_COUNT)
            sb_printf(&w, " %s %" PRId64, scn_op_str(e->count_op), e->count_n);
        free(text);
        break;
    }
    case SCN_EXPECT_CLIENT:
        sb_printf(&w, "client %d: expect %d", e->client_n, e->want_code);
        break;
    case SCN_EXPECT_INTACT:
        sb_printf(&w, "expect message %lu intact", e->msg_id);
        break;
    case SCN_EXPECT_DSN:
        sb_printf(&w, "expect %sdsn for message %lu", e->dsn_none ? "no " : "", e->msg_id);
        if (e->dsn_status)
            sb_printf(&w, " status %s", e->dsn_status);
        if (e->dsn_rcpt)
            sb_printf(&w, " rcpt %s", e->dsn_rcpt);
        break;
    case SCN_EXPECT_MESSAGE:
        sb_printf(&w, "expect message %lu %s", e->msg_id, scn_fate_str(e->fate));
        if (e->within >= 0)
            sb_printf(&w, " within %s", expect_duration_str(e->within, d));
        break;
    }
    /* "expect always X" names itself as written (docs/explore.md): the
     * failure says which expectations explore keeps. */
    if (e->always && w.p && strncmp(w.p, "expect ", 7) == 0) {
        struct sbuf a = { 0 };
        sb_printf(&a, "expect always %s", w.p + 7);
        free(w.p);
        return a.p;
    }
    return w.p;
}

/* expect_check - evaluate one expectation */
int expect_check(const struct scn_expect *e, const struct trace_store *ts,
                 const struct msg_summary *msgs, int nmsgs, struct exp_result *out)
{
    memset(out, 0, sizeof *out);
    out->line = e->pos.line;
    out->what = expect_what(e);
    switch (e->kind) {
    case SCN_EXPECT_HOOKS_IN_ORDER:
    case SCN_EXPECT_TRACE_IN_ORDER:
        return check_in_order(e, ts, out);
    case SCN_EXPECT_HOOKS_EXACTLY:
    case SCN_EXPECT_TRACE_EXACTLY:
        return check_exactly(e, ts, out);
    case SCN_EXPECT_NEVER:
    case SCN_EXPECT_COUNT:
        return check_never_or_count(e, ts, out);
    case SCN_EXPECT_CLIENT:
        return check_client(e, ts, out);
    case SCN_EXPECT_INTACT:
        return check_intact(e, ts, out);
    case SCN_EXPECT_DSN:
        return check_dsn(e, ts, out);
    case SCN_EXPECT_MESSAGE:
        return check_message(e, ts, msgs, nmsgs, out);
    }
    assert(0 && "unknown expectation kind");
    return 0;
}

void expect_result_free(struct exp_result *r)
{
    free(r->what);
    free(r->diff);
    r->what = r->diff = NULL;
}
