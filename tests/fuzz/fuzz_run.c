/*
 * fuzz_run - libFuzzer target: parse a scenario, then run it
 *
 * The input is a scenario file, parsed as fuzz_parse does.  What parses is run in
 * process by runner_run(), the simulated run of mtasim run, with bounds so
 * that one input costs little: at most FUZZ_RUN_VIRTUAL of virtual time
 * (a "run for" is added or shortened), at most FUZZ_RUN_EVENTS events.
 * Scenarios that load plugins are skipped: a plugin is code of its own
 * (the fixtures crash on purpose), and the isolation of plugins has tests
 * of its own.  "requires faketime" runs as mtasim --no-faketime would.
 *
 * Oracles: no crash, abort (the core's and the simulator's internal
 * errors stop the program), leak or undefined behaviour, and no run ends
 * in an invariant violation (exit code 3) other than the bounds above
 * ("the run did not settle": the fuzzer's budget, not a defect).  A run is
 * deterministic: the same input twice gives the same trace digest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "parse.h"
#include "runner.h"

#define FUZZ_RUN_VIRTUAL (2LL * 86400 * 1000000)    /* two days */
#define FUZZ_RUN_EVENTS 200000

/* the_budget - a violation that is only the fuzzer's bound being reached */
static int the_budget(const char *v)
{
    return strncmp(v, "the run did not settle", 22) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch_path("fuzz.scn");
    struct scn_error err;
    struct scn_scenario *sc = scn_parse_buffer(path, (const char *)data, size, &err);
    if (sc == NULL)
        return 0;
    if (sc->nplugins > 0) {
        scn_free(sc);
        return 0;
    }
    if (sc->run_for < 0 || sc->run_for > FUZZ_RUN_VIRTUAL)
        sc->run_for = FUZZ_RUN_VIRTUAL;
    struct run_opts o;
    memset(&o, 0, sizeof o);
    o.max_events = FUZZ_RUN_EVENTS;
    struct run_result r, r2;
    runner_run(sc, &o, &r);
    if (r.exit_code == 3) {
        for (int i = 0; i < r.nviolations; i++)
            if (!the_budget(r.violations[i]))
                fuzz_fail("invariant violated: %s", r.violations[i]);
        if (r.nviolations == 0)
            fuzz_fail("exit 3 without a violation: %s", r.error ? r.error : "(no error)");
    }
    if (r.exit_code >= 0 && r.exit_code <= 1) {
        runner_run(sc, &o, &r2);
        if (strcmp(r.digest, r2.digest) != 0)
            fuzz_fail("the same scenario gave trace digests %.16s and %.16s", r.digest, r2.digest);
        run_result_free(&r2);
    }
    run_result_free(&r);
    scn_free(sc);
    return 0;
}
