/*
 * pcap_import - a packet capture of SMTP sessions turned into a scenario
 *
 * See pcap_import.h.  Three stages, one pass over the capture:
 *
 *   packets   link header -> IPv4 -> TCP (or ICMP unreachable); each TCP
 *             segment goes to its session (struct pi_session), found by
 *             its four-tuple; a SYN on a finished four-tuple starts a new
 *             session, as port reuse does.
 *   streams   per direction, bytes are delivered in sequence order
 *             (struct pi_dir): a segment at or before the next expected
 *             byte gives its new part (retransmissions and overlaps give
 *             nothing twice), one beyond it waits, sorted, until the gap
 *             closes.  Without a SYN the first segment seen sets the base.
 *   SMTP      lines of the client are commands, or message data between
 *             a 354 to DATA and the final "."; lines of the server are
 *             replies (multi-line until "CODE "), each answering the
 *             oldest command still waiting, the banner first.  Everything
 *             becomes an event (struct pi_event) with its capture time.
 *
 *   The scenario is then written from the events (emit_scenario).  All
 *   output depends only on the capture's bytes: the same file always gives
 *   the same scenario.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/pcap.h>

#include "pcap_import.h"

enum pi_ev_kind { EV_CMD, EV_REPLY, EV_BODY, EV_FIN, EV_RST };

/* One thing that happened in a session. */
struct pi_event {
    enum pi_ev_kind kind;
    int from_client;
    int64_t t;                  /* capture time, microseconds */
    char **lines;               /* EV_CMD: 1 line; EV_REPLY: the reply's lines */
    int nlines;
    size_t body_bytes;          /* EV_BODY: the message, dot-stuffing removed, CRLF kept */
    int answers;                /* EV_REPLY: index of the event it answers (-1: banner) */
};

/* Bytes held because they came before the bytes ahead of them. */
struct pi_seg {
    struct pi_seg *next;
    uint32_t seq;
    size_t len;
    unsigned char data[];
};

/* One direction of a session: reassembly and the line being read. */
struct pi_dir {
    int have_base;
    uint32_t next;              /* next expected sequence number */
    struct pi_seg *ooo;         /* sorted by sequence number */
    int nooo;
    size_t ooo_bytes;
    int fin_pending;
    uint32_t fin_seq;
    char line[PI_MAX_LINE + 1];
    size_t linelen;
    int line_cut;               /* the line was longer than PI_MAX_LINE */
    size_t cut_bytes;           /* ... by this many bytes (counted in message data) */
};

struct pi_session {
    uint32_t cli, srv;          /* addresses, host order */
    uint16_t cport, sport;
    int64_t syn_t, synack_t, ack_t;
    uint32_t isn;               /* the client's, from its SYN */
    int syn, synack, handshake_ack, no_syn;
    int refused, unreachable;
    int finished;               /* RST seen, or FIN both ways */
    int fin[2];
    struct pi_dir dir[2];       /* 0 client -> server, 1 server -> client */
    /* SMTP state */
    int in_body;
    size_t body_bytes;
    int64_t body_t;
    char *rl[PI_MAX_REPLY_LINES];   /* the reply being read */
    int nrl;
    int64_t rt;
    int *waiting;               /* events awaiting a reply, oldest first (-1 = banner) */
    int nwaiting, waiting_head, waiting_cap;
    struct pi_event *ev;
    int nev, evcap;
    int cut_lines, odd_lines;
};

struct pi_import {
    const char *path;
    int64_t first_t, last_t;
    int have_t;
    uint32_t server;            /* --server, 0 = by port */
    uint16_t ports[PI_MAX_PORTS + 3];
    int nports;
    struct pi_session **s;
    int ns;
    unsigned long packets, skipped_v6, skipped_frag, skipped_other;
    size_t stored;              /* bytes of SMTP lines kept, all sessions */
    char err[512];              /* set: stop with this error */
};

/* pi_fail - remember the first error; later ones add nothing */
static void pi_fail(struct pi_import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pi_fail(struct pi_import *im, const char *fmt, ...)
{
    va_list ap;

    if (im->err[0])
        return;
    va_start(ap, fmt);
    vsnprintf(im->err, sizeof im->err, fmt, ap);
    va_end(ap);
}

/* xmalloc - malloc that treats exhaustion as fatal (bounds keep it small) */
static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        fputs("mtasim import: out of memory\n", stderr);
        exit(3);
    }
    return p;
}

/* xrealloc - realloc of n elements of size bytes, fatal on exhaustion */
static void *xrealloc(void *p, size_t n, size_t size)
{
    assert(size > 0 && n <= SIZE_MAX / size);
    p = realloc(p, n > 0 ? n * size : 1);
    if (p == NULL) {
        fputs("mtasim import: out of memory\n", stderr);
        exit(3);
    }
    return p;
}

/* xstrndup - a NUL-terminated copy of n bytes */
static char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* get16, get32 - big-endian reads */
static uint32_t get16(const unsigned char *p) { return (uint32_t) p[0] << 8 | p[1]; }
static uint32_t get32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* ---- SMTP events ------------------------------------------------------ */

