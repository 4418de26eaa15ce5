"""The mutation runner's patches do not rot (tests/mutation/, docs/testing.md).

A full mutation run (tests/mutation/run) takes tens of minutes and is not
part of the README's test command.  What is: every mutant still applies to
the tree as it is now, says what it breaks, touches only core/, sim/ or
reports/, and the mutants the test-suite audit asked for are all there; and
the runner's --check does notice a patch that no longer applies.
"""

import subprocess
import sys
from pathlib import Path

from tests.drivers.mtasim_pytest import REPO_ROOT

RUN = REPO_ROOT / "tests" / "mutation" / "run"
MUTANTS = REPO_ROOT / "tests" / "mutation" / "mutants"

# The behaviours issue 17 names, each with the mutant that breaks it.
REQUIRED = [
    "hooks-provider-order-reversed", "hooks-first-nonzero-no-stop", "retry-backoff-off-by-one",
    "domain-limit-ignored", "ev-messagesent-after-log-delivery", "ev-8bitmime-before-dsn",
    "data-when-no-rcpt-accepted", "body-when-no-rcpt-accepted", "delayed-scan-tick-late",
    "max-retries-off-by-one", "mx-preference-reversed", "per-host-limit-off-by-one",
    "digest-skips-dns-records", "reply-421-no-host-failure", "leftovers-452-not-resent",
    "dsn-null-sender", "retry-backoff-no-doubling",
]


def run(*args):
    return subprocess.run([sys.executable, str(RUN), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True)


def test_every_mutant_applies_to_the_tree():
    r = run("--check")
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(list(MUTANTS.glob("*.patch")))
    assert n >= 40
    assert r.stdout.splitlines()[-1] == f"{n} of {n} mutants apply to the tree"


def test_list_says_what_each_mutant_breaks():
    r = run("--list")
    assert r.returncode == 0, r.stderr
    rows = [line.split(None, 1) for line in r.stdout.splitlines()]
    names = [row[0] for row in rows]
    assert names == sorted(p.stem for p in MUTANTS.glob("*.patch"))
    assert all(len(row) == 2 and len(row[1]) > 20 for row in rows), rows
    missing = [n for n in REQUIRED if n not in names]
    assert not missing, f"mutants the audit asked for are gone: {missing}"
    prefixes = {p.read_text().split("+++ b/", 1)[1].split("/", 1)[0]
                for p in MUTANTS.glob("*.patch")}
    assert prefixes == {"core", "sim", "reports"}


def test_check_fails_on_a_patch_that_no_longer_applies(tmp_path):
    good = (MUTANTS / "mx-preference-reversed.patch").read_text()
    (tmp_path / "fine.patch").write_text(good)
    # The same change against context that is not in the tree any more.
    rotten = good.replace("\n     if (x->preference != y->preference)",
                          "\n     if (x->preference != y->weight)")
    assert rotten != good
    (tmp_path / "rotten.patch").write_text(rotten)
    (tmp_path / "nameless.patch").write_text(good.split("\n", 1)[1])
    r = run("--check", "--mutants", str(tmp_path))
    assert r.returncode == 1
    assert "rotten: does not apply" in r.stdout
    assert "nameless: no 'Breaks: ...' first line" in r.stdout
    assert "fine:" not in r.stdout
    assert r.stdout.splitlines()[-1] == "1 of 3 mutants apply to the tree"


def test_an_unknown_mutant_is_a_usage_error():
    r = run("no-such-mutant")
    assert r.returncode == 2
    assert "no such mutant: no-such-mutant" in r.stderr
