/*
 * scenario - parse a .scn file into a world and its expectations
 *
 * SYNOPSIS
 *   #include "scenario.h"
 *
 *   struct scn_scenario *scn_parse_file(const char *path, struct scn_error *err);
 *   struct scn_scenario *scn_parse_string(const char *name, const char *text,
 *                                         struct scn_error *err);
 *   void scn_free(struct scn_scenario *sc);
 *   const char *scn_op_str(enum scn_op op);
 *   const char *scn_fate_str(enum scn_fate f);
 *   extern const char *const scn_cmd_names[];
 *
 * DESCRIPTION
 *   The language is line-oriented (docs/scenario-language.md is the
 *   reference).  Each line is cut into tokens first: blanks separate
 *   tokens, '#' outside double quotes ends the line, and "quoted" parts
 *   (escapes \" \\ \n \r \t; any other backslash is kept as written)
 *   may contain blanks and '#'.  Every token keeps
 *   its raw extent in the line, because a reply's text is the rest of the
 *   line as written, not a list of words.
 *
 *   A line that does not start with a blank is a directive, looked up in
 *   the table `directives'; one handler per directive.  An indented line
 *   belongs to the block opened by the closest preceding directive that
 *   opens one (remote, expect hooks in order); its first word is looked up
 *   in that block's table.  Any directive closes the open block; comments
 *   and blank lines do not.
 *
 *   References that may point forward (an inject naming a binding declared
 *   later, an expectation about a message injected later) are collected
 *   during the parse and resolved once the whole input has been read.
 *
 * CONTRACT
 *   scn_parse_file() and scn_parse_string() return a complete scenario or
 *   NULL; on NULL, *err holds the first error.  Nothing read from the input
 *   can make them crash, loop without end or allocate without bound: lines
 *   are at most SCN_MAX_LINE bytes, files at most SCN_MAX_FILE_SIZE, and
 *   every list has a limit below.  Keywords are case-insensitive; hook
 *   names, matcher keys and values are not.
 *
 * DIAGNOSTICS
 *   err->file, err->line, err->col: 1-based position of the offending token
 *   in the file that contains it (an included file by its own path).  A file
 *   that cannot be read at all is reported at line 0, column 0.  err->msg
 *   is one line, e.g. "bad duration '5x': expected a number with a unit
 *   us, ms, s, m, h or d", with "; did you mean 'x'?" where a known word is
 *   close to an unknown one.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "connection.h"
#include "dsn_status.h"
#include "hook_registry.h"
#include "plugin.h"
#include "scenario.h"

/* Bounds beyond those in scenario.h.  The counts keep the duplicate
 * checks (linear scans) and memory small for any input. */
#define SCN_MAX_FILE_SIZE (16L * 1024 * 1024)     /* scenario, include, body files */
#define SCN_MAX_BINDINGS 1024
#define SCN_MAX_DNS 65536
#define SCN_MAX_REMOTES 4096
#define SCN_MAX_REPLIES 4096                        /* per remote */
#define SCN_MAX_INJECTS 10000
#define SCN_MAX_EXPECTS 10000
#define SCN_MAX_PATTERNS 10000                      /* in all expect blocks together */
#define SCN_MAX_CLIENTS 4096
#define SCN_MAX_STEPS 4096                          /* per client */
#define SCN_MAX_USERS 1024
#define SCN_INBOUND_ID_BASE 1000UL                  /* inbound messages are 1000 + n */
#define SCN_MAX_PATH 4096
#define SCN_MAX_NAME 255                            /* domain names, binding names ... */
#define MAX_TOKENS (SCN_MAX_LINE / 2 + 1)           /* a token and a blank per 2 bytes */

const char *const scn_cmd_names[SCN_CMD__COUNT] = {
    [SCN_CMD_GREET] = "greet", [SCN_CMD_EHLO] = "ehlo", [SCN_CMD_HELO] = "helo",
    [SCN_CMD_MAIL] = "mail", [SCN_CMD_RCPT] = "rcpt", [SCN_CMD_DATA] = "data",
    [SCN_CMD_DOT] = "dot", [SCN_CMD_RSET] = "rset", [SCN_CMD_NOOP] = "noop",
    [SCN_CMD_QUIT] = "quit", [SCN_CMD_UNKNOWN] = "unknown",
};

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
    struct token tok[MAX_TOKENS];
    char text[2 * SCN_MAX_LINE + 2];

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
};

/* ---- small helpers ----------------------------------------------------- */

/* xmalloc - malloc that stops the program when memory is gone */
static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "scenario: out of memory\n");
        abort();
    }
    return p;
}

/* xstrndup - a copy of n bytes as a string */
static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* xstrdup - a copy of a string */
static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/*
 * grow - make room for element n of an array that holds n elements
 *
 * The capacity is implied by the count (4, then powers of two), so the
 * scenario structures need no capacity fields.  New space is zeroed so a
 * partly built element can always be freed.
 */
static void grow(void **arr, int n, size_t elem)
{
    assert(n >= 0 && n < INT_MAX / 2);
    size_t cap;
    if (n == 0)
        cap = 4;
    else if (n >= 4 && (n & (n - 1)) == 0)
        cap = 2 * (size_t)n;
    else
        return;
    void *p = realloc(*arr, cap * elem);
    if (p == NULL) {
        fprintf(stderr, "scenario: out of memory\n");
        abort();
    }
    memset((char *)p + (size_t)n * elem, 0, (cap - (size_t)n) * elem);
    *arr = p;
}

/* copy_bounded - strcpy into a fixed buffer, truncating */
static void copy_bounded(char *dst, size_t dstsz, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* A "did you mean" search: offer candidates, take the closest. */
struct suggestion {
    const char *word;
    char best[80];
    int best_d;
};

/* suggest_begin - start looking for a word close to word */
static void suggest_begin(struct suggestion *sg, const char *word)
{
    sg->word = word;
    sg->best[0] = '\0';
    sg->best_d = INT_MAX;
}

/* suggest_offer - consider one known word; the first of equals wins */
static void suggest_offer(struct suggestion *sg, const char *candidate)
{
    int d = mta_edit_distance(sg->word, candidate);
    if (d < sg->best_d) {
        sg->best_d = d;
        copy_bounded(sg->best, sizeof sg->best, candidate);
    }
}

/* suggest_hint - "; did you mean 'x'?" or "" when nothing is close
 *
 * Two edits catch a transposition or a dropped letter; more would offer
 * unrelated words for short typos. */
static const char *suggest_hint(struct suggestion *sg, char *buf, size_t bufsz)
{
    if (sg->best_d <= 2 && (size_t)sg->best_d < strlen(sg->word))
        snprintf(buf, bufsz, "; did you mean '%s'?", sg->best);
    else
        buf[0] = '\0';
    return buf;
}

/* ---- errors ------------------------------------------------------------- */

/* fail_pos - record the first error at a position; always returns -1 */
static int fail_pos(struct parser *p, struct scn_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_pos(struct parser *p, struct scn_pos pos, const char *fmt, ...)
{
    /* Every caller returns at once, so a second error means a handler
     * went on after failing. */
    assert(!p->failed);
    p->failed = 1;
    copy_bounded(p->err->file, sizeof p->err->file, pos.file ? pos.file : "");
    p->err->line = pos.line;
    p->err->col = pos.col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

/* here - the position of column col on the current line */
static struct scn_pos here(const struct parser *p, int col)
{
    struct scn_pos pos = { p->file, p->lineno, col };
    return pos;
}

#define fail_at(p, col, ...) fail_pos((p), here((p), (col)), __VA_ARGS__)
#define fail_tok(p, t, ...) fail_pos((p), here((p), (t)->col), __VA_ARGS__)

/* after_last - the column just after the last token: where a missing
 * argument should have been */
static int after_last(const struct parser *p)
{
    assert(p->ntok > 0);
    return p->tok[p->ntok - 1].end + 1;
}

/* need_args - the line has between min and max tokens (max < 0: no limit) */
static int need_args(struct parser *p, int min, int max, const char *usage)
{
    if (p->ntok < min)
        return fail_at(p, after_last(p), "missing argument: expected '%s'", usage);
    if (max >= 0 && p->ntok > max)
        return fail_tok(p, &p->tok[max], "unexpected '%s': expected '%s'",
                        p->tok[max].text, usage);
    return 0;
}

/* is_word - the token is this keyword, unquoted, in any case */
static int is_word(const struct token *t, const char *word)
{
    return !t->quoted && strcasecmp(t->text, word) == 0;
}

/* ---- values --------------------------------------------------------------- */

/* parse_unsigned - a whole decimal number no larger than max */
static int parse_unsigned(struct parser *p, const struct token *t, const char *what,
                          unsigned long long min, unsigned long long max,
                          unsigned long long *out)
{
    const char *s = t->text;
    unsigned long long v = 0;
    int ok = !t->quoted && *s != '\0';
    for (; ok && *s; s++) {
        if (!isdigit((unsigned char)*s) || v > (ULLONG_MAX - (unsigned)(*s - '0')) / 10) {
            ok = 0;
            break;
        }
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (!ok || v < min || v > max)
        return fail_tok(p, t, "bad %s '%s': expected a whole number from %llu to %llu",
                        what, t->text, min, max);
    *out = v;
    return 0;
}

/* parse_signed - an integer with an optional sign; 0 if it is not one */
static int parse_signed(const char *s, int64_t *out)
{
    int neg = 0;
    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (!isdigit((unsigned char)*s))
        return 0;
    uint64_t v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > (uint64_t)INT64_MAX + neg)
            return 0;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

/* parse_duration - a duration token into microseconds */
static int parse_duration(struct parser *p, const struct token *t, mta_usec_t *out)
{
    mta_usec_t v = t->quoted ? -1 : mta_parse_duration(t->text);
    if (v < 0)
        return fail_tok(p, t, "bad duration '%s': expected a number with a unit us, ms, s, m, h or d",
                        t->text);
    *out = v;
    return 0;
}

/* parse_ipv4 - a dotted quad into host byte order */
static int parse_ipv4(struct parser *p, const struct token *t, uint32_t *out)
{
    struct in_addr in;
    if (t->quoted || inet_pton(AF_INET, t->text, &in) != 1)
        return fail_tok(p, t, "bad IPv4 address '%s'", t->text);
    *out = ntohl(in.s_addr);
    return 0;
}

/* check_domain - letters, digits, '-', '_', dot-separated non-empty labels */
static int check_domain(struct parser *p, const struct token *t, const char *what)
{
    const char *s = t->text;
    size_t n = strlen(s);
    int ok = !t->quoted && n > 0 && n <= 253 && s[0] != '.' && strstr(s, "..") == NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.';
    if (!ok)
        return fail_tok(p, t, "bad %s '%s': expected a domain name like mx1.example.com", what, s);
    return 0;
}

/* check_name - a plain identifier: letters, digits and the given extras */
static int check_name(struct parser *p, const struct token *t, const char *what,
                      const char *extra)
{
    const char *s = t->text;
    size_t n = strlen(s);
    int ok = !t->quoted && n > 0 && n <= SCN_MAX_NAME;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)s[i]) || strchr(extra, s[i]) != NULL;
    if (!ok)
        return fail_tok(p, t, "bad %s '%s': use letters, digits and %s", what, s, extra);
    return 0;
}

/*
 * extract_text - the raw line between s and e as a string
 *
 * Free text (a reply, a description) is what was written, blanks and all.
 * When the span is exactly one "quoted string" the quotes come off and the
 * escapes apply; the tokenizer has already checked that the escapes in it
 * are valid.
 */
static char *extract_text(const struct parser *p, int s, int e)
{
    assert(0 <= s && s <= e && e <= p->len);
    const char *raw = p->line;
    if (e - s >= 2 && raw[s] == '"') {
        int i = s + 1;
        while (i < e && raw[i] != '"')
            i += raw[i] == '\\' ? 2 : 1;
        if (i == e - 1) {
            char *out = xmalloc((size_t)(e - s));
            size_t n = 0;
            for (int j = s + 1; j < e - 1; j++) {
                char c = raw[j];
                if (c == '\\') {
                    c = raw[++j];
                    if (c != '"' && c != '\\' && c != 'n' && c != 'r' && c != 't')
                        out[n++] = '\\';      /* an unknown escape stays as written */
                    c = c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
                }
                out[n++] = c;
            }
            out[n] = '\0';
            return out;
        }
    }
    return xstrndup(raw + s, (size_t)(e - s));
}

/* ---- files -------------------------------------------------------------- */

/* read_bounded - a whole file into memory, at most SCN_MAX_FILE_SIZE bytes;
 * on failure NULL and a reason in why */
static char *read_bounded(const char *path, size_t *len, char *why, size_t whysz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whysz, "%s", strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > (size_t)SCN_MAX_FILE_SIZE) {
                snprintf(why, whysz, "larger than %ld bytes", SCN_MAX_FILE_SIZE);
                free(buf);
                close(fd);
                return NULL;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                close(fd);
                snprintf(why, whysz, "out of memory");
                return NULL;
            }
            buf = nb;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whysz, "%s", strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > (size_t)SCN_MAX_FILE_SIZE) {
        snprintf(why, whysz, "larger than %ld bytes", SCN_MAX_FILE_SIZE);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* relative_to - path as seen from the directory of the file base */
static char *relative_to(const char *base, const char *path)
{
    const char *slash = strrchr(base, '/');
    if (path[0] == '/' || slash == NULL)
        return xstrdup(path);
    size_t dirlen = (size_t)(slash - base);
    size_t n = dirlen + 1 + strlen(path);
    char *out = xmalloc(n + 1);
    memcpy(out, base, dirlen);
    out[dirlen] = '/';
    strcpy(out + dirlen + 1, path);
    return out;
}

/* intern_file - the scenario's own copy of a file name, shared by positions */
static const char *intern_file(struct scn_scenario *sc, const char *name)
{
    for (int i = 0; i < sc->nfiles; i++)
        if (strcmp(sc->files[i], name) == 0)
            return sc->files[i];
    grow((void **)&sc->files, sc->nfiles, sizeof *sc->files);
    sc->files[sc->nfiles] = xstrdup(name);
    return sc->files[sc->nfiles++];
}

/* add_ref - remember a forward reference to check after the parse */
static void add_ref(struct parser *p, enum ref_kind kind, int index, struct scn_pos pos)
{
    grow((void **)&p->refs, p->nrefs, sizeof *p->refs);
    p->refs[p->nrefs].kind = kind;
    p->refs[p->nrefs].index = index;
    p->refs[p->nrefs].pos = pos;
    p->nrefs++;
}

/* ---- tokens ------------------------------------------------------------- */

/* tokenize - cut the current line into tokens (see the file comment) */
static int tokenize(struct parser *p)
{
    const char *s = p->line;
    int n = p->len, i = 0;
    char *out = p->text;
    p->ntok = 0;
    p->indented = n > 0 && (s[0] == ' ' || s[0] == '\t');
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n || s[i] == '#')
            break;
        /* Each token takes a byte and is followed by a blank or the end. */
        assert(p->ntok < MAX_TOKENS);
        struct token *t = &p->tok[p->ntok++];
        t->start = i;
        t->col = i + 1;
        t->text = out;
        t->quoted = 0;
        int segments = 0, last_close = -1;
        while (i < n && s[i] != ' ' && s[i] != '\t' && s[i] != '#') {
            if (s[i] != '"') {
                *out++ = s[i++];
                continue;
            }
            int open = i++;
            t->quoted = 1;
            segments++;
            for (;;) {
                if (i >= n)
                    return fail_at(p, open + 1, "unterminated quoted string");
                if (s[i] == '"')
                    break;
                if (s[i] != '\\') {
                    *out++ = s[i++];
                    continue;
                }
                if (i + 1 >= n)
                    return fail_at(p, open + 1, "unterminated quoted string");
                switch (s[i + 1]) {
                case '"':  *out++ = '"'; break;
                case '\\': *out++ = '\\'; break;
                case 'n':  *out++ = '\n'; break;
                case 'r':  *out++ = '\r'; break;
                case 't':  *out++ = '\t'; break;
                default:
                    /* Kept as written, as sh does: "4\.7\.1" is the
                     * regular expression 4\.7\.1, not an error. */
                    *out++ = '\\';
                    *out++ = s[i + 1];
                    break;
                }
                i += 2;
            }
            last_close = i++;
        }
        *out++ = '\0';
        t->end = i;
        t->whole_quoted = s[t->start] == '"' && segments == 1 && last_close == t->end - 1;
        /* Raw bytes never expand, and each token adds one NUL. */
        assert(out <= p->text + sizeof p->text);
    }
    return 0;
}

