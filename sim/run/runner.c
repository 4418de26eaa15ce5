/*
 * runner - one scenario, one seed: build the world, run it, judge it
 *
 * See runner.h.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns.h"
#include "expect_stream.h"
#include "faketime.h"
#include "mta.h"
#include "net.h"
#include "pcap_write.h"
#include "plugin.h"
#include "remote.h"
#include "client.h"
#include "liveness.h"
#include "runner.h"
#include "sim_sched.h"
#include "simenv.h"
#include "summaries.h"
#include "trace_bin_write.h"
#include "trace_store.h"
#include "textbuf.h"
#include "trace_summary.h"
#include "world_setup.h"

#include <openssl/evp.h>

/* A body's digest as "inject message" traces it (trace_injection). */
struct body_digest {
    char hex[65];
    size_t canon;           /* its size with line ends made CRLF */
};

struct world;
struct inject_ev {
    struct world *w;
    int index;
    unsigned long next;     /* a range line: its next message (inject_range.c) */
};

struct world {
    const struct scn_scenario *sc;
    struct sim_sched *sched;
    struct sim_net *net;
    struct sim_dns *dns;
    struct trace_store *trace;
    struct tbin_writer *bin;        /* the binary trace being written, or NULL */
    struct simenv *env;
    struct sim_remote **remotes;
    struct sim_client **clients;    /* scripted SMTP clients of the MTA's server */
    struct mta *mta;
    char **bodies;              /* synthesized bodies, one per injection */
    int *slots;                 /* binding slot per injection */
    struct inject_ev *inject_evs;   /* one per injection; events point here */
    int tracing;                    /* the core and the remotes have a trace sink */
    struct plugin_set *plugins;
    struct pcap_writer *pcap;   /* --pcap, or NULL */
    struct liveness *liveness;  /* the storm check (liveness.h) */
    struct run_stream *stream;  /* the trace is judged as it streams, not kept; or NULL */
    struct body_digest *digests;    /* per injection: its body's, traced per message */
    /* Finished messages are folded into sums and freed as the run goes
     * (mta_release_done), when nothing else could read them: NULL = kept. */
    struct summaries *sums;
    size_t held, since_release;     /* messages the core held then; injected since */
};

/* What judges a run whose trace is not kept (run_opts.stream). */
struct run_stream {
    struct expect_stream *es;
    struct liveness_dups *dups;
    int replay;             /* a streamed expectation failed: replay to explain it */
};

/* stream_record - the trace's observer: every record, as it is added */
static void stream_record(void *arg, const struct trace_rec *rec)
{
    struct run_stream *st = arg;
    expect_stream_feed(st->es, rec);
    liveness_dups_feed(st->dups, rec);
}

/* stream_open - judge sc's trace as it streams, when nothing needs it kept */
static struct run_stream *stream_open(const struct scn_scenario *sc, const struct run_opts *o)
{
    if (!o->stream || o->replay || o->lean || o->json_trace || o->nplugins + sc->nplugins > 0 ||
        !expect_stream_covers(sc))
        return NULL;
    struct run_stream *st = calloc(1, sizeof *st);
    if (st == NULL)
        abort();
    st->es = expect_stream_create(sc, sc->epoch);
    st->dups = liveness_dups_create(sc->epoch);
    return st;
}

static void ignore_report(void *arg, const char *text)
{
    (void)arg;
    (void)text;
}

static void stream_close(struct run_stream *st)
{
    if (st == NULL)
        return;
    expect_stream_destroy(st->es);
    if (st->dups)
        liveness_dups_finish(st->dups, ignore_report, NULL);
    free(st);
}


const char *run_verdict_str(enum run_verdict v)
{
    static const char *const names[] = { "pass", "fail", "error", "invariant", "plugin" };
    return names[v];
}

