/*
 * serve - mtasim serve: a scenario's scripted remote MTA on a real socket
 *
 * SYNOPSIS
 *   mtasim serve SCENARIO --listen ADDR:PORT [--remote ADDR|NAME]
 *                [--once | --sessions N] [--duration SECONDS] [--trace FILE|-]
 *                [--seed N] [--idle-timeout SECONDS] [--allow-long-delays]
 *                [--allow-remote-targets] [--tls-cert FILE [--tls-key FILE]]
 *
 * DESCRIPTION
 *   The scripted remote (sim/world/remote.c, remote_smtp.c) runs
 *   unchanged, on a simulated network whose clock is the real one
 *   (live_env.h); this file is only the bridge between the two worlds.
 *   Each real connection accepted on ADDR:PORT becomes a simulated client
 *   connection to the remote's address, port 25, and the bridge copies
 *   both ways:
 *
 *     real data            -> sim_ep_send           (the remote's input)
 *     real EOF             -> the commands read before it answered
 *                             (RFC 9293 3.6: a FIN closes one direction),
 *                             then sim FIN and the real socket closes;
 *                             at most SERVE_DRAIN later
 *     real reset           -> sim RST, then the real socket closes
 *     no command for --idle-timeout (300 s, RFC 5321 4.5.3.2.7)
 *                          -> "421 4.4.2 NAME Error: timeout exceeded",
 *                             then as after the remote's FIN
 *     sim data             -> write to the real socket
 *     sim FIN (QUIT, 421)  -> FIN on the real socket; closed when the
 *                             client closes, or SERVE_LINGER later
 *     sim RST (reset)      -> RST on the real socket (SO_LINGER 0)
 *     sim refused/unreachable ("connect refuse") -> RST: the real
 *                             connection was accepted already
 *     sim drop, connect timeout -> silence, until the client gives up
 *
 *   So the script's banner, replies, "when session N" (N counts real
 *   connections), attempts, delays, faults, "flush together", "close
 *   delay" and its network shaping (latency, bandwidth, segment) all act
 *   in real time.  Delays (reply delays, "reset|drop at", "close delay",
 *   latency) above SERVE_MAX_DELAY are refused unless --allow-long-delays.
 *
 *   STARTTLS: when the remote answers the client's STARTTLS with 220, the
 *   real side turns to OpenSSL (live_tls.h; the certificate of --tls-cert,
 *   or, without it, a self-signed one made for the session from the one
 *   the scripted remote shows: its name, its dates) and the
 *   bridge runs simtls's client toward the remote, whose scripted handshake
 *   decides: the real handshake waits at the client's ClientHello
 *   (live_env_tls_hold) until the simulated one is done, then goes on, or
 *   fails as the script says - the remote's alert (handshake-failure 40,
 *   protocol-version 70) as the same fatal alert from OpenSSL, its reset
 *   as RST, its close as FIN (docs/tls.md).  The client's bytes wait until
 *   the simulated handshake is done.
 *
 *   Stopping: after N sessions (--sessions N, --once = 1: the listener
 *   closes once N were accepted, the command ends when they are over),
 *   after --duration seconds, or on SIGINT/SIGTERM; never later than
 *   SERVE_MAX_DURATION.  At most SERVE_MAX_SESSIONS at once; more are
 *   reset.  ADDR must be a loopback address unless --allow-remote-targets.
 *
 *   Trace (--trace): the conn records of the real connections, the
 *   remote's own records, and the SMTP dialogue of each session as mtasim
 *   run traces its client's ("smtp send" / "smtp recv", conn= the real
 *   descriptor; serve_dialogue.h).  Replies that the remote has ready at
 *   the same moment leave in one write (live_env.h, "Data").
 *
 *   Standard output: "mtasim serve: listening on ADDR:PORT ..." once the
 *   socket listens (PORT is the real one when 0 was asked), then
 *   "mtasim serve: N session(s) served" at the end.
 *
 * DIAGNOSTICS
 *   Usage and scenario errors, a delay beyond the limit, an address that
 *   cannot be listened on: one line on standard error, exit 2.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "live_cmd.h"
#include "live_env.h"
#include "live_tls.h"
#include "outq.h"
#include "parse.h"
#include "remote.h"
#include "serve_dialogue.h"
#include "simtls.h"
#include "trace_store.h"
#include "world_setup.h"

#define SERVE_MAX_DELAY (10 * MTA_USEC_PER_SEC)
#define SERVE_MAX_SESSIONS 64
#define SERVE_MAX_DURATION (86400 * MTA_USEC_PER_SEC)
#define SERVE_LINGER (2 * MTA_USEC_PER_SEC)
#define SERVE_REMOTE_PORT 25
/* The remote's output the real client has not taken yet: a client that
 * reads nothing for this long is reset. */
