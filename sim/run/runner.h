/*
 * runner - one scenario, one seed: build the world, run it, judge it
 *
 * SYNOPSIS
 *   struct run_opts o = { .seed = 7, .seed_set = 1, .trace_out = stdout };
 *   struct run_result r;
 *   runner_run(sc, &o, &r);
 *   ... r.exit_code, r.digest, r.exp[i] ...
 *   run_result_free(&r);
 *
 * DESCRIPTION
 *   The world is built from the scenario in file order: bindings, DNS
 *   records, remote hosts, then the core; each injection is an event at
 *   epoch + its offset.  The event loop runs until nothing is left to do,
 *   or until epoch + "run for", whichever comes first; then the core shuts
 *   down (closing what is open) and the run is judged:
 *
 *     invariants   every opened descriptor closed exactly once; inc/dec
 *                  outbound connection hooks balanced; no recipient given
 *                  two final outcomes; every recipient delivered, failed
 *                  for good, or still held by the core; the domain
 *                  connection limit never exceeded; virtual time never
 *                  went backwards.  A violation -> exit code 3.
 *     expectations each checked; a failure -> exit code 1.
 *
 *   Plugins (o->plugins, then the scenario's "plugin" lines) are loaded
 *   right after the core is created and its bindings added, and unloaded
 *   after the core is destroyed.  A plugin that cannot be loaded is bad
 *   input (exit code 2); one whose init returns non-zero misbehaved (4).
 *   runner_run() runs in the calling process: see isolate.h for running
 *   it in a child that a crashing plugin cannot take down.
 *
 *   Bounds: at most RUNNER_MAX_EVENTS events and RUNNER_MAX_VIRTUAL of
 *   virtual time; hitting either is reported as an internal error (a run
 *   that never settles is a bug, in the core or in the scenario).
 */
#ifndef MTASIM_SIM_RUNNER_H
#define MTASIM_SIM_RUNNER_H

#include <stdio.h>

#include "expect.h"
#include "mta.h"
#include "sim_sched.h"
#include "scenario.h"

#define RUNNER_MAX_EVENTS 50000000ULL
#define RUNNER_MAX_VIRTUAL (400LL * 86400 * 1000000)    /* 400 days */

struct run_opts {
    uint64_t seed;
    int seed_set;           /* override the scenario's seed */
    FILE *trace_out;        /* write the trace here as it happens; NULL = no */
    /* The outfile (core/util/outfile.h) trace_out writes through, or NULL:
     * an isolated run (isolate.h) writes the trace through a copy of its
     * descriptor and reports the first write error in trace_errno. */
    struct outfile *trace_file;
    /* trace_out takes the binary trace (docs/trace-format.md): this run's
     * run block and records; the caller wrote the file's header. */
    int trace_bin;
    int nplugins;           /* --plugin: loaded before the scenario's own */
    const struct scn_plugin *plugins;
    int json_trace;         /* --json-trace: the summary carries every record */
    /* Nothing reads the result's JSON detail (no --json): the run builds no
     * trace summary and no per-recipient detail, and keeps no trace when
     * its expectations can be judged as the trace streams (expect_stream.h;
     * not with plugins, whose state a replay could not reset).  A streamed
     * expectation that fails is explained by replaying the run with the
     * trace kept: the same seed gives the same run, so the report is the
     * one a kept trace gives; a replay whose digest differs is reported as
     * nondeterminism.  Only the summaries an "expect message" reads are
     * kept, and without plugins the core's finished messages are freed as
     * the run goes (summaries.h).  Memory then grows with the world, not
     * the trace or the messages already done. */
    int stream;
    int replay;             /* internal: this is that replay */
    const char *pcap_path;  /* --pcap: write the run's packets here (pcap_write.h); NULL = no */
    /* For large runs (mtasim bench): no trace at all, and no per-message
     * summaries in the result, only the invariant checks and the counts. */
    int lean;
    /* At most this many events (0: RUNNER_MAX_EVENTS); the fuzz target's budget. */
    uint64_t max_events;
    /* Called once the world is built, before the clock starts: schedules
     * injections of its own (the benchmark's generator). */
    void (*feed)(void *arg, struct mta *m, struct sim_sched *s, mta_usec_t epoch);
    void *feed_arg;
};

enum run_verdict { RUN_PASS, RUN_FAIL, RUN_ERROR, RUN_INVARIANT, RUN_PLUGIN };

struct run_result {
    enum run_verdict verdict;
    int exit_code;          /* 0 pass, 1 fail, 2 error, 3 invariant, 4 plugin */
    uint64_t seed;
    char digest[65];
    int nexp;
    struct exp_result *exp;
    int nmsgs;
    struct msg_summary *msgs;
    int nviolations;
    char **violations;
    char *error;            /* what went wrong, for RUN_ERROR and RUN_PLUGIN */
    char *why;              /* a few words for the FAIL line ("plugin crashed"); NULL = the verdict */
    uint64_t events;
    mta_usec_t end;         /* virtual time when the run stopped, relative */
    unsigned long connections;
    struct mta_stats stats; /* the core's counters at the end of the run */
    unsigned long trace_records;
    int trace_errno;        /* isolated runs: the first error writing the trace; 0 = none */
    struct json_t *summary; /* trace_summary.h: connection_log, conn_err, [trace]; or NULL */
};

int runner_run(const struct scn_scenario *sc, const struct run_opts *o, struct run_result *r);

/* The pieces of a run that do not depend on the simulated world, shared with
 * the live runner (live/live_run.c): */
struct mta_env;
struct plugin_set;
struct simenv_violations;
struct trace_store;
/* A synthesized body for injection in (malloc'd). */
char *runner_synth_body(const struct scn_scenario *sc, const struct scn_inject *in, uint64_t seed);
/* Hand message k of injection index to the core now (k = 0 but for a
 * FIRST..LAST range, inject_range.c); its body's digest is traced first. */
void runner_inject(struct mta *m, struct mta_env *env, const struct scn_scenario *sc, int index,
                   unsigned long k, const char *synth_body, int slot);
/* Load o's plugins, then the scenario's, into a new *set; 0, or -1 with r set. */
int runner_load_plugins(struct plugin_set **set, const struct scn_scenario *sc,
                        const struct run_opts *o, struct run_result *r);
/* After the run (and mta_shutdown): invariants, summaries, expectations,
 * digest and verdict into r; v is the environment's descriptor accounting. */
void runner_judge(const struct scn_scenario *sc, struct mta *m, struct trace_store *ts,
                  const struct simenv_violations *v, const struct run_opts *o,
                  struct run_result *r);
void run_result_free(struct run_result *r);
const char *run_verdict_str(enum run_verdict v);

#endif
