"""svg_diagrams - the pictures of the HTML report, as inline SVG text.

Contract
--------
Each function takes a ``results_model.Run`` (with its ``trace``; runs
without one give a short note instead of a picture) and returns SVG markup
to be placed inside HTML:

* ``ladder_svg(run)``       the sequence (ladder) diagram of every SMTP
  connection: the core on the left, one lane per remote address; commands
  and replies are arrows labelled with the line, the virtual time at the
  left; connect, refuse, reset, timeout and close are marked; a pause of a
  second or more is a labelled break.  Rows follow the trace's order.
* ``timeline_svgs(run)``    the hook timeline (one row per hook, a dot per
  call) and the queue depth (active, delayed, in flight) over virtual time,
  both on one time axis that compresses pauses: the gap between two
  instants grows with the logarithm of its length.

Every piece of text - reply lines, host names, hook arguments, anything a
scenario or a remote controls - goes through ``esc()`` (HTML/XML escaping)
and lands in text nodes or quoted attributes, never in markup, style or
script.  The output depends only on the run.
"""

import math
from html import escape

from results_model import duration_str, hook_calls, ladder_rows, queue_depth, time_str, time_str_us

ROW_H = 22              # one ladder row
GAP_H = 26              # a pause between rows
HEAD_H = 48             # lane headers
TIME_COL = 118          # timestamps and connection numbers
LANE_GAP = 430          # between the core's lane and each remote's
LABEL_CHARS = 58        # longer labels are cut, the full text in the tooltip
PAUSE_US = 1000000      # rows this far apart get a break

CONN_COLORS = ("#2563eb", "#9333ea", "#0891b2", "#c2410c", "#4d7c0f", "#be185d",
               "#0f766e", "#7c3aed")


def esc(text):
    """Text safe inside an element or a double-quoted attribute."""
    return escape(str(text), quote=True)


def _cut(text, limit=LABEL_CHARS):
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _arrow(x1, x2, y, color, dashed=False, cross=False):
    """A horizontal arrow from x1 to x2 at y (a cross instead of a head)."""
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    parts = [f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{color}" '
             f'stroke-width="1.6"{dash}/>']
    if cross:
        parts.append(f'<path d="M{x2 - 5} {y - 5}L{x2 + 5} {y + 5}M{x2 - 5} {y + 5}L{x2 + 5} {y - 5}" '
                     f'stroke="{color}" stroke-width="2.2"/>')
    else:
        d = 1 if x2 > x1 else -1
        parts.append(f'<path d="M{x2} {y}L{x2 - 9 * d} {y - 4.5}L{x2 - 9 * d} {y + 4.5}Z" '
                     f'fill="{color}"/>')
    return "".join(parts)


def _reply_class(code):
    return f"r{code // 100}xx" if code is not None and 2 <= code // 100 <= 5 else "rbad"


# ---------------------------------------------------------------- ladder


def ladder_svg(run):
    """The sequence diagram of run's connections (see the module docstring)."""
    if run.trace is None:
        return '<p class="note">No trace in the results: run <code>mtasim run --json-trace</code> ' \
               'for sequence diagrams.</p>'
    rows = ladder_rows(run)
    if not rows:
        return '<p class="note">The core opened no connection.</p>'
    conns = run.connection_log
    # One lane per remote address, in the order they were first contacted.
    lanes = []
    for c in conns:
        if c.get("remote") not in lanes:
            lanes.append(c.get("remote"))
    core_x = TIME_COL + 70
    lane_x = {remote: core_x + LANE_GAP * (i + 1) for i, remote in enumerate(lanes)}
    width = core_x + LANE_GAP * len(lanes) + 110     # room for the last lane's header

    body = []
    y = HEAD_H + 14
    previous_t = None
    for row in rows:
        if previous_t is not None and row.t_us - previous_t >= PAUSE_US:
            body.append(f'<g class="pause"><line x1="{TIME_COL}" y1="{y + 4}" x2="{width - 10}" '
                        f'y2="{y + 4}"/><text x="{core_x + LANE_GAP / 2}" y="{y + 8}" '
                        f'text-anchor="middle">{esc(duration_str(row.t_us - previous_t))} later'
                        f'</text></g>')
            y += GAP_H
        previous_t = row.t_us
        body.append(_ladder_row(row, conns[row.conn], row.conn, y, core_x,
                                lane_x[conns[row.conn].get("remote")]))
        y += ROW_H
    height = y + 10

    head = []
    for x, title, sub in [(core_x, "mtasim core", _core_sub(conns))] + \
            [(lane_x[r], r or "?", _lane_sub(conns, r)) for r in lanes]:
        head.append(f'<g class="lane"><line x1="{x}" y1="{HEAD_H}" x2="{x}" y2="{height - 4}"/>'
                    f'<rect x="{x - 95}" y="4" width="190" height="{HEAD_H - 10}" rx="6"/>'
                    f'<text x="{x}" y="21" text-anchor="middle" class="lane-title">{esc(_cut(title, 26))}'
                    f'</text><text x="{x}" y="36" text-anchor="middle" class="lane-sub">'
                    f'{esc(_cut(sub, 30))}</text></g>')
    return (f'<svg class="ladder" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="sequence diagram">{"".join(head)}{"".join(body)}</svg>')


