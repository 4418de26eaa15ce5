/*
 * domain - domain records and their MX/A/AAAA resolution
 *
 * SYNOPSIS
 *   struct mta_domain *d = domain_get(m, "example.com");
 *   domain_resolve(d);
 *
 * DESCRIPTION
 *   Domains live in creation order (m->domains), which is the only order
 *   anything iterates them in; a hash index only speeds up lookup.
 *
 *   Resolution is asynchronous: an MX query, then one A query per MX host
 *   (and/or AAAA: one per address family the bindings have, see mx_answer)
 *   (or for the domain itself when it has no MX: the implicit MX of RFC
 *   5321 5.1).  Until every answer is in, the domain is MX_PENDING and
 *   initiate_connection answers CONN_ERR_MX_LOOKUP_PENDING; the last answer
 *   wakes the maintainer.  MX hosts are ordered by preference; hosts of
 *   equal preference in an order the environment's seeded random stream
 *   "mx order DOMAIN" decides.  The result is kept
 *   until the smallest TTL of the answers (capped by dns_cache_ttl_max)
 *   expires.
 *
 *   Outcomes: NXDOMAIN for the MX query -> MX_FAILED_PERM; SERVFAIL or
 *   timeout -> MX_FAILED_TEMP; a single MX with an empty or "." exchange
 *   (RFC 7505) -> MX_NULL.  A failed A lookup leaves that host without
 *   addresses; a domain whose hosts have no address at all is resolved
 *   but unreachable (CONN_ERR_NO_MXS_REACHABLE).
 *
 *   Answers carry the domain's generation: an answer to a superseded
 *   lookup is ignored.
 *
 *   domain_set_error() records why the domain's last connection failed:
 *   the note, the reply code (0 for none), its RFC 3463 status and the
 *   host that answered; CONN_ACTION_REQUEUE1 and MX_Failures_To_Delay
 *   defer messages with it.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mta_internal.h"
#include "trace.h"

/* One outstanding query; freed when answered or when the core goes. */
struct mta_dns_ctx {
    struct mta_dns_ctx *next, *prev;
    struct mta_domain *d;
    unsigned generation;
    int mx_index;                   /* -1 for the MX query itself */
};

/* ---- the domain table ------------------------------------------------ */

/* domain_lookup - the record for name (lower case), or NULL */
struct mta_domain *domain_lookup(struct mta *m, const char *name)
{
    uint64_t h = text_hash(name, strlen(name));
    size_t pos;
    for (uint32_t i = idxmap_first(&m->domain_index, h, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&m->domain_index, h, &pos))
        if (strcmp(m->domains[i]->pub.domain, name) == 0)
            return m->domains[i];
    return NULL;
}

/* domain_get - the record for name, created on first use */
struct mta_domain *domain_get(struct mta *m, const char *name)
{
    struct mta_domain *d = domain_lookup(m, name);
    if (d)
        return d;
    d = calloc(1, sizeof *d);
    if (d == NULL || (d->pub.domain = strdup(name)) == NULL)
        mta_panic("domain_get", "out of memory");
    d->m = m;
    d->mx_state = MX_UNRESOLVED;
    d->pub.mxs = d->mx_storage;
    for (int i = 0; i < MTA_MAX_MX; i++)
        d->mx_ptrs[i] = &d->mx_storage[i];
    d->pub.mxlist = d->mx_ptrs;
    d->pub.equeue.domain = &d->pub;
    if (m->ndomains == m->domains_cap) {
        m->domains_cap = m->domains_cap ? m->domains_cap * 2 : 16;
        m->domains = realloc(m->domains, (size_t)m->domains_cap * sizeof *m->domains);
        if (m->domains == NULL)
            mta_panic("domain_get", "out of memory");
    }
    m->domains[m->ndomains++] = d;
    idxmap_put(&m->domain_index, text_hash(name, strlen(name)), (uint32_t)(m->ndomains - 1));
    return d;
}

static void mx_clear(struct mta_domain *d)
{
    for (int i = 0; i < d->pub.mxcnt; i++) {
        free(d->mx_storage[i].name);
        d->mx_storage[i].name = NULL;
    }
    d->pub.mxcnt = 0;
}

