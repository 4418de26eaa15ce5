/*
 * parse_expect - the scenario parser's expectations
 *
 * DESCRIPTION
 *   "expect ..." lines and the indented pattern lines of expect blocks:
 *   hook and trace patterns, their matchers (KEY OP VALUE, CONN_ERR names
 *   checked against the core's list), scopes, "expect never", "expect
 *   count" and message fates.  Checking them against a trace is
 *   expect.c's.
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "connection.h"
#include "dsn_status.h"
#include "hook_registry.h"
#include "parse_internal.h"
#include "record_fields.h"

/* check_conn_names - every CONN_ERR/CONN_ACTION name in "A|B|C" is known */
static int check_conn_names(struct parser *p, const char *value, int col)
{
    const char *s = value;
    for (;;) {
        size_t n = strcspn(s, "|");
        char piece[80];
        if (n >= sizeof piece) {
            copy_bounded(piece, sizeof piece, s);
            return fail_at(p, col + (int)(s - value), "unknown name '%s...'", piece);
        }
        memcpy(piece, s, n);
        piece[n] = '\0';
        if (conn_err_from_name(piece) == 0) {
            /* Suggest in the spelling the user chose. */
            const char *prefix = strncmp(piece, "CONN_ERROR_", 11) == 0 ? "CONN_ERROR_" : "CONN_ERR_";
            struct suggestion sg;
            char cand[80], hint[128];
            suggest_begin(&sg, piece);
            for (int c = 1; c <= CONN_ERR__MAX; c++) {
                snprintf(cand, sizeof cand, "%s%s", prefix, conn_err_name(c) + strlen("CONN_ERR_"));
                suggest_offer(&sg, cand);
            }
            suggest_offer(&sg, "CONN_ACTION_REQUEUE1");
            suggest_offer(&sg, "CONN_ACTION_PURGE_DOMAIN");
            return fail_at(p, col + (int)(s - value), "unknown name '%s'%s", piece,
                           suggest_hint(&sg, hint, sizeof hint));
        }
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

/* starts_conn_name - the value is written as CONN_ERR/CONN_ACTION names */
static int starts_conn_name(const char *v)
{
    return strncmp(v, "CONN_ERR_", 9) == 0 || strncmp(v, "CONN_ERROR_", 11) == 0
           || strncmp(v, "CONN_ACTION_", 12) == 0;
}

/* parse_matcher - KEY OP VALUE from one token */
static int parse_matcher(struct parser *p, const struct token *t, struct scn_matcher *m)
{
    static const struct { const char *text; enum scn_op op; } ops[] = {
        /* two-character operators first, so "<=" is not "<" then "=..." */
        { "!=", SCN_OP_NE }, { "<=", SCN_OP_LE }, { ">=", SCN_OP_GE }, { "==", SCN_OP_EQ },
        { "=", SCN_OP_EQ }, { "<", SCN_OP_LT }, { ">", SCN_OP_GT }, { "~", SCN_OP_RE },
    };
    const char *raw = p->line;
    int i = t->start;
    while (i < t->end && (isalnum((unsigned char)raw[i]) || raw[i] == '_' || raw[i] == '.'
                          || raw[i] == '-'))
        i++;
    if (i == t->start || i == t->end)
        return fail_tok(p, t, "bad matcher '%s': expected KEY OP VALUE with OP one of "
                        "= != < <= > >= ~ (e.g. conn_fd>=0)", t->text);
    int op = -1, oplen = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0] && op < 0; k++) {
        size_t n = strlen(ops[k].text);
        if ((size_t)(t->end - i) >= n && strncmp(raw + i, ops[k].text, n) == 0) {
            op = (int)ops[k].op;
            oplen = (int)n;
        }
    }
    if (op < 0)
        return fail_at(p, i + 1, "bad matcher '%s': expected an operator = != < <= > >= or ~ "
                       "after '%.*s'", t->text, i - t->start, raw + t->start);
    int vstart = i + oplen;
    if (vstart == t->end)
        return fail_at(p, vstart + 1, "missing value after '%.*s'", vstart - t->start,
                       raw + t->start);

    m->key = xstrndup(raw + t->start, (size_t)(i - t->start));
    m->op = (enum scn_op)op;
    m->value = extract_text(p, vstart, t->end);
    m->pos = here(p, t->col);
    int value_quoted = raw[vstart] == '"';
    m->is_num = !value_quoted && parse_signed(m->value, &m->num);
    if (strcmp(m->key, "at") == 0) {
        /* at OP DURATION: the record's virtual time, from the epoch. */
        struct token vt = { .text = m->value, .start = vstart, .end = t->end, .col = vstart + 1 };
        if (op == SCN_OP_RE)
            return fail_at(p, i + 1, "'at' takes = != < <= > >= and a duration, not '~'");
        if (parse_duration(p, &vt, &m->num) < 0)
            return -1;
        m->is_num = m->is_time = 1;
        return 0;
    }

    if ((op == SCN_OP_LT || op == SCN_OP_LE || op == SCN_OP_GT || op == SCN_OP_GE) && !m->is_num)
        return fail_at(p, vstart + 1, "'%s' compares numbers, and '%s' is not a whole number",
                       scn_op_str(m->op), m->value);
    if (op == SCN_OP_RE && check_regex(p, m->value, vstart + 1) < 0)
        return -1;
    if ((op == SCN_OP_EQ || op == SCN_OP_NE) && !value_quoted && starts_conn_name(m->value))
        return check_conn_names(p, m->value, vstart + 1);
    return 0;
}

