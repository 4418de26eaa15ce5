/*
 * smtp_data - the message data of an outbound session, written as the socket takes it
 *
 * See smtp_data.h.  The producer is a small state machine over the body,
 * so a chunk may end anywhere (inside a line, between the CR and the LF
 * it adds) and the next one goes on from there:
 *
 *   BOL   at the start of a line: DATA doubles a leading dot
 *   LINE  copying up to the next LF (or the end of the body)
 *   CR    the LF had no CR before it: send one
 *   LF    the LF itself
 *   END   the body is done: CRLF if its last line had none, then (DATA)
 *         ".\r\n"
 *   DONE
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "smtp_data.h"

enum { P_BOL, P_LINE, P_CR, P_LF, P_END, P_END_CR, P_END_LF, P_DOT, P_DOT_CR, P_DOT_LF,
       P_DONE };

/* produce - the next bytes of the data into out (NULL: only count them), at most cap */
static size_t produce(struct smtp_data *d, char *out, size_t cap)
{
    size_t o = 0;

    /* Each round emits at least one byte or moves to a later phase. */
    while (o < cap && d->phase != P_DONE) {
        switch (d->phase) {
        case P_BOL:
            if (d->i >= d->n) {
                d->phase = P_END;
                break;
            }
            d->line_start = d->i;
            if (!d->bdat && d->b[d->i] == '.') {
                if (out)
                    out[o] = '.';
                o++;
            }
            d->phase = P_LINE;
            break;
        case P_LINE: {
            const char *nl = memchr(d->b + d->i, '\n', d->n - d->i);
            size_t end = nl ? (size_t)(nl - d->b) : d->n;
            size_t k = end - d->i < cap - o ? end - d->i : cap - o;

            if (out)
                memcpy(out + o, d->b + d->i, k);
            o += k;
            d->i += k;
            if (d->i < end)
                break;                      /* the chunk is full */
            if (nl == NULL)
                d->phase = P_END;
            else if (end == d->line_start || d->b[end - 1] != '\r')
                d->phase = P_CR;            /* a bare LF becomes CRLF */
            else
                d->phase = P_LF;
            break;
        }
        case P_CR:
        case P_END_CR:
        case P_DOT_CR:
            if (out)
                out[o] = '\r';
            o++;
            d->phase++;
            break;
        case P_LF:
            if (out)
                out[o] = '\n';
            o++;
            d->i++;                         /* past the body's LF */
            d->phase = P_BOL;
            break;
        case P_END:
            if (d->n > 0 && d->b[d->n - 1] != '\n')
                d->phase = P_END_CR;
            else
                d->phase = d->bdat ? P_DONE : P_DOT;
            break;
        case P_END_LF:
            if (out)
                out[o] = '\n';
            o++;
            d->phase = d->bdat ? P_DONE : P_DOT;
            break;
        case P_DOT:
            if (out)
                out[o] = '.';
            o++;
            d->phase = P_DOT_CR;
            break;
        case P_DOT_LF:
            if (out)
                out[o] = '\n';
            o++;
            d->phase = P_DONE;
            break;
        default:
            assert(!"smtp_data: bad phase");
        }
    }
    return o;
}

/* smtp_data_begin - start producing the data of body b[0..n) */
void smtp_data_begin(struct smtp_data *d, const char *b, size_t n, int bdat)
{
    d->b = b != NULL ? b : "";
    d->n = n;
    d->i = 0;
    d->line_start = 0;
    d->bdat = bdat;
    d->phase = P_BOL;
    d->clen = d->coff = 0;
    d->taken = 0;
    d->left_seen = 0;
}

/* smtp_data_size - the bytes the data of b[0..n) has on the wire */
size_t smtp_data_size(const char *b, size_t n, int bdat)
{
    struct smtp_data d;
    size_t total = 0, k;

    smtp_data_begin(&d, b, n, bdat);
    /* Counting only: each round counts up to SIZE_MAX / 2 bytes or ends. */
    while ((k = produce(&d, NULL, SIZE_MAX / 2)) > 0)
        total += k;
    return total;
}

/* smtp_data_pump - write while the socket takes it */
int smtp_data_pump(struct smtp_data *d, outq_put_fn put, void *arg,
                   void (*taken)(void *targ, size_t n), void *targ)
{
    for (;;) {      /* each round takes a chunk's bytes or returns */
        size_t want;
        int n;

        if (d->coff == d->clen) {
            d->clen = produce(d, d->chunk, sizeof d->chunk);
            d->coff = 0;
            if (d->clen == 0)
                return 0;                   /* all taken */
        }
        want = d->clen - d->coff;
        n = put(arg, d->chunk + d->coff, want);
        if (n == -EAGAIN)
            return 0;                       /* MTA_TCP_WRITABLE follows */
        if (n < 0)
            return n;
        assert(n > 0 && (size_t) n <= want);
        d->coff += (size_t) n;
        d->taken += (uint64_t) n;
        taken(targ, (size_t) n);
        if ((size_t) n < want)
            return 0;                       /* short: MTA_TCP_WRITABLE follows */
    }
}

/* smtp_data_all_taken - has the socket taken the last byte? */
int smtp_data_all_taken(const struct smtp_data *d)
{
    return d->phase == P_DONE && d->coff == d->clen;
}

/* smtp_data_progress - have bytes left the host since the last look? */
int smtp_data_progress(struct smtp_data *d, long unsent)
{
    uint64_t left;

    if (unsent < 0 || (uint64_t) unsent > d->taken)
        return 0;           /* the descriptor is gone: no progress to see */
    left = d->taken - (uint64_t) unsent;
    if (left <= d->left_seen)
        return 0;
    d->left_seen = left;
    return 1;
}
