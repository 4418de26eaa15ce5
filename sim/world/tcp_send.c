/*
 * tcp_send - what one side's TCP puts on the wire, and its timers
 *
 * SYNOPSIS
 *   See net_internal.h (tcp_output, tcp_send_ctl, tcp_rtx_arm, ...).
 *
 * DESCRIPTION
 *   tcp_wire_put() is where a segment leaves: the observer sees it if the
 *   MTA sent it, the path may lose it (a silent drop, a random loss, no
 *   host), and it arrives the latency (plus jitter) later, never before
 *   the segment sent before it in its direction.
 *
 *   tcp_output() sends what the peer's window, the link and the state
 *   allow: one data segment at a time while the link is busy (tx_free),
 *   so each segment is on the wire - and shown to the observer - when it
 *   really leaves; segments without payload go at once.  A retransmission
 *   waiting for the link goes first.  The FIN follows the last byte.
 *
 *   Every segment but the first SYN and an RST carries the ACK of all received
 *   (ack_sent); whether an owed ACK goes at once or waits for a segment to
 *   ride on is tcp_ack_check's decision (net.h, "Acknowledgements").
 *
 *   Timers: retransmission and persist (rtx_fire), the link free again
 *   (tx_fire), "everything written has left" (tcp_sent_fire), and the
 *   delayed ACK (dack_fire).
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

static void rtx_fire(void *arg);
static void tx_fire(void *arg);

/* ---- events: each pending one holds a reference on the connection -------- */

void tcp_ev_set(struct sim_conn *c, sim_event_id *id, sim_usec at, sim_event_fn fn,
                   void *arg)
{
    if (*id != 0)
        sim_sched_cancel(c->net->sched, *id);
    else
        conn_ref(c);
    *id = sim_sched_at_kind(c->net->sched, at, fn, arg, SIM_EV_SEGMENT);
}

void tcp_ev_clear(struct sim_conn *c, sim_event_id *id)
{
    if (*id == 0)
        return;
    sim_sched_cancel(c->net->sched, *id);
    *id = 0;
    conn_unref(c);      /* never the last: every caller holds one */
}

/* ---- segments ------------------------------------------------------------- */

/* tcp_seg_alloc - room for a segment of len payload bytes */
struct sim_seg *tcp_seg_alloc(struct sim_net *n, size_t len)
{
    struct sim_seg *seg;

    if (len <= SIM_SEG_POOLED_DATA && n->spare != NULL) {
        seg = n->spare;
        n->spare = seg->next;
    } else {
        seg = malloc(sizeof *seg + (len <= SIM_SEG_POOLED_DATA ? SIM_SEG_POOLED_DATA : len));
        if (seg == NULL)
            net_die("sim_tcp", "out of memory");
    }
    memset(seg, 0, sizeof *seg);
    seg->len = len;
    return seg;
}

/* seg_free - done with seg: pooled sizes are kept for reuse */
void seg_free(struct sim_net *n, struct sim_seg *seg)
{
    if (seg->len <= SIM_SEG_POOLED_DATA) {
        seg->next = n->spare;
        n->spare = seg;
        return;
    }
    free(seg);
}

/* tcp_wire_put - seg leaves at `leave': lost, or on its way to the other side */
void tcp_wire_put(struct sim_conn *c, struct sim_seg *seg, sim_usec leave)
{
    struct wire *w = &c->wire[seg->from];
    sim_usec at;
    int lost = c->dropped;

    /* A SYN to no host, or to a silent one, reaches nobody. */
    if (seg->from == SIDE_CLIENT && (!c->has_host || c->host.mode == SIM_CONNECT_TIMEOUT))
        lost = 1;
    if (!lost && c->link.loss_ppm > 0 && !(seg->flags & SIM_TCP_RST))
        lost = sim_prng_chance(&c->loss_rng, c->link.loss_ppm);
    if (seg->from == c->local)
        net_observe(c, seg);        /* it left the MTA, lost or not */
    if (lost) {
        seg_free(c->net, seg);
        return;
    }
    at = leave + c->link.latency;
    if (c->link.jitter > 0)
        at += (sim_usec) sim_prng_below(&c->jitter_rng, (uint64_t) c->link.jitter + 1);
    if (at < w->last_arrival)
        at = w->last_arrival;       /* streams are not reordered */
    w->last_arrival = at;
    seg->conn = c;
    seg->next = NULL;
    if (w->tail)
        w->tail->next = seg;
    else
        w->head = seg;
    w->tail = seg;
    w->nsegs++;
    conn_ref(c);
    seg->event = sim_sched_at_lane(c->net->sched, c->lane[seg->from], at, tcp_seg_arrive, seg,
                                   SIM_EV_SEGMENT);
}

