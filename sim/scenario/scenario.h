/*
 * scenario - the parsed form of a .scn file: a world and its expectations
 *
 * SYNOPSIS
 *   #include "scenario.h"
 *
 *   struct scn_scenario *sc = ...;     (from scn_parse_file(), sim/lang/parse.h)
 *   ... build a world from it, check its expectations ...
 *   scn_free(sc);
 *
 * DESCRIPTION
 *   The data model of the scenario language (docs/scenario-language.md):
 *   what the parser (sim/lang/) produces, what the world (sim/world/) is
 *   built from and what expectations (sim/lang/expect.c) are checked
 *   against.  It sits below both: this header includes nothing of the
 *   simulator, only the core's types (mta.h).
 *
 *   Every element keeps the position it came from (struct scn_pos) so that
 *   run-time diagnostics can point at the line too.
 *
 *   All strings and arrays belong to the scenario and are freed by
 *   scn_free().  scn_op_str() and scn_fate_str() give an operator and a
 *   message fate as a scenario writes them.
 */
#ifndef MTASIM_SIM_SCENARIO_H
#define MTASIM_SIM_SCENARIO_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "mta.h"

/* Bounds of the fixed arrays below (the parser enforces them). */
#define SCN_MAX_CONDS 4
#define SCN_MAX_MATCHERS 16
#define SCN_MAX_REPLY_LINES 64

struct scn_pos {
    const char *file;       /* owned by the scenario (interned) */
    int line, col;          /* 1-based */
};

struct scn_binding {
    char *name;
    mta_ip addr;            /* IPv4 or IPv6: the family picks A or AAAA lookups */
    char *ehlo;             /* NULL = "mtasim.test" */
    int unavailable;        /* the host does not have this address: connects fail (EADDRNOTAVAIL) */
    struct scn_pos pos;
};

/*
 * The set of query numbers a "when query OP N [and query OP N]..." clause
 * selects: [lo, hi] without the values of NE conditions.  No clause: every
 * query, [1, SCN_QUERY_MAX].  scn_qset_of() computes it from the parsed
 * conditions; scn_qset_holds() and scn_qset_overlap() read it.
 */
#define SCN_QUERY_MAX ((unsigned long)LONG_MAX)
struct scn_qset {
    unsigned long lo, hi;       /* lo > hi: no query at all */
    int nskip;
    unsigned long skip[SCN_MAX_CONDS];
};

/* dns NAME MX PREF HOST | A ADDR | CNAME TARGET | NXDOMAIN | SERVFAIL | TIMEOUT
 *   | NODATA | TYPE FAILURE  [ttl N] [from DUR] [until DUR] [when query OP N ...] */
enum scn_dns_kind { SCN_DNS_MX, SCN_DNS_A, SCN_DNS_CNAME, SCN_DNS_NXDOMAIN,
                    SCN_DNS_SERVFAIL, SCN_DNS_TIMEOUT,
                    SCN_DNS_NODATA,     /* dns NAME NODATA: exists, no records */
                    SCN_DNS_LATENCY,    /* dns NAME latency DUR: per-name answer time */
                    SCN_DNS_AAAA };     /* dns NAME AAAA ADDR6 (RFC 3596) */
struct scn_dns {
    char *name;
    enum scn_dns_kind kind;
    /* A failure (NXDOMAIN SERVFAIL TIMEOUT NODATA) for queries of one
     * record type only ("dns NAME MX SERVFAIL"): has_qtype and the type's
     * record kind (SCN_DNS_MX, SCN_DNS_A, ...); else it answers every type. */
    int has_qtype;
    enum scn_dns_kind qtype;
    uint16_t pref;
    char *target;           /* MX host ("." = null MX), CNAME target */
    uint32_t addr;          /* A, host byte order */
    uint8_t addr6[16];      /* AAAA, network byte order */
    uint32_t ttl;           /* default 3600 */
    mta_usec_t latency;     /* SCN_DNS_LATENCY */
    /* When the line is in the zone: queries asked at epoch + [from, until)
     * (until -1 = for ever) whose number for (name, type) is in queries. */
    mta_usec_t from, until;
    struct scn_qset queries;
    struct scn_pos pos;
};

