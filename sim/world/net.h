/*
 * net - simulated hosts and TCP connections
 *
 * SYNOPSIS
 *   struct sim_net *n = sim_net_create(sched);
 *   sim_net_add_local(n, mta_ip_v4(0xC0000201));            a source address the MTA owns
 *   sim_net_set_buffers(n, sndbuf, rcvbuf);                  the MTA's socket buffers
 *   sim_net_add_host(n, &host);                              a remote host and its listener
 *   sim_ep *ep = sim_net_connect(n, src, dst, 25, fn, arg, &err);
 *   sim_ep_write(ep, buf, len);                              a socket write (may be short)
 *   sim_ep_send(ep, buf, len);                               a write that is never short
 *   sim_ep_close(ep);  sim_ep_reset(ep);  sim_ep_drop(ep);  sim_ep_pause(ep, 1);
 *   sim_net_destroy(n);
 *
 * DESCRIPTION
 *   A connection has two endpoints: the client's (returned by
 *   sim_net_connect) and the server's (handed to the host's accept
 *   function once the three-way handshake is complete).  Each endpoint
 *   delivers events to the handler its owner set, and has a TCP of its
 *   own (tcp.c) that goes on after the owner let go of the endpoint (its
 *   FIN, the acknowledgements it owes), as a kernel's does.
 *
 *   TCP (RFC 9293), as Linux does it where a choice exists:
 *
 *   Handshake.  The client sends SYN (MSS and window scale options), the
 *   host answers SYN-ACK, the client ACKs, and only then does the host's
 *   accept function get the server endpoint: nothing the server writes can
 *   leave before the client's handshake ACK arrived.  A SYN that gets no
 *   answer is sent again after 1, 2, 4, ... s (initial RTO 1 s, RFC 6298
 *   2.1, doubled each time); after 6 retransmissions (Linux's
 *   tcp_syn_retries) the attempt fails: SIM_EP_TIMEDOUT, 127 s after the
 *   first SYN.  A SYN-ACK whose ACK does not come is sent again, up to 5
 *   times (tcp_synack_retries).  REFUSE: the host answers RST|ACK, the
 *   client sees SIM_EP_REFUSED.  UNREACHABLE: an ICMP host unreachable,
 *   SIM_EP_UNREACHABLE.  TIMEOUT, or no host at the address: every SYN is
 *   lost.  Closing the client endpoint during the handshake sends
 *   nothing; a SYN-ACK that arrives afterwards is answered with RST, as a
 *   closed port answers anything.
 *
 *   Buffers and windows.  Each side has a send buffer (sndbuf: default
 *   16384 bytes, Linux's tcp_wmem[1]) and a receive buffer (rcvbuf:
 *   default 131072, tcp_rmem[1]); Linux grows both by autotuning, which
 *   is not modelled: the sizes are fixed.  Written bytes occupy the send
 *   buffer until acknowledged.  sim_ep_write() takes what fits (a short
 *   count, or -EAGAIN when full) and one SIM_EP_WRITABLE follows once the
 *   free space is at least half of what is queued (Linux's
 *   sk_stream_is_writeable).  sim_ep_send() never writes short: what
 *   does not fit waits in the endpoint's own buffer and moves into the
 *   send buffer as room is made (an application's output buffer, as
 *   stdio's; the scripted remotes and clients write this way).  The
 *   receive window a side advertises is its free receive buffer: the
 *   owner reads everything as it arrives unless paused (sim_ep_pause: a
 *   remote that stops reading), and then the window closes.  The window
 *   scale is the smallest that fits the receive buffer (RFC 7323 2.2);
 *   a window is never shrunk (RFC 9293 3.8.6.2.2): it is rounded up to
 *   the scale's unit, and opened again only by at least
 *   min(rcvbuf / 2, MSS) (receiver silly-window avoidance).
 *
 *   Segments.  Data leaves in segments of at most the MSS (the path's
 *   `segment', default 1460 bytes: Ethernet's 1500 minus the IPv4 and TCP
 *   headers; 1440 on IPv6, whose header is 40 bytes), as much as the peer's window allows; what was written while
 *   the link was busy leaves merged into full segments (Linux fills the
 *   tail of its write queue up to the MSS), with no Nagle delay
 *   (TCP_NODELAY).  With a bandwidth B (bytes/s, 0 = unlimited) a segment
 *   of n payload bytes occupies the sender's side of the link for
 *   ceil(n * 1000000 / B) microseconds and the next one waits for it;
 *   header bytes and segments without payload take no time.  A segment
 *   arrives the latency (plus, with jitter J, a fresh draw in [0, J] per
 *   segment from the connection's stream (seed, "jitter SRC>DST", k) for
 *   the k-th connection between the two addresses) after it has left,
 *   and never before the segment sent before it in its direction: streams
 *   are not reordered.  Zero window: the sender probes with an RTO-timed,
 *   backed-off persist timer (a segment one below the next sequence
 *   number, as Linux's tcp_xmit_probe_skb), which the receiver answers
 *   with its window.
 *
 *   Acknowledgements: delayed, as Linux delays them (RFC 1122 4.2.3.2,
 *   RFC 9293 3.8.6.3; Linux's tcp_input.c and tcp_output.c; the shape of
 *   fixtures/captures/deliver.pcap).  Every segment a side sends carries
 *   the ACK of all it received, so an owed ACK mostly rides on the next
 *   command or reply.  The ACK of arriving data is decided before the
 *   owner reads it: at once in quickack mode (the first data of a
 *   connection gives min(16, window / (2 x rcv_mss)) quick ACKs, spent by
 *   every segment sent; tcp_incr_quickack), at once when more than one
 *   segment's worth (rcv_mss: the peer's largest segment, first guessed
 *   536) is unacknowledged and the owner reads (an ACK for every second
 *   full-sized segment), otherwise by the delayed-ACK timer: the ACK
 *   timeout, 40 ms (TCP_ATO_MIN), adapted to the gaps between arrivals
 *   and never above 200 ms in interactive mode, 500 ms otherwise, nor
 *   above the smoothed RTT once measured (tcp_event_data_recv,
 *   tcp_send_delayed_ack).  When the owner reads, an owed ACK goes at once
 *   for two segments shorter than rcv_mss, or for one outside interactive
 *   mode (tcp_cleanup_rbuf).  A side that sends data within the ACK
 *   timeout of the last arrival becomes interactive ("pingpong", Linux's
 *   threshold of one reply), and leaves that mode when its delayed-ACK
 *   timer expires (tcp_delack_timer_handler).  The peer's FIN makes a side
 *   that has not closed interactive, so its ACK rides on the owner's own
 *   FIN; after our FIN, the peer's is acknowledged at once.  At once too:
 *   a duplicate (and quickack mode again), a segment beyond a hole (kept,
 *   RFC 9293 3.10.7.4, and answered by a duplicate ACK), the segment that
 *   fills the hole (an ACK of all, RFC 5681 4.2), a window probe.  (New
 *   data for an owner that closed gets an RST, "Closing" below.)  Not
 *   modelled: the repeated-small-size rule of
 *   tcp_measure_rcv_mss, the delayed ACK of a SYN-ACK while a write is
 *   pending, and timer granularity (jiffies).
 *
 *   Retransmission (RFC 6298, with Linux's bounds): the RTO starts at
 *   1 s, follows SRTT + max(4 RTTVAR, 200 ms) once measured (200 ms is
 *   Linux's TCP_RTO_MIN; RTT samples per Karn: never from a retransmitted
 *   segment), doubles at each expiry up to 120 s (TCP_RTO_MAX), and is
 *   restarted by every ACK of new data.  At expiry the oldest
 *   unacknowledged segment is sent again.  Three duplicate ACKs send it
 *   at once (fast retransmit, RFC 5681 3.2), and a partial ACK after a
 *   retransmission sends the next hole (NewReno, RFC 6582 3.2).  After 15
 *   retransmissions of one segment (tcp_retries2; 8 once the owner has
 *   closed, tcp_orphan_retries) the connection is given up: the owner, if
 *   any, sees SIM_EP_TIMEDOUT.  No congestion control is modelled
 *   (slow start, cwnd): a sender is limited by the peer's window, its
 *   send buffer and the link.
 *
 *   Closing.  sim_ep_close(): FIN after everything written (also what
 *   waits in the endpoint's own buffer), retransmitted until acknowledged;
 *   but RST|ACK, and the TCP is over, when received data was left unread
 *   (a paused owner; Linux's tcp_close, RFC 1122 4.2.2.13);
 *   every segment acknowledges what its sender received, so a FIN sent
 *   after the peer's FIN arrived acknowledges it.  The endpoint's TCP
 *   still acknowledges the peer's FIN and retransmissions after the
 *   close; new data for a closed owner aborts the connection with an RST
 *   (RFC 1122 4.2.2.13, Linux's abort on data in FIN_WAIT), and what
 *   arrives after that meets a closed port.  sim_ep_reset(): RST, arriving
 *   after the latency; what the resetter had not sent is discarded, and
 *   segments in flight in either direction are withdrawn (the peer sees
 *   the reset and nothing written just before it).  -EPIPE: a side's
 *   writes fail once a FIN or RST from its peer has been delivered to it.
 *
 *   Silent drop (sim_ep_drop): the path of the connection dies.  Segments
 *   in flight in both directions are lost, and from then on nothing either
 *   side sends arrives; the dropping side forgets the connection without
 *   a word (a host that crashed, a firewall that lost its state).  The
 *   other side's TCP goes on: its unacknowledged data and FIN are
 *   retransmitted with backoff, its send buffer fills (writes become
 *   short), until its owner gives up or the retransmissions do.
 *
 *   Loss (loss P): each segment, data or not (RSTs excepted), is lost with
 *   probability P, drawn from the connection's stream (seed, "loss
 *   SRC>DST", k); retransmission repairs it.
 *
 *   Listen backlog: a host with backlog N > 0 holds at most N connections
 *   at once, from its SYN-ACK until the host releases the endpoint.  A
 *   SYN beyond that gets no answer (SIM_BACKLOG_TIMEOUT, what Linux does
 *   when the accept queue overflows; the client's retransmitted SYN may
 *   find room) or an RST (SIM_BACKLOG_REFUSE).
 *
 *   Random connect outcome: a host may list up to SIM_HOST_MAX_CHOICES
 *   (mode, probability) pairs.  Each connection attempt draws once per
 *   pair, in order, from the stream (seed, "connect ADDR", 0); the first
 *   pair whose draw hits decides the mode, otherwise the host's mode
 *   holds.
 *
 *   Ownership.  After sim_ep_close() or sim_ep_reset() the owner must not
 *   use the endpoint again and its handler is never called again.  Memory
 *   is released when both endpoints are released and neither side's TCP
 *   has anything left to do.
 *
 *   Synchronous errors of sim_net_connect(): -EADDRNOTAVAIL when src is not
 *   a local address; -EMFILE when more than max_open client connections
 *   are open (see sim_net_set_max_open; 0 = unlimited); -ENETUNREACH when
 *   the host's mode (or its random choice) is SIM_CONNECT_NO_ROUTE: a
 *   Linux connect() fails so, before any packet, when the routing table
 *   has no route to the destination.
 *
 *   Observer.  When set, the observer sees every packet as a capture on
 *   the MTA's host would (the client's side of a connection the MTA
 *   opened, the server's of one it accepted): the MTA's packets when they
 *   leave, lost ones included; the other side's when they arrive, lost
 *   ones never.  So it sees packets in time order.
 *
 *   Source ports are allocated deterministically: 40000, 40001, ... in
 *   connect order.
 */
