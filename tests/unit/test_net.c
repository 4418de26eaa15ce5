/*
 * test_net - unit tests for sim/world/net.c: connect outcomes and timing, stream
 * order, FIN/RST semantics, observer sequence numbers, limits, memory; and the
 * descriptor numbers simenv.c gives the core on top of it
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "net.h"
#include "simenv.h"

#define LOCAL 0xC0000201u       /* 192.0.2.1 */
#define HOST 0xC6336401u        /* 198.51.100.1 */
#define L 10000                 /* one-way latency: 10 ms */
#define MAX_LOG 64

struct ev_rec {
    int who;                    /* 0 client, 1 server */
    enum sim_ep_event ev;
    sim_usec at;
    char data[64];
    size_t len;
};

struct world {
    struct sim_sched *s;
    struct sim_net *n;
    sim_ep *client, *server;
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
}

static void client_ev(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    struct world *w = arg;

    ck_assert_ptr_eq(ep, w->client);
    log_ev(w, 0, ev, data, len);
    if (w->close_on_fin && (ev == SIM_EP_FIN || ev == SIM_EP_RST)) {
        sim_ep_close(ep);
        w->client = NULL;
    }
}

static void server_ev(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    struct world *w = arg;

    ck_assert_ptr_eq(ep, w->server);
    log_ev(w, 1, ev, data, len);
    if (w->close_on_fin && (ev == SIM_EP_FIN || ev == SIM_EP_RST)) {
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

START_TEST(accept_timing)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    sim_sched_at(w.s, 5000, noop, NULL);
    sim_sched_run(w.s, -1, 0);              /* start at t = 5 ms */
    ck_assert_int_eq(sim_sched_now(w.s), 5000);
    world_connect(&w);
    ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -ENOTCONN);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.accepts, 1);
    ck_assert_int_eq(w.accepted_at, 5000 + L);
    ck_assert_int_eq(w.n_ev, 1);
    ck_assert_int_eq(w.ev[0].who, 0);
    ck_assert_int_eq(w.ev[0].ev, SIM_EP_CONNECTED);
    ck_assert_int_eq(w.ev[0].at, 5000 + 2 * L);
    ck_assert_uint_eq(sim_ep_conn_id(w.client), 1);
    ck_assert_uint_eq(sim_ep_peer_addr(w.client), HOST);
    ck_assert_uint_eq(sim_ep_peer_addr(w.server), LOCAL);
    ck_assert_int_eq(sim_net_open_count(w.n), 1);
    sim_ep_close(w.client);
    sim_ep_close(w.server);
    ck_assert_int_eq(sim_net_open_count(w.n), 0);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* One failing connect mode: the event and its time (-1 = nothing ever). */
static void check_failure_mode(enum sim_connect_mode mode, uint32_t dst, int expect_ev,
                               sim_usec expect_at)
{
    struct world w;
    int err = 1;

    world_init(&w, mode);
    w.client = sim_net_connect(w.n, LOCAL, dst, 25, client_ev, &w, &err);
    ck_assert_ptr_nonnull(w.client);
    sim_sched_run(w.s, 3600LL * 1000000, 0);
    ck_assert_int_eq(w.accepts, 0);
    if (expect_ev < 0) {
        ck_assert_int_eq(w.n_ev, 0);
    } else {
        ck_assert_int_eq(w.n_ev, 1);
        ck_assert_int_eq(w.ev[0].ev, expect_ev);
        ck_assert_int_eq(w.ev[0].at, expect_at);
        ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -EPIPE);
    }
    ck_assert_int_eq(sim_net_open_count(w.n), 1);
    sim_ep_close(w.client);
    ck_assert_int_eq(sim_net_open_count(w.n), 0);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}

