#!/bin/sh
# faketime.sh - what the libfaketime bridge costs: scenario throughput with and without it
#
# SYNOPSIS
#   sh tests/bench/faketime.sh [N]        (N runs per measurement, default 200)
#
# DESCRIPTION
#   Builds (tests/build.sh), writes two scenarios into a temporary
#   directory - 20 messages to a remote that defers every recipient of its
#   first two sessions (22 connections), one with
#   conn_counter.so (a plugin that never reads the clock: the bridge's
#   updates are the whole cost) and one with faketime_stamp.so (which reads
#   four clocks in every one of its hook calls: libfaketime's per-call cost
#   too) - and times "mtasim run --quiet" of the same scenario N times in one
#   command, with the bridge and with --no-faketime, alternately.  Each
#   figure is the median of 5 repetitions; the output is runs per second and
#   the bridge's cost in percent.  docs/faketime.md quotes a run of it.
#   Any failed run stops the bench with its output (exit status 1).
#
#   Then the cost of one clock read from plugin code: a small C program
#   reads gettimeofday() with and without libfaketime preloaded (as mtasim
#   sets it up), right after $FAKETIME changed and with it unchanged.
#
# ENVIRONMENT
#   MTASIM_BUILD   the build directory (default build)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
n=${1:-200}
mtasim=$(sh tests/build.sh | tail -n 1)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# scenario PLUGIN - 20 messages; the remote's first two sessions defer
scenario() {
    printf 'scenario bench\ninclude %s/scenarios/world.inc\nplugin %s\n' "$top" "$1"
    printf 'remote 198.51.100.10 name mx1.example.com\n'
    printf '  rcpt 451 4.7.1 later   when session <= 2\n  rcpt 250 2.1.5 ok\n'
    i=1
    while [ "$i" -le 20 ]; do
        printf 'inject %d from <a@sender.test> to <r%d@example.com> at %dms\n' "$i" "$i" "$((i * 37))"
        i=$((i + 1))
    done
}

# now - seconds since an arbitrary point, with nanoseconds (GNU date)
now() { date +%s.%N; }

# timed FILE CMD... - append CMD's wall time in seconds to FILE; a failed run stops the bench
timed() {
    out=$1
    shift
    t0=$(now)
    if ! "$@" >"$tmp/out" 2>&1; then
        cat "$tmp/out" >&2
        echo "faketime.sh: a run failed: $*" | cut -c1-200 >&2
        exit 1
    fi
    t1=$(now)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' >>"$out"
}

# median FILE - the middle one of the five times in FILE
median() { sort -n "$1" | sed -n 3p; }

printf '%-18s %-14s %10s %10s\n' plugin mode "median s" "runs/s"
for plugin in conn_counter.so faketime_stamp.so; do
    scenario "$plugin" >"$tmp/bench.scn"
    files=$(i=0; while [ "$i" -lt "$n" ]; do printf '%s ' "$tmp/bench.scn"; i=$((i + 1)); done)
    : >"$tmp/with"
    : >"$tmp/without"
    # Interleaved, so that a busy machine slows both sides alike.
    k=0
    while [ "$k" -lt 5 ]; do
        # shellcheck disable=SC2086  # one argument per run
        timed "$tmp/with" "$mtasim" run --quiet $files
        # shellcheck disable=SC2086
        timed "$tmp/without" "$mtasim" run --quiet --no-faketime $files
        k=$((k + 1))
    done
    awk -v p="$plugin" -v n="$n" -v w="$(median "$tmp/with")" -v o="$(median "$tmp/without")" 'BEGIN {
        printf "%-18s %-14s %10.3f %10.1f\n", p, "bridge", w, n / w
        printf "%-18s %-14s %10.3f %10.1f\n", p, "no-faketime", o, n / o
        printf "%-18s %-14s %9.1f%%\n", p, "bridge cost", (w / o - 1) * 100 }'
done

# The per-read cost, measured the way a plugin reads the clock.
lib=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
if [ -n "$lib" ] && command -v cc >/dev/null; then
    cat >"$tmp/reads.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
/* The simulator's update: rewrite the microseconds of $FAKETIME in place. */
static char env[64] = "FAKETIME=2020-03-28 13:14:15.0000000005";
static double ns_since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e9 + (double)(b.tv_nsec - a->tv_nsec);
}
int main(void)
{
    const long n = 200000;
    struct timespec a;
    struct timeval tv;
    putenv(env);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        env[29 + i % 6] = (char)('0' + i % 10);
        gettimeofday(&tv, NULL);
    }
    printf("  gettimeofday after an update  %6.0f ns\n", ns_since(&a) / n);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        gettimeofday(&tv, NULL);
    printf("  gettimeofday, time unchanged  %6.0f ns\n", ns_since(&a) / n);
    return 0;
}
CEOF
    cc -O2 "$tmp/reads.c" -o "$tmp/reads"
    echo "one clock read in plugin code, without libfaketime:"
    "$tmp/reads"
    echo "the same under the bridge's settings ($lib):"
    LD_PRELOAD=$lib FAKETIME="1970-01-01 00:00:00.0000000005" FAKETIME_NO_CACHE=1 \
        FAKETIME_DONT_FAKE_MONOTONIC=1 NO_FAKE_STAT=1 TZ=UTC "$tmp/reads"
fi
