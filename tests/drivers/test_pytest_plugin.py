"""The pytest plugin as CI uses it: items, --junitxml, -n, shards, plugins, results.

Each test runs pytest-3 in a subprocess on the bundled scenarios (or a
scenario written here) and checks what it reports:

  * every scenario is one item named after its file, collected in the same
    order every time;
  * --mtasim-shard I/N: every item in exactly one shard, the same shards
    on every collection, a bad spec is a usage error;
  * --junitxml: one testcase per scenario, failures carry mtasim's diff and
    the replay command; the same with -n 2 (python3-pytest-xdist);
  * --mtasim-plugin passes --plugin to every run; --mtasim-results keeps
    result JSON that ``mtasim report`` turns into a report.
"""

import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.drivers.mtasim_pytest import (REPO_ROOT, parse_shard,
                                        pytest_collection_modifyitems, shard_of)

import pytest

SCENARIOS = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "scenarios").rglob("*.scn")
                   if not p.name.startswith("."))


def pytest_run(mtasim, args, cwd=REPO_ROOT, site=None):
    """pytest-3 ARGS with this binary and no cache, in cwd.

    Outside the repository (a suite written here) the folder gets a pytest.ini
    of its own and the plugin comes by -p, as a project using mtasim's plugin
    would load it.  site: a folder put first on PYTHONPATH, as the Debian
    package's dist-packages is on a machine where it is installed."""
    env = dict(os.environ, COLUMNS="400")   # short-summary lines whole
    # "--mtasim-bin=PATH", one word: given as two, pytest 7 takes a PATH
    # outside the repository for a test path while it looks for the
    # conftest.py that defines the option, and stops with "unrecognized
    # arguments" (a mutation run's binary lives outside its copy).
    extra = [f"--mtasim-bin={mtasim}"]
    path = [str(site)] if site else []
    if Path(cwd) != REPO_ROOT:
        (Path(cwd) / "pytest.ini").write_text("[pytest]\naddopts = -ra\n")
        path.append(str(REPO_ROOT))
        # $MTASIM, not --mtasim-bin: pytest looks for conftest.py files along
        # path-like arguments, and would find the repository's from there.
        env["MTASIM"] = mtasim
        # -p no:mtasim: where the package is installed, its pytest11 entry
        # point would register the same options a second time (pytest stops
        # with "option names already added").
        extra = ["-p", "no:mtasim", "-p", "tests.drivers.mtasim_pytest"]
    if path:
        env["PYTHONPATH"] = os.pathsep.join(path)
    return subprocess.run(["pytest-3", "-p", "no:cacheprovider", *extra, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def collected(mtasim, *args):
    """The node ids pytest collects from scenarios/ with args."""
    proc = pytest_run(mtasim, ["--collect-only", "-q", "scenarios", *args])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_every_scenario_is_one_item_in_a_stable_order(mtasim):
    first = collected(mtasim)
    assert first == collected(mtasim)
    assert [item.split("::")[0] for item in first] == SCENARIOS
    assert all(item.split("::")[1] == Path(item.split("::")[0]).stem for item in first)


def test_shards_split_the_suite_exactly(mtasim):
    everything = collected(mtasim)
    shards = [collected(mtasim, "--mtasim-shard", f"{i}/3") for i in (1, 2, 3)]
    seen = [item for shard in shards for item in shard]
    assert sorted(seen) == sorted(everything)           # each item in exactly one shard
    assert all(shards)                                   # 79 items over 3 shards: none empty
    assert shards[1] == collected(mtasim, "--mtasim-shard", "2/3")      # deterministic
    assert collected(mtasim, "--mtasim-shard", "1/1") == everything
    for i, shard in enumerate(shards, 1):
        assert all(shard_of(item, 3) == i for item in shard)


# Shards pinned when the scheme was chosen (README, docs: "adding a scenario
# moves no other"), computed with coreutils' sha256sum: 1 + the first 8 bytes
# of SHA-256 of the node id, big-endian, mod N.  A change of hash, byte order
# or offset moves CI matrix jobs' tests around and fails here.
PINNED = {"scenarios/dns/caching.scn::caching": (2, 1, 2, 1),
          "scenarios/delivery/greylist-retry.scn::greylist-retry": (2, 1, 4, 5),
          "scenarios/connect/refused.scn::refused": (2, 3, 2, 7),
          "a": (1, 2, 3, 5)}
COUNTS = (2, 3, 4, 7)


def sha256sum_shard(nodeid, count):
    """The shard computed outside Python's hashlib: sha256sum(1) of the id."""
    out = subprocess.run(["sha256sum"], input=nodeid.encode(), capture_output=True,
                         check=True).stdout.decode()
    return 1 + int(out[:16], 16) % count


def test_shard_of_matches_pinned_and_independent_values():
    for nodeid, shards in PINNED.items():
        assert tuple(shard_of(nodeid, n) for n in COUNTS) == shards, nodeid
    for nodeid in [f"{s}::{Path(s).stem}" for s in SCENARIOS[::9]] + ["", "ü::x"]:
        for n in COUNTS:
            assert shard_of(nodeid, n) == sha256sum_shard(nodeid, n), (nodeid, n)
    assert all(shard_of(nodeid, 1) == 1 for nodeid in PINNED)


class _Item:
    def __init__(self, nodeid):
        self.nodeid = nodeid


class _Config:
    """What pytest_collection_modifyitems reads from the config."""

    def __init__(self, shard):
        self.shard, self.deselected = shard, []
        self.hook = self

    def getoption(self, name):
        assert name in ("mtasim_shard", "mtasim_durations")
        return self.shard if name == "mtasim_shard" else None

    def pytest_deselected(self, items):
        self.deselected += items


def shard_ids(ids, spec):
    """(kept, deselected) node ids when the plugin filters ids with --mtasim-shard spec."""
    items = [_Item(i) for i in ids]
    config = _Config(spec)
    pytest_collection_modifyitems(config, items)
    return [i.nodeid for i in items], [i.nodeid for i in config.deselected]


def test_every_id_in_exactly_one_shard_and_adding_one_moves_none():
    ids = [f"{s}::{Path(s).stem}" for s in SCENARIOS]
    for n in COUNTS:
        kept = []
        for i in range(1, n + 1):
            k, d = shard_ids(ids, f"{i}/{n}")
            assert sorted(k + d) == sorted(ids) and not set(k) & set(d), (i, n)
            kept.append(k)
        assert sorted(sum(kept, [])) == sorted(ids), n               # each in exactly one
        assert all(kept), f"an empty shard of {n} over {len(ids)} ids"
        # A new scenario, sorted first so that every position shifts: no old id
        # changes shard (a scheme by position would move most of them).
        grown = ["scenarios/aaa/new.scn::new"] + ids
        for i in range(1, n + 1):
            k, _ = shard_ids(grown, f"{i}/{n}")
            assert [x for x in k if x != grown[0]] == kept[i - 1], (i, n)


def test_shard_spec_is_checked():
    assert parse_shard(" 2 / 5 ") == (2, 5)
    for bad in ("0/3", "4/3", "1", "a/b", "1/0", ""):
        with pytest.raises(pytest.UsageError):
            parse_shard(bad)


def test_bad_shard_is_a_usage_error(mtasim):
    proc = pytest_run(mtasim, ["--collect-only", "-q", "scenarios", "--mtasim-shard", "4/3"])
    assert proc.returncode == 4
    assert "--mtasim-shard wants I/N with 1 <= I <= N, not '4/3'" in proc.stderr


@pytest.fixture
def failing_scenario(tmp_path):
    """A passing and a failing scenario in a folder of their own."""
    folder = tmp_path / "suite" / "smtp"
    folder.mkdir(parents=True)
    (folder / "good.scn").write_text(f"""scenario good
include {REPO_ROOT}/scenarios/world.inc
remote 198.51.100.10
inject 1 from <a@sender.test> to <bob@example.com>
expect message 1 delivered within 1m
""")
    (folder / "bad.scn").write_text(f"""scenario bad
include {REPO_ROOT}/scenarios/world.inc
remote 198.51.100.10
  rcpt 550 5.1.1 <nobody> unknown
inject 1 from <a@sender.test> to <bob@example.com>
expect message 1 delivered within 1m
""")
    return tmp_path


@pytest.mark.parametrize("parallel", [[], ["-n", "2"]])
def test_junitxml_has_one_case_per_scenario(mtasim, failing_scenario, parallel):
    xml_path = failing_scenario / "junit.xml"
    proc = pytest_run(mtasim, [*parallel, f"--junitxml={xml_path}", "suite"], cwd=failing_scenario)
    assert proc.returncode == 1, proc.stdout
    assert re.search(r"1 failed, 1 passed", proc.stdout)
    cases = {c.get("name"): c for c in ET.parse(xml_path).getroot().iter("testcase")}
    assert set(cases) == {"good", "bad"}
    assert cases["bad"].get("classname") == "suite.smtp.bad.scn"
    failure = cases["bad"].find("failure").text
    assert "FAIL suite/smtp/bad.scn  seed 1  (line 6: expect message 1 delivered within 1m)" in failure
    assert "last error: 550 5.1.1 <nobody> unknown" in failure
    assert f"replay: {mtasim} run --seed 1 --trace - suite/smtp/bad.scn" in failure
    props = {p.get("name"): p.get("value") for p in cases["bad"].iter("property")}
    assert props["mtasim_seed"] == "1" and props["mtasim_verdict"] == "fail"
    assert len(props["mtasim_digest"]) == 64


def test_plugins_pass_through(mtasim, tmp_path):
    """--mtasim-plugin reaches mtasim run: the scenario passes only with it.

    veto_host.so:mx1.example.com forbids the first MX, so the message can
    only go to the second."""
    (tmp_path / "second-mx.scn").write_text(f"""scenario second-mx-only
include {REPO_ROOT}/scenarios/world.inc
remote 198.51.100.10
remote 198.51.100.20
inject 1 from <a@sender.test> to <bob@example.com>
expect trace in order
  conn open dst=198.51.100.20:25
  remote message remote=198.51.100.20
""")
    args = ["second-mx.scn"]
    without = pytest_run(mtasim, args, cwd=tmp_path)
    assert without.returncode == 1
    assert f"replay: {mtasim} run --seed 1 --trace - second-mx.scn" in without.stdout
    plugin = "veto_host.so:mx1.example.com"
    with_plugin = pytest_run(mtasim, args + ["--mtasim-plugin", plugin], cwd=tmp_path)
    assert with_plugin.returncode == 0, with_plugin.stdout
    assert f"plugin {plugin}" in with_plugin.stdout         # the report header
    missing = pytest_run(mtasim, args + ["--mtasim-plugin", "nope.so"], cwd=tmp_path)
    assert missing.returncode == 1
    assert "--plugin nope.so: cannot find plugin 'nope.so'" in missing.stdout
    assert f"replay: {mtasim} run --plugin nope.so --trace - second-mx.scn" in missing.stdout


def test_results_dir_feeds_mtasim_report(mtasim, failing_scenario):
    results = failing_scenario / "results"
    proc = pytest_run(mtasim, ["-n", "2", "--mtasim-results", str(results), "suite"],
                      cwd=failing_scenario)
    assert proc.returncode == 1, proc.stdout
    files = sorted(p.name for p in results.iterdir())
    assert files == ["suite__smtp__bad.scn.json", "suite__smtp__good.scn.json"]
    doc = json.loads((results / files[0]).read_text())
    assert doc["runs"][0]["verdict"] == "fail" and doc["runs"][0]["trace"]
    html = failing_scenario / "report.html"
    made = subprocess.run([mtasim, "report", *sorted(map(str, results.iterdir())), "--html", str(html)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    assert "1 passed, 1 failed" in html.read_text()


def test_reason_in_short_summary_and_junit_message(mtasim, failing_scenario):
    """The short summary (-ra) and JUnit's message give the reason in one
    line; the element's text holds the whole report, with one replay line;
    bad input is an error, not a failure, also under xdist."""
    (failing_scenario / "suite" / "smtp" / "broken.scn").write_text(
        "scenario broken\nremote 1.2.3\n")
    for parallel in ([], ["-n", "2"]):
        xml_path = failing_scenario / "junit.xml"
        proc = pytest_run(mtasim, [*parallel, f"--junitxml={xml_path}", "suite"],
                          cwd=failing_scenario)
        assert proc.returncode == 1, proc.stdout
        assert re.search(r"1 failed, 1 passed, 1 error", proc.stdout), proc.stdout
        assert ("FAILED suite/smtp/bad.scn::bad - exit 1: FAIL suite/smtp/bad.scn  seed 1  "
                "(line 6: expect message 1 delivered within 1m)") in proc.stdout
        assert ("ERROR suite/smtp/broken.scn::broken - exit 2: ERROR "
                "suite/smtp/broken.scn:2:8: bad IPv4 address '1.2.3'") in proc.stdout
        cases = {c.get("name"): c for c in ET.parse(xml_path).getroot().iter("testcase")}
        failure = cases["bad"].find("failure")
        assert failure.get("message") == ("exit 1: FAIL suite/smtp/bad.scn  seed 1  "
                                          "(line 6: expect message 1 delivered within 1m)")
        assert "last error: 550 5.1.1 <nobody> unknown" in failure.text
        assert failure.text.count("replay: ") == 1, failure.text
        error = cases["broken"].find("error")
        assert error is not None and cases["broken"].find("failure") is None
        assert "\n" not in error.get("message") and "bad IPv4 address" in error.get("message")
        assert error.text.count("replay: ") == 1


def test_shards_balanced_by_recorded_durations(mtasim, tmp_path):
    """With --mtasim-durations, known items are spread by time (longest
    first onto the least loaded shard); the run writes its durations."""
    ids = [f"{s}::{Path(s).stem}" for s in SCENARIOS]
    # One heavy item and many light ones: by hash the heavy one's shard is
    # also handed its share of light ones; by time it is alone.
    durations = {nodeid: 1.0 for nodeid in ids}
    durations[ids[0]] = len(ids) / 2.0
    path = tmp_path / "durations.json"
    path.write_text(json.dumps(durations))
    shards = [collected(mtasim, "--mtasim-shard", f"{i}/2", "--mtasim-durations", str(path))
              for i in (1, 2)]
    assert sorted(shards[0] + shards[1]) == sorted(ids)
    times = [sum(durations[n] for n in shard) for shard in shards]
    assert abs(times[0] - times[1]) <= 1.0, times
    assert ids[0] in shards[0] and len(shards[0]) == 1 + (len(ids) - 1 - len(shards[1]))
    assert shards == [collected(mtasim, "--mtasim-shard", f"{i}/2", "--mtasim-durations",
                                str(path)) for i in (1, 2)]          # deterministic
    by_hash = [collected(mtasim, "--mtasim-shard", f"{i}/2") for i in (1, 2)]
    assert by_hash != shards
    # A run records its items' durations (merged into the file).
    record = tmp_path / "recorded.json"
    proc = pytest_run(mtasim, ["--mtasim-durations", str(record), "scenarios/dns"])
    assert proc.returncode == 0, proc.stdout
    recorded = json.loads(record.read_text())
    dns = [n for n in ids if n.startswith("scenarios/dns/")]
    assert sorted(recorded) == sorted(dns) and all(v >= 0 for v in recorded.values())
