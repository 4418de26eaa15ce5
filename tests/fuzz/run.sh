#!/bin/sh
# run.sh - build the fuzz targets and run them: a smoke for CI, or a campaign
#
# SYNOPSIS
#   sh tests/fuzz/run.sh [--smoke] [TARGET...]          30 s each (CI)
#   sh tests/fuzz/run.sh --time S [TARGET...]           S seconds each
#   sh tests/fuzz/run.sh --runs N [TARGET...]           N executions each
#   (--runs N --time S: whichever comes first)
#
# TARGETS
#   parse smtp_reply smtp_server pcap_import run trace_bin report   (default: all, in this order)
#
# DESCRIPTION
#   Builds build-fuzz/ (clang, -Dfuzz=true, AddressSanitizer +
#   UndefinedBehaviorSanitizer; tests/deps.sh installs clang and
#   libclang-rt-14-dev), seeds each target's corpus from the tree
#   (scenarios/, fixtures/bad/, tests/live/ for the scenario targets;
#   fixtures/captures/ for the importer; replies and dialogues cut from the
#   bundled scenarios for the SMTP targets; binary traces of a few bundled
#   scenarios, whole and cut, for trace_bin; and tests/fuzz/regress/TARGET/,
#   each input a past campaign found, fixed since), and runs the targets one after
#   another, one process each.  The corpus grows in
#   build-fuzz/fuzz/corpus/TARGET/ across runs; what a target finds is saved
#   as build-fuzz/fuzz/artifacts/TARGET/crash-* (reproduce: the target's
#   binary with that file as its argument).  "report" is the Python
#   mutation fuzzer of mtasim report's result-JSON reader
#   (tests/fuzz/fuzz_report.py).
#
#   One line per target: executions, seconds, coverage (libFuzzer's cov and
#   ft), corpus size, and ok or FAILED; the last line is
#   "fuzz: N passed, M failed".  Exit status 1 when a target found
#   something.  docs/reliability.md records the campaigns.
#
#   With --time or --runs (a campaign), smtp_server and parse run with
#   -entropic=0 and a -max_len of 4096 and 8192 bytes (docs/reliability.md,
#   "Campaign options"); the smoke keeps libFuzzer's defaults and 65536.
#
# ENVIRONMENT
#   MTASIM_FUZZ_BUILD   build directory (default build-fuzz)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

time_limit= runs_limit= smoke=
while [ $# -gt 0 ]; do
    case $1 in
    --smoke) time_limit=30 smoke=1; shift ;;
    --time) time_limit=$2; shift 2 ;;
    --runs) runs_limit=$2; shift 2 ;;
    -h|--help) sed -n '2,39p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
done
targets=${*:-parse smtp_reply smtp_server pcap_import run trace_bin report}
[ -z "$time_limit$runs_limit" ] && time_limit=30 smoke=1

