/*
 * parse_remote - the scenario parser's remote blocks
 *
 * DESCRIPTION
 *   "remote ADDR [name HOST]" and the indented block under it: scripted
 *   replies (multi-line replies are collected in struct parser's pending
 *   reply until their last line), their clauses (delay, when CONDITION,
 *   probability), actions (reset, drop, close, raw), "after CMD N",
 *   connect modes, network faults and the remote's settings.
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_internal.h"

/* pending_free - drop an unfinished multi-line reply */
void pending_free(struct parser *p)
{
    if (p->pending.lines != NULL)
        for (int i = 0; i < p->pending.nlines; i++)
            free(p->pending.lines[i]);
    free(p->pending.lines);
    memset(&p->pending, 0, sizeof p->pending);
    p->has_pending = 0;
}


/* cond_allowed - the conditions a reply to cmd may use; cmd < 0: a network fault */
static unsigned cond_allowed(int cmd)
{
    unsigned m = COND_SESSION;
    if (cmd < 0)
        return m;
    m |= COND_NTH;
    /* The attempt is fixed at the first RCPT, so only what follows it. */
    if (cmd == SCN_CMD_RCPT || cmd == SCN_CMD_DATA || cmd == SCN_CMD_DOT)
        m |= COND_ATTEMPT;
    /* A transaction opens with MAIL and ends with the reply to its dot. */
    if (cmd == SCN_CMD_MAIL || cmd == SCN_CMD_RCPT || cmd == SCN_CMD_DATA || cmd == SCN_CMD_DOT)
        m |= COND_TRANSACTION;
    if (cmd == SCN_CMD_RCPT)
        m |= COND_RCPT;
    return m;
}

/*
 * parse_conds - "COND [and COND]..." in tokens [a, b), COND one of
 * session|attempt|nth|transaction|query [OP] N, rcpt [OP] N and
 * rcpt ~ REGEX; allowed says which (COND_* bits)
 */
int parse_conds(struct parser *p, int a, int b, struct scn_cond *conds, int *nconds,
                unsigned allowed)
{
    static const struct { const char *word; enum scn_cond_kind kind; unsigned bit; } kinds[] = {
        { "session", SCN_COND_SESSION, COND_SESSION }, { "attempt", SCN_COND_ATTEMPT, COND_ATTEMPT },
        { "nth", SCN_COND_NTH, COND_NTH }, { "rcpt", SCN_COND_RCPT, COND_RCPT },
        { "transaction", SCN_COND_TRANSACTION, COND_TRANSACTION },
        { "query", SCN_COND_QUERY, COND_QUERY },
    };
    const char *usage = allowed == COND_QUERY ? "when query OP N [and query OP N]..."
        : "when session|attempt|nth|transaction OP N | rcpt OP N | rcpt ~ REGEX [and ...]";
    int i = a;
    if (i == b)
        return fail_at(p, p->tok[a - 1].end + 1, "missing condition: expected '%s'", usage);
    for (;;) {
        int k = -1;
        for (int j = 0; j < (int)(sizeof kinds / sizeof kinds[0]); j++)
            if (is_word(&p->tok[i], kinds[j].word))
                k = j;
        if (k < 0 || (allowed == COND_QUERY && kinds[k].bit != COND_QUERY))
            return fail_tok(p, &p->tok[i], "unknown condition '%s': expected '%s'",
                            p->tok[i].text, usage);
        if (!(allowed & kinds[k].bit)) {
            const char *why = allowed == COND_SESSION
                ? "a network fault or a tls line takes only 'session' conditions"
                : kinds[k].kind == SCN_COND_RCPT ? "'rcpt' conditions apply to rcpt replies only"
                : kinds[k].kind == SCN_COND_QUERY ? "'query' conditions apply to dns lines only"
                : kinds[k].kind == SCN_COND_TRANSACTION
                ? "'transaction' applies to mail, rcpt, data and dot replies"
                : "'attempt' applies to rcpt, data and dot replies (it is known from the first RCPT)";
            return fail_tok(p, &p->tok[i], "%s", why);
        }
        if (*nconds == SCN_MAX_CONDS)
            return fail_tok(p, &p->tok[i], "too many conditions (at most %d)", SCN_MAX_CONDS);
        struct scn_cond *c = &conds[*nconds];
        memset(c, 0, sizeof *c);
        c->kind = kinds[k].kind;
        c->op = SCN_OP_EQ;
        i++;
        if (c->kind == SCN_COND_RCPT && i < b && is_word(&p->tok[i], "~")) {
            if (++i == b)
                return fail_at(p, p->tok[i - 1].end + 1, "missing regular expression after '~'");
            if (check_regex(p, p->tok[i].text, p->tok[i].col) < 0)
                return -1;
            c->op = SCN_OP_RE;
            c->regex = xstrdup(p->tok[i].text);
        } else {
            /* "rcpt OP N": the recipient's number in its transaction. */
            if (c->kind == SCN_COND_RCPT)
                c->kind = SCN_COND_RCPT_NUM;
            if (i < b && !p->tok[i].quoted && parse_op(p->tok[i].text) >= 0)
                c->op = (enum scn_op)parse_op(p->tok[i++].text);
            if (i == b)
                return fail_at(p, p->tok[i - 1].end + 1, "missing number: expected '%s'", usage);
            unsigned long long v;
            if (parse_unsigned(p, &p->tok[i], "condition number", 0, LONG_MAX, &v) < 0)
                return -1;
            c->value = (long)v;
        }
        (*nconds)++;
        if (++i == b)
            return 0;
        if (!is_word(&p->tok[i], "and"))
            return fail_tok(p, &p->tok[i], "unexpected '%s': conditions are joined with 'and'",
                            p->tok[i].text);
        if (++i == b)
            return fail_at(p, p->tok[i - 1].end + 1, "missing condition after 'and'");
    }
}

