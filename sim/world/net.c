/*
 * net - simulated hosts and TCP connections
 *
 * SYNOPSIS
 *   See net.h.
 *
 * DESCRIPTION
 *   A connection (struct sim_conn) has two directions, client->server (0)
 *   and server->client (1).  Everything that crosses the wire in a
 *   direction - SYN, SYN-ACK, refusal RST, ICMP, data, FIN, RST - is a
 *   segment in that direction's FIFO with one scheduler event for its
 *   arrival.  Arrival times never decrease within a direction and equal
 *   times run in scheduling order, so the FIFO head is always the segment
 *   whose event fires; segment_arrive() asserts it.
 *
 *   Sequence numbers for the observer are relative, ISN 0 on both sides:
 *   snd_nxt[d] is the next sequence number the sender of direction d uses,
 *   rcv_nxt[d] the next one its receiver expects.  SYN and FIN consume one
 *   each.  A packet's ack field is what the sender has *received* at the
 *   moment it sends, so acks trail in-flight data exactly as on a wire.
 *   Arriving data and FINs are acknowledged by a pure ACK from the
 *   receiving side's "kernel", which outlives the owner's close (as
 *   FIN_WAIT/TIME_WAIT do) but not a reset.
 *
 *   -EPIPE: a side's sends fail once a FIN or RST from its peer has been
 *   *delivered* to it, i.e. once its owner has been told.  A write made
 *   before the peer's FIN arrived is still sent; if the peer's owner has
 *   released its endpoint the bytes are acknowledged and dropped.
 *
 *   Closing a client endpoint before the handshake completed aborts the
 *   attempt: the SYN is withdrawn if it has not reached the host yet, or
 *   an RST is sent if the host already accepted.  A reset (sim_ep_reset)
 *   withdraws every segment still in flight in both directions - data
 *   towards the peer is lost, data towards the resetter has nobody to read
 *   it - and sends one RST that arrives after the latency.
 *
 *   Timing of a segment (conn_arrival): it leaves when the sender's side
 *   of the link is free (tx_free, advanced by the segment's transmission
 *   time at the link's bandwidth) and arrives after the latency plus a
 *   jitter draw; segment_queue() then holds it behind the previous one.
 *   Link parameters are resolved once, at connect time (struct
 *   conn_link), so a connection keeps the path it started on.
 *
 *   Silent drop: c->dropped makes segment_queue() a no-op after every
 *   segment in flight was withdrawn; the senders' sequence numbers still
 *   advance, as their kernels believe the bytes were sent.
 *
 *   Memory: a connection holds one reference per unreleased endpoint and
 *   one per segment in flight; it is freed when the count reaches zero.
 *   sim_net_destroy() frees whatever is left, cancelling its events, so it
 *   must run before sim_sched_destroy() and after every owner of an
 *   endpoint (e.g. sim_remote_destroy) is gone.
 *
 * DIAGNOSTICS
 *   Using an endpoint after releasing it, or breaking an internal
 *   invariant, prints "sim_<fn>: ..." and aborts.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idxmap.h"
#include "net.h"
#include "prng.h"

#define SIM_NET_MAX_LOCALS 1024
#define SIM_NET_MAX_HOSTS 65536
/* Bytes one direction may have in flight; beyond it a send is -ENOBUFS. */
#define SIM_NET_MAX_INFLIGHT_BYTES ((size_t) 256 << 20)
#define SIM_NET_MAX_INFLIGHT_SEGS 65536
#define SIM_NET_PORT_FIRST 40000
#define SIM_NET_PORT_LAST 65535
#define SIM_NET_MAX_LINKS 65536
#define SIM_NET_MAX_PAIRS 65536
#define SIM_NET_PURPOSE_MAX 64

enum { DIR_C2S = 0, DIR_S2C = 1 };
enum sim_side { SIDE_CLIENT = 0, SIDE_SERVER = 1 };

enum seg_kind { SEG_SYN, SEG_SYNACK, SEG_REFUSE, SEG_ICMP, SEG_DATA, SEG_FIN, SEG_RST };

struct sim_seg {
    struct sim_seg *next;
    struct sim_conn *conn;
    int dir;
    enum seg_kind kind;
    sim_event_id event;
    size_t len;
    char data[];
};

/* Segments with at most this much payload are recycled through the
 * network's spare list (commands, replies, small bodies): a large run
 * sends millions.  Longer ones are allocated to size. */
#define SIM_SEG_POOLED_DATA 512

struct sim_dir {
    struct sim_seg *head, *tail;
    size_t nsegs;
    size_t bytes;
    sim_usec last_arrival;      /* arrival time of the last segment queued */
    sim_usec tx_free;           /* when the sender's side of the link is free */
    uint32_t snd_nxt;           /* sender's next relative sequence number */
    uint32_t rcv_nxt;           /* receiver's next expected sequence number */
};

struct sim_ep {
    struct sim_conn *conn;
    enum sim_side side;
    sim_ep_fn fn;
    void *arg;
    int exists;                 /* the server side exists once accepted */
    int released;               /* the owner closed or reset it */
    int peer_gone;              /* a FIN or RST from the peer was delivered */
    int sent_fin;
    int dead;                   /* sent or received an RST: no more packets */
};

