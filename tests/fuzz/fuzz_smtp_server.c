/*
 * fuzz_smtp_server - libFuzzer target: the core's inbound SMTP server
 *
 * core/smtp_server.c, through the core's public interface (mta.h), in a
 * minimal environment of its own (below): a virtual clock with a timer
 * list, DNS that answers NXDOMAIN a millisecond later, outbound connects
 * refused, one listener, and client connections whose bytes come from the
 * input.
 *
 * The input: byte 0 chooses the server's limits (bit 0 require-auth, bit 1
 * small limits: 2 recipients, 200 bytes, 3 errors) and whether the client
 * closes its side at the end (bit 2) or resets (bit 3); byte 1 the size of
 * the pieces the client's bytes arrive in (1..256); byte 2 how many
 * virtual seconds pass between pieces (0..255).  The rest is what the
 * client sends.  Then the clock runs until no timer is left (the idle
 * timeout closes a silent session), and the core shuts down.
 *
 * Oracles: no crash, leak or undefined behaviour; everything the server
 * writes is a sequence of well-formed SMTP replies (smtp_reply_parse()
 * never says -1); nothing is written to or closed on a descriptor after it
 * was closed; every accepted connection is closed exactly once by the end.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mta.h"
#include "smtp_reply.h"

#define MAX_TIMERS 4096
#define MAX_FDS 64
#define OUT_MAX (1 << 20)

struct timer { mta_usec_t at; uint64_t seq; void (*fn)(void *); void *arg; mta_timer_id id; };
struct dns_pending { char name[MTA_DNS_NAME_MAX]; enum mta_dns_type type; mta_dns_cb cb; void *arg; };

static struct {
    mta_usec_t now;
    int ntimers;
    uint64_t seq;
    mta_timer_id next_id;
    mta_tcp_accept_cb accept;
    void *accept_arg;
    int listen_fd;
    struct { int open; int closed_by_core; mta_tcp_cb cb; void *arg; char *out; size_t outlen; } fd[MAX_FDS];
    /* Last, and not cleared per input (E_CLEARED): about 200 KB of which
     * only the first ntimers slots are live. */
    struct timer timers[MAX_TIMERS];
} E;
#define E_CLEARED offsetof(__typeof__(E), timers)

static mta_usec_t env_now(struct mta_env *env) { (void)env; return E.now; }

static mta_timer_id env_timer_start(struct mta_env *env, mta_usec_t at, void (*fn)(void *), void *arg)
{
    (void)env;
    if (at < E.now)
        fuzz_fail("timer in the past: %lld < %lld", (long long)at, (long long)E.now);
    if (E.ntimers == MAX_TIMERS)
        fuzz_fail("more than %d timers at once", MAX_TIMERS);
    struct timer *t = &E.timers[E.ntimers++];
    t->at = at;
    t->seq = E.seq++;
    t->fn = fn;
    t->arg = arg;
    t->id = ++E.next_id;
    return t->id;
}

static void env_timer_cancel(struct mta_env *env, mta_timer_id id)
{
    (void)env;
    for (int i = 0; i < E.ntimers; i++)
        if (E.timers[i].id == id) {
            E.timers[i] = E.timers[--E.ntimers];
            return;
        }
}

/* run_one_timer - the earliest due by `until` (ties by scheduling order); 0 if none */
static int run_one_timer(mta_usec_t until)
{
    int best = -1;
    for (int i = 0; i < E.ntimers; i++)
        if (E.timers[i].at <= until && (best < 0 || E.timers[i].at < E.timers[best].at
                                        || (E.timers[i].at == E.timers[best].at
                                            && E.timers[i].seq < E.timers[best].seq)))
            best = i;
    if (best < 0)
        return 0;
    struct timer t = E.timers[best];
    E.timers[best] = E.timers[--E.ntimers];
    E.now = t.at;
    t.fn(t.arg);
    return 1;
}

static void dns_answer(void *arg)
{
    struct dns_pending *q = arg;
    struct mta_dns_answer a;
    memset(&a, 0, sizeof a);
    a.rcode = MTA_DNS_NXDOMAIN;
    q->cb(q->arg, q->name, q->type, &a);
    free(q);
}

static void env_dns_query(struct mta_env *env, const char *name, enum mta_dns_type type,
                          mta_dns_cb cb, void *arg)
{
    struct dns_pending *q = calloc(1, sizeof *q);
    if (q == NULL)
        abort();
    snprintf(q->name, sizeof q->name, "%s", name);
    q->type = type;
    q->cb = cb;
    q->arg = arg;
    env_timer_start(env, E.now + 1000, dns_answer, q);
}

static int env_tcp_connect(struct mta_env *env, mta_ip src, mta_ip dst, uint16_t port,
                           mta_tcp_cb cb, void *arg)
{
    (void)env, (void)src, (void)dst, (void)port, (void)cb, (void)arg;
    return -ENETUNREACH;
}

