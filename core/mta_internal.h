/*
 * mta_internal - the core's private structures, shared by its modules
 *
 * The public structures plugins see (domain_record, message,
 * connection_handle) are embedded first in the private ones, so the core
 * converts with a cast and plugins never see private state.
 *
 * Module map (one concern per file):
 *   mta.c          the instance: create, bindings, inject, shutdown, stats
 *   domain.c       domain records and their MX/A resolution
 *   active_queue.c the active queues per (domain, binding) as Momentum's
 *                  Skiplists; the plugins' sl_* and mail_queue_* reads
 *   queue.c        the delayed queue, per-recipient outcomes and the
 *                  retry schedule
 *   ec_message.c   the ec_message view of a message and its accessors
 *   smtp_args.c    smtp_client_args: the ESMTP parameters of MAIL and RCPT
 *   validate.c     the inbound hooks' accept_construct and validate_context
 *   maintainer.c   the mail queue maintainer: when and how many connections
 *   connection.c   initiate_connection / initiate_connection_smtp, CONN_ERR
 *   smtp_client.c  the outbound SMTP session state machine
 *   smtp_reply.c   the SMTP reply parser
 *   smtp_server.c  the inbound SMTP server (smtp_server.h)
 *   mailerq.c      MailerQ-style plugins (mq.h)
 *   config.c       configuration keys and defaults
 *   dsn_status.c   RFC 3463 status codes of recipient outcomes
 *   dsn_writer.c   RFC 3464 delivery status notifications as text
 *   bounce.c       bounces: one DSN per message per failure event
 *   trace.c        trace records
 */
#ifndef MTASIM_MTA_INTERNAL_H
#define MTASIM_MTA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "connection.h"
#include "domain.h"
#include "dsn_status.h"
#include "ec_message.h"
#include "message.h"
#include "skiplist.h"
#include "mta.h"
#include "mtasim_env.h"
#include "idxmap.h"
#include "smtp.h"
#include "smtp_events.h"
#include "strtab.h"
#include "validate.h"

#define MTA_MAX_BINDINGS 64
#define MTA_MAX_MX 16
#define MTA_NOTE_MAX 512

struct mta_msg;

/* The active queue of one (domain, binding): a FIFO of messages, which
 * plugins see as the Skiplist sl (skiplist.h).  Allocated on first use. */
struct mta_aq {
    Skiplist sl;                        /* must stay first */
    skiplistnode *tail;
};

/* The times of recent events, for a "N per DURATION" sliding window. */
struct mta_window {
    mta_usec_t *t;                      /* ring of the last count event times */
    int cap, head, n;
};

enum mta_mx_state {
    MX_UNRESOLVED,      /* never looked up, or the answer expired */
    MX_PENDING,         /* MX or A lookups in flight */
    MX_RESOLVED,        /* pub.mxs holds the hosts and addresses */
    MX_FAILED_TEMP,     /* SERVFAIL or timeout: retry later */
    MX_FAILED_PERM,     /* NXDOMAIN: the domain does not exist */
    MX_NULL,            /* a null MX: the domain accepts no mail */
};

