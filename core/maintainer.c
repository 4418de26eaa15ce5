/*
 * maintainer - the mail queue maintainer: when and how many connections
 *
 * SYNOPSIS
 *   maintain_soon(d);       ask for a pass over d at the current instant
 *
 * DESCRIPTION
 *   A pass runs on events, never by polling: new mail, a message leaving
 *   the delayed queue, a DNS answer, a connection freed.  maintain_soon()
 *   coalesces requests: at most one pass per domain is pending, run from a
 *   timer at the current virtual time so the caller's work finishes first.
 *
 *   For each binding, in slot order, that has active mail the pass calls
 *   initiate_connection_smtp() while the binding has fewer connections
 *   (connecting or open) than active messages and the domain is under
 *   Max_Outbound_Connections.  It stops early on MX_LOOKUP_PENDING (the
 *   answer will wake it) and HOST_MAX_REACHED (a freed connection will).
 *   Any other error carried out its action (which may have emptied the
 *   queue) or excluded a host, so the loop goes on; it is bounded by the
 *   queue length plus the number of MX addresses plus the limit.
 *
 *   pre_/post_mail_queue_maintain_domain bracket the pass; *rv is the
 *   number of connections it started.
 */
#include <assert.h>

#include "hooks/core/post_mail_queue_maintain_domain.h"
#include "hooks/core/pre_mail_queue_maintain_domain.h"
#include "mta_internal.h"

static void maintain_fire(void *arg)
{
    struct mta_domain *d = arg;
    d->maintain_pending = 0;
    d->maintain_timer = 0;
    maintain_domain(d);
}

/* maintain_soon - schedule one pass over d at the current instant */
void maintain_soon(struct mta_domain *d)
{
    struct mta *m = d->m;
    if (d->maintain_pending || m->shutting_down)
        return;
    d->maintain_pending = 1;
    d->maintain_timer = m->env->timer_start(m->env, mta_now(m), maintain_fire, d);
}

/* maintain_domain - open the connections d's active queues call for */
void maintain_domain(struct mta_domain *d)
{
    struct mta *m = d->m;
    struct timeval now = mta_tv(mta_now(m));
    int started = 0;
    call_core_pre_mail_queue_maintain_domain_hook(&d->pub, &now, &started);
    started = 0;
    int stop = 0;
    for (int slot = 0; slot < m->nbindings && !stop; slot++) {
        unsigned long bound = d->active[slot].count + (unsigned long)m->cfg.max_outbound_connections
                              + MTA_MAX_MX * MTA_MX_MAX_ADDRS + 8;
        for (unsigned long iter = 0; !stop; iter++) {
            if (iter > bound)
                mta_panic("maintain_domain", "no progress on %s after %lu connection attempts",
                          d->pub.domain, iter);
            unsigned long active = d->active[slot].count;
            if (active == 0 || (unsigned long)d->conns[slot] >= active)
                break;
            if (d->conns_total >= m->cfg.max_outbound_connections)
                break;
            int rc = initiate_connection_smtp(&d->pub, slot, &now);
            if (rc == 0)
                started++;
            else if (rc == CONN_ERROR(CONN_ERR_MX_LOOKUP_PENDING) ||
                     rc == CONN_ERROR(CONN_ERR_HOST_MAX_REACHED))
                stop = 1;
        }
    }
    call_core_post_mail_queue_maintain_domain_hook(&d->pub, &now, &started);
}
