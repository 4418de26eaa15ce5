/*
 * mta_ip.h - one IP address, IPv4 or IPv6, as the core and the world pass it
 *
 * SYNOPSIS
 *   mta_ip a = mta_ip_v4(0xC6336410);          198.51.100.16
 *   mta_ip b;  mta_ip_parse("2001:db8::25", &b) == 0
 *   mta_ip_is_v4(a), mta_ip_v4_of(a), mta_ip_eq(a, b)
 *   char text[MTA_IP_TEXT];  mta_ip_format(b, text);
 *
 * DESCRIPTION
 *   Sixteen bytes in network order.  An IPv4 address is held as its
 *   IPv4-mapped IPv6 address ::ffff:a.b.c.d (RFC 4291 2.5.5.2), as a
 *   dual-stack socket API presents it, so that one address has exactly one
 *   representation and equality is byte equality.  The family of an address
 *   is therefore a property of its value: mta_ip_is_v4().
 *
 *   Text: an IPv4 address as a dotted quad; an IPv6 address in the
 *   canonical form of RFC 5952 (lower case, the longest run of zero groups
 *   compressed), which is what inet_ntop(3) of glibc writes.
 *
 *   mta_ip_key() is a 64-bit key for idxmap: the IPv4 address itself for
 *   IPv4 (so tables of IPv4 hosts behave as before), a hash above 2^32 for
 *   IPv6; two IPv6 addresses may share a key, so callers confirm with
 *   mta_ip_eq().
 */
#ifndef MTASIM_MTA_IP_H
#define MTASIM_MTA_IP_H

#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>

typedef struct mta_ip {
    uint8_t b[16];              /* network byte order */
} mta_ip;

#define MTA_IP_TEXT 46          /* INET6_ADDRSTRLEN */

/* mta_ip_v4 - the IPv4-mapped form of a host-order IPv4 address */
static inline mta_ip mta_ip_v4(uint32_t a)
{
    mta_ip ip;
    memset(ip.b, 0, 10);
    ip.b[10] = 0xff;
    ip.b[11] = 0xff;
    ip.b[12] = (uint8_t) (a >> 24);
    ip.b[13] = (uint8_t) (a >> 16);
    ip.b[14] = (uint8_t) (a >> 8);
    ip.b[15] = (uint8_t) a;
    return ip;
}

/* mta_ip_is_v4 - whether a is an IPv4 address (IPv4-mapped) */
static inline int mta_ip_is_v4(mta_ip a)
{
    static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    return memcmp(a.b, prefix, 12) == 0;
}

/* mta_ip_v4_of - the host-order IPv4 address of an IPv4 a (0 for IPv6) */
static inline uint32_t mta_ip_v4_of(mta_ip a)
{
    if (!mta_ip_is_v4(a))
        return 0;
    return (uint32_t) a.b[12] << 24 | (uint32_t) a.b[13] << 16 | (uint32_t) a.b[14] << 8 | a.b[15];
}

/* mta_ip_is_unspec - 0.0.0.0 or :: (no address: "any") */
static inline int mta_ip_is_unspec(mta_ip a)
{
    static const uint8_t zero[16];
    return memcmp(a.b, zero, 16) == 0 || (mta_ip_is_v4(a) && mta_ip_v4_of(a) == 0);
}

/* mta_ip_eq - the same address */
static inline int mta_ip_eq(mta_ip a, mta_ip b)
{
    return memcmp(a.b, b.b, 16) == 0;
}

/* mta_ip_key - an idxmap key; see above */
static inline uint64_t mta_ip_key(mta_ip a)
{
    if (mta_ip_is_v4(a))
        return mta_ip_v4_of(a);
    uint64_t h = 1469598103934665603ULL;        /* FNV-1a */
    for (int i = 0; i < 16; i++) {
        h ^= a.b[i];
        h *= 1099511628211ULL;
    }
    return h | (1ULL << 40);
}

/* mta_ip_format - a's text into out (MTA_IP_TEXT bytes); returns out */
static inline char *mta_ip_format(mta_ip a, char *out)
{
    if (mta_ip_is_v4(a)) {
        if (inet_ntop(AF_INET, a.b + 12, out, MTA_IP_TEXT) == NULL)
            out[0] = '\0';
    } else if (inet_ntop(AF_INET6, a.b, out, MTA_IP_TEXT) == NULL) {
        out[0] = '\0';
    }
    return out;
}

/* mta_ip_parse - a dotted quad or an IPv6 address; 0, or -1 */
static inline int mta_ip_parse(const char *s, mta_ip *out)
{
    uint8_t v4[4];
    if (inet_pton(AF_INET, s, v4) == 1) {
        *out = mta_ip_v4((uint32_t) v4[0] << 24 | (uint32_t) v4[1] << 16 |
                         (uint32_t) v4[2] << 8 | v4[3]);
        return 0;
    }
    mta_ip ip;
    if (inet_pton(AF_INET6, s, ip.b) == 1) {
        *out = ip;
        return 0;
    }
    return -1;
}

#endif
