/*
 * fuzz_parse - libFuzzer target: the scenario parser
 *
 * The input is a scenario file's bytes (NULs and all), parsed from memory
 * with scn_parse_buffer() as SCRATCH/case/fuzz.scn, so that includes and
 * body files resolve as they would next to a bundled scenario
 * (fuzz_common.h).  Oracles: no crash, hang, leak or undefined behaviour
 * (ASan+UBSan); a rejected input has a one-line message and a position
 * that is not negative.
 *
 * docs/reliability.md: how to build and run it (sh tests/fuzz/run.sh parse).
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch_path("fuzz.scn");
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_buffer(path, (const char *)data, size, &err);
    if (sc == NULL) {
        /* One line, somewhere real. */
        if (strchr(err.msg, '\n') != NULL || err.msg[0] == '\0')
            fuzz_fail("error message is not one line: '%s'", err.msg);
        if (err.line < 0 || err.col < 0)
            fuzz_fail("error position %d:%d", err.line, err.col);
        return 0;
    }
    scn_free(sc);
    return 0;
}
