/*
 * outq - bytes a writer could not hand to its socket yet, in order, bounded
 *
 * SYNOPSIS
 *   struct outq q;
 *   outq_init(&q, max);                 at most max bytes held
 *   rc = outq_write(&q, buf, len, put, arg);   write through, keep the rest
 *   rc = outq_flush(&q, put, arg);      MTA_TCP_WRITABLE: try again
 *   n = outq_len(&q);
 *   outq_free(&q);
 *
 * DESCRIPTION
 *   A non-blocking socket takes what its send buffer has room for
 *   (core/include/mtasim_env.h, "Back-pressure").  A writer whose output
 *   must arrive whole and in order (SMTP commands, replies) writes through
 *   an outq: outq_write() hands the bytes to put() at once when nothing is
 *   held, and keeps whatever put() does not take, behind anything held
 *   before.  outq_flush() hands the held bytes to put() again; the writer
 *   calls it when the socket says it has room.
 *
 *   put(arg, buf, len) is the socket write: it returns the count it took
 *   (1 .. len), -EAGAIN for none, or another negative errno for a
 *   failure, which outq_write() and outq_flush() return as they got it
 *   (the held bytes are then dropped: nobody will read them).
 *
 *   Bounds: holding more than max bytes is refused with -ENOBUFS and
 *   nothing is kept: a writer that meets it has a peer that does not read.
 *
 * DIAGNOSTICS
 *   Exhausted memory is fatal (util_panic, panic.h).
 */
#ifndef MTASIM_OUTQ_H
#define MTASIM_OUTQ_H

#include <stddef.h>

typedef int (*outq_put_fn)(void *arg, const void *buf, size_t len);

struct outq {
    char *buf;
    size_t off, len, cap;       /* held: buf[off .. off + len) */
    size_t max;
};

void outq_init(struct outq *q, size_t max);
void outq_free(struct outq *q);
int outq_write(struct outq *q, const void *buf, size_t len, outq_put_fn put, void *arg);
int outq_flush(struct outq *q, outq_put_fn put, void *arg);
size_t outq_len(const struct outq *q);

#endif
