/*
 * trace_bin_read - the binary trace decoded, block by block, bounds checked
 *
 * See trace_bin_read.h; the bytes are docs/trace-format.md.  A block is
 * parsed from the buffer; when it runs past the bytes read so far, what it
 * interned is undone, more is read, and it is parsed again from its start.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "trace_bin_format.h"
#include "trace_bin_read.h"

#define READ_CHUNK (64 * 1024)
#define HELD (2 + MTA_TRACE_MAX_FIELDS)   /* literal strings of one record */

enum { P_OK = 0, P_SHORT = 1, P_BAD = -1 };

struct tbin_reader {
    FILE *in;
    char *name;
    unsigned char *buf;
    size_t len, pos, cap;       /* bytes in buf, the next block's start, room */
    uint64_t base;              /* file offset of buf[0] */
    int eof, failed, header, ended;
    uint64_t lines;             /* lines the text would have had so far */
    uint64_t span;              /* file offset where the next line's bytes begin */
    int in_run;
    mta_usec_t epoch, prev;
    char **ids;                 /* interned strings of this run, NUL-terminated */
    size_t nids, ids_cap;
    struct trace_field field[MTA_TRACE_MAX_FIELDS];
    char *vals;                 /* the record's values, NUL-terminated copies */
    size_t vals_cap;
    char *held[HELD];           /* the last record's literal kind, name, keys */
    size_t bad_at;              /* P_BAD: offset in buf of the bad byte */
    char msg[200];
    char error[1400];
};

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "mtasim: out of memory reading a binary trace\n");
        abort();
    }
    return p;
}

struct tbin_reader *tbin_reader_create(FILE *in, const char *name)
{
    struct tbin_reader *rd = xrealloc(NULL, sizeof *rd);
    memset(rd, 0, sizeof *rd);
    rd->in = in;
    rd->name = strdup(name);
    if (rd->name == NULL)
        abort();
    return rd;
}

static void drop_ids(struct tbin_reader *rd, size_t keep)
{
    while (rd->nids > keep)
        free(rd->ids[--rd->nids]);
}

void tbin_reader_destroy(struct tbin_reader *rd)
{
    if (rd == NULL)
        return;
    drop_ids(rd, 0);
    for (size_t i = 0; i < HELD; i++)
        free(rd->held[i]);
    free(rd->ids);
    free(rd->vals);
    free(rd->buf);
    free(rd->name);
    free(rd);
}

const char *tbin_reader_error(const struct tbin_reader *rd) { return rd->error; }

/* A cursor over the current block. */
struct cur {
    struct tbin_reader *rd;
    size_t i;                   /* offset in rd->buf */
};

static int bad(struct cur *c, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(struct cur *c, size_t at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->rd->msg, sizeof c->rd->msg, fmt, ap);
    va_end(ap);
    c->rd->bad_at = at;
    return P_BAD;
}

static int get_byte(struct cur *c, unsigned *b)
{
    if (c->i >= c->rd->len)
        return P_SHORT;
    *b = c->rd->buf[c->i++];
    return P_OK;
}

