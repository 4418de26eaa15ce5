/*
 * test_net - unit tests for sim/world/net.c and tcp.c: the handshake and
 * connect outcomes (SYN retransmissions, give-up), stream order, FIN/RST
 * semantics, observer sequence numbers and windows, segmentation at the
 * MSS, bandwidth, back-pressure (short writes, SIM_EP_WRITABLE, unsent
 * bytes, SIM_EP_SENT), zero window and persist, retransmission after a
 * drop or a loss, limits, memory; and the descriptor numbers simenv.c
 * gives the core on top of it
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "net.h"
#include "simenv.h"

#define LOCAL mta_ip_v4(0xC0000201u)     /* 192.0.2.1 */
#define HOST mta_ip_v4(0xC6336401u)      /* 198.51.100.1 */
#define L 10000                 /* one-way latency: 10 ms */
#define MAX_LOG 256

struct ev_rec {
    int who;                    /* 0 client, 1 server */
    enum sim_ep_event ev;
    sim_usec at;
    char data[64];
    size_t len;
};

#define S 1000000               /* one second */

struct world {
    struct sim_sched *s;
    struct sim_net *n;
    sim_ep *client, *server;
    char rx[2][65536];          /* every byte each side received, in order */
    size_t rx_len[2];
    sim_usec accepted_at;
    int accepts;
    int n_ev;
    struct ev_rec ev[MAX_LOG];
    int close_on_fin;           /* owners close when told FIN/RST */
    int n_pkt;
    struct sim_packet pkt[MAX_LOG];
};

/* on_event - log an endpoint event (arg points at the world, who is in the ep) */
static void log_ev(struct world *w, int who, enum sim_ep_event ev, const char *data, size_t len)
{
    struct ev_rec *r;

    ck_assert_int_lt(w->n_ev, MAX_LOG);
    r = &w->ev[w->n_ev++];
    r->who = who;
    r->ev = ev;
    r->at = sim_sched_now(w->s);
    r->len = len < sizeof r->data ? len : sizeof r->data;
    if (len)
        memcpy(r->data, data, r->len);
    if (ev == SIM_EP_DATA) {
        ck_assert_uint_le(w->rx_len[who] + len, sizeof w->rx[who]);
        memcpy(w->rx[who] + w->rx_len[who], data, len);
        w->rx_len[who] += len;
    }
}

static void client_ev(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    struct world *w = arg;

    ck_assert_ptr_eq(ep, w->client);
    log_ev(w, 0, ev, data, len);
    if (w->close_on_fin && (ev == SIM_EP_FIN || ev == SIM_EP_RST || ev == SIM_EP_TIMEDOUT)) {
        sim_ep_close(ep);
        w->client = NULL;
    }
}

static void server_ev(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    struct world *w = arg;

    ck_assert_ptr_eq(ep, w->server);
    log_ev(w, 1, ev, data, len);
    if (w->close_on_fin && (ev == SIM_EP_FIN || ev == SIM_EP_RST || ev == SIM_EP_TIMEDOUT)) {
        sim_ep_close(ep);
        w->server = NULL;
    }
}

static void on_accept(void *arg, sim_ep *ep)
{
    struct world *w = arg;

    w->server = ep;
    w->accepts++;
    w->accepted_at = sim_sched_now(w->s);
    sim_ep_set_handler(ep, server_ev, w);
}

static void on_packet(void *arg, const struct sim_packet *p)
{
    struct world *w = arg;

    ck_assert_int_lt(w->n_pkt, MAX_LOG);
    w->pkt[w->n_pkt++] = *p;
}

/* noop - an event that only moves the clock */
static void noop(void *arg)
{
    (void) arg;
}

/* world_init - scheduler, network, one local address, one host */
static void world_init(struct world *w, enum sim_connect_mode mode)
{
    struct sim_host h;

    memset(w, 0, sizeof *w);
    w->s = sim_sched_create(0);
    w->n = sim_net_create(w->s);
    sim_net_add_local(w->n, LOCAL);
    memset(&h, 0, sizeof h);
    h.addr = HOST;
    h.port = 25;
    h.latency = L;
    h.mode = mode;
    h.accept = on_accept;
    h.accept_arg = w;
    ck_assert_int_eq(sim_net_add_host(w->n, &h), 0);
    ck_assert_int_eq(sim_net_add_host(w->n, &h), -1);
}

static void world_free(struct world *w)
{
    sim_net_destroy(w->n);
    sim_sched_destroy(w->s);
}

/* world_connect - connect the client and run until it is connected */
static void world_connect(struct world *w)
{
    int err = 1;

    w->client = sim_net_connect(w->n, LOCAL, HOST, 25, client_ev, w, &err);
    ck_assert_ptr_nonnull(w->client);
    ck_assert_int_eq(err, 0);
}

/* run_until - run the events due by t (absolute) */
static void run_until(struct world *w, sim_usec t)
{
    sim_sched_run(w->s, t, 0);
}

/* run_all - run until nothing is left */
static void run_all(struct world *w)
{
    sim_sched_run(w->s, -1, 0);
}

/* last_ev - the index of the last event of kind ev for side who, or -1 */
static int last_ev(const struct world *w, int who, enum sim_ep_event ev)
{
    int i;

    for (i = w->n_ev - 1; i >= 0; i--)
        if (w->ev[i].who == who && w->ev[i].ev == ev)
            return i;
    return -1;
}

/* world_init_with - like world_init, with the host's extra settings from tmpl */
static void world_init_with(struct world *w, const struct sim_host *tmpl, uint64_t seed)
{
    struct sim_host h = *tmpl;

    memset(w, 0, sizeof *w);
    w->s = sim_sched_create(0);
    w->n = sim_net_create(w->s);
    sim_net_set_seed(w->n, seed);
    sim_net_add_local(w->n, LOCAL);
    h.addr = HOST;
    h.port = 25;
    h.accept = on_accept;
    h.accept_arg = w;
    ck_assert_int_eq(sim_net_add_host(w->n, &h), 0);
}

/* data_arrivals - the times and lengths of the DATA events one side saw */
static int data_arrivals(const struct world *w, int who, sim_usec *at, size_t *len, int max)
{
    int i, n = 0;

    for (i = 0; i < w->n_ev && n < max; i++) {
        if (w->ev[i].who != who || w->ev[i].ev != SIM_EP_DATA)
            continue;
        at[n] = w->ev[i].at;
        len[n] = w->ev[i].len;
        n++;
    }
    return n;
}

/* The handshake: SYN at t, SYN-ACK back at t+2L (CONNECTED), the client's
 * ACK at the host at t+3L, which only then accepts: nothing the host
 * writes can leave before that. */