#ifndef MTASIM_SIM_NET_H
#define MTASIM_SIM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "mta_ip.h"
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
    SIM_EP_WRITABLE,        /* after a short sim_ep_write(): room again */
    SIM_EP_SENT,            /* asked by sim_ep_notify_sent(): nothing unsent */
    SIM_EP_TIMEDOUT,        /* the retransmissions went unanswered (connect or after) */
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
#define SIM_NET_SNDBUF 16384        /* Linux: net.ipv4.tcp_wmem[1] */
#define SIM_NET_RCVBUF 131072       /* Linux: net.ipv4.tcp_rmem[1] */
#define SIM_NET_MSS 1460            /* Ethernet 1500 - IPv4 20 - TCP 20 */
#define SIM_NET_MSS6 1440           /* Ethernet 1500 - IPv6 40 - TCP 20 */
#define SIM_NET_BUF_MAX ((size_t) 64 << 20)

/* "connect MODE probability P": with probability ppm / 1000000. */
struct sim_connect_choice {
    enum sim_connect_mode mode;
    uint32_t ppm;
};

struct sim_host {
    mta_ip addr;                    /* IPv4 (mapped) or IPv6 */
    uint16_t port;                  /* listening port (25) */
    sim_usec latency;               /* one-way */
    sim_usec jitter;                /* extra delay per segment, in [0, jitter] */
    uint64_t bandwidth;             /* bytes per second; 0 = unlimited */
    size_t segment;                 /* the MSS in bytes; 0 = SIM_NET_MSS */
    uint32_t loss_ppm;              /* segments lost, per million */
    size_t sndbuf, rcvbuf;          /* the host's socket buffers; 0 = the defaults */
    enum sim_connect_mode mode;
    int nchoices;                   /* 0 .. SIM_HOST_MAX_CHOICES */
    struct sim_connect_choice choices[SIM_HOST_MAX_CHOICES];
    int backlog;                    /* concurrent connections; 0 = unlimited */
    enum sim_backlog_mode backlog_mode;
    sim_accept_fn accept;
    void *accept_arg;
};

