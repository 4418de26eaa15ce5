/*
 * trace_bin_write - a run's trace records encoded as the binary trace
 *
 * See trace_bin_write.h; the bytes are docs/trace-format.md.
 */
#include <stdlib.h>
#include <string.h>

#include "trace_bin_format.h"
#include "trace_bin_write.h"

struct tbin_id {
    uint64_t hash;
    char *text;
    size_t len;
};

/* The last id found for a string at this address: kinds, names and keys
 * are mostly the core's string literals, so the address usually finds the
 * id without hashing; the text is still compared, so a reused buffer with
 * other text only misses. */
#define PTR_CACHE 512
struct ptr_hit {
    const char *p;
    uint32_t id;
};

struct tbin_writer {
    FILE *out;
    struct ptr_hit cache[PTR_CACHE];
    mta_usec_t prev;            /* the previous record's time (the epoch at first) */
    unsigned char *buf;
    size_t len, cap;
    struct tbin_id *ids;        /* by id, in order of first use */
    size_t nids, ids_cap;
    uint32_t *slot;             /* open addressing: id + 1, 0 = empty */
    size_t nslots;              /* a power of two, at least twice nids */
};

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "mtasim: out of memory in the binary trace writer\n");
        abort();
    }
    return p;
}

static void put_block(FILE *out, const unsigned char *p, size_t n)
{
    fwrite(p, 1, n, out);
    fflush(out);
}

/* tbin_write_header - the magic and version: the start of every file */
void tbin_write_header(FILE *out)
{
    unsigned char h[TBIN_HEADER_LEN];
    memcpy(h, TBIN_MAGIC, TBIN_MAGIC_LEN);
    h[TBIN_MAGIC_LEN] = TBIN_VERSION;
    put_block(out, h, sizeof h);
}

/* tbin_write_text - a text block: line (no '\n') shown as is */
void tbin_write_text(FILE *out, const char *line, size_t len)
{
    if (len > TBIN_MAX_STR) {
        fprintf(stderr, "mtasim: a trace text line of %zu bytes is over the binary trace's bound\n", len);
        abort();
    }
    unsigned char *b = xrealloc(NULL, 1 + TBIN_VARINT_MAX + len);
    size_t n = 0;
    b[n++] = TBIN_TAG_TEXT;
    n += tbin_put_uv(b + n, len);
    memcpy(b + n, line, len);
    put_block(out, b, n + len);
    free(b);
}

/* tbin_write_end - the end block: nothing may follow */
void tbin_write_end(FILE *out)
{
    unsigned char e = TBIN_TAG_END;
    put_block(out, &e, 1);
}

static void reserve(struct tbin_writer *w, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : TBIN_BATCH * 2;
        while (cap < w->len + n)
            cap *= 2;
        w->buf = xrealloc(w->buf, cap);
        w->cap = cap;
    }
}

/* tbin_writer_create - a run starting at epoch: its run block, buffered */
struct tbin_writer *tbin_writer_create(FILE *out, mta_usec_t epoch)
{
    struct tbin_writer *w = xrealloc(NULL, sizeof *w);
    memset(w, 0, sizeof *w);
    w->out = out;
    w->prev = epoch;
    reserve(w, 1 + TBIN_VARINT_MAX);
    w->buf[w->len++] = TBIN_TAG_RUN;
    w->len += tbin_put_uv(w->buf + w->len, tbin_zigzag(epoch));
    return w;
}

static void flush(struct tbin_writer *w)
{
    if (w->len > 0)
        put_block(w->out, w->buf, w->len);
    w->len = 0;
}

void tbin_writer_close(struct tbin_writer *w)
{
    if (w == NULL)
        return;
    flush(w);
    for (size_t i = 0; i < w->nids; i++)
        free(w->ids[i].text);
    free(w->ids);
    free(w->slot);
    free(w->buf);
    free(w);
}