/* runner_synth_body - a small RFC 5322 message for an injection without a body */
char *runner_synth_body(const struct scn_scenario *sc, const struct scn_inject *in, uint64_t seed)
{
    char date[64];
    time_t t = (time_t)((sc->epoch + in->at) / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    long size = in->size >= 0 ? in->size : 0;
    char head[2048];
    int n = snprintf(head, sizeof head,
                     "From: <%s>\r\nTo: <%s>\r\nSubject: mtasim message %lu\r\nDate: %s\r\n"
                     "Message-ID: <%lu.%" PRIu64 "@mtasim.test>\r\n\r\n",
                     in->from, in->rcpts[0], in->id, date, in->id, seed);
    if (n < 0 || (size_t)n >= sizeof head)
        n = (int)sizeof head - 1;
    const char *filler = "This message was injected by mtasim.\r\n";
    size_t flen = strlen(filler);
    size_t total = (size_t)n + (size > n ? (size_t)size - (size_t)n : flen);
    char *body = malloc(total + 1);
    if (body == NULL)
        abort();
    memcpy(body, head, (size_t)n);
    size_t at = (size_t)n;
    /* Whole lines, each ending in CRLF, so that the size on the wire (RFC
     * 1870 section 3: SIZE=, the BDAT count) is exactly N: the last line is
     * cut short, or made one octet longer when a single octet would be
     * left over.  (Only N = header + 1 cannot end in CRLF: one octet more.) */
    while (at < total) {
        size_t rem = total - at, text = flen - 2;
        if (rem == flen + 1)
            text = flen - 1;                /* "...mtasim.x" then CRLF */
        else if (rem < flen)
            text = rem >= 2 ? rem - 2 : 0;
        if (rem == 1) {
            body[at++] = '\n';              /* the client sends CRLF */
            break;
        }
        memcpy(body + at, filler, text < flen - 2 ? text : flen - 2);
        if (text == flen - 1)
            body[at + flen - 2] = 'x';
        at += text;
        body[at++] = '\r';
        body[at++] = '\n';
    }
    body[total] = '\0';
    return body;
}

/* body_digest - the canonical body's digest, for "intact"
 *
 * Canonical = what a correct client puts between DATA and the final dot,
 * with the dot-stuffing removed again: bare LF turned into CRLF and a
 * missing final line end added.  A correct remote's body_sha256 equals it.
 * Hashed a run of bytes at a time, not byte by byte. */
static void body_digest(const char *body, size_t len, struct body_digest *d)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        abort();
    size_t canon = 0, from = 0;
    for (size_t i = 0; i < len; i++)
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r')) {
            EVP_DigestUpdate(ctx, body + from, i - from);
            EVP_DigestUpdate(ctx, "\r", 1);
            canon++;
            from = i;
        }
    EVP_DigestUpdate(ctx, body + from, len - from);
    canon += len;
    if (len > 0 && body[len - 1] != '\n') {    /* as the client: empty stays empty */
        EVP_DigestUpdate(ctx, "\r\n", 2);
        canon += 2;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    static const char hexd[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        d->hex[2 * i] = hexd[i < mdlen ? md[i] >> 4 : 0];
        d->hex[2 * i + 1] = hexd[i < mdlen ? md[i] & 15 : 0];
    }
    d->hex[64] = '\0';
    d->canon = canon;
}

/* trace_injection - record message msg_id's body digest d */
static void trace_injection(struct mta_env *env, unsigned long msg_id, const struct body_digest *d)
{
    if (env->trace == NULL)
        return;
    char id[32], size[32];
    struct textbuf ti = textbuf_on(id, sizeof id), ts = textbuf_on(size, sizeof size);
    textbuf_u64(&ti, msg_id);
    textbuf_u64(&ts, d->canon);
    struct mta_trace_rec rec = { .kind = "inject", .name = "message", .nfields = 3,
                                 .kind_len = 6, .name_len = 7 };
    rec.field[0] = (struct mta_trace_field){ "msg", id, ti.len, (int64_t)msg_id, 1, 3 };
    rec.field[1] = (struct mta_trace_field){ "size", size, ts.len, (int64_t)d->canon, 1, 4 };
    rec.field[2] = (struct mta_trace_field){ "body_sha256", d->hex, 64, 0, 0, 11 };
    env->trace(env, &rec);
}

/* inbound_accepted - the server accepted a message: record its body like
 * an injection's, so "expect message ID intact" works for it too */
static void inbound_accepted(void *arg, unsigned long id, const char *body, size_t len)
{
    struct world *w = arg;
    struct body_digest d;
    body_digest(body, len, &d);
    trace_injection(simenv_env(w->env), id, &d);
}

/* build_inbound - the server (listen, users) and the clients; 0, or -1
 * with r->error set */