/* The path parameters a connection uses, resolved at connect time. */
struct conn_link {
    sim_usec latency, jitter;
    uint64_t bandwidth;
    size_t segment;
};

struct sim_conn {
    struct sim_net *net;
    struct sim_conn *prev, *next;       /* the net's live list, connect order */
    uint64_t id;
    uint32_t src, dst;
    uint16_t sport, dport;
    struct sim_host host;               /* copied at connect time */
    int has_host;
    size_t host_index;                  /* into net->hosts, when has_host */
    struct conn_link link;
    struct sim_prng jitter_rng;         /* (seed, "jitter SRC>DST", k) */
    int dropped;                        /* silent drop: nothing arrives any more */
    int peer;                           /* from a simulated outside host (connect_peer) */
    int established;                    /* the client saw SIM_EP_CONNECTED */
    int handshake_over;                 /* connected, refused or unreachable */
    int refs;
    struct sim_ep ep[2];                /* indexed by enum sim_side */
    struct sim_dir dir[2];              /* indexed by DIR_*; dir d is sent by side d */
};

/* A host on the network and what the network tracks about it. */
struct net_host {
    struct sim_host h;
    struct sim_prng connect_rng;        /* (seed, "connect ADDR", 0) */
    int active;                         /* accepted, not yet released by the host */
};

/* Connections made so far between two addresses: the jitter stream index. */
struct net_pair {
    uint32_t src, dst;
    uint64_t count;
};

struct sim_net {
    struct sim_sched *sched;
    uint64_t seed;
    sim_packet_fn observer;
    void *observer_arg;
    int max_open;
    int open_count;
    int live_count;
    uint64_t next_conn_id;
    uint32_t next_port;
    uint32_t *locals;
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
    struct idxmap link_index;   /* src << 32 | dst -> links[] */
    struct idxmap pair_index;   /* src << 32 | dst -> pairs[] */
};

/* net_die - report a broken contract and stop loudly */
static void net_die(const char *fn, const char *what)
{
    fprintf(stderr, "%s: %s\n", fn, what);
    abort();
}

/* net_xrealloc - realloc that treats exhaustion as fatal */
static void *net_xrealloc(void *p, size_t n, size_t size)
{
    void *q;

    if (n != 0 && size > SIZE_MAX / n)
        net_die("sim_net", "allocation overflow");
    q = realloc(p, n * size);
    if (q == NULL && n * size != 0)
        net_die("sim_net", "out of memory");
    return q;
}

/* conn_free - unlink and free a connection nobody refers to any more */
static void conn_free(struct sim_conn *c)
{
    struct sim_net *n = c->net;

    assert(c->refs == 0);
    assert(c->dir[0].head == NULL && c->dir[1].head == NULL);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        n->last = c->prev;
    n->live_count--;
    assert(n->live_count >= 0);
    free(c);
}

/* conn_unref - drop one reference; the last one frees the connection */
static void conn_unref(struct sim_conn *c)
{
    assert(c->refs > 0);
    if (--c->refs == 0)
        conn_free(c);
}

/* observe_packet - show one packet to the observer */
static void observe_packet(struct sim_conn *c, int from_side, uint8_t flags,
                           const char *payload, size_t len, int icmp)
{
    struct sim_net *n = c->net;
    struct sim_packet pkt;
    int d = from_side;

    /* After a silent drop the host's packets never reach the MTA's side. */
    if (c->dropped && from_side == SIDE_SERVER)
        return;
    memset(&pkt, 0, sizeof pkt);
    pkt.time = sim_sched_now(n->sched);
    pkt.conn_id = c->id;
    if (from_side == SIDE_CLIENT) {
        pkt.src = c->src; pkt.dst = c->dst; pkt.sport = c->sport; pkt.dport = c->dport;
    } else {
        pkt.src = c->dst; pkt.dst = c->src; pkt.sport = c->dport; pkt.dport = c->sport;
    }
    pkt.flags = flags;
    pkt.seq = c->dir[d].snd_nxt;
    /* What this side has received of the other direction. */
    pkt.ack = (flags & SIM_TCP_ACK) ? c->dir[1 - d].rcv_nxt : 0;
    pkt.payload = payload;
    pkt.len = len;
    pkt.icmp_unreachable = icmp;
    n->observer(n->observer_arg, &pkt);
}

/* observe - show one packet to the observer, if any (most runs have none) */
static inline void observe(struct sim_conn *c, int from_side, uint8_t flags,
                           const char *payload, size_t len, int icmp)
{
    if (c->net->observer != NULL)
        observe_packet(c, from_side, flags, payload, len, icmp);
}

static void segment_arrive(void *arg);

/* segment_alloc - room for a segment of len payload bytes */
static struct sim_seg *segment_alloc(struct sim_net *n, size_t len)
{
    struct sim_seg *seg;

    if (len <= SIM_SEG_POOLED_DATA && n->spare != NULL) {
        seg = n->spare;
        n->spare = seg->next;
        return seg;
    }
    seg = malloc(sizeof *seg + (len <= SIM_SEG_POOLED_DATA ? SIM_SEG_POOLED_DATA : len));
    if (seg == NULL)
        net_die("segment_alloc", "out of memory");
    return seg;
}