static int get_uv(struct cur *c, uint64_t *v)
{
    size_t at = c->i;
    uint64_t x = 0;
    for (int k = 0; k < TBIN_VARINT_MAX; k++) {
        if (c->i >= c->rd->len)
            return P_SHORT;
        unsigned b = c->rd->buf[c->i++];
        if (k == TBIN_VARINT_MAX - 1 && b > 1)
            return bad(c, at, "varint longer than 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * k);
        if (!(b & 0x80)) {
            *v = x;
            return P_OK;
        }
    }
    return bad(c, at, "varint longer than 64 bits");
}

/* get_bytes - a length (at most max) and that many bytes; *p into buf */
static int get_bytes(struct cur *c, size_t max, const char *what, const unsigned char **p,
                     size_t *len)
{
    size_t at = c->i;
    uint64_t n;
    int rc = get_uv(c, &n);
    if (rc != P_OK)
        return rc;
    if (n > max)
        return bad(c, at, "%s of %" PRIu64 " bytes (at most %zu)", what, n, max);
    if (c->rd->len - c->i < n)
        return P_SHORT;
    *p = c->rd->buf + c->i;
    *len = (size_t)n;
    c->i += (size_t)n;
    return P_OK;
}

/* get_ref - a kind, name or key (docs/trace-format.md, "Strings"); *s is
 * NUL-terminated: an interned copy, or the literal copied into lit */
static int get_ref(struct cur *c, const char **s, char **lit)
{
    struct tbin_reader *rd = c->rd;
    size_t at = c->i;
    uint64_t ref;
    int rc = get_uv(c, &ref);
    if (rc != P_OK)
        return rc;
    if (ref >= TBIN_REF_FIRST_ID) {
        if (ref - TBIN_REF_FIRST_ID >= rd->nids)
            return bad(c, at, "string id %" PRIu64 " used before it is defined (%zu so far)",
                       ref - TBIN_REF_FIRST_ID, rd->nids);
        *s = rd->ids[ref - TBIN_REF_FIRST_ID];
        return P_OK;
    }
    if (ref == TBIN_REF_NEW && rd->nids >= TBIN_MAX_IDS)
        return bad(c, at, "more than %d interned strings in a run", TBIN_MAX_IDS);
    const unsigned char *p = NULL;
    size_t len = 0;
    rc = get_bytes(c, ref == TBIN_REF_NEW ? TBIN_MAX_NAME : TBIN_MAX_STR,
                   ref == TBIN_REF_NEW ? "an interned string" : "a literal string", &p, &len);
    if (rc != P_OK)
        return rc;
    if (memchr(p, '\0', len) != NULL)
        return bad(c, at, "a kind, name or key holds a NUL byte");
    char *copy = xrealloc(NULL, len + 1);
    memcpy(copy, p, len);
    copy[len] = '\0';
    if (ref == TBIN_REF_LITERAL) {
        *lit = copy;
    } else {
        if (rd->nids == rd->ids_cap) {
            rd->ids_cap = rd->ids_cap ? rd->ids_cap * 2 : 64;
            rd->ids = xrealloc(rd->ids, rd->ids_cap * sizeof *rd->ids);
        }
        rd->ids[rd->nids++] = copy;
    }
    *s = copy;
    return P_OK;
}

/* A value as parsed: its number, and its text in buf or as the number. */
struct val {
    const unsigned char *p;
    size_t len;
    int from_num;
};

static size_t decimal(int64_t num, char d[24])
{
    char t[24];
    size_t n = sizeof t;
    uint64_t u = num < 0 ? 0 - (uint64_t)num : (uint64_t)num;
    do {
        t[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (num < 0)
        t[--n] = '-';
    memcpy(d, t + n, sizeof t - n);
    return sizeof t - n;
}

/* get_rec - a record block of nf fields, tag read */
static int get_rec(struct cur *c, int nf, struct tbin_item *it, char **lits)
{
    struct tbin_reader *rd = c->rd;
    size_t at = c->i - 1;
    if (!rd->in_run)
        return bad(c, at, "a record before any run block");
    uint64_t u;
    int rc = get_uv(c, &u);
    if (rc != P_OK)
        return rc;
    /* The line shows time - epoch, negated when negative: both must fit. */
    mta_usec_t time, rel;
    if (__builtin_add_overflow(rd->prev, tbin_unzigzag(u), &time) ||
        __builtin_sub_overflow(time, rd->epoch, &rel) || rel == INT64_MIN)
        return bad(c, at + 1, "time out of range");
    struct trace_rec *r = &it->rec;
    memset(r, 0, sizeof *r);
    r->time = time;
    r->nfields = nf;
    r->field = rd->field;
    int nl = 0;
    if ((rc = get_ref(c, &r->kind, &lits[nl])) != P_OK)
        return rc;
    nl += lits[nl] != NULL;
    if ((rc = get_ref(c, &r->name, &lits[nl])) != P_OK)
        return rc;
    nl += lits[nl] != NULL;
    r->kind_len = strlen(r->kind);      /* the lengths a trace_rec carries */
    r->name_len = strlen(r->name);
    struct val v[MTA_TRACE_MAX_FIELDS];
    size_t room = 0;
    for (int i = 0; i < nf; i++) {
        struct trace_field *f = &rd->field[i];
        if ((rc = get_ref(c, &f->key, &lits[nl])) != P_OK)
            return rc;
        nl += lits[nl] != NULL;
        f->klen = strlen(f->key);
        size_t fat = c->i;
        unsigned flags;
        if ((rc = get_byte(c, &flags)) != P_OK)
            return rc;
        if ((flags & ~(unsigned)TBIN_F_ALL) != 0 || flags == TBIN_F_NUM_TEXT)
            return bad(c, fat, "field flags 0x%02x unknown", flags);
        f->has_num = (flags & TBIN_F_HAS_NUM) != 0;
        f->num = 0;
        if (f->has_num) {
            if ((rc = get_uv(c, &u)) != P_OK)
                return rc;
            f->num = tbin_unzigzag(u);
        }
        v[i].from_num = (flags & TBIN_F_NUM_TEXT) != 0;
        if (v[i].from_num)
            v[i].len = 24;
        else if ((rc = get_bytes(c, TBIN_MAX_STR, "a value", &v[i].p, &v[i].len)) != P_OK)
            return rc;
        room += v[i].len + 1;
    }
    /* The whole block is here: copy the values out, NUL-terminated. */
    if (room > rd->vals_cap) {
        rd->vals = xrealloc(rd->vals, room);
        rd->vals_cap = room;
    }
    char *p = rd->vals;
    for (int i = 0; i < nf; i++) {
        struct trace_field *f = &rd->field[i];
        f->str = p;
        if (v[i].from_num) {
            f->len = decimal(f->num, p);
        } else {
            memcpy(p, v[i].p, v[i].len);
            f->len = v[i].len;
        }
        p[f->len] = '\0';
        p += f->len + 1;
    }
    rd->prev = time;
    it->type = TBIN_ITEM_REC;
    it->epoch = rd->epoch;
    return P_OK;
}

/* get_block - one block from buf at rd->pos; P_OK with *line set when it
 * is a line's (a record or a text line), clear for a header or run block */
static int get_block(struct cur *c, struct tbin_item *it, int *line, char **lits)
{
    struct tbin_reader *rd = c->rd;
    *line = 0;
    if (!rd->header) {
        if (rd->len - c->i < TBIN_HEADER_LEN) {
            /* Compare what there is: a wrong first byte needs no more. */
            size_t have = rd->len - c->i;
            if (memcmp(rd->buf + c->i, TBIN_MAGIC, have < TBIN_MAGIC_LEN ? have : TBIN_MAGIC_LEN) != 0)
                goto magic;
            return P_SHORT;
        }
        if (memcmp(rd->buf + c->i, TBIN_MAGIC, TBIN_MAGIC_LEN) != 0)
            goto magic;
        if (rd->buf[c->i + TBIN_MAGIC_LEN] != TBIN_VERSION)
            return bad(c, c->i + TBIN_MAGIC_LEN, "binary trace version %u: this mtasim reads version %d",
                       rd->buf[c->i + TBIN_MAGIC_LEN], TBIN_VERSION);
        c->i += TBIN_HEADER_LEN;
        rd->header = 1;
        return P_OK;
    }
    size_t at = c->i;
    unsigned tag;
    int rc = get_byte(c, &tag);
    if (rc != P_OK)
        return rc;
    if (tag <= TBIN_TAG_REC_MAX) {
        *line = 1;
        return get_rec(c, (int)tag, it, lits);
    }
    if (tag == TBIN_TAG_RUN) {
        uint64_t u;
        if ((rc = get_uv(c, &u)) != P_OK)
            return rc;
        rd->epoch = rd->prev = tbin_unzigzag(u);
        rd->in_run = 1;
        drop_ids(rd, 0);
        return P_OK;
    }
    if (tag == TBIN_TAG_TEXT) {
        const unsigned char *p = NULL;
        if ((rc = get_bytes(c, TBIN_MAX_STR, "a text line", &p, &it->len)) != P_OK)
            return rc;
        it->type = TBIN_ITEM_TEXT;
        it->text = (const char *)p;
        *line = 1;
        return P_OK;
    }
    if (tag == TBIN_TAG_END) {
        rd->ended = 1;
        return P_OK;
    }
    return bad(c, at, "block type 0x%02x unknown", tag);
magic:
    return bad(c, c->i, "not a binary trace (no magic number; a text trace needs no 'trace show')");
}

/* refill - keep buf[pos..len), read more after it; -1 on a read error */
static int refill(struct tbin_reader *rd)
{
    if (rd->pos > 0) {
        memmove(rd->buf, rd->buf + rd->pos, rd->len - rd->pos);
        rd->len -= rd->pos;
        rd->base += rd->pos;
        rd->pos = 0;
    }
    if (rd->cap - rd->len < READ_CHUNK) {
        rd->cap = rd->cap ? rd->cap * 2 : 4 * READ_CHUNK;
        rd->buf = xrealloc(rd->buf, rd->cap);
    }
    size_t n = fread(rd->buf + rd->len, 1, rd->cap - rd->len, rd->in);
    rd->len += n;
    if (n == 0) {
        if (ferror(rd->in))
            return -1;
        rd->eof = 1;
    }
    return 0;
}

static int fail(struct tbin_reader *rd, size_t at, const char *msg)
{
    snprintf(rd->error, sizeof rd->error, "%s:%" PRIu64 ":%" PRIu64 ": %s", rd->name,
             rd->lines + 1, rd->base + at - rd->span + 1, msg);
    rd->failed = 1;
    return -1;
}

/* tbin_reader_next - the next line's item: 1, 0 at the end, -1 on error */
int tbin_reader_next(struct tbin_reader *rd, struct tbin_item *it)
{
    if (rd->failed)
        return -1;
    for (;;) {
        if (rd->pos == rd->len && !rd->eof && refill(rd) < 0) {
            snprintf(rd->error, sizeof rd->error, "%s: cannot read: %s", rd->name, strerror(errno));
            rd->failed = 1;
            return -1;
        }
        if (rd->pos == rd->len && rd->eof) {
            if (!rd->header)
                return fail(rd, rd->pos, "empty file: not a binary trace");
            if (!rd->ended)
                return fail(rd, rd->pos, "truncated: the file ends before its end block");
            return 0;
        }
        if (rd->ended)
            return fail(rd, rd->pos, "data after the end block");
        struct cur c = { rd, rd->pos };
        size_t nids = rd->nids;
        char *lits[HELD] = { 0 };
        int line, rc = get_block(&c, it, &line, lits);
        /* Literal kinds, names and keys live until the next call. */
        for (size_t i = 0; i < HELD; i++) {
            free(rd->held[i]);
            rd->held[i] = rc == P_OK ? lits[i] : NULL;
            if (rc != P_OK)
                free(lits[i]);
        }
        if (rc == P_BAD)
            return fail(rd, rd->bad_at, rd->msg);
        if (rc == P_SHORT) {
            drop_ids(rd, nids);
            if (rd->eof) {
                char msg[100];
                snprintf(msg, sizeof msg, "truncated: the file ends inside a %s",
                         !rd->header ? "header" : line ? "record" : "block");
                return fail(rd, rd->len, msg);
            }
            if (refill(rd) < 0) {
                snprintf(rd->error, sizeof rd->error, "%s: cannot read: %s", rd->name, strerror(errno));
                rd->failed = 1;
                return -1;
            }
            continue;
        }
        rd->pos = c.i;
        if (line) {
            rd->lines++;
            rd->span = rd->base + rd->pos;
            return 1;
        }
    }
}
