/*
 * fuzz_common - what the libFuzzer targets of tests/fuzz/ share
 *
 *   fuzz_scratch_file(name, data, size)
 *       data written to SCRATCH/case/name, SCRATCH being a directory made
 *       once per process under $TMPDIR (default /tmp) in which
 *       ../world.inc is the bundled suite's shared world, so that a
 *       scenario seeded from scenarios/ includes it as it does there.
 *       Returns the path (static storage).
 *   fuzz_scratch_path(name)
 *       the same path, nothing written: a name for scn_parse_buffer().
 *   fuzz_fail(fmt, ...)
 *       an oracle failed: print "fuzz oracle: ..." and abort(), which
 *       libFuzzer reports as a crash and saves the input.
 *
 * MTASIM_SOURCE_ROOT (a compile-time string) is the source tree.
 */
#ifndef MTASIM_FUZZ_COMMON_H
#define MTASIM_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

const char *fuzz_scratch_file(const char *name, const uint8_t *data, size_t size);
const char *fuzz_scratch_path(const char *name);
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
