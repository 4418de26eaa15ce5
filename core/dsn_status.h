/*
 * dsn_status - RFC 3463 enhanced status codes for recipient outcomes
 *
 * SYNOPSIS
 *   #include "dsn_status.h"
 *
 *   char st[DSN_STATUS_MAX];
 *   dsn_status_of_reply(552, 5, 5, 3, DSN_CLASS_TRANSIENT, st);   // "4.5.3"
 *   dsn_status_of_reply(250, -1, -1, -1, DSN_CLASS_SUCCESS, st);  // "2.0.0"
 *   dsn_status_for_class(DSN_STATUS_NULL_MX, DSN_CLASS_PERMANENT, st);
 *   if (dsn_status_valid("5.1.10")) ...
 *
 * DESCRIPTION
 *   Every recipient outcome carries a status "class.subject.detail"
 *   (RFC 3463 section 2): the class says what became of the recipient
 *   (2 delivered, 4 persistent transient failure, 5 permanent failure,
 *   RFC 3463 3.1), subject and detail say why.
 *
 *   dsn_status_of_reply() derives it from an SMTP reply: the reply's own
 *   enhanced code (RFC 2034) when it has one whose class agrees with the
 *   reply code (smtp_reply.c already drops codes of another class, as
 *   Postfix's smtp_chat.c does), otherwise the reply class with ".0.0",
 *   the way Postfix writes "dsn=4.0.0" for a reply without one.
 *
 *   The class is then made to agree with the outcome the core decided:
 *   a 552 taken as transient (RFC 5321 4.5.3.1.10) or a reply an
 *   smtp_error_classify provider reclassified reports class 4 or 5 as
 *   the outcome was, with the reply's subject and detail (Postfix's
 *   soft_bounce rewrites the class the same way).
 *
 *   The constants name the codes the core assigns itself where no reply
 *   says anything (RFC 3463 section 3.5 unless noted):
 *     DSN_STATUS_NO_ANSWER        X.4.1  no host answered (connect failed)
 *     DSN_STATUS_BAD_CONNECTION   X.4.2  lost or timed out in a session
 *     DSN_STATUS_DNS_FAILURE      X.4.3  the resolver failed (SERVFAIL)
 *     DSN_STATUS_UNROUTABLE       X.4.4  no such domain, no usable MX
 *     DSN_STATUS_EXPIRED          X.4.7  Message_Expiration, Max_Retries
 *     DSN_STATUS_NULL_MX          X.1.10 null MX (RFC 7505 4.1 and 6)
 *     DSN_STATUS_TOO_BIG          X.3.4  over the server's SIZE (3.4)
 *     DSN_STATUS_PROTOCOL         X.5.0  a malformed or unexpected reply
 *     DSN_STATUS_LOCAL            X.3.0  the sending system itself: a
 *                                        plugin or event refused, no
 *                                        descriptor (3.4)
 *     DSN_STATUS_NETWORK          X.4.0  other network or routing trouble
 *   Written with class 4 here; dsn_status_for_class() sets the class.
 */
#ifndef MTASIM_DSN_STATUS_H
#define MTASIM_DSN_STATUS_H

#include <stddef.h>

#define DSN_STATUS_MAX 12           /* "5.999.999" and its terminator, rounded up */

enum dsn_class {
    DSN_CLASS_SUCCESS = 2,
    DSN_CLASS_TRANSIENT = 4,
    DSN_CLASS_PERMANENT = 5,
};

#define DSN_STATUS_NO_ANSWER      "4.4.1"
#define DSN_STATUS_BAD_CONNECTION "4.4.2"
#define DSN_STATUS_DNS_FAILURE    "4.4.3"
#define DSN_STATUS_UNROUTABLE     "4.4.4"
#define DSN_STATUS_EXPIRED        "4.4.7"
#define DSN_STATUS_NULL_MX        "4.1.10"
#define DSN_STATUS_TOO_BIG        "4.3.4"
#define DSN_STATUS_PROTOCOL       "4.5.0"
#define DSN_STATUS_LOCAL          "4.3.0"
#define DSN_STATUS_NETWORK        "4.4.0"

/* dsn_status_valid - is s a well-formed status: class 2, 4 or 5, then
 * subject and detail of 1 to 3 digits each (RFC 3463 section 2)? */
int dsn_status_valid(const char *s);

/* dsn_status_format - "class.subject.detail" into out; "" when the class is
 * not 2, 4 or 5 or a part is outside 0..999 */
void dsn_status_format(int cls, int subject, int detail, char out[DSN_STATUS_MAX]);

/* dsn_status_for_class - status s (valid, or NULL/invalid meaning
 * "nothing known": ".0.0") with its class replaced by cls, into out */
void dsn_status_for_class(const char *s, enum dsn_class cls, char out[DSN_STATUS_MAX]);

/* dsn_status_of_reply - the status of a reply with code (200..599) and
 * enhanced code parts (each -1 when absent) for an outcome of class cls;
 * code 0 (no reply) gives "cls.0.0" */
void dsn_status_of_reply(int code, int enh_class, int enh_subject, int enh_detail,
                         enum dsn_class cls, char out[DSN_STATUS_MAX]);

#endif
