/*
 * smtp_events.h - libESMTP-style event callbacks for the outbound client
 *
 * SYNOPSIS
 *   static void cb(smtp_session_t session, int event_no, void *arg, ...);
 *   smtp_set_eventcb(NULL, cb, arg);           every outbound session
 *   const smtp_status_t *st = smtp_recipient_status(recipient);
 *
 * DESCRIPTION
 *   The event numbers and the extra arguments of each event are those of
 *   libESMTP's documented callback; the types are mtasim's own: a session
 *   is the connection, a message is the queued message, a recipient is one
 *   of its recipients as seen by the current transaction.
 *
 *   event                       extra arguments              when
 *   SMTP_EV_CONNECT         0   -                            TCP connection established
 *   SMTP_EV_MAILSTATUS      1   const char *mailbox, message reply to MAIL FROM
 *   SMTP_EV_RCPTSTATUS      2   const char *mailbox, recipient  reply to each RCPT TO
 *   SMTP_EV_MESSAGEDATA     3   message, int octets          after each write of the
 *                                                            message data; octets so far
 *   SMTP_EV_MESSAGESENT     4   message                      reply to the end of the data
 *   SMTP_EV_DISCONNECT      5   -                            the connection closes
 *   SMTP_EV_SYNTAXWARNING   6   int *quit                    a reply lacks the enhanced
 *                                                            status code the server promised
 *                                                            (ENHANCEDSTATUSCODES)
 *   SMTP_EV_EXTNA_DSN    2000   int *quit                    DSN asked, server lacks it
 *   SMTP_EV_EXTNA_8BITMIME 2001 -                            8-bit body, server lacks 8BITMIME
 *   SMTP_EV_EXTNA_CHUNKING 2004 int *quit                    chunking asked, server lacks it
 *   SMTP_EV_DELIVERBY_EXPIRED 3000 long expiry_difference, int *adjust
 *                                                            the time left for DELIVERBY
 *                                                            (RFC 2852) is below the
 *                                                            server's minimum
 *   SMTP_EV_EXTNA_STARTTLS 2002 -                            TLS required, server lacks
 *                                                            STARTTLS (the session quits)
 *   SMTP_EV_STARTTLS_OK   3101  void *ssl (NULL), const char *cipher, int bits
 *                                                            the TLS handshake completed
 *   SMTP_EV_INVALID_PEER_CERTIFICATE 3102 long vfy_result, int *ok
 *                                                            policy verify: the certificate
 *                                                            is expired (X509_V_ERR 10) or
 *                                                            untrusted (18)
 *   SMTP_EV_NO_PEER_CERTIFICATE 3103 int *ok                 policy verify: none shown
 *   SMTP_EV_WRONG_PEER_CERTIFICATE 3104 int *ok              policy verify: it does not
 *                                                            name the MX host
 *
 *   *ok starts at 0, as in libESMTP: a callback that sets it non-zero
 *   accepts the certificate anyway; otherwise the session ends (docs/tls.md).
 *
 *   *quit starts at 0; a callback that sets it non-zero ends the session
 *   (QUIT) and the message is retried later.  *adjust starts at 0; a
 *   callback that sets it > 0 sends BY= the server's minimum plus adjust
 *   seconds, otherwise the message fails for good.
 *
 *   SMTP_EV_ETRNSTATUS (1000), SMTP_EV_EXTNA_ETRN (2003),
 *   SMTP_EV_EXTNA_BINARYMIME (2005), SMTP_EV_WEAK_CIPHER (3100) and the
 *   client-certificate events (3105-3107) are defined but never raised:
 *   the core sends no ETRN and no BINARYMIME content, offers only strong
 *   ciphers and shows no client certificate.
 *
 *   Callbacks run in registration order; every event is also a trace
 *   record (kind "event", name "SMTP_EV_..."), written after the callbacks
 *   with the final value of *quit or *adjust.
 *
 *   The status of a reply: code, its text, the enhanced status code (-1
 *   when absent).  The text belongs to the core and is valid while the
 *   message exists.
 */
#ifndef MTASIM_SMTP_EVENTS_H
#define MTASIM_SMTP_EVENTS_H

#include "connection.h"
#include "message.h"

#define SMTP_EV_CONNECT             0
#define SMTP_EV_MAILSTATUS          1
#define SMTP_EV_RCPTSTATUS          2
#define SMTP_EV_MESSAGEDATA         3
#define SMTP_EV_MESSAGESENT         4
#define SMTP_EV_DISCONNECT          5
#define SMTP_EV_SYNTAXWARNING       6
#define SMTP_EV_ETRNSTATUS          1000
#define SMTP_EV_EXTNA_DSN           2000
#define SMTP_EV_EXTNA_8BITMIME      2001
#define SMTP_EV_EXTNA_STARTTLS      2002
#define SMTP_EV_EXTNA_ETRN          2003
#define SMTP_EV_EXTNA_CHUNKING      2004
#define SMTP_EV_EXTNA_BINARYMIME    2005
#define SMTP_EV_DELIVERBY_EXPIRED   3000
/* STARTTLS (libESMTP's libesmtp.h numbers) */
#define SMTP_EV_WEAK_CIPHER                 3100
#define SMTP_EV_STARTTLS_OK                 3101
#define SMTP_EV_INVALID_PEER_CERTIFICATE    3102
#define SMTP_EV_NO_PEER_CERTIFICATE         3103
#define SMTP_EV_WRONG_PEER_CERTIFICATE      3104
#define SMTP_EV_NO_CLIENT_CERTIFICATE       3105
#define SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE 3106
#define SMTP_EV_UNUSABLE_CA_LIST            3107

typedef struct smtp_status {
    int code;               /* 0 until a reply was seen */
    char *text;             /* the reply's text, lines joined by spaces */
    int enh_class, enh_subject, enh_detail;
} smtp_status_t;

/* A recipient of the message in a transaction: its mailbox and status. */
struct smtp_recipient {
    const char *mailbox;
    smtp_status_t status;
};

typedef connection_handle *smtp_session_t;
typedef message *smtp_message_t;
typedef struct smtp_recipient *smtp_recipient_t;
typedef void (*smtp_eventcb_t)(smtp_session_t session, int event_no, void *arg, ...);

#define SMTP_EVENTCB_MAX 16

/* Register cb for session, or for every session when session is NULL.
 * Returns 1, or 0 when SMTP_EVENTCB_MAX callbacks are registered already. */
int smtp_set_eventcb(smtp_session_t session, smtp_eventcb_t cb, void *arg);

const smtp_status_t *smtp_reverse_path_status(smtp_message_t message);
const smtp_status_t *smtp_recipient_status(smtp_recipient_t recipient);
const smtp_status_t *smtp_message_transfer_status(smtp_message_t message);

#endif