/* ev_add - a new event in s; NULL (and an error) past PI_MAX_EVENTS */
static struct pi_event *ev_add(struct pi_import *im, struct pi_session *s, enum pi_ev_kind kind,
                               int from_client, int64_t t)
{
    struct pi_event *e;

    if (s->nev >= PI_MAX_EVENTS) {
        pi_fail(im, "more than %d SMTP events in one session", PI_MAX_EVENTS);
        return NULL;
    }
    if (s->nev == s->evcap) {
        s->evcap = s->evcap ? 2 * s->evcap : 32;
        s->ev = xrealloc(s->ev, (size_t) s->evcap, sizeof *s->ev);
    }
    e = &s->ev[s->nev++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->from_client = from_client;
    e->t = t;
    e->answers = -2;
    return e;
}

/* wait_push - event index idx now waits for a reply */
static void wait_push(struct pi_import *im, struct pi_session *s, int idx)
{
    if (s->nwaiting - s->waiting_head >= PI_MAX_EVENTS) {
        pi_fail(im, "more than %d SMTP commands without a reply", PI_MAX_EVENTS);
        return;
    }
    if (s->nwaiting == s->waiting_cap) {
        s->waiting_cap = s->waiting_cap ? 2 * s->waiting_cap : 16;
        s->waiting = xrealloc(s->waiting, (size_t) s->waiting_cap, sizeof *s->waiting);
    }
    s->waiting[s->nwaiting++] = idx;
}

/* verb_is - the command line's verb is v (case-insensitive) */
static int verb_is(const char *line, const char *v)
{
    size_t n = strlen(v);

    return strncasecmp(line, v, n) == 0 && (line[n] == '\0' || line[n] == ' ');
}

/* client_line - one line from the client: a command, or message data */
static void client_line(struct pi_import *im, struct pi_session *s, const char *line, size_t len,
                        size_t cut, int64_t t)
{
    struct pi_event *e;

    if (s->in_body) {
        if (len == 1 && line[0] == '.') {
            e = ev_add(im, s, EV_BODY, 1, t);
            if (e == NULL)
                return;
            e->body_bytes = s->body_bytes;
            s->in_body = 0;
            wait_push(im, s, s->nev - 1);       /* the reply to the final dot */
            return;
        }
        /* Dot-stuffing removed, CRLF counted: the size a correct server stores. */
        s->body_bytes += len + cut - (len > 0 && line[0] == '.') + 2;
        return;
    }
    if ((im->stored += len + 1) > PI_MAX_STORED) {
        pi_fail(im, "more than %u MiB of SMTP command and reply lines", PI_MAX_STORED >> 20);
        return;
    }
    e = ev_add(im, s, EV_CMD, 1, t);
    if (e == NULL)
        return;
    e->lines = xmalloc(sizeof *e->lines);
    e->lines[0] = xstrndup(line, len);
    e->nlines = 1;
    wait_push(im, s, s->nev - 1);
}

/* server_line - one line from the server: part of a reply, or its end */
static void server_line(struct pi_import *im, struct pi_session *s, const char *line, size_t len,
                        int64_t t)
{
    struct pi_event *e;
    int last, answers = -1;

    if (s->nrl == 0)
        s->rt = t;
    if (s->nrl >= PI_MAX_REPLY_LINES) {
        pi_fail(im, "a reply of more than %d lines", PI_MAX_REPLY_LINES);
        return;
    }
    if ((im->stored += len + 1) > PI_MAX_STORED) {
        pi_fail(im, "more than %u MiB of SMTP command and reply lines", PI_MAX_STORED >> 20);
        return;
    }
    s->rl[s->nrl++] = xstrndup(line, len);
    /* "CODE-" continues; anything else (also a malformed line) ends the reply. */
    last = !(len >= 4 && isdigit((unsigned char) line[0]) && isdigit((unsigned char) line[1])
             && isdigit((unsigned char) line[2]) && line[3] == '-');
    if (!last)
        return;
    if (s->waiting_head < s->nwaiting)
        answers = s->waiting[s->waiting_head++];
    else if (s->nev > 0)
        answers = -3;       /* nothing was waiting: an unsolicited reply */
    e = ev_add(im, s, EV_REPLY, 0, s->rt);
    if (e == NULL)
        return;
    e->lines = xmalloc((size_t) s->nrl * sizeof *e->lines);
    memcpy(e->lines, s->rl, (size_t) s->nrl * sizeof *e->lines);
    e->nlines = s->nrl;
    e->answers = answers;
    s->nrl = 0;
    /* A 354 to DATA opens the message data. */
    if (answers >= 0 && s->ev[answers].kind == EV_CMD && verb_is(s->ev[answers].lines[0], "DATA")
        && strncmp(e->lines[0], "354", 3) == 0) {
        s->in_body = 1;
        s->body_bytes = 0;
    }
}

/* dir_bytes - in-order bytes of direction d reach the line reader */
static void dir_bytes(struct pi_import *im, struct pi_session *s, int d, const unsigned char *p,
                      size_t n, int64_t t)
{
    struct pi_dir *dir = &s->dir[d];
    size_t i;

    for (i = 0; i < n && !im->err[0]; i++) {
        char c = (char) p[i];

        if (c == '\n') {
            size_t len = dir->linelen;

            if (len > 0 && dir->line[len - 1] == '\r')
                len--;
            else
                s->odd_lines++;     /* a bare LF ends a line too */
            if (dir->line_cut)
                s->cut_lines++;
            if (d == 0)
                client_line(im, s, dir->line, len, dir->cut_bytes, t);
            else
                server_line(im, s, dir->line, len, t);
            dir->linelen = 0;
            dir->line_cut = 0;
            dir->cut_bytes = 0;
        } else if (dir->linelen < PI_MAX_LINE) {
            dir->line[dir->linelen++] = c;
        } else {
            dir->line_cut = 1;      /* message data may be long; commands are not */
            dir->cut_bytes++;
        }
    }
}

/* ---- reassembly ------------------------------------------------------- */

/* seq_diff - how far a is after b in 32-bit sequence space (negative: before) */
static int seq_diff(uint32_t a, uint32_t b) { return (int32_t) (a - b); }

/* dir_fin_check - a FIN whose bytes have all arrived ends the direction */
static void dir_fin_check(struct pi_import *im, struct pi_session *s, int d, int64_t t)
{
    struct pi_dir *dir = &s->dir[d];

    if (dir->fin_pending && seq_diff(dir->fin_seq, dir->next) <= 0) {
        dir->fin_pending = 0;
        s->fin[d] = 1;
        ev_add(im, s, EV_FIN, d == 0, t);
        if (s->fin[0] && s->fin[1])
            s->finished = 1;
    }
}

/* dir_segment - a segment's payload in direction d: deliver, skip or hold */
static void dir_segment(struct pi_import *im, struct pi_session *s, int d, uint32_t seq,
                        const unsigned char *p, size_t len, int64_t t)
{
    struct pi_dir *dir = &s->dir[d];
    int bound;

    if (!dir->have_base) {
        dir->have_base = 1;
        dir->next = seq;
    }
    if (len == 0)
        return;
    if (seq_diff(seq, dir->next) > 0) {
        /* A gap: hold the segment, sorted, until the bytes before it come. */
        struct pi_seg **pp = &dir->ooo, *g;

        if (dir->nooo >= PI_MAX_OOO_SEGS || dir->ooo_bytes + len > PI_MAX_OOO_BYTES) {
            pi_fail(im, "more than %d segments or %u bytes held out of order in one direction "
                    "(bytes missing from the capture?)", PI_MAX_OOO_SEGS, PI_MAX_OOO_BYTES);
            return;
        }
        while (*pp && seq_diff((*pp)->seq, seq) <= 0)
            pp = &(*pp)->next;
        g = xmalloc(sizeof *g + len);
        g->seq = seq;
        g->len = len;
        memcpy(g->data, p, len);
        g->next = *pp;
        *pp = g;
        dir->nooo++;
        dir->ooo_bytes += len;
        return;
    }
    if ((size_t) -seq_diff(seq, dir->next) < len) {
        size_t skip = (size_t) -seq_diff(seq, dir->next);

        dir->next += (uint32_t) (len - skip);
        dir_bytes(im, s, d, p + skip, len - skip, t);
    }
    /* What was held may fit now; each round removes one segment. */
    for (bound = dir->nooo; dir->ooo && bound-- >= 0 && !im->err[0];) {
        struct pi_seg *g = dir->ooo;

        if (seq_diff(g->seq, dir->next) > 0)
            break;
        dir->ooo = g->next;
        dir->nooo--;
        dir->ooo_bytes -= g->len;
        if ((size_t) -seq_diff(g->seq, dir->next) < g->len) {
            size_t skip = (size_t) -seq_diff(g->seq, dir->next);

            dir->next += (uint32_t) (g->len - skip);
            dir_bytes(im, s, d, g->data + skip, g->len - skip, t);
        }
        free(g);
    }
}

/* ---- packets ---------------------------------------------------------- */

/* is_smtp_port - one of the ports the filter lets through */
static int is_smtp_port(const struct pi_import *im, uint16_t port)
{
    int i;

    for (i = 0; i < im->nports; i++)
        if (im->ports[i] == port)
            return 1;
    return 0;
}

/* session_find - the live session of a four-tuple, or NULL */
static struct pi_session *session_find(struct pi_import *im, uint32_t cli, uint16_t cport,
                                       uint32_t srv, uint16_t sport)
{
    int i;

    /* The latest first: a reused four-tuple means the newest session. */
    for (i = im->ns - 1; i >= 0; i--) {
        struct pi_session *s = im->s[i];

        if (s->cli == cli && s->cport == cport && s->srv == srv && s->sport == sport)
            return s;
    }
    return NULL;
}

/* session_new - a session for a four-tuple; NULL past PI_MAX_SESSIONS */
static struct pi_session *session_new(struct pi_import *im, uint32_t cli, uint16_t cport,
                                      uint32_t srv, uint16_t sport)
{
    struct pi_session *s;

    if (im->ns >= PI_MAX_SESSIONS) {
        pi_fail(im, "more than %d SMTP sessions", PI_MAX_SESSIONS);
        return NULL;
    }
    im->s = xrealloc(im->s, (size_t) (im->ns + 1), sizeof *im->s);
    s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->cli = cli;
    s->cport = cport;
    s->srv = srv;
    s->sport = sport;
    s->syn_t = s->synack_t = s->ack_t = -1;
    im->s[im->ns++] = s;
    wait_push(im, s, -1);       /* the banner is awaited first */
    return s;
}

/* tcp_packet - one TCP segment between src and dst */
static void tcp_packet(struct pi_import *im, uint32_t src, uint32_t dst, const unsigned char *tcp,
                       size_t len, int64_t t)
{
    uint16_t sp, dp;
    uint32_t seq;
    unsigned flags;
    size_t hlen;
    int from_client;
    struct pi_session *s;

    if (len < 20) {
        im->skipped_other++;
        return;
    }
    sp = (uint16_t) get16(tcp);
    dp = (uint16_t) get16(tcp + 2);
    seq = get32(tcp + 4);
    hlen = (size_t) (tcp[12] >> 4) * 4;
    flags = tcp[13];
    if (hlen < 20 || hlen > len) {
        im->skipped_other++;
        return;
    }
    if (im->server)
        from_client = dst == im->server ? 1 : src == im->server ? 0 : -1;
    else if (is_smtp_port(im, dp) && !is_smtp_port(im, sp))
        from_client = 1;
    else if (is_smtp_port(im, sp) && !is_smtp_port(im, dp))
        from_client = 0;
    else if (is_smtp_port(im, sp) && is_smtp_port(im, dp))
        from_client = (flags & 0x12) == 0x02 ? 1 : (flags & 0x12) == 0x12 ? 0 : dp < sp;
    else
        from_client = -1;
    if (from_client < 0) {
        im->skipped_other++;
        return;
    }
    s = from_client ? session_find(im, src, sp, dst, dp) : session_find(im, dst, dp, src, sp);
    if (from_client && (flags & 0x12) == 0x02) {
        /* A SYN: a new session, unless it repeats the SYN of this one. */
        if (s == NULL || s->finished || (s->syn && s->isn != seq)) {
            s = session_new(im, src, sp, dst, dp);
            if (s == NULL)
                return;
        }
        if (!s->syn) {
            s->syn = 1;
            s->syn_t = t;
            s->isn = seq;
            s->dir[0].have_base = 1;
            s->dir[0].next = seq + 1;
        }
        return;
    }
    if (s == NULL) {
        /* The capture started after the SYN. */
        s = from_client ? session_new(im, src, sp, dst, dp) : session_new(im, dst, dp, src, sp);
        if (s == NULL)
            return;
        s->no_syn = 1;
    }
    if (s->finished)
        return;
    if (!from_client && (flags & 0x12) == 0x12) {
        if (!s->synack) {
            s->synack = 1;
            s->synack_t = t;
            s->dir[1].have_base = 1;
            s->dir[1].next = seq + 1;
        }
        return;
    }
    if (from_client && (flags & 0x10) && s->synack && !s->handshake_ack) {
        s->handshake_ack = 1;
        s->ack_t = t;
    }
    if (flags & 0x04) {                                 /* RST */
        if (!from_client && !s->synack && !s->no_syn)
            s->refused = 1;
        else
            ev_add(im, s, EV_RST, from_client, t);
        s->finished = 1;
        return;
    }
    dir_segment(im, s, from_client ? 0 : 1, seq, tcp + hlen, len - hlen, t);
    if (flags & 0x01) {                                 /* FIN */
        struct pi_dir *dir = &s->dir[from_client ? 0 : 1];

        dir->fin_pending = 1;
        dir->fin_seq = seq + (uint32_t) (len - hlen);
    }
    dir_fin_check(im, s, from_client ? 0 : 1, t);
}

/* icmp_packet - a destination unreachable quoting one of our SYNs */
static void icmp_packet(struct pi_import *im, const unsigned char *icmp, size_t len)
{
    const unsigned char *ip;
    size_t ihl;
    struct pi_session *s;

    if (len < 8 + 20 + 8 || icmp[0] != 3) {
        im->skipped_other++;
        return;
    }
    ip = icmp + 8;
    ihl = (size_t) (ip[0] & 15) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || 8 + ihl + 8 > len || ip[9] != 6) {
        im->skipped_other++;
        return;
    }
    s = session_find(im, get32(ip + 12), (uint16_t) get16(ip + ihl), get32(ip + 16),
                     (uint16_t) get16(ip + ihl + 2));
    if (s != NULL && s->syn && !s->synack && !s->finished) {
        s->unreachable = 1;
        s->finished = 1;
    }
}

