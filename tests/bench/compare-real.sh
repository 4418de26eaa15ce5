#!/bin/sh
# compare-real.sh - the simulator beside a real delivery loop, in one run
#
# SYNOPSIS
#   sh tests/bench/compare-real.sh [MESSAGES]         (default 50000)
#
# DESCRIPTION
#   Pushes MESSAGES messages through real sockets on loopback with
#   Postfix's smtp-source into smtp-sink (20 sessions, connections reused (-d)),
#   then runs "mtasim bench --mode reuse" with the same number of messages,
#   and prints both rates and their ratio.  smtp-sink and smtp-source come
#   with Debian's postfix package; as root this script installs it without
#   prompting, otherwise it says how.  Loopback only; both stop by
#   themselves (smtp-sink is killed at the end).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-50000}
mtasim=${MTASIM:-$top/build-release/sim/mtasim}
port=${MTASIM_SINK_PORT:-22525}
if [ ! -x "$mtasim" ]; then     # the release build, as targets.sh measures
    built=$(MTASIM_BUILD=build-release MTASIM_BUILDTYPE=release sh "$top/tests/build.sh") || exit 1
    mtasim=$(printf '%s\n' "$built" | tail -n 1)
fi

if ! command -v smtp-sink >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-sink ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "needs Postfix's smtp-sink: run as root:" >&2
        echo "  echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections" >&2
        echo "  apt-get install -y postfix" >&2
        exit 2
    fi
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
fi
PATH=$PATH:/usr/sbin

# smtp-sink as root must drop privileges (-u); -c counts, -L no logging.
sink_user=$([ "$(id -u)" -eq 0 ] && echo "-u nobody" || echo "")
# shellcheck disable=SC2086
smtp-sink $sink_user -c 127.0.0.1:"$port" 1000 >/dev/null 2>&1 &
sink=$!
trap 'kill $sink 2>/dev/null || true' EXIT INT TERM
sleep 1

start=$(date +%s.%N)
smtp-source -d -s 20 -m "$n" -l 200 -t rcpt@example.com -f sender@bench.test 127.0.0.1:"$port"
end=$(date +%s.%N)
real_rate=$(awk -v n="$n" -v a="$start" -v b="$end" 'BEGIN { print n / (b - a) }')

sim=$("$mtasim" bench --mode reuse --messages "$n" --runs 3)
echo "$sim"
sim_rate=$(echo "$sim" | sed -n 's/.*(\([0-9.]*\) deliveries\/s).*/\1/p')

printf 'real sockets (smtp-source -d -> smtp-sink, 20 sessions): %.0f messages/s\n' "$real_rate"
printf 'mtasim, simulated (reuse mode, medians):               %.0f deliveries/s\n' "$sim_rate"
printf 'ratio simulated / real:                                %.1fx\n' \
    "$(awk -v s="$sim_rate" -v r="$real_rate" 'BEGIN { print s / r }')"
