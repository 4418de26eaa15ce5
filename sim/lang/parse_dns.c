/*
 * parse_dns - the scenario parser's dns directive and its consistency check
 *
 * DESCRIPTION
 *   "dns latency|timeout|jitter DUR", "dns NAME latency DUR" and the zone
 *   lines: records (MX, A, AAAA, CNAME), failures for every type of a name
 *   (NXDOMAIN, SERVFAIL, TIMEOUT, NODATA) or for one type ("dns NAME MX
 *   SERVFAIL"), each with the clauses
 *
 *     ttl N            the answer's TTL (default 3600)
 *     from DUR         in the zone from epoch + DUR on ...
 *     until DUR        ... and before epoch + DUR
 *     when query OP N [and query OP N]...
 *                      only for the queries of that name and type whose
 *                      number (the trace's "dns query ... n=N") holds
 *
 *   dns_check_contradictions() runs once the whole scenario is read: a
 *   name and type may not have, at one instant and query number, both a
 *   failure and records, or two failures (the answer would be whichever
 *   the resolver happened to look at first).  It reports the later line,
 *   naming the earlier one.
 *
 *   Part of the parser: parse.c describes the language and the files,
 *   parse_internal.h what they share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse_internal.h"

/* At most this many failure lines per name: the contradiction check
 * compares each with every line of its name. */
#define SCN_MAX_DNS_FAILURES_PER_NAME 64

