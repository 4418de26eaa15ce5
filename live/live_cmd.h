/*
 * live_cmd - the commands on the live environment: mtasim live, mtasim serve
 *
 * SYNOPSIS
 *   return live_main(argc, argv);      argv[0] = "live"
 *   return serve_main(argc, argv);     argv[0] = "serve"
 *
 * DESCRIPTION
 *   live_main() runs a scenario's injections through the core against
 *   real SMTP servers (live_run.c); serve_main() serves a scenario's
 *   scripted remote MTA on a real socket (serve.c).  docs/live.md is the
 *   user's reference.  Both return the command's exit code: 0 fine, 1 an
 *   expectation failed (live), 2 bad input or usage, 3 an invariant was
 *   violated, the run did not settle within --timeout, or an internal
 *   error.
 */
#ifndef MTASIM_LIVE_CMD_H
#define MTASIM_LIVE_CMD_H

#include <stdint.h>
#include <stdio.h>

int live_main(int argc, char **argv);
int serve_main(int argc, char **argv);

/* Shared option handling (live_cli.c): 0 / a stream, or -1 / NULL after
 * saying what is wrong as "mtasim CMD: ...". */
int live_cli_seed(const char *cmd, const char *arg, uint64_t *seed);
FILE *live_cli_trace_open(const char *cmd, const char *path);
/* Close what live_cli_trace_open() gave (standard output: flushed only; the
 * command line checks it at exit); 0, or -1 after saying "mtasim CMD: cannot
 * write trace file PATH: why" - a write that failed at any time counts. */
int live_cli_trace_close(const char *cmd, const char *path, FILE *trace);

#endif