struct mta_domain {
    domain_record pub;                  /* must stay first */
    struct mta *m;
    enum mta_mx_state mx_state;
    mta_usec_t mx_expires;              /* when MX_RESOLVED ends */
    unsigned mx_generation;             /* stale DNS answers are ignored */
    int a_pending;                      /* A lookups still in flight */
    struct mx_host mx_storage[MTA_MAX_MX];
    mx_record *mx_ptrs[MTA_MAX_MX];     /* pub.mxlist: &mx_storage[i] */
    char mx_note[MTA_NOTE_MAX];         /* why the lookup failed */
    char last_error[MTA_NOTE_MAX];      /* the last connection failure, for notes */
    int last_code;                      /* its SMTP reply code, 0 when it was no reply */
    char last_status[DSN_STATUS_MAX];   /* its RFC 3463 status (class 4) */
    char last_mta[MTA_DNS_NAME_MAX];    /* the host that gave it, "" when none answered */
    struct mta_aq *active[MTA_MAX_BINDINGS];   /* NULL until the binding has mail */
    int conns[MTA_MAX_BINDINGS];        /* connecting or open, per binding */
    int conns_total;
    struct mta_conn *conn_list;         /* those connections, in m->conns order */
    enum rcpt_outcome_kind { PURGE_TRANSIENT, PURGE_PERMANENT } purge_kind;
    char purge_note[MTA_NOTE_MAX];      /* why the domain's queue is purged */
    char purge_status[DSN_STATUS_MAX];  /* and its RFC 3463 status */
    int maintain_pending;               /* a maintenance pass is scheduled */
    mta_timer_id maintain_timer;
    mta_usec_t maintain_at;             /* when the scheduled pass runs */
    struct mta_window conn_window;      /* throttle_connections */
    struct mta_window msg_window;       /* throttle_messages */
    int mx_failures;                    /* consecutive connection failures */
    int tls_plain;                      /* the next session with tls_plain_addr skips
                                         * STARTTLS (opportunistic fallback, smtp_tls.c) */
    mta_ip tls_plain_addr;
    int waiting_for_slot;               /* in m->slot_waiters */
};

enum mta_msg_where { MSG_NEW, MSG_ACTIVE, MSG_DELAYED, MSG_INFLIGHT, MSG_DONE };

/* The core's own per-recipient state, beside the public message_rcpt. */
struct mta_rcpt_priv {
    const char *diag;                   /* the SMTP reply behind its last outcome, or NULL */
    unsigned char dsn_done;             /* its failure was reported in a DSN (or needs none) */
    unsigned char final_transient;      /* a transient failure on the attempt that will
                                         * expire it: logged as permanent at its end */
};

struct mta_msg {
    message pub;                        /* must stay first */
    ec_message ec;                      /* what Momentum-style hooks see (ec_message.c) */
    skiplistnode aq_node;               /* in an active queue; data = &ec */
    struct mta_domain *dom;
    enum mta_msg_where where;
    size_t heap_index;                  /* in the delayed heap */
    uint64_t seq;                       /* creation order: ties in the heap */
    mta_usec_t expires_at;              /* injected + Message_Expiration */
    mta_usec_t retry_interval;          /* first retry delay (get_msg_expiration_params) */
    int max_retries;                    /* 0 = auto (get_msg_expiration_params) */
    smtp_status_t mail_status;          /* the last reply to MAIL FROM */
    smtp_status_t data_status;          /* the last reply to the end of the data */
    struct smtp_recipient *rcpt_ext;    /* per recipient: mailbox and last RCPT status */
    mta_usec_t done_at;                 /* when the last recipient became final */
    signed char eightbit;               /* the body has octets > 127: 1, 0, -1 = not looked */
    struct mta_rcpt_priv *rcpt_priv;    /* per recipient */
    const char *attempt_mta;            /* the host of the session it is in flight on, or NULL */
    connection_handle *on_conn;         /* the session it is in flight on, or NULL */
    char *owned_body;                   /* a body the core made (a DSN): freed with the message */
};

/* A host address that failed, not to be tried again before until. */
struct mta_host_failure {
    mta_ip addr;
    mta_usec_t until;
};

/* Connections open to one remote address, all domains together. */
struct mta_host_conns {
    mta_ip addr;
    int n;
};

struct mta_conn;

#define MTA_SPARE_DATA 64

struct mta {
    struct mta_env *env;
    struct strtab *texts;               /* interned reply texts and notes (strtab.h) */
    struct idxmap domain_index;         /* text_hash(domain) -> domains[] */
    struct idxmap host_failure_index;   /* addr -> host_failures[] */
    struct idxmap host_conns_index;     /* addr -> host_conns[] */
    struct mta_config cfg;
    binding bindings[MTA_MAX_BINDINGS];
    char *binding_names[MTA_MAX_BINDINGS];
    char *binding_ehlo[MTA_MAX_BINDINGS];
    int nbindings;