/*
 * reply_clauses - the clauses at the end of a scripted line, tokens
 * [min, ntok): delay DUR, probability P, when COND...; on return *text_end
 * is where they start (ntok when there are none)
 */
static int reply_clauses(struct parser *p, int min, int cmd, struct scn_reply *clauses,
                         int *text_end)
{
    int has_delay = 0, has_when = 0, has_prob = 0;
    *text_end = p->ntok;
    for (;;) {
        int te = *text_end;
        if (te - 2 >= min && is_word(&p->tok[te - 2], "delay")) {
            if (has_delay)
                return fail_tok(p, &p->tok[te - 2], "'delay' given twice");
            if (parse_duration(p, &p->tok[te - 1], &clauses->delay) < 0)
                return -1;
            has_delay = 1;
            *text_end = te - 2;
            continue;
        }
        if (te - 2 >= min && is_word(&p->tok[te - 2], "probability")) {
            if (has_prob)
                return fail_tok(p, &p->tok[te - 2], "'probability' given twice");
            if (parse_probability(p, &p->tok[te - 1], &clauses->ppm) < 0)
                return -1;
            has_prob = clauses->has_ppm = 1;
            *text_end = te - 2;
            continue;
        }
        int w = -1;
        for (int i = te - 1; i >= min && w < 0; i--)
            if (is_word(&p->tok[i], "when"))
                w = i;
        if (w < 0)
            return 0;
        if (has_when)
            return fail_tok(p, &p->tok[w], "'when' given twice; join conditions with 'and'");
        if (parse_conds(p, w + 1, te, clauses->conds, &clauses->nconds, cond_allowed(cmd)) < 0)
            return -1;
        has_when = 1;
        *text_end = w;
    }
}

/* reply_add - a finished scripted line joins the remote's script */
static int reply_add(struct parser *p, struct scn_reply *r)
{
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    if (rm->nreplies == SCN_MAX_REPLIES) {
        scn_conds_free(r->conds, r->nconds);
        return fail_tok(p, &p->tok[0], "more than %d replies for one remote", SCN_MAX_REPLIES);
    }
    grow((void **)&rm->replies, rm->nreplies, sizeof *rm->replies);
    rm->replies[rm->nreplies++] = *r;
    return 0;
}

/*
 * remote_action - CMD reset|drop|close|raw "BYTES" [clauses], and
 * "after CMD [N] reset|drop|close [clauses]" (first = the action's token,
 * nth = N or 0)
 */
