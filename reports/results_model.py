"""results_model - load mtasim result JSON and derive what the reports draw.

Contract
--------
``load_results(paths)`` reads one or more files written by
``mtasim run --json FILE`` (docs/results.md) and returns a list of ``Run``
objects in file order, then run order.  Anything that is not such a file -
missing, unreadable, not JSON, not the shape docs/results.md documents
(results_schema.py checks every field) - raises ``ResultsError`` with a
one-line message naming the file and the JSON path of the bad value; nothing
is written by the callers in that case.

A ``Run`` exposes the JSON's fields with defaults for the optional ones
(older files have no ``connection_log``, ``conn_err`` or ``trace``), and
names derived for reports:

* ``name``       the scenario's name, else the file's stem
* ``classname``  the file's folder with dots: ``scenarios/dns/x.scn`` ->
                 ``scenarios.dns``
* ``replay``     the command that reproduces the run, as mtasim prints it

From the optional ``trace`` (``mtasim run --json-trace``) it derives, all
deterministically from the records alone:

* ``ladder_rows(run)``  rows of the sequence diagram: every SMTP line and
  connection event, tied to its connection (``connection_log`` order)
* ``hook_calls(run)``   every hook call: (t_us, name, fields)
* ``queue_depth(run)``  (t_us, active, delayed, in_flight) after each
  change of the queue, from its ``queue`` records

Only the Python standard library is used.
"""

import json
import os
from dataclasses import dataclass, field

from results_schema import MAX_DEPTH, check_document


class ResultsError(Exception):
    """A results file that cannot be used; str() is the one-line message."""


# ---------------------------------------------------------------- loading


def load_results(paths):
    """Every run of every file in paths, in order; ResultsError on bad input."""
    if not paths:
        raise ResultsError("no result file given")
    runs = []
    for path in paths:
        document = _read_json(path)
        runs.extend(_runs_of(path, document))
    if runs and all(r.explore is not None for r in runs):
        # mtasim explore's shards (docs/explore.md "Sharding"): each holds
        # every N-th seed; merged, the runs are in the single process's
        # order, by scenario (first appearance) and seed.
        first = {}
        for r in runs:
            first.setdefault(r.file, len(first))
        runs.sort(key=lambda r: (first[r.file], r.seed if r.seed is not None else -1))
        # One process shrinks the lowest failing seed of each (scenario,
        # check) and points the others at it; a shard did so for its own
        # seeds. The lowest seed's shard shrank it as one process would:
        # every run of that check now points there.
        lowest = {}
        for r in runs:
            check = r.explore.get("check")
            if check is not None:
                lowest.setdefault((r.file, check), r.explore)
        for r in runs:
            check = r.explore.get("check")
            if check is not None:
                low = lowest[(r.file, check)]
                r.explore = dict(r.explore, **{k: low.get(k) for k in ("shrunk", "replay",
                                                                       "reproduced")})
    return runs