/* ip_offset - where the IPv4 header starts in a frame of this link type;
 * -1 for a frame that is not IPv4 (counted), -2 for a short frame */
static long ip_offset(struct pi_import *im, int dlt, const unsigned char *p, size_t caplen)
{
    size_t off;
    uint32_t type;
    int tags;

    switch (dlt) {
    case DLT_EN10MB:
        if (caplen < 14)
            return -2;
        off = 14;
        type = get16(p + 12);
        /* 802.1Q / 802.1ad tags, at most two */
        for (tags = 0; (type == 0x8100 || type == 0x88a8) && tags < 2; tags++) {
            if (caplen < off + 4)
                return -2;
            type = get16(p + off + 2);
            off += 4;
        }
        break;
    case DLT_LINUX_SLL:
        if (caplen < 16)
            return -2;
        off = 16;
        type = get16(p + 14);
        break;
    case DLT_LINUX_SLL2:
        if (caplen < 20)
            return -2;
        off = 20;
        type = get16(p);
        break;
    case DLT_NULL:
    case DLT_LOOP:
        if (caplen < 4)
            return -2;
        off = 4;
        /* NULL keeps the writer's byte order; either way AF_INET is 2. */
        type = (p[0] == 2 && p[1] == 0 && p[2] == 0 && p[3] == 0)
               || (p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 2) ? 0x0800 : 0;
        break;
    case DLT_RAW:
    case DLT_IPV4:
        off = 0;
        type = caplen > 0 && (p[0] >> 4) == 4 ? 0x0800 : 0x86dd;
        break;
    default:
        return -2;
    }
    if (type == 0x86dd)
        im->skipped_v6++;
    else if (type != 0x0800)
        im->skipped_other++;
    return type == 0x0800 ? (long) off : -1;
}

/* frame - one captured frame */
static void frame(struct pi_import *im, int dlt, const struct pcap_pkthdr *h, const unsigned char *p)
{
    int64_t t = (int64_t) h->ts.tv_sec * 1000000 + h->ts.tv_usec;
    size_t caplen = h->caplen, ihl, total;
    long off = ip_offset(im, dlt, p, caplen);
    const unsigned char *ip;

    if (!im->have_t || t < im->first_t)
        im->first_t = t;
    if (!im->have_t || t > im->last_t)
        im->last_t = t;
    im->have_t = 1;
    if (off < 0) {
        if (off == -2)
            im->skipped_other++;
        return;
    }
    ip = p + off;
    caplen -= (size_t) off;
    if (caplen < 20 || (ip[0] >> 4) != 4) {
        im->skipped_other++;
        return;
    }
    ihl = (size_t) (ip[0] & 15) * 4;
    total = get16(ip + 2);
    if (ihl < 20 || ihl > caplen || total < ihl) {
        im->skipped_other++;
        return;
    }
    if (total > caplen)
        total = caplen;     /* cut by the snap length: use what is there */
    if ((get16(ip + 6) & 0x3fff) != 0) {
        im->skipped_frag++;
        return;
    }
    if (ip[9] == 6)
        tcp_packet(im, get32(ip + 12), get32(ip + 16), ip + ihl, total - ihl, t);
    else if (ip[9] == 1)
        icmp_packet(im, ip + ihl, total - ihl);
    else
        im->skipped_other++;
}

