/*
 * simtls - simulated TLS 1.3: well-formed records, no cryptography
 *
 * DESCRIPTION
 *   See simtls.h.  The layouts follow RFC 8446: the record header (5.1:
 *   type, legacy_record_version 0x0303 - 0x0301 allowed for the first
 *   ClientHello -, length), handshake messages (4: type, 24-bit length),
 *   ClientHello (4.1.2) with server_name (RFC 6066 3), supported_groups,
 *   signature_algorithms, supported_versions (4.2.1) and key_share
 *   (4.2.8); ServerHello (4.1.3) with supported_versions and key_share;
 *   the compatibility ChangeCipherSpec (D.4); encrypted records (5.2).
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simtls.h"

#define TAG_LEN 16                  /* the AEAD tag an encrypted record ends with */
#define SIMTLS_INBUF_MAX (4 * (SIMTLS_RECORD_MAX + 5))

static void die(const char *fn)
{
    fprintf(stderr, "mtasim: %s: out of memory\n", fn);
    abort();
}

void simtls_buf_free(struct simtls_buf *b)
{
    free(b->p);
    *b = (struct simtls_buf){ 0 };
}

void simtls_buf_put(struct simtls_buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (b->p == NULL)
            die("simtls put");
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void put(struct simtls_buf *b, const void *data, size_t len)
{
    simtls_buf_put(b, data, len);
}

static void put8(struct simtls_buf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put16(struct simtls_buf *b, unsigned v)
{
    put8(b, v >> 8);
    put8(b, v & 0xff);
}

static void put24(struct simtls_buf *b, size_t v)
{
    put8(b, (unsigned)(v >> 16) & 0xff);
    put16(b, (unsigned)v & 0xffff);
}

/* set16 - patch a length written earlier */
static void set16(struct simtls_buf *b, size_t at, size_t v)
{
    assert(v <= 0xffff);
    b->p[at] = (unsigned char)(v >> 8);
    b->p[at + 1] = (unsigned char)(v & 0xff);
}

static void set24(struct simtls_buf *b, size_t at, size_t v)
{
    b->p[at] = (unsigned char)(v >> 16);
    set16(b, at + 1, v & 0xffff);
}

/* pattern - n fixed bytes: deterministic "random" values and key shares */
static void pattern(struct simtls_buf *b, unsigned seed, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put8(b, (seed * 31u + (unsigned)i * 7u) & 0xff);
}

void simtls_init(struct simtls *t, enum simtls_role role)
{
    *t = (struct simtls){ .role = role, .state = SIMTLS_START };
}

void simtls_free(struct simtls *t)
{
    simtls_buf_free(&t->in);
}

/* record_begin - a record header with its length to patch; returns where */
static size_t record_begin(struct simtls_buf *b, int type, unsigned version)
{
    put8(b, (unsigned)type);
    put16(b, version);
    size_t at = b->len;
    put16(b, 0);
    return at;
}

static void record_end(struct simtls_buf *b, size_t at)
{
    set16(b, at, b->len - at - 2);
}

/* ext_begin / ext_end - an extension: type, 16-bit length */
static size_t ext_begin(struct simtls_buf *b, unsigned type)
{
    put16(b, type);
    size_t at = b->len;
    put16(b, 0);
    return at;
}

void simtls_client_hello(struct simtls *t, const char *sni, struct simtls_buf *w)
{
    assert(t->role == SIMTLS_CLIENT && t->state == SIMTLS_START);
    size_t sni_len = sni ? strlen(sni) : 0;
    if (sni_len > 255)
        sni_len = 0;                /* not a host name: no SNI */
    size_t rec = record_begin(w, SIMTLS_HANDSHAKE, 0x0301);
    put8(w, 1);                     /* client_hello */
    size_t hs = w->len;
    put24(w, 0);
    put16(w, 0x0303);               /* legacy_version */
    pattern(w, 1, 32);              /* random */
    put8(w, 0);                     /* legacy_session_id: empty */
    put16(w, 6);                    /* cipher_suites */
    put16(w, 0x1302);               /* TLS_AES_256_GCM_SHA384 */
    put16(w, 0x1303);               /* TLS_CHACHA20_POLY1305_SHA256 */
    put16(w, 0x1301);               /* TLS_AES_128_GCM_SHA256 */
    put8(w, 1);                     /* legacy_compression_methods: null */
    put8(w, 0);
    size_t exts = w->len;
    put16(w, 0);
    if (sni_len > 0) {
        size_t e = ext_begin(w, 0); /* server_name */
        put16(w, sni_len + 3);
        put8(w, 0);                 /* host_name */
        put16(w, sni_len);
        put(w, sni, sni_len);
        set16(w, e, w->len - e - 2);
    }
    size_t e = ext_begin(w, 10);    /* supported_groups: x25519 */
    put16(w, 2);
    put16(w, 0x001d);
    set16(w, e, w->len - e - 2);
    e = ext_begin(w, 13);           /* signature_algorithms: rsa_pss_rsae_sha256 */
    put16(w, 2);
    put16(w, 0x0804);
    set16(w, e, w->len - e - 2);
    e = ext_begin(w, 43);           /* supported_versions: TLS 1.3 */
    put8(w, 2);
    put16(w, 0x0304);
    set16(w, e, w->len - e - 2);
    e = ext_begin(w, 51);           /* key_share: one x25519 share */
    put16(w, 36);
    put16(w, 0x001d);
    put16(w, 32);
    pattern(w, 2, 32);
    set16(w, e, w->len - e - 2);
    set16(w, exts, w->len - exts - 2);
    set24(w, hs, w->len - hs - 3);
    record_end(w, rec);
    t->state = SIMTLS_HANDSHAKING;
}

/* encrypted - one record of type 23: content, its real type, the tag */
static void encrypted(struct simtls_buf *w, int inner_type, const void *data, size_t len)
{
    assert(len <= SIMTLS_PLAIN_MAX);
    size_t rec = record_begin(w, SIMTLS_APPDATA, 0x0303);
    put(w, data, len);
    put8(w, (unsigned)inner_type);
    for (int i = 0; i < TAG_LEN; i++)
        put8(w, 0);
    record_end(w, rec);
}

static void ccs(struct simtls_buf *w)
{
    size_t rec = record_begin(w, SIMTLS_CCS, 0x0303);
    put8(w, 1);
    record_end(w, rec);
}

void simtls_server_accept(struct simtls *t, const struct simtls_cert *cert,
                          struct simtls_buf *w)
{
    assert(t->role == SIMTLS_SERVER && t->state == SIMTLS_HANDSHAKING);
    size_t rec = record_begin(w, SIMTLS_HANDSHAKE, 0x0303);
    put8(w, 2);                     /* server_hello */
    size_t hs = w->len;
    put24(w, 0);
    put16(w, 0x0303);
    pattern(w, 3, 32);
    put8(w, 0);                     /* legacy_session_id_echo: the client's, empty */
    put16(w, 0x1302);
    put8(w, 0);
    size_t exts = w->len;
    put16(w, 0);
    size_t e = ext_begin(w, 43);
    put16(w, 0x0304);
    set16(w, e, w->len - e - 2);
    e = ext_begin(w, 51);
    put16(w, 0x001d);
    put16(w, 32);
    pattern(w, 4, 32);
    set16(w, e, w->len - e - 2);
    set16(w, exts, w->len - exts - 2);
    set24(w, hs, w->len - hs - 3);
    record_end(w, rec);
    ccs(w);
    /* EncryptedExtensions, Certificate, CertificateVerify, Finished: here
     * one message carrying the certificate's description. */
    char text[4 * MTA_TLS_NAME_MAX];
    int n = snprintf(text, sizeof text, "name=%s;alt=%s;nb=%" PRId64 ";na=%" PRId64 ";trusted=%d",
                     cert->name, cert->alt, (int64_t)cert->not_before, (int64_t)cert->not_after,
                     cert->trusted);
    assert(n > 0 && (size_t)n < sizeof text);
    encrypted(w, SIMTLS_HANDSHAKE, text, (size_t)n);
    t->cert = *cert;
}

void simtls_alert(struct simtls_buf *w, int description)
{
    size_t rec = record_begin(w, SIMTLS_ALERT, 0x0303);
    put8(w, description == SIMTLS_ALERT_CLOSE_NOTIFY ? 1 : 2);     /* warning / fatal */
    put8(w, (unsigned)description);
    record_end(w, rec);
}

size_t simtls_wrapped_len(size_t len)
{
    size_t records = len == 0 ? 0 : (len + SIMTLS_PLAIN_MAX - 1) / SIMTLS_PLAIN_MAX;
    return len + records * (5 + 1 + TAG_LEN);
}

void simtls_wrap(struct simtls_buf *w, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        size_t n = len < SIMTLS_PLAIN_MAX ? len : SIMTLS_PLAIN_MAX;
        encrypted(w, SIMTLS_APPDATA, p, n);
        p += n;
        len -= n;
    }
}

/* parse_cert - the server's flight: "name=..;alt=..;nb=..;na=..;trusted=.." */
static int parse_cert(struct simtls_cert *c, const unsigned char *p, size_t len)
{
    char text[4 * MTA_TLS_NAME_MAX];
    if (len >= sizeof text)
        return -1;
    memcpy(text, p, len);
    text[len] = '\0';
    *c = (struct simtls_cert){ 0 };
    for (char *f = strtok(text, ";"); f != NULL; f = strtok(NULL, ";")) {
        if (strncmp(f, "name=", 5) == 0)
            snprintf(c->name, sizeof c->name, "%s", f + 5);
        else if (strncmp(f, "alt=", 4) == 0)
            snprintf(c->alt, sizeof c->alt, "%s", f + 4);
        else if (strncmp(f, "nb=", 3) == 0)
            c->not_before = strtoll(f + 3, NULL, 10);
        else if (strncmp(f, "na=", 3) == 0)
            c->not_after = strtoll(f + 3, NULL, 10);
        else if (strncmp(f, "trusted=", 8) == 0)
            c->trusted = atoi(f + 8);
    }
    return 0;
}

/* fail - garbage or a fatal alert: nothing more is read */
static int fail(struct simtls *t, int alert)
{
    t->state = SIMTLS_FAILED;
    t->alert = alert;
    return SIMTLS_EV_FAILED;
}

/* one_record - act on one complete record; its events */
static int one_record(struct simtls *t, int type, const unsigned char *body, size_t len,
                      struct simtls_buf *wire, struct simtls_buf *plain)
{
    if (type == SIMTLS_CCS)
        return 0;                   /* compatibility only (RFC 8446 D.4) */
    if (type == SIMTLS_ALERT) {
        if (len != 2)
            return fail(t, SIMTLS_ALERT_DECODE_ERROR);
        if (body[1] == SIMTLS_ALERT_CLOSE_NOTIFY) {
            t->state = SIMTLS_CLOSED;
            return SIMTLS_EV_CLOSED;
        }
        return fail(t, body[1]);
    }
    if (type == SIMTLS_HANDSHAKE) {
        /* In the clear: the ClientHello (server), the ServerHello (client). */
        if (len < 4)
            return fail(t, SIMTLS_ALERT_DECODE_ERROR);
        if (t->role == SIMTLS_SERVER && t->state == SIMTLS_START && body[0] == 1) {
            t->state = SIMTLS_HANDSHAKING;
            return SIMTLS_EV_HELLO;
        }
        if (t->role == SIMTLS_CLIENT && t->state == SIMTLS_HANDSHAKING && body[0] == 2)
            return 0;
        return fail(t, SIMTLS_ALERT_DECODE_ERROR);
    }
    if (type != SIMTLS_APPDATA || len < 1 + TAG_LEN)
        return fail(t, SIMTLS_ALERT_DECODE_ERROR);
    size_t inner = len - TAG_LEN - 1;
    int inner_type = body[inner];
    if (inner_type == SIMTLS_ALERT) {
        if (inner == 2 && body[1] == SIMTLS_ALERT_CLOSE_NOTIFY) {
            t->state = SIMTLS_CLOSED;
            return SIMTLS_EV_CLOSED;
        }
        return fail(t, inner == 2 ? body[1] : SIMTLS_ALERT_DECODE_ERROR);
    }
    if (t->state == SIMTLS_HANDSHAKING && inner_type == SIMTLS_HANDSHAKE) {
        if (t->role == SIMTLS_CLIENT) {
            if (parse_cert(&t->cert, body, inner) < 0)
                return fail(t, SIMTLS_ALERT_DECODE_ERROR);
            ccs(wire);
            static const char finished[] = "finished";
            encrypted(wire, SIMTLS_HANDSHAKE, finished, sizeof finished - 1);
        }
        t->state = SIMTLS_UP;
        return SIMTLS_EV_UP;
    }
    if (t->state == SIMTLS_UP && inner_type == SIMTLS_APPDATA) {
        put(plain, body, inner);
        return inner > 0 ? SIMTLS_EV_DATA : 0;
    }
    return fail(t, SIMTLS_ALERT_DECODE_ERROR);
}

int simtls_input(struct simtls *t, const void *data, size_t len, struct simtls_buf *wire,
                 struct simtls_buf *plain)
{
    if (t->state == SIMTLS_FAILED || t->state == SIMTLS_CLOSED)
        return 0;
    if (t->in.len + len > SIMTLS_INBUF_MAX)
        return fail(t, SIMTLS_ALERT_DECODE_ERROR);
    if (len > 0)
        simtls_buf_put(&t->in, data, len);
    int events = 0;
    size_t off = 0;
    while (t->in.len - off >= 5 && !(events & (SIMTLS_EV_FAILED | SIMTLS_EV_CLOSED))) {
        const unsigned char *h = t->in.p + off;
        size_t rlen = (size_t)h[3] << 8 | h[4];
        if (h[0] < SIMTLS_CCS || h[0] > SIMTLS_APPDATA || h[1] != 3 || rlen > SIMTLS_RECORD_MAX) {
            events |= fail(t, SIMTLS_ALERT_DECODE_ERROR);
            break;
        }
        if (t->in.len - off < 5 + rlen)
            break;
        events |= one_record(t, h[0], h + 5, rlen, wire, plain);
        off += 5 + rlen;
    }
    if (off > 0) {
        memmove(t->in.p, t->in.p + off, t->in.len - off);
        t->in.len -= off;
    }
    return events;
}
