/*
 * queue - active and delayed queues, recipient outcomes, retry schedule
 *
 * SYNOPSIS
 *   struct rcpt_why why = { 451, NULL, "451 4.7.1 later" };
 *   queue_rcpt_outcome(msg, i, OUTCOME_TRANSIENT, &why);
 *   queue_attempt_done(msg);          requeue what is pending, or finish
 *   queue_requeue_now(msg);           back to the active queue, not counted
 *
 * DESCRIPTION
 *   A message is in exactly one place: the active queue of its (domain,
 *   binding) (active_queue.c), the delayed heap, in flight on a
 *   connection, or done.
 *
 *   Each recipient has its own state.  An attempt ends with some
 *   recipients delivered, some bounced and some still pending; the log
 *   hooks run once per recipient outcome (message.log_rcpt names it).
 *   If any recipient is pending the message goes to the delayed queue:
 *
 *     next attempt = now + Retry_Interval * 2^(attempts - 1),
 *                    capped by Max_Retry_Interval,
 *
 *   and never later than its expiry (injected + Message_Expiration).
 *   When Max_Retries (non-zero) attempts have failed, or the expiry is
 *   reached, the pending recipients expire: a permanent failure, logged
 *   with log_permanent_failure_v1 and recorded as a bounce, with status
 *   4.4.7 (RFC 3463 3.5 "Delivery time expired"; sendmail reports an
 *   expired message the same way).
 *
 *   Every outcome carries an RFC 3463 status (dsn_status.h), in the
 *   message, the trace ("queue delivered|transient|bounced ... status=")
 *   and the DSN.  At the end of each attempt (and of an expiry) the
 *   recipients that failed for good since the last report get one DSN
 *   (bounce.c).
 *
 *   queue_requeue_now() puts an in-flight message back on its active
 *   queue without counting an attempt or waiting: recipients left over
 *   by a recipient limit go on the next connection at once (RFC 5321
 *   4.5.3.1.10), which the maintainer opens.
 *
 *   The delayed queue is a min-heap on (next attempt, creation sequence).
 *   Like Momentum's, it is scanned every delayed_queue_scan_interval: a
 *   message becomes active at the first scan tick at or after its next
 *   attempt.  Only one timer is armed, at the tick that releases the
 *   earliest message, so an idle queue costs nothing.
 *
 * DIAGNOSTICS
 *   Giving a final recipient another outcome is counted in
 *   stats.duplicate_outcomes (an invariant violation), not applied.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hook_registry.h"
#include "hooks/core/log_delivery_v1.h"
#include "hooks/core/log_permanent_failure_v1.h"
#include "hooks/core/log_transient_failure_v1.h"
#include "hooks/core/ec_message_set_next_attempt.h"
#include "hooks/core/pre_mail_queue_message_requeue.h"
#include "mta_internal.h"
#include "test_faults.h"
#include "trace.h"

static mta_usec_t tv_usec(struct timeval tv)
{
    return (mta_usec_t)tv.tv_sec * MTA_USEC_PER_SEC + tv.tv_usec;
}

/* ---- the delayed heap ------------------------------------------------ */

static int heap_less(const struct mta_msg *a, const struct mta_msg *b)
{
    mta_usec_t ta = tv_usec(a->pub.next_attempt), tb = tv_usec(b->pub.next_attempt);
    if (ta != tb)
        return ta < tb;
    return a->seq < b->seq;
}

static void heap_set(struct mta *m, size_t i, struct mta_msg *msg)
{
    m->delayed[i] = msg;
    msg->heap_index = i;
}

static void heap_up(struct mta *m, size_t i)
{
    struct mta_msg *msg = m->delayed[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(msg, m->delayed[parent]))
            break;
        heap_set(m, i, m->delayed[parent]);
        i = parent;
    }
    heap_set(m, i, msg);
}

static void heap_down(struct mta *m, size_t i)
{
    struct mta_msg *msg = m->delayed[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const struct mta_msg *bestmsg = msg;
        if (l < m->ndelayed && heap_less(m->delayed[l], bestmsg))
            best = l, bestmsg = m->delayed[l];
        if (r < m->ndelayed && heap_less(m->delayed[r], bestmsg))
            best = r;
        if (best == i)
            break;
        heap_set(m, i, m->delayed[best]);
        i = best;
    }
    heap_set(m, i, msg);
}

static void heap_push(struct mta *m, struct mta_msg *msg)
{
    if (m->ndelayed == m->delayed_cap) {
        m->delayed_cap = m->delayed_cap ? m->delayed_cap * 2 : 64;
        m->delayed = realloc(m->delayed, m->delayed_cap * sizeof *m->delayed);
        if (m->delayed == NULL)
            mta_panic("heap_push", "out of memory");
    }
    m->delayed[m->ndelayed++] = msg;
    heap_up(m, m->ndelayed - 1);
}

