/*
 * connection - initiate_connection and initiate_connection_smtp
 *
 * SYNOPSIS
 *   See connection.h.
 *
 * DESCRIPTION
 *   initiate_connection() decides, in this order:
 *     1. the domain's MX state: a lookup is started or still running ->
 *        MX_LOOKUP_PENDING; it failed -> MX_LOOKUP_FAILED|PURGE_DOMAIN
 *        (permanent for NXDOMAIN, transient for SERVFAIL or a timeout; the
 *        failure is reported once, the next attempt looks up again); a
 *        null MX -> SMTP_NULL_MX|PURGE_DOMAIN (permanent);
 *     2. Max_Outbound_Connections for the domain, or
 *        max_connections_per_binding -> HOST_MAX_REACHED;
 *     3. the first address, in MX preference order, that is not prohibited
 *        (prohibited_ips, loopback by default), has not failed within
 *        Host_Failure_Retry and is under max_connections_per_host; none at
 *        the host limit -> HOST_MAX_REACHED; every address prohibited ->
 *        PROHIBITED_IP|PURGE_DOMAIN (transient: the DNS may be fixed);
 *        otherwise NO_MXS_REACHABLE|REQUEUE1;
 *     4. the environment's connect: a synchronous failure maps errno to
 *        SOCKET (EMFILE, ENFILE), BIND (EADDRNOTAVAIL), CONNECT_NETWORK
 *        (ENETUNREACH, EHOSTUNREACH) or CONNECT (ECONNREFUSED); SOCKET and
 *        BIND requeue one message, the connect errors exclude the address
 *        so the maintainer's next call tries the next one.
 *   A connection_post_bind provider sees the new descriptor and the
 *   destination address before the connect goes out.  Any non-zero result
 *   abandons that attempt (Momentum 3: "Returning non-zero will cause the
 *   connection attempt to aborted entirely"): the descriptor is closed, the
 *   result is the attempt's error if it is a CONN_ERR code with optional
 *   CONN_ACTION flags, else CONN_ERR_CONNECT (and a "plugin warning"
 *   record names the plugin and the value), and the address counts as
 *   failed for Host_Failure_Retry, as a refused connect does, so the
 *   maintainer's next attempt goes to the next address or MX.  Whatever the
 *   code says (even MX_LOOKUP_PENDING or HOST_MAX_REACHED), nothing waits
 *   for an event that would not come: the maintainer goes on
 *   (maintainer.c), so no value can strand a message or spin the core.
 *
 *   A connect that fails later (refused, unreachable) or does not finish
 *   within Connect_Timeout reaches the finish / timeout callbacks; the
 *   descriptor was valid, so post_initiate_connection_smtp saw it.
 *
 *   initiate_connection_smtp() calls post_initiate_connection_smtp with
 *   the descriptor or CONN_ERROR(err) first, so a provider that peeks at
 *   the active queue (mail_queue.h) sees the message the attempt was for,
 *   then carries out the CONN_ACTION flags.
 *
 *   The hooks that take a struct sockaddr * get the address from
 *   mta_sockaddr_set(), the one place that makes one from the core's
 *   mta_ip: a sockaddr_in for an IPv4 address, a sockaddr_in6 for an IPv6
 *   one, with the SMTP port; addr_len is the size of the one made.
 *
 *   CONN_ERR_IOCTL cannot occur: the environment's connect is already
 *   non-blocking, there is no ioctl to fail.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "hooks/core/connection_post_bind.h"
#include "hooks/core/log_client_connection_failure.h"
#include "hooks/core/post_initiate_connection_smtp.h"
#include "hooks/core/veto_host_connection.h"
#include "hook_registry.h"
#include "mta_internal.h"
#include "test_faults.h"

/* mta_sockaddr_set - addr:port as the hooks' struct sockaddr
 *
 * The core holds an IPv4 address in its IPv4-mapped form (mta_ip.h); a
 * plugin gets what getpeername(2) gives on a socket of the binding's
 * family: an AF_INET sockaddr_in for IPv4, an AF_INET6 sockaddr_in6
 * (RFC 3493 3.3) for IPv6, never ::ffff:a.b.c.d. */
void mta_sockaddr_set(struct mta_sockaddr *out, mta_ip addr, uint16_t port)
{
    memset(out, 0, sizeof *out);
    if (mta_ip_is_v4(addr)) {
        out->u.in.sin_family = AF_INET;
        out->u.in.sin_addr.s_addr = htonl(mta_ip_v4_of(addr));
        out->u.in.sin_port = htons(port);
        out->len = (int)sizeof out->u.in;
    } else {
        out->u.in6.sin6_family = AF_INET6;
        memcpy(out->u.in6.sin6_addr.s6_addr, addr.b, 16);
        out->u.in6.sin6_port = htons(port);
        out->len = (int)sizeof out->u.in6;
    }
}