START_TEST(refuse_unreachable_timeout_timing)
{
    check_failure_mode(SIM_CONNECT_REFUSE, HOST, SIM_EP_REFUSED, 2 * L);
    check_failure_mode(SIM_CONNECT_UNREACHABLE, HOST, SIM_EP_UNREACHABLE, 2 * L);
    check_failure_mode(SIM_CONNECT_TIMEOUT, HOST, -1, 0);
    check_failure_mode(SIM_CONNECT_ACCEPT, 0x0A000001u, -1, 0);   /* no such host */
}
END_TEST

START_TEST(data_order_and_arrival_times)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);              /* connected at 2L */
    ck_assert_int_eq(sim_ep_send(w.client, "one", 3), 0);
    ck_assert_int_eq(sim_ep_send(w.client, "two", 3), 0);
    sim_sched_run(w.s, 2 * L + 500, 0);
    ck_assert_int_eq(sim_ep_send(w.client, "three", 5), 0);
    ck_assert_int_eq(sim_ep_send(w.server, "back", 4), 0);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_ev, 5);
    /* Two writes at 2L: two segments, both at 3L, in order, not merged. */
    ck_assert_int_eq(w.ev[1].who, 1);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_DATA);
    ck_assert_int_eq(w.ev[1].len, 3);
    ck_assert(memcmp(w.ev[1].data, "one", 3) == 0);
    ck_assert_int_eq(w.ev[1].at, 3 * L);
    ck_assert(memcmp(w.ev[2].data, "two", 3) == 0);
    ck_assert_int_eq(w.ev[2].at, 3 * L);
    ck_assert(memcmp(w.ev[3].data, "three", 5) == 0);
    ck_assert_int_eq(w.ev[3].at, 3 * L + 500);
    ck_assert_int_eq(w.ev[4].who, 0);
    ck_assert(memcmp(w.ev[4].data, "back", 4) == 0);
    ck_assert_int_eq(w.ev[4].at, 3 * L + 500);
    sim_ep_close(w.client);
    sim_ep_close(w.server);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

START_TEST(fin_after_data_then_epipe)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_ep_send(w.server, "a", 1), 0);
    ck_assert_int_eq(sim_ep_send(w.server, "b", 1), 0);
    sim_ep_close(w.server);
    w.server = NULL;
    /* Until the FIN arrives the client may still write. */
    ck_assert_int_eq(sim_ep_send(w.client, "late", 4), 0);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_ev, 4);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_DATA);
    ck_assert_int_eq(w.ev[2].ev, SIM_EP_DATA);
    ck_assert_int_eq(w.ev[3].ev, SIM_EP_FIN);
    ck_assert_int_eq(w.ev[3].at, 3 * L);
    ck_assert(w.ev[1].data[0] == 'a' && w.ev[2].data[0] == 'b');
    ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -EPIPE);
    ck_assert_int_eq(sim_net_live_count(w.n), 1);
    sim_ep_close(w.client);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

