/*
 * connection.h - outbound connection initiation and its error codes
 *
 * Connections are made per (domain, binding) pair, never per message: the
 * message a connection carries is whatever is first in that pair's active
 * queue when the session is ready for it.
 *
 * Error codes.  The names are those of the documented API; the numeric
 * values are mtasim's own (the originals are not public) and are part of
 * mtasim's ABI:
 *
 *   value name                        meaning
 *       1 CONN_ERR_MX_LOOKUP_FAILED     the MX (or implicit A) lookup failed
 *       2 CONN_ERR_MX_LOOKUP_PENDING    a lookup is in flight; retry when answered
 *       3 CONN_ERR_SMTP_NULL_MX         the domain publishes a null MX: no mail
 *       4 CONN_ERR_NO_MXS_REACHABLE     every MX address is down or excluded
 *       5 CONN_ERR_PROHIBITED_IP        the chosen address is prohibited
 *       6 CONN_ERR_HOST_MAX_REACHED     connection limits reached
 *       7 CONN_ERR_SOCKET               no socket (descriptor exhaustion)
 *       8 CONN_ERR_IOCTL                setting the socket non-blocking failed
 *       9 CONN_ERR_BIND                 the binding's source address is unusable
 *      10 CONN_ERR_CONNECT              the remote refused the connection
 *      11 CONN_ERR_CONNECT_NETWORK      the network or host is unreachable
 *      12 CONN_ERR_CONNECT_TIMEOUT      the connect did not complete in time
 *
 * An error may be OR-ed with action flags telling initiate_connection_smtp
 * what to do with the queue:
 *
 *   0x100 CONN_ACTION_REQUEUE1        move one message from the active queue
 *                                     of this (domain, binding) to delayed
 *   0x200 CONN_ACTION_PURGE_DOMAIN    empty the active queues of the domain
 *                                     on all bindings
 *
 * CONN_ERROR(x) turns such a value into what initiate_connection_smtp
 * returns and what post_initiate_connection_smtp sees as conn_fd: a
 * negative number, so it can never be mistaken for a descriptor.  Only the
 * code survives: CONN_ERROR(x) == -(x & CONN_ERR_MASK).
 */
#ifndef MTASIM_CONNECTION_H
#define MTASIM_CONNECTION_H

#include <stdint.h>
#include <sys/time.h>

#include "domain.h"
#include "momentum_types.h"

#define CONN_ERR_MX_LOOKUP_FAILED   1
#define CONN_ERR_MX_LOOKUP_PENDING  2
#define CONN_ERR_SMTP_NULL_MX       3
#define CONN_ERR_NO_MXS_REACHABLE   4
#define CONN_ERR_PROHIBITED_IP      5
#define CONN_ERR_HOST_MAX_REACHED   6
#define CONN_ERR_SOCKET             7
#define CONN_ERR_IOCTL              8
#define CONN_ERR_BIND               9
#define CONN_ERR_CONNECT            10
#define CONN_ERR_CONNECT_NETWORK    11
#define CONN_ERR_CONNECT_TIMEOUT    12
#define CONN_ERR__MAX               12

#define CONN_ERR_MASK               0xff
#define CONN_ACTION_REQUEUE1        0x100
#define CONN_ACTION_PURGE_DOMAIN    0x200
#define CONN_ACTION_MASK            0x300

#define CONN_ERROR(x)               (-(int)((x) & CONN_ERR_MASK))

/* The documentation spells the codes both ways; both work. */
#define CONN_ERROR_MX_LOOKUP_FAILED  CONN_ERR_MX_LOOKUP_FAILED
#define CONN_ERROR_MX_LOOKUP_PENDING CONN_ERR_MX_LOOKUP_PENDING
#define CONN_ERROR_SMTP_NULL_MX      CONN_ERR_SMTP_NULL_MX
#define CONN_ERROR_NO_MXS_REACHABLE  CONN_ERR_NO_MXS_REACHABLE
#define CONN_ERROR_PROHIBITED_IP     CONN_ERR_PROHIBITED_IP
#define CONN_ERROR_HOST_MAX_REACHED  CONN_ERR_HOST_MAX_REACHED
#define CONN_ERROR_SOCKET            CONN_ERR_SOCKET
#define CONN_ERROR_IOCTL             CONN_ERR_IOCTL
#define CONN_ERROR_BIND              CONN_ERR_BIND
#define CONN_ERROR_CONNECT           CONN_ERR_CONNECT
#define CONN_ERROR_CONNECT_NETWORK   CONN_ERR_CONNECT_NETWORK
#define CONN_ERROR_CONNECT_TIMEOUT   CONN_ERR_CONNECT_TIMEOUT

/*
 * SMTP session stages, as the documented logs number them (pre_read_smtp
 * and post_read_smtp receive them).  Even numbers: sending the command;
 * odd: reading its reply.  18 is mtasim's own (QUIT).
 */
