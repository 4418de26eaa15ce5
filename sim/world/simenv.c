/*
 * simenv - the simulated backend of the core's environment interface
 *
 * See simenv.h.  Each open descriptor owns a small record that the
 * network's endpoint handler points at; it is freed when the core closes
 * the descriptor, after which the network never calls the handler again.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fdreserve.h"
#include "prng.h"
#include "liveness.h"
#include "simenv.h"
#include "simtls.h"
#include "textbuf.h"

/* The simulated descriptor table.  While a plugin may see descriptors, the
 * numbers are those fdreserve keeps from the process's real files
 * (fdreserve.h), so none aliases one: 3 to 1023, 1021 at once.  When no
 * plugin is loaded nothing but the simulation ever holds a number, so
 * none can alias a real file and the table grows to Linux's default
 * per-process ceiling (fs.nr_open, 1048576), each number handed out
 * without a system call (simenv_set_private_fds). */
#define SIMENV_FD_BASE FDRESERVE_BASE
#define SIMENV_MAX_FDS FDRESERVE_END
#define SIMENV_MAX_PRIVATE_FDS (1 << 20)

/* A listening descriptor (tcp_listen); NULL ep.  It stays a host on the
 * network after the close, refusing what arrives. */
struct sim_listener {
    struct sim_listener *next;
    struct simenv *se;
    int fd;                         /* -1 once closed */
    uint32_t addr;
    uint16_t port;
    mta_tcp_accept_cb accept;
    void *arg;
};

struct sim_fd {
    struct simenv *se;
    int fd;
    struct sim_listener *listener;  /* a listening descriptor: no ep */
    sim_ep *ep;
    int connected;                  /* SIM_EP_CONNECTED came (or accepted): it has a peer */
    mta_tcp_cb cb;
    void *arg;
    int64_t rx_segments, rx_bytes;  /* DATA events and bytes received */
    struct simtls *tls;             /* after tls_start(): the client's TLS; else NULL */
    struct simtls_buf tls_pend;     /* records the send buffer did not take yet */
};

struct dns_wait {
    struct dns_wait *next, *prev;
    struct simenv *se;
    mta_dns_cb cb;
    void *arg;
};

/* One random stream per purpose, created on first use. */
struct random_stream {
    char *purpose;
    struct sim_prng prng;
};

struct simenv {
    struct mta_env env;
    uint64_t seed;
    struct random_stream *streams;      /* creation order; looked up by purpose */
    int nstreams, streams_cap;
    struct sim_sched *sched;
    struct sim_net *net;
    struct sim_dns *dns;
    struct trace_store *trace;
    struct sim_fd **fds;            /* index = descriptor */
    int nfds;
    /* The free descriptors below hiwater, a binary min-heap: the lowest
     * free number is found without a scan (fd_alloc). */
    int *free_fds;
    int nfree, free_cap;
    int hiwater;                    /* no descriptor at or above it was ever used */
    int private_fds;                /* no plugin sees descriptors (simenv_set_private_fds) */
    struct dns_wait *dns_waiting;
    struct sim_listener *listeners;
    struct simenv_violations v;
    struct liveness *liveness;          /* told of connects and writes; may be NULL */
};

static struct simenv *impl(struct mta_env *env) { return env->impl; }

static void emit(struct simenv *se, const struct mta_trace_rec *rec)
{
    if (se->trace)
        trace_store_add(se->trace, sim_sched_now(se->sched), rec);
}

/* simenv_trace - the sink for the remotes' records */
void simenv_trace(void *arg, const struct mta_trace_rec *rec)
{
    emit(arg, rec);
}

static void rec_begin(struct mta_trace_rec *r, const char *kind, const char *name)
{
    r->kind = kind;
    r->name = name;
    r->kind_len = r->name_len = 0;      /* not given: the sink measures */
    r->nfields = 0;
}

static void rec_num(struct mta_trace_rec *r, const char *key, int64_t v, char *buf, size_t size)
{
    assert(r->nfields < MTA_TRACE_MAX_FIELDS);
    struct textbuf t = textbuf_on(buf, size);
    textbuf_i64(&t, v);
    r->field[r->nfields++] = (struct mta_trace_field){ key, buf, t.len, v, 1, 0 };
}

static void rec_str(struct mta_trace_rec *r, const char *key, const char *s)
{
    assert(r->nfields < MTA_TRACE_MAX_FIELDS);
    r->field[r->nfields++] = (struct mta_trace_field){ key, s, strlen(s), 0, 0, 0 };
}

static void ipv4(uint32_t a, char buf[16])
{
    struct textbuf t = textbuf_on(buf, 16);
    textbuf_ipv4(&t, a);
}

/* ip_port - "192.0.2.1:25", or "[2001:db8::1]:25" for IPv6 (RFC 3986 3.2.2's
 * brackets, which keep the port apart from the address's colons) */