    struct mta_domain **domains;        /* creation order */
    int ndomains, domains_cap;

    struct mta_msg **msgs;              /* creation order */
    size_t nmsgs, msgs_cap;
    uint64_t next_seq;

    struct mta_msg **delayed;           /* min-heap on (next_attempt, seq) */
    size_t ndelayed, delayed_cap;
    mta_timer_id delayed_timer;
    mta_usec_t delayed_timer_at;

    struct mta_host_failure *host_failures;
    int nhost_failures, host_failures_cap;

    struct mta_conn *conns;             /* every live connection */
    int binding_conns[MTA_MAX_BINDINGS];    /* per binding, all domains */
    struct mta_host_conns *host_conns;
    int nhost_conns, host_conns_cap;
    /* Domains held back by a per-host or per-binding limit, in the order
     * they hit it: any closed connection wakes them. */
    struct mta_domain **slot_waiters;
    int nslot_waiters, slot_waiters_cap;
    struct mta_dns_ctx *dns_pending;    /* lookups awaiting an answer */
    /* Closed sessions' data pumps (struct smtp_data, 16 KiB each), handed
     * to the next session that sends a body instead of a fresh malloc:
     * a warm buffer, and no large allocation per connection. */
    struct smtp_data *spare_data[MTA_SPARE_DATA];
    int nspare_data;

    struct mta_stats stats;
    unsigned long ndsn;                 /* DSNs made so far: the k-th is MTA_DSN_ID_BASE + k */
    int shutting_down;
    struct smtp_server *inbound;        /* smtp_server.c: NULL until listening or a user */
};

/* The core that is running (the hook API is global). */
extern struct mta *mta_current;

static inline mta_usec_t mta_now(struct mta *m) { return m->env->now(m->env); }
static inline struct timeval mta_tv(mta_usec_t t)
{
    struct timeval tv = { (time_t)(t / MTA_USEC_PER_SEC), (suseconds_t)(t % MTA_USEC_PER_SEC) };
    return tv;
}
static inline struct mta_domain *mta_dom(domain_record *dr) { return (struct mta_domain *)dr; }
static inline struct mta_msg *mta_msg_of(message *msg) { return (struct mta_msg *)msg; }
static inline struct mta_msg *mta_msg_of_ec(ec_message *ec)
{
    return (struct mta_msg *)(void *)((char *)ec - offsetof(struct mta_msg, ec));
}
/* mta_text - the core's one shared copy of a note or reply text */
static inline const char *mta_text(struct mta *m, const char *s)
{
    return strtab_intern(m->texts, s, strlen(s));
}

/* connection.c: an address as the hooks that take a struct sockaddr * get
 * it - the one place that turns the core's addresses into sockaddrs */
struct mta_sockaddr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u;
    int len;                            /* of the member in use */
};
void mta_sockaddr_set(struct mta_sockaddr *out, mta_ip addr, uint16_t port);

/* plugin_note.c: a "plugin warning" record naming the provider of hook
 * that returned last (printf) */