void domain_free_all(struct mta *m)
{
    for (int i = 0; i < m->ndomains; i++) {
        mx_clear(m->domains[i]);
        queue_active_free(m->domains[i]);
        free(m->domains[i]->conn_window.t);
        free(m->domains[i]->msg_window.t);
        free(m->domains[i]->pub.domain);
        free(m->domains[i]);
    }
    free(m->domains);
    m->domains = NULL;
    m->ndomains = 0;
    idxmap_free(&m->domain_index);
}

/* ---- host failures (Host_Failure_Retry) -------------------------------- */

/* domain_set_error - why d's last connection failed (the note truncates) */
void domain_set_error(struct mta_domain *d, int code, const char *status, const char *mta,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->last_error, sizeof d->last_error, fmt, ap);
    va_end(ap);
    d->last_code = code;
    dsn_status_for_class(status, DSN_CLASS_TRANSIENT, d->last_status);
    snprintf(d->last_mta, sizeof d->last_mta, "%s", mta ? mta : "");
}

/* host_failure_find - addr's entry in host_failures[], or IDXMAP_NONE */
static uint32_t host_failure_find(struct mta *m, mta_ip addr)
{
    size_t pos;
    uint64_t key = mta_ip_key(addr);
    for (uint32_t i = idxmap_first(&m->host_failure_index, key, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&m->host_failure_index, key, &pos))
        if (mta_ip_eq(m->host_failures[i].addr, addr))
            return i;
    return IDXMAP_NONE;
}

/* host_failure_mark - do not try addr again for host_failure_retry */
void host_failure_mark(struct mta *m, mta_ip addr)
{
    mta_usec_t until = mta_now(m) + m->cfg.host_failure_retry;
    if (mta_tracing()) {
        struct mta_tb tb;
        mta_tb_begin(&tb, "queue", "host_failed");
        mta_tb_ip(&tb, "addr", addr);
        mta_tb_int(&tb, "retry_in_s", m->cfg.host_failure_retry / MTA_USEC_PER_SEC);
        mta_tb_emit(&tb);
    }
    uint32_t i = host_failure_find(m, addr);
    if (i != IDXMAP_NONE) {
        m->host_failures[i].until = until;
        return;
    }
    if (m->nhost_failures == m->host_failures_cap) {
        m->host_failures_cap = m->host_failures_cap ? m->host_failures_cap * 2 : 16;
        m->host_failures = realloc(m->host_failures,
                                   (size_t)m->host_failures_cap * sizeof *m->host_failures);
        if (m->host_failures == NULL)
            mta_panic("host_failure_mark", "out of memory");
    }
    idxmap_put(&m->host_failure_index, mta_ip_key(addr), (uint32_t)m->nhost_failures);
    m->host_failures[m->nhost_failures++] = (struct mta_host_failure){ addr, until };
}

/* host_failure_active - addr failed recently and is not to be tried */
int host_failure_active(struct mta *m, mta_ip addr)
{
    uint32_t i = host_failure_find(m, addr);
    return i != IDXMAP_NONE && m->host_failures[i].until > mta_now(m);
}

/* ---- resolution ------------------------------------------------------ */

static void dns_answer(void *arg, const char *name, enum mta_dns_type type,
                       const struct mta_dns_answer *ans);

static void query(struct mta_domain *d, const char *name, enum mta_dns_type type, int mx_index)
{
    struct mta *m = d->m;
    struct mta_dns_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        mta_panic("query", "out of memory");
    ctx->d = d;
    ctx->generation = d->mx_generation;
    ctx->mx_index = mx_index;
    ctx->next = m->dns_pending;
    if (m->dns_pending)
        m->dns_pending->prev = ctx;
    m->dns_pending = ctx;
    m->env->dns_query(m->env, name, type, dns_answer, ctx);
}

void dns_pending_free_all(struct mta *m)
{
    while (m->dns_pending) {
        struct mta_dns_ctx *next = m->dns_pending->next;
        free(m->dns_pending);
        m->dns_pending = next;
    }
}