static void ip_port(mta_ip a, unsigned port, char *out, size_t size)
{
    char t[MTA_IP_TEXT];
    mta_ip_format(a, t);
    if (mta_ip_is_v4(a))
        snprintf(out, size, "%s:%u", t, port);
    else
        snprintf(out, size, "[%s]:%u", t, port);
}

static void trace_conn(struct simenv *se, const char *name, int fd, const char *extra_key,
                       const char *extra)
{
    if (!se->trace)
        return;
    struct mta_trace_rec r;
    char b[32];
    rec_begin(&r, "conn", name);
    rec_num(&r, "fd", fd, b, sizeof b);
    if (extra_key)
        rec_str(&r, extra_key, extra);
    emit(se, &r);
}

/* ---- clock and timers ------------------------------------------------- */

static mta_usec_t env_now(struct mta_env *env) { return sim_sched_now(impl(env)->sched); }

static mta_timer_id env_timer_start(struct mta_env *env, mta_usec_t at, void (*fn)(void *),
                                    void *arg)
{
    return sim_sched_at_kind(impl(env)->sched, at, fn, arg, SIM_EV_CORE_TIMER);
}

static void env_timer_cancel(struct mta_env *env, mta_timer_id id)
{
    sim_sched_cancel(impl(env)->sched, id);
}

/* ---- DNS ---------------------------------------------------------------- */

static const char *type_name(enum mta_dns_type t)
{
    return t == MTA_DNS_MX ? "MX" : t == MTA_DNS_A ? "A" : t == MTA_DNS_AAAA ? "AAAA"
           : t == MTA_DNS_CNAME ? "CNAME" : "?";
}

static void dns_answered(void *arg, const char *name, enum mta_dns_type type,
                         const struct mta_dns_answer *ans)
{
    struct dns_wait *w = arg;
    struct simenv *se = w->se;
    if (w->prev)
        w->prev->next = w->next;
    else
        se->dns_waiting = w->next;
    if (w->next)
        w->next->prev = w->prev;
    if (se->trace) {
        static const char *const rcodes[] = { "NOERROR", "NXDOMAIN", "SERVFAIL", "TIMEOUT" };
        struct mta_trace_rec r;
        char b[32];
        rec_begin(&r, "dns", "answer");
        rec_str(&r, "name", name);
        rec_str(&r, "type", type_name(type));
        rec_str(&r, "rcode", rcodes[ans->rcode]);
        rec_num(&r, "count", ans->count, b, sizeof b);
        emit(se, &r);
    }
    mta_dns_cb cb = w->cb;
    void *cbarg = w->arg;
    free(w);
    cb(cbarg, name, type, ans);
}

static void env_dns_query(struct mta_env *env, const char *name, enum mta_dns_type type,
                          mta_dns_cb cb, void *arg)
{
    struct simenv *se = impl(env);
    struct dns_wait *w = calloc(1, sizeof *w);
    if (w == NULL) {
        fprintf(stderr, "mtasim: out of memory in env_dns_query\n");
        abort();
    }
    w->se = se;
    w->cb = cb;
    w->arg = arg;
    w->next = se->dns_waiting;
    if (se->dns_waiting)
        se->dns_waiting->prev = w;
    se->dns_waiting = w;
    if (se->trace) {
        /* n = which query this is for (name, type), from 1: scenarios
         * assert the core's caching with it. */
        struct mta_trace_rec r;
        char b[32];
        rec_begin(&r, "dns", "query");
        rec_str(&r, "name", name);
        rec_str(&r, "type", type_name(type));
        rec_num(&r, "n", (int64_t)sim_dns_query_count(se->dns, name, type) + 1, b, sizeof b);
        emit(se, &r);
    }
    sim_dns_query(se->dns, name, type, dns_answered, w);
}

/* ---- TCP ---------------------------------------------------------------- */

static struct sim_fd *fd_get(struct simenv *se, int fd)
{
    if (fd < 0 || fd >= se->nfds)
        return NULL;
    return se->fds[fd];
}

/* fd_claim - fd, once the real number is reserved for it; -1 when a
 * plugin closed the number and a real file took it (fdreserve.h).  With
 * private descriptors nobody calls the system on the number: no claim. */
static int fd_claim(const struct simenv *se, int fd)
{
    if (se->private_fds || fdreserve_claim(fd) == 0)
        return fd;
    fprintf(stderr, "mtasim: descriptor %d was closed behind the simulation's back (by a "
            "plugin) and reused by a real file: not handed out\n", fd);
    return -1;
}

/* fd_alloc - the descriptor the next connect, accept or listen gets: the
 * lowest unused number, as POSIX specifies for open(), socket() and accept()
 * (XSH 2.14 "File Descriptor Allocation"); -1 when all are in use.  Not yet
 * taken: fd_take does that once the descriptor is stored. */
