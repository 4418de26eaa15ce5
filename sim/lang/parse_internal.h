/*
 * parse_internal - what the files of the scenario parser share
 *
 * DESCRIPTION
 *   Not an interface: only sim/lang/parse*.c include it (parse.c lists the
 *   files).  The parser's state, struct parser (one per parse: the file
 *   and line being read, its tokens, the open block, forward references),
 *   the parser's bounds, and the helpers and directive handlers one file
 *   defines and another calls.
 *
 *   The declarations have hidden visibility: the mtasim executable exports
 *   its symbols to plugins (export_dynamic), and a plugin's own xmalloc()
 *   or once() must never bind to the parser's.
 */
#ifndef MTASIM_SIM_PARSE_INTERNAL_H
#define MTASIM_SIM_PARSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "parse.h"

/* Bounds beyond those in scenario.h and parse.h.  The counts keep the duplicate
 * checks (linear scans) and memory small for any input. */
#define SCN_MAX_FILE_SIZE (16L * 1024 * 1024)     /* scenario, include, body files */
#define SCN_MAX_BINDINGS 1024
#define SCN_MAX_DNS 65536
#define SCN_MAX_REMOTES 4096
#define SCN_MAX_REPLIES 4096                        /* per remote */
#define SCN_MAX_INJECTS 10000                       /* inject lines written */
#define SCN_MAX_INJECT_RANGES 64                    /* of which FIRST..LAST ranges */
#define SCN_MAX_INJECT_MESSAGES 10000000UL          /* messages of all inject lines */
#define SCN_MAX_EXPECTS 10000
#define SCN_MAX_PATTERNS 10000                      /* in all expect blocks together */
#define SCN_MAX_CLIENTS 4096
#define SCN_MAX_STEPS 4096                          /* per client */
#define SCN_MAX_USERS 1024
#define SCN_INBOUND_ID_BASE 1000UL                  /* inbound messages are 1000 + n */
#define SCN_MAX_PATH 4096
#define SCN_MAX_NAME 255                            /* domain names, binding names ... */
#define MAX_TOKENS (SCN_MAX_LINE / 2 + 1)           /* a token and a blank per 2 bytes */

/* Durations in microseconds. */
#define USEC_MS 1000LL
#define USEC_S MTA_USEC_PER_SEC
/* 2020-01-01T00:00:00Z */
#define DEFAULT_EPOCH (1577836800LL * USEC_S)

struct token {
    const char *text;       /* quotes removed, escapes applied, NUL-terminated */
    int start, end;         /* raw extent [start, end) in the line */
    int col;                /* 1-based column of the first byte */
    int quoted;             /* has a quoted part */
    int whole_quoted;       /* is exactly one "quoted string" */
};

enum block { BLOCK_NONE, BLOCK_REMOTE, BLOCK_HOOKS, BLOCK_CLIENT };

/* A forward reference, resolved after the whole parse. */
enum ref_kind { REF_BINDING, REF_MESSAGE };
struct ref {
    enum ref_kind kind;
    int index;              /* into injects (REF_BINDING) or expects (REF_MESSAGE) */
    struct scn_pos pos;     /* of the referring token */
};

struct parser {
    struct scn_scenario *sc;
    struct scn_error *err;
    int failed;

    /* The file being read; real[] holds each open file's canonical path
     * (NULL for text given as a string) to recognize include cycles. */
    const char *file;
    int depth;
    char *real[SCN_MAX_INCLUDE_DEPTH + 1];
    int lineno;

    /* The current line, cut into tokens. */
    const char *line;
    int len;
    int indented;
    int ntok;

    /* The open block and a multi-line reply still waiting for its last line. */
    enum block block;
    int block_index;
    int has_pending;
    struct scn_reply pending;
    struct scn_pos pending_last;    /* code token of its latest line */

    /* Settings that may be given once; line 0 = not yet. */
    struct scn_pos seen_scenario, seen_seed, seen_epoch, seen_run;

    int nrefs;
    struct ref *refs;
    int npatterns_total;            /* hook lines in all expect blocks */
    struct inject_ids *inject_ids;  /* the ids injected so far (parse_inject.c) */

    /* Last, and not cleared when a parse starts (PARSER_CLEARED): about
     * 74 KB that tokenize() writes before anything reads it (ntok above
     * says how many tokens are valid). */
    struct token tok[MAX_TOKENS];
    char text[2 * SCN_MAX_LINE + 2];
};
/* The part of struct parser a new parse zeroes. */
#define PARSER_CLEARED offsetof(struct parser, tok)

/* A "did you mean" search: offer candidates, take the closest.  A hint is
 * given within two edits: a transposition or a dropped letter; more would
 * offer unrelated words for short typos. */
#define SUGGEST_MAX_EDITS 2
/* A "did you mean" search: offer candidates, take the closest. */
struct suggestion {
    const char *word;
    char best[80];
    int best_d;
};

