/*
 * result_json - machine-readable results of a run; see result_json.h
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outfile.h"
#include "result_json.h"
#include "trace_summary.h"

#ifndef MTASIM_VERSION
#define MTASIM_VERSION "0.1.0"
#endif

/* text - a JSON string for s, which may come from a remote and need not be
 * UTF-8 (json_string() would return NULL and the field would vanish) */
static json_t *text(const char *s)
{
    return s ? trace_summary_text(s, strlen(s)) : json_null();
}

static json_t *str_or_null(const char *s) { return text(s); }

/* add_trace_summary - connection_log, conn_err and (--json-trace) trace of a
 * run (trace_summary.h); empty ones when the run left no summary */
static void add_trace_summary(json_t *o, json_t *summary)
{
    json_t *log = json_object_get(summary, "connection_log");
    json_t *conn_err = json_object_get(summary, "conn_err");
    json_t *trace = json_object_get(summary, "trace");
    json_object_set_new(o, "connection_log", log ? json_incref(log) : json_array());
    json_object_set_new(o, "conn_err", conn_err ? json_incref(conn_err)
                                                : json_pack("{s:{}, s:i, s:{}}", "initiate",
                                                            "initiate_fd", 0, "failures"));
    if (trace)
        json_object_set(o, "trace", trace);
}

json_t *result_json_run(const char *path, const struct scn_scenario *sc,
                        const struct run_result *r, double wall_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", text(path));
    json_object_set_new(o, "scenario", text(sc->name));
    json_object_set_new(o, "seed", json_integer((json_int_t)r->seed));
    json_object_set_new(o, "verdict", json_string(run_verdict_str(r->verdict)));
    json_object_set_new(o, "exit_code", json_integer(r->exit_code));
    json_object_set_new(o, "digest", json_string(r->digest));
    json_t *ex = json_array();
    for (int i = 0; i < r->nexp; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "line", json_integer(r->exp[i].line));
        json_object_set_new(e, "text", text(r->exp[i].what));
        json_object_set_new(e, "passed", json_boolean(r->exp[i].passed));
        json_object_set_new(e, "diff", str_or_null(r->exp[i].diff));
        json_array_append_new(ex, e);
    }
    json_object_set_new(o, "expectations", ex);
    json_t *ms = json_array();
    for (int i = 0; i < r->nmsgs; i++) {
        const struct msg_summary *s = &r->msgs[i];
        json_t *m = json_object();
        json_object_set_new(m, "id", json_integer((json_int_t)s->id));
        json_object_set_new(m, "fate", json_string(s->fate));
        json_object_set_new(m, "done_at_us",
                            s->done_at >= 0 ? json_integer(s->done_at - sc->epoch) : json_null());
        json_object_set_new(m, "attempts", json_integer(s->attempts));
        json_object_set_new(m, "recipients", json_integer(s->nrcpts));
        json_object_set_new(m, "delivered", json_integer(s->delivered));
        json_object_set_new(m, "failed", json_integer(s->failed));
        json_object_set_new(m, "pending", json_integer(s->pending));
        json_object_set_new(m, "last_error", s->last_note[0] ? text(s->last_note) : json_null());
        /* rcpts (with RFC 3463 statuses), and dsn_of/dsn_text for a DSN */
        if (s->detail)
            json_object_update(m, s->detail);
        else
            json_object_set_new(m, "rcpts", json_array());
        json_array_append_new(ms, m);
    }
    json_object_set_new(o, "messages", ms);
    json_t *vs = json_array();
    for (int i = 0; i < r->nviolations; i++)
        json_array_append_new(vs, text(r->violations[i]));
    json_object_set_new(o, "violations", vs);
    json_object_set_new(o, "error", str_or_null(r->error));
    json_object_set_new(o, "events", json_integer((json_int_t)r->events));
    json_object_set_new(o, "end_us", json_integer(r->end));
    json_object_set_new(o, "connections", json_integer((json_int_t)r->connections));
    json_object_set_new(o, "trace_records", json_integer((json_int_t)r->trace_records));
    add_trace_summary(o, r->summary);
    json_object_set_new(o, "wall_ms", json_real(wall_ms));
    return o;
}

