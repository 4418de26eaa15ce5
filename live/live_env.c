/*
 * live_env - the live backend of the core's environment: real sockets, real clock
 *
 * SYNOPSIS
 *   See live_env.h.
 *
 * DESCRIPTION
 *   struct live_env embeds the struct mta_env the core gets.  Its table is
 *   simenv's, with now() and the four TCP entries replaced; the simenv
 *   entries find their own state through env->impl (the simenv), the live
 *   ones through the embedding (LIVE_OF), so both halves share one table
 *   without knowing of each other.
 *
 *   Each open descriptor owns a struct live_fd, indexed by the real
 *   descriptor.  The kernel hands a closed number out again at once, so
 *   epoll carries a generation with the number, and every callback is
 *   followed by a look-up: when the core closed the descriptor (and maybe
 *   opened another with the same number) from inside the callback, the
 *   record is gone or has another generation and nothing more is done.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "live_env_int.h"

/* 400 days: after any run's deadline, so it never runs. */
#define LIVE_SENTINEL_AFTER (400LL * 86400 * MTA_USEC_PER_SEC)
#define LIVE_EPOLL_BATCH 64
#define LIVE_MAX_TURNS 100000000ULL


static volatile sig_atomic_t live_signalled;

/* live_die - a broken invariant or an impossible system error: stop loudly */
static void live_die(const char *fn, const char *what)
{
    fprintf(stderr, "%s: %s\n", fn, what);
    abort();
}

/* ---- clock ------------------------------------------------------------- */

/* real_now - the epoch plus the monotonic time since creation */
static mta_usec_t real_now(const struct live_env *le)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return le->epoch + (mta_usec_t)(t.tv_sec - le->mono0.tv_sec) * MTA_USEC_PER_SEC
           + (t.tv_nsec - le->mono0.tv_nsec) / 1000;
}

/* sync_clock - run what is due and move the scheduler's clock to now */
static void sync_clock(struct live_env *le)
{
    sim_sched_run(le->sched, real_now(le), LIVE_MAX_EVENTS_PER_TURN);
}

static mta_usec_t env_now(struct mta_env *env)
{
    return sim_sched_now(LIVE_OF(env)->sched);
}

static void sentinel(void *arg)
{
    (void)arg;
    live_die("live_env_sentinel", "the sentinel event ran: a run went on for 400 days");
}

/* ---- trace ------------------------------------------------------------- */

/* A "conn" record under construction, with room for its strings. */
struct conn_rec {
    struct mta_trace_rec rec;
    char text[MTA_TRACE_MAX_FIELDS][64];
};

static void cr_str(struct conn_rec *c, const char *key, const char *value)
{
    int i = c->rec.nfields++;
    assert(i < MTA_TRACE_MAX_FIELDS);
    snprintf(c->text[i], sizeof c->text[i], "%s", value);
    c->rec.field[i] = (struct mta_trace_field){ key, c->text[i], strlen(c->text[i]), 0, 0, 0 };
}

static void cr_num(struct conn_rec *c, const char *key, int64_t value)
{
    int i = c->rec.nfields;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)value);
    cr_str(c, key, buf);
    c->rec.field[i].num = value;
    c->rec.field[i].has_num = 1;
}

static void cr_begin(struct conn_rec *c, const char *name, int fd)
{
    memset(&c->rec, 0, sizeof c->rec);
    c->rec.kind = "conn";
    c->rec.name = name;
    cr_num(c, "fd", fd);
}

static void cr_emit(struct live_env *le, struct conn_rec *c)
{
    if (le->trace)
        simenv_trace(le->sim, &c->rec);
}

void trace_conn(struct live_env *le, const char *name, int fd)
{
    struct conn_rec c;
    cr_begin(&c, name, fd);
    cr_emit(le, &c);
}

static void addr_port_str(uint32_t addr, uint16_t port, char *buf, size_t size)
{
    snprintf(buf, size, "%u.%u.%u.%u:%u", addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255,
             addr & 255, port);
}

