/*
 * parse_token - the scenario parser's tokens and values
 *
 * DESCRIPTION
 *   The tokenizer (a line into tokens with their raw extents; see parse.c
 *   for the rules) and the value checks every directive family uses:
 *   whole numbers, durations, IPv4 addresses, domain and plain names,
 *   probabilities, byte rates, comparison operators.  Also the error
 *   reporting (fail_pos, the first error wins) and the "did you mean"
 *   suggestions, and the allocation helpers that stop the program when
 *   memory is gone.
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_internal.h"

/* xmalloc - malloc that stops the program when memory is gone */
void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "scenario: out of memory\n");
        abort();
    }
    return p;
}

/* xstrndup - a copy of n bytes as a string */
char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* xstrdup - a copy of a string */
char *xstrdup(const char *s)
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
void grow(void **arr, int n, size_t elem)
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
void copy_bounded(char *dst, size_t dstsz, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstsz)
        n = dstsz - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* suggest_begin - start looking for a word close to word */
void suggest_begin(struct suggestion *sg, const char *word)
{
    sg->word = word;
    sg->best[0] = '\0';
    sg->best_d = INT_MAX;
}

/* suggest_offer - consider one known word; the first of equals wins */
void suggest_offer(struct suggestion *sg, const char *candidate)
{
    /* Only near misses become hints (suggest_hint): bound the work there. */
    int d = mta_edit_distance(sg->word, candidate, SUGGEST_MAX_EDITS);
    if (d < sg->best_d) {
        sg->best_d = d;
        copy_bounded(sg->best, sizeof sg->best, candidate);
    }
}

/* suggest_hint - "; did you mean 'x'?" or "" when nothing is close
 *
 * Two edits catch a transposition or a dropped letter; more would offer
 * unrelated words for short typos. */
const char *suggest_hint(struct suggestion *sg, char *buf, size_t bufsz)
{
    if (sg->best_d <= SUGGEST_MAX_EDITS && (size_t)sg->best_d < strlen(sg->word))
        snprintf(buf, bufsz, "; did you mean '%s'?", sg->best);
    else
        buf[0] = '\0';
    return buf;
}

/* fail_pos - record the first error at a position; always returns -1 */
int fail_pos(struct parser *p, struct scn_pos pos, const char *fmt, ...)
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
    /* One line, whatever the input: a token quoted into the message may
     * hold a "\n" escape or, from a quoted string, any control byte. */
    for (char *c = p->err->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return -1;
}

/* here - the position of column col on the current line */
struct scn_pos here(const struct parser *p, int col)
{
    struct scn_pos pos = { p->file, p->lineno, col };
    return pos;
}

/* after_last - the column just after the last token: where a missing
 * argument should have been */
int after_last(const struct parser *p)
{
    assert(p->ntok > 0);
    return p->tok[p->ntok - 1].end + 1;
}

/* need_args - the line has between min and max tokens (max < 0: no limit) */
int need_args(struct parser *p, int min, int max, const char *usage)
{
    if (p->ntok < min)
        return fail_at(p, after_last(p), "missing argument: expected '%s'", usage);
    if (max >= 0 && p->ntok > max)
        return fail_tok(p, &p->tok[max], "unexpected '%s': expected '%s'",
                        p->tok[max].text, usage);
    return 0;
}

/* is_word - the token is this keyword, unquoted, in any case */
int is_word(const struct token *t, const char *word)
{
    return !t->quoted && strcasecmp(t->text, word) == 0;
}

