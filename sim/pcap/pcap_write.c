/*
 * pcap_write - every simulated TCP connection of a run as a packet capture
 *
 * See pcap_write.h.  One struct pw_conn per connection the observer has
 * shown (connection numbers are dense, 1, 2, ... in connect order, so an
 * array indexed by number holds them): its initial sequence numbers and
 * the next IP identification of each side.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#include "outfile.h"
#include "pcap_write.h"

#define PW_SNAPLEN 262144       /* libpcap's largest: a segment of any MSS fits */
#define PW_ETH_LEN 14
#define PW_IP_LEN 20
#define PW_IP6_LEN 40           /* RFC 8200 3: the fixed header, no extension headers */
#define PW_TCP_LEN 20
#define PW_SYN_OPT_LEN 8        /* MSS (4), NOP (1), window scale (3) */
#define PW_MAX_PAYLOAD 65495    /* 65535 - IPv4 - TCP headers */
#define PW_MAX_FRAME (PW_ETH_LEN + PW_IP6_LEN + PW_TCP_LEN + PW_SYN_OPT_LEN + PW_MAX_PAYLOAD)
#define PW_MAX_CONNS (1u << 24) /* a run opening more is beyond any scenario */

struct pw_conn {
    int seen;                   /* the observer showed its SYN */
    uint32_t isn[2];            /* [0] the client's, [1] the server's */
    uint16_t ip_id[2];          /* next IP identification per sender */
    struct sim_packet syn;      /* the first SYN: who the client is; quoted by ICMP */
};

struct pcap_writer {
    pcap_t *dead;
    pcap_dumper_t *dump;
    struct outfile *out;        /* the stream under dump: keeps the first write error */
    char *path;
    struct pw_conn *conns;      /* index = connection number */
    size_t nconns;
    int finished;
    unsigned long frames;
};

static const uint8_t mac_mta[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t mac_remote[6] = { 0x02, 0, 0, 0, 0, 0x02 };

/* pw_die - a broken invariant: say where and stop */
static void pw_die(const char *fn, const char *what)
{
    fprintf(stderr, "pcap_writer_%s: %s\n", fn, what);
    abort();
}

/* put16 - big-endian 16 bits at p */
static void put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

/* put32 - big-endian 32 bits at p */
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}

/* csum_add - one's complement sum of len bytes, continuing from sum */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    size_t i;

    for (i = 0; i + 1 < len; i += 2)
        sum += (uint32_t) p[i] << 8 | p[i + 1];
    if (len & 1)
        sum += (uint32_t) p[len - 1] << 8;
    return sum;
}

/* csum_fold - the final 16-bit one's complement of a running sum */
static uint16_t csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t) ~sum;
}

/* put_ipv4 - a 20-byte IPv4 header with its checksum */
static void put_ipv4(uint8_t *ip, uint32_t src, uint32_t dst, uint8_t proto, size_t payload,
                     uint16_t id)
{
    assert(PW_IP_LEN + payload <= 65535);
    memset(ip, 0, PW_IP_LEN);
    ip[0] = 0x45;
    put16(ip + 2, (uint32_t) (PW_IP_LEN + payload));
    put16(ip + 4, id);
    put16(ip + 6, 0x4000);          /* DF, as Linux sends TCP */
    ip[8] = 64;
    ip[9] = proto;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, csum_fold(csum_add(0, ip, PW_IP_LEN)));
}

/* put_ipv6 - a 40-byte IPv6 header (RFC 8200 3): no checksum, no identification */
static void put_ipv6(uint8_t *ip, mta_ip src, mta_ip dst, uint8_t next_header, size_t payload)
{
    assert(payload <= 65535);
    memset(ip, 0, PW_IP6_LEN);
    ip[0] = 0x60;                   /* version 6, traffic class 0, flow label 0 */
    put16(ip + 4, (uint32_t) payload);
    ip[6] = next_header;
    ip[7] = 64;                     /* hop limit: Linux's default, as IPv4's TTL */
    memcpy(ip + 8, src.b, 16);
    memcpy(ip + 24, dst.b, 16);
}