/* segment_release - done with seg: pooled sizes are kept for reuse */
static void segment_release(struct sim_net *n, struct sim_seg *seg)
{
    if (seg->len <= SIM_SEG_POOLED_DATA) {
        seg->next = n->spare;
        n->spare = seg;
        return;
    }
    free(seg);
}

/* conn_arrival - when a segment of len bytes sent now in direction d arrives */
static sim_usec conn_arrival(struct sim_conn *c, int d, size_t len)
{
    struct sim_dir *dir = &c->dir[d];
    sim_usec now = sim_sched_now(c->net->sched);
    sim_usec leave = dir->tx_free > now ? dir->tx_free : now;
    sim_usec delay = c->link.latency;

    if (c->link.bandwidth > 0) {
        /* Whole microseconds, rounded up: a byte is never free. */
        uint64_t tx = ((uint64_t) len * 1000000u + c->link.bandwidth - 1) / c->link.bandwidth;

        assert(tx <= (uint64_t) INT64_MAX / 2);
        leave += (sim_usec) tx;
    }
    dir->tx_free = leave;
    if (c->link.jitter > 0)
        delay += (sim_usec) sim_prng_below(&c->jitter_rng, (uint64_t) c->link.jitter + 1);
    return leave + delay;
}

/* segment_queue - put a segment on the wire in direction d, arriving at 'at' */
static struct sim_seg *segment_queue(struct sim_conn *c, int d, enum seg_kind kind,
                                     const void *data, size_t len, sim_usec at)
{
    struct sim_dir *dir = &c->dir[d];
    struct sim_seg *seg;

    assert(d == DIR_C2S || d == DIR_S2C);
    if (c->dropped)
        return NULL;        /* the path is dead: the segment is lost */
    /* FIFO order per direction is what makes the head check valid. */
    if (at < dir->last_arrival)
        at = dir->last_arrival;
    seg = segment_alloc(c->net, len);
    seg->next = NULL;
    seg->conn = c;
    seg->dir = d;
    seg->kind = kind;
    seg->len = len;
    if (len > 0)
        memcpy(seg->data, data, len);
    if (dir->tail)
        dir->tail->next = seg;
    else
        dir->head = seg;
    dir->tail = seg;
    dir->nsegs++;
    dir->bytes += len;
    dir->last_arrival = at;
    c->refs++;
    seg->event = sim_sched_at_kind(c->net->sched, at, segment_arrive, seg, SIM_EV_SEGMENT);
    return seg;
}

/* segment_withdraw_all - cancel every segment still in flight in direction d */
static void segment_withdraw_all(struct sim_conn *c, int d)
{
    struct sim_dir *dir = &c->dir[d];
    size_t bound = dir->nsegs;

    while (dir->head != NULL) {
        struct sim_seg *seg = dir->head;
        int cancelled;

        assert(bound-- > 0);
        dir->head = seg->next;
        dir->nsegs--;
        dir->bytes -= seg->len;
        cancelled = sim_sched_cancel(c->net->sched, seg->event);
        assert(cancelled);
        (void) cancelled;
        segment_release(c->net, seg);
        /* No unref here: the caller holds an endpoint reference, so the
         * connection cannot vanish under it; drop them afterwards. */
        c->refs--;
        assert(c->refs > 0);
    }
    dir->tail = NULL;
    assert(dir->nsegs == 0 && dir->bytes == 0);
}

/* ep_deliver - hand an event to the endpoint's owner, if it still listens */
static void ep_deliver(struct sim_ep *ep, enum sim_ep_event ev, const char *data, size_t len)
{
    if (ep->released || ep->fn == NULL)
        return;
    ep->fn(ep->arg, ep, ev, data, len);
}

/* host_accept - the SYN reached an accepting host: create the server side */
static void host_accept(struct sim_conn *c, sim_usec now)
{
    struct sim_ep *srv = &c->ep[SIDE_SERVER];

    c->dir[DIR_S2C].last_arrival = now;
    c->dir[DIR_S2C].tx_free = now;
    /* SYN-ACK first, so it is ahead of anything the accept function sends. */
    observe(c, SIDE_SERVER, SIM_TCP_SYN | SIM_TCP_ACK, NULL, 0, 0);
    c->dir[DIR_S2C].snd_nxt = 1;
    segment_queue(c, DIR_S2C, SEG_SYNACK, NULL, 0, conn_arrival(c, DIR_S2C, 0));
    srv->exists = 1;
    c->net->hosts[c->host_index].active++;
    c->refs++;
    assert(c->host.accept != NULL);
    c->host.accept(c->host.accept_arg, srv);
    /* The host must either listen on the endpoint or have let it go. */
    assert(srv->fn != NULL || srv->released);
}

