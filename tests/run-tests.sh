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
#        checks, which compare digests with a build at another optimisation
#        level made here (MTASIM_CROSS_BIN): build-release (-O3), or
#        build-O0 when the binary under test is itself a release build;
#        the libfaketime bridge is also run by an AddressSanitizer build
#        (MTASIM_ASAN_BIN: the binary under test when it is one, else
#        build-asan, built here).  No test skips itself: what a test needs
#        is installed (tests/deps.sh) or built here.
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

# The unit tests and the determinism pass are independent: both at once
# (two cores), each one's output shown whole afterwards.
scenarios=$(find scenarios -name '*.scn' ! -name '.*' | LC_ALL=C sort)   # not the mutants' dot-files
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
meson test -C "$build" --print-errorlogs --suite unit --suite layout >"$logs/unit" 2>&1 &
unit_pid=$!
# shellcheck disable=SC2086  # one argument per scenario file
"$mtasim" run --quiet --check-determinism $scenarios >"$logs/determinism" 2>&1 &
determinism_pid=$!
unit_rc=0 determinism_rc=0
wait "$unit_pid" || unit_rc=$?
wait "$determinism_pid" || determinism_rc=$?
echo "== unit tests and layout ($build)"
cat "$logs/unit"
echo "== determinism: every scenario twice"
cat "$logs/determinism"
rm -rf "$logs"
trap - EXIT
if [ "$unit_rc" != 0 ] || [ "$determinism_rc" != 0 ]; then
    echo "run-tests.sh: unit tests exit $unit_rc, determinism exit $determinism_rc" >&2
    exit 1
fi

# The cross-build determinism check compares with another optimisation level.
if [ "${MTASIM_BUILDTYPE:-}" = release ] || [ "$build" = build-release ]; then
    cross=build-O0 cross_type=debug
else
    cross=build-release cross_type=release
fi
echo "== $cross_type build ($cross) for the cross-build determinism check"
built=$(MTASIM_BUILD=$cross MTASIM_BUILDTYPE=$cross_type MTASIM_SANITIZE=0 \
    sh tests/build.sh) || exit 1
MTASIM_CROSS_BIN=$(printf '%s\n' "$built" | tail -n 1)
export MTASIM_CROSS_BIN

if [ "${MTASIM_SANITIZE:-0}" = 1 ]; then
    MTASIM_ASAN_BIN=$mtasim
else
    echo "== AddressSanitizer build (build-asan) for the libfaketime bridge check"
    built=$(MTASIM_BUILD=build-asan MTASIM_SANITIZE=1 MTASIM_BUILDTYPE= sh tests/build.sh) || exit 1
    MTASIM_ASAN_BIN=$(printf '%s\n' "$built" | tail -n 1)
fi
export MTASIM_ASAN_BIN

echo "== pytest"
# --dist loadgroup: the tests of one xdist_group (the Postfix fidelity harness,
# which runs once per module) stay on one worker; the rest spread as usual.
exec pytest-3 -p no:cacheprovider --mtasim-bin "$mtasim" -n auto --dist loadgroup
