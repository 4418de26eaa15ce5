/*
 * live_cli - what the live commands' option handling shares
 *
 * SYNOPSIS
 *   if (live_cli_seed("live", optarg, &seed) < 0) ... usage error
 *   FILE *trace = live_cli_trace_open("serve", path);   NULL: said, usage error
 *
 * DESCRIPTION
 *   live_cli_seed() reads a non-negative decimal seed; live_cli_trace_open()
 *   opens a --trace destination ("-" = standard output), line buffered so a
 *   killed command leaves every record written before.  Both say what is
 *   wrong on standard error as "mtasim CMD: ...".
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_cmd.h"
#include "outfile.h"

/* live_cli_seed - "--seed N"; 0, or -1 said */
int live_cli_seed(const char *cmd, const char *arg, uint64_t *seed)
{
    char *end;
    errno = 0;
    /* Digits only (strtoull alone takes blanks, a sign, and clamps at
     * ULLONG_MAX with ERANGE). */
    unsigned long long v = strtoull(arg, &end, 10);
    if (!isdigit((unsigned char)arg[0]) || *end != '\0' || errno != 0) {
        fprintf(stderr, "mtasim %s: --seed wants an integer from 0 to 18446744073709551615, "
                "not '%s'\n", cmd, arg);
        return -1;
    }
    *seed = v;
    return 0;
}

/* The --trace file of the command (one per process), as an outfile. */
static struct outfile *trace_file;

/* live_cli_trace_open - the --trace file, line buffered; NULL said */
FILE *live_cli_trace_open(const char *cmd, const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    assert(trace_file == NULL);
    trace_file = outfile_open(path);
    if (trace_file == NULL) {
        fprintf(stderr, "mtasim %s: cannot write trace file %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    outfile_set_line(trace_file);
    return outfile_stream(trace_file);
}

/* live_cli_trace_close - see live_cmd.h */
int live_cli_trace_close(const char *cmd, const char *path, FILE *trace)
{
    if (trace == NULL)
        return 0;
    if (trace == stdout) {
        fflush(stdout);
        return 0;
    }
    assert(trace_file != NULL && trace == outfile_stream(trace_file));
    int e = outfile_close(trace_file);
    trace_file = NULL;
    if (e == 0)
        return 0;
    fprintf(stderr, "mtasim %s: cannot write trace file %s: %s\n", cmd, path, strerror(e));
    return -1;
}
