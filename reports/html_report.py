"""html_report - mtasim runs as one self-contained HTML file.

Contract
--------
``html_document(runs, title)`` returns the page: CSS, JavaScript and SVG
inline, nothing loaded from anywhere (a Content-Security-Policy with
``default-src 'none'`` says so to the browser, and admits the one inline
script by its SHA-256 hash, so no other script could run even if one got
in).  It shows

* the counts (passed, failed, bad input: they add up to the runs) and a
  table of every run:
  verdict, scenario, file, seed, expectations met, connections, digest,
  wall time; rows link to the run's section;
* per run a section (open when it failed): the failing expectation's diff,
  invariant violations or error, the replay command, the sequence diagram
  of its SMTP connections, the hook timeline and the queue depth over
  virtual time (svg_diagrams.py), its connections, CONN_ERR counts and
  messages.

``html_document(runs, title, assets="files")`` is the same page for hosts
whose Content-Security-Policy forbids inline CSS and JavaScript (Jenkins'
default: ``sandbox; default-src 'none'; img-src 'self'; style-src 'self';``):
it links ``report.css`` and ``report.js`` beside it (``mtasim report
--html-dir DIR`` writes the three files) and has no inline code, no style
attribute, no inline script.  Under Jenkins' sandbox the script does not run;
the page is complete without it (sections open or closed, nothing hidden).

A run whose results carry no trace (``mtasim run --json`` without
``--json-trace``) gets a note instead of empty diagrams saying how to get
them; so does the page, when no run has one.

The script only filters, sorts and opens sections; it reads the page and
sets ``hidden``/``open``/classes, never markup.  All text from runs is
HTML-escaped.  The page depends only on the runs (wall times aside): no
generation time, no random ids.
"""

import base64
import hashlib
import os
from html import escape

from results_model import duration_str, summary_counts, time_str
from svg_diagrams import ladder_svg, timeline_svgs

HERE = os.path.dirname(os.path.abspath(__file__))
# Said where diagrams would be when the results hold no trace.
NO_TRACE_NOTE = ("No sequence diagram, hook timeline or queue depth: these results hold no "
                 "trace. Write them with <code>mtasim run --json FILE --json-trace</code> "
                 "(or pytest's <code>--mtasim-results DIR</code>) to get them.")
VERDICT_WORDS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "invariant": "INVARIANT",
                 "plugin": "PLUGIN"}


def esc(text):
    return escape(str(text), quote=True)


