/*
 * client - a scripted SMTP client that talks to the MTA's inbound server
 *
 * SYNOPSIS
 *   struct sim_client *c = sim_client_create(sched, net, &scenario->clients[i], i + 1,
 *                                            listen_addr, listen_port, trace, trace_arg);
 *   ... sim_sched_run() ...
 *   sim_client_destroy(c);
 *
 * DESCRIPTION
 *   At epoch + script->at the client connects from its address to the
 *   MTA's listener (sim_net_connect_peer) and runs its steps in order:
 *
 *     SEND        write the bytes (one write)
 *     EXPECT      wait for the next complete reply (multi-line aware);
 *                 a different code than wanted is traced, and the script
 *                 goes on: the scenario's expectations judge
 *     DELAY       wait
 *     DISCONNECT  close (FIN); RESET abort (RST); the script ends there
 *
 *   Replies that arrive while no EXPECT waits are read and dropped (a
 *   script that pipelines does not have to wait for each).  When the
 *   steps are done the client keeps the connection until the server
 *   closes it (the server's timeout ends a session nobody ends).  A FIN
 *   or RST from the server ends the script at once.
 *
 *   Trace (kind "client", client=ADDR n=N, N the client's number in the
 *   scenario from 1): connect; unexpected want=CODE got="REPLY"; done (the
 *   last step ran); end reason=eof|reset-by-server|refused|disconnect|
 *   reset|overflow.
 *
 *   The bytes of the conversation are traced by the server (kind
 *   "inbound"), not here: one record per line, once.
 */
#ifndef MTASIM_SIM_CLIENT_H
#define MTASIM_SIM_CLIENT_H

#include "net.h"
#include "remote.h"
#include "scenario.h"
#include "sim_sched.h"

struct sim_client;

struct sim_client *sim_client_create(struct sim_sched *s, struct sim_net *n,
                                     const struct scn_client *script, int number,
                                     uint32_t dst, uint16_t port, mta_usec_t epoch,
                                     sim_trace_fn trace, void *trace_arg);
void sim_client_destroy(struct sim_client *c);

#endif
