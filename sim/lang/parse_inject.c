/*
 * parse_inject - the scenario parser's inject directive
 *
 * DESCRIPTION
 *   "inject ID ..." is one message; "inject FIRST..LAST ..." the range of
 *   LAST - FIRST + 1 messages that inject_range.c (sim/scenario/) defines,
 *   whose recipients may carry one "{LO..HI}" each and whose times a
 *   "spread DUR" spreads.  A range is one line of the scenario: its
 *   messages are made by the runner as they fall due, so the limit on
 *   inject lines (SCN_MAX_INJECTS) counts lines written, not messages.
 *
 *   Ids are unique over the scenario: a hash of the single ids and the
 *   list of ranges (at most SCN_MAX_INJECT_RANGES) make each check and
 *   inject_id_known() constant time in the number of lines, so reading
 *   N inject lines is linear in N.
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse_internal.h"

/* The ids injected so far: single ids hashed (open addressing, linear
 * probing, key 0 = empty: ids are >= 1), ranges listed. */
struct inject_ids {
    unsigned long *key;
    int *index;             /* sc->injects[index] injected key */
    size_t cap, n;
    int ranges[SCN_MAX_INJECT_RANGES];
    int nranges;
    unsigned long total;    /* messages of all lines */
};

static size_t id_slot(const struct inject_ids *ids, unsigned long id)
{
    uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ULL;
    size_t i = (size_t)(h >> 20) & (ids->cap - 1);
    while (ids->key[i] != 0 && ids->key[i] != id)
        i = (i + 1) & (ids->cap - 1);
    return i;
}

static void id_add(struct inject_ids *ids, unsigned long id, int index)
{
    if (2 * (ids->n + 1) > ids->cap) {
        struct inject_ids old = *ids;
        ids->cap = old.cap ? 2 * old.cap : 64;
        ids->key = calloc(ids->cap, sizeof *ids->key);
        ids->index = calloc(ids->cap, sizeof *ids->index);
        if (ids->key == NULL || ids->index == NULL)
            abort();
        for (size_t i = 0; i < old.cap; i++)
            if (old.key[i] != 0) {
                size_t k = id_slot(ids, old.key[i]);
                ids->key[k] = old.key[i];
                ids->index[k] = old.index[i];
            }
        free(old.key);
        free(old.index);
    }
    size_t k = id_slot(ids, id);
    ids->key[k] = id;
    ids->index[k] = index;
    ids->n++;
}

/* id_owner - the index of the inject line whose ids hold id, -1 if none */
static int id_owner(const struct parser *p, unsigned long id)
{
    const struct inject_ids *ids = p->inject_ids;
    if (ids == NULL)
        return -1;
    if (ids->cap > 0) {
        size_t k = id_slot(ids, id);
        if (ids->key[k] == id)
            return ids->index[k];
    }
    for (int r = 0; r < ids->nranges; r++) {
        const struct scn_inject *in = &p->sc->injects[ids->ranges[r]];
        if (id >= in->id && id - in->id < in->count)
            return ids->ranges[r];
    }
    return -1;
}

/* inject_id_known - some inject line makes message id */
int inject_id_known(const struct parser *p, unsigned long id)
{
    return id_owner(p, id) >= 0;
}

void inject_ids_free(struct parser *p)
{
    if (p->inject_ids) {
        free(p->inject_ids->key);
        free(p->inject_ids->index);
        free(p->inject_ids);
        p->inject_ids = NULL;
    }
}

