/*
 * trace_store - the run's trace: records in memory, text form, digest
 *
 * See trace_store.h.  Rendering is shared by the digest, the trace file
 * and the failure reports, so what a user reads is what was hashed.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "test_faults.h"
#include "textbuf.h"
#include "trace_bin_write.h"
#include "trace_store.h"

#define ARENA_CHUNK (256 * 1024)
#define HASH_BATCH (64 * 1024)

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    char data[];
};

/* The last time stamp rendered: records come in bursts at one instant
 * (an event makes several), and a stamp costs ~70 instructions to build. */
struct stamp_cache {
    mta_usec_t rel;
    size_t len;                 /* 0: nothing cached */
    char text[32];
};

struct trace_store {
    mta_usec_t epoch;
    int keep;
    struct trace_rec *recs;
    size_t n, cap;
    struct arena_chunk *arena;
    EVP_MD_CTX *sha;
    char digest[65];
    int finished;
    uint64_t seq;
    mta_usec_t last_time;
    unsigned long regressions;
    FILE *stream;
    struct tbin_writer *bin;    /* the binary stream instead of the text one, or NULL */
    char *line;                 /* rendered lines not hashed yet (hash_and_stream) */
    size_t line_len, line_cap;
    struct stamp_cache stamp;   /* of the last line hashed */
    void (*observe)(void *arg, const struct trace_rec *r);
    void *observe_arg;
    char *scratch;              /* an unkept record's strings, for the observer */
    size_t scratch_cap;
};