static int build_inbound(struct world *w, const struct scn_scenario *sc, struct run_result *r)
{
    if (!sc->listen.set && sc->nclients == 0)
        return 0;
    for (int i = 0; i < sc->nusers; i++)
        if (mta_add_user(w->mta, sc->users[i].name, sc->users[i].password) < 0) {
            r->error = strdup("too many users");
            return -1;
        }
    mta_on_inbound_message(w->mta, inbound_accepted, w);
    int rc = mta_listen(w->mta, sc->listen.addr, sc->listen.port, &sc->listen.opts);
    if (rc < 0) {
        char buf[160];
        snprintf(buf, sizeof buf, "the MTA cannot listen on %u.%u.%u.%u:%u (error %d)",
                 sc->listen.addr >> 24, (sc->listen.addr >> 16) & 255,
                 (sc->listen.addr >> 8) & 255, sc->listen.addr & 255, sc->listen.port, -rc);
        r->error = strdup(buf);
        return -1;
    }
    w->clients = calloc((size_t)(sc->nclients ? sc->nclients : 1), sizeof *w->clients);
    if (w->clients == NULL) {
        r->error = strdup("out of memory building the world");
        return -1;
    }
    for (int i = 0; i < sc->nclients; i++) {
        w->clients[i] = sim_client_create(w->sched, w->net, &sc->clients[i], i + 1,
                                          sc->listen.addr, sc->listen.port, sc->epoch,
                                          simenv_trace, w->env);
        if (w->clients[i] == NULL) {
            r->error = strdup("cannot create a client");
            return -1;
        }
    }
    return 0;
}

/* inject_with - hand message k of injection index of sc to the core now,
 * body's digest d traced first */
static void inject_with(struct mta *m, struct mta_env *env, const struct scn_scenario *sc,
                        int index, unsigned long k, const char *body,
                        const struct body_digest *d, int slot)
{
    const struct scn_inject *in = &sc->injects[index];
    size_t len = in->body ? in->body_len : strlen(body);
    trace_injection(env, in->id + k, d);
    struct mta_inject_opts opts = { in->dsn_notify, in->dsn_ret, in->dsn_envid, in->chunking,
                                    (long)(in->deliver_by / 1000000) };
    const char *const *rcpts = (const char *const *)in->rcpts;
    char **made = NULL;
    if (in->ranges != NULL) {
        /* A range line: its recipients with their numbers for message k. */
        made = malloc((size_t)in->nrcpts * sizeof *made);
        if (made == NULL)
            abort();
        for (int i = 0; i < in->nrcpts; i++) {
            size_t n = scn_inject_rcpt(in, i, k, NULL, 0);
            made[i] = malloc(n + 1);
            if (made[i] == NULL)
                abort();
            scn_inject_rcpt(in, i, k, made[i], n + 1);
        }
        rcpts = (const char *const *)made;
    }
    int rc = mta_inject(m, in->id + k, in->from, rcpts, in->nrcpts, body, len, slot, &opts);
    assert(rc == 0);    /* the parser checked the addresses */
    (void)rc;
    if (made != NULL) {
        for (int i = 0; i < in->nrcpts; i++)
            free(made[i]);
        free(made);
    }
}

/* runner_inject - hand message k of injection index of sc to the core now
 * (k = 0 for a line written out), its body traced first */
void runner_inject(struct mta *m, struct mta_env *env, const struct scn_scenario *sc, int index,
                   unsigned long k, const char *synth_body, int slot)
{
    const struct scn_inject *in = &sc->injects[index];
    const char *body = in->body ? in->body : synth_body;
    struct body_digest d;
    body_digest(body, in->body ? in->body_len : strlen(body), &d);
    inject_with(m, env, sc, index, k, body, &d, slot);
}

/* RELEASE_MIN - messages injected before finished ones are first released */
#define RELEASE_MIN 4096

/* release_done - hand the finished messages to the summaries and free them
 * once as many were injected as were held after the last time: each
 * message is looked at a bounded number of times, however long the run */
static void release_done(struct world *w, size_t injected)
{
    w->since_release += injected;
    if (w->sums == NULL || w->since_release < RELEASE_MIN || w->since_release < w->held)
        return;
    w->held = mta_release_done(w->mta, summaries_add, w->sums);
    w->since_release = 0;
}

/* inject_fire - a line's message is due: a line written out is one; a
 * range injects each message due now, then waits for its next one, so
 * the scheduler holds one event per line, not per message */
static void inject_fire(void *arg)
{
    struct inject_ev *ev = arg;
    struct world *w = ev->w;
    const struct scn_inject *in = &w->sc->injects[ev->index];
    mta_usec_t now = sim_sched_now(w->sched);
    unsigned long first = ev->next;
    const char *body = in->body ? in->body : w->bodies[ev->index];
    do {
        inject_with(w->mta, simenv_env(w->env), w->sc, ev->index, ev->next, body,
                    &w->digests[ev->index], w->slots[ev->index]);
        ev->next++;
    } while (ev->next < in->count && w->sc->epoch + scn_inject_time(in, ev->next) <= now);
    if (ev->next < in->count)
        sim_sched_at_kind(w->sched, w->sc->epoch + scn_inject_time(in, ev->next), inject_fire,
                          ev, SIM_EV_INJECT);
    release_done(w, ev->next - first);
}


