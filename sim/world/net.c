/*
 * net - simulated hosts and TCP connections
 *
 * SYNOPSIS
 *   See net.h.
 *
 * DESCRIPTION
 *   This file is the network: the MTA's local addresses and socket
 *   buffers, the remote hosts (their listeners, connect modes, random
 *   outcomes, backlog), the links between two addresses, and the life of
 *   a connection (creation with its path resolved once, so a connection
 *   keeps the path it started on; references; freeing).  What happens on
 *   a connection - the TCP of each side - is tcp.c; the two share
 *   net_internal.h.
 *
 *   Memory: see net_internal.h for a connection's references.
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

#include "net_internal.h"

#define SIM_NET_MAX_LOCALS 1024
#define SIM_NET_MAX_HOSTS 65536
#define SIM_NET_PORT_FIRST 40000
#define SIM_NET_PORT_LAST 65535
#define SIM_NET_MAX_LINKS 65536
#define SIM_NET_MAX_PAIRS 65536
#define SIM_NET_PURPOSE_MAX 64

/* net_die - report a broken contract and stop loudly */
void net_die(const char *fn, const char *what)
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
    assert(c->wire[0].head == NULL && c->wire[1].head == NULL);
    tcp_conn_teardown(c);
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

/* conn_ref - one more reference (an endpoint, a segment, an event) */
void conn_ref(struct sim_conn *c)
{
    c->refs++;
}

/* conn_unref - drop one reference; the last one frees the connection */
void conn_unref(struct sim_conn *c)
{
    assert(c->refs > 0);
    if (--c->refs == 0)
        conn_free(c);
}

/* conn_host_count - the connection starts or stops counting against the backlog */
void conn_host_count(struct sim_conn *c, int delta)
{
    struct net_host *nh;

    assert(c->has_host && (delta == 1 || delta == -1));
    assert(c->counted == (delta < 0));
    nh = &c->net->hosts[c->host_index];
    nh->active += delta;
    c->counted = delta > 0;
    assert(nh->active >= 0);
}

/* conn_syn_mode - what a SYN arriving now at the host meets */
enum sim_connect_mode conn_syn_mode(struct sim_conn *c)
{
    const struct net_host *nh = &c->net->hosts[c->host_index];
    enum sim_connect_mode mode = c->host.mode;

    if (mode == SIM_CONNECT_ACCEPT && nh->h.backlog > 0 && nh->active >= nh->h.backlog)
        return nh->h.backlog_mode == SIM_BACKLOG_TIMEOUT ? SIM_CONNECT_TIMEOUT
                                                         : SIM_CONNECT_REFUSE;
    return mode;
}

/* net_observe - show one segment to the observer, as it is on the wire now */
void net_observe(struct sim_conn *c, const struct sim_seg *seg)
{
    struct sim_net *n = c->net;
    struct sim_packet pkt;

    if (n->observer == NULL)
        return;
    memset(&pkt, 0, sizeof pkt);
    pkt.time = sim_sched_now(n->sched);
    pkt.conn_id = c->id;
    if (seg->from == SIDE_CLIENT) {
        pkt.src = c->src; pkt.dst = c->dst; pkt.sport = c->sport; pkt.dport = c->dport;
    } else {
        pkt.src = c->dst; pkt.dst = c->src; pkt.sport = c->dport; pkt.dport = c->sport;
    }
    pkt.flags = seg->flags;
    pkt.seq = seg->seq;
    pkt.ack = (seg->flags & SIM_TCP_ACK) ? seg->ack : 0;
    pkt.window = seg->window_field;
    pkt.mss = seg->mss;
    pkt.wscale = seg->wscale;
    pkt.payload = seg->len > 0 ? seg->data : NULL;
    pkt.len = seg->len;
    pkt.icmp_unreachable = seg->kind == SEG_ICMP;
    n->observer(n->observer_arg, &pkt);
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
            struct sim_seg *seg = c->wire[d].head;

            while (seg != NULL) {
                struct sim_seg *next = seg->next;

                sim_sched_cancel(n->sched, seg->event);
                seg_free(n, seg);
                seg = next;
            }
            c->wire[d].head = c->wire[d].tail = NULL;
        }
        c->refs = 0;
        conn_free(c);       /* tcp_conn_teardown cancels the TCPs' events */
    }
    while (n->spare != NULL) {
        struct sim_seg *next = n->spare->next;

        free(n->spare);
        n->spare = next;
    }
    idxmap_free(&n->host_index);
    idxmap_free(&n->link_index);
    idxmap_free(&n->pair_index);
    free(n->locals);
    free(n->hosts);
    free(n->links);
    free(n->pairs);
    free(n);
}