/* put_ip - the IP header of either family; returns its length */
static size_t put_ip(uint8_t *ip, mta_ip src, mta_ip dst, uint8_t proto, size_t payload,
                     uint16_t id)
{
    if (mta_ip_is_v4(src)) {
        put_ipv4(ip, mta_ip_v4_of(src), mta_ip_v4_of(dst), proto, payload, id);
        return PW_IP_LEN;
    }
    put_ipv6(ip, src, dst, proto, payload);
    return PW_IP6_LEN;
}

/* pseudo_sum - the checksum's pseudo-header: RFC 9293 3.1 for IPv4, RFC
 * 8200 8.1 for IPv6 (addresses, upper-layer length, next header) */
static uint32_t pseudo_sum(mta_ip src, mta_ip dst, uint8_t proto, size_t len)
{
    uint8_t pseudo[40];

    memset(pseudo, 0, sizeof pseudo);
    if (mta_ip_is_v4(src)) {
        put32(pseudo, mta_ip_v4_of(src));
        put32(pseudo + 4, mta_ip_v4_of(dst));
        pseudo[9] = proto;
        put16(pseudo + 10, (uint32_t) len);
        return csum_add(0, pseudo, 12);
    }
    memcpy(pseudo, src.b, 16);
    memcpy(pseudo + 16, dst.b, 16);
    put32(pseudo + 32, (uint32_t) len);
    pseudo[39] = proto;
    return csum_add(0, pseudo, 40);
}

/* put_tcp - a TCP header (options for a SYN) and its checksum over payload */
static size_t put_tcp(uint8_t *tcp, const struct sim_packet *pkt, uint32_t seq, uint32_t ack,
                      const uint8_t *payload, size_t len, uint8_t flags)
{
    size_t hlen = PW_TCP_LEN + ((flags & SIM_TCP_SYN) ? PW_SYN_OPT_LEN : 0);
    uint32_t sum;

    memset(tcp, 0, hlen);
    put16(tcp, pkt->sport);
    put16(tcp + 2, pkt->dport);
    put32(tcp + 4, seq);
    put32(tcp + 8, (flags & SIM_TCP_ACK) ? ack : 0);
    tcp[12] = (uint8_t) ((hlen / 4) << 4);
    tcp[13] = flags;
    /* The window field as the simulated TCP advertised it: unscaled on a
     * SYN, scaled by its window scale option afterwards; 0 on an RST. */
    put16(tcp + 14, pkt->window);
    if (flags & SIM_TCP_SYN) {
        const uint8_t opts[PW_SYN_OPT_LEN] = { 2, 4, (uint8_t) (pkt->mss >> 8),
                                               (uint8_t) pkt->mss, 1, 3, 3, pkt->wscale };
        memcpy(tcp + PW_TCP_LEN, opts, sizeof opts);
    }
    if (len > 0)
        memcpy(tcp + hlen, payload, len);
    sum = pseudo_sum(pkt->src, pkt->dst, 6, hlen + len);
    sum = csum_add(sum, tcp, hlen + len);
    put16(tcp + 16, csum_fold(sum));
    return hlen + len;
}

/* put_eth - the Ethernet header; the side that connected sends from mac_mta */
static void put_eth(uint8_t *eth, int from_client, int v4)
{
    memcpy(eth, from_client ? mac_remote : mac_mta, 6);
    memcpy(eth + 6, from_client ? mac_mta : mac_remote, 6);
    put16(eth + 12, v4 ? 0x0800 : 0x86dd);     /* EtherType IPv4, IPv6 (RFC 2464 3) */
}

/* pw_emit - one frame at virtual time t */
static void pw_emit(struct pcap_writer *pw, sim_usec t, const uint8_t *frame, size_t len)
{
    struct pcap_pkthdr h;

    assert(len <= PW_SNAPLEN);
    if (t < 0)
        pw_die("emit", "virtual time before 1970");
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t) (t / 1000000);
    /* Nanosecond precision: the field holds nanoseconds. */
    h.ts.tv_usec = (suseconds_t) (t % 1000000 * 1000);
    h.caplen = h.len = (bpf_u_int32) len;
    pcap_dump((u_char *) pw->dump, &h, frame);
    pw->frames++;
}