static int remote_action(struct parser *p, enum scn_cmd cmd, int first, long nth)
{
    static const struct { const char *word; enum scn_action action; } actions[] = {
        { "reset", SCN_ACTION_RESET }, { "drop", SCN_ACTION_DROP }, { "close", SCN_ACTION_CLOSE },
        { "raw", SCN_ACTION_RAW },
    };
    struct scn_reply r;
    memset(&r, 0, sizeof r);
    r.cmd = cmd;
    r.pos = here(p, p->tok[0].col);
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (is_word(&p->tok[first], actions[i].word))
            r.action = actions[i].action;
    assert(r.action != SCN_ACTION_REPLY);
    if (nth > 0) {
        if (r.action == SCN_ACTION_RAW)
            return fail_tok(p, &p->tok[first], "'after' takes reset, drop or close, not raw");
        r.conds[0].kind = SCN_COND_NTH;
        r.conds[0].op = SCN_OP_EQ;
        r.conds[0].value = nth;
        r.nconds = 1;
    }
    int args = first + 1 + (r.action == SCN_ACTION_RAW);
    if (r.action == SCN_ACTION_RAW && (p->ntok <= first + 1 || !p->tok[first + 1].whole_quoted))
        return fail_at(p, p->ntok <= first + 1 ? after_last(p) : p->tok[first + 1].col,
                       "'raw' wants one \"quoted string\": the bytes to send, e.g. "
                       "raw \"2x0 odd\\r\\n\"");
    int text_end;
    if (reply_clauses(p, args, cmd, &r, &text_end) < 0) {
        scn_conds_free(r.conds, r.nconds);
        return -1;
    }
    if (text_end != args) {
        scn_conds_free(r.conds, r.nconds);
        return fail_tok(p, &p->tok[args], "unexpected '%s': expected delay, probability or "
                        "when clauses", p->tok[args].text);
    }
    if (r.action == SCN_ACTION_RAW) {
        const char *bytes = p->tok[first + 1].text;
        r.raw_len = strlen(bytes);
        if (r.raw_len == 0) {
            scn_conds_free(r.conds, r.nconds);
            return fail_tok(p, &p->tok[first + 1], "'raw' needs at least one byte");
        }
        r.lines = xmalloc(sizeof *r.lines);
        r.lines[0] = xstrdup(bytes);
        r.nlines = 1;
        /* The state machine reads the code from the first three bytes. */
        r.code = isdigit((unsigned char)bytes[0]) && r.raw_len >= 3
                 && isdigit((unsigned char)bytes[1]) && isdigit((unsigned char)bytes[2])
                 ? (bytes[0] - '0') * 100 + (bytes[1] - '0') * 10 + (bytes[2] - '0') : 0;
    }
    if (reply_add(p, &r) < 0) {
        if (r.lines) {
            free(r.lines[0]);
            free(r.lines);
        }
        return -1;
    }
    return 0;
}

/* remote_after - after CMD [N] reset|drop|close [clauses]: the N-th CMD is never answered */
static int remote_after(struct parser *p)
{
    const char *usage = "after CMD [N] reset|drop|close [delay DURATION] [when ...]";
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int cmd = -1;
    for (int c = 0; c < SCN_CMD__COUNT; c++)
        if (is_word(&p->tok[1], scn_cmd_names[c]) && c != SCN_CMD_GREET)
            cmd = c;
    if (cmd < 0)
        return fail_tok(p, &p->tok[1], "unknown command '%s' after 'after': expected ehlo helo "
                        "mail rcpt data dot rset noop quit unknown", p->tok[1].text);
    int i = 2;
    unsigned long long nth = 1;
    if (isdigit((unsigned char)p->tok[2].text[0])) {
        if (parse_unsigned(p, &p->tok[2], "command number", 1, LONG_MAX, &nth) < 0)
            return -1;
        i = 3;
    }
    if (i >= p->ntok)
        return fail_at(p, after_last(p), "missing action: expected '%s'", usage);
    if (!is_word(&p->tok[i], "reset") && !is_word(&p->tok[i], "drop")
        && !is_word(&p->tok[i], "close"))
        return fail_tok(p, &p->tok[i], "unknown action '%s': expected reset, drop or close",
                        p->tok[i].text);
    return remote_action(p, (enum scn_cmd)cmd, i, (long)nth);
}

