/*
 * trace_summary - what the reports need from a run's trace, as JSON
 *
 * SYNOPSIS
 *   json_t *s = trace_summary_build(trace, with_trace);
 *   ... json_object_get(s, "connection_log"), "conn_err", "trace" ...
 *   json_decref(s);
 *
 *   json_t *v = trace_summary_text(bytes, len);
 *
 * DESCRIPTION
 *   trace_summary_build() reads the records of a finished run once, in
 *   order, and returns a new JSON object with
 *
 *     connection_log  one object per connection the core opened, in the
 *                     order they were opened: fd, src, remote ("a.b.c.d:port"),
 *                     domain and binding (from the post_initiate_connection_smtp
 *                     call that returned the descriptor), opened_us,
 *                     established_us, closed_us (virtual microseconds after
 *                     the epoch; null when it never happened), commands (the
 *                     verb of every command line sent: "EHLO", "MAIL", ...),
 *                     replies (the code of every final reply line received;
 *                     null for a line that is not a reply), data_bytes, rx_bytes,
 *                     error (the err of a log_client_connection_failure call
 *                     for this connection, else null) and outcome:
 *                       refused       the remote refused the connection
 *                       unreachable   no route to the remote
 *                       timeout       the connect did not complete in time
 *                       quit          the client ended the session with QUIT
 *                       reset         the remote reset the connection
 *                       remote-closed the remote closed the connection
 *                       closed        the client closed without QUIT
 *                                     (a timeout or a protocol error)
 *                       open          never closed (an invariant violation)
 *     conn_err        { "initiate": { NAME: calls }, "initiate_fd": calls,
 *                       "failures": { NAME: calls } }: how often
 *                     post_initiate_connection_smtp returned each CONN_ERR
 *                     (and how often a descriptor), and how often
 *                     log_client_connection_failure was called with each err
 *     trace           only with with_trace: every record as
 *                     [t_us, kind, name, {key: value}], the value a number
 *                     when the record holds one, else a string
 *
 *   A log_client_connection_failure record names an address, not a
 *   descriptor: it belongs to the most recently opened connection to that
 *   address that is still open.
 *
 *   trace_summary_text() is a JSON string for len bytes that may not be
 *   UTF-8 (raw remote replies): valid UTF-8 is kept as it is; otherwise
 *   each byte outside printable ASCII becomes the text \xHH, as in the
 *   trace file.
 *
 * DIAGNOSTICS
 *   Out of memory aborts (the run could not be reported anyway).
 */
#ifndef MTASIM_SIM_TRACE_SUMMARY_H
#define MTASIM_SIM_TRACE_SUMMARY_H

#include <stddef.h>

#include <jansson.h>

#include "trace_store.h"

json_t *trace_summary_build(const struct trace_store *ts, int with_trace);
json_t *trace_summary_text(const char *bytes, size_t len);

#endif