/* The record kinds a zone line may carry, and the failures. */
static const struct { const char *name; enum scn_dns_kind kind; int nargs; const char *usage; }
kinds[] = {
    { "MX", SCN_DNS_MX, 2, "dns NAME MX PREF HOST [ttl N] [from DUR] [until DUR] [when query OP N]" },
    { "A", SCN_DNS_A, 1, "dns NAME A ADDR [ttl N] [from DUR] [until DUR] [when query OP N]" },
    { "AAAA", SCN_DNS_AAAA, 1, "dns NAME AAAA ADDR6 [ttl N] [from DUR] [until DUR] [when query OP N]" },
    { "CNAME", SCN_DNS_CNAME, 1, "dns NAME CNAME TARGET [ttl N] [from DUR] [until DUR] [when query OP N]" },
    { "NXDOMAIN", SCN_DNS_NXDOMAIN, 0, "dns NAME [TYPE] NXDOMAIN [ttl N] [from DUR] [until DUR] [when query OP N]" },
    { "SERVFAIL", SCN_DNS_SERVFAIL, 0, "dns NAME [TYPE] SERVFAIL [ttl N] [from DUR] [until DUR] [when query OP N]" },
    { "TIMEOUT", SCN_DNS_TIMEOUT, 0, "dns NAME [TYPE] TIMEOUT [ttl N] [from DUR] [until DUR] [when query OP N]" },
    { "NODATA", SCN_DNS_NODATA, 0, "dns NAME [TYPE] NODATA [ttl N] [from DUR] [until DUR] [when query OP N]" },
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* is_failure - a line that answers without records */
static int is_failure(enum scn_dns_kind k)
{
    return k == SCN_DNS_NXDOMAIN || k == SCN_DNS_SERVFAIL || k == SCN_DNS_TIMEOUT
           || k == SCN_DNS_NODATA;
}

/* kind_name - a line's kind as written */
static const char *kind_name(enum scn_dns_kind k)
{
    for (int i = 0; i < NKINDS; i++)
        if (kinds[i].kind == k)
            return kinds[i].name;
    return "latency";
}

/* kind_of - the index in kinds[] of the word t, or -1 */
static int kind_of(const struct token *t)
{
    for (int i = 0; i < NKINDS; i++)
        if (is_word(t, kinds[i].name))
            return i;
    return -1;
}

/* dns_setting - dns latency DUR | dns timeout DUR | dns jitter DUR */
static int dns_setting(struct parser *p)
{
    int latency = is_word(&p->tok[1], "latency"), jitter = is_word(&p->tok[1], "jitter");
    if (need_args(p, 3, 3, latency ? "dns latency DURATION" : jitter ? "dns jitter DURATION"
                                   : "dns timeout DURATION") < 0)
        return -1;
    return parse_duration(p, &p->tok[2], latency ? &p->sc->dns_latency
                                         : jitter ? &p->sc->dns_jitter : &p->sc->dns_timeout);
}

/* dns_add - one more dns line */
static int dns_add(struct parser *p, struct scn_dns *d)
{
    struct scn_scenario *sc = p->sc;
    if (sc->ndns == SCN_MAX_DNS) {
        free(d->name);
        free(d->target);
        return fail_tok(p, &p->tok[0], "more than %d dns lines", SCN_MAX_DNS);
    }
    d->pos = here(p, p->tok[0].col);
    grow((void **)&sc->dns, sc->ndns, sizeof *sc->dns);
    sc->dns[sc->ndns++] = *d;
    return 0;
}

/* dns_name_latency - dns NAME latency DUR: how long answers about NAME take */
static int dns_name_latency(struct parser *p)
{
    struct scn_dns d;
    if (need_args(p, 4, 4, "dns NAME latency DURATION") < 0
        || check_domain(p, &p->tok[1], "name") < 0)
        return -1;
    memset(&d, 0, sizeof d);
    d.kind = SCN_DNS_LATENCY;
    d.until = -1;
    scn_qset_of(NULL, 0, &d.queries);
    if (parse_duration(p, &p->tok[3], &d.latency) < 0)
        return -1;
    d.name = xstrdup(p->tok[1].text);
    return dns_add(p, &d);
}

/* dns_clauses - ttl N, from DUR, until DUR, when query ... in tokens [a, ntok) */
static int dns_clauses(struct parser *p, int a, struct scn_dns *d, const char *usage)
{
    int has_ttl = 0, has_from = 0, has_until = 0, from_tok = 0;
    for (int i = a; i < p->ntok;) {
        const struct token *key = &p->tok[i];
        if (is_word(key, "when")) {
            struct scn_cond conds[SCN_MAX_CONDS];
            int n = 0;
            if (parse_conds(p, i + 1, p->ntok, conds, &n, COND_QUERY) < 0)
                return -1;
            scn_qset_of(conds, n, &d->queries);
            if (d->queries.lo > d->queries.hi || !scn_qset_overlap(&d->queries, &d->queries))
                return fail_tok(p, &p->tok[i + 1], "these conditions hold for no query at all");
            break;
        }
        int ttl = is_word(key, "ttl"), from = is_word(key, "from"), until = is_word(key, "until");
        if (!ttl && !from && !until)
            return fail_tok(p, key, "unexpected '%s': expected '%s'", key->text, usage);
        if ((ttl && has_ttl) || (from && has_from) || (until && has_until))
            return fail_tok(p, key, "'%s' given twice", key->text);
        if (i + 1 == p->ntok)
            return fail_at(p, after_last(p), "missing value after '%s': expected '%s'",
                           key->text, usage);
        if (ttl) {
            unsigned long long v;
            if (parse_unsigned(p, &p->tok[i + 1], "ttl", 0, UINT32_MAX, &v) < 0)
                return -1;
            d->ttl = (uint32_t)v;
            has_ttl = 1;
        } else if (from) {
            if (parse_duration(p, &p->tok[i + 1], &d->from) < 0)
                return -1;
            has_from = 1;
            from_tok = i + 1;
        } else {
            if (parse_duration(p, &p->tok[i + 1], &d->until) < 0)
                return -1;
            has_until = 1;
            if (has_from && d->until <= d->from)
                return fail_tok(p, &p->tok[i + 1], "'until' must be later than 'from'");
        }
        i += 2;
    }
    if (has_from && has_until && d->until <= d->from)
        return fail_tok(p, &p->tok[from_tok], "'from' must be earlier than 'until'");
    return 0;
}

/* do_dns - a DNS record or answer, or a resolver setting */
int do_dns(struct parser *p)
{
    if (need_args(p, 3, -1, "dns NAME TYPE ...") < 0)
        return -1;
    if (p->ntok == 3 && (is_word(&p->tok[1], "latency") || is_word(&p->tok[1], "timeout")
                         || is_word(&p->tok[1], "jitter")))
        return dns_setting(p);
    if (is_word(&p->tok[2], "latency"))
        return dns_name_latency(p);
    int k = kind_of(&p->tok[2]);
    if (k < 0) {
        struct suggestion sg;
        char hint[128];
        suggest_begin(&sg, p->tok[2].text);
        for (int i = 0; i < NKINDS; i++)
            suggest_offer(&sg, kinds[i].name);
        return fail_tok(p, &p->tok[2], "unknown DNS type '%s': expected MX, A, AAAA, CNAME, NXDOMAIN, "
                        "SERVFAIL, TIMEOUT, NODATA or latency%s", p->tok[2].text,
                        suggest_hint(&sg, hint, sizeof hint));
    }
    struct scn_dns d;
    memset(&d, 0, sizeof d);
    d.kind = kinds[k].kind;
    d.ttl = 3600;
    d.until = -1;
    scn_qset_of(NULL, 0, &d.queries);
    int base = 3 + kinds[k].nargs;      /* where the clauses may start */
    /* "dns NAME MX SERVFAIL": a failure of the MX queries only. */
    int f = p->ntok > 3 && !is_failure(d.kind) ? kind_of(&p->tok[3]) : -1;
    if (f >= 0 && is_failure(kinds[f].kind)) {
        d.has_qtype = 1;
        d.qtype = d.kind;
        d.kind = kinds[f].kind;
        base = 4;
        k = f;
    }
    if (need_args(p, base, -1, kinds[k].usage) < 0 || check_domain(p, &p->tok[1], "name") < 0)
        return -1;
    if (d.kind == SCN_DNS_MX) {
        unsigned long long pref;
        if (parse_unsigned(p, &p->tok[3], "MX preference", 0, 65535, &pref) < 0)
            return -1;
        d.pref = (uint16_t)pref;
        if (is_word(&p->tok[4], ".")) {
            if (pref != 0)
                return fail_tok(p, &p->tok[3], "a null MX (host '.') has preference 0, not %llu", pref);
        } else if (check_domain(p, &p->tok[4], "MX host") < 0) {
            return -1;
        }
    } else if (d.kind == SCN_DNS_A) {
        if (parse_ipv4(p, &p->tok[3], &d.addr) < 0)
            return -1;
    } else if (d.kind == SCN_DNS_AAAA) {
        /* RFC 3596 2.2: an AAAA record holds an IPv6 address, nothing else. */
        mta_ip v4;
        if (!p->tok[3].quoted && strchr(p->tok[3].text, ':') == NULL
            && mta_ip_parse(p->tok[3].text, &v4) == 0)
            return fail_tok(p, &p->tok[3], "an AAAA record holds an IPv6 address, not '%s' "
                            "(use an A record)", p->tok[3].text);
        if (parse_ipv6(p, &p->tok[3], d.addr6) < 0)
            return -1;
    } else if (d.kind == SCN_DNS_CNAME) {
        if (check_domain(p, &p->tok[3], "CNAME target") < 0)
            return -1;
    }
    if (dns_clauses(p, base, &d, kinds[k].usage) < 0)
        return -1;
    d.name = xstrdup(p->tok[1].text);
    if (d.kind == SCN_DNS_MX)
        d.target = xstrdup(p->tok[4].text);
    else if (d.kind == SCN_DNS_CNAME)
        d.target = xstrdup(p->tok[3].text);
    return dns_add(p, &d);
}

/* ---- contradictions ---------------------------------------------------- */

/* same_name - names compare case-insensitively, one trailing dot ignored */
static int same_name(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 1 && a[la - 1] == '.')
        la--;
    if (lb > 1 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* name_order - qsort order of line indexes: by name (folded), then file order */
static const struct scn_dns *sort_lines;
static int name_order(const void *x, const void *y)
{
    const struct scn_dns *a = &sort_lines[*(const int *)x], *b = &sort_lines[*(const int *)y];
    size_t la = strlen(a->name), lb = strlen(b->name);
    if (la > 1 && a->name[la - 1] == '.')
        la--;
    if (lb > 1 && b->name[lb - 1] == '.')
        lb--;
    size_t n = la < lb ? la : lb;
    int c = strncasecmp(a->name, b->name, n);
    if (c != 0)
        return c;
    if (la != lb)
        return la < lb ? -1 : 1;
    return *(const int *)x - *(const int *)y;
}

/* answers_type - does a record line answer queries of type t (a record kind)?
 * A CNAME answers every type but MX: the resolver chases it for A (and
 * any address type). */
static int answers_type(const struct scn_dns *r, enum scn_dns_kind t)
{
    if (r->kind == SCN_DNS_CNAME)
        return t != SCN_DNS_MX;
    return r->kind == t;
}

/* clash - do two lines of one name give two answers to one query? */
static int clash(const struct scn_dns *f, const struct scn_dns *o)
{
    if (!is_failure(f->kind) || o->kind == SCN_DNS_LATENCY)
        return 0;
    if (is_failure(o->kind)) {
        if (f->has_qtype && o->has_qtype && f->qtype != o->qtype)
            return 0;
    } else if (f->has_qtype && !answers_type(o, f->qtype)) {
        return 0;
    }
    mta_usec_t fu = f->until < 0 ? INT64_MAX : f->until, ou = o->until < 0 ? INT64_MAX : o->until;
    if (f->from >= ou || o->from >= fu)
        return 0;
    return scn_qset_overlap(&f->queries, &o->queries);
}

/* dns_check_contradictions - no two answers for one name, type and instant */
int dns_check_contradictions(struct parser *p)
{
    struct scn_scenario *sc = p->sc;
    if (sc->ndns < 2)
        return 0;
    int *idx = xmalloc((size_t)sc->ndns * sizeof *idx);
    for (int i = 0; i < sc->ndns; i++)
        idx[i] = i;
    sort_lines = sc->dns;
    qsort(idx, (size_t)sc->ndns, sizeof *idx, name_order);
    int rc = 0;
    for (int g = 0; g < sc->ndns && rc == 0;) {
        int e = g + 1, nfail = 0;
        while (e < sc->ndns && same_name(sc->dns[idx[g]].name, sc->dns[idx[e]].name))
            e++;
        for (int i = g; i < e && rc == 0; i++) {
            const struct scn_dns *f = &sc->dns[idx[i]];
            if (!is_failure(f->kind))
                continue;
            if (++nfail > SCN_MAX_DNS_FAILURES_PER_NAME) {
                rc = fail_pos(p, f->pos, "more than %d failure lines for %s",
                              SCN_MAX_DNS_FAILURES_PER_NAME, f->name);
                break;
            }
            for (int j = g; j < e && rc == 0; j++) {
                const struct scn_dns *o = &sc->dns[idx[j]];
                if (j == i || (is_failure(o->kind) && idx[j] < idx[i]) || !clash(f, o))
                    continue;
                /* Report the later of the two lines. */
                const struct scn_dns *later = idx[j] > idx[i] ? o : f;
                const struct scn_dns *earlier = later == o ? f : o;
                const char *type = f->has_qtype ? kind_name(f->qtype)
                                 : o->has_qtype ? kind_name(o->qtype)
                                 : is_failure(o->kind) ? NULL : kind_name(o->kind);
                char what[32];
                snprintf(what, sizeof what, "%s%s", type ? type : "all", " queries");
                rc = fail_pos(p, later->pos, "contradicts %s:%d: %s answers %s with %s and with "
                              "%s at the same time; separate them with from/until or 'when "
                              "query'", earlier->pos.file, earlier->pos.line, f->name, what,
                              kind_name(f->kind),
                              is_failure(o->kind) ? kind_name(o->kind) : "records");
            }
        }
        g = e;
    }
    free(idx);
    return rc;
}
