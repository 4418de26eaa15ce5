"""What the trace digest covers (docs/results.md: the SHA-256 of the text trace).

The digest is what determinism is judged by (--check-determinism, the
cross-build check, CI replays), so it must cover every record.  For a set of
scenarios that between them produce every kind of trace record:

* the SHA-256 of each run's record lines in the ``--trace`` file (the lines
  after its ``# scenario`` header), computed here with hashlib, equals the
  JSON ``digest`` and starts with the digest printed on the PASS line;
* the text trace holds exactly the records of the JSON trace
  (``--json-trace``), in order, with the same time, kind and name: a kind of
  record cannot be left out of the text (and so of the digest) while the
  JSON shows it;
* every record kind the scenario language documents occurs in these runs,
  so each of them is shown to reach the digest; changing one line of any
  kind changes the digest.
"""

import hashlib
import json
import re

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

# One scenario per part of the world, between them every record kind.
SCENARIOS = ["scenarios/delivery/greylist-retry.scn", "scenarios/dns/caching.scn",
             "scenarios/faults/random-faults.scn", "scenarios/events/sequence.scn",
             "scenarios/plugins/order-first-wins.scn", "scenarios/plugins/faketime-retry.scn",
             "scenarios/inbound/auth.scn", "scenarios/mailerq/every-callback.scn",
             "scenarios/connect/bind-unavailable.scn", "scenarios/network/jitter.scn"]
# docs/scenario-language.md, "expect trace in order": the kinds of record.
KINDS = {"hook", "provider", "smtp", "conn", "queue", "dns", "remote", "inject", "inbound", "mq",
         "client", "plugin", "event"}
LINE = re.compile(r"^(\d+):(\d\d):(\d\d)\.(\d{6}) (\S+) (\S+)")


def t_us(match):
    h, m, s, us = (int(match.group(i)) for i in range(1, 5))
    return ((h * 60 + m) * 60 + s) * 1000000 + us


def text_runs(text):
    """[(header, [record lines with their line ends])] of a --trace file."""
    runs = []
    for line in text.splitlines(keepends=True):
        if line.startswith("# scenario "):
            runs.append((line, []))
        else:
            assert runs, f"a record before any header: {line!r}"
            runs[-1][1].append(line)
    return runs


def test_digest_is_the_sha256_of_the_text_trace(mtasim, tmp_path):
    trace, out = tmp_path / "trace.txt", tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--trace", str(trace), "--json", str(out), "--json-trace",
                               *SCENARIOS], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(out.read_text())["runs"]
    texts = text_runs(trace.read_text(encoding="utf-8"))
    assert len(runs) == len(texts) == len(SCENARIOS)
    printed = re.findall(r"^PASS (\S+)  seed \d+  \d+ expectations?  digest ([0-9a-f]+)$",
                         proc.stdout, re.M)
    assert [f for f, _ in printed] == SCENARIOS, proc.stdout
    kinds = set()
    for run, (header, lines), (_, shown) in zip(runs, texts, printed):
        assert header.startswith(f"# scenario {run['scenario']}  file {run['file']}  seed "), header
        body = "".join(lines).encode("utf-8")
        digest = hashlib.sha256(body).hexdigest()
        assert run["digest"] == digest, run["file"]
        assert len(shown) >= 12 and digest.startswith(shown), (run["file"], shown)
        # The text holds every record of the JSON trace, in order.
        parsed = [LINE.match(line) for line in lines]
        assert all(parsed), [line for line, m in zip(lines, parsed) if not m][:3]
        assert [(t_us(m), m.group(5), m.group(6)) for m in parsed] == \
            [(rec[0], rec[1], rec[2]) for rec in run["trace"]], run["file"]
        assert run["trace_records"] == len(lines)
        kinds |= {rec[1] for rec in run["trace"]}
        # Any one line changed, of any kind: another digest.
        for kind in {rec[1] for rec in run["trace"]}:
            i = next(i for i, rec in enumerate(run["trace"]) if rec[1] == kind)
            changed = lines[:i] + [lines[i].replace(" ", "  ", 1)] + lines[i + 1:]
            assert hashlib.sha256("".join(changed).encode()).hexdigest() != run["digest"]
    assert kinds == KINDS, f"kinds not exercised: {sorted(KINDS - kinds)}, " \
                           f"undocumented: {sorted(kinds - KINDS)}"


def test_seeds_give_the_digests_of_their_text_traces(mtasim, tmp_path):
    """--seeds: one run per seed, each digest that of its own text trace, and they differ."""
    trace, out = tmp_path / "trace.txt", tmp_path / "r.json"
    proc = run_mtasim(mtasim, ["--quiet", "--seeds", "1..4", "--trace", str(trace), "--json",
                               str(out), "scenarios/faults/random-faults.scn"], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout
    runs = json.loads(out.read_text())["runs"]
    texts = text_runs(trace.read_text(encoding="utf-8"))
    assert [r["seed"] for r in runs] == [1, 2, 3, 4]
    assert [h.rsplit(" ", 1)[1].strip() for h, _ in texts] == ["1", "2", "3", "4"]
    digests = [hashlib.sha256("".join(lines).encode()).hexdigest() for _, lines in texts]
    assert digests == [r["digest"] for r in runs]
    assert len(set(digests)) == 4
