/*
 * record_fields - which fields each kind of trace record can carry
 *
 * SYNOPSIS
 *   #include "record_fields.h"
 *
 *   if (!record_field_possible("dns", "query", "rcode")) ... an error ...
 *
 * DESCRIPTION
 *   The expectation parser asks this before a run: a matcher (or a "for"
 *   scope) on a field that a record of that kind and name never carries
 *   can never hold, so "expect never" with it would be silently true and
 *   "expect count ... = 0" vacuous.  Such a matcher is an error instead.
 *
 *   Hook and provider records carry what the generated hook catalogue says
 *   (struct hook_list.fields, from core/hooks/hooks.table); providers add
 *   plugin and closure.  The other kinds are listed below, as the code that
 *   writes them does (core/trace.c users, sim/world/simenv.c, remote*.c,
 *   client.c, core/smtp_server.c, core/mailerq.c).  "plugin note" records
 *   carry whatever key the plugin gave mtasim_plugin_note(): any key is
 *   possible there.  tests/drivers/test_record_fields.py checks the table
 *   against the traces of every bundled scenario.
 *
 *   The pseudo-field "at" (the record's virtual time) exists on every
 *   record.
 */
#include <string.h>

#include "hook_registry.h"
#include "record_fields.h"

/* kind, name ("*": every name of the kind), fields; NULL fields: any key */
static const struct { const char *kind, *name, *fields; } table[] = {
    { "smtp", "send", "conn line data_bytes" },
    { "smtp", "recv", "conn line" },
    { "smtp", "sent", "conn data_bytes" },      /* the last byte of the data left */
    { "conn", "open", "fd src dst" },
    { "conn", "accept", "fd src dst" },
    { "conn", "error", "fd src dst errno" },
    { "conn", "close", "fd rx_segments rx_bytes retransmits" },
    { "conn", "listen", "fd addr" },
    { "conn", "tls", "fd version" },            /* simenv.c: the handshake completed */
    { "conn", "*", "fd" },          /* established refused unreachable eof reset unlisten */
    { "queue", "inject", "msg domain binding from rcpts size" },
    { "queue", "attempt", "msg domain conn attempt" },
    { "queue", "delivered", "msg rcpt status note" },
    { "queue", "transient", "msg rcpt status note" },
    { "queue", "bounced", "msg rcpt status note" },
    { "queue", "dsn", "msg domain dsn to rcpts status size text" },
    { "queue", "no_dsn", "msg domain reason" },
    { "queue", "host_failed", "addr retry_in_s" },
    { "queue", "more_rcpts", "msg conn rcpts on" },
    { "queue", "delayed", "msg domain attempts retry_in_s" },
    { "queue", "done", "msg domain delivered failed" },
    { "queue", "throttled", "domain binding reason wait_ms" },
    { "queue", "*", "msg domain attempts" },        /* active and the other state changes */
    { "dns", "query", "name type n" },
    { "dns", "answer", "name type rcode count" },
    { "remote", "attempt", "remote session from rcpt attempt" },
    { "remote", "message", "remote session from rcpts size message_id body_sha256" },
    { "remote", "fault", "remote session action" },
    { "remote", "tls", "remote session outcome" },  /* a ClientHello came; what it does */
    { "tls", "policy", "conn domain host level outcome note" },     /* core/smtp_tls.c */
    { "tls", "start", "conn server_name" },
    { "tls", "discarded", "conn bytes" },
    { "remote", "*", "remote session" },            /* accept bare_lf */
    { "inject", "message", "msg size body_sha256" },
    { "inbound", "connect", "conn client port" },
    { "inbound", "command", "conn line" },
    { "inbound", "reply", "conn line plugin" },
    { "inbound", "data", "conn bytes" },
    { "inbound", "discarded", "conn bytes" },
    { "inbound", "auth", "conn user result" },
    { "inbound", "message", "conn msg from rcpts size" },
    { "inbound", "close", "conn reason" },
    { "inbound", "tls_failed", "conn reason" },     /* the client failed the handshake */
    { "inbound", "*", "conn" },                     /* secure */
    { "mq", "iowatch", "plugin fd events simulated" },
    { "mq", "ioready", "plugin fd events" },
    { "mq", "warning", "plugin call fd what" },
    { "mq", "out_data_discarded", "conn msg" },
    { "mq", "*", "plugin conn ret callback value what msg rcpt size address login code" },
    { "event", "*", "conn event_no msg mailbox code octets expiry_difference quit adjust cipher bits vfy_result ok" },
    { "client", "end", "client n reason" },     /* also tls: the handshake completed */
    { "client", "reply", "client n line want got" },
    { "client", "unexpected", "client n line want got" },
    { "client", "*", "client n" },                  /* connect done */
    { "plugin", "warning", "plugin hook what" },
    { "plugin", "note", NULL },
};

/* in_list - is word one of the space-separated words of list? */
static int in_list(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, " ");
        if (len == n && strncmp(s, word, n) == 0)
            return 1;
        s += len;
        while (*s == ' ')
            s++;
    }
    return 0;
}

/* record_fields - the fields of (kind, name), space-separated; NULL: any key */
const char *record_fields(const char *kind, const char *name)
{
    if (strcmp(kind, "hook") == 0 || strcmp(kind, "provider") == 0) {
        for (int i = 0; hook_lists[i] != NULL; i++)
            if (strcmp(hook_lists[i]->name, name) == 0)
                return hook_lists[i]->fields;
        return "";
    }
    const char *any = "";
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].kind, kind) != 0)
            continue;
        if (strcmp(table[i].name, name) == 0)
            return table[i].fields;
        if (strcmp(table[i].name, "*") == 0)
            any = table[i].fields;
    }
    return any;
}

/* record_field_possible - can a record of (kind, name) carry key? */
int record_field_possible(const char *kind, const char *name, const char *key)
{
    if (strcmp(key, "at") == 0)
        return 1;
    if (strcmp(kind, "provider") == 0 && (strcmp(key, "plugin") == 0 || strcmp(key, "closure") == 0))
        return 1;
    const char *f = record_fields(kind, name);
    return f == NULL || in_list(f, key);
}