static const char *errno_name(int err)
{
    switch (err) {
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOBUFS: return "ENOBUFS";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETUNREACH: return "ENETUNREACH";
    case EADDRINUSE: return "EADDRINUSE";
    case EACCES: return "EACCES";
    default: return "EIO";
    }
}

/* ---- descriptors ------------------------------------------------------- */

struct live_fd *fd_get(const struct live_env *le, int fd)
{
    return fd >= 0 && fd < LIVE_MAX_FDS ? le->fds[fd] : NULL;
}

/* fd_still - is (fd, gen) the record it was before a callback? */
struct live_fd *fd_still(const struct live_env *le, int fd, uint64_t gen)
{
    struct live_fd *f = fd_get(le, fd);
    return f != NULL && f->gen == gen ? f : NULL;
}

/* fd_new - a record for a fresh descriptor; NULL (s closed) when out of range */
static struct live_fd *fd_new(struct live_env *le, int s, enum live_fd_state state)
{
    if (s >= LIVE_MAX_FDS) {
        close(s);
        return NULL;
    }
    assert(s >= 0 && le->fds[s] == NULL);
    struct live_fd *f = calloc(1, sizeof *f);
    if (f == NULL)
        live_die("live_env_fd_new", "out of memory");
    f->le = le;
    f->fd = s;
    f->gen = ++le->next_gen;
    f->state = state;
    le->fds[s] = f;
    return f;
}

/* fd_watch - set the epoll mask of f (0 = out of the set) */
static void fd_watch(struct live_fd *f, uint32_t mask)
{
    struct live_env *le = f->le;
    if (mask == f->epoll_mask)
        return;
    struct epoll_event ev = { .events = mask, .data.u64 = f->gen << 16 | (uint64_t)f->fd };
    int op = f->epoll_mask == 0 ? EPOLL_CTL_ADD : mask == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (epoll_ctl(le->epfd, op, f->fd, &ev) < 0)
        live_die("live_env_fd_watch", strerror(errno));
    f->epoll_mask = mask;
}

/* fd_rewatch - the mask f's state and buffer call for */
void fd_rewatch(struct live_fd *f)
{
    uint32_t mask = 0;
    if (f->state == LFD_CONNECTING)
        mask = EPOLLOUT;
    else if (f->state == LFD_LISTENING)
        mask = EPOLLIN;
    else if (f->state == LFD_OPEN) {
        if (!f->peer_gone)
            mask |= EPOLLIN | EPOLLRDHUP;
        if (f->want_writable)
            mask |= EPOLLOUT;
    }
    fd_watch(f, mask);
}

/* fd_release - out of the epoll set, closed, forgotten */
static void fd_release(struct live_fd *f)
{
    struct live_env *le = f->le;
    fd_watch(f, 0);
    if (f->failed_timer)
        le->env.timer_cancel(&le->env, f->failed_timer);
    le->ncorked -= f->corked;
    le->nwant_sent -= f->want_sent;
    if (f->state != LFD_LISTENING) {
        assert(le->nopen > 0);
        le->nopen--;
    }
    le->fds[f->fd] = NULL;
    close(f->fd);
    live_tls_free(f->tls);
    free(f);
}

/* ---- output ------------------------------------------------------------ */

/* cork - hold partial segments of f until the end of the loop's turn
 *
 * Everything written while one batch of events runs (the replies to a
 * pipelined group, a client's pipelined commands) then leaves together,
 * in as few segments as the kernel can make (TCP_CORK, tcp(7)); uncork_all()
 * pushes the rest once the batch is done.  Full segments are not held. */
static void cork(struct live_fd *f)
{
    int one = 1;
    if (f->corked)
        return;
    if (setsockopt(f->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one) == 0) {
        f->corked = 1;
        f->le->ncorked++;
    }
}

