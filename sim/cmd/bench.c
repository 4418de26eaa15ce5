/*
 * bench - "mtasim bench": synthetic worlds at scale, and the figures
 *
 * SYNOPSIS
 *   mtasim bench [--mode mix|reuse|queued] [--messages N] [--domains D]
 *                [--hours H] [--runs R] [--seed S] [--trace FILE]
 *                [--trace-format text|bin]
 *
 * DESCRIPTION
 *   The world is written as scenario text (so it is parsed and checked
 *   like any scenario) and run by the ordinary runner in its lean mode:
 *   no trace unless --trace (text, or with --trace-format bin the binary
 *   trace of docs/trace-format.md), no per-message summaries, the
 *   invariants still checked.  Messages do not come from "inject" lines but from a
 *   generator that injects message i at its time, all sharing one body.
 *
 *   mix     N messages spread evenly over H hours to D domains, whose
 *           remotes behave by class: 80% accept, 5% greylist the first
 *           attempt, 5% answer 421 to the first sessions, 5% greet after
 *           20 s, 3% refuse connections, 2% have a failing DNS server.
 *   reuse   N messages at once to D domains that accept everything: the
 *           sessions carry message after message (RSET between).
 *   queued  N messages at once to D domains that refuse connections: the
 *           messages stay queued; measures memory per queued message
 *           against an empty run of the same world.
 *
 *   Printed: wall time, simulated events per second, deliveries per
 *   second, virtual seconds per wall second, peak RSS, bytes per
 *   message; the median of R runs, each in its own process.
 *
 * DIAGNOSTICS
 *   Bad options, or a trace file that cannot be written: a line on
 *   stderr, exit 2.  A run that violates an invariant: its message,
 *   exit 3 (a benchmark of a broken core means nothing).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "mta.h"
#include "outfile.h"
#include "parse.h"
#include "runner.h"
#include "sim_sched.h"
#include "textbuf.h"
#include "trace_bin_write.h"
#include "trace_cmd.h"

#define BENCH_MAX_RUNS 31
/* One remote per domain: the parser's limit on remotes (SCN_MAX_REMOTES in
 * sim/lang/parse_internal.h), so every accepted --domains parses. */
#define BENCH_MAX_DOMAINS 4096
#define BENCH_EPOCH (1585180800LL * 1000000)   /* 2020-03-26T00:00:00Z */

enum bench_mode { MODE_MIX, MODE_REUSE, MODE_QUEUED };

struct bench_opts {
    enum bench_mode mode;
    long messages, domains, hours, runs;
    uint64_t seed;
    const char *trace_path;
    int trace_bin;          /* --trace-format bin */
};

/* What one run measured, sent from the child to the parent. */
struct bench_figures {
    int ok;                 /* 0: the run failed; message in error */
    int write_failed;       /* the trace could not be written: exit 2, not 3 */
    double wall_s;
    double cpu_s;           /* user + system time of the run itself */
    uint64_t events;
    unsigned long delivered, failed, transactions, connections;
    long peak_rss_kib;
    long long end_us;
    char error[256];
};

/* ---- the world --------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->len : NULL, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap ? t->cap * 2 : 1 << 16;
        while (t->cap < t->len + (size_t)n + 1)
            t->cap *= 2;
        t->p = realloc(t->p, t->cap);
        if (t->p == NULL)
            abort();
    }
}

/* The class of domain d in mix mode, by its index: stable and documented. */
static int mix_class(long d)
{
    long k = d % 100;
    return k < 80 ? 0 : k < 85 ? 1 : k < 90 ? 2 : k < 95 ? 3 : k < 98 ? 4 : 5;
}

