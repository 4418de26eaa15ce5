/*
 * test_live_env - unit tests for live/live_env.c on loopback: connect
 * outcomes, callbacks never inside the call, data both ways through a real
 * listener, EOF, the host map, back-pressure (short writes, EAGAIN,
 * MTA_TCP_WRITABLE, SIOCOUTQNSD and MTA_TCP_SENT), unmapped targets never
 * contacted, the clock, the descriptor accounting
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "live_env.h"

#define LOOPBACK 0x7F000001u    /* 127.0.0.1 */
#define SCENARIO_ADDR 0xC6336401u   /* 198.51.100.1: only reachable through the map */
#define MAX_LOG 32
#define DEADLINE (3 * MTA_USEC_PER_SEC)

struct ev_log {
    int n;
    enum mta_tcp_event ev[MAX_LOG];
    int err[MAX_LOG];
    char data[256];
    size_t len;
    int in_call;                /* set while the test is inside an env call */
    int accepted_fd;
    struct mta_env *env;
    int close_on_end;           /* close the descriptor on EOF, reset or a failed connect */
    int want;                   /* until_events: stop at this many events (0 = 1) */
};

static void on_tcp(void *arg, int fd, enum mta_tcp_event ev, const char *data, size_t len, int err)
{
    struct ev_log *l = arg;
    ck_assert_msg(!l->in_call, "callback ran inside the call that caused it");
    ck_assert_int_lt(l->n, MAX_LOG);
    l->ev[l->n] = ev;
    l->err[l->n++] = err;
    if (ev == MTA_TCP_DATA && l->len + len < sizeof l->data) {
        memcpy(l->data + l->len, data, len);
        l->len += len;
    }
    if (l->close_on_end && (ev == MTA_TCP_EOF || ev == MTA_TCP_RESET || ev == MTA_TCP_CONNECT_FAILED))
        l->env->tcp_close(l->env, fd);
}

static void on_accept(void *arg, int fd, uint32_t peer, uint16_t port, mta_tcp_cb *cb, void **cb_arg)
{
    struct ev_log *l = arg;
    ck_assert_uint_eq(peer, LOOPBACK);
    ck_assert_uint_gt(port, 0);
    l->accepted_fd = fd;
    *cb = on_tcp;
    *cb_arg = l;
}

static int until_events(void *arg)
{
    const struct ev_log *l = arg;
    return l->n >= (l->want > 0 ? l->want : 1);
}

static struct live_env *make_env(void)
{
    struct live_env *le = live_env_create(1);
    ck_assert_ptr_nonnull(le);
    ck_assert_int_eq(live_env_attach(le, NULL, NULL), 0);
    return le;
}

/* closed_port - a loopback port nobody listens on */
static uint16_t closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOPBACK) };
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* check_and_destroy - the accounting: opened = closed = n, bad closes, none left */
static void check_and_destroy(struct live_env *le, unsigned long n, unsigned long bad_close)
{
    struct simenv_violations v;
    live_env_check(le, &v);
    ck_assert_uint_eq(v.opened, n);
    ck_assert_uint_eq(v.closed, n);
    ck_assert_uint_eq(v.bad_close, bad_close);
    ck_assert_uint_eq(v.left_open, 0);
    live_env_destroy(le);
}

START_TEST(refused_is_connect_failed_later)
{
    struct live_env *le = make_env();
    struct mta_env *env = live_env_env(le);
    struct ev_log l = { .env = env, .close_on_end = 1 };
    l.in_call = 1;
    int fd = env->tcp_connect(env, mta_ip_v4(0xC0000201u), mta_ip_v4(LOOPBACK), closed_port(), on_tcp, &l);
    l.in_call = 0;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(live_env_run(le, live_env_epoch(le) + DEADLINE, until_events, &l), LIVE_STOP_DONE);
    ck_assert_int_eq(l.n, 1);
    ck_assert_int_eq(l.ev[0], MTA_TCP_CONNECT_FAILED);
    ck_assert_int_eq(l.err[0], ECONNREFUSED);
    check_and_destroy(le, 1, 0);
}
END_TEST