/* ---- blocks --------------------------------------------------------------- */

/* close_block - end the open block: at a directive (at_eof = 0) or at the
 * end of the file; an unfinished multi-line reply or an empty expect block
 * is an error */
static int close_block(struct parser *p, int at_eof)
{
    struct scn_scenario *sc = p->sc;
    if (p->has_pending) {
        const char *cmd = scn_cmd_names[p->pending.cmd];
        if (at_eof)
            return fail_pos(p, p->pending_last,
                            "multi-line reply not finished: the %s reply needs a last line "
                            "'%s %d TEXT' (a blank after the code, not '-')",
                            cmd, cmd, p->pending.code);
        return fail_tok(p, &p->tok[0],
                        "multi-line reply not finished: the %s reply from line %d needs a "
                        "last line '%s %d TEXT' before this one",
                        cmd, p->pending_last.line, cmd, p->pending.code);
    }
    if (p->block == BLOCK_HOOKS) {
        const struct scn_expect *ex = &sc->expects[p->block_index];
        int trace = ex->kind == SCN_EXPECT_TRACE_IN_ORDER || ex->kind == SCN_EXPECT_TRACE_EXACTLY;
        int exactly = ex->kind == SCN_EXPECT_HOOKS_EXACTLY || ex->kind == SCN_EXPECT_TRACE_EXACTLY;
        if (ex->npatterns == 0)
            return fail_pos(p, ex->pos, "'expect %s %s' has no %s lines: indent them under it",
                            trace ? "trace" : "hooks", exactly ? "exactly" : "in order",
                            trace ? "pattern" : "hook");
    }
    if (p->block == BLOCK_CLIENT && sc->clients[p->block_index].nsteps == 0)
        return fail_pos(p, sc->clients[p->block_index].pos,
                        "'client' has no script lines: indent them under it");
    p->block = BLOCK_NONE;
    return 0;
}

/* ---- remote blocks ------------------------------------------------------ */

/* pending_free - drop an unfinished multi-line reply */
static void pending_free(struct parser *p)
{
    if (p->pending.lines != NULL)
        for (int i = 0; i < p->pending.nlines; i++)
            free(p->pending.lines[i]);
    free(p->pending.lines);
    memset(&p->pending, 0, sizeof p->pending);
    p->has_pending = 0;
}

/* parse_op - a comparison operator token; -1 if it is none */
static int parse_op(const char *s)
{
    static const struct { const char *text; enum scn_op op; } ops[] = {
        { "=", SCN_OP_EQ }, { "==", SCN_OP_EQ }, { "!=", SCN_OP_NE }, { "<", SCN_OP_LT },
        { "<=", SCN_OP_LE }, { ">", SCN_OP_GT }, { ">=", SCN_OP_GE },
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(s, ops[i].text) == 0)
            return (int)ops[i].op;
    return -1;
}

/* Which conditions a scripted line may use (cond_allowed). */
enum { COND_SESSION = 1, COND_ATTEMPT = 2, COND_NTH = 4, COND_RCPT = 8 };

/* cond_allowed - the conditions a reply to cmd may use; cmd < 0: a network fault */
static unsigned cond_allowed(int cmd)
{
    unsigned m = COND_SESSION;
    if (cmd < 0)
        return m;
    m |= COND_NTH;
    /* The attempt is fixed at the first RCPT, so only what follows it. */
    if (cmd == SCN_CMD_RCPT || cmd == SCN_CMD_DATA || cmd == SCN_CMD_DOT)
        m |= COND_ATTEMPT;
    if (cmd == SCN_CMD_RCPT)
        m |= COND_RCPT;
    return m;
}

/* conds_free - release what parsed conditions own (their regexes) */
static void conds_free(struct scn_cond *conds, int n)
{
    for (int i = 0; i < n; i++) {
        free(conds[i].regex);
        conds[i].regex = NULL;
    }
}

/* check_regex - a POSIX extended regular expression that compiles */
static int check_regex(struct parser *p, const char *re_text, int col)
{
    regex_t re;
    int rc = regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[160];
        regerror(rc, &re, why, sizeof why);
        return fail_at(p, col, "bad regular expression '%s': %s", re_text, why);
    }
    regfree(&re);
    return 0;
}

/*
 * parse_conds - "COND [and COND]..." in tokens [a, b), COND one of
 * session|attempt|nth [OP] N and rcpt ~ REGEX; allowed says which
 */
static int parse_conds(struct parser *p, int a, int b, struct scn_cond *conds, int *nconds,
                       unsigned allowed)
{
    static const struct { const char *word; enum scn_cond_kind kind; unsigned bit; } kinds[] = {
        { "session", SCN_COND_SESSION, COND_SESSION }, { "attempt", SCN_COND_ATTEMPT, COND_ATTEMPT },
        { "nth", SCN_COND_NTH, COND_NTH }, { "rcpt", SCN_COND_RCPT, COND_RCPT },
    };
    const char *usage = "when session|attempt|nth OP N | rcpt ~ REGEX [and ...]";
    int i = a;
    if (i == b)
        return fail_at(p, p->tok[a - 1].end + 1, "missing condition: expected '%s'", usage);
    for (;;) {
        int k = -1;
        for (int j = 0; j < (int)(sizeof kinds / sizeof kinds[0]); j++)
            if (is_word(&p->tok[i], kinds[j].word))
                k = j;
        if (k < 0)
            return fail_tok(p, &p->tok[i], "unknown condition '%s': expected '%s'",
                            p->tok[i].text, usage);
        if (!(allowed & kinds[k].bit)) {
            const char *why = allowed == COND_SESSION
                ? "a network fault takes only 'session' conditions"
                : kinds[k].kind == SCN_COND_RCPT ? "'rcpt ~' applies to rcpt replies only"
                : "'attempt' applies to rcpt, data and dot replies (it is known from the first RCPT)";
            return fail_tok(p, &p->tok[i], "%s", why);
        }
        if (*nconds == SCN_MAX_CONDS)
            return fail_tok(p, &p->tok[i], "too many conditions (at most %d)", SCN_MAX_CONDS);
        struct scn_cond *c = &conds[*nconds];
        memset(c, 0, sizeof *c);
        c->kind = kinds[k].kind;
        c->op = SCN_OP_EQ;
        i++;
        if (c->kind == SCN_COND_RCPT) {
            if (i == b || !is_word(&p->tok[i], "~"))
                return fail_at(p, i == b ? p->tok[i - 1].end + 1 : p->tok[i].col,
                               "expected '~ REGEX' after 'rcpt'");
            if (++i == b)
                return fail_at(p, p->tok[i - 1].end + 1, "missing regular expression after '~'");
            if (check_regex(p, p->tok[i].text, p->tok[i].col) < 0)
                return -1;
            c->op = SCN_OP_RE;
            c->regex = xstrdup(p->tok[i].text);
        } else {
            if (i < b && !p->tok[i].quoted && parse_op(p->tok[i].text) >= 0)
                c->op = (enum scn_op)parse_op(p->tok[i++].text);
            if (i == b)
                return fail_at(p, p->tok[i - 1].end + 1, "missing number: expected '%s'", usage);
            unsigned long long v;
            if (parse_unsigned(p, &p->tok[i], "condition number", 0, LONG_MAX, &v) < 0)
                return -1;
            c->value = (long)v;
        }
        (*nconds)++;
        if (++i == b)
            return 0;
        if (!is_word(&p->tok[i], "and"))
            return fail_tok(p, &p->tok[i], "unexpected '%s': conditions are joined with 'and'",
                            p->tok[i].text);
        if (++i == b)
            return fail_at(p, p->tok[i - 1].end + 1, "missing condition after 'and'");
    }
}

/* parse_probability - "0.3" into parts per million: 0 to 1, at most 6 decimals */
static int parse_probability(struct parser *p, const struct token *t, uint32_t *ppm)
{
    const char *s = t->text;
    uint64_t whole = 0, frac = 0;
    int ndec = 0, ok = !t->quoted && isdigit((unsigned char)*s);
    for (; ok && isdigit((unsigned char)*s) && whole <= 1; s++)
        whole = whole * 10 + (uint64_t)(*s - '0');
    if (ok && *s == '.') {
        s++;
        ok = isdigit((unsigned char)*s);
        for (; ok && isdigit((unsigned char)*s); s++, ndec++) {
            if (ndec == 6)
                ok = 0;
            else
                frac = frac * 10 + (uint64_t)(*s - '0');
        }
    }
    for (int k = ndec; k < 6; k++)
        frac *= 10;
    uint64_t v = whole * SCN_PPM_ALWAYS + frac;
    if (!ok || *s != '\0' || v > SCN_PPM_ALWAYS)
        return fail_tok(p, t, "bad probability '%s': expected a number from 0 to 1 with at "
                        "most 6 decimals, like 0.3", t->text);
    *ppm = (uint32_t)v;
    return 0;
}

/* parse_rate - bytes per second: N, NB/s, NKB/s, NMB/s (powers of 1000), NKiB/s, NMiB/s */
static int parse_rate(struct parser *p, const struct token *t, uint64_t *out)
{
    static const struct { const char *unit; uint64_t mult; } units[] = {
        { "", 1 }, { "B/s", 1 }, { "KB/s", 1000 }, { "MB/s", 1000000 },
        { "KiB/s", 1024 }, { "MiB/s", 1048576 },
    };
    const char *s = t->text;
    uint64_t v = 0;
    int digits = 0;
    for (; !t->quoted && isdigit((unsigned char)*s) && v < (1ULL << 40); s++, digits++)
        v = v * 10 + (uint64_t)(*s - '0');
    for (size_t i = 0; digits > 0 && i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(s, units[i].unit) == 0 && v > 0 && v < (1ULL << 40)) {
            *out = v * units[i].mult;
            return 0;
        }
    }
    return fail_tok(p, t, "bad bandwidth '%s': expected bytes per second above 0, like 2000, "
                    "2KB/s, 1MB/s or 64KiB/s", t->text);
}

/*
 * reply_clauses - the clauses at the end of a scripted line, tokens
 * [min, ntok): delay DUR, probability P, when COND...; on return *text_end
 * is where they start (ntok when there are none)
 */
static int reply_clauses(struct parser *p, int min, int cmd, struct scn_reply *clauses,
                         int *text_end)
{
    int has_delay = 0, has_when = 0, has_prob = 0;
    *text_end = p->ntok;
    for (;;) {
        int te = *text_end;
        if (te - 2 >= min && is_word(&p->tok[te - 2], "delay")) {
            if (has_delay)
                return fail_tok(p, &p->tok[te - 2], "'delay' given twice");
            if (parse_duration(p, &p->tok[te - 1], &clauses->delay) < 0)
                return -1;
            has_delay = 1;
            *text_end = te - 2;
            continue;
        }
        if (te - 2 >= min && is_word(&p->tok[te - 2], "probability")) {
            if (has_prob)
                return fail_tok(p, &p->tok[te - 2], "'probability' given twice");
            if (parse_probability(p, &p->tok[te - 1], &clauses->ppm) < 0)
                return -1;
            has_prob = clauses->has_ppm = 1;
            *text_end = te - 2;
            continue;
        }
        int w = -1;
        for (int i = te - 1; i >= min && w < 0; i--)
            if (is_word(&p->tok[i], "when"))
                w = i;
        if (w < 0)
            return 0;
        if (has_when)
            return fail_tok(p, &p->tok[w], "'when' given twice; join conditions with 'and'");
        if (parse_conds(p, w + 1, te, clauses->conds, &clauses->nconds, cond_allowed(cmd)) < 0)
            return -1;
        has_when = 1;
        *text_end = w;
    }
}

/* reply_add - a finished scripted line joins the remote's script */
static int reply_add(struct parser *p, struct scn_reply *r)
{
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    if (rm->nreplies == SCN_MAX_REPLIES) {
        conds_free(r->conds, r->nconds);
        return fail_tok(p, &p->tok[0], "more than %d replies for one remote", SCN_MAX_REPLIES);
    }
    grow((void **)&rm->replies, rm->nreplies, sizeof *rm->replies);
    rm->replies[rm->nreplies++] = *r;
    return 0;
}

/*
 * remote_action - CMD reset|drop|close|raw "BYTES" [clauses], and
 * "after CMD [N] reset|drop|close [clauses]" (first = the action's token,
 * nth = N or 0)
 */
static int remote_action(struct parser *p, enum scn_cmd cmd, int first, long nth)
{
    static const struct { const char *word; enum scn_action action; } actions[] = {
        { "reset", SCN_ACTION_RESET }, { "drop", SCN_ACTION_DROP }, { "close", SCN_ACTION_CLOSE },
        { "raw", SCN_ACTION_RAW },
    };
    struct scn_reply r;
    memset(&r, 0, sizeof r);
    r.cmd = cmd;
    r.pos = here(p, p->tok[0].col);
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (is_word(&p->tok[first], actions[i].word))
            r.action = actions[i].action;
    assert(r.action != SCN_ACTION_REPLY);
    if (nth > 0) {
        if (r.action == SCN_ACTION_RAW)
            return fail_tok(p, &p->tok[first], "'after' takes reset, drop or close, not raw");
        r.conds[0].kind = SCN_COND_NTH;
        r.conds[0].op = SCN_OP_EQ;
        r.conds[0].value = nth;
        r.nconds = 1;
    }
    int args = first + 1 + (r.action == SCN_ACTION_RAW);
    if (r.action == SCN_ACTION_RAW && (p->ntok <= first + 1 || !p->tok[first + 1].whole_quoted))
        return fail_at(p, p->ntok <= first + 1 ? after_last(p) : p->tok[first + 1].col,
                       "'raw' wants one \"quoted string\": the bytes to send, e.g. "
                       "raw \"2x0 odd\\r\\n\"");
    int text_end;
    if (reply_clauses(p, args, cmd, &r, &text_end) < 0) {
        conds_free(r.conds, r.nconds);
        return -1;
    }
    if (text_end != args) {
        conds_free(r.conds, r.nconds);
        return fail_tok(p, &p->tok[args], "unexpected '%s': expected delay, probability or "
                        "when clauses", p->tok[args].text);
    }
    if (r.action == SCN_ACTION_RAW) {
        const char *bytes = p->tok[first + 1].text;
        r.raw_len = strlen(bytes);
        if (r.raw_len == 0) {
            conds_free(r.conds, r.nconds);
            return fail_tok(p, &p->tok[first + 1], "'raw' needs at least one byte");
        }
        r.lines = xmalloc(sizeof *r.lines);
        r.lines[0] = xstrdup(bytes);
        r.nlines = 1;
        /* The state machine reads the code from the first three bytes. */
        r.code = isdigit((unsigned char)bytes[0]) && r.raw_len >= 3
                 && isdigit((unsigned char)bytes[1]) && isdigit((unsigned char)bytes[2])
                 ? (bytes[0] - '0') * 100 + (bytes[1] - '0') * 10 + (bytes[2] - '0') : 0;
    }
    if (reply_add(p, &r) < 0) {
        if (r.lines) {
            free(r.lines[0]);
            free(r.lines);
        }
        return -1;
    }
    return 0;
}

