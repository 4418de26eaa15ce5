/*
 * tcp - the TCP of each side of a simulated connection: its start, its
 * buffers and the owner's calls
 *
 * SYNOPSIS
 *   See net.h (the endpoint functions, sim_ep_*) and net_internal.h.
 *
 * DESCRIPTION
 *   Each side of a connection (struct sim_ep) has a TCP (struct tcb) that
 *   sends segments onto its wire and reacts to those arriving from the
 *   other side, as net.h describes: the handshake, the send and receive
 *   buffers and windows, segmentation at the MSS and pacing at the link's
 *   bandwidth, acknowledgements, retransmission (RFC 6298), persist
 *   probes, FIN and RST.  The state machine is RFC 9293's, folded: LISTEN,
 *   SYN_SENT, SYN_RCVD, ESTABLISHED, with fin_queued / fin_rcvd standing
 *   for the FIN states (FIN_WAIT, CLOSE_WAIT, CLOSING, LAST_ACK: what
 *   they do is "send FIN after the data" and "the peer's FIN is in"), and
 *   CLOSED once the connection is over for that side.  TIME_WAIT is not
 *   kept: nothing in a run reuses a port pair.
 *
 *   Three files: this one (a connection's start and teardown, the byte
 *   rings, what the owner calls), tcp_send.c (segments onto the wire, the
 *   window advertised, output, retransmission and its timers) and
 *   tcp_recv.c (a segment arriving: handshake, acknowledgements, data,
 *   delivery to the owner).
 *
 *   Entry points - a segment arriving, a timer, an owner's call - each
 *   hold a reference on the connection while they run (net_internal.h),
 *   so an owner that closes or resets from inside a callback cannot free
 *   it under them.
 *
 * DIAGNOSTICS
 *   Using a released endpoint, or a broken invariant: "sim_<fn>: ..."
 *   and abort.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

/* ---- byte rings ---------------------------------------------------------- */

/* ring_reserve - room for n more bytes (the owner bounds the total) */
static void ring_reserve(struct ring *r, size_t n)
{
    size_t cap;
    char *buf;

    if (r->len + n <= r->cap)
        return;
    cap = r->cap ? r->cap : 512;
    while (cap < r->len + n)
        cap *= 2;
    buf = malloc(cap);
    if (buf == NULL)
        net_die("sim_tcp", "out of memory");
    if (r->len > 0) {
        size_t first = r->cap - r->head < r->len ? r->cap - r->head : r->len;

        memcpy(buf, r->buf + r->head, first);
        memcpy(buf + first, r->buf, r->len - first);
    }
    free(r->buf);
    r->buf = buf;
    r->cap = cap;
    r->head = 0;
}

/* ring_push - append n bytes */
void ring_push(struct ring *r, const char *p, size_t n)
{
    size_t tail, first;

    if (n == 0)
        return;
    ring_reserve(r, n);
    tail = (r->head + r->len) % r->cap;
    first = r->cap - tail < n ? r->cap - tail : n;
    memcpy(r->buf + tail, p, first);
    memcpy(r->buf, p + first, n - first);
    r->len += n;
}

/* ring_peek - copy n bytes from offset off */
void ring_peek(const struct ring *r, size_t off, char *out, size_t n)
{
    size_t at, first;

    assert(off + n <= r->len);
    if (n == 0)
        return;
    at = (r->head + off) % r->cap;
    first = r->cap - at < n ? r->cap - at : n;
    memcpy(out, r->buf + at, first);
    memcpy(out + first, r->buf, n - first);
}

/* ring_drop - forget the first n bytes */
void ring_drop(struct ring *r, size_t n)
{
    assert(n <= r->len);
    r->len -= n;
    r->head = r->len == 0 ? 0 : (r->head + n) % r->cap;
}

/* ring_linear - the bytes in one piece (moved to the front if they wrap) */
const char *ring_linear(struct ring *r)
{
    if (r->len > 0 && r->head + r->len > r->cap) {
        char *buf = malloc(r->cap);

        if (buf == NULL)
            net_die("sim_tcp", "out of memory");
        ring_peek(r, 0, buf, r->len);
        free(r->buf);
        r->buf = buf;
        r->head = 0;
    }
    return r->buf + r->head;
}

void ring_free(struct ring *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
}

/* ---- a connection's start and end --------------------------------------------- */

/* tcb_init - a side's TCP with its buffers and the path's MSS */
static void tcb_init(struct sim_conn *c, struct tcb *t, size_t sndbuf, size_t rcvbuf)
{
    memset(t, 0, sizeof *t);
    t->sndbuf = sndbuf ? sndbuf : SIM_NET_SNDBUF;
    t->rcvbuf = rcvbuf ? rcvbuf : SIM_NET_RCVBUF;
    t->mss = (uint16_t) (c->link.mss < 65535 ? c->link.mss : 65535);
    t->rto = TCP_RTO_INITIAL;
    t->write_seq = 1;           /* the SYN takes 0 */
    /* The smallest scale that lets the whole buffer be advertised (RFC 7323 2.3). */
    while (t->rcv_wscale < 14 && (t->rcvbuf >> t->rcv_wscale) > 65535)
        t->rcv_wscale++;
}