static int fd_alloc(struct simenv *se)
{
    if (se->nfree > 0)
        return fd_claim(se, se->free_fds[0]);
    int fd = se->hiwater < SIMENV_FD_BASE ? SIMENV_FD_BASE : se->hiwater;
    if (fd < se->nfds)
        return fd_claim(se, fd);
    if (se->nfds >= (se->private_fds ? SIMENV_MAX_PRIVATE_FDS : SIMENV_MAX_FDS))
        return -1;
    int want = fd + 1;
    int cap = se->nfds ? se->nfds : 16;
    while (cap < want)
        cap *= 2;
    struct sim_fd **p = realloc(se->fds, (size_t)cap * sizeof *p);
    if (p == NULL)
        return -1;
    for (int i = se->nfds; i < cap; i++)
        p[i] = NULL;
    se->fds = p;
    se->nfds = cap;
    return fd_claim(se, fd);
}

/* fd_take - fd, just returned by fd_alloc, now holds f */
static void fd_take(struct simenv *se, int fd, struct sim_fd *f)
{
    se->fds[fd] = f;
    if (se->nfree > 0) {
        assert(se->free_fds[0] == fd);
        int *h = se->free_fds, n = --se->nfree, i = 0, v = h[n];
        for (;;) {                  /* sift the last one down from the root */
            int k = 2 * i + 1;
            if (k >= n)
                break;
            if (k + 1 < n && h[k + 1] < h[k])
                k++;
            if (h[k] >= v)
                break;
            h[i] = h[k];
            i = k;
        }
        if (n > 0)
            h[i] = v;
        return;
    }
    assert(fd == (se->hiwater < SIMENV_FD_BASE ? SIMENV_FD_BASE : se->hiwater));
    se->hiwater = fd + 1;
}

