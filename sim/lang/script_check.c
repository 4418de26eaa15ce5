/*
 * script_check - the scripted lines of remotes that can never take effect
 *
 * DESCRIPTION
 *   Run once the whole scenario is read.  A remote answers a command with
 *   the first scripted line for it whose conditions hold (remote_smtp.c),
 *   so some lines can be written that never answer anything.  Each is
 *   reported as a warning (struct scn_warning, printed by mtasim check and
 *   run with file:line:col; the exit status does not change):
 *
 *     shadowed     an earlier line for the same command has no probability
 *                  and conditions that hold whenever this line's do (no
 *                  conditions at all, or the same ones, or wider ranges):
 *                  the earlier line always answers first
 *     unreachable  the line's conditions hold for no command (an empty
 *                  range such as "session 0" or "nth > 2 and nth < 3"), or
 *                  its probability is 0
 *     overridden   the remote never accepts a connection ("connect refuse",
 *                  "timeout", "unreachable" or "no-route", with no random
 *                  "connect accept"): no session ever starts, no line answers;
 *                  or the scenario has dns lines but none of its "dns
 *                  NAME A" lines has the remote's address: the core
 *                  connects only to addresses its A queries return
 *                  (core/domain.c), so it never reaches the remote;
 *                  or every session's banner refuses (the greet lines up
 *                  to the first one that always answers all refuse: not
 *                  2xx, or reset/drop/close): the client may only QUIT
 *                  (RFC 5321 3.1, 4.3.1), so no line for another command
 *                  answers anything;
 *                  or every DATA is refused (likewise, with a reply that
 *                  is not 3xx: the remote never reads message data, RFC
 *                  5321 4.1.1.4) and no message uses BDAT: no end of data
 *                  ever comes, so no dot line answers anything
 *
 *   Only certain cases are reported: a line that might take effect is
 *   never warned about (the checks are sufficient conditions).
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "parse_internal.h"

/* The numeric condition kinds, compared as sets of numbers. */
static const enum scn_cond_kind numeric[] = {
    SCN_COND_SESSION, SCN_COND_ATTEMPT, SCN_COND_NTH, SCN_COND_TRANSACTION, SCN_COND_RCPT_NUM,
};
#define NNUMERIC ((int)(sizeof numeric / sizeof numeric[0]))

