/*
 * liveness - what no real MTA may do, even when every expectation holds
 *
 * See liveness.h.  The storm check runs online (simenv tells it about
 * connects and writes); the duplicate check reads the finished trace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "idxmap.h"
#include "liveness.h"

/* xrealloc - out of memory is fatal, as everywhere in the simulator */
static void *xrealloc(void *p, size_t n, size_t size)
{
    void *q = realloc(p, (n ? n : 1) * size);
    if (q == NULL) {
        fprintf(stderr, "mtasim: out of memory in liveness\n");
        abort();
    }
    return q;
}

/* ---- storms -------------------------------------------------------------- */

/* The attempts to one address since its last transaction, a ring of times. */
struct storm_host {
    mta_ip addr;
    int n, head;            /* times in the ring; where the next goes */
    mta_usec_t *t;          /* count entries */
};

struct liveness {
    struct sim_sched *sched;
    int count;
    mta_usec_t window;
    struct storm_host *hosts;
    int nhosts, hosts_cap;
    struct idxmap host_index;   /* mta_ip_key(addr) -> hosts[]: no scan per connect */
    mta_ip *fd_addr;      /* per descriptor: the address it connects to */
    int fd_cap;
    char *storm;            /* the first storm's description, or NULL */
};

struct liveness *liveness_create(struct sim_sched *s, int count, mta_usec_t window)
{
    struct liveness *lv = calloc(1, sizeof *lv);
    if (lv == NULL)
        return NULL;
    lv->sched = s;
    lv->count = count;
    lv->window = window;
    idxmap_init(&lv->host_index);
    return lv;
}

void liveness_destroy(struct liveness *lv)
{
    if (lv == NULL)
        return;
    for (int i = 0; i < lv->nhosts; i++)
        free(lv->hosts[i].t);
    free(lv->hosts);
    idxmap_free(&lv->host_index);
    free(lv->fd_addr);
    free(lv->storm);
    free(lv);
}

/* host_of - the record of addr, created on first use (creation order) */
static struct storm_host *host_of(struct liveness *lv, mta_ip addr)
{
    uint64_t key = mta_ip_key(addr);
    size_t pos;
    for (uint32_t i = idxmap_first(&lv->host_index, key, &pos); i != IDXMAP_NONE;
         i = idxmap_next(&lv->host_index, key, &pos))
        if (mta_ip_eq(lv->hosts[i].addr, addr))
            return &lv->hosts[i];
    if (lv->nhosts == lv->hosts_cap) {
        lv->hosts_cap = lv->hosts_cap ? 2 * lv->hosts_cap : 8;
        lv->hosts = xrealloc(lv->hosts, (size_t)lv->hosts_cap, sizeof *lv->hosts);
    }
    idxmap_put(&lv->host_index, key, (uint32_t)lv->nhosts);
    struct storm_host *h = &lv->hosts[lv->nhosts++];
    memset(h, 0, sizeof *h);
    h->addr = addr;
    h->t = xrealloc(NULL, (size_t)lv->count, sizeof *h->t);
    return h;
}

/* storm_found - describe the storm, and stop the run */
static void storm_found(struct liveness *lv, const struct storm_host *h)
{
    char a[MTA_IP_TEXT], w[32];
    mta_ip_format(h->addr, a);
    mta_usec_t win = lv->window;
    if (win % (60LL * 1000000) == 0)
        snprintf(w, sizeof w, "%lldm", (long long)(win / (60LL * 1000000)));
    else if (win % 1000000 == 0)
        snprintf(w, sizeof w, "%llds", (long long)(win / 1000000));
    else
        snprintf(w, sizeof w, "%lldus", (long long)win);
    char buf[400];
    snprintf(buf, sizeof buf, "storm: %d connection attempts to %s within %s with no transaction "
             "started there (liveness storm %d/%s); a client must delay retrying a host that fails "
             "(RFC 5321 4.5.4.1)", lv->count + 1, a, w, lv->count, w);
    lv->storm = strdup(buf);
    sim_sched_stop(lv->sched);
}

