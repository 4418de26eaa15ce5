/*
 * trace_summary - what the reports need from a run's trace, as JSON
 *
 * See trace_summary.h.  One pass over the records; a connection is
 * followed from "conn open" to "conn close" by its descriptor, which the
 * core reuses once closed, so the map from descriptor to connection only
 * holds open ones.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_summary.h"

/* Descriptors above this are not mapped (the simulated world hands out
 * small ones); their records still reach "trace", not connection_log. */
#define SUMMARY_MAX_FD 65536

/* One connection being followed. */
struct summary_conn {
    json_t *obj;            /* its connection_log entry (borrowed from the array) */
    char host[64];          /* the remote address without the port */
    int established;
    int quit_sent;
    const char *end_event;  /* "refused", "unreachable", "reset", "eof", or NULL */
};

struct summary_state {
    mta_usec_t epoch;
    json_t *log;            /* connection_log */
    json_t *initiate;       /* conn_err.initiate */
    json_int_t initiate_fd;
    json_t *failures;       /* conn_err.failures */
    struct summary_conn *conns;     /* every connection, in opening order */
    size_t nconns, cap;
    long *open_by_fd;       /* descriptor -> index in conns, -1 when none */
    size_t nfds;
};

/* checked - abort on allocation failure; the value otherwise */
static void *checked(void *p)
{
    if (p == NULL)
        abort();
    return p;
}

