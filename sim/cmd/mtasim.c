/*
 * mtasim - the command line
 *
 * SYNOPSIS
 *   mtasim run [--seed N | --seeds A..B] [--trace FILE|- [--trace-format text|bin]] [--json FILE [--json-trace]]
 *              [--check-determinism] [--quiet]
 *              [--plugin PATH[:ARGS]]... [--no-faketime] [--timeout SECONDS] FILE...
 *   mtasim check FILE...
 *   mtasim import CAPTURE [--server IP] [--port N]... [-o FILE]
 *   mtasim live FILE [--remote HOST=ADDR:PORT]... [--timeout S] ...    (live/live_run.c)
 *   mtasim serve FILE --listen ADDR:PORT [--once | --sessions N] ...    (live/serve.c)
 *   mtasim report RESULTS.json... [--junit FILE] [--html FILE] [--markdown FILE]
 *   mtasim trace show FILE [-o OUT]                                    (trace_cmd.c)
 *   mtasim explore FILE... --seeds A..B [--plugin P]... [--out DIR] [--jobs N] [--shard I/N]
 *   mtasim help [COMMAND] | mtasim version
 *
 * DESCRIPTION
 *   Every file named is processed even when an earlier one is bad or
 *   fails: one broken scenario never hides the results of the others.
 *   Each run (each seed) happens in a child process (isolate.h): a plugin
 *   that crashes, hangs past --timeout or exits ends only its own
 *   scenario, with exit code 4 and a report naming the plugin, the hook
 *   and the virtual time.
 *
 * EXIT CODES (the highest over all files)
 *   0 every expectation met; 1 an expectation failed; 2 bad input or
 *   usage; 3 an invariant was violated or an internal error; 4 a plugin
 *   crashed or misbehaved.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fdreserve.h"
#include "faketime.h"
#include "isolate.h"
#include "live_cmd.h"
#include "outfile.h"
#include "pcap_import.h"
#include "pcap_write.h"
#include "plugin_path.h"
#include "progress.h"
#include "report_cmd.h"
#include "bench.h"
#include "result_json.h"
#include "runner.h"
#include "parse.h"
#include "trace_bin_write.h"
#include "trace_cmd.h"

#define MTASIM_VERSION_STR "0.1.0"

static const char usage_main[] =
    "usage: mtasim COMMAND [OPTIONS] [FILE...]\n"
    "\n"
    "A deterministic simulation and test harness for an MTA's outbound core.\n"
    "\n"
    "commands:\n"
    "  run FILE...      run scenarios and check their expectations\n"
    "  check FILE...    parse and validate scenarios without running them\n"
    "  import CAPTURE   turn a packet capture of SMTP sessions into a scenario\n"
    "  report JSON...   turn result JSON into JUnit XML, an HTML report, a Markdown summary\n"
    "  live FILE        run a scenario's injections against real SMTP servers (docs/live.md)\n"
    "  serve FILE       serve a scenario's scripted remote MTA on a real socket\n"
    "  bench            run a synthetic world at scale and print performance figures\n"
    "  trace show FILE  render a binary trace (--trace-format bin) as the text trace\n"
    "  explore FILE...  swarm-test scenarios under random faults; shrink what fails\n"
    "  help [COMMAND]   show help\n"
    "  version          print the version\n"
    "\n"
    "exit codes: 0 all expectations met, 1 an expectation failed, 2 bad input or usage,\n"
    "            3 invariant violation or internal error, 4 a plugin crashed.\n"
    "See man mtasim and man mtasim-scenario (docs/cli.md, docs/scenario-language.md).\n";

static const char usage_run[] =
    "usage: mtasim run [OPTIONS] FILE...\n"
    "\n"
    "Run each scenario in a simulated world on a virtual clock and check its expectations.\n"
    "\n"
    "options:\n"
    "  --seed N              use seed N instead of the scenario's own\n"
    "  --seeds A..B          run every scenario once per seed A, A+1, ... B; the closing\n"
    "                        summary gives the replay command of each failed seed\n"
    "  --trace FILE          write the full trace (every hook call, SMTP line, connection\n"
    "                        event and queue transition with its virtual time); - = stdout\n"
    "  --trace-format F      text (the default) or bin: a compact binary trace that\n"
    "                        'mtasim trace show' renders as the text (docs/trace-format.md)\n"
    "  --json FILE           write machine-readable results (docs/results.md)\n"
    "  --json-trace          with --json: also every trace record, for the HTML report\n"
    "  --pcap FILE|DIR/      write every simulated connection as packets (docs/pcap.md):\n"
    "                        FILE for one run, DIR/NAME.pcap per scenario otherwise\n"
    "  --check-determinism   run every scenario twice; differing trace digests are an error (3)\n"
    "  -q, --quiet           print only failures and the closing count\n"
    "  --no-faketime         do not run plugins under libfaketime: their wall clock is the\n"
    "                        real one, not virtual time (docs/faketime.md)\n"
    "  --plugin PATH[:ARGS]  load a plugin into every run, before the scenario's own\n"
    "                        (repeatable, loaded in the order given)\n"
    "  --timeout SECONDS     wall-clock limit per run (default 10); a run still going is\n"
    "                        killed: exit 4 when a plugin was running, else 3\n"
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

/* print_warnings - what can never take effect in sc, on stderr; the exit
 * status does not change (docs/scenario-language.md, "Warnings") */
