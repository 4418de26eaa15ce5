"""A streamed run judges exactly as a run that keeps its trace.

Without --json, ``mtasim run`` keeps no trace when a scenario's expectations
can be judged as the records stream (sim/lang/expect_stream.h, runner.h
``stream``); a streamed expectation that fails is explained by replaying the
run with the trace kept.  With --json every record is kept and every
expectation checked over the kept trace (sim/lang/expect.c).  For each
bundled scenario this module runs the scenario and one mutant of each kind
(test_wrong_expectations.py: one expectation made wrong; a fate changed, a
scope that matches nothing, a pattern line removed, a matcher negated, two
lines swapped, ...) both ways and requires the same printed report, byte for
byte: the same verdicts, the same failure accounts, the same digests.
"""

import shutil

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim
from tests.drivers.test_wrong_expectations import SCENARIOS, mutants_of

# The kinds of mutant, by a word of their description (Mutant.what); the
# first word found names the kind, so the narrower words come first: a
# client's code, a count's scope or number and a never's "at" bound are
# each a kind of their own, not lumped with a fate ("->"), a block's scope
# or a negated matcher.
KINDS = ("client-", "count-scope", "count-", "never-at", "never", "scope", "removed", "negated",
         "swap", "->", "status", "rcpt", "dsn", "intact", "renamed")


def one_of_each_kind(mutants):
    """The first mutant of each kind: every matcher of expect_stream.c is
    exercised, failing, at a fraction of the cost of all mutants."""
    seen, picked = set(), []
    for m in mutants:
        kind = next((k for k in KINDS if k in m.what), m.what)
        if kind not in seen:
            seen.add(kind)
            picked.append(m)
    return picked


def scenarios():
    found = sorted(p for p in SCENARIOS.rglob("*.scn")
                   if not any(part.startswith(".") for part in p.relative_to(SCENARIOS).parts))
    return [pytest.param(p, id=str(p.relative_to(SCENARIOS))) for p in found] or \
        [pytest.param(None, id="no-scenarios")]


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory):
    """A private copy of scenarios/, so relative paths resolve as for the originals."""
    root = tmp_path_factory.mktemp("streaming") / "scenarios"
    shutil.copytree(SCENARIOS, root, ignore=shutil.ignore_patterns(".*"))
    return root


@pytest.mark.parametrize("scenario", scenarios())
def test_streamed_report_equals_kept(scenario, mtasim, copy_root, tmp_path):
    if scenario is None:
        pytest.fail("no scenarios/**/*.scn", pytrace=False)
    original = copy_root / scenario.relative_to(SCENARIOS)
    paths = [original]
    for i, mutant in enumerate(one_of_each_kind(mutants_of(scenario))):
        path = original.with_name(f".{original.stem}.stream{i}.scn")
        path.write_text("".join(mutant.lines), encoding="utf-8", newline="")
        paths.append(path)
    try:
        streamed = run_mtasim(mtasim, [*map(str, paths)], cwd=REPO_ROOT, timeout=600)
        kept = run_mtasim(mtasim, ["--json", str(tmp_path / "kept.json"), *map(str, paths)],
                          cwd=REPO_ROOT, timeout=600)
    finally:
        for path in paths[1:]:
            path.unlink()
    assert streamed.returncode == kept.returncode, (streamed.stdout, kept.stdout)
    assert streamed.stdout == kept.stdout
