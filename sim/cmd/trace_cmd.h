/*
 * trace_cmd - "mtasim trace show": a binary trace rendered as the text trace
 *
 * SYNOPSIS
 *   return trace_cmd_main(argc, argv);      argv[0] is "trace"
 *   trace_format_arg("run", optarg, &ro.trace_bin)     --trace-format's value
 *
 * DESCRIPTION
 *   mtasim trace show FILE [-o OUT] reads the binary trace FILE (- for
 *   standard input; docs/trace-format.md) and writes exactly the text
 *   trace the same runs write with --trace-format text, byte for byte, to
 *   OUT (default, or -, standard output).  The lines are rendered by the
 *   trace store's own renderer (trace_text_line(), trace_store.h), so the
 *   SHA-256 of a run's lines is the digest the run reported.
 *
 *   trace_format_arg() reads "text" or "bin" for the commands that write a
 *   trace (mtasim run, mtasim bench): 0 and *bin set, or -1 after a line on
 *   stderr naming cmd.
 *
 * EXIT STATUS
 *   0 the whole file rendered; 2 usage, a bad or truncated file (one line
 *   "FILE:RECORD:BYTE: message" on stderr, trace_bin_read.h; the lines
 *   before the bad record are written) or an output that cannot be
 *   written or read.
 */
#ifndef MTASIM_SIM_TRACE_CMD_H
#define MTASIM_SIM_TRACE_CMD_H

int trace_cmd_main(int argc, char **argv);
int trace_format_arg(const char *cmd, const char *arg, int *bin);

#endif