/* The path between one source and one destination address; a negative
 * latency or jitter, a UINT64_MAX bandwidth, SIZE_MAX segment or
 * UINT32_MAX loss means "the host's value". */
struct sim_link {
    mta_ip src, dst;
    sim_usec latency, jitter;
    uint64_t bandwidth;
    size_t segment;
    uint32_t loss_ppm;
};

/* One packet as a capture on the MTA's host shows it (for the pcap writer). */
enum { SIM_TCP_FIN = 0x01, SIM_TCP_SYN = 0x02, SIM_TCP_RST = 0x04, SIM_TCP_PSH = 0x08,
       SIM_TCP_ACK = 0x10 };
struct sim_packet {
    sim_usec time;
    uint64_t conn_id;               /* 1, 2, ... in connect order */
    mta_ip src, dst;                /* of one family */
    uint16_t sport, dport;
    uint8_t flags;
    uint32_t seq, ack;              /* relative to each side's ISN 0 */
    uint16_t window;                /* the header's field: scaled, except on a SYN */
    uint16_t mss;                   /* SYN options: MSS ... */
    uint8_t wscale;                 /* ... and window scale */
    const char *payload;
    size_t len;
    int icmp_unreachable;           /* an ICMP host-unreachable instead of TCP */
};
typedef void (*sim_packet_fn)(void *arg, const struct sim_packet *pkt);