START_TEST(accept_timing)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    sim_sched_at(w.s, 5000, noop, NULL);
    run_all(&w);                            /* start at t = 5 ms */
    ck_assert_int_eq(sim_sched_now(w.s), 5000);
    world_connect(&w);
    ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -ENOTCONN);
    ck_assert_int_eq(sim_ep_write(w.client, "x", 1), -ENOTCONN);
    run_all(&w);
    ck_assert_int_eq(w.accepts, 1);
    ck_assert_int_eq(w.accepted_at, 5000 + 3 * L);
    ck_assert_int_eq(w.n_ev, 1);
    ck_assert_int_eq(w.ev[0].who, 0);
    ck_assert_int_eq(w.ev[0].ev, SIM_EP_CONNECTED);
    ck_assert_int_eq(w.ev[0].at, 5000 + 2 * L);
    ck_assert_uint_eq(sim_ep_conn_id(w.client), 1);
    ck_assert(mta_ip_eq(sim_ep_peer_addr(w.client), HOST));
    ck_assert(mta_ip_eq(sim_ep_peer_addr(w.server), LOCAL));
    ck_assert_int_eq(sim_net_open_count(w.n), 1);
    /* The banner, written at accept, reaches the client at t + 4L. */
    ck_assert_int_eq(sim_ep_send(w.server, "220\r\n", 5), 0);
    run_all(&w);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_DATA);
    ck_assert_int_eq(w.ev[1].at, 5000 + 4 * L);
    sim_ep_close(w.client);
    sim_ep_close(w.server);
    ck_assert_int_eq(sim_net_open_count(w.n), 0);
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* One failing connect mode: the event and its time. */
static void check_failure_mode(enum sim_connect_mode mode, mta_ip dst, int expect_ev,
                               sim_usec expect_at)
{
    struct world w;
    int err = 1;

    world_init(&w, mode);
    sim_net_set_observer(w.n, on_packet, &w);
    w.client = sim_net_connect(w.n, LOCAL, dst, 25, client_ev, &w, &err);
    ck_assert_ptr_nonnull(w.client);
    run_until(&w, 3600LL * S);
    ck_assert_int_eq(w.accepts, 0);
    ck_assert_int_eq(w.n_ev, 1);
    ck_assert_int_eq(w.ev[0].ev, expect_ev);
    ck_assert_int_eq(w.ev[0].at, expect_at);
    ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -EPIPE);
    if (expect_ev == SIM_EP_TIMEDOUT) {
        /* Linux: the SYN and 6 retransmissions (tcp_syn_retries), at
         * 0, 1, 3, 7, 15, 31, 63 s; it gives up at 127 s. */
        static const sim_usec at[] = { 0, 1 * S, 3 * S, 7 * S, 15 * S, 31 * S, 63 * S };
        int i;

        ck_assert_int_eq(w.n_pkt, 7);
        for (i = 0; i < 7; i++) {
            ck_assert_int_eq(w.pkt[i].time, at[i]);
            ck_assert_uint_eq(w.pkt[i].flags, SIM_TCP_SYN);
        }
        ck_assert_uint_eq(sim_ep_retransmits(w.client), 6);
    }
    ck_assert_int_eq(sim_net_open_count(w.n), 1);
    sim_ep_close(w.client);
    ck_assert_int_eq(sim_net_open_count(w.n), 0);
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}

START_TEST(refuse_unreachable_timeout_timing)
{
    check_failure_mode(SIM_CONNECT_REFUSE, HOST, SIM_EP_REFUSED, 2 * L);
    check_failure_mode(SIM_CONNECT_UNREACHABLE, HOST, SIM_EP_UNREACHABLE, 2 * L);
    check_failure_mode(SIM_CONNECT_TIMEOUT, HOST, SIM_EP_TIMEDOUT, 127 * S);
    check_failure_mode(SIM_CONNECT_ACCEPT, mta_ip_v4(0x0A000001u), SIM_EP_TIMEDOUT, 127 * S);  /* no host */
}
END_TEST

START_TEST(data_order_and_arrival_times)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    run_all(&w);                            /* connected at 2L, accepted at 3L */
    ck_assert_int_eq(sim_ep_send(w.client, "one", 3), 0);
    ck_assert_int_eq(sim_ep_send(w.client, "two", 3), 0);
    run_until(&w, 3 * L + 500);
    ck_assert_int_eq(sim_ep_send(w.client, "three", 5), 0);
    ck_assert_int_eq(sim_ep_send(w.server, "back", 4), 0);
    run_all(&w);
    ck_assert_int_eq(w.n_ev, 5);
    /* Two writes with the link free: two segments, in order. */
    ck_assert_int_eq(w.ev[1].who, 1);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_DATA);
    ck_assert_int_eq(w.ev[1].len, 3);
    ck_assert(memcmp(w.ev[1].data, "one", 3) == 0);
    ck_assert_int_eq(w.ev[1].at, 4 * L);
    ck_assert(memcmp(w.ev[2].data, "two", 3) == 0);
    ck_assert_int_eq(w.ev[2].at, 4 * L);
    ck_assert(memcmp(w.ev[3].data, "three", 5) == 0);
    ck_assert_int_eq(w.ev[3].at, 4 * L + 500);
    ck_assert_int_eq(w.ev[4].who, 0);
    ck_assert(memcmp(w.ev[4].data, "back", 4) == 0);
    ck_assert_int_eq(w.ev[4].at, 4 * L + 500);
    sim_ep_close(w.client);
    sim_ep_close(w.server);
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

START_TEST(fin_after_data_then_epipe)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    run_all(&w);
    ck_assert_int_eq(sim_ep_send(w.server, "a", 1), 0);
    ck_assert_int_eq(sim_ep_send(w.server, "b", 1), 0);
    sim_ep_close(w.server);
    w.server = NULL;
    /* Until the FIN arrives the client may still write; but what it
     * writes reaches a server that closed, whose TCP answers new data with
     * a reset (RFC 1122 4.2.2.13; Linux's abort on data after close). */
    ck_assert_int_eq(sim_ep_send(w.client, "late", 4), 0);
    run_all(&w);
    ck_assert_int_eq(w.n_ev, 5);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_DATA);
    ck_assert_int_eq(w.ev[2].ev, SIM_EP_DATA);
    ck_assert_int_eq(w.ev[3].ev, SIM_EP_FIN);
    ck_assert_int_eq(w.ev[3].at, 4 * L);
    ck_assert_int_eq(w.ev[4].ev, SIM_EP_RST);
    ck_assert_int_eq(w.ev[4].at, 5 * L);
    ck_assert(w.ev[1].data[0] == 'a' && w.ev[2].data[0] == 'b');
    ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -EPIPE);
    ck_assert_int_eq(sim_ep_write(w.client, "x", 1), -EPIPE);
    ck_assert_int_eq(sim_net_live_count(w.n), 1);
    sim_ep_close(w.client);
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* Closing with data unread (the owner paused reading) loses that data, and
 * the TCP says so with RST|ACK instead of a FIN (Linux's tcp_close; RFC 1122
 * 4.2.2.13): the client sees a reset, not an end of stream. */
