/*
 * net_internal - what the two files of the simulated network share
 *
 * DESCRIPTION
 *   Not an interface: only net.c (hosts, links, connections' life) and
 *   tcp.c (the TCP of each endpoint) include it.  The declarations have
 *   hidden visibility, so the executable does not export them to plugins.
 *
 *   A connection (struct sim_conn) has two sides, client (0) and server
 *   (1), each an endpoint with its TCP (struct sim_ep, struct tcb), and
 *   two wires: wire[s] carries what side s sends, in arrival order.
 *   Sequence numbers are relative, ISN 0 on both sides; SYN and FIN take
 *   one each, so the first data byte is 1.
 *
 *   References: a connection is freed when its count reaches 0.  It holds
 *   one reference per endpoint its owner has not released, one per
 *   segment on a wire, and one per pending event of its TCPs.
 */
#ifndef MTASIM_SIM_NET_INTERNAL_H
#define MTASIM_SIM_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "idxmap.h"
#include "net.h"
#include "prng.h"

#pragma GCC visibility push(hidden)

enum sim_side { SIDE_CLIENT = 0, SIDE_SERVER = 1 };

/* A byte ring, grown by doubling up to a bound its owner enforces. */
struct ring {
    char *buf;
    size_t cap, head, len;
};

/* Segments with at most this much payload are recycled through the
 * network's spare list: a large run sends millions. */
#define SIM_SEG_POOLED_DATA 512

enum seg_kind { SEG_TCP, SEG_ICMP };

struct sim_seg {
    struct sim_seg *next;
    struct sim_conn *conn;
    int from;                   /* the side that sent it */
    enum seg_kind kind;
    uint8_t flags;              /* SIM_TCP_* */
    uint32_t seq, ack;
    uint32_t window;            /* in bytes (unscaled) */
    uint16_t window_field;      /* as the header carries it */
    uint16_t mss;               /* SYN options */
    uint8_t wscale;
    sim_event_id event;
    size_t len;
    char data[];
};

struct wire {
    struct sim_seg *head, *tail;
    size_t nsegs;
    sim_usec last_arrival;      /* FIFO: nothing arrives before what was sent before it */
};

enum tcp_state {
    TCP_CLOSED,                 /* over (or never started): nothing is sent */
    TCP_LISTEN,                 /* the server side before the SYN */
    TCP_SYN_SENT,
    TCP_SYN_RCVD,
    TCP_ESTABLISHED,            /* also after FINs: fin_queued / fin_rcvd say */
};

/* A segment that arrived beyond a hole. */
struct ooo {
    struct ooo *next;
    uint32_t seq;
    size_t len;
    int fin;
    char data[];
};

/* One side's TCP: what its kernel knows. */
struct tcb {
    enum tcp_state state;
    /* sending */
    uint32_t snd_una, snd_nxt;  /* oldest unacknowledged, next to send */
    uint32_t write_seq;         /* after the last byte written (data from 1) */
    struct ring sndq;           /* written, unacknowledged: [data_una .. write_seq) */
    size_t sndbuf;
    struct ring appq;           /* sim_ep_send() bytes waiting for room */
    uint32_t snd_wnd;           /* the peer's window, in bytes */
    uint8_t snd_wscale;         /* the peer's window scale */
    uint8_t rcv_wscale;         /* ours */
    uint16_t mss;
    int fin_queued;             /* the owner closed: FIN after write_seq */
    sim_usec tx_free;           /* the link is busy until then */
    size_t tx_len;              /* payload of the segment that occupies it */
    int rtx_pending;            /* a retransmission waits for the link */
    sim_event_id tx_event;      /* the link is free again */
    sim_event_id syn_event;     /* the MTA's SYN leaves (tcp_conn_start) */
    sim_event_id rtx_event;     /* retransmission or persist timer */
    int persist;                /* rtx_event is the persist timer */
    sim_event_id sent_event;    /* SIM_EP_SENT is due */
    int want_sent;
    sim_usec rto, srtt, rttvar;
    int have_rtt;
    int rtt_on;                 /* a segment is being timed (Karn) */
    uint32_t rtt_seq;
    sim_usec rtt_start;
    int backoff;                /* expiries of the timer since the last new ACK */
    int probes;                 /* zero-window probes not answered yet */
    int dupacks;
    int recovery;               /* after a retransmission, until recover is acked */
    uint32_t recover;
    uint64_t retransmits;
    /* receiving */
    uint32_t rcv_nxt;
    uint32_t rcv_adv;           /* the right edge of the window last advertised */
    size_t rcvbuf;
    struct ring rcvq;           /* arrived in order, not read (paused owner) */
    int paused;
    sim_event_id resume_event;
    struct ooo *ooo;            /* beyond a hole, by sequence number */
    size_t ooo_bytes;
    int fin_rcvd;               /* the peer's FIN is in sequence */
    /* acknowledging (Linux's icsk_ack; net.h "Acknowledgements") */
    int ack_owed;               /* data or FIN arrived that no segment of ours acknowledged */
    sim_event_id dack_event;    /* the delayed-ACK timer */
    sim_usec dack_at;           /* when it expires */
    int quick;                  /* quick ACKs left (tcp_incr_quickack) */
    int pingpong;               /* interactive: an ACK waits for the reply it can ride on */
    int pushed;                 /* segments shorter than rcv_mss since the last ACK (0..2) */
    sim_usec ato;               /* the delayed-ACK timeout; 0 before any data arrived */
    sim_usec lrcvtime;          /* when data last arrived */
    uint32_t rcv_wup;           /* rcv_nxt when our last segment left */
    uint32_t rcv_mss;           /* the peer's segment size as estimated (tcp_measure_rcv_mss) */
};