/* remote_after - after CMD [N] reset|drop|close [clauses]: the N-th CMD is never answered */
static int remote_after(struct parser *p)
{
    const char *usage = "after CMD [N] reset|drop|close [delay DURATION] [when ...]";
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int cmd = -1;
    for (int c = 0; c < SCN_CMD__COUNT; c++)
        if (is_word(&p->tok[1], scn_cmd_names[c]) && c != SCN_CMD_GREET)
            cmd = c;
    if (cmd < 0)
        return fail_tok(p, &p->tok[1], "unknown command '%s' after 'after': expected ehlo helo "
                        "mail rcpt data dot rset noop quit unknown", p->tok[1].text);
    int i = 2;
    unsigned long long nth = 1;
    if (isdigit((unsigned char)p->tok[2].text[0])) {
        if (parse_unsigned(p, &p->tok[2], "command number", 1, LONG_MAX, &nth) < 0)
            return -1;
        i = 3;
    }
    if (i >= p->ntok)
        return fail_at(p, after_last(p), "missing action: expected '%s'", usage);
    if (!is_word(&p->tok[i], "reset") && !is_word(&p->tok[i], "drop")
        && !is_word(&p->tok[i], "close"))
        return fail_tok(p, &p->tok[i], "unknown action '%s': expected reset, drop or close",
                        p->tok[i].text);
    return remote_action(p, (enum scn_cmd)cmd, i, (long)nth);
}

/*
 * remote_reply - CMD CODE[-| ]TEXT [delay DUR] [when COND [and COND]...]
 *
 * Clauses are taken from the end of the line, so the text before them can
 * be anything; a text that must contain "delay" or "when" as a word in a
 * clause position is written as a "quoted string".
 */
static int remote_reply(struct parser *p, enum scn_cmd cmd)
{
    const char *usage = "CMD CODE TEXT [delay DURATION] [probability P] [when COND]";
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    /* Another command ends an unfinished multi-line reply: say so before
     * anything else on this line is judged. */
    if (p->has_pending && p->pending.cmd != cmd)
        return close_block(p, 0);
    if (need_args(p, 2, -1, usage) < 0)
        return -1;
    if (!p->has_pending && (is_word(&p->tok[1], "reset") || is_word(&p->tok[1], "drop")
                            || is_word(&p->tok[1], "close") || is_word(&p->tok[1], "raw")))
        return remote_action(p, cmd, 1, 0);
    const struct token *ct = &p->tok[1];
    /* The code is judged on the raw line: in 250-"text" only the text is quoted. */
    const char *c = p->line + ct->start;
    int clen = ct->end - ct->start;
    int shape_ok = clen >= 3 && isdigit((unsigned char)c[0]) && isdigit((unsigned char)c[1])
                   && isdigit((unsigned char)c[2]) && (clen == 3 || c[3] == '-');
    if (!shape_ok)
        return fail_tok(p, ct, "bad reply code '%s': expected three digits followed by a "
                        "blank or '-'", ct->text);
    int code = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    if (code < 100 || code > 599)
        return fail_tok(p, ct, "reply code %d outside 100-599", code);
    int continued = c[3] == '-';

    /* Clauses, from the end of the line; tokens [2, text_end) are the text. */
    struct scn_reply clauses;
    memset(&clauses, 0, sizeof clauses);
    int text_end;
    if (reply_clauses(p, 2, cmd, &clauses, &text_end) < 0) {
        conds_free(clauses.conds, clauses.nconds);
        return -1;
    }
    /* From here on every error path frees the clauses' regexes. */
    if (continued && text_end < p->ntok) {
        conds_free(clauses.conds, clauses.nconds);
        return fail_tok(p, &p->tok[text_end],
                        "'%s' belongs on the last line of a multi-line reply",
                        p->tok[text_end].text);
    }

    /* Checks on the reply being built come before anything is allocated. */
    if (p->has_pending) {
        assert(p->pending.cmd == cmd);
        if (p->pending.code != code || p->pending.nlines == SCN_MAX_REPLY_LINES)
            conds_free(clauses.conds, clauses.nconds);
        if (p->pending.code != code)
            return fail_tok(p, ct, "reply code %d does not continue the %d reply from line %d",
                            code, p->pending.code, p->pending.pos.line);
        if (p->pending.nlines == SCN_MAX_REPLY_LINES)
            return fail_tok(p, ct, "reply longer than %d lines", SCN_MAX_REPLY_LINES);
    } else if (rm->nreplies == SCN_MAX_REPLIES) {
        conds_free(clauses.conds, clauses.nconds);
        return fail_tok(p, &p->tok[0], "more than %d replies for one remote", SCN_MAX_REPLIES);
    }

    int s = continued ? ct->start + 4 : text_end > 2 ? p->tok[2].start : ct->end;
    int e = text_end > 2 ? p->tok[text_end - 1].end : ct->end;
    char *text = extract_text(p, s, e);
    if (strpbrk(text, "\r\n") != NULL) {
        free(text);
        conds_free(clauses.conds, clauses.nconds);
        return fail_at(p, s + 1, "reply text may not contain CR or LF");
    }
    size_t wire_len = strlen(text) + 5;
    char *wire = xmalloc(wire_len);
    if (!continued && text[0] == '\0')
        snprintf(wire, wire_len, "%03d", code);
    else
        snprintf(wire, wire_len, "%03d%c%s", code, continued ? '-' : ' ', text);
    free(text);

    if (!p->has_pending) {
        p->has_pending = 1;
        p->pending.cmd = cmd;
        p->pending.code = code;
        p->pending.lines = xmalloc(SCN_MAX_REPLY_LINES * sizeof *p->pending.lines);
        p->pending.pos = here(p, p->tok[0].col);
    }
    p->pending.lines[p->pending.nlines++] = wire;
    p->pending_last = here(p, ct->col);
    if (continued)
        return 0;

    /* The last line: the reply is complete and joins the remote's script. */
    p->pending.delay = clauses.delay;
    p->pending.has_ppm = clauses.has_ppm;
    p->pending.ppm = clauses.ppm;
    p->pending.nconds = clauses.nconds;
    memcpy(p->pending.conds, clauses.conds, sizeof clauses.conds);
    char **shrunk = realloc(p->pending.lines, (size_t)p->pending.nlines * sizeof *shrunk);
    if (shrunk != NULL)
        p->pending.lines = shrunk;
    grow((void **)&rm->replies, rm->nreplies, sizeof *rm->replies);
    rm->replies[rm->nreplies++] = p->pending;
    memset(&p->pending, 0, sizeof p->pending);
    p->has_pending = 0;
    return 0;
}

/* remote_connect - connect MODE [latency DUR] [probability P] */
static int remote_connect(struct parser *p)
{
    static const char *const modes[] = {
        [SCN_CONNECT_ACCEPT] = "accept", [SCN_CONNECT_REFUSE] = "refuse",
        [SCN_CONNECT_TIMEOUT] = "timeout", [SCN_CONNECT_UNREACHABLE] = "unreachable",
        [SCN_CONNECT_NO_ROUTE] = "no-route",
    };
    const char *usage = "connect accept|refuse|timeout|unreachable|no-route [latency DURATION] "
                        "[probability P]";
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    if (need_args(p, 2, 6, usage) < 0)
        return -1;
    int mode = -1;
    for (int i = 0; i < (int)(sizeof modes / sizeof modes[0]); i++)
        if (is_word(&p->tok[1], modes[i]))
            mode = i;
    if (mode < 0)
        return fail_tok(p, &p->tok[1], "unknown connect mode '%s': expected accept, refuse, "
                        "timeout, unreachable or no-route", p->tok[1].text);
    uint32_t ppm = SCN_PPM_ALWAYS;
    int has_prob = 0;
    for (int i = 2; i < p->ntok; i += 2) {
        int is_lat = is_word(&p->tok[i], "latency"), is_prob = is_word(&p->tok[i], "probability");
        if (!is_lat && !is_prob)
            return fail_tok(p, &p->tok[i], "unexpected '%s': expected '%s'", p->tok[i].text, usage);
        if (i + 1 == p->ntok)
            return fail_at(p, after_last(p), "missing argument: expected '%s'", usage);
        if (is_lat && parse_duration(p, &p->tok[i + 1], &rm->latency) < 0)
            return -1;
        if (is_prob && (has_prob++ || parse_probability(p, &p->tok[i + 1], &ppm) < 0))
            return p->failed ? -1 : fail_tok(p, &p->tok[i], "'probability' given twice");
    }
    if (!has_prob) {
        rm->connect = (enum scn_connect_mode)mode;
        return 0;
    }
    if (rm->nchoices == SCN_MAX_CONNECT_CHOICES)
        return fail_tok(p, &p->tok[0], "more than %d random connect lines", SCN_MAX_CONNECT_CHOICES);
    rm->choices[rm->nchoices].mode = mode;
    rm->choices[rm->nchoices].ppm = ppm;
    rm->nchoices++;
    return 0;
}

/* remote_duration - latency|jitter|close delay DUR: a duration setting of the remote */
static int remote_duration(struct parser *p, int at, const char *usage, mta_usec_t *out)
{
    if (need_args(p, at + 1, at + 1, usage) < 0)
        return -1;
    return parse_duration(p, &p->tok[at], out);
}

/* remote_count - segment N | backlog N [refuse|timeout]: a whole-number setting */
static int remote_count(struct parser *p, const char *what, long *out)
{
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    int backlog = strcmp(what, "backlog") == 0;
    const char *usage = backlog ? "backlog N [timeout|refuse]" : "segment N";
    if (need_args(p, 2, backlog ? 3 : 2, usage) < 0)
        return -1;
    unsigned long long v;
    if (parse_unsigned(p, &p->tok[1], what, 0, backlog ? 65535 : 1 << 24, &v) < 0)
        return -1;
    if (p->ntok == 3) {
        if (!is_word(&p->tok[2], "refuse") && !is_word(&p->tok[2], "timeout"))
            return fail_tok(p, &p->tok[2], "unexpected '%s': expected timeout or refuse",
                            p->tok[2].text);
        rm->backlog_refuse = is_word(&p->tok[2], "refuse");
    }
    *out = (long)v;
    return 0;
}

/* remote_fault - reset|drop at DUR | after N bytes [when session OP N] */
static int remote_fault(struct parser *p)
{
    const char *usage = "reset|drop at DURATION | after N bytes [when session OP N]";
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    struct scn_fault f;
    memset(&f, 0, sizeof f);
    f.action = is_word(&p->tok[0], "reset") ? SCN_ACTION_RESET : SCN_ACTION_DROP;
    f.pos = here(p, p->tok[0].col);
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int next;
    if (is_word(&p->tok[1], "at")) {
        f.trigger = SCN_FAULT_AT;
        if (parse_duration(p, &p->tok[2], &f.at) < 0)
            return -1;
        next = 3;
    } else if (is_word(&p->tok[1], "after")) {
        f.trigger = SCN_FAULT_AFTER_BYTES;
        if (need_args(p, 4, -1, usage) < 0
            || parse_unsigned(p, &p->tok[2], "byte count", 1, 1ULL << 32, &f.bytes) < 0)
            return -1;
        if (!is_word(&p->tok[3], "bytes"))
            return fail_tok(p, &p->tok[3], "unexpected '%s': expected 'bytes'", p->tok[3].text);
        next = 4;
    } else {
        return fail_tok(p, &p->tok[1], "unexpected '%s': expected '%s'", p->tok[1].text, usage);
    }
    if (next < p->ntok) {
        if (!is_word(&p->tok[next], "when"))
            return fail_tok(p, &p->tok[next], "unexpected '%s': expected '%s'",
                            p->tok[next].text, usage);
        if (parse_conds(p, next + 1, p->ntok, f.conds, &f.nconds, cond_allowed(-1)) < 0)
            return -1;
    }
    if (rm->nfaults == SCN_MAX_FAULTS)
        return fail_tok(p, &p->tok[0], "more than %d faults for one remote", SCN_MAX_FAULTS);
    grow((void **)&rm->faults, rm->nfaults, sizeof *rm->faults);
    rm->faults[rm->nfaults++] = f;
    return 0;
}

/* remote_setting - the non-reply lines of a remote block; 1 if t is none of them */
static int remote_setting(struct parser *p)
{
    struct scn_remote *rm = &p->sc->remotes[p->block_index];
    const struct token *t = &p->tok[0];
    if (is_word(t, "connect"))
        return remote_connect(p);
    if (is_word(t, "latency"))
        return remote_duration(p, 1, "latency DURATION", &rm->latency);
    if (is_word(t, "jitter"))
        return remote_duration(p, 1, "jitter DURATION", &rm->jitter);
    if (is_word(t, "bandwidth")) {
        if (need_args(p, 2, 2, "bandwidth RATE") < 0)
            return -1;
        return parse_rate(p, &p->tok[1], &rm->bandwidth);
    }
    if (is_word(t, "segment")) {
        if (remote_count(p, "segment", &rm->segment) < 0)
            return -1;
        return rm->segment > 0 ? 0 : fail_tok(p, &p->tok[1], "a segment holds at least 1 byte");
    }
    if (is_word(t, "backlog")) {
        long v;
        if (remote_count(p, "backlog", &v) < 0)
            return -1;
        rm->backlog = (int)v;
        return 0;
    }
    if (is_word(t, "flush")) {
        if (need_args(p, 2, 2, "flush each|together") < 0)
            return -1;
        if (!is_word(&p->tok[1], "each") && !is_word(&p->tok[1], "together"))
            return fail_tok(p, &p->tok[1], "unknown flush mode '%s': expected each or together",
                            p->tok[1].text);
        rm->flush_together = is_word(&p->tok[1], "together");
        return 0;
    }
    if (is_word(t, "close")) {
        if (p->ntok < 2 || !is_word(&p->tok[1], "delay"))
            return fail_at(p, p->ntok < 2 ? after_last(p) : p->tok[1].col,
                           "expected 'close delay DURATION' (slow close)");
        return remote_duration(p, 2, "close delay DURATION", &rm->close_delay);
    }
    if (is_word(t, "reset") || is_word(t, "drop"))
        return remote_fault(p);
    if (is_word(t, "after"))
        return remote_after(p);
    return 1;
}

/* remote_line - one indented line of a remote block */
static int remote_line(struct parser *p)
{
    const struct token *t = &p->tok[0];
    /* Any other line ends a multi-line reply; remote_reply checks its own. */
    int is_cmd = -1;
    for (int c = 0; c < SCN_CMD__COUNT; c++)
        if (is_word(t, scn_cmd_names[c]))
            is_cmd = c;
    if (is_word(t, "banner"))
        is_cmd = SCN_CMD_GREET;
    if (is_cmd >= 0)
        return remote_reply(p, (enum scn_cmd)is_cmd);
    if (p->has_pending)
        return close_block(p, 0);
    int rc = remote_setting(p);
    if (rc <= 0)
        return rc;
    static const char *const settings[] = {
        "connect", "latency", "jitter", "bandwidth", "segment", "backlog", "flush", "close",
        "reset", "drop", "after",
    };
    struct suggestion sg;
    char hint[128];
    suggest_begin(&sg, t->text);
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        suggest_offer(&sg, settings[i]);
    for (int c = 0; c < SCN_CMD__COUNT; c++)
        suggest_offer(&sg, scn_cmd_names[c]);
    return fail_tok(p, t, "unknown remote line '%s': expected connect, latency, jitter, "
                    "bandwidth, segment, backlog, flush, close, reset, drop, after or a command "
                    "(greet ehlo helo mail rcpt data dot rset noop quit unknown)%s",
                    t->text, suggest_hint(&sg, hint, sizeof hint));
}

