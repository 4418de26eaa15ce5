/*
 * mtasim - the command line
 *
 * SYNOPSIS
 *   mtasim run [--seed N] [--trace FILE|-] [--json FILE] [--check-determinism] [--quiet] FILE...
 *   mtasim check FILE...
 *   mtasim help [COMMAND] | mtasim version
 *
 * DESCRIPTION
 *   Every file named is processed even when an earlier one is bad or
 *   fails: one broken scenario never hides the results of the others.
 *
 * EXIT CODES (the highest over all files)
 *   0 every expectation met; 1 an expectation failed; 2 bad input or
 *   usage; 3 an invariant was violated or an internal error; 4 a plugin
 *   crashed or misbehaved.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "result_json.h"
#include "runner.h"
#include "scenario.h"

#define MTASIM_VERSION_STR "0.1.0"

static const char usage_main[] =
    "usage: mtasim COMMAND [OPTIONS] [FILE...]\n"
    "\n"
    "A deterministic simulation and test harness for an MTA's outbound core.\n"
    "\n"
    "commands:\n"
    "  run FILE...      run scenarios and check their expectations\n"
    "  check FILE...    parse and validate scenarios without running them\n"
    "  help [COMMAND]   show help\n"
    "  version          print the version\n"
    "\n"
    "exit codes: 0 all expectations met, 1 an expectation failed, 2 bad input or usage,\n"
    "            3 invariant violation or internal error, 4 a plugin crashed.\n"
    "See docs/cli.md and docs/scenario-language.md.\n";

static const char usage_run[] =
    "usage: mtasim run [OPTIONS] FILE...\n"
    "\n"
    "Run each scenario in a simulated world on a virtual clock and check its expectations.\n"
    "\n"
    "options:\n"
    "  --seed N              use seed N instead of the scenario's own\n"
    "  --trace FILE          write the full trace (every hook call, SMTP line, connection\n"
    "                        event and queue transition with its virtual time); - = stdout\n"
    "  --json FILE           write machine-readable results (docs/results.md)\n"
    "  --check-determinism   run every scenario twice; differing trace digests are an error (3)\n"
    "  -q, --quiet           print only failures and the closing count\n"
    "  -h, --help            show this help\n";

static const char usage_check[] =
    "usage: mtasim check FILE...\n"
    "\n"
    "Parse and validate each scenario (syntax, units, addresses, references, hook names)\n"
    "without running it.  Errors are printed as file:line:col: message; exit code 2.\n";

static double wall_ms_since(const struct timespec *t0)
{
    /* Wall time is reported, never used: it reaches no trace. */
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void print_error(const struct scn_error *e)
{
    printf("ERROR %s:%d:%d: %s\n", e->file, e->line, e->col, e->msg);
}

static int max_code(int a, int b) { return a > b ? a : b; }


static void indent_print(const char *text, const char *prefix)
{
    const char *p = text;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        printf("%s%.*s\n", prefix, (int)len, p);
        p = nl ? nl + 1 : NULL;
    }
}