static void ttl_note(struct mta_domain *d, uint32_t ttl)
{
    struct mta *m = d->m;
    mta_usec_t cap = m->cfg.dns_cache_ttl_max;
    mta_usec_t life = (mta_usec_t)ttl * MTA_USEC_PER_SEC;
    if (life > cap)
        life = cap;
    mta_usec_t until = mta_now(m) + life;
    if (d->mx_expires == 0 || until < d->mx_expires)
        d->mx_expires = until;
}

/* resolved - every answer is in: the domain can be connected to */
static void resolved(struct mta_domain *d)
{
    d->mx_state = MX_RESOLVED;
    d->pub.expiry = (uint64_t)(d->mx_expires / MTA_USEC_PER_SEC);
    d->pub.dns_failures = 0;
    maintain_soon(d);
}

static void failed(struct mta_domain *d, enum mta_mx_state state, const char *why)
{
    d->mx_state = state;
    if (d->pub.dns_failures < UINT8_MAX)
        d->pub.dns_failures++;
    snprintf(d->mx_note, sizeof d->mx_note, "%s", why);
    maintain_soon(d);
}

static int cmp_pref(const void *a, const void *b)
{
    const struct mx_host *x = a, *y = b;
    if (x->preference != y->preference)
        return x->preference < y->preference ? -1 : 1;
    return 0;
}

/* shuffle_equal_preferences - hosts of equal preference in an order drawn
 * from the seed (RFC 5321 5.1: the client should randomize them to spread
 * the load), one Fisher-Yates shuffle per run of equal preference */
static void shuffle_equal_preferences(struct mta_domain *d, int nmx)
{
    struct mta_env *env = d->m->env;
    char purpose[MTA_DNS_NAME_MAX + 16];
    snprintf(purpose, sizeof purpose, "mx order %s", d->pub.domain);
    for (int start = 0; start < nmx;) {
        int end = start + 1;
        while (end < nmx && d->mx_storage[end].preference == d->mx_storage[start].preference)
            end++;
        for (int i = end - 1; i > start; i--) {
            int j = start + (int)env->random_below(env, purpose, (uint64_t)(i - start + 1));
            struct mx_host tmp = d->mx_storage[i];
            d->mx_storage[i] = d->mx_storage[j];
            d->mx_storage[j] = tmp;
        }
        start = end;
    }
}

static void mx_answer(struct mta_domain *d, const struct mta_dns_answer *ans)
{
    char why[MTA_NOTE_MAX];
    switch (ans->rcode) {
    case MTA_DNS_NXDOMAIN:
        snprintf(why, sizeof why, "MX lookup for %s: domain not found (NXDOMAIN)", d->pub.domain);
        failed(d, MX_FAILED_PERM, why);
        return;
    case MTA_DNS_SERVFAIL:
        snprintf(why, sizeof why, "MX lookup for %s: server failure (SERVFAIL)", d->pub.domain);
        failed(d, MX_FAILED_TEMP, why);
        return;
    case MTA_DNS_TIMEOUT:
        snprintf(why, sizeof why, "MX lookup for %s: timed out", d->pub.domain);
        failed(d, MX_FAILED_TEMP, why);
        return;
    case MTA_DNS_NOERROR:
        break;
    }
    mx_clear(d);
    d->mx_expires = 0;
    int nmx = 0;
    for (int i = 0; i < ans->count && nmx < MTA_MAX_MX; i++) {
        const struct mta_dns_rr *rr = &ans->rr[i];
        if (rr->type != MTA_DNS_MX)
            continue;
        ttl_note(d, rr->ttl);
        if (rr->name[0] == '\0' || strcmp(rr->name, ".") == 0) {
            /* RFC 7505: a null MX means no mail, whatever else is there. */
            snprintf(why, sizeof why, "%s publishes a null MX: it accepts no mail", d->pub.domain);
            d->mx_state = MX_NULL;
            d->pub.dns_failures = 0;
            snprintf(d->mx_note, sizeof d->mx_note, "%s", why);
            maintain_soon(d);
            return;
        }
        struct mx_host *h = &d->mx_storage[nmx++];
        h->name = strdup(rr->name);
        if (h->name == NULL)
            mta_panic("mx_answer", "out of memory");
        h->preference = rr->pref;
        h->naddrs = 0;
    }
    if (nmx == 0) {
        /* No MX: the domain itself is the host (implicit MX). */
        struct mx_host *h = &d->mx_storage[nmx++];
        h->name = strdup(d->pub.domain);
        if (h->name == NULL)
            mta_panic("mx_answer", "out of memory");
        h->preference = 0;
        h->naddrs = 0;
    }
    /* qsort is not stable; insertion sort keeps equal preferences in answer order. */
    for (int i = 1; i < nmx; i++) {
        struct mx_host tmp = d->mx_storage[i];
        int j = i;
        while (j > 0 && cmp_pref(&d->mx_storage[j - 1], &tmp) > 0) {
            d->mx_storage[j] = d->mx_storage[j - 1];
            j--;
        }
        d->mx_storage[j] = tmp;
    }
    shuffle_equal_preferences(d, nmx);
    d->pub.mxcnt = nmx;
    /* The address families to look up are those the bindings can connect
     * from (Postfix looks up AAAA only with IPv6 in inet_protocols, A only
     * with IPv4): an IPv4-only MTA asks A, as before; an IPv6 binding adds
     * AAAA.  pick_address() then matches each binding with its family. */
    int want_a = 0, want_aaaa = 0;
    for (int b = 0; b < d->m->nbindings; b++) {
        if (mta_ip_is_v4(d->m->bindings[b].source_addr))
            want_a = 1;
        else
            want_aaaa = 1;
    }
    d->a_pending = nmx * (want_a + want_aaaa);
    for (int i = 0; i < nmx; i++) {
        if (want_a)
            query(d, d->mx_storage[i].name, MTA_DNS_A, i);
        if (want_aaaa)
            query(d, d->mx_storage[i].name, MTA_DNS_AAAA, i);
    }
}

