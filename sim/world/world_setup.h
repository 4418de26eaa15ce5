/*
 * world_setup - the scenario's network and DNS, loaded into the simulation
 *
 * SYNOPSIS
 *   struct sim_net *n = sim_net_create(sched);
 *   struct sim_dns *d = sim_dns_create(sched, sc->dns_latency, sc->dns_timeout);
 *   world_setup_network(n, sc, seed);      before any remote is created
 *   world_setup_dns(d, sc, seed);          before the first query
 *
 * DESCRIPTION
 *   world_setup_network() gives the network the run's seed (every random
 *   stream of the world derives from it), the MTA's descriptor limit
 *   ("network max_fds") and the links ("network link").
 *   world_setup_dns() loads the records, the failure answers (NXDOMAIN,
 *   SERVFAIL, TIMEOUT, NODATA), the per-name latencies and the jitter,
 *   in file order.
 *
 *   Both take everything from the scenario and the seed: the same inputs
 *   give the same world.
 */
#ifndef MTASIM_SIM_WORLD_SETUP_H
#define MTASIM_SIM_WORLD_SETUP_H

#include <stdint.h>

#include "dns.h"
#include "net.h"
#include "scenario.h"

void world_setup_network(struct sim_net *n, const struct scn_scenario *sc, uint64_t seed);
void world_setup_dns(struct sim_dns *d, const struct scn_scenario *sc, uint64_t seed);

#endif