struct sim_ep {
    struct sim_conn *conn;
    enum sim_side side;
    sim_ep_fn fn;
    void *arg;
    int exists;                 /* the server side exists once accepted */
    int released;               /* the owner closed or reset it */
    int peer_gone;              /* a FIN or RST from the peer was delivered */
    int want_writable;          /* a sim_ep_write() was short */
    int told_fin;               /* SIM_EP_FIN delivered */
    struct tcb t;
};

/* The path parameters a connection uses, resolved at connect time. */
struct conn_link {
    sim_usec latency, jitter;
    uint64_t bandwidth;
    size_t mss;
    uint32_t loss_ppm;
};

struct sim_conn {
    struct sim_net *net;
    struct sim_conn *prev, *next;       /* the net's live list, connect order */
    uint64_t id;
    mta_ip src, dst;
    uint16_t sport, dport;
    struct sim_host host;               /* copied at connect time */
    int has_host;
    size_t host_index;                  /* into net->hosts, when has_host */
    int counted;                        /* in the host's active count */
    struct conn_link link;
    struct sim_prng jitter_rng;         /* (seed, "jitter SRC>DST", k) */
    struct sim_prng loss_rng;           /* (seed, "loss SRC>DST", k) */
    int dropped;                        /* silent drop: nothing arrives any more */
    int peer;                           /* from a simulated outside host (connect_peer) */
    int local;                          /* the side the observer stands at */
    int established;                    /* the client saw SIM_EP_CONNECTED */
    int handshake_over;                 /* connected, refused, unreachable or timed out */
    int refs;
    struct sim_ep ep[2];                /* indexed by enum sim_side */
    struct wire wire[2];                /* wire[s]: what side s sends */
    sim_lane lane[2];                   /* lane[s]: the scheduler's lane of wire[s] (its pair's) */
};

/* A host on the network and what the network tracks about it. */
struct net_host {
    struct sim_host h;
    struct sim_prng connect_rng;        /* (seed, "connect ADDR", 0) */
    int active;                         /* answered, not yet released by the host */
};

/* Connections made so far between two addresses: the stream index; and
 * the scheduler lanes their segments share, one per direction: at a fixed
 * latency they arrive in the order they left (sim_sched.h, lanes). */
struct net_pair {
    mta_ip src, dst;
    uint64_t count;
    sim_lane lane[2];
};

struct sim_net {
    struct sim_sched *sched;
    uint64_t seed;
    sim_packet_fn observer;
    void *observer_arg;
    int max_open;
    int open_count;
    int live_count;
    size_t sndbuf, rcvbuf;              /* the MTA's side; 0 = defaults */
    uint64_t next_conn_id;
    uint32_t next_port;
    mta_ip *locals;
    size_t nlocals;
    struct net_host *hosts;
    size_t nhosts;
    struct sim_link *links;
    size_t nlinks;
    struct net_pair *pairs;
    size_t npairs;
    struct sim_conn *first, *last;
    struct sim_seg *spare;      /* recycled segments of SIM_SEG_POOLED_DATA */
    /* Finding entries without scanning (a world may have thousands). */
    struct idxmap host_index;   /* addr -> hosts[] */
    struct idxmap link_index;   /* net_pair_key(src, dst) -> links[] */
    struct idxmap pair_index;   /* net_pair_key(src, dst) -> pairs[] */
};

/* net.c */
void net_die(const char *fn, const char *what);
void conn_ref(struct sim_conn *c);
void conn_unref(struct sim_conn *c);
/* The host's count of connections it holds (backlog): +1 or -1. */
void conn_host_count(struct sim_conn *c, int delta);
/* What a SYN arriving now at the connection's host meets. */
enum sim_connect_mode conn_syn_mode(struct sim_conn *c);
void net_observe(struct sim_conn *c, const struct sim_seg *seg);