def _read_json(path):
    """The parsed JSON of path, or ResultsError saying why not."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read: {exc}") from None
    try:
        document = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except ValueError as exc:          # NaN, Infinity: not JSON (RFC 8259 section 6)
        raise ResultsError(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:
        raise ResultsError(f"{path}: JSON nested too deeply (a result file nests at most "
                           f"{MAX_DEPTH} levels; see docs/results.md)") from None
    problem = check_document(document)
    if problem:
        raise ResultsError(f"{path}: {problem}")
    return document


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _runs_of(path, document):
    """The Run objects of one parsed file, checking the shape as it goes."""
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
        raise ResultsError(f"{path}: not an mtasim result file (no \"runs\" list; "
                           "see docs/results.md)")
    runs = []
    for index, raw in enumerate(document["runs"], 1):
        where = f"{path}: run {index}"
        if not isinstance(raw, dict):
            raise ResultsError(f"{where}: expected an object, got {type(raw).__name__}")
        runs.append(Run.from_json(raw, where))
    return runs


def _want(raw, key, types, where, required=True, default=None):
    """raw[key] checked against types; default when absent and not required."""
    if key not in raw or (raw[key] is None and not required):
        if required:
            raise ResultsError(f"{where}: missing \"{key}\"")
        return default
    value = raw[key]
    # bool is an int in Python; a JSON true is never a count or a time.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        names = "/".join(t.__name__ for t in _as_tuple(types))
        raise ResultsError(f"{where}: \"{key}\" should be {names}, got {json.dumps(value)[:60]}")
    return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


# ---------------------------------------------------------------- runs


@dataclass
class Expectation:
    """One ``expect`` of a run."""
    line: int
    text: str
    passed: bool
    diff: str | None


@dataclass
class Run:
    """One scenario run (one seed) as recorded in the result JSON."""
    file: str
    scenario: str | None
    seed: int | None
    verdict: str
    exit_code: int
    digest: str | None
    error: str | None
    wall_ms: float
    expectations: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    violations: list = field(default_factory=list)
    connection_log: list = field(default_factory=list)
    conn_err: dict = field(default_factory=dict)
    trace: list | None = None
    end_us: int = 0
    events: int = 0
    explore: dict | None = None     # mtasim explore's seed, check, shrunk file, replay

    @classmethod
    def from_json(cls, raw, where):
        """A Run from one element of "runs"; ResultsError when malformed."""
        # results_schema.check_document has checked every type and word already.
        verdict = _want(raw, "verdict", str, where)
        expectations = []
        for i, e in enumerate(_want(raw, "expectations", list, where, False, []), 1):
            ewhere = f"{where}: expectation {i}"
            if not isinstance(e, dict):
                raise ResultsError(f"{ewhere}: expected an object")
            expectations.append(Expectation(
                line=_want(e, "line", int, ewhere, False, 0),
                text=_want(e, "text", str, ewhere, False, "expect"),
                passed=_want(e, "passed", bool, ewhere),
                diff=_want(e, "diff", str, ewhere, False, None)))
        trace = _want(raw, "trace", list, where, False, None)
        return cls(
            file=_want(raw, "file", str, where),
            scenario=_want(raw, "scenario", str, where, False, None),
            seed=_want(raw, "seed", int, where, False, None),
            verdict=verdict,
            exit_code=_want(raw, "exit_code", int, where),
            digest=_want(raw, "digest", str, where, False, None),
            error=_want(raw, "error", str, where, False, None),
            wall_ms=float(_want(raw, "wall_ms", (int, float), where, False, 0.0)),
            expectations=expectations,
            messages=[m for m in _want(raw, "messages", list, where, False, [])
                      if isinstance(m, dict)],
            violations=[str(v) for v in _want(raw, "violations", list, where, False, [])],
            connection_log=[c for c in _want(raw, "connection_log", list, where, False, [])
                            if isinstance(c, dict)],
            conn_err=_want(raw, "conn_err", dict, where, False, {}),
            trace=trace,
            end_us=_want(raw, "end_us", int, where, False, 0),
            events=_want(raw, "events", int, where, False, 0),
            explore=_want(raw, "explore", dict, where, False, None))

    # Names for reports.

    @property
    def name(self):
        """The scenario's name, else the file's stem (a file that did not parse)."""
        if self.scenario:
            return self.scenario
        return os.path.splitext(os.path.basename(self.file))[0]

    @property
    def classname(self):
        """The file's folder, dotted: the JUnit class of the test case."""
        folder = os.path.dirname(os.path.normpath(self.file)).strip("/")
        return folder.replace("/", ".") if folder and folder != "." else "scenarios"

    @property
    def passed(self):
        return self.verdict == "pass"

    @property
    def replay(self):
        """The command that replays this run with its trace (mtasim's own words)."""
        if self.explore is not None:
            # An explored run: its faults are not in the file; the shrunk
            # scenario has them, or explore replays the seed.
            if isinstance(self.explore.get("replay"), str):
                return self.explore["replay"]
        if self.seed is None:
            return f"mtasim check {_shell_word(self.file)}"
        return f"mtasim run --seed {self.seed} --trace - {_shell_word(self.file)}"

    @property
    def failed_expectations(self):
        return [e for e in self.expectations if not e.passed]

    @property
    def headline(self):
        """Why the run did not pass, in one line (empty when it passed)."""
        if self.verdict == "pass":
            return ""
        if self.verdict == "fail" and self.failed_expectations:
            e = self.failed_expectations[0]
            return f"line {e.line}: {e.text}"
        if self.verdict == "invariant" and self.violations:
            return "invariant violated: " + self.violations[0]
        if self.error:
            return self.error
        return {"error": "bad input", "invariant": "invariant violated",
                "plugin": "a plugin crashed or misbehaved"}.get(self.verdict, self.verdict)

    @property
    def failure_text(self):
        """Everything a reader needs about a failure: diffs, violations, error."""
        parts = []
        for e in self.failed_expectations:
            parts.append(f"line {e.line}: {e.text}\n{e.diff or ''}".rstrip("\n"))
        parts += [f"invariant: {v}" for v in self.violations]
        if self.error:
            parts.append(f"error: {self.error}")
        if self.explore is not None and self.explore.get("check"):
            parts.append(f"explored: seed {self.seed}, check {self.explore['check']}, "
                         f"shrunk to {self.explore.get('shrunk')}")
        return "\n".join(parts)


