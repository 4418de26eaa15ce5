/*
 * pcap_import - a packet capture of SMTP sessions turned into a scenario
 *
 * SYNOPSIS
 *   mtasim import CAPTURE [--server IP] [--port N]... [-o FILE]
 *
 *   int pcap_import_main(int argc, char **argv);     argv[0] = "import"
 *
 * DESCRIPTION
 *   Reads CAPTURE (pcap or pcapng, through libpcap) with the BPF filter
 *   "tcp port 25 or tcp port 587 or tcp port 2525" (plus every --port)
 *   and ICMP destination-unreachable messages, reassembles each TCP
 *   session (retransmissions, overlaps, out-of-order segments, a capture
 *   that starts after the SYN), follows the SMTP dialogue in it and writes
 *   a scenario in which a scripted remote behaves as the captured server
 *   did: its banner and every reply, each with the delay it took
 *   (relative to the command it answers, less the round trip seen in the
 *   handshake when the capture was taken at the client), a reset or close
 *   instead of a reply, and refused, unreachable or timed-out connects.
 *   The captured transactions become injections (MAIL FROM, RCPT TO, the
 *   body's size), and the expectations say what must happen again when
 *   mtasim's core is the client: the command verbs and addresses in
 *   order, the server's reply lines in order, and each message's fate.
 *   docs/pcap.md lists what cannot match (the EHLO name, timing, commands
 *   the captured client chose that the core does not send).
 *
 *   The server is the side on an SMTP port (or --server IP).  Link types:
 *   Ethernet (with 802.1Q tags), Linux cooked (SLL, SLL2), BSD loopback
 *   (NULL, LOOP) and raw IPv4.  IPv6 packets and IP fragments are counted
 *   and skipped.
 *
 * BOUNDS
 *   Captures are untrusted input: at most PI_MAX_PACKETS packets,
 *   PI_MAX_SESSIONS sessions, PI_MAX_EVENTS SMTP events per session,
 *   PI_MAX_STORED bytes of lines in all, PI_MAX_OOO_SEGS /
 *   PI_MAX_OOO_BYTES held out of order per direction; lines longer than
 *   PI_MAX_LINE are cut.  A transaction with more than PI_MAX_RCPTS
 *   recipients (or PI_MAX_RCPT_BYTES of them) is not injected.  Past a bound the import stops
 *   with an error rather than guess.
 *
 * DIAGNOSTICS
 *   One line "CAPTURE: what is wrong" on standard error and exit status 2
 *   for a file libpcap cannot read, a truncated or corrupt one, an
 *   unsupported link type, no SMTP session, time stamps before 1970 or
 *   after 9999 (a scenario's epoch cannot name them), or a bound exceeded.  The
 *   generated scenario goes to -o FILE or standard output; exit status 0.
 */
#ifndef MTASIM_SIM_PCAP_IMPORT_H
#define MTASIM_SIM_PCAP_IMPORT_H

#define PI_MAX_PACKETS 2000000
#define PI_MAX_SESSIONS 1024
#define PI_MAX_EVENTS 4096
#define PI_MAX_OOO_SEGS 256
#define PI_MAX_OOO_BYTES (1u << 20)
#define PI_MAX_LINE 1000
#define PI_MAX_REPLY_LINES 64
#define PI_MAX_PORTS 16
#define PI_MAX_SERVERS 64
#define PI_MAX_STORED (64u << 20)      /* bytes of command and reply lines kept */
#define PI_MAX_RCPTS 64                 /* recipients of one injected transaction */
#define PI_MAX_RCPT_BYTES 3000          /* ... and their length: an inject line is at most 4096 */
#define PI_MAX_SIZE (16L << 20)         /* inject size N: the most a scenario takes */
#define PI_MAX_PATH 254                 /* an address (RFC 5321 4.5.3.1.3 path, less brackets) */
/* Time stamps: a scenario's epoch is 1970-01-01 to 9999-12-31T23:59:59Z
 * (its parser's range); a capture outside it is refused. */
#define PI_MAX_SECONDS 253402300799LL

int pcap_import_main(int argc, char **argv);

#endif