/*
 * remote_reply - CMD CODE[-| ]TEXT [delay DUR] [when COND [and COND]...]
 *
 * Clauses are taken from the end of the line, so the text before them can
 * be anything; a text that must contain "delay" or "when" as a word in a
 * clause position is written as a "quoted string".
 */
static int remote_reply(struct parser *p, enum scn_cmd cmd)
{
    const char *usage = "CMD CODE TEXT [delay DURATION] [probability P] [when COND]";
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    /* Another command ends an unfinished multi-line reply: say so before
     * anything else on this line is judged. */
    if (p->has_pending && p->pending.cmd != cmd)
        return close_block(p, 0);
    if (need_args(p, 2, -1, usage) < 0)
        return -1;
    if (!p->has_pending && (is_word(&p->tok[1], "reset") || is_word(&p->tok[1], "drop")
                            || is_word(&p->tok[1], "close") || is_word(&p->tok[1], "raw")))
        return remote_action(p, cmd, 1, 0);
    const struct token *ct = &p->tok[1];
    /* The code is judged on the raw line: in 250-"text" only the text is quoted. */
    const char *c = p->line + ct->start;
    int clen = ct->end - ct->start;
    int shape_ok = clen >= 3 && isdigit((unsigned char)c[0]) && isdigit((unsigned char)c[1])
                   && isdigit((unsigned char)c[2]) && (clen == 3 || c[3] == '-');
    if (!shape_ok)
        return fail_tok(p, ct, "bad reply code '%s': expected three digits followed by a "
                        "blank or '-'", ct->text);
    int code = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    if (code < 100 || code > 599)
        return fail_tok(p, ct, "reply code %d outside 100-599", code);
    /* c[3] only when the token has it: the line may end the buffer. */
    int continued = clen > 3 && c[3] == '-';

    /* Clauses, from the end of the line; tokens [2, text_end) are the text. */
    struct scn_reply clauses;
    memset(&clauses, 0, sizeof clauses);
    int text_end;
    if (reply_clauses(p, 2, cmd, &clauses, &text_end) < 0) {
        scn_conds_free(clauses.conds, clauses.nconds);
        return -1;
    }
    /* From here on every error path frees the clauses' regexes. */
    if (continued && text_end < p->ntok) {
        scn_conds_free(clauses.conds, clauses.nconds);
        return fail_tok(p, &p->tok[text_end],
                        "'%s' belongs on the last line of a multi-line reply",
                        p->tok[text_end].text);
    }

    /* Checks on the reply being built come before anything is allocated. */
    if (p->has_pending) {
        assert(p->pending.cmd == cmd);
        if (p->pending.code != code || p->pending.nlines == SCN_MAX_REPLY_LINES)
            scn_conds_free(clauses.conds, clauses.nconds);
        if (p->pending.code != code)
            return fail_tok(p, ct, "reply code %d does not continue the %d reply from line %d",
                            code, p->pending.code, p->pending.pos.line);
        if (p->pending.nlines == SCN_MAX_REPLY_LINES)
            return fail_tok(p, ct, "reply longer than %d lines", SCN_MAX_REPLY_LINES);
    } else if (rm->nreplies == SCN_MAX_REPLIES) {
        scn_conds_free(clauses.conds, clauses.nconds);
        return fail_tok(p, &p->tok[0], "more than %d replies for one remote", SCN_MAX_REPLIES);
    }

    int s = continued ? ct->start + 4 : text_end > 2 ? p->tok[2].start : ct->end;
    int e = text_end > 2 ? p->tok[text_end - 1].end : ct->end;
    char *text = extract_text(p, s, e);
    if (strpbrk(text, "\r\n") != NULL) {
        free(text);
        scn_conds_free(clauses.conds, clauses.nconds);
        return fail_at(p, s + 1, "reply text may not contain CR or LF");
    }
    size_t wire_len = strlen(text) + 5;
    char *wire = xmalloc(wire_len);
    if (!continued && text[0] == '\0')
        snprintf(wire, wire_len, "%03d", code);
    else
        snprintf(wire, wire_len, "%03d%c%s", code, continued ? '-' : ' ', text);
    free(text);

    if (!p->has_pending) {
        p->has_pending = 1;
        p->pending.cmd = cmd;
        p->pending.code = code;
        p->pending.lines = xmalloc(SCN_MAX_REPLY_LINES * sizeof *p->pending.lines);
        p->pending.pos = here(p, p->tok[0].col);
    }
    p->pending.lines[p->pending.nlines++] = wire;
    p->pending_last = here(p, ct->col);
    if (continued)
        return 0;

    /* The last line: the reply is complete and joins the remote's script. */
    p->pending.delay = clauses.delay;
    p->pending.has_ppm = clauses.has_ppm;
    p->pending.ppm = clauses.ppm;
    p->pending.nconds = clauses.nconds;
    memcpy(p->pending.conds, clauses.conds, sizeof clauses.conds);
    char **shrunk = realloc(p->pending.lines, (size_t)p->pending.nlines * sizeof *shrunk);
    if (shrunk != NULL)
        p->pending.lines = shrunk;
    grow((void **)&rm->replies, rm->nreplies, sizeof *rm->replies);
    rm->replies[rm->nreplies++] = p->pending;
    memset(&p->pending, 0, sizeof p->pending);
    p->has_pending = 0;
    return 0;
}