/* ---- the scenario ------------------------------------------------------ */

/* One captured transaction: MAIL FROM, its RCPTs and what became of them. */
struct pi_tx {
    int session;                /* index into im->s */
    char *from;                 /* without brackets; NULL = unusable */
    char *rcpts[PI_MAX_RCPTS];
    int rcpt_code[PI_MAX_RCPTS];
    size_t rcpt_bytes;          /* the inject line must stay under the scenario's limit */
    int nrcpts;
    int mail_code, data_code, dot_code;     /* 0 = none */
    long body;                  /* -1 = no message data */
    int msg;                    /* the injection it belongs to, from 1 */
};

/* reply_code - the code of a reply event's first line, 0 if none */
static int reply_code(const struct pi_event *e)
{
    const char *l = e->lines[0];

    if (strlen(l) < 3 || !isdigit((unsigned char) l[0]) || !isdigit((unsigned char) l[1])
        || !isdigit((unsigned char) l[2]))
        return 0;
    return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/* cmd_kind - the scenario's name for what an event is answered as */
static const char *cmd_kind(const struct pi_event *e)
{
    static const char *const verbs[] = { "EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP",
                                         "QUIT" };
    static const char *const kinds[] = { "ehlo", "helo", "mail", "rcpt", "data", "rset", "noop",
                                         "quit" };
    size_t i;

    if (e == NULL)
        return "greet";
    if (e->kind == EV_BODY)
        return "dot";
    for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verb_is(e->lines[0], verbs[i]))
            return kinds[i];
    return "unknown";
}

/* path_arg - the address of "MAIL FROM:<a>" / "RCPT TO:<a>", if it is one a
 * scenario can name (<local@domain>, or <> for MAIL); malloc'd or NULL */
static char *path_arg(const char *line, const char *prefix)
{
    size_t n = strlen(prefix), i;
    const char *lt, *gt, *at;

    if (strncasecmp(line, prefix, n) != 0)
        return NULL;
    lt = line + n;
    while (*lt == ' ')
        lt++;
    if (*lt != '<' || (gt = strchr(lt, '>')) == NULL)
        return NULL;
    if (gt == lt + 1)
        return strcmp(prefix, "MAIL FROM:") == 0 ? xstrndup("", 0) : NULL;
    if (gt - lt - 1 > PI_MAX_PATH)
        return NULL;
    at = memchr(lt, '@', (size_t) (gt - lt));
    if (at == NULL || at == lt + 1 || at + 1 == gt || memchr(at + 1, '@', (size_t) (gt - at - 1)))
        return NULL;
    for (i = 1; lt + i < gt; i++) {
        unsigned char c = (unsigned char) lt[i];

        if (c <= ' ' || c >= 127 || c == '"' || c == '<' || c == '\\' || c == ',')
            return NULL;
        if (lt + i > at && !(isalnum(c) || c == '-' || c == '.' || c == '_'))
            return NULL;
    }
    return xstrndup(lt + 1, (size_t) (gt - lt - 1));
}

/* put_escaped - s inside a scenario "quoted string"; bytes a scenario cannot
 * hold (control characters but tab, bytes >= 0x80) become '?'; 1 if any did */
static int put_escaped(FILE *o, const char *s, size_t n)
{
    size_t i;
    int replaced = 0;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];

        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c == '\t')
            fputs("\\t", o);
        else if (c < ' ' || c >= 127) {
            fputc('?', o);
            replaced = 1;
        } else
            fputc(c, o);
    }
    return replaced;
}

/* put_quoted - s as a scenario "quoted string" (see put_escaped) */
static int put_quoted(FILE *o, const char *s, size_t n)
{
    int replaced;

    fputc('"', o);
    replaced = put_escaped(o, s, n);
    fputc('"', o);
    return replaced;
}

/* put_regex_quoted - "^PREFIX<addr>" as a quoted POSIX ERE matching it literally */
static void put_regex_quoted(FILE *o, const char *prefix, const char *addr)
{
    const char *p;

    fprintf(o, "\"^%s<", prefix);
    for (p = addr; *p; p++) {
        if (strchr(".[]()*+?{}|^$\\", *p))
            fputs(*p == '\\' ? "\\\\\\\\" : "\\", o);
        fputc(*p, o);
    }
    fputs(">\"", o);
}

/* reply_is_clean - every line "CODE-TEXT" but the last "CODE TEXT" or "CODE",
 * one code 100-599, text a scenario can hold */
static int reply_is_clean(const struct pi_event *r)
{
    int code = reply_code(r), i;

    if (code < 100 || code > 599)
        return 0;
    for (i = 0; i < r->nlines; i++) {
        const char *l = r->lines[i];
        size_t n = strlen(l), k;

        if (n < 3 || strncmp(l, r->lines[0], 3) != 0)
            return 0;
        if (i < r->nlines - 1 ? (n < 4 || l[3] != '-') : (n > 3 && l[3] != ' '))
            return 0;
        for (k = 0; k < n; k++)
            if ((unsigned char) l[k] < ' ' && l[k] != '\t')
                return 0;
    }
    return 1;
}

/* usec_str - a duration in the scenario's units, whole milliseconds when it is */
static const char *usec_str(int64_t us, char buf[32])
{
    if (us % 1000 == 0)
        snprintf(buf, 32, "%" PRId64 "ms", us / 1000);
    else
        snprintf(buf, 32, "%" PRId64 "us", us);
    return buf;
}

/* struct pi_server - one captured server: its sessions as the remote sees them */
struct pi_server {
    uint32_t addr;
    int accepted, refused, unreachable, timeout;
    int64_t rtt;                /* -1 = unknown */
    int client_side;            /* the capture was taken at the client */
};

/* session_role - 'A' accepted and used, 'P' a probe (nothing sent), 'R', 'U', 'T' */
static char session_role(const struct pi_session *s)
{
    int i;

    if (s->refused)
        return 'R';
    if (s->unreachable)
        return 'U';
    if (!s->synack && !s->no_syn && s->nev == 0)
        return 'T';
    for (i = 0; i < s->nev; i++)
        if (s->ev[i].kind == EV_CMD || s->ev[i].kind == EV_BODY)
            return 'A';
    return 'P';
}

/* answer_of - index of the reply event answering event i of s, -1 if none */
static int answer_of(const struct pi_session *s, int i)
{
    int k;

    for (k = i + 1; k < s->nev; k++)
        if (s->ev[k].kind == EV_REPLY && s->ev[k].answers == i)
            return k;
    return -1;
}

/* ipv4_str - dotted quad */
static const char *ipv4_str(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    return buf;
}

