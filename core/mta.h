/*
 * mta - the MTA core as a library
 *
 * SYNOPSIS
 *   struct mta_config cfg;  mta_config_defaults(&cfg);
 *   mta_config_set(&cfg, "retry_interval", "300s", err, sizeof err);
 *   struct mta *m = mta_create(env, &cfg);
 *   int slot = mta_add_binding(m, "default", src_addr, "mta.example");
 *   mta_inject(m, id, from, rcpts, n, body, len, slot);
 *   ... the environment's event loop runs ...
 *   mta_shutdown(m);             closes what is open, cancels timers
 *   mta_foreach_message(m, fn, arg);
 *   mta_destroy(m);
 *
 * DESCRIPTION
 *   One core runs at a time in a process (the hook API is global).  The core
 *   talks to the world only through its struct mta_env.  Everything it
 *   decides (queueing, retries, MX choice, SMTP) is a function of its
 *   configuration, its inputs and the environment's answers, so the same
 *   inputs at the same virtual times give the same trace.
 */
#ifndef MTASIM_MTA_H
#define MTASIM_MTA_H

#include <stddef.h>
#include <stdint.h>

#include "mtasim_env.h"
#include "domain.h"
#include "message.h"

/* A rate limit "N/DURATION": at most count events per sliding window per. */
struct mta_rate {
    int count;                           /* 0 = unlimited */
    mta_usec_t per;
};

/* An IPv4 range, host byte order. */
struct mta_cidr {
    uint32_t addr, mask;
};
#define MTA_MAX_PROHIBITED 16
#define MTA_MAX_TLS_DOMAINS 32
#define MTA_TLS_DOMAIN_MAX 256

/* Configuration, with the documented defaults (see mta_config_defaults). */
struct mta_config {
    int max_outbound_connections;        /* per domain: 32 */
    mta_usec_t retry_interval;           /* first retry: 1200 s, doubling */
    mta_usec_t max_retry_interval;       /* cap: 43200 s */
    mta_usec_t message_expiration;       /* 86400 s */
    int max_retries;                     /* 0 = "auto": expiration decides */
    int mx_failures_to_delay;            /* 50 */
    mta_usec_t host_failure_retry;       /* 120 s */
    mta_usec_t connect_timeout;          /* 300 s */
    mta_usec_t idle_timeout;             /* 5 s */
    int max_deliveries_per_connection;   /* 0 = unlimited */
    mta_usec_t delayed_queue_scan_interval; /* 15 s */
    mta_usec_t dns_cache_ttl_max;        /* cap on a cached answer's TTL: 86400 s */
    /* SMTP client timeouts per phase (Postfix's documented values). */
    mta_usec_t timeout_banner;           /* 300 s */
    mta_usec_t timeout_ehlo;             /* 300 s */
    mta_usec_t timeout_mail;             /* 300 s */
    mta_usec_t timeout_rcpt;             /* 300 s */
    mta_usec_t timeout_data;             /* 120 s: DATA command */
    mta_usec_t timeout_data_transfer;    /* 180 s */
    mta_usec_t timeout_dot;              /* 600 s: reply to the final dot */
    mta_usec_t timeout_quit;             /* 300 s */
    int smtp_port;                       /* 25 */
    int max_connections_per_binding;     /* all domains together; 0 = unlimited */
    int max_connections_per_host;        /* per remote address, all domains; 0 = unlimited */
    struct mta_rate throttle_connections;   /* per domain: connections opened */
    struct mta_rate throttle_messages;      /* per domain: transactions started */
    int nprohibited;                     /* addresses never connected to: 127.0.0.0/8 */
    struct mta_cidr prohibited[MTA_MAX_PROHIBITED];
    /* Recipient limits (docs/queue.md "Recipient limits"). */
    int max_recipients_per_transaction;  /* RCPTs per MAIL: 0 = unlimited (Postfix's
                                          * smtp_destination_recipient_limit) */
    int rcpt_552;                        /* MTA_552_TRANSIENT (RFC 5321 4.5.3.1.10, default)
                                          * or MTA_552_PERMANENT (Postfix 3.7) */
    int recipient_limit_leftovers;       /* MTA_LEFTOVERS_RESEND (default) or _DEFER (Postfix) */
    int dsn_generation;                  /* 1: bounces are sent as RFC 3464 DSNs (default) */
    /* The client's TLS policy (docs/tls.md): a default level and per-domain ones. */
    int tls_policy;                      /* MTA_TLS_* (mta_tls.h): none */
    int tls_required_failure;            /* MTA_TLS_FAIL_DEFER (default) or _BOUNCE */
    int ntls_domains;
    struct mta_tls_domain {
        char domain[MTA_TLS_DOMAIN_MAX];
        int level;
    } tls_domains[MTA_MAX_TLS_DOMAINS];
};

