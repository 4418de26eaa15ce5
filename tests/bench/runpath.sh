#!/bin/sh
# runpath.sh - what users run: "mtasim run" on retry-heavy scenarios, the
# connection-scaling series and tracing on vs off, in CPU time
#
# SYNOPSIS
#   sh tests/bench/runpath.sh [RUNS] [PART...]     (default 5; medians)
#     PART: greylist reuse trace generator   (default: all four)
#
# DESCRIPTION
#   Wall time on a shared machine says little; every figure here is CPU
#   time (user + system of the process and its children, from wait4 via
#   /usr/bin/time) beside the wall time and peak RSS, as medians of RUNS.
#
#   greylist   N messages (100, then 1000) to a remote that greylists every
#              attempt, retried every 300 s for a day until they expire,
#              run with "mtasim run" (two expectations): the issue-19
#              retry-heavy workload.  Reports virtual seconds per CPU second.
#   reuse      "mtasim bench --mode reuse" with 200k messages over 10, 300,
#              1000 and 3000 domains: CPU per event as simultaneous
#              connections grow (bench prints its own CPU figure), and
#              the ratio of the 3000-domain cost per event to the 10-domain one.
#   trace      "mtasim bench" mix 100k/1k/24h with tracing off and with the
#              full trace to /dev/null; then each --trace-format (text, bin)
#              to /dev/null and to a file (its size), "mtasim trace show" of
#              the bin file, checked equal to the text one.
#   generator  1,000,000 messages to 1,000 domains over 24 h, written as one
#              "inject 1..1000000" range line (docs/scenario-language.md),
#              through "mtasim run" with two expectations; then the same
#              run with its full trace written to /dev/null.
#
#   Uses the release build (build-release; built if missing) unless
#   MTASIM=path is set.  Needs GNU time (/usr/bin/time, Debian "time").
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-5}
[ $# -gt 0 ] && shift
parts=${*:-greylist reuse trace generator}
mtasim=${MTASIM:-$top/build-release/sim/mtasim}
if [ ! -x "$mtasim" ]; then
    built=$(MTASIM_BUILD=build-release MTASIM_BUILDTYPE=release sh "$top/tests/build.sh") || exit 1
    mtasim=$(printf '%s\n' "$built" | tail -n 1)
fi
[ -x /usr/bin/time ] || { echo "runpath.sh: needs GNU time (apt-get install time)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# greylist_scn N - N messages greylisted for a day, retried every 300 s
greylist_scn() {
    cat <<SCN
scenario greylist-$1
epoch 2020-03-26T00:00:00Z
config retry_interval 300s
config max_retry_interval 300s
dns example.com MX 10 mx1.example.com
dns mx1.example.com A 198.51.100.10
remote 198.51.100.10 name mx1.example.com
  rcpt 451 4.7.1 greylisted, try again later
SCN
    i=1
    while [ "$i" -le "$1" ]; do
        echo "inject $i from <alice@sender.test> to <u$i@example.com>"
        i=$((i + 1))
    done
    echo "expect hooks in order"
    echo "  log_transient_failure_v1 msg=1 note~\"^451 4\\.7\\.1\""
    echo "  log_permanent_failure_v1 msg=$1"
    echo "expect message $1 bounced within 25h"
}

# million_scn N D - N messages to D domains (one remote each) over 24 h,
# from one inject range line
million_scn() {
    echo "scenario million"
    echo "epoch 2020-03-26T00:00:00Z"
    echo "run for 25h"
    echo "dns latency 2ms"
    d=0
    while [ "$d" -lt "$2" ]; do
        a=$((d + 1))
        ip="10.$((a / 65536 % 256)).$((a / 256 % 256)).$((a % 256))"
        echo "dns d$d.bench.test MX 10 mx$d.bench.test"
        echo "dns mx$d.bench.test A $ip"
        echo "remote $ip name mx$d.bench.test"
        d=$((d + 1))
    done
    echo "inject 1..$1 from <sender@bench.test> to <u@d{0..$(($2 - 1))}.bench.test> spread 24h"
    echo "expect message $1 delivered"
    echo "expect count trace inject message = $1"
}

# median - the median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# measure LABEL CMD... - RUNS runs of CMD: median CPU s, wall s, peak RSS
measure() {
    label=$1
    shift
    : > "$tmp/m"
    k=0
    while [ "$k" -lt "$runs" ]; do
        /usr/bin/time -f '%U %S %e %M' -o "$tmp/t" "$@" > "$tmp/out" 2>&1 || {
            echo "runpath.sh: $label: exit $?" >&2; tail -n 5 "$tmp/out" >&2; exit 1; }
        tail -n 1 "$tmp/t" >> "$tmp/m"
        k=$((k + 1))
    done
    cpu=$(awk '{ print $1 + $2 }' "$tmp/m" | median)
    wall=$(awk '{ print $3 }' "$tmp/m" | median)
    rss=$(awk '{ print $4 / 1024 }' "$tmp/m" | median)
    runs_cpu=$(awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 + $2 }' "$tmp/m")
    printf '  %-34s cpu %7.3f s  wall %7.3f s  peak RSS %7.1f MiB   (cpu runs: %s)\n' \
        "$label" "$cpu" "$wall" "$rss" "$runs_cpu"
}

echo "runpath.sh: $mtasim, medians of $runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for part in $parts; do
    case $part in
    greylist)
        echo "== greylist: N messages greylisted for 24 h through mtasim run (expectations on)"
        for n in 100 1000; do
            greylist_scn "$n" > "$tmp/greylist-$n.scn"
            measure "greylist $n" "$mtasim" run --quiet --timeout 600 "$tmp/greylist-$n.scn"
            # Every message expires 86,400 s after the epoch and the run ends
            # there: a day of virtual time (a --json run to read it back
            # would keep the whole trace and cost far more than the run).
            awk -v c="$cpu" 'BEGIN { printf "    86400 virtual s: %.0f virtual s per CPU s\n", 86400 / c }'
        done
        ;;
    reuse)
        echo "== reuse: 200k messages, CPU per event as domains grow (mtasim bench, $runs runs each)"
        for d in 10 300 1000 3000; do
            "$mtasim" bench --mode reuse --messages 200000 --domains "$d" --runs "$runs" > "$tmp/out"
            printf '  %5s domains: ' "$d"
            grep -E 'cpu time|per event' "$tmp/out" | tr -s ' ' | tr '\n' ';'
            echo
            awk '/per event/ { print $3 }' "$tmp/out" > "$tmp/ns-$d"
        done
        # The issue-19 target: per-event cost from 10 to 3,000 domains <= 1.5x.
        awk -v a="$(cat "$tmp/ns-10")" -v b="$(cat "$tmp/ns-3000")" \
            'BEGIN { printf "  per event, 3000 domains / 10 domains = %.2fx\n", b / a }'
        ;;
    trace)
        echo "== tracing: mix 100k/1k/24h, off vs full trace to /dev/null (mtasim bench)"
        "$mtasim" bench --runs "$runs" > "$tmp/off"
        "$mtasim" bench --runs "$runs" --trace /dev/null > "$tmp/on"
        off=$(awk '/cpu time/ { print $3 }' "$tmp/off")
        on=$(awk '/cpu time/ { print $3 }' "$tmp/on")
        echo "  tracing off: cpu $off s;  tracing on: cpu $on s;  on / off = $(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.2f", a / b }')"
        # The two formats (docs/trace-format.md), to /dev/null and to a real
        # file; bench's cpu time is the run's own, writing included.
        echo "== trace formats: the same run, text vs bin, to /dev/null and to a file in $tmp"
        for fmt in text bin; do
            for to in /dev/null "$tmp/trace.$fmt"; do
                "$mtasim" bench --runs "$runs" --trace "$to" --trace-format "$fmt" > "$tmp/out"
                where=/dev/null size=
                [ "$to" = /dev/null ] || { where="a file"; size=",  $(wc -c < "$to" | tr -d ' ') bytes"; }
                printf '  %-4s to %-9s  cpu %s s%s\n' "$fmt" "$where" \
                    "$(awk '/cpu time/ { print $3 }' "$tmp/out")" "$size"
            done
        done
        measure "trace show of the bin file" "$mtasim" trace show "$tmp/trace.bin" -o /dev/null
        "$mtasim" trace show "$tmp/trace.bin" | cmp -s - "$tmp/trace.text" ||
            { echo "runpath.sh: trace show differs from the text trace" >&2; exit 1; }
        rm -f "$tmp/trace.text" "$tmp/trace.bin"
        ;;
    generator)
        n=${MILLION:-1000000}
        echo "== generator: $n messages to 1000 domains over 24 h from one inject range, mtasim run"
        million_scn "$n" 1000 > "$tmp/million.scn"
        measure "range of $n, trace off" "$mtasim" run --quiet --timeout 1200 "$tmp/million.scn"
        measure "range of $n, trace to /dev/null" "$mtasim" run --quiet --timeout 1200 \
            --trace /dev/null "$tmp/million.scn"
        ;;
    *) echo "runpath.sh: unknown part $part" >&2; exit 2 ;;
    esac
done
