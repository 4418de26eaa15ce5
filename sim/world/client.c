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

#define CLIENT_INBUF_MAX 65536

enum client_state { C_IDLE, C_CONNECT, C_RUN, C_REPLY, C_DELAY, C_DONE, C_CLOSED };

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
};

/* client_die - a broken invariant: stop loudly */
static void client_die(const char *fn, const char *what)
{
    fprintf(stderr, "sim_client_%s: %s\n", fn, what);
    abort();
}

/* trace_rec - "client NAME client=ADDR n=N [key=value]" */
static void trace_rec(const struct sim_client *c, const char *name, const char *key,
                      const char *val, size_t vlen, const char *key2, int64_t num)
{
    if (c->trace == NULL)
        return;
    char addr[16], n[24], nb[24];
    uint32_t a = c->script->addr;
    snprintf(addr, sizeof addr, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    int nl = snprintf(n, sizeof n, "%d", c->number);
    struct mta_trace_rec r = { .kind = "client", .name = name, .nfields = 2 };
    r.field[0] = (struct mta_trace_field){ "client", addr, strlen(addr), (int64_t)a, 1 };
    r.field[1] = (struct mta_trace_field){ "n", n, (size_t)nl, c->number, 1 };
    if (key2) {
        int l = snprintf(nb, sizeof nb, "%lld", (long long)num);
        r.field[r.nfields++] = (struct mta_trace_field){ key2, nb, (size_t)l, num, 1 };
    }
    if (key)
        r.field[r.nfields++] = (struct mta_trace_field){ key, val, vlen, 0, 0 };
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
    trace_rec(c, "end", "reason", reason, strlen(reason), NULL, 0);
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

/* run_steps - steps from c->step on, until one waits or none is left */
static void run_steps(struct sim_client *c)
{
    const struct scn_client *sc = c->script;
    while (c->state == C_RUN) {
        if (c->step >= sc->nsteps) {
            c->state = C_DONE;
            trace_rec(c, "done", NULL, NULL, 0, NULL, 0);
            return;
        }
        const struct scn_step *st = &sc->steps[c->step++];
        switch (st->kind) {
        case SCN_STEP_SEND:
            /* -EPIPE: the server closed; its FIN ends the script. */
            (void)sim_ep_send(c->ep, st->bytes, st->len);
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
        if (st->code != 0 && code != st->code) {
            size_t first = 0;
            while (first < len && c->in[first] != '\r' && c->in[first] != '\n')
                first++;
            trace_rec(c, "unexpected", "got", c->in, first, "want", st->code);
        }
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
    case SIM_EP_DATA:
        if (c->inlen + len > sizeof c->in) {
            client_end(c, "overflow", 1);
            return;
        }
        memcpy(c->in + c->inlen, data, len);
        c->inlen += len;
        take_replies(c);
        return;
    case SIM_EP_FIN:
        client_end(c, "eof", 0);
        return;
    case SIM_EP_RST:
        client_end(c, "reset-by-server", 0);
        return;
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
    c->ep = sim_net_connect_peer(c->net, c->script->addr, c->dst, c->port, client_event, c, &err);
    if (c->ep == NULL)
        client_die("start", "connect from a peer failed");
    c->state = C_CONNECT;
    trace_rec(c, "connect", NULL, NULL, 0, NULL, 0);
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
    free(c);
}