/* trace_summary_text - a JSON string for bytes that may not be UTF-8 */
json_t *trace_summary_text(const char *bytes, size_t len)
{
    json_t *v = json_stringn(bytes, len);
    if (v != NULL)
        return v;
    /* Not UTF-8: spell every byte outside printable ASCII as \xHH. */
    char *buf = checked(malloc(len * 4 + 1));
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c >= 0x20 && c < 0x7f) {
            buf[o++] = (char)c;
        } else {
            snprintf(buf + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    v = checked(json_stringn(buf, o));
    free(buf);
    return v;
}

/* field_is_number - the field is a number and the trace shows it as one
 *
 * Some fields carry a number and a name (conn_fd=CONN_ERR_MX_LOOKUP_PENDING
 * is -2, binding=default is slot 0): the trace shows the name, and so
 * does the JSON. */
static int field_is_number(const struct trace_field *f)
{
    char digits[32];
    if (!f->has_num)
        return 0;
    int n = snprintf(digits, sizeof digits, "%lld", (long long)f->num);
    return (size_t)n == f->len && memcmp(digits, f->str, f->len) == 0;
}

/* field_value - a record's field as JSON: its number, else its text */
static json_t *field_value(const struct trace_field *f)
{
    if (field_is_number(f))
        return json_integer((json_int_t)f->num);
    return trace_summary_text(f->str, f->len);
}

/* field_num - a numeric field of r, or -1 when absent or not a number */
static long long field_num(const struct trace_rec *r, const char *key)
{
    const struct trace_field *f = trace_rec_field(r, key);
    return f && field_is_number(f) ? (long long)f->num : -1;
}

/* open_conn - the open connection on descriptor fd, or NULL */
static struct summary_conn *open_conn(struct summary_state *st, long long fd)
{
    if (fd < 0 || (size_t)fd >= st->nfds || st->open_by_fd[fd] < 0)
        return NULL;
    return &st->conns[st->open_by_fd[fd]];
}

/* conn_opened - "conn open fd=N src=S dst=D": start following a connection */
static void conn_opened(struct summary_state *st, const struct trace_rec *r)
{
    long long fd = field_num(r, "fd");
    if (fd < 0 || fd >= SUMMARY_MAX_FD)
        return;
    if ((size_t)fd >= st->nfds) {
        size_t n = (size_t)fd + 16;
        st->open_by_fd = checked(realloc(st->open_by_fd, n * sizeof *st->open_by_fd));
        for (size_t i = st->nfds; i < n; i++)
            st->open_by_fd[i] = -1;
        st->nfds = n;
    }
    if (st->nconns == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 16;
        st->conns = checked(realloc(st->conns, st->cap * sizeof *st->conns));
    }
    struct summary_conn *c = &st->conns[st->nconns];
    memset(c, 0, sizeof *c);
    const struct trace_field *src = trace_rec_field(r, "src");
    const struct trace_field *dst = trace_rec_field(r, "dst");
    if (dst) {
        size_t hostlen = strcspn(dst->str, ":");
        snprintf(c->host, sizeof c->host, "%.*s", (int)hostlen, dst->str);
    }
    c->obj = json_object();
    json_object_set_new(c->obj, "fd", json_integer(fd));
    json_object_set_new(c->obj, "src", src ? trace_summary_text(src->str, src->len) : json_null());
    json_object_set_new(c->obj, "remote", dst ? trace_summary_text(dst->str, dst->len) : json_null());
    json_object_set_new(c->obj, "domain", json_null());
    json_object_set_new(c->obj, "binding", json_null());
    json_object_set_new(c->obj, "opened_us", json_integer(r->time - st->epoch));
    json_object_set_new(c->obj, "established_us", json_null());
    json_object_set_new(c->obj, "closed_us", json_null());
    json_object_set_new(c->obj, "commands", json_array());
    json_object_set_new(c->obj, "replies", json_array());
    json_object_set_new(c->obj, "data_bytes", json_integer(0));
    json_object_set_new(c->obj, "rx_bytes", json_integer(0));
    json_object_set_new(c->obj, "error", json_null());
    json_object_set_new(c->obj, "outcome", json_string("open"));
    json_array_append_new(st->log, c->obj);
    st->open_by_fd[fd] = (long)st->nconns++;
}

/* conn_outcome - how a connection ended, from what was seen of it */
static const char *conn_outcome(const struct summary_conn *c)
{
    const char *error = json_string_value(json_object_get(c->obj, "error"));
    if (c->end_event && strcmp(c->end_event, "refused") == 0)
        return "refused";
    if (c->end_event && strcmp(c->end_event, "unreachable") == 0)
        return "unreachable";
    if (!c->established && error && strcmp(error, "CONN_ERR_CONNECT_TIMEOUT") == 0)
        return "timeout";
    /* After QUIT, a reset or close by the remote is how sessions end. */
    if (c->quit_sent)
        return "quit";
    if (c->end_event && strcmp(c->end_event, "reset") == 0)
        return "reset";
    if (c->end_event && strcmp(c->end_event, "eof") == 0)
        return "remote-closed";
    return "closed";
}

/* conn_closed - "conn close fd=N rx_bytes=B": the connection is over */
static void conn_closed(struct summary_state *st, const struct trace_rec *r)
{
    long long fd = field_num(r, "fd");
    struct summary_conn *c = open_conn(st, fd);
    if (c == NULL)
        return;
    json_object_set_new(c->obj, "closed_us", json_integer(r->time - st->epoch));
    long long rx = field_num(r, "rx_bytes");
    json_object_set_new(c->obj, "rx_bytes", json_integer(rx > 0 ? rx : 0));
    json_object_set_new(c->obj, "outcome", json_string(conn_outcome(c)));
    st->open_by_fd[fd] = -1;
}

/* conn_event - established, refused, unreachable, reset, eof */
static void conn_event(struct summary_state *st, const struct trace_rec *r)
{
    struct summary_conn *c = open_conn(st, field_num(r, "fd"));
    if (c == NULL)
        return;
    if (strcmp(r->name, "established") == 0) {
        c->established = 1;
        json_object_set_new(c->obj, "established_us", json_integer(r->time - st->epoch));
    } else if (c->end_event == NULL) {
        /* The first end event is the cause; later ones are consequences. */
        c->end_event = r->name;
    }
}

/* command_verb - the first word of a command line, upper-cased: "MAIL" */
static json_t *command_verb(const struct trace_field *line)
{
    char verb[16];
    size_t n = 0;
    for (const char *p = line->str; *p && *p != ' ' && *p != ':' && n < sizeof verb - 1; p++)
        verb[n++] = (char)toupper((unsigned char)*p);
    return trace_summary_text(verb, n);
}

/* reply_code - the code of a final reply line, null for a line that is not
 * one; *continued set for a continuation line ("250-...") */
static json_t *reply_code(const struct trace_field *line, int *continued)
{
    const char *s = line->str;
    *continued = 0;
    if (line->len < 3 || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1])
        || !isdigit((unsigned char)s[2]))
        return json_null();
    if (line->len > 3 && s[3] == '-') {
        *continued = 1;
        return NULL;
    }
    if (line->len > 3 && s[3] != ' ')
        return json_null();
    return json_integer((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
}

/* smtp_line - a command sent or a reply received on a connection */
static void smtp_line(struct summary_state *st, const struct trace_rec *r)
{
    struct summary_conn *c = open_conn(st, field_num(r, "conn"));
    if (c == NULL)
        return;
    const struct trace_field *line = trace_rec_field(r, "line");
    if (strcmp(r->name, "send") == 0) {
        long long data = field_num(r, "data_bytes");
        if (data >= 0) {
            json_t *total = json_object_get(c->obj, "data_bytes");
            json_integer_set(total, json_integer_value(total) + data);
        } else if (line) {
            json_t *verb = command_verb(line);
            c->quit_sent |= strcmp(json_string_value(verb), "QUIT") == 0;
            json_array_append_new(json_object_get(c->obj, "commands"), verb);
        }
    } else if (strcmp(r->name, "recv") == 0 && line) {
        int continued;
        json_t *code = reply_code(line, &continued);
        if (!continued)
            json_array_append_new(json_object_get(c->obj, "replies"), code);
    }
}

/* count - bump counts[name] */
static void count(json_t *counts, const char *name)
{
    json_t *n = json_object_get(counts, name);
    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else
        json_object_set_new(counts, name, json_integer(1));
}

/* hook_call - the hooks that name connections and CONN_ERR outcomes */
static void hook_call(struct summary_state *st, const struct trace_rec *r)
{
    if (strcmp(r->name, "post_initiate_connection_smtp") == 0) {
        const struct trace_field *fd = trace_rec_field(r, "conn_fd");
        if (fd == NULL)
            return;
        if (!field_is_number(fd)) {
            count(st->initiate, fd->str);
            return;
        }
        st->initiate_fd++;
        struct summary_conn *c = open_conn(st, fd->num);
        if (c && json_is_null(json_object_get(c->obj, "domain"))) {
            const struct trace_field *dom = trace_rec_field(r, "domain");
            const struct trace_field *bind = trace_rec_field(r, "binding");
            if (dom)
                json_object_set_new(c->obj, "domain", trace_summary_text(dom->str, dom->len));
            if (bind)
                json_object_set_new(c->obj, "binding", trace_summary_text(bind->str, bind->len));
        }
    } else if (strcmp(r->name, "log_client_connection_failure") == 0) {
        const struct trace_field *err = trace_rec_field(r, "err");
        const struct trace_field *addr = trace_rec_field(r, "addr");
        if (err == NULL)
            return;
        count(st->failures, err->str);
        /* The most recent open connection to that address is the one. */
        for (size_t i = st->nconns; addr && i-- > 0;) {
            struct summary_conn *c = &st->conns[i];
            if (json_is_null(json_object_get(c->obj, "closed_us")) && strcmp(c->host, addr->str) == 0) {
                json_object_set_new(c->obj, "error", trace_summary_text(err->str, err->len));
                break;
            }
        }
    }
}

/* trace_record - one record as [t_us, kind, name, {fields}] */
static json_t *trace_record(const struct trace_rec *r, mta_usec_t epoch)
{
    json_t *fields = json_object();
    for (int i = 0; i < r->nfields; i++)
        json_object_set_new(fields, r->field[i].key, field_value(&r->field[i]));
    return json_pack("[I, s, s, o]", (json_int_t)(r->time - epoch), r->kind, r->name, fields);
}

/* trace_summary_build - see trace_summary.h */
json_t *trace_summary_build(const struct trace_store *ts, int with_trace)
{
    struct summary_state st;
    memset(&st, 0, sizeof st);
    st.epoch = trace_store_epoch(ts);
    st.log = json_array();
    st.initiate = json_object();
    st.failures = json_object();
    json_t *trace = with_trace ? json_array() : NULL;
    size_t n = trace_store_count(ts);
    for (size_t i = 0; i < n; i++) {
        const struct trace_rec *r = trace_store_get(ts, i);
        if (strcmp(r->kind, "conn") == 0) {
            if (strcmp(r->name, "open") == 0)
                conn_opened(&st, r);
            else if (strcmp(r->name, "close") == 0)
                conn_closed(&st, r);
            else
                conn_event(&st, r);
        } else if (strcmp(r->kind, "smtp") == 0) {
            smtp_line(&st, r);
        } else if (strcmp(r->kind, "hook") == 0) {
            hook_call(&st, r);
        }
        if (trace)
            json_array_append_new(trace, checked(trace_record(r, st.epoch)));
    }
    json_t *summary = json_object();
    json_object_set_new(summary, "connection_log", st.log);
    json_object_set_new(summary, "conn_err",
                        json_pack("{s:o, s:I, s:o}", "initiate", st.initiate, "initiate_fd",
                                  st.initiate_fd, "failures", st.failures));
    if (trace)
        json_object_set_new(summary, "trace", trace);
    free(st.conns);
    free(st.open_by_fd);
    return summary;
}