def _core_sub(conns):
    sources = sorted({str(c.get("src")) for c in conns if c.get("src")})
    return ", ".join(sources) if sources else ""


def _lane_sub(conns, remote):
    domains = sorted({str(c.get("domain")) for c in conns
                      if c.get("remote") == remote and c.get("domain")})
    return ", ".join(domains)


def _ladder_row(row, conn, index, y, core_x, remote_x):
    """One row: time and connection tag on the left, the arrow or mark."""
    color = CONN_COLORS[index % len(CONN_COLORS)]
    tip = f"{time_str_us(row.t_us)}  connection #{index + 1} (fd {conn.get('fd')})\n" \
          f"{row.detail or row.label}"
    out = [f'<g class="row {esc(row.kind)}"><title>{esc(tip)}</title>',
           f'<text x="8" y="{y + 4}" class="t">{esc(time_str(row.t_us))}</text>',
           f'<text x="{TIME_COL - 6}" y="{y + 4}" class="cn" fill="{color}" text-anchor="end">'
           f'#{index + 1}</text>']
    mid = (core_x + remote_x) / 2
    if row.kind in ("send", "open", "data", "close"):
        out.append(_arrow(core_x, remote_x, y, "#94a3b8" if row.kind == "close" else color,
                          dashed=row.kind in ("open", "close")))
        label_x, anchor = core_x + 10, "start"
    elif row.kind == "unreachable":
        out.append(_arrow(core_x, mid, y, "#dc2626", cross=True))
        label_x, anchor = mid + 12, "start"
    elif row.kind == "timeout":
        out.append(f'<circle cx="{core_x}" cy="{y}" r="5" class="mark-bad"/>')
        label_x, anchor = core_x + 12, "start"
    else:   # recv, established, refused, reset, eof: from the remote
        bad = row.kind in ("refused", "reset")
        out.append(_arrow(remote_x, core_x, y, "#dc2626" if bad else color,
                          dashed=row.kind in ("established", "eof")))
        label_x, anchor = remote_x - 10, "end"
    out.append(_label(row, label_x, y - 4, anchor))
    out.append("</g>")
    return "".join(out)


def _label(row, x, y, anchor):
    """The arrow's text; a reply's code coloured by its class."""
    kind_class = {"send": "cmd", "data": "cmd", "recv": "reply"}.get(row.kind, "ev")
    if row.kind in ("refused", "reset", "unreachable", "timeout"):
        kind_class = "ev bad"
    text = _cut(row.label)
    if row.kind == "recv" and row.code is not None:
        return (f'<text x="{x}" y="{y}" text-anchor="{anchor}" class="{kind_class}">'
                f'<tspan class="{_reply_class(row.code)}">{esc(text[:3])}</tspan>'
                f'{esc(text[3:])}</text>')
    if row.kind == "recv":
        kind_class += " rbad"
    return f'<text x="{x}" y="{y}" text-anchor="{anchor}" class="{kind_class}">{esc(text)}</text>'


# ---------------------------------------------------------------- time axis


class TimeAxis:
    """x positions for the instants of a run, pauses compressed.

    Consecutive distinct instants are 3 px apart plus 9 px per decade of
    the pause in milliseconds, then everything is scaled to ``width``.
    """

    def __init__(self, instants, left, width):
        self.left = left
        self.instants = sorted(set(instants)) or [0]
        xs = [0.0]
        for a, b in zip(self.instants, self.instants[1:]):
            xs.append(xs[-1] + 3 + 9 * math.log10(1 + (b - a) / 1000))
        scale = width / xs[-1] if xs[-1] > 0 else 1.0
        self.x_of = {t: left + x * scale for t, x in zip(self.instants, xs)}
        self.right = left + xs[-1] * scale

    def x(self, t_us):
        return round(self.x_of[t_us], 1)

    def ticks(self, min_px=78):
        """(x, label) at the start, after each pause of a second or more,
        and at the end, skipping ones too close to the previous tick."""
        chosen = [self.instants[0]]
        for a, b in zip(self.instants, self.instants[1:]):
            if b - a >= PAUSE_US:
                chosen.append(b)
        chosen.append(self.instants[-1])
        ticks, last_x = [], None
        for t in chosen:
            x = self.x(t)
            if last_x is None or x - last_x >= min_px:
                ticks.append((x, time_str(t)))
                last_x = x
        return ticks

    def axis_svg(self, y, top):
        """Tick lines from top to y and their labels under y."""
        out = []
        for x, label in self.ticks():
            out.append(f'<line class="tick" x1="{x}" y1="{top}" x2="{x}" y2="{y}"/>'
                       f'<text class="tick" x="{x}" y="{y + 13}" text-anchor="middle">'
                       f'{esc(label)}</text>')
        return "".join(out)


