/*
 * live_env - the live backend of the core's environment: real sockets, real clock
 *
 * SYNOPSIS
 *   struct live_env *le = live_env_create(seed);
 *   struct trace_store *ts = trace_store_create(live_env_epoch(le), 1);
 *   struct sim_dns *d = sim_dns_create(live_env_sched(le), ...);   (or NULL)
 *   live_env_attach(le, d, ts);                 scripted DNS answers, the trace
 *   live_env_map(le, scenario_addr, &real);     the host map
 *   struct mta *m = mta_create(live_env_env(le), &cfg);
 *   live_env_run(le, until, done, arg);          the event loop
 *   live_env_check(le, &v);  live_env_destroy(le);
 *
 * DESCRIPTION
 *   The second backend of mtasim_env.h (cf. Redis's ae_epoll.c next to
 *   ae_select.c).  It is the simulated environment (simenv.h) with its TCP
 *   replaced: clock, timers, DNS, random_below and the trace are simenv's,
 *   driven by a scheduler whose clock follows the real one, so the scripted
 *   DNS answers, the seeded random streams and the trace format are exactly
 *   the simulator's.  TCP is real: non-blocking sockets on one epoll.
 *
 *   Clock.  live_env_epoch() is CLOCK_REALTIME when the environment was
 *   created; from then on the time is that epoch plus the CLOCK_MONOTONIC
 *   time elapsed, so it is the time of day yet never goes backwards (a
 *   clock step by NTP cannot break the trace's order).  The scheduler's
 *   clock is moved to that time each time the loop wakes up, before
 *   anything runs: a callback sees the time of its wake-up, a timer its
 *   due time.  A permanent sentinel event far in the future keeps the
 *   scheduler from ever falling quiet, which is what makes its clock
 *   follow every deadline it is run to (sim_sched.h).
 *
 *   Timers are the scheduler's heap.  The scheduler has no "next event"
 *   query, so while timers are pending the loop wakes at least every
 *   LIVE_TICK_MS: a timer fires within about a millisecond of its time.
 *
 *   Connect.  tcp_connect(src, dst, port) goes to the host map's real
 *   address for dst (any port, or that port) when dst is mapped; to dst
 *   itself when dst is a loopback address (127.0.0.0/8), or any address
 *   after live_env_allow_remote_targets(); otherwise nowhere: no packet is
 *   sent and nothing ever happens, as in the simulator when no host has
 *   the address (the core's connect timer ends it).  The source address
 *   is recorded but not bound.  Outcomes: EINPROGRESS, then EPOLLOUT and
 *   SO_ERROR: 0 -> MTA_TCP_CONNECTED ("conn established"); ECONNREFUSED
 *   -> MTA_TCP_CONNECT_FAILED ECONNREFUSED ("conn refused");
 *   EHOSTUNREACH, ENETUNREACH -> MTA_TCP_CONNECT_FAILED EHOSTUNREACH
 *   ("conn unreachable"); ETIMEDOUT -> nothing more ("conn timeout"), like
 *   the simulator's unanswered SYN.  A failure connect() reports at once
 *   is delivered the same way from a zero-delay timer: callbacks never
 *   run inside the call that caused them.
 *
 *   Data.  Reads deliver MTA_TCP_DATA as read(2) returns it (at most
 *   LIVE_READS_PER_WAKE reads of LIVE_READ_CHUNK bytes per wake-up, so no
 *   descriptor starves the others); 0 -> MTA_TCP_EOF; ECONNRESET ->
 *   MTA_TCP_RESET ECONNRESET ("conn reset"); ETIMEDOUT (the kernel gave
 *   up retransmitting) -> MTA_TCP_RESET ETIMEDOUT ("conn timedout").
 *   After MTA_TCP_EOF the descriptor can still be written (RFC 9293 3.6:
 *   the peer's FIN closes its direction only); after a reset, tcp_write()
 *   is -EPIPE.
 *   Writes are send(2) with MSG_DONTWAIT on the socket itself, so the
 *   back-pressure is the kernel's (mtasim_env.h): tcp_write() returns
 *   what the send buffer took, -EAGAIN when it is full, and one
 *   MTA_TCP_WRITABLE follows on the next EPOLLOUT.  Nothing is buffered
 *   here.  Every socket has TCP_NODELAY, and is corked (TCP_CORK) from
 *   its first write in a turn of the loop to the end of the turn: what
 *   is written while one batch of events runs (the replies to a
 *   pipelined group, a client's pipelined commands) leaves together, in
 *   as few segments as the kernel makes of it, the way a server that
 *   flushes when its input is drained sends them.  tcp_unsent() is
 *   ioctl(SIOCOUTQNSD); tcp_notify_sent() is answered by looking at it
 *   each turn of the loop (Linux has no event for "the send queue has
 *   left"), which runs at least every LIVE_TICK_MS while one is asked
 *   for: MTA_TCP_SENT comes within about a millisecond after the last
 *   byte left, never before.  tcp_close() is close(2): the kernel still
 *   sends what its buffer holds, then FIN.
 *
 *   Listen.  tcp_listen(addr, port) binds a real socket (port 0: any free
 *   port, see live_env_listen_port); accepted connections deliver the
 *   same events.  live_env_shutdown_write() and live_env_reset() are the
 *   half close and the abortive close (RST) a server needs; the core's
 *   interface has neither.
 *
 *   Trace: the simulator's "conn" records (open, established, refused,
 *   unreachable, timeout, eof, reset, close, listen, accept, unlisten,
 *   error); "conn open" adds real=ADDR:PORT (or real=none) to show where
 *   the host map sent it.  rx_segments on "conn close" counts reads, which
 *   depend on timing.
 *
 *   Accounting for the run's invariants is simenv's: descriptors opened
 *   (connected or accepted) and closed, closes and writes on descriptors
 *   that are not open, descriptors left open.
 *
 * BOUNDS
 *   Descriptors up to LIVE_MAX_FDS (beyond: -EMFILE, accepted ones are
 *   closed at once); LIVE_MAX_EVENTS_PER_TURN scheduler events between
 *   two looks at the sockets; live_env_run() returns at its deadline.
 *
 * DIAGNOSTICS
 *   A failing epoll_ctl() or a broken internal invariant prints
 *   "live_env_<fn>: ..." and aborts.
 */