#define SERVE_MAX_PENDING ((size_t)1 << 20)
/* RFC 5321 4.5.3.2.7: a server SHOULD wait at least 5 minutes for the next
 * command; then it gives up on the client (--idle-timeout). */
#define SERVE_IDLE_TIMEOUT (300 * MTA_USEC_PER_SEC)
/* After a client's FIN, how long its last commands may take to be answered
 * (the longest scripted delay serve allows, and some) before the session ends. */
#define SERVE_DRAIN (SERVE_MAX_DELAY + 5 * MTA_USEC_PER_SEC)

static const char usage_serve[] =
    "usage: mtasim serve SCENARIO --listen ADDR:PORT [OPTIONS]\n"
    "\n"
    "Serve the scenario's scripted remote MTA on a real socket, in real time (docs/live.md).\n"
    "\n"
    "options:\n"
    "  --listen ADDR:PORT      where to listen (IPv4; port 0 = any free port, printed)\n"
    "  --remote ADDR|NAME      which of the scenario's remotes (default: the first)\n"
    "  --once                  serve one session, then stop (= --sessions 1)\n"
    "  --sessions N            serve N sessions, then stop\n"
    "  --duration SECONDS      stop after this long\n"
    "  --trace FILE            write the remote's trace (- = standard output)\n"
    "  --seed N                seed of the script's random choices (default: the scenario's)\n"
    "  --idle-timeout SECONDS  end a session idle this long with 421 (default 300)\n"
    "  --allow-long-delays     allow scripted delays over 10 s\n"
    "  --allow-remote-targets  allow listening outside 127.0.0.0/8\n"
    "  --tls-cert FILE         certificate (PEM) for STARTTLS (default: self-signed, per session, the script's)\n"
    "  --tls-key FILE          its private key (default: in the certificate file)\n"
    "  -h, --help              show this help\n";

struct serve_opts {
    const char *path;
    const char *listen_spec;
    const char *remote;
    long sessions;                  /* 0 = no limit */
    double duration;                /* seconds; 0 = SERVE_MAX_DURATION */
    mta_usec_t idle_timeout;        /* 0 = SERVE_IDLE_TIMEOUT */
    const char *trace_path;
    uint64_t seed;
    int seed_set, allow_long, allow_remote;
    const char *tls_cert, *tls_key;
};

struct serve {
    struct live_env *le;
    struct mta_env *env;
    const struct scn_remote *script;
    struct sim_remote *remote;
    struct bridge *bridges;         /* live ones, for the end of the run */
    int listen_fd;                  /* -1 once closed */
    long max_sessions;
    long accepted, finished, live;
    mta_usec_t idle_timeout;
    int session_certs;              /* no --tls-cert: each handshake shows the script's certificate */
};

/* One real connection and its simulated twin. */
struct bridge {
    struct serve *sv;
    struct bridge *prev, *next;     /* sv->bridges */
    int fd;                         /* the real socket; -1 once released */
    sim_ep *ep;                     /* the simulated client endpoint; NULL once released */
    sim_event_id linger;            /* closes fd after the remote's FIN */
    struct outq out;                /* the remote's bytes the real socket has not taken */
    int fin_pending;                /* the remote closed: FIN once out is empty */
    sim_event_id idle;              /* the idle timeout (RFC 5321 4.5.3.2.7) */
    sim_event_id drain;             /* bounds the answering after the client's FIN */
    int client_fin;                 /* the client half-closed: answer, then end */
    struct serve_dialogue dialogue; /* the "smtp" trace records of the session */
    /* STARTTLS (docs/tls.md): after the remote's 220 the real side is
     * OpenSSL's (live_tls.h) and the simulated side simtls's client, so the
     * remote's scripted handshake runs too; the client's bytes wait in held
     * until that handshake is done. */
    int starttls_asked;             /* the client sent STARTTLS, no reply yet */
    struct simtls *stls;
    struct simtls_buf held;
};

