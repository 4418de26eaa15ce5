/*
 * world_setup - the scenario's network and DNS, loaded into the simulation
 *
 * SYNOPSIS
 *   See world_setup.h.
 *
 * DESCRIPTION
 *   A thin translation from the parsed scenario (struct scn_*) to the
 *   simulation's own types, kept out of the runner so that the runner
 *   only orders the steps.  The parser has checked every value already.
 *
 * DIAGNOSTICS
 *   A link declared twice (which the parser rejects) prints
 *   "world_setup_network: ..." and aborts.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "world_setup.h"

/* world_setup_network - seed, descriptor limit and links */
void world_setup_network(struct sim_net *n, const struct scn_scenario *sc, uint64_t seed)
{
    int i;

    sim_net_set_seed(n, seed);
    assert(sc->max_fds >= 0);
    if (sc->max_fds > 0)
        sim_net_set_max_open(n, sc->max_fds);
    assert(sc->mta_sndbuf >= 0 && sc->mta_rcvbuf >= 0);
    sim_net_set_buffers(n, (size_t) sc->mta_sndbuf, (size_t) sc->mta_rcvbuf);
    for (i = 0; i < sc->nlinks; i++) {
        const struct scn_link *sl = &sc->links[i];
        struct sim_link l;

        l.src = sl->src;
        l.dst = sl->dst;
        l.latency = sl->latency;
        l.jitter = sl->jitter;
        l.bandwidth = sl->bandwidth;
        l.segment = sl->segment < 0 ? SIZE_MAX : (size_t) sl->segment;
        l.loss_ppm = sl->loss_ppm < 0 ? UINT32_MAX : (uint32_t) sl->loss_ppm;
        if (sim_net_add_link(n, &l) < 0) {
            fprintf(stderr, "world_setup_network: link declared twice\n");
            abort();
        }
    }
}

/* dns_rcode_of - the answer a failure line stands for */
static enum mta_dns_rcode dns_rcode_of(enum scn_dns_kind k)
{
    switch (k) {
    case SCN_DNS_NXDOMAIN: return MTA_DNS_NXDOMAIN;
    case SCN_DNS_SERVFAIL: return MTA_DNS_SERVFAIL;
    case SCN_DNS_TIMEOUT: return MTA_DNS_TIMEOUT;
    case SCN_DNS_NODATA: return MTA_DNS_NOERROR;     /* an empty answer */
    default: break;
    }
    assert(!"dns_rcode_of: not a failure line");
    return MTA_DNS_SERVFAIL;
}

/* dns_type_of - the query type a record kind answers */
static enum mta_dns_type dns_type_of(enum scn_dns_kind k)
{
    switch (k) {
    case SCN_DNS_MX: return MTA_DNS_MX;
    case SCN_DNS_A: return MTA_DNS_A;
    case SCN_DNS_CNAME: return MTA_DNS_CNAME;
    case SCN_DNS_AAAA: return MTA_DNS_AAAA;
    default: break;
    }
    assert(!"dns_type_of: not a record kind");
    return MTA_DNS_A;
}

/* world_setup_dns - records, failures, per-name latencies and jitter */
void world_setup_dns(struct sim_dns *d, const struct scn_scenario *sc, uint64_t seed)
{
    int i;

    sim_dns_set_jitter(d, sc->dns_jitter, seed);
    for (i = 0; i < sc->ndns; i++) {
        const struct scn_dns *sd = &sc->dns[i];
        struct sim_dns_record rec;
        struct sim_dns_window when;

        /* The window in absolute virtual time: "from 10m" is epoch + 10m. */
        when.from = sc->epoch + sd->from;
        when.until = sd->until < 0 ? -1 : sc->epoch + sd->until;
        when.queries = sd->queries;
        switch (sd->kind) {
        case SCN_DNS_NXDOMAIN:
        case SCN_DNS_SERVFAIL:
        case SCN_DNS_TIMEOUT:
        case SCN_DNS_NODATA:
            sim_dns_fail_when(d, sd->name, sd->has_qtype ? (int) dns_type_of(sd->qtype) : 0,
                              dns_rcode_of(sd->kind), &when);
            continue;
        case SCN_DNS_LATENCY:
            sim_dns_set_name_latency(d, sd->name, sd->latency);
            continue;
        case SCN_DNS_MX:
        case SCN_DNS_A:
        case SCN_DNS_CNAME:
        case SCN_DNS_AAAA:
            break;
        }
        rec.name = sd->name;
        rec.type = dns_type_of(sd->kind);
        rec.pref = sd->pref;
        rec.target = sd->target;
        rec.addr = sd->addr;
        memcpy(rec.addr6, sd->addr6, sizeof rec.addr6);
        rec.ttl = sd->ttl;
        rec.when = &when;
        sim_dns_add(d, &rec);
    }
}
