/*
 * mail_queue.h - a domain's mail queue, as Momentum 3 documents it
 *
 * SYNOPSIS
 *   #include <mail_queue.h>
 *
 *   // post_initiate_connection_smtp: which message was this attempt for?
 *   Skiplist *aq = mail_queue_active_queue_for_binding(&dr->equeue, binding_slot, 0);
 *   skiplistnode *first = sl_getlist(aq);
 *   ec_message *guess = first ? first->data : NULL;
 *
 * DESCRIPTION
 *   Every domain_record holds its queue in equeue (domain.h).  Momentum's
 *   post_initiate_connection_smtp page suggests peeking at the first
 *   message of the active queue of (domain, binding) to guess which
 *   message a connection attempt was for; in mtasim that guess is right
 *   when the hook runs, since the hook runs before any CONN_ACTION moves a
 *   message (connection.c).
 *
 *   Members (the "mail_queue" page):
 *     active        the active queue of binding 0 ("default"), NULL while
 *                   it is empty; the other bindings' through
 *                   mail_queue_active_queue_for_binding()
 *     bound_active  NULL: mtasim keeps the bindings' queues itself
 *     delayed       NULL: mtasim's delayed queue is one heap for every
 *                   domain; mail_queue_delayed_size() counts this
 *                   domain's part of it
 *     domain        the domain_record the queue belongs to
 *     maintainer    NULL (no Event objects in mtasim)
 *
 *   mail_queue_active_queue_for_binding(mq, binding, create)
 *       the active queue of that binding slot, or NULL while it is empty
 *       (as documented); create is accepted and ignored: a plugin cannot
 *       insert into the core's queues
 *   mail_queue_size(mq)          active plus delayed messages of the domain
 *   mail_queue_delayed_size(mq)  its messages waiting in the delayed queue
 */
#ifndef MTASIM_MAIL_QUEUE_H
#define MTASIM_MAIL_QUEUE_H

#include "momentum_types.h"
#include "skiplist.h"

#ifdef __cplusplus
extern "C" {
#endif

struct _mail_queue {
    Skiplist *active;
    RSplayTree *bound_active;
    Skiplist *delayed;
    domain_record *domain;
    Event *maintainer;
};

Skiplist *mail_queue_active_queue_for_binding(mail_queue *mq, int binding, int create);
int mail_queue_size(mail_queue *queue);
int mail_queue_delayed_size(mail_queue *queue);

#ifdef __cplusplus
}
#endif

#endif
