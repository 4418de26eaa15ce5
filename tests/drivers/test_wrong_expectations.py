"""Every bundled scenario must be able to fail.

A scenario whose expectations cannot fail proves nothing.  For each
scenarios/**/*.scn this module makes mutants - copies with exactly one
expectation made wrong - and requires that ``mtasim run`` exits 1 and names
the mutated line ("line N") in its output.

Mutants:
  * ``expect message ID FATE``: each other fate among delivered, deferred,
    bounced;
  * each pattern line of an ``expect hooks in order`` block (the indented
    lines after it): each matcher negated, one at a time
    (= -> !=, != -> =, >= -> <, < -> >=, <= -> >, > -> <=,
    ~REGEX -> ~"^mutant-never-matches$");
  * each pattern line swapped with the next one of the same block, when the
    two differ (order must matter).
  The same for ``expect hooks|trace exactly`` blocks, and additionally:
  * each pattern line of an ``expect trace in order`` block: each ``~``
    made never-matching and each ``=`` given an impossible value (a negated
    matcher such as ``line!=X`` nearly always finds some other record over
    every record kind, and a swap can be satisfied by a later repetition of
    the same record, so those would prove nothing there);
  * an ``exactly`` block: each pattern line removed, when another line of
    the block names the same record (so the count must matter);
  * a block scoped ``for domain|message|conn VALUE``: the value replaced by
    one no record has (the scope must matter);
  * ``expect never [trace KIND] NAME MATCHERS``: the matchers removed (a
    never with matchers must be narrower than the bare name);
  * ``expect count ... OP N``: the comparison negated, and for ``= N`` also
    N + 1 and N - 1; a ``for SCOPE VALUE`` on it pointed at a value no
    record has;
  * every ``at OP DURATION`` time bound (in blocks and on ``expect never``
    lines): the comparison negated;
  * every ``KEY=CONN_ERR_...`` in a pattern line: the name replaced by
    CONN_ERR_IOCTL, a valid name that the core never produces;
  * each ``expect CODE`` line of a ``client`` block: another code (a
    client expectation fails the run like any other);
  * ``expect message ID intact``: the run cut to 1ms (``run for``), so that
    nothing can have been received; the intact line must be reported.
  * ``expect [no] dsn for message ID [status S] [rcpt ADDR]``: "no" added or
    removed, the status made one no DSN reports (2.9.99), the recipient one
    no DSN names.

For a pattern mutant mtasim may name either the pattern line or the line of
its ``expect hooks in order`` header (the CLI reports expectations by the
header's line); both are accepted.

A mutant is written beside its original's place in a private copy of
scenarios/ (one per test process), so relative include/body-file paths
resolve exactly as for the original, and nothing is written into the
repository while other tests list it.

One test item per scenario: it runs all of that scenario's mutants in one
``mtasim run --json`` and fails listing every mutant that did not fail as
it must (its id, the changed line and mtasim's whole account of that
mutant run alone).  Every mutant is still checked on its own; only the
bookkeeping is per scenario.  One item per mutant (about 4,000) cost a
process start per mutant at first, then, with the runs shared per
scenario, each of the two xdist workers ran most scenarios' mutants once
more (the items of one scenario went to both) and pytest's per-item cost
was about a fifth of the module's CPU.
"""

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, describe_exit, run_mtasim

SCENARIOS = REPO_ROOT / "scenarios"
FATES = ("delivered", "deferred", "bounced", "partial")

EXPECT_MESSAGE = re.compile(r"^(\s*expect\s+message\s+\S+\s+)(delivered|deferred|bounced|partial)\b")
EXPECT_BLOCK = re.compile(r"^\s*expect\s+(hooks|trace)\s+(in\s+order|exactly)"
                          r"(\s+for\s+(domain|message|conn)\s+(\S+))?\s*(#.*)?$")
