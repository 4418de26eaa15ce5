/*
 * live_tls - real TLS (OpenSSL) on the live environment's sockets
 *
 * DESCRIPTION
 *   See live_tls.h.  The certificate made at start is the kind a test
 *   server uses (swaks --tls and openssl s_client accept any certificate
 *   unless told to verify): self-signed, subject CN and one DNS
 *   subjectAltName, the name given.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "live_tls.h"

#define LIVE_TLS_CERT_DAYS 90

struct live_tls {
    SSL *ssl;
    BIO *rbio, *wbio;           /* memory: what was read, what is to be sent */
    int server;
    int up, failed, closed;
    int failure;                /* enum mta_tls_failure */
    /* live_tls_hold(): the server's handshake stops at the ClientHello
     * until live_tls_decide() (hello_cb) */
    int held, decided, verdict, hello_waiting;
    char reason[160];
    char *out;                  /* live_tls_pending's copy of wbio */
    size_t outlen;
};

static void openssl_reason(char *buf, size_t size, const char *what)
{
    unsigned long e = ERR_get_error();
    char text[120] = "";
    if (e != 0)
        ERR_error_string_n(e, text, sizeof text);
    ERR_clear_error();
    snprintf(buf, size, "%s%s%s", what, text[0] ? ": " : "", text);
}

/* make_cert - an EC P-256 key and a self-signed certificate for cn (and
 * the DNS names in alt, comma-separated; cn when alt is empty), valid from
 * before_s to after_s seconds from now; 0 or -1 */
static int make_cert(const char *cn, const char *alt, long before_s, long after_s, X509 **xp,
                     EVP_PKEY **keyp)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int ok = key != NULL && x != NULL;
    if (ok) {
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
        X509_gmtime_adj(X509_getm_notBefore(x), before_s);
        X509_gmtime_adj(X509_getm_notAfter(x), after_s);
        X509_set_pubkey(x, key);
        X509_NAME *name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, name);
        /* "DNS:a,DNS:b" from "a,b" */
        char san[2 * MTA_TLS_NAME_MAX + 64] = "";
        const char *names = alt != NULL && alt[0] ? alt : cn;
        size_t used = 0;
        for (const char *p = names; *p && used < sizeof san;) {
            size_t n = strcspn(p, ",");
            used += (size_t)snprintf(san + used, sizeof san - used, "%sDNS:%.*s", used ? "," : "",
                                     (int)n, p);
            p += n + (p[n] == ',');
        }
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
        X509_EXTENSION_free(ext);
        ok = ok && X509_sign(x, key, EVP_sha256()) > 0;
    }
    if (!ok) {
        X509_free(x);
        EVP_PKEY_free(key);
        return -1;
    }
    *xp = x;
    *keyp = key;
    return 0;
}

/* self_signed - the certificate made at start, for cn; 0 or -1 */
static int self_signed(SSL_CTX *ctx, const char *cn, char *err, size_t errsz)
{
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    int ok = make_cert(cn, NULL, -3600, (long)LIVE_TLS_CERT_DAYS * 86400, &x, &key) == 0 &&
             SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    if (!ok)
        openssl_reason(err, errsz, "cannot make a self-signed certificate");
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

int live_tls_use_cert(struct live_tls *t, const char *cn, const char *alt, long before_s,
                      long after_s)
{
    assert(t->server && !t->up);
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    int ok = make_cert(cn, alt, before_s, after_s, &x, &key) == 0 &&
             SSL_use_certificate(t->ssl, x) == 1 && SSL_use_PrivateKey(t->ssl, key) == 1;
    if (!ok)
        openssl_reason(t->reason, sizeof t->reason, "cannot make the session's certificate");
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

/* hello_cb - the ClientHello came: go on, wait for live_tls_decide(), or
 * end the handshake with the decided alert (OpenSSL sends it, RFC 8446 6.2) */
static int hello_cb(SSL *ssl, int *al, void *arg)
{
    struct live_tls *t = SSL_get_app_data(ssl);
    (void)arg;
    if (t == NULL || !t->held)
        return SSL_CLIENT_HELLO_SUCCESS;
    if (!t->decided) {
        t->hello_waiting = 1;
        return SSL_CLIENT_HELLO_RETRY;
    }
    t->hello_waiting = 0;
    if (t->verdict == 0)
        return SSL_CLIENT_HELLO_SUCCESS;
    *al = t->verdict;
    return SSL_CLIENT_HELLO_ERROR;
}

SSL_CTX *live_tls_server_ctx(const char *cert_file, const char *key_file, const char *cn,
                             char *err, size_t errsz)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        openssl_reason(err, errsz, "SSL_CTX_new");
        return NULL;
    }
    if (cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, key_file ? key_file : cert_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            char what[300];
            snprintf(what, sizeof what, "cannot use certificate %s", cert_file);
            openssl_reason(err, errsz, what);
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else if (self_signed(ctx, cn, err, errsz) < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_client_hello_cb(ctx, hello_cb, NULL);
    return ctx;
}

SSL_CTX *live_tls_client_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx != NULL) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);    /* the core judges (smtp_tls.c) */
        (void)SSL_CTX_set_default_verify_paths(ctx);
    }
    return ctx;
}

struct live_tls *live_tls_new(SSL_CTX *ctx, int server, const char *sni)
{
    struct live_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    t->server = server;
    if (server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        if (sni != NULL && sni[0] != '\0') {
            SSL_set_tlsext_host_name(t->ssl, sni);
        }
        (void)SSL_do_handshake(t->ssl);     /* the ClientHello, into wbio */
    }
    return t;
}

