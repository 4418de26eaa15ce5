#ifndef SMTP_SERVER_INT_H
#define SMTP_SERVER_INT_H
/*
 * smtp_server_int - what the inbound server's files share (not an API)
 *
 * DESCRIPTION
 *   The server's limits, its session state machine's states and the
 *   session and server structures (smtp_server.c states the contract), and
 *   the few functions the files of the server call across:
 *
 *     smtp_server.c        the sessions, the command dispatcher, MAIL, RCPT,
 *                          DATA and the end of data, STARTTLS, the plugins'
 *                          chains
 *     smtp_server_auth.c   AUTH PLAIN and LOGIN (RFC 4954, RFC 4616): the
 *                          user table, mq_smtp_in_authenticate, validate_auth
 */
#include <stddef.h>
#include <stdint.h>

#include "mq.h"
#include "mta_internal.h"
#include "outq.h"
#include "smtp_server.h"

#define SRV_CMD_LINE_MAX 512            /* RFC 5321 4.5.3.1.4, with CRLF */
#define SRV_INBUF_MAX (1024 * 1024)     /* unprocessed input of one session */
#define SRV_DATA_CHUNK 4096             /* a data line longer than this is streamed */
#define SRV_REPLY_MAX 1024
#define SRV_OUT_MAX (1024 * 1024)       /* replies the client has not read */
#define SRV_MAX_USERS 1024
#define SRV_MAX_SESSIONS 65536
#define SRV_ID_BASE 1000UL

enum ss_state { SS_CONNECT, SS_COMMAND, SS_REFUSED, SS_DATA, SS_AUTH_PLAIN,
                SS_AUTH_LOGIN_USER, SS_AUTH_LOGIN_PASS, SS_CLOSED };

struct srv_user {
    char *name, *password;
};

/* A message body the queue refers to (message bodies are borrowed). */
struct srv_body {
    struct srv_body *next;
    char *bytes;
};

struct srv_session;
typedef void (*after_fn)(struct srv_session *s);

struct smtp_server {
    struct mta *m;
    int listen_fd;                      /* -1 when not listening */
    uint32_t addr;
    uint16_t port;
    struct mta_listen_opts opts;
    struct srv_user users[SRV_MAX_USERS];
    int nusers;
    struct srv_session *sessions;       /* open or closing, newest first */
    int nsessions;
    unsigned long accepted;             /* messages queued so far */
    struct srv_body *bodies;
    mta_inbound_fn observer;
    void *observer_arg;
};

struct srv_session {
    struct smtp_server *srv;
    struct srv_session *next, *prev;
    MQ_SmtpConnection conn;             /* what plugins see; conn.fd is the descriptor */
    int fd;                             /* kept for the trace after close */
    uint32_t peer;
    uint16_t peer_port;
    enum ss_state state;
    const char *close_reason;
    mta_timer_id timer;
    struct outq out;                    /* replies the socket has not taken yet */
    /* input */
    char *in;
    size_t inlen, incap;
    size_t in_at;                       /* process(): the input consumed so far */
    int skipping;                       /* an over-long command: drop up to LF */
    int data_midline;                   /* a long data line was flushed in part */
    /* session */
    int helo;                           /* 0 none, 1 HELO, 2 EHLO */
    int errors;
    int auth_done;
    int auth_table_ok;                  /* the user table accepted the credentials */
    char *login;                        /* AUTH: the user, while the password comes */
    char *password;                     /* AUTH: while the plugins look at it */
    /* transaction */
    int has_mail;
    char *mail_from;
    char **rcpts;
    int nrcpts;
    char *data;
    size_t data_len, data_cap, data_total;
    /* plugin chains */
    int busy;                           /* a chain runs: input waits */
    int closing_chain;                  /* mq_smtp_in_close is running */
    int in_process;                     /* process() is on the stack */
    int tls_handshake;                  /* after the 220 to STARTTLS, until TLS is up */
    after_fn after;
    struct mq_call call;
    MQ_Message msg;
    int msg_rcpt;                       /* the message chain's recipient */
    int plugin_code;                    /* code of a reply a plugin sent, 0 none */
    int plugin_bol;                     /* the plugin's output is at a line start */
    int refused;                        /* validate_connect said no ... */
    char refusal[SRV_REPLY_MAX];        /* ... with this reply */
    const char *auth_mech;              /* "PLAIN" or "LOGIN" while AUTH runs */
    struct mta_vsession v;              /* what the Momentum inbound hooks see */
    int reply_final;                    /* the data phase answered already */
};

/* srv_reply - one reply line to the client, CRLF added (and traced) */
void srv_reply(struct srv_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* srv_client_error - count a client mistake whose reply went out; too many end it */
void srv_client_error(struct srv_session *s);
/* srv_run_chain - the MailerQ chain of cb, then after(s); the session waits */
void srv_run_chain(struct srv_session *s, enum mq_cb cb, after_fn after);
/* srv_strdup, srv_strndup - copies; out of memory aborts the process */
char *srv_strdup(const char *s);
char *srv_strndup(const char *s, size_t n);

/* smtp_server_auth.c: the AUTH command and its 334 continuation lines */
void srv_cmd_auth(struct srv_session *s, const char *arg);
void srv_auth_continuation(struct srv_session *s, const char *line);

#endif