static struct mta_msg *heap_pop(struct mta *m)
{
    assert(m->ndelayed > 0);
    struct mta_msg *top = m->delayed[0];
    m->ndelayed--;
    if (m->ndelayed > 0) {
        heap_set(m, 0, m->delayed[m->ndelayed]);
        heap_down(m, 0);
    }
    return top;
}

static void delayed_scan(void *arg);

/* queue_delayed_rearm - arm the scan timer for the earliest message */
void queue_delayed_rearm(struct mta *m)
{
    if (m->shutting_down)
        return;
    if (m->ndelayed == 0) {
        if (m->delayed_timer) {
            m->env->timer_cancel(m->env, m->delayed_timer);
            m->delayed_timer = 0;
        }
        return;
    }
    mta_usec_t due = tv_usec(m->delayed[0]->pub.next_attempt);
    mta_usec_t tick = m->cfg.delayed_queue_scan_interval;
    if (tick > 0)
        due = (due + tick - 1) / tick * tick;   /* the first scan at or after it */
    mta_usec_t now = mta_now(m);
    if (due < now)
        due = now;
    if (m->delayed_timer && m->delayed_timer_at == due)
        return;
    if (m->delayed_timer)
        m->env->timer_cancel(m->env, m->delayed_timer);
    m->delayed_timer = m->env->timer_start(m->env, due, delayed_scan, m);
    m->delayed_timer_at = due;
}

static void trace_msg(const char *name, const struct mta_msg *msg)
{
    if (!mta_tracing())
        return;
    struct mta_tb tb;
    mta_tb_begin(&tb, "queue", name);
    mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
    mta_tb_str(&tb, "domain", msg->dom->pub.domain);
    mta_tb_int(&tb, "attempts", msg->pub.attempts);
    mta_tb_emit(&tb);
}

static void expire_pending(struct mta_msg *msg, const char *why);
static void finish_if_done(struct mta_msg *msg);

/* delayed_scan - release every message whose next attempt has come */
static void delayed_scan(void *arg)
{
    struct mta *m = arg;
    m->delayed_timer = 0;
    mta_usec_t now = mta_now(m);
    while (m->ndelayed > 0 && tv_usec(m->delayed[0]->pub.next_attempt) <= now) {
        struct mta_msg *msg = heap_pop(m);
        assert(msg->where == MSG_DELAYED);
        assert(msg->dom->pub.delayed_count > 0);
        msg->dom->pub.delayed_count--;
        msg->where = MSG_NEW;
        if (now >= msg->expires_at) {
            msg->where = MSG_INFLIGHT;      /* expire_pending works on a held message */
            expire_pending(msg, "message expired: Message_Expiration reached");
            finish_if_done(msg);
            bounce_flush(msg);
            continue;
        }
        trace_msg("active", msg);
        queue_append_active(msg);
        maintain_soon(msg->dom);
    }
    queue_delayed_rearm(m);
}

/* ---- outcomes -------------------------------------------------------- */

static void log_outcome(struct mta_msg *msg, int i, enum rcpt_outcome o, const char *status,
                        const char *note)
{
    struct mta *m = msg->dom->m;
    struct timeval now = mta_tv(mta_now(m));
    msg->pub.log_rcpt = i;
    if (mta_tracing()) {
        static const char *const names[] = { "delivered", "transient", "bounced" };
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", names[o]);
        mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
        mta_tb_str(&tb, "rcpt", msg->pub.rcpts[i].address);
        mta_tb_str(&tb, "status", status);
        mta_tb_str(&tb, "note", note);
        mta_tb_emit(&tb);
    }
    int len = (int)strlen(note);
    ec_message *ec = msg_ec(msg, i);
    switch (o) {
    case OUTCOME_DELIVERED:
        call_core_log_delivery_v1_hook(ec, &msg->dom->pub, &now, note, len);
        break;
    case OUTCOME_TRANSIENT:
        call_core_log_transient_failure_v1_hook(ec, &msg->dom->pub, &now, note, len);
        break;
    case OUTCOME_PERMANENT:
        call_core_log_permanent_failure_v1_hook(ec, &msg->dom->pub, &now, note, len);
        break;
    }
    msg->pub.log_rcpt = -1;
}

/* attempt_is_last - the attempt now under way ends msg's retries: when it is
 * over, queue_attempt_done expires what is still pending (the same tests) */
static int attempt_is_last(const struct mta_msg *msg)
{
    if (msg->max_retries > 0 && msg->pub.attempts + 1 > msg->max_retries)
        return 1;
    return mta_now(msg->dom->m) >= msg->expires_at;
}