/* ---- expect blocks ------------------------------------------------------ */

/* check_conn_names - every CONN_ERR/CONN_ACTION name in "A|B|C" is known */
static int check_conn_names(struct parser *p, const char *value, int col)
{
    const char *s = value;
    for (;;) {
        size_t n = strcspn(s, "|");
        char piece[80];
        if (n >= sizeof piece) {
            copy_bounded(piece, sizeof piece, s);
            return fail_at(p, col + (int)(s - value), "unknown name '%s...'", piece);
        }
        memcpy(piece, s, n);
        piece[n] = '\0';
        if (conn_err_from_name(piece) == 0) {
            /* Suggest in the spelling the user chose. */
            const char *prefix = strncmp(piece, "CONN_ERROR_", 11) == 0 ? "CONN_ERROR_" : "CONN_ERR_";
            struct suggestion sg;
            char cand[80], hint[128];
            suggest_begin(&sg, piece);
            for (int c = 1; c <= CONN_ERR__MAX; c++) {
                snprintf(cand, sizeof cand, "%s%s", prefix, conn_err_name(c) + strlen("CONN_ERR_"));
                suggest_offer(&sg, cand);
            }
            suggest_offer(&sg, "CONN_ACTION_REQUEUE1");
            suggest_offer(&sg, "CONN_ACTION_PURGE_DOMAIN");
            return fail_at(p, col + (int)(s - value), "unknown name '%s'%s", piece,
                           suggest_hint(&sg, hint, sizeof hint));
        }
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

/* starts_conn_name - the value is written as CONN_ERR/CONN_ACTION names */
static int starts_conn_name(const char *v)
{
    return strncmp(v, "CONN_ERR_", 9) == 0 || strncmp(v, "CONN_ERROR_", 11) == 0
           || strncmp(v, "CONN_ACTION_", 12) == 0;
}

/* parse_matcher - KEY OP VALUE from one token */
static int parse_matcher(struct parser *p, const struct token *t, struct scn_matcher *m)
{
    static const struct { const char *text; enum scn_op op; } ops[] = {
        /* two-character operators first, so "<=" is not "<" then "=..." */
        { "!=", SCN_OP_NE }, { "<=", SCN_OP_LE }, { ">=", SCN_OP_GE }, { "==", SCN_OP_EQ },
        { "=", SCN_OP_EQ }, { "<", SCN_OP_LT }, { ">", SCN_OP_GT }, { "~", SCN_OP_RE },
    };
    const char *raw = p->line;
    int i = t->start;
    while (i < t->end && (isalnum((unsigned char)raw[i]) || raw[i] == '_' || raw[i] == '.'
                          || raw[i] == '-'))
        i++;
    if (i == t->start || i == t->end)
        return fail_tok(p, t, "bad matcher '%s': expected KEY OP VALUE with OP one of "
                        "= != < <= > >= ~ (e.g. conn_fd>=0)", t->text);
    int op = -1, oplen = 0;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0] && op < 0; k++) {
        size_t n = strlen(ops[k].text);
        if ((size_t)(t->end - i) >= n && strncmp(raw + i, ops[k].text, n) == 0) {
            op = (int)ops[k].op;
            oplen = (int)n;
        }
    }
    if (op < 0)
        return fail_at(p, i + 1, "bad matcher '%s': expected an operator = != < <= > >= or ~ "
                       "after '%.*s'", t->text, i - t->start, raw + t->start);
    int vstart = i + oplen;
    if (vstart == t->end)
        return fail_at(p, vstart + 1, "missing value after '%.*s'", vstart - t->start,
                       raw + t->start);

    m->key = xstrndup(raw + t->start, (size_t)(i - t->start));
    m->op = (enum scn_op)op;
    m->value = extract_text(p, vstart, t->end);
    m->pos = here(p, t->col);
    int value_quoted = raw[vstart] == '"';
    m->is_num = !value_quoted && parse_signed(m->value, &m->num);

    if ((op == SCN_OP_LT || op == SCN_OP_LE || op == SCN_OP_GT || op == SCN_OP_GE) && !m->is_num)
        return fail_at(p, vstart + 1, "'%s' compares numbers, and '%s' is not a whole number",
                       scn_op_str(m->op), m->value);
    if (op == SCN_OP_RE) {
        regex_t re;
        int rc = regcomp(&re, m->value, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[160];
            regerror(rc, &re, why, sizeof why);
            return fail_at(p, vstart + 1, "bad regular expression '%s': %s", m->value, why);
        }
        regfree(&re);
    }
    if ((op == SCN_OP_EQ || op == SCN_OP_NE) && !value_quoted && starts_conn_name(m->value))
        return check_conn_names(p, m->value, vstart + 1);
    return 0;
}

/* hook_known - the generated registry has a hook of this name */
static int hook_known(const char *name)
{
    for (int i = 0; hook_lists[i] != NULL; i++)
        if (strcmp(hook_lists[i]->name, name) == 0)
            return 1;
    return 0;
}

const char *const scn_trace_kinds[] = { "hook", "provider", "smtp", "conn", "queue", "dns", "remote",
                                        "inject", "plugin", "event", "inbound", "mq", "client",
                                        NULL };

/* parse_pattern - HOOK [KEY OP VALUE]... (trace = 0) or KIND NAME
 * [KEY OP VALUE]... (trace = 1) in tokens [from, to), appended to ex */
static int parse_pattern(struct parser *p, struct scn_expect *ex, int from, int to, int trace)
{
    assert(from < to && to <= p->ntok);
    int first = 0;
    const char *kind = "hook";
    if (trace) {
        const struct token *k = &p->tok[from];
        int known = 0;
        for (int i = 0; scn_trace_kinds[i] != NULL; i++)
            if (!k->quoted && strcmp(scn_trace_kinds[i], k->text) == 0)
                known = 1, kind = scn_trace_kinds[i];
        if (!known) {
            struct suggestion sg;
            char hint[128];
            suggest_begin(&sg, k->text);
            for (int i = 0; scn_trace_kinds[i] != NULL; i++)
                suggest_offer(&sg, scn_trace_kinds[i]);
            return fail_tok(p, k, "unknown trace record kind '%s': expected hook, provider, smtp, "
                            "conn, queue, dns, remote, inject, plugin, event, inbound, mq or "
                            "client%s", k->text,
                            suggest_hint(&sg, hint, sizeof hint));
        }
        if (to - from < 2)
            return fail_tok(p, k, "'%s' needs a record name after it (e.g. 'smtp send')", k->text);
        first = 1;
    }
    const struct token *t = &p->tok[from + first];
    int names_hook = strcmp(kind, "hook") == 0 || strcmp(kind, "provider") == 0;
    if (names_hook && (t->quoted || !hook_known(t->text))) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, t->text);
        for (int i = 0; hook_lists[i] != NULL; i++)
            suggest_offer(&sg, hook_lists[i]->name);
        return fail_tok(p, t, "unknown hook '%s'%s", t->text, suggest_hint(&sg, hint, sizeof hint));
    }
    if (to - from - 1 - first > SCN_MAX_MATCHERS)
        return fail_tok(p, &p->tok[from + 1 + first + SCN_MAX_MATCHERS], "too many matchers (at most %d "
                        "on a line)", SCN_MAX_MATCHERS);
    if (p->npatterns_total == SCN_MAX_PATTERNS)
        return fail_tok(p, t, "more than %d hook lines in expectations", SCN_MAX_PATTERNS);

    grow((void **)&ex->patterns, ex->npatterns, sizeof *ex->patterns);
    struct scn_pattern *pt = &ex->patterns[ex->npatterns++];
    p->npatterns_total++;
    memset(pt, 0, sizeof *pt);
    pt->kind = xstrdup(kind);
    pt->name = xstrdup(t->text);
    pt->pos = here(p, p->tok[from].col);
    for (int i = from + first + 1; i < to; i++) {
        /* Count the matcher first: a half-parsed one still owns strings. */
        struct scn_matcher *m = &pt->matchers[pt->nmatchers++];
        if (parse_matcher(p, &p->tok[i], m) < 0)
            return -1;
    }
    return 0;
}

/* hooks_line - one pattern line inside an "expect hooks|trace in order|exactly" block */
static int hooks_line(struct parser *p)
{
    struct scn_expect *ex = &p->sc->expects[p->block_index];
    int trace = ex->kind == SCN_EXPECT_TRACE_IN_ORDER || ex->kind == SCN_EXPECT_TRACE_EXACTLY;
    return parse_pattern(p, ex, 0, p->ntok, trace);
}

/* ---- directives ----------------------------------------------------------- */

/* once - a setting that may appear only once */
static int once(struct parser *p, struct scn_pos *seen, const char *what)
{
    if (seen->line != 0)
        return fail_tok(p, &p->tok[0], "'%s' given twice (first at %s:%d)", what, seen->file,
                        seen->line);
    *seen = here(p, p->tok[0].col);
    return 0;
}

/* do_scenario - scenario NAME */
static int do_scenario(struct parser *p)
{
    if (need_args(p, 2, 2, "scenario NAME") < 0 || once(p, &p->seen_scenario, "scenario") < 0
        || check_name(p, &p->tok[1], "scenario name", "._-/") < 0)
        return -1;
    free(p->sc->name);
    p->sc->name = xstrdup(p->tok[1].text);
    return 0;
}

/* do_description - description "TEXT" (or the rest of the line) */
static int do_description(struct parser *p)
{
    if (need_args(p, 2, -1, "description \"TEXT\"") < 0)
        return -1;
    free(p->sc->description);
    p->sc->description = extract_text(p, p->tok[1].start, p->tok[p->ntok - 1].end);
    return 0;
}

/* do_seed - seed N */
static int do_seed(struct parser *p)
{
    unsigned long long v;
    if (need_args(p, 2, 2, "seed N") < 0 || once(p, &p->seen_seed, "seed") < 0
        || parse_unsigned(p, &p->tok[1], "seed", 0, UINT64_MAX, &v) < 0)
        return -1;
    p->sc->seed = v;
    p->sc->seed_set = 1;
    return 0;
}

/* digits_at - n decimal digits at s as a number; -1 if not all digits */
static int digits_at(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* do_epoch - epoch 2020-03-26T00:00:00Z | epoch 2020-03-26 (UTC) */
static int do_epoch(struct parser *p)
{
    if (need_args(p, 2, 2, "epoch YYYY-MM-DDTHH:MM:SSZ") < 0 || once(p, &p->seen_epoch, "epoch") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    const char *s = t->text;
    size_t n = strlen(s);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int ok = !t->quoted && (n == 10 || n == 20) && s[4] == '-' && s[7] == '-';
    int year = ok ? digits_at(s, 4) : -1, mon = ok ? digits_at(s + 5, 2) : -1;
    int day = ok ? digits_at(s + 8, 2) : -1, hour = 0, min = 0, sec = 0;
    if (ok && n == 20) {
        ok = s[10] == 'T' && s[13] == ':' && s[16] == ':' && s[19] == 'Z';
        hour = digits_at(s + 11, 2);
        min = digits_at(s + 14, 2);
        sec = digits_at(s + 17, 2);
    }
    ok = ok && year >= 1970 && year <= 9999 && mon >= 1 && mon <= 12 && day >= 1 && day <= 31
         && hour >= 0 && hour <= 23 && min >= 0 && min <= 59 && sec >= 0 && sec <= 59;
    time_t when = 0;
    if (ok) {
        tm.tm_year = year - 1900;
        tm.tm_mon = mon - 1;
        tm.tm_mday = day;
        tm.tm_hour = hour;
        tm.tm_min = min;
        tm.tm_sec = sec;
        when = timegm(&tm);
        /* timegm normalizes 2020-02-30 into March; a round trip catches it. */
        struct tm back;
        ok = when != (time_t)-1 && gmtime_r(&when, &back) != NULL && back.tm_mday == day
             && back.tm_mon == mon - 1;
    }
    if (!ok)
        return fail_tok(p, t, "bad epoch '%s': expected a UTC time like 2020-03-26T00:00:00Z "
                        "or a date like 2020-03-26", s);
    p->sc->epoch = (mta_usec_t)when * USEC_S;
    return 0;
}

/* do_run - run for DUR */
static int do_run(struct parser *p)
{
    if (p->ntok >= 2 && !is_word(&p->tok[1], "for"))
        return fail_tok(p, &p->tok[1], "unexpected '%s': expected 'run for DURATION'", p->tok[1].text);
    if (need_args(p, 3, 3, "run for DURATION") < 0)
        return -1;
    if (once(p, &p->seen_run, "run for") < 0)
        return -1;
    return parse_duration(p, &p->tok[2], &p->sc->run_for);
}

/* do_liveness - liveness storm N/DURATION | liveness storm off (liveness.h) */
static int do_liveness(struct parser *p)
{
    const char *usage = "liveness storm COUNT/DURATION | liveness storm off";
    if (need_args(p, 3, 3, usage) < 0)
        return -1;
    if (!is_word(&p->tok[1], "storm"))
        return fail_tok(p, &p->tok[1], "unknown liveness check '%s': expected '%s'",
                        p->tok[1].text, usage);
    const struct token *t = &p->tok[2];
    if (is_word(t, "off")) {
        p->sc->storm_count = 0;
        return 0;
    }
    const char *slash = t->quoted ? NULL : strchr(t->text, '/');
    unsigned long long n = 0;
    int ok = slash != NULL && slash > t->text;
    for (const char *c = t->text; ok && c < slash; c++) {
        ok = isdigit((unsigned char)*c) && n < 1000000;
        n = n * 10 + (unsigned long long)(*c - '0');
    }
    mta_usec_t window = ok ? mta_parse_duration(slash + 1) : -1;
    if (!ok || n < 1 || n > 1000000 || window <= 0)
        return fail_tok(p, t, "bad storm limit '%s': expected COUNT/DURATION like 100/1m "
                        "(COUNT from 1 to 1000000), or off", t->text);
    p->sc->storm_count = (int)n;
    p->sc->storm_window = window;
    return 0;
}

/* do_config - config KEY VALUE, through mta_config_set */
static int do_config(struct parser *p)
{
    if (need_args(p, 3, 3, "config KEY VALUE") < 0)
        return -1;
    const struct token *key = &p->tok[1], *value = &p->tok[2];
    int known = 0;
    for (int i = 0; mta_config_keys[i] != NULL; i++)
        known |= strcasecmp(mta_config_keys[i], key->text) == 0;
    char why[256];
    if (mta_config_set(&p->sc->config, key->text, value->text, why, sizeof why) < 0)
        return fail_tok(p, known ? value : key, "%s", why);
    return 0;
}

/* dns_setting - dns latency DUR | dns timeout DUR | dns jitter DUR */
static int dns_setting(struct parser *p)
{
    int latency = is_word(&p->tok[1], "latency"), jitter = is_word(&p->tok[1], "jitter");
    if (need_args(p, 3, 3, latency ? "dns latency DURATION" : jitter ? "dns jitter DURATION"
                                   : "dns timeout DURATION") < 0)
        return -1;
    return parse_duration(p, &p->tok[2], latency ? &p->sc->dns_latency
                                         : jitter ? &p->sc->dns_jitter : &p->sc->dns_timeout);
}

/* dns_name_latency - dns NAME latency DUR: how long answers about NAME take */
static int dns_name_latency(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    struct scn_dns d;
    if (need_args(p, 4, 4, "dns NAME latency DURATION") < 0
        || check_domain(p, &p->tok[1], "name") < 0)
        return -1;
    if (sc->ndns == SCN_MAX_DNS)
        return fail_tok(p, &p->tok[0], "more than %d dns lines", SCN_MAX_DNS);
    memset(&d, 0, sizeof d);
    d.kind = SCN_DNS_LATENCY;
    if (parse_duration(p, &p->tok[3], &d.latency) < 0)
        return -1;
    d.name = xstrdup(p->tok[1].text);
    d.pos = here(p, p->tok[0].col);
    grow((void **)&sc->dns, sc->ndns, sizeof *sc->dns);
    sc->dns[sc->ndns++] = d;
    return 0;
}

/* do_dns - a DNS record or answer, or a resolver setting */
static int do_dns(struct parser *p)
{
    static const struct { const char *name; enum scn_dns_kind kind; int nargs; const char *usage; }
    kinds[] = {
        { "MX", SCN_DNS_MX, 2, "dns NAME MX PREF HOST [ttl N]" },
        { "A", SCN_DNS_A, 1, "dns NAME A ADDR [ttl N]" },
        { "CNAME", SCN_DNS_CNAME, 1, "dns NAME CNAME TARGET [ttl N]" },
        { "NXDOMAIN", SCN_DNS_NXDOMAIN, 0, "dns NAME NXDOMAIN [ttl N]" },
        { "SERVFAIL", SCN_DNS_SERVFAIL, 0, "dns NAME SERVFAIL [ttl N]" },
        { "TIMEOUT", SCN_DNS_TIMEOUT, 0, "dns NAME TIMEOUT [ttl N]" },
        { "NODATA", SCN_DNS_NODATA, 0, "dns NAME NODATA [ttl N]" },
    };
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 3, -1, "dns NAME TYPE ...") < 0)
        return -1;
    if (p->ntok == 3 && (is_word(&p->tok[1], "latency") || is_word(&p->tok[1], "timeout")
                         || is_word(&p->tok[1], "jitter")))
        return dns_setting(p);
    if (is_word(&p->tok[2], "latency"))
        return dns_name_latency(p);
    int k = -1;
    for (int i = 0; i < (int)(sizeof kinds / sizeof kinds[0]); i++)
        if (is_word(&p->tok[2], kinds[i].name))
            k = i;
    if (k < 0) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, p->tok[2].text);
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
            suggest_offer(&sg, kinds[i].name);
        return fail_tok(p, &p->tok[2], "unknown DNS type '%s': expected MX, A, CNAME, NXDOMAIN, "
                        "SERVFAIL, TIMEOUT, NODATA or latency%s", p->tok[2].text,
                        suggest_hint(&sg, hint, sizeof hint));
    }
    int base = 3 + kinds[k].nargs;      /* where "ttl" may start */
    if (need_args(p, base, base + 2, kinds[k].usage) < 0 || check_domain(p, &p->tok[1], "name") < 0)
        return -1;
    if (sc->ndns == SCN_MAX_DNS)
        return fail_tok(p, &p->tok[0], "more than %d dns lines", SCN_MAX_DNS);

    struct scn_dns d;
    memset(&d, 0, sizeof d);
    d.kind = kinds[k].kind;
    d.ttl = 3600;
    if (d.kind == SCN_DNS_MX) {
        unsigned long long pref;
        if (parse_unsigned(p, &p->tok[3], "MX preference", 0, 65535, &pref) < 0)
            return -1;
        d.pref = (uint16_t)pref;
        if (is_word(&p->tok[4], ".")) {
            if (pref != 0)
                return fail_tok(p, &p->tok[3], "a null MX (host '.') has preference 0, not %llu", pref);
        } else if (check_domain(p, &p->tok[4], "MX host") < 0) {
            return -1;
        }
    } else if (d.kind == SCN_DNS_A) {
        if (parse_ipv4(p, &p->tok[3], &d.addr) < 0)
            return -1;
    } else if (d.kind == SCN_DNS_CNAME) {
        if (check_domain(p, &p->tok[3], "CNAME target") < 0)
            return -1;
    }
    if (p->ntok > base) {
        if (!is_word(&p->tok[base], "ttl"))
            return fail_tok(p, &p->tok[base], "unexpected '%s': expected '%s'", p->tok[base].text,
                            kinds[k].usage);
        unsigned long long ttl;
        if (need_args(p, base + 2, base + 2, kinds[k].usage) < 0
            || parse_unsigned(p, &p->tok[base + 1], "ttl", 0, UINT32_MAX, &ttl) < 0)
            return -1;
        d.ttl = (uint32_t)ttl;
    }
    d.name = xstrdup(p->tok[1].text);
    if (d.kind == SCN_DNS_MX)
        d.target = xstrdup(p->tok[4].text);
    else if (d.kind == SCN_DNS_CNAME)
        d.target = xstrdup(p->tok[3].text);
    d.pos = here(p, p->tok[0].col);
    grow((void **)&sc->dns, sc->ndns, sizeof *sc->dns);
    sc->dns[sc->ndns++] = d;
    return 0;
}