/* FNV-1a: only a lookup key, never what decides an id */
static uint64_t hash_of(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static void rehash(struct tbin_writer *w)
{
    size_t n = w->nslots ? w->nslots * 2 : 256;
    free(w->slot);
    w->slot = xrealloc(NULL, n * sizeof *w->slot);
    memset(w->slot, 0, n * sizeof *w->slot);
    w->nslots = n;
    for (size_t i = 0; i < w->nids; i++) {
        size_t k = (size_t)w->ids[i].hash & (n - 1);
        while (w->slot[k])
            k = (k + 1) & (n - 1);
        w->slot[k] = (uint32_t)i + 1;
    }
}

/* put_ref_slow - put_ref when the address cache missed */
static __attribute__((noinline)) void put_ref_slow(struct tbin_writer *w, const char *s, size_t len,
                                                   struct ptr_hit *hit)
{
    if (len <= TBIN_MAX_NAME) {
        if (w->nids * 2 >= w->nslots)
            rehash(w);
        uint64_t h = hash_of(s, len);
        size_t k = (size_t)h & (w->nslots - 1);
        for (; w->slot[k]; k = (k + 1) & (w->nslots - 1)) {
            const struct tbin_id *id = &w->ids[w->slot[k] - 1];
            if (id->hash == h && id->len == len && memcmp(id->text, s, len) == 0) {
                *hit = (struct ptr_hit){ s, w->slot[k] - 1 };
                w->len += tbin_put_uv(w->buf + w->len, (uint64_t)(w->slot[k] - 1) + TBIN_REF_FIRST_ID);
                return;
            }
        }
        if (w->nids < TBIN_MAX_IDS) {
            if (w->nids == w->ids_cap) {
                w->ids_cap = w->ids_cap ? w->ids_cap * 2 : 64;
                w->ids = xrealloc(w->ids, w->ids_cap * sizeof *w->ids);
            }
            char *copy = xrealloc(NULL, len + 1);
            memcpy(copy, s, len);
            w->ids[w->nids] = (struct tbin_id){ h, copy, len };
            *hit = (struct ptr_hit){ s, (uint32_t)w->nids };
            w->slot[k] = (uint32_t)++w->nids;
            w->buf[w->len++] = TBIN_REF_NEW;
            goto text;
        }
    }
    w->buf[w->len++] = TBIN_REF_LITERAL;
text:
    w->len += tbin_put_uv(w->buf + w->len, len);
    memcpy(w->buf + w->len, s, len);
    w->len += len;
}

/* put_ref - a reference to s (docs/trace-format.md, "Strings"): an id
 * when s was interned before, else s inline, interned when it may be */
static inline void put_ref(struct tbin_writer *w, const char *s, size_t len)
{
    uintptr_t a = (uintptr_t)s;
    struct ptr_hit *hit = &w->cache[(a ^ a >> 9) & (PTR_CACHE - 1)];
    if (hit->p == s && w->ids[hit->id].len == len && memcmp(w->ids[hit->id].text, s, len) == 0)
        w->len += tbin_put_uv(w->buf + w->len, (uint64_t)hit->id + TBIN_REF_FIRST_ID);
    else
        put_ref_slow(w, s, len, hit);
}

/* is_decimal - whether s is exactly num's decimal form ("-12", never "012",
 * "-0" or "+1"): read as a number (no division), then compared */
static int is_decimal(const char *s, size_t len, int64_t num)
{
    size_t i = len > 0 && s[0] == '-';
    if (len - i == 0 || len - i > 19 || (s[i] == '0' && len - i > 1))
        return 0;
    uint64_t v = 0;
    for (size_t k = i; k < len; k++) {
        unsigned d = (unsigned char)s[k] - '0';
        if (d > 9)
            return 0;
        v = v * 10 + d;
    }
    /* 19 digits stay below 2^64; INT64_MIN (19 digits too) is the one
     * magnitude above INT64_MAX. */
    uint64_t mag = num < 0 ? 0 - (uint64_t)num : (uint64_t)num;
    return v == mag && (num < 0) == (i == 1) && !(i == 1 && v == 0);
}

static void check_len(size_t len)
{
    if (len > TBIN_MAX_STR) {
        fprintf(stderr, "mtasim: a trace string of %zu bytes is over the binary trace's bound\n", len);
        abort();
    }
}

/* tbin_writer_rec - r as a record block (docs/trace-format.md, "Records") */
void tbin_writer_rec(struct tbin_writer *w, const struct trace_rec *r)
{
    size_t klen = r->kind_len, nlen = r->name_len;     /* trace_store.h: always set */
    check_len(klen);
    check_len(nlen);
    /* One reservation for the record: every part's bound. */
    size_t need = 1 + TBIN_VARINT_MAX + 2 * (1 + TBIN_VARINT_MAX) + klen + nlen;
    size_t keylen[MTA_TRACE_MAX_FIELDS];
    for (int i = 0; i < r->nfields; i++) {
        check_len(r->field[i].len);
        keylen[i] = r->field[i].klen;
        need += 2 * (1 + TBIN_VARINT_MAX) + keylen[i] + 1 + 2 * TBIN_VARINT_MAX + r->field[i].len;
    }
    reserve(w, need);
    w->buf[w->len++] = (unsigned char)r->nfields;
    w->len += tbin_put_uv(w->buf + w->len, tbin_zigzag(r->time - w->prev));
    w->prev = r->time;
    put_ref(w, r->kind, klen);
    put_ref(w, r->name, nlen);
    for (int i = 0; i < r->nfields; i++) {
        const struct trace_field *f = &r->field[i];
        put_ref(w, f->key, keylen[i]);
        if (f->has_num && is_decimal(f->str, f->len, f->num)) {
            w->buf[w->len++] = TBIN_F_HAS_NUM | TBIN_F_NUM_TEXT;
            w->len += tbin_put_uv(w->buf + w->len, tbin_zigzag(f->num));
            continue;
        }
        w->buf[w->len++] = f->has_num ? TBIN_F_HAS_NUM : 0;
        if (f->has_num)
            w->len += tbin_put_uv(w->buf + w->len, tbin_zigzag(f->num));
        w->len += tbin_put_uv(w->buf + w->len, f->len);
        memcpy(w->buf + w->len, f->str, f->len);
        w->len += f->len;
    }
    if (w->len >= TBIN_BATCH)
        flush(w);
}
