/*
 * mta - the core instance: bindings, injection, shutdown, statistics
 *
 * SYNOPSIS
 *   See mta.h.
 *
 * DESCRIPTION
 *   mta_create() makes the instance current (the hook API is global, so
 *   exactly one core runs at a time); mta_destroy() releases it and
 *   empties every hook list.  mta_inject() splits an injection by
 *   recipient domain into one message per domain, in first-seen order, and
 *   puts each on the active queue of its (domain, binding); the maintainer
 *   then runs for each domain at the current virtual instant.
 *
 * DIAGNOSTICS
 *   A broken invariant calls mta_panic(), which names the function and
 *   aborts: a core bug must never turn into a quietly wrong trace.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hook_registry.h"
#include "hooks/core/get_msg_expiration_params.h"
#include "mq.h"
#include "mta_internal.h"
#include "panic.h"
#include "smtp_server.h"
#include "trace.h"

struct mta *mta_current;

#ifdef MTASIM_TEST_FAULTS
int mta_test_fault;
#endif

/* mta_panic - report a broken invariant and stop, as the utilities do */
void mta_panic(const char *func, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    util_vpanic(func, fmt, ap);     /* does not return: no va_end */
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (p == NULL)
        mta_panic("xcalloc", "out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    char *p = strdup(s ? s : "");
    if (p == NULL)
        mta_panic("xstrdup", "out of memory");
    return p;
}

/* binding_by_slot - the binding in slot of the running core, or NULL */
const binding *binding_by_slot(int slot)
{
    if (mta_current == NULL || slot < 0 || slot >= mta_current->nbindings)
        return NULL;
    return &mta_current->bindings[slot];
}

/* registry_clock - the running core's virtual time, passed down to the
 * hook registry so that its watch can stamp provider calls */
static int64_t registry_clock(void *arg)
{
    return mta_now(arg);
}

/* mta_create - a core talking to env, made current */
struct mta *mta_create(struct mta_env *env, const struct mta_config *cfg)
{
    if (mta_current != NULL)
        mta_panic("mta_create", "a core is already running");
    struct mta *m = xcalloc(1, sizeof *m);
    m->env = env;
    m->cfg = *cfg;
    m->texts = strtab_create();
    mta_current = m;
    mta_trace_on = env->trace != NULL;
    hook_registry_set_clock(registry_clock, m);
    /* 192.0.2.1 is TEST-NET-1: never a real address. */
    mta_add_binding(m, "default", mta_ip_v4(0xC0000201u), "mtasim.test");
    return m;
}

/* mta_add_binding - define or redefine a named binding; returns its slot */
int mta_add_binding(struct mta *m, const char *name, mta_ip source_addr,
                    const char *ehlo_name)
{
    int slot = mta_binding_slot(m, name);
    if (slot < 0) {
        if (m->nbindings >= MTA_MAX_BINDINGS)
            return -1;
        slot = m->nbindings++;
        m->binding_names[slot] = xstrdup(name);
    }
    free(m->binding_ehlo[slot]);
    m->binding_ehlo[slot] = xstrdup(ehlo_name ? ehlo_name : "mtasim.test");
    binding *b = &m->bindings[slot];
    b->slot = slot;
    b->name = m->binding_names[slot];
    b->source_addr = source_addr;
    b->ehlo_name = m->binding_ehlo[slot];
    return slot;
}

/* mta_binding_slot - the slot of a binding by name, or -1 */
int mta_binding_slot(const struct mta *m, const char *name)
{
    for (int i = 0; i < m->nbindings; i++)
        if (strcmp(m->binding_names[i], name) == 0)
            return i;
    return -1;
}

static const char *addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return (at && at[1]) ? at + 1 : NULL;
}

/* mta_address_check - NULL when addr is within RFC 5321's limits (mta.h) */
const char *mta_address_check(const char *addr, int need_domain)
{
    size_t n = strlen(addr);
    if (n + 2 > MTA_PATH_MAX)
        return "the path is over 256 octets (RFC 5321 4.5.3.1.3)";
    const char *at = strrchr(addr, '@');
    if (at == NULL)
        return need_domain ? "no domain after '@'" : NULL;
    if (need_domain && (at == addr || at[1] == '\0'))
        return at == addr ? "no local part before '@'" : "no domain after '@'";
    if ((size_t)(at - addr) > MTA_LOCAL_PART_MAX)
        return "the local part is over 64 octets (RFC 5321 4.5.3.1.1)";
    /* Not reachable within a 256-octet path, but the limit is the core's. */
    if (strlen(at + 1) > MTA_DOMAIN_MAX)
        return "the domain is over 255 octets (RFC 5321 4.5.3.1.2)";
    return NULL;
}

