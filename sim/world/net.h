/*
 * net - simulated hosts and TCP connections
 *
 * SYNOPSIS
 *   struct sim_net *n = sim_net_create(sched);
 *   sim_net_add_local(n, 0xC0000201);                       a source address the MTA owns
 *   sim_net_add_host(n, &host);                              a remote host and its listener
 *   sim_ep *ep = sim_net_connect(n, src, dst, 25, fn, arg, &err);
 *   sim_ep_send(ep, buf, len);  sim_ep_close(ep);  sim_ep_reset(ep);
 *   sim_net_destroy(n);
 *
 * DESCRIPTION
 *   A connection has two endpoints: the client's (returned by
 *   sim_net_connect) and the server's (handed to the host's accept
 *   function).  Each endpoint delivers events to the handler its owner set.
 *
 *   Timing.  latency is one-way, per remote host, or per link (a source
 *   and destination pair, sim_net_add_link, overriding the host's values
 *   one by one).  Below, L is the latency plus, when the link has jitter
 *   J, a fresh draw in [0, J] for every segment from the connection's own
 *   stream (seed, "jitter SRC>DST", k) for the k-th connection (from 0)
 *   between the two addresses: adding traffic elsewhere never changes the
 *   jitter here.  A connect sent at t reaches the host at t+L.  ACCEPT: the server endpoint is accepted at
 *   t+L, the client sees SIM_EP_CONNECTED at t+2L.  REFUSE: the client sees
 *   SIM_EP_REFUSED at t+2L (RST).  UNREACHABLE: SIM_EP_UNREACHABLE at t+2L
 *   (ICMP host unreachable).  TIMEOUT: nothing ever happens; the client
 *   gives up on its own timer.  A connect to an address with no host
 *   behaves as TIMEOUT (the packets vanish).
 *
 *   Streams.  A write is cut into segments of at most `segment' bytes
 *   (0 = the whole write is one segment), each one DATA event; writes are
 *   never merged.  With a bandwidth B (bytes/s, 0 = unlimited) each
 *   segment of n bytes occupies the sender's side of the link for
 *   ceil(n * 1000000 / B) microseconds after the previous one: a segment
 *   leaves when the link is free and arrives L after it has left.  Every
 *   segment arrives no earlier than the previous one in its direction, so
 *   streams stay in order whatever the jitter.  A FIN (close) arrives
 *   after the data written before it.  A reset is delivered after L too,
 *   but discards data still in flight towards the endpoint that receives
 *   it.
 *
 *   Silent drop (sim_ep_drop): the path of the connection dies.  Data in
 *   flight in both directions is lost, and from then on nothing either
 *   side sends - data, FIN, RST - arrives.  Sends still succeed: the
 *   other side has no way to know (a half-open connection) and only its
 *   own timers end the wait.
 *
 *   Listen backlog: a host with backlog N > 0 holds at most N accepted
 *   connections at once (accepted and not yet released by the host).  A
 *   SYN beyond that gets no answer (SIM_BACKLOG_TIMEOUT, what Linux does
 *   when the accept queue overflows) or an RST (SIM_BACKLOG_REFUSE).
 *
 *   Random connect outcome: a host may list up to SIM_HOST_MAX_CHOICES
 *   (mode, probability) pairs.  Each connection attempt draws once per
 *   pair, in order, from the stream (seed, "connect ADDR", 0); the first
 *   pair whose draw hits decides the mode, otherwise the host's mode
 *   holds.
 *
 *   Ownership.  After sim_ep_close() or sim_ep_reset() the owner must not
 *   use the endpoint again and its handler is never called again.  Once
 *   the peer has sent FIN or RST, sim_ep_send() returns -EPIPE, but the
 *   owner still closes its endpoint.  Memory is released when both
 *   endpoints are released and no event refers to the connection.
 *
 *   Synchronous errors of sim_net_connect(): -EADDRNOTAVAIL when src is not
 *   a local address; -EMFILE when more than max_open client connections
 *   are open (see sim_net_set_max_open; 0 = unlimited); -ENETUNREACH when
 *   the host's mode (or its random choice) is SIM_CONNECT_NO_ROUTE: a
 *   Linux connect() fails so, before any packet, when the routing table
 *   has no route to the destination.
 *
 *   Observer.  When set, the observer sees every packet as it would cross
 *   the wire (SYN, SYN-ACK, ACK, data, FIN, RST) at the virtual time it is
 *   sent; the pcap writer is built on it.  The segments of one write are
 *   shown one packet each, at the time of the write (their bandwidth
 *   spread shows in the receiver's ACKs, sent as they arrive), so the
 *   observer sees packets in time order.  After a silent drop the
 *   client's packets are still shown (they left the MTA), the host's are
 *   not (they never reach the MTA's side of the wire).
 *
 *   Source ports are allocated deterministically: 40000, 40001, ... in
 *   connect order.
 */
#ifndef MTASIM_SIM_NET_H
#define MTASIM_SIM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "sim_sched.h"

typedef struct sim_ep sim_ep;
struct sim_net;

enum sim_ep_event {
    SIM_EP_CONNECTED,       /* client only */
    SIM_EP_REFUSED,         /* client only */
    SIM_EP_UNREACHABLE,     /* client only */
    SIM_EP_DATA,
    SIM_EP_FIN,             /* the peer closed its side */
    SIM_EP_RST,             /* the peer reset the connection */
};