/* report - the human-readable account of one run */
static void report(const char *path, const struct scn_scenario *sc, const struct run_result *r,
                   int quiet)
{
    char shortdig[13];
    snprintf(shortdig, sizeof shortdig, "%.12s", r->digest);
    if (r->verdict == RUN_PASS) {
        if (!quiet)
            printf("PASS %s  seed %" PRIu64 "  %d expectation%s  digest %s\n", path, r->seed,
                   r->nexp, r->nexp == 1 ? "" : "s", shortdig);
        return;
    }
    if (r->verdict == RUN_FAIL) {
        int first = 1;
        for (int i = 0; i < r->nexp; i++) {
            if (r->exp[i].passed)
                continue;
            if (first)
                printf("FAIL %s  seed %" PRIu64 "  (line %d: %s)\n", path, r->seed,
                       r->exp[i].line, r->exp[i].what);
            else
                printf("  also (line %d: %s)\n", r->exp[i].line, r->exp[i].what);
            first = 0;
            indent_print(r->exp[i].diff, "");
        }
    } else {
        printf("FAIL %s  seed %" PRIu64 "  (%s)\n", path, r->seed,
               r->verdict == RUN_INVARIANT ? "invariant violated" : run_verdict_str(r->verdict));
        for (int i = 0; i < r->nviolations; i++)
            printf("  invariant: %s\n", r->violations[i]);
        if (r->error)
            printf("  error: %s\n", r->error);
    }
    (void)sc;
    printf("  replay: mtasim run --seed %" PRIu64 " --trace - %s\n", r->seed, path);
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "seed", required_argument, NULL, 's' },
        { "trace", required_argument, NULL, 't' },
        { "json", required_argument, NULL, 'j' },
        { "check-determinism", no_argument, NULL, 'd' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct run_opts ro = { 0 };
    const char *trace_path = NULL, *json_path = NULL;
    int determinism = 0, quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 's': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || optarg[0] == '-') {
                fprintf(stderr, "mtasim run: --seed wants a non-negative integer, not '%s'\n", optarg);
                return 2;
            }
            ro.seed = v;
            ro.seed_set = 1;
            break;
        }
        case 't': trace_path = optarg; break;
        case 'j': json_path = optarg; break;
        case 'd': determinism = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage_run, stdout); return 0;
        default: fputs(usage_run, stderr); return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "mtasim run: no scenario file given\n");
        fputs(usage_run, stderr);
        return 2;
    }
    FILE *trace = NULL;
    if (trace_path) {
        trace = strcmp(trace_path, "-") == 0 ? stdout : fopen(trace_path, "w");
        if (trace == NULL) {
            fprintf(stderr, "mtasim run: cannot write trace file %s: %s\n", trace_path, strerror(errno));
            return 2;
        }
    }
    json_t *runs = json_array();
    int exit_code = 0, passed = 0, failed = 0, errors = 0;
    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        struct scn_error err;
        struct scn_scenario *sc = scn_parse_file(path, &err);
        if (sc == NULL) {
            print_error(&err);
            char line[1200];
            snprintf(line, sizeof line, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
            json_array_append_new(runs, result_json_error(path, line));
            exit_code = max_code(exit_code, 2);
            errors++;
            failed++;
            continue;
        }
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct run_result r;
        if (trace) {
            fprintf(trace, "# scenario %s  file %s  seed %" PRIu64 "\n", sc->name, path,
                    ro.seed_set ? ro.seed : sc->seed);
            fflush(trace);
        }
        ro.trace_out = trace;
        runner_run(sc, &ro, &r);
        if (trace)
            fflush(trace);
        if (determinism) {
            struct run_opts again = ro;
            again.trace_out = NULL;
            struct run_result r2;
            runner_run(sc, &again, &r2);
            if (strcmp(r.digest, r2.digest) != 0) {
                char msg[300];
                snprintf(msg, sizeof msg, "nondeterminism: the same scenario and seed gave trace digests %.16s and %.16s",
                         r.digest, r2.digest);
                char **v = realloc(r.violations, (size_t)(r.nviolations + 1) * sizeof *v);
                if (v == NULL)
                    abort();
                r.violations = v;
                r.violations[r.nviolations++] = strdup(msg);
                r.verdict = RUN_INVARIANT;
                r.exit_code = 3;
            }
            run_result_free(&r2);
        }
        double ms = wall_ms_since(&t0);
        report(path, sc, &r, quiet);
        json_array_append_new(runs, result_json_run(path, sc, &r, ms));
        exit_code = max_code(exit_code, r.exit_code);
        if (r.exit_code == 0)
            passed++;
        else
            failed++;
        run_result_free(&r);
        scn_free(sc);
        fflush(stdout);
    }
    if (trace && trace != stdout)
        fclose(trace);
    if (json_path && result_json_write(json_path, runs, passed, failed, errors) != 0) {
        fprintf(stderr, "mtasim run: cannot write %s\n", json_path);
        exit_code = max_code(exit_code, 2);
    }
    json_decref(runs);
    if (errors)
        printf("(%d of the failures: bad input)\n", errors);
    printf("%d passed, %d failed\n", passed, failed);
    return exit_code;
}

static int cmd_check(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_check, stdout);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "mtasim check: no scenario file given\n");
        fputs(usage_check, stderr);
        return 2;
    }
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        struct scn_error err;
        struct scn_scenario *sc = scn_parse_file(argv[i], &err);
        if (sc == NULL) {
            print_error(&err);
            rc = 2;
            continue;
        }
        printf("OK %s  (%d remote%s, %d injection%s, %d expectation%s)\n", argv[i],
               sc->nremotes, sc->nremotes == 1 ? "" : "s", sc->ninjects,
               sc->ninjects == 1 ? "" : "s", sc->nexpects, sc->nexpects == 1 ? "" : "s");
        scn_free(sc);
    }
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mtasim %s\n", MTASIM_VERSION_STR);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 2 && strcmp(argv[2], "run") == 0)
            fputs(usage_run, stdout);
        else if (argc > 2 && strcmp(argv[2], "check") == 0)
            fputs(usage_check, stdout);
        else
            fputs(usage_main, stdout);
        return 0;
    }
    fprintf(stderr, "mtasim: unknown command '%s'\n", cmd);
    fputs(usage_main, stderr);
    return 2;
}