#define fail_at(p, col, ...) fail_pos((p), here((p), (col)), __VA_ARGS__)
#define fail_tok(p, t, ...) fail_pos((p), here((p), (t)->col), __VA_ARGS__)

#pragma GCC visibility push(hidden)

/* parse.c: blocks, forward references, files named by a directive */
void add_ref(struct parser *p, enum ref_kind kind, int index, struct scn_pos pos);
int close_block(struct parser *p, int at_eof);
char *read_relative(struct parser *p, const struct token *t, const char *what, size_t *len);

/* parse_token.c: allocation, suggestions, errors, tokens and values */
void *xmalloc(size_t n);
char *xstrndup(const char *s, size_t n);
char *xstrdup(const char *s);
void grow(void **arr, int n, size_t elem);
void copy_bounded(char *dst, size_t dstsz, const char *src);
void suggest_begin(struct suggestion *sg, const char *word);
void suggest_offer(struct suggestion *sg, const char *candidate);
const char *suggest_hint(struct suggestion *sg, char *buf, size_t bufsz);
int fail_pos(struct parser *p, struct scn_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct scn_pos here(const struct parser *p, int col);
int after_last(const struct parser *p);
int need_args(struct parser *p, int min, int max, const char *usage);
int is_word(const struct token *t, const char *word);
int parse_unsigned(struct parser *p, const struct token *t, const char *what,
                   unsigned long long min, unsigned long long max,
                   unsigned long long *out);
int parse_signed(const char *s, int64_t *out);
int parse_duration(struct parser *p, const struct token *t, mta_usec_t *out);
int parse_ipv4(struct parser *p, const struct token *t, uint32_t *out);
int parse_ipv6(struct parser *p, const struct token *t, uint8_t out[16]);
int parse_ip(struct parser *p, const struct token *t, mta_ip *out);
int check_domain(struct parser *p, const struct token *t, const char *what);
int regex_stacked_dup(const char *re);
/* An ERE that compiles within bounds, or -1 with the error at col. */
int check_regex(struct parser *p, const char *re_text, int col);
/* At most this many atoms once an ERE's repetitions are written out
 * (regex_expanded_size): about 25 MB of glibc's regcomp(). */
#define REGEX_MAX_EXPANDED 10000
unsigned long long regex_expanded_size(const char *re);
int check_name(struct parser *p, const struct token *t, const char *what,
               const char *extra);
char *extract_text(const struct parser *p, int s, int e);
int tokenize(struct parser *p);
int parse_op(const char *s);
int parse_probability(struct parser *p, const struct token *t, uint32_t *ppm);
int parse_rate(struct parser *p, const struct token *t, uint64_t *out);
int parse_size(struct parser *p, const struct token *t, const char *what, uint64_t min,
               uint64_t max, uint64_t *out);
/* The bounds of a socket buffer and of a path's MSS (sim/world/net.h). */
#define SCN_BUF_MIN 512
#define SCN_BUF_MAX ((uint64_t) 64 << 20)
#define SCN_MSS_MAX 65495           /* 65535 - IPv4 and TCP headers */

/* parse_world.c: world directives */
int once(struct parser *p, struct scn_pos *seen, const char *what);
int do_scenario(struct parser *p);
int do_description(struct parser *p);
int do_seed(struct parser *p);
int do_epoch(struct parser *p);
int do_run(struct parser *p);
int do_config(struct parser *p);
int do_liveness(struct parser *p);
int do_network(struct parser *p);
int do_binding(struct parser *p);
int do_inject(struct parser *p);
/* parse_inject.c: some inject line makes message id; the ids' index freed */
int inject_id_known(const struct parser *p, unsigned long id);
void inject_ids_free(struct parser *p);
int do_plugin(struct parser *p);
int do_requires(struct parser *p);

/* parse_dns.c: the dns directive; the zone's consistency, once all is read */
int do_dns(struct parser *p);
int dns_check_contradictions(struct parser *p);

/* parse_remote.c: remote blocks; "when" conditions, which dns lines share */
enum { COND_SESSION = 1, COND_ATTEMPT = 2, COND_NTH = 4, COND_RCPT = 8, COND_TRANSACTION = 16,
       COND_QUERY = 32 };
int parse_conds(struct parser *p, int a, int b, struct scn_cond *conds, int *nconds,
                unsigned allowed);
void pending_free(struct parser *p);
int remote_line(struct parser *p);
int do_remote(struct parser *p);

/* script_check.c: warnings about scripted lines that never take effect */
void script_check(struct parser *p);

/* parse_inbound.c: listen, user, client blocks */
int do_listen(struct parser *p);
int do_user(struct parser *p);
int do_client(struct parser *p);
int client_line(struct parser *p);
int resolve_inbound(struct parser *p);

/* parse_expect.c: expectations */
int hooks_line(struct parser *p);
int do_expect(struct parser *p);

#pragma GCC visibility pop

#endif
