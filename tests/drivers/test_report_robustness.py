"""``mtasim report`` against hostile output paths and malformed result JSON (issue 18).

Output paths (docs/cli.md, "Where the reports go"):

* a symbolic link is written through and stays a link; a link to a device
  (/dev/null, /dev/full) or a FIFO is written through, the device stays a
  device; out of space is exit 2 with one line naming the path;
* with several outputs, one that cannot be written leaves none of the
  files written (an existing file keeps its old content) and no temporary
  file behind; standard output on a full device is exit 2 too;
* a directory is refused.

Result JSON (docs/results.md): a lone surrogate, 2,000 nested arrays, NaN,
a 100-digit number and a field of the wrong type anywhere give exit 2 and
one line naming the file and the JSON path, never a traceback; a seeded
mutation fuzzer over a real result document, run in-process, gets exit 0
or 2 from every mutant.
"""

import copy
import json
import os
import random
import re
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim
from tests.fuzz.report_mutator import mutate, paths_of

SCENARIOS = ["scenarios/delivery/greylist-retry.scn", "scenarios/connect/refused.scn",
             "scenarios/faults/reset-after-rcpt.scn", "fixtures/bad/bad-address.scn"]


def report(mtasim, args, cwd, stdout=subprocess.PIPE):
    return subprocess.run([mtasim, "report", *args], cwd=cwd, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def results(mtasim, tmp_path_factory):
    """(path, document) of a result file with traces, a failure and a bad input."""
    out = tmp_path_factory.mktemp("robust") / "results.json"
    proc = run_mtasim(mtasim, ["--json", str(out), "--json-trace", *SCENARIOS], cwd=REPO_ROOT)
    assert proc.returncode == 2, proc.stdout + proc.stderr      # the bad-address file
    return out, json.loads(out.read_text())


def one_line_error(proc, *words):
    """exit 2, exactly one stderr line starting 'mtasim report: ' and holding words."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("mtasim report: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def leftovers(folder):
    """Files a report run may have left in folder besides the ones a test made."""
    return sorted(p.name for p in Path(folder).iterdir() if ".tmp" in p.name)


# ---------------------------------------------------------------- output paths


def test_symlink_is_written_through(mtasim, results, tmp_path):
    real = tmp_path / "real.html"
    real.write_text("old report\n")
    real.chmod(0o640)
    link = tmp_path / "link.html"
    link.symlink_to("real.html")
    proc = report(mtasim, [str(results[0]), "--html", "link.html"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and os.readlink(link) == "real.html"
    assert real.read_text().startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640       # a replaced file keeps its mode
    assert leftovers(tmp_path) == []


def test_dangling_symlink_creates_its_target(mtasim, results, tmp_path):
    link = tmp_path / "junit.xml"
    link.symlink_to("out/target.xml")
    (tmp_path / "out").mkdir()
    proc = report(mtasim, [str(results[0]), "--junit", "junit.xml"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and (tmp_path / "out" / "target.xml").read_text().startswith("<?xml")


def test_device_is_written_through_never_replaced(mtasim, results, tmp_path):
    """Through links in a scratch folder, so that the old behaviour (rename over
    the path) replaces only the link, never the machine's /dev/null."""
    null = tmp_path / "null"
    null.symlink_to("/dev/null")
    proc = report(mtasim, [str(results[0]), "--html", str(null)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert null.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert leftovers(tmp_path) == []


def test_full_device_is_an_error_naming_the_path(mtasim, results, tmp_path):
    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    proc = report(mtasim, [str(results[0]), "--html", str(full)], cwd=tmp_path)
    one_line_error(proc, f"cannot write {full}", "No space left on device")
    assert full.is_symlink() and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_one_unwritable_output_writes_none(mtasim, results, tmp_path):
    full = tmp_path / "full"
    full.symlink_to("/dev/full")
    old = tmp_path / "summary.md"
    old.write_text("the previous summary\n")
    proc = report(mtasim, [str(results[0]), "--junit", "junit.xml", "--html", "full",
                           "--markdown", "summary.md"], cwd=tmp_path)
    one_line_error(proc, "cannot write full")
    assert not (tmp_path / "junit.xml").exists()
    assert old.read_text() == "the previous summary\n"
    assert leftovers(tmp_path) == []
    # A target in a folder that does not exist: the same, whatever the order.
    proc = report(mtasim, [str(results[0]), "--junit", "junit.xml", "--markdown", "summary.md",
                           "--html", "no/such/dir/r.html"], cwd=tmp_path)
    one_line_error(proc, "cannot write no/such/dir/r.html")
    assert not (tmp_path / "junit.xml").exists()
    assert old.read_text() == "the previous summary\n"
    assert leftovers(tmp_path) == []


def test_fifo_is_written_through(mtasim, results, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = report(mtasim, [str(results[0]), "--markdown", str(fifo)], cwd=tmp_path)
    reader.join(30)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert got and got[0].decode().startswith("## ❌ mtasim: 3 passed, 1 failed (1 bad input)")


def test_directory_is_refused(mtasim, results, tmp_path):
    (tmp_path / "d").mkdir()
    proc = report(mtasim, [str(results[0]), "--junit", "j.xml", "--html", "d"], cwd=tmp_path)
    one_line_error(proc, "cannot write d: a directory")
    assert not (tmp_path / "j.xml").exists()


def test_full_standard_output_is_an_error(mtasim, results, tmp_path):
    with open("/dev/full", "w") as full:
        proc = report(mtasim, [str(results[0]), "--markdown", "-"], cwd=tmp_path, stdout=full)
    one_line_error(proc, "cannot write standard output", "No space left on device")


# ---------------------------------------------------------------- malformed JSON


def write_doc(tmp_path, doc, name="bad.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def test_lone_surrogate_is_bad_input(mtasim, results, tmp_path):
    text = results[0].read_text().replace('"scenario": "greylist-retry"',
                                          '"scenario": "grey\\ud800list"', 1)
    assert "\\ud800" in text
    src = write_doc(tmp_path, text)
    proc = report(mtasim, [str(src), "--html", "r.html", "--junit", "j.xml"], cwd=tmp_path)
    one_line_error(proc, f"{src}: $.runs[0].scenario: not valid Unicode")
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "j.xml").exists()


@pytest.mark.parametrize("depth", [40, 2000])
def test_deep_nesting_is_bad_input(mtasim, results, tmp_path, depth):
    text = results[0].read_text().replace('"violations": []',
                                          '"violations": ' + "[" * depth + "]" * depth, 1)
    src = write_doc(tmp_path, text)
    proc = report(mtasim, [str(src), "--html", "r.html"], cwd=tmp_path)
    line = one_line_error(proc, f"{src}: ")
    assert "nested" in line
    if depth == 40:
        assert "$.runs[0].violations[0]" in line
    assert not (tmp_path / "r.html").exists()


def run_of(doc, name):
    return next(r for r in doc["runs"] if r.get("scenario") == name)


# (JSON path to set, the value, what the line must say)
WRONG = [
    ("runs.0.messages.0.fate", 5, "$.runs[0].messages[0].fate: should be a string"),
    ("runs.0.messages.0.fate", "lost", "$.runs[0].messages[0].fate: should be one of"),
    ("runs.0.messages.0.done_at_us", "soon", "$.runs[0].messages[0].done_at_us: should be an integer or null"),
    ("runs.0.messages.0", [], "$.runs[0].messages[0]: should be an object"),
    ("runs.0.connection_log.0.replies", "220", "$.runs[0].connection_log[0].replies: should be an array"),
    ("runs.0.connection_log.0.replies.0", "220", "$.runs[0].connection_log[0].replies[0]: should be an integer"),
    ("runs.0.connection_log.0.commands.0", 7, "$.runs[0].connection_log[0].commands[0]: should be a string"),
    ("runs.0.connection_log.0.remote", ["x"], "$.runs[0].connection_log[0].remote: should be a string"),
    ("runs.0.conn_err.initiate", [], "$.runs[0].conn_err.initiate: should be an object"),
    ("runs.0.conn_err.initiate.CONN_ERR_MX_LOOKUP_PENDING", "1",
     "$.runs[0].conn_err.initiate.CONN_ERR_MX_LOOKUP_PENDING: should be an integer"),
    ("runs.0.expectations.0.passed", "yes", "$.runs[0].expectations[0].passed: should be true or false"),
    ("runs.0.expectations.0.diff", 0, "$.runs[0].expectations[0].diff: should be a string or null"),
    ("runs.0.trace.0.0", "0", "$.runs[0].trace[0][0]: should be an integer"),
    ("runs.0.trace.0.3.msg", [1], "$.runs[0].trace[0][3].msg: should be a number or a string"),
    ("runs.0.trace.0", {"t": 0}, "$.runs[0].trace[0]: should be [t_us, kind, name, {fields}]"),
    ("runs.0.end_us", 10 ** 30, "$.runs[0].end_us: 1000000000000000000000000000000 does not fit"),
    ("runs.0.violations.0", None, "$.runs[0].violations[0]: should be a string"),
    ("runs.0.seed", True, "$.runs[0].seed: should be an integer or null"),
    ("runs.0.verdict", None, "$.runs[0].verdict: should be a string"),
    ("runs.1", "run", "$.runs[1]: should be an object"),
]


def set_path(doc, dotted, value):
    keys = [int(k) if k.isdigit() else k for k in dotted.split(".")]
    node = doc
    for key in keys[:-1]:
        node = node[key]
    if isinstance(node, list) and keys[-1] >= len(node):
        node.append(value)
    else:
        node[keys[-1]] = value


@pytest.mark.parametrize("dotted,value,words", WRONG, ids=[f"{w[0]}={w[1]!r}"[:60] for w in WRONG])
def test_wrong_type_is_bad_input(mtasim, results, tmp_path, dotted, value, words):
    doc = copy.deepcopy(results[1])
    doc["runs"].sort(key=lambda r: r.get("scenario") != "greylist-retry")   # runs[0]: full one
    doc["runs"][0]["violations"] = ["x"]
    set_path(doc, dotted, value)
    src = write_doc(tmp_path, doc)
    proc = report(mtasim, [str(src), "--html", "r.html", "--junit", "j.xml",
                           "--markdown", "m.md"], cwd=tmp_path)
    one_line_error(proc, f"{src}: {words}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json"]


def test_not_a_finite_number_is_bad_input(mtasim, results, tmp_path):
    text, n = re.subn(r'"wall_ms": [0-9.e+-]+', '"wall_ms": NaN', results[0].read_text(), count=1)
    assert n == 1
    src = write_doc(tmp_path, text)
    proc = report(mtasim, [str(src), "--html", "r.html"], cwd=tmp_path)
    one_line_error(proc, f"{src}: not valid JSON: NaN")


# ---------------------------------------------------------------- fuzzing, in-process


def load_report_module():
    sys.path.insert(0, str(REPO_ROOT / "reports"))
    try:
        import mtasim_report
    finally:
        sys.path.pop(0)
    return mtasim_report


def test_fuzzed_result_documents_never_crash_the_report(results, tmp_path, capsys):
    """300 seeded mutants of a real result document: every one gives exit 0 or
    exit 2 with one line; none an exception or exit 3."""
    mtasim_report = load_report_module()
    base = results[1]
    paths = [p for p in paths_of(base) if p]
    rng = random.Random(18005)
    src = tmp_path / "fuzz.json"
    outs = ["--junit", str(tmp_path / "j.xml"), "--html", str(tmp_path / "r.html"),
            "--markdown", str(tmp_path / "m.md")]
    codes = {0: 0, 2: 0}
    for n in range(300):
        doc = mutate(base, rng, paths)
        src.write_text(json.dumps(doc), encoding="utf-8", errors="surrogatepass")
        code = mtasim_report.main([str(src), *outs])
        err = capsys.readouterr().err
        assert code in (0, 2), f"mutant {n}: exit {code}\n{err}"
        if code == 2:
            assert len(err.splitlines()) == 1 and err.startswith(f"mtasim report: {src}: "), err
        codes[code] += 1
    assert codes[0] > 30 and codes[2] > 30, codes      # both kinds were exercised