/* queue_rcpt_outcome - record what happened to recipient i in this attempt */
void queue_rcpt_outcome(struct mta_msg *msg, int i, enum rcpt_outcome o,
                        const struct rcpt_why *why)
{
    struct mta *m = msg->dom->m;
    assert(i >= 0 && i < msg->pub.rcpt_count);
    struct message_rcpt *r = &msg->pub.rcpts[i];
    if (r->state != RCPT_PENDING) {
        m->stats.duplicate_outcomes++;
        return;
    }
    static const enum dsn_class classes[] = { DSN_CLASS_SUCCESS, DSN_CLASS_TRANSIENT,
                                              DSN_CLASS_PERMANENT };
    const char *note = why->note ? why->note : "";
    char status[DSN_STATUS_MAX];
    if (why->status != NULL)
        dsn_status_for_class(why->status, classes[o], status);
    else
        dsn_status_of_reply(why->code, -1, -1, -1, classes[o], status);
    r->last_code = why->code;
    r->last_note = mta_text(m, note);
    r->last_status = mta_text(m, status);
    const char *mta = why->mta ? why->mta : msg->attempt_mta;
    r->last_mta = mta != NULL ? mta_text(m, mta) : NULL;
    /* A reply from the remote is what a DSN's Diagnostic-Code quotes. */
    msg->rcpt_priv[i].diag = why->code >= 200 ? r->last_note : NULL;
    if (o == OUTCOME_TRANSIENT && attempt_is_last(msg)) {
        /* The attempt that exhausts Max_Retries or Message_Expiration: the
         * recipient is not retried, so no transient failure is logged
         * ("will be retried" would be false); its end logs the permanent
         * failure, with this reply as the last error (expire_pending). */
        msg->rcpt_priv[i].final_transient = 1;
        return;
    }
    msg->rcpt_priv[i].final_transient = 0;  /* superseded by this outcome */
    switch (o) {
    case OUTCOME_DELIVERED:
        r->state = RCPT_DELIVERED;
        m->stats.rcpts_delivered++;
        msg->dom->pub.deliveries++;
        msg->dom->pub.last_delivery = mta_tv(mta_now(m));
        break;
    case OUTCOME_TRANSIENT:
        msg->dom->pub.transients++;
        break;
    case OUTCOME_PERMANENT:
        r->state = RCPT_BOUNCED;
        m->stats.rcpts_failed++;
        msg->dom->pub.failures++;
        break;
    }
    log_outcome(msg, i, o, r->last_status, note);
    if (MTA_FAULT(FAULT_DELIVER_TWICE) && o == OUTCOME_DELIVERED)
        queue_rcpt_outcome(msg, i, o, why);
}

static int pending_count(const struct mta_msg *msg)
{
    int n = 0;
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        n += msg->pub.rcpts[i].state == RCPT_PENDING;
    return n;
}

/* expire_pending - every pending recipient fails for good */
static void expire_pending(struct mta_msg *msg, const char *why)
{
    for (int i = 0; i < msg->pub.rcpt_count; i++) {
        struct message_rcpt *r = &msg->pub.rcpts[i];
        if (r->state != RCPT_PENDING)
            continue;
        msg->rcpt_priv[i].final_transient = 0;
        r->state = RCPT_EXPIRED;
        msg->dom->m->stats.rcpts_failed++;
        msg->dom->pub.failures++;
        char note[MTA_NOTE_MAX];
        snprintf(note, sizeof note, "%s after %d attempts%s%s", why, msg->pub.attempts,
                 r->last_note && r->last_note[0] ? "; last error: " : "",
                 r->last_note ? r->last_note : "");
        r->last_note = mta_text(msg->dom->m, note);
        /* The status says why it failed for good; the last reply stays the
         * Diagnostic-Code (rcpt_priv.diag). */
        r->last_status = mta_text(msg->dom->m, DSN_STATUS_EXPIRED);
        log_outcome(msg, i, OUTCOME_PERMANENT, r->last_status, note);
    }
}

/* finish_if_done - a message with no pending recipient is done */
static void finish_if_done(struct mta_msg *msg)
{
    if (pending_count(msg) > 0)
        return;
    struct mta *m = msg->dom->m;
    msg->where = MSG_DONE;
    msg->done_at = mta_now(m);
    if (mta_tracing()) {
        int delivered = 0;
        for (int i = 0; i < msg->pub.rcpt_count; i++)
            delivered += msg->pub.rcpts[i].state == RCPT_DELIVERED;
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", "done");
        mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
        mta_tb_str(&tb, "domain", msg->dom->pub.domain);
        mta_tb_int(&tb, "delivered", delivered);
        mta_tb_int(&tb, "failed", msg->pub.rcpt_count - delivered);
        mta_tb_emit(&tb);
    }
}

