/*
 * tcp_recv - one side's TCP when a segment arrives
 *
 * SYNOPSIS
 *   See net_internal.h (tcp_seg_arrive, tcp_resume_fire).
 *
 * DESCRIPTION
 *   tcp_seg_arrive() pops the segment from its wire (arrivals are in wire
 *   order), shows it to the observer when it reached the MTA, and hands
 *   it to the receiving side's TCP, which follows RFC 9293 3.10.7: a SYN
 *   at the host (accept, refuse, unreachable, or no answer when the
 *   backlog is full), the SYN-ACK at the client, a reset, then for a
 *   synchronized connection the acknowledgement (send buffer, RTT,
 *   retransmission state, window) and the data (in order, kept beyond a
 *   hole, acknowledged at once or on a delayed-ACK timer, net.h, then
 *   delivered to the owner unless it paused reading).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

static void deliver_input(struct sim_ep *ep);

/* tcp_resume_fire - a paused owner reads again: what waited, then the window */
void tcp_resume_fire(void *arg)
{
    struct sim_ep *ep = arg;
    struct sim_conn *c = ep->conn;
    uint32_t old_edge;

    ep->t.resume_event = 0;
    deliver_input(ep);
    /* After the read: an owed ACK it sent carried the window already. */
    old_edge = ep->t.rcv_adv;
    if (ep->t.state == TCP_ESTABLISHED && !ep->t.paused) {
        /* A window update, when the edge moves by enough (tcp_adv_window). */
        (void) tcp_adv_window(&ep->t);
        if (ep->t.rcv_adv != old_edge)
            tcp_send_ack(ep);
    }
    conn_unref(c);
}

/* deliver_input - what arrived in order, to the owner; then the peer's FIN */
static void deliver_input(struct sim_ep *ep)
{
    struct tcb *t = &ep->t;

    if (t->paused)
        return;
    if (ep->released) {
        ring_drop(&t->rcvq, t->rcvq.len);       /* nobody will read it */
    } else if (t->rcvq.len > 0) {
        size_t n = t->rcvq.len;
        const char *p = ring_linear(&t->rcvq);
        char small[SIM_SEG_POOLED_DATA];
        char *copy = n <= sizeof small ? small : malloc(n);

        if (copy == NULL)
            net_die("sim_tcp", "out of memory");
        /* Taken off first: the owner may write, pause or close meanwhile. */
        memcpy(copy, p, n);
        ring_drop(&t->rcvq, n);
        /* The owner has read it: an owed ACK goes now, with the window the
         * read opened, when more than a segment waits for it, or two short
         * segments, or one outside interactive mode (Linux's
         * tcp_cleanup_rbuf, after the copy to the application); otherwise
         * it may ride on the reply. */
        if (t->ack_owed && t->state == TCP_ESTABLISHED
            && (t->rcv_nxt - t->rcv_wup > t->rcv_mss || t->pushed >= 2
                || (t->pushed == 1 && !t->pingpong)))
            tcp_send_ack(ep);
        tcp_deliver(ep, SIM_EP_DATA, copy, n);
        if (copy != small)
            free(copy);
    }
    if (t->fin_rcvd && t->rcvq.len == 0 && !t->paused && !ep->told_fin && !ep->released) {
        ep->told_fin = 1;
        ep->peer_gone = 1;
        tcp_deliver(ep, SIM_EP_FIN, NULL, 0);
    }
}

/* ooo_keep - a segment beyond a hole, kept in sequence order */
static void ooo_keep(struct tcb *t, const struct sim_seg *seg)
{
    struct ooo **at = &t->ooo, *o;

    while (*at != NULL && seq_lt((*at)->seq, seg->seq))
        at = &(*at)->next;
    if (*at != NULL && (*at)->seq == seg->seq && (*at)->len >= seg->len)
        return;                 /* have it already */
    o = malloc(sizeof *o + seg->len);
    if (o == NULL)
        net_die("sim_tcp", "out of memory");
    o->seq = seg->seq;
    o->len = seg->len;
    o->fin = (seg->flags & SIM_TCP_FIN) != 0;
    memcpy(o->data, seg->data, seg->len);
    o->next = *at;
    *at = o;
    t->ooo_bytes += seg->len;
}

