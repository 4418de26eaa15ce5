/*
 * live_run - mtasim live: a scenario's injections through the core, against real servers
 *
 * SYNOPSIS
 *   mtasim live SCENARIO [--remote HOST=ADDR:PORT]... [--timeout SECONDS]
 *               [--trace FILE|-] [--json FILE [--json-trace]] [--seed N]
 *               [--plugin PATH[:ARGS]]... [--allow-remote-targets] [-q]
 *
 * DESCRIPTION
 *   The world is the scenario's, minus its scripted remotes: DNS answers
 *   come from its dns lines (sim/world/dns.c, in real time), the core gets its
 *   config, bindings and plugins, and each injection enters the queue at
 *   its offset from the start.  Connections go to real servers through
 *   the host map (live_env.h): --remote HOST=ADDR:PORT sends what the
 *   core would send to HOST - a scenario address, a remote's name, or a
 *   name with an A record in the scenario - to ADDR:PORT.
 *
 *   The run ends when nothing is left to do (no timer pending, no
 *   descriptor open), at "run for", or at the wall-clock limit --timeout
 *   (default LIVE_DEFAULT_TIMEOUT s); ending at the limit with work left
 *   is reported like a simulated run that does not settle (exit 3).  Then
 *   the core shuts down and the run is judged by the simulated runner's
 *   own code (runner_judge): the same invariants, message summaries,
 *   expectations, trace format, result JSON (plus "mode": "live").
 *
 *   Safety: every HOST's ADDR must be a loopback address (127.0.0.0/8)
 *   unless --allow-remote-targets; a destination that is not mapped and
 *   not loopback is never contacted (live_env.h).  Scenarios with an
 *   inbound server or scripted clients (listen, client) are refused: live
 *   mode drives the outbound path.
 *
 * DIAGNOSTICS
 *   Usage and scenario errors: one line on standard error, exit 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dns.h"
#include "live_cmd.h"
#include "live_env.h"
#include "mta.h"
#include "parse.h"
#include "plugin.h"
#include "plugin_path.h"
#include "result_json.h"
#include "runner.h"
#include "trace_store.h"
#include "trace_summary.h"
#include "world_setup.h"

#define LIVE_DEFAULT_TIMEOUT 30.0
#define LIVE_MAX_TIMEOUT 3600.0

static const char usage_live[] =
    "usage: mtasim live SCENARIO [OPTIONS]\n"
    "\n"
    "Run a scenario's injections through the core against real SMTP servers, on the real\n"
    "clock, and check its expectations (docs/live.md).\n"
    "\n"
    "options:\n"
    "  --remote HOST=ADDR:PORT  connect to ADDR:PORT whenever the core connects to HOST (a\n"
    "                           scenario address, a remote's name or a name with an A record\n"
    "                           in the scenario); repeatable\n"
    "  --timeout SECONDS        wall-clock limit of the run (default 30)\n"
    "  --trace FILE             write the trace (- = standard output)\n"
    "  --json FILE              write the result JSON (docs/results.md), \"mode\": \"live\"\n"
    "  --json-trace             with --json: every trace record too\n"
    "  --seed N                 seed of the random streams (default: the scenario's)\n"
    "  --plugin PATH[:ARGS]     load a plugin before the scenario's own (repeatable)\n"
    "  --allow-remote-targets   allow ADDR outside 127.0.0.0/8 (never needed on loopback)\n"
    "  -q, --quiet              print only a failure and the closing count\n"
    "  -h, --help               show this help\n";

/* One --remote HOST=ADDR:PORT. */
struct live_mapping {
    const char *spec;
    uint32_t addr;                  /* the scenario's address, host order */
    struct sockaddr_in real;
};

struct live_opts {
    const char *path;
    double timeout;
    const char *trace_path, *json_path;
    int json_trace, quiet, allow_remote;
    uint64_t seed;
    int seed_set;
    struct live_mapping maps[LIVE_MAX_MAPS];
    int nmaps;
    struct scn_plugin plugins[PLUGIN_MAX];
    int nplugins;
};