/* segment_arrive_syn - the client's SYN reached the host */
static void segment_arrive_syn(struct sim_conn *c, sim_usec now)
{
    const struct net_host *nh = &c->net->hosts[c->host_index];
    enum sim_connect_mode mode = c->host.mode;

    if (c->ep[SIDE_CLIENT].released)
        return;             /* withdrawn attempts are cancelled; be safe */
    if (mode == SIM_CONNECT_ACCEPT && nh->h.backlog > 0 && nh->active >= nh->h.backlog) {
        /* The accept queue is full: the SYN is dropped or refused. */
        if (nh->h.backlog_mode == SIM_BACKLOG_TIMEOUT)
            return;
        mode = SIM_CONNECT_REFUSE;
    }
    c->dir[DIR_C2S].rcv_nxt = 1;
    switch (mode) {
    case SIM_CONNECT_ACCEPT:
        host_accept(c, now);
        break;
    case SIM_CONNECT_REFUSE:
        /* RST|ACK in answer to a SYN to a closed port. */
        observe(c, SIDE_SERVER, SIM_TCP_RST | SIM_TCP_ACK, NULL, 0, 0);
        c->dir[DIR_S2C].tx_free = now;
        segment_queue(c, DIR_S2C, SEG_REFUSE, NULL, 0, conn_arrival(c, DIR_S2C, 0));
        break;
    case SIM_CONNECT_UNREACHABLE:
        observe(c, SIDE_SERVER, 0, NULL, 0, 1);
        c->dir[DIR_S2C].tx_free = now;
        segment_queue(c, DIR_S2C, SEG_ICMP, NULL, 0, conn_arrival(c, DIR_S2C, 0));
        break;
    case SIM_CONNECT_TIMEOUT:
    default:
        net_die("segment_arrive_syn", "SYN scheduled for a silent host");
    }
}

/* segment_arrive - one segment reaches the other side */
static void segment_arrive(void *arg)
{
    struct sim_seg *seg = arg;
    struct sim_conn *c = seg->conn;
    struct sim_dir *dir = &c->dir[seg->dir];
    struct sim_ep *rcv = &c->ep[1 - seg->dir];
    sim_usec now = sim_sched_now(c->net->sched);

    /* Pop first: the owner's callback may queue or withdraw segments. */
    if (dir->head != seg)
        net_die("segment_arrive", "segment out of order");
    dir->head = seg->next;
    if (dir->head == NULL)
        dir->tail = NULL;
    dir->nsegs--;
    dir->bytes -= seg->len;

    switch (seg->kind) {
    case SEG_SYN:
        segment_arrive_syn(c, now);
        break;
    case SEG_SYNACK:
        c->dir[DIR_S2C].rcv_nxt = 1;
        if (rcv->released)
            break;          /* the client gave up; its RST is on the way */
        c->handshake_over = 1;
        c->established = 1;
        observe(c, SIDE_CLIENT, SIM_TCP_ACK, NULL, 0, 0);
        ep_deliver(rcv, SIM_EP_CONNECTED, NULL, 0);
        break;
    case SEG_REFUSE:
    case SEG_ICMP:
        c->handshake_over = 1;
        rcv->dead = 1;
        rcv->peer_gone = 1;
        ep_deliver(rcv, seg->kind == SEG_REFUSE ? SIM_EP_REFUSED : SIM_EP_UNREACHABLE,
                   NULL, 0);
        break;
    case SEG_DATA:
        if (rcv->dead)
            break;
        dir->rcv_nxt += (uint32_t) seg->len;
        observe(c, 1 - seg->dir, SIM_TCP_ACK, NULL, 0, 0);
        ep_deliver(rcv, SIM_EP_DATA, seg->data, seg->len);
        break;
    case SEG_FIN:
        if (rcv->dead)
            break;
        dir->rcv_nxt += 1;
        observe(c, 1 - seg->dir, SIM_TCP_ACK, NULL, 0, 0);
        rcv->peer_gone = 1;
        ep_deliver(rcv, SIM_EP_FIN, NULL, 0);
        break;
    case SEG_RST:
        if (rcv->dead)
            break;
        rcv->dead = 1;
        rcv->peer_gone = 1;
        if (rcv->side == SIDE_CLIENT && !c->handshake_over) {
            /* The host reset before its SYN-ACK got here: to the client
             * that is a refused connection, not a reset of a live one. */
            c->handshake_over = 1;
            ep_deliver(rcv, SIM_EP_REFUSED, NULL, 0);
            break;
        }
        ep_deliver(rcv, SIM_EP_RST, NULL, 0);
        break;
    }
    segment_release(c->net, seg);
    conn_unref(c);
}

/* sim_net_create - an empty network on scheduler s */
struct sim_net *sim_net_create(struct sim_sched *s)
{
    struct sim_net *n = calloc(1, sizeof *n);

    assert(s != NULL);
    if (n == NULL)
        net_die("sim_net_create", "out of memory");
    n->sched = s;
    n->next_conn_id = 1;
    n->next_port = SIM_NET_PORT_FIRST;
    return n;
}