static void *arena_alloc(struct trace_store *ts, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    struct arena_chunk *c = ts->arena;
    if (c == NULL || c->size - c->used < size) {
        size_t want = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof *c + want);
        if (c == NULL) {
            fprintf(stderr, "mtasim: out of memory in arena_alloc\n");
            abort();
        }
        c->size = want;
        c->used = 0;
        c->next = ts->arena;
        ts->arena = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

static char *arena_strndup(struct trace_store *ts, const char *s, size_t len)
{
    char *p = arena_alloc(ts, len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* trace_store_create - an empty trace for a run starting at epoch */
struct trace_store *trace_store_create(mta_usec_t epoch, int keep)
{
    struct trace_store *ts = calloc(1, sizeof *ts);
    if (ts == NULL)
        return NULL;
    ts->epoch = epoch;
    ts->keep = keep;
    ts->last_time = epoch;
    ts->sha = EVP_MD_CTX_new();
    if (ts->sha == NULL || EVP_DigestInit_ex(ts->sha, EVP_sha256(), NULL) != 1) {
        fprintf(stderr, "mtasim: cannot initialise SHA-256\n");
        abort();
    }
    return ts;
}

void trace_store_destroy(struct trace_store *ts)
{
    if (ts == NULL)
        return;
    while (ts->arena) {
        struct arena_chunk *next = ts->arena->next;
        free(ts->arena);
        ts->arena = next;
    }
    EVP_MD_CTX_free(ts->sha);
    free(ts->recs);
    free(ts->line);
    free(ts->scratch);
    free(ts);
}

void trace_store_stream(struct trace_store *ts, FILE *out) { ts->stream = out; }
void trace_store_stream_bin(struct trace_store *ts, struct tbin_writer *w) { ts->bin = w; }
size_t trace_store_count(const struct trace_store *ts) { return ts->n; }
uint64_t trace_store_total(const struct trace_store *ts) { return ts->seq; }

void trace_store_observe(struct trace_store *ts, void (*fn)(void *arg, const struct trace_rec *r),
                         void *arg)
{
    ts->observe = fn;
    ts->observe_arg = arg;
}

/* observe_unkept - hand r (whose strings need not be NUL-terminated) to the
 * observer, its strings copied once into the reusable scratch buffer */
static void observe_unkept(struct trace_store *ts, struct trace_rec *r)
{
    size_t need = 0;
    for (int i = 0; i < r->nfields; i++)
        need += r->field[i].len + 1;
    if (need > ts->scratch_cap) {
        size_t cap = ts->scratch_cap ? ts->scratch_cap : 4096;
        while (cap < need)
            cap *= 2;
        free(ts->scratch);
        ts->scratch = malloc(cap);
        if (ts->scratch == NULL) {
            fprintf(stderr, "mtasim: out of memory in observe_unkept\n");
            abort();
        }
        ts->scratch_cap = cap;
    }
    char *p = ts->scratch;
    for (int i = 0; i < r->nfields; i++) {
        memcpy(p, r->field[i].str, r->field[i].len);
        p[r->field[i].len] = '\0';
        r->field[i].str = p;
        p += r->field[i].len + 1;
    }
    ts->observe(ts->observe_arg, r);
}
mta_usec_t trace_store_epoch(const struct trace_store *ts) { return ts->epoch; }
unsigned long trace_store_time_regressions(const struct trace_store *ts) { return ts->regressions; }

const struct trace_rec *trace_store_get(const struct trace_store *ts, size_t i)
{
    assert(i < ts->n);
    return &ts->recs[i];
}

/* time_into - "HH:MM:SS.uuuuuu" for rel into buf (32 bytes); its length */
static size_t time_into(mta_usec_t rel, char *buf)
{
    char *p = buf;
    if (rel < 0) {
        *p++ = '-';
        rel = -rel;
    }
    int64_t s = rel / 1000000, us = rel % 1000000, h = s / 3600;
    /* Built by hand: every line of a trace file starts with one. */
    if (h < 10)
        *p++ = '0';
    struct textbuf t = textbuf_on(p, 32 - (size_t)(p - buf) - 13);
    textbuf_i64(&t, h);                 /* at least two digits, as %02 */
    p += t.len;
    int64_t parts[3] = { (s / 60) % 60, s % 60, us };
    for (int i = 0; i < 3; i++) {
        *p++ = i < 2 ? ':' : '.';
        int64_t v = parts[i];
        for (int k = i < 2 ? 1 : 5; k >= 0; k--) {
            p[k] = (char)('0' + v % 10);
            v /= 10;
        }
        p += i < 2 ? 2 : 6;
    }
    *p = '\0';
    return (size_t)(p - buf);
}

/* trace_time_str - "HH:MM:SS.uuuuuu" relative to the epoch */
const char *trace_time_str(mta_usec_t rel, char buf[32])
{
    time_into(rel, buf);
    return buf;
}

/* A growable string. */
struct sbuf {
    char *p;
    size_t len, cap;
};

/* sb_reserve - room for n more bytes and a NUL; where they go */
static char *sb_reserve(struct sbuf *b, size_t n)
{
    if (n > SIZE_MAX / 4 - b->len) {        /* never: but then no sum below wraps */
        fprintf(stderr, "mtasim: a trace line of more than %zu bytes\n", SIZE_MAX / 4);
        abort();
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            fprintf(stderr, "mtasim: out of memory in sb_reserve\n");
            abort();
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    char *p = sb_reserve(b, n);
    memcpy(p, s, n);
    b->len += n;
    p[n] = '\0';
}

/* sb_end - the text now ends at p (inside the reserved room) */
static void sb_end(struct sbuf *b, char *p)
{
    b->len = (size_t)(p - b->p);
    *p = '\0';
}

/* The bytes a value may hold unquoted: printable ASCII but for blank,
 * '"', '\\' and '='.  A table: the scan of every value is the inner loop
 * of rendering a trace. */
#define BARE_ROW(c0)                                                                         \
    BARE_1(c0 + 0), BARE_1(c0 + 1), BARE_1(c0 + 2), BARE_1(c0 + 3), BARE_1(c0 + 4),          \
    BARE_1(c0 + 5), BARE_1(c0 + 6), BARE_1(c0 + 7), BARE_1(c0 + 8), BARE_1(c0 + 9),          \
    BARE_1(c0 + 10), BARE_1(c0 + 11), BARE_1(c0 + 12), BARE_1(c0 + 13), BARE_1(c0 + 14),     \
    BARE_1(c0 + 15)
#define BARE_1(c) ((c) > ' ' && (c) < 127 && (c) != '"' && (c) != '\\' && (c) != '=')
static const unsigned char bare_tab[256] = {
    BARE_ROW(0), BARE_ROW(16), BARE_ROW(32), BARE_ROW(48), BARE_ROW(64), BARE_ROW(80),
    BARE_ROW(96), BARE_ROW(112),        /* 128-255: never bare */
};
#undef BARE_1
#undef BARE_ROW

static int bare(unsigned char c)
{
    return bare_tab[c];
}

/* sb_field - " key=value", the value quoted when it is empty or holds a
 * byte that is not bare; inside quotes \" \\ \r \n \t and \xHH escape.
 * One reservation per field: no per-byte bounds check or call. */
static void sb_field(struct sbuf *b, const char *key, size_t klen, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *p = sb_reserve(b, klen + 4 * len + 4);
    *p++ = ' ';
    memcpy(p, key, klen);
    p += klen;
    *p++ = '=';
    size_t i = 0;
    while (i < len && bare((unsigned char)s[i]))
        i++;
    if (i == len && len > 0) {
        memcpy(p, s, len);
        sb_end(b, p + len);
        return;
    }
    *p++ = '"';
    memcpy(p, s, i);
    p += i;
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= ' ' && c < 127 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\r': *p++ = 'r'; break;
        case '\n': *p++ = 'n'; break;
        case '\t': *p++ = 't'; break;
        default:
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p++ = '"';
    sb_end(b, p);
}

static void render_fields(struct sbuf *b, const struct trace_rec *r)
{
    for (int i = 0; i < r->nfields; i++)
        sb_field(b, r->field[i].key, r->field[i].klen, r->field[i].str, r->field[i].len);
}

/* trace_rec_text - "KIND NAME k=v ..." or "NAME k=v ..." (malloc'd) */
char *trace_rec_text(const struct trace_rec *r, int with_kind)
{
    struct sbuf b = { 0 };
    if (with_kind) {
        sb_put(&b, r->kind, r->kind_len);
        sb_put(&b, " ", 1);
    }
    sb_put(&b, r->name, r->name_len);
    render_fields(&b, r);
    return b.p;
}

const struct trace_field *trace_rec_field(const struct trace_rec *r, const char *key)
{
    size_t klen = strlen(key);
    for (int i = 0; i < r->nfields; i++)
        if (r->field[i].klen == klen && memcmp(r->field[i].key, key, klen) == 0)
            return &r->field[i];
    return NULL;
}

/* render_line - r's trace line, appended to b */
static void render_line(const struct trace_rec *r, mta_usec_t epoch, struct stamp_cache *sc,
                        struct sbuf *b)
{
    size_t klen = r->kind_len, nlen = r->name_len;
    char *p = sb_reserve(b, 32 + klen + nlen + 2);
    if (sc->len == 0 || sc->rel != r->time - epoch) {
        sc->rel = r->time - epoch;
        sc->len = time_into(sc->rel, sc->text);
    }
    memcpy(p, sc->text, sc->len);
    p += sc->len;
    *p++ = ' ';
    memcpy(p, r->kind, klen);
    p += klen;
    *p++ = ' ';
    memcpy(p, r->name, nlen);
    sb_end(b, p + nlen);
    render_fields(b, r);
    sb_put(b, "\n", 1);
}

/* hash_and_stream - render r as its trace line: to the stream if there is
 * one, and into the digest; lines are hashed HASH_BATCH bytes at a time
 * (SHA-256 is the same over the bytes however they are split) */
static void hash_and_stream(struct trace_store *ts, const struct trace_rec *r)
{
    struct sbuf b = { ts->line, ts->line_len, ts->line_cap };
    render_line(r, ts->epoch, &ts->stamp, &b);
    if (ts->bin)
        tbin_writer_rec(ts->bin, r);
    else if (ts->stream)
        fwrite(b.p + ts->line_len, 1, b.len - ts->line_len, ts->stream);
    if (b.len >= HASH_BATCH) {
        EVP_DigestUpdate(ts->sha, b.p, b.len);
        b.len = 0;
    }
    ts->line = b.p;
    ts->line_len = b.len;
    ts->line_cap = b.cap;
}

/* given_len - the length a producer gave (mtasim_env.h), or measured */
static size_t given_len(const char *s, size_t len)
{
    return len ? len : strlen(s);
}

/* trace_store_add - stamp, copy, hash and (maybe) stream one record */
void trace_store_add(struct trace_store *ts, mta_usec_t now, const struct mta_trace_rec *rec)
{
    assert(!ts->finished);
    if (MTA_FAULT(FAULT_TIME_BACKWARDS) && strcmp(rec->kind, "queue") == 0 &&
        strcmp(rec->name, "done") == 0)
        now -= MTA_USEC_PER_SEC;
    if (now < ts->last_time)
        ts->regressions++;
    ts->last_time = now;
    if (!ts->keep) {
        /* Not kept: render straight from the caller's record (its strings
         * live until we return); nothing accumulates in the arena. */
        struct trace_field tmp[MTA_TRACE_MAX_FIELDS];
        struct trace_rec r = { now, ++ts->seq, rec->kind, rec->name, rec->nfields, tmp,
                               given_len(rec->kind, rec->kind_len),
                               given_len(rec->name, rec->name_len) };
        for (int i = 0; i < rec->nfields; i++) {
            const struct mta_trace_field *f = &rec->field[i];
            tmp[i] = (struct trace_field){ f->key, f->str ? f->str : "", f->str ? f->len : 0,
                                           f->num, f->has_num, given_len(f->key, f->klen) };
        }
        hash_and_stream(ts, &r);
        if (ts->observe)
            observe_unkept(ts, &r);
        return;
    }
    struct trace_rec r;
    r.time = now;
    r.seq = ++ts->seq;
    r.kind_len = given_len(rec->kind, rec->kind_len);
    r.name_len = given_len(rec->name, rec->name_len);
    r.kind = arena_strndup(ts, rec->kind, r.kind_len);
    r.name = arena_strndup(ts, rec->name, r.name_len);
    r.nfields = rec->nfields;
    r.field = arena_alloc(ts, (size_t)(rec->nfields ? rec->nfields : 1) * sizeof *r.field);
    for (int i = 0; i < rec->nfields; i++) {
        const struct mta_trace_field *f = &rec->field[i];
        r.field[i].klen = given_len(f->key, f->klen);
        r.field[i].key = arena_strndup(ts, f->key, r.field[i].klen);
        r.field[i].str = arena_strndup(ts, f->str ? f->str : "", f->str ? f->len : 0);
        r.field[i].len = f->str ? f->len : 0;
        r.field[i].num = f->num;
        r.field[i].has_num = f->has_num;
    }
    hash_and_stream(ts, &r);
    if (ts->n == ts->cap) {
        ts->cap = ts->cap ? ts->cap * 2 : 1024;
        ts->recs = realloc(ts->recs, ts->cap * sizeof *ts->recs);
        if (ts->recs == NULL) {
            fprintf(stderr, "mtasim: out of memory in trace_store_add\n");
            abort();
        }
    }
    ts->recs[ts->n++] = r;
    if (ts->observe)
        ts->observe(ts->observe_arg, &ts->recs[ts->n - 1]);
}

/* trace_store_digest - the SHA-256 of every line so far; ends the trace */
void trace_store_digest(struct trace_store *ts, char hex[65])
{
    if (!ts->finished) {
        EVP_DigestUpdate(ts->sha, ts->line, ts->line_len);
        ts->line_len = 0;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        EVP_DigestFinal_ex(ts->sha, md, &mdlen);
        assert(mdlen == 32);
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(ts->digest + 2 * i, 3, "%02x", md[i]);
        ts->finished = 1;
    }
    memcpy(hex, ts->digest, 65);
}

/* trace_store_write - every kept record as text */
int trace_store_write(const struct trace_store *ts, FILE *out)
{
    struct sbuf b = { 0 };
    struct stamp_cache sc = { 0 };
    for (size_t i = 0; i < ts->n; i++) {
        b.len = 0;
        render_line(&ts->recs[i], ts->epoch, &sc, &b);
        if (fwrite(b.p, 1, b.len, out) != b.len) {
            free(b.p);
            return -1;
        }
    }
    free(b.p);
    return 0;
}

/* trace_text_line - r's line appended to t (see trace_store.h) */
void trace_text_line(struct trace_text *t, const struct trace_rec *r, mta_usec_t epoch)
{
    struct sbuf b = { t->p, t->len, t->cap };
    struct stamp_cache sc = { t->stamp_rel, t->stamp_len, { 0 } };
    memcpy(sc.text, t->stamp, sizeof sc.text);
    render_line(r, epoch, &sc, &b);
    t->p = b.p;
    t->len = b.len;
    t->cap = b.cap;
    t->stamp_rel = sc.rel;
    t->stamp_len = sc.len;
    memcpy(t->stamp, sc.text, sizeof t->stamp);
}