#define SMTP_STAGE_NOT_CONNECTED    0
#define SMTP_STAGE_IDLE             1
#define SMTP_STAGE_MAIL             3
#define SMTP_STAGE_RCPT             5
#define SMTP_STAGE_DATA             7
#define SMTP_STAGE_BODY             8
#define SMTP_STAGE_CONFIRM          9   /* reading the reply to the final dot */
#define SMTP_STAGE_EHLO             11
#define SMTP_STAGE_BANNER           12
#define SMTP_STAGE_RSET             14
#define SMTP_STAGE_STARTTLS         16  /* reading the reply to STARTTLS */
#define SMTP_STAGE_TLS              17  /* the TLS handshake */
#define SMTP_STAGE_QUIT             18

/*
 * connection_handle - one outbound connection, for one (domain, binding) pair
 *
 * The first members are those of Momentum 3's "connection_handle" page:
 *   host          the MX host the address came from (host_record, domain.h;
 *                 the connection's own copy, valid while the handle is)
 *   binding_slot  the binding it was made from
 *   offset        the index of the connected address in host->addrs
 *   user_data     what the initiator passed to initiate_connection
 *   conn          the connection's state (below)
 * then mtasim's own.  The handle is valid from the connect until
 * dec_outbound_connections returns.
 *
 * connection - the members of Momentum 3's "connection" page that mtasim
 * has something behind; the core keeps them current whenever it hands the
 * handle to a plugin:
 *   fd            the descriptor, -1 after the close (a simulated
 *                 descriptor under mtasim run: docs/plugins.md,
 *                 "Simulated descriptors")
 *   in_use        > 0 while a message is in flight on it, 0 when idle,
 *                 < 0 while connecting
 *   statetime     when the session entered its current SMTP stage
 *   startdelivery when the message in flight was taken, 0 when idle
 *   deliveries    messages delivered on this connection so far
 *   esmtp         1 when the server answered EHLO, 0 after HELO
 *   addr_offset   as the handle's offset
 *   domain        the domain the connection is for
 *   mx            the MX host (the handle's host)
 *   curr_message  the message in flight, NULL when idle
 *   recipients    RCPT commands issued on this connection
 * (state, state_closure, local_state, idle_fdevent, death, tcp_buffer,
 * capabilities and the TLS members do not exist in mtasim.)
 */
struct _connection {
    int fd;
    int in_use;
    struct timeval statetime;
    struct timeval startdelivery;
    int deliveries;
    int esmtp;
    int addr_offset;
    domain_record *domain;
    mx_record *mx;
    ec_message *curr_message;
    int recipients;
};

struct _connection_handle {
    /* Momentum 3, "connection_handle" */
    host_record *host;
    int binding_slot;
    int offset;
    void *user_data;
    connection *conn;
    /* mtasim's own */
    mta_ip addr;                /* remote address, IPv4 (mapped) or IPv6 */
    domain_record *dr;
    int fd;                     /* descriptor while open, -1 after close */
};

/* Called when the connect completed (err == 0) or failed asynchronously
 * (err = CONN_ERR_CONNECT or CONN_ERR_CONNECT_NETWORK). */
typedef void (*connection_finish_cb)(connection_handle *ch, int err, void *user_data);
/* Called when the connect did not complete within Connect_Timeout. */
typedef void (*connection_timeout_cb)(connection_handle *ch, void *user_data);

/*
 * initiate_connection - open a connection for (dr, binding)
 *
 * Chooses a remote address from the domain's MX list and starts a
 * non-blocking connect.  Returns a handle (the connect may still be in
 * progress) or NULL with *error set to a CONN_ERR code, possibly OR-ed
 * with CONN_ACTION flags.
 */
connection_handle *initiate_connection(domain_record *dr, int binding,
                                       struct timeval *now,
                                       connection_finish_cb finish_connect_cb,
                                       connection_timeout_cb timeout_cb,
                                       void *user_data, int *error);

/*
 * initiate_connection_smtp - start an SMTP session for (dr, binding)
 *
 * Called by the mail queue maintainer.  Calls initiate_connection with the
 * SMTP client's callbacks, carries out the CONN_ACTION actions, calls the
 * post_initiate_connection_smtp hook with the descriptor or the
 * CONN_ERROR() code, and returns 0 or CONN_ERROR(err).
 */
int initiate_connection_smtp(domain_record *dr, int binding, struct timeval *now);

/* The symbolic name of a CONN_ERR code ("CONN_ERR_CONNECT"), or NULL. */
const char *conn_err_name(int code);
/* The code for a name (either spelling), or 0 if unknown. */
int conn_err_from_name(const char *name);
/* Render err (code | actions) as "CONN_ERR_X|CONN_ACTION_Y" into buf. */
const char *conn_err_format(int err, char *buf, unsigned bufsize);

#endif