static void print_warnings(const struct scn_scenario *sc)
{
    for (int i = 0; i < sc->nwarnings; i++)
        fprintf(stderr, "WARNING %s:%d:%d: %s\n", sc->warnings[i].pos.file,
                sc->warnings[i].pos.line, sc->warnings[i].pos.col, sc->warnings[i].msg);
}

static int max_code(int a, int b) { return a > b ? a : b; }

/* Standard output as an outfile (see main), or NULL before main set it up. */
static struct outfile *stdout_file;


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

/* --seeds A..B: the range, and the (file, seed) runs that failed. */
static struct {
    int set;
    uint64_t first, last;
} seed_range;
static struct seed_failure {
    const char *path;       /* argv's */
    uint64_t seed;
} *seed_failures;
static size_t nseed_failures;

/* parse_seed_range - "A..B" with A <= B; 0, or -1 after saying what is wrong */
static int parse_seed_range(const char *arg)
{
    char *end, *end2;
    const char *dots = strstr(arg, "..");
    errno = 0;
    if (dots != NULL && dots != arg && isdigit((unsigned char)arg[0])
        && isdigit((unsigned char)dots[2])) {
        unsigned long long a = strtoull(arg, &end, 10), b = strtoull(dots + 2, &end2, 10);
        if (errno == 0 && end == dots && *end2 == '\0' && a <= b) {
            seed_range.set = 1;
            seed_range.first = a;
            seed_range.last = b;
            return 0;
        }
    }
    fprintf(stderr, "mtasim run: --seeds wants a range A..B of non-negative integers with "
            "A <= B, not '%s'\n", arg);
    return -1;
}

/* seed_range_first - start a file's runs: with --seeds, at its first seed; 1 */
static int seed_range_first(struct run_opts *ro)
{
    if (seed_range.set) {
        ro->seed = seed_range.first;
        ro->seed_set = 1;
    }
    return 1;
}

/* seed_range_next - the next seed of --seeds; 0 when the file is done */
static int seed_range_next(struct run_opts *ro)
{
    /* Without --seeds each file runs once; "last" may be UINT64_MAX. */
    if (!seed_range.set || ro->seed >= seed_range.last)
        return 0;
    ro->seed++;
    return 1;
}

/* seed_failure_add - remember a failed (file, seed) for the closing summary */
static void seed_failure_add(const char *path, uint64_t seed)
{
    struct seed_failure *f = realloc(seed_failures, (nseed_failures + 1) * sizeof *f);
    if (f == NULL)
        abort();
    seed_failures = f;
    seed_failures[nseed_failures].path = path;
    seed_failures[nseed_failures].seed = seed;
    nseed_failures++;
}

/*
 * print_replay - "  replay: mtasim run --seed N --trace - FILE", FILE quoted
 * for a POSIX shell when it holds anything but [A-Za-z0-9@%+=:,./_-] (the
 * rule of Python's shlex.quote, which the reports use): pasted, a file named
 * "$(id).scn" is a file name, never a command.
 */
