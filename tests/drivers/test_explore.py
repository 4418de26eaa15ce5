"""mtasim explore end to end (docs/explore.md).

  * the demonstration: the retry_ledger fixture plugin crashes only when a
    421 comes on a retry after a session was lost; explore finds it within
    the first 70 seeds of clean-delivery (the first failing seed is 67),
    shrinks it to a scenario of a few fault lines, and mtasim run on that
    file, with the same plugin, exits 4 as the exploration did;
  * the bounded CI exploration: bundled scenarios under hundreds of fault
    schedules, no plugin: the core raises no alarm (exit 0);
  * shards: N shard processes find the same failures, with the same shrunk
    files, as one process; --jobs does not change anything either;
  * 'expect always': checked under exploration, shrunk like a crash
    (exit 1 reproduced by mtasim run); ordinary expectations are not;
  * usage errors exit 2;
  * the shrinker also drops recipients, shortens ranges of messages and
    the run, and drops two faults at once when no single drop keeps the
    failure;
  * the faults include DNS that changes over time (outages, flaps),
    multi-line replies and replies cut on the wire.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.drivers.mtasim_pytest import REPO_ROOT

CLEAN = "scenarios/delivery/clean-delivery.scn"
LEDGER = "retry_ledger.so"
FIRST_LEDGER_SEED = 67      # docs/explore.md quotes it


def explorer():
    """The explorer's own modules (reports/), for tests of one piece."""
    if str(REPO_ROOT / "reports") not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / "reports"))
    from explore_faults import Fault
    from explore_scenario import Scenario
    from explore_shrink import shrink
    return Fault, Scenario, shrink


