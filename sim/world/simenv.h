/*
 * simenv - the simulated backend of the core's environment interface
 *
 * SYNOPSIS
 *   struct simenv *se = simenv_create(sched, net, dns, trace);
 *   struct mta *m = mta_create(simenv_env(se), &cfg);
 *   ... sim_sched_run() ...
 *   simenv_check(se, &inv);    descriptors left open, double closes, ...
 *   simenv_destroy(se);
 *
 * DESCRIPTION
 *   Implements struct mta_env on the virtual clock (sched), the simulated
 *   network (net) and resolver (dns).  Descriptors are small integers
 *   allocated lowest-free from 3, as a process would, so traces show
 *   realistic and reproducible conn_fd values: 3 to 1023 while a plugin
 *   may see them (fdreserve.h), beyond without one (simenv_set_private_fds).
 *
 *   It records the connection-level trace (kind "conn": open, established,
 *   refused, unreachable, eof, reset, close, error) and DNS queries and
 *   answers (kind "dns"; a query's n= is its number for that name and
 *   type, from 1; a close's rx_segments= and rx_bytes= count what
 *   arrived on the descriptor), and counts contract breaches by the core: a
 *   close of a descriptor that is not open, an operation on one, a
 *   descriptor still open at the end.
 */
#ifndef MTASIM_SIM_SIMENV_H
#define MTASIM_SIM_SIMENV_H

#include "dns.h"
#include "mtasim_env.h"
#include "net.h"
#include "sim_sched.h"
#include "trace_store.h"

struct simenv;

struct simenv_violations {
    unsigned long bad_close;        /* close of a descriptor not open */
    unsigned long bad_op;           /* write on a descriptor not open */
    unsigned long left_open;        /* still open when checked */
    unsigned long opened, closed;
};

struct simenv *simenv_create(struct sim_sched *s, struct sim_net *n, struct sim_dns *d,
                             struct trace_store *trace);
struct mta_env *simenv_env(struct simenv *se);
/* The seed random_below() streams derive from (default 1). */
void simenv_set_seed(struct simenv *se, uint64_t seed);
/* private_fds != 0: no plugin is loaded, so nothing but the simulation
 * sees a descriptor's number.  The table then grows past the range
 * fdreserve keeps from real files (3 to 1023, at most 1021 open at once)
 * up to 1048576 descriptors, as a process with Linux's default fs.nr_open
 * may, and numbers are handed out without claiming a real socket.  Set it
 * before the table grew past 1023 (at world building); default 0. */
void simenv_set_private_fds(struct simenv *se, int private_fds);
void simenv_check(const struct simenv *se, struct simenv_violations *v);
/* The liveness checker to tell of connects and writes (NULL: none). */
struct liveness;
void simenv_set_liveness(struct simenv *se, struct liveness *lv);
void simenv_destroy(struct simenv *se);
/* The trace sink the scripted remotes write to. */
void simenv_trace(void *arg, const struct mta_trace_rec *rec);

#endif
