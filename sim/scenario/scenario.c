/*
 * scenario - the scenario as data: what the parser builds and the world is made from
 *
 * SYNOPSIS
 *   #include "scenario.h"
 *
 *   void scn_free(struct scn_scenario *sc);
 *   void scn_conds_free(struct scn_cond *conds, int n);
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
};

const char *const scn_trace_kinds[] = { "hook", "provider", "smtp", "conn", "queue", "dns", "remote",
                                        "inject", "plugin", "event", "inbound", "mq", "client",
                                        NULL };

/* scn_conds_free - release what parsed conditions own (their regexes) */
void scn_conds_free(struct scn_cond *conds, int n)
{
    for (int i = 0; i < n; i++) {
        free(conds[i].regex);
        conds[i].regex = NULL;
    }
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