def explore(mtasim, args, cwd=REPO_ROOT, timeout=600):
    return subprocess.run([mtasim, "explore", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def fail_lines(out):
    return [ln for ln in out.splitlines() if ln.startswith("FAIL ")]


def test_finds_and_shrinks_the_ledger_bug(mtasim, tmp_path):
    out_dir = tmp_path / "out"
    proc = explore(mtasim, [CLEAN, "--seeds", "1..70", "--plugin", LEDGER, "--out", str(out_dir),
                            "--json", str(tmp_path / "e.json")])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fails = fail_lines(proc.stdout)
    assert fails, proc.stdout
    assert fails[0].startswith(f"FAIL {CLEAN}  seed {FIRST_LEDGER_SEED}  exit 4  plugin "
                               f"{LEDGER} crashed with SIGABRT in hook log_transient_failure_v1"), fails
    shrunk = out_dir / f"clean-delivery-seed{FIRST_LEDGER_SEED}.scn"
    assert f"  shrunk: {shrunk}" in proc.stdout, proc.stdout
    assert "NOT REPRODUCED" not in proc.stdout
    text = shrunk.read_text()
    assert text.startswith(f"# shrunk by mtasim explore from {CLEAN}, seed {FIRST_LEDGER_SEED}: ")
    code = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    remote = code.index("remote 198.51.100.10 name mx1.example.com")
    faults = [ln for ln in code[remote + 1:] if ln.startswith("  ") and "connect accept" not in ln]
    # What the bug needs: a session lost without a reply, then a 421 on a
    # later session (at seed 67 with a 554 banner in between: without it the
    # 421 would come on the session that delivers).
    assert 2 <= len(faults) <= 3, text
    assert re.search(r"\b(reset|drop|close|stall)\b.*when session 1$", faults[0]), text
    assert re.search(r" 421 .*when session [23]$", faults[-1]), text
    # The untouched world.inc stays an include: a dozen lines in all.
    assert "include ../../" in text and len(code) <= 12, text
    # The shrunk scenario stands alone: mtasim run reproduces the crash.
    run = subprocess.run([mtasim, "run", "--plugin", LEDGER, str(shrunk)], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "retry_ledger.so crashed with SIGABRT in hook log_transient_failure_v1" in run.stdout
    # Without the plugin it passes: the crash is the plugin's, not the core's.
    alone = subprocess.run([mtasim, "run", str(shrunk)], cwd=tmp_path, capture_output=True,
                           text=True, check=False)
    assert alone.returncode == 0, alone.stdout
    # The results: every seed a run, the failures with their shrunk file.
    doc = json.loads((tmp_path / "e.json").read_text())
    assert len(doc["runs"]) == 70
    failed = [r for r in doc["runs"] if r["exit_code"] != 0]
    assert doc["summary"] == {"passed": 70 - len(failed), "failed": len(failed), "errors": 0}
    assert failed[0]["explore"]["seed"] == FIRST_LEDGER_SEED
    assert failed[0]["explore"]["shrunk"] == str(shrunk)
    assert failed[0]["verdict"] == "plugin" and failed[0]["file"] == CLEAN


def test_bounded_ci_exploration_raises_no_false_alarm(mtasim, tmp_path):
    """The core under 3 x 150 fault schedules: nothing fails (about a minute on 2 cores)."""
    scenarios = [CLEAN, "scenarios/delivery/greylist-retry.scn",
                 "scenarios/delivery/per-recipient-fates.scn"]
    proc = explore(mtasim, [*scenarios, "--seeds", "1..150", "--jobs", "2", "--out",
                            str(tmp_path / "out")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == \
        "explored 3 scenarios x 150 seeds: 450 passed, 0 failed (0 distinct)", proc.stdout
    assert not (tmp_path / "out").exists()


def test_shards_and_jobs_give_the_same_failures(mtasim, tmp_path):
    args = [CLEAN, "--seeds", "1..100", "--plugin", LEDGER]
    # One process with two jobs, two shards with one each.
    one = explore(mtasim, [*args, "--jobs", "2", "--out", str(tmp_path / "one"),
                           "--json", str(tmp_path / "one.json")])
    assert one.returncode == 1
    shards = []
    for i in range(2):
        p = explore(mtasim, [*args, "--shard", f"{i}/2", "--out",
                             str(tmp_path / "shards"), "--json", str(tmp_path / f"s{i}.json")])
        assert p.returncode in (0, 1), p.stdout + p.stderr
        assert "(shard %d/2)" % i in p.stdout.splitlines()[-1], p.stdout
        shards.append(p)
    merged = sorted(ln for p in shards for ln in fail_lines(p.stdout))
    assert merged == sorted(fail_lines(one.stdout))
    seeds = sorted(int(re.search(r"seed (\d+)", ln).group(1)) for ln in merged)
    # Shard i holds the seeds s with (s - 1) mod 2 == i: the lowest failing
    # seed's shard shrank it exactly as the single process did.
    first = seeds[0]
    name = f"clean-delivery-seed{first}.scn"
    assert (tmp_path / "shards" / name).read_bytes().replace(b"/shards/", b"/one/") == \
        (tmp_path / "one" / name).read_bytes()
    # mtasim report merges the shards' results into the single run's report
    # (the wall times aside; the shrunk file's folder is the --out given).
    def markdown(*files):
        p = subprocess.run([mtasim, "report", *map(str, files), "--markdown", "-"],
                           capture_output=True, text=True, check=True)
        return re.sub(r"[0-9.]+ ms", "T ms", p.stdout).replace("/shards/", "/one/")
    merged_report = markdown(*(tmp_path / f"s{i}.json" for i in range(2)))
    assert merged_report == markdown(tmp_path / "one.json")
    assert f"explored: seed {first}, check plugin {LEDGER} crashed" in merged_report


ALWAYS = """\
scenario always-demo
include {root}/scenarios/world.inc
remote 198.51.100.10 name mx1.example.com
inject 1 from <alice@sender.test> to <bob@example.com>
# Fails under most faults: not checked by explore.
expect message 1 delivered within 1s
# Holds whatever the remote does - unless the run is slowed past an hour.
expect always message 1 delivered within 1h
"""


def test_expect_always(mtasim, tmp_path):
    scn = tmp_path / "always.scn"
    scn.write_text(ALWAYS.format(root=REPO_ROOT))
    plain = subprocess.run([mtasim, "run", str(scn)], capture_output=True, text=True, check=False)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "2 expectations" in plain.stdout
    proc = explore(mtasim, [str(scn), "--seeds", "1..40", "--out", str(tmp_path / "out")],
                   cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fails = fail_lines(proc.stdout)
    checks = {ln.split("  ", 2)[2] for ln in fails}
    assert checks == {"exit 1  expectation failed: expect always message 1 delivered within 1h"}, fails
    shrunk = re.search(r"  shrunk: (\S+)", proc.stdout).group(1)
    text = Path(shrunk).read_text()
    assert "within 1s" not in text and "expect always message 1 delivered within 1h" in text
    # A cut-off alone would falsify 'within 1h' without any fault: an exit-1
    # failure keeps its run, and keeps a fault that delays the message.
    assert "run for" not in text, text
    assert re.search(r"^  \S.* when session \d|^config |^dns ", text, re.M), text
    run = subprocess.run([mtasim, "run", shrunk], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert run.returncode == 1, run.stdout
    # The failure names the expectation as written, 'always' included.
    assert re.search(r"\(line \d+: expect always message 1 delivered within 1h\)", run.stdout), \
        run.stdout


def test_usage_errors(mtasim, tmp_path):
    for args, says in [([CLEAN, "--seeds", "5..1"], "--seeds wants a range A..B"),
                       ([CLEAN, "--seeds", "1..5", "--shard", "3/3"], "--shard wants I/N"),
                       ([CLEAN, "--seeds", "1..5", "--jobs", "0"], "--jobs wants 1 to 64"),
                       ([CLEAN], "the following arguments are required: --seeds")]:
        p = explore(mtasim, args)
        assert p.returncode == 2, (args, p.stdout, p.stderr)
        assert says in p.stderr, p.stderr
    missing = explore(mtasim, ["nope.scn", CLEAN, "--seeds", "1..3", "--out", str(tmp_path / "o")])
    assert missing.returncode == 2
    assert "ERROR nope.scn:1:1: cannot open scenario" in missing.stdout
    assert "explored 1 scenario x 3 seeds: 3 passed" in missing.stdout
    assert os.path.exists(REPO_ROOT / CLEAN)


def test_progress_on_stderr_only(mtasim, tmp_path):
    env = dict(os.environ, MTASIM_PROGRESS="1")
    p = subprocess.run([mtasim, "explore", CLEAN, "--seeds", "1..3", "--out", str(tmp_path / "o")],
                       cwd=REPO_ROOT, capture_output=True, text=True, env=env, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "mtasim explore [3/3]  0 failed  " in p.stderr
    assert p.stdout == "explored 1 scenario x 3 seeds: 3 passed, 0 failed (0 distinct)\n"


MANY = """\
scenario many-recipients
include {root}/scenarios/world.inc
remote 198.51.100.10 name mx1.example.com
  connect accept latency 20ms
inject 1 from <alice@sender.test> to <bob@example.com>, <carol@example.com>,<dave@example.com>
run for 2d
"""


def shrunk_ledger_crash(mtasim, tmp_path, name, text, seed):
    """Explore scenario text at one seed with the ledger plugin; the shrunk
    file, proven to crash the plugin again under mtasim run (exit 4)."""
    scn = tmp_path / f"{name}.scn"
    scn.write_text(text.format(root=REPO_ROOT))
    proc = explore(mtasim, [str(scn), "--seeds", f"{seed}..{seed}", "--plugin", LEDGER, "--out",
                            str(tmp_path / "out")], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    shrunk = tmp_path / "out" / f"{name}-seed{seed}.scn"
    run = subprocess.run([mtasim, "run", "--plugin", LEDGER, str(shrunk)], cwd=tmp_path,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 4, run.stdout + run.stderr
    return shrunk.read_text().splitlines()


def test_shrinks_recipients_and_the_run(mtasim, tmp_path):
    """The ledger bug needs one recipient and half an hour, not three and two days."""
    lines = shrunk_ledger_crash(mtasim, tmp_path, "many", MANY, 67)
    injects = [ln for ln in lines if ln.startswith("inject ")]
    assert injects == ["inject 1 from <alice@sender.test> to <dave@example.com>"], lines
    # The crash comes at 00:27:15 of virtual time: 30m is the shortest
    # round 'run for' that still reaches it (docs/explore.md).
    assert [ln for ln in lines if ln.startswith("run for")] == ["run for 30m"], lines


def test_shrink_drops_two_faults_when_one_is_stuck(tmp_path):
    """Two faults that only matter together (each alone changes the outcome,
    both gone does not) are dropped as a pair: the shrinker's step 1
    (reports/explore_shrink.py), on a fake runner judging the texts."""
    Fault, Scenario, shrink = explorer()

    scn = tmp_path / "pair.scn"
    scn.write_text(MANY.format(root=REPO_ROOT))
    sc = Scenario.load(str(scn))
    a = Fault("reply", "198.51.100.10", session=1, cmd="mail", code=450, nth=None)
    b = Fault("reply", "198.51.100.10", session=1, cmd="rcpt", code=550, nth=None)
    c = Fault("reply", "198.51.100.10", session=1, cmd="dot", code=421, nth=None)
    want = (4, "plugin crashed")

    class FakeRunner:
        workdir = str(tmp_path)
        calls = 0

        def run(self, texts):
            out = []
            for t in texts:
                has = ["  mail 450" in t, "  rcpt 550" in t, "  dot 421" in t]
                failing = has[2] and has[0] == has[1]
                out.append({"exit_code": 4, "verdict": "plugin", "error": "plugin crashed"}
                           if failing else {"exit_code": 0})
            return out

    faults, cut, used = shrink(sc, 1, [a, b, c], want, FakeRunner(), 300)
    assert faults == [c], faults
    assert 0 < used <= 300


FLAP = """\
scenario dns-flap
include {root}/scenarios/world.inc
remote 198.51.100.10 name mx1.example.com
dns flap.test MX 10 mx1.example.com ttl 5
inject 1 from <alice@sender.test> to <x@flap.test>
inject 2 from <alice@sender.test> to <y@flap.test> at 2m
"""


def test_dns_faults_that_change_over_time(mtasim, tmp_path):
    """DNS windows (docs/scenario-language.md "Answers that change"): the
    explorer draws outages ('until') and flaps ('from ... until'), the
    records around them never contradict the failure, and a flap rendered
    into a scenario answers, fails, then answers again."""
    proc = explore(mtasim, [CLEAN, "--seeds", "1..40", "--out", str(tmp_path / "o"),
                            "--json", str(tmp_path / "e.json")])
    assert proc.returncode == 0, proc.stdout + proc.stderr     # no contradiction (exit 2)
    lines = [t for r in json.loads((tmp_path / "e.json").read_text())["runs"]
             for t in r["explore"]["faults"]]
    rx = r"^dns \S+ (MX|A|AAAA) (SERVFAIL|TIMEOUT|NXDOMAIN) %suntil \d+[smhd]$"
    outages = [t for t in lines if re.match(rx % "", t)]
    flaps = [t for t in lines if re.match(rx % r"from \d+[smhd] ", t)]
    assert outages and flaps, lines
    assert any(re.match(r"^from \d+[smhd]$", t) for t in lines), lines    # the records after

    Fault, Scenario, _ = explorer()
    scn = tmp_path / "flap.scn"
    scn.write_text(FLAP.format(root=REPO_ROOT))
    sc = Scenario.load(str(scn))
    flap = Fault("dns", ("flap.test", "mx"), rcode="SERVFAIL", start=60, end=660)
    text = sc.render(5, [flap], str(tmp_path))
    assert "dns flap.test MX 10 mx1.example.com ttl 5 until 1m\n" \
        "dns flap.test MX 10 mx1.example.com ttl 5 from 11m\n" in text, text
    assert text.endswith("dns flap.test MX SERVFAIL from 1m until 11m\n"), text
    out = tmp_path / "flap-out.scn"
    out.write_text(text)
    run = subprocess.run([mtasim, "run", "--trace", "-", "--json", str(tmp_path / "r.json"),
                          str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    answers = re.findall(r"^(\d\d:\d\d):\d\d\.\d+ dns answer name=flap\.test type=MX rcode=(\w+)",
                         run.stdout, re.M)
    assert answers[0] == ("00:00", "NOERROR"), answers
    assert ("00:02", "SERVFAIL") in answers, answers
    assert answers[-1][1] == "NOERROR" and answers[-1][0] >= "00:11", answers
    msgs = {m["id"]: m for m in json.loads((tmp_path / "r.json").read_text())["runs"][0]["messages"]}
    assert msgs[1]["fate"] == "delivered" and msgs[1]["done_at_us"] < 60 * 10 ** 6
    assert msgs[2]["fate"] == "delivered" and msgs[2]["done_at_us"] >= 660 * 10 ** 6


def test_multiline_replies_and_replies_cut_on_the_wire(mtasim, tmp_path):
    """Remote behaviour the explorer draws beyond one-line replies: multi-line
    replies to any command (RFC 5321 4.2.1) and replies split across small
    segments or flushed together; rendered, the core reads them whole."""
    proc = explore(mtasim, [CLEAN, "--seeds", "1..30", "--out", str(tmp_path / "o"),
                            "--json", str(tmp_path / "e.json")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [t for r in json.loads((tmp_path / "e.json").read_text())["runs"]
             for t in r["explore"]["faults"]]
    cmds = {m.group(1) for t in lines for m in [re.match(r"^  (\w+) \d{3}-", t)] if m}
    assert cmds - {"ehlo"}, lines      # not only the EHLO variants
    assert any(re.match(r"^  segment \d+$", t) for t in lines), lines
    assert "  flush together" in lines, lines

    Fault, Scenario, _ = explorer()
    sc = Scenario.load(str(REPO_ROOT / CLEAN))
    multi = Fault("multiline", "198.51.100.10", session=1, cmd="rcpt", code=451, lines=3)
    wire = Fault("wire", "198.51.100.10", what="segment", value="3")
    out = tmp_path / "multi.scn"
    out.write_text(sc.render(3, [multi, wire], str(tmp_path)))
    text = out.read_text()
    assert "  rcpt 451-4.3.0 line 1 of 3\n  rcpt 451-4.3.0 line 2 of 3\n" \
        "  rcpt 451 4.3.0 local error when session 1\n  segment 3\n" in text, text
    run = subprocess.run([mtasim, "run", "--trace", "-", "--json", str(tmp_path / "r.json"),
                          str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert 'queue transient msg=1 rcpt=bob@example.com status=4.3.0 note="451 4.3.0 line 1 of 3 ' \
        '4.3.0 line 2 of 3 4.3.0 local error"' in run.stdout
    # The 34-byte banner came in 3-byte segments: one read each, one line.
    banner = run.stdout.split('line="220 mx1.example.com ESMTP mtasim"')[0]
    assert banner.count("hook pre_read_smtp") >= 34 // 3, banner[-2000:]
    msg = json.loads((tmp_path / "r.json").read_text())["runs"][0]["messages"][0]
    assert msg["fate"] == "delivered" and msg["attempts"] == 2, msg


RANGE = """\
scenario range
include {root}/scenarios/world.inc
remote 198.51.100.10 name mx1.example.com
  connect accept latency 20ms
inject 1..40 from <alice@sender.test> to <bob@example.com> spread 10m
"""


def test_shrinks_a_range_of_messages(mtasim, tmp_path):
    """'inject 1..40' is made shorter (halved, or two messages) while the
    ledger crash recurs: seed 63 needs five of the forty."""
    lines = shrunk_ledger_crash(mtasim, tmp_path, "range", RANGE, 63)
    injects = [ln for ln in lines if ln.startswith("inject ")]
    assert injects == ["inject 1..5 from <alice@sender.test> to <bob@example.com> spread 10m"], lines
