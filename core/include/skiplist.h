/*
 * skiplist.h - the Skiplist a plugin is handed: an active queue, read only
 *
 * SYNOPSIS
 *   #include <skiplist.h>
 *
 *   // connection_goal / mail_queue_maintain: every message waiting in aq
 *   skiplistnode *iter = sl_getlist(aq);
 *   ec_message *m = iter ? iter->data : NULL;
 *   while (m != NULL) {
 *       ...
 *       m = sl_next(aq, &iter);
 *   }
 *
 * DESCRIPTION
 *   The members are those of Momentum 3's "Skiplist" page and the
 *   functions those of its "Skiplist Functions" page that read a list.
 *   In mtasim a Skiplist is always one active queue: the messages of one
 *   (domain, binding) waiting for a connection, in the order a session
 *   takes them (first in, first out; a mail_queue_get_next_active
 *   provider may take another).  Each node's data is the message's
 *   ec_message (ec_message.h).  The core owns the list and its nodes: a
 *   plugin reads them during the hook call that handed it the list (or
 *   from mail_queue_active_queue_for_binding(), mail_queue.h) and never
 *   changes them; a node is valid until its message leaves the queue.
 *
 *   Members: size is the number of messages, bottom the first node (NULL
 *   when empty), height 1 (one level: the list is a plain ordered list),
 *   compare and comparek NULL (the order is the queue's, not a key's),
 *   preheight 0, index and agg NULL.  A node's height is 1, its data the
 *   ec_message, its sl the list, previndex and nextindex NULL; level[0]
 *   links it to its neighbours (struct skipconn is mtasim's: the page
 *   does not describe it).
 *
 *   sl_getlist(sl)        the first node, NULL when sl is NULL or empty
 *   sl_next(sl, &iter)    moves iter to the next node and returns its
 *                         data; NULL (iter NULL too) after the last
 *   sl_previous(sl, &iter) the same backwards
 *   sl_find(sl, key, &iter) the node whose data is key (the message's
 *                         ec_message pointer: mtasim's lists compare by
 *                         identity), its data or NULL; iter may be NULL
 *
 *   The functions that build or change a Skiplist (sl_init, sl_insert,
 *   sl_remove, sl_destruct, sl_set_compare) are not offered: the only
 *   lists are the core's queues, which plugins read.
 */
#ifndef MTASIM_SKIPLIST_H
#define MTASIM_SKIPLIST_H

#include <stdint.h>

#include "momentum_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*SkiplistComparator)(const void *, const void *);

/* One level's links of a node (mtasim's: the page does not describe it). */
struct skipconn {
    skiplistnode *next;
    skiplistnode *prev;
};

struct _iskiplist {
    SkiplistComparator compare;
    SkiplistComparator comparek;
    uint32_t height:8;
    uint32_t preheight:8;
    uint32_t size;
    struct skiplistnode *bottom;
    struct _iskiplist *index;
    struct _iskiplist *agg;
};

struct skiplistnode {
    void *data;
    Skiplist *sl;
    uint32_t height;
    skiplistnode *previndex;
    skiplistnode *nextindex;
    struct skipconn level[1];
};

struct skiplistnode *sl_getlist(Skiplist *sl);
void *sl_next(Skiplist *sl, skiplistnode **iter);
void *sl_previous(Skiplist *sl, skiplistnode **iter);
void *sl_find(Skiplist *sl, const void *key, skiplistnode **iter);

#ifdef __cplusplus
}
#endif

#endif
