/*
 * smtp_reply - parse SMTP replies from a stream that arrives in pieces
 *
 * SYNOPSIS
 *   #include "smtp_reply.h"
 *
 *   struct smtp_reply r;
 *   size_t used;
 *   char err[128];
 *   int rc = smtp_reply_parse(buf, len, &r, &used, err, sizeof err);
 *
 * DESCRIPTION
 *   A reply (RFC 5321 section 4.2) is one or more lines, each ending in
 *   CRLF.  Every line starts with the same three-digit code; "NNN-" means
 *   more lines follow, "NNN " or a bare "NNN" ends the reply.  The first
 *   digit must be 2, 3, 4 or 5: 1xx replies do not exist for a client.
 *
 *   smtp_reply_parse() looks at buf[0..len) only and never keeps state
 *   between calls: the caller appends received bytes to its buffer and
 *   calls again, from the start of the buffer, until a reply is complete.
 *   It judges complete lines only, so a reply split at any byte boundary
 *   gives the same result as the reply received in one piece.
 *
 *   An enhanced status code (RFC 3463) "C.S.D" at the start of the first
 *   line's text (class 2, 4 or 5; subject and detail 1-3 digits each,
 *   followed by a space or the end of the line) is stored in enh_class,
 *   enh_subject and enh_detail when C equals the first digit of the reply
 *   code; otherwise all three are -1.  The text is kept as received,
 *   enhanced code included.
 *
 * CONTRACT
 *   Returns 1 when buf starts with a complete reply: *out describes it and
 *   *consumed is its length in bytes (the next reply, if pipelined, starts
 *   there).  Returns 0 when more data is needed: *consumed is 0 and *out
 *   holds nothing useful.  Returns -1 when the data is not a valid reply:
 *   err holds a one-line reason and *consumed is the number of bytes to
 *   discard - everything up to and including the offending line (earlier
 *   lines of the same reply cannot form a reply any more), or the whole
 *   buffer when the offending line is over-long and not yet ended.  A
 *   client should treat -1 as a protocol error and close the connection;
 *   the consumed count only lets a tolerant caller resynchronise.
 *
 *   out->text never overflows: longer text is cut at SMTP_REPLY_TEXT_MAX-1
 *   bytes and out->truncated is set.  Both strings are always terminated.
 *
 * BOUNDS
 *   A line longer than SMTP_REPLY_LINE_MAX bytes (terminator excluded) and
 *   a reply of more than SMTP_REPLY_MAX_LINES lines are malformed, so a
 *   hostile server cannot make the caller buffer without limit.
 *
 * DIAGNOSTICS
 *   The err strings name the line of the reply (1-based) and the problem,
 *   e.g. "line 2: code 251 differs from 250 on line 1".
 */
#ifndef MTASIM_SMTP_REPLY_H
#define MTASIM_SMTP_REPLY_H

#include <stddef.h>

#define SMTP_REPLY_LINE_MAX 2048    /* bytes per line, CRLF excluded */
#define SMTP_REPLY_MAX_LINES 128
#define SMTP_REPLY_TEXT_MAX 4096    /* joined text, terminator included */

struct smtp_reply {
    int code;               /* 200..599 */
    int nlines;             /* 1..SMTP_REPLY_MAX_LINES */
    int enh_class;          /* 2, 4 or 5; -1 if absent or of another class */
    int enh_subject;        /* 0..999; -1 if absent */
    int enh_detail;         /* 0..999; -1 if absent */
    int bare_lf;            /* some line ended in LF without CR */
    int truncated;          /* text did not fit and was cut */
    size_t text_len;        /* strlen(text) */
    char text[SMTP_REPLY_TEXT_MAX];             /* each line after "NNN-"/"NNN ", joined by '\n' */
    char first_line[SMTP_REPLY_LINE_MAX + 1];   /* the first line as received, without its terminator */
};

int smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *out,
                     size_t *consumed, char *err, size_t errsz);

#endif
