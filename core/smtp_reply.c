/*
 * smtp_reply - parse SMTP replies from a stream that arrives in pieces
 *
 * SYNOPSIS
 *   #include "smtp_reply.h"
 *
 *   int smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *out,
 *                        size_t *consumed, char *err, size_t errsz);
 *
 * DESCRIPTION
 *   smtp_reply_parse() parses the reply at the start of buf[0..len): lines
 *   "NNN-text" continued until a line "NNN text" or "NNN" (RFC 5321 4.2),
 *   each ending in CRLF; a bare LF is accepted and flagged in out->bare_lf
 *   because real servers send it and a simulator must be able to say so.
 *
 *   The parser is stateless: it re-reads the buffer from the start on each
 *   call.  That costs a rescan per call but makes "one byte at a time" and
 *   "all at once" give the same answer by construction, and the bounds
 *   (SMTP_REPLY_LINE_MAX, SMTP_REPLY_MAX_LINES) cap the rescan.
 *
 *   Only complete lines are judged.  The one exception is a line that is
 *   already longer than the bound without its terminator: waiting for the
 *   rest would let a server make us buffer without limit.
 *
 * CONTRACT
 *   1: a complete reply; *out filled, *consumed = its length.
 *   0: incomplete; *consumed = 0.
 *  -1: malformed; err says why, *consumed = bytes through the bad line
 *      (the whole buffer if that line has no end yet and is over-long).
 *
 * DIAGNOSTICS
 *   err is "line N: what", N being the line of the reply (1-based).
 *   A NULL argument where a pointer is required is a caller bug and stops
 *   the program with an assertion.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp_reply.h"

/* smtp_reply_fail - format the reason, set the discard count, return -1 */
static int smtp_reply_fail(char *err, size_t errsz, size_t *consumed, size_t discard,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int smtp_reply_fail(char *err, size_t errsz, size_t *consumed, size_t discard,
                           const char *fmt, ...)
{
    assert(discard > 0);
    if (err != NULL && errsz > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    *consumed = discard;
    return -1;
}

/* smtp_reply_digits - read 1..3 decimal digits at s[*i], advance *i; -1 if none */
static int smtp_reply_digits(const char *s, size_t n, size_t *i)
{
    int v = 0, k = 0;
    while (*i < n && k < 3 && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    return k > 0 ? v : -1;
}

/*
 * smtp_reply_enhanced - extract "C.S.D" at the start of text t[0..n)
 *
 * The code must be followed by a space or the end of the text, so that
 * "2.0.0queued" or "2.0.0.1" are not taken for one; its class must equal
 * the reply's first digit (RFC 3463: "the class ... must match the first
 * digit of the reply code"), otherwise it is a server bug we do not trust.
 */
static void smtp_reply_enhanced(const char *t, size_t n, int code, struct smtp_reply *out)
{
    size_t i = 0;
    int c, s, d;

    if (n < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.')
        return;
    c = t[0] - '0';
    i = 2;
    if ((s = smtp_reply_digits(t, n, &i)) < 0 || i >= n || t[i] != '.')
        return;
    i++;
    if ((d = smtp_reply_digits(t, n, &i)) < 0 || (i < n && t[i] != ' '))
        return;
    if (c != code / 100)
        return;
    out->enh_class = c;
    out->enh_subject = s;
    out->enh_detail = d;
}

/* smtp_reply_append - add one line's text to out->text, '\n'-separated, cutting safely */
static void smtp_reply_append(struct smtp_reply *out, size_t *used, const char *t, size_t n)
{
    size_t room;

    assert(*used < sizeof out->text);
    if (out->nlines > 1) {
        if (*used + 1 < sizeof out->text)
            out->text[(*used)++] = '\n';
        else
            out->truncated = 1;
    }
    room = sizeof out->text - 1 - *used;
    if (n > room) {
        n = room;
        out->truncated = 1;
    }
    memcpy(out->text + *used, t, n);
    *used += n;
    out->text[*used] = '\0';
    out->text_len = *used;
}

/* smtp_reply_parse - parse the reply at the start of buf (see smtp_reply.h) */
int smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *out,
                     size_t *consumed, char *err, size_t errsz)
{
    size_t pos = 0, used = 0;

    assert(buf != NULL || len == 0);
    assert(out != NULL && consumed != NULL);

    /* Not memset: the two text buffers are 6 KiB, parsed once per reply;
     * every field is set here and both strings are kept terminated. */
    out->code = 0;
    out->nlines = 0;
    out->bare_lf = 0;
    out->truncated = 0;
    out->text[0] = '\0';
    out->text_len = 0;
    out->first_line[0] = '\0';
    out->enh_class = out->enh_subject = out->enh_detail = -1;
    *consumed = 0;
    if (err != NULL && errsz > 0)
        err[0] = '\0';

    /* One iteration per line; the line bound ends the loop at the latest. */
    for (int lineno = 1; lineno <= SMTP_REPLY_MAX_LINES; lineno++) {
        const char *line = buf + pos;
        size_t avail = len - pos;
        const char *lf = avail > 0 ? memchr(line, '\n', avail) : NULL;
        size_t n;           /* line length without its terminator */
        int cr, code;
        char sep;

        if (lf == NULL) {
            /* LINE_MAX bytes plus a CR may still be a valid line waiting for its LF. */
            if (avail > SMTP_REPLY_LINE_MAX + 1)
                return smtp_reply_fail(err, errsz, consumed, len,
                                       "line %d: longer than %d bytes", lineno, SMTP_REPLY_LINE_MAX);
            return 0;
        }
        n = (size_t)(lf - line);
        cr = n > 0 && line[n - 1] == '\r';
        if (cr)
            n--;
        else
            out->bare_lf = 1;
        pos += (size_t)(lf - line) + 1;
        assert(pos <= len);

        if (n > SMTP_REPLY_LINE_MAX)
            return smtp_reply_fail(err, errsz, consumed, pos,
                                   "line %d: longer than %d bytes", lineno, SMTP_REPLY_LINE_MAX);
        if (n < 3 || line[0] < '0' || line[0] > '9' || line[1] < '0' || line[1] > '9'
            || line[2] < '0' || line[2] > '9')
            return smtp_reply_fail(err, errsz, consumed, pos,
                                   "line %d: does not start with a 3-digit code", lineno);
        sep = n > 3 ? line[3] : ' ';
        if (sep != '-' && sep != ' ')
            return smtp_reply_fail(err, errsz, consumed, pos,
                                   "line %d: code followed by '%c', not '-' or ' '", lineno,
                                   (line[3] >= 0x20 && line[3] < 0x7f) ? line[3] : '?');
        if (memchr(line, '\0', n) != NULL)
            return smtp_reply_fail(err, errsz, consumed, pos, "line %d: contains a NUL byte", lineno);

        code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (lineno == 1) {
            if (line[0] < '2' || line[0] > '5')
                return smtp_reply_fail(err, errsz, consumed, pos,
                                       "line 1: code %03d is not a reply (first digit must be 2-5)", code);
            out->code = code;
            memcpy(out->first_line, line, n);
            out->first_line[n] = '\0';
            smtp_reply_enhanced(line + (n > 3 ? 4 : 3), n > 3 ? n - 4 : 0, code, out);
        } else if (code != out->code) {
            return smtp_reply_fail(err, errsz, consumed, pos,
                                   "line %d: code %03d differs from %03d on line 1", lineno, code, out->code);
        }
        out->nlines = lineno;
        smtp_reply_append(out, &used, line + (n > 3 ? 4 : 3), n > 3 ? n - 4 : 0);

        if (sep != '-') {
            *consumed = pos;
            return 1;
        }
    }
    /* The last line allowed said "more follows". */
    return smtp_reply_fail(err, errsz, consumed, pos,
                           "line %d: reply continues beyond %d lines", SMTP_REPLY_MAX_LINES,
                           SMTP_REPLY_MAX_LINES);
}