/* runner_load_plugins - the command line's plugins, then the scenario's, in
 * order, into a new *set; 0, or -1 with r->error, r->why, r->verdict and
 * r->exit_code set */
int runner_load_plugins(struct plugin_set **set, const struct scn_scenario *sc,
                        const struct run_opts *o, struct run_result *r)
{
    *set = plugin_set_create();
    int total = o->nplugins + sc->nplugins;
    for (int i = 0; i < total; i++) {
        const struct scn_plugin *pl = i < o->nplugins ? &o->plugins[i] : &sc->plugins[i - o->nplugins];
        char err[1024], where[600] = "";
        int code = plugin_load(*set, pl->name, pl->file, pl->args, err, sizeof err);
        if (code == 0)
            continue;
        if (pl->pos.file)
            snprintf(where, sizeof where, "%s:%d:%d: plugin %s: ", pl->pos.file, pl->pos.line,
                     pl->pos.col, pl->name);
        else
            snprintf(where, sizeof where, "--plugin %s: ", pl->name);
        size_t n = strlen(where) + strlen(err) + 1;
        r->error = malloc(n);
        if (r->error == NULL)
            abort();
        snprintf(r->error, n, "%s%s", where, err);
        r->why = strdup(code == PLUGIN_MISBEHAVED ? "plugin failed to initialize"
                                                  : "plugin failed to load");
        r->verdict = code == PLUGIN_MISBEHAVED ? RUN_PLUGIN : RUN_ERROR;
        r->exit_code = code;
        return -1;
    }
    plugin_set_initialize(*set);
    return 0;
}

/* pcap_open_for_run - --pcap: the capture file, fed by the network's observer;
 * 0, or -1 with r->error and exit code 2 (an unwritable file is bad usage) */
static int pcap_open_for_run(struct world *w, const struct run_opts *o, struct run_result *r)
{
    char err[600];
    w->pcap = pcap_writer_open(o->pcap_path, err, sizeof err);
    if (w->pcap == NULL) {
        r->error = strdup(err);
        r->verdict = RUN_ERROR;
        r->exit_code = 2;
        return -1;
    }
    sim_net_set_observer(w->net, pcap_writer_packet, w->pcap);
    return 0;
}

/* pcap_finish_for_run - the capture complete at the end of the run; NULL,
 * or "cannot write FILE: why" (malloc'd) */
static char *pcap_finish_for_run(struct world *w)
{
    char err[600];
    if (w->pcap && pcap_writer_finish(w->pcap, sim_sched_now(w->sched), err, sizeof err) < 0)
        return strdup(err);
    return NULL;
}

/* output_lost - an output of the run could not be written: that is an
 * error of the run (exit 2), whatever its verdict would have been; a worse
 * one (3, 4) stands, with the output's error reported too */
static void output_lost(struct run_result *r, char *why)
{
    if (why == NULL)
        return;
    if (r->exit_code < 2) {
        free(r->error);
        r->error = why;
        free(r->why);
        r->why = strdup("output lost");
        r->verdict = RUN_ERROR;
        r->exit_code = 2;
    } else {
        size_t n = (r->error ? strlen(r->error) + 2 : 0) + strlen(why) + 1;
        char *both = malloc(n);
        if (both == NULL)
            abort();
        snprintf(both, n, "%s%s%s", r->error ? r->error : "", r->error ? "; " : "", why);
        free(r->error);
        free(why);
        r->error = both;
    }
}

/* follow_virtual_time - plugin code reading the wall clock sees virtual time
 * (faketime.h), from the plugins' init on; 0, or -1 with r set (exit code 2)
 * when the scenario says "requires faketime" and the bridge is off */
static int follow_virtual_time(struct world *w, const struct scn_scenario *sc,
                               const struct run_opts *o, struct run_result *r)
{
    if (sc->requires_faketime && !faketime_on()) {
        char buf[1200];
        snprintf(buf, sizeof buf, "%s:%d:%d: requires faketime: %s", sc->requires_pos.file,
                 sc->requires_pos.line, sc->requires_pos.col, faketime_why_off());
        r->error = strdup(buf);
        r->why = strdup("requires faketime");
        r->verdict = RUN_ERROR;
        r->exit_code = 2;
        return -1;
    }
    /* Only runs with plugin code pay for the updates: the core reads no clock. */
    if (faketime_on() && (o->nplugins + sc->nplugins > 0 || sc->requires_faketime)) {
        faketime_set(sim_sched_now(w->sched));
        sim_sched_on_advance(w->sched, faketime_clock_moved, NULL);
    }
    return 0;
}

