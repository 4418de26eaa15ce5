/*
 * message.h - what plugins see of a queued message
 *
 * A message is one envelope for one destination domain.  A scenario's
 * injection to recipients at several domains becomes several messages that
 * share the injection's id.  Each recipient carries its own state, so one
 * message can end with some recipients delivered and others bounced.
 */
#ifndef MTASIM_MESSAGE_H
#define MTASIM_MESSAGE_H

#include <stddef.h>
#include <sys/time.h>

enum rcpt_state {
    RCPT_PENDING = 0,       /* not yet delivered nor failed for good */
    RCPT_DELIVERED,         /* the remote accepted it (2xx after the data) */
    RCPT_BOUNCED,           /* failed permanently (5xx, null MX, no such domain) */
    RCPT_EXPIRED,           /* Message_Expiration or Max_Retries reached */
};

/* What smtp_error_classify providers return. */
#define SMTP_CLASSIFY_DEFAULT   0   /* judge by the reply code */
#define SMTP_CLASSIFY_TRANSIENT 1   /* retry later, whatever the code says */
#define SMTP_CLASSIFY_PERMANENT 2   /* fail for good, whatever the code says */

struct message_rcpt {
    char *address;          /* without angle brackets */
    enum rcpt_state state;
    int last_code;          /* last SMTP reply code seen for it, 0 if none */
    const char *last_note;  /* last reply text or failure reason; shared: do not free */
    const char *last_status;    /* RFC 3463 status of its last outcome ("4.4.1"), NULL
                                 * before any; shared: do not free */
    const char *last_mta;       /* the remote host behind its last outcome, NULL when no
                                 * host answered; shared */
};

typedef struct message {
    unsigned long id;           /* the injection's id, shared across domains */
    const char *mail_from;      /* without angle brackets; "" for the null sender; shared */
    const char *domain;         /* destination domain */
    int binding_slot;
    int rcpt_count;
    struct message_rcpt *rcpts;
    const char *body;           /* the message as injected, shared, LF or CRLF */
    size_t body_len;
    struct timeval injected;
    struct timeval next_attempt;
    int attempts;               /* delivery attempts so far */
    int log_rcpt;               /* index of the recipient a log_* hook is about, -1 for all */
    /* Delivery status notification requests (RFC 3461); NULL when not asked. */
    const char *dsn_notify;     /* "SUCCESS,FAILURE,DELAY" or "NEVER" */
    const char *dsn_ret;        /* "FULL" or "HDRS" */
    const char *dsn_envid;      /* the envelope id, unencoded */
    int chunking;               /* send with BDAT when offered (RFC 3030) */
    long deliver_by;            /* DELIVERBY seconds after injection (RFC 2852); 0 = none */
    unsigned long dsn_of;       /* a delivery status notification about message dsn_of;
                                 * 0 for any other message (docs/queue.md, "Bounces") */
} message;

#endif
