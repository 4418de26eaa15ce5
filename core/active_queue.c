/*
 * active_queue - the active queues per (domain, binding), as Skiplists
 *
 * SYNOPSIS
 *   queue_append_active(msg);             msg is ready for a connection
 *   msg = queue_pop_active(d, slot);      a session takes the next message
 *   queue_remove_active(msg);             out of its queue, wherever it is
 *   Skiplist *aq = queue_active_list(d, slot);    what plugins are handed
 *
 *   (public, skiplist.h and mail_queue.h)
 *   sl_getlist, sl_next, sl_previous, sl_find
 *   mail_queue_active_queue_for_binding, mail_queue_size, mail_queue_delayed_size
 *
 * DESCRIPTION
 *   Each (domain, binding) with mail has one active queue: its messages
 *   waiting for a connection, first in first out.  The queue is the
 *   Skiplist plugins read (Momentum 3 hands the active queue to
 *   connection_goal and __mail_queue_maintain as a Skiplist *): a
 *   one-level list whose nodes are embedded in the messages, each node's
 *   data the message's ec_message, kept current when the message is
 *   appended (ec_message.c).  So a plugin walks the very list the core
 *   takes messages from, with no copy to keep in step.
 *
 *   The queue of a binding is allocated when it first gets mail and kept
 *   until the domain is freed; mail_queue_active_queue_for_binding() and
 *   queue_active_list() answer NULL while it is empty, as the documentation
 *   says.  equeue.active (binding 0's queue) follows the same rule.
 *
 *   mail_queue_insert_active runs after each append (not while the core
 *   shuts down): the message is in its queue when providers see it.
 *
 * DIAGNOSTICS
 *   Appending a message that is already active or done, or removing one
 *   that is not active, is an invariant violation (assert).
 */
#include <assert.h>
#include <stdlib.h>

#include "hooks/core/mail_queue_insert_active.h"
#include "mta_internal.h"

/* aq_of - the active queue of (d, slot), created when create is set */
static struct mta_aq *aq_of(struct mta_domain *d, int slot, int create)
{
    assert(slot >= 0 && slot < MTA_MAX_BINDINGS);
    struct mta_aq *q = d->active[slot];
    if (q == NULL && create) {
        q = calloc(1, sizeof *q);
        if (q == NULL)
            mta_panic("aq_of", "out of memory");
        q->sl.height = 1;
        d->active[slot] = q;
    }
    return q;
}

/* equeue_follow - equeue.active is binding 0's queue while it has mail */
static void equeue_follow(struct mta_domain *d, int slot)
{
    if (slot == 0)
        d->pub.equeue.active = queue_active_list(d, 0);
}

/* queue_append_active - put msg at the tail of its (domain, binding) queue */
void queue_append_active(struct mta_msg *msg)
{
    assert(msg->where != MSG_ACTIVE && msg->where != MSG_DONE);
    struct mta_domain *d = msg->dom;
    int slot = msg->pub.binding_slot;
    struct mta_aq *q = aq_of(d, slot, 1);
    skiplistnode *n = &msg->aq_node;
    n->data = msg_ec(msg, -1);
    n->sl = &q->sl;
    n->height = 1;
    n->level[0].next = NULL;
    n->level[0].prev = q->tail;
    if (q->tail)
        q->tail->level[0].next = n;
    else
        q->sl.bottom = n;
    q->tail = n;
    q->sl.size++;
    d->pub.active_count++;
    msg->where = MSG_ACTIVE;
    equeue_follow(d, slot);
    if (!d->m->shutting_down)
        call_core_mail_queue_insert_active_hook(&d->pub.equeue, &msg->ec);
}

/* queue_remove_active - take msg out of its active queue */
void queue_remove_active(struct mta_msg *msg)
{
    assert(msg->where == MSG_ACTIVE);
    struct mta_domain *d = msg->dom;
    int slot = msg->pub.binding_slot;
    struct mta_aq *q = aq_of(d, slot, 0);
    skiplistnode *n = &msg->aq_node;
    assert(q != NULL && n->sl == &q->sl);
    if (n->level[0].prev)
        n->level[0].prev->level[0].next = n->level[0].next;
    else
        q->sl.bottom = n->level[0].next;
    if (n->level[0].next)
        n->level[0].next->level[0].prev = n->level[0].prev;
    else
        q->tail = n->level[0].prev;
    n->level[0].next = n->level[0].prev = NULL;
    n->sl = NULL;
    assert(q->sl.size > 0 && d->pub.active_count > 0);
    q->sl.size--;
    d->pub.active_count--;
    msg->where = MSG_NEW;
    equeue_follow(d, slot);
}