def _asset(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


def _diff_html(text):
    """mtasim's failure account with its ok / MISS / closest lines marked."""
    out = []
    for line in text.splitlines():
        word = line.strip().split(" ", 1)[0] if line.strip() else ""
        cls = {"ok": "ok", "MISS": "miss", "closest": "closest", "replay:": "replay",
               "what": "what", "invariant:": "miss", "error:": "miss"}.get(word, "")
        out.append(f'<span class="{cls}">{esc(line)}</span>' if cls else esc(line))
    return "\n".join(out)


def _pill(verdict):
    return f'<span class="pill {esc(verdict)}">{VERDICT_WORDS[verdict]}</span>'


def _summary_section(runs):
    passed, failed, errors = summary_counts(runs)
    total_conns = sum(len(r.connection_log) for r in runs)
    # The cards split the runs (issue 22): "failed" is what was judged and
    # failed; bad input, which summary_counts counts as failed too, has its own.
    judged_failed = failed - errors
    cards = [("passed", passed, "pass"),
             ("failed", judged_failed, "fail" if judged_failed else "zero"),
             ("bad input", errors, "error" if errors else "zero"), ("runs", len(runs), "total"),
             ("connections", total_conns, "total")]
    out = ['<section id="summary"><div class="cards">']
    for label, value, cls in cards:
        out.append(f'<div class="card {cls}"><div class="num" data-count="{esc(label)}">{value}'
                   f'</div><div class="lbl">{esc(label)}</div></div>')
    out.append("</div>")
    failing = [(i, r) for i, r in enumerate(runs) if not r.passed]
    if failing:
        out.append('<div class="attention"><h2>Needs attention</h2><ul>')
        for i, r in failing:
            out.append(f'<li>{_pill(r.verdict)} <a href="#run-{i}">{esc(r.name)}</a> '
                       f'<span class="mono">{esc(r.file)}</span> — {esc(r.headline)}</li>')
        out.append("</ul></div>")
    out.append('<div class="toolbar">'
               '<div class="filters" role="group" aria-label="show">'
               '<button type="button" data-filter="all" class="on">All</button>'
               '<button type="button" data-filter="failed">Failed</button>'
               '<button type="button" data-filter="passed">Passed</button></div>'
               '<input type="search" id="search" placeholder="Filter by scenario or file" '
               'aria-label="filter by scenario or file">'
               '<button type="button" id="expand">Expand all</button>'
               '<button type="button" id="collapse">Collapse all</button></div>')
    out.append('<table id="runs-table"><thead><tr>'
               '<th data-sort="verdict">verdict</th><th data-sort="text">scenario</th>'
               '<th data-sort="text">file</th><th data-sort="num">seed</th>'
               '<th data-sort="num">expectations</th><th data-sort="num">connections</th>'
               '<th data-sort="text">digest</th><th data-sort="num">wall ms</th>'
               '</tr></thead><tbody>')
    for i, r in enumerate(runs):
        met = sum(1 for e in r.expectations if e.passed)
        seed = "" if r.seed is None else r.seed
        digest = (r.digest or "")[:12]
        out.append(f'<tr class="run-row {esc(r.verdict)}" data-run="{i}" '
                   f'data-search="{esc((r.name + " " + r.file).lower())}">'
                   f'<td data-v="{0 if r.passed else 1}">{_pill(r.verdict)}</td>'
                   f'<td><a href="#run-{i}">{esc(r.name)}</a></td>'
                   f'<td class="mono">{esc(r.file)}</td><td data-v="{seed}">{esc(seed)}</td>'
                   f'<td data-v="{met}">{met}/{len(r.expectations)}</td>'
                   f'<td data-v="{len(r.connection_log)}">{len(r.connection_log)}</td>'
                   f'<td class="mono">{esc(digest)}</td>'
                   f'<td data-v="{r.wall_ms:.3f}" class="wall">{r.wall_ms:.1f}</td></tr>')
    out.append("</tbody></table></section>")
    return "".join(out)


def _connections_table(run):
    if not run.connection_log:
        return '<p class="note">No connection was opened.</p>'
    out = ['<table class="conns"><thead><tr><th>#</th><th>fd</th><th>remote</th><th>domain</th>'
           '<th>binding</th><th>opened</th><th>closed</th><th>commands</th><th>replies</th>'
           '<th>outcome</th><th>error</th></tr></thead><tbody>']
    for i, c in enumerate(run.connection_log, 1):
        replies = " ".join("?" if code is None else str(code) for code in c.get("replies") or [])
        closed = c.get("closed_us")
        outcome = str(c.get("outcome") or "")
        out.append(f'<tr><td>#{i}</td><td>{esc(c.get("fd"))}</td>'
                   f'<td class="mono">{esc(c.get("remote") or "")}</td>'
                   f'<td>{esc(c.get("domain") or "")}</td><td>{esc(c.get("binding") or "")}</td>'
                   f'<td class="mono">{esc(time_str(c.get("opened_us")))}</td>'
                   f'<td class="mono">{esc(time_str(closed))}</td>'
                   f'<td class="mono">{esc(" ".join(map(str, c.get("commands") or [])))}</td>'
                   f'<td class="mono">{esc(replies)}</td>'
                   f'<td><span class="outcome {esc(outcome)}">{esc(outcome)}</span></td>'
                   f'<td class="mono">{esc(c.get("error") or "")}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _conn_err_html(run):
    initiate = run.conn_err.get("initiate") or {}
    failures = run.conn_err.get("failures") or {}
    fd_calls = run.conn_err.get("initiate_fd", 0)
    if not initiate and not failures and not fd_calls:
        return ""
    chips = [f'<span class="chip ok">descriptor ×{esc(fd_calls)}</span>']
    chips += [f'<span class="chip">{esc(name)} ×{esc(n)}</span>' for name, n in sorted(initiate.items())]
    fail = [f'<span class="chip bad">{esc(name)} ×{esc(n)}</span>' for name, n in sorted(failures.items())]
    return ('<div class="connerr"><span class="k">post_initiate_connection_smtp</span> '
            + " ".join(chips) + ('<br><span class="k">log_client_connection_failure</span> '
                                 + " ".join(fail) if fail else "") + "</div>")


def _messages_table(run):
    if not run.messages:
        return ""
    out = ['<table class="msgs"><thead><tr><th>message</th><th>fate</th><th>attempts</th>'
           '<th>recipients</th><th>delivered</th><th>failed</th><th>pending</th><th>done at</th>'
           '<th>last error</th></tr></thead><tbody>']
    for m in run.messages:
        fate = str(m.get("fate") or "")
        out.append(f'<tr><td>{esc(m.get("id"))}</td><td><span class="fate {esc(fate)}">{esc(fate)}'
                   f'</span></td><td>{esc(m.get("attempts"))}</td><td>{esc(m.get("recipients"))}</td>'
                   f'<td>{esc(m.get("delivered"))}</td><td>{esc(m.get("failed"))}</td>'
                   f'<td>{esc(m.get("pending"))}</td>'
                   f'<td class="mono">{esc(time_str(m.get("done_at_us")))}</td>'
                   f'<td class="mono">{esc(m.get("last_error") or "")}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _run_section(i, run):
    opened = "" if run.passed else " open"
    seed = "" if run.seed is None else f"seed {run.seed}"
    digest = f"digest {run.digest[:16]}" if run.digest else ""
    facts = " · ".join(x for x in [seed, digest, f"{len(run.connection_log)} connections",
                                   f"ended at {time_str(run.end_us)}" if run.end_us else "",
                                   f"{run.wall_ms:.1f} ms"] if x)
    out = [f'<details class="run {esc(run.verdict)}" id="run-{i}" data-run="{i}"{opened}>'
           f'<summary>{_pill(run.verdict)} <span class="name">{esc(run.name)}</span> '
           f'<span class="file">{esc(run.file)}</span>'
           f'<span class="facts">{esc(facts)}</span></summary><div class="body">']
    if not run.passed:
        out.append(f'<h3>What failed</h3><pre class="diff">{_diff_html(run.failure_text or run.headline)}'
                   f'</pre>')
    out.append(f'<div class="replay"><span class="k">replay</span><code>{esc(run.replay)}</code></div>')
    if run.expectations:
        out.append('<ul class="expects">' + "".join(
            f'<li class="{"ok" if e.passed else "miss"}"><span class="mark">'
            f'{"✓" if e.passed else "✗"}</span> line {esc(e.line)}: {esc(e.text)}</li>'
            for e in run.expectations) + "</ul>")
    if run.trace is None and run.verdict != "error":     # bad input never ran: no trace
        out.append(f'<p class="note notrace">{NO_TRACE_NOTE}</p>')
    elif run.trace is not None or run.connection_log:
        hooks_svg, depth_svg = timeline_svgs(run)
        out.append('<h3>SMTP sequence</h3><div class="scroll">' + ladder_svg(run) + "</div>")
        out.append('<h3>Hook timeline</h3><div class="scroll">' + hooks_svg + "</div>")
        if depth_svg:
            out.append('<h3>Queue depth</h3><div class="scroll">' + depth_svg + "</div>")
    out.append("<h3>Connections</h3>" + _conn_err_html(run) + _connections_table(run))
    if run.messages:
        out.append("<h3>Messages</h3>" + _messages_table(run))
    out.append("</div></details>")
    return "".join(out)


# The files html_document(assets="files") links, written beside the page.
ASSET_FILES = ("report.css", "report.js")


def asset_files():
    """[(name, text)] of the files a page made with assets="files" links."""
    return [(name, _asset(name)) for name in ASSET_FILES]


def html_document(runs, title="mtasim report", assets="inline"):
    """The whole page for runs: CSS and script inline, or linked ("files")."""
    assert assets in ("inline", "files")
    passed, failed, errors = summary_counts(runs)
    script = _asset("report.js")
    if assets == "inline":
        script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
        csp = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               f"script-src 'sha256-{script_hash}'")
        style_tag = f"<style>{_asset('report.css')}</style>"
        script_tag = f"<script>{script}</script>"
    else:
        csp = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'"
        style_tag = '<link rel="stylesheet" href="report.css">'
        script_tag = '<script src="report.js"></script>'
    ran = [r for r in runs if r.verdict != "error"]
    notrace = "" if not ran or any(r.trace is not None for r in ran) else \
        f'<p class="note notrace banner">{NO_TRACE_NOTE}</p>'

    status = "all passed" if failed == 0 else f"{failed} failed"
    span_us = max((r.end_us for r in runs), default=0)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}: {passed} passed, {failed} failed</title>",
        f"{style_tag}</head><body>",
        f'<header><div class="brand">{esc(title)}</div><div class="status '
        f'{"good" if failed == 0 else "bad"}">{esc(status)}</div>'
        f'<div class="sub">{len(runs)} runs · longest run {esc(duration_str(span_us))} of virtual time'
        f'{f" · {errors} bad input" if errors else ""}</div></header>',
        "<main>",
        notrace,
        _summary_section(runs),
        '<section id="runs">',
        *(_run_section(i, r) for i, r in enumerate(runs)),
        "</section></main>",
        script_tag,
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