/* uncork_all - the turn is over: what was held leaves now */
static void uncork_all(struct live_env *le)
{
    int zero = 0;
    for (int fd = 0; fd < LIVE_MAX_FDS && le->ncorked > 0; fd++) {
        struct live_fd *f = le->fds[fd];
        if (f == NULL || !f->corked)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
        f->corked = 0;
        le->ncorked--;
    }
    assert(le->ncorked == 0);
}

/* nodelay - no Nagle: uncorking must push the last partial segment at
 * once, not wait for the peer's (delayed) ACK of the previous one */
static void nodelay(int s)
{
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* unsent_bytes - what the kernel holds that has not left yet (SIOCOUTQNSD) */
static long unsent_bytes(const struct live_fd *f)
{
    int n = 0;
    if (ioctl(f->fd, SIOCOUTQNSD, &n) < 0)
        return -errno;
    return n;
}

/* check_sent - deliver MTA_TCP_SENT to the descriptors whose output left */
static void check_sent(struct live_env *le)
{
    for (int fd = 0; fd < LIVE_MAX_FDS && le->nwant_sent > 0; fd++) {
        struct live_fd *f = le->fds[fd];
        if (f == NULL || !f->want_sent || f->corked)
            continue;
        long n = f->state == LFD_OPEN ? unsent_bytes(f) : 0;
        if (n > 0)
            continue;
        f->want_sent = 0;
        le->nwant_sent--;
        if (f->state == LFD_OPEN)
            f->cb(f->arg, fd, MTA_TCP_SENT, NULL, 0, 0);
    }
}

/* ---- connect ------------------------------------------------------------ */

/* failed_timer - deliver a failure connect() reported synchronously */
static void failed_timer(void *arg)
{
    struct live_fd *f = arg;
    assert(f->state == LFD_FAILED && f->failed_timer != 0);
    f->failed_timer = 0;
    f->state = LFD_SILENT;
    trace_conn(f->le, f->failed_err == ECONNREFUSED ? "refused" : "unreachable", f->fd);
    f->cb(f->arg, f->fd, MTA_TCP_CONNECT_FAILED, NULL, 0, f->failed_err);
}

/* target_of - where a connect to dst:port goes; 0 with *real set, or -1: nowhere */
static int target_of(const struct live_env *le, uint32_t dst, uint16_t port,
                     struct sockaddr_in *real)
{
    for (int i = 0; i < le->nmaps; i++)
        if (le->maps[i].addr == dst) {
            *real = le->maps[i].real;
            return 0;
        }
    if (!live_addr_is_loopback(dst) && !le->allow_remote)
        return -1;
    memset(real, 0, sizeof *real);
    real->sin_family = AF_INET;
    real->sin_addr.s_addr = htonl(dst);
    real->sin_port = htons(port);
    return 0;
}

/* connect_error_kind - how a connect error shows: ECONNREFUSED, EHOSTUNREACH, or 0 = silence */
static int connect_error_kind(int err)
{
    if (err == ECONNREFUSED)
        return ECONNREFUSED;
    if (err == ETIMEDOUT)
        return 0;
    return EHOSTUNREACH;
}

static int env_tcp_connect(struct mta_env *env, mta_ip src6, mta_ip dst6, uint16_t port,
                           mta_tcp_cb cb, void *arg)
{
    struct live_env *le = LIVE_OF(env);
    /* Live mode maps scenario addresses to IPv4 loopback ones (docs/live.md):
     * an IPv6 binding or destination has nowhere to go. */
    if (!mta_ip_is_v4(src6) || !mta_ip_is_v4(dst6))
        return -EAFNOSUPPORT;
    uint32_t src = mta_ip_v4_of(src6), dst = mta_ip_v4_of(dst6);
    struct sockaddr_in real;
    int routed = target_of(le, dst, port, &real) == 0;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct live_fd *f = s >= 0 ? fd_new(le, s, routed ? LFD_CONNECTING : LFD_SILENT) : NULL;
    char a[40], b[40];
    if (f == NULL) {
        struct conn_rec c;
        cr_begin(&c, "error", -1);
        cr_str(&c, "errno", "EMFILE");
        cr_emit(le, &c);
        return -EMFILE;
    }
    f->cb = cb;
    f->arg = arg;
    le->nopen++;
    le->v.opened++;
    struct conn_rec c;
    cr_begin(&c, "open", f->fd);
    addr_port_str(src, 0, a, sizeof a);
    *strrchr(a, ':') = '\0';
    cr_str(&c, "src", a);
    addr_port_str(dst, port, b, sizeof b);
    cr_str(&c, "dst", b);
    if (routed)
        addr_port_str(ntohl(real.sin_addr.s_addr), ntohs(real.sin_port), b, sizeof b);
    cr_str(&c, "real", routed ? b : "none");
    cr_emit(le, &c);
    if (!routed)
        return f->fd;       /* a socket that never connects: the core's timer ends it */
    nodelay(s);
    if (connect(s, (struct sockaddr *)&real, sizeof real) == 0 || errno == EINPROGRESS) {
        fd_rewatch(f);      /* EPOLLOUT tells the outcome, also of an instant success */
        return f->fd;
    }
    int kind = connect_error_kind(errno);
    if (kind == 0) {
        f->state = LFD_SILENT;
        trace_conn(le, "timeout", f->fd);
        return f->fd;
    }
    f->state = LFD_FAILED;
    f->failed_err = kind;
    f->failed_timer = env->timer_start(env, env->now(env), failed_timer, f);
    return f->fd;
}

/* connect_done - EPOLLOUT on a connecting socket: SO_ERROR says how it went */
static void connect_done(struct live_fd *f)
{
    struct live_env *le = f->le;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        f->state = LFD_OPEN;
        fd_rewatch(f);
        trace_conn(le, "established", f->fd);
        f->cb(f->arg, f->fd, MTA_TCP_CONNECTED, NULL, 0, 0);
        return;
    }
    int kind = connect_error_kind(err);
    f->state = LFD_SILENT;
    fd_rewatch(f);
    if (kind == 0) {
        trace_conn(le, "timeout", f->fd);
        return;
    }
    trace_conn(le, kind == ECONNREFUSED ? "refused" : "unreachable", f->fd);
    f->cb(f->arg, f->fd, MTA_TCP_CONNECT_FAILED, NULL, 0, kind);
}

