"""test_pcap - ``mtasim run --pcap`` judged by tshark, an independent dissector.

The whole bundled suite runs once with ``--pcap DIR/ --trace FILE``; then,
for every scenario's capture:

* (a) tshark's expert analysis, with IP and TCP checksum validation on,
  reports no Error and no Warn - except the warnings a scenario provokes on
  purpose, listed in DELIBERATE_WARNINGS with the reason.  The list must be
  exact: a scenario that stops provoking its warning fails too, so the list
  never goes stale.
* (b) the SMTP dialogue tshark decodes equals the one in mtasim's trace,
  connection by connection (tshark's tcp.stream k is the (k+1)-th
  ``conn open`` record, as both count in connect order):
  - every command line tshark decodes (``smtp.command_line``) equals, in
    order, the ``smtp send`` lines of the trace (the message body is one
    ``smtp send data_bytes=N`` record in the trace and no command to
    tshark: both sides leave it out);
  - every reply tshark decodes starts with a trace ``smtp recv`` line, in
    order, and the trace lines it skips are exactly the later lines of a
    multi-line reply (tshark shows the lines of a reply that arrive in
    one segment as one response whose first line it names; ``segment 1``
    splits them, and then each line is a response of its own).  So the
    codes and texts of every reply, and the first line of every
    multi-line reply, are compared; the continuation lines tshark folds
    into one response are not compared line by line.
  Exclusions, per scenario, in SMTP_EXCLUSIONS with the reason.

Plus: the same scenario and seed give a byte-identical capture, and
``--pcap FILE`` refuses several runs (exit 2).
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.drivers.mtasim_pytest import REPO_ROOT, run_mtasim

SCENARIOS = sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "scenarios").rglob("*.scn")
                   if not any(part.startswith(".") for part in p.relative_to(REPO_ROOT).parts))

RST = "Connection reset (RST)"
# scenario name -> (the Warn summaries tshark must report, why the scenario provokes them)
DELIBERATE_WARNINGS = {
    "backlog": ({RST}, "a SYN beyond the listen backlog is refused with RST|ACK"),
    "dsn-unreachable": ({RST}, "the MX refuses every connection (RST|ACK)"),
    "fallback-second-mx": ({RST}, "the first MX refuses the connection (RST|ACK)"),
    "jitter": ({RST}, "the backup MX refuses the connection (RST|ACK)"),
    "link-latency": ({RST}, "the core gives up on a slow handshake and aborts it with RST"),
    "mx-failures-to-delay": ({RST}, "the MX refuses every connection (RST|ACK)"),
    "random-connect": ({RST}, "some connections are randomly refused (RST|ACK)"),
    "random-faults": ({RST}, "random refusals and resets"),
    "refused": ({RST}, "the MX refuses the connection (RST|ACK)"),
    "reset-after-bytes": ({RST}, "the remote resets after N bytes"),
    "reset-after-rcpt": ({RST}, "the remote resets instead of answering RCPT"),
    "reset-at-time": ({RST}, "the remote resets at a given time"),
}

# scenario name -> why tshark's SMTP view and the trace legitimately differ there
SMTP_EXCLUSIONS = {
    "raw-bad-code": "the remote's banner code is '2x0': tshark's SMTP dissector decodes no "
                    "response from a line without a numeric code",
    "raw-bare-lf": "the remote ends its reply with a bare LF: tshark's SMTP dissector only "
                   "splits lines at CRLF, so it sees one run-on response",
}

TRACE_LINE = re.compile(r"^(\d+:\d\d:\d\d\.\d{6}) (\S+) (\S+)(.*)$")
FIELD = re.compile(r'\s([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)')
ESCAPES = {'"': '"', "\\": "\\", "r": "\r", "n": "\n", "t": "\t"}


def require_tshark():
    path = shutil.which("tshark")
    if path is None:
        pytest.fail("tshark is not installed: run sh tests/deps.sh (Debian package tshark)",
                    pytrace=False)
    return path


def unquote(value):
    """A trace value as its text: quotes off, escapes (\\" \\\\ \\r \\n \\t \\xHH) applied."""
    if not value.startswith('"'):
        return value
    out, i, body = [], 0, value[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n == "x":
                out.append(chr(int(body[i + 2:i + 4], 16)))
                i += 4
                continue
            out.append(ESCAPES.get(n, n))
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_trace(text):
    """[(scenario name, [records])] with a record = (kind, name, {key: text})."""
    runs = []
    for line in text.splitlines():
        if line.startswith("# scenario "):
            runs.append((line.split()[2], []))
            continue
        m = TRACE_LINE.match(line)
        if m and runs:
            fields = {k: unquote(v) for k, v in FIELD.findall(m.group(4))}
            runs[-1][1].append((m.group(2), m.group(3), fields))
    return runs


def pcap_names(names):
    """The file names --pcap DIR/ gives runs of these scenario names (docs/cli.md)."""
    used, out = set(), []
    for name in names:
        cand, k = name, 1
        while cand in used:
            k += 1
            cand = f"{name}-{k}"
        used.add(cand)
        out.append(cand + ".pcap")
    return out


def trace_dialogue(records):
    """[((src, "dst:port"), {"send": [lines], "recv": [lines]})] per outbound connection
    (``conn open``), in connect order, from the trace records."""
    conns, fd_conn = [], {}
    for kind, name, f in records:
        if kind == "conn" and name in ("open", "accept"):
            # An inbound connection (accept) reuses descriptors too: forget the old one.
            fd_conn.pop(f["fd"], None)
            if name == "open":
                fd_conn[f["fd"]] = len(conns)
                conns.append(((f["src"], f["dst"]), {"send": [], "recv": []}))
        elif kind == "smtp" and "line" in f and f.get("conn") in fd_conn:
            conns[fd_conn[f["conn"]]][1][name].append(f["line"])
    return conns


def tshark_streams(tshark, pcap):
    """[(tcp.stream, (client ip, "server ip:port"))] in the order of their first SYN."""
    proc = subprocess.run([tshark, "-r", str(pcap), "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0",
                           "-T", "fields", "-e", "tcp.stream", "-e", "ip.src", "-e", "ip.dst",
                           "-e", "tcp.dstport"], capture_output=True, text=True, check=False,
                          timeout=120)
    assert proc.returncode == 0, f"tshark failed on {pcap}: {proc.stderr}"
    out, seen = [], set()
    for row in filter(None, proc.stdout.split("\n")):
        stream, src, dst, port = row.split("\t")
        if stream not in seen:      # SYN retransmissions repeat the stream
            seen.add(stream)
            out.append((int(stream), (src, f"{dst}:{port}")))
    return out


def tshark_dialogue(tshark, pcap):
    """{tcp.stream: {"send": [command lines], "recv": [first lines of responses]}}."""
    proc = subprocess.run([tshark, "-r", str(pcap), "-Y", "smtp", "-T", "fields",
                           "-E", "occurrence=a", "-E", "aggregator=\x1e",
                           "-e", "tcp.stream", "-e", "smtp.command_line", "-e", "smtp.response"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"tshark failed on {pcap}: {proc.stderr}"
    out = {}
    # Not splitlines(): it would also split at the \x1e aggregator.
    for row in filter(None, proc.stdout.split("\n")):
        stream, cmds, rsps = (row.split("\t") + ["", ""])[:3]
        d = out.setdefault(int(stream), {"send": [], "recv": []})
        for key, items in (("send", cmds), ("recv", rsps)):
            for item in filter(None, items.split("\x1e")):
                # tshark shows CR LF as the four characters \r\n
                d[key].append(item[:-4] if item.endswith("\\r\\n") else item)
    return out


def commands_match(tshark_cmds, trace_cmds):
    """Equal; or tshark's list is a prefix of the trace's that ends in DATA.

    After DATA, tshark's dissector takes every client line for message data
    until a lone "." - even when the server refused the DATA (554 after a
    pipelined RCPT failed), where the client's next line is really a
    command, and when the client gave up after a 354 and sent QUIT without
    a body, where the line is message data as far as the server knows."""
    if tshark_cmds == trace_cmds:
        return True
    n = len(tshark_cmds)
    return (0 < n < len(trace_cmds) and trace_cmds[:n] == tshark_cmds
            and tshark_cmds[-1].upper() == "DATA")


def cut_short(records):
    """Connection numbers the core stopped reading before the server was done: reset
    (the kernel drops unread data on RST), or closed by the core with no EOF seen."""
    out, fd_conn, eof, n = set(), {}, set(), 0
    for kind, name, f in records:
        if kind != "conn":
            continue
        if name == "open":
            fd_conn[f["fd"]] = n
            n += 1
        elif name == "accept":
            fd_conn.pop(f["fd"], None)      # inbound: not one of ours
        elif f.get("fd") not in fd_conn:
            continue
        elif name == "reset":
            out.add(fd_conn[f["fd"]])
        elif name == "eof":
            eof.add(fd_conn[f["fd"]])
        elif name == "close" and fd_conn[f["fd"]] not in eof:
            out.add(fd_conn[f["fd"]])
    return out


def replies_match(tshark_firsts, trace_lines, cut):
    """None if every tshark response starts at a trace line and skips only continuations.

    With cut (the core stopped reading early), responses after the last trace line are
    what the server sent that the core never read: allowed."""
    i = 0
    for first in tshark_firsts:
        start = i
        while i < len(trace_lines) and trace_lines[i] != first:
            i += 1
        if i == len(trace_lines):
            if cut and all(j > 0 and trace_lines[j - 1][3:4] == "-"
                           for j in range(start, len(trace_lines))):
                return None
            return f"tshark response {first!r} is not a trace line after {trace_lines[start - 1:start]}"
        for j in range(start, i):
            # A skipped line must be a later line of a multi-line reply.
            if j == 0 or trace_lines[j - 1][3:4] != "-":
                return f"trace line {trace_lines[j]!r} has no tshark response"
        i += 1
    for j in range(i, len(trace_lines)):
        if j == 0 or trace_lines[j - 1][3:4] != "-":
            return f"trace line {trace_lines[j]!r} has no tshark response"
    return None


@pytest.fixture(scope="module")
def suite_capture(mtasim, tmp_path_factory):
    """The whole suite run once with --pcap DIR/ --trace FILE: (dir, [(name, records)])."""
    tmp = tmp_path_factory.mktemp("pcap")
    trace = tmp / "trace.txt"
    proc = run_mtasim(mtasim, ["--quiet", "--pcap", f"{tmp}/caps/", "--trace", str(trace)]
                      + SCENARIOS, cwd=REPO_ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = parse_trace(trace.read_text(encoding="utf-8", errors="replace"))
    assert len(runs) == len(SCENARIOS)
    return tmp / "caps", runs


def expert_warnings(tshark, pcap):
    """{(severity, summary)} of tshark's Warn and Error expert items, checksums checked."""
    # smtp.decryption: decode AUTH's base64 (else tshark warns that it did not).
    proc = subprocess.run([tshark, "-r", str(pcap), "-2", "-q", "-o", "tcp.check_checksum:TRUE",
                           "-o", "ip.check_checksum:TRUE", "-o", "smtp.decryption:TRUE",
                           "-z", "expert,warn"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"tshark failed on {pcap}: {proc.stderr}"
    found, severity = set(), None
    for line in proc.stdout.splitlines():
        m = re.match(r"^(Errors|Warns) \(\d+\)", line)
        if m:
            severity = m.group(1)
            continue
        m = re.match(r"^\s+\d+\s+\S+\s+\S+\s+(.*\S)\s*$", line)
        if severity and m and not line.lstrip().startswith("Frequency"):
            found.add((severity, m.group(1)))
    return found


def test_tshark_expert_clean(mtasim, suite_capture):
    tshark = require_tshark()
    caps, runs = suite_capture
    problems = []
    for (name, _), fname in zip(runs, pcap_names([n for n, _ in runs])):
        found = expert_warnings(tshark, caps / fname)
        allowed, _why = DELIBERATE_WARNINGS.get(name, (set(), ""))
        want = {("Warns", s) for s in allowed}
        if found != want:
            problems.append(f"{fname}: tshark reports {sorted(found)}, expected {sorted(want)}")
    assert not problems, "\n".join(problems)


def test_tshark_smtp_matches_trace(mtasim, suite_capture):
    tshark = require_tshark()
    caps, runs = suite_capture
    problems, compared = [], 0
    for (name, records), fname in zip(runs, pcap_names([n for n, _ in runs])):
        if name in SMTP_EXCLUSIONS:
            continue
        want = trace_dialogue(records)
        got = tshark_dialogue(tshark, caps / fname)
        # The MTA's outbound connections, matched in connect order with the
        # streams of the same endpoints (inbound ones, accepted by the MTA,
        # have no conn open record and are not compared).
        endpoints = {ends for ends, _ in want}
        streams = [st for st, ends in tshark_streams(tshark, caps / fname) if ends in endpoints]
        if len(streams) != len(want):
            problems.append(f"{fname}: {len(want)} conn open records, {len(streams)} such streams")
            continue
        for conn, (stream, (_ends, d)) in enumerate(zip(streams, want)):
            seen = got.get(stream, {"send": [], "recv": []})
            if not commands_match(seen["send"], d["send"]):
                problems.append(f"{fname} stream {conn}: commands {seen['send']} != trace {d['send']}")
            why = replies_match(seen["recv"], d["recv"], conn in cut_short(records))
            if why:
                problems.append(f"{fname} stream {conn}: {why}")
            compared += len(d["send"]) + len(d["recv"])
    assert not problems, "\n".join(problems)
    assert compared > 500, "the suite should carry a real SMTP dialogue"


def test_pcap_deterministic(mtasim, tmp_path):
    for n in (1, 2):
        proc = run_mtasim(mtasim, ["--quiet", "--pcap", str(tmp_path / f"{n}.pcap"),
                                   "scenarios/faults/random-faults.scn"], cwd=REPO_ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = (tmp_path / "1.pcap").read_bytes(), (tmp_path / "2.pcap").read_bytes()
    assert len(a) > 1000 and a == b
    # A different seed makes a different capture: the bytes come from the run.
    proc = run_mtasim(mtasim, ["--quiet", "--seed", "9", "--pcap", str(tmp_path / "3.pcap"),
                               "scenarios/faults/random-faults.scn"], cwd=REPO_ROOT)
    assert (tmp_path / "3.pcap").read_bytes() != a


def test_syn_retransmissions_then_silence(mtasim, tmp_path):
    """connect timeout: SYN at 0, retransmissions at +1 s, +3 s, +7 s, +15 s, none at +31 s
    (connect_timeout 30 s), as Linux does."""
    tshark = require_tshark()
    pcap = tmp_path / "t.pcap"
    proc = run_mtasim(mtasim, ["--quiet", "--pcap", str(pcap), "scenarios/connect/timeout.scn"],
                      cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout
    out = subprocess.run([tshark, "-r", str(pcap), "-T", "fields", "-e", "frame.time_relative",
                          "-e", "tcp.flags.syn", "-e", "tcp.analysis.retransmission"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    rows = [r.split("\t") for r in out if r]
    assert [round(float(r[0]), 3) for r in rows] == [0.0, 1.0, 3.0, 7.0, 15.0]
    assert all(r[1] in ("1", "True") for r in rows)


def test_pcap_file_needs_one_run(mtasim, tmp_path):
    proc = run_mtasim(mtasim, ["--pcap", str(tmp_path / "x.pcap"), "scenarios/connect/refused.scn",
                               "scenarios/connect/timeout.scn"], cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert "one file holds one run" in proc.stderr
    proc = run_mtasim(mtasim, ["--pcap", "/nonexistent-dir/x.pcap", "scenarios/connect/refused.scn"],
                      cwd=REPO_ROOT)
    assert proc.returncode == 2
    assert "cannot write /nonexistent-dir/x.pcap" in proc.stdout
