/*
 * remote - a scripted remote MTA: the SMTP server side of the simulation
 *
 * SYNOPSIS
 *   struct sim_remote *r = sim_remote_create(sched, net, &scenario->remotes[i], trace, trace_arg);
 *   sim_remote_destroy(r);
 *
 * DESCRIPTION
 *   Registers a host on the simulated network at the script's address
 *   (port 25, the script's latency and connect mode) and serves SMTP on
 *   every accepted connection, as an explicit state machine:
 *
 *     GREETING --banner 2xx--> COMMAND --DATA 354--> DATA --"."--> COMMAND
 *         \--banner 4xx/5xx--> COMMAND (RFC 5321 4.3.1: only QUIT succeeds)
 *     any state --QUIT--> 221 then close;  a 421 reply closes after sending.
 *
 *   Input is split into lines at CRLF (a bare LF is accepted as a line end
 *   and reported in the trace).  Commands are matched case-insensitively on
 *   their verb: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT; anything else is
 *   SCN_CMD_UNKNOWN.  In DATA the body is collected up to the line ".",
 *   dot-stuffing removed, and the reply to the end of data is the "dot"
 *   reply.
 *
 *   Reply choice: the scripted replies for the command, in file order; the
 *   first whose conditions all hold wins ("when session N" counts the
 *   connections this remote accepted, from 1).  Without a matching script
 *   line the defaults are: greet "220 NAME ESMTP mtasim", ehlo
 *   "250-NAME" / "250-PIPELINING" / "250-8BITMIME" / "250 ENHANCEDSTATUSCODES",
 *   helo "250 NAME", mail "250 2.1.0 Ok", rcpt "250 2.1.5 Ok",
 *   data "354 End data with <CR><LF>.<CR><LF>", dot "250 2.0.0 Ok: queued",
 *   rset "250 2.0.0 Ok", noop "250 2.0.0 Ok", quit "221 2.0.0 Bye",
 *   unknown "502 5.5.2 Error: command not recognized"; NAME is the
 *   script's name or else the dotted address.  Replies are sent after the
 *   reply's delay, each reply as one write; replies are never reordered
 *   (a delayed reply holds back those after it).
 *
 *   Trace records (kind "remote"):
 *     remote accept  remote=ADDR session=N
 *     remote message remote=ADDR session=N from=... rcpts=N size=N
 *                    message_id=... body_sha256=...
 *       when a message was accepted (2xx to the final dot); body_sha256 is
 *       the SHA-256 of the received body after un-stuffing, CRLF line ends.
 *     remote bare_lf remote=ADDR session=N   once per session that sent one
 */
#ifndef MTASIM_SIM_REMOTE_H
#define MTASIM_SIM_REMOTE_H

#include "mtasim_env.h"
#include "net.h"
#include "scenario.h"
#include "sim_sched.h"

struct sim_remote;

typedef void (*sim_trace_fn)(void *arg, const struct mta_trace_rec *rec);

struct sim_remote *sim_remote_create(struct sim_sched *s, struct sim_net *n,
                                     const struct scn_remote *script,
                                     sim_trace_fn trace, void *trace_arg);
void sim_remote_destroy(struct sim_remote *r);
/* Sessions accepted so far. */
int sim_remote_sessions(const struct sim_remote *r);

#endif