/* pw_tcp_frame - one TCP frame of a connection */
static void pw_tcp_frame(struct pcap_writer *pw, struct pw_conn *c, const struct sim_packet *pkt,
                         sim_usec t)
{
    static uint8_t frame[PW_MAX_FRAME];
    int from_client = mta_ip_eq(pkt->src, c->syn.src) && pkt->sport == c->syn.sport;
    int side = from_client ? 0 : 1;
    int v4 = mta_ip_is_v4(pkt->src);
    size_t iplen = v4 ? PW_IP_LEN : PW_IP6_LEN;
    uint32_t seq = c->isn[side] + pkt->seq;
    uint32_t ack = c->isn[1 - side] + pkt->ack;
    size_t tcplen;

    if (pkt->len > PW_MAX_PAYLOAD)
        pw_die("packet", "segment larger than an IPv4 packet holds");
    assert(mta_ip_is_v4(pkt->dst) == v4);
    /* Linux answers a SYN to a closed port with RST|ACK and sequence 0. */
    if ((pkt->flags & SIM_TCP_RST) && side == 1 && pkt->ack == 1 && pkt->seq == 0)
        seq = 0;
    put_eth(frame, from_client, v4);
    tcplen = put_tcp(frame + PW_ETH_LEN + iplen, pkt, seq, ack,
                     (const uint8_t *) pkt->payload, pkt->len, pkt->flags);
    put_ip(frame + PW_ETH_LEN, pkt->src, pkt->dst, 6, tcplen, c->ip_id[side]++);
    pw_emit(pw, t, frame, PW_ETH_LEN + iplen + tcplen);
}

/* pw_icmp6_unreachable - ICMPv6 destination unreachable, code 3 "address
 * unreachable" (RFC 4443 3.1, what a router or Linux's neighbour discovery
 * reports for a host that does not answer), quoting the whole SYN: the
 * invoking packet "as possible without the ICMPv6 packet exceeding the
 * minimum IPv6 MTU" */
static void pw_icmp6_unreachable(struct pcap_writer *pw, struct pw_conn *c, sim_usec t,
                                 const uint8_t tcp[PW_TCP_LEN + PW_SYN_OPT_LEN])
{
    enum { QUOTED = PW_IP6_LEN + PW_TCP_LEN + PW_SYN_OPT_LEN, ICMP6 = 8 + QUOTED };
    uint8_t frame[PW_ETH_LEN + PW_IP6_LEN + ICMP6];
    uint8_t *icmp = frame + PW_ETH_LEN + PW_IP6_LEN;
    const struct sim_packet *syn = &c->syn;

    put_ipv6(icmp + 8, syn->src, syn->dst, 6, PW_TCP_LEN + PW_SYN_OPT_LEN);
    memcpy(icmp + 8 + PW_IP6_LEN, tcp, PW_TCP_LEN + PW_SYN_OPT_LEN);
    memset(icmp, 0, 8);
    icmp[0] = 1;                            /* destination unreachable */
    icmp[1] = 3;                            /* address unreachable */
    put16(icmp + 2, csum_fold(csum_add(pseudo_sum(syn->dst, syn->src, 58, ICMP6), icmp, ICMP6)));
    put_eth(frame, 0, 0);
    put_ipv6(frame + PW_ETH_LEN, syn->dst, syn->src, 58, ICMP6);
    pw_emit(pw, t, frame, sizeof frame);
}

/* pw_icmp_unreachable - ICMP host unreachable quoting the connection's SYN */
static void pw_icmp_unreachable(struct pcap_writer *pw, struct pw_conn *c, sim_usec t)
{
    uint8_t frame[PW_ETH_LEN + PW_IP_LEN + 8 + PW_IP_LEN + PW_TCP_LEN + PW_SYN_OPT_LEN];
    uint8_t *icmp = frame + PW_ETH_LEN + PW_IP_LEN;
    uint8_t *quoted = icmp + 8;
    uint8_t tcp[PW_TCP_LEN + PW_SYN_OPT_LEN];
    const struct sim_packet *syn = &c->syn;
    size_t icmplen = 8 + PW_IP_LEN + 8;     /* RFC 792: the header and 64 bits */

    put_tcp(tcp, syn, c->isn[0], 0, NULL, 0, SIM_TCP_SYN);
    if (!mta_ip_is_v4(syn->src)) {
        pw_icmp6_unreachable(pw, c, t, tcp);
        return;
    }
    put_ipv4(quoted, mta_ip_v4_of(syn->src), mta_ip_v4_of(syn->dst), 6, sizeof tcp, 1);
    memcpy(quoted + PW_IP_LEN, tcp, 8);
    memset(icmp, 0, 8);
    icmp[0] = 3;                            /* destination unreachable */
    icmp[1] = 1;                            /* host unreachable */
    put16(icmp + 2, csum_fold(csum_add(0, icmp, icmplen)));
    put_eth(frame, 0, 1);
    put_ipv4(frame + PW_ETH_LEN, mta_ip_v4_of(syn->dst), mta_ip_v4_of(syn->src), 1, icmplen,
             c->ip_id[1]++);
    pw_emit(pw, t, frame, PW_ETH_LEN + PW_IP_LEN + icmplen);
}