/* SMTP commands a remote replies to. SCN_CMD_GREET is the banner,
 * SCN_CMD_DOT the reply to the end of the data. */
enum scn_cmd { SCN_CMD_GREET, SCN_CMD_EHLO, SCN_CMD_HELO, SCN_CMD_MAIL, SCN_CMD_RCPT,
               SCN_CMD_DATA, SCN_CMD_DOT, SCN_CMD_RSET, SCN_CMD_NOOP, SCN_CMD_QUIT,
               SCN_CMD_UNKNOWN, SCN_CMD_STARTTLS, SCN_CMD__COUNT };
extern const char *const scn_cmd_names[SCN_CMD__COUNT];   /* "greet", "ehlo", ... */

enum scn_op { SCN_OP_EQ, SCN_OP_NE, SCN_OP_LT, SCN_OP_LE, SCN_OP_GT, SCN_OP_GE, SCN_OP_RE };

/*
 * when session OP N   the N-th connection this remote accepted, from 1
 * when attempt OP N   the N-th transaction this remote saw with the same
 *                     MAIL FROM and the same first RCPT TO, over all its
 *                     sessions; fixed at the transaction's first RCPT
 *                     (so: rcpt, data and dot replies only)
 * when nth OP N       the N-th command of this kind in the session
 *                     ("after rcpt 2 reset" is "rcpt reset when nth = 2")
 * when rcpt ~ REGEX   the RCPT TO address (no brackets) matches (rcpt only)
 * when transaction OP N  the N-th MAIL command of this session: the
 *                     transaction it opens and the RCPT, DATA and dot
 *                     replies in it (mail, rcpt, data, dot)
 * when rcpt OP N      the N-th RCPT command of this transaction (rcpt only):
 *                     a per-transaction recipient limit
 * when query OP N     (dns lines) the N-th query for the name and type
 */
enum scn_cond_kind { SCN_COND_SESSION, SCN_COND_ATTEMPT, SCN_COND_NTH, SCN_COND_RCPT,
                     SCN_COND_TRANSACTION,  /* the transaction's number in the session */
                     SCN_COND_RCPT_NUM,     /* the RCPT's number in its transaction */
                     SCN_COND_QUERY };      /* dns lines: the query's number for (name, type) */
struct scn_cond {
    enum scn_cond_kind kind;
    enum scn_op op;         /* EQ NE LT LE GT GE; RE for SCN_COND_RCPT */
    long value;
    char *regex;            /* SCN_COND_RCPT: POSIX extended, checked by the parser */
};

/* What a scripted line does instead of (or as) a reply. */
enum scn_action {
    SCN_ACTION_REPLY,       /* send the reply lines */
    SCN_ACTION_RAW,         /* send lines[0] byte for byte: no CRLF added, no checks */
    SCN_ACTION_RESET,       /* no reply: reset the connection (RST) */
    SCN_ACTION_DROP,        /* no reply: silent drop, nothing arrives any more */
    SCN_ACTION_CLOSE,       /* no reply: close the connection (FIN) */
    SCN_ACTION_STALL,       /* (a fault) stop reading: the receive window closes */
};
#define SCN_PPM_ALWAYS 1000000u     /* probability 1, in parts per million */

/*
 * One scripted reply:   CMD CODE[-| ]TEXT [delay DUR] [when COND [and COND]]
 * Consecutive lines for the same command whose code is followed by '-'
 * build one multi-line reply, ended by a line whose code is followed by a
 * space (exactly as on the wire).
 */
