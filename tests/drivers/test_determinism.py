"""Determinism is the product: the same scenario and seed give the same trace.

Three checks, each on trace digests from ``mtasim run --json``:

* every bundled scenario gives the same digests from the binary under test
  and from a build at another optimisation level: tests/run-tests.sh
  builds one and passes it as MTASIM_CROSS_BIN - build-release (-O3) for
  the usual builds, build-O0 (-O0) when the binary under test is itself a
  release build.  Under CI the binary under test is the ASan+UBSan build
  in one pass and the debugoptimized build in the other, so both are
  compared with -O3.  Without MTASIM_CROSS_BIN the test uses
  build-release/sim/mtasim; a missing comparison binary fails, never
  skips;
* 200 seeds of a scenario full of random faults
  (scenarios/faults/random-faults.scn), run twice, replay identically
  seed by seed - and the seed matters: the digests are not all the same;
* ``--seeds`` reports each failing seed with the exact replay command.
"""
import json
import os
import re
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

SCENARIOS = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "scenarios").rglob("*.scn")
                   if not any(part.startswith(".") for part in p.relative_to(REPO_ROOT).parts))
RANDOM = "scenarios/faults/random-faults.scn"


def digests(binary, args, tmp_path, name):
    """{(file, seed): digest} of one mtasim run over args."""
    out = tmp_path / f"{name}.json"
    proc = run_mtasim(binary, ["--json", str(out)] + args, cwd=REPO_ROOT, timeout=600)
    assert out.exists(), f"no JSON from {binary}: {proc.stdout}{proc.stderr}"
    runs = json.loads(out.read_text())["runs"]
    return {(r["file"], r.get("seed")): r.get("digest") for r in runs}


def cross_binary(mtasim):
    """The build at another optimisation level to compare with; fails when there is none."""
    path = os.environ.get("MTASIM_CROSS_BIN") or str(REPO_ROOT / "build-release" / "sim" / "mtasim")
    if not Path(path).is_file():
        pytest.fail(f"no comparison build at {path}: sh tests/run-tests.sh builds it and sets "
                    "MTASIM_CROSS_BIN (or: MTASIM_BUILD=build-release MTASIM_BUILDTYPE=release "
                    "sh tests/build.sh)", pytrace=False)
    if os.path.realpath(path) == os.path.realpath(mtasim):
        pytest.fail(f"{path} is the binary under test: set MTASIM_CROSS_BIN to a build at "
                    "another optimisation level (tests/run-tests.sh does)", pytrace=False)
    return path


def test_same_digests_in_an_optimised_build(mtasim, tmp_path):
    other = cross_binary(mtasim)
    mine = digests(mtasim, ["--quiet"] + SCENARIOS, tmp_path, "mine")
    theirs = digests(other, ["--quiet"] + SCENARIOS, tmp_path, "release")
    assert set(mine) == set(theirs)
    differ = sorted(k for k in mine if mine[k] != theirs[k])
    assert not differ, (f"{mtasim} and {other} disagree on the trace of: "
                        + ", ".join(f"{f} seed {s}" for f, s in differ))
    assert all(mine.values()), "a run without a digest"


def test_200_seeds_replay_identically(mtasim, tmp_path):
    args = ["--quiet", "--seeds", "1..200", RANDOM]
    first = digests(mtasim, args, tmp_path, "first")
    second = digests(mtasim, args, tmp_path, "second")
    assert len(first) == 200, f"expected 200 runs, got {len(first)}"
    assert first == second, "a seed replayed differently: " + ", ".join(
        f"seed {s}" for (_, s) in sorted(k for k in first if first[k] != second.get(k)))
    # The seed must reach the world: random faults make the traces differ.
    assert len(set(first.values())) > 100, "the seed barely changes the trace"


def test_seeds_summary_names_replay_commands(mtasim):
    # random-rcpt.scn expects the draws of its own seed (20); other seeds fail.
    proc = run_mtasim(mtasim, ["--quiet", "--seeds", "18..21",
                               "scenarios/faults/random-rcpt.scn"], cwd=REPO_ROOT)
    out = proc.stdout
    assert proc.returncode == 1, out
    summary = re.search(r"^seeds 18\.\.21: (\d+) runs? passed, (\d+) failed$", out, re.M)
    assert summary, out
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert passed + failed == 4 and passed >= 1 and failed >= 1, out
    replays = re.findall(r"^  replay: mtasim run --seed (\d+) --trace - "
                         r"scenarios/faults/random-rcpt\.scn$", out, re.M)
    # Each failure's replay line appears once in its report and once in the summary.
    assert len(set(replays)) == failed, out
    assert "20" not in replays, out


def test_seeds_range_is_checked(mtasim):
    for bad in ("5..2", "1-3", "..4", "a..b"):
        proc = run_mtasim(mtasim, ["--seeds", bad, RANDOM], cwd=REPO_ROOT)
        assert proc.returncode == 2, (bad, proc.stdout, proc.stderr)
        assert "--seeds" in proc.stderr