void live_tls_free(struct live_tls *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl);       /* and both BIOs */
    free(t->out);
    free(t);
}

int live_tls_up(const struct live_tls *t) { return t->up; }

void live_tls_hold(struct live_tls *t)
{
    assert(t->server && !t->up && !t->held);
    t->held = 1;
}

int live_tls_decide(struct live_tls *t, int alert)
{
    assert(t->held && !t->decided && alert >= 0 && alert <= 255);
    t->decided = 1;
    t->verdict = alert;
    return t->hello_waiting;
}
int live_tls_failure(const struct live_tls *t) { return t->failure; }
const char *live_tls_reason(const struct live_tls *t) { return t->reason; }

/* fail - the handshake (or the session) broke */
static int fail(struct live_tls *t, int rc)
{
    int e = SSL_get_error(t->ssl, rc);
    unsigned long code = ERR_peek_error();
    t->failed = 1;
    t->failure = ERR_GET_REASON(code) == SSL_R_UNSUPPORTED_PROTOCOL ||
                 ERR_GET_REASON(code) == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION
                 ? MTA_TLS_ERR_PROTOCOL_VERSION
                 : e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ? MTA_TLS_ERR_CLOSED
                 : MTA_TLS_ERR_HANDSHAKE;
    openssl_reason(t->reason, sizeof t->reason, "TLS handshake failed");
    return LIVE_TLS_FAILED;
}

int live_tls_input(struct live_tls *t, const void *raw, size_t len, struct simtls_buf *plain)
{
    int events = 0;
    if (t->failed || t->closed)
        return 0;
    if (len > 0 && BIO_write(t->rbio, raw, (int)len) != (int)len)
        return fail(t, -1);
    if (!t->up) {
        int rc = SSL_do_handshake(t->ssl);
        if (rc == 1) {
            t->up = 1;
            events |= LIVE_TLS_UP;
        } else {
            int e = SSL_get_error(t->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE &&
                e != SSL_ERROR_WANT_CLIENT_HELLO_CB)
                return fail(t, rc);
            return 0;
        }
    }
    char buf[16384];
    for (;;) {
        int n = SSL_read(t->ssl, buf, sizeof buf);
        if (n > 0) {
            simtls_buf_put(plain, buf, (size_t)n);
            events |= LIVE_TLS_DATA;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->closed = 1;
            events |= LIVE_TLS_CLOSED;
        } else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            events |= fail(t, n);
        }
        break;
    }
    return events;
}

int live_tls_close_notify(struct live_tls *t)
{
    if (!t->up || t->failed)
        return -1;
    (void)SSL_shutdown(t->ssl);
    return 0;
}

int live_tls_write(struct live_tls *t, const void *buf, size_t len)
{
    if (!t->up || t->failed)
        return -ENOTCONN;
    int n = SSL_write(t->ssl, buf, (int)len);      /* into the memory BIO: whole */
    return n > 0 ? n : -EPIPE;
}

const void *live_tls_pending(struct live_tls *t, size_t *len)
{
    size_t more = (size_t)BIO_ctrl_pending(t->wbio);
    if (more > 0) {
        char *p = realloc(t->out, t->outlen + more);
        if (p == NULL) {
            *len = t->outlen;
            return t->out;
        }
        t->out = p;
        int n = BIO_read(t->wbio, t->out + t->outlen, (int)more);
        if (n > 0)
            t->outlen += (size_t)n;
    }
    *len = t->outlen;
    return t->out;
}

void live_tls_sent(struct live_tls *t, size_t n)
{
    if (n > t->outlen)
        n = t->outlen;
    memmove(t->out, t->out + n, t->outlen - n);
    t->outlen -= n;
}

/* asn1_usec - an ASN1_TIME as microseconds since the epoch */
static mta_usec_t asn1_usec(const ASN1_TIME *at)
{
    struct tm tm;
    if (at == NULL || ASN1_TIME_to_tm(at, &tm) != 1)
        return 0;
    return (mta_usec_t)timegm(&tm) * MTA_USEC_PER_SEC;
}

int live_tls_peer(const struct live_tls *t, struct mta_tls_peer *out)
{
    if (!t->up)
        return -ENOTCONN;
    memset(out, 0, sizeof *out);
    snprintf(out->version, sizeof out->version, "%s", SSL_get_version(t->ssl));
    snprintf(out->cipher, sizeof out->cipher, "%s", SSL_get_cipher_name(t->ssl));
    out->bits = SSL_get_cipher_bits(t->ssl, NULL);
    X509 *cert = SSL_get1_peer_certificate(t->ssl);
    if (cert == NULL)
        return 0;
    out->has_cert = 1;
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, out->cert_name,
                              sizeof out->cert_name);
    GENERAL_NAMES *alts = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; alts != NULL && i < sk_GENERAL_NAME_num(alts); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(alts, i);
        if (g->type != GEN_DNS)
            continue;
        size_t have = strlen(out->cert_names);
        snprintf(out->cert_names + have, sizeof out->cert_names - have, "%s%.*s",
                 have ? "," : "", ASN1_STRING_length(g->d.dNSName),
                 (const char *)ASN1_STRING_get0_data(g->d.dNSName));
    }
    GENERAL_NAMES_free(alts);
    out->not_before = asn1_usec(X509_get0_notBefore(cert));
    out->not_after = asn1_usec(X509_get0_notAfter(cert));
    out->trusted = SSL_get_verify_result(t->ssl) == X509_V_OK;
    X509_free(cert);
    return 0;
}