/* sim_net_destroy - free the network and every connection still alive */
void sim_net_destroy(struct sim_net *n)
{
    size_t bound;

    if (n == NULL)
        return;
    bound = (size_t) n->live_count;
    while (n->first != NULL) {
        struct sim_conn *c = n->first;
        int d;

        assert(bound-- > 0);
        for (d = 0; d < 2; d++) {
            struct sim_seg *seg = c->dir[d].head;

            while (seg != NULL) {
                struct sim_seg *next = seg->next;

                sim_sched_cancel(n->sched, seg->event);
                segment_release(n, seg);
                seg = next;
            }
            c->dir[d].head = c->dir[d].tail = NULL;
        }
        c->refs = 0;
        conn_free(c);
    }
    assert(n->live_count == 0);
    while (n->spare != NULL) {
        struct sim_seg *seg = n->spare;

        n->spare = seg->next;
        free(seg);
    }
    free(n->locals);
    free(n->hosts);
    free(n->links);
    free(n->pairs);
    idxmap_free(&n->host_index);
    idxmap_free(&n->link_index);
    idxmap_free(&n->pair_index);
    free(n);
}

/* sim_net_set_observer - see every packet (fn NULL turns it off) */
void sim_net_set_observer(struct sim_net *n, sim_packet_fn fn, void *arg)
{
    n->observer = fn;
    n->observer_arg = arg;
}

/* sim_net_set_max_open - cap open client connections (0 = unlimited) */
void sim_net_set_max_open(struct sim_net *n, int max_open)
{
    assert(max_open >= 0);
    n->max_open = max_open;
}

/* sim_net_set_seed - the seed every stream of the network derives from */
void sim_net_set_seed(struct sim_net *n, uint64_t seed)
{
    /* Hosts seed their connect stream when added: the order matters. */
    assert(n->nhosts == 0);
    n->seed = seed;
}

/* sim_net_seed - the seed the network's streams derive from */
uint64_t sim_net_seed(const struct sim_net *n)
{
    return n->seed;
}

/* net_find_link - the link from src to dst, or NULL */
static const struct sim_link *net_find_link(const struct sim_net *n, uint32_t src, uint32_t dst)
{
    uint32_t i = idxmap_get(&n->link_index, (uint64_t) src << 32 | dst);

    return i == IDXMAP_NONE ? NULL : &n->links[i];
}

/* sim_net_add_link - path parameters for one (src, dst) pair */
int sim_net_add_link(struct sim_net *n, const struct sim_link *l)
{
    assert(l != NULL);
    if (net_find_link(n, l->src, l->dst) != NULL)
        return -1;
    if (n->nlinks >= SIM_NET_MAX_LINKS)
        net_die("sim_net_add_link", "too many links");
    n->links = net_xrealloc(n->links, n->nlinks + 1, sizeof *n->links);
    idxmap_put(&n->link_index, (uint64_t) l->src << 32 | l->dst, (uint32_t) n->nlinks);
    n->links[n->nlinks++] = *l;
    return 0;
}

/* net_pair_next - the number of earlier connections from src to dst; count this one */
static uint64_t net_pair_next(struct sim_net *n, uint32_t src, uint32_t dst)
{
    uint64_t key = (uint64_t) src << 32 | dst;
    uint32_t i = idxmap_get(&n->pair_index, key);

    if (i != IDXMAP_NONE)
        return n->pairs[i].count++;
    if (n->npairs >= SIM_NET_MAX_PAIRS)
        net_die("sim_net_connect", "too many distinct address pairs");
    if ((n->npairs & (n->npairs - 1)) == 0)     /* doubling: at 0, 1, 2, 4, ... */
        n->pairs = net_xrealloc(n->pairs, n->npairs ? 2 * n->npairs : 1, sizeof *n->pairs);
    idxmap_put(&n->pair_index, key, (uint32_t) n->npairs);
    n->pairs[n->npairs].src = src;
    n->pairs[n->npairs].dst = dst;
    n->pairs[n->npairs].count = 1;
    n->npairs++;
    return 0;
}

/* ipv4_text - dotted quad of a host-order address */
static void ipv4_text(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u, (a >> 8) & 255u, a & 255u);
}

/* conn_resolve_link - the path of a new connection: host values, link overrides */
static void conn_resolve_link(struct sim_conn *c)
{
    struct sim_net *n = c->net;
    const struct sim_link *l = net_find_link(n, c->src, c->dst);
    char purpose[SIM_NET_PURPOSE_MAX], s[16], d[16];
    uint64_t k = net_pair_next(n, c->src, c->dst);

    c->link.latency = c->has_host ? c->host.latency : 0;
    c->link.jitter = c->has_host ? c->host.jitter : 0;
    c->link.bandwidth = c->has_host ? c->host.bandwidth : 0;
    c->link.segment = c->has_host ? c->host.segment : 0;
    if (l != NULL) {
        if (l->latency >= 0)
            c->link.latency = l->latency;
        if (l->jitter >= 0)
            c->link.jitter = l->jitter;
        if (l->bandwidth != UINT64_MAX)
            c->link.bandwidth = l->bandwidth;
        if (l->segment != SIZE_MAX)
            c->link.segment = l->segment;
    }
    assert(c->link.latency >= 0 && c->link.jitter >= 0);
    if (c->link.jitter == 0)
        return;     /* no draws: the stream need not exist (its identity stays fixed) */
    ipv4_text(c->src, s);
    ipv4_text(c->dst, d);
    snprintf(purpose, sizeof purpose, "jitter %s>%s", s, d);
    sim_prng_init(&c->jitter_rng, n->seed, purpose, k);
}

