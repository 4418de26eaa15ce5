#!/bin/sh
# run-suite.sh - the README's first command: install, build, run the bundled suite
#
# SYNOPSIS
#   sh tests/run-suite.sh [mtasim run options...]
#
# DESCRIPTION
#   Installs any missing Debian package (as root; otherwise prints the exact
#   apt-get line and stops), builds mtasim, and runs every scenario under
#   scenarios/ with a determinism check.  Writes, under build/results/:
#     results.json   machine-readable results (docs/results.md)
#     trace.txt      the full trace of every scenario
#     summary.txt    the human-readable summary printed below
#   Exit status: mtasim's (0 when every scenario passed).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mtasim=$(sh tests/build.sh | tail -n 1)
out=${MTASIM_BUILD:-build}/results
mkdir -p "$out"
scenarios=$(find scenarios -name '*.scn' | LC_ALL=C sort)
status=0
# shellcheck disable=SC2086  # one argument per scenario file
"$mtasim" run --check-determinism --json "$out/results.json" --trace "$out/trace.txt" "$@" \
    $scenarios > "$out/summary.txt" || status=$?
cat "$out/summary.txt"
echo "results: $out/results.json  trace: $out/trace.txt  summary: $out/summary.txt"
exit $status