/* hook_known - the generated registry has a hook of this name */
static int hook_known(const char *name)
{
    for (int i = 0; hook_lists[i] != NULL; i++)
        if (strcmp(hook_lists[i]->name, name) == 0)
            return 1;
    return 0;
}

/* never_carried - a matcher or scope on key, which records of the pattern's
 * kind and name never carry, is an error: it could never hold, and "expect
 * never" with it would be silently true */
static int never_carried(struct parser *p, const struct scn_pattern *pt, const char *key, int col,
                         const char *scope)
{
    if (record_field_possible(pt->kind, pt->name, key))
        return 0;
    const char *fields = record_fields(pt->kind, pt->name);
    return fail_at(p, col, "%s%s%s'%s %s' records never carry '%s'%s%s%s", scope ? "the scope 'for " : "",
                   scope ? scope : "", scope ? "' needs a field that " : "", pt->kind, pt->name, key,
                   fields && *fields ? " (they carry: " : "", fields && *fields ? fields : "",
                   fields && *fields ? ", and at)" : "");
}

/* parse_pattern - HOOK [KEY OP VALUE]... (trace = 0) or KIND NAME
 * [KEY OP VALUE]... (trace = 1) in tokens [from, to), appended to ex */
static int parse_pattern(struct parser *p, struct scn_expect *ex, int from, int to, int trace)
{
    assert(from < to && to <= p->ntok);
    int first = 0;
    const char *kind = "hook";
    if (trace) {
        const struct token *k = &p->tok[from];
        int known = 0;
        for (int i = 0; scn_trace_kinds[i] != NULL; i++)
            if (!k->quoted && strcmp(scn_trace_kinds[i], k->text) == 0)
                known = 1, kind = scn_trace_kinds[i];
        if (!known) {
            struct suggestion sg;
            char hint[128];
            suggest_begin(&sg, k->text);
            for (int i = 0; scn_trace_kinds[i] != NULL; i++)
                suggest_offer(&sg, scn_trace_kinds[i]);
            return fail_tok(p, k, "unknown trace record kind '%s': expected hook, provider, smtp, "
                            "conn, queue, dns, remote, inject, plugin, event, inbound, mq, "
                            "client or tls%s", k->text,
                            suggest_hint(&sg, hint, sizeof hint));
        }
        if (to - from < 2)
            return fail_tok(p, k, "'%s' needs a record name after it (e.g. 'smtp send')", k->text);
        first = 1;
    }
    const struct token *t = &p->tok[from + first];
    int names_hook = strcmp(kind, "hook") == 0 || strcmp(kind, "provider") == 0;
    if (names_hook && (t->quoted || !hook_known(t->text))) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, t->text);
        for (int i = 0; hook_lists[i] != NULL; i++)
            suggest_offer(&sg, hook_lists[i]->name);
        return fail_tok(p, t, "unknown hook '%s'%s", t->text, suggest_hint(&sg, hint, sizeof hint));
    }
    if (to - from - 1 - first > SCN_MAX_MATCHERS)
        return fail_tok(p, &p->tok[from + 1 + first + SCN_MAX_MATCHERS], "too many matchers (at most %d "
                        "on a line)", SCN_MAX_MATCHERS);
    if (p->npatterns_total == SCN_MAX_PATTERNS)
        return fail_tok(p, t, "more than %d hook lines in expectations", SCN_MAX_PATTERNS);

    grow((void **)&ex->patterns, ex->npatterns, sizeof *ex->patterns);
    struct scn_pattern *pt = &ex->patterns[ex->npatterns++];
    p->npatterns_total++;
    memset(pt, 0, sizeof *pt);
    pt->kind = xstrdup(kind);
    pt->name = xstrdup(t->text);
    pt->pos = here(p, p->tok[from].col);
    for (int i = from + first + 1; i < to; i++) {
        /* Count the matcher first: a half-parsed one still owns strings. */
        struct scn_matcher *m = &pt->matchers[pt->nmatchers++];
        if (parse_matcher(p, &p->tok[i], m) < 0 || never_carried(p, pt, m->key, p->tok[i].col, NULL) < 0)
            return -1;
    }
    /* A block's scope is on its header line: point at the pattern instead. */
    int scope_col = ex->scope.pos.line == p->lineno && ex->scope.pos.file == p->file
                    ? ex->scope.pos.col : p->tok[from].col;
    if (ex->scope.key != NULL
        && never_carried(p, pt, ex->scope.key, scope_col,
                         strcmp(ex->scope.key, "msg") == 0 ? "message" : ex->scope.key) < 0)
        return -1;
    return 0;
}

