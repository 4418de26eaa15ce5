/*
 * trace - how the core describes what it does
 *
 * SYNOPSIS
 *   struct mta_tb tb;
 *   if (mta_tracing()) {
 *       mta_tb_begin(&tb, "queue", "delivered");
 *       mta_tb_int(&tb, "msg", id);
 *       mta_tb_emit(&tb);
 *   }
 *
 * DESCRIPTION
 *   A trace builder collects up to MTA_TRACE_MAX_FIELDS fields of one record
 *   on the stack and hands it to the environment's trace() function, which
 *   stamps it with the virtual time and copies it.  Numbers are formatted
 *   into the builder's own buffer; strings are referenced, not copied, until
 *   mta_tb_emit().  Adding more fields than fit, or more text than the
 *   buffer holds, truncates (never overflows) and marks the record.
 *
 *   mta_tracing() is false when no core is running or the environment has
 *   no trace sink; callers skip building records then.
 */
#ifndef MTASIM_TRACE_H
#define MTASIM_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mtasim_env.h"
#include "domain.h"
#include "ec_message.h"
#include "message.h"
#include "connection.h"
#include "skiplist.h"
#include "smtp.h"
#include "validate.h"

struct mta_tb {
    struct mta_trace_rec rec;
    size_t used;
    char buf[1024];
};

/* Non-zero while a core runs whose environment takes a trace; set by
 * mta_create() and mta_destroy().  Read on every hook call and command,
 * so it is a variable, not a function. */
extern int mta_trace_on;
static inline int mta_tracing(void) { return mta_trace_on; }
/*
 * The functions that take a kind, a name or a key are called through the
 * inline wrappers below, which pass its length too: for a string literal
 * (nearly every call) the compiler folds strlen() to a constant, so the
 * sink never measures a key again.  (A string value, NULL shown as empty,
 * is measured inline the same way.)
 */
void mta_tb_begin_n(struct mta_tb *tb, const char *kind, size_t kind_len, const char *name,
                    size_t name_len);
void mta_tb_strn_k(struct mta_tb *tb, const char *key, size_t klen, const char *s, size_t len);
void mta_tb_int_k(struct mta_tb *tb, const char *key, size_t klen, int64_t v);
/* A number shown by name, e.g. num=-10 shown as CONN_ERR_CONNECT. */
void mta_tb_sym_k(struct mta_tb *tb, const char *key, size_t klen, int64_t num, const char *sym);
void mta_tb_ipv4_k(struct mta_tb *tb, const char *key, size_t klen, uint32_t addr);
/* An address of either family: an IPv4 one as mta_tb_ipv4 (with its number), IPv6 as text. */
void mta_tb_ip_k(struct mta_tb *tb, const char *key, size_t klen, mta_ip addr);
void mta_tb_connfd_k(struct mta_tb *tb, const char *key, size_t klen, int conn_fd);
void mta_tb_connerr_k(struct mta_tb *tb, const char *key, size_t klen, int err);
void mta_tb_host_k(struct mta_tb *tb, const char *key, size_t klen, const host_record *host);
void mta_tb_sockaddr_k(struct mta_tb *tb, const char *key, size_t klen,
                       const struct sockaddr *sa);
void mta_tb_skiplist_k(struct mta_tb *tb, const char *key, size_t klen, const Skiplist *sl);
void mta_tb_args_k(struct mta_tb *tb, const char *key, size_t klen,
                   const smtp_client_args *args);

static inline void mta_tb_begin(struct mta_tb *tb, const char *kind, const char *name)
{
    mta_tb_begin_n(tb, kind, strlen(kind), name, strlen(name));
}
static inline void mta_tb_str_k(struct mta_tb *tb, const char *key, size_t klen, const char *s)
{
    mta_tb_strn_k(tb, key, klen, s ? s : "", s ? strlen(s) : 0);
}
static inline void mta_tb_str(struct mta_tb *tb, const char *key, const char *s)
{
    mta_tb_str_k(tb, key, strlen(key), s);
}
static inline void mta_tb_strn(struct mta_tb *tb, const char *key, const char *s, size_t len)
{
    mta_tb_strn_k(tb, key, strlen(key), s, len);
}
static inline void mta_tb_int(struct mta_tb *tb, const char *key, int64_t v)
{
    mta_tb_int_k(tb, key, strlen(key), v);
}
static inline void mta_tb_sym(struct mta_tb *tb, const char *key, int64_t num, const char *sym)
{
    mta_tb_sym_k(tb, key, strlen(key), num, sym);
}
static inline void mta_tb_ipv4(struct mta_tb *tb, const char *key, uint32_t a)
{
    mta_tb_ipv4_k(tb, key, strlen(key), a);
}
static inline void mta_tb_ip(struct mta_tb *tb, const char *key, mta_ip a)
{
    mta_tb_ip_k(tb, key, strlen(key), a);
}
static inline void mta_tb_connfd(struct mta_tb *tb, const char *key, int fd)
{
    mta_tb_connfd_k(tb, key, strlen(key), fd);
}
static inline void mta_tb_connerr(struct mta_tb *tb, const char *key, int err)
{
    mta_tb_connerr_k(tb, key, strlen(key), err);
}
static inline void mta_tb_host(struct mta_tb *tb, const char *key, const host_record *h)
{
    mta_tb_host_k(tb, key, strlen(key), h);
}
static inline void mta_tb_sockaddr(struct mta_tb *tb, const char *key, const struct sockaddr *sa)
{
    mta_tb_sockaddr_k(tb, key, strlen(key), sa);
}
static inline void mta_tb_skiplist(struct mta_tb *tb, const char *key, const Skiplist *sl)
{
    mta_tb_skiplist_k(tb, key, strlen(key), sl);
}
static inline void mta_tb_args(struct mta_tb *tb, const char *key, const smtp_client_args *args)
{
    mta_tb_args_k(tb, key, strlen(key), args);
}


void mta_tb_domain(struct mta_tb *tb, const domain_record *dr);
void mta_tb_binding(struct mta_tb *tb, int slot);
void mta_tb_message(struct mta_tb *tb, const message *msg);
void mta_tb_conn(struct mta_tb *tb, const connection_handle *ch);
/* The Momentum-style structures, by what identifies them (hooks.md). */
void mta_tb_ec_message(struct mta_tb *tb, const ec_message *msg);
void mta_tb_ret_active(struct mta_tb *tb, domain_record *dr, int slot, const ec_message *ret);
void mta_tb_mail_queue(struct mta_tb *tb, const mail_queue *mq);
void mta_tb_dc(struct mta_tb *tb, const delivery_construct *dc);
void mta_tb_accept(struct mta_tb *tb, const accept_construct *ac);
void mta_tb_vctx(struct mta_tb *tb, const validate_context *c);
void mta_tb_auth_info(struct mta_tb *tb, const struct ec_auth_info *info);
void mta_tb_emit(struct mta_tb *tb);

#endif