/* tcp_wire_withdraw - every segment still on wire s is lost */
void tcp_wire_withdraw(struct sim_conn *c, int s)
{
    struct wire *w = &c->wire[s];
    size_t bound = w->nsegs;

    while (w->head != NULL) {
        struct sim_seg *seg = w->head;

        assert(bound-- > 0);
        w->head = seg->next;
        w->nsegs--;
        sim_sched_cancel(c->net->sched, seg->event);
        seg_free(c->net, seg);
        conn_unref(c);      /* never the last: the caller holds one */
    }
    w->tail = NULL;
    assert(w->nsegs == 0);
}

/* ---- the receive window --------------------------------------------------- */

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

/* tcp_adv_window - the window to advertise now, as the header field; moves rcv_adv
 *
 * The free receive buffer, its right edge never moved left (RFC 9293
 * 3.8.6.2.2) and moved right only by min(rcvbuf / 2, MSS) or more
 * (receiver silly-window avoidance), rounded up to the scale's unit. */
uint16_t tcp_adv_window(struct tcb *t)
{
    size_t avail = t->rcvbuf > t->rcvq.len ? t->rcvbuf - t->rcvq.len : 0;
    uint32_t edge = t->rcv_nxt + (uint32_t) avail;
    uint32_t step = min_u32((uint32_t) t->rcvbuf / 2, t->mss);
    uint32_t win, field, unit = (uint32_t) 1 << t->rcv_wscale;

    if (seq_lt(edge, t->rcv_adv) || (seq_lt(t->rcv_adv, edge) && edge - t->rcv_adv < step
                                      && seq_lt(t->rcv_nxt, t->rcv_adv)))
        edge = t->rcv_adv;
    win = edge - t->rcv_nxt;
    field = (win + unit - 1) >> t->rcv_wscale;
    if (field > 65535)
        field = 65535;
    t->rcv_adv = t->rcv_nxt + (field << t->rcv_wscale);
    return (uint16_t) field;
}

/* ---- sending ---------------------------------------------------------------- */

/* ack_sent - a segment acknowledging rcv_nxt leaves (Linux's tcp_event_ack_sent):
 * nothing is owed any more, the delayed-ACK timer stops, one quick ACK is spent */
static void ack_sent(struct sim_ep *ep)
{
    struct tcb *t = &ep->t;

    t->ack_owed = 0;
    t->pushed = 0;
    t->rcv_wup = t->rcv_nxt;
    tcp_ev_clear(ep->conn, &t->dack_event);
    if (t->quick > 0 && --t->quick == 0)
        t->ato = TCP_ATO_MIN;       /* leaving quickack mode deflates the timeout */
}

/* seg_new - a TCP segment from ep with the header fields its TCP has now */
static struct sim_seg *seg_new(struct sim_ep *ep, uint8_t flags, uint32_t seq, size_t len)
{
    struct tcb *t = &ep->t;
    struct sim_seg *seg = tcp_seg_alloc(ep->conn->net, len);

    if ((flags & SIM_TCP_ACK) && !(flags & SIM_TCP_RST))
        ack_sent(ep);               /* the SYN-ACK too: rcv_wup starts at rcv_nxt */