struct scn_reply {
    enum scn_cmd cmd;
    int code;               /* 100..599; the code of the last line */
    int nlines;             /* 1 .. SCN_MAX_REPLY_LINES */
    char **lines;           /* each full wire line without CRLF: "250-PIPELINING" */
    mta_usec_t delay;       /* wait this long before sending it; 0 = at once */
    int nconds;
    struct scn_cond conds[SCN_MAX_CONDS];   /* all must hold */
    enum scn_action action;
    size_t raw_len;         /* SCN_ACTION_RAW: bytes in lines[0] */
    int has_ppm;            /* a "probability P" clause was given ... */
    uint32_t ppm;           /* ... P in parts per million */
    struct scn_pos pos;
};

/* connect MODE probability P: one random connect outcome */
struct scn_connect_choice {
    int mode;               /* enum scn_connect_mode */
    uint32_t ppm;
};
#define SCN_MAX_CONNECT_CHOICES 8

/* reset|drop|stall at DUR | after N bytes [for DUR] [when session OP N]: a
 * fault of the remote's network stack (or, stall, its reading) on one
 * connection. */
enum scn_fault_trigger { SCN_FAULT_AT, SCN_FAULT_AFTER_BYTES };
struct scn_fault {
    enum scn_action action;             /* RESET, DROP or STALL */
    mta_usec_t stall_for;               /* STALL: reads again after this; 0 = never */
    enum scn_fault_trigger trigger;
    mta_usec_t at;                      /* SCN_FAULT_AT: after the accept */
    unsigned long long bytes;           /* SCN_FAULT_AFTER_BYTES: received from the client */
    int nconds;
    struct scn_cond conds[SCN_MAX_CONDS];   /* session conditions only */
    struct scn_pos pos;
};
#define SCN_MAX_FAULTS 64

/* network link SRC DST [latency D] [jitter D] [bandwidth B] [segment N] [loss P] */
struct scn_link {
    mta_ip src, dst;                    /* of one family */
    mta_usec_t latency, jitter;         /* -1 = the remote's */
    uint64_t bandwidth;                 /* UINT64_MAX = the remote's */
    long segment;                       /* -1 = the remote's */
    long loss_ppm;                      /* -1 = the remote's */
    struct scn_pos pos;
};

/* remote ADDR [name HOST]  followed by an indented block */
enum scn_connect_mode { SCN_CONNECT_ACCEPT, SCN_CONNECT_REFUSE, SCN_CONNECT_TIMEOUT,
                        SCN_CONNECT_UNREACHABLE, SCN_CONNECT_NO_ROUTE };
/* What a remote does with the TLS handshake after its 220 to STARTTLS
 * (docs/tls.md): complete it, or fail it in one of the ways real servers do. */
enum scn_tls_outcome { SCN_TLS_OK, SCN_TLS_HANDSHAKE_FAILURE, SCN_TLS_PROTOCOL_VERSION,
                       SCN_TLS_RESET, SCN_TLS_CLOSE };
#define SCN_TLS_NAME_MAX 256
#define SCN_MAX_TLS 16

/* tls OUTCOME [cert NAME] [expired] [untrusted] [when session OP N [and ...]] */
struct scn_tls {
    enum scn_tls_outcome outcome;
    char cert[SCN_TLS_NAME_MAX];        /* the certificate's name; "" = the remote's name */
    int expired;                        /* its notAfter is before the handshake */
    int untrusted;                      /* self-signed: no trusted chain */
    int nconds;
    struct scn_cond conds[SCN_MAX_CONDS];   /* session conditions only */
    struct scn_pos pos;
};