/* build - the world of sc; returns 0, or -1 with r->error set */
static int build(struct world *w, const struct scn_scenario *sc, const struct run_opts *o,
                 struct run_result *r)
{
    w->sc = sc;
    w->sched = sim_sched_create(sc->epoch);
    w->net = sim_net_create(w->sched);
    w->dns = sim_dns_create(w->sched, sc->dns_latency, sc->dns_timeout);
    w->stream = stream_open(sc, o);
    w->trace = trace_store_create(sc->epoch, !o->lean && w->stream == NULL);
    if (!w->sched || !w->net || !w->dns || !w->trace) {
        r->error = strdup("out of memory building the world");
        return -1;
    }
    if (w->stream)
        trace_store_observe(w->trace, stream_record, w->stream);
    if (o->trace_out && o->trace_bin) {
        w->bin = tbin_writer_create(o->trace_out, sc->epoch);
        trace_store_stream_bin(w->trace, w->bin);
    } else if (o->trace_out) {
        trace_store_stream(w->trace, o->trace_out);
    }
    /* A lean run without a trace file gives the core and the remotes no
     * trace sink at all: mta_tracing() is false and no record is built. */
    w->tracing = !o->lean || o->trace_out != NULL;
    w->env = simenv_create(w->sched, w->net, w->dns, w->tracing ? w->trace : NULL);
    if (o->pcap_path && pcap_open_for_run(w, o, r) < 0)
        return -1;
    simenv_set_seed(w->env, r->seed);
    w->liveness = liveness_create(w->sched, sc->storm_count, sc->storm_window);
    if (w->liveness == NULL) {
        r->error = strdup("out of memory building the world");
        return -1;
    }
    simenv_set_liveness(w->env, w->liveness);
    /* The run's seed reaches every random stream of the world from here. */
    world_setup_network(w->net, sc, r->seed);
    world_setup_dns(w->dns, sc, r->seed);
    w->remotes = calloc((size_t)(sc->nremotes ? sc->nremotes : 1), sizeof *w->remotes);
    for (int i = 0; i < sc->nremotes; i++) {
        w->remotes[i] = sim_remote_create(w->sched, w->net, &sc->remotes[i],
                                          w->tracing ? simenv_trace : NULL, w->env);
        if (w->remotes[i] == NULL) {
            r->error = strdup("cannot create a remote host");
            return -1;
        }
    }
    w->mta = mta_create(simenv_env(w->env), &sc->config);
    sim_net_add_local(w->net, mta_ip_v4(0xC0000201u));    /* the default binding's address */
    for (int i = 0; i < sc->nbindings; i++) {
        const struct scn_binding *b = &sc->bindings[i];
        if (mta_add_binding(w->mta, b->name, b->addr, b->ehlo) < 0) {
            r->error = strdup("too many bindings");
            return -1;
        }
        if (!b->unavailable)
            sim_net_add_local(w->net, b->addr);
    }
    if (follow_virtual_time(w, sc, o, r) < 0 || runner_load_plugins(&w->plugins, sc, o, r) < 0)
        return -1;
    /* Without a plugin nobody calls the system on a simulated descriptor:
     * the table need not stay in the reserved 3-1023 (simenv.h). */
    simenv_set_private_fds(w->env, plugin_set_count(w->plugins) == 0);
    if (build_inbound(w, sc, r) < 0)
        return -1;
    w->bodies = calloc((size_t)(sc->ninjects ? sc->ninjects : 1), sizeof *w->bodies);
    w->slots = calloc((size_t)(sc->ninjects ? sc->ninjects : 1), sizeof *w->slots);
    w->inject_evs = calloc((size_t)(sc->ninjects ? sc->ninjects : 1), sizeof *w->inject_evs);
    w->digests = calloc((size_t)(sc->ninjects ? sc->ninjects : 1), sizeof *w->digests);
    if (!w->bodies || !w->slots || !w->inject_evs || !w->digests) {
        r->error = strdup("out of memory building the world");
        return -1;
    }
    for (int i = 0; i < sc->ninjects; i++) {
        const struct scn_inject *in = &sc->injects[i];
        w->slots[i] = mta_binding_slot(w->mta, in->binding ? in->binding : "default");
        assert(w->slots[i] >= 0);
        if (in->body == NULL)
            w->bodies[i] = runner_synth_body(sc, in, r->seed);  /* a range's messages share it */
        const char *body = in->body ? in->body : w->bodies[i];
        body_digest(body, in->body ? in->body_len : strlen(body), &w->digests[i]);
        struct inject_ev *ev = &w->inject_evs[i];
        ev->w = w;
        ev->index = i;
        sim_sched_at_kind(w->sched, sc->epoch + in->at, inject_fire, ev, SIM_EV_INJECT);
    }
    if (o->feed)
        o->feed(o->feed_arg, w->mta, w->sched, sc->epoch);
    /* Without --json and plugins nothing reads a finished message after
     * it is summarized: the core can let it go (summaries.h). */
    if (o->stream && !o->lean && o->nplugins + sc->nplugins == 0)
        w->sums = summaries_create(sc, r, SUMMARIES_NAMED, 0, 0);
    return 0;
}

