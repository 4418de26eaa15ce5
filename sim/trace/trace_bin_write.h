/*
 * trace_bin_write - a run's trace records encoded as the binary trace
 *
 * SYNOPSIS
 *   tbin_write_header(out);                 once, at the start of a file
 *   tbin_write_text(out, line, len);        a line shown as is ("# scenario ...")
 *   tbin_write_end(out);                    once, last: the file is complete
 *
 *   struct tbin_writer *w = tbin_writer_create(out, epoch);   a run block
 *   tbin_writer_rec(w, &rec);               each record, in order
 *   tbin_writer_close(w);                   flush what is buffered, free
 *
 * DESCRIPTION
 *   The encoding is docs/trace-format.md.  Each record is encoded straight
 *   from its struct trace_rec (lengths known, nothing rendered) into a
 *   buffer written with one fwrite() and fflush() whenever it holds
 *   TBIN_BATCH bytes, and at close: the stream only ever holds whole
 *   blocks, so a run killed mid-way leaves a readable run that lacks at
 *   most its last batch of records (the text trace, line-buffered, lacks
 *   none).  The writer of the file (mtasim run, mtasim bench) ends it with
 *   an end block once every run is in: a file without one is reported
 *   truncated, whichever block boundary it was cut at.  Strings are interned per run in order of first use, looked up
 *   by content: the bytes depend only on the records, never on addresses.
 *
 *   Write errors are the stream's (an outfile remembers the first,
 *   core/util/outfile.h); nothing here reports them.  A string longer than
 *   TBIN_MAX_STR cannot be encoded: the writer aborts (no record can hold
 *   one: the core's builders truncate at 1 KiB, core/trace.h).
 */
#ifndef MTASIM_SIM_TRACE_BIN_WRITE_H
#define MTASIM_SIM_TRACE_BIN_WRITE_H

#include <stdio.h>

#include "trace_store.h"

#define TBIN_BATCH (64 * 1024)

struct tbin_writer;

void tbin_write_header(FILE *out);
void tbin_write_text(FILE *out, const char *line, size_t len);
void tbin_write_end(FILE *out);

struct tbin_writer *tbin_writer_create(FILE *out, mta_usec_t epoch);
void tbin_writer_rec(struct tbin_writer *w, const struct trace_rec *r);
void tbin_writer_close(struct tbin_writer *w);

#endif