START_TEST(close_with_unread_data_resets)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    run_all(&w);                            /* t = 3L, accepted */
    sim_ep_pause(w.server, 1);
    ck_assert_int_eq(sim_ep_send(w.client, "unread", 6), 0);        /* at the server at 4L */
    run_all(&w);
    sim_ep_close(w.server);
    w.server = NULL;
    run_all(&w);
    ck_assert_int_eq(last_ev(&w, 0, SIM_EP_FIN), -1);
    ck_assert_int_ne(last_ev(&w, 0, SIM_EP_RST), -1);
    ck_assert(w.pkt[w.n_pkt - 1].flags == (SIM_TCP_RST | SIM_TCP_ACK));
    ck_assert_uint_eq(w.pkt[w.n_pkt - 1].seq, 1);      /* the server sent nothing: snd_nxt */
    ck_assert_int_eq(w.rx_len[1], 0);                   /* the owner never read it */
    sim_ep_close(w.client);
    w.client = NULL;
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

START_TEST(rst_discards_in_flight_data)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    run_all(&w);                            /* t = 3L */
    ck_assert_int_eq(sim_ep_send(w.server, "lost", 4), 0);   /* would arrive at 4L */
    run_until(&w, 3 * L + L / 2);
    sim_ep_reset(w.server);
    w.server = NULL;
    run_all(&w);
    ck_assert_int_eq(w.n_ev, 2);
    ck_assert_int_eq(w.ev[1].who, 0);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_RST);
    ck_assert_int_eq(w.ev[1].at, 3 * L + L / 2 + L);
    ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -EPIPE);
    sim_ep_close(w.client);
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

START_TEST(client_reset_reaches_server)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    w.close_on_fin = 1;
    world_connect(&w);
    run_all(&w);
    ck_assert_int_eq(sim_ep_send(w.client, "hello", 5), 0);
    sim_ep_reset(w.client);
    w.client = NULL;
    run_all(&w);
    ck_assert_int_eq(w.n_ev, 2);
    ck_assert_int_eq(w.ev[1].who, 1);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_RST);
    ck_assert_int_eq(w.ev[1].at, 4 * L);
    ck_assert_ptr_null(w.server);           /* closed from its handler */
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* run_to - run the events due by t, and be at t (a clock that only moves by events) */
static void run_to(struct world *w, sim_usec t)
{
    sim_sched_at(w->s, t, noop, NULL);
    run_until(w, t);
    ck_assert(sim_sched_now(w->s) == t);
}

/* captured_connection - a world with its capture, connected and accepted (3L) */
static void captured_connection(struct world *w)
{
    world_init(w, SIM_CONNECT_ACCEPT);
    sim_net_set_observer(w->n, on_packet, w);
    world_connect(w);
    run_to(w, 3 * L);
}

/* pure_acks - the pure ACKs (no payload, no SYN/FIN/RST) one side sent, as
 * the capture shows them: time and acknowledgement number */
static int pure_acks(const struct world *w, int from_client, sim_usec *at, uint32_t *ack, int max)
{
    int i, n = 0;

    for (i = 0; i < w->n_pkt && n < max; i++) {
        const struct sim_packet *p = &w->pkt[i];

        if (p->flags != SIM_TCP_ACK || p->len != 0
            || !mta_ip_eq(p->src, from_client ? LOCAL : HOST))
            continue;
        at[n] = p->time;
        ack[n] = p->ack;
        n++;
    }
    return n;
}

/* Delayed ACKs as Linux makes them (net.h, "Acknowledgements"); the shape of
 * fixtures/captures/deliver.pcap, swaks and aiosmtpd on Linux: the first
 * data each side receives is acknowledged at once (quickack); once a side
 * has answered within the ACK timeout it is interactive and its ACK rides
 * on its next reply; an ACK nobody's reply carries leaves 40 ms late
 * (TCP_DELACK_MIN) and ends the interactive mode. */
START_TEST(delayed_acks_ride_on_replies)
{
    struct world w;
    sim_usec at[8];
    uint32_t ack[8];
    int n, i;

    captured_connection(&w);
    ck_assert_int_eq(sim_ep_send(w.server, "220 hi\r\n", 8), 0);     /* at the client at 4L */
    run_to(&w, 4 * L);
    ck_assert_int_eq(sim_ep_send(w.client, "EHLO x\r\n", 8), 0);     /* a reply: interactive */
    run_to(&w, 5 * L);
    ck_assert_int_eq(sim_ep_send(w.server, "250 ok\r\n", 8), 0);     /* interactive too */
    run_to(&w, 6 * L);
    ck_assert_int_eq(sim_ep_send(w.client, "MAIL\r\n", 6), 0);       /* carries the ACK of 250 */
    run_to(&w, 7 * L + 100000);                                  /* the server says nothing */
    ck_assert_int_eq(sim_ep_send(w.server, "250 ok\r\n", 8), 0);
    run_to(&w, 8 * L + 100000);
    ck_assert_int_eq(sim_ep_send(w.client, "RCPT\r\n", 6), 0);
    run_to(&w, 10 * L + 200000);

    /* The client: the handshake's ACK and the 220's (quickack); none for
     * either 250: the client is interactive since EHLO, each 250's ACK
     * waits, and the command sent at that instant (MAIL, RCPT) carries it. */
    n = pure_acks(&w, 1, at, ack, 8);
    ck_assert_int_eq(n, 2);
    ck_assert(at[0] == 2 * L && ack[0] == 1);
    ck_assert(at[1] == 4 * L && ack[1] == 9);
    /* The server: EHLO's at once (the first data it received), MAIL's 40 ms
     * after it arrived at 7L (arriving at the client 8L + 40 ms).  That
     * timer's expiry ended its interactive mode, and its late 250 did not
     * start it again (sent 100 ms after MAIL came): RCPT, arriving at
     * 9L + 100 ms, is acknowledged at once (a quick ACK is left). */
    n = pure_acks(&w, 0, at, ack, 8);
    ck_assert_int_eq(n, 3);
    ck_assert(at[0] == 6 * L && ack[0] == 9);
    ck_assert_msg(at[1] == 8 * L + 40000 && ack[1] == 15, "MAIL's ACK at %lld, ack %u",
                  (long long) at[1], ack[1]);
    ck_assert_msg(at[2] == 10 * L + 100000 && ack[2] == 21, "RCPT's ACK at %lld, ack %u",
                  (long long) at[2], ack[2]);
    /* The commands carry the ACKs: MAIL (seq 9) the first 250's, RCPT (15) the second's. */
    for (i = 0, n = 0; i < w.n_pkt; i++) {
        if (w.pkt[i].len == 0 || !mta_ip_eq(w.pkt[i].src, LOCAL) || w.pkt[i].seq < 9)
            continue;
        ck_assert_uint_eq(w.pkt[i].ack, w.pkt[i].seq == 9 ? 17 : 25);
        n++;
    }
    ck_assert_int_eq(n, 2);
    world_free(&w);
}
END_TEST

