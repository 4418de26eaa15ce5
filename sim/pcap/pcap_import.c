/*
 * pcap_import - a packet capture of SMTP sessions turned into a scenario
 *
 * See pcap_import.h.  Three stages, one pass over the capture:
 *
 *   packets   link header -> IPv4 -> TCP (or ICMP unreachable); each TCP
 *             segment goes to its session (struct pi_session), found by
 *             its four-tuple; a SYN on a finished four-tuple starts a new
 *             session, as port reuse does.
 *   streams   per direction, bytes are delivered in sequence order
 *             (struct pi_dir): a segment at or before the next expected
 *             byte gives its new part (retransmissions and overlaps give
 *             nothing twice), one beyond it waits, sorted, until the gap
 *             closes.  Without a SYN the first segment seen sets the base.
 *   SMTP      lines of the client are commands, or message data between
 *             a 354 to DATA and the final "."; lines of the server are
 *             replies (multi-line until "CODE "), each answering the
 *             oldest command still waiting, the banner first.  Everything
 *             becomes an event (struct pi_event) with its capture time.
 *             After a 220 to STARTTLS the bytes are TLS records, counted
 *             by their headers, never read as SMTP (RFC 3207 4).
 *
 *   The scenario is then written from the events (pi_emit_scenario).  All
 *   output depends only on the capture's bytes: the same file always gives
 *   the same scenario.
 *
 *   Five files, sharing the structures of pcap_import_internal.h: this
 *   one is the command (options, the stages in order, the output);
 *   pcap_import_read.c reads the capture (packets, streams, SMTP events);
 *   pcap_import_tx.c splits sessions into transactions and groups them
 *   into messages; pcap_import_tls.c infers a STARTTLS's handshake and the
 *   client's TLS policy; pcap_import_emit.c writes the scenario.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outfile.h"
#include "pcap_import_internal.h"

/* scenario_name - a scenario name from the output or capture file's base name */
static void scenario_name(const char *path, char *out, size_t outlen)
{
    const char *base = strrchr(path, '/');
    size_t i, n = 0;

    base = base ? base + 1 : path;
    for (i = 0; base[i] && base[i] != '.' && n + 1 < outlen; i++) {
        unsigned char c = (unsigned char) base[i];

        out[n++] = isalnum(c) || c == '-' || c == '_' ? (char) c : '-';
    }
    if (n == 0)
        n = (size_t) snprintf(out, outlen, "imported");
    out[n] = '\0';
}

static const char usage_import[] =
    "usage: mtasim import CAPTURE [--server IP] [--port N]... [-o FILE]\n"
    "\n"
    "Read a packet capture (pcap or pcapng) of SMTP sessions and write a scenario in which\n"
    "a scripted remote behaves as the captured server did: banner, replies and their delays,\n"
    "resets, refused and timed-out connects; the captured transactions are injected and the\n"
    "expectations reproduce the captured dialogue and outcome (docs/pcap.md).\n"
    "\n"
    "options:\n"
    "  --server IP    the SMTP server's address, IPv4 or IPv6 (default: the side on an SMTP port)\n"
    "  --port N       also an SMTP port, besides 25, 587 and 2525 (repeatable)\n"
    "  -o FILE        write the scenario to FILE (default: standard output)\n"
    "  -h, --help     show this help\n"
    "\n"
    "A capture that cannot be read, is truncated or corrupt, or holds no SMTP session is\n"
    "reported as 'CAPTURE: what is wrong' with exit status 2.\n";

/* pcap_import_main - the "mtasim import" command */
int pcap_import_main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "server", required_argument, NULL, 's' },
        { "port", required_argument, NULL, 'p' },
        { "output", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct pi_import im;
    const char *out_path = NULL;
    char name[128], *text = NULL;
    size_t textlen = 0;
    FILE *m;
    int c, rc = 0;

    memset(&im, 0, sizeof im);
    im.ports[0] = 25;
    im.ports[1] = 587;
    im.ports[2] = 2525;
    im.nports = 3;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (mta_ip_parse(optarg, &im.server) < 0 || mta_ip_is_unspec(im.server)) {
                fprintf(stderr, "mtasim import: --server wants an IPv4 or IPv6 address, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'p': {
            char *end;
            long v = strtol(optarg, &end, 10);

            if (*optarg == '\0' || *end != '\0' || v < 1 || v > 65535) {
                fprintf(stderr, "mtasim import: --port wants a port 1-65535, not '%s'\n", optarg);
                return 2;
            }
            if (im.nports >= PI_MAX_PORTS + 3) {
                fprintf(stderr, "mtasim import: at most %d --port options\n", PI_MAX_PORTS);
                return 2;
            }
            im.ports[im.nports++] = (uint16_t) v;
            break;
        }
        case 'o': out_path = optarg; break;
        case 'h': fputs(usage_import, stdout); return 0;
        default: fputs(usage_import, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "mtasim import: %s\n", optind >= argc ? "no capture file given"
                                                              : "one capture file at a time");
        fputs(usage_import, stderr);
        return 2;
    }
    im.path = argv[optind];
    if (pi_read_capture(&im) == 0 && im.ns == 0)
        pi_fail(&im, "no SMTP session found (tcp ports 25, 587, 2525%s)",
                im.nports > 3 ? " and --port" : "");
    scenario_name(out_path ? out_path : im.path, name, sizeof name);
    m = im.err[0] ? NULL : open_memstream(&text, &textlen);
    if (m != NULL) {
        pi_emit_scenario(m, &im, name);
        fclose(m);
    }
    if (im.err[0]) {
        fprintf(stderr, "%s: %s\n", im.path, im.err);
        rc = 2;
    } else {
        int i;

        /* Say what was not imported (RFC 3207 4: after the 220 to STARTTLS
         * nothing is cleartext SMTP); the scenario says so too. */
        for (i = 0; i < im.ns; i++)
            if (im.s[i]->tls) {
                enum pi_tls_out out = pi_tls_outcome(im.s[i]);

                fprintf(stderr, "%s: note: session %d: encrypted after its STARTTLS (RFC 3207 4): "
                        "the rest of it is not imported; the handshake is scripted as 'tls %s'%s, "
                        "%s\n", im.path, i + 1, pi_tls_word(out),
                        out == PI_TLS_UNKNOWN ? " (an assumption: the capture does not show how "
                        "it ended)" : " (as the capture shows)",
                        pi_tls_failed(out) ? "nothing was sent inside TLS"
                                           : "what happened inside TLS is unknown");
            }
    }
    if (im.err[0]) {
        /* reported above */
    } else if (out_path) {
        /* An outfile keeps the reason of a failed write or close. */
        struct outfile *f = outfile_open(out_path);
        int e = f == NULL ? errno : 0;

        if (f != NULL) {
            fwrite(text, 1, textlen, outfile_stream(f));
            e = outfile_close(f);
        }
        if (e != 0) {
            fprintf(stderr, "mtasim import: cannot write %s: %s\n", out_path, strerror(e));
            rc = 2;
        }
    } else {
        fwrite(text, 1, textlen, stdout);   /* checked, like all of stdout, at exit (mtasim.c) */
    }
    free(text);
    pi_import_free(&im);
    return rc;
}