/* The world of one live run. */
struct live_world {
    struct scn_scenario *sc;
    struct live_env *le;
    struct sim_dns *dns;
    struct trace_store *trace;
    struct mta *mta;
    struct plugin_set *plugins;
    char **bodies;
    int *slots;
    struct live_inject *injects;
    int injected;
};

struct live_inject {
    struct live_world *w;
    int index;
};

/* scenario_addr_of - HOST as a scenario address: dotted quad, remote name, A record; 0 or -1 */
static int scenario_addr_of(const struct scn_scenario *sc, const char *host, uint32_t *addr)
{
    struct in_addr in;
    if (inet_pton(AF_INET, host, &in) == 1) {
        *addr = ntohl(in.s_addr);
        return 0;
    }
    for (int i = 0; i < sc->nremotes; i++)
        if (sc->remotes[i].name && strcasecmp(sc->remotes[i].name, host) == 0
            && mta_ip_is_v4(sc->remotes[i].addr)) {     /* live mode is IPv4 only */
            *addr = mta_ip_v4_of(sc->remotes[i].addr);
            return 0;
        }
    for (int i = 0; i < sc->ndns; i++)
        if (sc->dns[i].kind == SCN_DNS_A && strcasecmp(sc->dns[i].name, host) == 0) {
            *addr = sc->dns[i].addr;
            return 0;
        }
    return -1;
}

/* resolve_mappings - each --remote's HOST in sc, each ADDR allowed; 0, or -1 said */
static int resolve_mappings(struct live_opts *o, const struct scn_scenario *sc)
{
    for (int i = 0; i < o->nmaps; i++) {
        struct live_mapping *m = &o->maps[i];
        const char *eq = strchr(m->spec, '=');
        char host[256];
        size_t n = eq ? (size_t)(eq - m->spec) : 0;
        if (eq == NULL || n == 0 || n >= sizeof host || live_parse_addr_port(eq + 1, &m->real) < 0) {
            fprintf(stderr, "mtasim live: --remote wants HOST=ADDR:PORT (IPv4), not '%s'\n", m->spec);
            return -1;
        }
        memcpy(host, m->spec, n);
        host[n] = '\0';
        if (scenario_addr_of(sc, host, &m->addr) < 0) {
            fprintf(stderr, "mtasim live: --remote %s: '%s' is neither an address nor a remote's "
                    "name nor a name with an A record in %s\n", m->spec, host, o->path);
            return -1;
        }
        if (!live_addr_is_loopback(ntohl(m->real.sin_addr.s_addr)) && !o->allow_remote) {
            fprintf(stderr, "mtasim live: --remote %s: %s is not a loopback address; live mode "
                    "only connects to 127.0.0.0/8 unless --allow-remote-targets\n", m->spec, eq + 1);
            return -1;
        }
    }
    return 0;
}

/* warn_unmapped - remotes the core may try that nothing will answer */
static void warn_unmapped(const struct live_opts *o, const struct scn_scenario *sc)
{
    for (int i = 0; i < sc->nremotes; i++) {
        const struct scn_remote *rm = &sc->remotes[i];
        char a[MTA_IP_TEXT];
        if (!mta_ip_is_v4(rm->addr)) {
            fprintf(stderr, "mtasim live: note: %s:%d: remote %s is IPv6; live mode connects "
                    "over IPv4 only (docs/live.md)\n", rm->pos.file, rm->pos.line,
                    mta_ip_format(rm->addr, a));
            continue;
        }
        uint32_t ra = mta_ip_v4_of(rm->addr);
        int mapped = live_addr_is_loopback(ra) || o->allow_remote;
        for (int k = 0; k < o->nmaps && !mapped; k++)
            mapped = o->maps[k].addr == ra;
        if (!mapped)
            fprintf(stderr, "mtasim live: note: %s:%d: remote %s has no --remote "
                    "mapping; connections to it get no answer\n", rm->pos.file, rm->pos.line,
                    mta_ip_format(rm->addr, a));
    }
}

