/*
 * mtasim_env.h - the boundary between the MTA core and the world
 *
 * The core never reads a clock, never resolves a name, never opens a
 * socket and never writes a file.  Everything it needs from outside goes
 * through one struct mta_env: a table of function pointers plus an opaque
 * implementation pointer.  sim/ implements it with a virtual clock and
 * simulated hosts; a live backend can implement it with epoll and real
 * sockets.  Same core, two worlds (cf. Redis ae.c and its backends).
 *
 * Contract for every implementation:
 *   - now() never goes backwards.
 *   - Callbacks (timers, DNS answers, TCP events) are never invoked from
 *     inside the call that requested them; they run later, from the
 *     implementation's event loop.
 *   - tcp_connect() returns a descriptor >= 0 or a negative errno for a
 *     synchronous failure (-EMFILE, -EADDRNOTAVAIL, -ENETUNREACH).
 *     An asynchronous outcome arrives as one MTA_TCP_CONNECTED or
 *     MTA_TCP_CONNECT_FAILED event.
 *   - An accepted descriptor (tcp_listen) delivers MTA_TCP_DATA, EOF and
 *     RESET like a connected one and is closed with tcp_close().
 *   - Writing is paced by the connection, as on a non-blocking socket
 *     (see "Back-pressure" below): nothing is buffered without bound,
 *     neither by the caller nor by the implementation.
 *   - After tcp_close(fd) no callback for fd runs again.  The core closes
 *     every descriptor it opened exactly once, whatever happened to the
 *     peer.
 *   - trace() copies what it needs; the record is only valid during the
 *     call.
 *   - random_below() is a pure function of the environment's seed, the
 *     purpose and how often that purpose was drawn before.
 */
#ifndef MTASIM_ENV_H
#define MTASIM_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "mta_ip.h"

/* Microseconds since the Unix epoch (virtual in the simulator). */
typedef int64_t mta_usec_t;
typedef uint64_t mta_timer_id;

#define MTA_USEC_PER_SEC 1000000LL

/* ---- DNS ------------------------------------------------------------ */
/* The RR TYPE codes of RFC 1035 3.2.2 and, for AAAA, RFC 3596 2.1. */
enum mta_dns_type { MTA_DNS_A = 1, MTA_DNS_CNAME = 5, MTA_DNS_MX = 15, MTA_DNS_AAAA = 28 };

enum mta_dns_rcode {
    MTA_DNS_NOERROR = 0,  /* an answer, possibly with no records (NODATA) */
    MTA_DNS_NXDOMAIN,     /* the name does not exist */
    MTA_DNS_SERVFAIL,     /* the server failed to answer */
    MTA_DNS_TIMEOUT,      /* no answer before the resolver gave up */
};

#define MTA_DNS_MAX_RR 16       /* records kept from one answer */
#define MTA_DNS_NAME_MAX 256    /* including the terminating NUL */

struct mta_dns_rr {
    enum mta_dns_type type;
    uint16_t pref;                  /* MX preference */
    char name[MTA_DNS_NAME_MAX];    /* MX exchange or CNAME target; "" or "." for a null MX */
    uint32_t addr;                  /* A record, host byte order */
    uint8_t addr6[16];              /* AAAA record, network byte order (RFC 3596 2.2) */
    uint32_t ttl;                   /* seconds */
};

struct mta_dns_answer {
    enum mta_dns_rcode rcode;
    int count;                      /* 0 .. MTA_DNS_MAX_RR */
    struct mta_dns_rr rr[MTA_DNS_MAX_RR];
};

typedef void (*mta_dns_cb)(void *arg, const char *name, enum mta_dns_type type,
                           const struct mta_dns_answer *answer);