START_TEST(data_both_ways_through_the_map_then_eof)
{
    struct live_env *le = make_env();
    struct mta_env *env = live_env_env(le);
    struct ev_log server = { .env = env, .accepted_fd = -1 }, client = { .env = env };
    int lfd = env->tcp_listen(env, LOOPBACK, 0, on_accept, &server);
    ck_assert_int_ge(lfd, 0);
    struct sockaddr_in real = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOPBACK),
                                .sin_port = htons(live_env_listen_port(le, lfd)) };
    ck_assert_int_eq(live_env_map(le, SCENARIO_ADDR, &real), 0);
    ck_assert_int_eq(live_env_map(le, SCENARIO_ADDR, &real), -1);
    client.in_call = 1;
    int fd = env->tcp_connect(env, mta_ip_v4(0xC0000201u), mta_ip_v4(SCENARIO_ADDR), 25, on_tcp, &client);
    client.in_call = 0;
    ck_assert_int_ge(fd, 0);
    live_env_run(le, live_env_epoch(le) + DEADLINE, until_events, &client);
    ck_assert_int_eq(client.ev[0], MTA_TCP_CONNECTED);
    ck_assert_int_eq(env->tcp_write(env, fd, "EHLO x\r\n", 8), 8);
    live_env_run(le, live_env_epoch(le) + DEADLINE, until_events, &server);
    ck_assert_int_ge(server.accepted_fd, 0);
    ck_assert_int_eq(server.ev[0], MTA_TCP_DATA);
    ck_assert_mem_eq(server.data, "EHLO x\r\n", 8);
    ck_assert_int_eq(env->tcp_write(env, server.accepted_fd, "250 ok\r\n", 8), 8);
    env->tcp_close(env, server.accepted_fd);
    client.n = 0;
    client.want = 2;
    live_env_run(le, live_env_epoch(le) + DEADLINE, until_events, &client);
    ck_assert_int_eq(client.n, 2);
    ck_assert_int_eq(client.ev[0], MTA_TCP_DATA);
    ck_assert_mem_eq(client.data, "250 ok\r\n", 8);
    ck_assert_int_eq(client.ev[1], MTA_TCP_EOF);
    /* RFC 9293 3.6: the peer's FIN closes its direction only; writing goes
     * on (the kernel answers it with a RST, the peer having closed). */
    ck_assert_int_eq(env->tcp_write(env, fd, "QUIT\r\n", 6), 6);
    env->tcp_close(env, fd);
    env->tcp_close(env, fd);        /* a second close is counted, not fatal */
    env->tcp_close(env, lfd);
    check_and_destroy(le, 2, 1);
}
END_TEST

/* A peer that does not read: the client's writes fill the send buffer
 * (short count, then -EAGAIN); once the peer reads, one MTA_TCP_WRITABLE;
 * tcp_notify_sent() answers with MTA_TCP_SENT once SIOCOUTQNSD is 0. */
START_TEST(back_pressure_writable_and_sent)
{
    struct live_env *le = make_env();
    struct mta_env *env = live_env_env(le);
    struct ev_log client = { .env = env };
    int small = 4096;
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in real = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(LOOPBACK) };
    socklen_t rlen = sizeof real;
    ck_assert_int_eq(setsockopt(ls, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&real, sizeof real), 0);
    ck_assert_int_eq(listen(ls, 1), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&real, &rlen), 0);
    ck_assert_int_eq(live_env_map(le, SCENARIO_ADDR, &real), 0);
    int fd = env->tcp_connect(env, mta_ip_v4(0xC0000201u), mta_ip_v4(SCENARIO_ADDR), 25, on_tcp, &client);
    live_env_run(le, live_env_epoch(le) + DEADLINE, until_events, &client);
    ck_assert_int_eq(client.ev[0], MTA_TCP_CONNECTED);
    int peer = accept(ls, NULL, NULL);
    ck_assert_int_ge(peer, 0);
    static char block[65536];
    long total = 0;
    int n = 0;
    /* Bounded: Linux's largest send buffer (tcp_wmem[2]) is a few MB. */
    while (total < (64L << 20) && (n = env->tcp_write(env, fd, block, sizeof block)) > 0)
        total += n;
    ck_assert_int_eq(n, -EAGAIN);
    ck_assert_int_gt(total, 0);
    ck_assert_int_ge(env->tcp_unsent(env, fd), 0);
    /* The peer reads everything (the kernel moves it, the loop need not
     * run); then the writer hears of the room. */
    long got = 0;
    while (got < total) {
        ssize_t r = recv(peer, block, sizeof block, 0);
        ck_assert_int_gt(r, 0);
        got += r;
    }
    client.n = 0;
    client.want = 1;
    live_env_run(le, live_env_epoch(le) + 2 * DEADLINE, until_events, &client);
    ck_assert_int_eq(client.n, 1);
    ck_assert_int_eq(client.ev[0], MTA_TCP_WRITABLE);
    ck_assert_int_eq(env->tcp_write(env, fd, "x", 1), 1);
    client.n = 0;
    ck_assert_int_eq(env->tcp_notify_sent(env, fd), 0);
    ck_assert_int_eq(client.n, 0);      /* never inside the call */
    live_env_run(le, live_env_epoch(le) + 3 * DEADLINE, until_events, &client);
    ck_assert_int_eq(client.n, 1);
    ck_assert_int_eq(client.ev[0], MTA_TCP_SENT);
    ck_assert_int_eq(env->tcp_unsent(env, fd), 0);
    env->tcp_close(env, fd);
    close(peer);
    close(ls);
    check_and_destroy(le, 1, 0);
}
END_TEST