/* hooks_line - one pattern line inside an "expect hooks|trace in order|exactly" block */
int hooks_line(struct parser *p)
{
    struct scn_expect *ex = &p->sc->expects[p->block_index];
    int trace = ex->kind == SCN_EXPECT_TRACE_IN_ORDER || ex->kind == SCN_EXPECT_TRACE_EXACTLY;
    return parse_pattern(p, ex, 0, p->ntok, trace);
}

/* expect_scope - "for domain D | for message N | for conn N" in tokens [a, b) */
static int expect_scope(struct parser *p, int a, int b, struct scn_expect *ex)
{
    static const struct { const char *word, *key; } scopes[] = {
        { "domain", "domain" }, { "message", "msg" }, { "conn", "conn" },
    };
    const char *usage = "for domain NAME | for message ID | for conn FD";
    if (!is_word(&p->tok[a], "for"))
        return fail_tok(p, &p->tok[a], "unexpected '%s': expected '%s'", p->tok[a].text, usage);
    if (b < a + 3)
        return fail_at(p, p->tok[b - 1].end + 1, "missing argument: expected '%s'", usage);
    if (b > a + 3)
        return fail_tok(p, &p->tok[a + 3], "unexpected '%s': expected '%s'", p->tok[a + 3].text,
                        usage);
    const struct token *what = &p->tok[a + 1], *value = &p->tok[a + 2];
    const char *key = NULL;
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (is_word(what, scopes[i].word))
            key = scopes[i].key;
    if (key == NULL) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, what->text);
        for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
            suggest_offer(&sg, scopes[i].word);
        return fail_tok(p, what, "unknown scope '%s': expected domain, message or conn%s",
                        what->text, suggest_hint(&sg, hint, sizeof hint));
    }
    unsigned long long n;
    if (strcmp(key, "domain") == 0 ? check_domain(p, value, "domain") < 0
                                   : parse_unsigned(p, value, what->text, 0, LONG_MAX, &n) < 0)
        return -1;
    ex->scope.key = xstrdup(key);
    ex->scope.value = xstrdup(value->text);
    ex->scope.pos = here(p, what->col);
    return 0;
}