EXPECT_NEVER = re.compile(r"^\s*expect\s+never\s")
EXPECT_DSN = re.compile(r"^(\s*expect\s+)(no\s+)?(dsn\s+for\s+message\s+\S+)(.*)$")
EXPECT_COUNT = re.compile(r"^(\s*expect\s+count\s.*\s)(!=|>=|<=|=|<|>)(\s+)(\d+)(\s*(#.*)?)$")
COUNT_SCOPE = re.compile(r"\sfor\s+(domain|message|conn)\s+(\S+)\s+(!=|>=|<=|=|<|>)\s+\d+\s*(#.*)?$")
EXPECT_INTACT = re.compile(r"^\s*expect\s+message\s+\d+\s+intact\b")
RUN_FOR = re.compile(r"^(\s*run\s+for\s+)(\S+)")
CLIENT = re.compile(r"^client\s")
CLIENT_EXPECT = re.compile(r"^(\s+expect\s+)(\d{3})\b")
CONN_ERR = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*=)(CONN_ERR_[A-Z_]+)")
NO_SUCH_SCOPE = {"domain": "mutant.invalid", "message": "999999", "conn": "999999"}
# KEY OP VALUE; the longest operators first so that "<=" is not read as "<".
MATCHER = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)(!=|>=|<=|=|<|>|~)(.*)$", re.S)
NEGATE = {"=": "!=", "!=": "=", ">=": "<", "<": ">=", "<=": ">", ">": "<="}
NEVER = '"^mutant-never-matches$"'


@dataclass(frozen=True)
class Mutant:
    scenario: Path      # the original
    lines: tuple        # the mutated file's lines, with their line ends
    lineno: int         # the mutated line (1-based)
    accept: tuple       # line numbers mtasim may name for this mutant
    what: str           # short description for the test id

    @property
    def id(self):
        return f"{self.scenario.relative_to(SCENARIOS)}:L{self.lineno}:{self.what}"


def tokens(line):
    """(start, end) spans of the whitespace-separated words of line.

    A "quoted string" (backslash escapes inside) belongs to its word even if
    it holds spaces; a word starting with '#' begins a comment and ends the
    scan.
    """
    spans, i, n = [], 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        if line[i] == "#":
            break
        start, quoted = i, False
        while i < n and (quoted or not line[i].isspace()):
            if line[i] == "\\" and quoted:
                i += 1
            elif line[i] == '"':
                quoted = not quoted
            i += 1
        spans.append((start, min(i, n)))
    return spans


def hook_blocks(lines):
    """[(header_lineno, [pattern_lineno, ...])] for each ``expect hooks|trace`` block.

    A block's patterns are the indented lines that follow the header; blank
    and comment lines inside it are skipped, the first unindented line ends it.
    """
    blocks, i = [], 0
    while i < len(lines):
        if not EXPECT_BLOCK.match(lines[i].rstrip("\r\n")):
            i += 1
            continue
        header, patterns = i + 1, []
        i += 1
        while i < len(lines):
            text = lines[i].rstrip("\r\n")
            if not text.strip() or text.strip().startswith("#"):
                i += 1
                continue
            if not text[0].isspace():
                break
            patterns.append(i + 1)
            i += 1
        blocks.append((header, patterns))
    return blocks


def with_line(lines, lineno, text):
    """lines with line lineno (1-based) replaced by text, keeping its line end."""
    old = lines[lineno - 1]
    end = old[len(old.rstrip("\r\n")):]
    out = list(lines)
    out[lineno - 1] = text + end
    return tuple(out)


def mutants_of(path):
    """Every mutant of one scenario file, in file order."""
    lines = tuple(path.read_text(encoding="utf-8").splitlines(keepends=True))
    found = []

    for n, line in enumerate(lines, start=1):
        m = EXPECT_MESSAGE.match(line)
        if not m:
            continue
        for fate in FATES:
            if fate != m.group(2):
                text = m.group(1) + fate + line.rstrip("\r\n")[m.end():]
                found.append(Mutant(path, with_line(lines, n, text), n, (n,),
                                    f"{m.group(2)}->{fate}"))

    for header, patterns in hook_blocks(lines):
        found += block_mutants(path, lines, header, patterns)
        kind, form = EXPECT_BLOCK.match(lines[header - 1]).group(1, 2)
        if kind == "trace" and form.split() == ["in", "order"]:
            found += trace_order_mutants(path, lines, header, patterns)
            continue
        for k, n in enumerate(patterns):
            text = lines[n - 1].rstrip("\r\n")
            for start, end in tokens(text)[1:]:        # the first word is the hook name
                m = MATCHER.match(text[start:end])
                if not m:
                    continue
                key, op, value = m.groups()
                new = f"{key}~{NEVER}" if op == "~" else f"{key}{NEGATE[op]}{value}"
                if new == text[start:end]:
                    continue    # the pattern already is the never-matching regex
                found.append(Mutant(path, with_line(lines, n, text[:start] + new + text[end:]),
                                    n, (n, header), f"{key}{op}-negated"))
            if k + 1 < len(patterns):
                nxt = patterns[k + 1]
                a, b = lines[n - 1].rstrip("\r\n"), lines[nxt - 1].rstrip("\r\n")
                if a != b:
                    swapped = with_line(with_line(lines, n, b), nxt, a)
                    found.append(Mutant(path, swapped, n, (n, nxt, header), f"swap-L{nxt}"))
    return (found + line_mutants(path, lines) + conn_err_mutants(path, lines)
            + client_mutants(path, lines) + intact_mutants(path, lines))