def _shell_word(word):
    """word quoted for a POSIX shell when it needs it (same rule as shlex.quote)."""
    import shlex
    return shlex.quote(word)


def summary_counts(runs):
    """(passed, failed, errors) as mtasim counts them: errors are failures too."""
    passed = sum(1 for r in runs if r.passed)
    errors = sum(1 for r in runs if r.verdict == "error")
    return passed, len(runs) - passed, errors


def junit_names(runs):
    """A test-case name per run: the scenario's, plus the seed where one
    scenario file was run with several seeds (--seeds)."""
    seen = {}
    for r in runs:
        seen[(r.classname, r.name)] = seen.get((r.classname, r.name), 0) + 1
    return [f"{r.name}[seed {r.seed}]" if seen[(r.classname, r.name)] > 1 and r.seed is not None
            else r.name for r in runs]


# ---------------------------------------------------------------- time


def time_str(t_us):
    """HH:MM:SS.mmm for microseconds after the epoch (hours grow past 24)."""
    if t_us is None:
        return "-"
    ms = t_us // 1000
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def time_str_us(t_us):
    """HH:MM:SS.uuuuuu, as in the trace file."""
    s = t_us // 1000000
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{t_us % 1000000:06d}"


def duration_str(d_us):
    """A short human duration: 40ms, 5.2s, 5m, 1h30m, 2d3h."""
    if d_us < 1000:
        return f"{d_us}µs"
    if d_us < 1000000:
        return f"{d_us / 1000:g}ms"
    s = d_us / 1000000
    if s < 60:
        return f"{s:.1f}s".replace(".0s", "s")
    m, s = divmod(int(s), 60)
    h, m = divmod(m, 60)
    d, h = divmod(h, 24)
    if d:
        return f"{d}d{h}h" if h else f"{d}d"
    if h:
        return f"{h}h{m}m" if m else f"{h}h"
    return f"{m}m{s}s" if s else f"{m}m"


# ---------------------------------------------------------------- trace views


@dataclass
class LadderRow:
    """One arrow or mark of the sequence diagram."""
    t_us: int
    conn: int           # index into connection_log
    kind: str           # send, recv, data, open, established, refused, unreachable,
                        # reset, eof, timeout, close
    label: str          # what the arrow says
    detail: str = ""    # the full text (tooltip) when the label is shortened
    code: int | None = None     # reply code of a recv row


# Connection events in the trace, as the ladder shows them.
CONN_EVENT_LABELS = {
    "established": "connected",
    "refused": "connection refused",
    "unreachable": "network unreachable",
    "reset": "connection reset (RST)",
    "eof": "remote closed the connection",
}