/* fd_release - fd is unused again */
static void fd_release(struct simenv *se, int fd)
{
    se->fds[fd] = NULL;
    if (se->nfree == se->free_cap) {
        int cap = se->free_cap ? 2 * se->free_cap : 64;
        int *h = realloc(se->free_fds, (size_t)cap * sizeof *h);
        if (h == NULL)
            abort();
        se->free_fds = h;
        se->free_cap = cap;
    }
    int *h = se->free_fds, i = se->nfree++;
    while (i > 0 && h[(i - 1) / 2] > fd) {  /* sift up */
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = fd;
}

static void tls_event(struct sim_fd *f, enum sim_ep_event ev, const char *data, size_t len);

static void ep_event(void *arg, sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    (void)ep;
    struct sim_fd *f = arg;
    struct simenv *se = f->se;
    if (f->tls != NULL && (ev == SIM_EP_DATA || (f->tls->state != SIMTLS_UP &&
                           (ev == SIM_EP_FIN || ev == SIM_EP_RST || ev == SIM_EP_TIMEDOUT)))) {
        if (f->tls->state == SIMTLS_FAILED)
            return;         /* said once; only the close is left */
        tls_event(f, ev, data, len);
        return;
    }
    if (f->tls != NULL && ev == SIM_EP_WRITABLE && f->tls_pend.len > 0) {
        /* Our own records first; the application hears of room after. */
        int n = sim_ep_write(f->ep, f->tls_pend.p, f->tls_pend.len);
        if (n < 0 && n != -EAGAIN) {
            f->cb(f->arg, f->fd, MTA_TCP_WRITABLE, NULL, 0, 0);
            return;
        }
        if (n > 0) {
            memmove(f->tls_pend.p, f->tls_pend.p + n, f->tls_pend.len - (size_t)n);
            f->tls_pend.len -= (size_t)n;
        }
        if (f->tls_pend.len > 0)
            return;         /* short again: another WRITABLE comes */
    }
    switch (ev) {
    case SIM_EP_CONNECTED:
        f->connected = 1;
        trace_conn(se, "established", f->fd, NULL, NULL);
        f->cb(f->arg, f->fd, MTA_TCP_CONNECTED, NULL, 0, 0);
        return;
    case SIM_EP_REFUSED:
        trace_conn(se, "refused", f->fd, NULL, NULL);
        f->cb(f->arg, f->fd, MTA_TCP_CONNECT_FAILED, NULL, 0, ECONNREFUSED);
        return;
    case SIM_EP_UNREACHABLE:
        trace_conn(se, "unreachable", f->fd, NULL, NULL);
        f->cb(f->arg, f->fd, MTA_TCP_CONNECT_FAILED, NULL, 0, EHOSTUNREACH);
        return;
    case SIM_EP_DATA:
        f->rx_segments++;
        f->rx_bytes += (int64_t)len;
        f->cb(f->arg, f->fd, MTA_TCP_DATA, data, len, 0);
        return;
    case SIM_EP_FIN:
        trace_conn(se, "eof", f->fd, NULL, NULL);
        f->cb(f->arg, f->fd, MTA_TCP_EOF, NULL, 0, 0);
        return;
    case SIM_EP_RST:
        trace_conn(se, "reset", f->fd, NULL, NULL);
        f->cb(f->arg, f->fd, MTA_TCP_RESET, NULL, 0, ECONNRESET);
        return;
    case SIM_EP_TIMEDOUT:
        /* The stack gave up: on the SYN (Linux's tcp_syn_retries), or on
         * data or FIN nobody acknowledged (tcp_retries2). */
        trace_conn(se, "timedout", f->fd, NULL, NULL);
        if (!f->connected)
            f->cb(f->arg, f->fd, MTA_TCP_CONNECT_FAILED, NULL, 0, ETIMEDOUT);
        else
            f->cb(f->arg, f->fd, MTA_TCP_RESET, NULL, 0, ETIMEDOUT);
        return;
    case SIM_EP_WRITABLE:
        f->cb(f->arg, f->fd, MTA_TCP_WRITABLE, NULL, 0, 0);
        return;
    case SIM_EP_SENT:
        f->cb(f->arg, f->fd, MTA_TCP_SENT, NULL, 0, 0);
        return;
    }
}

static int env_tcp_connect(struct mta_env *env, mta_ip src, mta_ip dst, uint16_t port,
                           mta_tcp_cb cb, void *arg)
{
    struct simenv *se = impl(env);
    char s[MTA_IP_TEXT] = "", dp[MTA_IP_TEXT + 8] = "";
    if (se->trace) {        /* formatted only for the trace */
        mta_ip_format(src, s);
        ip_port(dst, port, dp, sizeof dp);
    }
    int fd = fd_alloc(se);
    if (fd < 0) {
        trace_conn(se, "error", -1, "errno", "EMFILE");
        return -EMFILE;
    }
    struct sim_fd *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -ENOBUFS;
    f->se = se;
    f->fd = fd;
    f->cb = cb;
    f->arg = arg;
    int err = 0;
    f->ep = sim_net_connect(se->net, src, dst, port, ep_event, f, &err);
    if (f->ep == NULL) {
        free(f);
        if (err == -ENETUNREACH)
            liveness_connect(se->liveness, -1, dst);
        if (se->trace) {
            struct mta_trace_rec r;
            rec_begin(&r, "conn", "error");
            rec_str(&r, "src", s);
            rec_str(&r, "dst", dp);
            rec_str(&r, "errno", err == -EADDRNOTAVAIL ? "EADDRNOTAVAIL"
                                 : err == -EMFILE ? "EMFILE"
                                 : err == -ENETUNREACH ? "ENETUNREACH"
                                 : err == -EAFNOSUPPORT ? "EAFNOSUPPORT" : "EIO");
            emit(se, &r);
        }
        return err < 0 ? err : -EIO;
    }
    fd_take(se, fd, f);
    se->v.opened++;
    liveness_connect(se->liveness, fd, dst);
    if (se->trace) {
        struct mta_trace_rec r;
        char b[32];
        rec_begin(&r, "conn", "open");
        rec_num(&r, "fd", fd, b, sizeof b);
        rec_str(&r, "src", s);
        rec_str(&r, "dst", dp);
        emit(se, &r);
    }
    return fd;
}

/* listener_accept - a connection reached the MTA's listener: a descriptor
 * for it, and the core's accept callback */
static void listener_accept(void *arg, sim_ep *ep)
{
    struct sim_listener *l = arg;
    struct simenv *se = l->se;
    int fd = l->fd >= 0 ? fd_alloc(se) : -1;
    struct sim_fd *f = fd >= 0 ? calloc(1, sizeof *f) : NULL;
    if (f == NULL) {
        /* Not listening any more, or no descriptor: the client is refused. */
        sim_ep_reset(ep);
        return;
    }
    f->se = se;
    f->fd = fd;
    f->ep = ep;
    f->connected = 1;
    fd_take(se, fd, f);
    se->v.opened++;
    sim_ep_set_handler(ep, ep_event, f);
    if (se->trace) {
        struct mta_trace_rec r;
        char b[32], src[MTA_IP_TEXT + 8], dst[MTA_IP_TEXT + 8];
        ip_port(sim_ep_peer_addr(ep), sim_ep_peer_port(ep), src, sizeof src);
        ip_port(mta_ip_v4(l->addr), l->port, dst, sizeof dst);
        rec_begin(&r, "conn", "accept");
        rec_num(&r, "fd", fd, b, sizeof b);
        rec_str(&r, "src", src);
        rec_str(&r, "dst", dst);
        emit(se, &r);
    }
    /* The MTA listens on IPv4 only (docs/inbound.md), so its peers are IPv4. */
    assert(mta_ip_is_v4(sim_ep_peer_addr(ep)));
    l->accept(l->arg, fd, mta_ip_v4_of(sim_ep_peer_addr(ep)), sim_ep_peer_port(ep), &f->cb, &f->arg);
    assert(f->cb != NULL);
}

/* env_tcp_listen - the MTA's listener: a host on the network at addr:port */
static int env_tcp_listen(struct mta_env *env, uint32_t addr, uint16_t port,
                          mta_tcp_accept_cb accept, void *arg)
{
    struct simenv *se = impl(env);
    int fd = fd_alloc(se);
    if (fd < 0)
        return -EMFILE;
    struct sim_listener *l = calloc(1, sizeof *l);
    struct sim_fd *f = calloc(1, sizeof *f);
    if (l == NULL || f == NULL) {
        free(l);
        free(f);
        return -ENOBUFS;
    }
    l->se = se;
    l->fd = fd;
    l->addr = addr;
    l->port = port;
    l->accept = accept;
    l->arg = arg;
    struct sim_host h = { .addr = mta_ip_v4(addr), .port = port, .latency = 1000,
                          .mode = SIM_CONNECT_ACCEPT, .accept = listener_accept,
                          .accept_arg = l };
    if (sim_net_add_host(se->net, &h) < 0) {
        free(l);
        free(f);
        return -EADDRINUSE;
    }
    l->next = se->listeners;
    se->listeners = l;
    f->se = se;
    f->fd = fd;
    f->listener = l;
    fd_take(se, fd, f);
    if (se->trace) {
        struct mta_trace_rec r;
        char b[32], a[16], at[40];
        ipv4(addr, a);
        snprintf(at, sizeof at, "%s:%u", a, port);
        rec_begin(&r, "conn", "listen");
        rec_num(&r, "fd", fd, b, sizeof b);
        rec_str(&r, "addr", at);
        emit(se, &r);
    }
    return fd;
}

/* tls_write - application bytes as records: whole records go to the send
 * buffer while it takes them; the one it took only part of waits in
 * tls_pend (at most one record), and the count is of application bytes.
 * A short count leaves tls_pend non-empty after a short write, so the
 * WRITABLE the contract promises does come (ep_event flushes first). */
static int tls_write(struct sim_fd *f, const void *buf, size_t len)
{
    if (f->tls->state != SIMTLS_UP)
        return -ENOTCONN;
    if (f->tls_pend.len > 0) {
        int n = sim_ep_write(f->ep, f->tls_pend.p, f->tls_pend.len);
        if (n < 0)
            return n;
        memmove(f->tls_pend.p, f->tls_pend.p + n, f->tls_pend.len - (size_t)n);
        f->tls_pend.len -= (size_t)n;
        if (f->tls_pend.len > 0)
            return -EAGAIN;
    }
    size_t taken = 0;
    struct simtls_buf rec = { 0 };
    while (taken < len && f->tls_pend.len == 0) {
        size_t n = len - taken < SIMTLS_PLAIN_MAX ? len - taken : SIMTLS_PLAIN_MAX;
        rec.len = 0;
        simtls_wrap(&rec, (const char *)buf + taken, n);
        int w = sim_ep_write(f->ep, rec.p, rec.len);
        if (w < 0 && w != -EAGAIN) {
            simtls_buf_free(&rec);
            return taken > 0 ? (int)taken : w;
        }
        size_t done = w > 0 ? (size_t)w : 0;
        if (done < rec.len) {
            f->tls_pend.len = 0;
            struct simtls_buf *p = &f->tls_pend;
            if (p->cap < rec.len - done) {
                p->p = realloc(p->p, rec.len - done);
                if (p->p == NULL)
                    abort();
                p->cap = rec.len - done;
            }
            memcpy(p->p, rec.p + done, rec.len - done);
            p->len = rec.len - done;
        }
        taken += n;
        liveness_write(f->se->liveness, f->fd, (const char *)buf + taken - n, n);
    }
    simtls_buf_free(&rec);
    return (int)taken;
}

/* tls_event - the network's events for a descriptor in TLS */
static void tls_event(struct sim_fd *f, enum sim_ep_event ev, const char *data, size_t len)
{
    struct simenv *se = f->se;
    int fd = f->fd;
    if (ev != SIM_EP_DATA) {
        /* The peer went away during the handshake. */
        f->tls->state = SIMTLS_FAILED;
        trace_conn(se, ev == SIM_EP_FIN ? "eof" : ev == SIM_EP_RST ? "reset" : "timedout", fd,
                   NULL, NULL);
        const char *why = ev == SIM_EP_FIN ? "connection closed by the peer"
                          : "connection reset by the peer";
        f->cb(f->arg, fd, MTA_TCP_TLS_FAILED, why, strlen(why),
              ev == SIM_EP_FIN ? MTA_TLS_ERR_CLOSED : MTA_TLS_ERR_RESET);
        return;
    }
    f->rx_segments++;
    struct simtls_buf wire = { 0 }, plain = { 0 };
    enum simtls_state before = f->tls->state;
    int evs = simtls_input(f->tls, data, len, &wire, &plain);
    if (evs & SIMTLS_EV_HELLO) {
        /* A 90-day certificate, 30 days old, for the name tls_start gave. */
        mta_usec_t now = sim_sched_now(se->sched);
        struct simtls_cert cert = f->tls->cert;
        snprintf(cert.alt, sizeof cert.alt, "%s", cert.name);
        cert.not_before = now - 30 * 86400 * MTA_USEC_PER_SEC;
        cert.not_after = now + 60 * 86400 * MTA_USEC_PER_SEC;
        cert.trusted = 1;
        simtls_server_accept(f->tls, &cert, &wire);
    }
    if (wire.len > 0)
        (void)sim_ep_send(f->ep, wire.p, wire.len);
    simtls_buf_free(&wire);
    if (evs & SIMTLS_EV_FAILED) {
        char why[80];
        int alert = f->tls->alert;
        snprintf(why, sizeof why, "the peer sent TLS alert %d (%s)", alert,
                 alert == SIMTLS_ALERT_HANDSHAKE_FAILURE ? "handshake_failure"
                 : alert == SIMTLS_ALERT_PROTOCOL_VERSION ? "protocol_version"
                 : alert == SIMTLS_ALERT_DECODE_ERROR ? "decode_error" : "fatal");
        if (before == SIMTLS_UP) {
            /* A fatal alert later ends the connection like a reset. */
            f->cb(f->arg, fd, MTA_TCP_RESET, NULL, 0, ECONNRESET);
        } else {
            f->cb(f->arg, fd, MTA_TCP_TLS_FAILED, why, strlen(why),
                  alert == SIMTLS_ALERT_PROTOCOL_VERSION ? MTA_TLS_ERR_PROTOCOL_VERSION
                  : alert == SIMTLS_ALERT_DECODE_ERROR ? MTA_TLS_ERR_SYNTAX
                  : MTA_TLS_ERR_HANDSHAKE);
        }
        simtls_buf_free(&plain);
        return;
    }
    if (evs & SIMTLS_EV_UP) {
        trace_conn(se, "tls", fd, "version", "TLSv1.3");
        f->cb(f->arg, fd, MTA_TCP_TLS_UP, NULL, 0, 0);
    }
    /* A callback may have closed fd: then nothing more for it. */
    if (fd_get(se, fd) != f) {
        simtls_buf_free(&plain);
        return;
    }
    if ((evs & SIMTLS_EV_DATA) && plain.len > 0) {
        f->rx_bytes += (int64_t)plain.len;     /* what the application got */
        f->cb(f->arg, fd, MTA_TCP_DATA, (const char *)plain.p, plain.len, 0);
    }
    simtls_buf_free(&plain);
    if ((evs & SIMTLS_EV_CLOSED) && fd_get(se, fd) == f) {
        trace_conn(se, "eof", fd, NULL, NULL);
        f->cb(f->arg, fd, MTA_TCP_EOF, NULL, 0, 0);
    }
}

/* env_tls_start - the client side of simulated TLS on fd (simtls.h) */
static int env_tls_start(struct mta_env *env, int fd, int server, const char *server_name)
{
    struct simenv *se = impl(env);
    struct sim_fd *f = fd_get(se, fd);
    if (f == NULL || f->listener != NULL || !f->connected) {
        se->v.bad_op++;
        return -EBADF;
    }
    if (f->tls != NULL)
        return -EALREADY;
    f->tls = calloc(1, sizeof *f->tls);
    if (f->tls == NULL)
        return -ENOMEM;
    if (server) {
        /* The MTA's own server: it waits for the client's ClientHello and
         * shows a certificate for server_name (tls_event). */
        simtls_init(f->tls, SIMTLS_SERVER);
        snprintf(f->tls->cert.name, sizeof f->tls->cert.name, "%s",
                 server_name != NULL ? server_name : "localhost");
        return 0;
    }
    simtls_init(f->tls, SIMTLS_CLIENT);
    struct simtls_buf hello = { 0 };
    simtls_client_hello(f->tls, server_name, &hello);
    int n = sim_ep_send(f->ep, hello.p, hello.len);
    simtls_buf_free(&hello);
    return n < 0 ? n : 0;
}

static int env_tls_peer(struct mta_env *env, int fd, struct mta_tls_peer *out)
{
    struct sim_fd *f = fd_get(impl(env), fd);
    if (f == NULL || f->tls == NULL || f->tls->state != SIMTLS_UP)
        return -ENOTCONN;
    const struct simtls_cert *c = &f->tls->cert;
    int client = f->tls->role == SIMTLS_CLIENT;     /* a server saw no client certificate */
    *out = (struct mta_tls_peer){ .version = "TLSv1.3", .cipher = "TLS_AES_256_GCM_SHA384",
                                  .bits = 256,
                                  .has_cert = client && (c->name[0] != '\0' || c->alt[0] != '\0'),
                                  .not_before = c->not_before, .not_after = c->not_after,
                                  .trusted = c->trusted };
    snprintf(out->cert_name, sizeof out->cert_name, "%s", c->name);
    snprintf(out->cert_names, sizeof out->cert_names, "%s", c->alt);
    return 0;
}

static int env_tcp_write(struct mta_env *env, int fd, const void *buf, size_t len)
{
    struct simenv *se = impl(env);
    struct sim_fd *f = fd_get(se, fd);
    if (f != NULL && f->listener != NULL)
        return -ENOTCONN;
    if (f == NULL) {
        se->v.bad_op++;
        return -EBADF;
    }
    if (len > INT_MAX)
        len = INT_MAX;      /* the count must fit the return value */
    if (f->tls != NULL)
        return tls_write(f, buf, len);
    int n = sim_ep_write(f->ep, buf, len);
    if (n > 0)
        liveness_write(se->liveness, fd, buf, (size_t)n);
    return n;
}

/* conn_fd - the record of an open connection (not a listener), or NULL */
static struct sim_fd *conn_fd(struct simenv *se, int fd)
{
    struct sim_fd *f = fd_get(se, fd);
    if (f == NULL)
        se->v.bad_op++;
    return f != NULL && f->listener == NULL ? f : NULL;
}

static long env_tcp_unsent(struct mta_env *env, int fd)
{
    struct sim_fd *f = conn_fd(impl(env), fd);
    return f != NULL ? (long)(sim_ep_unsent(f->ep) + f->tls_pend.len) : -EBADF;
}

static int env_tcp_notify_sent(struct mta_env *env, int fd)
{
    struct sim_fd *f = conn_fd(impl(env), fd);
    if (f == NULL)
        return -EBADF;
    sim_ep_notify_sent(f->ep);
    return 0;
}

static void env_tcp_close(struct mta_env *env, int fd)
{
    struct simenv *se = impl(env);
    struct sim_fd *f = fd_get(se, fd);
    if (f == NULL) {
        se->v.bad_close++;
        return;
    }
    if (f->listener != NULL) {
        /* Stop listening; the host stays and refuses from now on. */
        f->listener->fd = -1;
        trace_conn(se, "unlisten", fd, NULL, NULL);
        fd_release(se, fd);
        free(f);
        return;
    }
    if (se->trace) {
        /* How the bytes arrived: segmentation and bandwidth show here. */
        struct mta_trace_rec r;
        char b[4][32];
        uint64_t rtx = sim_ep_retransmits(f->ep);
        rec_begin(&r, "conn", "close");
        rec_num(&r, "fd", fd, b[0], sizeof b[0]);
        rec_num(&r, "rx_segments", f->rx_segments, b[1], sizeof b[1]);
        rec_num(&r, "rx_bytes", f->rx_bytes, b[2], sizeof b[2]);
        if (rtx > 0)        /* segments the MTA's side sent again (loss, drop) */
            rec_num(&r, "retransmits", (int64_t)rtx, b[3], sizeof b[3]);
        emit(se, &r);
    }
    sim_ep_close(f->ep);
    fd_release(se, fd);
    se->v.closed++;
    if (f->tls != NULL) {
        simtls_free(f->tls);
        free(f->tls);
    }
    simtls_buf_free(&f->tls_pend);
    free(f);
}

/* env_random_below - a draw from the purpose's own stream of the run's seed */
static uint64_t env_random_below(struct mta_env *env, const char *purpose, uint64_t n)
{
    struct simenv *se = impl(env);
    struct random_stream *st = NULL;
    for (int i = 0; i < se->nstreams && st == NULL; i++)
        if (strcmp(se->streams[i].purpose, purpose) == 0)
            st = &se->streams[i];
    if (st == NULL) {
        if (se->nstreams == se->streams_cap) {
            se->streams_cap = se->streams_cap ? se->streams_cap * 2 : 8;
            se->streams = realloc(se->streams, (size_t)se->streams_cap * sizeof *se->streams);
            if (se->streams == NULL)
                abort();
        }
        st = &se->streams[se->nstreams++];
        st->purpose = strdup(purpose);
        if (st->purpose == NULL)
            abort();
        sim_prng_init(&st->prng, se->seed, purpose, 0);
    }
    return n <= 1 ? 0 : sim_prng_below(&st->prng, n);
}

void simenv_set_seed(struct simenv *se, uint64_t seed)
{
    se->seed = seed;
}

static void env_trace(struct mta_env *env, const struct mta_trace_rec *rec)
{
    emit(impl(env), rec);
}

/* resolve - getpeername/getsockname on a simulated descriptor (fdreserve.h):
 * what a real TCP socket would answer at this point of its life */
static int resolve(void *arg, int fd, int peer, struct sockaddr_storage *out, socklen_t *outlen)
{
    struct simenv *se = arg;
    const struct sim_fd *f = fd_get(se, fd);
    if (f == NULL)
        return 1;
    mta_ip addr;
    uint16_t port;
    if (f->listener != NULL) {
        if (peer) {
            errno = ENOTCONN;
            return -1;
        }
        addr = mta_ip_v4(f->listener->addr);
        port = f->listener->port;
    } else if (peer) {
        if (!f->connected) {
            errno = ENOTCONN;   /* connect in progress: no peer yet */
            return -1;
        }
        addr = sim_ep_peer_addr(f->ep);
        port = sim_ep_peer_port(f->ep);
    } else {
        addr = sim_ep_local_addr(f->ep);
        port = sim_ep_local_port(f->ep);
    }
    /* The socket is of its binding's family: an IPv4 connection answers a
     * sockaddr_in, an IPv6 one a sockaddr_in6 (RFC 3493 3.3), as Linux does. */
    if (mta_ip_is_v4(addr)) {
        struct sockaddr_in *in = (struct sockaddr_in *)(void *)out;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(mta_ip_v4_of(addr));
        in->sin_port = htons(port);
        *outlen = (socklen_t)sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)out;
        in6->sin6_family = AF_INET6;
        memcpy(in6->sin6_addr.s6_addr, addr.b, 16);
        in6->sin6_port = htons(port);
        *outlen = (socklen_t)sizeof *in6;
    }
    return 0;
}

