/*
 * pcap_import_internal - what the files of mtasim import share
 *
 * DESCRIPTION
 *   Not an interface: only sim/pcap/pcap_import*.c include it.  The
 *   import's state (struct pi_import), its sessions with their
 *   reassembly and their SMTP events, and the functions one file defines
 *   and another calls.  The declarations have hidden visibility, so the
 *   executable does not export them to plugins.
 */
#ifndef MTASIM_SIM_PCAP_IMPORT_INTERNAL_H
#define MTASIM_SIM_PCAP_IMPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pcap_import.h"
#include "mta_ip.h"

enum pi_ev_kind { EV_CMD, EV_REPLY, EV_BODY, EV_FIN, EV_RST };

/* One thing that happened in a session. */
struct pi_event {
    enum pi_ev_kind kind;
    int from_client;
    int64_t t;                  /* capture time, microseconds */
    char **lines;               /* EV_CMD: 1 line; EV_REPLY: the reply's lines */
    int nlines;
    size_t body_bytes;          /* EV_BODY: the message, dot-stuffing removed, CRLF kept;
                                 * EV_CMD of a BDAT: the chunk's octets (RFC 3030 2) */
    int answers;                /* EV_REPLY: index of the event it answers (-1: banner) */
};

/* Bytes held because they came before the bytes ahead of them. */
struct pi_seg {
    struct pi_seg *next;
    uint32_t seq;
    size_t len;
    unsigned char data[];
};

/* One direction's bytes after the 220 to STARTTLS, read as TLS records
 * (RFC 8446 5.1: type, legacy version, length, then length octets):
 * counted, never decrypted; a plaintext alert's level and description
 * (RFC 8446 6) are kept. */
struct pi_tls_dir {
    unsigned char hdr[7];       /* the record header being read, and an alert's 2 octets */
    int have;                   /* octets of hdr read */
    uint32_t left;              /* octets of the current record still to skip */
    unsigned records;
    int not_tls;                /* a header that is not TLS's: nothing more is read */
    int alert_level, alert;     /* the first plaintext alert; -1 = none */
};

/* One direction of a session: reassembly and the line being read. */
struct pi_dir {
    int have_base;
    uint32_t next;              /* next expected sequence number */
    struct pi_seg *ooo;         /* sorted by sequence number */
    int nooo;
    size_t ooo_bytes;
    int fin_pending;
    uint32_t fin_seq;
    char line[PI_MAX_LINE + 1];
    size_t linelen;
    int line_cut;               /* the line was longer than PI_MAX_LINE */
    size_t cut_bytes;           /* ... by this many bytes (counted in message data) */
};

struct pi_session {
    mta_ip cli, srv;            /* addresses, of one family */
    uint16_t cport, sport;
    int64_t syn_t, synack_t, ack_t;
    uint32_t isn;               /* the client's, from its SYN */
    int syn, synack, handshake_ack, no_syn;
    int refused, unreachable;
    int finished;               /* RST seen, or FIN both ways */
    int fin[2];
    struct pi_dir dir[2];       /* 0 client -> server, 1 server -> client */
    /* SMTP state */
    int in_body;
    size_t body_bytes;
    uint64_t bdat_left;         /* octets of a BDAT chunk still to come: raw, no lines */
    int tls;                    /* STARTTLS was answered 220: the rest is encrypted */
    int64_t tls_t;              /* ... from then on (capture time) */
    struct pi_tls_dir tlsd[2];  /* what followed the 220, per direction (as dir) */
    int64_t body_t;
    char *rl[PI_MAX_REPLY_LINES];   /* the reply being read */
    int nrl;
    int *waiting;               /* events awaiting a reply, oldest first (-1 = banner) */
    int nwaiting, waiting_head, waiting_cap;
    struct pi_event *ev;
    int nev, evcap;
    int cut_lines, odd_lines;
};

struct pi_import {
    const char *path;
    int64_t first_t, last_t;
    int have_t;
    int unsigned_seconds;       /* a classic pcap file: seconds are uint32 (as tshark reads them) */
    mta_ip server;              /* --server; unspecified (::) = by port */
    uint16_t ports[PI_MAX_PORTS + 3];
    int nports;
    struct pi_session **s;
    int ns;
    unsigned long packets, skipped_frag, skipped_other;
    size_t stored;              /* bytes of SMTP lines kept, all sessions */
    char err[512];              /* set: stop with this error */
};

/* One captured transaction: MAIL FROM, its RCPTs and what became of them. */
struct pi_tx {
    int session;                /* index into im->s */
    char *from;                 /* without brackets; NULL = unusable */
    char *rcpts[PI_MAX_RCPTS];
    int rcpt_code[PI_MAX_RCPTS];
    size_t rcpt_bytes;          /* the inject line must stay under the scenario's limit */
    int nrcpts;
    int mail_code, data_code, dot_code;     /* 0 = none; dot_code: also the last BDAT chunk's */
    long body;                  /* -1 = no message data; BDAT: the chunks' octets summed */
    long size_param;            /* MAIL's SIZE= (RFC 1870), -1 = none */
    int bdat;                   /* the message data went as BDAT chunks (RFC 3030) */
    int msg;                    /* the injection it belongs to, from 1; 0 = left out */
    int first_ev, last_ev;      /* its events in the session: MAIL to its last command's */
};

#pragma GCC visibility push(hidden)

/* pcap_import_read.c: errors, memory, reading the capture */
void pi_fail(struct pi_import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *pi_xrealloc(void *p, size_t n, size_t size);
char *pi_xstrndup(const char *s, size_t n);
int pi_verb_is(const char *line, const char *v);
void pi_import_free(struct pi_import *im);
int pi_read_capture(struct pi_import *im);

/* pcap_import_tx.c: transactions and messages */
int pi_reply_code(const struct pi_event *e);
int pi_bdat_is_last(const char *line);
char *pi_path_arg(const char *line, const char *prefix);
char pi_session_role(const struct pi_session *s);
int pi_answer_of(const struct pi_session *s, int i);
void pi_collect_txs(const struct pi_session *s, int si, struct pi_tx **txs, int *ntx, int *cap);
const char *pi_tx_fate(const struct pi_tx *tx);
int pi_assign_messages(const struct pi_import *im, struct pi_tx *txs, int ntx, int64_t *retry_gap,
                       int *skipped);
int pi_several_per_session(const struct pi_import *im, const struct pi_tx *txs, int ntx);
int pi_most_per_session(const struct pi_tx *txs, int ntx);

/* pcap_import_tls.c: what a capture shows of a STARTTLS */
enum pi_tls_out { PI_TLS_NONE, PI_TLS_UNKNOWN, PI_TLS_OK, PI_TLS_HANDSHAKE_FAILURE,
                  PI_TLS_PROTOCOL_VERSION, PI_TLS_RESET, PI_TLS_CLOSE };
enum pi_tls_out pi_tls_outcome(const struct pi_session *s);
const char *pi_tls_word(enum pi_tls_out o);
int pi_tls_failed(enum pi_tls_out o);
const char *pi_tls_level(const struct pi_import *im);

/* pcap_import_emit.c: the scenario */
int pi_emit_scenario(FILE *o, struct pi_import *im, const char *name);

#pragma GCC visibility pop

#endif