    seg->from = ep->side;
    seg->kind = SEG_TCP;
    seg->flags = flags;
    seg->seq = seq;
    seg->ack = (flags & SIM_TCP_ACK) ? t->rcv_nxt : 0;
    if (flags & SIM_TCP_SYN) {
        /* A SYN's window is never scaled (RFC 7323 2.2). */
        seg->window_field = (uint16_t) (t->rcvbuf < 65535 ? t->rcvbuf : 65535);
        seg->window = seg->window_field;
        t->rcv_adv = t->rcv_nxt + seg->window;
        seg->mss = (uint16_t) t->mss;
        seg->wscale = t->rcv_wscale;
    } else if (!(flags & SIM_TCP_RST)) {
        seg->window_field = tcp_adv_window(t);
        seg->window = (uint32_t) seg->window_field << t->rcv_wscale;
    }
    return seg;
}

/* tcp_send_ctl - a segment without payload, leaving now */
void tcp_send_ctl(struct sim_ep *ep, uint8_t flags, uint32_t seq)
{
    tcp_wire_put(ep->conn, seg_new(ep, flags, seq, 0), conn_now(ep->conn));
}

void tcp_send_ack(struct sim_ep *ep)
{
    tcp_send_ctl(ep, SIM_TCP_ACK, ep->t.snd_nxt);
}

/* ---- delayed acknowledgements (net.h, "Acknowledgements") ------------------ */

static void dack_fire(void *arg);

/* incr_quickack - room for quick ACKs: half the window in the peer's
 * segments, at least 2, at most TCP_MAX_QUICKACKS (Linux's tcp_incr_quickack) */
static void incr_quickack(struct tcb *t)
{
    uint32_t wnd = seq_lt(t->rcv_nxt, t->rcv_adv) ? t->rcv_adv - t->rcv_nxt : 0;
    uint32_t q = t->rcv_mss > 0 ? wnd / (2 * t->rcv_mss) : 0;

    if (q == 0)
        q = 2;
    if (q > TCP_MAX_QUICKACKS)
        q = TCP_MAX_QUICKACKS;
    if ((int) q > t->quick)
        t->quick = (int) q;
}

void tcp_enter_quickack(struct tcb *t)
{
    incr_quickack(t);
    t->pingpong = 0;
    t->ato = TCP_ATO_MIN;
}

/* tcp_data_recv_event - len in-order bytes arrived (Linux's tcp_event_data_recv
 * and tcp_measure_rcv_mss): the first data of a connection starts quickack
 * mode; the timeout follows the gaps between arrivals; a gap longer than the
 * RTO (the sender was idle) gives quick ACKs again */
void tcp_data_recv_event(struct sim_ep *ep, size_t len)
{
    struct tcb *t = &ep->t;
    sim_usec now = conn_now(ep->conn);

    if (t->rcv_mss == 0) {
        /* tcp_initialize_rcv_mss: the MSS, at most half the buffer and 536, at least 88. */
        uint32_t hint = t->mss;

        if (hint > t->rcvbuf / 2)
            hint = (uint32_t) (t->rcvbuf / 2);
        if (hint > TCP_MSS_DEFAULT)
            hint = TCP_MSS_DEFAULT;
        t->rcv_mss = hint < 88 ? 88 : hint;
    }
    if (len >= t->rcv_mss)
        t->rcv_mss = (uint32_t) (len < t->mss ? len : t->mss);
    else if (t->pushed < 2)
        t->pushed++;            /* ICSK_ACK_PUSHED, then PUSHED2 */
    if (t->ato == 0) {
        incr_quickack(t);
        t->ato = TCP_ATO_MIN;
    } else {
        sim_usec m = now - t->lrcvtime;

        if (m <= TCP_ATO_MIN / 2) {
            t->ato = t->ato / 2 + TCP_ATO_MIN / 2;
        } else if (m < t->ato) {
            t->ato = t->ato / 2 + m;
            if (t->ato > t->rto)
                t->ato = t->rto;
        } else if (m > t->rto) {
            incr_quickack(t);
        }
    }
    t->lrcvtime = now;
}