/* take_in_order - bytes at rcv_nxt (data[skip..len)) into the receive queue */
static void take_in_order(struct tcb *t, uint32_t seq, const char *data, size_t len, int fin)
{
    if (seq_lt(seq, t->rcv_nxt)) {
        uint32_t skip = t->rcv_nxt - seq;

        if (skip >= len) {
            data = NULL;
            len = 0;
        } else {
            data += skip;
            len -= skip;
        }
    }
    ring_push(&t->rcvq, data, len);
    t->rcv_nxt += (uint32_t) len;
    if (fin && !t->fin_rcvd) {
        t->fin_rcvd = 1;
        t->rcv_nxt++;
    }
}

/* data_input - the segment's data and FIN (RFC 9293 3.10.7.4, seventh step) */
static void data_input(struct sim_ep *ep, const struct sim_seg *seg)
{
    struct tcb *t = &ep->t;
    int fin = (seg->flags & SIM_TCP_FIN) != 0;
    uint32_t end = seg->seq + (uint32_t) seg->len + (uint32_t) fin;
    int had_hole;

    if (seg->len == 0 && !fin) {
        if (seq_lt(seg->seq, t->rcv_nxt))
            tcp_send_ack(ep);       /* a window probe: answer with the window */
        return;
    }
    if (t->fin_rcvd || seq_le(end, t->rcv_nxt)) {
        /* A duplicate: our ACK was lost or late.  Acknowledge at once and
         * stop delaying for a while (Linux's tcp_data_queue, "a retransmit"). */
        tcp_enter_quickack(t);
        tcp_send_ack(ep);
        return;
    }
    if (ep->released && seg->len > 0 && !t->fin_rcvd) {
        /* New data for an owner that closed: nobody will read it.  Linux
         * aborts the connection with a reset (RFC 1122 4.2.2.13: data
         * received after CLOSE SHOULD get a RST; tcp_rcv_state_process in
         * FIN_WAIT1/2, LINUX_MIB_TCPABORTONDATA); the reset takes its
         * sequence number from the segment's ACK (RFC 9293 3.10.7.1). */
        tcp_send_ctl(ep, SIM_TCP_RST, seg->ack);
        tcp_abort(ep);
        return;
    }
    if (seq_lt(t->rcv_nxt, seg->seq)) {
        /* Beyond a hole: keep it, and say what is missing at once (RFC
         * 5681 4.2: an immediate duplicate ACK). */
        if (seq_le(seg->seq + (uint32_t) seg->len, t->rcv_adv))
            ooo_keep(t, seg);
        tcp_send_ack(ep);
        return;
    }
    had_hole = t->ooo != NULL;
    if (seg->len > 0)
        tcp_data_recv_event(ep, seg->len);
    take_in_order(t, seg->seq, seg->data, seg->len, fin);
    /* What was kept beyond the hole may follow now. */
    while (t->ooo != NULL && seq_le(t->ooo->seq, t->rcv_nxt) && !t->fin_rcvd) {
        struct ooo *o = t->ooo;

        t->ooo = o->next;
        t->ooo_bytes -= o->len;
        take_in_order(t, o->seq, o->data, o->len, o->fin);
        free(o);
    }
    /* The peer's FIN while ours is not queued: the owner will answer it with
     * its own close, so the ACK waits for that (Linux's tcp_fin enters
     * pingpong mode in ESTABLISHED); after our FIN it goes at once. */
    if (fin && !t->fin_queued)
        t->pingpong = 1;
    /* Decided before the owner hears of it, as the kernel does: at once for a
     * filled hole (RFC 5681 4.2) and when the owner is gone, which it is
     * after our FIN (sim_ep_close releases the endpoint): nothing will carry
     * the ACK, and Linux ACKs a FIN in FIN_WAIT at once (tcp_fin). */
    tcp_ack_check(ep, had_hole || ep->released);
    deliver_input(ep);
}