/* TCP's numbers, as Linux has them (net.h says where each applies). */
#define TCP_RTO_INITIAL 1000000         /* RFC 6298 2.1: 1 s */
#define TCP_RTO_MIN 200000              /* Linux TCP_RTO_MIN: 200 ms */
#define TCP_RTO_MAX 120000000           /* Linux TCP_RTO_MAX: 120 s */
#define TCP_SYN_RETRIES 6               /* net.ipv4.tcp_syn_retries */
#define TCP_SYNACK_RETRIES 5            /* net.ipv4.tcp_synack_retries */
#define TCP_RETRIES2 15                 /* net.ipv4.tcp_retries2 */
#define TCP_ORPHAN_RETRIES 8            /* net.ipv4.tcp_orphan_retries: 0 means 8 */
#define TCP_DUPACK_THRESHOLD 3          /* RFC 5681 3.2 */
#define TCP_MAX_LOOP 1000000            /* segments one call may send */
#define TCP_ATO_MIN 40000               /* Linux TCP_ATO_MIN = TCP_DELACK_MIN: HZ/25, 40 ms */
#define TCP_DELACK_MAX 200000           /* Linux TCP_DELACK_MAX: HZ/5, 200 ms */
#define TCP_DELACK_CAP 500000           /* RFC 1122 4.2.3.2: less than 0.5 s (Linux: HZ/2) */
#define TCP_MAX_QUICKACKS 16            /* Linux TCP_MAX_QUICKACKS */
#define TCP_MSS_DEFAULT 536             /* RFC 9293 3.7.1; Linux's first rcv_mss guess */

/* Sequence numbers compare modulo 2^32 (RFC 9293 3.4). */
static inline int seq_lt(uint32_t a, uint32_t b) { return (int32_t) (a - b) < 0; }
static inline int seq_le(uint32_t a, uint32_t b) { return (int32_t) (a - b) <= 0; }

static inline sim_usec conn_now(const struct sim_conn *c)
{
    return sim_sched_now(c->net->sched);
}

/* tcp.c: a connection's start and end, the byte rings */
void tcp_conn_start(struct sim_conn *c, size_t client_sndbuf, size_t client_rcvbuf,
                    size_t server_sndbuf, size_t server_rcvbuf);
/* Cancel every event and free every segment and buffer (sim_net_destroy). */
void tcp_conn_teardown(struct sim_conn *c);
void ring_push(struct ring *r, const char *p, size_t n);
void ring_peek(const struct ring *r, size_t off, char *out, size_t n);
void ring_drop(struct ring *r, size_t n);
const char *ring_linear(struct ring *r);    /* the bytes in one piece */
void ring_free(struct ring *r);

/* tcp_send.c: onto the wire; the timers (each pending one holds a reference) */
void tcp_ev_set(struct sim_conn *c, sim_event_id *id, sim_usec at, sim_event_fn fn,
                void *arg);
void tcp_ev_clear(struct sim_conn *c, sim_event_id *id);
struct sim_seg *tcp_seg_alloc(struct sim_net *n, size_t len);
void seg_free(struct sim_net *n, struct sim_seg *seg);
void tcp_wire_put(struct sim_conn *c, struct sim_seg *seg, sim_usec leave);
void tcp_wire_withdraw(struct sim_conn *c, int s);
uint16_t tcp_adv_window(struct tcb *t);
void tcp_send_ctl(struct sim_ep *ep, uint8_t flags, uint32_t seq);
void tcp_send_ack(struct sim_ep *ep);
/* An acknowledgement is owed for data or FIN that arrived: at once or delayed. */
void tcp_ack_check(struct sim_ep *ep, int now);
/* In-order data arrived: the ACK timeout and quick ACKs (tcp_event_data_recv). */
void tcp_data_recv_event(struct sim_ep *ep, size_t len);
/* Leave interactive mode and acknowledge at once for a while (tcp_enter_quickack_mode). */
void tcp_enter_quickack(struct tcb *t);
uint32_t tcp_data_base(const struct tcb *t);
void tcp_rtx_arm(struct sim_ep *ep);
size_t tcp_unsent(const struct sim_ep *ep);
int tcp_all_sent(const struct tcb *t);
void tcp_app_flush(struct tcb *t);
void tcp_output(struct sim_ep *ep);
void tcp_server_uncount(struct sim_conn *c);
void tcp_abort(struct sim_ep *ep);
void tcp_deliver(struct sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len);
void tcp_sent_fire(void *arg);

/* tcp_recv.c: a segment arrives */
void tcp_seg_arrive(void *arg);
void tcp_resume_fire(void *arg);

#pragma GCC visibility pop

#endif