/* liveness_connect - one more attempt to dst */
void liveness_connect(struct liveness *lv, int fd, mta_ip dst)
{
    if (lv == NULL)
        return;
    if (fd >= 0) {
        if (fd >= lv->fd_cap) {
            int cap = lv->fd_cap ? lv->fd_cap : 64;
            while (cap <= fd)
                cap *= 2;
            lv->fd_addr = xrealloc(lv->fd_addr, (size_t)cap, sizeof *lv->fd_addr);
            lv->fd_cap = cap;
        }
        lv->fd_addr[fd] = dst;
    }
    if (lv->count <= 0 || lv->storm != NULL)
        return;
    mta_usec_t now = sim_sched_now(lv->sched);
    struct storm_host *h = host_of(lv, dst);
    /* Forget the attempts that left the window (the oldest first). */
    while (h->n > 0) {
        int oldest = (h->head - h->n + lv->count) % lv->count;
        if (h->t[oldest] > now - lv->window)
            break;
        h->n--;
    }
    if (h->n == lv->count) {
        storm_found(lv, h);
        return;
    }
    h->t[h->head] = now;
    h->head = (h->head + 1) % lv->count;
    h->n++;
}

/* liveness_write - a MAIL command on fd is progress for its address */
void liveness_write(struct liveness *lv, int fd, const void *data, size_t len)
{
    if (lv == NULL || lv->count <= 0 || fd < 0 || fd >= lv->fd_cap || len < 5 ||
        strncasecmp(data, "MAIL ", 5) != 0)
        return;
    host_of(lv, lv->fd_addr[fd])->n = 0;
}

const char *liveness_storm(const struct liveness *lv)
{
    return lv ? lv->storm : NULL;
}

/* ---- duplicates ---------------------------------------------------------- */

enum cmd { CMD_OTHER, CMD_MAIL, CMD_RCPT, CMD_DATA, CMD_DOT, CMD_DOT_EMPTY };

struct expected {
    enum cmd cmd;
    const char *rcpt;       /* CMD_RCPT: the address (in the trace's arena) */
};

/* The client's side of one connection, replayed. */
struct dialogue {
    int open;
    unsigned long msg;      /* the message of the current transaction, 0 = none */
    struct expected *q;     /* commands awaiting replies, oldest first */
    int qn, qhead, qcap;
    const char **accepted;  /* recipients with a 2xx to RCPT in this transaction */
    int nacc, acc_cap;
    int bdat;               /* a BDAT line was sent: its data is no command */
};

/* A delivered recipient: (message, address), when and where first. */
struct delivery {
    unsigned long msg;
    const char *rcpt;
    mta_usec_t at;
    int conn;
    int count;
};

struct liveness_dups {
    struct dialogue *d;
    int nd;
    struct delivery *dl;    /* open addressing */
    size_t dl_cap, dl_n;
    mta_usec_t epoch;
    char *found[LIVENESS_MAX_REPORTS];  /* reported by liveness_dups_finish */
    int reported, more;
    /* RCPT addresses are cut out of "RCPT TO:<a>" lines; they live here. */
    char **cut;
    size_t ncut, cut_cap;
};

static struct dialogue *dialogue_of(struct liveness_dups *x, int fd)
{
    if (fd < 0)
        return NULL;
    if (fd >= x->nd) {
        int n = x->nd ? x->nd : 16;
        while (n <= fd)
            n *= 2;
        x->d = xrealloc(x->d, (size_t)n, sizeof *x->d);
        memset(x->d + x->nd, 0, (size_t)(n - x->nd) * sizeof *x->d);
        x->nd = n;
    }
    return &x->d[fd];
}

static void push(struct dialogue *d, enum cmd c, const char *rcpt)
{
    if (d->qn == d->qcap) {
        int cap = d->qcap ? 2 * d->qcap : 16;
        struct expected *q = xrealloc(NULL, (size_t)cap, sizeof *q);
        for (int i = 0; i < d->qn; i++)
            q[i] = d->q[(d->qhead + i) % d->qcap];
        free(d->q);
        d->q = q;
        d->qcap = cap;
        d->qhead = 0;
    }
    d->q[(d->qhead + d->qn) % d->qcap] = (struct expected){ c, rcpt };
    d->qn++;
}

static void reset(struct dialogue *d)
{
    d->qn = d->qhead = 0;
    d->nacc = 0;
    d->msg = 0;
    d->bdat = 0;
}

static size_t dl_hash(unsigned long msg, const char *rcpt, size_t cap)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)msg;
    for (const char *p = rcpt; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (size_t)h & (cap - 1);
}

