/*
 * dsn_writer - a delivery status notification as RFC 3464 text
 *
 * SYNOPSIS
 *   #include "dsn_writer.h"
 *
 *   struct dsn_rcpt r = { "bob@example.com", NULL, "5.1.1",
 *                         "mx1.example.com", "550 5.1.1 no such user", NULL };
 *   struct dsn_report rep = { .reporting_mta = "mta.example", .sender = "a@x.test",
 *                             .message_id = "dsn.1000000001@mta.example",
 *                             .boundary = "dsn-1000000001", .arrival = t0, .date = t1,
 *                             .nrcpts = 1, .rcpts = &r, .original = body,
 *                             .original_len = len };
 *   size_t len;
 *   char *text = dsn_write(&rep, &len);     // malloc'd, CRLF line ends
 *
 * DESCRIPTION
 *   The message is a MIME multipart/report with report-type=delivery-status
 *   (RFC 6522 section 3), in three parts:
 *     1. text/plain: what happened, for a person;
 *     2. message/delivery-status (RFC 3464 section 2): the per-message
 *        fields Reporting-MTA (2.2.2), Original-Envelope-Id (2.2.1) when
 *        the message had an ENVID, Arrival-Date (2.2.5); then for each
 *        recipient, after a blank line: Original-Recipient (2.3.1) when
 *        known, Final-Recipient (2.3.2), Action: failed (2.3.3), Status
 *        (2.3.4), Remote-MTA (2.3.5) when a remote host answered,
 *        Diagnostic-Code "smtp; <reply>" (2.3.6) when the failure was a
 *        reply, Last-Attempt-Date (2.3.7);
 *     3. the returned message (RFC 3461 4.3): its header section as
 *        text/rfc822-headers, or with return_full the whole message as
 *        message/rfc822.
 *   The header carries From: MAILER-DAEMON@<reporting MTA>, To: the
 *   original envelope sender, Auto-Submitted: auto-replied (RFC 3834
 *   5.1), MIME-Version, Date and Message-ID.
 *
 *   The text depends only on the report: the dates are formatted from
 *   the given (virtual) seconds in UTC with fixed English names, never
 *   the locale or the clock, and the boundary and Message-ID are the
 *   caller's.  Header fields longer than 78 characters are folded at
 *   blanks (RFC 5322 2.2.3); control characters in reply texts become
 *   '?'.  Every line ends in CRLF, also those copied from a returned
 *   message that had bare LFs.
 */
#ifndef MTASIM_DSN_WRITER_H
#define MTASIM_DSN_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct dsn_rcpt {
    const char *address;        /* Final-Recipient, without <> */
    const char *orcpt;          /* Original-Recipient (RFC 3461 ORCPT), or NULL */
    const char *status;         /* RFC 3463, e.g. "5.1.1" */
    const char *remote_mta;     /* the host that answered, or NULL */
    const char *diagnostic;     /* the SMTP reply "550 5.1.1 ...", or NULL */
    const char *reason;         /* why, for the text part when there is no reply */
};

struct dsn_report {
    const char *reporting_mta;  /* this MTA's host name */
    const char *envid;          /* the original ENVID, or NULL */
    const char *sender;         /* the original envelope sender: To: */
    const char *message_id;     /* the report's Message-ID, without <> */
    const char *boundary;       /* the MIME boundary */
    int64_t arrival;            /* seconds since 1970: when the original arrived */
    int64_t date;               /* seconds since 1970: now */
    int nrcpts;
    const struct dsn_rcpt *rcpts;
    const char *original;       /* the original message as injected */
    size_t original_len;
    int return_full;            /* 1: the whole message; 0: its header only */
};

/* dsn_write - the report as one malloc'd text (never NULL), *len its length */
char *dsn_write(const struct dsn_report *r, size_t *len);

/* dsn_date - an RFC 5322 date-time for t seconds since 1970, UTC, into out */
void dsn_date(int64_t t, char out[40]);

#endif