/* world_text - the scenario of the world, without injections */
static char *world_text(const struct bench_opts *o)
{
    struct text t = { 0 };
    put(&t, "scenario bench\nseed %" PRIu64 "\nepoch 2020-03-26T00:00:00Z\n", o->seed);
    if (o->mode == MODE_MIX)
        put(&t, "run for %ldh\n", o->hours);
    else
        put(&t, "run for %ldh\n", o->mode == MODE_QUEUED ? 1L : o->hours);
    put(&t, "dns latency 2ms\n");
    if (o->mode == MODE_QUEUED)
        put(&t, "config retry_interval 2h\n");   /* nobody leaves the queue in the hour */
    for (long d = 0; d < o->domains; d++) {
        unsigned a = (unsigned)(d + 1);
        int cls = o->mode == MODE_MIX ? mix_class(d) : o->mode == MODE_REUSE ? 0 : 4;
        if (cls == 5) {
            put(&t, "dns d%ld.bench.test SERVFAIL\n", d);
            continue;
        }
        put(&t, "dns d%ld.bench.test MX 10 mx%ld.bench.test\n", d, d);
        put(&t, "dns mx%ld.bench.test A 10.%u.%u.%u\n", d, (a >> 16) & 255, (a >> 8) & 255, a & 255);
        put(&t, "remote 10.%u.%u.%u name mx%ld.bench.test\n", (a >> 16) & 255, (a >> 8) & 255,
            a & 255, d);
        put(&t, "  latency 5ms\n");
        switch (cls) {
        case 1: put(&t, "  rcpt 451 4.7.1 greylisted   when attempt 1\n"); break;
        case 2: put(&t, "  greet 421 4.7.0 too many connections   when session <= 3\n"); break;
        case 3: put(&t, "  greet 220 slow.bench.test ESMTP   delay 20s\n"); break;
        case 4: put(&t, "  connect refuse\n"); break;
        default: break;
        }
    }
    return t.p;
}

/* ---- the generator ----------------------------------------------------- */

static const char bench_body[] =
    "From: <sender@bench.test>\r\nTo: <rcpt@bench.test>\r\nSubject: benchmark\r\n"
    "Message-ID: <bench@mtasim.test>\r\n\r\n"
    "A synthetic message, shared by every injection of the benchmark.\r\n";