static void a_answer(struct mta_domain *d, int idx, const struct mta_dns_answer *ans)
{
    assert(idx >= 0 && idx < d->pub.mxcnt);
    struct mx_host *h = &d->mx_storage[idx];
    if (ans->rcode == MTA_DNS_NOERROR)
        for (int i = 0; i < ans->count && h->naddrs < MTA_MX_MAX_ADDRS; i++) {
            if (ans->rr[i].type != MTA_DNS_A && ans->rr[i].type != MTA_DNS_AAAA)
                continue;
            if (ans->rr[i].type == MTA_DNS_A) {
                h->addrs[h->naddrs++] = mta_ip_v4(ans->rr[i].addr);
            } else {
                /* RFC 3596 2.2: 16 octets in network byte order. */
                mta_ip a6;
                memcpy(a6.b, ans->rr[i].addr6, sizeof a6.b);
                h->addrs[h->naddrs++] = a6;
            }
            ttl_note(d, ans->rr[i].ttl);
        }
    assert(d->a_pending > 0);
    if (--d->a_pending == 0) {
        if (d->mx_expires == 0)
            d->mx_expires = mta_now(d->m) + d->m->cfg.dns_cache_ttl_max;
        resolved(d);
    }
}

static void dns_answer(void *arg, const char *name, enum mta_dns_type type,
                       const struct mta_dns_answer *ans)
{
    (void)name;
    (void)type;
    struct mta_dns_ctx *ctx = arg;
    struct mta *m = ctx->d->m;
    if (ctx->prev)
        ctx->prev->next = ctx->next;
    else
        m->dns_pending = ctx->next;
    if (ctx->next)
        ctx->next->prev = ctx->prev;
    struct mta_domain *d = ctx->d;
    int stale = ctx->generation != d->mx_generation || d->mx_state != MX_PENDING;
    int idx = ctx->mx_index;
    free(ctx);
    if (stale || m->shutting_down)
        return;
    if (idx < 0)
        mx_answer(d, ans);
    else
        a_answer(d, idx, ans);
}

/* domain_resolve - start (or restart) the lookups for d */
void domain_resolve(struct mta_domain *d)
{
    d->mx_generation++;
    d->mx_state = MX_PENDING;
    d->mx_expires = 0;
    d->pub.expiry = 0;
    d->mx_note[0] = '\0';
    query(d, d->pub.domain, MTA_DNS_MX, -1);
}