/* domain_of - the lower-case domain of address a into out (size MTA_DNS_NAME_MAX) */
static void domain_of(const char *a, char *out)
{
    const char *d = addr_domain(a);
    size_t n = strlen(d);
    assert(n < MTA_DNS_NAME_MAX);      /* mta_inject checked it */
    for (size_t i = 0; i <= n; i++)
        out[i] = (d[i] >= 'A' && d[i] <= 'Z') ? (char)(d[i] - 'A' + 'a') : d[i];
}

/* new_message - one message for the recipients of rcpts at domain */
static struct mta_msg *new_message(struct mta *m, unsigned long id, const char *from,
                                   struct mta_domain *d, const char *const *rcpts,
                                   int nrcpts, const char *body, size_t body_len,
                                   int slot)
{
    int count = 0;
    size_t addr_bytes = 0;
    for (int i = 0; i < nrcpts; i++) {
        char dom[MTA_DNS_NAME_MAX];
        domain_of(rcpts[i], dom);
        if (strcmp(dom, d->pub.domain) == 0) {
            count++;
            addr_bytes += strlen(rcpts[i]) + 1;
        }
    }
    assert(count > 0);
    /* One allocation: the message, its recipients, their statuses and
     * addresses (millions of messages: one malloc each, not five). */
    size_t rcpts_at = sizeof(struct mta_msg);
    size_t ext_at = rcpts_at + (size_t)count * sizeof(struct message_rcpt);
    size_t priv_at = ext_at + (size_t)count * sizeof(struct smtp_recipient);
    size_t addr_at = priv_at + (size_t)count * sizeof(struct mta_rcpt_priv);
    _Static_assert(sizeof(struct mta_msg) % _Alignof(struct message_rcpt) == 0 &&
                   sizeof(struct message_rcpt) % _Alignof(struct smtp_recipient) == 0 &&
                   sizeof(struct smtp_recipient) % _Alignof(struct mta_rcpt_priv) == 0,
                   "the parts of a message block stay aligned");
    char *block = xcalloc(1, addr_at + addr_bytes);
    struct mta_msg *msg = (struct mta_msg *)block;
    msg->pub.rcpts = (struct message_rcpt *)(block + rcpts_at);
    msg->rcpt_ext = (struct smtp_recipient *)(block + ext_at);
    msg->rcpt_priv = (struct mta_rcpt_priv *)(block + priv_at);
    char *addr = block + addr_at;
    for (int i = 0; i < nrcpts; i++) {
        char dom[MTA_DNS_NAME_MAX];
        domain_of(rcpts[i], dom);
        if (strcmp(dom, d->pub.domain) != 0)
            continue;
        struct message_rcpt *r = &msg->pub.rcpts[msg->pub.rcpt_count++];
        size_t len = strlen(rcpts[i]) + 1;
        memcpy(addr, rcpts[i], len);
        r->address = addr;
        addr += len;
        r->state = RCPT_PENDING;
    }
    assert(addr == block + addr_at + addr_bytes);
    mta_usec_t now = mta_now(m);
    for (int i = 0; i < count; i++) {
        msg->rcpt_ext[i].mailbox = msg->pub.rcpts[i].address;
        status_clear(&msg->rcpt_ext[i].status);
    }
    status_clear(&msg->mail_status);
    status_clear(&msg->data_status);
    msg->pub.id = id;
    msg->pub.mail_from = mta_text(m, from);
    msg->pub.domain = d->pub.domain;
    msg->pub.binding_slot = slot;
    msg->pub.body = body;
    msg->pub.body_len = body_len;
    msg->pub.injected = mta_tv(now);
    msg->pub.next_attempt = mta_tv(now);
    msg->pub.log_rcpt = -1;
    msg->dom = d;
    msg->where = MSG_NEW;
    msg->seq = m->next_seq++;
    msg->expires_at = now + m->cfg.message_expiration;
    msg->retry_interval = m->cfg.retry_interval;
    msg->max_retries = m->cfg.max_retries;
    msg->done_at = -1;
    msg->eightbit = -1;
    /* A provider may give this message its own expiry and retry policy. */
    time_t expiration = (time_t)(m->cfg.message_expiration / MTA_USEC_PER_SEC);
    time_t retry = (time_t)(m->cfg.retry_interval / MTA_USEC_PER_SEC);
    int max_retries = m->cfg.max_retries;
    if (call_core_get_msg_expiration_params_hook(msg_ec(msg, -1), &expiration, &retry,
                                                 &max_retries)) {
        if (expiration > 0)
            msg->expires_at = now + (mta_usec_t)expiration * MTA_USEC_PER_SEC;
        if (retry > 0)
            msg->retry_interval = (mta_usec_t)retry * MTA_USEC_PER_SEC;
        if (max_retries >= 0)
            msg->max_retries = max_retries;
    }
    return msg;
}