/* emit_reply - one scripted reply (or action) of the remote for session sn */
static void emit_reply(FILE *o, const struct pi_event *cmd,
                       const struct pi_event *r, int sn, int nth, int64_t delay, int *replaced)
{
    const char *kind = cmd_kind(cmd);
    char when[64], d[64];
    int i;

    if (cmd == NULL)
        snprintf(when, sizeof when, "when session = %d", sn);
    else
        snprintf(when, sizeof when, "when session = %d and nth = %d", sn, nth);
    d[0] = '\0';
    if (delay >= 1000) {
        char b[32];

        snprintf(d, sizeof d, " delay %s", usec_str(delay / 1000 * 1000, b));
    }
    if (reply_is_clean(r)) {
        for (i = 0; i < r->nlines; i++) {
            const char *l = r->lines[i];
            int last = i == r->nlines - 1;

            fprintf(o, "  %s %.3s%c", kind, l, last ? ' ' : '-');
            if (strlen(l) > 4)
                *replaced |= put_quoted(o, l + 4, strlen(l + 4));
            if (last)
                fprintf(o, "%s %s", d, when);
            fputc('\n', o);
        }
        return;
    }
    /* Not a well-formed reply: the bytes as they were, CRLF after each line. */
    fprintf(o, "  %s raw \"", kind);
    for (i = 0; i < r->nlines; i++) {
        *replaced |= put_escaped(o, r->lines[i], strlen(r->lines[i]));
        fputs("\\r\\n", o);
    }
    fprintf(o, "\"%s %s\n", d, when);
}

/* server_of - index of the server with addr in sv, added if new; -1 when
 * sv (PI_MAX_SERVERS) is full */
static int server_of(struct pi_server *sv, int *nsv, uint32_t addr)
{
    int i;

    for (i = 0; i < *nsv; i++)
        if (sv[i].addr == addr)
            return i;
    if (*nsv >= PI_MAX_SERVERS)
        return -1;
    memset(&sv[*nsv], 0, sizeof sv[*nsv]);
    sv[*nsv].addr = addr;
    sv[*nsv].rtt = -1;
    return (*nsv)++;
}

/* collect_txs - the transactions of session si, appended to *txs */
static void collect_txs(const struct pi_session *s, int si, struct pi_tx **txs, int *ntx, int *cap)
{
    struct pi_tx *tx = NULL;
    int i;

    for (i = 0; i < s->nev; i++) {
        const struct pi_event *e = &s->ev[i];
        int a = answer_of(s, i);
        int code = a >= 0 ? reply_code(&s->ev[a]) : 0;

        if (e->kind == EV_BODY && tx) {
            tx->body = (long) e->body_bytes;
            tx->dot_code = code;
            continue;
        }
        if (e->kind != EV_CMD)
            continue;
        if (verb_is(e->lines[0], "MAIL")) {
            if (*ntx == *cap) {
                *cap = *cap ? 2 * *cap : 16;
                *txs = xrealloc(*txs, (size_t) *cap, sizeof **txs);
            }
            tx = &(*txs)[(*ntx)++];
            memset(tx, 0, sizeof *tx);
            tx->session = si;
            tx->from = path_arg(e->lines[0], "MAIL FROM:");
            tx->mail_code = code;
            tx->body = -1;
        } else if (verb_is(e->lines[0], "RCPT") && tx) {
            char *r = path_arg(e->lines[0], "RCPT TO:");

            if (r && (tx->nrcpts == PI_MAX_RCPTS || tx->rcpt_bytes + strlen(r) > PI_MAX_RCPT_BYTES)) {
                free(r);
                r = NULL;       /* too many to inject on one line */
            }
            if (r == NULL) {
                free(tx->from);
                tx->from = NULL;        /* an address a scenario cannot name */
            } else {
                tx->rcpt_bytes += strlen(r) + 3;
                tx->rcpt_code[tx->nrcpts] = code;
                tx->rcpts[tx->nrcpts++] = r;
            }
        } else if (verb_is(e->lines[0], "DATA") && tx) {
            tx->data_code = code;
        } else if (verb_is(e->lines[0], "RSET") || verb_is(e->lines[0], "QUIT")) {
            tx = NULL;
        }
    }
}

/* tx_fate - what mtasim's core makes of the transaction: "delivered",
 * "bounced", "deferred", or NULL when recipients end differently */
static const char *tx_fate(const struct pi_tx *tx)
{
    int i, ok = 0, failed = 0, later = 0;

    if (tx->mail_code / 100 == 5)
        return "bounced";
    if (tx->mail_code / 100 != 2)
        return "deferred";
    for (i = 0; i < tx->nrcpts; i++) {
        int c = tx->rcpt_code[i];

        if (c / 100 == 5)
            failed++;
        else if (c / 100 != 2)
            later++;
        else if (tx->data_code / 100 == 5 || tx->dot_code / 100 == 5)
            failed++;
        else if (tx->data_code == 354 && tx->dot_code / 100 == 2)
            ok++;
        else
            later++;
    }
    if (later)
        return failed || ok ? NULL : "deferred";
    return failed && ok ? NULL : ok ? "delivered" : "bounced";
}

/* same_message - two transactions carry the same envelope (a retry) */
static int same_message(const struct pi_tx *a, const struct pi_tx *b)
{
    int i;

    if (strcmp(a->from, b->from) != 0 || a->nrcpts != b->nrcpts)
        return 0;
    for (i = 0; i < a->nrcpts; i++)
        if (strcasecmp(a->rcpts[i], b->rcpts[i]) != 0)
            return 0;
    return 1;
}

/* The scenario's reply kinds, for counting "nth" per kind in a session. */
static const char *const kind_names[] = { "greet", "ehlo", "helo", "mail", "rcpt", "data", "dot",
                                          "rset", "noop", "quit", "unknown" };
#define KIND_COUNT ((int) (sizeof kind_names / sizeof kind_names[0]))

/* kind_index - the position of a cmd_kind() name in kind_names */
static int kind_index(const char *kind)
{
    int i;

    for (i = 0; i < KIND_COUNT; i++)
        if (strcmp(kind_names[i], kind) == 0)
            return i;
    assert(!"kind_index: not a reply kind");
    return KIND_COUNT - 1;
}

/* end_action - how the server ended a session it did not finish: "reset"
 * (RST), "close" (FIN) or "drop" (it went silent) */
static const char *end_action(const struct pi_session *s)
{
    const char *action = "drop";
    int e;

    for (e = 0; e < s->nev; e++)
        if (!s->ev[e].from_client && (s->ev[e].kind == EV_RST || s->ev[e].kind == EV_FIN))
            action = s->ev[e].kind == EV_RST ? "reset" : "close";
    return action;
}