/* bridge_end - both sides released: count the session */
static void bridge_end(struct bridge *b)
{
    struct serve *sv = b->sv;
    if (b->linger)
        sim_sched_cancel(live_env_sched(sv->le), b->linger);
    if (b->idle)
        sim_sched_cancel(live_env_sched(sv->le), b->idle);
    if (b->drain)
        sim_sched_cancel(live_env_sched(sv->le), b->drain);
    serve_dialogue_end(&b->dialogue);
    if (b->stls != NULL) {
        simtls_free(b->stls);
        free(b->stls);
    }
    simtls_buf_free(&b->held);
    if (b->ep)
        sim_ep_close(b->ep);
    if (b->fd >= 0)
        sv->env->tcp_close(sv->env, b->fd);
    outq_free(&b->out);
    if (b->prev)
        b->prev->next = b->next;
    else
        sv->bridges = b->next;
    if (b->next)
        b->next->prev = b->prev;
    sv->live--;
    sv->finished++;
    free(b);
}

/* bridge_reset - the remote reset, or cannot be reached: RST to the client */
static void bridge_reset(struct bridge *b)
{
    live_env_reset(b->sv->le, b->fd);
    b->fd = -1;
    bridge_end(b);
}

/* bridge_linger - the client did not close after the remote's FIN */
static void bridge_linger(void *arg)
{
    struct bridge *b = arg;
    b->linger = 0;
    bridge_end(b);
}

/* bridge_put - the outq's socket write: the real descriptor */
static int bridge_put(void *arg, const void *buf, size_t len)
{
    struct bridge *b = arg;
    return b->sv->env->tcp_write(b->sv->env, b->fd, buf, len);
}

/* bridge_fin - the remote's FIN: to the client once its bytes are out;
 * closed when the client closes too, or SERVE_LINGER later */
static void bridge_fin(struct bridge *b)
{
    if (outq_len(&b->out) > 0) {
        b->fin_pending = 1;         /* bridge_real_event sends it on MTA_TCP_WRITABLE */
        return;
    }
    b->fin_pending = 0;
    live_env_shutdown_write(b->sv->le, b->fd);
    if (!b->linger)
        b->linger = sim_sched_after(live_env_sched(b->sv->le), SERVE_LINGER, bridge_linger, b);
}

/* bridge_closing - the remote side is done: FIN to the client (once what
 * it has not taken yet is out), which closes in turn, or SERVE_LINGER
 * later the session ends anyway */
static void bridge_closing(struct bridge *b)
{
    if (b->ep) {
        sim_ep_close(b->ep);
        b->ep = NULL;
    }
    if (b->idle) {
        sim_sched_cancel(live_env_sched(b->sv->le), b->idle);
        b->idle = 0;
    }
    bridge_fin(b);
}

/* bridge_to_client - the remote's bytes to the real client, through the
 * outq; -1 (the bridge reset) for a client that reads nothing */
static int bridge_to_client(struct bridge *b, const char *data, size_t len)
{
    if (outq_write(&b->out, data, len, bridge_put, b) == -ENOBUFS) {
        bridge_reset(b);
        return -1;
    }
    serve_dialogue_server(&b->dialogue, data, len);
    return 0;
}

/* bridge_idle_fire - no command for the idle timeout: 421, as Postfix's
 * smtpd says it ("timeout exceeded"), then the close */
static void bridge_idle_fire(void *arg)
{
    struct bridge *b = arg;
    const struct scn_remote *r = b->sv->script;
    char line[300], addr[MTA_IP_TEXT];
    b->idle = 0;
    mta_ip_format(r->addr, addr);
    int n = snprintf(line, sizeof line, "421 4.4.2 %s Error: timeout exceeded\r\n",
                     r->name ? r->name : addr);
    if (b->fd >= 0 && bridge_to_client(b, line, (size_t)n) < 0)
        return;
    bridge_closing(b);
}