/* Values of the choice options above, in their table order (config.c). */
enum { MTA_552_TRANSIENT, MTA_552_PERMANENT };
enum { MTA_LEFTOVERS_RESEND, MTA_LEFTOVERS_DEFER };
enum { MTA_TLS_FAIL_DEFER, MTA_TLS_FAIL_BOUNCE };
/* mta_config_tls_level - the TLS policy level for domain (mta_tls.h) */
int mta_config_tls_level(const struct mta_config *cfg, const char *domain);

/* The k-th DSN the core makes (k = 1, 2, ...) is message MTA_DSN_ID_BASE + k. */
#define MTA_DSN_ID_BASE 1000000000UL

void mta_config_defaults(struct mta_config *cfg);
/*
 * mta_config_set - set one option from its scenario spelling
 *
 * key is case-insensitive (retry_interval, Retry_Interval).  Durations take
 * a unit (us, ms, s, m, h, d); a bare number means seconds.  Returns 0, or
 * -1 with a one-line reason in err.
 */
int mta_config_set(struct mta_config *cfg, const char *key, const char *value,
                   char *err, size_t errsz);
/* Each known key, NULL-terminated (for docs and "did you mean"). */
extern const char *const mta_config_keys[];

/* Levenshtein distance of two words, case-insensitive, when it is at most
 * max; max + 1 when it is greater or either word is over 64 characters.
 * For "did you mean" hints, which want only near misses. */
int mta_edit_distance(const char *a, const char *b, int max);

/*
 * The longest duration anything accepts: 100 years of 365 days (36500d).
 * Virtual time starts at an epoch no later than 9999-12-31 (2.5e17 us), and
 * one duration is at most 3.2e15 us, so the epoch plus any sum of up to
 * 2,800 durations still fits in mta_usec_t (9.2e18): a timer, a reply
 * delay or a deadline computed from parsed values cannot overflow.
 */
#define MTA_DURATION_MAX (36500LL * 86400 * 1000000)
/* mta_parse_duration()'s answer for a well-formed duration over the maximum */
#define MTA_DURATION_TOO_LONG (-2)

/* Parse "40ms", "5m", "300" (seconds) into microseconds; -1 when it is no
 * duration, MTA_DURATION_TOO_LONG when it is over MTA_DURATION_MAX. */
mta_usec_t mta_parse_duration(const char *s);

struct mta;

struct mta *mta_create(struct mta_env *env, const struct mta_config *cfg);
/* Add a binding; "default" (slot 0) exists from the start and may be
 * redefined.  Returns the slot, or -1 if the table is full. */
int mta_add_binding(struct mta *m, const char *name, mta_ip source_addr,
                    const char *ehlo_name);
int mta_binding_slot(const struct mta *m, const char *name);
/* What a message asks of its transfer; zero/NULL fields ask nothing. */
struct mta_inject_opts {
    const char *notify;     /* DSN (RFC 3461): "SUCCESS,FAILURE,DELAY" or "NEVER" */
    const char *ret;        /* DSN: "FULL" or "HDRS" */
    const char *envid;      /* DSN: the envelope id */
    int chunking;           /* send with BDAT when the server offers CHUNKING (RFC 3030) */
    long deliver_by;        /* DELIVERBY (RFC 2852): seconds after injection; 0 = none */
};

/*
 * The core's address limits, RFC 5321 4.5.3.1.1-3: a local part of at most
 * 64 octets, a domain of at most 255, a path ("<" address ">") of at most
 * 256.  mta_address_check() returns NULL for an address (without its angle
 * brackets) within them, else a few words saying which is exceeded; a
 * recipient (need_domain) must also have a non-empty local part and domain.
 * The scenario parser applies the same check, so what it accepts the core
 * queues.
 */