/* ---- reading ------------------------------------------------------------ */

/* readable - data, EOF or a reset on an open descriptor */
static void readable(struct live_fd *f)
{
    struct live_env *le = f->le;
    int fd = f->fd;
    uint64_t gen = f->gen;
    static char buf[LIVE_READ_CHUNK];
    for (int i = 0; i < LIVE_READS_PER_WAKE && f != NULL && !f->peer_gone; i++) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            f->rx_segments++;
            f->rx_bytes += n;
            if (f->tls != NULL)
                tls_readable(f, buf, (size_t)n);
            else
                f->cb(f->arg, fd, MTA_TCP_DATA, buf, (size_t)n, 0);
            f = fd_still(le, fd, gen);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        int err = n < 0 ? errno : 0;    /* ECONNRESET, or ETIMEDOUT: the kernel gave up */
        f->peer_gone = 1;
        /* RFC 9293 3.6: a FIN closes the peer's direction only; what is
         * written after it still goes (mtasim serve answers the commands
         * read before it).  A reset ends both. */
        if (err != 0) {
            f->peer_reset = 1;
            f->want_writable = 0;
        }
        fd_rewatch(f);
        trace_conn(le, err == 0 ? "eof" : err == ETIMEDOUT ? "timedout" : "reset", fd);
        f->cb(f->arg, fd, err ? MTA_TCP_RESET : MTA_TCP_EOF, NULL, 0, err);
        return;
    }
}