/* mx_state_error - the CONN_ERR answer for a domain that is not resolved, or 0 */
static int mx_state_error(struct mta_domain *d)
{
    struct mta *m = d->m;
    if ((d->mx_state == MX_RESOLVED || d->mx_state == MX_NULL) && mta_now(m) >= d->mx_expires)
        d->mx_state = MX_UNRESOLVED;
    switch (d->mx_state) {
    case MX_UNRESOLVED:
        domain_resolve(d);
        return CONN_ERR_MX_LOOKUP_PENDING;
    case MX_PENDING:
        return CONN_ERR_MX_LOOKUP_PENDING;
    /* RFC 3463 3.5: X.4.4 "unable to route" for a name that does not
     * exist (Postfix reports NXDOMAIN as 5.4.4), X.4.3 "directory server
     * failure" for SERVFAIL and timeouts; RFC 7505 4.1 and 6: X.1.10 for a
     * null MX. */
    case MX_FAILED_PERM:
        d->purge_kind = PURGE_PERMANENT;
        snprintf(d->purge_note, sizeof d->purge_note, "%s", d->mx_note);
        snprintf(d->purge_status, sizeof d->purge_status, "%s", DSN_STATUS_UNROUTABLE);
        d->mx_state = MX_UNRESOLVED;
        return CONN_ERR_MX_LOOKUP_FAILED | CONN_ACTION_PURGE_DOMAIN;
    case MX_FAILED_TEMP:
        d->purge_kind = PURGE_TRANSIENT;
        snprintf(d->purge_note, sizeof d->purge_note, "%s", d->mx_note);
        snprintf(d->purge_status, sizeof d->purge_status, "%s", DSN_STATUS_DNS_FAILURE);
        d->mx_state = MX_UNRESOLVED;
        return CONN_ERR_MX_LOOKUP_FAILED | CONN_ACTION_PURGE_DOMAIN;
    case MX_NULL:
        d->purge_kind = PURGE_PERMANENT;
        snprintf(d->purge_note, sizeof d->purge_note, "%s", d->mx_note);
        snprintf(d->purge_status, sizeof d->purge_status, "%s", DSN_STATUS_NULL_MX);
        return CONN_ERR_SMTP_NULL_MX | CONN_ACTION_PURGE_DOMAIN;
    case MX_RESOLVED:
        return 0;
    }
    return 0;
}

static int prohibited(const struct mta_config *cfg, mta_ip ip)
{
    if (!mta_ip_is_v4(ip))
        return 0;       /* prohibited_ips lists IPv4 ranges only */
    uint32_t addr = mta_ip_v4_of(ip);
    for (int i = 0; i < cfg->nprohibited; i++)
        if ((addr & cfg->prohibited[i].mask) == cfg->prohibited[i].addr)
            return 1;
    return 0;
}

/* pick_address - the first usable address in MX order
 *
 * Returns 0 with *host and *addr_index set, or the CONN_ERR code (with actions)
 * for why none is usable.  An address is skipped when it is prohibited,
 * failed within Host_Failure_Retry, or is at max_connections_per_host; a
 * host is skipped when a veto_host_connection provider forbids it.  The
 * answer names the most telling reason: connection limits (wait for a free
 * connection) before prohibited addresses (the domain's MX is misconfigured)
 * before unreachable hosts. */
