/*
 * serve_dialogue - the SMTP dialogue of one mtasim serve session, as trace records
 *
 * SYNOPSIS
 *   See serve_dialogue.h.
 *
 * DESCRIPTION
 *   Two line cutters (one per direction) and the client's data state:
 *   commands, message data after a 354 (RFC 5321 4.1.1.4), or BDAT
 *   chunk bytes (RFC 3030 2).  Records are "smtp send" / "smtp recv"
 *   with conn= and line=, or data_bytes= for the data, the fields of
 *   mtasim run's client (core/smtp_client.c) in the same order.
 *
 * DIAGNOSTICS
 *   None: every byte is accounted for somewhere; a broken internal
 *   invariant stops the program by assert().
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve_dialogue.h"

/* emit - one "smtp DIR conn=FD" record with either a line or a byte count */
static void emit(const struct serve_dialogue *d, const char *dir, const char *line,
                 size_t len, int64_t data_bytes)
{
    struct mta_trace_rec rec;
    char conn[24], bytes[24];
    memset(&rec, 0, sizeof rec);
    rec.kind = "smtp";
    rec.name = dir;
    struct mta_trace_field *f = &rec.field[rec.nfields++];
    f->key = "conn";
    f->len = (size_t)snprintf(conn, sizeof conn, "%d", d->fd);
    f->str = conn;
    f->num = d->fd;
    f->has_num = 1;
    f = &rec.field[rec.nfields++];
    if (line != NULL) {
        f->key = "line";
        f->str = line;
        f->len = len;
    } else {
        f->key = "data_bytes";
        f->len = (size_t)snprintf(bytes, sizeof bytes, "%" PRId64, data_bytes);
        f->str = bytes;
        f->num = data_bytes;
        f->has_num = 1;
    }
    d->sink(d->sink_arg, &rec);
}

/* line_take - the finished line of l as a record; l is empty again */
static void line_take(struct serve_dialogue *d, struct serve_dialogue_line *l, const char *dir)
{
    size_t n = l->len;
    if (n > 0 && l->buf[n - 1] == '\r')
        n--;
    emit(d, dir, l->buf, n, 0);
    l->len = 0;
}

/* line_add - one byte; 1 when it ended the line (the line is then in l) */
static int line_add(struct serve_dialogue_line *l, char c)
{
    if (c == '\n')
        return 1;
    assert(l->len < sizeof l->buf);
    l->buf[l->len++] = c;
    return 0;
}

/* bdat_size - "BDAT n [LAST]": n, or -1 when the line is no valid BDAT */
static int64_t bdat_size(const char *line, size_t len)
{
    char text[64];
    if (len < 6 || len >= sizeof text || strncasecmp(line, "BDAT ", 5) != 0)
        return -1;
    memcpy(text, line, len);
    text[len] = '\0';
    char *end;
    unsigned long long n = strtoull(text + 5, &end, 10);
    if (end == text + 5 || (*end != '\0' && *end != ' ') || n > INT64_MAX)
        return -1;
    return (int64_t)n;
}

/* data_done - the message data ended: its record */
static void data_done(struct serve_dialogue *d)
{
    if (d->client_state == SD_DATA)
        d->owed++;              /* the reply to the final "." (BDAT's came with its command) */
    emit(d, "send", NULL, 0, (int64_t)d->data_bytes);
    d->client_state = SD_COMMANDS;
    d->data_bytes = 0;
}

/* command_line - a complete command line is in d->cmd */
static void command_line(struct serve_dialogue *d)
{
    int64_t n = bdat_size(d->cmd.buf, d->cmd.len && d->cmd.buf[d->cmd.len - 1] == '\r'
                                          ? d->cmd.len - 1 : d->cmd.len);
    line_take(d, &d->cmd, "send");
    d->owed++;
    if (n < 0)
        return;
    d->data_bytes = 0;
    d->bdat_left = (uint64_t)n;
    d->client_state = SD_BDAT;
    if (n == 0)
        data_done(d);
}

void serve_dialogue_init(struct serve_dialogue *d, int fd, serve_dialogue_sink *sink,
                         void *sink_arg)
{
    memset(d, 0, sizeof *d);
    d->fd = fd;
    d->sink = sink;
    d->sink_arg = sink_arg;
    d->client_state = SD_COMMANDS;
    d->owed = 1;                /* the banner */
}

long serve_dialogue_owed(const struct serve_dialogue *d)
{
    return d->owed;
}

/* serve_dialogue_client - the client's bytes: commands or data */
void serve_dialogue_client(struct serve_dialogue *d, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        switch (d->client_state) {
        case SD_BDAT:
            /* A run of chunk bytes at once. */
            {
                size_t take = len - i;
                if (take > d->bdat_left)
                    take = (size_t)d->bdat_left;
                d->bdat_left -= take;
                d->data_bytes += take;
                i += take - 1;
                if (d->bdat_left == 0)
                    data_done(d);
            }
            break;
        case SD_DATA:
            /* The data ends with a line that is "." alone. */
            d->data_bytes++;
            if (c == '\n') {
                int end = d->data_dot;
                d->data_at_line_start = 1;
                d->data_dot = 0;
                if (end)
                    data_done(d);
            } else if (d->data_at_line_start) {
                d->data_at_line_start = 0;
                d->data_dot = c == '.';
            } else if (d->data_dot && c != '\r') {
                d->data_dot = 0;
            }
            break;
        case SD_COMMANDS:
            if (line_add(&d->cmd, c))
                command_line(d);
            else if (d->cmd.len == sizeof d->cmd.buf)
                line_take(d, &d->cmd, "send");
            break;
        }
    }
}

/* serve_dialogue_server - the remote's bytes: reply lines; a 354 starts the data */
void serve_dialogue_server(struct serve_dialogue *d, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!line_add(&d->reply, data[i])) {
            if (d->reply.len == sizeof d->reply.buf)
                line_take(d, &d->reply, "recv");
            continue;
        }
        /* "354 text" or "354": the last line of a 354 reply ("354-" goes on). */
        size_t n = d->reply.len;
        if (n > 0 && d->reply.buf[n - 1] == '\r')
            n--;
        int go_ahead = n >= 3 && memcmp(d->reply.buf, "354", 3) == 0
                       && (n == 3 || d->reply.buf[3] == ' ');
        if (n >= 3 && (n == 3 || d->reply.buf[3] == ' ') && d->owed > 0)
            d->owed--;          /* a reply's last line */
        line_take(d, &d->reply, "recv");
        if (go_ahead && d->client_state == SD_COMMANDS) {
            d->client_state = SD_DATA;
            d->data_at_line_start = 1;
            d->data_dot = 0;
            d->data_bytes = 0;
        }
    }
}

/* serve_dialogue_end - what is left unterminated, recorded as it is */
void serve_dialogue_end(struct serve_dialogue *d)
{
    if (d->cmd.len > 0)
        line_take(d, &d->cmd, "send");
    if (d->client_state != SD_COMMANDS && d->data_bytes > 0)
        data_done(d);
    if (d->reply.len > 0)
        line_take(d, &d->reply, "recv");
}