struct scn_remote {
    mta_ip addr;            /* IPv4 or IPv6 */
    /* "tls" lines: with any, STARTTLS is offered by default and answered
     * 220; a session's handshake is the first line whose conditions hold
     * (none: "tls ok") */
    int ntls;
    struct scn_tls *tls;
    char *name;             /* for the default banner; NULL = the address */
    enum scn_connect_mode connect;
    mta_usec_t latency;     /* one-way; default 1ms */
    mta_usec_t jitter;      /* extra per segment, uniform in [0, jitter]; default 0 */
    uint64_t bandwidth;     /* bytes per second; 0 = unlimited */
    long segment;           /* the path's MSS in bytes; 0 = 1460 */
    uint32_t loss_ppm;      /* segments lost, per million */
    long sndbuf, rcvbuf;    /* its socket buffers in bytes; 0 = Linux's defaults */
    int backlog;            /* concurrent connections; 0 = unlimited */
    int backlog_refuse;     /* beyond the backlog: 1 RST, 0 no answer */
    int flush_together;     /* replies ready together go out in one write */
    mta_usec_t close_delay; /* slow close: its FIN this long after it decided to close */
    int nchoices;
    struct scn_connect_choice choices[SCN_MAX_CONNECT_CHOICES];
    int nfaults;
    struct scn_fault *faults;
    int nreplies;
    struct scn_reply *replies;  /* in file order; the first that matches wins */
    struct scn_pos pos;
};

/* inject ID from <ADDR> to <ADDR>[,<ADDR>...] [at DUR] [binding NAME] [body "TEXT" | body-file PATH | size N] */
/* A recipient's "{LO..HI}": the bytes [at, end) of its text stand for a
 * number from lo to hi (inject_range.c); hi < lo: the recipient has none. */
struct scn_rcpt_range {
    size_t at, end;
    unsigned long lo, hi;
};

struct scn_inject {
    unsigned long id;       /* >= 1, unique; a range line: its first id */
    /* "inject FIRST..LAST": count = LAST - FIRST + 1 messages, made as
     * they fall due (inject_range.c); a line written out: 1. */
    unsigned long count;
    mta_usec_t spread;      /* "spread DUR": message k at at + spread * k / count */
    struct scn_rcpt_range *ranges;  /* per recipient, or NULL: no "{LO..HI}" */
    char *from;             /* without brackets; "" = null sender */
    int nrcpts;
    char **rcpts;           /* without brackets */
    mta_usec_t at;          /* offset from the epoch */
    char *binding;          /* NULL = default */
    char *body;             /* NULL = synthesized */
    size_t body_len;
    long size;              /* synthesized body size in bytes, -1 = default */
    char *dsn_notify;       /* notify LIST (upper case), NULL = not asked */
    char *dsn_ret;          /* ret FULL|HDRS, NULL = not asked */
    char *dsn_envid;        /* envid TEXT, NULL = none */
    int chunking;           /* "chunking": BDAT when the server offers CHUNKING */
    mta_usec_t deliver_by;  /* "deliver-by DUR" (RFC 2852), whole seconds; 0 = none */
    struct scn_pos pos;
};

/* Message k of in (0 <= k < in->count): when it comes, from the epoch, and
 * its recipient i written into buf (the length it needs is returned). */
mta_usec_t scn_inject_time(const struct scn_inject *in, unsigned long k);
size_t scn_inject_rcpt(const struct scn_inject *in, int i, unsigned long k, char *buf, size_t cap);

/*
 * An argument matcher:  KEY OP VALUE  with OP one of = != < <= > >= ~
 * VALUE is a number, a word, or a "quoted string"; for ~ a POSIX extended
 * regular expression (checked at parse time).
 */
struct scn_matcher {
    char *key;
    enum scn_op op;
    char *value;            /* as written, quotes removed */
    int is_num;             /* value is an integer */
    int64_t num;
    int is_time;            /* key "at": num is a duration from the epoch (us) */
    struct scn_pos pos;
};

/* One expected trace event: its kind ("hook" in hook blocks), its name
 * and matchers on its fields. */
struct scn_pattern {
    char *kind;
    char *name;
    int nmatchers;
    struct scn_matcher matchers[SCN_MAX_MATCHERS];
    struct scn_pos pos;
};