/* delivered - recipient rcpt of msg was delivered at t on conn */
static void delivered(struct liveness_dups *x, unsigned long msg, const char *rcpt, mta_usec_t t, int conn)
{
    if (2 * (x->dl_n + 1) > x->dl_cap) {
        size_t cap = x->dl_cap ? 2 * x->dl_cap : 64;
        struct delivery *n = calloc(cap, sizeof *n);
        if (n == NULL)
            abort();
        for (size_t i = 0; i < x->dl_cap; i++)
            if (x->dl[i].rcpt) {
                size_t h = dl_hash(x->dl[i].msg, x->dl[i].rcpt, cap);
                while (n[h].rcpt)
                    h = (h + 1) & (cap - 1);
                n[h] = x->dl[i];
            }
        free(x->dl);
        x->dl = n;
        x->dl_cap = cap;
    }
    size_t h = dl_hash(msg, rcpt, x->dl_cap);
    while (x->dl[h].rcpt && !(x->dl[h].msg == msg && strcmp(x->dl[h].rcpt, rcpt) == 0))
        h = (h + 1) & (x->dl_cap - 1);
    struct delivery *e = &x->dl[h];
    if (e->rcpt == NULL) {
        *e = (struct delivery){ msg, rcpt, t, conn, 0 };
        x->dl_n++;
    }
    if (++e->count != 2)
        return;
    if (x->reported >= LIVENESS_MAX_REPORTS) {
        x->more++;
        return;
    }
    char t1[32], t2[32], buf[700];
    snprintf(buf, sizeof buf, "duplicate: message %lu to <%.300s> was delivered twice, its "
             "end-of-data reply received both times (conn %d at %s, conn %d at %s)",
             msg, rcpt, e->conn, trace_time_str(e->at - x->epoch, t1), conn,
             trace_time_str(t - x->epoch, t2));
    x->found[x->reported] = strdup(buf);
    if (x->found[x->reported] == NULL)
        abort();
    x->reported++;
}

/* command_of - what a line the client sent asks for */
static enum cmd command_of(const char *line, const char **rcpt, size_t *rcpt_len)
{
    if (strncasecmp(line, "MAIL ", 5) == 0)
        return CMD_MAIL;
    if (strncasecmp(line, "RCPT TO:<", 9) == 0) {
        *rcpt = line + 9;
        *rcpt_len = strcspn(*rcpt, ">");
        return CMD_RCPT;
    }
    if (strcasecmp(line, "DATA") == 0)
        return CMD_DATA;
    if (strcmp(line, ".") == 0)
        return CMD_DOT_EMPTY;
    if (strncasecmp(line, "BDAT ", 5) == 0)
        return CMD_DOT;     /* "BDAT n LAST": its reply ends the transaction */
    return CMD_OTHER;
}

/* on_reply - a complete reply with code on d (conn fd) at t */
static void on_reply(struct liveness_dups *x, struct dialogue *d, int fd, int code, mta_usec_t t)
{
    if (d->qn == 0)
        return;
    struct expected e = d->q[d->qhead];
    d->qhead = (d->qhead + 1) % d->qcap;
    d->qn--;
    int ok = code >= 200 && code < 300;
    switch (e.cmd) {
    case CMD_MAIL:
        d->nacc = 0;
        break;
    case CMD_RCPT:
        if (ok) {
            if (d->nacc == d->acc_cap) {
                d->acc_cap = d->acc_cap ? 2 * d->acc_cap : 16;
                d->accepted = xrealloc(d->accepted, (size_t)d->acc_cap, sizeof *d->accepted);
            }
            d->accepted[d->nacc++] = e.rcpt;
        }
        break;
    case CMD_DOT:
        if (ok && d->msg != 0)
            for (int i = 0; i < d->nacc; i++)
                delivered(x, d->msg, d->accepted[i], t, fd);
        d->nacc = 0;
        break;
    case CMD_DOT_EMPTY:
        d->nacc = 0;
        break;
    case CMD_DATA:
    case CMD_OTHER:
        break;
    }
}

/* liveness_dups_create - an empty replay for a run starting at epoch */
struct liveness_dups *liveness_dups_create(mta_usec_t epoch)
{
    struct liveness_dups *x = calloc(1, sizeof *x);
    if (x == NULL)
        abort();
    x->epoch = epoch;
    return x;
}