/* host_choose_mode - the connect outcome for one attempt (random choices) */
static enum sim_connect_mode host_choose_mode(struct net_host *nh)
{
    enum sim_connect_mode mode = nh->h.mode;
    int i, decided = 0;

    /* One draw per choice, always: a changed probability never shifts
     * the draws of the attempts after it. */
    for (i = 0; i < nh->h.nchoices; i++) {
        int hit = sim_prng_chance(&nh->connect_rng, nh->h.choices[i].ppm);

        if (hit && !decided) {
            mode = nh->h.choices[i].mode;
            decided = 1;
        }
    }
    return mode;
}

/* net_is_local - is addr one of the MTA's own addresses? */
static int net_is_local(const struct sim_net *n, uint32_t addr)
{
    size_t i;

    for (i = 0; i < n->nlocals; i++)
        if (n->locals[i] == addr)
            return 1;
    return 0;
}

/* sim_net_add_local - an address connections may originate from */
void sim_net_add_local(struct sim_net *n, uint32_t addr)
{
    if (net_is_local(n, addr))
        return;
    if (n->nlocals >= SIM_NET_MAX_LOCALS)
        net_die("sim_net_add_local", "too many local addresses");
    n->locals = net_xrealloc(n->locals, n->nlocals + 1, sizeof *n->locals);
    n->locals[n->nlocals++] = addr;
}

/* net_find_host - the host at addr, or NULL */
static struct net_host *net_find_host(const struct sim_net *n, uint32_t addr)
{
    uint32_t i = idxmap_get(&n->host_index, addr);

    return i == IDXMAP_NONE ? NULL : &n->hosts[i];
}

/* sim_net_add_host - put a remote host on the network */
int sim_net_add_host(struct sim_net *n, const struct sim_host *h)
{
    assert(h != NULL);
    struct net_host *nh;
    char purpose[SIM_NET_PURPOSE_MAX], a[16];
    int i;

    assert(h->latency >= 0 && h->jitter >= 0 && h->backlog >= 0);
    assert(h->nchoices >= 0 && h->nchoices <= SIM_HOST_MAX_CHOICES);
    for (i = 0; i < h->nchoices; i++)
        assert(h->choices[i].ppm <= SIM_PRNG_PPM);
    /* An accept function is needed whenever an attempt may be accepted. */
    assert(h->accept != NULL || (h->mode != SIM_CONNECT_ACCEPT && h->nchoices == 0));
    if (net_find_host(n, h->addr) != NULL)
        return -1;
    if (n->nhosts >= SIM_NET_MAX_HOSTS)
        net_die("sim_net_add_host", "too many hosts");
    if ((n->nhosts & (n->nhosts - 1)) == 0)     /* doubling: at 0, 1, 2, 4, ... */
        n->hosts = net_xrealloc(n->hosts, n->nhosts ? 2 * n->nhosts : 1, sizeof *n->hosts);
    idxmap_put(&n->host_index, h->addr, (uint32_t) n->nhosts);
    nh = &n->hosts[n->nhosts++];
    memset(nh, 0, sizeof *nh);
    nh->h = *h;
    ipv4_text(h->addr, a);
    snprintf(purpose, sizeof purpose, "connect %s", a);
    sim_prng_init(&nh->connect_rng, n->seed, purpose, 0);
    return 0;
}

/* net_connect - start a connection from the MTA (peer 0) or from a
 * simulated outside host (peer 1: any source, not counted in open_count) */