/* ---- TCP ------------------------------------------------------------ */
/*
 * Back-pressure.  A connection has a send buffer of a fixed size (Linux:
 * SO_SNDBUF; its initial default, net.ipv4.tcp_wmem[1], is 16384 bytes).
 * Bytes written occupy it until the peer acknowledges them.
 *
 *   tcp_write(fd, buf, len)  copies as much of buf as the send buffer has
 *       room for and returns that count, 1 .. len: a short count means the
 *       buffer is full now, as send(2) on a non-blocking socket.  When it
 *       has no room at all, -EAGAIN and nothing is taken.  After a short
 *       count or -EAGAIN, exactly one MTA_TCP_WRITABLE follows once room
 *       has been made (as EPOLLOUT in edge-triggered mode; Linux reports
 *       it once the free space is at least half of what is queued,
 *       sk_stream_is_writeable), unless the connection ends first.  len 0
 *       returns 0.  Other failures: -EPIPE (the peer closed or reset, or
 *       the connection ended), -ENOTCONN, -EBADF.
 *   tcp_unsent(fd)  the bytes written that have not yet left the host,
 *       i.e. not yet been transmitted even once (Linux: ioctl SIOCOUTQNSD;
 *       SIOCOUTQ would count the unacknowledged ones too).  0 when
 *       everything written has been sent; a negative errno for a
 *       descriptor that is not a connection.
 *   tcp_notify_sent(fd)  asks for one MTA_TCP_SENT event at the moment
 *       tcp_unsent() reaches 0: the last byte written so far has left
 *       the host.  Delivered later (never inside the call), also when
 *       nothing is unsent now.  Asking again before it came is harmless.
 *       0, or a negative errno.
 *
 * A writer that must not stall (an SMTP client sending a message body)
 * writes while tcp_write() takes bytes, waits for MTA_TCP_WRITABLE when
 * it does not, and measures progress with tcp_unsent(): a data-block
 * timeout (RFC 5321 4.5.3.2.5) is "no byte left for that long".
 */
enum mta_tcp_event {
    MTA_TCP_CONNECTED,      /* the three-way handshake completed */
    MTA_TCP_CONNECT_FAILED, /* err = ECONNREFUSED, EHOSTUNREACH or ETIMEDOUT */
    MTA_TCP_DATA,           /* data, len > 0, in stream order */
    MTA_TCP_EOF,            /* the peer closed its side (FIN) */
    MTA_TCP_RESET,          /* the connection was reset (RST: err ECONNRESET) or
                             * given up by the stack (err ETIMEDOUT: nothing
                             * acknowledged through its retransmissions) */
    MTA_TCP_WRITABLE,       /* after a short tcp_write(): room again */
    MTA_TCP_SENT,           /* asked by tcp_notify_sent(): nothing left unsent */
    MTA_TCP_TLS_UP,         /* after tls_start(): the handshake completed; tls_peer()
                             * describes it; DATA and tcp_write() are cleartext
                             * inside TLS from now on */
    MTA_TCP_TLS_FAILED,     /* after tls_start(): the handshake failed; err is an
                             * enum mta_tls_failure, data/len a one-line reason
                             * (NUL-terminated: data[len] == '\0').
                             * The connection is unusable: only tcp_close() */
};

typedef void (*mta_tcp_cb)(void *arg, int fd, enum mta_tcp_event ev,
                           const char *data, size_t len, int err);

/* A connection arrived on a listener: fd is its descriptor, already
 * connected (no MTA_TCP_CONNECTED follows).  The callee sets *cb and
 * *cb_arg: where fd's events go, in the shape of any connection's. */
typedef void (*mta_tcp_accept_cb)(void *arg, int fd, uint32_t peer_addr, uint16_t peer_port,
                                  mta_tcp_cb *cb, void **cb_arg);

/* ---- TLS ------------------------------------------------------------ */
/*
 * STARTTLS (RFC 3207) is the application's: it sends the command and reads
 * the 220; then tls_start() turns the connection into a TLS one.  Bytes
 * the peer sent after the 220 and before the handshake are discarded by
 * the implementation (RFC 3207 5: they came in the clear).  Exactly one
 * MTA_TCP_TLS_UP or MTA_TCP_TLS_FAILED follows, unless the descriptor is
 * closed first; a reset or EOF during the handshake is a TLS_FAILED.  The
 * certificate is not judged here: tls_peer() reports what the peer
 * showed, and the application decides (as libESMTP and Postfix check the
 * name and the dates after the handshake).
 */
enum mta_tls_failure {
    MTA_TLS_ERR_HANDSHAKE = 1,      /* the peer sent handshake_failure (or another fatal alert) */
    MTA_TLS_ERR_PROTOCOL_VERSION,   /* the peer refused the version offered (alert 70) */
    MTA_TLS_ERR_RESET,              /* the connection was reset during the handshake */
    MTA_TLS_ERR_CLOSED,             /* the peer closed the connection during the handshake */
    MTA_TLS_ERR_SYNTAX,             /* the peer's bytes are not TLS */
    MTA_TLS_ERR_LOCAL,              /* no TLS here (no certificate, library failure) */
};

#define MTA_TLS_NAME_MAX 256

struct mta_tls_peer {
    char version[16];               /* "TLSv1.3" */
    char cipher[64];                /* "TLS_AES_256_GCM_SHA384" */
    int bits;                       /* the cipher's secret bits */
    int has_cert;                   /* the peer showed a certificate */
    char cert_name[MTA_TLS_NAME_MAX];   /* its subject CN (or first DNS name) */
    char cert_names[MTA_TLS_NAME_MAX];  /* its DNS subjectAltNames, comma-separated */
    mta_usec_t not_before, not_after;   /* its validity */
    int trusted;                    /* the chain verifies to a trusted CA */
};

