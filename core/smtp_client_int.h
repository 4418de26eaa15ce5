/*
 * smtp_client_int - what the outbound SMTP session and its transactions share
 *
 * DESCRIPTION
 *   Private to smtp_client.c (the session: connect, banner, EHLO/HELO,
 *   replies, timeouts, close) and smtp_transaction.c (MAIL, RCPT, DATA,
 *   the reply queue of PIPELINING, recipient limits, the next message).
 *   The rest of the core sees the session through mta_internal.h only.
 */
#ifndef MTASIM_SMTP_CLIENT_INT_H
#define MTASIM_SMTP_CLIENT_INT_H

#include <stddef.h>

#include "mta_internal.h"
#include "outq.h"
#include "smtp_data.h"

/* HOOK_LIVE(name) - a call of hook name does something: a provider is
 * registered, or the call point is traced.  Otherwise the call returns 0
 * and does nothing, so the arguments (sc_dc, sc_handle: a delivery
 * construct and an ec_message made current, a few hundred instructions)
 * need not be built; the reply path makes them several times a delivery. */
#define HOOK_LIVE(name) (has_core_##name##_hook() || mta_tracing())

#define SMTP_INBUF_MAX (1024 * 1024)    /* more unparsed input is a protocol error */
#define SMTP_LINE_MAX 1024              /* a command line we build */

/* SC_PLUGIN: a MailerQ plugin's mq_smtp_out_data holds control before the
 * message data goes out (mailerq_out.c); no reply is awaited. */
enum sc_state { SC_CONNECTING, SC_BANNER, SC_EHLO, SC_HELO, SC_RSET, SC_MAIL, SC_RCPT,
                SC_DATA, SC_PLUGIN, SC_BODY, SC_DOT, SC_IDLE, SC_QUIT, SC_STARTTLS, SC_TLS,
                SC_CLOSED };
extern const char *const sc_state_names[];   /* by enum sc_state, for notes */

/* What this attempt decided for each recipient of the message in flight.
 * RC_LEFTOVER: refused by a recipient limit (452, or 552 taken as
 * transient) in this transaction, to be sent again in the next one. */
enum { RC_UNSENT, RC_SENT, RC_ACCEPTED, RC_DECIDED, RC_LEFTOVER };

enum { EXT_PIPELINING = 1, EXT_8BITMIME = 2, EXT_SIZE = 4, EXT_ENHANCEDSTATUSCODES = 8,
       EXT_DSN = 16, EXT_CHUNKING = 32, EXT_DELIVERBY = 64, EXT_STARTTLS = 128 };

/* Commands the socket has not taken yet (a pipelined group of many RCPTs
 * can be larger than the send buffer): beyond this the peer is not
 * reading, and the session ends. */
#define SMTP_OUTQ_MAX ((size_t)8 << 20)

/* The ESMTP parameters of one MAIL or RCPT command (smtp_args.c): what
 * smtp_client_*_args providers get as pub. */
#define SMTP_ARG_KEY_MAX 64
struct mta_args {
    smtp_client_args pub;               /* must stay first; pub.dict == &pub */
    size_t base_len;                    /* the command before its parameters */
    struct {
        char key[SMTP_ARG_KEY_MAX];
        char value[SMTP_LINE_MAX];      /* "" for a bare keyword */
    } v[SMTP_CLIENT_ARGS_MAX];
};
void smtp_args_init(struct mta_args *a, size_t base_len);

/* One reply the session waits for, in the order the commands went out. */
struct pending {
    enum sc_state kind;                 /* SC_MAIL, SC_RCPT or SC_DATA */
    int rcpt;                           /* for SC_RCPT: the recipient index */
};

struct mta_conn {
    connection_handle pub;              /* must stay first */
    struct mta *m;
    struct mta_domain *d;
    struct mta_conn *next, *prev;       /* m->conns */
    struct mta_conn *dnext, *dprev;     /* d->conn_list: the same order, one domain */
    enum sc_state state;
    int fd_open;                        /* tcp_close not yet called */
    int established;                    /* inc_outbound_connections was called */
    mta_timer_id timer;                 /* armed at timer_at, or 0 */
    mta_usec_t timer_at;
    mta_usec_t deadline;                /* when the awaited reply is late; 0 = none */
    connection_finish_cb finish;
    connection_timeout_cb timeout;
    char *host;
    host_record host_copy;              /* pub.host: the MX host, name = host */
    connection conn_view;               /* pub.conn: sc_handle() keeps it current */
    delivery_construct dc;              /* what dc-taking hooks get: sc_dc() */
    char *reply_buf;                    /* dc.buffer: the last reply read */
    size_t reply_cap;
    mta_usec_t state_at;                /* when state was entered (sc_expect) */
    mta_usec_t taken_at;                /* when msg was taken */
    int esmtp;                          /* the server answered EHLO */
    int delivered_txns;                 /* transactions that delivered a recipient */
    int rcpts_total;                    /* RCPT commands sent on this connection */
    char *in;
    size_t inlen, incap;
    unsigned ext;
    long size_limit;                    /* the server's SIZE, 0 = none given */
    long deliverby_min;                 /* the server's DELIVERBY minimum, seconds */
    int use_bdat;                       /* this transaction sends BDAT, not DATA */
    struct mta_msg *msg;                /* in flight */
    unsigned char *rc;                  /* per recipient: RC_* */
    size_t rc_cap;                      /* rc's size: it is reused message after message */
    struct pending *pend;               /* replies awaited, oldest first */
    int npend, pend_head, pend_cap;
    int accepted;
    int txn_rcpts;                      /* RCPTs sent in this transaction */
    int txn_delivered;                  /* this transaction delivered a recipient */
    int leftovers;                      /* recipients now RC_LEFTOVER */
    int txn_failed;                     /* MAIL failed: consume the rest */
    int empty_data;                     /* a "." was sent only to close DATA */
    int rcpt_next;                      /* unpipelined: the next recipient to try */
    int transactions;                   /* messages started on this connection */
    int rsets;                          /* RSETs owed: a transaction ran before this one */
    int in_input;                       /* take_input is on the stack: defer the free */
    struct outq out;                    /* commands the socket did not take yet */
    struct smtp_data *data;             /* the message data being written (SC_BODY) */
    int tls_level;                      /* MTA_TLS_* decided after the first EHLO */
    int tls_active;                     /* the handshake completed: all is inside TLS */
};

