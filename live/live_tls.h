/*
 * live_tls - real TLS (OpenSSL) on the live environment's sockets
 *
 * SYNOPSIS
 *   SSL_CTX *ctx = live_tls_server_ctx(cert, key, cn, err, sizeof err);
 *   struct live_tls *t = live_tls_new(ctx, server, sni);
 *   ev = live_tls_input(t, raw, len, &plain);      bytes read from the socket
 *   live_tls_write(t, plain, len);                 application bytes to send
 *   raw = live_tls_pending(t, &n); ... live_tls_sent(t, taken);
 *   live_tls_peer(t, &peer);  live_tls_free(t);
 *   live_tls_hold(t); ... live_tls_decide(t, alert);  (server) gate the handshake
 *
 * DESCRIPTION
 *   OpenSSL over a pair of memory BIOs: the caller (live_env.c) keeps
 *   reading and writing the non-blocking socket itself and passes the
 *   bytes through.  live_tls_input() returns LIVE_TLS_UP once the
 *   handshake completes, LIVE_TLS_FAILED (with live_tls_failure() and
 *   live_tls_reason()) when it fails, LIVE_TLS_DATA with decrypted bytes
 *   appended to plain, LIVE_TLS_CLOSED on close_notify.  What OpenSSL
 *   wants sent (handshake, records, alerts) waits in live_tls_pending().
 *
 *   live_tls_hold() (a server, before its first input) stops the handshake
 *   at the client's ClientHello until live_tls_decide(): alert 0 lets it
 *   go on, an alert description (RFC 8446 6: 40 handshake_failure, 70
 *   protocol_version, ...) ends it with that fatal alert, sent by OpenSSL
 *   (its ClientHello callback).  live_tls_decide() returns 1 when the
 *   ClientHello is waiting already: the caller runs live_tls_input(t,
 *   NULL, 0, ...) to go on; else the decision applies when it comes.
 *
 *   live_tls_server_ctx() loads a certificate and key (PEM files), or
 *   makes a self-signed one at start: an EC P-256 key and a certificate
 *   for cn valid from an hour ago for 90 days.  Client contexts verify
 *   nothing themselves (the core judges the certificate: smtp_tls.c) but
 *   load the system's CA store so live_tls_peer() can say "trusted".
 */
#ifndef MTASIM_LIVE_TLS_H
#define MTASIM_LIVE_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "mtasim_env.h"
#include "simtls.h"

enum { LIVE_TLS_UP = 1, LIVE_TLS_DATA = 2, LIVE_TLS_FAILED = 4, LIVE_TLS_CLOSED = 8 };

struct live_tls;

SSL_CTX *live_tls_server_ctx(const char *cert_file, const char *key_file, const char *cn,
                             char *err, size_t errsz);
SSL_CTX *live_tls_client_ctx(void);
struct live_tls *live_tls_new(SSL_CTX *ctx, int server, const char *sni);
void live_tls_free(struct live_tls *t);
int live_tls_up(const struct live_tls *t);
void live_tls_hold(struct live_tls *t);
int live_tls_decide(struct live_tls *t, int alert);
/* live_tls_use_cert - (server, before the handshake goes on) show a new
 * self-signed certificate for cn (DNS names: alt, comma-separated, or cn),
 * valid from before_s to after_s seconds from now; 0 or -1 */
int live_tls_use_cert(struct live_tls *t, const char *cn, const char *alt, long before_s,
                      long after_s);
int live_tls_input(struct live_tls *t, const void *raw, size_t len, struct simtls_buf *plain);
int live_tls_write(struct live_tls *t, const void *buf, size_t len);
/* live_tls_close_notify - the alert that ends the session, into pending; 0 or -1 */
int live_tls_close_notify(struct live_tls *t);
const void *live_tls_pending(struct live_tls *t, size_t *len);
void live_tls_sent(struct live_tls *t, size_t n);
int live_tls_failure(const struct live_tls *t);     /* enum mta_tls_failure */
const char *live_tls_reason(const struct live_tls *t);
int live_tls_peer(const struct live_tls *t, struct mta_tls_peer *out);

#endif
