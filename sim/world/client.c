/*
 * client - a scripted SMTP client that talks to the MTA's inbound server
 *
 * SYNOPSIS
 *   See client.h.
 *
 * DESCRIPTION
 *   States:
 *
 *     IDLE      before its start time
 *     CONNECT   SYN sent
 *     RUN       running steps; SEND and DISCONNECT/RESET act at once
 *     REPLY     an EXPECT waits for a complete reply
 *     DELAY     a DELAY step's timer runs
 *     TLS       a TLS step waits for the handshake (simtls.h); then every
 *               byte both ways is inside TLS records
 *     DONE      every step ran; replies are read and dropped
 *     CLOSED    the endpoint is released
 *
 *   Reply assembly: lines end at LF; a line whose fourth byte is '-' is
 *   continued; the reply's code is the first line's.  The input buffer is
 *   bounded (CLIENT_INBUF_MAX): a server that sends a longer unfinished
 *   line is cut off and the client resets the connection.
 *
 *   Entry points (the start timer, the delay timer, network events) run
 *   steps until one has to wait; the client frees nothing before
 *   sim_client_destroy().
 *
 * DIAGNOSTICS
 *   Broken invariants print "sim_client_<fn>: ..." and abort.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "simtls.h"

#define CLIENT_INBUF_MAX 65536

enum client_state { C_IDLE, C_CONNECT, C_RUN, C_REPLY, C_DELAY, C_TLS, C_DONE, C_CLOSED };

struct sim_client {
    struct sim_sched *sched;
    struct sim_net *net;
    const struct scn_client *script;
    int number;
    uint32_t dst;
    uint16_t port;
    sim_trace_fn trace;
    void *trace_arg;
    enum client_state state;
    sim_ep *ep;
    int step;                           /* the next step to run */
    sim_event_id timer;                 /* start or delay; 0 none */
    char in[CLIENT_INBUF_MAX];
    size_t inlen;
    size_t reply_start;                 /* where the reply being assembled began */
    struct simtls *tls;                 /* after a TLS step */
};

/* client_die - a broken invariant: stop loudly */
static void client_die(const char *fn, const char *what)
{
    fprintf(stderr, "sim_client_%s: %s\n", fn, what);
    abort();
}

