/*
 * test_net - unit tests for sim/net.c: connect outcomes and timing, stream
 * order, FIN/RST semantics, observer sequence numbers, limits, memory
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"

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