/* sc_set_msg - the message in flight on c is now msg (NULL: none) */
static inline void sc_set_msg(struct mta_conn *c, struct mta_msg *msg)
{
    if (c->msg != NULL)
        c->msg->on_conn = NULL;
    c->msg = msg;
    if (msg != NULL) {
        msg->on_conn = &c->pub;
        c->taken_at = mta_now(c->m);
    }
}

/* WHY - a reason for an outcome with no reply behind it */
#define WHY(status, note) (&(struct rcpt_why){ 0, (status), (note), NULL })

/* smtp_client.c: the session */
/* sc_handle - the connection's handle with its connection view made current */
connection_handle *sc_handle(struct mta_conn *c);
/* sc_dc - the session's delivery_construct made current; its message is
 * msg (c->msg, or the one a transaction just ended with), about recipient
 * rcpt (-1: as msg_ec() chooses) */
delivery_construct *sc_dc(struct mta_conn *c, struct mta_msg *msg, int rcpt);
void sc_trace_line(struct mta_conn *c, const char *dir, const char *line, size_t len);
/* sc_expect - wait for the reply of state s (or, idle, for mail), within its timeout */
void sc_expect(struct mta_conn *c, enum sc_state s);
void sc_deadline_clear(struct mta_conn *c);
/* sc_put_line - append "LINE\r\n" to out (at most SMTP_LINE_MAX) and trace it */
void sc_put_line(struct mta_conn *c, char *out, size_t *len, const char *line);
/* sc_write - bytes to the server, whole and in order (what the socket does
 * not take now waits in c->out); 0 or a negative errno */
int sc_write(struct mta_conn *c, const void *buf, size_t len);
/* sc_put - the socket write (outq.h's put) */
int sc_put(void *arg, const void *buf, size_t len);
/* sc_send_line - "VERB" or "VERB ARG" with CRLF; 0, or a negative errno if the peer is gone */
int sc_send_line(struct mta_conn *c, const char *verb, const char *arg);
void sc_send_quit(struct mta_conn *c);
/* sc_conn_close - close once, free (unless take_input runs), wake the maintainer */
void sc_conn_close(struct mta_conn *c);

/* smtp_tls.c: STARTTLS and the client's TLS policy */
/* sc_tls_after_ehlo - the server's EHLO (or HELO) reply is in: 1 when STARTTLS
 * or the policy took the session over, 0 to go on with the transaction */
int sc_tls_after_ehlo(struct mta_conn *c);
/* sc_tls_reply - the reply to STARTTLS */
void sc_tls_reply(struct mta_conn *c, const struct smtp_reply *r, const char *note);
/* sc_tls_up, sc_tls_failed - how the handshake ended (MTA_TCP_TLS_UP / _FAILED) */
void sc_tls_up(struct mta_conn *c);
void sc_tls_failed(struct mta_conn *c, int err, const char *why, size_t len);

/* smtp_transaction.c: the transaction */
struct smtp_reply;
/* sc_reply_why - the reason reply r gives (status is its enhanced code or "") */
struct rcpt_why sc_reply_why(const struct smtp_reply *r, const char *note,
                             char status[DSN_STATUS_MAX]);
/* sc_fail_in_flight - recipients not yet decided get outcome o; attempt over */
void sc_fail_in_flight(struct mta_conn *c, enum rcpt_outcome o, const struct rcpt_why *why);
/* sc_decide_accepted - the recipients the remote accepted get outcome o */
void sc_decide_accepted(struct mta_conn *c, enum rcpt_outcome o, const struct rcpt_why *why);
/* sc_outcome_of - how a reply counts for a recipient (at_rcpt: a reply to RCPT) */
enum rcpt_outcome sc_outcome_of(struct mta_conn *c, int code, const char *note, int at_rcpt);
/* sc_next_transaction - start the next message, wait idle, or QUIT */
void sc_next_transaction(struct mta_conn *c);
/* sc_start_transaction - MAIL (with PIPELINING every RCPT and DATA) in one write */
void sc_start_transaction(struct mta_conn *c);
/* sc_end_transaction - more of the message, or the next one */
void sc_end_transaction(struct mta_conn *c);
/* sc_transaction_reply - a reply to MAIL, RCPT or DATA, oldest first */
void sc_transaction_reply(struct mta_conn *c, const struct smtp_reply *r, const char *note);
/* sc_quit_for_event - an event callback asked to quit: the message waits */
void sc_quit_for_event(struct mta_conn *c, const char *event);
/* sc_data_pump - write what the socket takes of the data (MTA_TCP_WRITABLE);
 * 0 or a negative errno */
int sc_data_pump(struct mta_conn *c);
/* sc_data_sent - the data's last byte left (MTA_TCP_SENT): the end-of-data wait */
void sc_data_sent(struct mta_conn *c);
void sc_data_release(struct mta_conn *c);

#endif