/* emit_remote - the remote block of server k: path, connect mode, every reply */
static void emit_remote(FILE *o, struct pi_import *im, const struct pi_server *sv, int k,
                        int *replaced)
{
    char a[16], b[32];
    int i, sn = 0;

    fprintf(o, "remote %s name mx%d.import.test\n", ipv4_str(sv->addr, a), k + 1);
    if (sv->accepted == 0)
        fprintf(o, "  connect %s\n", sv->refused ? "refuse" : sv->unreachable ? "unreachable"
                                                                              : "timeout");
    if (sv->rtt >= 0)
        fprintf(o, "  latency %s\n", usec_str(sv->rtt / 2 > 0 ? sv->rtt / 2 : 1, b));
    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        int nth[KIND_COUNT] = { 0 }, e, w;
        int64_t base, adjust = sv->client_side && sv->rtt > 0 ? sv->rtt : 0;

        if (s->srv != sv->addr || session_role(s) != 'A')
            continue;
        sn++;
        fprintf(o, "  # session %d: from %s port %u\n", sn, ipv4_str(s->cli, a), s->cport);
        base = s->ack_t >= 0 ? s->ack_t : s->synack_t >= 0 ? s->synack_t : s->nev ? s->ev[0].t : 0;
        for (e = 0; e < s->nev; e++) {
            const struct pi_event *r = &s->ev[e];
            const struct pi_event *cmd;
            int64_t delay;
            int kk;

            if (r->kind != EV_REPLY || r->answers < -1)
                continue;
            cmd = r->answers >= 0 ? &s->ev[r->answers] : NULL;
            kk = kind_index(cmd_kind(cmd));
            nth[kk]++;
            delay = r->t - (cmd ? cmd->t : base) - (cmd ? adjust : adjust / 2);
            emit_reply(o, cmd, r, sn, nth[kk], delay, replaced);
        }
        /* The first command never answered: what the server did instead. */
        for (w = s->waiting_head; w < s->nwaiting; w++) {
            const struct pi_event *cmd = s->waiting[w] >= 0 ? &s->ev[s->waiting[w]] : NULL;
            const char *kind = cmd_kind(cmd), *action = end_action(s);
            int kk = kind_index(kind);

            if (cmd == NULL)
                fprintf(o, "  greet %s when session = %d\n", action, sn);
            else
                fprintf(o, "  %s %s when session = %d and nth = %d\n", kind, action, sn, nth[kk] + 1);
            break;
        }
        if (s->in_body) {
            /* Cut off in the middle of the message data: mtasim's remote acts
             * at the final dot, after the whole message. */
            const char *action = end_action(s);

            fprintf(o, "  # the capture's %s came during the message data, after %zu bytes of "
                    "it; mtasim's remote acts at the final dot\n",
                    strcmp(action, "drop") ? action : "silence", s->body_bytes);
            fprintf(o, "  dot %s when session = %d and nth = %d\n", action, sn,
                    nth[kind_index("dot")] + 1);
        }
    }
}

/* emit_expect_lines - the trace patterns of session s: its commands (want_cmds)
 * or its replies, those mtasim's core will send or receive as well */
static void emit_expect_lines(FILE *o, const struct pi_session *s, int want_cmds, int *replaced)
{
    int i, accepted = 0, ehlo_refused = 0, ended = 0, reset = 0, last_client = -1;

    for (i = 0; i < s->nev; i++) {
        if (!s->ev[i].from_client && (s->ev[i].kind == EV_RST || s->ev[i].kind == EV_FIN))
            ended = 1;
        reset |= !s->ev[i].from_client && s->ev[i].kind == EV_RST;
        if (s->ev[i].kind == EV_CMD || s->ev[i].kind == EV_BODY)
            last_client = i;
    }
    for (i = 0; i < s->nev; i++) {
        const struct pi_event *e = &s->ev[i];
        int a = answer_of(s, i), include = 0, k;
        char *addr = NULL;

        if (e->kind == EV_REPLY && e->answers == -1 && !want_cmds) {
            include = 1;        /* the banner */
            a = i;
        } else if (e->kind == EV_BODY) {
            include = !want_cmds && a >= 0;
        } else if (e->kind == EV_CMD) {
            const char *l = e->lines[0];
            int code = a >= 0 ? reply_code(&s->ev[a]) : 0;

            if (verb_is(l, "EHLO")) {
                include = !want_cmds;
                ehlo_refused = code == 500 || code == 501 || code == 502 || code == 504 || code == 550;
            } else if (verb_is(l, "HELO")) {
                include = !want_cmds && ehlo_refused;
            } else if (verb_is(l, "MAIL") || verb_is(l, "RCPT")) {
                const char *prefix = verb_is(l, "MAIL") ? "MAIL FROM:" : "RCPT TO:";

                include = 1;
                /* A new transaction; DATA is expected once a recipient is accepted. */
                accepted = prefix[0] == 'M' ? 0 : accepted | (code / 100 == 2);
                addr = path_arg(l, prefix);
                if (want_cmds && addr) {
                    fputs("  smtp send line~", o);
                    put_regex_quoted(o, prefix, addr);
                    fputc('\n', o);
                }
            } else if (verb_is(l, "DATA")) {
                include = accepted;
                if (want_cmds && include)
                    fputs("  smtp send line=DATA\n", o);
            } else if (verb_is(l, "QUIT")) {
                include = !ended || a >= 0;
                if (want_cmds && include)
                    fputs("  smtp send line=QUIT\n", o);
            }
            if (want_cmds)
                include = 0;
        }
        free(addr);
        if (!include || a < 0 || !reply_is_clean(&s->ev[a]))
            continue;
        /* Replies the server sent just before its RST, that the client never
         * reacted to, may not reach a client at all: TCP drops unread data
         * on a reset (and so does mtasim's network). */
        if (reset && a > last_client)
            continue;
        for (k = 0; k < s->ev[a].nlines; k++) {
            fputs("  smtp recv line=", o);
            *replaced |= put_quoted(o, s->ev[a].lines[k], strlen(s->ev[a].lines[k]));
            fputc('\n', o);
        }
    }
}