static int env_tcp_write(struct mta_env *env, int fd, const void *buf, size_t len)
{
    (void)env;
    if (fd < 0 || fd >= MAX_FDS || !E.fd[fd].open)
        fuzz_fail("write to descriptor %d, which is not open", fd);
    if (E.fd[fd].outlen + len > OUT_MAX)
        return (int)len;    /* the client stopped reading: the bytes vanish */
    char *o = realloc(E.fd[fd].out, E.fd[fd].outlen + len);
    if (o == NULL)
        abort();
    memcpy(o + E.fd[fd].outlen, buf, len);
    E.fd[fd].out = o;
    E.fd[fd].outlen += len;
    return (int)len;        /* all taken (mtasim_env.h: the count written) */
}

static void env_tcp_close(struct mta_env *env, int fd)
{
    (void)env;
    if (fd == E.listen_fd) {
        E.listen_fd = -1;
        return;
    }
    if (fd < 0 || fd >= MAX_FDS || !E.fd[fd].open)
        fuzz_fail("close of descriptor %d, which is not open", fd);
    E.fd[fd].open = 0;
    E.fd[fd].closed_by_core = 1;
}

static int env_tcp_listen(struct mta_env *env, uint32_t addr, uint16_t port,
                          mta_tcp_accept_cb accept, void *arg)
{
    (void)env, (void)addr, (void)port;
    E.accept = accept;
    E.accept_arg = arg;
    E.listen_fd = MAX_FDS;      /* never a connection's number */
    return E.listen_fd;
}

static uint64_t env_random_below(struct mta_env *env, const char *purpose, uint64_t n)
{
    (void)env, (void)purpose;
    return n > 0 ? (E.seq * 2654435761u) % n : 0;
}

static struct mta_env env = {
    .now = env_now, .timer_start = env_timer_start, .timer_cancel = env_timer_cancel,
    .dns_query = env_dns_query, .tcp_connect = env_tcp_connect, .tcp_write = env_tcp_write,
    .tcp_close = env_tcp_close, .tcp_listen = env_tcp_listen, .random_below = env_random_below,
    .trace = NULL,
};

/* check_replies - the server's bytes are SMTP replies, one after another */
static void check_replies(int fd)
{
    static struct smtp_reply r;
    const char *b = E.fd[fd].out;
    size_t len = E.fd[fd].outlen, off = 0;
    while (off < len) {
        size_t used = 0;
        char err[128];
        int rc = smtp_reply_parse(b + off, len - off, &r, &used, err, sizeof err);
        if (rc < 0)
            fuzz_fail("the server wrote a malformed reply at byte %zu: %s: '%.80s'", off, err,
                      b + off);
        if (rc == 0)
            fuzz_fail("the server's output ends in an unfinished reply: '%.80s'", b + off);
        off += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    /* Reset cheaply: everything but the timer table (E_CLEARED). */
    memset(&E, 0, E_CLEARED);
    E.now = 1577836800LL * MTA_USEC_PER_SEC;
    E.listen_fd = -1;
    uint8_t flags = data[0];
    size_t piece = (size_t)data[1] + 1;
    mta_usec_t gap = (mta_usec_t)data[2] * MTA_USEC_PER_SEC;
    data += 3;
    size -= 3;

    struct mta_config cfg;
    mta_config_defaults(&cfg);
    struct mta *m = mta_create(&env, &cfg);
    struct mta_listen_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.require_auth = flags & 1;
    if (flags & 2) {
        lo.max_recipients = 2;
        lo.max_size = 200;
        lo.max_errors = 3;
    }
    mta_add_user(m, "alice", "secret");
    if (mta_listen(m, 0xc0000201u, 25, &lo) != 0 || E.accept == NULL)
        fuzz_fail("mta_listen failed");

    /* One client: accepted as descriptor 3. */
    int fd = 3;
    E.fd[fd].open = 1;
    E.accept(E.accept_arg, fd, 0xc0000263u, 40000, &E.fd[fd].cb, &E.fd[fd].arg);
    if (E.fd[fd].cb == NULL)
        fuzz_fail("accept set no callback");
    while (run_one_timer(E.now))
        ;
    for (size_t off = 0; off < size && E.fd[fd].open; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        E.fd[fd].cb(E.fd[fd].arg, fd, MTA_TCP_DATA, (const char *)data + off, n, 0);
        mta_usec_t until = E.now + gap;
        for (int k = 0; k < 100000 && run_one_timer(until); k++)
            ;
        if (E.now < until)
            E.now = until;
    }
    if (E.fd[fd].open && (flags & 12)) {
        E.fd[fd].cb(E.fd[fd].arg, fd, (flags & 8) ? MTA_TCP_RESET : MTA_TCP_EOF, NULL, 0,
                    (flags & 8) ? ECONNRESET : 0);
    }
    /* Let the clock run: timeouts close what is left, the queue settles. */
    for (int k = 0; k < 100000 && run_one_timer(INT64_MAX); k++)
        ;
    mta_shutdown(m);
    mta_destroy(m);
    for (int i = 0; i < E.ntimers; i++)
        if (E.timers[i].fn == dns_answer)
            free(E.timers[i].arg);
    check_replies(fd);
    if (!E.fd[fd].closed_by_core)
        fuzz_fail("the connection was never closed");
    free(E.fd[fd].out);
    return 0;
}