/* remote_connect - connect MODE [latency DUR] [probability P] */
static int remote_connect(struct parser *p)
{
    static const char *const modes[] = {
        [SCN_CONNECT_ACCEPT] = "accept", [SCN_CONNECT_REFUSE] = "refuse",
        [SCN_CONNECT_TIMEOUT] = "timeout", [SCN_CONNECT_UNREACHABLE] = "unreachable",
        [SCN_CONNECT_NO_ROUTE] = "no-route",
    };
    const char *usage = "connect accept|refuse|timeout|unreachable|no-route [latency DURATION] "
                        "[probability P]";
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    if (need_args(p, 2, 6, usage) < 0)
        return -1;
    int mode = -1;
    for (int i = 0; i < (int)(sizeof modes / sizeof modes[0]); i++)
        if (is_word(&p->tok[1], modes[i]))
            mode = i;
    if (mode < 0)
        return fail_tok(p, &p->tok[1], "unknown connect mode '%s': expected accept, refuse, "
                        "timeout, unreachable or no-route", p->tok[1].text);
    uint32_t ppm = SCN_PPM_ALWAYS;
    int has_prob = 0;
    for (int i = 2; i < p->ntok; i += 2) {
        int is_lat = is_word(&p->tok[i], "latency"), is_prob = is_word(&p->tok[i], "probability");
        if (!is_lat && !is_prob)
            return fail_tok(p, &p->tok[i], "unexpected '%s': expected '%s'", p->tok[i].text, usage);
        if (i + 1 == p->ntok)
            return fail_at(p, after_last(p), "missing argument: expected '%s'", usage);
        if (is_lat && parse_duration(p, &p->tok[i + 1], &rm->latency) < 0)
            return -1;
        if (is_prob && (has_prob++ || parse_probability(p, &p->tok[i + 1], &ppm) < 0))
            return p->failed ? -1 : fail_tok(p, &p->tok[i], "'probability' given twice");
    }
    if (!has_prob) {
        rm->connect = (enum scn_connect_mode)mode;
        return 0;
    }
    if (rm->nchoices == SCN_MAX_CONNECT_CHOICES)
        return fail_tok(p, &p->tok[0], "more than %d random connect lines", SCN_MAX_CONNECT_CHOICES);
    rm->choices[rm->nchoices].mode = mode;
    rm->choices[rm->nchoices].ppm = ppm;
    rm->nchoices++;
    return 0;
}

/* remote_duration - latency|jitter|close delay DUR: a duration setting of the remote */
static int remote_duration(struct parser *p, int at, const char *usage, mta_usec_t *out)
{
    if (need_args(p, at + 1, at + 1, usage) < 0)
        return -1;
    return parse_duration(p, &p->tok[at], out);
}

