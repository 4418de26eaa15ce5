#!/bin/sh
# digests-between.sh - do two commits behave the same on the bundled suite?
#
# SYNOPSIS
#   sh tests/tools/digests-between.sh OLD_REV NEW_REV
#
# DESCRIPTION
#   Builds each commit in its own git worktree and build directory (plain
#   debugoptimized builds, made by that commit's own tests/build.sh), runs
#   the same inputs through both binaries and compares what they wrote:
#
#     digests    every scenario under scenarios/ at its own seed: file,
#                seed, verdict and the SHA-256 trace digest (mtasim run
#                --json; the digest covers every trace record)
#     seeds      the same at seeds 1..3 (--seeds), for the random paths
#     bad        mtasim check of every fixtures/bad/*.scn: the parser's
#                file:line:col messages and exit codes
#     imports    mtasim import of every fixtures/captures/*.pcap: the
#                scenario text written from each capture
#     pcaps      the SHA-256 of every capture mtasim run --pcap DIR/ writes
#
#   A refactoring that changes nothing observable leaves all five equal.
#   Meant for changes that must not alter behaviour (issue 14); a change
#   that alters digests on purpose says so in its commit message.
#
#   Prints one line per comparison and a closing verdict; a difference is
#   shown as a unified diff.  The scenario list is each commit's own, so
#   a scenario added or removed shows up as a difference.
#
# EXIT STATUS
#   0 everything equal, 1 something differs, 2 usage or build failure.
#
# ENVIRONMENT
#   DIGESTS_WORKDIR=DIR   keep worktrees, builds and outputs in DIR (made
#                         if missing) instead of a temporary directory that
#                         is removed at the end
set -eu

if [ $# -ne 2 ]; then
    echo "usage: sh tests/tools/digests-between.sh OLD_REV NEW_REV" >&2
    exit 2
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
old=$(git rev-parse --verify "$1^{commit}") || { echo "digests-between: no commit '$1'" >&2; exit 2; }
new=$(git rev-parse --verify "$2^{commit}") || { echo "digests-between: no commit '$2'" >&2; exit 2; }
python=/usr/bin/python3
[ -x "$python" ] || python=python3

if [ -n "${DIGESTS_WORKDIR:-}" ]; then
    work=$DIGESTS_WORKDIR
    mkdir -p "$work"
    work=$(cd "$work" && pwd)
    keep=1
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/digests.XXXXXX")
    keep=0
fi
cleanup() {
    for side in old new; do
        if [ -d "$work/$side-tree" ]; then
            git worktree remove --force "$work/$side-tree" 2>/dev/null || true
        fi
    done
    git worktree prune 2>/dev/null || true
    [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

# collect SIDE REV - build REV and write what it does into $work/SIDE-out
collect() {
    side=$1 rev=$2
    tree=$work/$side-tree
    out=$work/$side-out
    if [ -d "$tree" ]; then
        git -C "$tree" checkout --quiet --detach "$rev"
    else
        git worktree add --quiet --detach "$tree" "$rev"
    fi
    echo "building $side $(git log -1 --format='%h %s' "$rev")" >&2
    built=$(MTASIM_BUILD="$work/$side-build" MTASIM_SANITIZE=0 MTASIM_WERROR=0 \
        MTASIM_BUILDTYPE=debugoptimized sh "$tree/tests/build.sh") ||
        { echo "digests-between: $side ($rev) does not build" >&2; exit 2; }
    bin=$(printf '%s\n' "$built" | tail -n 1)
    [ -x "$bin" ] || { echo "digests-between: $side: no binary at $bin" >&2; exit 2; }
    rm -rf "$out"
    mkdir -p "$out/imports" "$out/pcap-files"
    (
        cd "$tree"
        scenarios=$(find scenarios -name '*.scn' ! -name '.*' | LC_ALL=C sort)
        # Exit status 1 (a failed expectation) is a result like any other;
        # the JSON records it per run.
        # shellcheck disable=SC2086  # one argument per scenario
        "$bin" run --quiet --json "$out/run.json" $scenarios >/dev/null 2>&1 || true
        # shellcheck disable=SC2086
        "$bin" run --quiet --seeds 1..3 --json "$out/seeds.json" $scenarios >/dev/null 2>&1 || true
        # shellcheck disable=SC2086
        "$bin" run --quiet --pcap "$out/pcap-files/" $scenarios >/dev/null 2>&1 || true
        for f in fixtures/bad/*.scn; do
            status=0
            "$bin" check "$f" > "$out/check.tmp" 2>&1 || status=$?
            printf '%s exit %s\n' "$f" "$status"
            # The build directory is in "cannot find plugin" messages.
            sed -e "s|$work/$side-build|BUILD|g" -e 's/^/  /' "$out/check.tmp"
        done > "$out/bad.txt"
        rm -f "$out/check.tmp"
        for f in fixtures/captures/*.pcap; do
            name=$(basename "$f" .pcap)
            status=0
            "$bin" import "$f" -o "$out/imports/$name.scn" > "$out/imports/$name.log" 2>&1 || status=$?
            echo "exit $status" >> "$out/imports/$name.log"
        done
    )
    for json in run seeds; do
        "$python" - "$out/$json.json" > "$out/$json.txt" <<'EOF'
import json, sys
runs = json.load(open(sys.argv[1]))["runs"]
for r in sorted(runs, key=lambda r: (r["file"], r["seed"] if r["seed"] is not None else -1)):
    print(r["file"], "seed", r["seed"], r["verdict"], r["digest"])
EOF
    done
    (cd "$out/pcap-files" && find . -type f | LC_ALL=C sort | xargs -r sha256sum) > "$out/pcaps.txt"
}

collect old "$old"
collect new "$new"

differ=0
# compare WHAT OLD NEW - one line of verdict, a diff if they differ
compare() {
    what=$1 a=$2 b=$3
    if diff -ru "$a" "$b" > "$work/diff.txt"; then
        echo "same      $what"
    else
        echo "DIFFERENT $what"
        sed 's/^/    /' "$work/diff.txt"
        differ=1
    fi
}
count() { wc -l < "$1" | tr -d ' '; }
o=$work/old-out n=$work/new-out
echo "old $(git log -1 --format='%h %s' "$old")"
echo "new $(git log -1 --format='%h %s' "$new")"
compare "digests: $(count "$n/run.txt") scenario runs at their own seeds" "$o/run.txt" "$n/run.txt"
compare "digests: $(count "$n/seeds.txt") runs at seeds 1..3" "$o/seeds.txt" "$n/seeds.txt"
compare "parse errors: $(grep -c '^fixtures/' "$n/bad.txt") bad scenarios" "$o/bad.txt" "$n/bad.txt"
compare "imports: $(ls "$n/imports"/*.scn 2>/dev/null | wc -l | tr -d ' ') captures turned into scenarios" "$o/imports" "$n/imports"
compare "pcaps: $(count "$n/pcaps.txt") capture files written by --pcap" "$o/pcaps.txt" "$n/pcaps.txt"
if [ "$differ" = 0 ]; then
    echo "digests-between: no difference"
else
    echo "digests-between: DIFFERENCES (see above)"
fi
exit "$differ"