static void teardown(struct world *w)
{
    /* Every record is in (the run was judged): the binary trace's last batch. */
    tbin_writer_close(w->bin);
    /* The core first: it closes its descriptors through the environment. */
    if (w->mta)
        mta_destroy(w->mta);
    /* After the core: mta_destroy forgot the providers that point into them. */
    plugin_set_destroy(w->plugins);
    if (w->remotes)
        for (int i = 0; i < w->sc->nremotes; i++)
            sim_remote_destroy(w->remotes[i]);
    free(w->remotes);
    if (w->clients)
        for (int i = 0; i < w->sc->nclients; i++)
            sim_client_destroy(w->clients[i]);
    free(w->clients);
    simenv_destroy(w->env);
    liveness_destroy(w->liveness);
    sim_dns_destroy(w->dns);
    sim_net_destroy(w->net);
    pcap_writer_close(w->pcap);
    sim_sched_destroy(w->sched);
    trace_store_destroy(w->trace);
    stream_close(w->stream);
    if (w->bodies)
        for (int i = 0; i < w->sc->ninjects; i++)
            free(w->bodies[i]);
    free(w->bodies);
    free(w->slots);
    free(w->inject_evs);
    free(w->digests);
}

/* report_duplicate - liveness_duplicates() found one */
static void report_duplicate(void *arg, const char *text)
{
    run_violation(arg, "%s", text);
}

/* count_message - mta_foreach_message: how many summaries there can be */
static void count_message(void *arg, const message *msg)
{
    (void)msg;
    ++*(size_t *)arg;
}

/* summaries_for - the bookkeeping o's run needs (summaries.h): none for a
 * lean run; without --json only the summaries an expectation reads; else
 * every message's, with its JSON detail */
static struct summaries *summaries_for(const struct scn_scenario *sc, const struct mta *m,
                                       const struct run_opts *o, struct run_result *r)
{
    if (o->lean)
        return summaries_create(sc, r, SUMMARIES_LEAN, 0, 0);
    if (o->stream)
        return summaries_create(sc, r, SUMMARIES_NAMED, 0, 0);
    size_t most = 0;                    /* messages the server accepted come on top */
    for (int i = 0; i < sc->ninjects; i++)
        most += sc->injects[i].count;   /* the parser bounds the sum */
    if (m != NULL)
        mta_foreach_message(m, count_message, &most);
    return summaries_create(sc, r, SUMMARIES_ALL, 1, most);
}

/* judge - runner_judge, the trace read from rs when it was not kept, the
 * messages already released into sums when it is not NULL (summaries.h) */
static void judge(const struct scn_scenario *sc, struct mta *m, struct trace_store *ts,
                  const struct simenv_violations *v, const struct run_opts *o,
                  struct run_result *r, struct run_stream *rs, struct summaries *sums)
{
    /* Invariants. */
    struct mta_stats st;
    mta_get_stats(m, &st);
    r->connections = st.connections_opened;
    r->stats = st;
    if (v->bad_close)
        run_violation(r, "%lu close(s) of a descriptor that was not open", v->bad_close);
    if (v->bad_op)
        run_violation(r, "%lu write(s) on a descriptor that was not open", v->bad_op);
    if (v->left_open)
        run_violation(r, "%lu connection(s) never closed", v->left_open);
    if (v->opened != v->closed)
        run_violation(r, "%lu connection(s) opened but %lu closed", v->opened, v->closed);
    if (st.inc_outbound != st.dec_outbound)
        run_violation(r, "inc_outbound_connections called %lu times, dec_outbound_connections %lu",
                  st.inc_outbound, st.dec_outbound);
    if (st.duplicate_outcomes)
        run_violation(r, "%lu outcome(s) given to a recipient that was already final",
                  st.duplicate_outcomes);
    if (st.max_concurrent_per_domain > sc->config.max_outbound_connections)
        run_violation(r, "%d concurrent connections to one domain, limit %d",
                  st.max_concurrent_per_domain, sc->config.max_outbound_connections);
    if (trace_store_time_regressions(ts))
        run_violation(r, "virtual time went backwards %lu time(s)", trace_store_time_regressions(ts));
    if (rs != NULL) {
        liveness_dups_finish(rs->dups, report_duplicate, r);
        rs->dups = NULL;
    } else if (!o->lean) {
        liveness_duplicates(ts, report_duplicate, r);
    }