/* writable - EPOLLOUT after a short write: the send buffer has room */
static void writable(struct live_fd *f)
{
    if (!f->want_writable)
        return;
    f->want_writable = 0;
    fd_rewatch(f);
    size_t left = 0;
    if (f->tls != NULL && (tls_flush(f) < 0 || (live_tls_pending(f->tls, &left), left > 0)))
        return;         /* OpenSSL's bytes first; another EPOLLOUT comes */
    f->cb(f->arg, f->fd, MTA_TCP_WRITABLE, NULL, 0, 0);
}

/* ---- accepting ------------------------------------------------------------ */

static void accept_ready(struct live_fd *l)
{
    struct live_env *le = l->le;
    int lfd = l->fd;
    uint64_t lgen = l->gen;
    for (int i = 0; i < LIVE_READS_PER_WAKE && fd_still(le, lfd, lgen); i++) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int s = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;     /* EAGAIN, or out of descriptors: the client waits in the backlog */
        }
        struct live_fd *f = fd_new(le, s, LFD_OPEN);
        if (f == NULL)
            continue;
        /* What is written leaves at the end of the loop's turn (cork);
         * Nagle's algorithm would hold back every write after the first
         * until the client's delayed ACK (40 ms on Linux). */
        nodelay(s);
        le->nopen++;
        le->v.opened++;
        uint32_t paddr = ntohl(peer.sin_addr.s_addr);
        uint16_t pport = ntohs(peer.sin_port);
        struct conn_rec c;
        char a[40];
        cr_begin(&c, "accept", s);
        addr_port_str(paddr, pport, a, sizeof a);
        cr_str(&c, "src", a);
        addr_port_str(l->listen_addr, l->listen_port, a, sizeof a);
        cr_str(&c, "dst", a);
        cr_emit(le, &c);
        uint64_t gen = f->gen;
        l->accept(l->accept_arg, s, paddr, pport, &f->cb, &f->arg);
        /* The callee may have refused it (live_env_reset) already. */
        if ((f = fd_still(le, s, gen)) != NULL) {
            assert(f->cb != NULL);
            fd_rewatch(f);
        }
    }
}

static int env_tcp_listen(struct mta_env *env, uint32_t addr, uint16_t port,
                          mta_tcp_accept_cb accept, void *arg)
{
    struct live_env *le = LIVE_OF(env);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(addr) };
    int one = 1;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t slen = sizeof sa;
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 64) < 0
        || getsockname(s, (struct sockaddr *)&sa, &slen) < 0) {
        int err = errno;
        close(s);
        struct conn_rec c;
        cr_begin(&c, "error", -1);
        cr_str(&c, "errno", errno_name(err));
        cr_emit(le, &c);
        return -err;
    }
    struct live_fd *f = fd_new(le, s, LFD_LISTENING);
    if (f == NULL)
        return -EMFILE;
    f->accept = accept;
    f->accept_arg = arg;
    f->listen_addr = addr;
    f->listen_port = ntohs(sa.sin_port);
    fd_rewatch(f);
    struct conn_rec c;
    char a[40];
    cr_begin(&c, "listen", s);
    addr_port_str(addr, f->listen_port, a, sizeof a);
    cr_str(&c, "addr", a);
    cr_emit(le, &c);
    return s;
}

/* ---- write and close ------------------------------------------------------ */