/* pw_conn_get - the record of connection id, created (zeroed) on first use */
static struct pw_conn *pw_conn_get(struct pcap_writer *pw, uint64_t id)
{
    if (id == 0 || id >= PW_MAX_CONNS)
        pw_die("packet", "connection number out of range");
    if (id >= pw->nconns) {
        size_t n = pw->nconns ? pw->nconns : 64;
        struct pw_conn *p;

        while (n <= id)
            n *= 2;
        p = realloc(pw->conns, n * sizeof *p);
        if (p == NULL)
            pw_die("packet", "out of memory");
        memset(p + pw->nconns, 0, (n - pw->nconns) * sizeof *p);
        pw->conns = p;
        pw->nconns = n;
    }
    return &pw->conns[id];
}

/* pcap_writer_packet - the observer: one simulated packet as one frame */
void pcap_writer_packet(void *arg, const struct sim_packet *pkt)
{
    struct pcap_writer *pw = arg;
    struct pw_conn *c;

    assert(pw != NULL && pkt != NULL);
    if (pw->finished)
        return;
    c = pw_conn_get(pw, pkt->conn_id);
    if (!c->seen) {
        uint32_t k = (uint32_t) pkt->conn_id;

        if (pkt->flags != SIM_TCP_SYN || pkt->icmp_unreachable)
            pw_die("packet", "a connection's first packet is not its SYN");
        c->seen = 1;
        /* Deterministic, well spread, different per side and connection. */
        c->isn[0] = k * 2654435761u + 0x1000u;
        c->isn[1] = (k ^ 0x5bd1e995u) * 2246822519u + 0x2000u;
        c->ip_id[0] = c->ip_id[1] = 1;
        c->syn = *pkt;
        c->syn.payload = NULL;
        c->syn.len = 0;
    }
    if (pkt->icmp_unreachable) {
        pw_icmp_unreachable(pw, c, pkt->time);
        return;
    }
    assert(pkt->len == 0 || pkt->payload != NULL);
    pw_tcp_frame(pw, c, pkt, pkt->time);
}

/* pcap_writer_open - a new capture file at path */
struct pcap_writer *pcap_writer_open(const char *path, char *err, size_t errlen)
{
    struct pcap_writer *pw;

    assert(path != NULL);
    pw = calloc(1, sizeof *pw);
    if (pw == NULL || (pw->path = strdup(path)) == NULL) {
        free(pw);
        snprintf(err, errlen, "cannot write %s: out of memory", path);
        return NULL;
    }
    pw->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, PW_SNAPLEN,
                                                    PCAP_TSTAMP_PRECISION_NANO);
    if (pw->dead == NULL) {
        snprintf(err, errlen, "cannot write %s: libpcap refused a nanosecond Ethernet capture", path);
        pcap_writer_close(pw);
        return NULL;
    }
    /* libpcap writes through stdio and forgets why a write failed; an
     * outfile under it keeps the errno (a full disk is "No space left on
     * device", reported at the end, never a short file and exit 0). */
    pw->out = outfile_open(path);
    if (pw->out == NULL) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        pcap_writer_close(pw);
        return NULL;
    }
    pw->dump = pcap_dump_fopen(pw->dead, outfile_stream(pw->out));
    if (pw->dump == NULL) {
        snprintf(err, errlen, "cannot write %s: %s", path, pcap_geterr(pw->dead));
        outfile_close(pw->out);
        pw->out = NULL;
        pcap_writer_close(pw);
        return NULL;
    }
    return pw;
}