/* ids_clash - [first, last] holds an id already injected: the error */
static int ids_clash(struct parser *p, const struct token *t, unsigned long first,
                     unsigned long last)
{
    const struct scn_scenario *sc = p->sc;
    if (p->inject_ids == NULL) {
        p->inject_ids = calloc(1, sizeof *p->inject_ids);
        if (p->inject_ids == NULL)
            abort();
    }
    const struct inject_ids *ids = p->inject_ids;
    int other = -1;
    unsigned long at = 0;
    if (first == last) {
        other = id_owner(p, first);
        at = first;
    } else {
        /* A range against every single id (a range line is rare: at most
         * SCN_MAX_INJECT_RANGES of them), then against the other ranges. */
        for (size_t i = 0; i < ids->cap && other < 0; i++)
            if (ids->key[i] >= first && ids->key[i] <= last) {
                other = ids->index[i];
                at = ids->key[i];
            }
        for (int r = 0; r < ids->nranges && other < 0; r++) {
            const struct scn_inject *in = &sc->injects[ids->ranges[r]];
            unsigned long lo = in->id, hi = in->id + in->count - 1;
            if (lo <= last && first <= hi) {
                other = ids->ranges[r];
                at = lo > first ? lo : first;
            }
        }
    }
    if (other < 0)
        return 0;
    return fail_tok(p, t, "message %lu already injected at %s:%d", at,
                    sc->injects[other].pos.file, sc->injects[other].pos.line);
}

/* inject_id_range - ID or FIRST..LAST into [*first, *last] */
static int inject_id_range(struct parser *p, const struct token *t, unsigned long long *first,
                           unsigned long long *last)
{
    const char *dots = t->quoted ? NULL : strstr(t->text, "..");
    if (dots == NULL) {
        /* Ids above MTA_DSN_ID_BASE are the DSNs the core makes (docs/queue.md). */
        if (parse_unsigned(p, t, "message id", 1, MTA_DSN_ID_BASE, first) < 0)
            return -1;
        *last = *first;
        return 0;
    }
    char a[32], b[32];
    size_t alen = (size_t)(dots - t->text), blen = strlen(dots + 2);
    int ok = alen > 0 && alen < sizeof a && blen > 0 && blen < sizeof b;
    if (ok) {
        memcpy(a, t->text, alen);
        a[alen] = '\0';
        memcpy(b, dots + 2, blen + 1);
        struct token ta = *t, tb = *t;
        ta.text = a;
        tb.text = b;
        tb.col = t->col + (int)alen + 2;
        if (parse_unsigned(p, &ta, "first message id", 1, MTA_DSN_ID_BASE, first) < 0 ||
            parse_unsigned(p, &tb, "last message id", 1, MTA_DSN_ID_BASE, last) < 0)
            return -1;
        ok = *first < *last;
    }
    if (!ok)
        return fail_tok(p, t, "bad message id range '%s': expected FIRST..LAST, "
                        "1 <= FIRST < LAST <= %lu", t->text, MTA_DSN_ID_BASE);
    return 0;
}

/* rcpt_range - the "{LO..HI}" of a range line's recipient addr (written at
 * col): found into *g, the address checked with LO and with HI in its
 * place; without one *g says none (hi < lo).  0, or -1 on an error. */
static int rcpt_range(struct parser *p, const char *addr, int col, struct scn_rcpt_range *g)
{
    g->lo = 1;
    g->hi = 0;
    const char *open = strchr(addr, '{');
    if (open == NULL)
        return 0;
    const char *close = strchr(open, '}');
    unsigned long lo = 0, hi = 0;
    int n = 0;
    if (close == NULL || sscanf(open, "{%lu..%lu}%n", &lo, &hi, &n) != 2 ||
        open + n != close + 1 || !isdigit((unsigned char)open[1]) || lo > hi ||
        hi > 999999999UL || strchr(close + 1, '{') != NULL)
        return fail_at(p, col + 1 + (int)(open - addr), "bad recipient range: expected one "
                       "{LO..HI}, 0 <= LO <= HI <= 999999999");
    g->at = (size_t)(open - addr);
    g->end = (size_t)(close + 1 - addr);
    g->lo = lo;
    g->hi = hi;
    char buf[600];
    for (int end = 0; end < 2; end++) {
        snprintf(buf, sizeof buf, "%.*s%lu%s", (int)g->at, addr, end ? hi : lo, addr + g->end);
        const char *why = mta_address_check(buf, 1);
        if (why != NULL)
            return fail_at(p, col, "bad recipient '%.40s...': %s", buf, why);
    }
    return 0;
}