/* env_tcp_write - send(2) on the non-blocking socket: what the kernel takes */
static int env_tcp_write(struct mta_env *env, int fd, const void *buf, size_t len)
{
    struct live_env *le = LIVE_OF(env);
    struct live_fd *f = fd_get(le, fd);
    if (f == NULL) {
        le->v.bad_op++;
        return -EBADF;
    }
    if (f->state == LFD_LISTENING || f->state == LFD_CONNECTING)
        return -ENOTCONN;
    if (f->peer_reset || f->write_shut || f->state == LFD_SILENT || f->state == LFD_FAILED)
        return -EPIPE;
    if (len == 0)
        return 0;
    if (len > INT_MAX)
        len = INT_MAX;
    cork(f);
    if (f->tls != NULL) {
        /* Records OpenSSL made before come first; then all of buf is taken
         * (the memory BIO holds it) and as much as the socket takes is sent. */
        size_t left;
        live_tls_pending(f->tls, &left);
        if (left > 0 && (tls_flush(f) < 0 || (live_tls_pending(f->tls, &left), left > 0)))
            return f->want_writable ? -EAGAIN : -EPIPE;
        int w = live_tls_write(f->tls, buf, len);
        if (w < 0 || tls_flush(f) < 0)
            return -EPIPE;
        return w;
    }
    ssize_t n;
    do
        n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -EPIPE;      /* the peer is gone; reading tells the core how */
    if (n < 0 || (size_t)n < len) {
        /* Full: EPOLLOUT says when there is room (edge, one event). */
        f->want_writable = 1;
        fd_rewatch(f);
    }
    return n < 0 ? -EAGAIN : (int)n;
}

static long env_tcp_unsent(struct mta_env *env, int fd)
{
    struct live_env *le = LIVE_OF(env);
    struct live_fd *f = fd_get(le, fd);
    if (f == NULL || f->state == LFD_LISTENING) {
        le->v.bad_op += f == NULL;
        return -EBADF;
    }
    return f->state == LFD_OPEN ? unsent_bytes(f) : 0;
}

/* env_tcp_notify_sent - MTA_TCP_SENT when SIOCOUTQNSD reaches 0
 *
 * Linux has no event for it: the loop looks at every turn (at least
 * every LIVE_TICK_MS while one is asked for), so the event comes within
 * about a millisecond of the moment, never before it. */
static int env_tcp_notify_sent(struct mta_env *env, int fd)
{
    struct live_env *le = LIVE_OF(env);
    struct live_fd *f = fd_get(le, fd);
    if (f == NULL || f->state == LFD_LISTENING) {
        le->v.bad_op += f == NULL;
        return -EBADF;
    }
    if (!f->want_sent) {
        f->want_sent = 1;
        le->nwant_sent++;
    }
    return 0;
}

static void trace_close(struct live_env *le, struct live_fd *f, int abortive)
{
    struct conn_rec c;
    cr_begin(&c, "close", f->fd);
    cr_num(&c, "rx_segments", f->rx_segments);
    cr_num(&c, "rx_bytes", f->rx_bytes);
    if (abortive)
        cr_str(&c, "abort", "rst");
    cr_emit(le, &c);
}

static void env_tcp_close(struct mta_env *env, int fd)
{
    struct live_env *le = LIVE_OF(env);
    struct live_fd *f = fd_get(le, fd);
    if (f == NULL) {
        le->v.bad_close++;
        return;
    }
    if (f->state == LFD_LISTENING) {
        trace_conn(le, "unlisten", fd);
        fd_release(f);
        return;
    }
    trace_close(le, f, 0);
    le->v.closed++;
    fd_release(f);
}

/* live_env_shutdown_write - FIN after what is buffered; reading goes on */
void live_env_shutdown_write(struct live_env *le, int fd)
{
    struct live_fd *f = fd_get(le, fd);
    if (f == NULL || f->state != LFD_OPEN || f->write_shut)
        return;
    f->write_shut = 1;
    f->want_writable = 0;
    if (f->tls != NULL && live_tls_close_notify(f->tls) == 0)
        (void)tls_flush(f);     /* RFC 8446 6.1: close_notify before the FIN */
    shutdown(fd, SHUT_WR);
    fd_rewatch(f);
}

/* live_env_reset - close with RST (SO_LINGER 0) */
void live_env_reset(struct live_env *le, int fd)
{
    struct live_fd *f = fd_get(le, fd);
    if (f == NULL) {
        le->v.bad_close++;
        return;
    }
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    trace_close(le, f, 1);
    le->v.closed++;
    fd_release(f);
}