/* delayed_ack - arm the delayed-ACK timer (Linux's tcp_send_delayed_ack) */
static void delayed_ack(struct sim_ep *ep)
{
    struct tcb *t = &ep->t;
    sim_usec now = conn_now(ep->conn), ato = t->ato, at;

    if (ato > TCP_ATO_MIN) {
        sim_usec max_ato = TCP_DELACK_CAP;

        if (t->pingpong || t->pushed)
            max_ato = TCP_DELACK_MAX;
        if (t->have_rtt) {
            sim_usec rtt = t->srtt > TCP_ATO_MIN ? t->srtt : TCP_ATO_MIN;

            if (rtt < max_ato)
                max_ato = rtt;
        }
        if (ato > max_ato)
            ato = max_ato;
    }
    at = now + ato;
    if (t->dack_event != 0) {
        /* Never later than the timer already running; at once when it is
         * about to expire anyway. */
        if (t->dack_at <= now + ato / 4) {
            tcp_send_ack(ep);
            return;
        }
        if (at >= t->dack_at)
            return;
    }
    t->dack_at = at;
    tcp_ev_set(ep->conn, &t->dack_event, at, dack_fire, ep);
}

/* tcp_ack_check - data or FIN arrived and is owed an ACK (Linux's
 * __tcp_ack_snd_check): at once when asked to, when more than one full
 * segment is unacknowledged and the owner reads (RFC 1122 4.2.3.2: an ACK
 * for at least every second full-sized segment), or in quickack mode;
 * otherwise the delayed-ACK timer, and the ACK may ride on what the owner
 * sends before it expires */
void tcp_ack_check(struct sim_ep *ep, int now)
{
    struct tcb *t = &ep->t;

    t->ack_owed = 1;
    if (now || (t->rcv_nxt - t->rcv_wup > t->rcv_mss && !t->paused)
        || (t->quick > 0 && !t->pingpong))
        tcp_send_ack(ep);
    else
        delayed_ack(ep);
}

/* dack_fire - the delayed-ACK timer expired with the ACK still owed: send it;
 * an interactive connection whose reply did not come in time leaves that
 * mode, another one waits longer next time (Linux's tcp_delack_timer_handler) */
static void dack_fire(void *arg)
{
    struct sim_ep *ep = arg;
    struct sim_conn *c = ep->conn;
    struct tcb *t = &ep->t;

    t->dack_event = 0;
    if (t->ack_owed && t->state == TCP_ESTABLISHED) {
        if (t->pingpong) {
            t->pingpong = 0;
            t->ato = TCP_ATO_MIN;
        } else {
            t->ato = 2 * t->ato < t->rto ? 2 * t->ato : t->rto;
        }
        tcp_send_ack(ep);
    }
    conn_unref(c);
}

/* tcp_data_base - the sequence number of the first byte in the send queue */
uint32_t tcp_data_base(const struct tcb *t)
{
    /* After the SYN, before any FIN: snd_una is a data byte or write_seq. */
    return seq_lt(t->snd_una, 1) ? 1 : seq_lt(t->write_seq, t->snd_una) ? t->write_seq
                                                                          : t->snd_una;
}

/* send_data - len bytes from seq; the link is free now */
static void send_data(struct sim_ep *ep, uint32_t seq, size_t len)
{
    struct sim_conn *c = ep->conn;
    struct tcb *t = &ep->t;
    sim_usec now = conn_now(c), leave = now;
    uint8_t flags = SIM_TCP_ACK;
    struct sim_seg *seg;

    assert(len > 0 && len <= t->mss && t->tx_free <= now);
    if (seq + (uint32_t) len == t->write_seq)
        flags |= SIM_TCP_PSH;       /* the last byte written so far */
    /* Data sent within the ACK timeout of the last arrival: a reply, so the
     * connection is interactive (Linux's tcp_event_data_sent; the threshold
     * is one such reply, TCP_PINGPONG_THRESH). */
    if (t->ato > 0 && now - t->lrcvtime < t->ato)
        t->pingpong = 1;
    seg = seg_new(ep, flags, seq, len);
    ring_peek(&t->sndq, seq - tcp_data_base(t), seg->data, len);
    if (c->link.bandwidth > 0) {
        /* Whole microseconds, rounded up: a byte is never free. */
        uint64_t tx = ((uint64_t) len * 1000000u + c->link.bandwidth - 1) / c->link.bandwidth;

        leave = now + (sim_usec) tx;
        t->tx_free = leave;
        t->tx_len = len;
    }
    tcp_wire_put(c, seg, leave);
}