/* bridge_active - the session moved: the idle timeout starts again */
static void bridge_active(struct bridge *b)
{
    struct sim_sched *sched = live_env_sched(b->sv->le);
    if (b->ep == NULL)
        return;
    if (b->idle)
        sim_sched_cancel(sched, b->idle);
    b->idle = sim_sched_after(sched, b->sv->idle_timeout, bridge_idle_fire, b);
}

/* bridge_drained - the client's FIN came SERVE_DRAIN ago: what was not
 * answered by now will not be */
static void bridge_drained(void *arg)
{
    struct bridge *b = arg;
    b->drain = 0;
    bridge_end(b);
}

/* to_remote - client bytes to the remote: as they are, or inside simtls */
static void to_remote(struct bridge *b, const char *data, size_t len)
{
    if (b->ep == NULL)
        return;
    if (b->stls == NULL) {
        sim_ep_send(b->ep, data, len);
    } else if (b->stls->state == SIMTLS_UP) {
        struct simtls_buf w = { 0 };
        simtls_wrap(&w, data, len);
        sim_ep_send(b->ep, w.p, w.len);
        simtls_buf_free(&w);
    } else {
        simtls_buf_put(&b->held, data, len);
    }
}

/* is_starttls - the client's bytes hold a STARTTLS command line */
static int is_starttls(const char *data, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++)
        if ((i == 0 || data[i - 1] == '\n') && strncasecmp(data + i, "STARTTLS", 8) == 0 &&
            (i + 8 == len || data[i + 8] == '\r' || data[i + 8] == '\n'))
            return 1;
    return 0;
}