/* network_link - network link SRC DST [latency D] [jitter D] [bandwidth B] [segment N] */
static int network_link(struct parser *p)
{
    const char *usage = "network link SRC DST [latency DURATION] [jitter DURATION] "
                        "[bandwidth RATE] [segment N]";
    struct scn_scenario *sc = p->sc;
    struct scn_link l;
    memset(&l, 0, sizeof l);
    l.latency = l.jitter = -1;
    l.bandwidth = UINT64_MAX;
    l.segment = -1;
    if (need_args(p, 6, 12, usage) < 0 || parse_ipv4(p, &p->tok[2], &l.src) < 0
        || parse_ipv4(p, &p->tok[3], &l.dst) < 0)
        return -1;
    for (int i = 4; i < p->ntok; i += 2) {
        const struct token *key = &p->tok[i];
        if (i + 1 == p->ntok)
            return fail_at(p, after_last(p), "missing value after '%s'", key->text);
        unsigned long long seg;
        int rc = is_word(key, "latency") ? parse_duration(p, &p->tok[i + 1], &l.latency)
               : is_word(key, "jitter") ? parse_duration(p, &p->tok[i + 1], &l.jitter)
               : is_word(key, "bandwidth") ? parse_rate(p, &p->tok[i + 1], &l.bandwidth)
               : is_word(key, "segment") ? parse_unsigned(p, &p->tok[i + 1], "segment", 1,
                                                           1 << 24, &seg)
               : fail_tok(p, key, "unexpected '%s': expected '%s'", key->text, usage);
        if (rc < 0)
            return -1;
        if (is_word(key, "segment"))
            l.segment = (long)seg;
    }
    for (int i = 0; i < sc->nlinks; i++)
        if (sc->links[i].src == l.src && sc->links[i].dst == l.dst)
            return fail_tok(p, &p->tok[2], "link %s %s already declared at %s:%d", p->tok[2].text,
                            p->tok[3].text, sc->links[i].pos.file, sc->links[i].pos.line);
    if (sc->nlinks == SCN_MAX_REMOTES)
        return fail_tok(p, &p->tok[0], "more than %d links", SCN_MAX_REMOTES);
    l.pos = here(p, p->tok[0].col);
    grow((void **)&sc->links, sc->nlinks, sizeof *sc->links);
    sc->links[sc->nlinks++] = l;
    return 0;
}

/* do_network - network max_fds N | network link ... */
static int do_network(struct parser *p)
{
    const char *usage = "network max_fds N | network link SRC DST ...";
    if (need_args(p, 2, -1, usage) < 0)
        return -1;
    if (is_word(&p->tok[1], "link"))
        return network_link(p);
    if (!is_word(&p->tok[1], "max_fds"))
        return fail_tok(p, &p->tok[1], "unknown network setting '%s': expected max_fds or link",
                        p->tok[1].text);
    unsigned long long n;
    if (need_args(p, 3, 3, "network max_fds N") < 0
        || parse_unsigned(p, &p->tok[2], "descriptor count", 1, 65535, &n) < 0)
        return -1;
    p->sc->max_fds = (int)n;
    return 0;
}

/* do_binding - binding NAME ADDR [ehlo HOSTNAME]; "default" may be redefined */
static int do_binding(struct parser *p)
{
    const char *usage = "binding NAME ADDR [ehlo HOSTNAME] [unavailable]";
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 3, 6, usage) < 0 || check_name(p, &p->tok[1], "binding name", "._-") < 0)
        return -1;
    uint32_t addr = 0;      /* set by parse_ipv4; -O3 cannot see it */
    if (parse_ipv4(p, &p->tok[2], &addr) < 0)
        return -1;
    const char *ehlo = NULL;
    int unavailable = 0;
    for (int i = 3; i < p->ntok; i++) {
        if (is_word(&p->tok[i], "ehlo") && ehlo == NULL) {
            if (i + 1 >= p->ntok)
                return need_args(p, i + 2, i + 2, usage);
            if (check_domain(p, &p->tok[i + 1], "EHLO name") < 0)
                return -1;
            ehlo = p->tok[++i].text;
        } else if (is_word(&p->tok[i], "unavailable") && !unavailable) {
            unavailable = 1;
        } else {
            return fail_tok(p, &p->tok[i], "unexpected '%s': expected '%s'", p->tok[i].text, usage);
        }
    }
    int slot = -1;
    for (int i = 0; i < sc->nbindings; i++)
        if (strcmp(sc->bindings[i].name, p->tok[1].text) == 0)
            slot = i;
    if (slot >= 0 && strcmp(p->tok[1].text, "default") != 0)
        return fail_tok(p, &p->tok[1], "binding '%s' already declared at %s:%d", p->tok[1].text,
                        sc->bindings[slot].pos.file, sc->bindings[slot].pos.line);
    if (slot < 0) {
        if (sc->nbindings == SCN_MAX_BINDINGS)
            return fail_tok(p, &p->tok[0], "more than %d bindings", SCN_MAX_BINDINGS);
        grow((void **)&sc->bindings, sc->nbindings, sizeof *sc->bindings);
        slot = sc->nbindings++;
    }
    struct scn_binding *b = &sc->bindings[slot];
    free(b->name);
    free(b->ehlo);
    b->name = xstrdup(p->tok[1].text);
    b->addr = addr;
    b->ehlo = ehlo ? xstrdup(ehlo) : NULL;
    b->unavailable = unavailable;
    b->pos = here(p, p->tok[0].col);
    return 0;
}

/* do_remote - remote ADDR [name HOST], opening a block */
static int do_remote(struct parser *p)
{
    const char *usage = "remote ADDR [name HOST]";
    struct scn_scenario *sc = p->sc;
    uint32_t addr = 0;      /* set by parse_ipv4; -O3 cannot see it */
    if (need_args(p, 2, 4, usage) < 0 || parse_ipv4(p, &p->tok[1], &addr) < 0)
        return -1;
    if (p->ntok > 2) {
        if (!is_word(&p->tok[2], "name"))
            return fail_tok(p, &p->tok[2], "unexpected '%s': expected '%s'", p->tok[2].text, usage);
        if (need_args(p, 4, 4, usage) < 0 || check_domain(p, &p->tok[3], "remote name") < 0)
            return -1;
    }
    for (int i = 0; i < sc->nremotes; i++)
        if (sc->remotes[i].addr == addr)
            return fail_tok(p, &p->tok[1], "remote %s already declared at %s:%d", p->tok[1].text,
                            sc->remotes[i].pos.file, sc->remotes[i].pos.line);
    if (sc->nremotes == SCN_MAX_REMOTES)
        return fail_tok(p, &p->tok[0], "more than %d remotes", SCN_MAX_REMOTES);
    grow((void **)&sc->remotes, sc->nremotes, sizeof *sc->remotes);
    struct scn_remote *rm = &sc->remotes[sc->nremotes];
    memset(rm, 0, sizeof *rm);
    rm->addr = addr;
    rm->name = p->ntok > 2 ? xstrdup(p->tok[3].text) : NULL;
    rm->connect = SCN_CONNECT_ACCEPT;
    rm->latency = 1 * USEC_MS;
    rm->pos = here(p, p->tok[0].col);
    p->block = BLOCK_REMOTE;
    p->block_index = sc->nremotes++;
    return 0;
}

/* check_mailbox - "<local@domain>" (rcpt) or any "<...>" (sender) */
static int check_mailbox(const char *s, size_t n, int need_domain)
{
    if (n < 2 || s[0] != '<' || s[n - 1] != '>')
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (s[i] == '<' || s[i] == '>' || s[i] == ',' || (unsigned char)s[i] < 0x21)
            return 0;
    if (!need_domain)
        return 1;
    /* The domain follows the last '@'; both sides must be non-empty. */
    const char *at = NULL;
    for (size_t i = 1; i + 1 < n; i++)
        if (s[i] == '@')
            at = s + i;
    return at != NULL && at > s + 1 && at < s + n - 2;
}

/* inject_rcpts - the recipient tokens [a, b): addresses separated by
 * commas and/or blanks */
static int inject_rcpts(struct parser *p, struct scn_inject *in, int a, int b)
{
    for (int i = a; i < b; i++) {
        const struct token *t = &p->tok[i];
        if (t->quoted)
            return fail_tok(p, t, "bad recipient '%s': write addresses as <local@domain>, "
                            "without quotes", t->text);
        const char *s = t->text;
        size_t len = strlen(s);
        for (size_t off = 0; off <= len;) {
            size_t n = strcspn(s + off, ",");
            int edge = off == 0 || off + n == len;   /* next to a blank: "a, b" */
            if (n == 0 && !edge)
                return fail_at(p, t->col + (int)off, "empty recipient between commas");
            if (n > 0) {
                if (!check_mailbox(s + off, n, 1))
                    return fail_at(p, t->col + (int)off, "bad recipient '%.*s': expected "
                                   "<local@domain>", (int)n, s + off);
                grow((void **)&in->rcpts, in->nrcpts, sizeof *in->rcpts);
                in->rcpts[in->nrcpts++] = xstrndup(s + off + 1, n - 2);
            }
            off += n + 1;
        }
    }
    if (in->nrcpts == 0)
        return fail_at(p, p->tok[a - 1].end + 1, "missing recipient: expected 'to <local@domain>'");
    return 0;
}

/* read_relative - the file t names, relative to the file naming it
 * (malloc'd, *len bytes); NULL after an error "cannot read WHAT file" */
static char *read_relative(struct parser *p, const struct token *t, const char *what, size_t *len)
{
    char *path = relative_to(p->file, t->text);
    char why[128];
    char *body = read_bounded(path, len, why, sizeof why);
    if (body == NULL)
        fail_tok(p, t, "cannot read %s file '%s': %s", what, path, why);
    free(path);
    return body;
}

/* inject_body_file - body-file PATH, relative to the file naming it */
static int inject_body_file(struct parser *p, struct scn_inject *in, const struct token *t)
{
    size_t len = 0;
    char *body = read_relative(p, t, "body", &len);
    if (body == NULL)
        return -1;
    in->body = body;
    in->body_len = len;
    return 0;
}

/* dsn_notify_ok - NEVER, or a comma list of SUCCESS, FAILURE, DELAY (RFC 3461 4.1) */
static int dsn_notify_ok(const char *v)
{
    if (strcasecmp(v, "NEVER") == 0)
        return 1;
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (!((n == 7 && strncasecmp(p, "SUCCESS", 7) == 0) ||
              (n == 7 && strncasecmp(p, "FAILURE", 7) == 0) ||
              (n == 5 && strncasecmp(p, "DELAY", 5) == 0)))
            return 0;
        p += n;
        if (*p == ',' && *++p == '\0')
            return 0;
    }
    return *v != '\0';
}

