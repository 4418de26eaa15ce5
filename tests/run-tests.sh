#!/bin/sh
# run-tests.sh - the README's second command: the whole test suite
#
# SYNOPSIS
#   sh tests/run-tests.sh
#
# DESCRIPTION
#   Installs what is missing, builds, then runs
#     1. the libcheck unit suites and the layout check (meson test:
#        includes point down the layers, no source file too long),
#     2. the bundled scenarios twice each, comparing trace digests,
#     3. pytest: every scenario as a test item, the mutants that prove each
#        scenario can fail, the bad-input checks, and the determinism
#        checks, which compare digests with an optimised (-O3) build made
#        here in build-release (MTASIM_RELEASE_BIN).
#   Exits non-zero on any failure; the last line is pytest's summary.
#
# ENVIRONMENT
#   MTASIM_BUILD, MTASIM_SANITIZE, MTASIM_WERROR   see tests/build.sh
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# build.sh prints the binary's path last; a failed build must stop us here
# (a pipe into tail would hide its exit status).
built=$(sh tests/build.sh) || exit 1
mtasim=$(printf '%s\n' "$built" | tail -n 1)
build=${MTASIM_BUILD:-build}

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"

echo "== unit tests and layout ($build)"
meson test -C "$build" --print-errorlogs --suite unit --suite layout

echo "== determinism: every scenario twice"
scenarios=$(find scenarios -name '*.scn' ! -name '.*' | LC_ALL=C sort)   # not the mutants' dot-files
# shellcheck disable=SC2086  # one argument per scenario file
"$mtasim" run --quiet --check-determinism $scenarios

echo "== optimised build (build-release) for the cross-build determinism check"
built=$(MTASIM_BUILD=build-release MTASIM_BUILDTYPE=release MTASIM_SANITIZE=0 \
    sh tests/build.sh) || exit 1
MTASIM_RELEASE_BIN=$(printf '%s\n' "$built" | tail -n 1)
export MTASIM_RELEASE_BIN

echo "== pytest"
# --dist loadgroup: the tests of one xdist_group (the Postfix fidelity harness,
# which runs once per module) stay on one worker; the rest spread as usual.
exec pytest-3 -p no:cacheprovider --mtasim-bin "$mtasim" -n auto --dist loadgroup