/* same_address - a and b name one mailbox: the local part byte for byte,
 * the domain in any case (RFC 5321 2.4) */
static int same_address(const char *a, const char *b)
{
    const char *at_a = strrchr(a, '@'), *at_b = strrchr(b, '@');
    assert(at_a != NULL && at_b != NULL);      /* mta_address_check(.., 1) held */
    return at_a - a == at_b - b && memcmp(a, b, (size_t)(at_a - a)) == 0
           && strcasecmp(at_a + 1, at_b + 1) == 0;
}

/* mta_inject - split by domain, queue, and wake the maintainer */
int mta_inject(struct mta *m, unsigned long id, const char *from,
               const char *const *rcpts, int nrcpts,
               const char *body, size_t body_len, int binding_slot,
               const struct mta_inject_opts *opts)
{
    if (binding_slot < 0 || binding_slot >= m->nbindings || nrcpts <= 0)
        return -1;
    if (from == NULL || mta_address_check(from, 0) != NULL)
        return -1;
    for (int i = 0; i < nrcpts; i++)
        if (mta_address_check(rcpts[i], 1) != NULL)
            return -1;
    /* A recipient given twice is queued once, as Postfix's cleanup(8)
     * eliminates duplicate envelope recipients: the same address (the
     * local part exact, the domain in any case; RFC 5321 2.4), first
     * occurrence kept.  Delivered once per copy, it was a duplicate
     * delivery (an invariant violation; found by fuzz_run). */
    const char **uniq = malloc((size_t)nrcpts * sizeof *uniq);
    if (uniq == NULL)
        mta_panic("mta_inject", "out of memory");
    int nuniq = 0;
    for (int i = 0; i < nrcpts; i++) {
        int dup = 0;
        for (int j = 0; j < nuniq && !dup; j++)
            dup = same_address(rcpts[i], uniq[j]);
        if (!dup)
            uniq[nuniq++] = rcpts[i];
    }
    rcpts = uniq;
    nrcpts = nuniq;
    /* One message per domain, in the order domains first appear. */
    for (int i = 0; i < nrcpts; i++) {
        char dom[MTA_DNS_NAME_MAX];
        domain_of(rcpts[i], dom);
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            char other[MTA_DNS_NAME_MAX];
            domain_of(rcpts[j], other);
            seen = strcmp(dom, other) == 0;
        }
        if (seen)
            continue;
        struct mta_domain *d = domain_get(m, dom);
        struct mta_msg *msg = new_message(m, id, from, d, rcpts, nrcpts, body, body_len,
                                          binding_slot);
        if (opts) {
            msg->pub.dsn_notify = opts->notify ? xstrdup(opts->notify) : NULL;
            msg->pub.dsn_ret = opts->ret ? xstrdup(opts->ret) : NULL;
            msg->pub.dsn_envid = opts->envid ? xstrdup(opts->envid) : NULL;
            msg->pub.chunking = opts->chunking;
            msg->pub.deliver_by = opts->deliver_by;
        }
        if (m->nmsgs == m->msgs_cap) {
            m->msgs_cap = m->msgs_cap ? m->msgs_cap * 2 : 64;
            m->msgs = realloc(m->msgs, m->msgs_cap * sizeof *m->msgs);
            if (m->msgs == NULL)
                mta_panic("mta_inject", "out of memory");
        }
        m->msgs[m->nmsgs++] = msg;
        if (mta_tracing()) {
            struct mta_tb tb;
            mta_tb_begin(&tb, "queue", "inject");
            mta_tb_int(&tb, "msg", (int64_t)id);
            mta_tb_str(&tb, "domain", d->pub.domain);
            mta_tb_binding(&tb, binding_slot);
            mta_tb_str(&tb, "from", msg->pub.mail_from);
            mta_tb_int(&tb, "rcpts", msg->pub.rcpt_count);
            mta_tb_int(&tb, "size", (int64_t)body_len);
            mta_tb_emit(&tb);
        }
        queue_append_active(msg);
        maintain_soon(d);
    }
    free(uniq);
    return 0;
}

