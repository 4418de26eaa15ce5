/*
 * remote_internal - what the two files of the scripted remote share
 *
 * DESCRIPTION
 *   Not an interface: only remote.c and remote_smtp.c include it.  The
 *   remote (struct sim_remote), its sessions (struct sim_session) and
 *   their reply queue (struct sim_reply), the bounds, and the functions
 *   one file defines and the other calls.  The declarations have hidden
 *   visibility, so the executable does not export them to plugins.
 */
#ifndef MTASIM_SIM_REMOTE_INTERNAL_H
#define MTASIM_SIM_REMOTE_INTERNAL_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "remote.h"
#include "simtls.h"

#define SIM_REMOTE_MAX_LINE 4096
#define SIM_REMOTE_MAX_BODY ((size_t) 64 << 20)
#define SIM_REMOTE_MAX_REPLIES 1024
#define SIM_REMOTE_MAX_FROM 512
#define SIM_REMOTE_MAX_MSGID 998
#define SIM_REMOTE_MAX_NAME 256
#define SIM_REMOTE_MAX_ATTEMPT_KEYS (16L << 20)    /* distinct (sender, recipient) pairs */
#define SIM_REMOTE_PURPOSE_MAX 64

enum session_state { S_GREETING, S_COMMAND, S_REJECTED, S_DATA, S_BDAT, S_CLOSING };

enum reply_phase { R_WAITING, R_TIMING, R_READY };

/* Replies this short are copied into the reply itself. */
#define SIM_REPLY_INLINE 96

/* One reply on its way out.  Replies are recycled through the remote's
 * spare list: a large run queues one per command. */
struct sim_reply {
    struct sim_reply *next;
    sim_usec delay;
    enum reply_phase phase;
    int close_after;            /* QUIT reply or 421: close once written */
    enum scn_action action;     /* REPLY (bytes), or RESET DROP CLOSE instead */
    const char *bytes;          /* the remote's prepared wire text, small[] or owned */
    size_t len;
    char *owned;                /* a long transient reply's copy, else NULL */
    char small[SIM_REPLY_INLINE];
};

/* A reply's wire text prepared once per remote: lines joined with CRLF. */
struct wire_text {
    char *bytes;
    size_t len;
};

struct sim_session {
    struct sim_remote *remote;
    struct sim_session *prev, *next;    /* the remote's live list */
    sim_ep *ep;
    int number;                         /* 1, 2, ... per remote */
    enum session_state state;
    /* line assembly (the buffer itself is the last member) */
    size_t line_len;
    int line_overflow;                  /* command too long: skipping to LF */
    int line_continued;                 /* DATA: this line continues a flushed chunk */
    int last_was_cr;                    /* the byte before this one was CR */
    int bare_lf_reported;
    /* transaction */
    int has_mail;
    char *mail_from;                    /* kept only when something reads it */
    long rcpts;                         /* RCPTs accepted in this transaction */
    long txn_rcpts;                     /* RCPT commands in this transaction, this one included */
    char *body;
    size_t body_len, body_cap;
    int body_overflow;
    /* BDAT (RFC 3030): raw octets still to read for the current chunk */
    size_t bdat_left;
    int bdat_last;
    const char *bdat_refusal;           /* the reply once the chunk is read, NULL if taken */
    /* replies */
    struct sim_reply *rq_head, *rq_tail;
    size_t rq_len;
    sim_event_id reply_timer;
    /* script conditions */
    long nth[SCN_CMD__COUNT];           /* commands of each kind received so far */
    long attempt;                       /* this transaction's; 0 = no RCPT yet */
    const char *rcpt_addr;              /* RCPT being answered (valid during the choice) */
    /* faults and closing */
    unsigned long long bytes_in;        /* received from the client */
    unsigned long long fault_bytes;     /* act once this many arrived; 0 = never */
    enum scn_action fault_bytes_action;
    sim_event_id fault_timer;
    enum scn_action fault_timer_action;
    mta_usec_t fault_bytes_for, fault_timer_for;    /* a stall's length; 0 = for ever */
    sim_event_id stall_timer;           /* a stall ends: read again */
    int stalled;                        /* reads nothing (stall) */
    char *held;                         /* read before the stall, not yet processed */
    size_t held_len;
    sim_event_id close_timer;           /* slow close: the FIN is due */
    int ep_gone;                        /* reset: the endpoint is released already */
    struct simtls *tls;                 /* after a 220 to STARTTLS; else NULL */
    /* A line split over segments, SIM_REMOTE_MAX_LINE bytes allocated when
     * the first one comes (most lines arrive whole and are parsed where
     * they are): a run with 100k sessions open would hold 400 MB of line
     * buffers.  Only line[0 .. line_len) is ever read. */
    char *line;
};