static char *upper_dup(const char *s)
{
    char *u = xstrdup(s);
    for (char *q = u; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    return u;
}

/* do_inject - inject ID from <A> to <B>[,<C>...] [at DUR] [binding NAME] [body|body-file|size] [notify|ret|envid] */
static int do_inject(struct parser *p)
{
    const char *usage = "inject ID from <ADDR> to <ADDR>[,<ADDR>...] [at DURATION] "
                        "[binding NAME] [body \"TEXT\" | body-file PATH | size N] "
                        "[notify SUCCESS,FAILURE,DELAY|NEVER] [ret FULL|HDRS] [envid TEXT] "
                        "[chunking] [deliver-by DURATION]";
    enum { NOPTIONS = 10, OPT_CHUNKING = 8 };
    static const char *const options[NOPTIONS] = { "at", "binding", "body", "body-file", "size",
                                                   "notify", "ret", "envid", "chunking",
                                                   "deliver-by" };
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 6, -1, usage) < 0)
        return -1;
    unsigned long long id;
    /* Ids above MTA_DSN_ID_BASE are the DSNs the core makes (docs/queue.md). */
    if (parse_unsigned(p, &p->tok[1], "message id", 1, MTA_DSN_ID_BASE, &id) < 0)
        return -1;
    for (int i = 0; i < sc->ninjects; i++)
        if (sc->injects[i].id == id)
            return fail_tok(p, &p->tok[1], "message %llu already injected at %s:%d", id,
                            sc->injects[i].pos.file, sc->injects[i].pos.line);
    if (!is_word(&p->tok[2], "from"))
        return fail_tok(p, &p->tok[2], "unexpected '%s': expected 'from <ADDR>'", p->tok[2].text);
    const struct token *from = &p->tok[3];
    if (from->quoted || !check_mailbox(from->text, strlen(from->text), 0))
        return fail_tok(p, from, "bad sender '%s': expected <local@domain> or <> for the null "
                        "sender", from->text);
    if (!is_word(&p->tok[4], "to"))
        return fail_tok(p, &p->tok[4], "unexpected '%s': expected 'to <ADDR>'", p->tok[4].text);
    if (sc->ninjects == SCN_MAX_INJECTS)
        return fail_tok(p, &p->tok[0], "more than %d injects", SCN_MAX_INJECTS);

    /* The recipients: tokens that start with '<' or ',', or follow one
     * that ends with ','.  The first token after "to" is one regardless,
     * so "to bob@example.com" is a bad recipient, not an unknown option. */
    int rcpt_end = 6;
    while (rcpt_end < p->ntok) {
        const char *prev = p->tok[rcpt_end - 1].text, *cur = p->tok[rcpt_end].text;
        size_t plen = strlen(prev);
        if (cur[0] != '<' && cur[0] != ',' && (plen == 0 || prev[plen - 1] != ','))
            break;
        rcpt_end++;
    }

    /* From here on the inject is in the scenario, so an error frees it. */
    grow((void **)&sc->injects, sc->ninjects, sizeof *sc->injects);
    struct scn_inject *in = &sc->injects[sc->ninjects++];
    memset(in, 0, sizeof *in);
    in->id = (unsigned long)id;
    in->from = xstrndup(from->text + 1, strlen(from->text) - 2);
    in->size = -1;
    in->pos = here(p, p->tok[0].col);
    if (inject_rcpts(p, in, 5, rcpt_end) < 0)
        return -1;

    int seen[NOPTIONS] = { 0 };
    const struct token *body_choice = NULL;
    for (int i = rcpt_end; i < p->ntok; i += 2) {
        const struct token *t = &p->tok[i];
        int k = -1;
        for (int j = 0; j < NOPTIONS; j++)
            if (is_word(t, options[j]))
                k = j;
        if (k < 0) {
            struct suggestion sg;
            char hint[128];
            suggest_begin(&sg, t->text);
            for (int j = 0; j < NOPTIONS; j++)
                suggest_offer(&sg, options[j]);
            return fail_tok(p, t, "unexpected '%s': expected at, binding, body, body-file, "
                            "size, notify, ret, envid, chunking or deliver-by%s", t->text,
                            suggest_hint(&sg, hint, sizeof hint));
        }
        if (seen[k]++)
            return fail_tok(p, t, "'%s' given twice", options[k]);
        if (k == OPT_CHUNKING) {        /* a flag: no value follows */
            in->chunking = 1;
            i--;
            continue;
        }
        if (k >= 2 && k <= 4) {
            if (body_choice != NULL)
                return fail_tok(p, t, "'%s' and '%s' exclude each other: give one body",
                                body_choice->text, t->text);
            body_choice = t;
        }
        if (i + 1 >= p->ntok)
            return fail_at(p, t->end + 1, "missing value after '%s'", t->text);
        const struct token *v = &p->tok[i + 1];
        unsigned long long size;
        switch (k) {
        case 0:
            if (parse_duration(p, v, &in->at) < 0)
                return -1;
            break;
        case 1:
            if (check_name(p, v, "binding name", "._-") < 0)
                return -1;
            in->binding = xstrdup(v->text);
            add_ref(p, REF_BINDING, sc->ninjects - 1, here(p, v->col));
            break;
        case 2:
            in->body = xstrdup(v->text);
            in->body_len = strlen(v->text);
            break;
        case 3:
            if (inject_body_file(p, in, v) < 0)
                return -1;
            break;
        case 4:
            if (parse_unsigned(p, v, "size", 0, SCN_MAX_FILE_SIZE, &size) < 0)
                return -1;
            in->size = (long)size;
            break;
        case 5:
            if (!dsn_notify_ok(v->text))
                return fail_tok(p, v, "bad notify '%s': expected NEVER or a comma list of "
                                "SUCCESS, FAILURE and DELAY", v->text);
            in->dsn_notify = upper_dup(v->text);
            break;
        case 6:
            if (strcasecmp(v->text, "FULL") != 0 && strcasecmp(v->text, "HDRS") != 0)
                return fail_tok(p, v, "bad ret '%s': expected FULL or HDRS", v->text);
            in->dsn_ret = upper_dup(v->text);
            break;
        case 7:
            /* RFC 3461 4.4: at most 100 characters of printable US-ASCII. */
            if (v->text[0] == '\0' || strlen(v->text) > 100)
                return fail_tok(p, v, "bad envid: expected 1 to 100 characters");
            for (const char *c = v->text; *c; c++)
                if ((unsigned char)*c < 32 || (unsigned char)*c > 126)
                    return fail_tok(p, v, "bad envid: printable US-ASCII only");
            in->dsn_envid = xstrdup(v->text);
            break;
        case 9:
            if (parse_duration(p, v, &in->deliver_by) < 0)
                return -1;
            if (in->deliver_by < 1000000 || in->deliver_by % 1000000 != 0)
                return fail_tok(p, v, "deliver-by takes whole seconds, at least 1s");
            break;
        }
    }
    return 0;
}

/* do_include - include PATH: read another file in place */
static int parse_buffer(struct parser *p, const char *buf, size_t len);
static int do_include(struct parser *p)
{
    if (need_args(p, 2, 2, "include PATH") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    if (t->text[0] == '\0' || strlen(t->text) > SCN_MAX_PATH)
        return fail_tok(p, t, "bad include path '%s'", t->text);
    if (p->depth + 1 > SCN_MAX_INCLUDE_DEPTH)
        return fail_tok(p, t, "includes nested more than %d deep", SCN_MAX_INCLUDE_DEPTH);
    char *path = relative_to(p->file, t->text);
    char *real = realpath(path, NULL);
    if (real == NULL) {
        fail_tok(p, t, "cannot include '%s': %s", path, strerror(errno));
        free(path);
        return -1;
    }
    for (int i = 0; i <= p->depth; i++)
        if (p->real[i] != NULL && strcmp(p->real[i], real) == 0) {
            fail_tok(p, t, "include cycle: '%s' is already being read", path);
            free(path);
            free(real);
            return -1;
        }
    char why[128];
    size_t len = 0;
    char *buf = read_bounded(path, &len, why, sizeof why);
    if (buf == NULL) {
        fail_tok(p, t, "cannot include '%s': %s", path, why);
        free(path);
        free(real);
        return -1;
    }

    /* The included file is read with its own name and line numbers; the
     * directive closed any open block, so there is no state to carry. */
    assert(p->block == BLOCK_NONE && !p->has_pending);
    const char *saved_file = p->file;
    int saved_line = p->lineno;
    p->depth++;
    p->real[p->depth] = real;
    p->file = intern_file(p->sc, path);
    p->lineno = 0;
    int rc = parse_buffer(p, buf, len);
    p->real[p->depth] = NULL;
    p->depth--;
    p->file = saved_file;
    p->lineno = saved_line;
    free(real);
    free(buf);
    free(path);
    return rc;
}

/* expect_scope - "for domain D | for message N | for conn N" in tokens [a, ntok) */
static int expect_scope(struct parser *p, int a, struct scn_expect *ex)
{
    static const struct { const char *word, *key; } scopes[] = {
        { "domain", "domain" }, { "message", "msg" }, { "conn", "conn" },
    };
    const char *usage = "for domain NAME | for message ID | for conn FD";
    if (!is_word(&p->tok[a], "for"))
        return fail_tok(p, &p->tok[a], "unexpected '%s': expected '%s'", p->tok[a].text, usage);
    if (need_args(p, a + 3, a + 3, usage) < 0)
        return -1;
    const struct token *what = &p->tok[a + 1], *value = &p->tok[a + 2];
    const char *key = NULL;
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (is_word(what, scopes[i].word))
            key = scopes[i].key;
    if (key == NULL) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, what->text);
        for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
            suggest_offer(&sg, scopes[i].word);
        return fail_tok(p, what, "unknown scope '%s': expected domain, message or conn%s",
                        what->text, suggest_hint(&sg, hint, sizeof hint));
    }
    unsigned long long n;
    if (strcmp(key, "domain") == 0 ? check_domain(p, value, "domain") < 0
                                   : parse_unsigned(p, value, what->text, 0, LONG_MAX, &n) < 0)
        return -1;
    ex->scope.key = xstrdup(key);
    ex->scope.value = xstrdup(value->text);
    ex->scope.pos = here(p, what->col);
    return 0;
}

/* expect_block_header - "in order | exactly [for ...]" after "expect hooks|trace" */
static int expect_block_header(struct parser *p, struct scn_expect *ex, int trace)
{
    const char *usage = trace ? "expect trace in order|exactly [for domain|message|conn VALUE]"
                              : "expect hooks in order|exactly [for domain|message|conn VALUE]";
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int next;
    if (is_word(&p->tok[2], "exactly")) {
        ex->kind = trace ? SCN_EXPECT_TRACE_EXACTLY : SCN_EXPECT_HOOKS_EXACTLY;
        next = 3;
    } else if (is_word(&p->tok[2], "in")) {
        if (need_args(p, 4, -1, usage) < 0)
            return -1;
        if (!is_word(&p->tok[3], "order"))
            return fail_tok(p, &p->tok[3], "unexpected '%s': expected '%s'", p->tok[3].text, usage);
        ex->kind = trace ? SCN_EXPECT_TRACE_IN_ORDER : SCN_EXPECT_HOOKS_IN_ORDER;
        next = 4;
    } else {
        return fail_tok(p, &p->tok[2], "unexpected '%s': expected '%s'", p->tok[2].text, usage);
    }
    return next < p->ntok ? expect_scope(p, next, ex) : 0;
}

/* expect_never_or_count - "expect never [trace KIND] NAME [matchers]" or
 * "expect count [trace KIND] NAME [matchers] OP N": one line, one pattern */
static int expect_never_or_count(struct parser *p, struct scn_expect *ex)
{
    int count = is_word(&p->tok[1], "count");
    const char *usage = count ? "expect count [trace KIND] NAME [KEY OP VALUE]... OP N"
                              : "expect never [trace KIND] NAME [KEY OP VALUE]...";
    if (need_args(p, 3, -1, usage) < 0)
        return -1;
    int from = 2, trace = is_word(&p->tok[2], "trace");
    if (trace)
        from = 3;
    int to = p->ntok;
    ex->kind = count ? SCN_EXPECT_COUNT : SCN_EXPECT_NEVER;
    if (count) {
        /* The comparison is the last two tokens: "= 2", ">= 1". */
        if (p->ntok < from + 3)
            return fail_at(p, after_last(p), "missing comparison: expected '%s'", usage);
        const struct token *op = &p->tok[p->ntok - 2], *n = &p->tok[p->ntok - 1];
        int o = op->quoted ? -1 : parse_op(op->text);
        if (o < 0)
            return fail_tok(p, op, "expected a comparison = != < <= > >= before the count, "
                            "not '%s' (e.g. 'expect count log_delivery_v1 = 2')", op->text);
        unsigned long long v;
        if (parse_unsigned(p, n, "count", 0, 1000000000ULL, &v) < 0)
            return -1;
        ex->count_op = (enum scn_op)o;
        ex->count_n = (int64_t)v;
        to = p->ntok - 2;
    }
    if (from >= to)
        return fail_at(p, after_last(p), "missing argument: expected '%s'", usage);
    return parse_pattern(p, ex, from, to, trace);
}

/* expect_dsn - expect [no] dsn for message ID [status S] [rcpt ADDR] */
static int expect_dsn(struct parser *p, struct scn_expect *ex)
{
    struct scn_scenario *sc = p->sc;
    int none = is_word(&p->tok[1], "no");
    int at = none ? 3 : 2;      /* the word "for" */
    const char *usage = none ? "expect no dsn for message ID"
                             : "expect dsn for message ID [status S] [rcpt ADDR]";
    if (need_args(p, at + 3, none ? at + 3 : at + 7, usage) < 0)
        return -1;
    if (!is_word(&p->tok[at], "for") || !is_word(&p->tok[at + 1], "message"))
        return fail_tok(p, &p->tok[is_word(&p->tok[at], "for") ? at + 1 : at],
                        "unexpected '%s': expected '%s'",
                        p->tok[is_word(&p->tok[at], "for") ? at + 1 : at].text, usage);
    unsigned long long id;
    if (parse_unsigned(p, &p->tok[at + 2], "message id", 1, ULONG_MAX, &id) < 0)
        return -1;
    ex->kind = SCN_EXPECT_DSN;
    ex->msg_id = (unsigned long)id;
    ex->dsn_none = none;
    for (int i = at + 3; i < p->ntok; i += 2) {
        const struct token *k = &p->tok[i];
        int status = is_word(k, "status"), rcpt = is_word(k, "rcpt");
        if ((!status && !rcpt) || (status && ex->dsn_status) || (rcpt && ex->dsn_rcpt))
            return fail_tok(p, k, "unexpected '%s': expected '%s'", k->text, usage);
        if (i + 1 >= p->ntok)
            return fail_at(p, after_last(p), "missing %s after '%s': expected '%s'",
                           status ? "a status like 5.1.1" : "an address", k->text, usage);
        const struct token *v = &p->tok[i + 1];
        if (status && !dsn_status_valid(v->text))
            return fail_tok(p, v, "bad status '%s': expected an RFC 3463 status CLASS.SUBJECT.DETAIL "
                            "with class 2, 4 or 5 (e.g. 5.1.1)", v->text);
        if (rcpt && (strchr(v->text, '@') == NULL || strpbrk(v->text, "<> ") != NULL))
            return fail_tok(p, v, "bad address '%s': expected local@domain, without <>", v->text);
        if (status)
            ex->dsn_status = xstrdup(v->text);
        else
            ex->dsn_rcpt = xstrdup(v->text);
    }
    add_ref(p, REF_MESSAGE, (int)(ex - sc->expects), here(p, p->tok[at + 2].col));
    return 0;
}

