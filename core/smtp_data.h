/*
 * smtp_data - the message data of an outbound session, written as the socket takes it
 *
 * SYNOPSIS
 *   size_t n = smtp_data_size(body, len, bdat);     its size on the wire
 *   smtp_data_begin(&d, body, len, bdat);
 *   rc = smtp_data_pump(&d, put, arg, taken, targ); now, and on MTA_TCP_WRITABLE
 *   if (smtp_data_all_taken(&d)) ...                the socket has every byte
 *   if (smtp_data_progress(&d, unsent)) ...         did a byte leave since the last look?
 *
 * DESCRIPTION
 *   The data is the body with bare LF made CRLF, a CRLF added when the last
 *   line has none, and, for DATA, leading dots doubled and ".\r\n" at the
 *   end (RFC 5321 4.5.2); for BDAT (RFC 3030) the body with CRLF line ends
 *   and nothing else.  An empty body stays empty.
 *
 *   It is produced a chunk (SMTP_DATA_CHUNK bytes) at a time, while the
 *   socket takes it: the core never holds more of it than one chunk
 *   (mtasim_env.h, "Back-pressure").  smtp_data_pump() writes through
 *   put() (the socket write of outq.h) until put() takes less than it was
 *   given, or nothing (-EAGAIN), or the data is all taken; it calls
 *   taken(targ, n) after every write that took n > 0 bytes, which is
 *   where SMTP_EV_MESSAGEDATA comes from (libESMTP 1.1.0 reports the
 *   length of each write, not a running total).  It returns 0, or the
 *   negative errno of a failed write.
 *
 *   Progress (RFC 5321 4.5.3.2.5, the data-block timeout): the bytes that
 *   have left the host are the bytes taken minus the socket's unsent
 *   count (tcp_unsent).  smtp_data_progress() compares that with the
 *   count at its previous call (or at smtp_data_begin) and remembers it.
 */
#ifndef MTASIM_SMTP_DATA_H
#define MTASIM_SMTP_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "outq.h"

#define SMTP_DATA_CHUNK 16384

struct smtp_data {
    const char *b;              /* the body as the message holds it */
    size_t n, i;                /* its length; the next byte to produce */
    size_t line_start;          /* where the current line began */
    int bdat;                   /* no dot-stuffing, no final "." */
    int phase;                  /* where the producer is (smtp_data.c) */
    char chunk[SMTP_DATA_CHUNK];
    size_t clen, coff;          /* the chunk produced; how much of it was taken */
    uint64_t taken;             /* bytes the socket took */
    uint64_t left_seen;         /* bytes gone at the last progress look */
};

size_t smtp_data_size(const char *b, size_t n, int bdat);
void smtp_data_begin(struct smtp_data *d, const char *b, size_t n, int bdat);
int smtp_data_pump(struct smtp_data *d, outq_put_fn put, void *arg,
                   void (*taken)(void *targ, size_t n), void *targ);
int smtp_data_all_taken(const struct smtp_data *d);
int smtp_data_progress(struct smtp_data *d, long unsent);

#endif