/* rtt_sample - RFC 6298 2.2-2.3, with Linux's floor on the variation term */
static void rtt_sample(struct tcb *t, sim_usec r)
{
    sim_usec var;

    if (r < 1)
        r = 1;
    if (!t->have_rtt) {
        t->srtt = r;
        t->rttvar = r / 2;
        t->have_rtt = 1;
    } else {
        sim_usec d = t->srtt > r ? t->srtt - r : r - t->srtt;

        t->rttvar = (3 * t->rttvar + d) / 4;
        t->srtt = (7 * t->srtt + r) / 8;
    }
    /* RTO = SRTT + max(4 RTTVAR, TCP_RTO_MIN): Linux keeps the variation
     * term at least tcp_rto_min, so the RTO is never below SRTT + 200 ms. */
    var = 4 * t->rttvar > TCP_RTO_MIN ? 4 * t->rttvar : TCP_RTO_MIN;
    t->rto = t->srtt + var;
    if (t->rto > TCP_RTO_MAX)
        t->rto = TCP_RTO_MAX;
}

/* writable_check - a blocked writer hears that its buffer has room */
static void writable_check(struct sim_ep *ep)
{
    struct tcb *t = &ep->t;
    size_t queued = t->sndq.len + t->appq.len;

    if (!ep->want_writable || ep->released || t->state != TCP_ESTABLISHED)
        return;
    /* Linux's sk_stream_is_writeable: free space at least half of what is queued. */
    if (t->sndbuf < queued || t->sndbuf - queued < queued / 2)
        return;
    ep->want_writable = 0;
    tcp_deliver(ep, SIM_EP_WRITABLE, NULL, 0);
}

/* ack_input - the acknowledgement and window of a segment (RFC 9293 3.10.7.4,
 * fifth step; RFC 6298; RFC 5681 3.2; RFC 6582) */
static void ack_input(struct sim_ep *ep, const struct sim_seg *seg)
{
    struct sim_conn *c = ep->conn;
    struct tcb *t = &ep->t;
    uint32_t ack = seg->ack;

    if (!(seg->flags & SIM_TCP_ACK) || seq_lt(t->snd_nxt, ack))
        return;                 /* nothing, or something never sent */
    t->probes = 0;              /* the peer answers */
    if (seq_lt(t->snd_una, ack)) {
        uint32_t base = tcp_data_base(t);
        uint32_t data_end = seq_lt(ack, t->write_seq) ? ack : t->write_seq;

        if (seq_lt(base, data_end))
            ring_drop(&t->sndq, data_end - base);
        if (t->rtt_on && seq_lt(t->rtt_seq, ack)) {
            rtt_sample(t, conn_now(c) - t->rtt_start);
            t->rtt_on = 0;
        }
        t->snd_una = ack;
        t->snd_wnd = seg->window;
        t->backoff = 0;
        t->dupacks = 0;
        if (t->snd_una == t->snd_nxt) {
            tcp_ev_clear(c, &t->rtx_event);         /* RFC 6298 5.2 */
            t->persist = 0;
            t->recovery = 0;
        } else {
            tcp_rtx_arm(ep);                        /* RFC 6298 5.3 */
            if (t->recovery && seq_lt(ack, t->recover)) {
                t->rtx_pending = 1;             /* partial ACK: the next hole */
            } else {
                t->recovery = 0;
            }
        }
        tcp_app_flush(t);
        writable_check(ep);
        if (t->state != TCP_ESTABLISHED)
            return;
    } else if (ack == t->snd_una) {
        int dup = seg->len == 0 && !(seg->flags & (SIM_TCP_FIN | SIM_TCP_SYN))
                  && seg->window == t->snd_wnd && t->snd_una != t->snd_nxt;

        t->snd_wnd = seg->window;
        if (dup && ++t->dupacks == TCP_DUPACK_THRESHOLD && !t->recovery) {
            /* Fast retransmit (RFC 5681 3.2). */
            t->recovery = 1;
            t->recover = t->snd_nxt;
            t->rtx_pending = 1;
        }
    }
    if (t->snd_wnd > 0 && t->persist) {
        tcp_ev_clear(c, &t->rtx_event);
        t->persist = 0;
        t->backoff = 0;
    }
    tcp_output(ep);
}