static int pick_address(struct mta_domain *d, int slot, struct mx_host **host, int *addr_index)
{
    struct mta *m = d->m;
    int saw_limit = 0, saw_prohibited = 0, saw_usable = 0;
    int v4 = mta_ip_is_v4(m->bindings[slot].source_addr);
    for (int i = 0; i < d->pub.mxcnt; i++) {
        struct mx_host *h = d->pub.mxlist[i];
        if (h->naddrs == 0)
            continue;
        if (call_core_veto_host_connection_hook(h, &d->pub, slot,
                                                m->cfg.max_outbound_connections,
                                                d->conns_total)) {
            domain_set_error(d, 0, DSN_STATUS_NETWORK, NULL, "connections to %s are vetoed",
                             h->name);
            continue;
        }
        for (int j = 0; j < h->naddrs; j++) {
            mta_ip a = h->addrs[j];
            /* A socket bound to the binding's source address reaches only
             * addresses of its family (RFC 6724 section 6, rule 1: no source
             * of the destination's family, no connection). */
            if (mta_ip_is_v4(a) != v4)
                continue;
            if (prohibited(&m->cfg, a)) {
                saw_prohibited = 1;
                continue;
            }
            saw_usable = 1;
            if (host_failure_active(m, a))
                continue;
            if (m->cfg.max_connections_per_host > 0 &&
                host_conns_get(m, a) >= m->cfg.max_connections_per_host) {
                saw_limit = 1;
                continue;
            }
            *host = h;
            *addr_index = j;
            return 0;
        }
    }
    if (saw_limit)
        return CONN_ERR_HOST_MAX_REACHED;
    if (saw_prohibited && !saw_usable) {
        domain_set_error(d, 0, DSN_STATUS_UNROUTABLE, NULL,
                         "every MX address of %s is prohibited (prohibited_ips)", d->pub.domain);
        d->purge_kind = PURGE_TRANSIENT;
        snprintf(d->purge_note, sizeof d->purge_note, "%s", d->last_error);
        snprintf(d->purge_status, sizeof d->purge_status, "%s", d->last_status);
        return CONN_ERR_PROHIBITED_IP | CONN_ACTION_PURGE_DOMAIN;
    }
    if (d->last_error[0] == '\0')
        domain_set_error(d, 0, DSN_STATUS_UNROUTABLE, NULL,
                         "no address of any MX host of %s is usable", d->pub.domain);
    return CONN_ERR_NO_MXS_REACHABLE | CONN_ACTION_REQUEUE1;
}

/* connect_errno_to_err - a synchronous connect failure as CONN_ERR|ACTION */
static int connect_errno_to_err(int e)
{
    switch (e) {
    case EADDRNOTAVAIL:
        return CONN_ERR_BIND | CONN_ACTION_REQUEUE1;
    case ENETUNREACH:
    case EHOSTUNREACH:
        return CONN_ERR_CONNECT_NETWORK;
    case ECONNREFUSED:
        return CONN_ERR_CONNECT;
    default:    /* EMFILE, ENFILE, ENOBUFS: no socket to be had */
        return CONN_ERR_SOCKET | CONN_ACTION_REQUEUE1;
    }
}

/* post_bind_error - the error a connection_post_bind result stands for
 *
 * A CONN_ERR code, alone or with CONN_ACTION flags, is taken as it is;
 * any other non-zero value (4096, -1, a bare CONN_ACTION flag) is
 * CONN_ERR_CONNECT, and a warning names the provider that returned it. */
static int post_bind_error(int veto)
{
    int code = veto & CONN_ERR_MASK;
    if ((veto & ~(CONN_ERR_MASK | CONN_ACTION_MASK)) == 0 && conn_err_name(code) != NULL)
        return veto;
    mta_plugin_warning("connection_post_bind",
                       "returned %d, which is not a CONN_ERR code (optionally with CONN_ACTION "
                       "flags): the attempt is abandoned as CONN_ERR_CONNECT", veto);
    return CONN_ERR_CONNECT;
}