typedef void (*sim_ep_fn)(void *arg, sim_ep *ep, enum sim_ep_event ev,
                          const char *data, size_t len);
/* The host accepted a connection; call sim_ep_set_handler() on server_ep. */
typedef void (*sim_accept_fn)(void *arg, sim_ep *server_ep);

enum sim_connect_mode {
    SIM_CONNECT_ACCEPT,
    SIM_CONNECT_REFUSE,
    SIM_CONNECT_TIMEOUT,
    SIM_CONNECT_UNREACHABLE,
    SIM_CONNECT_NO_ROUTE,           /* connect() fails at once with ENETUNREACH */
};

enum sim_backlog_mode {
    SIM_BACKLOG_TIMEOUT,            /* SYNs beyond the backlog get no answer */
    SIM_BACKLOG_REFUSE,             /* ... or an RST */
};

#define SIM_HOST_MAX_CHOICES 8

/* "connect MODE probability P": with probability ppm / 1000000. */
struct sim_connect_choice {
    enum sim_connect_mode mode;
    uint32_t ppm;
};

struct sim_host {
    uint32_t addr;                  /* host byte order */
    uint16_t port;                  /* listening port (25) */
    sim_usec latency;               /* one-way */
    sim_usec jitter;                /* extra delay per segment, in [0, jitter] */
    uint64_t bandwidth;             /* bytes per second; 0 = unlimited */
    size_t segment;                 /* largest segment in bytes; 0 = whole writes */
    enum sim_connect_mode mode;
    int nchoices;                   /* 0 .. SIM_HOST_MAX_CHOICES */
    struct sim_connect_choice choices[SIM_HOST_MAX_CHOICES];
    int backlog;                    /* concurrent accepted connections; 0 = unlimited */
    enum sim_backlog_mode backlog_mode;
    sim_accept_fn accept;
    void *accept_arg;
};

/* The path between one source and one destination address; a negative
 * latency or jitter, a UINT64_MAX bandwidth or SIZE_MAX segment means
 * "the host's value". */
struct sim_link {
    uint32_t src, dst;
    sim_usec latency, jitter;
    uint64_t bandwidth;
    size_t segment;
};

/* One packet as it would appear on the wire (for the pcap writer). */
enum { SIM_TCP_FIN = 0x01, SIM_TCP_SYN = 0x02, SIM_TCP_RST = 0x04, SIM_TCP_PSH = 0x08,
       SIM_TCP_ACK = 0x10 };
struct sim_packet {
    sim_usec time;
    uint64_t conn_id;               /* 1, 2, ... in connect order */
    uint32_t src, dst;
    uint16_t sport, dport;
    uint8_t flags;
    uint32_t seq, ack;              /* relative to each side's ISN 0 */
    const char *payload;
    size_t len;
    int icmp_unreachable;           /* an ICMP host-unreachable instead of TCP */
};
typedef void (*sim_packet_fn)(void *arg, const struct sim_packet *pkt);

struct sim_net *sim_net_create(struct sim_sched *s);
void sim_net_destroy(struct sim_net *n);
void sim_net_set_observer(struct sim_net *n, sim_packet_fn fn, void *arg);
void sim_net_set_max_open(struct sim_net *n, int max_open);
/* The run's seed, before the first host is added. */
void sim_net_set_seed(struct sim_net *n, uint64_t seed);
uint64_t sim_net_seed(const struct sim_net *n);
/* Returns 0, or -1 if that (src, dst) link exists already. */
int sim_net_add_link(struct sim_net *n, const struct sim_link *l);
void sim_net_add_local(struct sim_net *n, uint32_t addr);
/* Returns 0, or -1 if a host with that address exists already. */
int sim_net_add_host(struct sim_net *n, const struct sim_host *h);

sim_ep *sim_net_connect(struct sim_net *n, uint32_t src, uint32_t dst, uint16_t port,
                        sim_ep_fn fn, void *arg, int *err);
/* The same from a simulated outside host towards the MTA's listener
 * (sim/world/client.c): src need not be local, max_open does not apply and the
 * connection is not in sim_net_open_count. */
sim_ep *sim_net_connect_peer(struct sim_net *n, uint32_t src, uint32_t dst, uint16_t port,
                             sim_ep_fn fn, void *arg, int *err);
void sim_ep_set_handler(sim_ep *ep, sim_ep_fn fn, void *arg);
int sim_ep_send(sim_ep *ep, const void *data, size_t len);
void sim_ep_close(sim_ep *ep);
void sim_ep_reset(sim_ep *ep);
/* Silent drop: the connection's path dies; the endpoint stays owned. */
void sim_ep_drop(sim_ep *ep);
uint64_t sim_ep_conn_id(const sim_ep *ep);
uint32_t sim_ep_peer_addr(const sim_ep *ep);
uint16_t sim_ep_peer_port(const sim_ep *ep);
uint32_t sim_ep_local_addr(const sim_ep *ep);
uint16_t sim_ep_local_port(const sim_ep *ep);

/* Open client connections right now, and connections not yet freed. */
int sim_net_open_count(const struct sim_net *n);
int sim_net_live_count(const struct sim_net *n);

#endif