/* A bulk transfer to an interactive receiver: an ACK at once for every
 * second full-sized segment (RFC 1122 4.2.3.2, RFC 5681 4.2), the short
 * tail's 40 ms later when nothing else carries it. */
START_TEST(delayed_acks_every_second_full_segment)
{
    struct world w;
    static char body[4 * SIM_NET_MSS + 100];
    sim_usec at[8];
    uint32_t ack[8];
    int n;

    memset(body, 'x', sizeof body);
    captured_connection(&w);
    ck_assert_int_eq(sim_ep_send(w.client, "EHLO x\r\n", 8), 0);     /* at the server at 4L */
    run_to(&w, 4 * L);
    ck_assert_int_eq(sim_ep_send(w.server, "250 ok\r\n", 8), 0);     /* interactive now */
    run_to(&w, 5 * L);
    ck_assert_int_eq(sim_ep_send(w.client, body, sizeof body), 0);  /* at the server at 6L */
    run_to(&w, 6 * L + 100000);

    n = pure_acks(&w, 0, at, ack, 8);
    ck_assert_int_eq(n, 4);
    ck_assert(at[0] == 5 * L && ack[0] == 9);                       /* EHLO: quickack */
    ck_assert(at[1] == 7 * L && ack[1] == 9 + 2 * SIM_NET_MSS);     /* second segment */
    ck_assert(at[2] == 7 * L && ack[2] == 9 + 4 * SIM_NET_MSS);     /* fourth */
    ck_assert_msg(at[3] == 7 * L + 40000 && ack[3] == 9 + sizeof body, "tail's ACK at %lld",
                  (long long) at[3]);
    world_free(&w);
}
END_TEST

/* The whole exchange as the MTA's capture shows it: the client's packets
 * when they leave, the host's when they arrive. */
START_TEST(observer_seq_ack_arithmetic)
{
    struct world w;
    const struct sim_packet *p;
    int i;

    world_init(&w, SIM_CONNECT_ACCEPT);
    sim_net_set_observer(w.n, on_packet, &w);
    w.close_on_fin = 1;
    world_connect(&w);
    run_until(&w, 3 * L);                           /* accepted */
    ck_assert_int_eq(sim_ep_send(w.server, "220 hi\r\n", 8), 0);     /* arrives 4L */
    run_until(&w, 4 * L);
    ck_assert_int_eq(sim_ep_send(w.client, "QUIT\r\n", 6), 0);       /* arrives 5L */
    sim_ep_close(w.client);                         /* FIN after the data */
    w.client = NULL;
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);

    /* Expected: time, from client?, flags, seq, ack, len */
    struct { sim_usec t; int from_client; uint8_t flags; uint32_t seq, ack; size_t len; } want[] = {
        { 0,     1, SIM_TCP_SYN,                 0, 0, 0 },
        { 2 * L, 0, SIM_TCP_SYN | SIM_TCP_ACK,   0, 1, 0 },
        { 2 * L, 1, SIM_TCP_ACK,                 1, 1, 0 },
        { 4 * L, 0, SIM_TCP_PSH | SIM_TCP_ACK,   1, 1, 8 },   /* banner */
        { 4 * L, 1, SIM_TCP_ACK,                 1, 9, 0 },   /* client acks it */
        { 4 * L, 1, SIM_TCP_PSH | SIM_TCP_ACK,   1, 9, 6 },   /* QUIT */
        { 4 * L, 1, SIM_TCP_FIN | SIM_TCP_ACK,   7, 9, 0 },
        { 6 * L, 0, SIM_TCP_ACK,                 9, 7, 0 },   /* server acks QUIT: quickack */
        /* The FIN's ACK waits for the server's own close and rides on its
         * FIN (Linux's tcp_fin: pingpong mode in ESTABLISHED). */
        { 6 * L, 0, SIM_TCP_FIN | SIM_TCP_ACK,   9, 8, 0 },   /* server closes on FIN */
        { 6 * L, 1, SIM_TCP_ACK,                 8, 10, 0 },  /* last ACK */
    };
    ck_assert_int_eq(w.n_pkt, (int) (sizeof want / sizeof want[0]));
    for (i = 0; i < w.n_pkt; i++) {
        p = &w.pkt[i];
        ck_assert_msg(p->time == want[i].t, "packet %d time %lld", i, (long long) p->time);
        ck_assert_uint_eq(p->conn_id, 1);
        ck_assert(mta_ip_eq(p->src, want[i].from_client ? LOCAL : HOST));
        ck_assert_uint_eq(p->sport, want[i].from_client ? 40000 : 25);
        ck_assert_uint_eq(p->dport, want[i].from_client ? 25 : 40000);
        ck_assert_msg(p->flags == want[i].flags, "packet %d flags %x", i, p->flags);
        ck_assert_msg(p->seq == want[i].seq, "packet %d seq %u", i, p->seq);
        ck_assert_msg(p->ack == want[i].ack, "packet %d ack %u", i, p->ack);
        ck_assert_uint_eq(p->len, want[i].len);
        ck_assert_int_eq(p->icmp_unreachable, 0);
    }
    /* SYN options: the MSS and the smallest window scale for 128 KiB. */
    ck_assert_uint_eq(w.pkt[0].mss, SIM_NET_MSS);
    ck_assert_uint_eq(w.pkt[0].wscale, 2);
    ck_assert_uint_eq(w.pkt[0].window, 65535);
    ck_assert_uint_eq(w.pkt[2].window, SIM_NET_RCVBUF >> 2);
    world_free(&w);
}
END_TEST

START_TEST(observer_refused_and_unreachable)
{
    struct world w;

    world_init(&w, SIM_CONNECT_REFUSE);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    run_all(&w);
    ck_assert_int_eq(w.n_pkt, 2);
    ck_assert_int_eq(w.pkt[1].time, 2 * L);
    ck_assert_uint_eq(w.pkt[1].flags, SIM_TCP_RST | SIM_TCP_ACK);
    ck_assert_uint_eq(w.pkt[1].ack, 1);
    sim_ep_close(w.client);
    world_free(&w);

    world_init(&w, SIM_CONNECT_UNREACHABLE);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    run_all(&w);
    ck_assert_int_eq(w.n_pkt, 2);
    ck_assert_int_eq(w.pkt[1].icmp_unreachable, 1);
    ck_assert_int_eq(w.pkt[1].time, 2 * L);
    ck_assert(mta_ip_eq(w.pkt[1].src, HOST));
    ck_assert(mta_ip_eq(w.pkt[1].dst, LOCAL));
    sim_ep_close(w.client);
    world_free(&w);
}
END_TEST

