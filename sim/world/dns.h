/*
 * dns - the simulated resolver and its zone data
 *
 * SYNOPSIS
 *   struct sim_dns *d = sim_dns_create(sched, latency, timeout);
 *   sim_dns_add(d, &rec);
 *   sim_dns_query(d, "example.com", MTA_DNS_MX, cb, arg);
 *   sim_dns_query_count(d, "example.com", MTA_DNS_MX);
 *   sim_dns_destroy(d);
 *
 * DESCRIPTION
 *   Answers come back through the scheduler after the resolver latency,
 *   never synchronously.  The latency is per name when one was set for
 *   the name asked (sim_dns_set_name_latency), else the resolver's; with
 *   jitter J (sim_dns_set_jitter) each answer takes a draw in [0, J]
 *   more, from the stream (seed, "dns NAME TYPE", 0) of the name and type
 *   asked, so queries for other names never change it.  Names compare case-insensitively, a trailing dot
 *   ignored.  For a query of (name, type):
 *     - a failure set for (name, type) or for (name, any type) wins:
 *       NXDOMAIN and SERVFAIL answer after the latency, TIMEOUT after the
 *       resolver timeout, NOERROR (set as a failure) is an empty answer
 *       (NODATA: the name exists, no records of the type);
 *     - otherwise the records of that type, in the order they were added
 *       (at most MTA_DNS_MAX_RR);
 *     - an A or AAAA query for a name that has only a CNAME answers with
 *       the CNAME record and the target's records of the type;
 *     - no record of that type but some of another: NOERROR, count 0;
 *     - no record of any type: NXDOMAIN.
 *   A null MX is an MX record with preference 0 and target ".".  A and
 *   AAAA records are separate types (RFC 3596): an A query for a name
 *   with only AAAA records is NODATA (NOERROR, count 0), and the reverse.
 */
#ifndef MTASIM_SIM_DNS_H
#define MTASIM_SIM_DNS_H

#include <stdint.h>

#include "mtasim_env.h"
#include "sim_sched.h"

struct sim_dns;

struct sim_dns_record {
    const char *name;
    enum mta_dns_type type;
    uint16_t pref;          /* MX */
    const char *target;     /* MX exchange, CNAME target */
    uint32_t addr;          /* A, host byte order */
    uint8_t addr6[16];      /* AAAA, network byte order */
    uint32_t ttl;           /* seconds */
};

struct sim_dns *sim_dns_create(struct sim_sched *s, sim_usec latency, sim_usec timeout);
void sim_dns_destroy(struct sim_dns *d);
void sim_dns_add(struct sim_dns *d, const struct sim_dns_record *rec);
/* type 0 = every type.  rcode is NXDOMAIN, SERVFAIL, TIMEOUT or NOERROR (NODATA). */
void sim_dns_fail(struct sim_dns *d, const char *name, int type, enum mta_dns_rcode rcode);
void sim_dns_query(struct sim_dns *d, const char *name, enum mta_dns_type type,
                   mta_dns_cb cb, void *arg);
/* How long answers for name take (exactly that name, any type). */
void sim_dns_set_name_latency(struct sim_dns *d, const char *name, sim_usec latency);
void sim_dns_set_jitter(struct sim_dns *d, sim_usec jitter, uint64_t seed);
unsigned long sim_dns_query_count(const struct sim_dns *d, const char *name,
                                  enum mta_dns_type type);

#endif
