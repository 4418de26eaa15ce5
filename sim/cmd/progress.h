/*
 * progress - "done / total, failures so far" on a terminal, silence elsewhere
 *
 * SYNOPSIS
 *   struct progress *p = progress_start(stderr, total, "mtasim run");
 *   progress_clear(p);           before writing anything else to the terminal
 *   progress_show(p, done, failed, current_file);
 *   progress_end(p);
 *
 * DESCRIPTION
 *   progress_start() returns NULL - and every other call does nothing with
 *   NULL - unless out is a terminal (isatty), the environment variable CI
 *   is unset or empty (CI systems set it; their logs should not fill with
 *   carriage returns) and TERM is not "dumb".  MTASIM_PROGRESS=0 turns it
 *   off, MTASIM_PROGRESS=1 on even without a terminal (for tests).
 *
 *   The line is redrawn in place ("\r...\033[K") and shows
 *     [ 12/79]  1 failed  scenarios/dns/caching.scn
 *   total 0 means unknown ("[12]").  progress_clear() erases it so that a
 *   report printed to the same terminal does not mix with it;
 *   progress_end() erases it for good and frees p.
 *
 *   Wall-clock time is not used: what is shown depends only on the counts.
 */
#ifndef MTASIM_SIM_PROGRESS_H
#define MTASIM_SIM_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

struct progress;

struct progress *progress_start(FILE *out, size_t total, const char *label);
void progress_show(struct progress *p, size_t done, size_t failed, const char *current);
void progress_clear(struct progress *p);
void progress_end(struct progress *p);

#endif