START_TEST(sync_errors_ports_and_ids)
{
    struct world w;
    sim_ep *a, *b, *c;
    int err = 0;

    world_init(&w, SIM_CONNECT_TIMEOUT);
    sim_net_set_observer(w.n, on_packet, &w);
    ck_assert_ptr_null(sim_net_connect(w.n, mta_ip_v4(0x01020304u), HOST, 25, client_ev, &w, &err));
    ck_assert_int_eq(err, -EADDRNOTAVAIL);
    sim_net_set_max_open(w.n, 2);
    a = sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err);
    b = sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_null(sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err));
    ck_assert_int_eq(err, -EMFILE);
    ck_assert_uint_eq(sim_ep_conn_id(a), 1);
    ck_assert_uint_eq(sim_ep_conn_id(b), 2);
    ck_assert_int_eq(w.n_pkt, 0);                   /* the SYNs leave after the call... */
    run_until(&w, 0);
    ck_assert_int_eq(w.n_pkt, 2);                   /* ... at the same instant */
    sim_ep_close(a);
    c = sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(sim_ep_conn_id(c), 3);
    run_until(&w, 0);
    ck_assert_int_eq(w.n_pkt, 3);                   /* three SYNs */
    ck_assert_uint_eq(w.pkt[0].sport, 40000);
    ck_assert_uint_eq(w.pkt[1].sport, 40001);
    ck_assert_uint_eq(w.pkt[2].sport, 40002);
    ck_assert_uint_eq(w.pkt[2].flags, SIM_TCP_SYN);
    sim_ep_close(b);
    sim_ep_close(c);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* Closing before the handshake finished sends nothing; the SYN-ACK that
 * then arrives is answered with RST, and the host never accepts. */
START_TEST(close_during_handshake)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    run_until(&w, L + L / 2);                  /* SYN-ACK in flight */
    sim_ep_close(w.client);
    w.client = NULL;
    ck_assert_int_eq(w.n_pkt, 1);               /* nothing sent at the close */
    run_all(&w);
    ck_assert_int_eq(w.accepts, 0);
    ck_assert_int_eq(w.n_pkt, 3);               /* SYN, SYN-ACK, RST */
    ck_assert_uint_eq(w.pkt[2].flags, SIM_TCP_RST);
    ck_assert_uint_eq(w.pkt[2].seq, 1);         /* the SYN-ACK's ACK number */
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* The MTA's SYN leaves once its connect call has returned, at the same
 * instant: a close in between (a connection_post_bind provider abandoning
 * the attempt, which Momentum 3 runs before connect) puts nothing on the
 * wire, and the remote never hears of it. */
START_TEST(close_before_the_syn_leaves)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    sim_ep_close(w.client);
    w.client = NULL;
    run_all(&w);
    ck_assert_int_eq(w.n_pkt, 0);
    ck_assert_int_eq(w.accepts, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* Destroying the network with connections and segments in flight frees all. */
START_TEST(destroy_with_live_connections)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    run_all(&w);
    sim_ep_send(w.client, "pending", 7);
    ck_assert_int_eq(sim_net_live_count(w.n), 1);
    world_free(&w);
}
END_TEST

/* A write is cut into MSS-sized segments, in order, bytes intact. */
START_TEST(segmentation_keeps_order)
{
    struct sim_host h = { .latency = L, .segment = 3 };
    struct world w;
    sim_usec at[16];
    size_t len[16];
    int n;

    world_init_with(&w, &h, 1);
    world_connect(&w);
    run_all(&w);
    ck_assert_int_eq(sim_ep_send(w.client, "abcdefgh", 8), 0);
    run_all(&w);
    n = data_arrivals(&w, 1, at, len, 16);
    ck_assert_int_eq(n, 3);                         /* abc def gh */
    ck_assert_int_eq(at[2], at[0]);                 /* no bandwidth: together */
    ck_assert_uint_eq(len[2], 2);
    ck_assert_uint_eq(w.rx_len[1], 8);
    ck_assert(memcmp(w.rx[1], "abcdefgh", 8) == 0);
    world_free(&w);
}
END_TEST

/* Bandwidth paces the segments: n bytes take ceil(n * 1e6 / B) us each. */
START_TEST(bandwidth_spreads_segments)
{
    struct sim_host h = { .latency = L, .segment = 10, .bandwidth = 1000 };
    struct world w;
    sim_usec at[16], sent;
    size_t len[16];
    int n;

    world_init_with(&w, &h, 1);
    world_connect(&w);
    run_all(&w);
    sent = sim_sched_now(w.s);
    ck_assert_int_eq(sim_ep_send(w.client, "0123456789012345678901234", 25), 0);
    ck_assert_uint_eq(sim_ep_unsent(w.client), 25);
    run_all(&w);
    ck_assert_uint_eq(sim_ep_unsent(w.client), 0);
    n = data_arrivals(&w, 1, at, len, 16);
    ck_assert_int_eq(n, 3);
    /* 10 bytes at 1000 B/s = 10 ms each, the last 5 bytes 5 ms; plus L. */
    ck_assert_int_eq(at[0], sent + 10000 + L);
    ck_assert_int_eq(at[1], sent + 20000 + L);
    ck_assert_int_eq(at[2], sent + 25000 + L);
    ck_assert_uint_eq(sim_ep_retransmits(w.client), 0);     /* no spurious timeout */
    world_free(&w);
}
END_TEST

/* The client's send buffer (sim_net_set_buffers): a short write, then
 * -EAGAIN, SIM_EP_WRITABLE once ACKs made room, and SIM_EP_SENT once the
 * last byte has left a slow link. */
START_TEST(back_pressure_writable_and_sent)
{
    struct sim_host h = { .latency = L, .bandwidth = 10000 };  /* 10 kB/s */
    static char block[4096];
    struct world w;
    int n, i;
    sim_usec sent_at;

    world_init_with(&w, &h, 1);
    sim_net_set_buffers(w.n, 2048, 0);
    world_connect(&w);
    run_all(&w);
    n = sim_ep_write(w.client, block, sizeof block);
    ck_assert_int_eq(n, 2048);                       /* short: the buffer is full */
    ck_assert_int_eq(sim_ep_write(w.client, block, 1), -EAGAIN);
    ck_assert_uint_eq(sim_ep_unsent(w.client), 2048);
    /* 1460 + 588 bytes at 10 kB/s; the first ACK frees 1460 of 2048. */
    run_until(&w, sim_sched_now(w.s) + 146000 + 2 * L);
    i = last_ev(&w, 0, SIM_EP_WRITABLE);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(w.ev[i].at, 3 * L + 146000 + 2 * L);
    n = sim_ep_write(w.client, block, sizeof block);
    ck_assert_int_eq(n, 1460);
    sim_ep_notify_sent(w.client);
    ck_assert_int_eq(last_ev(&w, 0, SIM_EP_SENT), -1);     /* never inside the call */
    run_all(&w);
    i = last_ev(&w, 0, SIM_EP_SENT);
    ck_assert_int_ge(i, 0);
    sent_at = w.ev[i].at;
    /* 3508 bytes leave the 10 kB/s link 350.8 ms after they started. */
    ck_assert_int_eq(sent_at, 3 * L + 350800);
    ck_assert_uint_eq(w.rx_len[1], 3508);
    world_free(&w);
}
END_TEST