/* tcp_conn_start - the client's SYN leaves now */
/* syn_send - the client's SYN leaves now; its retransmission timer runs */
static void syn_send(struct sim_ep *cl)
{
    cl->t.rtt_start = conn_now(cl->conn);
    tcp_send_ctl(cl, SIM_TCP_SYN, 0);
    cl->t.snd_nxt = 1;
    tcp_rtx_arm(cl);
}

/* syn_fire - the deferred SYN of a connection the MTA opened */
static void syn_fire(void *arg)
{
    struct sim_ep *cl = arg;

    cl->t.syn_event = 0;        /* its reference is ours until the end */
    syn_send(cl);
    conn_unref(cl->conn);
}

void tcp_conn_start(struct sim_conn *c, size_t client_sndbuf, size_t client_rcvbuf,
                    size_t server_sndbuf, size_t server_rcvbuf)
{
    struct sim_ep *cl = &c->ep[SIDE_CLIENT];

    tcb_init(c, &cl->t, client_sndbuf, client_rcvbuf);
    tcb_init(c, &c->ep[SIDE_SERVER].t, server_sndbuf, server_rcvbuf);
    c->ep[SIDE_SERVER].t.state = TCP_LISTEN;
    cl->t.state = TCP_SYN_SENT;
    conn_ref(c);
    /* The core's one connect call stands for socket(), bind() and
     * connect(), and its connection_post_bind providers run in between:
     * Momentum 3 calls that hook after the bind, before the connect, and
     * one that abandons the attempt means no SYN ever left.  So the SYN of
     * a connection the MTA opens leaves at the same virtual instant, once
     * the core's call has returned; closing first sends nothing
     * (sim_ep_close and sim_ep_reset in SYN_SENT: tcp_abort). */
    if (c->peer)
        syn_send(cl);
    else
        tcp_ev_set(c, &cl->t.syn_event, conn_now(c), syn_fire, cl);
    conn_unref(c);
}

/* tcp_conn_teardown - free the TCPs' buffers; cancel what is still pending */
void tcp_conn_teardown(struct sim_conn *c)
{
    int s;

    for (s = 0; s < 2; s++) {
        struct tcb *t = &c->ep[s].t;
        sim_event_id *ids[] = { &t->tx_event, &t->syn_event, &t->rtx_event, &t->sent_event,
                                &t->resume_event, &t->dack_event };
        size_t i;

        for (i = 0; i < sizeof ids / sizeof ids[0]; i++)
            if (*ids[i] != 0) {
                sim_sched_cancel(c->net->sched, *ids[i]);
                *ids[i] = 0;
            }
        ring_free(&t->sndq);
        ring_free(&t->appq);
        ring_free(&t->rcvq);
        while (t->ooo != NULL) {
            struct ooo *o = t->ooo;

            t->ooo = o->next;
            free(o);
        }
    }
}

/* ---- the owner's calls ------------------------------------------------------------ */

/* ep_check - a call on an endpoint its owner still holds */
static void ep_check(const sim_ep *ep, const char *fn)
{
    assert(ep != NULL && ep->exists);
    if (ep->released)
        net_die(fn, "endpoint already released");
}

/* sim_ep_set_handler - (re)direct the endpoint's events */
void sim_ep_set_handler(sim_ep *ep, sim_ep_fn fn, void *arg)
{
    ep_check(ep, "sim_ep_set_handler");
    ep->fn = fn;
    ep->arg = arg;
}

/* write_check - 0 when the owner may write now, else the errno */
static int write_check(const sim_ep *ep)
{
    if (ep->peer_gone || ep->t.state == TCP_CLOSED)
        return -EPIPE;
    if (ep->t.state != TCP_ESTABLISHED)
        return -ENOTCONN;
    return 0;
}

/* sim_ep_write - a socket write: what the send buffer takes */
int sim_ep_write(sim_ep *ep, const void *data, size_t len)
{
    struct tcb *t = &ep->t;
    size_t room;
    int rc;

    ep_check(ep, "sim_ep_write");
    if ((rc = write_check(ep)) < 0)
        return rc;
    if (len == 0)
        return 0;
    assert(data != NULL && len <= INT32_MAX);
    room = t->appq.len == 0 && t->sndbuf > t->sndq.len ? t->sndbuf - t->sndq.len : 0;
    if (room == 0) {
        ep->want_writable = 1;
        return -EAGAIN;
    }
    if (len > room) {
        len = room;
        ep->want_writable = 1;
    }
    conn_ref(ep->conn);
    ring_push(&t->sndq, data, len);
    t->write_seq += (uint32_t) len;
    tcp_output(ep);
    conn_unref(ep->conn);
    return (int) len;
}

