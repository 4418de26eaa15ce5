#!/bin/sh
# run-suite.sh - the README's first command: install, build, run the bundled suite, report
#
# SYNOPSIS
#   sh tests/run-suite.sh [mtasim run options...]
#
# DESCRIPTION
#   Installs any missing Debian package (as root; otherwise prints the exact
#   apt-get line and stops), builds mtasim, runs every scenario under
#   scenarios/ with a determinism check, then turns the results into
#   reports.  Writes, under build/results/:
#     results.json   machine-readable results with every trace record
#                    (docs/results.md; mtasim run --json --json-trace)
#     trace.txt      the full trace of every scenario
#     summary.txt    the human-readable summary printed below
#     report.html    one self-contained HTML report: summary table, and per
#                    scenario its SMTP sequence diagram, hook timeline,
#                    queue depth and any failure's diff
#     junit.xml      JUnit XML for CI test reporting
#     summary.md     a Markdown summary; appended to $GITHUB_STEP_SUMMARY
#                    when that is set (GitHub Actions)
#   On a terminal, mtasim shows its progress (done / total, failures so
#   far) on standard error; in CI logs (not a terminal, or $CI set) it
#   stays quiet.
#   Exit status: mtasim run's (0 when every scenario passed), or 2 when the
#   reports could not be written.
#
# ENVIRONMENT
#   MTASIM_BUILD     build directory (default build); see tests/build.sh
#   MTASIM_RESULTS   where to write the results (default $MTASIM_BUILD/results)
#   MTASIM_BIN       run this mtasim binary instead of installing and building
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# say - a step, on a terminal only (CI logs get the results, not the chatter)
say() {
    if [ -t 2 ] && [ -z "${CI:-}" ]; then
        echo "$*" >&2
    fi
}

if [ -n "${MTASIM_BIN:-}" ]; then
    mtasim=$MTASIM_BIN
else
    say "building mtasim..."
    # build.sh prints the binary's path last; a failed build must stop us here
# (a pipe into tail would hide its exit status).
built=$(sh tests/build.sh) || exit 1
mtasim=$(printf '%s\n' "$built" | tail -n 1)
fi
out=${MTASIM_RESULTS:-${MTASIM_BUILD:-build}/results}
mkdir -p "$out"
scenarios=$(find scenarios -name '*.scn' ! -name '.*' | LC_ALL=C sort)
say "running $(echo "$scenarios" | wc -l) scenarios, each twice (determinism check)..."
status=0
# shellcheck disable=SC2086  # one argument per scenario file
"$mtasim" run --check-determinism --json "$out/results.json" --json-trace \
    --trace "$out/trace.txt" "$@" $scenarios > "$out/summary.txt" || status=$?
cat "$out/summary.txt"
if [ -s "$out/results.json" ]; then
    # Says "report: P passed, F failed -> FILES" on standard error, or why not.
    "$mtasim" report "$out/results.json" --html "$out/report.html" --junit "$out/junit.xml" \
        --markdown "$out/summary.md" || { [ "$status" -ge 2 ] || status=2; }
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$out/summary.md" ]; then
        cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"
    fi
fi
echo "results: $out/results.json  trace: $out/trace.txt  summary: $out/summary.txt"
echo "reports: $out/report.html  $out/junit.xml  $out/summary.md"
exit $status
