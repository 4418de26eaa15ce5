#!/bin/sh
# build.sh - install what is missing, then configure and compile mtasim
#
# SYNOPSIS
#   sh tests/build.sh
#
# ENVIRONMENT
#   MTASIM_BUILD=DIR      build directory (default: build)
#   MTASIM_SANITIZE=1     build with AddressSanitizer and UndefinedBehaviorSanitizer
#   MTASIM_WERROR=1       warnings are errors (CI)
#   MTASIM_BUILDTYPE=T    meson buildtype (default debugoptimized; release = -O3)
#
# Prints the build directory's mtasim path as its last line on success.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

sh tests/deps.sh

build=${MTASIM_BUILD:-build}
opts="-Dbuildtype=${MTASIM_BUILDTYPE:-debugoptimized}"
[ "${MTASIM_SANITIZE:-0}" = 1 ] && opts="$opts -Db_sanitize=address,undefined -Db_lundef=false"
[ "${MTASIM_WERROR:-0}" = 1 ] && opts="$opts -Dwerror=true"

# shellcheck disable=SC2086  # opts is a list of words
if [ -f "$build/build.ninja" ]; then
    meson configure "$build" $opts >/dev/null || meson configure "$build" $opts >&2
else
    meson setup "$build" $opts >/dev/null || meson setup "$build" $opts >&2
fi
# Quiet when it works; on failure, again with its output on stderr: the
# callers capture stdout (the last line is the binary's path).
# ninja, not "meson compile": the same build (ninja re-runs meson when a
# meson.build changed) without a second of Python start-up on every no-op.
ninja -C "$build" >/dev/null || ninja -C "$build" >&2
case $build in
    /*) echo "$build/sim/mtasim" ;;
    *) echo "$top/$build/sim/mtasim" ;;
esac
