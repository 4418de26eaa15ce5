/*
 * maintainer - the mail queue maintainer: when and how many connections
 *
 * SYNOPSIS
 *   maintain_soon(d);          a pass over d at the current instant
 *   maintain_at(d, when);      a pass over d at a later instant
 *
 * DESCRIPTION
 *   A pass runs on events, never by polling: new mail, a message leaving
 *   the delayed queue, a DNS answer, a connection freed, a throttle window
 *   ending.  At most one pass per domain is pending; asking for an earlier
 *   one moves it, asking for a later one is a no-op.  Passes run from a
 *   timer, so the caller's own work finishes first.
 *
 *   For each binding, in slot order, with active mail:
 *     1. idle sessions of (domain, binding) take the mail first
 *        (connection reuse: no new connection while one is waiting);
 *        then a mail_queue_maintain provider may take over the binding
 *        (non-zero: no connection is opened for it in this pass);
 *     2. goal = the number of active messages, which connection_goal
 *        providers (handed the active queue, a Skiplist) may change (the
 *        last writer wins); every connection of the pair, connecting or
 *        open, counts against it;
 *     3. while the binding has fewer connections than the goal:
 *          - throttle_messages or throttle_connections exhausted, or a
 *            check_outbound_conn_throttle provider says so -> stop, and
 *            come back when the window allows;
 *          - initiate_connection_smtp(); MX_LOOKUP_PENDING while a lookup
 *            is in flight (the answer will wake us) and HOST_MAX_REACHED at
 *            a connection limit (a freed connection will) stop the pass;
 *            any other error carried out its action or excluded an
 *            address, so the loop goes on (waits_for_event).
 *   The loop is bounded: every iteration opens a connection, removes a
 *   message or excludes an address.
 *
 *   pre_/post_mail_queue_maintain_domain bracket the pass; *rv is the
 *   number of connections it started.
 */
#include <assert.h>
#include <stdlib.h>

#include "hooks/core/check_outbound_conn_throttle.h"
#include "hooks/core/connection_goal.h"
#include "hooks/core/mail_queue_maintain.h"
#include "hooks/core/post_mail_queue_maintain_domain.h"
#include "hooks/core/pre_mail_queue_maintain_domain.h"
#include "mta_internal.h"
#include "trace.h"

static mta_usec_t tv_usec(struct timeval tv)
{
    return (mta_usec_t)tv.tv_sec * MTA_USEC_PER_SEC + tv.tv_usec;
}

/* ---- sliding windows ---------------------------------------------------- */

static void window_expire(struct mta_window *w, const struct mta_rate *r, mta_usec_t now)
{
    while (w->n > 0) {
        int oldest = (w->head - w->n + w->cap) % w->cap;
        if (w->t[oldest] > now - r->per)
            break;
        w->n--;
    }
}

/* window_allows - may one more event happen now?  If not, *later says when */
int window_allows(struct mta_window *w, const struct mta_rate *r, mta_usec_t now,
                  mta_usec_t *later)
{
    if (r->count == 0)
        return 1;
    if (w->cap == 0)
        return 1;
    window_expire(w, r, now);
    if (w->n < r->count)
        return 1;
    int oldest = (w->head - w->n + w->cap) % w->cap;
    *later = w->t[oldest] + r->per;
    return 0;
}

/* window_note - one event happened now */
void window_note(struct mta_window *w, const struct mta_rate *r, mta_usec_t now)
{
    if (r->count == 0)
        return;
    if (w->cap == 0) {
        w->cap = r->count;
        w->t = calloc((size_t)w->cap, sizeof *w->t);
        if (w->t == NULL)
            mta_panic("window_note", "out of memory");
    }
    window_expire(w, r, now);
    assert(w->n < w->cap);
    w->t[w->head] = now;
    w->head = (w->head + 1) % w->cap;
    w->n++;
}

/* ---- per-host connection counts ----------------------------------------- */

/* host_conns_find - addr's entry in host_conns[], or IDXMAP_NONE */
static uint32_t host_conns_find(struct mta *m, mta_ip addr)
{
    size_t pos;
    uint64_t key = mta_ip_key(addr);
    for (uint32_t i = idxmap_first(&m->host_conns_index, key, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&m->host_conns_index, key, &pos))
        if (mta_ip_eq(m->host_conns[i].addr, addr))
            return i;
    return IDXMAP_NONE;
}

int host_conns_get(struct mta *m, mta_ip addr)
{
    uint32_t i = host_conns_find(m, addr);
    return i == IDXMAP_NONE ? 0 : m->host_conns[i].n;
}

void host_conns_add(struct mta *m, mta_ip addr, int delta)
{
    uint32_t i = host_conns_find(m, addr);
    if (i != IDXMAP_NONE) {
        m->host_conns[i].n += delta;
        assert(m->host_conns[i].n >= 0);
        return;
    }
    assert(delta > 0);
    if (m->nhost_conns == m->host_conns_cap) {
        m->host_conns_cap = m->host_conns_cap ? m->host_conns_cap * 2 : 16;
        m->host_conns = realloc(m->host_conns, (size_t)m->host_conns_cap * sizeof *m->host_conns);
        if (m->host_conns == NULL)
            mta_panic("host_conns_add", "out of memory");
    }
    idxmap_put(&m->host_conns_index, mta_ip_key(addr), (uint32_t)m->nhost_conns);
    m->host_conns[m->nhost_conns++] = (struct mta_host_conns){ addr, delta };
}

/* ---- scheduling passes ---------------------------------------------------- */

static void maintain_fire(void *arg)
{
    struct mta_domain *d = arg;
    d->maintain_pending = 0;
    d->maintain_timer = 0;
    maintain_domain(d);
}