static sim_ep *net_connect(struct sim_net *n, uint32_t src, uint32_t dst, uint16_t port,
                           sim_ep_fn fn, void *arg, int *err, int peer)
{
    struct net_host *nh;
    struct sim_conn *c;
    sim_usec now = sim_sched_now(n->sched);
    int dummy;

    if (err == NULL)
        err = &dummy;
    assert(fn != NULL);
    if (!peer && !net_is_local(n, src)) {
        *err = -EADDRNOTAVAIL;
        return NULL;
    }
    if (!peer && n->max_open > 0 && n->open_count >= n->max_open) {
        *err = -EMFILE;
        return NULL;
    }
    /* The host's mode is chosen first: with no route to it, connect() fails
     * at once (ENETUNREACH), and nothing leaves the MTA. */
    nh = net_find_host(n, dst);
    enum sim_connect_mode mode = nh != NULL ? host_choose_mode(nh) : SIM_CONNECT_TIMEOUT;
    if (nh != NULL && mode == SIM_CONNECT_NO_ROUTE) {
        if (!peer) {
            *err = -ENETUNREACH;
            return NULL;
        }
        mode = SIM_CONNECT_TIMEOUT;     /* an outside host's route is not modelled */
    }
    c = calloc(1, sizeof *c);
    if (c == NULL)
        net_die("sim_net_connect", "out of memory");
    c->net = n;
    c->peer = peer;
    c->id = n->next_conn_id++;
    c->src = src;
    c->dst = dst;
    c->dport = port;
    c->sport = (uint16_t) n->next_port;
    /* Wrap inside the ephemeral range: still deterministic, never 0. */
    n->next_port = n->next_port >= SIM_NET_PORT_LAST ? SIM_NET_PORT_FIRST : n->next_port + 1;
    c->ep[SIDE_CLIENT].conn = c;
    c->ep[SIDE_CLIENT].side = SIDE_CLIENT;
    c->ep[SIDE_CLIENT].fn = fn;
    c->ep[SIDE_CLIENT].arg = arg;
    c->ep[SIDE_CLIENT].exists = 1;
    c->ep[SIDE_SERVER].conn = c;
    c->ep[SIDE_SERVER].side = SIDE_SERVER;
    c->dir[0].last_arrival = c->dir[1].last_arrival = now;
    c->dir[0].tx_free = c->dir[1].tx_free = now;
    c->refs = 1;
    c->prev = n->last;
    if (n->last)
        n->last->next = c;
    else
        n->first = c;
    n->last = c;
    n->live_count++;
    if (!peer)
        n->open_count++;

    if (nh != NULL) {
        c->host = nh->h;
        c->host.mode = mode;
        c->has_host = 1;
        c->host_index = (size_t) (nh - n->hosts);
        /* A SYN to a port nobody listens on is refused, as by a real stack. */
        if (nh->h.port != port && c->host.mode == SIM_CONNECT_ACCEPT)
            c->host.mode = SIM_CONNECT_REFUSE;
    }
    conn_resolve_link(c);
    observe(c, SIDE_CLIENT, SIM_TCP_SYN, NULL, 0, 0);
    c->dir[DIR_C2S].snd_nxt = 1;
    /* A silent host (TIMEOUT) or no host at all: the SYN just vanishes. */
    if (c->has_host && c->host.mode != SIM_CONNECT_TIMEOUT)
        segment_queue(c, DIR_C2S, SEG_SYN, NULL, 0, conn_arrival(c, DIR_C2S, 0));
    *err = 0;
    return &c->ep[SIDE_CLIENT];
}

/* sim_net_connect - start a connection; outcome arrives as an event */
sim_ep *sim_net_connect(struct sim_net *n, uint32_t src, uint32_t dst, uint16_t port,
                        sim_ep_fn fn, void *arg, int *err)
{
    return net_connect(n, src, dst, port, fn, arg, err, 0);
}

/* sim_net_connect_peer - a connection from a simulated outside host */
sim_ep *sim_net_connect_peer(struct sim_net *n, uint32_t src, uint32_t dst, uint16_t port,
                             sim_ep_fn fn, void *arg, int *err)
{
    return net_connect(n, src, dst, port, fn, arg, err, 1);
}

/* sim_ep_set_handler - (re)direct the endpoint's events */
void sim_ep_set_handler(sim_ep *ep, sim_ep_fn fn, void *arg)
{
    assert(ep != NULL && ep->exists);
    if (ep->released)
        net_die("sim_ep_set_handler", "endpoint already released");
    ep->fn = fn;
    ep->arg = arg;
}

/* ep_peer - the other endpoint of the connection */
static struct sim_ep *ep_peer(sim_ep *ep)
{
    return &ep->conn->ep[1 - ep->side];
}

/* sim_ep_send - one write, cut into the link's segments; 0 or a negative errno */
int sim_ep_send(sim_ep *ep, const void *data, size_t len)
{
    struct sim_conn *c;
    struct sim_dir *dir;
    size_t seg_max, off, nsegs;

    assert(ep != NULL && ep->exists);
    if (ep->released)
        net_die("sim_ep_send", "endpoint already released");
    c = ep->conn;
    dir = &c->dir[ep->side];
    if (ep->peer_gone || ep->dead)
        return -EPIPE;
    if (ep->side == SIDE_CLIENT && !c->established)
        return -ENOTCONN;
    if (len == 0)
        return 0;
    assert(data != NULL);
    if (dir->bytes + len > SIM_NET_MAX_INFLIGHT_BYTES || dir->nsegs >= SIM_NET_MAX_INFLIGHT_SEGS)
        return -ENOBUFS;
    if (len > UINT32_MAX)
        return -EMSGSIZE;
    seg_max = c->link.segment > 0 ? c->link.segment : len;
    nsegs = (len + seg_max - 1) / seg_max;
    if (dir->nsegs + nsegs > SIM_NET_MAX_INFLIGHT_SEGS)
        return -ENOBUFS;
    for (off = 0; off < len; off += seg_max) {
        size_t n = len - off < seg_max ? len - off : seg_max;
        const char *piece = (const char *) data + off;

        observe(c, ep->side, SIM_TCP_PSH | SIM_TCP_ACK, piece, n, 0);
        dir->snd_nxt += (uint32_t) n;
        segment_queue(c, ep->side, SEG_DATA, piece, n, conn_arrival(c, ep->side, n));
    }
    return 0;
}

/* ep_release - the owner lets go; drop its reference */
static void ep_release(sim_ep *ep)
{
    struct sim_conn *c = ep->conn;

    ep->released = 1;
    ep->fn = NULL;
    ep->arg = NULL;
    if (ep->side == SIDE_CLIENT) {
        if (!c->peer)
            c->net->open_count--;
        assert(c->net->open_count >= 0);
    } else {
        struct net_host *nh = &c->net->hosts[c->host_index];

        assert(c->has_host && nh->active > 0);
        nh->active--;
    }
    conn_unref(c);
}