/* parse_unsigned - a whole decimal number no larger than max */
int parse_unsigned(struct parser *p, const struct token *t, const char *what,
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
int parse_signed(const char *s, int64_t *out)
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
int parse_duration(struct parser *p, const struct token *t, mta_usec_t *out)
{
    mta_usec_t v = t->quoted ? -1 : mta_parse_duration(t->text);
    if (v == MTA_DURATION_TOO_LONG)
        return fail_tok(p, t, "duration '%s' is too long: at most 36500d (100 years)", t->text);
    if (v < 0)
        return fail_tok(p, t, "bad duration '%s': expected a number with a unit us, ms, s, m, h or d",
                        t->text);
    *out = v;
    return 0;
}

/* parse_ipv4 - a dotted quad into host byte order */
int parse_ipv4(struct parser *p, const struct token *t, uint32_t *out)
{
    struct in_addr in;
    if (t->quoted || inet_pton(AF_INET, t->text, &in) != 1)
        return fail_tok(p, t, "bad IPv4 address '%s'", t->text);
    *out = ntohl(in.s_addr);
    return 0;
}

/* parse_ipv6 - an IPv6 address in the text forms of RFC 4291 2.2
 * (including "::" and an embedded dotted quad) into network byte order */
int parse_ipv6(struct parser *p, const struct token *t, uint8_t out[16])
{
    struct in6_addr in;
    if (t->quoted || inet_pton(AF_INET6, t->text, &in) != 1)
        return fail_tok(p, t, "bad IPv6 address '%s'", t->text);
    memcpy(out, in.s6_addr, 16);
    return 0;
}

/* parse_ip - an IPv4 dotted quad or an IPv6 address (RFC 4291 2.2) */
int parse_ip(struct parser *p, const struct token *t, mta_ip *out)
{
    if (!t->quoted && mta_ip_parse(t->text, out) == 0)
        return 0;
    if (strchr(t->text, ':') != NULL)
        return fail_tok(p, t, "bad IPv6 address '%s'", t->text);
    return fail_tok(p, t, "bad IPv4 address '%s'", t->text);
}

/* check_domain - letters, digits, '-', '_', dot-separated non-empty labels */
int check_domain(struct parser *p, const struct token *t, const char *what)
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
int check_name(struct parser *p, const struct token *t, const char *what,
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
char *extract_text(const struct parser *p, int s, int e)
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

/* tokenize - cut the current line into tokens (see the file comment) */
int tokenize(struct parser *p)
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

/* parse_op - a comparison operator token; -1 if it is none */
int parse_op(const char *s)
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

/* parse_probability - "0.3" into parts per million: 0 to 1, at most 6 decimals */
int parse_probability(struct parser *p, const struct token *t, uint32_t *ppm)
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

struct unit { const char *name; uint64_t mult; };

/* scaled - t as digits then one of units (case-insensitive): the value
 * times the unit's multiple into *out; -1 when it is not that, or the
 * digits reach 2^40 (so the product cannot overflow) */
static int scaled(const struct token *t, const struct unit *units, size_t nunits, uint64_t *out)
{
    const char *s = t->text;
    uint64_t v = 0;
    int digits = 0;
    for (; !t->quoted && isdigit((unsigned char)*s) && v < (1ULL << 40); s++, digits++)
        v = v * 10 + (uint64_t)(*s - '0');
    if (digits == 0 || v >= (1ULL << 40))
        return -1;
    for (size_t i = 0; i < nunits; i++)
        if (strcasecmp(s, units[i].name) == 0) {
            *out = v * units[i].mult;
            return 0;
        }
    return -1;
}

/* parse_size - a byte count: N, NB, NKB, NMB (powers of 1000), NKiB, NMiB; in [min, max] */
int parse_size(struct parser *p, const struct token *t, const char *what, uint64_t min,
               uint64_t max, uint64_t *out)
{
    static const struct unit units[] = {
        { "", 1 }, { "B", 1 }, { "KB", 1000 }, { "MB", 1000000 },
        { "KiB", 1024 }, { "MiB", 1048576 },
    };
    uint64_t v;
    if (scaled(t, units, sizeof units / sizeof units[0], &v) == 0 && v >= min && v <= max) {
        *out = v;
        return 0;
    }
    return fail_tok(p, t, "bad %s '%s': expected a size from %llu to %llu bytes, like 16384, "
                    "64KiB or 1MB", what, t->text, (unsigned long long)min,
                    (unsigned long long)max);
}

/* parse_rate - bytes per second: N, NB/s, NKB/s, NMB/s (powers of 1000), NKiB/s, NMiB/s */
int parse_rate(struct parser *p, const struct token *t, uint64_t *out)
{
    static const struct unit units[] = {
        { "", 1 }, { "B/s", 1 }, { "KB/s", 1000 }, { "MB/s", 1000000 },
        { "KiB/s", 1024 }, { "MiB/s", 1048576 },
    };
    uint64_t v;
    if (scaled(t, units, sizeof units / sizeof units[0], &v) == 0 && v > 0) {
        *out = v;
        return 0;
    }
    return fail_tok(p, t, "bad bandwidth '%s': expected bytes per second above 0, like 2000, "
                    "2KB/s, 1MB/s or 64KiB/s", t->text);
}

/* skip_bracket - the offset of the ']' that ends the bracket expression
 * opening at re[i], or 0 when it is not closed (regcomp() says so) */
static size_t skip_bracket(const char *re, size_t i)
{
    size_t j = i + 1;
    if (re[j] == '^')
        j++;
    if (re[j] == ']')
        j++;
    while (re[j] != '\0' && re[j] != ']') {
        if (re[j] == '[' && (re[j + 1] == ':' || re[j + 1] == '.' || re[j + 1] == '=')) {
            const char *end = strchr(re + j + 2, re[j + 1]);
            if (end == NULL || end[1] != ']')
                return 0;
            j = (size_t)(end - re) + 2;
            continue;
        }
        j++;
    }
    return re[j] == ']' ? j : 0;
}

/* regex_stacked_dup - the offset of a duplication symbol (* + ? or an
 * interval) that directly follows another, or -1.
 *
 * POSIX leaves adjacent duplication symbols in an ERE undefined (XBD
 * 9.4.6, "a*+"), and glibc's regcomp() copies the repeated subtree for
 * each one: 75 '+' in a row took more than 3 GB (the parse campaign).
 * Bracket expressions and escaped characters are skipped. */
int regex_stacked_dup(const char *re)
{
    int after_dup = 0;
    for (size_t i = 0; re[i] != '\0'; i++) {
        char c = re[i];
        if (c == '\\') {
            after_dup = 0;
            if (re[i + 1] != '\0')
                i++;
            continue;
        }
        if (c == '[') {
            size_t j = skip_bracket(re, i);
            if (j == 0)
                return -1;      /* unbalanced: regcomp() says so */
            i = j;
            after_dup = 0;
            continue;
        }
        int dup = c == '*' || c == '+' || c == '?' || c == '{';
        if (dup && after_dup)
            return (int)i;
        if (c == '{') {
            const char *end = strchr(re + i, '}');
            if (end == NULL)
                return -1;
            i = (size_t)(end - re);
        }
        after_dup = dup;
    }
    return -1;
}

/* sat_mul, sat_add - saturating at REGEX_SIZE_CAP: sizes only compare with a limit */
#define REGEX_SIZE_CAP 1000000000ULL
static unsigned long long sat_mul(unsigned long long a, unsigned long long b)
{
    return b != 0 && a > REGEX_SIZE_CAP / b ? REGEX_SIZE_CAP : a * b;
}
static unsigned long long sat_add(unsigned long long a, unsigned long long b)
{
    return a + b > REGEX_SIZE_CAP ? REGEX_SIZE_CAP : a + b;
}

/* regex_expanded_size - how many atoms the ERE re stands for once its
 * repetitions are written out, as glibc's regcomp() writes them out.
 *
 * glibc copies the repeated subtree for each count of an interval
 * ("a{1,255}" is 255 copies) and for '+', and nests the copies: memory
 * grows with the product of nested upper bounds - "(a{1,255}){1,255}"
 * failed after 3.9 GB, "(a{1,5})" nested six deep took 36 MB, 400
 * "a{1,255}" in a row 243 MB (about 2.4 KB per atom; measured with
 * glibc 2.36).  Counts: an atom, a bracket expression or an escaped
 * character 1; a group the sum of its contents; '*' and '?' keep the
 * size, '+' doubles it, {n} and {n,} multiply by n (n+1), {n,m} by m.
 * Saturates at 10^9. */
unsigned long long regex_expanded_size(const char *re)
{
    enum { DEPTH = 64 };
    unsigned long long total[DEPTH], last[DEPTH];
    int d = 0;
    total[0] = last[0] = 0;
    for (size_t i = 0; re[i] != '\0'; i++) {
        char c = re[i];
        unsigned long long factor = 0;      /* 0: not a repetition */
        if (c == '\\') {
            if (re[i + 1] != '\0')
                i++;
        } else if (c == '[') {
            size_t j = skip_bracket(re, i);
            if (j == 0)
                return total[0];            /* unbalanced: regcomp() says so */
            i = j;
        } else if (c == '(') {
            if (d == DEPTH - 1)
                return REGEX_SIZE_CAP;
            d++;
            total[d] = last[d] = 0;
            continue;
        } else if (c == ')' && d > 0) {
            unsigned long long group = total[d] ? total[d] : 1;
            d--;
            total[d] = sat_add(total[d], group);
            last[d] = group;
            continue;
        } else if (c == '|') {
            last[d] = 0;
            continue;
        } else if (c == '*' || c == '?') {
            factor = 1;
        } else if (c == '+') {
            factor = 2;
        } else if (c == '{') {
            char *end;
            unsigned long long n = strtoull(re + i + 1, &end, 10), m = n;
            if (*end == ',')
                m = end[1] == '}' ? n + 1 : strtoull(end + 1, &end, 10);
            const char *close = strchr(re + i, '}');
            if (close == NULL)
                return total[0];
            i = (size_t)(close - re);
            factor = m ? m : 1;
        }
        if (factor != 0) {
            unsigned long long grown = sat_mul(last[d], factor);
            total[d] = sat_add(total[d] - last[d], grown);
            last[d] = grown;
            continue;
        }
        total[d] = sat_add(total[d], 1);
        last[d] = 1;
    }
    while (d > 0) {                         /* unbalanced: regcomp() says so */
        unsigned long long group = total[d];
        d--;
        total[d] = sat_add(total[d], group);
    }
    return total[0];
}

/* check_regex - a POSIX extended regular expression that compiles, and
 * whose compiling is bounded (regex_stacked_dup, regex_expanded_size);
 * errors at col.  Expectations (~) and remote conditions (when rcpt ~). */
int check_regex(struct parser *p, const char *re_text, int col)
{
    regex_t re;
    int dup = regex_stacked_dup(re_text);
    if (dup >= 0)
        return fail_at(p, col, "bad regular expression '%s': a repetition ('%c') right "
                       "after another (POSIX leaves it undefined)", re_text, re_text[dup]);
    if (regex_expanded_size(re_text) > REGEX_MAX_EXPANDED)
        return fail_at(p, col, "bad regular expression '%s': its repetitions stand for more than %d "
                       "characters once written out (nested or large {n,m}; regcomp() "
                       "would need gigabytes)", re_text, REGEX_MAX_EXPANDED);
    int rc = regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[160];
        regerror(rc, &re, why, sizeof why);
        return fail_at(p, col, "bad regular expression '%s': %s", re_text, why);
    }
    regfree(&re);
    return 0;
}
