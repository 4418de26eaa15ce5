/*
 * momentum_types.h - the names of the Momentum-style structures, declared once
 *
 * DESCRIPTION
 *   The structures the Momentum 3 hook pages pass around refer to each
 *   other (a domain_record holds its mail_queue, a mail_queue points at its
 *   domain_record, an ec_message at its domain and connection, ...).  This
 *   header declares every typedef name once, with the structure tags the
 *   documentation uses (struct _ec_message, struct _domain_record, ...), so
 *   that each public header can include it and define its own structures in
 *   any order.  Nothing here has members; see
 *
 *     domain.h       domain_record, host_record, mx_record, binding
 *     mail_queue.h   mail_queue
 *     skiplist.h     Skiplist, skiplistnode
 *     ec_message.h   ec_message (also abstract_message), message_id, string
 *     connection.h   connection_handle, connection
 *     smtp.h         delivery_construct, smtp_client_args
 *     validate.h     accept_construct, validate_context, struct ec_auth_info
 *
 *   Types the documentation names but never describes, and that mtasim has
 *   nothing behind (Event, io_object, RSplayTree, ec_hash_table, ec_bag),
 *   are incomplete: a plugin can hold and compare such pointers (mtasim
 *   always hands out NULL for them), not look inside.
 */
#ifndef MTASIM_MOMENTUM_TYPES_H
#define MTASIM_MOMENTUM_TYPES_H

typedef struct _domain_record domain_record;
typedef struct mx_host host_record;
typedef struct mx_host mx_record;
typedef struct _mail_queue mail_queue;
typedef struct _iskiplist Skiplist;
typedef struct skiplistnode skiplistnode;
typedef struct _ec_message ec_message;
/* Momentum 3 documents the queue hooks with abstract_message and the log
 * hooks with ec_message; in mtasim they are one structure, which carries
 * the members of both pages (ec_message.h). */
typedef struct _ec_message abstract_message;
typedef struct _message_id message_id;
typedef struct _ec_string string;
typedef struct _connection_handle connection_handle;
typedef struct _connection connection;
typedef struct _delivery_construct delivery_construct;
typedef struct _smtp_client_args smtp_client_args;
typedef struct _accept_construct accept_construct;
typedef struct _validate_context validate_context;

/* Named by the documentation, opaque here (always NULL in mtasim). */
typedef struct _Event Event;
typedef struct _io_object io_object;
typedef struct _RSplayTree RSplayTree;
typedef struct _ec_hash_table ec_hash_table;
typedef struct _ec_bag ec_bag;
/* The documented dictionary type: an ec_hash_table. */
typedef ec_hash_table *ECDict;

#endif
