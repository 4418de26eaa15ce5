/*
 * pcap_import_read - mtasim import, reading: packets, streams, SMTP events
 *
 * DESCRIPTION
 *   The first two stages of pcap_import.c's three, in one pass over the
 *   capture: each frame's link header, IPv4 and TCP (or ICMP unreachable)
 *   header read; each TCP segment given to its session by four-tuple;
 *   each direction's bytes reassembled in sequence order; the lines of
 *   the client taken as commands or message data and those of the server
 *   as replies, each an event with its capture time.  Every bound of
 *   pcap_import.h is enforced here.
 *
 *   Part of mtasim import: pcap_import.c describes it, and
 *   pcap_import_internal.h is what its files share.
 */
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "pcap_import_internal.h"

/* pi_fail - remember the first error; later ones add nothing */
void pi_fail(struct pi_import *im, const char *fmt, ...)
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

/* pi_xrealloc - realloc of n elements of size bytes, fatal on exhaustion */
void *pi_xrealloc(void *p, size_t n, size_t size)
{
    assert(size > 0 && n <= SIZE_MAX / size);
    p = realloc(p, n > 0 ? n * size : 1);
    if (p == NULL) {
        fputs("mtasim import: out of memory\n", stderr);
        exit(3);
    }
    return p;
}

/* pi_xstrndup - a NUL-terminated copy of n bytes */
char *pi_xstrndup(const char *s, size_t n)
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
        s->ev = pi_xrealloc(s->ev, (size_t) s->evcap, sizeof *s->ev);
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
        s->waiting = pi_xrealloc(s->waiting, (size_t) s->waiting_cap, sizeof *s->waiting);
    }
    s->waiting[s->nwaiting++] = idx;
}

/* pi_verb_is - the command line's verb is v (case-insensitive) */
int pi_verb_is(const char *line, const char *v)
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
    e->lines[0] = pi_xstrndup(line, len);
    e->nlines = 1;
    wait_push(im, s, s->nev - 1);
    if (pi_verb_is(e->lines[0], "BDAT")) {
        /* RFC 3030 2: "BDAT SIZE [LAST]" - exactly SIZE octets of the
         * message follow the command line, not lines of commands. */
        const char *p = e->lines[0] + 4;
        uint64_t n = 0;
        int digits = 0;

        while (*p == ' ')
            p++;
        for (; isdigit((unsigned char) *p) && digits < 19; p++, digits++)
            n = n * 10 + (uint64_t) (*p - '0');
        if (digits > 0 && (*p == '\0' || *p == ' ')) {
            s->bdat_left = n;
            e->body_bytes = (size_t) n;
        }
    }
}

/* server_line - one line from the server: part of a reply, or its end */
static void server_line(struct pi_import *im, struct pi_session *s, const char *line, size_t len,
                        int64_t t)
{
    struct pi_event *e;
    int last, answers = -1;

    if (s->nrl >= PI_MAX_REPLY_LINES) {
        pi_fail(im, "a reply of more than %d lines", PI_MAX_REPLY_LINES);
        return;
    }
    if ((im->stored += len + 1) > PI_MAX_STORED) {
        pi_fail(im, "more than %u MiB of SMTP command and reply lines", PI_MAX_STORED >> 20);
        return;
    }
    s->rl[s->nrl++] = pi_xstrndup(line, len);
    /* "CODE-" continues; anything else (also a malformed line) ends the reply. */
    last = !(len >= 4 && isdigit((unsigned char) line[0]) && isdigit((unsigned char) line[1])
             && isdigit((unsigned char) line[2]) && line[3] == '-');
    if (!last)
        return;
    if (s->waiting_head < s->nwaiting)
        answers = s->waiting[s->waiting_head++];
    else if (s->nev > 0)
        answers = -3;       /* nothing was waiting: an unsolicited reply */
    /* The reply's time is its last line's: a client acts on a whole reply,
     * so lines that came later (another segment) delay it. */
    e = ev_add(im, s, EV_REPLY, 0, t);
    if (e == NULL)
        return;
    e->lines = xmalloc((size_t) s->nrl * sizeof *e->lines);
    memcpy(e->lines, s->rl, (size_t) s->nrl * sizeof *e->lines);
    e->nlines = s->nrl;
    e->answers = answers;
    s->nrl = 0;
    /* A 354 to DATA opens the message data. */
    if (answers >= 0 && s->ev[answers].kind == EV_CMD && pi_verb_is(s->ev[answers].lines[0], "DATA")
        && strncmp(e->lines[0], "354", 3) == 0) {
        s->in_body = 1;
        s->body_bytes = 0;
    }
    /* RFC 3207 4: after the 220 to STARTTLS the client starts the TLS
     * handshake; nothing after it is cleartext SMTP. */
    if (answers >= 0 && s->ev[answers].kind == EV_CMD
        && pi_verb_is(s->ev[answers].lines[0], "STARTTLS") && strncmp(e->lines[0], "220", 3) == 0) {
        s->tls = 1;
        s->tls_t = t;
    }
}

