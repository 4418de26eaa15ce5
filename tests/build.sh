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
# options_set BUILD -Dk=v... - does BUILD have these options already?  Read
# from meson's own record: "meson configure" even with unchanged values makes
# the next ninja regenerate the build (about 10 s of a no-op build).
options_set() {
    /usr/bin/python3 - "$@" <<'EOF'
import json, sys
try:
    with open(sys.argv[1] + "/meson-info/intro-buildoptions.json") as f:
        have = {o["name"]: o["value"] for o in json.load(f)}
except (OSError, ValueError):
    sys.exit(1)
def text(v):
    return str(v).lower() if isinstance(v, bool) else ",".join(v) if isinstance(v, list) else str(v)
for opt in sys.argv[2:]:
    name, _, value = opt[2:].partition("=")
    if name not in have or text(have[name]) != value:
        sys.exit(1)
EOF
}

if [ -f "$build/build.ninja" ]; then
    # shellcheck disable=SC2086  # one argument per option
    options_set "$build" $opts ||
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
