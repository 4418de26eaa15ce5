/*
 * result_json - machine-readable results of a run (docs/results.md)
 *
 * SYNOPSIS
 *   struct result_json_out *o = result_json_open(file);
 *   result_json_add(o, result_json_run(path, sc, &r, wall_ms));   per run
 *   int err = result_json_close(o, passed, failed, errors);
 *
 *   result_json_write(file, runs, passed, failed, errors);     all at once
 *
 * DESCRIPTION
 *   One object per scenario run: file, scenario, seed, verdict, exit_code,
 *   digest, expectations (line, text, passed, diff), messages (id, fate,
 *   done_at_us, attempts, recipients, delivered, failed, pending,
 *   last_error), violations, error, events, end_us, connections,
 *   trace_records, connection_log and conn_err (and, with --json-trace,
 *   trace: see trace_summary.h), wall_ms.
 *   Keys are written sorted so the file itself is deterministic apart from
 *   wall_ms.
 */
#ifndef MTASIM_SIM_RESULT_JSON_H
#define MTASIM_SIM_RESULT_JSON_H

#include <jansson.h>

#include "runner.h"
#include "scenario.h"

json_t *result_json_run(const char *path, const struct scn_scenario *sc,
                        const struct run_result *r, double wall_ms);
json_t *result_json_error(const char *path, const char *error);
/* The results document written as the runs finish: open creates file and
 * writes the head (an open that failed is reported by close); add writes
 * one run and drops the caller's reference (o may be NULL: no --json);
 * close writes the summary and closes: 0, or the errno of the first write,
 * close or open that failed.  The bytes are those of one json_dumpf() of
 * the whole document (keys sorted, indent 2).  Whatever fails, the other
 * outputs are unaffected; a file that could not be completed is reported
 * (docs/cli.md "Lost output"). */
struct result_json_out;
struct result_json_out *result_json_open(const char *file);
void result_json_add(struct result_json_out *o, json_t *run);
int result_json_close(struct result_json_out *o, int passed, int failed, int errors);
/* The same in one call, for a document built whole: 0, or an errno. */
int result_json_write(const char *file, json_t *runs, int passed, int failed, int errors);

#endif