/* warn - one more warning at pos */
static void warn(struct scn_scenario *sc, struct scn_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(struct scn_scenario *sc, struct scn_pos pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    grow((void **)&sc->warnings, sc->nwarnings, sizeof *sc->warnings);
    sc->warnings[sc->nwarnings].pos = pos;
    sc->warnings[sc->nwarnings].msg = xstrdup(msg);
    sc->nwarnings++;
}

/* has_kind - does the line have a condition of this kind? */
static int has_kind(const struct scn_reply *r, enum scn_cond_kind k)
{
    for (int i = 0; i < r->nconds; i++)
        if (r->conds[i].kind == k)
            return 1;
    return 0;
}

/* unreachable - the line's conditions hold for no command at all */
static int unreachable(const struct scn_reply *r)
{
    for (int k = 0; k < NNUMERIC; k++) {
        struct scn_qset s;
        scn_qset_of_kind(r->conds, r->nconds, numeric[k], &s);
        if (has_kind(r, numeric[k]) && scn_qset_empty(&s))
            return 1;
    }
    return r->has_ppm && r->ppm == 0;
}

/* covers - whenever line b's conditions hold, so do line a's */
static int covers(const struct scn_reply *a, const struct scn_reply *b)
{
    for (int k = 0; k < NNUMERIC; k++) {
        struct scn_qset sa, sb;
        if (!has_kind(a, numeric[k]))
            continue;
        scn_qset_of_kind(a->conds, a->nconds, numeric[k], &sa);
        scn_qset_of_kind(b->conds, b->nconds, numeric[k], &sb);
        if (!scn_qset_within(&sb, &sa))
            return 0;
    }
    /* "rcpt ~ REGEX": only the very same expression is known to hold. */
    for (int i = 0; i < a->nconds; i++) {
        int same = a->conds[i].kind != SCN_COND_RCPT;
        for (int j = 0; j < b->nconds && !same; j++)
            same = b->conds[j].kind == SCN_COND_RCPT
                   && strcmp(a->conds[i].regex, b->conds[j].regex) == 0;
        if (!same)
            return 0;
    }
    return 1;
}

/* never_accepts - the remote's connect lines never let a session start */
static int never_accepts(const struct scn_remote *rm)
{
    if (rm->connect == SCN_CONNECT_ACCEPT)
        return 0;
    for (int i = 0; i < rm->nchoices; i++)
        if (rm->choices[i].mode == SCN_CONNECT_ACCEPT && rm->choices[i].ppm > 0)
            return 0;
    return 1;
}

/* refuses - does the line, when it answers, end the command's hope: an
 * action (reset, drop, close) or a reply whose code is not in [lo, hi]?
 * A raw reply counts only when its first byte is a digit out of range. */
static int refuses(const struct scn_reply *r, int lo, int hi)
{
    switch (r->action) {
    case SCN_ACTION_RESET:
    case SCN_ACTION_DROP:
    case SCN_ACTION_CLOSE:
    case SCN_ACTION_STALL:      /* (a fault only) the answer never comes */
        return 1;
    case SCN_ACTION_RAW: {
        char c = r->raw_len > 0 ? r->lines[0][0] : 0;
        return c >= '0' && c <= '9' && (c - '0' < lo / 100 || c - '0' > hi / 100);
    }
    case SCN_ACTION_REPLY:
        break;
    }
    return r->code < lo || r->code > hi;
}

/* always_refused - does every command cmd of the remote get a refusing
 * answer?  The lines for cmd up to the first that always answers (no
 * conditions, no probability) must all refuse; lines that never answer
 * are skipped.  The line that always answers, or NULL. */
static const struct scn_reply *always_refused(const struct scn_remote *rm, enum scn_cmd cmd,
                                              int lo, int hi)
{
    for (int i = 0; i < rm->nreplies; i++) {
        const struct scn_reply *r = &rm->replies[i];
        if (r->cmd != cmd || unreachable(r))
            continue;
        if (!refuses(r, lo, hi))
            return NULL;
        if (r->nconds == 0 && (!r->has_ppm || r->ppm >= SCN_PPM_ALWAYS))
            return r;
    }
    return NULL;
}

/* has_a_line - does some "dns NAME A" line (or "AAAA", for an IPv6
 * address) give the address? */
static int has_a_line(const struct scn_scenario *sc, mta_ip addr)
{
    int v4 = mta_ip_is_v4(addr);
    for (int i = 0; i < sc->ndns; i++) {
        const struct scn_dns *d = &sc->dns[i];
        if (v4 ? d->kind == SCN_DNS_A && d->addr == mta_ip_v4_of(addr)
               : d->kind == SCN_DNS_AAAA && memcmp(d->addr6, addr.b, sizeof d->addr6) == 0)
            return 1;
    }
    return 0;
}

/* uses_bdat - might a message reach a remote by BDAT (where the reply to
 * the last chunk is the dot line's)? */
static int uses_bdat(const struct scn_scenario *sc)
{
    for (int i = 0; i < sc->ninjects; i++)
        if (sc->injects[i].chunking)
            return 1;
    return sc->nclients > 0;    /* relayed inbound mail: not known here */
}

/* unreached - warn about every line and fault of rm if no session with
 * the core ever starts; 1 if so */
static int unreached(struct scn_scenario *sc, const struct scn_remote *rm)
{
    static const char *const modes[] = {
        [SCN_CONNECT_ACCEPT] = "accept", [SCN_CONNECT_REFUSE] = "refuse",
        [SCN_CONNECT_TIMEOUT] = "timeout", [SCN_CONNECT_UNREACHABLE] = "unreachable",
        [SCN_CONNECT_NO_ROUTE] = "no-route",
    };
    assert(rm->connect >= 0 && rm->connect < (int)(sizeof modes / sizeof modes[0]));
    char why[160];
    if (never_accepts(rm)) {
        snprintf(why, sizeof why, "the remote at line %d never accepts a connection "
                 "(connect %s)", rm->pos.line, modes[rm->connect]);
    } else if (sc->ndns > 0 && !has_a_line(sc, rm->addr)) {
        /* (A scenario without dns lines is a remote for mtasim serve,
         * docs/live.md: its clients are not the core.) */
        char text[MTA_IP_TEXT];
        snprintf(why, sizeof why, "no 'dns NAME %s' line gives the address %s of the "
                 "remote at line %d, so the core never connects to it",
                 mta_ip_is_v4(rm->addr) ? "A" : "AAAA", mta_ip_format(rm->addr, text),
                 rm->pos.line);
    } else {
        return 0;
    }
    for (int i = 0; i < rm->nreplies; i++)
        warn(sc, rm->replies[i].pos, "this %s line never takes effect: %s",
             scn_cmd_names[rm->replies[i].cmd], why);
    for (int i = 0; i < rm->nfaults; i++)
        warn(sc, rm->faults[i].pos, "this fault never takes effect: %s", why);
    return 1;
}

/* script_check - warn about every scripted line that can never take effect */
void script_check(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    for (int r = 0; r < sc->nremotes; r++) {
        const struct scn_remote *rm = &sc->remotes[r];
        if (unreached(sc, rm))
            continue;
        const struct scn_reply *greet = always_refused(rm, SCN_CMD_GREET, 200, 299);
        const struct scn_reply *data = always_refused(rm, SCN_CMD_DATA, 300, 399);
        if (uses_bdat(sc))
            data = NULL;
        for (int i = 0; i < rm->nreplies; i++) {
            const struct scn_reply *b = &rm->replies[i];
            if (unreachable(b)) {
                warn(sc, b->pos, "this %s line never takes effect: %s",
                     scn_cmd_names[b->cmd], b->has_ppm && b->ppm == 0
                     ? "its probability is 0" : "its conditions hold for no command");
                continue;
            }
            if (greet != NULL && b->cmd != SCN_CMD_GREET && b->cmd != SCN_CMD_QUIT) {
                warn(sc, b->pos, "this %s line never takes effect: the greet line at line %d "
                     "refuses every session, after which the client may only QUIT (RFC 5321 "
                     "3.1)", scn_cmd_names[b->cmd], greet->pos.line);
                continue;
            }
            if (greet == NULL && data != NULL && b->cmd == SCN_CMD_DOT) {
                warn(sc, b->pos, "this dot line never takes effect: the data line at line %d "
                     "refuses every DATA, so no message data and no end of data ever come",
                     data->pos.line);
                continue;
            }
            for (int j = 0; j < i; j++) {
                const struct scn_reply *a = &rm->replies[j];
                if (a->cmd != b->cmd || (a->has_ppm && a->ppm < SCN_PPM_ALWAYS) || unreachable(a)
                    || !covers(a, b))
                    continue;
                warn(sc, b->pos, "this %s line never takes effect: line %d answers every %s "
                     "it would (the first line whose conditions hold wins)",
                     scn_cmd_names[b->cmd], a->pos.line, scn_cmd_names[b->cmd]);
                break;
            }
        }
    }
}