/* ---- the loop --------------------------------------------------------------- */

/* dispatch - one epoll event */
static void dispatch(struct live_env *le, const struct epoll_event *ev)
{
    int fd = (int)(ev->data.u64 & 0xffff);
    struct live_fd *f = fd_still(le, fd, ev->data.u64 >> 16);
    if (f == NULL)
        return;     /* closed by an earlier callback of this batch */
    switch (f->state) {
    case LFD_CONNECTING:
        connect_done(f);
        return;
    case LFD_LISTENING:
        accept_ready(f);
        return;
    case LFD_OPEN:
        if (ev->events & EPOLLOUT)
            writable(f);
        if ((f = fd_still(le, fd, ev->data.u64 >> 16)) != NULL
            && (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
            readable(f);
        return;
    case LFD_SILENT:
    case LFD_FAILED:
        return;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    live_signalled = 1;
}

/* live_env_catch_signals - SIGINT and SIGTERM end live_env_run() */
void live_env_catch_signals(struct live_env *le)
{
    (void)le;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;      /* no SA_RESTART: epoll_wait returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* live_env_run - the event loop; see live_env.h */
enum live_stop live_env_run(struct live_env *le, mta_usec_t until, int (*done)(void *arg),
                            void *arg)
{
    struct epoll_event evs[LIVE_EPOLL_BATCH];
    for (unsigned long long turn = 0; turn < LIVE_MAX_TURNS; turn++) {
        mta_usec_t now = real_now(le);
        if (now >= until)
            return LIVE_STOP_DEADLINE;
        sync_clock(le);
        if (done(arg))
            return LIVE_STOP_DONE;
        if (live_signalled)
            return LIVE_STOP_SIGNAL;
        /* What the timers wrote leaves before the loop sleeps. */
        uncork_all(le);
        check_sent(le);
        mta_usec_t left_ms = (until - now + 999) / 1000;
        int wait_ms = live_env_timers_pending(le) > 0 || le->nwant_sent > 0 ? LIVE_TICK_MS
                                                                            : LIVE_IDLE_WAKE_MS;
        if (left_ms < wait_ms)
            wait_ms = (int)left_ms;
        int n = epoll_wait(le->epfd, evs, LIVE_EPOLL_BATCH, wait_ms);
        if (n < 0 && errno != EINTR)
            live_die("live_env_run", strerror(errno));
        /* What is due runs before the I/O that arrived after it. */
        sync_clock(le);
        for (int i = 0; i < n; i++)
            dispatch(le, &evs[i]);
        uncork_all(le);
        check_sent(le);
    }
    return LIVE_STOP_DEADLINE;
}

/* ---- setup -------------------------------------------------------------------- */

/* live_env_create - the real-time scheduler, the epoll set, the epoch */
struct live_env *live_env_create(uint64_t seed)
{
    struct live_env *le = calloc(1, sizeof *le);
    if (le == NULL)
        return NULL;
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &le->mono0);
    le->epoch = (mta_usec_t)rt.tv_sec * MTA_USEC_PER_SEC + rt.tv_nsec / 1000;
    le->seed = seed;
    le->epfd = epoll_create1(EPOLL_CLOEXEC);
    le->sched = sim_sched_create(le->epoch);
    le->net = le->sched ? sim_net_create(le->sched) : NULL;
    if (le->epfd < 0 || le->net == NULL) {
        live_env_destroy(le);
        return NULL;
    }
    sim_net_set_seed(le->net, seed);
    sim_sched_at(le->sched, le->epoch + LIVE_SENTINEL_AFTER, sentinel, NULL);
    return le;
}

/* live_env_attach - simenv's table over dns and trace, with the live TCP */
int live_env_attach(struct live_env *le, struct sim_dns *dns, struct trace_store *trace)
{
    assert(le->sim == NULL);
    le->sim = simenv_create(le->sched, le->net, dns, trace);
    if (le->sim == NULL)
        return -1;
    simenv_set_seed(le->sim, le->seed);
    le->trace = trace;
    le->env = *simenv_env(le->sim);
    le->env.now = env_now;
    le->env.tcp_connect = env_tcp_connect;
    le->env.tcp_write = env_tcp_write;
    le->env.tcp_unsent = env_tcp_unsent;
    le->env.tcp_notify_sent = env_tcp_notify_sent;
    le->env.tcp_close = env_tcp_close;
    le->env.tcp_listen = env_tcp_listen;
    le->env.tls_start = env_tls_start;
    le->env.tls_peer = env_tls_peer;
    return 0;
}

struct mta_env *live_env_env(struct live_env *le)
{
    assert(le->sim != NULL);
    return &le->env;
}

struct sim_sched *live_env_sched(struct live_env *le) { return le->sched; }
struct sim_net *live_env_net(struct live_env *le) { return le->net; }
mta_usec_t live_env_epoch(const struct live_env *le) { return le->epoch; }

/* live_env_trace - the sink for sim components' records (sim_trace_fn) */
void live_env_trace(void *arg, const struct mta_trace_rec *rec)
{
    struct live_env *le = arg;
    if (le->trace)
        simenv_trace(le->sim, rec);
}

/* live_env_map - connections to addr go to real */
int live_env_map(struct live_env *le, uint32_t addr, const struct sockaddr_in *real)
{
    if (le->nmaps == LIVE_MAX_MAPS)
        return -1;
    for (int i = 0; i < le->nmaps; i++)
        if (le->maps[i].addr == addr)
            return -1;
    le->maps[le->nmaps].addr = addr;
    le->maps[le->nmaps].real = *real;
    le->nmaps++;
    return 0;
}

void live_env_allow_remote_targets(struct live_env *le, int allow) { le->allow_remote = allow; }

/* live_env_timers_pending - scheduled events besides the sentinel */
size_t live_env_timers_pending(const struct live_env *le)
{
    size_t n = sim_sched_pending(le->sched);
    assert(n >= 1);
    return n - 1;
}

int live_env_open_count(const struct live_env *le) { return le->nopen; }

uint16_t live_env_listen_port(const struct live_env *le, int fd)
{
    const struct live_fd *f = fd_get(le, fd);
    return f != NULL && f->state == LFD_LISTENING ? f->listen_port : 0;
}

/* live_env_check - the descriptor accounting, as simenv_check() gives it */
void live_env_check(const struct live_env *le, struct simenv_violations *v)
{
    *v = le->v;
    v->left_open = (unsigned long)le->nopen;
}

/* live_env_destroy - close what is left (what the core leaked too) */
void live_env_destroy(struct live_env *le)
{
    if (le == NULL)
        return;
    for (int fd = 0; fd < LIVE_MAX_FDS; fd++)
        if (le->fds[fd] != NULL) {
            le->fds[fd]->failed_timer = 0;  /* the scheduler goes below */
            fd_release(le->fds[fd]);
        }
    SSL_CTX_free(le->tls_server);
    SSL_CTX_free(le->tls_client);
    simenv_destroy(le->sim);
    sim_net_destroy(le->net);
    sim_sched_destroy(le->sched);
    if (le->epfd >= 0)
        close(le->epfd);
    free(le);
}

/* live_parse_addr_port - "A.B.C.D:PORT", PORT 0..65535 */
int live_parse_addr_port(const char *text, struct sockaddr_in *out)
{
    const char *colon = strrchr(text, ':');
    char host[64];
    if (colon == NULL || colon == text || (size_t)(colon - text) >= sizeof host)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535 || colon[1] == '-')
        return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

int live_addr_is_loopback(uint32_t addr) { return (addr >> 24) == 127; }