/* expect_block_header - "in order | exactly [for ...]" after "expect hooks|trace" */
static int expect_block_header(struct parser *p, struct scn_expect *ex, int trace)
{
    const char *usage = trace ? "expect trace in order|exactly [for domain|message|conn VALUE]"
                              : "expect hooks in order|exactly [for domain|message|conn VALUE]";
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int next;
    if (is_word(&p->tok[2], "exactly")) {
        ex->kind = trace ? SCN_EXPECT_TRACE_EXACTLY : SCN_EXPECT_HOOKS_EXACTLY;
        next = 3;
    } else if (is_word(&p->tok[2], "in")) {
        if (need_args(p, 4, -1, usage) < 0)
            return -1;
        if (!is_word(&p->tok[3], "order"))
            return fail_tok(p, &p->tok[3], "unexpected '%s': expected '%s'", p->tok[3].text, usage);
        ex->kind = trace ? SCN_EXPECT_TRACE_IN_ORDER : SCN_EXPECT_HOOKS_IN_ORDER;
        next = 4;
    } else {
        return fail_tok(p, &p->tok[2], "unexpected '%s': expected '%s'", p->tok[2].text, usage);
    }
    return next < p->ntok ? expect_scope(p, next, p->ntok, ex) : 0;
}

/* expect_never_or_count - "expect never [trace KIND] NAME [matchers]" or
 * "expect count [trace KIND] NAME [matchers] OP N": one line, one pattern */
static int expect_never_or_count(struct parser *p, struct scn_expect *ex)
{
    int count = is_word(&p->tok[1], "count");
    const char *usage = count ? "expect count [trace KIND] NAME [KEY OP VALUE]... [for SCOPE VALUE] OP N"
                              : "expect never [trace KIND] NAME [KEY OP VALUE]... [for SCOPE VALUE]";
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int from = 2, trace = is_word(&p->tok[2], "trace");
    if (trace)
        from = 3;
    int to = p->ntok;
    ex->kind = count ? SCN_EXPECT_COUNT : SCN_EXPECT_NEVER;
    if (count) {
        /* The comparison is the last two tokens: "= 2", ">= 1". */
        if (p->ntok < from + 3)
            return fail_at(p, after_last(p), "missing comparison: expected '%s'", usage);
        const struct token *op = &p->tok[p->ntok - 2], *n = &p->tok[p->ntok - 1];
        int o = op->quoted ? -1 : parse_op(op->text);
        if (o < 0)
            return fail_tok(p, op, "expected a comparison = != < <= > >= before the count, "
                            "not '%s' (e.g. 'expect count log_delivery_v1 = 2')", op->text);
        unsigned long long v;
        if (parse_unsigned(p, n, "count", 0, 1000000000ULL, &v) < 0)
            return -1;
        ex->count_op = (enum scn_op)o;
        ex->count_n = (int64_t)v;
        to = p->ntok - 2;
    }
    /* "... for message 1" at the end of the pattern: a scope, as on blocks. */
    for (int i = from + 1; i < to; i++)
        if (is_word(&p->tok[i], "for") && !p->tok[i].quoted) {
            if (expect_scope(p, i, to, ex) < 0)
                return -1;
            to = i;
            break;
        }
    if (from >= to)
        return fail_at(p, after_last(p), "missing argument: expected '%s'", usage);
    return parse_pattern(p, ex, from, to, trace);
}