/* effective_rto - the current RTO with its backoff, at most TCP_RTO_MAX */
static sim_usec effective_rto(const struct tcb *t)
{
    sim_usec rto = t->rto;
    int i;

    for (i = 0; i < t->backoff && rto < TCP_RTO_MAX; i++)
        rto *= 2;
    return rto < TCP_RTO_MAX ? rto : TCP_RTO_MAX;
}

/* tcp_rtx_arm - (re)start the retransmission timer (RFC 6298 5.1, 5.3)
 *
 * From when the segment on the link has left it, not from when it
 * started: the timer covers the round trip, not the sender's own
 * serialization at a low bandwidth (which would otherwise time out every
 * segment of a slow link, what Linux's F-RTO, RFC 5682, has to undo). */
void tcp_rtx_arm(struct sim_ep *ep)
{
    sim_usec now = conn_now(ep->conn);
    sim_usec base = ep->t.tx_free > now ? ep->t.tx_free : now;

    ep->t.persist = 0;
    tcp_ev_set(ep->conn, &ep->t.rtx_event, base + effective_rto(&ep->t), rtx_fire, ep);
}

/* tcp_unsent - bytes written that have not left the host */
size_t tcp_unsent(const struct sim_ep *ep)
{
    const struct tcb *t = &ep->t;
    size_t n = t->appq.len;

    if (seq_lt(t->snd_nxt, t->write_seq))
        n += t->write_seq - t->snd_nxt;
    if (t->tx_free > conn_now(ep->conn))
        n += t->tx_len;                 /* on its way out */
    return n;
}

/* tcp_all_sent - has every byte written at least started to leave?  The last
 * one has left at tx_free then. */
int tcp_all_sent(const struct tcb *t)
{
    return t->appq.len == 0 && !seq_lt(t->snd_nxt, t->write_seq);
}

/* tcp_app_flush - what waits in the owner's buffer moves into the send buffer */
void tcp_app_flush(struct tcb *t)
{
    size_t room = t->sndbuf > t->sndq.len ? t->sndbuf - t->sndq.len : 0;
    size_t n = t->appq.len < room ? t->appq.len : room;
    char chunk[4096];

    while (n > 0) {
        size_t k = n < sizeof chunk ? n : sizeof chunk;

        ring_peek(&t->appq, 0, chunk, k);
        ring_drop(&t->appq, k);
        ring_push(&t->sndq, chunk, k);
        t->write_seq += (uint32_t) k;
        n -= k;
    }
}

/* retransmit - the oldest unacknowledged segment again; the link is free */
static void retransmit(struct sim_ep *ep)
{
    struct tcb *t = &ep->t;

    t->retransmits++;
    t->rtt_on = 0;          /* Karn: no sample across a retransmission */
    if (t->state == TCP_SYN_SENT) {
        tcp_send_ctl(ep, SIM_TCP_SYN, 0);
    } else if (t->state == TCP_SYN_RCVD) {
        tcp_send_ctl(ep, SIM_TCP_SYN | SIM_TCP_ACK, 0);
    } else if (seq_lt(t->snd_una, t->write_seq)) {
        uint32_t end = seq_lt(t->snd_nxt, t->write_seq) ? t->snd_nxt : t->write_seq;
        size_t len = end - t->snd_una;

        send_data(ep, t->snd_una, len < t->mss ? len : t->mss);
    } else if (t->fin_queued && seq_lt(t->snd_una, t->snd_nxt)) {
        tcp_send_ctl(ep, SIM_TCP_FIN | SIM_TCP_ACK, t->write_seq);
    }
}

