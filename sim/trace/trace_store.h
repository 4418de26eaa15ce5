/*
 * trace_store - the run's trace: records in memory, text form, digest
 *
 * SYNOPSIS
 *   struct trace_store *ts = trace_store_create(epoch, keep);
 *   trace_store_add(ts, now, &rec);
 *   trace_store_digest(ts, hex);            SHA-256 of the text form
 *   trace_store_write(ts, file);
 *   trace_store_destroy(ts);
 *
 * DESCRIPTION
 *   Every record is rendered as one text line
 *
 *     HH:MM:SS.uuuuuu KIND NAME key=value key="quoted value" ...
 *
 *   with the time relative to the scenario's epoch (hours grow past 24).
 *   A value is quoted when it is empty or holds a blank, '"', '\\', '=' or a
 *   byte outside printable ASCII; inside quotes \" \\ \r \n \t and \xHH
 *   escape.  The digest is the SHA-256 of all lines, each ended by '\n',
 *   so two runs with the same digest wrote byte-identical traces.
 *
 *   With keep set, records stay in memory (expectations need them);
 *   without, only the digest and an optional stream are kept, for runs
 *   where the trace would be too large.  Strings live in an arena freed
 *   with the store.
 *
 *   An observer (trace_store_observe) sees every record as it is added,
 *   kept or not, with NUL-terminated strings that stay valid only during
 *   the call: what checks a run as it goes (streamed expectations, the
 *   duplicate-delivery check) reads the trace without it being kept.
 *
 *   A record stamped earlier than the previous one is a broken invariant
 *   (virtual time went backwards); it is counted, not dropped.
 */
#ifndef MTASIM_SIM_TRACE_STORE_H
#define MTASIM_SIM_TRACE_STORE_H

#include <stdint.h>
#include <stdio.h>

#include "mtasim_env.h"

struct trace_field {
    const char *key;
    const char *str;        /* NUL-terminated copy */
    size_t len;
    int64_t num;
    int has_num;
    size_t klen;            /* strlen(key) */
};

struct trace_rec {
    mta_usec_t time;
    uint64_t seq;
    const char *kind;
    const char *name;
    int nfields;
    struct trace_field *field;
    size_t kind_len, name_len;  /* strlen(kind), strlen(name) */
};

struct trace_store;

struct trace_store *trace_store_create(mta_usec_t epoch, int keep);
void trace_store_destroy(struct trace_store *ts);
/* Also write each line to out as it is added (NULL to stop). */
void trace_store_stream(struct trace_store *ts, FILE *out);
/* Or each record to a binary trace writer instead (trace_bin_write.h; NULL to stop). */
struct tbin_writer;
void trace_store_stream_bin(struct trace_store *ts, struct tbin_writer *w);
void trace_store_add(struct trace_store *ts, mta_usec_t now, const struct mta_trace_rec *rec);
/* Call fn for every record added from now on (NULL to stop). */
void trace_store_observe(struct trace_store *ts, void (*fn)(void *arg, const struct trace_rec *r),
                         void *arg);
/* Records kept (0 without keep), and records added in all. */
size_t trace_store_count(const struct trace_store *ts);
uint64_t trace_store_total(const struct trace_store *ts);
const struct trace_rec *trace_store_get(const struct trace_store *ts, size_t i);
void trace_store_digest(struct trace_store *ts, char hex[65]);
int trace_store_write(const struct trace_store *ts, FILE *out);
unsigned long trace_store_time_regressions(const struct trace_store *ts);
mta_usec_t trace_store_epoch(const struct trace_store *ts);

/* "HH:MM:SS.uuuuuu" for rel microseconds after the epoch. */
const char *trace_time_str(mta_usec_t rel, char buf[32]);
/* The line for a record without its time: "KIND NAME k=v ..." (malloc'd). */
char *trace_rec_text(const struct trace_rec *r, int with_kind);
/* The text lines of records rendered one after another, exactly as the
 * trace file has them: for a reader of another form of the trace
 * (trace_bin_read.h).  Zero it first; free(p) when done. */
struct trace_text {
    char *p;                    /* the lines so far, NUL-terminated */
    size_t len, cap;
    mta_usec_t stamp_rel;       /* the last time stamp built, reused */
    size_t stamp_len;
    char stamp[32];
};
void trace_text_line(struct trace_text *t, const struct trace_rec *r, mta_usec_t epoch);
/* A field by key, or NULL. */
const struct trace_field *trace_rec_field(const struct trace_rec *r, const char *key);

#endif