def ladder_rows(run):
    """The sequence diagram's rows, in trace order; [] without a trace.

    Records are tied to connections the way mtasim numbers them: the k-th
    "conn open fd=N" is the k-th connection_log entry with fd N, and the
    records with that descriptor up to its "conn close" belong to it.
    A multi-line reply ("250-..." lines and the final "250 ...") that
    arrives at one instant is one row, its lines in the tooltip.
    """
    if not run.trace:
        return []
    by_fd = {}          # fd -> indexes into connection_log, in order
    for i, c in enumerate(run.connection_log):
        by_fd.setdefault(c.get("fd"), []).append(i)
    current = {}        # fd -> index of the open connection
    rows = []
    pending_reply = {}  # conn index -> continuation lines waiting for their final line
    for t_us, kind, name, fields in run.trace:
        if kind == "conn" and name == "open":
            fd = fields.get("fd")
            queue = by_fd.get(fd)
            if queue:
                current[fd] = queue.pop(0)
                rows.append(LadderRow(t_us, current[fd], "open",
                                      f"connect fd {fd}  {fields.get('src', '')} → "
                                      f"{fields.get('dst', '')}"))
            continue
        if kind == "conn" and fields.get("fd") in current:
            conn = current[fields["fd"]]
            if name == "close":
                rows.append(LadderRow(t_us, conn, "close",
                                      f"close ({fields.get('rx_bytes', 0)} bytes received)"))
                del current[fields["fd"]]
            elif name in CONN_EVENT_LABELS:
                rows.append(LadderRow(t_us, conn, name, CONN_EVENT_LABELS[name]))
            continue
        if kind == "hook" and name == "log_client_connection_failure":
            conn = _conn_for_failure(run, current, fields)
            if conn is not None and fields.get("err") == "CONN_ERR_CONNECT_TIMEOUT":
                rows.append(LadderRow(t_us, conn, "timeout", "connect timed out"))
            continue
        if kind != "smtp" or fields.get("conn") not in current:
            continue
        conn = current[fields["conn"]]
        if name == "send":
            if "data_bytes" in fields:
                rows.append(LadderRow(t_us, conn, "data",
                                      f"message body, {fields['data_bytes']} bytes, then ."))
            else:
                rows.append(LadderRow(t_us, conn, "send", str(fields.get("line", ""))))
        elif name == "recv":
            line = str(fields.get("line", ""))
            if len(line) > 3 and line[:3].isdigit() and line[3] == "-":
                pending_reply.setdefault(conn, []).append(line)
                continue
            lines = pending_reply.pop(conn, []) + [line]
            code = int(line[:3]) if line[:3].isdigit() else None
            label = lines[0] if len(lines) == 1 else f"{lines[0]}  (+{len(lines) - 1} lines)"
            rows.append(LadderRow(t_us, conn, "recv", label, "\n".join(lines), code))
    return rows


def _conn_for_failure(run, current, fields):
    """The open connection a log_client_connection_failure call is about:
    the most recently opened one to its address (as mtasim decides)."""
    addr = fields.get("addr")
    best = None
    for conn in current.values():
        remote = str(run.connection_log[conn].get("remote") or "")
        if remote.split(":")[0] == addr and (best is None or conn > best):
            best = conn
    return best


def hook_calls(run):
    """Every hook call of the trace: (t_us, name, fields)."""
    return [(t, name, fields) for t, kind, name, fields in (run.trace or []) if kind == "hook"]


def queue_depth(run):
    """(t_us, active, delayed, in_flight) after each instant the queue changed.

    A message part (msg, domain) enters the active queue when injected,
    goes in flight at "attempt", waits at "delayed", comes back at "active"
    and leaves at "done"; several changes at one instant give one point.
    """
    where = {}
    points = []
    for t_us, kind, name, fields in run.trace or []:
        if kind != "queue":
            continue
        key = (fields.get("msg"), fields.get("domain"))
        state = {"inject": "active", "active": "active", "attempt": "in_flight",
                 "delayed": "delayed", "done": None}.get(name, "unchanged")
        if state == "unchanged":
            continue
        if state is None:
            where.pop(key, None)
        else:
            where[key] = state
        counts = tuple(sum(1 for s in where.values() if s == wanted)
                       for wanted in ("active", "delayed", "in_flight"))
        if points and points[-1][0] == t_us:
            points[-1] = (t_us,) + counts
        else:
            points.append((t_us,) + counts)
    return points