/* check_reachable - without --remote (and --allow-remote-targets) only a
 * remote on loopback could answer; with none the run could only time out,
 * so that is a usage error found before it starts; 0, or -1 said */
static int check_reachable(const struct live_opts *o, const struct scn_scenario *sc)
{
    if (o->nmaps > 0 || o->allow_remote)
        return 0;
    for (int i = 0; i < sc->nremotes; i++)
        if (mta_ip_is_v4(sc->remotes[i].addr)
            && live_addr_is_loopback(mta_ip_v4_of(sc->remotes[i].addr)))
            return 0;
    fprintf(stderr, "mtasim live: no --remote HOST=ADDR:PORT given, and no remote of %s is on "
            "127.0.0.0/8: nothing would answer the core (see mtasim live --help)\n", o->path);
    return -1;
}

/* check_written_out - live injects the lines written out; a FIRST..LAST
 * range (up to millions of messages to real servers) is for the
 * simulation: a usage error found before anything starts; 0, or -1 said */
static int check_written_out(const struct scn_scenario *sc)
{
    for (int i = 0; i < sc->ninjects; i++)
        if (sc->injects[i].count > 1) {
            fprintf(stderr, "%s:%d: mtasim live: an inject range (%lu..%lu) is for mtasim run; "
                    "write out the messages to send them to real servers\n",
                    sc->injects[i].pos.file, sc->injects[i].pos.line, sc->injects[i].id,
                    sc->injects[i].id + sc->injects[i].count - 1);
            return -1;
        }
    return 0;
}

/* inject_fire - an injection is due */
static void inject_fire(void *arg)
{
    struct live_inject *ev = arg;
    struct live_world *w = ev->w;
    runner_inject(w->mta, live_env_env(w->le), w->sc, ev->index, 0, w->bodies[ev->index],
                  w->slots[ev->index]);
    w->injected++;
}

/* settled - nothing left to do: every injection made, no timer, no descriptor */
static int settled(void *arg)
{
    struct live_world *w = arg;
    return w->injected == w->sc->ninjects && live_env_timers_pending(w->le) == 0
           && live_env_open_count(w->le) == 0;
}

/* build - the live world of w->sc; 0, or -1 with r set */
static int build(struct live_world *w, const struct live_opts *o, const struct run_opts *ro,
                 struct run_result *r)
{
    struct scn_scenario *sc = w->sc;
    w->le = live_env_create(r->seed);
    if (w->le == NULL) {
        r->error = strdup("cannot create the live environment (epoll)");
        return -1;
    }
    /* The scenario's clock is the real one: injections, "within" and the
     * trace count from the start of the run. */
    sc->epoch = live_env_epoch(w->le);
    w->trace = trace_store_create(sc->epoch, 1);
    w->dns = sim_dns_create(live_env_sched(w->le), sc->dns_latency, sc->dns_timeout);
    if (w->trace == NULL || w->dns == NULL || live_env_attach(w->le, w->dns, w->trace) < 0) {
        r->error = strdup("out of memory building the live world");
        return -1;
    }
    if (ro->trace_out)
        trace_store_stream(w->trace, ro->trace_out);
    world_setup_dns(w->dns, sc, r->seed);
    live_env_allow_remote_targets(w->le, o->allow_remote);
    for (int i = 0; i < o->nmaps; i++)
        if (live_env_map(w->le, o->maps[i].addr, &o->maps[i].real) < 0) {
            r->error = strdup("the same HOST is mapped twice (--remote)");
            r->exit_code = 2;
            return -1;
        }
    w->mta = mta_create(live_env_env(w->le), &sc->config);
    for (int i = 0; i < sc->nbindings; i++) {
        const struct scn_binding *b = &sc->bindings[i];
        if (mta_add_binding(w->mta, b->name, b->addr, b->ehlo) < 0) {
            r->error = strdup("too many bindings");
            return -1;
        }
    }
    if (runner_load_plugins(&w->plugins, sc, ro, r) < 0)
        return -1;
    size_t n = (size_t)(sc->ninjects ? sc->ninjects : 1);
    w->bodies = calloc(n, sizeof *w->bodies);
    w->slots = calloc(n, sizeof *w->slots);
    w->injects = calloc(n, sizeof *w->injects);
    if (!w->bodies || !w->slots || !w->injects) {
        r->error = strdup("out of memory building the live world");
        return -1;
    }
    for (int i = 0; i < sc->ninjects; i++) {
        const struct scn_inject *in = &sc->injects[i];
        w->slots[i] = mta_binding_slot(w->mta, in->binding ? in->binding : "default");
        if (in->body == NULL)
            w->bodies[i] = runner_synth_body(sc, in, r->seed);
        w->injects[i] = (struct live_inject){ w, i };
        sim_sched_at(live_env_sched(w->le), sc->epoch + in->at, inject_fire, &w->injects[i]);
    }
    return 0;
}

