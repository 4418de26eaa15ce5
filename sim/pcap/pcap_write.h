/*
 * pcap_write - every simulated TCP connection of a run as a packet capture
 *
 * SYNOPSIS
 *   char err[256];
 *   struct pcap_writer *pw = pcap_writer_open("out.pcap", err, sizeof err);
 *   sim_net_set_observer(net, pcap_writer_packet, pw);
 *   ... the run ...
 *   pcap_writer_finish(pw, now, err, sizeof err);    0, or -1 with err set
 *   pcap_writer_close(pw);
 *
 *   pcap_output_path(spec, name, seed, with_seed, used, &nused, out, size);
 *
 * DESCRIPTION
 *   The writer turns each packet sim/world/net.c shows its observer into
 *   one Ethernet/IPv4/TCP frame, written with libpcap (nanosecond time
 *   stamps, DLT_EN10MB) at the virtual time the observer saw it: a
 *   capture on the MTA's host, so its own packets when they leave (lost
 *   ones included), the remote's when they arrive (net.h, "Observer").
 *   Everything the simulated TCP does is there: the handshake, every
 *   segment at the path's MSS, every ACK with its window, retransmissions,
 *   zero-window probes, FIN and RST.  Nothing in a frame depends on the
 *   wall clock, on addresses in memory or on randomness: the same scenario
 *   and seed give a byte-identical file (libpcap's file header holds no
 *   time).
 *
 *   Sequence numbers: the observer counts from 0 on both sides; the
 *   writer adds initial sequence numbers derived from the connection's
 *   number (deterministic, different for every connection and side).
 *   SYN and SYN-ACK carry the MSS and window scale options the simulated
 *   TCP sent; the window field is the one it advertised.  IP
 *   identification counts per sender from 1, DF set, TTL 64; IP and TCP
 *   checksums are computed.
 *
 *   A refused connect is the SYN and an RST|ACK with sequence number 0
 *   (what Linux answers for a closed port); an unreachable one the SYN
 *   and an ICMP host unreachable (type 3 code 1) quoting the SYN, from the
 *   destination's address.
 *
 *   MAC addresses: the side that connects 02:00:00:00:00:01 (the MTA, for
 *   its deliveries), the side that accepts 02:00:00:00:00:02 (locally
 *   administered).
 *
 *   pcap_output_path(): where one run's capture goes.  A spec ending in
 *   '/' or naming an existing directory is a directory: DIR/NAME.pcap,
 *   or DIR/NAME-seedN.pcap with with_seed (--seeds), NAME being the
 *   scenario's name with every byte but [A-Za-z0-9._-] and a leading '.'
 *   made '_' (so it never leaves DIR) and cut at 200 bytes; a name already used
 *   earlier in the same command gets -2, -3, ... before ".pcap".  Any
 *   other spec is the file itself.  used/nused remember the names handed
 *   out (caller frees each and the array).
 *
 * DIAGNOSTICS
 *   pcap_writer_open() and pcap_writer_finish() return NULL / -1 with a
 *   one-line reason: "cannot write FILE: why" (why: the errno of the
 *   first write that failed, or of close(2)).  pcap_writer_finish()
 *   closes the file.  Broken invariants abort
 *   with "pcap_writer_<fn>: what".
 */
#ifndef MTASIM_SIM_PCAP_WRITE_H
#define MTASIM_SIM_PCAP_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "net.h"

struct pcap_writer;

struct pcap_writer *pcap_writer_open(const char *path, char *err, size_t errlen);
/* The sim_packet_fn: give it the writer as arg. */
void pcap_writer_packet(void *arg, const struct sim_packet *pkt);
/* Flush, check for write errors; packets shown afterwards are ignored
 * (now: the run's end). */
int pcap_writer_finish(struct pcap_writer *pw, sim_usec now, char *err, size_t errlen);
void pcap_writer_close(struct pcap_writer *pw);
/* Frames written so far. */
unsigned long pcap_writer_frames(const struct pcap_writer *pw);

/* Where a run's capture goes; 0, or -1 when the result would not fit. */
int pcap_output_path(const char *spec, const char *name, uint64_t seed, int with_seed,
                     char ***used, size_t *nused, char *out, size_t outlen);
/* Is spec a directory (ends in '/' or names one)? */
int pcap_output_is_dir(const char *spec);

#endif
