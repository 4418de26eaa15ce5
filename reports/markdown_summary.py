"""markdown_summary - mtasim runs as a CI job summary (GitHub step summary style).

Contract
--------
``markdown_document(runs)`` returns Markdown text with

* a heading with the counts (passed, failed, of which bad input);
* for each run that did not pass: a collapsible ``<details>`` block whose
  summary names the scenario, its file, seed and what failed, holding
  mtasim's diff in a fenced block and the replay command;
* every run in a table (verdict, scenario, file, seed, expectations met,
  connections, digest, wall time), failures first, inside a ``<details>``
  block when all passed so the page stays short.

GitHub renders HTML inside Markdown, and scenario names, paths and diffs
come from scenario files and remote replies: everything outside fenced
blocks is HTML-escaped and table cells have ``|`` escaped; a fence is
longer than any run of backticks in its content, so no text can close it.
The output depends only on the runs (wall times aside).
"""

import html
import re

from results_model import summary_counts

VERDICT_ICONS = {"pass": "✅", "fail": "❌", "error": "⚠️", "invariant": "💥", "plugin": "🧩"}


def _cell(text):
    """Text for a table cell: HTML-escaped, pipes and line ends neutralised."""
    return html.escape(str(text)).replace("|", "&#124;").replace("\n", " ")


def _code(text):
    """Inline code that no content can break out of (an HTML <code>)."""
    return f"<code>{_cell(text)}</code>"


def _fenced(text, info="text"):
    """A fenced code block longer than any backtick run inside text."""
    longest = max((len(m) for m in re.findall("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def _table(runs):
    """The table of runs, failures first (then in input order)."""
    ordered = [r for r in runs if not r.passed] + [r for r in runs if r.passed]
    lines = ["| | scenario | file | seed | expectations | connections | digest | wall |",
             "|---|---|---|---:|---:|---:|---|---:|"]
    for r in ordered:
        met = sum(1 for e in r.expectations if e.passed)
        seed = "" if r.seed is None else r.seed
        digest = _code(r.digest[:12]) if r.digest else ""
        lines.append(f"| {VERDICT_ICONS[r.verdict]} {r.verdict} | {_cell(r.name)} | {_code(r.file)} "
                     f"| {seed} | {met}/{len(r.expectations)} | {len(r.connection_log)} "
                     f"| {digest} | {r.wall_ms:.0f} ms |")
    return "\n".join(lines)


def _failure_block(run):
    """A collapsible account of one run that did not pass."""
    seed = "" if run.seed is None else f" seed {run.seed}"
    summary = (f"{VERDICT_ICONS[run.verdict]} <b>{_cell(run.name)}</b> {_code(run.file)}{seed} "
               f"— {_cell(run.headline)}")
    return "\n".join([
        "<details>",
        f"<summary>{summary}</summary>",
        "",
        _fenced(run.failure_text or run.headline),
        "",
        "Replay:",
        "",
        _fenced(run.replay, "sh"),
        "",
        "</details>",
    ])


def markdown_document(runs):
    """The Markdown summary of runs."""
    passed, failed, errors = summary_counts(runs)
    status = "✅" if failed == 0 else "❌"
    bad_input = f" ({errors} bad input)" if errors else ""
    out = [f"## {status} mtasim: {passed} passed, {failed} failed{bad_input}", ""]
    failing = [r for r in runs if not r.passed]
    if failing:
        out += ["### Failures", ""]
        for run in failing:
            out += [_failure_block(run), ""]
        out += ["### All runs", "", _table(runs), ""]
    else:
        out += [f"<details><summary>All {len(runs)} runs</summary>", "", _table(runs), "",
                "</details>", ""]
    return "\n".join(out)
