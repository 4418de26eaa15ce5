/*
 * live_env_int - what live_env.c and live_env_tls.c share
 *
 * DESCRIPTION
 *   Not an interface: the live environment (struct live_env), its
 *   descriptors (struct live_fd) and the helpers both files use.  The
 *   declarations have hidden visibility.
 */
#ifndef MTASIM_LIVE_ENV_INT_H
#define MTASIM_LIVE_ENV_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "live_env.h"
#include "live_tls.h"

enum live_fd_state {
    LFD_CONNECTING,     /* waiting for EPOLLOUT */
    LFD_OPEN,           /* connected or accepted */
    LFD_SILENT,         /* nothing will ever happen: unmapped target, kernel timeout */
    LFD_FAILED,         /* a synchronous connect failure, delivered by a timer */
    LFD_LISTENING,
};

struct live_fd {
    struct live_env *le;
    int fd;
    uint64_t gen;
    enum live_fd_state state;
    uint32_t epoll_mask;            /* 0 = not in the epoll set */
    mta_tcp_cb cb;
    void *arg;
    mta_tcp_accept_cb accept;       /* LFD_LISTENING */
    void *accept_arg;
    uint32_t listen_addr;
    uint16_t listen_port;
    int peer_gone;                  /* EOF or reset seen: no more reading */
    int peer_reset;                 /* reset seen (or a read error): no more writing */
    int write_shut;                 /* live_env_shutdown_write() done */
    int failed_err;                 /* LFD_FAILED: ECONNREFUSED or EHOSTUNREACH */
    mta_timer_id failed_timer;
    int want_writable;              /* a write was short: MTA_TCP_WRITABLE on EPOLLOUT */
    int want_sent;                  /* tcp_notify_sent(): MTA_TCP_SENT at SIOCOUTQNSD 0 */
    int corked;                     /* TCP_CORK set during this turn */
    int64_t rx_segments, rx_bytes;
    struct live_tls *tls;           /* after tls_start(): OpenSSL between socket and core */
};

struct live_map {
    uint32_t addr;
    struct sockaddr_in real;
};

struct live_env {
    struct mta_env env;             /* first: the core's table (LIVE_OF) */
    struct sim_sched *sched;
    struct sim_net *net;
    struct simenv *sim;
    struct trace_store *trace;
    mta_usec_t epoch;               /* CLOCK_REALTIME at creation */
    struct timespec mono0;          /* CLOCK_MONOTONIC at creation */
    int epfd;
    uint64_t next_gen;
    struct live_fd *fds[LIVE_MAX_FDS];
    int nopen;                      /* connections, not listeners */
    int ncorked, nwant_sent;        /* descriptors with corked / want_sent set */
    struct live_map maps[LIVE_MAX_MAPS];
    int nmaps;
    int allow_remote;
    uint64_t seed;
    struct simenv_violations v;
    SSL_CTX *tls_server, *tls_client;   /* live_env_set_tls_server(); the client's, lazily */
};

#define LIVE_OF(envp) ((struct live_env *)(void *)((char *)(envp) - offsetof(struct live_env, env)))

#pragma GCC visibility push(hidden)

/* live_env.c */
void trace_conn(struct live_env *le, const char *name, int fd);
struct live_fd *fd_get(const struct live_env *le, int fd);
/* fd_still - the record of fd if it is still generation gen, else NULL */
struct live_fd *fd_still(const struct live_env *le, int fd, uint64_t gen);
void fd_rewatch(struct live_fd *f);

/* live_env_tls.c */
int tls_flush(struct live_fd *f);
void tls_readable(struct live_fd *f, const char *raw, size_t len);
int env_tls_start(struct mta_env *env, int fd, int server, const char *server_name);
int env_tls_peer(struct mta_env *env, int fd, struct mta_tls_peer *out);

#pragma GCC visibility pop

#endif
