/*
 * trace - how the core describes what it does (see trace.h)
 *
 * The builder writes numbers and derived strings into its own buffer and
 * references caller strings until emit.  Records go to the current core's
 * environment; with no core or no sink, mta_tracing() is false and callers
 * build nothing.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mta_internal.h"
#include "test_faults.h"
#include "textbuf.h"
#include "trace.h"

int mta_trace_on;

void mta_tb_begin_n(struct mta_tb *tb, const char *kind, size_t kind_len, const char *name,
                    size_t name_len)
{
    tb->rec.kind = kind;
    tb->rec.name = name;
    tb->rec.kind_len = kind_len;
    tb->rec.name_len = name_len;
    tb->rec.nfields = 0;
    tb->used = 0;
}

static struct mta_trace_field *add_field(struct mta_tb *tb, const char *key, size_t klen)
{
    if (tb->rec.nfields >= MTA_TRACE_MAX_FIELDS)
        return NULL;
    struct mta_trace_field *f = &tb->rec.field[tb->rec.nfields++];
    f->key = key;
    f->str = "";
    f->len = 0;
    f->num = 0;
    f->has_num = 0;
    f->klen = klen;
    return f;
}

/* Copy text into the builder's buffer; returns NULL when it is full. */
static const char *keep(struct mta_tb *tb, const char *s, size_t len, size_t *outlen)
{
    size_t room = sizeof tb->buf - tb->used;
    if (len > room)
        len = room;
    char *dst = tb->buf + tb->used;
    memcpy(dst, s, len);
    tb->used += len;
    *outlen = len;
    return dst;
}

void mta_tb_strn_k(struct mta_tb *tb, const char *key, size_t klen, const char *s, size_t len)
{
    struct mta_trace_field *f = add_field(tb, key, klen);
    if (f) {
        f->str = s ? s : "";
        f->len = s ? len : 0;
    }
}

/* sym_n - a field num shown as sym[0..len): the text is copied, its length known */
static void sym_n(struct mta_tb *tb, const char *key, size_t klen, int64_t num, const char *sym,
                  size_t len)
{
    struct mta_trace_field *f = add_field(tb, key, klen);
    if (!f)
        return;
    f->str = keep(tb, sym, len, &f->len);
    f->num = num;
    f->has_num = 1;
}

void mta_tb_sym_k(struct mta_tb *tb, const char *key, size_t klen, int64_t num, const char *sym)
{
    sym_n(tb, key, klen, num, sym, strlen(sym));
}

/* num_room - where a number's text goes: straight into the builder's
 * buffer when it fits, else into tmp (num_done then copies it, cut as
 * keep() cuts) */
#define NUM_TEXT_MAX 24             /* "-9223372036854775808" and its NUL */
static char *num_room(struct mta_tb *tb, char tmp[NUM_TEXT_MAX])
{
    return sizeof tb->buf - tb->used >= NUM_TEXT_MAX ? tb->buf + tb->used : tmp;
}

/* num_done - add the number field whose text t holds (num_room) */
static void num_done(struct mta_tb *tb, const char *key, size_t klen, int64_t num,
                     const struct textbuf *t)
{
    if (t->buf != tb->buf + tb->used) {         /* no room: copied, cut */
        sym_n(tb, key, klen, num, t->buf, t->len);
        return;
    }
    struct mta_trace_field *f = add_field(tb, key, klen);
    if (!f)
        return;
    f->str = t->buf;
    f->len = t->len;
    tb->used += t->len;
    f->num = num;
    f->has_num = 1;
}

/* The number is formatted in place: its length comes with it, no copy. */
void mta_tb_int_k(struct mta_tb *tb, const char *key, size_t klen, int64_t v)
{
    char tmp[NUM_TEXT_MAX];
    struct textbuf t = textbuf_on(num_room(tb, tmp), NUM_TEXT_MAX);
    textbuf_i64(&t, v);
    num_done(tb, key, klen, v, &t);
}

void mta_tb_ipv4_k(struct mta_tb *tb, const char *key, size_t klen, uint32_t a)
{
    char tmp[NUM_TEXT_MAX];
    struct textbuf t = textbuf_on(num_room(tb, tmp), NUM_TEXT_MAX);
    textbuf_ipv4(&t, a);
    num_done(tb, key, klen, a, &t);
}

void mta_tb_ip_k(struct mta_tb *tb, const char *key, size_t klen, mta_ip a)
{
    if (mta_ip_is_v4(a)) {
        mta_tb_ipv4_k(tb, key, klen, mta_ip_v4_of(a));
        return;
    }
    char tmp[MTA_IP_TEXT];
    mta_ip_format(a, tmp);
    struct mta_trace_field *f = add_field(tb, key, klen);
    if (f)
        f->str = keep(tb, tmp, strlen(tmp), &f->len);  /* tmp dies with this call */
}

void mta_tb_connfd_k(struct mta_tb *tb, const char *key, size_t klen, int conn_fd)
{
    if (conn_fd >= 0) {
        mta_tb_int_k(tb, key, klen, conn_fd);
        return;
    }
    const char *name = conn_err_name(-conn_fd);
    if (name)
        mta_tb_sym_k(tb, key, klen, conn_fd, name);
    else
        mta_tb_int_k(tb, key, klen, conn_fd);
}