/* ep_abort_handshake - the client gives up before it was connected */
static void ep_abort_handshake(sim_ep *ep)
{
    struct sim_conn *c = ep->conn;
    struct sim_ep *srv = &c->ep[SIDE_SERVER];

    assert(ep->side == SIDE_CLIENT && !c->handshake_over);
    if (srv->exists && !srv->dead) {
        /* The host accepted already: tell it the attempt is off. */
        segment_withdraw_all(c, DIR_C2S);
        observe(c, SIDE_CLIENT, SIM_TCP_RST, NULL, 0, 0);
        segment_queue(c, DIR_C2S, SEG_RST, NULL, 0, conn_arrival(c, DIR_C2S, 0));
    } else {
        /* The SYN (if any) has not arrived: withdraw it silently, the way
         * closing a socket in SYN_SENT sends nothing. */
        segment_withdraw_all(c, DIR_C2S);
    }
    ep->dead = 1;
}

/* sim_ep_close - orderly close (FIN after the data) and release */
void sim_ep_close(sim_ep *ep)
{
    struct sim_conn *c;
    struct sim_dir *dir;

    assert(ep != NULL && ep->exists);
    if (ep->released)
        net_die("sim_ep_close", "endpoint already released");
    c = ep->conn;
    dir = &c->dir[ep->side];
    if (ep->side == SIDE_CLIENT && !c->handshake_over) {
        ep_abort_handshake(ep);
    } else if (!ep->dead && !ep->sent_fin) {
        observe(c, ep->side, SIM_TCP_FIN | SIM_TCP_ACK, NULL, 0, 0);
        dir->snd_nxt += 1;
        ep->sent_fin = 1;
        segment_queue(c, ep->side, SEG_FIN, NULL, 0, conn_arrival(c, ep->side, 0));
    }
    ep_release(ep);
}

/* sim_ep_reset - abortive close: RST, in-flight data discarded, release */
void sim_ep_reset(sim_ep *ep)
{
    struct sim_conn *c;
    struct sim_ep *peer;

    assert(ep != NULL && ep->exists);
    if (ep->released)
        net_die("sim_ep_reset", "endpoint already released");
    c = ep->conn;
    peer = ep_peer(ep);
    if (ep->side == SIDE_CLIENT && !c->handshake_over) {
        ep_abort_handshake(ep);
    } else if (!ep->dead) {
        /* Both directions: what we sent is lost, what is coming to us has
         * no reader.  The endpoint reference keeps c alive meanwhile. */
        segment_withdraw_all(c, DIR_C2S);
        segment_withdraw_all(c, DIR_S2C);
        observe(c, ep->side, SIM_TCP_RST | SIM_TCP_ACK, NULL, 0, 0);
        ep->dead = 1;
        if (peer->exists && !peer->dead)
            segment_queue(c, ep->side, SEG_RST, NULL, 0, conn_arrival(c, ep->side, 0));
    }
    ep_release(ep);
}

/* sim_ep_drop - silent drop: lose what is in flight and all that follows */
void sim_ep_drop(sim_ep *ep)
{
    struct sim_conn *c;

    assert(ep != NULL && ep->exists);
    if (ep->released)
        net_die("sim_ep_drop", "endpoint already released");
    c = ep->conn;
    if (c->dropped)
        return;
    /* The owner's reference keeps c alive while its segments go. */
    segment_withdraw_all(c, DIR_C2S);
    segment_withdraw_all(c, DIR_S2C);
    c->dropped = 1;
}

/* sim_ep_conn_id - the connection's number, 1, 2, ... in connect order */
uint64_t sim_ep_conn_id(const sim_ep *ep)
{
    assert(ep != NULL);
    return ep->conn->id;
}

/* sim_ep_peer_addr - the address at the other end */
uint32_t sim_ep_peer_addr(const sim_ep *ep)
{
    assert(ep != NULL);
    return ep->side == SIDE_CLIENT ? ep->conn->dst : ep->conn->src;
}

/* sim_ep_peer_port - the port at the other end */
uint16_t sim_ep_peer_port(const sim_ep *ep)
{
    assert(ep != NULL);
    return ep->side == SIDE_CLIENT ? ep->conn->dport : ep->conn->sport;
}

/* sim_ep_local_addr - the address at this end */
uint32_t sim_ep_local_addr(const sim_ep *ep)
{
    assert(ep != NULL);
    return ep->side == SIDE_CLIENT ? ep->conn->src : ep->conn->dst;
}

/* sim_ep_local_port - the port at this end */
uint16_t sim_ep_local_port(const sim_ep *ep)
{
    assert(ep != NULL);
    return ep->side == SIDE_CLIENT ? ep->conn->sport : ep->conn->dport;
}

/* sim_net_open_count - client endpoints not yet released by their owners */
int sim_net_open_count(const struct sim_net *n)
{
    return n->open_count;
}

/* sim_net_live_count - connections whose memory is not yet freed */
int sim_net_live_count(const struct sim_net *n)
{
    return n->live_count;
}
