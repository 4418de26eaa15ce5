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
 *     overridden   the remote never accepts a connection ("connect refuse"
 *                  or "timeout" or "unreachable", with no random "connect
 *                  accept"): no session ever starts, no line answers
 *
 *   Only certain cases are reported: a line that might take effect is
 *   never warned about (the checks are sufficient conditions).
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
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

/* script_check - warn about every scripted line that can never take effect */
void script_check(struct parser *p)
{
    static const char *const modes[] = { "accept", "refuse", "timeout", "unreachable" };
    struct scn_scenario *sc = p->sc;
    for (int r = 0; r < sc->nremotes; r++) {
        const struct scn_remote *rm = &sc->remotes[r];
        if (never_accepts(rm)) {
            for (int i = 0; i < rm->nreplies; i++)
                warn(sc, rm->replies[i].pos, "this %s line never takes effect: the remote at "
                     "line %d never accepts a connection (connect %s)",
                     scn_cmd_names[rm->replies[i].cmd], rm->pos.line, modes[rm->connect]);
            for (int i = 0; i < rm->nfaults; i++)
                warn(sc, rm->faults[i].pos, "this fault never takes effect: the remote at line %d "
                     "never accepts a connection (connect %s)", rm->pos.line, modes[rm->connect]);
            continue;
        }
        for (int i = 0; i < rm->nreplies; i++) {
            const struct scn_reply *b = &rm->replies[i];
            if (unreachable(b)) {
                warn(sc, b->pos, "this %s line never takes effect: %s",
                     scn_cmd_names[b->cmd], b->has_ppm && b->ppm == 0
                     ? "its probability is 0" : "its conditions hold for no command");
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
