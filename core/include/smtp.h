/*
 * smtp.h - an outbound SMTP session as Momentum 3 hands it to plugins
 *
 * SYNOPSIS
 *   #include <smtp.h>
 *
 *   static int add_envid(void *closure, delivery_construct *dc, smtp_client_args *args)
 *   {
 *       if (smtp_client_args_add(args, "ENVID", "abc123") != 0)
 *           return 1;                  // the message fails for now
 *       return 0;
 *   }
 *
 * DESCRIPTION
 *   delivery_construct: the members of Momentum 3's "delivery_construct"
 *   page that mtasim has something behind.  One per outbound connection,
 *   owned by the core and current whenever a hook receives it:
 *     e                  NULL (no Event objects in mtasim)
 *     message            the message in flight (ec_message.h), NULL when
 *                        none is (smtp_should_session_shutdown after the
 *                        last message of a session, pre_read_smtp of the
 *                        banner)
 *     conn_handle        the connection (connection.h)
 *     last_nread         bytes of the last read from the server
 *     bytes              bytes in buffer
 *     towrite            0 (the core writes whole commands)
 *     buffer             the last complete reply read, NUL terminated
 *                        (post_read_smtp); NULL before the first one
 *     use_sendfile, tcpbuf, migrate_connections_between_sibling_domains,
 *     keep_message_dicts_in_memory  0
 *     binding_domain_*_timeout  the configured timeouts, in seconds
 *                        (idle_timeout, and the RSET, EHLO, MAIL, RCPT
 *                        and end-of-data reply timeouts)
 *     binding_domain_max_deliveries  max_deliveries_per_connection (0 =
 *                        unlimited)
 *     binding_domain_max_recipients_per_batch
 *                        max_recipients_per_transaction (0 = unlimited)
 *     binding_domain_send_8bitmime  1 (8BITMIME is used when offered)
 *     binding_domain_use_tls  0 (the outbound client has no TLS)
 *   The page's other members (large_buf, batch, transaction, alt_body,
 *   the remaining binding_domain_* and TLS settings) do not exist here.
 *
 *   smtp_client_args: the ESMTP parameters of one MAIL FROM or RCPT TO
 *   command, as smtp_client_mailfrom_args and smtp_client_rcptto_args
 *   providers receive them (the "smtp_client_args" page).  dict is the
 *   core's (opaque: use the functions); len is the number of parameters.
 *   The command carries them in the order they were first added, each as
 *   " KEYWORD=VALUE" (" KEYWORD" when the value is NULL or empty), after
 *   the parameters the core adds itself (SIZE, BODY, RET, ENVID, NOTIFY,
 *   ORCPT, BY).
 *
 *   smtp_client_args_add(args, extension, value)
 *       adds the parameter or replaces its value; 0, or non-zero when it
 *       cannot be added: a keyword that is not an esmtp-keyword (RFC 5321
 *       4.1.2: a letter or digit, then letters, digits and '-'), a value
 *       with a space, '=' or a control character, more than
 *       SMTP_CLIENT_ARGS_MAX parameters, or a command line that would be
 *       longer than RFC 5321 4.5.3.1.4 allows
 *   smtp_client_args_delete(args, extension)
 *       removes it (the core's own parameters too), if present
 *   smtp_client_args_exists_and_fetch(args, extension, &value)
 *       non-zero and *value set when present (NULL for a bare keyword);
 *       0 and *value untouched otherwise
 *   Keywords compare without regard to case (RFC 5321 2.4).
 */
#ifndef MTASIM_SMTP_H
#define MTASIM_SMTP_H

#include <time.h>

#include "momentum_types.h"
#include "connection.h"
#include "ec_message.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SMTP_CLIENT_ARGS_MAX 16

struct _delivery_construct {
    Event *e;
    ec_message *message;
    connection_handle *conn_handle;
    int last_nread;
    int bytes;
    int towrite;
    char *buffer;
    time_t config_last_refreshed;
    int use_sendfile;
    int tcpbuf;
    int migrate_connections_between_sibling_domains;
    int keep_message_dicts_in_memory;
    int binding_domain_idle_timeout;
    int binding_domain_rset_timeout;
    int binding_domain_ehlo_timeout;
    int binding_domain_mailfrom_timeout;
    int binding_domain_rcptto_timeout;
    int binding_domain_body_timeout;
    int binding_domain_max_deliveries;
    int binding_domain_max_recipients_per_batch;
    int binding_domain_send_8bitmime;
    int binding_domain_use_tls;
};

struct _smtp_client_args {
    ECDict dict;
    int len;
};

int smtp_client_args_add(smtp_client_args *args, const char *extension, const char *value);
void smtp_client_args_delete(smtp_client_args *args, const char *extension);
int smtp_client_args_exists_and_fetch(smtp_client_args *args, const char *extension,
                                      const char **value);

#ifdef __cplusplus
}
#endif

#endif
