/*
 * dsn_writer - a delivery status notification as RFC 3464 text
 *
 * See dsn_writer.h.  A pure function of its report, so the unit tests
 * (tests/unit/test_dsn.c) check its text line by line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dsn_writer.h"

#define DSN_FOLD_AT 78      /* RFC 5322 2.1.1: lines SHOULD stay within 78 characters */

/* A growing text; out of memory is fatal, as everywhere in the core. */
struct out {
    char *s;
    size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 2048;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *p = realloc(o->s, cap);
        if (p == NULL) {
            fprintf(stderr, "mtasim: out of memory in dsn_write\n");
            abort();
        }
        o->s = p;
        o->cap = cap;
    }
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = '\0';
}

static void puts_(struct out *o, const char *s) { put(o, s, strlen(s)); }

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct out *o, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* field - "Name: value" CRLF, folded at blanks past DSN_FOLD_AT; control
 * characters in the value (a remote's reply text) become '?' */
static void field(struct out *o, const char *name, const char *value)
{
    size_t col = strlen(name) + 2;
    puts_(o, name);
    puts_(o, ": ");
    const char *p = value;
    while (*p) {
        size_t word = strcspn(p, " ");
        if (col + word > DSN_FOLD_AT && col > strlen(name) + 2) {
            puts_(o, "\r\n ");          /* folding: CRLF and the blank that follows */
            col = 1;
        }
        for (size_t i = 0; i < word; i++) {
            char ch = p[i];
            if ((unsigned char)ch < 0x20 || ch == 0x7f)
                ch = '?';
            put(o, &ch, 1);
        }
        col += word;
        p += word;
        while (*p == ' ') {
            p++;
            if (*p && col + 1 + strcspn(p, " ") <= DSN_FOLD_AT) {
                puts_(o, " ");
                col++;
            } else if (*p) {
                puts_(o, "\r\n ");
                col = 1;
            }
        }
    }
    puts_(o, "\r\n");
}

/* dsn_date - RFC 5322 3.3 date-time, UTC, English names whatever the locale */
void dsn_date(int64_t t, char out[40])
{
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL) {
        snprintf(out, 40, "Thu, 01 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* put_crlf_text - n bytes of s with every line end made CRLF */
static void put_crlf_text(struct out *o, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t stop = end > i && s[end - 1] == '\r' ? end - 1 : end;
        put(o, s + i, stop - i);
        puts_(o, "\r\n");
        i = end + 1;
    }
}

/* header_length - the length of the header section of a message (up to
 * and including the empty line that ends it, or all of it) */
static size_t header_length(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\n')
            continue;
        size_t j = i + 1;
        if (j < n && s[j] == '\r')
            j++;
        if (j < n && s[j] == '\n')
            return j + 1;
    }
    return n;
}

static void text_part(struct out *o, const struct dsn_report *r)
{
    putf(o, "This is the mail system at %s.\r\n\r\n", r->reporting_mta);
    puts_(o, "Your message could not be delivered to the recipients below; the\r\n"
             "mail system has given up on them.  A delivery status report for\r\n"
             "software follows this text, then the ");
    puts_(o, r->return_full ? "message itself.\r\n\r\n" : "header of the message.\r\n\r\n");
    for (int i = 0; i < r->nrcpts; i++) {
        const struct dsn_rcpt *d = &r->rcpts[i];
        char line[1200];
        if (d->diagnostic && d->remote_mta)
            snprintf(line, sizeof line, "<%s>: host %s said: %s", d->address, d->remote_mta,
                     d->diagnostic);
        else
            snprintf(line, sizeof line, "<%s>: %s", d->address,
                     d->diagnostic ? d->diagnostic : d->reason ? d->reason : "delivery failed");
        /* The same folding as a header field, without a field name. */
        struct out tmp = { 0 };
        field(&tmp, "X", line);
        put(o, tmp.s + 3, tmp.len - 3);
        free(tmp.s);
        puts_(o, "\r\n");
    }
}

static void status_part(struct out *o, const struct dsn_report *r)
{
    char date[40], value[1100];
    snprintf(value, sizeof value, "dns; %s", r->reporting_mta);
    field(o, "Reporting-MTA", value);
    if (r->envid)
        field(o, "Original-Envelope-Id", r->envid);
    dsn_date(r->arrival, date);
    field(o, "Arrival-Date", date);
    dsn_date(r->date, date);
    for (int i = 0; i < r->nrcpts; i++) {
        const struct dsn_rcpt *d = &r->rcpts[i];
        puts_(o, "\r\n");
        if (d->orcpt) {
            snprintf(value, sizeof value, "rfc822;%s", d->orcpt);
            field(o, "Original-Recipient", value);
        }
        snprintf(value, sizeof value, "rfc822; %s", d->address);
        field(o, "Final-Recipient", value);
        field(o, "Action", "failed");
        field(o, "Status", d->status);
        if (d->remote_mta) {
            snprintf(value, sizeof value, "dns; %s", d->remote_mta);
            field(o, "Remote-MTA", value);
        }
        if (d->diagnostic) {
            snprintf(value, sizeof value, "smtp; %s", d->diagnostic);
            field(o, "Diagnostic-Code", value);
        }
        field(o, "Last-Attempt-Date", date);
    }
}

/* dsn_write - the whole report; see dsn_writer.h */
char *dsn_write(const struct dsn_report *r, size_t *len)
{
    struct out o = { 0 };
    char date[40], value[600];
    snprintf(value, sizeof value, "MAILER-DAEMON@%s (Mail Delivery System)", r->reporting_mta);
    field(&o, "From", value);
    snprintf(value, sizeof value, "<%s>", r->sender);
    field(&o, "To", value);
    field(&o, "Subject", "Undeliverable: delivery status notification");
    dsn_date(r->date, date);
    field(&o, "Date", date);
    snprintf(value, sizeof value, "<%s>", r->message_id);
    field(&o, "Message-ID", value);
    field(&o, "Auto-Submitted", "auto-replied");
    field(&o, "MIME-Version", "1.0");
    snprintf(value, sizeof value, "multipart/report; report-type=delivery-status; boundary=\"%s\"",
             r->boundary);
    field(&o, "Content-Type", value);
    puts_(&o, "\r\n");
    puts_(&o, "This is a MIME-encapsulated delivery status notification.\r\n\r\n");

    putf(&o, "--%s\r\n", r->boundary);
    puts_(&o, "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    text_part(&o, r);

    putf(&o, "--%s\r\n", r->boundary);
    puts_(&o, "Content-Type: message/delivery-status\r\n\r\n");
    status_part(&o, r);
    puts_(&o, "\r\n");

    putf(&o, "--%s\r\n", r->boundary);
    puts_(&o, r->return_full ? "Content-Type: message/rfc822\r\n\r\n"
                             : "Content-Type: text/rfc822-headers\r\n\r\n");
    size_t n = r->return_full ? r->original_len : header_length(r->original, r->original_len);
    if (r->original != NULL && n > 0)
        put_crlf_text(&o, r->original, n);
    putf(&o, "\r\n--%s--\r\n", r->boundary);
    *len = o.len;
    return o.s;
}