/* queue_active_head - the first message of (d, slot), or NULL */
struct mta_msg *queue_active_head(struct mta_domain *d, int slot)
{
    struct mta_aq *q = aq_of(d, slot, 0);
    if (q == NULL || q->sl.bottom == NULL)
        return NULL;
    return mta_msg_of_ec(q->sl.bottom->data);
}

/* queue_active_count - messages waiting in (d, slot) */
unsigned long queue_active_count(const struct mta_domain *d, int slot)
{
    assert(slot >= 0 && slot < MTA_MAX_BINDINGS);
    return d->active[slot] ? d->active[slot]->sl.size : 0;
}

/* queue_active_list - (d, slot)'s queue as plugins see it, NULL while empty */
Skiplist *queue_active_list(struct mta_domain *d, int slot)
{
    struct mta_aq *q = aq_of(d, slot, 0);
    return q != NULL && q->sl.size > 0 ? &q->sl : NULL;
}

/* queue_active_holds - ec is waiting in (d, slot)'s queue
 *
 * Compares pointers only: ec may be anything a plugin returned. */
int queue_active_holds(struct mta_domain *d, int slot, const ec_message *ec)
{
    struct mta_aq *q = aq_of(d, slot, 0);
    for (skiplistnode *n = q ? q->sl.bottom : NULL; n != NULL; n = n->level[0].next)
        if (n->data == ec)
            return 1;
    return 0;
}

/* queue_pop_active - the next message of (d, slot) for a session, in flight */
struct mta_msg *queue_pop_active(struct mta_domain *d, int slot)
{
    struct mta_msg *msg = queue_active_head(d, slot);
    if (msg == NULL)
        return NULL;
    queue_remove_active(msg);
    msg->where = MSG_INFLIGHT;
    return msg;
}

/* queue_active_free - the domain's queue objects (their messages are freed
 * with the core's message table) */
void queue_active_free(struct mta_domain *d)
{
    for (int slot = 0; slot < MTA_MAX_BINDINGS; slot++) {
        free(d->active[slot]);
        d->active[slot] = NULL;
    }
    d->pub.equeue.active = NULL;
}

/* ---- what plugins call (skiplist.h, mail_queue.h) ------------------------ */

/* sl_getlist - the first node of sl */
struct skiplistnode *sl_getlist(Skiplist *sl)
{
    return sl ? sl->bottom : NULL;
}

/* sl_next - move *iter to the next node; its data or NULL */
void *sl_next(Skiplist *sl, skiplistnode **iter)
{
    (void)sl;
    if (iter == NULL || *iter == NULL)
        return NULL;
    *iter = (*iter)->level[0].next;
    return *iter ? (*iter)->data : NULL;
}

/* sl_previous - move *iter to the previous node; its data or NULL */
void *sl_previous(Skiplist *sl, skiplistnode **iter)
{
    (void)sl;
    if (iter == NULL || *iter == NULL)
        return NULL;
    *iter = (*iter)->level[0].prev;
    return *iter ? (*iter)->data : NULL;
}

/* sl_find - the node whose data is key (identity); its data or NULL */
void *sl_find(Skiplist *sl, const void *key, skiplistnode **iter)
{
    for (skiplistnode *n = sl ? sl->bottom : NULL; n != NULL; n = n->level[0].next)
        if (n->data == key) {
            if (iter)
                *iter = n;
            return n->data;
        }
    return NULL;
}

/* dom_of_queue - the core's domain behind a plugin's mail_queue pointer */
static struct mta_domain *dom_of_queue(mail_queue *mq)
{
    return mq != NULL && mq->domain != NULL ? mta_dom(mq->domain) : NULL;
}

/* mail_queue_active_queue_for_binding - that binding's queue, NULL while empty */
Skiplist *mail_queue_active_queue_for_binding(mail_queue *mq, int binding, int create)
{
    (void)create;       /* plugins cannot insert into the core's queues */
    struct mta_domain *d = dom_of_queue(mq);
    if (d == NULL || binding < 0 || binding >= MTA_MAX_BINDINGS)
        return NULL;
    return queue_active_list(d, binding);
}

/* mail_queue_size - active and delayed messages of the queue's domain */
int mail_queue_size(mail_queue *queue)
{
    struct mta_domain *d = dom_of_queue(queue);
    return d ? (int)(d->pub.active_count + d->pub.delayed_count) : 0;
}

/* mail_queue_delayed_size - its messages in the delayed queue */
int mail_queue_delayed_size(mail_queue *queue)
{
    struct mta_domain *d = dom_of_queue(queue);
    return d ? (int)d->pub.delayed_count : 0;
}