/* queue_attempt_done - the attempt is over: requeue, expire or finish */
void queue_attempt_done(struct mta_msg *msg)
{
    struct mta *m = msg->dom->m;
    assert(msg->where == MSG_INFLIGHT || msg->where == MSG_NEW);
    msg->pub.attempts++;
    msg->attempt_mta = NULL;
    if (pending_count(msg) == 0) {
        finish_if_done(msg);
        bounce_flush(msg);
        return;
    }
    mta_usec_t now = mta_now(m);
    if (MTA_FAULT(FAULT_LOSE_MESSAGE)) {
        msg->where = MSG_DONE;      /* forgotten, with recipients still pending */
        return;
    }
    if (msg->max_retries > 0 && msg->pub.attempts > msg->max_retries) {
        expire_pending(msg, "Max_Retries reached");
        finish_if_done(msg);
        bounce_flush(msg);
        return;
    }
    if (now >= msg->expires_at) {
        expire_pending(msg, "message expired: Message_Expiration reached");
        finish_if_done(msg);
        bounce_flush(msg);
        return;
    }
    /* Recipients that failed for good in this attempt are reported now,
     * not when the others are done: one DSN per event (RFC 3464 2). */
    bounce_flush(msg);
    mta_usec_t next;
    struct timeval tvnow = mta_tv(now);
    int rv = 1;
    ec_message *ec = msg_ec(msg, -1);
    if (call_core_ec_message_set_next_attempt_hook(ec, &tvnow, &rv)) {
        if (rv == 0) {
            /* Momentum 3: *rv is what ec_message_set_next_attempt returns,
             * and 0 there means the message is not to be retried. */
            expire_pending(msg, "no next attempt: an ec_message_set_next_attempt provider "
                           "set *rv to 0");
            finish_if_done(msg);
            bounce_flush(msg);
            return;
        }
        next = tv_usec(ec->next_attempt);          /* a provider set it */
    } else {
        mta_usec_t delay = msg->retry_interval;
        for (int i = 1; i < msg->pub.attempts && delay < m->cfg.max_retry_interval; i++)
            delay *= 2;
        if (delay > m->cfg.max_retry_interval)
            delay = m->cfg.max_retry_interval;
        next = now + delay;
    }
    struct timeval tvnext = mta_tv(next);
    call_core_pre_mail_queue_message_requeue_hook(msg_ec(msg, -1), &tvnext);
    next = tv_usec(tvnext);
    /* Never in the past, never after the expiry (which is checked then). */
    if (next < now)
        next = now;
    if (next > msg->expires_at)
        next = msg->expires_at;
    msg->pub.next_attempt = mta_tv(next);
    msg->where = MSG_DELAYED;
    msg->dom->pub.delayed_count++;
    heap_push(m, msg);
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", "delayed");
        mta_tb_int(&tb, "msg", (int64_t)msg->pub.id);
        mta_tb_str(&tb, "domain", msg->dom->pub.domain);
        mta_tb_int(&tb, "attempts", msg->pub.attempts);
        mta_tb_int(&tb, "retry_in_s", (next - now) / MTA_USEC_PER_SEC);
        mta_tb_emit(&tb);
    }
    queue_delayed_rearm(m);
}

/* queue_fail_message - every pending recipient gets outcome o; attempt over */
void queue_fail_message(struct mta_msg *msg, enum rcpt_outcome o, const struct rcpt_why *why)
{
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        if (msg->pub.rcpts[i].state == RCPT_PENDING)
            queue_rcpt_outcome(msg, i, o, why);
    queue_attempt_done(msg);
}

/* queue_requeue_now - an in-flight message back on its active queue, at once */
void queue_requeue_now(struct mta_msg *msg)
{
    assert(msg->where == MSG_INFLIGHT);
    assert(pending_count(msg) > 0);
    /* The attempt goes on after all: transient failures held back as its
     * last (queue_rcpt_outcome) are logged now, as what they are. */
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        if (msg->rcpt_priv[i].final_transient) {
            msg->rcpt_priv[i].final_transient = 0;
            msg->dom->pub.transients++;
            const struct message_rcpt *r = &msg->pub.rcpts[i];
            log_outcome(msg, i, OUTCOME_TRANSIENT, r->last_status, r->last_note);
        }
    msg->attempt_mta = NULL;
    bounce_flush(msg);      /* what failed for good on the way is reported now */
    msg->where = MSG_NEW;
    trace_msg("active", msg);
    queue_append_active(msg);
    maintain_soon(msg->dom);
}

void queue_free_all(struct mta *m)
{
    free(m->delayed);
    m->delayed = NULL;
    m->ndelayed = 0;
}