void mta_plugin_warning(const char *hook, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* mta.c */
void mta_panic(const char *func, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* domain.c */
struct mta_domain *domain_lookup(struct mta *m, const char *name);
struct mta_domain *domain_get(struct mta *m, const char *name);     /* creates */
void domain_resolve(struct mta_domain *d);                         /* start lookups */
void domain_free_all(struct mta *m);
void dns_pending_free_all(struct mta *m);
/* Why d's last connection failed: note (printf), reply code or 0, RFC 3463
 * status (NULL: none known), the host that answered or NULL. */
void domain_set_error(struct mta_domain *d, int code, const char *status, const char *mta,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void host_failure_mark(struct mta *m, mta_ip addr);
int host_failure_active(struct mta *m, mta_ip addr);

/* mta.c: a message the core makes itself (a DSN), from <>, owning body
 * (malloc'd); queued like an injection.  NULL when to has no domain. */
struct mta_msg *mta_inject_internal(struct mta *m, unsigned long id, const char *to,
                                    char *body, size_t len, int slot);

/* active_queue.c */
void queue_append_active(struct mta_msg *msg);
struct mta_msg *queue_pop_active(struct mta_domain *d, int slot);
void queue_remove_active(struct mta_msg *msg);
/* The first message of (d, slot)'s active queue, or NULL; how many it holds. */
struct mta_msg *queue_active_head(struct mta_domain *d, int slot);
unsigned long queue_active_count(const struct mta_domain *d, int slot);
/* The queue as plugins see it: NULL while empty (mail_queue.h). */
Skiplist *queue_active_list(struct mta_domain *d, int slot);
/* ec is a message waiting in the active queue of (d, slot); never reads *ec. */
int queue_active_holds(struct mta_domain *d, int slot, const ec_message *ec);
void queue_active_free(struct mta_domain *d);

/* ec_message.c: the message as Momentum-style hooks see it, made current:
 * about recipient rcpt (-1: the one log_rcpt names, else the first pending) */
ec_message *msg_ec(struct mta_msg *msg, int rcpt);

/* queue.c */
/* Outcome of one recipient (index i) of an in-flight or active message. */
enum rcpt_outcome { OUTCOME_DELIVERED, OUTCOME_TRANSIENT, OUTCOME_PERMANENT };
/*
 * Why a recipient got its outcome: the SMTP reply code (0 when there was
 * no reply), the RFC 3463 status (NULL: derived from the code, see
 * dsn_status.h; its class is made to agree with the outcome), the note
 * for the log hooks ("550 5.1.1 no such user" for a reply) and the host.
 */
struct rcpt_why {
    int code;
    const char *status;
    const char *note;
    const char *mta;        /* the host that answered; NULL: the session's, if any */
};
void queue_rcpt_outcome(struct mta_msg *msg, int i, enum rcpt_outcome o,
                        const struct rcpt_why *why);
/* The message's attempt is over: requeue what is pending, or finish it. */
void queue_attempt_done(struct mta_msg *msg);
/* The message goes back to the active queue of its pair at once, its
 * attempt not counted: recipients left over by a recipient limit that
 * could not go on the same connection (RFC 5321 4.5.3.1.10). */
void queue_requeue_now(struct mta_msg *msg);
/* Every pending recipient gets outcome o, then the attempt is over. */
void queue_fail_message(struct mta_msg *msg, enum rcpt_outcome o, const struct rcpt_why *why);
void queue_delayed_rearm(struct mta *m);
void queue_free_all(struct mta *m);

/* bounce.c */
/* The message's failure event is over: one DSN for every recipient that
 * failed for good since the last one (nothing when none did). */
void bounce_flush(struct mta_msg *msg);

/* maintainer.c */
void maintain_soon(struct mta_domain *d);
void maintain_at(struct mta_domain *d, mta_usec_t when);
void maintain_domain(struct mta_domain *d);
void maintain_wait_for_slot(struct mta_domain *d);
void maintain_wake_slot_waiters(struct mta *m);
/* Sliding-window rate limits (throttle_connections, throttle_messages). */
int window_allows(struct mta_window *w, const struct mta_rate *r, mta_usec_t now,
                  mta_usec_t *later);
void window_note(struct mta_window *w, const struct mta_rate *r, mta_usec_t now);
int host_conns_get(struct mta *m, mta_ip addr);
void host_conns_add(struct mta *m, mta_ip addr, int delta);

/* smtp_events.c */
struct smtp_reply;
void ev_reset(void);
void ev_simple(connection_handle *ch, int ev, message *msg);
void ev_mailstatus(connection_handle *ch, message *msg);
void ev_rcptstatus(connection_handle *ch, message *msg, int i);
void ev_messagedata(connection_handle *ch, message *msg, int octets);
void ev_messagesent(connection_handle *ch, message *msg);
int ev_quit(connection_handle *ch, int ev, message *msg);
int ev_deliverby_expired(connection_handle *ch, message *msg, long difference);
void ev_starttls_ok(connection_handle *ch, const char *cipher, int bits);
int ev_certificate(connection_handle *ch, int ev, long vfy_result);
void status_set(struct mta *m, smtp_status_t *st, const struct smtp_reply *r);
void status_clear(smtp_status_t *st);

/* mailerq_out.c: the outbound MailerQ calls, for smtp_client.c (docs/inbound.md).
 * mq_out_data - at DATA, before the body is sent: mq_smtp_out_data of each
 *   plugin may replace the MIME.  Returns 1 when the chain is over now:
 *   *body and *len point at the MIME to send, valid until mq_out_sent or
 *   the next mq_out_data for this connection.  Returns 0 when a plugin
 *   holds control: resume(ch, body, len) runs when it gave it back -
 *   never from inside mq_out_data, and never after mq_out_closed(ch).
 * mq_out_sent - after the reply to the final dot (code, reply text).
 * mq_out_closed - ch is closing, or the message it held for the chain
 *   failed: a chain still held is detached from it. */
typedef void (*mq_out_resume_fn)(connection_handle *ch, const char *body, size_t len);
int mq_out_data(connection_handle *ch, message *msg, const char **body, size_t *len,
                mq_out_resume_fn resume);
void mq_out_sent(connection_handle *ch, message *msg, int code, const char *reply);
void mq_out_closed(connection_handle *ch);

/* smtp_args.c: " KEY=VALUE ..." of args into out; its length */
size_t smtp_args_render(const smtp_client_args *args, char *out, size_t size);

/* validate.c: what the inbound hooks see of one session */
struct vs_dict {
    int n;
    char *key[VCTX_MAX_KEYS];
    char *value[VCTX_MAX_KEYS];
};
struct mta_vsession {
    accept_construct ac;
    validate_context vc;
    struct vs_dict dict[2];             /* vc.env[VCTX_CONN], vc.env[VCTX_MESS] */
    char note[256];                     /* validate_context_set_code's text */
};
void vs_init(struct mta_vsession *v, int fd, uint32_t peer, uint16_t peer_port, mta_usec_t now);
void vs_message_reset(struct mta_vsession *v);
void vs_free(struct mta_vsession *v);
int vs_refusal(struct mta_vsession *v, const char *dflt, char *reply, size_t size);

/* smtp_client.c */
struct mta_conn *smtp_conn_create(struct mta *m, struct mta_domain *d, int slot,
                                  const struct mx_host *h, int addr_index);
void smtp_conn_start(struct mta_conn *c, int fd, connection_finish_cb finish,
                     connection_timeout_cb timeout, void *user_data);
void smtp_conn_abort_all(struct mta *m);
/* smtp_client.c: fd is an outbound connection's, still open. */
int smtp_client_has_fd(const struct mta *m, int fd);
/* mta.c: fd is an open simulated connection of the core, in or out (what
 * MQ_IOWatch can observe). */
int mta_fd_is_conn(struct mta *m, int fd);
/* Give active messages of (d, slot) to its idle sessions; returns how many woke. */
int smtp_conn_wake_idle(struct mta_domain *d, int slot);
connection_handle *smtp_conn_handle(struct mta_conn *c);
void smtp_conn_destroy(struct mta_conn *c);
void smtp_conn_tcp_event(void *arg, int fd, enum mta_tcp_event ev, const char *data,
                         size_t len, int err);
void smtp_client_finish_cb(connection_handle *ch, int err, void *user_data);
void smtp_client_timeout_cb(connection_handle *ch, void *user_data);

#endif
