/*
 * live_env_tls - TLS on the live environment's descriptors
 *
 * DESCRIPTION
 *   The environment's tls_start and tls_peer entries (mtasim_env.h, "TLS")
 *   for real sockets: OpenSSL (live_tls.h) between the socket and the
 *   core.  live_env.c hands a TLS descriptor's socket bytes to
 *   tls_readable() and its writes to live_tls_write() and tls_flush();
 *   what OpenSSL has to send goes out as the socket takes it, the rest on
 *   EPOLLOUT before the core hears of room (MTA_TCP_WRITABLE).
 *   live_env_tls_hold/decide gate a server handshake at the ClientHello
 *   (mtasim serve: the scripted remote's handshake decides).
 */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "live_env_int.h"

/* tls_flush - send what OpenSSL produced; what the socket does not take
 * waits for EPOLLOUT.  0, or -1 when the peer is gone */
int tls_flush(struct live_fd *f)
{
    size_t len;
    const char *p = live_tls_pending(f->tls, &len);
    if (len == 0)
        return 0;
    ssize_t n;
    do
        n = send(f->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        return -1;
    live_tls_sent(f->tls, n > 0 ? (size_t)n : 0);
    if (n < 0 || (size_t)n < len) {
        f->want_writable = 1;
        fd_rewatch(f);
    }
    return 0;
}

/* tls_readable - socket bytes of a TLS descriptor: the handshake's end,
 * then decrypted data (live_tls.h) */
void tls_readable(struct live_fd *f, const char *raw, size_t len)
{
    struct live_env *le = f->le;
    int fd = f->fd;
    uint64_t gen = f->gen;
    struct simtls_buf plain = { 0 };
    int was_up = live_tls_up(f->tls);
    int ev = live_tls_input(f->tls, raw, len, &plain);
    (void)tls_flush(f);
    if ((ev & LIVE_TLS_FAILED) && !was_up) {
        const char *why = live_tls_reason(f->tls);
        f->cb(f->arg, fd, MTA_TCP_TLS_FAILED, why, strlen(why), live_tls_failure(f->tls));
    } else if (ev & LIVE_TLS_FAILED) {
        f->cb(f->arg, fd, MTA_TCP_RESET, NULL, 0, ECONNRESET);
    }
    if ((ev & LIVE_TLS_UP) && fd_still(le, fd, gen) == f) {
        trace_conn(le, "tls", fd);
        f->cb(f->arg, fd, MTA_TCP_TLS_UP, NULL, 0, 0);
    }
    if ((ev & LIVE_TLS_DATA) && fd_still(le, fd, gen) == f)
        f->cb(f->arg, fd, MTA_TCP_DATA, (const char *)plain.p, plain.len, 0);
    if ((ev & LIVE_TLS_CLOSED) && fd_still(le, fd, gen) == f)
        f->cb(f->arg, fd, MTA_TCP_EOF, NULL, 0, 0);
    simtls_buf_free(&plain);
}

/* env_tls_start - OpenSSL on fd: the server side with live_env_set_tls_server's
 * certificate, the client side with the system's CA store */
int env_tls_start(struct mta_env *env, int fd, int server, const char *server_name)
{
    struct live_env *le = LIVE_OF(env);
    struct live_fd *f = fd_get(le, fd);
    if (f == NULL || f->state != LFD_OPEN)
        return -EBADF;
    if (f->tls != NULL)
        return -EALREADY;
    if (!server && le->tls_client == NULL)
        le->tls_client = live_tls_client_ctx();
    SSL_CTX *ctx = server ? le->tls_server : le->tls_client;
    if (ctx == NULL)
        return -ENOTSUP;
    f->tls = live_tls_new(ctx, server, server_name);
    if (f->tls == NULL)
        return -ENOMEM;
    return tls_flush(f) < 0 ? -EPIPE : 0;
}

int env_tls_peer(struct mta_env *env, int fd, struct mta_tls_peer *out)
{
    struct live_fd *f = fd_get(LIVE_OF(env), fd);
    return f == NULL || f->tls == NULL ? -ENOTCONN : live_tls_peer(f->tls, out);
}

void live_env_tls_hold(struct live_env *le, int fd)
{
    struct live_fd *f = fd_get(le, fd);
    assert(f != NULL && f->tls != NULL);
    live_tls_hold(f->tls);
}

void live_env_tls_decide(struct live_env *le, int fd, int alert)
{
    struct live_fd *f = fd_get(le, fd);
    assert(f != NULL && f->tls != NULL);
    if (live_tls_decide(f->tls, alert))
        tls_readable(f, NULL, 0);       /* the waiting ClientHello: on, or the alert */
}

int live_env_tls_cert(struct live_env *le, int fd, const char *cn, const char *alt,
                      long before_s, long after_s)
{
    struct live_fd *f = fd_get(le, fd);
    assert(f != NULL && f->tls != NULL);
    return live_tls_use_cert(f->tls, cn, alt, before_s, after_s);
}

/* live_env_set_tls_server - the context tls_start(server) uses (owned now) */
void live_env_set_tls_server(struct live_env *le, SSL_CTX *ctx)
{
    SSL_CTX_free(le->tls_server);
    le->tls_server = ctx;
}

