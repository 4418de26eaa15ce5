/*
 * outq - bytes a writer could not hand to its socket yet, in order, bounded
 *
 * See outq.h.  The held bytes are one contiguous run in a buffer that
 * grows by doubling up to the bound; taking bytes off the front only
 * moves an offset, and the run is moved to the front before growing.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "outq.h"
#include "panic.h"

/* outq_init - an empty queue that holds at most max bytes */
void outq_init(struct outq *q, size_t max)
{
    memset(q, 0, sizeof *q);
    q->max = max;
}

/* outq_free - release the buffer; the queue is empty afterwards */
void outq_free(struct outq *q)
{
    free(q->buf);
    q->buf = NULL;
    q->off = q->len = q->cap = 0;
}

/* outq_len - bytes held */
size_t outq_len(const struct outq *q)
{
    return q->len;
}

/* outq_drop - forget what is held (the peer is gone) */
static void outq_drop(struct outq *q)
{
    q->off = q->len = 0;
}

/* outq_keep - append len bytes behind what is held; -ENOBUFS beyond the bound */
static int outq_keep(struct outq *q, const char *buf, size_t len)
{
    if (len > q->max - q->len)
        return -ENOBUFS;
    /* Nothing to keep; there may be no buffer yet, and memcpy from or to
     * NULL is undefined even for 0 bytes (C11 7.24.1p2: UBSan stops). */
    if (len == 0)
        return 0;
    if (q->off + q->len + len > q->cap) {
        if (q->off > 0) {
            memmove(q->buf, q->buf + q->off, q->len);
            q->off = 0;
        }
        if (q->len + len > q->cap) {
            size_t cap = q->cap ? q->cap : 1024;
            char *p;

            while (cap < q->len + len)
                cap *= 2;
            p = realloc(q->buf, cap);
            if (p == NULL)
                util_panic("outq_keep", "out of memory");
            q->buf = p;
            q->cap = cap;
        }
    }
    memcpy(q->buf + q->off + q->len, buf, len);
    q->len += len;
    return 0;
}

/* put_some - hand buf to put until it stops taking; the count taken or -errno */
static long put_some(const char *buf, size_t len, outq_put_fn put, void *arg)
{
    size_t done = 0;
    /* Each round takes at least one byte or stops: len bounds the loop. */
    while (done < len) {
        int n = put(arg, buf + done, len - done);

        if (n == -EAGAIN)
            break;
        if (n < 0)
            return n;
        assert(n > 0 && (size_t) n <= len - done);
        done += (size_t) n;
    }
    return (long) done;
}

/* outq_write - write through when nothing is held; keep what is not taken */
int outq_write(struct outq *q, const void *buf, size_t len, outq_put_fn put, void *arg)
{
    long n = 0;

    assert(buf != NULL || len == 0);
    if (q->len == 0) {
        n = put_some(buf, len, put, arg);
        if (n < 0)
            return (int) n;
    }
    return outq_keep(q, (const char *) buf + n, len - (size_t) n);
}

/* outq_flush - hand the held bytes to put again */
int outq_flush(struct outq *q, outq_put_fn put, void *arg)
{
    long n;

    if (q->len == 0)
        return 0;
    n = put_some(q->buf + q->off, q->len, put, arg);
    if (n < 0) {
        outq_drop(q);
        return (int) n;
    }
    q->off += (size_t) n;
    q->len -= (size_t) n;
    if (q->len == 0)
        q->off = 0;
    return 0;
}
