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
 *   Timing.  latency is one-way, per remote host.  A connect sent at t
 *   reaches the host at t+L.  ACCEPT: the server endpoint is accepted at
 *   t+L, the client sees SIM_EP_CONNECTED at t+2L.  REFUSE: the client sees
 *   SIM_EP_REFUSED at t+2L (RST).  UNREACHABLE: SIM_EP_UNREACHABLE at t+2L
 *   (ICMP host unreachable).  TIMEOUT: nothing ever happens; the client
 *   gives up on its own timer.  A connect to an address with no host
 *   behaves as TIMEOUT (the packets vanish).
 *
 *   Streams.  Bytes written at t arrive at the peer at
 *   max(t+L, arrival of the previous segment in that direction): in order,
 *   never merged with other writes (one write = one segment = one DATA
 *   event).  A FIN (close) arrives after the data written before it.  A
 *   reset is delivered after L too, but discards data still in flight
 *   towards the endpoint that receives it.
 *
 *   Ownership.  After sim_ep_close() or sim_ep_reset() the owner must not
 *   use the endpoint again and its handler is never called again.  Once
 *   the peer has sent FIN or RST, sim_ep_send() returns -EPIPE, but the
 *   owner still closes its endpoint.  Memory is released when both
 *   endpoints are released and no event refers to the connection.
 *
 *   Synchronous errors of sim_net_connect(): -EADDRNOTAVAIL when src is not
 *   a local address; -EMFILE when more than max_open client connections
 *   are open (see sim_net_set_max_open; 0 = unlimited).
 *
 *   Observer.  When set, the observer sees every packet as it would cross
 *   the wire (SYN, SYN-ACK, ACK, data, FIN, RST) at the virtual time it is
 *   sent; the pcap writer is built on it.
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
};

struct sim_host {
    uint32_t addr;                  /* host byte order */
    uint16_t port;                  /* listening port (25) */
    sim_usec latency;               /* one-way */
    enum sim_connect_mode mode;
    sim_accept_fn accept;
    void *accept_arg;
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
void sim_net_add_local(struct sim_net *n, uint32_t addr);
/* Returns 0, or -1 if a host with that address exists already. */
int sim_net_add_host(struct sim_net *n, const struct sim_host *h);

sim_ep *sim_net_connect(struct sim_net *n, uint32_t src, uint32_t dst, uint16_t port,
                        sim_ep_fn fn, void *arg, int *err);
void sim_ep_set_handler(sim_ep *ep, sim_ep_fn fn, void *arg);
int sim_ep_send(sim_ep *ep, const void *data, size_t len);
void sim_ep_close(sim_ep *ep);
void sim_ep_reset(sim_ep *ep);
uint64_t sim_ep_conn_id(const sim_ep *ep);
uint32_t sim_ep_peer_addr(const sim_ep *ep);

/* Open client connections right now, and connections not yet freed. */
int sim_net_open_count(const struct sim_net *n);
int sim_net_live_count(const struct sim_net *n);

#endif
