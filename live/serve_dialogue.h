/*
 * serve_dialogue - the SMTP dialogue of one mtasim serve session, as trace records
 *
 * SYNOPSIS
 *   struct serve_dialogue d;
 *   serve_dialogue_init(&d, fd, sink, sink_arg);
 *   serve_dialogue_client(&d, data, len);     bytes the real client sent
 *   serve_dialogue_server(&d, data, len);     bytes the scripted remote sent
 *   serve_dialogue_end(&d);                   the session is over
 *
 * DESCRIPTION
 *   mtasim run traces the dialogue from its client's side: "smtp send"
 *   for each command line, one "smtp send data_bytes=N" for the message
 *   data, "smtp recv" for each reply line, all with conn=FD.  In mtasim
 *   serve the client is real software, so the bridge (serve.c) hands both
 *   directions of each session to this recorder, which cuts them into the
 *   same records from the same (the client's) side: the dialogue of a
 *   served session and of a simulated one read and compare alike.
 *
 *   Lines end at LF (a CR before it is dropped).  The client's bytes are
 *   data, not commands, after a reply 354 (until the line "." alone,
 *   RFC 5321 4.1.1.4) and for the N bytes after "BDAT N" (RFC 3030 2):
 *   they become one "smtp send data_bytes=N" record when the data ends,
 *   N counting every byte of it (dot-stuffing and the final ".\r\n"
 *   included, as mtasim run counts what its client writes).  A client
 *   can only send the data after the 354 has reached it, so the order in
 *   which the bridge sees the two directions is the order that matters.
 *
 * BOUNDS
 *   A line longer than SERVE_DIALOGUE_LINE_MAX bytes is recorded in
 *   pieces of that size (RFC 5321 4.5.3.1 limits command lines to 512
 *   octets and reply lines to 512; nothing legitimate is cut).  What is
 *   left unterminated when the session ends is recorded as a last line.
 */
#ifndef MTASIM_SERVE_DIALOGUE_H
#define MTASIM_SERVE_DIALOGUE_H

#include <stddef.h>
#include <stdint.h>

#include "mtasim_env.h"

#define SERVE_DIALOGUE_LINE_MAX 2048

typedef void serve_dialogue_sink(void *arg, const struct mta_trace_rec *rec);

/* One direction's unfinished line. */
struct serve_dialogue_line {
    char buf[SERVE_DIALOGUE_LINE_MAX];
    size_t len;
};

struct serve_dialogue {
    int fd;                             /* conn= of every record */
    serve_dialogue_sink *sink;
    void *sink_arg;
    struct serve_dialogue_line cmd, reply;
    enum { SD_COMMANDS, SD_DATA, SD_BDAT } client_state;
    int data_at_line_start;             /* SD_DATA: the next byte starts a line */
    int data_dot;                       /* SD_DATA: this line is "." so far */
    uint64_t data_bytes;                /* SD_DATA, SD_BDAT: bytes of data so far */
    uint64_t bdat_left;                 /* SD_BDAT: bytes still to come */
    long owed;                          /* replies the client is owed (serve_dialogue_owed) */
};

void serve_dialogue_init(struct serve_dialogue *d, int fd, serve_dialogue_sink *sink,
                         void *sink_arg);
void serve_dialogue_client(struct serve_dialogue *d, const char *data, size_t len);
void serve_dialogue_server(struct serve_dialogue *d, const char *data, size_t len);
void serve_dialogue_end(struct serve_dialogue *d);
/* Replies the client is still owed: the banner, one per command line, one at
 * the end of DATA's data, less every reply ended so far ("NNN " or "NNN").
 * The bridge answers what a client sent before it half-closed (RFC 9293
 * 3.6) until this is 0. */
long serve_dialogue_owed(const struct serve_dialogue *d);

#endif