/* do_expect - expect hooks in order (a block) | expect message ID FATE [within DUR] */
static int do_expect(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 2, -1, "expect hooks in order | expect message ID FATE") < 0)
        return -1;
    const struct token *what = &p->tok[1];
    if (is_word(what, "dsn") || (is_word(what, "no") && p->ntok > 2 && is_word(&p->tok[2], "dsn"))) {
        if (sc->nexpects == SCN_MAX_EXPECTS)
            return fail_tok(p, &p->tok[0], "more than %d expectations", SCN_MAX_EXPECTS);
        grow((void **)&sc->expects, sc->nexpects, sizeof *sc->expects);
        struct scn_expect *stored = &sc->expects[sc->nexpects++];
        memset(stored, 0, sizeof *stored);
        stored->pos = here(p, p->tok[0].col);
        stored->within = -1;
        return expect_dsn(p, stored);
    }
    int trace = is_word(what, "trace");
    int hooks = is_word(what, "hooks") || trace, about_message = is_word(what, "message");
    int one_line = is_word(what, "never") || is_word(what, "count");
    if (!hooks && !about_message && !one_line) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, what->text);
        suggest_offer(&sg, "hooks");
        suggest_offer(&sg, "trace");
        suggest_offer(&sg, "message");
        suggest_offer(&sg, "never");
        suggest_offer(&sg, "count");
        suggest_offer(&sg, "dsn");
        return fail_tok(p, what, "unknown expectation '%s': expected 'expect hooks|trace in "
                        "order|exactly', 'expect never', 'expect count', 'expect message ID "
                        "FATE' or 'expect [no] dsn for message ID'%s", what->text,
                        suggest_hint(&sg, hint, sizeof hint));
    }
    if (sc->nexpects == SCN_MAX_EXPECTS)
        return fail_tok(p, &p->tok[0], "more than %d expectations", SCN_MAX_EXPECTS);

    struct scn_expect ex;
    memset(&ex, 0, sizeof ex);
    ex.pos = here(p, p->tok[0].col);
    ex.within = -1;
    if (one_line || hooks) {
        /* Stored before parsing: the strings a failed parse leaves in ex
         * are then freed with the scenario. */
        grow((void **)&sc->expects, sc->nexpects, sizeof *sc->expects);
        struct scn_expect *stored = &sc->expects[sc->nexpects++];
        *stored = ex;
        if (one_line)
            return expect_never_or_count(p, stored);
        if (expect_block_header(p, stored, trace) < 0)
            return -1;
        p->block = BLOCK_HOOKS;
        p->block_index = sc->nexpects - 1;
        return 0;
    } else {
        const char *usage = "expect message ID delivered|deferred|bounced|partial|intact [within DURATION]";
        if (need_args(p, 4, 6, usage) < 0)
            return -1;
        unsigned long long id;
        if (parse_unsigned(p, &p->tok[2], "message id", 1, ULONG_MAX, &id) < 0)
            return -1;
        ex.kind = SCN_EXPECT_MESSAGE;
        ex.msg_id = (unsigned long)id;
        int fate = -1;
        if (is_word(&p->tok[3], "intact")) {
            if (need_args(p, 4, 4, "expect message ID intact") < 0)
                return -1;
            ex.kind = SCN_EXPECT_INTACT;
            fate = SCN_FATE_DELIVERED;
        }
        for (int f = SCN_FATE_DELIVERED; f <= SCN_FATE_PARTIAL && fate < 0; f++)
            if (is_word(&p->tok[3], scn_fate_str((enum scn_fate)f)))
                fate = f;
        if (fate < 0) {
            struct suggestion sg;
            char hint[128];
            suggest_begin(&sg, p->tok[3].text);
            for (int f = SCN_FATE_DELIVERED; f <= SCN_FATE_PARTIAL; f++)
                suggest_offer(&sg, scn_fate_str((enum scn_fate)f));
            suggest_offer(&sg, "intact");
            return fail_tok(p, &p->tok[3], "unknown fate '%s': expected delivered, deferred, "
                            "bounced, partial or intact%s", p->tok[3].text, suggest_hint(&sg, hint, sizeof hint));
        }
        ex.fate = (enum scn_fate)fate;
        if (p->ntok > 4) {
            if (!is_word(&p->tok[4], "within"))
                return fail_tok(p, &p->tok[4], "unexpected '%s': expected '%s'", p->tok[4].text, usage);
            if (need_args(p, 6, 6, usage) < 0 || parse_duration(p, &p->tok[5], &ex.within) < 0)
                return -1;
        }
        add_ref(p, REF_MESSAGE, sc->nexpects, here(p, p->tok[2].col));
    }
    grow((void **)&sc->expects, sc->nexpects, sizeof *sc->expects);
    sc->expects[sc->nexpects++] = ex;
    return 0;
}

/* do_plugin - plugin PATH[:ARGS]: a shared object to load before the run
 *
 * The file must exist now, so a typo is a parse error at the path rather
 * than a failed run; whether it loads is only known at run time. */
static int do_plugin(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 2, 2, "plugin PATH[:ARGS]") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    if (sc->nplugins == PLUGIN_MAX)
        return fail_tok(p, t, "more than %d plugins", PLUGIN_MAX);
    char *name, *args;
    plugin_spec_split(t->text, &name, &args);
    char why[256];
    char *file = plugin_resolve(name, p->file, why, sizeof why);
    if (file == NULL) {
        fail_tok(p, t, "cannot find plugin '%s': %s", name, why);
        free(name);
        free(args);
        return -1;
    }
    grow((void **)&sc->plugins, sc->nplugins, sizeof *sc->plugins);
    struct scn_plugin *pl = &sc->plugins[sc->nplugins++];
    pl->name = name;
    pl->file = file;
    pl->args = args;
    pl->pos = here(p, t->col);
    return 0;
}

/* do_requires - requires faketime: plugin clocks must show virtual time
 *
 * Only recorded here: whether libfaketime is there is known when the
 * scenario runs (runner.c fails it with exit code 2 when it is not). */
static int do_requires(struct parser *p)
{
    if (need_args(p, 2, 2, "requires faketime") < 0)
        return -1;
    const struct token *t = &p->tok[1];
    if (!is_word(t, "faketime")) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, t->text);
        suggest_offer(&sg, "faketime");
        return fail_tok(p, t, "unknown requirement '%s': expected 'faketime'%s", t->text,
                        suggest_hint(&sg, hint, sizeof hint));
    }
    p->sc->requires_faketime = 1;
    p->sc->requires_pos = here(p, t->col);
    return 0;
}

/* ---- inbound: listen, user, client ---------------------------------------- */

/* do_listen - listen ADDR[:PORT] [max-recipients N] [max-size N] [max-errors N]
 * [timeout DUR] [require-auth]: the MTA's inbound SMTP server */
static int do_listen(struct parser *p)
{
    const char *usage = "listen ADDR[:PORT] [max-recipients N] [max-size N] [max-errors N] "
                        "[timeout DURATION] [require-auth]";
    struct scn_listen *l = &p->sc->listen;
    if (need_args(p, 2, -1, usage) < 0)
        return -1;
    if (l->set)
        return fail_tok(p, &p->tok[0], "listen already given at %s:%d", l->pos.file, l->pos.line);
    const struct token *t = &p->tok[1];
    char addr[64];
    const char *colon = strchr(t->text, ':');
    size_t alen = colon ? (size_t)(colon - t->text) : strlen(t->text);
    struct in_addr in;
    if (t->quoted || alen >= sizeof addr)
        return fail_tok(p, t, "bad listen address '%s': expected ADDR or ADDR:PORT", t->text);
    memcpy(addr, t->text, alen);
    addr[alen] = '\0';
    if (inet_pton(AF_INET, addr, &in) != 1)
        return fail_tok(p, t, "bad IPv4 address '%s'", addr);
    l->addr = ntohl(in.s_addr);
    l->port = 25;
    if (colon) {
        char *end;
        unsigned long port = strtoul(colon + 1, &end, 10);
        if (!isdigit((unsigned char)colon[1]) || *end != '\0' || port < 1 || port > 65535)
            return fail_at(p, t->col + (int)alen + 1, "bad port '%s': expected 1 to 65535",
                           colon + 1);
        l->port = (uint16_t)port;
    }
    for (int i = 2; i < p->ntok; i++) {
        const struct token *k = &p->tok[i];
        unsigned long long n;
        if (is_word(k, "require-auth")) {
            l->opts.require_auth = 1;
            continue;
        }
        int known = is_word(k, "max-recipients") || is_word(k, "max-size") ||
                    is_word(k, "max-errors") || is_word(k, "timeout");
        if (!known)
            return fail_tok(p, k, "unexpected '%s': expected '%s'", k->text, usage);
        if (i + 1 >= p->ntok)
            return fail_at(p, after_last(p), "missing value after '%s'", k->text);
        const struct token *v = &p->tok[++i];
        if (is_word(k, "timeout")) {
            if (parse_duration(p, v, &l->opts.timeout) < 0)
                return -1;
            if (l->opts.timeout < 1000)
                return fail_tok(p, v, "timeout %s is too short: at least 1ms", v->text);
        } else if (is_word(k, "max-recipients")) {
            if (parse_unsigned(p, v, "recipient count", 1, 100000, &n) < 0)
                return -1;
            l->opts.max_recipients = (int)n;
        } else if (is_word(k, "max-size")) {
            if (parse_unsigned(p, v, "size", 1, 1ULL << 30, &n) < 0)
                return -1;
            l->opts.max_size = (long)n;
        } else {
            if (parse_unsigned(p, v, "error count", 1, 1000, &n) < 0)
                return -1;
            l->opts.max_errors = (int)n;
        }
    }
    l->set = 1;
    l->pos = here(p, p->tok[0].col);
    return 0;
}

/* do_user - user NAME PASSWORD: credentials AUTH accepts */
static int do_user(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    if (need_args(p, 3, 3, "user NAME PASSWORD") < 0)
        return -1;
    const struct token *name = &p->tok[1], *pw = &p->tok[2];
    if (name->text[0] == '\0' || strlen(name->text) > SCN_MAX_NAME)
        return fail_tok(p, name, "bad user name: 1 to %d bytes", SCN_MAX_NAME);
    if (strlen(pw->text) > SCN_MAX_NAME)
        return fail_tok(p, pw, "password longer than %d bytes", SCN_MAX_NAME);
    for (int i = 0; i < sc->nusers; i++)
        if (strcmp(sc->users[i].name, name->text) == 0)
            return fail_tok(p, name, "user '%s' already declared at %s:%d", name->text,
                            sc->users[i].pos.file, sc->users[i].pos.line);
    if (sc->nusers == SCN_MAX_USERS)
        return fail_tok(p, &p->tok[0], "more than %d users", SCN_MAX_USERS);
    grow((void **)&sc->users, sc->nusers, sizeof *sc->users);
    struct scn_user *u = &sc->users[sc->nusers++];
    u->name = xstrdup(name->text);
    u->password = xstrdup(pw->text);
    u->pos = here(p, p->tok[0].col);
    return 0;
}

/* do_client - client ADDR [at DURATION], opening a block of script lines */
static int do_client(struct parser *p)
{
    const char *usage = "client ADDR [at DURATION]";
    struct scn_scenario *sc = p->sc;
    uint32_t addr = 0;      /* set by parse_ipv4; -O3 cannot see it */
    mta_usec_t at = 0;
    if (need_args(p, 2, 4, usage) < 0 || parse_ipv4(p, &p->tok[1], &addr) < 0)
        return -1;
    if (p->ntok > 2) {
        if (!is_word(&p->tok[2], "at"))
            return fail_tok(p, &p->tok[2], "unexpected '%s': expected '%s'", p->tok[2].text, usage);
        if (need_args(p, 4, 4, usage) < 0 || parse_duration(p, &p->tok[3], &at) < 0)
            return -1;
    }
    if (sc->nclients == SCN_MAX_CLIENTS)
        return fail_tok(p, &p->tok[0], "more than %d clients", SCN_MAX_CLIENTS);
    grow((void **)&sc->clients, sc->nclients, sizeof *sc->clients);
    struct scn_client *c = &sc->clients[sc->nclients];
    memset(c, 0, sizeof *c);
    c->addr = addr;
    c->at = at;
    c->pos = here(p, p->tok[0].col);
    p->block = BLOCK_CLIENT;
    p->block_index = sc->nclients++;
    return 0;
}

/* step_add - a new step of the open client's script */
static struct scn_step *step_add(struct parser *p, enum scn_step_kind kind)
{
    struct scn_client *c = &p->sc->clients[p->block_index];
    grow((void **)&c->steps, c->nsteps, sizeof *c->steps);
    struct scn_step *st = &c->steps[c->nsteps++];
    memset(st, 0, sizeof *st);
    st->kind = kind;
    st->pos = here(p, p->tok[0].col);
    return st;
}

/* step_send - a SEND step of the n bytes at s (copied) */
static void step_send(struct parser *p, const char *s, size_t n)
{
    struct scn_step *st = step_add(p, SCN_STEP_SEND);
    st->bytes = xstrndup(s, n);
    st->len = n;
}

/* step_line - a SEND step of one command line, CRLF added */
static void step_line(struct parser *p, const char *line)
{
    size_t n = strlen(line);
    char *b = xmalloc(n + 3);
    memcpy(b, line, n);
    memcpy(b + n, "\r\n", 3);
    step_send(p, b, n + 2);
    free(b);
}

/* step_expect - an EXPECT step; code 0 takes any reply */
static void step_expect(struct parser *p, int code)
{
    step_add(p, SCN_STEP_EXPECT)->code = code;
}

/* base64 - RFC 4648 encoding of n bytes (malloc'd) */
static char *base64(const char *s, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)s[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return out;
}

/* step_data - a SEND step of a message body as DATA sends it: CRLF line
 * ends, a final line end, leading dots doubled, then "." */
static void step_data(struct parser *p, const char *body, size_t n)
{
    char *out = xmalloc(2 * n + 8);
    size_t o = 0;
    int bol = 1;
    for (size_t i = 0; i < n; i++) {
        if (bol && body[i] == '.')
            out[o++] = '.';
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = body[i];
        bol = body[i] == '\n';
    }
    if (!bol) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    step_send(p, out, o + 3);
    free(out);
}

/* client_auth - auth plain|login USER PASSWORD: the exchange, replies waited for */
static int client_auth(struct parser *p)
{
    const char *usage = "auth plain|login USER PASSWORD";
    if (need_args(p, 4, 4, usage) < 0)
        return -1;
    const char *user = p->tok[2].text, *pw = p->tok[3].text;
    size_t ulen = strlen(user), plen = strlen(pw);
    if (ulen > SCN_MAX_NAME || plen > SCN_MAX_NAME)
        return fail_tok(p, &p->tok[2], "user or password longer than %d bytes", SCN_MAX_NAME);
    char line[4 * SCN_MAX_NAME + 64];
    if (is_word(&p->tok[1], "plain")) {
        /* RFC 4616: authzid (empty) NUL authcid NUL passwd */
        char raw[2 * SCN_MAX_NAME + 2];
        raw[0] = '\0';
        memcpy(raw + 1, user, ulen);
        raw[1 + ulen] = '\0';
        memcpy(raw + 2 + ulen, pw, plen);
        char *b = base64(raw, ulen + plen + 2);
        snprintf(line, sizeof line, "AUTH PLAIN %s", b);
        free(b);
        step_line(p, line);
        step_expect(p, 0);
        return 0;
    }
    if (!is_word(&p->tok[1], "login"))
        return fail_tok(p, &p->tok[1], "unknown mechanism '%s': expected plain or login",
                        p->tok[1].text);
    step_line(p, "AUTH LOGIN");
    step_expect(p, 334);
    char *b = base64(user, ulen);
    step_line(p, b);
    free(b);
    step_expect(p, 334);
    b = base64(pw, plen);
    step_line(p, b);
    free(b);
    step_expect(p, 0);
    return 0;
}

