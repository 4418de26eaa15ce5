/*
 * domain.h - what plugins see of domains, their MX hosts and bindings
 *
 * DESCRIPTION
 *   A domain_record exists for every destination domain the core has mail
 *   for.  Its first members are those of Momentum 3's "domain_record" page,
 *   with the documented types; mtasim's own members follow.  The core keeps
 *   its private state in a larger structure that embeds this one first.
 *
 *   Documented members, as mtasim fills them:
 *     domain        the domain name, lower case
 *     expiry        when the MX answer expires, seconds since the epoch
 *                   (virtual time); 0 while the domain is not resolved
 *     equeue        the domain's mail queue (mail_queue.h): its active
 *                   queues per binding as Skiplists
 *     last_delivery the last successful delivery; 0 = never
 *     mxlist        mxcnt pointers to the MX hosts, in the order they
 *                   are tried (preference; equal preferences in the order
 *                   the run's seed gave them)
 *     deliveries, attempts, transients, failures
 *                   recipients delivered, connection attempts, transient
 *                   and permanent recipient failures
 *     mxcnt         entries in mxlist
 *     recycled      always 0 (mtasim never recycles a domain record)
 *     dns_failures  failed lookups in a row (0 after an answer; stops at 255)
 *   The page also lists referencecnt and type, whose types it does not
 *   describe; mtasim has neither.
 *
 *   host_record and mx_record: the documentation names them (a
 *   connection_handle's host, veto_host_connection's host, a domain's
 *   mxlist) but does not describe their members.  In mtasim both are
 *   struct mx_host: the host name, its MX preference and the addresses
 *   its A and AAAA lookups returned (mta_ip, mta_ip.h: an IPv4 address
 *   held IPv4-mapped).  A pointer handed to veto_host_connection is
 *   valid during the call; a connection_handle's host lives as long as
 *   the connection.
 */
#ifndef MTASIM_DOMAIN_H
#define MTASIM_DOMAIN_H

#include <stdint.h>
#include <time.h>
#include <sys/time.h>

#include "mta_ip.h"
#include "momentum_types.h"
#include "mail_queue.h"

/* One MX host, with the addresses its address lookup returned (A for an
 * IPv4 binding, AAAA for an IPv6 one: see docs/queue.md). */
#define MTA_MX_MAX_ADDRS 8
struct mx_host {
    char *name;
    int preference;
    int naddrs;
    mta_ip addrs[MTA_MX_MAX_ADDRS];
};

struct _domain_record {
    /* Momentum 3, "domain_record" */
    char *domain;
    uint64_t expiry;
    mail_queue equeue;
    struct timeval last_delivery;
    mx_record **mxlist;
    uint32_t deliveries;
    uint32_t attempts;
    uint32_t transients;
    uint32_t failures;
    int mxcnt;
    unsigned int recycled:1;
    uint8_t dns_failures;
    /* mtasim's own */
    struct mx_host *mxs;          /* the mxcnt hosts themselves (mxlist points here) */
    unsigned long active_count;   /* messages in the active queues, all bindings */
    unsigned long delayed_count;  /* messages waiting for their next attempt */
};

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