/* last_reply_code - the code of the last reply line in data (0: none) */
static int last_reply_code(const char *data, size_t len)
{
    size_t end = len;
    while (end > 0 && (data[end - 1] == '\n' || data[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start > 0 && data[start - 1] != '\n')
        start--;
    if (end - start < 4 || data[start + 3] != ' ')
        return 0;
    return atoi(data + start);
}

/* bridge_start_tls - the remote said 220 to STARTTLS and the client has it:
 * TLS on both sides (RFC 3207 4); 0 or -1 (the bridge is reset) */
static int bridge_start_tls(struct bridge *b)
{
    struct simtls_buf hello = { 0 };
    b->stls = calloc(1, sizeof *b->stls);
    if (b->stls == NULL || outq_len(&b->out) > 0 ||
        b->sv->env->tls_start(b->sv->env, b->fd, 1, NULL) < 0) {
        bridge_reset(b);
        return -1;
    }
    live_env_tls_hold(b->sv->le, b->fd);
    simtls_init(b->stls, SIMTLS_CLIENT);
    simtls_client_hello(b->stls, b->sv->script->name, &hello);
    sim_ep_send(b->ep, hello.p, hello.len);
    simtls_buf_free(&hello);
    return 0;
}

/* bridge_sim_tls - the remote's bytes inside simtls; -1 when the bridge ended */
static int bridge_sim_tls(struct bridge *b, const char *data, size_t len)
{
    struct simtls_buf wire = { 0 }, plain = { 0 };
    int ev = simtls_input(b->stls, data, len, &wire, &plain);
    if (wire.len > 0)
        sim_ep_send(b->ep, wire.p, wire.len);
    simtls_buf_free(&wire);
    if (ev & SIMTLS_EV_FAILED) {
        /* The remote's fatal alert: the real handshake ends with the same
         * one (RFC 8446 6.2: then the connection closes; MTA_TCP_TLS_FAILED
         * ends the bridge), when the ClientHello is there or when it comes,
         * at most SERVE_LINGER from now.  The remote is done. */
        int alert = b->stls->alert > 0 ? b->stls->alert : SIMTLS_ALERT_HANDSHAKE_FAILURE;
        simtls_buf_free(&plain);
        sim_ep_close(b->ep);
        b->ep = NULL;
        if (b->idle) {
            sim_sched_cancel(live_env_sched(b->sv->le), b->idle);
            b->idle = 0;
        }
        if (!b->linger)
            b->linger = sim_sched_after(live_env_sched(b->sv->le), SERVE_LINGER, bridge_linger, b);
        live_env_tls_decide(b->sv->le, b->fd, alert);      /* may end b */
        return -1;
    }
    if ((ev & SIMTLS_EV_UP) && b->sv->session_certs && b->stls->cert.name[0] != '\0') {
        /* The certificate the remote showed (its tls clauses: cert NAME,
         * expired), made for the real handshake too, its dates where the
         * simulated ones are from the virtual now.  Self-signed: a client
         * that verifies finds every one untrusted (docs/tls.md, "Live"). */
        const struct simtls_cert *sc = &b->stls->cert;
        sim_usec now = sim_sched_now(live_env_sched(b->sv->le));
        if (live_env_tls_cert(b->sv->le, b->fd, sc->name, sc->alt,
                              (long)((sc->not_before - now) / MTA_USEC_PER_SEC),
                              (long)((sc->not_after - now) / MTA_USEC_PER_SEC)) < 0)
            fprintf(stderr, "mtasim serve: cannot make the session's certificate: the one "
                    "made at start is shown\n");
    }
    if (ev & SIMTLS_EV_UP)
        live_env_tls_decide(b->sv->le, b->fd, 0);          /* the real handshake goes on */
    if ((ev & SIMTLS_EV_UP) && b->held.len > 0) {
        struct simtls_buf held = b->held;
        b->held = (struct simtls_buf){ 0 };
        to_remote(b, (const char *)held.p, held.len);
        simtls_buf_free(&held);
    }
    int rc = plain.len > 0 ? bridge_to_client(b, (const char *)plain.p, plain.len) : 0;
    simtls_buf_free(&plain);
    return rc;
}

/* bridge_sim_event - the remote's side of the connection */
static void bridge_sim_event(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data,
                             size_t len)
{
    struct bridge *b = arg;
    (void)ep;
    switch (ev) {
    case SIM_EP_CONNECTED:
        return;
    case SIM_EP_DATA:
        if (b->fd < 0)
            return;
        if (b->stls != NULL) {
            if (bridge_sim_tls(b, data, len) < 0)
                return;
        } else {
            if (bridge_to_client(b, data, len) < 0)
                return;
            if (b->starttls_asked && last_reply_code(data, len) != 0) {
                b->starttls_asked = 0;
                if (last_reply_code(data, len) == 220 && bridge_start_tls(b) < 0)
                    return;
            }
        }
        if (b->client_fin && serve_dialogue_owed(&b->dialogue) == 0)
            bridge_end(b);      /* every command read before the FIN is answered */
        else
            bridge_active(b);
        return;
    case SIM_EP_FIN:
        /* After QUIT or a 421: FIN to the client, which closes in turn. */
        bridge_closing(b);
        return;
    case SIM_EP_RST:
    case SIM_EP_REFUSED:
    case SIM_EP_UNREACHABLE:
    case SIM_EP_TIMEDOUT:
        bridge_reset(b);
        return;
    case SIM_EP_WRITABLE:
    case SIM_EP_SENT:
        return;             /* the bridge writes with sim_ep_send(): never asked for */
    }
}

/* bridge_real_event - the client's side of the connection */
static void bridge_real_event(void *arg, int fd, enum mta_tcp_event ev, const char *data,
                              size_t len, int err)
{
    struct bridge *b = arg;
    (void)fd;
    (void)err;
    switch (ev) {
    case MTA_TCP_DATA:
        serve_dialogue_client(&b->dialogue, data, len);
        if (b->stls == NULL && is_starttls(data, len))
            b->starttls_asked = 1;
        to_remote(b, data, len);
        bridge_active(b);
        return;
    case MTA_TCP_TLS_UP:
        return;                 /* traced by the environment ("conn tls") */
    case MTA_TCP_TLS_FAILED:
        /* The client gave up on the handshake (the remote sees it go), or
         * it ended with the remote's alert (bridge_sim_tls). */
        if (b->ep) {
            sim_ep_reset(b->ep);
            b->ep = NULL;
        }
        bridge_end(b);
        return;
    case MTA_TCP_EOF:
        /* RFC 9293 3.6: a FIN closes the client's direction only.  The
         * commands read before it are answered (as Postfix does), then the
         * remote sees the FIN; SERVE_DRAIN bounds the wait. */
        if (b->ep == NULL || serve_dialogue_owed(&b->dialogue) == 0) {
            bridge_end(b);
            return;
        }
        b->client_fin = 1;
        b->drain = sim_sched_after(live_env_sched(b->sv->le), SERVE_DRAIN, bridge_drained, b);
        return;
    case MTA_TCP_RESET:
        if (b->ep) {
            sim_ep_reset(b->ep);
            b->ep = NULL;
        }
        bridge_end(b);
        return;
    case MTA_TCP_WRITABLE:
        if (outq_flush(&b->out, bridge_put, b) == 0 && b->fin_pending
            && outq_len(&b->out) == 0)
            bridge_fin(b);
        return;
    case MTA_TCP_CONNECTED:
    case MTA_TCP_CONNECT_FAILED:
    case MTA_TCP_SENT:
        return;                 /* an accepted socket is connected from the start */
    }
}

/* serve_accept - a real client: its simulated twin connects to the remote */
static void serve_accept(void *arg, int fd, uint32_t peer_addr, uint16_t peer_port,
                         mta_tcp_cb *cb, void **cb_arg)
{
    struct serve *sv = arg;
    (void)peer_port;
    if (sv->live >= SERVE_MAX_SESSIONS) {
        live_env_reset(sv->le, fd);
        return;
    }
    struct bridge *b = calloc(1, sizeof *b);
    if (b == NULL) {
        live_env_reset(sv->le, fd);
        return;
    }
    b->sv = sv;
    b->fd = fd;
    outq_init(&b->out, SERVE_MAX_PENDING);
    serve_dialogue_init(&b->dialogue, fd, live_env_trace, sv->le);
    b->next = sv->bridges;
    if (sv->bridges)
        sv->bridges->prev = b;
    sv->bridges = b;
    sv->live++;
    sv->accepted++;
    *cb = bridge_real_event;
    *cb_arg = b;
    int err = 0;
    b->ep = sim_net_connect_peer(live_env_net(sv->le), mta_ip_v4(peer_addr), sv->script->addr,
                                 SERVE_REMOTE_PORT, bridge_sim_event, b, &err);
    if (b->ep == NULL) {
        bridge_reset(b);
        return;
    }
    bridge_active(b);
    if (sv->max_sessions > 0 && sv->accepted >= sv->max_sessions && sv->listen_fd >= 0) {
        /* Enough: later clients are refused by the kernel. */
        sv->env->tcp_close(sv->env, sv->listen_fd);
        sv->listen_fd = -1;
    }
}

/* serve_done - the sessions asked for are over */
static int serve_done(void *arg)
{
    const struct serve *sv = arg;
    return sv->max_sessions > 0 && sv->finished >= sv->max_sessions && sv->live == 0;
}

/* pick_remote - the script to serve: by address or name, else the first; NULL said */
static const struct scn_remote *pick_remote(const struct scn_scenario *sc, const char *want)
{
    mta_ip in;
    int by_addr = want && mta_ip_parse(want, &in) == 0;
    for (int i = 0; i < sc->nremotes; i++) {
        const struct scn_remote *r = &sc->remotes[i];
        if (want == NULL || (by_addr && mta_ip_eq(r->addr, in))
            || (!by_addr && r->name && strcasecmp(r->name, want) == 0)) {
            if (!mta_ip_is_v4(r->addr)) {
                /* The bridge listens on IPv4 and its clients are IPv4. */
                fprintf(stderr, "mtasim serve: %s: remote '%s' is IPv6; serve bridges IPv4 "
                        "clients to IPv4 remotes only\n", sc->file, want ? want : r->name);
                return NULL;
            }
            return r;
        }
    }
    if (want)
        fprintf(stderr, "mtasim serve: %s has no remote '%s'\n", sc->file, want);
    else
        fprintf(stderr, "mtasim serve: %s has no remote to serve\n", sc->file);
    return NULL;
}

/* delay_too_long - a scripted delay beyond SERVE_MAX_DELAY, said; 1 or 0 */
static int delay_too_long(const struct scn_pos *p, const char *what, mta_usec_t d)
{
    if (d <= SERVE_MAX_DELAY)
        return 0;
    fprintf(stderr, "%s:%d:%d: %s of %.3f s is longer than mtasim serve's limit of %lld s "
            "(--allow-long-delays serves it)\n", p->file, p->line, p->col, what,
            (double)d / MTA_USEC_PER_SEC, (long long)(SERVE_MAX_DELAY / MTA_USEC_PER_SEC));
    return 1;
}

/* check_delays - every delay of the script within the limit; 0, or -1 said */
static int check_delays(const struct scn_remote *r)
{
    int bad = delay_too_long(&r->pos, "latency", r->latency)
              || delay_too_long(&r->pos, "close delay", r->close_delay);
    for (int i = 0; i < r->nreplies && !bad; i++)
        bad = delay_too_long(&r->replies[i].pos, "reply delay", r->replies[i].delay);
    for (int i = 0; i < r->nfaults && !bad; i++)
        if (r->faults[i].trigger == SCN_FAULT_AT)
            bad = delay_too_long(&r->faults[i].pos, "fault time", r->faults[i].at);
    return bad ? -1 : 0;
}

/* parse_options - argv into o; 0, 1 for --help, or -1 said */
static int parse_options(int argc, char **argv, struct serve_opts *o)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "remote", required_argument, NULL, 'r' },
        { "once", no_argument, NULL, '1' },
        { "sessions", required_argument, NULL, 'n' },
        { "duration", required_argument, NULL, 'd' },
        { "trace", required_argument, NULL, 't' },
        { "idle-timeout", required_argument, NULL, 'i' },
        { "seed", required_argument, NULL, 's' },
        { "allow-long-delays", no_argument, NULL, 'L' },
        { "allow-remote-targets", no_argument, NULL, 'A' },
        { "tls-cert", required_argument, NULL, 'C' },
        { "tls-key", required_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        errno = 0;
        switch (c) {
        case 'l': o->listen_spec = optarg; break;
        case 'r': o->remote = optarg; break;
        case '1': o->sessions = 1; break;
        case 'n':
            o->sessions = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || errno != 0 || o->sessions < 1) {
                fprintf(stderr, "mtasim serve: --sessions wants a positive integer, not '%s'\n", optarg);
                return -1;
            }
            break;
        case 'd':
            o->duration = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(o->duration > 0)
                || o->duration > (double)(SERVE_MAX_DURATION / MTA_USEC_PER_SEC)) {
                fprintf(stderr, "mtasim serve: --duration wants seconds between 0 and 86400, "
                        "not '%s'\n", optarg);
                return -1;
            }
            break;
        case 'i': {
            double secs = strtod(optarg, &end);
            if (*optarg == '\0' || *end != '\0' || !(secs > 0)
                || secs > (double)(SERVE_MAX_DURATION / MTA_USEC_PER_SEC)) {
                fprintf(stderr, "mtasim serve: --idle-timeout wants seconds between 0 and 86400, "
                        "not '%s'\n", optarg);
                return -1;
            }
            o->idle_timeout = (mta_usec_t)(secs * 1e6);
            break;
        }
        case 't': o->trace_path = optarg; break;
        case 's':
            if (live_cli_seed("serve", optarg, &o->seed) < 0)
                return -1;
            o->seed_set = 1;
            break;
        case 'L': o->allow_long = 1; break;
        case 'A': o->allow_remote = 1; break;
        case 'C': o->tls_cert = optarg; break;
        case 'K': o->tls_key = optarg; break;
        case 'h': return 1;
        default: return -1;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mtasim serve: %s\n", optind >= argc ? "no scenario file given"
                                                              : "one scenario file at a time");
        return -1;
    }
    if (o->listen_spec == NULL) {
        fprintf(stderr, "mtasim serve: --listen ADDR:PORT is required\n");
        return -1;
    }
    o->path = argv[optind];
    return 0;
}