struct feeder {
    const struct bench_opts *o;
    struct mta *m;
    struct sim_sched *s;
    mta_usec_t epoch;
    long next;              /* the next message to inject */
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* message_time - when message i is injected */
static mta_usec_t message_time(const struct feeder *f, long i)
{
    if (f->o->mode != MODE_MIX)
        return f->epoch;
    long double span = (long double)f->o->hours * 3600e6L;
    return f->epoch + (mta_usec_t)(span * (long double)i / (long double)f->o->messages);
}

/* feed_step - inject every message due now, then wait for the next */
static void feed_step(void *arg)
{
    struct feeder *f = arg;
    mta_usec_t now = sim_sched_now(f->s);
    while (f->next < f->o->messages && message_time(f, f->next) <= now) {
        long i = f->next++;
        long d = (long)(mix64(f->o->seed ^ (uint64_t)i) % (uint64_t)f->o->domains);
        char rcpt[96];
        struct textbuf tb = textbuf_on(rcpt, sizeof rcpt);  /* snprintf: 5% of a run */
        textbuf_str(&tb, "u");
        textbuf_i64(&tb, i);
        textbuf_str(&tb, "@d");
        textbuf_i64(&tb, d);
        textbuf_str(&tb, ".bench.test");
        const char *rcpts[1] = { rcpt };
        if (mta_inject(f->m, (unsigned long)i + 1, "sender@bench.test", rcpts, 1, bench_body,
                       sizeof bench_body - 1, 0, NULL) != 0)
            abort();
    }
    if (f->next < f->o->messages)
        sim_sched_at(f->s, message_time(f, f->next), feed_step, f);
}

static void feed_start(void *arg, struct mta *m, struct sim_sched *s, mta_usec_t epoch)
{
    struct feeder *f = arg;
    f->m = m;
    f->s = s;
    f->epoch = epoch;
    f->next = 0;
    if (f->o->messages > 0)
        sim_sched_at(s, message_time(f, 0), feed_step, f);
}

/* ---- one run ------------------------------------------------------------ */

static double clock_s(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double mono_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time (user + system) of this process: what a shared machine's load
 * does not inflate, unlike the wall time. */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

/* run_once - in this process: parse, run, measure */
static void run_once(const struct bench_opts *o, long messages, struct bench_figures *out)
{
    memset(out, 0, sizeof *out);
    struct bench_opts mine = *o;
    mine.messages = messages;
    char *text = world_text(&mine);
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_string("bench.scn", text, &err);
    free(text);
    if (sc == NULL) {
        snprintf(out->error, sizeof out->error, "bench.scn:%d:%d: %.180s", err.line, err.col, err.msg);
        return;
    }
    struct feeder f = { &mine, NULL, NULL, 0, 0 };
    struct run_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.lean = 1;
    ro.feed = feed_start;
    ro.feed_arg = &f;
    struct outfile *trace = NULL;
    if (o->trace_path) {
        trace = outfile_open(o->trace_path);
        if (trace == NULL) {
            snprintf(out->error, sizeof out->error, "cannot write %.200s: %s", o->trace_path,
                     strerror(errno));
            out->write_failed = 1;
            scn_free(sc);
            return;
        }
        ro.trace_out = outfile_stream(trace);
        ro.trace_bin = o->trace_bin;
        if (o->trace_bin)
            tbin_write_header(ro.trace_out);
    }
    struct run_result r;
    double t0 = mono_s(), c0 = cpu_s();
    runner_run(sc, &ro, &r);
    out->wall_s = mono_s() - t0;
    out->cpu_s = cpu_s() - c0;
    if (trace && o->trace_bin)
        tbin_write_end(ro.trace_out);
    int trace_errno = outfile_close(trace);
    out->write_failed = trace_errno != 0;
    out->events = r.events;
    out->delivered = r.stats.rcpts_delivered;
    out->failed = r.stats.rcpts_failed;
    out->transactions = r.stats.transactions;
    out->connections = r.connections;
    out->end_us = r.end;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    out->peak_rss_kib = ru.ru_maxrss;
    if (r.exit_code != 0) {
        snprintf(out->error, sizeof out->error, "the run ended with exit code %d: %s",
                 r.exit_code, r.nviolations ? r.violations[0] : r.error ? r.error : "?");
    } else if (out->write_failed) {
        /* A short trace is lost output: no figures, never exit 0. */
        snprintf(out->error, sizeof out->error, "cannot write %.200s: %s", o->trace_path,
                 strerror(trace_errno));
    } else {
        out->ok = 1;
    }
    run_result_free(&r);
    scn_free(sc);
}

/* run_child - run_once in a child process, so peak RSS is the run's own */
static int run_child(const struct bench_opts *o, long messages, struct bench_figures *out)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        struct bench_figures f;
        run_once(o, messages, &f);
        ssize_t w = write(fds[1], &f, sizeof f);
        _exit(w == (ssize_t)sizeof f ? 0 : 1);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], out, sizeof *out);
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    if (n != (ssize_t)sizeof *out) {
        memset(out, 0, sizeof *out);
        snprintf(out->error, sizeof out->error, "the benchmark child died (status %d)", status);
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char usage[] =
    "usage: mtasim bench [--mode mix|reuse|queued] [--messages N] [--domains D] [--hours H]\n"
    "                    [--runs R] [--seed S] [--trace FILE [--trace-format text|bin]]\n"
    "\n"
    "Run a synthetic world and print wall time, events/s, deliveries/s, virtual s per wall s,\n"
    "peak RSS and bytes per message (medians of R runs, each in its own process).\n"
    "  mix     N messages over H hours to D domains: 80% accept, 5% greylist, 5% 421,\n"
    "          5% slow banner, 3% refuse, 2% DNS SERVFAIL      (default: 100000, 1000, 24)\n"
    "  reuse   N messages at once to D accepting domains: connection reuse\n"
    "  queued  N messages at once to D refusing domains: memory per queued message\n"
    "  --domains D    1 to 4096 (one scripted remote each)\n"
    "  --trace FILE   write the full trace to FILE (otherwise tracing is off)\n"
    "  --trace-format text|bin   the trace as text (default) or binary: 'mtasim trace show'\n"
    "                 renders it as the text (docs/trace-format.md)\n"
    "See docs/performance.md.\n";

static int parse_long(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "mtasim bench: --%s %s: a whole number from %ld to %ld\n", opt, s, min,
                max);
        return -1;
    }
    *out = v;
    return 0;
}