/* expect_dsn - expect [no] dsn for message ID [status S] [rcpt ADDR] */
static int expect_dsn(struct parser *p, struct scn_expect *ex)
{
    struct scn_scenario *sc = p->sc;
    int none = is_word(&p->tok[1], "no");
    int at = none ? 3 : 2;      /* the word "for" */
    const char *usage = none ? "expect no dsn for message ID"
                             : "expect dsn for message ID [status S] [rcpt ADDR]";
    if (need_args(p, at + 3, none ? at + 3 : at + 7, usage) < 0)
        return -1;
    if (!is_word(&p->tok[at], "for") || !is_word(&p->tok[at + 1], "message"))
        return fail_tok(p, &p->tok[is_word(&p->tok[at], "for") ? at + 1 : at],
                        "unexpected '%s': expected '%s'",
                        p->tok[is_word(&p->tok[at], "for") ? at + 1 : at].text, usage);
    unsigned long long id;
    if (parse_unsigned(p, &p->tok[at + 2], "message id", 1, ULONG_MAX, &id) < 0)
        return -1;
    ex->kind = SCN_EXPECT_DSN;
    ex->msg_id = (unsigned long)id;
    ex->dsn_none = none;
    for (int i = at + 3; i < p->ntok; i += 2) {
        const struct token *k = &p->tok[i];
        int status = is_word(k, "status"), rcpt = is_word(k, "rcpt");
        if ((!status && !rcpt) || (status && ex->dsn_status) || (rcpt && ex->dsn_rcpt))
            return fail_tok(p, k, "unexpected '%s': expected '%s'", k->text, usage);
        if (i + 1 >= p->ntok)
            return fail_at(p, after_last(p), "missing %s after '%s': expected '%s'",
                           status ? "a status like 5.1.1" : "an address", k->text, usage);
        const struct token *v = &p->tok[i + 1];
        if (status && !dsn_status_valid(v->text))
            return fail_tok(p, v, "bad status '%s': expected an RFC 3463 status CLASS.SUBJECT.DETAIL "
                            "with class 2, 4 or 5 (e.g. 5.1.1)", v->text);
        if (rcpt && (strchr(v->text, '@') == NULL || strpbrk(v->text, "<> ") != NULL))
            return fail_tok(p, v, "bad address '%s': expected local@domain, without <>", v->text);
        if (status)
            ex->dsn_status = xstrdup(v->text);
        else
            ex->dsn_rcpt = xstrdup(v->text);
    }
    add_ref(p, REF_MESSAGE, (int)(ex - sc->expects), here(p, p->tok[at + 2].col));
    return 0;
}

/* do_expect - expect hooks in order (a block) | expect message ID FATE [within DUR] */
static int do_expect_kind(struct parser *p);

/*
 * do_expect - an expectation; "expect always X" is X marked as holding under
 * any faults (docs/explore.md): mtasim run checks it like X, mtasim explore
 * checks only those.  "always" is dropped from the tokens, which keep their
 * columns, so X parses and reports as written.
 */
int do_expect(struct parser *p)
{
    int always = p->ntok > 1 && is_word(&p->tok[1], "always");
    if (always && p->ntok == 2)
        return fail_at(p, after_last(p), "missing argument: expected 'expect always "
                       "EXPECTATION', e.g. 'expect always message 1 delivered within 2d'");
    if (always) {
        memmove(&p->tok[1], &p->tok[2], (size_t)(p->ntok - 2) * sizeof p->tok[0]);
        p->ntok--;
    }
    int before = p->sc->nexpects;
    int rc = do_expect_kind(p);
    if (always && p->sc->nexpects > before)
        p->sc->expects[p->sc->nexpects - 1].always = 1;
    return rc;
}