START_TEST(rst_discards_in_flight_data)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);              /* t = 2L */
    ck_assert_int_eq(sim_ep_send(w.server, "lost", 4), 0);   /* would arrive at 3L */
    sim_sched_run(w.s, 2 * L + L / 2, 0);
    sim_ep_reset(w.server);
    w.server = NULL;
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_ev, 2);
    ck_assert_int_eq(w.ev[1].who, 0);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_RST);
    ck_assert_int_eq(w.ev[1].at, 2 * L + L / 2 + L);
    ck_assert_int_eq(sim_ep_send(w.client, "x", 1), -EPIPE);
    sim_ep_close(w.client);
    sim_sched_run(w.s, -1, 0);
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
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_ep_send(w.client, "hello", 5), 0);
    sim_ep_reset(w.client);
    w.client = NULL;
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_ev, 2);
    ck_assert_int_eq(w.ev[1].who, 1);
    ck_assert_int_eq(w.ev[1].ev, SIM_EP_RST);
    ck_assert_int_eq(w.ev[1].at, 3 * L);
    ck_assert_ptr_null(w.server);           /* closed from its handler */
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* The whole exchange as a wire trace: handshake, data both ways, FIN both ways. */
START_TEST(observer_seq_ack_arithmetic)
{
    struct world w;
    const struct sim_packet *p;
    int i;

    world_init(&w, SIM_CONNECT_ACCEPT);
    sim_net_set_observer(w.n, on_packet, &w);
    w.close_on_fin = 1;
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);                       /* handshake done at 2L */
    ck_assert_int_eq(sim_ep_send(w.server, "220 hi\r\n", 8), 0);     /* arrives 3L */
    ck_assert_int_eq(sim_ep_send(w.client, "EHLO x\r\n", 8), 0);     /* arrives 3L */
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_ep_send(w.client, "QUIT\r\n", 6), 0);       /* at 3L */
    sim_ep_close(w.client);                           /* FIN after the data */
    w.client = NULL;
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);

    /* Expected: time, from client?, flags, seq, ack, len */
    struct { sim_usec t; int from_client; uint8_t flags; uint32_t seq, ack; size_t len; } want[] = {
        { 0,     1, SIM_TCP_SYN,                 0, 0, 0 },
        { L,     0, SIM_TCP_SYN | SIM_TCP_ACK,   0, 1, 0 },
        { 2 * L, 1, SIM_TCP_ACK,                 1, 1, 0 },
        { 2 * L, 0, SIM_TCP_PSH | SIM_TCP_ACK,   1, 1, 8 },   /* banner */
        { 2 * L, 1, SIM_TCP_PSH | SIM_TCP_ACK,   1, 1, 8 },   /* EHLO, banner not yet seen */
        { 3 * L, 1, SIM_TCP_ACK,                 9, 9, 0 },   /* client acks the banner */
        { 3 * L, 0, SIM_TCP_ACK,                 9, 9, 0 },   /* server acks EHLO */
        { 3 * L, 1, SIM_TCP_PSH | SIM_TCP_ACK,   9, 9, 6 },   /* QUIT */
        { 3 * L, 1, SIM_TCP_FIN | SIM_TCP_ACK,  15, 9, 0 },
        { 4 * L, 0, SIM_TCP_ACK,                 9, 15, 0 },  /* server acks QUIT */
        { 4 * L, 0, SIM_TCP_ACK,                 9, 16, 0 },  /* FIN consumed one */
        { 4 * L, 0, SIM_TCP_FIN | SIM_TCP_ACK,   9, 16, 0 },  /* server closes on FIN */
        { 5 * L, 1, SIM_TCP_ACK,                16, 10, 0 },  /* last ACK */
    };
    ck_assert_int_eq(w.n_pkt, (int) (sizeof want / sizeof want[0]));
    for (i = 0; i < w.n_pkt; i++) {
        p = &w.pkt[i];
        ck_assert_msg(p->time == want[i].t, "packet %d time %lld", i, (long long) p->time);
        ck_assert_uint_eq(p->conn_id, 1);
        ck_assert_uint_eq(p->src, want[i].from_client ? LOCAL : HOST);
        ck_assert_uint_eq(p->sport, want[i].from_client ? 40000 : 25);
        ck_assert_uint_eq(p->dport, want[i].from_client ? 25 : 40000);
        ck_assert_msg(p->flags == want[i].flags, "packet %d flags %x", i, p->flags);
        ck_assert_msg(p->seq == want[i].seq, "packet %d seq %u", i, p->seq);
        ck_assert_msg(p->ack == want[i].ack, "packet %d ack %u", i, p->ack);
        ck_assert_uint_eq(p->len, want[i].len);
        ck_assert_int_eq(p->icmp_unreachable, 0);
    }
    world_free(&w);
}
END_TEST