/* initiate_connection - open a connection for (dr, binding); see connection.h */
connection_handle *initiate_connection(domain_record *dr, int slot, struct timeval *now,
                                       connection_finish_cb finish_connect_cb,
                                       connection_timeout_cb timeout_cb,
                                       void *user_data, int *error)
{
    struct mta_domain *d = mta_dom(dr);
    struct mta *m = d->m;
    *error = 0;
    if (slot < 0 || slot >= m->nbindings)
        mta_panic("initiate_connection", "binding slot %d out of range", slot);
    int err = mx_state_error(d);
    if (err) {
        *error = err;
        return NULL;
    }
    if (d->conns_total >= m->cfg.max_outbound_connections && !MTA_FAULT(FAULT_IGNORE_CONN_LIMIT)) {
        *error = CONN_ERR_HOST_MAX_REACHED;     /* one of d's own connections will free it */
        return NULL;
    }
    if (m->cfg.max_connections_per_binding > 0 &&
        m->binding_conns[slot] >= m->cfg.max_connections_per_binding) {
        maintain_wait_for_slot(d);              /* another domain's may free it */
        *error = CONN_ERR_HOST_MAX_REACHED;
        return NULL;
    }
    struct mx_host *h = NULL;
    int addr_index = 0;
    err = pick_address(d, slot, &h, &addr_index);
    if (err) {
        if (err == CONN_ERR_HOST_MAX_REACHED)
            maintain_wait_for_slot(d);
        *error = err;
        return NULL;
    }
    mta_ip addr = h->addrs[addr_index];
    const char *host = h->name;
    struct mta_conn *c = smtp_conn_create(m, d, slot, h, addr_index);
    const binding *b = &m->bindings[slot];
    struct mta_sockaddr sa;
    mta_sockaddr_set(&sa, addr, (uint16_t)m->cfg.smtp_port);
    d->pub.attempts++;
    int fd = m->env->tcp_connect(m->env, b->source_addr, addr, (uint16_t)m->cfg.smtp_port,
                                 smtp_conn_tcp_event, c);
    if (fd < 0) {
        smtp_conn_destroy(c);
        err = connect_errno_to_err(-fd);
        char a[MTA_IP_TEXT];
        mta_ip_format(addr, a);
        /* RFC 3463 3.5 X.4.1: no answer from the host; a local shortage
         * (no descriptor, no source address) is the sending system's (X.3.0). */
        int local = (err & CONN_ERR_MASK) == CONN_ERR_SOCKET || (err & CONN_ERR_MASK) == CONN_ERR_BIND;
        domain_set_error(d, 0, local ? DSN_STATUS_LOCAL : DSN_STATUS_NO_ANSWER, NULL,
                         "connect to %s (%s): %s", a, host, strerror(-fd));
        if ((err & CONN_ERR_MASK) == CONN_ERR_CONNECT ||
            (err & CONN_ERR_MASK) == CONN_ERR_CONNECT_NETWORK)
            host_failure_mark(m, addr);
        call_core_log_client_connection_failure_hook(&sa.u.sa, err, dr, slot, now);
        *error = err;
        return NULL;
    }
    /* A provider may abandon the attempt now. */
    int veto = call_core_connection_post_bind_hook(dr, slot, fd, &sa.u.sa, sa.len);
    if (veto) {
        m->env->tcp_close(m->env, fd);
        smtp_conn_destroy(c);
        err = post_bind_error(veto);
        domain_set_error(d, 0, DSN_STATUS_LOCAL, NULL,
                         "a connection_post_bind provider abandoned the connection to %s", host);
        host_failure_mark(m, addr);     /* the next attempt takes the next address */
        call_core_log_client_connection_failure_hook(&sa.u.sa, err, dr, slot, now);
        *error = err;
        return NULL;
    }
    d->conns[slot]++;
    d->conns_total++;
    m->binding_conns[slot]++;
    host_conns_add(m, addr, 1);
    if (d->conns_total > m->stats.max_concurrent_per_domain)
        m->stats.max_concurrent_per_domain = d->conns_total;
    m->stats.connections_opened++;
    smtp_conn_start(c, fd, finish_connect_cb, timeout_cb, user_data);
    return smtp_conn_handle(c);
}

/* requeue_one - CONN_ACTION_REQUEUE1: the first active message of (d, slot) waits */
static void requeue_one(struct mta_domain *d, int slot)
{
    struct mta_msg *msg = queue_active_head(d, slot);
    if (msg == NULL)
        return;
    queue_remove_active(msg);
    struct rcpt_why why = { d->last_code, d->last_status, d->last_error,
                            d->last_mta[0] ? d->last_mta : NULL };
    queue_fail_message(msg, OUTCOME_TRANSIENT, &why);
}

/* purge_domain - CONN_ACTION_PURGE_DOMAIN: every active message of d, all bindings */
static void purge_domain(struct mta_domain *d)
{
    enum rcpt_outcome o = d->purge_kind == PURGE_PERMANENT ? OUTCOME_PERMANENT : OUTCOME_TRANSIENT;
    for (int slot = 0; slot < d->m->nbindings; slot++) {
        struct mta_msg *msg;
        while ((msg = queue_active_head(d, slot)) != NULL) {
            queue_remove_active(msg);
            struct rcpt_why why = { 0, d->purge_status, d->purge_note, NULL };
            queue_fail_message(msg, o, &why);
        }
    }
}

/* initiate_connection_smtp - start an SMTP session; see connection.h */
int initiate_connection_smtp(domain_record *dr, int slot, struct timeval *now)
{
    int err = 0;
    connection_handle *ch = initiate_connection(dr, slot, now, smtp_client_finish_cb,
                                                smtp_client_timeout_cb, NULL, &err);
    if (ch != NULL) {
        call_core_post_initiate_connection_smtp_hook(dr, slot, now, ch->fd);
        return 0;
    }
    call_core_post_initiate_connection_smtp_hook(dr, slot, now, CONN_ERROR(err));
    if (err & CONN_ACTION_REQUEUE1)
        requeue_one(mta_dom(dr), slot);
    if (err & CONN_ACTION_PURGE_DOMAIN)
        purge_domain(mta_dom(dr));
    return CONN_ERROR(err);
}
