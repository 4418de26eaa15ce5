#!/bin/sh
# targets.sh - measure mtasim against the performance targets (docs/performance.md)
#
# SYNOPSIS
#   sh tests/bench/targets.sh [RUNS]        (default 5; medians)
#
# DESCRIPTION
#   Runs "mtasim bench" for each target and prints its figures:
#     1. mix, 100k messages, 1k domains, 24 h, tracing off
#     2. the same with the full trace written to a file
#     3. reuse, 200k messages: deliveries per second on reused connections
#     4. mix at 10k, 100k and 1M messages: cost per message
#     5. queued, 1M messages: bytes per queued message, peak RSS
#     6. reuse, 100k messages over 10, 300, 1000 and 3000 domains: the cost
#        per event as simultaneous connections grow (32 per domain: 96,000
#        connections open at once at 3000 domains, past the 1,021
#        descriptors a run with plugins has)
#   Takes a few minutes on 2 cores; run it on a quiet machine.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-5}
mtasim=${MTASIM:-$top/build-release/sim/mtasim}
if [ ! -x "$mtasim" ]; then
    built=$(MTASIM_BUILD=build-release MTASIM_BUILDTYPE=release sh "$top/tests/build.sh") || exit 1
    mtasim=$(printf '%s\n' "$built" | tail -n 1)
fi
trace=$(mktemp)
trap 'rm -f "$trace"' EXIT

echo "== 1. mix 100k/1k/24h, tracing off"
"$mtasim" bench --runs "$runs"
echo "== 2. mix 100k/1k/24h, full trace to a file"
"$mtasim" bench --runs "$runs" --trace "$trace"
echo "   trace file: $(wc -c < "$trace") bytes"
echo "== 3. reuse 200k"
"$mtasim" bench --mode reuse --messages 200000 --runs "$runs"
for n in 10000 100000 1000000; do
    echo "== 4. mix $n messages, 1k domains, 24h"
    "$mtasim" bench --messages "$n" --runs "$runs"
done
echo "== 5. queued 1M"
"$mtasim" bench --mode queued --messages 1000000 --runs "$runs"
for d in 10 300 1000 3000; do
    echo "== 6. reuse 100k messages, $d domains"
    "$mtasim" bench --mode reuse --messages 100000 --domains "$d" --runs "$runs"
done
