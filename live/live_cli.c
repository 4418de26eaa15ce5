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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_cmd.h"

/* live_cli_seed - "--seed N"; 0, or -1 said */
int live_cli_seed(const char *cmd, const char *arg, uint64_t *seed)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || arg[0] == '-' || errno != 0) {
        fprintf(stderr, "mtasim %s: --seed wants a non-negative integer, not '%s'\n", cmd, arg);
        return -1;
    }
    *seed = v;
    return 0;
}

/* live_cli_trace_open - the --trace file, line buffered; NULL said */
FILE *live_cli_trace_open(const char *cmd, const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "mtasim %s: cannot write trace file %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    setvbuf(f, NULL, _IOLBF, 0);
    return f;
}
