/*
 * parse - the scenario language: a .scn file into a struct scn_scenario
 *
 * SYNOPSIS
 *   #include "parse.h"
 *
 *   struct scn_error err;
 *   struct scn_scenario *sc = scn_parse_file("a.scn", &err);
 *   if (!sc) fprintf(stderr, "%s:%d:%d: %s\n", err.file, err.line, err.col, err.msg);
 *   scn_free(sc);
 *
 * DESCRIPTION
 *   The scenario language is line-oriented; docs/scenario-language.md is its
 *   reference.  The parser checks everything it can before a run starts:
 *   syntax, units, addresses, known config keys, CONN_ERR names, references
 *   (an expectation about message 3 needs an injection 3).  The first error
 *   stops the parse; scn_error says where (1-based line and column of the
 *   offending token, in the file that contains it, which may be an
 *   included one) and what.
 *
 *   The result is the data model of sim/scenario/scenario.h, released with
 *   scn_free().
 */
#ifndef MTASIM_SIM_PARSE_H
#define MTASIM_SIM_PARSE_H

#include "scenario.h"

/* Bounds, so that hostile input cannot exhaust memory. */
#define SCN_MAX_INCLUDE_DEPTH 8
#define SCN_MAX_LINE 4096

struct scn_error {
    char file[512];
    int line, col;
    char msg[512];
};

struct scn_scenario *scn_parse_file(const char *path, struct scn_error *err);
/* Parse from memory; name is used in positions and error messages. */
struct scn_scenario *scn_parse_string(const char *name, const char *text, struct scn_error *err);
/* Parse len bytes from memory, as if they were the file name (relative
 * includes resolve next to it); NUL bytes are read as a file's would be. */
struct scn_scenario *scn_parse_buffer(const char *name, const char *buf, size_t len,
                                      struct scn_error *err);

#endif