/* check_mailbox - "<local@domain>" (rcpt) or any "<...>" (sender) */
static int check_mailbox(const char *s, size_t n, int need_domain)
{
    if (n < 2 || s[0] != '<' || s[n - 1] != '>')
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (s[i] == '<' || s[i] == '>' || s[i] == ',' || (unsigned char)s[i] < 0x21)
            return 0;
    if (!need_domain)
        return 1;
    /* The domain follows the last '@'; both sides must be non-empty. */
    const char *at = NULL;
    for (size_t i = 1; i + 1 < n; i++)
        if (s[i] == '@')
            at = s + i;
    return at != NULL && at > s + 1 && at < s + n - 2;
}

/* inject_rcpts - the recipient tokens [a, b): addresses separated by
 * commas and/or blanks; on a range line each may hold a "{LO..HI}" */
static int inject_rcpts(struct parser *p, struct scn_inject *in, int a, int b, int is_range)
{
    for (int i = a; i < b; i++) {
        const struct token *t = &p->tok[i];
        if (t->quoted)
            return fail_tok(p, t, "bad recipient '%s': write addresses as <local@domain>, "
                            "without quotes", t->text);
        const char *s = t->text;
        size_t len = strlen(s);
        for (size_t off = 0; off <= len;) {
            size_t n = strcspn(s + off, ",");
            int edge = off == 0 || off + n == len;   /* next to a blank: "a, b" */
            if (n == 0 && !edge)
                return fail_at(p, t->col + (int)off, "empty recipient between commas");
            if (n > 0) {
                if (!check_mailbox(s + off, n, 1))
                    return fail_at(p, t->col + (int)off, "bad recipient '%.*s': expected "
                                   "<local@domain>", (int)n, s + off);
                char *addr = xstrndup(s + off + 1, n - 2);
                if (is_range) {
                    grow((void **)&in->ranges, in->nrcpts, sizeof *in->ranges);
                    if (rcpt_range(p, addr, t->col + (int)off, &in->ranges[in->nrcpts]) < 0) {
                        free(addr);
                        return -1;
                    }
                }
                const char *why = is_range && in->ranges[in->nrcpts].lo <= in->ranges[in->nrcpts].hi
                    ? NULL : mta_address_check(addr, 1);
                if (why != NULL) {
                    free(addr);
                    return fail_at(p, t->col + (int)off, "bad recipient '%.40s...': %s",
                                   s + off, why);
                }
                grow((void **)&in->rcpts, in->nrcpts, sizeof *in->rcpts);
                in->rcpts[in->nrcpts++] = addr;
            }
            off += n + 1;
        }
    }
    if (in->nrcpts == 0)
        return fail_at(p, p->tok[a - 1].end + 1, "missing recipient: expected 'to <local@domain>'");
    return 0;
}

/* inject_body_file - body-file PATH, relative to the file naming it */
static int inject_body_file(struct parser *p, struct scn_inject *in, const struct token *t)
{
    size_t len = 0;
    char *body = read_relative(p, t, "body", &len);
    if (body == NULL)
        return -1;
    in->body = body;
    in->body_len = len;
    return 0;
}

/* dsn_notify_ok - NEVER, or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1) */
static int dsn_notify_ok(const char *v)
{
    if (strcasecmp(v, "NEVER") == 0)
        return 1;
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (!((n == 7 && strncasecmp(p, "SUCCESS", 7) == 0) ||
              (n == 7 && strncasecmp(p, "FAILURE", 7) == 0) ||
              (n == 5 && strncasecmp(p, "DELAY", 5) == 0)))
            return 0;
        p += n;
        if (*p == ',' && *++p == '\0')
            return 0;
    }
    return *v != '\0';
}