static void print_replay(uint64_t seed, const char *path)
{
    int plain = path[0] != '\0';
    for (const char *c = path; *c && plain; c++)
        plain = isalnum((unsigned char)*c) || strchr("@%+=:,./_-", *c) != NULL;
    printf("  replay: mtasim run --seed %" PRIu64 " --trace - ", seed);
    if (plain) {
        printf("%s\n", path);
        return;
    }
    putchar('\'');
    for (const char *c = path; *c; c++) {
        if (*c == '\'')
            fputs("'\"'\"'", stdout);         /* close, a quoted ', reopen */
        else
            putchar(*c);
    }
    fputs("'\n", stdout);
}

/* seed_summary - after --seeds: passes, failures and how to replay each failure */
static void seed_summary(int passed, int failed)
{
    if (!seed_range.set)
        return;
    printf("seeds %" PRIu64 "..%" PRIu64 ": %d run%s passed, %d failed\n", seed_range.first,
           seed_range.last, passed, passed == 1 ? "" : "s", failed);
    for (size_t i = 0; i < nseed_failures; i++)
        print_replay(seed_failures[i].seed, seed_failures[i].path);
    free(seed_failures);
    seed_failures = NULL;
    nseed_failures = 0;
}

/* free_cli_plugin - what add_cli_plugin allocated */
static void free_cli_plugin(struct scn_plugin *pl)
{
    free(pl->name);
    free(pl->file);
    free(pl->args);
    memset(pl, 0, sizeof *pl);
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
               r->why ? r->why
                      : r->verdict == RUN_INVARIANT ? "invariant violated" : run_verdict_str(r->verdict));
        for (int i = 0; i < r->nviolations; i++)
            printf("  invariant: %s\n", r->violations[i]);
        if (r->error)
            printf(r->verdict == RUN_PLUGIN ? "  %s\n" : "  error: %s\n", r->error);
    }
    (void)sc;
    print_replay(r->seed, path);
}

/* add_cli_plugin - one --plugin PATH[:ARGS], the file found now; 0 or -1 */
static int add_cli_plugin(struct scn_plugin *pl, const char *spec)
{
    char why[256];
    memset(pl, 0, sizeof *pl);
    plugin_spec_split(spec, &pl->name, &pl->args);
    pl->file = plugin_resolve(pl->name, NULL, why, sizeof why);
    if (pl->file == NULL) {
        fprintf(stderr, "mtasim run: --plugin %s: cannot find plugin '%s': %s\n", spec, pl->name, why);
        free_cli_plugin(pl);
        return -1;
    }
    return 0;
}

static int run_files(int argc, char **argv, struct run_opts *ro, const char *trace_path,
                     const char *json_path, int determinism, int quiet, double timeout);

static size_t runs_planned(int nfiles);

/* --pcap: the spec given, and the names handed out (pcap_write.h) */
static struct {
    const char *spec;
    char **used;
    size_t nused;
    char path[4096];
} pcap_out;

/* pcap_check_spec - --pcap FILE needs exactly one run; DIR/ is made if missing; 0 or -1 */
static int pcap_check_spec(int nfiles)
{
    if (pcap_out.spec == NULL)
        return 0;
    size_t n = strlen(pcap_out.spec);
    if (n == 0) {
        fprintf(stderr, "mtasim run: --pcap wants a file or a directory, not ''\n");
        return -1;
    }
    if (!pcap_output_is_dir(pcap_out.spec)) {
        if (runs_planned(nfiles) != 1) {
            fprintf(stderr, "mtasim run: --pcap %s: one file holds one run; give a directory "
                    "(--pcap DIR/) for several scenarios or seeds\n", pcap_out.spec);
            return -1;
        }
        return 0;
    }
    if (pcap_out.spec[n - 1] == '/' && mkdir(pcap_out.spec, 0777) < 0 && errno != EEXIST) {
        fprintf(stderr, "mtasim run: --pcap %s: cannot make the directory: %s\n", pcap_out.spec,
                strerror(errno));
        return -1;
    }
    return 0;
}

/* pcap_run_path - point ro at this run's capture file when --pcap was given */
static void pcap_run_path(struct run_opts *ro, const struct scn_scenario *sc)
{
    ro->pcap_path = NULL;
    if (pcap_out.spec == NULL)
        return;
    /* A name too long for a path makes the run's open fail and say so. */
    if (pcap_output_path(pcap_out.spec, sc->name, ro->seed_set ? ro->seed : sc->seed,
                         seed_range.set, &pcap_out.used, &pcap_out.nused, pcap_out.path,
                         sizeof pcap_out.path) < 0)
        snprintf(pcap_out.path, sizeof pcap_out.path, "%s", pcap_out.spec);
    ro->pcap_path = pcap_out.path;
}