/* maintain_at - a pass over d at when (or earlier, if one is due sooner) */
void maintain_at(struct mta_domain *d, mta_usec_t when)
{
    struct mta *m = d->m;
    if (m->shutting_down)
        return;
    mta_usec_t now = mta_now(m);
    if (when < now)
        when = now;
    if (d->maintain_pending) {
        if (d->maintain_at <= when)
            return;
        m->env->timer_cancel(m->env, d->maintain_timer);
    }
    d->maintain_pending = 1;
    d->maintain_at = when;
    d->maintain_timer = m->env->timer_start(m->env, when, maintain_fire, d);
}

/* maintain_soon - a pass over d at the current instant */
void maintain_soon(struct mta_domain *d)
{
    maintain_at(d, mta_now(d->m));
}

/* maintain_wait_for_slot - d waits for a connection anywhere to close */
void maintain_wait_for_slot(struct mta_domain *d)
{
    struct mta *m = d->m;
    if (d->waiting_for_slot)
        return;
    if (m->nslot_waiters == m->slot_waiters_cap) {
        m->slot_waiters_cap = m->slot_waiters_cap ? m->slot_waiters_cap * 2 : 16;
        m->slot_waiters = realloc(m->slot_waiters,
                                  (size_t)m->slot_waiters_cap * sizeof *m->slot_waiters);
        if (m->slot_waiters == NULL)
            mta_panic("maintain_wait_for_slot", "out of memory");
    }
    m->slot_waiters[m->nslot_waiters++] = d;
    d->waiting_for_slot = 1;
}

/* maintain_wake_slot_waiters - a connection closed: every waiting domain gets a pass */
void maintain_wake_slot_waiters(struct mta *m)
{
    int n = m->nslot_waiters;
    m->nslot_waiters = 0;
    for (int i = 0; i < n; i++) {
        m->slot_waiters[i]->waiting_for_slot = 0;
        maintain_soon(m->slot_waiters[i]);
    }
}

/* throttled - is opening a connection for (d, slot) held back?  *later says until when */
static int throttled(struct mta_domain *d, int slot, struct timeval *now, mta_usec_t *later)
{
    struct mta *m = d->m;
    mta_usec_t t = tv_usec(*now);
    const char *reason = NULL;
    if (!window_allows(&d->msg_window, &m->cfg.throttle_messages, t, later))
        reason = "throttle_messages";
    else if (!window_allows(&d->conn_window, &m->cfg.throttle_connections, t, later))
        reason = "throttle_connections";
    if (reason) {
        if (mta_tracing()) {
            struct mta_tb tb;
            mta_tb_begin(&tb, "queue", "throttled");
            mta_tb_str(&tb, "domain", d->pub.domain);
            mta_tb_binding(&tb, slot);
            mta_tb_str(&tb, "reason", reason);
            mta_tb_int(&tb, "wait_ms", (*later - t) / 1000);
            mta_tb_emit(&tb);
        }
        return 1;
    }
    struct timeval until = *now;
    if (call_core_check_outbound_conn_throttle_hook(slot, &d->pub, now, &until)) {
        mta_usec_t u = tv_usec(until);
        /* A provider that gives no later time is asked again after a second. */
        *later = u > t ? u : t + MTA_USEC_PER_SEC;
        return 1;
    }
    return 0;
}

/* waits_for_event - after a failed attempt with result rc, is a pass sure to
 * come when trying again makes sense?  A lookup in flight wakes the domain
 * when it is answered; a connection limit when a connection closes.  The
 * same codes from a connection_post_bind provider promise no such event
 * (the attempt was abandoned at one address): the pass goes on. */
static int waits_for_event(const struct mta_domain *d, int rc)
{
    if (rc == CONN_ERROR(CONN_ERR_MX_LOOKUP_PENDING))
        return d->mx_state == MX_PENDING;
    if (rc == CONN_ERROR(CONN_ERR_HOST_MAX_REACHED))
        return d->waiting_for_slot || d->conns_total >= d->m->cfg.max_outbound_connections;
    return 0;
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
        if (queue_active_count(d, slot) == 0)
            continue;
        smtp_conn_wake_idle(d, slot);
        unsigned long waiting = queue_active_count(d, slot);
        if (waiting > 0 &&
            call_core_mail_queue_maintain_hook(&d->pub, slot, queue_active_list(d, slot), &now,
                                               (int)waiting + d->conns[slot], 0))
            continue;       /* a provider took care of this binding */
        unsigned long bound = waiting + (unsigned long)m->cfg.max_outbound_connections
                              + MTA_MAX_MX * MTA_MX_MAX_ADDRS + 8;
        for (unsigned long iter = 0; !stop; iter++) {
            if (iter > bound)
                mta_panic("maintain_domain", "no progress on %s after %lu connection attempts",
                          d->pub.domain, iter);
            int active = (int)queue_active_count(d, slot);
            if (active == 0)
                break;
            int goal = active;
            call_core_connection_goal_hook(&d->pub, slot, queue_active_list(d, slot), &goal);
            if (d->conns[slot] >= goal)
                break;
            mta_usec_t later;
            if (throttled(d, slot, &now, &later)) {
                maintain_at(d, later);
                stop = 1;
                break;
            }
            int rc = initiate_connection_smtp(&d->pub, slot, &now);
            if (rc == 0) {
                started++;
                window_note(&d->conn_window, &m->cfg.throttle_connections, mta_now(m));
            } else if (waits_for_event(d, rc)) {
                stop = 1;
            }
        }
    }
    call_core_post_mail_queue_maintain_domain_hook(&d->pub, &now, &started);
}