/* remote_count - segment N | backlog N [refuse|timeout]: a whole-number setting */
static int remote_count(struct parser *p, const char *what, long *out)
{
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    int backlog = strcmp(what, "backlog") == 0;
    const char *usage = backlog ? "backlog N [timeout|refuse]" : "segment N";
    if (need_args(p, 2, backlog ? 3 : 2, usage) < 0)
        return -1;
    unsigned long long v;
    if (parse_unsigned(p, &p->tok[1], what, 0, backlog ? 65535 : SCN_MSS_MAX, &v) < 0)
        return -1;
    if (p->ntok == 3) {
        if (!is_word(&p->tok[2], "refuse") && !is_word(&p->tok[2], "timeout"))
            return fail_tok(p, &p->tok[2], "unexpected '%s': expected timeout or refuse",
                            p->tok[2].text);
        rm->backlog_refuse = is_word(&p->tok[2], "refuse");
    }
    *out = (long)v;
    return 0;
}

/* remote_fault - reset|drop|stall at DUR | after N bytes [for DUR] [when session OP N] */
static int remote_fault(struct parser *p)
{
    const char *usage = "reset|drop|stall at DURATION | after N bytes [for DURATION] "
                        "[when session OP N]";
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    struct scn_fault f;
    memset(&f, 0, sizeof f);
    f.action = is_word(&p->tok[0], "reset") ? SCN_ACTION_RESET
             : is_word(&p->tok[0], "stall") ? SCN_ACTION_STALL : SCN_ACTION_DROP;
    f.pos = here(p, p->tok[0].col);
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int next;
    if (is_word(&p->tok[1], "at")) {
        f.trigger = SCN_FAULT_AT;
        if (parse_duration(p, &p->tok[2], &f.at) < 0)
            return -1;
        next = 3;
    } else if (is_word(&p->tok[1], "after")) {
        f.trigger = SCN_FAULT_AFTER_BYTES;
        if (need_args(p, 4, -1, usage) < 0
            || parse_unsigned(p, &p->tok[2], "byte count", 1, 1ULL << 32, &f.bytes) < 0)
            return -1;
        if (!is_word(&p->tok[3], "bytes"))
            return fail_tok(p, &p->tok[3], "unexpected '%s': expected 'bytes'", p->tok[3].text);
        next = 4;
    } else {
        return fail_tok(p, &p->tok[1], "unexpected '%s': expected '%s'", p->tok[1].text, usage);
    }
    if (next < p->ntok && is_word(&p->tok[next], "for")) {
        /* Only a stall ends: it reads again after that long. */
        if (f.action != SCN_ACTION_STALL)
            return fail_tok(p, &p->tok[next], "'for' applies to stall only");
        if (next + 1 == p->ntok)
            return fail_at(p, after_last(p), "missing duration after 'for'");
        if (parse_duration(p, &p->tok[next + 1], &f.stall_for) < 0)
            return -1;
        if (f.stall_for == 0)
            return fail_tok(p, &p->tok[next + 1], "a stall lasts more than 0");
        next += 2;
    }
    if (next < p->ntok) {
        if (!is_word(&p->tok[next], "when"))
            return fail_tok(p, &p->tok[next], "unexpected '%s': expected '%s'",
                            p->tok[next].text, usage);
        if (parse_conds(p, next + 1, p->ntok, f.conds, &f.nconds, cond_allowed(-1)) < 0)
            return -1;
    }
    if (rm->nfaults == SCN_MAX_FAULTS)
        return fail_tok(p, &p->tok[0], "more than %d faults for one remote", SCN_MAX_FAULTS);
    grow((void **)&rm->faults, rm->nfaults, sizeof *rm->faults);
    rm->faults[rm->nfaults++] = f;
    return 0;
}

/* remote_setting - the non-reply lines of a remote block; 1 if t is none of them */
static int remote_tls(struct parser *p);