#ifndef MTASIM_LIVE_ENV_H
#define MTASIM_LIVE_ENV_H

#include <netinet/in.h>
#include <stdint.h>

#include "dns.h"
#include "mtasim_env.h"
#include "net.h"
#include "sim_sched.h"
#include "simenv.h"
#include "trace_store.h"

#define LIVE_MAX_FDS 4096
#define LIVE_READ_CHUNK 65536
#define LIVE_READS_PER_WAKE 16
#define LIVE_TICK_MS 1
#define LIVE_IDLE_WAKE_MS 100
#define LIVE_MAX_EVENTS_PER_TURN 100000ULL
#define LIVE_MAX_MAPS 64

struct live_env;

enum live_stop { LIVE_STOP_DONE, LIVE_STOP_DEADLINE, LIVE_STOP_SIGNAL };

struct live_env *live_env_create(uint64_t seed);
/* The second step: DNS answers from dns (NULL: no resolver, nobody may
 * ask) and records to trace (NULL: none).  0, or -1 out of memory. */
int live_env_attach(struct live_env *le, struct sim_dns *dns, struct trace_store *trace);
/* The core's table; after live_env_attach(). */
struct mta_env *live_env_env(struct live_env *le);
struct sim_sched *live_env_sched(struct live_env *le);
/* The simulated network of the environment: empty unless a caller puts
 * scripted hosts on it (mtasim serve). */
struct sim_net *live_env_net(struct live_env *le);
mta_usec_t live_env_epoch(const struct live_env *le);
/* The trace sink (sim_trace_fn) for sim components, arg = le. */
void live_env_trace(void *arg, const struct mta_trace_rec *rec);

/* Connections to addr go to real instead; 0, or -1 when the map is full
 * or addr is mapped already. */
int live_env_map(struct live_env *le, uint32_t addr, const struct sockaddr_in *real);
void live_env_allow_remote_targets(struct live_env *le, int allow);

/* Run the loop until done(arg) says so (checked each turn), until the
 * absolute time until, or until SIGINT/SIGTERM arrived (when
 * live_env_catch_signals was called). */
enum live_stop live_env_run(struct live_env *le, mta_usec_t until,
                            int (*done)(void *arg), void *arg);
void live_env_catch_signals(struct live_env *le);

/* Timers pending besides the sentinel, and descriptors open (listeners
 * not counted). */
size_t live_env_timers_pending(const struct live_env *le);
int live_env_open_count(const struct live_env *le);
/* The port a listening descriptor got (for port 0); 0 if fd is not one. */
uint16_t live_env_listen_port(const struct live_env *le, int fd);
/* Half close: send FIN, keep reading. */
void live_env_shutdown_write(struct live_env *le, int fd);
/* Abortive close (RST) and release of fd. */
void live_env_reset(struct live_env *le, int fd);
/* live_env_set_tls_server - the OpenSSL context tls_start(fd, server) uses;
 * the environment owns it from now on (live_tls.h) */
struct ssl_ctx_st;
void live_env_set_tls_server(struct live_env *le, struct ssl_ctx_st *ctx);
/* live_env_tls_hold - fd's server handshake (after tls_start) stops at the
 * client's ClientHello until live_env_tls_decide(): alert 0 goes on, an
 * alert description fails it with that fatal alert (live_tls.h).  decide
 * may call fd's callback at once (MTA_TCP_TLS_FAILED after the alert). */
void live_env_tls_hold(struct live_env *le, int fd);
void live_env_tls_decide(struct live_env *le, int fd, int alert);
/* live_env_tls_cert - fd's held server handshake shows a certificate made
 * for it (live_tls_use_cert); 0 or -1 */
int live_env_tls_cert(struct live_env *le, int fd, const char *cn, const char *alt,
                      long before_s, long after_s);

void live_env_check(const struct live_env *le, struct simenv_violations *v);
void live_env_destroy(struct live_env *le);

/* "ADDR:PORT" (IPv4) into *out; 0, or -1. */
int live_parse_addr_port(const char *text, struct sockaddr_in *out);
/* 127.0.0.0/8 (host byte order). */
int live_addr_is_loopback(uint32_t addr);

#endif