/* tls_bytes - direction d's bytes after the 220 to STARTTLS: TLS records
 * (RFC 8446 5.1), counted by their headers and skipped; the first
 * plaintext alert (type 21, two octets: level, description; RFC 8446 6)
 * is kept.  A header whose type is not 20-23 or whose version's first
 * octet is not 3 is not TLS: nothing more is read. */
static void tls_bytes(struct pi_tls_dir *td, const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n && !td->not_tls) {
        if (td->left > 0 && td->have < 5) {
            size_t take = n - i < td->left ? n - i : td->left;

            td->left -= (uint32_t) take;
            i += take;
            continue;
        }
        td->hdr[td->have++] = p[i++];
        if (td->have == 5) {
            uint32_t len = (uint32_t) td->hdr[3] << 8 | td->hdr[4];

            if (td->hdr[0] < 20 || td->hdr[0] > 23 || td->hdr[1] != 3) {
                td->not_tls = 1;
                break;
            }
            td->records++;
            td->left = len;
            if (!(td->hdr[0] == 21 && len == 2 && td->alert < 0))
                td->have = 0;       /* skip the body; an alert's 2 octets are read */
        } else if (td->have == 7) {
            td->alert_level = td->hdr[5];
            td->alert = td->hdr[6];
            td->left = 0;
            td->have = 0;
        }
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

        if (s->tls) {
            tls_bytes(&s->tlsd[d], p + i, n - i);
            break;
        }

        if (d == 0 && s->bdat_left > 0) {
            /* A BDAT chunk's octets (counted, not kept). */
            size_t take = n - i < s->bdat_left ? n - i : (size_t) s->bdat_left;

            s->bdat_left -= take;
            i += take - 1;
            continue;
        }

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

/* seq_behind - how far a is before b, for a not after b (seq_diff <= 0): in
 * 0..2^31, as an unsigned number - negating seq_diff's INT32_MIN would be
 * undefined (a capture can hold any sequence number) */
static uint32_t seq_behind(uint32_t a, uint32_t b)
{
    assert(seq_diff(a, b) <= 0);
    return b - a;
}

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
    if ((size_t) seq_behind(seq, dir->next) < len) {
        size_t skip = seq_behind(seq, dir->next);

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
        if ((size_t) seq_behind(g->seq, dir->next) < g->len) {
            size_t skip = seq_behind(g->seq, dir->next);

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
static struct pi_session *session_find(struct pi_import *im, mta_ip cli, uint16_t cport,
                                       mta_ip srv, uint16_t sport)
{
    int i;

    /* The latest first: a reused four-tuple means the newest session. */
    for (i = im->ns - 1; i >= 0; i--) {
        struct pi_session *s = im->s[i];

        if (mta_ip_eq(s->cli, cli) && s->cport == cport && mta_ip_eq(s->srv, srv)
            && s->sport == sport)
            return s;
    }
    return NULL;
}

/* session_new - a session for a four-tuple; NULL past PI_MAX_SESSIONS */
static struct pi_session *session_new(struct pi_import *im, mta_ip cli, uint16_t cport,
                                      mta_ip srv, uint16_t sport)
{
    struct pi_session *s;

    if (im->ns >= PI_MAX_SESSIONS) {
        pi_fail(im, "more than %d SMTP sessions", PI_MAX_SESSIONS);
        return NULL;
    }
    im->s = pi_xrealloc(im->s, (size_t) (im->ns + 1), sizeof *im->s);
    s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->cli = cli;
    s->cport = cport;
    s->srv = srv;
    s->sport = sport;
    s->syn_t = s->synack_t = s->ack_t = -1;
    s->tlsd[0].alert = s->tlsd[1].alert = -1;
    im->s[im->ns++] = s;
    wait_push(im, s, -1);       /* the banner is awaited first */
    return s;
}

/* tcp_packet - one TCP segment between src and dst */
static void tcp_packet(struct pi_import *im, mta_ip src, mta_ip dst, const unsigned char *tcp,
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
    if (!mta_ip_is_unspec(im->server) && !(mta_ip_eq(dst, im->server) && mta_ip_eq(src, im->server)))
        from_client = mta_ip_eq(dst, im->server) ? 1 : mta_ip_eq(src, im->server) ? 0 : -1;
    /* No --server, or it is both ends (a capture on loopback, ::1 to ::1):
     * the side on an SMTP port is the server. */
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
    s = session_find(im, mta_ip_v4(get32(ip + 12)), (uint16_t) get16(ip + ihl),
                     mta_ip_v4(get32(ip + 16)), (uint16_t) get16(ip + ihl + 2));
    if (s != NULL && s->syn && !s->synack && !s->finished) {
        s->unreachable = 1;
        s->finished = 1;
    }
}

/* ip6_at - the IPv6 address at p */
static mta_ip ip6_at(const unsigned char *p)
{
    mta_ip a;

    memcpy(a.b, p, sizeof a.b);
    return a;
}

/* icmp6_packet - an ICMPv6 destination unreachable (RFC 4443 3.1: type 1)
 * quoting one of our SYNs: its IPv6 header, then the TCP ports */
static void icmp6_packet(struct pi_import *im, const unsigned char *icmp, size_t len)
{
    const unsigned char *ip;
    struct pi_session *s;

    if (len < 8 + 40 + 4 || icmp[0] != 1) {
        im->skipped_other++;
        return;
    }
    ip = icmp + 8;
    if ((ip[0] >> 4) != 6 || ip[6] != 6) {
        im->skipped_other++;
        return;
    }
    s = session_find(im, ip6_at(ip + 8), (uint16_t) get16(ip + 40), ip6_at(ip + 24),
                     (uint16_t) get16(ip + 42));
    if (s != NULL && s->syn && !s->synack && !s->finished) {
        s->unreachable = 1;
        s->finished = 1;
    }
}

/* frame6 - the IPv6 packet at ip (caplen bytes): TCP or ICMPv6 right after
 * the fixed header; extension headers other than a fragment's are rare on
 * SMTP and counted as skipped */
static void frame6(struct pi_import *im, const unsigned char *ip, size_t caplen, int64_t t)
{
    size_t plen;

    if (caplen < 40) {
        im->skipped_other++;
        return;
    }
    plen = get16(ip + 4);
    if (plen > caplen - 40)
        plen = caplen - 40;     /* cut by the snap length: use what is there */
    if (ip[6] == 44)            /* a fragment header (RFC 8200 4.5) */
        im->skipped_frag++;
    else if (ip[6] == 6)
        tcp_packet(im, ip6_at(ip + 8), ip6_at(ip + 24), ip + 40, plen, t);
    else if (ip[6] == 58)
        icmp6_packet(im, ip + 40, plen);
    else
        im->skipped_other++;
}

/* ip_offset - where the IP header starts in a frame of this link type;
 * -1 for a frame that is neither IPv4 nor IPv6 (counted), -2 for a short frame */
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
        /* NULL keeps the writer's byte order; either way AF_INET is 2.
         * AF_INET6 differs by system: 10 Linux, 24 NetBSD/OpenBSD, 28
         * FreeBSD, 30 macOS (the values libpcap's own dissectors accept). */
        {
            unsigned af = p[0] | p[3];
            int zero = (p[0] == 0 || p[3] == 0) && p[1] == 0 && p[2] == 0;

            type = zero && af == 2 ? 0x0800
                 : zero && (af == 10 || af == 24 || af == 28 || af == 30) ? 0x86dd : 0;
        }
        break;
    case DLT_RAW:
    case DLT_IPV4:
        off = 0;
        type = caplen > 0 && (p[0] >> 4) == 4 ? 0x0800 : 0x86dd;
        break;
    default:
        return -2;
    }
    if (type != 0x0800 && type != 0x86dd)
        im->skipped_other++;
    return type == 0x0800 || type == 0x86dd ? (long) off : -1;
}

/* frame - one captured frame */
static void frame(struct pi_import *im, int dlt, const struct pcap_pkthdr *h, const unsigned char *p)
{
    int64_t sec = im->unsigned_seconds ? (int64_t) (uint32_t) h->ts.tv_sec : (int64_t) h->ts.tv_sec;
    int64_t t;
    size_t caplen = h->caplen, ihl, total;
    long off;
    const unsigned char *ip;

    /* Out of a scenario's range (its epoch is 1970 to 9999): refused in
     * pi_emit_scenario(), and never multiplied out of int64_t here. */
    if (sec < -PI_MAX_SECONDS || sec > PI_MAX_SECONDS)
        sec = sec < 0 ? -PI_MAX_SECONDS : PI_MAX_SECONDS;
    t = sec * 1000000 + h->ts.tv_usec;
    off = ip_offset(im, dlt, p, caplen);
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
    if (caplen > 0 && (ip[0] >> 4) == 6) {
        frame6(im, ip, caplen, t);
        return;
    }
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
        tcp_packet(im, mta_ip_v4(get32(ip + 12)), mta_ip_v4(get32(ip + 16)), ip + ihl,
                   total - ihl, t);
    else if (ip[9] == 1)
        icmp_packet(im, ip + ihl, total - ihl);
    else
        im->skipped_other++;
}

/* pi_import_free - everything the import allocated */
void pi_import_free(struct pi_import *im)
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

/* pi_read_capture - every packet of the file through the filter; 0 or -1 (im->err) */
int pi_read_capture(struct pi_import *im)
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
    /* A classic pcap file's seconds are an unsigned 32-bit number, as tshark
     * reads them (libpcap hands them over as a signed one: 2^31 and later
     * would be before 1970).  pcapng's are 64-bit, and libpcap's reading of
     * them stands. */
    im->unsigned_seconds = pcap_major_version(p) == 2;
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
    /* IPv6 packets all pass: ICMPv6 and TCP behind the fixed header are
     * sorted out in frame6, extension headers counted there. */
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