static void teardown(struct live_world *w)
{
    if (w->mta)
        mta_destroy(w->mta);
    plugin_set_destroy(w->plugins);
    live_env_destroy(w->le);
    sim_dns_destroy(w->dns);
    trace_store_destroy(w->trace);
    if (w->bodies)
        for (int i = 0; i < w->sc->ninjects; i++)
            free(w->bodies[i]);
    free(w->bodies);
    free(w->slots);
    free(w->injects);
}

/* add_violation - one more invariant-level failure of the run */
static void add_violation(struct run_result *r, const char *text)
{
    char **v = realloc(r->violations, (size_t)(r->nviolations + 1) * sizeof *v);
    if (v == NULL)
        abort();
    r->violations = v;
    r->violations[r->nviolations++] = strdup(text);
    if (r->verdict != RUN_PLUGIN) {
        r->verdict = RUN_INVARIANT;
        r->exit_code = 3;
    }
}

/* live_run - build, run, judge; the exit code */
static int live_run(struct scn_scenario *sc, const struct live_opts *o, const struct run_opts *ro,
                    struct run_result *r)
{
    struct live_world w;
    memset(&w, 0, sizeof w);
    memset(r, 0, sizeof *r);
    w.sc = sc;
    r->seed = o->seed_set ? o->seed : sc->seed;
    if (build(&w, o, ro, r) < 0) {
        if (r->exit_code == 0) {
            r->verdict = RUN_ERROR;
            r->exit_code = 3;
        } else if (r->verdict == RUN_PASS) {
            r->verdict = RUN_ERROR;
        }
        teardown(&w);
        return r->exit_code;
    }
    mta_usec_t limit = sc->epoch + (mta_usec_t)(o->timeout * 1e6);
    int run_for_ends = sc->run_for >= 0 && sc->epoch + sc->run_for < limit;
    mta_usec_t until = run_for_ends ? sc->epoch + sc->run_for : limit;
    enum live_stop why = live_env_run(w.le, until, settled, &w);
    r->events = sim_sched_events_run(live_env_sched(w.le));
    r->end = live_env_env(w.le)->now(live_env_env(w.le)) - sc->epoch;
    mta_shutdown(w.mta);
    plugin_set_cleanup(w.plugins);      /* while the trace records (plugin.h) */
    struct simenv_violations v;
    live_env_check(w.le, &v);
    runner_judge(sc, w.mta, w.trace, &v, ro, r);
    if (why == LIVE_STOP_DEADLINE && !run_for_ends) {
        char text[200];
        snprintf(text, sizeof text, "the live run did not settle within the --timeout of %g s "
                 "of wall-clock time", o->timeout);
        add_violation(r, text);
    } else if (why == LIVE_STOP_SIGNAL) {
        add_violation(r, "the live run was interrupted (SIGINT or SIGTERM)");
    }
    teardown(&w);
    return r->exit_code;
}