/* Zero window: the server stops reading, the client's writes stop, it
 * probes; when the server reads again everything arrives, in order. */
START_TEST(zero_window_persist_and_resume)
{
    struct sim_host h = { .latency = L, .rcvbuf = 4096 };
    static char block[8192];
    struct world w;
    size_t total = 0;
    int n, i, probes = 0;

    for (i = 0; i < (int) sizeof block; i++)
        block[i] = (char) ('a' + i % 26);
    world_init_with(&w, &h, 1);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    run_all(&w);
    sim_ep_pause(w.server, 1);
    while ((n = sim_ep_write(w.client, block + total, sizeof block - total)) > 0)
        total += (size_t) n;
    run_until(&w, 10 * S);
    ck_assert_uint_eq(w.rx_len[1], 0);              /* nothing read */
    for (i = 0; i < w.n_pkt; i++) {
        if (mta_ip_eq(w.pkt[i].src, HOST) && w.pkt[i].len == 0 && w.pkt[i].window == 0)
            probes++;                               /* zero-window ACKs */
    }
    ck_assert_int_ge(probes, 2);                    /* the first, and probe answers */
    sim_ep_pause(w.server, 0);
    while (total < sizeof block) {
        run_until(&w, sim_sched_now(w.s) + S);
        while ((n = sim_ep_write(w.client, block + total, sizeof block - total)) > 0)
            total += (size_t) n;
    }
    run_all(&w);
    ck_assert_uint_eq(w.rx_len[1], sizeof block);
    ck_assert(memcmp(w.rx[1], block, sizeof block) == 0);
    world_free(&w);
}
END_TEST

/* Loss: segments lost at random are retransmitted; the stream arrives
 * whole and in order, the same way for the same seed. */
START_TEST(loss_is_repaired_by_retransmission)
{
    struct sim_host h = { .latency = L, .loss_ppm = 200000, .segment = 100 };
    static char block[6000];
    uint64_t rtx[2];
    int run, i;

    for (i = 0; i < (int) sizeof block; i++)
        block[i] = (char) ('A' + i % 50);
    for (run = 0; run < 2; run++) {
        struct world w;

        world_init_with(&w, &h, 42);
        world_connect(&w);
        run_until(&w, 600 * S);
        ck_assert_ptr_nonnull(w.server);            /* even the handshake may need a retry */
        ck_assert_int_eq(sim_ep_send(w.client, block, sizeof block), 0);
        run_until(&w, 1200 * S);
        ck_assert_uint_eq(w.rx_len[1], sizeof block);
        ck_assert(memcmp(w.rx[1], block, sizeof block) == 0);
        rtx[run] = sim_ep_retransmits(w.client);
        ck_assert_uint_gt(rtx[run], 0);
        world_free(&w);
    }
    ck_assert_uint_eq(rtx[0], rtx[1]);
}
END_TEST

/* Jitter: arrivals vary per segment within [L, L + J], stay in order, and
 * depend on the seed alone. */
START_TEST(jitter_from_the_seed)
{
    struct sim_host h = { .latency = L, .jitter = 5000 };
    sim_usec first[2][8];
    int differ = 0, seed, i;

    for (seed = 0; seed < 2; seed++) {
        struct world w;
        sim_usec at[8], prev = 0, sent;
        size_t len[8];

        world_init_with(&w, &h, (uint64_t) seed + 7);
        world_connect(&w);
        sim_sched_run(w.s, -1, 0);
        sent = sim_sched_now(w.s);
        for (i = 0; i < 8; i++)
            ck_assert_int_eq(sim_ep_send(w.client, "x", 1), 0);
        /* Each one-byte write is its own segment (the link is free). */
        sim_sched_run(w.s, -1, 0);
        ck_assert_int_eq(data_arrivals(&w, 1, at, len, 8), 8);
        for (i = 0; i < 8; i++) {
            ck_assert_int_ge(at[i], sent + L);
            ck_assert_int_le(at[i], sent + L + 5000);
            ck_assert_int_ge(at[i], prev);          /* in order */
            prev = at[i];
            first[seed][i] = at[i];
        }
        world_free(&w);
    }
    for (i = 0; i < 8; i++)
        differ += first[0][i] != first[1][i];
    ck_assert_int_gt(differ, 0);
    /* The same seed again: the same arrivals. */
    {
        struct world w;
        sim_usec at[8];
        size_t len[8];

        world_init_with(&w, &h, 7);
        world_connect(&w);
        sim_sched_run(w.s, -1, 0);
        for (i = 0; i < 8; i++)
            sim_ep_send(w.client, "x", 1);
        sim_sched_run(w.s, -1, 0);
        data_arrivals(&w, 1, at, len, 8);
        for (i = 0; i < 8; i++)
            ck_assert_int_eq(at[i], first[0][i]);
        world_free(&w);
    }
}
END_TEST

/* A link overrides the host's latency for its (src, dst) pair only. */
START_TEST(link_overrides_host)
{
    struct sim_host h = { .latency = L };
    struct sim_link l = { .src = LOCAL, .dst = HOST, .latency = 3 * L, .jitter = -1,
                          .bandwidth = UINT64_MAX, .segment = SIZE_MAX,
                          .loss_ppm = UINT32_MAX };
    struct world w;

    world_init_with(&w, &h, 1);
    ck_assert_int_eq(sim_net_add_link(w.n, &l), 0);
    ck_assert_int_eq(sim_net_add_link(w.n, &l), -1);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.accepted_at, 9 * L);        /* three trips of 3L */
    ck_assert_int_eq(w.ev[0].ev, SIM_EP_CONNECTED);
    ck_assert_int_eq(w.ev[0].at, 6 * L);
    world_free(&w);
}
END_TEST

/* Silent drop: in-flight data lost, nothing either side sends arrives any
 * more, the host forgets the connection; the client's TCP retransmits what
 * is unacknowledged with a doubling RTO (the observer sees every try) and
 * its FIN after the close, until it gives up. */
