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
"""

import re

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

SCENARIOS = REPO_ROOT / "scenarios"
FIELD = re.compile(r'\s([A-Za-z_][A-Za-z0-9_.\-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def observed_fields(mtasim):
    """{(kind, name): {field, ...}} over the traces of every bundled scenario.

    One ``mtasim run`` over all of them (each run is still its own process
    inside it): a process per scenario cost most of this test's time."""
    seen = {}
    paths = sorted(SCENARIOS.rglob("*.scn"))
    proc = run_mtasim(mtasim, ["--quiet", "--trace", "-", *map(str, paths)], cwd=REPO_ROOT)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr}"
    records = 0
    for line in proc.stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3 or not re.fullmatch(r"\d\d:\d\d:\d\d\.\d{6}", parts[0]):
            continue
        records += 1
        kind, name = parts[1], parts[2]
        fields = {m.group(1) for m in FIELD.finditer(" " + parts[3])} if len(parts) > 3 else set()
        seen.setdefault((kind, name), set()).update(fields)
    assert records > 1000, f"only {records} trace records from {len(paths)} scenarios"
    return seen


def expectation(kind, name, field):
    head = f"expect never {name}" if kind == "hook" else f"expect never trace {kind} {name}"
    return f"{head} {field}=mtasim-field-check\n"


def test_every_field_seen_is_accepted(mtasim, tmp_path):
    seen = observed_fields(mtasim)
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