/* print_result - the human-readable account, in mtasim run's shape */
static void print_result(const struct live_opts *o, const struct run_result *r, double secs)
{
    if (r->verdict == RUN_PASS) {
        if (!o->quiet)
            printf("PASS %s  live  %d expectation%s  %.3f s\n", o->path, r->nexp,
                   r->nexp == 1 ? "" : "s", secs);
        return;
    }
    if (r->verdict == RUN_FAIL) {
        for (int i = 0, first = 1; i < r->nexp; i++) {
            if (r->exp[i].passed)
                continue;
            if (first)
                printf("FAIL %s  live  (line %d: %s)\n", o->path, r->exp[i].line, r->exp[i].what);
            else
                printf("  also (line %d: %s)\n", r->exp[i].line, r->exp[i].what);
            first = 0;
            if (r->exp[i].diff)
                fputs(r->exp[i].diff, stdout);
        }
    } else {
        printf("FAIL %s  live  (%s)\n", o->path,
               r->why ? r->why : r->verdict == RUN_INVARIANT ? "invariant violated"
                                                             : run_verdict_str(r->verdict));
        for (int i = 0; i < r->nviolations; i++)
            printf("  invariant: %s\n", r->violations[i]);
        if (r->error)
            printf("  error: %s\n", r->error);
    }
    printf("  rerun: mtasim live --trace -");
    for (int i = 0; i < o->nmaps; i++)
        printf(" --remote %s", o->maps[i].spec);
    printf(" %s\n", o->path);
}

/* parse_options - argv into o; 0, 1 for --help, or -1 said */
static int parse_options(int argc, char **argv, struct live_opts *o)
{
    static const struct option opts[] = {
        { "remote", required_argument, NULL, 'r' },
        { "timeout", required_argument, NULL, 'T' },
        { "trace", required_argument, NULL, 't' },
        { "json", required_argument, NULL, 'j' },
        { "json-trace", no_argument, NULL, 'J' },
        { "seed", required_argument, NULL, 's' },
        { "plugin", required_argument, NULL, 'p' },
        { "allow-remote-targets", no_argument, NULL, 'A' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (o->nmaps == LIVE_MAX_MAPS) {
                fprintf(stderr, "mtasim live: at most %d --remote options\n", LIVE_MAX_MAPS);
                return -1;
            }
            o->maps[o->nmaps++].spec = optarg;
            break;
        case 'T':
            o->timeout = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(o->timeout > 0) || o->timeout > LIVE_MAX_TIMEOUT) {
                fprintf(stderr, "mtasim live: --timeout wants seconds between 0 and %g, not '%s'\n",
                        LIVE_MAX_TIMEOUT, optarg);
                return -1;
            }
            break;
        case 't': o->trace_path = optarg; break;
        case 'j': o->json_path = optarg; break;
        case 'J': o->json_trace = 1; break;
        case 's':
            if (live_cli_seed("live", optarg, &o->seed) < 0)
                return -1;
            o->seed_set = 1;
            break;
        case 'p': {
            char why[256];
            struct scn_plugin *pl = &o->plugins[o->nplugins];
            if (o->nplugins == PLUGIN_MAX) {
                fprintf(stderr, "mtasim live: at most %d --plugin options\n", PLUGIN_MAX);
                return -1;
            }
            memset(pl, 0, sizeof *pl);
            plugin_spec_split(optarg, &pl->name, &pl->args);
            pl->file = plugin_resolve(pl->name, NULL, why, sizeof why);
            o->nplugins++;
            if (pl->file == NULL) {
                fprintf(stderr, "mtasim live: --plugin %s: cannot find plugin '%s': %s\n", optarg,
                        pl->name, why);
                return -1;
            }
            break;
        }
        case 'A': o->allow_remote = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': return 1;
        default: return -1;
        }
    }
    if (o->json_trace && o->json_path == NULL) {
        fprintf(stderr, "mtasim live: --json-trace adds the trace to the --json file: give --json FILE too\n");
        return -1;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mtasim live: %s\n", optind >= argc ? "no scenario file given"
                                                             : "one scenario file at a time");
        return -1;
    }
    o->path = argv[optind];
    return 0;
}