def conn_err_mutants(path, lines):
    """Each KEY=CONN_ERR_NAME of a block's pattern line, another valid name."""
    found = []
    for header, patterns in hook_blocks(lines):
        for n in patterns:
            text = lines[n - 1].rstrip("\r\n")
            for start, end in tokens(text):
                m = CONN_ERR.match(text[start:end])
                if not m or m.group(2) == "CONN_ERR_IOCTL":
                    continue
                new = m.group(1) + "CONN_ERR_IOCTL" + text[start + m.end():end]
                found.append(Mutant(path, with_line(lines, n, text[:start] + new + text[end:]),
                                    n, (n, header), f"{m.group(2)}-renamed"))
    return found


def client_mutants(path, lines):
    """Each ``expect CODE`` line of a client block, with another code."""
    found, in_client = [], False
    for n, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.strip().startswith("#"):
            continue
        if not text[0].isspace():
            in_client = bool(CLIENT.match(text))
            continue
        m = CLIENT_EXPECT.match(text) if in_client else None
        if m:
            code = "554" if m.group(2) != "554" else "250"
            found.append(Mutant(path, with_line(lines, n, m.group(1) + code + text[m.end():]),
                                n, (n,), f"client-{m.group(2)}->{code}"))
    return found


def intact_mutants(path, lines):
    """``expect message ID intact``: the run cut short before any delivery."""
    found = []
    for n, line in enumerate(lines, start=1):
        if not EXPECT_INTACT.match(line):
            continue
        runs = [k for k, l in enumerate(lines, start=1) if RUN_FOR.match(l)]
        if runs:
            k = runs[0]
            m = RUN_FOR.match(lines[k - 1])
            text = lines[k - 1].rstrip("\r\n")
            mutated = with_line(lines, k, m.group(1) + "1ms" + text[m.end():])
        else:
            last = lines[-1] if lines else ""
            mutated = tuple(lines[:-1]) + ((last if last.endswith("\n") else last + "\n"),
                                          "run for 1ms\n") if lines else ("run for 1ms\n",)
        found.append(Mutant(path, mutated, n, (n,), "intact-cut-short"))
    return found