static char *upper_dup(const char *s)
{
    char *u = xstrdup(s);
    for (char *q = u; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    return u;
}

/* do_inject - inject ID|FIRST..LAST from <A> to <B>[,<C>...] [at DUR] [spread DUR]
 * [binding NAME] [body|body-file|size] [notify|ret|envid] [chunking] [deliver-by DUR] */
int do_inject(struct parser *p)
{
    const char *usage = "inject ID|FIRST..LAST from <ADDR> to <ADDR>[,<ADDR>...] [at DURATION] "
                        "[spread DURATION] [binding NAME] [body \"TEXT\" | body-file PATH | size N] "
                        "[notify SUCCESS,FAILURE,DELAY|NEVER] [ret FULL|HDRS] [envid TEXT] "
                        "[chunking] [deliver-by DURATION]";
    enum { NOPTIONS = 11, OPT_CHUNKING = 8, OPT_SPREAD = 10 };
    static const char *const options[NOPTIONS] = { "at", "binding", "body", "body-file", "size",
                                                   "notify", "ret", "envid", "chunking",
                                                   "deliver-by", "spread" };
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 6, -1, usage) < 0)
        return -1;
    unsigned long long id, last;
    if (inject_id_range(p, &p->tok[1], &id, &last) < 0 ||
        ids_clash(p, &p->tok[1], (unsigned long)id, (unsigned long)last) < 0)
        return -1;
    int is_range = last > id;
    if (is_range && p->inject_ids->nranges == SCN_MAX_INJECT_RANGES)
        return fail_tok(p, &p->tok[1], "more than %d inject ranges", SCN_MAX_INJECT_RANGES);
    /* The run keeps a summary per message (its int counts bound this). */
    if (last - id + 1 > SCN_MAX_INJECT_MESSAGES - p->inject_ids->total)
        return fail_tok(p, &p->tok[1], "more than %lu messages injected in all",
                        SCN_MAX_INJECT_MESSAGES);
    p->inject_ids->total += (unsigned long)(last - id + 1);
    if (!is_word(&p->tok[2], "from"))
        return fail_tok(p, &p->tok[2], "unexpected '%s': expected 'from <ADDR>'", p->tok[2].text);
    const struct token *from = &p->tok[3];
    if (from->quoted || !check_mailbox(from->text, strlen(from->text), 0))
        return fail_tok(p, from, "bad sender '%s': expected <local@domain> or <> for the null "
                        "sender", from->text);
    char *sender = xstrndup(from->text + 1, strlen(from->text) - 2);
    const char *why = mta_address_check(sender, 0);
    free(sender);
    if (why != NULL)
        return fail_tok(p, from, "bad sender '%.40s...': %s", from->text, why);
    if (!is_word(&p->tok[4], "to"))
        return fail_tok(p, &p->tok[4], "unexpected '%s': expected 'to <ADDR>'", p->tok[4].text);
    if (sc->ninjects == SCN_MAX_INJECTS)
        return fail_tok(p, &p->tok[0], "more than %d injects", SCN_MAX_INJECTS);

    /* The recipients: tokens that start with '<' or ',', or follow one
     * that ends with ','.  The first token after "to" is one regardless,
     * so "to bob@example.com" is a bad recipient, not an unknown option. */
    int rcpt_end = 6;
    while (rcpt_end < p->ntok) {
        const char *prev = p->tok[rcpt_end - 1].text, *cur = p->tok[rcpt_end].text;
        size_t plen = strlen(prev);
        if (cur[0] != '<' && cur[0] != ',' && (plen == 0 || prev[plen - 1] != ','))
            break;
        rcpt_end++;
    }

    /* From here on the inject is in the scenario, so an error frees it. */
    grow((void **)&sc->injects, sc->ninjects, sizeof *sc->injects);
    struct scn_inject *in = &sc->injects[sc->ninjects++];
    memset(in, 0, sizeof *in);
    in->id = (unsigned long)id;
    in->count = (unsigned long)(last - id + 1);
    if (is_range)
        p->inject_ids->ranges[p->inject_ids->nranges++] = sc->ninjects - 1;
    else
        id_add(p->inject_ids, in->id, sc->ninjects - 1);
    in->from = xstrndup(from->text + 1, strlen(from->text) - 2);
    in->size = -1;
    in->pos = here(p, p->tok[0].col);
    if (inject_rcpts(p, in, 5, rcpt_end, is_range) < 0)
        return -1;

    int seen[NOPTIONS] = { 0 };
    const struct token *body_choice = NULL;
    for (int i = rcpt_end; i < p->ntok; i += 2) {
        const struct token *t = &p->tok[i];
        int k = -1;
        for (int j = 0; j < NOPTIONS; j++)
            if (is_word(t, options[j]))
                k = j;
        if (k < 0) {
            struct suggestion sg;
            char hint[128];
            suggest_begin(&sg, t->text);
            for (int j = 0; j < NOPTIONS; j++)
                suggest_offer(&sg, options[j]);
            return fail_tok(p, t, "unexpected '%s': expected at, spread, binding, body, "
                            "body-file, size, notify, ret, envid, chunking or deliver-by%s", t->text,
                            suggest_hint(&sg, hint, sizeof hint));
        }
        if (seen[k]++)
            return fail_tok(p, t, "'%s' given twice", options[k]);
        if (k == OPT_CHUNKING) {        /* a flag: no value follows */
            in->chunking = 1;
            i--;
            continue;
        }
        if (k >= 2 && k <= 4) {
            if (body_choice != NULL)
                return fail_tok(p, t, "'%s' and '%s' exclude each other: give one body",
                                body_choice->text, t->text);
            body_choice = t;
        }
        if (i + 1 >= p->ntok)
            return fail_at(p, t->end + 1, "missing value after '%s'", t->text);
        const struct token *v = &p->tok[i + 1];
        unsigned long long size;
        switch (k) {
        case 0:
            if (parse_duration(p, v, &in->at) < 0)
                return -1;
            break;
        case 1:
            if (check_name(p, v, "binding name", "._-") < 0)
                return -1;
            in->binding = xstrdup(v->text);
            add_ref(p, REF_BINDING, sc->ninjects - 1, here(p, v->col));
            break;
        case 2:
            in->body = xstrdup(v->text);
            in->body_len = strlen(v->text);
            break;
        case 3:
            if (inject_body_file(p, in, v) < 0)
                return -1;
            break;
        case 4:
            if (parse_unsigned(p, v, "size", 0, SCN_MAX_FILE_SIZE, &size) < 0)
                return -1;
            in->size = (long)size;
            break;
        case 5:
            if (!dsn_notify_ok(v->text))
                return fail_tok(p, v, "bad notify '%s': expected NEVER or a comma list of "
                                "SUCCESS, FAILURE and DELAY", v->text);
            in->dsn_notify = upper_dup(v->text);
            break;
        case 6:
            if (strcasecmp(v->text, "FULL") != 0 && strcasecmp(v->text, "HDRS") != 0)
                return fail_tok(p, v, "bad ret '%s': expected FULL or HDRS", v->text);
            in->dsn_ret = upper_dup(v->text);
            break;
        case 7:
            /* RFC 3461 4.4: at most 100 characters of printable US-ASCII. */
            if (v->text[0] == '\0' || strlen(v->text) > 100)
                return fail_tok(p, v, "bad envid: expected 1 to 100 characters");
            for (const char *c = v->text; *c; c++)
                if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
                    return fail_tok(p, v, "bad envid: printable US-ASCII only");
            in->dsn_envid = xstrdup(v->text);
            break;
        case 9:
            if (parse_duration(p, v, &in->deliver_by) < 0)
                return -1;
            if (in->deliver_by < 1000000 || in->deliver_by % 1000000 != 0)
                return fail_tok(p, v, "deliver-by takes whole seconds, at least 1s");
            break;
        case OPT_SPREAD:
            if (!is_range)
                return fail_tok(p, t, "'spread' needs a range of messages: inject FIRST..LAST");
            if (parse_duration(p, v, &in->spread) < 0)
                return -1;
            break;
        }
    }
    return 0;
}

