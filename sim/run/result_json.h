/*
 * result_json - machine-readable results of a run (docs/results.md)
 *
 * SYNOPSIS
 *   json_t *runs = json_array();
 *   json_array_append_new(runs, result_json_run(path, sc, &r, wall_ms));
 *   result_json_write(file, runs, passed, failed, errors);
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
/* Write the results document to file: 0, or the errno of what failed. */
int result_json_write(const char *file, json_t *runs, int passed, int failed, int errors);

#endif