/* simenv_create - an environment over sched, net and dns */
struct simenv *simenv_create(struct sim_sched *s, struct sim_net *n, struct sim_dns *d,
                             struct trace_store *trace)
{
    struct simenv *se = calloc(1, sizeof *se);
    if (se == NULL)
        return NULL;
    se->sched = s;
    se->net = n;
    se->dns = d;
    se->trace = trace;
    se->seed = 1;
    se->env = (struct mta_env){
        .impl = se,
        .now = env_now,
        .timer_start = env_timer_start,
        .timer_cancel = env_timer_cancel,
        .dns_query = env_dns_query,
        .tcp_connect = env_tcp_connect,
        .tcp_write = env_tcp_write,
        .tcp_unsent = env_tcp_unsent,
        .tcp_notify_sent = env_tcp_notify_sent,
        .tcp_close = env_tcp_close,
        .tcp_listen = env_tcp_listen,
        .tls_start = env_tls_start,
        .tls_peer = env_tls_peer,
        .random_below = env_random_below,
        .trace = trace ? env_trace : NULL,
    };
    fdreserve_set_resolver(resolve, se);
    return se;
}

struct mta_env *simenv_env(struct simenv *se) { return &se->env; }

/* simenv_set_private_fds - no plugin sees descriptors (simenv.h) */
void simenv_set_private_fds(struct simenv *se, int private_fds)
{
    assert(se->nfds <= SIMENV_MAX_FDS);     /* before the table outgrew the reserved range */
    se->private_fds = private_fds != 0;
}