static int remote_setting(struct parser *p)
{
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    const struct token *t = &p->tok[0];
    if (is_word(t, "connect"))
        return remote_connect(p);
    if (is_word(t, "latency"))
        return remote_duration(p, 1, "latency DURATION", &rm->latency);
    if (is_word(t, "jitter"))
        return remote_duration(p, 1, "jitter DURATION", &rm->jitter);
    if (is_word(t, "bandwidth")) {
        if (need_args(p, 2, 2, "bandwidth RATE") < 0)
            return -1;
        return parse_rate(p, &p->tok[1], &rm->bandwidth);
    }
    if (is_word(t, "segment")) {
        if (remote_count(p, "segment", &rm->segment) < 0)
            return -1;
        return rm->segment > 0 ? 0 : fail_tok(p, &p->tok[1], "a segment holds at least 1 byte");
    }
    if (is_word(t, "sndbuf") || is_word(t, "rcvbuf")) {
        /* The remote's socket buffers (SO_SNDBUF, SO_RCVBUF). */
        int snd = is_word(t, "sndbuf");
        uint64_t v;
        if (need_args(p, 2, 2, snd ? "sndbuf SIZE" : "rcvbuf SIZE") < 0
            || parse_size(p, &p->tok[1], snd ? "send buffer" : "receive buffer", SCN_BUF_MIN,
                          SCN_BUF_MAX, &v) < 0)
            return -1;
        *(snd ? &rm->sndbuf : &rm->rcvbuf) = (long)v;
        return 0;
    }
    if (is_word(t, "loss")) {
        if (need_args(p, 2, 2, "loss P") < 0)
            return -1;
        return parse_probability(p, &p->tok[1], &rm->loss_ppm);
    }
    if (is_word(t, "backlog")) {
        long v;
        if (remote_count(p, "backlog", &v) < 0)
            return -1;
        rm->backlog = (int)v;
        return 0;
    }
    if (is_word(t, "flush")) {
        if (need_args(p, 2, 2, "flush each|together") < 0)
            return -1;
        if (!is_word(&p->tok[1], "each") && !is_word(&p->tok[1], "together"))
            return fail_tok(p, &p->tok[1], "unknown flush mode '%s': expected each or together",
                            p->tok[1].text);
        rm->flush_together = is_word(&p->tok[1], "together");
        return 0;
    }
    if (is_word(t, "close")) {
        if (p->ntok < 2 || !is_word(&p->tok[1], "delay"))
            return fail_at(p, p->ntok < 2 ? after_last(p) : p->tok[1].col,
                           "expected 'close delay DURATION' (slow close)");
        return remote_duration(p, 2, "close delay DURATION", &rm->close_delay);
    }
    if (is_word(t, "reset") || is_word(t, "drop") || is_word(t, "stall"))
        return remote_fault(p);
    if (is_word(t, "after"))
        return remote_after(p);
    if (is_word(t, "tls"))
        return remote_tls(p);
    return 1;
}

/* remote_tls - tls OUTCOME [cert NAME] [expired] [untrusted] [when session OP N]
 * (docs/tls.md); the lines are tried in file order, the first that holds wins */
static int remote_tls(struct parser *p)
{
    static const char *const outcomes[] = { "ok", "handshake-failure", "protocol-version",
                                            "reset", "close" };
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    struct scn_tls t;
    memset(&t, 0, sizeof t);
    t.pos = here(p, p->tok[0].col);
    if (p->ntok < 2)
        return fail_at(p, after_last(p), "expected 'tls ok|handshake-failure|protocol-version|"
                       "reset|close [cert NAME] [expired] [untrusted] [when session OP N]'");
    int o = -1;
    for (int i = 0; i < 5; i++)
        if (is_word(&p->tok[1], outcomes[i]))
            o = i;
    if (o < 0)
        return fail_tok(p, &p->tok[1], "unknown TLS outcome '%s': expected ok, handshake-failure, "
                        "protocol-version, reset or close", p->tok[1].text);
    t.outcome = (enum scn_tls_outcome)o;
    for (int i = 2; i < p->ntok; i++) {
        const struct token *a = &p->tok[i];
        if (is_word(a, "expired")) {
            t.expired = 1;
        } else if (is_word(a, "untrusted")) {
            t.untrusted = 1;
        } else if (is_word(a, "cert")) {
            if (i + 1 >= p->ntok)
                return fail_at(p, after_last(p), "expected a name after 'cert'");
            if (strlen(p->tok[i + 1].text) >= SCN_TLS_NAME_MAX)
                return fail_tok(p, &p->tok[i + 1], "certificate name too long (at most %d bytes)",
                                SCN_TLS_NAME_MAX - 1);
            snprintf(t.cert, sizeof t.cert, "%s", p->tok[i + 1].text);
            i++;
        } else if (is_word(a, "when")) {
            /* The handshake comes before any transaction: sessions only. */
            if (parse_conds(p, i + 1, p->ntok, t.conds, &t.nconds, cond_allowed(-1)) < 0)
                return -1;
            break;
        } else {
            return fail_tok(p, a, "unknown tls option '%s': expected cert NAME, expired, "
                            "untrusted or when", a->text);
        }
    }
    if (rm->ntls == SCN_MAX_TLS) {
        scn_conds_free(t.conds, t.nconds);
        return fail_tok(p, &p->tok[0], "more than %d tls lines for one remote", SCN_MAX_TLS);
    }
    grow((void **)&rm->tls, rm->ntls, sizeof *rm->tls);
    rm->tls[rm->ntls++] = t;
    return 0;
}