START_TEST(unmapped_target_is_never_contacted)
{
    struct live_env *le = make_env();
    struct mta_env *env = live_env_env(le);
    struct ev_log l = { .env = env };
    int fd = env->tcp_connect(env, mta_ip_v4(0xC0000201u), mta_ip_v4(SCENARIO_ADDR), 25, on_tcp, &l);
    ck_assert_int_ge(fd, 0);
    mta_usec_t t0 = env->now(env);
    ck_assert_int_eq(live_env_run(le, live_env_epoch(le) + 200000, until_events, &l),
                     LIVE_STOP_DEADLINE);
    ck_assert_int_eq(l.n, 0);
    ck_assert_int_eq(env->tcp_write(env, fd, "x", 1), -EPIPE);
    /* The clock went on with the real one, and not backwards. */
    ck_assert_int_ge(env->now(env) - t0, 150000);
    env->tcp_close(env, fd);
    ck_assert_int_eq(live_env_open_count(le), 0);
    live_env_destroy(le);
}
END_TEST

static int fired;
static void timer_fn(void *arg) { (void)arg; fired++; }
static int timer_done(void *arg) { (void)arg; return fired > 0; }

START_TEST(timers_fire_on_the_real_clock)
{
    struct live_env *le = make_env();
    struct mta_env *env = live_env_env(le);
    fired = 0;
    mta_usec_t at = env->now(env) + 50000;
    env->timer_start(env, at, timer_fn, NULL);
    ck_assert_uint_eq(live_env_timers_pending(le), 1);
    ck_assert_int_eq(live_env_run(le, live_env_epoch(le) + DEADLINE, timer_done, NULL), LIVE_STOP_DONE);
    ck_assert_int_ge(env->now(env), at);
    ck_assert_uint_eq(live_env_timers_pending(le), 0);
    live_env_destroy(le);
}
END_TEST

START_TEST(parse_addr_port)
{
    struct sockaddr_in a;
    ck_assert_int_eq(live_parse_addr_port("127.0.0.1:2525", &a), 0);
    ck_assert_uint_eq(ntohs(a.sin_port), 2525);
    ck_assert_int_eq(live_parse_addr_port("127.0.0.1:65536", &a), -1);
    ck_assert_int_eq(live_parse_addr_port("127.0.0.1:", &a), -1);
    ck_assert_int_eq(live_parse_addr_port("localhost:25", &a), -1);
    ck_assert_int_eq(live_parse_addr_port(":25", &a), -1);
    ck_assert(live_addr_is_loopback(0x7F0000FEu));
    ck_assert(!live_addr_is_loopback(0xC0000201u));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("live_env");
    TCase *tc = tcase_create("live_env");
    tcase_add_test(tc, refused_is_connect_failed_later);
    tcase_add_test(tc, data_both_ways_through_the_map_then_eof);
    tcase_add_test(tc, back_pressure_writable_and_sent);
    tcase_add_test(tc, unmapped_target_is_never_contacted);
    tcase_add_test(tc, timers_fire_on_the_real_clock);
    tcase_add_test(tc, parse_addr_port);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