/* simenv_check - the contract breaches seen so far */
/* simenv_set_liveness - tell lv of every connect and write (liveness.h) */
void simenv_set_liveness(struct simenv *se, struct liveness *lv)
{
    se->liveness = lv;
}

void simenv_check(const struct simenv *se, struct simenv_violations *v)
{
    *v = se->v;
    v->left_open = 0;
    for (int fd = 0; fd < se->nfds; fd++)
        v->left_open += se->fds[fd] != NULL;
}

/* simenv_destroy - release what is left (descriptors the core leaked too) */
void simenv_destroy(struct simenv *se)
{
    if (se == NULL)
        return;
    fdreserve_clear_resolver(se);
    for (int fd = 0; fd < se->nfds; fd++)
        if (se->fds[fd]) {
            if (se->fds[fd]->ep)
                sim_ep_close(se->fds[fd]->ep);
            free(se->fds[fd]);
        }
    while (se->listeners) {
        struct sim_listener *next = se->listeners->next;
        free(se->listeners);
        se->listeners = next;
    }
    free(se->fds);
    free(se->free_fds);
    for (int i = 0; i < se->nstreams; i++)
        free(se->streams[i].purpose);
    free(se->streams);
    while (se->dns_waiting) {
        struct dns_wait *next = se->dns_waiting->next;
        free(se->dns_waiting);
        se->dns_waiting = next;
    }
    free(se);
}