void mta_tb_connerr_k(struct mta_tb *tb, const char *key, size_t klen, int err)
{
    char tmp[96];
    mta_tb_sym_k(tb, key, klen, err, conn_err_format(err, tmp, sizeof tmp));
}

void mta_tb_domain(struct mta_tb *tb, const domain_record *dr)
{
    mta_tb_str(tb, "domain", dr ? dr->domain : "");
}

void mta_tb_binding(struct mta_tb *tb, int slot)
{
    const binding *b = binding_by_slot(slot);
    mta_tb_sym(tb, "binding", slot, b ? b->name : "?");
}

void mta_tb_message(struct mta_tb *tb, const message *msg)
{
    if (!msg)
        return;
    mta_tb_int(tb, "msg", (int64_t)msg->id);
    if (msg->log_rcpt >= 0 && msg->log_rcpt < msg->rcpt_count)
        mta_tb_str(tb, "rcpt", msg->rcpts[msg->log_rcpt].address);
}

void mta_tb_conn(struct mta_tb *tb, const connection_handle *ch)
{
    if (!ch)
        return;
    mta_tb_int(tb, "conn", ch->fd);
    mta_tb_ip(tb, "addr", ch->addr);
    /* The domain, unless the hook already passed it as its own argument. */
    int has_domain = 0;
    for (int i = 0; i < tb->rec.nfields; i++)
        has_domain |= tb->rec.field[i].klen == 6 && memcmp(tb->rec.field[i].key, "domain", 6) == 0;
    if (ch->dr && !has_domain)
        mta_tb_domain(tb, ch->dr);
}

/* mta_tb_ec_message - msg=ID (and rcpt= in a log hook), or for a message
 * still being received its sender and size */
void mta_tb_ec_message(struct mta_tb *tb, const ec_message *msg)
{
    if (!msg)
        return;
    if (msg->_mtasim) {
        mta_tb_message(tb, msg->_mtasim);
        return;
    }
    mta_tb_str(tb, "from", msg->_from);
    mta_tb_int(tb, "size", (int64_t)msg->_size);
}

/* mta_tb_ret_active - a message a provider returned for (dr, slot): its id
 * when it waits in that active queue, else ret=not-in-queue.  ret is
 * compared, never read: it may be anything a plugin returned. */
void mta_tb_ret_active(struct mta_tb *tb, domain_record *dr, int slot, const ec_message *ret)
{
    if (ret == NULL)
        mta_tb_str(tb, "ret", "NULL");
    else if (dr != NULL && slot >= 0 && slot < MTA_MAX_BINDINGS &&
             queue_active_holds(mta_dom(dr), slot, ret))
        mta_tb_int(tb, "ret_msg", (int64_t)ret->_mtasim->id);
    else
        mta_tb_str(tb, "ret", "not-in-queue");
}

void mta_tb_host_k(struct mta_tb *tb, const char *key, size_t klen, const host_record *host)
{
    mta_tb_str_k(tb, key, klen, host ? host->name : "");
}

void mta_tb_sockaddr_k(struct mta_tb *tb, const char *key, size_t klen,
                       const struct sockaddr *sa)
{
    if (sa == NULL)
        return;
    /* As mta_tb_ip shows the core's address: the same text for both forms. */
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        mta_tb_ip_k(tb, key, klen, mta_ip_v4(ntohl(in->sin_addr.s_addr)));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        mta_ip ip;
        memcpy(ip.b, in6->sin6_addr.s6_addr, 16);
        mta_tb_ip_k(tb, key, klen, ip);
    } else {
        mta_tb_int_k(tb, key, klen, -1);    /* no other family is made (connection.c) */
    }
}

void mta_tb_skiplist_k(struct mta_tb *tb, const char *key, size_t klen, const Skiplist *sl)
{
    mta_tb_int_k(tb, key, klen, sl ? (int64_t)sl->size : 0);
}

void mta_tb_mail_queue(struct mta_tb *tb, const mail_queue *mq)
{
    if (mq)
        mta_tb_domain(tb, mq->domain);
}

void mta_tb_dc(struct mta_tb *tb, const delivery_construct *dc)
{
    if (!dc)
        return;
    mta_tb_conn(tb, dc->conn_handle);
    if (dc->message)
        mta_tb_ec_message(tb, dc->message);
}

void mta_tb_args_k(struct mta_tb *tb, const char *key, size_t klen,
                   const smtp_client_args *args)
{
    char tmp[512];
    size_t n = smtp_args_render(args, tmp, sizeof tmp);
    struct mta_trace_field *f = add_field(tb, key, klen);
    if (f)
        f->str = keep(tb, tmp, n, &f->len);
}

void mta_tb_accept(struct mta_tb *tb, const accept_construct *ac)
{
    if (!ac)
        return;
    mta_tb_int(tb, "conn", ac->fd);
    mta_tb_ipv4(tb, "addr", ntohl(ac->remote_addr.sin.sin_addr.s_addr));
}

void mta_tb_vctx(struct mta_tb *tb, const validate_context *c)
{
    if (c && c->code != 0)
        mta_tb_int(tb, "code", c->code);
}

void mta_tb_auth_info(struct mta_tb *tb, const struct ec_auth_info *info)
{
    if (info)
        mta_tb_str(tb, "user", info->user);
    if (info)
        mta_tb_int(tb, "secure", info->secure);
}

void mta_tb_emit(struct mta_tb *tb)
{
    if (mta_tracing())
        mta_current->env->trace(mta_current->env, &tb->rec);
}