/* emit_scenario - the whole scenario for what the capture holds */
static int emit_scenario(FILE *o, struct pi_import *im, const char *name)
{
    struct pi_server sv[PI_MAX_SERVERS];
    struct pi_tx *txs = NULL;
    int txcap = 0, nsv = 0, ntx = 0, nmsg = 0, i, j, k, replaced = 0, loopback = 0, deferred = 0;
    int skipped_tx = 0;
    char a[16], b[32], date[32];
    time_t epoch = (time_t) (im->first_t / 1000000);
    struct tm tm;
    int64_t span = im->last_t - im->first_t, retry_gap = -1;

    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        char role = session_role(s);
        int si;

        si = server_of(sv, &nsv, s->srv);
        if (si < 0) {
            free(txs);
            pi_fail(im, "more than %d SMTP servers", PI_MAX_SERVERS);
            return -1;
        }
        loopback |= (s->srv >> 24) == 127;
        sv[si].accepted += role == 'A';
        sv[si].refused += role == 'R';
        sv[si].unreachable += role == 'U';
        sv[si].timeout += role == 'T';
        if (role == 'A' && sv[si].rtt < 0 && s->syn_t >= 0 && s->synack_t >= 0 && s->ack_t >= 0) {
            sv[si].rtt = s->ack_t - s->syn_t;
            sv[si].client_side = s->synack_t - s->syn_t >= s->ack_t - s->synack_t;
        }
        if (role == 'A')
            collect_txs(s, i, &txs, &ntx, &txcap);
    }
    /* Envelopes: a transaction with the same envelope as an earlier one is its retry. */
    for (i = 0; i < ntx; i++) {
        if (txs[i].from == NULL || txs[i].nrcpts == 0) {
            skipped_tx++;
            continue;
        }
        for (j = 0; j < i && !txs[i].msg; j++)
            if (txs[j].msg && same_message(&txs[i], &txs[j])) {
                txs[i].msg = txs[j].msg;
                if (im->s[txs[i].session]->nev && im->s[txs[j].session]->nev) {
                    int64_t gap = im->s[txs[i].session]->ev[0].t
                                  - im->s[txs[j].session]->ev[im->s[txs[j].session]->nev - 1].t;
                    if (gap > 0 && (retry_gap < 0 || gap < retry_gap))
                        retry_gap = gap;
                }
            }
        if (!txs[i].msg)
            txs[i].msg = ++nmsg;
    }

    gmtime_r(&epoch, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(o, "# Imported by mtasim import from %s: %d TCP session(s), %d server(s), "
            "%d transaction(s).\n", im->path, im->ns, nsv, ntx);
    fputs("# The remote replies as the captured server did (code, text, delay), session by\n"
          "# session; mtasim's core is the client, so its EHLO name, its timing and the\n"
          "# commands it chooses (PIPELINING, RSET, SIZE=) may differ from the captured\n"
          "# client's: the expectations compare the command verbs and addresses, the reply\n"
          "# lines and each message's fate (docs/pcap.md).\n", o);
    for (i = 0; i < im->ns; i++) {
        const struct pi_session *s = im->s[i];
        char role = session_role(s), c[16];

        fprintf(o, "#   session %d  %s:%u -> %s:%u  %s\n", i + 1, ipv4_str(s->cli, a), s->cport,
                ipv4_str(s->srv, c), s->sport,
                role == 'A' ? (s->no_syn ? "SMTP (capture starts after the handshake)" : "SMTP")
                : role == 'R' ? "refused (RST)" : role == 'U' ? "unreachable (ICMP)"
                : role == 'T' ? "no answer to the SYN (timeout)"
                : "a probe: connected, read the banner, sent nothing (not scripted)");
    }
    if (im->skipped_v6 || im->skipped_frag)
        fprintf(o, "# skipped: %lu IPv6 packet(s), %lu IP fragment(s)\n", im->skipped_v6,
                im->skipped_frag);
    if (skipped_tx)
        fprintf(o, "# %d transaction(s) with addresses a scenario cannot name, or no recipient, "
                "were not injected\n", skipped_tx);
    fprintf(o, "scenario %s\nepoch %s\n", name, date);
    if (loopback)
        fputs("config prohibited_ips none            # the captured server is on loopback\n", o);

    /* Fates first: a deferred message needs the run to stop before the retry. */
    for (k = 1; k <= nmsg; k++)
        for (i = ntx - 1; i >= 0; i--)
            if (txs[i].msg == k) {
                deferred |= tx_fate(&txs[i]) && strcmp(tx_fate(&txs[i]), "deferred") == 0;
                break;
            }
    if (nmsg == 0)
        deferred = 1;
    if (retry_gap > 0)
        fprintf(o, "config retry_interval %s           # the captured client's retry\n",
                usec_str(retry_gap / 1000000 > 0 ? retry_gap / 1000000 * 1000000 : 1000000, b));
    if (deferred) {
        int64_t run = (span / 1000000 + 60) * 1000000;

        if (retry_gap <= 0)
            fprintf(o, "config retry_interval %s         # no retry within the run\n",
                    usec_str(run + 60000000 > 1200000000 ? run + 60000000 : 1200000000, b));
        fprintf(o, "run for %s                         # the capture's span and a minute\n",
                usec_str(run, b));
    }
    fputc('\n', o);

    /* DNS: every recipient domain has every captured server as an MX, in the
     * order the client first tried them, so that a fallback happens again. */
    for (i = 0; i < ntx; i++) {
        for (j = 0; j < txs[i].nrcpts && txs[i].msg; j++) {
            const char *dom = strchr(txs[i].rcpts[j], '@') + 1;
            int seen = 0, i2, j2;

            for (i2 = 0; i2 <= i && !seen; i2++)
                for (j2 = 0; j2 < txs[i2].nrcpts && txs[i2].msg && !seen; j2++)
                    if ((i2 < i || j2 < j) && strcasecmp(strchr(txs[i2].rcpts[j2], '@') + 1, dom) == 0)
                        seen = 1;
            for (k = 0; k < nsv && !seen; k++)
                fprintf(o, "dns %s MX %d mx%d.import.test\n", dom, 10 * (k + 1), k + 1);
        }
    }
    for (k = 0; k < nsv && nmsg == 0; k++)
        fprintf(o, "dns import.test MX %d mx%d.import.test\n", 10 * (k + 1), k + 1);
    for (k = 0; k < nsv; k++)
        fprintf(o, "dns mx%d.import.test A %s\n", k + 1, ipv4_str(sv[k].addr, a));
    fputc('\n', o);
    for (k = 0; k < nsv; k++) {
        emit_remote(o, im, &sv[k], k, &replaced);
        if (sv[k].accepted && (sv[k].refused || sv[k].unreachable || sv[k].timeout))
            fprintf(o, "  # %d failed connect(s) to this server are not scripted: a remote's "
                    "connect mode holds for every session\n",
                    sv[k].refused + sv[k].unreachable + sv[k].timeout);
        fputc('\n', o);
    }

    /* Injections, at the start of the session that first carried them. */
    for (k = 1; k <= nmsg; k++)
        for (i = 0; i < ntx; i++)
            if (txs[i].msg == k) {
                const struct pi_session *s = im->s[txs[i].session];
                int64_t at = s->nev ? s->ev[0].t - im->first_t : 0;

                fprintf(o, "inject %d from <%s> to ", k, txs[i].from);
                for (j = 0; j < txs[i].nrcpts; j++)
                    fprintf(o, "%s<%s>", j ? "," : "", txs[i].rcpts[j]);
                fprintf(o, " at %s", usec_str(at / 1000 * 1000, b));
                if (txs[i].body >= 0)
                    fprintf(o, " size %ld", txs[i].body);
                fputc('\n', o);
                break;
            }
    if (nmsg == 0)
        fputs("inject 1 from <import@mtasim.test> to <postmaster@import.test>   # no "
              "transaction was captured\n", o);
    fputc('\n', o);
    for (k = 1; k <= nmsg; k++)
        for (i = ntx - 1; i >= 0; i--)
            if (txs[i].msg == k) {
                const char *fate = tx_fate(&txs[i]);

                if (fate)
                    fprintf(o, "expect message %d %s\n", k, fate);
                else
                    fprintf(o, "# message %d: its recipients ended differently (no single "
                            "fate to expect)\n", k);
                break;
            }
    for (i = 0, j = 0; i < nsv; i++)
        j += sv[i].accepted;
    if (nmsg == 0 && j == 0)
        fputs("expect message 1 deferred\n", o);
    else if (nmsg == 0)
        fputs("# no transaction was captured: the placeholder message's fate is not the "
              "capture's\n", o);
    for (k = 1; k >= 0; k--) {
        /* A block needs a line: build it aside, print it when it has one. */
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        if (m == NULL) {
            fputs("mtasim import: out of memory\n", stderr);
            exit(3);
        }
        for (i = 0; i < im->ns; i++)
            if (session_role(im->s[i]) == 'A')
                emit_expect_lines(m, im->s[i], k, &replaced);
        fclose(m);
        if (len > 0)
            fprintf(o, "%s\nexpect trace in order\n%s",
                    k ? "# The captured client's commands (verbs and addresses), in order:"
                      : "# The captured server's replies, line by line, in order:", buf);
        else if (k == 0)
            fputs("expect never trace conn established\n", o);
        free(buf);
    }
    if (replaced)
        fputs("# Bytes a scenario cannot hold (control characters, non-ASCII) were replaced "
              "by '?'.\n", o);
    for (i = 0; i < ntx; i++) {
        free(txs[i].from);
        for (j = 0; j < txs[i].nrcpts; j++)
            free(txs[i].rcpts[j]);
    }
    free(txs);
    return 0;
}