/* sim_net_set_observer - packets go to fn(arg, pkt) from now on */
void sim_net_set_observer(struct sim_net *n, sim_packet_fn fn, void *arg)
{
    n->observer = fn;
    n->observer_arg = arg;
}

/* sim_net_set_max_open - the MTA's descriptor limit (0 = none) */
void sim_net_set_max_open(struct sim_net *n, int max_open)
{
    assert(max_open >= 0);
    n->max_open = max_open;
}

/* sim_net_set_buffers - the MTA's socket buffers (0 = the default) */
void sim_net_set_buffers(struct sim_net *n, size_t sndbuf, size_t rcvbuf)
{
    assert(sndbuf <= SIM_NET_BUF_MAX && rcvbuf <= SIM_NET_BUF_MAX);
    n->sndbuf = sndbuf;
    n->rcvbuf = rcvbuf;
}

/* sim_net_set_seed - the seed the network's streams derive from */
void sim_net_set_seed(struct sim_net *n, uint64_t seed)
{
    assert(n->nhosts == 0 && n->first == NULL);
    n->seed = seed;
}

/* sim_net_seed - the seed the network's streams derive from */
uint64_t sim_net_seed(const struct sim_net *n)
{
    return n->seed;
}

/* net_pair_key - the idxmap key of an address pair (IPv4 pairs as before:
 * src << 32 | dst; others may collide, so every lookup confirms) */
static uint64_t net_pair_key(mta_ip src, mta_ip dst)
{
    if (mta_ip_is_v4(src) && mta_ip_is_v4(dst))
        return (uint64_t) mta_ip_v4_of(src) << 32 | mta_ip_v4_of(dst);
    return mta_ip_key(src) * 1099511628211ULL ^ mta_ip_key(dst);
}

/* net_find_link - the link from src to dst, or NULL */
static const struct sim_link *net_find_link(const struct sim_net *n, mta_ip src, mta_ip dst)
{
    uint64_t key = net_pair_key(src, dst);
    size_t pos;

    for (uint32_t i = idxmap_first(&n->link_index, key, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&n->link_index, key, &pos))
        if (mta_ip_eq(n->links[i].src, src) && mta_ip_eq(n->links[i].dst, dst))
            return &n->links[i];
    return NULL;
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
    idxmap_put(&n->link_index, net_pair_key(l->src, l->dst), (uint32_t) n->nlinks);
    n->links[n->nlinks++] = *l;
    return 0;
}

/* net_pair_next - the number of earlier connections from src to dst; count
 * this one, and give it the pair's scheduler lanes (sim_sched.h) */
static uint64_t net_pair_next(struct sim_net *n, mta_ip src, mta_ip dst, sim_lane lane[2])
{
    uint64_t key = net_pair_key(src, dst);
    size_t pos;

    for (uint32_t i = idxmap_first(&n->pair_index, key, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&n->pair_index, key, &pos))
        if (mta_ip_eq(n->pairs[i].src, src) && mta_ip_eq(n->pairs[i].dst, dst)) {
            lane[0] = n->pairs[i].lane[0];
            lane[1] = n->pairs[i].lane[1];
            return n->pairs[i].count++;
        }
    if (n->npairs >= SIM_NET_MAX_PAIRS)
        net_die("sim_net_connect", "too many distinct address pairs");
    if ((n->npairs & (n->npairs - 1)) == 0)     /* doubling: at 0, 1, 2, 4, ... */
        n->pairs = net_xrealloc(n->pairs, n->npairs ? 2 * n->npairs : 1, sizeof *n->pairs);
    idxmap_put(&n->pair_index, key, (uint32_t) n->npairs);
    n->pairs[n->npairs].src = src;
    n->pairs[n->npairs].dst = dst;
    n->pairs[n->npairs].count = 1;
    n->pairs[n->npairs].lane[0] = lane[0] = sim_sched_lane(n->sched);
    n->pairs[n->npairs].lane[1] = lane[1] = sim_sched_lane(n->sched);
    n->npairs++;
    return 0;
}