/* remote_line - one indented line of a remote block */
int remote_line(struct parser *p)
{
    const struct token *t = &p->tok[0];
    /* Any other line ends a multi-line reply; remote_reply checks its own. */
    int is_cmd = -1;
    for (int c = 0; c < SCN_CMD__COUNT; c++)
        if (is_word(t, scn_cmd_names[c]))
            is_cmd = c;
    if (is_word(t, "banner"))
        is_cmd = SCN_CMD_GREET;
    if (is_cmd >= 0)
        return remote_reply(p, (enum scn_cmd)is_cmd);
    if (p->has_pending)
        return close_block(p, 0);
    int rc = remote_setting(p);
    if (rc <= 0)
        return rc;
    static const char *const settings[] = {
        "connect", "latency", "jitter", "bandwidth", "segment", "sndbuf", "rcvbuf", "loss",
        "backlog", "flush", "close", "reset", "drop", "stall", "after", "tls",
    };
    struct suggestion sg;
    char hint[128];
    suggest_begin(&sg, t->text);
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        suggest_offer(&sg, settings[i]);
    for (int c = 0; c < SCN_CMD__COUNT; c++)
        suggest_offer(&sg, scn_cmd_names[c]);
    return fail_tok(p, t, "unknown remote line '%s': expected connect, latency, jitter, "
                    "bandwidth, segment, sndbuf, rcvbuf, loss, backlog, flush, close, reset, "
                    "drop, stall, after, tls or a command "
                    "(greet ehlo helo mail rcpt data dot rset noop quit unknown starttls)%s",
                    t->text, suggest_hint(&sg, hint, sizeof hint));
}

/* do_remote - remote ADDR [name HOST], opening a block */
int do_remote(struct parser *p)
{
    const char *usage = "remote ADDR [name HOST]";
    struct scn_scenario *sc = p->sc;
    mta_ip addr = mta_ip_v4(0);     /* set by parse_ip; -O3 cannot see it */
    if (need_args(p, 2, 4, usage) < 0 || parse_ip(p, &p->tok[1], &addr) < 0)
        return -1;
    if (p->ntok > 2) {
        if (!is_word(&p->tok[2], "name"))
            return fail_tok(p, &p->tok[2], "unexpected '%s': expected '%s'", p->tok[2].text, usage);
        if (need_args(p, 4, 4, usage) < 0 || check_domain(p, &p->tok[3], "remote name") < 0)
            return -1;
    }
    for (int i = 0; i < sc->nremotes; i++)
        if (mta_ip_eq(sc->remotes[i].addr, addr))
            return fail_tok(p, &p->tok[1], "remote %s already declared at %s:%d", p->tok[1].text,
                            sc->remotes[i].pos.file, sc->remotes[i].pos.line);
    if (sc->nremotes == SCN_MAX_REMOTES)
        return fail_tok(p, &p->tok[0], "more than %d remotes", SCN_MAX_REMOTES);
    grow((void **)&sc->remotes, sc->nremotes, sizeof *sc->remotes);
    struct scn_remote *rm = &sc->remotes[sc->nremotes];
    memset(rm, 0, sizeof *rm);
    rm->addr = addr;
    rm->name = p->ntok > 2 ? xstrdup(p->tok[3].text) : NULL;
    rm->connect = SCN_CONNECT_ACCEPT;
    rm->latency = 1 * USEC_MS;
    rm->pos = here(p, p->tok[0].col);
    p->block = BLOCK_REMOTE;
    p->block_index = sc->nremotes++;
    return 0;
}