enum scn_expect_kind {
    SCN_EXPECT_HOOKS_IN_ORDER,  /* expect hooks in order: a subsequence, gaps allowed */
    SCN_EXPECT_MESSAGE,         /* expect message ID FATE [within DUR] */
    SCN_EXPECT_TRACE_IN_ORDER,  /* expect trace in order: KIND NAME matchers, any record kind */
    SCN_EXPECT_INTACT,          /* expect message ID intact: a remote received the body as injected */
    SCN_EXPECT_HOOKS_EXACTLY,   /* expect hooks exactly: the hooks named, exactly this sequence */
    SCN_EXPECT_TRACE_EXACTLY,   /* expect trace exactly: the same over KIND NAME patterns */
    SCN_EXPECT_NEVER,           /* expect never HOOK ... | expect never trace KIND NAME ... */
    SCN_EXPECT_COUNT,           /* expect count [trace KIND] NAME ... OP N */
    SCN_EXPECT_CLIENT,          /* an "expect CODE" line of a client block */
    SCN_EXPECT_DSN,             /* expect [no] dsn for message ID [status S] [rcpt ADDR] */
};

/* "for domain D | for message N | for conn N" after a block expectation,
 * or at the end of an "expect never" or "expect count" pattern:
 * only records whose field key (domain, msg, conn) displays value count. */
struct scn_scope {
    char *key;              /* NULL = no scope; else "domain", "msg" or "conn" */
    char *value;
    struct scn_pos pos;
};

/* listen ADDR[:PORT] [max-recipients N] [max-size N] [max-errors N]
 * [timeout DUR] [require-auth]: the MTA's inbound SMTP server. */
struct scn_listen {
    int set;                /* a listen line was given */
    uint32_t addr;          /* default: the default binding's address */
    uint16_t port;          /* default 25 */
    struct mta_listen_opts opts;    /* zero fields: the core's defaults */
    struct scn_pos pos;
};

/* user NAME PASSWORD: what AUTH accepts */
struct scn_user {
    char *name, *password;
    struct scn_pos pos;
};

/* One step of a client script (docs/scenario-language.md "client"). */
enum scn_step_kind {
    SCN_STEP_SEND,          /* write bytes (a line with CRLF, raw bytes, a dot-stuffed body) */
    SCN_STEP_EXPECT,        /* wait for the next complete reply; code 0 = any */
    SCN_STEP_DELAY,         /* wait */
    SCN_STEP_DISCONNECT,    /* close (FIN) */
    SCN_STEP_RESET,         /* abort (RST) */
    SCN_STEP_TLS,           /* the TLS handshake after a 220 to STARTTLS (code 1: fail it) */
};
struct scn_step {
    enum scn_step_kind kind;
    char *bytes;            /* SEND */
    size_t len;
    int code;               /* EXPECT; TLS: 1 = fail the handshake */
    mta_usec_t delay;       /* DELAY */
    struct scn_pos pos;
};

/* client ADDR [at DUR] followed by an indented script */
struct scn_client {
    uint32_t addr;
    mta_usec_t at;          /* when it connects, from the epoch */
    int nsteps;
    struct scn_step *steps;
    struct scn_pos pos;
};

/* plugin PATH[:ARGS] */
struct scn_plugin {
    char *name;             /* PATH as written */
    char *file;             /* where it was found (relative to the scenario, or searched) */
    char *args;             /* after the first ':'; "" if none */
    struct scn_pos pos;     /* of the PATH token */
};
/* The record kinds "expect trace in order" accepts. */
extern const char *const scn_trace_kinds[];
/* PARTIAL: every recipient final, some delivered and some failed for good. */
enum scn_fate { SCN_FATE_DELIVERED, SCN_FATE_DEFERRED, SCN_FATE_BOUNCED, SCN_FATE_PARTIAL };

