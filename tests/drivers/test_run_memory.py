"""A long `mtasim run` keeps what is in flight, not what is done.

Without --json, `mtasim run` judges the trace as it streams and folds each
finished message into the few summaries an expectation reads, then lets the
core free it (sim/run/summaries.h, mta_release_done in core/mta.h).  So the
peak memory of a generator scenario must not grow with the messages already
delivered.  Before that, each message cost about 1.9 KB that stayed to the
end (the core's message, a summary, its JSON for the parent process): 200,000
messages peaked at about 370 MiB where 2,000 took 12.

With --json --json-trace each run's records (megabytes for a scenario with
a thousand connections) go to the file as the run finishes
(result_json.h): the parent does not keep them all to the end, so two
runs of such a scenario peak about where one does.  Before, two runs of
network/fds-beyond-1023.scn peaked at 214 MiB where one took 115.

This is a memory test, not a timing test: peak RSS is the same whatever the
machine's load.  Each run's peak is read with getrusage(RUSAGE_CHILDREN) in
a Python process of its own, so the other tests' children do not count; it
covers `mtasim run` and the child that runs the scenario.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT

DOMAINS = 10
SMALL, LARGE = 2_000, 200_000
# What 198,000 more messages may add, in KiB.  The run path keeps per
# message only the duplicate-delivery check's (message, recipient) entry
# and the id for the "injected but no record" check, about 130 bytes: some
# 25 MiB here.  Keeping every message again, as before, adds about 360 MiB.
GROWTH_LIMIT_KIB = 96 * 1024

MEASURE = r"""
import json, resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True, errors="replace")
print(json.dumps({"rc": p.returncode, "out": p.stdout + p.stderr,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def scenario(count):
    """count messages from one range line, spread over a day, to DOMAINS
    accepting domains (one remote each), and an expectation on the last"""
    lines = ["scenario run-memory", "epoch 2020-03-26T00:00:00Z", "run for 25h", "dns latency 2ms"]
    for d in range(DOMAINS):
        lines += [f"dns d{d}.test MX 10 mx{d}.test", f"dns mx{d}.test A 10.0.0.{d + 1}",
                  f"remote 10.0.0.{d + 1} name mx{d}.test"]
    lines += [f"inject 1..{count} from <s@src.test> to <u@d{{0..{DOMAINS - 1}}}.test> spread 24h",
              f"expect message {count} delivered",
              f"expect count trace queue delivered = {count}"]
    return "\n".join(lines) + "\n"


def peak_kib(mtasim, *args):
    """mtasim run --quiet with args (options, scenario paths); its peak RSS in
    KiB (the runs must pass)."""
    env = dict(os.environ)
    # Under AddressSanitizer freed blocks wait in a quarantine (256 MiB by
    # default) before reuse: that would be measured, not the run's own.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "quarantine_size_mb=0"]))
    p = subprocess.run([sys.executable, "-c", MEASURE, str(mtasim), "run", "--quiet",
                        "--timeout", "600", *map(str, args)],
                       capture_output=True, text=True, env=env, timeout=900, check=False)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["rc"] == 0, f"mtasim run {' '.join(map(str, args))} exited {res['rc']}:\n{res['out']}"
    return res["maxrss_kib"]


def test_memory_does_not_grow_with_finished_messages(mtasim, tmp_path):
    small, large = tmp_path / "small.scn", tmp_path / "large.scn"
    small.write_text(scenario(SMALL))
    large.write_text(scenario(LARGE))
    base = peak_kib(mtasim, small)
    peak = peak_kib(mtasim, large)
    growth = peak - base
    assert growth <= GROWTH_LIMIT_KIB, (
        f"{LARGE} messages peaked at {peak // 1024} MiB, {SMALL} at {base // 1024} MiB: "
        f"{growth // 1024} MiB more, over the {GROWTH_LIMIT_KIB // 1024} MiB a run that keeps "
        "only what is in flight needs (sim/run/summaries.h)")


def test_an_expectation_on_a_finished_message_still_reads_its_summary(mtasim, tmp_path):
    """The summaries an expectation names survive their messages' release:
    a wrong fate for an early message (released long before the end) fails
    with the fate the message really had."""
    path = tmp_path / "early.scn"
    path.write_text(scenario(20_000).replace("expect message 20000 delivered",
                                             "expect message 3 bounced"))
    p = subprocess.run([str(mtasim), "run", "--timeout", "600", str(path)], capture_output=True,
                       text=True, timeout=900, check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "message 3: expected bounced, got delivered" in p.stdout, p.stdout


def test_json_trace_is_not_kept_until_the_end(mtasim, tmp_path):
    big = REPO_ROOT / "scenarios" / "network" / "fds-beyond-1023.scn"
    out = tmp_path / "r.json"
    one = peak_kib(mtasim, "--json", out, "--json-trace", big)
    two = peak_kib(mtasim, "--json", out, "--json-trace", big, big)
    assert len(json.loads(out.read_text())["runs"]) == 2
    assert two - one < one // 2, (
        f"2 runs with --json-trace peaked at {two // 1024} MiB, 1 at {one // 1024} MiB: "
        "the parent keeps the runs' records (sim/run/result_json.h)")