#define MTA_LOCAL_PART_MAX 64
#define MTA_DOMAIN_MAX 255
#define MTA_PATH_MAX 256
const char *mta_address_check(const char *addr, int need_domain);

/* Inject a message now.  rcpts are addresses without angle brackets; opts
 * may be NULL; a recipient given twice is queued once (Postfix's cleanup(8)
 * eliminates duplicate envelope recipients).  Returns 0, or -1 if an
 * address fails mta_address_check(). */
int mta_inject(struct mta *m, unsigned long id, const char *from,
               const char *const *rcpts, int nrcpts,
               const char *body, size_t body_len, int binding_slot,
               const struct mta_inject_opts *opts);
/* Inbound SMTP (smtp_server.c, docs/inbound.md).  Limits of the server;
 * a zero field takes the default shown. */
struct mta_listen_opts {
    int max_recipients;     /* per transaction: 100 (RFC 5321 4.5.3.1.8) */
    long max_size;          /* bytes of message data: 10485760 */
    int max_errors;         /* client errors before 421: 10 */
    mta_usec_t timeout;     /* waiting for a command or data: 300 s (RFC 5321 4.5.3.2.7) */
    int require_auth;       /* MAIL needs a successful AUTH first */
};
/* Listen on addr:port through env->tcp_listen.  0, or a negative errno. */
int mta_listen(struct mta *m, uint32_t addr, uint16_t port, const struct mta_listen_opts *opts);
/* A user AUTH PLAIN / LOGIN accepts (plugins may decide otherwise). */
int mta_add_user(struct mta *m, const char *name, const char *password);
/* Called with each message the server accepted, just before it is
 * injected as message id (1000 + n for the n-th, from 1). */
typedef void (*mta_inbound_fn)(void *arg, unsigned long id, const char *body, size_t len);
void mta_on_inbound_message(struct mta *m, mta_inbound_fn fn, void *arg);
/* The first misbehaviour of a MailerQ-style plugin (one line), or NULL;
 * *at (may be NULL) gets its virtual time. */
const char *mta_plugin_fault(const struct mta *m, mta_usec_t *at);

/* Close every open connection and cancel every timer: the run is over. */
void mta_shutdown(struct mta *m);
void mta_destroy(struct mta *m);

/* Every message in injection order (then by domain in first-seen order). */
void mta_foreach_message(const struct mta *m,
                         void (*fn)(void *arg, const message *msg), void *arg);

/* Hand each finished message that nothing refers to any more (done, no
 * recipient pending, on no connection) to fn, in creation order, then free
 * it; the others keep their order.  A caller that has folded what it needs
 * from messages (a long run's summaries) keeps memory to what is in flight.
 * Linear in the messages held; returns how many are held afterwards. */
size_t mta_release_done(struct mta *m, void (*fn)(void *arg, const message *msg), void *arg);

/* Where a message stands, for invariant checks and results. */
struct mta_msg_info {
    const char *where;          /* "new", "active", "delayed", "inflight", "done" */
    int held;                   /* the core still holds it: active, delayed or in flight */
    mta_usec_t done_at;         /* when its last recipient became final; -1 if not */
    mta_usec_t next_attempt;    /* for a delayed message */
};
void mta_message_info(const message *msg, struct mta_msg_info *info);

/* Counters for invariant checks and summaries. */
struct mta_stats {
    unsigned long connections_opened;
    unsigned long connections_closed;
    unsigned long connections_established;
    unsigned long inc_outbound;          /* inc_outbound_connections calls */
    unsigned long dec_outbound;
    int max_concurrent_per_domain;       /* the highest seen */
    unsigned long duplicate_outcomes;    /* a final recipient given another outcome */
    unsigned long rcpts_delivered;       /* recipients delivered */
    unsigned long rcpts_failed;          /* recipients bounced or expired */
    unsigned long transactions;          /* MAIL FROM transactions started */
    unsigned long dsns;                  /* delivery status notifications made */
};
void mta_get_stats(const struct mta *m, struct mta_stats *st);

#endif