/* server_accept - the handshake is complete: the host gets the endpoint */
static void server_accept(struct sim_conn *c)
{
    struct sim_ep *srv = &c->ep[SIDE_SERVER];

    srv->t.state = TCP_ESTABLISHED;
    srv->t.snd_una = 1;
    if (srv->t.backoff == 0)
        rtt_sample(&srv->t, conn_now(c) - srv->t.rtt_start);  /* the SYN-ACK's round trip */
    srv->t.backoff = 0;
    tcp_ev_clear(c, &srv->t.rtx_event);
    srv->exists = 1;
    conn_ref(c);                /* the host's, until it releases the endpoint */
    assert(c->host.accept != NULL);
    c->host.accept(c->host.accept_arg, srv);
    /* The host must either listen on the endpoint or have let it go. */
    assert(srv->fn != NULL || srv->released);
}

/* syn_arrive - a SYN reached the host (RFC 9293 3.10.7.2) */
static void syn_arrive(struct sim_conn *c, const struct sim_seg *seg)
{
    struct sim_ep *srv = &c->ep[SIDE_SERVER];
    struct tcb *t = &srv->t;

    if (t->state == TCP_SYN_RCVD) {
        tcp_send_ctl(srv, SIM_TCP_SYN | SIM_TCP_ACK, 0);    /* its SYN-ACK was lost */
        return;
    }
    if (t->state == TCP_ESTABLISHED) {
        tcp_send_ack(srv);
        return;
    }
    if (t->state != TCP_LISTEN)
        return;
    t->rcv_nxt = 1;
    t->snd_wnd = seg->window;
    t->snd_wscale = seg->wscale;
    if (seg->mss < t->mss)
        t->mss = seg->mss;
    switch (conn_syn_mode(c)) {
    case SIM_CONNECT_ACCEPT:
        t->state = TCP_SYN_RCVD;
        conn_host_count(c, 1);
        t->rtt_start = conn_now(c);
        tcp_send_ctl(srv, SIM_TCP_SYN | SIM_TCP_ACK, 0);
        t->snd_nxt = 1;
        tcp_rtx_arm(srv);
        return;
    case SIM_CONNECT_REFUSE:
        /* RST|ACK in answer to a SYN to a closed port. */
        tcp_send_ctl(srv, SIM_TCP_RST | SIM_TCP_ACK, 0);
        t->state = TCP_CLOSED;
        return;
    case SIM_CONNECT_UNREACHABLE: {
        struct sim_seg *icmp = tcp_seg_alloc(c->net, 0);

        icmp->from = SIDE_SERVER;
        icmp->kind = SEG_ICMP;
        tcp_wire_put(c, icmp, conn_now(c));
        t->state = TCP_CLOSED;
        return;
    }
    case SIM_CONNECT_TIMEOUT:
        return;             /* dropped: the accept queue is full */
    case SIM_CONNECT_NO_ROUTE:
        break;              /* refused by sim_net_connect(): no SYN ever leaves */
    }
    net_die("sim_tcp_syn_arrive", "SYN to a host with no route");
}

/* synack_arrive - the client's SYN was answered */
static void synack_arrive(struct sim_ep *ep, const struct sim_seg *seg)
{
    struct sim_conn *c = ep->conn;
    struct tcb *t = &ep->t;

    t->state = TCP_ESTABLISHED;
    t->snd_una = 1;
    t->rcv_nxt = 1;
    t->snd_wnd = seg->window;
    t->snd_wscale = seg->wscale;
    if (seg->mss < t->mss)
        t->mss = seg->mss;
    if (t->backoff == 0)
        rtt_sample(t, conn_now(c) - t->rtt_start);    /* the SYN was not retransmitted */
    t->rtt_on = 0;
    t->backoff = 0;
    tcp_ev_clear(c, &t->rtx_event);
    c->handshake_over = 1;
    c->established = 1;
    tcp_send_ack(ep);
    tcp_deliver(ep, SIM_EP_CONNECTED, NULL, 0);
}