/* client_line - one indented line of a client's script */
static int client_line(struct parser *p)
{
    static const char *const words[] = { "send", "send-raw", "send-data", "send-data-file",
                                         "expect", "delay", "disconnect", "reset", "starttls",
                                         "auth", "quit" };
    struct scn_client *c = &p->sc->clients[p->block_index];
    const struct token *w = &p->tok[0];
    if (c->nsteps >= SCN_MAX_STEPS)
        return fail_tok(p, w, "more than %d script steps in one client", SCN_MAX_STEPS);
    if (is_word(w, "send")) {
        if (need_args(p, 2, -1, "send TEXT") < 0)
            return -1;
        char *text = extract_text(p, p->tok[1].start, p->tok[p->ntok - 1].end);
        step_line(p, text);
        free(text);
        return 0;
    }
    if (is_word(w, "send-raw")) {
        if (need_args(p, 2, 2, "send-raw \"BYTES\"") < 0)
            return -1;
        if (!p->tok[1].whole_quoted || p->tok[1].text[0] == '\0')
            return fail_tok(p, &p->tok[1], "send-raw needs one non-empty \"quoted string\" "
                            "(\\r \\n \\t escapes)");
        step_send(p, p->tok[1].text, strlen(p->tok[1].text));
        return 0;
    }
    if (is_word(w, "send-data")) {
        if (need_args(p, 2, 2, "send-data \"TEXT\"") < 0)
            return -1;
        step_data(p, p->tok[1].text, strlen(p->tok[1].text));
        return 0;
    }
    if (is_word(w, "send-data-file")) {
        if (need_args(p, 2, 2, "send-data-file PATH") < 0)
            return -1;
        size_t len = 0;
        char *body = read_relative(p, &p->tok[1], "data", &len);
        if (body == NULL)
            return -1;
        step_data(p, body, len);
        free(body);
        return 0;
    }
    if (is_word(w, "expect")) {
        unsigned long long code;
        if (need_args(p, 2, 2, "expect CODE") < 0
            || parse_unsigned(p, &p->tok[1], "reply code", 100, 599, &code) < 0)
            return -1;
        step_expect(p, (int)code);
        return 0;
    }
    if (is_word(w, "delay")) {
        mta_usec_t d = 0;  /* set by parse_duration; -O3 cannot see it */
        if (need_args(p, 2, 2, "delay DURATION") < 0 || parse_duration(p, &p->tok[1], &d) < 0)
            return -1;
        step_add(p, SCN_STEP_DELAY)->delay = d;
        return 0;
    }
    if (is_word(w, "disconnect") || is_word(w, "reset")) {
        if (need_args(p, 1, 1, w->text) < 0)
            return -1;
        step_add(p, is_word(w, "reset") ? SCN_STEP_RESET : SCN_STEP_DISCONNECT);
        return 0;
    }
    if (is_word(w, "starttls") || is_word(w, "quit")) {
        if (need_args(p, 1, 1, w->text) < 0)
            return -1;
        int tls = is_word(w, "starttls");
        step_line(p, tls ? "STARTTLS" : "QUIT");
        step_expect(p, tls ? 220 : 221);
        return 0;
    }
    if (is_word(w, "auth"))
        return client_auth(p);
    struct suggestion sg;
    char hint[128];
    suggest_begin(&sg, w->text);
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        suggest_offer(&sg, words[i]);
    return fail_tok(p, w, "unknown client line '%s': expected send, send-raw, send-data, "
                    "send-data-file, expect, delay, disconnect, reset, starttls, auth or quit%s",
                    w->text, suggest_hint(&sg, hint, sizeof hint));
}

/* resolve_inbound - once the file is read: where the server listens, and
 * what inbound message ids mean (1000 + n, docs/inbound.md) */
static int resolve_inbound(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    struct scn_listen *l = &sc->listen;
    if (!l->set && sc->nclients == 0)
        return 0;
    if (!l->set) {
        l->addr = 0xC0000201u;      /* the default binding's, as in mta_create */
        for (int i = 0; i < sc->nbindings; i++)
            if (strcmp(sc->bindings[i].name, "default") == 0)
                l->addr = sc->bindings[i].addr;
        l->port = 25;
    }
    for (int i = 0; i < sc->nremotes; i++)
        if (sc->remotes[i].addr == l->addr)
            return fail_pos(p, l->set ? l->pos : sc->clients[0].pos,
                            "the MTA listens on %u.%u.%u.%u, where the remote of %s:%d is",
                            l->addr >> 24, (l->addr >> 16) & 255, (l->addr >> 8) & 255,
                            l->addr & 255, sc->remotes[i].pos.file, sc->remotes[i].pos.line);
    for (int i = 0; i < sc->ninjects && sc->nclients > 0; i++)
        if (sc->injects[i].id > SCN_INBOUND_ID_BASE)
            return fail_pos(p, sc->injects[i].pos, "inject %lu: with clients, ids above %lu "
                            "belong to the messages the server accepts (%lu + n)",
                            sc->injects[i].id, SCN_INBOUND_ID_BASE, SCN_INBOUND_ID_BASE);
    return 0;
}

/* The directives, one row each; the handler sees the whole line. */
static const struct directive {
    const char *name;
    int (*handle)(struct parser *p);
} directives[] = {
    { "scenario", do_scenario },
    { "description", do_description },
    { "seed", do_seed },
    { "epoch", do_epoch },
    { "run", do_run },
    { "config", do_config },
    { "liveness", do_liveness },
    { "dns", do_dns },
    { "network", do_network },
    { "binding", do_binding },
    { "remote", do_remote },
    { "inject", do_inject },
    { "include", do_include },
    { "expect", do_expect },
    { "plugin", do_plugin },
    { "listen", do_listen },
    { "user", do_user },
    { "client", do_client },
    { "requires", do_requires },
};

/* directive_line - a line that starts in column 1 */
static int directive_line(struct parser *p)
{
    const struct token *t = &p->tok[0];
    for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++)
        if (is_word(t, directives[i].name))
            return directives[i].handle(p);
    struct suggestion sg;
    char hint[128];
    suggest_begin(&sg, t->text);
    for (size_t i = 0; i < sizeof directives / sizeof directives[0]; i++)
        suggest_offer(&sg, directives[i].name);
    return fail_tok(p, t, "unknown directive '%s'%s", t->text, suggest_hint(&sg, hint, sizeof hint));
}

/* ---- the parse ------------------------------------------------------------ */

/* parse_buffer - every line of one file (the scenario or an include) */
static int parse_buffer(struct parser *p, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t eol = nl ? (size_t)(nl - buf) : len;
        size_t n = eol - off;
        p->lineno++;
        if (n > 0 && buf[off + n - 1] == '\r')
            n--;
        if (n > SCN_MAX_LINE)
            return fail_at(p, SCN_MAX_LINE + 1, "line longer than %d bytes", SCN_MAX_LINE);
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[off + i];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail_at(p, (int)i + 1, "unexpected control character 0x%02x "
                               "(is this a text file?)", c);
        }
        p->line = buf + off;
        p->len = (int)n;
        off = nl ? eol + 1 : len;
        if (tokenize(p) < 0)
            return -1;
        if (p->ntok == 0)
            continue;
        if (!p->indented) {
            if (close_block(p, 0) < 0 || directive_line(p) < 0)
                return -1;
        } else if (p->block == BLOCK_REMOTE) {
            if (remote_line(p) < 0)
                return -1;
        } else if (p->block == BLOCK_HOOKS) {
            if (hooks_line(p) < 0)
                return -1;
        } else if (p->block == BLOCK_CLIENT) {
            if (client_line(p) < 0)
                return -1;
        } else {
            return fail_tok(p, &p->tok[0], "indented line outside a block: only lines under "
                            "'remote', 'client' or 'expect hooks in order' are indented");
        }
    }
    return close_block(p, 1);
}

/* resolve_refs - forward references, in the order they were written */
static int resolve_refs(struct parser *p)
{
    const struct scn_scenario *sc = p->sc;
    for (int r = 0; r < p->nrefs; r++) {
        const struct ref *ref = &p->refs[r];
        if (ref->kind == REF_BINDING) {
            const char *name = sc->injects[ref->index].binding;
            int found = strcmp(name, "default") == 0;
            for (int i = 0; i < sc->nbindings && !found; i++)
                found = strcmp(sc->bindings[i].name, name) == 0;
            if (!found) {
                struct suggestion sg;
                char hint[128];
                suggest_begin(&sg, name);
                for (int i = 0; i < sc->nbindings; i++)
                    suggest_offer(&sg, sc->bindings[i].name);
                return fail_pos(p, ref->pos, "unknown binding '%s': no 'binding %s ADDR' line%s",
                                name, name, suggest_hint(&sg, hint, sizeof hint));
            }
        } else {
            unsigned long id = sc->expects[ref->index].msg_id;
            int found = 0;
            for (int i = 0; i < sc->ninjects && !found; i++)
                found = sc->injects[i].id == id;
            /* With clients, ids above 1000 are the messages the server accepts;
             * ids above MTA_DSN_ID_BASE the DSNs the core makes. */
            if (!found && !(sc->nclients > 0 && id > SCN_INBOUND_ID_BASE) && id <= MTA_DSN_ID_BASE)
                return fail_pos(p, ref->pos, "expectation about message %lu, but no 'inject %lu' line",
                                id, id);
        }
    }
    return 0;
}

/* default_name - the file's base name without ".scn" */
static char *default_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 4 && strcmp(base + n - 4, ".scn") == 0)
        n -= 4;
    return xstrndup(base, n);
}

/* parse_top - the common part of both entry points */
static struct scn_scenario *parse_top(const char *name, char *real, const char *buf, size_t len,
                                      struct scn_error *err)
{
    struct scn_scenario *sc = xmalloc(sizeof *sc);
    memset(sc, 0, sizeof *sc);
    sc->file = xstrdup(name);
    sc->name = default_name(name);
    sc->seed = 1;
    sc->epoch = DEFAULT_EPOCH;
    sc->run_for = -1;
    sc->storm_count = 100;          /* liveness.h: LIVENESS_STORM_COUNT */
    sc->storm_window = 60 * USEC_S;
    sc->dns_latency = 1 * USEC_MS;
    sc->dns_timeout = 5 * USEC_S;
    mta_config_defaults(&sc->config);

    struct parser *p = xmalloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->sc = sc;
    p->err = err;
    p->real[0] = real;
    p->file = intern_file(sc, name);
    int rc = parse_buffer(p, buf, len);
    if (rc == 0)
        rc = resolve_refs(p);
    if (rc == 0)
        rc = resolve_inbound(p);
    assert((rc < 0) == (p->failed != 0));
    pending_free(p);
    free(p->refs);
    free(p);
    free(real);
    if (rc < 0) {
        scn_free(sc);
        return NULL;
    }
    memset(err, 0, sizeof *err);
    return sc;
}

/* scn_parse_file - parse a scenario file and what it includes */
struct scn_scenario *scn_parse_file(const char *path, struct scn_error *err)
{
    assert(path != NULL && err != NULL);
    memset(err, 0, sizeof *err);
    char why[128];
    size_t len = 0;
    char *buf = read_bounded(path, &len, why, sizeof why);
    if (buf == NULL) {
        copy_bounded(err->file, sizeof err->file, path);
        snprintf(err->msg, sizeof err->msg, "cannot read scenario: %s", why);
        return NULL;
    }
    struct scn_scenario *sc = parse_top(path, realpath(path, NULL), buf, len, err);
    free(buf);
    return sc;
}

/* scn_parse_string - parse a scenario held in memory; name stands for its file */
struct scn_scenario *scn_parse_string(const char *name, const char *text, struct scn_error *err)
{
    assert(name != NULL && text != NULL && err != NULL);
    memset(err, 0, sizeof *err);
    return parse_top(name, NULL, text, strlen(text), err);
}

/* scn_free - release a scenario and everything it owns; NULL is fine */
void scn_free(struct scn_scenario *sc)
{
    if (sc == NULL)
        return;
    for (int i = 0; i < sc->nbindings; i++) {
        free(sc->bindings[i].name);
        free(sc->bindings[i].ehlo);
    }
    free(sc->bindings);
    for (int i = 0; i < sc->ndns; i++) {
        free(sc->dns[i].name);
        free(sc->dns[i].target);
    }
    free(sc->dns);
    for (int i = 0; i < sc->nremotes; i++) {
        struct scn_remote *rm = &sc->remotes[i];
        for (int j = 0; j < rm->nreplies; j++) {
            for (int k = 0; k < rm->replies[j].nlines; k++)
                free(rm->replies[j].lines[k]);
            free(rm->replies[j].lines);
            conds_free(rm->replies[j].conds, rm->replies[j].nconds);
        }
        free(rm->replies);
        for (int j = 0; j < rm->nfaults; j++)
            conds_free(rm->faults[j].conds, rm->faults[j].nconds);
        free(rm->faults);
        free(rm->name);
    }
    free(sc->remotes);
    free(sc->links);
    for (int i = 0; i < sc->ninjects; i++) {
        struct scn_inject *in = &sc->injects[i];
        free(in->from);
        for (int j = 0; j < in->nrcpts; j++)
            free(in->rcpts[j]);
        free(in->rcpts);
        free(in->binding);
        free(in->body);
        free(in->dsn_notify);
        free(in->dsn_ret);
        free(in->dsn_envid);
    }
    free(sc->injects);
    for (int i = 0; i < sc->nexpects; i++) {
        struct scn_expect *ex = &sc->expects[i];
        for (int j = 0; j < ex->npatterns; j++) {
            struct scn_pattern *pt = &ex->patterns[j];
            for (int k = 0; k < pt->nmatchers; k++) {
                free(pt->matchers[k].key);
                free(pt->matchers[k].value);
            }
            free(pt->kind);
            free(pt->name);
        }
        free(ex->patterns);
        free(ex->scope.key);
        free(ex->scope.value);
        free(ex->dsn_status);
        free(ex->dsn_rcpt);
    }
    free(sc->expects);
    for (int i = 0; i < sc->nplugins; i++) {
        free(sc->plugins[i].name);
        free(sc->plugins[i].file);
        free(sc->plugins[i].args);
    }
    free(sc->plugins);
    for (int i = 0; i < sc->nusers; i++) {
        free(sc->users[i].name);
        free(sc->users[i].password);
    }
    free(sc->users);
    for (int i = 0; i < sc->nclients; i++) {
        for (int j = 0; j < sc->clients[i].nsteps; j++)
            free(sc->clients[i].steps[j].bytes);
        free(sc->clients[i].steps);
    }
    free(sc->clients);
    for (int i = 0; i < sc->nfiles; i++)
        free(sc->files[i]);
    free(sc->files);
    free(sc->name);
    free(sc->file);
    free(sc->description);
    free(sc);
}

/* scn_op_str - an operator as written */
const char *scn_op_str(enum scn_op op)
{
    switch (op) {
    case SCN_OP_EQ: return "=";
    case SCN_OP_NE: return "!=";
    case SCN_OP_LT: return "<";
    case SCN_OP_LE: return "<=";
    case SCN_OP_GT: return ">";
    case SCN_OP_GE: return ">=";
    case SCN_OP_RE: return "~";
    }
    return "?";
}

/* scn_fate_str - a message fate as written */
const char *scn_fate_str(enum scn_fate f)
{
    switch (f) {
    case SCN_FATE_DELIVERED: return "delivered";
    case SCN_FATE_DEFERRED: return "deferred";
    case SCN_FATE_BOUNCED: return "bounced";
    case SCN_FATE_PARTIAL: return "partial";
    }
    return "?";
}