/* serve_run - listen, serve until told to stop; the exit code */
static int serve_run(const struct serve_opts *o, const struct scn_scenario *sc,
                     const struct scn_remote *script, const struct sockaddr_in *at, FILE *trace)
{
    uint64_t seed = o->seed_set ? o->seed : sc->seed;
    struct serve sv = { .script = script, .listen_fd = -1, .max_sessions = o->sessions,
                        .idle_timeout = o->idle_timeout ? o->idle_timeout : SERVE_IDLE_TIMEOUT };
    struct trace_store *ts = NULL;
    int rc = 3;
    sv.le = live_env_create(seed);
    if (sv.le != NULL && trace != NULL) {
        ts = trace_store_create(live_env_epoch(sv.le), 0);     /* streamed, not kept */
        if (ts != NULL)
            trace_store_stream(ts, trace);
    }
    if (sv.le == NULL || (trace != NULL && ts == NULL) || live_env_attach(sv.le, NULL, ts) < 0) {
        fprintf(stderr, "mtasim serve: cannot create the live environment\n");
        goto out;
    }
    sv.env = live_env_env(sv.le);
    char addr6[MTA_IP_TEXT], err[300];
    mta_ip_format(script->addr, addr6);
    SSL_CTX *tls = live_tls_server_ctx(o->tls_cert, o->tls_key,
                                       script->name ? script->name : addr6, err, sizeof err);
    if (tls == NULL) {
        fprintf(stderr, "mtasim serve: %s\n", err);
        rc = 2;
        goto out;
    }
    live_env_set_tls_server(sv.le, tls);
    sv.session_certs = o->tls_cert == NULL;
    world_setup_network(live_env_net(sv.le), sc, seed);
    sv.remote = sim_remote_create(live_env_sched(sv.le), live_env_net(sv.le), script,
                                  live_env_trace, sv.le);
    if (sv.remote == NULL) {
        fprintf(stderr, "mtasim serve: cannot create the scripted remote\n");
        goto out;
    }
    sv.listen_fd = sv.env->tcp_listen(sv.env, ntohl(at->sin_addr.s_addr), ntohs(at->sin_port),
                                      serve_accept, &sv);
    if (sv.listen_fd < 0) {
        fprintf(stderr, "mtasim serve: cannot listen on %s: %s\n", o->listen_spec,
                strerror(-sv.listen_fd));
        rc = 2;
        goto out;
    }
    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &at->sin_addr, addr, sizeof addr);
    printf("mtasim serve: listening on %s:%u as remote %s from %s\n", addr,
           live_env_listen_port(sv.le, sv.listen_fd), script->name ? script->name : "(unnamed)",
           o->path);
    fflush(stdout);
    live_env_catch_signals(sv.le);
    mta_usec_t span = o->duration > 0 ? (mta_usec_t)(o->duration * 1e6) : SERVE_MAX_DURATION;
    live_env_run(sv.le, live_env_epoch(sv.le) + span, serve_done, &sv);
    /* Sessions still open at the end (--duration, a signal) end now. */
    for (long bound = sv.live; sv.bridges != NULL && bound-- > 0;)
        bridge_end(sv.bridges);
    printf("mtasim serve: %ld session%s served\n", sv.finished, sv.finished == 1 ? "" : "s");
    rc = 0;