def impossible(value):
    """A value no trace field has: the same shape, made unmatchable."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[:-1] + '-mutant"'
    if re.fullmatch(r"-?\d+", value):
        return "987654321987"
    return value + "-mutant"


def trace_order_mutants(path, lines, header, patterns):
    """``expect trace in order`` lines: each ``~`` made never-matching and each
    ``=`` given an impossible value, so that every line is shown to be checked."""
    found = []
    for n in patterns:
        text = lines[n - 1].rstrip("\r\n")
        for start, end in tokens(text)[2:]:          # KIND NAME, then matchers
            m = MATCHER.match(text[start:end])
            if not m:
                continue
            key, op, value = m.groups()
            if op == "~":
                new = f"{key}~{NEVER}"
            elif op == "=" and key != "at":
                new = f"{key}={impossible(value)}"
            elif key == "at":
                new = f"{key}{NEGATE[op]}{value}"
            else:
                continue
            if new != text[start:end]:
                found.append(Mutant(path, with_line(lines, n, text[:start] + new + text[end:]),
                                    n, (n, header), f"{key}{op}-unmatchable"))
    return found


def record_of(text, is_trace):
    """The (kind, name) a pattern line names."""
    words = [text[a:b] for a, b in tokens(text)]
    return tuple(words[:2]) if is_trace else ("hook", words[0])


def block_mutants(path, lines, header, patterns):
    """The mutants an ``exactly`` block or a scope adds to those of every block."""
    found = []
    m = EXPECT_BLOCK.match(lines[header - 1].rstrip("\r\n"))
    if m.group(3):
        text = lines[header - 1].rstrip("\r\n")
        new = text[:m.start(5)] + NO_SUCH_SCOPE[m.group(4)] + text[m.end(5):]
        found.append(Mutant(path, with_line(lines, header, new), header, (header,),
                            f"scope-{m.group(4)}-nowhere"))
    if m.group(2) == "exactly":
        is_trace = m.group(1) == "trace"
        names = [record_of(lines[n - 1].rstrip("\r\n"), is_trace) for n in patterns]
        for k, n in enumerate(patterns):
            if names.count(names[k]) > 1:
                dropped = lines[:n - 1] + lines[n:]
                found.append(Mutant(path, dropped, n, (header,), "line-removed"))
    return found


def line_mutants(path, lines):
    """The mutants of one-line ``expect never``, ``expect count`` and ``expect dsn``."""
    found = []
    for n, line in enumerate(lines, start=1):
        text = line.rstrip("\r\n")
        if EXPECT_NEVER.match(text):
            spans = tokens(text)
            kept = [s for s in spans if not MATCHER.match(text[s[0]:s[1]])]
            if len(kept) < len(spans):
                bare = " ".join(text[a:b] for a, b in kept)
                found.append(Mutant(path, with_line(lines, n, bare), n, (n,), "never-unqualified"))
            for start, end in spans:
                m = MATCHER.match(text[start:end])
                if m and m.group(1) == "at" and m.group(2) in NEGATE:
                    new = f"at{NEGATE[m.group(2)]}{m.group(3)}"
                    found.append(Mutant(path, with_line(lines, n, text[:start] + new + text[end:]),
                                        n, (n,), "never-at-negated"))
        m = EXPECT_DSN.match(text)
        if m:
            head, no, core, rest = m.group(1), m.group(2), m.group(3), m.group(4)
            # "expect no dsn" takes no status or rcpt: the negation drops them.
            found.append(Mutant(path, with_line(lines, n, f"{head}{'' if no else 'no '}{core}"),
                                n, (n,), "dsn-negated"))
            for word, wrong in (("status", "2.9.99"), ("rcpt", "mutant@mutant.invalid")):
                changed = re.sub(rf"(\s{word}\s+)\S+", rf"\g<1>{wrong}", rest, count=1)
                if changed != rest:
                    found.append(Mutant(path, with_line(lines, n, f"{head}{no or ''}{core}{changed}"),
                                        n, (n,), f"dsn-{word}"))
        m = EXPECT_COUNT.match(text)
        if m:
            head, op, gap, num, tail = m.group(1), m.group(2), m.group(3), int(m.group(4)), m.group(5)
            changes = [(NEGATE[op], num, f"{op}-negated")]
            if op == "=":
                changes.append(("=", num + 1, "N+1"))
                if num > 0:
                    changes.append(("=", num - 1, "N-1"))
            for new_op, new_num, what in changes:
                found.append(Mutant(path, with_line(lines, n, f"{head}{new_op}{gap}{new_num}{tail}"),
                                    n, (n,), f"count-{what}"))
            sc = COUNT_SCOPE.search(text)
            if sc and not (op == "=" and num == 0):
                new = text[:sc.start(2)] + NO_SUCH_SCOPE[sc.group(1)] + text[sc.end(2):]
                found.append(Mutant(path, with_line(lines, n, new), n, (n,),
                                    f"count-scope-{sc.group(1)}-nowhere"))
    return found


def scenarios_with_mutants():
    """One param per bundled scenario that has at least one mutant."""
    scenarios = sorted(p for p in SCENARIOS.rglob("*.scn")
                       if not any(part.startswith(".") for part in p.relative_to(SCENARIOS).parts))
    params = [pytest.param(s, id=str(s.relative_to(SCENARIOS))) for s in scenarios if mutants_of(s)]
    if not params:
        # No mutant means nothing shown able to fail: that fails, it never passes.
        params = [pytest.param(None, id="no-mutants")]
    return params


@pytest.fixture(scope="session")
def scenario_copy(tmp_path_factory):
    """A private copy of scenarios/ for this test process's mutants.

    Writing mutants next to the real scenarios raced with every other test
    that lists scenarios/ under -n auto.  In a copy, relative include,
    body-file and plugin paths resolve exactly as for the originals (no
    scenario reaches outside scenarios/; plugins named bare fall back to
    the build tree's fixtures)."""
    root = tmp_path_factory.mktemp("mutants") / "scenarios"
    shutil.copytree(SCENARIOS, root, ignore=shutil.ignore_patterns(".*"))
    return root


def mutant_file(mutant, root, index):
    """Where mutant number index of its scenario is written in the copy: a
    dot-file beside the original's place, so that relative include,
    body-file and plugin paths resolve as for the original (every bundled
    scenario names itself with a scenario line, so the file name changes
    nothing in the run)."""
    original = root / mutant.scenario.relative_to(SCENARIOS)
    return original.with_name(f".{original.stem}.mutant{index}.scn")


def run_mutants_of(mtasim, scenario, mutants, root):
    """Run every mutant of scenario in one ``mtasim run --json`` (one process
    instead of one per mutant: the same runs, a fraction of the start-up
    cost); [(exit code, text)], one per mutant, in order (two mutants of a
    line may share an id).  The text is each failed expectation's line,
    text and diff, as mtasim prints them."""
    paths = [mutant_file(m, root, i) for i, m in enumerate(mutants)]
    for mutant, path in zip(mutants, paths):
        path.write_text("".join(mutant.lines), encoding="utf-8", newline="")
    out = root.parent / f"{scenario.stem}.mutants.json"
    try:
        proc = run_mtasim(mtasim, ["--quiet", "--json", str(out), *map(str, paths)],
                          cwd=REPO_ROOT, timeout=600)
        runs = json.loads(out.read_text())["runs"] if out.exists() else []
    finally:
        for path in paths:
            path.unlink()
    assert len(runs) == len(mutants), (f"mtasim gave {len(runs)} results for {len(mutants)} "
                                       f"mutants of {scenario}\n{proc.stdout}{proc.stderr}")
    results = []
    for run in runs:
        text = "\n".join(f"line {e['line']}: {e['text']}\n{e.get('diff') or ''}"
                         for e in run.get("expectations", []) if not e.get("passed"))
        results.append((run.get("exit_code"), text + "\n" + (run.get("error") or "")))
    return results


def survivor(mutant, code, output, mtasim, root):
    """None when the mutant failed as it must (exit 1, naming one of the
    lines it may name); else what is wrong with it, with mtasim's whole
    account of that mutant run alone."""
    if code == 1 and any(re.search(rf"\bline {n}\b", output) for n in mutant.accept):
        return None
    path = mutant_file(mutant, root, 0)
    path.write_text("".join(mutant.lines), encoding="utf-8", newline="")
    try:
        proc = run_mtasim(mtasim, [str(path)], cwd=REPO_ROOT)
    finally:
        path.unlink()
    changed = mutant.lines[mutant.lineno - 1].rstrip("\r\n").strip()
    context = (f"mutant {mutant.id} (line {mutant.lineno}: {changed})\n"
               f"--- mtasim output ---\n{proc.stdout}{proc.stderr}")
    if code != 1:
        return f"expected exit 1 (an expectation failed), got {code} ({describe_exit(code)})\n{context}"
    return f"exit 1, but the output names none of lines {', '.join(map(str, mutant.accept))}\n{context}"


@pytest.mark.parametrize("scenario", scenarios_with_mutants())
def test_wrong_expectations_fail(scenario, mtasim, scenario_copy):
    """Every mutant of one scenario fails, naming its line."""
    if scenario is None:
        pytest.fail("no scenarios/**/*.scn with expectations to mutate", pytrace=False)
    mutants = mutants_of(scenario)
    results = run_mutants_of(mtasim, scenario, mutants, scenario_copy)
    failed = [s for s in (survivor(m, code, output, mtasim, scenario_copy)
                          for m, (code, output) in zip(mutants, results)) if s]
    if failed:
        pytest.fail(f"{len(failed)} of the {len(mutants)} mutants of "
                    f"{scenario.relative_to(REPO_ROOT)} did not fail as they must:\n\n"
                    + "\n\n".join(failed), pytrace=False)