sh tests/deps.sh
build=${MTASIM_FUZZ_BUILD:-build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized >/dev/null || exit 1
fi
ninja -C "$build" >/dev/null || ninja -C "$build" >&2 || exit 1

work=$build/fuzz
mkdir -p "$work"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"

# seed_TARGET DIR - the target's seed inputs from the tree into DIR
seed_scenarios() {
    find scenarios fixtures/bad tests/live -name '*.scn' ! -name '.*' | while read -r f; do
        cp "$f" "$1/$(printf '%s' "$f" | tr '/' '_')"
    done
}
seed_captures() {
    cp fixtures/captures/*.pcap "$1/"
}
# Binary traces (docs/trace-format.md) of small bundled scenarios without
# plugins, as the build's mtasim writes them (no faketime re-exec: under the
# sanitizers libfaketime's preload hung), and each cut in half.
seed_traces() {
    for f in bounces/dsn-off connect/prohibited-ip dns/caching faults/random-faults delivery/greylist-retry; do
        out="$1/$(printf '%s' "$f" | tr '/' '_').bin"
        "$build/sim/mtasim" run --quiet --no-faketime --trace "$out" --trace-format bin \
            "scenarios/$f.scn" >/dev/null
        head -c "$(( $(wc -c < "$out") / 2 ))" "$out" > "$out.cut"
    done
}
# The replies and client lines of the bundled scenarios, as bytes on the wire.
seed_replies() {
    /usr/bin/python3 - "$1" <<'EOF'
import os, re, sys, glob
out = sys.argv[1]
n = 0
for path in sorted(glob.glob("scenarios/*/*.scn")):
    replies = []
    for line in open(path, encoding="utf-8", errors="replace"):
        m = re.match(r"\s+(greet|ehlo|helo|mail|rcpt|data|dot|quit|rset|bdat|auth|starttls)\s+(\d{3})([ -])(.*?)(\s+(delay|when|probability)\b.*)?$", line)
        if m:
            replies.append(f"{m.group(2)}{m.group(3)}{m.group(4)}\r\n")
    if replies:
        with open(os.path.join(out, f"replies{n}"), "wb") as f:
            f.write(b"\x05" + "".join(replies).encode())
        n += 1
EOF
}
seed_dialogues() {
    /usr/bin/python3 - "$1" <<'EOF'
import os, sys
out = sys.argv[1]
dialogues = [
    b"EHLO client.test\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n",
    b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@y.test>\r\nRCPT TO:<z@y.test>\r\nRSET\r\nNOOP\r\nQUIT\r\n",
    b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nMAIL FROM:<a@b.test> SIZE=100\r\nRCPT TO:<c@d.test>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n",
    b"EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\nSTARTTLS\r\nEHLO c\r\nVRFY x\r\nFOO\r\n",
    b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n..dot\r\n.\r\nMAIL FROM:<a@b.test>\r\n",
]
for i, d in enumerate(dialogues):
    for flags in (0, 4, 8, 3):
        with open(os.path.join(out, f"dialogue{i}-{flags}"), "wb") as f:
            f.write(bytes([flags, 255, 0]) + d)
    with open(os.path.join(out, f"dialogue{i}-bytes"), "wb") as f:
        f.write(bytes([4, 0, 1]) + d)
EOF
}

passed=0 failed=0
for t in $targets; do
    corpus=$work/corpus/$t seeds=$work/seeds/$t artifacts=$work/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    rm -rf "$seeds"
    mkdir -p "$seeds"
    if [ "$t" = report ]; then
        # shellcheck disable=SC2086  # the limits are words
        if /usr/bin/python3 tests/fuzz/fuzz_report.py --mtasim "$top/$build/sim/mtasim" \
                ${time_limit:+--time $time_limit} ${runs_limit:+--runs $runs_limit} \
                --artifacts "$artifacts"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
        continue
    fi
    case $t in
    parse|run) seed_scenarios "$seeds"; dict=tests/fuzz/scn.dict ;;
    pcap_import) seed_captures "$seeds"; dict= ;;
    smtp_reply) seed_replies "$seeds"; dict=tests/fuzz/smtp.dict ;;
    smtp_server) seed_dialogues "$seeds"; dict=tests/fuzz/smtp.dict ;;
    trace_bin) seed_traces "$seeds"; dict= ;;
    *) echo "run.sh: unknown target $t" >&2; exit 2 ;;
    esac
    # What a campaign found, fixed since: replayed first, every time.
    if [ -d "tests/fuzz/regress/$t" ]; then
        cp tests/fuzz/regress/"$t"/* "$seeds/"
    fi
    # Campaign options (not the smoke's, which stays as it was); see
    # docs/reliability.md, "Campaign options", for the measurements.
    #   -entropic=0  libFuzzer's entropic schedule spent 43% of a grown
    #                smtp_server campaign in UpdateFeatureFrequency;
    #   -max_len     the product's own bound on what one input can reach:
    #                the server's 512-byte command line (RFC 5321
    #                4.5.3.1.4) eight times over; the parser's line limit
    #                (SCN_MAX_LINE, 4096) twice, beyond the largest bundled
    #                scenario (4.8 KB).
    max_len=65536 extra=
    if [ -z "$smoke" ]; then
        case $t in
        smtp_server) max_len=4096 extra=-entropic=0 ;;
        parse) max_len=8192 extra=-entropic=0 ;;
        esac
    fi
    bin=$build/tests/fuzz/fuzz_$t
    budget="${time_limit:+-max_total_time=$time_limit} ${runs_limit:+-runs=$runs_limit}"
    log=$work/$t.log
    start=$(date +%s)
    rc=0
    # shellcheck disable=SC2086  # budget and the dictionary option are words
    "$bin" $budget -timeout=25 -rss_limit_mb=3072 -max_len=$max_len $extra -print_final_stats=1 \
        ${dict:+-dict=$dict} -artifact_prefix="$artifacts/" "$corpus" "$seeds" \
        >"$log" 2>&1 || rc=$?
    secs=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -n 1)
    size=$(find "$corpus" -type f | wc -l)
    if [ "$rc" = 0 ]; then
        echo "fuzz $t: ${execs:-?} executions in ${secs} s, ${cov:-cov: ?}, corpus $size: ok"
        passed=$((passed + 1))
    else
        echo "fuzz $t: ${execs:-?} executions in ${secs} s, ${cov:-cov: ?}, corpus $size: FAILED (exit $rc)"
        grep -E 'ERROR|runtime error|fuzz oracle|SUMMARY|Test unit written' "$log" | head -n 20 || true
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
