"""The record field table that expectations are checked against is complete.

sim/lang/record_fields.c says which fields each kind of trace record can
carry; the parser rejects a matcher (or a ``for`` scope) on any other field,
because such an expectation could never hold (``expect never`` with it would
be silently true).  If the table missed a field that some record does carry,
a correct scenario would be refused.  This test runs every bundled scenario
with ``--trace -``, collects every (kind, name, field) that occurs, writes one
``expect never`` line per triple and requires ``mtasim run`` to accept them
all; and it checks that a field no record has is refused, so the check
itself is live.

The other direction matters as much: a field the table lists but no record
carries would let ``expect never trace KIND NAME FIELD=...`` parse and hold
silently.  So every field of the table must be seen on its records, in the
bundled scenarios' traces or in two runs that fail on purpose (a plugin's
misbehaviour, a client expectation that does not hold): the records only a
failing run writes.
"""

import re

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

SCENARIOS = REPO_ROOT / "scenarios"
FIELD = re.compile(r'\s([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')
TABLE_ENTRY = re.compile(r'\{ "(\w+)", "([\w*]+)", (?:"([^"]*)"|NULL) \}')

# One worker runs the module: its fixture makes the one traced run of every scenario.
pytestmark = pytest.mark.xdist_group("record_fields")


def collect_fields(stdout, seen):
    """add the (kind, name) -> fields of the trace lines in stdout to seen; count them"""
    records = 0
    for line in stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3 or not re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", parts[0]):
            continue
        records += 1
        kind, name = parts[1], parts[2]
        fields = {m.group(1) for m in FIELD.finditer(" " + parts[3])} if len(parts) > 3 else set()
        seen.setdefault((kind, name), set()).update(fields)
    return records


def observed_fields(mtasim):
    """{(kind, name): {field, ...}} over the traces of every bundled scenario.

    One ``mtasim run`` over all of them (each run is still its own process
    inside it): a process per scenario cost most of this test's time."""
    seen = {}
    paths = sorted(SCENARIOS.rglob("*.scn"))
    proc = run_mtasim(mtasim, ["--quiet", "--trace", "-", *map(str, paths)], cwd=REPO_ROOT)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr}"
    records = collect_fields(proc.stdout, seen)
    assert records > 1000, f"only {records} trace records from {len(paths)} scenarios"
    return seen


@pytest.fixture(scope="module")
def observed(mtasim):
    return observed_fields(mtasim)


def expectation(kind, name, field):
    head = f"expect never {name}" if kind == "hook" else f"expect never trace {kind} {name}"
    return f"{head} {field}=mtasim-field-check\n"


def test_every_field_seen_is_accepted(mtasim, observed, tmp_path):
    seen = observed
    kinds = {k for k, _ in seen}
    # The traces must reach far enough to be a test of the table at all.
    assert {"hook", "provider", "smtp", "conn", "queue", "dns", "remote", "inject",
            "inbound", "mq", "client", "event", "plugin"} <= kinds, sorted(kinds)
    lines = [expectation(k, n, f) for (k, n), fields in sorted(seen.items()) for f in sorted(fields)]
    assert len(lines) > 200
    scn = tmp_path / "fields.scn"
    scn.write_text("".join(lines))
    proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_field_never_carried_is_refused(mtasim, tmp_path):
    scn = tmp_path / "bad.scn"
    scn.write_text("expect never trace dns query rcode=SERVFAIL\n")
    proc = run_mtasim(mtasim, [str(scn)], cwd=tmp_path)
    assert proc.returncode == 2
    assert "bad.scn:1:30: 'dns query' records never carry 'rcode'" in proc.stdout + proc.stderr


def table_entries():
    """(kind, name, fields) of sim/lang/record_fields.c's table, in its order"""
    src = (REPO_ROOT / "sim" / "lang" / "record_fields.c").read_text()
    body = src[src.index("table[] = {"):src.index("};", src.index("table[] = {"))]
    entries = [(k, n, f.split()) for k, n, f in TABLE_ENTRY.findall(body) if f]
    assert len(entries) > 40, entries     # the pattern still reads the table
    return entries


def failing_on_purpose_fields(mtasim, tmp_path):
    """the records of two runs that fail as intended: an MQ plugin's
    misbehaviour ("mq misbehaviour ... what=") and an inbound client whose
    expected reply code is not the one it gets ("client unexpected")"""
    seen = {}
    wrong = tmp_path / "client-wrong-code.scn"
    wrong.write_text("scenario client-wrong-code\nclient 203.0.113.50\n  expect 554\n  quit\n")
    misbehaves = REPO_ROOT / "fixtures" / "bad" / "mq-false-continue.scn"
    for path, code, verdict in ((misbehaves, 4, "(plugin misbehaved)"), (wrong, 1, "FAIL")):
        proc = run_mtasim(mtasim, ["--trace", "-", str(path)], cwd=REPO_ROOT)
        assert proc.returncode == code and verdict in proc.stdout, proc.stdout + proc.stderr
        collect_fields(proc.stdout, seen)
    return seen


def test_every_field_listed_is_carried(mtasim, observed, tmp_path):
    seen = {key: set(fields) for key, fields in observed.items()}
    for key, fields in failing_on_purpose_fields(mtasim, tmp_path).items():
        seen.setdefault(key, set()).update(fields)
    entries = table_entries()
    named = {(k, n) for k, n, _ in entries if n != "*"}
    never = []
    for kind, name, fields in entries:
        for field in fields:
            if name == "*":     # the names of the kind that have no line of their own
                carried = any(field in f for (k, n), f in seen.items()
                              if k == kind and (k, n) not in named)
            else:
                carried = field in seen.get((kind, name), set())
            if not carried:
                never.append(f"{kind} {name} {field}")
    assert never == [], ("sim/lang/record_fields.c lists fields that no record carries "
                         "(an expectation on them would parse and hold vacuously): "
                         + ", ".join(never))