struct sim_net *sim_net_create(struct sim_sched *s);
void sim_net_destroy(struct sim_net *n);
void sim_net_set_observer(struct sim_net *n, sim_packet_fn fn, void *arg);
void sim_net_set_max_open(struct sim_net *n, int max_open);
/* The MTA's socket buffers (its side of the connections it opens); 0 =
 * the default. */
void sim_net_set_buffers(struct sim_net *n, size_t sndbuf, size_t rcvbuf);
/* The run's seed, before the first host is added. */
void sim_net_set_seed(struct sim_net *n, uint64_t seed);
uint64_t sim_net_seed(const struct sim_net *n);
/* Returns 0, or -1 if that (src, dst) link exists already. */
int sim_net_add_link(struct sim_net *n, const struct sim_link *l);
void sim_net_add_local(struct sim_net *n, mta_ip addr);
/* Returns 0, or -1 if a host with that address exists already. */
int sim_net_add_host(struct sim_net *n, const struct sim_host *h);

sim_ep *sim_net_connect(struct sim_net *n, mta_ip src, mta_ip dst, uint16_t port,
                        sim_ep_fn fn, void *arg, int *err);
/* The same from a simulated outside host towards the MTA's listener
 * (sim/world/client.c): src need not be local, max_open does not apply and the
 * connection is not in sim_net_open_count. */
sim_ep *sim_net_connect_peer(struct sim_net *n, mta_ip src, mta_ip dst, uint16_t port,
                             sim_ep_fn fn, void *arg, int *err);
void sim_ep_set_handler(sim_ep *ep, sim_ep_fn fn, void *arg);
/* A write that is never short: 0, or a negative errno (-EPIPE, -ENOBUFS
 * beyond SIM_NET_BUF_MAX waiting bytes). */
int sim_ep_send(sim_ep *ep, const void *data, size_t len);
/* A socket write: the bytes the send buffer takes (short when it fills),
 * -EAGAIN when it is full, or a negative errno; after a short count one
 * SIM_EP_WRITABLE follows.  See mtasim_env.h, "Back-pressure". */
int sim_ep_write(sim_ep *ep, const void *data, size_t len);
/* Bytes written that have not left the host yet (SIOCOUTQNSD). */
size_t sim_ep_unsent(const sim_ep *ep);
/* One SIM_EP_SENT once sim_ep_unsent() is 0 (later, never inside the call). */
void sim_ep_notify_sent(sim_ep *ep);
/* Stop (1) or resume (0) reading: what arrives meanwhile waits in the
 * receive buffer, whose window closes. */
void sim_ep_pause(sim_ep *ep, int paused);
void sim_ep_close(sim_ep *ep);
void sim_ep_reset(sim_ep *ep);
/* Silent drop: the connection's path dies; the endpoint stays owned. */
void sim_ep_drop(sim_ep *ep);
uint64_t sim_ep_conn_id(const sim_ep *ep);
mta_ip sim_ep_peer_addr(const sim_ep *ep);
uint16_t sim_ep_peer_port(const sim_ep *ep);
/* Segments this endpoint's TCP sent again (RTO, fast retransmit, SYN). */
uint64_t sim_ep_retransmits(const sim_ep *ep);
mta_ip sim_ep_local_addr(const sim_ep *ep);
uint16_t sim_ep_local_port(const sim_ep *ep);

/* Open client connections right now, and connections not yet freed. */
int sim_net_open_count(const struct sim_net *n);
int sim_net_live_count(const struct sim_net *n);

#endif