/* liveness_dups_feed - one more record of the trace, in order */
void liveness_dups_feed(struct liveness_dups *x, const struct trace_rec *r)
{
    /* Most records are hook calls: one byte tells them from the three
     * kinds read here before any string compare (performance.md). */
    if (r->kind[0] != 'c' && r->kind[0] != 's' && r->kind[0] != 'q')
        return;
    int is_conn = strcmp(r->kind, "conn") == 0, is_smtp = strcmp(r->kind, "smtp") == 0;
    int is_attempt = strcmp(r->kind, "queue") == 0 && strcmp(r->name, "attempt") == 0;
    if (!is_conn && !is_smtp && !is_attempt)
        return;
    const struct trace_field *ff = trace_rec_field(r, is_conn ? "fd" : "conn");
    if (ff == NULL || !ff->has_num)
        return;
    int fd = (int)ff->num;
    struct dialogue *d = dialogue_of(x, fd);
    if (d == NULL)
        return;
    if (is_conn) {
        if (strcmp(r->name, "open") == 0) {
            reset(d);
            d->open = 1;
            push(d, CMD_OTHER, NULL);       /* the banner */
        } else if (strcmp(r->name, "close") == 0) {
            reset(d);
            d->open = 0;
        }
        return;
    }
    if (!d->open)
        return;
    if (is_attempt) {
        const struct trace_field *m = trace_rec_field(r, "msg");
        d->msg = m && m->has_num ? (unsigned long)m->num : 0;
        d->nacc = 0;
        return;
    }
    const struct trace_field *line = trace_rec_field(r, "line");
    if (strcmp(r->name, "send") == 0) {
        if (line == NULL) {             /* the message data */
            if (d->bdat)
                d->bdat = 0;
            else
                push(d, CMD_DOT, NULL);
            return;
        }
        const char *rcpt = NULL;
        size_t rlen = 0;
        enum cmd c = command_of(line->str, &rcpt, &rlen);
        if (c == CMD_RCPT) {
            if (x->ncut == x->cut_cap) {
                x->cut_cap = x->cut_cap ? 2 * x->cut_cap : 64;
                x->cut = xrealloc(x->cut, x->cut_cap, sizeof *x->cut);
            }
            x->cut[x->ncut] = strndup(rcpt, rlen);
            if (x->cut[x->ncut] == NULL)
                abort();
            rcpt = x->cut[x->ncut++];
        }
        if (c == CMD_DOT && strncasecmp(line->str, "BDAT ", 5) == 0)
            d->bdat = 1;
        push(d, c, rcpt);
    } else if (strcmp(r->name, "recv") == 0 && line != NULL) {
        const char *s = line->str;
        if (line->len >= 4 && s[3] == '-')
            return;                     /* a reply goes on */
        int code = line->len >= 3 ? atoi(s) : 0;
        on_reply(x, d, fd, code, r->time);
    }
}

/* liveness_dups_finish - report what the replay found; frees x */
void liveness_dups_finish(struct liveness_dups *x, void (*report)(void *arg, const char *text),
                          void *arg)
{
    for (int i = 0; i < x->reported; i++) {
        report(arg, x->found[i]);
        free(x->found[i]);
    }
    if (x->more > 0) {
        char buf[120];
        snprintf(buf, sizeof buf, "duplicate: %d more duplicate deliveries not listed", x->more);
        report(arg, buf);
    }
    for (int i = 0; i < x->nd; i++) {
        free(x->d[i].q);
        free(x->d[i].accepted);
    }
    free(x->d);
    free(x->dl);
    for (size_t i = 0; i < x->ncut; i++)
        free(x->cut[i]);
    free(x->cut);
    free(x);
}

/* liveness_duplicates - replay the client's dialogues; see liveness.h */
void liveness_duplicates(const struct trace_store *ts,
                         void (*report)(void *arg, const char *text), void *arg)
{
    struct liveness_dups *x = liveness_dups_create(trace_store_epoch(ts));
    size_t n = trace_store_count(ts);
    for (size_t i = 0; i < n; i++)
        liveness_dups_feed(x, trace_store_get(ts, i));
    liveness_dups_finish(x, report, arg);
}
