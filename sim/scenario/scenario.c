/*
 * scenario - the scenario as data: what the parser builds and the world is made from
 *
 * SYNOPSIS
 *   #include "scenario.h"
 *
 *   void scn_free(struct scn_scenario *sc);
 *   void scn_conds_free(struct scn_cond *conds, int n);
 *   void scn_qset_of(conds, n, &set);  scn_qset_holds(&set, q);  scn_qset_overlap(&a, &b);
 *   const char *scn_op_str(enum scn_op op);
 *   const char *scn_fate_str(enum scn_fate f);
 *   extern const char *const scn_cmd_names[];
 *   extern const char *const scn_trace_kinds[];
 *
 * DESCRIPTION
 *   The data model of a scenario (struct scn_scenario, scenario.h) and the
 *   few functions that belong to the data rather than to the language:
 *   releasing it, and the names its enumerations are written with.  The
 *   parser (sim/lang/) fills it in; the world (sim/world/) is built from
 *   it; expectations (sim/lang/expect.c) print it back with scn_op_str()
 *   and scn_fate_str().  Nothing here reads a file or knows the syntax.
 */
#include <stdlib.h>

#include "scenario.h"

const char *const scn_cmd_names[SCN_CMD__COUNT] = {
    [SCN_CMD_GREET] = "greet", [SCN_CMD_EHLO] = "ehlo", [SCN_CMD_HELO] = "helo",
    [SCN_CMD_MAIL] = "mail", [SCN_CMD_RCPT] = "rcpt", [SCN_CMD_DATA] = "data",
    [SCN_CMD_DOT] = "dot", [SCN_CMD_RSET] = "rset", [SCN_CMD_NOOP] = "noop",
    [SCN_CMD_QUIT] = "quit", [SCN_CMD_UNKNOWN] = "unknown",
    [SCN_CMD_STARTTLS] = "starttls",
};

const char *const scn_trace_kinds[] = { "hook", "provider", "smtp", "conn", "queue", "dns", "remote",
                                        "inject", "plugin", "event", "inbound", "mq", "client",
                                        "tls", NULL };

/* scn_conds_free - release what parsed conditions own (their regexes) */
void scn_conds_free(struct scn_cond *conds, int n)
{
    for (int i = 0; i < n; i++) {
        free(conds[i].regex);
        conds[i].regex = NULL;
    }
}

/* scn_qset_of - the query numbers that "when query OP N" conditions select */
void scn_qset_of(const struct scn_cond *conds, int n, struct scn_qset *out)
{
    scn_qset_of_kind(conds, n, SCN_COND_QUERY, out);
}

/* scn_qset_of_kind - the numbers that the conditions of one kind select */
void scn_qset_of_kind(const struct scn_cond *conds, int n, enum scn_cond_kind kind,
                      struct scn_qset *out)
{
    out->lo = 1;
    out->hi = SCN_QUERY_MAX;
    out->nskip = 0;
    for (int i = 0; i < n; i++) {
        unsigned long v = conds[i].value < 0 ? 0 : (unsigned long)conds[i].value;
        if (conds[i].kind != kind)
            continue;
        switch (conds[i].op) {
        case SCN_OP_EQ:
            if (v > out->lo)
                out->lo = v;
            if (v < out->hi)
                out->hi = v;
            break;
        case SCN_OP_NE:
            if (out->nskip < SCN_MAX_CONDS)
                out->skip[out->nskip++] = v;
            break;
        case SCN_OP_LT:
            if (v == 0)
                out->hi = 0;        /* nothing: lo is at least 1 */
            else if (v - 1 < out->hi)
                out->hi = v - 1;
            break;
        case SCN_OP_LE:
            if (v < out->hi)
                out->hi = v;
            break;
        case SCN_OP_GT:
            if (v + 1 > out->lo && v < SCN_QUERY_MAX)
                out->lo = v + 1;
            else if (v >= SCN_QUERY_MAX)
                out->hi = 0;
            break;
        case SCN_OP_GE:
            if (v > out->lo)
                out->lo = v;
            break;
        case SCN_OP_RE:
            break;
        }
    }
}

/* scn_qset_holds - does the set hold query number q? */
int scn_qset_holds(const struct scn_qset *s, unsigned long q)
{
    if (q < s->lo || q > s->hi)
        return 0;
    for (int i = 0; i < s->nskip; i++)
        if (s->skip[i] == q)
            return 0;
    return 1;
}

/* scn_qset_overlap - is some query number in both sets? */
int scn_qset_overlap(const struct scn_qset *a, const struct scn_qset *b)
{
    unsigned long lo = a->lo > b->lo ? a->lo : b->lo;
    unsigned long hi = a->hi < b->hi ? a->hi : b->hi;

    /* At most 2 * SCN_MAX_CONDS numbers are skipped: among the first
     * 2 * SCN_MAX_CONDS + 1 of [lo, hi] one is in both, if any is. */
    for (unsigned long q = lo, k = 0; q <= hi && k <= 2 * SCN_MAX_CONDS; q++, k++)
        if (scn_qset_holds(a, q) && scn_qset_holds(b, q))
            return 1;
    return 0;
}