/* tcp_output - send what the window, the link and the state allow */
void tcp_output(struct sim_ep *ep)
{
    struct sim_conn *c = ep->conn;
    struct tcb *t = &ep->t;
    sim_usec now = conn_now(c);
    int bound = TCP_MAX_LOOP;

    if (t->state != TCP_ESTABLISHED)
        return;
    tcp_app_flush(t);
    while (bound-- > 0) {
        uint32_t wnd_end = t->snd_una + t->snd_wnd;
        size_t waiting = seq_lt(t->snd_nxt, t->write_seq) ? t->write_seq - t->snd_nxt : 0;

        if ((t->rtx_pending || waiting > 0) && t->tx_free > now) {
            tcp_ev_set(c, &t->tx_event, t->tx_free, tx_fire, ep);
            break;
        }
        if (t->rtx_pending) {
            t->rtx_pending = 0;
            retransmit(ep);
            continue;
        }
        if (waiting > 0) {
            size_t room = seq_lt(t->snd_nxt, wnd_end) ? wnd_end - t->snd_nxt : 0;
            size_t len = waiting < t->mss ? waiting : t->mss;

            if (room == 0) {
                /* Zero window: probe it when nothing is in flight to bring
                 * an update (RFC 9293 3.8.6.1). */
                if (t->snd_una == t->snd_nxt && t->rtx_event == 0) {
                    t->persist = 1;
                    tcp_ev_set(c, &t->rtx_event, now + effective_rto(t), rtx_fire, ep);
                }
                break;
            }
            if (len > room)
                len = room;
            send_data(ep, t->snd_nxt, len);
            if (!t->rtt_on) {
                /* Timed from when it has left (tcp_rtx_arm). */
                t->rtt_on = 1;
                t->rtt_seq = t->snd_nxt;
                t->rtt_start = t->tx_free > now ? t->tx_free : now;
            }
            t->snd_nxt += (uint32_t) len;
            if (t->rtx_event == 0 || t->persist)
                tcp_rtx_arm(ep);
            continue;
        }
        if (t->fin_queued && t->snd_nxt == t->write_seq && t->appq.len == 0) {
            tcp_send_ctl(ep, SIM_TCP_FIN | SIM_TCP_ACK, t->write_seq);
            t->snd_nxt++;
            if (t->rtx_event == 0 || t->persist)
                tcp_rtx_arm(ep);
        }
        break;
    }
    assert(bound > 0);
    if (t->want_sent && t->sent_event == 0 && tcp_all_sent(t))
        tcp_ev_set(c, &t->sent_event, t->tx_free > now ? t->tx_free : now, tcp_sent_fire, ep);
}

/* ---- the end of one side -------------------------------------------------- */

/* tcp_server_uncount - the server side stops counting against the backlog */
void tcp_server_uncount(struct sim_conn *c)
{
    if (c->counted)
        conn_host_count(c, -1);
}

/* tcp_abort - this side's TCP is over: no timer, nothing more to send */
void tcp_abort(struct sim_ep *ep)
{
    struct sim_conn *c = ep->conn;
    struct tcb *t = &ep->t;

    t->state = TCP_CLOSED;
    tcp_ev_clear(c, &t->tx_event);
    tcp_ev_clear(c, &t->syn_event);
    tcp_ev_clear(c, &t->rtx_event);
    tcp_ev_clear(c, &t->sent_event);
    tcp_ev_clear(c, &t->resume_event);
    tcp_ev_clear(c, &t->dack_event);
    t->ack_owed = 0;
    t->rtx_pending = 0;
    t->want_sent = 0;
    ring_free(&t->sndq);
    ring_free(&t->appq);
    while (t->ooo != NULL) {
        struct ooo *o = t->ooo;

        t->ooo = o->next;
        free(o);
    }
    t->ooo_bytes = 0;
    if (ep->side == SIDE_SERVER && !ep->exists)
        tcp_server_uncount(c);      /* an embryonic connection dies */
}