/* conn_resolve_link - the path of a new connection: host values, link overrides */
static void conn_resolve_link(struct sim_conn *c)
{
    struct sim_net *n = c->net;
    const struct sim_link *l = net_find_link(n, c->src, c->dst);
    char purpose[SIM_NET_PURPOSE_MAX], s[MTA_IP_TEXT], d[MTA_IP_TEXT];
    uint64_t k = net_pair_next(n, c->src, c->dst, c->lane);

    c->link.latency = c->has_host ? c->host.latency : 0;
    c->link.jitter = c->has_host ? c->host.jitter : 0;
    c->link.bandwidth = c->has_host ? c->host.bandwidth : 0;
    c->link.mss = c->has_host ? c->host.segment : 0;
    c->link.loss_ppm = c->has_host ? c->host.loss_ppm : 0;
    if (l != NULL) {
        if (l->latency >= 0)
            c->link.latency = l->latency;
        if (l->jitter >= 0)
            c->link.jitter = l->jitter;
        if (l->bandwidth != UINT64_MAX)
            c->link.bandwidth = l->bandwidth;
        if (l->segment != SIZE_MAX)
            c->link.mss = l->segment;
        if (l->loss_ppm != UINT32_MAX)
            c->link.loss_ppm = l->loss_ppm;
    }
    if (c->link.mss == 0)   /* the IPv6 header is 20 bytes longer (RFC 8200 3) */
        c->link.mss = mta_ip_is_v4(c->dst) ? SIM_NET_MSS : SIM_NET_MSS6;
    assert(c->link.latency >= 0 && c->link.jitter >= 0 && c->link.loss_ppm <= SIM_PRNG_PPM);
    if (c->link.jitter == 0 && c->link.loss_ppm == 0)
        return;     /* no draws: the streams need not exist (their identity stays fixed) */
    mta_ip_format(c->src, s);
    mta_ip_format(c->dst, d);
    snprintf(purpose, sizeof purpose, "jitter %s>%s", s, d);
    sim_prng_init(&c->jitter_rng, n->seed, purpose, k);
    snprintf(purpose, sizeof purpose, "loss %s>%s", s, d);
    sim_prng_init(&c->loss_rng, n->seed, purpose, k);
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
static int net_is_local(const struct sim_net *n, mta_ip addr)
{
    size_t i;

    for (i = 0; i < n->nlocals; i++)
        if (mta_ip_eq(n->locals[i], addr))
            return 1;
    return 0;
}

/* sim_net_add_local - an address connections may originate from */
void sim_net_add_local(struct sim_net *n, mta_ip addr)
{
    if (net_is_local(n, addr))
        return;
    if (n->nlocals >= SIM_NET_MAX_LOCALS)
        net_die("sim_net_add_local", "too many local addresses");
    n->locals = net_xrealloc(n->locals, n->nlocals + 1, sizeof *n->locals);
    n->locals[n->nlocals++] = addr;
}

/* net_find_host - the host at addr, or NULL */
static struct net_host *net_find_host(const struct sim_net *n, mta_ip addr)
{
    uint64_t key = mta_ip_key(addr);
    size_t pos;

    for (uint32_t i = idxmap_first(&n->host_index, key, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&n->host_index, key, &pos))
        if (mta_ip_eq(n->hosts[i].h.addr, addr))
            return &n->hosts[i];
    return NULL;
}

/* sim_net_add_host - put a remote host on the network */
int sim_net_add_host(struct sim_net *n, const struct sim_host *h)
{
    assert(h != NULL);
    struct net_host *nh;
    char purpose[SIM_NET_PURPOSE_MAX], a[MTA_IP_TEXT];
    int i;

    assert(h->latency >= 0 && h->jitter >= 0 && h->backlog >= 0);
    assert(h->nchoices >= 0 && h->nchoices <= SIM_HOST_MAX_CHOICES);
    assert(h->loss_ppm <= SIM_PRNG_PPM);
    assert(h->sndbuf <= SIM_NET_BUF_MAX && h->rcvbuf <= SIM_NET_BUF_MAX);
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
    idxmap_put(&n->host_index, mta_ip_key(h->addr), (uint32_t) n->nhosts);
    nh = &n->hosts[n->nhosts++];
    memset(nh, 0, sizeof *nh);
    nh->h = *h;
    mta_ip_format(h->addr, a);
    snprintf(purpose, sizeof purpose, "connect %s", a);
    sim_prng_init(&nh->connect_rng, n->seed, purpose, 0);
    return 0;
}

/* net_connect - start a connection from the MTA (peer 0) or from a
 * simulated outside host (peer 1: any source, not counted in open_count) */
static sim_ep *net_connect(struct sim_net *n, mta_ip src, mta_ip dst, uint16_t port,
                           sim_ep_fn fn, void *arg, int *err, int peer)
{
    struct net_host *nh;
    struct sim_conn *c;
    int dummy, s;

    if (err == NULL)
        err = &dummy;
    assert(fn != NULL);
    /* A socket has one family: an IPv4 one cannot reach an IPv6 address,
     * nor the reverse (connect(2): EAFNOSUPPORT). */
    if (mta_ip_is_v4(src) != mta_ip_is_v4(dst)) {
        *err = -EAFNOSUPPORT;
        return NULL;
    }
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
    /* The capture stands at the MTA: the client of what it opens, the
     * server of what it accepts. */
    c->local = peer ? SIDE_SERVER : SIDE_CLIENT;
    c->id = n->next_conn_id++;
    c->src = src;
    c->dst = dst;
    c->dport = port;
    c->sport = (uint16_t) n->next_port;
    /* Wrap inside the ephemeral range: still deterministic, never 0. */
    n->next_port = n->next_port >= SIM_NET_PORT_LAST ? SIM_NET_PORT_FIRST : n->next_port + 1;
    for (s = 0; s < 2; s++) {
        c->ep[s].conn = c;
        c->ep[s].side = (enum sim_side) s;
    }
    c->ep[SIDE_CLIENT].fn = fn;
    c->ep[SIDE_CLIENT].arg = arg;
    c->ep[SIDE_CLIENT].exists = 1;
    c->refs = 1;                        /* the client's owner */
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
    /* The MTA's own buffers on its side: the client of what it opens, the
     * listener of what it accepts (unless that host says otherwise); a
     * remote host's on the other; an outside client's are the defaults. */
    if (peer)
        tcp_conn_start(c, 0, 0, c->has_host && c->host.sndbuf ? c->host.sndbuf : n->sndbuf,
                       c->has_host && c->host.rcvbuf ? c->host.rcvbuf : n->rcvbuf);
    else
        tcp_conn_start(c, n->sndbuf, n->rcvbuf, c->has_host ? c->host.sndbuf : 0,
                       c->has_host ? c->host.rcvbuf : 0);
    *err = 0;
    return &c->ep[SIDE_CLIENT];
}

/* sim_net_connect - start a connection; outcome arrives as an event */
sim_ep *sim_net_connect(struct sim_net *n, mta_ip src, mta_ip dst, uint16_t port,
                        sim_ep_fn fn, void *arg, int *err)
{
    return net_connect(n, src, dst, port, fn, arg, err, 0);
}

/* sim_net_connect_peer - a connection from a simulated outside host */
sim_ep *sim_net_connect_peer(struct sim_net *n, mta_ip src, mta_ip dst, uint16_t port,
                             sim_ep_fn fn, void *arg, int *err)
{
    return net_connect(n, src, dst, port, fn, arg, err, 1);
}

/* sim_ep_conn_id - the connection's number, 1, 2, ... in connect order */
uint64_t sim_ep_conn_id(const sim_ep *ep)
{
    assert(ep != NULL);
    return ep->conn->id;
}

/* sim_ep_peer_addr - the address at the other end */
mta_ip sim_ep_peer_addr(const sim_ep *ep)
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
mta_ip sim_ep_local_addr(const sim_ep *ep)
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