/* scn_qset_empty - does the set hold no number at all? */
int scn_qset_empty(const struct scn_qset *s)
{
    return !scn_qset_overlap(s, s);
}

/* scn_qset_within - is every number of inner also in outer? */
int scn_qset_within(const struct scn_qset *inner, const struct scn_qset *outer)
{
    if (scn_qset_empty(inner))
        return 1;
    if (inner->lo < outer->lo || inner->hi > outer->hi)
        return 0;
    /* Outer's holes inside inner's range must be holes of inner too. */
    for (int i = 0; i < outer->nskip; i++)
        if (scn_qset_holds(inner, outer->skip[i]))
            return 0;
    return 1;
}

/* scn_free - release a scenario and everything it owns; NULL is fine */
void scn_free(struct scn_scenario *sc)
{
    if (sc == NULL)
        return;
    for (int i = 0; i < sc->nbindings; i++) {
        free(sc->bindings[i].name);
        free(sc->bindings[i].ehlo);
    }
    free(sc->bindings);
    for (int i = 0; i < sc->ndns; i++) {
        free(sc->dns[i].name);
        free(sc->dns[i].target);
    }
    free(sc->dns);
    for (int i = 0; i < sc->nremotes; i++) {
        struct scn_remote *rm = &sc->remotes[i];
        for (int j = 0; j < rm->nreplies; j++) {
            for (int k = 0; k < rm->replies[j].nlines; k++)
                free(rm->replies[j].lines[k]);
            free(rm->replies[j].lines);
            scn_conds_free(rm->replies[j].conds, rm->replies[j].nconds);
        }
        free(rm->replies);
        for (int j = 0; j < rm->nfaults; j++)
            scn_conds_free(rm->faults[j].conds, rm->faults[j].nconds);
        free(rm->faults);
        for (int j = 0; j < rm->ntls; j++)
            scn_conds_free(rm->tls[j].conds, rm->tls[j].nconds);
        free(rm->tls);
        free(rm->name);
    }
    free(sc->remotes);
    free(sc->links);
    for (int i = 0; i < sc->ninjects; i++) {
        struct scn_inject *in = &sc->injects[i];
        free(in->from);
        for (int j = 0; j < in->nrcpts; j++)
            free(in->rcpts[j]);
        free(in->rcpts);
        free(in->ranges);
        free(in->binding);
        free(in->body);
        free(in->dsn_notify);
        free(in->dsn_ret);
        free(in->dsn_envid);
    }
    free(sc->injects);
    for (int i = 0; i < sc->nexpects; i++) {
        struct scn_expect *ex = &sc->expects[i];
        for (int j = 0; j < ex->npatterns; j++) {
            struct scn_pattern *pt = &ex->patterns[j];
            for (int k = 0; k < pt->nmatchers; k++) {
                free(pt->matchers[k].key);
                free(pt->matchers[k].value);
            }
            free(pt->kind);
            free(pt->name);
        }
        free(ex->patterns);
        free(ex->scope.key);
        free(ex->scope.value);
        free(ex->dsn_status);
        free(ex->dsn_rcpt);
    }
    free(sc->expects);
    for (int i = 0; i < sc->nplugins; i++) {
        free(sc->plugins[i].name);
        free(sc->plugins[i].file);
        free(sc->plugins[i].args);
    }
    free(sc->plugins);
    for (int i = 0; i < sc->nusers; i++) {
        free(sc->users[i].name);
        free(sc->users[i].password);
    }
    free(sc->users);
    for (int i = 0; i < sc->nclients; i++) {
        for (int j = 0; j < sc->clients[i].nsteps; j++)
            free(sc->clients[i].steps[j].bytes);
        free(sc->clients[i].steps);
    }
    free(sc->clients);
    for (int i = 0; i < sc->nwarnings; i++)
        free(sc->warnings[i].msg);
    free(sc->warnings);
    for (int i = 0; i < sc->nfiles; i++)
        free(sc->files[i]);
    free(sc->files);
    free(sc->name);
    free(sc->file);
    free(sc->description);
    free(sc);
}

/* scn_op_str - an operator as written */
const char *scn_op_str(enum scn_op op)
{
    switch (op) {
    case SCN_OP_EQ: return "=";
    case SCN_OP_NE: return "!=";
    case SCN_OP_LT: return "<";
    case SCN_OP_LE: return "<=";
    case SCN_OP_GT: return ">";
    case SCN_OP_GE: return ">=";
    case SCN_OP_RE: return "~";
    }
    return "?";
}

/* scn_fate_str - a message fate as written */
const char *scn_fate_str(enum scn_fate f)
{
    switch (f) {
    case SCN_FATE_DELIVERED: return "delivered";
    case SCN_FATE_DEFERRED: return "deferred";
    case SCN_FATE_BOUNCED: return "bounced";
    case SCN_FATE_PARTIAL: return "partial";
    }
    return "?";
}