/* tcp_deliver - hand an event to the endpoint's owner, if it still listens */
void tcp_deliver(struct sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    if (ep->released || ep->fn == NULL)
        return;
    ep->fn(ep->arg, ep, ev, data, len);
}

/* give_up - the retransmissions went unanswered: ETIMEDOUT for the owner */
static void give_up(struct sim_ep *ep)
{
    struct sim_conn *c = ep->conn;
    int handshake = ep->t.state == TCP_SYN_SENT;

    tcp_abort(ep);
    if (ep->side == SIDE_CLIENT && handshake)
        c->handshake_over = 1;
    if (ep->released || (ep->side == SIDE_SERVER && !ep->exists))
        return;
    ep->peer_gone = 1;
    tcp_deliver(ep, SIM_EP_TIMEDOUT, NULL, 0);
}

/* ---- timers ----------------------------------------------------------------- */

/* rtx_fire - the retransmission (or persist) timer expired (RFC 6298 5.4-5.6) */
static void rtx_fire(void *arg)
{
    struct sim_ep *ep = arg;
    struct sim_conn *c = ep->conn;
    struct tcb *t = &ep->t;
    int limit;

    t->rtx_event = 0;           /* its reference is ours until the end */
    if (t->persist) {
        /* A zero-window probe: one below the next sequence number, no
         * data (Linux's tcp_xmit_probe_skb); the answer carries the window. */
        t->persist = 0;
        if (t->state == TCP_ESTABLISHED && t->snd_wnd == 0 && t->snd_una == t->snd_nxt) {
            /* RFC 1122 4.2.2.17: probe as long as the receiver answers;
             * but not without answers (tcp_retries2), and an orphan only
             * until its backoff reached TCP_RTO_MAX (Linux's
             * tcp_probe_timer, tcp_orphan_retries). */
            if (t->probes >= TCP_RETRIES2
                || (ep->released && effective_rto(t) >= TCP_RTO_MAX
                    && t->backoff >= TCP_ORPHAN_RETRIES)) {
                give_up(ep);
                conn_unref(c);
                return;
            }
            tcp_send_ctl(ep, SIM_TCP_ACK, t->snd_una - 1);
            t->probes++;
            if (t->backoff < 30)
                t->backoff++;
            t->persist = 1;
            tcp_ev_set(c, &t->rtx_event, conn_now(c) + effective_rto(t), rtx_fire, ep);
        }
        conn_unref(c);
        return;
    }
    if (t->state == TCP_ESTABLISHED && t->snd_una == t->snd_nxt) {
        conn_unref(c);      /* nothing outstanding any more */
        return;
    }
    limit = t->state == TCP_SYN_SENT ? TCP_SYN_RETRIES
            : t->state == TCP_SYN_RCVD ? TCP_SYNACK_RETRIES
            : ep->released ? TCP_ORPHAN_RETRIES : TCP_RETRIES2;
    if (t->backoff >= limit) {
        give_up(ep);
    } else {
        t->backoff++;
        t->recovery = 1;
        t->recover = t->snd_nxt;
        t->dupacks = 0;
        if (t->tx_free > conn_now(c) && t->state == TCP_ESTABLISHED) {
            t->rtx_pending = 1;     /* after the segment on the link */
            tcp_output(ep);
        } else {
            retransmit(ep);
        }
        tcp_rtx_arm(ep);
    }
    conn_unref(c);
}

/* tx_fire - the link is free again: send what waits */
static void tx_fire(void *arg)
{
    struct sim_ep *ep = arg;

    ep->t.tx_event = 0;
    tcp_output(ep);
    conn_unref(ep->conn);
}

/* tcp_sent_fire - everything written has left, unless more was written since */
void tcp_sent_fire(void *arg)
{
    struct sim_ep *ep = arg;
    struct sim_conn *c = ep->conn;

    ep->t.sent_event = 0;
    if (ep->t.want_sent && tcp_unsent(ep) == 0) {
        ep->t.want_sent = 0;
        tcp_deliver(ep, SIM_EP_SENT, NULL, 0);
    }
    conn_unref(c);
}