/* do_expect_kind - one expectation of each kind, the words after "expect" */
static int do_expect_kind(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 2, -1, "expect hooks in order | expect message ID FATE") < 0)
        return -1;
    const struct token *what = &p->tok[1];
    if (is_word(what, "dsn") || (is_word(what, "no") && p->ntok > 2 && is_word(&p->tok[2], "dsn"))) {
        if (sc->nexpects == SCN_MAX_EXPECTS)
            return fail_tok(p, &p->tok[0], "more than %d expectations", SCN_MAX_EXPECTS);
        grow((void **)&sc->expects, sc->nexpects, sizeof *sc->expects);
        struct scn_expect *stored = &sc->expects[sc->nexpects++];
        memset(stored, 0, sizeof *stored);
        stored->pos = here(p, p->tok[0].col);
        stored->within = -1;
        return expect_dsn(p, stored);
    }
    int trace = is_word(what, "trace");
    int hooks = is_word(what, "hooks") || trace, about_message = is_word(what, "message");
    int one_line = is_word(what, "never") || is_word(what, "count");
    if (!hooks && !about_message && !one_line) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, what->text);
        suggest_offer(&sg, "hooks");
        suggest_offer(&sg, "trace");
        suggest_offer(&sg, "message");
        suggest_offer(&sg, "never");
        suggest_offer(&sg, "count");
        suggest_offer(&sg, "dsn");
        return fail_tok(p, what, "unknown expectation '%s': expected 'expect hooks|trace in "
                        "order|exactly', 'expect never', 'expect count', 'expect message ID "
                        "FATE' or 'expect [no] dsn for message ID'%s", what->text,
                        suggest_hint(&sg, hint, sizeof hint));
    }
    if (sc->nexpects == SCN_MAX_EXPECTS)
        return fail_tok(p, &p->tok[0], "more than %d expectations", SCN_MAX_EXPECTS);

    struct scn_expect ex;
    memset(&ex, 0, sizeof ex);
    ex.pos = here(p, p->tok[0].col);
    ex.within = -1;
    if (one_line || hooks) {
        /* Stored before parsing: the strings a failed parse leaves in ex
         * are then freed with the scenario. */
        grow((void **)&sc->expects, sc->nexpects, sizeof *sc->expects);
        struct scn_expect *stored = &sc->expects[sc->nexpects++];
        *stored = ex;
        if (one_line)
            return expect_never_or_count(p, stored);
        if (expect_block_header(p, stored, trace) < 0)
            return -1;
        p->block = BLOCK_HOOKS;
        p->block_index = sc->nexpects - 1;
        return 0;
    } else {
        const char *usage = "expect message ID delivered|deferred|bounced|partial|intact [within DURATION]";
        if (need_args(p, 4, 6, usage) < 0)
            return -1;
        unsigned long long id;
        if (parse_unsigned(p, &p->tok[2], "message id", 1, ULONG_MAX, &id) < 0)
            return -1;
        ex.kind = SCN_EXPECT_MESSAGE;
        ex.msg_id = (unsigned long)id;
        int fate = -1;
        if (is_word(&p->tok[3], "intact")) {
            if (need_args(p, 4, 4, "expect message ID intact") < 0)
                return -1;
            ex.kind = SCN_EXPECT_INTACT;
            fate = SCN_FATE_DELIVERED;
        }
        for (int f = SCN_FATE_DELIVERED; f <= SCN_FATE_PARTIAL && fate < 0; f++)
            if (is_word(&p->tok[3], scn_fate_str((enum scn_fate)f)))
                fate = f;
        if (fate < 0) {
            struct suggestion sg;
            char hint[128];
            suggest_begin(&sg, p->tok[3].text);
            for (int f = SCN_FATE_DELIVERED; f <= SCN_FATE_PARTIAL; f++)
                suggest_offer(&sg, scn_fate_str((enum scn_fate)f));
            suggest_offer(&sg, "intact");
            return fail_tok(p, &p->tok[3], "unknown fate '%s': expected delivered, deferred, "
                            "bounced, partial or intact%s", p->tok[3].text, suggest_hint(&sg, hint, sizeof hint));
        }
        ex.fate = (enum scn_fate)fate;
        if (p->ntok > 4) {
            if (!is_word(&p->tok[4], "within"))
                return fail_tok(p, &p->tok[4], "unexpected '%s': expected '%s'", p->tok[4].text, usage);
            if (need_args(p, 6, 6, usage) < 0 || parse_duration(p, &p->tok[5], &ex.within) < 0)
                return -1;
        }
        add_ref(p, REF_MESSAGE, sc->nexpects, here(p, p->tok[2].col));
    }
    grow((void **)&sc->expects, sc->nexpects, sizeof *sc->expects);
    sc->expects[sc->nexpects++] = ex;
    return 0;
}