/* pcap_names_free - forget the names handed out */
static void pcap_names_free(void)
{
    for (size_t i = 0; i < pcap_out.nused; i++)
        free(pcap_out.used[i]);
    free(pcap_out.used);
    pcap_out.used = NULL;
    pcap_out.nused = 0;
}

/* runs_planned - how many runs nfiles files make (per --seeds); 0 = too many to say */
static size_t runs_planned(int nfiles)
{
    uint64_t per_file = seed_range.set ? seed_range.last - seed_range.first + 1 : 1;
    if (per_file == 0 || per_file > SIZE_MAX / (size_t)(nfiles > 0 ? nfiles : 1))
        return 0;
    return (size_t)per_file * (size_t)nfiles;
}

/* main's argv, for re-executing under libfaketime (faketime_setup) */
static char **main_argv;

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        { "seed", required_argument, NULL, 's' },
        { "seeds", required_argument, NULL, 'S' },
        { "trace", required_argument, NULL, 't' },
        { "trace-format", required_argument, NULL, 'F' },
        { "json", required_argument, NULL, 'j' },
        { "json-trace", no_argument, NULL, 'J' },
        { "pcap", required_argument, NULL, 'P' },
        { "check-determinism", no_argument, NULL, 'd' },
        { "quiet", no_argument, NULL, 'q' },
        { "plugin", required_argument, NULL, 'p' },
        { "no-faketime", no_argument, NULL, 'N' },
        { "timeout", required_argument, NULL, 'T' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct run_opts ro = { 0 };
    const char *trace_path = NULL, *json_path = NULL;
    int determinism = 0, quiet = 0, no_faketime = 0, c;
    double timeout = ISOLATE_DEFAULT_TIMEOUT;
    struct scn_plugin plugins[PLUGIN_MAX];
    int nplugins = 0, rc = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            /* One reading of a seed for every command (live_cli.c): the
             * scenario's own "seed" line's range, 0 to 2^64-1. */
            if (live_cli_seed("run", optarg, &ro.seed) < 0)
                return 2;
            ro.seed_set = 1;
            break;
        case 'S':
            if (parse_seed_range(optarg) < 0) {
                rc = 2;
                goto out;
            }
            break;
        case 't': trace_path = optarg; break;
        case 'F':
            if (trace_format_arg("run", optarg, &ro.trace_bin) < 0) {
                rc = 2;
                goto out;
            }
            break;
        case 'j': json_path = optarg; break;
        case 'J': ro.json_trace = 1; break;
        case 'P': pcap_out.spec = optarg; break;
        case 'd': determinism = 1; break;
        case 'q': quiet = 1; break;
        case 'N': no_faketime = 1; break;
        case 'p':
            if (nplugins == PLUGIN_MAX || add_cli_plugin(&plugins[nplugins], optarg) < 0) {
                rc = 2;
                goto out;
            }
            nplugins++;
            break;
        case 'T': {
            char *end;
            timeout = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(timeout > 0) || timeout > 86400) {
                fprintf(stderr, "mtasim run: --timeout wants seconds between 0 and 86400, not '%s'\n",
                        optarg);
                rc = 2;
                goto out;
            }
            break;
        }
        case 'h': fputs(usage_run, stdout); goto out;
        default: fputs(usage_run, stderr); rc = 2; goto out;
        }
    }
    ro.plugins = plugins;
    ro.nplugins = nplugins;
    if (ro.json_trace && json_path == NULL) {
        fprintf(stderr, "mtasim run: --json-trace adds the trace to the --json file: give --json FILE too\n");
        rc = 2;
        goto out;
    }
    /* "--json a.scn b.scn" takes a.scn as the results file: refuse to write
     * over a scenario (an output path ending in .scn) rather than lose it. */
    const char *outs[2][2] = { { "--json", json_path }, { "--trace", trace_path } };
    for (int i = 0; i < 2; i++) {
        size_t n = outs[i][1] ? strlen(outs[i][1]) : 0;
        if (n >= 4 && strcmp(outs[i][1] + n - 4, ".scn") == 0) {
            fprintf(stderr, "mtasim run: %s %s would write over a scenario: give the output "
                    "file first, e.g. %s results.json a.scn\n", outs[i][0], outs[i][1],
                    outs[i][0]);
            rc = 2;
            goto out;
        }
    }
    if (pcap_check_spec(argc - optind) < 0) {
        rc = 2;
        goto out;
    }
    if (optind >= argc) {
        fprintf(stderr, "mtasim run: no scenario file given\n");
        fputs(usage_run, stderr);
        rc = 2;
        goto out;
    }
    /* Plugins read virtual time through libfaketime (docs/faketime.md): this
     * may start mtasim again under the preload, and then does not return. */
    faketime_setup(main_argv, no_faketime,
                   !no_faketime && faketime_wanted(argv + optind, argc - optind, nplugins));
    /* Without --json nothing reads the trace summaries: runs stream
     * (runner.h), keeping no trace when their expectations allow it. */
    ro.stream = json_path == NULL;
    rc = run_files(argc, argv, &ro, trace_path, json_path, determinism, quiet, timeout);