/* bench_main - mtasim bench */
int bench_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "mode", required_argument, NULL, 'm' }, { "messages", required_argument, NULL, 'n' },
        { "domains", required_argument, NULL, 'd' }, { "hours", required_argument, NULL, 'H' },
        { "runs", required_argument, NULL, 'r' }, { "seed", required_argument, NULL, 's' },
        { "trace", required_argument, NULL, 't' }, { "help", no_argument, NULL, 'h' },
        { "trace-format", required_argument, NULL, 'F' },
        { NULL, 0, NULL, 0 },
    };
    struct bench_opts o = { MODE_MIX, 100000, 1000, 24, 5, 1, NULL, 0 };
    int domains_set = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'm':
            if (strcmp(optarg, "mix") == 0) o.mode = MODE_MIX;
            else if (strcmp(optarg, "reuse") == 0) o.mode = MODE_REUSE;
            else if (strcmp(optarg, "queued") == 0) o.mode = MODE_QUEUED;
            else {
                fprintf(stderr, "mtasim bench: --mode %s: mix, reuse or queued\n", optarg);
                goto bad;
            }
            break;
        case 'n': if (parse_long("messages", optarg, 0, 10000000, &o.messages) < 0) goto bad; break;
        case 'd': if (parse_long("domains", optarg, 1, BENCH_MAX_DOMAINS, &o.domains) < 0) goto bad;
                  domains_set = 1; break;
        case 'H': if (parse_long("hours", optarg, 1, 24 * 30, &o.hours) < 0) goto bad; break;
        case 'r': if (parse_long("runs", optarg, 1, BENCH_MAX_RUNS, &o.runs) < 0) goto bad; break;
        case 's': if (parse_long("seed", optarg, 0, LONG_MAX, &v) < 0) goto bad;
                  o.seed = (uint64_t)v; break;
        case 't': o.trace_path = optarg; break;
        case 'F': if (trace_format_arg("bench", optarg, &o.trace_bin) < 0) return 2; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "mtasim bench: unexpected argument '%s'\n", argv[optind]);
        goto bad;
    }
    if (!domains_set && o.mode == MODE_REUSE)
        o.domains = 10;
    static const char *const mode_names[] = { "mix", "reuse", "queued" };
    printf("mtasim bench: %s, %ld messages, %ld domains, %ldh virtual, seed %" PRIu64
           ", tracing %s, %ld run%s (medians)\n", mode_names[o.mode], o.messages, o.domains,
           o.hours, o.seed, !o.trace_path ? "off" : o.trace_bin ? "to a binary file" : "to a file",
           o.runs, o.runs == 1 ? "" : "s");
    fflush(stdout);

    double wall[BENCH_MAX_RUNS], cpu[BENCH_MAX_RUNS], rss[BENCH_MAX_RUNS];
    struct bench_figures f = { 0 }, base = { 0 };
    for (long i = 0; i < o.runs; i++) {
        if (run_child(&o, o.messages, &f) < 0 || !f.ok) {
            fprintf(stderr, "mtasim bench: %s\n", f.error[0] ? f.error : "cannot run");
            return f.write_failed ? 2 : 3;
        }
        wall[i] = f.wall_s;
        cpu[i] = f.cpu_s;
        rss[i] = (double)f.peak_rss_kib;
    }
    double w = median(wall, (int)o.runs), cpu_med = median(cpu, (int)o.runs),
           peak = median(rss, (int)o.runs);
    /* The same world without messages: what the messages themselves cost.
     * Untraced, so it does not overwrite the measured runs' trace file. */
    struct bench_opts quiet = o;
    quiet.trace_path = NULL;
    if (run_child(&quiet, 0, &base) < 0 || !base.ok) {
        fprintf(stderr, "mtasim bench: %s\n", base.error[0] ? base.error : "cannot run");
        return 3;
    }
    double per_msg = o.messages ? (peak - (double)base.peak_rss_kib) * 1024.0 / (double)o.messages : 0;
    printf("  wall time            %.3f s   (runs:", w);
    for (long i = 0; i < o.runs; i++)
        printf(" %.3f", wall[i]);
    printf(")\n");
    printf("  cpu time             %.3f s   (runs:", cpu_med);
    for (long i = 0; i < o.runs; i++)
        printf(" %.3f", cpu[i]);
    printf(")\n");
    printf("  events               %" PRIu64 "   (%.2f M events/s)\n", f.events,
           (double)f.events / w / 1e6);
    printf("  per event            %.0f ns of CPU   (%.2f M events per CPU s)\n",
           cpu_med * 1e9 / (double)(f.events ? f.events : 1), (double)f.events / cpu_med / 1e6);
    printf("  per CPU second       %.0f deliveries, %.0f virtual s\n", (double)f.delivered / cpu_med,
           (double)f.end_us / 1e6 / cpu_med);
    printf("  deliveries           %lu of %ld messages, %lu failed   (%.0f deliveries/s)\n",
           f.delivered, o.messages, f.failed, (double)f.delivered / w);
    printf("  connections          %lu, transactions %lu\n", f.connections, f.transactions);
    printf("  virtual time         %.0f s   (%.0f virtual s per wall s)\n", (double)f.end_us / 1e6,
           (double)f.end_us / 1e6 / w);
    printf("  peak RSS             %.1f MiB   (empty world %.1f MiB)\n", peak / 1024.0,
           (double)base.peak_rss_kib / 1024.0);
    printf("  per message          %.0f bytes of RSS\n", per_msg);
    return 0;
bad:
    fputs(usage, stderr);
    return 2;
}