    if (sums == NULL)
        sums = summaries_for(sc, m, o, r);
    mta_foreach_message(m, summaries_add, sums);
    summaries_finish(sums, r->end);

    /* Expectations. */
    r->exp = calloc((size_t)(sc->nexpects ? sc->nexpects : 1), sizeof *r->exp);
    r->nexp = sc->nexpects;
    int failed = 0;
    for (int i = 0; i < sc->nexpects; i++) {
        int held = rs ? expect_stream_verdict(rs->es, i) : -1;
        if (held < 0) {
            failed += !expect_check(&sc->expects[i], ts, r->msgs, r->nmsgs, &r->exp[i]);
            continue;
        }
        /* Judged as the trace streamed; a failure's account needs the
         * records: runner_run replays the run to make it. */
        r->exp[i].line = sc->expects[i].pos.line;
        r->exp[i].what = expect_what(&sc->expects[i]);
        r->exp[i].passed = held;
        if (!held) {
            failed++;
            rs->replay = 1;
        }
    }
    trace_store_digest(ts, r->digest);
    r->trace_records = (unsigned long)trace_store_total(ts);
    r->summary = o->stream ? NULL : trace_summary_build(ts, o->json_trace);

    mta_usec_t fault_at = 0;
    const char *fault = mta_plugin_fault(m, &fault_at);
    if (fault != NULL) {
        /* A plugin broke the MailerQ protocol: what followed may be its doing. */
        char when[32], buf[700];
        snprintf(buf, sizeof buf, "%s (at %s)", fault, trace_time_str(fault_at - sc->epoch, when));
        r->verdict = RUN_PLUGIN;
        r->exit_code = 4;
        r->error = strdup(buf);
        r->why = strdup("plugin misbehaved");
    } else if (r->nviolations) {
        r->verdict = RUN_INVARIANT;
        r->exit_code = 3;
    } else if (failed) {
        r->verdict = RUN_FAIL;
        r->exit_code = 1;
    } else {
        r->verdict = RUN_PASS;
        r->exit_code = 0;
    }
}

/* runner_judge - after the run: invariants, message summaries, expectations,
 * digest and verdict into r, from the core m, the trace ts and the
 * environment's descriptor accounting v (shared by the live runner) */
void runner_judge(const struct scn_scenario *sc, struct mta *m, struct trace_store *ts,
                  const struct simenv_violations *v, const struct run_opts *o,
                  struct run_result *r)
{
    judge(sc, m, ts, v, o, r, NULL, NULL);
}

/* replay_for_report - a streamed expectation failed: run sc again with the
 * trace kept (no trace file, no capture: the first run wrote them) and take
 * its expectation results, whose failures carry the full account */
static void replay_for_report(const struct scn_scenario *sc, const struct run_opts *o,
                              struct run_result *r)
{
    struct run_opts again = *o;
    again.replay = 1;
    again.trace_out = NULL;
    again.pcap_path = NULL;
    again.seed = r->seed;
    again.seed_set = 1;
    struct run_result r2;
    runner_run(sc, &again, &r2);
    if (strcmp(r2.digest, r->digest) != 0 || r2.nexp != r->nexp) {
        run_violation(r, "nondeterminism: the replay made to explain a failed expectation gave trace "
                  "digest %.16s, the run %.16s", r2.digest, r->digest);
        if (r->exit_code < 3) {
            r->verdict = RUN_INVARIANT;
            r->exit_code = 3;
        }
    } else {
        /* The same run judged over its kept trace: each verdict must be the
         * one the stream gave (expect_stream.h), or the streamed judging
         * is wrong, which a report made from the replay alone would hide. */
        for (int i = 0; i < r->nexp; i++)
            if (r->exp[i].passed != r2.exp[i].passed) {
                run_violation(r, "internal error: the expectation of line %d %s as the trace "
                          "streamed but %s over the kept trace", r->exp[i].line,
                          r->exp[i].passed ? "held" : "failed", r2.exp[i].passed ? "held" : "failed");
                if (r->exit_code < 3) {
                    r->verdict = RUN_INVARIANT;
                    r->exit_code = 3;
                }
            }
        for (int i = 0; i < r->nexp; i++)
            expect_result_free(&r->exp[i]);
        free(r->exp);
        r->exp = r2.exp;
        r2.exp = NULL;
        r2.nexp = 0;
    }
    run_result_free(&r2);
}