out:
    for (int i = 0; i < nplugins; i++)
        free_cli_plugin(&plugins[i]);
    return rc;
}

/*
 * rerun_failed - --check-determinism: the second run crashed, hung, exited
 * or failed inside (r2), where the first (r) did not.
 *
 * That is the second run's own verdict, reported as such with its exit
 * code (3 internal error, 4 plugin; docs/cli.md) - not "nondeterminism":
 * a run killed by the watchdog has no digest to compare, and a wall-clock
 * timeout under load says nothing about the trace.  r keeps its trace,
 * expectations and digest (the first run's, which wrote the outputs).
 */
static void rerun_failed(struct run_result *r, struct run_result *r2)
{
    char msg[1400];
    snprintf(msg, sizeof msg, "in the second run (--check-determinism): %s",
             r2->error ? r2->error : run_verdict_str(r2->verdict));
    free(r->error);
    r->error = strdup(msg);
    free(r->why);
    r->why = r2->why;
    r2->why = NULL;
    r->verdict = r2->verdict;
    r->exit_code = r2->exit_code;
}

/* scenario_line - "# scenario NAME  file PATH  seed N" to the trace, before
 * a run's records: a line of the text, a text block of the binary trace */
static void scenario_line(FILE *trace, int bin, const char *name, const char *path, uint64_t seed)
{
    char *line = NULL;
    int n = asprintf(&line, "# scenario %s  file %s  seed %" PRIu64, name, path, seed);
    if (n < 0)
        abort();
    if (bin) {
        tbin_write_text(trace, line, (size_t)n);
    } else {
        fprintf(trace, "%s\n", line);
        fflush(trace);
    }
    free(line);
}