START_TEST(observer_refused_and_unreachable)
{
    struct world w;

    world_init(&w, SIM_CONNECT_REFUSE);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_pkt, 2);
    ck_assert_int_eq(w.pkt[1].time, L);
    ck_assert_uint_eq(w.pkt[1].flags, SIM_TCP_RST | SIM_TCP_ACK);
    ck_assert_uint_eq(w.pkt[1].ack, 1);
    sim_ep_close(w.client);
    world_free(&w);

    world_init(&w, SIM_CONNECT_UNREACHABLE);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_pkt, 2);
    ck_assert_int_eq(w.pkt[1].icmp_unreachable, 1);
    ck_assert_int_eq(w.pkt[1].time, L);
    ck_assert_uint_eq(w.pkt[1].src, HOST);
    ck_assert_uint_eq(w.pkt[1].dst, LOCAL);
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
    ck_assert_ptr_null(sim_net_connect(w.n, 0x01020304u, HOST, 25, client_ev, &w, &err));
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
    sim_ep_close(a);
    c = sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(sim_ep_conn_id(c), 3);
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

/* Closing before the handshake finished: the server sees a reset, nothing leaks. */
START_TEST(close_during_handshake)
{
    struct world w;

    world_init(&w, SIM_CONNECT_ACCEPT);
    world_connect(&w);
    sim_sched_run(w.s, L + L / 2, 0);          /* accepted, SYN-ACK in flight */
    ck_assert_int_eq(w.accepts, 1);
    sim_ep_close(w.client);
    w.client = NULL;
    w.close_on_fin = 1;
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_ev, 1);
    ck_assert_int_eq(w.ev[0].who, 1);
    ck_assert_int_eq(w.ev[0].ev, SIM_EP_RST);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);

    /* Before the SYN even arrived: the host never hears of it. */
    world_connect(&w);
    sim_sched_run(w.s, sim_sched_now(w.s) + L / 2, 0);
    sim_ep_close(w.client);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.accepts, 1);
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
    sim_sched_run(w.s, -1, 0);
    sim_ep_send(w.client, "pending", 7);
    ck_assert_int_eq(sim_net_live_count(w.n), 1);
    world_free(&w);
}
END_TEST

/* ---- the fault model: links, jitter, bandwidth, segments, drop, backlog ---- */

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

/* A write is cut into segment-sized DATA events, in order, bytes intact. */
START_TEST(segmentation_keeps_order)
{
    struct sim_host h = { .latency = L, .segment = 3 };
    struct world w;
    sim_usec at[16];
    size_t len[16];
    char got[32] = "";
    int i, n;

    world_init_with(&w, &h, 1);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_ep_send(w.client, "abcdefgh", 8), 0);
    sim_sched_run(w.s, -1, 0);
    n = data_arrivals(&w, 1, at, len, 16);
    ck_assert_int_eq(n, 3);                         /* abc def gh */
    for (i = 0; i < n; i++) {
        strncat(got, w.ev[w.n_ev - n + i].data, len[i]);
        ck_assert_int_eq(at[i], at[0]);             /* no bandwidth: together */
    }
    ck_assert_str_eq(got, "abcdefgh");
    ck_assert_uint_eq(len[2], 2);
    world_free(&w);
}
END_TEST

/* Bandwidth spreads the segments: n bytes take ceil(n * 1e6 / B) us each. */
START_TEST(bandwidth_spreads_segments)
{
    struct sim_host h = { .latency = L, .segment = 10, .bandwidth = 1000 };
    struct world w;
    sim_usec at[16], sent;
    size_t len[16];
    int n;

    world_init_with(&w, &h, 1);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    sent = sim_sched_now(w.s);
    ck_assert_int_eq(sim_ep_send(w.client, "0123456789012345678901234", 25), 0);
    sim_sched_run(w.s, -1, 0);
    n = data_arrivals(&w, 1, at, len, 16);
    ck_assert_int_eq(n, 3);
    /* 10 bytes at 1000 B/s = 10 ms each, the last 5 bytes 5 ms; plus L. */
    ck_assert_int_eq(at[0], sent + 10000 + L);
    ck_assert_int_eq(at[1], sent + 20000 + L);
    ck_assert_int_eq(at[2], sent + 25000 + L);
    world_free(&w);
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
                          .bandwidth = UINT64_MAX, .segment = SIZE_MAX };
    struct world w;

    world_init_with(&w, &h, 1);
    ck_assert_int_eq(sim_net_add_link(w.n, &l), 0);
    ck_assert_int_eq(sim_net_add_link(w.n, &l), -1);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.accepted_at, 3 * L);
    ck_assert_int_eq(w.ev[0].ev, SIM_EP_CONNECTED);
    ck_assert_int_eq(w.ev[0].at, 6 * L);
    world_free(&w);
}
END_TEST

