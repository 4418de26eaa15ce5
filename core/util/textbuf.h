/*
 * textbuf - bounded text building without printf, for the hot paths
 *
 * SYNOPSIS
 *   char line[512];
 *   struct textbuf tb = textbuf_on(line, sizeof line);
 *   textbuf_str(&tb, "MAIL FROM:<");
 *   textbuf_strn(&tb, address, 400);      // like "%.400s"
 *   textbuf_u64(&tb, size);               // like "%" PRIu64
 *   size_t len = tb.len;                  // line is NUL-terminated
 *
 * DESCRIPTION
 *   A chain of these calls behaves like a chain of snprintf calls into one
 *   buffer: what does not fit is dropped, the buffer always ends in a NUL,
 *   and tb.len counts the bytes kept.  They exist because snprintf costs
 *   several hundred instructions a call and the client and the scripted
 *   remote format a line for every command and reply they exchange
 *   (docs/performance.md).  Anywhere off those paths snprintf is clearer.
 *
 *   The capacity must be at least 1 (room for the NUL).
 */
#ifndef MTASIM_TEXTBUF_H
#define MTASIM_TEXTBUF_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct textbuf {
    char *buf;
    size_t cap;         /* bytes of buf, the NUL included */
    size_t len;         /* bytes written, the NUL excluded; always < cap */
};

static inline struct textbuf textbuf_on(char *buf, size_t cap)
{
    assert(buf != NULL && cap >= 1);
    buf[0] = '\0';
    return (struct textbuf){ buf, cap, 0 };
}

/* textbuf_mem - append n bytes (cut to the room left) */
static inline void textbuf_mem(struct textbuf *tb, const char *s, size_t n)
{
    size_t room = tb->cap - 1 - tb->len;
    if (n > room)
        n = room;
    memcpy(tb->buf + tb->len, s, n);
    tb->len += n;
    tb->buf[tb->len] = '\0';
}

static inline void textbuf_str(struct textbuf *tb, const char *s)
{
    textbuf_mem(tb, s, strlen(s));
}

/* textbuf_strn - at most max bytes of s, like "%.<max>s" */
static inline void textbuf_strn(struct textbuf *tb, const char *s, size_t max)
{
    textbuf_mem(tb, s, strnlen(s, max));
}

/* Two digits at a time: half the divisions of a digit-by-digit loop, and
 * every trace record carries a few numbers (docs/performance.md). */
static inline void textbuf_u64(struct textbuf *tb, uint64_t v)
{
    static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                                "25262728293031323334353637383940414243444546474849"
                                "50515253545556575859606162636465666768697071727374"
                                "75767778798081828384858687888990919293949596979899";
    char digits[20];
    size_t n = 0;
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        n += 2;
        memcpy(digits + sizeof digits - n, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        n += 2;
        memcpy(digits + sizeof digits - n, pairs + 2 * v, 2);
    } else {
        digits[sizeof digits - 1 - n++] = (char)('0' + v);
    }
    textbuf_mem(tb, digits + sizeof digits - n, n);
}

static inline void textbuf_i64(struct textbuf *tb, int64_t v)
{
    if (v < 0) {
        textbuf_mem(tb, "-", 1);
        textbuf_u64(tb, (uint64_t)0 - (uint64_t)v);
    } else {
        textbuf_u64(tb, (uint64_t)v);
    }
}

/* textbuf_ipv4 - a host-order IPv4 address as a dotted quad */
static inline void textbuf_ipv4(struct textbuf *tb, uint32_t a)
{
    for (int shift = 24; shift >= 0; shift -= 8) {
        textbuf_u64(tb, (a >> shift) & 255);
        if (shift > 0)
            textbuf_mem(tb, ".", 1);
    }
}

#endif