/* run_files - every scenario of the command line, each run isolated */
static int run_files(int argc, char **argv, struct run_opts *ro_in, const char *trace_path,
                     const char *json_path, int determinism, int quiet, double timeout)
{
    struct run_opts ro = *ro_in;
    FILE *trace = NULL;
    struct outfile *trace_file = NULL;
    int trace_errno = 0;        /* the first error writing the trace, in any run */
    if (trace_path) {
        int to_stdout = strcmp(trace_path, "-") == 0;
        trace_file = to_stdout ? stdout_file : outfile_open(trace_path);
        if (trace_file == NULL) {
            fprintf(stderr, "mtasim run: cannot write trace file %s: %s\n", trace_path, strerror(errno));
            return 2;
        }
        trace = outfile_stream(trace_file);
        /* Line by line, so a run killed mid-way leaves every record before it
         * (the binary trace writes whole blocks: trace_bin_write.h). */
        if (!to_stdout && !ro.trace_bin)
            outfile_set_line(trace_file);
        ro.trace_file = trace_file;
        if (ro.trace_bin)
            tbin_write_header(trace);
    }
    /* A binary trace on standard output is the only thing there: what the
     * runs report goes to standard error instead, nothing lost. */
    FILE *report_out = stdout;
    if (trace_file == stdout_file && ro.trace_bin)
        stdout = stderr;
    /* Each run goes to the file as it finishes (result_json.h): with
     * --json-trace a run's records are megabytes, and a parent holding
     * them all makes every later fork slower. */
    struct result_json_out *json_out = json_path ? result_json_open(json_path) : NULL;
    int exit_code = 0, passed = 0, failed = 0, errors = 0;
    struct progress *progress = progress_start(stderr, runs_planned(argc - optind), "mtasim run");
    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        progress_show(progress, (size_t)(passed + failed), (size_t)failed, path);
        struct scn_error err;
        struct scn_scenario *sc = scn_parse_file(path, &err);
        if (sc == NULL) {
            progress_clear(progress);
            print_error(&err);
            char line[1200];
            snprintf(line, sizeof line, "%s:%d:%d: %s", err.file, err.line, err.col, err.msg);
            result_json_add(json_out, result_json_error(path, line));
            exit_code = max_code(exit_code, 2);
            errors++;
            failed++;
            continue;
        }
        progress_clear(progress);
        print_warnings(sc);
        /* --seeds A..B: the same scenario once per seed (seed_range_first). */
        for (int more = seed_range_first(&ro); more; more = seed_range_next(&ro)) {
            struct timespec t0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            struct run_result r;
            if (trace)
                scenario_line(trace, ro.trace_bin, sc->name, path, ro.seed_set ? ro.seed : sc->seed);
            ro.trace_out = trace;
            pcap_run_path(&ro, sc);
            runner_run_isolated(sc, &ro, timeout, &r);
            if (trace)
                fflush(trace);
            if (determinism) {
                struct run_opts again = ro;
                again.trace_out = NULL;
                again.pcap_path = NULL;     /* the first run wrote the capture */
                /* Only the digest is compared: the records in the JSON are
                 * the first run's, and the trace (so the digest) is the same
                 * with or without them in the summary (runner.h). */
                again.json_trace = 0;
                struct run_result r2;
                runner_run_isolated(sc, &again, timeout, &r2);
                if (r.exit_code < 2 && (r2.verdict == RUN_ERROR || r2.verdict == RUN_PLUGIN))
                    rerun_failed(&r, &r2);
                else if (r.exit_code < 2 && strcmp(r.digest, r2.digest) != 0) {
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
            progress_clear(progress);
            if (r.exit_code == 2) {
                /* A plugin that cannot be loaded is bad input, reported as such. */
                printf("ERROR %s\n", r.error ? r.error : path);
                errors++;
            } else {
                report(path, sc, &r, quiet);
            }
            if (r.trace_errno != 0 && trace_errno == 0)
                trace_errno = r.trace_errno;
            result_json_add(json_out, result_json_run(path, sc, &r, ms));
            exit_code = max_code(exit_code, r.exit_code);
            if (r.exit_code == 0)
                passed++;
            else
                failed++;
            if (seed_range.set && r.exit_code != 0)
                seed_failure_add(path, r.seed);
            run_result_free(&r);
            progress_show(progress, (size_t)(passed + failed), (size_t)failed, path);
        }
        scn_free(sc);
        fflush(stdout);
    }
    progress_end(progress);
    pcap_names_free();
    /* Lost output is an error (exit 2), never a short file and exit 0. */
    if (trace_file != NULL && ro.trace_bin)
        tbin_write_end(trace);
    if (trace_file != NULL) {
        int e = trace_file == stdout_file ? (fflush(trace), outfile_error(trace_file))
                                          : outfile_close(trace_file);
        if (trace_errno == 0)
            trace_errno = e;
    }
    /* On standard output, main() reports it - unless only the runs' writes
     * failed; one line either way. */
    if (trace_errno != 0 && !(trace_file == stdout_file && outfile_error(stdout_file) != 0)) {
        if (trace_file == stdout_file)
            fprintf(stderr, "mtasim run: cannot write the trace to standard output: %s\n",
                    strerror(trace_errno));
        else
            fprintf(stderr, "mtasim run: cannot write trace file %s: %s\n", trace_path,
                    strerror(trace_errno));
        exit_code = max_code(exit_code, 2);
    }
    int json_errno = json_out ? result_json_close(json_out, passed, failed, errors) : 0;
    if (json_errno != 0) {
        fprintf(stderr, "mtasim run: cannot write %s: %s\n", json_path, strerror(json_errno));
        exit_code = max_code(exit_code, 2);
    }
    if (errors)
        printf("(%d of the failures: bad input)\n", errors);
    seed_summary(passed, failed);
    printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    stdout = report_out;
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
        print_warnings(sc);
        printf("OK %s  (%d remote%s, %d injection%s, %d expectation%s)\n", argv[i],
               sc->nremotes, sc->nremotes == 1 ? "" : "s", sc->ninjects,
               sc->ninjects == 1 ? "" : "s", sc->nexpects, sc->nexpects == 1 ? "" : "s");
        scn_free(sc);
    }
    return rc;
}