/* mta_inject_internal - a message of the core's own (a DSN), owning its body */
struct mta_msg *mta_inject_internal(struct mta *m, unsigned long id, const char *to,
                                    char *body, size_t len, int slot)
{
    size_t before = m->nmsgs;
    if (mta_inject(m, id, "", &to, 1, body, len, slot, NULL) < 0) {
        free(body);
        return NULL;
    }
    assert(m->nmsgs == before + 1);     /* one recipient: one message */
    struct mta_msg *msg = m->msgs[before];
    msg->owned_body = body;
    return msg;
}

/* mta_fd_is_conn - fd is an open connection of the core, in or out */
int mta_fd_is_conn(struct mta *m, int fd)
{
    return fd >= 0 && (smtp_client_has_fd(m, fd) || smtp_server_has_fd(m, fd));
}

/* mta_shutdown - the run is over: close connections, cancel timers */
void mta_shutdown(struct mta *m)
{
    m->shutting_down = 1;
    smtp_server_shutdown(m);
    mq_shutdown();
    smtp_conn_abort_all(m);
    for (int i = 0; i < m->ndomains; i++) {
        struct mta_domain *d = m->domains[i];
        if (d->maintain_pending) {
            m->env->timer_cancel(m->env, d->maintain_timer);
            d->maintain_pending = 0;
        }
    }
    if (m->delayed_timer) {
        m->env->timer_cancel(m->env, m->delayed_timer);
        m->delayed_timer = 0;
    }
}

/* free_message - one message block and what it owns */
static void free_message(struct mta_msg *msg)
{
    free((char *)msg->pub.dsn_notify);
    free((char *)msg->pub.dsn_ret);
    free((char *)msg->pub.dsn_envid);
    free(msg->owned_body);
    free(msg);
}

/* pending_count_of - msg's recipients still pending */
static int pending_count_of(const struct mta_msg *msg)
{
    int n = 0;
    for (int i = 0; i < msg->pub.rcpt_count; i++)
        n += msg->pub.rcpts[i].state == RCPT_PENDING;
    return n;
}

/* mta_destroy - free everything and stop being the current core */
void mta_destroy(struct mta *m)
{
    if (m == NULL)
        return;
    if (!m->shutting_down)
        mta_shutdown(m);
    queue_free_all(m);
    for (size_t i = 0; i < m->nmsgs; i++)
        free_message(m->msgs[i]);
    free(m->msgs);
    strtab_destroy(m->texts);
    dns_pending_free_all(m);
    domain_free_all(m);
    free(m->host_failures);
    idxmap_free(&m->host_failure_index);
    free(m->host_conns);
    idxmap_free(&m->host_conns_index);
    free(m->slot_waiters);
    for (int i = 0; i < m->nbindings; i++) {
        free(m->binding_names[i]);
        free(m->binding_ehlo[i]);
    }
    smtp_server_free(m);
    while (m->nspare_data > 0)
        free(m->spare_data[--m->nspare_data]);
    mq_reset();
    if (mta_current == m) {
        mta_current = NULL;
        mta_trace_on = 0;
        hook_registry_set_clock(NULL, NULL);
    }
    hooks_reset_all();
    ev_reset();
    free(m);
}

/* mta_release_done - see mta.h */
size_t mta_release_done(struct mta *m, void (*fn)(void *arg, const message *msg), void *arg)
{
    size_t kept = 0;
    for (size_t i = 0; i < m->nmsgs; i++) {
        struct mta_msg *msg = m->msgs[i];
        if (msg->where == MSG_DONE && msg->on_conn == NULL && pending_count_of(msg) == 0) {
            fn(arg, &msg->pub);
            free_message(msg);
        } else {
            m->msgs[kept++] = msg;
        }
    }
    m->nmsgs = kept;
    return kept;
}

/* mta_foreach_message - visit messages in creation order */
void mta_foreach_message(const struct mta *m, void (*fn)(void *arg, const message *msg),
                         void *arg)
{
    for (size_t i = 0; i < m->nmsgs; i++)
        fn(arg, &m->msgs[i]->pub);
}

void mta_get_stats(const struct mta *m, struct mta_stats *st)
{
    *st = m->stats;
}

/* mta_message_info - where a message stands */
void mta_message_info(const message *pub, struct mta_msg_info *info)
{
    static const char *const where[] = { "new", "active", "delayed", "inflight", "done" };
    const struct mta_msg *msg = (const struct mta_msg *)pub;
    info->where = where[msg->where];
    info->held = msg->where == MSG_ACTIVE || msg->where == MSG_DELAYED ||
                 msg->where == MSG_INFLIGHT;
    info->done_at = msg->done_at;
    info->next_attempt = (mta_usec_t)pub->next_attempt.tv_sec * MTA_USEC_PER_SEC +
                         pub->next_attempt.tv_usec;
}