/* sim_ep_send - a write that is never short: the rest waits for room */
int sim_ep_send(sim_ep *ep, const void *data, size_t len)
{
    struct tcb *t = &ep->t;
    int rc;

    ep_check(ep, "sim_ep_send");
    if ((rc = write_check(ep)) < 0)
        return rc;
    if (len == 0)
        return 0;
    assert(data != NULL);
    if (len > SIM_NET_BUF_MAX - t->appq.len)
        return -ENOBUFS;
    conn_ref(ep->conn);
    ring_push(&t->appq, data, len);
    tcp_output(ep);
    conn_unref(ep->conn);
    return 0;
}

/* sim_ep_unsent - bytes written that have not left the host */
size_t sim_ep_unsent(const sim_ep *ep)
{
    assert(ep != NULL && ep->exists);
    return tcp_unsent(ep);
}

/* sim_ep_notify_sent - one SIM_EP_SENT once everything written has left */
void sim_ep_notify_sent(sim_ep *ep)
{
    ep_check(ep, "sim_ep_notify_sent");
    ep->t.want_sent = 1;
    if (ep->t.sent_event == 0 && tcp_all_sent(&ep->t)) {
        sim_usec now = conn_now(ep->conn);

        tcp_ev_set(ep->conn, &ep->t.sent_event, ep->t.tx_free > now ? ep->t.tx_free : now,
               tcp_sent_fire, ep);
    }
}

/* sim_ep_pause - the owner stops or resumes reading */
void sim_ep_pause(sim_ep *ep, int paused)
{
    ep_check(ep, "sim_ep_pause");
    if (ep->t.paused == !!paused)
        return;
    ep->t.paused = !!paused;
    if (!paused && ep->t.state != TCP_CLOSED)
        tcp_ev_set(ep->conn, &ep->t.resume_event, conn_now(ep->conn), tcp_resume_fire, ep);
}

/* ep_release - the owner lets go; drop its reference */
static void ep_release(sim_ep *ep)
{
    struct sim_conn *c = ep->conn;

    ep->released = 1;
    ep->fn = NULL;
    ep->arg = NULL;
    ep->t.want_sent = 0;
    tcp_ev_clear(c, &ep->t.sent_event);
    if (ep->side == SIDE_CLIENT) {
        if (!c->peer)
            c->net->open_count--;
        assert(c->net->open_count >= 0);
    } else {
        tcp_server_uncount(c);
    }
    ring_drop(&ep->t.rcvq, ep->t.rcvq.len);
    conn_unref(c);          /* the owner's; never the last: the caller holds one */
}

/* sim_ep_close - orderly close (FIN after the data) and release */
void sim_ep_close(sim_ep *ep)
{
    struct sim_conn *c;
    struct tcb *t;

    ep_check(ep, "sim_ep_close");
    c = ep->conn;
    t = &ep->t;
    conn_ref(c);
    if (t->state == TCP_SYN_SENT) {
        tcp_abort(ep);      /* closing in SYN_SENT sends nothing */
    } else if (t->state == TCP_ESTABLISHED && t->rcvq.len > 0) {
        /* Closing with data unread (a paused owner): the data is lost, and
         * Linux says so with a reset instead of a FIN (tcp_close,
         * "data_was_unread"; RFC 1122 4.2.2.13).  What was sent before it
         * still arrives first. */
        tcp_send_ctl(ep, SIM_TCP_RST | SIM_TCP_ACK, t->snd_nxt);
        tcp_abort(ep);
    } else if (t->state == TCP_ESTABLISHED && !t->fin_queued) {
        t->fin_queued = 1;
        tcp_output(ep);
    }
    ep_release(ep);
    conn_unref(c);
}

/* sim_ep_reset - abortive close: RST, in-flight segments withdrawn, release */
void sim_ep_reset(sim_ep *ep)
{
    struct sim_conn *c;

    ep_check(ep, "sim_ep_reset");
    c = ep->conn;
    conn_ref(c);
    if (ep->t.state == TCP_SYN_SENT) {
        tcp_abort(ep);
    } else if (ep->t.state == TCP_ESTABLISHED) {
        uint32_t seq = ep->t.snd_nxt;

        /* What we sent is lost, what comes to us has no reader. */
        tcp_wire_withdraw(c, SIDE_CLIENT);
        tcp_wire_withdraw(c, SIDE_SERVER);
        tcp_abort(ep);
        tcp_send_ctl(ep, SIM_TCP_RST | SIM_TCP_ACK, seq);
    }
    ep_release(ep);
    conn_unref(c);
}

/* sim_ep_drop - silent drop: lose what is in flight and all that follows */
void sim_ep_drop(sim_ep *ep)
{
    struct sim_conn *c;

    ep_check(ep, "sim_ep_drop");
    c = ep->conn;
    if (c->dropped)
        return;
    conn_ref(c);
    c->dropped = 1;
    tcp_wire_withdraw(c, SIDE_CLIENT);
    tcp_wire_withdraw(c, SIDE_SERVER);
    tcp_abort(ep);          /* this side forgets the connection without a word */
    conn_unref(c);
}

/* sim_ep_retransmits - segments this side sent again */
uint64_t sim_ep_retransmits(const sim_ep *ep)
{
    assert(ep != NULL);
    return ep->t.retransmits;
}