static int dispatch(int argc, char **argv);

/*
 * main - the command, then the verdict on standard output
 *
 * Standard output is an outfile (core/util/outfile.h), so that a write that
 * failed (a full disk, /dev/full, a closed pipe's EPIPE) is known at the end
 * with its reason: one line on stderr and exit status 2 at least, never 0.
 */
int main(int argc, char **argv)
{
    /* glibc gives the heap's free top back to the kernel whenever more than
     * 128 KiB is free there (M_TRIM_THRESHOLD).  A run frees sessions,
     * segments and buffers in waves and allocates them again at once, so
     * each wave faulted its pages in anew: reuse 200k took 604k page faults
     * and 1.14 CPU-s, 111k and 0.89 CPU-s with this (docs/performance.md).
     * Peak RSS is unchanged; what is freed stays mapped for the next wave. */
    (void) mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* Before anything opens a file: the simulated descriptors' numbers
     * stay clear of the process's real files (fdreserve.h).  Without the
     * room for it nothing is reserved, and plugins are warned off. */
    if (fdreserve_setup() < 0)
        fprintf(stderr, "mtasim: warning: cannot reserve descriptors %d-%d for the "
                "simulation: a plugin's call on a simulated descriptor may reach a real "
                "file\n", FDRESERVE_BASE, FDRESERVE_END - 1);
    main_argv = argv;
    FILE *real_stdout = stdout;
    stdout_file = outfile_fd(STDOUT_FILENO, 0);
    if (stdout_file != NULL) {
        stdout = outfile_stream(stdout_file);
        outfile_set_line(stdout_file);
    } else {
        setvbuf(stdout, NULL, _IOLBF, 0);
    }
    int rc = dispatch(argc, argv);
    if (stdout_file != NULL) {
        int e = outfile_close(stdout_file);
        stdout = real_stdout;
        stdout_file = NULL;
        if (e != 0) {
            fprintf(stderr, "mtasim: cannot write standard output: %s\n", strerror(e));
            rc = max_code(rc, 2);
        }
    }
    return rc;
}

/* dispatch - run the command argv[1] names; its exit status */
static int dispatch(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return report_cmd_main(argc - 1, argv + 1);
    if (strcmp(cmd, "import") == 0)
        return pcap_import_main(argc - 1, argv + 1);
    if (strcmp(cmd, "live") == 0)
        return live_main(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return serve_main(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return bench_main(argc - 1, argv + 1);
    if (strcmp(cmd, "explore") == 0)
        return explore_cmd_main(argc - 1, argv + 1);
    if (strcmp(cmd, "trace") == 0)
        return trace_cmd_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("mtasim %s\n", MTASIM_VERSION_STR);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        if (argc > 2 && strcmp(argv[2], "run") == 0)
            fputs(usage_run, stdout);
        else if (argc > 2 && strcmp(argv[2], "check") == 0)
            fputs(usage_check, stdout);
        else if (argc > 2 && strcmp(argv[2], "import") == 0) {
            char *import_help[] = { (char *)"import", (char *)"--help", NULL };
            return pcap_import_main(2, import_help);
        }
        else if (argc > 2 && (strcmp(argv[2], "live") == 0 || strcmp(argv[2], "serve") == 0)) {
            char *live_help[] = { argv[2], (char *)"--help", NULL };
            return strcmp(argv[2], "live") == 0 ? live_main(2, live_help) : serve_main(2, live_help);
        }
        else if (argc > 2 && strcmp(argv[2], "report") == 0) {
            char *report_help[] = { (char *)"report", (char *)"--help", NULL };
            return report_cmd_main(2, report_help);
        }
        else if (argc > 2 && strcmp(argv[2], "trace") == 0) {
            char *trace_help[] = { (char *)"trace", (char *)"--help", NULL };
            return trace_cmd_main(2, trace_help);
        }
        else if (argc > 2 && strcmp(argv[2], "explore") == 0) {
            char *explore_help[] = { (char *)"explore", (char *)"--help", NULL };
            return explore_cmd_main(2, explore_help);
        }
        else
            fputs(usage_main, stdout);
        return 0;
    }
    fprintf(stderr, "mtasim: unknown command '%s'\n", cmd);
    fputs(usage_main, stderr);
    return 2;
}