/* trace_rec - "client NAME client=ADDR n=N [key=value]" */
static void trace_rec(const struct sim_client *c, const char *name, const char *key,
                      const char *val, size_t vlen)
{
    if (c->trace == NULL)
        return;
    char addr[16], n[24];
    uint32_t a = c->script->addr;
    snprintf(addr, sizeof addr, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    int nl = snprintf(n, sizeof n, "%d", c->number);
    struct mta_trace_rec r = { .kind = "client", .name = name, .nfields = 2 };
    r.field[0] = (struct mta_trace_field){ "client", addr, strlen(addr), (int64_t)a, 1, 0 };
    r.field[1] = (struct mta_trace_field){ "n", n, (size_t)nl, c->number, 1, 0 };
    if (key)
        r.field[r.nfields++] = (struct mta_trace_field){ key, val, vlen, 0, 0, 0 };
    c->trace(c->trace_arg, &r);
}

/* trace_reply - "client reply|unexpected client=ADDR n=N line=L want=W got=TEXT" */
static void trace_reply(const struct sim_client *c, const char *name, const struct scn_step *st,
                        const char *got, size_t glen)
{
    if (c->trace == NULL)
        return;
    char addr[16], n[24], l[24], w[24];
    uint32_t a = c->script->addr;
    snprintf(addr, sizeof addr, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    int nl = snprintf(n, sizeof n, "%d", c->number);
    int ll = snprintf(l, sizeof l, "%d", st->pos.line);
    int wl = snprintf(w, sizeof w, "%d", st->code);
    struct mta_trace_rec r = { .kind = "client", .name = name, .nfields = 5 };
    r.field[0] = (struct mta_trace_field){ "client", addr, strlen(addr), (int64_t)a, 1, 0 };
    r.field[1] = (struct mta_trace_field){ "n", n, (size_t)nl, c->number, 1, 0 };
    r.field[2] = (struct mta_trace_field){ "line", l, (size_t)ll, st->pos.line, 1, 0 };
    r.field[3] = (struct mta_trace_field){ "want", w, (size_t)wl, st->code, 1, 0 };
    r.field[4] = (struct mta_trace_field){ "got", got, glen, 0, 0, 0 };
    c->trace(c->trace_arg, &r);
}

/* client_end - release the endpoint (FIN or RST) and record why */
static void client_end(struct sim_client *c, const char *reason, int reset)
{
    if (c->state == C_CLOSED)
        return;
    if (c->timer) {
        sim_sched_cancel(c->sched, c->timer);
        c->timer = 0;
    }
    if (c->ep) {
        if (reset)
            sim_ep_reset(c->ep);
        else
            sim_ep_close(c->ep);
        c->ep = NULL;
    }
    c->state = C_CLOSED;
    trace_rec(c, "end", "reason", reason, strlen(reason));
}

static void run_steps(struct sim_client *c);

static void delay_over(void *arg)
{
    struct sim_client *c = arg;
    c->timer = 0;
    assert(c->state == C_DELAY);
    c->state = C_RUN;
    run_steps(c);
}

/* client_send - bytes to the server, inside TLS once it is up */
static void client_send(struct sim_client *c, const char *bytes, size_t len)
{
    if (c->tls == NULL || c->tls->state != SIMTLS_UP) {
        (void)sim_ep_send(c->ep, bytes, len);
        return;
    }
    struct simtls_buf w = { 0 };
    simtls_wrap(&w, bytes, len);
    (void)sim_ep_send(c->ep, w.p, w.len);
    simtls_buf_free(&w);
}

/* client_tls - a TLS step: the ClientHello and a wait for the handshake,
 * or (fail) a handshake_failure alert and the close; 1 when it waits or
 * ended the client */
static int client_tls(struct sim_client *c, int fail)
{
    struct simtls_buf w = { 0 };
    if (c->tls != NULL)
        client_die("tls", "a second TLS step");
    if (fail) {
        simtls_alert(&w, SIMTLS_ALERT_HANDSHAKE_FAILURE);
        (void)sim_ep_send(c->ep, w.p, w.len);
        simtls_buf_free(&w);
        client_end(c, "tls-abort", 0);
        return 1;
    }
    c->tls = calloc(1, sizeof *c->tls);
    if (c->tls == NULL)
        client_die("tls", "out of memory");
    simtls_init(c->tls, SIMTLS_CLIENT);
    simtls_client_hello(c->tls, NULL, &w);
    (void)sim_ep_send(c->ep, w.p, w.len);
    simtls_buf_free(&w);
    c->state = C_TLS;
    return 1;
}

/* client_input - bytes from the server: through TLS once a TLS step ran;
 * -1 when the client ended */
static int client_input(struct sim_client *c, const char *data, size_t len)
{
    struct simtls_buf wire = { 0 }, plain = { 0 };
    if (c->tls != NULL) {
        int ev = simtls_input(c->tls, data, len, &wire, &plain);
        if (wire.len > 0)
            (void)sim_ep_send(c->ep, wire.p, wire.len);
        simtls_buf_free(&wire);
        if (ev & SIMTLS_EV_FAILED) {
            simtls_buf_free(&plain);
            client_end(c, "tls-failed", 1);
            return -1;
        }
        if ((ev & SIMTLS_EV_UP) && c->state == C_TLS) {
            trace_rec(c, "tls", NULL, NULL, 0);
            c->state = C_RUN;
        }
        data = (const char *)plain.p;
        len = plain.len;
    }
    if (c->inlen + len > sizeof c->in) {
        simtls_buf_free(&plain);
        client_end(c, "overflow", 1);
        return -1;
    }
    if (len > 0)
        memcpy(c->in + c->inlen, data, len);
    c->inlen += len;
    simtls_buf_free(&plain);
    return 0;
}

/* run_steps - steps from c->step on, until one waits or none is left */
static void run_steps(struct sim_client *c)
{
    const struct scn_client *sc = c->script;
    while (c->state == C_RUN) {
        if (c->step >= sc->nsteps) {
            c->state = C_DONE;
            trace_rec(c, "done", NULL, NULL, 0);
            return;
        }
        const struct scn_step *st = &sc->steps[c->step++];
        switch (st->kind) {
        case SCN_STEP_SEND:
            /* -EPIPE: the server closed; its FIN ends the script. */
            client_send(c, st->bytes, st->len);
            break;
        case SCN_STEP_TLS:
            if (client_tls(c, st->code))
                return;
            break;
        case SCN_STEP_EXPECT:
            c->state = C_REPLY;
            c->reply_start = 0;
            return;
        case SCN_STEP_DELAY:
            c->state = C_DELAY;
            c->timer = sim_sched_at_kind(c->sched, sim_sched_now(c->sched) + st->delay, delay_over, c,
                                         SIM_EV_CLIENT);
            return;
        case SCN_STEP_DISCONNECT:
            client_end(c, "disconnect", 0);
            return;
        case SCN_STEP_RESET:
            client_end(c, "reset", 1);
            return;
        }
    }
}

/* reply_complete - a whole reply is in c->in[0, len): judge it, go on */
static void reply_complete(struct sim_client *c, size_t len)
{
    if (c->state == C_REPLY) {
        const struct scn_step *st = &c->script->steps[c->step - 1];
        assert(st->kind == SCN_STEP_EXPECT);
        int code = (c->in[0] - '0') * 100 + (c->in[1] - '0') * 10 + (c->in[2] - '0');
        size_t first = 0;
        while (first < len && c->in[first] != '\r' && c->in[first] != '\n')
            first++;
        /* Each EXPECT step leaves one record, naming its script line: the
         * scenario's client expectations are judged on them. */
        trace_reply(c, st->code != 0 && code != st->code ? "unexpected" : "reply", st, c->in, first);
        c->state = C_RUN;
    }
    memmove(c->in, c->in + len, c->inlen - len);
    c->inlen -= len;
}

/* take_replies - assemble complete replies from the input and act on them */
static void take_replies(struct sim_client *c)
{
    size_t at = 0;
    /* Each pass consumes a line; bounded by the input. */
    while (c->state != C_CLOSED) {
        char *nl = memchr(c->in + at, '\n', c->inlen - at);
        if (nl == NULL)
            break;
        size_t end = (size_t)(nl - c->in) + 1;
        int continued = end - at > 4 && c->in[at + 3] == '-';
        at = end;
        if (continued)
            continue;
        if (at < 3 || c->in[0] < '1' || c->in[0] > '5') {
            /* Not a reply: drop the line, wait for the next one. */
            memmove(c->in, c->in + at, c->inlen - at);
            c->inlen -= at;
            at = 0;
            continue;
        }
        reply_complete(c, at);
        at = 0;
        run_steps(c);
    }
}

/* client_event - the network's events for the client's endpoint */
static void client_event(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    struct sim_client *c = arg;
    (void)ep;
    switch (ev) {
    case SIM_EP_CONNECTED:
        assert(c->state == C_CONNECT);
        c->state = C_RUN;
        run_steps(c);
        return;
    case SIM_EP_REFUSED:
    case SIM_EP_UNREACHABLE:
        client_end(c, "refused", 0);
        return;
    case SIM_EP_DATA: {
        int was_tls = c->state == C_TLS;
        if (client_input(c, data, len) < 0)
            return;
        if (was_tls && c->state == C_RUN)
            run_steps(c);       /* the handshake is done: the steps go on */
        if (c->state != C_CLOSED)
            take_replies(c);
        return;
    }
    case SIM_EP_FIN:
        client_end(c, "eof", 0);
        return;
    case SIM_EP_RST:
    case SIM_EP_TIMEDOUT:
        client_end(c, "reset-by-server", 0);
        return;
    case SIM_EP_WRITABLE:
    case SIM_EP_SENT:
        return;             /* it writes with sim_ep_send(): never asked for */
    }
    client_die("event", "unknown event");
}

/* client_start - the start time came: connect */
static void client_start(void *arg)
{
    struct sim_client *c = arg;
    c->timer = 0;
    assert(c->state == C_IDLE);
    int err = 0;
    c->ep = sim_net_connect_peer(c->net, mta_ip_v4(c->script->addr), mta_ip_v4(c->dst), c->port,
                                 client_event, c, &err);
    if (c->ep == NULL)
        client_die("start", "connect from a peer failed");
    c->state = C_CONNECT;
    trace_rec(c, "connect", NULL, NULL, 0);
}

/* sim_client_create - a client that starts at epoch + script->at */
struct sim_client *sim_client_create(struct sim_sched *s, struct sim_net *n,
                                     const struct scn_client *script, int number,
                                     uint32_t dst, uint16_t port, mta_usec_t epoch,
                                     sim_trace_fn trace, void *trace_arg)
{
    struct sim_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->sched = s;
    c->net = n;
    c->script = script;
    c->number = number;
    c->dst = dst;
    c->port = port;
    c->trace = trace;
    c->trace_arg = trace_arg;
    c->state = C_IDLE;
    c->timer = sim_sched_at_kind(s, epoch + script->at, client_start, c, SIM_EV_CLIENT);
    return c;
}

/* sim_client_destroy - release the endpoint (if any) and the client */
void sim_client_destroy(struct sim_client *c)
{
    if (c == NULL)
        return;
    if (c->timer)
        sim_sched_cancel(c->sched, c->timer);
    if (c->ep)
        sim_ep_close(c->ep);
    if (c->tls != NULL) {
        simtls_free(c->tls);
        free(c->tls);
    }
    free(c);
}