out:
    if (sv.remote)
        sim_remote_destroy(sv.remote);
    live_env_destroy(sv.le);    /* closes the bridges' sockets too */
    trace_store_destroy(ts);
    return rc;
}

/* serve_main - mtasim serve; see live_cmd.h */
int serve_main(int argc, char **argv)
{
    struct serve_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_options(argc, argv, &o);
    if (rc != 0) {
        fputs(usage_serve, rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    struct sockaddr_in at;
    if (live_parse_addr_port(o.listen_spec, &at) < 0) {
        fprintf(stderr, "mtasim serve: --listen wants ADDR:PORT (IPv4), not '%s'\n", o.listen_spec);
        return 2;
    }
    if (!live_addr_is_loopback(ntohl(at.sin_addr.s_addr)) && !o.allow_remote) {
        fprintf(stderr, "mtasim serve: --listen %s is not a loopback address; serve only listens "
                "on 127.0.0.0/8 unless --allow-remote-targets\n", o.listen_spec);
        return 2;
    }
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_file(o.path, &err);
    if (sc == NULL) {
        fprintf(stderr, "%s:%d:%d: %s\n", err.file, err.line, err.col, err.msg);
        return 2;
    }
    FILE *trace = NULL;
    const struct scn_remote *script = pick_remote(sc, o.remote);
    rc = 2;
    if (script == NULL || (!o.allow_long && check_delays(script) < 0))
        goto out;
    if (o.trace_path && (trace = live_cli_trace_open("serve", o.trace_path)) == NULL)
        goto out;
    rc = serve_run(&o, sc, script, &at, trace);
out:
    if (live_cli_trace_close("serve", o.trace_path, trace) < 0)
        rc = rc > 2 ? rc : 2;
    scn_free(sc);
    return rc;
}