/* A lost message: the run went quiet - nothing left to happen, no timer,
 * no packet - while the core still queues it.  It is neither delivered,
 * failed nor expired, and no future attempt will come. */
struct stuck_ctx {
    struct run_result *r;
    mta_usec_t epoch;
};

static void check_stuck(void *arg, const message *msg)
{
    struct stuck_ctx *x = arg;
    struct mta_msg_info info;
    mta_message_info(msg, &info);
    if (!info.held)
        return;
    int pending = 0;
    for (int i = 0; i < msg->rcpt_count; i++)
        pending += msg->rcpts[i].state == RCPT_PENDING;
    run_violation(x->r, "lost: message %lu to %s (%d recipient(s) pending) is %s, but the run went "
              "quiet: nothing will ever deliver, fail or retry it", msg->id, msg->domain, pending,
              info.where);
}

/* runner_run - run sc once; see runner.h */
int runner_run(const struct scn_scenario *sc, const struct run_opts *o, struct run_result *r)
{
    memset(r, 0, sizeof *r);
    r->seed = o->seed_set ? o->seed : sc->seed;
    struct world w;
    memset(&w, 0, sizeof w);
    if (build(&w, sc, o, r) < 0) {
        if (r->exit_code == 0) {
            r->verdict = RUN_ERROR;
            r->exit_code = 3;
        }
        teardown(&w);
        return r->exit_code;
    }
    mta_usec_t deadline = sc->run_for >= 0 ? sc->epoch + sc->run_for : sc->epoch + RUNNER_MAX_VIRTUAL;
    uint64_t max_events = o->max_events ? o->max_events : RUNNER_MAX_EVENTS;
    enum sim_run_stop why = sim_sched_run(w.sched, deadline, max_events);
    r->events = sim_sched_events_run(w.sched);
    r->end = sim_sched_now(w.sched) - sc->epoch;
    char busiest[200], at[32];
    sim_sched_busiest(sim_sched_stats(w.sched), 3, busiest, sizeof busiest);
    if (why == SIM_RUN_EVENT_LIMIT)
        run_violation(r, "the run did not settle: %llu events without reaching the end, at virtual "
                  "time %s; busiest events: %s", (unsigned long long)max_events,
                  trace_time_str(r->end, at), busiest);
    else if (why == SIM_RUN_DEADLINE && sc->run_for < 0)
        run_violation(r, "the run did not settle within %lld days of virtual time; busiest events: %s",
                  (long long)(RUNNER_MAX_VIRTUAL / 86400000000LL), busiest);
    else if (why == SIM_RUN_STOPPED && liveness_storm(w.liveness))
        run_violation(r, "%s; the run was stopped there, at virtual time %s; busiest events: %s",
                  liveness_storm(w.liveness), trace_time_str(r->end, at), busiest);
    else if (why == SIM_RUN_QUIET)
        mta_foreach_message(w.mta, check_stuck, &(struct stuck_ctx){ r, sc->epoch });
    mta_shutdown(w.mta);
    /* MailerQ 3.0: mq_cleanup is "called right before MailerQ closes":
     * after the last session closed, while the trace still records. */
    plugin_set_cleanup(w.plugins);
    char *lost = pcap_finish_for_run(&w);

    struct simenv_violations v;
    simenv_check(w.env, &v);
    judge(sc, w.mta, w.trace, &v, o, r, w.stream, w.sums);
    w.sums = NULL;
    output_lost(r, lost);
    int replay = w.stream && w.stream->replay;
    teardown(&w);
    if (replay)
        replay_for_report(sc, o, r);
    return r->exit_code;
}

void run_result_free(struct run_result *r)
{
    for (int i = 0; i < r->nexp; i++)
        expect_result_free(&r->exp[i]);
    free(r->exp);
    for (int i = 0; i < r->nmsgs; i++)
        json_decref(r->msgs[i].detail);
    free(r->msgs);
    for (int i = 0; i < r->nviolations; i++)
        free(r->violations[i]);
    free(r->violations);
    free(r->error);
    free(r->why);
    json_decref(r->summary);
    memset(r, 0, sizeof *r);
}
