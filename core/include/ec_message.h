/*
 * ec_message.h - a message as Momentum 3's hooks hand it to plugins
 *
 * SYNOPSIS
 *   #include <ec_message.h>
 *
 *   static void on_delivery(void *closure, ec_message *msg, domain_record *dr,
 *                           struct timeval *now, const char *note, int note_len)
 *   {
 *       char to[256];
 *       ec_message_get_envelope(msg, EC_MSG_ENV_TO | EC_MSG_ENV_COMPLETE,
 *                               to, sizeof to, NULL, 0, NULL);
 *       ...
 *   }
 *
 * DESCRIPTION
 *   The members are those of Momentum 3's "ec_message" page that mtasim
 *   has something behind, followed by the members of its "abstract_message"
 *   page that ec_message lacks: the queue hooks (mail_queue_insert_active,
 *   mail_queue_get_next_active, pre_mail_queue_message_requeue,
 *   get_msg_expiration_params) are documented with abstract_message *,
 *   the log hooks with ec_message *, and in mtasim both are this one
 *   structure (momentum_types.h), so a plugin can pass one where the other
 *   is documented.
 *
 *   A Momentum message has one recipient; an mtasim message has every
 *   recipient at one domain (message.h).  The ec_message of a message is
 *   about one recipient at a time: in a log_* hook the recipient the event
 *   is about, in smtp_client_rcptto_args the recipient whose RCPT is being
 *   built, otherwise the first recipient still pending (or the first).
 *   ec_message_get_rcptto() and ec_message_get_envelope(EC_MSG_ENV_TO)
 *   answer for that recipient, and _code holds its last reply.
 *
 *   The core owns the structure and keeps it current whenever it hands it
 *   to a plugin (a hook argument, a node of an active queue); a plugin
 *   reads it and may set next_attempt where ec_message_set_next_attempt
 *   says so.  It lives as long as the message: do not keep it after the
 *   message is done (a log_delivery_v1 or log_permanent_failure_v1 for its
 *   last recipient).
 *
 *   Members as mtasim fills them:
 *     id             slot: the virtual second the message was created;
 *                    pid: 0; counter: mtasim's message id (the injection
 *                    id, as the trace shows msg=ID), truncated to 16 bits;
 *                    mtasim_message_of() (mtasim_plugin.h) gives the
 *                    core's own message, with the whole id
 *     creation_time  when it was injected or received
 *     next_attempt   when it is due again (the delayed queue's key)
 *     final_time     when its last recipient became final, 0 before
 *     domain         its destination domain's record
 *     conn_handle    the connection it is in flight on, NULL otherwise
 *     binding_slot   its binding
 *     _mailfrom, _rcptto, _code  the strings the accessors return; use the
 *                    accessors (the first two are filled when first asked)
 *     stage          0
 *     priority       0 (mtasim has no message priorities)
 *     delivered      the current recipient: EM_TRYING while pending,
 *                    EM_SUCCEEDED delivered, EM_FAILED bounced or expired
 *     num_retries    attempts so far (the first try counts: mtasim's
 *                    message.attempts)
 *     bounce         1 for a delivery status notification the core made
 *     type           EM_EMAIL_MESSAGE; version 3; code_len the length of
 *                    _code (the abstract_message page)
 *   Any other member of the pages (parser state, spool and MIME parts,
 *   locks, resources, the validation dictionaries) does not exist here.
 *
 * ACCESSORS
 *   The documented functions that read a message:
 *     ec_message_get_mailfrom(m)  "MAIL FROM:<sender>\r\n"
 *     ec_message_get_rcptto(m)    "RCPT TO:<recipient>\r\n"
 *     ec_message_get_code(m)      the current recipient's last reply
 *                                 ("451 4.7.1 try later"), NULL before any
 *     ec_message_get_message_size(m)  the body's size in bytes
 *     ec_message_get_envelope(m, flags, local, llen, domain, dlen, isnull)
 *                                 the sender (EC_MSG_ENV_FROM) or the
 *                                 recipient (EC_MSG_ENV_TO): its local part
 *                                 into local and its domain into domain,
 *                                 or with EC_MSG_ENV_COMPLETE the whole
 *                                 address into local; each buffer NUL
 *                                 terminated within its size; *isnull 1
 *                                 for the null sender <>.  Returns 1, or 0
 *                                 for flags naming both or neither address
 *   The returned strings belong to the core and stay valid for the run.
 *   The flag values and EM_* constants are mtasim's own (the pages give
 *   only the names).
 */
#ifndef MTASIM_EC_MESSAGE_H
#define MTASIM_EC_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "momentum_types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _message_id {
    uint32_t slot;
    uint16_t pid;
    uint16_t counter;
};

/* The "string" page: len bytes at buffer (NUL terminated in mtasim). */
struct _ec_string {
    int len;
    int allocd;
    char *buffer;
    int type;
    io_object *backing;
};
#define STRING_TYPE_STATIC -100

/* delivered */
#define EM_TRYING 0
#define EM_SUCCEEDED 1
#define EM_FAILED 2
/* type (abstract_message) */
#define EM_SHORT_MESSAGE 1
#define EM_EMAIL_MESSAGE 2

/* ec_message_get_envelope() flags */
#define EC_MSG_ENV_FROM 0x1
#define EC_MSG_ENV_TO 0x2
#define EC_MSG_ENV_COMPLETE 0x4

typedef int ec_binding_slot;

struct message;

struct _ec_message {
    /* Momentum 3, "ec_message" */
    message_id id;
    struct timeval creation_time;
    struct timeval next_attempt;
    struct timeval final_time;
    domain_record *domain;
    connection_handle *conn_handle;
    ec_binding_slot binding_slot;
    string _mailfrom;
    string _rcptto;
    string _code;
    unsigned stage:7;
    unsigned priority:1;
    unsigned delivered:2;
    unsigned num_retries:16;
    unsigned bounce:2;
    /* Momentum 3, "abstract_message", where ec_message has no equal */
    unsigned type:4;
    unsigned version:4;
    uint16_t code_len;
    /* mtasim's, private: what the accessors answer from */
    const struct message *_mtasim;  /* the core's message; NULL for one being received */
    const char *_from;              /* the sender, no brackets; "" for <> */
    const char *_rcpt;              /* the current recipient, no brackets */
    size_t _size;                   /* the body's size */
};

const char *ec_message_get_mailfrom(ec_message *mess);
const char *ec_message_get_rcptto(ec_message *mess);
const char *ec_message_get_code(ec_message *mess);
size_t ec_message_get_message_size(ec_message *mess);
int ec_message_get_envelope(ec_message *mess, int flags, char *localpart, int llen,
                            char *domain, int dlen, int *isnull);

#ifdef __cplusplus
}
#endif

#endif