json_t *result_json_error(const char *path, const char *error)
{
    json_t *o = json_object();
    json_object_set_new(o, "file", text(path));
    json_object_set_new(o, "scenario", json_null());
    json_object_set_new(o, "seed", json_null());
    json_object_set_new(o, "verdict", json_string("error"));
    json_object_set_new(o, "exit_code", json_integer(2));
    json_object_set_new(o, "digest", json_null());
    json_object_set_new(o, "expectations", json_array());
    json_object_set_new(o, "messages", json_array());
    json_object_set_new(o, "violations", json_array());
    json_object_set_new(o, "error", text(error));
    add_trace_summary(o, NULL);
    return o;
}

/* The document is written as json_dumpf(top, JSON_INDENT(2) | JSON_SORT_KEYS)
 * would write it - keys "mtasim" < "runs" < "summary" - but run by run, so
 * that a run's records (--json-trace: megabytes each) need not all be kept
 * until the end. */
#define DUMP_FLAGS (JSON_INDENT(2) | JSON_SORT_KEYS)

struct result_json_out {
    struct outfile *of;     /* NULL: it could not be opened (err) */
    int err;
    int nruns;
};

struct indented {
    FILE *f;
    const char *pad;        /* written after every newline */
};

/* put_indented - json_dump_callback: data as given, each line indented by pad */
static int put_indented(const char *buf, size_t size, void *data)
{
    const struct indented *in = data;
    while (size > 0) {
        const char *nl = memchr(buf, '\n', size);
        size_t n = nl ? (size_t)(nl - buf) + 1 : size;
        fwrite(buf, 1, n, in->f);
        if (nl)
            fputs(in->pad, in->f);
        buf += n;
        size -= n;
    }
    return 0;
}

static void dump_indented(const json_t *j, FILE *f, const char *pad)
{
    struct indented in = { f, pad };
    json_dump_callback(j, put_indented, &in, DUMP_FLAGS | JSON_ENCODE_ANY);
}

struct result_json_out *result_json_open(const char *file)
{
    struct result_json_out *o = calloc(1, sizeof *o);
    if (o == NULL)
        abort();
    /* Through an outfile: a failed write or close is reported with its reason. */
    o->of = outfile_open(file);
    if (o->of == NULL) {
        o->err = errno;
        return o;
    }
    FILE *f = outfile_stream(o->of);
    json_t *version = json_string(MTASIM_VERSION);
    fputs("{\n  \"mtasim\": ", f);
    dump_indented(version, f, "  ");
    fputs(",\n  \"runs\": [", f);
    json_decref(version);
    return o;
}

void result_json_add(struct result_json_out *o, json_t *run)
{
    if (o != NULL && o->of != NULL) {
        FILE *f = outfile_stream(o->of);
        fputs(o->nruns++ ? ",\n    " : "\n    ", f);
        dump_indented(run, f, "    ");
    }
    json_decref(run);
}

int result_json_close(struct result_json_out *o, int passed, int failed, int errors)
{
    int rc = o->err;
    if (o->of != NULL) {
        FILE *f = outfile_stream(o->of);
        json_t *sum = json_object();
        json_object_set_new(sum, "passed", json_integer(passed));
        json_object_set_new(sum, "failed", json_integer(failed));
        json_object_set_new(sum, "errors", json_integer(errors));
        fputs(o->nruns ? "\n  ],\n  \"summary\": " : "],\n  \"summary\": ", f);
        dump_indented(sum, f, "  ");
        fputs("\n}", f);
        json_decref(sum);
        rc = outfile_close(o->of);
    }
    free(o);
    return rc;
}

int result_json_write(const char *file, json_t *runs, int passed, int failed, int errors)
{
    struct result_json_out *o = result_json_open(file);
    size_t i;
    json_t *run;
    json_array_foreach(runs, i, run)
        result_json_add(o, json_incref(run));
    return result_json_close(o, passed, failed, errors);
}