TIMELINE_LABEL_W = 250
TIMELINE_W = 860
HOOK_ROW_H = 15
DEPTH_H = 110
DEPTH_SERIES = (("active", 1, "#2563eb"), ("delayed", 2, "#d97706"), ("in flight", 3, "#16a34a"))


def timeline_svgs(run):
    """(hook timeline SVG, queue depth SVG) on one compressed time axis."""
    if run.trace is None:
        note = '<p class="note">No trace in the results: run <code>mtasim run --json-trace</code> ' \
               'for the hook timeline and queue depth.</p>'
        return note, ""
    axis = TimeAxis([rec[0] for rec in run.trace], TIMELINE_LABEL_W, TIMELINE_W)
    return _hooks_svg(run, axis), _depth_svg(run, axis)


def _hooks_svg(run, axis):
    calls = hook_calls(run)
    if not calls:
        return '<p class="note">No hook was called.</p>'
    names = []
    for _, name, _ in calls:
        if name not in names:
            names.append(name)
    row_of = {name: i for i, name in enumerate(names)}
    top = 6
    bottom = top + HOOK_ROW_H * len(names) + 4
    width = int(axis.right) + 30
    out = [axis.axis_svg(bottom, top)]
    for name, i in row_of.items():
        y = top + HOOK_ROW_H * i + HOOK_ROW_H / 2
        out.append(f'<line class="hookrow" x1="{TIMELINE_LABEL_W}" y1="{y}" x2="{axis.right}" '
                   f'y2="{y}"/><text class="hookname" x="{TIMELINE_LABEL_W - 8}" y="{y + 4}" '
                   f'text-anchor="end">{esc(name)}</text>')
    for t, name, fields in calls:
        y = top + HOOK_ROW_H * row_of[name] + HOOK_ROW_H / 2
        args = " ".join(f"{k}={v}" for k, v in fields.items())
        out.append(f'<circle class="call" cx="{axis.x(t)}" cy="{y}" r="3.6"><title>'
                   f'{esc(time_str_us(t))}  {esc(name)}\n{esc(args)}</title></circle>')
    height = bottom + 20
    return (f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="hook timeline">{"".join(out)}</svg>')


def _depth_svg(run, axis):
    points = queue_depth(run)
    if not points:
        return '<p class="note">No message entered the queue.</p>'
    peak = max(max(p[1:]) for p in points) or 1
    top, bottom = 10, 10 + DEPTH_H
    width = int(axis.right) + 30

    def y_of(v):
        return round(bottom - (bottom - top) * v / peak, 1)

    out = [axis.axis_svg(bottom, top)]
    for v in sorted({0, peak, (peak + 1) // 2}):
        out.append(f'<line class="grid" x1="{TIMELINE_LABEL_W}" y1="{y_of(v)}" x2="{axis.right}" '
                   f'y2="{y_of(v)}"/><text class="tick" x="{TIMELINE_LABEL_W - 8}" y="{y_of(v) + 4}" '
                   f'text-anchor="end">{v}</text>')
    end_x = axis.x(axis.instants[-1])
    for label, column, color in DEPTH_SERIES:
        d, last_y = [], None
        for p in points:
            x, yv = axis.x(p[0]), y_of(p[column])
            d.append(f"M{x} {yv}" if last_y is None else f"H{x}V{yv}")
            last_y = yv
        d.append(f"H{end_x}")
        out.append(f'<path class="series" d="{"".join(d)}" stroke="{color}"><title>'
                   f'{esc(label)}</title></path>')
    for i, (label, _, color) in enumerate(DEPTH_SERIES):
        out.append(f'<rect x="{12}" y="{top + 18 * i}" width="12" height="4" fill="{color}"/>'
                   f'<text class="legend" x="30" y="{top + 18 * i + 6}">{esc(label)} '
                   f'(max {max(p[_col(label)] for p in points)})</text>')
    height = bottom + 22
    return (f'<svg class="depth" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="queue depth">{"".join(out)}</svg>')


def _col(label):
    return {name: column for name, column, _ in DEPTH_SERIES}[label]