/* Silent drop: in-flight data lost, later sends succeed and vanish, no
 * FIN or RST ever arrives; the observer still sees the client's packets. */
START_TEST(silent_drop_is_half_open)
{
    struct sim_host h = { .latency = L };
    struct world w;
    int pkts_before;

    world_init_with(&w, &h, 1);
    sim_net_set_observer(w.n, on_packet, &w);
    world_connect(&w);
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(sim_ep_send(w.server, "220 hi\r\n", 8), 0);
    sim_ep_drop(w.server);                          /* the banner is lost */
    ck_assert_int_eq(sim_ep_send(w.client, "EHLO x\r\n", 8), 0);
    pkts_before = w.n_pkt;
    ck_assert_int_eq(sim_ep_send(w.server, "late\r\n", 6), 0);
    ck_assert_int_eq(w.n_pkt, pkts_before);         /* the host's: not seen */
    sim_ep_close(w.server);
    w.server = NULL;
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_ev, 1);                    /* only CONNECTED */
    ck_assert_int_eq(w.ev[0].ev, SIM_EP_CONNECTED);
    ck_assert_int_eq(sim_ep_send(w.client, "QUIT\r\n", 6), 0);
    pkts_before = w.n_pkt;
    sim_ep_close(w.client);
    w.client = NULL;
    ck_assert_int_eq(w.n_pkt, pkts_before + 1);     /* the client's FIN: seen */
    sim_sched_run(w.s, -1, 0);
    ck_assert_int_eq(w.n_ev, 1);
    ck_assert_int_eq(sim_net_live_count(w.n), 0);
    world_free(&w);
}
END_TEST

/* Backlog 1: a second concurrent SYN is dropped (TIMEOUT) or refused;
 * once the first is released, a new one is accepted. */
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
        sim_sched_run(w.s, -1, 0);
        first = w.client;
        ck_assert_int_eq(w.accepts, 1);
        second = sim_net_connect(w.n, LOCAL, HOST, 25, client_ev, &w, &err);
        w.client = second;
        sim_sched_run(w.s, -1, 0);
        ck_assert_int_eq(w.accepts, 1);
        ck_assert_int_eq(w.ev[w.n_ev - 1].ev, refuse ? SIM_EP_REFUSED : SIM_EP_CONNECTED);
        sim_ep_close(second);
        /* Free the slot: the host releases its side. */
        sim_ep_close(w.server);
        w.server = NULL;
        w.client = first;
        w.close_on_fin = 1;
        sim_sched_run(w.s, -1, 0);
        world_connect(&w);
        sim_sched_run(w.s, -1, 0);
        ck_assert_int_eq(w.accepts, 2);
        sim_ep_close(w.client);
        sim_ep_close(w.server);
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
    tcase_add_test(tc, client_reset_reaches_server);
    tcase_add_test(tc, observer_seq_ack_arithmetic);
    tcase_add_test(tc, observer_refused_and_unreachable);
    tcase_add_test(tc, sync_errors_ports_and_ids);
    tcase_add_test(tc, close_during_handshake);
    tcase_add_test(tc, destroy_with_live_connections);
    tcase_add_test(tc, segmentation_keeps_order);
    tcase_add_test(tc, bandwidth_spreads_segments);
    tcase_add_test(tc, jitter_from_the_seed);
    tcase_add_test(tc, link_overrides_host);
    tcase_add_test(tc, silent_drop_is_half_open);
    tcase_add_test(tc, backlog_full);
    tcase_add_test(tc, random_connect_choice);
    tcase_add_test(tc, max_open_is_emfile);
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