struct scn_expect {
    enum scn_expect_kind kind;
    struct scn_pos pos;
    /* HOOKS_IN_ORDER, TRACE_IN_ORDER, *_EXACTLY; NEVER and COUNT have one pattern */
    int npatterns;
    struct scn_pattern *patterns;
    struct scn_scope scope;     /* blocks only */
    /* COUNT: the number of matching records OP count_n */
    enum scn_op count_op;
    int64_t count_n;
    /* CLIENT: the client's number (from 1, file order) and the code wanted;
     * the step is the one at pos */
    int client_n;
    int want_code;
    /* MESSAGE, INTACT */
    unsigned long msg_id;
    enum scn_fate fate;
    mta_usec_t within;      /* -1 = any time; else by epoch + within */
    /* DSN: a delivery status notification about msg_id (docs/queue.md) */
    int dsn_none;           /* "expect no dsn": none may be made */
    char *dsn_status;       /* a reported recipient has this status; NULL = any */
    char *dsn_rcpt;         /* this recipient is reported; NULL = any */
    int always;             /* "expect always ...": holds under any faults (docs/explore.md) */
};

/* Something in the scenario that can never take effect (mtasim check and
 * run print these; they do not change the exit status). */
struct scn_warning {
    struct scn_pos pos;
    char *msg;
};

struct scn_scenario {
    char *name;             /* from "scenario NAME"; default: the file's base name */
    char *file;             /* the path given to scn_parse_file */
    uint64_t seed;          /* default 1 */
    int seed_set;           /* the file said "seed" */
    mta_usec_t epoch;       /* default 2020-01-01T00:00:00Z */
    mta_usec_t run_for;     /* "run for DUR"; -1 = until nothing is left to do */
    mta_usec_t dns_latency; /* "dns latency DUR", default 1ms */
    mta_usec_t dns_timeout; /* "dns timeout DUR", default 5s */
    mta_usec_t dns_jitter;  /* "dns jitter DUR", default 0 */
    int max_fds;            /* "network max_fds N": the MTA's descriptors; 0 = unlimited */
    long mta_sndbuf, mta_rcvbuf;    /* "network sndbuf|rcvbuf SIZE": the MTA's; 0 = default */
    int nlinks;     struct scn_link *links;
    struct mta_config config;   /* defaults plus "config KEY VALUE" lines */
    int nbindings;  struct scn_binding *bindings;
    int ndns;       struct scn_dns *dns;
    int nremotes;   struct scn_remote *remotes;
    int ninjects;   struct scn_inject *injects;
    int nexpects;   struct scn_expect *expects;
    int nfiles;     char **files;   /* interned file names (the scenario and its includes) */
    char *description;      /* "description TEXT"; NULL if none */
    int nplugins;   struct scn_plugin *plugins;     /* in file order */
    struct scn_listen listen;                       /* inbound SMTP; see listen.set */
    int nusers;     struct scn_user *users;
    int nclients;   struct scn_client *clients;     /* in file order */
    int nwarnings;  struct scn_warning *warnings;   /* in file order */
    int requires_faketime;  /* "requires faketime": plugin clocks must follow virtual time */
    int storm_count;        /* "liveness storm N/DUR": more than N connection attempts to */
    mta_usec_t storm_window;    /* one host within DUR without a transaction; 0 = off */
    struct scn_pos requires_pos;    /* of the word "faketime" */
};

void scn_free(struct scn_scenario *sc);
/* Release what n parsed conditions own (their regexes); for the parser's
 * error paths, scn_free() does it for a whole scenario. */
void scn_conds_free(struct scn_cond *conds, int n);
/* The query numbers n "when query" conditions select (other kinds are
 * ignored); whether a set holds number q; whether two sets share one. */
void scn_qset_of(const struct scn_cond *conds, int n, struct scn_qset *out);
/* The same for the conditions of one kind (session, nth, ...). */
void scn_qset_of_kind(const struct scn_cond *conds, int n, enum scn_cond_kind kind,
                      struct scn_qset *out);
int scn_qset_holds(const struct scn_qset *s, unsigned long q);
int scn_qset_overlap(const struct scn_qset *a, const struct scn_qset *b);
/* Is every number of inner in outer?  Is the set empty? */
int scn_qset_within(const struct scn_qset *inner, const struct scn_qset *outer);
int scn_qset_empty(const struct scn_qset *s);

const char *scn_op_str(enum scn_op op);
const char *scn_fate_str(enum scn_fate f);

#endif