START_TEST(silent_drop_is_half_open)
{
    struct sim_host h = { .latency = L };
    struct world w;
    int i, rtx = 0;
    sim_usec prev = 0, gap = 0;

    world_init_with(&w, &h, 1);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    run_all(&w);
    ck_assert_int_eq(sim_ep_send(w.server, "220 hi\r\n", 8), 0);
    sim_ep_drop(w.server);                          /* the banner is lost */
    ck_assert_int_eq(sim_ep_send(w.server, "late\r\n", 6), -EPIPE);  /* forgotten */
    sim_ep_close(w.server);
    w.server = NULL;
    ck_assert_int_eq(sim_ep_send(w.client, "EHLO x\r\n", 8), 0);
    run_until(&w, 30 * S);
    ck_assert_int_eq(w.n_ev, 1);                    /* only CONNECTED: no FIN, no RST */
    for (i = 0; i < w.n_pkt; i++) {
        ck_assert_uint_eq(mta_ip_eq(w.pkt[i].src, HOST), i == 1);   /* only the SYN-ACK from it */
        if (mta_ip_eq(w.pkt[i].src, LOCAL) && w.pkt[i].len == 8) {
            /* The EHLO, then retransmissions: each gap twice the last (RFC 6298 5.5). */
            if (rtx > 1)
                ck_assert_int_eq(w.pkt[i].time - prev, 2 * gap);
            if (rtx > 0)
                gap = w.pkt[i].time - prev;
            prev = w.pkt[i].time;
            rtx++;
        }
    }
    ck_assert_int_ge(rtx, 5);
    ck_assert_uint_eq(sim_ep_retransmits(w.client), (uint64_t) rtx - 1);
    /* After its owner closed, the client's TCP still tries: the FIN too. */
    sim_ep_close(w.client);
    w.client = NULL;
    ck_assert_uint_eq(w.pkt[w.n_pkt - 1].flags, SIM_TCP_FIN | SIM_TCP_ACK);
    run_all(&w);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);  /* it gave up: tcp_orphan_retries */
    world_free(&w);
}
END_TEST

/* Backlog 1: a second concurrent SYN is refused, or dropped; a dropped
 * SYN is sent again (1 s later) and finds room once the first is gone. */
START_TEST(backlog_full)
{
    int refuse;

    for (refuse = 0; refuse < 2; refuse++) {
        struct sim_host h = { .latency = L, .backlog = 1,
                              .backlog_mode = refuse ? SIM_BACKLOG_REFUSE : SIM_BACKLOG_TIMEOUT };
        struct world w;
        sim_ep *first, *second;
        int err;

        world_init_with(&w, &h, 1);
        world_connect(&w);
        run_all(&w);
        first = w.client;
        ck_assert_int_eq(w.accepts, 1);
        second = sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err);
        w.client = second;
        run_until(&w, sim_sched_now(w.s) + 500000);
        ck_assert_int_eq(w.accepts, 1);
        if (refuse) {
            ck_assert_int_eq(w.ev[w.n_ev - 1].ev, SIM_EP_REFUSED);
            sim_ep_close(second);
        }
        /* Free the slot: the host releases its side of the first. */
        sim_ep_close(w.server);
        w.server = NULL;
        sim_ep_close(first);
        run_until(&w, sim_sched_now(w.s) + 2 * S);
        if (!refuse) {
            ck_assert_int_eq(w.accepts, 2);        /* the retransmitted SYN */
            ck_assert_int_eq(w.ev[w.n_ev - 1].ev, SIM_EP_CONNECTED);
            sim_ep_close(second);
            sim_ep_close(w.server);
            w.server = NULL;
        } else {
            world_connect(&w);
            run_all(&w);
            ck_assert_int_eq(w.accepts, 2);
            sim_ep_close(w.client);
            sim_ep_close(w.server);
        }
        run_all(&w);
        ck_assert_int_eq(sim_net_live_count(w.n), 0);
        world_free(&w);
    }
}
END_TEST

/* A random connect outcome: refused about half the time, by the seed. */
START_TEST(random_connect_choice)
{
    struct sim_host h = { .latency = L, .nchoices = 1,
                          .choices = { { SIM_CONNECT_REFUSE, 500000 } } };
    struct world w;
    int i, refused = 0, accepted = 0;

    world_init_with(&w, &h, 3);
    w.close_on_fin = 1;
    for (i = 0; i < 200; i++) {
        int before = w.accepts;

        world_connect(&w);
        sim_sched_run(w.s, -1, 0);
        if (w.accepts > before) {
            accepted++;
            sim_ep_close(w.server);
            w.server = NULL;
        } else {
            refused++;
        }
        sim_ep_close(w.client);
        w.client = NULL;
        sim_sched_run(w.s, -1, 0);
        w.n_ev = 0;
    }
    ck_assert_int_gt(refused, 70);
    ck_assert_int_gt(accepted, 70);
    world_free(&w);
}
END_TEST

/* The MTA's descriptor limit: -EMFILE beyond max_open. */
START_TEST(max_open_is_emfile)
{
    struct sim_host h = { .latency = L };
    struct world w;
    sim_ep *second;
    int err = 0;

    world_init_with(&w, &h, 1);
    sim_net_set_max_open(w.n, 1);
    world_connect(&w);
    second = sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err);
    ck_assert_ptr_null(second);
    ck_assert_int_eq(err, -EMFILE);
    world_free(&w);
}
END_TEST

/* mta_ip: one representation per address, RFC 5952 text, keys that keep
 * IPv4 tables as they were. */
START_TEST(ip_addresses)
{
    mta_ip a, b, c;
    char t[MTA_IP_TEXT];

    ck_assert_int_eq(mta_ip_parse("198.51.100.1", &a), 0);
    ck_assert(mta_ip_eq(a, HOST));
    ck_assert(mta_ip_is_v4(a));
    ck_assert_uint_eq(mta_ip_v4_of(a), 0xC6336401u);
    ck_assert_uint_eq(mta_ip_key(a), 0xC6336401u);
    ck_assert_int_eq(mta_ip_parse("2001:DB8:0:0:0:0:0:25", &b), 0);
    ck_assert(!mta_ip_is_v4(b));
    ck_assert_uint_eq(mta_ip_v4_of(b), 0);
    ck_assert_str_eq(mta_ip_format(b, t), "2001:db8::25");
    ck_assert_uint_gt(mta_ip_key(b), 0xFFFFFFFFu);
    ck_assert_int_eq(mta_ip_parse("2001:db8::25", &c), 0);
    ck_assert(mta_ip_eq(b, c));
    ck_assert_str_eq(mta_ip_format(a, t), "198.51.100.1");
    ck_assert_int_eq(mta_ip_parse("2001:db8::1::2", &c), -1);
    ck_assert_int_eq(mta_ip_parse("1.2.3.256", &c), -1);
    ck_assert(mta_ip_is_unspec(mta_ip_v4(0)));
}
END_TEST