/* rst_arrive - the peer reset the connection (or refused it) */
static void rst_arrive(struct sim_ep *ep)
{
    struct sim_conn *c = ep->conn;
    int refused = ep->side == SIDE_CLIENT && ep->t.state == TCP_SYN_SENT;

    tcp_abort(ep);
    if (ep->released || (ep->side == SIDE_SERVER && !ep->exists))
        return;
    ep->peer_gone = 1;
    if (refused) {
        /* To a client in SYN_SENT that is a refused connection. */
        c->handshake_over = 1;
        tcp_deliver(ep, SIM_EP_REFUSED, NULL, 0);
        return;
    }
    tcp_deliver(ep, SIM_EP_RST, NULL, 0);
}

/* tcp_input - one segment arrived at side `side' */
static void tcp_input(struct sim_conn *c, struct sim_seg *seg)
{
    int side = 1 - seg->from;
    struct sim_ep *ep = &c->ep[side];
    struct tcb *t = &ep->t;

    if (seg->kind == SEG_ICMP) {
        if (t->state == TCP_SYN_SENT) {
            tcp_abort(ep);
            c->handshake_over = 1;
            ep->peer_gone = 1;
            tcp_deliver(ep, SIM_EP_UNREACHABLE, NULL, 0);
        }
        return;
    }
    if (side == SIDE_SERVER && (seg->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == SIM_TCP_SYN) {
        syn_arrive(c, seg);
        return;
    }
    if (t->state == TCP_CLOSED || t->state == TCP_LISTEN) {
        /* A closed port answers anything but a reset with one (RFC 9293
         * 3.10.7.1): e.g. the SYN-ACK of an attempt the client gave up. */
        if (!(seg->flags & SIM_TCP_RST) && !c->dropped && t->state == TCP_CLOSED)
            tcp_send_ctl(ep, SIM_TCP_RST, (seg->flags & SIM_TCP_ACK) ? seg->ack : 0);
        return;
    }
    if (seg->flags & SIM_TCP_RST) {
        rst_arrive(ep);
        return;
    }
    if (t->state == TCP_SYN_SENT) {
        if ((seg->flags & (SIM_TCP_SYN | SIM_TCP_ACK)) == (SIM_TCP_SYN | SIM_TCP_ACK)
            && seg->ack == 1)
            synack_arrive(ep, seg);
        return;
    }
    if (seg->flags & SIM_TCP_SYN) {
        tcp_send_ack(ep);           /* a SYN-ACK again: our ACK was lost */
        return;
    }
    if (t->state == TCP_SYN_RCVD) {
        if (!(seg->flags & SIM_TCP_ACK) || seg->ack != 1)
            return;
        t->snd_wnd = seg->window;
        server_accept(c);
        if (t->state != TCP_ESTABLISHED)
            return;             /* the host reset it at once */
    }
    ack_input(ep, seg);
    if (t->state == TCP_ESTABLISHED)
        data_input(ep, seg);
}

/* tcp_seg_arrive - one segment reaches the other side */
void tcp_seg_arrive(void *arg)
{
    struct sim_seg *seg = arg;
    struct sim_conn *c = seg->conn;
    struct wire *w = &c->wire[seg->from];

    /* Pop first: what runs below may send or withdraw segments. */
    if (w->head != seg)
        net_die("sim_tcp_seg_arrive", "segment out of order");
    w->head = seg->next;
    if (w->head == NULL)
        w->tail = NULL;
    w->nsegs--;
    if (seg->from != c->local)
        net_observe(c, seg);    /* it reached the MTA */
    tcp_input(c, seg);
    seg_free(c->net, seg);
    conn_unref(c);              /* the segment's */
}