/* pcap_writer_finish - flush and check for write errors */
int pcap_writer_finish(struct pcap_writer *pw, sim_usec now, char *err, size_t errlen)
{
    assert(pw != NULL);
    (void) now;
    if (pw->finished)
        return 0;
    pw->finished = 1;
    /* The file is complete: close it here, so that close(2)'s verdict counts. */
    pcap_dump_close(pw->dump);
    pw->dump = NULL;
    int e = outfile_release(pw->out);
    pw->out = NULL;
    if (e != 0) {
        snprintf(err, errlen, "cannot write %s: %s", pw->path, strerror(e));
        return -1;
    }
    return 0;
}

/* pcap_writer_close - close the file and free the writer */
void pcap_writer_close(struct pcap_writer *pw)
{
    if (pw == NULL)
        return;
    if (pw->dump)
        pcap_dump_close(pw->dump);     /* fclose()s the outfile's stream */
    outfile_release(pw->out);
    if (pw->dead)
        pcap_close(pw->dead);
    free(pw->conns);
    free(pw->path);
    free(pw);
}

/* pcap_writer_frames - frames written so far */
unsigned long pcap_writer_frames(const struct pcap_writer *pw)
{
    return pw->frames;
}

/* pcap_output_is_dir - a spec ending in '/' or naming an existing directory */
int pcap_output_is_dir(const char *spec)
{
    struct stat st;
    size_t n = strlen(spec);

    return (n > 0 && spec[n - 1] == '/') || (stat(spec, &st) == 0 && S_ISDIR(st.st_mode));
}

/*
 * file_stem - a scenario name as one file name inside DIR
 *
 * Whatever the name (a "scenario ../../x" line, a file name with any
 * bytes), the capture stays inside the directory asked for: every byte
 * other than a letter, digit, '.', '_' or '-' becomes '_', so a '/' can
 * neither climb out of DIR nor make a subdirectory, and control bytes never
 * reach a file name; a leading '.' becomes '_' too, so that no capture is
 * a hidden file.  At most PW_STEM_MAX bytes, so that with "-seedN",
 * "-K" and ".pcap" the name stays under NAME_MAX (255).  Names that become
 * equal are told apart by the -2, -3, ... of pcap_output_path().
 */
#define PW_STEM_MAX 200
static void file_stem(const char *name, char *out)
{
    size_t i;

    for (i = 0; name[i] != '\0' && i < PW_STEM_MAX; i++) {
        unsigned char c = (unsigned char) name[i];

        out[i] = (isalnum(c) && c < 0x80) || c == '.' || c == '_' || c == '-' ? (char) c : '_';
    }
    if (out[0] == '.')
        out[0] = '_';       /* never a hidden file */
    out[i] = '\0';
}

/* pcap_output_path - the file one run's capture goes to */
int pcap_output_path(const char *spec, const char *name, uint64_t seed, int with_seed,
                     char ***used, size_t *nused, char *out, size_t outlen)
{
    char base[512], stem[PW_STEM_MAX + 1];
    size_t n = strlen(spec), i;
    int k, clash = 1, len;

    if (!pcap_output_is_dir(spec)) {
        len = snprintf(out, outlen, "%s", spec);
        return len < 0 || (size_t) len >= outlen ? -1 : 0;
    }
    file_stem(name, stem);
    if (with_seed)
        len = snprintf(base, sizeof base, "%s-seed%llu", stem, (unsigned long long) seed);
    else
        len = snprintf(base, sizeof base, "%s", stem);
    if (len < 0 || (size_t) len >= sizeof base)
        return -1;
    /* Two scenarios may share a name: the later ones get -2, -3, ... */
    for (k = 1; clash; k++) {
        char cand[600];

        if (k == 1)
            snprintf(cand, sizeof cand, "%s", base);
        else
            snprintf(cand, sizeof cand, "%s-%d", base, k);
        clash = 0;
        for (i = 0; i < *nused && !clash; i++)
            clash = strcmp((*used)[i], cand) == 0;
        if (!clash) {
            char **u = realloc(*used, (*nused + 1) * sizeof *u);

            if (u == NULL || (u[*nused] = strdup(cand)) == NULL)
                pw_die("output_path", "out of memory");
            *used = u;
            (*nused)++;
            len = snprintf(out, outlen, "%s%s%s.pcap", spec, spec[n - 1] == '/' ? "" : "/", cand);
            return len < 0 || (size_t) len >= outlen ? -1 : 0;
        }
    }
    return -1;
}