/* An IPv6 connection: the same handshake, an MSS of 1440 on its SYNs (RFC
 * 8200 3: 20 header bytes more than IPv4), IPv6 addresses on every packet;
 * a connect across families fails at once with EAFNOSUPPORT. */
START_TEST(ipv6_connection)
{
    struct world w;
    struct sim_host h;
    mta_ip local6, host6;
    int err = 1, i;

    ck_assert_int_eq(mta_ip_parse("2001:db8::25", &local6), 0);
    ck_assert_int_eq(mta_ip_parse("2001:db8:5::10", &host6), 0);
    memset(&w, 0, sizeof w);
    w.s = sim_sched_create(0);
    w.n = sim_net_create(w.s);
    sim_net_add_local(w.n, local6);
    sim_net_add_local(w.n, LOCAL);
    sim_net_set_observer(w.n, on_packet, &w);
    memset(&h, 0, sizeof h);
    h.addr = host6;
    h.port = 25;
    h.latency = L;
    h.accept = on_accept;
    h.accept_arg = &w;
    ck_assert_int_eq(sim_net_add_host(w.n, &h), 0);
    ck_assert_int_eq(sim_net_add_host(w.n, &h), -1);
    ck_assert_ptr_null(sim_net_connect(w.n, LOCAL, host6, 25, client_ev, &w, &err));
    ck_assert_int_eq(err, -EAFNOSUPPORT);
    ck_assert_ptr_null(sim_net_connect(w.n, local6, HOST, 25, client_ev, &w, &err));
    ck_assert_int_eq(err, -EAFNOSUPPORT);
    ck_assert_int_eq(w.n_pkt, 0);
    w.client = sim_net_connect(w.n, local6, host6, 25, client_ev, &w, &err);
    ck_assert_ptr_nonnull(w.client);
    run_until(&w, 10 * S);
    ck_assert_int_eq(w.ev[0].ev, SIM_EP_CONNECTED);
    ck_assert_int_eq(w.ev[0].at, 2 * L);
    ck_assert(mta_ip_eq(sim_ep_peer_addr(w.client), host6));
    ck_assert(mta_ip_eq(sim_ep_peer_addr(w.server), local6));
    ck_assert_int_ge(w.n_pkt, 3);
    ck_assert_uint_eq(w.pkt[0].flags, SIM_TCP_SYN);
    ck_assert_uint_eq(w.pkt[0].mss, SIM_NET_MSS6);
    ck_assert_uint_eq(w.pkt[1].mss, SIM_NET_MSS6);
    for (i = 0; i < w.n_pkt; i++)
        ck_assert(mta_ip_eq(w.pkt[i].src, i == 1 ? host6 : local6));
    sim_ep_close(w.client);
    world_free(&w);
}
END_TEST

static void ignore_tcp(void *arg, int fd, enum mta_tcp_event ev, const char *data, size_t len,
                       int err)
{
    (void)arg, (void)fd, (void)ev, (void)data, (void)len, (void)err;
}

/* simenv gives the lowest free descriptor number, as POSIX specifies for
 * socket() (XSH 2.14): the numbers reach traces, and a free-list that
 * handed out the most recently freed one instead would change them. */
START_TEST(simenv_lowest_free_descriptor)
{
    struct world w;
    world_init(&w, SIM_CONNECT_ACCEPT);
    struct sim_dns *d = sim_dns_create(w.s, 0, 1000000);
    struct simenv *se = simenv_create(w.s, w.n, d, NULL);
    struct mta_env *env = simenv_env(se);
    int fd[5];

    for (int i = 0; i < 5; i++) {
        fd[i] = env->tcp_connect(env, LOCAL, HOST, 25, ignore_tcp, NULL);
        ck_assert_int_eq(fd[i], 3 + i);
    }
    env->tcp_close(env, 6);
    env->tcp_close(env, 4);
    env->tcp_close(env, 3);
    ck_assert_int_eq(env->tcp_connect(env, LOCAL, HOST, 25, ignore_tcp, NULL), 3);
    ck_assert_int_eq(env->tcp_connect(env, LOCAL, HOST, 25, ignore_tcp, NULL), 4);
    env->tcp_close(env, 5);
    ck_assert_int_eq(env->tcp_connect(env, LOCAL, HOST, 25, ignore_tcp, NULL), 5);
    ck_assert_int_eq(env->tcp_connect(env, LOCAL, HOST, 25, ignore_tcp, NULL), 6);
    ck_assert_int_eq(env->tcp_connect(env, LOCAL, HOST, 25, ignore_tcp, NULL), 8);
    for (int f = 3; f <= 8; f++)
        env->tcp_close(env, f);
    struct simenv_violations v;
    simenv_check(se, &v);
    ck_assert_uint_eq(v.bad_close, 0);
    ck_assert_uint_eq(v.left_open, 0);
    ck_assert_uint_eq(v.opened, v.closed);
    simenv_destroy(se);
    sim_dns_destroy(d);
    world_free(&w);
}
END_TEST

static Suite *net_suite(void)
{
    Suite *su = suite_create("net");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, accept_timing);
    tcase_add_test(tc, refuse_unreachable_timeout_timing);
    tcase_add_test(tc, data_order_and_arrival_times);
    tcase_add_test(tc, fin_after_data_then_epipe);
    tcase_add_test(tc, rst_discards_in_flight_data);
    tcase_add_test(tc, close_with_unread_data_resets);
    tcase_add_test(tc, client_reset_reaches_server);
    tcase_add_test(tc, observer_seq_ack_arithmetic);
    tcase_add_test(tc, delayed_acks_ride_on_replies);
    tcase_add_test(tc, delayed_acks_every_second_full_segment);
    tcase_add_test(tc, observer_refused_and_unreachable);
    tcase_add_test(tc, sync_errors_ports_and_ids);
    tcase_add_test(tc, close_during_handshake);
    tcase_add_test(tc, close_before_the_syn_leaves);
    tcase_add_test(tc, destroy_with_live_connections);
    tcase_add_test(tc, segmentation_keeps_order);
    tcase_add_test(tc, bandwidth_spreads_segments);
    tcase_add_test(tc, back_pressure_writable_and_sent);
    tcase_add_test(tc, zero_window_persist_and_resume);
    tcase_add_test(tc, loss_is_repaired_by_retransmission);
    tcase_add_test(tc, jitter_from_the_seed);
    tcase_add_test(tc, link_overrides_host);
    tcase_add_test(tc, silent_drop_is_half_open);
    tcase_add_test(tc, backlog_full);
    tcase_add_test(tc, random_connect_choice);
    tcase_add_test(tc, max_open_is_emfile);
    tcase_add_test(tc, ip_addresses);
    tcase_add_test(tc, ipv6_connection);
    tcase_add_test(tc, simenv_lowest_free_descriptor);
    suite_add_tcase(su, tc);
    return su;
}

int main(void)
{
    SRunner *sr = srunner_create(net_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