/* ---- trace ---------------------------------------------------------- */
/*
 * A trace record is "<kind> <name> key=value ...".  The environment stamps
 * it with the virtual time and a sequence number.  A field carries its
 * display string and, when it is a number, the number too, so expectations
 * can compare numerically (conn_fd>=0) or by name (conn_fd=CONN_ERR_BIND).
 * A producer may give the lengths of the kind, the name and each key (the
 * core's builder does: they are string literals, measured at compile
 * time); they are never empty, so a length of 0 means "not given".
 */
#define MTA_TRACE_MAX_FIELDS 16

struct mta_trace_field {
    const char *key;
    const char *str;        /* display value, not necessarily NUL-terminated */
    size_t len;             /* length of str */
    int64_t num;
    int has_num;
    size_t klen;            /* strlen(key), or 0: not given, the sink measures it */
};

struct mta_trace_rec {
    const char *kind;       /* "hook", "smtp", "conn", "queue", "dns", ... */
    const char *name;
    int nfields;
    struct mta_trace_field field[MTA_TRACE_MAX_FIELDS];
    size_t kind_len, name_len;  /* strlen of kind and name, or 0: not given */
};

/* ---- the environment -------------------------------------------------- */
struct mta_env {
    void *impl;

    mta_usec_t (*now)(struct mta_env *env);

    /* Run fn(arg) at absolute time at (>= now()).  Returns an id != 0. */
    mta_timer_id (*timer_start)(struct mta_env *env, mta_usec_t at,
                                void (*fn)(void *arg), void *arg);
    /* Cancel a pending timer; harmless if it already ran. */
    void (*timer_cancel)(struct mta_env *env, mta_timer_id id);

    /* Resolve name; cb runs later with the answer (never synchronously). */
    void (*dns_query)(struct mta_env *env, const char *name,
                      enum mta_dns_type type, mta_dns_cb cb, void *arg);

    /* Open a TCP connection from src to dst:port.  src and dst are of one
     * family (a socket bound to an address of one family connects only to
     * that family: -EAFNOSUPPORT otherwise); an unspecified src (0.0.0.0
     * or ::) lets the implementation choose one of dst's family. */
    int (*tcp_connect)(struct mta_env *env, mta_ip src, mta_ip dst,
                       uint16_t port, mta_tcp_cb cb, void *arg);
    /* Write up to len bytes into the send buffer: the count taken (a
     * short count when it filled up), -EAGAIN when it is full, or a
     * negative errno (-EPIPE).  See "Back-pressure" above. */
    int (*tcp_write)(struct mta_env *env, int fd, const void *buf, size_t len);
    /* Bytes written on fd that have not left the host yet (SIOCOUTQNSD). */
    long (*tcp_unsent)(struct mta_env *env, int fd);
    /* One MTA_TCP_SENT when tcp_unsent(fd) reaches 0. */
    int (*tcp_notify_sent)(struct mta_env *env, int fd);
    /* Orderly close (FIN) and release of fd. */
    void (*tcp_close)(struct mta_env *env, int fd);
    /* Accept connections to addr:port (host byte order); each one arrives
     * through accept.  Returns the listening descriptor (>= 0; tcp_close
     * on it stops listening) or a negative errno (-EADDRINUSE). */
    int (*tcp_listen)(struct mta_env *env, uint32_t addr, uint16_t port,
                      mta_tcp_accept_cb accept, void *arg);

    /* TLS on a connected descriptor (see "TLS" above); NULL when the
     * environment has none.  server: the accepting side (it needs a
     * certificate); server_name: what a client asks for (SNI).  0, or a
     * negative errno (-ENOTSUP: not for this side) and nothing changes. */
    int (*tls_start)(struct mta_env *env, int fd, int server, const char *server_name);
    /* After MTA_TCP_TLS_UP: what the peer showed.  0, or a negative errno. */
    int (*tls_peer)(struct mta_env *env, int fd, struct mta_tls_peer *out);

    /* A uniform number in [0, n) from the stream named purpose.  The core
     * has no randomness of its own: every choice it leaves to chance (the
     * order of equal-preference MX hosts) is drawn here, so the world's
     * seed decides it and a run replays exactly.  Streams are independent:
     * drawing for one purpose never shifts another. */
    uint64_t (*random_below)(struct mta_env *env, const char *purpose, uint64_t n);

    /* Record one trace event; NULL when tracing is off. */
    void (*trace)(struct mta_env *env, const struct mta_trace_rec *rec);
};

#endif