/* import_free - everything the import allocated */
static void import_free(struct pi_import *im)
{
    int i, e, l;

    for (i = 0; i < im->ns; i++) {
        struct pi_session *s = im->s[i];
        int d;

        for (e = 0; e < s->nev; e++) {
            for (l = 0; l < s->ev[e].nlines; l++)
                free(s->ev[e].lines[l]);
            free(s->ev[e].lines);
        }
        for (l = 0; l < s->nrl; l++)
            free(s->rl[l]);
        for (d = 0; d < 2; d++)
            while (s->dir[d].ooo) {
                struct pi_seg *g = s->dir[d].ooo;

                s->dir[d].ooo = g->next;
                free(g);
            }
        free(s->ev);
        free(s->waiting);
        free(s);
    }
    free(im->s);
}

/* scenario_name - a scenario name from the output or capture file's base name */
static void scenario_name(const char *path, char *out, size_t outlen)
{
    const char *base = strrchr(path, '/');
    size_t i, n = 0;

    base = base ? base + 1 : path;
    for (i = 0; base[i] && base[i] != '.' && n + 1 < outlen; i++) {
        unsigned char c = (unsigned char) base[i];

        out[n++] = isalnum(c) || c == '-' || c == '_' ? (char) c : '-';
    }
    if (n == 0)
        n = (size_t) snprintf(out, outlen, "imported");
    out[n] = '\0';
}

static const char usage_import[] =
    "usage: mtasim import CAPTURE [--server IP] [--port N]... [-o FILE]\n"
    "\n"
    "Read a packet capture (pcap or pcapng) of SMTP sessions and write a scenario in which\n"
    "a scripted remote behaves as the captured server did: banner, replies and their delays,\n"
    "resets, refused and timed-out connects; the captured transactions are injected and the\n"
    "expectations reproduce the captured dialogue and outcome (docs/pcap.md).\n"
    "\n"
    "options:\n"
    "  --server IP    the SMTP server's address (default: the side on an SMTP port)\n"
    "  --port N       also an SMTP port, besides 25, 587 and 2525 (repeatable)\n"
    "  -o FILE        write the scenario to FILE (default: standard output)\n"
    "  -h, --help     show this help\n"
    "\n"
    "A capture that cannot be read, is truncated or corrupt, or holds no SMTP session is\n"
    "reported as 'CAPTURE: what is wrong' with exit status 2.\n";

/* parse_ipv4 - dotted quad to host order; 0 or -1 */
static int parse_ipv4(const char *s, uint32_t *out)
{
    unsigned a, b, c, d;
    char tail;

    if (sscanf(s, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255
        || c > 255 || d > 255)
        return -1;
    *out = a << 24 | b << 16 | c << 8 | d;
    return 0;
}

/* read_capture - every packet of the file through the filter; 0 or -1 (im->err) */
static int read_capture(struct pi_import *im)
{
    char errbuf[PCAP_ERRBUF_SIZE] = "", filter[512];
    struct bpf_program prog;
    pcap_t *p;
    int dlt, rc, i;
    size_t n;
    struct pcap_pkthdr *h;
    const u_char *data;

    p = pcap_open_offline_with_tstamp_precision(im->path, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
    if (p == NULL) {
        pi_fail(im, "not a capture libpcap can read: %s", errbuf);
        return -1;
    }
    dlt = pcap_datalink(p);
    if (dlt != DLT_EN10MB && dlt != DLT_LINUX_SLL && dlt != DLT_LINUX_SLL2 && dlt != DLT_NULL
        && dlt != DLT_LOOP && dlt != DLT_RAW && dlt != DLT_IPV4) {
        pi_fail(im, "link type %s is not supported (Ethernet, Linux cooked, loopback or raw IP)",
                pcap_datalink_val_to_name(dlt) ? pcap_datalink_val_to_name(dlt) : "unknown");
        pcap_close(p);
        return -1;
    }
    n = (size_t) snprintf(filter, sizeof filter, "(icmp and icmp[icmptype] == icmp-unreach)");
    for (i = 0; i < im->nports; i++)
        n += (size_t) snprintf(filter + n, sizeof filter - n, " or tcp port %u", im->ports[i]);
    assert(n < sizeof filter);
    /* IPv6 SMTP packets pass so that they can be counted as skipped. */
    snprintf(filter + n, sizeof filter - n, " or ip6");
    if (pcap_compile(p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0
        || pcap_setfilter(p, &prog) < 0) {
        pi_fail(im, "cannot apply the filter '%s': %s", filter, pcap_geterr(p));
        pcap_close(p);
        return -1;
    }
    pcap_freecode(&prog);
    while ((rc = pcap_next_ex(p, &h, &data)) == 1 && !im->err[0]) {
        if (++im->packets > PI_MAX_PACKETS) {
            pi_fail(im, "more than %d packets", PI_MAX_PACKETS);
            break;
        }
        if (h->caplen > h->len || h->caplen > 262144) {
            pi_fail(im, "packet %lu: captured length %u exceeds its length %u", im->packets,
                    h->caplen, h->len);
            break;
        }
        frame(im, dlt, h, data);
    }
    if (rc == -1)
        pi_fail(im, "corrupt or truncated capture after %lu packet(s): %s", im->packets,
                pcap_geterr(p));
    pcap_close(p);
    return im->err[0] ? -1 : 0;
}

/* pcap_import_main - the "mtasim import" command */
int pcap_import_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "server", required_argument, NULL, 's' },
        { "port", required_argument, NULL, 'p' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct pi_import im;
    const char *out_path = NULL;
    char name[128], *text = NULL;
    size_t textlen = 0;
    FILE *m;
    int c, rc = 0;

    memset(&im, 0, sizeof im);
    im.ports[0] = 25;
    im.ports[1] = 587;
    im.ports[2] = 2525;
    im.nports = 3;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (parse_ipv4(optarg, &im.server) < 0 || im.server == 0) {
                fprintf(stderr, "mtasim import: --server wants an IPv4 address, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);

            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 65535) {
                fprintf(stderr, "mtasim import: --port wants a port 1-65535, not '%s'\n", optarg);
                return 2;
            }
            if (im.nports >= PI_MAX_PORTS + 3) {
                fprintf(stderr, "mtasim import: at most %d --port options\n", PI_MAX_PORTS);
                return 2;
            }
            im.ports[im.nports++] = (uint16_t) v;
            break;
        }
        case 'o': out_path = optarg; break;
        case 'h': fputs(usage_import, stdout); return 0;
        default: fputs(usage_import, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mtasim import: %s\n", optind >= argc ? "no capture file given"
                                                              : "one capture file at a time");
        fputs(usage_import, stderr);
        return 2;
    }
    im.path = argv[optind];
    if (read_capture(&im) == 0 && im.ns == 0)
        pi_fail(&im, "no SMTP session found (tcp ports 25, 587, 2525%s; IPv4 only)",
                im.nports > 3 ? " and --port" : "");
    scenario_name(out_path ? out_path : im.path, name, sizeof name);
    m = im.err[0] ? NULL : open_memstream(&text, &textlen);
    if (m != NULL) {
        emit_scenario(m, &im, name);
        fclose(m);
    }
    if (im.err[0]) {
        fprintf(stderr, "%s: %s\n", im.path, im.err);
        rc = 2;
    } else if (out_path) {
        FILE *f = fopen(out_path, "w");
        int bad = f == NULL || fwrite(text, 1, textlen, f) != textlen;

        if ((f != NULL && fclose(f) != 0) || bad) {
            fprintf(stderr, "mtasim import: cannot write %s: %s\n", out_path, strerror(errno));
            rc = 2;
        }
    } else {
        fwrite(text, 1, textlen, stdout);
    }
    free(text);
    import_free(&im);
    return rc;
}