/* Transactions seen per (MAIL FROM, first RCPT TO): the attempt counter.
 * Kept in an open-addressing table (a remote may see millions of pairs in
 * a benchmark), and only when something reads it: a "when attempt"
 * condition, or the trace. */
struct attempt_key {
    char *key;              /* FROM '\0' RCPT, NULL = empty slot */
    size_t keylen;
    uint64_t hash;
    long count;
};

struct sim_remote {
    struct sim_sched *sched;
    struct sim_net *net;
    const struct scn_remote *script;
    sim_trace_fn trace;
    void *trace_arg;
    char name[SIM_REMOTE_MAX_NAME];     /* for the default replies */
    char addr[MTA_IP_TEXT];             /* dotted quad, or IPv6 text (RFC 5952) */
    int sessions;
    struct sim_session *first, *last;
    size_t nlive;
    struct sim_prng *reply_rng;         /* one per scripted line, used if it has a probability */
    struct attempt_key *attempts;       /* the table: attempts_cap slots, a power of two */
    size_t nattempts, attempts_cap;
    int counts_attempts;                /* the script or the trace reads attempts */
    int reads_rcpt;                     /* a "when rcpt" condition reads the address */
    struct wire_text default_wire[SCN_CMD__COUNT];  /* default replies with the name in */
    struct wire_text ehlo_starttls_wire;    /* the default EHLO offering STARTTLS ("tls") */
    struct wire_text *reply_wire;       /* per scripted line: its wire text, or none */
    regex_t *cond_re;                   /* per scripted line: SCN_MAX_CONDS compiled "when rcpt" */
    struct sim_reply *spare;            /* recycled replies */
};

/* A record under construction, with room for its number strings. */
struct remote_tb {
    int off;                    /* no trace sink: build nothing */
    struct mta_trace_rec rec;
    char nums[MTA_TRACE_MAX_FIELDS][24];
};

#pragma GCC visibility push(hidden)

/* remote_die - report a broken contract and stop loudly (remote.c) */
void remote_die(const char *fn, const char *what) __attribute__((noreturn));

/* remote.c: trace records, the reply queue */
void tb_str(struct remote_tb *tb, const char *key, const char *str, size_t len);
void tb_num(struct remote_tb *tb, const char *key, int64_t num);
void tb_begin(struct remote_tb *tb, const struct sim_session *s, const char *name);
void tb_emit(struct remote_tb *tb, const struct sim_remote *r);
void session_queue(struct sim_session *s, const char *bytes, size_t len,
                   sim_usec delay, int is_quit, int borrowed);
void session_queue_action(struct sim_session *s, enum scn_action action, sim_usec delay);
void session_queue_str(struct sim_session *s, const char *reply);

/* remote_smtp.c: the script, input, prepared replies */
int cond_holds(const struct scn_cond *c, const regex_t *re, const struct sim_session *s,
               enum scn_cmd cmd);
int session_answer(struct sim_session *s, enum scn_cmd cmd);
int script_uses_attempts(const struct scn_remote *script);
/* session_feed - command or data bytes; from_tls: they came inside TLS */
void session_feed(struct sim_session *s, const char *data, size_t len, int from_tls);
void remote_seed_replies(struct sim_remote *r, uint64_t seed);
void remote_prepare_replies(struct sim_remote *r);
void remote_free_replies(struct sim_remote *r);

#pragma GCC visibility pop

#endif
