"""Bad input is rejected with the documented exit code and a clear message.

Each fixtures/bad/*.scn starts with comment lines that say what mtasim must
do with it:

    # expect-exit: 2
    # expect-output: ^fixtures/bad/unknown-op\\.scn:7:12: unknown operator
    # expect-output: another regex (every one must match)
    # expect-args: --timeout 1     (optional: options for mtasim run)

The regexes are searched (re.MULTILINE) in stdout + stderr of
``mtasim run fixtures/bad/NAME.scn`` run from the repository root, so paths
in them are relative to it.

A second test checks that one bad file does not stop the others: a bad
file run together with a good scenario still runs and reports the good one,
and the exit code is the highest of the per-file codes (2).
"""

import os
import re
import tempfile

import pytest

from tests.drivers.mtasim_pytest import (REPO_ROOT, describe_exit, load_json, require_binary,
                                        run_mtasim)

BAD = REPO_ROOT / "fixtures" / "bad"
SCENARIOS = REPO_ROOT / "scenarios"
HEADER = re.compile(r"^#\s*expect-(exit|output|args):\s?(.*?)\s*$")


def header_of(path, args=None):
    """(exit_code or None, [regex, ...]) from the leading comment lines of a
    fixture; the words of its expect-args lines are appended to args."""
    code, regexes = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break                       # the header ends at the first non-comment line
        m = HEADER.match(line.strip())
        if m and m.group(1) == "exit":
            code = int(m.group(2))
        elif m and m.group(1) == "args":
            if args is not None:
                args.extend(m.group(2).split())
        elif m:
            regexes.append(m.group(2))
    return code, regexes


def rel(path):
    return os.path.relpath(path, REPO_ROOT)


def bad_fixtures():
    files = sorted(BAD.glob("*.scn"))
    if not files:
        # A missing or emptied folder must fail, never pass by testing nothing.
        return [pytest.param(None, id="no-fixtures")]
    return [pytest.param(p, id=p.name) for p in files]


@pytest.mark.parametrize("fixture", bad_fixtures())
def test_bad_input(fixture, mtasim):
    if fixture is None:
        pytest.fail(f"no bad-input fixtures: {rel(BAD)}/*.scn is missing or empty", pytrace=False)
    args = []
    code, regexes = header_of(fixture, args)
    if code is None or not regexes:
        pytest.fail(f"{rel(fixture)}: needs '# expect-exit: N' and '# expect-output: REGEX' "
                    "header lines", pytrace=False)
    proc = run_mtasim(mtasim, args + [rel(fixture)], cwd=REPO_ROOT)
    output = proc.stdout + proc.stderr
    if proc.returncode != code:
        pytest.fail(f"{rel(fixture)}: exit {proc.returncode} ({describe_exit(proc.returncode)}), "
                    f"expected {code}\n--- output ---\n{output}", pytrace=False)
    missing = [r for r in regexes if not re.search(r, output, re.M)]
    if missing:
        pytest.fail(f"{rel(fixture)}: output matches none of:\n  " + "\n  ".join(missing)
                    + f"\n--- output ---\n{output}", pytrace=False)


def first_passing_scenario(mtasim):
    """A bundled scenario that passes on its own (relative path), or None."""
    for path in sorted(SCENARIOS.rglob("*.scn")):
        if path.name.startswith("."):
            continue
        if run_mtasim(mtasim, [rel(path)], cwd=REPO_ROOT).returncode == 0:
            return rel(path)
    return None


def test_bad_file_does_not_stop_good_one(pytestconfig):
    syntax_errors = [p for p in sorted(BAD.glob("*.scn")) if header_of(p)[0] == 2]
    if not syntax_errors:
        pytest.fail("no fixtures/bad/*.scn with '# expect-exit: 2'", pytrace=False)
    mtasim = require_binary(pytestconfig)
    good = first_passing_scenario(mtasim)
    if good is None:
        pytest.fail("no bundled scenario passes on its own", pytrace=False)
    bad = rel(syntax_errors[0])

    # Both orders: the good file must run whether the bad one comes first or last.
    for files in ([bad, good], [good, bad]):
        with tempfile.TemporaryDirectory(prefix="mtasim-") as tmp:
            json_path = os.path.join(tmp, "result.json")
            proc = run_mtasim(mtasim, ["--json", json_path, *files], cwd=REPO_ROOT)
            result = load_json(json_path) or {}
        output = proc.stdout + proc.stderr
        where = f"mtasim run {' '.join(files)}\n--- output ---\n{output}"
        problems = []
        if proc.returncode != 2:
            problems.append(f"exit {proc.returncode}, expected 2")
        if not re.search(rf"^PASS {re.escape(good)}\b", proc.stdout, re.M):
            problems.append(f"no 'PASS {good}' line on stdout")
        if not re.search(rf"^ERROR {re.escape(bad)}\b", proc.stdout, re.M):
            problems.append(f"no 'ERROR {bad}' line on stdout")
        verdicts = {run.get("file"): run.get("verdict") for run in result.get("runs", [])}
        if verdicts.get(good) != "pass" or verdicts.get(bad) != "error":
            problems.append(f"--json verdicts {verdicts}, expected pass for {good}, error for {bad}")
        if problems:
            pytest.fail("\n".join(problems) + f"\n{where}", pytrace=False)