/* check_scenario - what live mode cannot run; 0, or -1 said */
static int check_scenario(const struct scn_scenario *sc)
{
    if (sc->listen.set || sc->nclients > 0) {
        const struct scn_pos *p = sc->listen.set ? &sc->listen.pos : &sc->clients[0].pos;
        fprintf(stderr, "%s:%d:%d: live mode drives the outbound path: an inbound server "
                "(listen) and scripted clients (client) only run in mtasim run\n",
                p->file, p->line, p->col);
        return -1;
    }
    return 0;
}

static void free_plugins(struct live_opts *o)
{
    for (int i = 0; i < o->nplugins; i++) {
        free(o->plugins[i].name);
        free(o->plugins[i].file);
        free(o->plugins[i].args);
    }
}

/* write_json - the result file: mtasim run's, marked live; 0 or an errno */
static int write_json(const struct live_opts *o, const struct scn_scenario *sc,
                      const struct run_result *r, double secs)
{
    json_t *runs = json_array();
    json_t *run = result_json_run(o->path, sc, r, secs * 1000.0);
    json_object_set_new(run, "mode", json_string("live"));
    json_array_append_new(runs, run);
    int rc = result_json_write(o->json_path, runs, r->exit_code == 0, r->exit_code != 0,
                               r->exit_code == 2);
    json_decref(runs);
    return rc;
}

/* live_main - mtasim live; see live_cmd.h */
int live_main(int argc, char **argv)
{
    struct live_opts o;
    memset(&o, 0, sizeof o);
    o.timeout = LIVE_DEFAULT_TIMEOUT;
    int rc = parse_options(argc, argv, &o);
    if (rc != 0) {
        fputs(usage_live, rc > 0 ? stdout : stderr);
        free_plugins(&o);
        return rc > 0 ? 0 : 2;
    }
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_file(o.path, &err);
    if (sc == NULL) {
        printf("ERROR %s:%d:%d: %s\n", err.file, err.line, err.col, err.msg);
        free_plugins(&o);
        return 2;
    }
    FILE *trace = NULL;
    if (check_scenario(sc) < 0 || resolve_mappings(&o, sc) < 0 || check_reachable(&o, sc) < 0
        || check_written_out(sc) < 0) {
        rc = 2;
        goto out;
    }
    if (o.trace_path) {
        if ((trace = live_cli_trace_open("live", o.trace_path)) == NULL) {
            rc = 2;
            goto out;
        }
        fprintf(trace, "# scenario %s  file %s  live\n", sc->name, o.path);
    }
    warn_unmapped(&o, sc);
    struct run_opts ro = { .trace_out = trace, .json_trace = o.json_trace,
                           .plugins = o.plugins, .nplugins = o.nplugins };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct run_result r;
    rc = live_run(sc, &o, &ro, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (r.exit_code == 2)
        printf("ERROR %s: %s\n", o.path, r.error ? r.error : "bad input");
    else
        print_result(&o, &r, secs);
    int json_errno = o.json_path ? write_json(&o, sc, &r, secs) : 0;
    if (json_errno != 0) {
        fprintf(stderr, "mtasim live: cannot write %s: %s\n", o.json_path, strerror(json_errno));
        rc = rc > 2 ? rc : 2;
    }
    printf("%d passed, %d failed\n", r.exit_code == 0, r.exit_code != 0);
    run_result_free(&r);
out:
    if (live_cli_trace_close("live", o.trace_path, trace) < 0)
        rc = rc > 2 ? rc : 2;
    scn_free(sc);
    free_plugins(&o);
    return rc;
}
