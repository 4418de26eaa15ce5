/*
 * domain.h - what plugins see of domains and bindings
 *
 * A domain_record exists for every destination domain the core has mail
 * for.  The public fields are the documented ones; the core keeps its
 * private state in a larger structure that embeds this one first.
 */
#ifndef MTASIM_DOMAIN_H
#define MTASIM_DOMAIN_H

#include <stdint.h>
#include <time.h>
#include <sys/time.h>

#include "mta_ip.h"

/* One MX host, with the addresses its address lookup returned (A for an
 * IPv4 binding, AAAA for an IPv6 one: see docs/queue.md). */
#define MTA_MX_MAX_ADDRS 8
struct mx_host {
    char *name;
    int preference;
    int naddrs;
    mta_ip addrs[MTA_MX_MAX_ADDRS];
};

typedef struct domain_record {
    char *domain;                 /* the domain name, lower case */
    time_t expiry;                /* when the MX answer expires; 0 = not resolved */
    struct timeval last_delivery; /* last successful delivery; 0 = never */
    int mx_count;                 /* entries in mxs */
    struct mx_host *mxs;          /* MX hosts in the order they are tried */
    unsigned long deliveries;     /* recipients delivered */
    unsigned long attempts;       /* connection attempts */
    unsigned long transients;     /* transient failures */
    unsigned long failures;       /* permanent failures */
    unsigned long dns_failures;   /* failed lookups */
    unsigned long active_count;   /* messages in the active queues, all bindings */
    unsigned long delayed_count;  /* messages waiting for their next attempt */
} domain_record;

/* A named outbound identity.  Slot 0 is the implicit "default" binding. */
typedef struct binding {
    int slot;
    const char *name;
    mta_ip source_addr;           /* IPv4 (mapped) or IPv6; its family picks A or AAAA */
    const char *ehlo_name;
} binding;

/* The binding in slot, or NULL. */
const binding *binding_by_slot(int slot);

#endif
