/*
 * simtls - simulated TLS 1.3: well-formed records, no cryptography
 *
 * SYNOPSIS
 *   struct simtls t;  simtls_init(&t, SIMTLS_CLIENT);
 *   simtls_client_hello(&t, "mx.example", &wire);      bytes to send
 *   ev = simtls_input(&t, data, len, &wire, &plain);    bytes received
 *   simtls_server_accept(&t, &cert, &wire);             (server) after SIMTLS_EV_HELLO
 *   simtls_alert(&wire, SIMTLS_ALERT_PROTOCOL_VERSION);  (server) refuse it
 *   simtls_wrap(&wire, plain, len);                     application data
 *   simtls_free(&t);  simtls_buf_free(&b);
 *
 * DESCRIPTION
 *   What STARTTLS puts on the wire in the simulated world: the records
 *   and handshake messages of TLS 1.3 (RFC 8446) with their real framing
 *   (5.1 record layer, 4 handshake messages, 6 alerts), so that a packet
 *   capture shows a TLS session tshark decodes as such, and the cost of
 *   the handshake is its real round trip: ClientHello -> ServerHello,
 *   ChangeCipherSpec and the server's encrypted flight -> the client's
 *   ChangeCipherSpec and encrypted Finished, then application data.
 *
 *   Nothing is encrypted: an "encrypted" record (type 23) carries the
 *   TLSInnerPlaintext of RFC 8446 5.2 (content, content type byte) and a
 *   16-byte tag of zeros, so its bytes are deterministic and the other
 *   side reads them back.  The certificate the server shows travels in
 *   its encrypted flight as mtasim's own text ("name=..;alt=..;nb=..;
 *   na=..;trusted=.."), which only simtls reads.  Random values and key
 *   shares are fixed patterns: same scenario, same bytes.
 *
 *   simtls_input() reassembles records across reads (a record may arrive
 *   in pieces) and returns the events of every record completed, OR-ed
 *   (the client's Finished and its first command often come together);
 *   application data is appended to plain.  After SIMTLS_EV_FAILED or
 *   SIMTLS_EV_CLOSED nothing more is read.
 *
 * DIAGNOSTICS
 *   SIMTLS_EV_FAILED with t->alert (the alert received, or
 *   SIMTLS_ALERT_DECODE_ERROR for bytes that are not TLS).  A record is at
 *   most SIMTLS_RECORD_MAX bytes of fragment (RFC 8446 5.2: 2^14 + 256).
 */
#ifndef MTASIM_SIM_SIMTLS_H
#define MTASIM_SIM_SIMTLS_H

#include <stddef.h>
#include <stdint.h>

#include "mtasim_env.h"

#define SIMTLS_RECORD_MAX (16384 + 256)
#define SIMTLS_PLAIN_MAX 16384          /* application bytes per record (2^14) */

/* Record content types (RFC 8446 5.1). */
enum { SIMTLS_CCS = 20, SIMTLS_ALERT = 21, SIMTLS_HANDSHAKE = 22, SIMTLS_APPDATA = 23 };

/* Alert descriptions (RFC 8446 6). */
enum { SIMTLS_ALERT_CLOSE_NOTIFY = 0, SIMTLS_ALERT_HANDSHAKE_FAILURE = 40,
       SIMTLS_ALERT_DECODE_ERROR = 50, SIMTLS_ALERT_PROTOCOL_VERSION = 70 };

enum simtls_role { SIMTLS_CLIENT, SIMTLS_SERVER };
enum simtls_state { SIMTLS_START, SIMTLS_HANDSHAKING, SIMTLS_UP, SIMTLS_FAILED, SIMTLS_CLOSED };
enum simtls_event {         /* bits */
    SIMTLS_EV_HELLO = 1,    /* server: a ClientHello came; accept it or refuse it */
    SIMTLS_EV_UP = 2,       /* the handshake completed (client: t->cert is the server's) */
    SIMTLS_EV_DATA = 4,     /* application data was appended to plain */
    SIMTLS_EV_FAILED = 8,   /* a fatal alert or garbage: t->alert */
    SIMTLS_EV_CLOSED = 16,  /* close_notify */
};

struct simtls_buf {
    unsigned char *p;
    size_t len, cap;
};

struct simtls_cert {
    char name[MTA_TLS_NAME_MAX];        /* subject CN */
    char alt[MTA_TLS_NAME_MAX];         /* DNS names, comma-separated */
    mta_usec_t not_before, not_after;
    int trusted;
};

struct simtls {
    enum simtls_role role;
    enum simtls_state state;
    int alert;                          /* on SIMTLS_EV_FAILED */
    struct simtls_cert cert;            /* client: what the server showed */
    struct simtls_buf in;               /* bytes of records not complete yet */
};

void simtls_init(struct simtls *t, enum simtls_role role);
void simtls_free(struct simtls *t);
void simtls_buf_free(struct simtls_buf *b);
/* simtls_buf_put - append len bytes (grows b) */
void simtls_buf_put(struct simtls_buf *b, const void *data, size_t len);

void simtls_client_hello(struct simtls *t, const char *sni, struct simtls_buf *wire);
void simtls_server_accept(struct simtls *t, const struct simtls_cert *cert,
                          struct simtls_buf *wire);
void simtls_alert(struct simtls_buf *wire, int description);
/* simtls_wrap - application bytes as encrypted records (at most 2^14 each) */
void simtls_wrap(struct simtls_buf *wire, const void *data, size_t len);
/* simtls_wrapped_len - what simtls_wrap() makes of len bytes */
size_t simtls_wrapped_len(size_t len);
int simtls_input(struct simtls *t, const void *data, size_t len,
                               struct simtls_buf *wire, struct simtls_buf *plain);

#endif
